/* Architecture health for the report: what the run's store and embeddings
 * say about it, measured where the model is at hand. Each row names what
 * it measures and how, so a reader can tell a measurement from an
 * inference:
 *   - numeric stops (a "stop" line in metrics.jsonl);
 *   - collapse: the spread of the L2-normalised embeddings (projection-head
 *     outputs, else encoder features): mean per-dimension std * sqrt(D),
 *     about 1 when spread over the sphere, 0 when collapsed to a point;
 *   - effective dimensionality of the encoder features (participation
 *     ratio of the covariance spectrum);
 *   - prototypes (SwAV, "prototypes.weight"): how many prototypes are the
 *     nearest of at least one test embedding, and the perplexity of that
 *     assignment;
 *   - queues: SwAV's "queue_fill" buffer against its length; MoCo's
 *     "queue" filled by steps x batch (a FIFO written batch by batch);
 *   - memory bank ("bank.memory", "bank.seen"): entries written so far and
 *     staleness, 1 - mean cosine between sampled items' bank entries and
 *     their embeddings now. */
#ifndef CONTRAST_HOST_REPORT_HEALTH_H
#define CONTRAST_HOST_REPORT_HEALTH_H

#include "report/embedding.h"
#include "report/run_log.h"

#define CT_HEALTH_ROWS 12

typedef enum ct_health_level { CT_HEALTH_OK = 0, CT_HEALTH_WARN, CT_HEALTH_BAD, CT_HEALTH_INFO } ct_health_level;

typedef struct ct_health_row {
    char what[64];
    char value[200];
    char how[300];
    ct_health_level level;
} ct_health_row;

typedef struct ct_health {
    int n;
    ct_health_row row[CT_HEALTH_ROWS];
} ct_health;

/* Collect the rows. m, test and bank_sample may be NULL (rows that need
 * them are left out); participation is the encoder features' (<0: none);
 * batch is train.batch_size. bank_sample embeds items of the training
 * data (their indices in bank_sample->items). */
void ct_health_collect(const ct_model *m, const ct_run_log *log, const ct_embedding *test,
                       const ct_embedding *bank_sample, double participation, int64_t batch, ct_health *out);

#endif
