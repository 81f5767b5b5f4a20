/* Run safety (issue 16, host side): runs that must not clobber each other
 * (the run-directory lock, stale temp files, resuming a finished run or
 * under a changed config, embed's outputs), signals and exit codes, the
 * divergence and collapse watch, non-finite features, configurations with
 * no negatives and what `contrast check` builds, and plugin symlinks. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ct_test.h"
#include "plugins/loader.h"
#include "training/evaluate.h"
#include "training/watch.h"

static char g_out[1 << 16];

/* A tiny SimCLR run: 64 images, batches of 16 (4 steps an epoch), a
 * 3-stage ResNet of widths 8/16/32; steps take milliseconds. */
#define TINY                                                                                                  \
    "--set data.train.limit=64 --set data.test.limit=64 --set train.batch_size=16 --set train.threads=1 "     \
    "--set train.log_every=1 --set train.keep=0 --set encoder.stem_width=8 --set encoder.widths=[8,16,32] " \
    "--set evaluation.every=0 "

/* `contrast ARGS` from the source dir (printf-style), its output in g_out. */
static int contrast(const char *fmt, ...) {
    char args[4096], cmd[6000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && CONTRAST_PLUGIN_PATH='%s/plugins:%s/tests/plugins/nan_probe' '%s/contrast' %s",
             ct_test_source_dir(), ct_test_build_dir(), ct_test_build_dir(), ct_test_build_dir(), args);
    return ct_test_run(cmd, g_out, sizeof g_out);
}

#define EXPECT(rc_want, ...)                                                           \
    do {                                                                               \
        int rc_ = contrast(__VA_ARGS__);                                               \
        ck_assert_msg(rc_ == (rc_want), "exited %d (want %d):\n%s", rc_, rc_want, g_out); \
    } while (0)

#define HAS(s) ck_assert_msg(strstr(g_out, (s)) != NULL, "output lacks '%s':\n%s", (s), g_out)

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *copy = malloc(n + 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, buf, n + 1);
    return copy;
}

static int count_in_file(const char *path, const char *needle) {
    char *s = slurp(path);
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, needle)); p++) n++;
    free(s);
    return n;
}

static bool exists(const char *dir, const char *name) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* ---- the watch on its own ----------------------------------------------------- */

static ct_params *one_tensor_store(int64_t n, float value) {
    ct_error err = CT_ERROR_INIT;
    ct_params *p = ct_params_new(1);
    int64_t shape[1] = {n};
    ck_assert_ptr_nonnull(ct_params_add(p, "w", CT_PARAM_TRAINABLE, 1, shape, CT_INIT_ZEROS, 0, 0, &err));
    ck_assert_int_eq(ct_params_finalize(p, &err), CT_OK);
    for (int64_t i = 0; i < n; i++) ct_params_data(p)[i] = value;
    return p;
}

START_TEST(watch_spread) {
    float same[4 * 3], spread[4 * 3];
    for (int i = 0; i < 12; i++) same[i] = (float)(i % 3) + 1.0f, spread[i] = (float)((i * 7) % 5) - 2.0f;
    ck_assert(fabs(ct_watch_spread(same, 4, 3)) < 1e-9);
    ck_assert(ct_watch_spread(spread, 4, 3) > 0.3);
    ck_assert(ct_watch_spread(spread, 1, 3) < 0); /* one row: nothing to say */
    spread[5] = NAN;
    ck_assert(ct_watch_spread(spread, 4, 3) < 0);
    float zeros[6] = {0};
    ck_assert(ct_watch_spread(zeros, 2, 3) == 0); /* all zero: collapsed */
    /* Scale-free: the same rows times 1000 spread alike. */
    float a[4] = {1, 2, 3, 5}, b[4] = {1000, 2000, 3000, 5000};
    ck_assert(fabs(ct_watch_spread(a, 2, 2) - ct_watch_spread(b, 2, 2)) < 1e-9);
}
END_TEST

