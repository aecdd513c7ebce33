/* kern_avx512.c - AVX-512 (F/BW/VL/DQ + VNNI, optionally BF16) tile kernels.
 *
 * Float weights (F32/BF16/F16): each 16-wide weight vector is converted once (bf16: a 16-bit
 * shift; f16: vcvtph2ps) and FMA'd with up to 4 tokens' fp32 activations: exact products,
 * fp32 sums. On AVX512-BF16 CPUs, BF16 weights instead use vdpbf16ps on bf16-rounded
 * activations (2 products per lane per instruction) unless GEMMA2_BF16_DOT=0.
 * Quantized weights: int8 activations (kernels_impl.h); weight nibbles/bytes are unpacked once
 * per row and reused for every token of the tile; products summed by vpdpbusd (u8 x s8) or
 * vpmaddubsw + vpmaddwd (which also applies the K-quants' integer sub-block scales). */
#include <immintrin.h>
#include <string.h>

#include "gemma2.h"
#include "kernels/f16_avx512.h"
#include "kernels/kernels_impl.h"
#include "kernels/tile_cases.h"

/* Software prefetch distance along each weight row (bytes) in decode (plain rows: mmap mode,
 * and types without a repacked layout): the hardware prefetcher stops at each 4 KiB page, so a
 * stream from the page cache stalls at every page boundary unless the line has been asked for
 * a page or two ahead. A prefetch past the end of a row lands in the next row (rows are
 * contiguous); one past the end of a mapping is dropped (prefetches never fault). 1024 -> 8192,
 * 2B model in mmap mode (`gemma2 bench --load-mode mmap -p 0 -n 32 -r 2 --probe-bw 512`,
 * alternated twice, Zen 5), weight traffic / probe: Q4_0 0.75-0.76 -> 0.90, Q4_K_M 0.73 ->
 * 0.82-0.83, Q8_0 0.75 -> 0.80, F16 0.82 -> 0.94, BF16 0.83-0.84 -> 0.95 (the float rows had no
 * prefetch before); 2048, 4096, 16384 and 32768 were below 8192. On huge pages too (two
 * threads, 9216 x 2304, `KB_TYPE=q4_0 bench/kernels_bench.sh 2 3 9216 2304`): Q4_0 59-63 -> 82
 * GB/s, Q8_0 69-76 -> 94-95, Q6_K 71-75 -> 94, F16 77-82 -> 91-92, BF16 89 either way. */
#ifndef G2_PF
#define G2_PF 8192
#endif

/* ---- F32 / BF16 / F16 ------------------------------------------------------------------- */

enum { K_F32, K_BF16, K_F16 };

/* F16 through two 256-bit conversions (f16_avx512.h): mmap-mode decode of the 2B F16 model,
 * `gemma2 bench --load-mode mmap -p 0 -n 24 -r 2 --probe-bw 256`, weight traffic / probe 0.657
 * -> 0.679-0.710 with the probes at 54-62 GB/s (one old sample in that state, three new). */
