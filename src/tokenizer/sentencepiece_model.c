/* sentencepiece_model.c - reading a SentencePiece ModelProto (tokenizer.model).
 *
 * The subset of sentencepiece_model.proto that encoding needs:
 *   ModelProto      1 pieces (repeated SentencePiece)  2 trainer_spec  3 normalizer_spec
 *   SentencePiece   1 piece (string)  2 score (float)  3 type (enum, default NORMAL)
 *   TrainerSpec     3 model_type (BPE = 2)  35 byte_fallback  40..43 unk/bos/eos/pad ids
 *                   44 unk_surface
 *   NormalizerSpec  1 name  2 precompiled_charsmap  3 add_dummy_prefix (default true)
 *                   4 remove_extra_whitespaces (default true)  5 escape_whitespaces (default true)
 * Everything else is skipped. Only BPE models with an identity normalizer (no character map)
 * are accepted: that is what Gemma uses, and anything else would silently give wrong ids. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/protobuf.h"
#include "tokenizer/vocab.h"
#include "util/error.h"

typedef struct {
    int model_type; /* 1 unigram (the proto default), 2 BPE */
    int byte_fallback;
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    int has_charsmap;
    int32_t unk_id, bos_id, eos_id, pad_id;
    char unk_surface[32];
    char norm_name[32];
} spm_specs;

static gemma2_status bad(gemma2_error *err, const char *name, const char *what) {
    return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: not a valid SentencePiece model (%s)", name, what);
}

static gemma2_status read_trainer(const g2_pb_field *outer, spm_specs *s, const char *name, gemma2_error *err) {
    g2_pb_reader r = {outer->data, outer->data + outer->len};
    g2_pb_field f;
    int rc;
    while ((rc = g2_pb_next(&r, &f)) > 0) {
        switch (f.field) {
        case 3: s->model_type = (int)f.u; break;
        case 35: s->byte_fallback = f.u != 0; break;
        case 40: s->unk_id = (int32_t)f.u; break;
        case 41: s->bos_id = (int32_t)f.u; break;
        case 42: s->eos_id = (int32_t)f.u; break;
        case 43: s->pad_id = (int32_t)f.u; break;
        case 44:
            if (f.wire == 2 && f.len < sizeof s->unk_surface) {
                memcpy(s->unk_surface, f.data, f.len);
                s->unk_surface[f.len] = 0;
            }
            break;
        default: break;
        }
    }
    return rc < 0 ? bad(err, name, "corrupt trainer_spec") : GEMMA2_OK;
}

static gemma2_status read_normalizer(const g2_pb_field *outer, spm_specs *s, const char *name, gemma2_error *err) {
    g2_pb_reader r = {outer->data, outer->data + outer->len};
    g2_pb_field f;
    int rc;
    while ((rc = g2_pb_next(&r, &f)) > 0) {
        switch (f.field) {
        case 1:
            if (f.wire == 2) {
                size_t n = f.len < sizeof s->norm_name - 1 ? f.len : sizeof s->norm_name - 1;
                memcpy(s->norm_name, f.data, n);
                s->norm_name[n] = 0;
            }
            break;
        case 2: s->has_charsmap = f.wire == 2 && f.len > 0; break;
        case 3: s->add_dummy_prefix = f.u != 0; break;
        case 4: s->remove_extra_ws = f.u != 0; break;
        case 5: s->escape_ws = f.u != 0; break;
        default: break;
        }
    }
    return rc < 0 ? bad(err, name, "corrupt normalizer_spec") : GEMMA2_OK;
}

/* One SentencePiece message: piece, score, type. */
static int read_piece(const g2_pb_field *outer, const uint8_t **piece, size_t *len, float *score, int *type) {
    g2_pb_reader r = {outer->data, outer->data + outer->len};
    g2_pb_field f;
    int rc;
    *piece = NULL;
    *len = 0;
    *score = 0;
    *type = GEMMA2_PIECE_NORMAL;
    while ((rc = g2_pb_next(&r, &f)) > 0) {
        if (f.field == 1 && f.wire == 2) {
            *piece = f.data;
            *len = f.len;
        } else if (f.field == 2 && f.wire == 5) {
            uint32_t u = (uint32_t)f.u;
            memcpy(score, &u, 4);
        } else if (f.field == 3 && f.wire == 0) {
            *type = (int)f.u;
        }
    }
    return rc;
}

