/* Pretext plugin `color`: SimCLR's color distortions as chain transforms.
 *
 * Registers color_jitter, grayscale, gaussian_noise, gaussian_blur and
 * solarize. Each draws its random parameters once per call and applies
 * them to every frame of the input, so a clip is distorted consistently.
 * Inputs have 1 or 3 channels with values in [0, 1] (saturation and hue are
 * the identity on one channel, as is grayscale). */
#include <contrast/contrast.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ITU-R 601 luma weights, as torchvision's rgb_to_grayscale. */
#define LUMA_R 0.299f
#define LUMA_G 0.587f
#define LUMA_B 0.114f

static float clamp01(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }

/* Copy src to dst and report whether the transform is skipped this time
 * (probability 1 - p). dst then holds the untouched input. */
static ct_status start_apply(const ct_image *src, ct_image *dst, ct_rng *rng, float p, bool *skip) {
    ct_status st = ct_image_copy(dst, src);
    if (st != CT_OK) return st;
    *skip = p < 1.0f && !ct_rng_bernoulli(rng, p);
    return CT_OK;
}

static ct_status need_channels(const char *who, const ct_image *src, ct_error *err) {
    if (src->c == 1 || src->c == 3) return CT_OK;
    return ct_error_set(err, CT_ERR_SHAPE, "%s: needs images of 1 or 3 channels, got %d", who,
                        src->c);
}

/* Read a [lo, hi] float list, checking its length and order. */
static ct_status read_range(const ct_settings *s, const char *who, const char *name, float *lo,
                            float *hi, ct_error *err) {
    if (ct_settings_len(s, name) != 2)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: %s: %s must be [min, max]",
                            ct_settings_origin(s, name), who, name);
    *lo = (float)ct_settings_float_at(s, name, 0);
    *hi = (float)ct_settings_float_at(s, name, 1);
    if (*lo > *hi)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: %s: %s = [%g, %g] has min > max",
                            ct_settings_origin(s, name), who, name, (double)*lo, (double)*hi);
    return CT_OK;
}

static ct_status alloc_self(size_t bytes, void **self, const char *who, ct_error *err) {
    *self = calloc(1, bytes);
    return *self ? CT_OK : ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory", who);
}

static void free_self(void *self) { free(self); }

/* ======================================================================== */
/* color_jitter                                                              */

typedef struct jitter {
    float p;
    bool fixed_order; /* order = "fixed": brightness, contrast, saturation, hue */
    bool clamp;       /* clamp to [0, 1] after each adjustment */
    /* Factor ranges; lo == hi == 1 (0 for hue) disables an adjustment, as
     * torchvision does for a zero strength. */
    float b_lo, b_hi, c_lo, c_hi, s_lo, s_hi, h_lo, h_hi;
} jitter;

static const ct_param_spec jitter_params[] = {
    CT_PARAM_FLOAT("brightness", "0.8", 0, INFINITY, "brightness jitter b: factor in [max(0,1-b*s), 1+b*s]"),
    CT_PARAM_FLOAT("contrast", "0.8", 0, INFINITY, "contrast jitter (same form as brightness)"),
    CT_PARAM_FLOAT("saturation", "0.8", 0, INFINITY, "saturation jitter (identity on 1 channel)"),
    CT_PARAM_FLOAT("hue", "0.2", 0, 0.5, "hue jitter h: shift in [-h*s, h*s] turns (identity on 1 channel)"),
    CT_PARAM_FLOAT("strength", "1.0", 0, INFINITY, "SimCLR color strength s, multiplies all four"),
    CT_PARAM_FLOAT("p", "0.8", 0, 1, "probability of applying the jitter"),
    CT_PARAM_CHOICE("order", "\"random\"", "random|fixed",
                    "random: a random order per call (torchvision's ColorJitter); fixed: brightness, contrast, "
                    "saturation, hue (what batched implementations often do)"),
    CT_PARAM_BOOL("clamp", "true",
                  "clamp to [0, 1] after brightness, contrast and saturation (torchvision); false lets values "
                  "leave [0, 1] (hue, through HSV, always clamps)"),
    CT_PARAM_END,
};

static void factor_range(double amount, double s, float *lo, float *hi) {
    double a = amount * s;
    *lo = (float)fmax(0.0, 1.0 - a);
    *hi = (float)(1.0 + a);
}

