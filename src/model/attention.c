/* attention.c - attention of a piece of n queries (positions p0..p0+n-1) over everything they
 * may see, computed as matrix products so that prefill runs on the matmul kernels.
 *
 * For each kv head g:
 *   K_g  [n_keys][head_dim]  the keys of positions klo..p0+n-1, gathered contiguous: older ones
 *                            from the layer's cache (a ring for local layers), the piece's own
 *                            from c->k (not yet stored: a ring shorter than the piece would
 *                            otherwise overwrite keys that the piece's first queries need)
 *   V_g^T [head_dim][n_keys] the values, transposed, so that P V is a product with rows of V^T
 * and for each query head h of the group:
 *   S = Q_h K_g^T * query_pre_attn_scalar^-1/2;  S = cap * tanh(S / cap)   (before the mask)
 *   mask: key j visible to query p iff j <= p and (global layer or p - j < sliding_window)
 *   O_h = softmax(S) V_g
 * The masked part of S is computed and thrown away: at most the upper triangle of the piece
 * itself, small next to what is kept once the context is longer than the piece.
 *
 * Decode (one query) gathers nothing: its own key and value are stored first, and the two
 * products run on the cache itself (keys [kv_heads][cap][head_dim], so that a head's keys are
 * one contiguous block; values kept transposed, [kv_heads * head_dim][cap], so that V^T rows
 * are contiguous). */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/vmath.h"
#include "model/attention.h"
#include "util/half.h"

/* n values of a cache row (in the context's KV type) as fp32, to dst[0], dst[stride], ... */
static void g2_kv_get(const gemma2_context *c, float *dst, size_t stride, const uint8_t *src, int n) {
    if (c->kv_type == GEMMA2_TYPE_F32) {
        const float *f = (const float *)(const void *)src;
        if (stride == 1) memcpy(dst, f, sizeof(float) * (size_t)n);
        else for (int i = 0; i < n; i++) dst[(size_t)i * stride] = f[i];
        return;
    }
    const uint16_t *h = (const uint16_t *)(const void *)src;
    if (c->kv_type == GEMMA2_TYPE_F16)
        for (int i = 0; i < n; i++) dst[(size_t)i * stride] = g2_f16_to_f32(h[i]);
    else
        for (int i = 0; i < n; i++) dst[(size_t)i * stride] = g2_bf16_to_f32(h[i]);
}

/* The softmax's numerators over n visible scores, in place: s = exp(cap tanh(scale s / cap) -
 * max); returns 1 / their sum. */
static float capped_exp(float *s, size_t n, float scale, float cap) {
    g2_vsoftcap(s, n, scale, cap);
    float mx = -INFINITY;
    for (size_t j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
    return 1.0f / g2_vexp_sum(s, n, mx);
}

/* One kv head g: gather its keys and values, then each query head of its group. `sc` is the
 * scratch of the thread that runs it; `nt` the threads to split each step over (1 when the
 * caller already runs kv heads in parallel). */
static int attend_kv_head(gemma2_context *c, int l, int p0, int n, int g, g2_attn_scratch *sc, int nt) {
    const gemma2_config *cfg = &c->m->cfg;
    const int hd = cfg->head_dim, nh = cfg->num_heads, nkv = cfg->num_kv_heads, group = nh / nkv;
    const int W = cfg->sliding_window, local = gemma2_layer_is_local(cfg, l), cap = c->cap[l];
    const size_t kvd = (size_t)nkv * hd, qd = (size_t)nh * hd;
    const float scale = 1.0f / sqrtf(cfg->query_pre_attn_scalar), acap = cfg->attn_logit_softcap;
    const int klo = local && p0 - W + 1 > 0 ? p0 - W + 1 : 0; /* the first key any query here sees */
    const int n_keys = p0 + n - klo;

#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int j = klo; j < p0 + n; j++) { /* keys: rows of the cache or of the piece */
        float *kd = sc->kg + (size_t)(j - klo) * hd;
        if (j >= p0) memcpy(kd, c->k + (size_t)(j - p0) * kvd + (size_t)g * hd, sizeof(float) * (size_t)hd);
        else g2_kv_get(c, kd, 1, c->k_cache[l] + ((size_t)g * (size_t)cap + (size_t)(j % cap)) * hd * c->kv_esize, hd);
    }
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int i = 0; i < hd; i++) { /* values, transposed: row i of the cache's V^T, then the piece's */
        float *vd = sc->vt + (size_t)i * n_keys;
        const uint8_t *row = c->v_cache[l] + ((size_t)g * hd + (size_t)i) * (size_t)cap * c->kv_esize;
        for (int j = klo; j < p0;) { /* slots j % cap .. up to the ring's end */
            const int slot = j % cap, len = p0 - j < cap - slot ? p0 - j : cap - slot;
            g2_kv_get(c, vd + (j - klo), 1, row + (size_t)slot * c->kv_esize, len);
            j += len;
        }
        for (int j = p0; j < p0 + n; j++) vd[j - klo] = c->v[(size_t)(j - p0) * kvd + (size_t)g * hd + (size_t)i];
    }
    const g2_tensor K = {sc->kg, GEMMA2_TYPE_F32, n_keys, hd, sizeof(float) * (size_t)hd, G2_LAYOUT_ROWS};
    const g2_tensor VT = {sc->vt, GEMMA2_TYPE_F32, hd, n_keys, sizeof(float) * (size_t)n_keys, G2_LAYOUT_ROWS};

    for (int h = g * group; h < (g + 1) * group; h++) {
        for (int t = 0; t < n; t++)
            memcpy(sc->qh + (size_t)t * hd, c->q + (size_t)t * qd + (size_t)h * hd, sizeof(float) * (size_t)hd);
        if (g2_matmul(&K, sc->qh, n, sc->s, nt)) return -1; /* S [n][n_keys] */
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
        for (int t = 0; t < n; t++) {
            const int p = p0 + t;
            const int lo = local && p - W + 1 > klo ? p - W + 1 : klo; /* visible keys: lo..p */
            float *row = sc->s + (size_t)t * n_keys, *vis = row + (lo - klo);
            const size_t n_vis = (size_t)(p - lo + 1);
            const float inv = capped_exp(vis, n_vis, scale, acap);
            for (int j = 0; j < n_keys; j++) {
                const int key = klo + j;
                row[j] = key >= lo && key <= p ? row[j] * inv : 0.0f;
            }
        }
        if (g2_matmul(&VT, sc->s, n, sc->oh, nt)) return -1; /* O_h [n][hd] */
        for (int t = 0; t < n; t++)
            memcpy(c->att + (size_t)t * qd + (size_t)h * hd, sc->oh + (size_t)t * hd, sizeof(float) * (size_t)hd);
    }
    return 0;
}

