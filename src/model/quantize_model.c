/* quantize_model.c - gemma2_quantize: any model we load (HF directory or GGUF) to a GGUF file
 * of another weight type, with llama.cpp's tensor names, metadata and type mixes, so that
 * llama.cpp loads what we write.
 *
 * Mixes (llama.cpp's llama_tensor_get_type for Gemma 2's tied embedding, no importance matrix):
 *   q8_0    every matrix Q8_0
 *   q4_0    every matrix Q4_0, the tied embedding/output Q6_K
 *   q4_k_m  Q4_K, with Q6_K for the embedding and for attn_v / ffn_down of the layers where
 *           use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2
 *   q6_k    every matrix Q6_K
 *   bf16, f16, f32  every matrix in that type
 * Norms are always F32 and stored as 1 + w (GGUF's convention). A matrix whose row length is not
 * a multiple of the chosen block falls back (Q4_K -> Q4_0 rather than llama.cpp's Q5_0, which we
 * do not compute with; Q6_K -> Q8_0; a 32-block type -> BF16), and the log callback says so. */
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf_write.h"
#include "gemma2_tokenizer.h"
#include "kernels/quantize.h"
#include "kernels/types.h"
#include "model/model_impl.h"
#include "util/atomic_file.h"
#include "util/error.h"

typedef struct {
    const char *name;
    int base;      /* matrix type */
    int embed;     /* the tied embedding's type */
    int k_mix;     /* Q4_K_M: Q6_K for attn_v / ffn_down by use_more_bits */
    uint32_t ftype; /* llama_ftype for general.file_type */
} quant_scheme;

static const quant_scheme k_schemes[] = {
    {"f32", GEMMA2_TYPE_F32, GEMMA2_TYPE_F32, 0, 0},      {"f16", GEMMA2_TYPE_F16, GEMMA2_TYPE_F16, 0, 1},
    {"bf16", GEMMA2_TYPE_BF16, GEMMA2_TYPE_BF16, 0, 32},  {"q8_0", GEMMA2_TYPE_Q8_0, GEMMA2_TYPE_Q8_0, 0, 7},
    {"q4_0", GEMMA2_TYPE_Q4_0, GEMMA2_TYPE_Q6_K, 0, 2},   {"q4_k_m", GEMMA2_TYPE_Q4_K, GEMMA2_TYPE_Q6_K, 1, 15},
    {"q6_k", GEMMA2_TYPE_Q6_K, GEMMA2_TYPE_Q6_K, 0, 18},
};

static int use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static void note(const gemma2_quantize_options *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const gemma2_quantize_options *o, const char *fmt, ...) {
    if (!o->log) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    o->log(o->log_user, buf);
}

/* The type a matrix of `cols` columns can take, falling back when the block does not fit. */
static int fit_type(int type, int64_t cols, const char *name, const gemma2_quantize_options *o) {
    int t = type;
    if (g2_type_row_bytes(t, cols)) return t;
    if (t == GEMMA2_TYPE_Q4_K) t = GEMMA2_TYPE_Q4_0;
    else if (t == GEMMA2_TYPE_Q6_K) t = GEMMA2_TYPE_Q8_0;
    if (!g2_type_row_bytes(t, cols)) t = GEMMA2_TYPE_BF16;
    note(o, "%s: row length %lld is not a multiple of the %s block: stored as %s", name, (long long)cols,
         gemma2_type_name(type), gemma2_type_name(t));
    return t;
}

typedef struct {
    char name[64];
    const g2_tensor *mat; /* a matrix, or NULL for a norm */
    const float *norm;    /* the norm scale 1 + w, [d] */
    int type;
    int64_t ne[2];
    int n_dims;
    size_t nbytes;
} out_tensor;

/* The vocabulary of the directory's tokenizer.model / tokenizer.json as tokenizer.ggml.* keys:
 * SentencePiece's pieces, scores and types as they are (our GGUF loader and llama.cpp both
 * read them). Returns 0 when the directory has no tokenizer or its size is not vocab_size. */
