/* cmd_quantize.c - `gemma2 quantize IN OUT --type T`: an HF directory or GGUF file to a GGUF
 * file of another weight type (llama.cpp loads what this writes). */
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: gemma2 quantize IN OUT.gguf --type TYPE [options]\n"
            "  IN                  Hugging Face directory or GGUF file\n"
            "  --type TYPE         q8_0, q4_0, q4_k_m, q6_k, bf16, f16 or f32 (required)\n"
            "  -t, --threads N     threads (default: all cores)\n"
            "  -q, --quiet         no per-tensor progress lines\n");
}

static void log_line(void *user, const char *line) {
    if (user || strstr(line, "row length") || strstr(line, "warning")) fprintf(stderr, "%s\n", line);
}

int g2_cmd_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *type = NULL, *v;
    long threads = 0;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--type")) {
            if (!(type = g2_cli_value(argc, argv, &i, "quantize"))) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = g2_cli_value(argc, argv, &i, "quantize"))) return 2;
            if (!g2_cli_parse_int(v, 1, 1024, &threads)) {
                fprintf(stderr, "gemma2 quantize: %s must be a positive integer, got '%s'\n", a, v);
                return 2;
            }
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "gemma2 quantize: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            fprintf(stderr, "gemma2 quantize: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!in || !out || !type) {
        fprintf(stderr, "gemma2 quantize: IN, OUT and --type are required\n");
        usage(stderr);
        return 2;
    }
    gemma2_quantize_options o = {.type = type, .n_threads = (int)threads, .log = log_line,
                                 .log_user = quiet ? NULL : (void *)1};
    gemma2_error err;
    if (gemma2_quantize(in, out, &o, &err)) {
        fprintf(stderr, "gemma2 quantize: %s\n", err.msg);
        return 1;
    }
    return 0;
}