G2_INLINE __m512 ldw(int kind, const uint8_t *p) {
    if (kind == K_F32) return _mm512_loadu_ps(p);
    if (kind == K_F16) return g2_f16x16_ps(p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
G2_INLINE __m512 ldw_mask(int kind, const uint8_t *p, __mmask16 m) {
    if (kind == K_F32) return _mm512_maskz_loadu_ps(m, p);
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if (kind == K_BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return g2_f16x16_ps_v(h);
}

/* Decode (one token): each row streamed on its own with four independent sums, so that a thread
 * reads one sequential stream at a time (what the hardware prefetcher follows best). BF16 and
 * F16 call it row by row from a loop that is not unrolled (tile_bf16, tile_f16): through
 * tile_float's unrolled loop over 4 rows GCC fused the four rows' loops into one, four streams
 * at once. One core, 9216 x 2304 (`KB_TYPE=f16 bench/kernels_bench.sh 1 3 9216 2304`, Zen 5):
 * F16 18.5-18.8 -> 29.3-36.9 GB/s, BF16 with `GEMMA2_BF16_DOT=0` 21.4 -> 31.6; F32 stays in the
 * tile (38.3 there, 35.5 row by row). 2B F16 decode in mmap mode (`gemma2 bench --load-mode mmap
 * -p 0 -n 32 -r 2 --probe-bw 512`, alternated three times): 6.6-7.0 -> 9.2-10.3 t/s, weight
 * traffic / probe 0.53-0.68 -> 0.83-0.86; with the prefetch (G2_PF) 0.94. */
G2_INLINE float row_dot_float(int kind, const uint8_t *w, const float *x, int64_t cols) {
    const size_t esz = kind == K_F32 ? 4 : 2;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t c = 0;
    for (; c + 64 <= cols; c += 64) {
        const char *pf = (const char *)(w + (size_t)c * esz + G2_PF);
        _mm_prefetch(pf, _MM_HINT_T0);
        _mm_prefetch(pf + 64, _MM_HINT_T0);
        if (kind == K_F32) {
            _mm_prefetch(pf + 128, _MM_HINT_T0);
            _mm_prefetch(pf + 192, _MM_HINT_T0);
        }
        s0 = _mm512_fmadd_ps(ldw(kind, w + (size_t)c * esz), _mm512_loadu_ps(x + c), s0);
        s1 = _mm512_fmadd_ps(ldw(kind, w + (size_t)(c + 16) * esz), _mm512_loadu_ps(x + c + 16), s1);
        s2 = _mm512_fmadd_ps(ldw(kind, w + (size_t)(c + 32) * esz), _mm512_loadu_ps(x + c + 32), s2);
        s3 = _mm512_fmadd_ps(ldw(kind, w + (size_t)(c + 48) * esz), _mm512_loadu_ps(x + c + 48), s3);
    }
    for (; c + 16 <= cols; c += 16) s0 = _mm512_fmadd_ps(ldw(kind, w + (size_t)c * esz), _mm512_loadu_ps(x + c), s0);
    if (c < cols) {
        const __mmask16 m = (__mmask16)((1u << (cols - c)) - 1);
        s1 = _mm512_fmadd_ps(ldw_mask(kind, w + (size_t)c * esz, m), _mm512_maskz_loadu_ps(m, x + c), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

G2_INLINE void tile_float(int kind, const int NR, const int NT, const uint8_t *w, size_t rb, const g2_act *a, int t0,
                          float *y, size_t ldy) {
    const size_t esz = kind == K_F32 ? 4 : 2;
    const int64_t cols = a->cols;
    if (NT == 1) {
        const float *x0 = g2_act_f32(a, t0);
        G2_UNROLL
        for (int r = 0; r < NR; r++) y[r] = row_dot_float(kind, w + (size_t)r * rb, x0, cols);
        return;
    }
    const float *x[4];
    __m512 acc[4][4];
    G2_UNROLL
    for (int t = 0; t < 4; t++) x[t] = g2_act_f32(a, t0 + (t < NT ? t : 0));
    G2_UNROLL
    for (int r = 0; r < 4; r++)
        G2_UNROLL
        for (int t = 0; t < 4; t++) acc[r][t] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) {
        __m512 wv[4];
        G2_UNROLL
        for (int r = 0; r < NR; r++) wv[r] = ldw(kind, w + (size_t)r * rb + (size_t)c * esz);
        G2_UNROLL
        for (int t = 0; t < NT; t++) {
            const __m512 xv = _mm512_loadu_ps(x[t] + c);
            G2_UNROLL
            for (int r = 0; r < NR; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    if (c < cols) { /* masked tail: any column count works */
        const __mmask16 m = (__mmask16)((1u << (cols - c)) - 1);
        __m512 wv[4];
        G2_UNROLL
        for (int r = 0; r < NR; r++) wv[r] = ldw_mask(kind, w + (size_t)r * rb + (size_t)c * esz, m);
        G2_UNROLL
        for (int t = 0; t < NT; t++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, x[t] + c);
            G2_UNROLL
            for (int r = 0; r < NR; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    G2_UNROLL
    for (int t = 0; t < NT; t++)
        G2_UNROLL
        for (int r = 0; r < NR; r++) y[(size_t)t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

#define BODY_F32(R, T, ...) tile_float(K_F32, R, T, __VA_ARGS__)
#define BODY_BF16(R, T, ...) tile_float(K_BF16, R, T, __VA_ARGS__)
#define BODY_F16(R, T, ...) tile_float(K_F16, R, T, __VA_ARGS__)
static void tile_f32(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    G2_TILE_SWITCH(BODY_F32, nr, nt, w, rb, a, t0, y, ldy)
}
static void tile_bf16(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    if (nt == 1) { /* decode: one row streamed at a time (see row_dot_float) */
        for (int r = 0; r < nr; r++) y[r] = row_dot_float(K_BF16, w + (size_t)r * rb, g2_act_f32(a, t0), a->cols);
        return;
    }
    G2_TILE_SWITCH(BODY_BF16, nr, nt, w, rb, a, t0, y, ldy)
}
static void tile_f16(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    if (nt == 1) { /* decode: one row streamed at a time (see row_dot_float) */
        for (int r = 0; r < nr; r++) y[r] = row_dot_float(K_F16, w + (size_t)r * rb, g2_act_f32(a, t0), a->cols);
        return;
    }
    G2_TILE_SWITCH(BODY_F16, nr, nt, w, rb, a, t0, y, ldy)
}

/* BF16 weights x bf16 activations with vdpbf16ps (opt-in, see matmul.h). The target attribute
 * keeps this instruction out of the rest of the file: the AVX512 path does not require BF16. */
__attribute__((target("avx512bf16"))) G2_INLINE void tile_bf16dot(const int NR, const int NT, const uint8_t *w,
                                                                   size_t rb, const g2_act *a, int t0, float *y,
                                                                   size_t ldy) {
    const int64_t cols = a->cols;
    const uint16_t *x[4];
    __m512 acc[4][4];
    G2_UNROLL
    for (int t = 0; t < 4; t++) x[t] = (const uint16_t *)(a->base + (size_t)(t0 + (t < NT ? t : 0)) * a->stride);
    G2_UNROLL
    for (int r = 0; r < 4; r++)
        G2_UNROLL
        for (int t = 0; t < 4; t++) acc[r][t] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c < cols; c += 32) {
        const __mmask32 m = cols - c >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << (cols - c)) - 1);
        __m512bh wv[4];
        G2_UNROLL
        for (int r = 0; r < NR; r++) wv[r] = (__m512bh)_mm512_maskz_loadu_epi16(m, w + (size_t)r * rb + (size_t)c * 2);
        G2_UNROLL
        for (int t = 0; t < NT; t++) {
            const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(m, x[t] + c);
            G2_UNROLL
            for (int r = 0; r < NR; r++) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv[r], xv);
        }
    }
    G2_UNROLL
    for (int t = 0; t < NT; t++)
        G2_UNROLL
        for (int r = 0; r < NR; r++) y[(size_t)t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}
/* Decode with vdpbf16ps on a plain row (mmap mode): one row streamed at a time, 128 weights (4
 * cache lines) a step into four sums. One core, 9216 x 2304 (`bench/kernels_bench.sh 1 3 9216
 * 2304`, alternated): 24-30 GB/s, against 13-18 for the 4-row tile (four streams). Two rows at
 * a time read 14 GB/s. A prefetch of each line 1 KiB ahead had made it slower (22-24), and
 * F16's rows too (28-29 -> 18-20); 8 KiB ahead (G2_PF) is what pays on 4 KiB pages. */
__attribute__((target("avx512bf16"))) static float row_bf16dot(const uint8_t *w, const uint16_t *x, int64_t cols) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t c = 0;
    for (; c + 128 <= cols; c += 128) {
        const uint8_t *p = w + (size_t)c * 2;
        G2_UNROLL
        for (int k = 0; k < 4; k++) _mm_prefetch((const char *)(p + G2_PF + 64 * k), _MM_HINT_T0);
        s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_loadu_si512(p), (__m512bh)_mm512_loadu_si512(x + c));
        s1 = _mm512_dpbf16_ps(s1, (__m512bh)_mm512_loadu_si512(p + 64), (__m512bh)_mm512_loadu_si512(x + c + 32));
        s2 = _mm512_dpbf16_ps(s2, (__m512bh)_mm512_loadu_si512(p + 128), (__m512bh)_mm512_loadu_si512(x + c + 64));
        s3 = _mm512_dpbf16_ps(s3, (__m512bh)_mm512_loadu_si512(p + 192), (__m512bh)_mm512_loadu_si512(x + c + 96));
    }
    for (; c < cols; c += 32) {
        const __mmask32 m = cols - c >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << (cols - c)) - 1);
        s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_maskz_loadu_epi16(m, w + (size_t)c * 2),
                              (__m512bh)_mm512_maskz_loadu_epi16(m, x + c));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}
#define BODY_BF16DOT(R, T, ...) tile_bf16dot(R, T, __VA_ARGS__)
__attribute__((target("avx512bf16"))) static void tile_bf16_dot(const uint8_t *w, size_t rb, int nr, const g2_act *a,
                                                                int t0, int nt, float *y, size_t ldy) {
    if (nt == 1) {
        const uint16_t *x = (const uint16_t *)(a->base + (size_t)t0 * a->stride);
        for (int r = 0; r < nr; r++) y[r] = row_bf16dot(w + (size_t)r * rb, x, a->cols);
        return;
    }
    G2_TILE_SWITCH(BODY_BF16DOT, nr, nt, w, rb, a, t0, y, ldy)
}

/* ---- Q8_0 / Q4_0 (activations: int8 per 32 with an fp32 scale) --------------------------- */

/* Two 32-element blocks per 512-bit vector; `two` = 0 for a row's odd last block (upper half 0). */
G2_INLINE __m512 pair_f32(const float *d, int two) {
    return _mm512_insertf32x8(_mm512_set1_ps(d[0]), _mm256_set1_ps(two ? d[1] : 0.0f), 1);
}
G2_INLINE __m512 pair_f16(const uint8_t *p0, const uint8_t *p1, int two) {
    uint16_t h0, h1 = 0;
    memcpy(&h0, p0, 2);
    if (two) memcpy(&h1, p1, 2);
    return _mm512_cvtph_ps(_mm256_setr_m128i(_mm_set1_epi16((short)h0), _mm_set1_epi16((short)h1)));
}
G2_INLINE __m512i ld_act_pair(const int8_t *q, int two) {
    return two ? _mm512_loadu_si512(q) : _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)q));
}

/* Q8_0: signed weights x signed activations. vpdpbusd wants one unsigned operand, so the
 * activations are offset by 128 (xor 0x80) and 128 * sum(w) is subtracted, per row. */
G2_INLINE void step_q8_0(const int NR, const int NT, int two, const uint8_t *w, size_t rb, int64_t blk,
                         const int8_t *const *qa, const float *const *da, __m512 acc[4][4]) {
    const __m512i k80 = _mm512_set1_epi8((char)0x80), zero = _mm512_setzero_si512();
    __m512i au[4];
    __m512 dat[4];
    G2_UNROLL
    for (int t = 0; t < NT; t++) {
        au[t] = _mm512_xor_si512(ld_act_pair(qa[t] + 32 * blk, two), k80);
        dat[t] = pair_f32(da[t] + blk, two);
    }
    G2_UNROLL
    for (int r = 0; r < NR; r++) {
        const uint8_t *b = w + (size_t)r * rb + (size_t)blk * 34;
        if (NT == 1) _mm_prefetch((const char *)(b + G2_PF), _MM_HINT_T0);
        const __m256i lo = _mm256_loadu_si256((const __m256i *)(b + 2));
        const __m512i wv = two ? _mm512_inserti64x4(_mm512_castsi256_si512(lo), _mm256_loadu_si256((const __m256i *)(b + 36)), 1)
                               : _mm512_zextsi256_si512(lo);
        const __m512i nc = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, k80, wv));
        const __m512 dw = pair_f16(b, b + 34, two);
        G2_UNROLL
        for (int t = 0; t < NT; t++) {
            const __m512i s = _mm512_dpbusd_epi32(nc, au[t], wv);
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, dat[t]), acc[r][t]);
        }
    }
}

