/* cutout — an out-of-tree pretext plugin for contrast.
 *
 * Random erasing (Zhong et al. 2020) / cutout (DeVries & Taylor 2017): with
 * probability p, a rectangle covering a random fraction of the image (area
 * in [scale_min, scale_max], aspect ratio log-uniform in [ratio_min,
 * ratio_max]) is filled with `value`. For clips the same rectangle is erased
 * in every frame, as the SDK's transform contract asks.
 *
 * Built only against the installed SDK: see README.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

typedef struct cutout {
    float p;
    float scale_min, scale_max;
    float ratio_min, ratio_max;
    float value;
} cutout;

static const ct_param_spec cutout_params[] = {
    CT_PARAM_FLOAT("p", "0.5", 0.0, 1.0, "probability of erasing a rectangle"),
    CT_PARAM_FLOATS("scale", "[0.02, 0.33]", 0.0, 1.0, "area fraction range [min, max] of the rectangle"),
    CT_PARAM_FLOATS("ratio", "[0.3, 3.3]", 0.01, 100.0, "aspect ratio range [min, max], sampled log-uniformly"),
    CT_PARAM_FLOAT("value", "0.0", -1e9, 1e9, "fill value (in the units of the image at this point of the chain)"),
    CT_PARAM_END,
};

static ct_status cutout_create(const ct_settings *s, const ct_host *host, void **self, ct_error *err) {
    (void)host;
    if (ct_settings_len(s, "scale") != 2 || ct_settings_len(s, "ratio") != 2)
        return ct_error_set(err, CT_ERR_CONFIG, "cutout: %s and %s must have 2 values [min, max]",
                            "scale", "ratio");
    cutout *c = calloc(1, sizeof *c);
    if (!c) return ct_error_set(err, CT_ERR_NOMEM, "cutout: out of memory");
    c->p = (float)ct_settings_float(s, "p");
    c->scale_min = (float)ct_settings_float_at(s, "scale", 0);
    c->scale_max = (float)ct_settings_float_at(s, "scale", 1);
    c->ratio_min = (float)ct_settings_float_at(s, "ratio", 0);
    c->ratio_max = (float)ct_settings_float_at(s, "ratio", 1);
    c->value = (float)ct_settings_float(s, "value");
    if (c->scale_min > c->scale_max || c->ratio_min > c->ratio_max) {
        free(c);
        return ct_error_set(err, CT_ERR_CONFIG, "cutout: ranges must be [min, max] with min <= max");
    }
    *self = c;
    return CT_OK;
}

static void cutout_destroy(void *self) { free(self); }

/* Pick the rectangle once per call, so every frame of a clip shares it. */
static int cutout_pick(const cutout *c, int h, int w, ct_rng *rng, int *y0, int *x0, int *eh, int *ew) {
    if (!ct_rng_bernoulli(rng, c->p)) return 0;
    for (int attempt = 0; attempt < 10; attempt++) {
        float area = (float)(h * w) * ct_rng_uniform_range(rng, c->scale_min, c->scale_max);
        float logr = ct_rng_uniform_range(rng, logf(c->ratio_min), logf(c->ratio_max));
        float r = expf(logr);
        int hh = (int)lroundf(sqrtf(area * r));
        int ww = (int)lroundf(sqrtf(area / r));
        if (hh < 1 || ww < 1 || hh > h || ww > w) continue;
        *eh = hh;
        *ew = ww;
        *y0 = (int)ct_rng_below(rng, (uint32_t)(h - hh + 1));
        *x0 = (int)ct_rng_below(rng, (uint32_t)(w - ww + 1));
        return 1;
    }
    return 0;
}

static ct_status cutout_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng, ct_error *err) {
    const cutout *c = self;
    if (ct_image_copy(dst, src) != CT_OK) return ct_error_set(err, CT_ERR_NOMEM, "cutout: out of memory");
    int y0, x0, eh, ew;
    if (!cutout_pick(c, src->h, src->w, rng, &y0, &x0, &eh, &ew)) return CT_OK;
    for (int f = 0; f < dst->t; f++) {
        float *frame = ct_image_frame(dst, f);
        for (int ch = 0; ch < dst->c; ch++)
            for (int y = y0; y < y0 + eh; y++) {
                float *row = frame + ((size_t)ch * dst->h + (size_t)y) * dst->w;
                for (int x = x0; x < x0 + ew; x++) row[x] = c->value;
            }
    }
    return CT_OK;
}

static const ct_pretext_ops cutout_ops = {
    .name = "cutout",
    .description = "random erasing: fill a random rectangle (same one on every frame of a clip)",
    .params = cutout_params,
    .create = cutout_create,
    .destroy = cutout_destroy,
    .apply = cutout_apply,
};

static ct_status cutout_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    (void)err;
    return ct_register_pretext(reg, &cutout_ops);
}

CT_PLUGIN_DEFINE("cutout", "1.0.0", "MIT", "random erasing / cutout transform (example plugin)",
                 CT_ROLE_PRETEXT, cutout_init)
