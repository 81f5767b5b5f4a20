/* The `video` source's own parts (the decoding core it shares with
 * `multiview` is video_core.h):
 *   listing.c   which files and labels (class folders, flat folder, split lists)
 *   video.c     the plugin: settings, create, get, get_frames, duration
 * Names are prefixed vd_; nothing here is exported from the .so. */
#ifndef CONTRAST_VIDEO_INTERNAL_H
#define CONTRAST_VIDEO_INTERNAL_H

#include "video_core.h"

/* ---- listing.c ------------------------------------------------------------ */

typedef struct vd_listing {
    vd_item *items;
    int64_t count, cap;
    char **classes; /* class names, label order */
    int n_classes;
} vd_listing;

/* root/<class>/<file> (sub-folders present) or root/<file> (flat,
 * unlabelled). Hidden entries are ignored; classes in name order. */
ct_status vd_list_folder(const char *root, vd_listing *out, ct_error *err);

/* UCF101/HMDB51-style lists: class_index ("1 ApplyEyeMakeup" per line) and
 * a list of paths relative to root ("Class/v_x.avi [label]" per line; the
 * label, 1-based as in classInd.txt, is taken from the line when present,
 * else from the path's first folder by class name). */
ct_status vd_list_split(const char *root, const char *class_index, const char *list, vd_listing *out,
                        ct_error *err);

/* HMDB51's own split files: splits/<class>_test_split<fold>.txt, lines
 * "<video file> <mark>" (1 train, 2 test, 0 unused); videos at
 * root/<class>/<video file>; classes in name order. */
ct_status vd_list_hmdb(const char *root, const char *splits, int fold, bool test, vd_listing *out, ct_error *err);

void vd_listing_free(vd_listing *l);

#endif
