/* vmath.c - dispatch of vmath.h, and its portable path (libm). */
#include <math.h>

#include "kernels/vmath.h"
#include "kernels/vmath_impl.h"

static g2_isa usable(g2_isa isa) {
    while (isa > G2_ISA_SCALAR && !g2_isa_available(isa)) isa = (g2_isa)(isa - 1);
    return isa;
}

void g2_vsoftcap_isa(g2_isa isa, float *x, size_t n, float pre, float cap) {
    switch (cap > 0 ? usable(isa) : G2_ISA_SCALAR) {
    case G2_ISA_AVX512: g2_vsoftcap_avx512(x, n, pre, cap); return;
    case G2_ISA_AVX2: g2_vsoftcap_avx2(x, n, pre, cap); return;
    case G2_ISA_SCALAR: break;
    }
    for (size_t i = 0; i < n; i++) x[i] = cap > 0 ? cap * tanhf(x[i] * pre / cap) : x[i] * pre;
}

void g2_vgelu_mul_isa(g2_isa isa, float *g, const float *u, size_t n) {
    switch (usable(isa)) {
    case G2_ISA_AVX512: g2_vgelu_mul_avx512(g, u, n); return;
    case G2_ISA_AVX2: g2_vgelu_mul_avx2(g, u, n); return;
    case G2_ISA_SCALAR: break;
    }
    for (size_t i = 0; i < n; i++) {
        const float x = g[i];
        g[i] = 0.5f * x * (1.0f + tanhf(G2_GELU_K * (x + G2_GELU_C * x * x * x))) * u[i];
    }
}

float g2_vexp_sum_isa(g2_isa isa, float *x, size_t n, float mx) {
    switch (usable(isa)) {
    case G2_ISA_AVX512: return g2_vexp_sum_avx512(x, n, mx);
    case G2_ISA_AVX2: return g2_vexp_sum_avx2(x, n, mx);
    case G2_ISA_SCALAR: break;
    }
    float sum = 0;
    for (size_t i = 0; i < n; i++) sum += x[i] = expf(x[i] - mx);
    return sum;
}

void g2_vsoftcap(float *x, size_t n, float pre, float cap) { g2_vsoftcap_isa(g2_isa_active(), x, n, pre, cap); }
void g2_vgelu_mul(float *g, const float *u, size_t n) { g2_vgelu_mul_isa(g2_isa_active(), g, u, n); }
float g2_vexp_sum(float *x, size_t n, float mx) { return g2_vexp_sum_isa(g2_isa_active(), x, n, mx); }
