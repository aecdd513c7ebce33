/* test_train_optim.c - the LR schedule, gradient clipping, gradient accumulation (two halves
 * of a batch give the gradient of the whole batch) and run-to-run determinism. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "train/graph.h"
#include "train/optim.h"
#include "util/rng.h"
#include "train/tmodel.h"

static void test_lr_schedule(void) {
    CHECK_NEAR(g2_lr_schedule(0, 100, 10, 1.0f, 0.1f), 0.1, 1e-7);
    CHECK_NEAR(g2_lr_schedule(9, 100, 10, 1.0f, 0.1f), 1.0, 1e-7);
    CHECK_NEAR(g2_lr_schedule(10, 100, 10, 1.0f, 0.1f), 1.0, 1e-7);
    CHECK_NEAR(g2_lr_schedule(99, 100, 10, 1.0f, 0.1f), 0.1, 1e-6);
    CHECK_NEAR(g2_lr_schedule(10 + 89 / 2, 100, 10, 1.0f, 0.0f), 0.5, 0.02); /* half-way: cos = 0 */
    CHECK_NEAR(g2_lr_schedule(5, 10, 0, 2.0f, 0.5f) < 2.0f, 1, 0);
}

static void test_clip(void) {
    float g[3] = {3, 4, 0};
    double n = g2_clip_grad_norm(g, 3, 10.0f, 1);
    CHECK_NEAR(n, 5.0, 1e-12);
    CHECK(g[0] == 3 && g[1] == 4, "no clipping below the threshold");
    n = g2_clip_grad_norm(g, 3, 1.0f, 2);
    CHECK_NEAR(n, 5.0, 1e-12);
    CHECK_NEAR(g2_grad_norm(g, 3, 1), 1.0, 1e-6);
}

static gemma2_config tiny(void) {
    return (gemma2_config){.vocab_size = 40, .hidden_size = 16, .intermediate_size = 24, .num_layers = 2,
                           .num_heads = 2, .num_kv_heads = 1, .head_dim = 8, .sliding_window = 3,
                           .max_position_embeddings = 64, .query_pre_attn_scalar = 8, .attn_logit_softcap = 50,
                           .final_logit_softcap = 30, .rms_norm_eps = 1e-6f, .rope_theta = 10000};
}

static void test_accumulation(void) {
    gemma2_config cfg = tiny();
    g2_tmodel m;
    gemma2_error err;
    CHECK(g2_tmodel_create(&cfg, &m, &err) == GEMMA2_OK, "%s", err.msg);
    g2_tmodel_init_random(&m, 5);
    const int B = 4, T = 10, N = B * T;
    int32_t ids[40], tg[40];
    g2_rng r;
    g2_rng_seed(&r, 1);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)g2_rng_below(&r, 40), tg[i] = (int32_t)g2_rng_below(&r, 40);
    g2_acts full, half;
    CHECK(g2_acts_create(&full, &cfg, B, T, 2, &err) == GEMMA2_OK && g2_acts_create(&half, &cfg, B / 2, T, 2, &err) == GEMMA2_OK);
    int cnt;
    memset(m.grads, 0, 4 * m.n_params);
    g2_train_forward(&m, &full, ids, tg, &cnt);
    g2_train_backward(&m, &full, 1.0f / cnt);
    float *g_full = malloc(4 * m.n_params);
    memcpy(g_full, m.grads, 4 * m.n_params);
    memset(m.grads, 0, 4 * m.n_params);
    for (int k = 0; k < 2; k++) {
        g2_train_forward(&m, &half, ids + k * N / 2, tg + k * N / 2, &cnt);
        g2_train_backward(&m, &half, 1.0f / (cnt * 2));
    }
    double md = 0, mx = 0;
    for (size_t i = 0; i < m.n_params; i++) md = fmax(md, fabs(g_full[i] - m.grads[i])), mx = fmax(mx, fabs(g_full[i]));
    CHECK(md <= 1e-5 * mx, "accumulated vs full batch: %.3g (max %.3g)", md, mx);
    free(g_full);
    g2_acts_free(&full);
    g2_acts_free(&half);
    g2_tmodel_free(&m);
}

/* Two identical short runs (init, 3 AdamW steps) give bit-identical weights. */
static void run(float *out, int nt) {
    gemma2_config cfg = tiny();
    g2_tmodel m;
    gemma2_error err;
    if (g2_tmodel_create(&cfg, &m, &err)) return;
    g2_tmodel_init_random(&m, 77);
    g2_acts a;
    if (g2_acts_create(&a, &cfg, 2, 12, nt, &err)) return;
    float *mo = calloc(m.n_params, 4), *ve = calloc(m.n_params, 4);
    const g2_adamw_hp hp = {0.9, 0.95, 1e-8, 0.1};
    for (int s = 0; s < 3; s++) {
        g2_rng r;
        g2_rng_seed(&r, 100 + s);
        int32_t ids[24], tg[24];
        for (int i = 0; i < 24; i++) ids[i] = (int32_t)g2_rng_below(&r, 40), tg[i] = (int32_t)g2_rng_below(&r, 40);
        int cnt;
        memset(m.grads, 0, 4 * m.n_params);
        g2_train_forward(&m, &a, ids, tg, &cnt);
        g2_train_backward(&m, &a, 1.0f / cnt);
        g2_clip_grad_norm(m.grads, m.n_params, 1.0f, nt);
        g2_adamw_step(m.params, m.grads, mo, ve, m.n_params, s + 1, 1e-2, &hp, nt);
    }
    memcpy(out, m.params, 4 * m.n_params);
    free(mo), free(ve);
    g2_acts_free(&a);
    g2_tmodel_free(&m);
}

static void test_deterministic(void) {
    gemma2_config cfg = tiny();
    const size_t n = g2_tmodel_bytes(&cfg) / 8;
    float *a = calloc(n, 4), *b = calloc(n, 4);
    run(a, 2);
    run(b, 2);
    CHECK(!memcmp(a, b, 4 * n), "two runs with the same seed and threads differ");
    free(a), free(b);
}

int main(void) {
    RUN(test_lr_schedule);
    RUN(test_clip);
    RUN(test_accumulation);
    RUN(test_deterministic);
    HARNESS_END();
}
