/* tmodel.h - a Gemma 2 model for training: fp32 master weights and gradients, each one
 * contiguous buffer, with a table of the tensors under their Hugging Face names.
 *
 * Norm weights hold the stored `w` of the HF convention (the model multiplies by 1 + w); the
 * gradient with respect to w equals the one with respect to the scale 1 + w. */
#ifndef G2_TRAIN_TMODEL_H
#define G2_TRAIN_TMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "gemma2.h"

/* Offsets (in floats) of one layer's tensors inside the parameter (or gradient) buffer. */
typedef struct {
    size_t in_norm, wq, wk, wv, wo, post_attn_norm, pre_ffw_norm, gate, up, down, post_ffw_norm;
} g2_layer_off;

typedef struct {
    char name[96];  /* HF name */
    size_t off;     /* in floats */
    size_t numel;
    int n_dims;
    int64_t shape[2];
} g2_tparam;

typedef struct {
    gemma2_config cfg;
    size_t n_params;
    float *params; /* n_params floats */
    float *grads;  /* n_params floats */
    int n_tensors;
    g2_tparam *tensors; /* in HF order: embedding, layers 0.., final norm */
    g2_layer_off *layers;
    size_t embed, final_norm; /* offsets */
} g2_tmodel;

/* Lays out the tensors for `cfg` and allocates zeroed params and grads. Fails with
 * GEMMA2_ERR_NOMEM saying how many bytes it needed. */
gemma2_status g2_tmodel_create(const gemma2_config *cfg, g2_tmodel *m, gemma2_error *err);
void g2_tmodel_free(g2_tmodel *m);

/* Bytes create() allocates (params + grads). */
size_t g2_tmodel_bytes(const gemma2_config *cfg);

/* Random initialisation from `seed`: embedding N(0, 1/d)... see tmodel.c. Norm w = 0. */
void g2_tmodel_init_random(g2_tmodel *m, uint64_t seed);

/* Loads weights from a Hugging Face directory (F32, BF16 or F16 tensors, any sharding):
 * config from its config.json. */
gemma2_status g2_tmodel_load_hf(const char *dir, g2_tmodel *m, gemma2_error *err);

/* Copies the weights of an open safetensors-like lookup into m (same shapes required). */
const g2_tparam *g2_tmodel_find(const g2_tmodel *m, const char *name);

/* Writes `dir`/config.json and `dir`/model.safetensors (F32, HF names), each atomically. */
gemma2_status g2_tmodel_save_hf(const g2_tmodel *m, const char *dir, gemma2_error *err);

#endif
