/* The configuration reference in Markdown (see config_doc.h). */
#include "cli/config_doc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config/host_schema.h"

/* A table cell: '|' would end the cell, and newlines the row. */
static void cell(FILE *f, const char *s) {
    for (; s && *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else if (*s == '<') fputs("&lt;", f); /* not an HTML tag */
        else if (*s == '\n') fputc(' ', f);
        else fputc(*s, f);
    }
}

void ct_config_doc_range(const ct_param_spec *p, char *buf, size_t n) {
    buf[0] = '\0';
    if (p->choices) {
        snprintf(buf, n, "%s", p->choices);
    } else if (p->type != CT_PT_BOOL && p->type != CT_PT_STRING && p->type != CT_PT_STRING_LIST &&
               (p->min != -INFINITY || p->max != INFINITY)) {
        char lo[32] = "-inf", hi[32] = "inf";
        if (p->min != -INFINITY) snprintf(lo, sizeof lo, "%g", p->min);
        if (p->max != INFINITY) snprintf(hi, sizeof hi, "%g", p->max);
        snprintf(buf, n, "[%s, %s]", lo, hi);
    }
}

static void params_table(FILE *f, const ct_param_spec *spec) {
    if (!spec || !spec->name) {
        fputs("\nNo parameters.\n", f);
        return;
    }
    fputs("\n| parameter | type | default | range | description |\n|---|---|---|---|---|\n", f);
    for (const ct_param_spec *p = spec; p->name; p++) {
        char range[160];
        ct_config_doc_range(p, range, sizeof range);
        fputs("| `", f);
        cell(f, p->name);
        fprintf(f, "` | %s | ", ct_ptype_name(p->type));
        if (p->def) {
            fputc('`', f);
            cell(f, p->def);
            fputc('`', f);
        } else {
            fputs("`required`", f);
        }
        fputs(" | ", f);
        cell(f, range);
        fputs(" | ", f);
        cell(f, p->doc);
        fputs(" |\n", f);
    }
}

const char *ct_config_doc_description(const ct_registry_entry *e) {
    const char *d = NULL;
    switch (e->role) {
    case CT_ROLE_SOURCE: d = e->ops.source->description; break;
    case CT_ROLE_PRETEXT: d = e->ops.pretext->description; break;
    case CT_ROLE_ENCODER: d = e->ops.encoder->description; break;
    case CT_ROLE_ARCHITECTURE: d = e->ops.architecture->description; break;
    case CT_ROLE_EVALUATOR: d = e->ops.evaluator->description; break;
    case CT_ROLE_STRUCTURE: d = e->ops.structure->description; break;
    }
    return d ? d : "";
}

/* Where a role implementation is selected in a config. */
static const char *role_place(ct_role r) {
    switch (r) {
    case CT_ROLE_SOURCE: return "a `data.<name>` group";
    case CT_ROLE_PRETEXT: return "an entry of a `transforms` list";
    case CT_ROLE_ENCODER: return "the `encoder` group";
    case CT_ROLE_ARCHITECTURE: return "the `architecture` group";
    case CT_ROLE_EVALUATOR: return "an entry of `evaluation.evaluators`";
    case CT_ROLE_STRUCTURE: return "a pipeline's `structure` group";
    }
    return "a group";
}

