/* test_kernels.c - the matmul kernels (every type x every instruction set this CPU has) against
 * float64 references, and the quantizers against ggml.
 *
 * Tolerances (why):
 *  - "path-exact" reference: float64 sum of dequantized weights times the activations the kernel
 *    actually consumes (fp32 x for F32/BF16/F16; the int8-quantized x for the quantized types,
 *    rebuilt with the same g2_act_convert). Kernels then differ from it only by fp32 rounding
 *    of products and partial sums: we allow 2e-5 * sum|w*x| (cols <= 2304 here; the worst-case
 *    bound for 8 partial sums is (cols/8) * 2^-24 = 1.7e-5, typical errors are ~1e-7).
 *  - "true" reference: float64 sum of dequantized weights times the original fp32 x. For the
 *    quantized types the activation rounding adds at most |x - q*d| <= d/2 = amax_block/254
 *    per element, so we allow sum |w_i| * amax(block of i) / 254 on top of the fp32 tolerance.
 *  - across instruction sets: the same integer sums, different fp32 summation orders:
 *    4e-5 * sum|w*x| (twice the path-exact tolerance).
 *  - quantizers: byte-identical to ggml's quantize_row_*_ref (hashes of ggml's output for a
 *    fixed input, computed with the oracle's libggml-base: see docs/kernels.md). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemma2.h"
#include "harness.h"
#include "kernels/kernels_impl.h"
#include "kernels/matmul.h"
#include "kernels/quantize.h"
#include "kernels/repack.h"
#include "kernels/types.h"
#include "util/half.h"

/* ---- deterministic inputs (the same generator made the ggml hashes) ------------------------ */
static uint64_t golden_state;
static double golden_u(void) { /* splitmix64 -> [0,1) */
    uint64_t z = (golden_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}
static void golden_input(float *x, int n) {
    golden_state = 12345;
    for (int i = 0; i < n; i++) {
        double v = 2 * golden_u() - 1;
        if (i % 37 == 0) v *= 6;          /* outliers */
        if ((i / 256) % 4 == 3) v += 0.5; /* blocks with an offset (Q4_K mins) */
        if (i / 32 == 5) v = 0;           /* an all-zero block */
        x[i] = (float)(v * 0.05);
    }
}
static uint64_t fnv1a(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static const int k_types[] = {GEMMA2_TYPE_F32, GEMMA2_TYPE_BF16, GEMMA2_TYPE_F16, GEMMA2_TYPE_Q8_0,
                              GEMMA2_TYPE_Q4_0, GEMMA2_TYPE_Q4_K, GEMMA2_TYPE_Q6_K};
#define N_TYPES (int)(sizeof k_types / sizeof k_types[0])

static void random_fill(float *x, int64_t n, uint64_t seed, double scale) {
    golden_state = seed;
    for (int64_t i = 0; i < n; i++) {
        double v = 2 * golden_u() - 1;
        if (i % 53 == 7) v *= 8;
        x[i] = (float)(v * scale);
    }
}

/* A weight matrix of `type` made from random fp32, and its dequantized fp32 copy. */
typedef struct {
    g2_tensor t;
    uint8_t *data;
    float *deq;
} test_matrix;

static test_matrix make_matrix(int type, int64_t rows, int64_t cols, uint64_t seed) {
    test_matrix m;
    size_t rb = g2_type_row_bytes(type, cols);
    float *src = malloc((size_t)(rows * cols) * 4);
    random_fill(src, rows * cols, seed, 0.1);
    /* shift some rows: Q4_K's mins and Q4_0's asymmetric range get exercised */
    for (int64_t r = 0; r < rows; r += 3)
        for (int64_t c = 0; c < cols; c++) src[r * cols + c] += 0.03f;
    m.data = malloc(rb * (size_t)rows);
    m.deq = malloc((size_t)(rows * cols) * 4);
    for (int64_t r = 0; r < rows; r++) {
        g2_quantize_row(type, src + r * cols, m.data + (size_t)r * rb, cols);
        g2_dequantize_row(type, m.data + (size_t)r * rb, m.deq + r * cols, cols);
    }
    free(src);
    m.t = (g2_tensor){m.data, type, rows, cols, rb, G2_LAYOUT_ROWS};
    return m;
}
/* Random bytes in every field (all bit patterns of the packed scales, Q6_K's negative scales,
 * Q8_0's -128), except the fp16 super/block scales, kept finite and small. */
static test_matrix make_matrix_random_bytes(int type, int64_t rows, int64_t cols, uint64_t seed) {
    test_matrix m;
    const size_t rb = g2_type_row_bytes(type, cols), bb = g2_type_block_bytes(type);
    m.data = malloc(rb * (size_t)rows);
    m.deq = malloc((size_t)(rows * cols) * 4);
    golden_state = seed;
    for (size_t i = 0; i < rb * (size_t)rows; i++) m.data[i] = (uint8_t)(golden_u() * 256);
    const int off[2] = {type == GEMMA2_TYPE_Q6_K ? 208 : 0, type == GEMMA2_TYPE_Q4_K ? 2 : -1};
    for (size_t b = 0; b < rb * (size_t)rows / bb; b++)
        for (int o = 0; o < 2; o++)
            if (off[o] >= 0) {
                uint16_t h = g2_f32_to_f16((float)((2 * golden_u() - 1) * 0.01));
                memcpy(m.data + b * bb + off[o], &h, 2);
            }
    for (int64_t r = 0; r < rows; r++) g2_dequantize_row(type, m.data + (size_t)r * rb, m.deq + r * cols, cols);
    m.t = (g2_tensor){m.data, type, rows, cols, rb, G2_LAYOUT_ROWS};
    return m;
}

static void free_matrix(test_matrix *m) {
    free(m->data);
    free(m->deq);
}

/* The activations the kernel for (isa, type) consumes, back in fp32, plus per-element bound of
 * the activation rounding (0 for fp32 activations). */
static void consumed_activations(g2_isa isa, int type, const float *x, int64_t cols, float *xa, float *err) {
    g2_kernel k;
    g2_kernel_for(isa, type, &k);
    g2_act a;
    g2_act_layout(k.act, cols, &a);
    if (k.act == G2_ACT_F32) {
        memcpy(xa, x, (size_t)cols * 4);
        memset(err, 0, (size_t)cols * 4);
        return;
    }
    uint8_t *buf = aligned_alloc(64, a.stride);
    g2_act_convert(k.act, &a, x, buf);
    a.base = buf;
    const int blk = k.act == G2_ACT_Q8_32 ? 32 : 256;
    const int8_t *q = g2_act_q(&a, 0);
    const float *d = g2_act_d(&a, 0);
    for (int64_t i = 0; i < cols; i++) {
        xa[i] = d[i / blk] * q[i];
        err[i] = d[i / blk] * 0.5f * 1.0001f;
    }
    free(buf);
}

/* random_bytes: make_matrix_random_bytes; r16: the matrix repacked into the r16 layout first */
static int check_case_r(g2_isa isa, int type, int64_t rows, int64_t cols, int n, int threads, int random_bytes, int r16) {
    const uint64_t seed = 1000 + (uint64_t)rows * 7 + (uint64_t)type;
    test_matrix m = random_bytes ? make_matrix_random_bytes(type, rows, cols, seed) : make_matrix(type, rows, cols, seed);
    if (r16 && g2_tensor_repack_r16(&m.t, threads) != 0) {
        free_matrix(&m);
        return 1000;
    }
    float *x = malloc((size_t)(n * cols) * 4), *y = malloc((size_t)(n * rows) * 4), *ys = malloc((size_t)(n * rows) * 4);
    float *xa = malloc((size_t)cols * 4), *xe = malloc((size_t)cols * 4);
    random_fill(x, n * cols, 77 + (uint64_t)n, 1.0);
    g2_matmul_isa(isa, &m.t, x, n, y, threads);
    g2_matmul_isa(G2_ISA_SCALAR, &m.t, x, n, ys, 1);
    int bad = 0;
    for (int t = 0; t < n && bad < 3; t++) {
        consumed_activations(isa, type, x + t * cols, cols, xa, xe);
        for (int64_t r = 0; r < rows && bad < 3; r++) {
            const float *w = m.deq + r * cols;
            double exact = 0, truth = 0, mag = 0, qerr = 0;
            for (int64_t c = 0; c < cols; c++) {
                exact += (double)w[c] * xa[c];
                truth += (double)w[c] * x[t * cols + c];
                mag += fabs((double)w[c] * xa[c]);
                qerr += fabs((double)w[c]) * xe[c];
            }
            const double got = y[(size_t)t * rows + r], sc = ys[(size_t)t * rows + r];
            const double tol = 2e-5 * mag + 1e-30;
            if (fabs(got - exact) > tol || fabs(got - truth) > tol + qerr || fabs(got - sc) > 2 * tol) {
                fprintf(stderr, "  %s %s rows=%lld cols=%lld n=%d thr=%d: t=%d r=%lld got %.9g exact %.9g true %.9g scalar %.9g tol %.3g qerr %.3g\n",
                        g2_isa_name(isa), gemma2_type_name(type), (long long)rows, (long long)cols, n, threads, t,
                        (long long)r, got, exact, truth, sc, tol, qerr);
                bad++;
            }
        }
    }
    free(x), free(y), free(ys), free(xa), free(xe);
    free_matrix(&m);
    return bad;
}

static int check_case_m(g2_isa isa, int type, int64_t rows, int64_t cols, int n, int threads, int random_bytes) {
    return check_case_r(isa, type, rows, cols, n, threads, random_bytes, 0);
}

static int check_case(g2_isa isa, int type, int64_t rows, int64_t cols, int n, int threads) {
    return check_case_m(isa, type, rows, cols, n, threads, 0);
}

/* quantized blocks of random bytes, through decode tiles (n = 1, 3) and prefill (n = 20: with
 * 32 rows, the r16 kernels on groups packed per call; with 21, the row tiles) */
static void test_random_blocks(void) {
    static const int qt[] = {GEMMA2_TYPE_Q8_0, GEMMA2_TYPE_Q4_0, GEMMA2_TYPE_Q4_K, GEMMA2_TYPE_Q6_K};
    for (int isa = G2_ISA_SCALAR; isa <= G2_ISA_AVX512; isa++) {
        if (!g2_isa_available((g2_isa)isa)) continue;
        for (int i = 0; i < 4; i++)
            for (int rows = 21; rows <= 32; rows += 11)
                for (int n = 1; n <= 20; n += n == 1 ? 2 : 17)
                    CHECK(check_case_m((g2_isa)isa, qt[i], rows, 768, n, 2, 1) == 0, "%s %s rows=%d n=%d",
                          g2_isa_name((g2_isa)isa), gemma2_type_name(qt[i]), rows, n);
    }
}

/* every type x every ISA x shapes: odd rows, n = 1 and n > 1 not a multiple of the tile,
 * rows not divisible by the thread count */
static void test_matmul_all_paths(void) {
    static const struct { int64_t rows, cols; int n, threads; } shapes[] = {
        {1, 256, 1, 1}, {37, 512, 1, 2}, {37, 512, 7, 3}, {64, 2304, 1, 2}, {13, 768, 9, 2}, {5, 256, 4, 4},
        /* >= 16 tokens: rows in groups of 16 run the r16 kernels on groups packed per call
         * (AVX2, AVX-512), in several row blocks for the 160 x 2304 ones; other row counts the
         * row tiles */
        {37, 512, 20, 2}, {50, 768, 33, 3}, {16, 256, 16, 1}, {300, 1024, 17, 2}, {48, 512, 20, 2}, {160, 2304, 37, 2},
    };
    for (int isa = G2_ISA_SCALAR; isa <= G2_ISA_AVX512; isa++) {
        if (!g2_isa_available((g2_isa)isa)) {
            printf("# skip %s: not on this CPU\n", g2_isa_name((g2_isa)isa));
            continue;
        }
        for (int ti = 0; ti < N_TYPES; ti++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                int bad = check_case((g2_isa)isa, k_types[ti], shapes[s].rows, shapes[s].cols, shapes[s].n, shapes[s].threads);
                CHECK(bad == 0, "%s %s shape %zu", g2_isa_name((g2_isa)isa), gemma2_type_name(k_types[ti]), s);
            }
    }
}

/* Q8_0 / Q4_0 rows of 1-9 blocks: the AVX-512 row kernels step two blocks at a time (Q4_0
 * decode four, then two) and finish an odd one alone (no other test has a row of an odd block
 * count: without that last block, only this one failed) */
static void test_q32_block_tails(void) {
    static const int qt[] = {GEMMA2_TYPE_Q8_0, GEMMA2_TYPE_Q4_0};
    for (int isa = G2_ISA_SCALAR; isa <= G2_ISA_AVX512; isa++) {
        if (!g2_isa_available((g2_isa)isa)) continue;
        for (int i = 0; i < 2; i++)
            for (int nb = 1; nb <= 9; nb++)
                for (int n = 1; n <= 3; n += 2)
                    CHECK(check_case((g2_isa)isa, qt[i], 5, 32 * nb, n, 1) == 0, "%s %s %d blocks, %d tokens",
                          g2_isa_name((g2_isa)isa), gemma2_type_name(qt[i]), nb, n);
    }
}

/* Q4_0 / Q8_0 decode on plain rows. The AVX-512 Q4_0 kernel shuffles the activations once per
 * call of up to 64 rows (G2_Q4_0_DECODE_ROWS), so 150 rows take three calls, the last of 22;
 * 2400 columns end in three blocks after the 4-block steps; rows longer than its 36864-column
 * buffer (G2_Q4_0_ACT_MAX_COLS) shuffle in every row instead. Q8_0 on the same shapes: its row
 * kernel's long rows and call sizes. */
static void test_row_decode_calls(void) {
    static const int qt[] = {GEMMA2_TYPE_Q4_0, GEMMA2_TYPE_Q8_0};
    static const struct { int64_t rows, cols; } shapes[] = {{150, 2400}, {3, 36992}};
    for (int isa = G2_ISA_SCALAR; isa <= G2_ISA_AVX512; isa++) {
        if (!g2_isa_available((g2_isa)isa)) continue;
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 2; k++)
                CHECK(check_case((g2_isa)isa, qt[i], shapes[k].rows, shapes[k].cols, 1, 2) == 0, "%s %s %lld x %lld",
                      g2_isa_name((g2_isa)isa), gemma2_type_name(qt[i]), (long long)shapes[k].rows,
                      (long long)shapes[k].cols);
    }
}

/* F32/BF16/F16 accept any column count: the SIMD tails, in decode (the row kernels: 130 and 161
 * run the AVX-512 BF16 row's 128-wide step, then its tail) and in a tile of tokens */
static void test_float_tails(void) {
    static const int64_t cols[] = {1, 7, 15, 17, 33, 100, 130, 161};
    static const int ft[] = {GEMMA2_TYPE_F32, GEMMA2_TYPE_BF16, GEMMA2_TYPE_F16};
    for (int isa = G2_ISA_SCALAR; isa <= G2_ISA_AVX512; isa++) {
        if (!g2_isa_available((g2_isa)isa)) continue;
        for (int i = 0; i < 3; i++)
            for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++)
                for (int n = 1; n <= 5; n += 4)
                    CHECK(check_case((g2_isa)isa, ft[i], 6, cols[c], n, 2) == 0, "%s %s cols %lld, %d tokens",
                          g2_isa_name((g2_isa)isa), gemma2_type_name(ft[i]), (long long)cols[c], n);
    }
}

