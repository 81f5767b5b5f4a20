/* The projection head (mlp.h): declaration in nn.Sequential order and the
 * forward pass. One implementation for every architecture, so SimCLR's
 * head cannot drift from MoCo's, SwAV's or the memory bank's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/mlp.h"
#include "contrast/ops.h"

typedef struct ct__mlp_layer {
    ct_tensor *w, *b;                     /* Linear (b NULL when bias is off) */
    ct_tensor *bn_w, *bn_b, *bn_m, *bn_v; /* BatchNorm1d after it, or NULL */
    bool relu;                            /* ReLU after it (every layer but the last) */
} ct__mlp_layer;

struct ct_mlp {
    int n_layers;
    ct__mlp_layer layer[CT_MLP_MAX_LAYERS];
    float bn_momentum;
    int64_t out_dim;
};

static ct_tensor *ct__mlp_declare(ct_params *store, const char *prefix, int idx, const char *field,
                                  ct_param_kind kind, int ndim, const int64_t *shape, ct_init init, float arg,
                                  uint32_t flags, ct_error *err) {
    char name[192];
    snprintf(name, sizeof name, "%s.%d.%s", prefix, idx, field);
    return ct_params_add(store, name, kind, ndim, shape, init, arg, flags, err);
}

/* Linear idx (in -> out), then BatchNorm1d idx+1 when bn. Declaration order
 * (weight, bias, bn weight, bias, running mean, var) fixes the random init. */
static ct_status ct__mlp_layer_new(ct_params *store, const char *prefix, int idx, int64_t in, int64_t out, bool bias,
                                   bool bn, ct__mlp_layer *L, ct_error *err) {
    int64_t ws[2] = {out, in}, cs[1] = {out};
    L->w = ct__mlp_declare(store, prefix, idx, "weight", CT_PARAM_TRAINABLE, 2, ws, CT_INIT_LINEAR_DEFAULT, 0, 0, err);
    if (!L->w) return err ? err->code : CT_ERR_INVALID;
    if (bias) {
        L->b = ct__mlp_declare(store, prefix, idx, "bias", CT_PARAM_TRAINABLE, 1, cs, CT_INIT_FAN_IN_UNIFORM,
                               (float)in, CT_PARAM_NO_DECAY, err);
        if (!L->b) return err ? err->code : CT_ERR_INVALID;
    }
    if (!bn) return CT_OK;
    idx++;
    struct {
        const char *field;
        ct_tensor **dst;
        ct_param_kind kind;
        ct_init init;
    } parts[4] = {{"weight", &L->bn_w, CT_PARAM_TRAINABLE, CT_INIT_ONES},
                  {"bias", &L->bn_b, CT_PARAM_TRAINABLE, CT_INIT_ZEROS},
                  {"running_mean", &L->bn_m, CT_PARAM_BUFFER, CT_INIT_ZEROS},
                  {"running_var", &L->bn_v, CT_PARAM_BUFFER, CT_INIT_ONES}};
    for (int i = 0; i < 4; i++) {
        *parts[i].dst = ct__mlp_declare(store, prefix, idx, parts[i].field, parts[i].kind, 1, cs, parts[i].init, 0,
                                        CT_PARAM_NO_DECAY, err);
        if (!*parts[i].dst) return err ? err->code : CT_ERR_INVALID;
    }
    return CT_OK;
}

