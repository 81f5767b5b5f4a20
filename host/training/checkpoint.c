/* Checkpoints as safetensors files: the writer and training checkpoint
 * save/load/rotation; reading is the SDK's strict reader
 * (sdk/src/safetensors.c). See checkpoint.h for the format. */
#include "training/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "training/sha256.h"

int ct__st_crash_before_rename = 0;

static bool host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* ---- a growable string ---------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = true;
        return;
    }
    sb_putn(b, tmp, (size_t)n);
}

/* A JSON string literal with the escapes JSON requires. */
static void sb_json_string(sbuf *b, const char *s) {
    sb_putn(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            sb_putn(b, e, 2);
        } else if (*p == '\n') {
            sb_putn(b, "\\n", 2);
        } else if (*p == '\t') {
            sb_putn(b, "\\t", 2);
        } else if (*p < 0x20) {
            sb_printf(b, "\\u%04x", *p);
        } else {
            sb_putn(b, (const char *)p, 1);
        }
    }
    sb_putn(b, "\"", 1);
}

/* ---- writer ---------------------------------------------------------------- */

static ct_status write_all(int fd, const void *data, size_t n, const char *path, ct_error *err) {
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return ct_error_set(err, CT_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return CT_OK;
}

static ct_status build_header(const ct_safetensors_tensor *t, size_t n, const ct_st_meta *meta,
                              size_t n_meta, sbuf *b, const char *path, ct_error *err) {
    sb_putn(b, "{", 1);
    bool first = true;
    if (n_meta > 0) {
        sb_putn(b, "\"__metadata__\":{", 16);
        for (size_t i = 0; i < n_meta; i++) {
            if (i) sb_putn(b, ",", 1);
            sb_json_string(b, meta[i].key);
            sb_putn(b, ":", 1);
            sb_json_string(b, meta[i].value ? meta[i].value : "");
        }
        sb_putn(b, "}", 1);
        first = false;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        if (t[i].ndim < 0 || t[i].ndim > CT_SAFETENSORS_MAX_DIMS || numel < 0 ||
            (size_t)numel * ct_safetensors_dtype_size(t[i].dtype) != t[i].nbytes)
            return ct_error_set(err, CT_ERR_INVALID,
                                "%s: tensor '%s': %zu bytes do not match its shape and dtype %s",
                                path, t[i].name, t[i].nbytes, ct_safetensors_dtype_name(t[i].dtype));
        if (!first) sb_putn(b, ",", 1);
        first = false;
        sb_json_string(b, t[i].name);
        sb_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", ct_safetensors_dtype_name(t[i].dtype));
        for (int d = 0; d < t[i].ndim; d++) sb_printf(b, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        sb_printf(b, "],\"data_offsets\":[%zu,%zu]}", off, off + t[i].nbytes);
        off += t[i].nbytes;
    }
    sb_putn(b, "}", 1);
    /* Pad with spaces so the data starts 8-byte aligned (as the reference
     * writer does); spaces are valid trailing JSON whitespace. */
    while (!b->oom && b->len % 8 != 0) sb_putn(b, " ", 1);
    if (b->oom) return ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory building header", path);
    return CT_OK;
}

static void dir_of(const char *path, char *dir, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, n, ".");
    } else if (slash == path) {
        snprintf(dir, n, "/");
    } else {
        snprintf(dir, n, "%.*s", (int)(slash - path), path);
    }
}

