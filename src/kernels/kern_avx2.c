/* kern_avx2.c - AVX2 + FMA + F16C tile kernels (CPUs without AVX-512, or GEMMA2_ISA=avx2).
 *
 * The same arithmetic as kern_avx512.c on 8-wide vectors. Only 16 vector registers: tiles are
 * 4 rows x 2 tokens (8 accumulators). Integer products use vpmaddubsw (u8 x s8 -> s16 pairs)
 * then vpmaddwd (-> s32, applying a 16-bit scale); signed x signed (Q8_0, Q4_0 minus 8) uses
 * |w| x sign(a, w), which cannot saturate since the activations stay in -127..127. */
#include <immintrin.h>
#include <string.h>

#include "gemma2.h"
#include "kernels/kernels_impl.h"
#include "kernels/tile_cases.h"

#ifndef G2_PF
#define G2_PF 8192 /* decode prefetch distance along a row, bytes (why: kern_avx512.c) */
#endif

G2_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

G2_INLINE float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* ---- F32 / BF16 / F16 ---------------------------------------------------------------------- */

enum { K_F32, K_BF16, K_F16 };

G2_INLINE __m256 ldw(int kind, const uint8_t *p) {
    if (kind == K_F32) return _mm256_loadu_ps((const float *)p);
    const __m128i h = _mm_loadu_si128((const __m128i *)p);
    if (kind == K_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}
G2_INLINE float w_at(int kind, const uint8_t *p) {
    if (kind == K_F32) {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, p, 2);
    if (kind == K_F16) return _cvtsh_ss(h);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

G2_INLINE void tile_float(int kind, const int NR, const int NT, const uint8_t *w, size_t rb, const g2_act *a, int t0,
                          float *y, size_t ldy) {
    const size_t esz = kind == K_F32 ? 4 : 2;
    const int64_t cols = a->cols;
    const float *x[4];
    __m256 acc[4][4];
    G2_UNROLL
    for (int t = 0; t < 4; t++) x[t] = g2_act_f32(a, t0 + (t < NT ? t : 0));
    G2_UNROLL
    for (int r = 0; r < 4; r++)
        G2_UNROLL
        for (int t = 0; t < 4; t++) acc[r][t] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        __m256 wv[4];
        G2_UNROLL
        for (int r = 0; r < NR; r++) wv[r] = ldw(kind, w + (size_t)r * rb + (size_t)c * esz);
        G2_UNROLL
        for (int t = 0; t < NT; t++) {
            const __m256 xv = _mm256_loadu_ps(x[t] + c);
            G2_UNROLL
            for (int r = 0; r < NR; r++) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    G2_UNROLL
    for (int t = 0; t < NT; t++)
        G2_UNROLL
        for (int r = 0; r < NR; r++) {
            float s = hsum8(acc[r][t]);
            for (int64_t i = c; i < cols; i++) s += w_at(kind, w + (size_t)r * rb + (size_t)i * esz) * x[t][i];
            y[(size_t)t * ldy + r] = s;
        }
}

/* Decode on a plain row: one row streamed at a time, 32 weights a step into four sums (the tile
 * above, with one sum, waits on the FMA latency: 8 weights per 4 cycles). One core, 9216 x 2304
 * (`GEMMA2_ISA=avx2 bench/kernels_bench.sh 1 3 9216 2304`, alternated three times), GB/s: BF16
 * 14.6-16.1 -> 26.9-29.9, F16 15.3-16.5 -> 28.9-30.4, F32 19.8-26.1 -> 26.6-28.1. A software
 * prefetch of each line 1 KiB ahead, as the tile had, was slower (BF16 24.5-26.8, F16
 * 21.5-26.6); 8 KiB ahead (G2_PF) pays: 2B model in mmap mode (`GEMMA2_ISA=avx2 gemma2 bench
 * --load-mode mmap -p 0 -n 32 -r 2 --probe-bw 512`, Zen 5, alternated twice) BF16 10.3-10.4 ->
 * 13.7-13.8 t/s, F16 10.5-10.8 -> 13.6-13.7; two threads on huge pages (`GEMMA2_ISA=avx2
 * KB_TYPE=bf16 bench/kernels_bench.sh 2 3 9216 2304`) BF16 67-72 -> 88 GB/s, F16 76-78 -> 89-90. */
G2_INLINE float row_dot_float(int kind, const uint8_t *w, const float *x, int64_t cols) {
    const size_t esz = kind == K_F32 ? 4 : 2;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        _mm_prefetch((const char *)(w + (size_t)c * esz + G2_PF), _MM_HINT_T0);
        if (kind == K_F32) _mm_prefetch((const char *)(w + (size_t)c * esz + G2_PF + 64), _MM_HINT_T0);
        s0 = _mm256_fmadd_ps(ldw(kind, w + (size_t)c * esz), _mm256_loadu_ps(x + c), s0);
        s1 = _mm256_fmadd_ps(ldw(kind, w + (size_t)(c + 8) * esz), _mm256_loadu_ps(x + c + 8), s1);
        s2 = _mm256_fmadd_ps(ldw(kind, w + (size_t)(c + 16) * esz), _mm256_loadu_ps(x + c + 16), s2);
        s3 = _mm256_fmadd_ps(ldw(kind, w + (size_t)(c + 24) * esz), _mm256_loadu_ps(x + c + 24), s3);
    }
    for (; c + 8 <= cols; c += 8) s0 = _mm256_fmadd_ps(ldw(kind, w + (size_t)c * esz), _mm256_loadu_ps(x + c), s0);
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; c < cols; c++) s += w_at(kind, w + (size_t)c * esz) * x[c];
    return s;
}

#define BODY_F32(R, T, ...) tile_float(K_F32, R, T, __VA_ARGS__)
#define BODY_BF16(R, T, ...) tile_float(K_BF16, R, T, __VA_ARGS__)
#define BODY_F16(R, T, ...) tile_float(K_F16, R, T, __VA_ARGS__)
static void tile_f32(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    if (nt == 1) { /* decode: one row streamed at a time (a single sequential stream per thread) */
        for (int r = 0; r < nr; r++) y[r] = row_dot_float(K_F32, w + (size_t)r * rb, g2_act_f32(a, t0), a->cols);
        return;
    }
    G2_TILE_SWITCH(BODY_F32, nr, nt, w, rb, a, t0, y, ldy)
}
static void tile_bf16(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    if (nt == 1) { /* decode: one row streamed at a time (a single sequential stream per thread) */
        for (int r = 0; r < nr; r++) y[r] = row_dot_float(K_BF16, w + (size_t)r * rb, g2_act_f32(a, t0), a->cols);
        return;
    }
    G2_TILE_SWITCH(BODY_BF16, nr, nt, w, rb, a, t0, y, ldy)
}
static void tile_f16(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    if (nt == 1) { /* decode: one row streamed at a time (a single sequential stream per thread) */
        for (int r = 0; r < nr; r++) y[r] = row_dot_float(K_F16, w + (size_t)r * rb, g2_act_f32(a, t0), a->cols);
        return;
    }
    G2_TILE_SWITCH(BODY_F16, nr, nt, w, rb, a, t0, y, ldy)
}

/* ---- Q8_0 / Q4_0 ---------------------------------------------------------------------------- */

/* sum of w[i]*a[i] over 32 signed bytes, as 8 int32 lanes */
G2_INLINE __m256i dot_s8(__m256i aw, __m256i w, __m256i a) {
    const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(a, w));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

G2_INLINE void tile_q32(int q4, const int NR, const int NT, const uint8_t *w, size_t rb, const g2_act *a, int t0,
                        float *y, size_t ldy) {
    const int64_t nb = a->cols / 32;
    const size_t bb = q4 ? 18 : 34;
    const int8_t *qa[4];
    const float *da[4];
    __m256 acc[4][4];
    G2_UNROLL
    for (int t = 0; t < 4; t++) {
        qa[t] = g2_act_q(a, t0 + (t < NT ? t : 0));
        da[t] = g2_act_d(a, t0 + (t < NT ? t : 0));
    }
    G2_UNROLL
    for (int r = 0; r < 4; r++)
        G2_UNROLL
        for (int t = 0; t < 4; t++) acc[r][t] = _mm256_setzero_ps();
    const __m128i m4 = _mm_set1_epi8(0x0F), k8 = _mm_set1_epi8(8);
    for (int64_t blk = 0; blk < nb; blk++) {
        __m256i av[4];
        G2_UNROLL
        for (int t = 0; t < NT; t++) av[t] = _mm256_loadu_si256((const __m256i *)(qa[t] + 32 * blk));
        G2_UNROLL
        for (int r = 0; r < NR; r++) {
            const uint8_t *b = w + (size_t)r * rb + (size_t)blk * bb;
            __m256i wv;
            if (q4) {
                const __m128i v = _mm_loadu_si128((const __m128i *)(b + 2));
                wv = _mm256_setr_m128i(_mm_sub_epi8(_mm_and_si128(v, m4), k8),
                                       _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m4), k8));
            } else {
                wv = _mm256_loadu_si256((const __m256i *)(b + 2));
            }
            const __m256i aw = _mm256_sign_epi8(wv, wv);
            const float dw = f16_at(b);
            G2_UNROLL
            for (int t = 0; t < NT; t++) {
                const __m256 s = _mm256_cvtepi32_ps(dot_s8(aw, wv, av[t]));
                acc[r][t] = _mm256_fmadd_ps(s, _mm256_set1_ps(dw * da[t][blk]), acc[r][t]);
            }
        }
    }
    G2_UNROLL
    for (int t = 0; t < NT; t++)
        G2_UNROLL
        for (int r = 0; r < NR; r++) y[(size_t)t * ldy + r] = hsum8(acc[r][t]);
}
#define BODY_Q8_0(R, T, ...) tile_q32(0, R, T, __VA_ARGS__)
#define BODY_Q4_0(R, T, ...) tile_q32(1, R, T, __VA_ARGS__)

