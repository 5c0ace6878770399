/*
 * gaitedge wire protocol 1.2: reference encoder for firmware (C99, no allocation, no
 * dependencies beyond <stdint.h> and <stddef.h>). Copy this file and gaitedge_protocol.c.
 *
 * The specification is firmware_bridge/PROTOCOL.md; firmware_bridge/protocol.py is the host's
 * decoder, and firmware_bridge/vectors/frames.txt pins the bytes both must agree on.
 *
 * Typical use, per frame:
 *
 *     uint8_t msg[GE_MAX_MESSAGE_LEN], pkt[GE_SERIAL_BUFFER_LEN];
 *     size_t n = ge_encode_samples(msg, sizeof msg, seq++, now_us, samples, count);
 *     ble_notify(msg, n);                                          // BLE: the message as is
 *     uart_write(pkt, ge_serial_packet(pkt, sizeof pkt, msg, n));  // serial: COBS + CRC + 0x00
 *
 * A device that decides on its own (1.2) sends a result frame per window with
 * ge_encode_result(), declares GE_OUTPUT_RESULTS in its device info and may turn raw streaming
 * off (GE_OUTPUT_NO_SAMPLES).
 *
 * Every function returns the number of bytes written, or 0 when the output buffer is too small
 * or an argument is out of range (nothing useful is written then).
 */
#ifndef GAITEDGE_PROTOCOL_H
#define GAITEDGE_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

/* A host accepts messages of its own major version only; see PROTOCOL.md, "Versioning". */
#define GE_PROTOCOL_MAJOR 1u
/* 1.1 appended the mounting to device info; 1.2 added the result frame and the outputs byte */
#define GE_PROTOCOL_MINOR 2u

/* The header byte of every message is (GE_PROTOCOL_MAJOR << 4) | type. */
#define GE_TYPE_SAMPLES 1u
#define GE_TYPE_DEVICE_INFO 2u
#define GE_TYPE_RESULT 3u /* from 1.2 */

/* Sample frame: u8 header, u16 seq, u32 timestamp_us, then 12 bytes per sample. */
#define GE_SAMPLE_HEADER_LEN 7u
#define GE_SAMPLE_LEN 12u
/* 20 samples keep message + CRC at 249 <= 254 bytes, so COBS adds exactly one byte. */
#define GE_MAX_SAMPLES_PER_FRAME 20u
#define GE_MAX_MESSAGE_LEN (GE_SAMPLE_HEADER_LEN + GE_SAMPLE_LEN * GE_MAX_SAMPLES_PER_FRAME)
/* Device info as this encoder writes it (1.2); 1.0 was the first 15 bytes, 1.1 the first 18. */
#define GE_DEVICE_INFO_LEN 19u
/* Result frame (1.2): 20 bytes, so it fits a notification at the default ATT MTU. */
#define GE_RESULT_LEN 20u
#define GE_CRC_LEN 2u
/* COBS-encoded packet without its delimiter, and a buffer that holds one with it. */
#define GE_MAX_SERIAL_PACKET_LEN (GE_MAX_MESSAGE_LEN + GE_CRC_LEN + 1u)
#define GE_SERIAL_BUFFER_LEN (GE_MAX_SERIAL_PACKET_LEN + 1u)
/* A BLE notification of (ATT MTU - 3) bytes carries this many samples (capped at 20). */
#define GE_SAMPLES_PER_NOTIFICATION(att_mtu) \
    (((att_mtu) - 3u - GE_SAMPLE_HEADER_LEN) / GE_SAMPLE_LEN > GE_MAX_SAMPLES_PER_FRAME \
         ? GE_MAX_SAMPLES_PER_FRAME                                                     \
         : ((att_mtu) - 3u - GE_SAMPLE_HEADER_LEN) / GE_SAMPLE_LEN)

/* One IMU sample in raw counts; 32768 counts are the configured full-scale range. */
typedef struct {
    int16_t acc[3];  /* x, y, z */
    int16_t gyro[3]; /* x, y, z */
} ge_sample_t;

/* One mounting byte per body axis (x up, y along the walking direction, z = x cross y): the
 * sensor axis it reads, ORed with GE_MOUNT_NEGATIVE when reversed. A sensor worn with body
 * x = -sensor y, body y = sensor x, body z = sensor z (the axis map "-y,x,z") declares
 * {GE_MOUNT_NEGATIVE | GE_MOUNT_Y, GE_MOUNT_X, GE_MOUNT_Z}. All three GE_MOUNT_UNKNOWN (what a
 * zero-initialised struct holds) means not declared: the host estimates the mounting. */
