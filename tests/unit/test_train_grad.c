/* test_train_grad.c - finite-difference checks of every op's backward (float32 central
 * differences of L = sum(R * out) with random R, accumulated in double), then of the whole
 * model on tiny random configs: sliding window shorter than the sequence, GQA with one kv
 * head, and soft-caps small enough to bite. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "train/graph.h"
#include "train/ops.h"
#include "util/rng.h"
#include "train/tmodel.h"

static void fill(float *x, size_t n, g2_rng *r, double sd) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(sd * g2_rng_normal(r));
}

static double dotd(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Compares analytic gradient g of x (n entries) against central differences of loss(). */
typedef double (*loss_fn)(void *ctx);
static void fd_check(const char *what, float *x, const float *g, size_t n, loss_fn loss, void *ctx, float h,
                     double rtol) {
    double gmax = 0, worst = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
    const size_t step = n > 24 ? n / 24 : 1; /* at most ~24 entries per tensor: ASan is slow */
    for (size_t i = 0; i < n; i += step) {
        const float x0 = x[i];
        x[i] = x0 + h;
        const double lp = loss(ctx);
        x[i] = x0 - h;
        const double lm = loss(ctx);
        x[i] = x0;
        const double fd = (lp - lm) / (2.0 * h);
        worst = fmax(worst, fabs(fd - g[i]));
    }
    CHECK(gmax > 0, "%s: zero gradient", what);
    CHECK(worst <= rtol * gmax, "%s: max |fd - analytic| %.3g, max |grad| %.3g", what, worst, gmax);
}

/* ---- attention ---- */
typedef struct {
    int B, T, nh, nkv, hd, window;
    float scale, cap;
    float *q, *k, *v, *out, *pre, *att, *R;
} att_ctx;

static double att_loss(void *p) {
    att_ctx *c = p;
    g2_attention_forward(c->out, c->pre, c->att, c->q, c->k, c->v, c->B, c->T, c->nh, c->nkv, c->hd, c->scale, c->cap,
                         c->window, 1);
    return dotd(c->out, c->R, (size_t)c->B * c->T * c->nh * c->hd);
}

static void attention_case(int nh, int nkv, int window, float cap) {
    g2_rng r;
    g2_rng_seed(&r, 11);
    att_ctx c = {.B = 2, .T = 7, .nh = nh, .nkv = nkv, .hd = 4, .window = window, .scale = 0.5f, .cap = cap};
    const size_t nq = (size_t)c.B * c.T * nh * c.hd, nk = (size_t)c.B * c.T * nkv * c.hd, tt = (size_t)c.B * nh * c.T * c.T;
    c.q = malloc(4 * nq), c.k = malloc(4 * nk), c.v = malloc(4 * nk), c.out = malloc(4 * nq), c.R = malloc(4 * nq);
    c.pre = malloc(4 * tt), c.att = malloc(4 * tt);
    float *dq = malloc(4 * nq), *dk = malloc(4 * nk), *dv = malloc(4 * nk), *scr = malloc(4 * (size_t)c.T * c.T);
    fill(c.q, nq, &r, 2.0), fill(c.k, nk, &r, 2.0), fill(c.v, nk, &r, 1.0), fill(c.R, nq, &r, 1.0);
    att_loss(&c);
    /* the cap bites: some raw scores are well beyond it */
    double maxs = 0;
    for (size_t i = 0; i < tt; i++) maxs = fmax(maxs, fabs(c.pre[i]));
    if (cap > 0) CHECK(maxs > 0.8 * cap, "scores %.3g do not reach the cap %.3g", maxs, cap);
    g2_attention_backward(dq, dk, dv, scr, c.R, c.pre, c.att, c.q, c.k, c.v, c.B, c.T, nh, nkv, c.hd, c.scale, cap, 1);
    fd_check("attention dq", c.q, dq, nq, att_loss, &c, 1e-3f, 2e-3);
    fd_check("attention dk", c.k, dk, nk, att_loss, &c, 1e-3f, 2e-3);
    fd_check("attention dv", c.v, dv, nk, att_loss, &c, 1e-3f, 2e-3);
    free(c.q), free(c.k), free(c.v), free(c.out), free(c.R), free(c.pre), free(c.att);
    free(dq), free(dk), free(dv), free(scr);
}

static void test_attention_window_gqa_cap(void) { attention_case(4, 1, 3, 3.0f); }
static void test_attention_global_mha_nocap(void) { attention_case(2, 2, 0, 0.0f); }

