/* The loader and the registry: one deliberately broken plugin per failure
 * mode (tests/plugins/), each refused with a clear reason while the good
 * plugin still loads; search path rules; unsafe permissions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contrast/registry.h"
#include "ct_test.h"
#include "plugins/loader.h"

static char plugin_dir[1024];

static void setup(void) {
    snprintf(plugin_dir, sizeof plugin_dir, "%s/tests/plugins", ct_test_build_dir());
}

static ct_plugin_set *load_dirs(const char *const *dirs, int n, bool allow_unsafe) {
    ct_loader_opts o = {0};
    o.paths = dirs;
    o.n_paths = n;
    o.no_env = true;
    o.no_default_dirs = true;
    o.allow_unsafe = allow_unsafe;
    ct_plugin_set *set = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_plugins_load(&o, &set, &err), CT_OK);
    return set;
}

static const ct_plugin_record *record(const ct_plugin_set *set, const char *file) {
    for (int k = 0; k < set->n; k++) {
        const char *slash = strrchr(set->items[k]->path, '/');
        if (slash && strcmp(slash + 1, file) == 0) return set->items[k];
    }
    ck_abort_msg("no record for %s", file);
    return NULL;
}

/* file, expected status, substrings the reason must hold */
static const struct {
    const char *file;
    ct_status status;
    const char *want[3];
} refusals[] = {
    {"bad_not_elf.so", CT_ERR_PLUGIN, {"not a loadable shared object", NULL, NULL}},
    {"bad_no_entry.so", CT_ERR_PLUGIN, {"no entry symbol", "contrast_plugin_entry", NULL}},
    /* "%M.%m" below: the host's ABI; "%N" one past it (see abi_want) */
    {"bad_abi_major.so", CT_ERR_ABI, {"ABI %N+.0", "this host is %M.%m", "major"}},
    {"bad_newer_minor.so", CT_ERR_ABI, {"ABI %M.%N", "newer than this host's %M.%m", NULL}},
    {"bad_big_struct.so", CT_ERR_PLUGIN, {"source struct is", "this host", "knows"}},
    {"bad_init_error.so", CT_ERR_IO, {"init failed", "/nonexistent/model.bin", NULL}},
    {"bad_segv_init.so", CT_ERR_PLUGIN, {"crashed in init", "not loaded", NULL}},
    {"bad_build_tag.so", CT_ERR_ABI, {"build tag 'f64-serial'", CT_BUILD_TAG, NULL}},
    {"bad_role.so", CT_ERR_PLUGIN, {"unknown roles", NULL, NULL}},
    {"bad_pretext_no_apply.so", CT_ERR_PLUGIN,
     {"pretext 'no_apply_pretext'", "of plugin bad_pretext_no_apply", "has no apply callback"}},
    {"zz_duplicate.so", CT_ERR_PLUGIN, {"duplicate source 'good_source'", "good.so", NULL}},
};
#define N_REFUSALS (sizeof refusals / sizeof refusals[0])

/* Expand the ABI placeholders of a wanted substring: %M and %m are the
 * host's major and minor, "%N+" the next major and "%N" the next minor
 * (what the two ABI test plugins claim), so the test follows version.h. */
static const char *abi_want(const char *want, char *buf, size_t size) {
    size_t n = 0;
    for (const char *p = want; *p && n + 12 < size; p++) {
        if (p[0] == '%' && p[1] == 'N' && p[2] == '+') {
            n += (size_t)snprintf(buf + n, size - n, "%d", CT_ABI_MAJOR + 1), p += 2;
        } else if (p[0] == '%' && (p[1] == 'M' || p[1] == 'm' || p[1] == 'N')) {
            int v = p[1] == 'M' ? CT_ABI_MAJOR : p[1] == 'm' ? CT_ABI_MINOR : CT_ABI_MINOR + 1;
            n += (size_t)snprintf(buf + n, size - n, "%d", v), p += 1;
        } else {
            buf[n++] = *p;
        }
    }
    buf[n] = '\0';
    return buf;
}

START_TEST(each_bad_plugin_is_refused_with_its_reason) {
    const char *dirs[] = {plugin_dir};
    ct_plugin_set *set = load_dirs(dirs, 1, false);
    const ct_plugin_record *rec = record(set, refusals[_i].file);
    ck_assert_msg(!rec->loaded, "%s was loaded", refusals[_i].file);
    ck_assert_msg(rec->status == refusals[_i].status, "%s: status %s, reason %s", refusals[_i].file,
                  ct_status_name(rec->status), rec->reason);
    for (int k = 0; k < 3 && refusals[_i].want[k]; k++) {
        char want[128];
        abi_want(refusals[_i].want[k], want, sizeof want);
        ck_assert_msg(strstr(rec->reason, want), "%s: reason '%s' lacks '%s'", refusals[_i].file, rec->reason,
                      want);
    }
    ct_plugins_free(set);
}
END_TEST

