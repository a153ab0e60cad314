/*
 * memory.c: the `memory:` broker, a complete in-process implementation of the broker interface.
 *
 * Each rv_broker_open("memory:") is a separate, empty broker whose topics, committed offsets
 * and consumer groups live in this process until rv_broker_close(). It behaves like the
 * embedded log in everything but durability: partitions are lists of segments that roll at
 * segment.bytes, so retention (by bytes and by time) and compaction move the low watermark in
 * whole segments as they do on disk; a maintenance thread runs them every
 * log.maintenance.interval.ms. Consumer groups are formed by the consumers of one broker
 * handle and split partitions round-robin over the sorted members; partitions move
 * cooperatively: the losing member revokes in its next poll before the new owner is assigned.
 *
 * One mutex guards the whole broker; a condition variable wakes pollers on every append and
 * group change. Stored records are immutable and reference-counted, so a consumer's views stay
 * valid after retention, compaction or a topic deletion drops them from the log. This file must
 * never call a user callback with the broker's mutex held, and never write to disk.
 */
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker_int.h"
#include "rivulet/clock.h"
#include "rivulet/hash.h"

/* Bytes counted for a record besides its key, value and headers (as a batch would add). */
#define REC_OVERHEAD 24
#define HEADER_OVERHEAD 8

/* The most records one poll returns, whatever `max` says, to bound the consumer's arrays. */
#define MAX_POLL_RECORDS 65536

enum { RESET_EARLIEST = 0, RESET_LATEST = 1, RESET_ERROR = 2 };
enum { POLICY_DELETE = 0, POLICY_COMPACT = 1, POLICY_COMPACT_DELETE = 2 };

/* ---- types ---------------------------------------------------------------------------------- */

/* A stored record: one allocation holding the header array, key, value and header bytes. */
typedef struct mrec_s {
    atomic_int refs;
    bool has_key;
    bool has_value;
    int64_t offset;
    int64_t timestamp_ms;
    int64_t size; /* bytes counted for segments, retention and max.message.bytes */
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    rv_header_t *headers;
    size_t header_count;
} mrec_t;

typedef struct mseg_s {
    int64_t base; /* no record of this segment has a smaller offset */
    mrec_t **recs;
    size_t n;
    size_t cap;
    int64_t bytes;
    int64_t max_ts;
    int64_t created_ms; /* wall clock */
} mseg_t;

typedef struct mpart_s {
    mseg_t *segs; /* the last one is the active segment; there is always one */
    size_t nsegs;
    size_t segs_cap;
    int64_t log_start; /* the low watermark */
    int64_t high;
    bool dirty;                 /* a segment closed since the last compaction */
    int64_t tombstone_deadline; /* when a kept tombstone expires (wall ms); INT64_MAX: none */
} mpart_t;

typedef struct mtopic_s {
    char *name;
    int32_t npart;
    mpart_t *parts;
    rv_conf_t *conf;
    bool deleted; /* a deleted topic's shell (its name) lives until the broker closes */
    int64_t segment_bytes;
    int64_t segment_ms;
    int64_t retention_ms;
    int64_t retention_bytes;
    int64_t delete_retention_ms;
    int64_t max_message_bytes;
    int policy;
    struct mtopic_s *next_dead;
} mtopic_t;

typedef struct mcommit_s {
    char *topic;
    int32_t partition;
    int64_t offset;
} mcommit_t;

struct mcons_s;

typedef struct mgroup_s {
    char *name;
    mcommit_t *commits; /* sorted by topic, then partition */
    size_t ncommits;
    size_t commits_cap;
    struct mcons_s **members; /* subscribed consumers, in join order */
    size_t nmembers;
    size_t members_cap;
    struct mgroup_s *next;
} mgroup_t;

typedef struct mbroker_s {
    rv_broker_t *b;
    pthread_mutex_t lock;
    pthread_cond_t data_cond;  /* appends, group changes, released partitions */
    pthread_cond_t maint_cond; /* wakes the maintenance thread to stop */
    pthread_t maint_thread;
    bool stopping;
    int64_t maint_interval_ms;
    mtopic_t **topics; /* sorted by name */
    size_t ntopics;
    size_t topics_cap;
    mtopic_t *dead; /* deleted topics' shells */
    mgroup_t *groups;
    uint64_t member_seq;
} mbroker_t;

typedef struct report_s {
    mrec_t *rec;
    mtopic_t *topic;
    int32_t partition;
    void *opaque;
} report_t;

typedef struct mprod_s {
    mbroker_t *mb;
    uint32_t rr;
    report_t *q;
    size_t qn;
    size_t qcap;
    int64_t q_bytes;
    int64_t max_bytes;
} mprod_t;

/* A partition assigned to a consumer. */
typedef struct massign_s {
    mtopic_t *topic;
    int32_t partition;
    int64_t position; /* the next offset to read */
    bool paused;
    bool eof_sent;  /* EOF reported since the last record or seek */
    bool stopped;   /* no valid position (auto.offset.reset=error) until a seek */
    bool error_due; /* the next poll reports why it stopped */
    bool no_commit; /* the stop was for want of a committed offset (else out of range) */
} massign_t;

typedef struct tpref_s {
    mtopic_t *topic;
    int32_t partition;
} tpref_t;

typedef struct eof_s {
    const char *topic;
    int32_t partition;
    int64_t offset;
} eof_t;

typedef struct mcons_s {
    mbroker_t *mb;
    rv_consumer_t *c;
    mgroup_t *group; /* NULL without a group */
    int reset;
    int64_t fetch_max_bytes;
    massign_t *asg;
    size_t nasg;
    size_t asg_cap;
    size_t rr;
    /* group membership */
    bool subscribed;
    char **subs;
    size_t nsubs;
    uint64_t seq;
    tpref_t *target; /* the partitions the group gives this member */
    size_t ntarget;
    bool settled; /* it holds exactly its target: polls skip the group work */
    /* the last poll's records and the references that keep them alive */
    rv_record_t *out;
    mrec_t **held;
    size_t nheld;
    size_t out_cap;
    eof_t *eofs;
    size_t neofs;
    size_t eofs_cap;
} mcons_t;

/* ---- small helpers -------------------------------------------------------------------------- */

static mbroker_t *mb_of(rv_broker_t *b) {
    return b->impl;
}

static void lock(mbroker_t *mb) {
    pthread_mutex_lock(&mb->lock);
}

static void unlock(mbroker_t *mb) {
    pthread_mutex_unlock(&mb->lock);
}

/* Grows `*arr` (of `*cap` elements of `size` bytes) to hold at least `need`; false on NOMEM. */
static bool grow(void **arr, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) {
        return true;
    }
    size_t n = *cap ? *cap : 8;
    while (n < need) {
        n *= 2;
    }
    void *p = realloc(*arr, n * size);
    if (!p) {
        return false;
    }
    *arr = p;
    *cap = n;
    return true;
}

/* An absolute CLOCK_MONOTONIC time `ms` from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(int64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Waits on `cond` until `deadline_ms` (monotonic ms; < 0 = no limit). */
static void wait_until(mbroker_t *mb, pthread_cond_t *cond, int64_t deadline_ms) {
    if (deadline_ms < 0) {
        pthread_cond_wait(cond, &mb->lock);
        return;
    }
    int64_t left = deadline_ms - rv_clock_mono_ms();
    if (left > 0) {
        struct timespec ts = deadline_in(left);
        pthread_cond_timedwait(cond, &mb->lock, &ts);
    }
}

/* ---- records -------------------------------------------------------------------------------- */

static void rec_ref(mrec_t *r) {
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

static void rec_unref(mrec_t *r) {
    if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
        free(r);
    }
}

/* The bytes a record counts for, before it is copied. */
static int64_t rec_size(const rv_record_t *in) {
    int64_t size = REC_OVERHEAD + (int64_t)in->key_len + (int64_t)in->value_len;
    for (size_t i = 0; i < in->header_count; i++) {
        size += HEADER_OVERHEAD + (int64_t)strlen(in->headers[i].name) +
                (int64_t)in->headers[i].value_len;
    }
    return size;
}

