/* kernels_impl.h - internal: the per-type, per-ISA kernel functions behind matmul.h. */
#ifndef G2_KERNELS_IMPL_H
#define G2_KERNELS_IMPL_H

#include <stdint.h>

typedef float (*g2_dot_fn)(const void *row, const float *x, int64_t n);

float g2_dot_f32_scalar(const void *row, const float *x, int64_t n);
float g2_dot_bf16_scalar(const void *row, const float *x, int64_t n);
float g2_dot_f16_scalar(const void *row, const float *x, int64_t n);
float g2_dot_q8_0_scalar(const void *row, const float *x, int64_t n);
void g2_row_to_f32(int type, const void *row, float *out, int64_t n);

/* The dot product for `type` on the best instruction set available (see dispatch.c). */
g2_dot_fn g2_dot_for_type(int type);

#endif
