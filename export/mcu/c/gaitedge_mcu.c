/*
 * The one entry point: samples in, decisions out.
 *
 *   sample at GE_ODR_HZ
 *     -> anti-aliasing low-pass and decimation to GE_RATE_HZ (linear interpolation at a fixed
 *        phase: the Python chain's resampler on a device's exact sample grid)
 *     -> low-pass (Butterworth SOS) -> gravity split -> mounting rotation
 *     -> channel selection, normalisation -> window buffer, every GE_HOP samples
 *     -> network (gaitedge_net.c) -> activity k-of-n vote, fall confirmation
 *
 * Mirrors gaitedge/preprocess.py and gaitedge/alerts.py; times are chain sample counts.
 */
#include <string.h>

#include "gaitedge_mcu.h"
#include "gaitedge_nn.h"

typedef struct {
    float zi[GE_MAX_SECTIONS][2];
} sos_state_t;

/* The gravity low-pass has its poles close to 1 (0.3 Hz at 50 Hz): single precision leaves
 * ~1e-4 of the normalised output in its state, so it runs in double (software on an M4F: three
 * channels, a few thousand instructions per hop). */
typedef struct {
    double zi[GE_GRAV_SECTIONS][2];
} sos_state_d_t;

/* scipy.signal.sosfilt's transposed direct form II, one sample. */
static float sos_step(const float (*sos)[6], int sections, sos_state_t *st, float x)
{
    for (int s = 0; s < sections; s++) {
        const float y = sos[s][0] * x + st->zi[s][0];
        st->zi[s][0] = sos[s][1] * x - sos[s][4] * y + st->zi[s][1];
        st->zi[s][1] = sos[s][2] * x - sos[s][5] * y;
        x = y;
    }
    return x;
}

/* Steady state for a constant input x0 (scipy.signal.sosfilt_zi scaled by x0). */
static void sos_start(const float (*zi_unit)[2], int sections, sos_state_t *st, float x0)
{
    for (int s = 0; s < sections; s++) {
        st->zi[s][0] = zi_unit[s][0] * x0;
        st->zi[s][1] = zi_unit[s][1] * x0;
    }
}

static float sos_step_d(const double (*sos)[6], int sections, sos_state_d_t *st, float in)
{
    double x = (double)in;
    for (int s = 0; s < sections; s++) {
        const double y = sos[s][0] * x + st->zi[s][0];
        st->zi[s][0] = sos[s][1] * x - sos[s][4] * y + st->zi[s][1];
        st->zi[s][1] = sos[s][2] * x - sos[s][5] * y;
        x = y;
    }
    return (float)x;
}

static void sos_start_d(const double (*zi_unit)[2], int sections, sos_state_d_t *st, float x0)
{
    for (int s = 0; s < sections; s++) {
        st->zi[s][0] = zi_unit[s][0] * (double)x0;
        st->zi[s][1] = zi_unit[s][1] * (double)x0;
    }
}

static struct {
    float mounting[9];
    /* decimation */
    sos_state_t aa[6];
    uint32_t n_in;    /* input samples in this segment */
    uint32_t next_in; /* input index at which the next chain sample is due */
    float prev[6];    /* the previous (anti-aliased) input sample */
    /* chain */
    sos_state_t lp[6];
    sos_state_d_t grav[3];
    uint32_t n_out; /* chain samples in this segment */
    uint32_t t;     /* chain samples since ge_init (the stream clock) */
    float window[GE_WINDOW][GE_CHANNELS];
    int filled;
    /* activity vote: the last GE_ACT_N - 1 windows */
    int8_t votes[GE_ACT_N];
    float centre[GE_ACT_N];
    float vote_p[GE_ACT_N];
    int n_votes;
    int current;
#if GE_HAS_FALL
    /* fall: acc and gravity (g, body frame) of the last GE_FALL_HISTORY_N chain samples */
    float acc_g[GE_FALL_HISTORY_N][3];
    float grav_g[GE_FALL_HISTORY_N][3];
    uint32_t seg_start; /* stream clock at the segment's first chain sample */
    uint32_t seen;      /* stream clock one past the newest sample the rules have seen */
    int pending;
    uint32_t imp_t;
    float imp_peak, imp_p;
    float imp_gravity[3];
    int alerted;
    uint32_t last_alert;
#endif
} st;

