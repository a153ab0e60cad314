/*
 * store.c: one state store: a RocksDB instance for one (store, partition), its per-checkpoint
 * write buffer and its ordered iterators.
 *
 * Writes go to a buffer (a hash map holding each changed key's latest value or deletion), so
 * gets see the current checkpoint's writes at the cost of one hash lookup; iterators merge the
 * database with a sorted index of the buffer, rebuilt only when new keys arrived. The checkpoint
 * sends each changed key to the changelog once and commits each once, with its final value.
 * This file only reads and buffers: it never decides when to commit nor talks to a broker
 * (stores.c does both, in the checkpoint's order).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "state/store_impl.h"

/* ---- shared RocksDB options ----------------------------------------------------------------- */

static pthread_once_t opts_once = PTHREAD_ONCE_INIT;
static rocksdb_writeoptions_t *wopts;
static rocksdb_readoptions_t *ropts;

static void opts_init(void) {
    wopts = rv__rk.rocksdb_writeoptions_create();
    ropts = rv__rk.rocksdb_readoptions_create();
}

const rocksdb_writeoptions_t *rv__store_wopts(void) {
    pthread_once(&opts_once, opts_init);
    return wopts;
}

const rocksdb_readoptions_t *rv__store_ropts(void) {
    pthread_once(&opts_once, opts_init);
    return ropts;
}

void rv__store_put_be64(char *out, int64_t v) {
    rv__store_be64((unsigned char *)out, v);
}

int64_t rv__store_get_be64(const char *in) {
    return rv__store_unbe64((const unsigned char *)in);
}

/* ---- the write buffer ----------------------------------------------------------------------- */

static uint64_t key_hash(const char *k, size_t n) {
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)k[i]) * UINT64_C(1099511628211);
    }
    return h;
}

static bool wbuf_grow(rv__wbuf_t *b) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    rv__bent_t **slots = calloc(cap, sizeof *slots);
    if (!slots) {
        return false;
    }
    for (size_t i = 0; i < b->n; i++) {
        rv__bent_t *e = b->order[i];
        size_t j = (size_t)key_hash(e->key, e->klen) & (cap - 1);
        while (slots[j]) {
            j = (j + 1) & (cap - 1);
        }
        slots[j] = e;
    }
    free(b->slots);
    b->slots = slots;
    b->cap = cap;
    return true;
}

/* The buffered change of `k`, or NULL. */
static rv__bent_t *wbuf_find(const rv__wbuf_t *b, const char *k, size_t n) {
    if (!b->cap) {
        return NULL;
    }
    size_t j = (size_t)key_hash(k, n) & (b->cap - 1);
    for (rv__bent_t *e; (e = b->slots[j]) != NULL; j = (j + 1) & (b->cap - 1)) {
        if (e->klen == n && memcmp(e->key, k, n) == 0) {
            return e;
        }
    }
    return NULL;
}

/* The buffered change of `k`, made (as a deletion) when absent. NULL on NOMEM. */
static rv__bent_t *wbuf_entry(rv__wbuf_t *b, const char *k, size_t n) {
    rv__bent_t *e = wbuf_find(b, k, n);
    if (e) {
        return e;
    }
    if ((b->n + 1) * 2 > b->cap && !wbuf_grow(b)) {
        return NULL;
    }
    if (b->n == b->order_cap) {
        size_t cap = b->order_cap ? b->order_cap * 2 : 64;
        rv__bent_t **v = realloc(b->order, cap * sizeof *v);
        if (!v) {
            return NULL;
        }
        b->order = v;
        b->order_cap = cap;
    }
    if (!(e = calloc(1, sizeof *e + n))) {
        return NULL;
    }
    e->klen = (uint32_t)n;
    memcpy(e->key, k, n);
    b->bytes += (int64_t)(sizeof *e + n + 4 * sizeof(void *));
    size_t j = (size_t)key_hash(k, n) & (b->cap - 1);
    while (b->slots[j]) {
        j = (j + 1) & (b->cap - 1);
    }
    b->slots[j] = e;
    b->order[b->n++] = e;
    return e;
}

static void wbuf_clear(rv__wbuf_t *b) {
    for (size_t i = 0; i < b->n; i++) {
        free(b->order[i]->val);
        free(b->order[i]);
    }
    if (b->cap) {
        memset(b->slots, 0, b->cap * sizeof *b->slots);
    }
    b->n = 0;
    b->nsorted = 0;
    b->bytes = 0;
}