static void test_quantizers_match_ggml(void) {
    static float x[4096];
    static uint8_t out[4096 / 32 * 34];
    golden_input(x, 4096);
    static const struct { int type; uint64_t hash; } want[] = {
        /* ggml quantize_row_*_ref (llama.cpp 80fb11ac, oracle libggml-base) on golden_input */
        {GEMMA2_TYPE_Q8_0, 0x1dd6a86b13169f33ull},
        {GEMMA2_TYPE_Q4_0, 0x582985275faba795ull},
        {GEMMA2_TYPE_Q4_K, 0x87249bd21786e0c7ull},
        {GEMMA2_TYPE_Q6_K, 0x94303f5aa69e49b0ull},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t n = g2_quantize_row(want[i].type, x, out, 4096);
        CHECK(n == g2_type_row_bytes(want[i].type, 4096));
        CHECK(fnv1a(out, n) == want[i].hash, "%s hash %016llx", gemma2_type_name(want[i].type),
              (unsigned long long)fnv1a(out, n));
    }
}

/* Q8_0 of a known vector: x_j = j - 16: amax 16, d = 16/127 (fp16 0x3008), q_j = round(x_j*127/16) */
static void test_q8_0_known(void) {
    float x[32];
    uint8_t b[34];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    g2_quantize_row_q8_0(x, b, 32);
    uint16_t d;
    memcpy(&d, b, 2);
    CHECK(d == g2_f32_to_f16(16.0f / 127), "d %04x", d);
    CHECK((int8_t)b[2] == -127 && (int8_t)b[2 + 16] == 0 && (int8_t)b[2 + 31] == 119 && (int8_t)b[2 + 1] == -119,
          "%d %d %d %d", (int8_t)b[2], (int8_t)b[18], (int8_t)b[33], (int8_t)b[3]);
    /* Q4_0 of the same: max-magnitude element -16 -> d = 2, q = round(x/2 + 8) */
    uint8_t c[18];
    g2_quantize_row_q4_0(x, c, 32);
    memcpy(&d, c, 2);
    CHECK(g2_f16_to_f32(d) == 2.0f);
    CHECK((c[2] & 0xF) == 0 && (c[2] >> 4) == 8 && (c[2 + 15] >> 4) == 15, "%02x %02x", c[2], c[17]);
}

