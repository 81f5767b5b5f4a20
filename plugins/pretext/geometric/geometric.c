/* Pretext plugin `geometric`: crops, resizing, rotation, flips and the
 * normalisation that ends a chain.
 *
 * Registers random_resized_crop, resize, center_crop, rotate, hflip, vflip
 * and normalize. Random parameters are drawn once per call and applied to
 * every frame, so a clip is transformed consistently. Resampling is
 * bilinear with half-pixel centres (PyTorch's align_corners=False). */
#include <contrast/contrast.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIDE 16384
#define PI_D 3.14159265358979323846

static ct_status alloc_self(size_t bytes, void **self, const char *who, ct_error *err) {
    *self = calloc(1, bytes);
    return *self ? CT_OK : ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory", who);
}

static void free_self(void *self) { free(self); }

static ct_status oom(const char *who, ct_error *err) {
    return ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory", who);
}

/* Read `size`: [s] (square, or shorter side for resize) or [h, w]. */
static ct_status read_size(const ct_settings *s, const char *who, int *h, int *w, ct_error *err) {
    size_t n = ct_settings_len(s, "size");
    if (n != 1 && n != 2)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: %s: size must be [s] or [height, width], got %zu values",
                            ct_settings_origin(s, "size"), who, n);
    *h = (int)ct_settings_int_at(s, "size", 0);
    *w = n == 2 ? (int)ct_settings_int_at(s, "size", 1) : 0;
    return CT_OK;
}

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

/* ---- bilinear resampling of a rectangle ---------------------------------- */

/* Sampling positions along one axis: output i reads input i0 and i0+1 (both
 * inside [off, off+len)) with weight 1-f and f. */
typedef struct axis_map {
    int *i0, *i1;
    float *f;
} axis_map;

static bool axis_map_make(axis_map *m, int out, int off, int len) {
    m->i0 = malloc((size_t)out * sizeof(int));
    m->i1 = malloc((size_t)out * sizeof(int));
    m->f = malloc((size_t)out * sizeof(float));
    if (!m->i0 || !m->i1 || !m->f) return false;
    double scale = (double)len / out;
    for (int i = 0; i < out; i++) {
        double s = (i + 0.5) * scale - 0.5;
        if (s < 0) s = 0;
        int a = (int)s;
        if (a > len - 1) a = len - 1;
        m->i0[i] = off + a;
        m->i1[i] = off + (a + 1 < len ? a + 1 : a);
        m->f[i] = (float)(s - a);
    }
    return true;
}

static void axis_map_free(axis_map *m) {
    free(m->i0);
    free(m->i1);
    free(m->f);
}

/* Sampling positions of a box that may start and end between pixels: the
 * same centres, off + (i + 0.5) * len / out - 0.5, clamped to the pixels
 * [lo, hi] (the box's own for a border at the crop, or the whole image's:
 * grid_sample's padding_mode = "border"), so that pixels next to the box
 * take part in the interpolation at its edges. */
static bool axis_map_make_real(axis_map *m, int out, double off, double len, int lo, int hi) {
    m->i0 = malloc((size_t)out * sizeof(int));
    m->i1 = malloc((size_t)out * sizeof(int));
    m->f = malloc((size_t)out * sizeof(float));
    if (!m->i0 || !m->i1 || !m->f) return false;
    double scale = len / out;
    for (int i = 0; i < out; i++) {
        double s = off + (i + 0.5) * scale - 0.5;
        if (s < lo) s = lo;
        if (s > hi) s = hi;
        int a = (int)floor(s);
        m->i0[i] = a;
        m->i1[i] = a + 1 <= hi ? a + 1 : a;
        m->f[i] = (float)(s - a);
    }
    return true;
}

/* Resample every frame of src through the row and column maps to dst's
 * (oh, ow). */
