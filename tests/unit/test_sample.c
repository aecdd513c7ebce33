/* test_sample.c - the sampler (gemma2_sample.h): greedy ties, every filter against a naive
 * reference written here independently (sort everything, cut, renormalise), frequencies of
 * seeded draws against that reference (chi-square), reproducibility, option checks. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemma2_sample.h"
#include "harness.h"

/* ---- naive reference ---------------------------------------------------------------------- */

typedef struct {
    double logit;
    int id;
} ref_item;

static int ref_cmp(const void *a, const void *b) {
    const ref_item *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id - y->id;
}

/* The filtered, renormalised distribution as gemma2_sample.h describes it: probs[V]. */
static void ref_distribution(const float *logits, int V, const gemma2_sampler_options *o, const int *hist,
                             int n_hist, double *probs) {
    ref_item *it = malloc((size_t)V * sizeof *it);
    for (int i = 0; i < V; i++) it[i].logit = isnan(logits[i]) ? -INFINITY : logits[i], it[i].id = i;
    for (int i = 0; i < V; i++) {
        int in_hist = 0;
        for (int j = 0; j < n_hist; j++) in_hist |= hist[j] == i;
        if (in_hist && o->repeat_penalty != 1.0f)
            it[i].logit = it[i].logit > 0 ? (float)(logits[i] / o->repeat_penalty) : (float)(logits[i] * o->repeat_penalty);
    }
    qsort(it, (size_t)V, sizeof *it, ref_cmp);
    for (int i = 0; i < V; i++) probs[i] = 0;
    if (o->temperature <= 0) {
        probs[it[0].id] = 1;
        free(it);
        return;
    }
    int n = V;
    if (o->top_k > 0 && o->top_k < n) n = o->top_k;
    double mx = it[0].logit, z = 0;
    for (int i = 0; i < n; i++) z += exp(it[i].logit - mx);
    if (o->top_p < 1) {
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += exp(it[i].logit - mx) / z;
            if (cum >= o->top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (o->min_p > 0) {
        int k = 0;
        while (k < n && exp(it[k].logit - mx) >= o->min_p * (1 - 1e-6)) k++;
        n = k;
    }
    double t = 0;
    for (int i = 0; i < n; i++) t += exp((it[i].logit - mx) / o->temperature);
    for (int i = 0; i < n; i++) probs[it[i].id] = exp((it[i].logit - mx) / o->temperature) / t;
    /* (masked ids get exp(-inf) = 0: outside the support) */
    free(it);
}

/* Draws n_draws ids and compares the counts with the reference: no draw outside the support,
 * and a chi-square statistic below df + 6 sqrt(2 df) (far in the tail for a correct sampler;
 * the seed is fixed, so the test is deterministic anyway). */
static void check_frequencies(const float *logits, int V, gemma2_sampler_options o, const int *hist, int n_hist,
                              int n_draws, const char *what) {
    gemma2_sampler *s;
    gemma2_error err;
    CHECK(gemma2_sampler_create(&o, V, &s, &err) == GEMMA2_OK, "%s", err.msg);
    if (!s) return;
    for (int j = 0; j < n_hist; j++) gemma2_sampler_accept(s, hist[j]);
    double *p = malloc((size_t)V * sizeof *p);
    long *cnt = calloc((size_t)V, sizeof *cnt);
    ref_distribution(logits, V, &o, hist, n_hist, p);
    for (int d = 0; d < n_draws; d++) {
        int32_t id = gemma2_sampler_sample(s, logits);
        CHECK(id >= 0 && id < V, "%s: id %d", what, id);
        if (id >= 0 && id < V) cnt[id]++;
    }
    /* Categories expected fewer than 5 times are pooled into one bin (chi-square's rule). */
    double chi2 = 0, pool_e = 0, pool_o = 0;
    int df = -1, outside = 0;
    for (int i = 0; i < V; i++) {
        if (p[i] == 0) {
            outside += cnt[i] != 0;
            continue;
        }
        double e = p[i] * n_draws;
        if (e < 5) {
            pool_e += e, pool_o += (double)cnt[i];
            continue;
        }
        chi2 += (cnt[i] - e) * (cnt[i] - e) / e;
        df++;
    }
    if (pool_e >= 5) chi2 += (pool_o - pool_e) * (pool_o - pool_e) / pool_e, df++;
    CHECK(outside == 0, "%s: %d ids drawn that the filters remove", what, outside);
    if (df > 0) CHECK(chi2 < df + 6 * sqrt(2.0 * df), "%s: chi2 %.1f with %d degrees of freedom", what, chi2, df);
    /* The library's own view of the distribution equals the reference. */
    int32_t *ids = malloc((size_t)V * sizeof *ids);
    float *pr = malloc((size_t)V * sizeof *pr);
    int n = gemma2_sampler_distribution(s, logits, ids, pr, V);
    int support = 0;
    for (int i = 0; i < V; i++) support += p[i] > 0;
    CHECK(n == support, "%s: distribution has %d ids, reference %d", what, n, support);
    double sum = 0, maxdiff = 0;
    for (int i = 0; i < n && i < V; i++) {
        sum += pr[i];
        maxdiff = fmax(maxdiff, fabs(pr[i] - p[ids[i]]));
        if (i) CHECK(pr[i] <= pr[i - 1], "%s: distribution not sorted at %d", what, i);
    }
    CHECK_NEAR(sum, 1.0, 1e-5, "%s: probabilities sum", what);
    CHECK(maxdiff < 1e-6, "%s: distribution differs from the reference by %g", what, maxdiff);
    free(ids);
    free(pr);
    free(p);
    free(cnt);
    gemma2_sampler_free(s);
}

static void fill_logits(float *l, int V, uint64_t seed, float scale) {
    uint64_t x = seed * 2654435761u + 1;
    for (int i = 0; i < V; i++) {
        /* sum of uniforms: roughly Gaussian, enough spread for interesting filters */
        double u = 0;
        for (int k = 0; k < 4; k++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            u += (double)(x >> 11) * 0x1.0p-53;
        }
        l[i] = (float)((u - 2) * scale);
    }
}

static gemma2_sampler_options plain(float temp) {
    gemma2_sampler_options o = gemma2_sampler_default_options();
    o.temperature = temp;
    o.top_k = 0;
    o.top_p = 1.0f;
    o.min_p = 0.0f;
    o.repeat_penalty = 1.0f;
    o.seed = 1234;
    return o;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_greedy_ties_lowest_id(void) {
    float l[8] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, 3.0f, 0, 0};
    gemma2_sampler_options o = plain(0);
    gemma2_sampler *s;
    gemma2_error err;
    CHECK(gemma2_sampler_create(&o, 8, &s, &err) == GEMMA2_OK, "%s", err.msg);
    for (int i = 0; i < 10; i++) CHECK(gemma2_sampler_sample(s, l) == 1, "greedy picks the lowest of tied ids");
    int32_t id = -1;
    float p = 0;
    CHECK(gemma2_sampler_distribution(s, l, &id, &p, 1) == 1 && id == 1 && p == 1.0f, "greedy distribution");
    /* The repetition penalty applies before greedy: penalising 1, 3 and 5 leaves 4 best. */
    gemma2_sampler_free(s);
    o.repeat_penalty = 1.1f;
    CHECK(gemma2_sampler_create(&o, 8, &s, &err) == GEMMA2_OK, "%s", err.msg);
    gemma2_sampler_accept(s, 1);
    gemma2_sampler_accept(s, 3);
    gemma2_sampler_accept(s, 5);
    gemma2_sampler_accept(s, 3);
    CHECK(gemma2_sampler_sample(s, l) == 4, "penalised greedy");
    gemma2_sampler_reset(s);
    CHECK(gemma2_sampler_sample(s, l) == 1, "reset forgets the history");
    gemma2_sampler_free(s);
}

/* top-k 1 is greedy whatever the temperature; so is a tiny top-p. */
static void test_top_k_1_and_tiny_top_p(void) {
    enum { V = 1000 };
    float l[V];
    fill_logits(l, V, 3, 2.0f);
    int best = 0;
    for (int i = 1; i < V; i++)
        if (l[i] > l[best]) best = i;
    gemma2_sampler_options o = plain(1.5f);
    o.top_k = 1;
    gemma2_sampler *s;
    gemma2_error err;
    CHECK(gemma2_sampler_create(&o, V, &s, &err) == GEMMA2_OK, "%s", err.msg);
    for (int i = 0; i < 200; i++) CHECK(gemma2_sampler_sample(s, l) == best, "top-k 1");
    gemma2_sampler_free(s);
    o = plain(1.5f);
    o.top_p = 1e-6f;
    CHECK(gemma2_sampler_create(&o, V, &s, &err) == GEMMA2_OK, "%s", err.msg);
    for (int i = 0; i < 200; i++) CHECK(gemma2_sampler_sample(s, l) == best, "top-p 1e-6");
    gemma2_sampler_free(s);
}

/* All-equal logits: every filter keeps everything (top-p keeps the first ceil(p V) in id
 * order), and the draws are uniform. */
static void test_all_equal_logits(void) {
    enum { V = 16 };
    float l[V];
    for (int i = 0; i < V; i++) l[i] = 1.25f;
    gemma2_sampler_options o = plain(1.0f);
    check_frequencies(l, V, o, NULL, 0, 64000, "all equal, no filter");
    o.min_p = 1.0f;
    check_frequencies(l, V, o, NULL, 0, 64000, "all equal, min-p 1");
    o = plain(0.5f);
    o.top_p = 0.5f; /* 8 of 16 reach 0.5 */
    check_frequencies(l, V, o, NULL, 0, 64000, "all equal, top-p 0.5");
    o = plain(2.0f);
    o.top_k = 5;
    check_frequencies(l, V, o, NULL, 0, 50000, "all equal, top-k 5 (lowest ids)");
}

/* Each option alone and combined, on a small vocabulary with a spread of logits. */
static void test_filters_frequencies(void) {
    enum { V = 64 };
    float l[V];
    fill_logits(l, V, 11, 3.0f);
    gemma2_sampler_options o = plain(1.0f);
    check_frequencies(l, V, o, NULL, 0, 50000, "temperature 1");
    o.top_p = 1.0f;
    check_frequencies(l, V, o, NULL, 0, 50000, "top-p 1.0 = no filter");
    o = plain(0.6f);
    check_frequencies(l, V, o, NULL, 0, 50000, "temperature 0.6");
    o = plain(1.7f);
    check_frequencies(l, V, o, NULL, 0, 50000, "temperature 1.7");
    o = plain(1.0f);
    o.top_k = 7;
    check_frequencies(l, V, o, NULL, 0, 50000, "top-k 7");
    o = plain(1.0f);
    o.top_p = 0.7f;
    check_frequencies(l, V, o, NULL, 0, 50000, "top-p 0.7");
    o = plain(1.0f);
    o.min_p = 0.1f;
    check_frequencies(l, V, o, NULL, 0, 50000, "min-p 0.1");
    o = plain(0.8f);
    o.top_k = 40, o.top_p = 0.95f, o.min_p = 0.05f; /* the defaults */
    check_frequencies(l, V, o, NULL, 0, 50000, "defaults");
    o = plain(1.3f);
    o.top_k = 20, o.top_p = 0.6f, o.min_p = 0.02f;
    check_frequencies(l, V, o, NULL, 0, 50000, "combined");
}

static void test_repetition_penalty(void) {
    enum { V = 32 };
    float l[V];
    fill_logits(l, V, 5, 2.0f);
    l[3] = 2.5f, l[9] = -1.5f; /* one positive and one negative penalised logit */
    int hist[] = {3, 9, 3, 3, 17, 9};
    gemma2_sampler_options o = plain(1.0f);
    o.repeat_penalty = 1.5f;
    check_frequencies(l, V, o, hist, 6, 50000, "repeat penalty 1.5");
    /* repeat_last_n 2 only sees the last two: 17 and 9 */
    o.repeat_last_n = 2;
    check_frequencies(l, V, o, hist + 4, 2, 50000, "repeat-last-n 2 (reference)");
    gemma2_sampler *s;
    gemma2_error err;
    CHECK(gemma2_sampler_create(&o, V, &s, &err) == GEMMA2_OK, "%s", err.msg);
    for (int i = 0; i < 6; i++) gemma2_sampler_accept(s, hist[i]);
    int32_t a[V], b[V];
    float pa[V], pb[V];
    int na = gemma2_sampler_distribution(s, l, a, pa, V);
    gemma2_sampler_free(s);
    CHECK(gemma2_sampler_create(&o, V, &s, &err) == GEMMA2_OK, "%s", err.msg);
    gemma2_sampler_accept(s, 17);
    gemma2_sampler_accept(s, 9);
    int nb = gemma2_sampler_distribution(s, l, b, pb, V);
    CHECK(na == nb && !memcmp(a, b, sizeof(int32_t) * (size_t)na) && !memcmp(pa, pb, sizeof(float) * (size_t)na),
          "the ring buffer keeps exactly the last repeat_last_n ids");
    gemma2_sampler_free(s);
}

/* The real vocabulary size: top-p without top-k selects the nucleus by mass (no sort), top-k by a
 * heap (small k) or a quickselect (large k).
 * Few draws (each one reads 256k logits, slow under the sanitizers): the exact distribution
 * check is the point here. */
static void test_big_vocab_top_p(void) {
    enum { V = 256000 };
    float *l = malloc(V * sizeof *l);
    fill_logits(l, V, 21, 6.0f);
    gemma2_sampler_options o = plain(1.0f);
    o.top_p = 0.9f;
    check_frequencies(l, V, o, NULL, 0, 100, "256k vocab, top-p 0.9");
    o.top_p = 0.3f, o.min_p = 0.001f;
    check_frequencies(l, V, o, NULL, 0, 100, "256k vocab, top-p 0.3, min-p 0.001");
    o = plain(0.9f);
    o.top_k = 500; /* the heap */
    check_frequencies(l, V, o, NULL, 0, 100, "256k vocab, top-k 500");
    o.top_k = 3000, o.top_p = 0.5f; /* the quickselect, then the sorted top-p walk */
    check_frequencies(l, V, o, NULL, 0, 100, "256k vocab, top-k 3000, top-p 0.5");
    free(l);
}

static void test_reproducible(void) {
    enum { V = 500 };
    float l[V];
    fill_logits(l, V, 8, 2.0f);
    gemma2_sampler_options o = plain(1.0f);
    o.seed = 99;
    gemma2_sampler *a, *b, *c;
    gemma2_error err;
    CHECK(gemma2_sampler_create(&o, V, &a, &err) == GEMMA2_OK, "%s", err.msg);
    CHECK(gemma2_sampler_create(&o, V, &b, &err) == GEMMA2_OK, "%s", err.msg);
    o.seed = 100;
    CHECK(gemma2_sampler_create(&o, V, &c, &err) == GEMMA2_OK, "%s", err.msg);
    int32_t first[50];
    int same_ab = 1, same_ac = 1;
    for (int i = 0; i < 50; i++) {
        int32_t x = gemma2_sampler_sample(a, l), y = gemma2_sampler_sample(b, l), z = gemma2_sampler_sample(c, l);
        first[i] = x;
        same_ab &= x == y;
        same_ac &= x == z;
        /* distribution() must not consume randomness */
        int32_t id;
        float p;
        gemma2_sampler_distribution(b, l, &id, &p, 1);
    }
    CHECK(same_ab, "same seed, same ids");
    CHECK(!same_ac, "another seed, other ids");
    gemma2_sampler_set_seed(a, 99);
    int again = 1;
    for (int i = 0; i < 50; i++) again &= gemma2_sampler_sample(a, l) == first[i];
    CHECK(again, "set_seed restarts the stream");
    gemma2_sampler_free(a);
    gemma2_sampler_free(b);
    gemma2_sampler_free(c);
}

static void test_bad_options(void) {
    gemma2_error err;
    gemma2_sampler *s = (gemma2_sampler *)&err;
    gemma2_sampler_options o = gemma2_sampler_default_options();
    o.temperature = -0.1f;
    CHECK(gemma2_sampler_create(&o, 10, &s, &err) == GEMMA2_ERR_ARG && s == NULL, "negative temperature");
    CHECK(strstr(err.msg, "temperature") != NULL, "message names the option: %s", err.msg);
    o = gemma2_sampler_default_options();
    o.temperature = NAN;
    CHECK(gemma2_sampler_check_options(&o, &err) == GEMMA2_ERR_ARG, "NaN temperature");
    o = gemma2_sampler_default_options();
    o.top_p = 0;
    CHECK(gemma2_sampler_check_options(&o, &err) == GEMMA2_ERR_ARG, "top-p 0");
    o.top_p = 1.01f;
    CHECK(gemma2_sampler_check_options(&o, &err) == GEMMA2_ERR_ARG, "top-p > 1");
    CHECK(strstr(err.msg, "top-p") != NULL, "message names the option: %s", err.msg);
    o = gemma2_sampler_default_options();
    o.top_k = -1;
    CHECK(gemma2_sampler_check_options(&o, &err) == GEMMA2_ERR_ARG, "top-k -1");
    o = gemma2_sampler_default_options();
    o.min_p = -0.1f;
    CHECK(gemma2_sampler_check_options(&o, &err) == GEMMA2_ERR_ARG, "min-p < 0");
    o = gemma2_sampler_default_options();
    o.repeat_penalty = 0;
    CHECK(gemma2_sampler_check_options(&o, &err) == GEMMA2_ERR_ARG, "repeat penalty 0");
    o = gemma2_sampler_default_options();
    o.repeat_last_n = -1;
    CHECK(gemma2_sampler_check_options(&o, &err) == GEMMA2_ERR_ARG, "repeat-last-n -1");
    CHECK(gemma2_sampler_create(NULL, 0, &s, &err) == GEMMA2_ERR_ARG, "vocab 0");
    o = gemma2_sampler_default_options();
    CHECK(gemma2_sampler_check_options(&o, &err) == GEMMA2_OK, "defaults are valid");
    gemma2_sampler_free(NULL);
}

/* -inf logits (masked ids) are never drawn; NaN is treated as -inf. */
static void test_infinite_logits(void) {
    enum { V = 10 };
    float l[V];
    for (int i = 0; i < V; i++) l[i] = -INFINITY;
    l[4] = 1.0f, l[7] = 1.0f, l[2] = NAN;
    gemma2_sampler_options o = plain(1.0f);
    check_frequencies(l, V, o, NULL, 0, 20000, "masked ids");
    float all[V];
    for (int i = 0; i < V; i++) all[i] = -INFINITY;
    gemma2_sampler *s;
    gemma2_error err;
    CHECK(gemma2_sampler_create(&o, V, &s, &err) == GEMMA2_OK, "%s", err.msg);
    CHECK(gemma2_sampler_sample(s, all) == 0, "nothing finite: id 0, no crash");
    gemma2_sampler_free(s);
}

int main(void) {
    RUN(test_greedy_ties_lowest_id);
    RUN(test_top_k_1_and_tiny_top_p);
    RUN(test_all_equal_logits);
    RUN(test_filters_frequencies);
    RUN(test_repetition_penalty);
    RUN(test_big_vocab_top_p);
    RUN(test_reproducible);
    RUN(test_bad_options);
    RUN(test_infinite_logits);
    HARNESS_END();
}
