/* Settings: schema validation (one bad config per rule), accessors,
 * origins, formatting; also metrics and the edit distance. */
#include <libconfig.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "contrast/contrast.h"
#include "ct_test.h"

static const ct_param_spec spec[] = {
    CT_PARAM_INT("blocks", "2", 1, 8, "residual blocks"),
    CT_PARAM_FLOAT("temperature", "0.5", 0.01, 10, "softmax temperature"),
    CT_PARAM_BOOL("flip", "true", "random flips"),
    CT_PARAM_STRING("path", "\"data\"", "a path"),
    CT_PARAM_CHOICE("stem", "\"small\"", "small|imagenet", "first layer"),
    CT_PARAM_INTS("widths", "[16, 32]", 1, 4096, "stage widths"),
    CT_PARAM_FLOATS("mean", "[0.5]", 0, 1, "per-channel mean"),
    CT_PARAM_STRINGS("names", "[\"a\", \"b\"]", "some names"),
    CT_PARAM_END,
};

static const ct_param_spec required_spec[] = {
    CT_PARAM_STRING("images", NULL, "image file"),
    CT_PARAM_END,
};

static ct_error err;

static ct_status parse(const char *text, ct_settings **s) {
    ct_error_clear(&err);
    return ct_settings_parse(spec, text, "test", s, &err);
}

START_TEST(defaults_fill_every_parameter) {
    ct_settings *s;
    ck_assert_int_eq(parse("", &s), CT_OK);
    ck_assert_int_eq(ct_settings_int(s, "blocks"), 2);
    ck_assert_double_eq_tol(ct_settings_float(s, "temperature"), 0.5, 1e-12);
    ck_assert(ct_settings_bool(s, "flip"));
    ck_assert_str_eq(ct_settings_string(s, "path"), "data");
    ck_assert_str_eq(ct_settings_string(s, "stem"), "small");
    ck_assert_uint_eq(ct_settings_len(s, "widths"), 2);
    ck_assert_int_eq(ct_settings_int_at(s, "widths", 1), 32);
    ck_assert_double_eq_tol(ct_settings_float_at(s, "mean", 0), 0.5, 1e-12);
    ck_assert_str_eq(ct_settings_string_at(s, "names", 1), "b");
    ck_assert_str_eq(ct_settings_origin(s, "blocks"), "default");
    ck_assert_ptr_eq(ct_settings_spec(s), spec);
    ct_settings_free(s);
}
END_TEST

START_TEST(values_are_read_with_their_line) {
    ct_settings *s;
    ck_assert_int_eq(parse("blocks = 4;\ntemperature = 1;\nflip = false;\nstem = \"imagenet\";\n"
                           "widths = [8, 8, 8];\nmean = [0, 1];\nnames = [];",
                           &s),
                     CT_OK);
    ck_assert_int_eq(ct_settings_int(s, "blocks"), 4);
    /* An int is accepted where a float is expected. */
    ck_assert_double_eq_tol(ct_settings_float(s, "temperature"), 1.0, 1e-12);
    ck_assert(!ct_settings_bool(s, "flip"));
    ck_assert_str_eq(ct_settings_string(s, "stem"), "imagenet");
    ck_assert_uint_eq(ct_settings_len(s, "widths"), 3);
    ck_assert_double_eq_tol(ct_settings_float_at(s, "mean", 1), 1.0, 1e-12);
    ck_assert_uint_eq(ct_settings_len(s, "names"), 0);
    ck_assert_str_eq(ct_settings_origin(s, "temperature"), "line 2");
    /* An int parameter can be read as a float (widening). */
    ck_assert_double_eq_tol(ct_settings_float(s, "blocks"), 4.0, 1e-12);
    ct_settings_free(s);
}
END_TEST

START_TEST(unknown_key_suggests_the_nearest) {
    ct_settings *s;
    ck_assert_int_eq(parse("temprature = 0.2;", &s), CT_ERR_CONFIG);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown parameter 'temprature'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "did you mean 'temperature'?"));
    ck_assert_ptr_nonnull(strstr(err.msg, "line 1"));
}
END_TEST

START_TEST(unknown_key_far_from_all_lists_known) {
    ct_settings *s;
    ck_assert_int_eq(parse("zzzzzzzz = 1;", &s), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "known: blocks, temperature"));
}
END_TEST

START_TEST(wrong_type_is_an_error) {
    static const char *bad[] = {
        "blocks = \"four\";", "blocks = 2.5;", "temperature = \"hot\";", "flip = 1;",
        "path = 3;",          "widths = 16;",  "widths = [1.5, 2.5];",   "mean = [\"a\"];",
        "names = [1, 2];",    "blocks = { a = 1; };",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ct_settings *s;
        ck_assert_msg(parse(bad[k], &s) == CT_ERR_CONFIG, "accepted: %s", bad[k]);
        ck_assert_msg(strstr(err.msg, "must be a"), "%s -> %s", bad[k], err.msg);
    }
}
END_TEST

