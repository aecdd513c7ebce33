/* json_text.c - a minimal scanner for one string field of a JSON object (see json_text.h). */
#include "tokenizer/json_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/vocab.h"
#include "util/error.h"

typedef struct {
    const char *p, *end;
} cur;

static void ws(cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int hex4(const char *p, const char *end, uint32_t *v) {
    if (end - p < 4) return -1;
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        x <<= 4;
        if (ch >= '0' && ch <= '9') x |= (uint32_t)(ch - '0');
        else if (ch >= 'a' && ch <= 'f') x |= (uint32_t)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F') x |= (uint32_t)(ch - 'A' + 10);
        else return -1;
    }
    *v = x;
    return 0;
}

/* Parses a string at c->p (which is at the opening quote); writes the decoded bytes to out
 * (room for the raw length) when out is not NULL. Returns the decoded length or -1. */
static long parse_string(cur *c, char *out) {
    if (c->p >= c->end || *c->p != '"') return -1;
    c->p++;
    long n = 0;
    while (c->p < c->end) {
        char ch = *c->p++;
        if (ch == '"') return n;
        if (ch != '\\') {
            if (out) out[n] = ch;
            n++;
            continue;
        }
        if (c->p >= c->end) return -1;
        char e = *c->p++;
        char lit = 0;
        switch (e) {
        case '"': lit = '"'; break;
        case '\\': lit = '\\'; break;
        case '/': lit = '/'; break;
        case 'b': lit = '\b'; break;
        case 'f': lit = '\f'; break;
        case 'n': lit = '\n'; break;
        case 'r': lit = '\r'; break;
        case 't': lit = '\t'; break;
        case 'u': {
            uint32_t v;
            if (hex4(c->p, c->end, &v)) return -1;
            c->p += 4;
            if (v >= 0xD800 && v < 0xDC00) {
                uint32_t lo;
                if (c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u' && !hex4(c->p + 2, c->end, &lo) &&
                    lo >= 0xDC00 && lo < 0xE000) {
                    c->p += 6;
                    v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    v = 0xFFFD;
                }
            } else if (v >= 0xDC00 && v < 0xE000) {
                v = 0xFFFD;
            }
            char tmp[4];
            int l = g2_utf8_encode(v, tmp);
            if (out) memcpy(out + n, tmp, (size_t)l);
            n += l;
            continue;
        }
        default: return -1;
        }
        if (out) out[n] = lit;
        n++;
    }
    return -1;
}

static int skip_value(cur *c) {
    ws(c);
    if (c->p >= c->end) return -1;
    if (*c->p == '"') return parse_string(c, NULL) < 0 ? -1 : 0;
    if (*c->p == '{' || *c->p == '[') {
        int depth = 0;
        while (c->p < c->end) {
            char ch = *c->p;
            if (ch == '"') {
                if (parse_string(c, NULL) < 0) return -1;
                continue;
            }
            c->p++;
            if (ch == '{' || ch == '[') depth++;
            else if ((ch == '}' || ch == ']') && --depth == 0) return 0;
        }
        return -1;
    }
    while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ' ' && *c->p != '\n' && *c->p != '\r' &&
           *c->p != '\t')
        c->p++;
    return 0;
}

gemma2_status g2_json_string_field(const char *json, size_t len, const char *key, char **out, size_t *out_len,
                                   gemma2_error *err) {
    *out = NULL;
    *out_len = 0;
    cur c = {json, json + len};
    size_t klen = strlen(key);
    ws(&c);
    if (c.p >= c.end || *c.p != '{') return g2_fail(err, GEMMA2_ERR_FORMAT, "not a JSON object");
    c.p++;
    for (;;) {
        ws(&c);
        if (c.p < c.end && *c.p == '}') return GEMMA2_OK;
        const char *kstart = c.p;
        long kl = parse_string(&c, NULL);
        if (kl < 0) return g2_fail(err, GEMMA2_ERR_FORMAT, "malformed JSON key");
        int match = 0;
        if ((size_t)kl == klen) {
            char *kb = malloc((size_t)kl + 1);
            if (!kb) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
            cur k2 = {kstart, c.end};
            parse_string(&k2, kb);
            match = memcmp(kb, key, klen) == 0;
            free(kb);
        }
        ws(&c);
        if (c.p >= c.end || *c.p != ':') return g2_fail(err, GEMMA2_ERR_FORMAT, "malformed JSON: ':' expected");
        c.p++;
        ws(&c);
        if (match) {
            if (c.p >= c.end || *c.p != '"') return g2_fail(err, GEMMA2_ERR_FORMAT, "\"%s\" is not a string", key);
            const char *vstart = c.p;
            long vl = parse_string(&c, NULL);
            if (vl < 0) return g2_fail(err, GEMMA2_ERR_FORMAT, "malformed JSON string");
            char *v = malloc((size_t)vl + 1);
            if (!v) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
            cur v2 = {vstart, c.end};
            parse_string(&v2, v);
            v[vl] = 0;
            *out = v;
            *out_len = (size_t)vl;
            return GEMMA2_OK;
        }
        if (skip_value(&c)) return g2_fail(err, GEMMA2_ERR_FORMAT, "malformed JSON value");
        ws(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        if (c.p < c.end && *c.p == '}') return GEMMA2_OK;
        return g2_fail(err, GEMMA2_ERR_FORMAT, "malformed JSON: ',' or '}' expected");
    }
}
