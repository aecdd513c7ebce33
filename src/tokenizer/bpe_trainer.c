/* bpe_trainer.c - learning a small SentencePiece BPE model with Gemma's settings.
 *
 * What SentencePiece's BPE trainer does, reduced to what a small model needs:
 *   1. Normalize as the encoder does (' ' -> `▁`, invalid UTF-8 -> U+FFFD) and cut every sentence
 *      into words: a word starts at a `▁` that follows a non-`▁` character (so runs of spaces stay
 *      with the next word, as SentencePiece's SplitIntoWords with allow_whitespace_only_pieces).
 *      User-defined pieces are cut out of the text first (they are matched before BPE anyway).
 *   2. Keep the most frequent characters covering `character_coverage` of all characters; the
 *      others become byte fallback and are barriers that no merge crosses.
 *   3. Count adjacent symbol pairs over the distinct words (weighted by word frequency) and merge
 *      the most frequent valid pair, again and again. A merged piece is valid when it is all `▁`,
 *      or has `▁` only in front; has no digit unless it is one character (split_digits); does not
 *      mix scripts (Latin, Han+Kana, Hangul, Cyrillic, ..., "common" punctuation and symbols are
 *      each their own class: an approximation of SentencePiece's Unicode-script rule); and has
 *      at most max_piece_chars characters. The counts live in a hash table with a lazy max-heap
 *      and a list of the words where each pair occurs, so a merge only touches those words.
 *   4. The k-th merge gets score -k. The encoder merges by score, so encoding replays the learned
 *      merges in order; the file is a plain ModelProto that SentencePiece loads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/protobuf.h"
#include "tokenizer/vocab.h"
#include "util/error.h"

gemma2_train_options gemma2_train_default_options(void) {
    gemma2_train_options o = {8000, 0.9995, 16, NULL, 1};
    return o;
}

/* ---- small containers --------------------------------------------------------- */

typedef struct {
    char *s;
    uint32_t len;
    int nchars;
    int cls; /* script class of the non-`▁` characters: -1 none yet, -2 mixed (invalid) */
    int ws_only, ws_inside, has_ws, digit;
} tpiece;

typedef struct {
    uint64_t *keys; /* pair (a << 32 | b) + 1; 0 empty */
    int64_t *count;
    int32_t *wl_head; /* index into word-list nodes, -1 */
    uint32_t mask, used;
} pair_map;

typedef struct {
    int64_t count;
    int32_t a, b;
} heap_ent;

typedef struct {
    int32_t *syms;
    int32_t n;
    int64_t freq;
    uint32_t stamp;
} tword;

typedef struct {
    int32_t word, next;
} wnode;

typedef struct {
    tpiece *p;
    int32_t n, cap;
    /* string -> piece id */
    int32_t *tab;
    uint32_t tmask;
    pair_map pm;
    heap_ent *heap;
    size_t nh, caph;
    wnode *wn;
    size_t nwn, capwn;
    tword *words;
    size_t nw, capw;
    int32_t *wtab; /* word hash table -> word index */
    uint32_t wmask;
    int oom;
} trainer;

