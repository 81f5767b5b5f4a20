/* Registers a pretext without apply(): the host would call a NULL apply on
 * every item, so registration refuses it, naming the pretext. */
#include <contrast/contrast.h>

static ct_status create(const ct_settings *s, const ct_host *h, void **self, ct_error *err) {
    (void)s, (void)h, (void)err;
    *self = NULL;
    return CT_OK;
}
static void destroy(void *self) { (void)self; }

static ct_status init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host, (void)err;
    static const ct_pretext_ops ops = {
        .name = "no_apply_pretext", .create = create, .destroy = destroy};
    return ct_register_pretext(reg, &ops);
}

CT_PLUGIN_DEFINE("bad_pretext_no_apply", "1.0", "MIT", "pretext without apply", CT_ROLE_PRETEXT,
                 init)
