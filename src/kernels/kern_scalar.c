/* kern_scalar.c - portable tile kernels for every type: the reference the SIMD kernels are
 * tested against, and the path on CPUs without AVX2. They use the same activation formats as
 * the SIMD kernels, so all paths compute the same integer sums. */
#include <string.h>

#include "gemma2.h"
#include "kernels/kernels_impl.h"
#include "util/half.h"

static inline float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return g2_f16_to_f32(h);
}
static inline float bf16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return g2_bf16_to_f32(h);
}

/* Eight partial sums: independent dependency chains (faster, and a smaller rounding error than
 * one running sum over thousands of terms). */
#define DOT8(LOAD)                                                        \
    float s[8] = {0};                                                     \
    int64_t i = 0;                                                        \
    for (; i + 8 <= n; i += 8)                                            \
        for (int k = 0; k < 8; k++) s[k] += LOAD(i + k) * x[i + k];       \
    for (; i < n; i++) s[0] += LOAD(i) * x[i];                            \
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));

static float dot_f32(const uint8_t *row, const float *x, int64_t n) {
    const float *w = (const float *)row;
#define LD(j) w[j]
    DOT8(LD)
#undef LD
}
static float dot_bf16(const uint8_t *row, const float *x, int64_t n) {
#define LD(j) bf16_at(row + 2 * (j))
    DOT8(LD)
#undef LD
}
static float dot_f16(const uint8_t *row, const float *x, int64_t n) {
#define LD(j) f16_at(row + 2 * (j))
    DOT8(LD)
#undef LD
}

static float dot_q8_0(const uint8_t *b, const g2_act *a, int t) {
    const int8_t *q = g2_act_q(a, t);
    const float *d = g2_act_d(a, t);
    float s = 0;
    for (int64_t blk = 0; blk < a->cols / 32; blk++, b += 34, q += 32) {
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += (int8_t)b[2 + j] * q[j];
        s += f16_at(b) * d[blk] * (float)isum;
    }
    return s;
}

static float dot_q4_0(const uint8_t *b, const g2_act *a, int t) {
    const int8_t *q = g2_act_q(a, t);
    const float *d = g2_act_d(a, t);
    float s = 0;
    for (int64_t blk = 0; blk < a->cols / 32; blk++, b += 18, q += 32) {
        int isum = 0;
        for (int j = 0; j < 16; j++) isum += ((b[2 + j] & 0xF) - 8) * q[j] + ((b[2 + j] >> 4) - 8) * q[j + 16];
        s += f16_at(b) * d[blk] * (float)isum;
    }
    return s;
}

/* Q4_K: w = d*sc[j]*q - dmin*m[j]; with one activation scale per 256 the sub-block scales and
 * mins apply to integer sums: dot = da * (d * sum_j sc[j]*qdot_j - dmin * sum_j m[j]*asum_j). */
static float dot_q4_k(const uint8_t *b, const g2_act *a, int t) {
    const int8_t *q = g2_act_q(a, t);
    const float *da = g2_act_d(a, t);
    const int16_t *bs = g2_act_s(a, t);
    float s = 0;
    for (int64_t sb = 0; sb < a->cols / 256; sb++, b += 144, q += 256, bs += 16) {
        const uint8_t *sc6 = b + 4, *qs = b + 16;
        int isum = 0, msum = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            if (j < 4) {
                sc = sc6[j] & 63;
                m = sc6[j + 4] & 63;
            } else {
                sc = (sc6[j + 4] & 0xF) | ((sc6[j - 4] >> 6) << 4);
                m = (sc6[j + 4] >> 4) | ((sc6[j] >> 6) << 4);
            }
            const uint8_t *p = qs + 32 * (j / 2);
            const int shift = 4 * (j & 1);
            int qd = 0;
            for (int l = 0; l < 32; l++) qd += ((p[l] >> shift) & 0xF) * q[32 * j + l];
            isum += sc * qd;
            msum += m * (bs[2 * j] + bs[2 * j + 1]);
        }
        s += da[sb] * (f16_at(b) * (float)isum - f16_at(b + 2) * (float)msum);
    }
    return s;
}

/* Q6_K: w = d*sc[k]*(q - 32) per 16 elements: dot = da * d * sum_k sc[k]*(qdot_k - 32*asum_k). */
static float dot_q6_k(const uint8_t *b, const g2_act *a, int t) {
    const int8_t *q = g2_act_q(a, t);
    const float *da = g2_act_d(a, t);
    const int16_t *bs = g2_act_s(a, t);
    float s = 0;
    for (int64_t sb = 0; sb < a->cols / 256; sb++, b += 210, q += 256, bs += 16) {
        const int8_t *sc = (const int8_t *)(b + 192);
        int isum = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            int qd[8] = {0}; /* per 16-element group of this half */
            for (int l = 0; l < 32; l++) {
                const int q1 = (ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4);
                const int q2 = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
                const int q3 = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                const int q4 = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                const int8_t *x = q + 128 * h;
                qd[0 + l / 16] += q1 * x[l];
                qd[2 + l / 16] += q2 * x[l + 32];
                qd[4 + l / 16] += q3 * x[l + 64];
                qd[6 + l / 16] += q4 * x[l + 96];
            }
            for (int g = 0; g < 8; g++) isum += sc[8 * h + g] * (qd[g] - 32 * bs[8 * h + g]);
        }
        s += da[sb] * (f16_at(b + 208) * (float)isum);
    }
    return s;
}

#define TILE_F(NAME, DOT)                                                                              \
    static void NAME(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) { \
        for (int t = 0; t < nt; t++)                                                                   \
            for (int r = 0; r < nr; r++) y[(size_t)t * ldy + r] = DOT(w + (size_t)r * rb, g2_act_f32(a, t0 + t), a->cols); \
    }
#define TILE_Q(NAME, DOT)                                                                              \
    static void NAME(const uint8_t *w, size_t rb, int nr, const g2_act *a, int t0, int nt, float *y, size_t ldy) { \
        for (int t = 0; t < nt; t++)                                                                   \
            for (int r = 0; r < nr; r++) y[(size_t)t * ldy + r] = DOT(w + (size_t)r * rb, a, t0 + t);   \
    }
TILE_F(tile_f32, dot_f32)
TILE_F(tile_bf16, dot_bf16)
TILE_F(tile_f16, dot_f16)
TILE_Q(tile_q8_0, dot_q8_0)
TILE_Q(tile_q4_0, dot_q4_0)
TILE_Q(tile_q4_k, dot_q4_k)
TILE_Q(tile_q6_k, dot_q6_k)

int g2_kernel_scalar(int type, g2_kernel *k) {
    k->mr = k->decode_rows = 4;
    k->nt = 4;
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
