/* Properties of the color and geometric transforms (plugins loaded from
 * CONTRAST_PLUGIN_PATH through their entry symbol). */
#include <math.h>

#include "ct_data_test.h"
#include "ct_test.h"

static ct_registry *reg;

static void setup(void) {
    reg = ct_registry_new();
    ck_assert_ptr_nonnull(reg);
    dt_load_plugin(reg, "color");
    dt_load_plugin(reg, "geometric");
}

static void teardown(void) { ct_registry_free(reg); }

/* A t x c x h x w image of uniform noise in [0, 1); every frame equal when
 * same_frames. */
static ct_image noise_image(int t, int c, int h, int w, uint64_t seed, bool same_frames) {
    ct_image img = CT_IMAGE_INIT;
    ck_assert_int_eq(ct_image_reshape(&img, t, c, h, w), CT_OK);
    ct_rng r;
    ct_rng_init(&r, seed, 0);
    size_t fs = ct_image_frame_size(&img);
    for (int f = 0; f < t; f++) {
        if (same_frames) ct_rng_init(&r, seed, 0);
        float *d = ct_image_frame(&img, f);
        for (size_t i = 0; i < fs; i++) d[i] = ct_rng_uniform(&r);
    }
    return img;
}

static ct_transform make(const char *name, const char *text) {
    ct_transform t;
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(dt_transform(reg, name, text, &t, &err) == CT_OK, "%s: %s", name, err.msg);
    return t;
}

static void apply(ct_transform *t, const ct_image *src, ct_image *dst, uint64_t key) {
    ct_rng r;
    ct_rng_init_keyed(&r, 7, 0, key, 0);
    ct_error err = CT_ERROR_INIT;
    ck_assert_msg(t->ops->apply(t->self, src, dst, &r, &err) == CT_OK, "%s", err.msg);
}

static double max_abs_diff(const ct_image *a, const ct_image *b) {
    ck_assert_int_eq(a->t, b->t);
    ck_assert_int_eq(a->c, b->c);
    ck_assert_int_eq(a->h, b->h);
    ck_assert_int_eq(a->w, b->w);
    double m = 0;
    for (size_t i = 0; i < ct_image_numel(a); i++) m = fmax(m, fabs((double)a->data[i] - b->data[i]));
    return m;
}

START_TEST(flip_twice_is_identity) {
    const char *names[] = {"hflip", "vflip"};
    ct_image x = noise_image(1, 3, 9, 14, 1, false), y = CT_IMAGE_INIT, z = CT_IMAGE_INIT;
    for (int i = 0; i < 2; i++) {
        ct_transform t = make(names[i], "p = 1.0;");
        apply(&t, &x, &y, 1);
        ck_assert_double_gt(max_abs_diff(&x, &y), 0.1); /* it did flip */
        apply(&t, &y, &z, 2);
        ck_assert_double_eq(max_abs_diff(&x, &z), 0.0);
        dt_transform_free(&t);
    }
    /* hflip moves column 0 to the last column. */
    ct_transform h = make("hflip", "p = 1.0;");
    apply(&h, &x, &y, 3);
    ck_assert_float_eq(y.data[13], x.data[0]);
    dt_transform_free(&h);
    ct_image_free(&x);
    ct_image_free(&y);
    ct_image_free(&z);
}
END_TEST

START_TEST(flip_probability_zero_is_identity) {
    ct_image x = noise_image(1, 1, 8, 8, 2, false), y = CT_IMAGE_INIT;
    ct_transform t = make("hflip", "p = 0.0;");
    for (uint64_t k = 0; k < 20; k++) {
        apply(&t, &x, &y, k);
        ck_assert_double_eq(max_abs_diff(&x, &y), 0.0);
    }
    dt_transform_free(&t);
    ct_image_free(&x);
    ct_image_free(&y);
}
END_TEST

