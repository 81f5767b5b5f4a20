/* A generated dataset folder (dataset_folder.h). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "data/dataset_folder.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ct_status ct_dataset_mkdir(const char *path, ct_error *err) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return CT_OK;
    return ct_error_set(err, CT_ERR_IO, "%s: cannot create the folder: %s", path, strerror(errno));
}

ct_status ct_dataset_write_text(const char *path, const char *text, ct_error *err) {
    FILE *f = fopen(path, "w");
    bool ok = f && fputs(text, f) >= 0;
    if (f) ok = fclose(f) == 0 && ok;
    return ok ? CT_OK : ct_error_set(err, CT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

/* Remove the partial folder an interrupted make left (our own, by name). */
static void remove_tree(const char *dir) {
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "make-dataset: could not remove %s: %s\n", dir, strerror(errno));
}

/* The params.txt of an existing folder, or "" when it has none. */
static void existing_params(const char *out, char *buf, size_t n) {
    char path[1100];
    snprintf(path, sizeof path, "%s/params.txt", out);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
    fclose(f);
}

ct_status ct_dataset_folder_make(const char *out, const char *kind, const char *params, ct_dataset_fill_fn fill,
                                 void *ctx, bool *reused, ct_error *err) {
    *reused = false;
    char have[4096];
    struct stat sb;
    if (stat(out, &sb) == 0) {
        existing_params(out, have, sizeof have);
        if (strcmp(params, have) == 0) {
            *reused = true;
            return CT_OK;
        }
        return ct_error_set(err, CT_ERR_EXISTS,
                            "%s exists and is not a %s set with these parameters; remove it or choose another folder",
                            out, kind);
    }
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.partial-%ld", out, (long)getpid());
    /* the folders above OUT ("data/" of data/moving-fmnist) */
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            ct_status st = ct_dataset_mkdir(tmp, err);
            *p = '/';
            if (st != CT_OK) return st;
        }
    ct_status st = ct_dataset_mkdir(tmp, err);
    if (st != CT_OK) return st;
    st = fill(ctx, tmp, err);
    char path[1200];
    snprintf(path, sizeof path, "%s/params.txt", tmp);
    if (st == CT_OK) st = ct_dataset_write_text(path, params, err);
    if (st == CT_OK && rename(tmp, out) != 0)
        st = ct_error_set(err, CT_ERR_IO, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
    if (st != CT_OK) remove_tree(tmp);
    return st;
}