/* ---- rmsnorm ---- */
typedef struct {
    int N, d;
    float *x, *w, *out, *rstd, *R;
} rms_ctx;

static double rms_loss(void *p) {
    rms_ctx *c = p;
    g2_rmsnorm_forward(c->out, c->rstd, c->x, c->w, c->N, c->d, 1e-6f, 1);
    return dotd(c->out, c->R, (size_t)c->N * c->d);
}

static void test_rmsnorm(void) {
    g2_rng r;
    g2_rng_seed(&r, 5);
    rms_ctx c = {.N = 3, .d = 16};
    const size_t n = 48;
    c.x = malloc(4 * n), c.w = malloc(4 * 16), c.out = malloc(4 * n), c.rstd = malloc(4 * 3), c.R = malloc(4 * n);
    float *dx = malloc(4 * n), *dw = calloc(16, 4);
    fill(c.x, n, &r, 1.0), fill(c.w, 16, &r, 0.5), fill(c.R, n, &r, 1.0);
    rms_loss(&c);
    g2_rmsnorm_backward(dx, dw, c.R, c.x, c.rstd, c.w, 3, 16, 0, 1);
    fd_check("rmsnorm dx", c.x, dx, n, rms_loss, &c, 1e-3f, 1e-3);
    fd_check("rmsnorm dw", c.w, dw, 16, rms_loss, &c, 1e-3f, 1e-3);
    free(c.x), free(c.w), free(c.out), free(c.rstd), free(c.R), free(dx), free(dw);
}

/* ---- geglu ---- */
typedef struct {
    long n;
    float *g, *u, *h, *R;
} geglu_ctx;

static double geglu_loss(void *p) {
    geglu_ctx *c = p;
    g2_geglu_forward(c->h, c->g, c->u, c->n, 1);
    return dotd(c->h, c->R, (size_t)c->n);
}

static void test_geglu(void) {
    g2_rng r;
    g2_rng_seed(&r, 6);
    geglu_ctx c = {.n = 37};
    c.g = malloc(4 * 37), c.u = malloc(4 * 37), c.h = malloc(4 * 37), c.R = malloc(4 * 37);
    float *dg = malloc(4 * 37), *du = malloc(4 * 37);
    fill(c.g, 37, &r, 2.0), fill(c.u, 37, &r, 1.0), fill(c.R, 37, &r, 1.0);
    g2_geglu_backward(dg, du, c.R, c.g, c.u, 37, 1);
    fd_check("geglu dg", c.g, dg, 37, geglu_loss, &c, 1e-3f, 1e-3);
    fd_check("geglu du", c.u, du, 37, geglu_loss, &c, 1e-3f, 1e-3);
    free(c.g), free(c.u), free(c.h), free(c.R), free(dg), free(du);
}

/* ---- rope ---- */
typedef struct {
    int N, T, nh, hd;
    float *x, *y, *cs, *sn, *R;
} rope_ctx;

static double rope_loss(void *p) {
    rope_ctx *c = p;
    const size_t n = (size_t)c->N * c->nh * c->hd;
    memcpy(c->y, c->x, 4 * n);
    g2_rope_forward(c->y, c->N, c->T, c->nh, c->hd, c->cs, c->sn, 1);
    return dotd(c->y, c->R, n);
}

static void test_rope(void) {
    g2_rng r;
    g2_rng_seed(&r, 7);
    rope_ctx c = {.N = 6, .T = 3, .nh = 2, .hd = 8};
    const size_t n = 6 * 2 * 8;
    c.x = malloc(4 * n), c.y = malloc(4 * n), c.R = malloc(4 * n), c.cs = malloc(4 * 3 * 4), c.sn = malloc(4 * 3 * 4);
    float *dx = malloc(4 * n);
    g2_rope_tables(c.cs, c.sn, 3, 8, 10000.0f);
    fill(c.x, n, &r, 1.0), fill(c.R, n, &r, 1.0);
    memcpy(dx, c.R, 4 * n);
    g2_rope_backward(dx, 6, 3, 2, 8, c.cs, c.sn, 1);
    fd_check("rope dx", c.x, dx, n, rope_loss, &c, 1e-3f, 1e-3);
    free(c.x), free(c.y), free(c.R), free(c.cs), free(c.sn), free(dx);
}

