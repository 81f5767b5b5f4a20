/* Moving Fashion-MNIST (see moving_fmnist.h): scenes, rendering, and the
 * folder of encoded videos with its CSVs and split lists. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "data/moving_fmnist.h"

#include <ftw.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/video_writer.h"

static const char *const class_names[10] = {"0_tshirt_top", "1_trouser", "2_pullover", "3_dress", "4_coat",
                                            "5_sandal", "6_shirt", "7_sneaker", "8_bag", "9_ankle_boot"};
static const char *const direction_names[CT_MFM_DIRECTIONS] = {"right", "up_right", "up", "up_left",
                                                               "left", "down_left", "down", "down_right"};

void ct_mfm_defaults(ct_mfm_params *p) {
    memset(p, 0, sizeof *p);
    p->videos = 1000;
    p->test_videos = 200;
    p->frames = 16;
    p->size = 64;
    p->pool = 50;
    p->fps = 10;
    p->speed = 2.0;
    p->distractor = 0.0;
    p->seed = 0;
    snprintf(p->codec, sizeof p->codec, "mpeg4");
    snprintf(p->fmnist_dir, sizeof p->fmnist_dir, "/usr/share/datasets/fashion-mnist");
}

ct_status ct_mfm_validate(const ct_mfm_params *p, ct_error *err) {
    if (p->videos < 1 || p->videos > 10000000 || p->test_videos < 0 || p->test_videos > 10000000)
        return ct_error_set(err, CT_ERR_INVALID, "--videos must be 1..1e7 and --test-videos 0..1e7");
    if (p->frames < 2 || p->frames > 10000)
        return ct_error_set(err, CT_ERR_INVALID, "--frames %d: a video needs 2..10000 frames", p->frames);
    if (p->size < CT_MFM_ITEM || p->size > 1024 || p->size % 2)
        return ct_error_set(err, CT_ERR_INVALID, "--size %d: the canvas must be even and %d..1024 pixels", p->size,
                            CT_MFM_ITEM);
    if (p->pool < 10 || p->pool % 10 || p->pool > 6000)
        return ct_error_set(err, CT_ERR_INVALID, "--pool %d: a multiple of 10 (items per class x 10), 10..6000",
                            p->pool);
    if (p->fps < 1 || p->fps > 1000) return ct_error_set(err, CT_ERR_INVALID, "--fps %d: 1..1000", p->fps);
    if (!(p->speed > 0.0 && p->speed <= p->size / 2.0))
        return ct_error_set(err, CT_ERR_INVALID, "--speed %g: pixels per frame, above 0 and at most half the canvas",
                            p->speed);
    if (!(p->distractor >= 0.0 && p->distractor <= 1.0))
        return ct_error_set(err, CT_ERR_INVALID, "--distractor %g: a probability, 0..1", p->distractor);
    if (!ct_video_codec_ext(p->codec))
        return ct_error_set(err, CT_ERR_INVALID, "--codec %s: one of mpeg4, h264, vp9, ffv1", p->codec);
    return ct_video_codec_check(p->codec, err);
}

/* ---- scenes ----------------------------------------------------------------- */

static double uniform(ct_rng *r) { return ct_rng_uniform(r); }

void ct_mfm_scene_of(const ct_mfm_params *p, int split, int64_t v, const int64_t *pool, ct_mfm_scene *s) {
    int64_t slot = v % p->pool;
    /* A per-item offset so that items do not all start at direction 0. */
    ct_rng r;
    ct_rng_init_keyed(&r, p->seed, 0x6d666d00u + (uint64_t)split, (uint64_t)slot, 1);
    int offset = (int)(ct_rng_u32(&r) % CT_MFM_DIRECTIONS);
    ct_rng_init_keyed(&r, p->seed, 0x6d666d10u + (uint64_t)split, (uint64_t)v, 2);
    memset(s, 0, sizeof *s);
    s->item = pool[slot];
    s->direction = (int)((v / p->pool + offset) % CT_MFM_DIRECTIONS);
    s->x0 = uniform(&r) * p->size;
    s->y0 = uniform(&r) * p->size;
    s->distractor = -1;
    if (uniform(&r) < p->distractor) {
        int64_t other = (slot + 1 + (int64_t)(ct_rng_u32(&r) % (uint32_t)(p->pool - 1))) % p->pool;
        s->distractor = pool[other];
        s->distractor_direction = (int)(ct_rng_u32(&r) % CT_MFM_DIRECTIONS);
        s->dx0 = uniform(&r) * p->size;
        s->dy0 = uniform(&r) * p->size;
    }
}

