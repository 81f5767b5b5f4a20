/* `contrast new-plugin ROLE NAME [DIR]`: write a ready-to-build plugin
 * skeleton (NAME.c, CMakeLists.txt, README.md) for any role. The files come
 * from plugin_templates.c; each skeleton compiles against the installed SDK
 * and does the simplest real thing for its role. Existing files are never
 * overwritten. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "cli/plugin_templates.h"

#define NEW_PLUGIN_USAGE "new-plugin ROLE NAME [DIR]"
#define NAME_MAX_LEN 48
#define ROLES_TEXT "source, pretext, encoder, architecture, evaluator, structure"

typedef struct subst {
    const char *name, *role, *what, *usage;
} subst;

/* A plugin name doubles as a C identifier prefix in the skeleton. */
static bool name_valid(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN || name[0] < 'a' || name[0] > 'z') return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
    return true;
}

/* Write `text` with the @TOKEN@s replaced (a snippet's own @NAME@ too). */
static void put_text(FILE *f, const char *text, const subst *s) {
    static const char *const tokens[] = {"@NAME@", "@ROLE@", "@WHAT@", "@USAGE@"};
    const char *values[] = {s->name, s->role, s->what, s->usage};
    for (const char *p = text; *p;) {
        size_t k = 0;
        if (*p == '@')
            while (k < 4 && strncmp(p, tokens[k], strlen(tokens[k])) != 0) k++;
        if (*p != '@' || k == 4) {
            fputc(*p++, f);
            continue;
        }
        if (k >= 2) put_text(f, values[k], s); /* WHAT and USAGE contain @NAME@ */
        else fputs(values[k], f);
        p += strlen(tokens[k]);
    }
}

/* Create dir/file exclusively ("wx": never overwrite) from template lines. */
static int write_file(const char *dir, const char *file, const char *const *lines, const subst *s) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
        return ct_cli_error("new-plugin: path too long: %s/%s", dir, file);
    FILE *f = fopen(path, "wx");
    if (!f) {
        if (errno == EEXIST) return ct_cli_error("new-plugin: %s already exists (not overwritten)", path);
        return ct_cli_error("new-plugin: cannot create %s: %s", path, strerror(errno));
    }
    for (size_t i = 0; lines[i]; i++) put_text(f, lines[i], s);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return ct_cli_error("new-plugin: writing %s failed", path);
    printf("  %s\n", path);
    return 0;
}

/* mkdir -p for the last component only: the parent must exist. */
static int make_dir(const char *dir) {
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return 0;
        return ct_cli_error("new-plugin: %s exists and is not a directory", dir);
    }
    if (mkdir(dir, 0755) != 0) return ct_cli_error("new-plugin: cannot create directory %s: %s", dir, strerror(errno));
    return 0;
}

int ct_cmd_new_plugin(int argc, char **argv) {
    if (argc < 3 || argc > 4)
        return ct_cli_error("new-plugin: expected ROLE NAME [DIR] (usage: %s; roles: %s)", NEW_PLUGIN_USAGE,
                            ROLES_TEXT),
               2;
    const ct_plugin_template *t = ct_plugin_template_find(argv[1]);
    if (!t) return ct_cli_error("new-plugin: unknown role '%s' (roles: %s)", argv[1], ROLES_TEXT), 2;
    const char *name = argv[2];
    if (!name_valid(name))
        return ct_cli_error("new-plugin: bad plugin name '%s': use a lower-case letter then [a-z0-9_], at "
                            "most %d characters",
                            name, NAME_MAX_LEN),
               2;
    const char *dir = argc == 4 ? argv[3] : name;
    subst s = {name, t->role, t->what, t->usage};
    char cfile[NAME_MAX_LEN + 3];
    snprintf(cfile, sizeof cfile, "%s.c", name);
    printf("writing the %s plugin '%s':\n", t->role, name);
    int rc = make_dir(dir);
    if (!rc) rc = write_file(dir, cfile, t->source, &s);
    if (!rc) rc = write_file(dir, "CMakeLists.txt", ct_plugin_template_cmake(), &s);
    if (!rc) rc = write_file(dir, "README.md", ct_plugin_template_readme(), &s);
    if (rc) return rc;
    printf("next: cmake -S %s -B %s/build -DCMAKE_PREFIX_PATH=<contrast prefix> && cmake --build %s/build\n",
           dir, dir, dir);
    return 0;
}
