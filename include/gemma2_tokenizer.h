/*
 * gemma2_tokenizer.h - the Gemma tokenizer: SentencePiece-exact BPE in C.
 *
 * Gemma 1 and Gemma 2 share one SentencePiece BPE vocabulary of 256,000
 * pieces. This library encodes text to exactly the ids that libsentencepiece
 * gives for that model (and for any SentencePiece BPE model with an identity
 * normalizer), decodes ids back to text, renders the chat template, and can
 * train a small SentencePiece-compatible BPE model.
 *
 * Where the vocabulary comes from
 *   gemma2_tokenizer_load() accepts any of:
 *   - a SentencePiece `tokenizer.model` (protobuf ModelProto);
 *   - a Hugging Face `tokenizer.json` (BPE with merges and added tokens);
 *   - a GGUF file (`tokenizer.ggml.tokens`, `.scores`, `.token_type`);
 *   - a model directory: its `tokenizer.model`, else its `tokenizer.json`.
 *   The three formats describe the same vocabulary differently; each loader
 *   rebuilds SentencePiece's view (piece, score, type) so that all three give
 *   identical ids:
 *   - tokenizer.json has no scores: a piece's score is minus the rank of the
 *     first merge that produces it (same order as SentencePiece's scores).
 *     Added tokens other than <pad>/<eos>/<bos>/<unk> are user-defined; so
 *     are multi-character pieces that no merge produces or whose merge rank
 *     is out of id order (Gemma's `[toxicity=0]`, tab runs, `<unused99>`).
 *     The byte piece <0x09> that Hugging Face renamed "\t" is renamed back.
 *   - GGUF (llama.cpp's converter) types many added pieces CONTROL and the
 *     tail user-defined pieces NORMAL with score 0, and writes the `▁` runs
 *     with spaces. CONTROL pieces other than bos/eos/pad become user-defined,
 *     the unknown id becomes UNKNOWN, a NORMAL piece whose score is above a
 *     lower-id NORMAL piece's becomes user-defined, and spaces become `▁`.
 *
 * How text is encoded (SentencePiece BPE, Gemma's settings)
 *   1. Normalization: the identity, except that ' ' becomes U+2581 `▁` and
 *      every byte that is not part of valid UTF-8 becomes U+FFFD. No dummy
 *      prefix, no collapsing of spaces (unless the model file asks for them).
 *   2. User-defined pieces (`<start_of_turn>`, runs of `\n`, of `▁`, of `\t`,
 *      HTML tags, ...) are matched in the text first, longest match, and are
 *      never merged with anything. Control pieces (`<bos>`, `<eos>`, ...)
 *      written in the text are plain text unless `parse_control` is set.
 *   3. Every other character is a symbol; the adjacent pair whose
 *      concatenation is the highest-scoring piece is merged, leftmost first on
 *      ties, until no pair is a piece (a heap: O(n log n), no quadratic case).
 *   4. A symbol that is no piece (a character outside the vocabulary) becomes
 *      its UTF-8 bytes as the pieces <0x00>..<0xFF> (byte fallback), or
 *      <unk> when the model has no byte pieces.
 *
 * How ids are decoded
 *   `▁` becomes a space; consecutive byte pieces are joined and read as
 *   UTF-8, each byte that is not part of a valid character giving U+FFFD;
 *   control pieces give nothing; <unk> gives " ⁇ ". decode(encode(s)) == s
 *   for valid UTF-8 s, except that a literal `▁` in s comes back as a space.
 *   The incremental decoder (gemma2_decoder) gives the same text piece by
 *   piece for streaming, holding back an incomplete UTF-8 character.
 *
 * Conventions: as gemma2.h (status + gemma2_error, no printing, no global
 * state). A loaded tokenizer is read-only: any number of threads may encode
 * and decode with it at once.
 *
 * Typical use
 *     gemma2_tokenizer *tok;
 *     gemma2_error err;
 *     if (gemma2_tokenizer_load("gemma-2-2b/tokenizer.model", &tok, &err)) { puts(err.msg); ... }
 *     gemma2_token_buf ids = {0};
 *     gemma2_encode_options eo = gemma2_encode_default_options();
 *     eo.add_bos = 1;
 *     gemma2_tokenize(tok, "Hello, world!", 13, &eo, &ids, &err);   // 2 4521 235269 2134 235341
 *     gemma2_text_buf text = {0};
 *     gemma2_detokenize(tok, ids.ids, ids.n, &text, &err);           // "Hello, world!"
 *     gemma2_token_buf_free(&ids);
 *     gemma2_text_buf_free(&text);
 *     gemma2_tokenizer_free(tok);
 */
