/* r16_avx512.c - AVX-512 kernels on the r16 layout (repack.h): 16 rows per group, one lane per
 * row, so no horizontal sums and one scale vector per block for all 16 rows.
 * One template per type, tile_<type>_n(NT, PF, ...), for NT tokens per pass over a group:
 *  - decode (NT = 1, PF = 1): streams the group once, with software prefetch ahead;
 *  - prefill (NT up to 16, 8 or 4, PF = 0): each weight vector unpacked once and used for every
 *    token (the group stays in L2 between passes, nothing to prefetch).
 * BF16 has a second template for bf16 activations (vdpbf16ps: the default where the CPU has
 * AVX512-BF16; GEMMA2_BF16_DOT=0 keeps the exact fp32 one). */
#include <immintrin.h>
#include <string.h>

#include "kernels/f16_avx512.h"
#include "kernels/r16_kernels.h"

/* The 16 rows' scale vectors of a super-block: 8 + 8 fp16 -> fp32 (rows in lanes). */
static inline __m512 d16(const uint8_t *p) { return g2_f16x16_ps(p); }

/* acc += the 16 lanes' 4 unsigned bytes of w . the 4 signed bytes at p (broadcast). In assembly
 * for the embedded broadcast ({1to16}) memory operand, which GCC does not fold into vpdpbusd (a
 * separate vpbroadcastd per product takes a vector-pipe slot; one core, in cache, prefill:
 * Q6_K 219 -> 230, Q4_K 254-265 -> 272 GFLOP/s, Q4_0 unchanged at ~296). */
static inline __m512i dpbusd_bcast(__m512i acc, __m512i w, const int8_t *p) {
    __asm__("vpdpbusd %1%{1to16%}, %2, %0" : "+v"(acc) : "m"(*(const int32_t *)(const void *)p), "v"(w));
    return acc;
}

/* 16 int8 at p -> 32-bit lanes (Q6_K's scales) by two 256-bit vpmovsxbd, for the reason of
 * f16_avx512.h: the 512-bit widening cost decode throughput beside the products. Measured with
 * Q4_K's scales and mins widened the same way (they now come from six_bit_lanes): 2B Q4_K_M,
 * `gemma2 bench -p 0 -n 64 -r 2 --probe-bw 256`, old and new builds alternated eight times,
 * weight traffic / probe 0.783-0.795 (median 0.789) -> 0.790-0.823 (median 0.803) with the
 * probes at 55-61 GB/s. */
static inline __m512i i8x16_epi32(const void *p) {
    const __m128i v = _mm_loadu_si128((const __m128i *)p);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_cvtepi8_epi32(v)), _mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)), 1);
}

/* Six-bit values of a Q4_K super-block (repack.c: six_bit) into bytes, kept in two registers:
 * byte 16j + r of v[0] (j < 4) or v[1] (j >= 4) is sub-block j's value for row r. */
static inline void six_bit_unpack(const uint8_t *p, __m512i v[2]) {
    const __m512i lo = _mm512_loadu_si512(p), m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x03);
    const __m512i hi = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)(p + 64)));
    const __m512i sh0 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i sh1 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    v[0] = _mm512_or_si512(_mm512_and_si512(lo, m4), _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hi, sh0), m2), 4));
    v[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(lo, 4), m4),
                           _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hi, sh1), m2), 4));
}

/* Sub-block j's 16 values of six_bit_unpack's v as 32-bit lanes (row r in lane r): vpermd puts
 * the word holding rows 4L..4L+3 in all four lanes of 128-bit lane L, vpshufb keeps byte i of
 * lane 4L+i. (Before, the values went through a stack array and 16-byte loads widened as
 * i8x16_epi32 does: the same speed, decode 0.768-0.789 either way at 59-62 GB/s, six
 * alternations; two instructions instead of five and no store to reload.) */
static inline __m512i six_bit_lanes(const __m512i v[2], int j) {
    const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(4 * (j & 3)), _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3));
    const __m512i keep = _mm512_broadcast_i32x4(_mm_setr_epi8(0, -1, -1, -1, 5, -1, -1, -1, 10, -1, -1, -1, 15, -1, -1, -1));
    return _mm512_shuffle_epi8(_mm512_permutexvar_epi32(idx, v[j >> 2]), keep);
}