/* dequantize(quantize(x)) errors, as a fraction of the rms of x (uniform data with outliers).
 * Measured on this kind of data: BF16 1.5e-3, F16 1.8e-4, Q8_0 0.0095, Q6_K 0.027, Q4_K 0.089,
 * Q4_0 0.146; the bounds sit 10-40% above (the quantizers are deterministic, and byte-equal to
 * ggml's, so these guard against gross breakage of the dequantizers, not against drift). */
static void test_round_trips(void) {
    enum { N = 8192 };
    float *x = malloc(N * 4), *y = malloc(N * 4);
    uint8_t *b = malloc(N * 4);
    random_fill(x, N, 5, 1.0);
    double rms = 0;
    for (int i = 0; i < N; i++) rms += (double)x[i] * x[i];
    rms = sqrt(rms / N);
    static const struct { int type; double max_rel_rms; } k[] = {
        {GEMMA2_TYPE_F32, 0}, {GEMMA2_TYPE_BF16, 3e-3}, {GEMMA2_TYPE_F16, 4e-4}, {GEMMA2_TYPE_Q8_0, 0.012},
        {GEMMA2_TYPE_Q6_K, 0.03}, {GEMMA2_TYPE_Q4_K, 0.12}, {GEMMA2_TYPE_Q4_0, 0.2},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        CHECK(g2_quantize_row(k[i].type, x, b, N) == g2_type_row_bytes(k[i].type, N));
        g2_dequantize_row(k[i].type, b, y, N);
        double e = 0;
        for (int j = 0; j < N; j++) e += ((double)x[j] - y[j]) * ((double)x[j] - y[j]);
        e = sqrt(e / N) / rms;
        CHECK(e <= k[i].max_rel_rms, "%s rel rms %.4g", gemma2_type_name(k[i].type), e);
    }
    /* per-element bound for Q8_0: |x - w| <= amax/254 + 127 * |d - fp16(d)| */
    g2_quantize_row(GEMMA2_TYPE_Q8_0, x, b, N);
    g2_dequantize_row(GEMMA2_TYPE_Q8_0, b, y, N);
    int bad = 0;
    for (int blk = 0; blk < N / 32; blk++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[blk * 32 + j]));
        for (int j = 0; j < 32; j++)
            if (fabsf(x[blk * 32 + j] - y[blk * 32 + j]) > amax * (1.0f / 254 + 1.0f / 1024)) bad++;
    }
    CHECK(bad == 0, "%d elements off", bad);
    /* bad lengths are refused */
    CHECK(g2_quantize_row(GEMMA2_TYPE_Q4_K, x, b, 300) == 0);
    CHECK(g2_quantize_row(GEMMA2_TYPE_Q8_0, x, b, 33) == 0);
    free(x), free(y), free(b);
}

/* all-zero and constant rows: no NaN from 0/0 in any quantizer or kernel */
static void test_degenerate_rows(void) {
    float x[256] = {0}, y[256], act[256];
    uint8_t b[1024];
    for (int i = 0; i < 256; i++) act[i] = 1.0f;
    for (int ti = 0; ti < N_TYPES; ti++) {
        for (int v = 0; v < 2; v++) {
            for (int i = 0; i < 256; i++) x[i] = v ? 0.25f : 0.0f;
            g2_quantize_row(k_types[ti], x, b, 256);
            g2_dequantize_row(k_types[ti], b, y, 256);
            double s = 0;
            for (int i = 0; i < 256; i++) s += y[i];
            CHECK(isfinite(s) && fabs(s - 256 * x[0]) <= 256 * 0.25 * 0.02, "%s v=%d sum %g", gemma2_type_name(k_types[ti]), v, s);
            float d = g2_dot_row(k_types[ti], b, act, 256);
            CHECK(isfinite(d) && fabs(d - s) <= 1e-3 * (fabs(s) + 1), "%s dot %g vs %g", gemma2_type_name(k_types[ti]), d, s);
        }
    }
}

static void test_row_access(void) {
    for (int ti = 0; ti < N_TYPES; ti++) {
        test_matrix m = make_matrix(k_types[ti], 5, 512, 9);
        float row[512];
        g2_tensor_row_f32(&m.t, 3, row);
        CHECK(memcmp(row, m.deq + 3 * 512, sizeof row) == 0, "%s", gemma2_type_name(k_types[ti]));
        free_matrix(&m);
    }
}

/* The r16 layout (repack.h): packing is a permutation (unpack restores every byte), rows read
 * back the same, and products on every ISA, decode (the r16 kernels) and prefill (unpacked
 * blocks), meet the same float64 tolerances as the plain layout. */
