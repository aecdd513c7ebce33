/* main.c - `gemma2 <command> [options]`: dispatch to the subcommands of cli/commands.h. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "gemma2.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} k_commands[] = {
    {"info", g2_cmd_info, "print a model's config, tensors, dtypes, parameters and memory needs"},
    {"logits", g2_cmd_logits, "write the logits of a token sequence as raw float32"},
    {"bench", g2_cmd_bench, "prefill and decode speed, as llama-bench measures them"},
    {"quantize", g2_cmd_quantize, "write a model as GGUF in another weight type (q8_0, q4_0, q4_k_m, ...)"},
    {"tokenize", g2_cmd_tokenize, "text to token ids"},
    {"detokenize", g2_cmd_detokenize, "token ids to text"},
    {"tokenizer", g2_cmd_tokenizer, "tokenizer tools: `tokenizer train` learns a BPE model"},
    {"grads", g2_cmd_grads, "loss and gradient of every weight for a batch (safetensors in and out)"},
    {"train", g2_cmd_train, "train a model: AdamW, checkpoints, CSV log, loss plot"},
    {"data", g2_cmd_data, "training data: `data prepare` tokenizes text into token shards"},
    {"generate", g2_cmd_generate, "continue a prompt, streaming the text (greedy or sampled)"},
    {"chat", g2_cmd_chat, "interactive multi-turn chat in the Gemma template (works with piped stdin)"},
    {"perplexity", g2_cmd_perplexity, "perplexity of a text as llama.cpp computes it; KL divergence vs saved logits"},
    {"distill", g2_cmd_distill, "distillation: `distill cache` stores sampled teacher targets for train --distill"},
};
#define N_COMMANDS (sizeof k_commands / sizeof k_commands[0])

static void usage(FILE *f) {
    fprintf(f, "gemma2 %s - Gemma 2 in C\n\nusage: gemma2 <command> [options]   (gemma2 <command> --help)\n\n",
            GEMMA2_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-12s %s\n", k_commands[i].name, k_commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("gemma2 %s\n", GEMMA2_VERSION);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], k_commands[i].name)) return k_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "gemma2: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
