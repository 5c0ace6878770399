/* The network in layer order: int8 activations in one buffer, each layer's padded input (float,
 * then widened int16) in a scratch buffer the layer fills before it overwrites the activations. */
#include "gaitedge_mcu.h"
#include "gaitedge_nn.h"

static int8_t act[GE_ACT_BYTES];
static union {
    float f[GE_SCRATCH_BYTES / 4];
    int16_t h[GE_SCRATCH_BYTES / 2];
    int8_t b[GE_SCRATCH_BYTES];
} scratch;

void ge_net_run(const float *window, int8_t logits[GE_N_LOGITS], float probs[GE_N_LOGITS])
{
    int t = GE_WINDOW, c = GE_CHANNELS;
    ge_conv_float(window, t, c, &ge_first, scratch.f, act); /* [T][C] float -> [T1][C1] int8 */
    t = (t + 2 * ge_first.pad - ge_first.k) / ge_first.stride + 1;
    c = ge_first.c_out;
    for (int i = 0; i < GE_N_CONVS; i++) {
        const ge_conv_int8_t *l = &ge_convs[i];
        ge_conv_int8(act, t, c, l, scratch.h, act);
        t = (t + 2 * l->pad - l->k) / l->stride + 1;
        c = l->c_out;
    }
    ge_mean_pool(act, t, c, GE_POOL_IN_SCALE, GE_POOL_OUT_SCALE, scratch.b); /* [C] int8 */
    int offset = 0;
    for (int h = 0; h < GE_N_HEADS; h++) {
        ge_head(scratch.b, c, &ge_heads[h], logits + offset, probs + offset);
        offset += ge_heads[h].n;
    }
}