#ifndef GEMMA2_TOKENIZER_H
#define GEMMA2_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "gemma2.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- loading ------------------------------------------------------------ */

typedef struct gemma2_tokenizer gemma2_tokenizer;

/* SentencePiece's piece types (the numbers of its ModelProto). */
typedef enum {
    GEMMA2_PIECE_NORMAL = 1,       /* learned by BPE; reached by merges */
    GEMMA2_PIECE_UNKNOWN = 2,      /* <unk> */
    GEMMA2_PIECE_CONTROL = 3,      /* <pad> <eos> <bos>: never matched in text, decode to nothing */
    GEMMA2_PIECE_USER_DEFINED = 4, /* matched in the raw text before BPE */
    GEMMA2_PIECE_UNUSED = 5,       /* reached by merges, then split again */
    GEMMA2_PIECE_BYTE = 6          /* <0x00>..<0xFF>: byte fallback */
} gemma2_piece_type;

/* Where a tokenizer was loaded from. */
typedef enum {
    GEMMA2_TOKENIZER_SPM = 1,     /* SentencePiece ModelProto */
    GEMMA2_TOKENIZER_HF_JSON = 2, /* Hugging Face tokenizer.json */
    GEMMA2_TOKENIZER_GGUF = 3     /* GGUF tokenizer.ggml.* */
} gemma2_tokenizer_source;

/* Loads a .model, tokenizer.json, GGUF file or model directory; the format
 * is recognised from the file's content, not its name. */
gemma2_status gemma2_tokenizer_load(const char *path, gemma2_tokenizer **out, gemma2_error *err);

/* The same from bytes in memory (`name` is used in error messages only). */
gemma2_status gemma2_tokenizer_load_spm(const void *data, size_t size, const char *name,
                                        gemma2_tokenizer **out, gemma2_error *err);
gemma2_status gemma2_tokenizer_load_hf_json(const char *json, size_t size, const char *name,
                                            gemma2_tokenizer **out, gemma2_error *err);

void gemma2_tokenizer_free(gemma2_tokenizer *t);

gemma2_tokenizer_source gemma2_tokenizer_get_source(const gemma2_tokenizer *t);
int gemma2_tokenizer_vocab_size(const gemma2_tokenizer *t);

/* Piece `id` as UTF-8 (not NUL-terminated; *len set), or NULL when id is out
 * of range. */
const char *gemma2_tokenizer_piece(const gemma2_tokenizer *t, int32_t id, size_t *len);
float gemma2_tokenizer_score(const gemma2_tokenizer *t, int32_t id);
gemma2_piece_type gemma2_tokenizer_piece_type(const gemma2_tokenizer *t, int32_t id);
/* The id of a piece given as text (`▁` for spaces), or -1. */
int32_t gemma2_tokenizer_piece_to_id(const gemma2_tokenizer *t, const char *piece, size_t len);

/* Special ids (-1 when the vocabulary has none). */
int32_t gemma2_tokenizer_bos_id(const gemma2_tokenizer *t);
int32_t gemma2_tokenizer_eos_id(const gemma2_tokenizer *t);
int32_t gemma2_tokenizer_pad_id(const gemma2_tokenizer *t);
int32_t gemma2_tokenizer_unk_id(const gemma2_tokenizer *t);
/* Gemma's turn markers, looked up by text (-1 when absent). Generation ends on
 * eos or end_of_turn. */
int32_t gemma2_tokenizer_start_of_turn_id(const gemma2_tokenizer *t);
int32_t gemma2_tokenizer_end_of_turn_id(const gemma2_tokenizer *t);

/* Bytes of memory the loaded tokenizer holds (pieces, hash tables, merge table). */
size_t gemma2_tokenizer_memory_bytes(const gemma2_tokenizer *t);

/* ---- growable output buffers ------------------------------------------- */

/* Zero-initialise before first use; results are appended, so one buffer can
 * collect several calls (set n = 0 / len = 0 to reuse it). */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} gemma2_token_buf;

typedef struct {
    char *data; /* NUL-terminated after every call that succeeds */
    size_t len, cap;
} gemma2_text_buf;

void gemma2_token_buf_free(gemma2_token_buf *b);
void gemma2_text_buf_free(gemma2_text_buf *b);

/* ---- encoding ----------------------------------------------------------- */

typedef struct {
    int add_bos;       /* put <bos> first (default 0, as SentencePiece) */
    int add_eos;       /* put <eos> last (default 0) */
    int parse_control; /* match the text of control pieces (<bos>, <eos>, <pad>, <unk>) as those
                          tokens (default 0: SentencePiece reads them as plain text) */
} gemma2_encode_options;

gemma2_encode_options gemma2_encode_default_options(void);

