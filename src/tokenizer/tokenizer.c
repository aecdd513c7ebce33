/* tokenizer.c - gemma2_tokenizer_load(): recognising the source, and the accessors. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer/vocab.h"
#include "util/error.h"
#include "util/mapped_file.h"

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

gemma2_status gemma2_tokenizer_load_spm(const void *data, size_t size, const char *name, gemma2_tokenizer **out,
                                        gemma2_error *err) {
    return g2_load_spm(data, size, name ? name : "tokenizer.model", out, err);
}

gemma2_status gemma2_tokenizer_load_hf_json(const char *json, size_t size, const char *name,
                                            gemma2_tokenizer **out, gemma2_error *err) {
    return g2_load_hf_json(json, size, name ? name : "tokenizer.json", out, err);
}

gemma2_status gemma2_tokenizer_load(const char *path, gemma2_tokenizer **out, gemma2_error *err) {
    *out = NULL;
    if (!path) return g2_fail(err, GEMMA2_ERR_ARG, "gemma2_tokenizer_load: no path");
    struct stat st;
    if (stat(path, &st) != 0) return g2_fail(err, GEMMA2_ERR_IO, "%s: no such file or directory", path);
    if (S_ISDIR(st.st_mode)) {
        /* a model directory: SentencePiece's own file first, it is the original */
        static const char *const names[] = {"tokenizer.model", "tokenizer.json"};
        for (size_t i = 0; i < 2; i++) {
            size_t n = strlen(path) + strlen(names[i]) + 2;
            char *p = malloc(n);
            if (!p) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
            snprintf(p, n, "%s/%s", path, names[i]);
            if (is_file(p)) {
                gemma2_status s = gemma2_tokenizer_load(p, out, err);
                free(p);
                return s;
            }
            free(p);
        }
        return g2_fail(err, GEMMA2_ERR_IO, "%s: directory has neither tokenizer.model nor tokenizer.json", path);
    }
    g2_mapped_file f;
    gemma2_status s = g2_map_file(path, &f, err);
    if (s) return s;
    if (f.size == 0) {
        g2_unmap_file(&f);
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: empty file", path);
    }
    if (f.size >= 4 && memcmp(f.data, "GGUF", 4) == 0) {
        g2_unmap_file(&f);
        return g2_load_gguf(path, out, err);
    }
    size_t i = 0;
    while (i < f.size && (f.data[i] == ' ' || f.data[i] == '\n' || f.data[i] == '\r' || f.data[i] == '\t')) i++;
    if (i < f.size && f.data[i] == '{')
        s = g2_load_hf_json((const char *)f.data, f.size, path, out, err);
    else
        s = g2_load_spm(f.data, f.size, path, out, err);
    g2_unmap_file(&f);
    return s;
}

gemma2_tokenizer_source gemma2_tokenizer_get_source(const gemma2_tokenizer *t) { return t->source; }
int gemma2_tokenizer_vocab_size(const gemma2_tokenizer *t) { return t->n; }

const char *gemma2_tokenizer_piece(const gemma2_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n) return NULL;
    return g2_tok_text(t, id, len);
}

float gemma2_tokenizer_score(const gemma2_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n ? t->score[id] : 0.0f;
}

gemma2_piece_type gemma2_tokenizer_piece_type(const gemma2_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n ? (gemma2_piece_type)t->type[id] : (gemma2_piece_type)0;
}

int32_t gemma2_tokenizer_piece_to_id(const gemma2_tokenizer *t, const char *piece, size_t len) {
    return g2_tok_lookup(t, piece, len);
}

int32_t gemma2_tokenizer_bos_id(const gemma2_tokenizer *t) { return t->bos; }
int32_t gemma2_tokenizer_eos_id(const gemma2_tokenizer *t) { return t->eos; }
int32_t gemma2_tokenizer_pad_id(const gemma2_tokenizer *t) { return t->pad; }
int32_t gemma2_tokenizer_unk_id(const gemma2_tokenizer *t) { return t->unk; }
int32_t gemma2_tokenizer_start_of_turn_id(const gemma2_tokenizer *t) { return t->sot; }
int32_t gemma2_tokenizer_end_of_turn_id(const gemma2_tokenizer *t) { return t->eot; }