static int write_dir_vocab(g2_gguf_writer *w, const gemma2_model *m) {
    gemma2_tokenizer *tok;
    gemma2_error err;
    if (gemma2_tokenizer_load(m->hf.dir, &tok, &err)) return 0;
    const int V = gemma2_tokenizer_vocab_size(tok);
    if (V != m->cfg.vocab_size) {
        gemma2_tokenizer_free(tok);
        return 0;
    }
    char **toks = calloc((size_t)V, sizeof *toks);
    float *scores = calloc((size_t)V, sizeof *scores);
    int32_t *types = calloc((size_t)V, sizeof *types);
    int ok = toks && scores && types;
    for (int i = 0; ok && i < V; i++) {
        size_t len;
        const char *p = gemma2_tokenizer_piece(tok, i, &len);
        toks[i] = p ? strndup(p, len) : strdup("");
        ok = toks[i] != NULL;
        scores[i] = gemma2_tokenizer_score(tok, i);
        types[i] = (int32_t)gemma2_tokenizer_piece_type(tok, i);
    }
    if (ok) {
        g2_gguf_add_str(w, "tokenizer.ggml.model", "llama");
        g2_gguf_add_str(w, "tokenizer.ggml.pre", "default");
        g2_gguf_add_str_array(w, "tokenizer.ggml.tokens", (const char *const *)toks, (uint64_t)V);
        g2_gguf_add_num_array(w, "tokenizer.ggml.scores", G2_GGUF_F32, scores, (uint64_t)V);
        g2_gguf_add_num_array(w, "tokenizer.ggml.token_type", G2_GGUF_I32, types, (uint64_t)V);
        const struct {
            const char *key;
            int32_t id;
        } ids[] = {{"tokenizer.ggml.bos_token_id", gemma2_tokenizer_bos_id(tok)},
                   {"tokenizer.ggml.eos_token_id", gemma2_tokenizer_eos_id(tok)},
                   {"tokenizer.ggml.unknown_token_id", gemma2_tokenizer_unk_id(tok)},
                   {"tokenizer.ggml.padding_token_id", gemma2_tokenizer_pad_id(tok)}};
        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
            if (ids[i].id >= 0) g2_gguf_add_u32(w, ids[i].key, (uint32_t)ids[i].id);
        g2_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", 1);
        g2_gguf_add_bool(w, "tokenizer.ggml.add_eos_token", 0);
        g2_gguf_add_bool(w, "tokenizer.ggml.add_space_prefix", 0);
    } else {
        w->failed = 1;
    }
    if (toks)
        for (int i = 0; i < V; i++) free(toks[i]);
    free(toks);
    free(scores);
    free(types);
    gemma2_tokenizer_free(tok);
    return 1;
}

/* Metadata: the source GGUF's keys (vocabulary and all) except the ones we set, or, for an HF
 * source, the gemma2.* keys and a minimal vocabulary like make_gguf.py's. */