/* Q4_0: unsigned nibbles x signed activations; the -8 offset is -8 * sum(a), per token. */
G2_INLINE void step_q4_0(const int NR, const int NT, int two, const uint8_t *w, size_t rb, int64_t blk,
                         const int8_t *const *qa, const float *const *da, __m512 acc[4][4]) {
    const __m512i k8 = _mm512_set1_epi8(8), zero = _mm512_setzero_si512();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m512i av[4], n8[4];
    __m512 dat[4];
    G2_UNROLL
    for (int t = 0; t < NT; t++) {
        av[t] = ld_act_pair(qa[t] + 32 * blk, two);
        n8[t] = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, k8, av[t]));
        dat[t] = pair_f32(da[t] + blk, two);
    }
    G2_UNROLL
    for (int r = 0; r < NR; r++) {
        const uint8_t *b = w + (size_t)r * rb + (size_t)blk * 18;
        if (NT == 1) _mm_prefetch((const char *)(b + G2_PF), _MM_HINT_T0);
        const __m128i q0 = _mm_loadu_si128((const __m128i *)(b + 2));
        const __m256i v = two ? _mm256_setr_m128i(q0, _mm_loadu_si128((const __m128i *)(b + 20))) : _mm256_zextsi128_si256(q0);
        const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        /* [lo0 lo1 hi0 hi1] -> [lo0 hi0 lo1 hi1]: elements in order, block by block */
        const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        const __m512i wv = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
        const __m512 dw = pair_f16(b, b + 18, two);
        G2_UNROLL
        for (int t = 0; t < NT; t++) {
            const __m512i s = _mm512_dpbusd_epi32(n8[t], wv, av[t]);
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, dat[t]), acc[r][t]);
        }
    }
}

