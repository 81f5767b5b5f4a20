/* Transform chains at work: applying a chain of pretext transforms to one
 * image, and the shape a chain gives a dataset's items. (A chain is built
 * from its config by the experiment loader, config/experiment.c.) */
#ifndef CONTRAST_HOST_CHAIN_H
#define CONTRAST_HOST_CHAIN_H

#include "contrast/contrast.h"
#include "config/experiment.h"

/* Apply a chain to one image: src -> out, using two scratch images.
 * Randomness comes from rng. */
ct_status ct_chain_apply(const ct_chain *c, const ct_image *src, ct_image *out, ct_image *scratch,
                         ct_rng *rng, ct_error *err);

/* The encoder's input (channels, height, width) after a chain applied to a
 * dataset's items. */
ct_encoder_input ct_chain_input(const ct_chain *chain, const ct_dataset *data);

#endif