static void resample(const ct_image *src, ct_image *dst, const axis_map *mmy, const axis_map *mmx, int oh,
                     int ow) {
    const axis_map my = *mmy, mx = *mmx;
    size_t ihw = (size_t)src->h * src->w, ohw = (size_t)oh * ow;
    for (int t = 0; t < src->t; t++) {
        for (int c = 0; c < src->c; c++) {
            const float *in = ct_image_frame(src, t) + c * ihw;
            float *out = ct_image_frame(dst, t) + c * ohw;
            for (int y = 0; y < oh; y++) {
                const float *r0 = in + (size_t)my.i0[y] * src->w, *r1 = in + (size_t)my.i1[y] * src->w;
                float fy = my.f[y];
                for (int x = 0; x < ow; x++) {
                    float fx = mx.f[x];
                    float top_v = r0[mx.i0[x]] + fx * (r0[mx.i1[x]] - r0[mx.i0[x]]);
                    float bot_v = r1[mx.i0[x]] + fx * (r1[mx.i1[x]] - r1[mx.i0[x]]);
                    out[(size_t)y * ow + x] = top_v + fy * (bot_v - top_v);
                }
            }
        }
    }
}

/* Resample the rectangle (top, left, ch, cw) of every frame of src to
 * dst's (oh, ow), reading only pixels inside it (torchvision's
 * resized_crop). Exact copy when the rectangle already has that size. */
static ct_status crop_resize(const ct_image *src, ct_image *dst, int top, int left, int ch,
                             int cw, int oh, int ow, const char *who, ct_error *err) {
    if (ct_image_reshape(dst, src->t, src->c, oh, ow) != CT_OK) return oom(who, err);
    axis_map my = {0}, mx = {0};
    bool ok = axis_map_make(&my, oh, top, ch) && axis_map_make(&mx, ow, left, cw);
    if (ok) resample(src, dst, &my, &mx, oh, ow);
    axis_map_free(&my);
    axis_map_free(&mx);
    return ok ? CT_OK : oom(who, err);
}

/* The box (top, left, ch, cw), real-valued, resampled as affine_grid +
 * grid_sample(align_corners = False) would: clamped to the box
 * (image_border false) or to the image (true). */
static ct_status box_resize(const ct_image *src, ct_image *dst, double top, double left, double ch,
                            double cw, bool image_border, int oh, int ow, const char *who, ct_error *err) {
    if (ct_image_reshape(dst, src->t, src->c, oh, ow) != CT_OK) return oom(who, err);
    int ylo = 0, yhi = src->h - 1, xlo = 0, xhi = src->w - 1;
    if (!image_border) { /* the pixels whose centres lie in the box */
        ylo = (int)ceil(top), yhi = (int)floor(top + ch - 1);
        xlo = (int)ceil(left), xhi = (int)floor(left + cw - 1);
        if (yhi < ylo) yhi = ylo;
        if (xhi < xlo) xhi = xlo;
    }
    axis_map my = {0}, mx = {0};
    bool ok = axis_map_make_real(&my, oh, top, ch, ylo, yhi) && axis_map_make_real(&mx, ow, left, cw, xlo, xhi);
    if (ok) resample(src, dst, &my, &mx, oh, ow);
    axis_map_free(&my);
    axis_map_free(&mx);
    return ok ? CT_OK : oom(who, err);
}

/* ======================================================================== */
/* random_resized_crop                                                       */

typedef struct rrc {
    int oh, ow;
    float s_lo, s_hi, lr_lo, lr_hi; /* area scale; log aspect ratio */
    float r_lo, r_hi;
    bool continuous;   /* box = "continuous": real-valued size and offset */
    bool image_border; /* border = "image": interpolate across the box's edges */
} rrc;

static const ct_param_spec rrc_params[] = {
    CT_PARAM_INTS("size", NULL, 1, MAX_SIDE, "output size: [s] or [height, width]"),
    CT_PARAM_FLOATS("scale", "[0.08, 1.0]", 0, 1, "range of the crop's area as a fraction of the image"),
    CT_PARAM_FLOATS("ratio", "[0.75, 1.3333333]", 1e-6, 1e6, "range of the aspect ratio w/h (sampled log-uniformly)"),
    CT_PARAM_CHOICE("box", "\"integer\"", "integer|continuous",
                    "integer: size rounded and offset drawn in whole pixels (torchvision); continuous: real-valued "
                    "size and offset, as a crop made with affine_grid"),
    CT_PARAM_CHOICE("border", "\"crop\"", "crop|image",
                    "pixels read at the box's edges: crop = only those inside it (torchvision's resized_crop); "
                    "image = its neighbours too, clamped at the image's edge (grid_sample, padding_mode border)"),
    CT_PARAM_END,
};

