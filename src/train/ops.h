/* ops.h - the forward and backward of every op of Gemma 2 training, llm.c style: plain
 * functions on fp32 arrays, shapes in the comments (N = B*T rows, row-major). A backward
 * function accumulates (+=) into weight gradients and writes (=) input gradients unless it
 * says otherwise. Every reduction runs in a fixed order: results do not depend on the thread
 * count. `nt` is the number of OpenMP threads. */
#ifndef G2_TRAIN_OPS_H
#define G2_TRAIN_OPS_H

#include <stdint.h>

/* out[N,d] = E[ids[n]] * s */
void g2_embedding_forward(float *out, const int32_t *ids, const float *E, int N, int d, float s);
/* dE[ids[n]] += dout[n] * s (serial: rows of E repeat) */
void g2_embedding_backward(float *dE, const float *dout, const int32_t *ids, int N, int d, float s);

/* out[N,d] = x * rstd * (1 + w), rstd[N] = 1/sqrt(mean(x^2) + eps) (mean in double). out may be x. */
void g2_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int d, float eps, int nt);
/* dx[N,d] = (accumulate ? dx + : ) d/dx; dw[d] += sum_n dout * x * rstd */
void g2_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *rstd, const float *w,
                         int N, int d, int accumulate, int nt);

/* out[N,O] = inp[N,I] W[O,I]^T */
void g2_matmul_forward(float *out, const float *inp, const float *W, int N, int I, int O, int nt);
/* dinp[N,I] (accumulate ? += : =) dout[N,O] W;  dW[O,I] += dout^T inp. dinp may be NULL. */
void g2_matmul_backward(float *dinp, float *dW, const float *dout, const float *inp, const float *W, int N, int I, int O,
                        int accumulate, int nt);

/* RoPE tables: cos/sin[T][hd/2] of pos * theta^(-2i/hd), angles in double. */
void g2_rope_tables(float *cos_t, float *sin_t, int T, int hd, float theta);
/* In place on x[N, nheads*hd], position of row n = n % T; NEOX pairs (i, i + hd/2). */
void g2_rope_forward(float *x, int N, int T, int nheads, int hd, const float *cos_t, const float *sin_t, int nt);
/* The transpose of the rotation, in place on dx. */
void g2_rope_backward(float *dx, int N, int T, int nheads, int hd, const float *cos_t, const float *sin_t, int nt);

/* Scaled, soft-capped, masked attention with GQA.
 * q[B*T, nh*hd], k/v[B*T, nkv*hd] -> out[B*T, nh*hd]
 * pre[B,nh,T,T]: capped scores (0 where masked), att[B,nh,T,T]: probabilities (0 where masked).
 * window > 0: key j visible to query i iff i - window < j <= i; window 0: j <= i. cap 0 = none. */
void g2_attention_forward(float *out, float *pre, float *att, const float *q, const float *k, const float *v, int B,
                          int T, int nh, int nkv, int hd, float scale, float cap, int window, int nt);
/* dq[B*T, nh*hd] =, dk/dv[B*T, nkv*hd] = ; scratch: nt * T*T floats. */
void g2_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *pre,
                           const float *att, const float *q, const float *k, const float *v, int B, int T, int nh,
                           int nkv, int hd, float scale, float cap, int nt);

/* h[n] = gelu_tanh(g[n]) * u[n] over n elements */
void g2_geglu_forward(float *h, const float *g, const float *u, long n, int nt);
/* dg = dh * u * gelu'(g), du = dh * gelu(g) */
void g2_geglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, long n, int nt);

/* out[n] = a[n] + b[n] */
void g2_residual_forward(float *out, const float *a, const float *b, long n);

/* Final soft-cap and cross-entropy. logits[N,V] (raw) are capped in place; for rows with
 * targets[n] >= 0, losses[n] = logsumexp - logit[target], lse[n] saved; rows with target < 0
 * get loss 0. */
void g2_xent_forward(float *logits, float *losses, float *lse, const int32_t *targets, int N, int V, float cap, int nt);
/* In place: logits (capped) -> d(dscale * sum losses)/d(raw logits); rows without target -> 0. */
void g2_xent_backward(float *logits, const float *lse, const int32_t *targets, int N, int V, float cap, float dscale,
                      int nt);

#endif
