/* Reading safetensors files (see contrast/safetensors.h): a strict
 * validating parser of the JSON header and loading into a ct_params store.
 * This is the only reader: the host's checkpoint loading uses it too. */
#include "contrast/safetensors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <math.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct ct_safetensors {
    char *path;
    size_t size;        /* of the file */
    void *map;          /* the file mapped read-only (map_size bytes), or NULL */
    size_t map_size;
    unsigned char *buf; /* else the data area read into memory, or NULL */
    size_t n, cap;
    ct_safetensors_tensor *t; /* names malloc'd */
    size_t n_meta, meta_cap;
    char **meta; /* key, value, key, value... */
    bool have_meta;
};

static const struct {
    const char *name;
    size_t size;
} k_dtypes[] = {
    {"F32", 4}, {"F64", 8}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
    {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1},
};
#define N_DTYPES (sizeof k_dtypes / sizeof k_dtypes[0])

const char *ct_safetensors_dtype_name(ct_safetensors_dtype d) {
    return (size_t)d < N_DTYPES ? k_dtypes[d].name : "?";
}

size_t ct_safetensors_dtype_size(ct_safetensors_dtype d) {
    return (size_t)d < N_DTYPES ? k_dtypes[d].size : 0;
}

/* ---- the JSON header --------------------------------------------------------- */

typedef struct json {
    const char *s;
    size_t n, i;
    const char *path;
    ct_error *err;
    bool failed;
} json;

static bool fail(json *j, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static bool fail(json *j, const char *fmt, ...) {
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

static void skip_ws(json *j) {
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' ||
                           j->s[j->i] == '\r'))
        j->i++;
}

/* True and consumes c when the next non-space character is c. */
static bool accept(json *j, char c) {
    skip_ws(j);
    if (j->i < j->n && j->s[j->i] == c) return ++j->i, true;
    return false;
}

static bool expect(json *j, char c) {
    skip_ws(j);
    if (j->i >= j->n) return fail(j, "expected '%c', found end of header", c);
    if (j->s[j->i] != c) return fail(j, "expected '%c', found '%c'", c, j->s[j->i]);
    j->i++;
    return true;
}

static bool hex4(json *j, unsigned *v) {
    if (j->i + 4 > j->n) return fail(j, "truncated \\u escape");
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char h = j->s[j->i + k];
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0) return fail(j, "bad \\u escape");
        *v = *v * 16 + (unsigned)d;
    }
    j->i += 4;
    return true;
}

