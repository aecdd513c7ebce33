/* cmd_bench.c - `gemma2 bench`: prefill (ppN) and decode (tgN) speed measured as llama-bench
 * measures it, one line per test in the form of the oracle's llama_bench, so that scripts can
 * compare the two directly:
 *   ppN: a fresh context, N pseudo-random prompt tokens (the first one BOS) evaluated as one
 *        batch, logits of the last token only. t/s = N / time.
 *   tgN: a fresh context (after --depth D untimed tokens), N evaluations of one token each,
 *        each producing that token's logits. t/s = N / time.
 * One untimed warm-up run per test, then --reps timed ones; the median and the range.
 * --probe-bw MIB: before each decode step, a read of MIB MiB of this process's memory by the
 * same threads (bw_probe.h); tgN's time is then the steps' alone, and the line adds the probes'
 * median GB/s and the median over steps of the step's weight traffic / the probe just before. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bw_probe.h"
#include "cli_util.h"
#include "commands.h"
#include "progress.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: gemma2 bench -m MODEL [options]\n"
            "  -m, --model MODEL   Hugging Face directory or GGUF file (required)\n"
            "  -p, --prompt N      prompt tokens for the prefill test, 0 = none (default 512)\n"
            "  -n, --gen N         decode steps for the generation test, 0 = none (default 128)\n"
            "  -d, --depth D       untimed tokens before the decode test (default 0)\n"
            "  -t, --threads N     threads (default: all cores)\n"
            "  -r, --reps R        timed repetitions per test (default 3)\n"
            "  --ctx N             context size (default: prompt, or depth + gen, whichever is larger)\n"
            "  --seed S            seed of the pseudo-random token ids (default 1)\n"
            "  --no-warmup         skip the untimed warm-up run\n"
            "  --kv-type TYPE      KV cache storage: f32 (default), f16 or bf16\n"
            "  --load-mode MODE    read: copy the weights into memory on huge pages, repacked for the\n"
            "                      kernels (llama-bench --load-mode none is the closest); mmap: map the\n"
            "                      file; auto: read when it takes at most 3/4 of the available memory\n"
            "                      (default; the line '# gemma2 ... load=' says which was used)\n"
            "  --probe-bw MIB      decode test: read MIB MiB of memory before each step, and report the\n"
            "                      step's weight traffic against that bandwidth (0 = off, default; the\n"
            "                      buffer counts in peak_rss)\n");
}

static long peak_rss_bytes(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss * 1024L;
}

/* Bytes of this process on transparent huge pages (AnonHugePages of /proc/self/smaps_rollup);
 * -1 when unknown. Decode speed depends on it: 2 threads read ~60 GB/s on huge pages here,
 * ~40 on 4 KiB pages. */
static long huge_page_bytes(void) {
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024L;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* xorshift64: the same ids for the same seed, like llama_bench (first id BOS = 2). */
static void make_ids(int32_t *ids, int n, int vocab, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        ids[i] = i == 0 ? 2 : (int32_t)(s % (uint64_t)vocab);
    }
}

/* One run: returns seconds, or -1 on error (message printed). With `probe` (decode only), a
 * probe before each step: step i's seconds into step_s[i], the probe's GB/s into bw[i], and
 * the run's time is the steps' alone. */
static double run_once(const gemma2_model *m, int n_ctx, int kv_type, const int32_t *ids, int pp, int tg, int depth,
                       const g2_bw_probe *probe, double *step_s, double *bw) {
    gemma2_context_options co = gemma2_context_default_options();
    co.n_ctx = n_ctx;
    co.kv_type = kv_type;
    gemma2_context *c;
    gemma2_error err;
    if (gemma2_context_create(m, &co, &c, &err)) {
        fprintf(stderr, "gemma2 bench: %s\n", err.msg);
        return -1;
    }
    double t = -1;
    if (pp) {
        double t0 = g2_now();
        if (!gemma2_eval(c, ids, pp, NULL, &err)) t = g2_now() - t0;
    } else {
        if (depth == 0 || !gemma2_eval(c, ids, depth, NULL, &err)) {
            double t0 = g2_now(), steps = 0;
            int i = 0;
            for (; i < tg; i++) {
                if (probe) bw[i] = g2_bw_probe_read(probe);
                const double ts = g2_now();
                if (gemma2_eval(c, ids + depth + i, 1, NULL, &err)) break;
                if (probe) steps += step_s[i] = g2_now() - ts;
            }
            if (i == tg) t = probe ? steps : g2_now() - t0;
        }
    }
    if (t < 0) fprintf(stderr, "gemma2 bench: %s\n", err.msg);
    gemma2_context_free(c);
    return t;
}

