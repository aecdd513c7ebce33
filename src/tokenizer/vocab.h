/* vocab.h - the in-memory vocabulary every loader fills and the encoder and decoder read.
 *
 * A loader creates the tokenizer with g2_tok_new(), sets every piece with g2_tok_set_piece()
 * (SentencePiece's view: piece text with `▁` for spaces, score, type) and the normalizer flags,
 * then calls g2_tok_finish(), which builds the lookup structures:
 *   - piece text -> id (open addressing over all pieces);
 *   - symbol keys: what a symbol is for merging. SentencePiece merges two symbols when their
 *     concatenated text is a NORMAL, USER_DEFINED or UNUSED piece. A symbol is either such a
 *     piece or a single character (the initial segmentation), so every symbol gets a key: the
 *     piece id, or for a character that is no such piece an "extra" key >= n_pieces when some
 *     piece can be split into it (otherwise -1: it never merges).
 *   - the pair table (left key, right key) -> merged piece id, built once from every split of
 *     every piece, so that a merge step is one integer hash lookup instead of hashing strings.
 *   - a byte trie of the user-defined pieces (and of the control pieces, for parse_control)
 *     for the longest-match pass. */
#ifndef G2_TOKENIZER_VOCAB_H
#define G2_TOKENIZER_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "gemma2_tokenizer.h"

typedef struct {
    int32_t child, sibling; /* first child, next sibling (-1 = none) */
    int32_t ud_id;          /* user-defined piece ending here, or -1 */
    int32_t ctl_id;         /* control / unknown piece ending here, or -1 */
    uint8_t byte;
} g2_trie_node;

typedef struct {
    uint64_t key; /* (left << 32 | right) + 1; 0 = empty */
    int32_t id;   /* the merged piece */
    float score;  /* its score */
} g2_pair_slot;

struct gemma2_tokenizer {
    gemma2_tokenizer_source source;
    int32_t n; /* pieces */

    /* piece texts: blob + offsets (piece i is blob[off[i] .. off[i+1])) */
    char *blob;
    size_t blob_len, blob_cap;
    uint32_t *off; /* n + 1 */
    float *score;
    uint8_t *type;

    /* piece text -> id */
    int32_t *ptab;
    uint32_t ptab_mask;

    /* symbol keys of single characters: direct for the BMP, hashed above */
    int32_t *key_bmp;  /* 65536 */
    uint32_t *cp_keys; /* pairs (codepoint, key as uint32), 0 codepoint = empty slot */
    uint32_t cp_mask, n_cp;
    int32_t n_keys;    /* n + extra keys */

    /* pair table */
    g2_pair_slot *pairs; /* one 16-byte slot holds everything a merge step needs: one cache miss */
    uint32_t pair_mask;
    size_t n_pairs;

    /* user-defined / control matcher */
    g2_trie_node *trie;
    int32_t n_trie, cap_trie;
    uint8_t first_byte[256]; /* bit 1: a user-defined piece starts with it; bit 2: a control one */

    int32_t byte_id[256]; /* id of <0xXX>, or -1 */
    int32_t bos, eos, pad, unk, sot, eot;

    /* normalizer / model flags */
    int byte_fallback;
    int add_dummy_prefix;
    int remove_extra_whitespaces;
    int escape_whitespaces;
    char unk_surface[32];
};

/* A tokenizer with room for n pieces, all unset; defaults are Gemma's flags. */
gemma2_tokenizer *g2_tok_new(int32_t n, gemma2_tokenizer_source src);
/* Sets piece id (copies the text). Call for every id in increasing order. */
gemma2_status g2_tok_set_piece(gemma2_tokenizer *t, int32_t id, const char *s, size_t len, float score,
                               int type, gemma2_error *err);
/* Builds the tables; fails on a duplicate piece or a byte-fallback model without all 256 bytes. */
gemma2_status g2_tok_finish(gemma2_tokenizer *t, const char *name, gemma2_error *err);

static inline const char *g2_tok_text(const gemma2_tokenizer *t, int32_t id, size_t *len) {
    *len = t->off[id + 1] - t->off[id];
    return t->blob + t->off[id];
}
/* id of a piece (any type), or -1 */
int32_t g2_tok_lookup(const gemma2_tokenizer *t, const char *s, size_t len);
/* merge key of the character with code point cp, or -1 */
int32_t g2_tok_cp_key(const gemma2_tokenizer *t, uint32_t cp);
/* The pair table slot of keys (l, r): its id is -1 when they do not merge. */
static inline uint32_t g2_pair_hash(const gemma2_tokenizer *t, int32_t l, int32_t r) {
    uint64_t k = (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
    return (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 40) & t->pair_mask;
}
static inline const g2_pair_slot *g2_tok_pair(const gemma2_tokenizer *t, int32_t l, int32_t r) {
    static const g2_pair_slot none = {0, -1, 0.0f};
    uint64_t k = (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
    uint32_t i = (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 40) & t->pair_mask;
    for (;;) {
        const g2_pair_slot *s = &t->pairs[i];
        if (s->key == k) return s;
        if (s->key == 0) return &none;
        i = (i + 1) & t->pair_mask;
    }
}

/* Is the type one SentencePiece keeps in its mergeable `pieces_` map? */
static inline int g2_type_mergeable(int type) {
    return type == GEMMA2_PIECE_NORMAL || type == GEMMA2_PIECE_USER_DEFINED || type == GEMMA2_PIECE_UNUSED;
}

/* UTF-8 helpers shared by the encoder and decoder, with SentencePiece's strictness:
 * no overlongs, no surrogates, nothing above U+10FFFF. Returns the length of the valid
 * character at s (1..4) and its code point, or 0 if the bytes at s are not one. */
int g2_utf8_decode(const uint8_t *s, size_t avail, uint32_t *cp);
/* Writes cp as UTF-8 into out (4 bytes of room), returns the length. */
int g2_utf8_encode(uint32_t cp, char *out);

/* Loaders (one file each). `name` is for messages. */
gemma2_status g2_load_spm(const uint8_t *data, size_t size, const char *name, gemma2_tokenizer **out,
                          gemma2_error *err);
gemma2_status g2_load_hf_json(const char *json, size_t size, const char *name, gemma2_tokenizer **out,
                              gemma2_error *err);
gemma2_status g2_load_gguf(const char *path, gemma2_tokenizer **out, gemma2_error *err);

/* Growable buffers. */
gemma2_status g2_tokbuf_reserve(gemma2_token_buf *b, size_t extra, gemma2_error *err);
gemma2_status g2_textbuf_append(gemma2_text_buf *b, const char *s, size_t n, gemma2_error *err);

#endif