/* The UTF-8 encoding of a code point into o; its length. */
static size_t utf8(unsigned cp, char *o) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xc0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* After "\u": one code point, joining a surrogate pair; 0 on error. */
static unsigned code_point(json *j) {
    unsigned cp, lo;
    if (!hex4(j, &cp)) return 0;
    if (cp >= 0xdc00 && cp < 0xe000) return fail(j, "unpaired surrogate"), 0;
    if (cp >= 0xd800 && cp < 0xdc00) {
        if (j->i + 2 > j->n || j->s[j->i] != '\\' || j->s[j->i + 1] != 'u')
            return fail(j, "unpaired surrogate"), 0;
        j->i += 2;
        if (!hex4(j, &lo)) return 0;
        if (lo < 0xdc00 || lo >= 0xe000) return fail(j, "bad surrogate pair"), 0;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (cp == 0) fail(j, "NUL character in string");
    return cp;
}

/* The length of the string literal starting at j->i (after its quote), up
 * to the closing quote or the end of the header. */
static size_t literal_length(const json *j) {
    size_t k = j->i;
    while (k < j->n && j->s[k] != '"') k += j->s[k] == '\\' ? 2 : 1;
    return (k < j->n ? k : j->n) - j->i;
}

/* A string literal, decoded into a malloc'd string (NULL on error). The
 * decoded text is never longer than the literal (an escape of 6 or 12
 * characters decodes to at most 3 or 4 bytes), so one allocation of the
 * literal's length does (not of the rest of the header: many short
 * strings in a long header stay linear). */
static char *string(json *j) {
    if (!expect(j, '"')) return NULL;
    char *out = malloc(literal_length(j) + 1);
    size_t o = 0;
    if (!out) return fail(j, "out of memory"), NULL;
    while (j->i < j->n) {
        unsigned char c = (unsigned char)j->s[j->i++];
        if (c == '"') return out[o] = '\0', out;
        if (c < 0x20) return free(out), fail(j, "control character in string"), NULL;
        if (c != '\\') {
            out[o++] = (char)c;
            continue;
        }
        if (j->i >= j->n) break;
        char e = j->s[j->i++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *hit = e ? strchr(from, e) : NULL;
        if (hit) {
            out[o++] = to[hit - from];
        } else if (e == 'u') {
            unsigned cp = code_point(j);
            if (!cp) return free(out), NULL;
            o += utf8(cp, out + o);
        } else {
            return free(out), fail(j, "bad escape '\\%c'", e), NULL;
        }
    }
    free(out);
    fail(j, "unterminated string");
    return NULL;
}

/* A non-negative integer: no sign, fraction or exponent. */
static bool uint_value(json *j, uint64_t *v) {
    skip_ws(j);
    if (j->i >= j->n || j->s[j->i] < '0' || j->s[j->i] > '9')
        return fail(j, "expected an unsigned, non-negative integer");
    uint64_t x = 0;
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9') {
        unsigned d = (unsigned)(j->s[j->i++] - '0');
        if (x > (UINT64_MAX - d) / 10) return fail(j, "integer too large");
        x = x * 10 + d;
    }
    if (j->i < j->n && (j->s[j->i] == '.' || j->s[j->i] == 'e' || j->s[j->i] == 'E'))
        return fail(j, "expected an integer, found a fraction");
    *v = x;
    return true;
}

/* [u, u, ...] into v (at most max); the count in *n. */
static bool uint_list(json *j, uint64_t *v, int max, int *n) {
    *n = 0;
    if (!expect(j, '[')) return false;
    if (accept(j, ']')) return true;
    do {
        if (*n >= max) return fail(j, "list longer than %d", max);
        if (!uint_value(j, &v[(*n)++])) return false;
    } while (accept(j, ','));
    return expect(j, ']');
}

static bool push_meta(ct_safetensors *f, char *k, char *v) {
    if (f->n_meta * 2 + 2 > f->meta_cap) {
        size_t cap = f->meta_cap ? f->meta_cap * 2 : 16;
        char **m = realloc(f->meta, cap * sizeof *m);
        if (!m) return false;
        f->meta = m;
        f->meta_cap = cap;
    }
    f->meta[2 * f->n_meta] = k;
    f->meta[2 * f->n_meta + 1] = v;
    f->n_meta++;
    return true;
}

/* {"key": "value", ...}: string values only, as the format requires. */
static bool metadata(json *j, ct_safetensors *f) {
    if (f->have_meta) return fail(j, "duplicate __metadata__");
    f->have_meta = true;
    if (!expect(j, '{')) return false;
    if (accept(j, '}')) return true;
    do {
        char *k = string(j);
        char *v = k && expect(j, ':') ? string(j) : NULL;
        if (!v || !push_meta(f, k, v)) {
            free(k);
            free(v);
            return fail(j, "bad __metadata__ entry (string keys and values only)");
        }
    } while (accept(j, ','));
    return expect(j, '}');
}

static bool dtype_value(json *j, ct_safetensors_tensor *t) {
    char *d = string(j);
    if (!d) return false;
    size_t i = 0;
    while (i < N_DTYPES && strcmp(d, k_dtypes[i].name)) i++;
    if (i == N_DTYPES) fail(j, "tensor '%s': unknown dtype \"%s\"", t->name, d);
    t->dtype = (ct_safetensors_dtype)i;
    free(d);
    return i < N_DTYPES;
}

/* {"dtype": "F32", "shape": [..], "data_offsets": [b, e]} */
static bool tensor_entry(json *j, ct_safetensors_tensor *t, uint64_t off[2]) {
    bool dtype = false, shape = false, offsets = false;
    if (!expect(j, '{')) return false;
    do {
        char *k = string(j);
        bool ok = k && expect(j, ':');
        if (ok && !strcmp(k, "dtype") && !dtype) {
            ok = dtype = dtype_value(j, t);
        } else if (ok && !strcmp(k, "shape") && !shape) {
            uint64_t s[CT_SAFETENSORS_MAX_DIMS] = {0};
            ok = shape = uint_list(j, s, CT_SAFETENSORS_MAX_DIMS, &t->ndim);
            for (int d = 0; ok && d < t->ndim; d++) {
                if (s[d] > ((uint64_t)1 << 40)) ok = fail(j, "tensor '%s': dimension too large", t->name);
                t->shape[d] = (int64_t)s[d];
            }
        } else if (ok && !strcmp(k, "data_offsets") && !offsets) {
            int n = 0;
            ok = offsets = uint_list(j, off, 2, &n) &&
                           (n == 2 || fail(j, "tensor '%s': data_offsets needs 2 numbers", t->name));
        } else if (ok) {
            ok = fail(j, "tensor '%s': unexpected or repeated key \"%s\"", t->name, k);
        }
        free(k);
        if (!ok) return false;
    } while (accept(j, ','));
    if (!expect(j, '}')) return false;
    if (!dtype || !shape || !offsets)
        return fail(j, "tensor '%s': missing %s", t->name, !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    return true;
}

/* ---- layout checks -------------------------------------------------------------- */

typedef struct span {
    uint64_t b, e;
    size_t idx;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->b < y->b ? -1 : x->b > y->b ? 1 : (x->e < y->e ? -1 : x->e > y->e);
}

/* One tensor's span against its shape and the data area. */
static ct_status check_span(const ct_safetensors *f, const ct_safetensors_tensor *t, const span *s,
                            size_t size, ct_error *err) {
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
    unsigned long long b = s->b, e = s->e, need = numel * ct_safetensors_dtype_size(t->dtype);
    if (e < b)
        return ct_error_set(err, CT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before begin",
                            f->path, t->name, b, e);
    if (e > size)
        return ct_error_set(err, CT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] outside the file's %zu data bytes",
                            f->path, t->name, b, e, size);
    if (need != e - b)
        return ct_error_set(err, CT_ERR_FORMAT, "%s: tensor '%s': its shape needs %llu bytes of %s but data_offsets span %llu",
                            f->path, t->name, need, ct_safetensors_dtype_name(t->dtype), e - b);
    return CT_OK;
}

/* Spans inside the data area of `size` bytes, matching the shapes and
 * tiling the area exactly (no gaps, no overlaps). Only the header and the
 * file's size are needed: nothing of the data is read yet. */
static ct_status check_layout(ct_safetensors *f, span *sp, size_t size, ct_error *err) {
    for (size_t i = 0; i < f->n; i++) {
        ct_status st = check_span(f, &f->t[i], &sp[i], size, err);
        if (st != CT_OK) return st;
        f->t[i].nbytes = (size_t)(sp[i].e - sp[i].b);
        sp[i].idx = i;
    }
    if (f->n > 1) qsort(sp, f->n, sizeof *sp, span_cmp);
    uint64_t at = 0;
    for (size_t i = 0; i < f->n; i++) {
        const char *name = f->t[sp[i].idx].name;
        if (sp[i].b < at)
            return ct_error_set(err, CT_ERR_FORMAT, "%s: tensor '%s' overlaps the previous tensor's data", f->path, name);
        if (sp[i].b > at)
            return ct_error_set(err, CT_ERR_FORMAT, "%s: %llu unused bytes before tensor '%s'", f->path,
                                (unsigned long long)(sp[i].b - at), name);
        at = sp[i].e;
    }
    if (at != size)
        return ct_error_set(err, CT_ERR_FORMAT, "%s: data area is %zu bytes but tensors cover %llu", f->path,
                            size, (unsigned long long)at);
    return CT_OK;
}

/* A new tensor slot named key (owned by f from here: freed by close). */
static ct_safetensors_tensor *add_tensor(ct_safetensors *f, char *key, span **spans, ct_error *err) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        ct_safetensors_tensor *t = realloc(f->t, cap * sizeof *t);
        span *s = realloc(*spans, cap * sizeof *s);
        if (t) f->t = t;
        if (s) *spans = s;
        if (!t || !s) {
            free(key);
            ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory", f->path);
            return NULL;
        }
        f->cap = cap;
    }
    ct_safetensors_tensor *t = &f->t[f->n++];
    memset(t, 0, sizeof *t);
    t->name = key;
    return t;
}

