/* Checkpoints: safetensors round trip, atomic write, corruption detection,
 * store/optimizer save and load, rotation; and training's stop on a NaN or
 * Inf, which must leave the last good checkpoint intact and resumable. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "training/checkpoint.h"
#include "ct_test.h"

/* Write a raw safetensors file: the header text as given, then `data`. */
static void write_raw(const char *path, const char *header, uint64_t hlen, const void *data,
                      size_t dlen) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hlen >> (8 * i));
    ck_assert_uint_eq(fwrite(len8, 1, 8, f), 8);
    if (header && *header) ck_assert_uint_eq(fwrite(header, 1, strlen(header), f), strlen(header));
    if (dlen) ck_assert_uint_eq(fwrite(data, 1, dlen, f), dlen);
    fclose(f);
}

/* Expect reading `path` to fail with CT_ERR_FORMAT and a message containing `what`. */
static void expect_bad(const char *path, const char *what) {
    ct_safetensors *f = NULL;
    ct_error err = CT_ERROR_INIT;
    ct_status st = ct_safetensors_open(path, &f, &err);
    ck_assert_msg(st == CT_ERR_FORMAT, "status %d for %s (%s)", st, what, err.msg);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(err.msg, what) != NULL, "message '%s' lacks '%s'", err.msg, what);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message '%s' does not name the file", err.msg);
}

static void hdr_file(const char *path, const char *header, size_t dlen) {
    static const unsigned char zeros[64];
    write_raw(path, header, strlen(header), zeros, dlen);
}

START_TEST(test_roundtrip_bit_identical) {
    const char *dir = ct_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    float w[2][3];
    uint32_t bits[6] = {0x7fc00001u, 0xff800000u, 0x00000001u, 0x80000000u, 0x3f800000u, 0xdeadbeefu};
    memcpy(w, bits, sizeof w);
    int64_t ints[4] = {-1, 0, INT64_MAX, 42};
    float scalar = 3.5f;
    ct_safetensors_tensor t[4] = {
        {"encoder.conv1.weight", CT_SAFETENSORS_F32, 2, {2, 3}, w, sizeof w},
        {"steps", CT_SAFETENSORS_I64, 1, {4}, ints, sizeof ints},
        {"empty", CT_SAFETENSORS_F32, 2, {0, 5}, NULL, 0},
        {"scalar", CT_SAFETENSORS_F32, 0, {0}, &scalar, sizeof scalar},
    };
    const char *cfg = "name = \"x\";\n\ttab \\ back \"quote\" \x01 ctrl \xc3\xa9";
    ct_st_meta meta[2] = {{"config", cfg}, {"epoch", "7"}};
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_safetensors_write(path, t, 4, meta, 2, &err), CT_OK);
    ct_safetensors *f;
    ck_assert_msg(ct_safetensors_open(path, &f, &err) == CT_OK, "%s", err.msg);
    ck_assert_uint_eq(ct_safetensors_count(f), 4);
    for (int i = 0; i < 4; i++) {
        const ct_safetensors_tensor *r = ct_safetensors_find(f, t[i].name);
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(r->dtype, t[i].dtype);
        ck_assert_int_eq(r->ndim, t[i].ndim);
        for (int d = 0; d < t[i].ndim; d++) ck_assert_int_eq(r->shape[d], t[i].shape[d]);
        ck_assert_uint_eq(r->nbytes, t[i].nbytes);
        if (r->nbytes) ck_assert_int_eq(memcmp(r->data, t[i].data, r->nbytes), 0);
    }
    ck_assert_str_eq(ct_safetensors_meta(f, "config"), cfg);
    ck_assert_str_eq(ct_safetensors_meta(f, "epoch"), "7");
    ck_assert_ptr_null(ct_safetensors_meta(f, "nope"));
    ck_assert_uint_eq(ct_safetensors_meta_count(f), 2);
    const char *value = NULL;
    ck_assert_str_eq(ct_safetensors_meta_at(f, 1, &value), "epoch");
    ck_assert_str_eq(value, "7");
    ck_assert_ptr_null(ct_safetensors_meta_at(f, 2, &value));
    ck_assert_str_eq(ct_safetensors_path(f), path);
    /* The data area starts 8-byte aligned, as the reference writer does. */
    unsigned char len8[8];
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fread(len8, 1, 8, fp), 8);
    fclose(fp);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
    ck_assert_uint_eq(hlen % 8, 0);
    ct_safetensors_close(f);
}
END_TEST

