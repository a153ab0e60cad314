/*
 * kafka_producer.c: producers and transactions of the `kafka://` broker.
 *
 * A producer is one librdkafka producer with idempotence on (acks=all, no duplicates or
 * reordering across retries) and message.timeout.ms set to broker.availability.timeout.ms, so
 * a record the cluster cannot take fails in its delivery report instead of waiting for ever.
 * rivulet chooses every record's partition itself (an explicit one, murmur2 of the key as
 * Kafka's Java client does, or round-robin without a key) against the broker's topic cache, so
 * an unknown topic or partition is refused at once and keys land where rv_murmur2_partition()
 * says. Records are handed to rd_kafka_produceva() in one copy; delivery reports come from
 * librdkafka's dr_msg_cb in the thread that polls or flushes. With a transactional.id the
 * producer is transactional: its transactions are initialised at the first
 * rv_producer_begin_transaction() (broker.c caps the consumer offsets it puts in a transaction
 * through the chunk layer, as a commit's are). This file must never block in rv_producer_send()
 * except to learn a topic it has not seen, and never call the delivery callback with a lock
 * held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/kafka_int.h"
#include "rivulet/clock.h"

/* Bytes a record batch adds around its records, and a record around its key and value at
 * most (varints at their longest), and a header around its name and value: what a record
 * alone in a batch weighs against a topic's max.message.bytes. */
#define BATCH_OVERHEAD 61
#define RECORD_OVERHEAD 21
#define HEADER_OVERHEAD 10

/* Headers taken on the stack before allocating. */
#define STACK_HEADERS 16

/* A topic this producer writes to. */
typedef struct ptopic_s {
    char *name;
    rd_kafka_topic_t *rkt;
    int32_t partitions;
    int64_t max_bytes;
    int64_t checked_ms; /* when the broker's cache last confirmed it (coarse_ms()) */
} ptopic_t;

typedef struct kprod_s {
    kclient_t kc; /* first: librdkafka's opaque */
    rv_producer_t *p;
    atomic_uint rr; /* the round-robin counter of keyless records */
    atomic_uint unreachable; /* records failed because the cluster was out of reach */
    pthread_mutex_t lock; /* guards topics */
    ptopic_t *topics;
    size_t ntopics;
    size_t cap;
    bool transactional;
    pthread_mutex_t txn_lock; /* serialises transaction calls */
    bool txn_ready;           /* init_transactions done */
    bool in_txn;
} kprod_t;

/* Delivery reports served by this thread's current poll or flush. */
static _Thread_local int served;

/* ---- delivery reports ----------------------------------------------------------------------- */

/* The rivulet code of a failed delivery. message.timeout.ms is broker.availability.timeout.ms,
 * so a record that timed out found no broker to take it for that long: a transport failure,
 * whether or not librdkafka's "all brokers down" event (queued behind the report, at times)
 * has been served yet. */
