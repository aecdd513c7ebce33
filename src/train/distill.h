/* distill.h - knowledge distillation (GEMMA2.md section 5): the student's cross-entropy against
 * a teacher's distribution instead of the one-hot next token, and the sampling of the sparse
 * targets that the stored cache holds (distill_cache.h).
 *
 * The objective per position with a next token y and a target distribution p:
 *     loss = (1 - alpha) * sum_i -p_i log q_i  +  alpha * -log q_y,    q = softmax(capped logits)
 * p is either sparse (the Gemma 3 report's recipe for Gemma 2: K ids sampled from the teacher,
 * p_i = count_i / K over the sampled ids, zero elsewhere; or the teacher's top-K renormalised) or
 * dense (the teacher's whole distribution). A position without soft entries falls back to the
 * one-hot loss; a position with y < 0 has no loss at all (as g2_xent_forward). */
#ifndef G2_TRAIN_DISTILL_H
#define G2_TRAIN_DISTILL_H

#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"

typedef struct g2_soft_target {
    const int64_t *row;  /* [N+1] CSR offsets into id/w (NULL: no sparse part) */
    const int32_t *id;   /* sparse ids, each < V, ascending within a row */
    const float *w;      /* their probabilities (each row sums to 1) */
    const float *dense;  /* [N,V] probabilities, or NULL; used when row is NULL */
    float alpha;         /* weight of the one-hot term, in [0, 1] */
} g2_soft_target;

/* Caps logits[N,V] in place (tanh soft-cap, cap 0 = none), saves lse[N], and writes the loss of
 * every row into losses[N] (0 where targets[n] < 0). */
void g2_soft_xent_forward(float *logits, float *losses, float *lse, const int32_t *targets,
                          const g2_soft_target *st, int N, int V, float cap, int nt);

/* In place: capped logits -> d(dscale * sum losses)/d(raw logits). Rows without target -> 0. */
void g2_soft_xent_backward(float *logits, const float *lse, const int32_t *targets, const g2_soft_target *st,
                           int N, int V, float cap, float dscale, int nt);

/* The cumulative softmax(logits / temperature) of one row into cdf[V] (unnormalised); returns the
 * total. Shared by the draws of every K at a position. */
double g2_distill_cdf(const float *logits, int V, double temperature, double *cdf);

/* K draws with replacement from a cdf of g2_distill_cdf, deduplicated: n distinct ids ascending
 * with their counts (summing to K); returns n. u: K doubles of scratch. */
int g2_distill_draw(const double *cdf, int V, double total, int K, g2_rng *r, double *u, int32_t *ids,
                    uint32_t *counts);

/* The random stream of the draws at position `pos` (window j, offset t: pos = j * seq + t) of the
 * cache with K draws: positions are independent, so they are sampled in parallel and a resumed
 * run reproduces an uninterrupted one. */
static inline void g2_distill_rng(g2_rng *r, uint64_t seed, int K, uint64_t pos) {
    g2_rng_seed(r, seed ^ (0x9e3779b97f4a7c15ull * (pos + 1)) ^ ((uint64_t)K << 40));
}

/* Draws K ids with replacement from softmax(logits / temperature) (logits already soft-capped,
 * as the inference library returns them) and deduplicates them: writes n distinct ids in
 * ascending order with their counts (summing to K) and returns n (1 <= n <= K).
 * cdf: V doubles of scratch; u: K doubles of scratch. Deterministic for a given rng state. */
int g2_distill_sample(const float *logits, int V, double temperature, int K, g2_rng *r, double *cdf, double *u,
                      int32_t *ids, uint32_t *counts);

/* The teacher's top-k of softmax(logits) renormalised over those k (ties: the lower id wins):
 * ids in ascending order, as the loss wants them, and probabilities. k <= V. scratch: k ints. */
void g2_distill_topk(const float *logits, int V, int k, int32_t *ids, float *p, int32_t *scratch);

/* softmax(logits) of one row, in place. */
void g2_softmax_row(float *z, int V);

/* 64-bit FNV-1a, continued from h (start with G2_FNV_INIT): the data and tokenizer hashes of the
 * cache header. */
#define G2_FNV_INIT 0xcbf29ce484222325ull
uint64_t g2_fnv1a(uint64_t h, const void *data, size_t n);

#endif
