/* repack.h - internal: the "r16" weight layout, 16 rows interleaved, for fast decode.
 *
 * Decoding multiplies each weight matrix by one vector. With rows stored one after another,
 * every row needs its own horizontal sum, its own per-block scale arithmetic and its own pass
 * over the activations (which for long rows, such as the 2B model's FFN down projection with
 * 9216 fp32 activations, no longer fit in L1). In the r16 layout a group of 16 consecutive rows
 * is stored column-interleaved, so that one 64-byte vector holds the same few columns of all 16
 * rows: a vector FMA / vpdpbusd against a broadcast activation then advances 16 dot products at
 * once, one per lane, with no horizontal sums and one scale vector per block for 16 rows. This
 * is the idea of llama.cpp's "repacked" CPU buffers (Q4_0 8x8), with 16 rows to fill a 512-bit
 * register.
 *
 * On AVX2 each 64-byte vector is used as two halves: rows 0-7 and rows 8-15.
 *
 * Layouts of one group (16 rows, the same bytes as the 16 rows stored plainly):
 *  - F32, F16: for each column c: the 16 rows' elements of column c (64 or 32 bytes).
 *  - BF16: for each pair of columns p: 16 x 4 bytes, row r's elements 2p and 2p+1 at 4r.
 *  - Q4_0: for each block b of 32 columns: the 16 rows' fp16 scales (32 bytes), then 4 vectors
 *    of 64 bytes; in vector j, byte 4r+i holds row r's quant of element 8j+i (low nibble) and
 *    of element 8j+4+i (high nibble). 288 bytes = 16 x 18.
 *  - Q8_0: per block of 32 columns: the 16 fp16 scales, then 8 vectors; in vector j, byte 4r+i
 *    holds row r's quant of element 4j+i with its sign bit flipped (q + 128, unsigned for
 *    vpdpbusd). 544 bytes = 16 x 34.
 *  - Q4_K, per super-block of 256 columns (2304 bytes = 16 x 144): d[16], dmin[16], the 8 x 16
 *    six-bit scales and mins (96 bytes each: low nibbles, then the top 2 bits), the quants as in
 *    Q4_0 (32 vectors).
 *  - Q6_K, per super-block (3360 bytes = 16 x 210): d[16], the int8 scales per sub-block of 16
 *    (16 x 16 bytes), the low 4 bits as in Q4_0 (32 vectors), the high 2 bits (16 vectors: in
 *    vector h, byte 4r+i holds element 16h+4m+i's bits at bit 2m).
 *
 * A tensor is repacked in place at load time (gemma2_model_open with GEMMA2_LOAD_READ, where
 * the weights live in memory the process owns) and marked with layout G2_LAYOUT_R16; g2_matmul
 * reads either layout. Tensors whose row count is not a multiple of 16 stay as they are. An
 * r16e tensor (below) is instead packed as it is read from its file (g2_tensor_pack_r16e_streamed).
 *
 * r16e (G2_LAYOUT_R16E, bf16_codes.c): BF16 groups in 12 bits a weight, losslessly, a sign and
 * mantissa byte and a 4-bit code of the exponent; the layout of a group is in bf16_codes.c.
 * Where the CPU's best kernels are AVX2's, or AVX-512's with BF16 products on bf16 activations
 * (vdpbf16ps, the default on AVX512-BF16 CPUs), BF16 tensors are stored so (decode reads 0.75 of
 * the bytes, products bit-identical to r16's on the same ISA), and so are F16 tensors whose every
 * value is a BF16 value (an F16 file converted from a BF16 checkpoint): they become BF16 tensors
 * of the same values (on AVX-512 their products then take bf16 activations, as BF16's do).
 * GEMMA2_BF16_CODES=0 keeps them r16. The groups lie
 * G2_R16E_GROUP_BYTES(cols) apart from the tensor's start; the rest of its bytes are unused. */
#ifndef G2_REPACK_H
#define G2_REPACK_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/matmul.h"

#define G2_R16 16

/* Does the instruction set in use (g2_isa_active) have r16 kernels? AVX-512 (r16_avx512.c) and
 * AVX2 (r16_avx2.c) have; the scalar path would unpack every group on every product, which
 * made decode 25x slower when AVX2 had none (Q4_0 2B: 0.52 against 13.4 t/s plain), so a model
 * is repacked only when this is true. */