static uint64_t hs(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ull;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* ---- character classes ---------------------------------------------------------- */

enum { CL_WS = 0, CL_DIGIT, CL_LATIN, CL_COMMON, CL_HAN, CL_HANGUL, CL_CYRILLIC, CL_GREEK, CL_ARABIC,
       CL_HEBREW, CL_INDIC, CL_THAI, CL_OTHER };

static int char_class(uint32_t c) {
    if (c == 0x2581) return CL_WS;
    if (c >= '0' && c <= '9') return CL_DIGIT;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) ||
        (c >= 0x1E00 && c <= 0x1EFF))
        return CL_LATIN;
    if (c < 0xC0 || (c >= 0x2000 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F) || (c >= 0xFF00 && c <= 0xFF20) ||
        c >= 0x1F000)
        return CL_COMMON;
    if ((c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) ||
        (c >= 0x20000 && c <= 0x3FFFF))
        return CL_HAN;
    if ((c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x1100 && c <= 0x11FF) || (c >= 0x3130 && c <= 0x318F)) return CL_HANGUL;
    if (c >= 0x400 && c <= 0x52F) return CL_CYRILLIC;
    if (c >= 0x370 && c <= 0x3FF) return CL_GREEK;
    if (c >= 0x600 && c <= 0x6FF) return CL_ARABIC;
    if (c >= 0x590 && c <= 0x5FF) return CL_HEBREW;
    if (c >= 0x900 && c <= 0xDFF) return CL_INDIC;
    if (c >= 0xE00 && c <= 0xE7F) return CL_THAI;
    return CL_OTHER;
}

/* ---- pieces ------------------------------------------------------------------------ */

static int32_t piece_find(const trainer *t, const char *s, size_t n) {
    uint32_t i = (uint32_t)(hs(s, n) >> 32) & t->tmask;
    for (;;) {
        int32_t id = t->tab[i];
        if (id < 0 || (t->p[id].len == n && memcmp(t->p[id].s, s, n) == 0)) return id;
        i = (i + 1) & t->tmask;
    }
}

/* Adds a piece (the string is copied); the caller checks it is new. Returns the id or -1. */
static int32_t piece_add(trainer *t, const char *s, size_t n) {
    if (t->n == t->cap) {
        int32_t cap = t->cap ? t->cap * 2 : 1024;
        tpiece *p = realloc(t->p, (size_t)cap * sizeof *p);
        if (!p) return -1;
        t->p = p;
        t->cap = cap;
    }
    if ((uint32_t)t->n * 2 + 2 > t->tmask + 1) {
        uint32_t cap = (t->tmask + 1) * 2;
        int32_t *nt = malloc(cap * sizeof *nt);
        if (!nt) return -1;
        memset(nt, 0xff, cap * sizeof *nt);
        free(t->tab);
        t->tab = nt;
        t->tmask = cap - 1;
        for (int32_t id = 0; id < t->n; id++) {
            uint32_t i = (uint32_t)(hs(t->p[id].s, t->p[id].len) >> 32) & t->tmask;
            while (t->tab[i] >= 0) i = (i + 1) & t->tmask;
            t->tab[i] = id;
        }
    }
    tpiece *p = &t->p[t->n];
    memset(p, 0, sizeof *p);
    p->s = malloc(n + 1);
    if (!p->s) return -1;
    memcpy(p->s, s, n);
    p->s[n] = 0;
    p->len = (uint32_t)n;
    p->cls = -1;
    p->ws_only = n > 0;
    for (size_t k = 0; k < n;) {
        uint32_t cp = 0;
        int cl = g2_utf8_decode((const uint8_t *)s + k, n - k, &cp);
        if (cl <= 0) cl = 1, cp = 0xFFFD;
        int c = char_class(cp);
        p->nchars++;
        if (c == CL_WS) {
            p->has_ws = 1;
            if (k > 0) p->ws_inside = 1;
        } else {
            p->ws_only = 0;
            if (c == CL_DIGIT) p->digit = 1;
            if (p->cls == -1) p->cls = c;
            else if (p->cls != c) p->cls = -2;
        }
        k += (size_t)cl;
    }
    uint32_t i = (uint32_t)(hs(s, n) >> 32) & t->tmask;
    while (t->tab[i] >= 0) i = (i + 1) & t->tmask;
    t->tab[i] = t->n;
    return t->n++;
}

