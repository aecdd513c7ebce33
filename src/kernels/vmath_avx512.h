/* vmath_avx512.h - internal: exp and tanh of 16 fp32 values (AVX-512), shared by the
 * inference functions (vmath_avx512.c) and the training ops (train/vmath_avx512.c). Include
 * only from files compiled with the AVX-512 flags (named *_avx512.c). */
#ifndef G2_VMATH_AVX512_H
#define G2_VMATH_AVX512_H

#include <immintrin.h>

#include "kernels/vmath_impl.h"

#define G2_V16(v) _mm512_set1_ps(v)

/* exp(x), Cephes expf: within ~1 ulp; NaN stays NaN (max/min return their second operand
 * when either is NaN, and the clamps pass x second). */
static inline __m512 g2_exp16(__m512 x) {
    x = _mm512_max_ps(G2_V16(G2_EXP_LO), _mm512_min_ps(G2_V16(G2_EXP_HI), x));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, G2_V16(G2_EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, G2_V16(G2_EXP_C1), x);
    r = _mm512_fnmadd_ps(n, G2_V16(G2_EXP_C2), r);
    __m512 q = _mm512_fmadd_ps(G2_V16(G2_EXP_Q0), r, G2_V16(G2_EXP_Q1));
    q = _mm512_fmadd_ps(q, r, G2_V16(G2_EXP_Q2));
    q = _mm512_fmadd_ps(q, r, G2_V16(G2_EXP_Q3));
    q = _mm512_fmadd_ps(q, r, G2_V16(G2_EXP_Q4));
    q = _mm512_fmadd_ps(q, r, G2_V16(G2_EXP_Q5));
    const __m512 e = _mm512_fmadd_ps(q, _mm512_mul_ps(r, r), _mm512_add_ps(r, G2_V16(1.0f)));
    return _mm512_scalef_ps(e, n); /* e * 2^n, with gradual underflow and overflow to inf */
}

/* tanh(x), Cephes tanhf, on |x| with the sign put back at the end (odd: tanh(-0) = -0) */
static inline __m512 g2_tanh16(__m512 x) {
    const __m512 ax = _mm512_abs_ps(x);
    const __m512 z = _mm512_mul_ps(x, x);
    __m512 p = _mm512_fmadd_ps(G2_V16(G2_TANH_P0), z, G2_V16(G2_TANH_P1));
    p = _mm512_fmadd_ps(p, z, G2_V16(G2_TANH_P2));
    p = _mm512_fmadd_ps(p, z, G2_V16(G2_TANH_P3));
    p = _mm512_fmadd_ps(p, z, G2_V16(G2_TANH_P4));
    const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), ax, ax);
    const __m512 a = _mm512_min_ps(G2_V16(G2_TANH_ONE), ax); /* NaN stays NaN */
    const __m512 e = g2_exp16(_mm512_add_ps(a, a));
    const __m512 big = _mm512_sub_ps(G2_V16(1.0f), _mm512_div_ps(G2_V16(2.0f), _mm512_add_ps(e, G2_V16(1.0f))));
    const __m512 t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, G2_V16(G2_TANH_SMALL), _CMP_LT_OQ), big, small);
    return _mm512_or_ps(t, _mm512_and_ps(x, G2_V16(-0.0f)));
}

#endif