void ge_set_mounting(const float body_from_sensor[9])
{
    memcpy(st.mounting, body_from_sensor, sizeof st.mounting);
}

void ge_new_segment(void)
{
    st.n_in = 0;
    st.next_in = GE_INTERP_FIRST;
    st.n_out = 0;
    st.filled = 0;
#if GE_HAS_FALL
    st.seg_start = st.t;
    st.seen = st.t;
    st.pending = 0;
#endif
}

void ge_init(void)
{
    memset(&st, 0, sizeof st);
    ge_set_mounting(ge_default_mounting);
    st.current = -1;
    ge_new_segment();
}

const float *ge_last_window(void)
{
    return &st.window[0][0];
}

static void rotate(const float *r, const float *v, float *out)
{
    for (int i = 0; i < 3; i++) {
        out[i] = r[3 * i] * v[0] + r[3 * i + 1] * v[1] + r[3 * i + 2] * v[2];
    }
}

#if GE_HAS_FALL
static float *hist(float (*ring)[3], uint32_t t)
{
    return ring[t % GE_FALL_HISTORY_N];
}
#endif

/* One chain sample (sensor frame, at GE_RATE_HZ) -> features appended to the window. */
static void chain_sample(const float x[6])
{
    float lp[6], grav_s[3];
    if (st.n_out == 0) {
        for (int i = 0; i < 6; i++) {
            sos_start(ge_lp_zi, GE_LP_SECTIONS, &st.lp[i], x[i]);
        }
    }
    for (int i = 0; i < 6; i++) {
        lp[i] = sos_step(ge_lp_sos, GE_LP_SECTIONS, &st.lp[i], x[i]);
    }
    if (st.n_out == 0) {
        for (int i = 0; i < 3; i++) {
            sos_start_d(ge_grav_zi, GE_GRAV_SECTIONS, &st.grav[i], lp[i]);
        }
    }
    for (int i = 0; i < 3; i++) {
        grav_s[i] = sos_step_d(ge_grav_sos, GE_GRAV_SECTIONS, &st.grav[i], lp[i]);
    }
    /* Filters are linear and equal on every axis: rotating their output is rotating input. */
    float all[GE_N_SOURCES];
    rotate(st.mounting, lp, all + 0);          /* acc */
    rotate(st.mounting, grav_s, all + 6);      /* gravity */
    rotate(st.mounting, lp + 3, all + 9);      /* gyro */
    for (int i = 0; i < 3; i++) {
        all[3 + i] = all[i] - all[6 + i];      /* body acc */
    }
    all[12] = sqrtf(all[0] * all[0] + all[1] * all[1] + all[2] * all[2]);
    all[13] = sqrtf(all[9] * all[9] + all[10] * all[10] + all[11] * all[11]);
#if GE_HAS_FALL
    for (int i = 0; i < 3; i++) {
        hist(st.acc_g, st.t)[i] = all[i] / GE_STANDARD_GRAVITY;
        hist(st.grav_g, st.t)[i] = all[6 + i] / GE_STANDARD_GRAVITY;
    }
#endif
    if (st.filled == GE_WINDOW) { /* the previous window was classified: slide by one hop */
        memmove(st.window[0], st.window[GE_HOP], sizeof(float) * GE_CHANNELS * (GE_WINDOW - GE_HOP));
        st.filled = GE_WINDOW - GE_HOP;
    }
    for (int c = 0; c < GE_CHANNELS; c++) {
        st.window[st.filled][c] = (all[ge_channel_source[c]] - ge_norm_mean[c]) * ge_norm_inv_std[c];
    }
    st.filled++;
    st.n_out++;
    st.t++;
}