static ct_status parse(ct_safetensors *f, const char *hdr, size_t hlen, span **spans, ct_error *err) {
    json j = {hdr, hlen, 0, f->path, err, false};
    if (!expect(&j, '{')) return CT_ERR_FORMAT;
    if (!accept(&j, '}')) {
        do {
            char *key = string(&j);
            if (!key || !expect(&j, ':')) return free(key), CT_ERR_FORMAT;
            if (!strcmp(key, "__metadata__")) {
                free(key);
                if (!metadata(&j, f)) return CT_ERR_FORMAT;
                continue;
            }
            if (ct_safetensors_find(f, key)) {
                fail(&j, "duplicate tensor name '%s'", key);
                return free(key), CT_ERR_FORMAT;
            }
            ct_safetensors_tensor *t = add_tensor(f, key, spans, err);
            if (!t) return CT_ERR_NOMEM;
            uint64_t off[2] = {0, 0};
            if (!tensor_entry(&j, t, off)) return CT_ERR_FORMAT;
            (*spans)[f->n - 1].b = off[0];
            (*spans)[f->n - 1].e = off[1];
        } while (accept(&j, ','));
        if (!expect(&j, '}')) return CT_ERR_FORMAT;
    }
    skip_ws(&j);
    if (j.i != j.n) return fail(&j, "trailing characters after the header object"), CT_ERR_FORMAT;
    return CT_OK;
}

