/* safetensors.h - reading (memory-mapped) and writing safetensors files.
 *
 * Layout: u64 little-endian N, then N bytes of JSON header mapping each tensor name to
 * {"dtype": "F32"|"BF16"|..., "shape": [...], "data_offsets": [begin, end]} (offsets relative to
 * the byte after the header, end exclusive), plus an optional "__metadata__" object of strings.
 * Every offset and shape is checked against the file size before use. */
#ifndef G2_SAFETENSORS_H
#define G2_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "gemma2.h"
#include "util/mapped_file.h"

/* Element types: the float types use the gemma2_weight_type numbers; integer ones follow. */
enum { G2_DT_I32 = 100, G2_DT_I64 = 101, G2_DT_U8 = 102, G2_DT_I8 = 103, G2_DT_I16 = 104,
       G2_DT_F64 = 105, G2_DT_BOOL = 106 };

#define G2_MAX_DIMS 4

typedef struct {
    char *name;
    int dtype;
    int n_dims;
    int64_t shape[G2_MAX_DIMS]; /* outermost first (row-major) */
    const void *data;           /* points into the mapped file */
    size_t nbytes;
} g2_st_tensor;

typedef struct {
    g2_mapped_file file;
    int n_tensors;
    g2_st_tensor *tensors;
} g2_safetensors;

gemma2_status g2_safetensors_open(const char *path, g2_safetensors *st, gemma2_error *err);
void g2_safetensors_close(g2_safetensors *st);
const g2_st_tensor *g2_safetensors_find(const g2_safetensors *st, const char *name);

/* Bytes of one element of `dtype` (0 if unknown). */
size_t g2_dtype_size(int dtype);
const char *g2_st_dtype_name(int dtype);

/* A tensor to write. */
typedef struct {
    const char *name;
    int dtype;
    int n_dims;
    int64_t shape[G2_MAX_DIMS];
    const void *data;
} g2_st_out;

/* Writes `n` tensors to `path` atomically (a temporary file in the same folder, then
 * rename): a crash leaves either the old file or the new one, never a partial file. */
gemma2_status g2_safetensors_write(const char *path, const g2_st_out *tensors, int n,
                                   gemma2_error *err);

#endif
