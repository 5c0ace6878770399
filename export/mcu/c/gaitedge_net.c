/* The network in layer order, over two static ping-pong activation buffers. */
#include "gaitedge_mcu.h"
#include "gaitedge_nn.h"

static int8_t act_a[GE_ACT_A_BYTES];
static int8_t act_b[GE_ACT_B_BYTES];

void ge_net_run(const float *window, int8_t logits[GE_N_LOGITS], float probs[GE_N_LOGITS])
{
    int t = GE_WINDOW, c = GE_CHANNELS;
    int8_t *in = act_a, *out = act_b;
    ge_conv_float(window, t, c, &ge_first, act_a); /* [T][C] float -> [T1][C1] int8 */
    t = (t + 2 * ge_first.pad - ge_first.k) / ge_first.stride + 1;
    c = ge_first.c_out;
    for (int i = 0; i < GE_N_CONVS; i++) {
        const ge_conv_int8_t *l = &ge_convs[i];
        ge_conv_int8(in, t, c, l, out);
        t = (t + 2 * l->pad - l->k) / l->stride + 1;
        c = l->c_out;
        int8_t *swap = in;
        in = out;
        out = swap;
    }
    ge_mean_pool(in, t, c, GE_POOL_IN_SCALE, GE_POOL_OUT_SCALE, out); /* [C] int8 */
    int offset = 0;
    for (int h = 0; h < GE_N_HEADS; h++) {
        ge_head(out, c, &ge_heads[h], logits + offset, probs + offset);
        offset += ge_heads[h].n;
    }
}
