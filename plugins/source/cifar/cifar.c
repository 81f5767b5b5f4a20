/* Source plugin `cifar`: CIFAR-10 and CIFAR-100 binary batches.
 *
 * The "binary version" files as their users download them: CIFAR-10
 * records are 1 label byte + 3072 pixel bytes (1024 red, 1024 green, 1024
 * blue, rows of 32); CIFAR-100 records have 2 label bytes (coarse, fine).
 * Files are named in the config (`files`) or found in `dir` by split
 * (data_batch_1..5.bin / test_batch.bin; train.bin / test.bin). Every file
 * is read at open (up to `limit` items) and checked: empty, truncated (not
 * a whole number of records), not a regular file and out-of-range labels
 * are errors naming the file. The format has no header: the file's own
 * size decides the record count. */
#include <contrast/contrast.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_PATH_MAX 4096
#define CIFAR_CHUNK 1024 /* records read at a time (3 MB) */

typedef struct cifar {
    int variant;       /* 10 or 100 */
    bool coarse;       /* CIFAR-100: 20 superclasses instead of 100 classes */
    int64_t count;
    uint8_t *pixels;   /* count * 3072 */
    uint8_t *labels;   /* count */
} cifar;

static const ct_param_spec cifar_params[] = {
    CT_PARAM_STRINGS("files", "[]", "binary batch files to read in order (overrides dir/split)"),
    CT_PARAM_STRING("dir", "\"\"", "folder holding the batches (cifar-10-batches-bin, cifar-100-binary)"),
    CT_PARAM_CHOICE("split", "\"train\"", "train|test", "which batches of dir to read"),
    CT_PARAM_INT("variant", "10", 10, 100, "10 (CIFAR-10) or 100 (CIFAR-100)"),
    CT_PARAM_CHOICE("label", "\"fine\"", "fine|coarse", "CIFAR-100 label: 100 fine classes or 20 coarse"),
    CT_PARAM_INT("limit", "0", 0, INFINITY, "read at most this many items (0: all)"),
    CT_PARAM_END,
};

static int record_size(const cifar *c) { return (c->variant == 100 ? 2 : 1) + CIFAR_PIXELS; }
static int class_count(const cifar *c) { return c->variant == 10 ? 10 : (c->coarse ? 20 : 100); }

static void cifar_destroy(void *self) {
    cifar *c = self;
    if (!c) return;
    free(c->pixels);
    free(c->labels);
    free(c);
}

/* Open a batch file and size it up: a regular file holding a whole, non-zero
 * number of records. The size decides how much is allocated, so it is
 * taken from the file itself (fstat), never assumed. */
