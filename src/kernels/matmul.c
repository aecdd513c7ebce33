/* matmul.c - y = W x over rows, split across threads. */
#include "kernels/matmul.h"

#include <omp.h>

#include "kernels/kernels_impl.h"

void g2_matmul(const g2_tensor *w, const float *x, int n, float *y, int n_threads) {
    g2_dot_fn dot = g2_dot_for_type(w->type);
    const int64_t rows = w->rows, cols = w->cols;
    const uint8_t *base = w->data;
    if (n_threads <= 0) n_threads = omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(n_threads)
    for (int64_t r = 0; r < rows; r++) {
        const void *row = base + (size_t)r * w->row_bytes;
        for (int t = 0; t < n; t++) y[(size_t)t * rows + r] = dot(row, x + (size_t)t * cols, cols);
    }
}

void g2_tensor_row_f32(const g2_tensor *w, int64_t r, float *out) {
    g2_row_to_f32(w->type, (const uint8_t *)w->data + (size_t)r * w->row_bytes, out, w->cols);
}

float g2_dot_row(int type, const void *row, const float *x, int64_t n) { return g2_dot_for_type(type)(row, x, n); }
