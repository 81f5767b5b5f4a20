/* The installed SDK, used the way a third party would (issue 7):
 * `cmake --install` to a temporary prefix, then, only against that prefix,
 * build examples/plugin-pretext with CMake and with pkg-config, use it from
 * a config's plugins.path in a short training run, build every
 * `contrast new-plugin` skeleton and train with all five, build
 * examples/embed and check its embedding against `contrast embed`, and
 * check the ABI-minor rule with plugins built against edited headers.
 * The installed host and libcontrast are checksummed before and after:
 * nothing of them is rebuilt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrast/version.h"
#include "ct_test.h"

#define OUT_MAX 65536
#define FMNIST "/usr/share/datasets/fashion-mnist"

static char g_prefix[512];         /* the installed prefix */
static char g_install_log[4096];   /* why the install failed, if it did */
static char g_sums[512];           /* checksums of host and library after install */

/* Run cmd; on failure, fail the test with the command's last output. */
static char *run_ok(const char *cmd) {
    static char out[OUT_MAX];
    int rc = ct_test_run(cmd, out, sizeof out);
    size_t len = strlen(out);
    ck_assert_msg(rc == 0, "command failed (%d): %s\n...%s", rc, cmd, len > 3000 ? out + len - 3000 : out);
    return out;
}

static void need_install(void) {
    ck_assert_msg(g_prefix[0], "cmake --install failed: %s", g_install_log);
}

static void checksums(char *out, size_t n) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cksum '%s/bin/contrast' '%s'/lib*/libcontrast.so.1", g_prefix, g_prefix);
    ct_test_run(cmd, out, n);
}

/* A copy of a source-tree folder in a fresh temporary directory, so that
 * builds never write into the source tree. Returns the copy's path. */
