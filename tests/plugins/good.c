/* A well-formed test plugin: source "good_source" (n items of 1 x 4 x 4,
 * pixel value item/n, label item % 2) and a no-op transform "good_noop". */
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

typedef struct good_source {
    int64_t n;
} good_source;

static const ct_param_spec source_params[] = {
    CT_PARAM_INT("count", "10", 1, 1000000, "number of items"),
    CT_PARAM_FLOAT("scale", "1.0", 0, 10, "multiplies every pixel"),
    CT_PARAM_END,
};

static ct_status source_create(const ct_settings *s, const ct_host *host, void **self,
                               ct_error *err) {
    (void)host;
    good_source *g = malloc(sizeof *g);
    if (!g) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    g->n = ct_settings_int(s, "count");
    *self = g;
    return CT_OK;
}

static void source_destroy(void *self) { free(self); }

static void source_info(void *self, ct_source_info *info) {
    good_source *g = self;
    memset(info, 0, sizeof *info);
    info->count = g->n;
    info->channels = 1, info->height = 4, info->width = 4, info->frames = 1;
    info->num_classes = 2;
    info->has_labels = true;
    strcpy(info->summary, "synthetic 1x4x4 items, 2 classes");
}

static ct_status source_get(void *self, int64_t index, ct_image *dst, int32_t *label,
                            ct_error *err) {
    good_source *g = self;
    if (index < 0 || index >= g->n) return ct_error_set(err, CT_ERR_INVALID, "bad index");
    ct_status st = ct_image_reshape(dst, 1, 1, 4, 4);
    if (st) return ct_error_set(err, st, "out of memory");
    for (int k = 0; k < 16; k++) dst->data[k] = (float)index / (float)g->n;
    *label = (int32_t)(index % 2);
    return CT_OK;
}

static ct_status noop_create(const ct_settings *s, const ct_host *host, void **self,
                             ct_error *err) {
    (void)s, (void)host, (void)err;
    *self = NULL;
    return CT_OK;
}

static void noop_destroy(void *self) { (void)self; }

static ct_status noop_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng,
                            ct_error *err) {
    (void)self, (void)rng;
    ct_status st = ct_image_copy(dst, src);
    return st ? ct_error_set(err, st, "out of memory") : CT_OK;
}

static const ct_param_spec noop_params[] = {CT_PARAM_END};

static ct_status good_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host, (void)err;
    static const ct_source_ops src = {
        .name = "good_source",
        .description = "synthetic test source",
        .params = source_params,
        .create = source_create,
        .destroy = source_destroy,
        .info = source_info,
        .get = source_get,
    };
    static const ct_pretext_ops noop = {
        .name = "good_noop",
        .description = "copies its input",
        .params = noop_params,
        .create = noop_create,
        .destroy = noop_destroy,
        .apply = noop_apply,
    };
    ct_status st = ct_register_source(reg, &src);
    return st ? st : ct_register_pretext(reg, &noop);
}

CT_PLUGIN_DEFINE("good", "1.2.3", "MIT", "well-formed test plugin",
                 CT_ROLE_SOURCE | CT_ROLE_PRETEXT, good_init)
