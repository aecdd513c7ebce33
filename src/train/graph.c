/* graph.c - whole-model forward and backward (the op order of src/model/forward.c). */
#include "train/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/distill.h"
#include "train/ops.h"
#include "util/error.h"

/* The carving plan, used both to count and to assign: each field gets `n` floats, 16-float
 * (64-byte) aligned. */
typedef struct {
    float *base;
    size_t used;
} carver;

static float *carve(carver *c, size_t n) {
    float *p = c->base ? c->base + c->used : NULL;
    c->used += (n + 15) & ~(size_t)15;
    return p;
}

static void plan(g2_acts *a, const gemma2_config *c, int B, int T, int nt, carver *cv) {
    const size_t N = (size_t)B * T, d = c->hidden_size, qd = (size_t)c->num_heads * c->head_dim,
                 kvd = (size_t)c->num_kv_heads * c->head_dim, F = c->intermediate_size, V = c->vocab_size,
                 TT = (size_t)T * T, L = c->num_layers;
    a->resid = carve(cv, (L + 1) * N * d);
    for (size_t l = 0; l < L; l++) {
        g2_layer_acts la;
        la.resid_mid = carve(cv, N * d);
        la.ln1 = carve(cv, N * d);
        la.rstd1 = carve(cv, N);
        la.q = carve(cv, N * qd);
        la.k = carve(cv, N * kvd);
        la.v = carve(cv, N * kvd);
        la.pre = carve(cv, (size_t)B * c->num_heads * TT);
        la.att = carve(cv, (size_t)B * c->num_heads * TT);
        la.atty = carve(cv, N * qd);
        la.ao = carve(cv, N * d);
        la.rstd2 = carve(cv, N);
        la.ln2 = carve(cv, N * d);
        la.rstd3 = carve(cv, N);
        la.gate = carve(cv, N * F);
        la.up = carve(cv, N * F);
        la.hh = carve(cv, N * F);
        la.fo = carve(cv, N * d);
        la.rstd4 = carve(cv, N);
        if (a->layers) a->layers[l] = la;
    }
    a->lnf = carve(cv, N * d);
    a->rstdf = carve(cv, N);
    a->logits = carve(cv, N * V);
    a->losses = carve(cv, N);
    a->lse = carve(cv, N);
    a->dresid = carve(cv, N * d);
    a->dln = carve(cv, N * d);
    a->dtmp = carve(cv, N * d);
    a->dq = carve(cv, N * qd);
    a->dk = carve(cv, N * kvd);
    a->dv = carve(cv, N * kvd);
    a->datty = carve(cv, N * qd);
    a->dhh = carve(cv, N * F);
    a->dgate = carve(cv, N * F);
    a->dup = carve(cv, N * F);
    a->att_scratch = carve(cv, (size_t)nt * TT);
    a->rope_cos = carve(cv, (size_t)T * (c->head_dim / 2));
    a->rope_sin = carve(cv, (size_t)T * (c->head_dim / 2));
    a->ids = (int32_t *)carve(cv, N);
    a->targets = (int32_t *)carve(cv, N);
}

size_t g2_acts_floats(const gemma2_config *c, int B, int T, int nt) {
    g2_acts a = {0};
    carver cv = {0};
    plan(&a, c, B, T, nt < 1 ? 1 : nt, &cv);
    return cv.used;
}

gemma2_status g2_acts_create(g2_acts *a, const gemma2_config *c, int B, int T, int nt, gemma2_error *err) {
    memset(a, 0, sizeof *a);
    if (nt < 1) nt = 1;
    a->B = B, a->T = T, a->nt = nt;
    a->n_floats = g2_acts_floats(c, B, T, nt);
    a->layers = calloc((size_t)c->num_layers, sizeof *a->layers);
    a->mem = a->layers ? aligned_alloc(64, a->n_floats * sizeof(float)) : NULL;
    if (!a->mem) {
        g2_acts_free(a);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory: the activations of a %d x %d batch need %.1f MB", B, T,
                       (double)g2_acts_floats(c, B, T, nt) * sizeof(float) / 1e6);
    }
    memset(a->mem, 0, a->n_floats * sizeof(float));
    carver cv = {a->mem, 0};
    plan(a, c, B, T, nt, &cv);
    g2_rope_tables(a->rope_cos, a->rope_sin, T, c->head_dim, c->rope_theta);
    return GEMMA2_OK;
}

