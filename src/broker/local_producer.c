/*
 * local_producer.c: the producer of the `local:` broker: per-partition batches, a writer
 * thread, and delivery reports.
 *
 * rv_producer_send() copies a record into its partition's open batch (one growing buffer per
 * batch, so a record costs a memcpy and no allocation of its own). A batch is sealed when it
 * reaches batch.size, when it is linger.ms old, or on flush, and the producer's thread appends
 * sealed batches in order through the broker handle's shared partition writers. A delivery
 * report is released after the append returned and, under the `interval` fsync policy, only
 * once a background sync covered it, so an acknowledged record is as durable as the policy
 * promises. Reports are delivered from rv_producer_poll() and rv_producer_flush() in the
 * calling thread, never from the writer thread. This file must never call the delivery
 * callback with the producer's mutex held, and must never reorder records of one partition.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "broker/local_int.h"
#include "rivulet/clock.h"

/* Bytes a record is accounted for beyond its key, value and headers (offsets, lengths). */
#define RECORD_OVERHEAD 24
#define HEADER_OVERHEAD 8

typedef struct rec_meta_s {
    size_t key_off;
    size_t key_len;
    size_t value_off;
    size_t value_len;
    size_t hdr_first;
    size_t hdr_count;
    int64_t timestamp_ms;
    void *opaque;
    bool key_null;
    bool value_null;
} rec_meta_t;

typedef struct hdr_meta_s {
    size_t name_off;
    size_t value_off;
    size_t value_len;
    bool value_null;
} hdr_meta_t;

typedef struct ptopic_s ptopic_t;

typedef struct batch_s {
    struct batch_s *next;
    struct batch_s *open_prev; /* the producer's list of open batches, oldest first */
    struct batch_s *open_next;
    ptopic_t *pt;
    int32_t partition;
    char *buf;
    size_t len;
    size_t cap;
    rec_meta_t *recs;
    size_t n;
    size_t recs_cap;
    hdr_meta_t *hdrs;
    size_t nh;
    size_t hdrs_cap;
    size_t bytes; /* accounted against queue.buffering.max.bytes */
    int64_t created_ms;
    int64_t first_try_ms; /* when the first append attempt met a busy writer lock; 0 = none */
    int64_t retry_at_ms;
    int64_t base_offset;
    size_t stored; /* records [0, stored) were appended; the others failed with `err` */
    rv_err_t err;
    rv_err_t sync_err; /* the outcome of the sync that covered the stored records */
    rv_local_writer_t *writer;
    uint64_t seq;
} batch_t;

/* A topic this producer writes: its metadata and each partition's open batch. */
struct ptopic_s {
    ptopic_t *next;
    char *name;
    rv_local_topic_t *meta;
    int32_t partitions;
    batch_t **open;              /* [partitions] */
    rv_local_writer_t **writers; /* [partitions]; used by the writer thread only */
    uint32_t round_robin;
    bool stale; /* the topic was deleted: a new entry replaces this one */
};

struct rv_local_producer_s {
    rv_producer_t *producer;
    rv_local_t *lb;
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* the writer thread sleeps here */
    pthread_cond_t reports; /* poll and flush sleep here */
    pthread_t thread;
    bool thread_started;
    bool stop;
    int flushing;
    int64_t linger_ms;
    size_t batch_size;
    size_t max_bytes;
    ptopic_t *topics;
    batch_t *open_head;
    batch_t *open_tail;
    batch_t *queue_head; /* sealed, waiting for the writer thread */
    batch_t *queue_tail;
    batch_t *done_head; /* appended or failed, waiting for their reports */
    batch_t *done_tail;
    size_t queued_bytes;
    size_t outstanding;   /* records sent and not yet reported */
    rv_record_t *scratch; /* the writer thread's record views for one append */
    size_t scratch_cap;
    rv_header_t *hscratch;
    size_t hscratch_cap;
};

/* ---- batches ------------------------------------------------------------------------------- */

static void batch_free(batch_t *b) {
    if (b) {
        free(b->buf);
        free(b->recs);
        free(b->hdrs);
        free(b);
    }
}

static void batch_list_free(batch_t *b) {
    while (b) {
        batch_t *next = b->next;
        batch_free(b);
        b = next;
    }
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) {
        return true;
    }
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q) {
        return false;
    }
    *p = q;
    *cap = c;
    return true;
}

