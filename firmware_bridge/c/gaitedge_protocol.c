/* gaitedge wire protocol 1.2: reference encoder. See gaitedge_protocol.h. */
#include "gaitedge_protocol.h"

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v) {
    put_u16(p, (uint16_t)(v & 0xFFFFu));
    put_u16(p + 2, (uint16_t)(v >> 16));
}

/* Two's complement bit pattern, little-endian, without relying on a signed shift. */
static void put_i16(uint8_t *p, int16_t v) { put_u16(p, (uint16_t)v); }

size_t ge_encode_samples(uint8_t *out, size_t out_cap, uint16_t seq, uint32_t timestamp_us,
                         const ge_sample_t *samples, size_t n_samples) {
    size_t len = GE_SAMPLE_HEADER_LEN + GE_SAMPLE_LEN * n_samples;
    size_t i, k;
    if (n_samples < 1u || n_samples > GE_MAX_SAMPLES_PER_FRAME || out_cap < len) {
        return 0;
    }
    out[0] = (uint8_t)(GE_PROTOCOL_MAJOR << 4 | GE_TYPE_SAMPLES);
    put_u16(out + 1, seq);
    put_u32(out + 3, timestamp_us);
    for (i = 0; i < n_samples; i++) {
        uint8_t *p = out + GE_SAMPLE_HEADER_LEN + GE_SAMPLE_LEN * i;
        for (k = 0; k < 3u; k++) {
            put_i16(p + 2u * k, samples[i].acc[k]);
            put_i16(p + 6u + 2u * k, samples[i].gyro[k]);
        }
    }
    return len;
}

/* 1 if m is all GE_MOUNT_UNKNOWN, or each sensor axis once with a rotation's handedness. */
static int mounting_ok(const uint8_t m[3]) {
    unsigned int axis[3], negatives = 0u, i;
    if (m[0] == GE_MOUNT_UNKNOWN && m[1] == GE_MOUNT_UNKNOWN && m[2] == GE_MOUNT_UNKNOWN) {
        return 1;
    }
    for (i = 0; i < 3u; i++) {
        axis[i] = m[i] & 0x7Fu;
        if (axis[i] < GE_MOUNT_X || axis[i] > GE_MOUNT_Z) {
            return 0;
        }
        negatives += (m[i] & GE_MOUNT_NEGATIVE) ? 1u : 0u;
    }
    if (axis[0] == axis[1] || axis[1] == axis[2] || axis[0] == axis[2]) {
        return 0;
    }
    /* det = +1: an even permutation (x y z, y z x, z x y) with an even number of reversed
     * axes, or an odd one with an odd number. */
    return ((axis[1] == axis[0] % 3u + 1u) ? 0u : 1u) == negatives % 2u;
}

size_t ge_encode_device_info(uint8_t *out, size_t out_cap, const ge_device_info_t *info) {
    if (out_cap < GE_DEVICE_INFO_LEN || info->sample_rate_millihz == 0u ||
        info->accel_range_g == 0u || info->gyro_range_dps == 0u || !mounting_ok(info->mounting) ||
        (info->outputs & ~(GE_OUTPUT_RESULTS | GE_OUTPUT_NO_SAMPLES)) != 0u ||
        info->outputs == GE_OUTPUT_NO_SAMPLES) {
        return 0;
    }
    out[0] = (uint8_t)(GE_PROTOCOL_MAJOR << 4 | GE_TYPE_DEVICE_INFO);
    out[1] = (uint8_t)GE_PROTOCOL_MINOR;
    put_u32(out + 2, info->device_id);
    put_u32(out + 6, info->sample_rate_millihz);
    out[10] = info->accel_range_g;
    put_u16(out + 11, info->gyro_range_dps);
    out[13] = info->firmware_major;
    out[14] = info->firmware_minor;
    out[15] = info->mounting[0];
    out[16] = info->mounting[1];
    out[17] = info->mounting[2];
    out[18] = info->outputs;
    return GE_DEVICE_INFO_LEN;
}

