/* The imagefolder source: PNG files written by the test (libpng), small
 * JPEGs embedded below, and broken files of every kind. */
#include <png.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ct_data_test.h"
#include "ct_test.h"

/* 8x6 RGB and 5x4 gray (value 128) JPEGs, quality 95 (made with PIL). */
static const unsigned char rgb_jpg[680] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x02, 0x01, 0x01, 0x01, 0x01, 0x01, 0x02,
    0x01, 0x01, 0x01, 0x02, 0x02, 0x02, 0x02, 0x02, 0x04, 0x03, 0x02, 0x02, 0x02, 0x02, 0x05, 0x04,
    0x04, 0x03, 0x04, 0x06, 0x05, 0x06, 0x06, 0x06, 0x05, 0x06, 0x06, 0x06, 0x07, 0x09, 0x08, 0x06,
    0x07, 0x09, 0x07, 0x06, 0x06, 0x08, 0x0b, 0x08, 0x09, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x06, 0x08,
    0x0b, 0x0c, 0x0b, 0x0a, 0x0c, 0x09, 0x0a, 0x0a, 0x0a, 0xff, 0xdb, 0x00, 0x43, 0x01, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x05, 0x03, 0x03, 0x05, 0x0a, 0x07, 0x06, 0x07, 0x0a, 0x0a, 0x0a, 0x0a,
    0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
    0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
    0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0xff, 0xc0,
    0x00, 0x11, 0x08, 0x00, 0x06, 0x00, 0x08, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11,
    0x01, 0xff, 0xc4, 0x00, 0x1f, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
    0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5, 0x10, 0x00, 0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05,
    0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d, 0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21,
    0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23,
    0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a,
    0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a,
    0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
    0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
    0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
    0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5,
    0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1,
    0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xff, 0xc4, 0x00, 0x1f, 0x01, 0x00, 0x03,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5, 0x11, 0x00,
    0x02, 0x01, 0x02, 0x04, 0x04, 0x03, 0x04, 0x07, 0x05, 0x04, 0x04, 0x00, 0x01, 0x02, 0x77, 0x00,
    0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13,
    0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15,
    0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27,
    0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88,
    0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6,
    0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4,
    0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9,
    0xfa, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00, 0x6f,
    0xec, 0xb7, 0xff, 0x00, 0x04, 0xb0, 0xf8, 0x6b, 0xfe, 0x8d, 0xfb, 0xcb, 0x3e, 0xdf, 0xf2, 0xc8,
    0xff, 0x00, 0x85, 0x14, 0x51, 0x5f, 0xaf, 0xf1, 0x57, 0x1a, 0x71, 0x57, 0xf6, 0xbc, 0xff, 0x00,
    0xda, 0xe7, 0xf7, 0xaf, 0xf2, 0x17, 0x80, 0x9e, 0x21, 0x71, 0xaf, 0xfc, 0x43, 0xcc, 0x3f, 0xfb,
    0x74, 0xfe, 0xf5, 0xd9, 0x79, 0x1f, 0xff, 0xd9,
};
static const unsigned char gray_jpg[331] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x02, 0x01, 0x01, 0x01, 0x01, 0x01, 0x02,
    0x01, 0x01, 0x01, 0x02, 0x02, 0x02, 0x02, 0x02, 0x04, 0x03, 0x02, 0x02, 0x02, 0x02, 0x05, 0x04,
    0x04, 0x03, 0x04, 0x06, 0x05, 0x06, 0x06, 0x06, 0x05, 0x06, 0x06, 0x06, 0x07, 0x09, 0x08, 0x06,
    0x07, 0x09, 0x07, 0x06, 0x06, 0x08, 0x0b, 0x08, 0x09, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x06, 0x08,
    0x0b, 0x0c, 0x0b, 0x0a, 0x0c, 0x09, 0x0a, 0x0a, 0x0a, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x04,
    0x00, 0x05, 0x01, 0x01, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x1f, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04,
    0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0xff, 0xc4, 0x00, 0xb5, 0x10, 0x00, 0x02, 0x01, 0x03,
    0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d, 0x01, 0x02, 0x03, 0x00,
    0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32,
    0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72,
    0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35,
    0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55,
    0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75,
    0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2,
    0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9,
    0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6,
    0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xff, 0xda,
    0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x2b, 0xff, 0xd9,
};

