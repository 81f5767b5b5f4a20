/* `contrast check CONFIG`: validate a config, open its datasets and print
 * their summary, the pipelines and every plugin the experiment uses. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

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
