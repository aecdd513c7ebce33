/* cmd_tokenize.c - `gemma2 tokenize`, `gemma2 detokenize` and `gemma2 tokenizer train|info`.
 *
 * Output formats are chosen for comparison with other tools: a JSON array per line with Python's
 * json.dumps spacing ("[4521, 235269]"), so lines compare as strings with ids written by Python;
 * --lines writes space-separated ids per input line, as `spm_encode --output_format=id` does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "progress.h"
#include "gemma2_tokenizer.h"
#include "tokenizer/json_text.h"
#include "util/mapped_file.h"

static void json_string(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
    }
    fputc('"', f);
}

static int load(const char *path, gemma2_tokenizer **t, const char *cmd) {
    if (!path) {
        fprintf(stderr, "gemma2 %s: -t TOKENIZER is required (a .model, tokenizer.json, GGUF file or model directory)\n", cmd);
        return 2;
    }
    gemma2_error err;
    if (gemma2_tokenizer_load(path, t, &err)) {
        fprintf(stderr, "gemma2 %s: %s\n", cmd, err.msg);
        return 1;
    }
    return 0;
}

/* Reads a whole file ("-" = stdin) into a malloc'd buffer. */
static char *read_all(const char *path, size_t *len) {
    if (strcmp(path, "-") != 0) {
        char *buf;
        gemma2_error err;
        if (g2_read_file(path, &buf, len, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return NULL;
        }
        return buf;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf) buf[n] = 0;
    *len = n;
    return buf;
}

static void print_ids(FILE *f, const gemma2_tokenizer *t, const gemma2_token_buf *b, int pieces, int plain) {
    if (!plain) fputc('[', f);
    for (size_t i = 0; i < b->n; i++) {
        if (i) fputs(plain ? " " : ", ", f);
        if (pieces) {
            size_t len;
            const char *p = gemma2_tokenizer_piece(t, b->ids[i], &len);
            if (plain) fwrite(p, 1, len, f);
            else json_string(f, p, len);
        } else {
            fprintf(f, "%d", (int)b->ids[i]);
        }
    }
    if (!plain) fputc(']', f);
    fputc('\n', f);
}

static void tokenize_usage(FILE *f) {
    fputs("usage: gemma2 tokenize -t TOKENIZER (--text S | --file F | --jsonl F) [options]\n"
          "\n"
          "Text to token ids, exactly as SentencePiece encodes it (no <bos> unless asked).\n"
          "\n"
          "  -t, --tokenizer PATH  a tokenizer.model, tokenizer.json, GGUF file or model directory (required)\n"
          "  --text S              encode the string S; prints one JSON array of ids\n"
          "  --file F              encode the whole file F (\"-\" = stdin) as one text; one JSON array\n"
          "  --jsonl F             each line of F (\"-\" = stdin) is a JSON object with a \"text\" field;\n"
          "                        prints one JSON array per line (blank lines skipped)\n"
          "  --lines               with --file: encode each line separately (without its newline) and\n"
          "                        print space-separated ids per line, like spm_encode --output_format=id\n"
          "  --bos                 put <bos> first (default: off)\n"
          "  --eos                 put <eos> last (default: off)\n"
          "  --parse-control       read the text of control pieces (<bos>, <eos>, <pad>, <unk>) as those\n"
          "                        tokens (default: off; SentencePiece reads them as plain text)\n"
          "  --pieces              print the pieces instead of the ids (default: off)\n"
          "  --stats               print load time, encode speed and vocabulary memory on stderr (default: off)\n"
          "  -h, --help            this help\n",
          f);
}

int g2_cmd_tokenize(int argc, char **argv) {
    const char *tok_path = NULL, *text = NULL, *file = NULL, *jsonl = NULL;
    int lines = 0, pieces = 0, stats = 0;
    gemma2_encode_options eo = gemma2_encode_default_options();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            tokenize_usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--tokenizer")) && has) tok_path = argv[++i];
        else if (!strcmp(a, "--text") && has) text = argv[++i];
        else if (!strcmp(a, "--file") && has) file = argv[++i];
        else if (!strcmp(a, "--jsonl") && has) jsonl = argv[++i];
        else if (!strcmp(a, "--lines")) lines = 1;
        else if (!strcmp(a, "--bos")) eo.add_bos = 1;
        else if (!strcmp(a, "--eos")) eo.add_eos = 1;
        else if (!strcmp(a, "--parse-control")) eo.parse_control = 1;
        else if (!strcmp(a, "--pieces")) pieces = 1;
        else if (!strcmp(a, "--stats")) stats = 1;
        else {
            fprintf(stderr, "gemma2 tokenize: unknown or incomplete option '%s'\n\n", a);
            tokenize_usage(stderr);
            return 2;
        }
    }
    if ((text != NULL) + (file != NULL) + (jsonl != NULL) != 1) {
        fprintf(stderr, "gemma2 tokenize: give exactly one of --text, --file, --jsonl\n\n");
        tokenize_usage(stderr);
        return 2;
    }
    if (lines && !file) {
        fprintf(stderr, "gemma2 tokenize: --lines goes with --file\n");
        return 2;
    }
    double t0 = g2_now();
    gemma2_tokenizer *t;
    int rc = load(tok_path, &t, "tokenize");
    if (rc) return rc;
    double t1 = g2_now();
    gemma2_token_buf b = {0};
    gemma2_error err;
    size_t in_bytes = 0, n_tokens = 0;
    double enc_s = 0;
    char *buf = NULL;
    rc = 0;
    if (text) {
        in_bytes = strlen(text);
        double e0 = g2_now();
        if (gemma2_tokenize(t, text, in_bytes, &eo, &b, &err)) goto fail;
        enc_s += g2_now() - e0;
        n_tokens = b.n;
        print_ids(stdout, t, &b, pieces, 0);
    } else {
        size_t len;
        buf = read_all(file ? file : jsonl, &len);
        if (!buf) {
            fprintf(stderr, "gemma2 tokenize: cannot read %s\n", file ? file : jsonl);
            rc = 1;
            goto out;
        }
        if (file && !lines) {
            in_bytes = len;
            double e0 = g2_now();
            if (gemma2_tokenize(t, buf, len, &eo, &b, &err)) goto fail;
            enc_s += g2_now() - e0;
            n_tokens = b.n;
            print_ids(stdout, t, &b, pieces, 0);
        } else {
            size_t ln = 0;
            for (size_t p = 0; p < len; ln++) {
                const char *nl = memchr(buf + p, '\n', len - p);
                size_t e = nl ? (size_t)(nl - buf) : len;
                const char *s = buf + p;
                size_t sl = e - p;
                p = nl ? e + 1 : len;
                b.n = 0;
                if (lines) {
                    in_bytes += sl;
                    double e0 = g2_now();
                    if (gemma2_tokenize(t, s, sl, &eo, &b, &err)) goto fail;
                    enc_s += g2_now() - e0;
                    n_tokens += b.n;
                    print_ids(stdout, t, &b, pieces, 1);
                    continue;
                }
                size_t k = 0;
                while (k < sl && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r')) k++;
                if (k == sl) continue; /* blank line */
                char *txt;
                size_t tl;
                if (g2_json_string_field(s, sl, "text", &txt, &tl, &err) || !txt) {
                    fprintf(stderr, "gemma2 tokenize: %s line %zu: %s\n", jsonl, ln + 1,
                            txt ? err.msg : "no \"text\" string field");
                    rc = 1;
                    goto out;
                }
                in_bytes += tl;
                double e0 = g2_now();
                gemma2_status st = gemma2_tokenize(t, txt, tl, &eo, &b, &err);
                enc_s += g2_now() - e0;
                free(txt);
                if (st) goto fail;
                n_tokens += b.n;
                print_ids(stdout, t, &b, pieces, 0);
            }
        }
    }
    if (stats)
        fprintf(stderr, "load %.3f s (%s, %d pieces, %.1f MB in memory); encoded %zu bytes -> %zu tokens in %.3f s = %.2f MB/s\n",
                t1 - t0,
                gemma2_tokenizer_get_source(t) == GEMMA2_TOKENIZER_SPM       ? "sentencepiece model"
                : gemma2_tokenizer_get_source(t) == GEMMA2_TOKENIZER_HF_JSON ? "tokenizer.json"
                                                                             : "gguf",
                gemma2_tokenizer_vocab_size(t), gemma2_tokenizer_memory_bytes(t) / 1e6, in_bytes, n_tokens, enc_s,
                enc_s > 0 ? in_bytes / 1e6 / enc_s : 0.0);
    goto out;
fail:
    fprintf(stderr, "gemma2 tokenize: %s\n", err.msg);
    rc = 1;
out:
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "gemma2 tokenize: cannot write output: %s\n", strerror(errno));
        rc = 1;
    }
    free(buf);
    gemma2_token_buf_free(&b);
    gemma2_tokenizer_free(t);
    return rc;
}

