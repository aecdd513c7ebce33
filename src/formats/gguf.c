/* gguf.c - a bounds-checked GGUF parser over a memory-mapped file. */
#define _POSIX_C_SOURCE 200809L
#include "formats/gguf.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/types.h"
#include "util/error.h"

/* A cursor over the header; every read checks the remaining bytes. */
typedef struct {
    const uint8_t *p, *end;
    const char *path;
    gemma2_error *err;
} reader;

static gemma2_status truncated(reader *r, const char *what) {
    return g2_fail(r->err, GEMMA2_ERR_FORMAT, "%s: truncated GGUF header (while reading %s)", r->path, what);
}

static gemma2_status rd(reader *r, void *dst, size_t n, const char *what) {
    if ((size_t)(r->end - r->p) < n) return truncated(r, what);
    memcpy(dst, r->p, n);
    r->p += n;
    return GEMMA2_OK;
}

static gemma2_status rd_str(reader *r, g2_gguf_str *s, const char *what) {
    uint64_t n = 0;
    if (rd(r, &n, 8, what)) return r->err ? r->err->status : GEMMA2_ERR_FORMAT;
    if ((uint64_t)(r->end - r->p) < n) return truncated(r, what);
    s->ptr = (const char *)r->p;
    s->len = n;
    r->p += n;
    return GEMMA2_OK;
}

static size_t scalar_size(int t) {
    switch (t) {
    case G2_GGUF_U8: case G2_GGUF_I8: case G2_GGUF_BOOL: return 1;
    case G2_GGUF_U16: case G2_GGUF_I16: return 2;
    case G2_GGUF_U32: case G2_GGUF_I32: case G2_GGUF_F32: return 4;
    case G2_GGUF_U64: case G2_GGUF_I64: case G2_GGUF_F64: return 8;
    default: return 0;
    }
}

static double num_at(int t, const uint8_t *p, int64_t *as_int) {
    int64_t i = 0;
    double f;
    switch (t) {
    case G2_GGUF_U8: case G2_GGUF_BOOL: i = *p; break;
    case G2_GGUF_I8: i = (int8_t)*p; break;
    case G2_GGUF_U16: { uint16_t v; memcpy(&v, p, 2); i = v; } break;
    case G2_GGUF_I16: { int16_t v; memcpy(&v, p, 2); i = v; } break;
    case G2_GGUF_U32: { uint32_t v; memcpy(&v, p, 4); i = v; } break;
    case G2_GGUF_I32: { int32_t v; memcpy(&v, p, 4); i = v; } break;
    case G2_GGUF_U64: { uint64_t v; memcpy(&v, p, 8); i = (int64_t)v; } break;
    case G2_GGUF_I64: memcpy(&i, p, 8); break;
    case G2_GGUF_F32: { float v; memcpy(&v, p, 4); if (as_int) *as_int = (int64_t)v; return v; }
    case G2_GGUF_F64: memcpy(&f, p, 8); if (as_int) *as_int = (int64_t)f; return f;
    default: break;
    }
    if (as_int) *as_int = i;
    return (double)i;
}

double g2_gguf_array_num(const g2_gguf_kv *kv, uint64_t i) {
    return num_at(kv->arr_type, kv->arr_data + i * scalar_size(kv->arr_type), NULL);
}

static char *dup_str(g2_gguf_str s) {
    char *c = malloc(s.len + 1);
    if (c) {
        memcpy(c, s.ptr, s.len);
        c[s.len] = 0;
    }
    return c;
}

