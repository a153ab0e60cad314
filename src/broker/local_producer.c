/*
 * local_producer.c: the producer of the `local:` broker: per-partition batches, a writer
 * thread, group commit and delivery reports.
 *
 * rv_producer_send() copies a record into its partition's open batch (one buffer per batch,
 * allocated at batch.size and recycled once its reports are served, so a record costs a memcpy
 * and, in the steady state, no allocation). A batch is sealed when it reaches batch.size, when
 * it is linger.ms old, or on flush, and the producer's thread appends sealed batches in order
 * through the broker handle's shared partition writers, partition by partition. A batch's
 * delivery reports are released as soon as its append returned and, under the `batch` fsync
 * policy, the fsync covering it returned: under `batch` the thread appends every queued batch
 * of a partition (up to a group limit) and then makes one fsync for all of them (group
 * commit); under `interval` a report also waits for the background sync that covers it. So an
 * acknowledged record is as durable as the policy promises. Records sent without a timestamp
 * take the wall-clock time their batch is appended, read once per batch. Reports are delivered
 * from rv_producer_poll() and rv_producer_flush() in the calling thread, never from the writer
 * thread. This file must never call the delivery callback with the producer's mutex held, and
 * must never reorder records of one partition.
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
/* The most bytes of batches one group commit covers under the `batch` policy (also at most a
 * quarter of queue.buffering.max.bytes, so the sender fills the queue while a group syncs).
 * Measured on the log bench: 1 MiB groups are a third slower than 4 MiB, 8 to 32 MiB alike. */
#define GROUP_MAX_BYTES ((size_t)16 << 20)