/* Adds what the buffer grew by since `before` to the set's total. */
static void account(rv__store_t *s, int64_t before) {
    if (s->buffered) {
        *s->buffered += s->buf.bytes - before;
    }
}

/* Empties the buffer, taking its bytes off the set's total. */
static void buf_reset(rv__store_t *s) {
    if (s->buffered) {
        *s->buffered -= s->buf.bytes;
    }
    wbuf_clear(&s->buf);
}

void rv__store_discard(rv__store_t *s) {
    buf_reset(s);
}

void rv__wbuf_free(rv__wbuf_t *b) {
    wbuf_clear(b);
    free(b->slots);
    free(b->order);
    free(b->sorted);
    memset(b, 0, sizeof *b);
}

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn) {
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an < bn ? -1 : an > bn);
}

static int cmp_bent(const void *x, const void *y) {
    const rv__bent_t *a = *(rv__bent_t *const *)x, *b = *(rv__bent_t *const *)y;
    return cmp_bytes(a->key, a->klen, b->key, b->klen);
}

/* Brings the sorted index up to date: sorts the keys that arrived since, then merges. */
static bool wbuf_sort(rv__wbuf_t *b) {
    if (b->nsorted == b->n) {
        return true;
    }
    if (b->sorted_cap < b->n * 2) {
        size_t cap = b->n * 2;
        rv__bent_t **v = realloc(b->sorted, cap * sizeof *v);
        if (!v) {
            return false;
        }
        b->sorted = v;
        b->sorted_cap = cap;
    }
    /* The new keys are sorted in the upper half, then merged from the back with the sorted run. */
    size_t old = b->nsorted, add = b->n - old;
    rv__bent_t **tail = b->sorted + b->n;
    memcpy(tail, b->order + old, add * sizeof *tail);
    qsort(tail, add, sizeof *tail, cmp_bent);
    size_t i = old, j = 0, k = b->n;
    /* Merge from the back so the sorted run can be extended in place. */
    while (j < add && i > 0) {
        rv__bent_t *x = b->sorted[i - 1], *y = tail[add - 1 - j];
        if (cmp_bent(&x, &y) > 0) {
            b->sorted[--k] = x;
            i--;
        } else {
            b->sorted[--k] = y;
            j++;
        }
    }
    while (j < add) {
        b->sorted[--k] = tail[add - 1 - j];
        j++;
    }
    b->nsorted = b->n;
    return true;
}

const rv__bent_t *rv__store_pending_at(const rv__store_t *s, size_t i) {
    return i < s->buf.n ? s->buf.order[i] : NULL;
}

rv_err_t rv__store_commit_buffer(rv__store_t *s, const char *const *meta_keys,
                                 const char *const *meta_vals, const size_t *meta_lens,
                                 size_t nmeta) {
    rocksdb_writebatch_t *wb = rv__rk.rocksdb_writebatch_create();
    for (size_t i = 0; i < s->buf.n; i++) {
        const rv__bent_t *e = s->buf.order[i];
        if (e->val) {
            rv__rk.rocksdb_writebatch_put(wb, e->key, e->klen, e->val, e->vlen);
        } else {
            rv__rk.rocksdb_writebatch_delete(wb, e->key, e->klen);
        }
    }
    for (size_t i = 0; i < nmeta; i++) {
        rv__rk.rocksdb_writebatch_put(wb, meta_keys[i], strlen(meta_keys[i]), meta_vals[i], meta_lens[i]);
    }
    char *err = NULL;
    rv__rk.rocksdb_write(s->db, rv__store_wopts(), wb, &err);
    rv__rk.rocksdb_writebatch_destroy(wb);
    if (err) {
        snprintf(s->errmsg, sizeof s->errmsg, "%s", err);
        free(err);
        return RV_ERR_IO;
    }
    buf_reset(s);
    return RV_OK;
}

/* ---- opening -------------------------------------------------------------------------------- */

/* The options every store opens with, then the rocksdb.* properties over them (loading
 * RocksDB first). NULL with *why (malloc) and *code set: RV_ERR_UNSUPPORTED when RocksDB
 * cannot be loaded, RV_ERR_CONFIG when the properties do not parse. */
