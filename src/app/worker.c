/*
 * worker.c: a worker of an application run: poll a batch, process each record through the
 * graph, checkpoint.
 *
 * Each worker is a member of the application's consumer group with its own consumer (subscribed
 * to every input topic: sources and repartition topics), its own producer and its own batch
 * arena, which is reset once per batch, so a steady run makes no heap allocation per record
 * (keys and values are decoded straight from the consumer's record views; encodings go to
 * buffers reused from record to record). A producer per worker means a checkpoint flushes only
 * what THIS worker produced before committing ITS offsets: workers never wait for each other.
 *
 * A checkpoint (every commit.interval.ms, every commit.every records, on revocation and at the
 * end) runs four steps in order: (1) flush the producer, waiting for every delivery report, and
 * the sink objects; (2) send the changes of the state stores to their changelogs and wait for
 * them; (3) commit, per partition, the offset after the last record whose processing finished;
 * (4) commit the stores (their buffers with the processed and changelog offsets). A delivery
 * that failed stops the run without committing; a commit refused (a rebalance) is retried after
 * each poll. Under exactly-once (checkpoint_txn()) the worker's producer is transactional
 * ("<prefix>-<worker>"): steps 1 and 2 produce inside the transaction begun at the first output
 * after the last checkpoint, step 3 adds the offsets to it and commits it, step 4 follows; a
 * failed transaction is aborted and the worker rolls back (stores' buffers dropped, partitions
 * sought back to their committed offsets) and goes on.
 *
 * Partitions of topics that stateful operators read are paused when assigned, until their
 * stores are opened and restored from their changelogs (src/state), then resumed.
 * This file must never apply the error policy itself (policy.c does) nor commit an offset of a
 * record not yet processed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app_int.h"
#include "rivulet/clock.h"

#define BATCH_MAX 1024    /* records per poll */
#define POLL_MS 100       /* the longest a worker waits for records before looking at its clocks */
#define LAG_EVERY_MS 1000 /* the lag metric is refreshed at checkpoints at most this often */
#define SEND_WAIT_MS 120000 /* how long a send waits out a full queue */
#define TICK_MS 100         /* how often custom operators hear that wall-clock time passed */
#define RESTORE_POLL_MS 10  /* the poll's wait while stores wait for a lock between polls */
#define EOS_ABORTS_MAX 3    /* transactions aborted in a row before the run stops */
#define EOS_COMMIT_TRIES 5  /* commit calls while its outcome is not known (AGAIN, TIMEOUT) */

/* Fails the run with a formatted message (the first failure wins). */
static void worker_fail(rv__worker_t *w, rv_err_t code, const char *fmt, ...) RV_PRINTF(3, 4);
static void worker_fail(rv__worker_t *w, rv_err_t code, const char *fmt, ...) {
    rv_error_t *err = NULL;
    va_list ap;
    va_start(ap, fmt);
    rv__error_setv(&err, code, fmt, ap);
    va_end(ap);
    rv__app_fail(w->app, err);
}

/* ---- partitions ----------------------------------------------------------------------------- */

static rv_topic_t *input_of(rv__worker_t *w, const char *name) {
    rv_topic_t *t = w->last_topic;
    if (t && (t->name == name || strcmp(t->name, name) == 0)) {
        return t;
    }
    for (size_t i = 0; i < w->nparts_topics; i++) {
        if (strcmp(w->inputs[i]->name, name) == 0) {
            w->last_topic = w->inputs[i];
            return w->inputs[i];
        }
    }
    return NULL;
}

/* The state of partition `p` of input `t`, growing the table when the topic grew. */
static rv__part_t *part_of(rv__worker_t *w, const rv_topic_t *t, int32_t p) {
    size_t i = (size_t)t->input_index;
    if (p < 0) {
        return NULL;
    }
    if (p >= w->nparts[i]) {
        rv__part_t *v = realloc(w->parts[i], ((size_t)p + 1) * sizeof *v);
        if (!v) {
            return NULL;
        }
        memset(v + w->nparts[i], 0, ((size_t)p + 1 - (size_t)w->nparts[i]) * sizeof *v);
        w->parts[i] = v;
        w->nparts[i] = p + 1;
    }
    return &w->parts[i][p];
}

/* ---- producing ------------------------------------------------------------------------------ */

static void on_delivery(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    rv__worker_t *w = opaque;
    if (rec_opaque) {
        rv__stores_delivered(rec_opaque, rec, err); /* a changelog record: its store */
    }
    if (err == RV_OK) {
        return;
    }
    if (w->delivery_failures++ == 0) {
        w->delivery_code = err;
        snprintf(w->delivery_error, sizeof w->delivery_error, "topic '%s' partition %d: %s",
                 rec->topic, (int)rec->partition, rv_err_str(err));
    }
}

static rv_err_t txn_begin(rv__worker_t *w);

rv_err_t rv__worker_send(rv__worker_t *w, const rv_record_t *rec) {
    int64_t give_up = 0;
    if (w->app->eos && !w->in_txn) {
        rv_err_t e = txn_begin(w); /* the first output after a checkpoint */
        if (e != RV_OK) {
            return e;
        }
    }
    for (;;) {
        rv_err_t e = rv_producer_send(w->producer, rec, NULL);
        if (e == RV_OK) {
            w->produced = true;
            rv__count(&w->counters.records_out, 1);
            return RV_OK;
        }
        if (e != RV_ERR_AGAIN) {
            return e;
        }
        int64_t now = rv_clock_mono_ms();
        if (!give_up) {
            give_up = now + SEND_WAIT_MS;
        } else if (now >= give_up) {
            return RV_ERR_AGAIN;
        }
        rv_producer_poll(w->producer, 10); /* serves reports, freeing queue space */
    }
}

