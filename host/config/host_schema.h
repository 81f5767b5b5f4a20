/* The host's own schemas: the groups of a config the host itself reads
 * (optimizer, schedule, train, pipelines, evaluation, ...). The loader
 * validates those groups with the ct__ arrays (private to config/); the
 * documentation lists them with ct_experiment_host_schema. */
#ifndef CONTRAST_HOST_HOST_SCHEMA_H
#define CONTRAST_HOST_HOST_SCHEMA_H

#include <stddef.h>

#include "contrast/contrast.h"

/* The schemas of the groups the host itself reads, for documentation
 * (`contrast plugins --markdown`): the i-th group's name ("(top level)",
 * "optimizer", "pipelines[]", ...) into *group and its schema; NULL when i
 * is past the last. */
const ct_param_spec *ct_experiment_host_schema(size_t i, const char **group);

/* ---- for the loader (config/experiment.c) ------------------------------------------ */

/* The top level: name, seed; top_groups are the only other keys allowed. */
extern const ct_param_spec ct__top_spec[];
extern const char *const ct__top_groups[];
extern const ct_param_spec ct__plugins_spec[];
extern const ct_param_spec ct__optimizer_spec[];
extern const ct_param_spec ct__schedule_spec[];
extern const ct_param_spec ct__train_spec[];
/* One entry of `pipelines`, with its sub-groups. */
extern const ct_param_spec ct__pipeline_spec[];
extern const char *const ct__pipeline_groups[];
/* One crop group of a multi-crop `views` list. */
extern const ct_param_spec ct__crop_spec[];
extern const char *const ct__crop_groups[];
extern const ct_param_spec ct__evaluation_spec[];
extern const char *const ct__evaluation_groups[];
/* The host's keys of one evaluator group (its data); the rest are the
 * evaluator plugin's. */
extern const ct_param_spec ct__evaluator_spec[];

#endif
