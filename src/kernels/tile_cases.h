/* tile_cases.h - internal: instantiates a tile body for every (rows, tokens) <= (4, 4) so that
 * each instance has constant loop bounds (fully unrolled, accumulators in registers). */
#ifndef G2_TILE_CASES_H
#define G2_TILE_CASES_H

#define G2_TILE_CASE(BODY, R, T, ...) \
    case (R) * 8 + (T): BODY(R, T, __VA_ARGS__); break;
#define G2_TILE_SWITCH(BODY, nr, nt, ...)                                                              \
    switch ((nr) * 8 + (nt)) {                                                                         \
        G2_TILE_CASE(BODY, 1, 1, __VA_ARGS__) G2_TILE_CASE(BODY, 1, 2, __VA_ARGS__)                     \
        G2_TILE_CASE(BODY, 1, 3, __VA_ARGS__) G2_TILE_CASE(BODY, 1, 4, __VA_ARGS__)                     \
        G2_TILE_CASE(BODY, 2, 1, __VA_ARGS__) G2_TILE_CASE(BODY, 2, 2, __VA_ARGS__)                     \
        G2_TILE_CASE(BODY, 2, 3, __VA_ARGS__) G2_TILE_CASE(BODY, 2, 4, __VA_ARGS__)                     \
        G2_TILE_CASE(BODY, 3, 1, __VA_ARGS__) G2_TILE_CASE(BODY, 3, 2, __VA_ARGS__)                     \
        G2_TILE_CASE(BODY, 3, 3, __VA_ARGS__) G2_TILE_CASE(BODY, 3, 4, __VA_ARGS__)                     \
        G2_TILE_CASE(BODY, 4, 1, __VA_ARGS__) G2_TILE_CASE(BODY, 4, 2, __VA_ARGS__)                     \
        G2_TILE_CASE(BODY, 4, 3, __VA_ARGS__) G2_TILE_CASE(BODY, 4, 4, __VA_ARGS__)                     \
    default: break;                                                                                    \
    }

#define G2_INLINE static inline __attribute__((always_inline))
/* The tile loops over rows/tokens/sub-blocks must be fully unrolled so that the accumulator
 * arrays live in registers; -O2 alone does not always do it. */
#define G2_UNROLL _Pragma("GCC unroll 4")
#define G2_UNROLL8 _Pragma("GCC unroll 8")
#define G2_UNROLL16 _Pragma("GCC unroll 16")

#endif
