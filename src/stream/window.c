/*
 * window.c: the logic of windows over one partition: which windows a record belongs to, adding
 * it to their accumulators, merging sessions, the watermark, closing windows in watermark order,
 * late records, and closing idle keys on wall-clock time.
 *
 * Everything lives in an ordered byte-key store (rv__wstore_t, layout in window_int.h), so a
 * window survives restarts and partition moves with the store. Time windows and sessions are
 * indexed by the event time at which they close ("I" keys), so closing is a range scan from the
 * start of the index up to the watermark; an in-memory lower bound of the next close time
 * (rv__wpart_t.next_close) makes most records skip that scan.
 *
 * Definitions (docs/windows.md says the same to users):
 *   watermark W   = the largest event time seen in the partition - grace (per key, raised to the
 *                   key's close floor after an idle close);
 *   a time window closes when W >= its close time: its end (exclusive) for tumbling, hopping and
 *                   sliding windows, last record + gap for sessions;
 *   windows close BEFORE the record that moved W is added, so that record never enters a window
 *                   its own timestamp closed.
 * This file must never touch a broker or the runtime: it emits through a callback.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/json.h"
#include "stream/window_int.h"

/* ---- keys ------------------------------------------------------------------------------------ */

static void be64(uint8_t o[8], int64_t v) {
    uint64_t u = (uint64_t)v ^ UINT64_C(0x8000000000000000);
    for (int i = 7; i >= 0; i--) {
        o[i] = (uint8_t)u;
        u >>= 8;
    }
}

static int64_t unbe64(const uint8_t *in) {
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) {
        u = u << 8 | in[i];
    }
    return (int64_t)(u ^ UINT64_C(0x8000000000000000));
}

static rv_err_t app_be64(rv_strbuf_t *b, int64_t v) {
    uint8_t o[8];
    be64(o, v);
    return rv_strbuf_append(b, o, 8);
}

/* tag, key_len(u32 BE), key */
static rv_err_t app_keyed(rv_strbuf_t *b, char tag, const char *key, size_t len) {
    uint8_t h[5] = {(uint8_t)tag, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                    (uint8_t)len};
    rv_strbuf_clear(b);
    if (rv_strbuf_append(b, h, 5) != RV_OK) {
        return RV_ERR_NOMEM;
    }
    return rv_strbuf_append(b, key, len);
}

/* "W" key start end */
static rv_err_t wkey(rv_strbuf_t *b, const char *key, size_t len, int64_t start, int64_t end) {
    if (app_keyed(b, 'W', key, len) != RV_OK || app_be64(b, start) != RV_OK) {
        return RV_ERR_NOMEM;
    }
    return app_be64(b, end);
}

/* "I" close key_len key start */
static rv_err_t ikey(rv_strbuf_t *b, int64_t close, const char *key, size_t len, int64_t start) {
    uint8_t h[13];
    h[0] = 'I';
    be64(h + 1, close);
    h[9] = (uint8_t)(len >> 24);
    h[10] = (uint8_t)(len >> 16);
    h[11] = (uint8_t)(len >> 8);
    h[12] = (uint8_t)len;
    rv_strbuf_clear(b);
    if (rv_strbuf_append(b, h, 13) != RV_OK || rv_strbuf_append(b, key, len) != RV_OK) {
        return RV_ERR_NOMEM;
    }
    return app_be64(b, start);
}

static int64_t sat_sub(int64_t a, int64_t b) {
    return a < INT64_MIN + b ? INT64_MIN : a - b;
}

