/* weights.c - finds every Gemma 2 tensor by its name in the HF or GGUF file, checks its type
 * and shape, and points the model at it in place. Only the norm vectors are copied (to fp32
 * scales 1 + w): they are tiny and used in fp32. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/types.h"
#include "model/model_impl.h"
#include "util/error.h"
#include "util/half.h"

/* A tensor as a file holds it, shape outermost first. */
typedef struct {
    int type;
    int n_dims;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
    const char *file;
} raw_tensor;

/* Tensor names in each format, with %d for the layer. */
typedef enum { T_EMBED, T_FINAL_NORM, T_ATTN_NORM, T_Q, T_K, T_V, T_O, T_POST_ATTN_NORM, T_PRE_FFW_NORM,
               T_GATE, T_UP, T_DOWN, T_POST_FFW_NORM, T_COUNT } tensor_role;

static const char *k_hf_names[T_COUNT] = {
    "model.embed_tokens.weight", "model.norm.weight",
    "model.layers.%d.input_layernorm.weight", "model.layers.%d.self_attn.q_proj.weight",
    "model.layers.%d.self_attn.k_proj.weight", "model.layers.%d.self_attn.v_proj.weight",
    "model.layers.%d.self_attn.o_proj.weight", "model.layers.%d.post_attention_layernorm.weight",
    "model.layers.%d.pre_feedforward_layernorm.weight", "model.layers.%d.mlp.gate_proj.weight",
    "model.layers.%d.mlp.up_proj.weight", "model.layers.%d.mlp.down_proj.weight",
    "model.layers.%d.post_feedforward_layernorm.weight",
};
static const char *k_gguf_names[T_COUNT] = {
    "token_embd.weight", "output_norm.weight", "blk.%d.attn_norm.weight", "blk.%d.attn_q.weight",
    "blk.%d.attn_k.weight", "blk.%d.attn_v.weight", "blk.%d.attn_output.weight",
    "blk.%d.post_attention_norm.weight", "blk.%d.ffn_norm.weight", "blk.%d.ffn_gate.weight",
    "blk.%d.ffn_up.weight", "blk.%d.ffn_down.weight", "blk.%d.post_ffw_norm.weight",
};

static gemma2_status find_raw(gemma2_model *m, tensor_role role, int layer, raw_tensor *out, char *name,
                              size_t name_size, gemma2_error *err) {
    const char *pattern = m->format == GEMMA2_FORMAT_HF ? k_hf_names[role] : k_gguf_names[role];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(name, name_size, pattern, layer);
#pragma GCC diagnostic pop
    memset(out, 0, sizeof *out);
    if (m->format == GEMMA2_FORMAT_HF) {
        const char *file = NULL;
        const g2_st_tensor *t = g2_hf_dir_find(&m->hf, name, &file);
        if (!t) return g2_fail(err, GEMMA2_ERR_MODEL, "%s: tensor '%s' is missing", m->hf.dir, name);
        out->type = t->dtype, out->n_dims = t->n_dims, out->data = t->data, out->nbytes = t->nbytes, out->file = file;
        memcpy(out->shape, t->shape, sizeof out->shape);
    } else {
        const g2_gguf_tensor *t = g2_gguf_find_tensor(&m->gguf, name);
        if (!t) return g2_fail(err, GEMMA2_ERR_MODEL, "%s: tensor '%s' is missing", m->gguf.file.path, name);
        out->type = t->type, out->n_dims = t->n_dims, out->data = t->data, out->nbytes = t->nbytes;
        out->file = m->gguf.file.path;
        for (int d = 0; d < t->n_dims; d++) out->shape[d] = t->ne[t->n_dims - 1 - d];
    }
    return GEMMA2_OK;
}

static void shape_str(const raw_tensor *r, char *buf, size_t n) {
    int k = snprintf(buf, n, "[");
    for (int d = 0; d < r->n_dims && k > 0 && (size_t)k < n; d++)
        k += snprintf(buf + k, n - (size_t)k, d ? ", %lld" : "%lld", (long long)r->shape[d]);
    if (k > 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, "]");
}

static gemma2_status bind_matrix(gemma2_model *m, tensor_role role, int layer, int64_t rows, int64_t cols,
                                 g2_tensor *out, gemma2_error *err) {
    raw_tensor r;
    char name[128], sh[96];
    gemma2_status s = find_raw(m, role, layer, &r, name, sizeof name, err);
    if (s) return s;
    if (r.n_dims != 2 || r.shape[0] != rows || r.shape[1] != cols) {
        shape_str(&r, sh, sizeof sh);
        return g2_fail(err, GEMMA2_ERR_MODEL, "%s: tensor '%s' has shape %s, expected [%lld, %lld]", r.file, name, sh,
                       (long long)rows, (long long)cols);
    }
    if (!g2_type_supported(r.type) || (m->format == GEMMA2_FORMAT_HF && r.type >= GEMMA2_TYPE_COUNT))
        return g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which this build cannot compute with",
                       r.file, name, m->format == GEMMA2_FORMAT_HF ? g2_st_dtype_name(r.type) : gemma2_type_name(r.type));
    out->data = r.data;
    out->type = r.type;
    out->rows = rows;
    out->cols = cols;
    out->row_bytes = g2_type_row_bytes(r.type, cols);
    m->stats.n_tensors++;
    m->stats.weight_bytes += r.nbytes;
    m->stats.type_counts[r.type]++;
    return GEMMA2_OK;
}

