/* test_distill.c - the distillation objective and the sampled-target cache:
 *  - loss and gradient of the soft-target cross-entropy (sparse, dense, mixed with the one-hot
 *    loss, biting soft-cap, rows without target) against a float64 reference, and by central
 *    differences, alone and through a whole tiny model;
 *  - the sampler: empirical frequencies converge to softmax(logits / T); top-k against brute force;
 *  - the cache: write/read round trip, same seed = same samples, resume after an interruption
 *    gives the bytes of an uninterrupted write, and clear errors for a truncated cache and for
 *    one made with another vocabulary, tokenizer, data or window length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "train/distill.h"
#include "train/distill_cache.h"
#include "train/graph.h"
#include "train/ops.h"
#include "util/rng.h"
#include "train/tmodel.h"

static void fill(float *x, size_t n, g2_rng *r, double sd) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(sd * g2_rng_normal(r));
}

/* ---- the loss against float64 ---- */

enum { N = 7, V = 29 };

typedef struct {
    int64_t row[N + 1];
    int32_t id[N * V];
    float w[N * V];
    float dense[N * V];
    int32_t tg[N];
    g2_soft_target st;
} soft_case;

/* Random sparse rows (ascending ids, some rows empty) or dense rows; one row without target. */
static void make_case(soft_case *c, g2_rng *r, int dense, float alpha) {
    memset(c, 0, sizeof *c);
    int64_t e = 0;
    for (int n = 0; n < N; n++) {
        c->tg[n] = n == 3 ? -1 : (int32_t)g2_rng_below(r, V);
        c->row[n] = e;
        const int k = n == 5 ? 0 : 1 + (int)g2_rng_below(r, 9);
        double s = 0;
        for (int i = 0; i < V && k; i++)
            if (g2_rng_below(r, V) < (uint64_t)k) c->id[e] = i, c->w[e] = (float)(0.1 + g2_rng_uniform(r)), s += c->w[e], e++;
        for (int64_t j = c->row[n]; j < e; j++) c->w[j] = (float)(c->w[j] / s);
        double ds = 0;
        for (int i = 0; i < V; i++) ds += c->dense[n * V + i] = (float)exp(2 * g2_rng_normal(r));
        for (int i = 0; i < V; i++) c->dense[n * V + i] = (float)(c->dense[n * V + i] / ds);
    }
    c->row[N] = e;
    c->st = dense ? (g2_soft_target){.dense = c->dense, .alpha = alpha}
                  : (g2_soft_target){.row = c->row, .id = c->id, .w = c->w, .alpha = alpha};
}

/* float64 reference: loss of every row and d(sum loss)/d(raw logits). */
static void reference(const soft_case *c, const float *raw, float cap, double *loss, double *grad) {
    for (int n = 0; n < N; n++) {
        double z[V], t[V] = {0}, mx = -1e300, s = 0;
        for (int i = 0; i < V; i++) {
            z[i] = cap > 0 ? cap * tanh(raw[n * V + i] / cap) : raw[n * V + i];
            mx = fmax(mx, z[i]);
        }
        for (int i = 0; i < V; i++) s += exp(z[i] - mx);
        const double lse = mx + log(s);
        if (c->tg[n] < 0) {
            loss[n] = 0;
            for (int i = 0; i < V; i++) grad[n * V + i] = 0;
            continue;
        }
        int soft = 0;
        if (c->st.dense)
            for (int i = 0; i < V; i++) t[i] = c->dense[n * V + i], soft = 1;
        else
            for (int64_t j = c->row[n]; j < c->row[n + 1]; j++) t[c->id[j]] += c->w[j], soft = 1;
        const double a = soft ? c->st.alpha : 1.0;
        for (int i = 0; i < V; i++) t[i] *= 1 - a;
        t[c->tg[n]] += a;
        loss[n] = 0;
        for (int i = 0; i < V; i++) loss[n] += t[i] * (lse - z[i]);
        for (int i = 0; i < V; i++) {
            const double dz = exp(z[i] - lse) - t[i], u = cap > 0 ? z[i] / cap : 0;
            grad[n * V + i] = dz * (1 - u * u);
        }
    }
}