static rocksdb_options_t *db_options(const char *extra, char **why, rv_err_t *code) {
    const char *nolib = NULL;
    if (!rv__rocks_load(&nolib)) {
        *why = strdup(nolib);
        *code = RV_ERR_UNSUPPORTED;
        return NULL;
    }
    *code = RV_ERR_CONFIG;
    rocksdb_options_t *o = rv__rk.rocksdb_options_create();
    rv__rk.rocksdb_options_set_create_if_missing(o, 1);
    rv__rk.rocksdb_options_set_keep_log_file_num(o, 2);
    rv__rk.rocksdb_options_set_max_open_files(o, 64);
    rv__rk.rocksdb_options_set_write_buffer_size(o, 8u << 20);
    if (extra && *extra) {
        rocksdb_options_t *n = rv__rk.rocksdb_options_create();
        char *e = NULL;
        rv__rk.rocksdb_get_options_from_string(o, extra, n, &e);
        rv__rk.rocksdb_options_destroy(o);
        if (e) {
            *why = e;
            rv__rk.rocksdb_options_destroy(n);
            return NULL;
        }
        o = n;
        rv__rk.rocksdb_options_set_create_if_missing(o, 1);
    }
    return o;
}

rv_err_t rv__store_check_options(const char *opts, rv_error_t **err) {
    char *why = NULL;
    rv_err_t code;
    rocksdb_options_t *o = db_options(opts, &why, &code);
    if (!o) {
        rv__error_set(err, code, "rocksdb.* properties ('%s'): %s", opts,
                      why ? why : "out of memory");
        free(why);
        return code;
    }
    rv__rk.rocksdb_options_destroy(o);
    return RV_OK;
}

/* Makes every directory of `path` (mkdir -p). */
static int mkdirs(const char *path);

rv_err_t rv__store_open_db(rv__store_t *s, bool *locked, char **why) {
    *locked = false;
    char *e = NULL;
    rv_err_t code;
    rocksdb_options_t *o = db_options(s->rocksdb_opts, &e, &code);
    if (!o) {
        *why = e;
        return code;
    }
    if (mkdirs(s->dir) != 0) {
        *why = strdup(strerror(errno));
        rv__rk.rocksdb_options_destroy(o);
        return RV_ERR_IO;
    }
    s->db = rv__rk.rocksdb_open(o, s->dir, &e);
    rv__rk.rocksdb_options_destroy(o);
    if (!s->db) {
        *locked = e && (strstr(e, "LOCK") || strstr(e, "lock"));
        *why = e ? strdup(e) : strdup("unknown RocksDB error");
        free(e);
        return *locked ? RV_ERR_BUSY : RV_ERR_IO;
    }
    return RV_OK;
}

void rv__store_close_db(rv__store_t *s) {
    if (s->db) {
        rv__rk.rocksdb_close(s->db);
        s->db = NULL;
    }
    free(s->getbuf);
    s->getbuf = NULL;
    buf_reset(s);
}

rv_err_t rv__store_wipe(rv__store_t *s, char **why) {
    rv__store_close_db(s);
    char *e = NULL;
    rv_err_t code;
    rocksdb_options_t *o = db_options(NULL, &e, &code);
    if (!o) {
        *why = e;
        return code;
    }
    rv__rk.rocksdb_destroy_db(o, s->dir, &e);
    rv__rk.rocksdb_options_destroy(o);
    if (e) {
        *why = strdup(e);
        free(e);
        return RV_ERR_IO;
    }
    bool locked;
    return rv__store_open_db(s, &locked, why);
}

rv_err_t rv__store_load_meta(rv__store_t *s) {
    s->processed = 0;
    s->time = INT64_MIN;
    s->changelog_next = 0;
    size_t n = 0;
    char *e = NULL;
    char *v =
        rv__rk.rocksdb_get(s->db, rv__store_ropts(), RV__META_OFFSETS, strlen(RV__META_OFFSETS), &n, &e);
    if (e) {
        snprintf(s->errmsg, sizeof s->errmsg, "%s", e);
        free(e);
        return RV_ERR_IO;
    }
    if (v && n == 16) {
        s->processed = rv__store_get_be64(v);
        s->time = rv__store_get_be64(v + 8);
    }
    free(v);
    v = rv__rk.rocksdb_get(s->db, rv__store_ropts(), RV__META_CHANGELOG, strlen(RV__META_CHANGELOG), &n,
                    &e);
    if (e) {
        snprintf(s->errmsg, sizeof s->errmsg, "%s", e);
        free(e);
        return RV_ERR_IO;
    }
    if (v && n == 8) {
        s->changelog_next = rv__store_get_be64(v);
    }
    free(v);
    return RV_OK;
}

