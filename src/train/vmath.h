/* vmath.h - vectorised element-wise math for the training ops (AVX-512, with portable
 * fallbacks in ops.c). exp and tanh are those of inference (kernels/vmath_avx512.h: Cephes'
 * polynomials, within 2.1 x 2^-24 relative; tests/unit/test_vmath.c).
 * libm's tanhf/expf cost about a fifth of a training step before these. */
#ifndef G2_TRAIN_VMATH_H
#define G2_TRAIN_VMATH_H

/* 1 if the AVX-512 versions can run here (and GEMMA2_ISA does not forbid them). */
int g2_vmath_avx512(void);

void g2_geglu_fwd_avx512(float *h, const float *g, const float *u, long n);
void g2_geglu_bwd_avx512(float *dg, float *du, const float *dh, const float *g, const float *u, long n);
/* z = cap tanh(z / cap) in place; returns max z. */
float g2_softcap_max_avx512(float *z, long n, float cap);
/* p = exp(z - mx) (if p) ; returns the sum of exp(z - mx) */
float g2_expsum_avx512(float *p, const float *z, long n, float mx);
/* z (capped logits) -> dscale (exp(z - lse)) (1 - (z/cap)^2) in place (cap 0: no cap factor) */
void g2_xent_grad_avx512(float *z, long n, float lse, float cap, float dscale);
/* x = tanh(x) scalar-compatible helpers for tests */
void g2_tanh_array_avx512(float *y, const float *x, long n);

#endif