/* Copies a record into one allocation with one reference; NULL on NOMEM. */
static mrec_t *rec_copy(const rv_record_t *in, int64_t size) {
    size_t head = (sizeof(mrec_t) + alignof(rv_header_t) - 1) & ~(alignof(rv_header_t) - 1);
    size_t bytes = head + in->header_count * sizeof(rv_header_t) + in->key_len + in->value_len;
    for (size_t i = 0; i < in->header_count; i++) {
        bytes += strlen(in->headers[i].name) + 1 + in->headers[i].value_len;
    }
    char *blob = malloc(bytes + 1);
    if (!blob) {
        return NULL;
    }
    mrec_t *r = (mrec_t *)blob;
    atomic_init(&r->refs, 1);
    r->has_key = in->key != NULL;
    r->has_value = in->value != NULL;
    r->offset = -1;
    r->timestamp_ms = in->timestamp_ms;
    r->size = size;
    r->header_count = in->header_count;
    r->headers = in->header_count ? (rv_header_t *)(blob + head) : NULL;
    char *p = blob + head + in->header_count * sizeof(rv_header_t);
    r->key = in->key ? p : NULL;
    r->key_len = in->key_len;
    if (in->key_len) {
        memcpy(p, in->key, in->key_len);
        p += in->key_len;
    }
    r->value = in->value ? p : NULL;
    r->value_len = in->value_len;
    if (in->value_len) {
        memcpy(p, in->value, in->value_len);
        p += in->value_len;
    }
    for (size_t i = 0; i < in->header_count; i++) {
        size_t nlen = strlen(in->headers[i].name) + 1;
        memcpy(p, in->headers[i].name, nlen);
        r->headers[i].name = p;
        p += nlen;
        r->headers[i].value = in->headers[i].value ? p : NULL;
        r->headers[i].value_len = in->headers[i].value_len;
        if (in->headers[i].value_len) {
            memcpy(p, in->headers[i].value, in->headers[i].value_len);
            p += in->headers[i].value_len;
        }
    }
    return r;
}

/* The view of a stored record for delivery reports and consumers. */
static rv_record_t rec_view(const mrec_t *r, const mtopic_t *t, int32_t partition) {
    return (rv_record_t){.topic = t->name,
                         .partition = partition,
                         .offset = r->offset,
                         .timestamp_ms = r->timestamp_ms,
                         .key = r->key,
                         .key_len = r->key_len,
                         .value = r->value,
                         .value_len = r->value_len,
                         .headers = r->headers,
                         .header_count = r->header_count};
}

/* ---- partitions and segments ---------------------------------------------------------------- */

static bool seg_push(mseg_t *s, mrec_t *r) {
    if (!grow((void **)&s->recs, &s->cap, s->n + 1, sizeof *s->recs)) {
        return false;
    }
    s->recs[s->n++] = r;
    s->bytes += r->size;
    if (r->timestamp_ms > s->max_ts) {
        s->max_ts = r->timestamp_ms;
    }
    return true;
}

static void seg_free(mseg_t *s) {
    for (size_t i = 0; i < s->n; i++) {
        rec_unref(s->recs[i]);
    }
    free(s->recs);
}

static bool part_add_seg(mpart_t *p, int64_t base) {
    if (!grow((void **)&p->segs, &p->segs_cap, p->nsegs + 1, sizeof *p->segs)) {
        return false;
    }
    p->segs[p->nsegs++] =
        (mseg_t){.base = base, .max_ts = INT64_MIN, .created_ms = rv_clock_wall_ms()};
    return true;
}

static void part_free(mpart_t *p) {
    for (size_t i = 0; i < p->nsegs; i++) {
        seg_free(&p->segs[i]);
    }
    free(p->segs);
    p->segs = NULL;
    p->nsegs = 0;
}

static int64_t part_bytes(const mpart_t *p) {
    int64_t n = 0;
    for (size_t i = 0; i < p->nsegs; i++) {
        n += p->segs[i].bytes;
    }
    return n;
}

/* Appends `r` (offset and timestamp assigned here), rolling the active segment when full. */
static bool part_append(mtopic_t *t, mpart_t *p, mrec_t *r, int64_t now_ms) {
    mseg_t *active = &p->segs[p->nsegs - 1];
    if (active->n > 0 && (active->bytes + r->size > t->segment_bytes ||
                          now_ms - active->created_ms >= t->segment_ms)) {
        if (!part_add_seg(p, p->high)) {
            return false;
        }
        p->dirty = true;
        active = &p->segs[p->nsegs - 1];
    }
    r->offset = p->high;
    if (r->timestamp_ms <= 0) {
        r->timestamp_ms = now_ms;
    }
    if (!seg_push(active, r)) {
        return false;
    }
    p->high++;
    return true;
}

/*
 * Finds the first stored record at or after `offset`: its segment in *si and index in *ri.
 * False when there is none (the position is at or past the last record).
 */
