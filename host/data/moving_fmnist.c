/* Moving Fashion-MNIST (see moving_fmnist.h): scenes, rendering, and the
 * folder of encoded videos with its CSVs and split lists. */
#include "data/moving_fmnist.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_folder.h"
#include "data/fmnist_items.h"
#include "data/video_writer.h"

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


/* ---- writing -------------------------------------------------------------------- */

static void params_text(const ct_mfm_params *p, char *buf, size_t n) {
    snprintf(buf, n,
             "moving-fmnist 2\nvideos = %lld\ntest_videos = %lld\nframes = %d\nsize = %d\npool = %d\nfps = %d\n"
             "speed = %.17g\ndistractor = %.17g\nseed = %llu\ncodec = %s\nfmnist = %s\n",
             (long long)p->videos, (long long)p->test_videos, p->frames, p->size, p->pool, p->fps, p->speed,
             p->distractor, (unsigned long long)p->seed, p->codec, p->fmnist_dir);
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

/* Open the split's CSV and three split lists under dir. */
typedef struct split_files {
    FILE *csv, *by_class, *by_dir, *by_item;
} split_files;

static ct_status open_split_files(const char *dir, const char *name, split_files *f, ct_error *err) {
    char a[1100], b[1100], c[1100], d[1100];
    snprintf(a, sizeof a, "%s/%s.csv", dir, name);
    snprintf(b, sizeof b, "%s/%slist_class.txt", dir, name);
    snprintf(c, sizeof c, "%s/%slist_direction.txt", dir, name);
    snprintf(d, sizeof d, "%s/%slist_item.txt", dir, name);
    f->csv = fopen(a, "w");
    f->by_class = fopen(b, "w");
    f->by_dir = fopen(c, "w");
    f->by_item = fopen(d, "w");
    if (!f->csv || !f->by_class || !f->by_dir || !f->by_item) return ct_error_set(err, CT_ERR_IO, "%s: cannot write: %s", dir, strerror(errno));
    fprintf(f->csv, "file,class,direction,item,distractor_item,distractor_direction,x0,y0\n");
    return CT_OK;
}

static ct_status close_split_files(split_files *f, const char *dir, ct_error *err) {
    bool ok = true;
    FILE *all[4] = {f->csv, f->by_class, f->by_dir, f->by_item};
    for (int i = 0; i < 4; i++)
        if (all[i]) ok = fclose(all[i]) == 0 && ok;
    memset(f, 0, sizeof *f);
    return ok ? CT_OK : ct_error_set(err, CT_ERR_IO, "%s: writing the lists failed", dir);
}

static ct_status make_split(const ct_mfm_params *p, int split, const char *dir, bool verbose, ct_error *err) {
    const char *name = split == 0 ? "train" : "test";
    int64_t count = split == 0 ? p->videos : p->test_videos;
    ct_fmnist_items d = {0};
    int64_t *pool = malloc((size_t)p->pool * sizeof *pool);
    uint8_t *canvas = malloc((size_t)p->size * p->size);
    split_files f = {0};
    ct_status st = pool && canvas ? ct_fmnist_items_load(p->fmnist_dir, split, &d, err) : ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    if (st == CT_OK) st = ct_fmnist_items_pool(&d, p->seed, 0x6d666d20u + (uint64_t)split, p->pool, pool, err);
    char sub[1100];
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    if (st == CT_OK) st = ct_dataset_mkdir(sub, err);
    for (int c = 0; st == CT_OK && c < 10; c++) {
        char cd[1200];
        snprintf(cd, sizeof cd, "%s/%s", sub, ct_fmnist_class_names[c]);
        st = ct_dataset_mkdir(cd, err);
    }
    if (st == CT_OK) st = open_split_files(dir, name, &f, err);
    const char *ext = ct_video_codec_ext(p->codec);
    for (int64_t v = 0; st == CT_OK && v < count; v++) {
        ct_mfm_scene s;
        ct_mfm_scene_of(p, split, v, pool, &s);
        int cls = d.labels[s.item];
        char rel[256], path[1400];
        snprintf(rel, sizeof rel, "%s/%s/v%06lld.%s", name, ct_fmnist_class_names[cls], (long long)v, ext);
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        st = encode_video(p, &s, d.images, path, canvas, err);
        fprintf(f.csv, "%s,%d,%d,%lld,%lld,%d,%.17g,%.17g\n", rel, cls, s.direction, (long long)s.item,
                (long long)s.distractor, s.distractor >= 0 ? s.distractor_direction : -1, s.x0, s.y0);
        /* split lists are relative to their root, here OUT/<split>/ */
        fprintf(f.by_class, "%s %d\n", strchr(rel, '/') + 1, cls + 1);
        fprintf(f.by_dir, "%s %d\n", strchr(rel, '/') + 1, s.direction + 1);
        fprintf(f.by_item, "%s %lld\n", strchr(rel, '/') + 1, (long long)(v % p->pool) + 1);
        if (verbose && (v + 1) % 500 == 0) fprintf(stderr, "make-dataset: %s: %lld/%lld videos\n", name, (long long)v + 1, (long long)count);
    }
    ct_status cs = close_split_files(&f, dir, st == CT_OK ? err : NULL);
    if (st == CT_OK) st = cs;
    ct_fmnist_items_free(&d);
    free(pool);
    free(canvas);
    return st;
}

/* itemInd.txt: one class per pool slot ("1 pool0000"), the label of the
 * *list_item.txt lists: which pool image a video shows (a slot names a
 * train image in the train split, a test image in the test split). */
static ct_status write_item_index(const ct_mfm_params *p, const char *dir, ct_error *err) {
    size_t n = (size_t)p->pool * 24 + 1;
    char *text = malloc(n), path[1200];
    if (!text) return ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    size_t at = 0;
    for (int k = 0; k < p->pool; k++) at += (size_t)snprintf(text + at, n - at, "%d pool%04d\n", k + 1, k);
    snprintf(path, sizeof path, "%s/itemInd.txt", dir);
    ct_status st = ct_dataset_write_text(path, text, err);
    free(text);
    return st;
}

static ct_status write_indexes(const char *dir, ct_error *err) {
    char text[1024] = "", path[1200];
    for (int c = 0; c < 10; c++) snprintf(text + strlen(text), sizeof text - strlen(text), "%d %s\n", c + 1, ct_fmnist_class_names[c]);
    snprintf(path, sizeof path, "%s/classInd.txt", dir);
    ct_status st = ct_dataset_write_text(path, text, err);
    text[0] = '\0';
    for (int k = 0; k < CT_MFM_DIRECTIONS; k++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%d %s\n", k + 1, direction_names[k]);
    snprintf(path, sizeof path, "%s/directionInd.txt", dir);
    return st == CT_OK ? ct_dataset_write_text(path, text, err) : st;
}



/* The folder's contents (ct_dataset_fill_fn). */
typedef struct mfm_fill {
    const ct_mfm_params *p;
    bool verbose;
} mfm_fill;

static ct_status fill(void *ctx, const char *dir, ct_error *err) {
    const mfm_fill *f = ctx;
    ct_status st = write_indexes(dir, err);
    if (st == CT_OK) st = write_item_index(f->p, dir, err);
    if (st == CT_OK) st = make_split(f->p, 0, dir, f->verbose, err);
    if (st == CT_OK && f->p->test_videos > 0) st = make_split(f->p, 1, dir, f->verbose, err);
    return st;
}

ct_status ct_mfm_make(const char *out, const ct_mfm_params *p, bool verbose, bool *reused, ct_error *err) {
    *reused = false;
    ct_status st = ct_mfm_validate(p, err);
    if (st != CT_OK) return st;
    char want[2048];
    params_text(p, want, sizeof want);
    mfm_fill f = {p, verbose};
    return ct_dataset_folder_make(out, "moving-fmnist", want, fill, &f, reused, err);
}
