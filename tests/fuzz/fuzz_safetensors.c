/* libFuzzer harness: the safetensors reader (sdk/src/io/safetensors.c) and
 * the checkpoint loading built on it (host/training/checkpoint.c).
 *
 * Input: a whole .safetensors file. It is opened and walked (tensors,
 * metadata); a store mirroring its small F32 tensors is loaded from it,
 * leniently and exactly; then the same bytes are loaded as a training
 * checkpoint whose companion state file is the same file again (same
 * config_sha256), with an AdamW optimizer over that store. */
#include "training/checkpoint.h"

#include "fuzz_util.h"

#define FZ_MAX_TENSORS 16
#define FZ_MAX_NUMEL (1 << 16)

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return 0;
}

/* Read every field the API gives, as a caller printing the file would. */
static size_t walk(const ct_safetensors *f) {
    size_t sum = 0;
    for (size_t i = 0; i < ct_safetensors_count(f); i++) {
        const ct_safetensors_tensor *t = ct_safetensors_at(f, i);
        if (ct_safetensors_find(f, t->name) != t) fz_die("find differs from at", t->name);
        sum += strlen(t->name) + strlen(ct_safetensors_dtype_name(t->dtype)) + (size_t)t->ndim;
        if (t->nbytes) sum += ((const unsigned char *)t->data)[t->nbytes - 1];
    }
    for (size_t i = 0; i < ct_safetensors_meta_count(f); i++) {
        const char *v = NULL, *k = ct_safetensors_meta_at(f, i, &v);
        if (!k || !v || ct_safetensors_meta(f, k) == NULL) fz_die("metadata", k);
        sum += strlen(k) + strlen(v);
    }
    return sum;
}

/* A finalized store declaring the file's small F32 tensors (NULL if none
 * qualifies). */
static ct_params *mirror(const ct_safetensors *f) {
    ct_params *p = ct_params_new(0);
    if (!p) return NULL;
    int n = 0;
    ct_error err = CT_ERROR_INIT;
    for (size_t i = 0; i < ct_safetensors_count(f) && n < FZ_MAX_TENSORS; i++) {
        const ct_safetensors_tensor *t = ct_safetensors_at(f, i);
        if (t->dtype != CT_SAFETENSORS_F32 || t->ndim < 1 || t->nbytes / 4 > FZ_MAX_NUMEL) continue;
        bool empty = false;
        for (int d = 0; d < t->ndim; d++) empty |= t->shape[d] == 0;
        if (empty) continue;
        if (ct_params_add(p, t->name, CT_PARAM_TRAINABLE, t->ndim, t->shape, CT_INIT_ZEROS, 0, 0, &err)) n++;
    }
    if (n == 0 || ct_params_finalize(p, &err) != CT_OK) {
        ct_params_free(p);
        return NULL;
    }
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write("x.safetensors", data, size);
    fz_write("x.state.safetensors", data, size);
    ct_safetensors *f = NULL;
    ct_error err = CT_ERROR_INIT;
    if (ct_safetensors_open(path, &f, &err) != CT_OK) return 0;
    volatile size_t sink = walk(f);
    (void)sink;
    ct_params *p = mirror(f);
    if (p) {
        size_t unused = 0;
        if (ct_safetensors_load_params(f, p, &unused, &err) == CT_OK && unused > ct_safetensors_count(f))
            fz_die("unused count", path);
        ct_safetensors_load_params_exact(f, p, &err);
        ct_optim_config oc = ct_optim_defaults(CT_OPTIM_ADAMW);
        ct_optim *o = ct_optim_new(p, &oc, &err);
        ct_train_progress pr;
        ct_checkpoint_load(path, p, o, &pr, &err);
        ct_optim_free(o);
        ct_params_free(p);
    }
    ct_safetensors_close(f);
    free(ct_checkpoint_meta(path, "config", &err));
    return 0;
}
