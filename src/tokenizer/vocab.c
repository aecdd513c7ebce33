/* vocab.c - building the lookup tables of a loaded vocabulary (see vocab.h). */
#include "tokenizer/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix: cheap and good enough */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    return h * 0xbf58476d1ce4e5b9ull;
}

static uint32_t pow2_at_least(size_t n) {
    uint32_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

gemma2_tokenizer *g2_tok_new(int32_t n, gemma2_tokenizer_source src) {
    gemma2_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->source = src;
    t->n = n;
    t->off = calloc((size_t)n + 1, sizeof *t->off);
    t->score = calloc((size_t)n + 1, sizeof *t->score);
    t->type = calloc((size_t)n + 1, 1);
    t->blob_cap = (size_t)n * 8 + 64;
    t->blob = malloc(t->blob_cap);
    if (!t->off || !t->score || !t->type || !t->blob) {
        gemma2_tokenizer_free(t);
        return NULL;
    }
    t->byte_fallback = 1;
    t->escape_whitespaces = 1;
    strcpy(t->unk_surface, " \xE2\x81\x87 ");
    t->bos = t->eos = t->pad = t->unk = t->sot = t->eot = -1;
    return t;
}

gemma2_status g2_tok_set_piece(gemma2_tokenizer *t, int32_t id, const char *s, size_t len, float score,
                               int type, gemma2_error *err) {
    if (id < 0 || id >= t->n) return g2_fail(err, GEMMA2_ERR_ARG, "piece id %d out of range", (int)id);
    if (t->blob_len != t->off[id]) return g2_fail(err, GEMMA2_ERR_ARG, "pieces must be set in id order");
    if (len > 0xFFFF) return g2_fail(err, GEMMA2_ERR_FORMAT, "piece %d is %zu bytes long", (int)id, len);
    if (type < GEMMA2_PIECE_NORMAL || type > GEMMA2_PIECE_BYTE)
        return g2_fail(err, GEMMA2_ERR_FORMAT, "piece %d has unknown type %d", (int)id, type);
    if (t->blob_len + len > t->blob_cap) {
        size_t cap = t->blob_cap * 2 + len;
        char *b = realloc(t->blob, cap);
        if (!b) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory for pieces");
        t->blob = b;
        t->blob_cap = cap;
    }
    memcpy(t->blob + t->blob_len, s, len);
    t->blob_len += len;
    t->off[id + 1] = (uint32_t)t->blob_len;
    t->score[id] = score;
    t->type[id] = (uint8_t)type;
    return GEMMA2_OK;
}

int32_t g2_tok_lookup(const gemma2_tokenizer *t, const char *s, size_t len) {
    uint32_t i = (uint32_t)(hash_bytes(s, len) >> 32) & t->ptab_mask;
    for (;;) {
        int32_t id = t->ptab[i];
        if (id < 0) return -1;
        size_t l;
        const char *p = g2_tok_text(t, id, &l);
        if (l == len && memcmp(p, s, len) == 0) return id;
        i = (i + 1) & t->ptab_mask;
    }
}

static uint32_t cp_slot(const gemma2_tokenizer *t, uint32_t cp) {
    uint32_t i = (uint32_t)(((uint64_t)cp * 0x9E3779B97F4A7C15ull) >> 40) & t->cp_mask;
    while (t->cp_keys[2 * i] != 0 && t->cp_keys[2 * i] != cp) i = (i + 1) & t->cp_mask;
    return i;
}

int32_t g2_tok_cp_key(const gemma2_tokenizer *t, uint32_t cp) {
    if (cp < 65536) return t->key_bmp[cp];
    uint32_t i = cp_slot(t, cp);
    return t->cp_keys[2 * i] == cp ? (int32_t)t->cp_keys[2 * i + 1] : -1;
}

/* Sets the key of a character. The table of characters above the BMP starts small (Gemma has a
 * few thousand) and doubles when half full. */
static int cp_set(gemma2_tokenizer *t, uint32_t cp, int32_t key) {
    if (cp < 65536) {
        t->key_bmp[cp] = key;
        return 0;
    }
    if (2 * (t->n_cp + 1) > t->cp_mask + 1) {
        uint32_t old_cap = t->cp_mask + 1;
        uint32_t *old = t->cp_keys;
        uint32_t *nt = calloc((size_t)old_cap * 4, sizeof *nt);
        if (!nt) return -1;
        t->cp_keys = nt;
        t->cp_mask = old_cap * 2 - 1;
        for (uint32_t i = 0; i < old_cap; i++)
            if (old[2 * i]) {
                uint32_t j = cp_slot(t, old[2 * i]);
                t->cp_keys[2 * j] = old[2 * i];
                t->cp_keys[2 * j + 1] = old[2 * i + 1];
            }
        free(old);
    }
    uint32_t i = cp_slot(t, cp);
    if (t->cp_keys[2 * i] == 0) t->n_cp++;
    t->cp_keys[2 * i] = cp;
    t->cp_keys[2 * i + 1] = (uint32_t)key;
    return 0;
}

/* The merge key of a split part: a mergeable piece, or a single character (which gets an
 * extra key if it has none yet). -1: this split can never happen. */
static int32_t part_key(gemma2_tokenizer *t, const char *s, size_t len) {
    uint32_t cp;
    int cl = g2_utf8_decode((const uint8_t *)s, len, &cp);
    if (cl > 0 && (size_t)cl == len) {
        int32_t k = g2_tok_cp_key(t, cp);
        if (k < 0) {
            k = t->n_keys++;
            if (cp_set(t, cp, k)) return -2;
        }
        return k;
    }
    int32_t id = g2_tok_lookup(t, s, len);
    return (id >= 0 && g2_type_mergeable(t->type[id])) ? id : -1;
}

static int pair_insert(gemma2_tokenizer *t, int32_t l, int32_t r, int32_t id) {
    uint64_t k = (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
    uint64_t h = k * 0x9E3779B97F4A7C15ull;
    uint32_t i = (uint32_t)(h >> 40) & t->pair_mask;
    while (t->pairs[i].key != 0) {
        if (t->pairs[i].key == k) return 0;
        i = (i + 1) & t->pair_mask;
    }
    t->pairs[i].key = k;
    t->pairs[i].id = id;
    t->pairs[i].score = t->score[id];
    t->n_pairs++;
    return 1;
}

static gemma2_status trie_add(gemma2_tokenizer *t, const char *s, size_t len, int32_t id, int control,
                              gemma2_error *err) {
    if (len == 0) return GEMMA2_OK;
    if (t->n_trie == 0) {
        t->cap_trie = 256;
        t->trie = malloc((size_t)t->cap_trie * sizeof *t->trie);
        if (!t->trie) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
        t->trie[0] = (g2_trie_node){-1, -1, -1, -1, 0};
        t->n_trie = 1;
    }
    int32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)s[i];
        int32_t c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != b) c = t->trie[c].sibling;
        if (c < 0) {
            if (t->n_trie == t->cap_trie) {
                g2_trie_node *nt = realloc(t->trie, (size_t)t->cap_trie * 2 * sizeof *nt);
                if (!nt) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
                t->trie = nt;
                t->cap_trie *= 2;
            }
            c = t->n_trie++;
            t->trie[c] = (g2_trie_node){-1, t->trie[node].child, -1, -1, b};
            t->trie[node].child = c;
        }
        node = c;
    }
    if (control) {
        if (t->trie[node].ctl_id < 0) t->trie[node].ctl_id = id;
    } else if (t->trie[node].ud_id < 0) {
        t->trie[node].ud_id = id;
    }
    t->first_byte[(uint8_t)s[0]] |= control ? 2 : 1;
    return GEMMA2_OK;
}

