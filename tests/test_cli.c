/* The `contrast` program end to end: plugins, check, version, and failure
 * modes that must exit non-zero with one "contrast: " line, never crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/version.h"
#include "ct_test.h"

static char out[65536];

/* Run `contrast ARGS` from the source dir with the given plugin path. */
static int contrast(const char *plugin_path, const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && CONTRAST_PLUGIN_PATH='%s' '%s/contrast' %s", ct_test_source_dir(),
             plugin_path, ct_test_build_dir(), args);
    return ct_test_run(cmd, out, sizeof out);
}

static const char *plugins(void) {
    static char p[1024];
    snprintf(p, sizeof p, "%s/plugins", ct_test_build_dir());
    return p;
}

START_TEST(version_and_help) {
    ck_assert_int_eq(contrast(plugins(), "version"), 0);
    char abi[32];
    snprintf(abi, sizeof abi, "plugin ABI %d.%d", CT_ABI_MAJOR, CT_ABI_MINOR);
    ck_assert_msg(strstr(out, abi) != NULL, "'%s' lacks '%s'", out, abi);
    ck_assert_int_eq(contrast(plugins(), "--help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "plugins [-v]"));
    ck_assert_ptr_nonnull(strstr(out, "check CONFIG"));
}
END_TEST

START_TEST(plugins_lists_idx) {
    ck_assert_msg(contrast(plugins(), "plugins") == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "source       idx"));
    ck_assert_ptr_nonnull(strstr(out, "/idx.so"));
    ck_assert_ptr_null(strstr(out, "refused"));
    ck_assert_int_eq(contrast(plugins(), "plugins -v"), 0);
    ck_assert_ptr_nonnull(strstr(out, "images"));
    ck_assert_ptr_nonnull(strstr(out, "required"));
    ck_assert_ptr_nonnull(strstr(out, "limit"));
    ck_assert_int_eq(contrast(plugins(), "plugins --markdown"), 0);
    ck_assert_ptr_nonnull(strstr(out, "| `images` | string | `required` |"));
}
END_TEST

START_TEST(plugins_survives_every_broken_plugin) {
    char path[1100];
    snprintf(path, sizeof path, "%s/tests/plugins", ct_test_build_dir());
    int rc = contrast(path, "plugins");
    ck_assert_msg(rc == 3, "rc %d: %s", rc, out); /* listed, some refused */
    ck_assert_ptr_nonnull(strstr(out, "good 1.2.3"));
    ck_assert_ptr_nonnull(strstr(out, "bad_segv_init.so: crashed in init"));
    ck_assert_ptr_nonnull(strstr(out, "bad_abi_major.so: built for plugin ABI 2.0"));
    ck_assert_ptr_nonnull(strstr(out, "bad_not_elf.so: not a loadable shared object"));
    ck_assert_ptr_nonnull(strstr(out, "contrast: 10 plugin files were refused"));
}
END_TEST

START_TEST(check_prints_the_dataset_summary) {
    int rc = contrast(plugins(), "check configs/check_fmnist.cfg --set data.train.limit=1000");
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "train      idx        count=1000 shape=1x28x28 classes=10"));
    ck_assert_ptr_nonnull(strstr(out, "test       idx        count=10000 shape=1x28x28 classes=10"));
    ck_assert_ptr_nonnull(strstr(out, "data.train"));
    ck_assert_ptr_nonnull(strstr(out, "/idx.so"));
    ck_assert_ptr_nonnull(strstr(out, "ok: configs/check_fmnist.cfg is valid"));
}
END_TEST

/* Failure modes: args, and a fragment of the single line expected. */
static const struct {
    const char *args;
    const char *want;
} failures[] = {
    {"check", "check: missing CONFIG"},
    {"check /nonexistent.cfg", "/nonexistent.cfg: cannot read config"},
    {"check configs/check_fmnist.cfg --set data.train.imagess=x", "did you mean 'images'?"},
    {"check configs/check_fmnist.cfg --set data.train.type=idxx", "unknown source 'idxx' (did you mean 'idx'?)"},
    {"check configs/check_fmnist.cfg --set data.train.images=/no/such.gz", "/no/such.gz: cannot open"},
    {"check configs/check_fmnist.cfg --set train.batch_size=0", "'batch_size' = 0 is out of range"},
    {"check configs/check_fmnist.cfg --set", "--set needs a group.key=value"},
    {"check configs/check_fmnist.cfg extra", "unexpected argument 'extra'"},
    {"chek configs/check_fmnist.cfg", "unknown command 'chek' (did you mean 'check'?)"},
    {"--bogus", "unknown option '--bogus'"},
    {"plugins --bogus", "unexpected argument '--bogus'"},
};
#define N_FAILURES (sizeof failures / sizeof failures[0])

START_TEST(failure_exits_nonzero_with_one_line) {
    int rc = contrast(plugins(), failures[_i].args);
    ck_assert_msg(rc > 0 && rc < 128, "`contrast %s` exited %d", failures[_i].args, rc);
    ck_assert_msg(strncmp(out, "contrast: ", 10) == 0, "`contrast %s`: '%s'", failures[_i].args, out);
    char *nl = strchr(out, '\n');
    ck_assert_msg(nl && nl[1] == '\0', "`contrast %s` printed more than one line: '%s'",
                  failures[_i].args, out);
    ck_assert_msg(strstr(out, failures[_i].want), "`contrast %s`: '%s' lacks '%s'", failures[_i].args,
                  out, failures[_i].want);
}
END_TEST

START_TEST(no_arguments_prints_usage_and_fails) {
    ck_assert_int_eq(contrast(plugins(), ""), 2);
    ck_assert_ptr_nonnull(strstr(out, "usage: contrast"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, version_and_help);
    tcase_add_test(tc, plugins_lists_idx);
    tcase_add_test(tc, plugins_survives_every_broken_plugin);
    tcase_add_test(tc, check_prints_the_dataset_summary);
    tcase_add_loop_test(tc, failure_exits_nonzero_with_one_line, 0, (int)N_FAILURES);
    tcase_add_test(tc, no_arguments_prints_usage_and_fails);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}
