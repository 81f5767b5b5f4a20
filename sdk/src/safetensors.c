/* Reading safetensors files (see contrast/safetensors.h): a strict
 * validating parser of the JSON header and loading into a ct_params store. */
#include "contrast/safetensors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_HEADER 100000000u /* the reference implementation's limit */

struct ct_safetensors {
    char *path;
    unsigned char *buf; /* the whole file */
    size_t size;
    size_t n, cap;
    ct_safetensors_tensor *t; /* names malloc'd */
    size_t n_meta, meta_cap;
    char **meta; /* key, value, key, value... */
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
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ct_error_set(j->err, CT_ERR_FORMAT, "%s: bad header at byte %zu: %s", j->path, j->i, msg);
    j->failed = true;
    return false;
}

static void skip_ws(json *j) {
    while (j->i < j->n && strchr(" \t\r\n", j->s[j->i]) && j->s[j->i]) j->i++;
}

static bool accept(json *j, char c) {
    skip_ws(j);
    if (j->i < j->n && j->s[j->i] == c) return ++j->i, true;
    return false;
}

static bool expect(json *j, char c) {
    if (accept(j, c)) return true;
    return fail(j, "expected '%c'", c);
}

/* Append the UTF-8 encoding of a BMP code point. */
static size_t utf8(unsigned cp, char *o) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xc0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
    o[0] = (char)(0xe0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

/* A string literal, decoded into a malloc'd string (NULL on error). The
 * decoded text is never longer than the literal, so one allocation does. */
static char *string(json *j) {
    if (!expect(j, '"')) return NULL;
    char *out = malloc(j->n - j->i + 1);
    size_t o = 0;
    if (!out) return fail(j, "out of memory"), NULL;
    while (j->i < j->n) {
        unsigned char c = (unsigned char)j->s[j->i++];
        if (c == '"') return out[o] = '\0', out;
        if (c < 0x20) break;
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
        } else if (e == 'u' && j->i + 4 <= j->n) {
            unsigned cp = 0;
            for (int k = 0; k < 4; k++) {
                char h = j->s[j->i++];
                int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                if (v < 0) return free(out), fail(j, "bad \\u escape"), NULL;
                cp = cp * 16 + (unsigned)v;
            }
            /* Names and metadata written by contrast are ASCII; refuse
             * what would need surrogate pairs or NUL rather than guess. */
            if (cp == 0 || (cp >= 0xd800 && cp < 0xe000))
                return free(out), fail(j, "unsupported \\u%04x escape", cp), NULL;
            o += utf8(cp, out + o);
        } else {
            return free(out), fail(j, "bad escape"), NULL;
        }
    }
    free(out);
    fail(j, "unterminated string or control character");
    return NULL;
}

