/* r16_avx2.c - AVX2 + FMA kernels on the r16 layout (repack.h), for CPUs without AVX-512.
 *
 * A 64-byte vector of the layout holds the same columns of 16 rows, 4 bytes per row; on AVX2
 * its two 32-byte halves are rows 0-7 and rows 8-15, so every step below runs once per half,
 * with one lane per row as in r16_avx512.c (no horizontal sums, one scale vector per block).
 * AVX2 has no vpdpbusd: unsigned x signed bytes go through vpmaddubsw (pairs -> int16) and
 * vpmaddwd (-> int32). Where the int16 pair sums cannot overflow (4-bit weights: 16 products of
 * at most 15 x 127 per int16 lane, 30480 < 32767) they are added as int16 over a whole block and
 * widened once; Q6_K (6-bit) widens every two products, Q8_0 every product, with the signed
 * weights made unsigned by vpsignb (|w| x sign(a, w), as kern_avx2.c).
 * One template per type, tile_<type>_n(NT, PF, ...): decode NT = 1 with software prefetch
 * (PF), prefill NT <= 4 (BF16: 2), the quantized types in two passes of 8 rows (16 registers).
 * Products and sums are the ones the plain kernels compute, so results agree with them to
 * rounding (exactly for the integer parts). Shared macros: r16_kernels.h. */
#include <immintrin.h>
#include <string.h>

#include "kernels/r16_kernels.h"

/* 8 fp16 scales (rows 8h..8h+7) -> fp32 lanes */
G2_INLINE __m256 d8(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p)); }

/* the 4 activation bytes at p in every lane */
G2_INLINE __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* An empty asm that says v is in a register here, so GCC may not re-associate integer sums
 * across it. Without it GCC (12, -O2) turns each token's chain of sums over a block into one
 * tree and keeps every product live until the block's end: with 16 registers they go to the
 * stack (tile_q4_0: 223 stack accesses, 0 with it). Prefill with 2 threads
 * (`GEMMA2_ISA=avx2 bench/kernels_bench.sh 2 3`, matmul512 of r16 9216 x 2304): Q4_0 333 -> 415,
 * Q4_K 301 -> 394-413, Q8_0 240 -> 255 GFLOP/s. */
#define KEEP(v) __asm__("" : "+x"(v))

G2_INLINE void store_halves(float *y, __m256 lo, __m256 hi) {
    _mm256_storeu_ps(y, lo);
    _mm256_storeu_ps(y + 8, hi);
}

/* ---- F32, F16, BF16 (fp32 activations, exact products, fp32 sums) --------------------------- */

enum { K_F32, K_F16, K_BF16 };

/* F32 / F16: column c of the 16 rows is one vector (64 / 32 bytes), half h its rows 8h..8h+7.
 * BF16: vector p holds columns 2p, 2p+1 (row r's pair at 4r): the even column is the low half
 * of each 32-bit lane, the odd one the high half, each with its own accumulator. F32 / F16 take
 * two columns a step into NA accumulators per half and token: 2 in decode (4 chains with the
 * halves, to cover the FMA latency), 1 with more tokens. */
