/* The cifar source: CIFAR-10/100 binary batches written by the test, then
 * truncated, emptied and corrupted ones. */
#include "ct_data_test.h"
#include "ct_test.h"

#include <sys/resource.h>
#include <unistd.h>

#define PIXELS 3072

static ct_registry *reg;
static char dir[512];

static void setup(void) {
    reg = ct_registry_new();
    dt_load_plugin(reg, "cifar");
    const char *t = ct_test_tmpdir();
    ck_assert_ptr_nonnull(t);
    snprintf(dir, sizeof dir, "%s", t);
}

static void teardown(void) { ct_registry_free(reg); }

/* Write n records; record i has label(s) from `label` and pixel p = (i*7 + p) % 256. */
static void write_batch(const char *name, int variant, int n, int first_label, size_t cut) {
    int lb = variant == 100 ? 2 : 1, rec = lb + PIXELS;
    size_t size = (size_t)n * rec;
    unsigned char *buf = malloc(size);
    for (int i = 0; i < n; i++) {
        unsigned char *r = buf + (size_t)i * rec;
        if (variant == 100) {
            r[0] = (unsigned char)((first_label + i) % 20);
            r[1] = (unsigned char)((first_label + i) % 100);
        } else {
            r[0] = (unsigned char)((first_label + i) % 10);
        }
        for (int p = 0; p < PIXELS; p++) r[lb + p] = (unsigned char)((i * 7 + p) % 256);
    }
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert_int_eq(ct_test_write_file(path, buf, size - cut), 0);
    free(buf);
}

static ct_status open_cifar(const char *text, ct_dataset *d, ct_error *err) {
    return dt_dataset(reg, "cifar", text, d, err);
}

