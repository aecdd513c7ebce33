/* repack.c - the r16 layout (repack.h): packing and unpacking of 16-row groups, in portable C. */
#include "kernels/repack.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "gemma2.h"
#include "kernels/types.h"

int g2_r16_kernels_available(void) { return g2_isa_active() >= G2_ISA_AVX2; }

int g2_r16_supported(int type, int64_t rows, int64_t cols) {
    if (rows <= 0 || rows % G2_R16 || cols <= 0) return 0;
    switch (type) {
    case GEMMA2_TYPE_F32:
    case GEMMA2_TYPE_F16: return 1;
    case GEMMA2_TYPE_BF16: return cols % 2 == 0;
    case GEMMA2_TYPE_Q8_0:
    case GEMMA2_TYPE_Q4_0: return cols % 32 == 0;
    case GEMMA2_TYPE_Q4_K:
    case GEMMA2_TYPE_Q6_K: return cols % 256 == 0;
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

/* Q8_0 block b of rows 0..15 <-> its 544-byte r16 block: d[16] | 8 vectors, vector j lane r =
 * elements 4j..4j+3 of row r with the sign bit flipped (q + 128: unsigned, for vpdpbusd). */
static void q8_0_block(int to_r16, uint8_t *plain, size_t row_bytes, int64_t b, uint8_t *g) {
    for (int r = 0; r < G2_R16; r++) {
        uint8_t *blk = plain + (size_t)r * row_bytes + (size_t)b * 34;
        if (to_r16) memcpy(g + 2 * r, blk, 2);
        else memcpy(blk, g + 2 * r, 2);
        for (int e = 0; e < 32; e++) {
            uint8_t *v = g + 32 + 64 * (e / 4) + 4 * r + e % 4;
            if (to_r16) *v = blk[2 + e] ^ 0x80;
            else blk[2 + e] = *v ^ 0x80;
        }
    }
}

/* ---- Q6_K: a plain block <-> its fields: q[256] (0..63), the 16 int8 scales, d ---------- */
static void q6k_get(const uint8_t *b, uint8_t *q) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *ql = b + 64 * h, qh = b[128 + 32 * h + l];
            q[128 * h + l] = (uint8_t)((ql[l] & 0xF) | ((qh >> 0) & 3) << 4);
            q[128 * h + l + 32] = (uint8_t)((ql[l + 32] & 0xF) | ((qh >> 2) & 3) << 4);
            q[128 * h + l + 64] = (uint8_t)((ql[l] >> 4) | ((qh >> 4) & 3) << 4);
            q[128 * h + l + 96] = (uint8_t)((ql[l + 32] >> 4) | ((qh >> 6) & 3) << 4);
        }
}
static void q6k_set(uint8_t *b, const uint8_t *q) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *v = q + 128 * h + l;
            b[64 * h + l] = (uint8_t)((v[0] & 0xF) | (v[64] & 0xF) << 4);
            b[64 * h + l + 32] = (uint8_t)((v[32] & 0xF) | (v[96] & 0xF) << 4);
            b[128 + 32 * h + l] = (uint8_t)((v[0] >> 4) | (v[32] >> 4) << 2 | (v[64] >> 4) << 4 | (v[96] >> 4) << 6);
        }
}

/* r16 Q6_K super-block (3360 bytes): d[16] | scales, per sub-block k of 16 elements the 16 rows'
 * int8 (256) | low 4 bits as in Q4_0 (32 vectors: vector g, lane r, byte i: element 8g+i in the
 * low nibble, 8g+4+i in the high one) | high 2 bits (16 vectors: vector h, lane r, byte i: bits
 * 2m..2m+1 = element 16h+4m+i). */
static void q6k_block(int to_r16, uint8_t *plain, size_t row_bytes, int64_t sb, uint8_t *g) {
    uint8_t q[256];
    for (int r = 0; r < G2_R16; r++) {
        uint8_t *b = plain + (size_t)r * row_bytes + (size_t)sb * 210;
        if (to_r16) {
            q6k_get(b, q);
            memcpy(g + 2 * r, b + 208, 2);
            for (int k = 0; k < 16; k++) g[32 + 16 * k + r] = b[192 + k];
        } else {
            memcpy(b + 208, g + 2 * r, 2);
            for (int k = 0; k < 16; k++) b[192 + k] = g[32 + 16 * k + r];
        }
        for (int e = 0; e < 256; e++) {
            uint8_t *lo = g + 288 + 64 * (e / 8) + 4 * r + e % 4, *hi = g + 2336 + 64 * (e / 16) + 4 * r + e % 4;
            const int lsh = e % 8 < 4 ? 0 : 4, hsh = 2 * (e % 16 / 4);
            if (to_r16) {
                *lo = (uint8_t)((*lo & ~(0xF << lsh)) | (q[e] & 0xF) << lsh);
                *hi = (uint8_t)((*hi & ~(3 << hsh)) | (q[e] >> 4) << hsh);
            } else {
                q[e] = (uint8_t)((*lo >> lsh & 0xF) | (*hi >> hsh & 3) << 4);
            }
        }
        if (!to_r16) q6k_set(b, q);
    }
}

/* ---- Q4_K: the 12 bytes of 6-bit scales and mins <-> sc[8], m[8] (ggml's get_scale_min_k4;
 * 96 bits each way, so the inverse restores every byte) ------------------------------------ */
