/* Experiment loading: @include, --set overrides, host schemas, plugin
 * groups with "did you mean", pipelines, evaluation, the resolved config
 * and the transform chain. Uses the test plugin good.so (tests/plugins). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ct_test.h"
#include "config/experiment.h"
#include "data/chain.h"

static char dir[512];
static char plugins_line[1200];
static ct_error err;

static void setup(void) {
    snprintf(dir, sizeof dir, "%s", ct_test_tmpdir());
    chmod(dir, 0755);
    snprintf(plugins_line, sizeof plugins_line, "plugins = { path = [\"%s/tests/plugins\"]; };\n",
             ct_test_build_dir());
    unsetenv("CONTRAST_PLUGIN_PATH"); /* only the config's path */
}

static const char *write_cfg(const char *name, const char *body, bool with_plugins) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char text[8192];
    snprintf(text, sizeof text, "%s%s", with_plugins ? plugins_line : "", body);
    ck_assert_int_eq(ct_test_write_file(path, text, strlen(text)), 0);
    return path;
}

static ct_status load(ct_experiment *ex, const char *path, const char **sets, int n_sets) {
    ct_experiment_opts o = {.sets = sets, .n_sets = n_sets};
    ct_error_clear(&err);
    return ct_experiment_load(ex, path, &o, &err);
}

static const char *basic =
    "name = \"basic\";\nseed = 7;\n"
    "data = {\n  tiny = { type = \"good_source\"; count = 12; };\n};\n"
    "pipelines = ( { data = \"tiny\"; weight = 0.5; views = 3;\n"
    "  transforms = ( { type = \"good_noop\"; }, { type = \"good_noop\"; } ); } );\n"
    "optimizer = { type = \"adamw\"; lr = 0.001; };\n"
    "train = { epochs = 2; batch_size = 4; };\n";

START_TEST(basic_config_loads_with_defaults) {
    ct_experiment ex;
    const char *path = write_cfg("basic.cfg", basic, true);
    ck_assert_msg(load(&ex, path, NULL, 0) == CT_OK, "%s", err.msg);
    ck_assert_str_eq(ex.name, "basic");
    ck_assert_uint_eq(ex.seed, 7);
    ck_assert_int_eq(ex.n_data, 1);
    ck_assert_str_eq(ex.data[0].name, "tiny");
    ck_assert_int_eq(ex.data[0].info.count, 12);
    ck_assert_ptr_nonnull(ex.data[0].self);
    ck_assert_int_eq(ex.n_pipelines, 1);
    ck_assert_ptr_eq(ex.pipelines[0].data, &ex.data[0]);
    ck_assert(ex.pipelines[0].weight == 0.5f);
    ck_assert_int_eq(ex.pipelines[0].n_groups, 1);
    ck_assert_int_eq(ex.pipelines[0].groups[0].count, 3);
    ck_assert_int_eq(ex.pipelines[0].groups[0].chain.n, 2);
    ck_assert_str_eq(ct_settings_string(ex.optimizer, "type"), "adamw");
    ck_assert_double_eq_tol(ct_settings_float(ex.optimizer, "momentum"), 0.9, 1e-12);
    ck_assert_str_eq(ct_settings_string(ex.schedule, "type"), "cosine");
    ck_assert_int_eq(ct_settings_int(ex.train, "epochs"), 2);
    ck_assert_int_eq(ct_settings_int(ex.train, "max_steps"), 0);
    ck_assert_str_eq(ct_settings_string(ex.train, "out_dir"), "runs");
    ck_assert_ptr_null(ex.encoder_ops);
    ck_assert_ptr_null(ex.eval_train);
    ct_experiment_free(&ex);
    ct_experiment_free(&ex); /* safe twice: the struct is zeroed */
}
END_TEST

