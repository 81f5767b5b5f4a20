/* Checkpoints as safetensors files: writer, strict reader, training
 * checkpoint save/load/rotation. See checkpoint.h for the format. */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sha256.h"

int ct__st_crash_before_rename = 0;

static const struct {
    const char *name;
    size_t size;
} k_dtypes[] = {
    {"F32", 4}, {"F64", 8}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
    {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1},
};
#define N_DTYPES (sizeof k_dtypes / sizeof k_dtypes[0])

const char *ct_st_dtype_name(ct_st_dtype d) {
    return (size_t)d < N_DTYPES ? k_dtypes[d].name : "?";
}

size_t ct_st_dtype_size(ct_st_dtype d) { return (size_t)d < N_DTYPES ? k_dtypes[d].size : 0; }

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

static ct_status build_header(const ct_st_tensor *t, size_t n, const ct_st_meta *meta,
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
        if (t[i].ndim < 0 || t[i].ndim > CT_ST_MAX_DIMS || numel < 0 ||
            (size_t)numel * ct_st_dtype_size(t[i].dtype) != t[i].nbytes)
            return ct_error_set(err, CT_ERR_INVALID,
                                "%s: tensor '%s': %zu bytes do not match its shape and dtype %s",
                                path, t[i].name, t[i].nbytes, ct_st_dtype_name(t[i].dtype));
        if (!first) sb_putn(b, ",", 1);
        first = false;
        sb_json_string(b, t[i].name);
        sb_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", ct_st_dtype_name(t[i].dtype));
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

ct_status ct_safetensors_write(const char *path, const ct_st_tensor *tensors, size_t n,
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

/* ---- a small JSON parser for the header ------------------------------------ */

typedef struct jparse {
    const char *s;
    size_t n, i;
    const char *path;
    ct_error *err;
    bool failed;
} jparse;

static bool jfail(jparse *j, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static bool jfail(jparse *j, const char *fmt, ...) {
    if (j->failed) return false;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ct_error_set(j->err, CT_ERR_FORMAT, "%s: bad JSON header at byte %zu: %s", j->path, j->i, msg);
    j->failed = true;
    return false;
}

static void jws(jparse *j) {
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' ||
                           j->s[j->i] == '\r'))
        j->i++;
}

static bool jexpect(jparse *j, char c) {
    jws(j);
    if (j->i >= j->n) return jfail(j, "expected '%c', found end of header", c);
    if (j->s[j->i] != c) return jfail(j, "expected '%c', found '%c'", c, j->s[j->i]);
    j->i++;
    return true;
}

/* True and consumes c when the next non-space char is c. */
static bool jaccept(jparse *j, char c) {
    jws(j);
    if (j->i < j->n && j->s[j->i] == c) {
        j->i++;
        return true;
    }
    return false;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool jhex4(jparse *j, unsigned *v) {
    if (j->i + 4 > j->n) return jfail(j, "truncated \\u escape");
    *v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(j->s[j->i + k]);
        if (h < 0) return jfail(j, "bad \\u escape");
        *v = *v * 16 + (unsigned)h;
    }
    j->i += 4;
    return true;
}

static void put_utf8(sbuf *b, unsigned cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    sb_putn(b, u, n);
}

/* A string literal, decoded; malloc'd, NULL on error. */
static char *jstring(jparse *j) {
    if (!jexpect(j, '"')) return NULL;
    sbuf b = {0};
    sb_putn(&b, "", 0);
    while (true) {
        if (j->i >= j->n) {
            jfail(j, "unterminated string");
            break;
        }
        unsigned char c = (unsigned char)j->s[j->i++];
        if (c == '"') {
            if (b.oom) break;
            return b.s;
        }
        if (c < 0x20) {
            jfail(j, "control character in string");
            break;
        }
        if (c != '\\') {
            sb_putn(&b, (const char *)&c, 1);
            continue;
        }
        if (j->i >= j->n) {
            jfail(j, "unterminated escape");
            break;
        }
        char e = j->s[j->i++];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char out[] = "\"\\/\b\f\n\r\t";
            sb_putn(&b, &out[simple - "\"\\/bfnrt"], 1);
        } else if (e == 'u') {
            unsigned cp;
            if (!jhex4(j, &cp)) break;
            if (cp >= 0xd800 && cp < 0xdc00) {
                unsigned lo;
                if (j->i + 2 > j->n || j->s[j->i] != '\\' || j->s[j->i + 1] != 'u') {
                    jfail(j, "unpaired surrogate");
                    break;
                }
                j->i += 2;
                if (!jhex4(j, &lo)) break;
                if (lo < 0xdc00 || lo >= 0xe000) {
                    jfail(j, "bad surrogate pair");
                    break;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                jfail(j, "unpaired surrogate");
                break;
            }
            if (cp == 0) {
                jfail(j, "NUL character in string");
                break;
            }
            put_utf8(&b, cp);
        } else {
            jfail(j, "bad escape '\\%c'", e);
            break;
        }
    }
    if (b.oom) jfail(j, "out of memory");
    free(b.s);
    return NULL;
}

/* A non-negative integer (no sign, fraction or exponent). */
static bool juint(jparse *j, uint64_t *v) {
    jws(j);
    if (j->i >= j->n || j->s[j->i] < '0' || j->s[j->i] > '9')
        return jfail(j, "expected a non-negative integer");
    uint64_t x = 0;
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9') {
        unsigned d = (unsigned)(j->s[j->i] - '0');
        if (x > (UINT64_MAX - d) / 10) return jfail(j, "integer too large");
        x = x * 10 + d;
        j->i++;
    }
    if (j->i < j->n && (j->s[j->i] == '.' || j->s[j->i] == 'e' || j->s[j->i] == 'E'))
        return jfail(j, "expected an integer, found a fraction");
    *v = x;
    return true;
}