static rv_err_t delivery_err(kprod_t *kp, rd_kafka_resp_err_t re) {
    if (re == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) {
        return RV_ERR_TRANSPORT;
    }
    if (atomic_load(&kp->kc.fatal)) {
        return RV_ERR_FATAL;
    }
    rv_err_t e = rv__kafka_err(re);
    return e == RV_ERR_NOT_FOUND && re == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ? RV_ERR_INVALID_ARG
                                                                               : e;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    kprod_t *kp = opaque;
    rv_producer_t *p = kp->p;
    served++;
    rv_err_t e = m->err ? delivery_err(kp, m->err) : RV_OK;
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (e == RV_ERR_TRANSPORT) {
        atomic_fetch_add(&kp->unreachable, 1);
    }
    if (e) {
        rv__log(&p->broker->log, RV_LOG_WARNING, "kafka",
                "producer: a record for topic '%s' partition %d was not stored: %s (%s)", topic,
                (int)m->partition, rd_kafka_err2str(m->err), rd_kafka_err2name(m->err));
    } else {
        rv__kafka_alive(&kp->kc);
    }
    if (!p->delivery_cb) {
        return;
    }
    rv_header_t stack[STACK_HEADERS], *hv = stack;
    rd_kafka_headers_t *hdrs = NULL;
    size_t nh = 0;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        nh = rd_kafka_header_cnt(hdrs);
        if (nh > STACK_HEADERS && (hv = malloc(nh * sizeof *hv)) == NULL) {
            hv = stack;
            nh = STACK_HEADERS; /* out of memory: report what fits */
        }
        for (size_t i = 0; i < nh; i++) {
            const void *val = NULL;
            size_t size = 0;
            rd_kafka_header_get_all(hdrs, i, &hv[i].name, &val, &size);
            hv[i].value = val;
            hv[i].value_len = size;
        }
    }
    rv_record_t r = {.topic = topic,
                     .partition = m->partition,
                     .offset = e ? RV_OFFSET_INVALID : m->offset,
                     .timestamp_ms = rd_kafka_message_timestamp(m, NULL),
                     .key = m->key,
                     .key_len = m->key ? m->key_len : 0,
                     .value = m->payload,
                     .value_len = m->payload ? m->len : 0,
                     .headers = nh ? hv : NULL,
                     .header_count = nh};
    p->delivery_cb(p->opaque, &r, e, m->_private);
    if (hv != stack) {
        free(hv);
    }
}

/* ---- creating and destroying ---------------------------------------------------------------- */

static rv_err_t set_int(rd_kafka_conf_t *rc, const char *name, long long v, rv_error_t **err) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return rv__kafka_conf_set(rc, name, buf, "producer", err);
}

rv_err_t rv__kafka_producer_new(rv_producer_t *p, rv_error_t **err) {
    kbroker_t *kb = p->broker->impl;
    kprod_t *kp = calloc(1, sizeof *kp);
    if (!kp) {
        return rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory for a producer",
                             p->broker->url);
    }
    kp->p = p;
    const char *txn_id = rv__conf_str(p->conf, RV_CONF_ID_TRANSACTIONAL_ID);
    kp->transactional = txn_id && txn_id[0];
    int64_t queue_kb = (rv__conf_int(p->conf, RV_CONF_ID_QUEUE_MAX_BYTES) + 1023) / 1024;
    rd_kafka_conf_t *rc = NULL;
    rv_err_t e = rv__kafka_conf_new(kb, &kp->kc, "producer", &rc, err);
    if (e) {
        free(kp);
        return e;
    }
    e = rv__kafka_conf_set(rc, "enable.idempotence", "true", "producer", err);
    if (!e) {
        e = rv__kafka_conf_set(rc, "partitioner", "murmur2_random", "producer", err);
    }
    if (!e) {
        e = set_int(rc, "linger.ms", rv__conf_int(p->conf, RV_CONF_ID_LINGER_MS), err);
    }
    if (!e) {
        e = set_int(rc, "batch.size", rv__conf_int(p->conf, RV_CONF_ID_BATCH_SIZE), err);
    }
    if (!e) {
        e = set_int(rc, "queue.buffering.max.kbytes", queue_kb < INT32_MAX ? queue_kb : INT32_MAX,
                    err);
    }
    if (!e) {
        e = set_int(rc, "message.timeout.ms", kb->avail_ms, err);
    }
    if (!e && kp->transactional) {
        e = rv__kafka_conf_set(rc, "transactional.id", txn_id, "producer", err);
        if (!e && kb->avail_ms > 60000) {
            e = set_int(rc, "transaction.timeout.ms", kb->avail_ms, err);
        }
    }
    if (e) {
        rd_kafka_conf_destroy(rc);
        free(kp);
        return e;
    }
    rd_kafka_conf_set_dr_msg_cb(rc, on_delivery);
    e = rv__kafka_conf_finish(kb, &kp->kc, p->conf, RD_KAFKA_PRODUCER, rc, err);
    if (e) {
        free(kp);
        return e;
    }
    pthread_mutex_init(&kp->lock, NULL);
    pthread_mutex_init(&kp->txn_lock, NULL);
    p->impl = kp;
    return RV_OK;
}

