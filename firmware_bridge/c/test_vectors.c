/*
 * Check the reference encoder against the golden vectors, byte for byte.
 *
 *     cc -std=c99 -Wall -Wextra -Werror gaitedge_protocol.c test_vectors.c -o test_vectors
 *     ./test_vectors ../vectors/frames.txt
 *
 *     ./test_vectors --cobs < hex_lines     (prints the COBS encoding of each hex line)
 *
 * Reads the "sample", "info" and "result" lines (format in firmware_bridge/golden.py), encodes each
 * from its fields, and compares the message and the serial packet with the hex on the line.
 * "invalid" lines are for decoders and are skipped, and so are "info" lines of another minor
 * version (this encoder speaks only GE_PROTOCOL_MINOR). Prints one line per vector and a
 * summary; exits 0 only if every vector matched and at least one was checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gaitedge_protocol.h"

#define MAX_LINE 8192

static int to_hex(const uint8_t *data, size_t len, char *hex, size_t cap) {
    static const char digits[] = "0123456789abcdef";
    size_t i;
    if (2u * len + 1u > cap) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        hex[2u * i] = digits[data[i] >> 4];
        hex[2u * i + 1u] = digits[data[i] & 0x0Fu];
    }
    hex[2u * len] = '\0';
    return 1;
}

/* The next whitespace-separated token as an integer in [lo, hi]; 0 on a bad or missing one. */
static int next_int(long long lo, long long hi, long long *value) {
    char *end;
    char *tok = strtok(NULL, " \t\r\n");
    if (tok == NULL) {
        return 0;
    }
    *value = strtoll(tok, &end, 10);
    return *end == '\0' && *value >= lo && *value <= hi;
}

static int compare(const char *name, const char *what, const uint8_t *got, size_t len,
                   const char *expected) {
    static char hex[2u * GE_SERIAL_BUFFER_LEN + 1u];
    if (expected == NULL || len == 0u || !to_hex(got, len, hex, sizeof hex)) {
        printf("FAIL %s: %s could not be encoded\n", name, what);
        return 0;
    }
    if (strcmp(hex, expected) != 0) {
        printf("FAIL %s: %s\n  got      %s\n  expected %s\n", name, what, hex, expected);
        return 0;
    }
    return 1;
}

/* A golden-vector mounting field (signed 1-based sensor axis, 0 = unknown) as its wire byte. */
static uint8_t mount_byte(long long axis) {
    return axis < 0 ? (uint8_t)(GE_MOUNT_NEGATIVE | (unsigned int)-axis) : (uint8_t)axis;
}

/* Encode one vector's message from the fields after its name; 0 on a malformed line. Sets
 * *skip for a device info vector of another minor version. */
static size_t encode_line(const char *kind, uint8_t *msg, size_t cap, int *skip) {
    long long v[11];
    size_t i, k;
    if (strcmp(kind, "sample") == 0) {
        static ge_sample_t samples[GE_MAX_SAMPLES_PER_FRAME];
        if (!next_int(0, 0xFFFF, &v[0]) || !next_int(0, 0xFFFFFFFFLL, &v[1]) ||
            !next_int(1, GE_MAX_SAMPLES_PER_FRAME, &v[2])) {
            return 0;
        }
        for (i = 0; i < (size_t)v[2]; i++) {
            for (k = 0; k < 6u; k++) {
                if (!next_int(-32768, 32767, &v[3])) {
                    return 0;
                }
                if (k < 3u) {
                    samples[i].acc[k] = (int16_t)v[3];
                } else {
                    samples[i].gyro[k - 3u] = (int16_t)v[3];
                }
            }
        }
        return ge_encode_samples(msg, cap, (uint16_t)v[0], (uint32_t)v[1], samples, (size_t)v[2]);
    } else if (strcmp(kind, "result") == 0) {
        ge_result_t r;
        static const long long hi[10] = {0xFFFF, 0xFFFFFFFFLL, 255, 255, 255,
                                         0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF};
        for (i = 0; i < 10u; i++) {
            if (!next_int(0, hi[i], &v[i])) {
                return 0;
            }
        }
        r.seq = (uint16_t)v[0];
        r.timestamp_us = (uint32_t)v[1];
        r.activity = (uint8_t)v[2];
        r.activity_p_q8 = (uint8_t)v[3];
        r.flags = (uint8_t)v[4];
        r.change_p_q16 = (uint16_t)v[5];
        r.change_lead_ms = (uint16_t)v[6];
        r.fall_p_q16 = (uint16_t)v[7];
        r.fall_lead_ms = (uint16_t)v[8];
        r.impact_cg = (uint16_t)v[9];
        return ge_encode_result(msg, cap, &r);
    } else {
        ge_device_info_t info;
        static const long long lo[10] = {0, 0, 0, 0, 0, 0, 0, -3, -3, -3};
        static const long long hi[10] = {0xFFFFFFFFLL, 0xFFFFFFFFLL, 255, 0xFFFF, 255, 255, 255,
                                         3, 3, 3};
        for (i = 0; i < 10u; i++) {
            if (!next_int(lo[i], hi[i], &v[i])) {
                return 0;
            }
        }
        if (v[6] != (long long)GE_PROTOCOL_MINOR) {
            *skip = 1; /* this encoder speaks only its own minor version */
            return 0;
        }
        if (!next_int(0, 255, &v[10])) { /* outputs, from 1.2 */
            return 0;
        }
        info.outputs = (uint8_t)v[10];
        info.device_id = (uint32_t)v[0];
        info.sample_rate_millihz = (uint32_t)v[1];
        info.accel_range_g = (uint8_t)v[2];
        info.gyro_range_dps = (uint16_t)v[3];
        info.firmware_major = (uint8_t)v[4];
        info.firmware_minor = (uint8_t)v[5];
        for (i = 0; i < 3u; i++) {
            info.mounting[i] = mount_byte(v[7u + i]);
        }
        return ge_encode_device_info(msg, cap, &info);
    }
}