static ct_status jitter_create(const ct_settings *s, const ct_host *host, void **self,
                               ct_error *err) {
    (void)host;
    ct_status st = alloc_self(sizeof(jitter), self, "color_jitter", err);
    if (st != CT_OK) return st;
    jitter *j = *self;
    double k = ct_settings_float(s, "strength");
    j->p = (float)ct_settings_float(s, "p");
    j->fixed_order = strcmp(ct_settings_string(s, "order"), "fixed") == 0;
    j->clamp = ct_settings_bool(s, "clamp");
    factor_range(ct_settings_float(s, "brightness"), k, &j->b_lo, &j->b_hi);
    factor_range(ct_settings_float(s, "contrast"), k, &j->c_lo, &j->c_hi);
    factor_range(ct_settings_float(s, "saturation"), k, &j->s_lo, &j->s_hi);
    double h = fmin(0.5, ct_settings_float(s, "hue") * k);
    j->h_lo = (float)-h;
    j->h_hi = (float)h;
    return CT_OK;
}

static float frame_luma_mean(const float *f, int c, size_t hw) {
    double sum = 0.0;
    if (c == 3) {
        for (size_t i = 0; i < hw; i++)
            sum += LUMA_R * f[i] + LUMA_G * f[hw + i] + LUMA_B * f[2 * hw + i];
    } else {
        for (size_t i = 0; i < hw; i++) sum += f[i];
    }
    return (float)(sum / (double)hw);
}

/* clamp01 when clamping is on (a loop-invariant test the compiler hoists). */
static inline float maybe_clamp(float x, bool clamp) { return clamp ? clamp01(x) : x; }

static void adjust_brightness(float *f, size_t n, float k, bool clamp) {
    for (size_t i = 0; i < n; i++) f[i] = maybe_clamp(f[i] * k, clamp);
}

/* Blend with the frame's mean luma (torchvision adjust_contrast). */
static void adjust_contrast(float *f, int c, size_t hw, float k, bool clamp) {
    float m = (1.0f - k) * frame_luma_mean(f, c, hw);
    size_t n = (size_t)c * hw;
    for (size_t i = 0; i < n; i++) f[i] = maybe_clamp(k * f[i] + m, clamp);
}

/* Blend each pixel with its own luma (torchvision adjust_saturation). */
static void adjust_saturation(float *f, size_t hw, float k, bool clamp) {
    float *r = f, *g = f + hw, *b = f + 2 * hw;
    for (size_t i = 0; i < hw; i++) {
        float y = (1.0f - k) * (LUMA_R * r[i] + LUMA_G * g[i] + LUMA_B * b[i]);
        r[i] = maybe_clamp(k * r[i] + y, clamp);
        g[i] = maybe_clamp(k * g[i] + y, clamp);
        b[i] = maybe_clamp(k * b[i] + y, clamp);
    }
}