G2_INLINE void tile_q32(int q4, const int NR, const int NT, const uint8_t *w, size_t rb, const g2_act *a, int t0,
                        float *y, size_t ldy) {
    const int64_t nb = a->cols / 32;
    const int8_t *qa[4];
    const float *da[4];
    __m512 acc[4][4];
    G2_UNROLL
    for (int t = 0; t < 4; t++) {
        qa[t] = g2_act_q(a, t0 + (t < NT ? t : 0));
        da[t] = g2_act_d(a, t0 + (t < NT ? t : 0));
    }
    G2_UNROLL
    for (int r = 0; r < 4; r++)
        G2_UNROLL
        for (int t = 0; t < 4; t++) acc[r][t] = _mm512_setzero_ps();
    int64_t blk = 0;
    for (; blk + 2 <= nb; blk += 2) {
        if (q4) step_q4_0(NR, NT, 1, w, rb, blk, qa, da, acc);
        else step_q8_0(NR, NT, 1, w, rb, blk, qa, da, acc);
    }
    if (blk < nb) {
        if (q4) step_q4_0(NR, NT, 0, w, rb, blk, qa, da, acc);
        else step_q8_0(NR, NT, 0, w, rb, blk, qa, da, acc);
    }
    G2_UNROLL
    for (int t = 0; t < NT; t++)
        G2_UNROLL
        for (int r = 0; r < NR; r++) y[(size_t)t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}
#define BODY_Q8_0(R, T, ...) tile_q32(0, R, T, __VA_ARGS__)
#define BODY_Q4_0(R, T, ...) tile_q32(1, R, T, __VA_ARGS__)

/* Q4_0 decode on a plain row (mmap mode), 4 blocks a step with the whole 512-bit width: lane k
 * (128 bits) of `lo` holds block k's elements 0-15, of `hi` its elements 16-31; the -8 offset is
 * 8 x the activations, by two more vpdpbusd; one fp32 step applies the 4 blocks' scales, each
 * repeated over its 4 lanes. The activations must be in the same order: `qa4` holds them so,
 * per group of 4 blocks (q4_0_act_groups), shuffled once per call for all its rows; with qa4 =
 * NULL (rows too long for the caller's buffer) each row shuffles them itself, two cross-lane
 * shuffles per step. One core, 512 x 2304: 12.9-13.0 -> 15.0-19.4 GB/s, 19.3-19.4 in three of
 * five samples, with the shuffles in the row (`bench/kernels_bench.sh 1 5 512 2304`,
 * alternated); shuffled once per call, below (G2_Q4_0_DECODE_ROWS). Taking the offsets from the
 * record's block sums instead (vpmulld, vpexpandd) was slower than the pair-wise kernel: 12.1
 * GB/s. */
static float row_q4_0(const uint8_t *w, const g2_act *a, int t, const int8_t *qa4) {
    const int64_t nb = a->cols / 32;
    const int8_t *qa = g2_act_q(a, t);
    const float *da = g2_act_d(a, t);
    const __m512i m4 = _mm512_set1_epi8(0x0F), k8 = _mm512_set1_epi8(8);
    const __m512i rep4 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    __m512 acc[4][4];
    acc[0][0] = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *p = w + (size_t)b * 18;
        _mm_prefetch((const char *)(p + G2_PF), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + G2_PF + 64), _MM_HINT_T0);
        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(p + 2)));
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 20)), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 38)), 2);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 56)), 3);
        const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        __m512i alo, ahi;
        if (qa4) {
            alo = _mm512_load_si512(qa4 + 32 * b), ahi = _mm512_load_si512(qa4 + 32 * b + 64);
        } else {
            const __m512i a0 = _mm512_loadu_si512(qa + 32 * b), a1 = _mm512_loadu_si512(qa + 32 * b + 64);
            alo = _mm512_shuffle_i64x2(a0, a1, _MM_SHUFFLE(2, 0, 2, 0));
            ahi = _mm512_shuffle_i64x2(a0, a1, _MM_SHUFFLE(3, 1, 3, 1));
        }
        const __m512i sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, alo), hi, ahi);
        const __m512i off = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), k8, alo), k8, ahi);
        uint64_t h = 0; /* the 4 fp16 scales in one register (an array on the stack was slower) */
        for (int k = 0; k < 4; k++) {
            uint16_t hk;
            memcpy(&hk, p + 18 * k, 2);
            h |= (uint64_t)hk << 16 * k;
        }
        const __m128 d4 = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)h)), _mm_loadu_ps(da + b));
        const __m512 scale = _mm512_permutexvar_ps(rep4, _mm512_castps128_ps512(d4));
        acc[0][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(sum, off)), scale, acc[0][0]);
    }
    for (; b + 2 <= nb; b += 2) step_q4_0(1, 1, 1, w, 0, b, &qa, &da, acc);
    if (b < nb) step_q4_0(1, 1, 0, w, 0, b, &qa, &da, acc);
    return _mm512_reduce_add_ps(acc[0][0]);
}

