/* matmul.c - y = W x: activation conversion once per call, then tiles of rows x tokens split
 * across threads by rows. */
#include "kernels/matmul.h"

#include <omp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemma2.h"
#include "kernels/kernels_impl.h"
#include "kernels/quantize.h"
#include "kernels/repack.h"

/* Weight rows kept in L2 while every token passes over them (prefill). The activations of all
 * tokens stream from L3 once per block, so a bigger block means less of that traffic: 512 KiB
 * (half of a Zen 4 / Ice Lake server L2) measured 1.1-1.3x faster than 256 KiB for F32/BF16
 * with 512 tokens (single thread, 9216 x 2304). */
#ifndef G2_ROW_BLOCK_BYTES
#define G2_ROW_BLOCK_BYTES (512u * 1024u)
#endif

/* Rows [r0, r1) of w (row r at base + (r - r0) * row_bytes) times n tokens into y (y[t * ldy + r - r0]). */
static void compute_rows(const g2_kernel *k, const uint8_t *base, size_t rb, const g2_act *a, int n, float *y,
                         size_t ldy, int64_t nrows) {
    if (n == 1) { /* decode: stream the rows once */
        for (int64_t r = 0; r < nrows; r += k->decode_rows) {
            int nr = (int)(nrows - r < k->decode_rows ? nrows - r : k->decode_rows);
            k->tile(base + (size_t)r * rb, rb, nr, a, 0, 1, y + r, ldy);
        }
        return;
    }
    int64_t block = (int64_t)(G2_ROW_BLOCK_BYTES / (rb ? rb : 1)) / k->mr * k->mr;
    if (block < k->mr) block = k->mr;
    for (int64_t b0 = 0; b0 < nrows; b0 += block) {
        const int64_t b1 = b0 + block < nrows ? b0 + block : nrows;
        for (int t0 = 0; t0 < n; t0 += k->nt) {
            const int nt = n - t0 < k->nt ? n - t0 : k->nt;
            for (int64_t r = b0; r < b1; r += k->mr) {
                int nr = (int)(b1 - r < k->mr ? b1 - r : k->mr);
                k->tile(base + (size_t)r * rb, rb, nr, a, t0, nt, y + (size_t)t0 * ldy + r, ldy);
            }
        }
    }
}

/* The r16 prefill kernel for (isa, type, activation kind): its maximum tokens a pass, 0 (tile
 * left unset) when there is none. */
static int r16_tile_for(g2_isa isa, int type, g2_act_kind act, g2_r16_tile_fn *tile) {
    if (isa >= G2_ISA_AVX512 && g2_isa_available(G2_ISA_AVX512)) return g2_r16_tile_avx512(type, (int)act, tile);
    if (isa >= G2_ISA_AVX2 && g2_isa_available(G2_ISA_AVX2)) return g2_r16_tile_avx2(type, (int)act, tile);
    return 0;
}

/* Prefill on nrows (a multiple of 16) rows in the r16 layout at g: every token passes over the
 * block, which stays in L2 (G2_ROW_BLOCK_BYTES). y as in compute_rows. */
static void r16_prefill(g2_r16_tile_fn tile, int nt_max, const uint8_t *g, size_t rb, int64_t cols, const g2_act *a,
                        int n, float *y, size_t ldy, int64_t nrows) {
    for (int t0 = 0; t0 < n; t0 += nt_max)
        for (int64_t r = 0; r < nrows; r += G2_R16)
            tile(g + (size_t)r * rb, cols, a, t0, n - t0 < nt_max ? n - t0 : nt_max, y + (size_t)t0 * ldy + r, ldy);
}

/* Rows in an r16 block of G2_ROW_BLOCK_BYTES (at least one group). */
static int64_t r16_block_rows(size_t rb) {
    const int64_t block = (int64_t)(G2_ROW_BLOCK_BYTES / (rb ? rb : 1)) / G2_R16 * G2_R16;
    return block < G2_R16 ? G2_R16 : block;
}