START_TEST(good_plugin_loads_despite_the_bad_ones) {
    const char *dirs[] = {plugin_dir};
    ct_plugin_set *set = load_dirs(dirs, 1, false);
    const ct_plugin_record *good = record(set, "good.so");
    ck_assert_msg(good->loaded, "good.so refused: %s", good->reason);
    ck_assert_str_eq(good->name, "good");
    ck_assert_str_eq(good->version, "1.2.3");
    ck_assert_int_eq(ct_plugins_refused(set), (int)N_REFUSALS);
    const ct_registry_entry *src = ct_plugins_find(set, CT_ROLE_SOURCE, "good_source");
    ck_assert_ptr_nonnull(src);
    ck_assert_str_eq(src->plugin, "good");
    ck_assert_ptr_nonnull(ct_plugins_find(set, CT_ROLE_PRETEXT, "good_noop"));
    ck_assert_ptr_null(ct_plugins_find(set, CT_ROLE_SOURCE, "good_noop"));
    /* The duplicate's registration was rolled back: good's source stays. */
    ck_assert_ptr_nonnull(strstr(src->file, "/good.so"));
    /* Nothing of a refused plugin stays registered. */
    ck_assert_ptr_null(ct_plugins_find(set, CT_ROLE_SOURCE, "big_struct_source"));
    ck_assert_ptr_null(ct_plugins_find(set, CT_ROLE_PRETEXT, "no_apply_pretext"));
    /* The plugin's services table says whose it is. */
    const ct_host *h = ct_plugins_host_for(set, src);
    ck_assert_uint_eq(h->size, sizeof(ct_host));
    ck_assert_str_eq(ct_host_owner(h), "good");
    /* And the implementation works. */
    ct_settings *s;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_settings_parse(src->ops.source->params, "count = 4;", "good", &s, &err), CT_OK);
    void *self;
    ck_assert_int_eq(src->ops.source->create(s, h, &self, &err), CT_OK);
    ct_image img = CT_IMAGE_INIT;
    int32_t label;
    ck_assert_int_eq(src->ops.source->get(self, 3, &img, &label, &err), CT_OK);
    ck_assert_int_eq(label, 1);
    ck_assert(img.data[0] == 0.75f);
    ct_image_free(&img);
    src->ops.source->destroy(self);
    ct_settings_free(s);
    ct_plugins_free(set);
}
END_TEST

/* Copy a file (mode 0644) into dir. */
static void copy_to(const char *src, const char *dir, const char *name, char *out, size_t n) {
    snprintf(out, n, "%s/%s", dir, name);
    char cmd[4000], text[256];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && chmod 0644 '%s'", src, out, out);
    ck_assert_int_eq(ct_test_run(cmd, text, sizeof text), 0);
}

START_TEST(same_plugin_name_twice_keeps_the_first) {
    char src[1200], copy[1200];
    snprintf(src, sizeof src, "%s/good.so", plugin_dir);
    const char *tmp = ct_test_tmpdir();
    char dir[512];
    snprintf(dir, sizeof dir, "%s", tmp);
    chmod(dir, 0755);
    copy_to(src, dir, "good.so", copy, sizeof copy);
    const char *dirs[] = {plugin_dir, dir};
    ct_plugin_set *set = load_dirs(dirs, 2, false);
    ck_assert_int_eq(set->n_dirs, 2);
    const ct_plugin_record *second = set->items[set->n - 1];
    ck_assert_str_eq(second->path, copy);
    ck_assert(!second->loaded);
    ck_assert_int_eq(second->status, CT_ERR_EXISTS);
    ck_assert_ptr_nonnull(strstr(second->reason, "duplicate plugin name 'good'"));
    ck_assert(record(set, "good.so")->loaded); /* the first good.so */
    ct_plugins_free(set);
}
END_TEST