/* BF16, NT <= 8 tokens: each 64-byte vector holds columns 2p, 2p+1 of 16 rows; the even column is
 * the low half of each 32-bit lane (shift it up: bf16 -> fp32 is a 16-bit shift), the odd one the
 * high half (mask the low half off). 2 x NT FMAs with broadcast fp32 activations: exact
 * products, fp32 sums (separate accumulators for the even and the odd columns). */
G2_INLINE void tile_bf16_n(const int NT, const int PF, const uint8_t *g, int64_t cols, const g2_act *a, int t0, float *y, size_t ldy) {
    const __m512i hi = _mm512_set1_epi32((int)0xFFFF0000u);
    const float *x[8];
    __m512 ae[8], ao[8];
    G2_UNROLL8
    for (int t = 0; t < NT; t++) x[t] = g2_act_f32(a, t0 + t), ae[t] = ao[t] = _mm512_setzero_ps();
    for (int64_t p = 0; p < cols / 2; p++) {
        R16_PREFETCH(PF, g + (size_t)p * 64 + R16_PF, 64);
        const __m512i v = _mm512_loadu_si512(g + (size_t)p * 64);
        const __m512 e = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), o = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
        G2_UNROLL8
        for (int t = 0; t < NT; t++) {
            ae[t] = _mm512_fmadd_ps(e, _mm512_set1_ps(x[t][2 * p]), ae[t]);
            ao[t] = _mm512_fmadd_ps(o, _mm512_set1_ps(x[t][2 * p + 1]), ao[t]);
        }
    }
    G2_UNROLL8
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(y + (size_t)t * ldy, _mm512_add_ps(ae[t], ao[t]));
}

/* F32 and F16 (F16 = 0 / 1), NT <= 8 tokens: column c of the 16 rows is one vector (F16:
 * vcvtph2ps of 32 bytes, exact), FMA'd with token t's broadcast activation c: exact products,
 * fp32 sums. NA accumulators per token over consecutive columns (4 in decode, to cover the FMA
 * latency with one token; 2 with more tokens, which are independent chains already). */
G2_INLINE void tile_float_n(const int NT, const int PF, const int F16, const uint8_t *g, int64_t cols, const g2_act *a,
                            int t0, float *y, size_t ldy) {
    const int NA = NT == 1 ? 4 : 2;
    const size_t cb = F16 ? 32 : 64; /* bytes per column */
    const float *x[8];
    __m512 acc[4][8];
    G2_UNROLL8
    for (int t = 0; t < NT; t++) {
        x[t] = g2_act_f32(a, t0 + t);
        G2_UNROLL
        for (int j = 0; j < 4; j++) acc[j][t] = _mm512_setzero_ps();
    }
#define R16_COLUMN(c) (F16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(g + (size_t)(c) * cb))) \
                           : _mm512_loadu_ps(g + (size_t)(c) * cb))
    int64_t c = 0;
    for (; c + 4 <= cols; c += 4) {
        R16_PREFETCH(PF, g + (size_t)c * cb + R16_PF, (int)(4 * cb));
        const __m512 w[4] = {R16_COLUMN(c), R16_COLUMN(c + 1), R16_COLUMN(c + 2), R16_COLUMN(c + 3)};
        G2_UNROLL
        for (int j = 0; j < 4; j++)
            G2_UNROLL8
            for (int t = 0; t < NT; t++) acc[j % NA][t] = _mm512_fmadd_ps(w[j], _mm512_set1_ps(x[t][c + j]), acc[j % NA][t]);
    }
    for (; c < cols; c++) {
        const __m512 w = R16_COLUMN(c);
        G2_UNROLL8
        for (int t = 0; t < NT; t++) acc[0][t] = _mm512_fmadd_ps(w, _mm512_set1_ps(x[t][c]), acc[0][t]);
    }
#undef R16_COLUMN
    G2_UNROLL8
    for (int t = 0; t < NT; t++)
        _mm512_storeu_ps(y + (size_t)t * ldy, _mm512_add_ps(_mm512_add_ps(acc[0][t], acc[1][t]), _mm512_add_ps(acc[2][t], acc[3][t])));
}
#define tile_f32_n(NT, PF, ...) tile_float_n(NT, PF, 0, __VA_ARGS__)
#define tile_f16_n(NT, PF, ...) tile_float_n(NT, PF, 1, __VA_ARGS__)

