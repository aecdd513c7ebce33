/* vmath_avx512.c - AVX-512 exp/tanh and the element-wise training ops built on them (vmath.h).
 * Compiled with -mavx512f (Makefile: *_avx512.c); called only after a CPU check. */
#include <immintrin.h>

#include "train/vmath.h"

static inline __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    const __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, fx);
}

static inline __m512 tanh512(__m512 x) {
    const __m512 ax = _mm512_abs_ps(x);
    const __mmask16 tiny = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.0004f), _CMP_LT_OQ);
    const __m512 c = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-7.90531110763549805f)),
                                   _mm512_set1_ps(7.90531110763549805f));
    const __m512 x2 = _mm512_mul_ps(c, c);
    __m512 p = _mm512_set1_ps(-2.76076847742355e-16f);
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(2.00018790482477e-13f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-8.60467152213735e-11f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(5.12229709037114e-08f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(1.48572235717979e-05f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(6.37261928875436e-04f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(4.89352455891786e-03f));
    p = _mm512_mul_ps(c, p);
    __m512 q = _mm512_set1_ps(1.19825839466702e-06f);
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(1.18534705686654e-04f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(2.26843463243900e-03f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(4.89352518554385e-03f));
    return _mm512_mask_blend_ps(tiny, _mm512_div_ps(p, q), x);
}

#define GK 0.7978845608028654f
#define GC 0.044715f

void g2_tanh_array_avx512(float *y, const float *x, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, tanh512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, tanh512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

static inline __m512 gelu_inner(__m512 x) { /* sqrt(2/pi) (x + 0.044715 x^3) */
    const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    return _mm512_mul_ps(_mm512_set1_ps(GK), _mm512_fmadd_ps(_mm512_set1_ps(GC), x3, x));
}

void g2_geglu_fwd_avx512(float *h, const float *g, const float *u, long n) {
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    for (long i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 x = _mm512_maskz_loadu_ps(m, g + i), uu = _mm512_maskz_loadu_ps(m, u + i);
        const __m512 t = tanh512(gelu_inner(x));
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
        const __m512 t = tanh512(gelu_inner(x)), opt = _mm512_add_ps(one, t);
        const __m512 gelu = _mm512_mul_ps(_mm512_mul_ps(half, x), opt);
        /* gelu' = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2) */
        const __m512 inner_d = _mm512_mul_ps(_mm512_set1_ps(GK),
                                             _mm512_fmadd_ps(_mm512_set1_ps(3.0f * GC), _mm512_mul_ps(x, x), one));
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
        if (cap > 0) x = _mm512_mul_ps(c, tanh512(_mm512_mul_ps(x, ic)));
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
        const __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, z + i), vm)));
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
        const __m512 d = _mm512_mul_ps(_mm512_mul_ps(exp512(_mm512_sub_ps(x, vl)), ds), _mm512_fnmadd_ps(t, t, one));
        _mm512_mask_storeu_ps(z + i, m, d);
    }
}
