/* r16_avx512.c - AVX-512 decode kernels on the r16 layout (repack.h): 16 rows per group, one
 * lane per row, so no horizontal sums and one scale vector per block for all 16 rows. */
#include <immintrin.h>
#include <string.h>

#include "gemma2.h"
#include "kernels/repack.h"

/* Software prefetch distance (bytes) ahead in the group stream; groups of a thread's share are
 * contiguous, so a prefetch past a group's end lands in the next group. */
#define R16_PF 2048

/* BF16: each 64-byte vector holds columns 2p, 2p+1 of 16 rows; the even column is the low half
 * of each 32-bit lane (shift it up: bf16 -> fp32 is a 16-bit shift), the odd one the high half
 * (mask the low half off). Products with the fp32 activations are exact, sums in fp32. */
static void matvec_bf16(const uint8_t *g, int64_t cols, const uint8_t *xb, size_t off_d, size_t off_s, float *y) {
    (void)off_d, (void)off_s;
    const float *x = (const float *)(const void *)xb;
    const __m512i hi = _mm512_set1_epi32((int)0xFFFF0000u);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t p = 0;
    const int64_t np = cols / 2;
    for (; p + 2 <= np; p += 2) {
        const uint8_t *v = g + (size_t)p * 64;
        _mm_prefetch((const char *)(v + R16_PF), _MM_HINT_T0);
        _mm_prefetch((const char *)(v + R16_PF + 64), _MM_HINT_T0);
        const __m512i v0 = _mm512_loadu_si512(v), v1 = _mm512_loadu_si512(v + 64);
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)), _mm512_set1_ps(x[2 * p]), a0);
        a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v0, hi)), _mm512_set1_ps(x[2 * p + 1]), a1);
        a2 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v1, 16)), _mm512_set1_ps(x[2 * p + 2]), a2);
        a3 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v1, hi)), _mm512_set1_ps(x[2 * p + 3]), a3);
    }
    if (p < np) {
        const __m512i v0 = _mm512_loadu_si512(g + (size_t)p * 64);
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)), _mm512_set1_ps(x[2 * p]), a0);
        a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v0, hi)), _mm512_set1_ps(x[2 * p + 1]), a1);
    }
    _mm512_storeu_ps(y, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* Q4_0 with int8 activations (G2_ACT_Q8_32): per block, 8 vpdpbusd of the unsigned nibbles of
 * 16 rows x 4 elements with a broadcast word of 4 activations; the -8 offset enters as
 * -8 * sum(a) in the starting value; then one fp32 step with the 16 rows' scales. */
static void matvec_q4_0(const uint8_t *g, int64_t cols, const uint8_t *x, size_t off_d, size_t off_s, float *y) {
    const int8_t *q = (const int8_t *)x;
    const float *da = (const float *)(const void *)(x + off_d);
    const int16_t *sa = (const int16_t *)(const void *)(x + off_s);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    const int64_t nb = cols / 32;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = g + (size_t)b * 288;
        _mm_prefetch((const char *)(blk + R16_PF), _MM_HINT_T0);
        _mm_prefetch((const char *)(blk + R16_PF + 64), _MM_HINT_T0);
        _mm_prefetch((const char *)(blk + R16_PF + 128), _MM_HINT_T0);
        _mm_prefetch((const char *)(blk + R16_PF + 192), _MM_HINT_T0);
        _mm_prefetch((const char *)(blk + R16_PF + 256), _MM_HINT_T0);
        const int32_t *a4 = (const int32_t *)(const void *)(q + 32 * b);
        __m512i s0 = _mm512_set1_epi32(-8 * (int32_t)sa[b]), s1 = _mm512_setzero_si512();
        for (int j = 0; j < 4; j++) {
            const __m512i v = _mm512_loadu_si512(blk + 32 + 64 * j);
            int32_t lo, hi;
            memcpy(&lo, a4 + 2 * j, 4);
            memcpy(&hi, a4 + 2 * j + 1, 4);
            s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(v, m4), _mm512_set1_epi32(lo));
            s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4), _mm512_set1_epi32(hi));
        }
        const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)blk)),
                                       _mm512_set1_ps(da[b]));
        if (b & 1) acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), d, acc1);
        else acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), d, acc0);
    }
    _mm512_storeu_ps(y, _mm512_add_ps(acc0, acc1));
}

g2_r16_matvec_fn g2_r16_matvec_avx512(int type) {
    switch (type) {
    case GEMMA2_TYPE_BF16: return matvec_bf16;
    case GEMMA2_TYPE_Q4_0: return matvec_q4_0;
    default: return NULL;
    }
}
