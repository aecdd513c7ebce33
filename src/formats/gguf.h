/* gguf.h - reading GGUF files (v2 and v3), memory-mapped.
 *
 * Layout (all little-endian):
 *   "GGUF" u32 version  u64 n_tensors  u64 n_kv
 *   n_kv x  { string key, u32 value_type, value }          string = u64 length + bytes (no NUL)
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
 *   padding to `general.alignment` (default 32), then the tensor data; each offset is relative
 *   to the start of the data and aligned.
 * ne[0] is the innermost (contiguous) dimension: an HF matrix [out, in] is ne = {in, out}.
 * Every length, count and offset is checked against the file size before it is used. */
#ifndef G2_GGUF_H
#define G2_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "gemma2.h"
#include "util/mapped_file.h"

enum {
    G2_GGUF_U8 = 0, G2_GGUF_I8 = 1, G2_GGUF_U16 = 2, G2_GGUF_I16 = 3, G2_GGUF_U32 = 4,
    G2_GGUF_I32 = 5, G2_GGUF_F32 = 6, G2_GGUF_BOOL = 7, G2_GGUF_STRING = 8, G2_GGUF_ARRAY = 9,
    G2_GGUF_U64 = 10, G2_GGUF_I64 = 11, G2_GGUF_F64 = 12
};

typedef struct {
    const char *ptr; /* into the mapped file; not NUL-terminated */
    uint64_t len;
} g2_gguf_str;

typedef struct {
    char *key;
    int type; /* G2_GGUF_* */
    /* scalars: */
    int64_t i;  /* integer and bool values */
    double f;   /* float values (and integers, converted) */
    g2_gguf_str str;
    /* arrays: */
    int arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data; /* raw elements, for numeric arrays */
    g2_gguf_str *arr_str;    /* arr_n strings, for string arrays */
} g2_gguf_kv;

typedef struct {
    char *name;
    int n_dims;
    int64_t ne[4]; /* ne[0] innermost; unused dims are 1 */
    int type;      /* gemma2_weight_type numbering (ggml's) */
    const void *data;
    size_t nbytes;
} g2_gguf_tensor;

typedef struct {
    g2_mapped_file file;
    uint32_t version;
    int64_t n_kv;
    g2_gguf_kv *kv;
    int64_t n_tensors;
    g2_gguf_tensor *tensors;
    uint64_t alignment;
} g2_gguf;

gemma2_status g2_gguf_open(const char *path, g2_gguf *g, gemma2_error *err);
void g2_gguf_close(g2_gguf *g);

const g2_gguf_kv *g2_gguf_find(const g2_gguf *g, const char *key);
const g2_gguf_tensor *g2_gguf_find_tensor(const g2_gguf *g, const char *name);
/* A numeric scalar (any integer or float type) as int64 / double; 0 = missing or not a number. */
int g2_gguf_get_int(const g2_gguf *g, const char *key, int64_t *out);
int g2_gguf_get_float(const g2_gguf *g, const char *key, double *out);
/* Element i of a numeric array as double (no bounds check beyond arr_n). */
double g2_gguf_array_num(const g2_gguf_kv *kv, uint64_t i);

#endif