void rv__kafka_producer_destroy(rv_producer_t *p) {
    kprod_t *kp = p->impl;
    if (kp->in_txn) {
        rd_kafka_error_t *error = rd_kafka_abort_transaction(kp->kc.rk, (int)kp->kc.kb->avail_ms);
        if (error) {
            rd_kafka_error_destroy(error);
        }
    }
    for (size_t i = 0; i < kp->ntopics; i++) {
        rd_kafka_topic_destroy(kp->topics[i].rkt);
        free(kp->topics[i].name);
    }
    free(kp->topics);
    rd_kafka_destroy(kp->kc.rk);
    pthread_mutex_destroy(&kp->lock);
    pthread_mutex_destroy(&kp->txn_lock);
    free(kp);
}

/* ---- sending -------------------------------------------------------------------------------- */

static ptopic_t *ptopic_find(kprod_t *kp, const char *name) {
    for (size_t i = 0; i < kp->ntopics; i++) {
        if (strcmp(kp->topics[i].name, name) == 0) {
            return &kp->topics[i];
        }
    }
    return NULL;
}

/* Monotonic milliseconds from the coarse clock: every send reads it, and the topic cache it
 * dates is trusted for RV__KAFKA_CACHE_MS, so a few milliseconds of resolution are plenty and
 * the cost of a precise clock read per record is not. */
static int64_t coarse_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fills *out with the topic's handle and limits, learning them from the broker's topic cache
 * when the producer has not written to the topic lately. */
static rv_err_t producer_topic(kprod_t *kp, const char *name, ptopic_t *out) {
    int64_t now = coarse_ms();
    pthread_mutex_lock(&kp->lock);
    ptopic_t *t = ptopic_find(kp, name);
    if (t && now - t->checked_ms < RV__KAFKA_CACHE_MS) {
        *out = *t;
        pthread_mutex_unlock(&kp->lock);
        return RV_OK;
    }
    pthread_mutex_unlock(&kp->lock);

    int32_t partitions = 0;
    int64_t max_bytes = -1;
    rv_error_t *err = NULL;
    rv_err_t e = rv__kafka_topic(kp->kc.kb, name, &partitions, &max_bytes, &err);
    if (e) {
        rv__log(&kp->p->broker->log, RV_LOG_INFO, "kafka", "producer: %s",
                rv_error_message(err));
        rv_error_destroy(err);
        return e;
    }
    pthread_mutex_lock(&kp->lock);
    t = ptopic_find(kp, name);
    if (!t) {
        if (kp->ntopics == kp->cap) {
            size_t cap = kp->cap ? kp->cap * 2 : 4;
            ptopic_t *v = realloc(kp->topics, cap * sizeof *v);
            if (!v) {
                pthread_mutex_unlock(&kp->lock);
                return RV_ERR_NOMEM;
            }
            kp->topics = v;
            kp->cap = cap;
        }
        t = &kp->topics[kp->ntopics];
        *t = (ptopic_t){.name = strdup(name), .rkt = rd_kafka_topic_new(kp->kc.rk, name, NULL)};
        if (!t->name || !t->rkt) {
            free(t->name);
            if (t->rkt) {
                rd_kafka_topic_destroy(t->rkt);
            }
            pthread_mutex_unlock(&kp->lock);
            return RV_ERR_NOMEM;
        }
        kp->ntopics++;
    }
    t->partitions = partitions;
    t->max_bytes = max_bytes;
    t->checked_ms = now;
    *out = *t;
    pthread_mutex_unlock(&kp->lock);
    return RV_OK;
}

