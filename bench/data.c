/* bench/data: augmented views per second of the SimCLR Fashion-MNIST chain
 * (random_resized_crop 28 px, scale 0.3-1; hflip; color_jitter brightness
 * and contrast 0.4, p 0.8; normalize) through the prefetching pipeline, at
 * 1 and 2 worker threads, consuming batches as fast as they come.
 *
 *   build/bench/data [--seconds S] [--batch N] [--images FILE]
 *
 * Prints one JSON line on stdout. Plugins are loaded from the build's
 * plugin folder (and CONTRAST_PLUGIN_PATH). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/experiment.h"
#include "plugins/loader.h"
#include "data/pipeline.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process (all threads): a figure that holds up
 * when other programs share the machine. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what, const ct_error *err) {
    fprintf(stderr, "bench/data: %s: %s\n", what, err->msg);
    return 1;
}

/* Validate `text` against the implementation's schema and create it. */
static ct_status make_instance(ct_plugin_set *set, ct_role role, const char *name, const char *text,
                               ct_settings **s, void **self, ct_error *err) {
    const ct_registry_entry *e = ct_plugins_find(set, role, name);
    if (!e) return ct_error_set(err, CT_ERR_NOT_FOUND, "plugin implementation %s not found", name);
    ct_status st = ct_settings_parse(ct_registry_entry_params(e), text, name, s, err);
    if (st != CT_OK) return st;
    const ct_host *h = ct_plugins_host_for(set, e);
    return role == CT_ROLE_SOURCE ? e->ops.source->create(*s, h, self, err)
                                  : e->ops.pretext->create(*s, h, self, err);
}

/* Views per second with `workers` threads over about `seconds`. */
static ct_status measure(const ct_pipeline_spec *spec, int64_t batch, int workers, double seconds,
                         double *views_per_s, double *views_per_cpu_s, ct_error *err) {
    ct_pipeline_opts o = ct_pipeline_opts_default(batch, 0);
    o.workers = workers;
    ct_pipeline *p = NULL;
    ct_status st = ct_pipeline_new(spec, &o, &p, err);
    if (st != CT_OK) return st;
    int64_t views = 0, epoch = 0;
    const ct_data_batch *b = NULL;
    st = ct_pipeline_start_epoch(p, epoch, err);
    /* Warm up: the first batch fills the buffers. */
    if (st == CT_OK && (st = ct_pipeline_next(p, &b, err)) == CT_OK) ct_pipeline_release(p, b);
    double c0 = cpu_s(), t0 = now_s(), t = t0;
    while (st == CT_OK && t - t0 < seconds) {
        st = ct_pipeline_next(p, &b, err);
        if (st != CT_OK) break;
        if (!b) {
            st = ct_pipeline_start_epoch(p, ++epoch, err);
            continue;
        }
        views += (int64_t)b->n * b->n_views;
        ct_pipeline_release(p, b);
        t = now_s();
    }
    *views_per_s = (double)views / (t - t0);
    *views_per_cpu_s = (double)views / (cpu_s() - c0);
    ct_pipeline_free(p);
    return st;
}

int main(int argc, char **argv) {
    double seconds = 4.0;
    int64_t batch = 256;
    const char *images = FMNIST;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--batch") == 0) batch = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--images") == 0) images = argv[i + 1];
    }
    ct_error err = CT_ERROR_INIT;
    const char *dirs[1] = {CONTRAST_PLUGIN_BUILD_DIR};
    ct_loader_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.paths = dirs;
    lo.n_paths = 1;
    ct_plugin_set *set = NULL;
    if (ct_plugins_load(&lo, &set, &err) != CT_OK) return fail("loading plugins", &err);

    ct_dataset data;
    memset(&data, 0, sizeof data);
    snprintf(data.name, sizeof data.name, "train");
    char text[1200];
    snprintf(text, sizeof text, "images = \"%s\";", images);
    if (make_instance(set, CT_ROLE_SOURCE, "idx", text, &data.settings, &data.self, &err) != CT_OK)
        return fail("opening Fashion-MNIST", &err);
    data.ops = ct_plugins_find(set, CT_ROLE_SOURCE, "idx")->ops.source;
    data.ops->info(data.self, &data.info);

    static const char *chain_def[][2] = {
        {"random_resized_crop", "size = [28]; scale = [0.3, 1.0];"},
        {"hflip", "p = 0.5;"},
        {"color_jitter", "brightness = 0.4; contrast = 0.4; saturation = 0.0; hue = 0.0; p = 0.8;"},
        {"normalize", "mean = [0.2860]; std = [0.3530];"},
    };
    ct_pipeline_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.data = &data;
    spec.weight = 1.0f;
    spec.n_groups = 1;
    spec.groups[0].count = 2;
    ct_chain *chain = &spec.groups[0].chain;
    for (int k = 0; k < 4; k++) {
        ct_transform *t = &chain->t[chain->n];
        if (make_instance(set, CT_ROLE_PRETEXT, chain_def[k][0], chain_def[k][1], &t->settings, &t->self, &err) != CT_OK)
            return fail(chain_def[k][0], &err);
        t->ops = ct_plugins_find(set, CT_ROLE_PRETEXT, chain_def[k][0])->ops.pretext;
        chain->n++;
    }

    double vps[2], vpc[2];
    for (int w = 1; w <= 2; w++)
        if (measure(&spec, batch, w, seconds, &vps[w - 1], &vpc[w - 1], &err) != CT_OK)
            return fail("running the pipeline", &err);
    fprintf(stderr, "bench/data: %s, %lld images 1x28x28, batch %lld x 2 views: %.0f views/s (1 thread), %.0f views/s (2 threads)\n",
            images, (long long)data.info.count, (long long)batch, vps[0], vps[1]);
    printf("{\"bench\":\"data\",\"chain\":\"simclr_fmnist\",\"image\":\"1x28x28\",\"batch\":%lld,\"views_per_sample\":2,"
           "\"views_per_s_1_thread\":%.0f,\"views_per_s_2_threads\":%.0f,\"target_views_per_s_2_threads\":3000,"
           "\"views_per_cpu_s_1_thread\":%.0f,\"views_per_cpu_s_2_threads\":%.0f,\"seconds\":%.1f}\n",
           (long long)batch, vps[0], vps[1], vpc[0], vpc[1], seconds);

    for (int k = 0; k < chain->n; k++) {
        chain->t[k].ops->destroy(chain->t[k].self);
        ct_settings_free(chain->t[k].settings);
    }
    data.ops->destroy(data.self);
    ct_settings_free(data.settings);
    ct_plugins_free(set);
    return 0;
}