/* Can a and b merge into a valid piece (see the header comment)? */
static int merge_valid(const trainer *t, int32_t a, int32_t b, int max_chars) {
    const tpiece *x = &t->p[a], *y = &t->p[b];
    if (x->nchars + y->nchars > max_chars) return 0;
    if (x->ws_only && y->ws_only) return 1;
    if (y->has_ws) return 0;              /* `▁` only in front */
    if (x->ws_only ? x->nchars != 1 : x->ws_inside) return 0;
    if (x->digit || y->digit) return 0;   /* split_digits */
    if (x->cls == -2 || y->cls == -2) return 0;
    if (x->cls >= 0 && y->cls >= 0 && x->cls != y->cls) return 0;
    return 1;
}

/* ---- pair counts ------------------------------------------------------------------ */

static uint32_t pm_slot(trainer *t, int32_t a, int32_t b, int create) {
    pair_map *m = &t->pm;
    if (create && (m->used + 1) * 2 > m->mask + 1) {
        pair_map o = *m;
        uint32_t cap = (o.mask + 1) * 2;
        m->keys = calloc(cap, sizeof *m->keys);
        m->count = malloc(cap * sizeof *m->count);
        m->wl_head = malloc(cap * sizeof *m->wl_head);
        if (!m->keys || !m->count || !m->wl_head) {
            free(m->keys), free(m->count), free(m->wl_head);
            *m = o;
            t->oom = 1;
            return UINT32_MAX;
        }
        m->mask = cap - 1;
        for (uint32_t i = 0; i <= o.mask; i++) {
            if (!o.keys[i]) continue;
            uint32_t j = (uint32_t)((o.keys[i] * 0x9E3779B97F4A7C15ull) >> 40) & m->mask;
            while (m->keys[j]) j = (j + 1) & m->mask;
            m->keys[j] = o.keys[i];
            m->count[j] = o.count[i];
            m->wl_head[j] = o.wl_head[i];
        }
        free(o.keys), free(o.count), free(o.wl_head);
    }
    uint64_t k = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint32_t i = (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 40) & m->mask;
    while (m->keys[i] && m->keys[i] != k) i = (i + 1) & m->mask;
    if (!m->keys[i]) {
        if (!create) return UINT32_MAX;
        m->keys[i] = k;
        m->count[i] = 0;
        m->wl_head[i] = -1;
        m->used++;
    }
    return i;
}

static void heap_push(trainer *t, int64_t count, int32_t a, int32_t b) {
    if (grow((void **)&t->heap, &t->caph, t->nh + 1, sizeof *t->heap)) {
        t->oom = 1;
        return;
    }
    heap_ent e = {count, a, b};
    size_t i = t->nh++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        const heap_ent *q = &t->heap[p];
        int before = e.count > q->count || (e.count == q->count && (e.a < q->a || (e.a == q->a && e.b < q->b)));
        if (!before) break;
        t->heap[i] = *q;
        i = p;
    }
    t->heap[i] = e;
}

static heap_ent heap_pop(trainer *t) {
    heap_ent top = t->heap[0], last = t->heap[--t->nh];
    size_t i = 0, n = t->nh;
    for (;;) {
        size_t l = 2 * i + 1, c;
        if (l >= n) break;
        c = l;
        if (l + 1 < n) {
            const heap_ent *x = &t->heap[l + 1], *y = &t->heap[l];
            if (x->count > y->count || (x->count == y->count && (x->a < y->a || (x->a == y->a && x->b < y->b)))) c = l + 1;
        }
        const heap_ent *q = &t->heap[c];
        if (!(q->count > last.count || (q->count == last.count && (q->a < last.a || (q->a == last.a && q->b < last.b)))))
            break;
        t->heap[i] = *q;
        i = c;
    }
    if (n) t->heap[i] = last;
    return top;
}