size_t ge_encode_result(uint8_t *out, size_t out_cap, const ge_result_t *r) {
    unsigned int fall = r->flags & GE_RESULT_FALL;
    unsigned int confirmed = r->flags & (GE_RESULT_STILLNESS | GE_RESULT_ORIENTATION);
    if (out_cap < GE_RESULT_LEN || (r->flags & 0xF0u) != 0u || (fall == 0u) != (confirmed == 0u) ||
        ((r->flags & GE_RESULT_ACTIVITY_CHANGE) != 0u && r->activity == GE_NO_ACTIVITY)) {
        return 0;
    }
    out[0] = (uint8_t)(GE_PROTOCOL_MAJOR << 4 | GE_TYPE_RESULT);
    put_u16(out + 1, r->seq);
    put_u32(out + 3, r->timestamp_us);
    out[7] = r->activity;
    out[8] = r->activity_p_q8;
    out[9] = r->flags;
    put_u16(out + 10, r->change_p_q16);
    put_u16(out + 12, r->change_lead_ms);
    put_u16(out + 14, r->fall_p_q16);
    put_u16(out + 16, r->fall_lead_ms);
    put_u16(out + 18, r->impact_cg);
    return GE_RESULT_LEN;
}

uint16_t ge_crc16_update(uint16_t crc, const uint8_t *data, size_t len) {
    /* Bitwise rather than a 512-byte table: a few hundred bytes per frame cost little. */
    size_t i;
    int bit;
    for (i = 0; i < len; i++) {
        crc = (uint16_t)(crc ^ (uint16_t)((uint16_t)data[i] << 8));
        for (bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

/* A COBS encoder fed one byte at a time, so the CRC needs no copy of the message. A block is
 * opened lazily: after a full 254-byte block (code 0xFF) no empty block follows unless more
 * data comes, which is the canonical encoding the Python side produces. */
typedef struct {
    uint8_t *out;
    size_t cap;
    size_t pos;
    size_t code_pos;
    uint8_t code;
    uint8_t block_open;
    uint8_t last_block_full;
    uint8_t ok;
} cobs_t;

static void cobs_emit(cobs_t *s, uint8_t b) {
    if (s->pos < s->cap) {
        s->out[s->pos] = b;
    } else {
        s->ok = 0;
    }
    s->pos++;
}

static void cobs_open(cobs_t *s) {
    s->code_pos = s->pos;
    cobs_emit(s, 0); /* placeholder for the code byte */
    s->code = 1;
    s->block_open = 1;
}

static void cobs_close(cobs_t *s, uint8_t full) {
    if (s->code_pos < s->cap) {
        s->out[s->code_pos] = s->code;
    }
    s->block_open = 0;
    s->last_block_full = full;
}

static void cobs_begin(cobs_t *s, uint8_t *out, size_t cap) {
    s->out = out;
    s->cap = cap;
    s->pos = 0;
    s->code_pos = 0;
    s->code = 1;
    s->block_open = 0;
    s->last_block_full = 0;
    s->ok = 1;
}

static void cobs_put(cobs_t *s, uint8_t b) {
    if (!s->block_open) {
        cobs_open(s);
    }
    if (b == 0u) {
        cobs_close(s, 0);
        return;
    }
    cobs_emit(s, b);
    s->code++;
    if (s->code == 0xFFu) {
        cobs_close(s, 1);
    }
}

static size_t cobs_end(cobs_t *s) {
    if (s->block_open) {
        cobs_close(s, 0);
    } else if (!s->last_block_full) {
        /* empty input, or input ending in 0x00: a final empty block */
        cobs_open(s);
        cobs_close(s, 0);
    }
    return s->ok ? s->pos : 0;
}

size_t ge_cobs_encode(uint8_t *out, size_t out_cap, const uint8_t *in, size_t len) {
    cobs_t s;
    size_t i;
    cobs_begin(&s, out, out_cap);
    for (i = 0; i < len; i++) {
        cobs_put(&s, in[i]);
    }
    return cobs_end(&s);
}

size_t ge_serial_packet(uint8_t *out, size_t out_cap, const uint8_t *msg, size_t msg_len) {
    cobs_t s;
    size_t i, n;
    uint16_t crc = ge_crc16_update(0xFFFFu, msg, msg_len);
    if (out_cap < 1u) {
        return 0;
    }
    cobs_begin(&s, out, out_cap - 1u); /* keep room for the delimiter */
    for (i = 0; i < msg_len; i++) {
        cobs_put(&s, msg[i]);
    }
    cobs_put(&s, (uint8_t)(crc & 0xFFu));
    cobs_put(&s, (uint8_t)(crc >> 8));
    n = cobs_end(&s);
    if (n == 0u) {
        return 0;
    }
    out[n] = 0x00u;
    return n + 1u;
}