static int mkdirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                return -1;
            }
            buf[i] = c;
        }
    }
    return 0;
}

int rv__store_dir(char *out, size_t size, const char *state_dir, const char *group,
                  const char *topic, const char *name, int32_t partition) {
    return snprintf(out, size, "%s/%s/%s/%s/%d", state_dir, group, topic, name, (int)partition);
}

/* ---- reads and writes ----------------------------------------------------------------------- */

/* `key` with namespace byte `ns` in front, in the store's scratch buffer. */
const char *rv__store_nskey(rv__store_t *s, char ns, const void *key, size_t len) {
    if (len + 1 > s->kcap) {
        size_t cap = s->kcap ? s->kcap : 256;
        while (cap < len + 1) {
            cap *= 2;
        }
        char *b = realloc(s->kbuf, cap);
        if (!b) {
            return NULL;
        }
        s->kbuf = b;
        s->kcap = cap;
    }
    s->kbuf[0] = ns;
    if (len) {
        memcpy(s->kbuf + 1, key, len);
    }
    return s->kbuf;
}

/* The payload of a stored value, or false when it is malformed or expired at `now`. */
static bool payload(const char *v, size_t n, int64_t now, rv_buf_t *out, bool *expired) {
    *expired = false;
    if (n < 1) {
        return false;
    }
    size_t head = 1;
    if (v[0] & RV__VAL_EXPIRES) {
        if (n < 9) {
            return false;
        }
        int64_t at = rv__store_get_be64(v + 1);
        if (now != INT64_MIN && at <= now) {
            *expired = true;
            return false;
        }
        head = 9;
    }
    *out = (rv_buf_t){v + head, n - head};
    return true;
}

static bool key_ok(const void *key, size_t len) {
    return key && len >= 1 && len <= 65535;
}

rv_err_t rv__store_get(rv__store_t *s, const void *key, size_t key_len, rv_buf_t *value) {
    if (!key_ok(key, key_len)) {
        return RV_ERR_INVALID_ARG;
    }
    const char *k = rv__store_nskey(s, RV__NS_DATA, key, key_len);
    if (!k) {
        return RV_ERR_NOMEM;
    }
    const char *v;
    size_t n = 0;
    const rv__bent_t *e = wbuf_find(&s->buf, k, key_len + 1);
    if (e) {
        if (!e->val) {
            return RV_ERR_NOT_FOUND;
        }
        v = e->val;
        n = e->vlen;
    } else {
        free(s->getbuf);
        s->getbuf = NULL;
        char *err = NULL;
        s->getbuf = rv__rk.rocksdb_get(s->db, rv__store_ropts(), k, key_len + 1, &n, &err);
        if (err) {
            snprintf(s->errmsg, sizeof s->errmsg, "%s", err);
            free(err);
            return RV_ERR_IO;
        }
        if (!s->getbuf) {
            return RV_ERR_NOT_FOUND;
        }
        v = s->getbuf;
    }
    bool expired;
    if (!payload(v, n, s->time, value, &expired)) {
        if (expired && s->iters == 0) {
            rv__store_del(s, key, key_len); /* the tombstone also reaches the changelog */
        }
        if (!expired) {
            snprintf(s->errmsg, sizeof s->errmsg, "a stored value of %zu bytes is malformed", n);
            return RV_ERR_CORRUPT;
        }
        return RV_ERR_NOT_FOUND;
    }
    return RV_OK;
}

bool rv__store_exists(rv__store_t *s, const void *key, size_t key_len) {
    rv_buf_t v;
    return rv__store_get(s, key, key_len, &v) == RV_OK;
}

