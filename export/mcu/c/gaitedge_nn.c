/*
 * INT8 kernels with ONNX Runtime's CPU arithmetic (export/mcu/graph.py says which ORT step each
 * one mirrors). Activations are time-major ([T][C], channels last) so that a convolution's
 * receptive field is one contiguous run of int8 values.
 */
#include "gaitedge_mcu.h"
#include "gaitedge_nn.h"

#include <string.h>

#ifdef __FAST_MATH__
#error "gaitedge_nn.c reproduces IEEE rounding step by step: build without -ffast-math"
#endif

/* Round half to even, as the SSE/NEON conversion MLAS uses; |v| <= 2^22 (callers clamp). */
static int32_t round_half_even(float v)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: the sum's last bit is the units digit */
    return (int32_t)((v + magic) - magic);
}

/* QuantizeLinear to int8 with zero point 0: saturate, then round (MlasQuantizeLinear). */
static int8_t saturate_round(float v)
{
    if (v < -128.0f) {
        v = -128.0f;
    }
    if (v > 127.0f) {
        v = 127.0f;
    }
    return (int8_t)round_half_even(v);
}

/* The layer's input between zero rows: [pad + t_in + pad][c]. A padded tap then adds an exact
 * zero, as in MLAS's im2col matrix, and every output has a whole receptive field. */
static void pad_float(const float *x, int t_in, int c, int pad, float *xp)
{
    const int edge = pad * c, body = t_in * c;
    for (int i = 0; i < edge; i++) {
        xp[i] = 0.0f;
        xp[edge + body + i] = 0.0f;
    }
    for (int i = 0; i < body; i++) {
        xp[edge + i] = x[i];
    }
}

/* One output step's four channels: a[m] += w[m] * x, each a single rounding (VFMA.F32). */
static inline void fma4(float a[GE_FLOAT_BLOCK], const float *w, float x)
{
    a[0] = fmaf(w[0], x, a[0]);
    a[1] = fmaf(w[1], x, a[1]);
    a[2] = fmaf(w[2], x, a[2]);
    a[3] = fmaf(w[3], x, a[3]);
}

/* The float bias, the fused Relu and QuantizeLinear of one output step's (up to) four channels. */
static void store_float4(const ge_conv_float_t *l, int o, float a0, float a1, float a2, float a3,
                         int8_t *y)
{
    const float a[GE_FLOAT_BLOCK] = {a0, a1, a2, a3};
    for (int m = 0; m < GE_FLOAT_BLOCK && o + m < l->c_out; m++) {
        float v = a[m] + l->bias[o + m];
        if (l->relu && v < 0.0f) {
            v = 0.0f;
        }
        y[o + m] = saturate_round(v / l->out_scale);
    }
}

void ge_conv_float(const float *x, int t_in, int c_in, const ge_conv_float_t *l, float *scratch,
                   int8_t *y)
{
    const int t_out = (t_in + 2 * l->pad - l->k) / l->stride + 1;
    const int step = l->stride * c_in; /* floats between two output steps' receptive fields */
    pad_float(x, t_in, c_in, l->pad, scratch);
    for (int t = 0; t < t_out; t += GE_FLOAT_BLOCK) {
        /* four output steps (past the end, the last one again: its result is written twice) */
        const int last = t_out - 1;
        const int t1 = t + 1 < last ? t + 1 : last, t2 = t + 2 < last ? t + 2 : last;
        const int t3 = t + 3 < last ? t + 3 : last;
        const float *x0 = scratch + t * step, *x1 = scratch + t1 * step;
        const float *x2 = scratch + t2 * step, *x3 = scratch + t3 * step;
        for (int o = 0; o < l->c_out; o += GE_FLOAT_BLOCK) {
            /* MLAS SGEMM over the im2col matrix: per output, one fused multiply-add per K index
             * in K order (channel, then tap), from 0. Sixteen outputs at once, each its own chain:
             * the block changes which outputs share a load, not any output's arithmetic. */
            const float *w = l->weight + o * c_in * l->k;
            float a0[GE_FLOAT_BLOCK] = {0.0f}, a1[GE_FLOAT_BLOCK] = {0.0f};
            float a2[GE_FLOAT_BLOCK] = {0.0f}, a3[GE_FLOAT_BLOCK] = {0.0f};
            for (int c = 0; c < c_in; c++) {
                const float *p0 = x0 + c, *p1 = x1 + c, *p2 = x2 + c, *p3 = x3 + c;
                for (int kk = 0; kk < l->k; kk++, w += GE_FLOAT_BLOCK) {
                    fma4(a0, w, *p0);
                    fma4(a1, w, *p1);
                    fma4(a2, w, *p2);
                    fma4(a3, w, *p3);
                    p0 += c_in;
                    p1 += c_in;
                    p2 += c_in;
                    p3 += c_in;
                }
            }
            store_float4(l, o, a0[0], a0[1], a0[2], a0[3], y + t * l->c_out);
            store_float4(l, o, a1[0], a1[1], a1[2], a1[3], y + t1 * l->c_out);
            store_float4(l, o, a2[0], a2[1], a2[2], a2[3], y + t2 * l->c_out);
            store_float4(l, o, a3[0], a3[1], a3[2], a3[3], y + t3 * l->c_out);
        }
    }
}

