/* matmul.h - products of stored weight matrices with fp32 activations.
 *
 * A weight matrix is row-major [rows][cols] in its stored type (F32, BF16, F16, Q8_0, ...),
 * exactly as the file holds it (HF [out, in]; GGUF ne = {in, out}): y = W x computes one
 * dot product per row. Activations are fp32; each dot product accumulates in fp32.
 *
 * Dispatch: the best kernel set the CPU supports (AVX-512, AVX2, portable C) is chosen on
 * each call from the CPU's features; GEMMA2_ISA=scalar|avx2|avx512 forces one (tests use
 * this to cover every path the CPU has). */
#ifndef G2_MATMUL_H
#define G2_MATMUL_H

#include <stddef.h>
#include <stdint.h>

/* How the rows are stored: one after another (as in the file), in interleaved groups of 16, or
 * (BF16 values on AVX2) in such groups with 4-bit exponent codes, 12 bits a weight (kernels/repack.h:
 * set by g2_tensor_repack_r16 at load time, for faster decode). */
typedef enum { G2_LAYOUT_ROWS = 0, G2_LAYOUT_R16 = 1, G2_LAYOUT_R16E = 2 } g2_layout;

typedef struct {
    const void *data;
    int type; /* gemma2_weight_type */
    int64_t rows, cols;
    size_t row_bytes; /* bytes of one plain row (a group of 16 is 16 * row_bytes, in r16e
                         G2_R16E_GROUP_BYTES(cols)) */
    g2_layout layout; /* G2_LAYOUT_ROWS unless repacked */
} g2_tensor;

/* y[t][r] = sum_c W[r][c] * x[t][c] for t < n, r < rows.  x: [n][cols], y: [n][rows].
 * Split across at most n_threads OpenMP threads (0 = OpenMP's default), fewer for small products.
 * Returns 0, or -1 when a scratch buffer could not be allocated (y is then incomplete).
 * Precision: F32/BF16/F16 weights multiply the fp32 activations exactly and accumulate in fp32.
 * Q8_0/Q4_0/Q4_K/Q6_K weights multiply int8-quantized activations (as llama.cpp does: per 32
 * elements for Q8_0/Q4_0, per 256 for the K types) with integer dot products; the result is
 * that of the dequantized weights times the quantized activations, summed in fp32.
 * BF16 weights on AVX512-BF16 CPUs: the activations are rounded to bf16 for vdpbf16ps, as
 * llama.cpp does (2x the fp32 FMA rate in prefill; 2^-9 relative error per activation, about
 * 4e-3 relative in the logits; docs/kernels.md); GEMMA2_BF16_DOT=0 keeps them fp32 (exact
 * products). */
int g2_matmul(const g2_tensor *w, const float *x, int n, float *y, int n_threads);

/* Several products with the same activations x (the same column count), e.g. the query, key
 * and value projections: ys[i] = ws[i] x. Equal to count g2_matmul calls, but in one parallel
 * region when the matrices share the activation format (one conversion, one barrier): in
 * decode a fork and a barrier cost a noticeable part of a small product. */
#define G2_MATMUL_MANY_MAX 4
/* flags: 0 or these ORed. G2_MATMUL_FINE_ACT: quantized weights (Q8_0/Q4_0/Q4_K/Q6_K) multiply the
 * activations in two int8 terms, x ~ d q + d' q' with q' the residual x - d q quantized in turn
 * (its step 1/254 of d's or finer): about 15 bits per activation instead of 8, for 2x the
 * arithmetic and the same weight traffic. The model uses it for the query, key and value
 * projections, where int8 activations cost the most accuracy (docs/kernels.md). Q8_0 on AVX2
 * with 64 tokens or more takes the fp32 activations themselves instead, on weights widened to
 * fp32 (cheaper there than two int8 terms). Other weight types: no effect. */
#define G2_MATMUL_FINE_ACT 1u
/* G2_MATMUL_ONE_ROW: plain rows go through the kernels one at a time instead of in tiles of
 * several rows, so that a thread reads one sequential stream. For products with few tokens
 * that read their matrix from memory once (decode attention over the KV cache, 2 query heads
 * a product); the tiles read 4 rows side by side, which pays when the tokens are many. */
#define G2_MATMUL_ONE_ROW 2u
int g2_matmul_many(const g2_tensor *const *ws, float *const *ys, int count, const float *x, int n, unsigned flags,
                   int n_threads);

/* Instruction sets the kernels are built for. */
typedef enum { G2_ISA_SCALAR = 0, G2_ISA_AVX2 = 1, G2_ISA_AVX512 = 2 } g2_isa;
/* Does this CPU run `isa`? (AVX2: AVX2+FMA+F16C; AVX512: F+BW+VL+DQ+VNNI.) */
int g2_isa_available(g2_isa isa);
/* The set g2_matmul uses now: the best available, or GEMMA2_ISA=scalar|avx2|avx512 when that
 * names an available one (an unavailable or unknown name falls back to the best). Read on every
 * call: nothing is cached. */
g2_isa g2_isa_active(void);
const char *g2_isa_name(g2_isa isa);
/* g2_matmul on a given instruction set (tests, benchmarks). An unavailable isa runs the best
 * available one below it. */
int g2_matmul_isa(g2_isa isa, const g2_tensor *w, const float *x, int n, float *y, int n_threads);
int g2_matmul_many_isa(g2_isa isa, const g2_tensor *const *ws, float *const *ys, int count, const float *x, int n,
                       unsigned flags, int n_threads);

/* Row r of W converted to fp32 (an embedding lookup); any layout. */
void g2_tensor_row_f32(const g2_tensor *w, int64_t r, float *out);

/* The dot product of one stored row with fp32 x (n elements, a multiple of the block). */
float g2_dot_row(int type, const void *row, const float *x, int64_t n);

#endif
