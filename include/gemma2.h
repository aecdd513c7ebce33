/*
 * gemma2.h - Gemma 2 inference in C: the public API.
 *
 * Gemma 2 (Google DeepMind, 2024) is a decoder-only transformer: a tied 256k
 * embedding, layers that alternate local sliding-window attention (even
 * layers, starting at 0) and global attention, grouped-query attention with
 * NEOX RoPE, pre- and post-norms around both the attention and the GeGLU
 * feed-forward block, and tanh soft-capping of the attention scores (before
 * the mask) and of the final logits.
 *
 * What this library does
 *   - opens a model from the files people have: a Hugging Face directory
 *     (config.json + model.safetensors, or sharded model-0000i-of-0000n.safetensors
 *     with model.safetensors.index.json) or a GGUF v3 file. Weights are
 *     memory-mapped and used in their stored type (F32, BF16, F16, Q8_0):
 *     nothing is expanded to fp32 except the small norm vectors.
 *   - evaluates tokens in a context that owns a KV cache. A prompt can be
 *     evaluated as one batch and then tokens one at a time. Local layers keep
 *     only the last `sliding_window` positions (a ring buffer); global layers
 *     keep the whole context.
 *   - returns logits after the final soft-cap, in fp32.
 *
 * Conventions
 *   - Every function that can fail returns a gemma2_status and, when `err` is
 *     not NULL, fills it with a message that names the file, tensor or field
 *     at fault. The library never calls exit() or abort() and never prints.
 *   - Objects are opaque; every create/open has a matching free/close that
 *     accepts NULL.
 *   - No global mutable state: two models or contexts can be used from two
 *     threads at once. One context must not be used by two threads at once.
 *
 * Typical use
 *     gemma2_error err;
 *     gemma2_model *m;
 *     if (gemma2_model_open("gemma-2-2b/", NULL, &m, &err)) { puts(err.msg); ... }
 *     gemma2_context_options co = gemma2_context_default_options();
 *     gemma2_context *c;
 *     gemma2_context_create(m, &co, &c, &err);
 *     int32_t ids[] = {2, 651, 6037};
 *     gemma2_eval(c, ids, 3, NULL, &err);       // logits of the last token:
 *     const float *logits = gemma2_last_logits(c);  // vocab_size floats
 *     gemma2_context_free(c);
 *     gemma2_model_close(m);
 */
#ifndef GEMMA2_H
#define GEMMA2_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GEMMA2_VERSION "0.1.0"

/* ---- errors ---------------------------------------------------------- */

typedef enum {
    GEMMA2_OK = 0,
    GEMMA2_ERR_IO,          /* a file is missing, unreadable or could not be written */
    GEMMA2_ERR_FORMAT,      /* a file is malformed: magic, header, offsets, JSON */
    GEMMA2_ERR_UNSUPPORTED, /* a valid file that uses something we do not support */
    GEMMA2_ERR_MODEL,       /* a tensor is missing or of the wrong shape; config inconsistent */
    GEMMA2_ERR_ARG,         /* a bad argument: token id out of range, context full, ... */
    GEMMA2_ERR_NOMEM        /* an allocation failed */
} gemma2_status;

typedef struct {
    gemma2_status status;
    char msg[512];
} gemma2_error;

/* A short name for a status ("format error", ...). */
const char *gemma2_status_name(gemma2_status s);

/* ---- model ------------------------------------------------------------ */

/* The hyper-parameters of a Gemma 2 model (GEMMA2.md section 1). */
typedef struct {
    int vocab_size;              /* 256000 for the real models */
    int hidden_size;             /* d: 2304 / 3584 / 4608 */
    int intermediate_size;       /* FFN width of gate and of up: 9216 / 14336 / 36864 */
    int num_layers;              /* 26 / 42 / 46 */
    int num_heads;               /* query heads */
    int num_kv_heads;            /* key/value heads; query head i uses kv head i / (heads / kv_heads) */
    int head_dim;                /* 256 / 256 / 128 */
    int sliding_window;          /* local layers see this many keys, the current one included */
    int max_position_embeddings; /* 8192 */
    float query_pre_attn_scalar; /* scores are multiplied by its -1/2 power: 256 / 256 / 144 */
    float attn_logit_softcap;    /* 50; 0 = none */
    float final_logit_softcap;   /* 30; 0 = none */
    float rms_norm_eps;          /* 1e-6 */
    float rope_theta;            /* 10000 */
} gemma2_config;

/* Where a model came from. */
typedef enum { GEMMA2_FORMAT_HF = 1, GEMMA2_FORMAT_GGUF = 2 } gemma2_format;

/* How the weights are held. MMAP maps the files (pages come from the page cache, 4 KiB each,
 * shared with other processes and dropped under memory pressure): instant to open. READ copies
 * them into this process's memory on transparent huge pages (as llama.cpp's --no-mmap) and
 * repacks the matrices into the layout the decode kernels read fastest (kernels/repack.h):
 * slower to open (the file is read once), decode up to 1.5x faster. Either way the weights take
 * their file size once. AUTO is READ when the files take at most 3/4 of the memory available
 * now (MemAvailable), MMAP otherwise. */
typedef enum { GEMMA2_LOAD_MMAP = 0, GEMMA2_LOAD_READ = 1, GEMMA2_LOAD_AUTO = 2 } gemma2_load_mode;

typedef struct {
    int n_threads;              /* 0 = all cores (OpenMP's default) */
    gemma2_load_mode load_mode; /* gemma2_model_default_options: AUTO; a zeroed struct: MMAP */
} gemma2_model_options;

typedef struct gemma2_model gemma2_model;

gemma2_model_options gemma2_model_default_options(void);