rv_err_t rv__store_put(rv__store_t *s, const void *key, size_t key_len, const void *value,
                       size_t value_len, int64_t expire_at) {
    if (!key_ok(key, key_len) || (!value && value_len) || value_len > UINT32_MAX - 16) {
        return RV_ERR_INVALID_ARG;
    }
    if (s->iters) {
        return RV_ERR_STATE;
    }
    int64_t before = s->buf.bytes;
    const char *k = rv__store_nskey(s, RV__NS_DATA, key, key_len);
    rv__bent_t *e = k ? wbuf_entry(&s->buf, k, key_len + 1) : NULL;
    if (!e) {
        account(s, before);
        return RV_ERR_NOMEM;
    }
    size_t hn = expire_at != 0 ? 9 : 1;
    size_t need = hn + value_len;
    if (!e->val || e->vcap < need) {
        char *v = malloc(need ? need : 1);
        if (!v) {
            account(s, before);
            return RV_ERR_NOMEM;
        }
        s->buf.bytes += (int64_t)need - (int64_t)e->vcap;
        free(e->val);
        e->val = v;
        e->vcap = (uint32_t)need;
    }
    e->val[0] = expire_at != 0 ? RV__VAL_EXPIRES : 0;
    if (expire_at != 0) {
        rv__store_put_be64(e->val + 1, expire_at);
    }
    if (value_len) {
        memcpy(e->val + hn, value, value_len);
    }
    e->vlen = (uint32_t)need;
    account(s, before);
    return RV_OK;
}

rv_err_t rv__store_del(rv__store_t *s, const void *key, size_t key_len) {
    if (!key_ok(key, key_len)) {
        return RV_ERR_INVALID_ARG;
    }
    if (s->iters) {
        return RV_ERR_STATE;
    }
    int64_t before = s->buf.bytes;
    const char *k = rv__store_nskey(s, RV__NS_DATA, key, key_len);
    rv__bent_t *e = k ? wbuf_entry(&s->buf, k, key_len + 1) : NULL;
    if (!e) {
        account(s, before);
        return RV_ERR_NOMEM;
    }
    s->buf.bytes -= e->vcap;
    free(e->val);
    e->val = NULL;
    e->vlen = e->vcap = 0;
    account(s, before);
    return RV_OK;
}

int64_t rv__store_time(const rv__store_t *s) {
    return s->time;
}

int32_t rv__store_partition(const rv__store_t *s) {
    return s->partition;
}

const char *rv__store_name(const rv__store_t *s) {
    return s->decl->name;
}

const char *rv__store_errmsg(const rv__store_t *s) {
    return s->errmsg;
}

/* ---- iteration ------------------------------------------------------------------------------ */

struct rv__store_iter_s {
    rv__store_t *store;
    rocksdb_iterator_t *it; /* the database */
    size_t bi;              /* the next buffered change (in the sorted index) */
    bool base_started;      /* `it` was positioned by the previous step (advance it first) */
    bool base_pending;      /* the previous step emitted a buffered key equal to it's key */
    char *hi;               /* namespaced end (exclusive) */
    size_t hi_len;
    rocksdb_readoptions_t *ro; /* with iterate_upper_bound = hi, so RocksDB stops at the end
                                  instead of stepping over deleted keys past it */
    rv_err_t err;
};

/* The first buffered change at or after `lo`. */
static size_t sorted_lower(const rv__wbuf_t *b, const char *lo, size_t lo_len) {
    size_t a = 0, z = b->nsorted;
    while (a < z) {
        size_t m = a + (z - a) / 2;
        const rv__bent_t *e = b->sorted[m];
        if (cmp_bytes(e->key, e->klen, lo, lo_len) < 0) {
            a = m + 1;
        } else {
            z = m;
        }
    }
    return a;
}

/* Makes an iterator from namespaced bounds `lo` (included) and `hi` (excluded). */
static rv__store_iter_t *iter_new(rv__store_t *s, const char *lo, size_t lo_len, const char *hi,
                                  size_t hi_len) {
    if (!wbuf_sort(&s->buf)) {
        return NULL;
    }
    rv__store_iter_t *it = calloc(1, sizeof *it);
    if (!it || !(it->hi = malloc(hi_len))) {
        free(it);
        return NULL;
    }
    memcpy(it->hi, hi, hi_len);
    it->hi_len = hi_len;
    it->store = s;
    if (!(it->ro = rv__rk.rocksdb_readoptions_create())) {
        free(it->hi);
        free(it);
        return NULL;
    }
    rv__rk.rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->hi, it->hi_len);
    it->it = rv__rk.rocksdb_create_iterator(s->db, it->ro);
    rv__rk.rocksdb_iter_seek(it->it, lo, lo_len);
    it->bi = sorted_lower(&s->buf, lo, lo_len);
    s->iters++;
    return it;
}