static ct_status rrc_create(const ct_settings *s, const ct_host *host, void **self, ct_error *err) {
    (void)host;
    const char *who = "random_resized_crop";
    int h = 0, w = 0;
    float slo = 0, shi = 0, rlo = 0, rhi = 0;
    ct_status st = read_size(s, who, &h, &w, err);
    if (st == CT_OK) st = read_range(s, who, "scale", &slo, &shi, err);
    if (st == CT_OK) st = read_range(s, who, "ratio", &rlo, &rhi, err);
    if (st == CT_OK && shi <= 0.0f)
        st = ct_error_set(err, CT_ERR_CONFIG, "%s: %s: scale must allow a non-empty crop",
                          ct_settings_origin(s, "scale"), who);
    if (st != CT_OK || (st = alloc_self(sizeof(rrc), self, who, err)) != CT_OK) return st;
    rrc *r = *self;
    r->oh = h;
    r->ow = w ? w : h;
    r->s_lo = slo;
    r->s_hi = shi;
    r->r_lo = rlo;
    r->r_hi = rhi;
    r->lr_lo = logf(rlo);
    r->lr_hi = logf(rhi);
    r->continuous = strcmp(ct_settings_string(s, "box"), "continuous") == 0;
    r->image_border = strcmp(ct_settings_string(s, "border"), "image") == 0;
    return CT_OK;
}

/* torchvision RandomResizedCrop.get_params: ten tries, then a central crop
 * clamped to the ratio range. A continuous box keeps the real-valued size
 * and draws a real offset in [0, side - size]. */
static void rrc_params_draw(const rrc *r, int height, int width, ct_rng *rng, double *top, double *left,
                            double *ch, double *cw) {
    double area = (double)height * width;
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * ct_rng_uniform_range(rng, r->s_lo, r->s_hi);
        double ar = r->lr_lo == r->lr_hi ? r->r_lo : exp(ct_rng_uniform_range(rng, r->lr_lo, r->lr_hi));
        double w = sqrt(target * ar), h = sqrt(target / ar);
        if (!r->continuous) w = (double)lround(w), h = (double)lround(h);
        if (w > 0 && w <= width && h > 0 && h <= height) {
            if (r->continuous) {
                *top = ct_rng_uniform(rng) * (height - h);
                *left = ct_rng_uniform(rng) * (width - w);
            } else {
                *top = ct_rng_below(rng, (uint32_t)(height - (int)h + 1));
                *left = ct_rng_below(rng, (uint32_t)(width - (int)w + 1));
            }
            *ch = h;
            *cw = w;
            return;
        }
    }
    double in_ratio = (double)width / height;
    int w = width, h = height;
    if (in_ratio < r->r_lo) h = (int)lround(w / (double)r->r_lo);
    else if (in_ratio > r->r_hi) w = (int)lround(h * (double)r->r_hi);
    if (h < 1) h = 1;
    if (w < 1) w = 1;
    *ch = h;
    *cw = w;
    *top = (height - h) / 2;
    *left = (width - w) / 2;
}

static ct_status rrc_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng,
                           ct_error *err) {
    const rrc *r = self;
    double top, left, ch, cw;
    rrc_params_draw(r, src->h, src->w, rng, &top, &left, &ch, &cw);
    if (!r->continuous && !r->image_border) /* whole pixels, read inside the box only */
        return crop_resize(src, dst, (int)top, (int)left, (int)ch, (int)cw, r->oh, r->ow, "random_resized_crop", err);
    return box_resize(src, dst, top, left, ch, cw, r->image_border, r->oh, r->ow, "random_resized_crop", err);
}

