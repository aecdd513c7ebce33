/* sgemm.c - blocked fp32 GEMM (the BLIS loop nest): C is cut into NC-column and K into KC-deep
 * blocks; B's block is packed once into NR-wide panels, each thread packs MC rows of A into
 * MR-tall panels and runs the MR x NR micro-kernel over them. Packing handles both
 * transposes, so one kernel serves forward (x W^T), input gradients (dy W) and weight
 * gradients (dy^T x). */
#include "train/sgemm.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MC 64
#define KC 256
#define NC 256
#define MR G2_SGEMM_MR
#define NR G2_SGEMM_NR

void g2_sgemm_kernel_c(int kc, const float *a, const float *b, float *acc) {
    memset(acc, 0, sizeof(float) * MR * NR);
    for (int k = 0; k < kc; k++, a += MR, b += NR)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i * NR + j] += a[i] * b[j];
}

typedef void (*kernel_fn)(int, const float *, const float *, float *);

static kernel_fn pick_kernel(void) {
    const char *isa = getenv("GEMMA2_ISA");
    if (isa && (!strcmp(isa, "scalar") || !strcmp(isa, "avx2"))) return g2_sgemm_kernel_c;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? g2_sgemm_kernel_avx512 : g2_sgemm_kernel_c;
}

/* B block rows p0..p0+kc, columns j0..j0+nc into panels [nc/NR][kc][NR], zero-padded. */
static void pack_b(int transB, const float *B, int ldb, int p0, int kc, int j0, int nc, float *bp, int nt) {
    const int np = (nc + NR - 1) / NR;
#pragma omp for schedule(static) nowait
    for (int pj = 0; pj < np; pj++) {
        float *dst = bp + (size_t)pj * kc * NR;
        const int jb = j0 + pj * NR, w = nc - pj * NR < NR ? nc - pj * NR : NR;
        for (int k = 0; k < kc; k++) {
            float *d = dst + (size_t)k * NR;
            if (!transB) {
                const float *s = B + (size_t)(p0 + k) * ldb + jb;
                for (int j = 0; j < w; j++) d[j] = s[j];
            } else {
                for (int j = 0; j < w; j++) d[j] = B[(size_t)(jb + j) * ldb + p0 + k];
            }
            for (int j = w; j < NR; j++) d[j] = 0;
        }
    }
    (void)nt;
}

/* A block rows i0..i0+mc, depth p0..p0+kc into panels [mc/MR][kc][MR], zero-padded. */
static void pack_a(int transA, const float *A, int lda, int i0, int mc, int p0, int kc, float *ap) {
    const int np = (mc + MR - 1) / MR;
    for (int pi = 0; pi < np; pi++) {
        float *dst = ap + (size_t)pi * kc * MR;
        const int ib = i0 + pi * MR, h = mc - pi * MR < MR ? mc - pi * MR : MR;
        if (!transA) {
            /* read MR rows side by side so that the writes stay contiguous */
            const float *s = A + (size_t)ib * lda + p0;
            for (int k = 0; k < kc; k++)
                for (int i = 0; i < h; i++) dst[(size_t)k * MR + i] = s[(size_t)i * lda + k];
        } else {
            for (int k = 0; k < kc; k++) {
                const float *s = A + (size_t)(p0 + k) * lda + ib;
                for (int i = 0; i < h; i++) dst[(size_t)k * MR + i] = s[i];
            }
        }
        for (int i = h; i < MR; i++)
            for (int k = 0; k < kc; k++) dst[(size_t)k * MR + i] = 0;
    }
}

/* OpenBLAS's thread count is process-wide: set once, to 1 (see g2_sgemm). */
static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) { openblas_set_num_threads(1); }

int g2_sgemm_use_blas(void) {
    const char *s = getenv("GEMMA2_SGEMM");
    return !(s && !strcmp(s, "own"));
}