/* Rows up to this many columns get their activations shuffled once per call (row_q4_0): 36 KiB
 * on the stack covers every Gemma 2 matrix (the 27B shape's FFN down has 36864 columns). */
#define G2_Q4_0_ACT_MAX_COLS 36864

/* Rows per decode call (g2_kernel.decode_rows). One core, 64 x 2304 weights in L2 (a one-off
 * program calling the kernels, 2000 passes, best of 5, three runs alternated): the shuffles in
 * every row 21.8-21.9 GB/s, once per call of 4 rows 22.4-23.1, of 64 rows 25.4-25.5. */
#define G2_Q4_0_DECODE_ROWS 64

/* Token t's activations, per group of 4 blocks (128 values), as row_q4_0 reads them: the 4
 * blocks' elements 0-15, then their elements 16-31. Only whole groups (cols / 128). */
static void q4_0_act_groups(const g2_act *a, int t, int8_t *qa4) {
    const int8_t *qa = g2_act_q(a, t);
    for (int64_t g = 0; g < a->cols / 128; g++) {
        const __m512i a0 = _mm512_loadu_si512(qa + 128 * g), a1 = _mm512_loadu_si512(qa + 128 * g + 64);
        _mm512_store_si512(qa4 + 128 * g, _mm512_shuffle_i64x2(a0, a1, _MM_SHUFFLE(2, 0, 2, 0)));
        _mm512_store_si512(qa4 + 128 * g + 64, _mm512_shuffle_i64x2(a0, a1, _MM_SHUFFLE(3, 1, 3, 1)));
    }
}
static void tile_q8_0(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    if (nt == 1) { /* decode: one row streamed at a time (see row_dot_float) */
        for (int r = 0; r < nr; r++) BODY_Q8_0(1, 1, w + (size_t)r * rb, rb, a, t0, y + r, ldy);
        return;
    }
    G2_TILE_SWITCH(BODY_Q8_0, nr, nt, w, rb, a, t0, y, ldy)
}
static void tile_q4_0(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    if (nt == 1) { /* decode: one row streamed at a time (see row_dot_float) */
        _Alignas(64) int8_t qa4[G2_Q4_0_ACT_MAX_COLS];
        const int grouped = a->cols <= G2_Q4_0_ACT_MAX_COLS;
        if (grouped) q4_0_act_groups(a, t0, qa4);
        for (int r = 0; r < nr; r++) y[r] = row_q4_0(w + (size_t)r * rb, a, t0, grouped ? qa4 : NULL);
        return;
    }
    G2_TILE_SWITCH(BODY_Q4_0, nr, nt, w, rb, a, t0, y, ldy)
}

