/* test_vmath.c - the vectorised tanh / GELU / exp of vmath.h on every instruction set this CPU
 * has, against float64 (tanh, exp from libm in double).
 *
 * Tolerances, in units of 2^-24 relative (U; one ulp is 1-2 U depending on where in its binade
 * a value lies): the scalar path is libm's tanhf/expf; the vector paths use Cephes'
 * polynomials. tanh within 4 U (measured 2.03, libm 2.44); exp within 2 U of results above
 * FLT_MIN (measured 1.86, libm 0.99) and within FLT_MIN below (gradual underflow). The soft-cap
 * and GELU multiply and divide around tanh: their bound is the tanh bound plus a few roundings of
 * the operands, taken relative to the operands' magnitudes because 1 + tanh cancels for large
 * negative GELU inputs (the same formula in every path). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "kernels/vmath.h"

#define ULP (1.0 / 16777216.0) /* U = 2^-24 */

/* a sweep over every scale from 1e-30 to 100, both signs, plus specials */
static size_t sweep(float *x, size_t cap) {
    size_t n = 0;
    for (double v = 1e-30; v < 100 && n + 2 <= cap; v *= 1.0007) {
        x[n++] = (float)v;
        x[n++] = (float)-v;
    }
    for (int i = 0; i < 20000 && n < cap; i++) x[n++] = -12.0f + 24.0f * (float)i / 20000.0f;
    return n;
}

static void test_tanh_accuracy(void) {
    enum { CAP = 200000 };
    float *x = malloc(CAP * sizeof(float)), *y = malloc(CAP * sizeof(float));
    const size_t n = sweep(x, CAP);
    for (int isa = G2_ISA_SCALAR; isa <= G2_ISA_AVX512; isa++) {
        if (!g2_isa_available((g2_isa)isa)) continue;
        memcpy(y, x, n * sizeof(float));
        g2_vsoftcap_isa((g2_isa)isa, y, n, 1.0f, 1.0f); /* 1 * tanh(x / 1) = tanh(x) exactly */
        double worst = 0;
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            const double t = tanh((double)x[i]), e = fabs(y[i] - t) / (fabs(t) * ULP);
            if (e > worst) worst = e;
            if (!(e <= 4.0)) bad++;
        }
        CHECK(bad == 0, "%s: %zu values beyond 4 U (worst %.2f)", g2_isa_name((g2_isa)isa), bad, worst);
        printf("# tanh %s: worst %.2f U over %zu values\n", g2_isa_name((g2_isa)isa), worst, n);
        /* specials, and lengths that leave every tail size */
        float s[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-45f, 30.0f, -30.0f, 1e30f, -1e30f};
        g2_vsoftcap_isa((g2_isa)isa, s, 10, 1.0f, 1.0f);
        CHECK(s[0] == 0 && !signbit(s[0]) && s[1] == 0 && signbit(s[1]), "%s: tanh(+-0)", g2_isa_name((g2_isa)isa));
        CHECK(s[2] == 1 && s[3] == -1 && isnan(s[4]), "%s: tanh(+-inf) %g %g, tanh(nan) %g", g2_isa_name((g2_isa)isa), s[2],
              s[3], s[4]);
        CHECK(s[5] == 1e-45f && s[6] == 1 && s[7] == -1 && s[8] == 1 && s[9] == -1, "%s: extremes",
              g2_isa_name((g2_isa)isa));
        for (size_t len = 0; len <= 40; len++) {
            float a[48];
            for (int i = 0; i < 48; i++) a[i] = (float)(i - 20) * 0.3f;
            g2_vsoftcap_isa((g2_isa)isa, a, len, 1.0f, 1.0f);
            int ok = 1;
            for (size_t i = 0; i < 48; i++) {
                const double v = (double)((int)i - 20) * 0.3f;
                ok &= i < len ? fabs(a[i] - tanh(v)) <= 4 * ULP * fabs(tanh(v)) : a[i] == (float)v;
            }
            CHECK(ok, "%s: length %zu", g2_isa_name((g2_isa)isa), len);
        }
    }
    free(x);
    free(y);
}