gemma2_status g2_load_spm(const uint8_t *data, size_t size, const char *name, gemma2_tokenizer **out,
                          gemma2_error *err) {
    *out = NULL;
    if (size == 0) return bad(err, name, "empty file");
    spm_specs s = {.model_type = 1, .add_dummy_prefix = 1, .remove_extra_ws = 1, .escape_ws = 1,
                   .unk_id = 0, .bos_id = 1, .eos_id = 2, .pad_id = -1};
    strcpy(s.unk_surface, " \xE2\x81\x87 ");

    /* pass 1: count pieces, read the specs */
    g2_pb_reader r = {data, data + size};
    g2_pb_field f;
    int rc;
    size_t n = 0;
    while ((rc = g2_pb_next(&r, &f)) > 0) {
        gemma2_status st = GEMMA2_OK;
        if (f.field == 1) {
            if (f.wire != 2) return bad(err, name, "pieces field of the wrong type");
            n++;
        } else if (f.field == 2 && f.wire == 2) {
            st = read_trainer(&f, &s, name, err);
        } else if (f.field == 3 && f.wire == 2) {
            st = read_normalizer(&f, &s, name, err);
        }
        if (st) return st;
    }
    if (rc < 0) return bad(err, name, "truncated or corrupt protobuf");
    if (n == 0) return bad(err, name, "no pieces");
    if (n > 0x7FFFFFF) return bad(err, name, "too many pieces");
    if (s.model_type != 2)
        return g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "%s: SentencePiece model type %d is not BPE (2)", name,
                       s.model_type);
    if (s.has_charsmap)
        return g2_fail(err, GEMMA2_ERR_UNSUPPORTED,
                       "%s: normalizer \"%s\" has a character map; only identity normalization is supported", name,
                       s.norm_name);

    gemma2_tokenizer *t = g2_tok_new((int32_t)n, GEMMA2_TOKENIZER_SPM);
    if (!t) return g2_fail(err, GEMMA2_ERR_NOMEM, "%s: out of memory", name);
    t->byte_fallback = s.byte_fallback;
    t->add_dummy_prefix = s.add_dummy_prefix;
    t->remove_extra_whitespaces = s.remove_extra_ws;
    t->escape_whitespaces = s.escape_ws;
    memcpy(t->unk_surface, s.unk_surface, sizeof t->unk_surface);

    /* pass 2: the pieces */
    r = (g2_pb_reader){data, data + size};
    int32_t id = 0;
    while (g2_pb_next(&r, &f) > 0) {
        if (f.field != 1) continue;
        const uint8_t *piece;
        size_t len;
        float score;
        int type;
        if (read_piece(&f, &piece, &len, &score, &type) < 0) {
            gemma2_tokenizer_free(t);
            return bad(err, name, "corrupt piece");
        }
        if (!piece) {
            gemma2_tokenizer_free(t);
            return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: piece %d has no text", name, (int)id);
        }
        gemma2_status st = g2_tok_set_piece(t, id, (const char *)piece, len, score, type, err);
        if (st) {
            gemma2_tokenizer_free(t);
            return st;
        }
        id++;
    }
    /* SentencePiece's special ids come from the piece types; the trainer_spec ids only name
     * them. A control piece at bos_id / eos_id / pad_id is that token. */
    if (s.bos_id >= 0 && s.bos_id < id && t->type[s.bos_id] == GEMMA2_PIECE_CONTROL) t->bos = s.bos_id;
    if (s.eos_id >= 0 && s.eos_id < id && t->type[s.eos_id] == GEMMA2_PIECE_CONTROL) t->eos = s.eos_id;
    if (s.pad_id >= 0 && s.pad_id < id && t->type[s.pad_id] == GEMMA2_PIECE_CONTROL) t->pad = s.pad_id;
    gemma2_status st = g2_tok_finish(t, name, err);
    if (st) {
        gemma2_tokenizer_free(t);
        return st;
    }
    *out = t;
    return GEMMA2_OK;
}