/* fsync the directory so the rename itself is durable. */
static ct_status sync_dir(const char *path, ct_error *err) {
    char dir[1024];
    dir_of(path, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return ct_error_set(err, CT_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc != 0 && errno != EINVAL)
        return ct_error_set(err, CT_ERR_IO, "%s: fsync failed: %s", dir, strerror(errno));
    return CT_OK;
}

ct_status ct_safetensors_write(const char *path, const ct_safetensors_tensor *tensors, size_t n,
                               const ct_st_meta *meta, size_t n_meta, ct_error *err) {
    if (!host_is_little_endian())
        return ct_error_set(err, CT_ERR_UNSUPPORTED, "%s: big-endian hosts are not supported", path);
    sbuf hdr = {0};
    ct_status st = build_header(tensors, n, meta, n_meta, &hdr, path, err);
    if (st != CT_OK) {
        free(hdr.s);
        return st;
    }
    char tmp[1100];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        free(hdr.s);
        return ct_error_set(err, CT_ERR_INVALID, "%s: path too long", path);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        free(hdr.s);
        return ct_error_set(err, CT_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hdr.len >> (8 * i));
    st = write_all(fd, len8, 8, tmp, err);
    if (st == CT_OK) st = write_all(fd, hdr.s, hdr.len, tmp, err);
    for (size_t i = 0; st == CT_OK && i < n; i++)
        if (tensors[i].nbytes) st = write_all(fd, tensors[i].data, tensors[i].nbytes, tmp, err);
    free(hdr.s);
    if (st == CT_OK && fsync(fd) != 0)
        st = ct_error_set(err, CT_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && st == CT_OK)
        st = ct_error_set(err, CT_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (st != CT_OK) {
        unlink(tmp);
        return st;
    }
    if (ct__st_crash_before_rename)
        return ct_error_set(err, CT_ERR_INTERRUPTED, "%s: simulated crash before rename", path);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ct_error_set(err, CT_ERR_IO, "%s: rename from %s failed: %s", path, tmp, strerror(e));
    }
    return sync_dir(path, err);
}

/* ---- training checkpoints ------------------------------------------------- */

void ct_checkpoint_state_path(const char *path, char *out, size_t n) {
    size_t len = strlen(path);
    const char *ext = ".safetensors";
    size_t el = strlen(ext);
    if (len >= el && strcmp(path + len - el, ext) == 0)
        snprintf(out, n, "%.*s.state%s", (int)(len - el), path, ext);
    else
        snprintf(out, n, "%s.state", path);
}

static ct_status save_state(const char *path, ct_optim *opt, const ct_train_progress *pr,
                            const char *sha, ct_error *err) {
    size_t numel = 0;
    float *state = ct_optim_state(opt, &numel);
    int64_t steps = ct_optim_steps(opt);
    int64_t progress[3] = {pr->epoch, pr->step, (int64_t)pr->seed};
    ct_safetensors_tensor t[3] = {
        {"optimizer.state", CT_SAFETENSORS_F32, 1, {(int64_t)numel}, state, numel * sizeof(float)},
        {"optimizer.steps", CT_SAFETENSORS_I64, 1, {1}, &steps, sizeof steps},
        {"progress", CT_SAFETENSORS_I64, 1, {3}, progress, sizeof progress},
    };
    ct_st_meta meta[2] = {{"format", "contrast-train-state-1"}, {"config_sha256", sha}};
    return ct_safetensors_write(path, t, 3, meta, 2, err);
}

typedef struct ckpt_entry {
    int64_t step;
    char name[256];
} ckpt_entry;

static int entry_cmp(const void *a, const void *b) {
    const ckpt_entry *x = a, *y = b;
    return (x->step > y->step) - (x->step < y->step);
}

/* Main checkpoint files in dir: "checkpoint-s<digits>.safetensors". */
static ct_status list_checkpoints(const char *dir, ckpt_entry **out, size_t *n, ct_error *err) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return ct_error_set(err, CT_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long long step;
        int used = 0;
        if (sscanf(de->d_name, "checkpoint-s%lld.safetensors%n", &step, &used) != 1 ||
            used != (int)strlen(de->d_name) || strlen(de->d_name) >= sizeof(*out)->name)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            ckpt_entry *ne = realloc(*out, cap * sizeof *ne);
            if (!ne) {
                closedir(d);
                free(*out);
                *out = NULL;
                return ct_error_set(err, CT_ERR_NOMEM, "out of memory listing %s", dir);
            }
            *out = ne;
        }
        (*out)[*n].step = step;
        snprintf((*out)[*n].name, sizeof(*out)->name, "%s", de->d_name);
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(*out, *n, sizeof **out, entry_cmp);
    return CT_OK;
}

