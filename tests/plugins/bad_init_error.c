/* init() fails with a message. */
#include <contrast/contrast.h>

static ct_status init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)reg, (void)host;
    return ct_error_set(err, CT_ERR_IO, "cannot find its model file /nonexistent/model.bin");
}

CT_PLUGIN_DEFINE("bad_init_error", "1.0", "MIT", "init returns an error", CT_ROLE_SOURCE, init)