/* Block k's products with its activations as 8 int32 lanes: Q4_0's nibbles stay unsigned
 * (0..15; the -8 offset is left to the caller), Q8_0 uses the sign trick of tile_q32. */
G2_INLINE __m256i row_block_dot(int q4, const uint8_t *blk, const int8_t *q) {
    const __m256i av = _mm256_loadu_si256((const __m256i *)q), ones = _mm256_set1_epi16(1);
    if (q4) {
        const __m128i m4 = _mm_set1_epi8(0x0F), v = _mm_loadu_si128((const __m128i *)(blk + 2));
        const __m256i wv = _mm256_setr_m128i(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
        return _mm256_madd_epi16(_mm256_maddubs_epi16(wv, av), ones);
    }
    const __m256i wv = _mm256_loadu_si256((const __m256i *)(blk + 2));
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(av, wv)), ones);
}

/* Q8_0 / Q4_0 decode on a plain row (mmap mode), 4 blocks a step: the 4 blocks' int32 sums are
 * reduced to one lane each (vphaddd), and their 4 scales (converted together), Q4_0's -8
 * offsets (from the activations' block sums) and the fp32 step run on one 128-bit vector. One
 * core, 9216 x 2304 (`GEMMA2_ISA=avx2 bench/kernels_bench.sh 1 3 9216 2304`, alternated three
 * times): Q4_0 9.1-12.4 -> 14.6-16.8 GB/s, two threads 14.5-24.5 -> 28.3-33.1; Q8_0 22.7-24.8
 * -> 24.1-26.2, two threads the same (31-48, memory). With the weights in L2 (a one-off
 * program calling the kernels on 64 x 2304): Q4_0 11.5-12.7 -> 17.1-17.5, Q8_0 30.7-30.9 -> 38.0. tile_q32, a block at a time,
 * converted each scale on its own and waited on its one sum. */