/* ---- Q4_K / Q6_K (activations: int8 per 256 with an fp32 scale and sums per 16) ---------- */

G2_INLINE float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* One Q4_K super-block of one row, unpacked: 4 x 64 nibbles in element order, the 16-bit
 * sub-block scales laid out for vpmaddwd, the mins repeated per 16-element activation sum. */
typedef struct {
    __m512i q[4], sc[4];
    __m256i m;
    float d, dmin;
} q4k_row;

G2_INLINE void q4k_unpack(const uint8_t *b, q4k_row *u) {
    u->d = f16_at(b);
    u->dmin = f16_at(b + 2);
    uint32_t s[3];
    memcpy(s, b + 4, 12);
    /* the 6-bit scales/mins (types.h), four at a time: bytes j < 4 are the low 6 bits of s[0]
     * (scales) and s[1] (mins); j >= 4 take a nibble of s[2] and the top 2 bits of s[0]/s[1] */
    const uint32_t sc_lo = s[0] & 0x3f3f3f3f, m_lo = s[1] & 0x3f3f3f3f;
    const uint32_t sc_hi = (s[2] & 0x0f0f0f0f) | (((s[0] >> 6) & 0x03030303) << 4);
    const uint32_t m_hi = ((s[2] >> 4) & 0x0f0f0f0f) | (((s[1] >> 6) & 0x03030303) << 4);
    const __m128i sc16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)((uint64_t)sc_hi << 32 | sc_lo)));
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)((uint64_t)m_hi << 32 | m_lo)));
    const __m512i sc = _mm512_castsi128_si512(sc16);
    G2_UNROLL
    for (int j = 0; j < 4; j++) {
        const __m512i idx = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * j)), _mm256_set1_epi16((short)(2 * j + 1)), 1);
        u->sc[j] = _mm512_permutexvar_epi16(idx, sc);
        const __m256i v = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * j));
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        u->q[j] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, m4)),
                                     _mm256_and_si256(_mm256_srli_epi16(v, 4), m4), 1);
    }
    u->m = _mm256_setr_m128i(_mm_unpacklo_epi16(m16, m16), _mm_unpackhi_epi16(m16, m16));
}

