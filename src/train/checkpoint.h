/* checkpoint.h - training checkpoints.
 *
 * OUT/step-00000100/ holds config.json + model.safetensors (HF layout and names, F32, norm
 * weights as w), optimizer.safetensors (AdamW exp_avg.NAME and exp_avg_sq.NAME, F32),
 * trainer_state.json ({"step": ..., "seed": ...}) and the tokenizer file when one is given.
 * It is written as OUT/step-00000100.tmp.PID, then renamed; then OUT/latest (a one-line text
 * file naming the folder) is replaced atomically. A run killed at any moment leaves `latest`
 * pointing at a complete checkpoint. */
#ifndef G2_TRAIN_CHECKPOINT_H
#define G2_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "train/tmodel.h"

gemma2_status g2_checkpoint_save(const char *out_dir, long step, uint64_t seed, const g2_tmodel *m, const float *mom,
                                 const float *vel, const char *tokenizer_path, gemma2_error *err);

/* Removes what killed runs left (step-*.tmp.PID, step-*.old.PID of other processes) and all but
 * the newest `keep` complete step-* folders (keep 0: keep all). The one `latest` names stays. */
void g2_checkpoint_prune(const char *out_dir, int keep);

/* The folder `latest` names, as OUT/step-...; GEMMA2_ERR_IO if there is none. */
gemma2_status g2_checkpoint_latest(const char *out_dir, char *path, size_t n, gemma2_error *err);

/* Reads optimizer.safetensors and trainer_state.json of `ckpt` for model m (same shapes). */
gemma2_status g2_checkpoint_load_optim(const char *ckpt, const g2_tmodel *m, float *mom, float *vel, long *step,
                                       uint64_t *seed, gemma2_error *err);

#endif
