/* libFuzzer harness: the idx source (plugins/source/idx).
 *
 * Input: byte 0 = flags (bit 0: gzip the images file, bit 1: a labels file
 * follows, bit 2: gzip the labels file, bits 3-4: limit 0, 1, 2 or 1000),
 * bytes 1-2 = the images file's length L (little-endian, clamped to what
 * is left), then L bytes of images file, then the labels file. The source
 * runs with max_mb = 64, so what a header may make it allocate stays under
 * the fuzzer's -malloc_limit_mb. */
#include <zlib.h>

#include "fuzz_util.h"

static const ct_source_ops *idx;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    idx = fz_source(fz_plugin("idx"), "idx");
    return 0;
}

/* Write n bytes to <scratch>/name, gzip-compressed when gz. */
static const char *put(const char *name, const uint8_t *d, size_t n, bool gz) {
    if (!gz) return fz_write(name, d, n);
    const char *p = fz_write(name, "", 0);
    gzFile f = gzopen(p, "wb1");
    if (!f || (n && gzwrite(f, d, (unsigned)n) != (int)n) || gzclose(f) != Z_OK) fz_die("gzip", p);
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    static const int limits[4] = {0, 1, 2, 1000};
    unsigned flags = data[0];
    size_t len = (size_t)data[1] | (size_t)data[2] << 8;
    if (len > size - 3) len = size - 3;
    const char *images = put("images", data + 3, len, flags & 1);
    const char *labels = (flags & 2) ? put("labels", data + 3 + len, size - 3 - len, flags & 4) : "";
    char text[2048];
    snprintf(text, sizeof text, "images = \"%s\"; labels = \"%s\"; limit = %d; max_mb = 64;", images,
             labels, limits[(flags >> 3) & 3]);
    fz_run_source(idx, text);
    return 0;
}
