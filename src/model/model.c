/* model.c - gemma2_model_open: a directory is a Hugging Face checkpoint, a file is GGUF. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/config.h"
#include "kernels/repack.h"
#include "model/model_impl.h"
#include "util/mapped_file.h"
#include "util/error.h"

gemma2_model_options gemma2_model_default_options(void) {
    gemma2_model_options o = {0};
    o.load_mode = GEMMA2_LOAD_AUTO;
    return o;
}

static gemma2_status open_hf(gemma2_model *m, const char *path, gemma2_error *err) {
    m->format = GEMMA2_FORMAT_HF;
    gemma2_status s = g2_hf_dir_open(path, &m->hf, err);
    if (s) return s;
    char where[4200];
    snprintf(where, sizeof where, "%s/config.json", path);
    return g2_config_from_json(where, m->hf.config_json, &m->cfg, err);
}

static gemma2_status open_gguf(gemma2_model *m, const char *path, gemma2_error *err) {
    m->format = GEMMA2_FORMAT_GGUF;
    gemma2_status s = g2_gguf_open(path, &m->gguf, err);
    if (s) return s;
    return g2_config_from_gguf(&m->gguf, &m->cfg, err);
}

/* The mapped files of the model (one GGUF, or the HF shards). */
static int n_files(const gemma2_model *m) { return m->format == GEMMA2_FORMAT_GGUF ? 1 : m->hf.n_shards; }
static g2_mapped_file *file_at(gemma2_model *m, int i) {
    return m->format == GEMMA2_FORMAT_GGUF ? &m->gguf.file : &m->hf.shards[i].file;
}

/* The weight matrices, i < 1 + 7 * num_layers: the token embedding, then each layer's. */
static int n_matrices(const gemma2_model *m) { return 1 + 7 * m->cfg.num_layers; }
static g2_tensor *matrix_at(gemma2_model *m, int i) {
    if (i == 0) return &m->embed;
    g2_layer *L = &m->layers[(i - 1) / 7];
    g2_tensor *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
    return mats[(i - 1) % 7];
}

/* The file that holds t's bytes (-1 for none: cannot happen for a bound tensor). */
static int file_of(gemma2_model *m, const g2_tensor *t) {
    const uint8_t *p = t->data;
    for (int i = 0; i < n_files(m); i++) {
        const g2_mapped_file *f = file_at(m, i);
        if (f->data && p >= f->data && p < f->data + f->size) return i;
    }
    return -1;
}

/* Where t's bytes start in file i (file_of). */
static size_t offset_in_file(gemma2_model *m, const g2_tensor *t, int i) {
    return (size_t)((const uint8_t *)t->data - file_at(m, i)->data);
}

/* The bytes of an r16e tensor past its packed groups: the quarter r16e does not use. */
static size_t r16e_unused(const g2_tensor *t) {
    return (size_t)t->rows * t->row_bytes - (size_t)(t->rows / G2_R16) * G2_R16E_GROUP_BYTES(t->cols);
}

/* In read mode, tensors that go into r16e (BF16, and F16 holding BF16 values, where
 * g2_r16e_wanted) are not copied with the rest of the file: they are read a group at a time and
 * packed straight into place (g2_tensor_pack_r16e_streamed), so the quarter of their bytes r16e
 * saves is never in memory. That lowers the peak RSS of such a model from its file size to its
 * packed size and leaves the load less to write. */
static int streamed(gemma2_model *m, const g2_tensor *t) { return g2_r16e_candidate(t) && file_of(m, t) >= 0; }

/* Does an F16 tensor's first group of 16 rows hold BF16 values only? Read from the file (the
 * mapping's pages would count in the RSS); 0 when it cannot be read. */
static int f16_looks_bf16(gemma2_model *m, const g2_tensor *t, const int *fds) {
    const int i = file_of(m, t);
    const size_t gbytes = t->row_bytes * G2_R16;
    uint8_t *g = malloc(gbytes);
    const int yes = g && !g2_pread_all(fds[i], g, gbytes, offset_in_file(m, t, i)) && !g2_f16_to_bf16_exact_avx2(g, g, gbytes / 2);
    free(g);
    return yes;
}

/* What the streamed tensors would save, for the choice of load mode: BF16 ones, and F16 ones
 * whose first group holds BF16 values only (an F16 file converted from BF16: a true F16 tensor
 * shows itself in its first group, bar a group of exact values by chance, which the 1/4 of
 * margin of `auto` absorbs). */