static bool part_locate(const mpart_t *p, int64_t offset, size_t *si, size_t *ri) {
    size_t lo = 0, hi = p->nsegs;
    while (hi - lo > 1) { /* the last segment whose base <= offset, or the first */
        size_t mid = lo + (hi - lo) / 2;
        if (p->segs[mid].base <= offset) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    for (size_t s = lo; s < p->nsegs; s++) {
        const mseg_t *seg = &p->segs[s];
        size_t a = 0, b = seg->n;
        while (a < b) {
            size_t mid = a + (b - a) / 2;
            if (seg->recs[mid]->offset < offset) {
                a = mid + 1;
            } else {
                b = mid;
            }
        }
        if (a < seg->n) {
            *si = s;
            *ri = a;
            return true;
        }
    }
    return false;
}

/* ---- maintenance: retention and compaction -------------------------------------------------- */

/* Deletes whole closed segments past retention.bytes or retention.ms; returns how many. */
static int part_retention(mbroker_t *mb, mtopic_t *t, mpart_t *p, int64_t now_ms) {
    int64_t total = part_bytes(p);
    size_t drop = 0;
    while (drop + 1 < p->nsegs) { /* never the active segment */
        const mseg_t *s = &p->segs[drop];
        bool by_bytes = t->retention_bytes >= 0 && total - s->bytes >= t->retention_bytes;
        bool by_time = t->retention_ms >= 0 && (s->n == 0 || s->max_ts < now_ms - t->retention_ms);
        if (!by_bytes && !by_time) {
            break;
        }
        total -= s->bytes;
        drop++;
    }
    if (drop == 0) {
        return 0;
    }
    for (size_t i = 0; i < drop; i++) {
        seg_free(&p->segs[i]);
    }
    memmove(p->segs, p->segs + drop, (p->nsegs - drop) * sizeof *p->segs);
    p->nsegs -= drop;
    if (p->segs[0].base > p->log_start) {
        p->log_start = p->segs[0].base;
    }
    rv__log(&mb->b->log, RV_LOG_DEBUG, "memory",
            "topic '%s' partition %d: retention deleted %zu segments; low watermark now %lld",
            t->name, (int)(p - t->parts), drop, (long long)p->log_start);
    return (int)drop;
}

/* An open-addressing table from key bytes to the newest record with that key. */
typedef struct keymap_s {
    mrec_t **slots;
    size_t mask;
} keymap_t;

static size_t key_hash(const mrec_t *r) {
    return (size_t)(uint32_t)rv_murmur2(r->key, r->key_len) * 2654435761u;
}

static mrec_t **keymap_slot(keymap_t *m, const mrec_t *r) {
    size_t i = key_hash(r) & m->mask;
    for (;;) {
        mrec_t *s = m->slots[i];
        if (!s || (s->key_len == r->key_len && memcmp(s->key, r->key, r->key_len) == 0)) {
            return &m->slots[i];
        }
        i = (i + 1) & m->mask;
    }
}

/*
 * Compacts the closed segments: keeps the newest record of every key among them (records
 * without a key are kept), drops tombstones whose timestamp is more than delete.retention.ms
 * old, and repacks what is kept into segments of at most segment.bytes. The active segment is
 * left alone, as the log cleaner does. Offsets and the low watermark do not change. Everything
 * is allocated before anything changes, so running out of memory leaves the log as it was.
 */
static void part_compact(mbroker_t *mb, mtopic_t *t, mpart_t *p, int64_t now_ms) {
    size_t closed = p->nsegs - 1;
    if (closed == 0) {
        p->dirty = false;
        return;
    }
    size_t nrecs = 0;
    for (size_t s = 0; s < closed; s++) {
        nrecs += p->segs[s].n;
    }
    size_t size = 16;
    while (size < nrecs * 2) {
        size *= 2;
    }
    keymap_t map = {calloc(size, sizeof(mrec_t *)), size - 1};
    mrec_t **kept = malloc((nrecs ? nrecs : 1) * sizeof *kept);
    mseg_t *out = calloc(closed, sizeof *out);
    if (!map.slots || !kept || !out) {
        goto fail;
    }
    for (size_t s = 0; s < closed; s++) {
        for (size_t i = 0; i < p->segs[s].n; i++) {
            mrec_t *r = p->segs[s].recs[i];
            if (r->has_key) {
                *keymap_slot(&map, r) = r;
            }
        }
    }
    /* Decide, in offset order, which records stay. */
    size_t nkept = 0;
    int64_t deadline = INT64_MAX;
    for (size_t s = 0; s < closed; s++) {
        for (size_t i = 0; i < p->segs[s].n; i++) {
            mrec_t *r = p->segs[s].recs[i];
            bool keep = !r->has_key || *keymap_slot(&map, r) == r;
            if (keep && !r->has_value) {
                if (now_ms - r->timestamp_ms > t->delete_retention_ms) {
                    keep = false;
                } else {
                    int64_t expiry;
                    if (t->delete_retention_ms == INT64_MAX ||
                        __builtin_add_overflow(r->timestamp_ms, t->delete_retention_ms + 1,
                                               &expiry)) {
                        expiry = INT64_MAX;
                    }
                    if (expiry < deadline) {
                        deadline = expiry;
                    }
                }
            }
            if (keep) {
                kept[nkept++] = r;
            }
        }
    }
    /* Lay the kept records out in segments; records only ever move to earlier segments. */
    size_t nout = 1;
    out[0] =
        (mseg_t){.base = p->segs[0].base, .max_ts = INT64_MIN, .created_ms = p->segs[0].created_ms};
    for (size_t k = 0; k < nkept; k++) {
        mseg_t *o = &out[nout - 1];
        if (o->n > 0 && o->bytes + kept[k]->size > t->segment_bytes) {
            o = &out[nout++];
            *o = (mseg_t){.base = kept[k]->offset,
                          .max_ts = INT64_MIN,
                          .created_ms = p->segs[closed - 1].created_ms};
        }
        o->n++; /* counted now, filled below */
        o->bytes += kept[k]->size;
    }
    for (size_t o = 0; o < nout; o++) {
        out[o].recs = malloc((out[o].n ? out[o].n : 1) * sizeof(mrec_t *));
        if (!out[o].recs) {
            goto fail;
        }
        out[o].cap = out[o].n ? out[o].n : 1;
        out[o].n = 0;
    }
    for (size_t k = 0, o = 0; k < nkept; k++) {
        if (out[o].n == out[o].cap) {
            o++;
        }
        out[o].recs[out[o].n++] = kept[k];
        if (kept[k]->timestamp_ms > out[o].max_ts) {
            out[o].max_ts = kept[k]->timestamp_ms;
        }
    }
    /* Commit: drop what was not kept and swap the segments in. */
    size_t k = 0;
    for (size_t s = 0; s < closed; s++) {
        for (size_t i = 0; i < p->segs[s].n; i++) {
            mrec_t *r = p->segs[s].recs[i];
            if (k < nkept && kept[k] == r) {
                k++;
            } else {
                rec_unref(r);
            }
        }
        free(p->segs[s].recs);
    }
    mseg_t active = p->segs[closed];
    memcpy(p->segs, out, nout * sizeof *out);
    p->segs[nout] = active;
    p->nsegs = nout + 1;
    p->dirty = false;
    p->tombstone_deadline = deadline;
    rv__log(&mb->b->log, RV_LOG_DEBUG, "memory",
            "topic '%s' partition %d: compaction kept %zu of %zu records in %zu segments", t->name,
            (int)(p - t->parts), nkept, nrecs, nout);
    free(map.slots);
    free(kept);
    free(out);
    return;
fail:
    for (size_t o = 0; out && o < closed; o++) {
        free(out[o].recs);
    }
    free(map.slots);
    free(kept);
    free(out);
    p->dirty = true; /* try again at the next maintenance */
}

static void maintain(mbroker_t *mb) {
    int64_t now = rv_clock_wall_ms();
    for (size_t i = 0; i < mb->ntopics; i++) {
        mtopic_t *t = mb->topics[i];
        for (int32_t k = 0; k < t->npart; k++) {
            mpart_t *p = &t->parts[k];
            if (t->policy != POLICY_DELETE && (p->dirty || now >= p->tombstone_deadline)) {
                part_compact(mb, t, p, now);
            }
            if (t->policy != POLICY_COMPACT) {
                part_retention(mb, t, p, now);
            }
        }
    }
}

static void *maintenance_main(void *arg) {
    mbroker_t *mb = arg;
    lock(mb);
    while (!mb->stopping) {
        wait_until(mb, &mb->maint_cond, rv_clock_mono_ms() + mb->maint_interval_ms);
        if (!mb->stopping) {
            maintain(mb);
        }
    }
    unlock(mb);
    return NULL;
}

/* ---- topics --------------------------------------------------------------------------------- */

/* The index where `name` is or would be inserted in the sorted topic array. */
static size_t topic_index(const mbroker_t *mb, const char *name, bool *found) {
    size_t lo = 0, hi = mb->ntopics;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(mb->topics[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = false;
    return lo;
}

static mtopic_t *topic_find(const mbroker_t *mb, const char *name) {
    bool found;
    size_t i = topic_index(mb, name, &found);
    return found ? mb->topics[i] : NULL;
}

static rv_err_t topic_not_found(rv_error_t **err, const char *name) {
    return rv__error_set(err, RV_ERR_NOT_FOUND, "topic '%s' does not exist", name);
}

static rv_err_t partition_out_of_range(rv_error_t **err, const mtopic_t *t, int32_t partition) {
    return rv__error_set(err, RV_ERR_INVALID_ARG,
                         "topic '%s' partition %d: no such partition (the topic has %d)", t->name,
                         (int)partition, (int)t->npart);
}

/* Looks up a live topic and checks the partition; fills *err naming them when it fails. */
static rv_err_t find_partition(const mbroker_t *mb, const char *topic, int32_t partition,
                               mtopic_t **out, rv_error_t **err) {
    mtopic_t *t = topic_find(mb, topic);
    if (!t) {
        return topic_not_found(err, topic);
    }
    if (partition < 0 || partition >= t->npart) {
        return partition_out_of_range(err, t, partition);
    }
    *out = t;
    return RV_OK;
}

/* Frees a topic's data and configuration, leaving its name for views that still point at it. */
static void topic_release(mtopic_t *t) {
    for (int32_t k = 0; t->parts && k < t->npart; k++) {
        part_free(&t->parts[k]);
    }
    free(t->parts);
    t->parts = NULL;
    rv_conf_destroy(t->conf);
    t->conf = NULL;
}

static void topic_free(mtopic_t *t) {
    topic_release(t);
    free(t->name);
    free(t);
}

/* ---- groups --------------------------------------------------------------------------------- */

static mgroup_t *group_get(mbroker_t *mb, const char *name) {
    for (mgroup_t *g = mb->groups; g; g = g->next) {
        if (strcmp(g->name, name) == 0) {
            return g;
        }
    }
    mgroup_t *g = calloc(1, sizeof *g);
    if (!g || !(g->name = strdup(name))) {
        free(g);
        return NULL;
    }
    g->next = mb->groups;
    mb->groups = g;
    return g;
}

static int commit_cmp(const char *topic, int32_t partition, const mcommit_t *c) {
    int r = strcmp(topic, c->topic);
    return r ? r : (partition > c->partition) - (partition < c->partition);
}

/* The index of (topic, partition) among the group's commits, or where it would go. */
static size_t commit_index(const mgroup_t *g, const char *topic, int32_t partition, bool *found) {
    size_t lo = 0, hi = g->ncommits;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = commit_cmp(topic, partition, &g->commits[mid]);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c > 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static int64_t committed_offset(const mgroup_t *g, const char *topic, int32_t partition) {
    bool found;
    size_t i = g ? commit_index(g, topic, partition, &found) : 0;
    return g && found ? g->commits[i].offset : RV_OFFSET_INVALID;
}

static rv_err_t commit_store(mgroup_t *g, const char *topic, int32_t partition, int64_t offset) {
    bool found;
    size_t i = commit_index(g, topic, partition, &found);
    if (found) {
        g->commits[i].offset = offset;
        return RV_OK;
    }
    char *name = strdup(topic);
    if (!name ||
        !grow((void **)&g->commits, &g->commits_cap, g->ncommits + 1, sizeof *g->commits)) {
        free(name);
        return RV_ERR_NOMEM;
    }
    memmove(g->commits + i + 1, g->commits + i, (g->ncommits - i) * sizeof *g->commits);
    g->commits[i] = (mcommit_t){name, partition, offset};
    g->ncommits++;
    return RV_OK;
}

/* Forgets every group's commits for a deleted topic. */
static void commits_drop_topic(mbroker_t *mb, const char *topic) {
    for (mgroup_t *g = mb->groups; g; g = g->next) {
        size_t w = 0;
        for (size_t i = 0; i < g->ncommits; i++) {
            if (strcmp(g->commits[i].topic, topic) == 0) {
                free(g->commits[i].topic);
            } else {
                g->commits[w++] = g->commits[i];
            }
        }
        g->ncommits = w;
    }
}

static bool member_subscribes(const mcons_t *m, const char *topic) {
    for (size_t i = 0; i < m->nsubs; i++) {
        if (strcmp(m->subs[i], topic) == 0) {
            return true;
        }
    }
    return false;
}

static int tpref_cmp(const void *a, const void *b) {
    const tpref_t *x = a, *y = b;
    int c = strcmp(x->topic->name, y->topic->name);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/*
 * Recomputes which member gets which partition: every partition of every live topic some
 * member subscribes to, sorted by topic and partition, dealt round-robin over the members in
 * join order, skipping members not subscribed to its topic. Members act on the result in their
 * next poll (revoking first, then taking partitions the previous owner has released).
 */
static void group_rebalance(mbroker_t *mb, mgroup_t *g) {
    size_t total = 0;
    for (size_t i = 0; i < mb->ntopics; i++) {
        mtopic_t *t = mb->topics[i];
        for (size_t m = 0; m < g->nmembers; m++) {
            if (member_subscribes(g->members[m], t->name)) {
                total += (size_t)t->npart;
                break;
            }
        }
    }
    tpref_t *all = total ? calloc(total, sizeof *all) : NULL;
    size_t n = 0;
    if (all) {
        for (size_t i = 0; i < mb->ntopics; i++) {
            mtopic_t *t = mb->topics[i];
            for (size_t m = 0; m < g->nmembers; m++) {
                if (member_subscribes(g->members[m], t->name)) {
                    for (int32_t k = 0; k < t->npart; k++) {
                        all[n++] = (tpref_t){t, k};
                    }
                    break;
                }
            }
        }
        qsort(all, n, sizeof *all, tpref_cmp); /* the topic array is sorted already; be sure */
    }
    for (size_t m = 0; m < g->nmembers; m++) {
        mcons_t *mc = g->members[m];
        free(mc->target);
        mc->target = n ? calloc(n, sizeof *mc->target) : NULL;
        mc->ntarget = 0;
        mc->settled = false;
    }
    size_t next = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t tries = 0; tries < g->nmembers; tries++) {
            mcons_t *mc = g->members[next];
            next = (next + 1) % g->nmembers;
            if (member_subscribes(mc, all[i].topic->name)) {
                if (mc->target) {
                    mc->target[mc->ntarget++] = all[i];
                }
                break;
            }
        }
    }
    free(all);
    pthread_cond_broadcast(&mb->data_cond);
}

static void rebalance_groups_of_topic(mbroker_t *mb, const char *topic) {
    for (mgroup_t *g = mb->groups; g; g = g->next) {
        for (size_t m = 0; m < g->nmembers; m++) {
            if (member_subscribes(g->members[m], topic)) {
                group_rebalance(mb, g);
                break;
            }
        }
    }
}

/* ---- broker ops: open, close, admin --------------------------------------------------------- */

static rv_err_t mem_open(rv_broker_t *b, const char *location, rv_error_t **err) {
    if (location[0]) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "broker URL '%s': the memory broker takes no location (use "
                             "\"memory:\")",
                             b->url);
    }
    mbroker_t *mb = calloc(1, sizeof *mb);
    if (!mb) {
        return rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory", b->url);
    }
    mb->b = b;
    mb->maint_interval_ms = rv__conf_int(b->conf, RV_CONF_ID_MAINTENANCE_MS);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&mb->lock, NULL);
    pthread_cond_init(&mb->data_cond, &ca);
    pthread_cond_init(&mb->maint_cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&mb->maint_thread, NULL, maintenance_main, mb) != 0) {
        pthread_cond_destroy(&mb->data_cond);
        pthread_cond_destroy(&mb->maint_cond);
        pthread_mutex_destroy(&mb->lock);
        free(mb);
        return rv__error_set(err, RV_ERR_NOMEM, "broker '%s': cannot start the maintenance thread",
                             b->url);
    }
    b->impl = mb;
    return RV_OK;
}