/* ---- detokenize ------------------------------------------------------------ */

static void detokenize_usage(FILE *f) {
    fputs("usage: gemma2 detokenize -t TOKENIZER [--ids \"1 2 3\" | --file F] [options]\n"
          "\n"
          "Token ids to text, as SentencePiece decodes them. Ids are read from --ids, or from F\n"
          "(default: stdin), separated by spaces, commas or newlines; JSON brackets are ignored.\n"
          "\n"
          "  -t, --tokenizer PATH  a tokenizer.model, tokenizer.json, GGUF file or model directory (required)\n"
          "  --ids S               the ids as one string (default: read the input)\n"
          "  --file F              read ids from F (default: - = stdin)\n"
          "  --lines               each input line is one sequence; print each text as a JSON string on\n"
          "                        its own line (default: off: all ids are one sequence, text written raw)\n"
          "  --stream              decode id by id with the incremental decoder and flush after each\n"
          "                        (what a generation loop does; the text is the same) (default: off)\n"
          "  -h, --help            this help\n",
          f);
}

/* Parses ids from s[0..n): any run of digits (with an optional '-') is an id. */
static int parse_ids(const char *s, size_t n, gemma2_token_buf *b) {
    gemma2_error err;
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if ((c >= '0' && c <= '9') || (c == '-' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9')) {
            char *end;
            errno = 0;
            long v = strtol(s + i, &end, 10);
            if (errno || v < INT32_MIN || v > INT32_MAX) return -1;
            if (b->n == b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 256;
                int32_t *p = realloc(b->ids, cap * sizeof *p);
                if (!p) return -1;
                b->ids = p;
                b->cap = cap;
            }
            b->ids[b->n++] = (int32_t)v;
            i = (size_t)(end - s);
        } else if (c == ' ' || c == ',' || c == '\n' || c == '\r' || c == '\t' || c == '[' || c == ']') {
            i++;
        } else {
            return -1;
        }
    }
    (void)err;
    return 0;
}

