/* Built "for" the next ABI major: the descriptor is written by hand. */
#include <contrast/contrast.h>

static ct_status init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)reg, (void)host, (void)err;
    return CT_OK;
}

CT_EXPORT const ct_plugin_desc *contrast_plugin_entry(void);
CT_EXPORT const ct_plugin_desc *contrast_plugin_entry(void) {
    static const ct_plugin_desc d = {CT_ABI_MAJOR + 1, 0, sizeof(ct_plugin_desc), 0, CT_BUILD_TAG,
                                     "bad_abi_major", "1.0", "MIT", "ABI major mismatch",
                                     CT_ROLE_SOURCE, init, NULL, {0}};
    return &d;
}
