/* cmd_data.c - `gemma2 data prepare`: text (plain files or JSONL with a text field) to token
 * shards (src/train/data.h format): DIR/train.bin and DIR/val.bin. Each document becomes
 * <bos> tokens <eos>; documents are concatenated; the last --val-frac of the tokens (at least one
 * training window's worth when there is enough) form the validation shard. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "commands.h"
#include "gemma2_tokenizer.h"
#include "train/data.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: gemma2 data prepare -t TOKENIZER --out DIR [options] FILES...\n"
            "  -t, --tokenizer PATH  tokenizer.model, tokenizer.json, GGUF or a model directory\n"
            "  --out DIR             writes DIR/train.bin and DIR/val.bin (token shards, docs/training.md)\n"
            "  --val-frac X          fraction of the tokens kept for validation (default 0.05)\n"
            "  --field NAME          the text field of .jsonl files (default \"text\")\n"
            "FILES: *.jsonl (one JSON object per line) or plain text (one document per file)\n");
}

static char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0, k;
    do {
        if (len + 65536 > cap) {
            cap = cap ? 2 * cap : 1 << 20;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf), fclose(f);
                return NULL;
            }
            buf = nb;
        }
        k = fread(buf + len, 1, cap - len, f);
        len += k;
    } while (k > 0);
    fclose(f);
    buf[len] = 0;
    *n = len;
    return buf;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Appends <bos> text <eos>. */
static int add_doc(const gemma2_tokenizer *tok, const char *text, size_t len, gemma2_token_buf *all,
                   gemma2_error *err) {
    gemma2_encode_options eo = gemma2_encode_default_options();
    eo.add_bos = 1, eo.add_eos = 1;
    return gemma2_tokenize(tok, text, len, &eo, all, err) == GEMMA2_OK;
}

static int prepare(int argc, char **argv) {
    const char *tpath = NULL, *out = NULL, *field = "text", *v;
    double val_frac = 0.05;
    const char **files = calloc((size_t)argc, sizeof *files);
    int n_files = 0;
    if (!files) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--tokenizer")) {
            if (!(tpath = g2_cli_value(argc, argv, &i, "data prepare"))) return 2;
        } else if (!strcmp(a, "--out")) {
            if (!(out = g2_cli_value(argc, argv, &i, "data prepare"))) return 2;
        } else if (!strcmp(a, "--field")) {
            if (!(field = g2_cli_value(argc, argv, &i, "data prepare"))) return 2;
        } else if (!strcmp(a, "--val-frac")) {
            if (!(v = g2_cli_value(argc, argv, &i, "data prepare"))) return 2;
            if (!g2_cli_parse_float(v, &val_frac) || !(val_frac >= 0 && val_frac < 1)) {
                fprintf(stderr, "gemma2 data prepare: --val-frac must be in [0, 1), got '%s'\n", v);
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "gemma2 data prepare: unknown option '%s'\n", a);
            usage(stderr);
            free(files);
            return 2;
        } else {
            files[n_files++] = a;
        }
    }
    if (!tpath || !out || !n_files) {
        fprintf(stderr, "gemma2 data prepare: -t TOKENIZER, --out DIR and at least one input file are required\n");
        usage(stderr);
        free(files);
        return 2;
    }
    gemma2_error err;
    gemma2_tokenizer *tok;
    if (gemma2_tokenizer_load(tpath, &tok, &err)) {
        fprintf(stderr, "gemma2 data prepare: %s\n", err.msg);
        free(files);
        return 1;
    }
    gemma2_token_buf all = {0};
    long docs = 0;
    int rc = 1;
    for (int i = 0; i < n_files; i++) {
        size_t n;
        char *text = read_file(files[i], &n);
        if (!text) {
            fprintf(stderr, "gemma2 data prepare: %s: cannot read: %s\n", files[i], strerror(errno));
            goto done;
        }
        if (ends_with(files[i], ".jsonl")) {
            long line_no = 0;
            for (char *p = text; p < text + n;) {
                char *nl = memchr(p, '\n', (size_t)(text + n - p));
                if (nl) *nl = 0;
                line_no++;
                if (strspn(p, " \t\r") != strlen(p)) {
                    cJSON *j = cJSON_Parse(p);
                    const cJSON *t = j ? cJSON_GetObjectItemCaseSensitive(j, field) : NULL;
                    if (!cJSON_IsString(t)) {
                        fprintf(stderr, "gemma2 data prepare: %s:%ld: %s\n", files[i], line_no,
                                j ? "no string field with the text (see --field)" : "not valid JSON");
                        cJSON_Delete(j);
                        free(text);
                        goto done;
                    }
                    int ok = add_doc(tok, t->valuestring, strlen(t->valuestring), &all, &err);
                    cJSON_Delete(j);
                    if (!ok) {
                        fprintf(stderr, "gemma2 data prepare: %s:%ld: %s\n", files[i], line_no, err.msg);
                        free(text);
                        goto done;
                    }
                    docs++;
                }
                p = nl ? nl + 1 : text + n;
            }
        } else {
            if (!add_doc(tok, text, n, &all, &err)) {
                fprintf(stderr, "gemma2 data prepare: %s: %s\n", files[i], err.msg);
                free(text);
                goto done;
            }
            docs++;
        }
        free(text);
    }
    size_t n_val = (size_t)(val_frac * (double)all.n);
    if (val_frac > 0 && n_val < 2 && all.n >= 4) n_val = 2;
    const size_t n_train = all.n - n_val;
    if (mkdir(out, 0755) && errno != EEXIST) {
        fprintf(stderr, "gemma2 data prepare: %s: cannot create: %s\n", out, strerror(errno));
        goto done;
    }
    char path[4096];
    const uint32_t vocab = (uint32_t)gemma2_tokenizer_vocab_size(tok);
    snprintf(path, sizeof path, "%s/train.bin", out);
    if (g2_shard_write(path, all.ids, n_train, vocab, &err)) {
        fprintf(stderr, "gemma2 data prepare: %s\n", err.msg);
        goto done;
    }
    snprintf(path, sizeof path, "%s/val.bin", out);
    if (g2_shard_write(path, all.ids + n_train, n_val, vocab, &err)) {
        fprintf(stderr, "gemma2 data prepare: %s\n", err.msg);
        goto done;
    }
    /* the tokenizer travels with the data: `gemma2 train` copies it into every checkpoint */
    const char *tname = ends_with(tpath, ".model") ? "tokenizer.model" : ends_with(tpath, ".json") ? "tokenizer.json" : NULL;
    if (tname) {
        size_t tn;
        char *tb = read_file(tpath, &tn);
        snprintf(path, sizeof path, "%s/%s", out, tname);
        FILE *tf = tb ? fopen(path, "wb") : NULL;
        int ok = tf && fwrite(tb, 1, tn, tf) == tn;
        if (tf) ok = (fclose(tf) == 0) && ok;
        free(tb);
        if (!ok) {
            fprintf(stderr, "gemma2 data prepare: %s: cannot write\n", path);
            goto done;
        }
    }
    printf("%ld documents, %zu tokens (vocabulary %u): %s/train.bin %zu tokens, %s/val.bin %zu tokens\n", docs,
           all.n, vocab, out, n_train, out, n_val);
    rc = 0;
done:
    gemma2_token_buf_free(&all);
    gemma2_tokenizer_free(tok);
    free(files);
    return rc;
}

int g2_cmd_data(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "prepare")) return prepare(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "gemma2 data: expected `data prepare`\n");
    usage(stderr);
    return 2;
}
