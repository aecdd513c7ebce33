/* distill_cache.h - the stored teacher samples: for every position of the training tokens (or of
 * every stride-th window of them), the
 * ids that K draws from the teacher's softmax(logits / T) gave, deduplicated, with their counts.
 *
 * The teacher reads the training shard in consecutive windows of `seq` tokens (window j: inputs
 * tokens[j*seq .. j*seq+seq), the next tokens one further), n_windows = (n_tokens - 1) / seq; the
 * student trained with --distill reads the same windows, so its context at every position is the
 * teacher's. With a stride S > 1 only data windows 0, S, 2S, ... are stored (cache window i is data
 * window i*S): a cheaper teacher pass when the students see fewer tokens than the data holds.
 *
 * File (little-endian):
 *   offset 0   8  magic "G2DCACHE"
 *          8   u32 version (1)
 *         12   u32 vocab_size           (of the teacher = of the student)
 *         16   u32 K                    (draws per position)
 *         20   u32 seq                  (window length)
 *         24   f32 temperature
 *         28   u8  id_bytes (2: vocab <= 2^16, 3: <= 2^24, else 4)
 *         29   u8  cnt_bytes (1: K <= 256, else 2)
 *         30   u16 reserved (0)
 *         32   u64 seed
 *         40   u64 tokenizer hash (FNV-1a 64 of the tokenizer file; 0 = unknown)
 *         48   u64 data hash (FNV-1a 64 of the shard's token bytes, i.e. the file from offset 32)
 *         56   u64 n_tokens of the shard
 *         64   u64 n_windows (stored: ceil(((n_tokens - 1) / seq) / stride))
 *         72   u32 stride (0 is read as 1)
 *         76   20 bytes reserved (0)
 *         96   body: the windows in order; a window is `seq` positions; a position is
 *              (n - 1) in cnt_bytes, then n pairs (id in id_bytes, count - 1 in cnt_bytes),
 *              ids ascending, counts summing to K.
 *   footer:    u64 offsets[n_windows + 1] (file offset of each window; the last = end of body),
 *              u64 n_windows, 8 bytes "G2DCEND1".
 * A position therefore takes cnt_bytes + n (id_bytes + cnt_bytes) bytes, n <= min(K, vocab)
 * distinct ids (with vocab 4096 and K = 32: 1 + 3n bytes, at most 97).
 *
 * While it is written the file is CACHE.partial (header + whole windows, no footer); a rerun with
 * the same header continues after its last complete window; the footer is added and the file
 * renamed to CACHE (after fsync) only when every window is there. */
#ifndef G2_TRAIN_DISTILL_CACHE_H
#define G2_TRAIN_DISTILL_CACHE_H

#include <stdint.h>
#include <stdio.h>

#include "gemma2.h"

#define G2_DCACHE_MAGIC "G2DCACHE"
#define G2_DCACHE_END "G2DCEND1"
#define G2_DCACHE_HEADER 96

typedef struct {
    uint32_t version, vocab, K, seq, stride;
    float temperature;
    uint8_t id_bytes, cnt_bytes;
    uint64_t seed, tok_hash, data_hash, n_tokens, n_windows;
} g2_dcache_header;

/* Fills the derived fields (version, id_bytes, cnt_bytes, n_windows) of a header. */
void g2_dcache_header_init(g2_dcache_header *h, uint32_t vocab, uint32_t K, uint32_t seq, float temperature,
                           uint64_t seed, uint64_t tok_hash, uint64_t data_hash, uint64_t n_tokens, uint32_t stride);

/* The FNV-1a data hash of a token array, as the header stores it. */
uint64_t g2_dcache_data_hash(const int32_t *tokens, size_t n);
/* The hash of a file's bytes (0 if path is NULL or unreadable). */
uint64_t g2_dcache_file_hash(const char *path);

typedef struct {
    g2_dcache_header h;
    char *path, *part;
    FILE *fp;
    uint64_t *off; /* [n_windows + 1] */
    uint64_t done; /* complete windows */
    unsigned char *buf;
    size_t cap;
} g2_dcache_writer;

/* Opens CACHE.partial: continues it if it exists with the same header (checking every complete
 * window and cutting off an incomplete one), else starts it. w->done says where to go on. */
gemma2_status g2_dcache_writer_open(const char *path, const g2_dcache_header *h, g2_dcache_writer *w,
                                    gemma2_error *err);
/* Cuts the partial file back to `windows` complete windows (<= done): several caches written in
 * one teacher pass then restart at the same window. */
gemma2_status g2_dcache_writer_rewind(g2_dcache_writer *w, uint64_t windows, gemma2_error *err);
/* Appends one window: n[t] distinct ids at position t, their ids and counts concatenated. */
gemma2_status g2_dcache_writer_add(g2_dcache_writer *w, const int *n, const int32_t *ids, const uint32_t *counts,
                                   gemma2_error *err);
/* Writes the footer, syncs and renames CACHE.partial to CACHE. All windows must be there. */
gemma2_status g2_dcache_writer_finish(g2_dcache_writer *w, gemma2_error *err);
/* Closes (after finish, or leaving the partial file for a later run). */
void g2_dcache_writer_close(g2_dcache_writer *w);

typedef struct {
    g2_dcache_header h;
    char *path;
    int fd;
    uint64_t *off;
    unsigned char *buf;
    size_t cap;
} g2_dcache;

/* Opens a finished cache: header, footer and offsets checked (a truncated file is refused). */
gemma2_status g2_dcache_open(const char *path, g2_dcache *c, gemma2_error *err);
void g2_dcache_close(g2_dcache *c);

/* Refuses a cache made for another vocabulary, tokenizer, data or window length. A zero
 * tok_hash on either side is not compared (unknown). */
gemma2_status g2_dcache_check(const g2_dcache *c, uint32_t vocab, uint64_t tok_hash, uint64_t data_hash,
                              uint64_t n_tokens, uint32_t seq, gemma2_error *err);

/* Reads window j (checking it): row[seq + 1] offsets into ids/counts (at most seq * min(K, vocab)
 * entries each); counts may be NULL; w (may be NULL) gets count / K. */
gemma2_status g2_dcache_read(g2_dcache *c, uint64_t j, int64_t *row, int32_t *ids, uint32_t *counts, float *w,
                             gemma2_error *err);

#endif
