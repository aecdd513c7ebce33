/* cmd_chat.c - `gemma2 chat`: multi-turn chat in Gemma 2's template, one line of stdin a turn.
 *
 * The KV cache holds the whole conversation: each turn evaluates only its new tokens, so the
 * sequence the model has seen is always exactly the template rendering of the conversation
 *     <bos><start_of_turn>user\n{u1}<end_of_turn>\n<start_of_turn>model\n{reply ids}<end_of_turn>\n
 *     <start_of_turn>user\n{u2}<end_of_turn>\n<start_of_turn>model\n ...
 * with the reply as the ids that were sampled (never re-tokenized). A reply that ended with
 * <eos> instead of <end_of_turn>, or was cut by -n, is closed with <end_of_turn>\n as the
 * template writes it. Works the same with stdin from a pipe, so sessions can be scripted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "gen_common.h"
#include "model_tokenizer.h"

#define CMD "chat"

static void usage(FILE *f) {
    fprintf(f,
            "usage: gemma2 chat -m MODEL [options]    (one line of stdin per user turn)\n"
            "  -m, --model MODEL     Hugging Face directory or GGUF file (required)\n"
            "  -t, --tokenizer FILE  tokenizer.model, tokenizer.json or GGUF (default: the model's own)\n"
            "  --ctx N               context size in tokens for the whole conversation\n"
            "                        (default: 4096, at most the model's maximum)\n"
            "  -n, --n-predict N     at most N tokens per reply, -1 = until <end_of_turn> (default -1)\n"
            "  --system TEXT         instructions put at the top of the first user turn (Gemma has no\n"
            "                        system role; default: none)\n"
            "  --dump-tokens FILE    write every id the model evaluates, one line per evaluation (debugging)\n"
            "  --threads N           threads (default: all cores)\n"
            G2_CLI_LOAD_MODE_HELP
            "  -h, --help            this help\n"
            "commands typed as a turn: /reset (start a new conversation), /exit (or end of input)\n");
    g2_sampling_usage(f);
}

/* The ids of one user turn and the model prompt after it, without the leading <bos>. */
static gemma2_status turn_ids(const gemma2_tokenizer *t, const char *system, const char *text, gemma2_token_buf *out,
                              gemma2_error *err) {
    gemma2_chat_message msgs[2];
    size_t n = 0;
    if (system) msgs[n].role = "system", msgs[n++].content = system;
    msgs[n].role = "user", msgs[n++].content = text;
    gemma2_token_buf tb = {0};
    gemma2_status st = gemma2_chat_tokenize(t, msgs, n, 1, &tb, err);
    if (st == GEMMA2_OK)
        for (size_t i = 1; i < tb.n; i++) { /* tb.ids[0] is <bos> */
            if (out->n == out->cap) {
                size_t cap = out->cap ? 2 * out->cap : 256;
                int32_t *p = realloc(out->ids, cap * sizeof *p);
                if (!p) {
                    st = GEMMA2_ERR_NOMEM;
                    snprintf(err->msg, sizeof err->msg, "out of memory");
                    break;
                }
                out->ids = p, out->cap = cap;
            }
            out->ids[out->n++] = tb.ids[i];
        }
    gemma2_token_buf_free(&tb);
    return st;
}

static int push(gemma2_token_buf *b, int32_t id) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        int32_t *p = realloc(b->ids, cap * sizeof *p);
        if (!p) return -1;
        b->ids = p, b->cap = cap;
    }
    b->ids[b->n++] = id;
    return 0;
}

