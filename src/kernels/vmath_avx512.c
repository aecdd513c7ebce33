/* vmath_avx512.c - vmath.h, 16 values at a time (compiled with AVX-512 flags; called only
 * after the CPU check). Tails go through masked loads and stores. */
#include "kernels/vmath_avx512.h"

#define C(v) _mm512_set1_ps(v)

static inline __mmask16 tail_mask(size_t left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

void g2_vsoftcap_avx512(float *x, size_t n, float pre, float cap) {
    const __m512 vp = C(pre), vc = C(cap);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 v = _mm512_div_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vp), vc);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(vc, g2_tanh16(v)));
    }
}

void g2_vgelu_mul_avx512(float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 x = _mm512_maskz_loadu_ps(m, g + i);
        const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(C(G2_GELU_C), x), x), x);
        const __m512 t = g2_tanh16(_mm512_mul_ps(C(G2_GELU_K), _mm512_add_ps(x, x3)));
        const __m512 y = _mm512_mul_ps(_mm512_mul_ps(C(0.5f), x), _mm512_add_ps(C(1.0f), t));
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(y, _mm512_maskz_loadu_ps(m, u + i)));
    }
}

float g2_vexp_sum_avx512(float *x, size_t n, float mx) {
    const __m512 vm = C(mx);
    __m512 acc = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 e = g2_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm));
        _mm512_mask_storeu_ps(x + i, m, e);
        acc = _mm512_mask_add_ps(acc, m, acc, e);
    }
    return _mm512_reduce_add_ps(acc);
}