int g2_r16_kernels_available(void);

/* Can a [rows][cols] tensor of `type` be stored in the r16 layout? */
int g2_r16_supported(int type, int64_t rows, int64_t cols);

/* One group: 16 plain rows (row r at src + r * row_bytes) into the r16 layout at dst (16 *
 * row_bytes bytes), and back. src and dst must not overlap. */
void g2_r16_pack_group(int type, int64_t cols, const uint8_t *src, size_t row_bytes, uint8_t *dst);
void g2_r16_unpack_group(int type, int64_t cols, const uint8_t *src, uint8_t *dst, size_t row_bytes);

/* One r16 BF16 group (cols columns) as the r16 F32 group of the same values (exact), at dst
 * (16 * cols * 4 bytes): AVX2 prefill runs BF16 blocks through the F32 tile (matmul.c). */
void g2_r16_widen_bf16_group(int64_t cols, const uint8_t *src, uint8_t *dst);
/* The same for an r16 Q8_0 group: its values d * q, exact (AVX2 + FMA CPUs only; r16_avx2.c).
 * AVX2 prefill of 64 tokens or more runs Q8_0 products that ask for two-term activations
 * (G2_MATMUL_FINE_ACT) through the F32 tile on such groups instead (matmul.c). */
void g2_r16_widen_q8_0_group_avx2(int64_t cols, const uint8_t *src, uint8_t *dst);
/* And for r16 Q4_K and Q6_K groups: g2_dequantize_row's values (Q4_K_M's query, key and value
 * products take two-term activations too). */
void g2_r16_widen_q4_k_group_avx2(int64_t cols, const uint8_t *src, uint8_t *dst);
void g2_r16_widen_q6_k_group_avx2(int64_t cols, const uint8_t *src, uint8_t *dst);

/* r16e: escapes a group may hold (exponents outside its 15 codes), the bytes of a group */
#define G2_R16E_ESC 64
#define G2_R16E_GROUP_BYTES(cols) ((size_t)32 + (size_t)(cols) / 2 * 48 + G2_R16E_ESC)
/* 16 plain BF16 rows (row r at src + r * row_bytes; cols even) into an r16e group at dst
 * (G2_R16E_GROUP_BYTES(cols); dst must not overlap src). Returns 0, or 1 when the rows need
 * more than G2_R16E_ESC escapes (dst's bytes then undefined). And back to plain rows: */
int g2_r16e_pack_group(int64_t cols, const uint8_t *src, size_t row_bytes, uint8_t *dst);
void g2_r16e_unpack_group(int64_t cols, const uint8_t *src, uint8_t *dst, size_t row_bytes);
/* AVX2 (r16_avx2.c): decode of one r16e group (fp32 activations, the r16 BF16 decode kernel's
 * products in its order: the same bits), and the group widened into the r16 F32 group of the
 * same values (16 * cols * 4 bytes at dst), for prefill through the F32 tile. */
void g2_r16e_decode_avx2(const uint8_t *group, int64_t cols, const float *x, float *y);
void g2_r16e_widen_group_avx2(int64_t cols, const uint8_t *src, uint8_t *dst);
/* An r16e group as the r16 BF16 group of the same values (16 * cols * 2 bytes at dst): AVX-512
 * prefill runs r16e tensors through its r16 BF16 tiles (matmul.c). */
void g2_r16e_to_r16_group_avx2(int64_t cols, const uint8_t *src, uint8_t *dst);
/* AVX-512 + AVX512-BF16 (r16_avx512.c): decode of one r16e group with bf16 activations (x: a
 * G2_ACT_BF16 record), the products and order of the r16 BF16 kernel with vdpbf16ps. */
void g2_r16e_decode_bf16dot_avx512(const uint8_t *group, int64_t cols, const uint8_t *x, float *y);
/* AVX-512 (r16_avx512.c): decode of one r16e group with fp32 activations, the products and
 * order of the r16 BF16 kernel with fp32 FMAs (exact products). */
void g2_r16e_decode_avx512(const uint8_t *group, int64_t cols, const float *x, float *y);
/* AVX2 + F16C (r16_avx2.c): n fp16 values at src (n a multiple of 16) as bf16 at dst; returns 0
 * when every one was a bf16 value (exact), 1 when one was not (dst then holds truncations). */
