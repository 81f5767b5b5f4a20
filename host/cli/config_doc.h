/* The configuration reference in Markdown (`contrast plugins --markdown`,
 * committed as docs/config.md and checked by tests/test_docs.c). */
#ifndef CONTRAST_HOST_CONFIG_DOC_H
#define CONTRAST_HOST_CONFIG_DOC_H

#include <stdio.h>

#include "plugins/loader.h"

/* Write the reference: the host's own groups, then every loaded plugin
 * (sorted by name) with each role implementation's parameter table. The
 * output depends only on the schemas and descriptors: no absolute paths,
 * no load order, so it is byte-identical from one machine to another. */
void ct_config_doc_write(FILE *f, const ct_plugin_set *set);

#endif