/* Prefill on a tensor whose groups are not r16 in memory: a block of rows at a time is turned
 * into r16 groups in scratch and run through the r16 kernels, as if the tensor were r16. The
 * conversion is paid once per block for all n tokens. Plain rows (mmap mode: the file's pages
 * cannot be repacked in place) are packed; r16e groups (repack.h) are turned back into r16 BF16
 * groups of the same values, so that AVX-512 prefill runs its r16 BF16 tiles on them. Rows [r0,
 * r1), r0 a multiple of 16, of a tensor g2_r16_supported accepts. */
static int compute_rows_packed(g2_r16_tile_fn tile, int nt_max, const g2_tensor *w, const g2_act *a, int n, float *y,
                               int64_t r0, int64_t r1) {
    const size_t rb = w->row_bytes, ldy = (size_t)w->rows, cb = G2_R16E_GROUP_BYTES(w->cols);
    const uint8_t *data = (const uint8_t *)w->data;
    const int64_t block = r16_block_rows(rb);
    uint8_t *buf = aligned_alloc(64, (rb * (size_t)block + 63) & ~(size_t)63);
    if (!buf) return -1;
    for (int64_t b0 = r0; b0 < r1; b0 += block) {
        const int64_t b1 = b0 + block < r1 ? b0 + block : r1;
        for (int64_t g = b0; g < b1; g += G2_R16) {
            uint8_t *dst = buf + (size_t)(g - b0) * rb;
            if (w->layout == G2_LAYOUT_R16E) g2_r16e_to_r16_group_avx2(w->cols, data + (size_t)(g / G2_R16) * cb, dst);
            else g2_r16_pack_group(w->type, w->cols, data + (size_t)g * rb, rb, dst);
        }
        r16_prefill(tile, nt_max, buf, rb, w->cols, a, n, y + b0, ldy, b1 - b0);
    }
    free(buf);
    return 0;
}

/* Packing a block into r16 groups costs about as much as a few tokens' worth of products on it */
#define G2_PACK_MIN_TOKENS 16

/* The AVX2 kernels are the best this CPU (or GEMMA2_ISA) allows. */
static int avx2_only(g2_isa isa) {
    return !(isa >= G2_ISA_AVX512 && g2_isa_available(G2_ISA_AVX512)) && isa >= G2_ISA_AVX2 && g2_isa_available(G2_ISA_AVX2);
}

/* BF16 prefill on AVX2 (no BF16 dot product there): the BF16 tile widens each weight vector with
 * two integer operations and takes 2 tokens a pass (its registers); widened once per block into
 * r16 F32 groups in scratch (exact), the weights run through the F32 tile, 4 tokens a pass. 2B
 * BF16 on a Zen 3 host without AVX-512, `gemma2 bench -p 512 -n 0 -r 1`, old and new builds
 * alternated: 20.0-22.4 -> 26.1-27.4 t/s (three times); `--load-mode mmap` 16.8-20.6 -> 21.3-24.4
 * (twice). Greedy ids unchanged. */
static int widen_bf16(g2_isa isa, int type, int n) {
    return type == GEMMA2_TYPE_BF16 && n >= G2_PACK_MIN_TOKENS && avx2_only(isa);
}

/* Q8_0, Q4_K and Q6_K with two-term activations (G2_MATMUL_FINE_ACT: the query, key and value
 * projections of Q8_0 and Q4_K_M models) on AVX2: the two terms double the integer work, and
 * AVX2's int8 products (vpmaddubsw and vpmaddwd, Q8_0's vpsignb) run at only about 1.25x the
 * rate of its fp32 FMAs (estimated from 2B prefill on a Zen 3 host: BF16 on the F32 tile 31 t/s,
 * Q8_0 with the two terms 35), so for 64 tokens or more each block of rows is widened once into
 * r16 F32 groups of its values (g2_dequantize_row's: d * q for Q8_0) and multiplied by the fp32
 * activations themselves: exact activations, which the two terms approximate, at less work.
 * Measured: docs/kernels.md, "Q8_0 two-term prefill through the F32 tile" and "Q4_K_M's query,
 * key and value prefill through the F32 tile". The int8 route stays for fewer tokens (the
 * widening is paid once per block for all tokens) and on AVX-512, whose vpdpbusd does 4 times
 * the multiply-adds of an fp32 FMA per instruction. */
