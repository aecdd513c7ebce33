/* bf16_codes.c - the r16e layout (repack.h): BF16 groups of 16 rows stored in 12 bits a weight,
 * losslessly, for decode on AVX2. Compression, escape checks and unpacking in portable C; the
 * AVX2 decode and widening kernels are in r16_avx2.c.
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
 * code[256] (15 for the rest) and the header; returns the escapes the group would need. */
static int64_t choose_codes(int64_t cols, const uint8_t *src, size_t row_bytes, uint8_t code[256], uint8_t *hdr) {
    int64_t hist[256] = {0};
    for (int r = 0; r < G2_R16; r++) {
        const uint8_t *row = src + (size_t)r * row_bytes;
        for (int64_t c = 0; c < cols; c++) {
            uint16_t v;
            memcpy(&v, row + 2 * c, 2);
            hist[(v >> 7) & 0xFF]++;
        }
    }
    memset(code, 15, 256);
    memset(hdr, 0, 32);
    int64_t covered = 0;
    for (int c = 0; c < 15; c++) { /* the most frequent exponent left; ties to the lower one */
        int best = -1;
        for (int e = 0; e < 256; e++)
            if (code[e] == 15 && hist[e] > 0 && (best < 0 || hist[e] > hist[best])) best = e;
        if (best < 0) break;
        code[best] = (uint8_t)c;
        hdr[c] = (uint8_t)(best >> 1);
        hdr[16 + c] = (uint8_t)((best & 1) << 7);
        covered += hist[best];
    }
    return (int64_t)G2_R16 * cols - covered;
}

int g2_r16e_pack_group(int64_t cols, const uint8_t *src, size_t row_bytes, uint8_t *dst, uint8_t *scratch) {
    uint8_t code[256], hdr[32];
    if (choose_codes(cols, src, row_bytes, code, hdr) > G2_R16E_ESC) return 1;
    /* pass 1, row by row (sequential reads): sign and mantissa bytes into place, codes into
     * scratch[p * 32 + k] */
    for (int r = 0; r < G2_R16; r++) {
        const uint8_t *row = src + (size_t)r * row_bytes;
        const int h = r >> 3, i = r & 7, k0 = 8 * h + (i & 3) + 16 * (i >> 2); /* k of column 2p; 2p + 1: k0 + 4 */
        for (int64_t p = 0; p < cols / 2; p++) {
            uint16_t v[2];
            memcpy(v, row + 4 * (size_t)p, 4);
            uint8_t *sm = dst + 32 + (size_t)p * 48, *cd = scratch + (size_t)p * 32;
            sm[k0] = (uint8_t)(((v[0] >> 8) & 0x80) | (v[0] & 0x7F));
            sm[k0 + 4] = (uint8_t)(((v[1] >> 8) & 0x80) | (v[1] & 0x7F));
            cd[k0] = code[(v[0] >> 7) & 0xFF];
            cd[k0 + 4] = code[(v[1] >> 7) & 0xFF];
        }
    }
    /* pass 2, in stream order: the nibbles, and the escapes' exponents */
    uint8_t *esc = dst + G2_R16E_GROUP_BYTES(cols) - G2_R16E_ESC;
    memset(esc, 0, G2_R16E_ESC);
    for (int64_t p = 0; p < cols / 2; p++) {
        const uint8_t *cd = scratch + (size_t)p * 32;
        uint8_t *x = dst + 32 + (size_t)p * 48 + 32;
        for (int k = 0; k < 16; k++) x[k] = (uint8_t)(cd[k] | cd[k + 16] << 4);
        for (int k = 0; k < 32; k++)
            if (cd[k] == 15) { /* choose_codes counted them: there is room */
                uint16_t v;
                memcpy(&v, src + (size_t)k_row(k) * row_bytes + 2 * (size_t)(2 * p + k_odd(k)), 2);
                *esc++ = (uint8_t)(v >> 7);
            }
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