G2_INLINE float row_q32(int q4, const uint8_t *w, const g2_act *a, int t) {
    const int64_t nb = a->cols / 32;
    const size_t bb = q4 ? 18 : 34;
    const int8_t *qa = g2_act_q(a, t);
    const float *da = g2_act_d(a, t);
    const int16_t *sa = g2_act_s(a, t);
    __m128 acc = _mm_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *p = w + (size_t)b * bb;
        _mm_prefetch((const char *)(p + G2_PF), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + G2_PF + 64), _MM_HINT_T0);
        if (!q4) _mm_prefetch((const char *)(p + G2_PF + 128), _MM_HINT_T0);
        __m256i s[4];
        G2_UNROLL
        for (int k = 0; k < 4; k++) s[k] = row_block_dot(q4, p + bb * k, qa + 32 * (b + k));
        /* lanes [s0 s1 s2 s3] of each 128-bit half, then the halves added */
        const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
        __m128i dot = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        uint64_t hw = 0;
        for (int k = 0; k < 4; k++) {
            uint16_t hk;
            memcpy(&hk, p + bb * k, 2);
            hw |= (uint64_t)hk << 16 * k;
        }
        const __m128 d = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)hw)), _mm_loadu_ps(da + b));
        if (q4) /* - 8 x the 4 blocks' activation sums */
            dot = _mm_sub_epi32(dot, _mm_slli_epi32(_mm_cvtepi16_epi32(_mm_loadl_epi64((const __m128i *)(sa + b))), 3));
        acc = _mm_fmadd_ps(_mm_cvtepi32_ps(dot), d, acc);
    }
    float tail = 0;
    for (; b < nb; b++) { /* the row's last nb % 4 blocks, one at a time */
        const uint8_t *p = w + (size_t)b * bb;
        const __m256i s1 = row_block_dot(q4, p, qa + 32 * b);
        __m128i x = _mm_add_epi32(_mm256_castsi256_si128(s1), _mm256_extracti128_si256(s1, 1));
        x = _mm_hadd_epi32(x, x);
        x = _mm_hadd_epi32(x, x);
        tail += (float)(_mm_cvtsi128_si32(x) - (q4 ? 8 * sa[b] : 0)) * (f16_at(p) * da[b]);
    }
    acc = _mm_add_ps(acc, _mm_movehl_ps(acc, acc));
    acc = _mm_add_ss(acc, _mm_movehdup_ps(acc));
    return _mm_cvtss_f32(acc) + tail;
}
static void tile_q8_0(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    if (nt == 1) { /* decode: one row streamed at a time (a single sequential stream per thread) */
        for (int r = 0; r < nr; r++) y[r] = row_q32(0, w + (size_t)r * rb, a, t0);
        return;
    }
    G2_TILE_SWITCH(BODY_Q8_0, nr, nt, w, rb, a, t0, y, ldy)
}
static void tile_q4_0(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    if (nt == 1) { /* decode: one row streamed at a time (a single sequential stream per thread) */
        for (int r = 0; r < nr; r++) y[r] = row_q32(1, w + (size_t)r * rb, a, t0);
        return;
    }
    G2_TILE_SWITCH(BODY_Q4_0, nr, nt, w, rb, a, t0, y, ldy)
}