static void mem_close(rv_broker_t *b) {
    mbroker_t *mb = mb_of(b);
    lock(mb);
    mb->stopping = true;
    pthread_cond_broadcast(&mb->maint_cond);
    unlock(mb);
    pthread_join(mb->maint_thread, NULL);
    for (size_t i = 0; i < mb->ntopics; i++) {
        topic_free(mb->topics[i]);
    }
    free(mb->topics);
    while (mb->dead) {
        mtopic_t *t = mb->dead;
        mb->dead = t->next_dead;
        topic_free(t);
    }
    while (mb->groups) {
        mgroup_t *g = mb->groups;
        mb->groups = g->next;
        for (size_t i = 0; i < g->ncommits; i++) {
            free(g->commits[i].topic);
        }
        free(g->commits);
        free(g->members);
        free(g->name);
        free(g);
    }
    pthread_cond_destroy(&mb->data_cond);
    pthread_cond_destroy(&mb->maint_cond);
    pthread_mutex_destroy(&mb->lock);
    free(mb);
    b->impl = NULL;
}

static rv_err_t mem_create_topic(rv_broker_t *b, const char *topic, int32_t partitions,
                                 const rv_conf_t *topic_conf, rv_error_t **err) {
    mbroker_t *mb = mb_of(b);
    mtopic_t *t = calloc(1, sizeof *t);
    if (t) {
        t->name = strdup(topic);
        t->parts = calloc((size_t)partitions, sizeof *t->parts);
        t->conf = topic_conf ? rv_conf_dup(topic_conf) : rv_conf_new();
    }
    bool ok = t && t->name && t->parts && t->conf;
    if (ok) {
        t->npart = partitions;
        t->segment_bytes = rv__conf_int(t->conf, RV_CONF_ID_SEGMENT_BYTES);
        t->segment_ms = rv__conf_int(t->conf, RV_CONF_ID_SEGMENT_MS);
        t->retention_ms = rv__conf_int(t->conf, RV_CONF_ID_RETENTION_MS);
        t->retention_bytes = rv__conf_int(t->conf, RV_CONF_ID_RETENTION_BYTES);
        t->delete_retention_ms = rv__conf_int(t->conf, RV_CONF_ID_DELETE_RETENTION_MS);
        t->max_message_bytes = rv__conf_int(t->conf, RV_CONF_ID_MAX_MESSAGE_BYTES);
        t->policy = (int)rv__conf_int(t->conf, RV_CONF_ID_CLEANUP_POLICY);
        for (int32_t k = 0; k < partitions && ok; k++) {
            t->parts[k].tombstone_deadline = INT64_MAX;
            ok = part_add_seg(&t->parts[k], 0);
        }
    }
    if (!ok) {
        if (t) {
            t->npart = partitions;
            topic_free(t);
        }
        return rv__error_set(err, RV_ERR_NOMEM, "topic '%s': out of memory creating %d partitions",
                             topic, (int)partitions);
    }
    lock(mb);
    bool found;
    size_t i = topic_index(mb, topic, &found);
    if (found ||
        !grow((void **)&mb->topics, &mb->topics_cap, mb->ntopics + 1, sizeof *mb->topics)) {
        unlock(mb);
        topic_free(t);
        if (found) {
            return rv__error_set(err, RV_ERR_EXISTS, "topic '%s' already exists", topic);
        }
        return rv__error_set(err, RV_ERR_NOMEM, "topic '%s': out of memory", topic);
    }
    memmove(mb->topics + i + 1, mb->topics + i, (mb->ntopics - i) * sizeof *mb->topics);
    mb->topics[i] = t;
    mb->ntopics++;
    rebalance_groups_of_topic(mb, topic);
    unlock(mb);
    rv__log(&b->log, RV_LOG_INFO, "memory", "created topic '%s' with %d partitions", topic,
            (int)partitions);
    return RV_OK;
}

