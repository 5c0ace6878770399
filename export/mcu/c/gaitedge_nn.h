/* The network's layer kernels and the constant layer descriptions gaitedge_params.c fills. */
#ifndef GAITEDGE_NN_H
#define GAITEDGE_NN_H

#include <math.h> /* fmaf: one VFMA.F32 instruction on a Cortex-M4F */
#include <stdint.h>

/* Output channels a float convolution computes together, and its output steps. */
#define GE_FLOAT_BLOCK 4

typedef struct {
    /* [ceil(c_out / 4)][c_in][k][4]: the taps of four output channels side by side, in MLAS's
     * K order (channel, then tap); a last partial block is padded with zeros */
    const float *weight;
    const float *bias; /* [c_out] */
    int c_out, k, stride, pad, relu;
    float out_scale;
} ge_conv_float_t;

typedef struct {
    /* [ceil(c_out / 2)][k * c_in * 2]: output channels in pairs. A row is one receptive field
     * ([k][c_in], one tap's channels contiguous); the two rows of a pair alternate four values
     * at a time, each four stored (0, 2, 1, 3) so that SXTB16 widens them into the pairs
     * (0, 1) and (2, 3); the row's last (k * c_in) % 4 values follow, the pair's first row's,
     * then its second's, in order. An odd last channel is paired with itself. */
    const int8_t *weight;
    const int32_t *bias;  /* [c_out], in units of in_scale * w_scale */
    const float *requant; /* [c_out]: in_scale * w_scale / out_scale */
    int c_out, k, stride, pad, relu;
} ge_conv_int8_t;

typedef struct {
    const int8_t *weight;     /* [n][k] */
    const float *w_scale;     /* [n] */
    const int32_t *bias;      /* [n] */
    const float *bias_scale;  /* [n] */
    const float *exp_table;   /* [256]: exp(-d * out_scale) */
    int n;
    float in_scale, out_scale;
} ge_head_t;

/* The scratch buffers hold the zero-padded input ([pad + t_in + pad][c_in]): float for the
 * first layer, widened to int16 for the int8 layers (GE_SCRATCH_BYTES covers both). */
void ge_conv_float(const float *x, int t_in, int c_in, const ge_conv_float_t *l, float *scratch,
                   int8_t *y);
void ge_conv_int8(const int8_t *x, int t_in, int c_in, const ge_conv_int8_t *l, int16_t *scratch,
                  int8_t *y);
void ge_mean_pool(const int8_t *x, int t_in, int c, float in_scale, float out_scale, int8_t *y);
void ge_head(const int8_t *x, int k, const ge_head_t *h, int8_t *logits, float *probs);

#endif