START_TEST(crop_scale_one_ratio_one_is_resize) {
    ct_image x = noise_image(1, 3, 24, 24, 3, false), a = CT_IMAGE_INIT, b = CT_IMAGE_INIT;
    ct_transform crop = make("random_resized_crop", "size = [16]; scale = [1.0, 1.0]; ratio = [1.0, 1.0];");
    ct_transform rs = make("resize", "size = [16, 16];");
    for (uint64_t k = 0; k < 5; k++) {
        apply(&crop, &x, &a, k);
        apply(&rs, &x, &b, k);
        ck_assert_int_eq(a.h, 16);
        ck_assert_int_eq(a.w, 16);
        ck_assert_double_eq(max_abs_diff(&a, &b), 0.0);
    }
    /* Resizing to the same size is the identity. */
    ct_transform same = make("resize", "size = [24];");
    apply(&same, &x, &b, 0);
    ck_assert_double_eq(max_abs_diff(&x, &b), 0.0);
    dt_transform_free(&crop);
    dt_transform_free(&rs);
    dt_transform_free(&same);
    ct_image_free(&x);
    ct_image_free(&a);
    ct_image_free(&b);
}
END_TEST

START_TEST(crop_output_size_and_variety) {
    ct_image x = noise_image(1, 1, 28, 28, 4, false), a = CT_IMAGE_INIT, b = CT_IMAGE_INIT;
    ct_transform crop = make("random_resized_crop", "size = [20, 12]; scale = [0.3, 1.0];");
    int oc, oh, ow;
    crop.ops->out_shape(crop.self, 1, 28, 28, &oc, &oh, &ow);
    ck_assert_int_eq(oh, 20);
    ck_assert_int_eq(ow, 12);
    apply(&crop, &x, &a, 1);
    apply(&crop, &x, &b, 2);
    ck_assert_int_eq(a.h, 20);
    ck_assert_int_eq(a.w, 12);
    ck_assert_double_gt(max_abs_diff(&a, &b), 0.01); /* different keys, different crops */
    apply(&crop, &x, &b, 1);
    ck_assert_double_eq(max_abs_diff(&a, &b), 0.0); /* same key, same crop */
    dt_transform_free(&crop);
    ct_image_free(&x);
    ct_image_free(&a);
    ct_image_free(&b);
}
END_TEST

/* A 1-channel n x n image whose value is its column index. */
static ct_image column_ramp(int n) {
    ct_image img = CT_IMAGE_INIT;
    ck_assert_int_eq(ct_image_reshape(&img, 1, 1, n, n), CT_OK);
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) img.data[y * n + x] = (float)x;
    return img;
}

/* On a ramp, bilinear resampling returns the (clamped) sampling position,
 * so a crop's output row shows where it read. An 8 x 8 box of a 16 x 16
 * image resized to 16 reads column x0 + i/2 - 1/4 for output i: border =
 * "crop" clamps output 0 to the box (x0), border = "image" reads x0 - 1/4
 * (across the box's edge) unless the box touches the image's edge. */
START_TEST(crop_border_modes) {
    ct_image x = column_ramp(16), y = CT_IMAGE_INIT;
    ct_transform crop = make("random_resized_crop", "size = [16]; scale = [0.25, 0.25]; ratio = [1.0, 1.0];");
    ct_transform img = make("random_resized_crop",
                            "size = [16]; scale = [0.25, 0.25]; ratio = [1.0, 1.0]; border = \"image\";");
    int inside = 0, left_edge = 0;
    for (uint64_t k = 0; k < 40; k++) {
        apply(&crop, &x, &y, k);
        float x0 = y.data[1] - 0.25f; /* output 1 reads x0 + 1/4, inside the box */
        ck_assert_float_eq(x0, floorf(x0)); /* whole-pixel box */
        ck_assert_float_eq(y.data[0], x0);
        ck_assert_float_eq(y.data[15], x0 + 7.0f); /* clamped to the box's last column */
        apply(&img, &x, &y, k); /* same key, same box */
        ck_assert_float_eq(y.data[1], x0 + 0.25f);
        ck_assert_float_eq(y.data[0], x0 >= 1.0f ? x0 - 0.25f : 0.0f);
        ck_assert_float_eq(y.data[15], fminf(x0 + 7.25f, 15.0f));
        inside += x0 >= 1.0f && x0 <= 7.0f;
        left_edge += x0 == 0.0f;
    }
    ck_assert_int_gt(inside, 0);
    ck_assert_int_gt(left_edge, 0);
    dt_transform_free(&crop);
    dt_transform_free(&img);
    ct_image_free(&x);
    ct_image_free(&y);
}
END_TEST