static size_t buf_put(batch_t *b, const void *data, size_t len) {
    size_t off = b->len;
    if (len) {
        memcpy(b->buf + off, data, len);
        b->len += len;
    }
    return off;
}

/* Copies `rec` into the batch. False when memory is exhausted (the batch is unchanged). */
static bool batch_add(batch_t *b, const rv_record_t *rec, int64_t ts, void *opaque, size_t bytes) {
    size_t raw = rec->key_len + rec->value_len;
    for (size_t i = 0; i < rec->header_count; i++) {
        raw += strlen(rec->headers[i].name) + 1 + rec->headers[i].value_len;
    }
    if (!grow((void **)&b->buf, &b->cap, b->len + raw + 1, 1) ||
        !grow((void **)&b->recs, &b->recs_cap, b->n + 1, sizeof *b->recs) ||
        !grow((void **)&b->hdrs, &b->hdrs_cap, b->nh + rec->header_count, sizeof *b->hdrs)) {
        return false;
    }
    rec_meta_t *m = &b->recs[b->n++];
    m->key_null = rec->key == NULL;
    m->key_len = m->key_null ? 0 : rec->key_len;
    m->key_off = buf_put(b, rec->key, m->key_len);
    m->value_null = rec->value == NULL;
    m->value_len = m->value_null ? 0 : rec->value_len;
    m->value_off = buf_put(b, rec->value, m->value_len);
    m->hdr_first = b->nh;
    m->hdr_count = rec->header_count;
    for (size_t i = 0; i < rec->header_count; i++) {
        hdr_meta_t *h = &b->hdrs[b->nh++];
        h->name_off = buf_put(b, rec->headers[i].name, strlen(rec->headers[i].name) + 1);
        h->value_null = rec->headers[i].value == NULL;
        h->value_len = h->value_null ? 0 : rec->headers[i].value_len;
        h->value_off = buf_put(b, rec->headers[i].value, h->value_len);
    }
    m->timestamp_ms = ts;
    m->opaque = opaque;
    b->bytes += bytes;
    return true;
}

/* Fills `out` (and `hdrs`, with room for b->nh) with views of the batch's records. */
static void batch_views(const batch_t *b, rv_record_t *out, rv_header_t *hdrs) {
    for (size_t h = 0; h < b->nh; h++) {
        hdrs[h].name = b->buf + b->hdrs[h].name_off;
        hdrs[h].value = b->hdrs[h].value_null ? NULL : b->buf + b->hdrs[h].value_off;
        hdrs[h].value_len = b->hdrs[h].value_len;
    }
    for (size_t i = 0; i < b->n; i++) {
        const rec_meta_t *m = &b->recs[i];
        out[i] = (rv_record_t){
            .topic = b->pt->name,
            .partition = b->partition,
            .offset = i < b->stored ? b->base_offset + (int64_t)i : RV_OFFSET_INVALID,
            .timestamp_ms = m->timestamp_ms,
            .key = m->key_null ? NULL : b->buf + m->key_off,
            .key_len = m->key_len,
            .value = m->value_null ? NULL : b->buf + m->value_off,
            .value_len = m->value_len,
            .headers = m->hdr_count ? &hdrs[m->hdr_first] : NULL,
            .header_count = m->hdr_count,
        };
    }
}

/* ---- the producer's lists (all under lp->mu) ------------------------------------------------ */

static void open_unlink(rv_local_producer_t *lp, batch_t *b) {
    if (b->open_prev) {
        b->open_prev->open_next = b->open_next;
    } else {
        lp->open_head = b->open_next;
    }
    if (b->open_next) {
        b->open_next->open_prev = b->open_prev;
    } else {
        lp->open_tail = b->open_prev;
    }
    b->open_prev = b->open_next = NULL;
}

static void list_append(batch_t **head, batch_t **tail, batch_t *b) {
    b->next = NULL;
    if (*tail) {
        (*tail)->next = b;
    } else {
        *head = b;
    }
    *tail = b;
}

