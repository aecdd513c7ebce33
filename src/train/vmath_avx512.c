/* vmath_avx512.c - the element-wise training ops (vmath.h) on the AVX-512 exp/tanh of
 * kernels/vmath_avx512.h (shared with inference).
 * Compiled with -mavx512f (Makefile: *_avx512.c); called only after a CPU check. */
#include "kernels/vmath_avx512.h"
#include "train/vmath.h"

void g2_tanh_array_avx512(float *y, const float *x, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, g2_tanh16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, g2_tanh16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

static inline __m512 gelu_inner(__m512 x) { /* sqrt(2/pi) (x + 0.044715 x^3) */
    const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    return _mm512_mul_ps(_mm512_set1_ps(G2_GELU_K), _mm512_fmadd_ps(_mm512_set1_ps(G2_GELU_C), x3, x));
}

void g2_geglu_fwd_avx512(float *h, const float *g, const float *u, long n) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    for (long i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 x = _mm512_maskz_loadu_ps(m, g + i), uu = _mm512_maskz_loadu_ps(m, u + i);
        const __m512 t = g2_tanh16(gelu_inner(x));
        const __m512 gelu = _mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_add_ps(one, t));
        _mm512_mask_storeu_ps(h + i, m, _mm512_mul_ps(gelu, uu));
    }
}

void g2_geglu_bwd_avx512(float *dg, float *du, const float *dh, const float *g, const float *u, long n) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    for (long i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 x = _mm512_maskz_loadu_ps(m, g + i), uu = _mm512_maskz_loadu_ps(m, u + i),
                     d = _mm512_maskz_loadu_ps(m, dh + i);
        const __m512 t = g2_tanh16(gelu_inner(x)), opt = _mm512_add_ps(one, t);
        const __m512 gelu = _mm512_mul_ps(_mm512_mul_ps(half, x), opt);
        /* gelu' = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2) */
        const __m512 inner_d = _mm512_mul_ps(_mm512_set1_ps(G2_GELU_K),
                                             _mm512_fmadd_ps(_mm512_set1_ps(3.0f * G2_GELU_C), _mm512_mul_ps(x, x), one));
        const __m512 sech2 = _mm512_fnmadd_ps(t, t, one);
        const __m512 dgelu = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_mul_ps(half, x), sech2), inner_d,
                                             _mm512_mul_ps(half, opt));
        _mm512_mask_storeu_ps(dg + i, m, _mm512_mul_ps(_mm512_mul_ps(d, uu), dgelu));
        _mm512_mask_storeu_ps(du + i, m, _mm512_mul_ps(d, gelu));
    }
}

float g2_softcap_max_avx512(float *z, long n, float cap) {
    __m512 mx = _mm512_set1_ps(-__builtin_inff());
    const __m512 c = _mm512_set1_ps(cap), ic = _mm512_set1_ps(1.0f / cap);
    for (long i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(m, z + i);
        if (cap > 0) x = _mm512_mul_ps(c, g2_tanh16(_mm512_mul_ps(x, ic)));
        _mm512_mask_storeu_ps(z + i, m, x);
        mx = _mm512_mask_max_ps(mx, m, mx, x);
    }
    return _mm512_reduce_max_ps(mx);
}

float g2_expsum_avx512(float *p, const float *z, long n, float mx) {
    __m512 s = _mm512_setzero_ps();
    const __m512 vm = _mm512_set1_ps(mx);
    for (long i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 e = _mm512_maskz_mov_ps(m, g2_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, z + i), vm)));
        if (p) _mm512_mask_storeu_ps(p + i, m, e);
        s = _mm512_add_ps(s, e);
    }
    return _mm512_reduce_add_ps(s);
}

void g2_xent_grad_avx512(float *z, long n, float lse, float cap, float dscale) {
    const __m512 vl = _mm512_set1_ps(lse), ds = _mm512_set1_ps(dscale), ic = _mm512_set1_ps(cap > 0 ? 1.0f / cap : 0),
                 one = _mm512_set1_ps(1.0f);
    for (long i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 x = _mm512_maskz_loadu_ps(m, z + i), t = _mm512_mul_ps(x, ic);
        const __m512 d = _mm512_mul_ps(_mm512_mul_ps(g2_exp16(_mm512_sub_ps(x, vl)), ds), _mm512_fnmadd_ps(t, t, one));
        _mm512_mask_storeu_ps(z + i, m, d);
    }
}