/* F16 decode (one token): each column's two 16-byte halves widened by 256-bit vcvtph2ps, FMA'd
 * on 256-bit vectors into 8 sums (4 columns x 2 halves), as r16_avx2.c does. The 512-bit form
 * above (one vcvtph2ps and one FMA per column) read less of the bandwidth once memory was fast
 * (f16_avx512.h): 2B F16 model, `gemma2 bench -p 0 -n 32 -r 2 --probe-bw 256`, alternated with
 * the old build, weight traffic / probe with the probes at 54-62 GB/s 0.773-0.824 (six runs)
 * against 0.883-0.908 for this kernel (two) and 0.884-0.926 for r16_avx2.c's in its place
 * (four); 0.91-0.97 for each at 33-41 GB/s. Prefill keeps the 512-bit form:
 * there each conversion serves up to 8 tokens, and the split one was 3% slower (pp512 48.4 vs
 * 50.0 t/s). */
G2_INLINE void decode_f16_ymm(const uint8_t *g, int64_t cols, const g2_act *a, int t0, float *y) {
    const float *x = g2_act_f32(a, t0);
    __m256 acc[4][2];
    G2_UNROLL
    for (int j = 0; j < 4; j++) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
#define R16_HALF16(c, h) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(g + (size_t)(c) * 32 + 16 * (h))))
    int64_t c = 0;
    for (; c + 4 <= cols; c += 4) {
        R16_PREFETCH(1, g + (size_t)c * 32 + R16_PF, 128);
        G2_UNROLL
        for (int j = 0; j < 4; j++) {
            const __m256 xv = _mm256_broadcast_ss(x + c + j);
            acc[j][0] = _mm256_fmadd_ps(R16_HALF16(c + j, 0), xv, acc[j][0]);
            acc[j][1] = _mm256_fmadd_ps(R16_HALF16(c + j, 1), xv, acc[j][1]);
        }
    }
    for (; c < cols; c++) {
        const __m256 xv = _mm256_broadcast_ss(x + c);
        acc[0][0] = _mm256_fmadd_ps(R16_HALF16(c, 0), xv, acc[0][0]);
        acc[0][1] = _mm256_fmadd_ps(R16_HALF16(c, 1), xv, acc[0][1]);
    }
#undef R16_HALF16
    G2_UNROLL
    for (int h = 0; h < 2; h++)
        _mm256_storeu_ps(y + 8 * h, _mm256_add_ps(_mm256_add_ps(acc[0][h], acc[1][h]), _mm256_add_ps(acc[2][h], acc[3][h])));
}

/* acc += v . (activation pair p of a bf16 record, broadcast). Written in assembly for the
 * embedded broadcast ({1to16}) memory operand: GCC does not fold a broadcast into vdpbf16ps,
 * and a separate vbroadcastss per product takes a vector-pipe slot from it (327 -> 411 GFLOP/s
 * in bench/kernels_bench.sh 2 3 with the operand folded). */
static inline __m512 dp_pair(__m512 acc, __m512bh v, const uint8_t *x, int64_t p) {
    const float *pair = (const float *)(const void *)(x + (size_t)p * 4);
    __asm__("vdpbf16ps %1%{1to16%}, %2, %0" : "+v"(acc) : "m"(*pair), "v"(v));
    return acc;
}

/* BF16 with bf16 activations (G2_ACT_BF16), NT <= 16 tokens: the lane's
 * pair of weights (columns 2p, 2p+1 of its row) is exactly vdpbf16ps's pair, so one
 * instruction with the token's broadcast pair of activations advances 16 rows by 2 products.
 * Decode (NT = 1) alternates two accumulators (even and odd p) to hide the instruction's latency;
 * with more tokens the chains are independent already and one each keeps to 16 registers. */
__attribute__((target("avx512bf16"))) G2_INLINE void tile_bf16dot_n(const int NT, const int PF, const uint8_t *g,
                                                                     int64_t cols, const g2_act *a, int t0, float *y,
                                                                     size_t ldy) {
    const uint8_t *x[16];
    __m512 acc[2][16];
    G2_UNROLL16
    for (int t = 0; t < NT; t++) x[t] = a->base + (size_t)(t0 + t) * a->stride, acc[0][t] = acc[1][t] = _mm512_setzero_ps();
    const int64_t pairs = cols / 2;
    const int odd = NT == 1; /* the accumulator of odd p */
    int64_t p = 0;
    for (; p + 2 <= pairs; p += 2) {
        R16_PREFETCH(PF, g + (size_t)p * 64 + R16_PF, 128);
        const __m512bh v0 = (__m512bh)_mm512_loadu_si512(g + (size_t)p * 64);
        const __m512bh v1 = (__m512bh)_mm512_loadu_si512(g + (size_t)p * 64 + 64);
        G2_UNROLL16
        for (int t = 0; t < NT; t++) {
            acc[0][t] = dp_pair(acc[0][t], v0, x[t], p);
            acc[odd][t] = dp_pair(acc[odd][t], v1, x[t], p + 1);
        }
    }
    if (p < pairs) {
        const __m512bh v0 = (__m512bh)_mm512_loadu_si512(g + (size_t)p * 64);
        G2_UNROLL16
        for (int t = 0; t < NT; t++) acc[0][t] = dp_pair(acc[0][t], v0, x[t], p);
    }
    G2_UNROLL16
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(y + (size_t)t * ldy, _mm512_add_ps(acc[0][t], acc[1][t]));
}