void g2_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc, int n_threads) {
    if (M <= 0 || N <= 0) return;
    /* OpenBLAS measured faster than our kernel on the training shapes (docs/training.md). Its
     * own thread pool fights OpenMP's spinning threads for the cores, so it runs single-threaded
     * and we split the rows of C over our OpenMP threads: each row is computed by one call. */
    if (K > 0 && g2_sgemm_use_blas()) {
        pthread_once(&g_blas_once, blas_single_thread);
        const CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
        if (n_threads <= 0) n_threads = omp_get_max_threads();
        if (n_threads == 1 || omp_in_parallel() || M < 16 || (double)M * N * K < 1e6) {
            cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            return;
        }
#pragma omp parallel num_threads(n_threads)
        {
            const int nth = omp_get_num_threads(), id = omp_get_thread_num();
            const int chunk = ((M + nth - 1) / nth + 7) & ~7, i0 = id * chunk, i1 = i0 + chunk < M ? i0 + chunk : M;
            if (i1 > i0)
                cblas_sgemm(CblasRowMajor, ta, tb, i1 - i0, N, K, alpha, transA ? A + i0 : A + (size_t)i0 * lda, lda,
                            B, ldb, beta, C + (size_t)i0 * ldc, ldc);
        }
        return;
    }
    if (beta != 1.0f)
        for (int i = 0; i < M; i++) {
            float *c = C + (size_t)i * ldc;
            if (beta == 0.0f) memset(c, 0, sizeof(float) * (size_t)N);
            else for (int j = 0; j < N; j++) c[j] *= beta;
        }
    if (K <= 0 || alpha == 0.0f) return;
    const kernel_fn kern = pick_kernel();
    const int ncmax = N < NC ? N : NC, kcmax = K < KC ? K : KC;
    float *bp = aligned_alloc(64, sizeof(float) * (size_t)((ncmax + NR - 1) / NR) * NR * kcmax);
    if (!bp) { /* out of memory for the packing buffer: the plain triple loop still gives the product */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float s = 0;
                for (int k = 0; k < K; k++)
                    s += (transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                         (transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                C[(size_t)i * ldc + j] += alpha * s;
            }
        return;
    }
    if (n_threads <= 0) n_threads = omp_get_max_threads();
    const int mblocks = (M + MC - 1) / MC;
    if (n_threads > mblocks) n_threads = mblocks;
    if ((double)M * N * K < 1e6) n_threads = 1; /* small products: one thread is faster */

#pragma omp parallel num_threads(n_threads)
    {
        float *ap = aligned_alloc(64, sizeof(float) * MC * (size_t)kcmax);
        /* (a failed allocation here would crash: MC x KC floats, 64 KB) */
        float acc[MR * NR] __attribute__((aligned(64)));
        for (int j0 = 0; j0 < N; j0 += NC) {
            const int nc = N - j0 < NC ? N - j0 : NC;
            for (int p0 = 0; p0 < K; p0 += KC) {
                const int kc = K - p0 < KC ? K - p0 : KC;
#pragma omp barrier
                pack_b(transB, B, ldb, p0, kc, j0, nc, bp, n_threads);
#pragma omp barrier
#pragma omp for schedule(static)
                for (int mb = 0; mb < mblocks; mb++) {
                    const int i0 = mb * MC, mc = M - i0 < MC ? M - i0 : MC;
                    pack_a(transA, A, lda, i0, mc, p0, kc, ap);
                    for (int jr = 0; jr < nc; jr += NR) {
                        const float *bpan = bp + (size_t)(jr / NR) * kc * NR;
                        const int w = nc - jr < NR ? nc - jr : NR;
                        for (int ir = 0; ir < mc; ir += MR) {
                            const int h = mc - ir < MR ? mc - ir : MR;
                            kern(kc, ap + (size_t)(ir / MR) * kc * MR, bpan, acc);
                            for (int i = 0; i < h; i++) {
                                float *c = C + (size_t)(i0 + ir + i) * ldc + j0 + jr;
                                const float *s = acc + i * NR;
                                if (alpha == 1.0f)
                                    for (int j = 0; j < w; j++) c[j] += s[j];
                                else
                                    for (int j = 0; j < w; j++) c[j] += alpha * s[j];
                            }
                        }
                    }
                }
            }
        }
        free(ap);
    }
    free(bp);
}
