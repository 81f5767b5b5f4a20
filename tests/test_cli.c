/* The `contrast` program end to end: plugins, check, version, and failure
 * modes that must exit non-zero with one "contrast: " line, never crash. */
#include <stdbool.h>
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
    ck_assert_ptr_nonnull(strstr(out, "contrast: 11 plugin files were refused"));
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

/* The demo's experiment stays valid (CI never runs the 10-minute demo):
 * check builds its model and each pipeline's first batch, and
 * scripts/demo runs exactly that config, without --set overrides. */
START_TEST(demo_config_is_valid_and_is_the_demos) {
    int rc = contrast(plugins(), "check configs/demo_fmnist.cfg --set data.train.limit=1000");
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "ok: configs/demo_fmnist.cfg is valid"));
    ck_assert_ptr_nonnull(strstr(out, "semi_supervised"));
    char path[1200];
    snprintf(path, sizeof path, "%s/scripts/demo", ct_test_source_dir());
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char demo[1 << 16];
    demo[fread(demo, 1, sizeof demo - 1, f)] = '\0';
    fclose(f);
    ck_assert_ptr_nonnull(strstr(demo, "build/contrast eval configs/demo_fmnist.cfg --run-dir \"$run\"\n"));
    ck_assert_ptr_nonnull(strstr(demo, "build/contrast train configs/demo_fmnist.cfg --run-dir \"$run\"\n"));
    ck_assert_ptr_null(strstr(demo, "--set"));
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

/* A plugin reading a setting its schema does not declare (the test plugin
 * tests/plugins/bad_settings): the command fails with one line naming the
 * plugin and the key, never aborts. Each case: the command, the config's
 * encoder type and pipeline transform, its evaluator type, and what the
 * line must name. */
#define NORMALIZE "type = \"normalize\"; mean = [0.3]; std = [0.3];"
static const struct {
    const char *command, *encoder, *transform, *evaluator, *plugin, *key;
} misuses[] = {
    {"check", "pixels", "type = \"bad_settings_transform\";", "knn", "(pretext bad_settings_transform)",
     "'strength'"},
    {"eval", "bad_settings_encoder", NORMALIZE, "knn", "(encoder bad_settings_encoder)", "'depth'"},
    {"train", "bad_settings_encoder", NORMALIZE, "knn", "(encoder bad_settings_encoder)", "'depth'"},
    {"eval", "pixels", NORMALIZE, "bad_settings_evaluator", "(evaluator bad_settings_evaluator)", "'neighbours'"},
};
#define N_MISUSES (sizeof misuses / sizeof misuses[0])

START_TEST(undeclared_setting_fails_naming_plugin_and_key) {
    char cfg[1024], text[2048], args[2400];
    /* Without an architecture but for train: eval then has no weights to
     * mention (no "randomly initialised" note), only the failure. */
    bool train = strcmp(misuses[_i].command, "train") == 0;
    snprintf(cfg, sizeof cfg, "%s/bad_settings.cfg", ct_test_tmpdir());
    int n = snprintf(text, sizeof text,
                     "name = \"bad_settings\";\n"
                     "plugins = { path = [\"%s/tests/plugins/bad_settings\"]; };\n"
                     "data = { train = { type = \"idx\"; limit = 64;\n"
                     "  images = \"/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\";\n"
                     "  labels = \"/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz\"; }; };\n"
                     "encoder = { type = \"%s\"; };\n"
                     "pipelines = ( { data = \"train\"; views = 2; transforms = ( { %s } ); } );\n"
                     "%s"
                     "train = { epochs = 1; batch_size = 16; threads = 1; };\n"
                     "evaluation = { train = \"train\"; test = \"train\";\n"
                     "  transforms = ( { " NORMALIZE " } );\n"
                     "  evaluators = ( { type = \"%s\"; } ); };\n",
                     ct_test_build_dir(), misuses[_i].encoder, misuses[_i].transform,
                     train ? "architecture = { type = \"end_to_end\"; };\n" : "", misuses[_i].evaluator);
    ck_assert(n > 0 && (size_t)n < sizeof text);
    ck_assert_int_eq(ct_test_write_file(cfg, text, (size_t)n), 0);
    snprintf(args, sizeof args, "%s '%s'%s%s%s", misuses[_i].command, cfg, train ? " --run-dir '" : "",
             train ? ct_test_tmpdir() : "", train ? "/run'" : "");
    int rc = contrast(plugins(), args);
    ck_assert_msg(rc == 1, "`contrast %s` exited %d: %s", args, rc, out);
    ck_assert_msg(strncmp(out, "contrast: ", 10) == 0, "`contrast %s`: '%s'", args, out);
    char *nl = strchr(out, '\n');
    ck_assert_msg(nl && nl[1] == '\0', "`contrast %s` printed more than one line: '%s'", args, out);
    ck_assert_msg(strstr(out, misuses[_i].plugin) && strstr(out, misuses[_i].key) && strstr(out, "not declared"),
                  "`contrast %s`: '%s' lacks %s and %s", args, out, misuses[_i].plugin, misuses[_i].key);
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
    tcase_add_test(tc, demo_config_is_valid_and_is_the_demos);
    tcase_add_loop_test(tc, failure_exits_nonzero_with_one_line, 0, (int)N_FAILURES);
    tcase_add_loop_test(tc, undeclared_setting_fails_naming_plugin_and_key, 0, (int)N_MISUSES);
    tcase_add_test(tc, no_arguments_prints_usage_and_fails);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}