START_TEST(watch_divergence_warns_then_stops) {
    ct_watch_opts o = {3, true, true, 100, 0.01};
    ct_watch *w = ct_watch_new(&o);
    ct_params *p = one_tensor_store(16, 0.5f);
    ct_watch_begin(w, p);
    ct_watch_event ev[2];
    double loss = 1.0;
    ck_assert_int_eq(ct_watch_step(w, loss += 0.1, p, ev), 0);
    for (int i = 0; i < 16; i++) ct_params_data(p)[i] = 60.0f; /* 120 x the norm */
    ck_assert_int_eq(ct_watch_step(w, loss += 0.1, p, ev), 1);
    ck_assert_int_eq(ev[0].kind, CT_WATCH_DIVERGENCE);
    ck_assert(ev[0].warn && !ev[0].stop && ev[0].streak == 1);
    ck_assert_msg(strstr(ev[0].what, "L2 norm") && strstr(ev[0].what, "120 times"), "%s", ev[0].what);
    ck_assert_int_eq(ct_watch_step(w, loss += 0.1, p, ev), 1);
    ck_assert(!ev[0].warn && !ev[0].stop); /* no repeat while it lasts */
    ck_assert_int_eq(ct_watch_step(w, loss += 0.1, p, ev), 1);
    ck_assert(ev[0].warn && ev[0].stop && ev[0].streak == 3);
    /* A non-finite loss is divergence too. */
    ck_assert_int_eq(ct_watch_step(w, NAN, p, ev), 1);
    ck_assert(ev[0].kind == CT_WATCH_DIVERGENCE && strstr(ev[0].what, "loss is nan"));
    ct_watch_free(w);
    ct_params_free(p);
}
END_TEST

START_TEST(watch_collapse_and_switches) {
    /* stop_on_collapse off: the warning when it starts and once more when
     * it has lasted `steps` steps, never a stop. */
    ct_watch_opts o = {2, true, false, 100, 0.01};
    ct_watch *w = ct_watch_new(&o);
    ct_params *p = one_tensor_store(4, 1.0f);
    ct_watch_begin(w, p);
    ct_watch_event ev[2];
    float same[8] = {1, 2, 3, 4, 1, 2, 3, 4}, apart[8] = {1, -2, 3, 0, -1, 2, 0, 4};
    ct_watch_embeddings(w, same, 2, 4);
    ck_assert_int_eq(ct_watch_step(w, 2.0, p, ev), 1);
    ck_assert(ev[0].kind == CT_WATCH_COLLAPSE && ev[0].warn && !ev[0].stop);
    ck_assert_msg(strstr(ev[0].what, "hardly differ"), "%s", ev[0].what);
    ct_watch_embeddings(w, same, 2, 4);
    ck_assert_int_eq(ct_watch_step(w, 2.5, p, ev), 1);
    ck_assert(ev[0].warn && !ev[0].stop && ev[0].streak == 2);
    ct_watch_embeddings(w, apart, 2, 4);
    ck_assert_int_eq(ct_watch_step(w, 2.7, p, ev), 0); /* recovered */
    /* A loss that stays put on different batches: collapse. */
    ck_assert_int_eq(ct_watch_step(w, 2.7, p, ev), 1);
    ck_assert_msg(ev[0].kind == CT_WATCH_COLLAPSE && strstr(ev[0].what, "loss stays at 2.7"), "%s", ev[0].what);
    /* The last warning was 2 steps ago (= steps): this new streak warns. */
    ck_assert(ev[0].warn);
    ct_watch_free(w);
    ct_params_free(p);
}
END_TEST

START_TEST(non_finite_rows_are_counted) {
    float v[4 * 3] = {0};
    int64_t first;
    ck_assert_int_eq(ct_count_non_finite_rows(v, 4, 3, &first), 0);
    ck_assert_int_eq(first, -1);
    v[1 * 3 + 2] = INFINITY;
    v[3 * 3 + 0] = NAN;
    v[3 * 3 + 1] = -INFINITY;
    ck_assert_int_eq(ct_count_non_finite_rows(v, 4, 3, &first), 2);
    ck_assert_int_eq(first, 1);
}
END_TEST

/* ---- the watch in a run --------------------------------------------------------- */

