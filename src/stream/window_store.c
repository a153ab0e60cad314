/*
 * window_store.c: an in-memory ordered byte-key map behind the window store interface
 * (rv__wstore_ops_t in window_int.h).
 *
 * It backs the window logic in unit tests, where the logic is checked apart from RocksDB. It is
 * a sorted array of heap entries with binary search: inserts move pointers, which is fine for
 * the few thousand open windows a test keeps. It must never be used for application state:
 * nothing here is durable.
 */
#include <stdlib.h>
#include <string.h>

#include "stream/window_int.h"

typedef struct ment_s {
    size_t klen;
    size_t vlen;
    char *val;
    char key[]; /* klen bytes, then the value */
} ment_t;

struct rv__memstore_s {
    ment_t **e;
    size_t n;
    size_t cap;
};

rv__memstore_t *rv__memstore_new(void) {
    return calloc(1, sizeof(rv__memstore_t));
}

void rv__memstore_destroy(rv__memstore_t *m) {
    if (!m) {
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i]);
    }
    free(m->e);
    free(m);
}

size_t rv__memstore_count(const rv__memstore_t *m) {
    return m->n;
}

static int kcmp(const void *a, size_t al, const void *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c != 0) {
        return c;
    }
    return al < bl ? -1 : al > bl;
}

/* The first index whose key is >= key. */
static size_t lower(const rv__memstore_t *m, const void *key, size_t len) {
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kcmp(m->e[mid]->key, m->e[mid]->klen, key, len) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static rv_err_t m_get(void *s, const void *key, size_t len, const void **val, size_t *vlen) {
    rv__memstore_t *m = s;
    size_t i = lower(m, key, len);
    if (i < m->n && kcmp(m->e[i]->key, m->e[i]->klen, key, len) == 0) {
        *val = m->e[i]->val;
        *vlen = m->e[i]->vlen;
        return RV_OK;
    }
    return RV_ERR_NOT_FOUND;
}

static rv_err_t m_put(void *s, const void *key, size_t len, const void *val, size_t vlen) {
    rv__memstore_t *m = s;
    ment_t *x = malloc(sizeof *x + len + vlen + 1);
    if (!x) {
        return RV_ERR_NOMEM;
    }
    x->klen = len;
    x->vlen = vlen;
    memcpy(x->key, key, len);
    x->val = x->key + len;
    if (vlen) {
        memcpy(x->val, val, vlen);
    }
    size_t i = lower(m, key, len);
    if (i < m->n && kcmp(m->e[i]->key, m->e[i]->klen, key, len) == 0) {
        free(m->e[i]);
        m->e[i] = x;
        return RV_OK;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        ment_t **v = realloc(m->e, cap * sizeof *v);
        if (!v) {
            free(x);
            return RV_ERR_NOMEM;
        }
        m->e = v;
        m->cap = cap;
    }
    memmove(m->e + i + 1, m->e + i, (m->n - i) * sizeof *m->e);
    m->e[i] = x;
    m->n++;
    return RV_OK;
}

static rv_err_t m_del(void *s, const void *key, size_t len) {
    rv__memstore_t *m = s;
    size_t i = lower(m, key, len);
    if (i < m->n && kcmp(m->e[i]->key, m->e[i]->klen, key, len) == 0) {
        free(m->e[i]);
        memmove(m->e + i, m->e + i + 1, (m->n - i - 1) * sizeof *m->e);
        m->n--;
    }
    return RV_OK;
}

static rv_err_t m_scan(void *s, const void *from, size_t flen, const void *to, size_t tlen,
                       rv__wscan_fn fn, void *arg) {
    rv__memstore_t *m = s;
    for (size_t i = lower(m, from, flen); i < m->n; i++) {
        ment_t *x = m->e[i];
        if (to && kcmp(x->key, x->klen, to, tlen) >= 0) {
            break;
        }
        if (fn(arg, x->key, x->klen, x->val, x->vlen)) {
            break;
        }
    }
    return RV_OK;
}

const rv__wstore_ops_t rv__memstore_ops = {
    .get = m_get, .put = m_put, .del = m_del, .scan = m_scan};
