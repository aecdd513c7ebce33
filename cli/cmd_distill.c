/* cmd_distill.c - `gemma2 distill cache`: run a teacher once over the training tokens and store,
 * for every position, K ids sampled from its distribution (src/train/distill_cache.h), which
 * `gemma2 train --distill CACHE` then learns from; `gemma2 distill info CACHE` describes one. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "progress.h"
#include "train/data.h"
#include "train/distill.h"
#include "train/distill_cache.h"
#include "util/rng.h"

#define MAX_KS 8

static void usage(FILE *f) {
    fprintf(f,
            "usage: gemma2 distill cache -m TEACHER --data DIR|FILE --samples K[,K...] --out CACHE [options]\n"
            "       gemma2 distill info CACHE\n"
            "cache: the teacher reads train.bin in consecutive windows of --seq tokens; for every position\n"
            "  K ids are drawn (with replacement) from softmax(logits / T) and stored deduplicated with counts.\n"
            "  -m, --model PATH      the teacher (HF directory or GGUF)\n"
            "  --data DIR|FILE       token shards: DIR/train.bin, or one shard file\n"
            "  --samples K[,K...]    draws per position (1..65536); several K: one teacher pass, one cache each,\n"
            "                        and --out must contain {K}\n"
            "  --out CACHE           output file (written as CACHE.partial; a rerun continues it)\n"
            "  --seq N (256)         window length: gemma2 train --distill needs the same --seq\n"
            "  --temperature T (1)   --seed S (1)   -t, --threads N\n"
            "  --stride S (1)        store only every S-th window (a cheaper pass when students see less data)\n"
            "  --tokenizer FILE      the tokenizer whose hash goes into the header (default: the one\n"
            "                        beside the shards, as gemma2 data prepare leaves it)\n");
}

static int info(const char *path) {
    g2_dcache c;
    gemma2_error err;
    if (g2_dcache_open(path, &c, &err)) {
        fprintf(stderr, "gemma2 distill info: %s\n", err.msg);
        return 1;
    }
    const g2_dcache_header *h = &c.h;
    const uint64_t body = c.off[h->n_windows] - c.off[0], pos = h->n_windows * h->seq;
    printf("cache %s\n  vocab %u, K %u, temperature %g, seed %llu, windows %llu x %u tokens (every %u. of the data)\n",
           path, h->vocab, h->K, h->temperature, (unsigned long long)h->seed, (unsigned long long)h->n_windows, h->seq,
           h->stride);
    printf("  data: %llu tokens, hash %016llx; tokenizer hash %016llx\n", (unsigned long long)h->n_tokens,
           (unsigned long long)h->data_hash, (unsigned long long)h->tok_hash);
    printf("  %llu positions, %llu body bytes: %.2f bytes per position (%u-byte ids, %u-byte counts)\n",
           (unsigned long long)pos, (unsigned long long)body, pos ? (double)body / (double)pos : 0.0, h->id_bytes,
           h->cnt_bytes);
    g2_dcache_close(&c);
    return 0;
}

static int parse_ks(const char *s, int *ks) {
    int n = 0;
    char *dup = strdup(s), *save = NULL;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long k;
        if (n == MAX_KS || !g2_cli_parse_int(t, 1, 65536, &k)) {
            free(dup);
            return 0;
        }
        ks[n++] = (int)k;
    }
    free(dup);
    return n;
}

/* CACHE with {K} replaced by k. */
static void out_name(const char *pat, int k, char *buf, size_t n) {
    const char *p = strstr(pat, "{K}");
    if (!p)
        snprintf(buf, n, "%s", pat);
    else
        snprintf(buf, n, "%.*s%d%s", (int)(p - pat), pat, k, p + 3);
}

