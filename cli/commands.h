/* commands.h - the subcommands of the `gemma2` CLI; each lives in cli/cmd_<name>.c.
 * A command gets argv after the command name (argv[0] is the command name) and returns the
 * process exit status: 0 success, 1 failure (message on stderr), 2 bad usage. */
#ifndef G2_CLI_COMMANDS_H
#define G2_CLI_COMMANDS_H

int g2_cmd_info(int argc, char **argv);
int g2_cmd_logits(int argc, char **argv);
int g2_cmd_bench(int argc, char **argv);
int g2_cmd_quantize(int argc, char **argv);
int g2_cmd_tokenize(int argc, char **argv);
int g2_cmd_detokenize(int argc, char **argv);
int g2_cmd_tokenizer(int argc, char **argv); /* `gemma2 tokenizer train ...` */
int g2_cmd_grads(int argc, char **argv);
int g2_cmd_train(int argc, char **argv);
int g2_cmd_data(int argc, char **argv);
int g2_cmd_generate(int argc, char **argv);
int g2_cmd_chat(int argc, char **argv);
int g2_cmd_perplexity(int argc, char **argv);
int g2_cmd_distill(int argc, char **argv);

#endif
