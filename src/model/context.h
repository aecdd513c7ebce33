/* context.h - internal: the evaluation context (KV cache, RoPE tables, scratch activations). */
#ifndef G2_CONTEXT_H
#define G2_CONTEXT_H

#include "model/model_impl.h"

/* Tokens evaluated together at most; a longer batch is split into pieces of this size. 256
 * rather than 512: the scratch below halves (about 40-50 MB less peak RSS for the 2B) at the
 * same prefill speed, now that every matrix of the 2B files runs the r16 kernels in read mode
 * (no per-call packing to amortise). pp512 in alternating runs, 512 vs 256: Q4_0 127.2 /
 * 129.7 vs 126.2 / 129.3 t/s, BF16 47.4 / 49.8 vs 49.5 / 48.7, Q8_0 (r16) 120.0 / 126.7 vs
 * 124.5 / 124.5. Plain-layout Q8_0 (mmap mode; then on the panel kernels, since replaced by
 * packing r16 groups per call) lost 10-15% with 256. */
#define G2_UBATCH 256

/* Scratch for the attention of one kv head (attention.c). */
typedef struct {
    float *kg; /* [n_ctx][head_dim]  keys gathered contiguous */
    float *vt; /* [head_dim][n_ctx]  values, transposed */
    float *s;  /* [U][n_ctx]         scores, then probabilities */
    float *qh; /* [U][head_dim]      one head's queries */
    float *oh; /* [U][head_dim]      one head's output */
} g2_attn_scratch;

struct gemma2_context {
    const gemma2_model *m;
    int n_ctx; /* positions the context can hold */
    int pos;   /* positions evaluated so far */
    int n_threads;

    /* KV cache in kv_type (F32, F16 or BF16). Layer l holds cap[l] positions: n_ctx for global
     * layers, min(n_ctx, sliding_window) for local ones, where position j lives in slot
     * j % cap[l] (a ring). Keys are stored per kv head, so that decode reads a head's keys as
     * one block; values transposed, so that decode's product with V^T reads contiguous rows
     * (attention.c). */
    uint8_t **k_cache; /* [layer] -> [kv_heads][cap][head_dim] elements */
    uint8_t **v_cache; /* [layer] -> [kv_heads * head_dim][cap] elements */
    int kv_type;
    size_t kv_esize; /* bytes per element */
    int *cap;
    size_t kv_bytes;

    float *rope_cos, *rope_sin; /* [n_ctx][head_dim / 2] */

    /* scratch for one piece of at most G2_UBATCH tokens */
    float *x;      /* [U][d]     residual stream */
    float *xn;     /* [U][d]     normed input of a block */
    float *q;      /* [U][heads * head_dim] */
    float *k, *v;  /* [U][kv_heads * head_dim]: this piece's keys and values */
    float *att;    /* [U][heads * head_dim] attention output before o_proj */
    float *proj;   /* [U][d]     output of o_proj / down_proj */
    float *gate;   /* [U][ffn] */
    float *up;     /* [U][ffn] */
    g2_attn_scratch *attn; /* [n_threads]: one per thread (attention.c) */

    float *logits; /* [vocab] logits after the last evaluated token */
    int has_logits;

    void *arena; /* one anonymous mapping holding every buffer above (context.c) */
    size_t arena_bytes;
};

#endif
