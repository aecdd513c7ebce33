/* sgemm_avx512.c - the 8x32 fp32 micro-kernel: 16 zmm accumulators, per k two loads of packed B
 * and eight broadcasts of packed A. Compiled with -mavx512f (Makefile: *_avx512.c). */
#include <immintrin.h>

#include "train/sgemm.h"

void g2_sgemm_kernel_avx512(int kc, const float *a, const float *b, float *acc) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (int k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        __m512 x;
        x = _mm512_set1_ps(a[0]); c00 = _mm512_fmadd_ps(x, b0, c00); c01 = _mm512_fmadd_ps(x, b1, c01);
        x = _mm512_set1_ps(a[1]); c10 = _mm512_fmadd_ps(x, b0, c10); c11 = _mm512_fmadd_ps(x, b1, c11);
        x = _mm512_set1_ps(a[2]); c20 = _mm512_fmadd_ps(x, b0, c20); c21 = _mm512_fmadd_ps(x, b1, c21);
        x = _mm512_set1_ps(a[3]); c30 = _mm512_fmadd_ps(x, b0, c30); c31 = _mm512_fmadd_ps(x, b1, c31);
        x = _mm512_set1_ps(a[4]); c40 = _mm512_fmadd_ps(x, b0, c40); c41 = _mm512_fmadd_ps(x, b1, c41);
        x = _mm512_set1_ps(a[5]); c50 = _mm512_fmadd_ps(x, b0, c50); c51 = _mm512_fmadd_ps(x, b1, c51);
        x = _mm512_set1_ps(a[6]); c60 = _mm512_fmadd_ps(x, b0, c60); c61 = _mm512_fmadd_ps(x, b1, c61);
        x = _mm512_set1_ps(a[7]); c70 = _mm512_fmadd_ps(x, b0, c70); c71 = _mm512_fmadd_ps(x, b1, c71);
        a += G2_SGEMM_MR;
        b += G2_SGEMM_NR;
    }
    _mm512_store_ps(acc + 0, c00), _mm512_store_ps(acc + 16, c01);
    _mm512_store_ps(acc + 32, c10), _mm512_store_ps(acc + 48, c11);
    _mm512_store_ps(acc + 64, c20), _mm512_store_ps(acc + 80, c21);
    _mm512_store_ps(acc + 96, c30), _mm512_store_ps(acc + 112, c31);
    _mm512_store_ps(acc + 128, c40), _mm512_store_ps(acc + 144, c41);
    _mm512_store_ps(acc + 160, c50), _mm512_store_ps(acc + 176, c51);
    _mm512_store_ps(acc + 192, c60), _mm512_store_ps(acc + 208, c61);
    _mm512_store_ps(acc + 224, c70), _mm512_store_ps(acc + 240, c71);
}