#define G2_WIDEN_FINE_MIN_TOKENS 64 /* chosen, not tuned: n = 256 per piece in prefill */
static int widens_to_f32(int type) {
    return type == GEMMA2_TYPE_Q8_0 || type == GEMMA2_TYPE_Q4_K || type == GEMMA2_TYPE_Q6_K;
}
static int widen_fine(g2_isa isa, int type, int n) {
    return widens_to_f32(type) && n >= G2_WIDEN_FINE_MIN_TOKENS && avx2_only(isa);
}

/* Rows [r0, r1), r0 a multiple of 16, of a BF16 (any layout) or Q8_0, Q4_K, Q6_K (plain or r16)
 * tensor, through the F32 tile on blocks widened into scratch (widen_bf16, widen_fine), on fp32
 * activations. y as in compute_rows. */
static int compute_rows_widened(const g2_tensor *w, const g2_act *a, int n, float *y, int64_t r0, int64_t r1) {
    g2_r16_tile_fn tile;
    const int nt_max = g2_r16_tile_avx2(GEMMA2_TYPE_F32, G2_ACT_F32, &tile);
    const size_t rb = w->row_bytes, fb = (size_t)w->cols * 4, ldy = (size_t)w->rows;
    const int64_t block = r16_block_rows(fb);
    const int packed = w->layout != G2_LAYOUT_ROWS;
    uint8_t *buf = aligned_alloc(64, fb * (size_t)block), *tmp = packed ? NULL : malloc(rb * G2_R16);
    if (!buf || (!packed && !tmp)) {
        free(buf);
        free(tmp);
        return -1;
    }
    for (int64_t b0 = r0; b0 < r1; b0 += block) {
        const int64_t b1 = b0 + block < r1 ? b0 + block : r1;
        for (int64_t g = b0; g < b1; g += G2_R16) {
            uint8_t *dst = buf + (size_t)(g - b0) * fb;
            if (w->layout == G2_LAYOUT_R16E) {
                g2_r16e_widen_group_avx2(w->cols, (const uint8_t *)w->data + (size_t)(g / G2_R16) * G2_R16E_GROUP_BYTES(w->cols), dst);
                continue;
            }
            const uint8_t *src = (const uint8_t *)w->data + (size_t)g * rb;
            if (!packed) g2_r16_pack_group(w->type, w->cols, src, rb, tmp);
            const uint8_t *group = packed ? src : tmp;
            switch (w->type) {
            case GEMMA2_TYPE_BF16: g2_r16_widen_bf16_group(w->cols, group, dst); break;
            case GEMMA2_TYPE_Q8_0: g2_r16_widen_q8_0_group_avx2(w->cols, group, dst); break;
            case GEMMA2_TYPE_Q4_K: g2_r16_widen_q4_k_group_avx2(w->cols, group, dst); break;
            default: g2_r16_widen_q6_k_group_avx2(w->cols, group, dst); break; /* Q6_K */
            }
        }
        r16_prefill(tile, nt_max, buf, fb, w->cols, a, n, y + b0, ldy, b1 - b0);
    }
    free(tmp);
    free(buf);
    return 0;
}

/* Group g (its first row, a multiple of 16) of an r16 or r16e tensor as 16 plain rows at dst. */
static void unpack_group(const g2_tensor *w, int64_t g, uint8_t *dst) {
    const uint8_t *data = (const uint8_t *)w->data;
    if (w->layout == G2_LAYOUT_R16E)
        g2_r16e_unpack_group(w->cols, data + (size_t)(g / G2_R16) * G2_R16E_GROUP_BYTES(w->cols), dst, w->row_bytes);
    else
        g2_r16_unpack_group(w->type, w->cols, data + (size_t)g * w->row_bytes, dst, w->row_bytes);
}

/* Rows [r0, r1), r0 a multiple of 16, of an r16 or r16e tensor without kernels for it on this
 * ISA: a block of groups at a time unpacked into plain rows for the row kernels. y as in
 * compute_rows. */
