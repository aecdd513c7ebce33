/* repack.c - the r16 layout (repack.h): packing and unpacking of 16-row groups, in portable C. */
#include "kernels/repack.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "gemma2.h"
#include "kernels/kernels_impl.h"
#include "kernels/tile_cases.h"
#include "kernels/types.h"
#include "util/half.h"

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

/* Packing writes whole 32-bit words of the r16 vectors (prefill in mmap mode packs on every
 * call: matmul.c, compute_rows_packed); byte-order neutral (the compiler makes these one load
 * or store on x86). */
static inline uint32_t ld32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void st32(uint8_t *p, uint32_t x) {
    p[0] = (uint8_t)x, p[1] = (uint8_t)(x >> 8), p[2] = (uint8_t)(x >> 16), p[3] = (uint8_t)(x >> 24);
}
/* 8 four-bit values, the nibbles at bit sh (0 or 4) of p[0..7], as one lane of an r16 4-bit
 * vector: byte i = value i | value 4 + i << 4. */
static inline uint32_t nib8(const uint8_t *p, int sh) {
    return (ld32(p) >> sh & 0x0F0F0F0Fu) | (ld32(p + 4) >> sh & 0x0F0F0F0Fu) << 4;
}

/* Lane r of r16 4-bit vectors (vector g, byte i = value 8g + i | value 8g + 4 + i << 4) ->
 * the n values u[0..n). */
static void nibbles_from_r16(const uint8_t *v, int n, int r, uint8_t *u) {
    for (int g = 0; g < n / 8; g++)
        for (int i = 0; i < 4; i++) {
            const uint8_t x = v[64 * g + 4 * r + i];
            u[8 * g + i] = x & 0x0F, u[8 * g + 4 + i] = x >> 4;
        }
}

/* 2 * half values -> `half` plain bytes of 4-bit pairs: element l in the low nibble of qs[l],
 * element half + l in the high one (Q4_0: 16 bytes a block; Q4_K: 32 bytes per 64 elements). */
static void q4_set(uint8_t *qs, int half, const uint8_t *u) {
    for (int l = 0; l < half; l++) qs[l] = (uint8_t)(u[l] | u[half + l] << 4);
}

/* Q4_0 block b of rows 0..15 <-> its 288-byte r16 block (pack when `to_r16`, else unpack). */
static void q4_0_block(int to_r16, uint8_t *plain, size_t row_bytes, int64_t b, uint8_t *g) {
    uint8_t u[32];
    for (int r = 0; r < G2_R16; r++) {
        uint8_t *blk = plain + (size_t)r * row_bytes + (size_t)b * 18;
        if (to_r16) {
            memcpy(g + 2 * r, blk, 2);
            for (int v = 0; v < 4; v++) st32(g + 32 + 64 * v + 4 * r, nib8(blk + 2 + 8 * (v & 1), 4 * (v >> 1)));
        } else {
            memcpy(blk, g + 2 * r, 2);
            nibbles_from_r16(g + 32, 32, r, u);
            q4_set(blk + 2, 16, u);
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
        for (int j = 0; j < 8; j++) {
            uint8_t *v = g + 32 + 64 * j + 4 * r;
            if (to_r16) st32(v, ld32(blk + 2 + 4 * j) ^ 0x80808080u);
            else st32(blk + 2 + 4 * j, ld32(v) ^ 0x80808080u);
        }
    }
}

/* ---- Q6_K: the 6-bit values q[256] (0..63) -> a plain block's ql and qh ----------------- */
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
    uint8_t q[256], u[256];
    uint8_t *const hi = g + 2336;
    for (int r = 0; r < G2_R16; r++) {
        uint8_t *b = plain + (size_t)r * row_bytes + (size_t)sb * 210;
        if (to_r16) { /* element 128h + 32k + l: ql[64h + 32(k & 1) + l] >> 4(k >> 1), qh[32h + l] >> 2k */
            memcpy(g + 2 * r, b + 208, 2);
            for (int k = 0; k < 16; k++) g[32 + 16 * k + r] = b[192 + k];
            for (int v = 0; v < 32; v++) {
                const int h = v / 16, k = v % 16 / 4, l = 8 * (v % 4);
                st32(g + 288 + 64 * v + 4 * r, nib8(b + 64 * h + 32 * (k & 1) + l, 4 * (k >> 1)));
            }
            for (int v = 0; v < 16; v++) { /* elements 16v..16v+15: h = v / 8, k = v % 8 / 2, l from 16(v % 2) */
                const uint8_t *qh = b + 128 + 32 * (v / 8) + 16 * (v % 2);
                const int sh = 2 * (v % 8 / 2);
                uint32_t w = 0;
                for (int m = 0; m < 4; m++) w |= (ld32(qh + 4 * m) >> sh & 0x03030303u) << 2 * m;
                st32(hi + 64 * v + 4 * r, w);
            }
        } else {
            memcpy(b + 208, g + 2 * r, 2);
            for (int k = 0; k < 16; k++) b[192 + k] = g[32 + 16 * k + r];
            nibbles_from_r16(g + 288, 256, r, u);
            for (int e = 0; e < 256; e++) q[e] = (uint8_t)(u[e] | (hi[64 * (e / 16) + 4 * r + e % 4] >> (2 * (e % 16 / 4)) & 3) << 4);
            q6k_set(b, q);
        }
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
        /* plain: element 64c + l in the low nibble of qs[32c + l], 64c + 32 + l in the high one */
        uint8_t u[256];
        if (to_r16) {
            for (int v = 0; v < 32; v++) st32(g + 256 + 64 * v + 4 * r, nib8(b + 16 + 32 * (v / 8) + 8 * (v % 4), 4 * (v % 8 / 4)));
        } else {
            nibbles_from_r16(g + 256, 256, r, u);
            for (int c = 0; c < 4; c++) q4_set(b + 16 + 32 * c, 32, u + 64 * c);
        }
    }
}