START_TEST(reads_cifar10_files) {
    write_batch("a.bin", 10, 3, 4, 0);
    write_batch("b.bin", 10, 2, 9, 0);
    char cfg[2000];
    snprintf(cfg, sizeof cfg, "files = [\"%s/a.bin\", \"%s/b.bin\"];", dir, dir);
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(open_cifar(cfg, &d, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(d.info.count, 5);
    ck_assert_int_eq(d.info.channels, 3);
    ck_assert_int_eq(d.info.height, 32);
    ck_assert_int_eq(d.info.num_classes, 10);
    ck_assert(d.info.has_labels);
    ct_image img = CT_IMAGE_INIT;
    int32_t label;
    ck_assert_int_eq(d.ops->get(d.self, 4, &img, &label, &err), CT_OK); /* b.bin record 1 */
    ck_assert_int_eq(label, 0);                                        /* (9 + 1) % 10 */
    ck_assert_int_eq(img.c, 3);
    ck_assert_int_eq(img.h, 32);
    ck_assert_float_eq_tol(img.data[0], 7.0f / 255.0f, 1e-7f);
    ck_assert_float_eq_tol(img.data[1024], (float)((7 + 1024) % 256) / 255.0f, 1e-7f); /* green plane */
    ck_assert_int_eq(d.ops->get(d.self, 1, &img, &label, &err), CT_OK);
    ck_assert_int_eq(label, 5);
    ck_assert_int_eq(d.ops->get(d.self, 5, &img, &label, &err), CT_ERR_INVALID);
    ct_image_free(&img);
    dt_dataset_free(&d);
}
END_TEST

START_TEST(reads_cifar10_dir_by_split) {
    char name[32];
    for (int i = 1; i <= 5; i++) {
        snprintf(name, sizeof name, "data_batch_%d.bin", i);
        write_batch(name, 10, 2, i, 0);
    }
    write_batch("test_batch.bin", 10, 3, 0, 0);
    char cfg[1000];
    snprintf(cfg, sizeof cfg, "dir = \"%s\";", dir);
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(open_cifar(cfg, &d, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(d.info.count, 10);
    dt_dataset_free(&d);
    snprintf(cfg, sizeof cfg, "dir = \"%s\"; split = \"test\"; limit = 2;", dir);
    ck_assert_msg(open_cifar(cfg, &d, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(d.info.count, 2);
    dt_dataset_free(&d);
}
END_TEST

START_TEST(reads_cifar100_fine_and_coarse) {
    write_batch("train.bin", 100, 4, 37, 0);
    char cfg[1000];
    snprintf(cfg, sizeof cfg, "dir = \"%s\"; variant = 100;", dir);
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(open_cifar(cfg, &d, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(d.info.num_classes, 100);
    ct_image img = CT_IMAGE_INIT;
    int32_t label;
    d.ops->get(d.self, 2, &img, &label, &err);
    ck_assert_int_eq(label, 39);
    ck_assert_float_eq_tol(img.data[0], 14.0f / 255.0f, 1e-7f);
    dt_dataset_free(&d);
    snprintf(cfg, sizeof cfg, "dir = \"%s\"; variant = 100; label = \"coarse\";", dir);
    ck_assert_msg(open_cifar(cfg, &d, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(d.info.num_classes, 20);
    d.ops->get(d.self, 2, &img, &label, &err);
    ck_assert_int_eq(label, 19);
    ct_image_free(&img);
    dt_dataset_free(&d);
}
END_TEST

static void expect_error(const char *cfg, ct_status want, const char *needle1, const char *needle2) {
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(open_cifar(cfg, &d, &err), want);
    ck_assert_msg(strstr(err.msg, needle1) != NULL, "'%s' not in: %s", needle1, err.msg);
    if (needle2) ck_assert_msg(strstr(err.msg, needle2) != NULL, "'%s' not in: %s", needle2, err.msg);
}

START_TEST(truncated_file_is_named) {
    write_batch("cut.bin", 10, 3, 0, 100);
    char cfg[1000], path[700];
    snprintf(path, sizeof path, "%s/cut.bin", dir);
    snprintf(cfg, sizeof cfg, "files = [\"%s\"];", path);
    expect_error(cfg, CT_ERR_FORMAT, path, "truncated");
    /* A CIFAR-10 file read as CIFAR-100 has the wrong record size. */
    write_batch("ten.bin", 10, 3, 0, 0);
    snprintf(cfg, sizeof cfg, "files = [\"%s/ten.bin\"]; variant = 100;", dir);
    expect_error(cfg, CT_ERR_FORMAT, "ten.bin", "variant");
}
END_TEST

START_TEST(empty_file_is_named) {
    char path[700], cfg[1000];
    snprintf(path, sizeof path, "%s/empty.bin", dir);
    ck_assert_int_eq(ct_test_write_file(path, "", 0), 0);
    snprintf(cfg, sizeof cfg, "files = [\"%s\"];", path);
    expect_error(cfg, CT_ERR_FORMAT, path, "empty");
}
END_TEST

START_TEST(corrupted_labels_are_named) {
    write_batch("bad.bin", 10, 3, 0, 0);
    char path[700], cfg[1000];
    snprintf(path, sizeof path, "%s/bad.bin", dir);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 3073, SEEK_SET); /* record 1's label */
    fputc(200, f);
    fclose(f);
    snprintf(cfg, sizeof cfg, "files = [\"%s\"];", path);
    expect_error(cfg, CT_ERR_FORMAT, path, "record 1");
}
END_TEST

static long max_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* A 2 GB batch file (sparse: 700000 all-zero records) with limit = 10:
 * only the ten records are read; peak RSS grows by far less than the file. */
START_TEST(limit_reads_only_what_it_keeps) {
    char path[700], cfg[1000];
    snprintf(path, sizeof path, "%s/huge.bin", dir);
    ck_assert_int_eq(ct_test_write_file(path, "", 0), 0);
    ck_assert_int_eq(truncate(path, (off_t)3073 * 700000), 0);
    snprintf(cfg, sizeof cfg, "files = [\"%s\"]; limit = 10;", path);
    long before = max_rss_kb();
    ct_dataset d;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(open_cifar(cfg, &d, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(d.info.count, 10);
    long grew_mb = (max_rss_kb() - before) / 1024;
    ck_assert_msg(grew_mb < 256, "peak RSS grew by %ld MB for 10 records", grew_mb);
    dt_dataset_free(&d);
    unlink(path);
}
END_TEST

/* A folder given as a batch file is refused, not read. */
START_TEST(folder_as_file_is_refused) {
    char cfg[1000];
    snprintf(cfg, sizeof cfg, "files = [\"%s\"];", dir);
    expect_error(cfg, CT_ERR_IO, dir, "not a regular file");
}
END_TEST

START_TEST(missing_file_and_bad_settings) {
    char cfg[1000];
    snprintf(cfg, sizeof cfg, "files = [\"%s/nope.bin\"];", dir);
    expect_error(cfg, CT_ERR_IO, "nope.bin", NULL);
    snprintf(cfg, sizeof cfg, "dir = \"%s\";", dir); /* no data_batch_1.bin there */
    expect_error(cfg, CT_ERR_IO, "data_batch_1.bin", NULL);
    expect_error("variant = 50; dir = \"x\";", CT_ERR_CONFIG, "variant", NULL);
    expect_error("", CT_ERR_CONFIG, "files", NULL);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("cifar");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, reads_cifar10_files);
    tcase_add_test(tc, reads_cifar10_dir_by_split);
    tcase_add_test(tc, reads_cifar100_fine_and_coarse);
    tcase_add_test(tc, truncated_file_is_named);
    tcase_add_test(tc, empty_file_is_named);
    tcase_add_test(tc, corrupted_labels_are_named);
    tcase_add_test(tc, missing_file_and_bad_settings);
    tcase_add_test(tc, limit_reads_only_what_it_keeps);
    tcase_add_test(tc, folder_as_file_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(suite()); }
