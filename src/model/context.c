/* context.c - creating a context: the KV cache (ring buffers for local layers), RoPE tables
 * and the scratch activations; rewinding it. */
#include "model/context.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

gemma2_context_options gemma2_context_default_options(void) {
    gemma2_context_options o = {0};
    return o;
}

void gemma2_context_free(gemma2_context *c) {
    if (!c) return;
    if (c->k_cache)
        for (int l = 0; l < c->m->cfg.num_layers; l++) {
            free(c->k_cache[l]);
            free(c->v_cache[l]);
        }
    free(c->k_cache);
    free(c->v_cache);
    free(c->cap);
    free(c->rope_cos);
    free(c->rope_sin);
    free(c->x);
    free(c->xn);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->att);
    free(c->proj);
    free(c->gate);
    free(c->up);
    if (c->attn)
        for (int i = 0; i < c->n_threads; i++) {
            free(c->attn[i].kg);
            free(c->attn[i].vt);
            free(c->attn[i].s);
            free(c->attn[i].qh);
            free(c->attn[i].oh);
        }
    free(c->attn);
    free(c->logits);
    free(c);
}

static float *alloc_floats(size_t n) { return malloc((n ? n : 1) * sizeof(float)); }

gemma2_status gemma2_context_create(const gemma2_model *m, const gemma2_context_options *opt,
                                    gemma2_context **out, gemma2_error *err) {
    *out = NULL;
    const gemma2_config *cfg = &m->cfg;
    int n_ctx = opt && opt->n_ctx > 0 ? opt->n_ctx : cfg->max_position_embeddings;
    if (opt && opt->n_ctx < 0) return g2_fail(err, GEMMA2_ERR_ARG, "context size %d is negative", opt->n_ctx);
    if (n_ctx > cfg->max_position_embeddings)
        return g2_fail(err, GEMMA2_ERR_ARG, "context size %d is larger than the model's %d positions", n_ctx,
                       cfg->max_position_embeddings);
    const int kv_type = opt ? opt->kv_type : GEMMA2_TYPE_F32;
    if (kv_type != GEMMA2_TYPE_F32 && kv_type != GEMMA2_TYPE_F16 && kv_type != GEMMA2_TYPE_BF16)
        return g2_fail(err, GEMMA2_ERR_ARG, "KV cache type %s is not supported (F32, F16 or BF16)",
                       gemma2_type_name(kv_type));
    gemma2_context *c = calloc(1, sizeof *c);
    if (!c) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    c->m = m;
    c->kv_type = kv_type;
    c->kv_esize = kv_type == GEMMA2_TYPE_F32 ? 4 : 2;
    c->n_ctx = n_ctx;
    c->n_threads = m->n_threads > 0 ? m->n_threads : omp_get_max_threads();

    const int L = cfg->num_layers, hd = cfg->head_dim;
    const size_t d = (size_t)cfg->hidden_size, qd = (size_t)cfg->num_heads * (size_t)hd,
                 kvd = (size_t)cfg->num_kv_heads * (size_t)hd, ffn = (size_t)cfg->intermediate_size,
                 U = G2_UBATCH;
    c->k_cache = calloc((size_t)L, sizeof *c->k_cache);
    c->v_cache = calloc((size_t)L, sizeof *c->v_cache);
    c->cap = calloc((size_t)L, sizeof *c->cap);
    int ok = c->k_cache && c->v_cache && c->cap;
    for (int l = 0; ok && l < L; l++) {
        int cap = n_ctx;
        if (gemma2_layer_is_local(cfg, l) && cfg->sliding_window < cap) cap = cfg->sliding_window;
        c->cap[l] = cap;
        c->k_cache[l] = malloc((size_t)cap * kvd * c->kv_esize);
        c->v_cache[l] = malloc((size_t)cap * kvd * c->kv_esize);
        ok = c->k_cache[l] && c->v_cache[l];
        c->kv_bytes += 2 * (size_t)cap * kvd * c->kv_esize;
    }
    size_t half = (size_t)hd / 2;
    c->rope_cos = alloc_floats((size_t)n_ctx * half);
    c->rope_sin = alloc_floats((size_t)n_ctx * half);
    c->x = alloc_floats(U * d);
    c->xn = alloc_floats(U * d);
    c->q = alloc_floats(U * qd);
    c->k = alloc_floats(U * kvd);
    c->v = alloc_floats(U * kvd);
    c->att = alloc_floats(U * qd);
    c->proj = alloc_floats(U * d);
    c->gate = alloc_floats(U * ffn);
    c->up = alloc_floats(U * ffn);
    c->attn = calloc((size_t)c->n_threads, sizeof *c->attn);
    for (int i = 0; c->attn && i < c->n_threads; i++) {
        g2_attn_scratch *a = &c->attn[i];
        a->kg = alloc_floats((size_t)n_ctx * (size_t)hd);
        a->vt = alloc_floats((size_t)n_ctx * (size_t)hd);
        a->s = alloc_floats(U * (size_t)n_ctx);
        a->qh = alloc_floats(U * (size_t)hd);
        a->oh = alloc_floats(U * (size_t)hd);
        ok = ok && a->kg && a->vt && a->s && a->qh && a->oh;
    }
    c->logits = alloc_floats((size_t)cfg->vocab_size);
    ok = ok && c->rope_cos && c->rope_sin && c->x && c->xn && c->q && c->k && c->v && c->att && c->proj &&
         c->gate && c->up && c->attn && c->logits;
    if (!ok) {
        gemma2_context_free(c);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory for a context of %d positions (KV cache %.1f MB)", n_ctx,
                       (double)gemma2_kv_cache_bytes(cfg, n_ctx) / 1e6);
    }
    /* RoPE angles pos * theta^(-2i/head_dim), computed in double then rounded once. */
    for (int p = 0; p < n_ctx; p++)
        for (size_t i = 0; i < half; i++) {
            double inv_freq = pow((double)cfg->rope_theta, -2.0 * (double)i / (double)hd);
            double a = (double)p * inv_freq;
            c->rope_cos[(size_t)p * half + i] = (float)cos(a);
            c->rope_sin[(size_t)p * half + i] = (float)sin(a);
        }
    *out = c;
    return GEMMA2_OK;
}