static void loss_case(int dense, float alpha, float cap) {
    g2_rng r;
    g2_rng_seed(&r, 11 + dense);
    static soft_case c;
    make_case(&c, &r, dense, alpha);
    float raw[N * V], z[N * V], losses[N], lse[N];
    fill(raw, N * V, &r, 4.0); /* |logits| up to ~12 against a cap of 5: the cap bites */
    double rl[N], rg[N * V];
    reference(&c, raw, cap, rl, rg);
    memcpy(z, raw, sizeof z);
    g2_soft_xent_forward(z, losses, lse, c.tg, &c.st, N, V, cap, 1);
    for (int n = 0; n < N; n++) CHECK_NEAR(losses[n], rl[n], 1e-5 * fmax(1, fabs(rl[n])), "row %d loss", n);
    const float dscale = 0.37f;
    g2_soft_xent_backward(z, lse, c.tg, &c.st, N, V, cap, dscale, 1);
    double worst = 0;
    for (int i = 0; i < N * V; i++) worst = fmax(worst, fabs(z[i] - dscale * rg[i]));
    CHECK(worst < 2e-6, "max |grad - float64 reference| = %.3g", worst);

    /* central differences of the float32 op itself */
    double fdw = 0, gmax = 0;
    for (int i = 0; i < N * V; i += 3) {
        const float h = 1e-2f;
        double lp = 0, lm = 0;
        for (int s = -1; s <= 1; s += 2) {
            float zz[N * V], ll[N], ls[N];
            memcpy(zz, raw, sizeof zz);
            zz[i] += (float)s * h;
            g2_soft_xent_forward(zz, ll, ls, c.tg, &c.st, N, V, cap, 1);
            double sum = 0;
            for (int n = 0; n < N; n++) sum += ll[n];
            if (s < 0)
                lm = sum;
            else
                lp = sum;
        }
        const double fd = (lp - lm) / (2.0 * h) * dscale;
        fdw = fmax(fdw, fabs(fd - z[i]));
        gmax = fmax(gmax, fabs(z[i]));
    }
    CHECK(gmax > 0 && fdw < 2e-3 * fmax(1, gmax), "finite differences: max diff %.3g (max grad %.3g)", fdw, gmax);
}

static void test_loss_sparse_vs_f64(void) { loss_case(0, 0.0f, 5.0f); }
static void test_loss_sparse_mixed_nocap(void) { loss_case(0, 0.3f, 0.0f); }
static void test_loss_dense_mixed_cap(void) { loss_case(1, 0.25f, 5.0f); }

/* alpha = 1 is the plain next-token loss, bit for bit the trainer's own op */
static void test_alpha1_is_onehot(void) {
    g2_rng r;
    g2_rng_seed(&r, 5);
    static soft_case c;
    make_case(&c, &r, 0, 1.0f);
    float a[N * V], b[N * V], la[N], lb[N], sa[N], sb[N];
    fill(a, N * V, &r, 3.0);
    memcpy(b, a, sizeof a);
    g2_soft_xent_forward(a, la, sa, c.tg, &c.st, N, V, 5.0f, 1);
    g2_xent_forward(b, lb, sb, c.tg, N, V, 5.0f, 1);
    for (int n = 0; n < N; n++) CHECK_NEAR(la[n], lb[n], 1e-6, "row %d", n);
}

/* ---- through a whole model ---- */

typedef struct {
    g2_tmodel *m;
    g2_acts *a;
    int32_t *ids, *tg;
} model_ctx;

static double model_loss(model_ctx *c) {
    int cnt;
    return g2_train_forward(c->m, c->a, c->ids, c->tg, &cnt) / cnt;
}

