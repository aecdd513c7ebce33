/* repack.c - the r16 layout (repack.h): packing and unpacking of 16-row groups, in portable C. */
#include "kernels/repack.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "gemma2.h"
#include "kernels/types.h"

int g2_r16_supported(int type, int64_t rows, int64_t cols) {
    if (rows <= 0 || rows % G2_R16 || cols <= 0) return 0;
    switch (type) {
    case GEMMA2_TYPE_BF16: return cols % 2 == 0;
    case GEMMA2_TYPE_Q4_0: return cols % 32 == 0;
    default: return 0;
    }
}

/* The 4-bit value of element e (0..31) of a Q4_0 block's 16 quant bytes (types.h). */
static inline unsigned q4_0_get(const uint8_t *qs, int e) { return e < 16 ? qs[e] & 0x0F : qs[e - 16] >> 4; }
static inline void q4_0_set(uint8_t *qs, int e, unsigned v) {
    if (e < 16) qs[e] = (uint8_t)((qs[e] & 0xF0) | v);
    else qs[e - 16] = (uint8_t)((qs[e - 16] & 0x0F) | (v << 4));
}

/* Q4_0 block b of rows 0..15 <-> its 288-byte r16 block (pack when `to_r16`, else unpack). */
static void q4_0_block(int to_r16, uint8_t *plain, size_t row_bytes, int64_t b, uint8_t *g) {
    for (int r = 0; r < G2_R16; r++) {
        uint8_t *blk = plain + (size_t)r * row_bytes + (size_t)b * 18;
        if (to_r16) memcpy(g + 2 * r, blk, 2);
        else memcpy(blk, g + 2 * r, 2);
        for (int j = 0; j < 4; j++)
            for (int i = 0; i < 4; i++) {
                uint8_t *v = g + 32 + 64 * j + 4 * r + i;
                if (to_r16) {
                    *v = (uint8_t)(q4_0_get(blk + 2, 8 * j + i) | q4_0_get(blk + 2, 8 * j + 4 + i) << 4);
                } else {
                    q4_0_set(blk + 2, 8 * j + i, *v & 0x0F);
                    q4_0_set(blk + 2, 8 * j + 4 + i, *v >> 4);
                }
            }
    }
}

static void group(int to_r16, int type, int64_t cols, uint8_t *plain, size_t row_bytes, uint8_t *g) {
    if (type == GEMMA2_TYPE_BF16) {
        for (int64_t p = 0; p < cols / 2; p++)
            for (int r = 0; r < G2_R16; r++) {
                uint8_t *e = plain + (size_t)r * row_bytes + (size_t)p * 4, *v = g + (size_t)p * 64 + 4 * r;
                if (to_r16) memcpy(v, e, 4);
                else memcpy(e, v, 4);
            }
    } else { /* Q4_0 */
        for (int64_t b = 0; b < cols / 32; b++) q4_0_block(to_r16, plain, row_bytes, b, g + (size_t)b * 288);
    }
}

void g2_r16_pack_group(int type, int64_t cols, const uint8_t *src, size_t row_bytes, uint8_t *dst) {
    group(1, type, cols, (uint8_t *)src, row_bytes, dst); /* src is only read when packing */
}

void g2_r16_unpack_group(int type, int64_t cols, const uint8_t *src, uint8_t *dst, size_t row_bytes) {
    group(0, type, cols, dst, row_bytes, (uint8_t *)src); /* src is only read when unpacking */
}

int g2_tensor_repack_r16(g2_tensor *t, int n_threads) {
    if (t->layout != G2_LAYOUT_ROWS || !g2_r16_supported(t->type, t->rows, t->cols)) return 1;
    const size_t gbytes = t->row_bytes * G2_R16;
    const int64_t groups = t->rows / G2_R16;
    if (n_threads <= 0) n_threads = omp_get_max_threads();
    if (n_threads > groups) n_threads = (int)groups;
    /* scratch for every thread first: all or nothing, never a tensor left half repacked */
    uint8_t *scratch = malloc(gbytes * (size_t)n_threads);
    if (!scratch) return -1;
    uint8_t *data = (uint8_t *)t->data;
#pragma omp parallel num_threads(n_threads)
    {
        uint8_t *tmp = scratch + gbytes * (size_t)omp_get_thread_num();
#pragma omp for schedule(static)
        for (int64_t gi = 0; gi < groups; gi++) {
            uint8_t *g = data + (size_t)gi * gbytes;
            memcpy(tmp, g, gbytes);
            g2_r16_pack_group(t->type, t->cols, tmp, t->row_bytes, g);
        }
    }
    free(scratch);
    t->layout = G2_LAYOUT_R16;
    return 0;
}