static int by_name(const void *a, const void *b) {
    const ct_plugin_record *x = *(const ct_plugin_record *const *)a, *y = *(const ct_plugin_record *const *)b;
    return strcmp(x->name, y->name);
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* How several pipelines share a run (the trainer's rules, trainer.c). */
static void write_mixed_pipelines(FILE *f) {
    fputs("\n### Several pipelines (mixed image and video training)\n\n"
          "Every pipeline of nonzero `weight` gives one batch per step, of its own `batch_size`\n"
          "(default `train.batch_size`), through its own structure; the losses are summed with\n"
          "their weights, and one encoder (one set of weights, one checkpoint) is trained by all.\n"
          "`weight = 0` leaves a pipeline out (its data is not read): an ablation from the same\n"
          "config, e.g. `--set pipelines.[1].weight=0`.\n\n"
          "**The epoch is the first trained pipeline's pass over its data** (its items / its\n"
          "batch): `train.epochs`, `schedule.warmup_epochs` and `step_epochs`,\n"
          "`train.checkpoint_every` and `evaluation.every` count those passes, and\n"
          "`train.max_steps` cuts the run at the same step whatever the pipelines. Every other\n"
          "pipeline cycles through its own data meanwhile: at step s it is in its pass\n"
          "s / P (P its batches per pass) at batch s % P, each pass in an order of its own, so\n"
          "no item of a larger dataset is left unseen by an epoch cut to the smallest, the\n"
          "schedule keeps meaning passes over the main dataset, and `--resume` continues\n"
          "exactly from the step alone.\n\n"
          "Each pipeline's input (images (N,C,H,W), or clips (N,T,C,H,W) when its structure or\n"
          "source gives more than one frame) is checked at load against the encoder's input\n"
          "kinds, as are the evaluators' datasets: an image-only encoder (`resnet`) refuses a\n"
          "clip pipeline; `clip_resnet` takes both, an image being a one-frame clip (its\n"
          "temporal convolutions reduce to their centre tap). Pipelines and evaluation data\n"
          "that disagree on channels are refused, naming both.\n\n"
          "Item ids are per dataset: a memory bank has one row per item of every training\n"
          "dataset (each dataset once), the second dataset's rows after the first's, so two\n"
          "sources never share a row. Momentum queues and clustering prototypes hold no\n"
          "per-item state and take the rows of every pipeline.\n\n"
          "An evaluator may name its own data (`train`, `test`, `feature_transforms`, `clips`;\n"
          "defaults: the evaluation group's). Its metrics are then named\n"
          "`<evaluator>@<test dataset>.<metric>` (`linear@clips_test_direction.top1`), and the\n"
          "run log (`evaluation data: ...`), `contrast eval` and the report say which datasets\n"
          "each evaluator measured.\n\n"
          "Batch norm: each pipeline's forward normalises with its own batch's statistics, but\n"
          "the encoder keeps one set of running statistics, an average over every pipeline's\n"
          "batches (images and clip frames alike), and evaluation normalises with it.\n"
          "`evaluation.precise_bn_batches = N` re-estimates them before each evaluator on N\n"
          "batches of 256 items of that evaluator's own train data through its feature\n"
          "transforms (the plain mean of the batches' statistics, with the final weights: the\n"
          "precise BN of pycls and VISSL); the checkpoint's statistics are put back after the\n"
          "round, so training, `--resume` and the checkpoint files are unchanged.\n",
          f);
}

static void write_host_groups(FILE *f) {
    fputs("\n## Host groups\n\n"
          "Groups the host reads itself. Every key is optional unless marked required.\n",
          f);
    write_mixed_pipelines(f);
    const char *group = NULL;
    const ct_param_spec *spec;
    for (size_t i = 0; (spec = ct_experiment_host_schema(i, &group)) != NULL; i++) {
        fprintf(f, "\n### `%s`\n", group);
        params_table(f, spec);
    }
}

static void write_plugin(FILE *f, const ct_plugin_set *set, const ct_plugin_record *rec) {
    fprintf(f, "\n### Plugin `%s` %s\n\n", rec->name, rec->version);
    cell(f, rec->description);
    fprintf(f, " (%s, ABI %u.%u, file `%s`)\n", rec->license, rec->abi_major, rec->abi_minor,
            base_name(rec->path));
    for (size_t k = 0; k < ct_registry_count(set->reg); k++) {
        const ct_registry_entry *e = ct_registry_at(set->reg, k);
        if (strcmp(e->file, rec->path) != 0) continue;
        fprintf(f, "\n#### %s `%s`\n\n", ct_role_name(e->role), e->name);
        cell(f, ct_config_doc_description(e));
        fprintf(f, ". Selected with `type = \"%s\";` in %s.\n", e->name, role_place(e->role));
        params_table(f, ct_registry_entry_params(e));
    }
}

void ct_config_doc_write(FILE *f, const ct_plugin_set *set) {
    fputs("# Configuration reference\n\n"
          "<!-- Generated by `contrast plugins --markdown`: do not edit. Regenerate with\n"
          "     CONTRAST_PLUGIN_PATH=build/plugins build/contrast plugins --markdown --no-default-path"
          " > docs/config.md\n"
          "     (tests/test_docs.c fails when this file is out of date). -->\n\n"
          "Every key of a config, from the schemas in the code. Plugin groups select\n"
          "their implementation with `type`; unknown keys, wrong types and values out\n"
          "of range are errors. Defaults are written as libconfig values.\n",
          f);
    write_host_groups(f);
    int n = 0;
    const ct_plugin_record **recs = set && set->n ? malloc((size_t)set->n * sizeof *recs) : NULL;
    for (int k = 0; recs && k < set->n; k++)
        if (set->items[k]->loaded) recs[n++] = set->items[k];
    if (n > 1) qsort(recs, (size_t)n, sizeof *recs, by_name);
    fputs("\n## Plugins\n", f);
    for (int k = 0; k < n; k++) write_plugin(f, set, recs[k]);
    free(recs);
}
