/* Which files make the dataset: class folders, a flat folder, or the
 * split lists UCF101 and HMDB51 are distributed with. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "video_internal.h"

void vd_listing_free(vd_listing *l) {
    for (int64_t i = 0; i < l->count; i++) free(l->items[i].path);
    free(l->items);
    for (int c = 0; c < l->n_classes; c++) free(l->classes[c]);
    free(l->classes);
    memset(l, 0, sizeof *l);
}

static ct_status add_item(vd_listing *l, char *path, int32_t label, ct_error *err) {
    if (l->count == l->cap) {
        int64_t nc = l->cap ? l->cap * 2 : 256;
        vd_item *v = realloc(l->items, (size_t)nc * sizeof *v);
        if (!v) {
            free(path);
            return ct_error_set(err, CT_ERR_NOMEM, "video: out of memory");
        }
        l->items = v;
        l->cap = nc;
    }
    memset(&l->items[l->count], 0, sizeof l->items[0]);
    l->items[l->count].path = path;
    l->items[l->count].label = label;
    l->count++;
    return CT_OK;
}


static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Every file of `dir` as an item with `label`. */
static ct_status add_files(vd_listing *l, const char *dir, int32_t label, ct_error *err) {
    char **files;
    int nf;
    ct_status st = vd_list_names("video", dir, false, &files, &nf, err);
    for (int i = 0; st == CT_OK && i < nf; i++) {
        char *p = vd_join(dir, files[i]);
        st = p ? add_item(l, p, label, err) : ct_error_set(err, CT_ERR_NOMEM, "video: out of memory");
    }
    free_names(files, nf);
    return st;
}

ct_status vd_list_folder(const char *root, vd_listing *out, ct_error *err) {
    memset(out, 0, sizeof *out);
    char **dirs;
    int nd;
    ct_status st = vd_list_names("video", root, true, &dirs, &nd, err);
    if (st != CT_OK) {
        free_names(dirs, nd);
        return st;
    }
    if (nd == 0) return add_files(out, root, -1, err);
    out->classes = dirs;
    out->n_classes = nd;
    for (int c = 0; st == CT_OK && c < nd; c++) {
        char *dir = vd_join(root, dirs[c]);
        st = dir ? add_files(out, dir, c, err) : ct_error_set(err, CT_ERR_NOMEM, "video: out of memory");
        free(dir);
    }
    return st;
}

/* ---- split lists -------------------------------------------------------------- */

/* Strip trailing whitespace (CR of lists written on Windows included). */
static void chomp(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
}

/* classInd.txt: "<k> <name>" with k = 1, 2, ... in order. */
static ct_status read_class_index(const char *path, vd_listing *l, ct_error *err) {
    FILE *f = fopen(path, "r");
    if (!f) return ct_error_set(err, CT_ERR_IO, "video: %s: cannot open the class index: %s", path, strerror(errno));
    char line[1024];
    int lineno = 0, cap = 0;
    ct_status st = CT_OK;
    while (st == CT_OK && fgets(line, sizeof line, f)) {
        lineno++;
        chomp(line);
        if (!line[0]) continue;
        int k = 0, used = 0;
        if (sscanf(line, "%d %n", &k, &used) != 1 || !line[used] || k != l->n_classes + 1) {
            st = ct_error_set(err, CT_ERR_FORMAT,
                              "video: %s:%d: expected \"%d <class name>\" (classes numbered from 1 in order), got \"%.60s\"",
                              path, lineno, l->n_classes + 1, line);
            break;
        }
        if (l->n_classes == cap) {
            cap = cap ? cap * 2 : 64;
            char **v = realloc(l->classes, (size_t)cap * sizeof *v);
            if (!v) {
                st = ct_error_set(err, CT_ERR_NOMEM, "video: out of memory");
                break;
            }
            l->classes = v;
        }
        if (!(l->classes[l->n_classes] = strdup(line + used))) st = ct_error_set(err, CT_ERR_NOMEM, "video: out of memory");
        else l->n_classes++;
    }
    fclose(f);
    if (st == CT_OK && l->n_classes == 0) st = ct_error_set(err, CT_ERR_FORMAT, "video: %s: no classes", path);
    return st;
}

static int32_t class_of_path(const vd_listing *l, const char *rel) {
    const char *slash = strchr(rel, '/');
    if (!slash) return -1;
    size_t n = (size_t)(slash - rel);
    for (int c = 0; c < l->n_classes; c++)
        if (strlen(l->classes[c]) == n && strncmp(l->classes[c], rel, n) == 0) return c;
    return -1;
}