/* Reads a norm vector into dst as the scale 1 + w. */
static gemma2_status bind_norm(gemma2_model *m, tensor_role role, int layer, float *dst, gemma2_error *err) {
    raw_tensor r;
    char name[128], sh[96];
    const int64_t d = m->cfg.hidden_size;
    gemma2_status s = find_raw(m, role, layer, &r, name, sizeof name, err);
    if (s) return s;
    if (r.n_dims != 1 || r.shape[0] != d) {
        shape_str(&r, sh, sizeof sh);
        return g2_fail(err, GEMMA2_ERR_MODEL, "%s: tensor '%s' has shape %s, expected [%lld]", r.file, name, sh,
                       (long long)d);
    }
    const void *p = r.data;
    for (int64_t i = 0; i < d; i++) {
        float w;
        switch (r.type) {
        case GEMMA2_TYPE_F32: memcpy(&w, (const char *)p + 4 * i, 4); break;
        case GEMMA2_TYPE_BF16: { uint16_t h; memcpy(&h, (const char *)p + 2 * i, 2); w = g2_bf16_to_f32(h); } break;
        case GEMMA2_TYPE_F16: { uint16_t h; memcpy(&h, (const char *)p + 2 * i, 2); w = g2_f16_to_f32(h); } break;
        default:
            return g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: norm tensor '%s' must be F32, BF16 or F16", r.file, name);
        }
        /* HF stores w and the model scales by 1 + w (in fp32, as HF's forward); GGUF stores 1 + w. */
        dst[i] = m->format == GEMMA2_FORMAT_HF ? 1.0f + w : w;
    }
    m->stats.n_tensors++;
    m->stats.weight_bytes += r.nbytes;
    m->stats.type_counts[r.type]++;
    return GEMMA2_OK;
}

gemma2_status g2_model_bind_weights(gemma2_model *m, gemma2_error *err) {
    const gemma2_config *c = &m->cfg;
    const int64_t d = c->hidden_size, q = (int64_t)c->num_heads * c->head_dim,
                  kv = (int64_t)c->num_kv_heads * c->head_dim, f = c->intermediate_size;
    m->layers = calloc((size_t)c->num_layers, sizeof *m->layers);
    m->norm_scales = malloc(sizeof(float) * (size_t)d * (4 * (size_t)c->num_layers + 1));
    if (!m->layers || !m->norm_scales) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory for the model tables");
    gemma2_status s = bind_matrix(m, T_EMBED, 0, c->vocab_size, d, &m->embed, err);
    float *ns = m->norm_scales;
    if (!s) s = bind_norm(m, T_FINAL_NORM, 0, ns, err);
    m->final_norm = ns;
    ns += d;
    for (int l = 0; l < c->num_layers && !s; l++) {
        g2_layer *L = &m->layers[l];
        float *an = ns, *pan = ns + d, *pfn = ns + 2 * d, *pffn = ns + 3 * d;
        ns += 4 * d;
        L->attn_norm = an, L->post_attn_norm = pan, L->pre_ffw_norm = pfn, L->post_ffw_norm = pffn;
        if (!s) s = bind_norm(m, T_ATTN_NORM, l, an, err);
        if (!s) s = bind_matrix(m, T_Q, l, q, d, &L->wq, err);
        if (!s) s = bind_matrix(m, T_K, l, kv, d, &L->wk, err);
        if (!s) s = bind_matrix(m, T_V, l, kv, d, &L->wv, err);
        if (!s) s = bind_matrix(m, T_O, l, d, q, &L->wo, err);
        if (!s) s = bind_norm(m, T_POST_ATTN_NORM, l, pan, err);
        if (!s) s = bind_norm(m, T_PRE_FFW_NORM, l, pfn, err);
        if (!s) s = bind_matrix(m, T_GATE, l, f, d, &L->gate, err);
        if (!s) s = bind_matrix(m, T_UP, l, f, d, &L->up, err);
        if (!s) s = bind_matrix(m, T_DOWN, l, d, f, &L->down, err);
        if (!s) s = bind_norm(m, T_POST_FFW_NORM, l, pffn, err);
    }
    return s;
}
