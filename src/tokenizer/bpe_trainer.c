/* bpe_trainer.c - placeholder */
#include "tokenizer/vocab.h"
#include "util/error.h"
gemma2_train_options gemma2_train_default_options(void) {
    gemma2_train_options o = {8000, 0.9995, 16, NULL, 1};
    return o;
}
gemma2_status gemma2_train_bpe(const char *const *texts, const size_t *lens, size_t n_texts,
                               const gemma2_train_options *opt, uint8_t **out_model, size_t *out_size,
                               gemma2_error *err) {
    (void)texts; (void)lens; (void)n_texts; (void)opt; (void)out_model; (void)out_size;
    return g2_fail(err, GEMMA2_ERR_UNSUPPORTED, "not yet");
}
