/*
 * gaitedge reference application: the on-device path from IMU samples to protocol frames.
 *
 * Every sample goes through ge_push() (the bundle's chain, INT8 network and fall rules); each
 * decision is sent as a result frame (protocol 1.2), and, unless the board turned raw streaming
 * off, the samples are sent too, batched in sample frames, so a host can shadow the device.
 * Device info is sent first and then once per second of samples. The board (board.h) provides
 * the IMU, the link and the clock.
 */
#include <stdint.h>

#include "board.h"
#include "gaitedge_mcu.h"
#include "gaitedge_protocol.h"

/* Rates in mHz, exact for the rates the generator accepts. */
#define ODR_MILLIHZ ((uint32_t)(GE_ODR_HZ * 1000.0f + 0.5f))
#define RATE_MILLIHZ ((uint32_t)(GE_RATE_HZ * 1000.0f + 0.5f))

static uint8_t msg[GE_MAX_MESSAGE_LEN];

static uint16_t q16(float p)
{
    float v = p * 65535.0f + 0.5f;
    return v <= 0.0f ? 0u : v >= 65535.0f ? 65535u : (uint16_t)v;
}

static uint16_t ms_u16(float ms)
{
    float v = ms + 0.5f;
    return v <= 0.0f ? 0u : v >= 65535.0f ? 65535u : (uint16_t)v;
}

/* Chain samples (GE_RATE_HZ) as device microseconds. */
static uint32_t chain_us(uint32_t chain_samples)
{
    return (uint32_t)((uint64_t)chain_samples * 1000000000u / RATE_MILLIHZ);
}

/* A decision of ge_push() in the result frame's wire units. */
static void to_result(const ge_decision_t *d, uint32_t t0_us, uint16_t seq, ge_result_t *r)
{
    const float ms_per_sample = 1000.0f / GE_RATE_HZ;
    r->seq = seq;
    r->timestamp_us = t0_us + chain_us(d->t_end);
    r->activity = GE_NO_ACTIVITY;
    r->activity_p_q8 = 0;
    r->flags = 0;
    r->change_p_q16 = r->change_lead_ms = 0;
    r->fall_p_q16 = r->fall_lead_ms = r->impact_cg = 0;
#if GE_HAS_ACTIVITY
    r->activity = d->activity;
    r->activity_p_q8 = (uint8_t)(q16(d->probs[GE_HEAD_ACTIVITY + d->activity]) >> 8);
    if (d->activity_change >= 0) {
        r->flags |= GE_RESULT_ACTIVITY_CHANGE;
        r->change_p_q16 = q16(d->activity_p);
        r->change_lead_ms = ms_u16(((float)d->t_end - d->activity_t_event) * ms_per_sample);
    }
#endif
    if (d->fall) {
        r->flags |= GE_RESULT_FALL;
        r->flags |= (d->fall_confirmed_by & 1u) ? GE_RESULT_STILLNESS : 0u;
        r->flags |= (d->fall_confirmed_by & 2u) ? GE_RESULT_ORIENTATION : 0u;
        r->fall_p_q16 = q16(d->fall_p);
        r->fall_lead_ms = ms_u16((float)(d->t_end - d->fall_t_event) * ms_per_sample);
        r->impact_cg = ms_u16(d->fall_impact_g * 100.0f);
    }
}

/* Raw counts in SI units, as the host's firmware_bridge.convert computes them. */
static void to_si(const ge_sample_t *s, const ge_device_info_t *info, float imu[6])
{
    const float acc = (float)info->accel_range_g * GE_STANDARD_GRAVITY / 32768.0f;
    const float gyro = (float)info->gyro_range_dps * (3.14159265358979f / 180.0f) / 32768.0f;
    for (int k = 0; k < 3; k++) {
        imu[k] = (float)s->acc[k] * acc;
        imu[3 + k] = (float)s->gyro[k] * gyro;
    }
}

/* body = R * sensor from the declared mounting bytes (identity when none is declared). */
static void set_mounting(const uint8_t m[3])
{
    float r[9] = {1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f};
    if (m[0] != GE_MOUNT_UNKNOWN) {
        for (int row = 0; row < 3; row++) {
            for (int col = 0; col < 3; col++) {
                r[3 * row + col] = 0.0f;
            }
            const int axis = (int)(m[row] & 0x03u) - 1;
            r[3 * row + axis] = (m[row] & GE_MOUNT_NEGATIVE) ? -1.0f : 1.0f;
        }
    }
    ge_set_mounting(r);
}

static void send_info(const ge_device_info_t *info)
{
    size_t n = ge_encode_device_info(msg, sizeof msg, info);
    if (n) {
        board_send(msg, n);
    }
}

int main(void)
{
    static ge_sample_t frame[GE_MAX_SAMPLES_PER_FRAME];
    board_config_t cfg = {0};
    ge_decision_t d;
    ge_result_t r;
    ge_sample_t s;
    uint32_t t_us, t0_us = 0, frame_t_us = 0, samples = 0, frames = 0, results = 0;
    uint16_t frame_seq = 0, result_seq = 0;
    size_t in_frame = 0;
    if (!board_init(&cfg)) {
        return 1;
    }
    cfg.info.sample_rate_millihz = ODR_MILLIHZ;
    const int raw = !(cfg.info.outputs & GE_OUTPUT_NO_SAMPLES);
    const size_t per_frame = cfg.samples_per_frame;
    ge_init();
    set_mounting(cfg.info.mounting);
    send_info(&cfg.info);
    while (board_imu_read(&s, &t_us)) {
        float imu[6];
        if (samples == 0u) {
            t0_us = t_us;
        } else if (samples % (ODR_MILLIHZ / 1000u) == 0u) {
            send_info(&cfg.info); /* at least once per second (PROTOCOL.md, serial) */
        }
        samples++;
        if (raw) {
            if (in_frame == 0u) {
                frame_t_us = t_us;
            }
            frame[in_frame++] = s;
            if (in_frame == per_frame) {
                board_send(msg, ge_encode_samples(msg, sizeof msg, frame_seq++, frame_t_us, frame,
                                                  in_frame));
                in_frame = 0;
                frames++;
            }
        }
        to_si(&s, &cfg.info, imu);
        if (ge_push(imu, &d) && (cfg.info.outputs & GE_OUTPUT_RESULTS)) {
            to_result(&d, t0_us, result_seq++, &r);
            board_send(msg, ge_encode_result(msg, sizeof msg, &r));
            results++;
        }
    }
    if (in_frame) {
        board_send(msg, ge_encode_samples(msg, sizeof msg, frame_seq, frame_t_us, frame, in_frame));
        frames++;
    }
    board_done(samples, frames, results);
    return 0;
}
