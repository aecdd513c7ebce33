/* context.c - creating a context: the KV cache (ring buffers for local layers), RoPE tables
 * and the scratch activations; rewinding it. */
#include "model/context.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/error.h"

/* Under AddressSanitizer the 64 bytes after each carved buffer are poisoned, so that running
 * past a buffer's end is still reported, as it was with one malloc per buffer. */
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#define G2_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define G2_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define G2_POISON(p, n) ((void)(p), (void)(n))
#define G2_UNPOISON(p, n) ((void)(p), (void)(n))
#endif
#define G2_GUARD 64

gemma2_context_options gemma2_context_default_options(void) {
    gemma2_context_options o = {0};
    return o;
}

void gemma2_context_free(gemma2_context *c) {
    if (!c) return;
    if (c->arena) {
        G2_UNPOISON(c->arena, c->arena_bytes);
        munmap(c->arena, c->arena_bytes);
    }
    free(c->k_cache);
    free(c->v_cache);
    free(c->cap);
    free(c->attn);
    free(c);
}

/* Every buffer of a context (KV cache, RoPE tables, scratch, logits) is carved from one
 * anonymous mapping, as llm.c carves its activations from one buffer: freeing a context then
 * gives all of it back. With one malloc each, glibc's sliding mmap threshold (raised by the
 * first context's frees) put the next context's buffers in the heap instead; `gemma2 bench`,
 * which creates one for the warm-up and one per timed run, peaked 10 MB higher on the 2B Q8_0
 * file depending on the order of unrelated small allocations. Pages are touched only when
 * used, as with malloc's own large blocks. */
typedef struct {
    uint8_t *base; /* NULL while measuring */
    size_t used;
} g2_carver;

static void *carve(g2_carver *cv, size_t bytes) {
    const size_t off = (cv->used + 63) & ~(size_t)63, end = off + bytes;
    cv->used = end + G2_GUARD;
    if (!cv->base) return NULL;
    G2_POISON(cv->base + end, G2_GUARD);
    return cv->base + off;
}
static float *carve_floats(g2_carver *cv, size_t n) { return carve(cv, n * sizeof(float)); }

/* Points c's buffers into cv (or, with cv->base NULL, only measures them). */
static void carve_buffers(gemma2_context *c, g2_carver *cv) {
    const gemma2_config *cfg = &c->m->cfg;
    const int L = cfg->num_layers, hd = cfg->head_dim;
    const size_t d = (size_t)cfg->hidden_size, qd = (size_t)cfg->num_heads * (size_t)hd,
                 kvd = (size_t)cfg->num_kv_heads * (size_t)hd, ffn = (size_t)cfg->intermediate_size,
                 U = G2_UBATCH, n_ctx = (size_t)c->n_ctx, half = (size_t)hd / 2;
    for (int l = 0; l < L; l++) {
        c->k_cache[l] = carve(cv, (size_t)c->cap[l] * kvd * c->kv_esize);
        c->v_cache[l] = carve(cv, (size_t)c->cap[l] * kvd * c->kv_esize);
    }
    c->rope_cos = carve_floats(cv, n_ctx * half);
    c->rope_sin = carve_floats(cv, n_ctx * half);
    c->x = carve_floats(cv, U * d);
    c->xn = carve_floats(cv, U * d);
    c->q = carve_floats(cv, U * qd);
    c->k = carve_floats(cv, U * kvd);
    c->v = carve_floats(cv, U * kvd);
    c->att = carve_floats(cv, U * qd);
    c->proj = carve_floats(cv, U * d);
    c->gate = carve_floats(cv, U * ffn);
    c->up = carve_floats(cv, U * ffn);
    for (int i = 0; i < c->n_threads; i++) {
        g2_attn_scratch *a = &c->attn[i];
        a->kg = carve_floats(cv, n_ctx * (size_t)hd);
        a->vt = carve_floats(cv, n_ctx * (size_t)hd);
        a->s = carve_floats(cv, U * n_ctx);
        a->qh = carve_floats(cv, U * (size_t)hd);
        a->oh = carve_floats(cv, U * (size_t)hd);
    }
    c->logits = carve_floats(cv, (size_t)cfg->vocab_size);
}

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

    const int L = cfg->num_layers;
    const size_t kvd = (size_t)cfg->num_kv_heads * (size_t)cfg->head_dim;
    c->k_cache = calloc((size_t)L, sizeof *c->k_cache);
    c->v_cache = calloc((size_t)L, sizeof *c->v_cache);
    c->cap = calloc((size_t)L, sizeof *c->cap);
    c->attn = calloc((size_t)c->n_threads, sizeof *c->attn);
    int ok = c->k_cache && c->v_cache && c->cap && c->attn;
    for (int l = 0; ok && l < L; l++) {
        int cap = n_ctx;
        if (gemma2_layer_is_local(cfg, l) && cfg->sliding_window < cap) cap = cfg->sliding_window;
        c->cap[l] = cap;
        c->kv_bytes += 2 * (size_t)cap * kvd * c->kv_esize;
    }
    if (ok) {
        g2_carver cv = {NULL, 0};
        carve_buffers(c, &cv); /* measure */
        void *a = mmap(NULL, cv.used, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ok = a != MAP_FAILED;
        if (ok) {
            c->arena = a, c->arena_bytes = cv.used;
            cv = (g2_carver){a, 0};
            carve_buffers(c, &cv);
        }
    }
    if (!ok) {
        gemma2_context_free(c);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory for a context of %d positions (KV cache %.1f MB)", n_ctx,
                       (double)gemma2_kv_cache_bytes(cfg, n_ctx) / 1e6);
    }
    const size_t half = (size_t)cfg->head_dim / 2;
    const int hd = cfg->head_dim;
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
