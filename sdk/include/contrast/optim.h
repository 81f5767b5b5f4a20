/* contrast SDK — optimizers and learning-rate schedules.
 *
 * Optimizers work on a ct_params store's flat buffers. Per-tensor decisions
 * (LARS trust ratio, weight-decay exclusion of CT_PARAM_NO_DECAY entries)
 * use the store's entry table. State (momentum, Adam moments) is one flat
 * buffer that checkpoints save as-is. */
#ifndef CONTRAST_OPTIM_H
#define CONTRAST_OPTIM_H

#include "params.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CT_OPTIM_ADAM (since ABI 1.2): torch.optim.Adam, whose weight decay is L2
 * added to the gradient before the moments (so Adam rescales it), unlike
 * AdamW's decoupled shrink. */
typedef enum ct_optim_kind { CT_OPTIM_SGD = 0, CT_OPTIM_ADAMW, CT_OPTIM_LARS, CT_OPTIM_ADAM } ct_optim_kind;

typedef struct ct_optim_config {
    ct_optim_kind kind;
    float lr;            /* base learning rate (the schedule scales it) */
    float momentum;      /* SGD/LARS momentum (0 disables) */
    bool nesterov;       /* SGD */
    float weight_decay;  /* SGD, Adam: L2 added to grad; AdamW: decoupled; LARS: added before trust ratio */
    float beta1, beta2, eps; /* AdamW and Adam */
    float trust_coef;    /* LARS eta (0.001 typical) */
    float clip_norm;     /* global gradient-norm clip; 0 disables */
    /* Since ABI 1.2 (false: as before). Weight decay also on the tensors
     * flagged CT_PARAM_NO_DECAY (norm weights, biases), as torch.optim does
     * with one parameter group (LARS: also their trust ratio). */
    bool decay_all;
} ct_optim_config;

/* Defaults: SGD lr 0.1 momentum 0.9, AdamW/Adam betas (0.9, 0.999) eps 1e-8 (AdamW weight decay 0.01,
 * Adam 0, PyTorch's defaults), LARS eta 0.001. */
ct_optim_config ct_optim_defaults(ct_optim_kind kind);

typedef struct ct_optim ct_optim;

/* An optimizer for every trainable tensor of `p` (finalized). */
ct_optim *ct_optim_new(ct_params *p, const ct_optim_config *cfg, ct_error *err);
void ct_optim_free(ct_optim *o);

/* One update with learning rate `lr` (from a schedule). Skips tensors whose
 * CT_TENSOR_REQUIRES_GRAD is off. Returns the pre-clip global gradient norm. */
float ct_optim_step(ct_optim *o, float lr);

/* Flat optimizer state for checkpoints: pointer and float count; the step
 * counter separately. */
float *ct_optim_state(ct_optim *o, size_t *numel);
int64_t ct_optim_steps(const ct_optim *o);
void ct_optim_set_steps(ct_optim *o, int64_t steps);

/* L2 norm of all trainable gradients. */
float ct_grad_global_norm(const ct_params *p);

/* Schedules: the learning rate at `step` (0-based) of `total` steps. */
typedef enum ct_sched_kind { CT_SCHED_CONSTANT = 0, CT_SCHED_COSINE, CT_SCHED_STEP } ct_sched_kind;

typedef struct ct_schedule {
    ct_sched_kind kind;
    float base_lr;
    int64_t warmup_steps;  /* linear warmup from base_lr*warmup_start to base_lr */
    float warmup_start;    /* fraction of base_lr at step 0 (0 typical) */
    float final_lr;        /* cosine: lr at the last step */
    int64_t step_every;    /* step: multiply by gamma every step_every steps */
    float gamma;
} ct_schedule;

float ct_schedule_lr(const ct_schedule *s, int64_t step, int64_t total);

#ifdef __cplusplus
}
#endif
#endif
