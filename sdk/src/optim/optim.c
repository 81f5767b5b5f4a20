/* Optimizers (SGD, AdamW, Adam, LARS) over a parameter store's flat
 * buffers, and learning-rate schedules. Update rules follow PyTorch's
 * torch.optim.SGD, AdamW and Adam (weight decay added to the gradient), and
 * the LARS of SimCLR (weight decay added to the gradient, trust ratio
 * eta*||w||/||g||, momentum on the scaled update). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/optim.h"

typedef struct {
    ct_tensor *t;
    size_t off;
    bool no_decay;
} ct__opt_entry;

struct ct_optim {
    ct_params *p;
    ct_optim_config cfg;
    ct__opt_entry *e;
    size_t n;
    float *state; /* SGD/LARS: momentum (n floats); AdamW/Adam: m then v (2n) */
    size_t state_n, numel;
    int64_t steps;
};

ct_optim_config ct_optim_defaults(ct_optim_kind kind) {
    ct_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.trust_coef = 0.001f;
    switch (kind) {
    case CT_OPTIM_SGD:
        c.lr = 0.1f;
        c.momentum = 0.9f;
        break;
    case CT_OPTIM_ADAMW:
        c.lr = 1e-3f;
        c.weight_decay = 0.01f; /* PyTorch's AdamW default */
        break;
    case CT_OPTIM_LARS:
        c.lr = 0.1f;
        c.momentum = 0.9f;
        break;
    case CT_OPTIM_ADAM:
        c.lr = 1e-3f; /* weight decay 0: torch.optim.Adam's default */
        break;
    }
    return c;
}

static ct_status ct__optim_check(const ct_optim_config *c, ct_error *err) {
    if (c->kind != CT_OPTIM_SGD && c->kind != CT_OPTIM_ADAMW && c->kind != CT_OPTIM_LARS && c->kind != CT_OPTIM_ADAM)
        return ct_error_set(err, CT_ERR_INVALID, "optim: unknown kind %d", (int)c->kind);
    if (!(c->lr >= 0.0f)) return ct_error_set(err, CT_ERR_INVALID, "optim: lr %g must be >= 0", (double)c->lr);
    if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
        return ct_error_set(err, CT_ERR_INVALID, "optim: momentum %g must be in [0, 1)", (double)c->momentum);
    if (c->nesterov && (c->kind != CT_OPTIM_SGD || c->momentum == 0.0f))
        return ct_error_set(err, CT_ERR_INVALID, "optim: nesterov needs SGD with momentum > 0");
    if (!(c->weight_decay >= 0.0f))
        return ct_error_set(err, CT_ERR_INVALID, "optim: weight_decay %g must be >= 0", (double)c->weight_decay);
    if (!(c->clip_norm >= 0.0f))
        return ct_error_set(err, CT_ERR_INVALID, "optim: clip_norm %g must be >= 0", (double)c->clip_norm);
    if ((c->kind == CT_OPTIM_ADAMW || c->kind == CT_OPTIM_ADAM) &&
        !(c->beta1 >= 0.0f && c->beta1 < 1.0f && c->beta2 >= 0.0f && c->beta2 < 1.0f && c->eps > 0.0f))
        return ct_error_set(err, CT_ERR_INVALID, "optim: %s needs betas in [0, 1) and eps > 0 (got %g, %g, %g)",
                            c->kind == CT_OPTIM_ADAM ? "Adam" : "AdamW", (double)c->beta1, (double)c->beta2,
                            (double)c->eps);
    if (c->kind == CT_OPTIM_LARS && !(c->trust_coef > 0.0f))
        return ct_error_set(err, CT_ERR_INVALID, "optim: LARS trust_coef %g must be > 0", (double)c->trust_coef);
    return CT_OK;
}