/* ---- soft-capped cross-entropy ---- */
typedef struct {
    int N, V;
    float cap;
    float *z, *work, *losses, *lse;
    int32_t *tg;
} xent_ctx;

static double xent_loss(void *p) {
    xent_ctx *c = p;
    memcpy(c->work, c->z, 4 * (size_t)c->N * c->V);
    g2_xent_forward(c->work, c->losses, c->lse, c->tg, c->N, c->V, c->cap, 1);
    double s = 0;
    for (int i = 0; i < c->N; i++) s += c->losses[i];
    return s;
}

static void test_xent_softcap(void) {
    g2_rng r;
    g2_rng_seed(&r, 8);
    xent_ctx c = {.N = 3, .V = 19, .cap = 2.0f};
    const size_t n = 3 * 19;
    c.z = malloc(4 * n), c.work = malloc(4 * n), c.losses = malloc(12), c.lse = malloc(12);
    int32_t tg[3] = {4, -1, 18};
    c.tg = tg;
    fill(c.z, n, &r, 3.0); /* |z| up to ~9: the cap of 2 bites */
    xent_loss(&c);
    g2_xent_backward(c.work, c.lse, tg, 3, 19, c.cap, 1.0f, 1);
    float *g = malloc(4 * n);
    memcpy(g, c.work, 4 * n);
    fd_check("xent+softcap dz", c.z, g, n, xent_loss, &c, 1e-3f, 1e-3);
    free(c.z), free(c.work), free(c.losses), free(c.lse), free(g);
}

/* ---- the whole model ---- */
typedef struct {
    g2_tmodel *m;
    g2_acts *a;
    int32_t *ids, *tg;
} model_ctx;

static double model_loss(void *p) {
    model_ctx *c = p;
    int cnt;
    return g2_train_forward(c->m, c->a, c->ids, c->tg, &cnt) / cnt;
}

static void model_case(int nh, int nkv, int window, float acap, float fcap, double sd) {
    gemma2_config cfg = {.vocab_size = 13, .hidden_size = 8, .intermediate_size = 12, .num_layers = 2,
                         .num_heads = nh, .num_kv_heads = nkv, .head_dim = 4, .sliding_window = window,
                         .max_position_embeddings = 64, .query_pre_attn_scalar = 4, .attn_logit_softcap = acap,
                         .final_logit_softcap = fcap, .rms_norm_eps = 1e-6f, .rope_theta = 10000};
    g2_tmodel m;
    gemma2_error err;
    if (g2_tmodel_create(&cfg, &m, &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    g2_rng r;
    g2_rng_seed(&r, 3);
    fill(m.params, m.n_params, &r, sd); /* large weights: scores and logits reach the caps */
    const int B = 2, T = 6;
    g2_acts a;
    CHECK(g2_acts_create(&a, &cfg, B, T, 2, &err) == GEMMA2_OK, "%s", err.msg);
    int32_t ids[12], tg[12];
    for (int i = 0; i < 12; i++) ids[i] = (int32_t)g2_rng_below(&r, 13);
    g2_next_token_targets(ids, tg, B, T);
    model_ctx c = {&m, &a, ids, tg};
    int cnt;
    memset(m.grads, 0, 4 * m.n_params);
    g2_train_forward(&m, &a, ids, tg, &cnt);
    g2_train_backward(&m, &a, 1.0f / cnt);
    float *g = malloc(4 * m.n_params);
    memcpy(g, m.grads, 4 * m.n_params);
    for (int i = 0; i < m.n_tensors; i++) {
        const g2_tparam *t = &m.tensors[i];
        fd_check(t->name, m.params + t->off, g + t->off, t->numel, model_loss, &c, 2e-3f, 5e-3);
    }
    free(g);
    g2_acts_free(&a);
    g2_tmodel_free(&m);
}

static void test_model_window_gqa1_caps(void) { model_case(2, 1, 3, 1.5f, 2.0f, 0.7); }
static void test_model_global_nocaps(void) { model_case(2, 2, 64, 0.0f, 0.0f, 0.3); }

int main(void) {
    RUN(test_attention_window_gqa_cap);
    RUN(test_attention_global_mha_nocap);
    RUN(test_rmsnorm);
    RUN(test_geglu);
    RUN(test_rope);
    RUN(test_xent_softcap);
    RUN(test_model_window_gqa1_caps);
    RUN(test_model_global_nocaps);
    HARNESS_END();
}
