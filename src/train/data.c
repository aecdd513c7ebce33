/* data.c - token shard reading, writing and batch windows. */
#include "train/data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/atomic_file.h"
#include "util/error.h"

static uint32_t rd32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

gemma2_status g2_shard_load(const char *path, int vocab, g2_shard *s, gemma2_error *err) {
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f) return g2_fail(err, GEMMA2_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char h[G2_SHARD_HEADER];
    gemma2_status st = GEMMA2_OK;
    if (fread(h, 1, sizeof h, f) != sizeof h || memcmp(h, G2_SHARD_MAGIC, 8)) {
        st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: not a token shard (no G2TOKENS header)", path);
        goto done;
    }
    if (rd32(h + 8) != 1) {
        st = g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: shard version %u (expected 1)", path, rd32(h + 8));
        goto done;
    }
    s->vocab_size = rd32(h + 12);
    const uint64_t n = rd64(h + 16);
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    if (size < 0 || n > ((uint64_t)1 << 40) || (uint64_t)size != G2_SHARD_HEADER + 4 * n) {
        st = g2_fail(err, GEMMA2_ERR_FORMAT,
                     "%s: truncated or corrupt shard: the header says %llu tokens (%llu bytes) but the file has %ld bytes",
                     path, (unsigned long long)n, (unsigned long long)(G2_SHARD_HEADER + 4 * n), size);
        goto done;
    }
    if (s->vocab_size && vocab > 0 && (int)s->vocab_size > vocab) {
        st = g2_fail(err, GEMMA2_ERR_ARG, "%s: written for a vocabulary of %u, the model has %d", path, s->vocab_size,
                     vocab);
        goto done;
    }
    s->tokens = malloc(n ? 4 * n : 4);
    fseek(f, G2_SHARD_HEADER, SEEK_SET);
    if (!s->tokens) {
        st = g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory for %llu tokens", path, (unsigned long long)n);
        goto done;
    }
    if (fread(s->tokens, 4, n, f) != n) {
        st = g2_fail(err, GEMMA2_ERR_IO, "%s: read failed", path);
        goto done;
    }
    s->n_tokens = n;
    for (size_t i = 0; i < n; i++) { /* the file is little-endian; so is every machine we build for */
        if (s->tokens[i] < 0 || (vocab > 0 && s->tokens[i] >= vocab)) {
            st = g2_fail(err, GEMMA2_ERR_ARG, "%s: token %zu is %d, outside the model's vocabulary of %d", path, i,
                         s->tokens[i], vocab);
            goto done;
        }
    }
done:
    fclose(f);
    if (st) g2_shard_free(s);
    return st;
}

void g2_shard_free(g2_shard *s) {
    free(s->tokens);
    memset(s, 0, sizeof *s);
}

gemma2_status g2_shard_write(const char *path, const int32_t *tokens, size_t n, uint32_t vocab, gemma2_error *err) {
    unsigned char h[G2_SHARD_HEADER] = {0};
    memcpy(h, G2_SHARD_MAGIC, 8);
    h[8] = 1;
    for (int i = 0; i < 4; i++) h[12 + i] = (unsigned char)(vocab >> (8 * i));
    for (int i = 0; i < 8; i++) h[16 + i] = (unsigned char)((uint64_t)n >> (8 * i));
    g2_atomic_file af;
    gemma2_status s = g2_atomic_open(path, &af, err);
    if (s) return s;
    if (fwrite(h, 1, sizeof h, af.fp) != sizeof h || fwrite(tokens, 4, n, af.fp) != n) {
        g2_atomic_abort(&af);
        return g2_fail(err, GEMMA2_ERR_IO, "%s: write failed", path);
    }
    return g2_atomic_commit(&af, err);
}

void g2_shard_sample(const g2_shard *s, g2_rng *r, int B, int T, int32_t *ids, int32_t *targets) {
    const size_t span = s->n_tokens - (size_t)T; /* start positions 0..span-1 */
    for (int b = 0; b < B; b++) {
        const size_t st = (size_t)g2_rng_below(r, span);
        for (int t = 0; t < T; t++) ids[b * T + t] = s->tokens[st + t], targets[b * T + t] = s->tokens[st + t + 1];
    }
}

void g2_shard_windows(const g2_shard *s, long first, int B, int T, int32_t *ids, int32_t *targets) {
    const size_t nw = (s->n_tokens - 1) / (size_t)T;
    for (int b = 0; b < B; b++) {
        const size_t st = (size_t)((first + b) % (long)nw) * (size_t)T;
        for (int t = 0; t < T; t++) ids[b * T + t] = s->tokens[st + t], targets[b * T + t] = s->tokens[st + t + 1];
    }
}