static gemma2_status read_kv(reader *r, g2_gguf_kv *kv) {
    g2_gguf_str key;
    uint32_t type = 0;
    if (rd_str(r, &key, "a metadata key") || rd(r, &type, 4, "a metadata type")) return GEMMA2_ERR_FORMAT;
    kv->key = dup_str(key);
    if (!kv->key) return g2_fail(r->err, GEMMA2_ERR_NOMEM, "out of memory");
    kv->type = (int)type;
    if (type == G2_GGUF_STRING) return rd_str(r, &kv->str, kv->key);
    if (type == G2_GGUF_ARRAY) {
        uint32_t at = 0;
        uint64_t n = 0;
        if (rd(r, &at, 4, kv->key) || rd(r, &n, 8, kv->key)) return GEMMA2_ERR_FORMAT;
        kv->arr_type = (int)at;
        kv->arr_n = n;
        if (at == G2_GGUF_STRING) {
            if (n > (uint64_t)(r->end - r->p) / 8) return truncated(r, kv->key);
            kv->arr_str = malloc((n ? n : 1) * sizeof *kv->arr_str);
            if (!kv->arr_str) return g2_fail(r->err, GEMMA2_ERR_NOMEM, "out of memory");
            for (uint64_t i = 0; i < n; i++)
                if (rd_str(r, &kv->arr_str[i], kv->key)) return GEMMA2_ERR_FORMAT;
            return GEMMA2_OK;
        }
        size_t es = scalar_size((int)at);
        if (!es)
            return g2_fail(r->err, GEMMA2_ERR_FORMAT, "%s: metadata '%s': bad array element type %u", r->path,
                           kv->key, at);
        if (n > (uint64_t)(r->end - r->p) / es) return truncated(r, kv->key);
        kv->arr_data = r->p;
        r->p += n * es;
        return GEMMA2_OK;
    }
    size_t es = scalar_size((int)type);
    if (!es) return g2_fail(r->err, GEMMA2_ERR_FORMAT, "%s: metadata '%s': bad value type %u", r->path, kv->key, type);
    if ((size_t)(r->end - r->p) < es) return truncated(r, kv->key);
    kv->f = num_at((int)type, r->p, &kv->i);
    r->p += es;
    return GEMMA2_OK;
}