/* ---- r16e (BF16 in 12 bits a weight, layout: bf16_codes.c) with bf16 activations ------------ */

/* Word i (of 32) of pair p's r16 vector (row i / 2's column 2p + i % 2) within (wl, wh), the
 * bytes of pairs p and p + 1 interleaved into words as AVX2's r16e kernel does it (r16_avx2.c):
 * lanes 0-1 of wl hold pair p's rows 0-3 and 4-7 (even columns, then odd ones), lanes 2-3 pair
 * p + 1's; wh the same for rows 8-15. vpermt2w indices (32 + i: wh's word i). */
static inline __m512i r16e_word_index(int second) {
    uint16_t idx[32];
    for (int i = 0; i < 32; i++) {
        const int r = i / 2, o = i % 2;
        idx[i] = (uint16_t)((r < 8 ? 0 : 32) + 16 * second + 8 * ((r & 7) >> 2) + 4 * o + (r & 3));
    }
    return _mm512_loadu_si512(idx);
}

/* Prefetch distance of the r16e decode kernel: three times the r16 kernels' (R16_PF). 2B BF16 on
 * a 2-vCPU Zen 5 host (`gemma2 bench -p 0 -n 64 -r 2`, a build per distance, each run twice
 * beside the bandwidth probe, which read 73-85 GB/s): 0 (none) 12.8 t/s, 2048 14.4, 8192
 * 17.3-17.7, 12288 18.1-18.3, 16384 17.9-18.0. 4096 and 12288 alternated 14 times: with the
 * probe at 82-86 GB/s 16.1-16.3 against 18.0-18.4 t/s (three pairs); at 48-54 GB/s, where
 * memory is the limit, 11.9-12.3 against 11.6-12.3. The r16 kernels did not gain from 12288
 * (BF16 14.46 both, Q4_0 40.4 -> 37.9 t/s). */
#define R16E_PF 12288

/* Decoding of one r16e group: the group's two code tables (exponent bytes by code), its
 * escapes, the stream, and the constants of r16e_pairs. */
typedef struct {
    __m512i hi, lo, nib, m0f, m80, m7f, idx0, idx1;
    const uint8_t *esc; /* the next escape */
    const uint8_t *s;   /* the next two column pairs' bytes */
} r16e_dec;

G2_INLINE void r16e_dec_init(r16e_dec *d, const uint8_t *g, int64_t cols) {
    d->hi = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)g));
    d->lo = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)(g + 16)));
    d->nib = _mm512_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4, 0, 0, 0, 0, 4, 4, 4, 4);
    d->m0f = _mm512_set1_epi8(0x0F), d->m80 = _mm512_set1_epi8((char)0x80), d->m7f = _mm512_set1_epi8(0x7F);
    d->idx0 = r16e_word_index(0), d->idx1 = r16e_word_index(1);
    d->esc = g + G2_R16E_GROUP_BYTES(cols) - G2_R16E_ESC;
    d->s = g + 32;
}

/* The stream's two column pairs at s (96 bytes; `two` = 0: the last pair alone, v[1] then
 * garbage) as the two r16 BF16 vectors of the same bits: a 4-bit code per weight looked up into
 * its exponent bytes by vpshufb, the sign and mantissa byte or-ed in, words gathered by
 * vpermt2w. */