/* Decode, one kv head: the query at p0, whose key and value are already in the cache. Every
 * used slot holds a key the query sees: a local layer's ring of cap = min(n_ctx, window) slots
 * holds positions p0 - cap + 1 .. p0 once full (the window), a global layer's slots 0..p0 hold
 * positions 0..p0. A wrapped ring lists them out of order, which the softmax does not mind. */
static int attend_decode_kv_head(gemma2_context *c, int l, int p0, int g, g2_attn_scratch *sc, int nt) {
    const gemma2_config *cfg = &c->m->cfg;
    const int hd = cfg->head_dim, group = cfg->num_heads / cfg->num_kv_heads, cap = c->cap[l];
    const int used = p0 + 1 < cap ? p0 + 1 : cap;
    const size_t es = c->kv_esize;
    const float scale = 1.0f / sqrtf(cfg->query_pre_attn_scalar), acap = cfg->attn_logit_softcap;
    const g2_tensor K = {c->k_cache[l] + (size_t)g * (size_t)cap * hd * es, c->kv_type, used, hd, hd * es,
                         G2_LAYOUT_ROWS};
    const g2_tensor VT = {c->v_cache[l] + (size_t)g * hd * (size_t)cap * es, c->kv_type, hd, used, (size_t)cap * es,
                          G2_LAYOUT_ROWS};
    /* The group's query heads are adjacent: they are the "tokens" of both products. The rows
     * go one at a time (G2_MATMUL_ONE_ROW): one forward stream through the cache, which it
     * reads from memory once the context is long. 2B Q4_0, per kv head at depth 2048 (a timer
     * build, not committed): keys 195-217 -> 118-120 us, values unchanged (121-126, at the
     * memory's rate then); at depth 448 keys 54-56 -> 37-39, values 45-47 -> 26-29. */
    const g2_tensor *kw[] = {&K}, *vw[] = {&VT};
    float *ks[] = {sc->s}, *vs[] = {c->att + (size_t)g * group * hd};
    if (g2_matmul_many(kw, ks, 1, c->q + (size_t)g * group * hd, group, G2_MATMUL_ONE_ROW, nt))
        return -1; /* S [group][used] */
    for (int h = 0; h < group; h++) {
        float *row = sc->s + (size_t)h * used;
        const float inv = capped_exp(row, (size_t)used, scale, acap);
        for (int j = 0; j < used; j++) row[j] *= inv;
    }
    return g2_matmul_many(vw, vs, 1, sc->s, group, G2_MATMUL_ONE_ROW, nt); /* O [group][hd] */
}

int g2_attention(gemma2_context *c, int l, int p0, int n) {
    const gemma2_config *cfg = &c->m->cfg;
    const int nkv = cfg->num_kv_heads, nt = c->n_threads;
    int fail = 0;
    /* With at least as many kv heads as threads, each thread takes whole kv heads (one fork per
     * layer, no barriers inside); otherwise the kv heads go one by one, each step split (a fork
     * per product). Small work (a few keys, tiny heads) stays on one thread: a fork would cost
     * more. Bounds, in multiply-adds of the layer (tokens x keys x head_dim x heads):
     *  - whole kv heads: 1e5, 49 keys for one 2B token. It was 1e6 (489 keys), but decode reads
     *    the keys and values from memory (f32: 4 MB a layer at 480 keys) and one thread reads
     *    them at about half the rate of two. 2B Q4_0, `gemma2 bench -p 0 -n 32 -r 1 -d 448` with
     *    a timer around this call (not committed): attention 7.7 -> 5.0 ms a token; at depth 0,
     *    0.53 -> 0.49. Whole decode, `... -d 448 -r 2 --probe-bw 256` alternated three times,
     *    host in its fast state: 24.1-24.3 -> 25.2-25.8 t/s; at -d 160 the same (weight traffic
     *    / probe 0.777-0.783 against 0.773-0.787).
     *  - split kv heads (fewer kv heads than threads): 1e6, not measured again. */
    const double work = (double)n * (p0 + n) * cfg->head_dim * cfg->num_heads;
    if (nkv >= nt && nt > 1 && work > 1e5) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) reduction(| : fail)
        for (int g = 0; g < nkv; g++)
            fail |= n == 1 ? attend_decode_kv_head(c, l, p0, g, &c->attn[omp_get_thread_num()], 1)
                           : attend_kv_head(c, l, p0, n, g, &c->attn[omp_get_thread_num()], 1);
    } else {
        const int each = work > 1e6 ? nt : 1;
        for (int g = 0; g < nkv && !fail; g++)
            fail |= n == 1 ? attend_decode_kv_head(c, l, p0, g, &c->attn[0], each)
                           : attend_kv_head(c, l, p0, n, g, &c->attn[0], each);
    }
    return fail;
}