static void rrc_shape(void *self, int c, int h, int w, int *oc, int *oh, int *ow) {
    const rrc *r = self;
    (void)h;
    (void)w;
    *oc = c;
    *oh = r->oh;
    *ow = r->ow;
}

/* ======================================================================== */
/* resize                                                                    */

typedef struct resize {
    int h, w; /* w == 0: h is the shorter side's target */
} resize;

static const ct_param_spec resize_params[] = {
    CT_PARAM_INTS("size", NULL, 1, MAX_SIDE, "[s]: shorter side to s keeping the aspect; [height, width]: exact"),
    CT_PARAM_END,
};

static ct_status resize_create(const ct_settings *s, const ct_host *host, void **self,
                               ct_error *err) {
    (void)host;
    int h = 0, w = 0;
    ct_status st = read_size(s, "resize", &h, &w, err);
    if (st != CT_OK || (st = alloc_self(sizeof(resize), self, "resize", err)) != CT_OK) return st;
    ((resize *)*self)->h = h;
    ((resize *)*self)->w = w;
    return CT_OK;
}

static void resize_shape(void *self, int c, int h, int w, int *oc, int *oh, int *ow) {
    const resize *r = self;
    *oc = c;
    if (r->w) {
        *oh = r->h;
        *ow = r->w;
    } else if (h <= 0 || w <= 0) {
        *oh = *ow = 0; /* depends on the input */
    } else if (h <= w) {
        *oh = r->h;
        *ow = (int)((int64_t)r->h * w / h);
    } else {
        *ow = r->h;
        *oh = (int)((int64_t)r->h * h / w);
    }
}

static ct_status resize_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng,
                              ct_error *err) {
    (void)rng;
    int oc, oh, ow;
    resize_shape(self, src->c, src->h, src->w, &oc, &oh, &ow);
    return crop_resize(src, dst, 0, 0, src->h, src->w, oh, ow, "resize", err);
}

/* ======================================================================== */
/* center_crop                                                               */

typedef struct center {
    int h, w;
} center;

static const ct_param_spec center_params[] = {
    CT_PARAM_INTS("size", NULL, 1, MAX_SIDE, "output size: [s] or [height, width]; zero-padded when larger"),
    CT_PARAM_END,
};

static ct_status center_create(const ct_settings *s, const ct_host *host, void **self,
                               ct_error *err) {
    (void)host;
    int h = 0, w = 0;
    ct_status st = read_size(s, "center_crop", &h, &w, err);
    if (st != CT_OK || (st = alloc_self(sizeof(center), self, "center_crop", err)) != CT_OK) return st;
    ((center *)*self)->h = h;
    ((center *)*self)->w = w ? w : h;
    return CT_OK;
}

static void center_shape(void *self, int c, int h, int w, int *oc, int *oh, int *ow) {
    (void)h;
    (void)w;
    *oc = c;
    *oh = ((center *)self)->h;
    *ow = ((center *)self)->w;
}

static ct_status center_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng,
                              ct_error *err) {
    (void)rng;
    const center *cc = self;
    if (ct_image_reshape(dst, src->t, src->c, cc->h, cc->w) != CT_OK) return oom("center_crop", err);
    /* torchvision: top = round((H - h) / 2); negative offsets pad with 0. */
    int top = (int)lround((src->h - cc->h) / 2.0), left = (int)lround((src->w - cc->w) / 2.0);
    size_t ihw = (size_t)src->h * src->w, ohw = (size_t)cc->h * cc->w;
    for (int t = 0; t < src->t; t++)
        for (int c = 0; c < src->c; c++) {
            const float *in = ct_image_frame(src, t) + c * ihw;
            float *out = ct_image_frame(dst, t) + c * ohw;
            for (int y = 0; y < cc->h; y++) {
                int sy = y + top;
                for (int x = 0; x < cc->w; x++) {
                    int sx = x + left;
                    bool inside = sy >= 0 && sy < src->h && sx >= 0 && sx < src->w;
                    out[(size_t)y * cc->w + x] = inside ? in[(size_t)sy * src->w + sx] : 0.0f;
                }
            }
        }
    return CT_OK;
}