G2_INLINE void r16e_pairs(r16e_dec *d, const uint8_t *s, int two, __m512i v[2]) {
    const __m256i sm0 = _mm256_loadu_si256((const __m256i *)(const void *)s);
    const __m256i cx0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(s + 32)));
    __m512i sm = _mm512_castsi256_si512(sm0), cx = _mm512_castsi256_si512(cx0);
    if (two) {
        sm = _mm512_inserti64x4(sm, _mm256_loadu_si256((const __m256i *)(const void *)(s + 48)), 1);
        cx = _mm512_inserti64x4(cx, _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(s + 80))), 1);
    } else { /* the upper halves zero: no codes there to be taken for escapes */
        sm = _mm512_zextsi256_si512(sm0);
        cx = _mm512_zextsi256_si512(cx0);
    }
    const __m512i c = _mm512_and_si512(_mm512_srlv_epi32(cx, d->nib), d->m0f);
    __m512i b3 = _mm512_ternarylogic_epi32(sm, d->m80, _mm512_shuffle_epi8(d->hi, c), 0xEA); /* (a & b) | c */
    __m512i b2 = _mm512_ternarylogic_epi32(sm, d->m7f, _mm512_shuffle_epi8(d->lo, c), 0xEA);
    uint64_t m = _mm512_cmpeq_epi8_mask(c, d->m0f);
    /* escapes, in stream order (pair p's weights, then p + 1's), or-ed into their bytes in
     * registers: through memory, the vector reload after byte stores cannot be forwarded */
    for (; __builtin_expect(m != 0, 0); m &= m - 1) {
        const __mmask64 k = m & -m;
        const uint8_t e = *d->esc++;
        b3 = _mm512_or_si512(b3, _mm512_maskz_set1_epi8(k, (char)(e >> 1)));
        b2 = _mm512_or_si512(b2, _mm512_maskz_set1_epi8(k, (char)((e & 1) << 7)));
    }
    const __m512i wl = _mm512_unpacklo_epi8(b2, b3), wh = _mm512_unpackhi_epi8(b2, b3);
    v[0] = _mm512_permutex2var_epi16(wl, d->idx0, wh);
    v[1] = _mm512_permutex2var_epi16(wl, d->idx1, wh);
}

/* Step p (even) of a group of `pairs` column pairs: prefetches ahead, decodes pairs p and p + 1
 * into v (r16e_pairs) and moves on. Returns whether pair p + 1 exists. */
G2_INLINE int r16e_step(r16e_dec *d, int64_t p, int64_t pairs, __m512i v[2]) {
    const int two = p + 1 < pairs;
    R16_PREFETCH(1, d->s + R16E_PF, 96);
    r16e_pairs(d, d->s, two, v);
    d->s += 96;
    return two;
}

/* r16e decode with bf16 activations (G2_ACT_BF16 record x): two column pairs (96 bytes) a step
 * become the two r16 BF16 vectors of the same bits (r16e_pairs) and go into the accumulators as
 * tile_bf16dot_n's decode (NT = 1) takes them: even pairs into one, odd pairs into the other,
 * then their sum. The same products in the same order: the bits of the tensor left r16, from
 * 0.75 of the bytes. */
__attribute__((target("avx512bf16"))) void g2_r16e_decode_bf16dot_avx512(const uint8_t *g, int64_t cols,
                                                                         const uint8_t *x, float *y) {
    r16e_dec d;
    r16e_dec_init(&d, g, cols);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (int64_t p = 0; p < cols / 2; p += 2) {
        __m512i v[2];
        const int two = r16e_step(&d, p, cols / 2, v);
        acc0 = dp_pair(acc0, (__m512bh)v[0], x, p);
        if (two) acc1 = dp_pair(acc1, (__m512bh)v[1], x, p + 1);
    }
    _mm512_storeu_ps(y, _mm512_add_ps(acc0, acc1));
}

/* r16e decode with fp32 activations (AVX-512 without AVX512-BF16, or GEMMA2_BF16_DOT=0): the
 * vectors of r16e_pairs into tile_bf16_n's decode (NT = 1): each lane's even column shifted up
 * into fp32, its odd one masked, exact products into an even and an odd accumulator, then their
 * sum. The same products in the same order: the bits of the tensor left r16. */
void g2_r16e_decode_avx512(const uint8_t *g, int64_t cols, const float *x, float *y) {
    const __m512i hi16 = _mm512_set1_epi32((int)0xFFFF0000u);
    r16e_dec d;
    r16e_dec_init(&d, g, cols);
    __m512 ae = _mm512_setzero_ps(), ao = _mm512_setzero_ps();
    for (int64_t p = 0; p < cols / 2; p += 2) {
        __m512i v[2];
        const int two = r16e_step(&d, p, cols / 2, v);
        ae = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v[0], 16)), _mm512_set1_ps(x[2 * p]), ae);
        ao = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v[0], hi16)), _mm512_set1_ps(x[2 * p + 1]), ao);
        if (two) {
            ae = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v[1], 16)), _mm512_set1_ps(x[2 * p + 2]), ae);
            ao = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v[1], hi16)), _mm512_set1_ps(x[2 * p + 3]), ao);
        }
    }
    _mm512_storeu_ps(y, _mm512_add_ps(ae, ao));
}

