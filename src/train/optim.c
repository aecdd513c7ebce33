/* optim.c - AdamW, clipping, LR schedule. */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>

void g2_adamw_step(float *w, const float *g, float *m, float *v, size_t n, long t, double lr, const g2_adamw_hp *hp,
                   int nt) {
    /* scalars in double then rounded once, as torch computes them in Python */
    const double bc1 = 1.0 - pow(hp->beta1, (double)t), bc2 = 1.0 - pow(hp->beta2, (double)t);
    const float decay = (float)(1.0 - lr * hp->weight_decay), step = (float)(lr / bc1), bc2s = (float)sqrt(bc2),
                b1 = (float)hp->beta1, b2 = (float)hp->beta2, eps = (float)hp->eps;
    const float ob1 = (float)(1.0 - hp->beta1), ob2 = (float)(1.0 - hp->beta2);
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= 65536)
    for (size_t i = 0; i < n; i++) {
        const float gi = g[i];
        float wi = w[i] * decay;
        const float mi = m[i] * b1 + gi * ob1;
        const float vi = v[i] * b2 + gi * gi * ob2;
        m[i] = mi, v[i] = vi;
        wi -= step * (mi / (sqrtf(vi) / bc2s + eps));
        w[i] = wi;
    }
}

double g2_grad_norm(const float *g, size_t n, int nt) {
    /* fixed chunks summed in order: the same value for any thread count */
    const size_t chunk = 1 << 16, nc = (n + chunk - 1) / chunk;
    double *part = calloc(nc ? nc : 1, sizeof(double));
    if (!part) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
        return sqrt(s);
    }
#pragma omp parallel for schedule(static) num_threads(nt) if (nc > 1)
    for (size_t c = 0; c < nc; c++) {
        double s = 0;
        const size_t e = (c + 1) * chunk < n ? (c + 1) * chunk : n;
        for (size_t i = c * chunk; i < e; i++) s += (double)g[i] * g[i];
        part[c] = s;
    }
    double s = 0;
    for (size_t c = 0; c < nc; c++) s += part[c];
    free(part);
    return sqrt(s);
}

double g2_clip_grad_norm(float *g, size_t n, float max_norm, int nt) {
    const double norm = g2_grad_norm(g, n, nt);
    if (max_norm > 0 && norm > max_norm) {
        const float k = (float)(max_norm / (norm + 1e-6));
#pragma omp parallel for schedule(static) num_threads(nt) if (n >= 65536)
        for (size_t i = 0; i < n; i++) g[i] *= k;
    }
    return norm;
}

float g2_lr_schedule(long step, long total, long warmup, float lr, float min_frac) {
    if (step < warmup) return lr * (float)(step + 1) / (float)warmup;
    if (total <= warmup + 1) return lr;
    const double p = (double)(step - warmup) / (double)(total - warmup - 1);
    const double k = min_frac + (1.0 - min_frac) * 0.5 * (1.0 + cos(3.141592653589793 * (p > 1 ? 1 : p)));
    return (float)(lr * k);
}