/* Input sample -> 0 or 1 chain samples (1 when the decimation grid point is reached). */
static int decimate(const float imu[6], float out[6])
{
    float x[6];
    for (int i = 0; i < 6; i++) {
        x[i] = imu[i];
    }
#if GE_ANTIALIAS
    if (st.n_in == 0) {
        for (int i = 0; i < 6; i++) {
            sos_start(ge_aa_zi, GE_AA_SECTIONS, &st.aa[i], x[i]);
        }
    }
    for (int i = 0; i < 6; i++) {
        x[i] = sos_step(ge_aa_sos, GE_AA_SECTIONS, &st.aa[i], x[i]);
    }
#endif
    int due = st.n_in == st.next_in;
    if (due) {
        for (int i = 0; i < 6; i++) {
#if GE_INTERP_LAGGED /* the grid point lies GE_INTERP_FRAC past the previous sample */
            out[i] = st.prev[i] + GE_INTERP_FRAC * (x[i] - st.prev[i]);
#else /* the grid point is this sample */
            out[i] = x[i];
#endif
        }
        st.next_in += GE_DECIMATION;
    }
    memcpy(st.prev, x, sizeof st.prev);
    st.n_in++;
    return due;
}

#if GE_HAS_ACTIVITY
/* k-of-n vote (gaitedge.alerts.ActivitySmoother). */
static void vote(const float *probs, uint32_t t_end, ge_decision_t *out)
{
    int best = 0;
    for (int i = 1; i < GE_N_ACTIVITY; i++) {
        if (probs[i] > probs[best]) {
            best = i;
        }
    }
    if (st.n_votes == GE_ACT_N) {
        memmove(st.votes, st.votes + 1, GE_ACT_N - 1);
        memmove(st.centre, st.centre + 1, sizeof(float) * (GE_ACT_N - 1));
        memmove(st.vote_p, st.vote_p + 1, sizeof(float) * (GE_ACT_N - 1));
        st.n_votes--;
    }
    const int own = probs[best] >= GE_ACT_MIN_PROB ? best : -1;
    st.votes[st.n_votes] = (int8_t)own;
    st.centre[st.n_votes] = (float)t_end - (float)(GE_WINDOW - 1) / 2.0f;
    st.vote_p[st.n_votes] = own >= 0 ? probs[own] : 0.0f;
    st.n_votes++;
    out->activity = (uint8_t)best;
    out->activity_change = -1;
    if (own < 0 || own == st.current) {
        return;
    }
    int count = 0, first = -1;
    float p = 0.0f;
    for (int i = 0; i < st.n_votes; i++) {
        if (st.votes[i] == own) {
            first = first < 0 ? i : first;
            count++;
            p += st.vote_p[i];
        }
    }
    if (count >= GE_ACT_K) {
        st.current = own;
        out->activity_change = (int8_t)own;
        out->activity_t_event = st.centre[first];
        out->activity_p = p / (float)count;
    }
}
#endif

