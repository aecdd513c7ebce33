/* forward.c - the Gemma 2 forward pass (GEMMA2.md section 2), for a batch of tokens at the
 * next positions of a context. Activations are fp32; weights are used in their stored type
 * through the kernels of matmul.h.
 *
 *   x = E[token] * sqrt(d)
 *   per layer l (even: local, sliding window; odd: global):
 *     h = rmsnorm(x) * (1 + w_in);  q, k, v = h Wq, h Wk, h Wv;  rope(q, k)
 *     s = cap_a * tanh((q.k) / sqrt(query_pre_attn_scalar) / cap_a), then the mask
 *     x += rmsnorm(softmax(s) v Wo) * (1 + w_post_attn)
 *     h = rmsnorm(x) * (1 + w_pre_ffw)
 *     x += rmsnorm((gelu_tanh(h Wgate) * (h Wup)) Wdown) * (1 + w_post_ffw)
 *   logits = cap_f * tanh((rmsnorm(x) * (1 + w_final)) E^T / cap_f)
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "model/attention.h"
#include "model/context.h"
#include "kernels/vmath.h"
#include "util/error.h"
#include "util/half.h"

/* out[i] = x[i] / sqrt(mean(x^2) + eps) * scale[i]; the mean is accumulated in double, in 8
 * interleaved partial sums: one chain of dependent double adds waits ~4 cycles a value, the 8
 * chains vectorise. 2B Q4_0 decode with the weights' products skipped (a timer build, not
 * committed): 2.08-2.29 -> 1.95-2.06 ms a token outside them. */
static void rmsnorm(float *out, const float *x, const float *scale, int d, float eps) {
    double part[8] = {0};
    int i = 0;
    for (; i + 8 <= d; i += 8)
        for (int k = 0; k < 8; k++) part[k] += (double)x[i + k] * x[i + k];
    for (; i < d; i++) part[0] += (double)x[i] * x[i];
    const double ss = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    float r = (float)(1.0 / sqrt(ss / d + (double)eps));
    for (int i = 0; i < d; i++) out[i] = x[i] * r * scale[i];
}

/* NEOX layout: element i pairs with element i + head_dim/2. vec: [n_heads][head_dim]. */
static void rope(float *vec, int n_heads, int hd, const float *cos_p, const float *sin_p) {
    const int half = hd / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = vec + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            float a = v[i], b = v[i + half];
            v[i] = a * cos_p[i] - b * sin_p[i];
            v[i + half] = b * cos_p[i] + a * sin_p[i];
        }
    }
}

/* [lo, hi) of thread `me` of nt over n elements: contiguous chunks of whole vectors */
static void chunk(size_t n, int me, int nt, size_t *lo, size_t *hi) {
    const size_t per = ((n + (size_t)nt - 1) / (size_t)nt + 15) & ~(size_t)15;
    *lo = per * (size_t)me < n ? per * (size_t)me : n;
    *hi = *lo + per < n ? *lo + per : n;
}

/* n values x[0], x[xs], ... into the cache at dst[0], dst[ds], ..., in the context's KV type. */
static void g2_kv_put(const gemma2_context *c, uint8_t *dst, size_t ds, const float *x, size_t xs, size_t n) {
    if (c->kv_type == GEMMA2_TYPE_F32) {
        float *f = (float *)(void *)dst;
        if (ds == 1 && xs == 1) memcpy(f, x, n * sizeof(float));
        else for (size_t i = 0; i < n; i++) f[i * ds] = x[i * xs];
        return;
    }
    uint16_t *h = (uint16_t *)(void *)dst;
    if (c->kv_type == GEMMA2_TYPE_F16)
        for (size_t i = 0; i < n; i++) h[i * ds] = g2_f32_to_f16(x[i * xs]);
    else
        for (size_t i = 0; i < n; i++) h[i * ds] = g2_f32_to_bf16(x[i * xs]);
}

/* Stores the piece's keys and values in layer l's cache (context.h: keys per kv head, a row
 * per slot; values transposed): a ring keeps only the last cap. Values go row by row of V^T,
 * along runs of consecutive slots, so that the writes are sequential. */
