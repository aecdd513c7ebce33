/* safetensors.c - safetensors reader (validating every offset) and atomic writer. */
#define _POSIX_C_SOURCE 200809L
#include "formats/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/atomic_file.h"
#include "util/error.h"

static const struct {
    const char *name;
    int dtype;
    size_t size;
} k_dtypes[] = {
    {"F32", GEMMA2_TYPE_F32, 4}, {"F16", GEMMA2_TYPE_F16, 2}, {"BF16", GEMMA2_TYPE_BF16, 2},
    {"I32", G2_DT_I32, 4},       {"I64", G2_DT_I64, 8},       {"U8", G2_DT_U8, 1},
    {"I8", G2_DT_I8, 1},         {"I16", G2_DT_I16, 2},       {"F64", G2_DT_F64, 8},
    {"BOOL", G2_DT_BOOL, 1},
};
#define N_DTYPES (sizeof k_dtypes / sizeof k_dtypes[0])

size_t g2_dtype_size(int dtype) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (k_dtypes[i].dtype == dtype) return k_dtypes[i].size;
    return 0;
}

const char *g2_st_dtype_name(int dtype) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (k_dtypes[i].dtype == dtype) return k_dtypes[i].name;
    return "?";
}

static int parse_dtype(const char *s) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(k_dtypes[i].name, s) == 0) return k_dtypes[i].dtype;
    return -1;
}

/* A JSON number that is a non-negative integer below 2^53. */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static gemma2_status parse_tensor(const char *path, const cJSON *item, const uint8_t *base,
                                  uint64_t data_size, g2_st_tensor *t, gemma2_error *err) {
    const char *name = item->string;
    if (!cJSON_IsObject(item))
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", path, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return g2_fail(err, GEMMA2_ERR_FORMAT,
                       "%s: tensor '%s': needs dtype (string), shape (array), data_offsets ([begin, end])",
                       path, name);
    t->dtype = parse_dtype(jd->valuestring);
    if (t->dtype < 0)
        return g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: tensor '%s': unsupported dtype '%s'", path, name,
                       jd->valuestring);
    int nd = cJSON_GetArraySize(js);
    if (nd > G2_MAX_DIMS)
        return g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions (at most %d)", path, name,
                       nd, G2_MAX_DIMS);
    t->n_dims = nd;
    uint64_t count = 1;
    for (int i = 0; i < nd; i++) {
        uint64_t v;
        if (!json_uint(cJSON_GetArrayItem(js, i), &v) || v > (1ull << 40))
            return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: tensor '%s': bad shape entry %d", path, name, i);
        t->shape[i] = (int64_t)v;
        if (v && count > (1ull << 50) / v)
            return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: tensor '%s': shape too large", path, name);
        count *= v;
    }
    uint64_t b, e;
    if (!json_uint(cJSON_GetArrayItem(jo, 0), &b) || !json_uint(cJSON_GetArrayItem(jo, 1), &e) || e < b)
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: tensor '%s': bad data_offsets", path, name);
    if (e > data_size)
        return g2_fail(err, GEMMA2_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets end %llu is past the end of the data (%llu bytes; "
                       "file truncated?)",
                       path, name, (unsigned long long)e, (unsigned long long)data_size);
    uint64_t want = count * g2_dtype_size(t->dtype);
    if (e - b != want)
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: tensor '%s': %llu bytes of data, shape and dtype need %llu",
                       path, name, (unsigned long long)(e - b), (unsigned long long)want);
    t->data = base + b;
    t->nbytes = (size_t)want;
    t->name = strdup(name);
    if (!t->name) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    return GEMMA2_OK;
}

gemma2_status g2_safetensors_open(const char *path, g2_safetensors *st, gemma2_error *err) {
    memset(st, 0, sizeof *st);
    gemma2_status s = g2_map_file(path, &st->file, err);
    if (s) return s;
    const uint8_t *p = st->file.data;
    size_t size = st->file.size;
    if (size < 8) {
        g2_safetensors_close(st);
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: too short for a safetensors file (%zu bytes)", path, size);
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | p[i];
    if (n < 2 || n > size - 8 || n > (100u << 20)) {
        g2_safetensors_close(st);
        return g2_fail(err, GEMMA2_ERR_FORMAT,
                       "%s: not a safetensors file or truncated: header length %llu, file size %zu", path,
                       (unsigned long long)n, size);
    }
    cJSON *root = cJSON_ParseWithLength((const char *)p + 8, (size_t)n);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        g2_safetensors_close(st);
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: safetensors header is not a valid JSON object", path);
    }
    int count = 0;
    for (cJSON *it = root->child; it; it = it->next)
        if (strcmp(it->string, "__metadata__") != 0) count++;
    st->tensors = calloc(count ? (size_t)count : 1, sizeof *st->tensors);
    if (!st->tensors) {
        cJSON_Delete(root);
        g2_safetensors_close(st);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", path);
    }
    const uint8_t *base = p + 8 + n;
    uint64_t data_size = size - 8 - n;
    for (cJSON *it = root->child; it; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) continue;
        s = parse_tensor(path, it, base, data_size, &st->tensors[st->n_tensors], err);
        if (s) {
            cJSON_Delete(root);
            g2_safetensors_close(st);
            return s;
        }
        st->n_tensors++;
    }
    cJSON_Delete(root);
    return GEMMA2_OK;
}

void g2_safetensors_close(g2_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    g2_unmap_file(&st->file);
    memset(st, 0, sizeof *st);
}

const g2_st_tensor *g2_safetensors_find(const g2_safetensors *st, const char *name) {
    for (int i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

gemma2_status g2_safetensors_write(const char *path, const g2_st_out *tensors, int n, gemma2_error *err) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const g2_st_out *t = &tensors[i];
        uint64_t count = 1;
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        cJSON_AddStringToObject(e, "dtype", g2_st_dtype_name(t->dtype));
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->n_dims; d++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
            count *= (uint64_t)t->shape[d];
        }
        uint64_t nb = count * g2_dtype_size(t->dtype);
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + nb)));
        off += nb;
    }
    char *hdr = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!hdr) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    size_t hlen = strlen(hdr), padded = (hlen + 7) & ~(size_t)7;

    g2_atomic_file af;
    gemma2_status s = g2_atomic_open(path, &af, err);
    if (s) {
        free(hdr);
        return s;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, af.fp) == 8 && fwrite(hdr, 1, hlen, af.fp) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', af.fp) != EOF;
    free(hdr);
    for (int i = 0; ok && i < n; i++) {
        const g2_st_out *t = &tensors[i];
        size_t count = 1;
        for (int d = 0; d < t->n_dims; d++) count *= (size_t)t->shape[d];
        size_t nb = count * g2_dtype_size(t->dtype);
        ok = fwrite(t->data, 1, nb, af.fp) == nb;
    }
    if (!ok) {
        g2_atomic_abort(&af);
        return g2_fail(err, GEMMA2_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return g2_atomic_commit(&af, err);
}
