/* A structure that breaks the seam's contract on purpose: `rows` asks it
 * to report one row count in info() and return another from embed()
 * (set 1 missing with `drop_set`), so the host's check of what a
 * structure returns must stop the step naming the structure. */
#include <stdlib.h>
#include <string.h>

#include <contrast/contrast.h>

typedef struct bad {
    bool drop_set;
} bad;

static const ct_param_spec bad_params[] = {
    CT_PARAM_BOOL("drop_set", "false", "return no set 1 (else: twice the rows it declared)"),
    CT_PARAM_END,
};

static ct_status bad_create(const ct_settings *s, const ct_structure_env *env, void **self, ct_error *err) {
    (void)env;
    bad *b = calloc(1, sizeof *b);
    if (!b) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    b->drop_set = ct_settings_bool(s, "drop_set");
    *self = b;
    return CT_OK;
}

static void bad_destroy(void *self) { free(self); }

static void bad_info(void *self, ct_structure_info *out) {
    (void)self;
    memset(out, 0, sizeof *out);
    out->n_parts = 2, out->n_sets = 2, out->rows_per_sample = 1;
}

static ct_status bad_sample(void *self, const ct_sample_ctx *ctx, ct_image *parts, ct_error *err) {
    (void)self;
    return ct_views_sample(ctx, 2, parts, err);
}

static ct_status bad_embed(void *self, ct_graph *g, const ct_batch *b, const ct_encoder *enc, ct_embed_side side,
                           uint32_t sets, ct_embeddings *out) {
    (void)side;
    const bad *s = self;
    ct_status st = ct_views_embed(g, b, enc, sets, out);
    if (st != CT_OK) return st;
    if (s->drop_set)
        out->set[1] = NULL;
    else
        out->rows *= 2;
    return CT_OK;
}

static const ct_structure_ops bad_ops = {
    .name = "bad_structure",
    .description = "breaks the embedding contract (tests)",
    .params = bad_params,
    .create = bad_create,
    .destroy = bad_destroy,
    .info = bad_info,
    .sample = bad_sample,
    .embed = bad_embed,
};

static ct_status bad_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    (void)err;
    return ct_register_structure(reg, &bad_ops);
}

CT_PLUGIN_DEFINE("bad_structure", "0.1.0", "MIT", "a structure that breaks the seam", CT_ROLE_STRUCTURE, bad_init)
