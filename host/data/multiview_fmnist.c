/* Multi-view Fashion-MNIST (see multiview_fmnist.h): scenes, cameras,
 * rendering and the folder of encoded sequences. */
#include "data/multiview_fmnist.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_folder.h"
#include "data/fmnist_items.h"
#include "data/video_writer.h"

/* Stream keys of the set's random draws ("mvf" + what). */
#define KEY_CAMERA 0x6d766600u
#define KEY_SCENE 0x6d766610u
#define KEY_POOL 0x6d766620u
#define KEY_NOISE 0x6d766630u

void ct_mvf_defaults(ct_mvf_params *p) {
    memset(p, 0, sizeof *p);
    p->sequences = 60;
    p->test_sequences = 12;
    p->views = 2;
    p->frames = 24;
    p->size = 64;
    p->pool = 20;
    p->fps = 10;
    snprintf(p->codec, sizeof p->codec, "mpeg4");
    snprintf(p->fmnist_dir, sizeof p->fmnist_dir, "/usr/share/datasets/fashion-mnist");
}

ct_status ct_mvf_validate(const ct_mvf_params *p, ct_error *err) {
    if (p->sequences < 1 || p->sequences > 1000000 || p->test_sequences < 0 || p->test_sequences > 1000000)
        return ct_error_set(err, CT_ERR_INVALID, "--sequences must be 1..1e6 and --test-sequences 0..1e6");
    if (p->views < 2 || p->views > CT_MVF_MAX_VIEWS)
        return ct_error_set(err, CT_ERR_INVALID, "--views %d: 2..%d cameras", p->views, CT_MVF_MAX_VIEWS);
    if (p->frames < 4 || p->frames > 10000)
        return ct_error_set(err, CT_ERR_INVALID, "--frames %d: a sequence needs 4..10000 frames", p->frames);
    if (p->size < 48 || p->size > 1024 || p->size % 2)
        return ct_error_set(err, CT_ERR_INVALID, "--size %d: the world must be even and 48..1024 pixels (the item is %d)",
                            p->size, CT_FMNIST_ITEM);
    if (p->pool < 10 || p->pool % 10 || p->pool > 6000)
        return ct_error_set(err, CT_ERR_INVALID, "--pool %d: a multiple of 10 (items per class x 10), 10..6000", p->pool);
    if (p->fps < 1 || p->fps > 1000) return ct_error_set(err, CT_ERR_INVALID, "--fps %d: 1..1000", p->fps);
    if (!ct_video_codec_ext(p->codec))
        return ct_error_set(err, CT_ERR_INVALID, "--codec %s: one of mpeg4, h264, vp9, ffv1", p->codec);
    return ct_video_codec_check(p->codec, err);
}

/* ---- cameras and scenes ------------------------------------------------------ */

static double range(ct_rng *r, double lo, double hi) { return lo + (hi - lo) * ct_rng_uniform(r); }

void ct_mvf_camera_of(const ct_mvf_params *p, int v, ct_mvf_camera *c) {
    ct_rng r;
    ct_rng_init_keyed(&r, p->seed, KEY_CAMERA, (uint64_t)v, 0);
    memset(c, 0, sizeof *c);
    c->rotation_deg = range(&r, -30.0, 30.0);
    c->scale = range(&r, 0.85, 1.15);
    c->shear = range(&r, -0.25, 0.25);
    c->dx = range(&r, -0.08, 0.08) * p->size;
    c->dy = range(&r, -0.08, 0.08) * p->size;
    c->contrast = range(&r, 0.6, 1.3);
    c->brightness = range(&r, -20.0, 40.0);
    c->blur = ct_rng_uniform(&r) < 0.5;
    c->noise = range(&r, 2.0, 10.0);
}