START_TEST(out_of_range_is_an_error) {
    static const char *bad[] = {"blocks = 0;", "blocks = 9;", "temperature = 0.0;",
                                "widths = [16, 0];", "mean = [0.5, 1.5];"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ct_settings *s;
        ck_assert_msg(parse(bad[k], &s) == CT_ERR_CONFIG, "accepted: %s", bad[k]);
        ck_assert_msg(strstr(err.msg, "out of range"), "%s -> %s", bad[k], err.msg);
    }
    ct_settings *s;
    parse("blocks = 9;", &s);
    ck_assert_ptr_nonnull(strstr(err.msg, "[1, 8]"));
}
END_TEST

START_TEST(bad_choice_is_an_error) {
    ct_settings *s;
    ck_assert_int_eq(parse("stem = \"imagenett\";", &s), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "not one of small|imagenet"));
    ck_assert_ptr_nonnull(strstr(err.msg, "did you mean 'imagenet'"));
}
END_TEST

START_TEST(required_missing_is_an_error) {
    ct_settings *s;
    ck_assert_int_eq(ct_settings_parse(required_spec, "", "idx", &s, &err), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "missing required parameter 'images'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "idx"));
    ck_assert_int_eq(ct_settings_parse(required_spec, "images = \"x\";", "idx", &s, &err), CT_OK);
    ck_assert_str_eq(ct_settings_string(s, "images"), "x");
    ct_settings_free(s);
}
END_TEST

START_TEST(errors_name_file_and_line) {
    const char *dir = ct_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/exp.cfg", dir);
    const char *text = "# a comment\nenc = {\n  type = \"x\";\n  blocks = 3;\n  bloks = 2;\n};\n";
    ck_assert_int_eq(ct_test_write_file(path, text, strlen(text)), 0);
    config_t c;
    config_init(&c);
    ck_assert(config_read_file(&c, path));
    const char *ignore[] = {"type", NULL};
    ct_settings *s;
    ck_assert_int_eq(ct_settings_from_config(spec, config_lookup(&c, "enc"), ignore, "encoder x", &s, &err),
                     CT_ERR_CONFIG);
    char want[600];
    snprintf(want, sizeof want, "%s:5: encoder x: unknown parameter 'bloks' (did you mean 'blocks'?)", path);
    ck_assert_str_eq(err.msg, want);
    /* Without the typo: the origin of a value is file:line. */
    config_setting_remove(config_lookup(&c, "enc"), "bloks");
    ck_assert_int_eq(ct_settings_from_config(spec, config_lookup(&c, "enc"), ignore, "encoder x", &s, &err),
                     CT_OK);
    snprintf(want, sizeof want, "%s:4", path);
    ck_assert_str_eq(ct_settings_origin(s, "blocks"), want);
    ct_settings_free(s);
    config_destroy(&c);
}
END_TEST

START_TEST(null_group_gives_defaults) {
    ct_settings *s;
    ck_assert_int_eq(ct_settings_from_config(spec, NULL, NULL, "x", &s, &err), CT_OK);
    ck_assert_int_eq(ct_settings_int(s, "blocks"), 2);
    ct_settings_free(s);
}
END_TEST

START_TEST(bad_default_is_a_plugin_bug) {
    static const ct_param_spec broken[] = {CT_PARAM_INT("n", "\"ten\"", 0, 10, "bad default"),
                                           CT_PARAM_END};
    static const ct_param_spec twice[] = {CT_PARAM_INT("n", "1", 0, 10, ""),
                                          CT_PARAM_INT("n", "1", 0, 10, ""), CT_PARAM_END};
    ct_settings *s;
    ck_assert_int_eq(ct_settings_parse(broken, "", "p", &s, &err), CT_ERR_PLUGIN);
    ck_assert_ptr_nonnull(strstr(err.msg, "default"));
    ck_assert_int_eq(ct_settings_parse(twice, "", "p", &s, &err), CT_ERR_PLUGIN);
    ck_assert_ptr_nonnull(strstr(err.msg, "declared twice"));
}
END_TEST

START_TEST(syntax_error_is_reported) {
    ct_settings *s;
    ck_assert_int_eq(parse("blocks = ;", &s), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "line 1"));
}
END_TEST