G2_INLINE void tile_q4_k_body(const int NR, const int NT, const uint8_t *w, size_t rb, const g2_act *a, int t0,
                              float *y, size_t ldy) {
    const int64_t nsb = a->cols / 256;
    const int8_t *qa[4];
    const float *da[4];
    const int16_t *bs[4];
    __m512 acc[4][4];
    G2_UNROLL
    for (int t = 0; t < 4; t++) {
        const int tt = t0 + (t < NT ? t : 0);
        qa[t] = g2_act_q(a, tt), da[t] = g2_act_d(a, tt), bs[t] = g2_act_s(a, tt);
    }
    G2_UNROLL
    for (int r = 0; r < 4; r++)
        G2_UNROLL
        for (int t = 0; t < 4; t++) acc[r][t] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        G2_UNROLL
        for (int r = 0; r < NR; r++) {
            const uint8_t *b = w + (size_t)r * rb + (size_t)sb * 144;
            _mm_prefetch((const char *)(b + G2_PF), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + G2_PF + 64), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + G2_PF + 128), _MM_HINT_T0);
            q4k_row u;
            q4k_unpack(b, &u);
            G2_UNROLL
            for (int t = 0; t < NT; t++) {
                const int8_t *q = qa[t] + 256 * sb;
                __m512i s = _mm512_setzero_si512();
                G2_UNROLL
                for (int j = 0; j < 4; j++) {
                    const __m512i p = _mm512_maddubs_epi16(u.q[j], _mm512_loadu_si512(q + 64 * j));
                    s = _mm512_add_epi32(s, _mm512_madd_epi16(p, u.sc[j]));
                }
                const __m256i ms = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(bs[t] + 16 * sb)), u.m);
                const float dat = da[t][sb];
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(u.d * dat), acc[r][t]);
                acc[r][t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(_mm512_zextsi256_si512(ms)), _mm512_set1_ps(u.dmin * dat),
                                             acc[r][t]);
            }
        }
    }
    G2_UNROLL
    for (int t = 0; t < NT; t++)
        G2_UNROLL
        for (int r = 0; r < NR; r++) y[(size_t)t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

/* One Q6_K super-block of one row: 4 x 64 six-bit values (0..63) in element order, scales for
 * vpmaddwd, and the scales as 16-bit for the -32 offset (-32 * sum_k sc[k] * asum[k]). */
typedef struct {
    __m512i q[4], sc[4];
    __m256i sc16;
    float d;
} q6k_row;

G2_INLINE void q6k_unpack(const uint8_t *b, q6k_row *u) {
    u->d = f16_at(b + 208);
    u->sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 192)));
    const __m512i sc = _mm512_castsi256_si512(u->sc16);
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x03);
    /* per 16-bit lane: shift of the 2 high bits for the first / second 32 elements */
    const __m512i sh_lo = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i sh_hi = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    G2_UNROLL
    for (int h = 0; h < 2; h++) {
        const __m512i ql = _mm512_loadu_si512(b + 64 * h);
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h)));
        const __m512i hb_lo = _mm512_and_si512(_mm512_srlv_epi16(qh, sh_lo), m2);
        const __m512i hb_hi = _mm512_and_si512(_mm512_srlv_epi16(qh, sh_hi), m2);
        u->q[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_slli_epi16(hb_lo, 4));
        u->q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), _mm512_slli_epi16(hb_hi, 4));
    }
    G2_UNROLL
    for (int c = 0; c < 4; c++) {
        const __m512i idx = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_setr_m128i(_mm_set1_epi16((short)(4 * c)), _mm_set1_epi16((short)(4 * c + 1)))),
            _mm256_setr_m128i(_mm_set1_epi16((short)(4 * c + 2)), _mm_set1_epi16((short)(4 * c + 3))), 1);
        u->sc[c] = _mm512_permutexvar_epi16(idx, sc);
    }
}

