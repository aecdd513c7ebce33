/* cmd_perplexity.c - `gemma2 perplexity`: perplexity of a text as llama.cpp's perplexity tool
 * computes it, and the KL divergence of this model's predictions from saved ones.
 *
 * llama.cpp's method (examples/perplexity): tokenize the whole text with <bos>; cut it into
 * non-overlapping chunks of --ctx tokens (a tail shorter than a chunk is dropped); overwrite
 * the first token of every chunk with <bos>; evaluate each chunk in a fresh context and score
 * only its second half (the rows j = ctx/2 .. ctx-2, row j predicting token j+1), so that every
 * scored token has at least ctx/2 tokens of context. PPL = exp(mean NLL); its error is
 * PPL * sqrt(var(NLL) / (n - 1)) (first-order propagation of the standard error of the mean).
 * --stride S is llama.cpp's --ppl-stride: windows of ctx tokens starting every S tokens, each
 * scoring its last S predictions.
 *
 * --kl-divergence FILE reads the tokens and per-position logits that --save-logits wrote for
 * another model (e.g. the BF16 original of a quantized model) and reports the mean of
 * KL(P_saved || P_this) and how often both models have the same most likely token. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "model_tokenizer.h"
#include "ppl_logits_file.h"
#include "progress.h"
#include "util/mapped_file.h"

#define CMD "perplexity"
/* Scored rows are evaluated this many at a time: the logits of a batch take B x vocab floats
 * (32 MB at B = 32 with 256k ids), instead of ctx x vocab for a whole chunk. */
#define SCORE_BATCH 32

static void usage(FILE *f) {
    fprintf(f,
            "usage: gemma2 perplexity -m MODEL (-f TEXT | --ids-file FILE | --kl-divergence SAVED) [options]\n"
            "  -m, --model MODEL       Hugging Face directory or GGUF file (required)\n"
            "  -f, --file TEXT         the text to score (tokenized with <bos> first)\n"
            "  --ids-file FILE         score a token-id sequence instead of a text (no tokenizer needed)\n"
            "  --ctx N                 tokens per chunk; the second half of each is scored (default 512, at most\n"
            "                          the model's context)\n"
            "  --stride S              0 = non-overlapping chunks; S > 0: windows of --ctx tokens every S\n"
            "                          tokens, scoring the last S of each (llama.cpp's --ppl-stride) (default 0)\n"
            "  --chunks N              score at most N chunks, -1 = all (default -1)\n"
            "  --save-logits FILE      save the tokens and the scored positions' logits (16-bit) for a later\n"
            "                          --kl-divergence run with another model\n"
            "  --kl-divergence FILE    compare with logits saved by --save-logits (tokens, --ctx and --stride\n"
            "                          come from FILE): mean KL divergence and top-1 agreement\n"
            "  -t, --tokenizer FILE    tokenizer.model, tokenizer.json or GGUF (default: the model's own)\n"
            "  --threads N             threads (default: all cores)\n"
            G2_CLI_LOAD_MODE_HELP
            "  -h, --help              this help\n"
            "A progress bar is shown on stderr when stdout and stderr are terminals.\n");
}

/* Row statistics in double: log-sum-exp, the NLL of `target`, the argmax (lowest id on ties). */
static double log_sum_exp(const float *l, int V, int *argmax) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (l[i] > l[best]) best = i;
    double mx = l[best], s = 0;
    for (int i = 0; i < V; i++) s += exp((double)l[i] - mx);
    if (argmax) *argmax = best;
    return mx + log(s);
}

/* KL(P_base || P_cur) = sum_i p_base(i) (log p_base(i) - log p_cur(i)). */
static double kl_div(const float *base, double lse_base, const float *cur, double lse_cur, int V) {
    double kl = 0;
    for (int i = 0; i < V; i++) {
        double lb = (double)base[i] - lse_base;
        double p = exp(lb);
        if (p > 0) kl += p * (lb - ((double)cur[i] - lse_cur));
    }
    return kl > 0 ? kl : 0; /* rounding can leave -1e-17 for identical rows */
}

typedef struct {
    double sum, sum2;
    long n;
} g2_acc;

static void acc_add(g2_acc *a, double x) { a->sum += x, a->sum2 += x * x, a->n++; }
static double acc_mean(const g2_acc *a) { return a->n ? a->sum / (double)a->n : 0; }
/* Standard error of the mean. */
static double acc_sem(const g2_acc *a) {
    if (a->n < 2) return 0;
    double m = acc_mean(a), var = a->sum2 / (double)a->n - m * m;
    return var > 0 ? sqrt(var / (double)(a->n - 1)) : 0;
}

