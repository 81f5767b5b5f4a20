/* docs/config.md is the output of `contrast plugins --markdown`: these tests
 * fail when the committed file no longer matches the schemas in the code,
 * and check that the output does not depend on where the plugins live. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ct_test.h"

#define REGEN                                                                                  \
    "regenerate it: CONTRAST_PLUGIN_PATH=build/plugins build/contrast plugins --markdown "    \
    "--no-default-path > docs/config.md"

/* Whole file into a malloc'd NUL-terminated buffer (NULL when unreadable). */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    return buf;
}

/* The markdown for the plugins of `plugin_dir` into a malloc'd string. */
static char *generate(const char *plugin_dir) {
    const char *tmp = ct_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char out_path[512], cmd[2048], log[4096];
    snprintf(out_path, sizeof out_path, "%s/config.md", tmp);
    snprintf(cmd, sizeof cmd,
             "cd %s && CONTRAST_PLUGIN_PATH='%s' '%s/contrast' plugins --markdown --no-default-path > '%s'",
             tmp, plugin_dir, ct_test_build_dir(), out_path);
    int rc = ct_test_run(cmd, log, sizeof log);
    ck_assert_msg(rc == 0, "contrast plugins --markdown exited %d: %s", rc, log);
    char *text = slurp(out_path);
    ck_assert_ptr_nonnull(text);
    return text;
}

/* 1-based line number of the first difference, 0 when equal. */
static int first_diff_line(const char *a, const char *b) {
    int line = 1;
    for (; *a && *a == *b; a++, b++)
        if (*a == '\n') line++;
    return *a == *b ? 0 : line;
}

static void line_at(const char *text, int line, char *out, size_t n) {
    for (int l = 1; l < line && text; l++) {
        text = strchr(text, '\n');
        if (text) text++;
    }
    if (!text) text = "(end of file)";
    size_t len = strcspn(text, "\n");
    snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), text);
}

START_TEST(committed_reference_is_current) {
    char plugins[1024], committed_path[1024];
    snprintf(plugins, sizeof plugins, "%s/plugins", ct_test_build_dir());
    snprintf(committed_path, sizeof committed_path, "%s/docs/config.md", ct_test_source_dir());
    char *now = generate(plugins);
    char *committed = slurp(committed_path);
    ck_assert_msg(committed != NULL, "%s is missing; " REGEN, committed_path);
    int line = first_diff_line(now, committed);
    char want[256], have[256];
    line_at(now, line, want, sizeof want);
    line_at(committed, line, have, sizeof have);
    ck_assert_msg(line == 0,
                  "%s is out of date at line %d:\n  committed: %s\n  generated: %s\n" REGEN,
                  committed_path, line, have, want);
    free(now);
    free(committed);
}
END_TEST

/* The same plugins copied elsewhere give the same bytes: no absolute paths
 * and no dependence on the directory or load order. */
START_TEST(output_does_not_depend_on_plugin_location) {
    char plugins[1024], cmd[4096], log[4096];
    snprintf(plugins, sizeof plugins, "%s/plugins", ct_test_build_dir());
    const char *copy = ct_test_tmpdir();
    ck_assert_ptr_nonnull(copy);
    char copy_dir[512];
    snprintf(copy_dir, sizeof copy_dir, "%s", copy);
    snprintf(cmd, sizeof cmd, "chmod 755 '%s' && cp '%s'/*.so '%s'/ && chmod 644 '%s'/*.so", copy_dir,
             plugins, copy_dir, copy_dir);
    ck_assert_msg(ct_test_run(cmd, log, sizeof log) == 0, "copy failed: %s", log);
    char *a = generate(plugins);
    char *b = generate(copy_dir);
    ck_assert_msg(strstr(a, ct_test_build_dir()) == NULL, "the reference names the build directory");
    ck_assert_msg(strstr(b, copy_dir) == NULL, "the reference names the plugin directory");
    int line = first_diff_line(a, b);
    ck_assert_msg(line == 0, "output differs at line %d between two plugin locations", line);
    free(a);
    free(b);
}
END_TEST

/* Every host group and every bundled role implementation has a section. */
START_TEST(reference_covers_host_groups_and_plugins) {
    char plugins[1024];
    snprintf(plugins, sizeof plugins, "%s/plugins", ct_test_build_dir());
    char *text = generate(plugins);
    static const char *const want[] = {
        "### `optimizer`", "### `schedule`", "### `train`", "### `pipelines[]`", "### `evaluation`",
        "#### source `idx`", "#### encoder `resnet`", "#### architecture `end_to_end`",
        "#### evaluator `knn`", "#### pretext `random_resized_crop`",
        "| `max_steps` | int | `0` |",
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        ck_assert_msg(strstr(text, want[k]) != NULL, "reference lacks \"%s\"", want[k]);
    free(text);
}
END_TEST

int main(void) {
    Suite *s = suite_create("docs");
    TCase *tc = tcase_create("config_md");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, committed_reference_is_current);
    tcase_add_test(tc, output_does_not_depend_on_plugin_location);
    tcase_add_test(tc, reference_covers_host_groups_and_plugins);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}
