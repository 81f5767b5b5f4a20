/* bench/video: decode + augment throughput of 8-frame clips through the
 * video source, at 1 and 2 worker threads: each worker reads clips at
 * random items and random start times (get_frames: a seek to the keyframe
 * before the start, then decoding forward) and applies random_resized_crop
 * + hflip to every clip (one draw per clip).
 *
 *   build/bench/video [--seconds S] [--mfm DIR] [--vtest FILE]
 *
 * --mfm: a moving-fmnist train folder (default: made, or reused, in
 * /tmp/contrast-bench-mfm: 1000 videos of 16 frames, 64x64, MPEG-4 Part 2);
 * --vtest: OpenCV's vtest.avi (768x576, 10 fps; default: where
 * scripts/fetch-test-data puts it), read downscaled to 192x256 gray. One
 * JSON line per data set on stdout. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/experiment.h"
#include "data/chain.h"
#include "data/moving_fmnist.h"
#include "plugins/loader.h"

#define CLIP_FRAMES 8

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process: a figure that holds up when other
 * programs share the machine. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(const char *what, const ct_error *err) {
    fprintf(stderr, "bench/video: %s: %s\n", what, err->msg);
    return 1;
}

static ct_status make_instance(ct_plugin_set *set, ct_role role, const char *name, const char *text, ct_settings **s,
                               void **self, ct_error *err) {
    const ct_registry_entry *e = ct_plugins_find(set, role, name);
    if (!e) return ct_error_set(err, CT_ERR_NOT_FOUND, "plugin implementation %s not found", name);
    ct_status st = ct_settings_parse(ct_registry_entry_params(e), text, name, s, err);
    if (st != CT_OK) return st;
    const ct_host *h = ct_plugins_host_for(set, e);
    return role == CT_ROLE_SOURCE ? e->ops.source->create(*s, h, self, err) : e->ops.pretext->create(*s, h, self, err);
}

typedef struct worker {
    const ct_dataset *data;
    const ct_chain *chain;
    double seconds;
    int id;
    int64_t clips;
    ct_status st;
    ct_error err;
} worker;

static void *run_worker(void *arg) {
    worker *w = arg;
    ct_image src = CT_IMAGE_INIT, out = CT_IMAGE_INIT, tmp = CT_IMAGE_INIT;
    ct_rng r;
    ct_rng_init(&r, 17, (uint64_t)w->id);
    const ct_source_info *in = &w->data->info;
    double t0 = now_s();
    while (w->st == CT_OK && now_s() - t0 < w->seconds) {
        int64_t item = (int64_t)(ct_rng_u64(&r) % (uint64_t)in->count);
        double fps = in->fps > 0 ? in->fps : 10.0, dur = w->data->ops->duration(w->data->self, item);
        double span = CLIP_FRAMES / fps, start = dur > span ? ct_rng_uniform(&r) * (dur - span) : 0.0;
        w->st = w->data->ops->get_frames(w->data->self, item, start, 1.0 / fps, CLIP_FRAMES, &src, &w->err);
        ct_rng aug;
        ct_rng_init_keyed(&aug, 3, 0, (uint64_t)item, (uint64_t)w->clips);
        if (w->st == CT_OK) w->st = ct_chain_apply(w->chain, &src, &out, &tmp, &aug, &w->err);
        w->clips++;
    }
    ct_image_free(&src);
    ct_image_free(&out);
    ct_image_free(&tmp);
    return NULL;
}

/* Clips per second with n worker threads. */
static ct_status measure(const ct_dataset *d, const ct_chain *chain, int n, double seconds, double *cps, double *cpcs,
                         ct_error *err) {
    worker w[2];
    pthread_t th[2];
    double t0 = now_s(), c0 = cpu_s();
    for (int i = 0; i < n; i++) {
        w[i] = (worker){d, chain, seconds, i, 0, CT_OK, CT_ERROR_INIT};
        pthread_create(&th[i], NULL, run_worker, &w[i]);
    }
    int64_t clips = 0;
    ct_status st = CT_OK;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        clips += w[i].clips;
        if (w[i].st != CT_OK && st == CT_OK) {
            st = w[i].st;
            *err = w[i].err;
        }
    }
    *cps = (double)clips / (now_s() - t0);
    *cpcs = (double)clips / (cpu_s() - c0);
    return st;
}

