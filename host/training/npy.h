/* NumPy .npy (format 1.0) files, for `contrast embed`. */
#ifndef CONTRAST_HOST_NPY_H
#define CONTRAST_HOST_NPY_H

#include <stdint.h>

#include "contrast/contrast.h"

/* Write a NumPy .npy (format 1.0) file: float32 (rows, cols) / int32 (rows). */
ct_status ct_write_npy_f32(const char *path, const float *data, int64_t rows, int64_t cols, ct_error *err);
ct_status ct_write_npy_i32(const char *path, const int32_t *data, int64_t rows, ct_error *err);

#endif