/* ======================================================================== */
/* rotate                                                                    */

#define MAX_FILL 16

typedef struct rotate {
    float lo, hi, p;
    bool right_angles;
    int n_fill;
    float fill[MAX_FILL];
} rotate;

static const ct_param_spec rotate_params[] = {
    CT_PARAM_FLOATS("degrees", "[-30.0, 30.0]", -360, 360, "range [min, max] of the counter-clockwise angle"),
    CT_PARAM_BOOL("right_angles", "false", "rotate by a random multiple of 90 degrees instead"),
    CT_PARAM_FLOATS("fill", "[0.0]", -INFINITY, INFINITY, "value outside the image: one, or one per channel"),
    CT_PARAM_FLOAT("p", "1.0", 0, 1, "probability of rotating"),
    CT_PARAM_END,
};

static ct_status rotate_create(const ct_settings *s, const ct_host *host, void **self,
                               ct_error *err) {
    (void)host;
    float lo = 0.0f, hi = 0.0f;
    ct_status st = read_range(s, "rotate", "degrees", &lo, &hi, err);
    if (st != CT_OK) return st;
    size_t nf = ct_settings_len(s, "fill");
    if (nf < 1 || nf > MAX_FILL)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: rotate: fill needs 1 to %d values",
                            ct_settings_origin(s, "fill"), MAX_FILL);
    if ((st = alloc_self(sizeof(rotate), self, "rotate", err)) != CT_OK) return st;
    rotate *r = *self;
    r->lo = lo;
    r->hi = hi;
    r->p = (float)ct_settings_float(s, "p");
    r->right_angles = ct_settings_bool(s, "right_angles");
    r->n_fill = (int)nf;
    for (size_t i = 0; i < nf; i++) r->fill[i] = (float)ct_settings_float_at(s, "fill", i);
    return CT_OK;
}

/* Exact quarter turns of a square frame: out(y,x) reads in(sy,sx). */
static void rotate_quarter(const float *in, float *out, int n, int k) {
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            int sy = y, sx = x;
            if (k == 1) sy = x, sx = n - 1 - y;
            else if (k == 2) sy = n - 1 - y, sx = n - 1 - x;
            else if (k == 3) sy = n - 1 - x, sx = y;
            out[(size_t)y * n + x] = in[(size_t)sy * n + sx];
        }
}

static float sample_or_fill(const float *in, int h, int w, int y, int x, float fill) {
    return (y >= 0 && y < h && x >= 0 && x < w) ? in[(size_t)y * w + x] : fill;
}

/* Rotate one plane by (cos a, sin a) about its centre, bilinear; neighbours
 * outside the image read `fill`. */
static void rotate_plane(const float *in, float *out, int h, int w, double ca, double sa,
                         float fill) {
    double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
    for (int y = 0; y < h; y++) {
        double dy = y - cy;
        for (int x = 0; x < w; x++) {
            double dx = x - cx;
            double sx = cx + ca * dx - sa * dy, sy = cy + sa * dx + ca * dy;
            double fx0 = floor(sx), fy0 = floor(sy);
            int x0 = (int)fx0, y0 = (int)fy0;
            float fx = (float)(sx - fx0), fy = (float)(sy - fy0);
            float a = sample_or_fill(in, h, w, y0, x0, fill);
            float b = sample_or_fill(in, h, w, y0, x0 + 1, fill);
            float c = sample_or_fill(in, h, w, y0 + 1, x0, fill);
            float d = sample_or_fill(in, h, w, y0 + 1, x0 + 1, fill);
            float top = fx == 0.0f ? a : a + fx * (b - a);
            float bot = fx == 0.0f ? c : c + fx * (d - c);
            out[(size_t)y * w + x] = fy == 0.0f ? top : top + fy * (bot - top);
        }
    }
}

