#include "kernels/kernels_impl.h"
int g2_kernel_avx512(int type, int bf16_dot, g2_kernel *k) { (void)type; (void)bf16_dot; (void)k; return 0; }