START_TEST(writable_by_others_is_refused_unless_allowed) {
    char src[1200], copy[1200];
    snprintf(src, sizeof src, "%s/good.so", plugin_dir);
    char dir[512];
    snprintf(dir, sizeof dir, "%s", ct_test_tmpdir());
    chmod(dir, 0755);
    copy_to(src, dir, "good.so", copy, sizeof copy);
    ck_assert_int_eq(chmod(copy, 0666), 0);
    const char *dirs[] = {dir};
    ct_plugin_set *set = load_dirs(dirs, 1, false);
    ck_assert_int_eq(set->n, 1);
    ck_assert(!set->items[0]->loaded);
    ck_assert_int_eq(set->items[0]->status, CT_ERR_UNSAFE);
    ck_assert_ptr_nonnull(strstr(set->items[0]->reason, "writable by others"));
    ck_assert_ptr_nonnull(strstr(set->items[0]->reason, "--allow-unsafe-plugins"));
    ct_plugins_free(set);
    set = load_dirs(dirs, 1, true);
    ck_assert(set->items[0]->loaded);
    ct_plugins_free(set);
    /* A group-writable directory taints every file in it. */
    ck_assert_int_eq(chmod(copy, 0644), 0);
    ck_assert_int_eq(chmod(dir, 0775), 0);
    set = load_dirs(dirs, 1, false);
    ck_assert(!set->items[0]->loaded);
    ck_assert_ptr_nonnull(strstr(set->items[0]->reason, "directory"));
    ck_assert_ptr_nonnull(strstr(set->items[0]->reason, "writable by group"));
    ct_plugins_free(set);
}
END_TEST

START_TEST(env_path_is_colon_separated_and_cwd_never_searched) {
    char env[2048];
    snprintf(env, sizeof env, "::/nonexistent/dir:%s:", plugin_dir);
    setenv("CONTRAST_PLUGIN_PATH", env, 1);
    ct_loader_opts o = {0};
    o.no_default_dirs = true;
    ct_plugin_set *set = NULL;
    ct_error err = CT_ERROR_INIT;
    ck_assert_int_eq(ct_plugins_load(&o, &set, &err), CT_OK);
    ck_assert_int_eq(set->n_dirs, 1);
    ck_assert_ptr_nonnull(ct_plugins_find(set, CT_ROLE_SOURCE, "good_source"));
    ct_plugins_free(set);
    /* From inside the plugin folder, with no path at all: nothing found. */
    unsetenv("CONTRAST_PLUGIN_PATH");
    ck_assert_int_eq(chdir(plugin_dir), 0);
    ck_assert_int_eq(ct_plugins_load(&o, &set, &err), CT_OK);
    ck_assert_int_eq(set->n_dirs, 0);
    ck_assert_int_eq(set->n, 0);
    ct_plugins_free(set);
}
END_TEST

/* ---- the registry on its own ------------------------------------------------ */

static ct_status s_create(const ct_settings *s, const ct_host *h, void **self, ct_error *err) {
    (void)s, (void)h, (void)err;
    *self = NULL;
    return CT_OK;
}
static void s_destroy(void *self) { (void)self; }
static void s_info(void *self, ct_source_info *i) {
    (void)self;
    memset(i, 0, sizeof *i);
}
static ct_status s_get(void *self, int64_t i, ct_image *d, int32_t *l, ct_error *e) {
    (void)self, (void)i, (void)d, (void)l, (void)e;
    return CT_OK;
}

