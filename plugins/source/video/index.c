/* The duration index: what every file holds (frames, duration, rate, size,
 * codec), probed once and kept in a cache file so that later opens only
 * stat the files.
 *
 * Cache file: a header line "# contrast video index 1", then one
 * tab-separated line per file,
 *   ok  SIZE MTIME_NS FRAMES DURATION FPS START_PTS TB_NUM TB_DEN W H VERIFIED CODEC PATH
 *   bad SIZE MTIME_NS REASON PATH
 * An entry is reused only when the file's size and mtime still match (and,
 * when `verify` is on, only if it was verified). Files whose path holds a
 * tab or a newline are probed every time. The file is written to a
 * temporary name and renamed, so a crash never leaves half an index; a
 * cache that cannot be read or written is a warning, never an error. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "video_core.h"

#define VD_INDEX_HEADER "# contrast video index 1"

typedef struct cached {
    char *path;
    bool ok;
    vd_meta meta;
    char *reason;
} cached;

typedef struct cache {
    cached *v;
    size_t n, cap;
} cache;

static void cache_free(cache *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].path);
        free(c->v[i].reason);
    }
    free(c->v);
    memset(c, 0, sizeof *c);
}

static int cmp_cached(const void *a, const void *b) {
    return strcmp(((const cached *)a)->path, ((const cached *)b)->path);
}

/* Split `line` at tabs into at most `max` fields; returns the count. */
static int split_tabs(char *line, char **f, int max) {
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') {
            *p = '\0';
            f[n++] = p + 1;
        }
    return n;
}

static bool parse_entry(char *line, cached *e) {
    char *f[14];
    memset(e, 0, sizeof *e);
    line[strcspn(line, "\n")] = '\0';
    int n = split_tabs(line, f, 14);
    if (n == 5 && strcmp(f[0], "bad") == 0) {
        if (sscanf(f[1], "%" SCNd64, &e->meta.size) != 1 || sscanf(f[2], "%" SCNd64, &e->meta.mtime_ns) != 1)
            return false;
        e->reason = strdup(f[3]);
        e->path = strdup(f[4]);
        return e->reason && e->path;
    }
    if (n != 14 || strcmp(f[0], "ok") != 0) return false;
    vd_meta *m = &e->meta;
    int verified = 0;
    bool good = sscanf(f[1], "%" SCNd64, &m->size) == 1 && sscanf(f[2], "%" SCNd64, &m->mtime_ns) == 1 &&
                sscanf(f[3], "%" SCNd64, &m->frames) == 1 && sscanf(f[4], "%lf", &m->duration) == 1 &&
                sscanf(f[5], "%lf", &m->fps) == 1 && sscanf(f[6], "%" SCNd64, &m->start_pts) == 1 &&
                sscanf(f[7], "%d", &m->tb_num) == 1 && sscanf(f[8], "%d", &m->tb_den) == 1 &&
                sscanf(f[9], "%d", &m->width) == 1 && sscanf(f[10], "%d", &m->height) == 1 &&
                sscanf(f[11], "%d", &verified) == 1;
    if (!good || m->frames < 1 || !(m->duration > 0) || !(m->fps > 0) || m->tb_num <= 0 || m->tb_den <= 0 ||
        m->width <= 0 || m->height <= 0)
        return false;
    m->verified = verified != 0;
    snprintf(m->codec, sizeof m->codec, "%s", f[12]);
    e->ok = true;
    return (e->path = strdup(f[13])) != NULL;
}

/* Read the cache; a missing file is an empty cache, a malformed one a
 * warning and an empty cache. */
static void cache_load(const char *file, cache *c, const ct_host *host, const char *who) {
    memset(c, 0, sizeof *c);
    FILE *f = fopen(file, "r");
    if (!f) return;
    char line[8192];
    bool bad = !fgets(line, sizeof line, f) || strncmp(line, VD_INDEX_HEADER, strlen(VD_INDEX_HEADER)) != 0;
    while (!bad && fgets(line, sizeof line, f)) {
        if (c->n == c->cap) {
            size_t nc = c->cap ? c->cap * 2 : 256;
            cached *v = realloc(c->v, nc * sizeof *v);
            if (!v) {
                bad = true;
                break;
            }
            c->v = v;
            c->cap = nc;
        }
        if (!parse_entry(line, &c->v[c->n])) {
            free(c->v[c->n].path);
            free(c->v[c->n].reason);
            bad = true;
        } else {
            c->n++;
        }
    }
    fclose(f);
    if (bad) {
        ct_log(host, CT_LOG_WARN, "%s: %s: not a video index (or damaged); probing every file again", who, file);
        cache_free(c);
        return;
    }
    qsort(c->v, c->n, sizeof *c->v, cmp_cached);
}

