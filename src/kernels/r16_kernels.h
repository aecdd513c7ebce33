/* r16_kernels.h - internal: what the per-ISA kernel files on the r16 layout (r16_avx512.c,
 * r16_avx2.c; repack.h) share: the prefetch distance and macro, the activation pointers of a
 * tile's tokens, the macros that make entry points out of a kernel template (one instance per
 * token count), and the activation kind each weight type's kernels read. */
#ifndef G2_R16_KERNELS_H
#define G2_R16_KERNELS_H

#include <xmmintrin.h>

#include "gemma2.h"
#include "kernels/kernels_impl.h"
#include "kernels/repack.h"
#include "kernels/tile_cases.h"

/* Software prefetch distance (bytes) ahead in the group stream; groups of a thread's share are
 * contiguous, so a prefetch past a group's end lands in the next group. */
#ifndef R16_PF
#define R16_PF 4096
#endif

/* Prefetches the 64-byte lines [p, p + bytes) when PF (a constant of each instantiation). */
#define R16_PREFETCH(PF, p, bytes)                                                                     \
    do {                                                                                               \
        if (PF)                                                                                        \
            for (int o_ = 0; o_ < (bytes); o_ += 64) _mm_prefetch((const char *)(p) + o_, _MM_HINT_T0); \
    } while (0)

/* q[t], da[t], sa[t]: the int8 values, scales and sums of the NT <= MAX tokens t0.. of a
 * G2_ACT_Q8_32 / G2_ACT_Q8_256 record (kernels_impl.h). */
#define R16_ACT(NT, MAX)                                                                               \
    const int8_t *q[MAX];                                                                              \
    const float *da[MAX];                                                                              \
    const int16_t *sa[MAX];                                                                            \
    G2_UNROLL8                                                                                         \
    for (int t = 0; t < NT; t++) q[t] = g2_act_q(a, t0 + t), da[t] = g2_act_d(a, t0 + t), sa[t] = g2_act_s(a, t0 + t)

/* A template's instance for N tokens, without prefetch (prefill), in a switch over nt. */
#define R16_CASE(F, N) case N: F(N, 0, g, cols, a, t0, y, ldy); break;
#define R16_SWITCH4(F)                                                                                 \
    switch (nt) {                                                                                      \
        R16_CASE(F, 1) R16_CASE(F, 2) R16_CASE(F, 3) R16_CASE(F, 4) default : break;                   \
    }
/* A prefill entry point: the template's instance for nt tokens (SWITCH: a switch of R16_CASEs). */
#define R16_TILE(NAME, SWITCH, TEMPLATE)                                                               \
    static void NAME(const uint8_t *g, int64_t cols, const g2_act *a, int t0, int nt, float *y, size_t ldy) { \
        SWITCH(TEMPLATE)                                                                               \
    }
/* A decode entry point: one token, prefetching. */
#define R16_DECODE(NAME, TILE)                                                                         \
    static void NAME(const uint8_t *g, int64_t cols, const g2_act *a, int t0, int nt, float *y, size_t ldy) { \
        (void)nt;                                                                                      \
        TILE(1, 1, g, cols, a, t0, y, ldy);                                                            \
    }

/* A decode entry point for the int8-activation types: one token, or 2 (a token's two terms,
 * G2_MATMUL_FINE_ACT), prefetching. Their templates compute each token alike whatever NT, so
 * a call for 2 gives the bits of two calls for 1, from one pass over the weights. */
#define R16_DECODE_FINE(NAME, TILE)                                                                    \
    static void NAME(const uint8_t *g, int64_t cols, const g2_act *a, int t0, int nt, float *y, size_t ldy) { \
        if (nt == 2) TILE(2, 1, g, cols, a, t0, y, ldy);                                               \
        else TILE(1, 1, g, cols, a, t0, y, ldy);                                                       \
    }

/* The activation kind each type's r16 kernels read: the plain kernels' (kern_*.c). AVX-512 has
 * a second set for BF16 with G2_ACT_BF16. */
static inline int g2_r16_act(int type) {
    switch (type) {
    case GEMMA2_TYPE_F32:
    case GEMMA2_TYPE_F16:
    case GEMMA2_TYPE_BF16: return G2_ACT_F32;
    case GEMMA2_TYPE_Q8_0:
    case GEMMA2_TYPE_Q4_0: return G2_ACT_Q8_32;
    default: return G2_ACT_Q8_256;
    }
}

#endif
