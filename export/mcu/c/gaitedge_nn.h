/* The network's layer kernels and the constant layer descriptions gaitedge_params.c fills. */
#ifndef GAITEDGE_NN_H
#define GAITEDGE_NN_H

#include <math.h> /* fmaf: one VFMA.F32 instruction on a Cortex-M4F */
#include <stdint.h>

typedef struct {
    const float *weight; /* [c_out][c_in][k], as ONNX stores it (MLAS's K order) */
    const float *bias;   /* [c_out] */
    int c_out, k, stride, pad, relu;
    float out_scale;
} ge_conv_float_t;

typedef struct {
    const int8_t *weight;  /* [c_out][k][c_in]: one tap's channels contiguous */
    const int32_t *bias;   /* [c_out], in units of in_scale * w_scale */
    const float *requant;  /* [c_out]: in_scale * w_scale / out_scale */
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

void ge_conv_float(const float *x, int t_in, int c_in, const ge_conv_float_t *l, int8_t *y);
void ge_conv_int8(const int8_t *x, int t_in, int c_in, const ge_conv_int8_t *l, int8_t *y);
void ge_mean_pool(const int8_t *x, int t_in, int c, float in_scale, float out_scale, int8_t *y);
void ge_head(const int8_t *x, int k, const ge_head_t *h, int8_t *logits, float *probs);

#endif
