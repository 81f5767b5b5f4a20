/* Checkpoints as safetensors files.
 *
 * File format (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"k": "v", ...},
 *    "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
 * padded with spaces to a multiple of 8, then the raw little-endian tensor
 * data; offsets are relative to the first byte after the header. PyTorch
 * users read the files with safetensors.torch.load_file().
 *
 * A training checkpoint is two files written atomically (temp file in the
 * same directory, fsync, rename, fsync of the directory):
 *   <run>/checkpoint-s<step>.safetensors        every parameter and buffer
 *       of the store under its ct_params name ("encoder.conv1.weight",
 *       "head.0.weight"); metadata: config (the resolved config text),
 *       config_sha256, epoch, step, format.
 *   <run>/checkpoint-s<step>.state.safetensors  optimizer state, optimizer
 *       step counter and training progress (epoch, step, seed), so that a
 *       resumed run continues exactly (data order and augmentation are
 *       functions of (seed, epoch, step), so no other RNG state exists).
 * The companion is written first; a main file without a valid companion
 * is still usable for evaluation. Every read goes through the SDK's strict
 * reader and a bad file is an error naming the path and what is wrong. */
#ifndef CONTRAST_HOST_CHECKPOINT_H
#define CONTRAST_HOST_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "contrast/contrast.h"
#include "contrast/safetensors.h"

/* ---- writing safetensors files ------------------------------------------ */

/* Files are read with the SDK's reader (contrast/safetensors.h:
 * ct_safetensors_open() and friends), which validates them strictly; the
 * writer lives here because only the host writes checkpoints. */

/* One metadata entry to write. */
typedef struct ct_st_meta {
    const char *key;
    const char *value;
} ct_st_meta;

/* Write tensors (in the given order; `data` points to nbytes bytes each)
 * and string metadata to `path`, atomically. nbytes must equal the shape
 * product times the element size. */
ct_status ct_safetensors_write(const char *path, const ct_safetensors_tensor *tensors, size_t n,
                               const ct_st_meta *meta, size_t n_meta, ct_error *err);

/* Test hook: when set, ct_safetensors_write stops after writing and syncing
 * the temporary file and before the rename, as a crash there would, and
 * returns CT_ERR_INTERRUPTED. */
extern int ct__st_crash_before_rename;

/* ---- training checkpoints ----------------------------------------------- */

typedef struct ct_train_progress {
    int64_t epoch; /* completed epochs */
    int64_t step;  /* completed optimizer steps (global) */
    uint64_t seed; /* experiment seed */
} ct_train_progress;

/* Save the store (every trainable tensor and buffer), and, when `opt` is
 * given, the optimizer state and progress in the companion file, into
 * run_dir; then delete all but the newest `keep` checkpoints (keep <= 0:
 * keep all). `config_text` (may be NULL) is stored with its SHA-256. The
 * main file's path is written to saved (n bytes) when saved is not NULL. */
ct_status ct_checkpoint_save(const char *run_dir, const ct_params *p, ct_optim *opt,
                             const ct_train_progress *pr, const char *config_text, int keep,
                             char *saved, size_t n, ct_error *err);

/* Load a main checkpoint file into the store: every store entry must be
 * present as F32 with its shape, and every tensor of the file must be an
 * entry of the store (ct_safetensors_load_params_exact). When opt/pr are
 * given, the companion file is loaded too (it must exist, hold the
 * optimizer state and progress, and carry the main file's config_sha256). */
ct_status ct_checkpoint_load(const char *path, ct_params *p, ct_optim *opt,
                             ct_train_progress *pr, ct_error *err);

/* The newest checkpoint (highest step) of run_dir into path; CT_ERR_NOT_FOUND
 * when there is none. */
ct_status ct_checkpoint_latest(const char *run_dir, char *path, size_t n, ct_error *err);

/* The companion (state) file name of a main checkpoint path. */
void ct_checkpoint_state_path(const char *path, char *out, size_t n);

/* Read one metadata value of a checkpoint (malloc'd copy, NULL when absent). */
char *ct_checkpoint_meta(const char *path, const char *key, ct_error *err);

#endif