static void test_r16_layout(void) {
    static const int rt[] = {GEMMA2_TYPE_F32, GEMMA2_TYPE_F16, GEMMA2_TYPE_BF16, GEMMA2_TYPE_Q8_0, GEMMA2_TYPE_Q4_0, GEMMA2_TYPE_Q4_K, GEMMA2_TYPE_Q6_K};
    enum { NRT = sizeof rt / sizeof rt[0] };
    CHECK(!g2_r16_supported(GEMMA2_TYPE_BF16, 40, 64) && !g2_r16_supported(GEMMA2_TYPE_BF16, 32, 63) &&
          g2_r16_supported(GEMMA2_TYPE_Q8_0, 32, 256) && !g2_r16_supported(GEMMA2_TYPE_Q8_0, 32, 48) &&
          g2_r16_supported(GEMMA2_TYPE_F16, 32, 255) && !g2_r16_supported(GEMMA2_TYPE_F32, 24, 256) &&
          g2_r16_supported(GEMMA2_TYPE_Q4_0, 32, 256) &&
          !g2_r16_supported(GEMMA2_TYPE_Q4_K, 32, 32) && g2_r16_supported(GEMMA2_TYPE_Q6_K, 32, 256));
    for (int i = 0; i < NRT; i++) {
        test_matrix m = make_matrix_random_bytes(rt[i], 48, 256, 5);
        const size_t bytes = m.t.row_bytes * 48;
        uint8_t *orig = malloc(bytes), *back = malloc(bytes);
        memcpy(orig, m.data, bytes);
        CHECK(g2_tensor_repack_r16(&m.t, 2) == 0 && m.t.layout == G2_LAYOUT_R16);
        CHECK(memcmp(orig, m.data, bytes) != 0, "%s: repacking changed nothing", gemma2_type_name(rt[i]));
        CHECK(g2_tensor_repack_r16(&m.t, 2) == 1, "a second repack must be refused");
        for (int g = 0; g < 3; g++)
            g2_r16_unpack_group(rt[i], 256, m.data + (size_t)g * 16 * m.t.row_bytes, back + (size_t)g * 16 * m.t.row_bytes,
                                m.t.row_bytes);
        CHECK(memcmp(orig, back, bytes) == 0, "%s: unpack(pack(w)) != w", gemma2_type_name(rt[i]));
        float row[256];
        for (int r = 0; r < 48; r += 13) {
            g2_tensor_row_f32(&m.t, r, row);
            CHECK(memcmp(row, m.deq + r * 256, sizeof row) == 0, "%s row %d", gemma2_type_name(rt[i]), r);
        }
        free(orig), free(back);
        free_matrix(&m);
    }
    static const struct { int64_t rows, cols; int n, threads; } shapes[] = {
        {16, 256, 1, 1}, {48, 2304, 1, 2}, {32, 512, 3, 2}, {64, 512, 20, 3}, {32, 9216, 1, 2}, {80, 768, 1, 3},
        {512, 256, 1, 2}, {256, 512, 1, 2}, {48, 768, 9, 2},
    };
    for (int isa = G2_ISA_SCALAR; isa <= G2_ISA_AVX512; isa++) {
        if (!g2_isa_available((g2_isa)isa)) continue;
        for (int i = 0; i < NRT; i++) {
            /* random bytes test the quantized blocks' bit patterns; as floats they hold NaNs */
            const int is_float = rt[i] == GEMMA2_TYPE_F32 || rt[i] == GEMMA2_TYPE_F16;
            for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
                for (int rnd = 0; rnd < 2 - is_float; rnd++)
                    CHECK(check_case_r((g2_isa)isa, rt[i], shapes[k].rows, shapes[k].cols, shapes[k].n, shapes[k].threads,
                                       rnd, 1) == 0,
                          "%s %s r16 shape %zu random_bytes %d", g2_isa_name((g2_isa)isa), gemma2_type_name(rt[i]), k, rnd);
            /* F32 and F16 take any row length: the column tail after the 4-column steps */
            for (int cols = 253; is_float && cols <= 255; cols++)
                for (int n = 1; n <= 5; n += 4)
                    CHECK(check_case_r((g2_isa)isa, rt[i], 32, cols, n, 2, 0, 1) == 0, "%s %s r16 %d cols, %d tokens",
                          g2_isa_name((g2_isa)isa), gemma2_type_name(rt[i]), cols, n);
        }
    }
}

/* Runs the r16e tests on the AVX2 kernels (GEMMA2_ISA=avx2, the old value kept in saved[32]);
 * 0 (skipped, said why) on a CPU without AVX2. restore_isa puts the old value back. */
static int force_avx2(char saved[32], const char *what) {
    if (!g2_isa_available(G2_ISA_AVX2)) {
        printf("# skip %s: no AVX2\n", what);
        return 0;
    }
    saved[0] = 0;
    if (getenv("GEMMA2_ISA")) snprintf(saved, 32, "%s", getenv("GEMMA2_ISA"));
    setenv("GEMMA2_ISA", "avx2", 1);
    return 1;
}
static void restore_isa(const char saved[32]) {
    if (saved[0]) setenv("GEMMA2_ISA", saved, 1);
    else unsetenv("GEMMA2_ISA");
}

/* Rows of t (g2_tensor_row_f32, any layout) that differ from deq's, bit for bit. */
static int rows_differ(const g2_tensor *t, const float *deq) {
    float *row = malloc((size_t)t->cols * sizeof *row);
    int bad = 0;
    for (int64_t r = 0; r < t->rows; r++) {
        g2_tensor_row_f32(t, r, row);
        bad += memcmp(row, deq + r * t->cols, (size_t)t->cols * sizeof *row) != 0;
    }
    free(row);
    return bad;
}

/* How many of the n x rows outputs y (token-major) are off the float64 sums of w (rows x cols,
 * dequantized) times x by more than fp32 accumulation of exact products can explain. */
static int outputs_off(const float *w, const float *x, const float *y, int n, int rows, int cols) {
    int bad = 0;
    for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++) {
            double exact = 0, mag = 0;
            for (int c = 0; c < cols; c++) {
                exact += (double)w[r * cols + c] * x[t * cols + c];
                mag += fabs((double)w[r * cols + c] * x[t * cols + c]);
            }
            bad += fabs(y[t * rows + r] - exact) > 2e-5 * mag + 1e-30; /* fp32 sums of exact products */
        }
    return bad;
}

/* r16e (BF16 in 12 bits a weight, repack.h), chosen where AVX2 or AVX-512 is the best instruction set
 * (forced here with GEMMA2_ISA=avx2): lossless (rows and groups come back bit for bit), decode
 * and prefill of 16 tokens or more bit-identical to r16 (the same products in the same order),
 * other token counts against float64, the scalar path the same as on plain rows, and an
 * AVX-512 request with r16's AVX-512 bits. Group 0 holds 30 rare exponents twice each (zeros,
 * subnormals, tiny values: escapes); in the second variant group 1 holds 100 distinct exponents,
 * more than a group's G2_R16E_ESC escapes, so the tensor must stay r16. Before them: a group
 * whose sampled exponent counts choose codes that overflow the escapes, packed with the full
 * count's; tensors of 12 columns (no smaller as r16e) and 14. */