G2_INLINE void tile_float_n(const int NT, const int PF, const int KIND, const uint8_t *g, int64_t cols, const g2_act *a,
                            int t0, float *y, size_t ldy) {
    const int NA = NT == 1 ? 2 : 1;
    const float *x[4];
    __m256 acc[2][2][4]; /* [half][chain][token] */
    G2_UNROLL
    for (int t = 0; t < NT; t++) {
        x[t] = g2_act_f32(a, t0 + t);
        acc[0][0][t] = acc[0][1][t] = acc[1][0][t] = acc[1][1][t] = _mm256_setzero_ps();
    }
    if (KIND == K_BF16) {
        const __m256i hi = _mm256_set1_epi32((int)0xFFFF0000u);
        for (int64_t p = 0; p < cols / 2; p++) {
            R16_PREFETCH(PF, g + (size_t)p * 64 + R16_PF, 64);
            G2_UNROLL
            for (int h = 0; h < 2; h++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(g + (size_t)p * 64 + 32 * h));
                const __m256 e = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), o = _mm256_castsi256_ps(_mm256_and_si256(v, hi));
                G2_UNROLL
                for (int t = 0; t < NT; t++) {
                    acc[h][0][t] = _mm256_fmadd_ps(e, _mm256_set1_ps(x[t][2 * p]), acc[h][0][t]);
                    acc[h][1][t] = _mm256_fmadd_ps(o, _mm256_set1_ps(x[t][2 * p + 1]), acc[h][1][t]);
                }
            }
        }
    } else {
        const size_t cb = KIND == K_F16 ? 32 : 64;
#define R16_HALF(c, h) (KIND == K_F16 ? d8(g + (size_t)(c) * cb + 16 * (h)) : _mm256_loadu_ps((const float *)(const void *)(g + (size_t)(c) * cb + 32 * (h))))
        int64_t c = 0;
        for (; c + 2 <= cols; c += 2) { /* two columns a step: constant accumulator indices */
            R16_PREFETCH(PF, g + (size_t)c * cb + R16_PF, (int)(2 * cb));
            G2_UNROLL
            for (int j = 0; j < 2; j++)
                G2_UNROLL
                for (int h = 0; h < 2; h++) {
                    const __m256 w = R16_HALF(c + j, h);
                    G2_UNROLL
                    for (int t = 0; t < NT; t++)
                        acc[h][j % NA][t] = _mm256_fmadd_ps(w, _mm256_set1_ps(x[t][c + j]), acc[h][j % NA][t]);
                }
        }
        for (; c < cols; c++)
            G2_UNROLL
            for (int h = 0; h < 2; h++) {
                const __m256 w = R16_HALF(c, h);
                G2_UNROLL
                for (int t = 0; t < NT; t++) acc[h][0][t] = _mm256_fmadd_ps(w, _mm256_set1_ps(x[t][c]), acc[h][0][t]);
            }
#undef R16_HALF
    }
    G2_UNROLL
    for (int t = 0; t < NT; t++)
        store_halves(y + (size_t)t * ldy, _mm256_add_ps(acc[0][0][t], acc[0][1][t]), _mm256_add_ps(acc[1][0][t], acc[1][1][t]));
}
#define tile_f32_n(NT, PF, ...) tile_float_n(NT, PF, K_F32, __VA_ARGS__)
#define tile_f16_n(NT, PF, ...) tile_float_n(NT, PF, K_F16, __VA_ARGS__)
#define tile_bf16_n(NT, PF, ...) tile_float_n(NT, PF, K_BF16, __VA_ARGS__)

/* ---- quantized types (int8 activations) ------------------------------------------------------ */

/* Prefill (NT > 1) makes two passes over a group, rows 0-7 then rows 8-15: the halves are
 * different bytes, so nothing is read twice from memory, and only one half's accumulators are
 * live (16 registers: up to 4 tokens). Decode (NT = 1) does both halves in one pass, one
 * forward stream. The loops run to constant bounds (2) and skip what a pass does not cover
 * (R16_IN), so that GCC unrolls them and the accumulators stay in registers. */
#define R16_PASSES(NT) ((NT) > 1 ? 2 : 1)
#define R16_IN(NT, pass, h) ((NT) == 1 || (h) == (pass))
#define R16_STORE(NT, pass)                                                                            \
    G2_UNROLL                                                                                          \
    for (int h = 0; h < 2; h++) if (R16_IN(NT, pass, h))                                               \
        G2_UNROLL                                                                                      \
        for (int t = 0; t < NT; t++) _mm256_storeu_ps(y + (size_t)t * ldy + 8 * h, acc[h][t])


/* Q4_0 (per block of 32: the 16 fp16 scales, then 4 vectors of nibbles; vector j: elements
 * 8j..8j+3 low, 8j+4..8j+7 high) and Q8_0 (the scales, then 8 vectors of q + 128; vectors 2j and
 * 2j+1: elements 8j..8j+3 and 8j+4..8j+7). Q4_0's -8 enters as -8 * sum(a) (G2_ACT_Q8_32's
 * block sums); Q8_0's bytes are made signed again (xor 0x80) for the sign trick. */