/* ---- Q4_K / Q6_K ----------------------------------------------------------------------------- */

G2_INLINE void tile_q4_k_body(const int NR, const int NT, const uint8_t *w, size_t rb, const g2_act *a, int t0,
                              float *y, size_t ldy) {
    const int64_t nsb = a->cols / 256;
    const int8_t *qa[4];
    const float *da[4];
    const int16_t *bs[4];
    __m256 acc[4][4];
    G2_UNROLL
    for (int t = 0; t < 4; t++) {
        const int tt = t0 + (t < NT ? t : 0);
        qa[t] = g2_act_q(a, tt), da[t] = g2_act_d(a, tt), bs[t] = g2_act_s(a, tt);
    }
    G2_UNROLL
    for (int r = 0; r < 4; r++)
        G2_UNROLL
        for (int t = 0; t < 4; t++) acc[r][t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t sb = 0; sb < nsb; sb++) {
        G2_UNROLL
        for (int r = 0; r < NR; r++) {
            const uint8_t *b = w + (size_t)r * rb + (size_t)sb * 144;
            if (NT == 1) {
                _mm_prefetch((const char *)(b + G2_PF), _MM_HINT_T0);
                _mm_prefetch((const char *)(b + G2_PF + 64), _MM_HINT_T0);
                _mm_prefetch((const char *)(b + G2_PF + 128), _MM_HINT_T0);
            }
            const float d = f16_at(b), dmin = f16_at(b + 2);
            uint32_t s[3];
            memcpy(s, b + 4, 12);
            uint8_t sc[8], m[8]; /* the 6-bit scales and mins, as in kern_avx512.c */
            const uint32_t v[4] = {s[0] & 0x3f3f3f3f, (s[2] & 0x0f0f0f0f) | (((s[0] >> 6) & 0x03030303) << 4),
                                   s[1] & 0x3f3f3f3f, ((s[2] >> 4) & 0x0f0f0f0f) | (((s[1] >> 6) & 0x03030303) << 4)};
            memcpy(sc, v, 8);
            memcpy(m, v + 2, 8);
            /* the 8 scales as 16-bit lanes in both halves; sub-block k's broadcast by vpshufb (one
             * instruction, where _mm256_set1_epi16 of a byte took a move from a general register
             * and a broadcast). With Q6_K's likewise, the weights in L2 (a one-off program, one
             * core, 64 x 2304): Q4_K 16.5 -> 18.5 GB/s, Q6_K 19.3 -> 27.0; 2B Q4_K_M in mmap mode,
             * `GEMMA2_ISA=avx2 gemma2 bench --load-mode mmap -p 0 -n 32 -r 2` alternated three
             * times, 16.6-16.9 -> 18.0-18.7 t/s. */
            const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc)));
            const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)m));
            const __m256i mrep = _mm256_setr_m128i(_mm_unpacklo_epi16(m16, m16), _mm_unpackhi_epi16(m16, m16));
            G2_UNROLL
            for (int t = 0; t < NT; t++) {
                const int8_t *q = qa[t] + 256 * sb;
                __m256i acc_i = _mm256_setzero_si256();
                G2_UNROLL
                for (int j = 0; j < 4; j++) {
                    const __m256i qv = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * j));
                    const __m256i lo = _mm256_and_si256(qv, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4);
                    const __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(q + 64 * j)));
                    const __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q + 64 * j + 32)));
                    /* bytes 2k, 2k + 1 of sc16: scale k as a 16-bit lane */
                    const __m256i s0 = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(0x0100 + 0x0202 * (2 * j))));
                    const __m256i s1 = _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(0x0100 + 0x0202 * (2 * j + 1))));
                    acc_i = _mm256_add_epi32(acc_i, _mm256_madd_epi16(p0, s0));
                    acc_i = _mm256_add_epi32(acc_i, _mm256_madd_epi16(p1, s1));
                }
                const __m256i ms = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(bs[t] + 16 * sb)), mrep);
                const float dat = da[t][sb];
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc_i), _mm256_set1_ps(d * dat), acc[r][t]);
                acc[r][t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_set1_ps(dmin * dat), acc[r][t]);
            }
        }
    }
    G2_UNROLL
    for (int t = 0; t < NT; t++)
        G2_UNROLL
        for (int r = 0; r < NR; r++) y[(size_t)t * ldy + r] = hsum8(acc[r][t]);
}