/* Q4_0 and Q8_0 (Q8 = 0 / 1) with int8 activations (G2_ACT_Q8_32): per block of 32, 8
 * vpdpbusd of 16 rows x 4 unsigned weights with a broadcast word of 4 activations, then one fp32
 * step with the 16 rows' scales. Q4_0's nibbles are split out of 4 vectors and their -8 offset
 * enters as -8 * sum(a) in the starting value; Q8_0's quants are stored + 128 (repack.c flips
 * the sign bit, making them unsigned for vpdpbusd) in 8 vectors, and the 128 comes back as
 * -128 * sum(a). Either way vector pair j holds elements 8j..8j+3 and 8j+4..8j+7. */
G2_INLINE void tile_q32_n(const int NT, const int PF, const int Q8, const uint8_t *g, int64_t cols, const g2_act *a, int t0,
                          float *y, size_t ldy) {
    R16_ACT(NT, 8);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const size_t block_bytes = Q8 ? 544 : 288;
    const int32_t offset = Q8 ? -128 : -8;
    __m512 acc[8];
    G2_UNROLL8
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < cols / 32; b++) {
        const uint8_t *blk = g + (size_t)b * block_bytes;
        R16_PREFETCH(PF, blk + R16_PF, (int)block_bytes);
        __m512i s0[8], s1[8];
        G2_UNROLL8
        for (int t = 0; t < NT; t++) s0[t] = _mm512_set1_epi32(offset * (int32_t)sa[t][b]), s1[t] = _mm512_setzero_si512();
        G2_UNROLL8
        for (int j = 0; j < 4; j++) {
            __m512i v0, v1;
            if (Q8) {
                v0 = _mm512_loadu_si512(blk + 32 + 128 * j), v1 = _mm512_loadu_si512(blk + 96 + 128 * j);
            } else {
                const __m512i v = _mm512_loadu_si512(blk + 32 + 64 * j);
                v0 = _mm512_and_si512(v, m4), v1 = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            }
            G2_UNROLL8
            for (int t = 0; t < NT; t++) {
                s0[t] = dpbusd_bcast(s0[t], v0, q[t] + 32 * b + 8 * j);
                s1[t] = dpbusd_bcast(s1[t], v1, q[t] + 32 * b + 8 * j + 4);
            }
        }
        const __m512 d = d16(blk);
        G2_UNROLL8
        for (int t = 0; t < NT; t++)
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0[t], s1[t])), _mm512_mul_ps(d, _mm512_set1_ps(da[t][b])),
                                     acc[t]);
    }
    G2_UNROLL8
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(y + (size_t)t * ldy, acc[t]);
}
#define tile_q4_0_n(NT, PF, ...) tile_q32_n(NT, PF, 0, __VA_ARGS__)
#define tile_q8_0_n(NT, PF, ...) tile_q32_n(NT, PF, 1, __VA_ARGS__)

/* Q4_K with G2_ACT_Q8_256 activations: per sub-block of 32, 8 vpdpbusd as in Q4_0, times the
 * rows' integer scales (vpmulld); the mins times the activation sums per sub-block. Decode
 * prefetches a super-block and more ahead, spread over the sub-blocks (a burst of prefetches
 * overflows the miss buffers and some are dropped): 8 x 320 bytes cover 2304. */
