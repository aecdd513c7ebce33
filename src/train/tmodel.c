/* tmodel.c - the training model's tensor table, allocation, random init, HF load and save. */
#include "train/tmodel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/hf_dir.h"
#include "formats/safetensors.h"
#include "model/config.h"
#include "util/rng.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/half.h"

/* Appends a tensor to the table (when `t` is not NULL) and returns its offset. */
static size_t add(g2_tparam *t, int *n, size_t *off, const char *name, int64_t rows, int64_t cols) {
    size_t o = *off, numel = (size_t)rows * (size_t)(cols ? cols : 1);
    if (t) {
        g2_tparam *p = &t[*n];
        snprintf(p->name, sizeof p->name, "%s", name);
        p->off = o, p->numel = numel, p->n_dims = cols ? 2 : 1;
        p->shape[0] = rows, p->shape[1] = cols;
    }
    (*n)++;
    *off += numel;
    return o;
}

/* Builds the table (t may be NULL to count); returns the number of floats. */
static size_t layout(const gemma2_config *c, g2_tparam *t, g2_layer_off *lo, size_t *embed, size_t *fnorm, int *nt) {
    const int64_t d = c->hidden_size, qd = (int64_t)c->num_heads * c->head_dim,
                  kvd = (int64_t)c->num_kv_heads * c->head_dim, F = c->intermediate_size;
    size_t off = 0, e;
    int n = 0;
    char nm[96];
    e = add(t, &n, &off, "model.embed_tokens.weight", c->vocab_size, d);
    if (embed) *embed = e;
    for (int l = 0; l < c->num_layers; l++) {
        g2_layer_off L;
#define T(field, suffix, r, cc)                                                  \
    snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, suffix);             \
    L.field = add(t, &n, &off, nm, r, cc);
        T(in_norm, "input_layernorm", d, 0)
        T(wq, "self_attn.q_proj", qd, d)
        T(wk, "self_attn.k_proj", kvd, d)
        T(wv, "self_attn.v_proj", kvd, d)
        T(wo, "self_attn.o_proj", d, qd)
        T(post_attn_norm, "post_attention_layernorm", d, 0)
        T(pre_ffw_norm, "pre_feedforward_layernorm", d, 0)
        T(gate, "mlp.gate_proj", F, d)
        T(up, "mlp.up_proj", F, d)
        T(down, "mlp.down_proj", d, F)
        T(post_ffw_norm, "post_feedforward_layernorm", d, 0)
#undef T
        if (lo) lo[l] = L;
    }
    e = add(t, &n, &off, "model.norm.weight", d, 0);
    if (fnorm) *fnorm = e;
    if (nt) *nt = n;
    return off;
}

size_t g2_tmodel_bytes(const gemma2_config *cfg) {
    return 2 * sizeof(float) * layout(cfg, NULL, NULL, NULL, NULL, NULL);
}

gemma2_status g2_tmodel_create(const gemma2_config *cfg, g2_tmodel *m, gemma2_error *err) {
    memset(m, 0, sizeof *m);
    gemma2_status s = g2_config_validate(cfg, "model config", err);
    if (s) return s;
    m->cfg = *cfg;
    int nt = 0;
    m->n_params = layout(cfg, NULL, NULL, NULL, NULL, &nt);
    m->tensors = calloc((size_t)nt, sizeof *m->tensors);
    m->layers = calloc((size_t)cfg->num_layers, sizeof *m->layers);
    m->params = calloc(m->n_params, sizeof(float));
    m->grads = calloc(m->n_params, sizeof(float));
    if (!m->tensors || !m->layers || !m->params || !m->grads) {
        g2_tmodel_free(m);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory: the model's fp32 weights and gradients need %.1f MB",
                       (double)g2_tmodel_bytes(cfg) / 1e6);
    }
    layout(cfg, m->tensors, m->layers, &m->embed, &m->final_norm, &m->n_tensors);
    return GEMMA2_OK;
}

void g2_tmodel_free(g2_tmodel *m) {
    free(m->tensors);
    free(m->layers);
    free(m->params);
    free(m->grads);
    memset(m, 0, sizeof *m);
}

/* GPT-2/llm.c-style init: linear weights N(0, 0.02^2), the output projections (o, down) scaled
 * by 1/sqrt(2 layers) so that the residual stream does not grow with depth; the embedding
 * N(0, 1/d) because Gemma multiplies it by sqrt(d); norm w = 0 (scale 1). */
