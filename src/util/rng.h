/* rng.h - a small deterministic PRNG: xoshiro256** (Blackman & Vigna), seeded through splitmix64
 * so that nearby seeds (0, 1, 2, ...) give unrelated streams. For weight initialisation, batch
 * sampling, teacher samples and the sampler: no global state (each user owns its g2_rng), the
 * same stream on every machine. */
#ifndef G2_UTIL_RNG_H
#define G2_UTIL_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} g2_rng;

static inline uint64_t g2_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void g2_rng_seed(g2_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = g2_splitmix64(&seed);
}

static inline uint64_t g2_rng_next(g2_rng *r) {
    uint64_t *s = r->s;
    const uint64_t x = s[1] * 5, result = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

/* Uniform in [0, 1). */
static inline double g2_rng_uniform(g2_rng *r) { return (double)(g2_rng_next(r) >> 11) * 0x1.0p-53; }

/* Uniform integer in [0, n) (n > 0); the modulo bias is below 2^-40 for n < 2^24. */
static inline uint64_t g2_rng_below(g2_rng *r, uint64_t n) { return g2_rng_next(r) % n; }

/* Standard normal (Box-Muller). */
static inline double g2_rng_normal(g2_rng *r) {
    double u1 = g2_rng_uniform(r), u2 = g2_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