ct_optim *ct_optim_new(ct_params *p, const ct_optim_config *cfg, ct_error *err) {
    if (ct__optim_check(cfg, err) != CT_OK) return NULL;
    if (!ct_params_data(p) && ct_params_count(p) > 0) {
        ct_error_set(err, CT_ERR_INVALID, "optim: the parameter store is not finalized");
        return NULL;
    }
    ct_optim *o = calloc(1, sizeof *o);
    size_t count = ct_params_count(p);
    if (o) o->e = calloc(count ? count : 1, sizeof *o->e);
    if (!o || !o->e) {
        free(o);
        ct_error_set(err, CT_ERR_NOMEM, "optim: out of memory");
        return NULL;
    }
    o->p = p;
    o->cfg = *cfg;
    for (size_t i = 0; i < count; i++) {
        ct_param_kind kind;
        uint32_t flags;
        ct_tensor *t = ct_params_at(p, i, NULL, &kind, &flags);
        if (kind != CT_PARAM_TRAINABLE) continue;
        bool no_decay = (flags & CT_PARAM_NO_DECAY) != 0 && !cfg->decay_all;
        o->e[o->n++] = (ct__opt_entry){t, ct_params_offset(p, t), no_decay};
    }
    o->numel = ct_params_numel(p);
    const bool adam = cfg->kind == CT_OPTIM_ADAMW || cfg->kind == CT_OPTIM_ADAM;
    o->state_n = adam ? 2 * o->numel : cfg->momentum > 0.0f ? o->numel : 0;
    if (o->state_n) {
        o->state = calloc(o->state_n, sizeof(float));
        if (!o->state) {
            ct_error_set(err, CT_ERR_NOMEM, "optim: cannot allocate %zu floats of state", o->state_n);
            ct_optim_free(o);
            return NULL;
        }
    }
    return o;
}

void ct_optim_free(ct_optim *o) {
    if (!o) return;
    free(o->e);
    free(o->state);
    free(o);
}

static double ct__sumsq(const float *x, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

float ct_grad_global_norm(const ct_params *p) {
    double s = 0.0;
    size_t count = ct_params_count(p);
    for (size_t i = 0; i < count; i++) {
        ct_param_kind kind;
        ct_tensor *t = ct_params_at(p, i, NULL, &kind, NULL);
        if (kind == CT_PARAM_TRAINABLE && (t->flags & CT_TENSOR_REQUIRES_GRAD) && t->grad)
            s += ct__sumsq(t->grad, t->numel);
    }
    return (float)sqrt(s);
}

static void ct__sgd(const ct_optim_config *c, float *restrict w, const float *restrict g, float *restrict buf,
                    int64_t n, float lr) {
    const float wd = c->weight_decay, mom = c->momentum;
    for (int64_t i = 0; i < n; i++) {
        float d = g[i] + wd * w[i];
        if (buf) {
            buf[i] = mom * buf[i] + d;
            d = c->nesterov ? d + mom * buf[i] : buf[i];
        }
        w[i] -= lr * d;
    }
}

/* AdamW (decoupled: w shrinks by lr*wd) or, with l2, Adam (wd*w joins the
 * gradient before the moments, torch.optim.Adam). */
static void ct__adamw(const ct_optim_config *c, float *restrict w, const float *restrict g, float *restrict m,
                      float *restrict v, int64_t n, float lr, bool decay, bool l2, int64_t step) {
    const float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    const float bc1 = 1.0f - powf(b1, (float)step), bc2 = 1.0f - powf(b2, (float)step);
    const float step_size = lr / bc1, inv_sqrt_bc2 = 1.0f / sqrtf(bc2);
    const float shrink = decay && !l2 ? 1.0f - lr * c->weight_decay : 1.0f;
    const float wd = decay && l2 ? c->weight_decay : 0.0f;
    for (int64_t i = 0; i < n; i++) {
        const float d = g[i] + wd * w[i];
        w[i] *= shrink;
        m[i] = b1 * m[i] + (1.0f - b1) * d;
        v[i] = b2 * v[i] + (1.0f - b2) * d * d;
        w[i] -= step_size * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + eps);
    }
}