/* Bilinear sample of a 28x28 item at (u, v), zero outside. */
static float sample(const uint8_t *img, double u, double v) {
    int i0 = (int)floor(u), j0 = (int)floor(v);
    double fu = u - i0, fv = v - j0;
    float acc = 0.0f;
    for (int dj = 0; dj < 2; dj++)
        for (int di = 0; di < 2; di++) {
            int i = i0 + di, j = j0 + dj;
            if (i < 0 || j < 0 || i >= CT_MFM_ITEM || j >= CT_MFM_ITEM) continue;
            double w = (di ? fu : 1.0 - fu) * (dj ? fv : 1.0 - fv);
            acc += (float)(w * img[j * CT_MFM_ITEM + i]);
        }
    return acc;
}

/* Canvas coordinate minus the item's corner, wrapped into [-1, S-1). */
static double wrap(double d, int size) {
    double m = fmod(d + 1.0, size);
    if (m < 0) m += size;
    return m - 1.0;
}

static void draw(const ct_mfm_params *p, const uint8_t *img, double x0, double y0, int dir, int t, float *acc) {
    double a = dir * (M_PI / 4.0);
    double x = x0 + t * p->speed * cos(a), y = y0 - t * p->speed * sin(a);
    for (int cy = 0; cy < p->size; cy++) {
        double v = wrap(cy - y, p->size);
        if (v >= CT_MFM_ITEM) continue;
        for (int cx = 0; cx < p->size; cx++) {
            double u = wrap(cx - x, p->size);
            if (u >= CT_MFM_ITEM) continue;
            float s = sample(img, u, v);
            float *o = &acc[(size_t)cy * p->size + cx];
            if (s > *o) *o = s;
        }
    }
}

void ct_mfm_render(const ct_mfm_params *p, const ct_mfm_scene *s, const uint8_t *images, int t, uint8_t *canvas) {
    size_t n = (size_t)p->size * p->size;
    float *acc = calloc(n, sizeof *acc);
    if (!acc) { /* the caller's buffer still gets a defined (black) frame */
        memset(canvas, 0, n);
        return;
    }
    const size_t isz = CT_MFM_ITEM * CT_MFM_ITEM;
    draw(p, images + (size_t)s->item * isz, s->x0, s->y0, s->direction, t, acc);
    if (s->distractor >= 0)
        draw(p, images + (size_t)s->distractor * isz, s->dx0, s->dy0, s->distractor_direction, t, acc);
    for (size_t i = 0; i < n; i++) canvas[i] = (uint8_t)(acc[i] > 255.0f ? 255 : (int)(acc[i] + 0.5f));
    free(acc);
}

/* ---- Fashion-MNIST ------------------------------------------------------------ */

typedef struct fmnist {
    uint8_t *images; /* n x 28 x 28 */
    uint8_t *labels;
    int64_t n;
} fmnist;

static uint32_t be32(const uint8_t *b) { return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]; }