static double median_of(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int run_test(const gemma2_model *m, const char *path, int n_ctx, int kv_type, const int32_t *ids, int pp, int tg,
                    int depth, int reps, int warmup, int threads, const g2_bw_probe *probe) {
    if (pp) probe = NULL;
    const size_t steps = probe ? (size_t)reps * (size_t)tg : 1;
    double *tps = calloc((size_t)reps, sizeof *tps), *ms = calloc((size_t)reps, sizeof *ms);
    double *step_s = calloc(steps, sizeof *step_s), *bw = calloc(steps, sizeof *bw);
    int rc = !tps || !ms || !step_s || !bw;
    if (!rc && warmup && run_once(m, n_ctx, kv_type, ids, pp, tg, depth, probe, step_s, bw) < 0) rc = 1;
    const int n = pp ? pp : tg;
    for (int r = 0; r < reps && !rc; r++) {
        const size_t at = probe ? (size_t)r * (size_t)tg : 0;
        double s = run_once(m, n_ctx, kv_type, ids, pp, tg, depth, probe, step_s + at, bw + at);
        if (s < 0) {
            rc = 1;
            break;
        }
        tps[r] = n / s;
        ms[r] = 1e3 * s;
    }
    if (rc) {
        free(tps), free(ms), free(step_s), free(bw);
        return 1;
    }
    char samples[1024] = "";
    for (int r = 0, k = 0; r < reps && k < (int)sizeof samples - 16; r++)
        k += snprintf(samples + k, sizeof samples - (size_t)k, r ? ",%.3f" : "%.3f", tps[r]);
    qsort(tps, (size_t)reps, sizeof *tps, cmp_double);
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    double med = tps[reps / 2], med_ms = ms[reps / 2];
    if (reps % 2 == 0) med = 0.5 * (tps[reps / 2 - 1] + tps[reps / 2]), med_ms = 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]);
    gemma2_model_stats st;
    gemma2_model_get_stats(m, &st);
    char name[64];
    if (pp)
        snprintf(name, sizeof name, "pp%d", pp);
    else if (depth)
        snprintf(name, sizeof name, "tg%d@d%d", tg, depth);
    else
        snprintf(name, sizeof name, "tg%d", tg);
    printf("%s t/s=%.3f min=%.3f max=%.3f reps=%d samples=%s ms=%.1f threads=%d kv=%s depth=%d file_bytes=%zu "
           "model_bytes=%zu n_params=%lld peak_rss=%ld",
           name, med, tps[0], tps[reps - 1], reps, samples, med_ms, threads, kv_type == GEMMA2_TYPE_F32 ? "f32" : kv_type == GEMMA2_TYPE_F16 ? "f16" : "bf16", depth, st.file_bytes, st.weight_bytes,
           (long long)st.n_params, peak_rss_bytes());
    /* decode reads every weight once per token: the achieved weight traffic (read_bytes: the
     * bytes in memory, less than model_bytes where BF16 (or F16 holding BF16 values) is packed
     * in 12 bits a weight) */
    if (!pp) printf(" read_bytes=%zu weight_GB/s=%.2f", st.read_bytes, med * (double)st.read_bytes / 1e9);
    if (probe) { /* each step's weight traffic against the probe taken just before it */
        double *ratio = malloc(steps * sizeof *ratio);
        if (ratio) {
            for (size_t i = 0; i < steps; i++) ratio[i] = bw[i] > 0 ? (double)st.read_bytes / step_s[i] / 1e9 / bw[i] : 0;
            const double r = median_of(ratio, steps), b = median_of(bw, steps);
            printf(" probe_GB/s=%.2f probe_min=%.2f probe_max=%.2f weight_per_probe=%.3f ratio_min=%.3f ratio_max=%.3f",
                   b, bw[0], bw[steps - 1], r, ratio[0], ratio[steps - 1]);
            free(ratio);
        }
    }
    printf(" model=%s\n", path);
    fflush(stdout);
    free(tps), free(ms), free(step_s), free(bw);
    return 0;
}