static void rotate(const char *dir, int keep) {
    ckpt_entry *e;
    size_t n;
    ct_error ignore = CT_ERROR_INIT;
    if (keep <= 0 || list_checkpoints(dir, &e, &n, &ignore) != CT_OK) return;
    for (size_t i = 0; i + (size_t)keep < n; i++) {
        char p[1400], sp[1500];
        snprintf(p, sizeof p, "%s/%s", dir, e[i].name);
        ct_checkpoint_state_path(p, sp, sizeof sp);
        unlink(sp);
        unlink(p);
    }
    free(e);
}

ct_status ct_checkpoint_latest(const char *run_dir, char *path, size_t n, ct_error *err) {
    ckpt_entry *e;
    size_t cnt;
    ct_status st = list_checkpoints(run_dir, &e, &cnt, err);
    if (st != CT_OK) return st;
    if (cnt == 0) {
        free(e);
        return ct_error_set(err, CT_ERR_NOT_FOUND, "%s: no checkpoint-s*.safetensors files", run_dir);
    }
    snprintf(path, n, "%s/%s", run_dir, e[cnt - 1].name);
    free(e);
    return CT_OK;
}

ct_status ct_checkpoint_save(const char *run_dir, const ct_params *p, ct_optim *opt,
                             const ct_train_progress *pr, const char *config_text, int keep,
                             char *saved, size_t n, ct_error *err) {
    char path[1200], spath[1300], sha[65], epoch[32], step[32];
    snprintf(path, sizeof path, "%s/checkpoint-s%08lld.safetensors", run_dir, (long long)pr->step);
    const char *cfg = config_text ? config_text : "";
    ct_sha256_hex(cfg, strlen(cfg), sha);
    snprintf(epoch, sizeof epoch, "%lld", (long long)pr->epoch);
    snprintf(step, sizeof step, "%lld", (long long)pr->step);
    ct_status st = CT_OK;
    if (opt) {
        ct_checkpoint_state_path(path, spath, sizeof spath);
        st = save_state(spath, opt, pr, sha, err);
        if (st != CT_OK) return st;
    }
    size_t count = ct_params_count(p);
    ct_safetensors_tensor *t = calloc(count ? count : 1, sizeof *t);
    if (!t) return ct_error_set(err, CT_ERR_NOMEM, "out of memory saving %s", path);
    for (size_t i = 0; i < count; i++) {
        const ct_tensor *x = ct_params_at(p, i, &t[i].name, NULL, NULL);
        t[i].dtype = CT_SAFETENSORS_F32;
        t[i].ndim = x->ndim;
        for (int d = 0; d < x->ndim; d++) t[i].shape[d] = x->shape[d];
        t[i].data = x->data;
        t[i].nbytes = (size_t)x->numel * sizeof(float);
    }
    ct_st_meta meta[5] = {{"format", "contrast-checkpoint-1"},
                          {"epoch", epoch},
                          {"step", step},
                          {"config_sha256", sha},
                          {"config", cfg}};
    st = ct_safetensors_write(path, t, count, meta, 5, err);
    free(t);
    if (st != CT_OK) return st;
    if (saved) snprintf(saved, n, "%s", path);
    rotate(run_dir, keep);
    return CT_OK;
}

/* The companion file: exactly optimizer.state (F32), optimizer.steps (one
 * I64) and progress (three I64), written for the same config. */