/* box = "continuous": the box keeps its real size (sqrt(0.3 * 256) =
 * 8.76 px, not torchvision's rounded 9) and a real offset. */
START_TEST(crop_continuous_box) {
    ct_image x = column_ramp(16), y = CT_IMAGE_INIT;
    ct_transform cont = make("random_resized_crop",
                             "size = [16]; scale = [0.3, 0.3]; ratio = [1.0, 1.0]; box = \"continuous\"; "
                             "border = \"image\";");
    ct_transform whole = make("random_resized_crop", "size = [16]; scale = [0.3, 0.3]; ratio = [1.0, 1.0];");
    const double side = sqrt(0.3 * 256.0);
    int fractional = 0;
    for (uint64_t k = 0; k < 20; k++) {
        apply(&cont, &x, &y, k);
        ck_assert_double_eq_tol(y.data[5] - y.data[4], side / 16.0, 1e-5);
        double x0 = y.data[4] - 4.5 * side / 16.0 + 0.5;
        ck_assert_double_ge(x0, -1e-5);
        ck_assert_double_le(x0, 16.0 - side + 1e-5);
        fractional += fabs(x0 - round(x0)) > 1e-3;
        apply(&whole, &x, &y, k);
        ck_assert_double_eq_tol(y.data[5] - y.data[4], 9.0 / 16.0, 1e-6);
    }
    ck_assert_int_gt(fractional, 10);
    dt_transform_free(&cont);
    dt_transform_free(&whole);
    ct_image_free(&x);
    ct_image_free(&y);
}
END_TEST

/* torchvision's brightness and contrast with factors b and c, applied in
 * the given order (0: brightness, 1: contrast), clamped or not. */
static void jitter_ref(const float *src, float *dst, int n, const int64_t *order, float b, float c, bool clamp) {
    memcpy(dst, src, (size_t)n * sizeof *dst);
    for (int o = 0; o < 4; o++) {
        if (order[o] > 1) continue;
        double mean = 0;
        for (int i = 0; i < n; i++) mean += dst[i];
        float m = (1.0f - c) * (float)(mean / n);
        for (int i = 0; i < n; i++) {
            float v = order[o] == 0 ? dst[i] * b : c * dst[i] + m;
            dst[i] = clamp ? fminf(fmaxf(v, 0.0f), 1.0f) : v;
        }
    }
}

/* color_jitter's order and clamp: each output equals torchvision's
 * formulas with the factors drawn from the same generator (random order:
 * a permutation first, fixed order: none); clamp = false leaves [0, 1]. */
START_TEST(jitter_order_and_clamp) {
    ct_image x = noise_image(1, 1, 8, 8, 21, false), y = CT_IMAGE_INIT;
    for (int i = 0; i < 64; i += 3) x.data[i] = 0.5f + 0.5f * x.data[i]; /* bright pixels, so clamping bites */
    const char *texts[3] = {"brightness = 0.4; contrast = 0.4; saturation = 0.0; hue = 0.0; p = 1.0;",
                            "brightness = 0.4; contrast = 0.4; saturation = 0.0; hue = 0.0; p = 1.0; "
                            "order = \"fixed\";",
                            "brightness = 0.4; contrast = 0.4; saturation = 0.0; hue = 0.0; p = 1.0; "
                            "order = \"fixed\"; clamp = false;"};
    int above[3] = {0, 0, 0}, reordered = 0;
    float ref[64];
    for (int mode = 0; mode < 3; mode++) {
        ct_transform j = make("color_jitter", texts[mode]);
        for (uint64_t k = 0; k < 30; k++) {
            apply(&j, &x, &y, k);
            ct_rng r;
            ct_rng_init_keyed(&r, 7, 0, k, 0); /* apply()'s generator */
            int64_t order[4] = {0, 1, 2, 3};
            if (mode == 0) ct_rng_shuffle(&r, order, 4);
            float b = ct_rng_uniform_range(&r, 0.6f, 1.4f), c = ct_rng_uniform_range(&r, 0.6f, 1.4f);
            jitter_ref(x.data, ref, 64, order, b, c, mode < 2);
            for (int i = 0; i < 64; i++) {
                ck_assert_msg(fabsf(y.data[i] - ref[i]) < 1e-6f, "mode %d key %d pixel %d: %g, expected %g", mode,
                              (int)k, i, y.data[i], ref[i]);
                above[mode] += y.data[i] > 1.0f;
            }
            if (mode == 0) {
                int pos0 = 0, pos1 = 0;
                for (int o = 0; o < 4; o++) pos0 = order[o] == 0 ? o : pos0, pos1 = order[o] == 1 ? o : pos1;
                reordered += pos1 < pos0;
            }
        }
        dt_transform_free(&j);
    }
    ck_assert_int_gt(reordered, 0); /* the random order did put contrast first sometimes */
    ck_assert_int_eq(above[0] + above[1], 0);
    ck_assert_int_gt(above[2], 0);
    ct_image_free(&x);
    ct_image_free(&y);
}
END_TEST