static void write_metadata(g2_gguf_writer *w, const gemma2_model *m, const quant_scheme *q) {
    const gemma2_config *c = &m->cfg;
    g2_gguf_add_str(w, "general.architecture", "gemma2");
    g2_gguf_add_u32(w, "general.file_type", q->ftype);
    g2_gguf_add_u32(w, "general.quantization_version", 2);
    if (m->format == GEMMA2_FORMAT_GGUF) {
        for (int64_t i = 0; i < m->gguf.n_kv; i++) {
            const g2_gguf_kv *kv = &m->gguf.kv[i];
            if (!strcmp(kv->key, "general.architecture") || !strcmp(kv->key, "general.file_type") ||
                !strcmp(kv->key, "general.quantization_version") || !strcmp(kv->key, "general.alignment"))
                continue;
            g2_gguf_add_kv_copy(w, kv);
        }
        return;
    }
    g2_gguf_add_str(w, "general.name", "gemma2");
    g2_gguf_add_u32(w, "gemma2.context_length", (uint32_t)c->max_position_embeddings);
    g2_gguf_add_u32(w, "gemma2.embedding_length", (uint32_t)c->hidden_size);
    g2_gguf_add_u32(w, "gemma2.block_count", (uint32_t)c->num_layers);
    g2_gguf_add_u32(w, "gemma2.feed_forward_length", (uint32_t)c->intermediate_size);
    g2_gguf_add_u32(w, "gemma2.attention.head_count", (uint32_t)c->num_heads);
    g2_gguf_add_u32(w, "gemma2.attention.head_count_kv", (uint32_t)c->num_kv_heads);
    g2_gguf_add_f32(w, "gemma2.attention.layer_norm_rms_epsilon", c->rms_norm_eps);
    g2_gguf_add_u32(w, "gemma2.attention.key_length", (uint32_t)c->head_dim);
    g2_gguf_add_u32(w, "gemma2.attention.value_length", (uint32_t)c->head_dim);
    g2_gguf_add_f32(w, "gemma2.attn_logit_softcapping", c->attn_logit_softcap);
    g2_gguf_add_f32(w, "gemma2.final_logit_softcapping", c->final_logit_softcap);
    g2_gguf_add_u32(w, "gemma2.attention.sliding_window", (uint32_t)c->sliding_window);
    if (c->rope_theta != 10000.0f) g2_gguf_add_f32(w, "gemma2.rope.freq_base", c->rope_theta);
    if (write_dir_vocab(w, m)) return;
    /* no tokenizer in the directory: a minimal vocabulary like make_gguf.py's: <pad> <eos> <bos>
     * <unk>, 256 byte pieces, then placeholders */
    const int V = c->vocab_size;
    char **toks = calloc((size_t)V, sizeof *toks);
    float *scores = calloc((size_t)V, sizeof *scores);
    int32_t *types = calloc((size_t)V, sizeof *types);
    if (!toks || !scores || !types) {
        w->failed = 1;
    } else {
        static const char *const specials[4] = {"<pad>", "<eos>", "<bos>", "<unk>"};
        for (int i = 0; i < V && !w->failed; i++) {
            char buf[32];
            if (i < 4) snprintf(buf, sizeof buf, "%s", specials[i]);
            else if (i < 260) snprintf(buf, sizeof buf, "<0x%02X>", i - 4);
            else snprintf(buf, sizeof buf, "\xe2\x96\x81t%d", i - 260);
            toks[i] = strdup(buf);
            if (!toks[i]) w->failed = 1;
            types[i] = i < 3 ? 3 : i == 3 ? 2 : i < 260 ? 6 : 1;
            scores[i] = i < 260 ? 0.0f : -(float)(i - 260);
        }
        if (!w->failed) {
            g2_gguf_add_str(w, "tokenizer.ggml.model", "llama");
            g2_gguf_add_str(w, "tokenizer.ggml.pre", "default");
            g2_gguf_add_str_array(w, "tokenizer.ggml.tokens", (const char *const *)toks, (uint64_t)V);
            g2_gguf_add_num_array(w, "tokenizer.ggml.scores", G2_GGUF_F32, scores, (uint64_t)V);
            g2_gguf_add_num_array(w, "tokenizer.ggml.token_type", G2_GGUF_I32, types, (uint64_t)V);
            g2_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", 2);
            g2_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", 1);
            g2_gguf_add_u32(w, "tokenizer.ggml.unknown_token_id", 3);
            g2_gguf_add_u32(w, "tokenizer.ggml.padding_token_id", 0);
            g2_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", 1);
            g2_gguf_add_bool(w, "tokenizer.ggml.add_eos_token", 0);
            g2_gguf_add_bool(w, "tokenizer.ggml.add_space_prefix", 0);
        }
    }
    if (toks)
        for (int i = 0; i < V; i++) free(toks[i]);
    free(toks);
    free(scores);
    free(types);
}

/* Converts one tensor to its output type in `buf` (rows in parallel). */
static void convert_tensor(const out_tensor *t, uint8_t *buf, int n_threads) {
    if (!t->mat) {
        memcpy(buf, t->norm, t->nbytes); /* F32 norm */
        return;
    }
    const g2_tensor *w = t->mat;
    const size_t out_rb = g2_type_row_bytes(t->type, w->cols);
#pragma omp parallel num_threads(n_threads)
    {
        float *row = malloc(sizeof(float) * (size_t)w->cols);
#pragma omp for schedule(dynamic, 64)
        for (int64_t r = 0; r < w->rows; r++) {
            if (!row) continue; /* reported below by a zeroed row: cannot happen for rows of a few KB */
            g2_dequantize_row(w->type, (const uint8_t *)w->data + (size_t)r * w->row_bytes, row, w->cols);
            g2_quantize_row(t->type, row, buf + (size_t)r * out_rb, w->cols);
        }
        free(row);
    }
}

