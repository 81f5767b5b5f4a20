/* The `contrast` program: a table of commands over the host library.
 *
 * Exit status: 0 success; 1 failure, with one line "contrast: <reason>" on
 * stderr; 2 usage errors; `contrast plugins` exits 3 when it listed
 * everything but some plugin files were refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/config_doc.h"

typedef struct ct_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
    const char *summary;
} ct_command;

/* Only commands whose implementation exists are listed; each part of the
 * host adds its row here (train/eval/embed: training; preview: data). */
static const ct_command commands[] = {
    {"plugins", ct_cmd_plugins, "plugins [-v] [--markdown] [--no-default-path]",
     "list the plugins found on the search path (-v: parameters too; --markdown: the config "
     "reference, docs/config.md)"},
    {"check", ct_cmd_check, "check CONFIG [--set group.key=value]...",
     "validate a config, open its datasets and print what it would run"},
    {"version", ct_cmd_version, "version", "print the program, SDK and ABI versions"},
    {"train", ct_cmd_train, "train CONFIG [--resume [RUN_DIR]] [--stop-after N]",
     "train an experiment into runs/<name>/ (checkpoints, metrics.jsonl)"},
    {"eval", ct_cmd_eval, "eval CONFIG [--checkpoint FILE]",
     "run the configured evaluators on a checkpoint (or the initial model)"},
    {"embed", ct_cmd_embed, "embed CONFIG --checkpoint F --split S --out X.npy",
     "write encoder features (and labels.npy beside them) as NumPy files"},
    {"preview", ct_cmd_preview, "preview CONFIG --out grid.png [--n 8] [--epoch E]",
     "write a PNG grid of samples and their augmented views"},
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

/* ---- version ------------------------------------------------------------------ */

int ct_cmd_version(int argc, char **argv) {
    (void)argv;
    if (argc > 1) return ct_cli_error("version takes no arguments"), 2;
    unsigned v = ct_version();
    printf("contrast %s\nplugin ABI %d.%d (libcontrast %s, ABI %u.%u), build tag %s\n",
           CT_VERSION_STRING, CT_ABI_MAJOR, CT_ABI_MINOR, ct_version_string(), v >> 16, v & 0xffffu,
           CT_BUILD_TAG);
    return 0;
}

/* ---- plugins ------------------------------------------------------------------- */

static void roles_text(uint32_t roles, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t bit = 1; bit <= CT_ROLE_EVALUATOR; bit <<= 1) {
        if (!(roles & bit)) continue;
        int w = snprintf(buf + used, n - used, "%s%s", used ? "," : "", ct_role_name((ct_role)bit));
        if (w > 0 && (size_t)w < n - used) used += (size_t)w;
    }
}

static const char *entry_description(const ct_registry_entry *e) {
    const char *d = NULL;
    switch (e->role) {
    case CT_ROLE_SOURCE: d = e->ops.source->description; break;
    case CT_ROLE_PRETEXT: d = e->ops.pretext->description; break;
    case CT_ROLE_ENCODER: d = e->ops.encoder->description; break;
    case CT_ROLE_ARCHITECTURE: d = e->ops.architecture->description; break;
    case CT_ROLE_EVALUATOR: d = e->ops.evaluator->description; break;
    }
    return d ? d : "";
}

static void range_text(const ct_param_spec *p, char *buf, size_t n) {
    buf[0] = '\0';
    if (p->choices) snprintf(buf, n, "%s", p->choices);
    else if (p->type == CT_PT_BOOL || p->type == CT_PT_STRING || p->type == CT_PT_STRING_LIST) return;
    else if (p->min != -INFINITY || p->max != INFINITY) {
        char lo[32] = "-inf", hi[32] = "inf";
        if (p->min != -INFINITY) snprintf(lo, sizeof lo, "%g", p->min);
        if (p->max != INFINITY) snprintf(hi, sizeof hi, "%g", p->max);
        snprintf(buf, n, "[%s, %s]", lo, hi);
    }
}

