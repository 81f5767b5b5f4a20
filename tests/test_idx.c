/* The idx source: valid files (raw and gzip), one corrupted file per
 * check, and the real Fashion-MNIST. The plugin is loaded from the build's
 * plugin folder (CONTRAST_PLUGIN_PATH). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ct_test.h"
#include "plugins/loader.h"

static ct_plugin_set *set;
static const ct_source_ops *idx;
static char dir[512];
static ct_error err;

static void setup(void) {
    ct_loader_opts o = {0};
    o.no_default_dirs = true;
    ck_assert_int_eq(ct_plugins_load(&o, &set, &err), CT_OK);
    const ct_registry_entry *e = ct_plugins_find(set, CT_ROLE_SOURCE, "idx");
    ck_assert_msg(e != NULL, "idx plugin not found on CONTRAST_PLUGIN_PATH");
    idx = e->ops.source;
    snprintf(dir, sizeof dir, "%s", ct_test_tmpdir());
}

static void teardown(void) { ct_plugins_free(set); }

/* Write bytes to dir/name, gzip-compressed when gz. Returns the path. */
static const char *put(const char *name, const void *data, size_t len, bool gz) {
    static char path[8][1024];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, 1024, "%s/%s", dir, name);
    if (!gz) {
        ck_assert_int_eq(ct_test_write_file(p, data, len), 0);
        return p;
    }
    gzFile f = gzopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    if (len) ck_assert_int_eq(gzwrite(f, data, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(f), Z_OK);
    return p;
}

/* 3 images of 2x2: image i has pixels i*100 + {0, 1, 2, 3}... then 255. */
static const uint8_t images3[] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                                  0, 1, 2, 255, 100, 101, 102, 255, 200, 201, 202, 255};
static const uint8_t labels3[] = {0, 0, 8, 1, 0, 0, 0, 3, 4, 0, 2};

static ct_status open_idx(const char *images, const char *labels, int limit, void **self) {
    char text[2600];
    snprintf(text, sizeof text, "images = \"%s\"; labels = \"%s\"; limit = %d;", images,
             labels ? labels : "", limit);
    ct_settings *s;
    ck_assert_int_eq(ct_settings_parse(idx->params, text, "idx", &s, &err), CT_OK);
    ct_error_clear(&err);
    *self = NULL;
    ct_status st = idx->create(s, NULL, self, &err);
    ct_settings_free(s);
    return st;
}

static void check_valid(bool gz) {
    const char *im = put(gz ? "im.gz" : "im", images3, sizeof images3, gz);
    const char *lb = put(gz ? "lb.gz" : "lb", labels3, sizeof labels3, gz);
    void *self;
    ck_assert_msg(open_idx(im, lb, 0, &self) == CT_OK, "%s", err.msg);
    ct_source_info info;
    idx->info(self, &info);
    ck_assert_int_eq(info.count, 3);
    ck_assert_int_eq(info.channels, 1);
    ck_assert_int_eq(info.height, 2);
    ck_assert_int_eq(info.width, 2);
    ck_assert_int_eq(info.num_classes, 5);
    ck_assert(info.has_labels);
    ck_assert_str_eq(info.summary, "3 images 1x2x2, 5 classes");
    ct_image img = CT_IMAGE_INIT;
    int32_t label = 99;
    ck_assert_int_eq(idx->get(self, 1, &img, &label, &err), CT_OK);
    ck_assert_int_eq(label, 0);
    ck_assert_int_eq(img.t * img.c * img.h * img.w, 4);
    ck_assert_float_eq_tol(img.data[0], 100.0f / 255.0f, 1e-7f);
    ck_assert_float_eq(img.data[3], 1.0f);
    ck_assert_int_eq(idx->get(self, 2, &img, &label, &err), CT_OK);
    ck_assert_int_eq(label, 2);
    ck_assert_int_ne(idx->get(self, 3, &img, &label, &err), CT_OK);
    ct_image_free(&img);
    idx->destroy(self);
}

START_TEST(valid_raw_file) { check_valid(false); }
END_TEST

START_TEST(valid_gzip_file) { check_valid(true); }
END_TEST

START_TEST(limit_and_no_labels) {
    const char *im = put("im", images3, sizeof images3, false);
    void *self;
    ck_assert_int_eq(open_idx(im, NULL, 2, &self), CT_OK);
    ct_source_info info;
    idx->info(self, &info);
    ck_assert_int_eq(info.count, 2);
    ck_assert(!info.has_labels);
    ck_assert_int_eq(info.num_classes, 0);
    ct_image img = CT_IMAGE_INIT;
    int32_t label = 7;
    ck_assert_int_eq(idx->get(self, 1, &img, &label, &err), CT_OK);
    ck_assert_int_eq(label, -1);
    ck_assert_int_ne(idx->get(self, 2, &img, &label, &err), CT_OK);
    ct_image_free(&img);
    idx->destroy(self);
}
END_TEST