static void test_r16e_layout(void) {
    char saved[32];
    if (!force_avx2(saved, "r16e")) return;
    setenv("GEMMA2_BF16_CODES", "0", 1);
    CHECK(!g2_r16e_wanted(), "GEMMA2_BF16_CODES=0 must keep r16");
    unsetenv("GEMMA2_BF16_CODES");
    CHECK(g2_r16e_wanted());
    enum { ROWS = 48, COLS = 520, NMAX = 20 };
    const size_t cb = G2_R16E_GROUP_BYTES(COLS);
    { /* codes from every weight when a sample's do not fit: 10 exponents everywhere, 5 more 20
       * times each where the sample (row r's columns r mod 8) does not look: 100 escapes with
       * the sample's codes, none with all 15 */
        uint16_t g[16 * COLS];
        uint8_t *packed = malloc(cb), back[sizeof g];
        for (int r = 0; r < 16; r++)
            for (int c = 0; c < COLS; c++) g[r * COLS + c] = (uint16_t)((100 + (r * 7 + c) % 10) << 7 | (c & 0x7F));
        for (int i = 0; i < 100; i++) {
            const int r = i % 16, c = 8 * (i / 16) + (r + 1) % 8;
            g[r * COLS + c] = (uint16_t)(1u << 15 | (120 + i % 5) << 7 | i);
        }
        CHECK(g2_r16e_pack_group(COLS, (const uint8_t *)g, 2 * COLS, packed) == 0);
        int esc = 0;
        for (int p = 0; p < COLS / 2; p++)
            for (int k = 0; k < 16; k++) esc += (packed[32 + (size_t)p * 48 + 32 + k] & 15) == 15 || packed[32 + (size_t)p * 48 + 32 + k] >> 4 == 15;
        g2_r16e_unpack_group(COLS, packed, back, 2 * COLS);
        CHECK(esc == 0 && memcmp(back, g, sizeof g) == 0, "%d pairs of codes with escapes", esc);
        free(packed);
    }
    for (int cols = 12; cols <= 14; cols += 2) { /* r16e from 14 columns: up to 12 it saves nothing */
        test_matrix m = make_matrix(GEMMA2_TYPE_BF16, 32, cols, 5);
        CHECK(g2_tensor_repack_r16(&m.t, 2) == 0 && m.t.layout == (cols < 14 ? G2_LAYOUT_R16 : G2_LAYOUT_R16E), "%d columns", cols);
        free_matrix(&m);
    }
    for (int variant = 0; variant < 2; variant++) {
        test_matrix m = make_matrix(GEMMA2_TYPE_BF16, ROWS, COLS, 11 + (uint64_t)variant);
        uint16_t *w = (uint16_t *)(void *)m.data;
        for (int i = 0; i < 60; i++) { /* group 0: exponents 0..29 (0: zero, subnormal), signs mixed */
            const int e = i % 30;
            w[(size_t)(i * 131) % (16 * COLS)] = (uint16_t)((i & 1) << 15 | e << 7 | (i * 37 & 0x7F));
        }
        for (int i = 0; variant == 1 && i < 100; i++) /* group 1: 100 distinct exponents */
            w[16 * COLS + (size_t)(i * 83) % (16 * COLS)] = (uint16_t)((30 + i) << 7 | 5);
        for (int64_t r = 0; r < ROWS; r++) g2_dequantize_row(GEMMA2_TYPE_BF16, m.data + (size_t)r * m.t.row_bytes, m.deq + r * COLS, COLS);
        const size_t bytes = m.t.row_bytes * ROWS;
        uint8_t *plain = malloc(bytes), *r16 = malloc(bytes), *back = malloc(bytes);
        memcpy(plain, m.data, bytes);
        memcpy(r16, m.data, bytes);
        g2_tensor tp = m.t, t16 = m.t;
        tp.data = plain, t16.data = r16;
        setenv("GEMMA2_BF16_CODES", "0", 1);
        CHECK(g2_tensor_repack_r16(&t16, 2) == 0 && t16.layout == G2_LAYOUT_R16);
        unsetenv("GEMMA2_BF16_CODES");
        CHECK(g2_tensor_repack_r16(&m.t, 2) == 0);
        if (variant == 1) {
            CHECK(m.t.layout == G2_LAYOUT_R16 && memcmp(m.data, r16, bytes) == 0, "a group beyond its escapes: r16, as packed");
        } else {
            CHECK(m.t.layout == G2_LAYOUT_R16E, "layout %d", (int)m.t.layout);
            CHECK(g2_tensor_repack_r16(&m.t, 2) == 1, "a second repack must be refused");
            int esc = 0; /* group 0's code-15 weights: the escape path is exercised */
            for (int p = 0; p < COLS / 2; p++)
                for (int k = 0; k < 16; k++) {
                    const uint8_t x = m.data[32 + (size_t)p * 48 + 32 + k];
                    esc += (x & 15) == 15;
                    esc += (x >> 4) == 15;
                }
            CHECK(esc > 0 && esc <= G2_R16E_ESC, "%d escapes in group 0", esc);
            for (int g = 0; g < ROWS / 16; g++)
                g2_r16e_unpack_group(COLS, m.data + (size_t)g * cb, back + (size_t)g * 16 * m.t.row_bytes, m.t.row_bytes);
            CHECK(memcmp(back, plain, bytes) == 0, "unpack(pack(w)) != w");
        }
        const int bad_rows = rows_differ(&m.t, m.deq);
        CHECK(bad_rows == 0, "variant %d: %d rows differ", variant, bad_rows);
        float *x = malloc(NMAX * COLS * 4), *y = malloc(NMAX * ROWS * 4), *y1 = malloc(NMAX * ROWS * 4);
        random_fill(x, NMAX * COLS, 91, 1.0);
        static const int ns[] = {1, 3, 20};
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++) {
            const int n = ns[j];
            CHECK(g2_matmul_isa(G2_ISA_AVX2, &m.t, x, n, y, 2) == 0);
            if (n != 3) { /* r16's kernels in decode, the F32 tile on widened groups from 16 tokens */
                CHECK(g2_matmul_isa(G2_ISA_AVX2, &t16, x, n, y1, 2) == 0);
                CHECK(memcmp(y, y1, (size_t)n * ROWS * 4) == 0, "variant %d n %d: not r16's bits", variant, n);
            }
            int bad = outputs_off(m.deq, x, y, n, ROWS, COLS);
            CHECK(bad == 0, "variant %d n %d: %d outputs off", variant, n, bad);
            /* An AVX-512 request (where the CPU has it): r16e prefill runs AVX-512's r16 BF16
             * tiles on the same values, and its decode kernel with fp32 activations
             * (GEMMA2_BF16_DOT=0 here) takes r16's products in their order, so both give r16's
             * bits on that request (test_bf16_dot_option covers AVX-512's r16e decode with bf16
             * activations). Other sums go in other orders: checked against the float64 sums.
             * A CPU without AVX-512 answers the request with AVX2, whose 3-token sums differ. */
            CHECK(g2_matmul_isa(G2_ISA_AVX512, &m.t, x, n, y1, 2) == 0);
            if (m.t.layout == G2_LAYOUT_R16E && g2_isa_available(G2_ISA_AVX512)) {
                float *y16 = malloc(NMAX * ROWS * 4);
                CHECK(g2_matmul_isa(G2_ISA_AVX512, &t16, x, n, y16, 2) == 0);
                CHECK(memcmp(y16, y1, (size_t)n * ROWS * 4) == 0, "variant %d n %d: not r16's AVX-512 bits", variant, n);
                free(y16);
            }
            bad = outputs_off(m.deq, x, y1, n, ROWS, COLS);
            CHECK(bad == 0, "variant %d n %d: %d AVX-512 outputs off", variant, n, bad);
            CHECK(g2_matmul_isa(G2_ISA_SCALAR, &m.t, x, n, y, 1) == 0 && g2_matmul_isa(G2_ISA_SCALAR, &tp, x, n, y1, 1) == 0);
            CHECK(memcmp(y, y1, (size_t)n * ROWS * 4) == 0, "variant %d n %d: scalar path", variant, n);
        }
        free(x), free(y), free(y1), free(plain), free(r16), free(back);
        free_matrix(&m);
    }
    restore_isa(saved);
}

/* F16 tensors that hold BF16 values (an F16 file converted from a BF16 checkpoint) go to r16e
 * as BF16 tensors of the same values: rows, decode, 3 and 20 tokens bit-identical to r16 F16
 * (whose kernels take the products in the same order: decode's even and odd columns apart,
 * prefill's in column order as the F32 tile on widened groups does). One value that is not a
 * BF16 value (1 + 2^-10, in the last group), or a group beyond its escapes (group 1), keeps the
 * whole tensor F16, its bytes those of r16 F16 after the groups already converted were taken
 * back. fp16 subnormals with at most 8 significant bits are BF16 values too (group 0). */
static void test_r16e_from_f16(void) {
    char saved[32];
    if (!force_avx2(saved, "r16e from F16")) return;
    enum { ROWS = 48, COLS = 520, NMAX = 20 };
    for (int variant = 0; variant < 3; variant++) {
        test_matrix m = make_matrix(GEMMA2_TYPE_F16, ROWS, COLS, 21 + (uint64_t)variant);
        uint16_t *h = (uint16_t *)(void *)m.data;
        for (size_t i = 0; i < (size_t)ROWS * COLS; i++) h[i] &= 0xFFF8; /* 7 mantissa bits: BF16 values */
        static const uint16_t sub[] = {0x0001, 0x00FF, 0x80F0, 0x0000, 0x8000, 0x0100};
        for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) h[97 * i + 5] = sub[i];
        if (variant == 1) h[(size_t)(ROWS - 1) * COLS + 7] = 0x3C01;
        for (int i = 0; variant == 2 && i < 150; i++) /* group 1: 30 exponents 5 times, beyond the escapes */
            h[16 * COLS + (size_t)(i * 83) % (16 * COLS)] = (uint16_t)((1 + i % 30) << 10 | (i & 0x7F) << 3);
        for (int64_t r = 0; r < ROWS; r++) g2_dequantize_row(GEMMA2_TYPE_F16, m.data + (size_t)r * m.t.row_bytes, m.deq + r * COLS, COLS);
        const size_t bytes = m.t.row_bytes * ROWS;
        uint8_t *r16 = malloc(bytes);
        memcpy(r16, m.data, bytes);
        g2_tensor t16 = m.t;
        t16.data = r16;
        setenv("GEMMA2_BF16_CODES", "0", 1);
        CHECK(g2_tensor_repack_r16(&t16, 2) == 0 && t16.layout == G2_LAYOUT_R16 && t16.type == GEMMA2_TYPE_F16);
        unsetenv("GEMMA2_BF16_CODES");
        CHECK(g2_tensor_repack_r16(&m.t, 2) == 0);
        if (variant > 0) {
            CHECK(m.t.layout == G2_LAYOUT_R16 && m.t.type == GEMMA2_TYPE_F16 && memcmp(m.data, r16, bytes) == 0,
                  "variant %d: r16 F16, as packed", variant);
        } else {
            CHECK(m.t.layout == G2_LAYOUT_R16E && m.t.type == GEMMA2_TYPE_BF16, "layout %d type %d", (int)m.t.layout, m.t.type);
        }
        const int bad_rows = rows_differ(&m.t, m.deq);
        CHECK(bad_rows == 0, "variant %d: %d rows differ", variant, bad_rows);
        float *x = malloc(NMAX * COLS * 4), *y = malloc(NMAX * ROWS * 4), *y1 = malloc(NMAX * ROWS * 4);
        random_fill(x, NMAX * COLS, 92, 1.0);
        static const int ns[] = {1, 3, NMAX};
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++) {
            const int n = ns[j];
            CHECK(g2_matmul_isa(G2_ISA_AVX2, &m.t, x, n, y, 2) == 0 && g2_matmul_isa(G2_ISA_AVX2, &t16, x, n, y1, 2) == 0);
            int bad = 0, same = 1;
            for (int i = 0; i < n * ROWS; i++) {
                same &= y[i] == y1[i];
                bad += fabsf(y[i] - y1[i]) > 1e-5f * (fabsf(y1[i]) + 1.0f); /* fp32 sums of the same products */
            }
            CHECK(bad == 0 && same, "variant %d n %d: %d outputs off, bit-identical %d", variant, n, bad, same);
        }
        free(x), free(y), free(y1), free(r16);
        free_matrix(&m);
    }
    restore_isa(saved);
}