static int64_t sat_add(int64_t a, int64_t b) {
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* Floor division (rounds toward minus infinity). */
static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool is_time(rv_window_type_t t) {
    return t != RV_WINDOW_COUNT_TUMBLING && t != RV_WINDOW_COUNT_HOPPING;
}

/* ---- options --------------------------------------------------------------------------------- */

rv_err_t rv__window_check(const rv_window_opts_t *o, char *why, size_t why_size) {
    if (!o) {
        snprintf(why, why_size, "the options are NULL");
        return RV_ERR_INVALID_ARG;
    }
    if ((unsigned)o->type > RV_WINDOW_SESSION) {
        snprintf(why, why_size, "unknown window type %d", (int)o->type);
        return RV_ERR_INVALID_ARG;
    }
    if (o->size <= 0) {
        snprintf(why, why_size, "the size must be > 0 (it is %lld)", (long long)o->size);
        return RV_ERR_INVALID_ARG;
    }
    bool hop = o->type == RV_WINDOW_HOPPING || o->type == RV_WINDOW_COUNT_HOPPING;
    if (hop && (o->step <= 0 || o->step > o->size)) {
        snprintf(why, why_size, "a hopping window needs 0 < step <= size (step %lld, size %lld)",
                 (long long)o->step, (long long)o->size);
        return RV_ERR_INVALID_ARG;
    }
    if (!hop && o->step != 0) {
        snprintf(why, why_size, "step is for hopping windows only");
        return RV_ERR_INVALID_ARG;
    }
    if (o->grace_ms < 0 || o->idle_timeout_ms < 0) {
        snprintf(why, why_size, "grace_ms and idle_timeout_ms must be >= 0");
        return RV_ERR_INVALID_ARG;
    }
    if (!is_time(o->type) && o->grace_ms != 0) {
        snprintf(why, why_size, "count windows have no grace period (they close on counts)");
        return RV_ERR_INVALID_ARG;
    }
    if (o->emit != RV_EMIT_FINAL && o->emit != RV_EMIT_CURRENT) {
        snprintf(why, why_size, "unknown emission mode %d", (int)o->emit);
        return RV_ERR_INVALID_ARG;
    }
    if (o->type == RV_WINDOW_HOPPING && o->size / o->step > 10000) {
        snprintf(why, why_size, "size/step is %lld: at most 10000 windows per record",
                 (long long)(o->size / o->step));
        return RV_ERR_INVALID_ARG;
    }
    return RV_OK;
}

/* ---- partitions ------------------------------------------------------------------------------ */

rv_err_t rv__wpart_init(rv__wpart_t *p, const rv__window_t *w, rv__wstore_t store) {
    memset(p, 0, sizeof *p);
    p->store = store;
    p->max_ts = INT64_MIN;
    p->next_close = INT64_MIN;
    p->closed_upto = INT64_MIN;
    p->acc = malloc(w->aggs.acc_size);
    p->acc2 = malloc(w->aggs.acc_size);
    if (!p->acc || !p->acc2) {
        free(p->acc);
        free(p->acc2);
        p->acc = p->acc2 = NULL;
        return RV_ERR_NOMEM;
    }
    return RV_OK;
}

void rv__wpart_free(rv__wpart_t *p, const rv__window_t *w) {
    if (!p) {
        return;
    }
    free(p->acc);
    free(p->acc2);
    rv_strbuf_free(&p->kbuf);
    rv_strbuf_free(&p->vbuf);
    rv_strbuf_free(&p->jkey);
    memset(p, 0, sizeof *p);
}

/* ---- the store ------------------------------------------------------------------------------- */

static rv_err_t st_get(rv__wpart_t *p, const rv_strbuf_t *k, const void **v, size_t *vl) {
    return p->store.ops->get(p->store.s, k->data, k->len, v, vl);
}

static rv_err_t st_put(rv__wpart_t *p, const rv_strbuf_t *k, const void *v, size_t vl) {
    return p->store.ops->put(p->store.s, k->data, k->len, v, vl);
}

static rv_err_t st_del(rv__wpart_t *p, const rv_strbuf_t *k) {
    return p->store.ops->del(p->store.s, k->data, k->len);
}

/* Entries collected by a scan: [u32 klen][key][u32 vlen][val] each, in a heap buffer. */
typedef struct coll_s {
    rv_strbuf_t buf;
    size_t n;
    size_t max; /* 0 = no limit */
    bool nomem;
} coll_t;

static int coll_fn(void *arg, const void *k, size_t kl, const void *v, size_t vl) {
    coll_t *c = arg;
    uint32_t a = (uint32_t)kl, b = (uint32_t)vl;
    if (rv_strbuf_append(&c->buf, &a, 4) != RV_OK || rv_strbuf_append(&c->buf, k, kl) != RV_OK ||
        rv_strbuf_append(&c->buf, &b, 4) != RV_OK || rv_strbuf_append(&c->buf, v, vl) != RV_OK) {
        c->nomem = true;
        return 1;
    }
    c->n++;
    return c->max && c->n >= c->max;
}

/* Walks collected entries: returns the next offset, with views of key and value. */
static size_t coll_next(const coll_t *c, size_t at, const uint8_t **k, size_t *kl,
                        const uint8_t **v, size_t *vl) {
    const uint8_t *b = (const uint8_t *)c->buf.data;
    uint32_t a, d;
    memcpy(&a, b + at, 4);
    *k = b + at + 4;
    *kl = a;
    memcpy(&d, b + at + 4 + a, 4);
    *v = b + at + 8 + a;
    *vl = d;
    return at + 8 + a + d;
}

static rv_err_t st_scan(rv__wpart_t *p, const rv_strbuf_t *from, const rv_strbuf_t *to, coll_t *c) {
    rv_err_t e = p->store.ops->scan(p->store.s, from->data, from->len, to ? to->data : NULL,
                                    to ? to->len : 0, coll_fn, c);
    return e != RV_OK ? e : c->nomem ? RV_ERR_NOMEM : RV_OK;
}

/* Fails the record with a store error. */
static rv_err_t st_fail(rv_ctx_t *ctx, rv_err_t e, const char *what) {
    if (ctx) {
        rv__ctx_failf(ctx, "window store: %s: %s (%s)", what, rv_err_name(e), rv_err_str(e));
    }
    return e;
}

/* ---- emitting -------------------------------------------------------------------------------- */

typedef struct emitter_s {
    rv__wemit_fn fn;
    void *arg;
} emitter_t;

/* Emits the window whose block is p->acc with bounds [start, end). */
static rv_err_t emit_acc(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx, const emitter_t *em,
                         const char *key, size_t klen, int64_t start, int64_t end,
                         const void *acc) {
    rv_value_t *v = rv__aggset_result(&w->aggs, acc, ctx->arena, start, end);
    if (!v) {
        rv__ctx_failf(ctx, "window: out of memory in the batch arena");
        return RV_ERR_NOMEM;
    }
    return em->fn(em->arg, ctx, key, klen, start, end, v);
}

/* Bounds a block covers when emitted: time windows their own, count windows their records'. */
static void emit_bounds(const rv__window_t *w, const void *acc, int64_t start, int64_t end,
                        int64_t *s, int64_t *e) {
    const rv__acc_head_t *h = acc;
    if (is_time(w->opts.type)) {
        *s = start;
        *e = end;
    } else {
        *s = h->min_ts;
        *e = sat_add(h->max_ts, 1);
    }
}

/* ---- sliding windows: contents from the kept records ----------------------------------------- */

/* A kept record of a sliding window. */
typedef struct kept_s {
    int64_t ts;
    int64_t seq;
    uint32_t n; /* among records of one arrival position */
    rv_value_t *val;
} kept_t;

/* Arrival order: position, then the counter of records sharing it. */
static int kept_cmp(const void *a, const void *b) {
    const kept_t *x = a, *y = b;
    if (x->seq != y->seq) {
        return x->seq < y->seq ? -1 : 1;
    }
    return x->n < y->n ? -1 : x->n > y->n;
}

/* Aggregates into p->acc the kept records of `key` with start <= ts <= last. */
static rv_err_t sliding_content(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx,
                                const char *key, size_t klen, int64_t start, int64_t last) {
    rv_strbuf_t from = RV_STRBUF_INIT, to = RV_STRBUF_INIT;
    coll_t c = {0};
    rv_err_t e = RV_ERR_NOMEM;
    rv__aggset_init(&w->aggs, p->acc);
    if (app_keyed(&from, 'R', key, klen) == RV_OK && app_be64(&from, start) == RV_OK &&
        app_keyed(&to, 'R', key, klen) == RV_OK && app_be64(&to, sat_add(last, 1)) == RV_OK) {
        e = st_scan(p, &from, &to, &c);
    }
    /* add them in arrival order (they are kept in time order) */
    kept_t *ks = e == RV_OK && c.n ? rv_arena_alloc(ctx->arena, c.n * sizeof *ks) : NULL;
    if (e == RV_OK && c.n && !ks) {
        e = RV_ERR_NOMEM;
    }
    size_t n = 0;
    for (size_t at = 0; e == RV_OK && at < c.buf.len;) {
        const uint8_t *k, *v;
        size_t kl, vl;
        at = coll_next(&c, at, &k, &kl, &v, &vl);
        rv_value_t *val = NULL;
        if (kl < 20 ||
            rv_json_parse(ctx->arena, (const char *)v, vl, NULL, &val, NULL, NULL) != RV_OK) {
            e = RV_ERR_CORRUPT;
            break;
        }
        const uint8_t *t = k + kl - 4;
        ks[n++] =
            (kept_t){unbe64(k + kl - 20), unbe64(k + kl - 12),
                     (uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3], val};
    }
    if (e == RV_OK && n > 1) {
        qsort(ks, n, sizeof *ks, kept_cmp);
    }
    for (size_t i = 0; e == RV_OK && i < n; i++) {
        e = rv__aggset_add(&w->aggs, p->acc, ks[i].val, ks[i].ts, ks[i].seq, ctx);
    }
    rv_strbuf_free(&from);
    rv_strbuf_free(&to);
    rv_strbuf_free(&c.buf);
    if (e != RV_OK && !ctx->fail_set) {
        st_fail(ctx, e, "reading the records of a sliding window");
    }
    return e;
}

/* Deletes the kept records of `key` with ts < before (before = INT64_MAX: all). */
static rv_err_t sliding_prune(rv__wpart_t *p, const char *key, size_t klen, int64_t before) {
    rv_strbuf_t from = RV_STRBUF_INIT, to = RV_STRBUF_INIT, k1 = RV_STRBUF_INIT;
    coll_t c = {0};
    rv_err_t e = RV_ERR_NOMEM;
    if (app_keyed(&from, 'R', key, klen) == RV_OK && app_keyed(&to, 'R', key, klen) == RV_OK &&
        (before == INT64_MAX ? rv_strbuf_append(&to, "\xff\xff\xff\xff\xff\xff\xff\xff\xff", 9)
                             : app_be64(&to, before)) == RV_OK) {
        e = st_scan(p, &from, &to, &c);
    }
    for (size_t at = 0; e == RV_OK && at < c.buf.len;) {
        const uint8_t *k, *v;
        size_t kl, vl;
        at = coll_next(&c, at, &k, &kl, &v, &vl);
        rv_strbuf_clear(&k1);
        e = rv_strbuf_append(&k1, k, kl);
        if (e == RV_OK) {
            e = st_del(p, &k1);
        }
    }
    rv_strbuf_free(&from);
    rv_strbuf_free(&to);
    rv_strbuf_free(&k1);
    rv_strbuf_free(&c.buf);
    return e;
}

/* ---- closing --------------------------------------------------------------------------------- */

/* Closes one window: emits it (final mode), deletes its record and index entry. `close` is its
 * index time. */
static rv_err_t close_one(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx, const emitter_t *em,
                          const char *key, size_t klen, int64_t start, int64_t end, int64_t close) {
    rv_strbuf_t k = RV_STRBUF_INIT;
    const void *v;
    size_t vl;
    rv_err_t e = wkey(&k, key, klen, start, end);
    bool found = false;
    if (e == RV_OK) {
        e = st_get(p, &k, &v, &vl);
        if (e == RV_OK) {
            found = true;
            e = rv__aggset_decode(&w->aggs, p->acc, v, vl);
            if (e != RV_OK) {
                st_fail(ctx, e, "a window's accumulator does not decode");
            }
        } else if (e == RV_ERR_NOT_FOUND) {
            e = RV_OK; /* an index entry without its window: drop it */
        }
    }
    if (e == RV_OK && found && w->opts.type == RV_WINDOW_SLIDING) {
        rv__aggset_release(&w->aggs, p->acc);
        e = sliding_content(w, p, ctx, key, klen, start, end - 1);
    }
    if (e == RV_OK && found && w->opts.emit == RV_EMIT_FINAL &&
        ((const rv__acc_head_t *)p->acc)->count > 0) {
        int64_t s, en;
        emit_bounds(w, p->acc, start, end, &s, &en);
        e = emit_acc(w, p, ctx, em, key, klen, s, en, p->acc);
    }
    if (found) {
        rv__aggset_release(&w->aggs, p->acc);
    }
    if (e == RV_OK) {
        e = st_del(p, &k);
    }
    if (e == RV_OK && is_time(w->opts.type)) {
        e = ikey(&k, close, key, klen, start);
        if (e == RV_OK) {
            e = st_del(p, &k);
        }
    }
    if (e == RV_OK && w->opts.type == RV_WINDOW_SLIDING) {
        e = sliding_prune(p, key, klen, start);
    }
    rv_strbuf_free(&k);
    if (e != RV_OK && !ctx->fail_set) {
        st_fail(ctx, e, "closing a window");
    }
    return e;
}

/*
 * A key kept (never deleted) just past every index key. A store's range scan that finds no entry
 * in its range walks on to the next live key, over every deleted entry on the way; closed
 * windows leave many deleted keys after the index ("W" keys), so without this sentinel each
 * close pass would step over all of them.
 */
static const char sentinel[] = "I\xff\xff\xff\xff\xff\xff\xff\xff\xff";

/* Makes sure the sentinel is in the store. */
static rv_err_t put_sentinel(rv__wpart_t *p) {
    const void *v;
    size_t vl;
    rv_err_t e = p->store.ops->get(p->store.s, sentinel, sizeof sentinel - 1, &v, &vl);
    if (e == RV_ERR_NOT_FOUND) {
        e = p->store.ops->put(p->store.s, sentinel, sizeof sentinel - 1, "", 0);
    }
    return e;
}

/* Closes, in close-time order, every window whose close time is <= wm. */
static rv_err_t close_due(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx, const emitter_t *em,
                          int64_t wm) {
    if (wm < p->next_close) {
        return RV_OK;
    }
    rv_strbuf_t from = RV_STRBUF_INIT, to = RV_STRBUF_INIT;
    coll_t c = {0};
    rv_err_t e = RV_ERR_NOMEM;
    rv_strbuf_t end = RV_STRBUF_INIT;  /* past every index key */
    if (p->closed_upto == INT64_MIN) { /* the first pass over this store */
        rv_err_t se = put_sentinel(p);
        if (se != RV_OK) {
            return st_fail(ctx, se, "writing the index sentinel");
        }
    }
    /* Every window closing at or before closed_upto was closed by an earlier pass and none can
     * open there since (a window is only created when its close time is past the watermark), so
     * the scan starts after it: the deleted entries before it would only be skipped again. */
    if (rv_strbuf_append(&from, "I", 1) == RV_OK &&
        (p->closed_upto == INT64_MIN || app_be64(&from, sat_add(p->closed_upto, 1)) == RV_OK) &&
        rv_strbuf_append(&end, sentinel, sizeof sentinel - 1) == RV_OK &&
        rv_strbuf_append(&to, "I", 1) == RV_OK && app_be64(&to, sat_add(wm, 1)) == RV_OK) {
        e = st_scan(p, &from, wm == INT64_MAX ? &end : &to, &c);
    }
    for (size_t at = 0; e == RV_OK && at < c.buf.len;) {
        const uint8_t *k, *v;
        size_t kl, vl;
        at = coll_next(&c, at, &k, &kl, &v, &vl);
        if (kl < 1 + 8 + 4 + 8 || vl != 8 || k[0] != 'I') {
            e = st_fail(ctx, RV_ERR_CORRUPT, "a window index entry is damaged");
            break;
        }
        size_t klen = (size_t)k[9] << 24 | (size_t)k[10] << 16 | (size_t)k[11] << 8 | k[12];
        if (kl != 13 + klen + 8) {
            e = st_fail(ctx, RV_ERR_CORRUPT, "a window index entry is damaged");
            break;
        }
        e = close_one(w, p, ctx, em, (const char *)k + 13, klen, unbe64(k + 13 + klen), unbe64(v),
                      unbe64(k + 1));
    }
    rv_strbuf_free(&c.buf);
    if (e == RV_OK) { /* the next close time: the first index entry left */
        p->closed_upto = wm;
        coll_t first = {.max = 1};
        e = st_scan(p, &to, &end, &first);
        if (e == RV_OK) {
            const uint8_t *k, *v;
            size_t kl, vl;
            if (first.n == 1) {
                coll_next(&first, 0, &k, &kl, &v, &vl);
                p->next_close = kl >= 9 ? unbe64(k + 1) : INT64_MIN;
            } else {
                p->next_close = INT64_MAX;
            }
        }
        rv_strbuf_free(&first.buf);
    }
    rv_strbuf_free(&from);
    rv_strbuf_free(&to);
    rv_strbuf_free(&end);
    if (e != RV_OK && !ctx->fail_set) {
        st_fail(ctx, e, "closing windows");
    }
    return e;
}

/* ---- adding ---------------------------------------------------------------------------------- */

/* Loads window [start, end) of the key into p->acc (empty when new); *is_new says which. */
static rv_err_t load(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx, const char *key,
                     size_t klen, int64_t start, int64_t end, bool *is_new) {
    const void *v;
    size_t vl;
    rv_err_t e = wkey(&p->kbuf, key, klen, start, end);
    if (e == RV_OK) {
        e = st_get(p, &p->kbuf, &v, &vl);
    }
    if (e == RV_ERR_NOT_FOUND) {
        rv__aggset_init(&w->aggs, p->acc);
        *is_new = true;
        return RV_OK;
    }
    *is_new = false;
    if (e == RV_OK) {
        e = rv__aggset_decode(&w->aggs, p->acc, v, vl);
        if (e != RV_OK) {
            return st_fail(ctx, e, "a window's accumulator does not decode");
        }
    }
    return e == RV_OK ? RV_OK : st_fail(ctx, e, "reading a window");
}

/* Stores p->acc as window [start, end) (p->kbuf must still hold its key), indexing it at
 * `close` when new. Releases p->acc. */
static rv_err_t store_acc(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx, const char *key,
                          size_t klen, int64_t start, int64_t end, int64_t close, bool is_new) {
    rv_strbuf_clear(&p->vbuf);
    rv_err_t e = rv__aggset_encode(&w->aggs, p->acc, &p->vbuf);
    rv__aggset_release(&w->aggs, p->acc);
    if (e == RV_OK) {
        e = st_put(p, &p->kbuf, p->vbuf.data, p->vbuf.len);
    }
    if (e == RV_OK && is_new && is_time(w->opts.type)) {
        uint8_t ev[8];
        be64(ev, end);
        e = ikey(&p->kbuf, close, key, klen, start);
        if (e == RV_OK) {
            e = st_put(p, &p->kbuf, ev, 8);
        }
        if (close < p->next_close) {
            p->next_close = close;
        }
    }
    return e == RV_OK ? RV_OK : st_fail(ctx, e, "writing a window");
}

/* Reports a window the record missed. */
static void late(const rv__window_t *w, rv_ctx_t *ctx, const rv_value_t *key, int64_t ts,
                 int64_t start, int64_t end) {
    if (w->opts.on_late) {
        w->opts.on_late(w->opts.late_opaque, ctx, key, ts, start, end);
    }
}

/* Tumbling and hopping windows. */
static rv_err_t add_fixed(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx, const emitter_t *em,
                          const rv_value_t *key, const char *jk, size_t jl, const rv_value_t *value,
                          int64_t ts, int64_t seq, int64_t now_ms, int64_t wm) {
    int64_t size = w->opts.size;
    int64_t step = w->opts.type == RV_WINDOW_HOPPING ? w->opts.step : size;
    int64_t hi = floor_div(ts, step) * step;
    int64_t lo = sat_add(sat_sub(ts, size), 1); /* smallest start whose window holds ts */
    /* oldest window first */
    int64_t first = hi - floor_div(hi - lo, step) * step;
    for (int64_t s = first; s <= hi; s += step) {
        int64_t end = sat_add(s, size);
        if (end <= wm) {
            late(w, ctx, key, ts, s, end);
            continue;
        }
        bool is_new;
        rv_err_t e = load(w, p, ctx, jk, jl, s, end, &is_new);
        if (e == RV_OK) {
            e = rv__aggset_add(&w->aggs, p->acc, value, ts, seq, ctx);
            ((rv__acc_head_t *)p->acc)->touched_ms = now_ms;
            if (e != RV_OK) {
                rv__aggset_release(&w->aggs, p->acc);
                return e;
            }
        }
        if (e == RV_OK && w->opts.emit == RV_EMIT_CURRENT) {
            e = emit_acc(w, p, ctx, em, jk, jl, s, end, p->acc);
            if (e != RV_OK) {
                rv__aggset_release(&w->aggs, p->acc);
                return e;
            }
        }
        if (e == RV_OK) {
            e = store_acc(w, p, ctx, jk, jl, s, end, end, is_new);
        }
        if (e != RV_OK) {
            return e;
        }
    }
    return RV_OK;
}

/* Whether window [s, s+D] of a sliding key exists. */
static rv_err_t sl_exists(rv__wpart_t *p, const char *jk, size_t jl, int64_t s, int64_t d,
                          bool *yes) {
    const void *v;
    size_t vl;
    rv_err_t e = wkey(&p->kbuf, jk, jl, s, sat_add(sat_add(s, d), 1));
    if (e == RV_OK) {
        e = st_get(p, &p->kbuf, &v, &vl);
    }
    *yes = e == RV_OK;
    return e == RV_ERR_NOT_FOUND ? RV_OK : e;
}

/* Creates sliding window [s, s+D] of the key unless it exists, or reports it late when it would
 * be born closed. */
static rv_err_t sl_create(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx,
                          const rv_value_t *key, const char *jk, size_t jl, int64_t ts, int64_t s,
                          int64_t now_ms, int64_t wm) {
    int64_t d = w->opts.size, end = sat_add(sat_add(s, d), 1);
    bool yes;
    rv_err_t e = sl_exists(p, jk, jl, s, d, &yes);
    if (e != RV_OK || yes) {
        return e == RV_OK ? RV_OK : st_fail(ctx, e, "reading a window");
    }
    if (end <= wm) {
        late(w, ctx, key, ts, s, end);
        return RV_OK;
    }
    rv__aggset_init(&w->aggs, p->acc);
    ((rv__acc_head_t *)p->acc)->touched_ms = now_ms;
    return store_acc(w, p, ctx, jk, jl, s, end, end, true); /* p->kbuf holds the W key */
}

/* Sliding windows of time difference D (Kafka Streams' definition): for each record time t of a
 * key, the window [t-D, t] and, when a later record falls in it, the window [t+1, t+1+D]. Their
 * contents are computed from the key's kept records when they are emitted. */
static rv_err_t add_sliding(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx,
                            const emitter_t *em, const rv_value_t *key, const char *jk, size_t jl,
                            const rv_value_t *value, int64_t ts, int64_t seq, int64_t now_ms,
                            int64_t wm) {
    int64_t d = w->opts.size;
    if (sat_add(sat_add(ts, d), 1) <= wm) { /* every window holding it is closed */
        late(w, ctx, key, ts, sat_sub(ts, d), sat_add(ts, 1));
        return RV_OK;
    }
    /* keep the record */
    rv_strbuf_t vj = RV_STRBUF_INIT;
    rv_error_t *err = NULL;
    rv_err_t e = rv_json_write(&vj, value, RV_JSON_COMPACT, &err);
    if (e != RV_OK) {
        rv__ctx_failf(ctx, "sliding window: cannot keep the record: %s",
                      err ? rv_error_message(err) : rv_err_str(e));
        rv_error_destroy(err);
        rv_strbuf_free(&vj);
        return e;
    }
    /* check the aggregations accept it before anything changes */
    rv__aggset_init(&w->aggs, p->acc);
    e = rv__aggset_add(&w->aggs, p->acc, value, ts, seq, ctx);
    rv__aggset_release(&w->aggs, p->acc);
    if (e == RV_OK) {
        e = app_keyed(&p->kbuf, 'R', jk, jl);
    }
    if (e == RV_OK && (e = app_be64(&p->kbuf, ts)) == RV_OK &&
        (e = app_be64(&p->kbuf, seq)) == RV_OK) {
        /* records of one arrival position (an expand's items) are told apart by a counter */
        uint8_t nb[4] = {0, 0, 0, 0};
        e = rv_strbuf_append(&p->kbuf, nb, 4);
        for (uint32_t n = 0; e == RV_OK; n++) {
            const void *v;
            size_t vl;
            uint8_t *tail = (uint8_t *)p->kbuf.data + p->kbuf.len - 4;
            tail[0] = (uint8_t)(n >> 24), tail[1] = (uint8_t)(n >> 16);
            tail[2] = (uint8_t)(n >> 8), tail[3] = (uint8_t)n;
            e = st_get(p, &p->kbuf, &v, &vl);
            if (e == RV_ERR_NOT_FOUND) {
                e = st_put(p, &p->kbuf, vj.data, vj.len);
                break;
            }
        }
    }
    rv_strbuf_free(&vj);
    if (e != RV_OK) {
        return ctx->fail_set ? e : st_fail(ctx, e, "keeping a record");
    }
    /* the kept records near ts: [ts-D-1, ts+D+1] */
    rv_strbuf_t from = RV_STRBUF_INIT, to = RV_STRBUF_INIT;
    coll_t c = {0};
    e = RV_ERR_NOMEM;
    if (app_keyed(&from, 'R', jk, jl) == RV_OK &&
        app_be64(&from, sat_sub(sat_sub(ts, d), 1)) == RV_OK &&
        app_keyed(&to, 'R', jk, jl) == RV_OK &&
        app_be64(&to, sat_add(sat_add(ts, d), 2)) == RV_OK) {
        e = st_scan(p, &from, &to, &c);
    }
    /* the left window of ts */
    if (e == RV_OK) {
        e = sl_create(w, p, ctx, key, jk, jl, ts, sat_sub(ts, d), now_ms, wm);
    }
    bool right = false;
    int64_t prev_v = INT64_MIN;
    for (size_t at = 0; e == RV_OK && at < c.buf.len;) {
        const uint8_t *k, *v;
        size_t kl, vl;
        at = coll_next(&c, at, &k, &kl, &v, &vl);
        int64_t u = unbe64(k + kl - 20);
        if (u > ts && u <= sat_add(ts, d) + 1) {
            right = true; /* a later record falls in [ts+1, ts+1+D] */
        }
        if (u < ts && u >= sat_sub(sat_sub(ts, d), 1) && u != prev_v) {
            /* ts falls in the right window [u+1, u+1+D] of the earlier record u */
            e = sl_create(w, p, ctx, key, jk, jl, ts, sat_add(u, 1), now_ms, wm);
            prev_v = u;
        }
    }
    rv_strbuf_free(&c.buf);
    if (e == RV_OK && right) {
        e = sl_create(w, p, ctx, key, jk, jl, ts, sat_add(ts, 1), now_ms, wm);
    }
    /* touch and (current mode) emit every open window holding ts: starts in [ts-D, ts] */
    if (e == RV_OK) {
        coll_t ws = {0};
        e = RV_ERR_NOMEM;
        if (app_keyed(&from, 'W', jk, jl) == RV_OK && app_be64(&from, sat_sub(ts, d)) == RV_OK &&
            app_keyed(&to, 'W', jk, jl) == RV_OK && app_be64(&to, sat_add(ts, 1)) == RV_OK) {
            e = st_scan(p, &from, &to, &ws);
        }
        for (size_t at = 0; e == RV_OK && at < ws.buf.len;) {
            const uint8_t *k, *v;
            size_t kl, vl;
            at = coll_next(&ws, at, &k, &kl, &v, &vl);
            int64_t s = unbe64(k + kl - 16), end = unbe64(k + kl - 8);
            e = rv__aggset_decode(&w->aggs, p->acc, v, vl);
            if (e != RV_OK) {
                st_fail(ctx, e, "a window's record does not decode");
                break;
            }
            ((rv__acc_head_t *)p->acc)->touched_ms = now_ms;
            rv_strbuf_clear(&p->kbuf);
            rv_strbuf_append(&p->kbuf, k, kl);
            e = store_acc(w, p, ctx, jk, jl, s, end, end, false);
            if (e == RV_OK && w->opts.emit == RV_EMIT_CURRENT) {
                e = sliding_content(w, p, ctx, jk, jl, s, end - 1);
                if (e == RV_OK) {
                    e = emit_acc(w, p, ctx, em, jk, jl, s, end, p->acc);
                }
                rv__aggset_release(&w->aggs, p->acc);
            }
        }
        rv_strbuf_free(&ws.buf);
    }
    rv_strbuf_free(&from);
    rv_strbuf_free(&to);
    if (e != RV_OK && !ctx->fail_set) {
        st_fail(ctx, e, "sliding window");
    }
    return e;
}

/* Session windows: records of a key less than `gap` apart share a session; a record that falls
 * within the gap of several sessions merges them. A session [s, L] closes at L + gap. */
static rv_err_t add_session(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx,
                            const emitter_t *em, const rv_value_t *key, const char *jk, size_t jl,
                            const rv_value_t *value, int64_t ts, int64_t seq, int64_t now_ms,
                            int64_t wm) {
    int64_t gap = w->opts.size;
    if (ts < wm) {
        late(w, ctx, key, ts, ts, sat_add(ts, 1));
        return RV_OK;
    }
    rv_strbuf_t from = RV_STRBUF_INIT;
    coll_t c = {0};
    rv_err_t e = app_keyed(&from, 'W', jk, jl);
    if (e == RV_OK) {
        rv_strbuf_t to = RV_STRBUF_INIT;
        e = app_keyed(&to, 'W', jk, jl);
        if (e == RV_OK) {
            e = rv_strbuf_append(&to, "\xff\xff\xff\xff\xff\xff\xff\xff\xff", 9);
        }
        if (e == RV_OK) {
            e = st_scan(p, &from, &to, &c);
        }
        rv_strbuf_free(&to);
    }
    rv__aggset_init(&w->aggs, p->acc);
    int64_t ms = ts, ml = ts;
    for (size_t at = 0; e == RV_OK && at < c.buf.len;) {
        const uint8_t *k, *v;
        size_t kl, vl;
        at = coll_next(&c, at, &k, &kl, &v, &vl);
        int64_t s = unbe64(k + kl - 16), end = unbe64(k + kl - 8), last = end - 1;
        if (!(ts > sat_sub(s, gap) && ts < sat_add(last, gap))) {
            continue;
        }
        e = rv__aggset_decode(&w->aggs, p->acc2, v, vl);
        if (e != RV_OK) {
            st_fail(ctx, e, "a session's accumulator does not decode");
            break;
        }
        rv__aggset_merge(&w->aggs, p->acc, p->acc2);
        rv__aggset_release(&w->aggs, p->acc2);
        ms = s < ms ? s : ms;
        ml = last > ml ? last : ml;
        rv_strbuf_clear(&p->kbuf);
        e = rv_strbuf_append(&p->kbuf, k, kl);
        if (e == RV_OK) {
            e = st_del(p, &p->kbuf);
        }
        if (e == RV_OK) {
            e = ikey(&p->kbuf, sat_add(last, gap), jk, jl, s);
        }
        if (e == RV_OK) {
            e = st_del(p, &p->kbuf);
        }
    }
    rv_strbuf_free(&c.buf);
    rv_strbuf_free(&from);
    if (e == RV_OK) {
        e = rv__aggset_add(&w->aggs, p->acc, value, ts, seq, ctx);
    }
    if (e != RV_OK) {
        rv__aggset_release(&w->aggs, p->acc);
        return ctx->fail_set ? e : st_fail(ctx, e, "session window");
    }
    ((rv__acc_head_t *)p->acc)->touched_ms = now_ms;
    if (w->opts.emit == RV_EMIT_CURRENT) {
        e = emit_acc(w, p, ctx, em, jk, jl, ms, sat_add(ml, 1), p->acc);
        if (e != RV_OK) {
            rv__aggset_release(&w->aggs, p->acc);
            return e;
        }
    }
    e = wkey(&p->kbuf, jk, jl, ms, sat_add(ml, 1));
    if (e != RV_OK) {
        rv__aggset_release(&w->aggs, p->acc);
        return st_fail(ctx, e, "session window");
    }
    return store_acc(w, p, ctx, jk, jl, ms, sat_add(ml, 1), sat_add(ml, gap), true);
}

/* Count windows: the key's n-th record (from 0) belongs to windows k with
 * k*step <= n < k*step + size (step = size for tumbling). */
static rv_err_t add_count(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx, const emitter_t *em,
                          const char *jk, size_t jl, const rv_value_t *value, int64_t ts,
                          int64_t seq, int64_t now_ms) {
    int64_t size = w->opts.size;
    int64_t step = w->opts.type == RV_WINDOW_COUNT_HOPPING ? w->opts.step : size;
    rv_strbuf_t ck = RV_STRBUF_INIT;
    const void *v;
    size_t vl;
    int64_t n = 0;
    rv_err_t e = app_keyed(&ck, 'C', jk, jl);
    if (e == RV_OK) {
        e = st_get(p, &ck, &v, &vl);
        if (e == RV_OK && vl == 8) {
            n = unbe64(v);
        } else if (e == RV_OK || e == RV_ERR_NOT_FOUND) {
            e = RV_OK;
        }
    }
    int64_t kmin = n - size < 0 ? 0 : (n - size) / step + 1, kmax = n / step;
    for (int64_t k = kmin; e == RV_OK && k <= kmax; k++) {
        bool is_new;
        e = load(w, p, ctx, jk, jl, k, 0, &is_new);
        if (e != RV_OK) {
            break;
        }
        e = rv__aggset_add(&w->aggs, p->acc, value, ts, seq, ctx);
        rv__acc_head_t *h = p->acc;
        h->touched_ms = now_ms;
        bool full = h->count >= size;
        if (e == RV_OK && (w->opts.emit == RV_EMIT_CURRENT || full)) {
            e = emit_acc(w, p, ctx, em, jk, jl, h->min_ts, sat_add(h->max_ts, 1), p->acc);
        }
        if (e != RV_OK) {
            rv__aggset_release(&w->aggs, p->acc);
            break;
        }
        if (full) {
            rv__aggset_release(&w->aggs, p->acc);
            e = st_del(p, &p->kbuf);
        } else {
            e = store_acc(w, p, ctx, jk, jl, k, 0, 0, is_new);
        }
    }
    if (e == RV_OK) {
        uint8_t b[8];
        be64(b, n + 1);
        e = p->store.ops->put(p->store.s, ck.data, ck.len, b, 8);
    }
    rv_strbuf_free(&ck);
    if (e != RV_OK && !ctx->fail_set) {
        st_fail(ctx, e, "count window");
    }
    return e;
}

/* ---- records --------------------------------------------------------------------------------- */

/* The key's close floor (INT64_MIN when none); deletes a floor the watermark passed. */
static rv_err_t floor_of(rv__wpart_t *p, const char *jk, size_t jl, int64_t wm, int64_t *out) {
    rv_strbuf_t k = RV_STRBUF_INIT;
    const void *v;
    size_t vl;
    *out = INT64_MIN;
    rv_err_t e = app_keyed(&k, 'F', jk, jl);
    if (e == RV_OK) {
        e = st_get(p, &k, &v, &vl);
        if (e == RV_OK && vl == 8) {
            *out = unbe64(v);
            if (*out <= wm) {
                e = st_del(p, &k);
                *out = INT64_MIN;
            }
        } else if (e == RV_OK || e == RV_ERR_NOT_FOUND) {
            e = RV_OK;
        }
    }
    rv_strbuf_free(&k);
    return e;
}

/* ---- keys of records ------------------------------------------------------------------------- */

/* A key's bytes in the store: a type byte, then 'n': nothing (no key or null), 's': the string's
 * bytes, 'b': the bytes, 'j': the JSON text of any other value. Strings and bytes keep their
 * exact bytes (JSON would turn bytes into base64 text), and every kind reads back as it was. */
rv_err_t rv__window_key_encode(rv_strbuf_t *out, const rv_value_t *key, char *why,
                               size_t why_size) {
    rv_strbuf_clear(out);
    rv_type_t t = key ? rv_value_type(key) : RV_TYPE_NULL;
    if (t == RV_TYPE_NULL) {
        return rv_strbuf_append(out, "n", 1);
    }
    if (t == RV_TYPE_STRING || t == RV_TYPE_BYTES) {
        size_t len;
        const char *b = rv_value_str(key, &len);
        if (rv_strbuf_append(out, t == RV_TYPE_STRING ? "s" : "b", 1) != RV_OK) {
            return RV_ERR_NOMEM;
        }
        return rv_strbuf_append(out, b, len);
    }
    rv_error_t *err = NULL;
    rv_err_t e = rv_strbuf_append(out, "j", 1);
    if (e == RV_OK) {
        e = rv_json_write(out, key, RV_JSON_COMPACT, &err);
    }
    if (e != RV_OK) {
        snprintf(why, why_size, "%s", err ? rv_error_message(err) : rv_err_str(e));
    }
    rv_error_destroy(err);
    return e;
}

rv_err_t rv__window_key_decode(rv_arena_t *arena, const char *b, size_t len, rv_value_t **out) {
    *out = NULL;
    if (len == 0) {
        return RV_ERR_CORRUPT;
    }
    switch (b[0]) {
        case 'n':
            return len == 1 ? RV_OK : RV_ERR_CORRUPT;
        case 's':
            *out = rv_value_new_string(arena, b + 1, len - 1);
            break;
        case 'b':
            *out = rv_value_new_bytes(arena, b + 1, len - 1);
            break;
        case 'j':
            return rv_json_parse(arena, b + 1, len - 1, NULL, out, NULL, NULL) == RV_OK
                       ? RV_OK
                       : RV_ERR_CORRUPT;
        default:
            return RV_ERR_CORRUPT;
    }
    return *out ? RV_OK : RV_ERR_NOMEM;
}

rv_err_t rv__window_process(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx,
                            const rv_value_t *key, const rv_value_t *value, int64_t ts, int64_t seq,
                            int64_t now_ms, rv__wemit_fn emit, void *arg) {
    emitter_t em = {emit, arg};
    char why[256];
    rv_err_t e = rv__window_key_encode(&p->jkey, key, why, sizeof why);
    if (e != RV_OK) {
        rv__ctx_failf(ctx, "window: cannot keep the key: %s", why);
        return e;
    }
    if (p->jkey.len > 60000) {
        rv__ctx_failf(ctx, "window: the key is %zu bytes; at most 60000", p->jkey.len - 1);
        return RV_ERR_LIMIT;
    }
    const char *jk = p->jkey.data;
    size_t jl = p->jkey.len;
    if (!is_time(w->opts.type)) {
        return add_count(w, p, ctx, &em, jk, jl, value, ts, seq, now_ms);
    }
    if (ts > p->max_ts) {
        p->max_ts = ts;
    }
    int64_t wm = sat_sub(p->max_ts, w->opts.grace_ms);
    e = close_due(w, p, ctx, &em, wm);
    if (e != RV_OK) {
        return e;
    }
    if (w->opts.idle_timeout_ms > 0) {
        int64_t fl;
        e = floor_of(p, jk, jl, wm, &fl);
        if (e != RV_OK) {
            return st_fail(ctx, e, "reading a close floor");
        }
        wm = fl > wm ? fl : wm;
    }
    switch (w->opts.type) {
        case RV_WINDOW_TUMBLING:
        case RV_WINDOW_HOPPING:
            return add_fixed(w, p, ctx, &em, key, jk, jl, value, ts, seq, now_ms, wm);
        case RV_WINDOW_SLIDING:
            return add_sliding(w, p, ctx, &em, key, jk, jl, value, ts, seq, now_ms, wm);
        default:
            return add_session(w, p, ctx, &em, key, jk, jl, value, ts, seq, now_ms, wm);
    }
}

/* ---- idle closing ---------------------------------------------------------------------------- */

/* Closes every window of one idle key (entries [from, to) of `c`), then sets its close floor. */
static rv_err_t close_key(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx, const emitter_t *em,
                          const coll_t *c, size_t from, size_t to, const char *jk, size_t jl) {
    int64_t fl = INT64_MIN;
    rv_err_t e = RV_OK;
    for (size_t at = from; e == RV_OK && at < to;) {
        const uint8_t *k, *v;
        size_t kl, vl;
        at = coll_next(c, at, &k, &kl, &v, &vl);
        int64_t s = unbe64(k + kl - 16), end = unbe64(k + kl - 8);
        int64_t close = w->opts.type == RV_WINDOW_SESSION ? sat_add(end - 1, w->opts.size) : end;
        e = close_one(w, p, ctx, em, jk, jl, s, end, close);
        fl = close > fl ? close : fl;
    }
    rv_strbuf_t k = RV_STRBUF_INIT;
    if (e == RV_OK && is_time(w->opts.type)) {
        uint8_t b[8];
        be64(b, fl);
        e = app_keyed(&k, 'F', jk, jl);
        if (e == RV_OK) {
            e = p->store.ops->put(p->store.s, k.data, k.len, b, 8);
        }
        if (e == RV_OK && w->opts.type == RV_WINDOW_SLIDING) {
            e = sliding_prune(p, jk, jl, INT64_MAX);
        }
    } else if (e == RV_OK) { /* count windows: the next record starts afresh */
        e = app_keyed(&k, 'C', jk, jl);
        if (e == RV_OK) {
            e = st_del(p, &k);
        }
    }
    rv_strbuf_free(&k);
    return e;
}

rv_err_t rv__window_sweep(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx, int64_t now_ms,
                          rv__wemit_fn emit, void *arg) {
    int64_t idle = w->opts.idle_timeout_ms;
    if (idle <= 0 || now_ms < p->next_sweep_ms) {
        return RV_OK;
    }
    int64_t every = idle / 4 < 1000 ? idle / 4 : 1000;
    p->next_sweep_ms = now_ms + (every > 0 ? every : 1);
    emitter_t em = {emit, arg};
    rv_strbuf_t from = RV_STRBUF_INIT, to = RV_STRBUF_INIT, key = RV_STRBUF_INIT;
    coll_t c = {0};
    rv_err_t e = RV_ERR_NOMEM;
    if (rv_strbuf_append(&from, "W", 1) == RV_OK && rv_strbuf_append(&to, "X", 1) == RV_OK) {
        e = st_scan(p, &from, &to, &c);
    }
    /* windows are ordered by key: walk each key's run */
    size_t run = 0;
    int64_t touched = INT64_MIN;
    const uint8_t *rk = NULL;
    size_t rkl = 0;
    for (size_t at = 0; e == RV_OK;) {
        const uint8_t *k = NULL, *v = NULL;
        size_t kl = 0, vl = 0;
        size_t next = at < c.buf.len ? coll_next(&c, at, &k, &kl, &v, &vl) : at;
        bool same = k && rk && kl == rkl && memcmp(k, rk, kl - 16) == 0;
        if (rk && !same) { /* the run of key rk ended at `at` */
            if (touched + idle <= now_ms) {
                size_t jl = rkl - 21;
                rv_strbuf_clear(&key);
                e = rv_strbuf_append(&key, rk + 5, jl);
                if (e == RV_OK) {
                    e = close_key(w, p, ctx, &em, &c, run, at, key.data, jl);
                }
            }
            rk = NULL;
        }
        if (!k || e != RV_OK) {
            break;
        }
        if (kl < 21) {
            e = RV_ERR_CORRUPT;
            break;
        }
        if (!rk) {
            rk = k;
            rkl = kl;
            run = at;
            touched = INT64_MIN;
        }
        if (vl >= 33) {
            int64_t t;
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) {
                u |= (uint64_t)((const uint8_t *)v)[25 + i] << (8 * i);
            }
            t = (int64_t)u;
            touched = t > touched ? t : touched;
        }
        at = next;
    }
    rv_strbuf_free(&c.buf);
    rv_strbuf_free(&from);
    rv_strbuf_free(&to);
    rv_strbuf_free(&key);
    if (e == RV_OK) {
        p->next_close = INT64_MIN; /* re-read at the next record */
    }
    if (e != RV_OK && !ctx->fail_set) {
        st_fail(ctx, e, "closing idle windows");
    }
    return e;
}
