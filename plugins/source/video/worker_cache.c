/* Per-thread LRUs of open decoders.
 *
 * A libavcodec context must not be used by two threads at once, and
 * reopening a file per clip costs a probe each time; so each thread that
 * reads from the source keeps its own few decoders (thread-specific data),
 * most recently used first. A thread that exits frees its LRU (the key's
 * destructor); vd_workers_destroy frees the rest. The source must outlive
 * the threads' reads, as every source does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "video_core.h"

typedef struct vd_lru {
    struct vd_workers *owner;
    struct vd_lru *prev, *next; /* every LRU of the source, for destroy */
    uint64_t clock;
    int n;
    vd_decoder **dec;
    uint64_t *used;
} vd_lru;

struct vd_workers {
    pthread_key_t key;
    pthread_mutex_t mu;
    vd_lru *all;
    int cap;
    vd_limits lim;
};

static void lru_free(vd_lru *l) {
    for (int i = 0; i < l->n; i++) vd_decoder_close(l->dec[i]);
    free(l->dec);
    free(l->used);
    free(l);
}

static void unlink_lru(vd_workers *w, vd_lru *l) {
    if (l->prev) l->prev->next = l->next;
    else w->all = l->next;
    if (l->next) l->next->prev = l->prev;
}

/* Thread exit: the LRU leaves the source's list and is freed. */
static void lru_at_exit(void *p) {
    vd_lru *l = p;
    pthread_mutex_lock(&l->owner->mu);
    unlink_lru(l->owner, l);
    pthread_mutex_unlock(&l->owner->mu);
    lru_free(l);
}

ct_status vd_workers_new(int files_per_thread, const vd_limits *lim, vd_workers **out) {
    vd_workers *w = calloc(1, sizeof *w);
    if (!w) return CT_ERR_NOMEM;
    if (pthread_key_create(&w->key, lru_at_exit) != 0) {
        free(w);
        return CT_ERR_NOMEM;
    }
    pthread_mutex_init(&w->mu, NULL);
    w->cap = files_per_thread < 1 ? 1 : files_per_thread;
    w->lim = *lim;
    *out = w;
    return CT_OK;
}

void vd_workers_destroy(vd_workers *w) {
    if (!w) return;
    /* Deleting the key first means no destructor can run for it later. */
    pthread_key_delete(w->key);
    pthread_mutex_lock(&w->mu);
    vd_lru *l = w->all;
    w->all = NULL;
    pthread_mutex_unlock(&w->mu);
    while (l) {
        vd_lru *next = l->next;
        lru_free(l);
        l = next;
    }
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static vd_lru *my_lru(vd_workers *w) {
    vd_lru *l = pthread_getspecific(w->key);
    if (l) return l;
    l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->dec = calloc((size_t)w->cap, sizeof *l->dec);
    l->used = calloc((size_t)w->cap, sizeof *l->used);
    if (!l->dec || !l->used || pthread_setspecific(w->key, l) != 0) {
        free(l->dec);
        free(l->used);
        free(l);
        return NULL;
    }
    l->owner = w;
    pthread_mutex_lock(&w->mu);
    l->next = w->all;
    if (w->all) w->all->prev = l;
    w->all = l;
    pthread_mutex_unlock(&w->mu);
    return l;
}

ct_status vd_workers_get(vd_workers *w, const char *path, vd_decoder **out, char *msg) {
    vd_lru *l = my_lru(w);
    if (!l) {
        snprintf(msg, VD_MSG_MAX, "out of memory");
        return CT_ERR_NOMEM;
    }
    for (int i = 0; i < l->n; i++)
        if (strcmp(vd_decoder_path(l->dec[i]), path) == 0) {
            l->used[i] = ++l->clock;
            *out = l->dec[i];
            return CT_OK;
        }
    vd_decoder *d;
    ct_status st = vd_decoder_open(path, &w->lim, &d, msg);
    if (st != CT_OK) return st;
    int slot = l->n;
    if (l->n == w->cap) { /* close the least recently used */
        slot = 0;
        for (int i = 1; i < l->n; i++)
            if (l->used[i] < l->used[slot]) slot = i;
        vd_decoder_close(l->dec[slot]);
    } else {
        l->n++;
    }
    l->dec[slot] = d;
    l->used[slot] = ++l->clock;
    *out = d;
    return CT_OK;
}

void vd_workers_drop(vd_workers *w, const char *path) {
    vd_lru *l = pthread_getspecific(w->key);
    for (int i = 0; l && i < l->n; i++)
        if (strcmp(vd_decoder_path(l->dec[i]), path) == 0) {
            vd_decoder_close(l->dec[i]);
            l->dec[i] = l->dec[l->n - 1];
            l->used[i] = l->used[l->n - 1];
            l->n--;
            return;
        }
}

int vd_workers_open_count(vd_workers *w) {
    int n = 0;
    pthread_mutex_lock(&w->mu);
    for (vd_lru *l = w->all; l; l = l->next) n += l->n;
    pthread_mutex_unlock(&w->mu);
    return n;
}