/* One corrupted images file per check, raw (_i even) and gzip (_i odd). */
static const struct {
    const char *what;
    uint8_t bytes[32];
    size_t len;
    const char *want[2];
} corrupt[] = {
    {"bad magic", {1, 2, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 7}, 17, {"bad magic", NULL}},
    {"float dtype", {0, 0, 0x0D, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0}, 20,
     {"0x0d (float) is not supported", "only 0x08"}},
    {"truncated data", {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
     26, {"truncated", "declares 12 bytes of data, the file has 10"}},
    {"truncated header", {0, 0, 8, 3, 0, 0, 0, 3, 0, 0}, 10, {"truncated header", NULL}},
    {"too long", {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 5, 6}, 18, {"longer than its header", NULL}},
    {"labels as images", {0, 0, 8, 1, 0, 0, 0, 2, 1, 1}, 10, {"1 dimensions, expected 3..4", NULL}},
    {"zero dimension", {0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2}, 16, {"dimension 0 is 0", NULL}},
    {"empty file", {0}, 0, {"empty file", NULL}},
};
#define N_CORRUPT (sizeof corrupt / sizeof corrupt[0])

START_TEST(corrupted_file_is_refused_naming_it) {
    int which = _i / 2;
    bool gz = _i % 2;
    const char *im = put(gz ? "bad.gz" : "bad", corrupt[which].bytes, corrupt[which].len, gz);
    void *self;
    ct_status st = open_idx(im, NULL, 0, &self);
    ck_assert_msg(st != CT_OK, "%s (%s) accepted", corrupt[which].what, gz ? "gz" : "raw");
    ck_assert_ptr_null(self);
    ck_assert_msg(strstr(err.msg, im), "message '%s' does not name %s", err.msg, im);
    for (int k = 0; k < 2 && corrupt[which].want[k]; k++)
        ck_assert_msg(strstr(err.msg, corrupt[which].want[k]), "%s: '%s' lacks '%s'",
                      corrupt[which].what, err.msg, corrupt[which].want[k]);
}
END_TEST

START_TEST(label_count_must_match) {
    const uint8_t two_labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 1};
    const char *im = put("im", images3, sizeof images3, false);
    const char *lb = put("lb", two_labels, sizeof two_labels, false);
    void *self;
    ck_assert_int_eq(open_idx(im, lb, 0, &self), CT_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "2 labels for 3 images"));
    ck_assert_ptr_nonnull(strstr(err.msg, lb));
}
END_TEST

START_TEST(cut_gzip_stream_is_refused) {
    /* Compress a valid file, then keep only part of the compressed bytes. */
    uint8_t big[16 + 64 * 64];
    memcpy(big, (const uint8_t[]){0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 64, 0, 0, 0, 64}, 16);
    for (size_t k = 16; k < sizeof big; k++) big[k] = (uint8_t)(k * 2654435761u >> 13);
    const char *full = put("full.gz", big, sizeof big, true);
    FILE *f = fopen(full, "rb");
    uint8_t z[8192];
    size_t n = fread(z, 1, sizeof z, f);
    fclose(f);
    const char *cut = put("cut.gz", z, n / 2, false);
    void *self;
    ck_assert_int_ne(open_idx(cut, NULL, 0, &self), CT_OK);
    ck_assert_ptr_nonnull(strstr(err.msg, cut));
}
END_TEST

/* The 263-byte file: a header declaring 200000 images of 256x256
 * (13 GB) and 247 bytes of data. It is refused as truncated without
 * allocating what the header declares: under a 4 GB address-space cap, a
 * reader that allocated first fails with out-of-memory instead. Raw and
 * gzip (_i). */
START_TEST(lying_header_allocates_nothing_big) {
    bool gz = _i;
    uint8_t f[263] = {0, 0, 8, 3, 0, 0x03, 0x0d, 0x40, 0, 0, 1, 0, 0, 0, 1, 0};
    for (size_t k = 16; k < sizeof f; k++) f[k] = (uint8_t)k;
    const char *im = put(gz ? "lie.gz" : "lie", f, sizeof f, gz);
    bool capped = ct_test_limit_memory((size_t)4 << 30);
    void *self;
    ck_assert_int_eq(open_idx(im, NULL, 0, &self), CT_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "truncated: the header declares 13107200000 bytes of data, the file has 247"),
                  "%s (capped: %d)", err.msg, capped);
    ck_assert_ptr_nonnull(strstr(err.msg, im));
}
END_TEST