static size_t r16e_saving(gemma2_model *m, const int *fds) {
    size_t saved = 0;
    for (int i = 0; i < n_matrices(m); i++) {
        const g2_tensor *t = matrix_at(m, i);
        if (streamed(m, t) && (t->type == GEMMA2_TYPE_BF16 || f16_looks_bf16(m, t, fds))) saved += r16e_unused(t);
    }
    return saved;
}

static int cmp_range(const void *a, const void *b) {
    const size_t x = ((const g2_byte_range *)a)->off, y = ((const g2_byte_range *)b)->off;
    return (x > y) - (x < y);
}

/* Copies every file into memory except the streamed tensors' bytes. */
static gemma2_status files_to_memory(gemma2_model *m, gemma2_error *err) {
    g2_byte_range *skip = malloc(sizeof *skip * (size_t)n_matrices(m));
    if (!skip) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    gemma2_status s = GEMMA2_OK;
    for (int i = 0; !s && i < n_files(m); i++) {
        size_t n = 0;
        for (int j = 0; j < n_matrices(m); j++) {
            const g2_tensor *t = matrix_at(m, j);
            if (streamed(m, t) && file_of(m, t) == i)
                skip[n++] = (g2_byte_range){offset_in_file(m, t, i), (size_t)t->rows * t->row_bytes};
        }
        qsort(skip, n, sizeof *skip, cmp_range);
        s = g2_mapped_file_to_memory(file_at(m, i), skip, n, err);
    }
    free(skip);
    return s;
}

typedef struct {
    int fd;
    size_t base; /* the tensor's offset in the file */
} tensor_source;

static int read_tensor_part(void *ctx, size_t off, void *dst, size_t n) {
    const tensor_source *src = ctx;
    return g2_pread_all(src->fd, dst, n, src->base + off);
}

/* Repacks one tensor (streamed from its file, or in place); counts it, and what r16e saves.
 * Returns 0, 1 (left as it is), -1 out of memory, -2 a read failed. */
static int repack_one(gemma2_model *m, g2_tensor *t, const int *fds) {
    int r;
    if (streamed(m, t)) {
        const int i = file_of(m, t);
        tensor_source src = {fds[i], offset_in_file(m, t, i)};
        r = g2_tensor_pack_r16e_streamed(t, m->n_threads, read_tensor_part, &src);
    } else {
        r = g2_tensor_repack_r16(t, m->n_threads);
    }
    m->stats.n_repacked += r == 0;
    if (r == 0 && t->layout == G2_LAYOUT_R16E) { /* given back where an in-place repack had touched it */
        const size_t unused = r16e_unused(t);
        g2_mapped_file_release((const uint8_t *)t->data + (size_t)t->rows * t->row_bytes - unused, unused);
        m->stats.read_bytes -= unused;
    }
    return r;
}

/* In read mode the weights are the process's own memory: on AVX-512 and AVX2 (the r16 kernels'
 * instruction sets, g2_r16_kernels_available) the matrices are repacked in place into the r16
 * layout (kernels/repack.h) where their type and shape allow it. That includes the token
 * embedding, the output head of every token; looking up a token's row then unpacks its group
 * of 16 (g2_tensor_row_f32), a few microseconds per token. Tensors packed in 12 bits a weight
 * (r16e, where g2_r16e_wanted: BF16, and F16 holding BF16 values) are read from their
 * file and packed here (`streamed` above). */
static gemma2_status repack_weights(gemma2_model *m, const int *fds, gemma2_error *err) {
    gemma2_status s = GEMMA2_OK;
    for (int i = 0; !s && i < n_files(m); i++)
        if (g2_mapped_file_set_writable(file_at(m, i), 1))
            s = g2_fail(err, GEMMA2_ERR_NOMEM, "%s: cannot make the weights writable", file_at(m, i)->path);
    for (int j = 0; !s && j < n_matrices(m); j++) {
        g2_tensor *t = matrix_at(m, j);
        const int r = repack_one(m, t, fds);
        if (r == -1) s = g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory while repacking the weights");
        if (r == -2)
            s = g2_fail(err, GEMMA2_ERR_IO, "%s: read failed (file changed or truncated?)", file_at(m, file_of(m, t))->path);
    }
    for (int i = 0; i < n_files(m); i++) g2_mapped_file_set_writable(file_at(m, i), 0);
    return s;
}

/* The model's files opened for pread (the streamed tensors, and the look at F16 ones): *out
 * holds one descriptor per file, for close_files. */