static int compute_rows_unpacked(const g2_kernel *k, const g2_tensor *w, const g2_act *a, int n, float *y, int64_t r0,
                                 int64_t r1) {
    const size_t rb = w->row_bytes;
    const int64_t block = r16_block_rows(rb);
    uint8_t *plain = malloc(rb * (size_t)block);
    if (!plain) return -1;
    for (int64_t b0 = r0; b0 < r1; b0 += block) {
        const int64_t b1 = b0 + block < r1 ? b0 + block : r1;
        for (int64_t g = b0; g < b1; g += G2_R16) unpack_group(w, g, plain + (size_t)(g - b0) * rb);
        compute_rows(k, plain, rb, a, n, y + b0, (size_t)w->rows, b1 - b0);
    }
    free(plain);
    return 0;
}

/* Rows [r0, r1), r0 a multiple of 16, of an r16e tensor (BF16, repack.h): decode on the groups
 * themselves (AVX-512's kernels with bf16 or fp32 activations, AVX2's with fp32 ones); prefill
 * on AVX-512 through its r16 BF16 tiles (compute_rows_packed), on AVX2 through the F32 tile on
 * groups widened into scratch; without AVX2, compute_rows_unpacked. Either way the products
 * are those of the tensor left r16 on the same ISA. y as in compute_rows. */
static int compute_rows_r16e(g2_isa isa, const g2_kernel *k, const g2_tensor *w, const g2_act *a, int n, float *y,
                             int64_t r0, int64_t r1) {
    const uint8_t *data = (const uint8_t *)w->data;
    const size_t cb = G2_R16E_GROUP_BYTES(w->cols);
    if (n == 1 && k->act == G2_ACT_BF16) { /* bf16 activations: AVX-512 with AVX512-BF16 */
        for (int64_t r = r0; r < r1; r += G2_R16)
            g2_r16e_decode_bf16dot_avx512(data + (size_t)(r / G2_R16) * cb, w->cols, a->base, y + r);
        return 0;
    }
    const int avx512 = isa >= G2_ISA_AVX512 && g2_isa_available(G2_ISA_AVX512);
    if (n == 1 && avx512 && k->act == G2_ACT_F32) {
        for (int64_t r = r0; r < r1; r += G2_R16)
            g2_r16e_decode_avx512(data + (size_t)(r / G2_R16) * cb, w->cols, g2_act_f32(a, 0), y + r);
        return 0;
    }
    g2_r16_tile_fn tile;
    const int nt_avx512 = n > 1 && avx512 ? g2_r16_tile_avx512(GEMMA2_TYPE_BF16, (int)k->act, &tile) : 0;
    if (nt_avx512) return compute_rows_packed(tile, nt_avx512, w, a, n, y, r0, r1);
    if (!(isa >= G2_ISA_AVX2 && g2_isa_available(G2_ISA_AVX2) && k->act == G2_ACT_F32))
        return compute_rows_unpacked(k, w, a, n, y, r0, r1);
    if (n > 1) return compute_rows_widened(w, a, n, y, r0, r1);
    const float *x = g2_act_f32(a, 0);
    for (int64_t r = r0; r < r1; r += G2_R16) g2_r16e_decode_avx2(data + (size_t)(r / G2_R16) * cb, w->cols, x, y + r);
    return 0;
}

/* Rows [r0, r1) of w, any layout. r16e tensors run compute_rows_r16e. r16 tensors run the r16
 * kernels (decode and prefill) when the ISA has them; otherwise groups are unpacked, a block at
 * a time, into plain rows for the kernels above. Plain tensors run the row kernels, or in
 * prefill (`pack`) the r16 kernels on groups packed per call (compute_rows_packed).
 * fine_decode: n is 2, one token's two int8 terms (G2_MATMUL_FINE_ACT in decode); on r16
 * groups the decode kernel takes both in one pass (R16_DECODE_FINE), in decode's chunks. 2B
 * Q4_K_M decode on Zen 5, against one term: the prefill tiles for 2 tokens 15% slower, the
 * decode kernel once per term (the group found in L1 the second time) 3% slower, one pass for
 * both 1-4% faster than that (docs/kernels.md). */
