/* checkpoint.c - atomic training checkpoints (see checkpoint.h). */
#include "train/checkpoint.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/safetensors.h"
#include "util/atomic_file.h"
#include "util/error.h"

static gemma2_status write_text(const char *path, const char *text, gemma2_error *err) {
    g2_atomic_file af;
    gemma2_status s = g2_atomic_open(path, &af, err);
    if (s) return s;
    if (fputs(text, af.fp) == EOF) {
        g2_atomic_abort(&af);
        return g2_fail(err, GEMMA2_ERR_IO, "%s: write failed", path);
    }
    return g2_atomic_commit(&af, err);
}

static gemma2_status copy_file(const char *src, const char *dst, gemma2_error *err) {
    FILE *in = fopen(src, "rb");
    if (!in) return g2_fail(err, GEMMA2_ERR_IO, "%s: cannot open: %s", src, strerror(errno));
    g2_atomic_file af;
    gemma2_status s = g2_atomic_open(dst, &af, err);
    if (s) {
        fclose(in);
        return s;
    }
    char buf[1 << 16];
    size_t k;
    int ok = 1;
    while (ok && (k = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, k, af.fp) == k;
    fclose(in);
    if (!ok) {
        g2_atomic_abort(&af);
        return g2_fail(err, GEMMA2_ERR_IO, "%s: write failed", dst);
    }
    return g2_atomic_commit(&af, err);
}

/* Removes a folder of plain files (our checkpoint folders have no subfolders). */
static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

static gemma2_status save_optim(const char *path, const g2_tmodel *m, const float *mom, const float *vel,
                                gemma2_error *err) {
    const int n = m->n_tensors;
    g2_st_out *o = calloc(2 * (size_t)n, sizeof *o);
    char (*names)[112] = calloc(2 * (size_t)n, sizeof *names);
    if (!o || !names) {
        free(o), free(names);
        return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < 2 * n; i++) {
        const g2_tparam *t = &m->tensors[i % n];
        snprintf(names[i], sizeof names[i], "%s.%s", i < n ? "exp_avg" : "exp_avg_sq", t->name);
        o[i].name = names[i], o[i].dtype = GEMMA2_TYPE_F32, o[i].n_dims = t->n_dims;
        o[i].shape[0] = t->shape[0], o[i].shape[1] = t->shape[1];
        o[i].data = (i < n ? mom : vel) + t->off;
    }
    gemma2_status s = g2_safetensors_write(path, o, 2 * n, err);
    free(o), free(names);
    return s;
}

gemma2_status g2_checkpoint_save(const char *out_dir, long step, uint64_t seed, const g2_tmodel *m, const float *mom,
                                 const float *vel, const char *tokenizer_path, gemma2_error *err) {
    if (mkdir(out_dir, 0755) && errno != EEXIST)
        return g2_fail(err, GEMMA2_ERR_IO, "%s: cannot create: %s", out_dir, strerror(errno));
    char name[64], final[4096], tmp[4200], path[4400];
    snprintf(name, sizeof name, "step-%08ld", step);
    snprintf(final, sizeof final, "%s/%s", out_dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", final, (long)getpid());
    remove_dir(tmp);
    gemma2_status s = g2_tmodel_save_hf(m, tmp, err);
    if (!s) {
        snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
        s = save_optim(path, m, mom, vel, err);
    }
    if (!s) {
        char js[256];
        snprintf(js, sizeof js, "{\"step\": %ld, \"seed\": %llu, \"n_params\": %zu}\n", step, (unsigned long long)seed,
                 m->n_params);
        snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
        s = write_text(path, js, err);
    }
    if (!s && tokenizer_path) {
        const char *base = strrchr(tokenizer_path, '/');
        snprintf(path, sizeof path, "%s/%s", tmp, base ? base + 1 : tokenizer_path);
        s = copy_file(tokenizer_path, path, err);
    }
    if (s) {
        remove_dir(tmp);
        return s;
    }
    /* replace an older folder of the same step (a resumed run saving again) */
    char old[4200];
    snprintf(old, sizeof old, "%s.old.%ld", final, (long)getpid());
    int had_old = rename(final, old) == 0;
    if (rename(tmp, final)) {
        int e = errno;
        if (had_old) rename(old, final);
        remove_dir(tmp);
        return g2_fail(err, GEMMA2_ERR_IO, "%s: cannot rename to %s: %s", tmp, final, strerror(e));
    }
    snprintf(path, sizeof path, "%s/latest", out_dir);
    char line[80];
    snprintf(line, sizeof line, "%s\n", name);
    s = write_text(path, line, err);
    if (had_old) remove_dir(old);
    return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void g2_checkpoint_prune(const char *out_dir, int keep) {
    DIR *d = opendir(out_dir);
    if (!d) return;
    char latest[4096] = "", p[4400], mine[32];
    gemma2_error err;
    if (g2_checkpoint_latest(out_dir, latest, sizeof latest, &err)) latest[0] = 0;
    snprintf(mine, sizeof mine, ".%ld", (long)getpid());
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strncmp(e->d_name, "latest.tmp.", 11) && strcmp(strrchr(e->d_name, '.'), mine)) {
            snprintf(p, sizeof p, "%s/%s", out_dir, e->d_name); /* a killed update of `latest` */
            unlink(p);
            continue;
        }
        if (strncmp(e->d_name, "step-", 5)) continue;
        snprintf(p, sizeof p, "%s/%s", out_dir, e->d_name);
        const char *tail = strrchr(e->d_name, '.');
        if (strstr(e->d_name, ".tmp.") || strstr(e->d_name, ".old.")) {
            if (!tail || strcmp(tail, mine)) remove_dir(p); /* a dead run's leftovers */
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = realloc(names, sizeof *names * (size_t)cap);
            if (!nn) break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str); /* zero-padded: name order is step order */
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/%s", out_dir, names[i]);
        if (keep > 0 && i < n - keep && strcmp(p, latest)) remove_dir(p);
        free(names[i]);
    }
    free(names);
}

gemma2_status g2_checkpoint_latest(const char *out_dir, char *path, size_t n, gemma2_error *err) {
    char p[4096], line[128] = {0};
    snprintf(p, sizeof p, "%s/latest", out_dir);
    FILE *f = fopen(p, "r");
    if (!f) return g2_fail(err, GEMMA2_ERR_IO, "%s: no checkpoint to resume from (%s)", out_dir, strerror(errno));
    int ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    if (!ok || strncmp(line, "step-", 5) || strchr(line, '/'))
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: malformed", p);
    snprintf(path, n, "%s/%s", out_dir, line);
    return GEMMA2_OK;
}

gemma2_status g2_checkpoint_load_optim(const char *ckpt, const g2_tmodel *m, float *mom, float *vel, long *step,
                                       uint64_t *seed, gemma2_error *err) {
    char p[4200];
    snprintf(p, sizeof p, "%s/trainer_state.json", ckpt);
    FILE *f = fopen(p, "rb");
    if (!f) return g2_fail(err, GEMMA2_ERR_IO, "%s: cannot open: %s", p, strerror(errno));
    char buf[1024] = {0};
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = 0;
    cJSON *j = cJSON_Parse(buf);
    const cJSON *js = j ? cJSON_GetObjectItem(j, "step") : NULL, *jd = j ? cJSON_GetObjectItem(j, "seed") : NULL;
    if (!cJSON_IsNumber(js) || !cJSON_IsNumber(jd)) {
        cJSON_Delete(j);
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: malformed", p);
    }
    *step = (long)js->valuedouble;
    *seed = (uint64_t)jd->valuedouble;
    cJSON_Delete(j);
    snprintf(p, sizeof p, "%s/optimizer.safetensors", ckpt);
    g2_safetensors st;
    gemma2_status s = g2_safetensors_open(p, &st, err);
    if (s) return s;
    for (int i = 0; !s && i < 2 * m->n_tensors; i++) {
        const g2_tparam *t = &m->tensors[i % m->n_tensors];
        char name[128];
        snprintf(name, sizeof name, "%s.%s", i < m->n_tensors ? "exp_avg" : "exp_avg_sq", t->name);
        const g2_st_tensor *x = g2_safetensors_find(&st, name);
        if (!x || x->dtype != GEMMA2_TYPE_F32 || x->nbytes != t->numel * sizeof(float))
            s = g2_fail(err, GEMMA2_ERR_MODEL, "%s: %s is missing or has the wrong shape", p, name);
        else memcpy((i < m->n_tensors ? mom : vel) + t->off, x->data, x->nbytes);
    }
    g2_safetensors_close(&st);
    return s;
}