G2_INLINE void tile_q4_k_n(const int NT, const int PF, const uint8_t *g, int64_t cols, const g2_act *a, int t0, float *y, size_t ldy) {
    R16_ACT(NT, 8);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[4];
    G2_UNROLL
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < cols / 256; sb++) {
        const uint8_t *blk = g + (size_t)sb * 2304;
        __m512i sc[2], mn[2];
        six_bit_unpack(blk + 64, sc);
        six_bit_unpack(blk + 160, mn);
        __m512i S[4], M[4];
        G2_UNROLL
        for (int t = 0; t < NT; t++) S[t] = M[t] = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {
            R16_PREFETCH(PF, blk + 2304 + R16_PF + 320 * j, 320);
            __m512i lo[4], hv[4];
            G2_UNROLL
            for (int v = 0; v < 4; v++) {
                const __m512i w = _mm512_loadu_si512(blk + 256 + 64 * (4 * j + v));
                lo[v] = _mm512_and_si512(w, m4), hv[v] = _mm512_and_si512(_mm512_srli_epi16(w, 4), m4);
            }
            const __m512i scj = six_bit_lanes(sc, j);
            const __m512i mnj = six_bit_lanes(mn, j);
            G2_UNROLL
            for (int t = 0; t < NT; t++) {
                const int8_t *qa = q[t] + 256 * sb + 32 * j;
                __m512i s0 = _mm512_setzero_si512(), s1 = s0;
                G2_UNROLL
                for (int v = 0; v < 4; v++) {
                    s0 = dpbusd_bcast(s0, lo[v], qa + 8 * v);
                    s1 = dpbusd_bcast(s1, hv[v], qa + 8 * v + 4);
                }
                const int16_t *bs = sa[t] + 16 * sb;
                S[t] = _mm512_add_epi32(S[t], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), scj));
                M[t] = _mm512_add_epi32(M[t], _mm512_mullo_epi32(mnj, _mm512_set1_epi32(bs[2 * j] + bs[2 * j + 1])));
            }
        }
        const __m512 d = d16(blk), dmin = d16(blk + 32);
        G2_UNROLL
        for (int t = 0; t < NT; t++) {
            const __m512 dab = _mm512_set1_ps(da[t][sb]);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S[t]), _mm512_mul_ps(d, dab), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(M[t]), _mm512_mul_ps(dmin, dab), acc[t]);
        }
    }
    G2_UNROLL
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

/* Q6_K with G2_ACT_Q8_256 activations: per sub-block of 16, the 6-bit values rebuilt from two
 * low-nibble vectors and one high-bits vector, 4 vpdpbusd, the -32 offset from the activation
 * sums, times the rows' int8 scales (vpmulld). Decode prefetches as Q4_K: 16 x 256 bytes cover
 * 3360. */
G2_INLINE void tile_q6_k_n(const int NT, const int PF, const uint8_t *g, int64_t cols, const g2_act *a, int t0, float *y, size_t ldy) {
    R16_ACT(NT, 8);
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m512 acc[4];
    G2_UNROLL
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < cols / 256; sb++) {
        const uint8_t *blk = g + (size_t)sb * 3360;
        __m512i S[4];
        G2_UNROLL
        for (int t = 0; t < NT; t++) S[t] = _mm512_setzero_si512();
        for (int k = 0; k < 16; k++) {
            R16_PREFETCH(PF, blk + 3360 + R16_PF + 256 * k, 256);
            const __m512i l0 = _mm512_loadu_si512(blk + 288 + 64 * (2 * k)), l1 = _mm512_loadu_si512(blk + 288 + 64 * (2 * k + 1));
            const __m512i h = _mm512_loadu_si512(blk + 2336 + 64 * k);
            const __m512i w[4] = {
                _mm512_or_si512(_mm512_and_si512(l0, m4), _mm512_and_si512(_mm512_slli_epi16(h, 4), m30)),
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l0, 4), m4), _mm512_and_si512(_mm512_slli_epi16(h, 2), m30)),
                _mm512_or_si512(_mm512_and_si512(l1, m4), _mm512_and_si512(h, m30)),
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l1, 4), m4), _mm512_and_si512(_mm512_srli_epi16(h, 2), m30)),
            };
            const __m512i sck = i8x16_epi32(blk + 32 + 16 * k);
            G2_UNROLL
            for (int t = 0; t < NT; t++) {
                const int8_t *qa = q[t] + 256 * sb + 16 * k;
                __m512i s0 = _mm512_set1_epi32(-32 * (int32_t)sa[t][16 * sb + k]), s1 = _mm512_setzero_si512();
                s0 = dpbusd_bcast(s0, w[0], qa);
                s1 = dpbusd_bcast(s1, w[1], qa + 4);
                s0 = dpbusd_bcast(s0, w[2], qa + 8);
                s1 = dpbusd_bcast(s1, w[3], qa + 12);
                S[t] = _mm512_add_epi32(S[t], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sck));
            }
        }
        const __m512 d = d16(blk);
        G2_UNROLL
        for (int t = 0; t < NT; t++) acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S[t]), _mm512_mul_ps(d, _mm512_set1_ps(da[t][sb])), acc[t]);
    }
    G2_UNROLL
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(y + (size_t)t * ldy, acc[t]);
}

