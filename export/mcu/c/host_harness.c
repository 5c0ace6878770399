/* Host-only batch calls for the parity tests (ctypes): many windows or a whole recording per
 * call. Not part of the device library. */
#include <string.h>

#include "gaitedge_mcu.h"

int ge_host_info(int *info)
{
    info[0] = GE_WINDOW;
    info[1] = GE_CHANNELS;
    info[2] = GE_N_LOGITS;
    info[3] = (int)sizeof(ge_decision_t);
    info[4] = GE_DECIMATION;
    info[5] = GE_HOP;
    return 6;
}

void ge_host_net(int n, const float *windows, int8_t *logits, float *probs)
{
    for (int i = 0; i < n; i++) {
        ge_net_run(windows + (long)i * GE_WINDOW * GE_CHANNELS, logits + (long)i * GE_N_LOGITS,
                   probs + (long)i * GE_N_LOGITS);
    }
}

/* A whole recording from ge_init(); returns the number of decisions written (<= max_out). */
int ge_host_stream(int n, const float *imu, const float *mounting, int max_out,
                   ge_decision_t *decisions, float *windows)
{
    int k = 0;
    ge_init();
    if (mounting != NULL) {
        ge_set_mounting(mounting);
    }
    for (int i = 0; i < n && k < max_out; i++) {
        if (ge_push(imu + (long)i * 6, &decisions[k])) {
            if (windows != NULL) {
                memcpy(windows + (long)k * GE_WINDOW * GE_CHANNELS, ge_last_window(),
                       sizeof(float) * GE_WINDOW * GE_CHANNELS);
            }
            k++;
        }
    }
    return k;
}
