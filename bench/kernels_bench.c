/* kernels_bench.c - speed of the matmul kernels (a benchmark, not a test). Build and run with
 * bench/kernels_bench.sh [THREADS] [REPS] [ROWS COLS | bw]   (bw: the bandwidth probe only).
 *
 *  - memory read bandwidth of this machine: a streaming sum over 1 GiB (the ceiling for decode)
 *  - matvec (decode, 1 token): GB/s of weights read for a 9216 x 2304 matrix per type (the 2B
 *    FFN gate/up shape); 8 such matrices in turn so that nothing comes from cache
 *  - matmul (prefill, 512 tokens): GFLOP/s (2 * rows * cols * tokens) on the same shape
 * KB_TYPE=q8_0 (a type name as gemma2_type_name gives it, any case): that type only.
 * Best and median of REPS runs after one warm-up (on a shared machine the best run is the one
 * least disturbed by other processes). Weights and the probe's buffer in anonymous memory with
 * madvise(MADV_HUGEPAGE), as `--load-mode read` places the weights: with transparent huge pages
 * in "madvise" mode (Debian's default) plain malloc gets 4 KiB pages, and 2 threads then read
 * about 40 GB/s instead of 60 here. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>

#include "gemma2.h"
#include "kernels/matmul.h"
#include "kernels/quantize.h"
#include "kernels/repack.h"
#include "kernels/types.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
static double minimum(const double *v, int n) {
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}

/* `bytes` of anonymous memory at a 2 MiB boundary, on transparent huge pages where the kernel
 * grants them (mmap directly: glibc's aligned_alloc got huge pages for only part of the range
 * here). Freed with free_huge. */