/* Moves an open batch to the writer thread's queue. */
static void seal(rv_local_producer_t *lp, batch_t *b) {
    open_unlink(lp, b);
    b->pt->open[b->partition] = NULL;
    list_append(&lp->queue_head, &lp->queue_tail, b);
}

static ptopic_t *ptopic_find(rv_local_producer_t *lp, const char *name) {
    for (ptopic_t *pt = lp->topics; pt; pt = pt->next) {
        if (!pt->stale && strcmp(pt->name, name) == 0) {
            if (atomic_load(&pt->meta->deleted)) {
                pt->stale = true;
                return NULL;
            }
            return pt;
        }
    }
    return NULL;
}

/* The producer's entry for `name`, looked up in the broker when new. Called with lp->mu held;
 * drops and retakes it around the broker lookup. */
static rv_err_t ptopic_get(rv_local_producer_t *lp, const char *name, ptopic_t **out) {
    ptopic_t *pt = ptopic_find(lp, name);
    if (pt) {
        *out = pt;
        return RV_OK;
    }
    pthread_mutex_unlock(&lp->mu);
    rv_local_topic_t *meta = NULL;
    rv_err_t rc = rv__local_topic_get(lp->lb, name, &meta, NULL);
    if (rc == RV_OK && atomic_load(&meta->deleted)) {
        rc = RV_ERR_NOT_FOUND;
    }
    pthread_mutex_lock(&lp->mu);
    if (rc != RV_OK) {
        return rc;
    }
    if ((pt = ptopic_find(lp, name)) != NULL) {
        *out = pt;
        return RV_OK;
    }
    pt = calloc(1, sizeof *pt);
    if (!pt || !(pt->name = strdup(name)) ||
        !(pt->open = calloc((size_t)meta->partitions, sizeof *pt->open)) ||
        !(pt->writers = calloc((size_t)meta->partitions, sizeof *pt->writers))) {
        if (pt) {
            free(pt->name);
            free(pt->open);
            free(pt);
        }
        return RV_ERR_NOMEM;
    }
    pt->meta = meta;
    pt->partitions = meta->partitions;
    pt->next = lp->topics;
    lp->topics = pt;
    *out = pt;
    return RV_OK;
}

/* ---- the writer thread ---------------------------------------------------------------------- */

/* Fails `b` and every later batch of the same partition in `list` with `err`, moving them to
 * `done`; returns the list without them. */
static batch_t *fail_partition(batch_t *list, const batch_t *b, rv_err_t err, batch_t **done_head,
                               batch_t **done_tail) {
    ptopic_t *pt = b->pt;
    int32_t partition = b->partition;
    batch_t *keep_head = NULL, *keep_tail = NULL;
    while (list) {
        batch_t *next = list->next;
        if (list->pt == pt && list->partition == partition) {
            list->err = err;
            list_append(done_head, done_tail, list);
        } else {
            list_append(&keep_head, &keep_tail, list);
        }
        list = next;
    }
    return keep_head;
}

/* Appends one batch. RV_ERR_BUSY when another process holds the partition's writer lock. */
static rv_err_t append_batch(rv_local_producer_t *lp, batch_t *b, rv_error_t **err) {
    if (!grow((void **)&lp->scratch, &lp->scratch_cap, b->n, sizeof *lp->scratch) ||
        !grow((void **)&lp->hscratch, &lp->hscratch_cap, b->nh ? b->nh : 1, sizeof *lp->hscratch)) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory writing topic '%s'", b->pt->name);
    }
    batch_views(b, lp->scratch, lp->hscratch);
    return rv__local_append(lp->lb, b->pt->meta, b->partition, lp->scratch, b->n, &b->base_offset,
                            &b->stored, &b->pt->writers[b->partition], &b->seq, err);
}

static bool blocked(batch_t *const *v, size_t n, const batch_t *b) {
    for (size_t i = 0; i < n; i++) {
        if (v[i]->pt == b->pt && v[i]->partition == b->partition) {
            return true;
        }
    }
    return false;
}

/* Appends what can be appended now from `work`; returns the batches to retry later, in order,
 * and moves finished ones to `done`. */