static void ct__lars(const ct_optim_config *c, float *restrict w, const float *restrict g, float *restrict buf,
                     int64_t n, float lr, bool adapt) {
    const float wd = adapt ? c->weight_decay : 0.0f, mom = c->momentum;
    float trust = 1.0f;
    if (adapt) {
        double wn = 0.0, gn = 0.0;
        for (int64_t i = 0; i < n; i++) {
            float d = g[i] + wd * w[i];
            wn += (double)w[i] * w[i];
            gn += (double)d * d;
        }
        if (wn > 0.0 && gn > 0.0) trust = (float)(c->trust_coef * sqrt(wn) / sqrt(gn));
    }
    const float scaled = lr * trust;
    for (int64_t i = 0; i < n; i++) {
        float u = scaled * (g[i] + wd * w[i]);
        if (buf) {
            buf[i] = mom * buf[i] + u;
            u = buf[i];
        }
        w[i] -= u;
    }
}

float ct_optim_step(ct_optim *o, float lr) {
    float norm = ct_grad_global_norm(o->p);
    if (o->cfg.clip_norm > 0.0f && norm > o->cfg.clip_norm) {
        /* torch.nn.utils.clip_grad_norm_: scale by clip / (norm + 1e-6) */
        float s = o->cfg.clip_norm / (norm + 1e-6f);
        for (size_t i = 0; i < o->n; i++) {
            ct_tensor *t = o->e[i].t;
            if (!(t->flags & CT_TENSOR_REQUIRES_GRAD)) continue;
            for (int64_t k = 0; k < t->numel; k++) t->grad[k] *= s;
        }
    }
    o->steps++;
    for (size_t i = 0; i < o->n; i++) {
        const ct__opt_entry *e = &o->e[i];
        ct_tensor *t = e->t;
        if (!(t->flags & CT_TENSOR_REQUIRES_GRAD)) continue;
        float *s = o->state ? o->state + e->off : NULL;
        switch (o->cfg.kind) {
        case CT_OPTIM_SGD:
            ct__sgd(&o->cfg, t->data, t->grad, s, t->numel, lr);
            break;
        case CT_OPTIM_ADAMW:
        case CT_OPTIM_ADAM:
            ct__adamw(&o->cfg, t->data, t->grad, s, o->state + o->numel + e->off, t->numel, lr, !e->no_decay,
                      o->cfg.kind == CT_OPTIM_ADAM, o->steps);
            break;
        case CT_OPTIM_LARS:
            ct__lars(&o->cfg, t->data, t->grad, s, t->numel, lr, !e->no_decay);
            break;
        }
    }
    return norm;
}

float *ct_optim_state(ct_optim *o, size_t *numel) {
    if (numel) *numel = o->state_n;
    return o->state;
}

int64_t ct_optim_steps(const ct_optim *o) { return o->steps; }

void ct_optim_set_steps(ct_optim *o, int64_t steps) { o->steps = steps; }

/* ---- schedules ------------------------------------------------------------ */

float ct_schedule_lr(const ct_schedule *s, int64_t step, int64_t total) {
    if (step < 0) step = 0;
    if (s->warmup_steps > 0 && step < s->warmup_steps) {
        double f = s->warmup_start + (1.0 - s->warmup_start) * (double)step / (double)s->warmup_steps;
        return (float)(s->base_lr * f);
    }
    switch (s->kind) {
    case CT_SCHED_CONSTANT:
        return s->base_lr;
    case CT_SCHED_COSINE: {
        /* From base_lr right after warmup to final_lr at the last step (total-1). */
        int64_t span = total - 1 - s->warmup_steps;
        if (span <= 0) return s->base_lr;
        double prog = (double)(step - s->warmup_steps) / (double)span;
        if (prog > 1.0) prog = 1.0;
        return (float)(s->final_lr + (s->base_lr - s->final_lr) * 0.5 * (1.0 + cos(M_PI * prog)));
    }
    case CT_SCHED_STEP:
        if (s->step_every <= 0) return s->base_lr;
        return (float)(s->base_lr * pow(s->gamma, (double)(step / s->step_every)));
    }
    return s->base_lr;
}