G2_INLINE void tile_q6_k_body(const int NR, const int NT, const uint8_t *w, size_t rb, const g2_act *a, int t0,
                              float *y, size_t ldy) {
    const int64_t nsb = a->cols / 256;
    const int8_t *qa[4];
    const float *da[4];
    const int16_t *bs[4];
    __m256 acc[4][4];
    G2_UNROLL
    for (int t = 0; t < 4; t++) {
        const int tt = t0 + (t < NT ? t : 0);
        qa[t] = g2_act_q(a, tt), da[t] = g2_act_d(a, tt), bs[t] = g2_act_s(a, tt);
    }
    G2_UNROLL
    for (int r = 0; r < 4; r++)
        G2_UNROLL
        for (int t = 0; t < 4; t++) acc[r][t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
    for (int64_t sb = 0; sb < nsb; sb++) {
        G2_UNROLL
        for (int r = 0; r < NR; r++) {
            const uint8_t *b = w + (size_t)r * rb + (size_t)sb * 210;
            if (NT == 1) {
                _mm_prefetch((const char *)(b + G2_PF), _MM_HINT_T0);
                _mm_prefetch((const char *)(b + G2_PF + 64), _MM_HINT_T0);
                _mm_prefetch((const char *)(b + G2_PF + 128), _MM_HINT_T0);
                _mm_prefetch((const char *)(b + G2_PF + 192), _MM_HINT_T0);
            }
            const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 192)));
            const float d = f16_at(b + 208);
            /* scales 0-7 and 8-15 in both halves, for vpshufb */
            const __m256i sc_lo = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(sc16));
            const __m256i sc_hi = _mm256_broadcastsi128_si256(_mm256_extracti128_si256(sc16, 1));
            G2_UNROLL
            for (int t = 0; t < NT; t++) {
                const int8_t *q = qa[t] + 256 * sb;
                __m256i acc_i = _mm256_setzero_si256();
                G2_UNROLL
                for (int h = 0; h < 2; h++) {
                    const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(b + 64 * h));
                    const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32));
                    const __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
                    __m256i v[4];
                    v[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
                    v[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
                    v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
                    v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
                    G2_UNROLL
                    for (int j = 0; j < 4; j++) {
                        const int k = 2 * j; /* the two 16-element scales of these 32: 8h + k, 8h + k + 1 */
                        const __m256i pick = _mm256_setr_m128i(_mm_set1_epi16((short)(0x0100 + 0x0202 * k)),
                                                               _mm_set1_epi16((short)(0x0100 + 0x0202 * (k + 1))));
                        const __m256i scv = _mm256_shuffle_epi8(h ? sc_hi : sc_lo, pick);
                        const __m256i p = _mm256_maddubs_epi16(v[j], _mm256_loadu_si256((const __m256i *)(q + 128 * h + 32 * j)));
                        acc_i = _mm256_add_epi32(acc_i, _mm256_madd_epi16(p, scv));
                    }
                }
                const __m256i off =
                    _mm256_slli_epi32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(bs[t] + 16 * sb)), sc16), 5);
                acc_i = _mm256_sub_epi32(acc_i, off);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc_i), _mm256_set1_ps(d * da[t][sb]), acc[r][t]);
            }
        }
    }
    G2_UNROLL
    for (int t = 0; t < NT; t++)
        G2_UNROLL
        for (int r = 0; r < NR; r++) y[(size_t)t * ldy + r] = hsum8(acc[r][t]);
}