/* ---- files -------------------------------------------------------------------------- */

/* Exactly n bytes at offset off of fd. */
static ct_status read_at(const ct_safetensors *f, int fd, void *dst, size_t n, uint64_t off,
                         const char *what, ct_error *err) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (unsigned char *)dst + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return ct_error_set(err, CT_ERR_IO, "%s: cannot read the %s: %s", f->path, what, strerror(errno));
        if (r == 0)
            return ct_error_set(err, CT_ERR_IO, "%s: short read of the %s (%zu of %zu bytes: the file shrank?)",
                                f->path, what, got, n);
        got += (size_t)r;
    }
    return CT_OK;
}

/* The header length from the first 8 bytes; an error unless it is at least
 * "{}", under the limit and within the file. */
static ct_status header_length(const ct_safetensors *f, int fd, uint64_t *hlen, ct_error *err) {
    if (f->size < 8)
        return ct_error_set(err, CT_ERR_FORMAT, "%s: %zu bytes: too short for a safetensors header length",
                            f->path, f->size);
    unsigned char len8[8];
    ct_status st = read_at(f, fd, len8, 8, 0, "header length", err);
    if (st != CT_OK) return st;
    *hlen = 0;
    for (int i = 7; i >= 0; i--) *hlen = *hlen << 8 | len8[i];
    if (*hlen < 2 || *hlen > CT_SAFETENSORS_MAX_HEADER || *hlen > f->size - 8)
        return ct_error_set(err, CT_ERR_FORMAT,
                            "%s: header length %llu is invalid (file has %zu bytes after the length; limit %u)",
                            f->path, (unsigned long long)*hlen, f->size - 8, CT_SAFETENSORS_MAX_HEADER);
    return CT_OK;
}

/* The data area (`size` bytes from `off`), once the header has been
 * checked against the file: mapped, so that only the tensors a caller
 * copies are ever paged in (a wrong multi-gigabyte file is refused by the
 * store check without being read), or read when the file cannot be mapped. */
