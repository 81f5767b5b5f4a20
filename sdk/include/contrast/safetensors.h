/* contrast SDK — reading safetensors files (checkpoints) from programs that
 * embed libcontrast.
 *
 * The host writes training checkpoints as safetensors files
 * (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON
 *   {"__metadata__": {"key": "value", ...},
 *    "encoder.conv1.weight": {"dtype": "F32", "shape": [32, 1, 3, 3],
 *                             "data_offsets": [begin, end]}, ...}
 * then the raw little-endian tensor data (offsets relative to its start).
 * Every parameter and buffer of the training store is saved under its
 * ct_params name, so a model built with the same builder and prefix (for
 * example ct_resnet_new(..., "encoder.", ...)) loads with
 * ct_safetensors_load_params().
 *
 * Opening validates the whole file strictly: header length within the file
 * and under 100 MB, well-formed JSON (integers without sign or fraction,
 * string-only metadata), known dtypes, shape times element size equal to
 * each tensor's byte span, spans inside the data area, tiling it without
 * gaps or overlaps, unique names. Errors (CT_ERR_IO, CT_ERR_FORMAT) name
 * the file and the problem. Only the 8-byte length and the header are read
 * to decide all that, each checked against the file's size before it is
 * allocated; the data area is then mapped read-only (read into memory
 * where the file cannot be mapped), so tensor bytes are paged in only
 * when used. A file truncated by another process while it is open may
 * fault when its data is read; the host writes checkpoints by rename, which
 * never truncates an open file. This is the one reader of the project: the
 * host's training checkpoints load through it too. Not thread-safe per
 * file object; distinct files are independent. */
#ifndef CONTRAST_SAFETENSORS_H
#define CONTRAST_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "params.h"
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types a file may hold. Only F32 tensors load into a store. */
typedef enum ct_safetensors_dtype {
    CT_SAFETENSORS_F32 = 0,
    CT_SAFETENSORS_F64,
    CT_SAFETENSORS_F16,
    CT_SAFETENSORS_BF16,
    CT_SAFETENSORS_I64,
    CT_SAFETENSORS_I32,
    CT_SAFETENSORS_I16,
    CT_SAFETENSORS_I8,
    CT_SAFETENSORS_U8,
    CT_SAFETENSORS_BOOL,
} ct_safetensors_dtype;

#define CT_SAFETENSORS_MAX_DIMS 8
/* Headers longer than this many bytes are refused (the reference
 * implementation's limit). */
#define CT_SAFETENSORS_MAX_HEADER 100000000u

/* One tensor of an open file; `data` points into the file's buffer (valid
 * until ct_safetensors_close) and may be unaligned: copy it with memcpy. */
typedef struct ct_safetensors_tensor {
    const char *name;
    ct_safetensors_dtype dtype;
    int ndim;
    int64_t shape[CT_SAFETENSORS_MAX_DIMS];
    const void *data;
    size_t nbytes;
} ct_safetensors_tensor;

typedef struct ct_safetensors ct_safetensors;

/* Read and validate `path`. Free with ct_safetensors_close(). */
ct_status ct_safetensors_open(const char *path, ct_safetensors **out, ct_error *err);

/* Free an open file; NULL is ignored. */
void ct_safetensors_close(ct_safetensors *f);

/* Number of tensors and the i-th one (file order), or NULL past the end. */
size_t ct_safetensors_count(const ct_safetensors *f);
const ct_safetensors_tensor *ct_safetensors_at(const ct_safetensors *f, size_t i);

/* The tensor called `name`, or NULL. */
const ct_safetensors_tensor *ct_safetensors_find(const ct_safetensors *f, const char *name);

/* A metadata value ("config", "step", ...), or NULL when absent. Owned by f. */
const char *ct_safetensors_meta(const ct_safetensors *f, const char *key);

/* Element type name ("F32") and size in bytes (0 for an unknown value). */
const char *ct_safetensors_dtype_name(ct_safetensors_dtype d);
size_t ct_safetensors_dtype_size(ct_safetensors_dtype d);

/* Copy tensors into a finalized store: every entry of the store (parameter
 * or buffer) must be in the file under its name, as F32, with the same
 * shape, and every value finite; otherwise CT_ERR_NOT_FOUND / CT_ERR_FORMAT
 * / CT_ERR_SHAPE names the file and the entry (for NaN or Inf values, with
 * their count and the first one's index), and the store is left unchanged
 * (everything is checked before anything is copied). Tensors of the file that the store
 * does not declare (a projection head when only the encoder is built) are
 * ignored; their count goes to *unused when unused is not NULL. */
ct_status ct_safetensors_load_params(const ct_safetensors *f, ct_params *store, size_t *unused,
                                     ct_error *err);

/* ---- strict loading and header access (what the host's checkpoint loading needs) */

/* Like ct_safetensors_load_params(), but the file must hold exactly the
 * store: a tensor the store does not declare is CT_ERR_FORMAT naming it
 * ("unknown tensor ... (not in the model)"), and the store is left
 * unchanged. For resuming training, where a stray tensor means the wrong
 * model or a damaged file. */
ct_status ct_safetensors_load_params_exact(const ct_safetensors *f, ct_params *store, ct_error *err);

/* The path the file was opened from (for messages). Owned by f. */
const char *ct_safetensors_path(const ct_safetensors *f);

/* Number of metadata entries, and the i-th key (file order) with its value
 * in *value when value is not NULL; NULL past the end. Owned by f. */
size_t ct_safetensors_meta_count(const ct_safetensors *f);
const char *ct_safetensors_meta_at(const ct_safetensors *f, size_t i, const char **value);

#ifdef __cplusplus
}
#endif
#endif