/* An IDX file (gzipped): magic, dims, then bytes; `dims` 3 (images) or 1. */
static ct_status read_idx(const char *path, int dims, uint8_t **data, int64_t *n, ct_error *err) {
    gzFile f = gzopen(path, "rb");
    if (!f) return ct_error_set(err, CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t hdr[16];
    int hn = 4 + 4 * dims;
    ct_status st = CT_OK;
    if (gzread(f, hdr, (unsigned)hn) != hn || be32(hdr) != 0x800u + (uint32_t)dims ||
        (dims == 3 && (be32(hdr + 8) != CT_MFM_ITEM || be32(hdr + 12) != CT_MFM_ITEM)) || be32(hdr + 4) > 1000000)
        st = ct_error_set(err, CT_ERR_FORMAT, "%s: not a Fashion-MNIST IDX file", path);
    size_t per = dims == 3 ? CT_MFM_ITEM * CT_MFM_ITEM : 1;
    if (st == CT_OK) {
        *n = be32(hdr + 4);
        size_t bytes = (size_t)*n * per;
        if (!(*data = malloc(bytes ? bytes : 1))) st = ct_error_set(err, CT_ERR_NOMEM, "out of memory");
        else if (gzread(f, *data, (unsigned)bytes) != (int)bytes)
            st = ct_error_set(err, CT_ERR_FORMAT, "%s: truncated", path);
    }
    gzclose(f);
    return st;
}

static ct_status load_fmnist(const char *dir, int split, fmnist *d, ct_error *err) {
    char ip[700], lp[700];
    const char *pre = split == 0 ? "train" : "t10k";
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", dir, pre);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", dir, pre);
    memset(d, 0, sizeof *d);
    int64_t nl = 0;
    ct_status st = read_idx(ip, 3, &d->images, &d->n, err);
    if (st == CT_OK) st = read_idx(lp, 1, &d->labels, &nl, err);
    if (st == CT_OK && nl != d->n) st = ct_error_set(err, CT_ERR_FORMAT, "%s and %s hold different counts", ip, lp);
    for (int64_t i = 0; st == CT_OK && i < d->n; i++)
        if (d->labels[i] > 9) st = ct_error_set(err, CT_ERR_FORMAT, "%s: label %d is not a class 0..9", lp, d->labels[i]);
    return st;
}

/* pool/10 items of each class, drawn without replacement (seeded). */
static ct_status draw_pool(const ct_mfm_params *p, int split, const fmnist *d, int64_t *pool, ct_error *err) {
    int64_t *perm = malloc((size_t)d->n * sizeof *perm);
    if (!perm) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < d->n; i++) perm[i] = i;
    ct_rng r;
    ct_rng_init_keyed(&r, p->seed, 0x6d666d20u + (uint64_t)split, 0, 0);
    for (int64_t i = d->n - 1; i > 0; i--) {
        int64_t j = (int64_t)(ct_rng_u64(&r) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int per = p->pool / 10, taken[10] = {0}, filled = 0;
    for (int64_t i = 0; i < d->n && filled < p->pool; i++) {
        int c = d->labels[perm[i]];
        if (taken[c] == per) continue;
        /* class-major order: slot c*per + k */
        pool[c * per + taken[c]++] = perm[i];
        filled++;
    }
    free(perm);
    if (filled < p->pool) return ct_error_set(err, CT_ERR_INVALID, "--pool %d: the split has too few items of some class", p->pool);
    return CT_OK;
}

/* ---- writing -------------------------------------------------------------------- */

static void params_text(const ct_mfm_params *p, char *buf, size_t n) {
    snprintf(buf, n,
             "moving-fmnist 1\nvideos = %lld\ntest_videos = %lld\nframes = %d\nsize = %d\npool = %d\nfps = %d\n"
             "speed = %.17g\ndistractor = %.17g\nseed = %llu\ncodec = %s\nfmnist = %s\n",
             (long long)p->videos, (long long)p->test_videos, p->frames, p->size, p->pool, p->fps, p->speed,
             p->distractor, (unsigned long long)p->seed, p->codec, p->fmnist_dir);
}

static ct_status make_dir(const char *path, ct_error *err) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return CT_OK;
    return ct_error_set(err, CT_ERR_IO, "%s: cannot create the folder: %s", path, strerror(errno));
}