#if GE_HAS_FALL
/* Impact + confirmation (gaitedge.alerts.FallDetector), on the samples this window added. */
static void fall_rules(float p_fall, uint32_t t_end, ge_decision_t *out)
{
    const uint32_t t_start = t_end + 1 - GE_WINDOW;
    const uint32_t first = st.seen > t_start ? st.seen : t_start;
    uint32_t t_peak = first;
    float peak = -1.0f;
    for (uint32_t t = first; t <= t_end; t++) {
        const float *a = hist(st.acc_g, t);
        const float m = sqrtf(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
        if (m > peak) {
            peak = m;
            t_peak = t;
        }
    }
    st.seen = t_end + 1;
    out->fall = 0;
    const int refractory = st.alerted && t_peak < st.last_alert + GE_FALL_REFRACTORY_N;
    if (peak >= GE_FALL_IMPACT_G && !refractory) {
        if (!st.pending) {
            /* gravity GE_FALL_PRE_N samples before the impact, or the segment's first */
            uint32_t j = t_peak >= st.seg_start + GE_FALL_PRE_N ? t_peak - GE_FALL_PRE_N : st.seg_start;
            const float *g = hist(st.grav_g, j);
            float norm = sqrtf(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]);
            norm = norm > 1e-9f ? norm : 1e-9f;
            for (int i = 0; i < 3; i++) {
                st.imp_gravity[i] = g[i] / norm;
            }
            st.pending = 1;
            st.imp_t = t_peak;
            st.imp_peak = peak;
            st.imp_p = p_fall;
        } else if (peak > st.imp_peak) { /* a harder hit: the fall's real impact */
            st.imp_t = t_peak;
            st.imp_peak = peak;
        }
    }
    if (!st.pending) {
        return;
    }
    if (st.imp_t >= t_start && p_fall > st.imp_p) {
        st.imp_p = p_fall;
    }
    if (t_end > st.imp_t + GE_FALL_CONFIRM_N) {
        st.pending = 0;
        return;
    }
    if (t_end < st.imp_t + GE_FALL_SETTLE_STILL_N || st.imp_p < GE_FALL_PROB) {
        return;
    }
    float mean[3] = {0.0f, 0.0f, 0.0f}, sq[3] = {0.0f, 0.0f, 0.0f};
    for (uint32_t t = t_end + 1 - GE_FALL_STILL_N; t <= t_end; t++) {
        const float *a = hist(st.acc_g, t);
        for (int i = 0; i < 3; i++) {
            mean[i] += a[i];
        }
    }
    for (int i = 0; i < 3; i++) {
        mean[i] /= (float)GE_FALL_STILL_N;
    }
    for (uint32_t t = t_end + 1 - GE_FALL_STILL_N; t <= t_end; t++) {
        const float *a = hist(st.acc_g, t);
        for (int i = 0; i < 3; i++) {
            sq[i] += (a[i] - mean[i]) * (a[i] - mean[i]);
        }
    }
    int held = 0, n_held = 0;
    if (GE_FALL_USE_STILLNESS &&
        sqrtf((sq[0] + sq[1] + sq[2]) / (float)GE_FALL_STILL_N) < GE_FALL_STILLNESS_G) {
        held |= 1;
        n_held++;
    }
    if (GE_FALL_USE_ORIENTATION) {
        float norm = sqrtf(mean[0] * mean[0] + mean[1] * mean[1] + mean[2] * mean[2]);
        norm = norm > 1e-9f ? norm : 1e-9f;
        const float cosine = (mean[0] * st.imp_gravity[0] + mean[1] * st.imp_gravity[1] +
                              mean[2] * st.imp_gravity[2]) / norm;
        if (cosine < GE_FALL_ORIENTATION_COS) {
            held |= 2;
            n_held++;
        }
    }
    if (!held || (GE_FALL_REQUIRE_ALL && n_held < GE_FALL_USE_STILLNESS + GE_FALL_USE_ORIENTATION)) {
        return;
    }
    st.pending = 0;
    st.alerted = 1;
    st.last_alert = t_end;
    out->fall = 1;
    out->fall_confirmed_by = (uint8_t)held;
    out->fall_t_event = st.imp_t;
    out->fall_p = st.imp_p;
    out->fall_impact_g = st.imp_peak;
}
#endif

int ge_push(const float imu[6], ge_decision_t *out)
{
    float x[6];
    if (!decimate(imu, x)) {
        return 0;
    }
    chain_sample(x);
    if (st.n_out < GE_WINDOW || (st.n_out - GE_WINDOW) % GE_HOP != 0) {
        return 0;
    }
    memset(out, 0, sizeof *out);
    out->t_end = st.t - 1;
    ge_net_run(&st.window[0][0], out->logits, out->probs);
#if GE_HAS_ACTIVITY
    vote(out->probs + GE_HEAD_ACTIVITY, out->t_end, out);
#else
    out->activity_change = -1;
#endif
#if GE_HAS_FALL
    fall_rules(out->probs[GE_HEAD_FALL + GE_FALL_CLASS], out->t_end, out);
#endif
    return 1;
}