/* count(a, b) += delta; a positive change also records the word and pushes the new count. */
static void pm_add(trainer *t, int32_t a, int32_t b, int64_t delta, int32_t word) {
    if (a < 0 || b < 0) return;
    uint32_t i = pm_slot(t, a, b, 1);
    if (i == UINT32_MAX) return;
    t->pm.count[i] += delta;
    if (delta > 0) {
        if (word >= 0) {
            if (grow((void **)&t->wn, &t->capwn, t->nwn + 1, sizeof *t->wn)) {
                t->oom = 1;
                return;
            }
            t->wn[t->nwn] = (wnode){word, t->pm.wl_head[i]};
            t->pm.wl_head[i] = (int32_t)t->nwn++;
        }
        heap_push(t, t->pm.count[i], a, b);
    }
}

/* ---- words -------------------------------------------------------------------------- */

/* Adds one occurrence of the word (normalized bytes) to the word table. */
static void add_word(trainer *t, const char *s, size_t n) {
    if (n == 0) return;
    if ((t->nw + 1) * 2 > (size_t)t->wmask + 1) {
        uint32_t cap = t->wmask ? (t->wmask + 1) * 2 : 1024;
        int32_t *nt = malloc(cap * sizeof *nt);
        if (!nt) {
            t->oom = 1;
            return;
        }
        memset(nt, 0xff, cap * sizeof *nt);
        for (size_t w = 0; w < t->nw; w++) {
            const char *ws = (const char *)t->words[w].syms; /* until symbols are made, syms holds the text */
            uint32_t i = (uint32_t)(hs(ws, (size_t)t->words[w].n) >> 32) & (cap - 1);
            while (nt[i] >= 0) i = (i + 1) & (cap - 1);
            nt[i] = (int32_t)w;
        }
        free(t->wtab);
        t->wtab = nt;
        t->wmask = cap - 1;
    }
    uint32_t i = (uint32_t)(hs(s, n) >> 32) & t->wmask;
    while (t->wtab[i] >= 0) {
        tword *w = &t->words[t->wtab[i]];
        if ((size_t)w->n == n && memcmp(w->syms, s, n) == 0) {
            w->freq++;
            return;
        }
        i = (i + 1) & t->wmask;
    }
    if (grow((void **)&t->words, &t->capw, t->nw + 1, sizeof *t->words)) {
        t->oom = 1;
        return;
    }
    char *copy = malloc(n);
    if (!copy) {
        t->oom = 1;
        return;
    }
    memcpy(copy, s, n);
    t->words[t->nw] = (tword){(int32_t *)(void *)copy, (int32_t)n, 1, 0};
    t->wtab[i] = (int32_t)t->nw++;
}

/* Normalizes a sentence and cuts it into words (see the header comment). */
static void split_sentence(trainer *t, const char *text, size_t len, const char *const *ud, char **buf,
                           size_t *cap) {
    if (grow((void **)buf, cap, 3 * len + 1, 1)) {
        t->oom = 1;
        return;
    }
    char *o = *buf;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int cl = g2_utf8_decode((const uint8_t *)text + i, len - i, &cp);
        if (cl == 0) {
            memcpy(o + n, "\xEF\xBF\xBD", 3), n += 3, i++;
        } else if (text[i] == ' ') {
            memcpy(o + n, "\xE2\x96\x81", 3), n += 3, i++;
        } else {
            memcpy(o + n, text + i, (size_t)cl), n += (size_t)cl, i += (size_t)cl;
        }
    }
    size_t start = 0;
    int prev_ws = 0;
    for (size_t i = 0; i < n;) {
        size_t m = 0;
        for (const char *const *u = ud; *u; u++) {
            size_t ul = strlen(*u);
            if (ul > m && ul <= n - i && memcmp(o + i, *u, ul) == 0) m = ul;
        }
        if (m) { /* user-defined piece: not trained on, a word boundary */
            add_word(t, o + start, i - start);
            i += m;
            start = i;
            prev_ws = 0;
            continue;
        }
        int is_ws = n - i >= 3 && memcmp(o + i, "\xE2\x96\x81", 3) == 0;
        if (is_ws && !prev_ws && i > start) {
            add_word(t, o + start, i - start);
            start = i;
        }
        prev_ws = is_ws;
        uint32_t cp;
        int cl = g2_utf8_decode((const uint8_t *)o + i, n - i, &cp);
        i += cl > 0 ? (size_t)cl : 1;
    }
    add_word(t, o + start, n - start);
}

