/* The SDK's safetensors reader (contrast/safetensors.h) on files written by
 * the host's checkpoint writer: round trip, loading into a store, and
 * strict refusal of malformed files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "training/checkpoint.h"
#include "contrast/safetensors.h"
#include "ct_test.h"

static char g_path[512];

/* Two tensors "a.w" (2x3) and "a.b" (3), one U8 extra, and metadata. */
static void write_sample(void) {
    static const float w[6] = {1, 2, 3, 4, 5, 6}, b[3] = {-1, 0.5f, 7};
    static const unsigned char extra[4] = {1, 2, 3, 4};
    ct_safetensors_tensor t[3] = {{"a.w", CT_SAFETENSORS_F32, 2, {2, 3}, w, sizeof w},
                         {"a.b", CT_SAFETENSORS_F32, 1, {3}, b, sizeof b},
                         {"other", CT_SAFETENSORS_U8, 1, {4}, extra, sizeof extra}};
    ct_st_meta m[1] = {{"config", "name = \"x\";\n"}};
    snprintf(g_path, sizeof g_path, "%s/s.safetensors", ct_test_tmpdir());
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_safetensors_write(g_path, t, 3, m, 1, &err) == CT_OK, "%s", err.msg);
}

static ct_params *store_with(int64_t w_cols) {
    ct_params *p = ct_params_new(0);
    int64_t ws[2] = {2, w_cols}, bs[1] = {3};
    ck_assert_ptr_nonnull(ct_params_add(p, "a.w", CT_PARAM_TRAINABLE, 2, ws, CT_INIT_ZEROS, 0, 0, NULL));
    ck_assert_ptr_nonnull(ct_params_add(p, "a.b", CT_PARAM_BUFFER, 1, bs, CT_INIT_ZEROS, 0, 0, NULL));
    ck_assert_int_eq(ct_params_finalize(p, NULL), CT_OK);
    return p;
}

START_TEST(round_trip_and_load) {
    write_sample();
    ct_safetensors *f = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_safetensors_open(g_path, &f, &err) == CT_OK, "%s", err.msg);
    ck_assert_uint_eq(ct_safetensors_count(f), 3);
    ck_assert_str_eq(ct_safetensors_meta(f, "config"), "name = \"x\";\n");
    ck_assert_ptr_null(ct_safetensors_meta(f, "nope"));
    const ct_safetensors_tensor *o = ct_safetensors_find(f, "other");
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(o->dtype, CT_SAFETENSORS_U8);
    ck_assert_uint_eq(o->nbytes, 4);
    ct_params *p = store_with(3);
    size_t unused = 0;
    ck_assert_msg(ct_safetensors_load_params(f, p, &unused, &err) == CT_OK, "%s", err.msg);
    ck_assert_uint_eq(unused, 1);
    ck_assert_float_eq(ct_params_find(p, "a.w")->data[5], 6.0f);
    ck_assert_float_eq(ct_params_find(p, "a.b")->data[1], 0.5f);
    ct_params_free(p);
    /* A store whose shape differs: refused, naming the tensor. */
    p = store_with(4);
    ck_assert_int_eq(ct_safetensors_load_params(f, p, NULL, &err), CT_ERR_SHAPE);
    ck_assert_msg(strstr(err.msg, "a.w") && strstr(err.msg, "[2, 3]"), "%s", err.msg);
    /* Nothing was copied, not even the entry that matched. */
    ck_assert_float_eq(ct_params_find(p, "a.b")->data[1], 0.0f);
    ct_params_free(p);
    ct_safetensors_close(f);
}
END_TEST

START_TEST(exact_load_refuses_stray_tensors) {
    write_sample();
    ct_safetensors *f = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_safetensors_open(g_path, &f, &err), CT_OK);
    ck_assert_str_eq(ct_safetensors_path(f), g_path);
    ct_params *p = store_with(3);
    ck_assert_int_eq(ct_safetensors_load_params_exact(f, p, &err), CT_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "unknown tensor 'other'") && strstr(err.msg, g_path), "%s", err.msg);
    ck_assert_float_eq(ct_params_find(p, "a.w")->data[5], 0.0f);
    /* A store declaring every tensor of the file loads. */
    ct_params *q = ct_params_new(0);
    int64_t ws[2] = {2, 3}, bs[1] = {3};
    ct_params_add(q, "a.w", CT_PARAM_TRAINABLE, 2, ws, CT_INIT_ZEROS, 0, 0, NULL);
    ct_params_add(q, "a.b", CT_PARAM_TRAINABLE, 1, bs, CT_INIT_ZEROS, 0, 0, NULL);
    ck_assert_int_eq(ct_params_finalize(q, NULL), CT_OK);
    ct_safetensors_close(f);
    ct_safetensors_tensor t[2] = {{"a.w", CT_SAFETENSORS_F32, 2, {2, 3}, ct_params_find(p, "a.w")->data, 24},
                                  {"a.b", CT_SAFETENSORS_F32, 1, {3}, ct_params_find(p, "a.b")->data, 12}};
    ct_params_find(p, "a.b")->data[2] = 9.0f;
    ck_assert_int_eq(ct_safetensors_write(g_path, t, 2, NULL, 0, &err), CT_OK);
    ck_assert_int_eq(ct_safetensors_open(g_path, &f, &err), CT_OK);
    ck_assert_uint_eq(ct_safetensors_meta_count(f), 0);
    ck_assert_msg(ct_safetensors_load_params_exact(f, q, &err) == CT_OK, "%s", err.msg);
    ck_assert_float_eq(ct_params_find(q, "a.b")->data[2], 9.0f);
    ct_safetensors_close(f);
    ct_params_free(p);
    ct_params_free(q);
}
END_TEST

