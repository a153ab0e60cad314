/*
 * window_op.c: the window operator of dataframes (rv_df_window()): a custom operator node whose
 * windows live in the application's state stores (src/state).
 *
 * At build time it checks the options, builds the aggregation set and declares its store (one
 * RocksDB instance per input partition, with a changelog). For each record it takes the store
 * of the record's partition from the context (skipping replayed records, whose effects the store
 * already holds), and runs the window logic of window.c over it through a small adaptor from the
 * state store's calls to the window store interface. Emitted windows carry the window's key and
 * timestamp end - 1, without headers. The runtime's tick (about every 100 ms per partition)
 * closes idle windows on wall-clock time.
 *
 * Per partition the operator caches a little (the next close time, scratch buffers) in a slot
 * keyed by partition and tied to the store instance it was filled from: a slot whose store
 * changed (the partition was revoked and assigned again) starts afresh. This file must never
 * commit, flush or open a store: the runtime does.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/clock.h"
#include "rivulet/json.h"
#include "state/state_int.h"
#include "stream/window_int.h"

/* ---- the adaptor: a state store as a window store ------------------------------------------ */

static rv_err_t s_get(void *s, const void *k, size_t kl, const void **v, size_t *vl) {
    rv_buf_t b;
    rv_err_t e = rv__store_get(s, k, kl, &b);
    if (e == RV_OK) {
        *v = b.data;
        *vl = b.len;
    }
    return e;
}

static rv_err_t s_put(void *s, const void *k, size_t kl, const void *v, size_t vl) {
    return rv__store_put(s, k, kl, v, vl, 0);
}

static rv_err_t s_del(void *s, const void *k, size_t kl) {
    return rv__store_del(s, k, kl);
}

static rv_err_t s_scan(void *s, const void *from, size_t fl, const void *to, size_t tl,
                       rv__wscan_fn fn, void *arg) {
    rv__store_iter_t *it = rv__store_iter(s, from, fl, to, tl);
    if (!it) {
        return RV_ERR_NOMEM;
    }
    rv_buf_t k, v;
    while (rv__store_iter_next(it, &k, &v)) {
        if (fn(arg, k.data, k.len, v.data, v.len)) {
            break;
        }
    }
    rv_err_t e = rv__store_iter_error(it);
    rv__store_iter_close(it);
    return e;
}

static const rv__wstore_ops_t state_store_ops = {
    .get = s_get, .put = s_put, .del = s_del, .scan = s_scan};

/* ---- the operator's data ------------------------------------------------------------------- */

typedef struct wslot_s {
    rv__store_t *store;  /* the store instance the cache is in front of; NULL: none yet */
    const void *owner;   /* the worker's store set (written under the operator's mutex) */
    rv__wcache_t *cache; /* write-back cache of the store, emptied at every checkpoint */
    bool part_init;
    rv__wpart_t part;
} wslot_t;

typedef struct wop_s {
    rv__window_t w;
    rv_arena_t *arena;  /* the name, aggregation names and paths */
    pthread_mutex_t mu; /* the slot table (not the slots: a partition has one worker) */
    wslot_t **slots;
    size_t nslots;
} wop_t;

static void wop_destroy(void *state) {
    wop_t *op = state;
    if (!op) {
        return;
    }
    for (size_t i = 0; i < op->nslots; i++) {
        if (op->slots[i]) {
            rv__wpart_free(&op->slots[i]->part, &op->w);
            rv__wcache_destroy(op->slots[i]->cache);
            free(op->slots[i]);
        }
    }
    free(op->slots);
    pthread_mutex_destroy(&op->mu);
    rv_arena_destroy(op->arena);
    free(op);
}

/*
 * The slot of partition `p` in front of store `s`. A slot not bound to `s` (new, emptied by a
 * checkpoint, or last used with another store instance) is bound afresh: nothing it cached
 * survives, and the next close time is read again from the store. NULL on NOMEM.
 */
