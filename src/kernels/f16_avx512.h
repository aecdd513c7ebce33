/* f16_avx512.h - internal: 16 fp16 values -> 16 fp32 lanes on AVX-512, by two 256-bit
 * vcvtph2ps and an insert. Include only from files compiled with the AVX-512 flags.
 *
 * Why not one 512-bit vcvtph2ps: on this Zen 4 host both forms convert at the same rate in a
 * loop that does nothing else (~29 G values/s on one core, a one-off program), but in decode,
 * where the conversions share the core with the products while memory streams in, the 512-bit
 * form cost throughput once memory was fast. The r16 blocks' scales (d16 in r16_avx512.c: one
 * conversion per 288 bytes of Q4_0), `gemma2 bench -p 0 -n 64 -r 2 --probe-bw 256`, old and
 * new builds alternated, weight traffic / probe with the probes at 54-59 GB/s: 2B Q4_0
 * 0.800-0.818 -> 0.847-0.861 (seven pairs; 0.917-0.925 -> 0.921-0.931 at 33-35 GB/s), Q4_K_M
 * 0.773-0.803 -> 0.795-0.814 (four pairs), Q8_0 0.873 -> 0.865 (one pair; the same at 33 GB/s).
 * F16 weights: r16_avx512.c (decode_f16_ymm) and kern_avx512.c (ldw). Where a conversion serves
 * many tokens (F16 prefill) the single instruction stays: the split one was 3% slower there. */
#ifndef G2_F16_AVX512_H
#define G2_F16_AVX512_H

#include <immintrin.h>

/* from 32 bytes at p */
static inline __m512 g2_f16x16_ps(const void *p) {
    const __m256 lo = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    const __m256 hi = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const char *)p + 16)));
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}

/* from a register (a masked load, or values gathered from several places) */
static inline __m512 g2_f16x16_ps_v(__m256i h) {
    const __m256 lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h)), hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}

#endif
