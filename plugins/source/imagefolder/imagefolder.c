/* Source plugin `imagefolder`: PNG and JPEG files in a folder tree.
 *
 * Layout: root/<class>/<file> (one sub-folder per class, classes numbered
 * in name order, files in the root itself ignored) or, when root has no
 * sub-folders, root/<file> without labels. Files are recognised by content
 * (PNG signature, JPEG SOI marker), not by extension; hidden files are
 * ignored. PNG is decoded with libpng's simplified API, JPEG with
 * libjpeg(-turbo).
 *
 * Every file is checked at open (`verify`, the default, decodes it fully;
 * otherwise only its header is read): an empty, truncated, corrupted or
 * non-image file is an error naming its path, or, with `skip_bad = true`,
 * is left out and counted. Images are converted to the dataset's channel
 * count (1 when every file is grayscale, else 3, or as configured) and
 * optionally resized (antialiased bilinear, as PIL) to a fixed size, then
 * quantised to 8 bits so cached and uncached reads give the same values.
 *
 * Against decompression bombs (a few hundred bytes declaring a huge image),
 * the dimensions are read from the header and refused above `max_pixels`
 * before anything is allocated or decoded, as Pillow's MAX_IMAGE_PIXELS
 * does, and a JPEG stops at its first corrupt-data warning instead of
 * decoding the rest as grey. */
#include <contrast/contrast.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <png.h>

#define IF_MSG_MAX 384

typedef struct if_item {
    char *path;
    int32_t label;
    uint8_t *cache; /* planar c*h*w bytes when cached, else NULL */
    int h, w;       /* size after resizing */
} if_item;

typedef struct imagefolder {
    int64_t count;
    if_item *items;
    int classes;     /* 0 when flat */
    int channels;    /* 1 or 3 */
    int rh, rw;      /* resize target, 0: keep */
    int64_t max_pixels; /* ceiling on width x height, checked on the header */
    int h, w;        /* common size, 0 when items differ */
    int64_t skipped;
} imagefolder;

static const ct_param_spec if_params[] = {
    CT_PARAM_STRING("root", NULL, "folder: one sub-folder per class, or images directly (unlabelled)"),
    CT_PARAM_INTS("size", "[]", 1, 16384, "resize on load: [] keep, [s] square, [height, width]"),
    CT_PARAM_INT("channels", "0", 0, 3, "0: 1 when all files are grayscale else 3; or force 1 or 3"),
    CT_PARAM_BOOL("cache", "false", "keep the decoded images in memory"),
    CT_PARAM_BOOL("verify", "true", "decode every file at open (else read headers only)"),
    CT_PARAM_BOOL("skip_bad", "false", "leave out unreadable files (and report how many) instead of failing"),
    CT_PARAM_INT("max_pixels", "100000000", 1, 1 << 30,
                 "refuse an image whose header declares more pixels (width x height) than this, before decoding it"),
    CT_PARAM_END,
};

/* ---- decoding ------------------------------------------------------------ */

/* A decoded file: interleaved 8-bit pixels with `c` (1 or 3) channels. */
typedef struct raw_image {
    uint8_t *px;
    int w, h, c;
} raw_image;

static ct_status read_whole(const char *path, uint8_t **data, size_t *size, char *msg) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, IF_MSG_MAX, "cannot open: %s", strerror(errno));
        return CT_ERR_IO;
    }
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        snprintf(msg, IF_MSG_MAX, "cannot determine the size");
        return CT_ERR_IO;
    }
    if (n == 0) {
        fclose(f);
        snprintf(msg, IF_MSG_MAX, "empty file");
        return CT_ERR_FORMAT;
    }
    *data = malloc((size_t)n);
    if (!*data) {
        fclose(f);
        snprintf(msg, IF_MSG_MAX, "out of memory (%ld bytes)", n);
        return CT_ERR_NOMEM;
    }
    size_t got = fread(*data, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(*data);
        *data = NULL;
        snprintf(msg, IF_MSG_MAX, "short read");
        return CT_ERR_IO;
    }
    *size = (size_t)n;
    return CT_OK;
}

static bool is_png(const uint8_t *d, size_t n) { return n >= 8 && png_sig_cmp(d, 0, 8) == 0; }
static bool is_jpeg(const uint8_t *d, size_t n) { return n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF; }

/* PNG through the simplified API: no setjmp needed, errors in img.message. */
/* The ceiling on the dimensions a header declares; refused above it. */
static ct_status check_pixels(const raw_image *r, int64_t max_pixels, char *msg) {
    int64_t px = (int64_t)r->w * r->h;
    if (px <= max_pixels) return CT_OK;
    snprintf(msg, IF_MSG_MAX,
             "header declares %dx%d = %lld pixels, over max_pixels = %lld (a decompression bomb? "
             "raise max_pixels for real images this large)",
             r->w, r->h, (long long)px, (long long)max_pixels);
    return CT_ERR_FORMAT;
}

