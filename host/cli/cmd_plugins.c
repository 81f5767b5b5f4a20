/* `contrast plugins [-v] [--markdown] [--no-default-path]`: the search
 * path, every plugin file found with its role implementations (-v: their
 * parameter schemas), the refused files and why; --markdown writes the
 * configuration reference instead (config_doc.h). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/config_doc.h"

static void roles_text(uint32_t roles, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t bit = 1; bit <= CT_ROLE_STRUCTURE; bit <<= 1) {
        if (!(roles & bit)) continue;
        int w = snprintf(buf + used, n - used, "%s%s", used ? "," : "", ct_role_name((ct_role)bit));
        if (w > 0 && (size_t)w < n - used) used += (size_t)w;
    }
}


static void print_params(const ct_param_spec *spec) {
    if (!spec || !spec->name) {
        printf("      (no parameters)\n");
        return;
    }
    for (const ct_param_spec *p = spec; p->name; p++) {
        char range[160];
        ct_config_doc_range(p, range, sizeof range);
        printf("      %-18s %-12s %-14s %-18s %s\n", p->name, ct_ptype_name(p->type),
               p->def ? p->def : "required", range, p->doc ? p->doc : "");
    }
}

static void print_entries(const ct_plugin_set *set, const ct_plugin_record *rec, bool verbose) {
    for (size_t k = 0; k < ct_registry_count(set->reg); k++) {
        const ct_registry_entry *e = ct_registry_at(set->reg, k);
        if (strcmp(e->file, rec->path) != 0) continue;
        printf("    %-12s %-22s %s\n", ct_role_name(e->role), e->name, ct_config_doc_description(e));
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