START_TEST(grayscale_gives_equal_channels) {
    ct_image x = noise_image(1, 3, 10, 10, 5, false), y = CT_IMAGE_INIT;
    ct_transform g = make("grayscale", "p = 1.0;");
    apply(&g, &x, &y, 0);
    ck_assert_int_eq(y.c, 3);
    for (int i = 0; i < 100; i++) {
        ck_assert_float_eq(y.data[i], y.data[100 + i]);
        ck_assert_float_eq(y.data[i], y.data[200 + i]);
        float want = 0.299f * x.data[i] + 0.587f * x.data[100 + i] + 0.114f * x.data[200 + i];
        ck_assert_float_eq_tol(y.data[i], want, 1e-6f);
    }
    ct_image one = noise_image(1, 1, 6, 6, 6, false);
    apply(&g, &one, &y, 0);
    ck_assert_double_eq(max_abs_diff(&one, &y), 0.0);
    dt_transform_free(&g);
    ct_image_free(&x);
    ct_image_free(&y);
    ct_image_free(&one);
}
END_TEST

START_TEST(jitter_zero_strength_is_identity) {
    ct_transform j0 = make("color_jitter", "strength = 0.0; p = 1.0;");
    ct_transform j1 = make("color_jitter", "strength = 1.0; p = 1.0;");
    for (int c = 1; c <= 3; c += 2) {
        ct_image x = noise_image(1, c, 12, 12, 7, false), y = CT_IMAGE_INIT;
        for (uint64_t k = 0; k < 5; k++) {
            apply(&j0, &x, &y, k);
            ck_assert_double_eq(max_abs_diff(&x, &y), 0.0);
        }
        apply(&j1, &x, &y, 1);
        ck_assert_double_gt(max_abs_diff(&x, &y), 1e-3);
        for (size_t i = 0; i < ct_image_numel(&y); i++) {
            ck_assert_float_ge(y.data[i], 0.0f);
            ck_assert_float_le(y.data[i], 1.0f);
        }
        ct_image_free(&x);
        ct_image_free(&y);
    }
    /* Hue alone on a colour image: changes colour, keeps the value max. */
    ct_transform hue = make("color_jitter", "brightness = 0.0; contrast = 0.0; saturation = 0.0; hue = 0.5; p = 1.0;");
    ct_image x = noise_image(1, 3, 4, 4, 8, false), y = CT_IMAGE_INIT;
    apply(&hue, &x, &y, 3);
    for (int i = 0; i < 16; i++) {
        float vx = fmaxf(x.data[i], fmaxf(x.data[16 + i], x.data[32 + i]));
        float vy = fmaxf(y.data[i], fmaxf(y.data[16 + i], y.data[32 + i]));
        ck_assert_float_eq_tol(vx, vy, 1e-5f);
    }
    dt_transform_free(&hue);
    dt_transform_free(&j0);
    dt_transform_free(&j1);
    ct_image_free(&x);
    ct_image_free(&y);
}
END_TEST