/* What a record alone in a batch weighs against max.message.bytes. */
static int64_t batch_bytes(const rv_record_t *rec) {
    int64_t n = BATCH_OVERHEAD + RECORD_OVERHEAD + (int64_t)rec->key_len + (int64_t)rec->value_len;
    for (size_t i = 0; i < rec->header_count; i++) {
        n += HEADER_OVERHEAD + (int64_t)strlen(rec->headers[i].name) +
             (int64_t)rec->headers[i].value_len;
    }
    return n;
}

/* The rivulet code of a record librdkafka would not queue. */
static rv_err_t produce_err(kprod_t *kp, rd_kafka_resp_err_t re) {
    switch (re) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return rv__kafka_unavailable(&kp->kc, NULL) ? RV_ERR_TRANSPORT : RV_ERR_AGAIN;
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        return RV_ERR_INVALID_ARG;
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__NOT_CONFIGURED:
        return RV_ERR_STATE;
    default:
        return atomic_load(&kp->kc.fatal) ? RV_ERR_FATAL : rv__kafka_err(re);
    }
}

rv_err_t rv__kafka_send(rv_producer_t *p, const rv_record_t *rec, void *rec_opaque) {
    kprod_t *kp = p->impl;
    if (RV_UNLIKELY(atomic_load_explicit(&kp->kc.fatal, memory_order_relaxed))) {
        return RV_ERR_FATAL;
    }
    ptopic_t t;
    rv_err_t e = producer_topic(kp, rec->topic, &t);
    if (e) {
        return e;
    }
    uint32_t rr = rec->partition < 0 && !rec->key ? atomic_fetch_add(&kp->rr, 1) : 0;
    int32_t partition = rv__choose_partition(rec, t.partitions, &rr);
    if (partition < 0) {
        return RV_ERR_INVALID_ARG;
    }
    if (t.max_bytes > 0 && batch_bytes(rec) > t.max_bytes) {
        rv__log(&p->broker->log, RV_LOG_INFO, "kafka",
                "producer: a record of %lld bytes exceeds max.message.bytes=%lld of topic '%s'",
                (long long)batch_bytes(rec), (long long)t.max_bytes, rec->topic);
        return RV_ERR_LIMIT;
    }
    rd_kafka_vu_t stack[8 + STACK_HEADERS], *vu = stack;
    size_t need = 8 + rec->header_count;
    if (need > RV_ARRAY_LEN(stack) && (vu = malloc(need * sizeof *vu)) == NULL) {
        return RV_ERR_NOMEM;
    }
    size_t n = 0;
    vu[n].vtype = RD_KAFKA_VTYPE_RKT;
    vu[n++].u.rkt = t.rkt;
    vu[n].vtype = RD_KAFKA_VTYPE_PARTITION;
    vu[n++].u.i32 = partition;
    vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
    vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[n].u.mem.ptr = (void *)rec->value;
    vu[n++].u.mem.size = rec->value ? rec->value_len : 0;
    if (rec->key) {
        vu[n].vtype = RD_KAFKA_VTYPE_KEY;
        vu[n].u.mem.ptr = (void *)rec->key;
        vu[n++].u.mem.size = rec->key_len;
    }
    vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[n++].u.ptr = rec_opaque;
    if (rec->timestamp_ms != 0) {
        vu[n].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
        vu[n++].u.i64 = rec->timestamp_ms;
    }
    for (size_t i = 0; i < rec->header_count; i++) {
        vu[n].vtype = RD_KAFKA_VTYPE_HEADER;
        vu[n].u.header.name = rec->headers[i].name;
        vu[n].u.header.val = rec->headers[i].value;
        vu[n++].u.header.size = (ssize_t)rec->headers[i].value_len;
    }
    rd_kafka_error_t *error = rd_kafka_produceva(kp->kc.rk, vu, n);
    if (vu != stack) {
        free(vu);
    }
    if (RV_LIKELY(!error)) {
        return RV_OK;
    }
    rd_kafka_resp_err_t re = rd_kafka_error_code(error);
    e = produce_err(kp, re);
    if (e != RV_ERR_AGAIN) {
        rv__log(&p->broker->log, RV_LOG_INFO, "kafka",
                "producer: a record for topic '%s' partition %d was refused: %s",
                rec->topic, (int)partition, rd_kafka_error_string(error));
    }
    rd_kafka_error_destroy(error);
    return e;
}

