/* model_tokenizer.c - see model_tokenizer.h. */
#include "model_tokenizer.h"

#include <stdio.h>
#include <sys/stat.h>

gemma2_tokenizer *g2_cli_load_tokenizer(const char *cmd, const gemma2_model *m, const char *model_path,
                                        const char *tokenizer_path) {
    const char *path = tokenizer_path ? tokenizer_path : model_path;
    gemma2_tokenizer *t;
    gemma2_error err;
    if (gemma2_tokenizer_load(path, &t, &err)) {
        fprintf(stderr, "gemma2 %s: %s\n", cmd, err.msg);
        if (!tokenizer_path)
            fprintf(stderr, "gemma2 %s: the model has no usable tokenizer; name one with -t FILE "
                            "(tokenizer.model, tokenizer.json or a GGUF file)\n", cmd);
        return NULL;
    }
    /* A tokenizer with more ids than the model's embedding would let a prompt index past it. */
    int tv = gemma2_tokenizer_vocab_size(t), mv = gemma2_model_config(m)->vocab_size;
    if (tv > mv) {
        fprintf(stderr, "gemma2 %s: the tokenizer %s has %d pieces but the model's vocabulary only %d: "
                        "they do not belong together\n", cmd, path, tv, mv);
        gemma2_tokenizer_free(t);
        return NULL;
    }
    return t;
}

int g2_cli_stop_ids(const gemma2_tokenizer *t, int vocab_size, int32_t out[2]) {
    int32_t eos = t ? gemma2_tokenizer_eos_id(t) : 1;
    int32_t eot = t ? gemma2_tokenizer_end_of_turn_id(t) : 107;
    int n = 0;
    if (eos >= 0 && eos < vocab_size) out[n++] = eos;
    if (eot >= 0 && eot < vocab_size && eot != eos) out[n++] = eot;
    return n;
}