/* Opens a Hugging Face directory or a GGUF file. `opt` may be NULL. */
gemma2_status gemma2_model_open(const char *path, const gemma2_model_options *opt,
                                gemma2_model **out, gemma2_error *err);
void gemma2_model_close(gemma2_model *m);

const gemma2_config *gemma2_model_config(const gemma2_model *m);
gemma2_format gemma2_model_format(const gemma2_model *m);
/* Is layer `l` a local (sliding-window) layer? Layer 0 is. */
int gemma2_layer_is_local(const gemma2_config *c, int l);

/* Facts about the loaded weights, for `gemma2 info`. */
typedef struct {
    int n_tensors;           /* tensors used by the model */
    int64_t n_params;        /* parameters, the tied embedding counted once */
    size_t weight_bytes;     /* bytes of weight data (as stored) */
    size_t file_bytes;       /* bytes of all weight files together */
    int type_counts[31];     /* tensors per type, indexed by gemma2_weight_type (< GEMMA2_TYPE_COUNT) */
    gemma2_load_mode load_mode; /* as applied: MMAP or READ (AUTO resolved) */
    int n_repacked;          /* matrices stored in the r16 layout (READ only) */
    size_t read_bytes;       /* bytes of weights a decode step reads: weight_bytes, less what 12
                                bits a weight save (BF16, and F16 holding BF16 values; READ,
                                where AVX2 or AVX-512 is the best ISA) */
} gemma2_model_stats;

/* Weight storage types, with the GGUF type numbers where GGUF has them. */
typedef enum {
    GEMMA2_TYPE_F32 = 0,
    GEMMA2_TYPE_F16 = 1,
    GEMMA2_TYPE_Q4_0 = 2,
    GEMMA2_TYPE_Q8_0 = 8,
    GEMMA2_TYPE_Q4_K = 12,
    GEMMA2_TYPE_Q6_K = 14,
    GEMMA2_TYPE_BF16 = 30
} gemma2_weight_type;
#define GEMMA2_TYPE_COUNT 31
const char *gemma2_type_name(int type); /* "F32", "BF16", ...; "?" for unknown */
/* The kernels products use now, for logs and benchmarks: "avx512", "avx2" or "scalar" (the best
 * the CPU runs, or GEMMA2_ISA), with "+bf16dot" when BF16 weights multiply bf16-rounded
 * activations (AVX512-BF16 CPUs unless GEMMA2_BF16_DOT=0). A string literal. */
const char *gemma2_kernels_in_use(void);

void gemma2_model_get_stats(const gemma2_model *m, gemma2_model_stats *out);

/* Bytes the KV cache of a context of `n_ctx` positions takes with fp32 K and V (half that
 * with kv_type F16/BF16); local layers hold min(n_ctx, sliding_window) positions. */
size_t gemma2_kv_cache_bytes(const gemma2_config *c, int n_ctx);

/* ---- context ------------------------------------------------------------ */

typedef struct {
    int n_ctx;   /* positions the context can hold; 0 = max_position_embeddings */
    int kv_type; /* how K and V are stored: GEMMA2_TYPE_F32 (default, exact), GEMMA2_TYPE_F16 or
                  * GEMMA2_TYPE_BF16 (half the memory; each stored value rounded once) */
} gemma2_context_options;

typedef struct gemma2_context gemma2_context;

gemma2_context_options gemma2_context_default_options(void);

gemma2_status gemma2_context_create(const gemma2_model *m, const gemma2_context_options *opt,
                                    gemma2_context **out, gemma2_error *err);
void gemma2_context_free(gemma2_context *c);

/* Evaluates `n` tokens at the next positions of the context, as one batch.
 * If `all_logits` is not NULL it receives n x vocab_size floats (row i = the
 * logits after token i); the last row is always available through
 * gemma2_last_logits(). Fails without changing the context when a token id is
 * out of range or the tokens do not fit in the context. */
gemma2_status gemma2_eval(gemma2_context *c, const int32_t *tokens, int n, float *all_logits,
                          gemma2_error *err);

/* The logits after the last evaluated token (vocab_size floats), or NULL if
 * nothing has been evaluated since creation or the last rewind to 0. */
const float *gemma2_last_logits(const gemma2_context *c);

/* Positions evaluated so far. */
int gemma2_context_pos(const gemma2_context *c);
int gemma2_context_size(const gemma2_context *c);

/* Forgets every position from `pos` on, so that evaluation continues at
 * `pos`. Because local layers keep only the last `sliding_window` positions,
 * a rewind by more than that inside a local layer's window is not possible
 * unless pos is 0: it fails with GEMMA2_ERR_ARG. */
gemma2_status gemma2_context_rewind(gemma2_context *c, int pos, gemma2_error *err);

/* Bytes held by this context's KV cache. */
size_t gemma2_context_kv_bytes(const gemma2_context *c);

/* ---- quantization --------------------------------------------------- */

typedef struct {
    const char *type; /* "q8_0", "q4_0", "q4_k_m", "q6_k", "bf16", "f16" or "f32" */
    int n_threads;    /* 0 = all cores */
    /* Progress and notes (one line each, e.g. a tensor that falls back to another type);
     * may be NULL. The library never prints. */
    void (*log)(void *user, const char *line);
    void *log_user;
} gemma2_quantize_options;

/* Writes the model at `in_path` (HF directory or GGUF) as a GGUF file of the given type with
 * llama.cpp's names, metadata and type mixes (Q4_K_M: Q6_K embedding and some attn_v/ffn_down).
 * The file is written to a temporary name and renamed: a failure leaves no partial file. */
gemma2_status gemma2_quantize(const char *in_path, const char *out_path, const gemma2_quantize_options *opt,
                              gemma2_error *err);

#ifdef __cplusplus
}
#endif
#endif /* GEMMA2_H */