START_TEST(format_round_trips) {
    ct_settings *s, *t;
    ck_assert_int_eq(parse("temperature = 0.1; path = \"a \\\"q\\\" b\"; mean = [0.25, 1.0];", &s), CT_OK);
    size_t need = ct_settings_format(s, NULL, 0);
    char buf[2048] = "";
    ck_assert_uint_eq(ct_settings_format(s, buf, sizeof buf), need);
    ck_assert_ptr_nonnull(strstr(buf, "temperature = 0.1;\n"));
    ck_assert_ptr_nonnull(strstr(buf, "flip = true;\n"));
    ck_assert_int_eq(parse(buf, &t), CT_OK);
    ck_assert_str_eq(ct_settings_string(t, "path"), "a \"q\" b");
    ck_assert(ct_settings_float(t, "temperature") == 0.1);
    ck_assert(ct_settings_float_at(t, "mean", 1) == 1.0);
    /* Truncation reports the full length, like snprintf. */
    char small[16] = "";
    ck_assert_uint_eq(ct_settings_format(s, small, sizeof small), need);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
    ct_settings_free(s);
    ct_settings_free(t);
}
END_TEST

/* A plugin asking for a name its schema lacks is refused through a status
 * naming the owner and the key, never an abort; the accessor reads zero. */
START_TEST(undeclared_name_is_an_error) {
    ct_settings *s;
    ck_assert_int_eq(parse("", &s), CT_OK);
    ck_assert_int_eq(ct_settings_status(s, &err), CT_OK);
    ck_assert_int_eq(ct_settings_int(s, "no_such_parameter"), 0);
    ck_assert_str_eq(ct_settings_string(s, "no_such_string"), ""); /* a second misuse keeps the first */
    ck_assert_uint_eq(ct_settings_len(s, "no_such_list"), 0);
    ck_assert_int_eq(ct_settings_status(s, &err), CT_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "test: setting 'no_such_parameter' is not declared"));
    ct_settings_free(s);
}
END_TEST

START_TEST(wrong_accessor_type_is_an_error) {
    ct_settings *s;
    ck_assert_int_eq(parse("", &s), CT_OK);
    ck_assert_int_eq(ct_settings_int(s, "temperature"), 0);
    ck_assert_int_eq(ct_settings_status(s, &err), CT_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "'temperature' is a float, read as a int"));
    ct_settings_free(s);
}
END_TEST

START_TEST(list_index_past_the_end_is_an_error) {
    ct_settings *s;
    ck_assert_int_eq(parse("", &s), CT_OK);
    size_t n = ct_settings_len(s, "widths");
    ck_assert_int_eq(ct_settings_status(s, &err), CT_OK);
    ck_assert_int_eq(ct_settings_int_at(s, "widths", n), 0);
    ck_assert_int_eq(ct_settings_status(s, &err), CT_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "out of range"));
    ct_settings_free(s);
}
END_TEST

START_TEST(edit_distance_and_metrics) {
    ck_assert_int_eq(ct_edit_distance("", ""), 0);
    ck_assert_int_eq(ct_edit_distance("kitten", "sitting"), 3);
    ck_assert_int_eq(ct_edit_distance("temprature", "temperature"), 1);
    ck_assert_int_eq(ct_edit_distance("abc", ""), 3);
    ct_metrics m = {0};
    ck_assert_int_eq(ct_metrics_set(&m, "top1", 0.5), CT_OK);
    ck_assert_int_eq(ct_metrics_set(&m, "top1", 0.75), CT_OK);
    ck_assert_int_eq(m.n, 1);
    ck_assert_double_eq(m.value[0], 0.75);
    for (int k = 1; k < CT_METRICS_MAX; k++) {
        char name[16];
        snprintf(name, sizeof name, "m%d", k);
        ck_assert_int_eq(ct_metrics_set(&m, name, k), CT_OK);
    }
    ck_assert_int_eq(ct_metrics_set(&m, "one_too_many", 1), CT_ERR_INVALID);
    ck_assert_int_eq(ct_metrics_set(&m, "", 1), CT_ERR_INVALID);
}
END_TEST

int main(void) {
    Suite *s = suite_create("settings");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, defaults_fill_every_parameter);
    tcase_add_test(tc, values_are_read_with_their_line);
    tcase_add_test(tc, unknown_key_suggests_the_nearest);
    tcase_add_test(tc, unknown_key_far_from_all_lists_known);
    tcase_add_test(tc, wrong_type_is_an_error);
    tcase_add_test(tc, out_of_range_is_an_error);
    tcase_add_test(tc, bad_choice_is_an_error);
    tcase_add_test(tc, required_missing_is_an_error);
    tcase_add_test(tc, errors_name_file_and_line);
    tcase_add_test(tc, null_group_gives_defaults);
    tcase_add_test(tc, bad_default_is_a_plugin_bug);
    tcase_add_test(tc, syntax_error_is_reported);
    tcase_add_test(tc, format_round_trips);
    tcase_add_test(tc, undeclared_name_is_an_error);
    tcase_add_test(tc, wrong_accessor_type_is_an_error);
    tcase_add_test(tc, list_index_past_the_end_is_an_error);
    tcase_add_test(tc, edit_distance_and_metrics);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}