static void print_params(const ct_param_spec *spec) {
    if (!spec || !spec->name) {
        printf("      (no parameters)\n");
        return;
    }
    for (const ct_param_spec *p = spec; p->name; p++) {
        char range[160];
        range_text(p, range, sizeof range);
        printf("      %-18s %-12s %-14s %-18s %s\n", p->name, ct_ptype_name(p->type),
               p->def ? p->def : "required", range, p->doc ? p->doc : "");
    }
}

static void print_entries(const ct_plugin_set *set, const ct_plugin_record *rec, bool verbose) {
    for (size_t k = 0; k < ct_registry_count(set->reg); k++) {
        const ct_registry_entry *e = ct_registry_at(set->reg, k);
        if (strcmp(e->file, rec->path) != 0) continue;
        printf("    %-12s %-22s %s\n", ct_role_name(e->role), e->name, entry_description(e));
        if (verbose) print_params(ct_registry_entry_params(e));
    }
}

int ct_cmd_plugins(int argc, char **argv) {
    bool verbose = false, markdown = false, no_default = false;
    ct_cli_config c;
    ct_cli_config_init(&c);
    for (int i = 1; i < argc;) {
        int r = ct_cli_common_option(&c, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) verbose = true;
        else if (!strcmp(argv[i], "--markdown")) markdown = true;
        /* Only CONTRAST_PLUGIN_PATH: what docs/config.md is generated from. */
        else if (!strcmp(argv[i], "--no-default-path")) no_default = true;
        else return ct_cli_error("plugins: unexpected argument '%s' (usage: plugins [-v] [--markdown] "
                                 "[--no-default-path])", argv[i]), 2;
        i++;
    }
    ct_loader_opts lo = {0};
    lo.allow_unsafe = c.opts.allow_unsafe_plugins;
    lo.no_default_dirs = no_default;
    ct_plugin_set *set = NULL;
    ct_error err = CT_ERROR_INIT;
    if (ct_plugins_load(&lo, &set, &err)) return ct_cli_error("%s", err.msg);
    if (markdown) ct_config_doc_write(stdout, set);
    else {
        printf("search path:%s\n", set->n_dirs ? "" : " (empty: set CONTRAST_PLUGIN_PATH)");
        for (int k = 0; k < set->n_dirs; k++) printf("  %s\n", set->dirs[k]);
        printf("plugins:\n");
    }
    for (int k = 0; !markdown && k < set->n; k++) {
        const ct_plugin_record *rec = set->items[k];
        if (!rec->loaded) continue;
        char roles[96];
        roles_text(rec->roles, roles, sizeof roles);
        printf("  %s %s [%s] %s\n    file: %s\n", rec->name, rec->version, roles,
               rec->description, rec->path);
        print_entries(set, rec, verbose);
    }
    int refused = ct_plugins_refused(set);
    if (refused && !markdown) {
        printf("refused:\n");
        for (int k = 0; k < set->n; k++)
            if (!set->items[k]->loaded)
                printf("  %s: %s\n", set->items[k]->path, set->items[k]->reason);
    }
    ct_plugins_free(set);
    if (refused) {
        fflush(stdout); /* the listing first, then the summary, even on one pipe */
        fprintf(stderr, "contrast: %d plugin file%s refused (reasons listed above)\n", refused,
                refused == 1 ? " was" : "s were");
        return 3;
    }
    return 0;
}

/* ---- check --------------------------------------------------------------------- */

static void print_used(const ct_experiment *ex, ct_role role, const char *name, const char *where) {
    const ct_registry_entry *e = ct_plugins_find(ex->plugins, role, name);
    const ct_plugin_record *rec = NULL;
    for (int k = 0; e && k < ex->plugins->n; k++)
        if (!strcmp(ex->plugins->items[k]->path, e->file)) rec = ex->plugins->items[k];
    printf("  %-22s %-12s %-20s %s %s (%s)\n", where, ct_role_name(role), name,
           rec ? rec->name : "?", rec ? rec->version : "", e ? e->file : "?");
}