void ct_mvf_scene_of(const ct_mvf_params *p, int split, int64_t q, const int64_t *pool, ct_mvf_scene *s) {
    ct_rng r;
    ct_rng_init_keyed(&r, p->seed, KEY_SCENE + (uint64_t)split, (uint64_t)q, 0);
    memset(s, 0, sizeof *s);
    s->item = pool[ct_rng_below(&r, (uint32_t)p->pool)];
    s->wobble = range(&r, 0.0, 3.0);
    s->waves = 1 + (int)ct_rng_below(&r, 2);
    /* corners keep the item and its wobble inside the world */
    double lo = s->wobble, hi = p->size - CT_FMNIST_ITEM - s->wobble, need = (p->size - CT_FMNIST_ITEM) / 1.5;
    do { /* ends far enough apart that the item crosses much of the world */
        s->x0 = range(&r, lo, hi), s->y0 = range(&r, lo, hi);
        s->x1 = range(&r, lo, hi), s->y1 = range(&r, lo, hi);
    } while (hypot(s->x1 - s->x0, s->y1 - s->y0) < need);
}

void ct_mvf_position(const ct_mvf_params *p, const ct_mvf_scene *s, int t, double *x, double *y) {
    double u = (double)t / (p->frames - 1), dx = s->x1 - s->x0, dy = s->y1 - s->y0, len = hypot(dx, dy);
    double side = s->wobble * sin(M_PI * s->waves * u);
    /* (-dy, dx) / len is the unit normal: the sideways part never moves
     * the position along (dx, dy), which grows with u, so no revisit */
    *x = s->x0 + u * dx - side * dy / len;
    *y = s->y0 + u * dy + side * dx / len;
}

/* Bilinear sample of a size x size float plane at (u, v), zero outside. */
static float bilinear(const float *w, int size, double u, double v) {
    int i0 = (int)floor(u), j0 = (int)floor(v);
    double fu = u - i0, fv = v - j0, acc = 0.0;
    for (int dj = 0; dj < 2; dj++)
        for (int di = 0; di < 2; di++) {
            int i = i0 + di, j = j0 + dj;
            if (i < 0 || j < 0 || i >= size || j >= size) continue;
            acc += (di ? fu : 1.0 - fu) * (dj ? fv : 1.0 - fv) * w[(size_t)j * size + i];
        }
    return (float)acc;
}

/* The world at frame t: the item at its position on black. */
static void draw_world(const ct_mvf_params *p, const ct_mvf_scene *s, const uint8_t *images, int t, float *world) {
    const int S = p->size, I = CT_FMNIST_ITEM;
    const uint8_t *img = images + (size_t)s->item * I * I;
    float item[CT_FMNIST_ITEM * CT_FMNIST_ITEM];
    for (int k = 0; k < I * I; k++) item[k] = img[k];
    double x, y;
    ct_mvf_position(p, s, t, &x, &y);
    for (int j = 0; j < S; j++)
        for (int i = 0; i < S; i++) world[(size_t)j * S + i] = bilinear(item, I, i - x, j - y);
}