gemma2_status g2_gguf_open(const char *path, g2_gguf *g, gemma2_error *err) {
    memset(g, 0, sizeof *g);
    gemma2_status s = g2_map_file(path, &g->file, err);
    if (s) return s;
    reader r = {g->file.data, g->file.data + g->file.size, path, err};
    char magic[4];
    if (g->file.size < 4 || (rd(&r, magic, 4, "magic"), memcmp(magic, "GGUF", 4) != 0)) {
        g2_gguf_close(g);
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: not a GGUF file (bad magic)", path);
    }
    uint64_t nt = 0, nkv = 0;
    if (rd(&r, &g->version, 4, "version") || rd(&r, &nt, 8, "tensor count") || rd(&r, &nkv, 8, "metadata count"))
        goto fail;
    if (g->version < 2 || g->version > 3) {
        uint32_t v = g->version;
        g2_gguf_close(g);
        return g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: GGUF version %u (supported: 2, 3)", path, v);
    }
    /* every kv needs >= 12 bytes and every tensor >= 24: a bound that rejects absurd counts early */
    if (nkv > g->file.size / 12 || nt > g->file.size / 24) {
        size_t size = g->file.size;
        g2_gguf_close(g);
        return g2_fail(err, GEMMA2_ERR_FORMAT,
                       "%s: truncated or corrupt GGUF header: %llu tensors and %llu metadata entries cannot fit in %zu bytes",
                       path, (unsigned long long)nt, (unsigned long long)nkv, size);
    }
    g->kv = calloc(nkv ? nkv : 1, sizeof *g->kv);
    g->tensors = calloc(nt ? nt : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) {
        g2_gguf_close(g);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", path);
    }
    for (uint64_t i = 0; i < nkv; i++) {
        g->n_kv++;
        if (read_kv(&r, &g->kv[i])) goto fail;
    }
    g->alignment = 32;
    int64_t al;
    if (g2_gguf_get_int(g, "general.alignment", &al)) {
        if (al <= 0 || (al & (al - 1)) || al > 65536) {
            g2_gguf_close(g);
            return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: general.alignment %lld is not a power of two", path, (long long)al);
        }
        g->alignment = (uint64_t)al;
    }
    uint64_t *offsets = calloc(nt ? nt : 1, sizeof *offsets);
    if (!offsets) {
        g2_gguf_close(g);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", path);
    }
    for (uint64_t i = 0; i < nt; i++) {
        g2_gguf_tensor *t = &g->tensors[i];
        g2_gguf_str name;
        uint32_t nd = 0, type = 0;
        g->n_tensors++;
        if (rd_str(&r, &name, "a tensor name")) { free(offsets); goto fail; }
        t->name = dup_str(name);
        if (!t->name) { free(offsets); g2_gguf_close(g); return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory"); }
        if (rd(&r, &nd, 4, t->name)) { free(offsets); goto fail; }
        if (nd < 1 || nd > 4) {
            free(offsets);
            g2_fail(err, GEMMA2_ERR_FORMAT, "%s: tensor '%s': %u dimensions (1 to 4 allowed)", path, t->name, nd);
            g2_gguf_close(g);
            return GEMMA2_ERR_FORMAT;
        }
        t->n_dims = (int)nd;
        uint64_t count = 1;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t v = 0;
            if (rd(&r, &v, 8, t->name)) { free(offsets); goto fail; }
            if (v > (1ull << 40) || (v && count > (1ull << 50) / v)) {
                free(offsets);
                g2_fail(err, GEMMA2_ERR_FORMAT, "%s: tensor '%s': dimension %u is %llu (too large)", path, t->name, d,
                        (unsigned long long)v);
                g2_gguf_close(g);
                return GEMMA2_ERR_FORMAT;
            }
            t->ne[d] = (int64_t)v;
            count *= v;
        }
        if (rd(&r, &type, 4, t->name) || rd(&r, &offsets[i], 8, t->name)) { free(offsets); goto fail; }
        t->type = (int)type;
        size_t rb = g2_type_row_bytes((int)type, t->ne[0]);
        if (!g2_type_block_elems((int)type)) {
            free(offsets);
            g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: tensor '%s': unknown tensor type %u", path, t->name, type);
            g2_gguf_close(g);
            return GEMMA2_ERR_UNSUPPORTED;
        }
        if (!rb && t->ne[0]) {
            free(offsets);
            g2_fail(err, GEMMA2_ERR_FORMAT, "%s: tensor '%s': row length %lld is not a multiple of the %s block (%d)",
                    path, t->name, (long long)t->ne[0], gemma2_type_name((int)type), g2_type_block_elems((int)type));
            g2_gguf_close(g);
            return GEMMA2_ERR_FORMAT;
        }
        t->nbytes = rb * (size_t)(count / (uint64_t)(t->ne[0] ? t->ne[0] : 1));
        if (!t->ne[0]) t->nbytes = 0;
    }
    size_t hdr = (size_t)(r.p - g->file.data);
    uint64_t data_start = (hdr + g->alignment - 1) / g->alignment * g->alignment;
    for (uint64_t i = 0; i < nt; i++) {
        g2_gguf_tensor *t = &g->tensors[i];
        uint64_t off = offsets[i];
        if (off % g->alignment || data_start + off > g->file.size || t->nbytes > g->file.size - data_start - off) {
            free(offsets);
            g2_fail(err, GEMMA2_ERR_FORMAT,
                    "%s: tensor '%s': data at offset %llu (+%zu bytes) is misaligned or past the end of the file "
                    "(%zu bytes; truncated?)",
                    path, t->name, (unsigned long long)off, t->nbytes, g->file.size);
            g2_gguf_close(g);
            return GEMMA2_ERR_FORMAT;
        }
        t->data = g->file.data + data_start + off;
    }
    free(offsets);
    return GEMMA2_OK;
fail:;
    gemma2_status st = err ? err->status : GEMMA2_ERR_FORMAT;
    g2_gguf_close(g);
    return st ? st : GEMMA2_ERR_FORMAT;
}

void g2_gguf_close(g2_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].arr_str);
    }
    for (int64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    g2_unmap_file(&g->file);
    memset(g, 0, sizeof *g);
}

const g2_gguf_kv *g2_gguf_find(const g2_gguf *g, const char *key) {
    for (int64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

const g2_gguf_tensor *g2_gguf_find_tensor(const g2_gguf *g, const char *name) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].name && strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

int g2_gguf_get_int(const g2_gguf *g, const char *key, int64_t *out) {
    const g2_gguf_kv *kv = g2_gguf_find(g, key);
    if (!kv || !scalar_size(kv->type)) return 0;
    *out = kv->i;
    return 1;
}

int g2_gguf_get_float(const g2_gguf *g, const char *key, double *out) {
    const g2_gguf_kv *kv = g2_gguf_find(g, key);
    if (!kv || !scalar_size(kv->type)) return 0;
    *out = kv->f;
    return 1;
}