START_TEST(test_atomic_crash_keeps_previous) {
    const char *dir = ct_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    ct_safetensors_tensor ta = {"x", CT_SAFETENSORS_F32, 1, {4}, a, sizeof a};
    ct_safetensors_tensor tb = {"x", CT_SAFETENSORS_F32, 1, {4}, b, sizeof b};
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_safetensors_write(path, &ta, 1, NULL, 0, &err), CT_OK);
    ct__st_crash_before_rename = 1;
    ck_assert_int_eq(ct_safetensors_write(path, &tb, 1, NULL, 0, &err), CT_ERR_INTERRUPTED);
    ct__st_crash_before_rename = 0;
    ct_safetensors *f;
    ck_assert_msg(ct_safetensors_open(path, &f, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(memcmp(ct_safetensors_find(f, "x")->data, a, sizeof a), 0);
    ct_safetensors_close(f);
    /* A later successful write replaces it. */
    ck_assert_int_eq(ct_safetensors_write(path, &tb, 1, NULL, 0, &err), CT_OK);
    ck_assert_int_eq(ct_safetensors_open(path, &f, &err), CT_OK);
    ck_assert_int_eq(memcmp(ct_safetensors_find(f, "x")->data, b, sizeof b), 0);
    ct_safetensors_close(f);
}
END_TEST

START_TEST(test_truncated) {
    const char *dir = ct_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    float a[16] = {0};
    ct_safetensors_tensor t = {"x", CT_SAFETENSORS_F32, 1, {16}, a, sizeof a};
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_safetensors_write(path, &t, 1, NULL, 0, &err), CT_OK);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(truncate(path, sb.st_size - 4), 0);
    expect_bad(path, "outside");
    ck_assert_int_eq(truncate(path, 20), 0); /* inside the header */
    expect_bad(path, "header length");
    ck_assert_int_eq(truncate(path, 5), 0);
    expect_bad(path, "too short");
}
END_TEST

START_TEST(test_bad_header_length) {
    const char *dir = ct_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/h.safetensors", dir);
    write_raw(path, "{}", (uint64_t)1 << 40, NULL, 0);
    expect_bad(path, "header length");
    write_raw(path, "{}", 1, NULL, 0);
    expect_bad(path, "header length");
    write_raw(path, "{}", 0, NULL, 0);
    expect_bad(path, "header length");
}
END_TEST