/* A tensor's plain rows in memory as the reader of g2_tensor_pack_r16e_streamed; reads that
 * reach past fail_at fail. */
typedef struct {
    const uint8_t *rows;
    size_t fail_at;
} rows_source;
static int read_rows_source(void *ctx, size_t off, void *dst, size_t n) {
    const rows_source *s = ctx;
    if (off + n > s->fail_at) return -1;
    memcpy(dst, s->rows + off, n);
    return 0;
}

/* g2_tensor_pack_r16e_streamed (read mode's load of BF16 and F16 tensors, model.c) gives what
 * g2_tensor_repack_r16 gives in place, byte for byte, with the same layout and type; where it
 * packs r16e it writes nothing past the packed groups (the destination's other bytes keep their
 * fill). Cases: BF16 (r16e); BF16 with a group beyond its escapes, F16 holding BF16 values (r16e,
 * as BF16), F16 with one value that is not a BF16 value and Q8_0 (r16 after reading every row);
 * BF16 with GEMMA2_BF16_CODES=0 (r16); a read that fails (-2, the layout unchanged). */
static void test_r16e_streamed(void) {
    char saved[32];
    if (!force_avx2(saved, "r16e streamed")) return;
    enum { ROWS = 80, COLS = 544 }; /* Q8_0 needs whole blocks of 32 */
    for (int c = 0; c < 7; c++) {
        const int type = c == 2 || c == 3 ? GEMMA2_TYPE_F16 : c == 4 ? GEMMA2_TYPE_Q8_0 : GEMMA2_TYPE_BF16;
        test_matrix m = make_matrix(type, ROWS, COLS, 31 + (uint64_t)c);
        uint16_t *h = (uint16_t *)(void *)m.data;
        for (int i = 0; c == 1 && i < 100; i++) /* group 2: 100 distinct exponents */
            h[32 * COLS + (size_t)(i * 83) % (16 * COLS)] = (uint16_t)((30 + i) << 7 | 5);
        for (size_t i = 0; (c == 2 || c == 3) && i < (size_t)ROWS * COLS; i++) h[i] &= 0xFFF8;
        if (c == 3) h[(size_t)(ROWS - 1) * COLS + 7] = 0x3C01; /* 1 + 2^-10, in the last group */
        const size_t bytes = m.t.row_bytes * ROWS, cbytes = (size_t)(ROWS / 16) * G2_R16E_GROUP_BYTES(COLS);
        uint8_t *dst = malloc(bytes);
        memset(dst, 0xA5, bytes);
        g2_tensor ts = m.t;
        ts.data = dst;
        rows_source src = {m.data, c == 6 ? bytes / 2 : bytes};
        if (c == 5) setenv("GEMMA2_BF16_CODES", "0", 1);
        const int r = g2_tensor_pack_r16e_streamed(&ts, 2, read_rows_source, &src);
        CHECK(g2_tensor_repack_r16(&m.t, 2) == 0); /* the reference, in place */
        unsetenv("GEMMA2_BF16_CODES");
        if (c == 6) {
            CHECK(r == -2 && ts.layout == G2_LAYOUT_ROWS, "a failed read: %d, layout %d", r, (int)ts.layout);
        } else {
            const g2_layout want = c == 0 || c == 2 ? G2_LAYOUT_R16E : G2_LAYOUT_R16;
            CHECK(r == 0 && ts.layout == want && m.t.layout == want && ts.type == m.t.type, "case %d: %d, layout %d/%d, type %d/%d",
                  c, r, (int)ts.layout, (int)m.t.layout, ts.type, m.t.type);
            const size_t used = want == G2_LAYOUT_R16E ? cbytes : bytes;
            int untouched = 1;
            for (size_t i = used; i < bytes; i++) untouched &= dst[i] == 0xA5;
            CHECK(memcmp(dst, m.data, used) == 0 && untouched, "case %d: not the in-place bytes (%d untouched)", c, untouched);
        }
        free(dst);
        free_matrix(&m);
    }
    restore_isa(saved);
}

/* g2_matmul_many == one g2_matmul per matrix, bit for bit: the same kernels and activations,
 * one parallel region (same activation format) or one call each (mixed formats: Q4_K + Q8_0). */
static void test_matmul_many(void) {
    static const int sets[2][3] = {{GEMMA2_TYPE_Q4_0, GEMMA2_TYPE_Q8_0, GEMMA2_TYPE_Q4_0},
                                   {GEMMA2_TYPE_Q4_K, GEMMA2_TYPE_Q8_0, GEMMA2_TYPE_BF16}};
    static const int64_t rows[3] = {64, 32, 48};
    for (int s = 0; s < 2; s++)
        for (int n = 1; n <= 20; n += 19) {
            test_matrix m[3];
            const g2_tensor *w[3];
            float *y[3], *y1[3], *x = malloc((size_t)n * 512 * 4);
            random_fill(x, n * 512, 21, 1.0);
            for (int i = 0; i < 3; i++) {
                m[i] = make_matrix(sets[s][i], rows[i], 512, 30 + (uint64_t)i);
                if (i == 2 && s == 0) g2_tensor_repack_r16(&m[i].t, 2); /* layouts may differ too */
                w[i] = &m[i].t;
                y[i] = malloc((size_t)n * rows[i] * 4), y1[i] = malloc((size_t)n * rows[i] * 4);
                g2_matmul(w[i], x, n, y1[i], 2);
            }
            CHECK(g2_matmul_many(w, y, 3, x, n, 0, 2) == 0);
            for (int i = 0; i < 3; i++) {
                CHECK(memcmp(y[i], y1[i], (size_t)n * rows[i] * 4) == 0, "set %d n %d matrix %d", s, n, i);
                free(y[i]), free(y1[i]);
                free_matrix(&m[i]);
            }
            free(x);
        }
}

/* G2_MATMUL_FINE_ACT: the activations in two int8 terms (x ~ d q + d' q', q' the rounded
 * residual, d' <= d / 254). Against the float64 product with the original fp32 x, each element's
 * rounding is at most d' / 2 <= d / 508, so the bound is the one-term bound (sum |w_i| d_i / 2)
 * over 254, plus the fp32 tolerance. That worst-case bound is loose, so the sum of errors must
 * also be 150x below the one-term product's (measured 226-310x on every path; a second term
 * off by 2% gives ~50x). Every ISA, both layouts, decode
 * (n = 1), tiles and panels (n = 20); float weights ignore the flag (bit-identical). */
