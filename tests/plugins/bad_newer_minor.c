/* Built "for" a newer ABI minor: the descriptor is written by hand. */
#include <contrast/contrast.h>

static ct_status init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)reg, (void)host, (void)err;
    return CT_OK;
}

CT_EXPORT const ct_plugin_desc *contrast_plugin_entry(void);
CT_EXPORT const ct_plugin_desc *contrast_plugin_entry(void) {
    static const ct_plugin_desc d = {CT_ABI_MAJOR, CT_ABI_MINOR + 1, sizeof(ct_plugin_desc), 0, CT_BUILD_TAG,
                                     "bad_newer_minor", "1.0", "MIT", "built against a newer minor",
                                     CT_ROLE_SOURCE, init, NULL, {0}};
    return &d;
}
