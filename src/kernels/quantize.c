/* quantize.c - fp32 -> GGUF block types (ggml's reference quantizers) and back.
 *
 * Written to give byte-identical output to ggml's quantize_row_*_ref: the same algorithm and
 * the same order of floating-point operations (this file must not be built with
 * -ffast-math; -std=c17 keeps FP contraction off, as in ggml's generic build). */
#include "kernels/quantize.h"

#include <math.h>
#include <string.h>

#include "gemma2.h"
#include "kernels/types.h"
#include "util/half.h"

#define G2_MAX(a, b) ((a) > (b) ? (a) : (b))
#define G2_MIN(a, b) ((a) < (b) ? (a) : (b))

/* Round to nearest (ties to even) by adding 1.5 * 2^23: the mantissa then holds the integer.
 * ggml rounds this way in the k-quant searches; roundf would differ on ties. Valid for
 * |v| < 2^22. */
static inline int nearest_int(float v) {
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static inline void put_f16(uint8_t *p, float f) {
    uint16_t h = g2_f32_to_f16(f);
    memcpy(p, &h, 2);
}

static inline float get_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return g2_f16_to_f32(h);
}

/* ---- Q8_0: d = amax / 127, q = round(x / d) ---------------------------------------------- */

void g2_quantize_row_q8_0(const float *x, void *out, int64_t n) {
    uint8_t *b = out;
    for (int64_t i = 0; i < n; i += 32, b += 34) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = G2_MAX(amax, fabsf(x[i + j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        put_f16(b, d);
        for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)roundf(x[i + j] * id);
    }
}

/* ---- Q4_0: the element of largest magnitude maps to -8 exactly ---------------------------- */

void g2_quantize_row_q4_0(const float *x, void *out, int64_t n) {
    uint8_t *b = out;
    for (int64_t i = 0; i < n; i += 32, b += 18) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++) {
            const float v = x[i + j];
            if (amax < fabsf(v)) { amax = fabsf(v); max = v; }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        put_f16(b, d);
        for (int j = 0; j < 16; j++) {
            /* truncation of x/d + 8.5 = rounding half up of x/d + 8, as ggml */
            const uint8_t lo = (uint8_t)G2_MIN(15, (int8_t)(x[i + j] * id + 8.5f));
            const uint8_t hi = (uint8_t)G2_MIN(15, (int8_t)(x[i + 16 + j] * id + 8.5f));
            b[2 + j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

/* ---- Q4_K -------------------------------------------------------------------------------- */

/* Scale and min of one 32-element sub-block, x ~ scale * L + min with L in 0..nmax, by a
 * weighted least-squares search over nstep+1 candidate scales (ggml's make_qkx2_quants with
 * use_mad = false). Returns the scale; *neg_min receives -min (>= 0). */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min,
                           uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *neg_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)G2_MAX(0, G2_MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = G2_MAX(0, G2_MIN(nmax, l));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                cur_error += w[i] * (diff * diff);
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *neg_min = -min;
    return scale;
}

/* Sub-block j's 6-bit scale and min from the 12 packed bytes: j < 4 in the low 6 bits of bytes
 * j and j+4; j >= 4 split between a nibble of byte j+4 and the top 2 bits of bytes j-4 / j. */
static inline void q4k_scale_min(int j, const uint8_t *s, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

void g2_quantize_row_q4_k(const float *x, void *out, int64_t n) {
    uint8_t *b = out;
    for (int64_t i = 0; i < n; i += 256, b += 144, x += 256) {
        uint8_t L[256], Laux[32];
        float w[32], mins[8], scales[8];
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; j++) {
            /* weights favour large elements (ggml: rms of the sub-block + |x|) */
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = fit_scale_min(32, 15, x + 32 * j, w, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        uint8_t *s = b + 4;
        memset(s, 0, 12);
        for (int j = 0; j < 8; j++) {
            uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
            ls = G2_MIN(63, ls);
            lm = G2_MIN(63, lm);
            if (j < 4) {
                s[j] = ls;
                s[j + 4] = lm;
            } else {
                s[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                s[j - 4] |= (uint8_t)((ls >> 4) << 6);
                s[j] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        put_f16(b, max_scale / 63.f);
        put_f16(b + 2, max_min / 63.f);
        /* requantize against the rounded scales actually stored */
        const float dd = get_f16(b), dm_ = get_f16(b + 2);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            q4k_scale_min(j, s, &sc, &m);
            const float d = dd * sc;
            if (!d) continue;
            const float dm = dm_ * m;
            for (int ii = 0; ii < 32; ii++) {
                int l = nearest_int((x[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (uint8_t)G2_MAX(0, G2_MIN(15, l));
            }
        }
        uint8_t *q = b + 16;
        for (int j = 0; j < 256; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

/* ---- Q6_K -------------------------------------------------------------------------------- */

/* Symmetric scale of a 16-element group, L in 0..2*nmax-1 (offset nmax), weighted by x^2, with
 * a search over 18 scales around the first guess (ggml's make_qx_quants, rmse_type 1). */
static float fit_scale_sym(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < 1e-15f) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = G2_MAX(-nmax, G2_MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = G2_MAX(-nmax, G2_MIN(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + G2_MAX(-nmax, G2_MIN(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

void g2_quantize_row_q6_k(const float *x, void *out, int64_t n) {
    uint8_t *b = out;
    for (int64_t i = 0; i < n; i += 256, b += 210, x += 256) {
        uint8_t *ql = b, *qh = b + 128;
        int8_t *scs = (int8_t *)(b + 192);
        int8_t L[256];
        float scales[16];
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ib++) {
            scales[ib] = fit_scale_sym(16, 32, x + 16 * ib, L + 16 * ib);
            if (fabsf(scales[ib]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < 1e-15f) {
            memset(b, 0, 210);
            continue;
        }
        float iscale = -128.f / max_scale;
        put_f16(b + 208, 1 / iscale);
        for (int ib = 0; ib < 16; ib++) scs[ib] = (int8_t)G2_MIN(127, nearest_int(iscale * scales[ib]));
        const float dd = get_f16(b + 208);
        for (int j = 0; j < 16; j++) {
            float d = dd * scs[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(G2_MAX(-32, G2_MIN(31, l)) + 32);
            }
        }
        for (int j = 0; j < 256; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                  ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

/* ---- 16-bit floats ----------------------------------------------------------------------- */

void g2_quantize_row_bf16(const float *x, void *out, int64_t n) {
    uint8_t *o = out;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = g2_f32_to_bf16(x[i]);
        memcpy(o + 2 * i, &h, 2);
    }
}

void g2_quantize_row_f16(const float *x, void *out, int64_t n) {
    uint8_t *o = out;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = g2_f32_to_f16(x[i]);
        memcpy(o + 2 * i, &h, 2);
    }
}

size_t g2_quantize_row(int type, const float *x, void *out, int64_t n) {
    size_t rb = g2_type_row_bytes(type, n);
    if (!rb) return 0;
    switch (type) {
    case GEMMA2_TYPE_F32: memcpy(out, x, (size_t)n * 4); break;
    case GEMMA2_TYPE_F16: g2_quantize_row_f16(x, out, n); break;
    case GEMMA2_TYPE_BF16: g2_quantize_row_bf16(x, out, n); break;
    case GEMMA2_TYPE_Q8_0: g2_quantize_row_q8_0(x, out, n); break;
    case GEMMA2_TYPE_Q4_0: g2_quantize_row_q4_0(x, out, n); break;
    case GEMMA2_TYPE_Q4_K: g2_quantize_row_q4_k(x, out, n); break;
    case GEMMA2_TYPE_Q6_K: g2_quantize_row_q6_k(x, out, n); break;
    default: return 0;
    }
    return rb;
}

/* ---- dequantization ---------------------------------------------------------------------- */

void g2_dequantize_row(int type, const void *row, float *out, int64_t n) {
    const uint8_t *b = row;
    switch (type) {
    case GEMMA2_TYPE_F32: memcpy(out, row, (size_t)n * 4); break;
    case GEMMA2_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, b + 2 * i, 2);
            out[i] = g2_bf16_to_f32(h);
        }
        break;
    case GEMMA2_TYPE_F16:
        for (int64_t i = 0; i < n; i++) out[i] = get_f16(b + 2 * i);
        break;
    case GEMMA2_TYPE_Q8_0:
        for (int64_t i = 0; i < n; i += 32, b += 34) {
            const float d = get_f16(b);
            for (int j = 0; j < 32; j++) out[i + j] = d * (float)(int8_t)b[2 + j];
        }
        break;
    case GEMMA2_TYPE_Q4_0:
        for (int64_t i = 0; i < n; i += 32, b += 18) {
            const float d = get_f16(b);
            for (int j = 0; j < 16; j++) {
                out[i + j] = (float)((b[2 + j] & 0xF) - 8) * d;
                out[i + j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
            }
        }
        break;
    case GEMMA2_TYPE_Q4_K:
        for (int64_t i = 0; i < n; i += 256, b += 144) {
            const float d = get_f16(b), dmin = get_f16(b + 2);
            const uint8_t *q = b + 16;
            float *y = out + i;
            for (int j = 0; j < 8; j += 2, q += 32) {
                int sc, m;
                q4k_scale_min(j, b + 4, &sc, &m);
                const float d1 = d * sc, m1 = dmin * m;
                q4k_scale_min(j + 1, b + 4, &sc, &m);
                const float d2 = d * sc, m2 = dmin * m;
                for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
                for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
            }
        }
        break;
    case GEMMA2_TYPE_Q6_K:
        for (int64_t i = 0; i < n; i += 256, b += 210) {
            const float d = get_f16(b + 208);
            const uint8_t *ql = b, *qh = b + 128;
            const int8_t *sc = (const int8_t *)(b + 192);
            float *y = out + i;
            for (int h = 0; h < 2; h++, y += 128, ql += 64, qh += 32, sc += 8) {
                for (int l = 0; l < 32; l++) {
                    const int is = l / 16;
                    const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * sc[is] * q1;
                    y[l + 32] = d * sc[is + 2] * q2;
                    y[l + 64] = d * sc[is + 4] * q3;
                    y[l + 96] = d * sc[is + 6] * q4;
                }
            }
        }
        break;
    default: memset(out, 0, (size_t)n * 4); break; /* unreachable: callers check the type */
    }
}