void g2_tmodel_init_random(g2_tmodel *m, uint64_t seed) {
    g2_rng r;
    g2_rng_seed(&r, seed);
    const double d = m->cfg.hidden_size, resid = 0.02 / sqrt(2.0 * m->cfg.num_layers);
    for (int i = 0; i < m->n_tensors; i++) {
        const g2_tparam *t = &m->tensors[i];
        float *p = m->params + t->off;
        double sd = 0.02;
        if (t->n_dims == 1) sd = 0;
        else if (t->off == m->embed) sd = 1.0 / sqrt(d);
        else if (strstr(t->name, "o_proj") || strstr(t->name, "down_proj")) sd = resid;
        for (size_t j = 0; j < t->numel; j++) p[j] = sd > 0 ? (float)(sd * g2_rng_normal(&r)) : 0.0f;
    }
}

const g2_tparam *g2_tmodel_find(const g2_tmodel *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

gemma2_status g2_tmodel_load_hf(const char *dir, g2_tmodel *m, gemma2_error *err) {
    g2_hf_dir hf;
    gemma2_status s = g2_hf_dir_open(dir, &hf, err);
    if (s) return s;
    gemma2_config cfg;
    s = g2_config_from_json(dir, hf.config_json, &cfg, err);
    if (!s) s = g2_tmodel_create(&cfg, m, err);
    for (int i = 0; !s && i < m->n_tensors; i++) {
        const g2_tparam *t = &m->tensors[i];
        const g2_st_tensor *st = g2_hf_dir_find(&hf, t->name, NULL);
        if (!st) {
            s = g2_fail(err, GEMMA2_ERR_MODEL, "%s: tensor %s is missing", dir, t->name);
            break;
        }
        int64_t numel = 1;
        for (int k = 0; k < st->n_dims; k++) numel *= st->shape[k];
        int same = st->n_dims == t->n_dims && st->shape[0] == t->shape[0] && (t->n_dims == 1 || st->shape[1] == t->shape[1]);
        if (!same || (size_t)numel != t->numel) {
            s = g2_fail(err, GEMMA2_ERR_MODEL, "%s: tensor %s has the wrong shape for the config", dir, t->name);
            break;
        }
        float *p = m->params + t->off;
        if (st->dtype == GEMMA2_TYPE_F32) memcpy(p, st->data, t->numel * sizeof(float));
        else if (st->dtype == GEMMA2_TYPE_BF16)
            for (size_t j = 0; j < t->numel; j++) p[j] = g2_bf16_to_f32(((const uint16_t *)st->data)[j]);
        else if (st->dtype == GEMMA2_TYPE_F16)
            for (size_t j = 0; j < t->numel; j++) p[j] = g2_f16_to_f32(((const uint16_t *)st->data)[j]);
        else s = g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: tensor %s has type %s; training needs F32, BF16 or F16", dir,
                         t->name, g2_st_dtype_name(st->dtype));
    }
    g2_hf_dir_close(&hf);
    if (s) g2_tmodel_free(m);
    return s;
}

gemma2_status g2_tmodel_save_hf(const g2_tmodel *m, const char *dir, gemma2_error *err) {
    if (mkdir(dir, 0755) && errno != EEXIST) return g2_fail(err, GEMMA2_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *json = g2_config_to_json(&m->cfg, "float32");
    if (!json) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    g2_atomic_file af;
    gemma2_status s = g2_atomic_open(path, &af, err);
    if (!s) {
        size_t n = strlen(json);
        if (fwrite(json, 1, n, af.fp) != n || fputc('\n', af.fp) == EOF) {
            g2_atomic_abort(&af);
            s = g2_fail(err, GEMMA2_ERR_IO, "%s: write failed", path);
        } else {
            s = g2_atomic_commit(&af, err);
        }
    }
    free(json);
    if (s) return s;
    g2_st_out *outs = calloc((size_t)m->n_tensors, sizeof *outs);
    if (!outs) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->n_tensors; i++) {
        const g2_tparam *t = &m->tensors[i];
        outs[i].name = t->name, outs[i].dtype = GEMMA2_TYPE_F32, outs[i].n_dims = t->n_dims;
        outs[i].shape[0] = t->shape[0], outs[i].shape[1] = t->shape[1];
        outs[i].data = m->params + t->off;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    s = g2_safetensors_write(path, outs, m->n_tensors, err);
    free(outs);
    return s;
}