static int cache(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *samples = NULL, *out = NULL, *tokenizer = NULL, *v;
    long seq = 256, seed = 1, threads = 0, stride = 1;
    double temp = 1.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        const char **sv = !strcmp(a, "-m") || !strcmp(a, "--model") ? &model
                          : !strcmp(a, "--data")                     ? &data
                          : !strcmp(a, "--samples")                  ? &samples
                          : !strcmp(a, "--out")                      ? &out
                          : !strcmp(a, "--tokenizer")                ? &tokenizer
                                                                     : NULL;
        long *iv = !strcmp(a, "--seq")                               ? &seq
                   : !strcmp(a, "--seed")                            ? &seed
                   : !strcmp(a, "--stride")                          ? &stride
                   : !strcmp(a, "-t") || !strcmp(a, "--threads")     ? &threads
                                                                     : NULL;
        if (!sv && !iv && strcmp(a, "--temperature")) {
            fprintf(stderr, "gemma2 distill cache: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!(v = g2_cli_value(argc, argv, &i, "distill cache"))) return 2;
        if (sv) *sv = v;
        if (iv && !g2_cli_parse_int(v, iv == &seq || iv == &stride ? (iv == &seq ? 2 : 1) : 0,
                                    iv == &seq || iv == &stride ? 1 << 20 : (1L << 53) - 1, iv)) {
            fprintf(stderr, "gemma2 distill cache: %s wants a non-negative integer, got '%s'\n", a, v);
            return 2;
        }
        if (!sv && !iv && (!g2_cli_parse_float(v, &temp) || !(temp > 0))) {
            fprintf(stderr, "gemma2 distill cache: --temperature must be > 0, got '%s'\n", v);
            return 2;
        }
    }
    int ks[MAX_KS], nk = samples ? parse_ks(samples, ks) : 0;
    if (!model || !data || !out || !nk) {
        fprintf(stderr, "gemma2 distill cache: -m, --data, --out and --samples (integers 1..65536, at most %d) are "
                        "required\n", MAX_KS);
        usage(stderr);
        return 2;
    }
    if (nk > 1 && !strstr(out, "{K}")) {
        fprintf(stderr, "gemma2 distill cache: with several --samples, --out must contain {K}\n");
        return 2;
    }

    int rc = 1;
    gemma2_error err;
    g2_shard shard = {0};
    gemma2_model *m = NULL;
    gemma2_context *ctx = NULL;
    g2_dcache_writer w[MAX_KS];
    memset(w, 0, sizeof w);
    float *logits = NULL;
    double *cdf = NULL, *u = NULL;
    int32_t *ids = NULL;
    uint32_t *counts = NULL;
    int *npos = NULL;
    char path[4096], tokp[4200];

    struct stat sb;
    const int is_dir = stat(data, &sb) == 0 && S_ISDIR(sb.st_mode);
    snprintf(path, sizeof path, is_dir ? "%s/train.bin" : "%s", data);
    for (int k = 0; !tokenizer && is_dir && k < 2; k++) {
        snprintf(tokp, sizeof tokp, "%s/%s", data, k ? "tokenizer.json" : "tokenizer.model");
        if (access(tokp, R_OK) == 0) tokenizer = tokp;
    }
    if (!(m = g2_cli_open_model("distill cache", model, (int)threads, GEMMA2_LOAD_AUTO))) goto done;
    const gemma2_config *cfg = gemma2_model_config(m);
    const int V = cfg->vocab_size, T = (int)seq;
    if (g2_shard_load(path, V, &shard, &err)) goto fail;
    if (shard.n_tokens < (size_t)T + 1) {
        snprintf(err.msg, sizeof err.msg, "%.400s: %zu tokens, fewer than one window of --seq %d + 1", path,
                 shard.n_tokens, T);
        goto fail;
    }
    gemma2_context_options co = gemma2_context_default_options();
    co.n_ctx = T;
    if (gemma2_context_create(m, &co, &ctx, &err)) goto fail;

    const uint64_t dhash = g2_dcache_data_hash(shard.tokens, shard.n_tokens), thash = g2_dcache_file_hash(tokenizer);
    int kmax = 0;
    uint64_t start = UINT64_MAX;
    for (int q = 0; q < nk; q++) {
        g2_dcache_header h;
        g2_dcache_header_init(&h, (uint32_t)V, (uint32_t)ks[q], (uint32_t)T, (float)temp, (uint64_t)seed, thash,
                              dhash, shard.n_tokens, (uint32_t)stride);
        out_name(out, ks[q], path, sizeof path);
        if (access(path, F_OK) == 0) {
            snprintf(err.msg, sizeof err.msg, "%.400s exists (remove it to make it again)", path);
            goto fail;
        }
        if (g2_dcache_writer_open(path, &h, &w[q], &err)) goto fail;
        if (w[q].done < start) start = w[q].done;
        if (ks[q] > kmax) kmax = ks[q];
    }
    /* caches written together restart together, at the window the least advanced one reached */
    for (int q = 0; q < nk; q++)
        if (g2_dcache_writer_rewind(&w[q], start, &err)) goto fail;
    const uint64_t nw = w[0].h.n_windows;
    if (start > 0)
        fprintf(stderr, "gemma2 distill cache: continuing the partial cache%s at window %llu of %llu\n",
                nk > 1 ? "s" : "", (unsigned long long)start, (unsigned long long)nw);

    const int nmax = kmax < V ? kmax : V;
    const int nth = threads > 0 ? (int)threads : omp_get_max_threads();
    logits = malloc(sizeof(float) * (size_t)T * V);
    cdf = malloc(sizeof(double) * (size_t)V * nth);
    u = malloc(sizeof(double) * (size_t)kmax * nth);
    ids = malloc(sizeof(int32_t) * (size_t)nk * T * nmax);
    counts = malloc(sizeof(uint32_t) * (size_t)nk * T * nmax);
    npos = malloc(sizeof(int) * (size_t)nk * T);
    if (!logits || !cdf || !u || !ids || !counts || !npos) {
        snprintf(err.msg, sizeof err.msg, "out of memory");
        goto fail;
    }
    g2_progress pr;
    g2_progress_begin(&pr, "teacher");
    const double t0 = g2_now();
    for (uint64_t j = start; j < nw; j++) {
        const uint64_t dj = j * (uint64_t)stride; /* the data window */
        if (gemma2_context_rewind(ctx, 0, &err) || gemma2_eval(ctx, shard.tokens + dj * T, T, logits, &err)) goto fail;
        /* positions in parallel (each has its own random stream, g2_distill_rng), one softmax
         * per position shared by every K; then each cache's window is packed and appended */
#pragma omp parallel num_threads(nth)
        {
            const int me = omp_get_thread_num();
            double *cd = cdf + (size_t)me * V, *uu = u + (size_t)me * kmax;
#pragma omp for schedule(static)
            for (int t = 0; t < T; t++) {
                const double total = g2_distill_cdf(logits + (size_t)t * V, V, temp, cd);
                for (int q = 0; q < nk; q++) {
                    g2_rng r;
                    g2_distill_rng(&r, (uint64_t)seed, ks[q], dj * (uint64_t)T + (uint64_t)t);
                    const size_t at = ((size_t)q * T + t) * nmax;
                    npos[q * T + t] = g2_distill_draw(cd, V, total, ks[q], &r, uu, ids + at, counts + at);
                }
            }
        }
        for (int q = 0; q < nk; q++) {
            int32_t *qi = ids + (size_t)q * T * nmax;
            uint32_t *qc = counts + (size_t)q * T * nmax;
            size_t e = 0;
            for (int t = 0; t < T; t++) {
                memmove(qi + e, qi + (size_t)t * nmax, sizeof *qi * (size_t)npos[q * T + t]);
                memmove(qc + e, qc + (size_t)t * nmax, sizeof *qc * (size_t)npos[q * T + t]);
                e += (size_t)npos[q * T + t];
            }
            if (g2_dcache_writer_add(&w[q], npos + q * T, qi, qc, &err)) goto fail;
        }
        g2_progress_update(&pr, (long)(j + 1 - start), (long)(nw - start));
    }
    g2_progress_end(&pr);
    for (int q = 0; q < nk; q++) {
        if (g2_dcache_writer_finish(&w[q], &err)) goto fail;
        const uint64_t body = w[q].off[nw] - w[q].off[0];
        fprintf(stderr, "gemma2 distill cache: wrote %s: K %d, %llu windows x %d, %.2f bytes per position\n",
                w[q].path, ks[q], (unsigned long long)nw, T, (double)body / (double)(nw * (uint64_t)T));
    }
    const double el = g2_now() - t0;
    fprintf(stderr, "gemma2 distill cache: teacher %.0f tok/s (%.1f s)\n",
            el > 0 ? (double)(nw - start) * T / el : 0.0, el);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "gemma2 distill cache: %s\n", err.msg);
done:
    for (int q = 0; q < nk; q++) g2_dcache_writer_close(&w[q]);
    free(logits), free(cdf), free(u), free(ids), free(counts), free(npos);
    gemma2_context_free(ctx);
    gemma2_model_close(m);
    g2_shard_free(&shard);
    return rc;
}

int g2_cmd_distill(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "cache")) return cache(argc - 1, argv + 1);
    if (argc == 3 && !strcmp(argv[1], "info")) return info(argv[2]);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