gemma2_status gemma2_quantize(const char *in_path, const char *out_path, const gemma2_quantize_options *opt,
                              gemma2_error *err) {
    gemma2_quantize_options o = opt ? *opt : (gemma2_quantize_options){0};
    const quant_scheme *q = NULL;
    for (size_t i = 0; i < sizeof k_schemes / sizeof k_schemes[0]; i++)
        if (o.type && !strcmp(o.type, k_schemes[i].name)) q = &k_schemes[i];
    if (!q)
        return g2_fail(err, GEMMA2_ERR_ARG, "unknown quantization type '%s' (f32, f16, bf16, q8_0, q4_0, q4_k_m, q6_k)",
                       o.type ? o.type : "");
    gemma2_model *m;
    gemma2_model_options mo = gemma2_model_default_options();
    mo.n_threads = o.n_threads;
    mo.load_mode = GEMMA2_LOAD_MMAP; /* the tensors as stored: never the repacked layout */
    gemma2_status s = gemma2_model_open(in_path, &mo, &m, err);
    if (s) return s;
    const gemma2_config *c = &m->cfg;
    if (m->format == GEMMA2_FORMAT_HF) {
        float llama_scale = c->num_layers == 46 ? (float)c->hidden_size / (float)c->num_heads : (float)c->head_dim;
        if (fabsf(llama_scale - c->query_pre_attn_scalar) > 1e-3f)
            note(&o, "warning: query_pre_attn_scalar is %g but GGUF has no key for it: llama.cpp and this engine "
                     "will use %g for the GGUF",
                 c->query_pre_attn_scalar, llama_scale);
    }
    const int L = c->num_layers, n_out = 2 + 11 * L;
    out_tensor *ts = calloc((size_t)n_out, sizeof *ts);
    if (!ts) {
        gemma2_model_close(m);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    }
    int k = 0;
#define MAT(nm, tensor, ty) (snprintf(ts[k].name, sizeof ts[k].name, "%s", nm), ts[k].mat = (tensor), ts[k].type = (ty), k++)
#define NORM(nm, v) (snprintf(ts[k].name, sizeof ts[k].name, "%s", nm), ts[k].norm = (v), ts[k].type = GEMMA2_TYPE_F32, k++)
    MAT("token_embd.weight", &m->embed, q->embed);
    for (int l = 0; l < L; l++) {
        const g2_layer *ly = &m->layers[l];
        char nm[64];
        const int more = q->k_mix && use_more_bits(l, L);
#define LNAME(suffix) (snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix), nm)
        NORM(LNAME("attn_norm.weight"), ly->attn_norm);
        MAT(LNAME("attn_q.weight"), &ly->wq, q->base);
        MAT(LNAME("attn_k.weight"), &ly->wk, q->base);
        MAT(LNAME("attn_v.weight"), &ly->wv, more ? GEMMA2_TYPE_Q6_K : q->base);
        MAT(LNAME("attn_output.weight"), &ly->wo, q->base);
        NORM(LNAME("post_attention_norm.weight"), ly->post_attn_norm);
        NORM(LNAME("ffn_norm.weight"), ly->pre_ffw_norm);
        MAT(LNAME("ffn_gate.weight"), &ly->gate, q->base);
        MAT(LNAME("ffn_up.weight"), &ly->up, q->base);
        MAT(LNAME("ffn_down.weight"), &ly->down, more ? GEMMA2_TYPE_Q6_K : q->base);
        NORM(LNAME("post_ffw_norm.weight"), ly->post_ffw_norm);
#undef LNAME
    }
    NORM("output_norm.weight", m->final_norm);
#undef MAT
#undef NORM

    g2_gguf_writer w;
    g2_gguf_writer_init(&w);
    write_metadata(&w, m, q);
    size_t max_bytes = 0;
    for (int i = 0; i < n_out; i++) {
        out_tensor *t = &ts[i];
        if (t->mat) {
            t->type = fit_type(t->type, t->mat->cols, t->name, &o);
            t->n_dims = 2, t->ne[0] = t->mat->cols, t->ne[1] = t->mat->rows;
        } else {
            t->n_dims = 1, t->ne[0] = c->hidden_size;
        }
        t->nbytes = g2_gguf_add_tensor(&w, t->name, t->n_dims, t->ne, t->type);
        if (t->nbytes > max_bytes) max_bytes = t->nbytes;
    }
    uint8_t *buf = malloc(max_bytes ? max_bytes : 1);
    g2_atomic_file af = {0};
    if (!buf) s = g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory for a %zu-byte tensor", max_bytes);
    if (!s) s = g2_atomic_open(out_path, &af, err);
    if (!s) s = g2_gguf_write_header(&w, af.fp, out_path, err);
    for (int i = 0; i < n_out && !s; i++) {
        convert_tensor(&ts[i], buf, o.n_threads > 0 ? o.n_threads : omp_get_max_threads());
        if (fwrite(buf, 1, ts[i].nbytes, af.fp) != ts[i].nbytes || !g2_gguf_write_pad(af.fp, ts[i].nbytes))
            s = g2_fail(err, GEMMA2_ERR_IO, "%s: write failed (disk full?)", out_path);
        if (!s) note(&o, "[%d/%d] %-28s %-5s -> %s", i + 1, n_out, ts[i].name,
                     ts[i].mat ? gemma2_type_name(ts[i].mat->type) : "F32", gemma2_type_name(ts[i].type));
    }
    if (!s) s = g2_atomic_commit(&af, err);
    else if (af.fp) g2_atomic_abort(&af);
    free(buf);
    g2_gguf_writer_free(&w);
    free(ts);
    gemma2_model_close(m);
    return s;
}
