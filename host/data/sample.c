/* One sample's parts (see sample.h). */
#include "data/sample.h"

#include "data/chain.h"

uint64_t ct_pipeline_seed(uint64_t experiment_seed, int k) {
    return experiment_seed + (uint64_t)k * 0x9e3779b97f4a7c15ull;
}

int ct_sample_n_parts(const ct_pipeline_spec *spec) {
    if (spec->structure.ops) return spec->structure.info.n_parts;
    int v = 0;
    for (int g = 0; g < spec->n_groups; g++) v += spec->groups[g].count;
    return v;
}

/* The sample context's host side. */
typedef struct sample_host {
    const ct_pipeline_spec *spec;
    const ct_chain *const *chains;
    ct_image *tmp;
} sample_host;

/* ct_sample_ctx.apply: chain `chain` of the pipeline (its view groups). */
static ct_status ctx_apply(const ct_sample_ctx *c, int chain, const ct_image *in, ct_image *out, ct_rng *rng,
                           ct_error *err) {
    const sample_host *h = c->host_ctx;
    if (chain < 0 || chain >= h->spec->n_groups)
        return ct_error_set(err, CT_ERR_INVALID, "transform chain %d asked for; the pipeline has %d", chain,
                            h->spec->n_groups);
    const ct_chain *ch = h->chains && h->chains[chain] ? h->chains[chain] : &h->spec->groups[chain].chain;
    return ct_chain_apply(ch, in, out, h->tmp, rng, err);
}

ct_status ct_sample_parts(const ct_pipeline_spec *spec, const ct_chain *const *chains, uint64_t seed,
                          int64_t epoch, int64_t item, const ct_image *src, ct_image *parts, ct_image *tmp,
                          ct_error *err) {
    int chain_views[CT_MAX_CROP_GROUPS];
    for (int g = 0; g < spec->n_groups; g++) chain_views[g] = spec->groups[g].count;
    sample_host h = {spec, chains, tmp};
    ct_sample_ctx c = {sizeof c, seed, epoch, item, src, spec->n_groups, chain_views, ctx_apply,
                       spec->data ? spec->data->ops : NULL, spec->data ? spec->data->self : NULL, &h};
    const ct_structure_inst *si = &spec->structure;
    if (!si->ops) return ct_views_sample(&c, ct_sample_n_parts(spec), parts, err);
    ct_status st = si->ops->sample(si->self, &c, parts, err);
    if (st != CT_OK) ct_error_prefix(err, "structure %s: ", si->ops->name);
    return st;
}