void ct_mvf_render(const ct_mvf_params *p, const ct_mvf_scene *s, const ct_mvf_camera *c, const uint8_t *images,
                   int split, int64_t q, int view, int t, float *world, uint8_t *out) {
    const int S = p->size;
    draw_world(p, s, images, t, world);
    /* image = centre + A (world - centre) + d with A = R(theta) [[k, sh], [0, k]];
     * each image pixel samples the world at A^-1 (image - centre - d) + centre */
    double th = c->rotation_deg * M_PI / 180.0, k = c->scale, sh = c->shear;
    double a = cos(th) * k, b = cos(th) * sh - sin(th) * k, cc = sin(th) * k, d = sin(th) * sh + cos(th) * k;
    double det = a * d - b * cc, ia = d / det, ib = -b / det, ic = -cc / det, id = a / det, mid = (S - 1) / 2.0;
    ct_rng r;
    ct_rng_init_keyed(&r, p->seed, KEY_NOISE + (uint64_t)split, (uint64_t)q, (uint64_t)view * 100003u + (uint64_t)t);
    float *cam = malloc((size_t)S * S * sizeof *cam);
    if (!cam) { /* a defined (black) frame even without memory */
        memset(out, 0, (size_t)S * S);
        return;
    }
    for (int j = 0; j < S; j++)
        for (int i = 0; i < S; i++) {
            double u = i - mid - c->dx, v = j - mid - c->dy;
            cam[(size_t)j * S + i] = bilinear(world, S, ia * u + ib * v + mid, ic * u + id * v + mid);
        }
    for (int j = 0; j < S; j++)
        for (int i = 0; i < S; i++) {
            double v = cam[(size_t)j * S + i];
            if (c->blur) { /* 3x3 box, edges clamped */
                double acc = 0.0;
                for (int dj = -1; dj <= 1; dj++)
                    for (int di = -1; di <= 1; di++) {
                        int y = j + dj < 0 ? 0 : j + dj >= S ? S - 1 : j + dj, x = i + di < 0 ? 0 : i + di >= S ? S - 1 : i + di;
                        acc += cam[(size_t)y * S + x];
                    }
                v = acc / 9.0;
            }
            v = c->contrast * v + c->brightness + c->noise * ct_rng_normal(&r);
            out[(size_t)j * S + i] = (uint8_t)(v < 0.0 ? 0 : v > 255.0 ? 255 : (int)(v + 0.5));
        }
    free(cam);
}

/* ---- writing -------------------------------------------------------------------- */

static void params_text(const ct_mvf_params *p, char *buf, size_t n) {
    snprintf(buf, n,
             "multiview-fmnist 1\nsequences = %lld\ntest_sequences = %lld\nviews = %d\nframes = %d\nsize = %d\n"
             "pool = %d\nfps = %d\nseed = %llu\ncodec = %s\nfmnist = %s\n",
             (long long)p->sequences, (long long)p->test_sequences, p->views, p->frames, p->size, p->pool, p->fps,
             (unsigned long long)p->seed, p->codec, p->fmnist_dir);
}

static ct_status encode_camera(const ct_mvf_params *p, const ct_mvf_scene *s, const ct_mvf_camera *c,
                               const uint8_t *images, int split, int64_t q, int view, const char *path, float *world,
                               uint8_t *frame, ct_error *err) {
    ct_video_writer *w;
    ct_status st = ct_video_writer_open(path, p->codec, p->size, p->size, p->fps, 8, &w, err);
    for (int t = 0; st == CT_OK && t < p->frames; t++) {
        ct_mvf_render(p, s, c, images, split, q, view, t, world, frame);
        st = ct_video_writer_frame(w, frame, err);
    }
    ct_status cs = ct_video_writer_close(w, st != CT_OK, st == CT_OK ? err : NULL);
    return st != CT_OK ? st : cs;
}

/* One sequence folder: a video per camera. */
static ct_status make_sequence(const ct_mvf_params *p, const ct_mvf_camera *cams, const ct_fmnist_items *d,
                               const ct_mvf_scene *s, int split, int64_t q, const char *sub, float *world,
                               uint8_t *frame, ct_error *err) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/seq%06lld", sub, (long long)q);
    ct_status st = ct_dataset_mkdir(dir, err);
    for (int v = 0; st == CT_OK && v < p->views; v++) {
        char path[1300];
        snprintf(path, sizeof path, "%s/view%d.%s", dir, v, ct_video_codec_ext(p->codec));
        st = encode_camera(p, s, &cams[v], d->images, split, q, v, path, world, frame, err);
    }
    return st;
}

