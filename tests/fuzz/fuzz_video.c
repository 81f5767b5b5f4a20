/* libFuzzer harness: the video source (plugins/source/video): FFmpeg
 * probing and decoding of one file, the source's limits, seeking and
 * frame conversion.
 *
 * Input: byte 0 = flags (bit 0: gray instead of RGB, bit 1: verify =
 * false (headers only at open), bit 2: skip_bad, bit 3: resize to 12 x 16,
 * bit 4: clips of 3 frames 2 apart instead of 2 frames 1 apart), then the
 * one video file of the folder's one class. The limits are small here
 * (max_pixels 2^16, max_frames and max_decode_frames 512) so an input
 * decodes within the fuzzer's 2 s under AddressSanitizer; FFmpeg itself
 * is not instrumented, only contrast's side of it. */
#include <sys/stat.h>

#include "fuzz_util.h"

static const ct_source_ops *video;
static char root[600];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    video = fz_source(fz_plugin("video"), "video");
    snprintf(root, sizeof root, "%s/root", fz_dir());
    char cls[700];
    snprintf(cls, sizeof cls, "%s/class", root);
    if (mkdir(root, 0700) != 0 || mkdir(cls, 0700) != 0) fz_die("mkdir", cls);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned flags = data[0];
    fz_write("root/class/clip", data + 1, size - 1); /* no extension: FFmpeg probes the content */
    char text[1400];
    snprintf(text, sizeof text,
             "root = \"%s\"; channels = %d; verify = %s; skip_bad = %s; size = %s; frames = %d; stride = %d; "
             "index_dir = \"\"; max_pixels = 65536; max_frames = 512; max_decode_frames = 512;",
             root, flags & 1 ? 1 : 3, flags & 2 ? "false" : "true", flags & 4 ? "true" : "false",
             flags & 8 ? "[12, 16]" : "[]", flags & 16 ? 3 : 2, flags & 16 ? 2 : 1);
    fz_run_source(video, text);
    return 0;
}