START_TEST(sgd_lr_1000_warns_and_stops) {
    const char *dir = ct_test_tmpdir();
    EXPECT(1, "train configs/simclr_fmnist.cfg " TINY "--set 'optimizer.type=\"sgd\"' --set optimizer.lr=1000 "
              "--set train.epochs=20 --set train.watch_steps=5 --run-dir %s/run", dir);
    HAS("contrast: warning: step ");
    HAS("divergence: the trainable weights' L2 norm");
    HAS("contrast: training diverged");
    HAS("for 5 steps (train.watch_steps");
    char metrics[600];
    snprintf(metrics, sizeof metrics, "%s/run/metrics.jsonl", dir);
    ck_assert_int_ge(count_in_file(metrics, "\"type\": \"watch\", "), 2);
    ck_assert_int_eq(count_in_file(metrics, "\"stopping\": true"), 1);
    /* The run stopped early: nowhere near the 80 steps. */
    ck_assert_int_lt(count_in_file(metrics, "\"type\": \"step\""), 20);
    /* With the stop switched off it warns and goes to the end. */
    EXPECT(0, "train configs/simclr_fmnist.cfg " TINY "--set 'optimizer.type=\"sgd\"' --set optimizer.lr=1000 "
              "--set train.epochs=3 --set train.watch_steps=5 --set train.stop_on_divergence=false --run-dir %s/on",
           dir);
    HAS("going on as train.stop_on_divergence = false");
    HAS("trained 12 steps");
}
END_TEST

/* The collapse watch sees every architecture's embeddings through the
 * seam: with the bar at its top (1, above any real batch's spread) each
 * stops at once on "hardly differ". */
static const char *const arch_configs[] = {"simclr_fmnist.cfg", "moco_fmnist.cfg", "swav_fmnist.cfg",
                                           "membank_fmnist.cfg"};

START_TEST(collapse_watch_sees_the_embeddings) {
    EXPECT(1, "train configs/%s " TINY "--set train.watch_min_std=1 --set train.watch_steps=2 --run-dir %s/run",
           arch_configs[_i], ct_test_tmpdir());
    HAS("contrast: training collapsed (the embeddings hardly differ across the batch");
    HAS("step 2 of");
}
END_TEST

/* ---- the run directory ---------------------------------------------------------- */

START_TEST(second_run_into_a_locked_dir_is_refused) {
    const char *dir = ct_test_tmpdir();
    char run[600], lock[700];
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(lock, sizeof lock, "%s/lock", run);
    ck_assert_int_eq(mkdir(run, 0755), 0);
    /* This process holds the lock, as a running `contrast train` would. */
    int fd = open(lock, O_RDWR | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    ck_assert_int_eq(fcntl(fd, F_SETLK, &fl), 0);
    char pid[64];
    snprintf(pid, sizeof pid, "(pid %ld holds", (long)getpid());
    EXPECT(1, "train configs/simclr_fmnist.cfg " TINY "--run-dir %s", run);
    HAS("is in use by another run");
    HAS(pid);
    ck_assert(!exists(run, "metrics.jsonl") && !exists(run, "config.cfg"));
    EXPECT(1, "train configs/simclr_fmnist.cfg " TINY "--resume %s", run);
    HAS(pid);
    /* The kernel drops a lock with its holder: free again. */
    close(fd);
    EXPECT(0, "train configs/simclr_fmnist.cfg " TINY "--set train.epochs=1 --run-dir %s", run);
}
END_TEST

/* A pid that no longer exists: a child that has exited and been reaped. */
static long dead_pid(void) {
    pid_t p = fork();
    ck_assert_int_ge(p, 0);
    if (p == 0) _exit(0);
    ck_assert_int_eq(waitpid(p, NULL, 0), p);
    return (long)p;
}

START_TEST(resume_rules) {
    const char *dir = ct_test_tmpdir();
    char run[600], path[800];
    snprintf(run, sizeof run, "%s/run", dir);
    const char *sets = TINY "--set train.epochs=2";
    EXPECT(0, "train configs/simclr_fmnist.cfg %s --run-dir %s --stop-after 2", sets, run);
    /* Temp files a killed run leaves: a dead pid's go, a live pid's stay. */
    char stale[64], live[64];
    snprintf(stale, sizeof stale, "checkpoint-s00000002.state.safetensors.tmp.%ld", dead_pid());
    snprintf(live, sizeof live, "checkpoint-s00000002.safetensors.tmp.%ld", (long)getpid());
    snprintf(path, sizeof path, "%s/%s", run, stale);
    ck_assert_int_eq(ct_test_write_file(path, "x", 1), 0);
    snprintf(path, sizeof path, "%s/%s", run, live);
    ck_assert_int_eq(ct_test_write_file(path, "x", 1), 0);
    snprintf(path, sizeof path, "%s/config.cfg", run);
    char *config_before = slurp(path);

    /* A changed config is refused, and config.cfg stays as it was. */
    EXPECT(1, "train configs/simclr_fmnist.cfg %s --set optimizer.lr=0.0005 --resume %s", sets, run);
    HAS("differs from the one");
    HAS("--allow-config-change");
    HAS("now \"");
    char *config_after = slurp(path);
    ck_assert_str_eq(config_before, config_after);
    free(config_after);
    ck_assert_msg(!exists(run, stale), "%s was not removed:\n%s", stale, g_out);
    ck_assert(exists(run, live));
    HAS("left by a run that was killed");

    /* Allowed: it goes on and metrics.jsonl records the change. */
    EXPECT(0, "train configs/simclr_fmnist.cfg %s --set optimizer.lr=0.0005 --resume %s --allow-config-change", sets,
           run);
    HAS("resuming");
    char metrics[800];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run);
    ck_assert_int_eq(count_in_file(metrics, "\"type\": \"config_change\", \"step\": 2"), 1);
    config_after = slurp(path);
    ck_assert_msg(strcmp(config_before, config_after) != 0, "config.cfg is not the new config");
    free(config_after);
    free(config_before);

    /* Finished: "already finished", exit 0, nothing changes. */
    char *metrics_before = slurp(metrics);
    int ckpts = count_in_file(metrics, "\"type\": \"checkpoint\"");
    EXPECT(0, "train configs/simclr_fmnist.cfg %s --set optimizer.lr=0.0005 --resume %s", sets, run);
    HAS("already finished");
    ck_assert_ptr_null(strstr(g_out, "evaluation after"));
    char *metrics_after = slurp(metrics);
    ck_assert_str_eq(metrics_before, metrics_after);
    ck_assert_int_eq(count_in_file(metrics, "\"type\": \"checkpoint\""), ckpts);
    free(metrics_before);
    free(metrics_after);
    ck_assert(!exists(run, "checkpoint-s00000009.safetensors"));
}
END_TEST