static void print_chain_used(const ct_experiment *ex, const ct_chain *c, const char *where) {
    for (int k = 0; k < c->n; k++) {
        char w[96];
        snprintf(w, sizeof w, "%s[%d]", where, k);
        print_used(ex, CT_ROLE_PRETEXT, c->t[k].ops->name, w);
    }
}

int ct_cmd_check(int argc, char **argv) {
    ct_cli_config c;
    ct_cli_config_init(&c);
    int rc = ct_cli_parse_config_args(&c, argc, argv, "check CONFIG [--set group.key=value]...");
    if (rc) return rc;
    ct_experiment ex;
    if ((rc = ct_cli_load(&ex, &c))) return rc;
    printf("config: %s (name %s, seed %llu)\n", ex.path, ex.name, (unsigned long long)ex.seed);
    printf("datasets:\n");
    for (int k = 0; k < ex.n_data; k++) {
        const ct_source_info *in = &ex.data[k].info;
        printf("  %-10s %-10s count=%lld shape=%dx%dx%d%s classes=%d  %s\n", ex.data[k].name,
               ex.data[k].ops->name, (long long)in->count, in->channels, in->height, in->width,
               in->is_video ? " (video)" : "", in->num_classes, in->summary);
    }
    for (int k = 0; k < ex.n_pipelines; k++) {
        const ct_pipeline_spec *p = &ex.pipelines[k];
        int views = 0;
        for (int j = 0; j < p->n_groups; j++) views += p->groups[j].count;
        printf("pipeline %d: data=%s weight=%g views=%d\n", k, p->data->name, (double)p->weight,
               views);
    }
    printf("plugins used:\n");
    for (int k = 0; k < ex.n_data; k++) {
        char w[96];
        snprintf(w, sizeof w, "data.%s", ex.data[k].name);
        print_used(&ex, CT_ROLE_SOURCE, ex.data[k].ops->name, w);
    }
    if (ex.encoder_ops) print_used(&ex, CT_ROLE_ENCODER, ex.encoder_ops->name, "encoder");
    for (int k = 0; k < ex.n_pipelines; k++)
        for (int j = 0; j < ex.pipelines[k].n_groups; j++) {
            char w[64];
            snprintf(w, sizeof w, "pipelines[%d].views[%d]", k, j);
            print_chain_used(&ex, &ex.pipelines[k].groups[j].chain, w);
        }
    if (ex.arch_ops) print_used(&ex, CT_ROLE_ARCHITECTURE, ex.arch_ops->name, "architecture");
    print_chain_used(&ex, &ex.eval_chain, "evaluation.transforms");
    for (int k = 0; k < ex.n_evaluators; k++) {
        char w[64];
        snprintf(w, sizeof w, "evaluation.evaluators[%d]", k);
        print_used(&ex, CT_ROLE_EVALUATOR, ex.evaluators[k].ops->name, w);
    }
    int refused = ct_plugins_refused(ex.plugins);
    if (refused)
        printf("note: %d plugin file%s refused (see `contrast plugins`)\n", refused,
               refused == 1 ? " was" : "s were");
    printf("ok: %s is valid\n", ex.path);
    ct_experiment_free(&ex);
    return 0;
}

/* ---- main ------------------------------------------------------------------------- */

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
        usage(stdout);
        return 0;
    }
    for (size_t k = 0; k < N_COMMANDS; k++)
        if (!strcmp(argv[i], commands[k].name)) return commands[k].run(argc - i, argv + i);
    const char *near = NULL;
    int best = 3;
    for (size_t k = 0; k < N_COMMANDS; k++) {
        int d = ct_edit_distance(argv[i], commands[k].name);
        if (d < best) best = d, near = commands[k].name;
    }
    if (near) return ct_cli_error("unknown command '%s' (did you mean '%s'?)", argv[i], near), 2;
    return ct_cli_error("unknown command '%s' (see contrast --help)", argv[i]), 2;
}
