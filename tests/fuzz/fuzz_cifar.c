/* libFuzzer harness: the cifar source (plugins/source/cifar).
 *
 * Input: byte 0 = flags (bit 0: CIFAR-100 instead of CIFAR-10, bit 1:
 * coarse labels, bits 2-3: limit 0, 1, 2 or 5), then the batch file. */
#include "fuzz_util.h"

static const ct_source_ops *cifar;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    cifar = fz_source(fz_plugin("cifar"), "cifar");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const int limits[4] = {0, 1, 2, 5};
    unsigned flags = data[0];
    const char *path = fz_write("batch.bin", data + 1, size - 1);
    char text[1200];
    snprintf(text, sizeof text, "files = [\"%s\"]; variant = %d; label = \"%s\"; limit = %d;", path,
             flags & 1 ? 100 : 10, flags & 2 ? "coarse" : "fine", limits[(flags >> 2) & 3]);
    fz_run_source(cifar, text);
    return 0;
}