G2_INLINE void tile_q32_n(const int NT, const int PF, const int Q8, const uint8_t *g, int64_t cols, const g2_act *a, int t0,
                          float *y, size_t ldy) {
    R16_ACT(NT, 4);
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1), flip = _mm256_set1_epi8((char)0x80);
    const size_t block_bytes = Q8 ? 544 : 288;
    G2_UNROLL
    for (int pass = 0; pass < 2; pass++) if (pass < R16_PASSES(NT)) {
        __m256 acc[2][4];
        G2_UNROLL
        for (int t = 0; t < NT; t++) acc[0][t] = acc[1][t] = _mm256_setzero_ps();
        for (int64_t b = 0; b < cols / 32; b++) {
            const uint8_t *blk = g + (size_t)b * block_bytes;
            R16_PREFETCH(PF, blk + R16_PF, (int)block_bytes);
            G2_UNROLL
            for (int h = 0; h < 2; h++) if (R16_IN(NT, pass, h)) {
                __m256i s[4];
                G2_UNROLL
                for (int t = 0; t < NT; t++) s[t] = _mm256_setzero_si256();
                G2_UNROLL
                for (int j = 0; j < 4; j++) {
                    if (Q8) {
                        const __m256i w0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(blk + 32 + 128 * j + 32 * h)), flip);
                        const __m256i w1 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(blk + 96 + 128 * j + 32 * h)), flip);
                        const __m256i u0 = _mm256_sign_epi8(w0, w0), u1 = _mm256_sign_epi8(w1, w1);
                        G2_UNROLL
                        for (int t = 0; t < NT; t++) {
                            const __m256i p0 = _mm256_maddubs_epi16(u0, _mm256_sign_epi8(bcast4(q[t] + 32 * b + 8 * j), w0));
                            const __m256i p1 = _mm256_maddubs_epi16(u1, _mm256_sign_epi8(bcast4(q[t] + 32 * b + 8 * j + 4), w1));
                            s[t] = _mm256_add_epi32(s[t], _mm256_add_epi32(_mm256_madd_epi16(p0, ones), _mm256_madd_epi16(p1, ones)));
                            KEEP(s[t]);
                        }
                    } else {
                        const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 32 + 64 * j + 32 * h));
                        const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                        G2_UNROLL
                        for (int t = 0; t < NT; t++) /* int16 sums (bound in the header comment) */
                            s[t] = _mm256_add_epi16(s[t], _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast4(q[t] + 32 * b + 8 * j)),
                                                                           _mm256_maddubs_epi16(hi, bcast4(q[t] + 32 * b + 8 * j + 4))));
                        G2_UNROLL
                        for (int t = 0; t < NT; t++) KEEP(s[t]);
                    }
                }
                const __m256 d = d8(blk + 16 * h);
                G2_UNROLL
                for (int t = 0; t < NT; t++) {
                    const __m256i si = Q8 ? s[t] : _mm256_add_epi32(_mm256_madd_epi16(s[t], ones), _mm256_set1_epi32(-8 * (int32_t)sa[t][b]));
                    acc[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), _mm256_mul_ps(d, _mm256_set1_ps(da[t][b])), acc[h][t]);
                }
            }
        }
        R16_STORE(NT, pass);
    }
}
#define tile_q4_0_n(NT, PF, ...) tile_q32_n(NT, PF, 0, __VA_ARGS__)
#define tile_q8_0_n(NT, PF, ...) tile_q32_n(NT, PF, 1, __VA_ARGS__)

/* 128 six-bit values of a Q4_K super-block (repack.c: six_bit_get) into bytes: out[16j + r]. */
G2_INLINE void six_bit_unpack(const uint8_t *p, uint8_t out[128]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03);
    const __m256i lo0 = _mm256_loadu_si256((const __m256i *)(const void *)p);
    const __m256i lo1 = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    const __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(p + 64));
#define SIX(LO, SH) _mm256_or_si256(LO, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hi, SH), m3), 4))
    _mm256_storeu_si256((__m256i *)(void *)out, SIX(_mm256_and_si256(lo0, m4), 0));
    _mm256_storeu_si256((__m256i *)(void *)(out + 32), SIX(_mm256_and_si256(lo1, m4), 2));
    _mm256_storeu_si256((__m256i *)(void *)(out + 64), SIX(_mm256_and_si256(_mm256_srli_epi16(lo0, 4), m4), 4));
    _mm256_storeu_si256((__m256i *)(void *)(out + 96), SIX(_mm256_and_si256(_mm256_srli_epi16(lo1, 4), m4), 6));
#undef SIX
}

/* Q4_K (G2_ACT_Q8_256): per sub-block j of 32, 4 vectors of nibbles as Q4_0's, summed as int16
 * and widened once, times the rows' scales; the mins times the sub-block's activation sum.
 * Decode prefetches as r16_avx512.c: 8 x 320 bytes cover a super-block of 2304. */
