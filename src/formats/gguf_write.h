/* gguf_write.h - writing GGUF v3 files: metadata, tensor infos, then aligned tensor data.
 *
 * Use: g2_gguf_writer_init; add metadata (g2_gguf_add_*) and every tensor's info
 * (g2_gguf_add_tensor, in the order the data will follow); g2_gguf_write_header to the open
 * file; then for each tensor, in the same order, its bytes followed by g2_gguf_write_pad.
 * Nothing is written before the header is complete, so a failure while adding leaves no file. */
#ifndef G2_GGUF_WRITE_H
#define G2_GGUF_WRITE_H

#include <stdint.h>
#include <stdio.h>

#include "formats/gguf.h"
#include "gemma2.h"

typedef struct {
    uint8_t *meta; /* serialized key/value pairs */
    size_t meta_len, meta_cap;
    int64_t n_kv;
    uint8_t *infos; /* serialized tensor infos */
    size_t infos_len, infos_cap;
    int64_t n_tensors;
    uint64_t data_len; /* bytes of tensor data so far, padded */
    int failed;        /* an allocation failed: g2_gguf_write_header reports it */
} g2_gguf_writer;

#define G2_GGUF_ALIGN 32

void g2_gguf_writer_init(g2_gguf_writer *w);
void g2_gguf_writer_free(g2_gguf_writer *w);

void g2_gguf_add_u32(g2_gguf_writer *w, const char *key, uint32_t v);
void g2_gguf_add_f32(g2_gguf_writer *w, const char *key, float v);
void g2_gguf_add_bool(g2_gguf_writer *w, const char *key, int v);
void g2_gguf_add_str(g2_gguf_writer *w, const char *key, const char *v);
/* An array of n strings. */
void g2_gguf_add_str_array(g2_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
/* A numeric array: elements of GGUF type `elem_type` (G2_GGUF_F32, G2_GGUF_I32, ...), raw bytes. */
void g2_gguf_add_num_array(g2_gguf_writer *w, const char *key, int elem_type, const void *data, uint64_t n);
/* A copy of a key/value pair read from another GGUF file. */
void g2_gguf_add_kv_copy(g2_gguf_writer *w, const g2_gguf_kv *kv);

/* A tensor of type `type` with dims ne[0..n_dims) (ne[0] innermost); returns its data bytes. */
size_t g2_gguf_add_tensor(g2_gguf_writer *w, const char *name, int n_dims, const int64_t *ne, int type);

gemma2_status g2_gguf_write_header(g2_gguf_writer *w, FILE *fp, const char *path, gemma2_error *err);
/* Zero bytes after a tensor of `nbytes` so that the next one starts aligned. */
int g2_gguf_write_pad(FILE *fp, size_t nbytes);

#endif
