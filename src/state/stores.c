/*
 * stores.c: a worker's stores: opening them when partitions are assigned, restoring them from
 * their changelogs, the state steps of a checkpoint, closing them on revocation.
 *
 * A worker owns the stores of the partitions assigned to it, found by (declaration, partition).
 * On assignment each store is opened (another process, or another worker of this one, may still
 * hold its RocksDB lock: it is tried again on every step until state.lock.timeout.ms, then the
 * run fails with RV_ERR_BUSY naming the directory) and brought up to date from its changelog,
 * from the changelog offset stored with it (or the beginning when the store is new), in bounded
 * steps between polls, each written with the changelog offset it reached, so a revocation or a
 * crash in the middle of a restore loses nothing. The worker holds the partition's records back
 * (paused) until every store of the partition is ready.
 *
 * A checkpoint calls rv__stores_send_changelog() (step 2: every changed key once, with its final
 * value or a tombstone, and the processed input offset; stores declared later, downstream in the
 * graph, first, each level flushed before the next, so a replay never skips a store that lacks
 * the replayed record) and, once offsets are committed, rv__stores_commit() (step 4: the buffer
 * and both offsets in one WriteBatch). This file must never commit input offsets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/clock.h"
#include "state/store_impl.h"

#define SEND_WAIT_MS 120000 /* how long a changelog send waits out a full producer queue */
#define RESTORE_POLL_MS 20

struct rv__stores_s {
    rv__stores_opts_t o;
    rv__store_t ***by; /* by[decl][partition] */
    int32_t *nby;
    rv_consumer_t *restorer; /* reads changelogs; made on the first restore */
    bool reassign;           /* the set of restoring stores changed */
    rv__store_t *closed;     /* revoked stores, freed with the set */
    int64_t buffered;        /* bytes of changes buffered in all stores */
};

int64_t rv__stores_buffered(const rv__stores_t *ss) {
    return ss ? ss->buffered : 0;
}