/* Rotate the hue by `shift` turns through HSV (torchvision _rgb2hsv/_hsv2rgb). */
static void adjust_hue(float *f, size_t hw, float shift) {
    float *r = f, *g = f + hw, *b = f + 2 * hw;
    for (size_t i = 0; i < hw; i++) {
        float R = r[i], G = g[i], B = b[i];
        float mx = fmaxf(R, fmaxf(G, B)), mn = fminf(R, fminf(G, B));
        float cr = mx - mn;
        float v = mx, s = mx > 0.0f ? cr / mx : 0.0f, h = 0.0f;
        if (cr > 0.0f) {
            if (mx == R) h = fmodf((G - B) / cr, 6.0f);
            else if (mx == G) h = (B - R) / cr + 2.0f;
            else h = (R - G) / cr + 4.0f;
            h /= 6.0f;
        }
        h = h + shift;
        h -= floorf(h);
        float h6 = h * 6.0f;
        int sector = (int)h6 % 6;
        float fr = h6 - floorf(h6);
        float p = v * (1.0f - s), q = v * (1.0f - s * fr), t = v * (1.0f - s * (1.0f - fr));
        float o[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
        r[i] = clamp01(o[sector][0]);
        g[i] = clamp01(o[sector][1]);
        b[i] = clamp01(o[sector][2]);
    }
}

static ct_status jitter_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng,
                              ct_error *err) {
    const jitter *j = self;
    ct_status st = need_channels("color_jitter", src, err);
    if (st != CT_OK) return st;
    bool skip;
    if ((st = start_apply(src, dst, rng, j->p, &skip)) != CT_OK)
        return ct_error_set(err, st, "color_jitter: out of memory");
    if (skip) return CT_OK;
    /* Random order and factors, drawn in torchvision's order (a fixed
     * order draws no permutation). */
    int64_t order[4] = {0, 1, 2, 3};
    if (!j->fixed_order) ct_rng_shuffle(rng, order, 4);
    const bool clamp = j->clamp;
    bool on[4] = {j->b_lo != j->b_hi, j->c_lo != j->c_hi, j->s_lo != j->s_hi, j->h_lo != j->h_hi};
    float k[4] = {1.0f, 1.0f, 1.0f, 0.0f};
    if (on[0]) k[0] = ct_rng_uniform_range(rng, j->b_lo, j->b_hi);
    if (on[1]) k[1] = ct_rng_uniform_range(rng, j->c_lo, j->c_hi);
    if (on[2]) k[2] = ct_rng_uniform_range(rng, j->s_lo, j->s_hi);
    if (on[3]) k[3] = ct_rng_uniform_range(rng, j->h_lo, j->h_hi);
    size_t hw = (size_t)dst->h * (size_t)dst->w;
    for (int t = 0; t < dst->t; t++) {
        float *f = ct_image_frame(dst, t);
        for (int i = 0; i < 4; i++) {
            int op = (int)order[i];
            if (!on[op]) continue;
            if (op == 0) adjust_brightness(f, (size_t)dst->c * hw, k[0], clamp);
            else if (op == 1) adjust_contrast(f, dst->c, hw, k[1], clamp);
            else if (op == 2 && dst->c == 3) adjust_saturation(f, hw, k[2], clamp);
            else if (op == 3 && dst->c == 3) adjust_hue(f, hw, k[3]);
        }
    }
    return CT_OK;
}

/* ======================================================================== */
/* grayscale                                                                 */

typedef struct prob_only {
    float p;
} prob_only;

static const ct_param_spec grayscale_params[] = {
    CT_PARAM_FLOAT("p", "0.2", 0, 1, "probability of converting to grayscale (channels kept)"),
    CT_PARAM_END,
};

static ct_status grayscale_create(const ct_settings *s, const ct_host *host, void **self,
                                  ct_error *err) {
    (void)host;
    ct_status st = alloc_self(sizeof(prob_only), self, "grayscale", err);
    if (st != CT_OK) return st;
    ((prob_only *)*self)->p = (float)ct_settings_float(s, "p");
    return CT_OK;
}

static ct_status grayscale_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng,
                                 ct_error *err) {
    const prob_only *g = self;
    ct_status st = need_channels("grayscale", src, err);
    if (st != CT_OK) return st;
    bool skip;
    if ((st = start_apply(src, dst, rng, g->p, &skip)) != CT_OK)
        return ct_error_set(err, st, "grayscale: out of memory");
    if (skip || dst->c == 1) return CT_OK;
    size_t hw = (size_t)dst->h * (size_t)dst->w;
    for (int t = 0; t < dst->t; t++) {
        float *r = ct_image_frame(dst, t), *gg = r + hw, *b = r + 2 * hw;
        for (size_t i = 0; i < hw; i++) {
            float y = LUMA_R * r[i] + LUMA_G * gg[i] + LUMA_B * b[i];
            r[i] = gg[i] = b[i] = y;
        }
    }
    return CT_OK;
}

/* ======================================================================== */
/* gaussian_noise                                                            */

typedef struct noise {
    float std, p;
    bool clip;
} noise;

static const ct_param_spec noise_params[] = {
    CT_PARAM_FLOAT("std", "0.05", 0, INFINITY, "standard deviation of the additive noise"),
    CT_PARAM_FLOAT("p", "0.5", 0, 1, "probability of adding noise"),
    CT_PARAM_BOOL("clip", "true", "clamp the result to [0, 1]"),
    CT_PARAM_END,
};