static int compute_share(g2_isa isa, const g2_kernel *k, int pack, const g2_tensor *w, const g2_act *a, int n,
                         int fine_decode, float *y, int64_t r0, int64_t r1) {
    const size_t rb = w->row_bytes, ldy = (size_t)w->rows;
    const uint8_t *base = (const uint8_t *)w->data + (size_t)r0 * rb;
    g2_r16_tile_fn tile;
    if (w->layout == G2_LAYOUT_R16E) return compute_rows_r16e(isa, k, w, a, n, y, r0, r1);
    const int widened = widen_bf16(isa, w->type, n) || (widens_to_f32(w->type) && k->act == G2_ACT_F32);
    if (widened && (w->layout == G2_LAYOUT_R16 || pack)) return compute_rows_widened(w, a, n, y, r0, r1);
    if (w->layout != G2_LAYOUT_R16) {
        const int nt_max = pack ? r16_tile_for(isa, w->type, k->act, &tile) : 0;
        if (nt_max) return compute_rows_packed(tile, nt_max, w, a, n, y, r0, r1);
        compute_rows(k, base, rb, a, n, y + r0, ldy, r1 - r0);
        return 0;
    }
    const int avx512 = isa >= G2_ISA_AVX512 && g2_isa_available(G2_ISA_AVX512);
    const int avx2 = !avx512 && isa >= G2_ISA_AVX2 && g2_isa_available(G2_ISA_AVX2);
    g2_r16_tile_fn decode = NULL;
    if (n == 1 || fine_decode)
        decode = avx512 ? g2_r16_decode_avx512(w->type, (int)k->act) : avx2 ? g2_r16_decode_avx2(w->type, (int)k->act) : NULL;
    if (decode) {
        for (int64_t r = r0; r < r1; r += G2_R16) decode((const uint8_t *)w->data + (size_t)r * rb, w->cols, a, 0, n, y + r, ldy);
        return 0;
    }
    const int64_t block = r16_block_rows(rb);
    const int nt_max = n > 1 ? r16_tile_for(isa, w->type, k->act, &tile) : 0;
    if (nt_max) { /* prefill on the r16 groups: a block of groups stays in L2 while all tokens pass */
        for (int64_t b0 = r0; b0 < r1; b0 += block) {
            const int64_t b1 = b0 + block < r1 ? b0 + block : r1;
            r16_prefill(tile, nt_max, (const uint8_t *)w->data + (size_t)b0 * rb, rb, w->cols, a, n, y + b0, ldy, b1 - b0);
        }
        return 0;
    }
    return compute_rows_unpacked(k, w, a, n, y, r0, r1);
}

/* Token t's record(s) in buf: with `fine`, records 2t (x) and 2t + 1 (its residual). */
static void convert_token(g2_act_kind kind, const g2_act *a, const float *x, int fine, uint8_t *buf, int t) {
    const float *xt = x + (size_t)t * (size_t)a->cols;
    uint8_t *rec = buf + (size_t)(fine ? 2 * t : t) * a->stride;
    g2_act_convert(kind, a, xt, rec);
    if (fine) g2_act_convert_residual(kind, a, xt, rec, rec + a->stride);
}

/* y[t][r] = two-term products' sum (G2_MATMUL_FINE_ACT): rows [r0, r1) of tokens t < n from
 * yy [2n][rows] (token 2t: x's first int8 term, 2t + 1: its residual). */
static void combine_fine(float *y, const float *yy, int64_t rows, int n, int64_t r0, int64_t r1) {
    for (int t = 0; t < n; t++) {
        const float *a = yy + (size_t)(2 * t) * (size_t)rows, *b = a + rows;
        float *o = y + (size_t)t * (size_t)rows;
        for (int64_t r = r0; r < r1; r++) o[r] = a[r] + b[r];
    }
}

/* Multiply-adds below which one more thread costs more (a fork and a barrier, and under load a
 * time slice of the other thread) than it saves. */
#define G2_MIN_WORK_PER_THREAD (256 * 1024)