static const char *copy_example(const char *name, char *buf, size_t n) {
    const char *tmp = ct_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    snprintf(buf, n, "%s/%s", tmp, name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp -r '%s/examples/%s' '%s' && rm -rf '%s/build' '%s'/*.so", ct_test_source_dir(),
             name, buf, buf, buf);
    run_ok(cmd);
    return buf;
}

/* ---- the layout of the prefix --------------------------------------------------- */

START_TEST(install_layout) {
    need_install();
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && test -x bin/contrast && ls lib/libcontrast.so.1 include/contrast/contrast.h "
             "include/contrast/safetensors.h lib/cmake/contrast/contrastConfig.cmake "
             "lib/cmake/contrast/contrastConfigVersion.cmake lib/pkgconfig/contrast.pc "
             "lib/contrast/plugins/idx.so lib/contrast/plugins/resnet.so && readelf -d lib/libcontrast.so.1 && "
             "readelf -d bin/contrast",
             g_prefix);
    char *out = run_ok(cmd);
    ck_assert_msg(strstr(out, "Library soname: [libcontrast.so.1]"), "SONAME is not libcontrast.so.1:\n%s", out);
    ck_assert_msg(strstr(out, "$ORIGIN/../lib"), "the installed host has no $ORIGIN RPATH:\n%s", out);
    /* Runs from the prefix alone: no library path, no plugin path. */
    snprintf(cmd, sizeof cmd, "cd / && env -u LD_LIBRARY_PATH -u CONTRAST_PLUGIN_PATH '%s/bin/contrast' plugins",
             g_prefix);
    out = run_ok(cmd);
    ck_assert_msg(strstr(out, "/lib/contrast/plugins/resnet.so"), "bundled plugins not found:\n%s", out);
    ck_assert_msg(!strstr(out, ct_test_build_dir()), "the installed host searched the build tree:\n%s", out);
    /* pkg-config and the CMake package agree on the plugin directory. */
    snprintf(cmd, sizeof cmd,
             "PKG_CONFIG_PATH='%s/lib/pkgconfig' pkg-config --modversion --variable=pluginsdir contrast && "
             "PKG_CONFIG_PATH='%s/lib/pkgconfig' pkg-config --exists 'contrast >= 0.1' && "
             "cd \"$(PKG_CONFIG_PATH='%s/lib/pkgconfig' pkg-config --variable=pluginsdir contrast)\" && pwd -P",
             g_prefix, g_prefix, g_prefix);
    out = run_ok(cmd);
    ck_assert_msg(strstr(out, "/lib/contrast/plugins"), "pluginsdir: %s", out);
}
END_TEST

/* ---- examples/plugin-pretext ------------------------------------------------------ */

START_TEST(cutout_builds_and_trains) {
    need_install();
    char dir[512], cmd[4096];
    copy_example("plugin-pretext", dir, sizeof dir);
    /* CMake, with only the prefix. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && cmake -S . -B build -DCMAKE_PREFIX_PATH='%s' -DCMAKE_BUILD_TYPE=Release >/dev/null && "
             "cmake --build build && test -f build/cutout.so && nm -D --defined-only build/cutout.so",
             dir, g_prefix);
    char *out = run_ok(cmd);
    ck_assert_msg(strstr(out, "contrast_plugin_entry"), "entry symbol not exported:\n%s", out);
    ck_assert_msg(!strstr(out, "cutout_apply"), "hidden visibility not applied:\n%s", out);
    /* pkg-config, with make. */
    snprintf(cmd, sizeof cmd, "cd '%s' && make PKG_CONFIG_PATH='%s/lib/pkgconfig' && test -f cutout.so", dir,
             g_prefix);
    run_ok(cmd);
    /* The shipped config finds cutout through its plugins.path ("build"). */
    snprintf(cmd, sizeof cmd, "cd / && env -u CONTRAST_PLUGIN_PATH '%s/bin/contrast' check '%s/cutout_fmnist.cfg'",
             g_prefix, dir);
    out = run_ok(cmd);
    char want[700];
    snprintf(want, sizeof want, "cutout 1.0.0 (%s/build/cutout.so)", dir);
    ck_assert_msg(strstr(out, want), "cutout not taken from the config's path (want \"%s\"):\n%s", want, out);
    /* A short training run through the transform chain that uses it. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && env -u CONTRAST_PLUGIN_PATH '%s/bin/contrast' train cutout_fmnist.cfg "
             "--set train.max_steps=3 --set train.batch_size=16 --set train.threads=1 "
             "--set data.train.limit=96 --set data.test.limit=32 --set 'train.out_dir=\"%s/runs\"'",
             dir, g_prefix, dir);
    out = run_ok(cmd);
    ck_assert_msg(strstr(out, "trained 3 steps"), "training did not run 3 steps:\n%s", out);
    snprintf(cmd, sizeof cmd, "ls '%s'/runs/cutout_fmnist/checkpoint-s*.safetensors", dir);
    run_ok(cmd);
    /* The pkg-config build, installed into the prefix's plugin folder, is
     * found by the installed host with no path at all. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && make install PKG_CONFIG_PATH='%s/lib/pkgconfig' && cd / && "
             "env -u CONTRAST_PLUGIN_PATH '%s/bin/contrast' plugins",
             dir, g_prefix, g_prefix);
    out = run_ok(cmd);
    ck_assert_msg(strstr(out, "lib/contrast/plugins/cutout.so"), "installed cutout not listed:\n%s", out);
    snprintf(cmd, sizeof cmd, "rm -f '%s/lib/contrast/plugins/cutout.so'", g_prefix);
    run_ok(cmd);
}
END_TEST

/* ---- contrast new-plugin ------------------------------------------------------------- */

static const char *const k_roles[] = {"source", "pretext", "encoder", "architecture", "evaluator", "structure"};
#define N_ROLES 6

START_TEST(skeletons_build_load_and_train) {
    need_install();
    const char *tmp = ct_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char dir[512], cmd[8192], top[4096] = "cmake_minimum_required(VERSION 3.18)\nproject(all LANGUAGES C)\n";
    snprintf(dir, sizeof dir, "%s", tmp);
    for (int k = 0; k < N_ROLES; k++) {
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s/bin/contrast' new-plugin %s sk_%s && ls sk_%s", dir, g_prefix,
                 k_roles[k], k_roles[k], k_roles[k]);
        char *out = run_ok(cmd);
        ck_assert_msg(strstr(out, "CMakeLists.txt") && strstr(out, "README.md"), "%s", out);
        size_t used = strlen(top);
        snprintf(top + used, sizeof top - used, "add_subdirectory(sk_%s)\n", k_roles[k]);
    }
    /* Never overwrites. */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/bin/contrast' new-plugin source sk_source", dir, g_prefix);
    char out[4096];
    ck_assert_int_eq(ct_test_run(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "already exists"), "%s", out);
    /* One configure for the six (each is its own project with
     * find_package(contrast)). */
    char path[600];
    snprintf(path, sizeof path, "%s/CMakeLists.txt", dir);
    ck_assert_int_eq(ct_test_write_file(path, top, strlen(top)), 0);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && cmake -S . -B build -DCMAKE_PREFIX_PATH='%s' -DCMAKE_C_FLAGS='-Wall -Wextra -Wpedantic "
             "-Werror' >/dev/null && cmake --build build -j2",
             dir, g_prefix);
    run_ok(cmd);
    /* Listed by the installed host. */
    char env_path[3000] = "";
    for (int k = 0; k < N_ROLES; k++) {
        size_t used = strlen(env_path);
        snprintf(env_path + used, sizeof env_path - used, "%s%s/build/sk_%s", k ? ":" : "", dir, k_roles[k]);
    }
    snprintf(cmd, sizeof cmd, "cd / && CONTRAST_PLUGIN_PATH='%s' '%s/bin/contrast' plugins", env_path, g_prefix);
    char *listed = run_ok(cmd);
    for (int k = 0; k < N_ROLES; k++) {
        char want[128];
        snprintf(want, sizeof want, "%-12s sk_%s", k_roles[k], k_roles[k]);
        ck_assert_msg(strstr(listed, want), "'%s' not listed:\n%s", want, listed);
    }
    /* And they work together: a training run made only of skeletons. */
    char cfg[4096];
    snprintf(cfg, sizeof cfg,
             "name = \"skeletons\";\n"
             "plugins = { path = [\"build/sk_source\", \"build/sk_pretext\", \"build/sk_encoder\",\n"
             "                    \"build/sk_architecture\", \"build/sk_evaluator\", \"build/sk_structure\"]; };\n"
             "data = { train = { type = \"sk_source\"; count = 120; };\n"
             "         test = { type = \"sk_source\"; count = 60; seed = 1; }; };\n"
             "encoder = { type = \"sk_encoder\"; dim = 16; };\n"
             "pipelines = ( { data = \"train\"; views = 2; transforms = ( { type = \"sk_pretext\"; } );\n"
             "               structure = { type = \"sk_structure\"; }; } );\n"
             "architecture = { type = \"sk_architecture\"; };\n"
             "optimizer = { type = \"adamw\"; lr = 0.001; };\n"
             "train = { epochs = 1; batch_size = 40; threads = 1; out_dir = \"runs\"; };\n"
             "evaluation = { train = \"train\"; test = \"test\";\n"
             "               evaluators = ( { type = \"sk_evaluator\"; } ); };\n");
    snprintf(path, sizeof path, "%s/skeletons.cfg", dir);
    ck_assert_int_eq(ct_test_write_file(path, cfg, strlen(cfg)), 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && env -u CONTRAST_PLUGIN_PATH '%s/bin/contrast' train skeletons.cfg", dir,
             g_prefix);
    char *trained = run_ok(cmd);
    ck_assert_msg(strstr(trained, "trained 3 steps"), "%s", trained);
    ck_assert_msg(strstr(trained, "sk_evaluator.top1"), "no evaluator metric:\n%s", trained);
    /* The structure skeleton with every bundled architecture (its rows are
     * items and it gives two sets, so all four train on it), and its
     * predictor is saved in the checkpoint. */
    static const char *const archs[] = {
        "{ type = \"end_to_end\"; }",
        "{ type = \"memory_bank\"; negatives = 32; }",
        "{ type = \"momentum\"; queue_size = 80; shuffle_splits = 2; }",
        "{ type = \"clustering\"; prototypes = 10; }",
    };
    for (int k = 0; k < 4; k++) {
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && env -u CONTRAST_PLUGIN_PATH '%s/bin/contrast' train skeletons.cfg --set "
                 "'architecture=%s' --set 'name=\"sk_arch%d\"' --set 'evaluation.evaluators=()' && "
                 "grep -c sk_structure.predictor.weight runs/sk_arch%d/checkpoint-s00000003.safetensors",
                 dir, g_prefix, archs[k], k, k);
        char *got = run_ok(cmd);
        ck_assert_msg(strstr(got, "trained 3 steps"), "%s:\n%s", archs[k], got);
    }
}
END_TEST