/* One list line: "<relative path>[ <label>]". */
static ct_status parse_list_line(vd_listing *l, const char *root, const char *list, int lineno, char *line,
                                 ct_error *err) {
    char *sp = strrchr(line, ' ');
    int32_t label = -1;
    if (sp) {
        char *end;
        long k = strtol(sp + 1, &end, 10);
        if (*end || k < 1 || k > l->n_classes)
            return ct_error_set(err, CT_ERR_FORMAT, "video: %s:%d: label '%s' is not a class number 1..%d",
                                list, lineno, sp + 1, l->n_classes);
        label = (int32_t)k - 1;
        *sp = '\0';
        chomp(line);
    }
    int32_t by_path = class_of_path(l, line);
    if (label < 0) label = by_path;
    if (label < 0)
        return ct_error_set(err, CT_ERR_FORMAT,
                            "video: %s:%d: '%s' has no label and its folder is not a class of the class index",
                            list, lineno, line);
    if (by_path >= 0 && by_path != label)
        return ct_error_set(err, CT_ERR_FORMAT, "video: %s:%d: '%s' is labelled %d (%s) but lies in folder %s", list,
                            lineno, line, label + 1, l->classes[label], l->classes[by_path]);
    if (line[0] == '/' || strstr(line, "../"))
        return ct_error_set(err, CT_ERR_FORMAT, "video: %s:%d: '%s' must be a path relative to root", list, lineno,
                            line);
    char *p = vd_join(root, line);
    return p ? add_item(l, p, label, err) : ct_error_set(err, CT_ERR_NOMEM, "video: out of memory");
}

ct_status vd_list_split(const char *root, const char *class_index, const char *list, vd_listing *out,
                        ct_error *err) {
    memset(out, 0, sizeof *out);
    ct_status st = read_class_index(class_index, out, err);
    if (st != CT_OK) return st;
    FILE *f = fopen(list, "r");
    if (!f) return ct_error_set(err, CT_ERR_IO, "video: %s: cannot open the split list: %s", list, strerror(errno));
    char line[4096];
    int lineno = 0;
    while (st == CT_OK && fgets(line, sizeof line, f)) {
        lineno++;
        chomp(line);
        if (line[0]) st = parse_list_line(out, root, list, lineno, line, err);
    }
    fclose(f);
    return st;
}

/* ---- HMDB51's own split files ------------------------------------------------ */

/* "<class>_test_split<fold>.txt" -> the class name (malloc'd), else NULL. */
static char *hmdb_class(const char *file, int fold) {
    char suffix[40];
    snprintf(suffix, sizeof suffix, "_test_split%d.txt", fold);
    size_t n = strlen(file), k = strlen(suffix);
    if (n <= k || strcmp(file + n - k, suffix) != 0) return NULL;
    char *c = malloc(n - k + 1);
    if (c) {
        memcpy(c, file, n - k);
        c[n - k] = '\0';
    }
    return c;
}

/* One class's split file: "<video> <0|1|2>" lines; keep those marked `want`. */
static ct_status read_hmdb_file(vd_listing *l, const char *root, const char *path, int label, int want, ct_error *err) {
    FILE *f = fopen(path, "r");
    if (!f) return ct_error_set(err, CT_ERR_IO, "video: %s: cannot open: %s", path, strerror(errno));
    char line[2048];
    int lineno = 0;
    ct_status st = CT_OK;
    while (st == CT_OK && fgets(line, sizeof line, f)) {
        lineno++;
        chomp(line);
        if (!line[0]) continue;
        char *sp = strrchr(line, ' ');
        if (!sp || (strcmp(sp + 1, "0") && strcmp(sp + 1, "1") && strcmp(sp + 1, "2")) || strchr(line, '/')) {
            st = ct_error_set(err, CT_ERR_FORMAT, "video: %s:%d: expected \"<video file> 0|1|2\", got \"%.60s\"", path,
                              lineno, line);
            break;
        }
        int mark = sp[1] - '0';
        *sp = '\0';
        chomp(line);
        if (mark != want) continue;
        char *dir = vd_join(root, l->classes[label]), *p = dir ? vd_join(dir, line) : NULL;
        free(dir);
        st = p ? add_item(l, p, label, err) : ct_error_set(err, CT_ERR_NOMEM, "video: out of memory");
    }
    fclose(f);
    return st;
}

ct_status vd_list_hmdb(const char *root, const char *splits, int fold, bool test, vd_listing *out, ct_error *err) {
    memset(out, 0, sizeof *out);
    char **files;
    int nf;
    ct_status st = vd_list_names("video", splits, false, &files, &nf, err);
    int cap = 0;
    for (int i = 0; st == CT_OK && i < nf; i++) { /* files come sorted, so classes are in name order */
        char *c = hmdb_class(files[i], fold);
        if (!c) continue;
        if (out->n_classes == cap) {
            cap = cap ? cap * 2 : 64;
            char **v = realloc(out->classes, (size_t)cap * sizeof *v);
            if (!v) {
                free(c);
                st = ct_error_set(err, CT_ERR_NOMEM, "video: out of memory");
                break;
            }
            out->classes = v;
        }
        out->classes[out->n_classes++] = c;
        char *path = vd_join(splits, files[i]);
        st = path ? read_hmdb_file(out, root, path, out->n_classes - 1, test ? 2 : 1, err)
                  : ct_error_set(err, CT_ERR_NOMEM, "video: out of memory");
        free(path);
    }
    free_names(files, nf);
    if (st == CT_OK && out->n_classes == 0)
        st = ct_error_set(err, CT_ERR_NOT_FOUND, "video: %s: no HMDB51 split files <class>_test_split%d.txt", splits, fold);
    return st;
}