static ct_registry *reg;
static char root[512];

static void setup(void) {
    reg = ct_registry_new();
    dt_load_plugin(reg, "imagefolder");
    const char *t = ct_test_tmpdir();
    ck_assert_ptr_nonnull(t);
    snprintf(root, sizeof root, "%s", t);
}

static void teardown(void) { ct_registry_free(reg); }

static void path_of(char *out, size_t n, const char *rel) { snprintf(out, n, "%s/%s", root, rel); }

static void make_dir(const char *rel) {
    char p[700];
    path_of(p, sizeof p, rel);
    ck_assert_int_eq(mkdir(p, 0755), 0);
}

/* A w x h PNG with c channels; pixel (x, y, k) = (base + 10x + 20y + 60k) % 256. */
static void write_png(const char *rel, int w, int h, int c, int base) {
    unsigned char *px = malloc((size_t)w * h * c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) px[(y * w + x) * c + k] = (unsigned char)((base + 10 * x + 20 * y + 60 * k) % 256);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    char p[700];
    path_of(p, sizeof p, rel);
    ck_assert_msg(png_image_write_to_file(&img, p, 0, px, 0, NULL), "write %s: %s", p, img.message);
    free(px);
}

static void write_bytes(const char *rel, const void *data, size_t n) {
    char p[700];
    path_of(p, sizeof p, rel);
    ck_assert_int_eq(ct_test_write_file(p, data, n), 0);
}

/* Keep only the first `keep` bytes of a file. */
static void truncate_file(const char *rel, long keep) {
    char p[700];
    path_of(p, sizeof p, rel);
    ck_assert_int_eq(truncate(p, keep), 0);
}

static ct_status open_folder(const char *extra, ct_dataset *d, ct_error *err) {
    char cfg[2000];
    snprintf(cfg, sizeof cfg, "root = \"%s\"; %s", root, extra);
    return dt_dataset(reg, "imagefolder", cfg, d, err);
}

static void expect_error(const char *extra, ct_status want, const char *needle1, const char *needle2) {
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(open_folder(extra, &d, &err), want);
    ck_assert_msg(strstr(err.msg, needle1) != NULL, "'%s' not in: %s", needle1, err.msg);
    if (needle2) ck_assert_msg(strstr(err.msg, needle2) != NULL, "'%s' not in: %s", needle2, err.msg);
}

