/* graph.h - the whole-model forward and backward for training: the activations of a batch
 * (carved from one allocation) and the two passes that chain the ops of ops.h. */
#ifndef G2_TRAIN_GRAPH_H
#define G2_TRAIN_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "train/tmodel.h"

typedef struct {
    float *resid_mid, *ln1, *rstd1, *q, *k, *v, *pre, *att, *atty, *ao, *rstd2, *ln2, *rstd3, *gate, *up, *hh, *fo,
        *rstd4;
} g2_layer_acts;

typedef struct {
    int B, T, nt;
    float *mem;             /* the one allocation everything below points into */
    size_t n_floats;
    float *resid;           /* [L+1][N,d]: resid[l] is the input of layer l, resid[L] the last output */
    g2_layer_acts *layers;  /* [L] */
    float *lnf, *rstdf, *logits, *losses, *lse;
    /* backward scratch */
    float *dresid, *dln, *dtmp, *dq, *dk, *dv, *datty, *dhh, *dgate, *dup, *att_scratch;
    float *rope_cos, *rope_sin; /* [T][hd/2] */
    int32_t *ids, *targets;     /* [N] copies of the current batch */
    /* NULL: next-token cross-entropy; else the distillation target of the batch (distill.h),
     * set by the caller before forward and kept until backward */
    const struct g2_soft_target *soft;
} g2_acts;

/* Floats the activations of a B x T batch need with nt threads. */
size_t g2_acts_floats(const gemma2_config *c, int B, int T, int nt);

/* Allocates; GEMMA2_ERR_NOMEM says how many bytes were needed. */
gemma2_status g2_acts_create(g2_acts *a, const gemma2_config *c, int B, int T, int nt, gemma2_error *err);
void g2_acts_free(g2_acts *a);

/* Forward of ids[B*T] with next-token targets[B*T] (-1: no loss at that position); keeps
 * what backward needs. Returns the sum of the per-position losses (double) and the count of
 * positions with a target in *n_targets. ids must be in range (checked by the caller). */
double g2_train_forward(const g2_tmodel *m, g2_acts *a, const int32_t *ids, const int32_t *targets, int *n_targets);

/* Backward of dscale * (sum of losses) after g2_train_forward: adds to m->grads. */
void g2_train_backward(g2_tmodel *m, g2_acts *a, float dscale);

/* Fills targets for the fixture convention: targets[b,t] = ids[b,t+1], the last position -1. */
void g2_next_token_targets(const int32_t *ids, int32_t *targets, int B, int T);

#endif
