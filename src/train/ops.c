/* ops.c - forward and backward of each training op (see ops.h for shapes). */
#include "train/ops.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "train/sgemm.h"
#include "train/vmath.h"

int g2_vmath_avx512(void) {
    const char *isa = getenv("GEMMA2_ISA");
    if (isa && (!strcmp(isa, "scalar") || !strcmp(isa, "avx2"))) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}

/* Below this many elements of work a loop runs on one thread: waking the team costs more than it
 * saves (much more on a loaded machine, where a barrier waits for a descheduled thread). */
#define PAR_MIN 65536L

/* Element-wise loops in chunks of this many, so that each vector call is long. */
#define CHUNK 4096L

void g2_embedding_forward(float *out, const int32_t *ids, const float *E, int N, int d, float s) {
    for (int n = 0; n < N; n++) {
        const float *e = E + (size_t)ids[n] * d;
        float *o = out + (size_t)n * d;
        for (int i = 0; i < d; i++) o[i] = e[i] * s;
    }
}

void g2_embedding_backward(float *dE, const float *dout, const int32_t *ids, int N, int d, float s) {
    for (int n = 0; n < N; n++) {
        float *g = dE + (size_t)ids[n] * d;
        const float *o = dout + (size_t)n * d;
        for (int i = 0; i < d; i++) g[i] += o[i] * s;
    }
}

void g2_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int d, float eps, int nt) {
#pragma omp parallel for schedule(static) num_threads(nt) if ((long)N * d >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * d;
        float *o = out + (size_t)n * d;
        double ss = 0;
        for (int i = 0; i < d; i++) ss += (double)xr[i] * xr[i];
        const float r = (float)(1.0 / sqrt(ss / d + (double)eps));
        rstd[n] = r;
        for (int i = 0; i < d; i++) o[i] = xr[i] * r * (1.0f + w[i]);
    }
}

/* y = x r s with r = (mean x^2 + eps)^-1/2, s = 1 + w:
 *   dx = r (g - x r^2 mean(g x)),  g = dy s;   ds = sum_n dy x r */
void g2_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *rstd, const float *w,
                         int N, int d, int accumulate, int nt) {
#pragma omp parallel for schedule(static) num_threads(nt) if ((long)N * d >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * d, *dy = dout + (size_t)n * d;
        float *o = dx + (size_t)n * d;
        const float r = rstd[n];
        double dot = 0;
        for (int i = 0; i < d; i++) dot += (double)dy[i] * (1.0f + w[i]) * xr[i];
        const float c = (float)(dot / d) * r * r;
        for (int i = 0; i < d; i++) {
            float v = r * (dy[i] * (1.0f + w[i]) - xr[i] * c);
            o[i] = accumulate ? o[i] + v : v;
        }
    }
    /* the weight gradient sums over rows: one fixed order, split over columns */
#pragma omp parallel for schedule(static) num_threads(nt) if ((long)N * d >= PAR_MIN)
    for (int i0 = 0; i0 < d; i0 += 64) {
        const int i1 = i0 + 64 < d ? i0 + 64 : d;
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * d, *dy = dout + (size_t)n * d;
            const float r = rstd[n];
            for (int i = i0; i < i1; i++) dw[i] += dy[i] * xr[i] * r;
        }
    }
}

void g2_matmul_forward(float *out, const float *inp, const float *W, int N, int I, int O, int nt) {
    g2_sgemm(0, 1, N, O, I, 1.0f, inp, I, W, I, 0.0f, out, O, nt);
}

void g2_matmul_backward(float *dinp, float *dW, const float *dout, const float *inp, const float *W, int N, int I, int O,
                        int accumulate, int nt) {
    if (dinp) g2_sgemm(0, 0, N, I, O, 1.0f, dout, O, W, I, accumulate ? 1.0f : 0.0f, dinp, I, nt);
    g2_sgemm(1, 0, O, I, N, 1.0f, dout, O, inp, I, 1.0f, dW, I, nt);
}

void g2_rope_tables(float *cos_t, float *sin_t, int T, int hd, float theta) {
    const int half = hd / 2;
    for (int p = 0; p < T; p++)
        for (int i = 0; i < half; i++) {
            double a = (double)p * pow((double)theta, -2.0 * i / hd);
            cos_t[(size_t)p * half + i] = (float)cos(a);
            sin_t[(size_t)p * half + i] = (float)sin(a);
        }
}

