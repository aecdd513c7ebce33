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

typedef struct {
    const void *data;
    int type; /* gemma2_weight_type */
    int64_t rows, cols;
    size_t row_bytes;
} g2_tensor;

/* y[t][r] = sum_c W[r][c] * x[t][c] for t < n, r < rows.  x: [n][cols], y: [n][rows].
 * Split across n_threads OpenMP threads (0 = OpenMP's default). */
void g2_matmul(const g2_tensor *w, const float *x, int n, float *y, int n_threads);

/* Row r of W converted to fp32 (an embedding lookup). */
void g2_tensor_row_f32(const g2_tensor *w, int64_t r, float *out);

/* The dot product of one stored row with fp32 x (n elements, a multiple of the block). */
float g2_dot_row(int type, const void *row, const float *x, int64_t n);

#endif