static bool uint_value(json *j, uint64_t *v) {
    skip_ws(j);
    if (j->i >= j->n || j->s[j->i] < '0' || j->s[j->i] > '9') return fail(j, "expected an unsigned integer");
    uint64_t x = 0;
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9') {
        unsigned d = (unsigned)(j->s[j->i++] - '0');
        if (x > (UINT64_MAX - d) / 10) return fail(j, "integer too large");
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

static bool uint_list(json *j, uint64_t *v, int max, int *n) {
    *n = 0;
    if (!expect(j, '[')) return false;
    if (accept(j, ']')) return true;
    do {
        if (*n >= max) return fail(j, "more than %d numbers", max);
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

static bool metadata(json *j, ct_safetensors *f) {
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

/* {"dtype": "F32", "shape": [..], "data_offsets": [b, e]} */
static bool tensor_entry(json *j, ct_safetensors_tensor *t, uint64_t off[2]) {
    bool dtype = false, shape = false, offsets = false;
    if (!expect(j, '{')) return false;
    do {
        char *k = string(j);
        bool ok = k && expect(j, ':');
        if (ok && !strcmp(k, "dtype") && !dtype) {
            char *d = string(j);
            size_t i = 0;
            while (d && i < N_DTYPES && strcmp(d, k_dtypes[i].name)) i++;
            ok = dtype = d && i < N_DTYPES;
            if (!ok && d) fail(j, "tensor '%s': unknown dtype '%s'", t->name, d);
            t->dtype = (ct_safetensors_dtype)i;
            free(d);
        } else if (ok && !strcmp(k, "shape") && !shape) {
            uint64_t s[CT_SAFETENSORS_MAX_DIMS] = {0};
            ok = shape = uint_list(j, s, CT_SAFETENSORS_MAX_DIMS, &t->ndim);
            for (int d = 0; ok && d < t->ndim; d++) {
                if (s[d] > ((uint64_t)1 << 40)) ok = fail(j, "tensor '%s': dimension too large", t->name);
                t->shape[d] = (int64_t)s[d];
            }
        } else if (ok && !strcmp(k, "data_offsets") && !offsets) {
            int n = 0;
            ok = offsets = uint_list(j, off, 2, &n) && (n == 2 || fail(j, "data_offsets needs 2 numbers"));
        } else if (ok) {
            ok = fail(j, "tensor '%s': unexpected or repeated key '%s'", t->name, k);
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
    return x->b < y->b ? -1 : x->b > y->b;
}

static ct_status check_layout(ct_safetensors *f, span *sp, const unsigned char *data, size_t size,
                              ct_error *err) {
    for (size_t i = 0; i < f->n; i++) {
        ct_safetensors_tensor *t = &f->t[i];
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
        if (sp[i].e < sp[i].b || sp[i].e > size)
            return ct_error_set(err, CT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] outside the %zu data bytes",
                                f->path, t->name, (unsigned long long)sp[i].b, (unsigned long long)sp[i].e, size);
        if (numel * ct_safetensors_dtype_size(t->dtype) != sp[i].e - sp[i].b)
            return ct_error_set(err, CT_ERR_FORMAT, "%s: tensor '%s': its shape needs %llu bytes but data_offsets span %llu",
                                f->path, t->name, (unsigned long long)(numel * ct_safetensors_dtype_size(t->dtype)),
                                (unsigned long long)(sp[i].e - sp[i].b));
        t->data = data + sp[i].b;
        t->nbytes = (size_t)(sp[i].e - sp[i].b);
        sp[i].idx = i;
    }
    if (f->n > 1) qsort(sp, f->n, sizeof *sp, span_cmp);
    uint64_t at = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (sp[i].b != at)
            return ct_error_set(err, CT_ERR_FORMAT, "%s: tensor '%s' %s the previous tensor's data", f->path,
                                f->t[sp[i].idx].name, sp[i].b < at ? "overlaps" : "does not follow");
        at = sp[i].e;
    }
    if (at != size)
        return ct_error_set(err, CT_ERR_FORMAT, "%s: data area is %zu bytes but tensors cover %llu", f->path,
                            size, (unsigned long long)at);
    return CT_OK;
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
                if (f->n_meta || !metadata(&j, f)) return fail(&j, "bad or repeated __metadata__"), CT_ERR_FORMAT;
                continue;
            }
            if (ct_safetensors_find(f, key)) {
                fail(&j, "duplicate tensor name '%s'", key);
                return free(key), CT_ERR_FORMAT;
            }
            if (f->n == f->cap) {
                size_t cap = f->cap ? 2 * f->cap : 64;
                ct_safetensors_tensor *t = realloc(f->t, cap * sizeof *t);
                span *s = realloc(*spans, cap * sizeof *s);
                if (t) f->t = t;
                if (s) *spans = s;
                if (!t || !s) return free(key), ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory", f->path);
                f->cap = cap;
            }
            ct_safetensors_tensor *t = &f->t[f->n];
            memset(t, 0, sizeof *t);
            t->name = key;
            f->n++; /* owned from here: freed by close on any error */
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

static ct_status read_all(ct_safetensors *f, ct_error *err) {
    FILE *fp = fopen(f->path, "rb");
    if (!fp) return ct_error_set(err, CT_ERR_IO, "%s: cannot open: %s", f->path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return ct_error_set(err, CT_ERR_IO, "%s: not a regular file", f->path);
    }
    f->size = (size_t)sb.st_size;
    f->buf = malloc(f->size ? f->size : 1);
    size_t got = f->buf ? fread(f->buf, 1, f->size, fp) : 0;
    fclose(fp);
    if (!f->buf) return ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory for %zu bytes", f->path, f->size);
    if (got != f->size)
        return ct_error_set(err, CT_ERR_IO, "%s: short read (%zu of %zu bytes)", f->path, got, f->size);
    return CT_OK;
}

ct_status ct_safetensors_open(const char *path, ct_safetensors **out, ct_error *err) {
    *out = NULL;
    ct_safetensors *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory", path);
    }
    ct_status st = read_all(f, err);
    uint64_t hlen = 0;
    if (st == CT_OK && f->size < 8)
        st = ct_error_set(err, CT_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors file", path, f->size);
    for (int i = 7; st == CT_OK && i >= 0; i--) hlen = hlen << 8 | f->buf[i];
    if (st == CT_OK && (hlen > MAX_HEADER || hlen > f->size - 8))
        st = ct_error_set(err, CT_ERR_FORMAT, "%s: header length %llu does not fit the file's %zu bytes (limit %u)",
                          path, (unsigned long long)hlen, f->size, MAX_HEADER);
    span *spans = NULL;
    if (st == CT_OK) st = parse(f, (const char *)f->buf + 8, (size_t)hlen, &spans, err);
    if (st == CT_OK) st = check_layout(f, spans, f->buf + 8 + hlen, f->size - 8 - (size_t)hlen, err);
    free(spans);
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
    free(f->buf);
    free(f->path);
    free(f);
}

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

ct_status ct_safetensors_load_params(const ct_safetensors *f, ct_params *store, size_t *unused,
                                     ct_error *err) {
    size_t used = 0;
    for (size_t i = 0; i < ct_params_count(store); i++) {
        const char *name = NULL;
        ct_tensor *dst = ct_params_at(store, i, &name, NULL, NULL);
        const ct_safetensors_tensor *src = ct_safetensors_find(f, name);
        if (!src) return ct_error_set(err, CT_ERR_NOT_FOUND, "%s: no tensor '%s'", f->path, name);
        if (src->dtype != CT_SAFETENSORS_F32)
            return ct_error_set(err, CT_ERR_FORMAT, "%s: tensor '%s' is %s, expected F32", f->path, name,
                                ct_safetensors_dtype_name(src->dtype));
        bool same = src->ndim == dst->ndim;
        for (int d = 0; same && d < dst->ndim; d++) same = src->shape[d] == dst->shape[d];
        if (!same) {
            char want[96];
            return ct_error_set(err, CT_ERR_SHAPE, "%s: tensor '%s' has %d dims of shape %lld... but the model wants %s",
                                f->path, name, src->ndim, src->ndim ? (long long)src->shape[0] : 0LL,
                                ct_shape_str(dst, want, sizeof want));
        }
        if (!dst->data) return ct_error_set(err, CT_ERR_INVALID, "%s: the store is not finalized", f->path);
        memcpy(dst->data, src->data, src->nbytes);
        used++;
    }
    if (unused) *unused = f->n - used;
    return CT_OK;
}