static rv_err_t mem_delete_topic(rv_broker_t *b, const char *topic, rv_error_t **err) {
    mbroker_t *mb = mb_of(b);
    lock(mb);
    bool found;
    size_t i = topic_index(mb, topic, &found);
    if (!found) {
        unlock(mb);
        return topic_not_found(err, topic);
    }
    mtopic_t *t = mb->topics[i];
    memmove(mb->topics + i, mb->topics + i + 1, (mb->ntopics - i - 1) * sizeof *mb->topics);
    mb->ntopics--;
    t->deleted = true;
    topic_release(t);
    t->next_dead = mb->dead;
    mb->dead = t;
    commits_drop_topic(mb, topic);
    rebalance_groups_of_topic(mb, topic);
    pthread_cond_broadcast(&mb->data_cond);
    unlock(mb);
    rv__log(&b->log, RV_LOG_INFO, "memory", "deleted topic '%s'", topic);
    return RV_OK;
}

static rv_err_t mem_list_topics(rv_broker_t *b, char ***names, size_t *count, rv_error_t **err) {
    mbroker_t *mb = mb_of(b);
    lock(mb);
    size_t n = mb->ntopics;
    char **v = calloc(n + 1, sizeof *v);
    bool ok = v != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        ok = (v[i] = strdup(mb->topics[i]->name)) != NULL;
    }
    unlock(mb);
    if (!ok) {
        rv_strv_free(v);
        return rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory listing topics",
                             b->url);
    }
    *names = v;
    *count = n;
    return RV_OK;
}

static rv_err_t mem_describe_topic(rv_broker_t *b, const char *topic, int32_t *partitions,
                                   rv_conf_t **topic_conf, rv_error_t **err) {
    mbroker_t *mb = mb_of(b);
    lock(mb);
    mtopic_t *t = topic_find(mb, topic);
    if (!t) {
        unlock(mb);
        return topic_not_found(err, topic);
    }
    *partitions = t->npart;
    rv_conf_t *c = topic_conf ? rv_conf_dup(t->conf) : NULL;
    unlock(mb);
    if (topic_conf) {
        if (!c) {
            return rv__error_set(err, RV_ERR_NOMEM, "topic '%s': out of memory", topic);
        }
        *topic_conf = c;
    }
    return RV_OK;
}

static rv_err_t mem_watermarks(rv_broker_t *b, const char *topic, int32_t partition, int64_t *low,
                               int64_t *high, rv_error_t **err) {
    mbroker_t *mb = mb_of(b);
    lock(mb);
    mtopic_t *t;
    rv_err_t e = find_partition(mb, topic, partition, &t, err);
    if (!e) {
        *low = t->parts[partition].log_start;
        *high = t->parts[partition].high;
    }
    unlock(mb);
    return e;
}

/* ---- producers ------------------------------------------------------------------------------ */

static rv_err_t mem_producer_new(rv_producer_t *p, rv_error_t **err) {
    mprod_t *mp = calloc(1, sizeof *mp);
    if (!mp) {
        return rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory for a producer",
                             p->broker->url);
    }
    mp->mb = mb_of(p->broker);
    mp->max_bytes = rv__conf_int(p->conf, RV_CONF_ID_QUEUE_MAX_BYTES);
    p->impl = mp;
    return RV_OK;
}

static void mem_producer_destroy(rv_producer_t *p) {
    mprod_t *mp = p->impl;
    for (size_t i = 0; i < mp->qn; i++) {
        rec_unref(mp->q[i].rec);
    }
    free(mp->q);
    free(mp);
}

static rv_err_t mem_send(rv_producer_t *p, const rv_record_t *rec, void *rec_opaque) {
    mprod_t *mp = p->impl;
    mbroker_t *mb = mp->mb;
    int64_t size = rec_size(rec);
    mrec_t *r = rec_copy(rec, size);
    if (!r) {
        return RV_ERR_NOMEM;
    }
    rv_err_t e = RV_OK;
    lock(mb);
    mtopic_t *t = topic_find(mb, rec->topic);
    int32_t partition = t ? rv__choose_partition(rec, t->npart, &mp->rr) : -1;
    if (!t) {
        e = RV_ERR_NOT_FOUND;
    } else if (partition < 0) {
        e = RV_ERR_INVALID_ARG;
    } else if (size > t->max_message_bytes) {
        e = RV_ERR_LIMIT;
    } else if (p->delivery_cb && mp->qn > 0 && mp->q_bytes + size > mp->max_bytes) {
        e = RV_ERR_AGAIN;
    } else if (p->delivery_cb && !grow((void **)&mp->q, &mp->qcap, mp->qn + 1, sizeof *mp->q)) {
        e = RV_ERR_NOMEM;
    } else if (!part_append(t, &t->parts[partition], r, rv_clock_wall_ms())) {
        e = RV_ERR_NOMEM;
    } else {
        if (p->delivery_cb) {
            rec_ref(r);
            mp->q[mp->qn++] = (report_t){r, t, partition, rec_opaque};
            mp->q_bytes += size;
        }
        pthread_cond_broadcast(&mb->data_cond);
    }
    unlock(mb);
    if (e) {
        rec_unref(r);
    }
    return e;
}

/* Serves the delivery reports queued now, after waiting up to timeout_ms for one. */
static int mem_producer_poll(rv_producer_t *p, int timeout_ms) {
    mprod_t *mp = p->impl;
    mbroker_t *mb = mp->mb;
    int64_t deadline = timeout_ms < 0 ? -1 : rv_clock_mono_ms() + timeout_ms;
    lock(mb);
    while (mp->qn == 0 && timeout_ms != 0) {
        if (deadline >= 0 && rv_clock_mono_ms() >= deadline) {
            break;
        }
        wait_until(mb, &mb->data_cond, deadline);
    }
    report_t *q = mp->q;
    size_t n = mp->qn;
    mp->q = NULL;
    mp->qn = 0;
    mp->qcap = 0;
    mp->q_bytes = 0;
    unlock(mb);
    for (size_t i = 0; i < n; i++) {
        if (p->delivery_cb) {
            rv_record_t view = rec_view(q[i].rec, q[i].topic, q[i].partition);
            p->delivery_cb(p->opaque, &view, RV_OK, q[i].opaque);
        }
        rec_unref(q[i].rec);
    }
    free(q);
    return (int)n;
}

/* Every send is stored before it returns, so flushing is serving the reports queued so far. */
static rv_err_t mem_flush(rv_producer_t *p, int timeout_ms, rv_error_t **err) {
    mem_producer_poll(p, 0);
    return RV_OK;
}

