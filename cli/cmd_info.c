/* cmd_info.c - `gemma2 info -m MODEL`: config, tensors, types, parameters, memory needs. */
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: gemma2 info -m MODEL [--ctx N]\n"
            "  -m, --model MODEL   Hugging Face directory or GGUF file (required)\n"
            "  --ctx N             context size for the KV-cache figure (default: the model's maximum)\n");
}

int g2_cmd_info(int argc, char **argv) {
    const char *path = NULL;
    long n_ctx = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(path = g2_cli_value(argc, argv, &i, "info"))) return 2;
        } else if (!strcmp(a, "--ctx")) {
            if (!(v = g2_cli_value(argc, argv, &i, "info"))) return 2;
            if (!g2_cli_parse_int(v, 1, 1 << 20, &n_ctx)) {
                fprintf(stderr, "gemma2 info: --ctx must be a positive integer, got '%s'\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "gemma2 info: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "gemma2 info: -m MODEL is required\n");
        usage(stderr);
        return 2;
    }
    gemma2_model *m = g2_cli_open_model("info", path, 0, GEMMA2_LOAD_MMAP);
    if (!m) return 1;
    const gemma2_config *c = gemma2_model_config(m);
    gemma2_model_stats st;
    gemma2_model_get_stats(m, &st);
    if (n_ctx == 0 || n_ctx > c->max_position_embeddings) n_ctx = c->max_position_embeddings;
    printf("model:                   %s (%s)\n", path,
           gemma2_model_format(m) == GEMMA2_FORMAT_HF ? "Hugging Face directory" : "GGUF");
    printf("vocab_size:              %d\n", c->vocab_size);
    printf("hidden_size:             %d\n", c->hidden_size);
    printf("intermediate_size:       %d\n", c->intermediate_size);
    printf("num_hidden_layers:       %d (even layers local, window %d; odd layers global)\n", c->num_layers,
           c->sliding_window);
    printf("num_attention_heads:     %d\n", c->num_heads);
    printf("num_key_value_heads:     %d\n", c->num_kv_heads);
    printf("head_dim:                %d\n", c->head_dim);
    printf("query_pre_attn_scalar:   %g\n", c->query_pre_attn_scalar);
    printf("attn_logit_softcapping:  %g\n", c->attn_logit_softcap);
    printf("final_logit_softcapping: %g\n", c->final_logit_softcap);
    printf("rms_norm_eps:            %g\n", c->rms_norm_eps);
    printf("rope_theta:              %g\n", c->rope_theta);
    printf("max_position_embeddings: %d\n", c->max_position_embeddings);
    printf("tensors:                 %d\n", st.n_tensors);
    printf("types:                  ");
    for (int t = 0; t < GEMMA2_TYPE_COUNT; t++)
        if (st.type_counts[t]) printf(" %s x%d", gemma2_type_name(t), st.type_counts[t]);
    printf("\n");
    printf("parameters:              %lld\n", (long long)st.n_params);
    printf("weight bytes:            %zu (%.2f GB)\n", st.weight_bytes, (double)st.weight_bytes / 1e9);
    printf("file bytes:              %zu\n", st.file_bytes);
    size_t kv = gemma2_kv_cache_bytes(c, (int)n_ctx);
    gemma2_config all_global = *c;
    all_global.sliding_window = (int)n_ctx;
    printf("KV cache (%ld positions): %zu bytes (%.1f MB; %.1f MB without the sliding-window ring)\n", n_ctx, kv,
           (double)kv / 1e6, (double)gemma2_kv_cache_bytes(&all_global, (int)n_ctx) / 1e6);
    printf("memory (weights mapped + KV cache): %.2f GB\n", (double)(st.weight_bytes + kv) / 1e9);
    printf("kernels on this CPU:     %s\n", gemma2_kernels_in_use());
    gemma2_model_close(m);
    return 0;
}
