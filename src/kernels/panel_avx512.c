/* panel_avx512.c - prefill kernels for the quantized types on repacked weights (AVX-512 VNNI).
 *
 * The row-major tile kernels (kern_avx512.c) spend three fp32 operations (convert, scale,
 * accumulate) per 32-element block per row per token, on vectors whose 16 lanes are partial
 * sums of that one block: the fp32 work, not the integer dots, bounds them. Here a panel holds
 * 16 rows, each element widened to an unsigned byte and the rows interleaved 4 bytes at a time:
 *   group g (G = 32 or 16 elements): u8 q[G/4][16 rows][4] | f32 scale[16] | (Q4_K) f32 min[16]
 * so vpdpbusd(panel word k, broadcast activation word k) accumulates 16 rows' dots in 16 lanes
 * and the fp32 step is done once per group for 16 rows at once. Weights become
 *   w = scale * (u - off)  (Q8_0: u = q + 128, off 128; Q4_0: off 8; Q6_K: off 32, G = 16)
 *   w = scale * u - min    (Q4_K: scale = d * sc[j], min = dmin * m[j])
 * the integer offset is folded in exactly by starting each lane at -off * sum(activations).
 * The activations are the same as the tile kernels' (kernels_impl.h), so both paths compute the
 * same integer sums. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "gemma2.h"
#include "kernels/kernels_impl.h"
#include "kernels/tile_cases.h"
#include "util/half.h"

#define PANEL_NT 8 /* tokens per call: 8 fp32 + 8 int32 accumulators */

static inline float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return g2_f16_to_f32(h);
}

/* ---- one row -> bytes, scales (and mins) per group --------------------------------------- */

static void unpack_q8_0(const uint8_t *b, int64_t cols, uint8_t *u, float *s, float *m) {
    (void)m;
    for (int64_t blk = 0; blk < cols / 32; blk++, b += 34) {
        s[blk] = f16_at(b);
        for (int j = 0; j < 32; j++) u[32 * blk + j] = b[2 + j] ^ 0x80; /* q + 128 */
    }
}
static void unpack_q4_0(const uint8_t *b, int64_t cols, uint8_t *u, float *s, float *m) {
    (void)m;
    for (int64_t blk = 0; blk < cols / 32; blk++, b += 18) {
        s[blk] = f16_at(b);
        for (int j = 0; j < 16; j++) {
            u[32 * blk + j] = b[2 + j] & 0xF;
            u[32 * blk + 16 + j] = b[2 + j] >> 4;
        }
    }
}
static void unpack_q4_k(const uint8_t *b, int64_t cols, uint8_t *u, float *s, float *m) {
    for (int64_t sb = 0; sb < cols / 256; sb++, b += 144) {
        const float d = f16_at(b), dmin = f16_at(b + 2);
        const uint8_t *sc6 = b + 4, *qs = b + 16;
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            if (j < 4) {
                sc = sc6[j] & 63;
                mn = sc6[j + 4] & 63;
            } else {
                sc = (sc6[j + 4] & 0xF) | ((sc6[j - 4] >> 6) << 4);
                mn = (sc6[j + 4] >> 4) | ((sc6[j] >> 6) << 4);
            }
            s[8 * sb + j] = d * (float)sc;
            m[8 * sb + j] = dmin * (float)mn;
            const uint8_t *p = qs + 32 * (j / 2);
            const int shift = 4 * (j & 1);
            for (int l = 0; l < 32; l++) u[256 * sb + 32 * j + l] = (p[l] >> shift) & 0xF;
        }
    }
}
static void unpack_q6_k(const uint8_t *b, int64_t cols, uint8_t *u, float *s, float *m) {
    (void)m;
    for (int64_t sb = 0; sb < cols / 256; sb++, b += 210) {
        const float d = f16_at(b + 208);
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int k = 0; k < 16; k++) s[16 * sb + k] = d * (float)sc[k];
        uint8_t *o = u + 256 * sb;
        for (int h = 0; h < 2; h++, o += 128) {
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            for (int l = 0; l < 32; l++) {
                o[l] = (uint8_t)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
                o[l + 32] = (uint8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
                o[l + 64] = (uint8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
                o[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
            }
        }
    }
}

typedef void (*unpack_fn)(const uint8_t *b, int64_t cols, uint8_t *u, float *s, float *m);

static size_t group_bytes(int G, int has_min) { return (size_t)G * 16 + 64 + (has_min ? 64 : 0); }

static void pack_rows(unpack_fn unpack, int G, int has_min, const uint8_t *w, size_t rb, int nr, int64_t cols,
                      uint8_t *panel, uint8_t *u) {
    const int64_t ng = cols / G;
    const size_t gb = group_bytes(G, has_min);
    float *s = (float *)(u + cols), *m = s + ng; /* cols is a multiple of 32 and u 64-aligned: aligned */
    if (nr < 16) memset(panel, 0, gb * (size_t)ng);
    for (int r = 0; r < nr; r++) {
        unpack(w + (size_t)r * rb, cols, u, s, m);
        for (int64_t g = 0; g < ng; g++) {
            uint8_t *pg = panel + (size_t)g * gb;
            for (int kk = 0; kk < G / 4; kk++) memcpy(pg + 64 * kk + 4 * r, u + g * G + 4 * kk, 4);
            memcpy(pg + (size_t)G * 16 + 4 * r, s + g, 4);
            if (has_min) memcpy(pg + (size_t)G * 16 + 64 + 4 * r, m + g, 4);
        }
    }
}

/* ---- the kernel: 16 rows x NT tokens ----------------------------------------------------- */

/* 4 activation bytes as one int32 (4-aligned: records are 64-aligned, offsets multiples of 4);
 * a plain dereference lets the compiler fold the broadcast into vpdpbusd's {1to16} operand. */
typedef int32_t __attribute__((may_alias)) g2_i32_alias;
G2_INLINE int32_t word_at(const int8_t *p) { return *(const g2_i32_alias *)p; }

/* K256: activations with one scale per 256 (Q8_K-like) and int16 sums per 16; else one scale
 * and one int16 sum per 32. */
G2_INLINE void panel_body(const int G, const int OFF, const int MIN, const int K256, const int NT, const uint8_t *panel,
                          int nr, const g2_act *a, int t0, float *y, size_t ldy) {
    const int64_t ng = a->cols / G;
    const size_t gb = group_bytes(G, MIN);
    const int8_t *qa[PANEL_NT];
    const float *da[PANEL_NT];
    const int16_t *as[PANEL_NT];
    __m512 acc[PANEL_NT];
    G2_UNROLL8
    for (int t = 0; t < PANEL_NT; t++) {
        const int tt = t0 + (t < NT ? t : 0);
        qa[t] = g2_act_q(a, tt), da[t] = g2_act_d(a, tt), as[t] = g2_act_s(a, tt);
        acc[t] = _mm512_setzero_ps();
    }
    for (int64_t g = 0; g < ng; g++) {
        const uint8_t *pg = panel + (size_t)g * gb;
        __m512i ai[PANEL_NT];
        G2_UNROLL8
        for (int t = 0; t < NT; t++) ai[t] = OFF ? _mm512_set1_epi32(-OFF * (int32_t)as[t][g]) : _mm512_setzero_si512();
        G2_UNROLL8
        for (int kk = 0; kk < G / 4; kk++) {
            const __m512i wv = _mm512_load_si512(pg + 64 * kk);
            G2_UNROLL8
            for (int t = 0; t < NT; t++)
                ai[t] = _mm512_dpbusd_epi32(ai[t], wv, _mm512_set1_epi32(word_at(qa[t] + g * G + 4 * kk)));
        }
        const __m512 sv = _mm512_load_ps(pg + (size_t)G * 16);
        G2_UNROLL8
        for (int t = 0; t < NT; t++) {
            const float dat = K256 ? da[t][g * G / 256] : da[t][g];
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[t]), _mm512_mul_ps(sv, _mm512_set1_ps(dat)), acc[t]);
            if (MIN) {
                const __m512 mv = _mm512_load_ps(pg + (size_t)G * 16 + 64);
                const float ds = dat * (float)(as[t][2 * g] + as[t][2 * g + 1]);
                acc[t] = _mm512_fnmadd_ps(mv, _mm512_set1_ps(ds), acc[t]);
            }
        }
    }
    const __mmask16 mask = (__mmask16)((1u << nr) - 1);
    G2_UNROLL8
    for (int t = 0; t < NT; t++) _mm512_mask_storeu_ps(y + (size_t)t * ldy, mask, acc[t]);
}

