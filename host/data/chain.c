/* Transform chains at work (see chain.h). */
#include "data/chain.h"

ct_status ct_chain_apply(const ct_chain *c, const ct_image *src, ct_image *out, ct_image *scratch,
                         ct_rng *rng, ct_error *err) {
    if (!c || c->n == 0) {
        ct_status st = ct_image_copy(out, src);
        return st ? ct_error_set(err, st, "copying an image: %s", ct_status_str(st)) : CT_OK;
    }
    /* Ping-pong between out and scratch so the last step writes out and
     * no step's output aliases its input. */
    const ct_image *in = src;
    for (int k = 0; k < c->n; k++) {
        ct_image *dst = ((c->n - 1 - k) % 2 == 0) ? out : scratch;
        const ct_transform *t = &c->t[k];
        ct_status st = t->ops->apply(t->self, in, dst, rng, err);
        if (st) {
            ct_error_prefix(err, "transform %s: ", t->ops->name);
            return st;
        }
        in = dst;
    }
    return CT_OK;
}

ct_encoder_input ct_chain_input(const ct_chain *chain, const ct_dataset *data) {
    ct_encoder_input in = {data->info.channels, data->info.height, data->info.width,
                           data->info.frames > 0 ? data->info.frames : 1};
    for (int k = 0; chain && k < chain->n; k++) {
        const ct_transform *t = &chain->t[k];
        if (!t->ops->out_shape) continue;
        int c, h, w;
        t->ops->out_shape(t->self, in.channels, in.height, in.width, &c, &h, &w);
        in.channels = c;
        in.height = h;
        in.width = w;
    }
    return in;
}
