/* distill.c - the distillation loss on soft targets and the sampling of sparse targets. */
#include "train/distill.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/ops.h"

uint64_t g2_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

void g2_soft_xent_forward(float *logits, float *losses, float *lse, const int32_t *targets,
                          const g2_soft_target *st, int N, int V, float cap, int nt) {
    /* the cap, the log-sum-exp and the one-hot loss as plain training computes them (the
     * vectorised path), then the soft part from the capped logits: sum_i p_i (lse - z_i) */
    g2_xent_forward(logits, losses, lse, targets, N, V, cap, nt);
    const double a = st->alpha;
#pragma omp parallel for schedule(static) num_threads(nt) if ((long)N * V >= 1L << 16)
    for (int n = 0; n < N; n++) {
        if (targets[n] < 0) continue;
        const float *z = logits + (size_t)n * V;
        double dot = 0, mass = 0;
        if (st->row) {
            for (int64_t j = st->row[n]; j < st->row[n + 1]; j++) dot += (double)st->w[j] * z[st->id[j]], mass += st->w[j];
        } else if (st->dense) {
            const float *p = st->dense + (size_t)n * V;
            for (int i = 0; i < V; i++) dot += (double)p[i] * z[i], mass += p[i];
        }
        if (mass <= 0) continue; /* no soft target here: the one-hot loss stays */
        /* mass is 1 up to rounding; using it keeps the loss exact for any normalisation */
        const double soft = mass * lse[n] - dot;
        losses[n] = (float)(a * losses[n] + (1.0 - a) * soft);
    }
}

void g2_soft_xent_backward(float *logits, const float *lse, const int32_t *targets, const g2_soft_target *st,
                           int N, int V, float cap, float dscale, int nt) {
    const float a = st->alpha;
#pragma omp parallel for schedule(static) num_threads(nt) if ((long)N * V >= 1L << 16)
    for (int n = 0; n < N; n++) {
        float *z = logits + (size_t)n * V;
        const int y = targets[n];
        if (y < 0) {
            memset(z, 0, sizeof(float) * (size_t)V);
            continue;
        }
        const float *dense = NULL;
        int64_t j = 0, je = 0;
        if (st->row)
            j = st->row[n], je = st->row[n + 1];
        else if (st->dense)
            dense = st->dense + (size_t)n * V;
        const int soft = dense || j < je;
        const float ws = soft ? 1.0f - a : 0.0f, wy = soft ? a : 1.0f;
        /* one pass over the row, merging the sparse ids (ascending) as it goes: the target of
         * entry i is ws * p_i + wy * [i == y]; d/d(raw) = (softmax - target) * (1 - (z/cap)^2) */
        for (int i = 0; i < V; i++) {
            float t = i == y ? wy : 0.0f;
            if (dense)
                t += ws * dense[i];
            else if (j < je && st->id[j] == i)
                t += ws * st->w[j++];
            float d = expf(z[i] - lse[n]) - t;
            if (cap > 0) {
                const float c = z[i] / cap;
                d *= 1.0f - c * c;
            }
            z[i] = d * dscale;
        }
    }
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double g2_distill_cdf(const float *logits, int V, double temperature, double *cdf) {
    float mx = -INFINITY;
    for (int i = 0; i < V; i++)
        if (logits[i] > mx) mx = logits[i];
    /* exp in float (the logits are float), the running sum in double so that the tail of a
     * 256k vocabulary is not rounded away */
    const float it = (float)(1.0 / temperature);
    double s = 0;
    for (int i = 0; i < V; i++) cdf[i] = s += expf((logits[i] - mx) * it);
    return s;
}

int g2_distill_draw(const double *cdf, int V, double total, int K, g2_rng *r, double *u, int32_t *ids,
                    uint32_t *counts) {
    /* K sorted uniforms walked along the CDF once: O(V + K log K), and the ids come out
     * ascending and grouped, which is the deduplication */
    for (int k = 0; k < K; k++) u[k] = g2_rng_uniform(r) * total;
    qsort(u, (size_t)K, sizeof *u, cmp_double);
    int n = 0, i = 0;
    for (int k = 0; k < K; k++) {
        /* a zero-probability entry has cdf equal to its predecessor and is never chosen, since
         * u < cdf[i-1] would have stopped the walk earlier */
        while (i < V - 1 && !(u[k] < cdf[i])) i++;
        if (n > 0 && ids[n - 1] == i)
            counts[n - 1]++;
        else
            ids[n] = i, counts[n] = 1, n++;
    }
    return n;
}

int g2_distill_sample(const float *logits, int V, double temperature, int K, g2_rng *r, double *cdf, double *u,
                      int32_t *ids, uint32_t *counts) {
    const double total = g2_distill_cdf(logits, V, temperature, cdf);
    return g2_distill_draw(cdf, V, total, K, r, u, ids, counts);
}

void g2_softmax_row(float *z, int V) {
    float mx = -INFINITY;
    for (int i = 0; i < V; i++)
        if (z[i] > mx) mx = z[i];
    double s = 0;
    for (int i = 0; i < V; i++) s += z[i] = expf(z[i] - mx);
    const float inv = (float)(1.0 / s);
    for (int i = 0; i < V; i++) z[i] *= inv;
}

/* min-heap on (logit, -id): the root is the weakest of the k kept */
static int weaker(const float *z, int a, int b) { return z[a] < z[b] || (z[a] == z[b] && a > b); }

static void sift_down(int32_t *h, int k, int i, const float *z) {
    for (;;) {
        int l = 2 * i + 1, m = i;
        if (l < k && weaker(z, h[l], h[m])) m = l;
        if (l + 1 < k && weaker(z, h[l + 1], h[m])) m = l + 1;
        if (m == i) return;
        const int32_t t = h[i];
        h[i] = h[m], h[m] = t, i = m;
    }
}

static int cmp_i32(const void *a, const void *b) {
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void g2_distill_topk(const float *logits, int V, int k, int32_t *ids, float *p, int32_t *scratch) {
    int32_t *h = scratch;
    for (int i = 0; i < k; i++) h[i] = i;
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(h, k, i, logits);
    for (int i = k; i < V; i++)
        if (weaker(logits, h[0], i)) h[0] = i, sift_down(h, k, 0, logits);
    /* ascending ids: the order the loss's merged walk needs */
    qsort(h, (size_t)k, sizeof *h, cmp_i32);
    float mx = -INFINITY;
    for (int i = 0; i < k; i++)
        if (logits[h[i]] > mx) mx = logits[h[i]];
    double s = 0;
    for (int i = 0; i < k; i++) s += exp((double)logits[h[i]] - mx);
    for (int i = 0; i < k; i++) ids[i] = h[i], p[i] = (float)(exp((double)logits[h[i]] - mx) / s);
}