/* ---- consumers: positions ------------------------------------------------------------------- */

static massign_t *asg_find(mcons_t *mc, const char *topic, int32_t partition) {
    for (size_t i = 0; i < mc->nasg; i++) {
        massign_t *a = &mc->asg[i];
        if (a->partition == partition && strcmp(a->topic->name, topic) == 0) {
            return a;
        }
    }
    return NULL;
}

static const char *reset_name(int reset) {
    return reset == RESET_EARLIEST ? "earliest" : reset == RESET_LATEST ? "latest" : "error";
}

/* Applies auto.offset.reset to `a` (no committed offset, or a position out of range). */
static void apply_reset(mcons_t *mc, massign_t *a, bool no_commit) {
    const mpart_t *p = &a->topic->parts[a->partition];
    if (mc->reset == RESET_EARLIEST) {
        a->position = p->log_start;
    } else if (mc->reset == RESET_LATEST) {
        a->position = p->high;
    } else {
        a->stopped = true;
        a->error_due = true;
        a->no_commit = no_commit;
    }
}

/* Sets a freshly assigned partition's position from a logical or concrete offset. */
static void resolve_start(mcons_t *mc, massign_t *a, int64_t offset) {
    const mpart_t *p = &a->topic->parts[a->partition];
    a->stopped = a->error_due = a->eof_sent = false;
    if (offset == RV_OFFSET_STORED) {
        offset = committed_offset(mc->group, a->topic->name, a->partition);
        if (offset == RV_OFFSET_INVALID) {
            apply_reset(mc, a, true);
            return;
        }
    }
    if (offset == RV_OFFSET_BEGINNING) {
        a->position = p->log_start;
    } else if (offset == RV_OFFSET_END) {
        a->position = p->high;
    } else {
        a->position = offset; /* checked against the watermarks when fetching */
    }
}

static int64_t visible_position(const massign_t *a) {
    return a->stopped ? RV_OFFSET_INVALID : a->position;
}

/* ---- consumers: groups ---------------------------------------------------------------------- */

static bool in_target(const mcons_t *mc, const mtopic_t *t, int32_t partition) {
    for (size_t i = 0; i < mc->ntarget; i++) {
        if (mc->target[i].topic == t && mc->target[i].partition == partition) {
            return true;
        }
    }
    return false;
}

static bool owned_by_other(const mcons_t *self, const mtopic_t *t, int32_t partition) {
    const mgroup_t *g = self->group;
    for (size_t m = 0; m < g->nmembers; m++) {
        const mcons_t *o = g->members[m];
        if (o == self) {
            continue;
        }
        for (size_t i = 0; i < o->nasg; i++) {
            if (o->asg[i].topic == t && o->asg[i].partition == partition) {
                return true;
            }
        }
    }
    return false;
}

/* Removes assigned partition `i`, keeping the order of the others. */
static void asg_remove(mcons_t *mc, size_t i) {
    memmove(mc->asg + i, mc->asg + i + 1, (mc->nasg - i - 1) * sizeof *mc->asg);
    mc->nasg--;
}

/*
 * Calls a rebalance callback for `refs` without the broker's lock; `tps` is scratch of the same
 * length. Positions are read under the lock, as the user sees them.
 */
static void call_rebalance_cb(mcons_t *mc, bool assign, const tpref_t *refs, size_t n,
                              rv_topic_partition_t *tps) {
    rv_consumer_t *c = mc->c;
    void (*cb)(void *, rv_consumer_t *, const rv_topic_partition_t *, size_t) =
        assign ? c->callbacks.on_assign : c->callbacks.on_revoke;
    for (size_t i = 0; i < n; i++) {
        massign_t *a = asg_find(mc, refs[i].topic->name, refs[i].partition);
        tps[i] = (rv_topic_partition_t){refs[i].topic->name, refs[i].partition,
                                        a ? visible_position(a) : RV_OFFSET_INVALID};
    }
    if (cb) {
        unlock(mc->mb);
        cb(c->callbacks.opaque, c, tps, n);
        lock(mc->mb);
    }
}

/*
 * Brings a member's partitions in line with the group's latest decision: first revokes what it
 * lost (on_revoke, then releases them to the group), then takes what it gained and nobody holds
 * any more (on_assign, resuming from the committed offsets). Called with the lock held; drops
 * it around the callbacks. Returns the number of callbacks served, or -1 on NOMEM.
 */
static int group_step(mcons_t *mc) {
    if (!mc->subscribed || mc->settled) {
        return 0;
    }
    int served = 0;
    size_t n = 0;
    size_t cap = mc->nasg > mc->ntarget ? mc->nasg : mc->ntarget;
    tpref_t *refs = cap ? malloc(cap * sizeof *refs) : NULL;
    rv_topic_partition_t *tps = cap ? malloc(cap * sizeof *tps) : NULL;
    if (cap && (!refs || !tps)) {
        free(refs);
        free(tps);
        return -1;
    }
    for (size_t i = 0; i < mc->nasg; i++) {
        if (!in_target(mc, mc->asg[i].topic, mc->asg[i].partition)) {
            refs[n++] = (tpref_t){mc->asg[i].topic, mc->asg[i].partition};
        }
    }
    if (n > 0) {
        call_rebalance_cb(mc, false, refs, n, tps);
        for (size_t i = 0; i < n; i++) {
            for (size_t k = 0; k < mc->nasg; k++) {
                if (mc->asg[k].topic == refs[i].topic &&
                    mc->asg[k].partition == refs[i].partition) {
                    asg_remove(mc, k);
                    break;
                }
            }
        }
        served++;
        pthread_cond_broadcast(&mc->mb->data_cond);
    }
    /* The target may have changed while the lock was dropped: size the scratch again. */
    if (mc->ntarget > cap) {
        free(refs);
        free(tps);
        cap = mc->ntarget;
        refs = malloc(cap * sizeof *refs);
        tps = malloc(cap * sizeof *tps);
        if (!refs || !tps) {
            free(refs);
            free(tps);
            return -1;
        }
    }
    n = 0;
    for (size_t i = 0; i < mc->ntarget; i++) {
        tpref_t want = mc->target[i];
        if (want.topic->deleted || asg_find(mc, want.topic->name, want.partition) ||
            owned_by_other(mc, want.topic, want.partition)) {
            continue;
        }
        if (!grow((void **)&mc->asg, &mc->asg_cap, mc->nasg + 1, sizeof *mc->asg)) {
            break;
        }
        massign_t *a = &mc->asg[mc->nasg++];
        *a = (massign_t){.topic = want.topic, .partition = want.partition};
        resolve_start(mc, a, RV_OFFSET_STORED);
        refs[n++] = want;
    }
    if (n > 0) {
        call_rebalance_cb(mc, true, refs, n, tps);
        served++;
    }
    free(refs);
    free(tps);
    /* Settled when it holds exactly its target (entries are distinct, so equal counts and
     * inclusion mean equal sets); until then, every poll tries again. */
    bool settled = mc->nasg == mc->ntarget;
    for (size_t i = 0; settled && i < mc->nasg; i++) {
        settled = in_target(mc, mc->asg[i].topic, mc->asg[i].partition);
    }
    mc->settled = settled;
    return served;
}

/* Leaves the group: revokes every partition this member holds and rebalances the rest. */
static void group_leave(mcons_t *mc) {
    mgroup_t *g = mc->group;
    if (mc->nasg > 0) {
        tpref_t *refs = malloc(mc->nasg * sizeof *refs);
        rv_topic_partition_t *tps = malloc(mc->nasg * sizeof *tps);
        if (refs && tps) {
            for (size_t i = 0; i < mc->nasg; i++) {
                refs[i] = (tpref_t){mc->asg[i].topic, mc->asg[i].partition};
            }
            call_rebalance_cb(mc, false, refs, mc->nasg, tps);
        }
        free(refs);
        free(tps);
    }
    mc->nasg = 0;
    for (size_t m = 0; m < g->nmembers; m++) {
        if (g->members[m] == mc) {
            memmove(g->members + m, g->members + m + 1, (g->nmembers - m - 1) * sizeof *g->members);
            g->nmembers--;
            break;
        }
    }
    mc->subscribed = false;
    group_rebalance(mc->mb, g);
}