static void test_fine_activations(void) {
    static const int qt[] = {GEMMA2_TYPE_Q8_0, GEMMA2_TYPE_Q4_0, GEMMA2_TYPE_Q4_K, GEMMA2_TYPE_Q6_K, GEMMA2_TYPE_BF16};
    const int64_t rows = 48, cols = 512;
    for (int isa = G2_ISA_SCALAR; isa <= G2_ISA_AVX512; isa++) {
        if (!g2_isa_available((g2_isa)isa)) continue;
        for (size_t ti = 0; ti < sizeof qt / sizeof qt[0]; ti++)
            for (int r16 = 0; r16 < 2; r16++)
                for (int n = 1; n <= 70; n += n == 1 ? 2 : n == 3 ? 17 : 50) { /* 70: AVX2 Q8_0, Q4_K, Q6_K widened (matmul.c) */
                    const int type = qt[ti];
                    test_matrix m = make_matrix(type, rows, cols, 50 + (uint64_t)type);
                    if (r16) CHECK(g2_tensor_repack_r16(&m.t, 2) == 0);
                    float *x = malloc((size_t)n * cols * 4), *y = malloc((size_t)n * rows * 4), *y1 = malloc((size_t)n * rows * 4);
                    float *xa = malloc((size_t)cols * 4), *xe = malloc((size_t)cols * 4);
                    random_fill(x, n * cols, 88 + (uint64_t)n, 1.0);
                    const g2_tensor *w = &m.t;
                    CHECK(g2_matmul_many_isa((g2_isa)isa, &w, &y, 1, x, n, G2_MATMUL_FINE_ACT, 2) == 0);
                    CHECK(g2_matmul_many_isa((g2_isa)isa, &w, &y1, 1, x, n, 0, 2) == 0);
                    if (type == GEMMA2_TYPE_BF16) {
                        CHECK(memcmp(y, y1, (size_t)n * rows * 4) == 0, "%s BF16: the flag changed a float product",
                              g2_isa_name((g2_isa)isa));
                    } else {
                        double err_fine = 0, err_one = 0;
                        int bad = 0;
                        for (int t = 0; t < n; t++) {
                            consumed_activations((g2_isa)isa, type, x + t * cols, cols, xa, xe);
                            for (int64_t r = 0; r < rows; r++) {
                                const float *wr = m.deq + r * cols;
                                double truth = 0, mag = 0, qerr = 0;
                                for (int64_t c = 0; c < cols; c++) {
                                    truth += (double)wr[c] * x[t * cols + c];
                                    mag += fabs((double)wr[c] * x[t * cols + c]);
                                    qerr += fabs((double)wr[c]) * xe[c];
                                }
                                const double e = fabs(y[(size_t)t * rows + r] - truth);
                                err_fine += e;
                                err_one += fabs(y1[(size_t)t * rows + r] - truth);
                                if (e > 2e-5 * mag + qerr / 254 && bad++ < 3)
                                    fprintf(stderr, "  %s %s r16 %d n %d: t %d r %lld got %.9g true %.9g tol %.3g\n",
                                            g2_isa_name((g2_isa)isa), gemma2_type_name(type), r16, n, t, (long long)r,
                                            y[(size_t)t * rows + r], truth, 2e-5 * mag + qerr / 254);
                            }
                        }
                        CHECK(bad == 0 && err_fine * 150 < err_one, "%s %s r16 %d n %d: fine error %.3g, one term %.3g",
                              g2_isa_name((g2_isa)isa), gemma2_type_name(type), r16, n, err_fine, err_one);
                    }
                    free(x), free(y), free(y1), free(xa), free(xe);
                    free_matrix(&m);
                }
    }
}

/* AVX2's two-term prefill widens r16 Q8_0, Q4_K and Q6_K groups into r16 F32 groups (matmul.c,
 * widen_fine): their values must be g2_dequantize_row's, bit for bit (the products in both are
 * exact in fp32 but Q4_K's difference, rounded once in both). Random bytes: every scale, min
 * and quant value, Q6_K's scale -128 among them; column c of a group is 16 floats, rows 0-15. */
static void test_widen_groups(void) {
    if (!g2_isa_available(G2_ISA_AVX2)) {
        printf("# skip widen groups: no AVX2\n");
        return;
    }
    static const int types[] = {GEMMA2_TYPE_Q8_0, GEMMA2_TYPE_Q4_K, GEMMA2_TYPE_Q6_K};
    enum { ROWS = 32, COLS = 768 };
    float *wide = malloc(G2_R16 * COLS * 4);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const int type = types[ti];
        test_matrix m = make_matrix_random_bytes(type, ROWS, COLS, 17 + (uint64_t)type);
        CHECK(g2_tensor_repack_r16(&m.t, 1) == 0 && m.t.layout == G2_LAYOUT_R16);
        int bad = 0;
        for (int g = 0; g < ROWS; g += G2_R16) {
            const uint8_t *group = m.data + (size_t)g * m.t.row_bytes;
            if (type == GEMMA2_TYPE_Q8_0) g2_r16_widen_q8_0_group_avx2(COLS, group, (uint8_t *)wide);
            else if (type == GEMMA2_TYPE_Q4_K) g2_r16_widen_q4_k_group_avx2(COLS, group, (uint8_t *)wide);
            else g2_r16_widen_q6_k_group_avx2(COLS, group, (uint8_t *)wide);
            for (int c = 0; c < COLS; c++)
                for (int r = 0; r < G2_R16; r++) {
                    const float want = m.deq[(size_t)(g + r) * COLS + c], got = wide[c * G2_R16 + r];
                    if (memcmp(&want, &got, 4) != 0 && bad++ < 3)
                        fprintf(stderr, "  %s row %d col %d: %.9g, dequantized %.9g\n", gemma2_type_name(type), g + r, c, got, want);
                }
        }
        CHECK(bad == 0, "%s: %d widened values differ", gemma2_type_name(type), bad);
        free_matrix(&m);
    }
    free(wide);
}

/* The products hand out chunks of rows (~256 KiB in decode, one 512 KiB L2 block in prefill) and
 * let a thread that runs out take chunks from the end of another's share (matmul.c,
 * run_shared). Matrices of many chunks (plain rows: row counts that end in a partial tile), both
 * layouts, decode (1 token) and prefill (20 tokens: plain rows are packed per block), with and
 * without the two-term activations, and more threads than some matrices have chunks: the result
 * must equal the one-thread product bit for bit, whichever thread computed which chunk. */
static void test_shared_chunks(void) {
    static const int types[3] = {GEMMA2_TYPE_Q4_0, GEMMA2_TYPE_Q8_0, GEMMA2_TYPE_Q4_0};
    static const int64_t plain_rows[3] = {2100, 700, 77}, r16_rows[3] = {2096, 704, 80}; /* r16: groups of 16 */
    enum { NMAX = 20 };
    float *x = malloc(NMAX * 2304 * 4);
    random_fill(x, NMAX * 2304, 23, 1.0);
    for (int r16 = 0; r16 < 2; r16++) {
        const int64_t *rows = r16 ? r16_rows : plain_rows;
        test_matrix m[3];
        const g2_tensor *w[3];
        for (int i = 0; i < 3; i++) {
            m[i] = make_matrix(types[i], rows[i], 2304, 40 + (uint64_t)i);
            if (r16) CHECK(g2_tensor_repack_r16(&m[i].t, 1) == 0 && m[i].t.layout == G2_LAYOUT_R16);
            w[i] = &m[i].t;
        }
        for (int n = 1; n <= NMAX; n += NMAX - 1)
            for (unsigned flags = 0; flags <= G2_MATMUL_FINE_ACT; flags += G2_MATMUL_FINE_ACT) {
                float *y[3], *y1[3];
                for (int i = 0; i < 3; i++) {
                    y[i] = malloc((size_t)(n * rows[i]) * 4), y1[i] = malloc((size_t)(n * rows[i]) * 4);
                    CHECK(g2_matmul_many(&w[i], &y1[i], 1, x, n, flags, 1) == 0);
                }
                for (int threads = 2; threads <= 5; threads++)
                    for (int rep = 0; rep < (n == 1 ? 4 : 2); rep++) {
                        for (int i = 0; i < 3; i++) memset(y[i], 0xff, (size_t)(n * rows[i]) * 4);
                        CHECK(g2_matmul_many(w, y, 3, x, n, flags, threads) == 0);
                        for (int i = 0; i < 3; i++)
                            CHECK(memcmp(y[i], y1[i], (size_t)(n * rows[i]) * 4) == 0, "r16 %d n %d flags %u threads %d matrix %d",
                                  r16, n, flags, threads, i);
                        CHECK(g2_matmul_many(&w[0], &y[0], 1, x, n, flags, threads) == 0);
                        CHECK(memcmp(y[0], y1[0], (size_t)(n * rows[0]) * 4) == 0, "r16 %d n %d threads %d alone", r16, n, threads);
                    }
                for (int i = 0; i < 3; i++) free(y[i]), free(y1[i]);
            }
        for (int i = 0; i < 3; i++) free_matrix(&m[i]);
    }
    free(x);
}