/* The graph's produce: encodes with the topic's serialisers and sends. */
static rv_err_t host_produce(rv_ctx_t *ctx, rv_topic_t *t, const rv_value_t *key,
                             const rv_value_t *value) {
    rv__worker_t *w = ctx->host;
    char why[384];
    rv_record_t r = {.topic = t->name,
                     .partition = RV_PARTITION_ANY,
                     .timestamp_ms = ctx->timestamp,
                     .headers = ctx->headers,
                     .header_count = ctx->header_count};
    bool tomb = false;
    if (key && rv_value_type(key) != RV_TYPE_NULL) {
        rv_strbuf_clear(&w->key_buf);
        rv_err_t e = t->key_serde->encode(key, &w->key_buf, &tomb, why, sizeof why);
        if (e != RV_OK) {
            rv__ctx_failf(ctx, "cannot write the key for topic '%s' with the %s serialiser: %s",
                          t->name, t->key_serde->name, why);
            return e;
        }
        if (!tomb) {
            r.key = w->key_buf.data ? w->key_buf.data : "";
            r.key_len = w->key_buf.len;
        }
    }
    tomb = false;
    rv_strbuf_clear(&w->value_buf);
    rv_err_t e = t->value_serde->encode(value, &w->value_buf, &tomb, why, sizeof why);
    if (e != RV_OK) {
        rv__ctx_failf(ctx, "cannot write the value for topic '%s' with the %s serialiser: %s",
                      t->name, t->value_serde->name, why);
        return e;
    }
    if (!tomb) {
        r.value = w->value_buf.data ? w->value_buf.data : "";
        r.value_len = w->value_buf.len;
    }
    e = rv__worker_send(w, &r);
    if (e != RV_OK) {
        rv__ctx_failf(ctx, "cannot produce to topic '%s': %s (%s)", t->name, rv_err_name(e),
                      rv_err_str(e));
    }
    return e;
}

/* The graph's topics by name (to_topic_fn), through a small per-worker cache. */
static rv_err_t host_topic_named(rv_ctx_t *ctx, const char *name, size_t len,
                                 const rv_topic_opts_t *opts, rv_topic_t **out) {
    rv__worker_t *w = ctx->host;
    for (size_t i = 0; i < RV_ARRAY_LEN(w->recent); i++) {
        rv_topic_t *t = w->recent[i];
        if (t && strncmp(t->name, name, len) == 0 && t->name[len] == 0) {
            *out = t;
            return RV_OK;
        }
    }
    char why[384];
    rv_err_t e = rv__app_topic_at_run(w->app, name, len, opts, out, why, sizeof why);
    if (e != RV_OK) {
        rv__ctx_failf(ctx, "%s", why);
        return e;
    }
    w->recent[w->recent_next++ % RV_ARRAY_LEN(w->recent)] = *out;
    return RV_OK;
}

/* The graph's log: operators' lines, under the application's name and the worker's. */
static void host_log(rv_ctx_t *ctx, rv_log_level_t level, const char *msg) {
    rv__worker_t *w = ctx->host;
    rv__log(&w->app->log, level, "app", "application '%s' worker %d: %s", w->app->group,
            w->index, msg);
}

const rv__df_host_t rv__app_host = {
    .version = RV__DF_HOST_VERSION,
    .repartition_topic = rv__app_repartition_topic, /* build time, in app.c */
    .produce = host_produce,
    .topic_named = host_topic_named,
    .log = host_log,
};

/* ---- checkpoints ---------------------------------------------------------------------------- */

/* Refreshes the lag metric: records between this worker's positions and the high watermarks. */
static void update_lag(rv__worker_t *w, int64_t now) {
    if (now - w->last_lag_ms < LAG_EVERY_MS) {
        return;
    }
    w->last_lag_ms = now;
    int64_t lag = 0;
    for (size_t i = 0; i < w->nparts_topics; i++) {
        for (int32_t p = 0; p < w->nparts[i]; p++) {
            rv__part_t *pt = &w->parts[i][p];
            int64_t lo, hi;
            if (!pt->assigned || pt->next < 0 ||
                rv_broker_watermarks(w->app->broker, w->inputs[i]->name, p, &lo, &hi, NULL) !=
                    RV_OK) {
                continue;
            }
            lag += hi > pt->next ? hi - pt->next : 0;
        }
    }
    atomic_store_explicit(&w->counters.lag, lag, memory_order_relaxed);
}

/* What a checkpoint is for (flags of checkpoint()). */
enum {
    CK_STOP = 1 << 0,  /* the last one of a run: flush the sinks even when nothing is pending */
    CK_REVOKE = 1 << 1 /* partitions are being revoked: a failed commit is not retried */
};

/* The offset after the last record processed in a partition (the stores' processed offset). */
static int64_t next_of(void *opaque, const rv_topic_t *t, int32_t p) {
    rv__part_t *pt = part_of(opaque, (rv_topic_t *)t, p);
    return pt ? pt->next : 0;
}

/* Checkpoint step 1: flushes the producer (every delivery reported) and the sink objects.
 * On a failure *err says what failed (the caller stops the run or aborts the transaction). */
static rv_err_t ck_flush(rv__worker_t *w, rv_error_t **err) {
    rv_app_t *app = w->app;
    if (w->produced) {
        rv_err_t e = rv_producer_flush(w->producer, -1, err);
        w->produced = false;
        pthread_mutex_lock(&app->mu);
        app->activity++;
        pthread_mutex_unlock(&app->mu);
        if (e != RV_OK) {
            return rv__error_prefix(err, e, "flushing the producer: ");
        }
    }
    if (w->delivery_failures) {
        return rv__error_set(err, w->delivery_code,
                             "%lld record%s could not be produced (the first: %s)",
                             (long long)w->delivery_failures, w->delivery_failures == 1 ? "" : "s",
                             w->delivery_error);
    }
    return rv__graph_flush_sinks(app->graph, err);
}

/* Checkpoint step 2: sends the stores' changes to their changelogs and waits for them (in a
 * transaction the records are only known delivered when it commits). */