static wslot_t *slot_of(wop_t *op, int32_t p, rv__store_t *s, const void *owner) {
    if (p < 0) {
        return NULL;
    }
    pthread_mutex_lock(&op->mu);
    wslot_t *sl = NULL;
    if ((size_t)p >= op->nslots) {
        size_t n = (size_t)p + 1;
        wslot_t **v = realloc(op->slots, n * sizeof *v);
        if (v) {
            memset(v + op->nslots, 0, (n - op->nslots) * sizeof *v);
            op->slots = v;
            op->nslots = n;
        }
    }
    if ((size_t)p < op->nslots) {
        if (!op->slots[p]) {
            op->slots[p] = calloc(1, sizeof(wslot_t));
        }
        sl = op->slots[p];
    }
    if (sl && (sl->store != s || sl->owner != owner)) {
        if (!sl->cache && !(sl->cache = rv__wcache_new())) {
            sl = NULL;
        } else if (!sl->part_init) {
            sl->part_init = rv__wpart_init(&sl->part, &op->w,
                                           (rv__wstore_t){&rv__wcache_ops, sl->cache}) == RV_OK;
            if (!sl->part_init) {
                sl = NULL;
            }
        }
        if (sl) {
            rv__wcache_bind(sl->cache, (rv__wstore_t){&state_store_ops, s});
            sl->part.next_close = INT64_MIN;
            sl->part.closed_upto = INT64_MIN;
            sl->part.next_sweep_ms = 0;
            sl->store = s;
            sl->owner = owner;
        }
    }
    pthread_mutex_unlock(&op->mu);
    return sl;
}

/* The checkpoint hook: writes every cached change of this worker's partitions into their
 * stores, then unbinds the slots (their stores may close after this checkpoint). */
static rv_err_t wop_flush(rv_df_t *node, rv__stores_t *stores, rv_error_t **err) {
    wop_t *op = node->op_state;
    rv_err_t e = RV_OK;
    pthread_mutex_lock(&op->mu);
    for (size_t i = 0; i < op->nslots && e == RV_OK; i++) {
        wslot_t *sl = op->slots[i];
        if (!sl || !sl->store || sl->owner != stores) {
            continue;
        }
        e = rv__wcache_flush(sl->cache);
        if (e != RV_OK) {
            rv__error_set(err, e,
                          "operator #%d %s: partition %zu: writing windows to the store: "
                          "%s (%s)",
                          node->id, node->desc, i, rv_err_name(e), rv__store_errmsg(sl->store));
            break;
        }
        rv__wcache_clear(sl->cache);
        sl->store = NULL;
    }
    pthread_mutex_unlock(&op->mu);
    return e;
}

/* ---- emitting ------------------------------------------------------------------------------ */

typedef struct emit_arg_s {
    rv_df_t *node;
    const rv__wpart_t *part;
} emit_arg_t;

/* Runs an emitted window downstream with its key and timestamp end - 1, without headers. */
static rv_err_t emit(void *arg, rv_ctx_t *ctx, const char *key, size_t klen, int64_t start,
                     int64_t end, rv_value_t *value) {
    emit_arg_t *ea = arg;
    const rv_value_t *saved_key = ctx->key;
    int64_t saved_ts = ctx->timestamp;
    const rv_header_t *saved_h = ctx->headers;
    size_t saved_hn = ctx->header_count;
    const rv_value_t *k = NULL;
    const rv_strbuf_t *cur = &ea->part->jkey;
    if (saved_key && cur->len == klen && memcmp(cur->data, key, klen) == 0) {
        k = saved_key; /* the current record's key */
    } else {
        rv_value_t *kv = NULL;
        rv_err_t de = rv__window_key_decode(ctx->arena, key, klen, &kv);
        if (de != RV_OK) {
            rv__ctx_failf(ctx, "window: a stored key (%zu bytes) does not read back", klen);
            return de;
        }
        k = kv;
    }
    ctx->key = k;
    ctx->timestamp = end - 1;
    ctx->headers = NULL;
    ctx->header_count = 0;
    rv_err_t e = rv__df_emit(ctx, ea->node, value);
    ctx->key = saved_key;
    ctx->timestamp = saved_ts;
    ctx->headers = saved_h;
    ctx->header_count = saved_hn;
    return e;
}

/* ---- running --------------------------------------------------------------------------------- */

static rv_err_t wop_run(rv_ctx_t *ctx, rv_df_t *node, rv_value_t *value) {
    wop_t *op = node->op_state;
    bool replay = false;
    rv__store_t *s = rv__ctx_store(ctx, node->store, &replay);
    if (!s) {
        return rv__ctx_store_error(ctx);
    }
    if (replay) {
        return RV_OK; /* the store already holds this record; its windows were emitted */
    }
    wslot_t *sl = slot_of(op, ctx->rec->partition, s, ctx->stores);
    if (!sl) {
        rv__ctx_failf(ctx, "window: out of memory");
        return RV_ERR_NOMEM;
    }
    sl->part.max_ts = rv__store_time(s);
    emit_arg_t ea = {node, &sl->part};
    int64_t now = op->w.opts.idle_timeout_ms > 0 ? rv_clock_wall_ms() : 0; /* idle closing only */
    return rv__window_process(&op->w, &sl->part, ctx, ctx->key, value, ctx->timestamp,
                              ctx->rec->offset, now, emit, &ea);
}