int rv__kafka_producer_poll(rv_producer_t *p, int timeout_ms) {
    kprod_t *kp = p->impl;
    served = 0;
    rd_kafka_poll(kp->kc.rk, timeout_ms);
    int n = served;
    served = 0;
    return n;
}

rv_err_t rv__kafka_flush(rv_producer_t *p, int timeout_ms, rv_error_t **err) {
    kprod_t *kp = p->impl;
    int64_t start = rv_clock_mono_ms();
    int64_t deadline = timeout_ms < 0 ? -1 : start + timeout_ms;
    unsigned lost_before = atomic_load(&kp->unreachable);
    for (;;) {
        int64_t now = rv_clock_mono_ms();
        int slice = RV__KAFKA_SLICE_MS;
        if (deadline >= 0 && deadline - now < slice) {
            slice = deadline > now ? (int)(deadline - now) : 0;
        }
        if (rd_kafka_flush(kp->kc.rk, slice) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            unsigned lost = atomic_load(&kp->unreachable) - lost_before;
            if (lost > 0) {
                return rv__error_set(err, RV_ERR_TRANSPORT,
                                     "broker '%s': flush: %u records were not delivered: no "
                                     "broker of %s answered within broker.availability."
                                     "timeout.ms (%lld ms); their delivery reports say so",
                                     p->broker->url, lost, kp->kc.kb->bootstrap,
                                     (long long)kp->kc.kb->avail_ms);
            }
            return RV_OK;
        }
        if (atomic_load(&kp->kc.fatal)) {
            return rv__kafka_fatal(&kp->kc, err);
        }
        if (rv__kafka_unavailable(&kp->kc, err)) {
            return rv__error_prefix(err, RV_ERR_TRANSPORT,
                                    "flush: %d records or requests outstanding: ",
                                    rd_kafka_outq_len(kp->kc.rk));
        }
        if (deadline >= 0 && rv_clock_mono_ms() >= deadline) {
            return rv__error_set(err, RV_ERR_TIMEOUT,
                                 "broker '%s': flush: %d records or requests still outstanding "
                                 "after %d ms",
                                 p->broker->url, rd_kafka_outq_len(kp->kc.rk), timeout_ms);
        }
    }
}

/* ---- transactions --------------------------------------------------------------------------- */

/* Converts a transaction error: fatal ones mean the producer must be closed, those that need
 * an abort are a STATE error, retriable ones may simply be called again. */
static rv_err_t txn_error(kprod_t *kp, rd_kafka_error_t *error, const char *what,
                          rv_error_t **err) {
    rd_kafka_resp_err_t re = rd_kafka_error_code(error);
    rv_err_t e;
    const char *advice;
    if (rd_kafka_error_is_fatal(error)) {
        e = RV_ERR_FATAL;
        advice = "fatal: close the producer";
    } else if (rd_kafka_error_txn_requires_abort(error)) {
        e = RV_ERR_STATE;
        advice = "abort the transaction, then start it again";
    } else if (rd_kafka_error_is_retriable(error)) {
        e = RV_ERR_AGAIN;
        advice = "retriable: call it again";
    } else if (re == RD_KAFKA_RESP_ERR__NOT_CONFIGURED) {
        e = RV_ERR_STATE;
        advice = "the producer has no transactional.id";
    } else {
        e = rv__kafka_err(re);
        advice = e == RV_ERR_STATE ? "not valid in the transaction's current state"
                                   : "the transaction is unchanged";
    }
    rv__error_set(err, e, "broker '%s': %s: %s (%s; %s)", kp->p->broker->url, what,
                  rd_kafka_error_string(error), rd_kafka_err2name(re), advice);
    rd_kafka_error_destroy(error);
    return e;
}