static void test_model_fd_sparse_target(void) {
    gemma2_config cfg = {.vocab_size = 13, .hidden_size = 8, .intermediate_size = 12, .num_layers = 2,
                         .num_heads = 2, .num_kv_heads = 1, .head_dim = 4, .sliding_window = 3,
                         .max_position_embeddings = 64, .query_pre_attn_scalar = 4, .attn_logit_softcap = 1.5f,
                         .final_logit_softcap = 2.0f, .rms_norm_eps = 1e-6f, .rope_theta = 10000};
    g2_tmodel m;
    gemma2_error err;
    if (g2_tmodel_create(&cfg, &m, &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    g2_rng r;
    g2_rng_seed(&r, 3);
    fill(m.params, m.n_params, &r, 0.7);
    enum { B = 2, T = 6, NT = B * T };
    g2_acts a;
    CHECK(g2_acts_create(&a, &cfg, B, T, 2, &err) == GEMMA2_OK, "%s", err.msg);
    int32_t ids[NT], tg[NT], sid[NT * 13];
    int64_t row[NT + 1];
    float w[NT * 13];
    for (int i = 0; i < NT; i++) ids[i] = (int32_t)g2_rng_below(&r, 13);
    g2_next_token_targets(ids, tg, B, T);
    /* sparse targets drawn from a random "teacher" with the real sampler */
    double cdf[13], u[32];
    uint32_t cnt[13];
    int64_t e = 0;
    for (int n = 0; n < NT; n++) {
        float tl[13];
        fill(tl, 13, &r, 2.0);
        row[n] = e;
        const int k = g2_distill_sample(tl, 13, 1.0, 32, &r, cdf, u, sid + e, cnt);
        for (int j = 0; j < k; j++) w[e + j] = cnt[j] / 32.0f;
        e += k;
    }
    row[NT] = e;
    const g2_soft_target st = {.row = row, .id = sid, .w = w, .alpha = 0.2f};
    a.soft = &st;
    model_ctx c = {&m, &a, ids, tg};
    int n_t;
    memset(m.grads, 0, 4 * m.n_params);
    g2_train_forward(&m, &a, ids, tg, &n_t);
    g2_train_backward(&m, &a, 1.0f / n_t);
    double worst = 0, gmax = 0;
    for (size_t i = 0; i < m.n_params; i += 7) {
        const float x0 = m.params[i], h = 2e-3f;
        m.params[i] = x0 + h;
        const double lp = model_loss(&c);
        m.params[i] = x0 - h;
        const double lm = model_loss(&c);
        m.params[i] = x0;
        worst = fmax(worst, fabs((lp - lm) / (2.0 * h) - m.grads[i]));
        gmax = fmax(gmax, fabs(m.grads[i]));
    }
    CHECK(gmax > 0 && worst <= 5e-3 * gmax, "whole model: max |fd - analytic| %.3g, max |grad| %.3g", worst, gmax);
    g2_acts_free(&a);
    g2_tmodel_free(&m);
}

/* ---- the sampler ---- */

static void test_sample_frequencies(void) {
    enum { VV = 50, K = 200000 };
    g2_rng r;
    g2_rng_seed(&r, 9);
    float z[VV];
    fill(z, VV, &r, 1.5);
    z[7] = -1e30f; /* probability 0: never drawn */
    double *cdf = malloc(sizeof(double) * VV), *u = malloc(sizeof(double) * K);
    int32_t ids[VV];
    uint32_t cnt[VV];
    for (int pass = 0; pass < 2; pass++) {
        const double temp = pass ? 2.0 : 1.0;
        double p[VV], s = 0, mx = -1e300;
        for (int i = 0; i < VV; i++) mx = fmax(mx, z[i]);
        for (int i = 0; i < VV; i++) s += p[i] = exp((z[i] - mx) / temp);
        const int n = g2_distill_sample(z, VV, temp, K, &r, cdf, u, ids, cnt);
        double f[VV] = {0};
        uint64_t total = 0;
        for (int j = 0; j < n; j++) {
            CHECK(j == 0 || ids[j] > ids[j - 1], "ids ascending");
            f[ids[j]] = (double)cnt[j] / K, total += cnt[j];
        }
        CHECK(total == K, "counts add up to K");
        double worst = 0;
        for (int i = 0; i < VV; i++) {
            p[i] /= s;
            /* 5 standard deviations of a binomial frequency */
            const double sd = sqrt(p[i] * (1 - p[i]) / K) + 1e-12;
            worst = fmax(worst, fabs(f[i] - p[i]) / sd);
        }
        CHECK(f[7] == 0, "a zero-probability id was drawn");
        CHECK(worst < 5, "T=%g: worst frequency deviation %.2f sd", temp, worst);
    }
    /* the same rng state gives the same draws */
    g2_rng a, b;
    g2_rng_seed(&a, 4), g2_rng_seed(&b, 4);
    int32_t i1[VV], i2[VV];
    uint32_t c1[VV], c2[VV];
    const int n1 = g2_distill_sample(z, VV, 1.0, 64, &a, cdf, u, i1, c1),
              n2 = g2_distill_sample(z, VV, 1.0, 64, &b, cdf, u, i2, c2);
    CHECK(n1 == n2 && !memcmp(i1, i2, 4 * n1) && !memcmp(c1, c2, 4 * n1), "same seed, same samples");
    free(cdf), free(u);
}

static void test_topk(void) {
    enum { VV = 100, K = 10 };
    g2_rng r;
    g2_rng_seed(&r, 2);
    float z[VV], p[K];
    fill(z, VV, &r, 2.0);
    z[50] = z[51]; /* a tie */
    int32_t ids[K], scratch[K];
    g2_distill_topk(z, VV, K, ids, p, scratch);
    double s = 0;
    for (int j = 0; j < K; j++) {
        int above = 0;
        for (int i = 0; i < VV; i++) above += z[i] > z[ids[j]];
        CHECK(above < K, "id %d is not in the top %d", ids[j], K);
        CHECK(j == 0 || ids[j] > ids[j - 1], "ascending");
        s += p[j];
    }
    CHECK_NEAR(s, 1.0, 1e-6, "renormalised");
}

/* ---- the cache ---- */

enum { CV = 300, CT = 16, CK = 32 };

/* A fake teacher: logits of window j, position t, from a seeded rng. */
static void teacher_logits(uint64_t j, int t, float *z) {
    g2_rng r;
    g2_rng_seed(&r, 1000 + j * 97 + (uint64_t)t);
    fill(z, CV, &r, 2.0);
}

/* Writes windows [from, to) of the cache the way `gemma2 distill cache` does. */
static void write_windows(g2_dcache_writer *w, uint64_t from, uint64_t to, uint64_t seed) {
    float z[CV];
    double cdf[CV], u[CK];
    int32_t ids[CT * CK];
    uint32_t cnt[CT * CK];
    int n[CT];
    gemma2_error err;
    for (uint64_t j = from; j < to; j++) {
        int e = 0;
        for (int t = 0; t < CT; t++) {
            g2_rng r;
            g2_distill_rng(&r, seed, CK, j * CT + (uint64_t)t);
            teacher_logits(j, t, z);
            n[t] = g2_distill_sample(z, CV, 1.0, CK, &r, cdf, u, ids + e, cnt + e);
            e += n[t];
        }
        CHECK(g2_dcache_writer_add(w, n, ids, cnt, &err) == GEMMA2_OK, "%s", err.msg);
    }
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*n + 1);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return b;
}

static void test_cache_roundtrip_resume_and_bad_input(void) {
    char dir[] = "/tmp/g2_distill_test_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    char p1[256], p2[256], part[300], bad[300];
    snprintf(p1, sizeof p1, "%s/a.g2d", dir);
    snprintf(p2, sizeof p2, "%s/b.g2d", dir);
    snprintf(part, sizeof part, "%s.partial", p2);
    snprintf(bad, sizeof bad, "%s/trunc.g2d", dir);
    int32_t tokens[CT * 9 + 5];
    for (size_t i = 0; i < sizeof tokens / 4; i++) tokens[i] = (int32_t)(i * 7 % CV);
    const size_t nt = sizeof tokens / 4;
    const uint64_t dh = g2_dcache_data_hash(tokens, nt);
    g2_dcache_header h;
    g2_dcache_header_init(&h, CV, CK, CT, 1.0f, 42, 0x1234, dh, nt, 1);
    CHECK(h.n_windows == 9 && h.id_bytes == 2 && h.cnt_bytes == 1, "header fields");
    gemma2_error err;

    /* uninterrupted */
    g2_dcache_writer w;
    CHECK(g2_dcache_writer_open(p1, &h, &w, &err) == GEMMA2_OK, "%s", err.msg);
    write_windows(&w, 0, h.n_windows, 42);
    CHECK(g2_dcache_writer_finish(&w, &err) == GEMMA2_OK, "%s", err.msg);
    g2_dcache_writer_close(&w);

    /* interrupted after 4 windows with half of the 5th on disk, then resumed */
    CHECK(g2_dcache_writer_open(p2, &h, &w, &err) == GEMMA2_OK, "%s", err.msg);
    write_windows(&w, 0, 5, 42);
    fflush(w.fp);
    CHECK(truncate(part, (off_t)(w.off[4] + (w.off[5] - w.off[4]) / 2)) == 0, "truncate");
    g2_dcache_writer_close(&w);
    CHECK(g2_dcache_writer_open(p2, &h, &w, &err) == GEMMA2_OK, "%s", err.msg);
    CHECK(w.done == 4, "resumed at window %llu, expected 4", (unsigned long long)w.done);
    write_windows(&w, w.done, h.n_windows, 42);
    CHECK(g2_dcache_writer_finish(&w, &err) == GEMMA2_OK, "%s", err.msg);
    g2_dcache_writer_close(&w);
    size_t n1 = 0, n2 = 0;
    char *b1 = slurp(p1, &n1), *b2 = slurp(p2, &n2);
    CHECK(b1 && b2 && n1 == n2 && n1 > 0 && !memcmp(b1, b2, n1), "resumed cache differs from the uninterrupted one");
    CHECK(access(part, F_OK) != 0, "the partial file is gone after finishing");

    /* read back: the same samples as drawing again with the same seed */
    g2_dcache c;
    CHECK(g2_dcache_open(p1, &c, &err) == GEMMA2_OK, "%s", err.msg);
    int64_t row[CT + 1];
    int32_t ids[CT * CK];
    uint32_t cnt[CT * CK];
    float wt[CT * CK];
    int same = 1;
    for (uint64_t j = 0; j < h.n_windows; j++) {
        CHECK(g2_dcache_read(&c, j, row, ids, cnt, wt, &err) == GEMMA2_OK, "%s", err.msg);
        for (int t = 0; t < CT; t++) {
            g2_rng r;
            g2_distill_rng(&r, 42, CK, j * CT + (uint64_t)t);
            float z[CV];
            double cdf[CV], u[CK];
            int32_t i2[CK];
            uint32_t c2[CK];
            teacher_logits(j, t, z);
            const int n = g2_distill_sample(z, CV, 1.0, CK, &r, cdf, u, i2, c2);
            float ws = 0;
            for (int64_t e = row[t]; e < row[t + 1]; e++) ws += wt[e];
            same &= n == row[t + 1] - row[t] && !memcmp(i2, ids + row[t], 4 * n) && !memcmp(c2, cnt + row[t], 4 * n) &&
                    fabsf(ws - 1) < 1e-6f;
        }
    }
    CHECK(same, "the cache does not hold the samples of the seed");

    /* the header checks */
    CHECK(g2_dcache_check(&c, CV, 0x1234, dh, nt, CT, &err) == GEMMA2_OK, "%s", err.msg);
    CHECK(g2_dcache_check(&c, CV + 1, 0x1234, dh, nt, CT, &err) && strstr(err.msg, "vocabulary"), "%s", err.msg);
    CHECK(g2_dcache_check(&c, CV, 0x9999, dh, nt, CT, &err) && strstr(err.msg, "tokenizer"), "%s", err.msg);
    tokens[3]++;
    CHECK(g2_dcache_check(&c, CV, 0x1234, g2_dcache_data_hash(tokens, nt), nt, CT, &err) &&
              strstr(err.msg, "other training data"),
          "%s", err.msg);
    CHECK(g2_dcache_check(&c, CV, 0x1234, dh, nt, CT * 2, &err) && strstr(err.msg, "--seq"), "%s", err.msg);
    g2_dcache_close(&c);

    /* truncated anywhere: refused, saying so */
    const size_t cuts[] = {10, 96, n1 / 2, n1 - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        FILE *f = fopen(bad, "wb");
        fwrite(b1, 1, cuts[k], f);
        fclose(f);
        CHECK(g2_dcache_open(bad, &c, &err) != GEMMA2_OK && strstr(err.msg, "truncated"), "cut at %zu: %s", cuts[k],
              err.msg);
    }
    /* a flipped count inside a window: the window is refused when read */
    b1[G2_DCACHE_HEADER + 2] ^= 0x40;
    FILE *f = fopen(bad, "wb");
    fwrite(b1, 1, n1, f);
    fclose(f);
    if (g2_dcache_open(bad, &c, &err) == GEMMA2_OK) {
        CHECK(g2_dcache_read(&c, 0, row, ids, cnt, wt, &err) != GEMMA2_OK && strstr(err.msg, "corrupt"), "%s",
              err.msg);
        g2_dcache_close(&c);
    }
    free(b1), free(b2);
    unlink(p1), unlink(p2), unlink(bad);
    rmdir(dir);
}

int main(void) {
    RUN(test_loss_sparse_vs_f64);
    RUN(test_loss_sparse_mixed_nocap);
    RUN(test_loss_dense_mixed_cap);
    RUN(test_alpha1_is_onehot);
    RUN(test_model_fd_sparse_target);
    RUN(test_sample_frequencies);
    RUN(test_topk);
    RUN(test_cache_roundtrip_resume_and_bad_input);
    HARNESS_END();
}
