/* Built "for" a role this host does not know: the descriptor is written by hand. */
#include <contrast/contrast.h>

static ct_status init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)reg, (void)host, (void)err;
    return CT_OK;
}

CT_EXPORT const ct_plugin_desc *contrast_plugin_entry(void);
CT_EXPORT const ct_plugin_desc *contrast_plugin_entry(void) {
    static const ct_plugin_desc d = {CT_ABI_MAJOR, CT_ABI_MINOR, sizeof(ct_plugin_desc), 0, CT_BUILD_TAG,
                                     "bad_role", "1.0", "MIT", "unknown role",
                                     CT_ROLE_SOURCE | (1u << 7), init, NULL, {0}};
    return &d;
}