/* F32, F16: column c of the 16 rows, one element of es bytes each, then column c + 1 (inlined
 * with a constant es, so that each copy is a load and a store, not a call) */
G2_INLINE void columns(int to_r16, int64_t cols, uint8_t *plain, size_t row_bytes, uint8_t *g, const size_t es) {
    for (int64_t c = 0; c < cols; c++)
        for (int r = 0; r < G2_R16; r++) {
            uint8_t *e = plain + (size_t)r * row_bytes + (size_t)c * es, *v = g + ((size_t)c * G2_R16 + (size_t)r) * es;
            if (to_r16) memcpy(v, e, es);
            else memcpy(e, v, es);
        }
}

static void group(int to_r16, int type, int64_t cols, uint8_t *plain, size_t row_bytes, uint8_t *g) {
    switch (type) {
    case GEMMA2_TYPE_F32: columns(to_r16, cols, plain, row_bytes, g, 4); break;
    case GEMMA2_TYPE_F16: columns(to_r16, cols, plain, row_bytes, g, 2); break;
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

void g2_r16_widen_bf16_group(int64_t cols, const uint8_t *src, uint8_t *dst) {
    for (int64_t p = 0; p < cols / 2; p++)
        for (int r = 0; r < G2_R16; r++) { /* row r's columns 2p (low half) and 2p + 1 (high half) */
            uint32_t w, e, o;
            memcpy(&w, src + (size_t)p * 64 + 4 * r, 4);
            e = w << 16;
            o = w & 0xFFFF0000u;
            memcpy(dst + (size_t)(2 * p) * 64 + 4 * r, &e, 4);
            memcpy(dst + (size_t)(2 * p + 1) * 64 + 4 * r, &o, 4);
        }
}

int g2_r16e_wanted(void) {
    const char *e = getenv("GEMMA2_BF16_CODES");
    const g2_isa isa = g2_isa_active();
    return isa >= G2_ISA_AVX2 && !(e && !strcmp(e, "0"));
}

/* n BF16 values at p, each exact in fp16, as F16 values in place. */
static void bf16_to_f16_in_place(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint16_t b;
        memcpy(&b, p + 2 * i, 2);
        const uint32_t u = (uint32_t)b << 16;
        float f;
        memcpy(&f, &u, 4);
        const uint16_t h = g2_f32_to_f16(f);
        memcpy(p + 2 * i, &h, 2);
    }
}

/* A BF16 tensor into r16e, if every group fits: each group is packed at the start of its own 16
 * rows (in parallel); if one does not fit, the packed ones are unpacked again (lossless) and the
 * tensor stays as it was. Then the groups move down to G2_R16E_GROUP_BYTES apart, in order (each
 * lands on bytes already consumed). An F16 tensor is taken too when every value of it is a BF16
 * value (as in an F16 file converted from a BF16 checkpoint: fp16 has 3 more mantissa bits and
 * they are all zero): it becomes a BF16 tensor of the same values, its products the same fp32
 * weights times the same activations. Returns 0, 1 when a group does not fit or an F16 value is
 * not a BF16 value, -1 when out of memory (the tensor left as it is in both). */
static int repack_r16e(g2_tensor *t, int n_threads, uint8_t *scratch) {
    const size_t gbytes = t->row_bytes * G2_R16, cbytes = G2_R16E_GROUP_BYTES(t->cols);
    const int64_t groups = t->rows / G2_R16;
    const int from_f16 = t->type == GEMMA2_TYPE_F16;
    uint8_t *data = (uint8_t *)t->data, *done = calloc((size_t)groups, 1);
    int all = 1;
    if (!done) return -1;
#pragma omp parallel num_threads(n_threads)
    {
        uint8_t *tmp = scratch + gbytes * (size_t)omp_get_thread_num();
#pragma omp for schedule(static)
        for (int64_t gi = 0; gi < groups; gi++) {
            uint8_t *g = data + (size_t)gi * gbytes;
            int going;
#pragma omp atomic read
            going = all;
            if (!going || (from_f16 && g2_f16_to_bf16_exact_avx2(g, tmp, gbytes / 2))) { /* g as it was */
                done[gi] = 0; /* once a group has failed the rest are left: a true F16 tensor costs a group or so a thread */
            } else {
                if (!from_f16) memcpy(tmp, g, gbytes);
                done[gi] = g2_r16e_pack_group(t->cols, tmp, t->row_bytes, g) == 0;
                if (!done[gi]) { /* g back as it was */
                    memcpy(g, tmp, gbytes);
                    if (from_f16) bf16_to_f16_in_place(g, gbytes / 2);
                }
            }
            if (!done[gi]) {
#pragma omp atomic write
                all = 0;
            }
        } /* the loop's end is a barrier: every thread sees the same `all` below */
        int fits;
#pragma omp atomic read
        fits = all;
        if (!fits) { /* a group did not fit (rare: more than G2_R16E_ESC rare exponents) */
#pragma omp for schedule(static)
            for (int64_t gi = 0; gi < groups; gi++)
                if (done[gi]) {
                    uint8_t *g = data + (size_t)gi * gbytes;
                    memcpy(tmp, g, cbytes);
                    g2_r16e_unpack_group(t->cols, tmp, g, t->row_bytes);
                    if (from_f16) bf16_to_f16_in_place(g, gbytes / 2);
                }
        }
    }
    free(done);
    if (!all) return 1;
    for (int64_t gi = 1; gi < groups; gi++) memmove(data + (size_t)gi * cbytes, data + (size_t)gi * gbytes, cbytes);
    t->type = GEMMA2_TYPE_BF16;
    t->layout = G2_LAYOUT_R16E;
    return 0;
}

int g2_r16e_candidate(const g2_tensor *t) {
    if (t->layout != G2_LAYOUT_ROWS || !g2_r16_supported(t->type, t->rows, t->cols)) return 0;
    /* a group's header and escape list take 96 bytes: r16e saves bytes from 14 columns */
    const int bf16_values = t->type == GEMMA2_TYPE_BF16 || (t->type == GEMMA2_TYPE_F16 && t->cols % 2 == 0);
    return bf16_values && G2_R16E_GROUP_BYTES(t->cols) < t->row_bytes * G2_R16 && g2_r16e_wanted();
}

/* g2_tensor_repack_r16, with r16e allowed or not. */
static int repack_in_place(g2_tensor *t, int n_threads, int allow_r16e) {
    if (t->layout != G2_LAYOUT_ROWS || !g2_r16_supported(t->type, t->rows, t->cols)) return 1;
    const size_t gbytes = t->row_bytes * G2_R16;
    const int64_t groups = t->rows / G2_R16;
    if (n_threads <= 0) n_threads = omp_get_max_threads();
    if (n_threads > groups) n_threads = (int)groups;
    /* scratch for every thread first: all or nothing, never a tensor left half repacked */
    uint8_t *scratch = malloc(gbytes * (size_t)n_threads);
    if (!scratch) return -1;
    if (allow_r16e && g2_r16e_candidate(t) && repack_r16e(t, n_threads, scratch) == 0) {
        free(scratch);
        return 0;
    }
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

int g2_tensor_repack_r16(g2_tensor *t, int n_threads) { return repack_in_place(t, n_threads, 1); }

/* Reads all of t's plain rows into place, in pieces of 2 MiB across the threads. */
static int read_rows(g2_tensor *t, int n_threads, g2_tensor_reader read, void *ctx) {
    const size_t total = (size_t)t->rows * t->row_bytes, piece = (size_t)2 << 20;
    uint8_t *data = (uint8_t *)t->data;
    int bad = 0;
#pragma omp parallel for num_threads(n_threads) schedule(static) reduction(| : bad)
    for (size_t off = 0; off < total; off += piece)
        bad |= read(ctx, off, data + off, total - off < piece ? total - off : piece) != 0;
    return bad ? -2 : 0;
}

/* The rows read into place, then r16 (never r16e: t is not one, or did not fit). */
static int read_then_repack(g2_tensor *t, int n_threads, g2_tensor_reader read, void *ctx) {
    const int r = read_rows(t, n_threads, read, ctx);
    return r ? r : repack_in_place(t, n_threads, 0) < 0 ? -1 : 0;
}

int g2_tensor_pack_r16e_streamed(g2_tensor *t, int n_threads, g2_tensor_reader read, void *ctx) {
    if (!g2_r16e_candidate(t)) return read_then_repack(t, n_threads, read, ctx);
    const size_t gbytes = t->row_bytes * G2_R16, cbytes = G2_R16E_GROUP_BYTES(t->cols);
    const int64_t groups = t->rows / G2_R16;
    const int from_f16 = t->type == GEMMA2_TYPE_F16;
    if (n_threads <= 0) n_threads = omp_get_max_threads();
    if (n_threads > groups) n_threads = (int)groups;
    uint8_t *scratch = malloc(gbytes * (size_t)n_threads), *data = (uint8_t *)t->data;
    if (!scratch) return -1;
    int all = 1, bad = 0;
#pragma omp parallel num_threads(n_threads)
    {
        uint8_t *tmp = scratch + gbytes * (size_t)omp_get_thread_num();
#pragma omp for schedule(static) reduction(| : bad)
        for (int64_t gi = 0; gi < groups; gi++) {
            int going;
#pragma omp atomic read
            going = all;
            if (!going) continue; /* a group has failed: the rows are read as they are below */
            int ok = read(ctx, (size_t)gi * gbytes, tmp, gbytes) == 0;
            bad |= !ok;
            /* an F16 group becomes BF16 in place (exact, or a value is not a BF16 value) */
            ok = ok && !(from_f16 && g2_f16_to_bf16_exact_avx2(tmp, tmp, gbytes / 2));
            ok = ok && g2_r16e_pack_group(t->cols, tmp, t->row_bytes, data + (size_t)gi * cbytes) == 0;
            if (!ok) {
#pragma omp atomic write
                all = 0;
            }
        }
    }
    free(scratch);
    if (bad) return -2;
    if (!all) return read_then_repack(t, n_threads, read, ctx); /* the plain rows over what was packed */
    t->type = GEMMA2_TYPE_BF16;
    t->layout = G2_LAYOUT_R16E;
    return 0;
}