#define GE_MOUNT_UNKNOWN 0u
#define GE_MOUNT_X 1u
#define GE_MOUNT_Y 2u
#define GE_MOUNT_Z 3u
#define GE_MOUNT_NEGATIVE 0x80u

/* Device info outputs (1.2): what the device sends. 0 (zero-initialised) = samples only, as
 * every 1.0/1.1 device; GE_OUTPUT_NO_SAMPLES needs GE_OUTPUT_RESULTS. */
#define GE_OUTPUT_RESULTS 0x01u
#define GE_OUTPUT_NO_SAMPLES 0x02u

typedef struct {
    uint32_t device_id;
    uint32_t sample_rate_millihz; /* 100 Hz -> 100000; must be > 0 */
    uint8_t accel_range_g;        /* full scale, e.g. 16 for +-16 g; must be > 0 */
    uint16_t gyro_range_dps;      /* full scale, e.g. 2000 for +-2000 deg/s; must be > 0 */
    uint8_t firmware_major;
    uint8_t firmware_minor;
    /* Body x, y, z; a proper rotation (each axis once, not mirrored) or all GE_MOUNT_UNKNOWN. */
    uint8_t mounting[3];
    uint8_t outputs; /* GE_OUTPUT_* */
} ge_device_info_t;

/* Result frame flags. A fall carries at least one confirmation; only a fall carries one. */
#define GE_RESULT_ACTIVITY_CHANGE 0x01u /* the window's activity became the current one */
#define GE_RESULT_FALL 0x02u            /* a fall was confirmed at this window's end */
#define GE_RESULT_STILLNESS 0x04u       /* ... by post-impact stillness */
#define GE_RESULT_ORIENTATION 0x08u     /* ... by an orientation change */
#define GE_NO_ACTIVITY 0xFFu            /* activity: the model has no activity head */

/* The device's decision for one window, in wire units (PROTOCOL.md, "Result frame"). */
typedef struct {
    uint16_t seq;            /* +1 per result frame (its own counter), wraps */
    uint32_t timestamp_us;   /* device clock at the window's last sample */
    uint8_t activity;        /* the window's arg-max activity class, or GE_NO_ACTIVITY */
    uint8_t activity_p_q8;   /* its probability in 1/255 */
    uint8_t flags;           /* GE_RESULT_* */
    uint16_t change_p_q16;   /* change: mean probability of the winning votes, 1/65535 */
    uint16_t change_lead_ms; /* change: decision time - the change's estimated start */
    uint16_t fall_p_q16;     /* fall: highest fall probability of the impact's windows */
    uint16_t fall_lead_ms;   /* fall: decision time - the impact */
    uint16_t impact_cg;      /* fall: peak |a| of the impact in 0.01 g */
} ge_result_t;

/* A sample frame of 1..GE_MAX_SAMPLES_PER_FRAME samples; timestamp_us is the first sample's. */
size_t ge_encode_samples(uint8_t *out, size_t out_cap, uint16_t seq, uint32_t timestamp_us,
                         const ge_sample_t *samples, size_t n_samples);

/* The device info message (GE_DEVICE_INFO_LEN bytes); 0 also for a mounting that is neither
 * unknown nor a proper rotation, or outputs that send nothing. */
size_t ge_encode_device_info(uint8_t *out, size_t out_cap, const ge_device_info_t *info);

/* A result frame (GE_RESULT_LEN bytes); 0 for flags a host would refuse (reserved bits, a fall
 * without a confirmation, a change without an activity). */
size_t ge_encode_result(uint8_t *out, size_t out_cap, const ge_result_t *result);

/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR; "123456789" ->
 * 0x29B1. Pass 0xFFFF as crc to start; feed the result back in to continue over more data. */
uint16_t ge_crc16_update(uint16_t crc, const uint8_t *data, size_t len);

/* COBS-encode len bytes (canonical form; no 0x00 in the output, no delimiter appended). */
size_t ge_cobs_encode(uint8_t *out, size_t out_cap, const uint8_t *in, size_t len);

/* A serial packet: COBS(message + CRC little-endian) + 0x00. GE_SERIAL_BUFFER_LEN always fits. */
size_t ge_serial_packet(uint8_t *out, size_t out_cap, const uint8_t *msg, size_t msg_len);

#endif /* GAITEDGE_PROTOCOL_H */