static ct_status rotate_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng,
                              ct_error *err) {
    const rotate *r = self;
    if (r->n_fill != 1 && r->n_fill != src->c)
        return ct_error_set(err, CT_ERR_SHAPE, "rotate: fill has %d values for an image of %d channels",
                            r->n_fill, src->c);
    if (r->p < 1.0f && !ct_rng_bernoulli(rng, r->p)) {
        if (ct_image_copy(dst, src) != CT_OK) return oom("rotate", err);
        return CT_OK;
    }
    double deg = r->right_angles ? 90.0 * ct_rng_below(rng, 4)
                                 : (r->lo == r->hi ? r->lo : ct_rng_uniform_range(rng, r->lo, r->hi));
    if (ct_image_reshape(dst, src->t, src->c, src->h, src->w) != CT_OK) return oom("rotate", err);
    /* Exact sines for multiples of 90 degrees, so quarter turns do not blur. */
    double turns = deg / 90.0;
    bool quarter = turns == floor(turns);
    int k = quarter ? (int)(((long)turns % 4 + 4) % 4) : 0;
    double rad = deg * PI_D / 180.0;
    double ca = quarter ? (double)((int[]){1, 0, -1, 0}[k]) : cos(rad);
    double sa = quarter ? (double)((int[]){0, 1, 0, -1}[k]) : sin(rad);
    size_t hw = (size_t)src->h * src->w;
    for (int t = 0; t < src->t; t++)
        for (int c = 0; c < src->c; c++) {
            const float *in = ct_image_frame(src, t) + c * hw;
            float *out = ct_image_frame(dst, t) + c * hw;
            if (quarter && src->h == src->w) rotate_quarter(in, out, src->h, k);
            else rotate_plane(in, out, src->h, src->w, ca, sa, r->fill[r->n_fill == 1 ? 0 : c]);
        }
    return CT_OK;
}

/* ======================================================================== */
/* hflip, vflip                                                              */

typedef struct flip {
    float p;
} flip;

static const ct_param_spec flip_params[] = {
    CT_PARAM_FLOAT("p", "0.5", 0, 1, "probability of flipping"),
    CT_PARAM_END,
};

static ct_status flip_create(const ct_settings *s, const ct_host *host, void **self,
                             ct_error *err) {
    (void)host;
    ct_status st = alloc_self(sizeof(flip), self, "flip", err);
    if (st != CT_OK) return st;
    ((flip *)*self)->p = (float)ct_settings_float(s, "p");
    return CT_OK;
}

static ct_status flip_apply(const flip *f, const ct_image *src, ct_image *dst, ct_rng *rng,
                            bool horizontal, ct_error *err) {
    if (ct_image_reshape(dst, src->t, src->c, src->h, src->w) != CT_OK) return oom("flip", err);
    bool on = f->p >= 1.0f || ct_rng_bernoulli(rng, f->p);
    size_t planes = (size_t)src->t * src->c;
    int h = src->h, w = src->w;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *in = src->data + pl * h * w;
        float *out = dst->data + pl * h * w;
        if (!on) {
            memcpy(out, in, (size_t)h * w * sizeof *out);
            continue;
        }
        for (int y = 0; y < h; y++) {
            if (horizontal) {
                const float *ri = in + (size_t)y * w;
                float *ro = out + (size_t)y * w;
                for (int x = 0; x < w; x++) ro[x] = ri[w - 1 - x];
            } else {
                memcpy(out + (size_t)y * w, in + (size_t)(h - 1 - y) * w, (size_t)w * sizeof *out);
            }
        }
    }
    return CT_OK;
}

static ct_status hflip_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng,
                             ct_error *err) {
    return flip_apply(self, src, dst, rng, true, err);
}

static ct_status vflip_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng,
                             ct_error *err) {
    return flip_apply(self, src, dst, rng, false, err);
}

/* ======================================================================== */
/* normalize                                                                 */

#define MAX_NORM_CHANNELS 64

typedef struct normalize {
    int n;
    float mean[MAX_NORM_CHANNELS], inv_std[MAX_NORM_CHANNELS];
} normalize;

