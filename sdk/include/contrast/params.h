/* contrast SDK — the parameter store.
 *
 * All trainable parameters of a model live in one contiguous float buffer
 * and their gradients in another, so optimizers, EMA updates and
 * checkpoints are flat loops. Non-trained persistent tensors (batch-norm
 * running statistics, memory banks, queues) are "buffers" in a third area.
 * Each entry has a PyTorch-style dotted name ("encoder.layer1.0.conv1.weight").
 *
 * Life cycle: ct_params_new(); declare every tensor with ct_params_add()
 * (pointers returned are stable but their data is NULL); ct_params_finalize()
 * allocates and initialises; then use. Declaring after finalize is an error. */
#ifndef CONTRAST_PARAMS_H
#define CONTRAST_PARAMS_H

#include "rng.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_params ct_params;

/* How a tensor is initialised at finalize time. */
typedef enum ct_init {
    CT_INIT_ZEROS = 0,
    CT_INIT_ONES,
    CT_INIT_KAIMING_NORMAL,  /* N(0, 2/fan_out), torchvision's conv init (mode=fan_out, relu) */
    CT_INIT_KAIMING_UNIFORM, /* PyTorch's default Linear/Conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for bias-style */
    CT_INIT_LINEAR_DEFAULT,  /* PyTorch nn.Linear weight: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)) */
    CT_INIT_NORMAL,          /* N(0, init_arg^2) */
    CT_INIT_UNIFORM_SPHERE,  /* each row uniform on the unit sphere (banks, prototypes) */
    CT_INIT_FAN_IN_UNIFORM,  /* U(+-1/sqrt(init_arg)): biases, with init_arg = fan_in of the layer */
} ct_init;

typedef enum ct_param_kind {
    CT_PARAM_TRAINABLE = 0, /* in the flat parameter/gradient buffers */
    CT_PARAM_BUFFER = 1,    /* persistent, saved, not trained */
} ct_param_kind;

/* Per-entry flags for optimizers. */
enum {
    CT_PARAM_NO_DECAY = 1u << 0, /* LARS/AdamW: exclude from weight decay and adaptation (bias, norm) */
};

/* New empty store; `seed` drives initialisation (counter-based: the same
 * seed gives the same weights whatever the declaration timing). */
ct_params *ct_params_new(uint64_t seed);

/* Free the store and all its tensors. NULL is ignored. */
void ct_params_free(ct_params *p);

/* Declare a tensor. `name` is copied. Returns a stable pointer whose data
 * (and grad, for trainable ones) become valid at finalize. NULL with err
 * set on duplicate name, bad shape, or a store already finalized. */
ct_tensor *ct_params_add(ct_params *p, const char *name, ct_param_kind kind, int ndim,
                         const int64_t *shape, ct_init init, float init_arg, uint32_t flags,
                         ct_error *err);

/* Allocate the contiguous buffers and run every initialiser. */
ct_status ct_params_finalize(ct_params *p, ct_error *err);

/* Lookup by exact name; NULL when absent. */
ct_tensor *ct_params_find(const ct_params *p, const char *name);

/* Enumeration: count and i-th entry (declaration order). */
size_t ct_params_count(const ct_params *p);
ct_tensor *ct_params_at(const ct_params *p, size_t i, const char **name, ct_param_kind *kind,
                        uint32_t *flags);

/* The flat buffers: trainable data and grads (n_trainable floats each),
 * buffers (n_buffer floats). Valid after finalize. */
float *ct_params_data(const ct_params *p);
float *ct_params_grad(const ct_params *p);
size_t ct_params_numel(const ct_params *p);       /* trainable floats */
float *ct_params_buffer_data(const ct_params *p);
size_t ct_params_buffer_numel(const ct_params *p);

/* Offset (in floats) of a trainable tensor inside the flat buffer. */
size_t ct_params_offset(const ct_params *p, const ct_tensor *t);

/* Zero all trainable gradients. */
void ct_params_zero_grad(ct_params *p);

/* Freeze or unfreeze every entry whose name starts with `prefix`: frozen
 * tensors do not get CT_TENSOR_REQUIRES_GRAD (no gradient is computed for
 * them). Returns the number of entries affected. */
size_t ct_params_set_trainable(ct_params *p, const char *prefix, bool trainable);

#ifdef __cplusplus
}
#endif
#endif