int g2_cmd_detokenize(int argc, char **argv) {
    const char *tok_path = NULL, *ids = NULL, *file = "-";
    int lines = 0, stream = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            detokenize_usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--tokenizer")) && has) tok_path = argv[++i];
        else if (!strcmp(a, "--ids") && has) ids = argv[++i];
        else if (!strcmp(a, "--file") && has) file = argv[++i];
        else if (!strcmp(a, "--lines")) lines = 1;
        else if (!strcmp(a, "--stream")) stream = 1;
        else {
            fprintf(stderr, "gemma2 detokenize: unknown or incomplete option '%s'\n\n", a);
            detokenize_usage(stderr);
            return 2;
        }
    }
    gemma2_tokenizer *t;
    int rc = load(tok_path, &t, "detokenize");
    if (rc) return rc;
    size_t len;
    char *buf = ids ? strdup(ids) : read_all(file, &len);
    if (ids && buf) len = strlen(buf);
    gemma2_token_buf b = {0};
    gemma2_text_buf out = {0};
    gemma2_decoder *d = NULL;
    gemma2_error err;
    if (!buf) {
        fprintf(stderr, "gemma2 detokenize: cannot read %s\n", file);
        rc = 1;
        goto done;
    }
    if (gemma2_decoder_create(t, &d, &err)) goto fail;
    for (size_t p = 0; p < len || (p == 0 && len == 0);) {
        size_t e = len;
        if (lines) {
            const char *nl = memchr(buf + p, '\n', len - p);
            if (nl) e = (size_t)(nl - buf);
        }
        b.n = 0;
        out.len = 0;
        if (parse_ids(buf + p, e - p, &b)) {
            fprintf(stderr, "gemma2 detokenize: input is not a list of integer ids\n");
            rc = 1;
            goto done;
        }
        p = e + 1;
        if (stream && !lines) {
            for (size_t i = 0; i <= b.n; i++) {
                out.len = 0;
                gemma2_status st = i < b.n ? gemma2_decoder_push(d, b.ids[i], &out, &err) : gemma2_decoder_flush(d, &out, &err);
                if (st) goto fail;
                fwrite(out.data, 1, out.len, stdout);
                fflush(stdout);
            }
        } else {
            if (gemma2_detokenize(t, b.ids, b.n, &out, &err)) goto fail;
            if (lines) {
                json_string(stdout, out.data, out.len);
                fputc('\n', stdout);
            } else {
                fwrite(out.data, 1, out.len, stdout);
            }
        }
        if (len == 0) break;
    }
    goto done;
