/* json_text.h - one string field of a one-line JSON object, with embedded NULs kept.
 *
 * JSONL inputs ({"text": "..."} per line) may hold "\u0000"; cJSON stops a string there, so the
 * tokenizer's CLI and tests read the field with this small scanner instead. Escapes are decoded,
 * \uXXXX with surrogate pairs; a lone surrogate becomes U+FFFD. */
#ifndef G2_TOKENIZER_JSON_TEXT_H
#define G2_TOKENIZER_JSON_TEXT_H

#include <stddef.h>

#include "gemma2.h"

/* Finds top-level `key` in the object `json[0..len)`. On success *out is a malloc'd, NUL-terminated
 * copy of the string value (the caller frees it) and *out_len its length; *out is NULL when the
 * object has no such key. GEMMA2_ERR_FORMAT for malformed JSON or a non-string value. */
gemma2_status g2_json_string_field(const char *json, size_t len, const char *key, char **out, size_t *out_len,
                                   gemma2_error *err);

#endif
