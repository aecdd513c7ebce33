/* vmath_impl.h - internal: the constants shared by the vector paths of vmath.h and their
 * entry points. The polynomials are Cephes' (S. L. Moshier): tanhf.c and expf.c. */
#ifndef G2_VMATH_IMPL_H
#define G2_VMATH_IMPL_H

#include <stddef.h>

/* tanh(x) = x + x^3 P(x^2) for |x| < G2_TANH_SMALL; P's coefficients, highest degree first */
#define G2_TANH_SMALL 0.625f
#define G2_TANH_P0 -5.70498872745e-3f
#define G2_TANH_P1 2.06390887954e-2f
#define G2_TANH_P2 -5.37397155531e-2f
#define G2_TANH_P3 1.33314422036e-1f
#define G2_TANH_P4 -3.33332819422e-1f
/* tanh(x) rounds to +-1 in fp32 beyond this: |x| is clamped to it before exp(2|x|) */
#define G2_TANH_ONE 10.0f

/* exp(x) = 2^n exp(r), n = round(x log2 e), r = x - n ln2 (ln2 in two parts, C1 exact in few bits) */
#define G2_EXP_LOG2E 1.44269504088896341f
#define G2_EXP_C1 0.693359375f
#define G2_EXP_C2 -2.12194440e-4f
/* exp(r) = 1 + r + r^2 Q(r); Q's coefficients, highest degree first */
#define G2_EXP_Q0 1.9875691500e-4f
#define G2_EXP_Q1 1.3981999507e-3f
#define G2_EXP_Q2 8.3334519073e-3f
#define G2_EXP_Q3 4.1665795894e-2f
#define G2_EXP_Q4 1.6666665459e-1f
#define G2_EXP_Q5 5.0000001201e-1f
/* exp(x) is 0 in fp32 below this and +inf above the other: inputs are clamped to them */
#define G2_EXP_LO -104.0f
#define G2_EXP_HI 89.0f

#define G2_GELU_K 0.7978845608028654f /* sqrt(2 / pi) */
#define G2_GELU_C 0.044715f

void g2_vsoftcap_avx512(float *x, size_t n, float pre, float cap);
void g2_vgelu_mul_avx512(float *g, const float *u, size_t n);
float g2_vexp_sum_avx512(float *x, size_t n, float mx);
void g2_vsoftcap_avx2(float *x, size_t n, float pre, float cap);
void g2_vgelu_mul_avx2(float *g, const float *u, size_t n);
float g2_vexp_sum_avx2(float *x, size_t n, float mx);

#endif