fail:
    fprintf(stderr, "gemma2 detokenize: %s\n", err.msg);
    rc = 1;
done:
    if (fflush(stdout) != 0) rc = 1;
    free(buf);
    gemma2_decoder_free(d);
    gemma2_token_buf_free(&b);
    gemma2_text_buf_free(&out);
    gemma2_tokenizer_free(t);
    return rc;
}

/* ---- tokenizer train / info -------------------------------------------------- */

static void tokenizer_usage(FILE *f) {
    gemma2_train_options d = gemma2_train_default_options();
    fprintf(f,
            "usage: gemma2 tokenizer train --out FILE [options] FILES...\n"
            "       gemma2 tokenizer info -t TOKENIZER\n"
            "\n"
            "train: learn a SentencePiece BPE model with Gemma's settings (identity normalization, no\n"
            "dummy prefix, whitespace kept, split digits, byte fallback) and Gemma's special layout\n"
            "(<pad> 0, <eos> 1, <bos> 2, <unk> 3, <start_of_turn> 4, <end_of_turn> 5, 256 byte pieces).\n"
            "Each line of each file is one training sentence. The file loads in SentencePiece itself.\n"
            "\n"
            "  --out FILE            where to write the model (required)\n"
            "  --vocab-size N        total pieces (default %d)\n"
            "  --coverage X          fraction of characters that get their own piece; the rarest rest\n"
            "                        fall back to bytes (default %g)\n"
            "  --max-piece-chars N   longest piece in characters (default %d)\n"
            "  --user-defined P      an extra user-defined piece, matched in text before BPE; repeatable\n"
            "                        (default: none)\n"
            "\n"
            "info: vocabulary size, special ids, piece types and memory of a loaded tokenizer.\n"
            "  -t, --tokenizer PATH  a tokenizer.model, tokenizer.json, GGUF file or model directory\n",
            d.vocab_size, d.character_coverage, d.max_piece_chars);
}

