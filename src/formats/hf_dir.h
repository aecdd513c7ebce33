/* hf_dir.h - a Hugging Face checkpoint directory: config.json and the safetensors weights,
 * single (model.safetensors) or sharded (model.safetensors.index.json naming
 * model-0000i-of-0000n.safetensors). Other .safetensors files in the folder are not weights. */
#ifndef G2_HF_DIR_H
#define G2_HF_DIR_H

#include "formats/safetensors.h"
#include "gemma2.h"

typedef struct {
    char *dir;
    char *config_json; /* the text of config.json */
    int n_shards;
    g2_safetensors *shards;
} g2_hf_dir;

/* Is `path` a directory? */
int g2_is_dir(const char *path);

gemma2_status g2_hf_dir_open(const char *dir, g2_hf_dir *hf, gemma2_error *err);
void g2_hf_dir_close(g2_hf_dir *hf);

/* Finds a tensor in any shard; `shard_path` (optional) receives the file that holds it. */
const g2_st_tensor *g2_hf_dir_find(const g2_hf_dir *hf, const char *name, const char **shard_path);

#endif
