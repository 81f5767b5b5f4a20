/* `contrast check CONFIG`: validate a config, open its datasets and print
 * their summary, the pipelines and every plugin the experiment uses; then
 * do what `train` and `eval` do at start-up, on a few samples: build the
 * model (encoder, architecture, store), make every pipeline's first batch
 * and put two of its samples through the architecture's loss, and two
 * items of the evaluation's train split through the encoder. So an error
 * train would hit at its first step (encoder.widths against blocks, a
 * batch the architecture has no negatives in, views the encoder cannot
 * take) shows here, without a pass over the whole dataset. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "data/pipeline.h"
#include "training/evaluate.h"
#include "training/model.h"

static void print_used(const ct_experiment *ex, ct_role role, const char *name, const char *where) {
    const ct_registry_entry *e = ct_plugins_find(ex->plugins, role, name);
    const ct_plugin_record *rec = NULL;
    for (int k = 0; e && k < ex->plugins->n; k++)
        if (!strcmp(ex->plugins->items[k]->path, e->file)) rec = ex->plugins->items[k];
    printf("  %-22s %-12s %-20s %s %s (%s)\n", where, ct_role_name(role), name,
           rec ? rec->name : "?", rec ? rec->version : "", e ? e->file : "?");
}

static void print_chain_used(const ct_experiment *ex, const ct_chain *c, const char *where) {
    for (int k = 0; k < c->n; k++) {
        char w[96];
        snprintf(w, sizeof w, "%s[%d]", where, k);
        print_used(ex, CT_ROLE_PRETEXT, c->t[k].ops->name, w);
    }
}

/* What the build found, printed with the summary once all of it passed
 * (a failure is then the one line "contrast: ..."). */
typedef struct check_report {
    char model[256], eval[256];
    char pipeline[CT_MAX_PIPELINES][512];
} check_report;

/* Samples of a first batch put through the loss: two, the fewest an
 * architecture with in-batch negatives takes (a whole batch of a large
 * encoder could take seconds). */
#define CHECK_SAMPLES 2

/* Pipeline k's first batch: its shape printed, CHECK_SAMPLES of its
 * samples through the architecture's loss (when there is one). */
static ct_status check_pipeline(ct_model *m, int k, char *line, size_t n, ct_error *err) {
    const ct_experiment *ex = m->ex;
    const ct_pipeline_spec *spec = &ex->pipelines[k];
    int64_t bs = spec->batch_size;
    if (spec->weight == 0.0f) {
        snprintf(line, n, "weight 0: left out of training");
        return CT_OK;
    }
    ct_pipeline_opts po = ct_pipeline_opts_default(bs, ex->seed);
    ct_pipeline *p = NULL;
    const ct_data_batch *db = NULL;
    ct_status st = ct_pipeline_new(spec, &po, &p, err);
    if (st != CT_OK) { /* its message names the data */
        ct_error_prefix(err, "%s: pipelines[%d] (%s = %lld): ", ex->path, k,
                        spec->own_batch ? "batch_size" : "train.batch_size", (long long)bs);
        return st;
    }
    if (ct_pipeline_steps_per_epoch(p) <= 0)
        st = ct_error_set(err, CT_ERR_CONFIG, "%lld items, fewer than its batch (%s = %lld)",
                          (long long)ct_pipeline_epoch_size(p), spec->own_batch ? "batch_size" : "train.batch_size",
                          (long long)bs);
    if (st == CT_OK) st = ct_pipeline_start_epoch(p, 0, err);
    if (st == CT_OK) st = ct_pipeline_next(p, &db, err);
    if (st == CT_OK && !db) st = ct_error_set(err, CT_ERR_INVALID, "no first batch");
    if (st == CT_OK) {
        int used = snprintf(line, n, "first batch %d samples x %d views:", db->n, db->n_views);
        for (int v = 0; v < db->n_views && used > 0 && (size_t)used < n; v++)
            used += snprintf(line + used, n - (size_t)used, " %dx%dx%d%s", db->views[v].c, db->views[v].h,
                             db->views[v].w, db->views[v].t > 1 ? " (clip)" : "");
    }
    if (st == CT_OK && m->arch) {
        ct_data_batch few = *db; /* the first samples: the front of each view's memory */
        few.n = db->n < CHECK_SAMPLES ? db->n : CHECK_SAMPLES;
        ct_batch b;
        ct_step_info info = {0, 0, 1, 1};
        st = ct_model_batch(m, &few, k, &b, err);
        ct_tensor *loss = st == CT_OK ? ex->arch_ops->loss(m->arch, m->graph, &b, &info) : NULL;
        if (st == CT_OK && !loss)
            st = ct_error_set(err, ct_graph_status(m->graph) ? ct_graph_status(m->graph) : CT_ERR_INVALID,
                              "architecture %s: %s", ex->arch_ops->name, ct_graph_error(m->graph));
        else if (st == CT_OK && loss->numel != 1)
            st = ct_error_set(err, CT_ERR_SHAPE, "architecture %s: the loss has %lld values, not 1",
                              ex->arch_ops->name, (long long)loss->numel);
        ct_graph_reset(m->graph);
    }
    ct_pipeline_release(p, db);
    ct_pipeline_free(p);
    if (st != CT_OK) ct_error_prefix(err, "%s: pipeline %d (data \"%s\"): ", ex->path, k, spec->data->name);
    return st;
}