G2_INLINE void tile_q4_k_n(const int NT, const int PF, const uint8_t *g, int64_t cols, const g2_act *a, int t0, float *y, size_t ldy) {
    R16_ACT(NT, 4);
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    G2_UNROLL
    for (int pass = 0; pass < 2; pass++) if (pass < R16_PASSES(NT)) {
        __m256 acc[2][4];
        G2_UNROLL
        for (int t = 0; t < NT; t++) acc[0][t] = acc[1][t] = _mm256_setzero_ps();
        for (int64_t sb = 0; sb < cols / 256; sb++) {
            const uint8_t *blk = g + (size_t)sb * 2304;
            uint8_t sc[128], mn[128];
            six_bit_unpack(blk + 64, sc);
            six_bit_unpack(blk + 160, mn);
            __m256i S[2][4], M[2][4];
            G2_UNROLL
            for (int t = 0; t < NT; t++) S[0][t] = S[1][t] = M[0][t] = M[1][t] = _mm256_setzero_si256();
            for (int j = 0; j < 8; j++) {
                R16_PREFETCH(PF, blk + 2304 + R16_PF + 320 * j, 320);
                G2_UNROLL
                for (int h = 0; h < 2; h++) if (R16_IN(NT, pass, h)) {
                    __m256i s[4];
                    G2_UNROLL
                    for (int t = 0; t < NT; t++) s[t] = _mm256_setzero_si256();
                    G2_UNROLL
                    for (int v = 0; v < 4; v++) {
                        const __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 256 + 64 * (4 * j + v) + 32 * h));
                        const __m256i lo = _mm256_and_si256(w, m4), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), m4);
                        G2_UNROLL
                        for (int t = 0; t < NT; t++) {
                            const int8_t *qa = q[t] + 256 * sb + 32 * j + 8 * v;
                            s[t] = _mm256_add_epi16(s[t], _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast4(qa)), _mm256_maddubs_epi16(hi, bcast4(qa + 4))));
                            KEEP(s[t]);
                        }
                    }
                    const __m256i scj = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(sc + 16 * j + 8 * h)));
                    const __m256i mnj = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(mn + 16 * j + 8 * h)));
                    G2_UNROLL
                    for (int t = 0; t < NT; t++) {
                        const int16_t *bs = sa[t] + 16 * sb;
                        S[h][t] = _mm256_add_epi32(S[h][t], _mm256_mullo_epi32(_mm256_madd_epi16(s[t], ones), scj));
                        M[h][t] = _mm256_add_epi32(M[h][t], _mm256_mullo_epi32(mnj, _mm256_set1_epi32(bs[2 * j] + bs[2 * j + 1])));
                    }
                }
            }
            G2_UNROLL
            for (int h = 0; h < 2; h++) if (R16_IN(NT, pass, h)) {
                const __m256 d = d8(blk + 16 * h), dmin = d8(blk + 32 + 16 * h);
                G2_UNROLL
                for (int t = 0; t < NT; t++) {
                    const __m256 dab = _mm256_set1_ps(da[t][sb]);
                    acc[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[h][t]), _mm256_mul_ps(d, dab), acc[h][t]);
                    acc[h][t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(M[h][t]), _mm256_mul_ps(dmin, dab), acc[h][t]);
                }
            }
        }
        R16_STORE(NT, pass);
    }
}

/* Q6_K (G2_ACT_Q8_256): per sub-block k of 16, the 6-bit values rebuilt from two low-nibble
 * vectors and one high-bits vector (as r16_avx512.c), int16 pairs of products widened after two
 * (2 x 2 x 63 x 127 = 32004), the -32 offset from the activation sums, times the int8 scales. */