typedef struct {
    uint32_t cp;
    int64_t count;
} char_count;

static int cmp_chars(const void *x, const void *y) {
    const char_count *a = x, *b = y;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return a->cp < b->cp ? -1 : a->cp > b->cp;
}

/* ---- training ---------------------------------------------------------------------------- */

static void merge_in_word(trainer *t, int32_t w, int32_t a, int32_t b, int32_t nid) {
    tword *wd = &t->words[w];
    int64_t f = wd->freq;
    int32_t *s = wd->syms;
    for (int32_t i = 0; i + 1 < wd->n;) {
        if (s[i] != a || s[i + 1] != b) {
            i++;
            continue;
        }
        if (i > 0) {
            pm_add(t, s[i - 1], a, -f, -1);
            pm_add(t, s[i - 1], nid, f, w);
        }
        if (i + 2 < wd->n) {
            pm_add(t, b, s[i + 2], -f, -1);
            pm_add(t, nid, s[i + 2], f, w);
        }
        pm_add(t, a, b, -f, -1);
        s[i] = nid;
        memmove(s + i + 1, s + i + 2, (size_t)(wd->n - i - 2) * sizeof *s);
        wd->n--;
        i++;
    }
}

static void free_trainer(trainer *t) {
    for (int32_t i = 0; i < t->n; i++) free(t->p[i].s);
    free(t->p);
    free(t->tab);
    free(t->pm.keys);
    free(t->pm.count);
    free(t->pm.wl_head);
    free(t->heap);
    free(t->wn);
    for (size_t w = 0; w < t->nw; w++) free(t->words[w].syms);
    free(t->words);
    free(t->wtab);
}

static void write_model(g2_pb_writer *w, const trainer *t, const int32_t *order, int32_t n, const float *score,
                        const uint8_t *type, const gemma2_train_options *o) {
    for (int32_t i = 0; i < n; i++) {
        g2_pb_writer p = {0};
        const tpiece *pc = &t->p[order[i]];
        g2_pb_bytes_field(&p, 1, pc->s, pc->len);
        g2_pb_float_field(&p, 2, score[i]);
        if (type[i] != GEMMA2_PIECE_NORMAL) g2_pb_varint_field(&p, 3, type[i]);
        if (p.oom) w->oom = 1;
        g2_pb_bytes_field(w, 1, p.data, p.len);
        free(p.data);
    }
    g2_pb_writer ts = {0};
    g2_pb_varint_field(&ts, 3, 2); /* BPE */
    g2_pb_varint_field(&ts, 4, (uint64_t)n);
    g2_pb_float_field(&ts, 10, (float)o->character_coverage);
    g2_pb_varint_field(&ts, 20, (uint64_t)o->max_piece_chars);
    g2_pb_varint_field(&ts, 21, 1); /* split_by_unicode_script */
    g2_pb_varint_field(&ts, 22, 1); /* split_by_whitespace */
    g2_pb_varint_field(&ts, 23, 1); /* split_by_number */
    g2_pb_varint_field(&ts, 25, 1); /* split_digits */
    g2_pb_varint_field(&ts, 26, 1); /* allow_whitespace_only_pieces */
    g2_pb_varint_field(&ts, 35, 1); /* byte_fallback */
    g2_pb_varint_field(&ts, 32, 1); /* vocabulary_output_piece_score */
    g2_pb_varint_field(&ts, 40, 3);
    g2_pb_varint_field(&ts, 41, 2);
    g2_pb_varint_field(&ts, 42, 1);
    g2_pb_varint_field(&ts, 43, 0);
    g2_pb_string_field(&ts, 45, "<unk>");
    g2_pb_string_field(&ts, 46, "<bos>");
    g2_pb_string_field(&ts, 47, "<eos>");
    g2_pb_string_field(&ts, 48, "<pad>");
    g2_pb_string_field(&ts, 44, " \xE2\x81\x87 ");
    if (ts.oom) w->oom = 1;
    g2_pb_bytes_field(w, 2, ts.data, ts.len);
    free(ts.data);
    g2_pb_writer ns = {0};
    g2_pb_string_field(&ns, 1, "identity");
    g2_pb_bytes_field(&ns, 2, "", 0);
    g2_pb_varint_field(&ns, 3, 0); /* add_dummy_prefix */
    g2_pb_varint_field(&ns, 4, 0); /* remove_extra_whitespaces */
    g2_pb_varint_field(&ns, 5, 1); /* escape_whitespaces */
    if (ns.oom) w->oom = 1;
    g2_pb_bytes_field(w, 3, ns.data, ns.len);
    free(ns.data);
}

