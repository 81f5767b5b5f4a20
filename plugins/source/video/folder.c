/* Folder listing shared by the video sources (video_core.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "video_core.h"

char *vd_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

ct_status vd_list_names(const char *who, const char *dir, bool want_dirs, char ***names, int *n, ct_error *err) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return ct_error_set(err, CT_ERR_IO, "%s: %s: cannot open folder: %s", who, dir, strerror(errno));
    int cap = 0;
    ct_status st = CT_OK;
    struct dirent *e;
    while (st == CT_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *full = vd_join(dir, e->d_name);
        struct stat sb;
        bool keep = full && stat(full, &sb) == 0 && (want_dirs ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode));
        free(full);
        if (!keep) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **v = realloc(*names, (size_t)cap * sizeof *v);
            if (!v) {
                st = ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory", who);
                break;
            }
            *names = v;
        }
        if (!((*names)[*n] = strdup(e->d_name))) st = ct_error_set(err, CT_ERR_NOMEM, "%s: out of memory", who);
        else (*n)++;
    }
    closedir(d);
    if (*n > 1) qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    return st;
}