#define R16_SWITCH8(F)                                                                                        \
    switch (nt) {                                                                                             \
        R16_CASE(F, 1) R16_CASE(F, 2) R16_CASE(F, 3) R16_CASE(F, 4) R16_CASE(F, 5) R16_CASE(F, 6) R16_CASE(F, 7) \
        R16_CASE(F, 8) default : break;                                                                       \
    }
R16_TILE(tile_f32, R16_SWITCH8, tile_f32_n)
R16_TILE(tile_f16, R16_SWITCH8, tile_f16_n)
R16_TILE(tile_bf16, R16_SWITCH8, tile_bf16_n)
R16_TILE(tile_q4_0, R16_SWITCH8, tile_q4_0_n)
R16_TILE(tile_q8_0, R16_SWITCH8, tile_q8_0_n)
R16_TILE(tile_q4_k, R16_SWITCH4, tile_q4_k_n)
R16_TILE(tile_q6_k, R16_SWITCH4, tile_q6_k_n)

static void tile_bf16dot(const uint8_t *g, int64_t cols, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    switch (nt) {
        R16_CASE(tile_bf16dot_n, 1) R16_CASE(tile_bf16dot_n, 2) R16_CASE(tile_bf16dot_n, 3) R16_CASE(tile_bf16dot_n, 4)
        R16_CASE(tile_bf16dot_n, 5) R16_CASE(tile_bf16dot_n, 6) R16_CASE(tile_bf16dot_n, 7) R16_CASE(tile_bf16dot_n, 8)
        R16_CASE(tile_bf16dot_n, 9) R16_CASE(tile_bf16dot_n, 10) R16_CASE(tile_bf16dot_n, 11) R16_CASE(tile_bf16dot_n, 12)
        R16_CASE(tile_bf16dot_n, 13) R16_CASE(tile_bf16dot_n, 14) R16_CASE(tile_bf16dot_n, 15) R16_CASE(tile_bf16dot_n, 16)
    default: break;
    }
}

int g2_r16_tile_avx512(int type, int act, g2_r16_tile_fn *fn) {
    if (act != g2_r16_act(type)) {
        if (type != GEMMA2_TYPE_BF16 || act != G2_ACT_BF16) return 0;
        *fn = tile_bf16dot;
        return 16;
    }
    switch (type) {
    case GEMMA2_TYPE_F32: *fn = tile_f32; return 8;
    case GEMMA2_TYPE_F16: *fn = tile_f16; return 8;
    case GEMMA2_TYPE_BF16: *fn = tile_bf16; return 8;
    case GEMMA2_TYPE_Q4_0: *fn = tile_q4_0; return 8;
    case GEMMA2_TYPE_Q8_0: *fn = tile_q8_0; return 8;
    case GEMMA2_TYPE_Q4_K: *fn = tile_q4_k; return 4;
    case GEMMA2_TYPE_Q6_K: *fn = tile_q6_k; return 4;
    default: return 0;
    }
}

R16_DECODE(decode_f32, tile_f32_n)
static void decode_f16(const uint8_t *g, int64_t cols, const g2_act *a, int t0, int nt, float *y, size_t ldy) {
    (void)nt, (void)ldy;
    decode_f16_ymm(g, cols, a, t0, y);
}
R16_DECODE(decode_bf16, tile_bf16_n)
R16_DECODE(decode_bf16dot, tile_bf16dot_n)
R16_DECODE_FINE(decode_q4_0, tile_q4_0_n)
R16_DECODE_FINE(decode_q8_0, tile_q8_0_n)
R16_DECODE_FINE(decode_q4_k, tile_q4_k_n)
R16_DECODE_FINE(decode_q6_k, tile_q6_k_n)

g2_r16_tile_fn g2_r16_decode_avx512(int type, int act) {
    if (act != g2_r16_act(type)) return type == GEMMA2_TYPE_BF16 && act == G2_ACT_BF16 ? decode_bf16dot : NULL;
    switch (type) {
    case GEMMA2_TYPE_F32: return decode_f32;
    case GEMMA2_TYPE_F16: return decode_f16;
    case GEMMA2_TYPE_BF16: return decode_bf16;
    case GEMMA2_TYPE_Q4_0: return decode_q4_0;
    case GEMMA2_TYPE_Q8_0: return decode_q8_0;
    case GEMMA2_TYPE_Q4_K: return decode_q4_k;
    case GEMMA2_TYPE_Q6_K: return decode_q6_k;
    default: return NULL;
    }
}