static rv_err_t ck_changelogs(rv__worker_t *w, rv_error_t **err) {
    if (!w->stores || !rv__stores_dirty(w->stores)) {
        return RV_OK;
    }
    bool sent = false;
    rv_err_t e = rv__stores_send_changelog(w->stores, next_of, w, &sent, err);
    if (e == RV_OK && w->delivery_failures) {
        e = rv__error_set(err, w->delivery_code,
                          "%lld changelog record%s could not be produced (the first: %s)",
                          (long long)w->delivery_failures, w->delivery_failures == 1 ? "" : "s",
                          w->delivery_error);
    }
    return e != RV_OK ? rv__error_prefix(err, e, "writing state changelogs: ") : RV_OK;
}

/* Checkpoint step 3: commits the offsets of the `n` partitions with processed records. A failure
 * is logged and left to the next checkpoint (or to the partitions' next owner). */
static rv_err_t ck_commit_offsets(rv__worker_t *w, const char *why, int flags, size_t n,
                                  size_t *committed) {
    rv_app_t *app = w->app;
    rv_error_t *err = NULL;
    *committed = 0;
    if (n > w->commit_cap) {
        rv_topic_partition_t *v = realloc(w->commit_buf, n * sizeof *v);
        if (!v) {
            worker_fail(w, RV_ERR_NOMEM, "application '%s': checkpoint: out of memory", app->group);
            return RV_ERR_NOMEM;
        }
        w->commit_buf = v;
        w->commit_cap = n;
    }
    size_t k = 0;
    for (size_t i = 0; i < w->nparts_topics; i++) {
        for (int32_t p = 0; p < w->nparts[i]; p++) {
            rv__part_t *pt = &w->parts[i][p];
            if (pt->assigned && pt->dirty) {
                w->commit_buf[k++] = (rv_topic_partition_t){w->inputs[i]->name, p, pt->next};
            }
        }
    }
    if (k == 0) {
        return RV_OK;
    }
    rv_err_t e = rv_consumer_commit(w->consumer, w->commit_buf, k, &err);
    if (e != RV_OK) {
        /* A commit refused during a rebalance is retried after each poll (commit_pending); the
         * first refusal is a warning, the retries are not. */
        rv__log(&app->log, w->commit_pending ? RV_LOG_DEBUG : RV_LOG_WARNING, "app",
                "application '%s' worker %d: checkpoint (%s): commit failed: %s; %s", app->group,
                w->index, why, rv_error_message(err),
                (flags & CK_REVOKE) ? "the next owner of those partitions processes their "
                                      "records since the last commit again (at-least-once)"
                                    : "retried after the next poll");
        rv_error_destroy(err);
        w->commit_pending = !(flags & CK_REVOKE);
        return e;
    }
    w->commit_pending = false;
    for (size_t i = 0; i < w->nparts_topics; i++) {
        for (int32_t p = 0; p < w->nparts[i]; p++) {
            rv__part_t *pt = &w->parts[i][p];
            if (pt->assigned && pt->dirty) {
                pt->dirty = false;
                pt->committed = pt->next;
            }
        }
    }
    *committed = k;
    return RV_OK;
}

/* Checkpoint step 4: commits the stores whose changes reached their changelogs in step 2 (also
 * when step 3 failed: the changelogs already hold those changes, and the processed offsets
 * stored with them make the records replayed after a failed commit skip the stores). */
static rv_err_t ck_commit_state(rv__worker_t *w, const char *why) {
    if (!w->stores) {
        return RV_OK;
    }
    rv_error_t *err = NULL;
    rv_err_t e = rv__stores_commit(w->stores, &err);
    if (e != RV_OK) {
        worker_fail(w, e, "application '%s': checkpoint (%s): committing state: %s", w->app->group,
                    why, rv_error_message(err));
        rv_error_destroy(err);
        return e;
    }
    int64_t stores, bytes;
    rv__stores_size(w->stores, &stores, &bytes);
    atomic_store_explicit(&w->counters.state_stores, stores, memory_order_relaxed);
    atomic_store_explicit(&w->counters.state_bytes, bytes, memory_order_relaxed);
    return RV_OK;
}

/* Records a completed checkpoint's duration. */
static void ck_done(rv__worker_t *w, const char *why, size_t k, int64_t t0) {
    rv_app_t *app = w->app;
    int64_t us = (rv_clock_mono_ns() - t0) / 1000;
    rv__count(&w->counters.checkpoints, 1);
    atomic_store_explicit(&app->checkpoint_last_us, us, memory_order_relaxed);
    int64_t max = atomic_load_explicit(&app->checkpoint_max_us, memory_order_relaxed);
    while (us > max && !atomic_compare_exchange_weak(&app->checkpoint_max_us, &max, us)) {
    }
    w->since_checkpoint = 0;
    rv__log(&app->log, RV_LOG_DEBUG, "app",
            "application '%s' worker %d: checkpoint (%s): %zu partition%s committed in %lld us",
            app->group, w->index, why, k, k == 1 ? "" : "s", (long long)us);
}

/* ---- exactly-once: transactions ------------------------------------------------------------- */

/* Starts the transaction of the records to come (outputs, changelogs, offsets) unless one is
 * open. A failure stops the run: a producer that cannot start transactions (fenced by a newer
 * one with its transactional.id, or the cluster out of reach) cannot go on. */
static rv_err_t txn_begin(rv__worker_t *w) {
    if (w->in_txn) {
        return RV_OK;
    }
    rv_error_t *err = NULL;
    rv_err_t e = rv_producer_begin_transaction(w->producer, &err);
    if (e != RV_OK) {
        worker_fail(w, e,
                    "application '%s' worker %d: exactly-once: cannot begin a transaction: %s",
                    w->app->group, w->index, rv_error_message(err));
        rv_error_destroy(err);
        return e;
    }
    w->in_txn = true;
    return RV_OK;
}

/*
 * The transaction of the current checkpoint failed (`code`, `why`): aborts it, so none of its
 * outputs, changelog records or offsets is ever seen, and rolls the worker back to its last
 * commit: the stores forget their buffered changes (window caches were emptied into them when
 * the checkpoint began), and each partition is sought back to its last committed offset to be
 * processed again. The run goes on, unless the producer is fenced or fatally failed, the
 * rollback itself fails, or transactions keep failing (then it stops with `why`).
 */