static gemma2_status open_files(gemma2_model *m, int **out, gemma2_error *err) {
    int *fds = malloc(sizeof *fds * (size_t)n_files(m));
    if (!fds) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    *out = fds;
    for (int i = 0; i < n_files(m); i++) fds[i] = -1;
    for (int i = 0; i < n_files(m); i++)
        if ((fds[i] = open(file_at(m, i)->path, O_RDONLY)) < 0)
            return g2_fail(err, GEMMA2_ERR_IO, "%s: cannot open: %s", file_at(m, i)->path, strerror(errno));
    return GEMMA2_OK;
}
static void close_files(gemma2_model *m, int *fds) {
    for (int i = 0; fds && i < n_files(m); i++)
        if (fds[i] >= 0) close(fds[i]);
    free(fds);
}

gemma2_status gemma2_model_open(const char *path, const gemma2_model_options *opt, gemma2_model **out,
                                gemma2_error *err) {
    *out = NULL;
    if (!path || !*path) return g2_fail(err, GEMMA2_ERR_ARG, "no model path given");
    gemma2_model *m = calloc(1, sizeof *m);
    if (!m) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    m->n_threads = opt ? opt->n_threads : 0;
    gemma2_status s = g2_is_dir(path) ? open_hf(m, path, err) : open_gguf(m, path, err);
    /* bound to the file mappings; in read mode the copies take their place at the same addresses */
    if (!s) s = g2_model_bind_weights(m, err);
    gemma2_load_mode mode = opt ? opt->load_mode : GEMMA2_LOAD_MMAP;
    int *fds = NULL;
    if (!s && mode != GEMMA2_LOAD_MMAP && g2_r16_kernels_available()) s = open_files(m, &fds, err);
    if (!s && mode == GEMMA2_LOAD_AUTO) {
        size_t bytes = 0, avail = g2_mem_available();
        for (int i = 0; i < n_files(m); i++) bytes += file_at(m, i)->size;
        if (fds) bytes -= r16e_saving(m, fds);
        mode = avail && bytes <= avail / 4 * 3 ? GEMMA2_LOAD_READ : GEMMA2_LOAD_MMAP;
    }
    m->stats.load_mode = mode == GEMMA2_LOAD_READ ? GEMMA2_LOAD_READ : GEMMA2_LOAD_MMAP;
    const int repack = mode == GEMMA2_LOAD_READ && fds; /* where there are r16 kernels */
    if (!s && mode == GEMMA2_LOAD_READ) {
        if (repack) s = files_to_memory(m, err);
        for (int i = 0; !s && !repack && i < n_files(m); i++) s = g2_mapped_file_to_memory(file_at(m, i), NULL, 0, err);
    }
    m->stats.read_bytes = m->stats.weight_bytes; /* repack_weights takes off what r16e saves */
    if (!s && repack) s = repack_weights(m, fds, err);
    close_files(m, fds);
    if (s) {
        gemma2_model_close(m);
        return s;
    }
    m->stats.n_params = g2_config_param_count(&m->cfg);
    if (m->format == GEMMA2_FORMAT_HF)
        for (int i = 0; i < m->hf.n_shards; i++) m->stats.file_bytes += m->hf.shards[i].file.size;
    else
        m->stats.file_bytes = m->gguf.file.size;
    *out = m;
    return GEMMA2_OK;
}

void gemma2_model_close(gemma2_model *m) {
    if (!m) return;
    g2_hf_dir_close(&m->hf);
    g2_gguf_close(&m->gguf);
    free(m->layers);
    free(m->norm_scales);
    free(m);
}

const gemma2_config *gemma2_model_config(const gemma2_model *m) { return &m->cfg; }
gemma2_format gemma2_model_format(const gemma2_model *m) { return m->format; }
void gemma2_model_get_stats(const gemma2_model *m, gemma2_model_stats *out) { *out = m->stats; }

size_t gemma2_kv_cache_bytes(const gemma2_config *c, int n_ctx) {
    size_t kv = (size_t)c->num_kv_heads * (size_t)c->head_dim, total = 0;
    for (int l = 0; l < c->num_layers; l++) {
        size_t cap = (size_t)n_ctx;
        if (gemma2_layer_is_local(c, l) && (size_t)c->sliding_window < cap) cap = (size_t)c->sliding_window;
        total += 2 * cap * kv * sizeof(float);
    }
    return total;
}