static void rope_apply(float *x, int N, int T, int nheads, int hd, const float *cos_t, const float *sin_t, float sgn,
                       int nt) {
    const int half = hd / 2;
#pragma omp parallel for schedule(static) num_threads(nt) if ((long)N * nheads * hd >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *c = cos_t + (size_t)(n % T) * half, *s = sin_t + (size_t)(n % T) * half;
        for (int h = 0; h < nheads; h++) {
            float *v = x + ((size_t)n * nheads + h) * hd;
            for (int i = 0; i < half; i++) {
                const float a = v[i], b = v[i + half], si = sgn * s[i];
                v[i] = a * c[i] - b * si;
                v[i + half] = b * c[i] + a * si;
            }
        }
    }
}

void g2_rope_forward(float *x, int N, int T, int nheads, int hd, const float *cos_t, const float *sin_t, int nt) {
    rope_apply(x, N, T, nheads, hd, cos_t, sin_t, 1.0f, nt);
}

/* The rotation by -angle is the transpose of the rotation by +angle. */
void g2_rope_backward(float *dx, int N, int T, int nheads, int hd, const float *cos_t, const float *sin_t, int nt) {
    rope_apply(dx, N, T, nheads, hd, cos_t, sin_t, -1.0f, nt);
}

/* The scores go through our single-threaded GEMM per (batch, head): the upper triangle is
 * wasted, but a dense kernel on T x T beats a scalar loop by far; tasks run in parallel. */
void g2_attention_forward(float *out, float *pre, float *att, const float *q, const float *k, const float *v, int B,
                          int T, int nh, int nkv, int hd, float scale, float cap, int window, int nt) {
    const int group = nh / nkv, qd = nh * hd, kvd = nkv * hd, fast = g2_vmath_avx512();
#pragma omp parallel for schedule(static) num_threads(nt) if ((long)B * nh * T * T >= PAR_MIN)
    for (int bh = 0; bh < B * nh; bh++) {
        const int b = bh / nh, h = bh % nh, kh = h / group;
        const float *Q = q + (size_t)b * T * qd + (size_t)h * hd;
        const float *K = k + (size_t)b * T * kvd + (size_t)kh * hd;
        const float *V = v + (size_t)b * T * kvd + (size_t)kh * hd;
        float *S = pre + (size_t)bh * T * T, *P = att + (size_t)bh * T * T;
        g2_sgemm(0, 1, T, T, hd, scale, Q, qd, K, kvd, 0.0f, S, T, 1);
        for (int i = 0; i < T; i++) {
            float *s = S + (size_t)i * T, *p = P + (size_t)i * T;
            const int lo = window > 0 && i - window + 1 > 0 ? i - window + 1 : 0;
            float mx = -INFINITY, sum = 0;
            if (fast) {
                mx = g2_softcap_max_avx512(s + lo, i - lo + 1, cap); /* the soft-cap comes before the mask */
                sum = g2_expsum_avx512(p + lo, s + lo, i - lo + 1, mx);
            } else {
                for (int j = lo; j <= i; j++) {
                    if (cap > 0) s[j] = cap * tanhf(s[j] / cap);
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = lo; j <= i; j++) sum += (p[j] = expf(s[j] - mx));
            }
            const float inv = 1.0f / sum;
            for (int j = 0; j < lo; j++) p[j] = s[j] = 0;
            for (int j = lo; j <= i; j++) p[j] *= inv;
            for (int j = i + 1; j < T; j++) p[j] = s[j] = 0;
        }
        g2_sgemm(0, 0, T, hd, T, 1.0f, P, T, V, kvd, 0.0f, out + (size_t)b * T * qd + (size_t)h * hd, qd, 1);
    }
}

/* Per (batch, kv head) task, so that the heads sharing a kv head add their dk, dv in order:
 *   dP = dO V^T;  dV += P^T dO;  dS = P (dP - rowsum(P dP)) (1 - (s/cap)^2);
 *   dQ = scale dS K;  dK += scale dS^T Q */