START_TEST(registry_copies_checks_and_rolls_back) {
    ct_registry *r = ct_registry_new();
    ct_registry_begin(r, "p", "p.so", NULL);
    ct_source_ops ops = {0};
    ops.name = "src";
    ops.create = s_create, ops.destroy = s_destroy, ops.info = s_info, ops.get = s_get;
    ops.extension = (const void *(*)(void *, const char *))0x1; /* beyond the older size */
    /* An older plugin's smaller struct: the fields it lacks read as zero. */
    size_t older = offsetof(ct_source_ops, get) + sizeof ops.get;
    ck_assert_int_eq(ct__register_source(r, &ops, older), CT_OK);
    const ct_registry_entry *e = ct_registry_find(r, CT_ROLE_SOURCE, "src");
    ck_assert_ptr_nonnull(e);
    ck_assert(e->ops.source->extension == NULL);
    ck_assert(e->ops.source->get_frames == NULL);
    ck_assert_uint_eq(e->ops.source->struct_size, older);
    ck_assert_ptr_ne(e->ops.source, &ops);
    ck_assert_int_eq(ct_registry_errors(r, NULL), 0);
    /* Larger than this SDK knows. */
    ops.name = "big";
    ck_assert_int_eq(ct__register_source(r, &ops, sizeof ops + 8), CT_ERR_ABI);
    /* Duplicate name within the role. */
    ops.name = "src";
    ck_assert_int_eq(ct_register_source(r, &ops), CT_ERR_EXISTS);
    /* Missing name, bad name, missing callback. */
    ops.name = NULL;
    ck_assert_int_eq(ct_register_source(r, &ops), CT_ERR_PLUGIN);
    ops.name = "Bad Name";
    ck_assert_int_eq(ct_register_source(r, &ops), CT_ERR_PLUGIN);
    ops.name = "noget";
    ops.get = NULL;
    ck_assert_int_eq(ct_register_source(r, &ops), CT_ERR_PLUGIN);
    ck_assert_ptr_null(ct_registry_find(r, CT_ROLE_SOURCE, "noget"));
    const char *first;
    ck_assert_int_eq(ct_registry_errors(r, &first), 5);
    ck_assert_ptr_nonnull(strstr(first, "knows"));
    /* Suggestions and rollback. */
    ck_assert_str_eq(ct_registry_suggest(r, CT_ROLE_SOURCE, "srx"), "src");
    ck_assert_ptr_null(ct_registry_suggest(r, CT_ROLE_SOURCE, "completely_else"));
    ck_assert_ptr_null(ct_registry_suggest(r, CT_ROLE_PRETEXT, "src"));
    ck_assert_uint_eq(ct_registry_count(r), 1);
    ct_registry_rollback(r, 0);
    ck_assert_ptr_null(ct_registry_find(r, CT_ROLE_SOURCE, "src"));
    ck_assert_str_eq(ct_role_name(CT_ROLE_ARCHITECTURE), "architecture");
    ck_assert_str_eq(ct_role_name((ct_role)0x40), "unknown");
    ct_registry_free(r);
}
END_TEST

/* Typed stand-ins for the callbacks registration requires (never called). */
static ct_status p_apply(void *self, const ct_image *src, ct_image *dst, ct_rng *rng, ct_error *err) {
    (void)self, (void)src, (void)dst, (void)rng, (void)err;
    return CT_OK;
}
static const void *p_extension(void *self, const char *id) {
    (void)self, (void)id;
    return NULL;
}
static ct_status e_create(const ct_settings *s, const ct_host *h, const ct_encoder_input *in, ct_params *p,
                          const char *prefix, void **self, ct_error *err) {
    (void)s, (void)h, (void)in, (void)p, (void)prefix, (void)err;
    *self = NULL;
    return CT_OK;
}
static int64_t e_out_dim(void *self) {
    (void)self;
    return 1;
}
static ct_tensor *e_forward(void *self, ct_graph *g, ct_tensor *x) {
    (void)self, (void)g;
    return x;
}
static ct_status a_create(const ct_settings *s, const ct_arch_env *env, void **self, ct_error *err) {
    (void)s, (void)env, (void)err;
    *self = NULL;
    return CT_OK;
}
static ct_tensor *a_loss(void *self, ct_graph *g, const ct_batch *b, const ct_step_info *i) {
    (void)self, (void)g, (void)b, (void)i;
    return NULL;
}
static ct_status v_run(void *self, const ct_eval_env *env, ct_metrics *m, ct_error *err) {
    (void)self, (void)env, (void)m, (void)err;
    return CT_OK;
}

/* Register `ops` (its role's struct) under a fresh attribution; returns the
 * status and copies the refusal (if any) into why. */
#define TRY_REGISTER(reg, fn, ops, why)                                                                    \
    (ct_registry_begin((reg), "p", "p.so", NULL), st = fn((reg), &(ops)), first = NULL,                   \
     ct_registry_errors((reg), &first), snprintf((why), sizeof(why), "%s", first ? first : ""), st)

static void want_refused(ct_status st, const char *why, const char *role, const char *name, const char *cb) {
    char want[160];
    ck_assert_msg(st == CT_ERR_PLUGIN, "%s '%s' without %s: status %s", role, name, cb, ct_status_name(st));
    snprintf(want, sizeof want, "%s '%s' of plugin p has no %s callback", role, name, cb);
    ck_assert_msg(strstr(why, want), "reason '%s' lacks '%s'", why, want);
}

