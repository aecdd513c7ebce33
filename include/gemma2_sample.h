/*
 * gemma2_sample.h - choosing the next token from a row of logits.
 *
 * A sampler turns the logits of one position (the soft-capped fp32 logits
 * that gemma2_last_logits() returns) into a token id. It applies, in this
 * order (llama.cpp's default chain, so that the same options mean the same
 * thing in both programs):
 *
 *   1. repetition penalty: every distinct id among the last `repeat_last_n`
 *      accepted tokens has its logit divided by `repeat_penalty` when it is
 *      positive and multiplied by it when it is negative (CTRL / llama.cpp);
 *   2. greedy when temperature == 0: the largest logit, an exact tie going to
 *      the lowest id (as llama.cpp's greedy sampler); the steps below are
 *      then skipped, because none of them can remove the most likely token;
 *   3. top-k: keep the k largest logits (ties broken towards lower ids);
 *   4. top-p (nucleus): keep the smallest set of most likely tokens whose
 *      probability (softmax at temperature 1 over what is left) reaches p;
 *   5. min-p: keep tokens whose probability is at least min_p times the most
 *      likely one's;
 *   6. temperature: the survivors' logits divided by T, softmax, and one draw
 *      from that distribution with the sampler's own random generator.
 *
 * The filters work on the temperature-1 distribution and the temperature is
 * applied last (llama.cpp's order; Hugging Face applies it first, which
 * changes what top-p and min-p keep when T != 1).
 *
 * Reproducibility: the random generator (xoshiro256**, seeded through
 * splitmix64) belongs to the sampler object, so the same seed, options and
 * logits give the same ids on every machine and run; there is no global state
 * and two samplers can be used from two threads at once.
 *
 * Conventions: as gemma2.h (status + gemma2_error, no printing).
 *
 * Typical use
 *     gemma2_sampler_options so = gemma2_sampler_default_options();
 *     so.temperature = 0.7f; so.seed = 42;
 *     gemma2_sampler *s;
 *     if (gemma2_sampler_create(&so, vocab_size, &s, &err)) ...
 *     for (each prompt token t) gemma2_sampler_accept(s, t);   // history for the penalty
 *     int32_t id = gemma2_sampler_sample(s, gemma2_last_logits(ctx));
 *     gemma2_sampler_accept(s, id);
 *     gemma2_sampler_free(s);
 */
#ifndef GEMMA2_SAMPLE_H
#define GEMMA2_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "gemma2.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float temperature;    /* >= 0; 0 = greedy (default 0.8) */
    int top_k;            /* >= 0; 0 = no limit (default 40) */
    float top_p;          /* in (0, 1]; 1 = off (default 0.95) */
    float min_p;          /* in [0, 1]; 0 = off (default 0.05) */
    float repeat_penalty; /* > 0; 1 = off (default 1.0) */
    int repeat_last_n;    /* >= 0: how many previous tokens the penalty looks at (default 64) */
    uint64_t seed;        /* random generator seed (default 0) */
} gemma2_sampler_options;

typedef struct gemma2_sampler gemma2_sampler;

gemma2_sampler_options gemma2_sampler_default_options(void);

/* Checks the option ranges above; GEMMA2_ERR_ARG with a message naming the
 * option and its value otherwise. */
gemma2_status gemma2_sampler_check_options(const gemma2_sampler_options *opt, gemma2_error *err);

/* `opt` may be NULL for the defaults. vocab_size is the length of every row
 * of logits passed later. */
gemma2_status gemma2_sampler_create(const gemma2_sampler_options *opt, int vocab_size,
                                    gemma2_sampler **out, gemma2_error *err);
void gemma2_sampler_free(gemma2_sampler *s);

/* Draws one id from `logits` (vocab_size floats, not modified). Does not
 * record it: call gemma2_sampler_accept() for every token that enters the
 * model's input (prompt tokens too), so the repetition penalty sees them. */
int32_t gemma2_sampler_sample(gemma2_sampler *s, const float *logits);

/* The distribution that gemma2_sampler_sample() draws from for these logits:
 * up to `max` (id, probability) pairs, most likely first (ties: lower id
 * first), probabilities summing to 1. Returns how many ids have a non-zero
 * probability (may exceed `max`; then only the first `max` are written).
 * Greedy gives one id with probability 1. Draws nothing: the random state
 * is unchanged. */
int gemma2_sampler_distribution(gemma2_sampler *s, const float *logits, int32_t *ids,
                                float *probs, int max);

/* Records a token in the history that the repetition penalty looks at. */
void gemma2_sampler_accept(gemma2_sampler *s, int32_t id);

/* Forgets the history (a new conversation); the random state continues. */
void gemma2_sampler_reset(gemma2_sampler *s);

/* Restarts the random generator as if created with this seed. */
void gemma2_sampler_set_seed(gemma2_sampler *s, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif /* GEMMA2_SAMPLE_H */
