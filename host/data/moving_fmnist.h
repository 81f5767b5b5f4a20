/* Moving Fashion-MNIST: a labelled video set for the video pipelines
 * (`contrast make-dataset moving-fmnist`).
 *
 * Each video shows one Fashion-MNIST item (train items for the train
 * split, test items for the test split) drifting across an S x S black
 * canvas at a constant speed along one of 8 directions; direction k moves
 * at 45k degrees counter-clockwise from "right" (0 right, 2 up, 4 left, 6
 * down; image rows grow downward). The canvas wraps around (a torus): an
 * item leaving one edge enters at the opposite one, so the direction never
 * changes within a video and an item's position says nothing about its
 * direction. Optionally a second item of the pool (the distractor) drifts
 * in its own random direction; the two are composited by maximum.
 *
 * The trap of such data (DESIGN.md): when every video shows a different
 * item, two videos are told apart by appearance alone. So each split draws
 * a small class-balanced pool of items and every item appears in many
 * videos with every direction (video v shows pool item v mod P, direction
 * (v div P + a per-item offset) mod 8); only motion tells two videos of
 * the same item apart.
 *
 * Layout written under OUT:
 *   train/<class>/v000000.avi ...  test/<class>/...   (class = "0_tshirt_top" ...)
 *   train.csv, test.csv     file,class,direction,item,distractor_item,distractor_direction,x0,y0
 *   classInd.txt, directionInd.txt     UCF101-style class indexes
 *   itemInd.txt             one class per pool slot (which pool image a video shows)
 *   {train,test}list_{class,direction,item}.txt   split lists by each label
 *   params.txt              the parameters; a folder with the same ones is reused
 *                           (format 2 added the item lists: a format-1 folder is refused)
 * The set is built in OUT.partial-<pid> and renamed at the end. */
#ifndef CONTRAST_HOST_MOVING_FMNIST_H
#define CONTRAST_HOST_MOVING_FMNIST_H

#include <stdbool.h>
#include <stdint.h>

#include "contrast/contrast.h"

#define CT_MFM_ITEM 28   /* Fashion-MNIST item size */
#define CT_MFM_DIRECTIONS 8

typedef struct ct_mfm_params {
    int64_t videos;      /* train videos */
    int64_t test_videos; /* test videos */
    int frames;          /* frames per video */
    int size;            /* canvas side S (even, >= 28) */
    int pool;            /* items per split, a multiple of 10 (class-balanced) */
    int fps;
    double speed;        /* pixels per frame */
    double distractor;   /* probability of a distractor item per video */
    uint64_t seed;
    char codec[16];      /* video_writer.h's names: mpeg4, h264, vp9, ffv1 */
    char fmnist_dir[512];/* folder of the four Fashion-MNIST .gz files */
} ct_mfm_params;

/* Defaults: 1000 train / 200 test videos of 16 frames, 64x64, pool 50,
 * 10 fps, 2 px per frame, no distractor, seed 0, mpeg4, Debian's
 * /usr/share/datasets/fashion-mnist. */
void ct_mfm_defaults(ct_mfm_params *p);

/* Check the parameters (each error names the option). */
ct_status ct_mfm_validate(const ct_mfm_params *p, ct_error *err);

/* One video's scene: items, directions and start positions. */
typedef struct ct_mfm_scene {
    int64_t item, distractor;     /* indices into the split's images; distractor -1 when none */
    int direction, distractor_direction;
    double x0, y0, dx0, dy0;      /* start positions (pixels) of the item and the distractor */
} ct_mfm_scene;

/* The scene of video v of a split (0 train, 1 test) given the split's pool. */
void ct_mfm_scene_of(const ct_mfm_params *p, int split, int64_t v, const int64_t *pool, ct_mfm_scene *s);

/* Render frame t of a scene into canvas (size*size bytes) from the items
 * (28x28 bytes each, row-major). */
void ct_mfm_render(const ct_mfm_params *p, const ct_mfm_scene *s, const uint8_t *images, int t, uint8_t *canvas);

/* Make the set in `out` (or find it made: *reused = true). Logs progress
 * lines to stderr when `verbose`. */
ct_status ct_mfm_make(const char *out, const ct_mfm_params *p, bool verbose, bool *reused, ct_error *err);

#endif