int g2_cmd_chat(int argc, char **argv) {
    const char *model = NULL, *tok_path = NULL, *dump_path = NULL, *system = NULL, *v;
    long n_predict = -1, n_ctx = 0, threads = 0;
    gemma2_load_mode load_mode = GEMMA2_LOAD_AUTO;
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
        } else if (!strcmp(a, "-t") || !strcmp(a, "--tokenizer")) {
            if (!(tok_path = g2_cli_value(argc, argv, &i, CMD))) return 2;
        } else if (!strcmp(a, "--dump-tokens")) {
            if (!(dump_path = g2_cli_value(argc, argv, &i, CMD))) return 2;
        } else if (!strcmp(a, "--system")) {
            if (!(system = g2_cli_value(argc, argv, &i, CMD))) return 2;
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
        } else {
            fprintf(stderr, "gemma2 " CMD ": unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "gemma2 " CMD ": -m MODEL is required\n");
        usage(stderr);
        return 2;
    }
    if (g2_sampling_args_finish(&sa, CMD)) return 2;

    int rc = 1;
    gemma2_model *m = NULL;
    gemma2_tokenizer *tok = NULL;
    gemma2_context *ctx = NULL;
    FILE *dump = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    gemma2_token_buf batch = {0};
    g2_gen g;
    memset(&g, 0, sizeof g);
    gemma2_error err;

    if (!(m = g2_cli_open_model(CMD, model, (int)threads, load_mode))) goto done;
    const gemma2_config *cfg = gemma2_model_config(m);
    if (!(tok = g2_cli_load_tokenizer(CMD, m, model, tok_path))) goto done;
    const int32_t bos = gemma2_tokenizer_bos_id(tok), eot = gemma2_tokenizer_end_of_turn_id(tok);
    const int32_t nl = gemma2_tokenizer_piece_to_id(tok, "\n", 1);
    if (bos < 0 || eot < 0 || nl < 0) {
        fprintf(stderr, "gemma2 " CMD ": the tokenizer lacks <bos>, <end_of_turn> or \"\\n\": not a Gemma chat vocabulary\n");
        goto done;
    }
    gemma2_context_options co = gemma2_context_default_options();
    co.n_ctx = (int)(n_ctx ? n_ctx : 4096);
    if (!n_ctx && co.n_ctx > cfg->max_position_embeddings) co.n_ctx = cfg->max_position_embeddings;
    if (gemma2_context_create(m, &co, &ctx, &err)) goto fail;
    if (gemma2_sampler_create(&sa.so, cfg->vocab_size, &g.sampler, &err)) goto fail;
    if (gemma2_decoder_create(tok, &g.dec, &err)) goto fail;
    if (dump_path && !(dump = fopen(dump_path, "w"))) {
        fprintf(stderr, "gemma2 " CMD ": cannot write %s\n", dump_path);
        goto done;
    }
    g.ctx = ctx;
    g.out = stdout;
    g.dump = dump;
    g.n_stop = g2_cli_stop_ids(tok, cfg->vocab_size, g.stop);
    g.pending = -1;

    const int interactive = isatty(STDIN_FILENO);
    const int size = gemma2_context_size(ctx);
    if (interactive)
        fprintf(stderr, "chatting with %s (context %d tokens). /reset starts over, /exit or Ctrl-D quits.\n", model,
                size);
    int started = 0, full = 0, turns = 0;
    long n_generated = 0;
    for (;;) {
        if (interactive) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        ssize_t len = getline(&line, &line_cap, stdin);
        if (len < 0) break;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            if (gemma2_context_rewind(ctx, 0, &err)) goto fail;
            gemma2_sampler_reset(g.sampler);
            started = full = 0;
            g.pending = -1;
            fprintf(stderr, "[new conversation]\n");
            continue;
        }
        if (full) {
            fprintf(stderr, "[the context is full (%d tokens): type /reset to start a new conversation, "
                            "or restart with a larger --ctx]\n", size);
            continue;
        }
        /* This turn's new ids: close the previous reply as the template does, then the user turn. */
        batch.n = 0;
        if (!started) {
            if (push(&batch, bos)) goto oom;
        } else {
            if (g.pending >= 0 && push(&batch, g.pending)) goto oom;
            if (push(&batch, eot) || push(&batch, nl)) goto oom;
        }
        if (turn_ids(tok, started ? NULL : system, line, &batch, &err)) goto fail;
        int pos = gemma2_context_pos(ctx);
        if (pos + (long)batch.n >= size) {
            /* Not a single position would be left for the reply. */
            fprintf(stderr, "[the context is full: the conversation holds %d of %d tokens and this message needs %zu "
                            "more. Type /reset to start a new conversation, or restart with a larger --ctx]\n",
                    pos, size, batch.n);
            continue;
        }
        if (g2_gen_eval(&g, batch.ids, (int)batch.n, 1, 0, &err)) goto fail;
        started = 1;
        int n_gen = 0;
        g2_stop stop = g2_gen_run(&g, (int)n_predict, &n_gen, &err);
        g2_gen_flush(&g);
        fputc('\n', stdout);
        fflush(stdout);
        if (stop == G2_STOP_ERROR) goto fail;
        turns++;
        n_generated += n_gen;
        if (stop == G2_STOP_CTX_FULL) {
            full = 1;
            fprintf(stderr, "[the context is full (%d tokens), the reply was cut: type /reset to start a new "
                            "conversation, or restart with a larger --ctx]\n", size);
        }
    }
    fprintf(stderr, "turns: %d; prompt: %ld tokens, %.3f s (%.1f tok/s); generated: %ld tokens, decode %.3f s (%.1f tok/s)\n",
            turns, g.n_prompt, g.t_prompt, g.t_prompt > 0 ? g.n_prompt / g.t_prompt : 0.0, n_generated, g.t_decode,
            g.t_decode > 0 ? g.n_decode / g.t_decode : 0.0);
    if (sa.so.temperature > 0) fprintf(stderr, "seed: %llu\n", (unsigned long long)sa.so.seed);
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "gemma2 " CMD ": out of memory\n");
    goto done;
fail:
    fprintf(stderr, "gemma2 " CMD ": %s\n", err.msg);
done:
    if (dump) fclose(dump);
    free(line);
    gemma2_token_buf_free(&batch);
    gemma2_text_buf_free(&g.text);
    gemma2_decoder_free(g.dec);
    gemma2_sampler_free(g.sampler);
    gemma2_context_free(ctx);
    gemma2_tokenizer_free(tok);
    gemma2_model_close(m);
    return rc;
}
