/* vmath.h - the elementwise functions of the forward pass over fp32 arrays: the tanh of the
 * soft-caps and of the GELU, and the exponentials of the softmax.
 *
 * libm's tanhf costs about 20 ns a value; a decode step of the 2B model takes ~500k of them
 * (256k capped logits, 26 x 9216 GELU values), several milliseconds per token, and prefill's
 * attention takes n^2/2 per head and layer. The AVX-512 and AVX2 paths evaluate the same
 * functions 16 or 8 values at a time (Cephes' tanhf and expf polynomials: tanh(x) by an odd
 * polynomial for |x| < 0.625 and 1 - 2 / (exp(2|x|) + 1) above; exp by exp(r) * 2^n with
 * |r| <= ln2/2), within 2.1 x 2^-24 relative of the exact functions (tests/unit/test_vmath.c
 * measures them against float64). The scalar path calls libm. Dispatched per call like the matrix
 * kernels (GEMMA2_ISA applies). NaN stays NaN; tanh(+-inf) = +-1. */
#ifndef G2_VMATH_H
#define G2_VMATH_H

#include <stddef.h>

#include "kernels/matmul.h"

/* x[i] = cap * tanh(pre * x[i] / cap) (the soft-cap of scores or logits, with a scale applied
 * first); cap <= 0: x[i] = pre * x[i]. */
void g2_vsoftcap(float *x, size_t n, float pre, float cap);
/* g[i] = gelu_tanh(g[i]) * u[i], gelu_tanh(x) = x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
void g2_vgelu_mul(float *g, const float *u, size_t n);
/* x[i] = exp(x[i] - mx); returns the sum of the new x[i] (fp32, in an unspecified order). */
float g2_vexp_sum(float *x, size_t n, float mx);

/* The same on a given instruction set (tests); an unavailable one runs the best below it. */
void g2_vsoftcap_isa(g2_isa isa, float *x, size_t n, float pre, float cap);
void g2_vgelu_mul_isa(g2_isa isa, float *g, const float *u, size_t n);
float g2_vexp_sum_isa(g2_isa isa, float *x, size_t n, float mx);

#endif