/* ---- examples/embed ------------------------------------------------------------------- */

START_TEST(embed_matches_contrast_embed) {
    need_install();
    char dir[512], cmd[8192];
    copy_example("embed", dir, sizeof dir);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && cmake -S . -B build -DCMAKE_PREFIX_PATH='%s' >/dev/null && cmake --build build", dir,
             g_prefix);
    run_ok(cmd);
    /* A checkpoint of the reference encoder after 2 steps. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s/bin/contrast' train '%s/configs/simclr_fmnist.cfg' --set train.max_steps=2 "
             "--set train.batch_size=16 --set train.threads=1 --set data.train.limit=64 --set data.test.limit=4 "
             "--set 'evaluation.evaluators=()' --set 'train.out_dir=\"runs\"' && "
             "'%s/bin/contrast' embed '%s/configs/simclr_fmnist.cfg' --set data.test.limit=4 --split test "
             "--checkpoint runs/simclr_fmnist/checkpoint-s00000002.safetensors --out feats.npy",
             dir, g_prefix, ct_test_source_dir(), g_prefix, ct_test_source_dir());
    run_ok(cmd);
    /* Row 3 of feats.npy (float32, little endian, after the .npy header)
     * against embed's output for test item 3. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ./build/embed runs/simclr_fmnist/checkpoint-s00000002.safetensors "
             "--idx " FMNIST "/t10k-images-idx3-ubyte.gz 3 --mean 0.2860 --std 0.3530",
             dir);
    char *line = run_ok(cmd);
    float mine[512];
    int n = 0;
    for (char *p = line, *end; n < 512; p = end) {
        float v = strtof(p, &end);
        if (end == p) break;
        mine[n++] = v;
    }
    ck_assert_int_eq(n, 128);
    char npy[600];
    snprintf(npy, sizeof npy, "%s/feats.npy", dir);
    FILE *f = fopen(npy, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char head[10];
    ck_assert_int_eq(fread(head, 1, 10, f), 10);
    long header = 10 + (head[8] | head[9] << 8);
    ck_assert_int_eq(fseek(f, header + 3L * 128 * 4, SEEK_SET), 0);
    float ref[128];
    ck_assert_int_eq(fread(ref, sizeof(float), 128, f), 128);
    fclose(f);
    for (int i = 0; i < 128; i++)
        ck_assert_msg(ref[i] - mine[i] < 1e-4f && mine[i] - ref[i] < 1e-4f, "feature %d: embed %g, contrast %g", i,
                      (double)mine[i], (double)ref[i]);
}
END_TEST

/* ---- the ABI minor rule, with edited copies of the installed headers ---------------- */

