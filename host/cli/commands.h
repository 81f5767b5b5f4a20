/* The `contrast` commands and the command-line pieces they share.
 *
 * Each command is `int ct_cmd_<name>(int argc, char **argv)` with argv[0]
 * the command name; it returns the process exit status (0 success, 1
 * failure with a one-line "contrast: ..." reason on stderr, 2 usage). Each
 * lives in cli/cmd_<name>.c; the table in main.c lists them. */
#ifndef CONTRAST_HOST_COMMANDS_H
#define CONTRAST_HOST_COMMANDS_H

#include <stdbool.h>

#include "config/experiment.h"

int ct_cmd_plugins(int argc, char **argv);    /* cmd_plugins.c */
int ct_cmd_check(int argc, char **argv);      /* cmd_check.c */
int ct_cmd_version(int argc, char **argv);    /* cmd_version.c */
int ct_cmd_train(int argc, char **argv);      /* cmd_train.c */
int ct_cmd_eval(int argc, char **argv);       /* cmd_eval.c */
int ct_cmd_embed(int argc, char **argv);      /* cmd_embed.c */
int ct_cmd_report(int argc, char **argv);     /* cmd_report.c */
int ct_cmd_preview(int argc, char **argv);    /* cmd_preview.c */
int ct_cmd_new_plugin(int argc, char **argv); /* cmd_new_plugin.c: plugin skeletons */
int ct_cmd_make_dataset(int argc, char **argv); /* cmd_make_dataset.c: moving Fashion-MNIST videos */

/* ---- shared option handling (cli.c) ----------------------------------------- */

#define CT_CLI_MAX_SETS 128

/* The options every config-taking command accepts:
 *   --set group.key=value (or --set=group.key=value), repeatable
 *   --allow-unsafe-plugins */
typedef struct ct_cli_config {
    const char *config; /* the CONFIG argument (NULL until seen) */
    const char *sets[CT_CLI_MAX_SETS];
    ct_experiment_opts opts; /* opts.sets points into sets */
} ct_cli_config;

/* Set by the global `contrast --allow-unsafe-plugins <command>` form. */
extern bool ct_cli_allow_unsafe;

/* Zero c and apply the global flags. */
void ct_cli_config_init(ct_cli_config *c);

/* If argv[*i] is one of the shared options, consume it (and its value),
 * advance *i past it and return 1; return 0 when it is not one; -1 after
 * printing the reason when it is malformed. */
int ct_cli_common_option(ct_cli_config *c, int argc, char **argv, int *i);

/* Parse "CONFIG [shared options]...": 0 when fine, else the exit status
 * after printing a one-line reason (usage names the command's syntax). */
int ct_cli_parse_config_args(ct_cli_config *c, int argc, char **argv, const char *usage);

/* Print "contrast: <message>\n" to stderr and return 1. */
int ct_cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* ct_experiment_load with a "contrast: <reason>" line on failure; returns
 * 0 or the exit status 1. */
int ct_cli_load(ct_experiment *ex, const ct_cli_config *c);

#endif