static rv_err_t txn_abort(rv__worker_t *w, const char *when, int flags, rv_err_t code,
                          const char *why) {
    rv_app_t *app = w->app;
    rv_error_t *err = NULL;
    rv_err_t e = RV_OK;
    if (w->in_txn && code != RV_ERR_FATAL) {
        e = rv_producer_abort_transaction(w->producer, -1, &err);
    }
    w->in_txn = false;
    w->produced = false;
    w->delivery_failures = 0;
    w->since_checkpoint = 0;
    rv__count(&w->counters.txn_aborts, 1);
    if (e == RV_OK && w->stores) {
        e = rv__stores_rollback(w->stores, &err);
    }
    for (size_t i = 0; e == RV_OK && i < w->nparts_topics; i++) {
        for (int32_t p = 0; p < w->nparts[i]; p++) {
            rv__part_t *pt = &w->parts[i][p];
            if (!pt->assigned || !pt->dirty) {
                continue;
            }
            pt->dirty = false;
            pt->next = pt->committed;
            pt->rolled_batch = w->batch_no; /* the rest of this batch is read again */
            if (pt->committed < 0) {
                continue;
            }
            e = rv_consumer_seek(w->consumer, w->inputs[i]->name, p, pt->committed, &err);
            if (e != RV_OK && (flags & CK_REVOKE)) {
                /* Being revoked: its next owner resumes from the committed offset anyway. */
                rv_error_destroy(err);
                err = NULL;
                e = RV_OK;
            } else if (e != RV_OK) {
                rv__error_prefix(&err, e,
                                 "seeking %s[%d] back to offset %lld: ", w->inputs[i]->name, (int)p,
                                 (long long)pt->committed);
            }
        }
    }
    if (e != RV_OK || code == RV_ERR_FATAL || ++w->aborts_in_row > EOS_ABORTS_MAX ||
        (flags & CK_STOP)) {
        worker_fail(w, code,
                    "application '%s' worker %d: checkpoint (%s): exactly-once: the transaction "
                    "failed and was aborted: %s%s%s",
                    app->group, w->index, when, why,
                    e != RV_OK ? "; rolling back failed too: " : "",
                    e != RV_OK ? rv_error_message(err) : "");
        rv_error_destroy(err);
        return code;
    }
    rv__log(&app->log, RV_LOG_WARNING, "app",
            "application '%s' worker %d: checkpoint (%s): exactly-once: the transaction failed "
            "and was aborted (%s); state rolled back, processing again from the last commit",
            app->group, w->index, when, why);
    rv_error_destroy(err);
    return code;
}

/* Exactly-once, steps 1 to 4 in one transaction: the outputs and the changelog records are
 * produced in it, the `n` partitions' offsets are added to it, it commits, then the stores
 * commit (a crash before that leaves them behind the transaction: the restore from their
 * changelogs, read committed, brings them up to it). */
static rv_err_t checkpoint_txn(rv__worker_t *w, const char *why, int flags, size_t n) {
    int64_t t0 = rv_clock_mono_ns();
    if (txn_begin(w) != RV_OK) {
        return RV_ERR_STATE;
    }
    rv_error_t *err = NULL;
    rv_err_t e = ck_flush(w, &err);
    if (e == RV_OK) {
        e = ck_changelogs(w, &err);
    }
    size_t k = 0;
    if (e == RV_OK && n > w->commit_cap) {
        rv_topic_partition_t *v = realloc(w->commit_buf, n * sizeof *v);
        if (!v) {
            e = rv__error_set(&err, RV_ERR_NOMEM, "out of memory");
        } else {
            w->commit_buf = v;
            w->commit_cap = n;
        }
    }
    for (size_t i = 0; e == RV_OK && i < w->nparts_topics; i++) {
        for (int32_t p = 0; p < w->nparts[i]; p++) {
            rv__part_t *pt = &w->parts[i][p];
            if (pt->assigned && pt->dirty && k < n) {
                w->commit_buf[k++] = (rv_topic_partition_t){w->inputs[i]->name, p, pt->next};
            }
        }
    }
    if (e == RV_OK && k) {
        e = rv_producer_send_offsets_to_transaction(w->producer, w->consumer, w->commit_buf, k, -1,
                                                    &err);
        e = e != RV_OK ? rv__error_prefix(&err, e, "adding offsets to the transaction: ") : e;
    }
    for (int tries = 1; e == RV_OK; tries++) {
        e = rv_producer_commit_transaction(w->producer, -1, &err);
        if (e == RV_OK) {
            break;
        }
        if ((e != RV_ERR_AGAIN && e != RV_ERR_TIMEOUT) || tries >= EOS_COMMIT_TRIES) {
            e = rv__error_prefix(&err, e, "committing the transaction: ");
            break;
        }
        rv_error_destroy(err); /* the outcome is not known yet: ask again */
        err = NULL;
        e = RV_OK;
    }
    if (e != RV_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", err ? rv_error_message(err) : rv_err_str(e));
        rv_error_destroy(err);
        return txn_abort(w, why, flags, e, msg);
    }
    w->in_txn = false;
    w->aborts_in_row = 0;
    rv__count(&w->counters.txn_commits, 1);
    rv_producer_poll(w->producer, 0); /* reports a broker gives at commit: changelog offsets */
    for (size_t i = 0; i < w->nparts_topics; i++) {
        for (int32_t p = 0; p < w->nparts[i]; p++) {
            rv__part_t *pt = &w->parts[i][p];
            if (pt->assigned && pt->dirty) {
                pt->dirty = false;
                pt->committed = pt->next;
            }
        }
    }
    if (ck_commit_state(w, why) != RV_OK) {
        return RV_ERR_IO;
    }
    ck_done(w, why, k, t0);
    return RV_OK;
}

/*
 * Runs the checkpoint's steps 1 to 4 (see the top of this file); under exactly-once, in a
 * transaction (checkpoint_txn()). At-least-once: a failed flush or delivery stops the run
 * (nothing is committed); a failed commit is logged and retried after the next poll (or, for
 * partitions being revoked, left to their next owner, who processes their records since the
 * last commit again).
 */