START_TEST(include_is_relative_to_the_config) {
    write_cfg("data.inc", "data = { tiny = { type = \"good_source\"; count = 5; }; };\n", false);
    const char *path = write_cfg("main.cfg", "@include \"data.inc\"\nseed = 1;\n", true);
    char abs[1024];
    snprintf(abs, sizeof abs, "%s", path);
    ck_assert_int_eq(chdir("/"), 0); /* not the config's folder */
    ct_experiment ex;
    ck_assert_msg(load(&ex, abs, NULL, 0) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(ex.data[0].info.count, 5);
    ck_assert_str_eq(ex.name, "main"); /* default name: the file's stem */
    ct_experiment_free(&ex);
}
END_TEST

START_TEST(set_overrides_values_of_every_type) {
    const char *path = write_cfg("basic.cfg", basic, true);
    const char *sets[] = {"data.tiny.count=20",  "train.epochs=5",  "optimizer.lr=0.25",
                          "optimizer.nesterov=true", "name=renamed", "schedule.step_epochs=[3, 6]",
                          "pipelines.[0].weight=2"};
    ct_experiment ex;
    ck_assert_msg(load(&ex, path, sets, 7) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(ex.data[0].info.count, 20);
    ck_assert_int_eq(ct_settings_int(ex.train, "epochs"), 5);
    ck_assert_str_eq(ct_settings_origin(ex.train, "epochs"), "--set train.epochs");
    ck_assert_double_eq_tol(ct_settings_float(ex.optimizer, "lr"), 0.25, 1e-12);
    ck_assert(ct_settings_bool(ex.optimizer, "nesterov"));
    ck_assert_str_eq(ex.name, "renamed"); /* a bare word is a string */
    ck_assert_uint_eq(ct_settings_len(ex.schedule, "step_epochs"), 2);
    ck_assert_int_eq(ct_settings_int_at(ex.schedule, "step_epochs", 1), 6);
    ck_assert(ex.pipelines[0].weight == 2.0f);
    ct_experiment_free(&ex);
}
END_TEST

START_TEST(set_creates_missing_groups) {
    const char *path = write_cfg("min.cfg", "data = { t = { type = \"good_source\"; }; };\n", true);
    const char *sets[] = {"schedule.warmup_epochs=1.5"};
    ct_experiment ex;
    ck_assert_msg(load(&ex, path, sets, 1) == CT_OK, "%s", err.msg);
    ck_assert_double_eq_tol(ct_settings_float(ex.schedule, "warmup_epochs"), 1.5, 1e-12);
    ct_experiment_free(&ex);
}
END_TEST

START_TEST(set_with_a_wrong_value_names_the_override) {
    const char *path = write_cfg("basic.cfg", basic, true);
    const char *sets[] = {"train.epochs=many"};
    ct_experiment ex;
    ck_assert_int_eq(load(&ex, path, sets, 1), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "--set train.epochs"));
    ck_assert_ptr_nonnull(strstr(err.msg, "must be an int, got string"));
    const char *malformed[] = {"train.epochs"};
    ck_assert_int_eq(load(&ex, path, malformed, 1), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "expected group.key=value"));
}
END_TEST

/* One bad config per rule of the experiment layer: the message holds each
 * listed fragment. */