const float *gemma2_last_logits(const gemma2_context *c) { return c->has_logits ? c->logits : NULL; }
int gemma2_context_pos(const gemma2_context *c) { return c->pos; }
int gemma2_context_size(const gemma2_context *c) { return c->n_ctx; }
size_t gemma2_context_kv_bytes(const gemma2_context *c) { return c->kv_bytes; }

gemma2_status gemma2_context_rewind(gemma2_context *c, int pos, gemma2_error *err) {
    if (pos < 0 || pos > c->pos)
        return g2_fail(err, GEMMA2_ERR_ARG, "cannot rewind to position %d (the context holds %d)", pos, c->pos);
    if (pos == c->pos) return GEMMA2_OK;
    /* A local layer's ring holds positions [c->pos - cap, c->pos - 1]; continuing at `pos`
     * needs [pos - window + 1, pos - 1] (clipped at 0). */
    const gemma2_config *cfg = &c->m->cfg;
    for (int l = 0; l < cfg->num_layers; l++) {
        int need_lo = pos - cfg->sliding_window + 1;
        if (need_lo < 0) need_lo = 0;
        if (pos > 0 && need_lo < c->pos - c->cap[l])
            return g2_fail(err, GEMMA2_ERR_ARG,
                           "cannot rewind from %d to %d: the sliding-window cache no longer holds position %d "
                           "(rewind to 0 instead)",
                           c->pos, pos, need_lo);
    }
    c->pos = pos;
    c->has_logits = 0;
    return GEMMA2_OK;
}
