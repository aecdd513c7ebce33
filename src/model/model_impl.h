/* model_impl.h - internal: the loaded model (weights bound to names, in place in the mapped
 * files) and the context (KV cache and scratch). Shared by the files of src/model and the trainer. */
#ifndef G2_MODEL_IMPL_H
#define G2_MODEL_IMPL_H

#include "formats/gguf.h"
#include "formats/hf_dir.h"
#include "gemma2.h"
#include "kernels/matmul.h"

typedef struct {
    g2_tensor wq;   /* [heads*head_dim][d] */
    g2_tensor wk;   /* [kv_heads*head_dim][d] */
    g2_tensor wv;   /* [kv_heads*head_dim][d] */
    g2_tensor wo;   /* [d][heads*head_dim] */
    g2_tensor gate; /* [ffn][d] */
    g2_tensor up;   /* [ffn][d] */
    g2_tensor down; /* [d][ffn] */
    /* RMSNorm scales, already 1 + w (HF stores w, GGUF stores 1 + w), fp32 [d] */
    const float *attn_norm, *post_attn_norm, *pre_ffw_norm, *post_ffw_norm;
} g2_layer;

struct gemma2_model {
    gemma2_config cfg;
    gemma2_format format;
    int n_threads;
    g2_hf_dir hf;    /* when format == HF */
    g2_gguf gguf;    /* when format == GGUF */
    g2_tensor embed; /* [vocab][d]; also the output head (tied) */
    const float *final_norm;
    g2_layer *layers;
    float *norm_scales; /* storage behind every norm pointer */
    gemma2_model_stats stats;
};

/* Binds the weights of an opened source to m->layers etc. (weights.c). */
gemma2_status g2_model_bind_weights(gemma2_model *m, gemma2_error *err);

#endif
