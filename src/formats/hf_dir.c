/* hf_dir.c - opening a Hugging Face checkpoint directory. */
#include "formats/hf_dir.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"

int g2_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* A shard name from the index must be a plain file name in the same folder. */
static int safe_name(const char *s) {
    return s[0] && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..") && strlen(s) < 256;
}

static gemma2_status open_shard(g2_hf_dir *hf, const char *name, gemma2_error *err) {
    for (int i = 0; i < hf->n_shards; i++) {
        const char *p = strrchr(hf->shards[i].file.path, '/');
        if (p && !strcmp(p + 1, name)) return GEMMA2_OK; /* already open */
    }
    g2_safetensors *ns = realloc(hf->shards, (size_t)(hf->n_shards + 1) * sizeof *ns);
    if (!ns) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    hf->shards = ns;
    char *path = join(hf->dir, name);
    if (!path) return g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
    gemma2_status s = g2_safetensors_open(path, &hf->shards[hf->n_shards], err);
    free(path);
    if (!s) hf->n_shards++;
    return s;
}

static gemma2_status open_index(g2_hf_dir *hf, const char *index_path, gemma2_error *err) {
    char *text;
    gemma2_status s = g2_read_file(index_path, &text, NULL, err);
    if (s) return s;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return g2_fail(err, GEMMA2_ERR_FORMAT, "%s: not JSON with a \"weight_map\" object", index_path);
    }
    for (const cJSON *e = wm->child; e && !s; e = e->next) {
        if (!cJSON_IsString(e) || !safe_name(e->valuestring))
            s = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: weight_map entry '%s' is not a file name in the same folder",
                        index_path, e->string);
        else
            s = open_shard(hf, e->valuestring, err);
    }
    if (!s && hf->n_shards == 0) s = g2_fail(err, GEMMA2_ERR_FORMAT, "%s: weight_map is empty", index_path);
    cJSON_Delete(root);
    return s;
}

gemma2_status g2_hf_dir_open(const char *dir, g2_hf_dir *hf, gemma2_error *err) {
    memset(hf, 0, sizeof *hf);
    hf->dir = strdup(dir);
    char *cfg = join(dir, "config.json"), *index = join(dir, "model.safetensors.index.json"),
         *single = join(dir, "model.safetensors");
    gemma2_status s = GEMMA2_OK;
    if (!hf->dir || !cfg || !index || !single) {
        s = g2_fail(err, GEMMA2_ERR_NOMEM, "out of memory");
        goto done;
    }
    s = g2_read_file(cfg, &hf->config_json, NULL, err);
    if (s) goto done;
    if (access(index, F_OK) == 0)
        s = open_index(hf, index, err);
    else if (access(single, F_OK) == 0)
        s = open_shard(hf, "model.safetensors", err);
    else
        s = g2_fail(err, GEMMA2_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json", dir);
done:
    free(cfg);
    free(index);
    free(single);
    if (s) g2_hf_dir_close(hf);
    return s;
}

void g2_hf_dir_close(g2_hf_dir *hf) {
    if (!hf) return;
    for (int i = 0; i < hf->n_shards; i++) g2_safetensors_close(&hf->shards[i]);
    free(hf->shards);
    free(hf->config_json);
    free(hf->dir);
    memset(hf, 0, sizeof *hf);
}

const g2_st_tensor *g2_hf_dir_find(const g2_hf_dir *hf, const char *name, const char **shard_path) {
    for (int i = 0; i < hf->n_shards; i++) {
        const g2_st_tensor *t = g2_safetensors_find(&hf->shards[i], name);
        if (t) {
            if (shard_path) *shard_path = hf->shards[i].file.path;
            return t;
        }
    }
    return NULL;
}
