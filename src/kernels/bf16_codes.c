/* bf16_codes.c - the r16e layout (repack.h): BF16 groups of 16 rows stored in 12 bits a weight,
 * losslessly, for decode on AVX2 and AVX-512. Compression, escape checks and unpacking in
 * portable C; the AVX2 decode and widening kernels are in r16_avx2.c, AVX-512's decode kernel
 * (bf16 activations) in r16_avx512.c.
 *
 * Why: decode reads every weight once per token and is bound by memory bandwidth. A bf16 is a
 * sign, an 8-bit exponent and a 7-bit mantissa, and the weights of one matrix use few exponents:
 * in a group of 16 rows the 15 most frequent exponents cover all but about 1e-4 of the weights
 * (Gaussian weights; trained ones concentrate more). So each weight is stored as one byte of
 * sign and mantissa plus a 4-bit code for its exponent: 0.75 of the bytes, and the values are
 * the same bits, so the products are bit-identical to the r16 BF16 kernel's.
 *
 * A group (16 rows x cols, cols even), G2_R16E_GROUP_BYTES(cols) bytes:
 *   hi[16], lo[16]   per code c < 15: the exponent e as the bytes it sets in the fp32
 *                    (hi = e >> 1 in byte 3, lo = (e & 1) << 7 in byte 2); code 15: 0 (escape)
 *   per column pair p (48 bytes): sm[32], the sign (bit 7) and mantissa (bits 0-6) of 32
 *                    weights; x[16], their codes, weight k's in x[k & 15], low nibble for
 *                    k < 16, high nibble for k >= 16
 *   esc[G2_R16E_ESC]  the exponents of code-15 weights, in stream order (p, then k)
 * Weight k of pair p is row 8h + i, column 2p + o, with k = 4(2h + o) + (i & 3) + 16 (i >> 2):
 * the order in which AVX2's in-lane byte and word unpacks (vpunpck{l,h}bw then {l,h}wd against
 * zero) turn the 32 bytes into the 4 fp32 vectors "column 2p, rows 0-7", "column 2p + 1, rows
 * 0-7", then rows 8-15 of each. A tensor one of whose groups needs more than G2_R16E_ESC
 * escapes stays in the r16 layout. */
#include <stdlib.h>
#include <string.h>

#include "gemma2.h"
#include "kernels/repack.h"

/* Weight k's row and column parity within a pair (the inverse of the order above). */
static int k_row(int k) { return 8 * (((k >> 2) & 3) >> 1) + (k & 3) + 4 * (k >> 4); }
static int k_odd(int k) { return (k >> 2) & 1; }

/* The 15 most frequent exponents of the group (rows at src, row_bytes apart) into the code table
 * code[256] (15 for the rest) and the header, counting every `step`-th weight of each row (step
 * 1: all of them; returns the escapes the group needs then). */
static int64_t choose_codes(int64_t cols, const uint8_t *src, size_t row_bytes, int step, uint8_t code[256], uint8_t *hdr) {
    /* four histograms, summed at the end: one weight's count does not wait on the previous
     * weight's (most share a few exponents) */
    uint32_t h4[4][256] = {{0}};
    int64_t hist[256], counted = 0;
    for (int r = 0; r < G2_R16; r++) {
        const uint8_t *row = src + (size_t)r * row_bytes;
        int64_t c = r % step; /* other rows, other columns */
        for (; c + 3 * step < cols; c += 4 * step, counted += 4)
            for (int j = 0; j < 4; j++) {
                uint16_t v;
                memcpy(&v, row + 2 * (c + j * step), 2);
                h4[j][(v >> 7) & 0xFF]++;
            }
        for (; c < cols; c += step, counted++) {
            uint16_t v;
            memcpy(&v, row + 2 * c, 2);
            h4[0][(v >> 7) & 0xFF]++;
        }
    }
    for (int e = 0; e < 256; e++) hist[e] = (int64_t)h4[0][e] + h4[1][e] + h4[2][e] + h4[3][e];
    memset(code, 15, 256);
    memset(hdr, 0, 32);
    for (int c = 0; c < 15; c++) { /* the most frequent exponent left; ties to the lower one */
        int best = -1;
        for (int e = 0; e < 256; e++)
            if (code[e] == 15 && hist[e] > 0 && (best < 0 || hist[e] > hist[best])) best = e;
        if (best < 0) break;
        code[best] = (uint8_t)c;
        hdr[c] = (uint8_t)(best >> 1);
        hdr[16 + c] = (uint8_t)((best & 1) << 7);
        counted -= hist[best];
    }
    return counted;
}