START_TEST(blur_preserves_constant_mean) {
    ct_image x = CT_IMAGE_INIT, y = CT_IMAGE_INIT;
    ck_assert_int_eq(ct_image_reshape(&x, 1, 3, 17, 23), CT_OK);
    for (size_t i = 0; i < ct_image_numel(&x); i++) x.data[i] = 0.37f;
    ct_transform b = make("gaussian_blur", "sigma = [0.5, 3.0]; kernel_size = 9; p = 1.0;");
    apply(&b, &x, &y, 4);
    double sum = 0;
    for (size_t i = 0; i < ct_image_numel(&y); i++) {
        ck_assert_float_eq_tol(y.data[i], 0.37f, 1e-5f);
        sum += y.data[i];
    }
    ck_assert_double_eq_tol(sum / ct_image_numel(&y), 0.37, 1e-6);
    /* On noise it smooths: the variance drops. */
    ct_image n = noise_image(1, 1, 32, 32, 9, false);
    apply(&b, &n, &y, 4);
    double vx = 0, vy = 0;
    for (int i = 0; i < 1024; i++) {
        vx += (n.data[i] - 0.5) * (n.data[i] - 0.5);
        vy += (y.data[i] - 0.5) * (y.data[i] - 0.5);
    }
    ck_assert_double_lt(vy, 0.5 * vx);
    dt_transform_free(&b);
    ct_image_free(&x);
    ct_image_free(&y);
    ct_image_free(&n);
}
END_TEST

START_TEST(rotate_full_turn_is_identity) {
    ct_image x = noise_image(1, 3, 15, 21, 10, false), y = CT_IMAGE_INIT, z = CT_IMAGE_INIT;
    ct_transform r = make("rotate", "degrees = [360.0, 360.0];");
    apply(&r, &x, &y, 0);
    ck_assert_double_lt(max_abs_diff(&x, &y), 1e-5);
    /* Four quarter turns of a square image are exactly the identity. */
    ct_image s = noise_image(1, 1, 11, 11, 11, false);
    ct_transform q = make("rotate", "degrees = [90.0, 90.0];");
    apply(&q, &s, &y, 0);
    ck_assert_double_gt(max_abs_diff(&s, &y), 0.1);
    apply(&q, &y, &z, 0);
    apply(&q, &z, &y, 0);
    apply(&q, &y, &z, 0);
    ck_assert_double_eq(max_abs_diff(&s, &z), 0.0);
    /* 90 degrees counter-clockwise: the top-right corner goes top-left. */
    apply(&q, &s, &y, 0);
    ck_assert_float_eq(y.data[0], s.data[10]);
    /* A continuous rotation fills the corners. */
    ct_transform r45 = make("rotate", "degrees = [45.0, 45.0]; fill = [0.5];");
    apply(&r45, &s, &y, 0);
    ck_assert_float_eq(y.data[0], 0.5f);
    dt_transform_free(&r);
    dt_transform_free(&q);
    dt_transform_free(&r45);
    ct_image_free(&x);
    ct_image_free(&y);
    ct_image_free(&z);
    ct_image_free(&s);
}
END_TEST

START_TEST(normalize_inverts) {
    ct_image x = noise_image(1, 3, 5, 7, 12, false), y = CT_IMAGE_INIT;
    ct_transform n = make("normalize", "mean = [0.1, 0.5, 0.9]; std = [0.2, 0.3, 0.4];");
    apply(&n, &x, &y, 0);
    const float mean[3] = {0.1f, 0.5f, 0.9f}, sd[3] = {0.2f, 0.3f, 0.4f};
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 35; i++)
            ck_assert_float_eq_tol(y.data[c * 35 + i] * sd[c] + mean[c], x.data[c * 35 + i], 1e-6f);
    /* Wrong channel count: a shape error naming the transform. */
    ct_image one = noise_image(1, 1, 4, 4, 13, false);
    ct_rng r;
    ct_rng_init(&r, 0, 0);
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(n.ops->apply(n.self, &one, &y, &r, &err), CT_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(err.msg, "normalize"));
    dt_transform_free(&n);
    ct_image_free(&x);
    ct_image_free(&y);
    ct_image_free(&one);
}
END_TEST

/* Every transform draws its parameters once per clip: a clip of equal
 * frames stays a clip of equal frames. */
