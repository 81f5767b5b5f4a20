/* Source "idx": IDX files (MNIST, Fashion-MNIST), gzipped or not.
 *
 * The whole file is read into memory as uint8 at create() (Fashion-MNIST
 * training images are 47 MB) and every check happens there: magic, dtype,
 * dimensions, the byte count against the header, labels against images.
 * get() converts one item to floats in [0, 1]; it only reads shared state,
 * so it is thread-safe. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <contrast/contrast.h>

#define IDX_UBYTE 0x08
#define IDX_MAX_BYTES ((uint64_t)1 << 34) /* 16 GiB: beyond this, a corrupt header */

typedef struct idx_source {
    uint8_t *pixels;  /* count * c * h * w */
    uint8_t *labels;  /* count, or NULL */
    int64_t count;
    int c, h, w;
    int num_classes;
    char path[512];
} idx_source;

/* One IDX array as read from a file. */
typedef struct idx_array {
    uint8_t *data;
    int ndims;
    uint32_t dims[4];
    uint64_t bytes;
} idx_array;

static const char *dtype_name(int t) {
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    }
    return "unknown";
}

/* Read exactly n bytes; returns how many were read (less at end of file). */
static uint64_t read_full(gzFile f, uint8_t *dst, uint64_t n) {
    uint64_t got = 0;
    while (got < n) {
        unsigned chunk = (n - got) > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
        int r = gzread(f, dst + got, chunk);
        if (r <= 0) break;
        got += (uint64_t)r;
    }
    return got;
}

/* Parse and validate one IDX file whose dimension count must lie in
 * [min_dims, max_dims]. */
static ct_status idx_read(const char *path, int min_dims, int max_dims, idx_array *out,
                          ct_error *err) {
    memset(out, 0, sizeof *out);
    gzFile f = gzopen(path, "rb");
    if (!f) return ct_error_set(err, CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    gzbuffer(f, 1 << 20);
    ct_status st = CT_OK;
    uint8_t head[4];
    uint64_t got = read_full(f, head, 4);
    if (got == 0) {
        st = ct_error_set(err, CT_ERR_FORMAT, "%s: empty file", path);
    } else if (got < 4 || head[0] != 0 || head[1] != 0) {
        st = ct_error_set(err, CT_ERR_FORMAT,
                          "%s: not an IDX file (bad magic %02x %02x, expected 00 00 <type> <dims>)",
                          path, head[0], got > 1 ? head[1] : 0);
    } else if (head[2] != IDX_UBYTE) {
        st = ct_error_set(err, CT_ERR_FORMAT,
                          "%s: element type 0x%02x (%s) is not supported; only 0x08 (unsigned byte)",
                          path, head[2], dtype_name(head[2]));
    } else if (head[3] < min_dims || head[3] > max_dims) {
        st = ct_error_set(err, CT_ERR_FORMAT, "%s: %d dimensions, expected %d..%d", path, head[3],
                          min_dims, max_dims);
    }
    out->ndims = head[3];
    uint64_t total = 1;
    for (int k = 0; !st && k < out->ndims; k++) {
        uint8_t d[4];
        if (read_full(f, d, 4) < 4) {
            st = ct_error_set(err, CT_ERR_FORMAT, "%s: truncated header (dimension %d missing)", path, k);
            break;
        }
        out->dims[k] = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
        if (out->dims[k] == 0)
            st = ct_error_set(err, CT_ERR_FORMAT, "%s: dimension %d is 0", path, k);
        else if ((total *= out->dims[k]) > IDX_MAX_BYTES)
            st = ct_error_set(err, CT_ERR_FORMAT, "%s: header declares over %llu bytes: corrupted",
                              path, (unsigned long long)IDX_MAX_BYTES);
    }
    if (!st && !(out->data = malloc(total)))
        st = ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory for %llu bytes", path,
                          (unsigned long long)total);
    if (!st) {
        out->bytes = total;
        got = read_full(f, out->data, total);
        uint8_t extra;
        int errnum = Z_OK;
        const char *zmsg = gzerror(f, &errnum);
        if (errnum != Z_OK && errnum != Z_BUF_ERROR)
            st = ct_error_set(err, CT_ERR_FORMAT, "%s: corrupted compressed data: %s", path, zmsg);
        else if (got < total)
            st = ct_error_set(err, CT_ERR_FORMAT,
                              "%s: truncated: the header declares %llu bytes of data, the file has %llu",
                              path, (unsigned long long)total, (unsigned long long)got);
        else if (gzread(f, &extra, 1) > 0)
            st = ct_error_set(err, CT_ERR_FORMAT,
                              "%s: longer than its header declares (%llu bytes of data): corrupted",
                              path, (unsigned long long)total);
    }
    gzclose(f);
    if (st) {
        free(out->data);
        out->data = NULL;
    }
    return st;
}