/*
 * The int8 convolutions as CMSIS-NN computes them on a Cortex-M4: the input widened once to
 * int16, the weights (int8 in flash) widened in registers, and SMLAD's two 16-bit products per
 * instruction. Two output channels by two output steps per inner loop: each loaded weight word
 * serves two steps and each input word two channels. The int32 sums are exact in any order, so
 * the result is ONNX Runtime's whichever path builds.
 */
#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

/* Four int8 weights and two int16 inputs, as one word each (the M4 loads unaligned words). */
static inline uint32_t load_s8x4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint32_t load_s16x2(const int16_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
/* Bytes 0 and 2 sign-extended to two halfwords. */
static inline uint32_t sxtb16(uint32_t v)
{
    return (uint32_t)__sxtb16((int32_t)v);
}
/* Bytes 1 and 3: SXTB16's own rotate (CMSIS's __SXTB16_RORn; the compiler would add a ROR). */
static inline uint32_t sxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}
/* acc + lo(a) * lo(b) + hi(a) * hi(b), 16-bit halves signed. */
static inline int32_t smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlad((int32_t)a, (int32_t)b, acc);
}
#else
/* The same instructions in portable C (the host build), little-endian words whatever the host. */
static int32_t s8(uint32_t v)
{
    return (int32_t)((v & 0xFFu) ^ 0x80u) - 0x80;
}
static int32_t s16(uint32_t v)
{
    return (int32_t)((v & 0xFFFFu) ^ 0x8000u) - 0x8000;
}
static uint32_t load_s8x4(const int8_t *p)
{
    const uint8_t *b = (const uint8_t *)p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static uint32_t load_s16x2(const int16_t *p)
{
    return ((uint32_t)p[0] & 0xFFFFu) | ((uint32_t)p[1] & 0xFFFFu) << 16;
}
static uint32_t sxtb16(uint32_t v)
{
    return ((uint32_t)s8(v) & 0xFFFFu) | ((uint32_t)s8(v >> 16) & 0xFFFFu) << 16;
}
static uint32_t sxtb16_ror8(uint32_t v)
{
    return sxtb16(v >> 8);
}
static int32_t smlad(uint32_t a, uint32_t b, int32_t acc)
{
    const int32_t lo = s16(a) * s16(b), hi = s16(a >> 16) * s16(b >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)lo + (uint32_t)hi); /* wraps, as SMLAD does */
}
#endif

/* The layer's input widened to int16 between zero rows: [pad + t_in + pad][c]. */
static void widen_padded(const int8_t *x, int t_in, int c, int pad, int16_t *xw)
{
    const int edge = pad * c, body = t_in * c;
    for (int i = 0; i < edge; i++) {
        xw[i] = 0;
        xw[edge + body + i] = 0;
    }
    for (int i = 0; i < body; i++) {
        xw[edge + i] = x[i];
    }
}

/* One group of four: a[2 * step + channel] += the pair's eight weights at w (as ge_conv_int8_t
 * lays them out) times four int16 inputs of each step, x0 and x1. Eight SMLADs, 16 MACs. */
static inline void mac_group(const int8_t *w, const int16_t *x0, const int16_t *x1, int32_t a[4])
{
    const uint32_t wa = load_s8x4(w), wb = load_s8x4(w + 4);
    const uint32_t a01 = sxtb16(wa), a23 = sxtb16_ror8(wa); /* channel 0: (0, 1), (2, 3) */
    const uint32_t b01 = sxtb16(wb), b23 = sxtb16_ror8(wb); /* channel 1 */
    const uint32_t x01 = load_s16x2(x0), x23 = load_s16x2(x0 + 2);
    a[0] = smlad(a23, x23, smlad(a01, x01, a[0]));
    a[1] = smlad(b23, x23, smlad(b01, x01, a[1]));
    const uint32_t y01 = load_s16x2(x1), y23 = load_s16x2(x1 + 2);
    a[2] = smlad(a23, y23, smlad(a01, y01, a[2]));
    a[3] = smlad(b23, y23, smlad(b01, y01, a[3]));
}

/* a[2 * step + channel] += two receptive fields (x0, x1: n int16 each) . a weight pair (w). */
static inline void mac_2x2(const int16_t *x0, const int16_t *x1, const int8_t *w, int n,
                           int32_t a[4])
{
    const int8_t *const end = w + n / 4 * 8;
    for (; w < end; w += 8, x0 += 4, x1 += 4) {
        mac_group(w, x0, x1, a);
    }
    const int rest = n % 4; /* the rows' last values, in order: channel 0's, then channel 1's */
    for (int i = 0; i < rest; i++) {
        a[0] += w[i] * x0[i];
        a[1] += w[rest + i] * x0[i];
        a[2] += w[i] * x1[i];
        a[3] += w[rest + i] * x1[i];
    }
}