int g2_cmd_perplexity(int argc, char **argv) {
    const char *model = NULL, *text_path = NULL, *ids_path = NULL, *tok_path = NULL, *save_path = NULL,
               *kl_path = NULL, *v;
    long n_ctx = 0, stride = -1, max_chunks = -1, threads = 0;
    gemma2_load_mode load_mode = GEMMA2_LOAD_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = g2_cli_value(argc, argv, &i, CMD))) return 2;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(text_path = g2_cli_value(argc, argv, &i, CMD))) return 2;
        } else if (!strcmp(a, "--ids-file")) {
            if (!(ids_path = g2_cli_value(argc, argv, &i, CMD))) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--tokenizer")) {
            if (!(tok_path = g2_cli_value(argc, argv, &i, CMD))) return 2;
        } else if (!strcmp(a, "--save-logits")) {
            if (!(save_path = g2_cli_value(argc, argv, &i, CMD))) return 2;
        } else if (!strcmp(a, "--kl-divergence")) {
            if (!(kl_path = g2_cli_value(argc, argv, &i, CMD))) return 2;
        } else if (!strcmp(a, "--load-mode")) {
            if (!g2_cli_load_mode_option(CMD, argc, argv, &i, &load_mode)) return 2;
        } else if (!strcmp(a, "--ctx") || !strcmp(a, "--threads")) {
            int is_ctx = !strcmp(a, "--ctx");
            if (!(v = g2_cli_value(argc, argv, &i, CMD))) return 2;
            if (!g2_cli_parse_int(v, is_ctx ? 4 : 1, 1 << 24, is_ctx ? &n_ctx : &threads)) {
                fprintf(stderr, "gemma2 " CMD ": %s must be an integer >= %d, got '%s'\n", a, is_ctx ? 4 : 1, v);
                return 2;
            }
        } else if (!strcmp(a, "--stride")) {
            if (!(v = g2_cli_value(argc, argv, &i, CMD))) return 2;
            if (!g2_cli_parse_int(v, 0, 1 << 24, &stride)) {
                fprintf(stderr, "gemma2 " CMD ": --stride must be an integer >= 0, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--chunks")) {
            if (!(v = g2_cli_value(argc, argv, &i, CMD))) return 2;
            if (!g2_cli_parse_int(v, -1, 1 << 30, &max_chunks) || max_chunks == 0) {
                fprintf(stderr, "gemma2 " CMD ": --chunks must be a positive integer or -1, got '%s'\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "gemma2 " CMD ": unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model || (!!text_path + !!ids_path + !!kl_path) != 1) {
        fprintf(stderr, "gemma2 " CMD ": -m MODEL and one of -f TEXT / --ids-file FILE / --kl-divergence FILE are "
                        "required (with --kl-divergence the tokens come from the file)\n");
        usage(stderr);
        return 2;
    }
    if (kl_path && save_path) {
        fprintf(stderr, "gemma2 " CMD ": --save-logits and --kl-divergence cannot be combined\n");
        return 2;
    }

    int rc = 1;
    char *text = NULL;
    int32_t *tokens = NULL;
    long n_tokens = 0;
    float *logits = NULL, *base = NULL;
    uint16_t *q = NULL;
    FILE *save = NULL, *klf = NULL;
    gemma2_model *m = NULL;
    gemma2_tokenizer *tok = NULL;
    gemma2_context *ctx = NULL;
    gemma2_error err;
    g2_ppl_header kh = {0};
    int32_t *chunk = NULL;

    /* Inputs first, so that an unreadable file is reported before a slow model load. */
    if (text_path && g2_read_file(text_path, &text, NULL, &err)) {
        fprintf(stderr, "gemma2 " CMD ": cannot read the text: %s\n", err.msg);
        goto done;
    }
    if (ids_path) {
        if (g2_read_file(ids_path, &text, NULL, &err)) {
            fprintf(stderr, "gemma2 " CMD ": cannot read the ids: %s\n", err.msg);
            goto done;
        }
        int n = g2_cli_parse_ids(text, ids_path, &tokens);
        if (n < 0) goto done;
        n_tokens = n;
    }
    if (kl_path) {
        char msg[512];
        if (!(klf = fopen(kl_path, "rb"))) {
            fprintf(stderr, "gemma2 " CMD ": cannot open %s\n", kl_path);
            goto done;
        }
        if (g2_ppl_read_header(klf, kl_path, &kh, &tokens, msg, sizeof msg)) {
            fprintf(stderr, "gemma2 " CMD ": %s\n", msg);
            goto done;
        }
        if ((n_ctx && n_ctx != (long)kh.ctx) || (stride >= 0 && stride != (long)kh.stride)) {
            fprintf(stderr, "gemma2 " CMD ": %s was saved with --ctx %u --stride %u; leave those options out\n", kl_path,
                    kh.ctx, kh.stride);
            goto done;
        }
        n_tokens = kh.n_tokens, n_ctx = kh.ctx, stride = kh.stride;
    }
    const int ctx_default = !n_ctx;
    if (!n_ctx) n_ctx = 512;
    if (stride < 0) stride = 0;

    if (!(m = g2_cli_open_model(CMD, model, (int)threads, load_mode))) goto done;
    const gemma2_config *cfg = gemma2_model_config(m);
    const int V = cfg->vocab_size;
    int32_t bos = 2;
    if (text_path) {
        if (!(tok = g2_cli_load_tokenizer(CMD, m, model, tok_path))) goto done;
        gemma2_token_buf tb = {0};
        gemma2_encode_options eo = gemma2_encode_default_options();
        eo.add_bos = 1;
        if (gemma2_tokenize(tok, text, strlen(text), &eo, &tb, &err)) {
            gemma2_token_buf_free(&tb);
            goto fail;
        }
        tokens = tb.ids, n_tokens = (long)tb.n;
        bos = gemma2_tokenizer_bos_id(tok);
    }
    if (ctx_default && n_ctx > cfg->max_position_embeddings) n_ctx = cfg->max_position_embeddings;
    if (stride >= n_ctx) {
        fprintf(stderr, "gemma2 " CMD ": --stride %ld must be smaller than --ctx %ld\n", stride, n_ctx);
        goto done;
    }
    if (n_ctx > cfg->max_position_embeddings) {
        fprintf(stderr, "gemma2 " CMD ": --ctx %ld is larger than the model's context of %d\n", n_ctx,
                cfg->max_position_embeddings);
        goto done;
    }
    if (kl_path && kh.vocab != (uint32_t)V) {
        fprintf(stderr, "gemma2 " CMD ": %s holds logits over %u ids but the model has %d\n", kl_path, kh.vocab, V);
        goto done;
    }
    for (long i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= V) {
            fprintf(stderr, "gemma2 " CMD ": token id %d is outside the model's vocabulary (0..%d)\n", tokens[i], V - 1);
            goto done;
        }

    /* The chunks: where each starts and which rows it scores. */
    long n_chunks = stride ? (n_tokens - n_ctx + stride - 1) / stride : n_tokens / n_ctx;
    if (n_tokens < n_ctx || n_chunks < 1) {
        fprintf(stderr, "gemma2 " CMD ": the text is %ld tokens, fewer than one chunk of %ld (--ctx)%s\n", n_tokens,
                n_ctx, stride ? " plus one stride" : "");
        goto done;
    }
    if (max_chunks > 0 && n_chunks > max_chunks) n_chunks = max_chunks;
    const int first = stride ? (int)(n_ctx - stride - 1) : (int)(n_ctx / 2);
    const int rows = (int)n_ctx - 1 - first;
    /* A file saved with --chunks holds fewer chunks than its tokens allow: score those. */
    if (kl_path && kh.chunks < (uint32_t)n_chunks) n_chunks = kh.chunks;
    if (kl_path && (n_chunks < 1 || kh.rows_per_chunk != (uint32_t)rows)) {
        fprintf(stderr, "gemma2 " CMD ": %s holds %u chunks of %u rows, expected %ld of %d\n", kl_path, kh.chunks,
                kh.rows_per_chunk, n_chunks, rows);
        goto done;
    }

    gemma2_context_options co = gemma2_context_default_options();
    co.n_ctx = (int)n_ctx;
    if (gemma2_context_create(m, &co, &ctx, &err)) goto fail;
    logits = malloc((size_t)SCORE_BATCH * (size_t)V * sizeof *logits);
    base = kl_path ? malloc((size_t)V * sizeof *base) : NULL;
    q = (save_path || kl_path) ? malloc((size_t)V * sizeof *q) : NULL;
    if (!logits || (kl_path && !base) || ((save_path || kl_path) && !q)) {
        fprintf(stderr, "gemma2 " CMD ": out of memory for %d rows of %d logits\n", SCORE_BATCH, V);
        goto done;
    }
    if (save_path) {
        if (!(save = fopen(save_path, "wb"))) {
            fprintf(stderr, "gemma2 " CMD ": cannot write %s\n", save_path);
            goto done;
        }
        g2_ppl_header h = {(uint32_t)V, (uint32_t)n_ctx, (uint32_t)stride, (uint32_t)n_chunks, (uint32_t)rows,
                           (uint32_t)n_tokens};
        if (g2_ppl_write_header(save, &h, tokens)) goto write_failed;
    }

    fprintf(stderr, "perplexity: %ld tokens, %ld chunks of %ld, scoring %d positions each\n", n_tokens, n_chunks,
            n_ctx, rows);
    g2_acc nll = {0}, nll_base = {0}, kld = {0}, same = {0};
    g2_progress prog;
    g2_progress_begin(&prog, CMD);
    if (!(chunk = malloc((size_t)n_ctx * sizeof *chunk))) goto done;
    for (long c = 0; c < n_chunks; c++) {
        const long start = stride ? c * stride : c * n_ctx;
        memcpy(chunk, tokens + start, (size_t)n_ctx * sizeof *chunk);
        chunk[0] = bos; /* as llama.cpp: every chunk is a fresh document */
        if (gemma2_context_rewind(ctx, 0, &err)) goto fail;
        /* Rows before `first` are context only: one batch, no logits kept. */
        if (first > 0 && gemma2_eval(ctx, chunk, first, NULL, &err)) goto fail;
        for (int j0 = first; j0 < n_ctx - 1; j0 += SCORE_BATCH) {
            int nb = (int)(n_ctx - 1 - j0) < SCORE_BATCH ? (int)(n_ctx - 1 - j0) : SCORE_BATCH;
            if (gemma2_eval(ctx, chunk + j0, nb, logits, &err)) goto fail;
            for (int r = 0; r < nb; r++) {
                const float *row = logits + (size_t)r * V;
                const int32_t target = chunk[j0 + r + 1];
                int am;
                double lse = log_sum_exp(row, V, &am);
                acc_add(&nll, lse - row[target]);
                if (save && g2_ppl_write_row(save, row, (uint32_t)V, q)) goto write_failed;
                if (klf) {
                    if (g2_ppl_read_row(klf, base, (uint32_t)V, q)) {
                        fprintf(stderr, "gemma2 " CMD ": %s ends early\n", kl_path);
                        goto done;
                    }
                    int am_b;
                    double lse_b = log_sum_exp(base, V, &am_b);
                    acc_add(&nll_base, lse_b - base[target]);
                    acc_add(&kld, kl_div(base, lse_b, row, lse, V));
                    acc_add(&same, am == am_b ? 1.0 : 0.0);
                }
            }
        }
        g2_progress_update(&prog, c + 1, n_chunks);
    }
    g2_progress_end(&prog);
    if (save) {
        FILE *f = save;
        save = NULL;
        if (fclose(f)) goto write_failed;
    }
    const double ppl = exp(acc_mean(&nll));
    printf("scored %ld tokens in %ld chunks of %ld (--ctx), %.1f s\n", nll.n, n_chunks, n_ctx, g2_now() - prog.start);
    printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, ppl * acc_sem(&nll));
    if (klf) {
        const double ppl_b = exp(acc_mean(&nll_base));
        printf("PPL of the saved model = %.4f +/- %.5f\n", ppl_b, ppl_b * acc_sem(&nll_base));
        printf("Mean KL divergence (saved || this) = %.6f +/- %.6f\n", acc_mean(&kld), acc_sem(&kld));
        printf("Same top-1 token: %.3f %% +/- %.3f %%\n", 100 * acc_mean(&same), 100 * acc_sem(&same));
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "gemma2 " CMD ": %s\n", err.msg);
    goto done;
write_failed:
    fprintf(stderr, "gemma2 " CMD ": writing %s failed\n", save_path);
    if (save) fclose(save);
    save = NULL;
    remove(save_path);
done:
    if (save) fclose(save);
    if (klf) fclose(klf);
    free(chunk);
    free(text);
    free(tokens);
    free(logits);
    free(base);
    free(q);
    gemma2_context_free(ctx);
    gemma2_tokenizer_free(tok);
    gemma2_model_close(m);
    return rc;
}