static rv_err_t wop_tick(rv_ctx_t *ctx, rv_df_t *node, int64_t wall_ms) {
    wop_t *op = node->op_state;
    if (op->w.opts.idle_timeout_ms <= 0) {
        return RV_OK;
    }
    int64_t ts = ctx->timestamp;
    ctx->timestamp = INT64_MIN; /* a tick must not move the store's event time */
    rv__store_t *s = rv__ctx_store(ctx, node->store, NULL);
    ctx->timestamp = ts;
    if (!s) {
        ctx->fail_set = false;
        return RV_OK; /* not restored yet: nothing to close */
    }
    wslot_t *sl = slot_of(op, ctx->rec->partition, s, ctx->stores);
    if (!sl) {
        rv__ctx_failf(ctx, "window: out of memory");
        return RV_ERR_NOMEM;
    }
    sl->part.max_ts = rv__store_time(s);
    rv_strbuf_clear(&sl->part.jkey);
    emit_arg_t ea = {node, &sl->part};
    rv_err_t e = rv__window_sweep(&op->w, &sl->part, ctx, wall_ms, emit, &ea);
    if (e == RV_OK && rv__wcache_dirty(sl->cache)) {
        e = rv__wcache_flush(sl->cache); /* a sweep's changes reach the store at once */
        if (e != RV_OK) {
            rv__ctx_failf(ctx, "window: writing to the store: %s (%s)", rv_err_name(e),
                          rv__store_errmsg(s));
        }
    }
    return e;
}

static const rv__op_ops_t window_ops = {
    .version = RV__OP_OPS_VERSION,
    .run = wop_run,
    .tick = wop_tick,
    .destroy = wop_destroy,
    .mutates = false,
    .flush = wop_flush,
};

/* ---- building -------------------------------------------------------------------------------- */

static const char *type_word(rv_window_type_t t) {
    static const char *const n[] = {"tumbling",       "hopping",       "sliding",
                                    "count_tumbling", "count_hopping", "session"};
    return (unsigned)t < RV_ARRAY_LEN(n) ? n[t] : "unknown";
}

rv_df_t *rv_df_window(rv_df_t *df, const rv_window_opts_t *opts, const rv_agg_t *aggs,
                      size_t count) {
    if (!df) {
        return NULL;
    }
    rv__graph_t *g = df->graph;
    char why[384];
    if (rv__window_check(opts, why, sizeof why) != RV_OK) {
        rv__graph_fail(g, RV_ERR_INVALID_ARG, "window", why);
        return NULL;
    }
    if (!opts->name || !*opts->name) {
        rv__graph_fail(g, RV_ERR_INVALID_ARG, "window", "the window needs a name (its store's)");
        return NULL;
    }
    wop_t *op = calloc(1, sizeof *op);
    if (!op || !(op->arena = rv_arena_new(1024)) || pthread_mutex_init(&op->mu, NULL) != 0) {
        if (op) {
            rv_arena_destroy(op->arena);
        }
        free(op);
        rv__graph_fail(g, RV_ERR_NOMEM, "window", "out of memory");
        return NULL;
    }
    op->w.opts = *opts;
    op->w.opts.name = rv_arena_strndup(op->arena, opts->name, strlen(opts->name));
    rv_err_t e = op->w.opts.name
                     ? rv__aggset_build(&op->w.aggs, op->arena, aggs, count, why, sizeof why)
                     : RV_ERR_NOMEM;
    if (e != RV_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "'%s': %s", opts->name,
                 e == RV_ERR_NOMEM ? "out of memory" : why);
        rv__graph_fail(g, e, "window", msg);
        wop_destroy(op);
        return NULL;
    }
    char desc[256];
    snprintf(desc, sizeof desc, "window('%s', %s)", opts->name, type_word(opts->type));
    rv_df_t *d = rv__df_custom(df, desc, &window_ops, op); /* owns op from here */
    if (!d) {
        return NULL;
    }
    size_t before = g->nstores;
    if (!rv__df_store(d, "window", opts->name)) {
        return NULL;
    }
    if (g->nstores == before) {
        snprintf(why, sizeof why, "the store name '%s' is already used by another operator",
                 opts->name);
        rv__graph_fail(g, RV_ERR_INVALID_ARG, "window", why);
        return NULL;
    }
    return d;
}