G2_INLINE void tile_q6_k_n(const int NT, const int PF, const uint8_t *g, int64_t cols, const g2_act *a, int t0, float *y, size_t ldy) {
    R16_ACT(NT, 4);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30), ones = _mm256_set1_epi16(1);
    G2_UNROLL
    for (int pass = 0; pass < 2; pass++) if (pass < R16_PASSES(NT)) {
        __m256 acc[2][4];
        G2_UNROLL
        for (int t = 0; t < NT; t++) acc[0][t] = acc[1][t] = _mm256_setzero_ps();
        for (int64_t sb = 0; sb < cols / 256; sb++) {
            const uint8_t *blk = g + (size_t)sb * 3360;
            __m256i S[2][4];
            G2_UNROLL
            for (int t = 0; t < NT; t++) S[0][t] = S[1][t] = _mm256_setzero_si256();
            for (int k = 0; k < 16; k++) {
                R16_PREFETCH(PF, blk + 3360 + R16_PF + 256 * k, 256);
                G2_UNROLL
                for (int h = 0; h < 2; h++) if (R16_IN(NT, pass, h)) {
                    const __m256i l0 = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 288 + 64 * (2 * k) + 32 * h));
                    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 288 + 64 * (2 * k + 1) + 32 * h));
                    const __m256i hb = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2336 + 64 * k + 32 * h));
                    const __m256i w0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
                    const __m256i w1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
                    const __m256i w2 = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(hb, m30));
                    const __m256i w3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
                    const __m256i sck = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(blk + 32 + 16 * k + 8 * h)));
                    G2_UNROLL
                    for (int t = 0; t < NT; t++) {
                        const int8_t *qa = q[t] + 256 * sb + 16 * k;
                        const __m256i p01 = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast4(qa)), _mm256_maddubs_epi16(w1, bcast4(qa + 4)));
                        const __m256i p23 = _mm256_add_epi16(_mm256_maddubs_epi16(w2, bcast4(qa + 8)), _mm256_maddubs_epi16(w3, bcast4(qa + 12)));
                        const __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_madd_epi16(p01, ones), _mm256_madd_epi16(p23, ones)),
                                                           _mm256_set1_epi32(-32 * (int32_t)sa[t][16 * sb + k]));
                        S[h][t] = _mm256_add_epi32(S[h][t], _mm256_mullo_epi32(s, sck));
                        KEEP(S[h][t]);
                    }
                }
            }
            G2_UNROLL
            for (int h = 0; h < 2; h++) if (R16_IN(NT, pass, h)) {
                const __m256 d = d8(blk + 16 * h);
                G2_UNROLL
                for (int t = 0; t < NT; t++)
                    acc[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[h][t]), _mm256_mul_ps(d, _mm256_set1_ps(da[t][sb])), acc[h][t]);
            }
        }
        R16_STORE(NT, pass);
    }
}

/* ---- Q8_0, Q4_K, Q6_K widened to F32 (matmul.c: two-term prefill of 64 tokens or more) ------- */

/* One r16 Q8_0 group as the r16 F32 group of its values d * q, exact (an fp16 d has 11
 * significant bits, q 8: the product fits fp32's 24). Column c of the F32 group is 16 floats,
 * rows 0-15; the Q8_0 block's vector v holds columns 4v..4v+3, row r's four bytes (q + 128) at
 * 4r. Byte k of each 32-bit lane, made signed again (xor 0x80), comes out as an int32 by a left
 * shift to the top and an arithmetic right shift. */
void g2_r16_widen_q8_0_group_avx2(int64_t cols, const uint8_t *src, uint8_t *dst) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    float *out = (float *)(void *)dst;
    for (int64_t b = 0; b < cols / 32; b++) {
        const uint8_t *blk = src + (size_t)b * 544;
        for (int h = 0; h < 2; h++) {
            const __m256 d = d8(blk + 16 * h);
            for (int v = 0; v < 8; v++) {
                const __m256i q = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(blk + 32 + 64 * v + 32 * h)), flip);
                float *col = out + (size_t)(32 * b + 4 * v) * G2_R16 + 8 * h;
                _mm256_storeu_ps(col, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(q, 24), 24))));
                _mm256_storeu_ps(col + 16, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(q, 16), 24))));
                _mm256_storeu_ps(col + 32, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(q, 8), 24))));
                _mm256_storeu_ps(col + 48, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_srai_epi32(q, 24))));
            }
        }
    }
}

/* Bits [shift, shift + width) of each 32-bit lane (lane r: row r's four bytes), as an int32. */
G2_INLINE __m256i lane_field(__m256i v, int shift, int width) {
    return _mm256_and_si256(_mm256_srli_epi32(v, shift), _mm256_set1_epi32((1 << width) - 1));
}

/* One r16 Q4_K group as the r16 F32 group of its values (d sc) q - dmin m: d sc and q exact
 * products in fp32, one rounding in the difference, as g2_dequantize_row computes them. */
