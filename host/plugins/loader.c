/* The plugin loader (see loader.h for the search path, the crash probe and
 * the safety rule). */
#include "plugins/loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROBE_TIMEOUT_MS 20000

#define END_OF(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* ---- the search path ------------------------------------------------------ */

static ct_status add_dir(ct_plugin_set *set, const char *dir) {
    char real[PATH_MAX];
    struct stat st;
    if (!dir || !*dir || !realpath(dir, real) || stat(real, &st) || !S_ISDIR(st.st_mode))
        return CT_OK; /* missing directories are simply not searched */
    for (int k = 0; k < set->n_dirs; k++)
        if (strcmp(set->dirs[k], real) == 0) return CT_OK;
    char **dirs = realloc(set->dirs, (size_t)(set->n_dirs + 1) * sizeof *dirs);
    if (!dirs) return CT_ERR_NOMEM;
    set->dirs = dirs;
    if (!(set->dirs[set->n_dirs] = strdup(real))) return CT_ERR_NOMEM;
    set->n_dirs++;
    return CT_OK;
}

/* The build's own plugin folder counts only for the uninstalled program
 * living in that build tree, so an installed contrast never looks there. */
static bool running_from_build_tree(void) {
#ifdef CONTRAST_PLUGIN_BUILD_DIR
    char exe[PATH_MAX], build[PATH_MAX], want[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return false;
    *slash = '\0';
    snprintf(want, sizeof want, "%s/..", CONTRAST_PLUGIN_BUILD_DIR);
    if (!realpath(want, build)) return false;
    return strcmp(exe, build) == 0;
#else
    return false;
#endif
}

/* The installed plugin directory. An installed program finds it relative
 * to its own location (CONTRAST_PLUGIN_INSTALL_REL, e.g.
 * "../lib/contrast/plugins" from bin/), so a prefix moved after
 * installation, or installed with `cmake --install --prefix P`, still finds
 * its bundled plugins; the configured absolute directory is the fallback
 * (and what a program in the build tree uses). */
static void install_dir(char *out, size_t n, bool in_build_tree) {
    out[0] = '\0';
#if defined(CONTRAST_PLUGIN_INSTALL_REL)
    char exe[PATH_MAX];
    ssize_t len = in_build_tree ? -1 : readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            int w = snprintf(out, n, "%s/%s", exe, CONTRAST_PLUGIN_INSTALL_REL);
            if (w > 0 && (size_t)w < n) return;
        }
    }
#else
    (void)in_build_tree;
#endif
#if defined(CONTRAST_PLUGIN_INSTALL_DIR)
    snprintf(out, n, "%s", CONTRAST_PLUGIN_INSTALL_DIR);
#else
    (void)n;
#endif
}

static ct_status build_search_path(ct_plugin_set *set, const ct_loader_opts *o) {
    ct_status st = CT_OK;
    for (int k = 0; k < o->n_paths && !st; k++) st = add_dir(set, o->paths[k]);
    const char *env = o->no_env ? NULL : getenv("CONTRAST_PLUGIN_PATH");
    if (env && !st) {
        char *copy = strdup(env), *save = NULL;
        if (!copy) return CT_ERR_NOMEM;
        /* Empty entries ("a::b") are skipped: they must not mean ".". */
        for (char *d = strtok_r(copy, ":", &save); d && !st; d = strtok_r(NULL, ":", &save))
            st = add_dir(set, d);
        free(copy);
    }
    if (!o->no_default_dirs && !st) {
        /* One or the other: a program in its build tree must not pick up
         * plugins of an older installed copy (duplicates or stale code). */
        bool in_build = running_from_build_tree();
#ifdef CONTRAST_PLUGIN_BUILD_DIR
        if (in_build) st = add_dir(set, CONTRAST_PLUGIN_BUILD_DIR);
#endif
        if (!in_build) {
            char inst[PATH_MAX];
            install_dir(inst, sizeof inst, in_build);
            st = add_dir(set, inst);
        }
    }
    return st;
}

/* ---- checks ------------------------------------------------------------------ */