/* Two items of the evaluation's train split through the evaluation chain
 * and the encoder in eval mode, as feature extraction does. */
static ct_status check_evaluation(ct_model *m, char *line, size_t n, ct_error *err) {
    const ct_experiment *ex = m->ex;
    if (!ex->eval_train || ex->eval_train->info.count < 1) return CT_OK;
    const int64_t items[CHECK_SAMPLES] = {0, ex->eval_train->info.count > 1 ? 1 : 0};
    ct_pipeline *p = NULL;
    const ct_data_batch *db = NULL;
    ct_status st = ct_pipeline_new_eval(ex->eval_train, &ex->eval_chain, CHECK_SAMPLES, ex->seed, 1, items,
                                        CHECK_SAMPLES, &p, err);
    if (st == CT_OK) st = ct_pipeline_start_epoch(p, 0, err);
    if (st == CT_OK) st = ct_pipeline_next(p, &db, err);
    if (st == CT_OK && db) {
        const ct_view_buf *v = &db->views[0];
        int64_t shape[4] = {db->n, v->c, v->h, v->w};
        bool grad = ct_graph_set_grad(m->graph, false), train = ct_graph_set_train(m->graph, false);
        ct_tensor *x = ct_tensor_wrap(m->graph, v->data, 4, shape);
        ct_tensor *f = x ? m->encoder.ops->forward(m->encoder.self, m->graph, x) : NULL;
        if (!f)
            st = ct_error_set(err, ct_graph_status(m->graph) ? ct_graph_status(m->graph) : CT_ERR_INVALID,
                              "encoder %s: %s", m->encoder.ops->name, ct_graph_error(m->graph));
        else if (f->ndim != 2 || f->shape[0] != db->n || f->shape[1] != m->encoder.dim)
            st = ct_error_set(err, CT_ERR_SHAPE, "encoder %s: output is not (%d, %lld)", m->encoder.ops->name, db->n,
                              (long long)m->encoder.dim);
        else
            snprintf(line, n, "items %dx%dx%d -> features of %lld", v->c, v->h, v->w, (long long)m->encoder.dim);
        ct_graph_reset(m->graph);
        ct_graph_set_grad(m->graph, grad);
        ct_graph_set_train(m->graph, train);
    }
    ct_pipeline_release(p, db);
    ct_pipeline_free(p);
    if (st != CT_OK) ct_error_prefix(err, "%s: evaluation (data \"%s\"): ", ex->path, ex->eval_train->name);
    return st;
}

/* What train and eval would build, on a few samples (see the top). */
static int check_build(ct_experiment *ex, check_report *r) {
    ct_model m;
    ct_error err = CT_ERROR_INIT;
    memset(r, 0, sizeof *r);
    ct_status st = ex->encoder_ops ? ct_model_build(&m, ex, (int)ct_settings_int(ex->train, "threads"), true, &err)
                                   : CT_OK;
    if (st == CT_OK && ex->encoder_ops) {
        snprintf(r->model, sizeof r->model, "%lld trainable parameters, encoder features of %lld%s%s",
                 (long long)ct_params_numel(m.store), (long long)m.encoder.dim, m.arch ? ", architecture " : "",
                 m.arch ? ex->arch_ops->name : "");
        for (int k = 0; k < ex->n_pipelines && st == CT_OK; k++)
            st = check_pipeline(&m, k, r->pipeline[k], sizeof r->pipeline[k], &err);
        if (st == CT_OK) st = check_evaluation(&m, r->eval, sizeof r->eval, &err);
    }
    if (ex->encoder_ops) ct_model_free(&m);
    if (st == CT_OK) return 0;
    return ct_cli_error("%s", err.msg[0] ? err.msg : ct_status_str(st));
}

