/* cli_util.h - small helpers shared by the subcommands: strict number parsing, token-id lists,
 * opening a model with a message. */
#ifndef G2_CLI_UTIL_H
#define G2_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "gemma2.h"

/* Strict parsing: the whole string must be a number in [lo, hi]. 1 on success. */
int g2_cli_parse_int(const char *s, long lo, long hi, long *out);
int g2_cli_parse_float(const char *s, double *out);

/* Parses ids separated by whitespace and/or commas. On error prints "`what`: ..." and returns -1;
 * otherwise the count, with *ids malloc'd. */
int g2_cli_parse_ids(const char *text, const char *what, int32_t **ids);

/* Reads the value of option argv[*i] (advancing *i); prints an error and returns NULL if missing. */
const char *g2_cli_value(int argc, char **argv, int *i, const char *cmd);

/* "f32", "f16" or "bf16" (a gemma2_weight_type for the KV cache). 1 on success. */
int g2_cli_parse_kv_type(const char *s, int *out);

/* "auto", "mmap" or "read" (gemma2_load_mode). 1 on success. */
int g2_cli_parse_load_mode(const char *s, gemma2_load_mode *out);
/* The value of --load-mode at argv[*i] (advances *i); prints the error and returns 0 if bad. */
int g2_cli_load_mode_option(const char *cmd, int argc, char **argv, int *i, gemma2_load_mode *out);
#define G2_CLI_LOAD_MODE_HELP                                                                          \
    "  --load-mode MODE      read: copy the weights into memory on huge pages and repack them for\n"  \
    "                        the kernels (fastest decode); mmap: map the file (instant start); auto:\n" \
    "                        read when the file takes at most 3/4 of the available memory (default)\n"

/* Opens a model, printing "gemma2 CMD: message" on failure. */
gemma2_model *g2_cli_open_model(const char *cmd, const char *path, int n_threads, gemma2_load_mode load_mode);

#endif