static ct_status map_data(ct_safetensors *f, int fd, uint64_t off, size_t size, const unsigned char **data,
                          ct_error *err) {
    *data = NULL;
    if (size == 0) return CT_OK;
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
        f->map = m;
        f->map_size = f->size;
        *data = (const unsigned char *)m + off;
        return CT_OK;
    }
    if (!(f->buf = malloc(size))) return ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory for %zu bytes", f->path, size);
    *data = f->buf;
    return read_at(f, fd, f->buf, size, off, "tensor data", err);
}

/* Header first (length, JSON, layout against the file's size), data after. */
static ct_status open_fd(ct_safetensors *f, int fd, ct_error *err) {
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        return ct_error_set(err, CT_ERR_IO, "%s: not a regular file", f->path);
    f->size = (size_t)sb.st_size;
    uint64_t hlen = 0;
    ct_status st = header_length(f, fd, &hlen, err);
    if (st != CT_OK) return st;
    char *hdr = malloc((size_t)hlen);
    if (!hdr) return ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory for a %llu-byte header", f->path,
                                  (unsigned long long)hlen);
    span *spans = NULL;
    size_t data_size = f->size - 8 - (size_t)hlen;
    st = read_at(f, fd, hdr, (size_t)hlen, 8, "header", err);
    if (st == CT_OK) st = parse(f, hdr, (size_t)hlen, &spans, err);
    free(hdr);
    if (st == CT_OK) st = check_layout(f, spans, data_size, err);
    const unsigned char *data = NULL;
    if (st == CT_OK) st = map_data(f, fd, 8 + hlen, data_size, &data, err);
    for (size_t i = 0; st == CT_OK && data && i < f->n; i++) f->t[spans[i].idx].data = data + spans[i].b;
    free(spans);
    return st;
}

ct_status ct_safetensors_open(const char *path, ct_safetensors **out, ct_error *err) {
    *out = NULL;
    ct_safetensors *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory", path);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ct_status st = fd < 0 ? ct_error_set(err, CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno))
                          : open_fd(f, fd, err);
    if (fd >= 0) close(fd); /* a mapping outlives its descriptor */
    if (st != CT_OK) {
        ct_safetensors_close(f);
        return st;
    }
    *out = f;
    return CT_OK;
}