static const struct {
    const char *body;
    const char *want[3];
} bad_configs[] = {
    {"dat = { };\n", {"bad.cfg:2", "unknown parameter 'dat'", "did you mean 'data'?"}},
    {"data = { t = { type = \"good_sourc\"; }; };\n",
     {"bad.cfg:2", "unknown source 'good_sourc'", "did you mean 'good_source'?"}},
    {"data = { t = { type = \"good_noop\"; }; };\n", {"'good_noop' is a pretext, not a source", NULL, NULL}},
    {"data = { t = { count = 3; }; };\n", {"data.t", "needs type", "available: good_source"}},
    {"data = { t = { type = \"good_source\"; cont = 3; }; };\n",
     {"bad.cfg:2", "unknown parameter 'cont'", "did you mean 'count'?"}},
    {"data = { t = { type = \"good_source\"; count = 0; }; };\n", {"'count' = 0 is out of range", NULL, NULL}},
    {"data = { t = { type = \"good_source\"; }; };\npipelines = ( { data = \"tt\"; } );\n",
     {"is not a dataset", "did you mean 't'?", NULL}},
    {"data = { t = { type = \"good_source\"; }; };\npipelines = ( { data = \"t\"; views = 0; } );\n",
     {"views = 0 is out of range", NULL, NULL}},
    {"data = { t = { type = \"good_source\"; }; };\n"
     "pipelines = ( { data = \"t\"; transforms = ( { type = \"good_nop\"; } ); } );\n",
     {"pipelines[0].transforms[0]", "did you mean 'good_noop'?", NULL}},
    {"data = { t = { type = \"good_source\"; }; };\n"
     "pipelines = ( { data = \"t\"; views = ( { count = 2; transforms = (); } );\n"
     "  transforms = (); } );\n",
     {"give transforms inside each crop group", NULL, NULL}},
    {"optimizer = { type = \"sgd\"; lr = -1.0; };\n", {"bad.cfg:2", "optimizer", "'lr' = -1 is out of range"}},
    {"train = { epochs = 1.5; };\n", {"bad.cfg:2", "'epochs' must be an int, got float", NULL}},
    {"schedule = { type = \"cosinus\"; };\n", {"not one of constant|cosine|step", "did you mean 'cosine'?", NULL}},
    {"data = { t = { type = \"good_source\"; }; };\n"
     "evaluation = { train = \"t\"; test = \"t\"; evaluators = ( { type = \"knn\"; } ); };\n",
     {"evaluation.evaluators[0]", "unknown evaluator 'knn'", NULL}},
    {"data = { t = { type = \"good_source\"; }; };\nevaluation = { train = \"t\"; };\n",
     {"missing required parameter 'test'", NULL, NULL}},
    {"seed = -3;\n", {"'seed' = -3 is out of range", NULL, NULL}},
    {"train = 3;\n", {"train: must be a group", NULL, NULL}},
    {"data = { t = { type = ; }; };\n", {"bad.cfg:2", "syntax error", NULL}},
};
#define N_BAD (sizeof bad_configs / sizeof bad_configs[0])

START_TEST(bad_config_is_refused_with_a_clear_message) {
    const char *path = write_cfg("bad.cfg", bad_configs[_i].body, true);
    ct_experiment ex;
    ct_status st = load(&ex, path, NULL, 0);
    ck_assert_msg(st != CT_OK, "accepted: %s", bad_configs[_i].body);
    for (int k = 0; k < 3 && bad_configs[_i].want[k]; k++)
        ck_assert_msg(strstr(err.msg, bad_configs[_i].want[k]), "config:\n%s\nmessage '%s' lacks '%s'",
                      bad_configs[_i].body, err.msg, bad_configs[_i].want[k]);
    ct_experiment_free(&ex);
}
END_TEST

START_TEST(missing_plugin_dir_in_config_is_an_error) {
    const char *path = write_cfg("p.cfg", "plugins = { path = [\"no/such/dir\"]; };\n", false);
    ct_experiment ex;
    ck_assert_int_eq(load(&ex, path, NULL, 0), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "no/such/dir"));
    ck_assert_ptr_nonnull(strstr(err.msg, "relative to the config file's folder"));
}
END_TEST

