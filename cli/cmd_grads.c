/* cmd_grads.c - `gemma2 grads`: the mean next-token cross-entropy of a batch and its gradient
 * with respect to every weight, under the Hugging Face names (F32). This is how gradients are
 * checked against other implementations (torchref). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "formats/safetensors.h"
#include "train/graph.h"
#include "train/tmodel.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: gemma2 grads -m MODEL --batch BATCH.safetensors -o OUT.safetensors [-t N]\n"
            "  -m, --model DIR   Hugging Face directory (F32/BF16/F16 weights)\n"
            "  --batch FILE      safetensors with input_ids int32 [B, T]\n"
            "  -o, --out FILE    writes loss f32 [1] (mean over B*(T-1) positions) and the gradient of\n"
            "                    every weight under its HF name (norms: d/dw of the stored w)\n"
            "  -t, --threads N   threads (default: all cores)\n");
}

int g2_cmd_grads(int argc, char **argv) {
    const char *model = NULL, *batch = NULL, *out = NULL, *v;
    long threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = g2_cli_value(argc, argv, &i, "grads"))) return 2;
        } else if (!strcmp(a, "--batch")) {
            if (!(batch = g2_cli_value(argc, argv, &i, "grads"))) return 2;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            if (!(out = g2_cli_value(argc, argv, &i, "grads"))) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = g2_cli_value(argc, argv, &i, "grads"))) return 2;
            if (!g2_cli_parse_int(v, 1, 1024, &threads)) {
                fprintf(stderr, "gemma2 grads: %s must be a positive integer, got '%s'\n", a, v);
                return 2;
            }
        } else {
            fprintf(stderr, "gemma2 grads: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model || !batch || !out) {
        fprintf(stderr, "gemma2 grads: -m MODEL, --batch FILE and -o OUT are required\n");
        usage(stderr);
        return 2;
    }
    const int nt = threads > 0 ? (int)threads : omp_get_max_threads();
    gemma2_error err;
    g2_tmodel m;
    if (g2_tmodel_load_hf(model, &m, &err)) {
        fprintf(stderr, "gemma2 grads: %s\n", err.msg);
        return 1;
    }
    g2_safetensors st;
    if (g2_safetensors_open(batch, &st, &err)) {
        fprintf(stderr, "gemma2 grads: %s\n", err.msg);
        g2_tmodel_free(&m);
        return 1;
    }
    int rc = 1;
    g2_acts a = {0};
    int32_t *targets = NULL;
    const g2_st_tensor *t = g2_safetensors_find(&st, "input_ids");
    if (!t || t->dtype != G2_DT_I32 || t->n_dims != 2 || t->shape[0] < 1 || t->shape[1] < 2 ||
        t->shape[0] * t->shape[1] > (1 << 24)) {
        fprintf(stderr, "gemma2 grads: %s: needs input_ids, int32 [B, T] with T >= 2\n", batch);
        goto done;
    }
    const int B = (int)t->shape[0], T = (int)t->shape[1];
    const int32_t *ids = t->data;
    for (int i = 0; i < B * T; i++)
        if (ids[i] < 0 || ids[i] >= m.cfg.vocab_size) {
            fprintf(stderr, "gemma2 grads: %s: input_ids[%d][%d] = %d is outside the vocabulary of %d\n", batch, i / T,
                    i % T, ids[i], m.cfg.vocab_size);
            goto done;
        }
    if (g2_acts_create(&a, &m.cfg, B, T, nt, &err)) {
        fprintf(stderr, "gemma2 grads: %s\n", err.msg);
        goto done;
    }
    targets = malloc(sizeof(int32_t) * (size_t)B * T);
    g2_next_token_targets(ids, targets, B, T);
    int cnt;
    const double sum = g2_train_forward(&m, &a, ids, targets, &cnt);
    g2_train_backward(&m, &a, 1.0f / (float)cnt);
    const float loss = (float)(sum / cnt);
    g2_st_out *o = calloc((size_t)m.n_tensors + 1, sizeof *o);
    o[0] = (g2_st_out){.name = "loss", .dtype = GEMMA2_TYPE_F32, .n_dims = 1, .shape = {1}, .data = &loss};
    for (int i = 0; i < m.n_tensors; i++) {
        const g2_tparam *p = &m.tensors[i];
        o[i + 1] = (g2_st_out){.name = p->name, .dtype = GEMMA2_TYPE_F32, .n_dims = p->n_dims,
                               .shape = {p->shape[0], p->shape[1]}, .data = m.grads + p->off};
    }
    if (g2_safetensors_write(out, o, m.n_tensors + 1, &err)) fprintf(stderr, "gemma2 grads: %s\n", err.msg);
    else {
        printf("loss %.9g over %d positions; %d gradient tensors written to %s\n", loss, cnt, m.n_tensors, out);
        rc = 0;
    }
    free(o);
done:
    free(targets);
    g2_acts_free(&a);
    g2_safetensors_close(&st);
    g2_tmodel_free(&m);
    return rc;
}