static const ct_param_spec idx_params[] = {
    CT_PARAM_STRING("images", NULL, "IDX image file (N x rows x cols), .gz or raw"),
    CT_PARAM_STRING("labels", "\"\"", "IDX label file (N), .gz or raw; \"\" for none"),
    CT_PARAM_INT("limit", "0", 0, 2147483647, "use only the first N items (0 = all)"),
    CT_PARAM_END,
};

static void idx_destroy(void *self) {
    idx_source *s = self;
    if (!s) return;
    free(s->pixels);
    free(s->labels);
    free(s);
}

static ct_status load_labels(idx_source *s, const char *path, int64_t n_file, ct_error *err) {
    idx_array a;
    ct_status st = idx_read(path, 1, 1, &a, err);
    if (st) return st;
    if ((int64_t)a.dims[0] != n_file) {
        free(a.data);
        return ct_error_set(err, CT_ERR_FORMAT, "%s: %u labels for %lld images (%s)", path, a.dims[0],
                            (long long)n_file, s->path);
    }
    int max = 0;
    for (int64_t k = 0; k < n_file; k++) /* all of them: classes do not depend on limit */
        if (a.data[k] > max) max = a.data[k];
    s->labels = a.data;
    s->num_classes = max + 1;
    return CT_OK;
}

static ct_status idx_create(const ct_settings *set, const ct_host *host, void **self, ct_error *err) {
    (void)host;
    idx_source *s = calloc(1, sizeof *s);
    if (!s) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    const char *images = ct_settings_string(set, "images");
    const char *labels = ct_settings_string(set, "labels");
    snprintf(s->path, sizeof s->path, "%s", images);
    idx_array a;
    ct_status st = idx_read(images, 3, 4, &a, err);
    if (st) {
        idx_destroy(s);
        return st;
    }
    /* 3 dims: N x rows x cols (one channel); 4 dims: N x C x rows x cols. */
    s->pixels = a.data;
    s->count = a.dims[0];
    s->c = a.ndims == 4 ? (int)a.dims[1] : 1;
    s->h = (int)a.dims[a.ndims - 2];
    s->w = (int)a.dims[a.ndims - 1];
    int64_t n_file = s->count;
    int64_t limit = ct_settings_int(set, "limit");
    if (limit > 0 && limit < s->count) s->count = limit;
    if (labels[0]) st = load_labels(s, labels, n_file, err);
    if (st) {
        idx_destroy(s);
        return st;
    }
    *self = s;
    return CT_OK;
}

static void idx_info(void *self, ct_source_info *info) {
    const idx_source *s = self;
    memset(info, 0, sizeof *info);
    info->count = s->count;
    info->channels = s->c, info->height = s->h, info->width = s->w;
    info->frames = 1;
    info->has_labels = s->labels != NULL;
    info->num_classes = s->labels ? s->num_classes : 0;
    if (s->labels)
        snprintf(info->summary, sizeof info->summary, "%lld images %dx%dx%d, %d classes",
                 (long long)s->count, s->c, s->h, s->w, s->num_classes);
    else
        snprintf(info->summary, sizeof info->summary, "%lld images %dx%dx%d, unlabelled",
                 (long long)s->count, s->c, s->h, s->w);
}

static ct_status idx_get(void *self, int64_t index, ct_image *dst, int32_t *label, ct_error *err) {
    const idx_source *s = self;
    if (index < 0 || index >= s->count)
        return ct_error_set(err, CT_ERR_INVALID, "idx %s: item %lld out of range [0, %lld)", s->path,
                            (long long)index, (long long)s->count);
    ct_status st = ct_image_reshape(dst, 1, s->c, s->h, s->w);
    if (st) return ct_error_set(err, st, "idx: out of memory for an image");
    size_t n = (size_t)s->c * (size_t)s->h * (size_t)s->w;
    const uint8_t *src = s->pixels + (size_t)index * n;
    for (size_t k = 0; k < n; k++) dst->data[k] = (float)src[k] * (1.0f / 255.0f);
    if (label) *label = s->labels ? (int32_t)s->labels[index] : -1;
    return CT_OK;
}

static ct_status idx_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host, (void)err;
    static const ct_source_ops ops = {
        .name = "idx",
        .description = "IDX files (MNIST, Fashion-MNIST), gzipped or raw",
        .params = idx_params,
        .create = idx_create,
        .destroy = idx_destroy,
        .info = idx_info,
        .get = idx_get,
    };
    return ct_register_source(reg, &ops);
}

CT_PLUGIN_DEFINE("idx", "1.0.0", "MIT", "IDX image and label files (gzip or raw)", CT_ROLE_SOURCE,
                 idx_init)