rv__store_iter_t *rv__store_iter(rv__store_t *s, const void *lo, size_t lo_len, const void *hi,
                                 size_t hi_len) {
    char *l = malloc(lo_len + 1), *h = malloc(hi_len + 1);
    if (!l || !h) {
        free(l);
        free(h);
        return NULL;
    }
    l[0] = RV__NS_DATA;
    if (lo) {
        memcpy(l + 1, lo, lo_len);
    } else {
        lo_len = 0;
    }
    size_t hn;
    if (hi) {
        h[0] = RV__NS_DATA;
        memcpy(h + 1, hi, hi_len);
        hn = hi_len + 1;
    } else {
        h[0] = RV__NS_DATA + 1;
        hn = 1;
    }
    rv__store_iter_t *it = iter_new(s, l, lo_len + 1, h, hn);
    free(l);
    free(h);
    return it;
}

rv__store_iter_t *rv__store_iter_prefix(rv__store_t *s, const void *prefix, size_t len) {
    char *l = malloc(len + 1), *h = malloc(len + 1);
    if (!l || !h) {
        free(l);
        free(h);
        return NULL;
    }
    l[0] = RV__NS_DATA;
    if (len) {
        memcpy(l + 1, prefix, len);
    }
    /* The end: the prefix with its last byte below 0xff incremented, cut after it. */
    memcpy(h, l, len + 1);
    size_t hn = len + 1;
    while (hn > 1 && (unsigned char)h[hn - 1] == 0xff) {
        hn--;
    }
    h[hn - 1] = (char)((unsigned char)h[hn - 1] + 1);
    rv__store_iter_t *it = iter_new(s, l, len + 1, h, hn);
    free(l);
    free(h);
    return it;
}

bool rv__store_iter_next(rv__store_iter_t *it, rv_buf_t *key, rv_buf_t *value) {
    if (!it || it->err) {
        return false;
    }
    const rv__wbuf_t *b = &it->store->buf;
    for (;;) {
        if (it->base_started) {
            rv__rk.rocksdb_iter_next(it->it);
            it->base_started = false;
        }
        /* The database's current key (NULL past the end or the bound). */
        size_t kn = 0, vn = 0;
        const char *k = NULL, *v = NULL;
        if (rv__rk.rocksdb_iter_valid(it->it)) {
            k = rv__rk.rocksdb_iter_key(it->it, &kn);
            if (cmp_bytes(k, kn, it->hi, it->hi_len) >= 0) {
                k = NULL;
            }
        } else {
            char *e = NULL;
            rv__rk.rocksdb_iter_get_error(it->it, &e);
            if (e) {
                snprintf(it->store->errmsg, sizeof it->store->errmsg, "%s", e);
                free(e);
                it->err = RV_ERR_IO;
                return false;
            }
        }
        /* The buffer's current key. */
        const rv__bent_t *e = it->bi < b->nsorted ? b->sorted[it->bi] : NULL;
        if (e && cmp_bytes(e->key, e->klen, it->hi, it->hi_len) >= 0) {
            e = NULL;
        }
        if (!k && !e) {
            return false;
        }
        int c = !k ? 1 : !e ? -1 : cmp_bytes(k, kn, e->key, e->klen);
        if (c >= 0) {
            /* The buffer's change wins (and hides the database's value of the same key). */
            it->bi++;
            if (c == 0) {
                it->base_started = true;
            }
            if (!e->val) {
                continue; /* a buffered deletion */
            }
            k = e->key;
            kn = e->klen;
            v = e->val;
            vn = e->vlen;
        } else {
            v = rv__rk.rocksdb_iter_value(it->it, &vn);
            it->base_started = true;
        }
        bool expired;
        if (!payload(v, vn, it->store->time, value, &expired)) {
            if (expired) {
                continue;
            }
            snprintf(it->store->errmsg, sizeof it->store->errmsg,
                     "a stored value of %zu bytes is malformed", vn);
            it->err = RV_ERR_CORRUPT;
            return false;
        }
        *key = (rv_buf_t){k + 1, kn - 1};
        return true;
    }
}

rv_err_t rv__store_iter_error(const rv__store_iter_t *it) {
    return it ? it->err : RV_ERR_INVALID_ARG;
}

void rv__store_iter_close(rv__store_iter_t *it) {
    if (!it) {
        return;
    }
    rv__rk.rocksdb_iter_destroy(it->it);
    rv__rk.rocksdb_readoptions_destroy(it->ro);
    it->store->iters--;
    free(it->hi);
    free(it);
}
