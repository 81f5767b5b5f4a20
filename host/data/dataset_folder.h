/* A generated dataset folder, made once (`contrast make-dataset`): built in
 * OUT.partial-<pid>, its parameters written to params.txt, then renamed to
 * OUT; a folder whose params.txt matches is reused, any other OUT refused. */
#ifndef CONTRAST_HOST_DATASET_FOLDER_H
#define CONTRAST_HOST_DATASET_FOLDER_H

#include <stdbool.h>

#include "contrast/contrast.h"

/* Fill the folder `dir` (exists, empty). */
typedef ct_status (*ct_dataset_fill_fn)(void *ctx, const char *dir, ct_error *err);

/* Make `out` with `fill` unless it exists with the same `params` text
 * (*reused = true); `kind` names the set in the refusal ("moving-fmnist").
 * The folders above OUT are made as needed; a failed fill removes its
 * partial folder. */
ct_status ct_dataset_folder_make(const char *out, const char *kind, const char *params, ct_dataset_fill_fn fill,
                                 void *ctx, bool *reused, ct_error *err);

/* mkdir that accepts an existing folder; the error names the path. */
ct_status ct_dataset_mkdir(const char *path, ct_error *err);

/* Write `text` to `path`; the error names the path. */
ct_status ct_dataset_write_text(const char *path, const char *text, ct_error *err);

#endif