static int32_t find_named(const gemma2_tokenizer *t, const char *name) {
    return g2_tok_lookup(t, name, strlen(name));
}

gemma2_status g2_tok_finish(gemma2_tokenizer *t, const char *name, gemma2_error *err) {
    if (t->n <= 0) return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: the vocabulary is empty", name);
    if (t->off[t->n] != t->blob_len) return g2_fail(err, GEMMA2_ERR_ARG, "%s: not every piece was set", name);

    /* piece text -> id; the first of two equal pieces wins, as the duplicate is an error below */
    uint32_t cap = pow2_at_least((size_t)t->n * 2);
    t->ptab = malloc((size_t)cap * sizeof *t->ptab);
    if (!t->ptab) return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", name);
    memset(t->ptab, 0xff, (size_t)cap * sizeof *t->ptab);
    t->ptab_mask = cap - 1;
    for (int32_t id = 0; id < t->n; id++) {
        size_t len;
        const char *s = g2_tok_text(t, id, &len);
        uint32_t i = (uint32_t)(hash_bytes(s, len) >> 32) & t->ptab_mask;
        for (;;) {
            int32_t o = t->ptab[i];
            if (o < 0) {
                t->ptab[i] = id;
                break;
            }
            size_t ol;
            const char *os = g2_tok_text(t, o, &ol);
            if (ol == len && memcmp(os, s, len) == 0)
                return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: piece %d \"%.*s\" is already piece %d", name, (int)id,
                               (int)(len > 40 ? 40 : len), s, (int)o);
            i = (i + 1) & t->ptab_mask;
        }
    }

    /* byte pieces and special ids */
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    int n_bytes = 0;
    for (int32_t id = 0; id < t->n; id++) {
        size_t len;
        const char *s = g2_tok_text(t, id, &len);
        switch (t->type[id]) {
        case GEMMA2_PIECE_BYTE: {
            unsigned v;
            char tail;
            char tmp[8];
            if (len != 6 || (memcpy(tmp, s, 6), tmp[6] = 0, sscanf(tmp, "<0x%2X%c", &v, &tail) != 2) || tail != '>')
                return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: byte piece %d is \"%.*s\", not <0xXX>", name, (int)id,
                               (int)(len > 20 ? 20 : len), s);
            if (t->byte_id[v] < 0) n_bytes++;
            t->byte_id[v] = id;
            break;
        }
        case GEMMA2_PIECE_UNKNOWN:
            if (t->unk < 0) t->unk = id;
            break;
        default: break;
        }
    }
    if (t->bos < 0) t->bos = find_named(t, "<bos>");
    if (t->eos < 0) t->eos = find_named(t, "<eos>");
    if (t->pad < 0) t->pad = find_named(t, "<pad>");
    t->sot = find_named(t, "<start_of_turn>");
    t->eot = find_named(t, "<end_of_turn>");
    if (t->byte_fallback && n_bytes != 256)
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: byte fallback is on but only %d of the 256 byte pieces exist",
                       name, n_bytes);
    if (!t->byte_fallback && t->unk < 0)
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: the vocabulary has neither byte pieces nor <unk>", name);

    /* single-character keys */
    t->key_bmp = malloc(65536 * sizeof *t->key_bmp);
    t->cp_mask = 1023;
    t->cp_keys = calloc(((size_t)t->cp_mask + 1) * 2, sizeof *t->cp_keys);
    if (!t->key_bmp || !t->cp_keys) return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", name);
    memset(t->key_bmp, 0xff, 65536 * sizeof *t->key_bmp);
    t->n_keys = t->n;
    for (int32_t id = 0; id < t->n; id++) {
        if (!g2_type_mergeable(t->type[id])) continue;
        size_t len;
        const char *s = g2_tok_text(t, id, &len);
        uint32_t cp;
        int cl = g2_utf8_decode((const uint8_t *)s, len, &cp);
        if (cl > 0 && (size_t)cl == len && g2_tok_cp_key(t, cp) < 0 && cp_set(t, cp, id))
            return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", name);
    }

    /* the pair table: every split of every mergeable piece into two mergeable parts. Pass 0
     * counts (and gives split-off characters their keys), pass 1 fills a table of 1.5x-2x that. */
    for (int pass = 0; pass < 2; pass++) {
        size_t count = 0;
        for (int32_t id = 0; id < t->n; id++) {
            if (!g2_type_mergeable(t->type[id])) continue;
            size_t len;
            const char *s = g2_tok_text(t, id, &len);
            uint32_t cp;
            int cl = g2_utf8_decode((const uint8_t *)s, len, &cp);
            if (cl <= 0) continue; /* pieces that are not valid UTF-8 can never be formed */
            for (size_t k = (size_t)cl; k < len;) {
                int32_t l = part_key(t, s, k);
                int32_t r = l >= 0 ? part_key(t, s + k, len - k) : -1;
                if (l == -2 || r == -2) return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", name);
                if (l >= 0 && r >= 0) {
                    if (pass == 0) count++;
                    else pair_insert(t, l, r, id);
                }
                cl = g2_utf8_decode((const uint8_t *)s + k, len - k, &cp);
                if (cl <= 0) break;
                k += (size_t)cl;
            }
        }
        if (pass == 0) {
            t->pair_mask = pow2_at_least(count + count / 2 + 64) - 1;
            t->pairs = calloc((size_t)t->pair_mask + 1, sizeof *t->pairs);
            if (!t->pairs) return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", name);
        }
    }

    /* the user-defined matcher, and the control pieces for parse_control */
    memset(t->first_byte, 0, sizeof t->first_byte);
    for (int32_t id = 0; id < t->n; id++) {
        size_t len;
        const char *s = g2_tok_text(t, id, &len);
        int ty = t->type[id];
        if (ty == GEMMA2_PIECE_USER_DEFINED || ty == GEMMA2_PIECE_CONTROL || ty == GEMMA2_PIECE_UNKNOWN) {
            gemma2_status st = trie_add(t, s, len, id, ty != GEMMA2_PIECE_USER_DEFINED, err);
            if (st) return st;
        }
    }
    return GEMMA2_OK;
}