static batch_t *append_pass(rv_local_producer_t *lp, batch_t *work, batch_t **done_head,
                            batch_t **done_tail) {
    batch_t *keep_head = NULL, *keep_tail = NULL;
    batch_t *stuck[32];
    size_t nstuck = 0;
    while (work) {
        batch_t *b = work;
        work = b->next;
        int64_t now = rv_clock_mono_ms();
        if (blocked(stuck, nstuck, b) || b->retry_at_ms > now) {
            if (nstuck < RV_ARRAY_LEN(stuck) && !blocked(stuck, nstuck, b)) {
                stuck[nstuck++] = b;
            }
            list_append(&keep_head, &keep_tail, b);
            continue;
        }
        rv_error_t *e = NULL;
        rv_err_t rc = append_batch(lp, b, &e);
        if (rc == RV_ERR_BUSY) {
            if (b->first_try_ms == 0) {
                b->first_try_ms = now;
            }
            if (now - b->first_try_ms >= RV_LOCAL_WRITER_WAIT_MS) {
                rv__log(&lp->producer->broker->log, RV_LOG_ERROR, "local",
                        "%s; gave up after %d ms: its queued records fail with BUSY",
                        rv_error_message(e), RV_LOCAL_WRITER_WAIT_MS);
                b->err = RV_ERR_BUSY;
                list_append(done_head, done_tail, b);
                work = fail_partition(work, b, RV_ERR_BUSY, done_head, done_tail);
            } else {
                b->retry_at_ms = now + RV_LOCAL_WRITER_RETRY_MS;
                if (nstuck < RV_ARRAY_LEN(stuck)) {
                    stuck[nstuck++] = b;
                }
                list_append(&keep_head, &keep_tail, b);
            }
        } else {
            if (rc != RV_OK) {
                rv__log(&lp->producer->broker->log, RV_LOG_WARNING, "local", "%s",
                        rv_error_message(e));
            }
            b->err = rc;
            b->writer = b->stored > 0 ? b->pt->writers[b->partition] : NULL;
            list_append(done_head, done_tail, b);
        }
        rv_error_destroy(e);
    }
    return keep_head;
}

/* A CLOCK_REALTIME deadline `ms` from now, for pthread_cond_timedwait(). */
static struct timespec deadline_in(int64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ms < 0) {
        ms = 0;
    }
    int64_t ns = ts.tv_nsec + (ms % 1000) * 1000000;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    return ts;
}

static void *writer_main(void *arg) {
    rv_local_producer_t *lp = arg;
    pthread_mutex_lock(&lp->mu);
    for (;;) {
        int64_t now = rv_clock_mono_ms();
        while (lp->open_head &&
               (lp->flushing > 0 || lp->stop || lp->open_head->created_ms + lp->linger_ms <= now)) {
            seal(lp, lp->open_head);
        }
        int64_t next = lp->open_head ? lp->open_head->created_ms + lp->linger_ms : INT64_MAX;
        bool due = false;
        for (batch_t *b = lp->queue_head; b && !due; b = b->next) {
            if (b->retry_at_ms <= now) {
                due = true;
            } else if (b->retry_at_ms < next) {
                next = b->retry_at_ms;
            }
        }
        if (!due) {
            if (lp->stop && !lp->open_head && !lp->queue_head) {
                break;
            }
            if (next == INT64_MAX) {
                pthread_cond_wait(&lp->wake, &lp->mu);
            } else {
                struct timespec ts = deadline_in(next - now);
                pthread_cond_timedwait(&lp->wake, &lp->mu, &ts);
            }
            continue;
        }
        batch_t *work = lp->queue_head;
        lp->queue_head = lp->queue_tail = NULL;
        bool pressed = lp->queued_bytes > lp->max_bytes / 2;
        pthread_mutex_unlock(&lp->mu);

        batch_t *done_head = NULL, *done_tail = NULL;
        batch_t *keep = append_pass(lp, work, &done_head, &done_tail);
        if (done_head && pressed) {
            /* Half the queue waits for the next interval's sync: group-commit now instead of
             * stalling the sender. */
            rv__local_request_sync(lp->lb);
        }

        pthread_mutex_lock(&lp->mu);
        if (keep) { /* put the retries back in front of what was queued meanwhile */
            batch_t *last = keep;
            while (last->next) {
                last = last->next;
            }
            last->next = lp->queue_head;
            lp->queue_head = keep;
            if (!lp->queue_tail) {
                lp->queue_tail = last;
            }
        }
        if (done_head) {
            if (lp->done_tail) {
                lp->done_tail->next = done_head;
            } else {
                lp->done_head = done_head;
            }
            lp->done_tail = done_tail;
            pthread_cond_broadcast(&lp->reports);
        }
    }
    pthread_mutex_unlock(&lp->mu);
    return NULL;
}

