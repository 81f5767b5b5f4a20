/* Command-line pieces shared by the commands (see commands.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

bool ct_cli_allow_unsafe = false;

int ct_cli_error(const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line: newlines inside a message would split the reason. */
    for (char *p = msg; *p; p++)
        if (*p == '\n') *p = ' ';
    /* Flush what stdout holds first, so that when both go to one pipe the
     * reason never lands in the middle of a listing line. */
    fflush(stdout);
    fprintf(stderr, "contrast: %s\n", msg);
    return 1;
}

void ct_cli_config_init(ct_cli_config *c) {
    memset(c, 0, sizeof *c);
    c->opts.sets = c->sets;
    c->opts.allow_unsafe_plugins = ct_cli_allow_unsafe;
}

static int add_set(ct_cli_config *c, const char *kv) {
    if (c->opts.n_sets >= CT_CLI_MAX_SETS) {
        ct_cli_error("too many --set options (at most %d)", CT_CLI_MAX_SETS);
        return -1;
    }
    if (!strchr(kv, '=')) {
        ct_cli_error("--set '%s': expected group.key=value", kv);
        return -1;
    }
    c->sets[c->opts.n_sets++] = kv;
    return 1;
}

int ct_cli_common_option(ct_cli_config *c, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (strcmp(a, "--allow-unsafe-plugins") == 0) {
        c->opts.allow_unsafe_plugins = true;
        (*i)++;
        return 1;
    }
    if (strncmp(a, "--set=", 6) == 0) {
        (*i)++;
        return add_set(c, a + 6);
    }
    if (strcmp(a, "--set") == 0 || strcmp(a, "-s") == 0) {
        if (*i + 1 >= argc) {
            ct_cli_error("%s needs a group.key=value argument", a);
            return -1;
        }
        *i += 2;
        return add_set(c, argv[*i - 1]);
    }
    return 0;
}

int ct_cli_parse_config_args(ct_cli_config *c, int argc, char **argv, const char *usage) {
    for (int i = 1; i < argc;) {
        int r = ct_cli_common_option(c, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (argv[i][0] == '-' || c->config) {
            ct_cli_error("%s: unexpected argument '%s' (usage: %s)", argv[0], argv[i], usage);
            return 2;
        }
        c->config = argv[i++];
    }
    if (!c->config) {
        ct_cli_error("%s: missing CONFIG (usage: %s)", argv[0], usage);
        return 2;
    }
    return 0;
}

int ct_cli_load(ct_experiment *ex, const ct_cli_config *c) {
    ct_error err = CT_ERROR_INIT;
    if (ct_experiment_load(ex, c->config, &c->opts, &err) == CT_OK) return 0;
    return ct_cli_error("%s", err.msg[0] ? err.msg : ct_status_str(err.code));
}
