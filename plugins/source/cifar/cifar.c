/* Source plugin `cifar`: CIFAR-10 and CIFAR-100 binary batches.
 *
 * The "binary version" files as their users download them: CIFAR-10
 * records are 1 label byte + 3072 pixel bytes (1024 red, 1024 green, 1024
 * blue, rows of 32); CIFAR-100 records have 2 label bytes (coarse, fine).
 * Files are named in the config (`files`) or found in `dir` by split
 * (data_batch_1..5.bin / test_batch.bin; train.bin / test.bin). Every file
 * is read whole at open and checked: empty, truncated (not a whole number
 * of records) and out-of-range labels are errors naming the file. */
#include <contrast/contrast.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_PATH_MAX 4096

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

/* Read a whole file into memory, checking it holds whole records. */
static ct_status read_file(const char *path, long rec, uint8_t **data, long *n_records,
                           ct_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ct_error_set(err, CT_ERR_IO, "cifar: %s: cannot open: %s", path, strerror(errno));
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return ct_error_set(err, CT_ERR_IO, "cifar: %s: cannot determine the size", path);
    }
    if (size == 0) {
        fclose(f);
        return ct_error_set(err, CT_ERR_FORMAT, "cifar: %s: empty file", path);
    }
    if (size % rec != 0) {
        fclose(f);
        return ct_error_set(err, CT_ERR_FORMAT,
                            "cifar: %s: %ld bytes is not a whole number of %ld-byte records "
                            "(truncated, or the wrong variant?)",
                            path, size, rec);
    }
    *data = malloc((size_t)size);
    if (!*data) {
        fclose(f);
        return ct_error_set(err, CT_ERR_NOMEM, "cifar: %s: out of memory (%ld bytes)", path, size);
    }
    size_t got = fread(*data, 1, (size_t)size, f);
    fclose(f);
    if (got != (size_t)size) {
        free(*data);
        *data = NULL;
        return ct_error_set(err, CT_ERR_IO, "cifar: %s: short read (%zu of %ld bytes)", path, got, size);
    }
    *n_records = size / rec;
    return CT_OK;
}

/* Append the records of one file, validating every label. */
static ct_status add_file(cifar *c, const char *path, int64_t limit, ct_error *err) {
    long rec = record_size(c), n = 0;
    uint8_t *data = NULL;
    ct_status st = read_file(path, rec, &data, &n, err);
    if (st != CT_OK) return st;
    if (limit > 0 && c->count + n > limit) n = (long)(limit - c->count);
    uint8_t *px = realloc(c->pixels, (size_t)(c->count + n) * CIFAR_PIXELS);
    if (px) c->pixels = px;
    uint8_t *lb = px ? realloc(c->labels, (size_t)(c->count + n)) : NULL;
    if (lb) c->labels = lb;
    if (!px || !lb) {
        free(data);
        return ct_error_set(err, CT_ERR_NOMEM, "cifar: %s: out of memory", path);
    }
    int classes = class_count(c), label_off = c->variant == 100 && !c->coarse ? 1 : 0;
    for (long i = 0; i < n && st == CT_OK; i++) {
        const uint8_t *r = data + i * rec;
        if (c->variant == 100 && (r[0] >= 20 || r[1] >= 100))
            st = ct_error_set(err, CT_ERR_FORMAT,
                              "cifar: %s: record %ld has labels (coarse %d, fine %d) out of range "
                              "(corrupted, or not a CIFAR-100 file?)",
                              path, i, r[0], r[1]);
        else if (r[label_off] >= classes)
            st = ct_error_set(err, CT_ERR_FORMAT,
                              "cifar: %s: record %ld has label %d, CIFAR-%d has %d classes "
                              "(corrupted, or the wrong variant?)",
                              path, i, r[label_off], c->variant, classes);
        if (st != CT_OK) break;
        c->labels[c->count + i] = r[label_off];
        memcpy(c->pixels + (size_t)(c->count + i) * CIFAR_PIXELS, r + rec - CIFAR_PIXELS, CIFAR_PIXELS);
    }
    free(data);
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
