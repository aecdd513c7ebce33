/* hf_tokenizer_json.c - a Hugging Face tokenizer.json (BPE with byte fallback), turned into
 * SentencePiece's view of the same vocabulary so that encoding gives SentencePiece's ids.
 *
 * tokenizer.json has what SentencePiece has, in another form:
 *   - scores: none, but a merge list. Hugging Face's SentencePiece converter writes every split
 *     (left, right) of every piece, sorted by the merged piece's score. So ordering pieces by the
 *     rank of the first merge that makes them orders them as their scores do, and that order is
 *     all BPE uses: score = -rank.
 *   - types: the added tokens are <pad>/<eos>/<bos> (CONTROL), the model's unk_token (UNKNOWN)
 *     and otherwise USER_DEFINED (matched in the text before BPE, whatever their "special" flag
 *     says). User-defined pieces that are not added tokens (Gemma's [toxicity=0], tab runs and
 *     <unused99> at the end) are recognised as multi-character pieces that no merge makes, or
 *     whose first merge is ranked before that of a lower-id learned piece (learned pieces have
 *     ids in merge order; user-defined pieces score 0, which puts their merges first).
 *   - byte pieces <0x00>..<0xFF>; Hugging Face renamed <0x09> to "\t", which is renamed back
 *     (a one-byte piece between <0x08> and <0x0A>).
 *   - normalizer Replace(" ", "▁") = escape_whitespaces; Prepend("▁") = add_dummy_prefix.
 *     Anything else (NFKC, ...) is rejected rather than silently ignored. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/vocab.h"
#include "util/error.h"

typedef struct {
    const char **s;
    size_t *len;
    int32_t *tab;
    uint32_t mask;
} strmap;

static uint64_t h64(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return (h ^ (h >> 31)) * 0x9E3779B97F4A7C15ull;
}

static int32_t strmap_find(const strmap *m, const char *s, size_t n) {
    uint32_t i = (uint32_t)(h64(s, n) >> 32) & m->mask;
    for (;;) {
        int32_t id = m->tab[i];
        if (id < 0 || (m->len[id] == n && memcmp(m->s[id], s, n) == 0)) return id;
        i = (i + 1) & m->mask;
    }
}

static void strmap_add(strmap *m, int32_t id) {
    uint32_t i = (uint32_t)(h64(m->s[id], m->len[id]) >> 32) & m->mask;
    while (m->tab[i] >= 0) i = (i + 1) & m->mask;
    m->tab[i] = id;
}

static int is_byte_piece(const char *s, size_t n, unsigned *v) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return 0;
    unsigned x = 0;
    for (int k = 3; k < 5; k++) {
        char c = s[k];
        if (c >= '0' && c <= '9') x = x * 16 + (unsigned)(c - '0');
        else if (c >= 'A' && c <= 'F') x = x * 16 + (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *v = x;
    return 1;
}

static int utf8_chars(const char *s, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n; i++) c += ((uint8_t)s[i] & 0xC0) != 0x80;
    return c;
}

/* Reads the normalizer: returns 0 if supported, setting the flags. */
static int read_normalizer(const cJSON *nz, int *escape, int *dummy) {
    if (!nz || cJSON_IsNull(nz)) return 0;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(nz, "type");
    if (!cJSON_IsString(type)) return -1;
    if (!strcmp(type->valuestring, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(nz, "normalizers"), *it;
        cJSON_ArrayForEach(it, list) if (read_normalizer(it, escape, dummy)) return -1;
        return 0;
    }
    if (!strcmp(type->valuestring, "Replace")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(nz, "pattern");
        const cJSON *str = pat ? cJSON_GetObjectItemCaseSensitive(pat, "String") : NULL;
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(nz, "content");
        if (cJSON_IsString(str) && cJSON_IsString(content) && !strcmp(str->valuestring, " ") &&
            !strcmp(content->valuestring, "\xE2\x96\x81")) {
            *escape = 1;
            return 0;
        }
        return -1;
    }
    if (!strcmp(type->valuestring, "Prepend")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(nz, "prepend");
        if (cJSON_IsString(p) && !strcmp(p->valuestring, "\xE2\x96\x81")) {
            *dummy = 1;
            return 0;
        }
    }
    return -1;
}

gemma2_status g2_load_hf_json(const char *json, size_t size, const char *name, gemma2_tokenizer **out,
                              gemma2_error *err) {
    *out = NULL;
    gemma2_status st = GEMMA2_OK;
    cJSON *root = cJSON_ParseWithLength(json, size);
    gemma2_tokenizer *t = NULL;
    strmap m = {0};
    int64_t *rank = NULL;
    uint8_t *added = NULL;
    char *cat = NULL;
    if (!root) {
        size_t at = 0;
        const char *ep = cJSON_GetErrorPtr();
        if (ep && ep >= json && ep <= json + size) at = (size_t)(ep - json);
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: malformed JSON (near byte %zu)", name, at);
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *mtype = model ? cJSON_GetObjectItemCaseSensitive(model, "type") : NULL;
    const cJSON *vocab = model ? cJSON_GetObjectItemCaseSensitive(model, "vocab") : NULL;
    const cJSON *merges = model ? cJSON_GetObjectItemCaseSensitive(model, "merges") : NULL;
    if (!cJSON_IsObject(model) || !cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) {
        st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: no model.vocab object and model.merges array", name);
        goto done;
    }
    if (!cJSON_IsString(mtype) || strcmp(mtype->valuestring, "BPE") != 0) {
        st = g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: model type is not BPE", name);
        goto done;
    }
    int escape = 0, dummy = 0;
    if (read_normalizer(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), &escape, &dummy)) {
        st = g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: unsupported normalizer (only Replace(' ', '\xE2\x96\x81') and Prepend('\xE2\x96\x81'))", name);
        goto done;
    }
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (pre && !cJSON_IsNull(pre)) {
        st = g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: a pre_tokenizer is set; SentencePiece-style BPE has none", name);
        goto done;
    }

    /* pieces by id */
    int32_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= 0x7FFFFFF) {
            st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: vocab entry with a bad id", name);
            goto done;
        }
        if (it->valueint + 1 > n) n = it->valueint + 1;
    }
    const cJSON *added_tokens = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    cJSON_ArrayForEach(it, added_tokens) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= 0x7FFFFFF || !cJSON_IsString(content)) {
            st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: added token without id or content", name);
            goto done;
        }
        if (id->valueint + 1 > n) n = id->valueint + 1;
    }
    if (n == 0) {
        st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: empty vocabulary", name);
        goto done;
    }
    m.s = calloc((size_t)n, sizeof *m.s);
    m.len = calloc((size_t)n, sizeof *m.len);
    uint32_t cap = 16;
    while (cap < (uint32_t)n * 2) cap <<= 1;
    m.tab = malloc(cap * sizeof *m.tab);
    m.mask = cap - 1;
    rank = malloc((size_t)n * sizeof *rank);
    added = calloc((size_t)n, 1);
    if (!m.s || !m.len || !m.tab || !rank || !added) {
        st = g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    memset(m.tab, 0xff, cap * sizeof *m.tab);
    cJSON_ArrayForEach(it, vocab) {
        int32_t id = it->valueint;
        if (m.s[id]) {
            st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: id %d is used twice in vocab", name, (int)id);
            goto done;
        }
        m.s[id] = it->string;
        m.len[id] = strlen(it->string);
    }
    cJSON_ArrayForEach(it, added_tokens) {
        int32_t id = cJSON_GetObjectItemCaseSensitive(it, "id")->valueint;
        const char *c = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
        if (m.s[id] && strcmp(m.s[id], c) != 0) {
            st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: added token %d \"%s\" differs from vocab \"%s\"", name, (int)id, c,
                         m.s[id]);
            goto done;
        }
        m.s[id] = c;
        m.len[id] = strlen(c);
        added[id] = 1;
    }
    for (int32_t id = 0; id < n; id++) {
        if (!m.s[id]) {
            st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: no piece has id %d (ids must be 0..%d)", name, (int)id, (int)n - 1);
            goto done;
        }
        if (strmap_find(&m, m.s[id], m.len[id]) >= 0) {
            st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: piece \"%s\" appears twice", name, m.s[id]);
            goto done;
        }
        strmap_add(&m, id);
        rank[id] = -1;
    }

    /* first merge rank of each piece */
    size_t cat_cap = 256;
    cat = malloc(cat_cap);
    int64_t r = 0;
    cJSON_ArrayForEach(it, merges) {
        const char *a, *b;
        size_t la, lb;
        if (cJSON_IsString(it)) {
            a = it->valuestring;
            const char *sp = strchr(a, ' ');
            if (!sp) {
                st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: merge %lld \"%s\" is not \"left right\"", name, (long long)r, a);
                goto done;
            }
            la = (size_t)(sp - a);
            b = sp + 1;
            lb = strlen(b);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) &&
                   cJSON_IsString(it->child->next)) {
            a = it->child->valuestring;
            b = it->child->next->valuestring;
            la = strlen(a);
            lb = strlen(b);
        } else {
            st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: merge %lld is neither a string nor a pair", name, (long long)r);
            goto done;
        }
        if (la + lb > cat_cap) {
            cat_cap = la + lb;
            char *c = realloc(cat, cat_cap);
            if (!c) break;
            cat = c;
        }
        if (!cat) break;
        memcpy(cat, a, la);
        memcpy(cat + la, b, lb);
        int32_t id = strmap_find(&m, cat, la + lb);
        if (id >= 0 && rank[id] < 0) rank[id] = r;
        r++;
    }
    if (!cat) {
        st = g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    int64_t n_merges = r;

    const cJSON *unk_tok = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    const cJSON *bf = cJSON_GetObjectItemCaseSensitive(model, "byte_fallback");
    int byte_fallback = cJSON_IsTrue(bf);
    t = g2_tok_new(n, GEMMA2_TOKENIZER_HF_JSON);
    if (!t) {
        st = g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    t->byte_fallback = byte_fallback;
    t->escape_whitespaces = escape;
    t->add_dummy_prefix = dummy;
    t->remove_extra_whitespaces = 0;
    int64_t max_rank = -1;
    for (int32_t id = 0; id < n; id++) {
        const char *s = m.s[id];
        size_t len = m.len[id];
        int type = GEMMA2_PIECE_NORMAL;
        float score = 0;
        unsigned v;
        char bytename[8];
        if (added[id]) {
            if (cJSON_IsString(unk_tok) && !strcmp(s, unk_tok->valuestring)) type = GEMMA2_PIECE_UNKNOWN;
            else if (!strcmp(s, "<pad>") || !strcmp(s, "<eos>") || !strcmp(s, "<bos>")) type = GEMMA2_PIECE_CONTROL;
            else type = GEMMA2_PIECE_USER_DEFINED;
        } else if (cJSON_IsString(unk_tok) && !strcmp(s, unk_tok->valuestring)) {
            type = GEMMA2_PIECE_UNKNOWN;
        } else if (byte_fallback && is_byte_piece(s, len, &v)) {
            type = GEMMA2_PIECE_BYTE;
        } else if (byte_fallback && len == 1 && id > 0 && id + 1 < n && is_byte_piece(m.s[id - 1], m.len[id - 1], &v) &&
                   v + 1 == (uint8_t)s[0] && is_byte_piece(m.s[id + 1], m.len[id + 1], &v) && v == (uint8_t)s[0] + 1u) {
            type = GEMMA2_PIECE_BYTE; /* the renamed <0x09> */
            snprintf(bytename, sizeof bytename, "<0x%02X>", (unsigned)(uint8_t)s[0]);
            s = bytename;
            len = 6;
        } else if (utf8_chars(s, len) > 1) {
            if (rank[id] < 0 || rank[id] < max_rank) {
                type = GEMMA2_PIECE_USER_DEFINED;
            } else {
                max_rank = rank[id];
                score = -(float)rank[id];
            }
        } else {
            score = -(float)(n_merges + id); /* single characters come after every merge */
        }
        st = g2_tok_set_piece(t, id, s, len, score, type, err);
        if (st) goto done;
    }
    st = g2_tok_finish(t, name, err);
done:
    free(m.s);
    free(m.len);
    free(m.tab);
    free(rank);
    free(added);
    free(cat);
    cJSON_Delete(root);
    if (st) {
        gemma2_tokenizer_free(t);
        return st;
    }
    *out = t;
    return GEMMA2_OK;
}
