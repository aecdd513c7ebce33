/* ppl_logits_file.c - see ppl_logits_file.h. */
#include "ppl_logits_file.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char k_magic[8] = {'G', '2', 'P', 'P', 'L', 'L', 'O', 'G'};

int g2_ppl_write_header(FILE *f, const g2_ppl_header *h, const int32_t *tokens) {
    uint32_t v[7] = {1, h->vocab, h->ctx, h->stride, h->chunks, h->rows_per_chunk, h->n_tokens};
    if (fwrite(k_magic, 1, 8, f) != 8 || fwrite(v, 4, 7, f) != 7) return -1;
    if (fwrite(tokens, 4, h->n_tokens, f) != h->n_tokens) return -1;
    return 0;
}

int g2_ppl_write_row(FILE *f, const float *logits, uint32_t vocab, uint16_t *q) {
    float lo = logits[0], hi = logits[0];
    for (uint32_t i = 1; i < vocab; i++) {
        if (logits[i] < lo) lo = logits[i];
        if (logits[i] > hi) hi = logits[i];
    }
    float scale = hi > lo ? (hi - lo) / 65535.0f : 0.0f;
    float inv = scale > 0 ? 1.0f / scale : 0.0f;
    for (uint32_t i = 0; i < vocab; i++) {
        float x = roundf((logits[i] - lo) * inv);
        q[i] = (uint16_t)(x < 0 ? 0 : x > 65535 ? 65535 : x);
    }
    float head[2] = {lo, scale};
    if (fwrite(head, 4, 2, f) != 2 || fwrite(q, 2, vocab, f) != vocab) return -1;
    return 0;
}

int g2_ppl_read_header(FILE *f, const char *path, g2_ppl_header *h, int32_t **tokens, char *msg, size_t msg_len) {
    char magic[8];
    uint32_t v[7];
    *tokens = NULL;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, k_magic, 8)) {
        snprintf(msg, msg_len, "%s: not a file written by `gemma2 perplexity --save-logits`", path);
        return -1;
    }
    if (fread(v, 4, 7, f) != 7 || v[0] != 1) {
        snprintf(msg, msg_len, "%s: truncated header or unknown version", path);
        return -1;
    }
    h->vocab = v[1], h->ctx = v[2], h->stride = v[3], h->chunks = v[4], h->rows_per_chunk = v[5], h->n_tokens = v[6];
    if (!h->vocab || !h->ctx || h->n_tokens > (1u << 30) || h->rows_per_chunk > h->ctx) {
        snprintf(msg, msg_len, "%s: implausible header (vocab %u, ctx %u, %u tokens)", path, h->vocab, h->ctx,
                 h->n_tokens);
        return -1;
    }
    *tokens = malloc((size_t)(h->n_tokens ? h->n_tokens : 1) * 4);
    if (!*tokens || fread(*tokens, 4, h->n_tokens, f) != h->n_tokens) {
        snprintf(msg, msg_len, "%s: truncated token list", path);
        free(*tokens);
        *tokens = NULL;
        return -1;
    }
    return 0;
}

int g2_ppl_read_row(FILE *f, float *logits, uint32_t vocab, uint16_t *q) {
    float head[2];
    if (fread(head, 4, 2, f) != 2 || fread(q, 2, vocab, f) != vocab) return -1;
    for (uint32_t i = 0; i < vocab; i++) logits[i] = head[0] + head[1] * (float)q[i];
    return 0;
}
