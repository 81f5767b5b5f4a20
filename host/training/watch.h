/* The divergence and collapse watch of a training run, for every
 * architecture (the SwAV plugin's own collapse warning looks at its
 * predictions only).
 *
 * Symptoms, looked at once per optimizer step:
 *   divergence  the loss is not finite, or the trainable weights' L2 norm
 *               has grown past `weight_growth` times its value before the
 *               first step watched (an exploding learning rate: on a small
 *               ResNet, SGD at lr 1000 multiplies the norm by 138 within 3
 *               steps and by 500 in 100, where AdamW at 1e-3, SGD at 0.1
 *               and LARS at 1 stay within 1.01, 1.11 and 1.35 times);
 *   collapse    the embeddings are (nearly) the same for every sample: the
 *               mean over dimensions of their std across the batch,
 *               relative to their RMS, is below `min_std` (scale-free, so
 *               it holds for normalised and raw features alike; healthy
 *               runs of the five configs/ show 0.4 to 0.7); or the
 *               loss is flat, the same value to 1e-6 on consecutive steps
 *               although every batch differs (the outputs no longer depend
 *               on the input).
 * A symptom warns when it appears (not again while it lasts, nor within
 * `steps` steps of the last warning of its kind) and stops the run when it
 * has lasted `steps` consecutive steps and its stop_on_* switch is on; with
 * the switch off it warns once more at that point and training goes on.
 *
 * The watch only measures and decides; the trainer writes the warnings to
 * the log and to metrics.jsonl and stops. */
#ifndef CONTRAST_HOST_WATCH_H
#define CONTRAST_HOST_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "contrast/contrast.h"

typedef struct ct_watch_opts {
    int64_t steps;           /* consecutive steps before stopping (>= 1) */
    bool stop_on_divergence; /* stop (else only warn) on divergence */
    bool stop_on_collapse;   /* stop (else only warn) on collapse */
    double weight_growth;    /* divergence above this multiple of the first weights' norm */
    double min_std;          /* collapse below this relative spread of the embeddings */
} ct_watch_opts;

typedef enum ct_watch_kind { CT_WATCH_DIVERGENCE = 0, CT_WATCH_COLLAPSE = 1 } ct_watch_kind;

/* What one step's look found, per kind. */
typedef struct ct_watch_event {
    ct_watch_kind kind;
    int64_t streak; /* consecutive steps with this symptom, this one included */
    bool warn;      /* a warning to write now */
    bool stop;      /* lasted opts.steps steps and stop_on_* is on: stop the run */
    char what[256]; /* the symptom in words, e.g. "the weights' L2 norm is 2.1e+08 (7.3e+06 x its first value)" */
} ct_watch_event;

typedef struct ct_watch ct_watch;

/* A watch with these options (copied); NULL when out of memory. */
ct_watch *ct_watch_new(const ct_watch_opts *o);

/* Free (NULL ignored). */
void ct_watch_free(ct_watch *w);

/* The weights' norm before the first step (after initialisation or a
 * resume's load): the reference of weight_growth. Without it the first
 * step's is used. */
void ct_watch_begin(ct_watch *w, const ct_params *store);

/* Record embeddings of the current step: `rows` samples of `dim` floats,
 * row-major (encoder features, or an architecture's projections). The
 * first ones recorded after the previous ct_watch_step count for the step
 * (later calls are ignored); fewer than 2 rows, or non-finite values, say
 * nothing. */
void ct_watch_embeddings(ct_watch *w, const float *z, int64_t rows, int64_t dim);

/* The embeddings' feed from the seam: a ct_model embed_observer (ctx the
 * watch) that records the first set of a query-side embedding — the
 * encoder's features of the first view for the default structure — with
 * ct_watch_embeddings. It costs no forward of its own: it looks at
 * features the architecture asked for anyway. */
void ct_watch_on_embed(void *watch, const ct_embeddings *e);

/* Look at one finished step: its loss and the parameter store after the
 * update. Writes the symptoms present (0, 1 or 2 events: divergence first)
 * to ev and returns their count. */
int ct_watch_step(ct_watch *w, double loss, const ct_params *store, ct_watch_event ev[2]);

/* The relative spread used for collapse: mean over columns of the std
 * across rows, divided by the RMS of all values (0 when all are 0; -1 when
 * rows < 2 or a value is not finite). */
double ct_watch_spread(const float *z, int64_t rows, int64_t dim);

#endif