START_TEST(test_bad_json) {
    const char *dir = ct_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/j.safetensors", dir);
    hdr_file(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4);
    expect_bad(path, "bad JSON");
    hdr_file(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}}", 4);
    expect_bad(path, "trailing");
    hdr_file(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
    expect_bad(path, "non-negative integer");
    hdr_file(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4);
    expect_bad(path, "missing data_offsets");
    hdr_file(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4);
    expect_bad(path, "extra");
    hdr_file(path, "{\"__metadata__\":{\"a\":1}}", 0);
    expect_bad(path, "bad JSON");
    hdr_file(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    expect_bad(path, "duplicate");
    hdr_file(path, "{\"bad\\q\":{}}", 0);
    expect_bad(path, "escape");
}
END_TEST

START_TEST(test_offsets_out_of_file) {
    const char *dir = ct_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/o.safetensors", dir);
    hdr_file(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
    expect_bad(path, "outside");
    hdr_file(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8);
    expect_bad(path, "end before begin");
    /* Overlap: two tensors share bytes. */
    hdr_file(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
    expect_bad(path, "overlaps");
    /* A hole before a tensor. */
    hdr_file(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    expect_bad(path, "unused bytes");
}
END_TEST

START_TEST(test_unknown_dtype) {
    const char *dir = ct_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/d.safetensors", dir);
    hdr_file(path, "{\"x\":{\"dtype\":\"F31\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_bad(path, "unknown dtype");
}
END_TEST

START_TEST(test_shape_mismatch) {
    const char *dir = ct_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/s.safetensors", dir);
    hdr_file(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
    expect_bad(path, "shape needs 12 bytes");
    hdr_file(path, "{\"x\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    expect_bad(path, "shape needs 16 bytes");
}
END_TEST

/* A small model store: a conv weight, a bias and a running-stat buffer. */
static ct_params *make_store(uint64_t seed, bool extra) {
    ct_error err = CT_ERROR_INIT;
    ct_params *p = ct_params_new(seed);
    ck_assert_ptr_nonnull(p);
    int64_t w[4] = {4, 1, 3, 3}, b[1] = {4}, h[2] = {3, 4};
    ck_assert_ptr_nonnull(ct_params_add(p, "encoder.conv1.weight", CT_PARAM_TRAINABLE, 4, w,
                                        CT_INIT_KAIMING_NORMAL, 0, 0, &err));
    ck_assert_ptr_nonnull(ct_params_add(p, "encoder.bn1.running_mean", CT_PARAM_BUFFER, 1, b,
                                        CT_INIT_ZEROS, 0, 0, &err));
    ck_assert_ptr_nonnull(ct_params_add(p, "head.0.weight", CT_PARAM_TRAINABLE, 2, h,
                                        CT_INIT_LINEAR_DEFAULT, 0, 0, &err));
    if (extra)
        ck_assert_ptr_nonnull(ct_params_add(p, "head.0.bias", CT_PARAM_TRAINABLE, 1, h,
                                            CT_INIT_ZEROS, 0, CT_PARAM_NO_DECAY, &err));
    ck_assert_msg(ct_params_finalize(p, &err) == CT_OK, "%s", err.msg);
    return p;
}

static void fill_grads(ct_params *p, float v) {
    float *g = ct_params_grad(p);
    for (size_t i = 0; i < ct_params_numel(p); i++) g[i] = v * (float)((i % 7) + 1);
}

START_TEST(test_store_and_optimizer_roundtrip) {
    const char *dir = ct_test_tmpdir();
    ct_error err = CT_ERROR_INIT;
    ct_params *p = make_store(1, false);
    ct_optim_config oc = ct_optim_defaults(CT_OPTIM_ADAMW);
    oc.lr = 1e-2f;
    ct_optim *o = ct_optim_new(p, &oc, &err);
    ck_assert_ptr_nonnull(o);
    for (int s = 0; s < 3; s++) {
        fill_grads(p, 0.1f * (float)(s + 1));
        ct_optim_step(o, 1e-2f);
    }
    ct_params_buffer_data(p)[2] = 0.25f;
    ct_train_progress pr = {2, 3, 99};
    char saved[1024];
    ck_assert_msg(ct_checkpoint_save(dir, p, o, &pr, "seed = 99;", 3, saved, sizeof saved, &err) == CT_OK,
                  "%s", err.msg);

    ct_params *q = make_store(2, false);
    ct_optim *o2 = ct_optim_new(q, &oc, &err);
    ct_train_progress got = {0, 0, 0};
    ck_assert_msg(ct_checkpoint_load(saved, q, o2, &got, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(memcmp(ct_params_data(p), ct_params_data(q), ct_params_numel(p) * 4), 0);
    ck_assert_int_eq(memcmp(ct_params_buffer_data(p), ct_params_buffer_data(q),
                            ct_params_buffer_numel(p) * 4), 0);
    size_t n1, n2;
    float *s1 = ct_optim_state(o, &n1), *s2 = ct_optim_state(o2, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_int_eq(memcmp(s1, s2, n1 * 4), 0);
    ck_assert_int_eq(ct_optim_steps(o2), 3);
    ck_assert_int_eq(got.epoch, 2);
    ck_assert_int_eq(got.step, 3);
    ck_assert_uint_eq(got.seed, 99);
    /* One more identical step on both gives identical weights. */
    fill_grads(p, 0.5f);
    fill_grads(q, 0.5f);
    ct_optim_step(o, 1e-2f);
    ct_optim_step(o2, 1e-2f);
    ck_assert_int_eq(memcmp(ct_params_data(p), ct_params_data(q), ct_params_numel(p) * 4), 0);
    char *sha = ct_checkpoint_meta(saved, "config_sha256", &err);
    ck_assert_ptr_nonnull(sha);
    ck_assert_uint_eq(strlen(sha), 64);
    free(sha);
    ct_optim_free(o);
    ct_optim_free(o2);
    ct_params_free(p);
    ct_params_free(q);
}
END_TEST

START_TEST(test_store_names_checked) {
    const char *dir = ct_test_tmpdir();
    ct_error err = CT_ERROR_INIT;
    ct_params *small = make_store(1, false), *big = make_store(1, true);
    ct_train_progress pr = {0, 1, 0};
    char saved[1024];
    ck_assert_int_eq(ct_checkpoint_save(dir, big, NULL, &pr, NULL, 0, saved, sizeof saved, &err), CT_OK);
    ck_assert_int_eq(ct_checkpoint_load(saved, small, NULL, NULL, &err), CT_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "unknown tensor 'head.0.bias'"), "%s", err.msg);
    pr.step = 2;
    ck_assert_int_eq(ct_checkpoint_save(dir, small, NULL, &pr, NULL, 0, saved, sizeof saved, &err), CT_OK);
    ck_assert_int_eq(ct_checkpoint_load(saved, big, NULL, NULL, &err), CT_ERR_NOT_FOUND);
    ck_assert_msg(strstr(err.msg, "'head.0.bias' is missing"), "%s", err.msg);
    /* Without a companion file, asking for progress is an error naming it. */
    ct_train_progress got;
    ck_assert_int_eq(ct_checkpoint_load(saved, small, NULL, &got, &err), CT_ERR_IO);
    ck_assert_msg(strstr(err.msg, ".state.safetensors"), "%s", err.msg);
    ct_params_free(small);
    ct_params_free(big);
}
END_TEST

/* A checkpoint holding NaN or Inf in a parameter or a buffer is refused
 * naming the tensor and the count, and the store is left as it was. */
START_TEST(test_nonfinite_tensors_refused) {
    const char *dir = ct_test_tmpdir();
    ct_error err = CT_ERROR_INIT;
    static const struct {
        const char *name;
        bool buffer;
        size_t at[2];
        float v;
        const char *want;
    } bad[] = {
        {"encoder.conv1.weight", false, {7, 5}, NAN, "'encoder.conv1.weight' has 2 non-finite values of 36 (first: NaN at element 5)"},
        {"encoder.bn1.running_mean", true, {3, 3}, INFINITY, "'encoder.bn1.running_mean' has 1 non-finite value of 4 (first: +Inf at element 3)"},
    };
    for (int k = 0; k < 2; k++) {
        ct_params *p = make_store(1, false);
        float *x = bad[k].buffer ? ct_params_buffer_data(p) : ct_params_data(p);
        x[bad[k].at[0]] = bad[k].v; /* the weight comes first in the store */
        x[bad[k].at[1]] = bad[k].v;
        ct_train_progress pr = {0, k + 1, 0};
        char saved[1024];
        ck_assert_int_eq(ct_checkpoint_save(dir, p, NULL, &pr, NULL, 0, saved, sizeof saved, &err), CT_OK);
        ct_params *q = make_store(2, false);
        ct_params *fresh = make_store(2, false);
        ck_assert_int_eq(ct_checkpoint_load(saved, q, NULL, NULL, &err), CT_ERR_FORMAT);
        ck_assert_msg(strstr(err.msg, bad[k].want), "%s", err.msg);
        ck_assert_ptr_nonnull(strstr(err.msg, saved));
        ck_assert_int_eq(memcmp(ct_params_data(q), ct_params_data(fresh), ct_params_numel(q) * 4), 0);
        ct_params_free(p);
        ct_params_free(q);
        ct_params_free(fresh);
    }
}
END_TEST

/* Resuming from an optimizer state holding a NaN is refused naming it. */
START_TEST(test_nonfinite_optimizer_state_refused) {
    const char *dir = ct_test_tmpdir();
    ct_error err = CT_ERROR_INIT;
    ct_params *p = make_store(1, false);
    ct_optim_config oc = ct_optim_defaults(CT_OPTIM_ADAMW);
    ct_optim *o = ct_optim_new(p, &oc, &err);
    fill_grads(p, 0.1f);
    ct_optim_step(o, 1e-2f);
    size_t n;
    ct_optim_state(o, &n)[n - 1] = NAN;
    ct_train_progress pr = {0, 1, 0};
    char saved[1024];
    ck_assert_int_eq(ct_checkpoint_save(dir, p, o, &pr, NULL, 0, saved, sizeof saved, &err), CT_OK);
    ct_optim *o2 = ct_optim_new(p, &oc, &err);
    ck_assert_int_eq(ct_checkpoint_load(saved, p, o2, &pr, &err), CT_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "'optimizer.state' has 1 non-finite value"), "%s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, ".state.safetensors"));
    ct_optim_free(o);
    ct_optim_free(o2);
    ct_params_free(p);
}
END_TEST

static long max_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* A 2 GB sparse file: `header` (its length written first, or a length of
 * 0 when header is NULL), then holes up to 2 GB. */
static void sparse_file(const char *path, const char *header) {
    uint64_t hlen = header ? strlen(header) : 0;
    write_raw(path, header, hlen, NULL, 0);
    ck_assert_int_eq(truncate(path, (off_t)1 << 31), 0);
}

/* The 2 GB sparse checkpoint: refused after reading its header,
 * never read into memory (peak RSS grows by far less than the file), both
 * when the header is invalid and when it is valid but the tensor does not
 * match the model. */
START_TEST(test_sparse_checkpoint_not_read) {
    const char *dir = ct_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/sparse.safetensors", dir);
    long before = max_rss_kb();
    sparse_file(path, NULL);
    expect_bad(path, "header length 0 is invalid");
    /* A 96-byte header, then 2^31 - 104 bytes of data: one F32 tensor. */
    const unsigned long long data = (1ull << 31) - 104;
    char hdr[128];
    snprintf(hdr, sizeof hdr, "{\"encoder.conv1.weight\":{\"dtype\":\"F32\",\"shape\":[%llu],\"data_offsets\":[0,%llu]}}",
             data / 4, data);
    size_t h = strlen(hdr);
    ck_assert_uint_le(h, 96);
    while (h < 96) hdr[h++] = ' ';
    hdr[h] = '\0';
    sparse_file(path, hdr);
    ct_params *p = make_store(1, false);
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_checkpoint_load(path, p, NULL, NULL, &err), CT_ERR_SHAPE);
    ck_assert_msg(strstr(err.msg, "has shape [536870886] but the model wants [4, 1, 3, 3]"), "%s", err.msg);
    long grew_mb = (max_rss_kb() - before) / 1024;
    ck_assert_msg(grew_mb < 256, "peak RSS grew by %ld MB reading a 2 GB sparse file", grew_mb);
    ct_params_free(p);
    unlink(path);
}
END_TEST

START_TEST(test_rotation_and_latest) {
    const char *dir = ct_test_tmpdir();
    ct_error err = CT_ERROR_INIT;
    ct_params *p = make_store(1, false);
    ct_optim_config oc = ct_optim_defaults(CT_OPTIM_SGD);
    ct_optim *o = ct_optim_new(p, &oc, &err);
    char latest[1024], saved[1024];
    ck_assert_int_eq(ct_checkpoint_latest(dir, latest, sizeof latest, &err), CT_ERR_NOT_FOUND);
    for (int s = 1; s <= 5; s++) {
        ct_train_progress pr = {s, s * 10, 0};
        ck_assert_int_eq(ct_checkpoint_save(dir, p, o, &pr, "", 2, saved, sizeof saved, &err), CT_OK);
    }
    ck_assert_int_eq(ct_checkpoint_latest(dir, latest, sizeof latest, &err), CT_OK);
    ck_assert_str_eq(latest, saved);
    ck_assert_msg(strstr(latest, "checkpoint-s00000050.safetensors"), "%s", latest);
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint-s00000040.safetensors", dir);
    ck_assert_int_eq(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/checkpoint-s00000030.safetensors", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/checkpoint-s00000030.state.safetensors", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
    ct_optim_free(o);
    ct_params_free(p);
}
END_TEST

/* ---- training stops on NaN/Inf (through the CLI) ------------------------------ */

/* A tiny run of the nan_probe test plugin (tests/plugins/nan_probe) on raw
 * pixels: 64 Fashion-MNIST test images, batch 16, so 4 steps an epoch, 12
 * in all, and a checkpoint after every epoch; `arch` (architecture
 * settings) makes it go non-finite. The config path goes to cfg. */
static void write_probe_config(char *cfg, size_t n, const char *arch) {
    snprintf(cfg, n, "%s/nan.cfg", ct_test_tmpdir());
    FILE *f = fopen(cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "name = \"nan_probe\";\nseed = 3;\n"
            "plugins = { path = [\"%s/tests/plugins/nan_probe\"]; };\n"
            "data = { train = { type = \"idx\"; limit = 64;\n"
            "  images = \"/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\"; }; };\n"
            "encoder = { type = \"pixels\"; };\n"
            "pipelines = ( { data = \"train\"; views = 1;\n"
            "  transforms = ( { type = \"normalize\"; mean = [0.2860]; std = [0.3530]; } ); } );\n"
            "architecture = { type = \"nan_probe\"; %s };\n"
            "optimizer = { type = \"sgd\"; lr = 0.1; };\n"
            "train = { epochs = 3; batch_size = 16; threads = 1; checkpoint_every = 1; keep = 0; };\n",
            ct_test_build_dir(), arch);
    fclose(f);
}

static char g_out[1 << 15];

/* Run `contrast ARGS`, expecting exit status want. */
static void contrast(int want, const char *fmt, ...) {
    char args[2048], cmd[2600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s/contrast %s", ct_test_build_dir(), args);
    int rc = ct_test_run(cmd, g_out, sizeof g_out);
    ck_assert_msg(rc == want, "`%s` exited %d, expected %d:\n%s", cmd, rc, want, g_out);
}

/* The probe's store ("head.weight", 1 x 784) loaded from a checkpoint, with
 * its progress; every weight must be finite. */
static void expect_good_checkpoint(const char *path, int64_t step) {
    ct_params *p = ct_params_new(0);
    int64_t shape[2] = {1, 784};
    ck_assert_ptr_nonnull(ct_params_add(p, "head.weight", CT_PARAM_TRAINABLE, 2, shape, CT_INIT_ZEROS, 0, 0, NULL));
    ck_assert_int_eq(ct_params_finalize(p, NULL), CT_OK);
    ct_train_progress pr = {0, 0, 0};
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(ct_checkpoint_load(path, p, NULL, &pr, &err) == CT_OK, "%s", err.msg);
    ck_assert_int_eq(pr.step, step);
    ck_assert_uint_eq(pr.seed, 3);
    const float *w = ct_params_data(p);
    float norm = 0;
    for (size_t i = 0; i < ct_params_numel(p); i++) {
        ck_assert_msg(isfinite(w[i]), "%s: weight %zu is %f", path, i, w[i]);
        norm += fabsf(w[i]);
    }
    ck_assert_msg(norm > 0, "%s: weights were never written", path);
    ct_params_free(p);
}

/* Train the probe with `arch` into <tmp>/run (path to run), which must fail. */
static void train_probe_fails(const char *arch, char *cfg, size_t cn, char *run, size_t rn) {
    write_probe_config(cfg, cn, arch);
    snprintf(run, rn, "%s/run", ct_test_tmpdir());
    contrast(1, "train %s --run-dir %s", cfg, run);
}

START_TEST(test_nan_loss_stops_and_keeps_checkpoint) {
    char cfg[512], run[600], latest[1024];
    /* Step index 6 is the 3rd step of epoch 2: the checkpoint of step 4 exists. */
    train_probe_fails("nan_step = 6;", cfg, sizeof cfg, run, sizeof run);
    ck_assert_msg(strstr(g_out, "loss is nan in step 7 of 12 (epoch 2, 0-based step index 6)"), "%s", g_out);
    ck_assert_msg(strstr(g_out, "checkpoint-s00000004.safetensors") && strstr(g_out, "--resume") &&
                  strstr(g_out, "optimizer.lr"), "no advice in:\n%s", g_out);
    /* Nothing was written after the NaN: the step-4 checkpoint is the newest and intact. */
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_checkpoint_latest(run, latest, sizeof latest, &err), CT_OK);
    ck_assert_msg(strstr(latest, "checkpoint-s00000004.safetensors"), "%s", latest);
    expect_good_checkpoint(latest, 4);
    /* The same config fails the same way (deterministic); without the NaN
     * (a changed config, allowed) it resumes from step 4 and finishes. */
    contrast(1, "train %s --resume %s", cfg, run);
    ck_assert_msg(strstr(g_out, "resuming") && strstr(g_out, "0-based step index 6"), "%s", g_out);
    contrast(0, "train %s --set architecture.nan_step=-1 --resume %s --allow-config-change", cfg, run);
    ck_assert_msg(strstr(g_out, "at step 4") && strstr(g_out, "trained 8 steps"), "%s", g_out);
    ck_assert_int_eq(ct_checkpoint_latest(run, latest, sizeof latest, &err), CT_OK);
    ck_assert_msg(strstr(latest, "checkpoint-s00000012.safetensors"), "%s", latest);
    expect_good_checkpoint(latest, 12);
}
END_TEST

/* A NaN gradient with a finite loss, in the last step of epoch 1: without
 * the gradient check the optimizer would write it into the weights and the
 * epoch's checkpoint would save them. */
START_TEST(test_nan_gradient_stops_before_the_update) {
    char cfg[512], run[600], latest[1024];
    train_probe_fails("nan_grad_step = 3;", cfg, sizeof cfg, run, sizeof run);
    ck_assert_msg(strstr(g_out, "the gradient of 'head.weight' is not finite in step 4 of 12"), "%s", g_out);
    ck_assert_msg(strstr(g_out, "No checkpoint was saved yet") && strstr(g_out, "optimizer.lr"), "%s", g_out);
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_checkpoint_latest(run, latest, sizeof latest, &err), CT_ERR_NOT_FOUND);
}
END_TEST

int main(void) {
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("safetensors");
    tcase_add_test(tc, test_roundtrip_bit_identical);
    tcase_add_test(tc, test_atomic_crash_keeps_previous);
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_bad_header_length);
    tcase_add_test(tc, test_bad_json);
    tcase_add_test(tc, test_offsets_out_of_file);
    tcase_add_test(tc, test_unknown_dtype);
    tcase_add_test(tc, test_shape_mismatch);
    suite_add_tcase(s, tc);
    TCase *tc2 = tcase_create("training");
    tcase_add_test(tc2, test_store_and_optimizer_roundtrip);
    tcase_add_test(tc2, test_store_names_checked);
    tcase_add_test(tc2, test_rotation_and_latest);
    tcase_add_test(tc2, test_nonfinite_tensors_refused);
    tcase_add_test(tc2, test_nonfinite_optimizer_state_refused);
    tcase_add_test(tc2, test_sparse_checkpoint_not_read);
    suite_add_tcase(s, tc2);
    TCase *tc3 = tcase_create("numeric_stop");
    tcase_set_timeout(tc3, 60);
    tcase_add_test(tc3, test_nan_loss_stops_and_keeps_checkpoint);
    tcase_add_test(tc3, test_nan_gradient_stops_before_the_update);
    suite_add_tcase(s, tc3);
    return ct_test_main(s);
}