static rv_err_t checkpoint(rv__worker_t *w, const char *why, int flags) {
    rv_app_t *app = w->app;
    rv_error_t *ferr = NULL; /* windows write what they cache into their stores */
    rv_err_t fe = rv__graph_flush_ops(app->graph, w->stores, &ferr);
    if (fe != RV_OK) {
        worker_fail(w, fe, "application '%s': checkpoint (%s): %s", app->group, why,
                    ferr ? rv_error_message(ferr) : rv_err_str(fe));
        rv_error_destroy(ferr);
        return fe;
    }
    size_t n = 0;
    for (size_t i = 0; i < w->nparts_topics; i++) {
        for (int32_t p = 0; p < w->nparts[i]; p++) {
            n += w->parts[i][p].assigned && w->parts[i][p].dirty;
        }
    }
    if (n == 0 && !w->produced && w->delivery_failures == 0) {
        w->since_checkpoint = 0;
        w->commit_pending = false;
        if (flags & CK_STOP) {
            rv_error_t *err = NULL;
            rv_err_t e = rv__graph_flush_sinks(app->graph, &err);
            if (e != RV_OK) {
                worker_fail(w, e, "application '%s': checkpoint (%s): %s", app->group, why,
                            rv_error_message(err));
                rv_error_destroy(err);
            }
            return e;
        }
        return RV_OK;
    }
    if (app->eos) {
        return checkpoint_txn(w, why, flags, n);
    }
    int64_t t0 = rv_clock_mono_ns();
    rv_error_t *err = NULL;
    rv_err_t e = ck_flush(w, &err);
    if (e == RV_OK) {
        e = ck_changelogs(w, &err);
    }
    if (e != RV_OK) {
        worker_fail(w, e, "application '%s': checkpoint (%s): %s; offsets were not committed",
                    app->group, why, err ? rv_error_message(err) : rv_err_str(e));
        rv_error_destroy(err);
        return e;
    }
    size_t k = 0;
    rv_err_t ce = ck_commit_offsets(w, why, flags, n, &k);
    e = ck_commit_state(w, why);
    if (e != RV_OK || ce != RV_OK) {
        return e != RV_OK ? e : ce;
    }
    ck_done(w, why, k, t0);
    return RV_OK;
}

/* ---- the consumer's callbacks ------------------------------------------------------------- */

static void on_assign(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps,
                      size_t count) {
    rv__worker_t *w = opaque;
    int32_t added = 0;
    rv_topic_partition_t *hold = NULL;
    size_t nhold = 0;
    if (w->stores && count) {
        hold = malloc(count * sizeof *hold);
    }
    for (size_t i = 0; i < count; i++) {
        rv_topic_t *t = input_of(w, tps[i].topic);
        rv__part_t *pt = t ? part_of(w, t, tps[i].partition) : NULL;
        if (!pt) {
            if (t) {
                worker_fail(w, RV_ERR_NOMEM, "application '%s': out of memory", w->app->group);
            }
            continue;
        }
        added += !pt->assigned;
        *pt = (rv__part_t){.assigned = true, .next = tps[i].offset, .committed = tps[i].offset};
        if (w->stores && rv__stores_follow(w->stores, t)) {
            rv_error_t *err = NULL;
            if (!hold || rv__stores_assign(w->stores, t, tps[i].partition, &err) != RV_OK) {
                worker_fail(w, hold ? rv_error_code(err) : RV_ERR_NOMEM,
                            "application '%s' worker %d: %s[%d]: %s", w->app->group, w->index,
                            tps[i].topic, (int)tps[i].partition,
                            hold ? rv_error_message(err) : "out of memory");
                rv_error_destroy(err);
                continue;
            }
            pt->restoring = true;
            w->restoring = true;
            hold[nhold++] = tps[i];
        }
        rv__log(&w->app->log, RV_LOG_DEBUG, "app", "worker %d: assigned %s[%d] at offset %lld",
                w->index, tps[i].topic, (int)tps[i].partition, (long long)tps[i].offset);
    }
    if (nhold) {
        /* Held back until their stores are restored (rv__stores_restore(), then resumed). */
        rv_error_t *err = NULL;
        if (rv_consumer_pause(c, hold, nhold, &err) != RV_OK) {
            worker_fail(w, rv_error_code(err),
                        "application '%s' worker %d: pausing partitions to restore their "
                        "stores: %s",
                        w->app->group, w->index, rv_error_message(err));
            rv_error_destroy(err);
        }
    }
    free(hold);
    atomic_fetch_add(&w->assigned, added);
    pthread_mutex_lock(&w->app->mu);
    w->idle = false;
    pthread_mutex_unlock(&w->app->mu);
}

static void on_revoke(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps,
                      size_t count) {
    rv__worker_t *w = opaque;
    (void)c;
    checkpoint(w, "partitions revoked", CK_REVOKE);
    int32_t removed = 0;
    for (size_t i = 0; i < count; i++) {
        rv_topic_t *t = input_of(w, tps[i].topic);
        rv__part_t *pt = t ? part_of(w, t, tps[i].partition) : NULL;
        if (pt) {
            removed += pt->assigned;
            pt->assigned = false;
            pt->dirty = false;
            pt->restoring = false;
        }
        if (t && w->stores) {
            rv__stores_revoke(w->stores, t, tps[i].partition);
        }
        rv__log(&w->app->log, RV_LOG_DEBUG, "app", "worker %d: revoked %s[%d]", w->index,
                tps[i].topic, (int)tps[i].partition);
    }
    atomic_fetch_sub(&w->assigned, removed);
    pthread_mutex_lock(&w->app->mu);
    w->idle = false;
    pthread_mutex_unlock(&w->app->mu);
}

/* Opens and restores the stores of newly assigned partitions, a bounded step at a time, and
 * resumes each partition whose stores are all ready. */
