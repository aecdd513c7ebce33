/* protobuf.h - the few protobuf wire-format primitives a SentencePiece ModelProto needs.
 *
 * Reading: a bounds-checked cursor that yields (field number, wire type, value) one field at
 * a time; unknown fields are skipped, as protobuf requires. Writing: append-only buffer.
 * Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 (groups are rejected). */
#ifndef G2_TOKENIZER_PROTOBUF_H
#define G2_TOKENIZER_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p, *end;
} g2_pb_reader;

typedef struct {
    int field, wire;
    uint64_t u;           /* varint / fixed values */
    const uint8_t *data;  /* length-delimited payload */
    size_t len;
} g2_pb_field;

/* 1: a field was read; 0: end of message; -1: malformed or truncated. */
int g2_pb_next(g2_pb_reader *r, g2_pb_field *f);

typedef struct {
    uint8_t *data;
    size_t len, cap;
    int oom; /* set when an allocation failed; every later write is dropped */
} g2_pb_writer;

void g2_pb_varint_field(g2_pb_writer *w, int field, uint64_t v);
void g2_pb_float_field(g2_pb_writer *w, int field, float v);
void g2_pb_bytes_field(g2_pb_writer *w, int field, const void *data, size_t len);
void g2_pb_string_field(g2_pb_writer *w, int field, const char *s); /* NUL-terminated */

#endif