/* [u, u, ...] into v (at most max); count in *n. */
static bool juint_list(jparse *j, uint64_t *v, int max, int *n) {
    if (!jexpect(j, '[')) return false;
    *n = 0;
    if (jaccept(j, ']')) return true;
    do {
        if (*n >= max) return jfail(j, "list longer than %d", max);
        if (!juint(j, &v[(*n)++])) return false;
    } while (jaccept(j, ','));
    return jexpect(j, ']');
}

/* ---- reader ---------------------------------------------------------------- */

void ct_st_file_free(ct_st_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free((char *)f->tensors[i].name);
    for (size_t i = 0; i < f->n_meta; i++) {
        free((char *)f->meta[i].key);
        free((char *)f->meta[i].value);
    }
    free(f->tensors);
    free(f->meta);
    free(f->buf);
    free(f);
}

const ct_st_tensor *ct_st_find(const ct_st_file *f, const char *name) {
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *ct_st_meta_get(const ct_st_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
    return NULL;
}

static ct_status read_file(const char *path, unsigned char **buf, size_t *size, ct_error *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return ct_error_set(err, CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return ct_error_set(err, CT_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    unsigned char *b = malloc(n ? n : 1);
    if (!b) {
        fclose(fp);
        return ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(b, 1, n, fp);
    fclose(fp);
    if (got != n) {
        free(b);
        return ct_error_set(err, CT_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    *buf = b;
    *size = n;
    return CT_OK;
}

static bool grow_tensors(ct_st_file *f, size_t *cap) {
    if (f->n < *cap) return true;
    size_t nc = *cap ? *cap * 2 : 16;
    ct_st_tensor *nt = realloc(f->tensors, nc * sizeof *nt);
    if (!nt) return false;
    f->tensors = nt;
    *cap = nc;
    return true;
}

static bool parse_metadata(jparse *j, ct_st_file *f) {
    if (f->meta) return jfail(j, "duplicate __metadata__");
    if (!jexpect(j, '{')) return false;
    size_t cap = 0;
    if (jaccept(j, '}')) return true;
    do {
        if (f->n_meta == cap) {
            size_t nc = cap ? cap * 2 : 8;
            ct_st_meta *nm = realloc(f->meta, nc * sizeof *nm);
            if (!nm) return jfail(j, "out of memory");
            f->meta = nm;
            cap = nc;
        }
        char *k = jstring(j);
        if (!k) return false;
        if (!jexpect(j, ':')) {
            free(k);
            return false;
        }
        char *v = jstring(j);
        if (!v) {
            free(k);
            return false; /* jstring reported it */
        }
        f->meta[f->n_meta].key = k;
        f->meta[f->n_meta].value = v;
        f->n_meta++;
    } while (jaccept(j, ','));
    return jexpect(j, '}');
}

static bool parse_dtype(jparse *j, ct_st_tensor *t) {
    char *d = jstring(j);
    if (!d) return false;
    for (size_t k = 0; k < N_DTYPES; k++)
        if (strcmp(d, k_dtypes[k].name) == 0) {
            t->dtype = (ct_st_dtype)k;
            free(d);
            return true;
        }
    jfail(j, "tensor '%s': unknown dtype \"%s\"", t->name, d);
    free(d);
    return false;
}

/* {"dtype": .., "shape": [..], "data_offsets": [b, e]}; offsets in off[2]. */
static bool parse_tensor(jparse *j, ct_st_tensor *t, uint64_t off[2]) {
    bool have_dtype = false, have_shape = false, have_off = false;
    if (!jexpect(j, '{')) return false;
    do {
        char *k = jstring(j);
        if (!k) return false;
        bool ok = jexpect(j, ':');
        if (ok && strcmp(k, "dtype") == 0 && !have_dtype) {
            ok = have_dtype = parse_dtype(j, t);
        } else if (ok && strcmp(k, "shape") == 0 && !have_shape) {
            uint64_t s[CT_ST_MAX_DIMS];
            ok = have_shape = juint_list(j, s, CT_ST_MAX_DIMS, &t->ndim);
            for (int d = 0; ok && d < t->ndim; d++) {
                if (s[d] > (uint64_t)1 << 40) ok = jfail(j, "tensor '%s': dimension too large", t->name);
                t->shape[d] = (int64_t)s[d];
            }
        } else if (ok && strcmp(k, "data_offsets") == 0 && !have_off) {
            int n = 0;
            ok = have_off = juint_list(j, off, 2, &n);
            if (ok && n != 2) ok = jfail(j, "tensor '%s': data_offsets needs 2 numbers", t->name);
        } else if (ok) {
            ok = jfail(j, "tensor '%s': unexpected or repeated key \"%s\"", t->name, k);
        }
        free(k);
        if (!ok) return false;
    } while (jaccept(j, ','));
    if (!jexpect(j, '}')) return false;
    if (!have_dtype || !have_shape || !have_off)
        return jfail(j, "tensor '%s': missing %s", t->name,
                     !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    return true;
}

typedef struct span {
    uint64_t b, e;
    size_t idx;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->b < y->b ? -1 : x->b > y->b ? 1 : (x->e < y->e ? -1 : x->e > y->e);
}

/* Shapes against spans, spans inside the data and tiling it exactly. */
static ct_status check_layout(ct_st_file *f, span *sp, size_t data_size, const char *path,
                              ct_error *err) {
    for (size_t i = 0; i < f->n; i++) {
        const ct_st_tensor *t = &f->tensors[i];
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
        if (sp[i].e < sp[i].b)
            return ct_error_set(err, CT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before begin",
                                path, t->name, (unsigned long long)sp[i].b, (unsigned long long)sp[i].e);
        if (sp[i].e > data_size)
            return ct_error_set(err, CT_ERR_FORMAT,
                                "%s: tensor '%s': data_offsets [%llu, %llu] outside the file's %zu data bytes",
                                path, t->name, (unsigned long long)sp[i].b, (unsigned long long)sp[i].e, data_size);
        if (numel * ct_st_dtype_size(t->dtype) != sp[i].e - sp[i].b)
            return ct_error_set(err, CT_ERR_FORMAT,
                                "%s: tensor '%s': shape holds %llu bytes of %s but data_offsets span %llu",
                                path, t->name, (unsigned long long)(numel * ct_st_dtype_size(t->dtype)),
                                ct_st_dtype_name(t->dtype), (unsigned long long)(sp[i].e - sp[i].b));
        sp[i].idx = i;
    }
    qsort(sp, f->n, sizeof *sp, span_cmp);
    uint64_t at = 0;
    for (size_t i = 0; i < f->n; i++) {
        const char *name = f->tensors[sp[i].idx].name;
        if (sp[i].b < at)
            return ct_error_set(err, CT_ERR_FORMAT, "%s: tensor '%s' overlaps the previous tensor's data",
                                path, name);
        if (sp[i].b > at)
            return ct_error_set(err, CT_ERR_FORMAT, "%s: %llu unused bytes before tensor '%s'", path,
                                (unsigned long long)(sp[i].b - at), name);
        at = sp[i].e;
    }
    if (at != data_size)
        return ct_error_set(err, CT_ERR_FORMAT, "%s: data area is %zu bytes but tensors cover %llu",
                            path, data_size, (unsigned long long)at);
    return CT_OK;
}

static bool grow_spans(span **spans, size_t *cap, size_t want) {
    if (*cap >= want) return true;
    span *ns = realloc(*spans, want * sizeof *ns);
    if (!ns) return false;
    *spans = ns;
    *cap = want;
    return true;
}

static ct_status parse_header(ct_st_file *f, const char *hdr, size_t hlen, span **spans,
                              const char *path, ct_error *err) {
    jparse j = {hdr, hlen, 0, path, err, false};
    size_t cap = 0, scap = 0;
    *spans = NULL;
    if (!jexpect(&j, '{')) return CT_ERR_FORMAT;
    if (!jaccept(&j, '}')) {
        do {
            char *key = jstring(&j);
            if (!key || !jexpect(&j, ':')) {
                free(key);
                return CT_ERR_FORMAT;
            }
            if (strcmp(key, "__metadata__") == 0) {
                free(key);
                if (!parse_metadata(&j, f)) return CT_ERR_FORMAT;
                continue;
            }
            if (ct_st_find(f, key)) {
                jfail(&j, "duplicate tensor name '%s'", key);
                free(key);
                return CT_ERR_FORMAT;
            }
            if (!grow_tensors(f, &cap) || !grow_spans(spans, &scap, cap)) {
                free(key);
                return ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory", path);
            }
            ct_st_tensor *t = &f->tensors[f->n];
            memset(t, 0, sizeof *t);
            t->name = key;
            f->n++;
            uint64_t off[2];
            if (!parse_tensor(&j, t, off)) return CT_ERR_FORMAT;
            (*spans)[f->n - 1].b = off[0];
            (*spans)[f->n - 1].e = off[1];
        } while (jaccept(&j, ','));
        if (!jexpect(&j, '}')) return CT_ERR_FORMAT;
    }
    jws(&j);
    if (j.i != j.n) {
        jfail(&j, "trailing characters after the header object");
        return CT_ERR_FORMAT;
    }
    return CT_OK;
}

ct_status ct_safetensors_read(const char *path, ct_st_file **out, ct_error *err) {
    *out = NULL;
    ct_st_file *f = calloc(1, sizeof *f);
    if (!f) return ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory", path);
    ct_status st = read_file(path, &f->buf, &f->size, err);
    if (st != CT_OK) {
        free(f);
        return st;
    }
    span *spans = NULL;
    if (f->size < 8) {
        st = ct_error_set(err, CT_ERR_FORMAT, "%s: %zu bytes: too short for a safetensors header length",
                          path, f->size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)f->buf[i] << (8 * i);
    if (hlen < 2 || hlen > CT_ST_MAX_HEADER || hlen > f->size - 8) {
        st = ct_error_set(err, CT_ERR_FORMAT,
                          "%s: header length %llu is invalid (file has %zu bytes after the length; limit %u)",
                          path, (unsigned long long)hlen, f->size - 8, CT_ST_MAX_HEADER);
        goto fail;
    }
    st = parse_header(f, (const char *)f->buf + 8, (size_t)hlen, &spans, path, err);
    if (st != CT_OK) goto fail;
    size_t data_at = 8 + (size_t)hlen;
    st = check_layout(f, spans, f->size - data_at, path, err);
    if (st != CT_OK) goto fail;
    for (size_t i = 0; i < f->n; i++) {
        size_t idx = spans[i].idx;
        f->tensors[idx].data = f->buf + data_at + spans[i].b;
        f->tensors[idx].nbytes = (size_t)(spans[i].e - spans[i].b);
    }
    free(spans);
    *out = f;
    return CT_OK;
fail:
    free(spans);
    ct_st_file_free(f);
    return st;
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
    ct_st_tensor t[3] = {
        {"optimizer.state", CT_ST_F32, 1, {(int64_t)numel}, state, numel * sizeof(float)},
        {"optimizer.steps", CT_ST_I64, 1, {1}, &steps, sizeof steps},
        {"progress", CT_ST_I64, 1, {3}, progress, sizeof progress},
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
    ct_st_tensor *t = calloc(count ? count : 1, sizeof *t);
    if (!t) return ct_error_set(err, CT_ERR_NOMEM, "out of memory saving %s", path);
    for (size_t i = 0; i < count; i++) {
        const ct_tensor *x = ct_params_at(p, i, &t[i].name, NULL, NULL);
        t[i].dtype = CT_ST_F32;
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

static ct_status load_params(const ct_st_file *f, ct_params *p, const char *path, ct_error *err) {
    size_t count = ct_params_count(p);
    for (size_t i = 0; i < count; i++) {
        const char *name;
        ct_tensor *x = ct_params_at(p, i, &name, NULL, NULL);
        const ct_st_tensor *t = ct_st_find(f, name);
        if (!t) return ct_error_set(err, CT_ERR_FORMAT, "%s: tensor '%s' is missing", path, name);
        if (t->dtype != CT_ST_F32)
            return ct_error_set(err, CT_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected F32", path,
                                name, ct_st_dtype_name(t->dtype));
        bool same = t->ndim == x->ndim;
        for (int d = 0; same && d < x->ndim; d++) same = t->shape[d] == x->shape[d];
        if (!same) {
            char want[96];
            ct_shape_str(x, want, sizeof want);
            return ct_error_set(err, CT_ERR_SHAPE, "%s: tensor '%s' has the wrong shape (model: %s)",
                                path, name, want);
        }
    }
    for (size_t i = 0; i < f->n; i++)
        if (!ct_params_find(p, f->tensors[i].name))
            return ct_error_set(err, CT_ERR_FORMAT, "%s: unknown tensor '%s' (not in the model)", path,
                                f->tensors[i].name);
    for (size_t i = 0; i < count; i++) {
        const char *name;
        ct_tensor *x = ct_params_at(p, i, &name, NULL, NULL);
        const ct_st_tensor *t = ct_st_find(f, name);
        if (t->nbytes) memcpy(x->data, t->data, t->nbytes);
    }
    return CT_OK;
}

static ct_status load_state(const char *path, const char *sha, ct_optim *opt, ct_train_progress *pr,
                            ct_error *err) {
    ct_st_file *f;
    ct_status st = ct_safetensors_read(path, &f, err);
    if (st != CT_OK) return st;
    const char *known[] = {"optimizer.state", "optimizer.steps", "progress"};
    for (size_t i = 0; i < f->n; i++) {
        bool ok = false;
        for (size_t k = 0; k < 3; k++) ok = ok || strcmp(f->tensors[i].name, known[k]) == 0;
        if (!ok) {
            st = ct_error_set(err, CT_ERR_FORMAT, "%s: unknown tensor '%s'", path, f->tensors[i].name);
            goto done;
        }
    }
    const char *fsha = ct_st_meta_get(f, "config_sha256");
    if (sha && (!fsha || strcmp(fsha, sha) != 0)) {
        st = ct_error_set(err, CT_ERR_FORMAT, "%s: config_sha256 does not match the checkpoint's", path);
        goto done;
    }
    const ct_st_tensor *os = ct_st_find(f, "optimizer.state");
    const ct_st_tensor *ostep = ct_st_find(f, "optimizer.steps");
    const ct_st_tensor *prog = ct_st_find(f, "progress");
    size_t numel = 0;
    float *state = opt ? ct_optim_state(opt, &numel) : NULL;
    if (!os || !ostep || !prog) {
        st = ct_error_set(err, CT_ERR_FORMAT, "%s: missing tensor '%s'", path,
                          !os ? "optimizer.state" : !ostep ? "optimizer.steps" : "progress");
    } else if (os->dtype != CT_ST_F32 || ostep->dtype != CT_ST_I64 || prog->dtype != CT_ST_I64 ||
               ostep->nbytes != 8 || prog->nbytes != 24) {
        st = ct_error_set(err, CT_ERR_FORMAT, "%s: optimizer/progress tensors have the wrong dtype or size", path);
    } else if (opt && os->nbytes != numel * sizeof(float)) {
        st = ct_error_set(err, CT_ERR_SHAPE, "%s: optimizer state has %zu floats, the optimizer %zu (different optimizer?)",
                          path, os->nbytes / sizeof(float), numel);
    } else {
        int64_t steps, progress[3];
        memcpy(&steps, ostep->data, 8);
        memcpy(progress, prog->data, 24);
        if (opt) {
            if (numel) memcpy(state, os->data, os->nbytes);
            ct_optim_set_steps(opt, steps);
        }
        if (pr) {
            pr->epoch = progress[0];
            pr->step = progress[1];
            pr->seed = (uint64_t)progress[2];
        }
    }
done:
    ct_st_file_free(f);
    return st;
}

ct_status ct_checkpoint_load(const char *path, ct_params *p, ct_optim *opt,
                             ct_train_progress *pr, ct_error *err) {
    ct_st_file *f;
    ct_status st = ct_safetensors_read(path, &f, err);
    if (st != CT_OK) return st;
    st = load_params(f, p, path, err);
    char *sha = NULL;
    if (st == CT_OK && (opt || pr)) {
        const char *s = ct_st_meta_get(f, "config_sha256");
        sha = s ? strdup(s) : NULL;
    }
    ct_st_file_free(f);
    if (st != CT_OK || !(opt || pr)) return st;
    char spath[1300];
    ct_checkpoint_state_path(path, spath, sizeof spath);
    st = load_state(spath, sha, opt, pr, err);
    free(sha);
    return st;
}

char *ct_checkpoint_meta(const char *path, const char *key, ct_error *err) {
    ct_st_file *f;
    if (ct_safetensors_read(path, &f, err) != CT_OK) return NULL;
    const char *v = ct_st_meta_get(f, key);
    char *out = v ? strdup(v) : NULL;
    ct_st_file_free(f);
    return out;
}