int g2_f16_to_bf16_exact_avx2(const uint8_t *src, uint8_t *dst, size_t n);

/* Does a BF16 tensor (or an F16 one whose values are all BF16 values) get r16e now? When the
 * active ISA is AVX2 or AVX-512 (r16e has decode kernels for both, with fp32 activations and,
 * on AVX-512, bf16 ones too), and GEMMA2_BF16_CODES is not "0". Tensors of 12 columns or fewer
 * never do (a group would take as many bytes or more). */
int g2_r16e_wanted(void);

/* Repacks a plain tensor in place (its data must be writable) and sets t->layout (r16, or r16e
 * for BF16 where g2_r16e_wanted and every group fits; F16 too when its values are BF16 values,
 * and t->type becomes BF16); splits the groups across n_threads OpenMP
 * threads. Returns 0, 1 when the tensor is not supported (left as it is), -1 when a scratch
 * buffer could not be allocated (left as it is). */
int g2_tensor_repack_r16(g2_tensor *t, int n_threads);

/* Would g2_tensor_repack_r16 try r16e for t now? (BF16, or F16 of even columns, of a shape r16
 * takes and 14 columns or more, in plain rows, where g2_r16e_wanted.) */
int g2_r16e_candidate(const g2_tensor *t);

/* Reads n bytes of a tensor's plain rows, from byte `off` of its first row, into dst: 0, or -1
 * when the read fails. */
typedef int (*g2_tensor_reader)(void *ctx, size_t off, void *dst, size_t n);

/* Repacks t as g2_tensor_repack_r16 does, but t's rows are not in memory yet: t->data is where
 * they belong (writable, its contents unused) and `read` fetches them. An r16e candidate is read
 * a group at a time into scratch and packed straight to its place, so only the packed bytes of
 * t->data are ever written: the quarter r16e saves is never touched, and the load needs neither
 * the plain copy nor the move of the groups. When a group does not fit (or an F16 value is not a
 * BF16 value), every row is read into place and the tensor goes r16 as it is. Any other tensor
 * is read into place and repacked. Returns 0, -1 when out of memory, -2 when a read failed
 * (t->data then partly written, t's layout unchanged). */
int g2_tensor_pack_r16e_streamed(g2_tensor *t, int n_threads, g2_tensor_reader read, void *ctx);

/* Kernels on r16 groups (AVX-512): y[t * ldy + r] for r < 16, t < nt, tokens t0.. of the
 * activations a (kernels_impl.h: fp32 for F32, F16 and BF16, or bf16 for BF16; G2_ACT_Q8_32
 * for Q8_0 and Q4_0; G2_ACT_Q8_256 for Q4_K / Q6_K). */
struct g2_act_rec; /* g2_act, kernels_impl.h */
typedef void (*g2_r16_tile_fn)(const uint8_t *group, int64_t cols, const struct g2_act_rec *a, int t0, int nt, float *y,
                               size_t ldy);
/* Prefill on activations of kind `act` (g2_act_kind: G2_ACT_F32 for F32 and F16; for BF16,
 * G2_ACT_BF16 on AVX512-BF16 CPUs or G2_ACT_F32 with GEMMA2_BF16_DOT=0; G2_ACT_Q8_32 for Q8_0,
 * Q4_0; G2_ACT_Q8_256 for Q4_K, Q6_K): nt up to the returned maximum; returns 0 (and leaves fn)
 * when there is no kernel for the pair. */
int g2_r16_tile_avx512(int type, int act, g2_r16_tile_fn *fn);
/* Decode: nt = 1, streaming the group with software prefetch; NULL when there is no kernel. */
g2_r16_tile_fn g2_r16_decode_avx512(int type, int act);
/* The same on AVX2 + FMA (r16_avx2.c): prefill up to 4 tokens a pass (BF16: 2; matmul.c runs
 * BF16 prefill of 16 tokens or more through the F32 tile on widened groups instead). */
int g2_r16_tile_avx2(int type, int act, g2_r16_tile_fn *fn);
g2_r16_tile_fn g2_r16_decode_avx2(int type, int act);

#endif