static ct_status make_split(const ct_mvf_params *p, const ct_mvf_camera *cams, int split, const char *dir,
                            bool verbose, ct_error *err) {
    const char *name = split == 0 ? "train" : "test";
    int64_t count = split == 0 ? p->sequences : p->test_sequences;
    ct_fmnist_items d = {0};
    int64_t *pool = malloc((size_t)p->pool * sizeof *pool);
    float *world = malloc((size_t)p->size * p->size * sizeof *world);
    uint8_t *frame = malloc((size_t)p->size * p->size);
    char sub[1100], csv_path[1100];
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    snprintf(csv_path, sizeof csv_path, "%s/%s.csv", dir, name);
    FILE *csv = NULL;
    ct_status st = pool && world && frame ? ct_fmnist_items_load(p->fmnist_dir, split, &d, err)
                                          : ct_error_set(err, CT_ERR_NOMEM, "out of memory");
    if (st == CT_OK) st = ct_fmnist_items_pool(&d, p->seed, KEY_POOL + (uint64_t)split, p->pool, pool, err);
    if (st == CT_OK) st = ct_dataset_mkdir(sub, err);
    if (st == CT_OK && !(csv = fopen(csv_path, "w")))
        st = ct_error_set(err, CT_ERR_IO, "%s: cannot write: %s", csv_path, strerror(errno));
    if (csv) fprintf(csv, "sequence,item,class,x0,y0,x1,y1,wobble,waves\n");
    for (int64_t q = 0; st == CT_OK && q < count; q++) {
        ct_mvf_scene s;
        ct_mvf_scene_of(p, split, q, pool, &s);
        st = make_sequence(p, cams, &d, &s, split, q, sub, world, frame, err);
        fprintf(csv, "seq%06lld,%lld,%d,%.17g,%.17g,%.17g,%.17g,%.17g,%d\n", (long long)q, (long long)s.item,
                d.labels[s.item], s.x0, s.y0, s.x1, s.y1, s.wobble, s.waves);
        if (verbose && (q + 1) % 50 == 0)
            fprintf(stderr, "make-dataset: %s: %lld/%lld sequences\n", name, (long long)q + 1, (long long)count);
    }
    if (csv && fclose(csv) != 0 && st == CT_OK) st = ct_error_set(err, CT_ERR_IO, "%s: writing failed", csv_path);
    ct_fmnist_items_free(&d);
    free(pool);
    free(world);
    free(frame);
    return st;
}

static ct_status write_cameras(const char *dir, const ct_mvf_params *p, const ct_mvf_camera *cams, ct_error *err) {
    char text[4096] = "view,rotation_deg,scale,shear,dx,dy,contrast,brightness,blur,noise\n", path[1200];
    for (int v = 0; v < p->views; v++) {
        const ct_mvf_camera *c = &cams[v];
        size_t used = strlen(text);
        snprintf(text + used, sizeof text - used, "%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%d,%.6g\n", v, c->rotation_deg,
                 c->scale, c->shear, c->dx, c->dy, c->contrast, c->brightness, c->blur, c->noise);
    }
    snprintf(path, sizeof path, "%s/cameras.csv", dir);
    return ct_dataset_write_text(path, text, err);
}

typedef struct mvf_fill {
    const ct_mvf_params *p;
    bool verbose;
} mvf_fill;

static ct_status fill(void *ctx, const char *dir, ct_error *err) {
    const mvf_fill *f = ctx;
    ct_mvf_camera cams[CT_MVF_MAX_VIEWS];
    for (int v = 0; v < f->p->views; v++) ct_mvf_camera_of(f->p, v, &cams[v]);
    ct_status st = write_cameras(dir, f->p, cams, err);
    if (st == CT_OK) st = make_split(f->p, cams, 0, dir, f->verbose, err);
    if (st == CT_OK && f->p->test_sequences > 0) st = make_split(f->p, cams, 1, dir, f->verbose, err);
    return st;
}

ct_status ct_mvf_make(const char *out, const ct_mvf_params *p, bool verbose, bool *reused, ct_error *err) {
    *reused = false;
    ct_status st = ct_mvf_validate(p, err);
    if (st != CT_OK) return st;
    char want[2048];
    params_text(p, want, sizeof want);
    mvf_fill f = {p, verbose};
    return ct_dataset_folder_make(out, "multiview-fmnist", want, fill, &f, reused, err);
}
