/* protobuf.c - protobuf wire format: a bounds-checked field reader and an append-only writer. */
#include "tokenizer/protobuf.h"

#include <stdlib.h>
#include <string.h>

static int read_varint(g2_pb_reader *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return -1;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1; /* more than 10 bytes */
}

int g2_pb_next(g2_pb_reader *r, g2_pb_field *f) {
    if (r->p >= r->end) return 0;
    uint64_t key;
    if (read_varint(r, &key)) return -1;
    f->field = (int)(key >> 3);
    f->wire = (int)(key & 7);
    if (f->field <= 0 || key >> 3 > 0x1FFFFFFF) return -1;
    f->data = NULL;
    f->len = 0;
    f->u = 0;
    switch (f->wire) {
    case 0: return read_varint(r, &f->u) ? -1 : 1;
    case 1:
        if (r->end - r->p < 8) return -1;
        memcpy(&f->u, r->p, 8); /* little-endian hosts only, as the rest of the project */
        r->p += 8;
        return 1;
    case 5: {
        if (r->end - r->p < 4) return -1;
        uint32_t v;
        memcpy(&v, r->p, 4);
        f->u = v;
        r->p += 4;
        return 1;
    }
    case 2: {
        uint64_t n;
        if (read_varint(r, &n)) return -1;
        if (n > (uint64_t)(r->end - r->p)) return -1;
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    }
    default: return -1;
    }
}

static void put(g2_pb_writer *w, const void *d, size_t n) {
    if (w->oom) return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4096;
        while (cap < w->len + n) cap *= 2;
        uint8_t *p = realloc(w->data, cap);
        if (!p) {
            w->oom = 1;
            return;
        }
        w->data = p;
        w->cap = cap;
    }
    memcpy(w->data + w->len, d, n);
    w->len += n;
}

static void put_varint(g2_pb_writer *w, uint64_t v) {
    uint8_t b[10];
    int n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v) b[n] |= 0x80;
        n++;
    } while (v);
    put(w, b, (size_t)n);
}

void g2_pb_varint_field(g2_pb_writer *w, int field, uint64_t v) {
    put_varint(w, (uint64_t)field << 3 | 0);
    put_varint(w, v);
}

void g2_pb_float_field(g2_pb_writer *w, int field, float v) {
    put_varint(w, (uint64_t)field << 3 | 5);
    put(w, &v, 4);
}

void g2_pb_bytes_field(g2_pb_writer *w, int field, const void *data, size_t len) {
    put_varint(w, (uint64_t)field << 3 | 2);
    put_varint(w, len);
    put(w, data, len);
}

void g2_pb_string_field(g2_pb_writer *w, int field, const char *s) {
    g2_pb_bytes_field(w, field, s, strlen(s));
}