static ct_status noise_create(const ct_settings *s, const ct_host *host, void **self,
                              ct_error *err) {
    (void)host;
    ct_status st = alloc_self(sizeof(noise), self, "gaussian_noise", err);
    if (st != CT_OK) return st;
    noise *n = *self;
    n->std = (float)ct_settings_float(s, "std");
    n->p = (float)ct_settings_float(s, "p");
    n->clip = ct_settings_bool(s, "clip");
    return CT_OK;
}

/* One noise field is drawn per call and added to every frame, so all
 * frames of a clip get the same perturbation. */
static ct_status noise_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng,
                             ct_error *err) {
    const noise *n = self;
    bool skip;
    ct_status st = start_apply(src, dst, rng, n->p, &skip);
    if (st != CT_OK) return ct_error_set(err, st, "gaussian_noise: out of memory");
    if (skip || n->std == 0.0f) return CT_OK;
    size_t fs = ct_image_frame_size(dst);
    float *field = malloc(fs * sizeof *field);
    if (!field) return ct_error_set(err, CT_ERR_NOMEM, "gaussian_noise: out of memory");
    for (size_t i = 0; i < fs; i++) field[i] = n->std * ct_rng_normal(rng);
    for (int t = 0; t < dst->t; t++) {
        float *f = ct_image_frame(dst, t);
        for (size_t i = 0; i < fs; i++) {
            float v = f[i] + field[i];
            f[i] = n->clip ? clamp01(v) : v;
        }
    }
    free(field);
    return CT_OK;
}

/* ======================================================================== */
/* gaussian_blur                                                             */

#define BLUR_MAX_KERNEL 255

typedef struct blur {
    float sigma_lo, sigma_hi, p;
    int kernel; /* odd; 0: about a tenth of the image side, as SimCLR */
} blur;

static const ct_param_spec blur_params[] = {
    CT_PARAM_FLOATS("sigma", "[0.1, 2.0]", 1e-6, 1000, "range [min, max] of the blur's sigma (pixels)"),
    CT_PARAM_INT("kernel_size", "0", 0, BLUR_MAX_KERNEL, "odd kernel size; 0: 10% of the shorter side (at least 3)"),
    CT_PARAM_FLOAT("p", "0.5", 0, 1, "probability of blurring"),
    CT_PARAM_END,
};

static ct_status blur_create(const ct_settings *s, const ct_host *host, void **self,
                             ct_error *err) {
    (void)host;
    float lo = 0.0f, hi = 0.0f;
    ct_status st = read_range(s, "gaussian_blur", "sigma", &lo, &hi, err);
    if (st != CT_OK) return st;
    int k = (int)ct_settings_int(s, "kernel_size");
    if (k != 0 && k % 2 == 0)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: gaussian_blur: kernel_size = %d must be odd",
                            ct_settings_origin(s, "kernel_size"), k);
    if ((st = alloc_self(sizeof(blur), self, "gaussian_blur", err)) != CT_OK) return st;
    blur *b = *self;
    b->sigma_lo = lo;
    b->sigma_hi = hi;
    b->kernel = k;
    b->p = (float)ct_settings_float(s, "p");
    return CT_OK;
}

/* Mirror an index into [0, n) without repeating the edge (reflect padding). */
static int reflect_index(int i, int n) {
    if (n == 1) return 0;
    while (i < 0 || i >= n) {
        if (i < 0) i = -i;
        if (i >= n) i = 2 * n - 2 - i;
    }
    return i;
}

/* 1-D convolution of `len` samples spaced `stride` apart, reflect padding. */
static void blur_line(const float *in, float *out, int len, size_t stride, const float *wts,
                      int r) {
    for (int i = 0; i < len; i++) {
        float acc = 0.0f;
        for (int k = -r; k <= r; k++) acc += wts[k + r] * in[(size_t)reflect_index(i + k, len) * stride];
        out[(size_t)i * stride] = acc;
    }
}