/* The pairs of the group with the codes chosen; 0, or 1 when the escapes do not fit. */
static int pack_pairs(int64_t cols, const uint8_t *src, size_t row_bytes, const uint8_t code[256], uint8_t *dst) {
    uint8_t *esc = dst + G2_R16E_GROUP_BYTES(cols) - G2_R16E_ESC, *const esc_end = esc + G2_R16E_ESC;
    memset(esc, 0, G2_R16E_ESC);
    /* One pair of columns at a time, all 16 rows. By the order above, the 8 bytes k = 8j..8j+7
     * are rows 4q..4q+3 (q = 0, 2, 1, 3 for j = 0..3), row 4q + i's column 2p at byte i and
     * column 2p + 1 at byte i + 4: each 8-byte word is built in a register (byte stores read back
     * as words would wait on store forwarding), and so are the codes, as 4-bit fields. */
    for (int64_t p = 0; p < cols / 2; p++) {
        uint64_t sm[4] = {0}, cd[4] = {0};
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const int q = (j & 1) << 1 | j >> 1;
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                uint32_t w;
                memcpy(&w, src + (size_t)(4 * q + i) * row_bytes + 4 * (size_t)p, 4); /* 2p low, 2p + 1 high */
                sm[j] |= (uint64_t)(((w >> 8) & 0x80) | (w & 0x7F)) << 8 * i;
                sm[j] |= (uint64_t)(((w >> 24) & 0x80) | ((w >> 16) & 0x7F)) << 8 * (i + 4);
                cd[j] |= (uint64_t)code[(w >> 7) & 0xFF] << 8 * i | (uint64_t)code[(w >> 23) & 0xFF] << 8 * (i + 4);
            }
        }
        uint8_t *out = dst + 32 + (size_t)p * 48;
        memcpy(out, sm, 32);
        const uint64_t x0 = cd[0] | cd[2] << 4, x1 = cd[1] | cd[3] << 4; /* x[k] = code k | code k + 16 << 4 */
        memcpy(out + 32, &x0, 8);
        memcpy(out + 40, &x1, 8);
        const uint64_t ones = 0x0101010101010101u, fives = 0x1010101010101010u; /* codes < 16: 15 + 1 sets bit 4 */
        if (!(((cd[0] + ones) | (cd[1] + ones) | (cd[2] + ones) | (cd[3] + ones)) & fives)) continue;
        for (int k = 0; k < 32; k++)
            if ((cd[k >> 3] >> 8 * (k & 7) & 0xFF) == 15) { /* in stream order */
                if (esc == esc_end) return 1;
                uint16_t v;
                memcpy(&v, src + (size_t)k_row(k) * row_bytes + 2 * (size_t)(2 * p + k_odd(k)), 2);
                *esc++ = (uint8_t)(v >> 7);
            }
    }
    return 0;
}

/* The codes come from a histogram of one weight in 8 (counting all of them took as long as the
 * rest of the packing); when the escapes of those codes do not fit, from every weight: the
 * fewest escapes there can be. */
int g2_r16e_pack_group(int64_t cols, const uint8_t *src, size_t row_bytes, uint8_t *dst) {
    uint8_t code[256], hdr[32];
    choose_codes(cols, src, row_bytes, 8, code, hdr);
    if (pack_pairs(cols, src, row_bytes, code, dst)) {
        if (choose_codes(cols, src, row_bytes, 1, code, hdr) > G2_R16E_ESC) return 1;
        pack_pairs(cols, src, row_bytes, code, dst); /* fits: the count was exact */
    }
    memcpy(dst, hdr, 32);
    return 0;
}

void g2_r16e_unpack_group(int64_t cols, const uint8_t *src, uint8_t *dst, size_t row_bytes) {
    const uint8_t *esc = src + G2_R16E_GROUP_BYTES(cols) - G2_R16E_ESC;
    for (int64_t p = 0; p < cols / 2; p++) {
        const uint8_t *sm = src + 32 + (size_t)p * 48, *x = sm + 32;
        for (int k = 0; k < 32; k++) {
            const int c = k < 16 ? x[k] & 15 : x[k - 16] >> 4;
            const unsigned e = c == 15 ? *esc++ : (unsigned)(src[c] << 1 | src[16 + c] >> 7);
            const uint16_t v = (uint16_t)((sm[k] & 0x80) << 8 | e << 7 | (sm[k] & 0x7F));
            memcpy(dst + (size_t)k_row(k) * row_bytes + 2 * (size_t)(2 * p + k_odd(k)), &v, 2);
        }
    }
}