/* Non-empty reason when path is writable by group or others. */
static bool unsafe(const char *path, const char *what, char *why, size_t n) {
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(why, n, "cannot stat %s %.400s: %s", what, path, strerror(errno));
        return true;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(why, n,
                 "%s %.300s is writable by %s (mode %04o): refused, another user could replace the "
                 "code (use --allow-unsafe-plugins to accept)",
                 what, path, (st.st_mode & S_IWOTH) ? "others" : "group",
                 (unsigned)(st.st_mode & 07777));
        return true;
    }
    return false;
}

/* Non-empty reason when the code a plugin path resolves to could be
 * replaced by another user: the real file (a symlink in a safe folder may
 * point anywhere), its folder, or a folder above it writable by group or
 * others. Above the file's own folder a sticky one (/tmp) is accepted:
 * others cannot rename entries there that they do not own. */
static bool unsafe_file(const char *path, char *why, size_t n) {
    char real[PATH_MAX], dir[PATH_MAX], inner[CT_ERROR_MSG_MAX];
    if (!realpath(path, real)) {
        snprintf(why, n, "cannot resolve %.400s: %s", path, strerror(errno));
        return true;
    }
    bool link = strcmp(real, path) != 0;
    if (unsafe(real, "file", inner, sizeof inner)) goto refused;
    snprintf(dir, sizeof dir, "%s", real);
    for (bool parent = true;; parent = false) {
        char *slash = strrchr(dir, '/');
        if (!slash) break;
        slash[slash == dir ? 1 : 0] = '\0'; /* "/a/b" -> "/a"; "/a" -> "/" */
        struct stat st;
        bool sticky_above = !parent && stat(dir, &st) == 0 && (st.st_mode & S_ISVTX);
        if (!sticky_above && unsafe(dir, "directory", inner, sizeof inner)) goto refused;
        if (slash == dir) break;
    }
    return false;
refused:
    if (snprintf(why, n, "%s%s", link ? "its link's target: " : "", inner) >= (int)n) why[n - 1] = '\0';
    return true;
}

static bool name_ok(const char *name) {
    if (!name || !*name || strlen(name) >= 64) return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
    return true;
}