/* ---- consumer ops --------------------------------------------------------------------------- */

static rv_err_t mem_consumer_new(rv_consumer_t *c, rv_error_t **err) {
    mbroker_t *mb = mb_of(c->broker);
    mcons_t *mc = calloc(1, sizeof *mc);
    if (!mc) {
        return rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory for a consumer",
                             c->broker->url);
    }
    mc->mb = mb;
    mc->c = c;
    mc->reset = (int)rv__conf_int(c->conf, RV_CONF_ID_AUTO_OFFSET_RESET);
    mc->fetch_max_bytes = rv__conf_int(c->conf, RV_CONF_ID_FETCH_MAX_BYTES);
    if (c->group) {
        lock(mb);
        mc->group = group_get(mb, c->group);
        unlock(mb);
        if (!mc->group) {
            free(mc);
            return rv__error_set(err, RV_ERR_NOMEM, "group '%s': out of memory", c->group);
        }
    }
    c->impl = mc;
    return RV_OK;
}

static void release_held(mcons_t *mc) {
    for (size_t i = 0; i < mc->nheld; i++) {
        rec_unref(mc->held[i]);
    }
    mc->nheld = 0;
}

static void mem_consumer_destroy(rv_consumer_t *c) {
    mcons_t *mc = c->impl;
    mbroker_t *mb = mc->mb;
    lock(mb);
    if (mc->subscribed) {
        group_leave(mc);
    }
    unlock(mb);
    release_held(mc);
    for (size_t i = 0; i < mc->nsubs; i++) {
        free(mc->subs[i]);
    }
    free(mc->subs);
    free(mc->target);
    free(mc->asg);
    free(mc->out);
    free(mc->held);
    free(mc->eofs);
    free(mc);
}

static rv_err_t mem_subscribe(rv_consumer_t *c, const char *const *topics, size_t count,
                              rv_error_t **err) {
    mcons_t *mc = c->impl;
    mbroker_t *mb = mc->mb;
    char **subs = calloc(count, sizeof *subs);
    size_t n = 0;
    bool ok = subs != NULL;
    for (size_t i = 0; ok && i < count; i++) {
        bool dup = false;
        for (size_t k = 0; k < n; k++) {
            dup = dup || strcmp(subs[k], topics[i]) == 0;
        }
        if (!dup) {
            ok = (subs[n++] = strdup(topics[i])) != NULL;
        }
    }
    if (!ok) {
        for (size_t i = 0; subs && i < n; i++) {
            free(subs[i]);
        }
        free(subs);
        return rv__error_set(err, RV_ERR_NOMEM, "group '%s': out of memory subscribing", c->group);
    }
    lock(mb);
    if (!mc->subscribed && mc->nasg > 0) {
        unlock(mb);
        for (size_t i = 0; i < n; i++) {
            free(subs[i]);
        }
        free(subs);
        return rv__error_set(err, RV_ERR_STATE,
                             "group '%s': the consumer has partitions assigned by hand; assign "
                             "none before subscribing",
                             c->group);
    }
    mgroup_t *g = mc->group;
    if (!mc->subscribed) {
        if (!grow((void **)&g->members, &g->members_cap, g->nmembers + 1, sizeof *g->members)) {
            unlock(mb);
            for (size_t i = 0; i < n; i++) {
                free(subs[i]);
            }
            free(subs);
            return rv__error_set(err, RV_ERR_NOMEM, "group '%s': out of memory", c->group);
        }
        mc->seq = ++mb->member_seq;
        g->members[g->nmembers++] = mc; /* join order is the sorted member order */
        mc->subscribed = true;
    }
    for (size_t i = 0; i < mc->nsubs; i++) {
        free(mc->subs[i]);
    }
    free(mc->subs);
    mc->subs = subs;
    mc->nsubs = n;
    group_rebalance(mb, g);
    unlock(mb);
    return RV_OK;
}

static rv_err_t mem_assign(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                           rv_error_t **err) {
    mcons_t *mc = c->impl;
    mbroker_t *mb = mc->mb;
    massign_t *asg = count ? calloc(count, sizeof *asg) : NULL;
    if (count && !asg) {
        return rv__error_set(err, RV_ERR_NOMEM, "assign: out of memory");
    }
    lock(mb);
    if (mc->subscribed) {
        unlock(mb);
        free(asg);
        return rv__error_set(err, RV_ERR_STATE,
                             "group '%s': the consumer is subscribed; its partitions are "
                             "assigned by the group",
                             c->group);
    }
    for (size_t i = 0; i < count; i++) {
        mtopic_t *t;
        rv_err_t e = find_partition(mb, tps[i].topic, tps[i].partition, &t, err);
        if (e) {
            unlock(mb);
            free(asg);
            return rv__error_prefix(err, e, "assign: ");
        }
        asg[i] = (massign_t){.topic = t, .partition = tps[i].partition};
        resolve_start(mc, &asg[i], tps[i].offset);
    }
    free(mc->asg);
    mc->asg = asg;
    mc->nasg = count;
    mc->asg_cap = count;
    mc->rr = 0;
    unlock(mb);
    return RV_OK;
}

static bool grow_out(mcons_t *mc, size_t need) {
    if (need <= mc->out_cap) {
        return true;
    }
    rv_record_t *o = realloc(mc->out, need * sizeof *o);
    if (o) {
        mc->out = o;
    }
    mrec_t **h = realloc(mc->held, need * sizeof *h);
    if (h) {
        mc->held = h;
    }
    if (!o || !h) {
        return false;
    }
    mc->out_cap = need;
    return true;
}

/*
 * Takes up to `max` records from the assigned partitions, starting at a partition that moves
 * on every call (round-robin), each partition in offset order and up to fetch.max.bytes.
 * Queues EOF events for partitions that reached their end. Called with the lock held.
 */
static size_t fetch(mcons_t *mc, size_t max) {
    size_t n = 0;
    size_t na = mc->nasg;
    if (na == 0) {
        return 0;
    }
    size_t start = mc->rr++ % na;
    for (size_t k = 0; k < na && n < max; k++) {
        massign_t *a = &mc->asg[(start + k) % na];
        mtopic_t *t = a->topic;
        if (a->paused || a->stopped || t->deleted) {
            continue;
        }
        const mpart_t *p = &t->parts[a->partition];
        if (a->position < p->log_start || a->position > p->high) {
            apply_reset(mc, a, false);
            if (a->stopped) {
                continue;
            }
        }
        size_t si, ri;
        int64_t bytes = 0;
        if (a->position < p->high && part_locate(p, a->position, &si, &ri)) {
            while (n < max && bytes < mc->fetch_max_bytes && si < p->nsegs) {
                const mseg_t *s = &p->segs[si];
                if (ri >= s->n) {
                    si++;
                    ri = 0;
                    continue;
                }
                mrec_t *r = s->recs[ri++];
                rec_ref(r);
                mc->held[mc->nheld++] = r;
                mc->out[n++] = rec_view(r, t, a->partition);
                bytes += r->size;
                a->position = r->offset + 1;
                a->eof_sent = false;
            }
            if (si >= p->nsegs) {
                a->position = p->high; /* past the last stored record */
            }
        } else {
            a->position = p->high;
        }
        if (a->position == p->high && !a->eof_sent) {
            a->eof_sent = true;
            if (mc->c->callbacks.on_partition_eof &&
                grow((void **)&mc->eofs, &mc->eofs_cap, mc->neofs + 1, sizeof *mc->eofs)) {
                mc->eofs[mc->neofs++] = (eof_t){t->name, a->partition, p->high};
            }
        }
    }
    return n;
}