/* GEMMA2_ISA forces a path: g2_matmul then gives bit-identical results to g2_matmul_isa */
static void test_isa_override(void) {
    test_matrix m = make_matrix(GEMMA2_TYPE_Q4_K, 9, 512, 3);
    float x[3 * 512], y1[27], y2[27];
    random_fill(x, 3 * 512, 4, 1.0);
    const char *old = getenv("GEMMA2_ISA");
    char *saved = old ? strdup(old) : NULL;
    for (int isa = G2_ISA_SCALAR; isa <= G2_ISA_AVX512; isa++) {
        if (!g2_isa_available((g2_isa)isa)) continue;
        setenv("GEMMA2_ISA", g2_isa_name((g2_isa)isa), 1);
        CHECK(g2_isa_active() == (g2_isa)isa);
        g2_matmul(&m.t, x, 3, y1, 2);
        g2_matmul_isa((g2_isa)isa, &m.t, x, 3, y2, 2);
        CHECK(memcmp(y1, y2, sizeof y1) == 0, "%s", g2_isa_name((g2_isa)isa));
    }
    setenv("GEMMA2_ISA", "no-such-isa", 1);
    CHECK(g2_isa_available(g2_isa_active()));
    if (saved) setenv("GEMMA2_ISA", saved, 1);
    else unsetenv("GEMMA2_ISA");
    free(saved);
    free_matrix(&m);
}

/* The vdpbf16ps path (the default on AVX512-BF16 CPUs, or GEMMA2_BF16_DOT=1; the other tests
 * run with GEMMA2_BF16_DOT=0, the exact products): activations rounded to bf16 (relative error
 * 2^-9 each), so the product is within 2^-8 * sum|w*x| of the exact one; and it is the product
 * with the rounded activations, to fp32 summation (3e-5 * sum|w*x|: 1152 pairs summed in fp32
 * lanes, measured below 1e-6). Plain rows (19: tiles with a remainder; 2304 columns, and 161 for
 * the decode row kernel's tail after its 128-wide step), r16 groups (48 rows) and r16e groups
 * (the same rows, and 162 columns: an odd count of column pairs, the decode kernel's tail),
 * decode (1 token) and prefill (6; 20 = one 16-token pass and a 4-token one). r16e gives r16's
 * bits (the same products in the same order, from other bytes). */
static void test_bf16_dot_option(void) {
    if (!g2_isa_available(G2_ISA_AVX512) || !__builtin_cpu_supports("avx512bf16")) {
        printf("# skip bf16 dot: no AVX512-BF16\n");
        return;
    }
    enum { NMAX = 20, CMAX = 2304 };
    float *x = malloc(NMAX * CMAX * 4), *y = malloc(NMAX * 48 * 4);
    random_fill(x, NMAX * CMAX, 10, 1.0);
    float *y16 = malloc(NMAX * 48 * 4);
    for (int v = 0; v < 5; v++) {
        const int layout = v >= 2, rows = layout ? 48 : 19, C = v == 1 ? 161 : v == 4 ? 162 : CMAX;
        test_matrix m = make_matrix(GEMMA2_TYPE_BF16, rows, C, 8);
        g2_tensor t16 = m.t; /* v 3, 4: r16e, and t16 the same values in r16 */
        if (v >= 3) {
            t16.data = malloc(m.t.row_bytes * (size_t)rows);
            memcpy((void *)t16.data, m.data, m.t.row_bytes * (size_t)rows);
        }
        if (layout) { /* r16e on AVX-512 where its products are vdpbf16ps's: the default */
            setenv("GEMMA2_BF16_CODES", v >= 3 ? "1" : "0", 1);
            unsetenv("GEMMA2_BF16_DOT");
            CHECK(g2_tensor_repack_r16(&m.t, 2) == 0 && m.t.layout == (v >= 3 ? G2_LAYOUT_R16E : G2_LAYOUT_R16));
            setenv("GEMMA2_BF16_DOT", "0", 1); /* r16e has AVX-512 kernels for fp32 activations too */
            if (v >= 3) CHECK(g2_r16e_wanted(), "GEMMA2_BF16_DOT=0 must keep r16e on AVX-512");
            unsetenv("GEMMA2_BF16_CODES");
        }
        if (v >= 3) {
            setenv("GEMMA2_BF16_CODES", "0", 1);
            CHECK(g2_tensor_repack_r16(&t16, 2) == 0 && t16.layout == G2_LAYOUT_R16);
            unsetenv("GEMMA2_BF16_CODES");
        }
        static const int ns[] = {1, 6, 20};
        for (int k = 0; k < 6; k++) {
            const int N = ns[k % 3];
            if (k < 3) unsetenv("GEMMA2_BF16_DOT"); /* the default */
            else setenv("GEMMA2_BF16_DOT", "1", 1);
            g2_matmul_isa(G2_ISA_AVX512, &m.t, x, N, y, 2);
            if (v >= 3) {
                g2_matmul_isa(G2_ISA_AVX512, &t16, x, N, y16, 2);
                CHECK(memcmp(y, y16, (size_t)N * rows * 4) == 0, "r16e, %d columns, %d tokens: not r16's bits", C, N);
            }
            setenv("GEMMA2_BF16_DOT", "0", 1);
            if (v >= 3 && k < 3) { /* fp32 activations: r16e's AVX-512 kernels give r16's bits too */
                float *ye = malloc(NMAX * 48 * 4);
                g2_matmul_isa(G2_ISA_AVX512, &m.t, x, N, ye, 2);
                g2_matmul_isa(G2_ISA_AVX512, &t16, x, N, y16, 2);
                CHECK(memcmp(ye, y16, (size_t)N * rows * 4) == 0, "r16e, %d columns, %d tokens, fp32 activations: not r16's bits",
                      C, N);
                free(ye);
            }
            int bad = 0, bad_rounded = 0;
            for (int t = 0; t < N; t++)
                for (int r = 0; r < rows; r++) {
                    double e = 0, er = 0, mag = 0;
                    for (int c = 0; c < C; c++) {
                        const double w = m.deq[r * C + c], xv = x[t * C + c];
                        e += w * xv;
                        er += w * g2_bf16_to_f32(g2_f32_to_bf16(x[t * C + c]));
                        mag += fabs(w * xv);
                    }
                    if (fabs(y[t * rows + r] - e) > mag / 256) bad++;
                    if (fabs(y[t * rows + r] - er) > 3e-5 * mag) bad_rounded++;
                }
            CHECK(bad == 0 && bad_rounded == 0, "%s, %d columns, %s, %d tokens: %d off exact, %d off the rounded product",
                  v >= 3 ? "r16e" : layout ? "r16" : "rows", C, k < 3 ? "default" : "GEMMA2_BF16_DOT=1", N, bad, bad_rounded);
        }
        if (v >= 3) free((void *)t16.data);
        free_matrix(&m);
    }
    free(x);
    free(y);
    free(y16);
}

int main(void) {
    /* exact BF16 products (fp32 activations) for the float64 comparisons; test_bf16_dot_option
     * covers the default vdpbf16ps path */
    setenv("GEMMA2_BF16_DOT", "0", 1);
    RUN(test_quantizers_match_ggml);
    RUN(test_q8_0_known);
    RUN(test_round_trips);
    RUN(test_degenerate_rows);
    RUN(test_row_access);
    RUN(test_matmul_all_paths);
    RUN(test_float_tails);
    RUN(test_q32_block_tails);
    RUN(test_row_decode_calls);
    RUN(test_random_blocks);
    RUN(test_r16_layout);
    RUN(test_r16e_layout);
    RUN(test_r16e_from_f16);
    RUN(test_r16e_streamed);
    RUN(test_matmul_many);
    RUN(test_fine_activations);
    RUN(test_widen_groups);
    RUN(test_shared_chunks);
    RUN(test_isa_override);
    RUN(test_bf16_dot_option);
    HARNESS_END();
}