static ct_status check_state(const ct_safetensors *f, const char *sha, const ct_safetensors_tensor *t[3],
                             ct_error *err) {
    static const char *const known[3] = {"optimizer.state", "optimizer.steps", "progress"};
    const char *path = ct_safetensors_path(f);
    for (size_t i = 0; i < ct_safetensors_count(f); i++) {
        const char *name = ct_safetensors_at(f, i)->name;
        if (strcmp(name, known[0]) && strcmp(name, known[1]) && strcmp(name, known[2]))
            return ct_error_set(err, CT_ERR_FORMAT, "%s: unknown tensor '%s'", path, name);
    }
    const char *fsha = ct_safetensors_meta(f, "config_sha256");
    if (sha && (!fsha || strcmp(fsha, sha) != 0))
        return ct_error_set(err, CT_ERR_FORMAT, "%s: config_sha256 does not match the checkpoint's", path);
    for (int k = 0; k < 3; k++)
        if (!(t[k] = ct_safetensors_find(f, known[k])))
            return ct_error_set(err, CT_ERR_FORMAT, "%s: missing tensor '%s'", path, known[k]);
    if (t[0]->dtype != CT_SAFETENSORS_F32 || t[1]->dtype != CT_SAFETENSORS_I64 ||
        t[2]->dtype != CT_SAFETENSORS_I64 || t[1]->nbytes != 8 || t[2]->nbytes != 24)
        return ct_error_set(err, CT_ERR_FORMAT, "%s: optimizer/progress tensors have the wrong dtype or size", path);
    return CT_OK;
}

/* Optimizer moments must be finite as the weights must (the SDK's store
 * loading checks those): one NaN there turns the next step's weights NaN. */
static ct_status check_state_finite(const char *path, const ct_safetensors_tensor *t, ct_error *err) {
    size_t n = t->nbytes / sizeof(float), bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, (const unsigned char *)t->data + i * sizeof v, sizeof v);
        if (!isfinite(v) && bad++ == 0) first = i;
    }
    if (!bad) return CT_OK;
    return ct_error_set(err, CT_ERR_FORMAT,
                        "%s: tensor '%s' has %zu non-finite value%s of %zu (first at element %zu); "
                        "refusing to resume from it",
                        path, t->name, bad, bad == 1 ? "" : "s", n, first);
}

static ct_status load_state(const char *path, const char *sha, ct_optim *opt, ct_train_progress *pr,
                            ct_error *err) {
    ct_safetensors *f;
    ct_status st = ct_safetensors_open(path, &f, err);
    if (st != CT_OK) return st;
    const ct_safetensors_tensor *t[3];
    size_t numel = 0;
    float *state = opt ? ct_optim_state(opt, &numel) : NULL;
    st = check_state(f, sha, t, err);
    if (st == CT_OK && opt && t[0]->nbytes != numel * sizeof(float))
        st = ct_error_set(err, CT_ERR_SHAPE, "%s: optimizer state has %zu floats, the optimizer %zu (different optimizer?)",
                          path, t[0]->nbytes / sizeof(float), numel);
    if (st == CT_OK && opt) st = check_state_finite(path, t[0], err);
    if (st == CT_OK) {
        int64_t steps, progress[3];
        memcpy(&steps, t[1]->data, 8);
        memcpy(progress, t[2]->data, 24);
        if (opt) {
            if (numel) memcpy(state, t[0]->data, t[0]->nbytes);
            ct_optim_set_steps(opt, steps);
        }
        if (pr) {
            pr->epoch = progress[0];
            pr->step = progress[1];
            pr->seed = (uint64_t)progress[2];
        }
    }
    ct_safetensors_close(f);
    return st;
}

ct_status ct_checkpoint_load(const char *path, ct_params *p, ct_optim *opt,
                             ct_train_progress *pr, ct_error *err) {
    ct_safetensors *f;
    ct_status st = ct_safetensors_open(path, &f, err);
    if (st != CT_OK) return st;
    st = ct_safetensors_load_params_exact(f, p, err);
    char *sha = NULL;
    if (st == CT_OK && (opt || pr)) {
        const char *s = ct_safetensors_meta(f, "config_sha256");
        sha = s ? strdup(s) : NULL;
    }
    ct_safetensors_close(f);
    if (st != CT_OK || !(opt || pr)) return st;
    char spath[1300];
    ct_checkpoint_state_path(path, spath, sizeof spath);
    st = load_state(spath, sha, opt, pr, err);
    free(sha);
    return st;
}

char *ct_checkpoint_meta(const char *path, const char *key, ct_error *err) {
    ct_safetensors *f;
    if (ct_safetensors_open(path, &f, err) != CT_OK) return NULL;
    const char *v = ct_safetensors_meta(f, key);
    char *out = v ? strdup(v) : NULL;
    ct_safetensors_close(f);
    return out;
}
