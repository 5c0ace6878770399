/*
 * board.h for QEMU's mps2-an386 (Cortex-M4): the link is the CMSDK APB UART0 (QEMU puts it on a
 * pseudo-terminal with -serial pty), the IMU is a recording read through semihosting, and the
 * clock is the sample counter (QEMU keeps no real time: each sample is stamped i / ODR).
 *
 * The recording ("imu.bin" in QEMU's working directory, written by
 * firmware_bridge/firmware_loop.py): a 16-byte header, then int16 counts [N][6]:
 *
 *     u32 magic "GEI2", u32 device_id, u16 gyro_range_dps, u8 accel_range_g, u8 outputs,
 *     u8 mounting[3] (the device info bytes), u8 samples_per_frame
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "gaitedge_mcu.h"

/* CMSDK APB UART0 of the MPS2 boards. */
#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x000u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x004u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x008u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x010u))
#define UART_STATE_TX_FULL 0x1u
#define UART_CTRL_TX_EN 0x1u

enum { SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_WRITE = 0x05, SYS_READ = 0x06, SYS_EXIT = 0x18 };
#define MAGIC 0x32494547u /* "GEI2" little-endian */
#define BLOCK 64

static int semihost(int op, void *arg)
{
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* startup.c (export/mcu/c/firmware) ends main() through this. */
void semihost_exit(int code)
{
    semihost(SYS_EXIT, (void *)(uintptr_t)(code == 0 ? 0x20026 : 0x20024));
    for (;;) {
    }
}

static int sh_open(const char *name, uint32_t mode)
{
    uint32_t args[3] = {(uint32_t)(uintptr_t)name, mode, (uint32_t)strlen(name)};
    return semihost(SYS_OPEN, args);
}

static uint32_t sh_read(int fd, void *buf, uint32_t n)
{
    uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, n};
    return n - (uint32_t)semihost(SYS_READ, args);
}

static int imu_fd = -1;
static ge_sample_t block[BLOCK];
static uint32_t in_block, next, sample_index, odr_millihz;

static void uart_putc(uint8_t c)
{
    while (UART_STATE & UART_STATE_TX_FULL) {
    }
    UART_DATA = c;
}

int board_init(board_config_t *cfg)
{
    uint8_t h[16];
    UART_BAUDDIV = 16u; /* the smallest divider the CMSDK UART accepts */
    UART_CTRL = UART_CTRL_TX_EN;
    imu_fd = sh_open("imu.bin", 1u /* "rb" */);
    if (imu_fd < 0 || sh_read(imu_fd, h, sizeof h) != sizeof h) {
        return 0;
    }
    if ((uint32_t)(h[0] | h[1] << 8 | h[2] << 16 | (uint32_t)h[3] << 24) != MAGIC) {
        return 0;
    }
    cfg->info.device_id = (uint32_t)(h[4] | h[5] << 8 | h[6] << 16 | (uint32_t)h[7] << 24);
    cfg->info.gyro_range_dps = (uint16_t)(h[8] | h[9] << 8);
    cfg->info.accel_range_g = h[10];
    cfg->info.outputs = h[11];
    memcpy(cfg->info.mounting, h + 12, 3);
    cfg->info.firmware_major = 1;
    cfg->info.firmware_minor = 0;
    cfg->samples_per_frame = h[15];
    if (h[15] < 1u || h[15] > GE_MAX_SAMPLES_PER_FRAME) {
        return 0;
    }
    odr_millihz = (uint32_t)(GE_ODR_HZ * 1000.0f + 0.5f);
    uart_putc(0x00); /* resynchronise the host (PROTOCOL.md, serial) */
    return 1;
}

int board_imu_read(ge_sample_t *counts, uint32_t *t_us)
{
    if (next == in_block) {
        in_block = sh_read(imu_fd, block, sizeof block) / (uint32_t)sizeof(ge_sample_t);
        next = 0;
        if (in_block == 0u) {
            return 0;
        }
    }
    *counts = block[next++];
    *t_us = (uint32_t)((uint64_t)sample_index++ * 1000000000u / odr_millihz);
    return 1;
}

void board_send(const uint8_t *msg, size_t len)
{
    static uint8_t pkt[GE_SERIAL_BUFFER_LEN];
    size_t n = ge_serial_packet(pkt, sizeof pkt, msg, len);
    for (size_t i = 0; i < n; i++) {
        uart_putc(pkt[i]);
    }
}

static void put_u32_text(char *out, size_t *pos, uint32_t v)
{
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n) {
        out[(*pos)++] = digits[--n];
    }
}

/* Report the counts in "done.txt", then sleep: QEMU stays up (and its pty open) until the
 * host has read everything and stops it. */
void board_done(uint32_t samples, uint32_t sample_frames, uint32_t results)
{
    static char text[64];
    size_t pos = 0;
    const uint32_t values[3] = {samples, sample_frames, results};
    for (int i = 0; i < 3; i++) {
        put_u32_text(text, &pos, values[i]);
        text[pos++] = i < 2 ? ' ' : '\n';
    }
    int fd = sh_open("done.txt", 4u /* "w" */);
    if (fd >= 0) {
        uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)text, (uint32_t)pos};
        semihost(SYS_WRITE, args);
        uint32_t close_args[1] = {(uint32_t)fd};
        semihost(SYS_CLOSE, close_args);
    }
    for (;;) {
        __asm__ volatile("wfi");
    }
}
