/* cmd_train.c - `gemma2 train`: pre-training (or continued training) of a Gemma 2 model on token
 * shards with AdamW, warm-up + cosine LR, clipping, gradient accumulation, validation, CSV log,
 * SVG loss plot and atomic HF-layout checkpoints that --resume continues bit for bit. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "model/config.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/distill_train.h"
#include "train/graph.h"
#include "train/optim.h"
#include "train/plot.h"
#include "train/tmodel.h"
#include "util/error.h"
#include "util/mapped_file.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: gemma2 train --data DIR --out DIR [model] [options]\n"
            "model (one of; default: a new model of the shape options):\n"
            "  --init DIR            start from a Hugging Face checkpoint\n"
            "  --config FILE         a new model from a config.json\n"
            "  --vocab N --hidden N --layers N --heads N --kv-heads N --head-dim N --ffn N --window N\n"
            "                        shape of a new model (defaults 256-vocab... see docs/training.md)\n"
            "  --resume              continue from --out's latest checkpoint (same options)\n"
            "data and schedule:\n"
            "  --data DIR|FILE       token shards: DIR/train.bin (+ DIR/val.bin), or one shard file\n"
            "  --steps N (100)  --batch N (8)  --seq N (256)  --accum N (1: micro-batches per step)\n"
            "  --lr X (3e-4)  --min-lr-frac X (0.1)  --warmup N (0)  --weight-decay X (0.1)\n"
            "  --beta1 X (0.9)  --beta2 X (0.95)  --eps X (1e-8)  --clip X (1.0; 0 = off)\n"
            "  --eval-every N (0: at the end)  --eval-batches N (4)  --save-every N (0: at the end)\n"
            "  --out DIR  --seed N (1)  -t, --threads N  --tokenizer FILE (copied into checkpoints)\n"
            "  --keep N (3)          complete checkpoints kept (0: all)\n"
            "  --stop-at N           stop after step N as if interrupted (tests of --resume)\n"
            "distillation (docs/distillation.md):\n"
            "  --distill CACHE       learn from a teacher's stored samples (gemma2 distill cache; same data, --seq)\n"
            "  --teacher DIR         learn from a teacher run on the fly: its whole distribution, or\n"
            "  --teacher-topk K      its top K renormalised\n"
            "  --distill-alpha X (0) weight of the one-hot next-token loss mixed in\n");
}

typedef struct {
    const char *data, *out, *init, *config, *tokenizer, *distill, *teacher;
    long steps, batch, seq, accum, warmup, eval_every, eval_batches, save_every, threads, stop_at, keep;
    long vocab, hidden, layers, heads, kv_heads, head_dim, ffn, window, teacher_topk;
    double lr, min_lr_frac, wd, beta1, beta2, eps, clip, distill_alpha;
    long seed;
    int resume;
} opts;

static int parse(int argc, char **argv, opts *o) {
    *o = (opts){.keep = 3, .steps = 100, .batch = 8, .seq = 256, .accum = 1, .eval_batches = 4, .lr = 3e-4, .min_lr_frac = 0.1,
                .wd = 0.1, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .clip = 1.0, .seed = 1};
    struct {
        const char *name;
        long *v;
        long lo, hi;
    } ints[] = {{"--steps", &o->steps, 1, 1L << 40},     {"--batch", &o->batch, 1, 1 << 16},
                {"--seq", &o->seq, 2, 1 << 20},          {"--accum", &o->accum, 1, 1 << 16},
                {"--warmup", &o->warmup, 0, 1L << 40},   {"--eval-every", &o->eval_every, 0, 1L << 40},
                {"--eval-batches", &o->eval_batches, 1, 1 << 20}, {"--save-every", &o->save_every, 0, 1L << 40},
                {"--threads", &o->threads, 1, 1024},     {"-t", &o->threads, 1, 1024},
                {"--stop-at", &o->stop_at, 1, 1L << 40}, {"--keep", &o->keep, 0, 1 << 20}, {"--vocab", &o->vocab, 1, 1 << 24},
                {"--hidden", &o->hidden, 1, 65536},      {"--layers", &o->layers, 1, 1024},
                {"--heads", &o->heads, 1, 1024},         {"--kv-heads", &o->kv_heads, 1, 1024},
                {"--head-dim", &o->head_dim, 2, 65536},  {"--ffn", &o->ffn, 1, 1 << 20},
                {"--window", &o->window, 1, 1 << 24},    {"--seed", &o->seed, 0, (1L << 53) - 1},
                {"--teacher-topk", &o->teacher_topk, 1, 1 << 24}};
    struct {
        const char *name;
        double *v;
    } fls[] = {{"--lr", &o->lr},       {"--min-lr-frac", &o->min_lr_frac}, {"--weight-decay", &o->wd},
               {"--beta1", &o->beta1}, {"--beta2", &o->beta2},             {"--eps", &o->eps},
               {"--clip", &o->clip},   {"--distill-alpha", &o->distill_alpha}};
    struct {
        const char *name;
        const char **v;
    } strs[] = {{"--data", &o->data}, {"--out", &o->out}, {"--init", &o->init}, {"--config", &o->config},
                {"--tokenizer", &o->tokenizer}, {"--distill", &o->distill}, {"--teacher", &o->teacher}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int done = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--resume")) o->resume = 1, done = 1;
        for (size_t k = 0; !done && k < sizeof ints / sizeof ints[0]; k++)
            if (!strcmp(a, ints[k].name)) {
                if (!(v = g2_cli_value(argc, argv, &i, "train"))) return 2;
                if (!g2_cli_parse_int(v, ints[k].lo, ints[k].hi, ints[k].v)) {
                    fprintf(stderr, "gemma2 train: %s must be an integer in [%ld, %ld], got '%s'\n", a, ints[k].lo,
                            ints[k].hi, v);
                    return 2;
                }
                done = 1;
            }
        for (size_t k = 0; !done && k < sizeof fls / sizeof fls[0]; k++)
            if (!strcmp(a, fls[k].name)) {
                if (!(v = g2_cli_value(argc, argv, &i, "train"))) return 2;
                if (!g2_cli_parse_float(v, fls[k].v) || !(*fls[k].v >= 0)) {
                    fprintf(stderr, "gemma2 train: %s must be a non-negative number, got '%s'\n", a, v);
                    return 2;
                }
                done = 1;
            }
        for (size_t k = 0; !done && k < sizeof strs / sizeof strs[0]; k++)
            if (!strcmp(a, strs[k].name)) {
                if (!(*strs[k].v = g2_cli_value(argc, argv, &i, "train"))) return 2;
                done = 1;
            }
        if (!done) {
            fprintf(stderr, "gemma2 train: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!o->data || !o->out) {
        fprintf(stderr, "gemma2 train: --data and --out are required\n");
        usage(stderr);
        return 2;
    }
    if (o->batch * o->seq > (1L << 24)) {
        fprintf(stderr, "gemma2 train: --batch x --seq is %ld tokens; at most %ld per micro-batch (use --accum)\n",
                o->batch * o->seq, 1L << 24);
        return 2;
    }
    if ((o->distill && o->teacher) || o->distill_alpha > 1 || (o->teacher_topk && !o->teacher)) {
        fprintf(stderr, "gemma2 train: --distill and --teacher exclude each other; --teacher-topk needs --teacher; "
                        "--distill-alpha is in [0, 1]\n");
        return 2;
    }
    if (o->init && o->config) {
        fprintf(stderr, "gemma2 train: --init and --config exclude each other\n");
        return 2;
    }
    return -1;
}

static int shape_given(const opts *o) {
    return o->vocab || o->hidden || o->layers || o->heads || o->kv_heads || o->head_dim || o->ffn || o->window;
}

/* The config of a new model from the shape options (small defaults: a model that trains in minutes). */
static gemma2_config shape_config(const opts *o, int data_vocab) {
    gemma2_config c = g2_config_hf_defaults();
    c.vocab_size = o->vocab ? (int)o->vocab : data_vocab > 0 ? data_vocab : 256;
    c.hidden_size = o->hidden ? (int)o->hidden : 256;
    c.num_layers = o->layers ? (int)o->layers : 6;
    c.num_heads = o->heads ? (int)o->heads : 4;
    c.num_kv_heads = o->kv_heads ? (int)o->kv_heads : 1;
    c.head_dim = o->head_dim ? (int)o->head_dim : 64;
    c.intermediate_size = o->ffn ? (int)o->ffn : 4 * c.hidden_size;
    c.sliding_window = o->window ? (int)o->window : 4096;
    c.query_pre_attn_scalar = (float)c.head_dim;
    c.max_position_embeddings = o->seq > 8192 ? (int)o->seq : 8192;
    return c;
}

