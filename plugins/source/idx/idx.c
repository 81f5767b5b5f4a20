/* Source "idx": IDX files (MNIST, Fashion-MNIST), gzipped or not.
 *
 * The whole file is read into memory as uint8 at create() (Fashion-MNIST
 * training images are 47 MB) and every check happens there: magic, dtype,
 * dimensions, the byte count against the header, labels against images.
 * The header never decides an allocation by itself: a raw file's declared
 * size is checked against the file's size first, a compressed file's
 * buffer grows with the data really decompressed, and both stop at the
 * max_mb ceiling.
 * get() converts one item to floats in [0, 1]; it only reads shared state,
 * so it is thread-safe. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <contrast/contrast.h>

#define IDX_UBYTE 0x08
#define IDX_MAX_SIDE 65535                /* an image dimension (c, rows, cols) */
#define IDX_FIRST_CHUNK ((uint64_t)1 << 20) /* compressed data: the first buffer, then doubling */

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

/* The magic and the dimensions; *total is their product (the data bytes),
 * refused beyond max_bytes. Nothing is allocated here. */
static ct_status read_header(gzFile f, const char *path, int min_dims, int max_dims,
                             uint64_t max_bytes, idx_array *out, uint64_t *total, ct_error *err) {
    uint8_t head[4];
    uint64_t got = read_full(f, head, 4);
    if (got == 0) return ct_error_set(err, CT_ERR_FORMAT, "%s: empty file", path);
    if (got < 4 || head[0] != 0 || head[1] != 0)
        return ct_error_set(err, CT_ERR_FORMAT,
                            "%s: not an IDX file (bad magic %02x %02x, expected 00 00 <type> <dims>)",
                            path, head[0], got > 1 ? head[1] : 0);
    if (head[2] != IDX_UBYTE)
        return ct_error_set(err, CT_ERR_FORMAT,
                            "%s: element type 0x%02x (%s) is not supported; only 0x08 (unsigned byte)",
                            path, head[2], dtype_name(head[2]));
    if (head[3] < min_dims || head[3] > max_dims)
        return ct_error_set(err, CT_ERR_FORMAT, "%s: %d dimensions, expected %d..%d", path, head[3],
                            min_dims, max_dims);
    out->ndims = head[3];
    *total = 1;
    for (int k = 0; k < out->ndims; k++) {
        uint8_t d[4];
        if (read_full(f, d, 4) < 4)
            return ct_error_set(err, CT_ERR_FORMAT, "%s: truncated header (dimension %d missing)", path, k);
        out->dims[k] = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
        if (out->dims[k] == 0) return ct_error_set(err, CT_ERR_FORMAT, "%s: dimension %d is 0", path, k);
        /* Every dimension but the count is one image's: bounded so that
         * c, h and w fit an int wherever they are used. */
        if (k > 0 && out->dims[k] > IDX_MAX_SIDE)
            return ct_error_set(err, CT_ERR_FORMAT, "%s: dimension %d is %u, over %d: corrupted", path,
                                k, out->dims[k], IDX_MAX_SIDE);
        *total *= out->dims[k]; /* < 2^32 * 2^16 * 2^16 * 2^16: no overflow */
        if (*total > max_bytes)
            return ct_error_set(err, CT_ERR_FORMAT,
                                "%s: the header declares more than max_mb = %llu MB of data "
                                "(corrupted, or raise max_mb)",
                                path, (unsigned long long)(max_bytes >> 20));
    }
    return CT_OK;
}

/* A raw (uncompressed) file must hold exactly the header and the data it
 * declares: checked against the file's size before anything is allocated. */
