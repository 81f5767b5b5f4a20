/* The `contrast` program: a table of commands over the host library.
 *
 * Exit status: 0 success; 1 failure, with one line "contrast: <reason>" on
 * stderr; 2 usage errors; `contrast plugins` exits 3 when it listed
 * everything but some plugin files were refused. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

typedef struct ct_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
    const char *summary;
} ct_command;

/* One row per command (cli/cmd_<name>.c); usage() lists them in this order. */
static const ct_command commands[] = {
    {"plugins", ct_cmd_plugins, "plugins [-v] [--markdown] [--no-default-path]",
     "list the plugins found on the search path (-v: parameters too; --markdown: the config "
     "reference, docs/config.md)"},
    {"check", ct_cmd_check, "check CONFIG [--set group.key=value]...",
     "validate a config, open its datasets and print what it would run"},
    {"version", ct_cmd_version, "version", "print the program, SDK and ABI versions"},
    {"train", ct_cmd_train,
     "train CONFIG [--resume [RUN_DIR] [--allow-config-change]] [--run-dir DIR] [--threads N] [--stop-after N]",
     "train an experiment into runs/<name>/ (checkpoints, metrics.jsonl); Ctrl-C checkpoints and exits 130"},
    {"eval", ct_cmd_eval, "eval CONFIG [--checkpoint FILE] [--run-dir DIR] [--threads N]",
     "run the configured evaluators on a checkpoint (or the initial model)"},
    {"report", ct_cmd_report, "report RUN_DIR [--threads N]",
     "write RUN_DIR/report.html: curves, metrics beside the baselines, preview, embedding map, health"},
    {"embed", ct_cmd_embed,
     "embed CONFIG [--checkpoint F] --split train|test --out X.npy [--labels-out L.npy] [--force] [--threads N]",
     "write encoder features as X.npy and their labels as X.labels.npy (never overwrites without --force)"},
    {"preview", ct_cmd_preview, "preview CONFIG --out grid.png [--n 8] [--epoch E]",
     "write a PNG grid of samples and their augmented views"},
    {"make-dataset", ct_cmd_make_dataset, "make-dataset moving-fmnist OUT [--videos N --frames T --size S ...]",
     "render a labelled video set (Fashion-MNIST items moving in 8 directions) with libavcodec"},
    {"new-plugin", ct_cmd_new_plugin, "new-plugin ROLE NAME [DIR]",
     "write a plugin skeleton (C file, CMakeLists.txt, README) for a role"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f,
            "usage: contrast [--allow-unsafe-plugins] <command> [arguments]\n\n"
            "commands:\n");
    for (size_t k = 0; k < N_COMMANDS; k++)
        if (strlen(commands[k].usage) > 44) /* long usage: summary on the next line */
            fprintf(f, "  %s\n  %-44s %s\n", commands[k].usage, "", commands[k].summary);
        else
            fprintf(f, "  %-44s %s\n", commands[k].usage, commands[k].summary);
    fprintf(f,
            "\nconfig options (commands taking CONFIG):\n"
            "  --set group.key=value   override a config value (repeatable)\n"
            "  --allow-unsafe-plugins  load plugins writable by group/others\n"
            "\nplugin search path: the config's plugins.path, then CONTRAST_PLUGIN_PATH\n"
            "(colon-separated), then %s; never the current directory.\n",
#ifdef CONTRAST_PLUGIN_INSTALL_DIR
            CONTRAST_PLUGIN_INSTALL_DIR
#else
            "the installed plugin directory"
#endif
    );
}

/* `contrast CMD --help`: that command's usage alone. */
static int command_help(const ct_command *c) {
    printf("usage: contrast %s\n\n  %s\n", c->usage, c->summary);
    if (strstr(c->usage, "CONFIG"))
        printf("\n  --set group.key=value   override a config value (repeatable)\n"
               "  --allow-unsafe-plugins  load plugins writable by group/others\n");
    return 0;
}

static bool wants_help(int argc, char **argv) {
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--set") || !strcmp(argv[k], "-s")) {
            k++; /* a value, whatever it looks like */
            continue;
        }
        if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) return true;
    }
    return false;
}

int main(int argc, char **argv) {
    /* Before anything else: OpenBLAS may have picked slow generic kernels
     * on this CPU; fixing that needs a re-exec (see contrast/blas.h). */
    ct_blas_reexec_if_generic(argv);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) return ct_cmd_version(1, argv);
        if (!strcmp(argv[i], "--allow-unsafe-plugins")) ct_cli_allow_unsafe = true;
        else return ct_cli_error("unknown option '%s' (see contrast --help)", argv[i]), 2;
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[i], "help")) {
        for (size_t k = 0; i + 1 < argc && k < N_COMMANDS; k++)
            if (!strcmp(argv[i + 1], commands[k].name)) return command_help(&commands[k]);
        usage(stdout);
        return 0;
    }
    for (size_t k = 0; k < N_COMMANDS; k++)
        if (!strcmp(argv[i], commands[k].name))
            return wants_help(argc - i, argv + i) ? command_help(&commands[k]) : commands[k].run(argc - i, argv + i);
    const char *near = NULL;
    int best = 3;
    for (size_t k = 0; k < N_COMMANDS; k++) {
        int d = ct_edit_distance(argv[i], commands[k].name);
        if (d < best) best = d, near = commands[k].name;
    }
    if (near) return ct_cli_error("unknown command '%s' (did you mean '%s'?)", argv[i], near), 2;
    return ct_cli_error("unknown command '%s' (see contrast --help)", argv[i]), 2;
}