START_TEST(clip_frames_share_parameters) {
    const char *cases[][2] = {
        {"color_jitter", "p = 1.0;"},
        {"grayscale", "p = 1.0;"},
        {"gaussian_noise", "std = 0.1; p = 1.0;"},
        {"gaussian_blur", "p = 1.0;"},
        {"solarize", "p = 1.0;"},
        {"random_resized_crop", "size = [16];"},
        {"rotate", "degrees = [-40.0, 40.0];"},
        {"hflip", "p = 0.5;"},
    };
    ct_image x = noise_image(4, 3, 24, 24, 14, true), y = CT_IMAGE_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ct_transform t = make(cases[i][0], cases[i][1]);
        for (uint64_t k = 0; k < 4; k++) {
            apply(&t, &x, &y, k);
            ck_assert_int_eq(y.t, 4);
            size_t fs = ct_image_frame_size(&y);
            for (int f = 1; f < 4; f++)
                ck_assert_msg(memcmp(ct_image_frame(&y, 0), ct_image_frame(&y, f), fs * sizeof(float)) == 0,
                              "%s: frame %d differs from frame 0", cases[i][0], f);
        }
        dt_transform_free(&t);
    }
    ct_image_free(&x);
    ct_image_free(&y);
}
END_TEST

START_TEST(solarize_and_noise) {
    ct_image x = noise_image(1, 1, 8, 8, 15, false), y = CT_IMAGE_INIT;
    ct_transform s = make("solarize", "threshold = 0.5; p = 1.0;");
    apply(&s, &x, &y, 0);
    for (int i = 0; i < 64; i++) ck_assert_float_eq(y.data[i], x.data[i] >= 0.5f ? 1.0f - x.data[i] : x.data[i]);
    ct_transform n = make("gaussian_noise", "std = 0.0; p = 1.0;");
    apply(&n, &x, &y, 0);
    ck_assert_double_eq(max_abs_diff(&x, &y), 0.0);
    ct_transform n2 = make("gaussian_noise", "std = 0.2; p = 1.0; clip = false;");
    apply(&n2, &x, &y, 0);
    double var = 0;
    for (int i = 0; i < 64; i++) var += (y.data[i] - x.data[i]) * (y.data[i] - x.data[i]);
    ck_assert_double_gt(var / 64, 0.01);
    ck_assert_double_lt(var / 64, 0.1);
    dt_transform_free(&s);
    dt_transform_free(&n);
    dt_transform_free(&n2);
    ct_image_free(&x);
    ct_image_free(&y);
}
END_TEST

START_TEST(bad_settings_are_refused) {
    ct_transform t;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(dt_transform(reg, "random_resized_crop", "size = [8]; scale = [0.9, 0.1];", &t, &err),
                     CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "scale"));
    ck_assert_int_eq(dt_transform(reg, "normalize", "mean = [0.1, 0.2]; std = [0.3];", &t, &err), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "normalize"));
    ck_assert_int_eq(dt_transform(reg, "gaussian_blur", "kernel_size = 4;", &t, &err), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "odd"));
    ck_assert_int_eq(dt_transform(reg, "random_resized_crop", "size = [8, 8, 8];", &t, &err), CT_ERR_CONFIG);
    /* A 4-channel image is refused by colour transforms, with a message. */
    ct_image x = noise_image(1, 4, 4, 4, 16, false), y = CT_IMAGE_INIT;
    ct_transform j = make("color_jitter", "p = 1.0;");
    ct_rng r;
    ct_rng_init(&r, 0, 0);
    ck_assert_int_eq(j.ops->apply(j.self, &x, &y, &r, &err), CT_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(err.msg, "color_jitter"));
    dt_transform_free(&j);
    ct_image_free(&x);
    ct_image_free(&y);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("transforms");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, flip_twice_is_identity);
    tcase_add_test(tc, flip_probability_zero_is_identity);
    tcase_add_test(tc, crop_scale_one_ratio_one_is_resize);
    tcase_add_test(tc, crop_output_size_and_variety);
    tcase_add_test(tc, crop_border_modes);
    tcase_add_test(tc, crop_continuous_box);
    tcase_add_test(tc, jitter_order_and_clamp);
    tcase_add_test(tc, grayscale_gives_equal_channels);
    tcase_add_test(tc, jitter_zero_strength_is_identity);
    tcase_add_test(tc, blur_preserves_constant_mean);
    tcase_add_test(tc, rotate_full_turn_is_identity);
    tcase_add_test(tc, normalize_inverts);
    tcase_add_test(tc, clip_frames_share_parameters);
    tcase_add_test(tc, solarize_and_noise);
    tcase_add_test(tc, bad_settings_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ct_test_main(suite()); }
