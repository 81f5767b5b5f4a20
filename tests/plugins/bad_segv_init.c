/* init() dereferences NULL: the loader must survive it. */
#include <stddef.h>

#include <contrast/contrast.h>

static ct_status init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)reg, (void)host, (void)err;
    volatile int *p = NULL;
    *p = 42;
    return CT_OK;
}

CT_PLUGIN_DEFINE("bad_segv_init", "1.0", "MIT", "crashes in init", CT_ROLE_SOURCE, init)
