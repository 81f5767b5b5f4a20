/* The --set machinery, for the experiment loader (private to config/). */
#ifndef CONTRAST_HOST_OVERRIDES_H
#define CONTRAST_HOST_OVERRIDES_H

#include <libconfig.h>

#include "contrast/contrast.h"

/* Apply one "--set group.key=value" to the parsed config: the value is a
 * libconfig literal (1, 0.5, true, "s", [1, 2]), else a bare string;
 * missing groups are created, list elements are addressed as [i].
 * CT_ERR_CONFIG naming the argument when it cannot be applied. */
ct_status ct__config_apply_override(config_t *cfg, const char *arg, ct_error *err);

#endif