static ct_status refuse(ct_plugin_record *rec, ct_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static ct_status refuse(ct_plugin_record *rec, ct_status code, const char *fmt, ...) {
    char msg[CT_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rec->status = code;
    snprintf(rec->reason, sizeof rec->reason, "%s", msg);
    return code;
}

/* The descriptor's fixed checks, in the order a reader would ask them. */
static ct_status check_desc(ct_plugin_record *rec, const ct_plugin_desc *d) {
    if (d->abi_major != CT_ABI_MAJOR)
        return refuse(rec, CT_ERR_ABI,
                      "built for plugin ABI %u.%u, this host is %d.%d: the major version differs "
                      "(rebuild the plugin against this SDK)",
                      d->abi_major, d->abi_minor, CT_ABI_MAJOR, CT_ABI_MINOR);
    if (d->abi_minor > CT_ABI_MINOR)
        return refuse(rec, CT_ERR_ABI,
                      "built for plugin ABI %u.%u, newer than this host's %d.%d (upgrade contrast "
                      "or rebuild the plugin)",
                      d->abi_major, d->abi_minor, CT_ABI_MAJOR, CT_ABI_MINOR);
    if (d->struct_size < END_OF(ct_plugin_desc, fini) || d->struct_size > sizeof(ct_plugin_desc))
        return refuse(rec, CT_ERR_ABI,
                      "descriptor is %u bytes, this host (ABI %d.%d) expects %zu..%zu",
                      d->struct_size, CT_ABI_MAJOR, CT_ABI_MINOR, END_OF(ct_plugin_desc, fini),
                      sizeof(ct_plugin_desc));
    if (!d->build_tag || strcmp(d->build_tag, CT_BUILD_TAG) != 0)
        return refuse(rec, CT_ERR_ABI, "build tag '%s' differs from this host's '%s'",
                      d->build_tag ? d->build_tag : "(none)", CT_BUILD_TAG);
    if (!name_ok(d->name))
        return refuse(rec, CT_ERR_PLUGIN, "bad plugin name '%s' (use [a-z0-9_], under 64 chars)",
                      d->name ? d->name : "(null)");
    if (d->roles & ~CT_ROLE_ALL)
        return refuse(rec, CT_ERR_PLUGIN, "declares unknown roles 0x%x (this host knows 0x%x)",
                      d->roles & ~CT_ROLE_ALL, CT_ROLE_ALL);
    if (!d->roles) return refuse(rec, CT_ERR_PLUGIN, "declares no role");
    if (!d->init) return refuse(rec, CT_ERR_PLUGIN, "has no init function");
    return CT_OK;
}

static void copy_desc(ct_plugin_record *rec, const ct_plugin_desc *d) {
    snprintf(rec->name, sizeof rec->name, "%s", d->name ? d->name : "");
    snprintf(rec->version, sizeof rec->version, "%s", d->version ? d->version : "?");
    snprintf(rec->license, sizeof rec->license, "%s", d->license ? d->license : "?");
    snprintf(rec->description, sizeof rec->description, "%s", d->description ? d->description : "");
    rec->abi_major = d->abi_major;
    rec->abi_minor = d->abi_minor;
    rec->roles = d->roles;
}

/* ---- loading one file --------------------------------------------------------- */

static const ct_plugin_record *loaded_named(const ct_plugin_set *set, const char *name) {
    for (int k = 0; k < set->n; k++)
        if (set->items[k]->loaded && strcmp(set->items[k]->name, name) == 0) return set->items[k];
    return NULL;
}

/* init() and what it registered. On failure the registrations are undone. */
static ct_status run_init(ct_plugin_set *set, ct_plugin_record *rec) {
    size_t mark = ct_registry_count(set->reg);
    ct_registry_begin(set->reg, rec->name, rec->path, &rec->host);
    ct_error e = CT_ERROR_INIT;
    ct_status st = rec->desc->init(set->reg, &rec->host, &e);
    const char *first = NULL;
    int refused = ct_registry_errors(set->reg, &first);
    if (refused) {
        st = refuse(rec, CT_ERR_PLUGIN, "registration refused: %s", first);
    } else if (st) {
        refuse(rec, st, "init failed: %s", e.msg[0] ? e.msg : ct_status_str(st));
    } else if (ct_registry_count(set->reg) == mark) {
        st = refuse(rec, CT_ERR_PLUGIN, "init registered nothing");
    }
    for (size_t k = mark; !st && k < ct_registry_count(set->reg); k++) {
        const ct_registry_entry *en = ct_registry_at(set->reg, k);
        if (!(rec->roles & en->role))
            st = refuse(rec, CT_ERR_PLUGIN, "registers %s '%s' but declares no %s role",
                        ct_role_name(en->role), en->name, ct_role_name(en->role));
    }
    if (st) ct_registry_rollback(set->reg, mark);
    return st;
}

/* dlopen, descriptor checks, init. `stage` (may be NULL) is told the step
 * about to run, so the probe can say where a crash happened. */
static ct_status load_file(ct_plugin_set *set, ct_plugin_record *rec, const ct_host *tmpl,
                           void (*stage)(const char *what)) {
    if (stage) stage("dlopen");
    dlerror();
    rec->handle = dlopen(rec->path, RTLD_NOW | RTLD_LOCAL);
    if (!rec->handle) {
        const char *why = dlerror();
        return refuse(rec, CT_ERR_PLUGIN, "not a loadable shared object: %s", why ? why : "?");
    }
    ct_plugin_entry_fn entry = NULL;
    void *sym = dlsym(rec->handle, CT_PLUGIN_ENTRY_SYMBOL);
    memcpy(&entry, &sym, sizeof entry); /* object to function pointer, portably */
    ct_status st = CT_OK;
    if (!entry) {
        st = refuse(rec, CT_ERR_PLUGIN,
                    "not a contrast plugin: no entry symbol %s (define it with CT_PLUGIN_DEFINE)",
                    CT_PLUGIN_ENTRY_SYMBOL);
    } else {
        if (stage) stage("descriptor");
        rec->desc = entry();
        if (!rec->desc) st = refuse(rec, CT_ERR_PLUGIN, "entry symbol returned no descriptor");
    }
    if (!st) {
        /* Only the first three fields are trusted before the checks. */
        if (rec->desc->struct_size >= END_OF(ct_plugin_desc, fini)) copy_desc(rec, rec->desc);
        rec->abi_major = rec->desc->abi_major;
        rec->abi_minor = rec->desc->abi_minor;
        st = check_desc(rec, rec->desc);
    }
    const ct_plugin_record *dup = st ? NULL : loaded_named(set, rec->name);
    if (dup)
        st = refuse(rec, CT_ERR_EXISTS, "duplicate plugin name '%s': already loaded from %s",
                    rec->name, dup->path);
    if (!st) {
        rec->host = *tmpl;
        rec->host.host_ctx = rec;
        if (stage) stage("init");
        st = run_init(set, rec);
    }
    if (st) {
        dlclose(rec->handle);
        rec->handle = NULL;
        rec->desc = NULL;
        return st;
    }
    rec->loaded = true;
    rec->status = CT_OK;
    return CT_OK;
}

/* ---- the crash probe ------------------------------------------------------------ */

typedef struct probe_msg {
    int final; /* 0: a stage note, 1: the result */
    int status;
    char text[CT_ERROR_MSG_MAX];
} probe_msg;

static int probe_fd = -1;

static void probe_stage(const char *what) {
    probe_msg m = {0, 0, {0}};
    snprintf(m.text, sizeof m.text, "%s", what);
    if (write(probe_fd, &m, sizeof m) != (ssize_t)sizeof m) _exit(3);
}

/* The child: a full load into a throwaway registry, then report. */
static void probe_child(const char *path, const ct_host *tmpl) {
    ct_plugin_set local = {0};
    ct_plugin_record rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.path, sizeof rec.path, "%s", path);
    local.reg = ct_registry_new();
    probe_msg m = {1, CT_ERR_NOMEM, "out of memory"};
    if (local.reg) {
        ct_status st = load_file(&local, &rec, tmpl, probe_stage);
        m.status = st;
        snprintf(m.text, sizeof m.text, "%s", st ? rec.reason : "ok");
    }
    if (write(probe_fd, &m, sizeof m) != (ssize_t)sizeof m) _exit(3);
    _exit(0); /* no atexit handlers, no plugin destructors of the parent's */
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read the child's messages until EOF or timeout; the last stage and the
 * result (if any) land in *stage and *result. Returns 1 when timed out. */
static int probe_read(int fd, probe_msg *stage, probe_msg *result, int *have_result) {
    long long deadline = now_ms() + PROBE_TIMEOUT_MS;
    size_t got = 0;
    probe_msg m;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) return 1;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r == 0;
        ssize_t n = read(fd, (char *)&m + got, sizeof m - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        got += (size_t)n;
        if (got < sizeof m) continue;
        got = 0;
        if (m.final) *result = m, *have_result = 1;
        else *stage = m;
    }
}

/* Probe `rec` in a child. CT_OK: safe to load here; else rec is refused. */
static ct_status probe(ct_plugin_record *rec, const ct_host *tmpl) {
    int fds[2];
    if (pipe(fds) != 0) return refuse(rec, CT_ERR_IO, "cannot probe: pipe: %s", strerror(errno));
    fflush(NULL); /* do not let the child repeat buffered output */
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]);
        return refuse(rec, CT_ERR_IO, "cannot probe: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        probe_fd = fds[1];
        probe_child(rec->path, tmpl);
    }
    close(fds[1]);
    probe_msg stage = {0, 0, "start"}, result = {0, 0, {0}};
    int have = 0;
    int timed_out = probe_read(fds[0], &stage, &result, &have);
    close(fds[0]);
    if (timed_out) kill(pid, SIGKILL);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    if (timed_out)
        return refuse(rec, CT_ERR_PLUGIN, "hung in %s for over %d s (probe killed)", stage.text,
                      PROBE_TIMEOUT_MS / 1000);
    if (have) {
        if (result.status == CT_OK) return CT_OK;
        return refuse(rec, (ct_status)result.status, "%s", result.text);
    }
    if (WIFSIGNALED(ws))
        return refuse(rec, CT_ERR_PLUGIN, "crashed in %s (signal %d, %s); not loaded", stage.text,
                      WTERMSIG(ws), strsignal(WTERMSIG(ws)));
    /* A sanitizer's crash handler turns the signal into an exit status. */
    return refuse(rec, CT_ERR_PLUGIN,
                  "crashed in %s (the probe exited with status %d without reporting); not loaded",
                  stage.text, WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
}