#define BODY_Q4_K(R, T, ...) tile_q4_k_body(R, T, __VA_ARGS__)
#define BODY_Q6_K(R, T, ...) tile_q6_k_body(R, T, __VA_ARGS__)
static void tile_q4_k(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    if (nt == 1) { /* decode: one row streamed at a time (a single sequential stream per thread) */
        for (int r = 0; r < nr; r++) BODY_Q4_K(1, 1, w + (size_t)r * rb, rb, a, t0, y + r, ldy);
        return;
    }
    G2_TILE_SWITCH(BODY_Q4_K, nr, nt, w, rb, a, t0, y, ldy)
}
static void tile_q6_k(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    if (nt == 1) { /* decode: one row streamed at a time (a single sequential stream per thread) */
        for (int r = 0; r < nr; r++) BODY_Q6_K(1, 1, w + (size_t)r * rb, rb, a, t0, y + r, ldy);
        return;
    }
    G2_TILE_SWITCH(BODY_Q6_K, nr, nt, w, rb, a, t0, y, ldy)
}

int g2_kernel_avx2(int type, g2_kernel *k) {
    k->mr = k->decode_rows = 4;
    k->nt = 2; /* 8 accumulators + 4 weight vectors + 1 activation: fits 16 ymm registers */
    switch (type) {
    case GEMMA2_TYPE_F32: k->act = G2_ACT_F32; k->tile = tile_f32; return 1;
    case GEMMA2_TYPE_BF16: k->act = G2_ACT_F32; k->tile = tile_bf16; return 1;
    case GEMMA2_TYPE_F16: k->act = G2_ACT_F32; k->tile = tile_f16; return 1;
    case GEMMA2_TYPE_Q8_0: k->act = G2_ACT_Q8_32; k->tile = tile_q8_0; return 1;
    case GEMMA2_TYPE_Q4_0: k->act = G2_ACT_Q8_32; k->tile = tile_q4_0; return 1;
    case GEMMA2_TYPE_Q4_K: k->act = G2_ACT_Q8_256; k->tile = tile_q4_k; return 1;
    case GEMMA2_TYPE_Q6_K: k->act = G2_ACT_Q8_256; k->tile = tile_q6_k; return 1;
    default: return 0;
    }
}
