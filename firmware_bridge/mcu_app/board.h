/*
 * The porting surface of the reference application: what a board provides so that app.c runs
 * gaitedge on it. Four functions; everything else (the chain, the INT8 network, the fall rules,
 * the wire protocol) is portable C99.
 *
 * board_mps2_an386.c implements them for QEMU's mps2-an386 (Cortex-M4): the IMU is a recording
 * read through semihosting, the link is the CMSDK UART. A wearable implements them with its IMU
 * driver (data-ready interrupt or FIFO), its UART or BLE stack, and a microsecond timer.
 */
#ifndef GAITEDGE_BOARD_H
#define GAITEDGE_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "gaitedge_protocol.h"

/* What the board tells the application once, at start. */
typedef struct {
    ge_device_info_t info;     /* device id, sensor ranges, mounting, outputs (GE_OUTPUT_*) */
    uint8_t samples_per_frame; /* raw samples per sample frame, 1..GE_MAX_SAMPLES_PER_FRAME */
} board_config_t;

/* Bring the board up and describe it; 0 on failure. info.sample_rate_millihz is filled in
 * by the application (the generated library's fixed ODR). */
int board_init(board_config_t *cfg);

/* The next IMU sample in raw counts at the library's ODR (blocking until it is due); its time
 * on the device clock in *t_us. Returns 0 when there are no more samples. */
int board_imu_read(ge_sample_t *counts, uint32_t *t_us);

/* Send one protocol message (a UART board wraps it as a serial packet, a BLE board notifies
 * it as is). */
void board_send(const uint8_t *msg, size_t len);

/* Nothing left to do (a recording ended): report what was sent and wait. */
void board_done(uint32_t samples, uint32_t sample_frames, uint32_t results);

#endif