/* A header declaring more than max_mb is refused naming the setting. */
START_TEST(header_over_max_mb_is_refused) {
    const uint8_t f[] = {0, 0, 8, 3, 0, 0, 0x10, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 2, 3};
    const char *im = put("big", f, sizeof f, false);
    char text[1200];
    snprintf(text, sizeof text, "images = \"%s\"; max_mb = 255;", im);
    ct_settings *s;
    ck_assert_int_eq(ct_settings_parse(idx->params, text, "idx", &s, &err), CT_OK);
    void *self = NULL;
    ck_assert_int_eq(idx->create(s, NULL, &self, &err), CT_ERR_FORMAT);
    ct_settings_free(s);
    ck_assert_msg(strstr(err.msg, "more than max_mb = 255 MB"), "%s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, im));
}
END_TEST

/* An image dimension over 65535 would not fit the int sizes downstream. */
START_TEST(huge_image_side_is_refused) {
    const uint8_t f[] = {0, 0, 8, 3, 0, 0, 0, 1, 0x80, 0, 0, 0, 0, 0, 0, 1, 7};
    const char *im = put("wide", f, sizeof f, false);
    void *self;
    ck_assert_int_eq(open_idx(im, NULL, 0, &self), CT_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "dimension 1 is 2147483648, over 65535"), "%s", err.msg);
}
END_TEST

START_TEST(missing_file_is_refused) {
    void *self;
    ck_assert_int_eq(open_idx("/nonexistent/images.gz", NULL, 0, &self), CT_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/images.gz"));
}
END_TEST

START_TEST(fashion_mnist_loads) {
    const char *root = "/usr/share/datasets/fashion-mnist";
    char im[256], lb[256];
    snprintf(im, sizeof im, "%s/train-images-idx3-ubyte.gz", root);
    snprintf(lb, sizeof lb, "%s/train-labels-idx1-ubyte.gz", root);
    void *self;
    ck_assert_msg(open_idx(im, lb, 0, &self) == CT_OK, "%s", err.msg);
    ct_source_info info;
    idx->info(self, &info);
    ck_assert_int_eq(info.count, 60000);
    ck_assert_int_eq(info.channels, 1);
    ck_assert_int_eq(info.height, 28);
    ck_assert_int_eq(info.width, 28);
    ck_assert_int_eq(info.num_classes, 10);
    ct_image img = CT_IMAGE_INIT;
    int32_t label;
    ck_assert_int_eq(idx->get(self, 0, &img, &label, &err), CT_OK);
    ck_assert_int_eq(label, 9); /* the first training item is an ankle boot */
    float lo = 1, hi = 0;
    for (int k = 0; k < 28 * 28; k++) {
        if (img.data[k] < lo) lo = img.data[k];
        if (img.data[k] > hi) hi = img.data[k];
    }
    ck_assert(lo >= 0.0f && hi <= 1.0f && hi > 0.5f);
    ct_image_free(&img);
    idx->destroy(self);
    snprintf(im, sizeof im, "%s/t10k-images-idx3-ubyte.gz", root);
    snprintf(lb, sizeof lb, "%s/t10k-labels-idx1-ubyte.gz", root);
    ck_assert_msg(open_idx(im, lb, 0, &self) == CT_OK, "%s", err.msg);
    idx->info(self, &info);
    ck_assert_int_eq(info.count, 10000);
    idx->destroy(self);
}
END_TEST

int main(void) {
    Suite *s = suite_create("idx");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, valid_raw_file);
    tcase_add_test(tc, valid_gzip_file);
    tcase_add_test(tc, limit_and_no_labels);
    tcase_add_loop_test(tc, corrupted_file_is_refused_naming_it, 0, (int)(2 * N_CORRUPT));
    tcase_add_test(tc, label_count_must_match);
    tcase_add_test(tc, cut_gzip_stream_is_refused);
    tcase_add_loop_test(tc, lying_header_allocates_nothing_big, 0, 2);
    tcase_add_test(tc, header_over_max_mb_is_refused);
    tcase_add_test(tc, huge_image_side_is_refused);
    tcase_add_test(tc, missing_file_is_refused);
    tcase_add_test(tc, fashion_mnist_loads);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}