/* include/ of the prefix copied to dir/include with CT_ABI_MINOR = minor. */
static void headers_with_minor(const char *dir, int minor) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cp -r '%s/include' '%s/include' && sed -i 's/#define CT_ABI_MINOR [0-9]*/#define CT_ABI_MINOR %d/' "
             "'%s/include/contrast/version.h' && grep -q 'CT_ABI_MINOR %d' '%s/include/contrast/version.h'",
             g_prefix, dir, minor, dir, minor, dir);
    run_ok(cmd);
}

START_TEST(newer_minor_refused_older_accepted) {
    need_install();
    const char *tmp = ct_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char dir[512], cmd[8192];
    snprintf(dir, sizeof dir, "%s", tmp);
    /* A plugin built against headers one minor newer than the host. */
    headers_with_minor(dir, CT_ABI_MINOR + 1);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir newer && cc -std=c11 -fPIC -fvisibility=hidden -shared -I include "
             "-o newer/cutout.so '%s/examples/plugin-pretext/cutout.c' -L'%s/lib' -lcontrast && "
             "cd / && CONTRAST_PLUGIN_PATH='%s/newer' '%s/bin/contrast' plugins",
             dir, ct_test_source_dir(), g_prefix, dir, g_prefix);
    char out[OUT_MAX], want[160];
    ck_assert_int_eq(ct_test_run(cmd, out, sizeof out), 3);
    snprintf(want, sizeof want, "built for plugin ABI %d.%d, newer than this host's %d.%d", CT_ABI_MAJOR,
             CT_ABI_MINOR + 1, CT_ABI_MAJOR, CT_ABI_MINOR);
    ck_assert_msg(strstr(out, want) && strstr(out, "newer/cutout.so"), "want \"%s\" naming the file:\n%s", want,
                  out);
    /* A host one minor newer than the installed SDK (the loader compiled
     * against the edited headers) accepts the plugin built against the
     * real ones, whose minor is older. */
    static const char driver[] =
        "#include <stdio.h>\n#include \"plugins/loader.h\"\n"
        "int main(int argc, char **argv) {\n"
        "    (void)argc;\n"
        "    const char *paths[1] = {argv[1]};\n"
        "    ct_loader_opts o = {0};\n"
        "    o.paths = paths, o.n_paths = 1, o.no_env = true, o.no_default_dirs = true;\n"
        "    ct_plugin_set *set = NULL;\n"
        "    ct_error err = CT_ERROR_INIT;\n"
        "    if (ct_plugins_load(&o, &set, &err)) return printf(\"%s\\n\", err.msg), 1;\n"
        "    for (int k = 0; k < set->n; k++)\n"
        "        printf(\"host %d.%d plugin %s %u.%u %s %s\\n\", CT_ABI_MAJOR, CT_ABI_MINOR, set->items[k]->name,\n"
        "               set->items[k]->abi_major, set->items[k]->abi_minor,\n"
        "               set->items[k]->loaded ? \"loaded\" : \"refused\", set->items[k]->reason);\n"
        "    int refused = ct_plugins_refused(set);\n"
        "    ct_plugins_free(set);\n"
        "    return refused ? 3 : 0;\n"
        "}\n";
    char path[600];
    snprintf(path, sizeof path, "%s/driver.c", dir);
    ck_assert_int_eq(ct_test_write_file(path, driver, sizeof driver - 1), 0);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir older && cc -std=c11 -fPIC -fvisibility=hidden -shared -I'%s/include' "
             "-o older/cutout.so '%s/examples/plugin-pretext/cutout.c' -L'%s/lib' -lcontrast && "
             "cc -std=c11 -D_DEFAULT_SOURCE -I include -I'%s/host' -o newer_host driver.c '%s/host/plugins/loader.c' "
             "'%s/host/plugins/host_services.c' -L'%s/lib' -Wl,-rpath,'%s/lib' -lcontrast -ldl && ./newer_host older",
             dir, g_prefix, ct_test_source_dir(), g_prefix, ct_test_source_dir(), ct_test_source_dir(),
             ct_test_source_dir(), g_prefix, g_prefix);
    char *got = run_ok(cmd);
    snprintf(want, sizeof want, "host %d.%d plugin cutout %d.%d loaded", CT_ABI_MAJOR, CT_ABI_MINOR + 1,
             CT_ABI_MAJOR, CT_ABI_MINOR);
    ck_assert_msg(strstr(got, want), "want \"%s\":\n%s", want, got);
}
END_TEST