static void store_kv(gemma2_context *c, int l, int p0, int n) {
    const size_t kvd = (size_t)c->m->cfg.num_kv_heads * c->m->cfg.head_dim, es = c->kv_esize;
    const int cap = c->cap[l], t0 = n > cap ? n - cap : 0;
    const int nkv = c->m->cfg.num_kv_heads;
    const size_t hd = (size_t)c->m->cfg.head_dim;
    for (int t = t0; t < n; t++) /* keys: per kv head, [kv_heads][cap][head_dim] */
        for (int g = 0; g < nkv; g++)
            g2_kv_put(c, c->k_cache[l] + ((size_t)g * (size_t)cap + (size_t)((p0 + t) % cap)) * hd * es, 1,
                      c->k + (size_t)t * kvd + (size_t)g * hd, 1, hd);
    for (int t = t0; t < n;) {
        const int slot = (p0 + t) % cap, len = n - t < cap - slot ? n - t : cap - slot;
        for (size_t r = 0; r < kvd; r++)
            g2_kv_put(c, c->v_cache[l] + (r * (size_t)cap + (size_t)slot) * es, 1, c->v + (size_t)t * kvd + r, kvd,
                      (size_t)len);
        t += len;
    }
}

/* The query, key and value projections take their activations in two int8 terms (matmul.h,
 * G2_MATMUL_FINE_ACT) when their weights are Q8_0. Rounding activations to int8 costs accuracy
 * mostly there: on the 2B shape's Q8_0 file (WikiText-2, 1024 tokens), exact activations for
 * those three matrices alone took KL(BF16 || Q8_0) from 4.23e-6 to 3.32e-6 nats (each other
 * group alone: 0.01-0.32e-6; exact everywhere: 2.62e-6); the two terms give 3.31e-6, for 8-9%
 * of prefill time and 0.5% of decode. On AVX2, prefill of 64 tokens or more gets the exact
 * activations instead, through the F32 tile on widened weights, which costs less than the two
 * terms there (matmul.c, widen_fine). Q4_K_M files (Q4_K and Q6_K) take them too: with
 * llama.cpp's int8 activations everywhere their KL was 1.001x llama.cpp's on the same file
 * (7.232e-5 against 7.225e-5 nats, 1024 tokens), with the two terms 0.997x (7.202e-5); for
 * 10% of prefill (on AVX2, from 64 tokens, Q8_0's F32 route instead: exact activations, 2B
 * pp512 +7% on Zen 3 against the two terms) and, with both terms in one pass of the decode
 * kernel (matmul.c), no measurable decode time on AVX-512 and about 3% on AVX2 (2B, Zen 5: weight traffic / probe
 * 0.918-0.940 -> 0.925-0.937, AVX2 0.925-0.938 -> 0.897-0.914). Q4_0 keeps one term: its KL
 * equals llama.cpp's (1.000x) and its decode margin is the smallest. */
static int is_k_quant(int t) { return t == GEMMA2_TYPE_Q4_K || t == GEMMA2_TYPE_Q6_K; }

static unsigned qkv_flags(const g2_layer *L) {
    if (L->wq.type == GEMMA2_TYPE_Q8_0 && L->wk.type == GEMMA2_TYPE_Q8_0 && L->wv.type == GEMMA2_TYPE_Q8_0)
        return G2_MATMUL_FINE_ACT;
    if (is_k_quant(L->wq.type) && is_k_quant(L->wk.type) && is_k_quant(L->wv.type)) return G2_MATMUL_FINE_ACT;
    return 0;
}

/* Evaluates one piece of n <= G2_UBATCH tokens. logits_out: [n][vocab], or NULL for the last
 * token only (into c->logits). Returns non-zero if a kernel could not allocate its scratch. */
