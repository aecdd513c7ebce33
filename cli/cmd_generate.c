/* cmd_generate.c - `gemma2 generate`: continue a prompt, streaming the text as it is sampled.
 *
 * The model's input always starts with <bos> (Gemma 2 is trained that way and degrades badly
 * without it). Generation stops after -n ids, at <eos> / <end_of_turn> (never printed), or when
 * the context is full. Timings go to stderr so that stdout holds exactly the generated text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "gen_common.h"
#include "model_tokenizer.h"
#include "util/mapped_file.h"

#define CMD "generate"

static void usage(FILE *f) {
    fprintf(f,
            "usage: gemma2 generate -m MODEL (-p PROMPT | -f FILE | --ids LIST) [options]\n"
            "  -m, --model MODEL     Hugging Face directory or GGUF file (required)\n"
            "  -p, --prompt TEXT     the prompt\n"
            "  -f, --file FILE       read the prompt from a file (- = stdin)\n"
            "  --ids LIST            the prompt as token ids (commas/spaces); <bos> is put first if missing\n"
            "  -n, --n-predict N     generate at most N tokens, -1 = until <eos>/<end_of_turn> or a full\n"
            "                        context (default 128)\n"
            "  --chat                wrap the prompt in the Gemma chat template (a user turn, then the model's)\n"
            "  --echo                print the prompt (as the model sees it) before the generated text\n"
            "  --ctx N               context size (default: prompt + N tokens, at most the model's maximum)\n"
            "  -t, --tokenizer FILE  tokenizer.model, tokenizer.json or GGUF (default: the model's own)\n"
            "  --output-ids          print the generated token ids instead of text (no tokenizer needed with --ids)\n"
            "  --ignore-eos          do not stop at <eos>/<end_of_turn> (benchmarks)\n"
            "  --dump-tokens FILE    write every id the model evaluates, one line per evaluation (debugging)\n"
            "  --threads N           threads (default: all cores)\n"
            G2_CLI_LOAD_MODE_HELP
            "  -h, --help            this help\n");
    g2_sampling_usage(f);
}

/* All of stdin, NUL-terminated (for -f -). */
static char *read_stdin(void) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - 1 - n, stdin);
        if (n < cap - 1) break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) free(buf);
        buf = nb;
    }
    if (!buf || ferror(stdin)) {
        fprintf(stderr, "gemma2 " CMD ": cannot read the prompt from stdin\n");
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

static char *read_prompt_file(const char *path) {
    if (!strcmp(path, "-")) return read_stdin();
    char *text;
    gemma2_error err;
    if (g2_read_file(path, &text, NULL, &err)) {
        fprintf(stderr, "gemma2 " CMD ": cannot read the prompt file: %s\n", err.msg);
        return NULL;
    }
    return text;
}

int g2_cmd_generate(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *file = NULL, *ids_arg = NULL, *tok_path = NULL, *dump_path = NULL;
    const char *v;
    long n_predict = 128, n_ctx = 0, threads = 0;
    gemma2_load_mode load_mode = GEMMA2_LOAD_AUTO;
    int chat = 0, echo = 0, output_ids = 0, ignore_eos = 0;
    g2_sampling_args sa;
    g2_sampling_args_init(&sa);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = g2_sampling_arg(argc, argv, &i, CMD, &sa);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = g2_cli_value(argc, argv, &i, CMD))) return 2;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = g2_cli_value(argc, argv, &i, CMD))) return 2;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(file = g2_cli_value(argc, argv, &i, CMD))) return 2;
        } else if (!strcmp(a, "--ids")) {
            if (!(ids_arg = g2_cli_value(argc, argv, &i, CMD))) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--tokenizer")) {
            if (!(tok_path = g2_cli_value(argc, argv, &i, CMD))) return 2;
        } else if (!strcmp(a, "--dump-tokens")) {
            if (!(dump_path = g2_cli_value(argc, argv, &i, CMD))) return 2;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!(v = g2_cli_value(argc, argv, &i, CMD))) return 2;
            if (!g2_cli_parse_int(v, -1, 1 << 30, &n_predict)) {
                fprintf(stderr, "gemma2 " CMD ": %s must be an integer >= -1, got '%s'\n", a, v);
                return 2;
            }
        } else if (!strcmp(a, "--load-mode")) {
            if (!g2_cli_load_mode_option(CMD, argc, argv, &i, &load_mode)) return 2;
        } else if (!strcmp(a, "--ctx") || !strcmp(a, "--threads")) {
            int is_ctx = !strcmp(a, "--ctx");
            if (!(v = g2_cli_value(argc, argv, &i, CMD))) return 2;
            if (!g2_cli_parse_int(v, 1, 1 << 24, is_ctx ? &n_ctx : &threads)) {
                fprintf(stderr, "gemma2 " CMD ": %s must be a positive integer, got '%s'\n", a, v);
                return 2;
            }
        } else if (!strcmp(a, "--chat")) {
            chat = 1;
        } else if (!strcmp(a, "--echo")) {
            echo = 1;
        } else if (!strcmp(a, "--output-ids")) {
            output_ids = 1;
        } else if (!strcmp(a, "--ignore-eos")) {
            ignore_eos = 1;
        } else {
            fprintf(stderr, "gemma2 " CMD ": unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model || (!!prompt + !!file + !!ids_arg) != 1) {
        fprintf(stderr, "gemma2 " CMD ": -m MODEL and one of -p PROMPT / -f FILE / --ids LIST are required\n");
        usage(stderr);
        return 2;
    }
    if (chat && ids_arg) {
        fprintf(stderr, "gemma2 " CMD ": --chat wraps text; it cannot be used with --ids\n");
        return 2;
    }
    if (g2_sampling_args_finish(&sa, CMD)) return 2;

    int rc = 1;
    char *file_text = NULL;
    int32_t *ids = NULL;
    int n_ids = 0;
    gemma2_model *m = NULL;
    gemma2_tokenizer *tok = NULL;
    gemma2_context *ctx = NULL;
    FILE *dump = NULL;
    gemma2_token_buf tb = {0};
    gemma2_text_buf echo_text = {0};
    g2_gen g;
    memset(&g, 0, sizeof g);
    gemma2_error err;

    if (file && !(prompt = file_text = read_prompt_file(file))) goto done;
    if (ids_arg && (n_ids = g2_cli_parse_ids(ids_arg, "--ids", &ids)) < 0) goto done;
    if (!(m = g2_cli_open_model(CMD, model, (int)threads, load_mode))) goto done;
    const gemma2_config *cfg = gemma2_model_config(m);
    if (prompt || !output_ids) {
        if (!(tok = g2_cli_load_tokenizer(CMD, m, model, tok_path))) {
            if (ids_arg) fprintf(stderr, "gemma2 " CMD ": (with --ids, --output-ids needs no tokenizer)\n");
            goto done;
        }
    }
    const int32_t bos = tok ? gemma2_tokenizer_bos_id(tok) : 2;

    /* The prompt ids, <bos> first. */
    if (prompt) {
        if (chat) {
            gemma2_chat_message msg = {"user", prompt};
            if (gemma2_chat_tokenize(tok, &msg, 1, 1, &tb, &err)) goto fail;
        } else {
            gemma2_encode_options eo = gemma2_encode_default_options();
            eo.add_bos = 1;
            if (gemma2_tokenize(tok, prompt, strlen(prompt), &eo, &tb, &err)) goto fail;
        }
    } else {
        if (ids[0] != bos) {
            tb.ids = malloc(((size_t)n_ids + 1) * sizeof *tb.ids);
            if (!tb.ids) goto oom;
            tb.ids[0] = bos;
            memcpy(tb.ids + 1, ids, (size_t)n_ids * sizeof *ids);
            tb.n = tb.cap = (size_t)n_ids + 1;
        } else {
            tb.ids = ids, tb.n = tb.cap = (size_t)n_ids;
            ids = NULL;
        }
        for (size_t i = 0; i < tb.n; i++)
            if (tb.ids[i] < 0 || tb.ids[i] >= cfg->vocab_size) {
                fprintf(stderr, "gemma2 " CMD ": token id %d is outside the model's vocabulary (0..%d)\n", tb.ids[i],
                        cfg->vocab_size - 1);
                goto done;
            }
    }
    const int n_prompt = (int)tb.n;

    /* The context: what was asked for, else just enough for prompt + answer. */
    long want = n_ctx;
    if (!want) {
        want = n_predict < 0 ? cfg->max_position_embeddings : n_prompt + n_predict;
        if (want > cfg->max_position_embeddings) want = cfg->max_position_embeddings;
    }
    if (n_prompt > want) {
        if (n_ctx)
            fprintf(stderr, "gemma2 " CMD ": the prompt is %d tokens, longer than the context of %ld (--ctx)\n", n_prompt,
                    want);
        else
            fprintf(stderr, "gemma2 " CMD ": the prompt is %d tokens, longer than the model's context of %ld\n", n_prompt,
                    want);
        goto done;
    }
    gemma2_context_options co = gemma2_context_default_options();
    co.n_ctx = (int)want;
    if (gemma2_context_create(m, &co, &ctx, &err)) goto fail;
    if (gemma2_sampler_create(&sa.so, cfg->vocab_size, &g.sampler, &err)) goto fail;
    if (!output_ids && gemma2_decoder_create(tok, &g.dec, &err)) goto fail;
    if (dump_path && !(dump = fopen(dump_path, "w"))) {
        fprintf(stderr, "gemma2 " CMD ": cannot write %s\n", dump_path);
        goto done;
    }
    g.ctx = ctx;
    g.out = stdout;
    g.dump = dump;
    g.n_stop = ignore_eos ? 0 : g2_cli_stop_ids(tok, cfg->vocab_size, g.stop);

    if (echo) {
        if (output_ids) {
            for (size_t i = 0; i < tb.n; i++) printf(i ? " %d" : "%d", tb.ids[i]);
            printf(" ");
        } else {
            if (gemma2_detokenize(tok, tb.ids, tb.n, &echo_text, &err)) goto fail;
            fwrite(echo_text.data, 1, echo_text.len, stdout);
        }
        fflush(stdout);
    }
    if (g2_gen_eval(&g, tb.ids, n_prompt, 1, 0, &err)) goto fail;
    int n_gen = 0;
    g2_stop stop = g2_gen_run(&g, (int)n_predict, &n_gen, &err);
    g2_gen_flush(&g);
    fputc('\n', stdout);
    fflush(stdout);
    if (stop == G2_STOP_ERROR) goto fail;
    if (stop == G2_STOP_CTX_FULL)
        fprintf(stderr, "gemma2 " CMD ": stopped: the context of %d positions is full (use --ctx for more)\n",
                gemma2_context_size(ctx));
    fprintf(stderr, "prompt: %d tokens, %.3f s (%.1f tok/s)\n", n_prompt, g.t_prompt,
            g.t_prompt > 0 ? n_prompt / g.t_prompt : 0.0);
    fprintf(stderr, "generated: %d tokens (stop: %s); decode: %ld evaluations, %.3f s (%.1f tok/s)\n", n_gen,
            g2_stop_name(stop, g.stop_id), g.n_decode, g.t_decode, g.t_decode > 0 ? g.n_decode / g.t_decode : 0.0);
    fprintf(stderr, "sampling: %.3f ms per token", g.n_sample ? 1e3 * g.t_sample / (double)g.n_sample : 0.0);
    if (sa.so.temperature > 0) fprintf(stderr, "; seed: %llu", (unsigned long long)sa.so.seed);
    fputc('\n', stderr);
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "gemma2 " CMD ": out of memory\n");
    goto done;
fail:
    fprintf(stderr, "gemma2 " CMD ": %s\n", err.msg);
done:
    if (dump) fclose(dump);
    gemma2_token_buf_free(&tb);
    gemma2_text_buf_free(&echo_text);
    gemma2_text_buf_free(&g.text);
    gemma2_decoder_free(g.dec);
    gemma2_sampler_free(g.sampler);
    gemma2_context_free(ctx);
    gemma2_tokenizer_free(tok);
    gemma2_model_close(m);
    free(ids);
    free(file_text);
    return rc;
}