static rv_err_t restore_step(rv__worker_t *w) {
    rv_app_t *app = w->app;
    for (;;) {
        bool busy = false, ready = false;
        rv_topic_t *t = NULL;
        int32_t p = -1;
        rv_error_t *err = NULL;
        rv_err_t e = rv__stores_restore(w->stores, &busy, &ready, &t, &p, &err);
        if (e != RV_OK) {
            worker_fail(w, e, "application '%s' worker %d: restoring state: %s", app->group,
                        w->index, rv_error_message(err));
            rv_error_destroy(err);
            return e;
        }
        if (!ready) {
            w->restoring = busy;
            return RV_OK;
        }
        rv__part_t *pt = part_of(w, t, p);
        if (pt && pt->assigned && pt->restoring) {
            pt->restoring = false;
            rv_topic_partition_t tp = {t->name, p, RV_OFFSET_INVALID};
            e = rv_consumer_resume(w->consumer, &tp, 1, &err);
            if (e != RV_OK) {
                worker_fail(w, e, "application '%s' worker %d: resuming %s[%d]: %s", app->group,
                            w->index, t->name, (int)p, rv_error_message(err));
                rv_error_destroy(err);
                return e;
            }
            rv__log(&app->log, RV_LOG_DEBUG, "app", "worker %d: %s[%d] restored and resumed",
                    w->index, t->name, (int)p);
        }
    }
}

/* Tells custom operators (windows) that wall-clock time passed, per ready partition. */
static void tick(rv__worker_t *w, int64_t now) {
    rv_app_t *app = w->app;
    if (!w->ticks || now - w->last_tick_ms < TICK_MS) {
        return;
    }
    w->last_tick_ms = now;
    int64_t wall = rv_clock_wall_ms();
    rv_arena_reset(w->arena);
    for (size_t i = 0; i < w->nparts_topics && !rv__app_stopping(app); i++) {
        for (int32_t p = 0; p < w->nparts[i]; p++) {
            rv__part_t *pt = &w->parts[i][p];
            if (!pt->assigned || pt->restoring) {
                continue;
            }
            rv_record_t rec = {
                .topic = w->inputs[i]->name, .partition = p, .offset = -1, .timestamp_ms = wall};
            rv_ctx_t *ctx = &w->ctx;
            ctx->rec = &rec;
            ctx->topic = w->inputs[i];
            ctx->headers = NULL;
            ctx->header_count = 0;
            rv_err_t e = rv__graph_tick(app->graph, ctx, wall);
            if (e != RV_OK) {
                char why[768];
                rv__df_fail_reason(ctx, e, why, sizeof why);
                worker_fail(w, e, "application '%s': topic '%s' partition %d: %s", app->group,
                            w->inputs[i]->name, (int)p, why);
            }
            ctx->rec = NULL;
        }
    }
}

/* A record the consumer dropped (a split value that never completed) is an error too. */
static void on_consumer_error(void *opaque, rv_consumer_t *c, rv_err_t code, const char *message) {
    rv__worker_t *w = opaque;
    rv_app_t *app = w->app;
    (void)c;
    rv__count(&w->counters.errors, 1);
    if (app->on_error) {
        app->on_error(app->error_opaque, code, message);
    }
    if (app->policy == RV__POLICY_STOP) {
        worker_fail(w, code, "application '%s': the consumer dropped a record: %s", app->group,
                    message);
        return;
    }
    rv__count(&w->counters.skipped, 1);
    rv__log(&app->log, RV_LOG_WARNING, "app",
            "application '%s': the consumer dropped a record (counted as skipped: it cannot "
            "be processed or dead-lettered): %s",
            app->group, message);
}

/* ---- processing ----------------------------------------------------------------------------- */

/* Decodes one record and runs it through its topic's dataframes; the policy handles failures.
 * Returns RV_OK when the record is done with (processed, skipped or dead-lettered). */
static rv_err_t process(rv__worker_t *w, rv_topic_t *t, const rv_record_t *rec) {
    rv_ctx_t *ctx = &w->ctx;
    ctx->rec = rec;
    ctx->topic = t;
    ctx->key = NULL;
    ctx->timestamp = rec->timestamp_ms;
    ctx->headers = rec->headers;
    ctx->header_count = rec->header_count;
    ctx->fail_node = NULL;
    ctx->fail_set = false;
    char why[768];
    char reason[512];
    int depth = w->app->json_max_depth;
    rv_value_t *key = NULL, *value;
    if (rec->key) {
        rv_err_t e = t->key_serde->decode(w->arena, rec->key, rec->key_len, depth, &key, reason,
                                          sizeof reason);
        if (e != RV_OK) {
            snprintf(why, sizeof why, "cannot read the key with the %s serialiser: %s",
                     t->key_serde->name, reason);
            return rv__policy_apply(w, e, why);
        }
        ctx->key = key;
    }
    if (rec->value) {
        rv_err_t e = t->value_serde->decode(w->arena, rec->value, rec->value_len, depth, &value,
                                            reason, sizeof reason);
        if (e != RV_OK) {
            snprintf(why, sizeof why, "cannot read the value with the %s serialiser: %s",
                     t->value_serde->name, reason);
            return rv__policy_apply(w, e, why);
        }
    } else if (!(value = rv_value_new_null(w->arena))) {
        return rv__policy_apply(w, RV_ERR_NOMEM, "out of memory in the batch arena");
    }
    if (t->timestamp_fn) {
        ctx->timestamp = t->timestamp_fn(t->timestamp_opaque, key, value, rec->timestamp_ms);
    }
    rv_err_t e = rv__df_run(ctx, t->roots, t->nroots, value);
    if (e != RV_OK) {
        rv__df_fail_reason(ctx, e, why, sizeof why);
        return rv__policy_apply(w, e, why);
    }
    return RV_OK;
}

/* until_end: declares this worker idle when every partition it owns is read to its high
 * watermark, and stops the run when every worker is idle since the last flush anywhere. */