/* Decode is bound by memory bandwidth. With fixed halves of each product, one thread finished
 * 11-17% of the product's time before the other (2B Q4_0 model, timed per thread), whichever
 * thread it was. So the rows of all `count` matrices are cut into chunks of ~256 KiB of weights,
 * numbered across the matrices; each thread starts on an even, contiguous share of chunks (a
 * forward stream, as before), and a thread that runs out takes chunks from the far end of
 * another's share. Each share is one 64-bit word, [lo, hi) as two 32-bit halves, changed only by
 * compare-and-swap: the owner takes lo, a thief hi - 1. Measured on the 2B shape, alternating the
 * two schemes token by token in one run: 0.8-4.5% less time in the products than fixed halves
 * (Q4_0, Q4_K_M, Q8_0, BF16); 64 KiB chunks were 2-3% slower than 256 KiB, 16 KiB 3-6%, 1 MiB
 * the same. */
#define G2_DECODE_CHUNK_BYTES (256u * 1024u)

typedef struct {
    _Alignas(64) _Atomic uint64_t range; /* lo | hi << 32 */
} g2_share;

/* Takes one chunk from the front (own share) or the back (stolen) of s; -1 when s is empty. */
static int64_t share_take(g2_share *s, int from_back) {
    uint64_t cur = atomic_load_explicit(&s->range, memory_order_relaxed);
    for (;;) {
        const uint32_t lo = (uint32_t)cur, hi = (uint32_t)(cur >> 32);
        if (lo >= hi) return -1;
        const uint64_t next = from_back ? (uint64_t)lo | (uint64_t)(hi - 1) << 32 : (uint64_t)(lo + 1) | (uint64_t)hi << 32;
        if (atomic_compare_exchange_weak_explicit(&s->range, &cur, next, memory_order_relaxed, memory_order_relaxed))
            return from_back ? (int64_t)hi - 1 : (int64_t)lo;
    }
}

/* Runs `count` products on n tokens (records: nn, see matmul_many) with chunks handed out as
 * above. A chunk is G2_DECODE_CHUNK_BYTES of weights in decode and one L2 block
 * (G2_ROW_BLOCK_BYTES) in prefill, where every token passes over it while it is in L2: blocks
 * of the size fixed shares ran, but a thread that is slowed (a vCPU that the host preempts,
 * here) no longer holds the others at the product's barrier. 2B pp512 on a 2-vCPU
 * Zen 3 host (`gemma2 bench -p 512 -n 0 -r 1`, fixed shares and chunks alternated, t/s): Q8_0
 * 27.1-30.9 -> 29.7-34.0 (six each), Q4_0 44.5 / 46.5 -> 44.5 / 49.5, Q4_K_M 32.4 / 37.2 ->
 * 42.7 / 37.4, BF16 22.5 / 22.2 -> 28.1 / 25.3, F16 26.1 / 29.9 -> 28.0 / 29.7. */
