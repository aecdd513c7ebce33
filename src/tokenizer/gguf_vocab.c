/* gguf_vocab.c - the vocabulary of a GGUF file (tokenizer.ggml.*), turned back into
 * SentencePiece's view so that encoding gives SentencePiece's ids.
 *
 * llama.cpp's converter (convert_hf_to_gguf.py, Gemma 2) writes the pieces of tokenizer.model but
 * re-types them (../shared/oracle/README.md, "Tokenizer metadata"):
 *   - the added tokens it finds "special" become CONTROL: <pad> <eos> <bos> <unk>, and also
 *     <start_of_turn>, <end_of_turn>, <mask>, <unused0..98> ..., which SentencePiece has as
 *     USER_DEFINED (matched in text). We keep CONTROL only for the bos / eos / pad ids, make the
 *     unknown id UNKNOWN, and every other CONTROL piece USER_DEFINED again.
 *   - the user-defined pieces at the end of the vocabulary ([toxicity=0], tab runs, <unused99>)
 *     come out NORMAL with score 0. In a SentencePiece BPE model the NORMAL pieces have strictly
 *     decreasing scores (the k-th merge scores -k), so a NORMAL piece scoring above an earlier
 *     NORMAL piece cannot be a learned piece: it is user-defined.
 *   - the added `▁` runs (ids 139..168) are written with spaces. A SentencePiece piece never
 *     holds a space (the normalizer turned them into `▁`), so every space becomes `▁`. */
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "tokenizer/vocab.h"
#include "util/error.h"

enum { GGUF_NORMAL = 1, GGUF_UNKNOWN = 2, GGUF_CONTROL = 3, GGUF_USER_DEFINED = 4, GGUF_UNUSED = 5, GGUF_BYTE = 6 };

static int32_t get_id(const g2_gguf *g, const char *key) {
    int64_t v;
    return g2_gguf_get_int(g, key, &v) && v >= 0 && v < INT32_MAX ? (int32_t)v : -1;
}

gemma2_status g2_load_gguf(const char *path, gemma2_tokenizer **out, gemma2_error *err) {
    *out = NULL;
    g2_gguf g;
    gemma2_status st = g2_gguf_open(path, &g, err);
    if (st) return st;
    gemma2_tokenizer *t = NULL;
    char *buf = NULL;
    const g2_gguf_kv *model = g2_gguf_find(&g, "tokenizer.ggml.model");
    const g2_gguf_kv *tokens = g2_gguf_find(&g, "tokenizer.ggml.tokens");
    const g2_gguf_kv *scores = g2_gguf_find(&g, "tokenizer.ggml.scores");
    const g2_gguf_kv *types = g2_gguf_find(&g, "tokenizer.ggml.token_type");
    if (!tokens || tokens->type != G2_GGUF_ARRAY || tokens->arr_type != G2_GGUF_STRING || tokens->arr_n == 0) {
        st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: no tokenizer.ggml.tokens string array", path);
        goto done;
    }
    if (model && model->type == G2_GGUF_STRING &&
        !(model->str.len == 5 && memcmp(model->str.ptr, "llama", 5) == 0)) {
        st = g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model is \"%.*s\"; only \"llama\" (SentencePiece) is supported",
                     path, (int)(model->str.len > 32 ? 32 : model->str.len), model->str.ptr);
        goto done;
    }
    uint64_t n = tokens->arr_n;
    if (n > 0x7FFFFFF) {
        st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: %llu tokens", path, (unsigned long long)n);
        goto done;
    }
    if (scores && (scores->type != G2_GGUF_ARRAY || scores->arr_n != n || scores->arr_type == G2_GGUF_STRING)) {
        st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: tokenizer.ggml.scores does not have one number per token", path);
        goto done;
    }
    if (types && (types->type != G2_GGUF_ARRAY || types->arr_n != n || types->arr_type == G2_GGUF_STRING)) {
        st = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: tokenizer.ggml.token_type does not have one number per token", path);
        goto done;
    }
    int32_t bos = get_id(&g, "tokenizer.ggml.bos_token_id");
    int32_t eos = get_id(&g, "tokenizer.ggml.eos_token_id");
    int32_t pad = get_id(&g, "tokenizer.ggml.padding_token_id");
    int32_t unk = get_id(&g, "tokenizer.ggml.unknown_token_id");

    t = g2_tok_new((int32_t)n, GEMMA2_TOKENIZER_GGUF);
    if (!t) {
        st = g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    t->add_dummy_prefix = 0;
    const g2_gguf_kv *asp = g2_gguf_find(&g, "tokenizer.ggml.add_space_prefix");
    if (asp && asp->type == G2_GGUF_BOOL) t->add_dummy_prefix = asp->i != 0;
    t->remove_extra_whitespaces = 0;
    size_t cap = 256;
    buf = malloc(cap);
    float min_normal = 0;
    int seen_normal = 0, n_bytes = 0;
    for (uint64_t i = 0; i < n && buf; i++) {
        const g2_gguf_str *s = &tokens->arr_str[i];
        if (s->len * 3 + 1 > cap) {
            cap = s->len * 3 + 1;
            char *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        size_t len = 0;
        for (uint64_t k = 0; k < s->len; k++) {
            if (s->ptr[k] == ' ') {
                memcpy(buf + len, "\xE2\x96\x81", 3);
                len += 3;
            } else {
                buf[len++] = s->ptr[k];
            }
        }
        float score = scores ? (float)g2_gguf_array_num(scores, i) : 0.0f;
        int gt = types ? (int)g2_gguf_array_num(types, i) : GGUF_NORMAL;
        int32_t id = (int32_t)i;
        int type;
        switch (gt) {
        case GGUF_UNKNOWN: type = GEMMA2_PIECE_UNKNOWN; break;
        case GGUF_CONTROL:
            type = id == unk ? GEMMA2_PIECE_UNKNOWN
                 : (id == bos || id == eos || id == pad) ? GEMMA2_PIECE_CONTROL
                 : GEMMA2_PIECE_USER_DEFINED;
            break;
        case GGUF_USER_DEFINED: type = GEMMA2_PIECE_USER_DEFINED; break;
        case GGUF_UNUSED: type = GEMMA2_PIECE_UNUSED; break;
        case GGUF_BYTE: type = GEMMA2_PIECE_BYTE; n_bytes++; break;
        default:
            type = GEMMA2_PIECE_NORMAL;
            if (seen_normal && score > min_normal) type = GEMMA2_PIECE_USER_DEFINED;
            else {
                min_normal = seen_normal && min_normal < score ? min_normal : score;
                seen_normal = 1;
            }
            break;
        }
        if (id == unk) type = GEMMA2_PIECE_UNKNOWN;
        if (type == GEMMA2_PIECE_USER_DEFINED || type == GEMMA2_PIECE_CONTROL || type == GEMMA2_PIECE_UNKNOWN)
            score = 0; /* SentencePiece's score for them; the converter wrote -1000 */
        st = g2_tok_set_piece(t, id, buf, len, score, type, err);
        if (st) goto done;
    }
    if (!buf) {
        st = g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    t->byte_fallback = n_bytes > 0;
    t->bos = bos >= 0 && bos < (int32_t)n ? bos : -1;
    t->eos = eos >= 0 && eos < (int32_t)n ? eos : -1;
    t->pad = pad >= 0 && pad < (int32_t)n ? pad : -1;
    st = g2_tok_finish(t, path, err);
done:
    free(buf);
    g2_gguf_close(&g);
    if (st) {
        gemma2_tokenizer_free(t);
        return st;
    }
    *out = t;
    return GEMMA2_OK;
}
