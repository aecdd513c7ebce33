/* cmd_tokenize.c - placeholder until the tokenizer lands (issue 3). */
#include <stdio.h>

#include "commands.h"

static int not_yet(const char *what) {
    fprintf(stderr, "gemma2 %s: not implemented yet\n", what);
    return 1;
}
int g2_cmd_tokenize(int argc, char **argv) { (void)argc; (void)argv; return not_yet("tokenize"); }
int g2_cmd_detokenize(int argc, char **argv) { (void)argc; (void)argv; return not_yet("detokenize"); }
int g2_cmd_tokenizer(int argc, char **argv) { (void)argc; (void)argv; return not_yet("tokenizer"); }
