/* libFuzzer harness: the imagefolder source (plugins/source/imagefolder),
 * i.e. its PNG (libpng) and JPEG (libjpeg) decoding, header checks,
 * channel conversion and resizing.
 *
 * Input: byte 0 = flags (bits 0-1: channels 0, 1, 3 or 0; bit 2: resize to
 * 12 x 20; bit 3: verify = false (headers only at open); bit 4: cache;
 * bit 5: skip_bad), then the one image file of the folder's one class.
 * max_pixels is 2^20 here (a megapixel decodes well within the fuzzer's
 * 2 s per input under AddressSanitizer); the default is 100 megapixels. */
#include <sys/stat.h>

#include "fuzz_util.h"

static const ct_source_ops *folder;
static char root[600];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    folder = fz_source(fz_plugin("imagefolder"), "imagefolder");
    snprintf(root, sizeof root, "%s/root", fz_dir());
    char cls[700];
    snprintf(cls, sizeof cls, "%s/class", root);
    if (mkdir(root, 0700) != 0 || mkdir(cls, 0700) != 0) fz_die("mkdir", cls);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const int channels[4] = {0, 1, 3, 0};
    unsigned flags = data[0];
    fz_write("root/class/image", data + 1, size - 1);
    char text[1200];
    snprintf(text, sizeof text,
             "root = \"%s\"; channels = %d; size = %s; verify = %s; cache = %s; skip_bad = %s; "
             "max_pixels = 1048576;",
             root, channels[flags & 3], flags & 4 ? "[12, 20]" : "[]", flags & 8 ? "false" : "true",
             flags & 16 ? "true" : "false", flags & 32 ? "true" : "false");
    fz_run_source(folder, text);
    return 0;
}