static const ct_param_spec normalize_params[] = {
    CT_PARAM_FLOATS("mean", NULL, -INFINITY, INFINITY, "per-channel mean (one value: all channels)"),
    CT_PARAM_FLOATS("std", NULL, 1e-12, INFINITY, "per-channel standard deviation, same length as mean"),
    CT_PARAM_END,
};

static ct_status normalize_create(const ct_settings *s, const ct_host *host, void **self,
                                  ct_error *err) {
    (void)host;
    size_t nm = ct_settings_len(s, "mean"), ns = ct_settings_len(s, "std");
    if (nm < 1 || nm > MAX_NORM_CHANNELS || nm != ns)
        return ct_error_set(err, CT_ERR_CONFIG,
                            "%s: normalize: mean (%zu values) and std (%zu values) need the same length, 1 to %d",
                            ct_settings_origin(s, "std"), nm, ns, MAX_NORM_CHANNELS);
    ct_status st = alloc_self(sizeof(normalize), self, "normalize", err);
    if (st != CT_OK) return st;
    normalize *nz = *self;
    nz->n = (int)nm;
    for (size_t i = 0; i < nm; i++) {
        nz->mean[i] = (float)ct_settings_float_at(s, "mean", i);
        nz->inv_std[i] = (float)(1.0 / ct_settings_float_at(s, "std", i));
    }
    return CT_OK;
}

static ct_status normalize_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng,
                                 ct_error *err) {
    (void)rng;
    const normalize *nz = self;
    if (nz->n != 1 && nz->n != src->c)
        return ct_error_set(err, CT_ERR_SHAPE, "normalize: %d mean/std values for an image of %d channels",
                            nz->n, src->c);
    if (ct_image_reshape(dst, src->t, src->c, src->h, src->w) != CT_OK) return oom("normalize", err);
    size_t hw = (size_t)src->h * src->w;
    for (int t = 0; t < src->t; t++)
        for (int c = 0; c < src->c; c++) {
            const float *in = ct_image_frame(src, t) + c * hw;
            float *out = ct_image_frame(dst, t) + c * hw;
            int k = nz->n == 1 ? 0 : c;
            float m = nz->mean[k], is = nz->inv_std[k];
            for (size_t i = 0; i < hw; i++) out[i] = (in[i] - m) * is;
        }
    return CT_OK;
}

/* ======================================================================== */

static const ct_pretext_ops geometric_ops[] = {
    {0, "random_resized_crop", "crop of random area and aspect ratio, resized bilinearly",
     rrc_params, rrc_create, free_self, rrc_apply, rrc_shape, NULL},
    {0, "resize", "bilinear resize to a fixed size or shorter side", resize_params, resize_create,
     free_self, resize_apply, resize_shape, NULL},
    {0, "center_crop", "central crop (zero-padded when the image is smaller)", center_params,
     center_create, free_self, center_apply, center_shape, NULL},
    {0, "rotate", "rotation by a random angle or multiple of 90 degrees", rotate_params,
     rotate_create, free_self, rotate_apply, NULL, NULL},
    {0, "hflip", "random horizontal flip", flip_params, flip_create, free_self, hflip_apply, NULL,
     NULL},
    {0, "vflip", "random vertical flip", flip_params, flip_create, free_self, vflip_apply, NULL,
     NULL},
    {0, "normalize", "per-channel (x - mean) / std; ends a chain", normalize_params,
     normalize_create, free_self, normalize_apply, NULL, NULL},
};

static ct_status geometric_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    for (size_t i = 0; i < sizeof geometric_ops / sizeof geometric_ops[0]; i++) {
        ct_status st = ct_register_pretext(reg, &geometric_ops[i]);
        if (st != CT_OK)
            return ct_error_set(err, st, "geometric: cannot register %s", geometric_ops[i].name);
    }
    return CT_OK;
}

CT_PLUGIN_DEFINE("geometric", "1.0.0", "MIT",
                 "geometric transforms: random resized crop, resize, center crop, rotate, flips, normalize",
                 CT_ROLE_PRETEXT, geometric_init)