static int forward_piece(gemma2_context *c, const int32_t *tokens, int n, float *logits_out) {
    const gemma2_model *m = c->m;
    const gemma2_config *cfg = &m->cfg;
    const int d = cfg->hidden_size, hd = cfg->head_dim, half = hd / 2, nt = c->n_threads;
    const size_t qd = (size_t)cfg->num_heads * hd, kvd = (size_t)cfg->num_kv_heads * hd,
                 ffn = (size_t)cfg->intermediate_size;
    const int p0 = c->pos;
    const float eps = cfg->rms_norm_eps;
    const float emb_scale = sqrtf((float)d); /* exact fp32 sqrt(d), as llama.cpp and gemma_pytorch in fp32 */
    int fail = 0;

    for (int t = 0; t < n; t++) {
        float *x = c->x + (size_t)t * d;
        g2_tensor_row_f32(&m->embed, tokens[t], x);
        for (int i = 0; i < d; i++) x[i] *= emb_scale;
    }

    for (int l = 0; l < cfg->num_layers; l++) {
        const g2_layer *L = &m->layers[l];
        for (int t = 0; t < n; t++) rmsnorm(c->xn + (size_t)t * d, c->x + (size_t)t * d, L->attn_norm, d, eps);
        {
            const g2_tensor *w[] = {&L->wq, &L->wk, &L->wv};
            float *const y[] = {c->q, c->k, c->v};
            fail |= g2_matmul_many(w, y, 3, c->xn, n, qkv_flags(L), nt);
        }
        for (int t = 0; t < n; t++) {
            const float *cs = c->rope_cos + (size_t)(p0 + t) * half, *sn = c->rope_sin + (size_t)(p0 + t) * half;
            rope(c->q + (size_t)t * qd, cfg->num_heads, hd, cs, sn);
            rope(c->k + (size_t)t * kvd, cfg->num_kv_heads, hd, cs, sn);
        }
        /* decode reads its own key and value from the cache (attention.c); a longer piece reads
         * them from c->k, c->v, since its ring may be shorter than the piece */
        if (n == 1) store_kv(c, l, p0, n);
        fail |= g2_attention(c, l, p0, n);
        if (n > 1) store_kv(c, l, p0, n);
        fail |= g2_matmul(&L->wo, c->att, n, c->proj, nt);
        for (int t = 0; t < n; t++) {
            float *x = c->x + (size_t)t * d, *pr = c->proj + (size_t)t * d;
            rmsnorm(pr, pr, L->post_attn_norm, d, eps);
            for (int i = 0; i < d; i++) x[i] += pr[i];
            rmsnorm(c->xn + (size_t)t * d, x, L->pre_ffw_norm, d, eps);
        }
        {
            const g2_tensor *w[] = {&L->gate, &L->up};
            float *const y[] = {c->gate, c->up};
            fail |= g2_matmul_many(w, y, 2, c->xn, n, 0, nt);
        }
        const size_t nf = (size_t)n * ffn;
        /* vectorised, ~1 ns a value: one token's 9216 stay on one thread (a fork costs more) */
#pragma omp parallel num_threads(nt) if (nf > 65536)
        {
            size_t lo, hi;
            chunk(nf, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
            g2_vgelu_mul(c->gate + lo, c->up + lo, hi - lo);
        }
        fail |= g2_matmul(&L->down, c->gate, n, c->proj, nt);
        for (int t = 0; t < n; t++) {
            float *x = c->x + (size_t)t * d, *pr = c->proj + (size_t)t * d;
            rmsnorm(pr, pr, L->post_ffw_norm, d, eps);
            for (int i = 0; i < d; i++) x[i] += pr[i];
        }
    }

    /* the head: all rows, or the last one only */
    const int first = logits_out ? 0 : n - 1;
    for (int t = first; t < n; t++) rmsnorm(c->xn + (size_t)t * d, c->x + (size_t)t * d, m->final_norm, d, eps);
    float *dst = logits_out ? logits_out : c->logits;
    const int rows = n - first;
    fail |= g2_matmul(&m->embed, c->xn + (size_t)first * d, rows, dst, nt);
    const size_t nl = (size_t)rows * (size_t)cfg->vocab_size;
    const float fcap = cfg->final_logit_softcap;
    if (fcap > 0) {
#pragma omp parallel num_threads(nt) if (nl > 65536)
        {
            size_t lo, hi;
            chunk(nl, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
            g2_vsoftcap(dst + lo, hi - lo, 1.0f, fcap);
        }
    }
    if (logits_out) memcpy(c->logits, dst + (size_t)(rows - 1) * cfg->vocab_size, sizeof(float) * (size_t)cfg->vocab_size);
    if (fail) return fail;
    c->pos += n;
    c->has_logits = 1;
    return 0;
}

gemma2_status gemma2_eval(gemma2_context *c, const int32_t *tokens, int n, float *all_logits, gemma2_error *err) {
    const int V = c->m->cfg.vocab_size;
    if (n <= 0) return g2_fail(err, GEMMA2_ERR_ARG, "no tokens to evaluate");
    if (n > c->n_ctx - c->pos)
        return g2_fail(err, GEMMA2_ERR_ARG, "%d tokens do not fit in the context: %d of %d positions are used", n,
                       c->pos, c->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return g2_fail(err, GEMMA2_ERR_ARG, "token id %d (at index %d) is out of range: the vocabulary has %d",
                           tokens[i], i, V);
    for (int s = 0; s < n; s += G2_UBATCH) {
        int k = n - s < G2_UBATCH ? n - s : G2_UBATCH;
        if (forward_piece(c, tokens + s, k, all_logits ? all_logits + (size_t)s * V : NULL)) {
            /* the caches of the layers before the failure hold parts of this piece: start over */
            const int at = c->pos;
            c->pos = 0;
            c->has_logits = 0;
            return g2_fail(err, GEMMA2_ERR_NOMEM,
                           "out of memory for the matrix kernels' scratch at position %d; the context was reset", at);
        }
    }
    return GEMMA2_OK;
}
