/* Registers a source struct larger than the host's ct_source_ops, as a
 * plugin built against a future minor would. */
#include <string.h>

#include <contrast/contrast.h>

typedef struct future_source_ops {
    ct_source_ops v1;
    void *field_from_the_future[4];
} future_source_ops;

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
    static future_source_ops ops;
    ops.v1.name = "big_struct_source";
    ops.v1.create = create;
    ops.v1.destroy = destroy;
    ops.v1.info = info;
    ops.v1.get = get;
    return ct__register_source(reg, &ops.v1, sizeof ops);
}

CT_PLUGIN_DEFINE("bad_big_struct", "1.0", "MIT", "role struct larger than the host knows",
                 CT_ROLE_SOURCE, init)
