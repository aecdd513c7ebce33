/* config.h - Gemma 2 hyper-parameters: from config.json, from GGUF metadata, presets, checks. */
#ifndef G2_CONFIG_H
#define G2_CONFIG_H

#include "formats/gguf.h"
#include "gemma2.h"

/* Hugging Face Gemma2Config defaults (those of the 2B model) for every field. */
gemma2_config g2_config_hf_defaults(void);

/* Parses config.json text (model_type must be "gemma2"); missing fields keep the HF defaults.
 * `path` is for messages. Validates the result. */
gemma2_status g2_config_from_json(const char *path, const char *json, gemma2_config *out, gemma2_error *err);

/* Reads the gemma2.* keys of a GGUF file; vocab_size comes from the embedding's rows. */
gemma2_status g2_config_from_gguf(const g2_gguf *g, gemma2_config *out, gemma2_error *err);

/* "2b", "9b", "27b" (also "gemma2-2b"...): the real shapes; 0 if unknown. */
int g2_config_preset(const char *name, gemma2_config *out);

/* Checks sizes and relations (heads divisible by kv heads, even head_dim, positive caps...). */
gemma2_status g2_config_validate(const gemma2_config *c, const char *where, gemma2_error *err);

/* Writes config.json text for `c` (HF layout, all keys); malloc'd string. */
char *g2_config_to_json(const gemma2_config *c, const char *torch_dtype);

/* Parameter count of the model (tied embedding once). */
int64_t g2_config_param_count(const gemma2_config *c);

#endif
