/* sample_rng.h - the sampler's random generator: xoshiro256** (Blackman & Vigna), seeded
 * through splitmix64 so that nearby seeds (0, 1, 2, ...) give unrelated streams. Inline and
 * stateless apart from the struct the caller owns, so every sampler has its own stream. */
#ifndef G2_SAMPLE_RNG_H
#define G2_SAMPLE_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} g2_sample_rng;

static inline uint64_t g2_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void g2_sample_rng_seed(g2_sample_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = g2_splitmix64(&seed);
}

static inline uint64_t g2_rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t g2_sample_rng_next(g2_sample_rng *r) {
    uint64_t *s = r->s;
    const uint64_t result = g2_rotl64(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = g2_rotl64(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits: every double the draw can give is exact. */
static inline double g2_sample_rng_uniform(g2_sample_rng *r) {
    return (double)(g2_sample_rng_next(r) >> 11) * 0x1.0p-53;
}

#endif