G2_INLINE void tile_q6_k_body(const int NR, const int NT, const uint8_t *w, size_t rb, const g2_act *a, int t0,
                              float *y, size_t ldy) {
    const int64_t nsb = a->cols / 256;
    const int8_t *qa[4];
    const float *da[4];
    const int16_t *bs[4];
    __m512 acc[4][4];
    G2_UNROLL
    for (int t = 0; t < 4; t++) {
        const int tt = t0 + (t < NT ? t : 0);
        qa[t] = g2_act_q(a, tt), da[t] = g2_act_d(a, tt), bs[t] = g2_act_s(a, tt);
    }
    G2_UNROLL
    for (int r = 0; r < 4; r++)
        G2_UNROLL
        for (int t = 0; t < 4; t++) acc[r][t] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        G2_UNROLL
        for (int r = 0; r < NR; r++) {
            const uint8_t *b = w + (size_t)r * rb + (size_t)sb * 210;
            _mm_prefetch((const char *)(b + G2_PF), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + G2_PF + 64), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + G2_PF + 128), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + G2_PF + 192), _MM_HINT_T0);
            q6k_row u;
            q6k_unpack(b, &u);
            G2_UNROLL
            for (int t = 0; t < NT; t++) {
                const int8_t *q = qa[t] + 256 * sb;
                __m512i s = _mm512_setzero_si512();
                G2_UNROLL
                for (int j = 0; j < 4; j++) {
                    const __m512i p = _mm512_maddubs_epi16(u.q[j], _mm512_loadu_si512(q + 64 * j));
                    s = _mm512_add_epi32(s, _mm512_madd_epi16(p, u.sc[j]));
                }
                const __m256i off = _mm256_slli_epi32(
                    _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(bs[t] + 16 * sb)), u.sc16), 5);
                s = _mm512_sub_epi32(s, _mm512_zextsi256_si512(off));
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(u.d * da[t][sb]), acc[r][t]);
            }
        }
    }
    G2_UNROLL
    for (int t = 0; t < NT; t++)
        G2_UNROLL
        for (int r = 0; r < NR; r++) y[(size_t)t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

#define BODY_Q4_K(R, T, ...) tile_q4_k_body(R, T, __VA_ARGS__)
#define BODY_Q6_K(R, T, ...) tile_q6_k_body(R, T, __VA_ARGS__)
static void tile_q4_k(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    if (nt == 1) { /* decode: one row streamed at a time (see row_dot_float) */
        for (int r = 0; r < nr; r++) BODY_Q4_K(1, 1, w + (size_t)r * rb, rb, a, t0, y + r, ldy);
        return;
    }
    G2_TILE_SWITCH(BODY_Q4_K, nr, nt, w, rb, a, t0, y, ldy)
}
static void tile_q6_k(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    if (nt == 1) { /* decode: one row streamed at a time (see row_dot_float) */
        for (int r = 0; r < nr; r++) BODY_Q6_K(1, 1, w + (size_t)r * rb, rb, a, t0, y + r, ldy);
        return;
    }
    G2_TILE_SWITCH(BODY_Q6_K, nr, nt, w, rb, a, t0, y, ldy)
}

int g2_kernel_avx512(int type, int bf16_dot, g2_kernel *k) {
    k->mr = k->decode_rows = 4;
    k->nt = 4;
    switch (type) {
    case GEMMA2_TYPE_F32: k->act = G2_ACT_F32; k->tile = tile_f32; return 1;
    case GEMMA2_TYPE_BF16:
        k->act = bf16_dot ? G2_ACT_BF16 : G2_ACT_F32;
        k->tile = bf16_dot ? tile_bf16_dot : tile_bf16;
        return 1;
    case GEMMA2_TYPE_F16: k->act = G2_ACT_F32; k->tile = tile_f16; return 1;
    case GEMMA2_TYPE_Q8_0: k->act = G2_ACT_Q8_32; k->tile = tile_q8_0; break;
    case GEMMA2_TYPE_Q4_0: /* decode: the activations shuffled once per 64 rows (row_q4_0) */
        k->act = G2_ACT_Q8_32, k->tile = tile_q4_0, k->decode_rows = G2_Q4_0_DECODE_ROWS;
        break;
    case GEMMA2_TYPE_Q4_K: k->act = G2_ACT_Q8_256; k->tile = tile_q4_k; break;
    case GEMMA2_TYPE_Q6_K: k->act = G2_ACT_Q8_256; k->tile = tile_q6_k; break;
    default: return 0;
    }
    return 1;
}