static ct_status check_raw_size(int fd, const char *path, const idx_array *a, uint64_t total,
                                ct_error *err) {
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) return CT_OK; /* a pipe: the reads decide */
    uint64_t head = 4 + 4 * (uint64_t)a->ndims, size = (uint64_t)sb.st_size;
    uint64_t data = size > head ? size - head : 0;
    if (data < total)
        return ct_error_set(err, CT_ERR_FORMAT,
                            "%s: truncated: the header declares %llu bytes of data, the file has %llu",
                            path, (unsigned long long)total, (unsigned long long)data);
    if (data > total)
        return ct_error_set(err, CT_ERR_FORMAT,
                            "%s: longer than its header declares (%llu bytes of data): corrupted",
                            path, (unsigned long long)total);
    return CT_OK;
}

/* Read the declared `total` data bytes into out->data. The buffer starts
 * at `first` bytes and grows (doubling) with what the stream really
 * yields, so a small compressed file whose header lies allocates at most
 * twice its content. */
static ct_status read_data(gzFile f, const char *path, uint64_t total, uint64_t first, idx_array *out,
                           ct_error *err) {
    uint64_t cap = 0, got = 0;
    for (;;) {
        if (got == cap) {
            if (cap == total) break;
            uint64_t next = cap ? 2 * cap : first;
            if (next > total) next = total;
            uint8_t *d = realloc(out->data, next);
            if (!d)
                return ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory for %llu bytes", path,
                                    (unsigned long long)next);
            out->data = d;
            cap = next;
        }
        uint64_t r = read_full(f, out->data + got, cap - got);
        got += r;
        if (got < cap) break; /* end of the stream, or an error (below) */
    }
    int errnum = Z_OK;
    const char *zmsg = gzerror(f, &errnum);
    uint8_t extra;
    if (errnum != Z_OK && errnum != Z_BUF_ERROR)
        return ct_error_set(err, CT_ERR_FORMAT, "%s: corrupted compressed data: %s", path, zmsg);
    if (got < total)
        return ct_error_set(err, CT_ERR_FORMAT,
                            "%s: truncated: the header declares %llu bytes of data, the file has %llu",
                            path, (unsigned long long)total, (unsigned long long)got);
    if (gzread(f, &extra, 1) > 0)
        return ct_error_set(err, CT_ERR_FORMAT,
                            "%s: longer than its header declares (%llu bytes of data): corrupted",
                            path, (unsigned long long)total);
    out->bytes = total;
    return CT_OK;
}

/* Parse and validate one IDX file whose dimension count must lie in
 * [min_dims, max_dims] and whose data is at most max_bytes. */
static ct_status idx_read(const char *path, int min_dims, int max_dims, uint64_t max_bytes,
                          idx_array *out, ct_error *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ct_error_set(err, CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory", path);
    }
    gzbuffer(f, 1 << 20);
    uint64_t total = 0;
    ct_status st = read_header(f, path, min_dims, max_dims, max_bytes, out, &total, err);
    /* gzdirect is known once the first bytes are read: 1 for a raw file,
     * whose size was checked, so its buffer is allocated at once. */
    bool raw = !st && gzdirect(f);
    if (raw) st = check_raw_size(fd, path, out, total, err);
    if (!st) st = read_data(f, path, total, raw ? total : IDX_FIRST_CHUNK, out, err);
    gzclose(f); /* closes fd */
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
    CT_PARAM_INT("max_mb", "16384", 1, 1 << 30,
                 "ceiling on the data one file may declare, in MB (a larger header is refused)"),
    CT_PARAM_END,
};

static void idx_destroy(void *self) {
    idx_source *s = self;
    if (!s) return;
    free(s->pixels);
    free(s->labels);
    free(s);
}

static ct_status load_labels(idx_source *s, const char *path, int64_t n_file, uint64_t max_bytes,
                             ct_error *err) {
    idx_array a;
    ct_status st = idx_read(path, 1, 1, max_bytes, &a, err);
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
    uint64_t max_bytes = (uint64_t)ct_settings_int(set, "max_mb") << 20;
    idx_array a;
    ct_status st = idx_read(images, 3, 4, max_bytes, &a, err);
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
    if (labels[0]) st = load_labels(s, labels, n_file, max_bytes, err);
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