/* The folders above `path` (mkdir -p of its dirname), so that
 * `make-dataset moving-fmnist data/moving-fmnist` works in a fresh clone. */
static ct_status make_parents(const char *path, ct_error *err) {
    char buf[1100];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ct_error_set(err, CT_ERR_INVALID, "%s: path too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        ct_status st = make_dir(buf, err);
        *p = '/';
        if (st != CT_OK) return st;
    }
    return CT_OK;
}

static ct_status write_text(const char *path, const char *text, ct_error *err) {
    FILE *f = fopen(path, "w");
    bool ok = f && fputs(text, f) >= 0;
    if (f) ok = fclose(f) == 0 && ok;
    return ok ? CT_OK : ct_error_set(err, CT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
}

static ct_status encode_video(const ct_mfm_params *p, const ct_mfm_scene *s, const uint8_t *images, const char *path,
                              uint8_t *canvas, ct_error *err) {
    ct_video_writer *w;
    ct_status st = ct_video_writer_open(path, p->codec, p->size, p->size, p->fps, 8, &w, err);
    for (int t = 0; st == CT_OK && t < p->frames; t++) {
        ct_mfm_render(p, s, images, t, canvas);
        st = ct_video_writer_frame(w, canvas, err);
    }
    ct_status cs = ct_video_writer_close(w, st != CT_OK, st == CT_OK ? err : NULL);
    return st != CT_OK ? st : cs;
}

/* Open the split's CSV and two split lists under dir. */
typedef struct split_files {
    FILE *csv, *by_class, *by_dir;
} split_files;

static ct_status open_split_files(const char *dir, const char *name, split_files *f, ct_error *err) {
    char a[1100], b[1100], c[1100];
    snprintf(a, sizeof a, "%s/%s.csv", dir, name);
    snprintf(b, sizeof b, "%s/%slist_class.txt", dir, name);
    snprintf(c, sizeof c, "%s/%slist_direction.txt", dir, name);
    f->csv = fopen(a, "w");
    f->by_class = fopen(b, "w");
    f->by_dir = fopen(c, "w");
    if (!f->csv || !f->by_class || !f->by_dir) return ct_error_set(err, CT_ERR_IO, "%s: cannot write: %s", dir, strerror(errno));
    fprintf(f->csv, "file,class,direction,item,distractor_item,distractor_direction,x0,y0\n");
    return CT_OK;
}

static ct_status close_split_files(split_files *f, const char *dir, ct_error *err) {
    bool ok = true;
    FILE *all[3] = {f->csv, f->by_class, f->by_dir};
    for (int i = 0; i < 3; i++)
        if (all[i]) ok = fclose(all[i]) == 0 && ok;
    memset(f, 0, sizeof *f);
    return ok ? CT_OK : ct_error_set(err, CT_ERR_IO, "%s: writing the lists failed", dir);
}

static ct_status make_split(const ct_mfm_params *p, int split, const char *dir, bool verbose, ct_error *err) {
    const char *name = split == 0 ? "train" : "test";
    int64_t count = split == 0 ? p->videos : p->test_videos;
    fmnist d = {0};
    int64_t *pool = malloc((size_t)p->pool * sizeof *pool);
    uint8_t *canvas = malloc((size_t)p->size * p->size);
    split_files f = {0};
    ct_status st = pool && canvas ? load_fmnist(p->fmnist_dir, split, &d, err) : ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    if (st == CT_OK) st = draw_pool(p, split, &d, pool, err);
    char sub[1100];
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    if (st == CT_OK) st = make_dir(sub, err);
    for (int c = 0; st == CT_OK && c < 10; c++) {
        char cd[1200];
        snprintf(cd, sizeof cd, "%s/%s", sub, class_names[c]);
        st = make_dir(cd, err);
    }
    if (st == CT_OK) st = open_split_files(dir, name, &f, err);
    const char *ext = ct_video_codec_ext(p->codec);
    for (int64_t v = 0; st == CT_OK && v < count; v++) {
        ct_mfm_scene s;
        ct_mfm_scene_of(p, split, v, pool, &s);
        int cls = d.labels[s.item];
        char rel[256], path[1400];
        snprintf(rel, sizeof rel, "%s/%s/v%06lld.%s", name, class_names[cls], (long long)v, ext);
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        st = encode_video(p, &s, d.images, path, canvas, err);
        fprintf(f.csv, "%s,%d,%d,%lld,%lld,%d,%.17g,%.17g\n", rel, cls, s.direction, (long long)s.item,
                (long long)s.distractor, s.distractor >= 0 ? s.distractor_direction : -1, s.x0, s.y0);
        /* split lists are relative to their root, here OUT/<split>/ */
        fprintf(f.by_class, "%s %d\n", strchr(rel, '/') + 1, cls + 1);
        fprintf(f.by_dir, "%s %d\n", strchr(rel, '/') + 1, s.direction + 1);
        if (verbose && (v + 1) % 500 == 0) fprintf(stderr, "make-dataset: %s: %lld/%lld videos\n", name, (long long)v + 1, (long long)count);
    }
    ct_status cs = close_split_files(&f, dir, st == CT_OK ? err : NULL);
    if (st == CT_OK) st = cs;
    free(d.images);
    free(d.labels);
    free(pool);
    free(canvas);
    return st;
}

static ct_status write_indexes(const char *dir, ct_error *err) {
    char text[1024] = "", path[1200];
    for (int c = 0; c < 10; c++) snprintf(text + strlen(text), sizeof text - strlen(text), "%d %s\n", c + 1, class_names[c]);
    snprintf(path, sizeof path, "%s/classInd.txt", dir);
    ct_status st = write_text(path, text, err);
    text[0] = '\0';
    for (int k = 0; k < CT_MFM_DIRECTIONS; k++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%d %s\n", k + 1, direction_names[k]);
    snprintf(path, sizeof path, "%s/directionInd.txt", dir);
    return st == CT_OK ? write_text(path, text, err) : st;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

/* Remove the partial folder an interrupted make left (our own, by name). */
static void remove_tree(const char *dir) {
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "make-dataset: could not remove %s: %s\n", dir, strerror(errno));
}

/* The params.txt of an existing folder, or "" when it has none. */
static void existing_params(const char *out, char *buf, size_t n) {
    char path[1100];
    snprintf(path, sizeof path, "%s/params.txt", out);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
    fclose(f);
}

ct_status ct_mfm_make(const char *out, const ct_mfm_params *p, bool verbose, bool *reused, ct_error *err) {
    *reused = false;
    ct_status st = ct_mfm_validate(p, err);
    if (st != CT_OK) return st;
    char want[2048], have[2048];
    params_text(p, want, sizeof want);
    struct stat sb;
    if (stat(out, &sb) == 0) {
        existing_params(out, have, sizeof have);
        if (strcmp(want, have) == 0) {
            *reused = true;
            return CT_OK;
        }
        return ct_error_set(err, CT_ERR_EXISTS,
                            "%s exists and is not a moving-fmnist set with these parameters; remove it or choose "
                            "another folder",
                            out);
    }
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.partial-%ld", out, (long)getpid());
    st = make_parents(tmp, err);
    if (st == CT_OK) st = make_dir(tmp, err);
    if (st != CT_OK) return st;
    st = write_indexes(tmp, err);
    if (st == CT_OK) st = make_split(p, 0, tmp, verbose, err);
    if (st == CT_OK && p->test_videos > 0) st = make_split(p, 1, tmp, verbose, err);
    char path[1200];
    snprintf(path, sizeof path, "%s/params.txt", tmp);
    if (st == CT_OK) st = write_text(path, want, err);
    if (st == CT_OK && rename(tmp, out) != 0)
        st = ct_error_set(err, CT_ERR_IO, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
    if (st != CT_OK) remove_tree(tmp);
    return st;
}
