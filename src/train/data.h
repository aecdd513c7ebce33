/* data.h - token shards: the training data format, and random batch windows.
 *
 * A shard file (little-endian):
 *   offset 0  8 bytes  magic "G2TOKENS"
 *          8  u32      version (1)
 *         12  u32      vocab_size of the tokenizer that wrote it (0 = unknown)
 *         16  u64      n_tokens
 *         24  u64      reserved (0)
 *         32  u32[n_tokens] token ids; documents are concatenated, each starting with <bos>
 * The file size must be exactly 32 + 4 n_tokens. `gemma2 data prepare` writes DIR/train.bin and
 * DIR/val.bin. */
#ifndef G2_TRAIN_DATA_H
#define G2_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "gemma2.h"
#include "util/rng.h"

#define G2_SHARD_MAGIC "G2TOKENS"
#define G2_SHARD_HEADER 32

typedef struct {
    uint32_t vocab_size;
    size_t n_tokens;
    int32_t *tokens;
} g2_shard;

/* Reads and checks a shard: magic, version, size, and every id < vocab (the model's). */
gemma2_status g2_shard_load(const char *path, int vocab, g2_shard *s, gemma2_error *err);
void g2_shard_free(g2_shard *s);

/* Writes a shard atomically. */
gemma2_status g2_shard_write(const char *path, const int32_t *tokens, size_t n, uint32_t vocab, gemma2_error *err);

/* B random windows of T+1 tokens: ids[b,t] = w[t], targets[b,t] = w[t+1]. The shard must hold
 * at least T+1 tokens. */
void g2_shard_sample(const g2_shard *s, g2_rng *r, int B, int T, int32_t *ids, int32_t *targets);

/* B consecutive (non-random) windows starting at window index `first` (wrapping), for a
 * fixed validation set. */
void g2_shard_windows(const g2_shard *s, long first, int B, int T, int32_t *ids, int32_t *targets);

#endif
