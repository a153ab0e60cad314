/*
 * window_cache.c: a write-back cache in front of a window store (rv__wstore_ops_t).
 *
 * A tumbling window is read and rewritten by every record of its key; going to RocksDB's
 * indexed write buffer for each of them costs far more than the aggregation. The cache keeps the
 * entries a partition touched since the last checkpoint in a hash table: reads hit memory, writes
 * mark the entry dirty, deletions leave a dirty tombstone. Range scans first write every dirty
 * entry to the store (so the store alone answers them in order), and the runtime's checkpoint
 * hook flushes and forgets everything before the store's buffer is sent to the changelog and
 * committed, so what is durable never lags what was processed. The cache holds no entry across
 * a checkpoint, which also keeps it from ever outliving its store (revocation checkpoints
 * first). It must never answer a scan from memory.
 */
#include <stdlib.h>
#include <string.h>

#include "rivulet/hash.h"
#include "stream/window_int.h"

/* Entry states. */
enum { E_EMPTY, E_CLEAN, E_DIRTY, E_GONE_DIRTY, E_GONE_CLEAN };

#define MAX_ENTRIES 65536 /* past this many, flush and forget */

typedef struct cent_s {
    uint32_t hash;
    uint8_t state;
    uint32_t klen;
    char *key;
    char *val;
    size_t vlen, vcap;
} cent_t;

struct rv__wcache_s {
    rv__wstore_t under;
    cent_t *t;
    size_t cap; /* a power of two */
    size_t n;   /* used slots */
    size_t dirty;
    size_t *dlist; /* the slots of the dirty entries (flush walks these, not the table) */
    size_t dcap;
};

rv__wcache_t *rv__wcache_new(void) {
    return calloc(1, sizeof(rv__wcache_t));
}

void rv__wcache_clear(rv__wcache_t *c) {
    for (size_t i = 0; c && i < c->cap; i++) {
        if (c->t[i].state != E_EMPTY) {
            free(c->t[i].key);
            free(c->t[i].val);
            memset(&c->t[i], 0, sizeof c->t[i]);
        }
    }
    if (c) {
        c->n = 0;
        c->dirty = 0;
    }
}

void rv__wcache_destroy(rv__wcache_t *c) {
    if (!c) {
        return;
    }
    rv__wcache_clear(c);
    free(c->t);
    free(c->dlist);
    free(c);
}

void rv__wcache_bind(rv__wcache_t *c, rv__wstore_t under) {
    rv__wcache_clear(c);
    c->under = under;
}

size_t rv__wcache_dirty(const rv__wcache_t *c) {
    return c ? c->dirty : 0;
}

/* The slot of `key` (found or the empty one where it belongs). */
static cent_t *slot(rv__wcache_t *c, const void *key, size_t len, uint32_t h) {
    size_t mask = c->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        cent_t *e = &c->t[i];
        if (e->state == E_EMPTY ||
            (e->hash == h && e->klen == len && memcmp(e->key, key, len) == 0)) {
            return e;
        }
    }
}

static bool grow(rv__wcache_t *c) {
    size_t cap = c->cap ? c->cap * 2 : 64;
    cent_t *t = calloc(cap, sizeof *t);
    if (!t) {
        return false;
    }
    cent_t *old = c->t;
    size_t ocap = c->cap;
    c->t = t;
    c->cap = cap;
    c->dirty = 0;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].state != E_EMPTY) {
            cent_t *e = slot(c, old[i].key, old[i].klen, old[i].hash);
            *e = old[i];
            if (e->state == E_DIRTY || e->state == E_GONE_DIRTY) {
                c->dlist[c->dirty++] = (size_t)(e - c->t); /* dcap >= dirty already */
            }
        }
    }
    free(old);
    return true;
}

/* Records entry `e` as newly dirty. */
static bool mark_dirty(rv__wcache_t *c, cent_t *e) {
    if (c->dirty == c->dcap) {
        size_t cap = c->dcap ? c->dcap * 2 : 64;
        size_t *v = realloc(c->dlist, cap * sizeof *v);
        if (!v) {
            return false;
        }
        c->dlist = v;
        c->dcap = cap;
    }
    c->dlist[c->dirty++] = (size_t)(e - c->t);
    return true;
}

rv_err_t rv__wcache_flush(rv__wcache_t *c) {
    if (!c) {
        return RV_OK;
    }
    while (c->dirty > 0) {
        cent_t *e = &c->t[c->dlist[c->dirty - 1]];
        rv_err_t r = RV_OK;
        if (e->state == E_DIRTY) {
            r = c->under.ops->put(c->under.s, e->key, e->klen, e->val ? e->val : "", e->vlen);
            if (r == RV_OK) {
                e->state = E_CLEAN;
            }
        } else if (e->state == E_GONE_DIRTY) {
            r = c->under.ops->del(c->under.s, e->key, e->klen);
            if (r == RV_OK) {
                e->state = E_GONE_CLEAN;
            }
        }
        if (r != RV_OK) {
            return r;
        }
        c->dirty--;
    }
    return RV_OK;
}