rv__stores_t *rv__stores_new(const rv__stores_opts_t *opts, rv_error_t **err) {
    rv__stores_t *ss = calloc(1, sizeof *ss);
    if (!ss || !(ss->by = calloc(opts->ndecls ? opts->ndecls : 1, sizeof *ss->by)) ||
        !(ss->nby = calloc(opts->ndecls ? opts->ndecls : 1, sizeof *ss->nby))) {
        if (ss) {
            free(ss->by);
        }
        free(ss);
        rv__error_set(err, RV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    ss->o = *opts;
    return ss;
}

static void store_free(rv__store_t *s) {
    rv__store_close_db(s);
    if (s->rbatch) {
        rv__rk.rocksdb_writebatch_destroy(s->rbatch);
    }
    rv__wbuf_free(&s->buf);
    free(s->dir);
    free(s->kbuf);
    free(s);
}

void rv__stores_destroy(rv__stores_t *ss) {
    if (!ss) {
        return;
    }
    for (size_t d = 0; d < ss->o.ndecls; d++) {
        for (int32_t p = 0; p < ss->nby[d]; p++) {
            if (ss->by[d][p]) {
                store_free(ss->by[d][p]);
            }
        }
        free(ss->by[d]);
    }
    while (ss->closed) {
        rv__store_t *n = ss->closed->next_closed;
        store_free(ss->closed);
        ss->closed = n;
    }
    rv_consumer_close(ss->restorer);
    free(ss->by);
    free(ss->nby);
    free(ss);
}

bool rv__stores_follow(const rv__stores_t *ss, const rv_topic_t *topic) {
    for (size_t d = 0; ss && d < ss->o.ndecls; d++) {
        if (ss->o.decls[d]->topic == topic) {
            return true;
        }
    }
    return false;
}

static rv__store_t *store_at(const rv__stores_t *ss, size_t d, int32_t p) {
    return p >= 0 && p < ss->nby[d] ? ss->by[d][p] : NULL;
}

rv_err_t rv__stores_assign(rv__stores_t *ss, rv_topic_t *topic, int32_t partition,
                           rv_error_t **err) {
    for (size_t d = 0; d < ss->o.ndecls; d++) {
        const rv__store_decl_t *decl = ss->o.decls[d];
        if (decl->topic != topic || store_at(ss, d, partition)) {
            continue;
        }
        if (partition >= ss->nby[d]) {
            rv__store_t **v = realloc(ss->by[d], ((size_t)partition + 1) * sizeof *v);
            if (!v) {
                return rv__error_set(err, RV_ERR_NOMEM, "out of memory");
            }
            memset(v + ss->nby[d], 0, ((size_t)partition + 1 - (size_t)ss->nby[d]) * sizeof *v);
            ss->by[d] = v;
            ss->nby[d] = partition + 1;
        }
        char dir[4096];
        int n = rv__store_dir(dir, sizeof dir, ss->o.state_dir, ss->o.group, rv_topic_name(topic),
                              decl->name, partition);
        if (n < 0 || (size_t)n >= sizeof dir) {
            return rv__error_set(err, RV_ERR_INVALID_ARG,
                                 "store '%s' partition %d: the path under "
                                 "state.dir '%s' is too long",
                                 decl->name, (int)partition, ss->o.state_dir);
        }
        rv__store_t *s = calloc(1, sizeof *s);
        if (!s || !(s->dir = strdup(dir))) {
            free(s);
            return rv__error_set(err, RV_ERR_NOMEM, "out of memory");
        }
        s->set = ss;
        s->rocksdb_opts = ss->o.rocksdb_opts;
        s->buffered = &ss->buffered;
        s->decl = decl;
        s->partition = partition;
        s->phase = RV__STORE_OPENING;
        s->time = INT64_MIN;
        s->open_deadline_ms = rv_clock_mono_ms() + ss->o.lock_timeout_ms;
        ss->by[d][partition] = s;
    }
    return RV_OK;
}

void rv__stores_revoke(rv__stores_t *ss, const rv_topic_t *topic, int32_t partition) {
    for (size_t d = 0; ss && d < ss->o.ndecls; d++) {
        rv__store_t *s = ss->o.decls[d]->topic == topic ? store_at(ss, d, partition) : NULL;
        if (!s) {
            continue;
        }
        if (s->phase == RV__STORE_RESTORING) {
            ss->reassign = true;
            rv__log(ss->o.log, RV_LOG_INFO, "state",
                    "worker %d: store '%s' partition %d revoked in the middle of its restore "
                    "(%lld changelog records applied, kept for next time)",
                    ss->o.worker, s->decl->name, (int)partition, (long long)s->restored);
        }
        ss->by[d][partition] = NULL;
        rv__store_close_db(s);
        if (s->rbatch) {
            rv__rk.rocksdb_writebatch_destroy(s->rbatch);
            s->rbatch = NULL;
        }
        s->closed = true;
        s->next_closed = ss->closed;
        ss->closed = s;
    }
}

bool rv__stores_ready(const rv__stores_t *ss, const rv_topic_t *topic, int32_t partition) {
    for (size_t d = 0; ss && d < ss->o.ndecls; d++) {
        if (ss->o.decls[d]->topic != topic) {
            continue;
        }
        rv__store_t *s = store_at(ss, d, partition);
        if (!s || s->phase != RV__STORE_READY) {
            return false;
        }
    }
    return true;
}

bool rv__stores_dirty(const rv__stores_t *ss) {
    for (size_t d = 0; ss && d < ss->o.ndecls; d++) {
        for (int32_t p = 0; p < ss->nby[d]; p++) {
            rv__store_t *s = ss->by[d][p];
            if (s && rv__store_pending(s)) {
                return true;
            }
        }
    }
    return false;
}

/* ---- the operators' side ------------------------------------------------------------------- */

static rv__store_t *ctx_fail(rv_ctx_t *ctx, rv_err_t code, const char *fmt, ...) RV_PRINTF(3, 4);
static rv__store_t *ctx_fail(rv_ctx_t *ctx, rv_err_t code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->fail_msg, sizeof ctx->fail_msg, fmt, ap);
    va_end(ap);
    ctx->fail_set = true;
    ctx->store_err = code;
    return NULL;
}

rv__store_t *rv__ctx_store(rv_ctx_t *ctx, const rv__store_decl_t *decl, bool *replay) {
    rv__stores_t *ss = ctx->stores;
    if (!ss || !decl || (size_t)decl->index >= ss->o.ndecls) {
        return ctx_fail(ctx, RV_ERR_STATE, "the run has no state stores");
    }
    if (ctx->topic != decl->topic) {
        return ctx_fail(ctx, RV_ERR_STATE,
                        "store '%s' follows the partitions of topic '%s', but this record comes "
                        "from topic '%s' (stateful operators after concat need one topic)",
                        decl->name, rv_topic_name(decl->topic), rv_topic_name(ctx->topic));
    }
    int32_t p = ctx->rec->partition;
    rv__store_t *s = store_at(ss, (size_t)decl->index, p);
    if (!s || s->phase != RV__STORE_READY) {
        return ctx_fail(ctx, RV_ERR_STATE, "store '%s' partition %d is not %s", decl->name, (int)p,
                        s ? "restored yet" : "open in this worker");
    }
    bool r = ctx->rec->offset >= 0 && ctx->rec->offset < s->processed;
    /* Event time moves with records only: a tick (offset -1) carries wall-clock time. */
    if (!r && ctx->rec->offset >= 0 && ctx->timestamp > s->time) {
        s->time = ctx->timestamp;
    }
    if (replay) {
        *replay = r;
    }
    return s;
}

rv_err_t rv__ctx_store_error(const rv_ctx_t *ctx) {
    return ctx->store_err ? ctx->store_err : RV_ERR_STATE;
}

/* ---- restoring ------------------------------------------------------------------------------ */

/* Writes the store's restore batch with the changelog offset it reached. */
static rv_err_t restore_flush(rv__store_t *s, rv_error_t **err) {
    if (!s->rbatch) {
        s->rbatch = rv__rk.rocksdb_writebatch_create();
    }
    char v[8];
    rv__store_put_be64(v, s->changelog_next);
    rv__rk.rocksdb_writebatch_put(s->rbatch, RV__META_CHANGELOG, strlen(RV__META_CHANGELOG), v, 8);
    char *e = NULL;
    rv__rk.rocksdb_write(s->db, rv__store_wopts(), s->rbatch, &e);
    rv__rk.rocksdb_writebatch_clear(s->rbatch);
    if (e) {
        rv__error_set(err, RV_ERR_IO, "store '%s' partition %d ('%s'): restoring: %s",
                      s->decl->name, (int)s->partition, s->dir, e);
        free(e);
        return RV_ERR_IO;
    }
    return RV_OK;
}

/* Opens a store and decides whether it needs a restore. */
static rv_err_t open_step(rv__stores_t *ss, rv__store_t *s, bool *busy, rv_error_t **err) {
    bool locked = false;
    char *why = NULL;
    rv_err_t e = rv__store_open_db(s, &locked, &why);
    if (e != RV_OK && locked) {
        if (rv_clock_mono_ms() < s->open_deadline_ms) {
            if (!s->lock_waited) {
                rv__log(ss->o.log, RV_LOG_INFO, "state",
                        "worker %d: store '%s' partition %d: '%s' is locked (another process or "
                        "worker still has it open); waiting up to state.lock.timeout.ms=%lld ms",
                        ss->o.worker, s->decl->name, (int)s->partition, s->dir,
                        (long long)ss->o.lock_timeout_ms);
                s->lock_waited = true;
            }
            free(why);
            *busy = true;
            return RV_OK;
        }
        rv__error_set(err, RV_ERR_BUSY,
                      "store '%s' partition %d: the RocksDB directory '%s' is still locked by "
                      "another process (or another application in this one) after waiting "
                      "state.lock.timeout.ms=%lld ms: %s",
                      s->decl->name, (int)s->partition, s->dir, (long long)ss->o.lock_timeout_ms,
                      why);
        free(why);
        return RV_ERR_BUSY;
    }
    if (e != RV_OK) {
        rv__error_set(err, e, "store '%s' partition %d: cannot open '%s': %s", s->decl->name,
                      (int)s->partition, s->dir, why);
        free(why);
        return e;
    }
    if (rv__store_load_meta(s) != RV_OK) {
        return rv__error_set(err, RV_ERR_IO, "store '%s' partition %d ('%s'): %s", s->decl->name,
                             (int)s->partition, s->dir, s->errmsg);
    }
    int64_t lo = 0, hi = 0;
    e = rv_broker_watermarks(ss->o.broker, s->decl->changelog, s->partition, &lo, &hi, err);
    if (e != RV_OK) {
        return rv__error_prefix(err, e, "store '%s' partition %d: changelog '%s': ", s->decl->name,
                                (int)s->partition, s->decl->changelog);
    }
    if (s->changelog_next > hi) {
        rv__log(ss->o.log, RV_LOG_WARNING, "state",
                "store '%s' partition %d: the local store read changelog '%s' up to offset %lld "
                "but it now ends at %lld (the topic was recreated?): rebuilding it from the "
                "changelog",
                s->decl->name, (int)s->partition, s->decl->changelog, (long long)s->changelog_next,
                (long long)hi);
        e = rv__store_wipe(s, &why);
        if (e != RV_OK) {
            rv__error_set(err, e, "store '%s' partition %d: cannot rebuild '%s': %s", s->decl->name,
                          (int)s->partition, s->dir, why);
            free(why);
            return e;
        }
        rv__store_load_meta(s);
    }
    if (s->changelog_next < lo) {
        s->changelog_next = lo;
    }
    if (s->changelog_next >= hi) {
        s->phase = RV__STORE_READY;
        return RV_OK;
    }
    s->phase = RV__STORE_RESTORING;
    s->restore_end = hi;
    s->restored = 0;
    ss->reassign = true;
    *busy = true;
    rv__log(ss->o.log, RV_LOG_INFO, "state",
            "worker %d: restoring store '%s' partition %d from changelog '%s' offsets %lld to "
            "%lld",
            ss->o.worker, s->decl->name, (int)s->partition, s->decl->changelog,
            (long long)s->changelog_next, (long long)hi);
    return RV_OK;
}

/* Points the restore consumer at every restoring store's next changelog offset. */
static rv_err_t restore_assign(rv__stores_t *ss, rv_error_t **err) {
    size_t n = 0, cap = 0;
    rv_topic_partition_t *tps = NULL;
    for (size_t d = 0; d < ss->o.ndecls; d++) {
        for (int32_t p = 0; p < ss->nby[d]; p++) {
            rv__store_t *s = ss->by[d][p];
            if (!s || s->phase != RV__STORE_RESTORING) {
                continue;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                rv_topic_partition_t *v = realloc(tps, cap * sizeof *v);
                if (!v) {
                    free(tps);
                    return rv__error_set(err, RV_ERR_NOMEM, "out of memory");
                }
                tps = v;
            }
            tps[n++] = (rv_topic_partition_t){s->decl->changelog, p, s->changelog_next};
        }
    }
    rv_err_t e = RV_OK;
    if (!ss->restorer && n) {
        rv_consumer_opts_t co = {.group = NULL};
        ss->restorer = rv_consumer_new(ss->o.broker, &co, err);
        e = ss->restorer ? RV_OK : RV_ERR_IO;
    }
    if (e == RV_OK && ss->restorer) {
        e = rv_consumer_assign(ss->restorer, tps, n, err);
    }
    free(tps);
    if (e != RV_OK) {
        return rv__error_prefix(err, e, "worker %d: the changelog reader: ", ss->o.worker);
    }
    ss->reassign = false;
    return RV_OK;
}

static rv__store_t *restoring_of(rv__stores_t *ss, const char *changelog, int32_t p) {
    for (size_t d = 0; d < ss->o.ndecls; d++) {
        const char *cl = ss->o.decls[d]->changelog;
        if (cl && strcmp(cl, changelog) == 0) {
            rv__store_t *s = store_at(ss, d, p);
            return s && s->phase == RV__STORE_RESTORING ? s : NULL;
        }
    }
    return NULL;
}

/* Applies one changelog record to its store's restore batch. */
static void restore_apply(rv__store_t *s, const rv_record_t *r) {
    if (!s->rbatch) {
        s->rbatch = rv__rk.rocksdb_writebatch_create();
    }
    if (r->key && r->key_len) {
        if (r->value) {
            rv__rk.rocksdb_writebatch_put(s->rbatch, r->key, r->key_len, r->value, r->value_len);
            if (r->key_len == strlen(RV__META_OFFSETS) &&
                memcmp(r->key, RV__META_OFFSETS, r->key_len) == 0 && r->value_len == 16) {
                s->processed = rv__store_get_be64(r->value);
                s->time = rv__store_get_be64((const char *)r->value + 8);
            }
        } else {
            rv__rk.rocksdb_writebatch_delete(s->rbatch, r->key, r->key_len);
        }
    }
    s->changelog_next = r->offset + 1;
    s->restored++;
    if (s->set->o.restored) {
        rv__count(s->set->o.restored, 1);
    }
}

/* Reads one bounded step of changelog records into the restoring stores. */
static rv_err_t restore_step(rv__stores_t *ss, rv_error_t **err) {
    if (ss->reassign) {
        rv_err_t e = restore_assign(ss, err);
        if (e != RV_OK) {
            return e;
        }
    }
    if (!ss->restorer) {
        return RV_OK;
    }
    const rv_record_t *recs = NULL;
    size_t n = 0;
    size_t max = ss->o.restore_batch > 0 ? (size_t)ss->o.restore_batch : 10000;
    rv_err_t e = rv_consumer_poll(ss->restorer, &recs, max, &n, RESTORE_POLL_MS, err);
    if (e != RV_OK) {
        return rv__error_prefix(err, e, "worker %d: reading a changelog: ", ss->o.worker);
    }
    for (size_t i = 0; i < n; i++) {
        rv__store_t *s = restoring_of(ss, recs[i].topic, recs[i].partition);
        if (s && recs[i].offset >= s->changelog_next) {
            restore_apply(s, &recs[i]);
        }
    }
    for (size_t d = 0; d < ss->o.ndecls; d++) {
        for (int32_t p = 0; p < ss->nby[d]; p++) {
            rv__store_t *s = ss->by[d][p];
            if (!s || s->phase != RV__STORE_RESTORING) {
                continue;
            }
            if (s->changelog_next < s->restore_end && n == 0) {
                /* Compaction may leave no record at the very end: ask where the reader is. */
                rv_topic_partition_t tp = {s->decl->changelog, p, RV_OFFSET_INVALID};
                if (rv_consumer_position(ss->restorer, &tp, 1, NULL) == RV_OK &&
                    tp.offset >= s->restore_end) {
                    s->changelog_next = tp.offset;
                }
            }
            if ((s->rbatch && rv__rk.rocksdb_writebatch_count(s->rbatch) > 0) ||
                s->changelog_next >= s->restore_end) {
                e = restore_flush(s, err);
                if (e != RV_OK) {
                    return e;
                }
            }
            if (s->changelog_next >= s->restore_end) {
                s->phase = RV__STORE_READY;
                ss->reassign = true;
                rv__log(ss->o.log, RV_LOG_INFO, "state",
                        "worker %d: store '%s' partition %d restored (%lld changelog records)",
                        ss->o.worker, s->decl->name, (int)p, (long long)s->restored);
            }
        }
    }
    return RV_OK;
}

rv_err_t rv__stores_restore(rv__stores_t *ss, bool *busy, bool *ready, rv_topic_t **ready_topic,
                            int32_t *ready_partition, rv_error_t **err) {
    *busy = false;
    *ready = false;
    bool restoring = false;
    for (size_t d = 0; d < ss->o.ndecls; d++) {
        for (int32_t p = 0; p < ss->nby[d]; p++) {
            rv__store_t *s = ss->by[d][p];
            if (s && s->phase == RV__STORE_OPENING) {
                rv_err_t e = open_step(ss, s, busy, err);
                if (e != RV_OK) {
                    return e;
                }
            }
            restoring = restoring || (s && s->phase == RV__STORE_RESTORING);
        }
    }
    if (restoring || ss->reassign) {
        rv_err_t e = restore_step(ss, err);
        if (e != RV_OK) {
            return e;
        }
    }
    for (size_t d = 0; d < ss->o.ndecls; d++) {
        for (int32_t p = 0; p < ss->nby[d]; p++) {
            rv__store_t *s = ss->by[d][p];
            if (!s) {
                continue;
            }
            if (s->phase != RV__STORE_READY) {
                *busy = true;
                continue;
            }
            if (s->announced || *ready) {
                continue;
            }
            rv_topic_t *t = s->decl->topic;
            if (rv__stores_ready(ss, t, p)) {
                for (size_t d2 = 0; d2 < ss->o.ndecls; d2++) {
                    rv__store_t *o = ss->o.decls[d2]->topic == t ? store_at(ss, d2, p) : NULL;
                    if (o) {
                        o->announced = true;
                    }
                }
                *ready = true;
                *ready_topic = t;
                *ready_partition = p;
            }
        }
    }
    *busy = *busy || *ready;
    return RV_OK;
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

static rv_err_t send(rv__stores_t *ss, rv__store_t *s, const rv_record_t *r, rv_error_t **err) {
    int64_t give_up = 0;
    for (;;) {
        rv_err_t e = rv_producer_send(ss->o.producer, r, s);
        if (e == RV_OK) {
            return RV_OK;
        }
        int64_t now = rv_clock_mono_ms();
        if (e == RV_ERR_AGAIN && !give_up) {
            give_up = now + SEND_WAIT_MS;
        }
        if (e != RV_ERR_AGAIN || now >= give_up) {
            char q[128];
            return rv__error_set(err, e,
                                 "store '%s' partition %d: cannot send key %s to changelog "
                                 "'%s': %s (%s)",
                                 s->decl->name, (int)s->partition,
                                 rv__quote(q, sizeof q, (const char *)r->key + 1, r->key_len - 1),
                                 s->decl->changelog, rv_err_name(e), rv_err_str(e));
        }
        rv_producer_poll(ss->o.producer, 10);
    }
}

/* Sends one store's changed keys and its offsets record. */
static rv_err_t send_store(rv__stores_t *ss, rv__store_t *s, int64_t processed, rv_error_t **err) {
    s->ck_processed = processed;
    s->ck_changelog_next = s->changelog_next;
    s->delivery_err = RV_OK;
    s->delivered = 0;
    s->ck_sent = true;
    rv_record_t r = {.topic = s->decl->changelog, .partition = s->partition};
    for (size_t i = 0; i < rv__store_pending(s); i++) {
        const rv__bent_t *e = rv__store_pending_at(s, i);
        r.key = e->key;
        r.key_len = e->klen;
        r.value = e->val; /* NULL: a deletion, a tombstone in the changelog */
        r.value_len = e->val ? e->vlen : 0;
        rv_err_t se = send(ss, s, &r, err);
        if (se != RV_OK) {
            return se;
        }
    }
    char meta[16];
    rv__store_put_be64(meta, processed);
    rv__store_put_be64(meta + 8, s->time);
    r.key = RV__META_OFFSETS;
    r.key_len = strlen(RV__META_OFFSETS);
    r.value = meta;
    r.value_len = sizeof meta;
    return send(ss, s, &r, err);
}

rv_err_t rv__stores_send_changelog(rv__stores_t *ss, rv__next_offset_fn next_of, void *opaque,
                                   bool *sent, rv_error_t **err) {
    *sent = false;
    for (size_t d = ss->o.ndecls; d-- > 0;) {
        bool any = false;
        for (int32_t p = 0; p < ss->nby[d]; p++) {
            rv__store_t *s = ss->by[d][p];
            if (!s || s->phase != RV__STORE_READY || rv__store_pending(s) == 0) {
                continue;
            }
            rv_err_t e = send_store(ss, s, next_of(opaque, s->decl->topic, p), err);
            if (e != RV_OK) {
                return e;
            }
            any = true;
        }
        if (!any) {
            continue;
        }
        *sent = true;
        rv_err_t e = rv_producer_flush(ss->o.producer, -1, err);
        if (e != RV_OK) {
            return rv__error_prefix(err, e,
                                    "writing changelogs of store '%s': ", ss->o.decls[d]->name);
        }
        for (int32_t p = 0; p < ss->nby[d]; p++) {
            rv__store_t *s = ss->by[d][p];
            if (s && s->ck_sent && s->delivery_err != RV_OK) {
                return rv__error_set(err, s->delivery_err,
                                     "store '%s' partition %d: changelog '%s': %s", s->decl->name,
                                     (int)p, s->decl->changelog, s->delivery_msg);
            }
        }
    }
    return RV_OK;
}

void rv__stores_delivered(void *store, const rv_record_t *rec, rv_err_t err) {
    rv__store_t *s = store;
    if (err != RV_OK) {
        if (s->delivery_err == RV_OK) {
            s->delivery_err = err;
            snprintf(s->delivery_msg, sizeof s->delivery_msg, "offset unknown: %s",
                     rv_err_str(err));
        }
        return;
    }
    s->delivered++;
    if (rec->offset + 1 > s->ck_changelog_next) {
        s->ck_changelog_next = rec->offset + 1;
    }
}

rv_err_t rv__stores_commit(rv__stores_t *ss, rv_error_t **err) {
    for (size_t d = 0; d < ss->o.ndecls; d++) {
        for (int32_t p = 0; p < ss->nby[d]; p++) {
            rv__store_t *s = ss->by[d][p];
            if (!s || !s->ck_sent) {
                continue;
            }
            s->ck_sent = false;
            char meta[16], cl[8];
            rv__store_put_be64(meta, s->ck_processed);
            rv__store_put_be64(meta + 8, s->time);
            rv__store_put_be64(cl, s->ck_changelog_next);
            const char *keys[2] = {RV__META_OFFSETS, RV__META_CHANGELOG};
            const char *vals[2] = {meta, cl};
            size_t lens[2] = {sizeof meta, sizeof cl};
            if (rv__store_commit_buffer(s, keys, vals, lens, 2) != RV_OK) {
                return rv__error_set(err, RV_ERR_IO,
                                     "store '%s' partition %d ('%s'): committing: %s",
                                     s->decl->name, (int)p, s->dir, s->errmsg);
            }
            s->processed = s->ck_processed;
            s->changelog_next = s->ck_changelog_next;
        }
    }
    return RV_OK;
}

rv_err_t rv__stores_rollback(rv__stores_t *ss, rv_error_t **err) {
    for (size_t d = 0; ss && d < ss->o.ndecls; d++) {
        for (int32_t p = 0; p < ss->nby[d]; p++) {
            rv__store_t *s = ss->by[d][p];
            if (!s || s->phase != RV__STORE_READY || !s->db) {
                continue;
            }
            s->ck_sent = false;
            s->delivery_err = RV_OK;
            rv__store_discard(s);
            if (rv__store_load_meta(s) != RV_OK) {
                return rv__error_set(err, RV_ERR_IO,
                                     "store '%s' partition %d ('%s'): rolling back: %s",
                                     s->decl->name, (int)p, s->dir, s->errmsg);
            }
        }
    }
    return RV_OK;
}

void rv__stores_size(rv__stores_t *ss, int64_t *stores, int64_t *bytes) {
    *stores = 0;
    *bytes = 0;
    for (size_t d = 0; ss && d < ss->o.ndecls; d++) {
        for (int32_t p = 0; p < ss->nby[d]; p++) {
            rv__store_t *s = ss->by[d][p];
            if (!s || !s->db) {
                continue;
            }
            (*stores)++;
            uint64_t v = 0;
            if (rv__rk.rocksdb_property_int(s->db, "rocksdb.total-sst-files-size", &v) == 0) {
                *bytes += (int64_t)v;
            }
            if (rv__rk.rocksdb_property_int(s->db, "rocksdb.cur-size-all-mem-tables", &v) == 0) {
                *bytes += (int64_t)v;
            }
        }
    }
}
