/* sampler.c - the token sampler of gemma2_sample.h: repetition penalty, greedy, top-k, top-p,
 * min-p, temperature, one seeded draw.
 *
 * Cost: a row of the real vocabulary is 256,000 logits, so nothing here sorts the whole row.
 * top-k keeps a small heap (one comparison for most ids) or, for large k, a quickselect; top-p
 * without top-k is a quickselect on probability mass (O(V) however large the nucleus, which
 * for a flat distribution can be most of the vocabulary); min-p is a threshold on the logit
 * (p_i >= min_p * p_max is logit_i >= max + log(min_p)). Top-p and min-p each keep a prefix of
 * the sorted order, the top-p one measured on the whole distribution, so applying min-p first
 * (to shrink the work) keeps the same set. */
#include "gemma2_sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"
#include "util/error.h"

typedef struct {
    float logit;
    float w; /* exp(logit - max): the temperature-1 weight, for top-p */
    int32_t id;
} g2_cand;

struct gemma2_sampler {
    gemma2_sampler_options opt;
    int vocab;
    g2_cand *cand;    /* vocab entries of scratch */
    double *weight;   /* vocab entries of scratch: exp((logit - max) / T) of the survivors */
    uint8_t *seen;    /* vocab flags: penalise an id once however often it occurs */
    int32_t *history; /* ring buffer of the last repeat_last_n accepted ids */
    int hist_len, hist_next;
    g2_rng rng;
};

gemma2_sampler_options gemma2_sampler_default_options(void) {
    /* llama.cpp's defaults, so that people moving between the two get the same behaviour. */
    gemma2_sampler_options o = {.temperature = 0.8f,
                                .top_k = 40,
                                .top_p = 0.95f,
                                .min_p = 0.05f,
                                .repeat_penalty = 1.0f,
                                .repeat_last_n = 64,
                                .seed = 0};
    return o;
}

gemma2_status gemma2_sampler_check_options(const gemma2_sampler_options *o, gemma2_error *err) {
    /* Written as negations of the valid ranges so that NaN is rejected too. */
    if (!(o->temperature >= 0 && isfinite(o->temperature)))
        return g2_fail(err, GEMMA2_ERR_ARG, "temperature must be >= 0 (0 = greedy), got %g", o->temperature);
    if (o->top_k < 0) return g2_fail(err, GEMMA2_ERR_ARG, "top-k must be >= 0 (0 = off), got %d", o->top_k);
    if (!(o->top_p > 0 && o->top_p <= 1))
        return g2_fail(err, GEMMA2_ERR_ARG, "top-p must be in (0, 1] (1 = off), got %g", o->top_p);
    if (!(o->min_p >= 0 && o->min_p <= 1))
        return g2_fail(err, GEMMA2_ERR_ARG, "min-p must be in [0, 1] (0 = off), got %g", o->min_p);
    if (!(o->repeat_penalty > 0 && isfinite(o->repeat_penalty)))
        return g2_fail(err, GEMMA2_ERR_ARG, "repeat penalty must be > 0 (1 = off), got %g", o->repeat_penalty);
    if (o->repeat_last_n < 0)
        return g2_fail(err, GEMMA2_ERR_ARG, "repeat-last-n must be >= 0, got %d", o->repeat_last_n);
    return GEMMA2_OK;
}

gemma2_status gemma2_sampler_create(const gemma2_sampler_options *opt, int vocab_size, gemma2_sampler **out,
                                    gemma2_error *err) {
    *out = NULL;
    gemma2_sampler_options o = opt ? *opt : gemma2_sampler_default_options();
    gemma2_status st = gemma2_sampler_check_options(&o, err);
    if (st) return st;
    if (vocab_size <= 0) return g2_fail(err, GEMMA2_ERR_ARG, "sampler: vocab size must be positive, got %d", vocab_size);
    gemma2_sampler *s = calloc(1, sizeof *s);
    if (!s) return g2_fail(err, GEMMA2_ERR_NOMEM, "sampler: out of memory");
    s->opt = o;
    s->vocab = vocab_size;
    s->cand = malloc((size_t)vocab_size * sizeof *s->cand);
    s->weight = malloc((size_t)vocab_size * sizeof *s->weight);
    s->seen = calloc((size_t)vocab_size, 1);
    s->history = malloc((size_t)(o.repeat_last_n > 0 ? o.repeat_last_n : 1) * sizeof *s->history);
    if (!s->cand || !s->weight || !s->seen || !s->history) {
        gemma2_sampler_free(s);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "sampler: out of memory for a vocabulary of %d", vocab_size);
    }
    g2_rng_seed(&s->rng, o.seed);
    *out = s;
    return GEMMA2_OK;
}

void gemma2_sampler_free(gemma2_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->weight);
    free(s->seen);
    free(s->history);
    free(s);
}

