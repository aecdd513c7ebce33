/* dispatch.c - picks the instruction set and the kernel for a weight type on each call.
 *
 * Nothing is cached: the CPU's features (__builtin_cpu_supports reads a table libgcc fills
 * at start-up) and GEMMA2_ISA are consulted on every product, which costs well under a
 * microsecond against products of tens of microseconds or more, and keeps the library free
 * of mutable global state. */
#include <stdlib.h>
#include <string.h>

#include "gemma2.h"
#include "kernels/kernels_impl.h"

int g2_isa_available(g2_isa isa) {
    switch (isa) {
    case G2_ISA_SCALAR: return 1;
#if defined(__x86_64__) || defined(__i386__)
    case G2_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case G2_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
#endif
    default: return 0;
    }
}

const char *g2_isa_name(g2_isa isa) {
    switch (isa) {
    case G2_ISA_SCALAR: return "scalar";
    case G2_ISA_AVX2: return "avx2";
    case G2_ISA_AVX512: return "avx512";
    }
    return "?";
}

static g2_isa best_available(g2_isa from) {
    for (int i = (int)from; i > 0; i--)
        if (g2_isa_available((g2_isa)i)) return (g2_isa)i;
    return G2_ISA_SCALAR;
}

g2_isa g2_isa_active(void) {
    const char *e = getenv("GEMMA2_ISA");
    if (e) {
        for (int i = G2_ISA_SCALAR; i <= G2_ISA_AVX512; i++)
            if (!strcmp(e, g2_isa_name((g2_isa)i)) && g2_isa_available((g2_isa)i)) return (g2_isa)i;
    }
    return best_available(G2_ISA_AVX512);
}

/* vdpbf16ps unless GEMMA2_BF16_DOT=0: it rounds the activations to bf16 (see matmul.h). */
static int bf16_dot_requested(void) {
#if defined(__x86_64__) || defined(__i386__)
    const char *e = getenv("GEMMA2_BF16_DOT");
    return !(e && e[0] == '0') && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

/* Do BF16 products on `isa` run vdpbf16ps on bf16 activations (AVX-512 requested and present,
 * the CPU has AVX512-BF16 and GEMMA2_BF16_DOT is not "0")? */
static int bf16_dot_in_use(g2_isa isa) {
    return isa >= G2_ISA_AVX512 && g2_isa_available(G2_ISA_AVX512) && bf16_dot_requested();
}

const char *gemma2_kernels_in_use(void) {
    const g2_isa isa = g2_isa_active();
    if (bf16_dot_in_use(isa)) return "avx512+bf16dot";
    return g2_isa_name(isa);
}

int g2_kernel_for(g2_isa isa, int type, g2_kernel *k) {
    if (isa >= G2_ISA_AVX512 && g2_isa_available(G2_ISA_AVX512) && g2_kernel_avx512(type, bf16_dot_requested(), k))
        return 1;
    if (isa >= G2_ISA_AVX2 && g2_isa_available(G2_ISA_AVX2) && g2_kernel_avx2(type, k)) return 1;
    return g2_kernel_scalar(type, k);
}