static int same_shape(const gemma2_config *a, const gemma2_config *b) {
    return a->vocab_size == b->vocab_size && a->hidden_size == b->hidden_size && a->num_layers == b->num_layers &&
           a->num_heads == b->num_heads && a->num_kv_heads == b->num_kv_heads && a->head_dim == b->head_dim &&
           a->intermediate_size == b->intermediate_size && a->sliding_window == b->sliding_window;
}

static void shape_str(const gemma2_config *c, char *buf, size_t n) {
    snprintf(buf, n, "vocab %d, hidden %d, layers %d, heads %d/%d, head_dim %d, ffn %d, window %d", c->vocab_size,
             c->hidden_size, c->num_layers, c->num_heads, c->num_kv_heads, c->head_dim, c->intermediate_size,
             c->sliding_window);
}

static double eval_loss(const g2_tmodel *m, g2_acts *a, const g2_shard *val, long batches, int32_t *ids, int32_t *tg) {
    double sum = 0;
    long cnt = 0;
    for (long b = 0; b < batches; b++) {
        g2_shard_windows(val, b * a->B, a->B, a->T, ids, tg);
        int c;
        sum += g2_train_forward(m, a, ids, tg, &c);
        cnt += c;
    }
    return sum / (double)cnt;
}

static void fmt_time(double s, char *buf, size_t n) {
    long t = (long)(s + 0.5);
    snprintf(buf, n, "%02ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

/* Keeps the CSV lines of steps <= `upto` (a resumed run rewrites what the killed one logged after
 * its last checkpoint); creates the file with a header if missing. */
static int prepare_csv(const char *path, long upto) {
    FILE *f = fopen(path, "r");
    char *keep = NULL;
    size_t kn = 0;
    FILE *mem = open_memstream(&keep, &kn);
    fputs("step,lr,train_loss,val_loss,grad_norm,tokens_per_s,elapsed_s\n", mem);
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        long s;
        if (sscanf(line, "%ld,", &s) == 1 && s <= upto) fputs(line, mem);
    }
    if (f) fclose(f);
    fclose(mem);
    FILE *o = fopen(path, "w");
    int ok = o && fwrite(keep, 1, kn, o) == kn;
    if (o) fclose(o);
    free(keep);
    return ok;
}

int g2_cmd_train(int argc, char **argv) {
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    rc = 1;
    const int nt = o.threads > 0 ? (int)o.threads : omp_get_max_threads();
    gemma2_error err;
    char path[4096], ckpt[4096], s1[256], s2[256];
    g2_tmodel m = {0};
    g2_acts a = {0};
    g2_shard train = {0}, val = {0};
    g2_distill_src dsrc = {0};
    float *mom = NULL, *vel = NULL;
    int32_t *ids = NULL, *tg = NULL;
    FILE *csv = NULL;
    long start = 0;

    /* the data's header says which vocabulary wrote it (0 = unknown) */
    struct stat sb;
    const int data_is_dir = stat(o.data, &sb) == 0 && S_ISDIR(sb.st_mode);
    snprintf(path, sizeof path, data_is_dir ? "%s/train.bin" : "%s", o.data);
    if (g2_shard_load(path, 0, &train, &err)) goto fail;
    const int data_vocab = (int)train.vocab_size;

    gemma2_config want = {0};
    int have_want = 0;
    if (o.config) {
        FILE *f = fopen(o.config, "rb");
        char *js = NULL;
        size_t n = 0;
        if (f) {
            fseek(f, 0, SEEK_END);
            n = (size_t)ftell(f);
            fseek(f, 0, SEEK_SET);
            js = calloc(n + 1, 1);
            if (js && fread(js, 1, n, f) != n) n = 0;
            fclose(f);
        }
        if (!js || g2_config_from_json(o.config, js, &want, &err)) {
            if (!js) g2_fail(&err, GEMMA2_ERR_ARG, "%s: cannot read", o.config);
            free(js);
            goto fail;
        }
        free(js);
        have_want = 1;
    } else if (!o.init && (shape_given(&o) || !o.resume)) {
        want = shape_config(&o, data_vocab);
        if (g2_config_validate(&want, "the model options", &err)) goto fail;
        have_want = 1;
    }

    if (o.resume) {
        if (g2_checkpoint_latest(o.out, ckpt, sizeof ckpt, &err) || g2_tmodel_load_hf(ckpt, &m, &err)) goto fail;
        if (have_want && !same_shape(&want, &m.cfg)) {
            shape_str(&m.cfg, s1, sizeof s1);
            shape_str(&want, s2, sizeof s2);
            g2_fail(&err, GEMMA2_ERR_ARG, "cannot resume: %s has another shape (%s) than the one asked for (%s)",
                     ckpt, s1, s2);
            goto fail;
        }
    } else if (o.init) {
        if (g2_tmodel_load_hf(o.init, &m, &err)) goto fail;
    } else {
        /* the memory check comes before any big allocation */
        const double need = 2.0 * (double)g2_tmodel_bytes(&want) +
                            4.0 * (double)g2_acts_floats(&want, (int)o.batch, (int)o.seq, nt),
                     avail = (double)g2_mem_available();
        if (avail > 0 && need > avail) {
            snprintf(err.msg, sizeof err.msg,
                     "this model does not fit in memory: %lld parameters, batch %ld x %ld need %.2f GB (weights, "
                     "gradients, AdamW state, activations); %.2f GB are available",
                     (long long)g2_config_param_count(&want), o.batch, o.seq, need / 1e9, avail / 1e9);
            goto fail;
        }
        if (g2_tmodel_create(&want, &m, &err)) goto fail;
        g2_tmodel_init_random(&m, (uint64_t)o.seed);
    }
    const gemma2_config *c = &m.cfg;
    const double need = 2.0 * (double)g2_tmodel_bytes(c) + 4.0 * (double)g2_acts_floats(c, (int)o.batch, (int)o.seq, nt),
                 avail = (double)g2_mem_available();
    if (avail > 0 && need > avail) {
        g2_fail(&err, GEMMA2_ERR_ARG, "training this model with batch %ld x %ld needs %.2f GB; %.2f GB are available",
                 o.batch, o.seq, need / 1e9, avail / 1e9);
        goto fail;
    }
    if (data_vocab > c->vocab_size) {
        g2_fail(&err, GEMMA2_ERR_ARG, "%s was written for a vocabulary of %d; the model has %d", path, data_vocab,
                 c->vocab_size);
        goto fail;
    }
    g2_shard_free(&train);
    if (g2_shard_load(path, c->vocab_size, &train, &err)) goto fail; /* checks every id against the model */
    if (train.n_tokens < (size_t)o.seq + 2) {
        g2_fail(&err, GEMMA2_ERR_ARG, "%s: %zu tokens, fewer than one window of --seq %ld + 1", path,
                 train.n_tokens, o.seq);
        goto fail;
    }
    if (data_is_dir) {
        snprintf(path, sizeof path, "%s/val.bin", o.data);
        if (access(path, F_OK) == 0) {
            if (g2_shard_load(path, c->vocab_size, &val, &err)) goto fail;
            if (val.n_tokens < (size_t)o.seq + 2) g2_shard_free(&val);
        }
    }

    /* `data prepare` leaves the tokenizer beside the shards: checkpoints carry it */
    char tok_path[4200];
    for (int k = 0; !o.tokenizer && data_is_dir && k < 2; k++) {
        snprintf(tok_path, sizeof tok_path, "%s/%s", o.data, k ? "tokenizer.json" : "tokenizer.model");
        if (access(tok_path, R_OK) == 0) o.tokenizer = tok_path;
    }
    if (g2_acts_create(&a, c, (int)o.batch, (int)o.seq, nt, &err)) goto fail;
    if (o.distill && g2_distill_open_cache(&dsrc, o.distill, c, &train, o.tokenizer, (int)o.batch, (int)o.seq,
                                           (float)o.distill_alpha, &err))
        goto fail;
    if (o.teacher && g2_distill_open_teacher(&dsrc, o.teacher, c, (int)o.batch, (int)o.seq, nt,
                                             (int)o.teacher_topk, (float)o.distill_alpha, &err))
        goto fail;
    mom = calloc(m.n_params, sizeof(float));
    vel = calloc(m.n_params, sizeof(float));
    ids = malloc(sizeof(int32_t) * (size_t)(o.batch * o.seq));
    tg = malloc(sizeof(int32_t) * (size_t)(o.batch * o.seq));
    if (!mom || !vel || !ids || !tg) {
        g2_fail(&err, GEMMA2_ERR_ARG, "out of memory for the optimizer state (%.1f MB)", 8.0 * m.n_params / 1e6);
        goto fail;
    }
    uint64_t seed = (uint64_t)o.seed;
    if (o.resume) {
        if (g2_checkpoint_load_optim(ckpt, &m, mom, vel, &start, &seed, &err)) goto fail;
        if (start >= o.steps) {
            g2_fail(&err, GEMMA2_ERR_ARG, "%s is at step %ld; --steps %ld leaves nothing to do", ckpt, start,
                     o.steps);
            goto fail;
        }
    }
    snprintf(path, sizeof path, "%s/latest", o.out);
    if (!o.resume && access(path, F_OK) == 0) {
        g2_fail(&err, GEMMA2_ERR_ARG, "%s already holds a run (%s): pass --resume to continue it, or another --out",
                o.out, path);
        goto fail;
    }
    if (mkdir(o.out, 0755) && access(o.out, W_OK)) {
        g2_fail(&err, GEMMA2_ERR_ARG, "%s: cannot create the output folder", o.out);
        goto fail;
    }
    char csv_path[4200], svg_path[4200];
    snprintf(csv_path, sizeof csv_path, "%s/log.csv", o.out);
    snprintf(svg_path, sizeof svg_path, "%s/loss.svg", o.out);
    if (!prepare_csv(csv_path, start) || !(csv = fopen(csv_path, "a"))) {
        g2_fail(&err, GEMMA2_ERR_ARG, "%s: cannot write", csv_path);
        goto fail;
    }
    shape_str(c, s1, sizeof s1);
    fprintf(stderr, "gemma2 train: %s; %lld parameters; %s step %ld of %ld; batch %ld x %ld x %ld accum; %d threads\n",
            s1, (long long)g2_config_param_count(c), o.resume ? "resuming at" : "from", start, o.steps, o.batch, o.seq,
            o.accum, nt);

    const g2_adamw_hp hp = {o.beta1, o.beta2, o.eps, o.wd};
    const double tokens_per_step = (double)o.batch * o.seq * o.accum;
    const double t0 = omp_get_wtime();
    const int tty = isatty(2);
    for (long step = start; step < o.steps; step++) {
        const double ts = omp_get_wtime();
        memset(m.grads, 0, m.n_params * sizeof(float));
        double loss_sum = 0;
        long cnt_sum = 0;
        for (long k = 0; k < o.accum; k++) {
            /* the batch depends only on (seed, step, k): a resumed run sees the same data */
            g2_rng r;
            g2_rng_seed(&r, seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(step * o.accum + k + 1)));
            if (dsrc.mode == G2_DISTILL_CACHE) {
                if (g2_distill_cache_batch(&dsrc, &train, &r, ids, tg, &err)) goto fail;
            } else {
                g2_shard_sample(&train, &r, (int)o.batch, (int)o.seq, ids, tg);
            }
            if (dsrc.mode == G2_DISTILL_TEACHER) g2_distill_teacher_batch(&dsrc, ids, tg);
            a.soft = dsrc.mode ? &dsrc.st : NULL; /* validation below stays next-token loss */
            int cnt;
            loss_sum += g2_train_forward(&m, &a, ids, tg, &cnt);
            cnt_sum += cnt;
            g2_train_backward(&m, &a, 1.0f / (float)(cnt * o.accum));
            a.soft = NULL;
        }
        const double loss = loss_sum / (double)cnt_sum;
        const double norm = g2_clip_grad_norm(m.grads, m.n_params, (float)o.clip, nt);
        const float lr = g2_lr_schedule(step, o.steps, o.warmup, (float)o.lr, (float)o.min_lr_frac);
        g2_adamw_step(m.params, m.grads, mom, vel, m.n_params, step + 1, lr, &hp, nt);
        const long done = step + 1;
        double vloss = NAN;
        if (val.n_tokens && ((o.eval_every && done % o.eval_every == 0) || done == o.steps))
            vloss = eval_loss(&m, &a, &val, o.eval_batches, ids, tg);
        const double now = omp_get_wtime(), tps = tokens_per_step / (now - ts);
        fprintf(csv, "%ld,%.6g,%.6f,", done, lr, loss);
        if (!isnan(vloss)) fprintf(csv, "%.6f", vloss);
        fprintf(csv, ",%.6g,%.1f,%.3f\n", norm, tps, now - t0);
        fflush(csv);
        char eta[32];
        fmt_time((now - t0) / (double)(done - start) * (double)(o.steps - done), eta, sizeof eta);
        char bar[21];
        for (int i = 0; i < 20; i++) bar[i] = i < (int)(20 * done / o.steps) ? '#' : '.';
        bar[20] = 0;
        fprintf(stderr, "%sstep %ld/%ld [%s] loss %.4f", tty ? "\r" : "", done, o.steps, bar, loss);
        if (!isnan(vloss)) fprintf(stderr, " val %.4f", vloss);
        fprintf(stderr, " | %.0f tok/s | ETA %s%s", tps, eta, tty ? "  " : "\n");
        if (!isfinite(loss)) {
            g2_fail(&err, GEMMA2_ERR_ARG, "the loss is %g at step %ld: lower --lr or use --clip", loss, done);
            goto fail;
        }
        const int stop = o.stop_at && done >= o.stop_at;
        if ((o.save_every && done % o.save_every == 0) || done == o.steps || stop) {
            if (g2_checkpoint_save(o.out, done, seed, &m, mom, vel, o.tokenizer, &err)) goto fail;
            g2_checkpoint_prune(o.out, (int)o.keep);
            g2_train_plot_svg(csv_path, svg_path);
        }
        if (stop) break;
    }
    if (tty) fprintf(stderr, "\n");
    g2_train_plot_svg(csv_path, svg_path);
    fprintf(stderr, "gemma2 train: done; checkpoints in %s (latest: %s/latest), log %s, plot %s\n", o.out, o.out,
            csv_path, svg_path);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "gemma2 train: %s\n", err.msg);
    rc = 1;
done:
    if (csv) fclose(csv);
    free(mom), free(vel), free(ids), free(tg);
    g2_acts_free(&a);
    g2_distill_close(&dsrc);
    g2_shard_free(&train);
    g2_shard_free(&val);
    g2_tmodel_free(&m);
    return rc;
}