static int txn_timeout(kprod_t *kp, int timeout_ms) {
    return timeout_ms < 0 ? (int)kp->kc.kb->avail_ms : timeout_ms;
}

rv_err_t rv__kafka_begin_transaction(rv_producer_t *p, rv_error_t **err) {
    kprod_t *kp = p->impl;
    if (!kp->transactional) {
        return rv__error_set(err, RV_ERR_STATE,
                             "broker '%s': begin transaction: the producer has no "
                             "transactional.id",
                             p->broker->url);
    }
    pthread_mutex_lock(&kp->txn_lock);
    rd_kafka_error_t *error = NULL;
    if (!kp->txn_ready) {
        error = rd_kafka_init_transactions(kp->kc.rk, (int)kp->kc.kb->avail_ms);
        if (error) {
            rv_err_t e = txn_error(kp, error, "init transactions", err);
            pthread_mutex_unlock(&kp->txn_lock);
            return e;
        }
        kp->txn_ready = true;
    }
    error = rd_kafka_begin_transaction(kp->kc.rk);
    rv_err_t e = error ? txn_error(kp, error, "begin transaction", err) : RV_OK;
    if (!e) {
        kp->in_txn = true;
    }
    pthread_mutex_unlock(&kp->txn_lock);
    return e;
}

rv_err_t rv__kafka_send_offsets_to_transaction(rv_producer_t *p, rv_consumer_t *c,
                                               const rv_topic_partition_t *tps, size_t count,
                                               int timeout_ms, rv_error_t **err) {
    kprod_t *kp = p->impl;
    if (c->broker->ops != p->broker->ops) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "send offsets to transaction: the consumer's broker '%s' is not a "
                             "Kafka broker",
                             c->broker->url);
    }
    if (!c->group) {
        return rv__error_set(err, RV_ERR_STATE,
                             "send offsets to transaction: the consumer has no group");
    }
    rd_kafka_t *crk = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;
    rv_err_t e = rv__kafka_consumer_offsets(c, tps, count, &crk, &list, err);
    if (e) {
        return e;
    }
    if (list->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(list);
        return RV_OK;
    }
    rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata(crk);
    pthread_mutex_lock(&kp->txn_lock);
    rd_kafka_error_t *error = rd_kafka_send_offsets_to_transaction(kp->kc.rk, list, cgmd,
                                                                   txn_timeout(kp, timeout_ms));
    e = error ? txn_error(kp, error, "send offsets to transaction", err) : RV_OK;
    pthread_mutex_unlock(&kp->txn_lock);
    rd_kafka_consumer_group_metadata_destroy(cgmd);
    rd_kafka_topic_partition_list_destroy(list);
    return e;
}

rv_err_t rv__kafka_commit_transaction(rv_producer_t *p, int timeout_ms, rv_error_t **err) {
    kprod_t *kp = p->impl;
    pthread_mutex_lock(&kp->txn_lock);
    rd_kafka_error_t *error = rd_kafka_commit_transaction(kp->kc.rk, txn_timeout(kp, timeout_ms));
    rv_err_t e = error ? txn_error(kp, error, "commit transaction", err) : RV_OK;
    if (!e) {
        kp->in_txn = false;
    }
    pthread_mutex_unlock(&kp->txn_lock);
    return e;
}

rv_err_t rv__kafka_abort_transaction(rv_producer_t *p, int timeout_ms, rv_error_t **err) {
    kprod_t *kp = p->impl;
    pthread_mutex_lock(&kp->txn_lock);
    rd_kafka_error_t *error = rd_kafka_abort_transaction(kp->kc.rk, txn_timeout(kp, timeout_ms));
    rv_err_t e = error ? txn_error(kp, error, "abort transaction", err) : RV_OK;
    if (!e) {
        kp->in_txn = false;
    }
    pthread_mutex_unlock(&kp->txn_lock);
    return e;
}
