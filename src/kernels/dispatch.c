/* dispatch.c - picks the kernels for the weight type and the CPU. */
#include <stdlib.h>
#include <string.h>

#include "gemma2.h"
#include "kernels/kernels_impl.h"

g2_dot_fn g2_dot_for_type(int type) {
    switch (type) {
    case GEMMA2_TYPE_F32: return g2_dot_f32_scalar;
    case GEMMA2_TYPE_BF16: return g2_dot_bf16_scalar;
    case GEMMA2_TYPE_F16: return g2_dot_f16_scalar;
    case GEMMA2_TYPE_Q8_0: return g2_dot_q8_0_scalar;
    default: return NULL;
    }
}
