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

/* The one-line description of a role implementation ("" when it has none),
 * as the reference and `contrast plugins` show it. */
const char *ct_config_doc_description(const ct_registry_entry *e);

/* A parameter's range as shown beside it: its choices ("sgd|adamw|lars"),
 * "[min, max]" for a bounded number ("-inf"/"inf" for an open side), or ""
 * (booleans, strings, unbounded numbers). */
void ct_config_doc_range(const ct_param_spec *p, char *buf, size_t n);

#endif
