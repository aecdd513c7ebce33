/* bw_probe.c - memory read bandwidth between decode steps (bw_probe.h). */
#include "bw_probe.h"

#include <omp.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "progress.h"
#include "util/mapped_file.h"

#define HUGE ((size_t)2 << 20)

int g2_bw_probe_init(g2_bw_probe *p, size_t bytes, int threads) {
    memset(p, 0, sizeof *p);
    if (threads <= 0) threads = omp_get_max_threads(); /* as the library's products */
    bytes = (bytes + HUGE - 1) / HUGE * HUGE;
    /* the buffer is touched at once: refuse what would push the machine into swapping or the
     * OOM killer rather than measure it. MemAvailable, not free memory (_SC_AVPHYS_PAGES): with
     * a model file in the page cache, free memory can be far below what the kernel gives back
     * on demand, and the probe was once refused so in the middle of a benchmark run. */
    const size_t avail = g2_mem_available();
    if (bytes == 0 || (avail > 0 && bytes > avail / 2)) return -2;
    /* a 2 MiB-aligned range, so that the kernel can back it with huge pages */
    unsigned char *r = mmap(NULL, bytes + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) return -1;
    unsigned char *a = (unsigned char *)(((uintptr_t)r + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
    if (a > r) munmap(r, (size_t)(a - r));
    if (a + bytes < r + bytes + HUGE) munmap(a + bytes, (size_t)(r + bytes + HUGE - (a + bytes)));
    madvise(a, bytes, MADV_HUGEPAGE);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < bytes; i += 4096) memset(a + i, (int)(i >> 12) & 0xFF, 4096);
    p->buf = a, p->bytes = bytes, p->threads = threads;
    return 0;
}

/* 16-byte vectors (GCC's vector extension: SSE2 on any x86-64, NEON elsewhere) */
typedef uint64_t g2_u64x2 __attribute__((vector_size(16)));

double g2_bw_probe_read(const g2_bw_probe *p) {
    const g2_u64x2 *v = (const g2_u64x2 *)(const void *)p->buf;
    const size_t lines = p->bytes / 64;
    uint64_t total = 0;
    const double t0 = g2_now();
#pragma omp parallel num_threads(p->threads) reduction(^ : total)
    {
        const size_t nth = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        const size_t lo = lines * id / nth, hi = lines * (id + 1) / nth;
        g2_u64x2 s0 = {0, 0}, s1 = {0, 0}; /* every byte of every 64-byte line, two chains */
        for (size_t i = lo; i < hi; i++) {
            s0 ^= v[4 * i] ^ v[4 * i + 2];
            s1 ^= v[4 * i + 1] ^ v[4 * i + 3];
        }
        s0 ^= s1;
        total ^= s0[0] ^ s0[1];
    }
    const double s = g2_now() - t0;
    /* the xor is used so that the loads stay; it is 0 (each page holds 512 equal words) */
    return total ? 0 : (double)p->bytes / s / 1e9;
}

void g2_bw_probe_free(g2_bw_probe *p) {
    if (p->buf) munmap(p->buf, p->bytes);
    memset(p, 0, sizeof *p);
}