static void idle_check(rv__worker_t *w) {
    rv_app_t *app = w->app;
    if (w->produced) {
        checkpoint(w, "end of input", 0);
    }
    pthread_mutex_lock(&app->mu);
    uint64_t act = app->activity;
    pthread_mutex_unlock(&app->mu);
    bool at_end = !w->restoring; /* stores still being restored are not at their end */
    for (size_t i = 0; at_end && i < w->nparts_topics; i++) {
        for (int32_t p = 0; at_end && p < w->nparts[i]; p++) {
            if (!w->parts[i][p].assigned) {
                continue;
            }
            rv_topic_partition_t tp = {w->inputs[i]->name, p, RV_OFFSET_INVALID};
            int64_t lo, hi;
            if (rv_consumer_position(w->consumer, &tp, 1, NULL) != RV_OK ||
                rv_broker_watermarks(app->broker, tp.topic, p, &lo, &hi, NULL) != RV_OK ||
                tp.offset < 0 || tp.offset < hi) {
                at_end = false;
            }
        }
    }
    pthread_mutex_lock(&app->mu);
    w->idle = at_end;
    w->idle_activity = act;
    if (at_end) {
        bool all = true;
        int32_t assigned = 0;
        for (int i = 0; all && i < app->nworkers; i++) {
            rv__worker_t *o = &app->workers[i];
            all = o->idle && o->idle_activity == app->activity;
            assigned += atomic_load(&o->assigned);
        }
        if (all && assigned == app->input_partitions) {
            rv__log(&app->log, RV_LOG_INFO, "app",
                    "application '%s': every input partition is read to its end", app->group);
            atomic_store(&app->stop, 1);
        }
    }
    pthread_mutex_unlock(&app->mu);
}

/* Makes the worker's consumer and producer and subscribes. */
static rv_err_t setup(rv__worker_t *w) {
    rv_app_t *app = w->app;
    rv_error_t *err = NULL;
    w->ctx.arena = w->arena;
    w->ctx.counters = &w->counters;
    w->ctx.host = w;
    pthread_mutex_lock(&app->mu);
    size_t n = 0;
    for (size_t i = 0; i < app->ntopics; i++) {
        n += app->topics[i]->input_index >= 0;
    }
    w->inputs = calloc(n, sizeof *w->inputs);
    w->parts = calloc(n, sizeof *w->parts);
    w->nparts = calloc(n, sizeof *w->nparts);
    const char **names = calloc(n, sizeof *names);
    bool ok = w->inputs && w->parts && w->nparts && names;
    for (size_t i = 0; ok && i < app->ntopics; i++) {
        rv_topic_t *t = app->topics[i];
        if (t->input_index >= 0) {
            w->inputs[t->input_index] = t;
            names[t->input_index] = t->name;
        }
    }
    pthread_mutex_unlock(&app->mu);
    w->nparts_topics = ok ? n : 0;
    for (size_t i = 0; ok && i < n; i++) {
        int32_t np = w->inputs[i]->actual_partitions;
        w->parts[i] = calloc((size_t)(np > 0 ? np : 1), sizeof **w->parts);
        w->nparts[i] = w->parts[i] ? np : 0;
        ok = w->parts[i] != NULL;
    }
    if (!ok) {
        free(names);
        worker_fail(w, RV_ERR_NOMEM, "application '%s': out of memory", app->group);
        return RV_ERR_NOMEM;
    }
    rv_producer_opts_t po = {.delivery_cb = on_delivery, .opaque = w};
    rv_conf_t *pconf = NULL;
    const char *user_tid = rv__conf_str(app->conf, RV_CONF_ID_TRANSACTIONAL_ID);
    bool own_conf = app->eos || (user_tid && *user_tid);
    if (own_conf) {
        /* Exactly-once: one transactional producer per worker, "<prefix>-<worker>" (see
         * docs/applications.md, "Processing guarantees"). At-least-once: never transactional,
         * whatever transactional.id says. */
        char tid[512] = "";
        if (app->eos) {
            snprintf(tid, sizeof tid, "%s-%d", app->txn_prefix, w->index);
        }
        pconf = rv_conf_dup(app->conf); /* the broker opened with it */
        rv_err_t ce = pconf ? rv_conf_set(pconf, "transactional.id", tid, &err)
                            : rv__error_set(&err, RV_ERR_NOMEM, "out of memory");
        if (ce == RV_OK) {
            po.conf = pconf;
        }
    }
    w->producer = po.conf || !own_conf ? rv_producer_new(app->broker, &po, &err) : NULL;
    rv_conf_destroy(pconf);
    if (w->producer && app->eos) {
        /* The first transaction initialises the producer's transactions, which fences an older
         * producer of this id and aborts what it left open (a crashed run's last transaction),
         * before any store restores from a changelog. */
        rv_err_t te = rv_producer_begin_transaction(w->producer, &err);
        if (te != RV_OK) {
            rv__error_prefix(&err, te, "exactly-once: cannot begin a transaction: ");
            rv_producer_close(w->producer);
            w->producer = NULL;
        } else {
            w->in_txn = true;
        }
    }
    rv__graph_t *g = app->graph;
    if (w->producer && g->nstores) {
        rv__stores_opts_t so = {.state_dir = app->state_dir,
                                .group = app->group,
                                .broker = app->broker,
                                .producer = w->producer,
                                .log = &app->log,
                                .decls = g->stores,
                                .ndecls = g->nstores,
                                .lock_timeout_ms = app->state_lock_timeout_ms,
                                .restore_batch = BATCH_MAX * 8,
                                .worker = w->index,
                                .restored = &w->counters.state_restored,
                                .rocksdb_opts = app->rocksdb_opts};
        w->stores = rv__stores_new(&so, &err);
        if (!w->stores) {
            rv_producer_close(w->producer);
            w->producer = NULL;
        }
        w->ctx.stores = w->stores;
    }
    for (size_t i = 0; i < g->n; i++) {
        w->ticks = w->ticks || (g->nodes[i]->op == RV__OP_CUSTOM && g->nodes[i]->ops->tick);
    }
    rv_consumer_opts_t co = {.group = app->group,
                             .callbacks = {.opaque = w,
                                           .on_assign = on_assign,
                                           .on_revoke = on_revoke,
                                           .on_error = on_consumer_error}};
    if (w->producer) {
        w->consumer = rv_consumer_new(app->broker, &co, &err);
    }
    rv_err_t e = w->producer && w->consumer ? RV_OK : rv_error_code(err);
    if (e == RV_OK) {
        e = rv_consumer_subscribe(w->consumer, names, n, &err);
    }
    free(names);
    if (e != RV_OK) {
        worker_fail(w, e, "application '%s' worker %d: %s", app->group, w->index,
                    rv_error_message(err));
        rv_error_destroy(err);
        return e;
    }
    w->last_checkpoint_ms = rv_clock_mono_ms();
    return RV_OK;
}

