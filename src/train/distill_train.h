/* distill_train.h - where `gemma2 train` gets the distillation target of a batch: the stored
 * sampled cache (--distill CACHE) or a teacher run on the fly (--teacher MODEL, its whole
 * distribution or its top-K). The trainer sets acts.soft = &src.st around forward/backward. */
#ifndef G2_TRAIN_DISTILL_TRAIN_H
#define G2_TRAIN_DISTILL_TRAIN_H

#include "train/data.h"
#include "train/distill.h"
#include "train/distill_cache.h"
#include "train/graph.h"
#include "train/tmodel.h"

enum { G2_DISTILL_NONE = 0, G2_DISTILL_CACHE = 1, G2_DISTILL_TEACHER = 2 };

typedef struct {
    int mode, B, T, topk;
    g2_dcache cache;
    g2_tmodel teacher;
    g2_acts tacts;
    int64_t *row;
    int32_t *ids, *scratch;
    float *w;
    g2_soft_target st;
    double teacher_loss; /* the teacher's next-token loss on the last batch (teacher mode) */
} g2_distill_src;

/* --distill: opens the cache and refuses one made for another vocabulary, tokenizer (tok_path's
 * hash; NULL = unknown), data or --seq. */
gemma2_status g2_distill_open_cache(g2_distill_src *s, const char *path, const gemma2_config *student,
                                    const g2_shard *train, const char *tok_path, int B, int T, float alpha,
                                    gemma2_error *err);
/* --teacher: loads an HF checkpoint of the student's vocabulary; topk 0 = whole distribution. */
gemma2_status g2_distill_open_teacher(g2_distill_src *s, const char *dir, const gemma2_config *student, int B,
                                      int T, int nt, int topk, float alpha, gemma2_error *err);
void g2_distill_close(g2_distill_src *s);

/* Cache mode: B random windows of the cache's (cache window j = tokens[j*S*T .. j*S*T+T], S its
 * stride), their
 * inputs/targets, and the sampled targets into s->st. */
gemma2_status g2_distill_cache_batch(g2_distill_src *s, const g2_shard *train, g2_rng *r, int32_t *ids,
                                     int32_t *targets, gemma2_error *err);
/* Teacher mode: runs the teacher on the batch and sets s->st. */
void g2_distill_teacher_batch(g2_distill_src *s, const int32_t *ids, const int32_t *targets);

#endif