#define HUGE ((size_t)2 << 20)
static size_t huge_round(size_t bytes) { return (bytes + HUGE - 1) & ~(HUGE - 1); }
static uint8_t *alloc_huge(size_t bytes) {
    bytes = huge_round(bytes);
    uint8_t *r = mmap(NULL, bytes + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) {
        fprintf(stderr, "kernels_bench: out of memory\n");
        exit(1);
    }
    uint8_t *a = (uint8_t *)(((uintptr_t)r + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
    if (a > r) munmap(r, (size_t)(a - r));
    if (a + bytes < r + bytes + HUGE) munmap(a + bytes, (size_t)(r + bytes + HUGE - (a + bytes)));
    madvise(a, bytes, MADV_HUGEPAGE);
    return a;
}
static void free_huge(void *p, size_t bytes) { munmap(p, huge_round(bytes)); }

__attribute__((target("avx2"))) static double read_bandwidth(int threads, int reps) {
    const size_t bytes = (size_t)1 << 30;
    uint8_t *buf = alloc_huge(bytes);
#pragma omp parallel for num_threads(threads)
    for (size_t i = 0; i < bytes; i += 4096) memset(buf + i, 1, 4096);
    double t[16];
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        long long total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
        {
            __m256i acc = _mm256_setzero_si256();
#pragma omp for schedule(static)
            for (size_t i = 0; i < bytes; i += 128) {
                acc = _mm256_add_epi64(acc, _mm256_load_si256((const __m256i *)(buf + i)));
                acc = _mm256_add_epi64(acc, _mm256_load_si256((const __m256i *)(buf + i + 32)));
                acc = _mm256_add_epi64(acc, _mm256_load_si256((const __m256i *)(buf + i + 64)));
                acc = _mm256_add_epi64(acc, _mm256_load_si256((const __m256i *)(buf + i + 96)));
            }
            long long v[4];
            memcpy(v, &acc, 32);
            total += v[0] + v[1] + v[2] + v[3];
        }
        if (r) t[r - 1] = bytes / (now() - t0) / 1e9;
        if (total == 42) puts(""); /* keep the loads */
    }
    free_huge(buf, bytes);
    double best = t[0];
    for (int i = 1; i < reps; i++) best = t[i] > best ? t[i] : best;
    printf("memory read bandwidth (1 GiB, %d threads): best %.1f GB/s, median %.1f GB/s\n", threads, best, median(t, reps));
    return best;
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1 || reps > 16) { /* the timing arrays below hold 16 */
        fprintf(stderr, "kernels_bench: REPS must be 1 to 16 (got %s)\n", argv[2]);
        return 2;
    }
    const int64_t rows = argc > 3 ? atoll(argv[3]) : 9216, cols = argc > 4 ? atoll(argv[4]) : 2304;
    enum { NMAT = 8, NTOK = 512 };
    printf("kernels_bench: isa=%s threads=%d reps=%d rows=%lld cols=%lld bf16_dot=%s\n", g2_isa_name(g2_isa_active()),
           threads, reps, (long long)rows, (long long)cols,
           getenv("GEMMA2_BF16_DOT") ? getenv("GEMMA2_BF16_DOT") : "default");
    read_bandwidth(threads, reps);
    if (argc > 3 && !strcmp(argv[3], "bw")) return 0; /* the probe only (bench/decode_ab.sh) */

    float *src = malloc((size_t)(rows * cols) * 4);
    for (int64_t i = 0; i < rows * cols; i++) src[i] = (float)((i * 2654435761u % 2001) / 1000.0 - 1.0) * 0.05f;
    float *x = malloc((size_t)(NTOK * cols) * 4), *y = malloc((size_t)(NTOK * rows) * 4);
    for (int64_t i = 0; i < NTOK * cols; i++) x[i] = (float)((i * 40503u % 1999) / 999.0 - 1.0);
    static const int types[] = {GEMMA2_TYPE_F32, GEMMA2_TYPE_BF16, GEMMA2_TYPE_F16, GEMMA2_TYPE_Q8_0,
                                GEMMA2_TYPE_Q6_K, GEMMA2_TYPE_Q4_K, GEMMA2_TYPE_Q4_0};
    printf("%-5s %9s | %21s | %19s | %27s\n", "type", "MB/matrix", "matvec GB/s best/med", "matvec us best/med",
           "matmul512 GFLOP/s best/med");
    const char *only = getenv("KB_TYPE");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const int type = types[ti];
        if (only && strcasecmp(only, gemma2_type_name(type))) continue;
        const size_t rb = g2_type_row_bytes(type, cols);
        g2_tensor w[NMAT];
        for (int m = 0; m < NMAT; m++) {
            uint8_t *d = alloc_huge(rb * (size_t)rows);
#pragma omp parallel for num_threads(threads)
            for (int64_t r = 0; r < rows; r++) g2_quantize_row(type, src + r * cols, d + (size_t)r * rb, cols);
            w[m] = (g2_tensor){d, type, rows, cols, rb, G2_LAYOUT_ROWS};
        }
        /* matvec: rounds over the 8 matrices */
        double tv[64];
        for (int r = 0; r <= reps; r++) {
            double t0 = now();
            for (int m = 0; m < NMAT; m++) g2_matmul(&w[m], x, 1, y, threads);
            if (r) tv[r - 1] = (now() - t0) / NMAT;
        }
        const double mv_best = minimum(tv, reps), mv = median(tv, reps);
        /* matmul: 512 tokens */
        double tm[64];
        const int mreps = reps < 3 ? reps : 3;
        for (int r = 0; r <= mreps; r++) {
            double t0 = now();
            g2_matmul(&w[r % NMAT], x, NTOK, y, threads);
            if (r) tm[r - 1] = now() - t0;
        }
        const double mm_best = minimum(tm, mreps), mm = median(tm, mreps);
        const double flop = 2.0 * rows * cols * NTOK, mb = (double)rb * rows;
        printf("%-5s %9.1f | %10.1f %10.1f | %9.0f %9.0f | %13.1f %13.1f\n", gemma2_type_name(type), mb / 1e6,
               mb / mv_best / 1e9, mb / mv / 1e9, mv_best * 1e6, mv * 1e6, flop / mm_best / 1e9, flop / mm / 1e9);
        fflush(stdout);
        /* the same in the r16 layout (--load-mode read repacks these types) */
        if (g2_r16_supported(type, rows, cols)) {
            for (int m = 0; m < NMAT; m++) g2_tensor_repack_r16(&w[m], threads);
            for (int r = 0; r <= reps; r++) {
                double t0 = now();
                for (int m = 0; m < NMAT; m++) g2_matmul(&w[m], x, 1, y, threads);
                if (r) tv[r - 1] = (now() - t0) / NMAT;
            }
            for (int r = 0; r <= mreps; r++) {
                double t0 = now();
                g2_matmul(&w[r % NMAT], x, NTOK, y, threads);
                if (r) tm[r - 1] = now() - t0;
            }
            const double b1 = minimum(tv, reps), m1 = median(tv, reps), b2 = minimum(tm, mreps), m2 = median(tm, mreps);
            /* r16e (BF16 where AVX2 or AVX-512 is the best ISA): GB/s of the BF16 weights, 0.75 of them read */
            printf("%-5s %9.1f | %10.1f %10.1f | %9.0f %9.0f | %13.1f %13.1f  (%s layout)\n", gemma2_type_name(type),
                   mb / 1e6, mb / b1 / 1e9, mb / m1 / 1e9, b1 * 1e6, m1 * 1e6, flop / b2 / 1e9, flop / m2 / 1e9,
                   w[0].layout == G2_LAYOUT_R16E ? "r16e" : "r16");
            fflush(stdout);
        }
        for (int m = 0; m < NMAT; m++) free_huge((void *)w[m].data, rb * (size_t)rows);
    }
    free(src), free(x), free(y);
    return 0;
}