void *rv__worker_main(void *arg) {
    rv__worker_t *w = arg;
    rv_app_t *app = w->app;
    if (setup(w) != RV_OK) {
        rv_consumer_close(w->consumer);
        rv_producer_close(w->producer);
        rv__stores_destroy(w->stores);
        w->stores = NULL;
        return NULL;
    }
    while (!rv__app_stopping(app)) {
        /* While changelog records flow, the poll does not wait; while a lock is awaited, a bit. */
        int restore_wait = RESTORE_POLL_MS;
        if (w->restoring) {
            int64_t applied =
                atomic_load_explicit(&w->counters.state_restored, memory_order_relaxed);
            if (restore_step(w) != RV_OK) {
                break;
            }
            if (atomic_load_explicit(&w->counters.state_restored, memory_order_relaxed) > applied) {
                restore_wait = 0;
            }
        }
        const rv_record_t *recs = NULL;
        size_t n = 0;
        rv_error_t *err = NULL;
        rv_err_t e = rv_consumer_poll(w->consumer, &recs, BATCH_MAX, &n,
                                      w->restoring ? restore_wait
                                      : w->ticks   ? TICK_MS
                                                   : POLL_MS,
                                      &err);
        if (e != RV_OK) {
            worker_fail(w, e, "application '%s' worker %d: %s", app->group, w->index,
                        rv_error_message(err));
            rv_error_destroy(err);
            break;
        }
        if (w->commit_pending) {
            checkpoint(w, "commit retry", 0); /* a commit refused during a rebalance */
        }
        if (n) {
            w->batch_no++;
            rv_arena_reset(w->arena);
            if (app->until_end) {
                pthread_mutex_lock(&app->mu);
                w->idle = false;
                pthread_mutex_unlock(&app->mu);
            }
        }
        for (size_t i = 0; i < n && !rv__app_stopping(app); i++) {
            const rv_record_t *rec = &recs[i];
            rv_topic_t *t = input_of(w, rec->topic);
            rv__part_t *pt = t ? part_of(w, t, rec->partition) : NULL;
            if (!pt) {
                worker_fail(w, t ? RV_ERR_NOMEM : RV_ERR_STATE,
                            "application '%s': a record of topic '%s' partition %d, which it "
                            "does not read",
                            app->group, rec->topic, (int)rec->partition);
                break;
            }
            if (pt->restoring) {
                /* Fetched before the pause took hold: read again once its stores are ready. */
                if (pt->held_batch != w->batch_no) {
                    pt->held_batch = w->batch_no;
                    rv_error_t *serr = NULL;
                    rv_err_t se = rv_consumer_seek(w->consumer, rec->topic, rec->partition,
                                                   rec->offset, &serr);
                    if (se != RV_OK) {
                        worker_fail(w, se,
                                    "application '%s': %s[%d]: cannot hold back offset %lld "
                                    "until its stores are restored: %s",
                                    app->group, rec->topic, (int)rec->partition,
                                    (long long)rec->offset, rv_error_message(serr));
                        rv_error_destroy(serr);
                        break;
                    }
                }
                continue;
            }
            if (pt->rolled_batch == w->batch_no) {
                continue; /* sought back by an aborted transaction: read again later */
            }
            bool source = !(t->kind & RV__TOPIC_REPARTITION);
            int64_t claim = 0;
            if (source && app->count_limit) {
                claim = atomic_fetch_add(&app->claimed, 1) + 1;
                if (claim > app->count_limit) {
                    atomic_store(&app->stop, 1);
                    break;
                }
            }
            if (pt->committed < 0) {
                pt->committed = rec->offset; /* nothing committed yet: where processing began */
            }
            if (process(w, t, rec) != RV_OK) {
                break; /* the policy stopped the run; this record stays uncommitted */
            }
            if (rec->offset + 1 > pt->next) {
                pt->next = rec->offset + 1;
            }
            pt->dirty = true;
            if (source) {
                rv__count(&w->counters.records_in, 1);
            }
            if (claim == app->count_limit && claim) {
                atomic_store(&app->stop, 1);
            }
            if (app->commit_every && ++w->since_checkpoint >= app->commit_every) {
                checkpoint(w, "commit.every", 0);
            } else if (w->stores && rv__stores_buffered(w->stores) > app->state_buffer_max) {
                checkpoint(w, "state.buffer.max.bytes", 0);
            }
        }
        if (w->produced) {
            rv_producer_poll(w->producer, 0);
        }
        if (w->ctx.printed) {
            rv__graph_flush_print(app->graph); /* print's lines appear batch by batch */
            w->ctx.printed = false;
        }
        int64_t now = rv_clock_mono_ms();
        if (now - w->last_checkpoint_ms >= app->commit_interval_ms) {
            checkpoint(w, "commit.interval.ms", 0);
            update_lag(w, now);
            w->last_checkpoint_ms = now;
        }
        tick(w, now);
        if (app->deadline_ms && now >= app->deadline_ms) {
            atomic_store(&app->stop, 1);
        }
        if (app->until_end && n == 0 && !rv__app_stopping(app)) {
            idle_check(w);
        }
    }
    checkpoint(w, "stop", CK_STOP);
    w->last_lag_ms = 0;
    update_lag(w, rv_clock_mono_ms());
    rv_consumer_close(w->consumer); /* revokes: on_revoke checkpoints again (a no-op) */
    w->consumer = NULL;
    rv_producer_close(w->producer); /* late delivery reports may still name closed stores */
    w->producer = NULL;
    rv__stores_destroy(w->stores);
    w->stores = NULL;
    w->ctx.stores = NULL;
    return NULL;
}