static int run_shared(g2_isa isa, const g2_kernel *k, const int *pack, const int *unit, const g2_tensor *const *ws,
                      float *const *ys, float *const *yy, int count, const g2_act *a, const float *x, int n, int fine,
                      uint8_t *buf, int n_threads) {
    const int nn = fine ? 2 * n : n;
    const size_t chunk_bytes = n == 1 ? G2_DECODE_CHUNK_BYTES : G2_ROW_BLOCK_BYTES;
    int64_t per_chunk[G2_MATMUL_MANY_MAX], first[G2_MATMUL_MANY_MAX + 1]; /* rows per chunk; first chunk of each */
    first[0] = 0;
    for (int i = 0; i < count; i++) {
        const size_t unit_bytes = (size_t)unit[i] * ws[i]->row_bytes;
        int64_t u = (int64_t)(chunk_bytes / (unit_bytes ? unit_bytes : 1));
        per_chunk[i] = (u < 1 ? 1 : u) * unit[i];
        first[i + 1] = first[i] + (ws[i]->rows + per_chunk[i] - 1) / per_chunk[i];
    }
    const int64_t chunks = first[count];
    if (chunks > (int64_t)UINT32_MAX) return -1; /* not a Gemma 2 shape: 2^32 chunks */
    g2_share *share = aligned_alloc(64, sizeof(g2_share) * (size_t)n_threads);
    if (!share) return -1;
    for (int t = 0; t < n_threads; t++)
        atomic_init(&share[t].range, (uint64_t)(chunks * t / n_threads) | (uint64_t)(chunks * (t + 1) / n_threads) << 32);
    int failed = 0;
#pragma omp parallel num_threads(n_threads)
    {
        if (buf) { /* the activations, converted once (the loop's end is a barrier) */
#pragma omp for schedule(static)
            for (int t = 0; t < n; t++) convert_token(k[0].act, a, x, fine, buf, t);
        }
        /* victims range over all n_threads shares: if OpenMP gave fewer threads, the shares
         * of the missing ones are all taken by stealing */
        const int me = omp_get_thread_num();
        int victim = me, i = 0;
        for (;;) {
            int64_t c = share_take(&share[victim], victim != me);
            while (c < 0 && (victim = (victim + 1) % n_threads) != me) c = share_take(&share[victim], 1);
            if (c < 0) break; /* every share is empty */
            while (c >= first[i + 1]) i++;
            while (c < first[i]) i--;
            const int64_t r0 = (c - first[i]) * per_chunk[i];
            const int64_t r1 = r0 + per_chunk[i] < ws[i]->rows ? r0 + per_chunk[i] : ws[i]->rows;
            if (compute_share(isa, &k[i], pack[i], ws[i], a, nn, fine && n == 1, yy[i], r0, r1)) {
#pragma omp atomic write
                failed = 1;
            }
            if (fine) combine_fine(ys[i], yy[i], ws[i]->rows, n, r0, r1);
        }
    }
    free(share);
    return failed;
}

/* count products of the same activations, in one parallel region: the activations converted
 * once, the threads take chunks of the matrices with stealing (run_shared), one barrier at the
 * end. The matrices must have the same column count and activation format (the caller checks). */
static int matmul_many(g2_isa isa, const g2_tensor *const *ws, float *const *ys, int count, const float *x, int n,
                       unsigned flags, int n_threads) {
    g2_kernel k[G2_MATMUL_MANY_MAX] = {{0}};
    double work = 0;
    int64_t min_units = INT64_MAX;
    int pack[G2_MATMUL_MANY_MAX], unit[G2_MATMUL_MANY_MAX];
    for (int i = 0; i < count; i++) {
        g2_kernel_for(isa, ws[i]->type, &k[i]);
        if (flags & G2_MATMUL_ONE_ROW) k[i].mr = 1;
    }
    /* two int8 terms per activation: the kernels run on 2n records, into yy [2n][rows] */
    int fine = (flags & G2_MATMUL_FINE_ACT) && (k[0].act == G2_ACT_Q8_32 || k[0].act == G2_ACT_Q8_256);
    int nn = fine ? 2 * n : n;
    for (int i = 0; i < count; i++) {
        g2_r16_tile_fn tile;
        pack[i] = ws[i]->layout == G2_LAYOUT_ROWS && nn >= G2_PACK_MIN_TOKENS &&
                  g2_r16_supported(ws[i]->type, ws[i]->rows, ws[i]->cols) && r16_tile_for(isa, ws[i]->type, k[i].act, &tile);
        unit[i] = pack[i] || ws[i]->layout != G2_LAYOUT_ROWS ? 16 : k[i].mr;
        const int64_t u = (ws[i]->rows + unit[i] - 1) / unit[i]; /* row tiles: the unit of work split */
        min_units = u < min_units ? u : min_units;
        work += (double)ws[i]->rows * (double)ws[i]->cols * n;
    }
    int widen = fine;
    for (int i = 0; i < count; i++) widen &= widen_fine(isa, ws[i]->type, n) && (pack[i] || ws[i]->layout == G2_LAYOUT_R16);
    if (widen) { /* fp32 activations on widened blocks instead of two terms (widen_fine) */
        for (int i = 0; i < count; i++) k[i].act = G2_ACT_F32;
        fine = 0, nn = n;
    }
    if (fine) work *= 2;
    g2_act a;
    g2_act_layout(k[0].act, ws[0]->cols, &a);
    uint8_t *buf = NULL;
    float *tmp = NULL, *yy[G2_MATMUL_MANY_MAX];
    if (k[0].act == G2_ACT_F32) {
        a.base = (const uint8_t *)x;
    } else {
        buf = aligned_alloc(64, a.stride * (size_t)nn);
        if (!buf) return -1;
        a.base = buf;
    }
    for (int i = 0; i < count; i++) yy[i] = ys[i];
    if (fine) {
        size_t total = 0;
        for (int i = 0; i < count; i++) total += (size_t)nn * (size_t)ws[i]->rows;
        tmp = malloc(total * sizeof(float));
        if (!tmp) {
            free(buf);
            return -1;
        }
        size_t off = 0;
        for (int i = 0; i < count; off += (size_t)nn * (size_t)ws[i]->rows, i++) yy[i] = tmp + off;
    }
    if (n_threads <= 0) n_threads = omp_get_max_threads();
    if (work < (double)G2_MIN_WORK_PER_THREAD * n_threads) n_threads = (int)(work / G2_MIN_WORK_PER_THREAD) + 1;
    if (n_threads > min_units) n_threads = (int)min_units;
    const int failed = run_shared(isa, k, pack, unit, ws, ys, yy, count, &a, x, n, fine, buf, n_threads);
    free(tmp);
    free(buf);
    return failed ? -1 : 0;
}