/* ---- the scan --------------------------------------------------------------------- */

static int so_filter(const struct dirent *d) {
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 3 && strcmp(d->d_name + n - 3, ".so") == 0;
}

static ct_status push_record(ct_plugin_set *set, ct_plugin_record **out) {
    ct_plugin_record **items = realloc(set->items, (size_t)(set->n + 1) * sizeof *items);
    if (!items) return CT_ERR_NOMEM;
    set->items = items;
    ct_plugin_record *rec = calloc(1, sizeof *rec);
    if (!rec) return CT_ERR_NOMEM;
    set->items[set->n++] = rec;
    *out = rec;
    return CT_OK;
}

static ct_status scan_dir(ct_plugin_set *set, const char *dir, const ct_loader_opts *o,
                          const ct_host *tmpl) {
    struct dirent **names = NULL;
    int n = scandir(dir, &names, so_filter, alphasort);
    if (n < 0) return CT_OK; /* unreadable: nothing found there */
    char dir_why[CT_ERROR_MSG_MAX] = "";
    bool dir_unsafe = !o->allow_unsafe && unsafe(dir, "directory", dir_why, sizeof dir_why);
    ct_status st = CT_OK;
    for (int k = 0; k < n; k++) {
        ct_plugin_record *rec = NULL;
        if (!st) st = push_record(set, &rec);
        if (rec) {
            snprintf(rec->path, sizeof rec->path, "%s/%s", dir, names[k]->d_name);
            char why[CT_ERROR_MSG_MAX];
            if (dir_unsafe) refuse(rec, CT_ERR_UNSAFE, "%s", dir_why);
            else if (!o->allow_unsafe && unsafe_file(rec->path, why, sizeof why))
                refuse(rec, CT_ERR_UNSAFE, "%s", why);
            else if (o->no_probe || probe(rec, tmpl) == CT_OK)
                load_file(set, rec, tmpl, NULL);
        }
        free(names[k]);
    }
    free(names);
    return st;
}