void g2_r16_widen_q4_k_group_avx2(int64_t cols, const uint8_t *src, uint8_t *dst) {
    float *out = (float *)(void *)dst;
    for (int64_t sb = 0; sb < cols / 256; sb++) {
        const uint8_t *blk = src + (size_t)sb * 2304;
        uint8_t sc[128], mn[128];
        six_bit_unpack(blk + 64, sc);
        six_bit_unpack(blk + 160, mn);
        for (int h = 0; h < 2; h++) {
            const __m256 d = d8(blk + 16 * h), dmin = d8(blk + 32 + 16 * h);
            for (int j = 0; j < 8; j++) {
                const __m256 ds = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(sc + 16 * j + 8 * h)))));
                const __m256 dm = _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(mn + 16 * j + 8 * h)))));
                for (int v = 0; v < 4; v++) {
                    const __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 256 + 64 * (4 * j + v) + 32 * h));
                    float *col = out + (size_t)(256 * sb + 32 * j + 8 * v) * G2_R16 + 8 * h;
                    G2_UNROLL
                    for (int i = 0; i < 4; i++) {
                        const __m256 lo = _mm256_cvtepi32_ps(lane_field(w, 8 * i, 4)), hi = _mm256_cvtepi32_ps(lane_field(w, 8 * i + 4, 4));
                        _mm256_storeu_ps(col + G2_R16 * i, _mm256_sub_ps(_mm256_mul_ps(ds, lo), dm));
                        _mm256_storeu_ps(col + G2_R16 * (4 + i), _mm256_sub_ps(_mm256_mul_ps(ds, hi), dm));
                    }
                }
            }
        }
    }
}

/* One r16 Q6_K group as the r16 F32 group of its values (d sc) (q - 32), exact in fp32 (11 + 7
 * + 5 significant bits), as g2_dequantize_row computes them. */
void g2_r16_widen_q6_k_group_avx2(int64_t cols, const uint8_t *src, uint8_t *dst) {
    const __m256i off = _mm256_set1_epi32(32);
    float *out = (float *)(void *)dst;
    for (int64_t sb = 0; sb < cols / 256; sb++) {
        const uint8_t *blk = src + (size_t)sb * 3360;
        for (int h = 0; h < 2; h++) {
            const __m256 d = d8(blk + 16 * h);
            for (int k = 0; k < 16; k++) {
                const __m256 ds = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(blk + 32 + 16 * k + 8 * h)))));
                const __m256i l0 = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 288 + 64 * (2 * k) + 32 * h));
                const __m256i l1 = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 288 + 64 * (2 * k + 1) + 32 * h));
                const __m256i hb = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2336 + 64 * k + 32 * h));
                float *col = out + (size_t)(256 * sb + 16 * k) * G2_R16 + 8 * h;
                G2_UNROLL
                for (int i = 0; i < 4; i++) /* element 16k + 4m + i: a low nibble of l0 / l1, bits 2m of hb */
                    G2_UNROLL
                    for (int m = 0; m < 4; m++) {
                        const __m256i lo = lane_field(m < 2 ? l0 : l1, 8 * i + 4 * (m & 1), 4);
                        const __m256i q = _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(lane_field(hb, 8 * i + 2 * m, 2), 4)), off);
                        _mm256_storeu_ps(col + G2_R16 * (4 * m + i), _mm256_mul_ps(ds, _mm256_cvtepi32_ps(q)));
                    }
            }
        }
    }
}

/* ---- r16e: BF16 in 12 bits a weight (layout: bf16_codes.c) ---------------------------------- */

typedef struct {
    __m256i hi, lo;     /* the exponent bytes of each code, in both 128-bit lanes */
    const uint8_t *esc; /* the next escaped exponent */
} r16e_state;

G2_INLINE r16e_state r16e_begin(const uint8_t *g, int64_t cols) {
    r16e_state st;
    st.hi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)g));
    st.lo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(g + 16)));
    st.esc = g + G2_R16E_GROUP_BYTES(cols) - G2_R16E_ESC;
    return st;
}

/* Column pair p's 32 weights at s (48 bytes) as bf16 words: wl's lane 0 holds column 2p rows 0-3
 * then column 2p + 1 rows 0-3, its lane 1 the same for rows 4-7; wh the same for rows 8-15. Each
 * word is built from two bytes: the high one = sign | e >> 1, the low one = (e & 1) << 7 |
 * mantissa, the exponent bytes looked up by code (vpshufb); code 15 is an escape, rare, whose
 * exponent comes from the group's list. */