/* QLinearConv's output: float(acc) * scale, rounded and saturated, then the fused Relu. */
static int8_t requantize(int32_t acc, float scale, int relu)
{
    const int8_t q = saturate_round((float)acc * scale);
    return relu && q < 0 ? 0 : q;
}

void ge_conv_int8(const int8_t *x, int t_in, int c_in, const ge_conv_int8_t *l, int16_t *scratch,
                  int8_t *y)
{
    const int t_out = (t_in + 2 * l->pad - l->k) / l->stride + 1;
    const int n = l->k * c_in, step = l->stride * c_in;
    widen_padded(x, t_in, c_in, l->pad, scratch); /* y may now overwrite x */
    for (int t = 0; t < t_out; t += 2) {
        const int t1 = t + 1 < t_out ? t + 1 : t; /* an odd last step pairs with itself */
        int8_t *y0 = y + t * l->c_out, *y1 = y + t1 * l->c_out;
        for (int o = 0; o < l->c_out; o += 2) {
            const int o1 = o + 1 < l->c_out ? o + 1 : o; /* and an odd last channel */
            int32_t acc[4] = {l->bias[o], l->bias[o1], l->bias[o], l->bias[o1]};
            mac_2x2(scratch + t * step, scratch + t1 * step, l->weight + o * n, n, acc);
            y0[o] = requantize(acc[0], l->requant[o], l->relu);
            y0[o1] = requantize(acc[1], l->requant[o1], l->relu);
            y1[o] = requantize(acc[2], l->requant[o], l->relu);
            y1[o1] = requantize(acc[3], l->requant[o1], l->relu);
        }
    }
}

/* Eigen's packet sum (SSE/NEON, 4 lanes, aligned start), which ORT's ReduceMean uses. */
static float packet_sum(const float *v, int n)
{
    const int aligned2 = n / 8 * 8, aligned = n / 4 * 4;
    float p0[4], res;
    if (aligned == 0) {
        res = v[0];
        for (int i = 1; i < n; i++) {
            res += v[i];
        }
        return res;
    }
    for (int j = 0; j < 4; j++) {
        p0[j] = v[j];
    }
    if (aligned > 4) {
        float p1[4];
        for (int j = 0; j < 4; j++) {
            p1[j] = v[4 + j];
        }
        for (int i = 8; i < aligned2; i += 8) {
            for (int j = 0; j < 4; j++) {
                p0[j] += v[i + j];
                p1[j] += v[i + 4 + j];
            }
        }
        for (int j = 0; j < 4; j++) {
            p0[j] += p1[j];
        }
        if (aligned > aligned2) {
            for (int j = 0; j < 4; j++) {
                p0[j] += v[aligned2 + j];
            }
        }
    }
    res = (p0[0] + p0[2]) + (p0[1] + p0[3]);
    for (int i = aligned; i < n; i++) {
        res += v[i];
    }
    return res;
}

void ge_mean_pool(const int8_t *x, int t_in, int c, float in_scale, float out_scale, int8_t *y)
{
    float column[GE_MAX_POOL_T];
    for (int ch = 0; ch < c; ch++) {
        for (int t = 0; t < t_in; t++) {
            column[t] = (float)x[t * c + ch] * in_scale; /* DequantizeLinear */
        }
        const float mean = packet_sum(column, t_in) / (float)t_in;
        y[ch] = saturate_round(mean / out_scale);
    }
}

void ge_head(const int8_t *x, int k, const ge_head_t *h, int8_t *logits, float *probs)
{
    float a[GE_MAX_HEAD_K];
    for (int i = 0; i < k; i++) {
        a[i] = (float)x[i] * h->in_scale;
    }
    int8_t best = -128;
    for (int n = 0; n < h->n; n++) {
        /* Gemm on dequantised values: MLAS SGEMM's fused multiply-add chain, then the bias
         * ORT quantised to int32 and dequantised again. */
        const int8_t *w = h->weight + n * k;
        float acc = 0.0f;
        for (int i = 0; i < k; i++) {
            acc = fmaf(a[i], (float)w[i] * h->w_scale[n], acc);
        }
        const float bias = (float)h->bias[n] * h->bias_scale[n];
        logits[n] = saturate_round((acc + bias) / h->out_scale);
        if (logits[n] > best) {
            best = logits[n];
        }
    }
    /* Softmax from a table of exp(-d * scale), d = max - logit: no expf on the device. */
    float sum = 0.0f;
    for (int n = 0; n < h->n; n++) {
        probs[n] = h->exp_table[best - logits[n]];
        sum += probs[n];
    }
    for (int n = 0; n < h->n; n++) {
        probs[n] /= sum;
    }
}