/* 1 if the vector matched, 0 if not, -1 if it was skipped. */
static int check_line(char *line) {
    static uint8_t msg[GE_MAX_MESSAGE_LEN], pkt[GE_SERIAL_BUFFER_LEN];
    char *kind = strtok(line, " \t\r\n");
    char *name = strtok(NULL, " \t\r\n");
    size_t msg_len, pkt_len;
    int ok, skip = 0;
    msg_len = encode_line(kind, msg, sizeof msg, &skip);
    if (skip) {
        printf("skip %s: another protocol minor version\n", name);
        return -1;
    }
    pkt_len = msg_len ? ge_serial_packet(pkt, sizeof pkt, msg, msg_len) : 0u;
    ok = compare(name, "message", msg, msg_len, strtok(NULL, " \t\r\n"));
    ok = ok && compare(name, "serial packet", pkt, pkt_len, strtok(NULL, " \t\r\n"));
    if (ok) {
        printf("ok %s\n", name);
    }
    return ok;
}

static int self_check(void) {
    static const uint8_t check[] = "123456789";
    uint16_t crc = ge_crc16_update(0xFFFFu, check, 9u);
    if (crc != 0x29B1u) {
        printf("FAIL crc16 check value: got %04x expected 29b1\n", crc);
        return 0;
    }
    return 1;
}

/* For the host's tests: COBS-encode each line of hex on stdin ("-" is the empty input). */
static int cobs_filter(void) {
    static char line[MAX_LINE], hex[MAX_LINE];
    static uint8_t in[MAX_LINE / 2u], out[MAX_LINE / 2u + MAX_LINE / 508u + 2u];
    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t len = strcspn(line, " \t\r\n"), i, n;
        unsigned int byte;
        if (len == 1u && line[0] == '-') {
            len = 0;
        }
        if (len % 2u != 0u) {
            return 2;
        }
        for (i = 0; i < len / 2u; i++) {
            if (sscanf(line + 2u * i, "%2x", &byte) != 1) {
                return 2;
            }
            in[i] = (uint8_t)byte;
        }
        n = ge_cobs_encode(out, sizeof out, in, len / 2u);
        if (n == 0u || !to_hex(out, n, hex, sizeof hex)) {
            return 1;
        }
        printf("%s\n", hex);
    }
    return 0;
}

int main(int argc, char **argv) {
    static char line[MAX_LINE];
    FILE *f;
    int checked = 0, failed = 0, skipped = 0, result;
    if (argc == 2 && strcmp(argv[1], "--cobs") == 0) {
        return cobs_filter();
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s VECTORS_FILE\n", argv[0]);
        return 2;
    }
    f = fopen(argv[1], "r");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    failed += !self_check();
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "sample ", 7) != 0 && strncmp(line, "info ", 5) != 0 &&
            strncmp(line, "result ", 7) != 0) {
            continue;
        }
        result = check_line(line);
        if (result < 0) {
            skipped++;
            continue;
        }
        checked++;
        failed += !result;
    }
    fclose(f);
    printf("checked %d vectors, %d failed, %d skipped\n", checked, failed, skipped);
    return failed == 0 && checked > 0 ? 0 : 1;
}
