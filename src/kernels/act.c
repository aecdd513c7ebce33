/* act.c - fp32 activations to the formats the kernels consume (see kernels_impl.h). */
#include <math.h>
#include <string.h>

#include "kernels/kernels_impl.h"
#include "util/half.h"

static size_t align64(size_t v) { return (v + 63) & ~(size_t)63; }

void g2_act_layout(g2_act_kind kind, int64_t cols, g2_act *a) {
    a->cols = cols;
    a->off_d = a->off_s = 0;
    switch (kind) {
    case G2_ACT_F32: a->stride = (size_t)cols * 4; break;
    case G2_ACT_BF16: a->stride = align64((size_t)cols * 2); break;
    case G2_ACT_Q8_32:
        a->off_d = align64((size_t)cols);
        a->off_s = align64(a->off_d + (size_t)(cols / 32) * 4);
        a->stride = align64(a->off_s + (size_t)(cols / 32) * 2);
        break;
    case G2_ACT_Q8_256:
        a->off_d = align64((size_t)cols);
        a->off_s = align64(a->off_d + (size_t)(cols / 256) * 4);
        a->stride = align64(a->off_s + (size_t)(cols / 16) * 2);
        break;
    }
}

/* Symmetric int8 of a block: d = amax / 127, q = round(x / d) in -127..127 (never -128, so that
 * the sign tricks of the SIMD kernels cannot overflow). Rounding to nearest even by adding
 * 1.5 * 2^23 (|x / d| <= 127): plain fp32 arithmetic that the compiler vectorizes, where lrintf
 * and fmaxf were library calls costing ~10 us per 2304-element token: a decode step converts
 * activations ~200 times. */
static float q8_block(const float *x, int n, int8_t *q) {
    float amax = 0;
    for (int j = 0; j < n; j++) {
        const float v = fabsf(x[j]);
        amax = v > amax ? v : amax;
    }
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    for (int j = 0; j < n; j++) {
        const float t = x[j] * id + 12582912.0f;
        int32_t i;
        memcpy(&i, &t, 4);
        q[j] = (int8_t)((i & 0x007fffff) - 0x00400000);
    }
    return d;
}

/* Q8 kinds, per block of `bs` (32 or 256) with sums of each `gs` (32 or 16). With `prev` (a record
 * of the same token), quantizes the residual x - dequantized(prev) instead of x. */
static void convert_q8(const g2_act *a, int bs, int gs, const float *x, const uint8_t *prev, uint8_t *dst) {
    int8_t *q = (int8_t *)dst;
    float *d = (float *)(dst + a->off_d);
    int16_t *s = (int16_t *)(dst + a->off_s);
    float r[256];
    for (int64_t b = 0; b < a->cols / bs; b++) {
        const float *xb = x + bs * b;
        if (prev) {
            const int8_t *pq = (const int8_t *)prev + bs * b;
            const float pd = ((const float *)(prev + a->off_d))[b];
            for (int j = 0; j < bs; j++) r[j] = xb[j] - pd * (float)pq[j];
            xb = r;
        }
        d[b] = q8_block(xb, bs, q + bs * b);
    }
    for (int64_t g = 0; g < a->cols / gs; g++) {
        int sum = 0;
        for (int j = 0; j < gs; j++) sum += q[gs * g + j];
        s[g] = (int16_t)sum;
    }
}

void g2_act_convert(g2_act_kind kind, const g2_act *a, const float *x, uint8_t *dst) {
    const int64_t cols = a->cols;
    switch (kind) {
    case G2_ACT_F32: memcpy(dst, x, (size_t)cols * 4); break;
    case G2_ACT_BF16:
        for (int64_t i = 0; i < cols; i++) {
            uint16_t h = g2_f32_to_bf16(x[i]);
            memcpy(dst + 2 * i, &h, 2);
        }
        break;
    case G2_ACT_Q8_32: convert_q8(a, 32, 32, x, NULL, dst); break;
    case G2_ACT_Q8_256: convert_q8(a, 256, 16, x, NULL, dst); break;
    }
}

void g2_act_convert_residual(g2_act_kind kind, const g2_act *a, const float *x, const uint8_t *prev, uint8_t *dst) {
    if (kind == G2_ACT_Q8_32) convert_q8(a, 32, 32, x, prev, dst);
    else if (kind == G2_ACT_Q8_256) convert_q8(a, 256, 16, x, prev, dst);
}
