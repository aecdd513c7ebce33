/* gguf_write.c - GGUF v3 writer (see gguf.h for the layout). */
#include "formats/gguf_write.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/types.h"
#include "util/error.h"

static void put(g2_gguf_writer *w, uint8_t **buf, size_t *len, size_t *cap, const void *p, size_t n) {
    if (w->failed) return;
    if (*len + n > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < *len + n) nc *= 2;
        uint8_t *nb = realloc(*buf, nc);
        if (!nb) {
            w->failed = 1;
            return;
        }
        *buf = nb, *cap = nc;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
}

static void meta(g2_gguf_writer *w, const void *p, size_t n) { put(w, &w->meta, &w->meta_len, &w->meta_cap, p, n); }
static void meta_u32(g2_gguf_writer *w, uint32_t v) { meta(w, &v, 4); }
static void meta_u64(g2_gguf_writer *w, uint64_t v) { meta(w, &v, 8); }
static void meta_str(g2_gguf_writer *w, const char *s, uint64_t n) {
    meta_u64(w, n);
    meta(w, s, (size_t)n);
}
static void meta_key(g2_gguf_writer *w, const char *key, uint32_t type) {
    meta_str(w, key, strlen(key));
    meta_u32(w, type);
    w->n_kv++;
}

void g2_gguf_writer_init(g2_gguf_writer *w) { memset(w, 0, sizeof *w); }

void g2_gguf_writer_free(g2_gguf_writer *w) {
    free(w->meta);
    free(w->infos);
    memset(w, 0, sizeof *w);
}

void g2_gguf_add_u32(g2_gguf_writer *w, const char *key, uint32_t v) {
    meta_key(w, key, G2_GGUF_U32);
    meta_u32(w, v);
}

void g2_gguf_add_f32(g2_gguf_writer *w, const char *key, float v) {
    meta_key(w, key, G2_GGUF_F32);
    meta(w, &v, 4);
}

void g2_gguf_add_bool(g2_gguf_writer *w, const char *key, int v) {
    uint8_t b = v ? 1 : 0;
    meta_key(w, key, G2_GGUF_BOOL);
    meta(w, &b, 1);
}

void g2_gguf_add_str(g2_gguf_writer *w, const char *key, const char *v) {
    meta_key(w, key, G2_GGUF_STRING);
    meta_str(w, v, strlen(v));
}

void g2_gguf_add_str_array(g2_gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    meta_key(w, key, G2_GGUF_ARRAY);
    meta_u32(w, G2_GGUF_STRING);
    meta_u64(w, n);
    for (uint64_t i = 0; i < n; i++) meta_str(w, v[i], strlen(v[i]));
}

static size_t elem_size(int t) {
    switch (t) {
    case G2_GGUF_U8: case G2_GGUF_I8: case G2_GGUF_BOOL: return 1;
    case G2_GGUF_U16: case G2_GGUF_I16: return 2;
    case G2_GGUF_U32: case G2_GGUF_I32: case G2_GGUF_F32: return 4;
    default: return 8;
    }
}

void g2_gguf_add_num_array(g2_gguf_writer *w, const char *key, int elem_type, const void *data, uint64_t n) {
    meta_key(w, key, G2_GGUF_ARRAY);
    meta_u32(w, (uint32_t)elem_type);
    meta_u64(w, n);
    meta(w, data, (size_t)n * elem_size(elem_type));
}

void g2_gguf_add_kv_copy(g2_gguf_writer *w, const g2_gguf_kv *kv) {
    if (kv->type == G2_GGUF_STRING) {
        meta_key(w, kv->key, G2_GGUF_STRING);
        meta_str(w, kv->str.ptr, kv->str.len);
    } else if (kv->type == G2_GGUF_ARRAY && kv->arr_type == G2_GGUF_STRING) {
        meta_key(w, kv->key, G2_GGUF_ARRAY);
        meta_u32(w, G2_GGUF_STRING);
        meta_u64(w, kv->arr_n);
        for (uint64_t i = 0; i < kv->arr_n; i++) meta_str(w, kv->arr_str[i].ptr, kv->arr_str[i].len);
    } else if (kv->type == G2_GGUF_ARRAY) {
        g2_gguf_add_num_array(w, kv->key, kv->arr_type, kv->arr_data, kv->arr_n);
    } else {
        /* a scalar: re-encode it from the parsed value in its own type */
        meta_key(w, kv->key, (uint32_t)kv->type);
        uint8_t b[8];
        int64_t i = kv->i;
        switch (kv->type) {
        case G2_GGUF_F32: { float f = (float)kv->f; memcpy(b, &f, 4); } break;
        case G2_GGUF_F64: memcpy(b, &kv->f, 8); break;
        default: memcpy(b, &i, 8); break; /* little-endian: the low bytes come first */
        }
        meta(w, b, elem_size(kv->type));
    }
}

size_t g2_gguf_add_tensor(g2_gguf_writer *w, const char *name, int n_dims, const int64_t *ne, int type) {
    uint64_t n = strlen(name), rows = 1;
    put(w, &w->infos, &w->infos_len, &w->infos_cap, &n, 8);
    put(w, &w->infos, &w->infos_len, &w->infos_cap, name, (size_t)n);
    uint32_t nd = (uint32_t)n_dims, t = (uint32_t)type;
    put(w, &w->infos, &w->infos_len, &w->infos_cap, &nd, 4);
    for (int d = 0; d < n_dims; d++) {
        uint64_t v = (uint64_t)ne[d];
        put(w, &w->infos, &w->infos_len, &w->infos_cap, &v, 8);
        if (d) rows *= v;
    }
    put(w, &w->infos, &w->infos_len, &w->infos_cap, &t, 4);
    put(w, &w->infos, &w->infos_len, &w->infos_cap, &w->data_len, 8);
    size_t nbytes = g2_type_row_bytes(type, ne[0]) * (size_t)rows;
    w->data_len += (nbytes + G2_GGUF_ALIGN - 1) / G2_GGUF_ALIGN * G2_GGUF_ALIGN;
    w->n_tensors++;
    return nbytes;
}

gemma2_status g2_gguf_write_header(g2_gguf_writer *w, FILE *fp, const char *path, gemma2_error *err) {
    if (w->failed) return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory for the GGUF header", path);
    uint32_t version = 3;
    uint64_t nt = (uint64_t)w->n_tensors, nkv = (uint64_t)w->n_kv;
    int ok = fwrite("GGUF", 1, 4, fp) == 4 && fwrite(&version, 4, 1, fp) == 1 && fwrite(&nt, 8, 1, fp) == 1 &&
             fwrite(&nkv, 8, 1, fp) == 1 && fwrite(w->meta, 1, w->meta_len, fp) == w->meta_len &&
             fwrite(w->infos, 1, w->infos_len, fp) == w->infos_len;
    if (ok) ok = g2_gguf_write_pad(fp, 24 + w->meta_len + w->infos_len);
    return ok ? GEMMA2_OK : g2_fail(err, GEMMA2_ERR_IO, "%s: write failed", path);
}

int g2_gguf_write_pad(FILE *fp, size_t nbytes) {
    static const uint8_t zeros[G2_GGUF_ALIGN];
    size_t pad = (G2_GGUF_ALIGN - nbytes % G2_GGUF_ALIGN) % G2_GGUF_ALIGN;
    return fwrite(zeros, 1, pad, fp) == pad;
}