/* Last: everything above used the installed files without rebuilding them. */
START_TEST(installed_files_unchanged) {
    need_install();
    char now[512];
    checksums(now, sizeof now);
    ck_assert_msg(strcmp(now, g_sums) == 0, "installed host or libcontrast changed:\nbefore: %s\nafter: %s", g_sums,
                  now);
}
END_TEST

static void install_prefix(void) {
    const char *tmp = ct_test_tmpdir();
    if (!tmp) return;
    char prefix[512], cmd[2048];
    snprintf(prefix, sizeof prefix, "%s/prefix", tmp);
    snprintf(cmd, sizeof cmd, "cmake --install '%s' --prefix '%s'", ct_test_build_dir(), prefix);
    if (ct_test_run(cmd, g_install_log, sizeof g_install_log) != 0) return;
    snprintf(g_prefix, sizeof g_prefix, "%s", prefix);
    checksums(g_sums, sizeof g_sums);
}

int main(void) {
    /* Under scripts/test --sanitize the installed libcontrast needs the ASan
     * runtime; programs built here without it (embed, the ABI driver) must
     * not abort on ASan's link-order check. No effect otherwise. */
    char asan[1024];
    const char *old = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0:detect_leaks=0", old ? old : "", old ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
    install_prefix(); /* once; the forked tests share the prefix */
    Suite *s = suite_create("install");
    TCase *tc = tcase_create("sdk");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, install_layout);
    tcase_add_test(tc, cutout_builds_and_trains);
    tcase_add_test(tc, skeletons_build_load_and_train);
    tcase_add_test(tc, embed_matches_contrast_embed);
    tcase_add_test(tc, newer_minor_refused_older_accepted);
    tcase_add_test(tc, installed_files_unchanged);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}