void gemma2_sampler_accept(gemma2_sampler *s, int32_t id) {
    if (s->opt.repeat_last_n <= 0) return;
    s->history[s->hist_next] = id;
    s->hist_next = (s->hist_next + 1) % s->opt.repeat_last_n;
    if (s->hist_len < s->opt.repeat_last_n) s->hist_len++;
}

void gemma2_sampler_reset(gemma2_sampler *s) { s->hist_len = s->hist_next = 0; }

void gemma2_sampler_set_seed(gemma2_sampler *s, uint64_t seed) { g2_rng_seed(&s->rng, seed); }

/* ---- ordering: larger logit first, then lower id (a strict total order) -------------------- */

static inline int cand_before(const g2_cand *a, const g2_cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cand_cmp(const void *a, const void *b) {
    const g2_cand *x = a, *y = b;
    return cand_before(x, y) ? -1 : cand_before(y, x) ? 1 : 0;
}

static inline void cand_swap(g2_cand *a, g2_cand *b) {
    g2_cand t = *a;
    *a = *b;
    *b = t;
}

/* Rearranges c[0..n) so that c[0..k) holds the k first in cand_before order (unsorted), by
 * quickselect with a median-of-three pivot (rows arrive in id order, which for equal logits
 * is already sorted: a last-element pivot would be quadratic there). */
static void select_first(g2_cand *c, int n, int k) {
    int lo = 0, hi = n - 1, target = k - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (cand_before(&c[mid], &c[lo])) cand_swap(&c[mid], &c[lo]);
        if (cand_before(&c[hi], &c[lo])) cand_swap(&c[hi], &c[lo]);
        if (cand_before(&c[hi], &c[mid])) cand_swap(&c[hi], &c[mid]);
        /* c[lo] <= c[mid] <= c[hi] in order: use the median as the pivot, parked at hi */
        cand_swap(&c[mid], &c[hi]);
        g2_cand pivot = c[hi];
        int store = lo;
        for (int i = lo; i < hi; i++)
            if (cand_before(&c[i], &pivot)) cand_swap(&c[i], &c[store++]);
        cand_swap(&c[store], &c[hi]);
        if (store == target) return;
        if (target < store)
            hi = store - 1;
        else
            lo = store + 1;
    }
}

/* The heap for top-k: c[0] is the worst of the k kept (a min-heap in cand_before order). */
static void heap_sift_down(g2_cand *c, int k, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && cand_before(&c[w], &c[l])) w = l;
        if (r < k && cand_before(&c[w], &c[r])) w = r;
        if (w == i) return;
        cand_swap(&c[i], &c[w]);
        i = w;
    }
}

/* Moves the k first (in cand_before order) of c[0..n) to c[0..k), unsorted. A heap for small k:
 * most ids cost one comparison with the heap's worst; a quickselect otherwise. */
static void take_first(g2_cand *c, int n, int k) {
    if (k >= n) return;
    if (k > 1024) {
        select_first(c, n, k);
        return;
    }
    for (int i = k / 2 - 1; i >= 0; i--) heap_sift_down(c, k, i);
    for (int i = k; i < n; i++)
        if (cand_before(&c[i], &c[0])) {
            cand_swap(&c[i], &c[0]);
            heap_sift_down(c, k, 0);
        }
}

/* Sorts the first k of c[0..n) (k <= n). */
static void sort_first(g2_cand *c, int n, int k) {
    take_first(c, n, k);
    qsort(c, (size_t)k, sizeof *c, cand_cmp);
}

/* Rearranges c[0..n) so that c[0..k) is the smallest set of first candidates whose weights w sum
 * to at least `need`, and returns k (n when rounding leaves even all of them short). A
 * quickselect that keeps the mass of what is known to be in: expected O(n). */
static int select_mass(g2_cand *c, int n, double need) {
    int lo = 0, hi = n;
    double kept = 0; /* the mass of c[0..lo), all in the set */
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2, last = hi - 1;
        if (cand_before(&c[mid], &c[lo])) cand_swap(&c[mid], &c[lo]);
        if (cand_before(&c[last], &c[lo])) cand_swap(&c[last], &c[lo]);
        if (cand_before(&c[last], &c[mid])) cand_swap(&c[last], &c[mid]);
        cand_swap(&c[mid], &c[last]);
        g2_cand pivot = c[last];
        int store = lo;
        double before = 0;
        for (int i = lo; i < last; i++)
            if (cand_before(&c[i], &pivot)) {
                before += c[i].w;
                cand_swap(&c[i], &c[store++]);
            }
        cand_swap(&c[store], &c[last]);
        if (kept + before >= need) {
            hi = store; /* the set ends inside the better part */
        } else if (kept + before + c[store].w >= need) {
            return store + 1;
        } else {
            kept += before + c[store].w;
            lo = store + 1;
        }
    }
    return hi;
}

/* ---- the filter chain ------------------------------------------------------------------- */