void ct_safetensors_close(ct_safetensors *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free((char *)f->t[i].name);
    for (size_t i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
    free(f->t);
    free(f->meta);
    if (f->map) munmap(f->map, f->map_size);
    free(f->buf);
    free(f->path);
    free(f);
}

const char *ct_safetensors_path(const ct_safetensors *f) { return f ? f->path : NULL; }

size_t ct_safetensors_count(const ct_safetensors *f) { return f ? f->n : 0; }

const ct_safetensors_tensor *ct_safetensors_at(const ct_safetensors *f, size_t i) {
    return f && i < f->n ? &f->t[i] : NULL;
}

const ct_safetensors_tensor *ct_safetensors_find(const ct_safetensors *f, const char *name) {
    for (size_t i = 0; f && i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

const char *ct_safetensors_meta(const ct_safetensors *f, const char *key) {
    for (size_t i = 0; f && i < f->n_meta; i++)
        if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
    return NULL;
}

size_t ct_safetensors_meta_count(const ct_safetensors *f) { return f ? f->n_meta : 0; }

const char *ct_safetensors_meta_at(const ct_safetensors *f, size_t i, const char **value) {
    if (!f || i >= f->n_meta) return NULL;
    if (value) *value = f->meta[2 * i + 1];
    return f->meta[2 * i];
}

/* ---- loading into a store ------------------------------------------------------- */

/* "[2, 3]" for a file tensor's shape. */
static void shape_text(const ct_safetensors_tensor *t, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < t->ndim && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* Entry dst of the store against its tensor in the file. */
static ct_status check_entry(const ct_safetensors *f, const char *name, const ct_tensor *dst,
                             const ct_safetensors_tensor *src, ct_error *err) {
    if (!src) return ct_error_set(err, CT_ERR_NOT_FOUND, "%s: tensor '%s' is missing", f->path, name);
    if (src->dtype != CT_SAFETENSORS_F32)
        return ct_error_set(err, CT_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected F32", f->path, name,
                            ct_safetensors_dtype_name(src->dtype));
    bool same = src->ndim == dst->ndim;
    for (int d = 0; same && d < dst->ndim; d++) same = src->shape[d] == dst->shape[d];
    if (!same) {
        char have[96], want[96];
        shape_text(src, have, sizeof have);
        return ct_error_set(err, CT_ERR_SHAPE, "%s: tensor '%s' has shape %s but the model wants %s", f->path,
                            name, have, ct_shape_str(dst, want, sizeof want));
    }
    if (!dst->data) return ct_error_set(err, CT_ERR_INVALID, "%s: the store is not finalized", f->path);
    return CT_OK;
}

/* The F32 values of a tensor that are NaN or infinite: their count, the
 * first one's index in *first. The data may be unaligned. */
static size_t count_nonfinite(const ct_safetensors_tensor *t, size_t *first) {
    const unsigned char *p = t->data;
    size_t n = t->nbytes / sizeof(float), bad = 0;
    for (size_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, p + i * sizeof v, sizeof v);
        if (!isfinite(v) && bad++ == 0) *first = i;
    }
    return bad;
}

/* A parameter or buffer must be finite: a NaN or Inf weight makes every
 * number computed from the model meaningless, however plausible. */
static ct_status check_finite(const ct_safetensors *f, const ct_safetensors_tensor *t, ct_error *err) {
    size_t first = 0, bad = count_nonfinite(t, &first);
    if (!bad) return CT_OK;
    float v;
    memcpy(&v, (const unsigned char *)t->data + first * sizeof v, sizeof v);
    return ct_error_set(err, CT_ERR_FORMAT,
                        "%s: tensor '%s' has %zu non-finite value%s of %zu (first: %s at element %zu); "
                        "refusing a model computed from them",
                        f->path, t->name, bad, bad == 1 ? "" : "s", t->nbytes / sizeof(float),
                        isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf", first);
}

/* Check every entry (present, F32, same shape, finite), then (all good)
 * copy: a refused file leaves the store as it was. With exact, a file
 * tensor the store lacks is an error. */
static ct_status load(const ct_safetensors *f, ct_params *store, bool exact, size_t *unused, ct_error *err) {
    size_t count = ct_params_count(store);
    for (size_t i = 0; i < count; i++) {
        const char *name = NULL;
        const ct_tensor *dst = ct_params_at(store, i, &name, NULL, NULL);
        ct_status st = check_entry(f, name, dst, ct_safetensors_find(f, name), err);
        if (st != CT_OK) return st;
    }
    for (size_t i = 0; exact && i < f->n; i++)
        if (!ct_params_find(store, f->t[i].name))
            return ct_error_set(err, CT_ERR_FORMAT, "%s: unknown tensor '%s' (not in the model)", f->path,
                                f->t[i].name);
    /* Values last: the checks above need only the header, this pass reads
     * the data (of the store's tensors only). */
    for (size_t i = 0; i < count; i++) {
        const char *name = NULL;
        ct_params_at(store, i, &name, NULL, NULL);
        ct_status st = check_finite(f, ct_safetensors_find(f, name), err);
        if (st != CT_OK) return st;
    }
    for (size_t i = 0; i < count; i++) {
        const char *name = NULL;
        ct_tensor *dst = ct_params_at(store, i, &name, NULL, NULL);
        const ct_safetensors_tensor *src = ct_safetensors_find(f, name);
        if (src->nbytes) memcpy(dst->data, src->data, src->nbytes);
    }
    if (unused) *unused = f->n - count;
    return CT_OK;
}

ct_status ct_safetensors_load_params(const ct_safetensors *f, ct_params *store, size_t *unused,
                                     ct_error *err) {
    return load(f, store, false, unused, err);
}

ct_status ct_safetensors_load_params_exact(const ct_safetensors *f, ct_params *store, ct_error *err) {
    return load(f, store, true, NULL, err);
}
