/* quantize.h - fp32 <-> the GGUF block types, bit-compatible with ggml.
 *
 * The quantizers reproduce ggml's reference quantizers (quantize_row_*_ref in ggml-quants.c,
 * which llama.cpp's quantize tool also uses when no importance matrix is given), operation for
 * operation, so that a row we write is byte-identical to what llama.cpp would write and
 * llama.cpp loads our files as its own. tests/unit/test_kernels.c checks this against hashes
 * of ggml's output for fixed inputs.
 *
 * Block layouts (little-endian, packed, as ggml-common.h):
 *   Q8_0 (34 B / 32):  f16 d; int8 qs[32]                      w = d * qs[i]
 *   Q4_0 (18 B / 32):  f16 d; u8 qs[16]  elements i and i+16 share byte i (low, high nibble)
 *                                                               w = d * (nibble - 8)
 *   Q4_K (144 B/256):  f16 d; f16 dmin; u8 scales[12] (8 six-bit scales + 8 six-bit mins);
 *                      u8 qs[128]: per 64 elements, 32 bytes: low nibbles = elements 0..31,
 *                      high nibbles = 32..63 of that group       w = d*sc[j]*q - dmin*m[j]
 *   Q6_K (210 B/256):  u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d
 *                                                               w = d * scales[i/16] * (q - 32)
 * n must be a multiple of the block (32 or 256); callers check (g2_type_row_bytes() == 0 means
 * it is not) and fall back to another type. */
#ifndef G2_QUANTIZE_H
#define G2_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

void g2_quantize_row_q8_0(const float *x, void *out, int64_t n);
void g2_quantize_row_q4_0(const float *x, void *out, int64_t n);
void g2_quantize_row_q4_k(const float *x, void *out, int64_t n);
void g2_quantize_row_q6_k(const float *x, void *out, int64_t n);
void g2_quantize_row_bf16(const float *x, void *out, int64_t n); /* round to nearest even */
void g2_quantize_row_f16(const float *x, void *out, int64_t n);

/* Quantize a row of n elements to `type` (gemma2_weight_type: F32, F16, BF16, Q8_0, Q4_0,
 * Q4_K, Q6_K). Returns the bytes written (g2_type_row_bytes), 0 for an unsupported type or
 * an n that is not a multiple of the block. */
size_t g2_quantize_row(int type, const float *x, void *out, int64_t n);

/* The inverse: a stored row of n elements to fp32 (exact: every stored value is a float). */
void g2_dequantize_row(int type, const void *row, float *out, int64_t n);

#endif
