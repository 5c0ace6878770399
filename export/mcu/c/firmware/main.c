/*
 * Reference application: a recording (semihosting file, float32 [N][6] at GE_ODR_HZ) through
 * ge_push(); every decision is written out as the raw ge_decision_t. With the "net" file it runs
 * the network alone on float32 windows [K][GE_WINDOW][GE_CHANNELS] and writes logits and probs.
 * The board's porting surface is the three calls in this file: read the IMU, write the result,
 * and (here) the semihosting file I/O standing in for both.
 */
#include <stdint.h>
#include <string.h>

#include "gaitedge_mcu.h"

enum { SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_WRITE = 0x05, SYS_READ = 0x06, SYS_EXIT = 0x18 };

static int semihost(int op, void *arg)
{
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void semihost_exit(int code)
{
    semihost(SYS_EXIT, (void *)(uintptr_t)(code == 0 ? 0x20026 : 0x20024));
    for (;;) {
    }
}

static int open_file(const char *name, int mode)
{
    uint32_t args[3] = {(uint32_t)(uintptr_t)name, (uint32_t)mode, (uint32_t)strlen(name)};
    return semihost(SYS_OPEN, args);
}

/* Returns the bytes read. */
static int read_file(int fd, void *buf, uint32_t n)
{
    uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, n};
    return (int)n - semihost(SYS_READ, args);
}

static void write_file(int fd, const void *buf, uint32_t n)
{
    uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, n};
    semihost(SYS_WRITE, args);
}

static float window[GE_WINDOW * GE_CHANNELS];

int main(void)
{
    const int rb = 1, wb = 5; /* semihosting modes "rb" and "wb" */
    ge_decision_t d;
    int in = open_file("mcu_stream.bin", rb);
    if (in >= 0) {
        const int out = open_file("mcu_decisions.bin", wb);
        float imu[6];
        ge_init();
        float mounting[9];
        if (read_file(in, mounting, sizeof mounting) == sizeof mounting) {
            ge_set_mounting(mounting);
        }
        while (read_file(in, imu, sizeof imu) == sizeof imu) {
            if (ge_push(imu, &d)) {
                write_file(out, &d, sizeof d);
            }
        }
        uint32_t close_args[1] = {(uint32_t)out};
        semihost(SYS_CLOSE, close_args);
    }
    in = open_file("mcu_windows.bin", rb);
    if (in >= 0) {
        const int out = open_file("mcu_logits.bin", wb);
        int8_t logits[GE_N_LOGITS];
        float probs[GE_N_LOGITS];
        while (read_file(in, window, sizeof window) == sizeof window) {
            ge_net_run(window, logits, probs);
            write_file(out, logits, sizeof logits);
            write_file(out, probs, sizeof probs);
        }
    }
    return 0;
}