START_TEST(registry_requires_each_roles_callbacks) {
    ct_registry *r = ct_registry_new();
    ct_status st;
    const char *first;
    char why[CT_ERROR_MSG_MAX];

    ct_source_ops src = {0};
    src.name = "s_ok", src.create = s_create, src.destroy = s_destroy, src.info = s_info, src.get = s_get;
    ck_assert_int_eq(TRY_REGISTER(r, ct_register_source, src, why), CT_OK);
    src.name = "s_nocreate", src.create = NULL;
    want_refused(TRY_REGISTER(r, ct_register_source, src, why), why, "source", "s_nocreate", "create");
    src.name = "s_nodestroy", src.create = s_create, src.destroy = NULL;
    want_refused(TRY_REGISTER(r, ct_register_source, src, why), why, "source", "s_nodestroy", "destroy");
    src.name = "s_noinfo", src.destroy = s_destroy, src.info = NULL;
    want_refused(TRY_REGISTER(r, ct_register_source, src, why), why, "source", "s_noinfo", "info");

    /* A pretext is a transform: apply is required, extension does not stand
     * in for it (ABI 1.2). */
    ct_pretext_ops pre = {0};
    pre.name = "p_ok", pre.create = s_create, pre.destroy = s_destroy, pre.apply = p_apply;
    ck_assert_int_eq(TRY_REGISTER(r, ct_register_pretext, pre, why), CT_OK);
    pre.name = "p_noapply", pre.apply = NULL, pre.extension = p_extension;
    want_refused(TRY_REGISTER(r, ct_register_pretext, pre, why), why, "pretext", "p_noapply", "apply");
    pre.name = "p_nodestroy", pre.apply = p_apply, pre.destroy = NULL;
    want_refused(TRY_REGISTER(r, ct_register_pretext, pre, why), why, "pretext", "p_nodestroy", "destroy");

    ct_encoder_ops enc = {0};
    enc.name = "e_ok", enc.create = e_create, enc.destroy = s_destroy, enc.out_dim = e_out_dim;
    enc.forward = e_forward;
    ck_assert_int_eq(TRY_REGISTER(r, ct_register_encoder, enc, why), CT_OK);
    enc.name = "e_nodim", enc.out_dim = NULL;
    want_refused(TRY_REGISTER(r, ct_register_encoder, enc, why), why, "encoder", "e_nodim", "out_dim");
    enc.name = "e_noforward", enc.out_dim = e_out_dim, enc.forward = NULL;
    want_refused(TRY_REGISTER(r, ct_register_encoder, enc, why), why, "encoder", "e_noforward", "forward");

    ct_arch_ops arch = {0};
    arch.name = "a_ok", arch.create = a_create, arch.destroy = s_destroy, arch.loss = a_loss;
    ck_assert_int_eq(TRY_REGISTER(r, ct_register_architecture, arch, why), CT_OK);
    arch.name = "a_noloss", arch.loss = NULL;
    want_refused(TRY_REGISTER(r, ct_register_architecture, arch, why), why, "architecture", "a_noloss", "loss");

    ct_evaluator_ops ev = {0};
    ev.name = "v_ok", ev.create = s_create, ev.destroy = s_destroy, ev.run = v_run;
    ck_assert_int_eq(TRY_REGISTER(r, ct_register_evaluator, ev, why), CT_OK);
    ev.name = "v_norun", ev.run = NULL;
    want_refused(TRY_REGISTER(r, ct_register_evaluator, ev, why), why, "evaluator", "v_norun", "run");

    /* Only the complete ones stay, one per role, in registration order. */
    ck_assert_uint_eq(ct_registry_count(r), 5);
    const char *kept[] = {"s_ok", "p_ok", "e_ok", "a_ok", "v_ok"};
    for (size_t i = 0; i < 5; i++) ck_assert_str_eq(ct_registry_at(r, i)->name, kept[i]);
    /* Outside a plugin (no attribution) the reason names only the implementation. */
    ct_registry_begin(r, NULL, NULL, NULL);
    ev.name = "v_bare";
    ck_assert_int_eq(ct_register_evaluator(r, &ev), CT_ERR_PLUGIN);
    ck_assert_int_eq(ct_registry_errors(r, &first), 1);
    ck_assert_str_eq(first, "evaluator 'v_bare' has no run callback");
    ct_registry_free(r);
}
END_TEST

int main(void) {
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, each_bad_plugin_is_refused_with_its_reason, 0, (int)N_REFUSALS);
    tcase_add_test(tc, good_plugin_loads_despite_the_bad_ones);
    tcase_add_test(tc, same_plugin_name_twice_keeps_the_first);
    tcase_add_test(tc, writable_by_others_is_refused_unless_allowed);
    tcase_add_test(tc, env_path_is_colon_separated_and_cwd_never_searched);
    tcase_add_test(tc, registry_copies_checks_and_rolls_back);
    tcase_add_test(tc, registry_requires_each_roles_callbacks);
    suite_add_tcase(s, tc);
    return ct_test_main(s);
}
