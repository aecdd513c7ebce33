/* distill_train.c - see distill_train.h. */
#include "train/distill_train.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

gemma2_status g2_distill_open_cache(g2_distill_src *s, const char *path, const gemma2_config *student,
                                    const g2_shard *train, const char *tok_path, int B, int T, float alpha,
                                    gemma2_error *err) {
    memset(s, 0, sizeof *s);
    s->cache.fd = -1;
    gemma2_status st = g2_dcache_open(path, &s->cache, err);
    if (st) return st;
    if ((st = g2_dcache_check(&s->cache, (uint32_t)student->vocab_size, g2_dcache_file_hash(tok_path),
                              g2_dcache_data_hash(train->tokens, train->n_tokens), train->n_tokens, (uint32_t)T,
                              err))) {
        g2_distill_close(s);
        return st;
    }
    const size_t K = s->cache.h.K, per = K < (size_t)student->vocab_size ? K : (size_t)student->vocab_size;
    s->mode = G2_DISTILL_CACHE, s->B = B, s->T = T;
    s->row = malloc(sizeof(int64_t) * ((size_t)B * T + 1));
    s->ids = malloc(sizeof(int32_t) * (size_t)B * T * per);
    s->w = malloc(sizeof(float) * (size_t)B * T * per);
    if (!s->row || !s->ids || !s->w) {
        g2_distill_close(s);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory for the distillation targets");
    }
    s->st = (g2_soft_target){.row = s->row, .id = s->ids, .w = s->w, .alpha = alpha};
    return GEMMA2_OK;
}

gemma2_status g2_distill_open_teacher(g2_distill_src *s, const char *dir, const gemma2_config *student, int B,
                                      int T, int nt, int topk, float alpha, gemma2_error *err) {
    memset(s, 0, sizeof *s);
    s->cache.fd = -1;
    gemma2_status st = g2_tmodel_load_hf(dir, &s->teacher, err);
    if (st) return st;
    if (s->teacher.cfg.vocab_size != student->vocab_size) {
        const int tv = s->teacher.cfg.vocab_size;
        g2_distill_close(s);
        return g2_fail(err, GEMMA2_ERR_ARG, "the teacher %s has a vocabulary of %d; the student %d", dir, tv,
                       student->vocab_size);
    }
    if (topk > student->vocab_size) topk = student->vocab_size;
    s->mode = G2_DISTILL_TEACHER, s->B = B, s->T = T, s->topk = topk;
    if ((st = g2_acts_create(&s->tacts, &s->teacher.cfg, B, T, nt, err))) {
        g2_distill_close(s);
        return st;
    }
    if (topk > 0) {
        s->row = malloc(sizeof(int64_t) * ((size_t)B * T + 1));
        s->ids = malloc(sizeof(int32_t) * (size_t)B * T * topk);
        s->w = malloc(sizeof(float) * (size_t)B * T * topk);
        s->scratch = malloc(sizeof(int32_t) * (size_t)topk);
        if (!s->row || !s->ids || !s->w || !s->scratch) {
            g2_distill_close(s);
            return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory for the top-%d targets", topk);
        }
        s->st = (g2_soft_target){.row = s->row, .id = s->ids, .w = s->w, .alpha = alpha};
    } else {
        /* the teacher's probabilities overwrite its logits in place: no copy of N x V */
        s->st = (g2_soft_target){.dense = s->tacts.logits, .alpha = alpha};
    }
    return GEMMA2_OK;
}

void g2_distill_close(g2_distill_src *s) {
    if (s->cache.path) g2_dcache_close(&s->cache);
    if (s->teacher.params) g2_tmodel_free(&s->teacher);
    if (s->tacts.mem) g2_acts_free(&s->tacts);
    free(s->row), free(s->ids), free(s->w), free(s->scratch);
    memset(s, 0, sizeof *s);
}

gemma2_status g2_distill_cache_batch(g2_distill_src *s, const g2_shard *train, g2_rng *r, int32_t *ids,
                                     int32_t *targets, gemma2_error *err) {
    const int B = s->B, T = s->T;
    const size_t per = s->cache.h.K < s->cache.h.vocab ? s->cache.h.K : s->cache.h.vocab;
    int64_t base = 0;
    for (int b = 0; b < B; b++) {
        const uint64_t j = g2_rng_below(r, s->cache.h.n_windows);
        const int32_t *w = train->tokens + j * s->cache.h.stride * (uint64_t)T;
        for (int t = 0; t < T; t++) ids[b * T + t] = w[t], targets[b * T + t] = w[t + 1];
        int64_t *row = s->row + (size_t)b * T;
        /* each window decodes at 0-based offsets (its row[0] overwrites the previous window's
         * end, which is `base`); they are shifted into the batch's CSR */
        gemma2_status st = g2_dcache_read(&s->cache, j, row, s->ids + base, NULL, s->w + base, err);
        if (st) return st;
        for (int t = 0; t <= T; t++) row[t] += base;
        base = row[T];
        if ((size_t)base > (size_t)(b + 1) * T * per) return g2_fail(err, GEMMA2_ERR_FORMAT, "cache overflow");
    }
    return GEMMA2_OK;
}

void g2_distill_teacher_batch(g2_distill_src *s, const int32_t *ids, const int32_t *targets) {
    const int N = s->B * s->T, V = s->teacher.cfg.vocab_size;
    int cnt = 0;
    /* with targets the forward soft-caps every row's logits, as the teacher's inference does */
    s->teacher_loss = g2_train_forward(&s->teacher, &s->tacts, ids, targets, &cnt) / (cnt ? cnt : 1);
    float *L = s->tacts.logits;
    if (s->topk > 0) {
        int64_t e = 0;
        for (int n = 0; n < N; n++) {
            s->row[n] = e;
            g2_distill_topk(L + (size_t)n * V, V, s->topk, s->ids + e, s->w + e, s->scratch);
            e += s->topk;
        }
        s->row[N] = e;
    } else {
#pragma omp parallel for schedule(static) num_threads(s->tacts.nt)
        for (int n = 0; n < N; n++) g2_softmax_row(L + (size_t)n * V, V);
    }
}