/* ---- reports -------------------------------------------------------------------------------- */

/* Takes the batches whose reports may be delivered now out of the done list. With lp->mu held. */
static batch_t *take_ready(rv_local_producer_t *lp, bool *waiting_sync) {
    batch_t *ready_head = NULL, *ready_tail = NULL;
    batch_t *keep_head = NULL, *keep_tail = NULL;
    *waiting_sync = false;
    for (batch_t *b = lp->done_head, *next; b; b = next) {
        next = b->next;
        rv_err_t sync_err = RV_OK;
        if (b->stored == 0 || !b->writer || rv__local_synced(b->writer, b->seq, &sync_err)) {
            b->sync_err = sync_err;
            list_append(&ready_head, &ready_tail, b);
        } else {
            *waiting_sync = true;
            list_append(&keep_head, &keep_tail, b);
        }
    }
    lp->done_head = keep_head;
    lp->done_tail = keep_tail;
    return ready_head;
}

/* Delivers the reports of `ready` (lp->mu NOT held), frees them, then settles the accounting
 * with lp->mu retaken. Returns the number of reports. */
static int serve(rv_local_producer_t *lp, batch_t *ready) {
    rv_producer_t *p = lp->producer;
    rv_record_t views[64];
    rv_header_t hviews[64];
    size_t records = 0, bytes = 0;
    pthread_mutex_unlock(&lp->mu);
    for (batch_t *b = ready, *next; b; b = next) {
        next = b->next;
        records += b->n;
        bytes += b->bytes;
        if (p->delivery_cb) {
            rv_record_t *recs = b->n <= RV_ARRAY_LEN(views) ? views : malloc(b->n * sizeof *recs);
            rv_header_t *hdrs =
                b->nh <= RV_ARRAY_LEN(hviews) ? hviews : malloc(b->nh * sizeof *hdrs);
            if (recs && hdrs) {
                batch_views(b, recs, hdrs);
                for (size_t i = 0; i < b->n; i++) {
                    p->delivery_cb(p->opaque, &recs[i], i < b->stored ? b->sync_err : b->err,
                                   b->recs[i].opaque);
                }
            } else {
                /* No memory for views: report each record without its contents. */
                for (size_t i = 0; i < b->n; i++) {
                    rv_record_t r = {.topic = b->pt->name,
                                     .partition = b->partition,
                                     .offset = RV_OFFSET_INVALID};
                    p->delivery_cb(p->opaque, &r, RV_ERR_NOMEM, b->recs[i].opaque);
                }
            }
            if (recs != views) {
                free(recs);
            }
            if (hdrs != hviews) {
                free(hdrs);
            }
        }
        batch_free(b);
    }
    pthread_mutex_lock(&lp->mu);
    lp->outstanding -= records;
    lp->queued_bytes -= bytes;
    pthread_cond_broadcast(&lp->reports);
    return (int)records;
}

void rv__local_producer_wake(rv_local_producer_t *lp) {
    pthread_mutex_lock(&lp->mu);
    pthread_cond_broadcast(&lp->reports);
    pthread_mutex_unlock(&lp->mu);
}

/* ---- the ops ------------------------------------------------------------------------------ */