/* The entry of `key`, made (state E_EMPTY with its key set) when absent. NULL on NOMEM. */
static cent_t *entry(rv__wcache_t *c, const void *key, size_t len) {
    if (c->n >= MAX_ENTRIES) {
        if (rv__wcache_flush(c) != RV_OK) {
            return NULL;
        }
        rv__wcache_clear(c);
    }
    if ((c->n + 1) * 2 > c->cap && !grow(c)) {
        return NULL;
    }
    uint32_t h = rv_crc32c(0, key, len);
    cent_t *e = slot(c, key, len, h);
    if (e->state == E_EMPTY) {
        e->key = malloc(len ? len : 1);
        if (!e->key) {
            return NULL;
        }
        memcpy(e->key, key, len);
        e->klen = (uint32_t)len;
        e->hash = h;
        e->state = E_GONE_CLEAN; /* until told otherwise */
        e->val = NULL;
        e->vlen = e->vcap = 0;
        c->n++;
        return e;
    }
    return e;
}

static bool set_val(cent_t *e, const void *v, size_t vl) {
    if (vl > e->vcap) {
        size_t cap = vl < 64 ? 64 : vl * 2;
        char *b = realloc(e->val, cap);
        if (!b) {
            return false;
        }
        e->val = b;
        e->vcap = cap;
    }
    if (vl) {
        memcpy(e->val, v, vl);
    }
    e->vlen = vl;
    return true;
}

static rv_err_t c_get(void *s, const void *key, size_t len, const void **val, size_t *vlen) {
    rv__wcache_t *c = s;
    if (c->cap) {
        cent_t *e = slot(c, key, len, rv_crc32c(0, key, len));
        if (e->state == E_CLEAN || e->state == E_DIRTY) {
            *val = e->val ? e->val : "";
            *vlen = e->vlen;
            return RV_OK;
        }
        if (e->state == E_GONE_CLEAN || e->state == E_GONE_DIRTY) {
            return RV_ERR_NOT_FOUND;
        }
    }
    const void *v;
    size_t vl;
    rv_err_t r = c->under.ops->get(c->under.s, key, len, &v, &vl);
    if ((r != RV_OK && r != RV_ERR_NOT_FOUND) || c->n >= MAX_ENTRIES) {
        if (r == RV_OK) { /* full: answer from the store without remembering */
            *val = v;
            *vlen = vl;
        }
        return r;
    }
    cent_t *e = entry(c, key, len); /* remember what the store said */
    if (!e) {
        return RV_ERR_NOMEM;
    }
    if (r == RV_OK) {
        if (!set_val(e, v, vl)) {
            return RV_ERR_NOMEM;
        }
        e->state = E_CLEAN;
        *val = e->val ? e->val : "";
        *vlen = e->vlen;
    }
    return r;
}

static rv_err_t c_put(void *s, const void *key, size_t len, const void *val, size_t vlen) {
    rv__wcache_t *c = s;
    cent_t *e = entry(c, key, len);
    if (!e || !set_val(e, val, vlen)) {
        return RV_ERR_NOMEM;
    }
    if (e->state != E_DIRTY && e->state != E_GONE_DIRTY && !mark_dirty(c, e)) {
        return RV_ERR_NOMEM;
    }
    e->state = E_DIRTY;
    return RV_OK;
}

static rv_err_t c_del(void *s, const void *key, size_t len) {
    rv__wcache_t *c = s;
    cent_t *e = entry(c, key, len);
    if (!e) {
        return RV_ERR_NOMEM;
    }
    if (e->state != E_DIRTY && e->state != E_GONE_DIRTY && !mark_dirty(c, e)) {
        return RV_ERR_NOMEM;
    }
    e->state = E_GONE_DIRTY;
    e->vlen = 0;
    return RV_OK;
}

static rv_err_t c_scan(void *s, const void *from, size_t flen, const void *to, size_t tlen,
                       rv__wscan_fn fn, void *arg) {
    rv__wcache_t *c = s;
    rv_err_t r = rv__wcache_flush(c);
    if (r != RV_OK) {
        return r;
    }
    return c->under.ops->scan(c->under.s, from, flen, to, tlen, fn, arg);
}

const rv__wstore_ops_t rv__wcache_ops = {.get = c_get, .put = c_put, .del = c_del, .scan = c_scan};
