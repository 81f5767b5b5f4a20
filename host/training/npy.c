/* NumPy .npy writers (see npy.h). */
#include "training/npy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* .npy v1.0: magic, version, little-endian u16 header length, a Python
 * dict literal padded with spaces and ended by '\n' so that the data
 * starts at a multiple of 64 bytes. */
static ct_status write_npy(const char *path, const char *descr, const void *data, size_t elem,
                           int64_t rows, int64_t cols, bool overwrite, ct_error *err) {
    char shape[64], dict[256];
    if (cols >= 0)
        snprintf(shape, sizeof shape, "(%lld, %lld)", (long long)rows, (long long)cols);
    else
        snprintf(shape, sizeof shape, "(%lld,)", (long long)rows);
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                       descr, shape);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    memset(dict + len, ' ', (size_t)pad);
    dict[len + pad] = '\n';
    uint16_t hlen = (uint16_t)(len + pad + 1);
    /* A temp file put in place at the end: never a half-written .npy, and
     * without overwrite never a file that appeared meanwhile replaced. */
    char tmp[1200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return ct_error_set(err, CT_ERR_INVALID, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return ct_error_set(err, CT_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                              (unsigned char)(hlen >> 8)};
    size_t count = (size_t)rows * (size_t)(cols >= 0 ? cols : 1);
    bool ok = fwrite(head, 1, 10, f) == 10 && fwrite(dict, 1, hlen, f) == hlen &&
              (count == 0 || fwrite(data, elem, count, f) == count);
    if (fclose(f) != 0) ok = false;
    if (!ok) {
        int e = errno;
        unlink(tmp);
        return ct_error_set(err, CT_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    /* link() refuses an existing name, atomically; rename() replaces it.
     * Where links are not supported, a check then rename comes close. */
    bool placed = overwrite ? rename(tmp, path) == 0 : link(tmp, path) == 0;
    if (!placed && !overwrite && (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP)) {
        if (access(path, F_OK) == 0)
            errno = EEXIST;
        else if (rename(tmp, path) == 0)
            return CT_OK;
    }
    if (!placed) {
        int e = errno;
        unlink(tmp);
        if (e == EEXIST) return ct_error_set(err, CT_ERR_EXISTS, "%s already exists (--force overwrites it)", path);
        return ct_error_set(err, CT_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    if (!overwrite) unlink(tmp);
    return CT_OK;
}

ct_status ct_write_npy_f32(const char *path, const float *data, int64_t rows, int64_t cols, bool overwrite,
                           ct_error *err) {
    return write_npy(path, "<f4", data, sizeof(float), rows, cols, overwrite, err);
}

ct_status ct_write_npy_i32(const char *path, const int32_t *data, int64_t rows, bool overwrite, ct_error *err) {
    return write_npy(path, "<i4", data, sizeof(int32_t), rows, -1, overwrite, err);
}
