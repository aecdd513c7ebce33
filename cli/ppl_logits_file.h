/* ppl_logits_file.h - the file `perplexity --save-logits` writes and `--kl-divergence` reads: the
 * token sequence and, for every scored position, the logits quantized to 16 bits.
 *
 * Full fp32 rows would be 1 MB per position with Gemma's 256,000-id vocabulary; 16 bits halve
 * that (llama.cpp's --kl-divergence-base file does the same). Each row is stored as
 * min + scale * q, q in 0..65535, over the row's range: soft-capped logits span at most 60, so
 * the step is below 1e-3 and the error below 5e-4 per logit, far under any difference between
 * models worth measuring (its effect on the KL divergence is of the order of 1e-7).
 *
 * Layout (little-endian): "G2PPLLOG", u32 version (1), u32 vocab, u32 ctx, u32 stride (0 = none),
 * u32 chunks, u32 rows per chunk, u32 n_tokens, i32 tokens[n_tokens],
 * then chunks * rows records of { f32 min, f32 scale, u16 q[vocab] }. */
#ifndef G2_CLI_PPL_LOGITS_FILE_H
#define G2_CLI_PPL_LOGITS_FILE_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    uint32_t vocab, ctx, stride, chunks, rows_per_chunk, n_tokens;
} g2_ppl_header;

/* 0 on success, -1 on a write error. */
int g2_ppl_write_header(FILE *f, const g2_ppl_header *h, const int32_t *tokens);
int g2_ppl_write_row(FILE *f, const float *logits, uint32_t vocab, uint16_t *scratch);

/* Reads the header and the tokens (*tokens malloc'd); -1 with a message naming `path`. */
int g2_ppl_read_header(FILE *f, const char *path, g2_ppl_header *h, int32_t **tokens, char *msg, size_t msg_len);
/* Reads the next row, dequantized, into logits[vocab]; -1 when the file ends early. */
int g2_ppl_read_row(FILE *f, float *logits, uint32_t vocab, uint16_t *scratch);

#endif
