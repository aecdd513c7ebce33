/* cli_util.c - helpers shared by the subcommands. */
#include "cli_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int g2_cli_parse_int(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int g2_cli_parse_float(const char *s, double *out) {
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || v != v) return 0;
    *out = v;
    return 1;
}

int g2_cli_parse_ids(const char *text, const char *what, int32_t **ids) {
    size_t cap = 64, n = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return -1;
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX ||
            (*end && *end != ' ' && *end != '\t' && *end != '\n' && *end != '\r' && *end != ',')) {
            int len = 0;
            while (p[len] && p[len] != ' ' && p[len] != ',' && p[len] != '\n' && len < 20) len++;
            fprintf(stderr, "%s: '%.*s' is not a token id (ids are non-negative integers separated by spaces or commas)\n",
                    what, len, p);
            free(v);
            return -1;
        }
        if (n == cap) {
            int32_t *nv = realloc(v, 2 * cap * sizeof *v);
            if (!nv) {
                free(v);
                return -1;
            }
            v = nv, cap *= 2;
        }
        v[n++] = (int32_t)x;
        p = end;
    }
    if (n == 0) {
        fprintf(stderr, "%s: no token ids\n", what);
        free(v);
        return -1;
    }
    *ids = v;
    return (int)n;
}

const char *g2_cli_value(int argc, char **argv, int *i, const char *cmd) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "gemma2 %s: option %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int g2_cli_parse_kv_type(const char *s, int *out) {
    if (!strcmp(s, "f32")) *out = GEMMA2_TYPE_F32;
    else if (!strcmp(s, "f16")) *out = GEMMA2_TYPE_F16;
    else if (!strcmp(s, "bf16")) *out = GEMMA2_TYPE_BF16;
    else return 0;
    return 1;
}

int g2_cli_parse_load_mode(const char *s, gemma2_load_mode *out) {
    if (!strcmp(s, "mmap")) *out = GEMMA2_LOAD_MMAP;
    else if (!strcmp(s, "read")) *out = GEMMA2_LOAD_READ;
    else if (!strcmp(s, "auto")) *out = GEMMA2_LOAD_AUTO;
    else return 0;
    return 1;
}

int g2_cli_load_mode_option(const char *cmd, int argc, char **argv, int *i, gemma2_load_mode *out) {
    const char *v = g2_cli_value(argc, argv, i, cmd);
    if (!v) return 0;
    if (g2_cli_parse_load_mode(v, out)) return 1;
    fprintf(stderr, "gemma2 %s: --load-mode must be auto, mmap or read, got '%s'\n", cmd, v);
    return 0;
}

gemma2_model *g2_cli_open_model(const char *cmd, const char *path, int n_threads, gemma2_load_mode load_mode) {
    gemma2_model_options mo = gemma2_model_default_options();
    mo.n_threads = n_threads;
    mo.load_mode = load_mode;
    gemma2_model *m;
    gemma2_error err;
    if (gemma2_model_open(path, &mo, &m, &err)) {
        fprintf(stderr, "gemma2 %s: %s\n", cmd, err.msg);
        return NULL;
    }
    return m;
}