/* The error of a partition stopped by auto.offset.reset=error, if one is due. */
static rv_err_t due_error(mcons_t *mc, rv_error_t **err) {
    for (size_t i = 0; i < mc->nasg; i++) {
        massign_t *a = &mc->asg[i];
        if (a->error_due && !a->topic->deleted) {
            a->error_due = false;
            const mpart_t *p = &a->topic->parts[a->partition];
            if (a->no_commit) {
                return rv__error_set(err, RV_ERR_RANGE,
                                     "topic '%s' partition %d: no committed offset for %s%s%s "
                                     "and auto.offset.reset is '%s'; seek to start it",
                                     a->topic->name, (int)a->partition,
                                     mc->c->group ? "group '" : "a consumer without a group",
                                     mc->c->group ? mc->c->group : "", mc->c->group ? "'" : "",
                                     reset_name(mc->reset));
            }
            return rv__error_set(err, RV_ERR_RANGE,
                                 "topic '%s' partition %d: offset %lld is outside the stored "
                                 "range %lld..%lld and auto.offset.reset is '%s'; seek to "
                                 "restart it",
                                 a->topic->name, (int)a->partition, (long long)a->position,
                                 (long long)p->log_start, (long long)p->high,
                                 reset_name(mc->reset));
        }
    }
    return RV_OK;
}

static rv_err_t mem_poll(rv_consumer_t *c, const rv_record_t **records, size_t max, size_t *count,
                         int timeout_ms, rv_error_t **err) {
    mcons_t *mc = c->impl;
    mbroker_t *mb = mc->mb;
    release_held(mc);
    if (max > MAX_POLL_RECORDS) {
        max = MAX_POLL_RECORDS;
    }
    if (!grow_out(mc, max)) {
        return rv__error_set(err, RV_ERR_NOMEM, "poll: out of memory for %zu records", max);
    }
    int64_t deadline = timeout_ms < 0 ? -1 : rv_clock_mono_ms() + timeout_ms;
    size_t n = 0;
    int served = 0;
    rv_err_t e = RV_OK;
    lock(mb);
    for (;;) {
        int s = group_step(mc);
        if (s < 0) {
            e = rv__error_set(err, RV_ERR_NOMEM, "group '%s': out of memory rebalancing", c->group);
            break;
        }
        served += s;
        if ((e = due_error(mc, err)) != RV_OK) {
            break;
        }
        n = fetch(mc, max);
        if (n > 0 || served > 0 || mc->neofs > 0) {
            break;
        }
        if ((e = due_error(mc, err)) != RV_OK) {
            break; /* fetching found a position out of range */
        }
        if (deadline >= 0 && rv_clock_mono_ms() >= deadline) {
            break;
        }
        wait_until(mb, &mb->data_cond, deadline);
    }
    size_t neofs = mc->neofs;
    mc->neofs = 0;
    unlock(mb);
    for (size_t i = 0; i < neofs; i++) {
        c->callbacks.on_partition_eof(c->callbacks.opaque, c, mc->eofs[i].topic,
                                      mc->eofs[i].partition, mc->eofs[i].offset);
    }
    *records = mc->out;
    *count = n;
    return e;
}

static rv_err_t mem_commit(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                           rv_error_t **err) {
    mcons_t *mc = c->impl;
    mbroker_t *mb = mc->mb;
    rv_err_t e = RV_OK;
    lock(mb);
    if (tps) {
        for (size_t i = 0; i < count && !e; i++) {
            mtopic_t *t;
            e = find_partition(mb, tps[i].topic, tps[i].partition, &t, err);
        }
        for (size_t i = 0; i < count && !e; i++) {
            e = commit_store(mc->group, tps[i].topic, tps[i].partition, tps[i].offset);
        }
    } else {
        for (size_t i = 0; i < mc->nasg && !e; i++) {
            massign_t *a = &mc->asg[i];
            if (!a->stopped && !a->topic->deleted) {
                e = commit_store(mc->group, a->topic->name, a->partition, a->position);
            }
        }
    }
    unlock(mb);
    if (e == RV_ERR_NOMEM) {
        return rv__error_set(err, e, "group '%s': out of memory committing", c->group);
    }
    return e ? rv__error_prefix(err, e, "group '%s': commit: ", c->group) : RV_OK;
}

static rv_err_t mem_committed(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                              rv_error_t **err) {
    mcons_t *mc = c->impl;
    lock(mc->mb);
    for (size_t i = 0; i < count; i++) {
        tps[i].offset = committed_offset(mc->group, tps[i].topic, tps[i].partition);
    }
    unlock(mc->mb);
    return RV_OK;
}

static rv_err_t mem_position(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                             rv_error_t **err) {
    mcons_t *mc = c->impl;
    lock(mc->mb);
    for (size_t i = 0; i < count; i++) {
        massign_t *a = asg_find(mc, tps[i].topic, tps[i].partition);
        tps[i].offset = a ? visible_position(a) : RV_OFFSET_INVALID;
    }
    unlock(mc->mb);
    return RV_OK;
}

static rv_err_t not_assigned(rv_error_t **err, const char *what, const char *topic,
                             int32_t partition) {
    return rv__error_set(err, RV_ERR_STATE,
                         "%s: topic '%s' partition %d is not assigned to this consumer", what,
                         topic, (int)partition);
}

static rv_err_t mem_seek(rv_consumer_t *c, const char *topic, int32_t partition, int64_t offset,
                         rv_error_t **err) {
    mcons_t *mc = c->impl;
    lock(mc->mb);
    massign_t *a = asg_find(mc, topic, partition);
    if (!a || a->topic->deleted) {
        unlock(mc->mb);
        return not_assigned(err, "seek", topic, partition);
    }
    resolve_start(mc, a, offset);
    unlock(mc->mb);
    return RV_OK;
}

static rv_err_t mem_offsets_for_times(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                                      rv_error_t **err) {
    mcons_t *mc = c->impl;
    mbroker_t *mb = mc->mb;
    lock(mb);
    for (size_t i = 0; i < count; i++) {
        mtopic_t *t;
        rv_err_t e = find_partition(mb, tps[i].topic, tps[i].partition, &t, err);
        if (e) {
            unlock(mb);
            return rv__error_prefix(err, e, "offsets_for_times: ");
        }
        const mpart_t *p = &t->parts[tps[i].partition];
        int64_t ts = tps[i].offset, found = RV_OFFSET_END;
        for (size_t s = 0; s < p->nsegs && found == RV_OFFSET_END; s++) {
            const mseg_t *seg = &p->segs[s];
            if (seg->n == 0 || seg->max_ts < ts) {
                continue;
            }
            for (size_t k = 0; k < seg->n; k++) {
                if (seg->recs[k]->timestamp_ms >= ts) {
                    found = seg->recs[k]->offset;
                    break;
                }
            }
        }
        tps[i].offset = found;
    }
    unlock(mb);
    return RV_OK;
}

static rv_err_t mem_pause(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                          bool pause, rv_error_t **err) {
    mcons_t *mc = c->impl;
    rv_err_t e = RV_OK;
    lock(mc->mb);
    for (size_t i = 0; i < count; i++) {
        massign_t *a = asg_find(mc, tps[i].topic, tps[i].partition);
        if (a) {
            a->paused = pause;
        } else if (!e) {
            e = not_assigned(err, pause ? "pause" : "resume", tps[i].topic, tps[i].partition);
        }
    }
    unlock(mc->mb);
    return e;
}

const rv_broker_ops_t rv__memory_broker_ops = {
    .version = RV_BROKER_OPS_VERSION,
    .scheme = "memory",
    .open = mem_open,
    .close = mem_close,
    .create_topic = mem_create_topic,
    .delete_topic = mem_delete_topic,
    .list_topics = mem_list_topics,
    .describe_topic = mem_describe_topic,
    .watermarks = mem_watermarks,
    .producer_new = mem_producer_new,
    .producer_destroy = mem_producer_destroy,
    .send = mem_send,
    .producer_poll = mem_producer_poll,
    .flush = mem_flush,
    .consumer_new = mem_consumer_new,
    .consumer_destroy = mem_consumer_destroy,
    .subscribe = mem_subscribe,
    .assign = mem_assign,
    .poll = mem_poll,
    .commit = mem_commit,
    .committed = mem_committed,
    .position = mem_position,
    .seek = mem_seek,
    .offsets_for_times = mem_offsets_for_times,
    .pause = mem_pause,
};
