/* test_train_ckpt.c - checkpoint round trip: a trained model saved in the HF layout loads back
 * bit for bit (weights and AdamW state), and the inference library (gemma2_model_open) gives
 * the same logits as the training forward. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "train/checkpoint.h"
#include "train/graph.h"
#include "util/rng.h"
#include "train/tmodel.h"

static void test_roundtrip_and_inference_logits(void) {
    gemma2_config cfg = {.vocab_size = 50, .hidden_size = 32, .intermediate_size = 48, .num_layers = 3,
                         .num_heads = 4, .num_kv_heads = 2, .head_dim = 8, .sliding_window = 4,
                         .max_position_embeddings = 64, .query_pre_attn_scalar = 8, .attn_logit_softcap = 50,
                         .final_logit_softcap = 30, .rms_norm_eps = 1e-6f, .rope_theta = 10000};
    g2_tmodel m, m2;
    gemma2_error err;
    CHECK(g2_tmodel_create(&cfg, &m, &err) == GEMMA2_OK, "%s", err.msg);
    g2_rng r;
    g2_rng_seed(&r, 9);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = (float)(0.2 * g2_rng_normal(&r));
    float *mom = malloc(4 * m.n_params), *vel = malloc(4 * m.n_params);
    for (size_t i = 0; i < m.n_params; i++) mom[i] = (float)g2_rng_normal(&r), vel[i] = (float)g2_rng_uniform(&r);

    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/g2_test_ckpt_%ld", (long)getpid());
    CHECK(g2_checkpoint_save(dir, 7, 42, &m, mom, vel, NULL, &err) == GEMMA2_OK, "%s", err.msg);
    char ck[4096];
    CHECK(g2_checkpoint_latest(dir, ck, sizeof ck, &err) == GEMMA2_OK, "%s", err.msg);
    CHECK(strstr(ck, "step-00000007") != NULL, "%s", ck);

    CHECK(g2_tmodel_load_hf(ck, &m2, &err) == GEMMA2_OK, "%s", err.msg);
    CHECK(m2.n_params == m.n_params && !memcmp(m2.params, m.params, 4 * m.n_params), "weights differ after reload");
    float *mom2 = calloc(m.n_params, 4), *vel2 = calloc(m.n_params, 4);
    long step = 0;
    uint64_t seed = 0;
    CHECK(g2_checkpoint_load_optim(ck, &m2, mom2, vel2, &step, &seed, &err) == GEMMA2_OK, "%s", err.msg);
    CHECK(step == 7 && seed == 42, "step %ld seed %llu", step, (unsigned long long)seed);
    CHECK(!memcmp(mom, mom2, 4 * m.n_params) && !memcmp(vel, vel2, 4 * m.n_params), "optimizer state differs");

    /* the inference library on the checkpoint: the same logits as the training forward */
    const int T = 9;
    int32_t ids[9], tg[9];
    for (int i = 0; i < T; i++) ids[i] = (int32_t)g2_rng_below(&r, 50), tg[i] = 0; /* every row gets capped logits */
    g2_acts a;
    CHECK(g2_acts_create(&a, &cfg, 1, T, 1, &err) == GEMMA2_OK, "%s", err.msg);
    int cnt;
    g2_train_forward(&m, &a, ids, tg, &cnt);
    gemma2_model *im = NULL;
    gemma2_context *ctx = NULL;
    CHECK(gemma2_model_open(ck, NULL, &im, &err) == GEMMA2_OK, "%s", err.msg);
    gemma2_context_options co = gemma2_context_default_options();
    co.n_ctx = 16;
    if (im) CHECK(gemma2_context_create(im, &co, &ctx, &err) == GEMMA2_OK, "%s", err.msg);
    float *lg = malloc(sizeof(float) * T * 50);
    if (ctx) {
        CHECK(gemma2_eval(ctx, ids, T, lg, &err) == GEMMA2_OK, "%s", err.msg);
        double md = 0;
        for (int i = 0; i < T * 50; i++) md = fmax(md, fabs(lg[i] - a.logits[i]));
        printf("  inference vs training logits: max diff %.3g\n", md);
        CHECK(md < 1e-4, "logits differ by %.3g", md);
    }
    gemma2_context_free(ctx);
    gemma2_model_close(im);
    free(lg);
    g2_acts_free(&a);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    free(mom), free(vel), free(mom2), free(vel2);
    g2_tmodel_free(&m);
    g2_tmodel_free(&m2);
}

int main(void) {
    RUN(test_roundtrip_and_inference_logits);
    HARNESS_END();
}