static ct_status open_batch(const char *path, long rec, FILE **f, int64_t *n_records, ct_error *err) {
    *f = fopen(path, "rb");
    if (!*f) return ct_error_set(err, CT_ERR_IO, "cifar: %s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    ct_status st = CT_OK;
    if (fstat(fileno(*f), &sb) != 0 || !S_ISREG(sb.st_mode))
        st = ct_error_set(err, CT_ERR_IO, "cifar: %s: not a regular file", path);
    else if (sb.st_size == 0)
        st = ct_error_set(err, CT_ERR_FORMAT, "cifar: %s: empty file", path);
    else if (sb.st_size % rec != 0)
        st = ct_error_set(err, CT_ERR_FORMAT,
                          "cifar: %s: %lld bytes is not a whole number of %ld-byte records "
                          "(truncated, or the wrong variant?)",
                          path, (long long)sb.st_size, rec);
    if (st != CT_OK) {
        fclose(*f);
        *f = NULL;
        return st;
    }
    *n_records = (int64_t)(sb.st_size / rec);
    return CT_OK;
}

/* Check one record's labels and store it as item `at`. */
static ct_status take_record(cifar *c, const char *path, const uint8_t *r, int64_t i, int64_t at,
                             ct_error *err) {
    int classes = class_count(c), label_off = c->variant == 100 && !c->coarse ? 1 : 0;
    if (c->variant == 100 && (r[0] >= 20 || r[1] >= 100))
        return ct_error_set(err, CT_ERR_FORMAT,
                            "cifar: %s: record %lld has labels (coarse %d, fine %d) out of range "
                            "(corrupted, or not a CIFAR-100 file?)",
                            path, (long long)i, r[0], r[1]);
    if (r[label_off] >= classes)
        return ct_error_set(err, CT_ERR_FORMAT,
                            "cifar: %s: record %lld has label %d, CIFAR-%d has %d classes "
                            "(corrupted, or the wrong variant?)",
                            path, (long long)i, r[label_off], c->variant, classes);
    c->labels[at] = r[label_off];
    memcpy(c->pixels + (size_t)at * CIFAR_PIXELS, r + record_size(c) - CIFAR_PIXELS, CIFAR_PIXELS);
    return CT_OK;
}

/* Append the records of one file (only as many as limit leaves room for),
 * validating every label. Records are read in chunks straight into the
 * dataset, so the file is never held twice in memory. */
static ct_status add_file(cifar *c, const char *path, int64_t limit, ct_error *err) {
    long rec = record_size(c);
    int64_t n = 0;
    FILE *f = NULL;
    ct_status st = open_batch(path, rec, &f, &n, err);
    if (st != CT_OK) return st;
    if (limit > 0 && c->count + n > limit) n = limit - c->count;
    uint8_t *px = realloc(c->pixels, (size_t)(c->count + n) * CIFAR_PIXELS);
    if (px) c->pixels = px;
    uint8_t *lb = px ? realloc(c->labels, (size_t)(c->count + n)) : NULL;
    if (lb) c->labels = lb;
    uint8_t *chunk = lb ? malloc((size_t)CIFAR_CHUNK * rec) : NULL;
    if (!chunk) {
        fclose(f);
        return ct_error_set(err, CT_ERR_NOMEM, "cifar: %s: out of memory", path);
    }
    for (int64_t i = 0; i < n && st == CT_OK;) {
        size_t want = (size_t)(n - i < CIFAR_CHUNK ? n - i : CIFAR_CHUNK);
        size_t got = fread(chunk, (size_t)rec, want, f);
        if (got != want) {
            st = ct_error_set(err, CT_ERR_IO, "cifar: %s: short read at record %lld (the file shrank?)", path,
                              (long long)(i + (int64_t)got));
            break;
        }
        for (size_t k = 0; k < got && st == CT_OK; k++, i++)
            st = take_record(c, path, chunk + k * rec, i, c->count + i, err);
    }
    free(chunk);
    fclose(f);
    if (st != CT_OK) return st;
    c->count += n;
    return CT_OK;
}

/* The files of dir for the split, in the canonical order. */
static void dir_files(const cifar *c, const char *dir, bool train, char names[6][CIFAR_PATH_MAX],
                      int *n) {
    *n = 0;
    if (c->variant == 10 && train) {
        for (int i = 1; i <= 5; i++) snprintf(names[(*n)++], CIFAR_PATH_MAX, "%s/data_batch_%d.bin", dir, i);
    } else if (c->variant == 10) {
        snprintf(names[(*n)++], CIFAR_PATH_MAX, "%s/test_batch.bin", dir);
    } else {
        snprintf(names[(*n)++], CIFAR_PATH_MAX, "%s/%s.bin", dir, train ? "train" : "test");
    }
}

static ct_status cifar_create(const ct_settings *s, const ct_host *host, void **self,
                              ct_error *err) {
    (void)host;
    int variant = (int)ct_settings_int(s, "variant");
    if (variant != 10 && variant != 100)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: cifar: variant = %d, expected 10 or 100",
                            ct_settings_origin(s, "variant"), variant);
    size_t n_files = ct_settings_len(s, "files");
    const char *dir = ct_settings_string(s, "dir");
    if (n_files == 0 && dir[0] == '\0')
        return ct_error_set(err, CT_ERR_CONFIG, "cifar: give either files = [...] or dir = \"...\"");
    cifar *c = calloc(1, sizeof *c);
    if (!c) return ct_error_set(err, CT_ERR_NOMEM, "cifar: out of memory");
    c->variant = variant;
    c->coarse = strcmp(ct_settings_string(s, "label"), "coarse") == 0;
    int64_t limit = ct_settings_int(s, "limit");
    ct_status st = CT_OK;
    if (n_files > 0) {
        for (size_t i = 0; i < n_files && st == CT_OK && (limit == 0 || c->count < limit); i++)
            st = add_file(c, ct_settings_string_at(s, "files", i), limit, err);
    } else {
        char (*local)[CIFAR_PATH_MAX] = malloc(6 * sizeof *local);
        int n = 0;
        if (!local) st = ct_error_set(err, CT_ERR_NOMEM, "cifar: out of memory");
        if (st == CT_OK) dir_files(c, dir, strcmp(ct_settings_string(s, "split"), "train") == 0, local, &n);
        for (int i = 0; i < n && st == CT_OK && (limit == 0 || c->count < limit); i++)
            st = add_file(c, local[i], limit, err);
        free(local);
    }
    if (st != CT_OK) {
        cifar_destroy(c);
        return st;
    }
    *self = c;
    return CT_OK;
}

static void cifar_info(void *self, ct_source_info *info) {
    const cifar *c = self;
    memset(info, 0, sizeof *info);
    info->count = c->count;
    info->channels = 3;
    info->height = info->width = CIFAR_SIDE;
    info->frames = 1;
    info->num_classes = class_count(c);
    info->has_labels = true;
    snprintf(info->summary, sizeof info->summary, "%lld images 3x32x32, CIFAR-%d, %d %sclasses",
             (long long)c->count, c->variant, info->num_classes,
             c->variant == 100 ? (c->coarse ? "coarse " : "fine ") : "");
}

static ct_status cifar_get(void *self, int64_t index, ct_image *dst, int32_t *label,
                           ct_error *err) {
    const cifar *c = self;
    if (index < 0 || index >= c->count)
        return ct_error_set(err, CT_ERR_INVALID, "cifar: item %lld out of range (0..%lld)",
                            (long long)index, (long long)c->count - 1);
    if (ct_image_reshape(dst, 1, 3, CIFAR_SIDE, CIFAR_SIDE) != CT_OK)
        return ct_error_set(err, CT_ERR_NOMEM, "cifar: out of memory");
    const uint8_t *px = c->pixels + (size_t)index * CIFAR_PIXELS;
    for (int i = 0; i < CIFAR_PIXELS; i++) dst->data[i] = px[i] * (1.0f / 255.0f);
    if (label) *label = c->labels[index];
    return CT_OK;
}

static const ct_source_ops cifar_ops = {
    0, "cifar", "CIFAR-10/100 binary batches", cifar_params, cifar_create, cifar_destroy,
    cifar_info, cifar_get, NULL, NULL, NULL,
};

static ct_status cifar_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_source(reg, &cifar_ops);
    return st == CT_OK ? CT_OK : ct_error_set(err, st, "cifar: cannot register the source");
}

CT_PLUGIN_DEFINE("cifar", "1.0.0", "MIT", "CIFAR-10 and CIFAR-100 binary batches", CT_ROLE_SOURCE,
                 cifar_init)