/* ---- signals ------------------------------------------------------------------------ */

/* Start `contrast train CONFIG SETS... --run-dir RUN` with stdout and
 * stderr to files in run's parent; returns the pid. */
static pid_t start_train(const char *run, const char *const *sets, int n_sets) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid != 0) return pid;
    char exe[1024], cfg[1024], out[800], err[800], plugins[1024];
    snprintf(exe, sizeof exe, "%s/contrast", ct_test_build_dir());
    snprintf(cfg, sizeof cfg, "%s/configs/simclr_fmnist.cfg", ct_test_source_dir());
    snprintf(out, sizeof out, "%s.out", run);
    snprintf(err, sizeof err, "%s.err", run);
    snprintf(plugins, sizeof plugins, "%s/plugins", ct_test_build_dir());
    setenv("CONTRAST_PLUGIN_PATH", plugins, 1);
    if (!freopen(out, "w", stdout) || !freopen(err, "w", stderr)) _exit(126);
    const char *argv[64] = {exe, "train", cfg};
    int n = 3;
    for (int k = 0; k < n_sets && n < 58; k++) argv[n++] = "--set", argv[n++] = sets[k];
    argv[n++] = "--run-dir";
    argv[n++] = run;
    argv[n] = NULL;
    execv(exe, (char *const *)argv);
    _exit(127);
}

/* Wait until metrics.jsonl of run holds `count` lines with `needle`. */
static void wait_for(const char *run, const char *needle, int count) {
    char metrics[800];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run);
    for (int tries = 0; tries < 600; tries++) {
        if (access(metrics, R_OK) == 0 && count_in_file(metrics, needle) >= count) return;
        usleep(50000);
    }
    ck_abort_msg("%s never held %d x '%s'", metrics, count, needle);
}

static const char *const SMALL_RUN[] = {"data.train.limit=512", "data.test.limit=64", "train.batch_size=16",
                                        "train.threads=1", "encoder.stem_width=8", "encoder.widths=[8,16,32]",
                                        "train.log_every=1"};
#define N_SMALL_RUN (int)(sizeof SMALL_RUN / sizeof SMALL_RUN[0])