static void q4k_scales_get(const uint8_t *s, uint8_t *sc, uint8_t *m) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63, m[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 0xF) | (s[j] >> 6) << 4);
        m[j + 4] = (uint8_t)((s[j + 8] >> 4) | (s[j + 4] >> 6) << 4);
    }
}
static void q4k_scales_set(uint8_t *s, const uint8_t *sc, const uint8_t *m) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)((m[j] & 63) | (m[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | (m[j + 4] & 0xF) << 4);
    }
}
/* 128 six-bit values (index 16j + r) <-> 96 bytes: low nibbles (byte k: value k | value 64+k
 * << 4), then the top 2 bits (byte k: values k, 32+k, 64+k, 96+k at bits 0, 2, 4, 6). */
static void six_bit_put(uint8_t *p, int v, unsigned x) {
    uint8_t *lo = p + v % 64, *hi = p + 64 + v % 32;
    const int lsh = v < 64 ? 0 : 4, hsh = 2 * (v / 32);
    *lo = (uint8_t)((*lo & ~(0xF << lsh)) | (x & 0xF) << lsh);
    *hi = (uint8_t)((*hi & ~(3 << hsh)) | (x >> 4) << hsh);
}
static unsigned six_bit_get(const uint8_t *p, int v) {
    return (p[v % 64] >> (v < 64 ? 0 : 4) & 0xF) | (p[64 + v % 32] >> (2 * (v / 32)) & 3) << 4;
}

/* r16 Q4_K super-block (2304 bytes): d[16] | dmin[16] | scales (96, six_bit) | mins (96) | 4-bit
 * quants as in Q4_0 (32 vectors of 64 bytes). */
static void q4k_block(int to_r16, uint8_t *plain, size_t row_bytes, int64_t sb, uint8_t *g) {
    for (int r = 0; r < G2_R16; r++) {
        uint8_t *b = plain + (size_t)r * row_bytes + (size_t)sb * 144, sc[8], m[8];
        if (to_r16) {
            memcpy(g + 2 * r, b, 2), memcpy(g + 32 + 2 * r, b + 2, 2);
            q4k_scales_get(b + 4, sc, m);
            for (int j = 0; j < 8; j++) six_bit_put(g + 64, 16 * j + r, sc[j]), six_bit_put(g + 160, 16 * j + r, m[j]);
        } else {
            memcpy(b, g + 2 * r, 2), memcpy(b + 2, g + 32 + 2 * r, 2);
            for (int j = 0; j < 8; j++)
                sc[j] = (uint8_t)six_bit_get(g + 64, 16 * j + r), m[j] = (uint8_t)six_bit_get(g + 160, 16 * j + r);
            q4k_scales_set(b + 4, sc, m);
        }
        for (int e = 0; e < 256; e++) {
            /* plain: element 64c + l in the low nibble of qs[32c + l], 64c + 32 + l in the high one */
            uint8_t *pq = b + 16 + 32 * (e / 64) + e % 32, *v = g + 256 + 64 * (e / 8) + 4 * r + e % 4;
            const int psh = e % 64 < 32 ? 0 : 4, vsh = e % 8 < 4 ? 0 : 4;
            if (to_r16) *v = (uint8_t)((*v & ~(0xF << vsh)) | (*pq >> psh & 0xF) << vsh);
            else *pq = (uint8_t)((*pq & ~(0xF << psh)) | (*v >> vsh & 0xF) << psh);
        }
    }
}

static void group(int to_r16, int type, int64_t cols, uint8_t *plain, size_t row_bytes, uint8_t *g) {
    switch (type) {
    case GEMMA2_TYPE_F32:
    case GEMMA2_TYPE_F16: { /* column c of the 16 rows, one element each, then column c + 1 */
        const size_t es = type == GEMMA2_TYPE_F32 ? 4 : 2;
        for (int64_t c = 0; c < cols; c++)
            for (int r = 0; r < G2_R16; r++) {
                uint8_t *e = plain + (size_t)r * row_bytes + (size_t)c * es, *v = g + ((size_t)c * G2_R16 + (size_t)r) * es;
                if (to_r16) memcpy(v, e, es);
                else memcpy(e, v, es);
            }
        break;
    }
    case GEMMA2_TYPE_BF16:
        for (int64_t p = 0; p < cols / 2; p++)
            for (int r = 0; r < G2_R16; r++) {
                uint8_t *e = plain + (size_t)r * row_bytes + (size_t)p * 4, *v = g + (size_t)p * 64 + 4 * r;
                if (to_r16) memcpy(v, e, 4);
                else memcpy(e, v, 4);
            }
        break;
    case GEMMA2_TYPE_Q4_0:
        for (int64_t b = 0; b < cols / 32; b++) q4_0_block(to_r16, plain, row_bytes, b, g + (size_t)b * 288);
        break;
    case GEMMA2_TYPE_Q8_0:
        for (int64_t b = 0; b < cols / 32; b++) q8_0_block(to_r16, plain, row_bytes, b, g + (size_t)b * 544);
        break;
    case GEMMA2_TYPE_Q4_K:
        for (int64_t b = 0; b < cols / 256; b++) q4k_block(to_r16, plain, row_bytes, b, g + (size_t)b * 2304);
        break;
    case GEMMA2_TYPE_Q6_K:
        for (int64_t b = 0; b < cols / 256; b++) q6k_block(to_r16, plain, row_bytes, b, g + (size_t)b * 3360);
        break;
    default: break; /* unreachable: g2_r16_supported */
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