int g2_cmd_bench(int argc, char **argv) {
    const char *path = NULL, *v;
    long pp = 512, tg = 128, depth = 0, threads = 0, reps = 3, n_ctx = 0, seed = 1, probe_mib = 0;
    int warmup = 1;
    gemma2_load_mode load_mode = GEMMA2_LOAD_AUTO;
    int kv_type = GEMMA2_TYPE_F32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long *dst = NULL, lo = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(path = g2_cli_value(argc, argv, &i, "bench"))) return 2;
            continue;
        } else if (!strcmp(a, "--no-warmup")) {
            warmup = 0;
            continue;
        } else if (!strcmp(a, "--kv-type")) {
            if (!(v = g2_cli_value(argc, argv, &i, "bench"))) return 2;
            if (!g2_cli_parse_kv_type(v, &kv_type)) {
                fprintf(stderr, "gemma2 bench: --kv-type must be f32, f16 or bf16, got '%s'\n", v);
                return 2;
            }
            continue;
        } else if (!strcmp(a, "--load-mode")) {
            if (!g2_cli_load_mode_option("bench", argc, argv, &i, &load_mode)) return 2;
            continue;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            dst = &pp;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--gen")) {
            dst = &tg;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--depth")) {
            dst = &depth;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            dst = &threads, lo = 1;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--reps")) {
            dst = &reps, lo = 1;
        } else if (!strcmp(a, "--probe-bw")) {
            dst = &probe_mib;
        } else if (!strcmp(a, "--ctx")) {
            dst = &n_ctx, lo = 1;
        } else if (!strcmp(a, "--seed")) {
            dst = &seed;
        } else {
            fprintf(stderr, "gemma2 bench: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!(v = g2_cli_value(argc, argv, &i, "bench"))) return 2;
        if (!g2_cli_parse_int(v, lo, 1 << 20, dst)) {
            fprintf(stderr, "gemma2 bench: %s must be an integer >= %ld, got '%s'\n", a, lo, v);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "gemma2 bench: -m MODEL is required\n");
        usage(stderr);
        return 2;
    }
    gemma2_model_options mo = gemma2_model_default_options();
    mo.n_threads = (int)threads;
    mo.load_mode = load_mode;
    gemma2_model *m;
    gemma2_error err;
    double t_load = g2_now();
    if (gemma2_model_open(path, &mo, &m, &err)) {
        fprintf(stderr, "gemma2 bench: %s\n", err.msg);
        return 1;
    }
    t_load = g2_now() - t_load;
    const gemma2_config *cfg = gemma2_model_config(m);
    long need = pp > depth + tg ? pp : depth + tg;
    if (!n_ctx) n_ctx = need;
    if (n_ctx < need || n_ctx > cfg->max_position_embeddings) {
        fprintf(stderr, "gemma2 bench: the tests need %ld positions; the context has %ld (model maximum %d)\n", need,
                n_ctx, cfg->max_position_embeddings);
        gemma2_model_close(m);
        return 1;
    }
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(need ? need : 1));
    if (!ids) {
        gemma2_model_close(m);
        return 1;
    }
    make_ids(ids, (int)need, cfg->vocab_size, (uint64_t)seed);
    gemma2_model_stats st;
    gemma2_model_get_stats(m, &st);
    printf("# gemma2 %s model=%s params=%lld model_bytes=%zu file_bytes=%zu kernels=%s load=%s repacked=%d "
           "huge_page_bytes=%ld load_s=%.2f ctx=%ld kv_bytes=%zu kv_bytes_no_ring=%zu\n",
           GEMMA2_VERSION, path, (long long)st.n_params, st.weight_bytes, st.file_bytes, gemma2_kernels_in_use(),
           st.load_mode == GEMMA2_LOAD_READ ? "read" : "mmap", st.n_repacked, huge_page_bytes(), t_load, n_ctx,
           gemma2_kv_cache_bytes(cfg, (int)n_ctx),
           gemma2_kv_cache_bytes(&(gemma2_config){.num_layers = cfg->num_layers, .num_kv_heads = cfg->num_kv_heads,
                                                  .head_dim = cfg->head_dim, .sliding_window = (int)n_ctx},
                                 (int)n_ctx));
    fflush(stdout);
    int rc = 0;
    g2_bw_probe probe = {0};
    const int probe_rc = probe_mib ? g2_bw_probe_init(&probe, (size_t)probe_mib << 20, (int)threads) : 0;
    if (probe_rc) {
        fprintf(stderr, "gemma2 bench: --probe-bw %ld: %s\n", probe_mib,
                probe_rc == -2 ? "more than half of the available memory" : "out of memory");
        rc = 1;
    }
    if (pp && !rc) rc |= run_test(m, path, (int)n_ctx, kv_type, ids, (int)pp, 0, 0, (int)reps, warmup, (int)threads, NULL);
    if (tg && !rc)
        rc |= run_test(m, path, (int)n_ctx, kv_type, ids, 0, (int)tg, (int)depth, (int)reps, warmup, (int)threads,
                       probe_mib ? &probe : NULL);
    g2_bw_probe_free(&probe);
    free(ids);
    gemma2_model_close(m);
    return rc;
}
