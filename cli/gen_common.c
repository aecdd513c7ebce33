/* gen_common.c - see gen_common.h. */
#include "gen_common.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_util.h"
#include "progress.h"

void g2_sampling_args_init(g2_sampling_args *a) {
    a->so = gemma2_sampler_default_options();
    a->seed_given = 0;
}

void g2_sampling_usage(FILE *f) {
    gemma2_sampler_options d = gemma2_sampler_default_options();
    fprintf(f,
            "sampling (applied in this order; the filters see the temperature-1 distribution):\n"
            "  --repeat-penalty X  divide positive / multiply negative logits of recent ids by X, 1 = off (default %g)\n"
            "  --repeat-last-n N   how many recent ids the penalty looks at (default %d)\n"
            "  --temp T            temperature, 0 = greedy: argmax, ties to the lowest id (default %g)\n"
            "  --top-k K           keep the K most likely ids, 0 = all (default %d)\n"
            "  --top-p P           keep the smallest set reaching probability P, in (0,1], 1 = off (default %g)\n"
            "  --min-p P           drop ids below P x the top probability, in [0,1], 0 = off (default %g)\n"
            "  --seed S            random seed (default: from the clock, printed with the stats)\n",
            d.repeat_penalty, d.repeat_last_n, d.temperature, d.top_k, d.top_p, d.min_p);
}

int g2_sampling_arg(int argc, char **argv, int *i, const char *cmd, g2_sampling_args *a) {
    const char *o = argv[*i], *v;
    double x;
    long n;
    int is_float = !strcmp(o, "--temp") || !strcmp(o, "--top-p") || !strcmp(o, "--min-p") ||
                   !strcmp(o, "--repeat-penalty");
    int is_int = !strcmp(o, "--top-k") || !strcmp(o, "--repeat-last-n");
    int is_seed = !strcmp(o, "--seed");
    if (!is_float && !is_int && !is_seed) return 0;
    if (!(v = g2_cli_value(argc, argv, i, cmd))) return -1;
    if (is_float) {
        if (!g2_cli_parse_float(v, &x)) {
            fprintf(stderr, "gemma2 %s: %s needs a number, got '%s'\n", cmd, o, v);
            return -1;
        }
        if (!strcmp(o, "--temp")) a->so.temperature = (float)x;
        else if (!strcmp(o, "--top-p")) a->so.top_p = (float)x;
        else if (!strcmp(o, "--min-p")) a->so.min_p = (float)x;
        else a->so.repeat_penalty = (float)x;
    } else if (is_int) {
        if (!g2_cli_parse_int(v, -1000000000L, 1000000000L, &n)) {
            fprintf(stderr, "gemma2 %s: %s needs an integer, got '%s'\n", cmd, o, v);
            return -1;
        }
        if (!strcmp(o, "--top-k")) a->so.top_k = (int)n;
        else a->so.repeat_last_n = (int)n;
    } else {
        char *end;
        unsigned long long s = strtoull(v, &end, 10);
        if (!*v || *end || *v == '-') {
            fprintf(stderr, "gemma2 %s: --seed needs a non-negative integer, got '%s'\n", cmd, v);
            return -1;
        }
        a->so.seed = s;
        a->seed_given = 1;
    }
    return 1;
}

int g2_sampling_args_finish(g2_sampling_args *a, const char *cmd) {
    gemma2_error err;
    if (gemma2_sampler_check_options(&a->so, &err)) {
        fprintf(stderr, "gemma2 %s: %s\n", cmd, err.msg);
        return -1;
    }
    if (!a->seed_given) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        a->so.seed = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
        a->so.seed %= 1000000000000ULL; /* short enough to type back in */
    }
    return 0;
}

gemma2_status g2_gen_eval(g2_gen *g, const int32_t *ids, int n, int is_prompt, int accept_from, gemma2_error *err) {
    double t0 = g2_now();
    gemma2_status st = gemma2_eval(g->ctx, ids, n, NULL, err);
    if (st) return st;
    double dt = g2_now() - t0;
    if (is_prompt) g->t_prompt += dt, g->n_prompt += n;
    else g->t_decode += dt, g->n_decode += n;
    if (g->dump) {
        for (int i = 0; i < n; i++) fprintf(g->dump, i ? " %d" : "%d", ids[i]);
        fputc('\n', g->dump);
        fflush(g->dump);
    }
    for (int i = accept_from; i < n; i++) gemma2_sampler_accept(g->sampler, ids[i]);
    return GEMMA2_OK;
}

static int is_stop(const g2_gen *g, int32_t id) {
    for (int i = 0; i < g->n_stop; i++)
        if (g->stop[i] == id) return 1;
    return 0;
}

static gemma2_status emit(g2_gen *g, int32_t id, gemma2_error *err) {
    if (!g->dec) {
        fprintf(g->out, g->ids_written++ ? " %d" : "%d", id);
    } else {
        g->text.len = 0;
        gemma2_status st = gemma2_decoder_push(g->dec, id, &g->text, err);
        if (st) return st;
        if (g->text.len) fwrite(g->text.data, 1, g->text.len, g->out);
    }
    fflush(g->out);
    return GEMMA2_OK;
}

void g2_gen_flush(g2_gen *g) {
    if (!g->dec) return;
    gemma2_error err;
    g->text.len = 0;
    if (gemma2_decoder_flush(g->dec, &g->text, &err) == GEMMA2_OK && g->text.len)
        fwrite(g->text.data, 1, g->text.len, g->out);
    fflush(g->out);
}

g2_stop g2_gen_run(g2_gen *g, int max_new, int *n_gen, gemma2_error *err) {
    int n = 0;
    g->pending = -1;
    g->stop_id = -1;
    for (;;) {
        *n_gen = n;
        if (max_new >= 0 && n >= max_new) return G2_STOP_LENGTH;
        if (g->pending >= 0) {
            /* The previous id goes into the model only now that another one is wanted. */
            if (gemma2_context_pos(g->ctx) >= gemma2_context_size(g->ctx)) return G2_STOP_CTX_FULL;
            if (g2_gen_eval(g, &g->pending, 1, 0, 1, err)) return G2_STOP_ERROR;
            g->pending = -1;
        }
        const float *logits = gemma2_last_logits(g->ctx);
        if (!logits) {
            snprintf(err->msg, sizeof err->msg, "nothing evaluated yet");
            err->status = GEMMA2_ERR_ARG;
            return G2_STOP_ERROR;
        }
        double t0 = g2_now();
        int32_t id = gemma2_sampler_sample(g->sampler, logits);
        g->t_sample += g2_now() - t0, g->n_sample++;
        if (is_stop(g, id)) {
            g->stop_id = id;
            return G2_STOP_EOG;
        }
        gemma2_sampler_accept(g->sampler, id);
        if (emit(g, id, err)) return G2_STOP_ERROR;
        g->pending = id;
        n++;
    }
}

const char *g2_stop_name(g2_stop s, int32_t stop_id) {
    switch (s) {
    case G2_STOP_LENGTH: return "length";
    case G2_STOP_EOG: return stop_id == 1 ? "eos" : stop_id == 107 ? "end_of_turn" : "end of generation";
    case G2_STOP_CTX_FULL: return "context full";
    default: return "error";
    }
}