static int tokenizer_info(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-t") || !strcmp(argv[i], "--tokenizer")) && i + 1 < argc) path = argv[++i];
        else {
            fprintf(stderr, "gemma2 tokenizer info: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    gemma2_tokenizer *t;
    double t0 = g2_now();
    int rc = load(path, &t, "tokenizer info");
    if (rc) return rc;
    double t1 = g2_now();
    int counts[7] = {0};
    int n = gemma2_tokenizer_vocab_size(t);
    for (int i = 0; i < n; i++) counts[gemma2_tokenizer_piece_type(t, i) % 7]++;
    printf("pieces: %d (normal %d, user-defined %d, control %d, unknown %d, byte %d, unused %d)\n", n, counts[1],
           counts[4], counts[3], counts[2], counts[6], counts[5]);
    printf("bos %d  eos %d  pad %d  unk %d  start_of_turn %d  end_of_turn %d\n", gemma2_tokenizer_bos_id(t),
           gemma2_tokenizer_eos_id(t), gemma2_tokenizer_pad_id(t), gemma2_tokenizer_unk_id(t),
           gemma2_tokenizer_start_of_turn_id(t), gemma2_tokenizer_end_of_turn_id(t));
    printf("memory: %.1f MB; load time %.3f s\n", gemma2_tokenizer_memory_bytes(t) / 1e6, t1 - t0);
    gemma2_tokenizer_free(t);
    return 0;
}

static int tokenizer_train(int argc, char **argv) {
    gemma2_train_options o = gemma2_train_default_options();
    const char *out = NULL;
    const char **files = calloc((size_t)argc, sizeof *files);
    const char **ud = calloc((size_t)argc + 1, sizeof *ud);
    int nf = 0, nud = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--out") && has) out = argv[++i];
        else if (!strcmp(a, "--vocab-size") && has) o.vocab_size = atoi(argv[++i]);
        else if (!strcmp(a, "--coverage") && has) o.character_coverage = atof(argv[++i]);
        else if (!strcmp(a, "--max-piece-chars") && has) o.max_piece_chars = atoi(argv[++i]);
        else if (!strcmp(a, "--user-defined") && has) ud[nud++] = argv[++i];
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "gemma2 tokenizer train: unknown or incomplete option '%s'\n\n", a);
            tokenizer_usage(stderr);
            rc = 2;
            goto done;
        } else files[nf++] = a;
    }
    if (!out || nf == 0) {
        fprintf(stderr, "gemma2 tokenizer train: --out and at least one input file are required\n\n");
        tokenizer_usage(stderr);
        rc = 2;
        goto done;
    }
    o.user_defined = nud ? ud : NULL;
    /* every line of every file is one sentence */
    size_t n_texts = 0, cap = 1024;
    const char **texts = malloc(cap * sizeof *texts);
    size_t *lens = malloc(cap * sizeof *lens);
    char **bufs = calloc((size_t)nf, sizeof *bufs);
    for (int f = 0; f < nf && rc == 0; f++) {
        size_t len;
        bufs[f] = read_all(files[f], &len);
        if (!bufs[f]) {
            fprintf(stderr, "gemma2 tokenizer train: cannot read %s\n", files[f]);
            rc = 1;
            break;
        }
        for (size_t p = 0; p < len;) {
            const char *nl = memchr(bufs[f] + p, '\n', len - p);
            size_t e = nl ? (size_t)(nl - bufs[f]) : len;
            if (e > p) {
                if (n_texts == cap) {
                    cap *= 2;
                    texts = realloc(texts, cap * sizeof *texts);
                    lens = realloc(lens, cap * sizeof *lens);
                }
                texts[n_texts] = bufs[f] + p;
                lens[n_texts++] = e - p;
            }
            p = e + 1;
        }
    }
    if (rc == 0) {
        uint8_t *model;
        size_t size;
        gemma2_error err;
        double t0 = g2_now();
        if (gemma2_train_bpe(texts, lens, n_texts, &o, &model, &size, &err)) {
            fprintf(stderr, "gemma2 tokenizer train: %s\n", err.msg);
            rc = 1;
        } else {
            FILE *f = fopen(out, "wb");
            if (!f || fwrite(model, 1, size, f) != size || fclose(f) != 0) {
                fprintf(stderr, "gemma2 tokenizer train: cannot write %s: %s\n", out, strerror(errno));
                rc = 1;
            } else {
                fprintf(stderr, "wrote %s: %d pieces, %zu bytes, from %zu lines in %.1f s\n", out, o.vocab_size, size,
                        n_texts, g2_now() - t0);
            }
            free(model);
        }
    }
    for (int f = 0; f < nf; f++) free(bufs[f]);
    free(bufs);
    free(texts);
    free(lens);
done:
    free(files);
    free(ud);
    return rc;
}

int g2_cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        tokenizer_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "train")) {
        for (int i = 2; i < argc; i++)
            if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
                tokenizer_usage(stdout);
                return 0;
            }
        return tokenizer_train(argc - 1, argv + 1);
    }
    if (!strcmp(argv[1], "info")) return tokenizer_info(argc - 1, argv + 1);
    fprintf(stderr, "gemma2 tokenizer: unknown subcommand '%s' (train, info)\n\n", argv[1]);
    tokenizer_usage(stderr);
    return 2;
}
