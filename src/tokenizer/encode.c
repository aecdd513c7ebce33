/* encode.c - text to ids with SentencePiece's BPE algorithm (bpe_model.cc), step for step:
 *
 *   normalize -> split into symbols (user-defined pieces longest-match, else one character)
 *   -> repeatedly merge the adjacent pair whose concatenation is the best-scoring piece
 *      (leftmost on ties) -> ids, with byte fallback for symbols that are no piece.
 *
 * The candidate pairs live in a binary heap ordered by (score desc, left position asc), exactly
 * SentencePiece's agenda; a popped pair is stale when one of its symbols was merged since (the
 * same length check SentencePiece uses). Each merge pushes at most two pairs, so a text of n
 * characters costs O(n log n) whatever it contains. Pair lookups go through the precomputed
 * pair table (vocab.h) instead of hashing concatenated strings. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/vocab.h"
#include "util/error.h"

typedef struct {
    int32_t key;   /* merge key, -1 = cannot merge */
    int32_t fixed; /* id of a matched user-defined / control piece (frozen), else -1 */
    int32_t prev, next;
    uint32_t start, len; /* bytes of the normalized text; len 0 = merged away */
} sym;

typedef struct {
    float score;
    int32_t left, right;
    uint32_t size;
    int32_t id;
} cand;

static inline int cand_before(const cand *a, const cand *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(cand *h, size_t *n, cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static cand heap_pop(cand *h, size_t *n) {
    cand top = h[0];
    cand last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= m) break;
        size_t c = l + 1 < m && cand_before(&h[l + 1], &h[l]) ? l + 1 : l;
        if (!cand_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

gemma2_encode_options gemma2_encode_default_options(void) {
    gemma2_encode_options o = {0, 0, 0};
    return o;
}

/* SentencePiece's identity normalizer: ' ' -> U+2581 (escape_whitespaces), each byte that is not
 * part of valid UTF-8 -> U+FFFD, optional dummy prefix and whitespace cleanup. `out` has room
 * for 3 * len + 3 bytes. Returns the normalized length. */
static size_t normalize(const gemma2_tokenizer *t, const uint8_t *s, size_t len, uint8_t *out) {
    size_t o = 0, i = 0;
    int rm = t->remove_extra_whitespaces;
    if (rm)
        while (i < len && s[i] == ' ') i++;
    if (i == len) return 0;
    if (t->add_dummy_prefix) {
        if (t->escape_whitespaces) {
            memcpy(out, "\xE2\x96\x81", 3);
            o = 3;
        } else {
            out[o++] = ' ';
        }
    }
    int prev_space = rm;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c == ' ') {
                i++;
                if (prev_space) continue;
                prev_space = rm;
                if (t->escape_whitespaces) {
                    memcpy(out + o, "\xE2\x96\x81", 3);
                    o += 3;
                } else {
                    out[o++] = ' ';
                }
                continue;
            }
            out[o++] = c;
            i++;
            prev_space = 0;
            continue;
        }
        uint32_t cp;
        int cl = g2_utf8_decode(s + i, len - i, &cp);
        if (cl == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += 1;
        } else {
            memcpy(out + o, s + i, (size_t)cl);
            o += (size_t)cl;
            i += (size_t)cl;
        }
        prev_space = 0;
    }
    if (rm) { /* trailing whitespace */
        if (t->escape_whitespaces)
            while (o >= 3 && memcmp(out + o - 3, "\xE2\x96\x81", 3) == 0) o -= 3;
        else
            while (o >= 1 && out[o - 1] == ' ') o--;
    }
    return o;
}

/* Longest user-defined (or, with parse_control, control) piece at s; returns its length. */
static size_t match_piece(const gemma2_tokenizer *t, const uint8_t *s, size_t n, int control, int32_t *id) {
    int32_t node = 0;
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != s[i]) c = t->trie[c].sibling;
        if (c < 0) break;
        node = c;
        if (t->trie[node].ud_id >= 0) {
            best = i + 1;
            *id = t->trie[node].ud_id;
        } else if (control && t->trie[node].ctl_id >= 0) {
            best = i + 1;
            *id = t->trie[node].ctl_id;
        }
    }
    return best;
}

static inline void try_pair(const gemma2_tokenizer *t, const sym *sy, int32_t l, int32_t r, cand *heap,
                            size_t *nh) {
    if (l < 0 || r < 0) return;
    const sym *a = &sy[l], *b = &sy[r];
    if (a->key < 0 || b->key < 0) return; /* frozen symbols have key -1 */
    const g2_pair_slot *p = g2_tok_pair(t, a->key, b->key);
    if (p->id < 0) return;
    cand c = {p->score, l, r, a->len + b->len, p->id};
    heap_push(heap, nh, c);
}