START_TEST(sigterm_checkpoints_and_exits_143) {
    char run[600];
    snprintf(run, sizeof run, "%s/run", ct_test_tmpdir());
    const char *sets[N_SMALL_RUN + 1];
    memcpy(sets, SMALL_RUN, sizeof SMALL_RUN);
    sets[N_SMALL_RUN] = "train.epochs=50";
    pid_t pid = start_train(run, sets, N_SMALL_RUN + 1);
    wait_for(run, "\"type\": \"step\"", 3);
    kill(pid, SIGTERM);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 143, "status %#x", status);
    char metrics[800];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run);
    ck_assert_int_eq(count_in_file(metrics, "\"type\": \"checkpoint\""), 1);
}
END_TEST

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

START_TEST(sigint_during_evaluation_interrupts_within_a_second) {
    char run[600], errf[700];
    snprintf(run, sizeof run, "%s/run", ct_test_tmpdir());
    snprintf(errf, sizeof errf, "%s.err", run);
    /* Two steps, then a linear probe of 100000 epochs: many seconds. */
    const char *sets[N_SMALL_RUN + 2];
    memcpy(sets, SMALL_RUN, sizeof SMALL_RUN);
    sets[N_SMALL_RUN] = "train.max_steps=2";
    sets[N_SMALL_RUN + 1] = "evaluation.evaluators=({type=\"linear\"; epochs=100000;})";
    pid_t pid = start_train(run, sets, N_SMALL_RUN + 2);
    wait_for(run, "\"type\": \"checkpoint\", \"step\": 2", 1);
    usleep(300000); /* inside the evaluation now */
    double t0 = now_s();
    kill(pid, SIGINT);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    double waited = now_s() - t0;
    ck_assert_msg(waited < 1.0, "took %.2f s to stop", waited);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 130, "status %#x", status);
    ck_assert_int_eq(count_in_file(errf, "interrupted during the evaluation after step 2"), 1);
    ck_assert(!exists(run, "summary.txt"));
}
END_TEST

START_TEST(closed_stdout_does_not_end_training) {
    const char *dir = ct_test_tmpdir();
    /* `| head -1`: the pipe closes after the first line, SIGPIPE would
     * kill the run at its next line. */
    EXPECT(0, "train configs/simclr_fmnist.cfg " TINY "--set train.epochs=3 --run-dir %s/run | head -1", dir);
    char run[600], metrics[700];
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run);
    ck_assert_int_eq(count_in_file(metrics, "\"type\": \"step\""), 12);
    ck_assert_msg(exists(run, "summary.txt") && exists(run, "checkpoint-s00000012.safetensors"), "%s", g_out);
}
END_TEST

/* ---- the command line ------------------------------------------------------------- */

static const char *const commands[] = {"plugins", "check", "version", "train", "eval", "embed", "preview",
                                       "new-plugin"};

START_TEST(every_command_has_help) {
    char want[64];
    snprintf(want, sizeof want, "usage: contrast %s", commands[_i]);
    EXPECT(0, "%s --help", commands[_i]);
    ck_assert_msg(strncmp(g_out, want, strlen(want)) == 0, "%s", g_out);
    EXPECT(0, "%s configs/simclr_fmnist.cfg -h", commands[_i]);
    ck_assert_msg(strncmp(g_out, want, strlen(want)) == 0, "%s", g_out);
    EXPECT(0, "help %s", commands[_i]);
    ck_assert_msg(strncmp(g_out, want, strlen(want)) == 0, "%s", g_out);
}
END_TEST

#define PIXELS "configs/pixels_fmnist.cfg --set data.train.limit=32 --set data.test.limit=32 --set train.threads=1 "

START_TEST(embed_names_labels_after_the_output_and_never_overwrites) {
    const char *dir = ct_test_tmpdir();
    EXPECT(0, "embed " PIXELS "--split test --out %s/test.npy", dir);
    HAS(".labels.npy");
    ck_assert(exists(dir, "test.npy") && exists(dir, "test.labels.npy") && !exists(dir, "labels.npy"));
    EXPECT(0, "embed " PIXELS "--split train --out %s/train.npy", dir);
    ck_assert(exists(dir, "train.labels.npy") && exists(dir, "test.labels.npy"));
    /* The same output again: refused, before any work. */
    EXPECT(1, "embed " PIXELS "--split train --out %s/train.npy", dir);
    HAS("train.npy already exists (--force overwrites it)");
    EXPECT(1, "embed " PIXELS "--split train --out %s/new.npy --labels-out %s/test.labels.npy", dir, dir);
    HAS("test.labels.npy already exists");
    ck_assert(!exists(dir, "new.npy"));
    EXPECT(0, "embed " PIXELS "--split train --out %s/train.npy --force", dir);
    EXPECT(0, "embed " PIXELS "--split test --out %s/t2.npy --labels-out %s/t2-labels.npy", dir, dir);
    ck_assert(exists(dir, "t2-labels.npy") && !exists(dir, "t2.labels.npy"));
    EXPECT(2, "embed " PIXELS "--split test --out %s/same.npy --labels-out %s/same.npy", dir, dir);
}
END_TEST

