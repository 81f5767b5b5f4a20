/* NumPy .npy (format 1.0) files, for `contrast embed`. */
#ifndef CONTRAST_HOST_NPY_H
#define CONTRAST_HOST_NPY_H

#include <stdbool.h>
#include <stdint.h>

#include "contrast/contrast.h"

/* Write a NumPy .npy (format 1.0) file: float32 (rows, cols) / int32 (rows).
 * The data goes to "<path>.tmp.<pid>" first and is put in place when
 * complete; an existing path is replaced only with overwrite, else
 * CT_ERR_EXISTS. */
ct_status ct_write_npy_f32(const char *path, const float *data, int64_t rows, int64_t cols, bool overwrite,
                           ct_error *err);
ct_status ct_write_npy_i32(const char *path, const int32_t *data, int64_t rows, bool overwrite, ct_error *err);

#endif