int g2_matmul_many_isa(g2_isa isa, const g2_tensor *const *ws, float *const *ys, int count, const float *x, int n,
                       unsigned flags, int n_threads) {
    if (n <= 0 || count <= 0) return 0;
    int same = count <= G2_MATMUL_MANY_MAX;
    g2_kernel k0, ki;
    for (int i = 0; i < count; i++) {
        if (ws[i]->rows <= 0 || ws[i]->cols <= 0 || !g2_kernel_for(isa, ws[i]->type, &ki)) {
            /* empty rows; or a type the loader rejects */
            if (ws[i]->rows > 0) memset(ys[i], 0, (size_t)n * (size_t)ws[i]->rows * sizeof(float));
            same = 0;
            continue;
        }
        if (i == 0) k0 = ki;
        else if (ki.act != k0.act || ws[i]->cols != ws[0]->cols) same = 0;
    }
    if (same) return matmul_many(isa, ws, ys, count, x, n, flags, n_threads);
    int failed = 0;
    for (int i = 0; i < count; i++)
        if (ws[i]->rows > 0 && ws[i]->cols > 0 && g2_kernel_for(isa, ws[i]->type, &ki))
            failed |= matmul_many(isa, &ws[i], &ys[i], 1, x, n, flags, n_threads);
    return failed ? -1 : 0;
}

int g2_matmul_many(const g2_tensor *const *ws, float *const *ys, int count, const float *x, int n, unsigned flags,
                   int n_threads) {
    return g2_matmul_many_isa(g2_isa_active(), ws, ys, count, x, n, flags, n_threads);
}

int g2_matmul_isa(g2_isa isa, const g2_tensor *w, const float *x, int n, float *y, int n_threads) {
    return g2_matmul_many_isa(isa, &w, &y, 1, x, n, 0, n_threads);
}

int g2_matmul(const g2_tensor *w, const float *x, int n, float *y, int n_threads) {
    return g2_matmul_isa(g2_isa_active(), w, x, n, y, n_threads);
}

void g2_tensor_row_f32(const g2_tensor *w, int64_t r, float *out) {
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
    uint8_t *plain = NULL;
    if (w->layout != G2_LAYOUT_ROWS) { /* unpack the row's group (the token embedding: once a token) */
        plain = malloc(w->row_bytes * G2_R16);
        if (!plain) {
            memset(out, 0, (size_t)w->cols * sizeof(float));
            return;
        }
        unpack_group(w, r / G2_R16 * G2_R16, plain);
        row = plain + (size_t)(r % G2_R16) * w->row_bytes;
    }
    g2_dequantize_row(w->type, row, out, w->cols);
    free(plain);
}

float g2_dot_row(int type, const void *row, const float *x, int64_t n) {
    g2_tensor t = {row, type, 1, n, 0, G2_LAYOUT_ROWS};
    float y = 0;
    g2_matmul(&t, x, 1, &y, 1);
    return y;
}