/* The nan_rows test encoder makes rows 0, 10, 20, 30 of a batch NaN. */
#define NAN_ROWS PIXELS "--set 'encoder.type=\"nan_rows\"' --set encoder.nan_every=10 "

START_TEST(non_finite_features_are_refused) {
    const char *dir = ct_test_tmpdir();
    EXPECT(1, "embed " NAN_ROWS "--split test --out %s/f.npy", dir);
    HAS("non-finite features (NaN or Inf) for 4 of 32 rows (first: item 0)");
    ck_assert(!exists(dir, "f.npy") && !exists(dir, "f.labels.npy"));
    EXPECT(1, "eval " NAN_ROWS);
    HAS("for 4 of 32 rows");
    ck_assert_ptr_null(strstr(g_out, "knn.top1"));
}
END_TEST

/* ---- configurations that train nothing, seen at check ----------------------------- */

static const struct {
    const char *args, *want;
} refusals[] = {
    {"configs/simclr_fmnist.cfg --set train.batch_size=1", "end_to_end: train.batch_size = 1 leaves NT-Xent no negatives"},
    {"configs/swav_fmnist.cfg --set train.batch_size=1", "clustering: train.batch_size = 1 gives every sample"},
    {"configs/swav_fmnist.cfg --set architecture.prototypes=1", "'prototypes' = 1 is out of range"},
    {"configs/instdisc_fmnist.cfg --set data.train.limit=1", "memory_bank: needs a training dataset of at least 2"},
    {"configs/moco_fmnist.cfg --set architecture.queue_size=0", "'queue_size' = 0 is out of range"},
    {"configs/simclr_fmnist.cfg --set encoder.widths=[8,16]", "blocks (3 stages) and widths (2 stages)"},
    {"configs/simclr_fmnist.cfg --set data.train.limit=100 --set train.batch_size=128",
     "pipeline (data \"train\"): 100 samples make no full batch of 128"},
};
#define N_REFUSALS (int)(sizeof refusals / sizeof refusals[0])

START_TEST(check_refuses_what_train_would) {
    EXPECT(1, "check %s", refusals[_i].args);
    HAS(refusals[_i].want);
    char *nl = strchr(g_out, '\n');
    ck_assert_msg(strncmp(g_out, "contrast: ", 10) == 0 && nl && nl[1] == '\0', "not one line: %s", g_out);
}
END_TEST

START_TEST(train_refuses_no_negatives_at_start) {
    const char *dir = ct_test_tmpdir();
    EXPECT(1, "train configs/simclr_fmnist.cfg " TINY "--set train.batch_size=1 --run-dir %s/run", dir);
    HAS("no negatives");
}
END_TEST

START_TEST(check_prints_what_it_built) {
    EXPECT(0, "check configs/simclr_fmnist.cfg " TINY);
    HAS("first batch 16 samples x 2 views: 1x28x28 1x28x28");
    HAS("model: ");
    HAS("architecture end_to_end");
    HAS("evaluation: items 1x28x28 -> features of 32");
}
END_TEST

/* ---- plugins through symlinks ----------------------------------------------------- */

static ct_plugin_set *load_dir(const char *dir) {
    ct_loader_opts o = {0};
    o.paths = &dir;
    o.n_paths = 1;
    o.no_env = true;
    o.no_default_dirs = true;
    ct_plugin_set *set = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_plugins_load(&o, &set, &err), CT_OK);
    return set;
}