static ct_status decode_png(const uint8_t *d, size_t n, bool header_only, int64_t max_pixels,
                            raw_image *out, char *msg) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, d, n)) {
        snprintf(msg, IF_MSG_MAX, "corrupted PNG: %s", img.message);
        return CT_ERR_FORMAT;
    }
    out->w = (int)img.width;
    out->h = (int)img.height;
    out->c = (img.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    ct_status st = check_pixels(out, max_pixels, msg);
    if (header_only || st != CT_OK) {
        png_image_free(&img);
        return st;
    }
    img.format = out->c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    /* Transparent pixels are composited onto the zeroed buffer (black). */
    out->px = calloc(1, PNG_IMAGE_SIZE(img));
    if (!out->px) {
        png_image_free(&img);
        snprintf(msg, IF_MSG_MAX, "out of memory");
        return CT_ERR_NOMEM;
    }
    if (!png_image_finish_read(&img, NULL, out->px, 0, NULL) || PNG_IMAGE_FAILED(img)) {
        snprintf(msg, IF_MSG_MAX, "corrupted or truncated PNG: %s", img.message);
        free(out->px);
        out->px = NULL;
        png_image_free(&img);
        return CT_ERR_FORMAT;
    }
    return CT_OK;
}

typedef struct jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* libjpeg only warns about premature ends and bad data (filling the rest
 * grey); treat those as corruption too, and stop there: decoding the rest
 * of a truncated image would only produce grey, slowly. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (level >= 0) return;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jump, 1);
}