typedef struct rec_meta_s {
    size_t key_off;
    size_t key_len;
    size_t value_off;
    size_t value_len;
    size_t hdr_first;
    size_t hdr_count;
    int64_t timestamp_ms; /* 0: the batch's append time (stamp_ms) */
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
    int64_t stamp_ms; /* wall-clock time of the append: the timestamp of records without one */
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
    batch_t **chain;             /* [partitions]; the writer thread's per-pass chain tails */
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
    size_t group_max;            /* bytes of batches one group commit covers at most */
    size_t wake_bytes;           /* bytes of released batches that wake a sleeping poll or flush */
    size_t unwoken_bytes;        /* released since the last wake-up (writer thread only) */
    _Atomic(batch_t *) released; /* released by the writer thread, newest first (see release) */
    ptopic_t *topics;
    ptopic_t *last_pt; /* the topic of the last send, looked at first */
    batch_t *open_head;
    batch_t *open_tail;
    batch_t *queue_head; /* sealed, waiting for the writer thread */
    batch_t *queue_tail;
    batch_t *done_head; /* appended or failed, waiting for their reports, oldest first */
    batch_t *done_tail;
    batch_t *spare; /* served batches kept for reuse, with their buffers */
    size_t spare_bytes;
    size_t spare_max;
    size_t recs_hint; /* records in the last batch sealed, to size the next one's arrays */
    size_t queued_bytes;
    size_t outstanding;   /* records sent and not yet reported */
    rv_record_t *scratch; /* the writer thread's record views for one append */
    size_t scratch_cap;
    rv_header_t *hscratch;
    size_t hscratch_cap;
    rv_local_txn_t *txn; /* with a transactional.id (local_txn.c); set once, at creation */
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

/* The memory a batch holds, for the spare list's bound. */
static size_t batch_footprint(const batch_t *b) {
    return sizeof *b + b->cap + b->recs_cap * sizeof *b->recs + b->hdrs_cap * sizeof *b->hdrs;
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

/*
 * An empty batch for `pt`/`partition`: a spare one, or a new one whose buffer holds what a
 * batch of this topic holds before it is sealed (batch.size, at most max.message.bytes) and
 * whose record array is sized after the last sealed batch. NULL when memory is exhausted.
 * With lp->mu held.
 */
static batch_t *batch_get(rv_local_producer_t *lp, ptopic_t *pt, int32_t partition) {
    batch_t *b = lp->spare;
    if (b) {
        lp->spare = b->next;
        lp->spare_bytes -= batch_footprint(b);
        char *buf = b->buf;
        rec_meta_t *recs = b->recs;
        hdr_meta_t *hdrs = b->hdrs;
        size_t cap = b->cap, recs_cap = b->recs_cap, hdrs_cap = b->hdrs_cap;
        *b = (batch_t){.buf = buf,
                       .cap = cap,
                       .recs = recs,
                       .recs_cap = recs_cap,
                       .hdrs = hdrs,
                       .hdrs_cap = hdrs_cap};
    } else {
        size_t cap = lp->batch_size;
        if ((int64_t)cap > pt->meta->max_message_bytes) {
            cap = (size_t)pt->meta->max_message_bytes;
        }
        size_t recs_cap = lp->recs_hint + lp->recs_hint / 8 + 16;
        if (!(b = calloc(1, sizeof *b)) || !(b->buf = malloc(cap + 1)) ||
            !(b->recs = malloc(recs_cap * sizeof *b->recs))) {
            batch_free(b);
            return NULL;
        }
        b->cap = cap + 1;
        b->recs_cap = recs_cap;
    }
    b->pt = pt;
    b->partition = partition;
    b->created_ms = rv_clock_mono_ms();
    return b;
}

/* Keeps served batches for reuse, up to lp->spare_max bytes; frees the others (lp->mu held on
 * entry and return, released while freeing). */
static void batch_recycle(rv_local_producer_t *lp, batch_t *list) {
    batch_t *excess = NULL;
    while (list) {
        batch_t *b = list;
        list = b->next;
        size_t size = batch_footprint(b);
        if (lp->spare_bytes + size <= lp->spare_max) {
            b->next = lp->spare;
            lp->spare = b;
            lp->spare_bytes += size;
        } else {
            b->next = excess;
            excess = b;
        }
    }
    if (excess) {
        pthread_mutex_unlock(&lp->mu);
        batch_list_free(excess);
        pthread_mutex_lock(&lp->mu);
    }
}

static size_t buf_put(batch_t *b, const void *data, size_t len) {
    size_t off = b->len;
    if (len) {
        memcpy(b->buf + off, data, len);
        b->len += len;
    }
    return off;
}

/* Copies `rec` (whose key, value and headers take `raw` bytes) into the batch. False when
 * memory is exhausted (the batch is unchanged). */
static bool batch_add(batch_t *b, const rv_record_t *rec, size_t raw, void *opaque, size_t bytes) {
    if (!grow((void **)&b->buf, &b->cap, b->len + raw + 1, 1) ||
        !grow((void **)&b->recs, &b->recs_cap, b->n + 1, sizeof *b->recs) ||
        (rec->header_count &&
         !grow((void **)&b->hdrs, &b->hdrs_cap, b->nh + rec->header_count, sizeof *b->hdrs))) {
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
    m->timestamp_ms = rec->timestamp_ms > 0 ? rec->timestamp_ms : 0;
    m->opaque = opaque;
    b->bytes += bytes;
    return true;
}

/* The view of record `i` of the batch; its headers are written to `hdrs` (room for its header
 * count). */
static rv_record_t record_view(const batch_t *b, size_t i, rv_header_t *hdrs) {
    const rec_meta_t *m = &b->recs[i];
    for (size_t h = 0; h < m->hdr_count; h++) {
        const hdr_meta_t *hm = &b->hdrs[m->hdr_first + h];
        hdrs[h].name = b->buf + hm->name_off;
        hdrs[h].value = hm->value_null ? NULL : b->buf + hm->value_off;
        hdrs[h].value_len = hm->value_len;
    }
    return (rv_record_t){
        .topic = b->pt->name,
        .partition = b->partition,
        .offset = i < b->stored ? b->base_offset + (int64_t)i : RV_OFFSET_INVALID,
        .timestamp_ms = m->timestamp_ms > 0 ? m->timestamp_ms : b->stamp_ms,
        .key = m->key_null ? NULL : b->buf + m->key_off,
        .key_len = m->key_len,
        .value = m->value_null ? NULL : b->buf + m->value_off,
        .value_len = m->value_len,
        .headers = m->hdr_count ? hdrs : NULL,
        .header_count = m->hdr_count,
    };
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
    lp->recs_hint = b->n;
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

static void ptopic_free(ptopic_t *pt) {
    if (pt) {
        free(pt->name);
        free(pt->open);
        free(pt->writers);
        free(pt->chain);
        free(pt);
    }
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
    size_t parts = (size_t)meta->partitions;
    pt = calloc(1, sizeof *pt);
    if (!pt || !(pt->name = strdup(name)) || !(pt->open = calloc(parts, sizeof *pt->open)) ||
        !(pt->writers = calloc(parts, sizeof *pt->writers)) ||
        !(pt->chain = calloc(parts, sizeof *pt->chain))) {
        ptopic_free(pt);
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

/* Appends one batch, stamped with the current time. RV_ERR_BUSY when another process holds
 * the partition's writer lock. */
static rv_err_t append_batch(rv_local_producer_t *lp, batch_t *b, rv_error_t **err) {
    if (!grow((void **)&lp->scratch, &lp->scratch_cap, b->n, sizeof *lp->scratch) ||
        !grow((void **)&lp->hscratch, &lp->hscratch_cap, b->nh ? b->nh : 1, sizeof *lp->hscratch)) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory writing topic '%s'", b->pt->name);
    }
    b->stamp_ms = rv_clock_wall_ms();
    for (size_t i = 0; i < b->n; i++) {
        lp->scratch[i] = record_view(b, i, lp->hscratch + b->recs[i].hdr_first);
    }
    return rv__local_append(lp->lb, b->pt->meta, b->partition, lp->scratch, b->n, &b->base_offset,
                            &b->stored, &b->pt->writers[b->partition], &b->seq, err);
}

/*
 * Hands the batches head..tail (linked, in order) over for their reports: the next poll takes
 * them. The writer thread pushes them on lp->released without taking lp->mu (which the sender
 * takes for every record), reversed so that the stack read from its top is newest first;
 * take_released() turns it back. Threads asleep in poll or flush are woken once wake_bytes
 * are waiting for them, or at the end of the writer thread's pass, not for every batch.
 */
static void release(rv_local_producer_t *lp, batch_t *head, batch_t *tail) {
    batch_t *rev = NULL;
    size_t bytes = 0;
    for (batch_t *b = head, *next, *end = tail->next; b != end; b = next) {
        next = b->next;
        bytes += b->bytes;
        b->next = rev;
        rev = b;
    }
    batch_t *top = atomic_load_explicit(&lp->released, memory_order_relaxed);
    do {
        head->next = top; /* head is now the bottom of the reversed run */
    } while (!atomic_compare_exchange_weak_explicit(&lp->released, &top, rev, memory_order_release,
                                                    memory_order_relaxed));
    lp->unwoken_bytes += bytes;
    if (lp->unwoken_bytes >= lp->wake_bytes) {
        lp->unwoken_bytes = 0;
        pthread_mutex_lock(&lp->mu);
        pthread_cond_broadcast(&lp->reports);
        pthread_mutex_unlock(&lp->mu);
    }
}

/* What one step of the writer thread did for one partition: batches first..last (linked, in
 * order) were appended or failed, and the last append to be synced is `seq` of `w`. */
typedef struct group_s {
    batch_t *first;
    batch_t *last;
    rv_local_writer_t *w;
    uint64_t seq;
} group_t;

/*
 * Appends the next batches of one partition's queued batches `*chain` (in order) into `g`:
 * one batch, or under the `batch` policy as many as fit in lp->group_max bytes (a group
 * commit: finish_group() makes one fsync for all of them). Leaves the others in *chain.
 * Returns false when another process holds the partition's writer lock: *chain then starts
 * with the batch to retry after RV_LOCAL_WRITER_RETRY_MS (and `g` holds what was appended
 * before); once that batch has waited RV_LOCAL_WRITER_WAIT_MS, it and the partition's other
 * queued batches fail with RV_ERR_BUSY instead (they join `g`).
 */
static bool append_group(rv_local_producer_t *lp, batch_t **chain, int64_t now, group_t *g) {
    bool group_commit = lp->lb->fsync == RV_FSYNC_BATCH;
    size_t bytes = 0;
    *g = (group_t){NULL, NULL, NULL, 0};
    while (*chain && (!g->last || (group_commit && bytes + (*chain)->bytes <= lp->group_max))) {
        batch_t *b = *chain;
        rv_error_t *e = NULL;
        rv_err_t rc = append_batch(lp, b, &e);
        if (rc == RV_ERR_BUSY) {
            if (b->first_try_ms == 0) {
                b->first_try_ms = now;
            }
            if (now - b->first_try_ms < RV_LOCAL_WRITER_WAIT_MS) {
                b->retry_at_ms = now + RV_LOCAL_WRITER_RETRY_MS;
                rv_error_destroy(e);
                return false;
            }
            rv__log(&lp->producer->broker->log, RV_LOG_ERROR, "local",
                    "%s; gave up after %d ms: its queued records fail with BUSY",
                    rv_error_message(e), RV_LOCAL_WRITER_WAIT_MS);
            rv_error_destroy(e);
            for (batch_t *x = b; x; x = x->next) {
                x->err = RV_ERR_BUSY;
                g->first = g->first ? g->first : x;
                g->last = x;
            }
            *chain = NULL;
            return true;
        }
        if (rc != RV_OK) {
            rv__log(&lp->producer->broker->log, RV_LOG_WARNING, "local", "%s", rv_error_message(e));
        }
        rv_error_destroy(e);
        b->err = rc;
        b->writer = b->stored > 0 ? b->pt->writers[b->partition] : NULL;
        if (b->seq) {
            if (g->w && g->w != b->writer && group_commit) {
                rv__local_sync_to(lp->lb, g->w, g->seq); /* the topic was re-created meanwhile */
            }
            g->w = b->writer;
            g->seq = b->seq;
        }
        bytes += b->bytes;
        g->first = g->first ? g->first : b;
        g->last = b;
        *chain = b->next;
    }
    return true;
}

/* Releases the reports of a group, after the fsync that covers it under the `batch` policy. */
static void finish_group(rv_local_producer_t *lp, group_t *g) {
    if (!g->first) {
        return;
    }
    if (lp->lb->fsync == RV_FSYNC_BATCH && g->seq) {
        rv__local_sync_to(lp->lb, g->w, g->seq);
    }
    release(lp, g->first, g->last);
}

/* The most partitions whose groups are appended before the first of them is synced. */
#define ROUND_PARTITIONS 16

/*
 * One pass over the queued batches `work`: sorts them into one chain per partition (each in
 * queue order), then goes round the partitions: appends the next group of each of up to
 * ROUND_PARTITIONS partitions, then syncs and releases each group in turn, so the writeback of
 * the later groups overlaps the fsync of the first. Returns the batches to retry later, each
 * partition's in order; *appended says whether any batch was appended.
 */
static batch_t *write_pass(rv_local_producer_t *lp, batch_t *work, bool *appended) {
    /* Each chain's first batch, linked by open_next (unused once sealed), in the order the
     * partitions first appear in the queue. */
    batch_t *todo_head = NULL, *todo_tail = NULL;
    while (work) {
        batch_t *b = work;
        work = b->next;
        b->next = NULL;
        batch_t **tail = &b->pt->chain[b->partition];
        if (*tail) {
            (*tail)->next = b;
        } else {
            b->open_next = NULL;
            if (todo_tail) {
                todo_tail->open_next = b;
            } else {
                todo_head = b;
            }
            todo_tail = b;
        }
        *tail = b;
    }
    for (batch_t *h = todo_head; h; h = h->open_next) {
        h->pt->chain[h->partition] = NULL;
    }
    bool group_commit = lp->lb->fsync == RV_FSYNC_BATCH;
    batch_t *keep_head = NULL, *keep_tail = NULL;
    *appended = false;
    while (todo_head) {
        group_t groups[ROUND_PARTITIONS];
        batch_t *rest[ROUND_PARTITIONS];
        size_t k = 0;
        while (todo_head && k < ROUND_PARTITIONS) {
            batch_t *chain = todo_head;
            todo_head = chain->open_next;
            todo_tail = todo_head ? todo_tail : NULL;
            chain->open_next = NULL;
            int64_t now = rv_clock_mono_ms();
            bool due = chain->retry_at_ms <= now;
            bool whole = due && append_group(lp, &chain, now, &groups[k]);
            if (due) {
                *appended = *appended || groups[k].first != NULL;
                if (!group_commit) { /* nothing to wait for: release at once */
                    finish_group(lp, &groups[k]);
                    groups[k].first = NULL;
                }
                rest[k++] = whole ? chain : NULL;
            }
            if (whole || !chain) {
                continue;
            }
            /* The writer lock is held elsewhere: retry the partition's remaining batches. */
            int64_t retry_at = chain->retry_at_ms;
            while (chain) { /* those behind the one that met the lock wait as long as it does */
                batch_t *r = chain;
                chain = r->next;
                r->retry_at_ms = retry_at > r->retry_at_ms ? retry_at : r->retry_at_ms;
                list_append(&keep_head, &keep_tail, r);
            }
        }
        for (size_t i = 0; i < k; i++) {
            finish_group(lp, &groups[i]);
            if (rest[i]) { /* the partition's next group comes in a later round */
                rest[i]->open_next = NULL;
                if (todo_tail) {
                    todo_tail->open_next = rest[i];
                } else {
                    todo_head = rest[i];
                }
                todo_tail = rest[i];
            }
        }
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

        bool appended = false;
        batch_t *keep = write_pass(lp, work, &appended);
        if (appended && pressed) {
            /* Half the queue waits for the next interval's sync: group-commit now instead of
             * stalling the sender (a no-op under the other policies). */
            rv__local_request_sync(lp->lb);
        }

        pthread_mutex_lock(&lp->mu);
        if (lp->unwoken_bytes > 0) { /* the end of a pass: wake whoever waits for reports */
            lp->unwoken_bytes = 0;
            pthread_cond_broadcast(&lp->reports);
        }
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
    }
    pthread_mutex_unlock(&lp->mu);
    return NULL;
}

/* ---- reports -------------------------------------------------------------------------------- */

/* Moves the batches the writer thread released to the end of the done list, in order. With
 * lp->mu held. */
static void take_released(rv_local_producer_t *lp) {
    batch_t *b = atomic_exchange_explicit(&lp->released, NULL, memory_order_acquire);
    batch_t *head = NULL, *tail = b;
    while (b) {
        batch_t *next = b->next;
        b->next = head;
        head = b;
        b = next;
    }
    if (head) {
        if (lp->done_tail) {
            lp->done_tail->next = head;
        } else {
            lp->done_head = head;
        }
        lp->done_tail = tail;
    }
}

/* Takes the batches whose reports may be delivered now out of the done list. With lp->mu held. */
static batch_t *take_ready(rv_local_producer_t *lp, bool *waiting_sync) {
    take_released(lp);
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

/* Delivers the reports of `ready` (lp->mu NOT held), then settles the accounting and keeps the
 * batches for reuse with lp->mu retaken. Returns the number of reports. */
static int serve(rv_local_producer_t *lp, batch_t *ready) {
    rv_producer_t *p = lp->producer;
    rv_header_t hviews[16];
    size_t records = 0, bytes = 0;
    pthread_mutex_unlock(&lp->mu);
    for (batch_t *b = ready; b; b = b->next) {
        records += b->n;
        bytes += b->bytes;
        if (!p->delivery_cb) {
            continue;
        }
        for (size_t i = 0; i < b->n; i++) {
            size_t nh = b->recs[i].hdr_count;
            rv_header_t *hdrs = nh <= RV_ARRAY_LEN(hviews) ? hviews : malloc(nh * sizeof *hdrs);
            rv_err_t e = i < b->stored ? b->sync_err : b->err;
            if (hdrs) {
                rv_record_t r = record_view(b, i, hdrs);
                p->delivery_cb(p->opaque, &r, e, b->recs[i].opaque);
            } else { /* no memory for its headers' views: report it without its contents */
                rv_record_t r = {
                    .topic = b->pt->name, .partition = b->partition, .offset = RV_OFFSET_INVALID};
                p->delivery_cb(p->opaque, &r, RV_ERR_NOMEM, b->recs[i].opaque);
            }
            if (hdrs != hviews) {
                free(hdrs);
            }
        }
    }
    pthread_mutex_lock(&lp->mu);
    lp->outstanding -= records;
    lp->queued_bytes -= bytes;
    batch_recycle(lp, ready);
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
    rv_err_t txn_rc = rv__local_txn_new(p, &lp->txn, err);
    if (txn_rc != RV_OK) {
        free(lp);
        return txn_rc;
    }
    lp->linger_ms = rv__conf_int(p->conf, RV_CONF_ID_LINGER_MS);
    lp->batch_size = (size_t)rv__conf_int(p->conf, RV_CONF_ID_BATCH_SIZE);
    lp->max_bytes = (size_t)rv__conf_int(p->conf, RV_CONF_ID_QUEUE_MAX_BYTES);
    lp->group_max = lp->max_bytes / 4 < GROUP_MAX_BYTES ? lp->max_bytes / 4 : GROUP_MAX_BYTES;
    lp->wake_bytes = lp->max_bytes / 16 > lp->batch_size ? lp->max_bytes / 16 : lp->batch_size;
    /* Spare batches: what a poll typically hands back at once, bounded by the queue. */
    lp->spare_max = lp->max_bytes / 4;
    atomic_init(&lp->released, NULL);
    pthread_mutex_init(&lp->mu, NULL);
    pthread_cond_init(&lp->wake, NULL);
    pthread_cond_init(&lp->reports, NULL);
    if (rv__local_producer_register(lb, lp) != RV_OK) {
        pthread_cond_destroy(&lp->reports);
        pthread_cond_destroy(&lp->wake);
        pthread_mutex_destroy(&lp->mu);
        rv__local_txn_free(lp->txn);
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
        rv__local_txn_free(lp->txn);
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
    take_released(lp);
    batch_list_free(lp->done_head);
    batch_list_free(lp->spare);
    for (batch_t *b = lp->open_head, *next; b; b = next) {
        next = b->open_next;
        batch_free(b);
    }
    for (ptopic_t *pt = lp->topics, *next; pt; pt = next) {
        next = pt->next;
        ptopic_free(pt);
    }
    free(lp->scratch);
    free(lp->hscratch);
    rv__local_txn_free(lp->txn);
    pthread_cond_destroy(&lp->reports);
    pthread_cond_destroy(&lp->wake);
    pthread_mutex_destroy(&lp->mu);
    free(lp);
    p->impl = NULL;
}

rv_local_txn_t *rv__local_producer_txn(rv_producer_t *p) {
    return ((rv_local_producer_t *)p->impl)->txn;
}

rv_err_t rv__local_send(rv_producer_t *p, const rv_record_t *rec, void *rec_opaque) {
    rv_local_producer_t *lp = p->impl;
    if (RV_UNLIKELY(lp->txn != NULL)) { /* a transactional producer's records wait in it */
        return rv__local_txn_send(lp->txn, rec, rec_opaque);
    }
    if (!rec || !rec->topic || (rec->header_count && !rec->headers)) {
        return RV_ERR_INVALID_ARG;
    }
    size_t raw = (rec->key ? rec->key_len : 0) + (rec->value ? rec->value_len : 0);
    size_t bytes = RECORD_OVERHEAD + raw;
    for (size_t i = 0; i < rec->header_count; i++) {
        if (!rec->headers[i].name) {
            return RV_ERR_INVALID_ARG;
        }
        size_t name_len = strlen(rec->headers[i].name);
        size_t value_len = rec->headers[i].value ? rec->headers[i].value_len : 0;
        raw += name_len + 1 + value_len;
        bytes += HEADER_OVERHEAD + name_len + rec->headers[i].value_len;
    }

    pthread_mutex_lock(&lp->mu);
    /* The topic of the last send first. Its name is compared, not its pointer: a caller may
     * send to several topics with one buffer. */
    ptopic_t *pt = lp->last_pt;
    if (!pt || pt->stale || strcmp(pt->name, rec->topic) != 0 ||
        atomic_load_explicit(&pt->meta->deleted, memory_order_relaxed)) {
        rv_err_t rc = ptopic_get(lp, rec->topic, &pt);
        if (rc != RV_OK) {
            pthread_mutex_unlock(&lp->mu);
            return rc;
        }
        lp->last_pt = pt;
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
        if (!(b = batch_get(lp, pt, partition))) {
            pthread_mutex_unlock(&lp->mu);
            return RV_ERR_NOMEM;
        }
        fresh = true;
    }
    if (!batch_add(b, rec, raw, rec_opaque, bytes)) {
        if (fresh) {
            batch_recycle(lp, b);
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