static const cached *cache_find(const cache *c, const char *path) {
    cached key;
    key.path = (char *)path;
    return c->n ? bsearch(&key, c->v, c->n, sizeof *c->v, cmp_cached) : NULL;
}

static bool plain_path(const char *p) { return !strpbrk(p, "\t\n\r"); }

/* Make the folders above `file`. */
static void make_parents(const char *file) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", file);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
}

static void cache_save(const char *file, const vd_item *items, int64_t n, char *const *bad, const ct_host *host,
                       const char *who) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", file, (long)getpid());
    make_parents(file);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        ct_log(host, CT_LOG_WARN, "%s: cannot write the index %s: %s (it will be rebuilt next time)", who, tmp,
               strerror(errno));
        return;
    }
    fprintf(f, "%s\n", VD_INDEX_HEADER);
    for (int64_t i = 0; i < n; i++) {
        const vd_item *it = &items[i];
        const vd_meta *m = &it->meta;
        if (!plain_path(it->path) || !m->size) continue;
        if (bad[i]) {
            char reason[VD_MSG_MAX];
            snprintf(reason, sizeof reason, "%s", bad[i]);
            for (char *p = reason; *p; p++)
                if (*p == '\t' || *p == '\n' || *p == '\r') *p = ' ';
            fprintf(f, "bad\t%" PRId64 "\t%" PRId64 "\t%s\t%s\n", m->size, m->mtime_ns, reason, it->path);
        } else {
            fprintf(f, "ok\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%.17g\t%.17g\t%" PRId64 "\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n",
                    m->size, m->mtime_ns, m->frames, m->duration, m->fps, m->start_pts, m->tb_num, m->tb_den,
                    m->width, m->height, m->verified ? 1 : 0, m->codec[0] ? m->codec : "?", it->path);
        }
    }
    bool ok = fflush(f) == 0 && !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, file) != 0) {
        ct_log(host, CT_LOG_WARN, "%s: cannot write the index %s: %s", who, file, strerror(errno));
        remove(tmp);
    }
}

/* Probe one file into its meta; a reason in *bad when it is unusable. */
static ct_status probe_file(vd_item *it, const vd_index_opts *o, char **bad) {
    char msg[VD_MSG_MAX];
    vd_decoder *d;
    ct_status st = vd_decoder_open(it->path, &o->limits, &d, msg);
    if (st == CT_OK) {
        int64_t size = it->meta.size, mtime = it->meta.mtime_ns;
        st = vd_decoder_probe(d, o->verify, o->max_frames, &it->meta, msg);
        it->meta.size = size;
        it->meta.mtime_ns = mtime;
        vd_decoder_close(d);
    }
    if (st == CT_ERR_NOMEM) return st;
    if (st != CT_OK && !(*bad = strdup(msg))) return CT_ERR_NOMEM;
    return CT_OK;
}

ct_status vd_index_build(vd_item *items, int64_t n, const vd_index_opts *o, const ct_host *host, char **bad,
                         int64_t *reused, ct_error *err) {
    const char *who = o->who ? o->who : "video";
    cache c;
    bool use_cache = o->cache_file && o->cache_file[0];
    if (use_cache) cache_load(o->cache_file, &c, host, who);
    else memset(&c, 0, sizeof c);
    *reused = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ct_status st = CT_OK;
    for (int64_t i = 0; i < n && st == CT_OK; i++) {
        vd_item *it = &items[i];
        bad[i] = NULL;
        memset(&it->meta, 0, sizeof it->meta);
        struct stat sb;
        if (stat(it->path, &sb) == 0) {
            it->meta.size = (int64_t)sb.st_size;
            it->meta.mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
        }
        const cached *e = cache_find(&c, it->path);
        if (e && it->meta.size && e->meta.size == it->meta.size && e->meta.mtime_ns == it->meta.mtime_ns &&
            (!e->ok || e->meta.verified || !o->verify)) {
            if (e->ok) it->meta = e->meta;
            else if (!(bad[i] = strdup(e->reason))) st = CT_ERR_NOMEM;
            (*reused)++;
            continue;
        }
        st = probe_file(it, o, &bad[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (st == CT_OK && use_cache && *reused != n) cache_save(o->cache_file, items, n, bad, host, who);
    if (st == CT_OK && n - *reused > 0)
        ct_log(host, CT_LOG_INFO, "%s: indexed %lld file(s) in %.1f s (%lld from the cache %s)", who,
               (long long)(n - *reused), (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9,
               (long long)*reused, use_cache ? o->cache_file : "(none)");
    cache_free(&c);
    return st == CT_OK ? CT_OK : ct_error_set(err, st, "%s: out of memory while indexing", who);
}
