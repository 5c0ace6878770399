/*
 * INT8 kernels with ONNX Runtime's CPU arithmetic (export/mcu/graph.py says which ORT step each
 * one mirrors). Activations are time-major ([T][C], channels last) so that a convolution's
 * receptive field is one contiguous run of int8 values.
 */
#include "gaitedge_mcu.h"
#include "gaitedge_nn.h"

#ifdef __FAST_MATH__
#error "gaitedge_nn.c reproduces IEEE rounding step by step: build without -ffast-math"
#endif

#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
#define GE_USE_SMLAD 1
#else
#define GE_USE_SMLAD 0
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

void ge_conv_float(const float *x, int t_in, int c_in, const ge_conv_float_t *l, int8_t *y)
{
    const int t_out = (t_in + 2 * l->pad - l->k) / l->stride + 1;
    for (int t = 0; t < t_out; t++) {
        const int base = t * l->stride - l->pad;
        const int k0 = base < 0 ? -base : 0;
        const int k1 = base + l->k > t_in ? t_in - base : l->k;
        for (int o = 0; o < l->c_out; o++) {
            /* MLAS SGEMM over the im2col matrix: one fused multiply-add per K index, channel
             * major; padded taps add exact zeros and are skipped. */
            const float *w = l->weight + o * c_in * l->k;
            float acc = 0.0f;
            for (int c = 0; c < c_in; c++) {
                for (int kk = k0; kk < k1; kk++) {
                    acc = fmaf(w[c * l->k + kk], x[(base + kk) * c_in + c], acc);
                }
            }
            float v = acc + l->bias[o];
            if (l->relu && v < 0.0f) {
                v = 0.0f;
            }
            y[t * l->c_out + o] = saturate_round(v / l->out_scale);
        }
    }
}

#if GE_USE_SMLAD
/* Two int8 pairs per SMLAD: SXTB16 sign-extends bytes 0 and 2 (or 1 and 3, after a rotate by
 * 8) into halfwords, so a word of four int8 values gives two dual multiply-accumulates. */
static inline uint32_t sxtb16(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(v));
    return r;
}
static inline uint32_t sxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}
static inline int32_t smlad(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
static inline uint32_t load32(const int8_t *p)
{
    uint32_t v;
    __builtin_memcpy(&v, p, 4); /* unaligned word loads are allowed on the M4 */
    return v;
}
#endif

/* Exact int8 dot products of x with two weight rows at once (the order of an int32 sum does not
 * matter): each loaded and sign-extended input word serves both rows. */
static void dot2_int8(const int8_t *x, const int8_t *w0, const int8_t *w1, int n, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1];
    int i = 0;
#if GE_USE_SMLAD
    for (; i + 4 <= n; i += 4) {
        const uint32_t vx = load32(x + i), v0 = load32(w0 + i), v1 = load32(w1 + i);
        const uint32_t xe = sxtb16(vx), xo = sxtb16_ror8(vx);
        a0 = smlad(xe, sxtb16(v0), a0);
        a0 = smlad(xo, sxtb16_ror8(v0), a0);
        a1 = smlad(xe, sxtb16(v1), a1);
        a1 = smlad(xo, sxtb16_ror8(v1), a1);
    }
#endif
    for (; i < n; i++) {
        a0 += (int32_t)x[i] * (int32_t)w0[i];
        a1 += (int32_t)x[i] * (int32_t)w1[i];
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* QLinearConv's output: float(acc) * scale, rounded and saturated, then the fused Relu. */
static int8_t requantize(int32_t acc, float scale, int relu)
{
    const int8_t q = saturate_round((float)acc * scale);
    return relu && q < 0 ? 0 : q;
}

void ge_conv_int8(const int8_t *x, int t_in, int c_in, const ge_conv_int8_t *l, int8_t *y)
{
    const int t_out = (t_in + 2 * l->pad - l->k) / l->stride + 1;
    for (int t = 0; t < t_out; t++) {
        const int base = t * l->stride - l->pad;
        const int k0 = base < 0 ? -base : 0;
        const int k1 = base + l->k > t_in ? t_in - base : l->k;
        const int8_t *xs = x + (base + k0) * c_in; /* the receptive field, contiguous */
        const int n = (k1 - k0) * c_in;
        int8_t *out = y + t * l->c_out;
        for (int o = 0; o < l->c_out; o += 2) {
            /* an odd last channel pairs with itself */
            const int o1 = o + 1 < l->c_out ? o + 1 : o;
            const int8_t *w0 = l->weight + (o * l->k + k0) * c_in;
            const int8_t *w1 = l->weight + (o1 * l->k + k0) * c_in;
            int32_t acc[2] = {l->bias[o], l->bias[o1]};
            dot2_int8(xs, w0, w1, n, acc);
            out[o] = requantize(acc[0], l->requant[o], l->relu);
            out[o1] = requantize(acc[1], l->requant[o1], l->relu);
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
