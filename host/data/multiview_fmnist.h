/* Multi-view Fashion-MNIST: synchronised multi-camera sequences for the
 * time-contrastive (tcn) pipelines (`contrast make-dataset multiview-fmnist`).
 *
 * Scene: one Fashion-MNIST item (train items for the train split, test
 * items for the test split, from a class-balanced pool) moves over an
 * S x S black "world" along a path that never revisits a position: from a
 * start p0 to an end p1 (at least S/3 apart) with a sideways sine wobble,
 *   p(u) = p0 + u (p1 - p0) + a sin(pi w u) n,   u = t / (T - 1),
 * n the unit normal of p1 - p0, so the position's projection on p1 - p0
 * grows strictly with t and no two frames show the item at one place. The
 * item's position therefore tells the time, but only once an encoder sees
 * through the cameras' differences.
 *
 * Cameras: V fixed cameras, the same for every sequence, each with its
 * own affine warp of the world (rotation, scale, shear about the centre,
 * then an offset) and photometric differences (contrast gain, brightness
 * offset, a 3x3 blur or none, Gaussian pixel noise drawn per frame). All
 * cameras see the same instants: frame t of every camera is world time t.
 *
 * Layout written under OUT:
 *   train/seq000000/view0.avi, view1.avi, ...   test/seq000000/...
 *   train.csv, test.csv   sequence,item,class,x0,y0,x1,y1,wobble,waves
 *   cameras.csv           view,rotation_deg,scale,shear,dx,dy,contrast,brightness,blur,noise
 *   params.txt            the parameters; a folder with the same ones is reused
 * Built in OUT.partial-<pid> and renamed at the end (dataset_folder.h). */
#ifndef CONTRAST_HOST_MULTIVIEW_FMNIST_H
#define CONTRAST_HOST_MULTIVIEW_FMNIST_H

#include <stdbool.h>
#include <stdint.h>

#include "contrast/contrast.h"

#define CT_MVF_MAX_VIEWS 16

typedef struct ct_mvf_params {
    int64_t sequences;      /* train sequences */
    int64_t test_sequences; /* test (held-out) sequences */
    int views;              /* cameras, 2..CT_MVF_MAX_VIEWS */
    int frames;             /* frames per sequence */
    int size;               /* world and camera side S (even, >= 32) */
    int pool;               /* items per split, a multiple of 10 */
    int fps;
    uint64_t seed;
    char codec[16];         /* video_writer.h's names */
    char fmnist_dir[512];
} ct_mvf_params;

/* Defaults: 60 train / 12 test sequences, 2 cameras, 32 frames, 48x48,
 * pool 20, 10 fps, seed 0, mpeg4, /usr/share/datasets/fashion-mnist. */
void ct_mvf_defaults(ct_mvf_params *p);

/* Check the parameters (each error names the option). */
ct_status ct_mvf_validate(const ct_mvf_params *p, ct_error *err);

/* One camera: world -> image. */
typedef struct ct_mvf_camera {
    double rotation_deg, scale, shear, dx, dy; /* warp about the centre, then the offset */
    double contrast, brightness;               /* out = contrast * v + brightness (levels) */
    int blur;                                  /* 1: 3x3 box blur */
    double noise;                              /* Gaussian noise sigma (levels) */
} ct_mvf_camera;

/* Camera v of a set (the same for both splits). */
void ct_mvf_camera_of(const ct_mvf_params *p, int v, ct_mvf_camera *c);

/* Sequence q of a split (0 train, 1 test): its item and path. */
typedef struct ct_mvf_scene {
    int64_t item;             /* index into the split's images */
    double x0, y0, x1, y1;    /* the item's top-left corner at the first and last frame */
    double wobble;            /* sideways amplitude (pixels) */
    int waves;                /* half sine waves over the path */
} ct_mvf_scene;

void ct_mvf_scene_of(const ct_mvf_params *p, int split, int64_t q, const int64_t *pool, ct_mvf_scene *s);

/* The item's top-left corner at frame t. */
void ct_mvf_position(const ct_mvf_params *p, const ct_mvf_scene *s, int t, double *x, double *y);

/* Frame t of camera c (size*size bytes) of sequence q in split `split`;
 * `world` is size*size floats of scratch. The noise stream is keyed by
 * (seed, split, q, view, t), so a frame renders the same every time. */
void ct_mvf_render(const ct_mvf_params *p, const ct_mvf_scene *s, const ct_mvf_camera *c, const uint8_t *images,
                   int split, int64_t q, int view, int t, float *world, uint8_t *out);

/* Make the set in `out` (or find it made: *reused = true). */
ct_status ct_mvf_make(const char *out, const ct_mvf_params *p, bool verbose, bool *reused, ct_error *err);

#endif