gemma2_status gemma2_train_bpe(const char *const *texts, const size_t *lens, size_t n_texts,
                               const gemma2_train_options *opt, uint8_t **out_model, size_t *out_size,
                               gemma2_error *err) {
    gemma2_train_options o = opt ? *opt : gemma2_train_default_options();
    *out_model = NULL;
    *out_size = 0;
    if (o.max_piece_chars <= 0) o.max_piece_chars = 16;
    if (o.character_coverage <= 0 || o.character_coverage > 1)
        return g2_fail(err, GEMMA2_ERR_ARG, "character coverage %g is not in (0, 1]", o.character_coverage);
    trainer t = {0};
    t.tmask = 1023;
    t.tab = malloc(1024 * sizeof *t.tab);
    t.pm.mask = 1023;
    t.pm.keys = calloc(1024, sizeof *t.pm.keys);
    t.pm.count = malloc(1024 * sizeof *t.pm.count);
    t.pm.wl_head = malloc(1024 * sizeof *t.pm.wl_head);
    gemma2_status st = GEMMA2_OK;
    char *buf = NULL;
    size_t bufcap = 0;
    char_count *cc = NULL;
    int32_t *order = NULL;
    float *score = NULL;
    uint8_t *type = NULL;
    const char **ud = NULL;
    if (!t.tab || !t.pm.keys || !t.pm.count || !t.pm.wl_head) goto oom;
    memset(t.tab, 0xff, 1024 * sizeof *t.tab);

    /* reserved pieces: specials, user-defined, bytes */
    static const char *const specials[] = {"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"};
    size_t n_ud_extra = 0;
    while (o.user_defined && o.user_defined[n_ud_extra]) n_ud_extra++;
    ud = calloc(n_ud_extra + 3, sizeof *ud);
    if (!ud) goto oom;
    ud[0] = specials[4];
    ud[1] = specials[5];
    for (int i = 0; i < 6; i++)
        if (piece_add(&t, specials[i], strlen(specials[i])) < 0) goto oom;
    for (size_t i = 0; i < n_ud_extra; i++) {
        const char *u = o.user_defined[i];
        if (!*u || strchr(u, ' ') || piece_find(&t, u, strlen(u)) >= 0) {
            st = g2_fail(err, GEMMA2_ERR_ARG, "user-defined piece \"%s\" is empty, has a space or is a duplicate", u);
            goto done;
        }
        if (piece_add(&t, u, strlen(u)) < 0) goto oom;
        ud[2 + i] = u;
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        if (piece_find(&t, name, 6) >= 0) {
            st = g2_fail(err, GEMMA2_ERR_ARG, "user-defined piece %s is a byte piece", name);
            goto done;
        }
        if (piece_add(&t, name, 6) < 0) goto oom;
    }
    int32_t n_reserved = t.n;
    if (o.vocab_size < n_reserved + 1)
        return free_trainer(&t), free(ud),
               g2_fail(err, GEMMA2_ERR_ARG, "vocab size %d is too small: %d pieces are reserved", o.vocab_size, n_reserved);

    /* words */
    for (size_t i = 0; i < n_texts && !t.oom; i++) split_sentence(&t, texts[i], lens[i], ud, &buf, &bufcap);
    if (t.oom) goto oom;
    if (t.nw == 0) {
        st = g2_fail(err, GEMMA2_ERR_ARG, "no training text");
        goto done;
    }

    /* characters: count, keep the most frequent covering `character_coverage` */
    size_t ncc = 0, capcc = 0;
    {
        uint32_t cmask = 4095;
        char_count *map = calloc(cmask + 1, sizeof *map);
        size_t used = 0;
        int64_t total = 0;
        if (!map) goto oom;
        for (size_t w = 0; w < t.nw && map; w++) {
            const uint8_t *s = (const uint8_t *)t.words[w].syms;
            for (int32_t k = 0; k < t.words[w].n;) {
                uint32_t cp;
                int cl = g2_utf8_decode(s + k, (size_t)(t.words[w].n - k), &cp);
                if (cl <= 0) cl = 1, cp = 0xFFFD;
                k += cl;
                total += t.words[w].freq;
                if ((used + 1) * 2 > cmask + 1) {
                    uint32_t nmask = cmask * 2 + 1;
                    char_count *nm = calloc(nmask + 1, sizeof *nm);
                    if (!nm) {
                        free(map);
                        map = NULL;
                        break;
                    }
                    for (uint32_t j = 0; j <= cmask; j++)
                        if (map[j].cp) {
                            uint32_t q = (map[j].cp * 2654435761u) & nmask;
                            while (nm[q].cp) q = (q + 1) & nmask;
                            nm[q] = map[j];
                        }
                    free(map);
                    map = nm;
                    cmask = nmask;
                }
                uint32_t q = ((cp + 1) * 2654435761u) & cmask;
                while (map[q].cp && map[q].cp != cp + 1) q = (q + 1) & cmask;
                if (!map[q].cp) map[q].cp = cp + 1, used++;
                map[q].count += t.words[w].freq;
            }
        }
        if (!map) goto oom;
        capcc = used;
        cc = malloc((used + 1) * sizeof *cc);
        if (!cc) {
            free(map);
            goto oom;
        }
        for (uint32_t j = 0; j <= cmask; j++)
            if (map[j].cp) cc[ncc++] = (char_count){map[j].cp - 1, map[j].count};
        free(map);
        qsort(cc, ncc, sizeof *cc, cmp_chars);
        int64_t acc = 0;
        for (size_t j = 0; j < ncc && t.n < o.vocab_size; j++) {
            if (j > 0 && (double)acc >= o.character_coverage * (double)total) break;
            acc += cc[j].count;
            char s[4];
            int l = g2_utf8_encode(cc[j].cp, s);
            if (piece_find(&t, s, (size_t)l) >= 0) continue;
            if (piece_add(&t, s, (size_t)l) < 0) goto oom;
        }
    }
    (void)capcc;
    int32_t first_merge = t.n;
    int32_t n_chars = t.n - n_reserved;

    /* words to symbols */
    for (size_t w = 0; w < t.nw; w++) {
        tword *wd = &t.words[w];
        const uint8_t *s = (const uint8_t *)wd->syms;
        int32_t *sy = malloc((size_t)wd->n * sizeof *sy);
        if (!sy) goto oom;
        int32_t ns = 0;
        for (int32_t k = 0; k < wd->n;) {
            uint32_t cp;
            int cl = g2_utf8_decode(s + k, (size_t)(wd->n - k), &cp);
            if (cl <= 0) cl = 1, cp = 0xFFFD;
            char c8[4];
            int l = g2_utf8_encode(cp, c8);
            int32_t id = piece_find(&t, c8, (size_t)l);
            sy[ns++] = id >= n_reserved ? id : -1;
            k += cl;
        }
        free(wd->syms);
        wd->syms = sy;
        wd->n = ns;
    }
    free(t.wtab);
    t.wtab = NULL;
    for (size_t w = 0; w < t.nw; w++)
        for (int32_t k = 0; k + 1 < t.words[w].n; k++)
            pm_add(&t, t.words[w].syms[k], t.words[w].syms[k + 1], t.words[w].freq, (int32_t)w);
    if (t.oom) goto oom;

    /* merges */
    uint32_t stamp = 0;
    char *cat = NULL;
    size_t catcap = 0;
    while (t.n < o.vocab_size && t.nh > 0 && !t.oom) {
        heap_ent e = heap_pop(&t);
        uint32_t i = pm_slot(&t, e.a, e.b, 0);
        if (i == UINT32_MAX) continue;
        int64_t cur = t.pm.count[i];
        if (cur != e.count) {
            if (cur > 0 && cur < e.count) heap_push(&t, cur, e.a, e.b);
            continue;
        }
        if (cur <= 0 || !merge_valid(&t, e.a, e.b, o.max_piece_chars)) continue;
        size_t la = t.p[e.a].len, lb = t.p[e.b].len;
        if (grow((void **)&cat, &catcap, la + lb, 1)) goto oom;
        memcpy(cat, t.p[e.a].s, la);
        memcpy(cat + la, t.p[e.b].s, lb);
        int32_t nid = piece_find(&t, cat, la + lb);
        if (nid >= 0 && nid < n_reserved) { /* would duplicate a reserved piece */
            t.pm.count[i] = 0;
            continue;
        }
        if (nid < 0 && (nid = piece_add(&t, cat, la + lb)) < 0) {
            free(cat);
            goto oom;
        }
        stamp++;
        for (int32_t n = t.pm.wl_head[i]; n >= 0; n = t.wn[n].next) {
            int32_t w = t.wn[n].word;
            if (t.words[w].stamp == stamp) continue;
            t.words[w].stamp = stamp;
            merge_in_word(&t, w, e.a, e.b, nid);
            i = pm_slot(&t, e.a, e.b, 0); /* the table may have grown */
        }
    }
    free(cat);
    if (t.oom) goto oom;

    /* the model: reserved, merged pieces by merge order, then characters */
    int32_t n = t.n;
    order = malloc((size_t)n * sizeof *order);
    score = malloc((size_t)n * sizeof *score);
    type = malloc((size_t)n);
    if (!order || !score || !type) goto oom;
    int32_t k = 0;
    for (int32_t i = 0; i < n_reserved; i++) {
        order[k] = i;
        score[k] = 0;
        type[k] = i < 3 ? GEMMA2_PIECE_CONTROL : i == 3 ? GEMMA2_PIECE_UNKNOWN
                : i < n_reserved - 256 ? GEMMA2_PIECE_USER_DEFINED : GEMMA2_PIECE_BYTE;
        k++;
    }
    int32_t n_merged = n - first_merge;
    for (int32_t i = 0; i < n_merged; i++, k++) {
        order[k] = first_merge + i;
        score[k] = -(float)i;
        type[k] = GEMMA2_PIECE_NORMAL;
    }
    for (int32_t i = 0; i < n_chars; i++, k++) {
        order[k] = n_reserved + i;
        score[k] = -(float)(n_merged + i);
        type[k] = GEMMA2_PIECE_NORMAL;
    }
    g2_pb_writer w = {0};
    write_model(&w, &t, order, n, score, type, &o);
    if (w.oom) {
        free(w.data);
        goto oom;
    }
    *out_model = w.data;
    *out_size = w.len;
    goto done;
oom:
    st = g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory while training");
done:
    free(buf);
    free(cc);
    free(order);
    free(score);
    free(type);
    free(ud);
    free_trainer(&t);
    return st;
}