static int bench_set(ct_plugin_set *set, const char *label, const char *source_text, int crop, double seconds) {
    ct_error err = CT_ERROR_INIT;
    ct_dataset d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "%s", label);
    if (make_instance(set, CT_ROLE_SOURCE, "video", source_text, &d.settings, &d.self, &err) != CT_OK)
        return fail(label, &err);
    d.ops = ct_plugins_find(set, CT_ROLE_SOURCE, "video")->ops.source;
    d.ops->info(d.self, &d.info);
    ct_chain chain;
    memset(&chain, 0, sizeof chain);
    char crop_text[128];
    snprintf(crop_text, sizeof crop_text, "size = [%d]; scale = [0.5, 1.0];", crop);
    const char *defs[2][2] = {{"random_resized_crop", crop_text}, {"hflip", "p = 0.5;"}};
    for (int k = 0; k < 2; k++) {
        ct_transform *t = &chain.t[chain.n];
        if (make_instance(set, CT_ROLE_PRETEXT, defs[k][0], defs[k][1], &t->settings, &t->self, &err) != CT_OK)
            return fail(defs[k][0], &err);
        t->ops = ct_plugins_find(set, CT_ROLE_PRETEXT, defs[k][0])->ops.pretext;
        chain.n++;
    }
    double cps[2], cpcs[2];
    for (int n = 1; n <= 2; n++)
        if (measure(&d, &chain, n, seconds, &cps[n - 1], &cpcs[n - 1], &err) != CT_OK) return fail("reading clips", &err);
    printf("{\"bench\":\"video\",\"data\":\"%s\",\"videos\":%lld,\"frame\":\"%dx%dx%d\",\"clip_frames\":%d,\"crop\":%d,"
           "\"clips_per_s_1_worker\":%.1f,\"clips_per_s_2_workers\":%.1f,\"clips_per_cpu_s_1_worker\":%.1f,"
           "\"clips_per_cpu_s_2_workers\":%.1f,\"seconds\":%.1f}\n",
           label, (long long)d.info.count, d.info.channels, d.info.height, d.info.width, CLIP_FRAMES, crop, cps[0], cps[1],
           cpcs[0], cpcs[1], seconds);
    for (int k = 0; k < chain.n; k++) {
        chain.t[k].ops->destroy(chain.t[k].self);
        ct_settings_free(chain.t[k].settings);
    }
    d.ops->destroy(d.self);
    ct_settings_free(d.settings);
    return 0;
}

int main(int argc, char **argv) {
    double seconds = 4.0;
    const char *mfm = NULL, *vtest = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--mfm") == 0) mfm = argv[i + 1];
        else if (strcmp(argv[i], "--vtest") == 0) vtest = argv[i + 1];
    }
    ct_error err = CT_ERROR_INIT;
    char mfm_dir[600], vtest_path[700];
    if (!mfm) {
        ct_mfm_params p;
        ct_mfm_defaults(&p);
        bool reused;
        if (ct_mfm_make("/tmp/contrast-bench-mfm", &p, true, &reused, &err) != CT_OK) return fail("moving-fmnist", &err);
        mfm = "/tmp/contrast-bench-mfm/train";
    }
    snprintf(mfm_dir, sizeof mfm_dir, "%s", mfm);
    if (!vtest) {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME"), *env = getenv("CT_TEST_DATA");
        if (env) snprintf(vtest_path, sizeof vtest_path, "%s/vtest.avi", env);
        else if (xdg) snprintf(vtest_path, sizeof vtest_path, "%s/contrast/test-data/vtest.avi", xdg);
        else snprintf(vtest_path, sizeof vtest_path, "%s/.cache/contrast/test-data/vtest.avi", home ? home : ".");
        vtest = vtest_path;
    }
    const char *dirs[1] = {CONTRAST_PLUGIN_BUILD_DIR};
    ct_loader_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.paths = dirs;
    lo.n_paths = 1;
    ct_plugin_set *set = NULL;
    if (ct_plugins_load(&lo, &set, &err) != CT_OK) return fail("loading plugins", &err);
    char text[1500];
    snprintf(text, sizeof text, "root = \"%s\"; channels = 1; index_dir = \"/tmp/contrast-bench-index\";", mfm_dir);
    int rc = bench_set(set, "moving-fmnist", text, 48, seconds);
    struct stat sb;
    if (rc == 0 && stat(vtest, &sb) == 0) {
        /* a folder holding only vtest.avi */
        char dir[] = "/tmp/contrast-bench-vtest";
        char link[128];
        mkdir(dir, 0755);
        snprintf(link, sizeof link, "%s/vtest.avi", dir);
        if (symlink(vtest, link) != 0 && stat(link, &sb) != 0) fprintf(stderr, "bench/video: cannot link %s\n", vtest);
        snprintf(text, sizeof text,
                 "root = \"%s\"; channels = 1; size = [192, 256]; index_dir = \"/tmp/contrast-bench-index\";", dir);
        rc = bench_set(set, "vtest.avi", text, 128, seconds);
    } else if (rc == 0) {
        fprintf(stderr, "bench/video: %s not found (scripts/fetch-test-data): vtest.avi skipped\n", vtest);
    }
    ct_plugins_free(set);
    return rc;
}