void g2_acts_free(g2_acts *a) {
    free(a->mem);
    free(a->layers);
    memset(a, 0, sizeof *a);
}

void g2_next_token_targets(const int32_t *ids, int32_t *targets, int B, int T) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) targets[b * T + t] = t + 1 < T ? ids[b * T + t + 1] : -1;
}

static int window_of(const gemma2_config *c, int l) {
    return gemma2_layer_is_local(c, l) ? c->sliding_window : 0;
}

double g2_train_forward(const g2_tmodel *m, g2_acts *a, const int32_t *ids, const int32_t *targets, int *n_targets) {
    const gemma2_config *c = &m->cfg;
    const int B = a->B, T = a->T, N = B * T, d = c->hidden_size, hd = c->head_dim, nh = c->num_heads,
              nkv = c->num_kv_heads, qd = nh * hd, kvd = nkv * hd, F = c->intermediate_size, V = c->vocab_size,
              nt = a->nt;
    const float *P = m->params, eps = c->rms_norm_eps;
    const float scale = 1.0f / sqrtf(c->query_pre_attn_scalar);
    memcpy(a->ids, ids, sizeof(int32_t) * (size_t)N);
    memcpy(a->targets, targets, sizeof(int32_t) * (size_t)N);

    /* embedding scale: float32(sqrt(d)), as gemma_pytorch in fp32 */
    g2_embedding_forward(a->resid, ids, P + m->embed, N, d, sqrtf((float)d));
    for (int l = 0; l < c->num_layers; l++) {
        const g2_layer_off *W = &m->layers[l];
        g2_layer_acts *A = &a->layers[l];
        const float *x = a->resid + (size_t)l * N * d;
        float *xo = a->resid + (size_t)(l + 1) * N * d;
        g2_rmsnorm_forward(A->ln1, A->rstd1, x, P + W->in_norm, N, d, eps, nt);
        g2_matmul_forward(A->q, A->ln1, P + W->wq, N, d, qd, nt);
        g2_matmul_forward(A->k, A->ln1, P + W->wk, N, d, kvd, nt);
        g2_matmul_forward(A->v, A->ln1, P + W->wv, N, d, kvd, nt);
        g2_rope_forward(A->q, N, T, nh, hd, a->rope_cos, a->rope_sin, nt);
        g2_rope_forward(A->k, N, T, nkv, hd, a->rope_cos, a->rope_sin, nt);
        g2_attention_forward(A->atty, A->pre, A->att, A->q, A->k, A->v, B, T, nh, nkv, hd, scale, c->attn_logit_softcap,
                             window_of(c, l), nt);
        g2_matmul_forward(A->ao, A->atty, P + W->wo, N, qd, d, nt);
        g2_rmsnorm_forward(a->dtmp, A->rstd2, A->ao, P + W->post_attn_norm, N, d, eps, nt);
        g2_residual_forward(A->resid_mid, x, a->dtmp, (long)N * d);
        g2_rmsnorm_forward(A->ln2, A->rstd3, A->resid_mid, P + W->pre_ffw_norm, N, d, eps, nt);
        g2_matmul_forward(A->gate, A->ln2, P + W->gate, N, d, F, nt);
        g2_matmul_forward(A->up, A->ln2, P + W->up, N, d, F, nt);
        g2_geglu_forward(A->hh, A->gate, A->up, (long)N * F, nt);
        g2_matmul_forward(A->fo, A->hh, P + W->down, N, F, d, nt);
        g2_rmsnorm_forward(a->dtmp, A->rstd4, A->fo, P + W->post_ffw_norm, N, d, eps, nt);
        g2_residual_forward(xo, A->resid_mid, a->dtmp, (long)N * d);
    }
    const float *xl = a->resid + (size_t)c->num_layers * N * d;
    g2_rmsnorm_forward(a->lnf, a->rstdf, xl, P + m->final_norm, N, d, eps, nt);
    g2_matmul_forward(a->logits, a->lnf, P + m->embed, N, d, V, nt); /* the tied head */
    if (a->soft)
        g2_soft_xent_forward(a->logits, a->losses, a->lse, targets, a->soft, N, V, c->final_logit_softcap, nt);
    else
        g2_xent_forward(a->logits, a->losses, a->lse, targets, N, V, c->final_logit_softcap, nt);
    double sum = 0;
    int cnt = 0;
    for (int n = 0; n < N; n++)
        if (targets[n] >= 0) sum += a->losses[n], cnt++;
    if (n_targets) *n_targets = cnt;
    return sum;
}

