/* cmd_logits.c - `gemma2 logits`: the logits after every token of a sequence, as raw
 * little-endian float32 [n_tokens][vocab], written atomically (no partial file on failure). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "util/atomic_file.h"
#include "util/mapped_file.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: gemma2 logits -m MODEL (--ids 2,651,6037 | --ids-file FILE) -o OUT.f32 [options]\n"
            "  -m, --model MODEL   Hugging Face directory or GGUF file (required)\n"
            "  --ids LIST          token ids separated by commas or spaces\n"
            "  --ids-file FILE     a file of token ids separated by whitespace or commas\n"
            "  -o, --out FILE      output: float32 [n_tokens][vocab], row i = logits after token i (required)\n"
            "  --decode            evaluate one token at a time through the KV cache (default: one batch)\n"
            "  --ctx N             context size (default: the number of tokens)\n"
            "  -t, --threads N     threads (default: all cores)\n"
            "  --load-mode MODE    auto (default), mmap or read: as in gemma2 bench --help\n"
            "  --kv-type TYPE      KV cache storage: f32 (default), f16 or bf16\n");
}

int g2_cmd_logits(int argc, char **argv) {
    const char *model = NULL, *ids_arg = NULL, *ids_file = NULL, *out = NULL, *v;
    long n_ctx = 0, threads = 0;
    int decode = 0;
    gemma2_model_options mo = gemma2_model_default_options();
    int kv_type = GEMMA2_TYPE_F32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = g2_cli_value(argc, argv, &i, "logits"))) return 2;
        } else if (!strcmp(a, "--ids")) {
            if (!(ids_arg = g2_cli_value(argc, argv, &i, "logits"))) return 2;
        } else if (!strcmp(a, "--ids-file")) {
            if (!(ids_file = g2_cli_value(argc, argv, &i, "logits"))) return 2;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            if (!(out = g2_cli_value(argc, argv, &i, "logits"))) return 2;
        } else if (!strcmp(a, "--decode")) {
            decode = 1;
        } else if (!strcmp(a, "--kv-type")) {
            if (!(v = g2_cli_value(argc, argv, &i, "logits"))) return 2;
            if (!g2_cli_parse_kv_type(v, &kv_type)) {
                fprintf(stderr, "gemma2 logits: --kv-type must be f32, f16 or bf16, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--load-mode")) {
            if (!g2_cli_load_mode_option("logits", argc, argv, &i, &mo.load_mode)) return 2;
        } else if (!strcmp(a, "--ctx") || !strcmp(a, "-t") || !strcmp(a, "--threads")) {
            int is_ctx = !strcmp(a, "--ctx");
            if (!(v = g2_cli_value(argc, argv, &i, "logits"))) return 2;
            if (!g2_cli_parse_int(v, 1, 1 << 20, is_ctx ? &n_ctx : &threads)) {
                fprintf(stderr, "gemma2 logits: %s must be a positive integer, got '%s'\n", a, v);
                return 2;
            }
        } else {
            fprintf(stderr, "gemma2 logits: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model || !out || (!ids_arg == !ids_file)) {
        fprintf(stderr, "gemma2 logits: -m MODEL, -o OUT and one of --ids / --ids-file are required\n");
        usage(stderr);
        return 2;
    }
    int32_t *ids = NULL;
    int n;
    gemma2_error err;
    if (ids_file) {
        char *text;
        if (g2_read_file(ids_file, &text, NULL, &err)) {
            fprintf(stderr, "gemma2 logits: %s\n", err.msg);
            return 1;
        }
        n = g2_cli_parse_ids(text, ids_file, &ids);
        free(text);
    } else {
        n = g2_cli_parse_ids(ids_arg, "--ids", &ids);
    }
    if (n < 0) return 1;

    int rc = 1;
    float *logits = NULL;
    gemma2_context *ctx = NULL;
    gemma2_model *m = NULL;
    mo.n_threads = (int)threads;
    if (gemma2_model_open(model, &mo, &m, &err)) {
        fprintf(stderr, "gemma2 logits: %s\n", err.msg);
        goto done;
    }
    const int V = gemma2_model_config(m)->vocab_size;
    gemma2_context_options co = gemma2_context_default_options();
    co.n_ctx = n_ctx ? (int)n_ctx : n;
    co.kv_type = kv_type;
    if (co.n_ctx > gemma2_model_config(m)->max_position_embeddings && !n_ctx) co.n_ctx = 0; /* let eval say it */
    if (gemma2_context_create(m, &co, &ctx, &err)) {
        fprintf(stderr, "gemma2 logits: %s\n", err.msg);
        goto done;
    }
    logits = malloc((size_t)n * (size_t)V * sizeof(float));
    if (!logits) {
        fprintf(stderr, "gemma2 logits: out of memory for %d x %d logits\n", n, V);
        goto done;
    }
    if (decode) {
        for (int i = 0; i < n; i++)
            if (gemma2_eval(ctx, ids + i, 1, logits + (size_t)i * V, &err)) goto eval_failed;
    } else if (gemma2_eval(ctx, ids, n, logits, &err)) {
        goto eval_failed;
    }
    g2_atomic_file af;
    if (g2_atomic_open(out, &af, &err)) {
        fprintf(stderr, "gemma2 logits: %s\n", err.msg);
        goto done;
    }
    if (fwrite(logits, sizeof(float), (size_t)n * V, af.fp) != (size_t)n * V) {
        g2_atomic_abort(&af);
        fprintf(stderr, "gemma2 logits: %s: write failed\n", out);
        goto done;
    }
    if (g2_atomic_commit(&af, &err)) {
        fprintf(stderr, "gemma2 logits: %s\n", err.msg);
        goto done;
    }
    rc = 0;
    goto done;
eval_failed:
    fprintf(stderr, "gemma2 logits: %s\n", err.msg);
done:
    free(logits);
    free(ids);
    gemma2_context_free(ctx);
    gemma2_model_close(m);
    return rc;
}
