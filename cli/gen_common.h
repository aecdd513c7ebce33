/* gen_common.h - what `generate` and `chat` share: the sampling options, and a generation loop
 * that evaluates, samples, streams text through the incremental decoder, keeps timings and can
 * write every evaluated id to a file (--dump-tokens, for tests that check what the model saw). */
#ifndef G2_CLI_GEN_COMMON_H
#define G2_CLI_GEN_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "gemma2.h"
#include "gemma2_sample.h"
#include "gemma2_tokenizer.h"

/* ---- sampling options ---- */

typedef struct {
    gemma2_sampler_options so;
    int seed_given;
} g2_sampling_args;

void g2_sampling_args_init(g2_sampling_args *a);
/* 1: argv[*i] was a sampling option and its value was parsed (*i advanced); 0: not one of them;
 * -1: a bad value (message printed: the caller exits with status 2). */
int g2_sampling_arg(int argc, char **argv, int *i, const char *cmd, g2_sampling_args *a);
/* Checks the ranges and, without --seed, draws a seed from the clock. 0 or -1 (message printed). */
int g2_sampling_args_finish(g2_sampling_args *a, const char *cmd);
void g2_sampling_usage(FILE *f);

/* ---- the generation loop ---- */

typedef enum { G2_STOP_LENGTH, G2_STOP_EOG, G2_STOP_CTX_FULL, G2_STOP_ERROR } g2_stop;

typedef struct {
    gemma2_context *ctx;
    gemma2_sampler *sampler;
    gemma2_decoder *dec; /* NULL: print ids instead of text */
    FILE *out;           /* where the generated text goes (stdout) */
    FILE *dump;          /* NULL or --dump-tokens: one line of ids per evaluation */
    int32_t stop[2];
    int n_stop;
    int32_t pending;  /* a generated id not evaluated yet (the last one), or -1 */
    int32_t stop_id;  /* the end-of-generation id that ended the last run */
    int ids_written;  /* for spacing in id output */
    double t_prompt, t_decode, t_sample; /* seconds in the model (prompt, decode) and the sampler */
    long n_prompt, n_decode, n_sample;
    gemma2_text_buf text;
} g2_gen;

/* Evaluates n ids as one batch (timed as prompt when is_prompt, else as decode), dumps them,
 * and records them in the sampler's repetition history from index `accept_from` on. */
gemma2_status g2_gen_eval(g2_gen *g, const int32_t *ids, int n, int is_prompt, int accept_from,
                          gemma2_error *err);

/* Generates after what the context holds: at most max_new ids (< 0: no limit), stopping at an
 * end-of-generation id (not printed, not evaluated) or when the context is full. Each id is
 * streamed as soon as it is sampled; every generated id but the last is evaluated, the last is
 * left in g->pending. *n_gen counts the ids printed. */
g2_stop g2_gen_run(g2_gen *g, int max_new, int *n_gen, gemma2_error *err);

/* Writes out held-back bytes of the decoder (end of a reply). */
void g2_gen_flush(g2_gen *g);

const char *g2_stop_name(g2_stop s, int32_t stop_id);

#endif
