/* sgemm.h - fp32 matrix products for training (row-major, BLAS-like).
 *
 *   C[M][N] = alpha * op(A)[M][K] * op(B)[K][N] + beta * C
 *   op(A) = A (A is [M][lda], lda >= K) or A^T (transA: A is [K][lda], lda >= M); same for B.
 *   beta == 0 overwrites C without reading it (C may hold garbage).
 *
 * Two implementations: OpenBLAS's cblas_sgemm (the default for multi-threaded calls from outside
 * a parallel region: it measured faster here) and our own blocked kernel (single-threaded calls,
 * calls from inside OpenMP regions, or everywhere with GEMMA2_SGEMM=own). Both are deterministic
 * for a given thread count.
 *
 * Our kernel's results do not depend on the thread count: every element of C is summed by one thread in
 * a fixed order of k (blocks of G2_SGEMM_KC, in order), so training runs are bit-reproducible
 * whatever the number of threads. AVX-512 micro-kernel when the CPU has it, portable C
 * otherwise (GEMMA2_ISA=scalar forces the portable one). */
#ifndef G2_TRAIN_SGEMM_H
#define G2_TRAIN_SGEMM_H

void g2_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc, int n_threads);

/* Tile of the micro-kernels: MR rows x NR columns of C. */
/* 1 unless GEMMA2_SGEMM=own. */
int g2_sgemm_use_blas(void);

#define G2_SGEMM_MR 8
#define G2_SGEMM_NR 32

/* acc[MR][NR] = sum_k a[k][MR] * b[k][NR] over kc steps (packed panels); *_avx512.c has the fast one. */
void g2_sgemm_kernel_avx512(int kc, const float *a, const float *b, float *acc);
void g2_sgemm_kernel_c(int kc, const float *a, const float *b, float *acc);

#endif
