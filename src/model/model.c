/* model.c - gemma2_model_open: a directory is a Hugging Face checkpoint, a file is GGUF. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* MemAvailable of /proc/meminfo in bytes; 0 when unknown. */
static size_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return (size_t)kb * 1024;
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

/* Repacks one tensor (g2_tensor_repack_r16's return); counts it, and what r16e saves. */
static int repack_one(gemma2_model *m, g2_tensor *t) {
    const int r = g2_tensor_repack_r16(t, m->n_threads);
    m->stats.n_repacked += r == 0;
    if (r == 0 && t->layout == G2_LAYOUT_R16E) { /* the quarter of the tensor that r16e left unused */
        const size_t used = (size_t)(t->rows / G2_R16) * G2_R16E_GROUP_BYTES(t->cols), all = (size_t)t->rows * t->row_bytes;
        g2_mapped_file_release((const uint8_t *)t->data + used, all - used);
        m->stats.read_bytes -= all - used;
    }
    return r;
}

/* In read mode the weights are the process's own memory: on AVX-512 and AVX2 (the r16 kernels'
 * instruction sets, g2_r16_kernels_available) the matrices are repacked in place into the r16
 * layout (kernels/repack.h) where their type and shape allow it. That includes the token
 * embedding, the output head of every token; looking up a token's row then unpacks its group
 * of 16 (g2_tensor_row_f32), a few microseconds per token. Tensors packed in 12 bits a weight
 * (r16e, where AVX2 is the best ISA: BF16, and F16 holding BF16 values) give the quarter they
 * no longer use back. */
static gemma2_status repack_weights(gemma2_model *m, gemma2_error *err) {
    for (int i = 0; i < n_files(m); i++)
        if (g2_mapped_file_set_writable(file_at(m, i), 1))
            return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: cannot make the weights writable", file_at(m, i)->path);
    int failed = repack_one(m, &m->embed) < 0;
    for (int l = 0; l < m->cfg.num_layers && !failed; l++) {
        g2_layer *L = &m->layers[l];
        g2_tensor *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
        for (size_t j = 0; j < sizeof mats / sizeof mats[0] && !failed; j++) failed = repack_one(m, mats[j]) < 0;
    }
    for (int i = 0; i < n_files(m); i++) g2_mapped_file_set_writable(file_at(m, i), 0);
    if (failed) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory while repacking the weights");
    return GEMMA2_OK;
}

gemma2_status gemma2_model_open(const char *path, const gemma2_model_options *opt, gemma2_model **out,
                                gemma2_error *err) {
    *out = NULL;
    if (!path || !*path) return g2_fail(err, GEMMA2_ERR_ARG, "no model path given");
    gemma2_model *m = calloc(1, sizeof *m);
    if (!m) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    m->n_threads = opt ? opt->n_threads : 0;
    gemma2_status s = g2_is_dir(path) ? open_hf(m, path, err) : open_gguf(m, path, err);
    gemma2_load_mode mode = opt ? opt->load_mode : GEMMA2_LOAD_MMAP;
    if (!s && mode == GEMMA2_LOAD_AUTO) {
        size_t bytes = 0, avail = mem_available();
        for (int i = 0; i < n_files(m); i++) bytes += file_at(m, i)->size;
        mode = avail && bytes <= avail / 4 * 3 ? GEMMA2_LOAD_READ : GEMMA2_LOAD_MMAP;
    }
    m->stats.load_mode = mode == GEMMA2_LOAD_READ ? GEMMA2_LOAD_READ : GEMMA2_LOAD_MMAP;
    if (!s && mode == GEMMA2_LOAD_READ)
        for (int i = 0; !s && i < n_files(m); i++) s = g2_mapped_file_to_memory(file_at(m, i), err);
    if (!s) s = g2_model_bind_weights(m, err);
    m->stats.read_bytes = m->stats.weight_bytes; /* repack_weights takes off what r16e saves */
    if (!s && mode == GEMMA2_LOAD_READ && g2_r16_kernels_available()) s = repack_weights(m, err);
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
