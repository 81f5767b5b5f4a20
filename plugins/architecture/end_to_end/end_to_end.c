/* end_to_end: SimCLR. Negatives are the other samples of the batch.
 *
 * The batch's structure embeds its parts (contrast/structure.h; by default
 * every view through the shared encoder, views of equal size in one
 * forward pass, so batch norm sees all 2N of them, as in SimCLR); every
 * set of rows then goes through one projection head forward, L2
 * normalisation and NT-Xent (ct_nt_xent) with the structure's group ids
 * (by default the sample index): rows of one group are positives, every
 * other row a negative.
 *
 * The head is the SDK's (contrast/mlp.h, shared with the other
 * architectures); its names follow PyTorch's nn.Sequential indices, so
 * head_hidden = [128] without batch norm gives
 *   head.0 (Linear), head.1 (ReLU), head.2 (Linear)
 * and with head_bn = true
 *   head.0 (Linear, no bias), head.1 (BatchNorm1d), head.2 (ReLU), head.3 (Linear). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

#include "../common/arch_common.h"

typedef struct e2e {
    const ct_host *host;
    ct_arch_env env; /* a copy: the embedding seam */
    ct_encoder *encoder;
    float temperature;
    ct_mlp *head; /* the SDK's projection head, as every architecture's */
    int32_t *groups; /* scratch: group id per row */
    size_t groups_cap;
} e2e;

static const ct_param_spec e2e_params[] = {
    CT_PARAM_FLOAT("temperature", "0.5", 1e-4, 100, "NT-Xent temperature"),
    CT_MLP_HEAD_PARAMS("[128]", "64"),
    CT_PARAM_END,
};

static ct_status e2e_create(const ct_settings *s, const ct_arch_env *env, void **self, ct_error *err) {
    if (!env->encoder || env->encoder->dim <= 0)
        return ct_error_set(err, CT_ERR_INVALID, "end_to_end: the encoder has no output size");
    if (env->batch_size < 2) { /* the negatives are the batch's other samples */
        char what[96];
        arch_batch_setting(env, what, sizeof what);
        return ct_error_set(err, CT_ERR_CONFIG, "end_to_end: %s leaves NT-Xent no negatives (they are the batch's "
                            "other samples): use at least 2", what);
    }
    e2e *a = calloc(1, sizeof *a);
    if (!a) return ct_error_set(err, CT_ERR_NOMEM, "end_to_end: out of memory");
    a->host = env->host;
    arch_copy_env(&a->env, env);
    a->encoder = env->encoder;
    a->temperature = (float)ct_settings_float(s, "temperature");
    ct_status st = ct_mlp_from_settings(s, env->store, "head", env->encoder->dim, "end_to_end", &a->head, err);
    if (st != CT_OK) {
        free(a);
        return st;
    }
    *self = a;
    return CT_OK;
}

static void e2e_destroy(void *self) {
    e2e *a = self;
    if (!a) return;
    ct_mlp_free(a->head);
    free(a->groups);
    free(a);
}

/* Group id of every projected row: the structure's group of its row, for
 * every set (rows of one group are each other's positives in NT-Xent). */
static bool row_groups(e2e *a, const ct_embeddings *e, int64_t rows) {
    if ((size_t)rows > a->groups_cap) {
        int32_t *ng = realloc(a->groups, (size_t)rows * sizeof *ng);
        if (!ng) return false;
        a->groups = ng;
        a->groups_cap = (size_t)rows;
    }
    for (int64_t r = 0; r < rows; r++) a->groups[r] = e->groups[r % e->rows];
    return true;
}

static ct_tensor *e2e_loss(void *self, ct_graph *g, const ct_batch *b, const ct_step_info *info) {
    (void)info;
    e2e *a = self;
    if (!arch_check_batch(g, b, "end_to_end")) return NULL;
    ct_embeddings e;
    if (arch_features(&a->env, g, b, a->encoder, CT_SIDE_QUERY, CT_ALL_SETS, &e) != CT_OK) return NULL;
    if (!arch_need_sets(g, &e, 2, "end_to_end")) return NULL;
    /* One head forward over every row (batch norm in the head sees all
     * 2N, as SimCLR). */
    int64_t row_of[CT_MAX_SETS];
    ct_tensor *z = arch_project(a->head, g, &e, CT_ALL_SETS, false, row_of);
    if (!z) return NULL;
    if (!row_groups(a, &e, z->shape[0])) return ct_graph_fail(g, CT_ERR_NOMEM, "end_to_end: out of memory");
    return ct_nt_xent(g, z, a->groups, a->temperature);
}

static const ct_arch_ops e2e_ops = {
    .name = "end_to_end",
    .description = "SimCLR: projection head and NT-Xent with in-batch negatives",
    .params = e2e_params,
    .create = e2e_create,
    .destroy = e2e_destroy,
    .loss = e2e_loss,
    .caps = CT_ARCH_USES_SEAM | CT_ARCH_BATCH_NEGATIVES,
    .min_sets = 2,
};

static ct_status e2e_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_architecture(reg, &e2e_ops);
    if (st != CT_OK) ct_error_set(err, st, "end_to_end: registration failed");
    return st;
}

CT_PLUGIN_DEFINE("end_to_end", "1.0.0", "MIT", "SimCLR end-to-end architecture (NT-Xent)",
                 CT_ROLE_ARCHITECTURE, e2e_init)