START_TEST(symlink_to_a_writable_folder_is_refused) {
    char safe[600], open_dir[600], cmd[3000], so[700], link[700];
    snprintf(safe, sizeof safe, "%s", ct_test_tmpdir());
    snprintf(open_dir, sizeof open_dir, "%s", ct_test_tmpdir());
    ck_assert_int_eq(chmod(safe, 0755), 0);
    snprintf(so, sizeof so, "%s/good.so", open_dir);
    snprintf(cmd, sizeof cmd, "cp '%s/tests/plugins/good.so' '%s' && chmod 0644 '%s'", ct_test_build_dir(), so, so);
    ck_assert_int_eq(ct_test_run(cmd, g_out, sizeof g_out), 0);
    snprintf(link, sizeof link, "%s/good.so", safe);
    ck_assert_int_eq(symlink(so, link), 0);
    /* The target's folder writable by others (sticky or not): refused. */
    const mode_t modes[] = {0777, 01777, 0775};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(chmod(open_dir, modes[k]), 0);
        ct_plugin_set *set = load_dir(safe);
        ck_assert_int_eq(set->n, 1);
        ck_assert_msg(!set->items[0]->loaded && set->items[0]->status == CT_ERR_UNSAFE, "mode %o: %s", modes[k],
                      set->items[0]->reason);
        ck_assert_msg(strstr(set->items[0]->reason, "link's target") && strstr(set->items[0]->reason, open_dir) &&
                          strstr(set->items[0]->reason, k == 2 ? "writable by group" : "writable by others"),
                      "%s", set->items[0]->reason);
        ct_plugins_free(set);
    }
    /* A safe target loads through the link. */
    ck_assert_int_eq(chmod(open_dir, 0755), 0);
    ct_plugin_set *set = load_dir(safe);
    ck_assert_msg(set->items[0]->loaded, "%s", set->items[0]->reason);
    ct_plugins_free(set);
    /* A folder above the target's, writable and not sticky: refused too. */
    char deep[700], deep_so[800];
    snprintf(deep, sizeof deep, "%s/inner", open_dir);
    ck_assert_int_eq(mkdir(deep, 0755), 0);
    snprintf(deep_so, sizeof deep_so, "%s/good.so", deep);
    ck_assert_int_eq(rename(so, deep_so), 0);
    ck_assert_int_eq(unlink(link), 0);
    ck_assert_int_eq(symlink(deep_so, link), 0);
    ck_assert_int_eq(chmod(open_dir, 0777), 0);
    set = load_dir(safe);
    ck_assert_msg(!set->items[0]->loaded && strstr(set->items[0]->reason, "writable by others"), "%s",
                  set->items[0]->reason);
    ct_plugins_free(set);
    /* ... while a sticky one there (as /tmp) is accepted. */
    ck_assert_int_eq(chmod(open_dir, 01777), 0);
    set = load_dir(safe);
    ck_assert_msg(set->items[0]->loaded, "%s", set->items[0]->reason);
    ct_plugins_free(set);
    chmod(open_dir, 0755);
}
END_TEST

int main(void) {
    Suite *s = suite_create("run_safety");
    TCase *unit = tcase_create("unit");
    tcase_add_test(unit, watch_spread);
    tcase_add_test(unit, watch_divergence_warns_then_stops);
    tcase_add_test(unit, watch_collapse_and_switches);
    tcase_add_test(unit, non_finite_rows_are_counted);
    tcase_add_test(unit, symlink_to_a_writable_folder_is_refused);
    suite_add_tcase(s, unit);
    TCase *runs = tcase_create("runs");
    tcase_set_timeout(runs, 300);
    tcase_add_test(runs, sgd_lr_1000_warns_and_stops);
    tcase_add_loop_test(runs, collapse_watch_sees_the_embeddings, 0, (int)(sizeof arch_configs / sizeof arch_configs[0]));
    tcase_add_test(runs, second_run_into_a_locked_dir_is_refused);
    tcase_add_test(runs, resume_rules);
    tcase_add_test(runs, sigterm_checkpoints_and_exits_143);
    tcase_add_test(runs, sigint_during_evaluation_interrupts_within_a_second);
    tcase_add_test(runs, closed_stdout_does_not_end_training);
    tcase_add_loop_test(runs, every_command_has_help, 0, (int)(sizeof commands / sizeof commands[0]));
    tcase_add_test(runs, embed_names_labels_after_the_output_and_never_overwrites);
    tcase_add_test(runs, non_finite_features_are_refused);
    tcase_add_loop_test(runs, check_refuses_what_train_would, 0, N_REFUSALS);
    tcase_add_test(runs, train_refuses_no_negatives_at_start);
    tcase_add_test(runs, check_prints_what_it_built);
    suite_add_tcase(s, runs);
    return ct_test_main(s);
}