G2_INLINE void r16e_words(r16e_state *st, const uint8_t *s, __m256i *wl, __m256i *wh) {
    const __m256i sm = _mm256_loadu_si256((const __m256i *)(const void *)s);
    const __m256i cx = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(s + 32)));
    /* low nibbles in the low lane, high nibbles in the high lane */
    const __m256i c = _mm256_and_si256(_mm256_srlv_epi32(cx, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(0x0F));
    __m256i b3 = _mm256_or_si256(_mm256_and_si256(sm, _mm256_set1_epi8((char)0x80)), _mm256_shuffle_epi8(st->hi, c));
    __m256i b2 = _mm256_or_si256(_mm256_and_si256(sm, _mm256_set1_epi8(0x7F)), _mm256_shuffle_epi8(st->lo, c));
    unsigned m = (unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(c, _mm256_set1_epi8(15)));
    if (__builtin_expect(m != 0, 0)) {
        uint8_t B2[32], B3[32];
        _mm256_storeu_si256((__m256i *)(void *)B2, b2);
        _mm256_storeu_si256((__m256i *)(void *)B3, b3);
        for (; m; m &= m - 1) {
            const int k = __builtin_ctz(m);
            const uint8_t e = *st->esc++;
            B3[k] |= (uint8_t)(e >> 1);
            B2[k] |= (uint8_t)((e & 1) << 7);
        }
        b2 = _mm256_loadu_si256((const __m256i *)(const void *)B2);
        b3 = _mm256_loadu_si256((const __m256i *)(const void *)B3);
    }
    *wl = _mm256_unpacklo_epi8(b2, b3);
    *wh = _mm256_unpackhi_epi8(b2, b3);
}

/* The same 32 weights as fp32 (a bf16 is the top half of its fp32): f[0] column 2p rows 0-7, f[1]
 * column 2p + 1 rows 0-7, f[2] and f[3] the same for rows 8-15. */
G2_INLINE void r16e_pair(r16e_state *st, const uint8_t *s, __m256 f[4]) {
    __m256i wl, wh;
    r16e_words(st, s, &wl, &wh);
    const __m256i zero = _mm256_setzero_si256();
    f[0] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, wl));
    f[1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, wl));
    f[2] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, wh));
    f[3] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, wh));
}

/* The r16 BF16 decode kernel (tile_bf16_n, NT = 1) on an r16e group: the same products into the
 * same accumulators in the same order, so the same bits, from 0.75 of the bytes. */
void g2_r16e_decode_avx2(const uint8_t *g, int64_t cols, const float *x, float *y) {
    r16e_state st = r16e_begin(g, cols);
    __m256 acc[2][2] = {{_mm256_setzero_ps(), _mm256_setzero_ps()}, {_mm256_setzero_ps(), _mm256_setzero_ps()}};
    const uint8_t *s = g + 32;
    for (int64_t p = 0; p < cols / 2; p++, s += 48) {
        R16_PREFETCH(1, s + R16_PF, 48);
        __m256 f[4];
        r16e_pair(&st, s, f);
        const __m256 xe = _mm256_set1_ps(x[2 * p]), xo = _mm256_set1_ps(x[2 * p + 1]);
        acc[0][0] = _mm256_fmadd_ps(f[0], xe, acc[0][0]);
        acc[0][1] = _mm256_fmadd_ps(f[1], xo, acc[0][1]);
        acc[1][0] = _mm256_fmadd_ps(f[2], xe, acc[1][0]);
        acc[1][1] = _mm256_fmadd_ps(f[3], xo, acc[1][1]);
    }
    store_halves(y, _mm256_add_ps(acc[0][0], acc[0][1]), _mm256_add_ps(acc[1][0], acc[1][1]));
}

void g2_r16e_widen_group_avx2(int64_t cols, const uint8_t *src, uint8_t *dst) {
    r16e_state st = r16e_begin(src, cols);
    const uint8_t *s = src + 32;
    float *out = (float *)(void *)dst; /* column c's 16 rows at out + 16 c */
    for (int64_t p = 0; p < cols / 2; p++, s += 48) {
        __m256 f[4];
        r16e_pair(&st, s, f);
        store_halves(out + (size_t)(2 * p) * G2_R16, f[0], f[2]);
        store_halves(out + (size_t)(2 * p + 1) * G2_R16, f[1], f[3]);
    }
}

/* An r16e group as the r16 BF16 group of the same values (16 x cols x 2 bytes at dst: per column
 * pair, row r's two bf16 at 4r): each 128-bit lane of wl / wh holds 4 rows' even columns, then
 * their odd ones; one in-lane shuffle pairs them up. */
