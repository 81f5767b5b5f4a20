/* contrast SDK — the projection head: a multi-layer perceptron with
 * PyTorch nn.Sequential parameter names (ABI 1.2).
 *
 * Every architecture projects encoder features through one of these
 * (SimCLR's, MoCo's query and key heads, SwAV's, the memory bank's), and a
 * structure may use it for its own projections. Layers, for hidden sizes
 * [h1, h2, ...] and output size o:
 *   Linear(in, h1) [BatchNorm1d(h1)] ReLU  Linear(h1, h2) ... Linear(., o)
 * each module taking one index under the prefix, as nn.Sequential does:
 * hidden [128] without batch norm gives prefix.0 (Linear), prefix.1 (ReLU),
 * prefix.2 (Linear); with batch norm prefix.0 (Linear, no bias),
 * prefix.1 (BatchNorm1d), prefix.2 (ReLU), prefix.3 (Linear). A bias before
 * batch norm is dropped (the norm removes the mean). Parameters are
 * declared in module order, so the same config gives the same random init
 * and the same checkpoint names as every earlier release. */
#ifndef CONTRAST_MLP_H
#define CONTRAST_MLP_H

#include <stdbool.h>
#include <stdint.h>

#include "params.h"
#include "settings.h"
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most linear layers of one head (hidden layers + the output layer). */
#define CT_MLP_MAX_LAYERS 8

/* The settings a head is configured by, for a plugin's parameter schema
 * (put inside its ct_param_spec array): head_hidden, head_out, head_bn,
 * head_bias, bn_momentum; defaults for the first two as libconfig text. */
#define CT_MLP_HEAD_PARAMS(hidden_def, out_def)                                                          \
    CT_PARAM_INTS("head_hidden", hidden_def, 1, 1 << 20,                                                  \
                  "hidden sizes of the projection MLP ([] for a linear head)"),                           \
        CT_PARAM_INT("head_out", out_def, 1, 1 << 20, "projection output size"),                          \
        CT_PARAM_BOOL("head_bn", "false", "batch norm after each hidden linear layer"),                  \
        CT_PARAM_BOOL("head_bias", "true",                                                                \
                      "biases in the head's linear layers (hidden ones drop it under head_bn)"),          \
        CT_PARAM_FLOAT("bn_momentum", "0.1", 0, 1, "head batch-norm running-average momentum")

/* A head's shape, for building one without settings. */
typedef struct ct_mlp_config {
    int n_hidden;          /* hidden layers, at most CT_MLP_MAX_LAYERS - 1 */
    const int64_t *hidden; /* their sizes (n_hidden entries; read during ct_mlp_new only) */
    int64_t out;           /* output size */
    bool bn;               /* BatchNorm1d after each hidden linear layer */
    bool bias;             /* biases in the linear layers (hidden ones drop it under bn) */
    float bn_momentum;     /* running-average momentum of the batch norms (PyTorch's 0.1) */
    uint32_t reserved[4];  /* zero */
} ct_mlp_config;

typedef struct ct_mlp ct_mlp;

/* Declare the head's parameters in `store` under `prefix` ("head" gives
 * "head.0.weight", ...) for inputs of size `in`, and return it in *out
 * (free with ct_mlp_free; the tensors belong to the store, which must
 * outlive the head and be finalized before ct_mlp_forward). Too many
 * hidden layers, a size below 1 and a bn_momentum outside [0, 1] are
 * CT_ERR_CONFIG; NULL arguments, missing hidden sizes and nonzero
 * `reserved` fields CT_ERR_INVALID; name clashes the store's error. */
ct_status ct_mlp_new(ct_params *store, const char *prefix, int64_t in, const ct_mlp_config *cfg, ct_mlp **out,
                     ct_error *err);

/* The same, configured by the CT_MLP_HEAD_PARAMS settings of `s`. `owner`
 * (the plugin's name) prefixes error messages, which name the setting. A
 * schema without CT_MLP_HEAD_PARAMS gives the settings' own misuse status
 * (ct_settings_status: "owner: setting 'head_hidden' is not declared ..."). */
ct_status ct_mlp_from_settings(const ct_settings *s, ct_params *store, const char *prefix, int64_t in,
                               const char *owner, ct_mlp **out, ct_error *err);

/* x (rows, in) -> (rows, out) on the graph. NULL in, NULL out. Batch norm
 * follows the graph's training mode (ct_graph_set_train). */
ct_tensor *ct_mlp_forward(const ct_mlp *m, ct_graph *g, ct_tensor *x);

/* Output size. */
int64_t ct_mlp_out_dim(const ct_mlp *m);

/* Free the head (not its parameters, which the store owns). NULL is ignored. */
void ct_mlp_free(ct_mlp *m);

#ifdef __cplusplus
}
#endif
#endif