ct_status ct_mlp_new(ct_params *store, const char *prefix, int64_t in, const ct_mlp_config *cfg, ct_mlp **out,
                     ct_error *err) {
    if (out) *out = NULL;
    if (!out || !store || !prefix || !cfg)
        return ct_error_set(err, CT_ERR_INVALID, "ct_mlp_new: NULL %s",
                            !out ? "out" : !store ? "store" : !prefix ? "prefix" : "config");
    if (cfg->n_hidden < 0 || cfg->n_hidden + 1 > CT_MLP_MAX_LAYERS)
        return ct_error_set(err, CT_ERR_CONFIG, "head '%s' has %d hidden layers, at most %d", prefix, cfg->n_hidden,
                            CT_MLP_MAX_LAYERS - 1);
    if (cfg->n_hidden > 0 && !cfg->hidden)
        return ct_error_set(err, CT_ERR_INVALID, "head '%s': %d hidden layers but no hidden sizes", prefix,
                            cfg->n_hidden);
    if (in <= 0 || cfg->out <= 0)
        return ct_error_set(err, CT_ERR_CONFIG, "head '%s': sizes must be positive (in %lld, out %lld)", prefix,
                            (long long)in, (long long)cfg->out);
    for (int i = 0; i < cfg->n_hidden; i++)
        if (cfg->hidden[i] <= 0)
            return ct_error_set(err, CT_ERR_CONFIG, "head '%s': hidden size %d is %lld, must be positive", prefix, i,
                                (long long)cfg->hidden[i]);
    if (!(cfg->bn_momentum >= 0.0f && cfg->bn_momentum <= 1.0f))
        return ct_error_set(err, CT_ERR_CONFIG, "head '%s': bn_momentum %g is outside [0, 1]", prefix,
                            (double)cfg->bn_momentum);
    for (size_t i = 0; i < sizeof cfg->reserved / sizeof cfg->reserved[0]; i++)
        if (cfg->reserved[i])
            return ct_error_set(err, CT_ERR_INVALID, "head '%s': reserved config fields must be zero", prefix);
    ct_mlp *m = calloc(1, sizeof *m);
    if (!m) return ct_error_set(err, CT_ERR_NOMEM, "head '%s': out of memory", prefix);
    m->bn_momentum = cfg->bn_momentum;
    int idx = 0;
    for (int i = 0; i <= cfg->n_hidden; i++) {
        bool last = i == cfg->n_hidden;
        int64_t width = last ? cfg->out : cfg->hidden[i];
        ct__mlp_layer *L = &m->layer[m->n_layers++];
        ct_status st =
            ct__mlp_layer_new(store, prefix, idx, in, width, cfg->bias && (last || !cfg->bn), !last && cfg->bn, L, err);
        if (st != CT_OK) {
            free(m);
            return st;
        }
        idx += 1 + (!last && cfg->bn) + !last; /* Linear, BatchNorm1d, ReLU each take an index */
        L->relu = !last;
        in = width;
    }
    m->out_dim = in;
    *out = m;
    return CT_OK;
}

ct_status ct_mlp_from_settings(const ct_settings *s, ct_params *store, const char *prefix, int64_t in,
                               const char *owner, ct_mlp **out, ct_error *err) {
    if (out) *out = NULL;
    if (!s || !out) return ct_error_set(err, CT_ERR_INVALID, "ct_mlp_from_settings: NULL %s", !s ? "settings" : "out");
    if (!owner) owner = "head";
    size_t n_hidden = ct_settings_len(s, "head_hidden");
    if (n_hidden + 1 > CT_MLP_MAX_LAYERS)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: head_hidden (%s) has %zu layers, at most %d", owner,
                            ct_settings_origin(s, "head_hidden"), n_hidden, CT_MLP_MAX_LAYERS - 1);
    int64_t hidden[CT_MLP_MAX_LAYERS];
    for (size_t i = 0; i < n_hidden; i++) hidden[i] = ct_settings_int_at(s, "head_hidden", i);
    ct_mlp_config cfg = {(int)n_hidden, hidden, ct_settings_int(s, "head_out"), ct_settings_bool(s, "head_bn"),
                         ct_settings_bool(s, "head_bias"), (float)ct_settings_float(s, "bn_momentum"), {0}};
    /* A schema without CT_MLP_HEAD_PARAMS reads as zeros: say which key. */
    ct_status st = ct_settings_status(s, err);
    if (st != CT_OK) return st;
    st = ct_mlp_new(store, prefix, in, &cfg, out, err);
    if (st != CT_OK) ct_error_prefix(err, "%s: ", owner);
    return st;
}

ct_tensor *ct_mlp_forward(const ct_mlp *m, ct_graph *g, ct_tensor *x) {
    for (int i = 0; i < m->n_layers && x; i++) {
        const ct__mlp_layer *L = &m->layer[i];
        x = ct_linear(g, x, L->w, L->b);
        if (L->bn_w) x = ct_batchnorm(g, x, L->bn_w, L->bn_b, L->bn_m, L->bn_v, m->bn_momentum, 1e-5f);
        if (L->relu) x = ct_relu(g, x);
    }
    return x;
}

int64_t ct_mlp_out_dim(const ct_mlp *m) { return m->out_dim; }

void ct_mlp_free(ct_mlp *m) { free(m); }