void g2_r16e_to_r16_group_avx2(int64_t cols, const uint8_t *src, uint8_t *dst) {
    r16e_state st = r16e_begin(src, cols);
    const __m256i pair = _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15, 0, 1, 8, 9, 2, 3, 10, 11, 4,
                                          5, 12, 13, 6, 7, 14, 15);
    const uint8_t *s = src + 32;
    for (int64_t p = 0; p < cols / 2; p++, s += 48, dst += 64) {
        __m256i wl, wh;
        r16e_words(&st, s, &wl, &wh);
        _mm256_storeu_si256((__m256i *)(void *)dst, _mm256_shuffle_epi8(wl, pair));
        _mm256_storeu_si256((__m256i *)(void *)(dst + 32), _mm256_shuffle_epi8(wh, pair));
    }
}

/* fp16 -> bf16 for F16 tensors that hold BF16 values (repack.c): F16C widens 16 values to fp32,
 * whose top halves are the bf16 values (kept in order by the pack and the 64-bit permute); the
 * bottom halves are or-ed together to tell whether every value was exact. */
int g2_f16_to_bf16_exact_avx2(const uint8_t *src, uint8_t *dst, size_t n) {
    const __m256i low = _mm256_set1_epi32(0xFFFF);
    __m256i lost = _mm256_setzero_si256();
    for (size_t i = 0; i < n; i += 16) {
        const __m256i a = _mm256_castps_si256(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i))));
        const __m256i b = _mm256_castps_si256(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i + 16))));
        lost = _mm256_or_si256(lost, _mm256_and_si256(_mm256_or_si256(a, b), low));
        const __m256i p = _mm256_packus_epi32(_mm256_srli_epi32(a, 16), _mm256_srli_epi32(b, 16)); /* a0-3 b0-3 a4-7 b4-7 */
        _mm256_storeu_si256((__m256i *)(void *)(dst + 2 * i), _mm256_permute4x64_epi64(p, 0xD8));
    }
    return !_mm256_testz_si256(lost, lost);
}

/* ---- entry points ---------------------------------------------------------------------------- */

#define R16_SWITCH2(F)                                                                                 \
    switch (nt) {                                                                                      \
        R16_CASE(F, 1) R16_CASE(F, 2) default : break;                                                 \
    }
R16_TILE(tile_f32, R16_SWITCH4, tile_f32_n)
R16_TILE(tile_f16, R16_SWITCH4, tile_f16_n)
R16_TILE(tile_bf16, R16_SWITCH2, tile_bf16_n)
R16_TILE(tile_q4_0, R16_SWITCH4, tile_q4_0_n)
R16_TILE(tile_q8_0, R16_SWITCH4, tile_q8_0_n)
R16_TILE(tile_q4_k, R16_SWITCH4, tile_q4_k_n)
R16_TILE(tile_q6_k, R16_SWITCH4, tile_q6_k_n)

R16_DECODE(decode_f32, tile_f32_n)
R16_DECODE(decode_f16, tile_f16_n)
R16_DECODE(decode_bf16, tile_bf16_n)
R16_DECODE_FINE(decode_q4_0, tile_q4_0_n)
R16_DECODE_FINE(decode_q8_0, tile_q8_0_n)
R16_DECODE_FINE(decode_q4_k, tile_q4_k_n)
R16_DECODE_FINE(decode_q6_k, tile_q6_k_n)

int g2_r16_tile_avx2(int type, int act, g2_r16_tile_fn *fn) {
    if (act != g2_r16_act(type)) return 0;
    switch (type) {
    case GEMMA2_TYPE_F32: *fn = tile_f32; return 4;
    case GEMMA2_TYPE_F16: *fn = tile_f16; return 4;
    case GEMMA2_TYPE_BF16: *fn = tile_bf16; return 2;
    case GEMMA2_TYPE_Q4_0: *fn = tile_q4_0; return 4;
    case GEMMA2_TYPE_Q8_0: *fn = tile_q8_0; return 4;
    case GEMMA2_TYPE_Q4_K: *fn = tile_q4_k; return 4;
    case GEMMA2_TYPE_Q6_K: *fn = tile_q6_k; return 4;
    default: return 0;
    }
}

g2_r16_tile_fn g2_r16_decode_avx2(int type, int act) {
    if (act != g2_r16_act(type)) return NULL;
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