START_TEST(class_folders_png_and_jpeg) {
    make_dir("cat");
    make_dir("dog");
    write_png("cat/a.png", 8, 6, 3, 0);
    write_png("cat/b.png", 8, 6, 1, 5);
    write_png("dog/c.png", 8, 6, 3, 100);
    write_bytes("dog/d.jpg", rgb_jpg, sizeof rgb_jpg);
    write_bytes("README", "not a class", 11); /* files in a class-layout root are ignored */
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(open_folder("", &d, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(d.info.count, 4);
    ck_assert_int_eq(d.info.num_classes, 2);
    ck_assert(d.info.has_labels);
    ck_assert_int_eq(d.info.channels, 3);
    ck_assert_int_eq(d.info.height, 6);
    ck_assert_int_eq(d.info.width, 8);
    ct_image img = CT_IMAGE_INIT;
    int32_t label;
    const int32_t want_labels[4] = {0, 0, 1, 1};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(d.ops->get(d.self, i, &img, &label, &err), CT_OK);
        ck_assert_int_eq(label, want_labels[i]);
        ck_assert_int_eq(img.c, 3);
    }
    /* a.png pixel (x=2, y=1): 40 + k*60, planar. */
    d.ops->get(d.self, 0, &img, &label, &err);
    ck_assert_float_eq_tol(img.data[1 * 8 + 2], 40.0f / 255.0f, 1e-7f);
    ck_assert_float_eq_tol(img.data[48 + 1 * 8 + 2], 100.0f / 255.0f, 1e-7f);
    ck_assert_float_eq_tol(img.data[96 + 1 * 8 + 2], 160.0f / 255.0f, 1e-7f);
    /* b.png is gray: replicated into three equal channels. */
    d.ops->get(d.self, 1, &img, &label, &err);
    ck_assert_float_eq(img.data[9], img.data[48 + 9]);
    ck_assert_float_eq_tol(img.data[0], 5.0f / 255.0f, 1e-7f);
    /* The JPEG is bluish: blue clearly above red at (0, 0). */
    d.ops->get(d.self, 3, &img, &label, &err);
    ck_assert_float_gt(img.data[96], 0.6f);
    ck_assert_float_lt(img.data[0], 0.1f);
    ct_image_free(&img);
    dt_dataset_free(&d);
}
END_TEST

START_TEST(flat_folder_without_labels) {
    write_png("x.png", 5, 4, 1, 0);
    write_bytes("y.jpg", gray_jpg, sizeof gray_jpg);
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(open_folder("", &d, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(d.info.count, 2);
    ck_assert(!d.info.has_labels);
    ck_assert_int_eq(d.info.channels, 1);
    ct_image img = CT_IMAGE_INIT;
    int32_t label = 7;
    ck_assert_int_eq(d.ops->get(d.self, 1, &img, &label, &err), CT_OK);
    ck_assert_int_eq(label, -1);
    ck_assert_int_eq(img.c, 1);
    ck_assert_int_eq(img.h, 4);
    ck_assert_int_eq(img.w, 5);
    ck_assert_float_eq_tol(img.data[7], 128.0f / 255.0f, 2.5f / 255.0f);
    ct_image_free(&img);
    dt_dataset_free(&d);
}
END_TEST

START_TEST(resize_cache_and_channels) {
    write_png("a.png", 16, 12, 3, 0);
    write_png("b.png", 7, 9, 3, 50);
    ct_dataset plain, cached, gray;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(open_folder("size = [6, 8];", &plain, &err) == CT_OK, "%s", err.msg);
    ck_assert_msg(open_folder("size = [6, 8]; cache = true;", &cached, &err) == CT_OK, "%s", err.msg);
    ck_assert_msg(open_folder("size = [6, 8]; channels = 1;", &gray, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(plain.info.height, 6);
    ck_assert_int_eq(plain.info.width, 8);
    ct_image a = CT_IMAGE_INIT, b = CT_IMAGE_INIT, g = CT_IMAGE_INIT;
    int32_t label;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(plain.ops->get(plain.self, i, &a, &label, &err), CT_OK);
        ck_assert_int_eq(cached.ops->get(cached.self, i, &b, &label, &err), CT_OK);
        ck_assert_int_eq(a.h, 6);
        ck_assert_int_eq(a.w, 8);
        ck_assert_int_eq(memcmp(a.data, b.data, ct_image_numel(&a) * sizeof(float)), 0);
        ck_assert_int_eq(gray.ops->get(gray.self, i, &g, &label, &err), CT_OK);
        ck_assert_int_eq(g.c, 1);
        float luma = 0.299f * a.data[10] + 0.587f * a.data[48 + 10] + 0.114f * a.data[96 + 10];
        ck_assert_float_eq_tol(g.data[10], luma, 3.0f / 255.0f);
    }
    /* Without resizing, sizes differ: the dataset says so with 0. */
    ct_dataset mixed;
    ck_assert_msg(open_folder("", &mixed, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(mixed.info.height, 0);
    ct_image_free(&a);
    ct_image_free(&b);
    ct_image_free(&g);
    dt_dataset_free(&plain);
    dt_dataset_free(&cached);
    dt_dataset_free(&gray);
    dt_dataset_free(&mixed);
}
END_TEST

START_TEST(truncated_files_are_named) {
    make_dir("c");
    write_png("c/good.png", 8, 8, 3, 0);
    write_png("c/cut.png", 32, 32, 3, 0);
    truncate_file("c/cut.png", 60);
    expect_error("", CT_ERR_FORMAT, "c/cut.png", "PNG");
    char p[700];
    path_of(p, sizeof p, "c/cut.png");
    ck_assert_int_eq(remove(p), 0);
    write_bytes("c/cut.jpg", rgb_jpg, sizeof rgb_jpg / 2);
    expect_error("", CT_ERR_FORMAT, "c/cut.jpg", "JPEG");
}
END_TEST

START_TEST(corrupted_and_empty_files_are_named) {
    write_png("bad.png", 16, 16, 3, 0);
    char p[700];
    path_of(p, sizeof p, "bad.png");
    FILE *f = fopen(p, "r+b");
    fseek(f, 60, SEEK_SET); /* inside the image data: CRC mismatch */
    fputc(0x5a, f);
    fputc(0xa5, f);
    fclose(f);
    expect_error("", CT_ERR_FORMAT, "bad.png", NULL);
    ck_assert_int_eq(remove(p), 0);
    write_bytes("empty.png", "", 0);
    expect_error("", CT_ERR_FORMAT, "empty.png", "empty");
}
END_TEST

START_TEST(non_image_file_is_named) {
    make_dir("k");
    write_png("k/a.png", 4, 4, 1, 0);
    write_bytes("k/notes.txt", "hello, not an image\n", 20);
    expect_error("", CT_ERR_FORMAT, "k/notes.txt", "not a PNG or JPEG");
}
END_TEST

START_TEST(skip_bad_counts_skipped_files) {
    write_png("a.png", 4, 4, 1, 0);
    write_png("b.png", 4, 4, 1, 9);
    write_bytes("c.txt", "text", 4);
    write_bytes("d.png", "", 0);
    write_bytes("e.jpg", gray_jpg, 100);
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(open_folder("skip_bad = true;", &d, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(d.info.count, 2);
    const int64_t *skipped = d.ops->extension(d.self, "imagefolder.skipped");
    ck_assert_ptr_nonnull(skipped);
    ck_assert_int_eq(*skipped, 3);
    ck_assert_ptr_nonnull(strstr(d.info.summary, "3 skipped"));
    dt_dataset_free(&d);
    /* Nothing good left: an error, not an empty dataset. */
    char p[700];
    path_of(p, sizeof p, "a.png");
    remove(p);
    path_of(p, sizeof p, "b.png");
    remove(p);
    expect_error("skip_bad = true;", CT_ERR_NOT_FOUND, root, "skipped");
}
END_TEST

START_TEST(header_only_open_reports_at_read) {
    write_png("a.png", 4, 4, 1, 0);
    write_png("b.png", 64, 64, 3, 0);
    truncate_file("b.png", 80); /* header intact, data cut */
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(open_folder("verify = false;", &d, &err) == CT_OK, "%s", err.msg);
    ct_image img = CT_IMAGE_INIT;
    int32_t label;
    ck_assert_int_eq(d.ops->get(d.self, 0, &img, &label, &err), CT_OK);
    ck_assert_int_eq(d.ops->get(d.self, 1, &img, &label, &err), CT_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "b.png"));
    ct_image_free(&img);
    dt_dataset_free(&d);
}
END_TEST

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* gray_jpg with the frame header (SOF0) declaring w x h. */
static void write_jpeg_claiming(const char *rel, int w, int h) {
    unsigned char j[sizeof gray_jpg];
    memcpy(j, gray_jpg, sizeof j);
    size_t k = 0;
    while (k + 9 < sizeof j && !(j[k] == 0xff && j[k + 1] == 0xc0)) k++;
    ck_assert_uint_lt(k + 9, sizeof j);
    j[k + 5] = (unsigned char)(h >> 8), j[k + 6] = (unsigned char)h;
    j[k + 7] = (unsigned char)(w >> 8), j[k + 8] = (unsigned char)w;
    write_bytes(rel, j, sizeof j);
}

/* The decompression bomb: a few hundred bytes of JPEG declaring
 * 2313 x 64775 pixels (150 megapixels) is refused from its header, before
 * anything is decoded, whether the folder is verified or only sized up
 * (as `contrast check` opens it with verify = false). */
START_TEST(decompression_bomb_refused_before_decoding) {
    write_png("a.png", 4, 4, 1, 0);
    write_jpeg_claiming("bomb.jpg", 2313, 64775);
    for (int verify = 1; verify >= 0; verify--) {
        double t0 = now_s();
        expect_error(verify ? "" : "verify = false;", CT_ERR_FORMAT, "bomb.jpg",
                     "header declares 2313x64775 = 149824575 pixels, over max_pixels = 100000000");
        double dt = now_s() - t0;
        ck_assert_msg(dt < 1.0, "refusing took %.2f s", dt);
    }
}
END_TEST

/* `contrast check` refuses the bomb too, naming the file and the setting. */
START_TEST(check_refuses_the_bomb) {
    make_dir("imgs");
    write_png("imgs/a.png", 4, 4, 1, 0);
    write_jpeg_claiming("imgs/bomb.jpg", 2313, 64775);
    char cfg[700], text[1600], cmd[4096], out[8192];
    path_of(cfg, sizeof cfg, "bomb.cfg");
    snprintf(text, sizeof text, "data = { train = { type = \"imagefolder\"; root = \"%s/imgs\"; verify = false; }; };\n",
             root);
    ck_assert_int_eq(ct_test_write_file(cfg, text, strlen(text)), 0);
    snprintf(cmd, sizeof cmd, "'%s/contrast' check '%s'", ct_test_build_dir(), cfg);
    int rc = ct_test_run(cmd, out, sizeof out);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "imgs/bomb.jpg: header declares 2313x64775") && strstr(out, "max_pixels"), "%s", out);
}
END_TEST

/* The ceiling is a setting, for PNG as for JPEG: exactly max_pixels is
 * accepted, one more refused; a bomb under the ceiling is refused as
 * corrupt at its first warning (it has no data for its first row). */
START_TEST(max_pixels_setting_and_truncated_bomb) {
    write_png("a.png", 40, 30, 3, 0);
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(open_folder("max_pixels = 1200;", &d, &err) == CT_OK, "%s", err.msg);
    dt_dataset_free(&d);
    expect_error("max_pixels = 1199;", CT_ERR_FORMAT, "a.png", "40x30 = 1200 pixels, over max_pixels = 1199");
    char p[700];
    path_of(p, sizeof p, "a.png");
    ck_assert_int_eq(remove(p), 0);
    write_jpeg_claiming("under.jpg", 9000, 9000);
    expect_error("", CT_ERR_FORMAT, "under.jpg", "corrupted or truncated JPEG: Corrupt JPEG data: premature end");
}
END_TEST

START_TEST(missing_root_and_bad_settings) {
    write_png("a.png", 4, 4, 1, 0);
    expect_error("channels = 2;", CT_ERR_CONFIG, "channels", NULL);
    char extra[700];
    snprintf(extra, sizeof extra, "root = \"%s/nowhere\";", root);
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(dt_dataset(reg, "imagefolder", extra, &d, &err), CT_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "nowhere"));
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("imagefolder");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, class_folders_png_and_jpeg);
    tcase_add_test(tc, flat_folder_without_labels);
    tcase_add_test(tc, resize_cache_and_channels);
    tcase_add_test(tc, truncated_files_are_named);
    tcase_add_test(tc, corrupted_and_empty_files_are_named);
    tcase_add_test(tc, non_image_file_is_named);
    tcase_add_test(tc, skip_bad_counts_skipped_files);
    tcase_add_test(tc, header_only_open_reports_at_read);
    tcase_add_test(tc, missing_root_and_bad_settings);
    tcase_add_test(tc, decompression_bomb_refused_before_decoding);
    tcase_add_test(tc, max_pixels_setting_and_truncated_bomb);
    tcase_add_test(tc, check_refuses_the_bomb);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(suite()); }