int ct_cmd_check(int argc, char **argv) {
    ct_cli_config c;
    ct_cli_config_init(&c);
    int rc = ct_cli_parse_config_args(&c, argc, argv, "check CONFIG [--set group.key=value]...");
    if (rc) return rc;
    ct_experiment ex;
    if ((rc = ct_cli_load(&ex, &c))) return rc;
    check_report rep;
    if ((rc = check_build(&ex, &rep))) {
        ct_experiment_free(&ex);
        return rc;
    }
    printf("config: %s (name %s, seed %llu)\n", ex.path, ex.name, (unsigned long long)ex.seed);
    printf("datasets:\n");
    for (int k = 0; k < ex.n_data; k++) {
        const ct_source_info *in = &ex.data[k].info;
        printf("  %-10s %-10s count=%lld shape=%dx%dx%d%s classes=%d  %s\n", ex.data[k].name,
               ex.data[k].ops->name, (long long)in->count, in->channels, in->height, in->width,
               in->is_video ? " (video)" : "", in->num_classes, in->summary);
    }
    for (int k = 0; k < ex.n_pipelines; k++) {
        const ct_pipeline_spec *p = &ex.pipelines[k];
        int views = 0;
        for (int j = 0; j < p->n_groups; j++) views += p->groups[j].count;
        printf("pipeline %d: data=%s batch=%lld weight=%g views=%d structure=%s parts=%d sets=%d%s%s\n", k,
               p->data->name, (long long)p->batch_size, (double)p->weight, views, ct_experiment_structure_name(&ex, k),
               p->structure.info.n_parts,
               p->structure.info.n_sets, rep.pipeline[k][0] ? "; " : "", rep.pipeline[k]);
    }
    if (rep.model[0]) printf("model: %s\n", rep.model);
    if (rep.eval[0]) printf("evaluation: %s\n", rep.eval);
    if (ex.n_evaluators > 0) {
        char data[2048];
        ct_evaluation_data_text(&ex, data, sizeof data);
        printf("evaluation data: %s\n", data);
    }
    printf("plugins used:\n");
    for (int k = 0; k < ex.n_data; k++) {
        char w[96];
        snprintf(w, sizeof w, "data.%s", ex.data[k].name);
        print_used(&ex, CT_ROLE_SOURCE, ex.data[k].ops->name, w);
    }
    if (ex.encoder_ops) print_used(&ex, CT_ROLE_ENCODER, ex.encoder_ops->name, "encoder");
    for (int k = 0; k < ex.n_pipelines; k++)
        for (int j = 0; j < ex.pipelines[k].n_groups; j++) {
            char w[64];
            snprintf(w, sizeof w, "pipelines[%d].views[%d]", k, j);
            print_chain_used(&ex, &ex.pipelines[k].groups[j].chain, w);
        }
    for (int k = 0; k < ex.n_pipelines; k++) {
        if (!ex.pipelines[k].structure.ops) continue;
        char w[64];
        snprintf(w, sizeof w, "pipelines[%d].structure", k);
        print_used(&ex, CT_ROLE_STRUCTURE, ex.pipelines[k].structure.ops->name, w);
    }
    if (ex.arch_ops) print_used(&ex, CT_ROLE_ARCHITECTURE, ex.arch_ops->name, "architecture");
    print_chain_used(&ex, &ex.eval_chain, "evaluation.transforms");
    for (int k = 0; k < ex.n_evaluators; k++) {
        char w[64];
        snprintf(w, sizeof w, "evaluation.evaluators[%d]", k);
        print_used(&ex, CT_ROLE_EVALUATOR, ex.evaluators[k].ops->name, w);
    }
    int refused = ct_plugins_refused(ex.plugins);
    if (refused)
        printf("note: %d plugin file%s refused (see `contrast plugins`)\n", refused,
               refused == 1 ? " was" : "s were");
    printf("ok: %s is valid\n", ex.path);
    ct_experiment_free(&ex);
    return 0;
}