/* Appends the ids of `len` bytes of `text` (any bytes; NUL is a character) to
 * `out`. `opt` may be NULL for the defaults. */
gemma2_status gemma2_tokenize(const gemma2_tokenizer *t, const char *text, size_t len,
                              const gemma2_encode_options *opt, gemma2_token_buf *out,
                              gemma2_error *err);

/* ---- decoding ----------------------------------------------------------- */

/* Appends the text of `n` ids to `out`. An id out of range is GEMMA2_ERR_ARG. */
gemma2_status gemma2_detokenize(const gemma2_tokenizer *t, const int32_t *ids, size_t n,
                                gemma2_text_buf *out, gemma2_error *err);

/* Incremental decoding for streaming output: push ids one at a time, get
 * the text they complete. Byte pieces that start a UTF-8 character are held
 * back until the character is complete (or proves invalid: U+FFFD), so the
 * concatenated output equals gemma2_detokenize() of all ids, and no piece of
 * output ever ends inside a character. */
typedef struct gemma2_decoder gemma2_decoder;

gemma2_status gemma2_decoder_create(const gemma2_tokenizer *t, gemma2_decoder **out,
                                    gemma2_error *err);
void gemma2_decoder_free(gemma2_decoder *d);
/* Appends to `out` the text that id completes (possibly nothing). */
gemma2_status gemma2_decoder_push(gemma2_decoder *d, int32_t id, gemma2_text_buf *out,
                                  gemma2_error *err);
/* End of stream: held-back bytes become U+FFFD each. The decoder can then be reused. */
gemma2_status gemma2_decoder_flush(gemma2_decoder *d, gemma2_text_buf *out, gemma2_error *err);

/* ---- chat template ------------------------------------------------------ */

/* Gemma 2's instruction format:
 *     <bos><start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n{text}<end_of_turn>\n...
 * Roles are "user" and "model" ("assistant" is accepted as "model"). Gemma
 * has no system role: a "system" message is put at the top of the first user
 * turn, followed by a blank line. With add_generation_prompt the text ends
 * with "<start_of_turn>model\n", where the model continues. */
typedef struct {
    const char *role;    /* "user", "model"/"assistant", "system" */
    const char *content; /* UTF-8, NUL-terminated */
} gemma2_chat_message;

/* Renders the conversation as text (starting with "<bos>"), appended to out.
 * Fails with GEMMA2_ERR_ARG for an unknown role, a system message that is not
 * first, or turns that do not alternate user / model. */
gemma2_status gemma2_chat_render(const gemma2_chat_message *msgs, size_t n,
                                 int add_generation_prompt, gemma2_text_buf *out,
                                 gemma2_error *err);

/* Renders and tokenizes: <bos> is the bos id, and the turn markers are their
 * user-defined pieces; the message contents are encoded as plain text (a
 * "<bos>" typed by a user stays text). */
gemma2_status gemma2_chat_tokenize(const gemma2_tokenizer *t, const gemma2_chat_message *msgs,
                                   size_t n, int add_generation_prompt, gemma2_token_buf *out,
                                   gemma2_error *err);

/* ---- training ----------------------------------------------------------- */

/* Learns a small SentencePiece BPE model with Gemma's settings: identity
 * normalization, no dummy prefix, whitespace kept, split digits, byte
 * fallback, whitespace-only pieces allowed, pieces of at most 16 characters.
 * Layout: <pad> 0, <eos> 1, <bos> 2, <unk> 3, <start_of_turn> 4,
 * <end_of_turn> 5, then the extra user-defined pieces, then <0x00>..<0xFF>,
 * then the merged pieces (score -k for the k-th merge), then the single
 * characters (those covering `character_coverage` of the text). */
typedef struct {
    int vocab_size;              /* total pieces (default 8000) */
    double character_coverage;   /* fraction of characters that get their own piece (default 0.9995) */
    int max_piece_chars;         /* default 16 */
    const char *const *user_defined; /* extra user-defined pieces, NULL-terminated (may be NULL) */
    int n_threads;               /* unused for now (default 1) */
} gemma2_train_options;

gemma2_train_options gemma2_train_default_options(void);

/* Trains on `n_texts` texts (each one "sentence": it is split into words at
 * whitespace) and writes the ModelProto bytes to *out_model (malloc'd; the
 * caller frees it) ready to be saved as tokenizer.model. */
gemma2_status gemma2_train_bpe(const char *const *texts, const size_t *lens, size_t n_texts,
                               const gemma2_train_options *opt, uint8_t **out_model,
                               size_t *out_size, gemma2_error *err);

#ifdef __cplusplus
}
#endif
#endif /* GEMMA2_TOKENIZER_H */
