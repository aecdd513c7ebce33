/* optim.h - AdamW (torch.optim.AdamW's rule, torchref README section 3), global-norm gradient
 * clipping and the learning-rate schedule (linear warm-up, then cosine decay). */
#ifndef G2_TRAIN_OPTIM_H
#define G2_TRAIN_OPTIM_H

#include <stddef.h>

/* doubles: torch computes the scalars (1 - beta1, lr / (1 - beta1^t), ...) in double */
typedef struct {
    double beta1, beta2, eps, weight_decay;
} g2_adamw_hp;

/* One step t (1-based) over n parameters, lr given (the schedule's value):
 *   w *= 1 - lr wd                      (decoupled decay first, on every tensor)
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * Element-wise, so the thread count does not change the result. */
void g2_adamw_step(float *w, const float *g, float *m, float *v, size_t n, long t, double lr, const g2_adamw_hp *hp,
                   int nt);

/* The global L2 norm of g (accumulated in double, in a fixed order). */
double g2_grad_norm(const float *g, size_t n, int nt);

/* If max_norm > 0 and the norm exceeds it, scales g by max_norm / (norm + 1e-6) (as torch's
 * clip_grad_norm_). Returns the norm before clipping. */
double g2_clip_grad_norm(float *g, size_t n, float max_norm, int nt);

/* LR of step `step` (0-based) of `total`: linear warm-up over `warmup` steps to `lr`, then
 * cosine decay to lr * min_frac at the last step. */
float g2_lr_schedule(long step, long total, long warmup, float lr, float min_frac);

#endif
