/* dot_scalar.c - portable dot products and row conversion for each weight type: the reference
 * that every SIMD variant is tested against. */
#include "kernels/kernels_impl.h"

#include <string.h>

#include "gemma2.h"
#include "util/half.h"

float g2_dot_f32_scalar(const void *row, const float *x, int64_t n) {
    const float *w = row;
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += w[i] * x[i];
    return s;
}

float g2_dot_bf16_scalar(const void *row, const float *x, int64_t n) {
    const uint16_t *w = row;
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += g2_bf16_to_f32(w[i]) * x[i];
    return s;
}

float g2_dot_f16_scalar(const void *row, const float *x, int64_t n) {
    const uint16_t *w = row;
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += g2_f16_to_f32(w[i]) * x[i];
    return s;
}

float g2_dot_q8_0_scalar(const void *row, const float *x, int64_t n) {
    const uint8_t *b = row;
    float s = 0;
    for (int64_t i = 0; i < n; i += 32, b += 34) {
        uint16_t dh;
        memcpy(&dh, b, 2);
        const int8_t *q = (const int8_t *)(b + 2);
        float bs = 0;
        for (int j = 0; j < 32; j++) bs += (float)q[j] * x[i + j];
        s += g2_f16_to_f32(dh) * bs;
    }
    return s;
}

void g2_row_to_f32(int type, const void *row, float *out, int64_t n) {
    switch (type) {
    case GEMMA2_TYPE_F32: memcpy(out, row, (size_t)n * 4); break;
    case GEMMA2_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) out[i] = g2_bf16_to_f32(((const uint16_t *)row)[i]);
        break;
    case GEMMA2_TYPE_F16:
        for (int64_t i = 0; i < n; i++) out[i] = g2_f16_to_f32(((const uint16_t *)row)[i]);
        break;
    case GEMMA2_TYPE_Q8_0: {
        const uint8_t *b = row;
        for (int64_t i = 0; i < n; i += 32, b += 34) {
            uint16_t dh;
            memcpy(&dh, b, 2);
            float d = g2_f16_to_f32(dh);
            for (int j = 0; j < 32; j++) out[i + j] = d * (float)((const int8_t *)(b + 2))[j];
        }
        break;
    }
    default: memset(out, 0, (size_t)n * 4); break; /* unreachable: the loader rejects other types */
    }
}