ct_status ct_plugins_load(const ct_loader_opts *opts, ct_plugin_set **out, ct_error *err) {
    static const ct_loader_opts none = {0};
    const ct_loader_opts *o = opts ? opts : &none;
    *out = NULL;
    ct_host defaults;
    ct_host_defaults(&defaults);
    const ct_host *tmpl = o->host ? o->host : &defaults;
    ct_plugin_set *set = calloc(1, sizeof *set);
    if (!set || !(set->reg = ct_registry_new())) {
        free(set);
        return ct_error_set(err, CT_ERR_NOMEM, "out of memory loading plugins");
    }
    ct_status st = build_search_path(set, o);
    for (int k = 0; k < set->n_dirs && !st; k++) st = scan_dir(set, set->dirs[k], o, tmpl);
    if (st) {
        ct_plugins_free(set);
        return ct_error_set(err, st, "loading plugins: %s", ct_status_str(st));
    }
    *out = set;
    return CT_OK;
}

void ct_plugins_free(ct_plugin_set *set) {
    if (!set) return;
    /* The registry's entries point into the plugins' memory: free it first. */
    ct_registry_free(set->reg);
    for (int k = set->n - 1; k >= 0; k--) {
        ct_plugin_record *rec = set->items[k];
        if (rec->loaded && rec->desc && rec->desc->fini) rec->desc->fini();
        if (rec->handle) dlclose(rec->handle);
        free(rec);
    }
    for (int k = 0; k < set->n_dirs; k++) free(set->dirs[k]);
    free(set->dirs);
    free(set->items);
    free(set);
}

int ct_plugins_refused(const ct_plugin_set *set) {
    int n = 0;
    for (int k = 0; set && k < set->n; k++) n += !set->items[k]->loaded;
    return n;
}

void ct_plugins_set_host(ct_plugin_set *set, const ct_host *host) {
    for (int k = 0; set && k < set->n; k++) {
        ct_plugin_record *rec = set->items[k];
        if (!rec->loaded) continue;
        rec->host = *host;
        rec->host.host_ctx = rec;
    }
}

const ct_registry_entry *ct_plugins_find(const ct_plugin_set *set, ct_role role,
                                         const char *name) {
    return set ? ct_registry_find(set->reg, role, name) : NULL;
}

const ct_host *ct_plugins_host_for(const ct_plugin_set *set, const ct_registry_entry *e) {
    static ct_host defaults;
    (void)set;
    if (e && e->host) return e->host;
    if (!defaults.size) ct_host_defaults(&defaults);
    return &defaults;
}