START_TEST(multi_crop_views) {
    const char *path = write_cfg(
        "mc.cfg",
        "data = { t = { type = \"good_source\"; }; };\n"
        "pipelines = ( { data = \"t\"; views = ( { count = 2; transforms = ( { type = \"good_noop\"; } ); },\n"
        "                                       { count = 4; } ); } );\n",
        true);
    ct_experiment ex;
    ck_assert_msg(load(&ex, path, NULL, 0) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(ex.pipelines[0].n_groups, 2);
    ck_assert_int_eq(ex.pipelines[0].groups[0].count, 2);
    ck_assert_int_eq(ex.pipelines[0].groups[0].chain.n, 1);
    ck_assert_int_eq(ex.pipelines[0].groups[1].count, 4);
    ck_assert_int_eq(ex.pipelines[0].groups[1].chain.n, 0);
    ct_experiment_free(&ex);
}
END_TEST

START_TEST(resolved_config_reloads_identically) {
    const char *path = write_cfg("basic.cfg", basic, true);
    const char *sets[] = {"train.epochs=3"};
    ct_experiment ex, again;
    ck_assert_msg(load(&ex, path, sets, 1) == CT_OK, "%s", err.msg);
    char out[1024];
    snprintf(out, sizeof out, "%s/resolved.cfg", dir);
    ck_assert_int_eq(ct_experiment_write_resolved(&ex, out, &err), CT_OK);
    ck_assert_msg(load(&again, out, NULL, 0) == CT_OK, "%s", err.msg);
    ck_assert_str_eq(again.name, "basic");
    ck_assert_int_eq(ct_settings_int(again.train, "epochs"), 3);
    ck_assert_int_eq(again.data[0].info.count, 12);
    ck_assert_int_eq(again.pipelines[0].groups[0].count, 3);
    ck_assert_int_eq(again.pipelines[0].groups[0].chain.n, 2);
    ck_assert(again.pipelines[0].weight == 0.5f);
    ck_assert_str_eq(ct_settings_string(again.optimizer, "type"), "adamw");
    /* Every default is written out. */
    char text[8192];
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "cat '%s'", out);
    ck_assert_int_eq(ct_test_run(cmd, text, sizeof text), 0);
    ck_assert_ptr_nonnull(strstr(text, "momentum = 0.9;"));
    ck_assert_ptr_nonnull(strstr(text, "out_dir = \"runs\";"));
    ct_experiment_free(&ex);
    ct_experiment_free(&again);
}
END_TEST

START_TEST(chain_apply_runs_every_transform) {
    const char *path = write_cfg("basic.cfg", basic, true);
    ct_experiment ex;
    ck_assert_msg(load(&ex, path, NULL, 0) == CT_OK, "%s", err.msg);
    ct_image src = CT_IMAGE_INIT, out = CT_IMAGE_INIT, scratch = CT_IMAGE_INIT;
    int32_t label;
    ct_dataset *d = &ex.data[0];
    ck_assert_int_eq(d->ops->get(d->self, 6, &src, &label, &err), CT_OK);
    ct_rng rng;
    ct_rng_init(&rng, 1, 2);
    for (int n = 0; n <= 2; n++) {
        ct_chain c = ex.pipelines[0].groups[0].chain;
        c.n = n; /* 0, 1 and 2 steps: the ping-pong must end in out */
        ck_assert_int_eq(ct_chain_apply(&c, &src, &out, &scratch, &rng, &err), CT_OK);
        ck_assert_int_eq(out.h, 4);
        ck_assert(out.data[5] == src.data[5]);
    }
    ct_image_free(&src), ct_image_free(&out), ct_image_free(&scratch);
    ct_experiment_free(&ex);
}
END_TEST

int main(void) {
    Suite *s = suite_create("experiment");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, basic_config_loads_with_defaults);
    tcase_add_test(tc, include_is_relative_to_the_config);
    tcase_add_test(tc, set_overrides_values_of_every_type);
    tcase_add_test(tc, set_creates_missing_groups);
    tcase_add_test(tc, set_with_a_wrong_value_names_the_override);
    tcase_add_loop_test(tc, bad_config_is_refused_with_a_clear_message, 0, (int)N_BAD);
    tcase_add_test(tc, missing_plugin_dir_in_config_is_an_error);
    tcase_add_test(tc, multi_crop_views);
    tcase_add_test(tc, resolved_config_reloads_identically);
    tcase_add_test(tc, chain_apply_runs_every_transform);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}