static ct_status blur_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng,
                            ct_error *err) {
    const blur *b = self;
    bool skip;
    ct_status st = start_apply(src, dst, rng, b->p, &skip);
    if (st != CT_OK) return ct_error_set(err, st, "gaussian_blur: out of memory");
    if (skip) return CT_OK;
    float sigma = b->sigma_lo == b->sigma_hi ? b->sigma_lo
                                             : ct_rng_uniform_range(rng, b->sigma_lo, b->sigma_hi);
    int k = b->kernel;
    if (k == 0) {
        k = (int)(0.1 * (dst->h < dst->w ? dst->h : dst->w));
        if (k % 2 == 0) k++;
        if (k < 3) k = 3;
        if (k > BLUR_MAX_KERNEL) k = BLUR_MAX_KERNEL;
    }
    int r = k / 2;
    float wts[BLUR_MAX_KERNEL];
    double sum = 0.0;
    for (int i = -r; i <= r; i++) sum += wts[i + r] = (float)exp(-(double)(i * i) / (2.0 * sigma * sigma));
    for (int i = 0; i < k; i++) wts[i] = (float)(wts[i] / sum);
    size_t hw = (size_t)dst->h * (size_t)dst->w;
    float *tmp = malloc(hw * sizeof *tmp);
    if (!tmp) return ct_error_set(err, CT_ERR_NOMEM, "gaussian_blur: out of memory");
    for (int t = 0; t < dst->t; t++) {
        for (int c = 0; c < dst->c; c++) {
            float *plane = ct_image_frame(dst, t) + (size_t)c * hw;
            for (int y = 0; y < dst->h; y++)
                blur_line(plane + (size_t)y * dst->w, tmp + (size_t)y * dst->w, dst->w, 1, wts, r);
            for (int x = 0; x < dst->w; x++)
                blur_line(tmp + x, plane + x, dst->h, (size_t)dst->w, wts, r);
        }
    }
    free(tmp);
    return CT_OK;
}

/* ======================================================================== */
/* solarize                                                                  */

typedef struct solarize {
    float threshold, p;
} solarize;

static const ct_param_spec solarize_params[] = {
    CT_PARAM_FLOAT("threshold", "0.5", 0, 1, "pixels at or above it are inverted (x -> 1 - x)"),
    CT_PARAM_FLOAT("p", "0.2", 0, 1, "probability of solarizing"),
    CT_PARAM_END,
};

static ct_status solarize_create(const ct_settings *s, const ct_host *host, void **self,
                                 ct_error *err) {
    (void)host;
    ct_status st = alloc_self(sizeof(solarize), self, "solarize", err);
    if (st != CT_OK) return st;
    solarize *so = *self;
    so->threshold = (float)ct_settings_float(s, "threshold");
    so->p = (float)ct_settings_float(s, "p");
    return CT_OK;
}

static ct_status solarize_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng,
                                ct_error *err) {
    const solarize *so = self;
    bool skip;
    ct_status st = start_apply(src, dst, rng, so->p, &skip);
    if (st != CT_OK) return ct_error_set(err, st, "solarize: out of memory");
    if (skip) return CT_OK;
    size_t n = ct_image_numel(dst);
    for (size_t i = 0; i < n; i++)
        if (dst->data[i] >= so->threshold) dst->data[i] = 1.0f - dst->data[i];
    return CT_OK;
}

/* ======================================================================== */

static const ct_pretext_ops color_ops[] = {
    {0, "color_jitter", "random brightness, contrast, saturation and hue in random order (SimCLR)",
     jitter_params, jitter_create, free_self, jitter_apply, NULL, NULL},
    {0, "grayscale", "random conversion to grayscale, keeping the channel count",
     grayscale_params, grayscale_create, free_self, grayscale_apply, NULL, NULL},
    {0, "gaussian_noise", "additive Gaussian noise", noise_params, noise_create, free_self,
     noise_apply, NULL, NULL},
    {0, "gaussian_blur", "separable Gaussian blur with a random sigma", blur_params, blur_create,
     free_self, blur_apply, NULL, NULL},
    {0, "solarize", "invert pixels above a threshold", solarize_params, solarize_create,
     free_self, solarize_apply, NULL, NULL},
};

static ct_status color_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    for (size_t i = 0; i < sizeof color_ops / sizeof color_ops[0]; i++) {
        ct_status st = ct_register_pretext(reg, &color_ops[i]);
        if (st != CT_OK)
            return ct_error_set(err, st, "color: cannot register %s", color_ops[i].name);
    }
    return CT_OK;
}

CT_PLUGIN_DEFINE("color", "1.0.0", "MIT", "SimCLR color distortions: jitter, grayscale, noise, blur, solarize",
                 CT_ROLE_PRETEXT, color_init)