void g2_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *pre,
                           const float *att, const float *q, const float *k, const float *v, int B, int T, int nh,
                           int nkv, int hd, float scale, float cap, int nt) {
    const int group = nh / nkv, qd = nh * hd, kvd = nkv * hd;
#pragma omp parallel for schedule(static) num_threads(nt) if ((long)B * nh * T * T >= PAR_MIN)
    for (int bk = 0; bk < B * nkv; bk++) {
        const int b = bk / nkv, kh = bk % nkv;
        float *dP = scratch + (size_t)omp_get_thread_num() * T * T;
        const float *K = k + (size_t)b * T * kvd + (size_t)kh * hd, *V = v + (size_t)b * T * kvd + (size_t)kh * hd;
        float *dK = dk + (size_t)b * T * kvd + (size_t)kh * hd, *dV = dv + (size_t)b * T * kvd + (size_t)kh * hd;
        for (int g = 0; g < group; g++) {
            const int h = kh * group + g, bh = b * nh + h;
            const float *dO = dout + (size_t)b * T * qd + (size_t)h * hd, *Q = q + (size_t)b * T * qd + (size_t)h * hd;
            const float *S = pre + (size_t)bh * T * T, *P = att + (size_t)bh * T * T;
            const float beta = g == 0 ? 0.0f : 1.0f;
            g2_sgemm(0, 1, T, T, hd, 1.0f, dO, qd, V, kvd, 0.0f, dP, T, 1);
            g2_sgemm(1, 0, T, hd, T, 1.0f, P, T, dO, qd, beta, dV, kvd, 1);
            for (int i = 0; i < T; i++) {
                float *d = dP + (size_t)i * T;
                const float *p = P + (size_t)i * T, *s = S + (size_t)i * T;
                float sum = 0;
                for (int j = 0; j <= i; j++) sum += p[j] * d[j];
                for (int j = 0; j <= i; j++) {
                    float ds = p[j] * (d[j] - sum);
                    if (cap > 0) {
                        const float t = s[j] / cap;
                        ds *= 1.0f - t * t;
                    }
                    d[j] = ds;
                }
                for (int j = i + 1; j < T; j++) d[j] = 0;
            }
            g2_sgemm(0, 0, T, hd, T, scale, dP, T, K, kvd, 0.0f, dq + (size_t)b * T * qd + (size_t)h * hd, qd, 1);
            g2_sgemm(1, 0, T, hd, T, scale, dP, T, Q, qd, beta, dK, kvd, 1);
        }
    }
}

#define GELU_K 0.7978845608028654f /* sqrt(2 / pi) */

void g2_geglu_forward(float *h, const float *g, const float *u, long n, int nt) {
    if (g2_vmath_avx512()) {
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= PAR_MIN)
        for (long i = 0; i < n; i += CHUNK) g2_geglu_fwd_avx512(h + i, g + i, u + i, n - i < CHUNK ? n - i : CHUNK);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= PAR_MIN)
    for (long i = 0; i < n; i++) {
        const float x = g[i];
        h[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x))) * u[i];
    }
}

void g2_geglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, long n, int nt) {
    if (g2_vmath_avx512()) {
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= PAR_MIN)
        for (long i = 0; i < n; i += CHUNK)
            g2_geglu_bwd_avx512(dg + i, du + i, dh + i, g + i, u + i, n - i < CHUNK ? n - i : CHUNK);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= PAR_MIN)
    for (long i = 0; i < n; i++) {
        const float x = g[i], t = tanhf(GELU_K * (x + 0.044715f * x * x * x));
        const float gelu = 0.5f * x * (1.0f + t);
        const float dgelu = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        const float d = dh[i];
        dg[i] = d * u[i] * dgelu;
        du[i] = d * gelu;
    }
}

void g2_residual_forward(float *out, const float *a, const float *b, long n) {
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void g2_xent_forward(float *logits, float *losses, float *lse, const int32_t *targets, int N, int V, float cap, int nt) {
    const int fast = g2_vmath_avx512();
#pragma omp parallel for schedule(static) num_threads(nt) if ((long)N * V >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *z = logits + (size_t)n * V;
        if (targets[n] < 0) {
            losses[n] = 0, lse[n] = 0;
            continue;
        }
        float mx = -INFINITY;
        double sum = 0;
        if (fast) {
            mx = g2_softcap_max_avx512(z, V, cap);
            sum = g2_expsum_avx512(NULL, z, V, mx);
        } else {
            for (int i = 0; i < V; i++) {
                if (cap > 0) z[i] = cap * tanhf(z[i] / cap);
                if (z[i] > mx) mx = z[i];
            }
            for (int i = 0; i < V; i++) sum += expf(z[i] - mx);
        }
        lse[n] = mx + (float)log(sum);
        losses[n] = (float)((double)mx + log(sum) - z[targets[n]]);
    }
}

void g2_xent_backward(float *logits, const float *lse, const int32_t *targets, int N, int V, float cap, float dscale,
                      int nt) {
    const int fast = g2_vmath_avx512();
#pragma omp parallel for schedule(static) num_threads(nt) if ((long)N * V >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *z = logits + (size_t)n * V;
        if (targets[n] < 0) {
            memset(z, 0, sizeof(float) * (size_t)V);
            continue;
        }
        if (fast) {
            const float tt = cap > 0 ? z[targets[n]] / cap : 0;
            g2_xent_grad_avx512(z, V, lse[n], cap, dscale);
            z[targets[n]] -= dscale * (1.0f - tt * tt); /* the one-hot part */
            continue;
        }
        for (int i = 0; i < V; i++) {
            float d = expf(z[i] - lse[n]) - (i == targets[n] ? 1.0f : 0.0f);
            if (cap > 0) {
                const float t = z[i] / cap;
                d *= 1.0f - t * t;
            }
            z[i] = d * dscale;
        }
    }
}