rv_err_t rv__local_producer_new(rv_producer_t *p, rv_error_t **err) {
    rv_local_t *lb = p->broker->impl;
    rv_local_producer_t *lp = calloc(1, sizeof *lp);
    if (!lp) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory creating a producer on '%s'",
                             lb->root);
    }
    lp->producer = p;
    lp->lb = lb;
    lp->linger_ms = rv__conf_int(p->conf, RV_CONF_ID_LINGER_MS);
    lp->batch_size = (size_t)rv__conf_int(p->conf, RV_CONF_ID_BATCH_SIZE);
    lp->max_bytes = (size_t)rv__conf_int(p->conf, RV_CONF_ID_QUEUE_MAX_BYTES);
    pthread_mutex_init(&lp->mu, NULL);
    pthread_cond_init(&lp->wake, NULL);
    pthread_cond_init(&lp->reports, NULL);
    if (rv__local_producer_register(lb, lp) != RV_OK) {
        pthread_cond_destroy(&lp->reports);
        pthread_cond_destroy(&lp->wake);
        pthread_mutex_destroy(&lp->mu);
        free(lp);
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory creating a producer on '%s'",
                             lb->root);
    }
    int e = pthread_create(&lp->thread, NULL, writer_main, lp);
    if (e != 0) {
        rv__local_producer_unregister(lb, lp);
        pthread_cond_destroy(&lp->reports);
        pthread_cond_destroy(&lp->wake);
        pthread_mutex_destroy(&lp->mu);
        free(lp);
        return rv__error_set(err, RV_ERR_NOMEM, "cannot start a producer thread on '%s': %s",
                             lb->root, strerror(e));
    }
    lp->thread_started = true;
    p->impl = lp;
    return RV_OK;
}

void rv__local_producer_destroy(rv_producer_t *p) {
    rv_local_producer_t *lp = p->impl;
    if (!lp) {
        return;
    }
    pthread_mutex_lock(&lp->mu);
    lp->stop = true;
    pthread_cond_signal(&lp->wake);
    pthread_mutex_unlock(&lp->mu);
    if (lp->thread_started) {
        pthread_join(lp->thread, NULL);
    }
    rv__local_producer_unregister(lp->lb, lp);
    batch_list_free(lp->queue_head);
    batch_list_free(lp->done_head);
    for (batch_t *b = lp->open_head, *next; b; b = next) {
        next = b->open_next;
        batch_free(b);
    }
    for (ptopic_t *pt = lp->topics, *next; pt; pt = next) {
        next = pt->next;
        free(pt->name);
        free(pt->open);
        free(pt->writers);
        free(pt);
    }
    free(lp->scratch);
    free(lp->hscratch);
    pthread_cond_destroy(&lp->reports);
    pthread_cond_destroy(&lp->wake);
    pthread_mutex_destroy(&lp->mu);
    free(lp);
    p->impl = NULL;
}

rv_err_t rv__local_send(rv_producer_t *p, const rv_record_t *rec, void *rec_opaque) {
    rv_local_producer_t *lp = p->impl;
    if (!rec || !rec->topic || (rec->header_count && !rec->headers)) {
        return RV_ERR_INVALID_ARG;
    }
    size_t bytes =
        RECORD_OVERHEAD + (rec->key ? rec->key_len : 0) + (rec->value ? rec->value_len : 0);
    for (size_t i = 0; i < rec->header_count; i++) {
        if (!rec->headers[i].name) {
            return RV_ERR_INVALID_ARG;
        }
        bytes += HEADER_OVERHEAD + strlen(rec->headers[i].name) + rec->headers[i].value_len;
    }
    int64_t ts = rec->timestamp_ms > 0 ? rec->timestamp_ms : rv_clock_wall_ms();

    pthread_mutex_lock(&lp->mu);
    ptopic_t *pt = NULL;
    rv_err_t rc = ptopic_get(lp, rec->topic, &pt);
    if (rc != RV_OK) {
        pthread_mutex_unlock(&lp->mu);
        return rc;
    }
    int32_t partition = rec->partition;
    if (partition == RV_PARTITION_ANY) {
        partition = rv__choose_partition(rec, pt->partitions, &pt->round_robin);
    } else if (partition < 0 || partition >= pt->partitions) {
        pthread_mutex_unlock(&lp->mu);
        return RV_ERR_INVALID_ARG;
    }
    int64_t max_message = pt->meta->max_message_bytes;
    if ((int64_t)bytes > max_message) {
        pthread_mutex_unlock(&lp->mu);
        rv__log(&p->broker->log, RV_LOG_WARNING, "local",
                "topic '%s': a record of %zu bytes exceeds max.message.bytes (%" PRId64 ")",
                rec->topic, bytes, max_message);
        return RV_ERR_LIMIT;
    }
    if (lp->queued_bytes > 0 && lp->queued_bytes + bytes > lp->max_bytes && !p->delivery_cb) {
        /* Without a delivery callback nobody needs to poll: settle what is done here. */
        bool waiting_sync;
        batch_t *ready = take_ready(lp, &waiting_sync);
        if (ready) {
            serve(lp, ready);
        }
    }
    if (lp->queued_bytes > 0 && lp->queued_bytes + bytes > lp->max_bytes) {
        pthread_mutex_unlock(&lp->mu);
        rv__local_request_sync(lp->lb); /* what waits for the interval's sync frees the queue */
        return RV_ERR_AGAIN;
    }
    batch_t *b = pt->open[partition];
    if (b && (int64_t)(b->bytes + bytes) > max_message) {
        seal(lp, b);
        pthread_cond_signal(&lp->wake);
        b = NULL;
    }
    bool fresh = false;
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b || !(b->buf = malloc(b->cap = 256))) {
            free(b);
            pthread_mutex_unlock(&lp->mu);
            return RV_ERR_NOMEM;
        }
        b->pt = pt;
        b->partition = partition;
        b->created_ms = rv_clock_mono_ms();
        fresh = true;
    }
    if (!batch_add(b, rec, ts, rec_opaque, bytes)) {
        if (fresh) {
            batch_free(b);
        }
        pthread_mutex_unlock(&lp->mu);
        return RV_ERR_NOMEM;
    }
    if (fresh) {
        pt->open[partition] = b;
        b->open_prev = lp->open_tail;
        if (lp->open_tail) {
            lp->open_tail->open_next = b;
        } else {
            lp->open_head = b;
        }
        lp->open_tail = b;
    }
    lp->queued_bytes += bytes;
    lp->outstanding++;
    if (b->bytes >= lp->batch_size) {
        seal(lp, b);
        pthread_cond_signal(&lp->wake);
    } else if (fresh) {
        pthread_cond_signal(&lp->wake); /* a new linger deadline */
    }
    pthread_mutex_unlock(&lp->mu);
    return RV_OK;
}