void g2_train_backward(g2_tmodel *m, g2_acts *a, float dscale) {
    const gemma2_config *c = &m->cfg;
    const int B = a->B, T = a->T, N = B * T, d = c->hidden_size, hd = c->head_dim, nh = c->num_heads,
              nkv = c->num_kv_heads, qd = nh * hd, kvd = nkv * hd, F = c->intermediate_size, V = c->vocab_size,
              nt = a->nt;
    const float *P = m->params;
    float *G = m->grads;
    const float scale = 1.0f / sqrtf(c->query_pre_attn_scalar);

    if (a->soft)
        g2_soft_xent_backward(a->logits, a->lse, a->targets, a->soft, N, V, c->final_logit_softcap, dscale, nt);
    else
        g2_xent_backward(a->logits, a->lse, a->targets, N, V, c->final_logit_softcap, dscale, nt);
    g2_matmul_backward(a->dln, G + m->embed, a->logits, a->lnf, P + m->embed, N, d, V, 0, nt);
    const float *xl = a->resid + (size_t)c->num_layers * N * d;
    g2_rmsnorm_backward(a->dresid, G + m->final_norm, a->dln, xl, a->rstdf, P + m->final_norm, N, d, 0, nt);

    for (int l = c->num_layers - 1; l >= 0; l--) {
        const g2_layer_off *W = &m->layers[l];
        g2_layer_acts *A = &a->layers[l];
        const float *x = a->resid + (size_t)l * N * d;
        /* x_out = resid_mid + rmsnorm(fo) (1 + w_post_ffw) */
        g2_rmsnorm_backward(a->dtmp, G + W->post_ffw_norm, a->dresid, A->fo, A->rstd4, P + W->post_ffw_norm, N, d, 0, nt);
        g2_matmul_backward(a->dhh, G + W->down, a->dtmp, A->hh, P + W->down, N, F, d, 0, nt);
        g2_geglu_backward(a->dgate, a->dup, a->dhh, A->gate, A->up, (long)N * F, nt);
        g2_matmul_backward(a->dln, G + W->gate, a->dgate, A->ln2, P + W->gate, N, d, F, 0, nt);
        g2_matmul_backward(a->dln, G + W->up, a->dup, A->ln2, P + W->up, N, d, F, 1, nt);
        g2_rmsnorm_backward(a->dresid, G + W->pre_ffw_norm, a->dln, A->resid_mid, A->rstd3, P + W->pre_ffw_norm, N, d, 1, nt);
        /* resid_mid = x + rmsnorm(ao) (1 + w_post_attn) */
        g2_rmsnorm_backward(a->dtmp, G + W->post_attn_norm, a->dresid, A->ao, A->rstd2, P + W->post_attn_norm, N, d, 0, nt);
        g2_matmul_backward(a->datty, G + W->wo, a->dtmp, A->atty, P + W->wo, N, qd, d, 0, nt);
        g2_attention_backward(a->dq, a->dk, a->dv, a->att_scratch, a->datty, A->pre, A->att, A->q, A->k, A->v, B, T, nh,
                              nkv, hd, scale, c->attn_logit_softcap, nt);
        g2_rope_backward(a->dq, N, T, nh, hd, a->rope_cos, a->rope_sin, nt);
        g2_rope_backward(a->dk, N, T, nkv, hd, a->rope_cos, a->rope_sin, nt);
        g2_matmul_backward(a->dln, G + W->wq, a->dq, A->ln1, P + W->wq, N, d, qd, 0, nt);
        g2_matmul_backward(a->dln, G + W->wk, a->dk, A->ln1, P + W->wk, N, d, kvd, 1, nt);
        g2_matmul_backward(a->dln, G + W->wv, a->dv, A->ln1, P + W->wv, N, d, kvd, 1, nt);
        g2_rmsnorm_backward(a->dresid, G + W->in_norm, a->dln, x, A->rstd1, P + W->in_norm, N, d, 1, nt);
    }
    g2_embedding_backward(G + m->embed, a->dresid, a->ids, N, d, sqrtf((float)d));
}