/* Copies the row with the penalty applied; returns the index of the best candidate. */
static int load_row(gemma2_sampler *s, const float *logits) {
    g2_cand *c = s->cand;
    for (int i = 0; i < s->vocab; i++) {
        float v = logits[i];
        c[i].logit = v == v ? v : -INFINITY; /* NaN would break the ordering */
        c[i].id = i;
    }
    if (s->opt.repeat_penalty != 1.0f) {
        const float pen = s->opt.repeat_penalty;
        for (int j = 0; j < s->hist_len; j++) {
            int32_t id = s->history[j];
            if (id < 0 || id >= s->vocab || s->seen[id]) continue;
            s->seen[id] = 1;
            c[id].logit = c[id].logit > 0 ? c[id].logit / pen : c[id].logit * pen;
        }
        for (int j = 0; j < s->hist_len; j++) {
            int32_t id = s->history[j];
            if (id >= 0 && id < s->vocab) s->seen[id] = 0;
        }
    }
    int best = 0;
    for (int i = 1; i < s->vocab; i++)
        if (c[i].logit > c[best].logit) best = i; /* strict: ties keep the lower id */
    return best;
}

/* Runs the chain; leaves the survivors in cand[0..n) with their unnormalised weights in
 * weight[0..n), and returns n (>= 1). *sorted says whether cand[0..n) is in order. */
static int run_chain(gemma2_sampler *s, const float *logits, double *total, int *sorted) {
    g2_cand *c = s->cand;
    int best = load_row(s, logits);
    const float mx = c[best].logit;
    if (s->opt.temperature <= 0 || !(mx > -INFINITY)) {
        /* Greedy (or a row with nothing finite, where any choice is as good): the best one. */
        c[0] = c[best];
        s->weight[0] = 1.0;
        *total = 1.0;
        *sorted = 1;
        return 1;
    }
    int n = s->vocab, n_sorted = 0;
    if (s->opt.top_k > 0 && s->opt.top_k < n) {
        sort_first(c, n, s->opt.top_k);
        n = n_sorted = s->opt.top_k;
    }
    double z = 0;
    if (s->opt.top_p < 1.0f)
        for (int i = 0; i < n; i++) z += (c[i].w = (float)exp((double)c[i].logit - mx));
    if (s->opt.min_p > 0) {
        const float thr = mx + logf(s->opt.min_p);
        if (n_sorted) {
            int keep = 1;
            while (keep < n && c[keep].logit >= thr) keep++;
            n = n_sorted = keep;
        } else {
            int w = 0;
            for (int i = 0; i < n; i++)
                if (c[i].logit >= thr) c[w++] = c[i];
            n = w; /* >= 1: the best candidate passes any threshold max + log(p), p <= 1 */
        }
    }
    if (s->opt.top_p < 1.0f) {
        const double need = (double)s->opt.top_p * z;
        if (n_sorted) {
            double cum = 0;
            int keep = n; /* rounding can leave the sum a hair short of p * z: then keep them all */
            for (int i = 0; i < n; i++)
                if ((cum += c[i].w) >= need) {
                    keep = i + 1;
                    break;
                }
            n = n_sorted = keep;
        } else {
            n = select_mass(c, n, need);
        }
    }
    const double inv_t = 1.0 / s->opt.temperature;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (s->weight[i] = exp(((double)c[i].logit - mx) * inv_t));
    *total = sum;
    *sorted = n_sorted >= n;
    return n;
}

int32_t gemma2_sampler_sample(gemma2_sampler *s, const float *logits) {
    double total;
    int sorted;
    int n = run_chain(s, logits, &total, &sorted);
    if (n == 1) return s->cand[0].id;
    const double u = g2_rng_uniform(&s->rng) * total;
    double acc = 0;
    int last = 0;
    for (int i = 0; i < n; i++) {
        if (s->weight[i] <= 0) continue;
        acc += s->weight[i];
        last = i;
        if (u < acc) return s->cand[i].id;
    }
    return s->cand[last].id; /* u landed in the rounding gap at the very end */
}

int gemma2_sampler_distribution(gemma2_sampler *s, const float *logits, int32_t *ids, float *probs, int max) {
    double total;
    int sorted;
    int n = run_chain(s, logits, &total, &sorted);
    if (!sorted) {
        /* The weight is increasing in the logit, so sorting by logit orders the weights too. */
        qsort(s->cand, (size_t)n, sizeof *s->cand, cand_cmp);
        const float mx = s->cand[0].logit;
        const double inv_t = 1.0 / s->opt.temperature;
        for (int i = 0; i < n; i++) s->weight[i] = exp(((double)s->cand[i].logit - mx) * inv_t);
    }
    int nz = 0;
    for (int i = 0; i < n; i++) {
        if (s->weight[i] <= 0) continue;
        if (nz < max) {
            ids[nz] = s->cand[i].id;
            probs[nz] = (float)(s->weight[i] / total);
        }
        nz++;
    }
    return nz;
}