static ct_status decode_jpeg(const uint8_t *d, size_t n, bool header_only, int64_t max_pixels,
                             raw_image *out, char *msg) {
    struct jpeg_decompress_struct cinfo;
    jpeg_err jerr;
    uint8_t *volatile px = NULL;
    memset(&jerr, 0, sizeof jerr);
    cinfo.err = jpeg_std_error(&jerr.mgr);
    jerr.mgr.error_exit = jpeg_on_error;
    jerr.mgr.emit_message = jpeg_on_message;
    if (setjmp(jerr.jump)) {
        snprintf(msg, IF_MSG_MAX, "corrupted or truncated JPEG: %s", jerr.msg);
        jpeg_destroy_decompress(&cinfo);
        free(px);
        return CT_ERR_FORMAT;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, d, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);
    out->w = (int)cinfo.image_width;
    out->h = (int)cinfo.image_height;
    out->c = cinfo.num_components == 1 ? 1 : 3;
    ct_status st = check_pixels(out, max_pixels, msg);
    if (header_only || st != CT_OK) {
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    cinfo.out_color_space = out->c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    size_t stride = (size_t)cinfo.output_width * cinfo.output_components;
    px = malloc(stride * cinfo.output_height);
    if (!px) longjmp(jerr.jump, 1);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = px + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    out->px = px;
    return CT_OK;
}

/* Decode (or only size up) one file. */
static ct_status decode_file(const char *path, bool header_only, int64_t max_pixels, raw_image *out,
                             char *msg) {
    uint8_t *data = NULL;
    size_t n = 0;
    memset(out, 0, sizeof *out);
    ct_status st = read_whole(path, &data, &n, msg);
    if (st != CT_OK) return st;
    if (is_png(data, n)) st = decode_png(data, n, header_only, max_pixels, out, msg);
    else if (is_jpeg(data, n)) st = decode_jpeg(data, n, header_only, max_pixels, out, msg);
    else {
        snprintf(msg, IF_MSG_MAX, "not a PNG or JPEG file");
        st = CT_ERR_FORMAT;
    }
    free(data);
    if (st == CT_OK && (out->w <= 0 || out->h <= 0)) {
        free(out->px);
        out->px = NULL;
        snprintf(msg, IF_MSG_MAX, "image has no pixels (%dx%d)", out->w, out->h);
        st = CT_ERR_FORMAT;
    }
    return st;
}

/* ---- conversion and resizing ------------------------------------------------ */

/* Resample one axis with a triangle filter widened by the downscale factor
 * (PIL's antialiased bilinear). in: `n_lines` lines of `in_len` samples at
 * `stride` apart, lines `line_step` apart; likewise out. */
static bool resample_axis(const float *in, int in_len, float *out, int out_len, int n_lines,
                          size_t in_stride, size_t in_line, size_t out_stride, size_t out_line) {
    double scale = (double)in_len / out_len, support = scale > 1.0 ? scale : 1.0;
    int taps = (int)ceil(support) * 2 + 1;
    float *wts = malloc((size_t)out_len * taps * sizeof *wts);
    int *first = malloc((size_t)out_len * sizeof *first);
    if (!wts || !first) {
        free(wts);
        free(first);
        return false;
    }
    for (int i = 0; i < out_len; i++) {
        double centre = (i + 0.5) * scale, total = 0.0;
        int lo = (int)floor(centre - support + 0.5);
        if (lo < 0) lo = 0;
        first[i] = lo;
        for (int k = 0; k < taps; k++) {
            int j = lo + k;
            double x = (j + 0.5 - centre) / support;
            double wt = (j < in_len && fabs(x) < 1.0) ? 1.0 - fabs(x) : 0.0;
            wts[(size_t)i * taps + k] = (float)wt;
            total += wt;
        }
        for (int k = 0; k < taps; k++) wts[(size_t)i * taps + k] = (float)(wts[(size_t)i * taps + k] / total);
    }
    for (int l = 0; l < n_lines; l++) {
        const float *src = in + l * in_line;
        float *dst = out + l * out_line;
        for (int i = 0; i < out_len; i++) {
            float acc = 0.0f;
            for (int k = 0; k < taps && first[i] + k < in_len; k++)
                acc += wts[(size_t)i * taps + k] * src[(size_t)(first[i] + k) * in_stride];
            dst[i * out_stride] = acc;
        }
    }
    free(wts);
    free(first);
    return true;
}

static uint8_t to_u8(float v) {
    v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
    return (uint8_t)(v + 0.5f);
}

/* Interleaved raw pixels -> planar bytes with `c` channels and size
 * (oh, ow) (0: keep). Returns NULL on out-of-memory. */
static uint8_t *convert(const raw_image *r, int c, int oh, int ow, int *h_out, int *w_out) {
    int h = r->h, w = r->w;
    size_t hw = (size_t)h * w;
    float *pl = malloc((size_t)c * hw * sizeof *pl);
    if (!pl) return NULL;
    for (size_t i = 0; i < hw; i++) {
        const uint8_t *p = r->px + i * r->c;
        if (c == r->c) {
            for (int k = 0; k < c; k++) pl[k * hw + i] = p[k];
        } else if (c == 3) { /* gray -> RGB */
            pl[i] = pl[hw + i] = pl[2 * hw + i] = p[0];
        } else { /* RGB -> gray (ITU-R 601) */
            pl[i] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
        }
    }
    if (oh > 0 && (oh != h || ow != w)) {
        float *mid = malloc((size_t)c * h * ow * sizeof *mid);
        float *fin = malloc((size_t)c * oh * ow * sizeof *fin);
        bool ok = mid && fin;
        /* Rows first (c*h lines of w), then columns (c*ow lines of h). */
        ok = ok && resample_axis(pl, w, mid, ow, c * h, 1, (size_t)w, 1, (size_t)ow);
        for (int k = 0; ok && k < c; k++)
            ok = resample_axis(mid + (size_t)k * h * ow, h, fin + (size_t)k * oh * ow, oh, ow,
                               (size_t)ow, 1, (size_t)ow, 1);
        free(pl);
        free(mid);
        if (!ok) {
            free(fin);
            return NULL;
        }
        pl = fin;
        h = oh;
        w = ow;
    }
    size_t n = (size_t)c * h * w;
    uint8_t *out = malloc(n);
    if (out)
        for (size_t i = 0; i < n; i++) out[i] = to_u8(pl[i]);
    free(pl);
    *h_out = h;
    *w_out = w;
    return out;
}

/* ---- scanning ------------------------------------------------------------- */

typedef struct name_list {
    char **v;
    int n, cap;
} name_list;

static void names_free(name_list *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted non-hidden entries of `dir` that are folders (want_dirs) or
 * regular files. */
static ct_status list_dir(const char *dir, bool want_dirs, name_list *out, ct_error *err) {
    DIR *d = opendir(dir);
    if (!d) return ct_error_set(err, CT_ERR_IO, "imagefolder: %s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    ct_status st = CT_OK;
    while (st == CT_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *full = malloc(len);
        if (!full) {
            st = ct_error_set(err, CT_ERR_NOMEM, "imagefolder: out of memory");
            break;
        }
        snprintf(full, len, "%s/%s", dir, e->d_name);
        struct stat sb;
        bool keep = stat(full, &sb) == 0 && (want_dirs ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode));
        if (keep && out->n == out->cap) {
            int cap = out->cap ? out->cap * 2 : 64;
            char **v = realloc(out->v, (size_t)cap * sizeof *v);
            if (!v) {
                free(full);
                st = ct_error_set(err, CT_ERR_NOMEM, "imagefolder: out of memory");
                break;
            }
            out->v = v;
            out->cap = cap;
        }
        if (keep) out->v[out->n++] = full;
        else free(full);
    }
    closedir(d);
    if (st == CT_OK && out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_names);
    return st;
}

static void if_destroy(void *self) {
    imagefolder *f = self;
    if (!f) return;
    for (int64_t i = 0; i < f->count; i++) {
        free(f->items[i].path);
        free(f->items[i].cache);
    }
    free(f->items);
    free(f);
}

static ct_status add_item(imagefolder *f, int64_t *cap, char *path, int32_t label, ct_error *err) {
    if (f->count == *cap) {
        int64_t nc = *cap ? *cap * 2 : 256;
        if_item *v = realloc(f->items, (size_t)nc * sizeof *v);
        if (!v) return ct_error_set(err, CT_ERR_NOMEM, "imagefolder: out of memory");
        f->items = v;
        *cap = nc;
    }
    f->items[f->count++] = (if_item){path, label, NULL, 0, 0};
    return CT_OK;
}

/* Collect the files of root (flat) or of each class folder. */
static ct_status collect(imagefolder *f, const char *root, ct_error *err) {
    name_list dirs = {0};
    ct_status st = list_dir(root, true, &dirs, err);
    int64_t cap = 0;
    int n_groups = dirs.n ? dirs.n : 1;
    for (int g = 0; st == CT_OK && g < n_groups; g++) {
        name_list files = {0};
        st = list_dir(dirs.n ? dirs.v[g] : root, false, &files, err);
        for (int i = 0; st == CT_OK && i < files.n; i++) {
            st = add_item(f, &cap, files.v[i], dirs.n ? g : -1, err);
            if (st == CT_OK) files.v[i] = NULL; /* now owned by the item */
        }
        names_free(&files);
    }
    f->classes = dirs.n;
    names_free(&dirs);
    return st;
}

/* Check every item (decoding when verify or cache), dropping bad ones when
 * skip_bad. Fills the channel count and common size. */
static ct_status check_items(imagefolder *f, bool verify, bool cache, bool skip_bad,
                             int want_c, const ct_host *host, ct_error *err) {
    bool any_color = false;
    int64_t kept = 0;
    char msg[IF_MSG_MAX];
    for (int64_t i = 0; i < f->count; i++) {
        if_item it = f->items[i];
        raw_image r;
        ct_status st = decode_file(it.path, !(verify || cache), f->max_pixels, &r, msg);
        if (st == CT_ERR_NOMEM) return ct_error_set(err, st, "imagefolder: %s: %s", it.path, msg);
        if (st != CT_OK) {
            if (!skip_bad)
                return ct_error_set(err, st, "imagefolder: %s: %s (set skip_bad = true to leave such files out)",
                                    it.path, msg);
            ct_log(host, CT_LOG_WARN, "imagefolder: skipping %s: %s", it.path, msg);
            f->skipped++;
            free(it.path);
            continue;
        }
        any_color |= r.c == 3;
        it.h = f->rh ? f->rh : r.h;
        it.w = f->rw ? f->rw : r.w;
        free(r.px);
        f->items[kept++] = it;
    }
    f->count = kept;
    f->channels = want_c ? want_c : (any_color ? 3 : 1);
    f->h = f->count ? f->items[0].h : 0;
    f->w = f->count ? f->items[0].w : 0;
    for (int64_t i = 1; i < f->count; i++)
        if (f->items[i].h != f->h || f->items[i].w != f->w) f->h = f->w = 0;
    return CT_OK;
}

/* Decode an item to planar bytes in the dataset's channels and size. */
static ct_status load_item(const imagefolder *f, const if_item *it, uint8_t **px, int *h, int *w,
                           ct_error *err) {
    raw_image r;
    char msg[IF_MSG_MAX];
    ct_status st = decode_file(it->path, false, f->max_pixels, &r, msg);
    if (st != CT_OK) return ct_error_set(err, st, "imagefolder: %s: %s", it->path, msg);
    *px = convert(&r, f->channels, f->rh, f->rw, h, w);
    free(r.px);
    if (!*px) return ct_error_set(err, CT_ERR_NOMEM, "imagefolder: %s: out of memory", it->path);
    return CT_OK;
}

static ct_status if_create(const ct_settings *s, const ct_host *host, void **self, ct_error *err) {
    const char *root = ct_settings_string(s, "root");
    size_t ns = ct_settings_len(s, "size");
    if (ns > 2)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: imagefolder: size must be [], [s] or [height, width]",
                            ct_settings_origin(s, "size"));
    int64_t want_c = ct_settings_int(s, "channels");
    if (want_c == 2)
        return ct_error_set(err, CT_ERR_CONFIG, "%s: imagefolder: channels = 2; use 0 (auto), 1 or 3",
                            ct_settings_origin(s, "channels"));
    imagefolder *f = calloc(1, sizeof *f);
    if (!f) return ct_error_set(err, CT_ERR_NOMEM, "imagefolder: out of memory");
    if (ns > 0) {
        f->rh = (int)ct_settings_int_at(s, "size", 0);
        f->rw = ns == 2 ? (int)ct_settings_int_at(s, "size", 1) : f->rh;
    }
    f->max_pixels = ct_settings_int(s, "max_pixels");
    bool cache = ct_settings_bool(s, "cache");
    ct_status st = collect(f, root, err);
    if (st == CT_OK)
        st = check_items(f, ct_settings_bool(s, "verify"), cache, ct_settings_bool(s, "skip_bad"),
                         (int)want_c, host, err);
    if (st == CT_OK && f->count == 0)
        st = ct_error_set(err, CT_ERR_NOT_FOUND, "imagefolder: %s: no PNG or JPEG images found%s", root,
                          f->skipped ? " (all were skipped as bad)" : "");
    for (int64_t i = 0; st == CT_OK && cache && i < f->count; i++)
        st = load_item(f, &f->items[i], &f->items[i].cache, &f->items[i].h, &f->items[i].w, err);
    if (st != CT_OK) {
        if_destroy(f);
        return st;
    }
    if (f->skipped)
        ct_log(host, CT_LOG_WARN, "imagefolder: %s: skipped %lld bad file(s)", root, (long long)f->skipped);
    *self = f;
    return CT_OK;
}

static void if_info(void *self, ct_source_info *info) {
    const imagefolder *f = self;
    memset(info, 0, sizeof *info);
    info->count = f->count;
    info->channels = f->channels;
    info->height = f->h;
    info->width = f->w;
    info->frames = 1;
    info->num_classes = f->classes;
    info->has_labels = f->classes > 0;
    char size[48] = "varying size";
    if (f->h) snprintf(size, sizeof size, "%dx%dx%d", f->channels, f->h, f->w);
    snprintf(info->summary, sizeof info->summary, "%lld images %s, %d classes, %lld skipped",
             (long long)f->count, size, f->classes, (long long)f->skipped);
}

static ct_status if_get(void *self, int64_t index, ct_image *dst, int32_t *label, ct_error *err) {
    const imagefolder *f = self;
    if (index < 0 || index >= f->count)
        return ct_error_set(err, CT_ERR_INVALID, "imagefolder: item %lld out of range (0..%lld)",
                            (long long)index, (long long)f->count - 1);
    const if_item *it = &f->items[index];
    uint8_t *px = it->cache;
    int h = it->h, w = it->w;
    if (!px) {
        ct_status st = load_item(f, it, &px, &h, &w, err);
        if (st != CT_OK) return st;
    }
    ct_status st = ct_image_reshape(dst, 1, f->channels, h, w);
    if (st == CT_OK) {
        size_t n = ct_image_numel(dst);
        for (size_t i = 0; i < n; i++) dst->data[i] = px[i] * (1.0f / 255.0f);
    }
    if (px != it->cache) free(px);
    if (st != CT_OK) return ct_error_set(err, st, "imagefolder: out of memory");
    if (label) *label = it->label;
    return CT_OK;
}

/* Extension "imagefolder.skipped": a pointer to the int64 count of files
 * left out as bad (stable for the instance's life). */
static const void *if_extension(void *self, const char *id) {
    imagefolder *f = self;
    return strcmp(id, "imagefolder.skipped") == 0 ? &f->skipped : NULL;
}

static const ct_source_ops if_ops = {
    0, "imagefolder", "PNG/JPEG images, one sub-folder per class or a flat folder", if_params,
    if_create, if_destroy, if_info, if_get, NULL, NULL, if_extension,
};

static ct_status if_init(ct_registry *reg, const ct_host *host, ct_error *err) {
    (void)host;
    ct_status st = ct_register_source(reg, &if_ops);
    return st == CT_OK ? CT_OK : ct_error_set(err, st, "imagefolder: cannot register the source");
}

CT_PLUGIN_DEFINE("imagefolder", "1.0.0", "MIT", "PNG and JPEG image folders (libpng, libjpeg)",
                 CT_ROLE_SOURCE, if_init)