static void test_softcap_and_gelu(void) {
    enum { N = 4099 };
    float *x = malloc(N * sizeof(float)), *u = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    uint32_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 200.0f; /* scores and logits up to +-100 */
        u[i] = ((float)(s & 0xFF) - 128.0f) / 16.0f;
    }
    for (int isa = G2_ISA_SCALAR; isa <= G2_ISA_AVX512; isa++) {
        if (!g2_isa_available((g2_isa)isa)) continue;
        const char *name = g2_isa_name((g2_isa)isa);
        /* attention's cap 50 with a query scale, and the final cap 30 */
        const float pre[] = {0.0625f, 1.0f}, cap[] = {50.0f, 30.0f};
        for (int k = 0; k < 2; k++) {
            memcpy(y, x, N * sizeof(float));
            g2_vsoftcap_isa((g2_isa)isa, y, N, pre[k], cap[k]);
            int bad = 0;
            for (int i = 0; i < N; i++) {
                const double e = cap[k] * tanh((double)x[i] * pre[k] / cap[k]);
                if (!(fabs(y[i] - e) <= 7 * ULP * fabs(e) + 1e-30)) bad++;
            }
            CHECK(bad == 0, "%s: soft-cap %g: %d off", name, cap[k], bad);
        }
        memcpy(y, x, N * sizeof(float));
        g2_vsoftcap_isa((g2_isa)isa, y, N, 0.5f, 0.0f); /* no cap: the scale alone, exactly */
        int exact = 1;
        for (int i = 0; i < N; i++) exact &= y[i] == x[i] * 0.5f;
        CHECK(exact, "%s: cap 0", name);

        for (int i = 0; i < N; i++) y[i] = x[i] / 10.0f; /* GELU inputs within +-10 */
        g2_vgelu_mul_isa((g2_isa)isa, y, u, N);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            const double v = (float)(x[i] / 10.0f), k = 0.7978845608028654;
            const double e = 0.5 * v * (1 + tanh(k * (v + 0.044715 * v * v * v))) * u[i];
            if (!(fabs(y[i] - e) <= 12 * ULP * fabs(v * u[i]) + 1e-30)) bad++;
        }
        CHECK(bad == 0, "%s: gelu: %d off", name, bad);
    }
    free(x);
    free(u);
    free(y);
}

static void test_exp_sum(void) {
    enum { N = 30011 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) x[i] = -110.0f + 115.0f * (float)i / N; /* x - mx from -115 to 0 */
    for (int isa = G2_ISA_SCALAR; isa <= G2_ISA_AVX512; isa++) {
        if (!g2_isa_available((g2_isa)isa)) continue;
        const char *name = g2_isa_name((g2_isa)isa);
        memcpy(y, x, N * sizeof(float));
        const float sum = g2_vexp_sum_isa((g2_isa)isa, y, N, 5.0f);
        double esum = 0, worst = 0;
        int bad = 0;
        for (int i = 0; i < N; i++) {
            const double e = exp((double)(x[i] - 5.0f));
            esum += e;
            const double err = fabs(y[i] - e);
            if (e >= FLT_MIN && err / (e * ULP) > worst) worst = err / (e * ULP);
            if (!(e >= FLT_MIN ? err <= 2 * ULP * e : err <= FLT_MIN)) bad++;
        }
        CHECK(bad == 0, "%s: exp: %d off (worst %.2f U)", name, bad, worst);
        printf("# exp %s: worst %.2f U\n", name, worst);
        CHECK_NEAR(sum, esum, 1e-5 * esum, "%s: the sum", name);
        float s[] = {NAN, -INFINITY, 0.0f, 100.0f};
        g2_vexp_sum_isa((g2_isa)isa, s, 4, 0.0f);
        CHECK(isnan(s[0]) && s[1] == 0 && s[2] == 1 && isinf(s[3]), "%s: exp specials %g %g %g %g", name, s[0], s[1],
              s[2], s[3]);
    }
    free(x);
    free(y);
}

int main(void) {
    RUN(test_tanh_accuracy);
    RUN(test_softcap_and_gelu);
    RUN(test_exp_sum);
    HARNESS_END();
}