START_TEST(missing_tensor_is_named) {
    write_sample();
    ct_safetensors *f = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_safetensors_open(g_path, &f, &err), CT_OK);
    ct_params *p = ct_params_new(0);
    int64_t s[1] = {3};
    ct_params_add(p, "a.missing", CT_PARAM_TRAINABLE, 1, s, CT_INIT_ZEROS, 0, 0, NULL);
    ct_params_finalize(p, NULL);
    ck_assert_int_eq(ct_safetensors_load_params(f, p, NULL, &err), CT_ERR_NOT_FOUND);
    ck_assert_msg(strstr(err.msg, "a.missing") && strstr(err.msg, g_path), "%s", err.msg);
    ct_params_free(p);
    ct_safetensors_close(f);
}
END_TEST

/* Write a file made of a header text and `data` bytes of zeros; its path. */
static const char *write_raw(const char *header, size_t data) {
    static char path[512];
    size_t h = strlen(header), n = 8 + h + data;
    unsigned char *buf = calloc(1, n);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    snprintf(path, sizeof path, "%s/raw.safetensors", ct_test_tmpdir());
    ck_assert_int_eq(ct_test_write_file(path, buf, n), 0);
    free(buf);
    return path;
}

static ct_status open_raw(const char *header, size_t data, ct_error *err) {
    ct_safetensors *f = NULL;
    ct_status st = ct_safetensors_open(write_raw(header, data), &f, err);
    ct_safetensors_close(f);
    return st;
}

/* Escapes decode to UTF-8, surrogate pairs included. */
START_TEST(unicode_escapes_decode) {
    const char *path = write_raw("{\"__metadata__\":{\"k\":\"\\u00e9\\ud83d\\ude00\\n\"}}", 0);
    ct_safetensors *f = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_safetensors_open(path, &f, &err) == CT_OK, "%s", err.msg);
    ck_assert_str_eq(ct_safetensors_meta(f, "k"), "\xc3\xa9\xf0\x9f\x98\x80\n");
    ck_assert_uint_eq(ct_safetensors_count(f), 0);
    ct_safetensors_close(f);
}
END_TEST

START_TEST(malformed_files_are_refused) {
    static const struct {
        const char *header;
        size_t data;
        const char *why;
    } bad[] = {
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "outside"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "shape needs 12"},
        {"{\"t\":{\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"u\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 8, "overlaps"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "cover"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "duplicate"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, "missing data_offsets"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "expected"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "unsigned"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, "fraction"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate __metadata__"},
        {"{\"__metadata__\":{\"k\":\"\\ud83d\"}}", 0, "unpaired surrogate"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "unused bytes"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ct_error err = CT_ERROR_INIT;
        ck_assert_msg(open_raw(bad[k].header, bad[k].data, &err) == CT_ERR_FORMAT, "case %zu accepted", k);
        ck_assert_msg(strstr(err.msg, bad[k].why), "case %zu: want \"%s\" in \"%s\"", k, bad[k].why, err.msg);
    }
    /* A header length beyond the file. */
    char path[512];
    snprintf(path, sizeof path, "%s/long.safetensors", ct_test_tmpdir());
    unsigned char len[12] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    ck_assert_int_eq(ct_test_write_file(path, len, sizeof len), 0);
    ct_safetensors *f = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_safetensors_open(path, &f, &err), CT_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "header length"), "%s", err.msg);
    ck_assert_int_eq(ct_safetensors_open("/nonexistent/x.safetensors", &f, &err), CT_ERR_IO);
}
END_TEST

int main(void) {
    Suite *s = suite_create("sdk_safetensors");
    TCase *tc = tcase_create("reader");
    tcase_add_test(tc, round_trip_and_load);
    tcase_add_test(tc, missing_tensor_is_named);
    tcase_add_test(tc, malformed_files_are_refused);
    tcase_add_test(tc, exact_load_refuses_stray_tensors);
    tcase_add_test(tc, unicode_escapes_decode);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}
