/* Registers a source named "good_source", which good.so (loaded before:
 * files are scanned in name order) already registered. */
#include <string.h>

#include <contrast/contrast.h>

static ct_status create(const ct_settings *s, const ct_host *h, void **self, ct_error *err) {
    (void)s, (void)h, (void)err;
    *self = NULL;
    return CT_OK;
}
static void destroy(void *self) { (void)self; }
static void info(void *self, ct_source_info *i) {
    (void)self;
    memset(i, 0, sizeof *i);
}
static ct_status get(void *self, int64_t index, ct_image *dst, int32_t *label, ct_error *err) {
    (void)self, (void)index, (void)dst, (void)label, (void)err;
    return CT_ERR_UNSUPPORTED;
}

static ct_status init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host, (void)err;
    static const ct_source_ops ops = {
        .name = "good_source", .create = create, .destroy = destroy, .info = info, .get = get};
    return ct_register_source(reg, &ops);
}

CT_PLUGIN_DEFINE("zz_duplicate", "1.0", "MIT", "duplicate implementation name", CT_ROLE_SOURCE,
                 init)