int rv__local_producer_poll(rv_producer_t *p, int timeout_ms) {
    rv_local_producer_t *lp = p->impl;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : rv_clock_mono_ms() + timeout_ms;
    pthread_mutex_lock(&lp->mu);
    int served = 0;
    for (;;) {
        bool waiting_sync;
        batch_t *ready = take_ready(lp, &waiting_sync);
        if (ready) {
            served = serve(lp, ready);
            break;
        }
        int64_t now = rv_clock_mono_ms();
        if (now >= deadline) {
            break;
        }
        int64_t slice = deadline - now < 1000 ? deadline - now : 1000;
        struct timespec ts = deadline_in(slice);
        pthread_cond_timedwait(&lp->reports, &lp->mu, &ts);
    }
    pthread_mutex_unlock(&lp->mu);
    return served;
}

rv_err_t rv__local_flush(rv_producer_t *p, int timeout_ms, rv_error_t **err) {
    rv_local_producer_t *lp = p->impl;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : rv_clock_mono_ms() + timeout_ms;
    rv_err_t rc = RV_OK;
    pthread_mutex_lock(&lp->mu);
    lp->flushing++;
    pthread_cond_signal(&lp->wake);
    while (lp->outstanding > 0) {
        bool waiting_sync;
        batch_t *ready = take_ready(lp, &waiting_sync);
        if (ready) {
            serve(lp, ready);
            continue;
        }
        if (waiting_sync) { /* a flush does not wait for the next interval's group commit */
            pthread_mutex_unlock(&lp->mu);
            rv__local_request_sync(lp->lb);
            pthread_mutex_lock(&lp->mu);
        }
        int64_t now = rv_clock_mono_ms();
        if (now >= deadline) {
            rc = rv__error_set(err, RV_ERR_TIMEOUT,
                               "flush of a producer on '%s' timed out "
                               "after %d ms with %zu record(s) not yet reported",
                               lp->lb->root, timeout_ms, lp->outstanding);
            break;
        }
        int64_t slice = deadline - now < 100 ? deadline - now : 100;
        struct timespec ts = deadline_in(slice);
        pthread_cond_timedwait(&lp->reports, &lp->mu, &ts);
    }
    lp->flushing--;
    pthread_mutex_unlock(&lp->mu);
    return rc;
}
