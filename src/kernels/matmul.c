/* matmul.c - y = W x: activation conversion once per call, then tiles of rows x tokens split
 * across threads by rows. */
#include "kernels/matmul.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_impl.h"
#include "kernels/quantize.h"

/* Weight rows kept in L2 while every token passes over them (prefill). The activations of all
 * tokens stream from L3 once per block, so a bigger block means less of that traffic: 512 KiB
 * (half of a Zen 4 / Ice Lake server L2) measured 1.1-1.3x faster than 256 KiB for F32/BF16
 * with 512 tokens (single thread, 9216 x 2304). */
#ifndef G2_ROW_BLOCK_BYTES
#define G2_ROW_BLOCK_BYTES (512u * 1024u)
#endif

static void compute_rows(const g2_kernel *k, const g2_tensor *w, const g2_act *a, int n, float *y, int64_t r0,
                         int64_t r1) {
    const uint8_t *base = w->data;
    const size_t rb = w->row_bytes, ldy = (size_t)w->rows;
    if (n == 1) { /* decode: stream the rows once */
        for (int64_t r = r0; r < r1; r += k->mr) {
            int nr = (int)(r1 - r < k->mr ? r1 - r : k->mr);
            k->tile(base + (size_t)r * rb, rb, nr, a, 0, 1, y + r, ldy);
        }
        return;
    }
    int64_t block = (int64_t)(G2_ROW_BLOCK_BYTES / (rb ? rb : 1)) / k->mr * k->mr;
    if (block < k->mr) block = k->mr;
    for (int64_t b0 = r0; b0 < r1; b0 += block) {
        const int64_t b1 = b0 + block < r1 ? b0 + block : r1;
        for (int t0 = 0; t0 < n; t0 += k->nt) {
            const int nt = n - t0 < k->nt ? n - t0 : k->nt;
            for (int64_t r = b0; r < b1; r += k->mr) {
                int nr = (int)(b1 - r < k->mr ? b1 - r : k->mr);
                k->tile(base + (size_t)r * rb, rb, nr, a, t0, nt, y + (size_t)t0 * ldy + r, ldy);
            }
        }
    }
}

/* Prefill on repacked panels (kernels_impl.h, g2_panel_ops): pack ~256 KiB of rows, then run
 * every token over them. r0, r1: multiples of 16 (but r1 may be the matrix end). */
static int compute_rows_panel(const g2_kernel *k, const g2_tensor *w, const g2_act *a, int n, float *y, int64_t r0,
                              int64_t r1) {
    const g2_panel_ops *p = k->panel;
    const size_t pb = p->panel_bytes(w->cols), ldy = (size_t)w->rows;
    int64_t per_block = (int64_t)(G2_ROW_BLOCK_BYTES / pb);
    if (per_block < 1) per_block = 1;
    const size_t panels = (pb * (size_t)per_block + 63) & ~(size_t)63;
    uint8_t *buf = aligned_alloc(64, panels + ((G2_PANEL_TMP_BYTES(w->cols) + 63) & ~(size_t)63));
    if (!buf) return -1;
    uint8_t *tmp = buf + panels;
    for (int64_t b0 = r0; b0 < r1; b0 += 16 * per_block) {
        const int64_t b1 = b0 + 16 * per_block < r1 ? b0 + 16 * per_block : r1;
        const int npan = (int)((b1 - b0 + 15) / 16);
        for (int i = 0; i < npan; i++) {
            const int nr = (int)(b1 - b0 - 16 * i < 16 ? b1 - b0 - 16 * i : 16);
            p->pack((const uint8_t *)w->data + (size_t)(b0 + 16 * i) * w->row_bytes, w->row_bytes, nr, w->cols,
                    buf + (size_t)i * pb, tmp);
        }
        for (int t0 = 0; t0 < n; t0 += p->nt_max) {
            const int nt = n - t0 < p->nt_max ? n - t0 : p->nt_max;
            for (int i = 0; i < npan; i++) {
                const int nr = (int)(b1 - b0 - 16 * i < 16 ? b1 - b0 - 16 * i : 16);
                p->run(buf + (size_t)i * pb, nr, a, t0, nt, y + (size_t)t0 * ldy + b0 + 16 * i, ldy);
            }
        }
    }
    free(buf);
    return 0;
}

/* Packing a panel costs about as much as a few tokens' worth of products on it */
#define G2_PANEL_MIN_TOKENS 16

/* Multiply-adds below which one more thread costs more (a fork and a barrier, and under load a
 * time slice of the other thread) than it saves. */
#define G2_MIN_WORK_PER_THREAD (256 * 1024)

int g2_matmul_isa(g2_isa isa, const g2_tensor *w, const float *x, int n, float *y, int n_threads) {
    if (n <= 0 || w->rows <= 0) return 0;
    g2_kernel k;
    if (w->cols <= 0 || !g2_kernel_for(isa, w->type, &k)) { /* empty rows; or a type the loader rejects */
        memset(y, 0, (size_t)n * (size_t)w->rows * sizeof(float));
        return 0;
    }
    g2_act a;
    g2_act_layout(k.act, w->cols, &a);
    uint8_t *buf = NULL;
    if (k.act == G2_ACT_F32) {
        a.base = (const uint8_t *)x;
    } else {
        buf = aligned_alloc(64, a.stride * (size_t)n);
        if (!buf) return -1;
        a.base = buf;
    }
    if (n_threads <= 0) n_threads = omp_get_max_threads();
    const double work = (double)w->rows * (double)w->cols * n;
    if (work < (double)G2_MIN_WORK_PER_THREAD * n_threads) n_threads = (int)(work / G2_MIN_WORK_PER_THREAD) + 1;
    const int use_panel = k.panel != NULL && n >= G2_PANEL_MIN_TOKENS;
    const int unit = use_panel ? 16 : k.mr;
    const int64_t units = (w->rows + unit - 1) / unit; /* row tiles: the unit of work split */
    if (n_threads > units) n_threads = (int)units;
    int failed = 0;
#pragma omp parallel num_threads(n_threads)
    {
        if (buf) {
#pragma omp for schedule(static)
            for (int t = 0; t < n; t++) g2_act_convert(k.act, &a, x + (size_t)t * (size_t)w->cols, buf + (size_t)t * a.stride);
        }
        /* contiguous, even shares of row tiles: each thread streams its own part of W */
        const int64_t nth = omp_get_num_threads(), id = omp_get_thread_num();
        int64_t r0 = units * id / nth * unit, r1 = units * (id + 1) / nth * unit;
        if (r1 > w->rows) r1 = w->rows;
        if (use_panel) {
            if (compute_rows_panel(&k, w, &a, n, y, r0, r1)) failed = 1;
        } else {
            compute_rows(&k, w, &a, n, y, r0, r1);
        }
    }
    free(buf);
    return failed ? -1 : 0;
}

int g2_matmul(const g2_tensor *w, const float *x, int n, float *y, int n_threads) {
    return g2_matmul_isa(g2_isa_active(), w, x, n, y, n_threads);
}

void g2_tensor_row_f32(const g2_tensor *w, int64_t r, float *out) {
    g2_dequantize_row(w->type, (const uint8_t *)w->data + (size_t)r * w->row_bytes, out, w->cols);
}

float g2_dot_row(int type, const void *row, const float *x, int64_t n) {
    g2_tensor t = {row, type, 1, n, 0};
    float y = 0;
    g2_matmul(&t, x, 1, &y, 1);
    return y;
}
