/* bw_probe.h - the machine's memory read bandwidth, measured between decode steps
 * (`gemma2 bench --probe-bw`). Decode reads every weight once per token, so its speed is bound
 * by this bandwidth; on a shared host the bandwidth changes from second to second, and a probe
 * taken minutes apart says little about a given run. Alternating probe and token gives a ratio
 * per token, taken within the same fraction of a second. */
#ifndef G2_CLI_BW_PROBE_H
#define G2_CLI_BW_PROBE_H

#include <stddef.h>

typedef struct {
    unsigned char *buf; /* on transparent huge pages where the kernel gives them, as the weights */
    size_t bytes;
    int threads;
} g2_bw_probe;

/* Allocates and touches `bytes` (rounded up to 2 MiB); threads <= 0: OpenMP's default. 0 on
 * success, -1 when out of memory, -2 when `bytes` is 0 or more than half the available memory. */
int g2_bw_probe_init(g2_bw_probe *p, size_t bytes, int threads);
/* One streaming read of the whole buffer by `threads` threads (each a contiguous share, one
 * stream per thread as the decode kernels read): GB/s. */
double g2_bw_probe_read(const g2_bw_probe *p);
void g2_bw_probe_free(g2_bw_probe *p);

#endif