void gemma2_tokenizer_free(gemma2_tokenizer *t) {
    if (!t) return;
    free(t->blob);
    free(t->off);
    free(t->score);
    free(t->type);
    free(t->ptab);
    free(t->key_bmp);
    free(t->cp_keys);
    free(t->pairs);
    free(t->trie);
    free(t);
}

size_t gemma2_tokenizer_memory_bytes(const gemma2_tokenizer *t) {
    if (!t) return 0;
    size_t n = sizeof *t + t->blob_cap + ((size_t)t->n + 1) * (sizeof *t->off + sizeof *t->score + 1);
    if (t->ptab) n += ((size_t)t->ptab_mask + 1) * sizeof *t->ptab;
    if (t->key_bmp) n += 65536 * sizeof *t->key_bmp;
    if (t->cp_keys) n += ((size_t)t->cp_mask + 1) * 2 * sizeof *t->cp_keys;
    if (t->pairs) n += ((size_t)t->pair_mask + 1) * sizeof *t->pairs;
    n += (size_t)t->cap_trie * sizeof *t->trie;
    return n;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

int g2_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        if (n < 2 || (s[1] & 0xC0) != 0x80) return 0;
        *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        uint32_t v = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        if (v < 0x800 || (v >= 0xD800 && v < 0xE000)) return 0;
        *cp = v;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        uint32_t v = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                     ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        if (v < 0x10000 || v > 0x10FFFF) return 0;
        *cp = v;
        return 4;
    }
    return 0;
}

int g2_utf8_encode(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- buffers -------------------------------------------------------------- */

gemma2_status g2_tokbuf_reserve(gemma2_token_buf *b, size_t extra, gemma2_error *err) {
    if (b->n + extra <= b->cap) return GEMMA2_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra) cap *= 2;
    int32_t *p = realloc(b->ids, cap * sizeof *p);
    if (!p) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory for %zu token ids", cap);
    b->ids = p;
    b->cap = cap;
    return GEMMA2_OK;
}

gemma2_status g2_textbuf_append(gemma2_text_buf *b, const char *s, size_t n, gemma2_error *err) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory for %zu bytes of text", cap);
        b->data = p;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
    return GEMMA2_OK;
}

void gemma2_token_buf_free(gemma2_token_buf *b) {
    if (!b) return;
    free(b->ids);
    b->ids = NULL;
    b->n = b->cap = 0;
}

void gemma2_text_buf_free(gemma2_text_buf *b) {
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
