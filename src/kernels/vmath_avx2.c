/* vmath_avx2.c - vmath.h, 8 values at a time (compiled with AVX2+FMA flags; called only after
 * the CPU check). The same polynomials as vmath_avx512.c; tails go through a stack copy. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/vmath_impl.h"

#define C(v) _mm256_set1_ps(v)

/* 2^n for integral n in [-151, 128], as two factors that are normal floats each (n split in
 * halves), so that results below FLT_MIN underflow gradually as with scalef */
static inline __m256 scale_pow2(__m256 e, __m256 n) {
    const __m256i ni = _mm256_cvtps_epi32(n), n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    const __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(e, f1), f2);
}

static inline __m256 exp8(__m256 x) {
    x = _mm256_max_ps(C(G2_EXP_LO), _mm256_min_ps(C(G2_EXP_HI), x)); /* NaN passes (second operand) */
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, C(G2_EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, C(G2_EXP_C1), x);
    r = _mm256_fnmadd_ps(n, C(G2_EXP_C2), r);
    __m256 q = _mm256_fmadd_ps(C(G2_EXP_Q0), r, C(G2_EXP_Q1));
    q = _mm256_fmadd_ps(q, r, C(G2_EXP_Q2));
    q = _mm256_fmadd_ps(q, r, C(G2_EXP_Q3));
    q = _mm256_fmadd_ps(q, r, C(G2_EXP_Q4));
    q = _mm256_fmadd_ps(q, r, C(G2_EXP_Q5));
    const __m256 e = _mm256_fmadd_ps(q, _mm256_mul_ps(r, r), _mm256_add_ps(r, C(1.0f)));
    /* NaN lanes: n converts to INT_MIN; e is NaN and stays NaN whatever the factors */
    return scale_pow2(e, n);
}

/* on |x|, the sign put back at the end (tanh(-0) = -0) */
static inline __m256 tanh8(__m256 x) {
    const __m256 sign = C(-0.0f), ax = _mm256_andnot_ps(sign, x);
    const __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_fmadd_ps(C(G2_TANH_P0), z, C(G2_TANH_P1));
    p = _mm256_fmadd_ps(p, z, C(G2_TANH_P2));
    p = _mm256_fmadd_ps(p, z, C(G2_TANH_P3));
    p = _mm256_fmadd_ps(p, z, C(G2_TANH_P4));
    const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), ax, ax);
    const __m256 a = _mm256_min_ps(C(G2_TANH_ONE), ax);
    const __m256 e = exp8(_mm256_add_ps(a, a));
    const __m256 big = _mm256_sub_ps(C(1.0f), _mm256_div_ps(C(2.0f), _mm256_add_ps(e, C(1.0f))));
    const __m256 t = _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, C(G2_TANH_SMALL), _CMP_LT_OQ));
    return _mm256_or_ps(t, _mm256_and_ps(x, sign));
}

void g2_vsoftcap_avx2(float *x, size_t n, float pre, float cap) {
    const __m256 vp = C(pre), vc = C(cap);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(vc, tanh8(_mm256_div_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vp), vc))));
    if (i < n) {
        float t[8] = {0};
        memcpy(t, x + i, (n - i) * sizeof(float));
        g2_vsoftcap_avx2(t, 8, pre, cap);
        memcpy(x + i, t, (n - i) * sizeof(float));
    }
}

void g2_vgelu_mul_avx2(float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(C(G2_GELU_C), x), x), x);
        const __m256 t = tanh8(_mm256_mul_ps(C(G2_GELU_K), _mm256_add_ps(x, x3)));
        const __m256 y = _mm256_mul_ps(_mm256_mul_ps(C(0.5f), x), _mm256_add_ps(C(1.0f), t));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(y, _mm256_loadu_ps(u + i)));
    }
    if (i < n) {
        float tg[8] = {0}, tu[8] = {0};
        memcpy(tg, g + i, (n - i) * sizeof(float));
        memcpy(tu, u + i, (n - i) * sizeof(float));
        g2_vgelu_mul_avx2(tg, tu, 8);
        memcpy(g + i, tg, (n - i) * sizeof(float));
    }
}

float g2_vexp_sum_avx2(float *x, size_t n, float mx) {
    const __m256 vm = C(mx);
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float lanes[8], sum = 0;
    _mm256_storeu_ps(lanes, acc);
    for (int k = 0; k < 8; k++) sum += lanes[k];
    if (i < n) {
        float t[8];
        for (int k = 0; k < 8; k++) t[k] = i + (size_t)k < n ? x[i + k] : -INFINITY;
        g2_vexp_sum_avx2(t, 8, mx);
        for (size_t k = 0; k < n - i; k++) sum += x[i + k] = t[k];
    }
    return sum;
}
