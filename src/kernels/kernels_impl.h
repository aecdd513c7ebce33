/* kernels_impl.h - internal: activation formats and the per-type, per-ISA tile kernels behind
 * matmul.h.
 *
 * A product runs in two steps: the fp32 activations are converted once per call into the
 * format the weight type's kernel consumes (g2_act_kind), then a tile kernel computes the dot
 * products of up to `mr` consecutive weight rows with up to `nt` tokens, reading each weight
 * byte once per tile (so once per `nt` tokens) and each activation once per `mr` rows. */
#ifndef G2_KERNELS_IMPL_H
#define G2_KERNELS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/matmul.h"

typedef enum {
    /* fp32 as given (F32, BF16, F16 weights: exact products, fp32 accumulation) */
    G2_ACT_F32,
    /* int8 per 32 elements with an fp32 scale (for Q8_0, Q4_0): per token
     * int8 q[cols] | pad to 64 | float d[cols/32] | pad | int16 sum[cols/32] (sums of q) */
    G2_ACT_Q8_32,
    /* int8 per 256 elements with an fp32 scale and the sums of each 16 (for Q4_K, Q6_K; ggml's
     * Q8_K): int8 q[cols] | pad | float d[cols/256] | pad | int16 bsum[cols/16] */
    G2_ACT_Q8_256,
    /* bf16 (round to nearest even) for the vdpbf16ps path (AVX512-BF16, unless GEMMA2_BF16_DOT=0) */
    G2_ACT_BF16,
} g2_act_kind;

typedef struct g2_act_rec {
    const uint8_t *base; /* token 0's record */
    size_t stride;       /* bytes from one token's record to the next */
    int64_t cols;
    size_t off_d, off_s; /* offsets of the scales and the sums inside a record (Q8 kinds) */
} g2_act;

/* Layout of `kind` for rows of `cols` elements: fills stride/off_d/off_s (not base). */
void g2_act_layout(g2_act_kind kind, int64_t cols, g2_act *a);
/* Converts token x (cols floats) into record `dst` of the layout. The same code on every ISA,
 * so that every path sees bit-identical activations (the paths then differ only in the order
 * of fp32 additions). */
void g2_act_convert(g2_act_kind kind, const g2_act *a, const float *x, uint8_t *dst);
/* The Q8 kinds' second term (G2_MATMUL_FINE_ACT): the residual x - d * q of token x's record
 * `prev`, converted into `dst` in the same format. A product over both records sums to that of x
 * quantized to ~15 bits (the residual's int8 step is 1/254 of the first's). Other kinds: nothing. */
void g2_act_convert_residual(g2_act_kind kind, const g2_act *a, const float *x, const uint8_t *prev, uint8_t *dst);

/* y[t * ldy + r] = dot(weight row r, token t) for r < nr <= mr, t < nt <= nt_max; in decode
 * (nt = 1) nr <= decode_rows.
 * w: row 0 of the tile; a: the activations; t0: first token of the tile. */
typedef void (*g2_tile_fn)(const uint8_t *w, size_t row_bytes, int nr, const g2_act *a, int t0, int nt, float *y,
                           size_t ldy);

typedef struct {
    g2_act_kind act;
    int mr, nt;      /* the tile's maximum rows and tokens */
    int decode_rows; /* its maximum rows with one token (>= mr): more where the kernel prepares
                        the activations once per call for all its rows */
    g2_tile_fn tile;
} g2_kernel;

/* The kernel for `type` on one instruction set; 0 when that set has none for the type (the
 * dispatcher then uses the next lower set). `bf16_dot`: use vdpbf16ps for BF16 weights. */
int g2_kernel_scalar(int type, g2_kernel *k);
int g2_kernel_avx2(int type, g2_kernel *k);
int g2_kernel_avx512(int type, int bf16_dot, g2_kernel *k);

/* The kernel actually used for (isa, type): falls back down the ISAs. 0 if the type has none. */
int g2_kernel_for(g2_isa isa, int type, g2_kernel *k);

static inline const int8_t *g2_act_q(const g2_act *a, int t) { return (const int8_t *)(a->base + (size_t)t * a->stride); }
static inline const float *g2_act_d(const g2_act *a, int t) { return (const float *)(a->base + (size_t)t * a->stride + a->off_d); }
static inline const int16_t *g2_act_s(const g2_act *a, int t) {
    return (const int16_t *)(a->base + (size_t)t * a->stride + a->off_s);
}
static inline const float *g2_act_f32(const g2_act *a, int t) { return (const float *)(a->base + (size_t)t * a->stride); }

#endif
