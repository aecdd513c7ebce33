/* decode.c - ids to text, as SentencePiece's DecodeIds, whole or incrementally.
 *
 * Per piece: control -> nothing; unknown -> the unk surface (" ⁇ "); normal and user-defined ->
 * the piece with `▁` turned into ' '; byte pieces -> collected, and every run of consecutive
 * byte pieces is read as UTF-8: a valid character is written as is, every byte that does not
 * start one becomes U+FFFD (SentencePiece's ProcessBytePieces). Any non-byte piece ends a run.
 *
 * The streaming decoder holds back the bytes of a run that are still the beginning of a valid
 * character (at most 3), so it writes exactly what a whole-sequence decode writes, never half a
 * character. gemma2_detokenize() is the same decoder run over all ids. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/vocab.h"
#include "util/error.h"

struct gemma2_decoder {
    const gemma2_tokenizer *t;
    uint8_t pend[4];
    int n_pend;
    int seen_text; /* a non-control piece was written: no more dummy-prefix stripping */
};

static const char k_fffd[] = "\xEF\xBF\xBD";

/* Could b[0..n) still become one valid character with more bytes? (n < its length) */
static int utf8_valid_prefix(const uint8_t *b, int n) {
    uint8_t c = b[0];
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) need = 3;
    else if (c >= 0xF0 && c <= 0xF4) need = 4;
    else return 0;
    if (n >= need) return 0;
    if (c == 0xE0) lo = 0xA0;
    else if (c == 0xED) hi = 0x9F;
    else if (c == 0xF0) lo = 0x90;
    else if (c == 0xF4) hi = 0x8F;
    if (n >= 2 && (b[1] < lo || b[1] > hi)) return 0;
    for (int i = 2; i < n; i++)
        if ((b[i] & 0xC0) != 0x80) return 0;
    return 1;
}

/* Writes every complete character of the pending bytes; `final`: the run has ended. */
static gemma2_status drain(gemma2_decoder *d, int final, gemma2_text_buf *out, gemma2_error *err) {
    while (d->n_pend > 0) {
        uint32_t cp;
        int cl = g2_utf8_decode(d->pend, (size_t)d->n_pend, &cp);
        gemma2_status st;
        if (cl > 0) {
            st = g2_textbuf_append(out, (const char *)d->pend, (size_t)cl, err);
        } else {
            if (!final && utf8_valid_prefix(d->pend, d->n_pend)) return GEMMA2_OK;
            cl = 1;
            st = g2_textbuf_append(out, k_fffd, 3, err);
        }
        if (st) return st;
        d->n_pend -= cl;
        memmove(d->pend, d->pend + cl, (size_t)d->n_pend);
    }
    return GEMMA2_OK;
}

/* Appends piece text with U+2581 -> ' '. */
static gemma2_status append_unescaped(const char *s, size_t n, gemma2_text_buf *out, gemma2_error *err) {
    size_t i = 0, run = 0;
    while (i + 2 < n || run < n) {
        if (i + 2 < n && (uint8_t)s[i] == 0xE2 && (uint8_t)s[i + 1] == 0x96 && (uint8_t)s[i + 2] == 0x81) {
            gemma2_status st = g2_textbuf_append(out, s + run, i - run, err);
            if (st) return st;
            st = g2_textbuf_append(out, " ", 1, err);
            if (st) return st;
            i += 3;
            run = i;
        } else if (i < n) {
            i++;
        } else {
            break;
        }
    }
    return g2_textbuf_append(out, s + run, n - run, err);
}

static gemma2_status push(gemma2_decoder *d, int32_t id, gemma2_text_buf *out, gemma2_error *err) {
    const gemma2_tokenizer *t = d->t;
    if (id < 0 || id >= t->n)
        return g2_fail(err, GEMMA2_ERR_ARG, "token id %d is out of range (vocabulary of %d)", (int)id, (int)t->n);
    int ty = t->type[id];
    if (ty == GEMMA2_PIECE_BYTE) {
        size_t len;
        const char *s = g2_tok_text(t, id, &len);
        unsigned v = 0;
        for (int k = 3; k < 5; k++) {
            char c = s[k];
            v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
        }
        if (d->n_pend == 4) { /* cannot happen: 4 pending bytes are always decided */
            gemma2_status st = drain(d, 1, out, err);
            if (st) return st;
        }
        d->pend[d->n_pend++] = (uint8_t)v;
        d->seen_text = 1;
        return drain(d, 0, out, err);
    }
    gemma2_status st = drain(d, 1, out, err);
    if (st) return st;
    if (ty == GEMMA2_PIECE_CONTROL) return GEMMA2_OK;
    if (ty == GEMMA2_PIECE_UNKNOWN) {
        d->seen_text = 1;
        return g2_textbuf_append(out, t->unk_surface, strlen(t->unk_surface), err);
    }
    size_t len;
    const char *s = g2_tok_text(t, id, &len);
    if (!d->seen_text && (t->add_dummy_prefix || t->remove_extra_whitespaces) && len >= 3 &&
        memcmp(s, "\xE2\x96\x81", 3) == 0) {
        s += 3;
        len -= 3;
    }
    d->seen_text = 1;
    return append_unescaped(s, len, out, err);
}

gemma2_status gemma2_decoder_create(const gemma2_tokenizer *t, gemma2_decoder **out, gemma2_error *err) {
    *out = NULL;
    if (!t) return g2_fail(err, GEMMA2_ERR_ARG, "gemma2_decoder_create: no tokenizer");
    gemma2_decoder *d = calloc(1, sizeof *d);
    if (!d) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    d->t = t;
    *out = d;
    return GEMMA2_OK;
}

void gemma2_decoder_free(gemma2_decoder *d) { free(d); }

gemma2_status gemma2_decoder_push(gemma2_decoder *d, int32_t id, gemma2_text_buf *out, gemma2_error *err) {
    gemma2_status st = g2_textbuf_append(out, "", 0, err); /* output is NUL-terminated even if empty */
    return st ? st : push(d, id, out, err);
}

gemma2_status gemma2_decoder_flush(gemma2_decoder *d, gemma2_text_buf *out, gemma2_error *err) {
    gemma2_status st = g2_textbuf_append(out, "", 0, err);
    if (!st) st = drain(d, 1, out, err);
    d->n_pend = 0;
    d->seen_text = 0;
    return st;
}

gemma2_status gemma2_detokenize(const gemma2_tokenizer *t, const int32_t *ids, size_t n, gemma2_text_buf *out,
                                gemma2_error *err) {
    if (!t || !out || (!ids && n)) return g2_fail(err, GEMMA2_ERR_ARG, "gemma2_detokenize: NULL argument");
    gemma2_decoder d = {.t = t};
    gemma2_status st = g2_textbuf_append(out, "", 0, err);
    for (size_t i = 0; !st && i < n; i++) st = push(&d, ids[i], out, err);
    if (!st) st = drain(&d, 1, out, err);
    return st;
}
