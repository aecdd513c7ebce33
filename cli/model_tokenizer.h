/* model_tokenizer.h - the tokenizer that goes with a model: the one named by -t, else the model's
 * own (an HF directory's tokenizer.model / tokenizer.json, or a GGUF file's vocabulary). */
#ifndef G2_CLI_MODEL_TOKENIZER_H
#define G2_CLI_MODEL_TOKENIZER_H

#include "gemma2.h"
#include "gemma2_tokenizer.h"

/* Loads it and checks that its ids fit the model's vocabulary. Prints "gemma2 CMD: ..." and returns
 * NULL on failure, with a hint to use -t when the model carries no tokenizer. */
gemma2_tokenizer *g2_cli_load_tokenizer(const char *cmd, const gemma2_model *m, const char *model_path,
                                        const char *tokenizer_path);

/* The ids that end a reply: <eos> and <end_of_turn> (Gemma: 1 and 107). Without a tokenizer Gemma's
 * ids are assumed when the vocabulary holds them. Returns how many were written to out[2]. */
int g2_cli_stop_ids(const gemma2_tokenizer *t, int vocab_size, int32_t out[2]);

#endif