#define PANEL_CASES(G, OFF, MIN, K256)                                                       \
    switch (nt) {                                                                            \
    case 1: panel_body(G, OFF, MIN, K256, 1, panel, nr, a, t0, y, ldy); break;               \
    case 2: panel_body(G, OFF, MIN, K256, 2, panel, nr, a, t0, y, ldy); break;               \
    case 3: panel_body(G, OFF, MIN, K256, 3, panel, nr, a, t0, y, ldy); break;               \
    case 4: panel_body(G, OFF, MIN, K256, 4, panel, nr, a, t0, y, ldy); break;               \
    case 5: panel_body(G, OFF, MIN, K256, 5, panel, nr, a, t0, y, ldy); break;               \
    case 6: panel_body(G, OFF, MIN, K256, 6, panel, nr, a, t0, y, ldy); break;               \
    case 7: panel_body(G, OFF, MIN, K256, 7, panel, nr, a, t0, y, ldy); break;               \
    case 8: panel_body(G, OFF, MIN, K256, 8, panel, nr, a, t0, y, ldy); break;               \
    default: break;                                                                          \
    }

#define PANEL_TYPE(NAME, UNPACK, G, OFF, MIN, K256)                                                             \
    static size_t NAME##_bytes(int64_t cols) { return group_bytes(G, MIN) * (size_t)(cols / G); }                \
    static void NAME##_pack(const uint8_t *w, size_t rb, int nr, int64_t cols, uint8_t *panel, uint8_t *tmp) {   \
        pack_rows(UNPACK, G, MIN, w, rb, nr, cols, panel, tmp);                                                  \
    }                                                                                                            \
    static void NAME##_run(const uint8_t *panel, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) { \
        PANEL_CASES(G, OFF, MIN, K256)                                                                           \
    }                                                                                                            \
    static const g2_panel_ops NAME = {NAME##_bytes, NAME##_pack, NAME##_run, PANEL_NT};

PANEL_TYPE(panel_q8_0, unpack_q8_0, 32, 128, 0, 0)
PANEL_TYPE(panel_q4_0, unpack_q4_0, 32, 8, 0, 0)
PANEL_TYPE(panel_q4_k, unpack_q4_k, 32, 0, 1, 1)
PANEL_TYPE(panel_q6_k, unpack_q6_k, 16, 32, 0, 1)

const g2_panel_ops *g2_panel_avx512(int type) {
    switch (type) {
    case GEMMA2_TYPE_Q8_0: return &panel_q8_0;
    case GEMMA2_TYPE_Q4_0: return &panel_q4_0;
    case GEMMA2_TYPE_Q4_K: return &panel_q4_k;
    case GEMMA2_TYPE_Q6_K: return &panel_q6_k;
    default: return NULL;
    }
}