gemma2_status gemma2_tokenize(const gemma2_tokenizer *t, const char *text, size_t len,
                              const gemma2_encode_options *opt, gemma2_token_buf *out, gemma2_error *err) {
    gemma2_encode_options o = opt ? *opt : gemma2_encode_default_options();
    if (!t || !out || (!text && len)) return g2_fail(err, GEMMA2_ERR_ARG, "gemma2_tokenize: NULL argument");
    if (len > ((size_t)1 << 30)) return g2_fail(err, GEMMA2_ERR_ARG, "gemma2_tokenize: text over 1 GiB");
    if (o.add_bos && t->bos < 0) return g2_fail(err, GEMMA2_ERR_ARG, "the vocabulary has no <bos>");
    if (o.add_eos && t->eos < 0) return g2_fail(err, GEMMA2_ERR_ARG, "the vocabulary has no <eos>");

    /* one block: normalized text, symbols, heap (initial pairs + 2 per merge < 3 per symbol) */
    size_t nmax = 3 * len + 3, smax = len + 1;
    size_t nbytes = (nmax + 8 + 15) & ~(size_t)15;
    size_t bytes = nbytes + smax * sizeof(sym) + 3 * smax * sizeof(cand);
    _Alignas(16) uint8_t stack_block[32768];
    uint8_t *block = bytes <= sizeof stack_block ? stack_block : malloc(bytes);
    if (!block) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory encoding %zu bytes", len);
    uint8_t *norm = block;
    size_t nlen = normalize(t, (const uint8_t *)text, len, norm);
    sym *sy = (sym *)(block + nbytes);
    cand *heap = (cand *)(sy + smax);

    /* symbols */
    int32_t ns = 0;
    int mask = o.parse_control ? 3 : 1;
    for (size_t i = 0; i < nlen;) {
        uint8_t b = norm[i];
        sym *s = &sy[ns];
        s->prev = ns - 1;
        s->next = ns + 1;
        s->start = (uint32_t)i;
        if (t->first_byte[b] & mask) {
            int32_t id = -1;
            size_t m = match_piece(t, norm + i, nlen - i, o.parse_control, &id);
            if (m) {
                s->key = -1;
                s->fixed = id;
                s->len = (uint32_t)m;
                i += m;
                ns++;
                continue;
            }
        }
        s->fixed = -1;
        uint32_t cp = b;
        int cl = 1;
        if (b >= 0x80) cl = g2_utf8_decode(norm + i, nlen - i, &cp); /* valid: normalized */
        s->key = g2_tok_cp_key(t, cp);
        s->len = (uint32_t)cl;
        i += (size_t)cl;
        ns++;
    }
    if (ns) sy[ns - 1].next = -1;

    size_t nh = 0;
    /* the initial pairs are independent lookups: prefetch a few ahead so their cache misses overlap */
    enum { AHEAD = 8 };
    for (int32_t i = 0; i + 1 < ns; i++) {
        if (i + AHEAD + 1 < ns && sy[i + AHEAD].key >= 0 && sy[i + AHEAD + 1].key >= 0)
            __builtin_prefetch(&t->pairs[g2_pair_hash(t, sy[i + AHEAD].key, sy[i + AHEAD + 1].key)]);
        try_pair(t, sy, i, i + 1, heap, &nh);
    }
    while (nh) {
        cand c = heap_pop(heap, &nh);
        sym *l = &sy[c.left], *r = &sy[c.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != c.size) continue; /* stale */
        l->len += r->len;
        l->key = c.id;
        l->next = r->next;
        if (r->next >= 0) sy[r->next].prev = c.left;
        r->len = 0;
        try_pair(t, sy, l->prev, c.left, heap, &nh);
        try_pair(t, sy, c.left, l->next, heap, &nh);
    }

    /* ids */
    gemma2_status st = g2_tokbuf_reserve(out, (size_t)ns * 4 + 2, err);
    if (st) goto done;
    if (o.add_bos) out->ids[out->n++] = t->bos;
    for (int32_t i = ns ? 0 : -1; i >= 0; i = sy[i].next) {
        const sym *s = &sy[i];
        if (s->fixed >= 0) {
            out->ids[out->n++] = s->fixed;
        } else if (s->key >= 0 && s->key < t->n) {
            out->ids[out->n++] = s->key;
        } else {
            /* no mergeable piece: maybe a reserved one (SentencePiece looks those up first), else
             * unknown -> bytes */
            int32_t id = g2_tok_lookup(t, (const char *)norm + s->start, s->len);
            if (id >= 0) {
                out->ids[out->n++] = id;
            } else if (t->byte_fallback) {
                for (uint32_t k = 0; k < s->len; k++) out->ids[out->n++] = t->byte_id[norm[s->start + k]];
            } else {
                out->ids[out->n++] = t->unk;
            }
        }
    }
    if (o.add_eos) out->ids[out->n++] = t->eos;
done:
    if (block != stack_block) free(block);
    return st;
}
