/*
 * kafka_consumer.c: consumers of the `kafka://` broker, on librdkafka's high-level consumer.
 *
 * A consumer with a group subscribes through the group (cooperative-sticky assignment; the
 * rebalance callback resolves each new partition's starting offset from the group's commits or
 * auto.offset.reset before telling on_assign, and calls on_revoke before giving partitions
 * up); without a group it assigns partitions by hand under a private group id that never joins
 * anything. Offsets are committed only when asked, synchronously. Polls take up to `max`
 * messages from librdkafka's queue and hand out views into them, kept until the next poll, so
 * no record is copied. rivulet keeps each assigned partition's position itself (set by assign
 * and seek, moved by every record and end-of-partition event), because its contract is about
 * what the application has been given, and drops anything librdkafka still holds for a
 * partition that is paused or no longer assigned. Two waits work around librdkafka 2.0.2:
 * assign learns the topics' leaders first (learn_leaders()), and closing a subscribed consumer
 * waits for its first rebalance (await_first_rebalance()). This file must never return a
 * record twice within one assignment, never call a user callback from a librdkafka thread, and
 * never wait longer than broker.availability.timeout.ms on the cluster.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/kafka_int.h"
#include "rivulet/clock.h"

/* The most records one poll returns, whatever `max` says. */
#define MAX_POLL_RECORDS 65536

/*
 * The read-ahead: librdkafka fetches for a consumer until this many records, or this many KiB
 * of their values and keys, wait to be polled (over all its partitions), plus what one fetch
 * response brings. Each record also costs about 165 bytes of bookkeeping, so librdkafka's
 * defaults (100000 records, 64 MiB) let a lagging consumer hold up to 64 MiB and more (about
 * 30 MiB for records of 130 bytes); these keep it to a few MiB, which a consumer polling a
 * record every microsecond drains in milliseconds. The kafka.* properties override both.
 */
#define READ_AHEAD_MESSAGES "8192"
#define READ_AHEAD_KBYTES "1024"

/*
 * Once its read-ahead is full, librdkafka before 2.1 does not look again until its broker
 * thread wakes for another reason, or after a second: a consumer that drained the read-ahead
 * sat idle for the rest of that second. 2.1 added fetch.queue.backoff.ms for this, and a
 * consumer sets it to FETCH_QUEUE_BACKOFF_MS; on older versions a poll that finds nothing to
 * hand out while partitions have records left wakes their brokers' threads with an offset
 * request (kick_fetch()), once the consumer has taken at least half a read-ahead since the
 * last such request (else the fetcher cannot have stopped for a full read-ahead), and at most
 * once per KICK_INTERVAL_MS.
 */
#define FETCH_QUEUE_BACKOFF_MS "10"
#define KICK_INTERVAL_MS 5
#define KICK_WAIT_MS 1

/* The longest rv_consumer_assign() waits to learn the leaders of the topics it assigns: the
 * delay librdkafka's own retry would add (see learn_leaders()). */
#define LEADERS_WAIT_MS 500

/* The longest rv_consumer_close() waits for a subscribed consumer's first rebalance (see
 * await_first_rebalance()). A real broker delays a new group's first rebalance by
 * group.initial.rebalance.delay.ms (3 s by default), librdkafka's mock by 3 s too. */
#define FIRST_REBALANCE_WAIT_MS 10000

enum { RESET_EARLIEST = 0, RESET_LATEST = 1, RESET_ERROR = 2 };

/* A partition assigned to this consumer. */
typedef struct kasg_s {
    char *topic;
    int32_t partition;
    /* The next offset to hand out; RV_OFFSET_BEGINNING, END or STORED until the first record
     * or end-of-partition event tells; RV_OFFSET_INVALID when stopped by an offset error. */
    int64_t position;
    bool paused;
    bool no_commit; /* stopped for want of a committed offset (else out of range) */
} kasg_t;

typedef struct kcons_s {
    kclient_t kc; /* first: librdkafka's opaque */
    rv_consumer_t *c;
    int reset;
    bool subscribed;
    kasg_t *asg;
    size_t nasg;
    size_t asg_cap;
    size_t hint; /* where the last record's partition was found */
    /* the last poll's messages and the views into them */
    rd_kafka_message_t **msgs;
    rv_record_t *out;
    size_t *hdr_at; /* each record's first header in hdrs */
    size_t nmsgs;
    size_t cap;
    rv_header_t *hdrs;
    size_t nhdrs;
    size_t hdrs_cap;
    int served; /* rebalance callbacks served during the current poll */
    bool rebalanced; /* the group has answered this member's first join with an assignment */
    bool closing; /* in close, waiting for that: rebalances do not reach the user */
    rv_error_t *pending; /* an error met after records were taken, for the next poll */
    bool kick;           /* librdkafka < 2.1: wake idle fetchers (kick_fetch()) */
    int64_t kicked_ms;   /* the last kick */
    int64_t ra_msgs, ra_bytes;       /* the read-ahead's bounds, as librdkafka took them */
    int64_t taken_msgs, taken_bytes; /* records handed out since the last kick */
} kcons_t;

static const char *reset_name(int reset) {
    return reset == RESET_EARLIEST ? "earliest" : reset == RESET_LATEST ? "latest" : "error";
}

/* ---- the assignment table ------------------------------------------------------------------- */

static kasg_t *asg_find(kcons_t *kcs, const char *topic, int32_t partition) {
    for (size_t k = 0; k < kcs->nasg; k++) {
        size_t i = (kcs->hint + k) % kcs->nasg;
        kasg_t *a = &kcs->asg[i];
        if (a->partition == partition && strcmp(a->topic, topic) == 0) {
            kcs->hint = i;
            return a;
        }
    }
    return NULL;
}

static rv_err_t asg_add(kcons_t *kcs, const char *topic, int32_t partition, int64_t position) {
    kasg_t *a = asg_find(kcs, topic, partition);
    if (a) {
        a->position = position;
        a->paused = false;
        return RV_OK;
    }
    if (kcs->nasg == kcs->asg_cap) {
        size_t cap = kcs->asg_cap ? kcs->asg_cap * 2 : 8;
        kasg_t *v = realloc(kcs->asg, cap * sizeof *v);
        if (!v) {
            return RV_ERR_NOMEM;
        }
        kcs->asg = v;
        kcs->asg_cap = cap;
    }
    char *name = strdup(topic);
    if (!name) {
        return RV_ERR_NOMEM;
    }
    kcs->asg[kcs->nasg++] = (kasg_t){.topic = name, .partition = partition, .position = position};
    return RV_OK;
}

static void asg_remove(kcons_t *kcs, const char *topic, int32_t partition) {
    kasg_t *a = asg_find(kcs, topic, partition);
    if (a) {
        free(a->topic);
        *a = kcs->asg[--kcs->nasg];
        kcs->hint = 0;
    }
}

static void asg_clear(kcons_t *kcs) {
    for (size_t i = 0; i < kcs->nasg; i++) {
        free(kcs->asg[i].topic);
    }
    kcs->nasg = 0;
    kcs->hint = 0;
}

/* ---- positions ------------------------------------------------------------------------------ */

/* The offset a partition without a committed offset starts from, by auto.offset.reset:
 * RV_OFFSET_BEGINNING, RV_OFFSET_END or RV_OFFSET_INVALID (for "error"). */
static int64_t reset_offset(const kcons_t *kcs) {
    return kcs->reset == RESET_EARLIEST  ? RV_OFFSET_BEGINNING
           : kcs->reset == RESET_LATEST ? RV_OFFSET_END
                                        : RV_OFFSET_INVALID;
}

/* Replaces the logical offsets of `list` (BEGINNING, END) by the partitions' watermarks. */
static rv_err_t resolve_logical(kcons_t *kcs, rd_kafka_topic_partition_list_t *list,
                                rv_error_t **err) {
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        if (tp->offset != RD_KAFKA_OFFSET_BEGINNING && tp->offset != RD_KAFKA_OFFSET_END) {
            continue;
        }
        int64_t lo = 0, hi = 0;
        int64_t deadline = rv_clock_mono_ms() + kcs->kc.kb->avail_ms;
        int tries = 0;
        rd_kafka_resp_err_t re;
        while ((re = rd_kafka_query_watermark_offsets(kcs->kc.rk, tp->topic, tp->partition, &lo,
                                                      &hi, (int)kcs->kc.kb->avail_ms)) != 0 &&
               rv__kafka_retriable(re) && rv__kafka_backoff(kcs->kc.rk, deadline, &tries)) {
        }
        if (re) {
            return rv__error_set(err,
                                 rv__kafka_retriable(re) ? RV_ERR_TRANSPORT : rv__kafka_err(re),
                                 "topic '%s' partition %d: cannot read its watermarks: %s",
                                 tp->topic, (int)tp->partition, rd_kafka_err2str(re));
        }
        tp->offset = tp->offset == RD_KAFKA_OFFSET_BEGINNING ? lo : hi;
    }
    return RV_OK;
}

/* Replaces RV_OFFSET_STORED in `list` by the group's committed offsets, or by what
 * auto.offset.reset says (resolved to a watermark; RV_OFFSET_INVALID for "error"). */
static rv_err_t resolve_stored(kcons_t *kcs, rd_kafka_topic_partition_list_t *list,
                               rv_error_t **err) {
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(list->cnt);
    if (!q) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < list->cnt; i++) {
        if (list->elems[i].offset == RD_KAFKA_OFFSET_STORED) {
            rd_kafka_topic_partition_list_add(q, list->elems[i].topic, list->elems[i].partition);
        }
    }
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    int64_t deadline = rv_clock_mono_ms() + kcs->kc.kb->avail_ms;
    int tries = 0;
    while (q->cnt > 0 &&
           (re = rd_kafka_committed(kcs->kc.rk, q, (int)kcs->kc.kb->avail_ms)) != 0 &&
           rv__kafka_retriable(re) && rv__kafka_backoff(kcs->kc.rk, deadline, &tries)) {
    }
    for (int i = 0; !re && i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        if (tp->offset != RD_KAFKA_OFFSET_STORED) {
            continue;
        }
        rd_kafka_topic_partition_t *c = rd_kafka_topic_partition_list_find(q, tp->topic,
                                                                           tp->partition);
        tp->offset = c && c->offset >= 0 ? c->offset : reset_offset(kcs);
    }
    rd_kafka_topic_partition_list_destroy(q);
    if (re) {
        return rv__error_set(err, rv__kafka_retriable(re) ? RV_ERR_TRANSPORT : rv__kafka_err(re),
                             "group '%s': cannot read committed offsets: %s (%s)", kcs->c->group,
                             rd_kafka_err2str(re), rd_kafka_err2name(re));
    }
    rv__kafka_alive(&kcs->kc);
    return resolve_logical(kcs, list, err);
}

/* The position of an assigned partition as the application sees it: the next offset it will
 * be given (resolving a logical start), or RV_OFFSET_INVALID when it is stopped. */
static rv_err_t asg_position(kcons_t *kcs, const kasg_t *a, int64_t *out, rv_error_t **err) {
    if (a->position >= 0 || a->position == RV_OFFSET_INVALID) {
        *out = a->position;
        return RV_OK;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    if (!l) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory");
    }
    rd_kafka_topic_partition_list_add(l, a->topic, a->partition)->offset = a->position;
    rv_err_t e = resolve_stored(kcs, l, err);
    *out = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    return e;
}

/* ---- rebalances ----------------------------------------------------------------------------- */

/* Calls on_assign or on_revoke with the positions of `parts`. */
static void call_user(kcons_t *kcs, bool assign, const rd_kafka_topic_partition_list_t *parts) {
    rv_consumer_t *c = kcs->c;
    void (*cb)(void *, rv_consumer_t *, const rv_topic_partition_t *, size_t) =
        assign ? c->callbacks.on_assign : c->callbacks.on_revoke;
    if (!cb || parts->cnt == 0) {
        return;
    }
    rv_topic_partition_t *tps = calloc((size_t)parts->cnt, sizeof *tps);
    if (!tps) {
        rv__log(&c->broker->log, RV_LOG_ERROR, "kafka",
                "group '%s': out of memory calling the rebalance callback", c->group);
        return;
    }
    size_t n = 0;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        kasg_t *a = asg_find(kcs, tp->topic, tp->partition);
        if (!assign && !a) {
            continue; /* taken while closing: the user never had it */
        }
        int64_t pos = RV_OFFSET_INVALID;
        if (a && asg_position(kcs, a, &pos, NULL) != RV_OK) {
            pos = a->position;
        }
        tps[n++] = (rv_topic_partition_t){tp->topic, tp->partition, pos};
    }
    if (n > 0) {
        cb(c->callbacks.opaque, c, tps, n);
    }
    free(tps);
}

static void assigned(kcons_t *kcs, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                     bool cooperative) {
    rv_consumer_t *c = kcs->c;
    if (kcs->closing) {
        /* Taken only to be given back by the close that follows: no offsets, no user. */
        rd_kafka_error_t *error = NULL;
        if (cooperative) {
            error = rd_kafka_incremental_assign(rk, parts);
        } else {
            rd_kafka_assign(rk, parts);
        }
        if (error) {
            rd_kafka_error_destroy(error);
        }
        return;
    }
    for (int i = 0; i < parts->cnt; i++) {
        parts->elems[i].offset = RD_KAFKA_OFFSET_STORED;
    }
    rv_error_t *err = NULL;
    if (resolve_stored(kcs, parts, &err) != RV_OK) {
        /* librdkafka resolves the start itself; positions are then learnt from the records. */
        rv__log(&c->broker->log, RV_LOG_WARNING, "kafka", "group '%s': %s", c->group,
                rv_error_message(err));
        rv_error_destroy(err);
        for (int i = 0; i < parts->cnt; i++) {
            parts->elems[i].offset = RD_KAFKA_OFFSET_STORED;
        }
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (asg_add(kcs, tp->topic, tp->partition, tp->offset) != RV_OK) {
            rv__log(&c->broker->log, RV_LOG_ERROR, "kafka",
                    "group '%s': out of memory taking topic '%s' partition %d", c->group,
                    tp->topic, (int)tp->partition);
        }
        if (tp->offset == RV_OFFSET_INVALID) {
            kasg_t *a = asg_find(kcs, tp->topic, tp->partition);
            if (a) {
                a->no_commit = true;
            }
            tp->offset = RD_KAFKA_OFFSET_STORED; /* librdkafka reports the reset error */
        }
    }
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (cooperative) {
        error = rd_kafka_incremental_assign(rk, parts);
    } else {
        re = rd_kafka_assign(rk, parts);
    }
    if (error || re) {
        rv__log(&c->broker->log, RV_LOG_ERROR, "kafka", "group '%s': cannot take partitions: %s",
                c->group, error ? rd_kafka_error_string(error) : rd_kafka_err2str(re));
        if (error) {
            rd_kafka_error_destroy(error);
        }
    }
    call_user(kcs, true, parts);
}

static void revoked(kcons_t *kcs, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                    bool cooperative) {
    rv_consumer_t *c = kcs->c;
    if (rd_kafka_assignment_lost(rk)) {
        rv__log(&c->broker->log, RV_LOG_WARNING, "kafka",
                "group '%s': %d partitions were lost (the member left the group too long); "
                "commits for them will fail",
                c->group, parts->cnt);
    }
    call_user(kcs, false, parts);
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (cooperative) {
        error = rd_kafka_incremental_unassign(rk, parts);
    } else {
        re = rd_kafka_assign(rk, NULL);
    }
    if (error || re) {
        rv__log(&c->broker->log, RV_LOG_ERROR, "kafka", "group '%s': cannot give partitions up: %s",
                c->group, error ? rd_kafka_error_string(error) : rd_kafka_err2str(re));
        if (error) {
            rd_kafka_error_destroy(error);
        }
    }
    for (int i = 0; i < parts->cnt; i++) {
        asg_remove(kcs, parts->elems[i].topic, parts->elems[i].partition);
    }
}

/* librdkafka's rebalance callback, called from rd_kafka_consumer_poll() or close in the
 * application's thread. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t code,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    kcons_t *kcs = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    kcs->served++;
    kcs->rebalanced = true;
    if (code == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assigned(kcs, rk, parts, cooperative);
    } else if (code == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        revoked(kcs, rk, parts, cooperative);
    } else {
        rv__log(&kcs->c->broker->log, RV_LOG_WARNING, "kafka", "group '%s': rebalance failed: %s",
                kcs->c->group, rd_kafka_err2str(code));
        revoked(kcs, rk, parts, cooperative);
    }
}

/* ---- creating and destroying ---------------------------------------------------------------- */

static rv_err_t cset(rd_kafka_conf_t *rc, const char *name, const char *value,
                     rv_error_t **err) {
    return rv__kafka_conf_set(rc, name, value, "consumer", err);
}

/* A numeric property of a librdkafka client as it took it, or 0. */
static int64_t conf_int(rd_kafka_t *rk, const char *name) {
    char v[64];
    size_t size = sizeof v;
    return rd_kafka_conf_get(rd_kafka_conf(rk), name, v, &size) == RD_KAFKA_CONF_OK
               ? strtoll(v, NULL, 10)
               : 0;
}

rv_err_t rv__kafka_consumer_new(rv_consumer_t *c, rv_error_t **err) {
    static atomic_uint seq;
    kbroker_t *kb = c->broker->impl;
    kcons_t *kcs = calloc(1, sizeof *kcs);
    if (!kcs) {
        return rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory for a consumer",
                             c->broker->url);
    }
    kcs->c = c;
    kcs->reset = (int)rv__conf_int(c->conf, RV_CONF_ID_AUTO_OFFSET_RESET);
    char group[96], fetch[32];
    if (!c->group) {
        /* librdkafka needs a group id to assign; this one is never joined nor committed to. */
        snprintf(group, sizeof group, "rivulet-assign-%ld-%u-%p", (long)getpid(),
                 atomic_fetch_add(&seq, 1), (void *)kcs);
    }
    int64_t fmax = rv__conf_int(c->conf, RV_CONF_ID_FETCH_MAX_BYTES);
    snprintf(fetch, sizeof fetch, "%lld", (long long)(fmax < 1000000000 ? fmax : 1000000000));
    rd_kafka_conf_t *rc = NULL;
    rv_err_t e = rv__kafka_conf_new(kb, &kcs->kc, "consumer", &rc, err);
    if (e) {
        free(kcs);
        return e;
    }
    const char *settings[][2] = {
        {"group.id", c->group ? c->group : group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", reset_name(kcs->reset)},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"max.partition.fetch.bytes", fetch},
        {"queued.min.messages", READ_AHEAD_MESSAGES},
        {"queued.max.messages.kbytes", READ_AHEAD_KBYTES},
    };
    for (size_t i = 0; !e && i < RV_ARRAY_LEN(settings); i++) {
        e = cset(rc, settings[i][0], settings[i][1], err);
    }
    char ignored[128];
    kcs->kick = !e && rd_kafka_conf_set(rc, "fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS,
                                        ignored, sizeof ignored) == RD_KAFKA_CONF_UNKNOWN;
    if (e) {
        rd_kafka_conf_destroy(rc);
        free(kcs);
        return e;
    }
    rd_kafka_conf_set_rebalance_cb(rc, on_rebalance);
    e = rv__kafka_conf_finish(kb, &kcs->kc, c->conf, RD_KAFKA_CONSUMER, rc, err);
    if (e) {
        free(kcs);
        return e;
    }
    rd_kafka_poll_set_consumer(kcs->kc.rk);
    kcs->ra_msgs = conf_int(kcs->kc.rk, "queued.min.messages");
    kcs->ra_bytes = conf_int(kcs->kc.rk, "queued.max.messages.kbytes") * 1024;
    c->impl = kcs;
    return RV_OK;
}

static void release_batch(kcons_t *kcs) {
    for (size_t i = 0; i < kcs->nmsgs; i++) {
        rd_kafka_message_destroy(kcs->msgs[i]);
    }
    kcs->nmsgs = 0;
    kcs->nhdrs = 0;
}

/*
 * librdkafka 2.0.2 aborts the process (an assertion in rd_kafka_sticky_assignor_state_destroy,
 * librdkafka issue 4312, fixed in 2.2.1) when a cooperative-sticky consumer is destroyed after
 * the group answered its join but before its first assignment: the assignor's state is made
 * only when that assignment arrives. So a subscribed consumer that has had no rebalance yet
 * polls, before closing, until it has (its partitions then are given back by the close without
 * reaching on_assign or on_revoke), for at most FIRST_REBALANCE_WAIT_MS and never longer than
 * broker.availability.timeout.ms.
 */
static void await_first_rebalance(kcons_t *kcs) {
    if (!kcs->subscribed || kcs->rebalanced || atomic_load(&kcs->kc.fatal)) {
        return;
    }
    int64_t wait = kcs->kc.kb->avail_ms < FIRST_REBALANCE_WAIT_MS ? kcs->kc.kb->avail_ms
                                                                  : FIRST_REBALANCE_WAIT_MS;
    int64_t deadline = rv_clock_mono_ms() + wait;
    kcs->closing = true;
    while (!kcs->rebalanced && !atomic_load(&kcs->kc.fatal)) {
        int64_t left = deadline - rv_clock_mono_ms();
        if (left <= 0) {
            rv__log(&kcs->c->broker->log, RV_LOG_WARNING, "kafka",
                    "group '%s': closing a consumer whose first rebalance has not come in "
                    "%lld ms; librdkafka 2.0.2 may abort if it comes now",
                    kcs->c->group, (long long)wait);
            break;
        }
        rd_kafka_message_t *m =
            rd_kafka_consumer_poll(kcs->kc.rk, left < RV__KAFKA_SLICE_MS ? (int)left
                                                                         : RV__KAFKA_SLICE_MS);
        if (m) {
            rd_kafka_message_destroy(m);
        }
    }
}

void rv__kafka_consumer_destroy(rv_consumer_t *c) {
    kcons_t *kcs = c->impl;
    release_batch(kcs);
    await_first_rebalance(kcs);
    rd_kafka_resp_err_t re = rd_kafka_consumer_close(kcs->kc.rk);
    if (re) {
        rv__log(&c->broker->log, RV_LOG_WARNING, "kafka", "consumer: closing: %s",
                rd_kafka_err2str(re));
    }
    rd_kafka_destroy(kcs->kc.rk);
    asg_clear(kcs);
    free(kcs->asg);
    free(kcs->msgs);
    free(kcs->out);
    free(kcs->hdr_at);
    free(kcs->hdrs);
    rv_error_destroy(kcs->pending);
    free(kcs);
}

/* ---- subscribing and assigning -------------------------------------------------------------- */

rv_err_t rv__kafka_subscribe(rv_consumer_t *c, const char *const *topics, size_t count,
                             rv_error_t **err) {
    kcons_t *kcs = c->impl;
    if (!kcs->subscribed && kcs->nasg > 0) {
        return rv__error_set(err, RV_ERR_STATE,
                             "group '%s': the consumer has partitions assigned by hand; assign "
                             "none before subscribing",
                             c->group);
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)count);
    if (!l) {
        return rv__error_set(err, RV_ERR_NOMEM, "group '%s': out of memory", c->group);
    }
    for (size_t i = 0; i < count; i++) {
        rd_kafka_topic_partition_list_add(l, topics[i], RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t re = rd_kafka_subscribe(kcs->kc.rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (re) {
        return rv__error_set(err, rv__kafka_err(re), "group '%s': cannot subscribe: %s (%s)",
                             c->group, rd_kafka_err2str(re), rd_kafka_err2name(re));
    }
    kcs->subscribed = true;
    return RV_OK;
}

/*
 * Makes `rk` learn the leaders of the topics of `tps` before they are assigned: a handle that
 * has no metadata for a topic yet starts its partitions with no leader known, and librdkafka
 * then tries the first offset lookup again only 500 ms later (a consumer made and assigned at
 * once waited that long before its first record). Stores the topic handles it made in *rkts
 * (to free with rd_kafka_topic_destroy() after the assignment, which then keeps them with
 * their leaders) and their number in *n. The topics exist (checked before), so asking about
 * them by name cannot create one. It waits at most LEADERS_WAIT_MS in all, the delay it saves:
 * a cluster slower than that only leaves librdkafka to find the leaders itself.
 */
static void learn_leaders(kcons_t *kcs, const rv_topic_partition_t *tps, size_t count,
                          rd_kafka_topic_t **rkts, size_t *n) {
    *n = 0;
    int64_t deadline = rv_clock_mono_ms() + LEADERS_WAIT_MS;
    for (size_t i = 0; i < count; i++) {
        int64_t left = deadline - rv_clock_mono_ms();
        if (left <= 0) {
            break;
        }
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            seen = strcmp(tps[j].topic, tps[i].topic) == 0;
        }
        if (seen) {
            continue;
        }
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(kcs->kc.rk, tps[i].topic, NULL);
        if (!rkt) {
            continue;
        }
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(kcs->kc.rk, 0, rkt, &md, (int)left) ==
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_metadata_destroy(md);
        }
        rkts[(*n)++] = rkt;
    }
}

rv_err_t rv__kafka_assign(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                          rv_error_t **err) {
    kcons_t *kcs = c->impl;
    if (kcs->subscribed) {
        return rv__error_set(err, RV_ERR_STATE,
                             "group '%s': the consumer is subscribed; its partitions are "
                             "assigned by the group",
                             c->group);
    }
    for (size_t i = 0; i < count; i++) {
        rv_err_t e = rv__kafka_check_partition(kcs->kc.kb, "assign", tps[i].topic,
                                               tps[i].partition, err);
        if (e) {
            return e;
        }
    }
    rd_kafka_topic_partition_list_t *l = rv__kafka_tplist(tps, count);
    if (!l) {
        return rv__error_set(err, RV_ERR_NOMEM, "assign: out of memory");
    }
    rd_kafka_topic_t **rkts = count ? calloc(count, sizeof *rkts) : NULL;
    size_t nrkts = 0;
    if (rkts) {
        learn_leaders(kcs, tps, count, rkts, &nrkts);
    }
    rd_kafka_resp_err_t re = rd_kafka_assign(kcs->kc.rk, count ? l : NULL);
    rd_kafka_topic_partition_list_destroy(l);
    for (size_t i = 0; i < nrkts; i++) {
        rd_kafka_topic_destroy(rkts[i]);
    }
    free(rkts);
    if (re) {
        return rv__error_set(err, rv__kafka_err(re), "assign: %s (%s)", rd_kafka_err2str(re),
                             rd_kafka_err2name(re));
    }
    asg_clear(kcs);
    for (size_t i = 0; i < count; i++) {
        if (asg_add(kcs, tps[i].topic, tps[i].partition, tps[i].offset) != RV_OK) {
            return rv__error_set(err, RV_ERR_NOMEM, "assign: out of memory");
        }
    }
    rv_error_destroy(kcs->pending);
    kcs->pending = NULL;
    return RV_OK;
}

/* ---- polling -------------------------------------------------------------------------------- */

static bool grow_batch(kcons_t *kcs, size_t need) {
    if (need <= kcs->cap) {
        return true;
    }
    rd_kafka_message_t **m = realloc(kcs->msgs, need * sizeof *m);
    if (m) {
        kcs->msgs = m;
    }
    rv_record_t *o = realloc(kcs->out, need * sizeof *o);
    if (o) {
        kcs->out = o;
    }
    size_t *h = realloc(kcs->hdr_at, need * sizeof *h);
    if (h) {
        kcs->hdr_at = h;
    }
    if (!m || !o || !h) {
        return false;
    }
    kcs->cap = need;
    return true;
}

/* Appends a message's headers to the batch's header array; false on NOMEM. */
static bool take_headers(kcons_t *kcs, rd_kafka_message_t *m, size_t *count) {
    rd_kafka_headers_t *hdrs = NULL;
    *count = 0;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return true;
    }
    size_t n = rd_kafka_header_cnt(hdrs);
    if (kcs->nhdrs + n > kcs->hdrs_cap) {
        size_t cap = kcs->hdrs_cap ? kcs->hdrs_cap : 64;
        while (cap < kcs->nhdrs + n) {
            cap *= 2;
        }
        rv_header_t *v = realloc(kcs->hdrs, cap * sizeof *v);
        if (!v) {
            return false;
        }
        kcs->hdrs = v;
        kcs->hdrs_cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        rv_header_t *h = &kcs->hdrs[kcs->nhdrs + i];
        const void *val = NULL;
        size_t size = 0;
        rd_kafka_header_get_all(hdrs, i, &h->name, &val, &size);
        h->value = val;
        h->value_len = size;
    }
    kcs->nhdrs += n;
    *count = n;
    return true;
}

/* The error of a partition that auto.offset.reset=error stopped. */
static rv_err_t offset_error(kcons_t *kcs, const rd_kafka_message_t *m, rv_error_t **err) {
    const char *topic = rd_kafka_topic_name(m->rkt);
    kasg_t *a = asg_find(kcs, topic, m->partition);
    const char *why = rd_kafka_message_errstr(m);
    rv_consumer_t *c = kcs->c;
    rv_err_t e;
    if (!a || a->no_commit || a->position == RV_OFFSET_STORED) {
        e = rv__error_set(err, RV_ERR_RANGE,
                          "topic '%s' partition %d: no committed offset for %s%s%s and "
                          "auto.offset.reset is '%s'; seek to start it (%s)",
                          topic, (int)m->partition,
                          c->group ? "group '" : "a consumer without a group",
                          c->group ? c->group : "", c->group ? "'" : "", reset_name(kcs->reset),
                          why);
    } else {
        char at[32] = "its position";
        if (a->position >= 0) {
            snprintf(at, sizeof at, "offset %lld", (long long)a->position);
        } else if (m->offset >= 0) {
            snprintf(at, sizeof at, "offset %lld", (long long)m->offset);
        }
        e = rv__error_set(err, RV_ERR_RANGE,
                          "topic '%s' partition %d: %s is outside the stored range and "
                          "auto.offset.reset is '%s'; seek to restart it (%s)",
                          topic, (int)m->partition, at, reset_name(kcs->reset), why);
    }
    if (a) {
        a->position = RV_OFFSET_INVALID;
        a->no_commit = false;
    }
    return e;
}

/*
 * Handles a message carrying an event rather than a record: end of partition (tells
 * on_partition_eof), an offset error (returned), anything else (logged; librdkafka retries).
 * Returns RV_OK to go on polling.
 */
static rv_err_t consumer_event(kcons_t *kcs, rd_kafka_message_t *m, int *eofs, rv_error_t **err) {
    rv_consumer_t *c = kcs->c;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        const char *topic = rd_kafka_topic_name(m->rkt);
        kasg_t *a = asg_find(kcs, topic, m->partition);
        if (!a || a->paused) {
            return RV_OK;
        }
        rv__kafka_alive(&kcs->kc);
        a->position = m->offset;
        (*eofs)++;
        if (c->callbacks.on_partition_eof) {
            c->callbacks.on_partition_eof(c->callbacks.opaque, c, topic, m->partition, m->offset);
        }
        return RV_OK;
    }
    if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
        m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
        if (m->rkt && !asg_find(kcs, rd_kafka_topic_name(m->rkt), m->partition)) {
            return RV_OK; /* a partition given up meanwhile */
        }
        return offset_error(kcs, m, err);
    }
    if (m->err == RD_KAFKA_RESP_ERR__FATAL || atomic_load(&kcs->kc.fatal)) {
        atomic_store(&kcs->kc.fatal, true);
        return rv__kafka_fatal(&kcs->kc, err);
    }
    const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : NULL;
    rv__log(&c->broker->log, rv__kafka_retriable(m->err) ? RV_LOG_NOTICE : RV_LOG_WARNING,
            "kafka", "consumer%s%s%s: %s (%s)", topic ? ": topic '" : "", topic ? topic : "",
            topic ? "'" : "", rd_kafka_message_errstr(m), rd_kafka_err2name(m->err));
    return RV_OK;
}

/*
 * librdkafka < 2.1: wakes the broker threads that fetch for the assigned partitions that have
 * records beyond this consumer's position (by the watermarks their last fetches saw), unless
 * too little was taken since the last time for a fetcher to have stopped on a full read-ahead.
 * An offset request (ListOffsets, latest; librdkafka sends one per leader) is what wakes them,
 * as it goes through those threads; its answer is not needed, so the call waits KICK_WAIT_MS
 * at most and librdkafka drops the answer when it comes later (a broker that is down costs
 * nothing but that wait).
 */
static void kick_fetch(kcons_t *kcs) {
    int64_t now = rv_clock_mono_ms();
    if (!kcs->kick || kcs->nasg == 0 || now - kcs->kicked_ms < KICK_INTERVAL_MS ||
        (kcs->taken_msgs * 2 < kcs->ra_msgs && kcs->taken_bytes * 2 < kcs->ra_bytes)) {
        return;
    }
    rd_kafka_topic_partition_list_t *l = NULL;
    for (size_t i = 0; i < kcs->nasg; i++) {
        kasg_t *a = &kcs->asg[i];
        int64_t lo = -1, hi = -1;
        if (a->paused || a->position < 0 ||
            rd_kafka_get_watermark_offsets(kcs->kc.rk, a->topic, a->partition, &lo, &hi) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            hi <= a->position) {
            continue;
        }
        if (!l && !(l = rd_kafka_topic_partition_list_new((int)kcs->nasg))) {
            return;
        }
        /* the offset field carries the timestamp asked for: -1, the latest offset */
        rd_kafka_topic_partition_list_add(l, a->topic, a->partition)->offset = -1;
    }
    if (l) {
        kcs->kicked_ms = now;
        kcs->taken_msgs = 0;
        kcs->taken_bytes = 0;
        rd_kafka_offsets_for_times(kcs->kc.rk, l, KICK_WAIT_MS);
        rd_kafka_topic_partition_list_destroy(l);
    }
}

rv_err_t rv__kafka_poll(rv_consumer_t *c, const rv_record_t **records, size_t max, size_t *count,
                        int timeout_ms, rv_error_t **err) {
    kcons_t *kcs = c->impl;
    release_batch(kcs);
    *records = kcs->out;
    if (kcs->pending) {
        rv_err_t e = rv_error_code(kcs->pending);
        if (err) {
            rv_error_destroy(*err);
            *err = kcs->pending;
        } else {
            rv_error_destroy(kcs->pending);
        }
        kcs->pending = NULL;
        return e;
    }
    if (atomic_load(&kcs->kc.fatal)) {
        return rv__kafka_fatal(&kcs->kc, err);
    }
    if (max > MAX_POLL_RECORDS) {
        max = MAX_POLL_RECORDS;
    }
    if (!grow_batch(kcs, max)) {
        return rv__error_set(err, RV_ERR_NOMEM, "poll: out of memory for %zu records", max);
    }
    int64_t deadline = timeout_ms < 0 ? -1 : rv_clock_mono_ms() + timeout_ms;
    size_t n = 0;
    int eofs = 0;
    rv_err_t e = RV_OK;
    rv_error_t *late = NULL; /* an error met after records were taken */
    kcs->served = 0;
    while (n < max) {
        int wait = 0;
        if (n == 0 && kcs->served == 0 && eofs == 0) {
            int64_t left = deadline < 0 ? RV__KAFKA_SLICE_MS : deadline - rv_clock_mono_ms();
            wait = left < RV__KAFKA_SLICE_MS ? (left > 0 ? (int)left : 0) : RV__KAFKA_SLICE_MS;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(kcs->kc.rk, 0);
        if (!m && n == 0 && kcs->served == 0 && eofs == 0) {
            kick_fetch(kcs); /* nothing to hand out: a fetcher may be idle */
            m = wait > 0 ? rd_kafka_consumer_poll(kcs->kc.rk, wait) : NULL;
        }
        if (!m) {
            if (n > 0 || kcs->served > 0 || eofs > 0) {
                break;
            }
            if (rv__kafka_unavailable(&kcs->kc, err)) {
                e = RV_ERR_TRANSPORT;
                break;
            }
            if (deadline >= 0 && rv_clock_mono_ms() >= deadline) {
                break;
            }
            continue;
        }
        if (m->err) {
            rv_err_t ee = consumer_event(kcs, m, &eofs, n > 0 ? &late : err);
            rd_kafka_message_destroy(m);
            if (ee) {
                e = ee;
                break;
            }
            continue;
        }
        kasg_t *a = asg_find(kcs, rd_kafka_topic_name(m->rkt), m->partition);
        size_t nh = 0;
        if (!a || a->paused) {
            rd_kafka_message_destroy(m); /* given up or paused: fetched again on resume */
            continue;
        }
        if (!take_headers(kcs, m, &nh)) {
            rd_kafka_message_destroy(m);
            e = rv__error_set(n > 0 ? &late : err, RV_ERR_NOMEM, "poll: out of memory");
            break;
        }
        a->position = m->offset + 1;
        kcs->taken_msgs++;
        kcs->taken_bytes += (int64_t)(m->len + m->key_len);
        kcs->msgs[n] = m;
        kcs->hdr_at[n] = kcs->nhdrs - nh;
        kcs->out[n] = (rv_record_t){.topic = rd_kafka_topic_name(m->rkt),
                                    .partition = m->partition,
                                    .offset = m->offset,
                                    .timestamp_ms = rd_kafka_message_timestamp(m, NULL),
                                    .key = m->key,
                                    .key_len = m->key ? m->key_len : 0,
                                    .value = m->payload,
                                    .value_len = m->payload ? m->len : 0,
                                    .header_count = nh};
        n++;
    }
    if (n > 0) {
        rv__kafka_alive(&kcs->kc);
    }
    for (size_t i = 0; i < n; i++) {
        kcs->out[i].headers = kcs->out[i].header_count ? &kcs->hdrs[kcs->hdr_at[i]] : NULL;
    }
    kcs->nmsgs = n;
    *records = kcs->out;
    *count = n;
    if (e && n > 0) {
        kcs->pending = late; /* the records first; the error at the next poll */
        return RV_OK;
    }
    return e;
}

/* ---- offsets -------------------------------------------------------------------------------- */

/* A list of the positions of every assigned partition that has one. */
static rv_err_t positions_list(kcons_t *kcs, rd_kafka_topic_partition_list_t **out,
                               rv_error_t **err) {
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(kcs->nasg ? (int)kcs->nasg : 1);
    if (!l) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < kcs->nasg; i++) {
        int64_t pos = RV_OFFSET_INVALID;
        rv_err_t e = asg_position(kcs, &kcs->asg[i], &pos, err);
        if (e) {
            rd_kafka_topic_partition_list_destroy(l);
            return e;
        }
        if (pos >= 0) {
            rd_kafka_topic_partition_list_add(l, kcs->asg[i].topic, kcs->asg[i].partition)
                ->offset = pos;
        }
    }
    *out = l;
    return RV_OK;
}

/* Builds the list to commit or to put in a transaction: `tps` checked against the cluster's
 * topics, or every assigned partition's position. */
static rv_err_t offsets_list(kcons_t *kcs, const char *what, const rv_topic_partition_t *tps,
                             size_t count, rd_kafka_topic_partition_list_t **out,
                             rv_error_t **err) {
    if (!tps) {
        return positions_list(kcs, out, err);
    }
    for (size_t i = 0; i < count; i++) {
        rv_err_t e = rv__kafka_check_partition(kcs->kc.kb, what, tps[i].topic, tps[i].partition,
                                               err);
        if (e) {
            return e;
        }
    }
    *out = rv__kafka_tplist(tps, count);
    return *out ? RV_OK : rv__error_set(err, RV_ERR_NOMEM, "%s: out of memory", what);
}

rv_err_t rv__kafka_consumer_offsets(rv_consumer_t *c, const rv_topic_partition_t *tps,
                                    size_t count, rd_kafka_t **rk,
                                    rd_kafka_topic_partition_list_t **list, rv_error_t **err) {
    kcons_t *kcs = c->impl;
    *rk = kcs->kc.rk;
    return offsets_list(kcs, "send offsets to transaction", tps, count, list, err);
}

/* Errors of a commit worth trying again: the coordinator moving or loading, a timeout. */
static bool commit_retriable(rd_kafka_resp_err_t re) {
    return rv__kafka_retriable(re) && re != RD_KAFKA_RESP_ERR__QUEUE_FULL;
}

rv_err_t rv__kafka_commit(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                          rv_error_t **err) {
    kcons_t *kcs = c->impl;
    rd_kafka_topic_partition_list_t *l = NULL;
    rv_err_t e = offsets_list(kcs, "commit", tps, count, &l, err);
    if (e) {
        return rv__error_prefix(err, e, "group '%s': ", c->group);
    }
    if (l->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(l);
        return RV_OK;
    }
    int64_t deadline = rv_clock_mono_ms() + kcs->kc.kb->avail_ms;
    rd_kafka_resp_err_t re;
    int tries = 0;
    while ((re = rd_kafka_commit(kcs->kc.rk, l, 0)) != RD_KAFKA_RESP_ERR_NO_ERROR &&
           commit_retriable(re)) {
        rv__log(&c->broker->log, RV_LOG_NOTICE, "kafka",
                "group '%s': commit failed (%s), trying again", c->group, rd_kafka_err2name(re));
        if (!rv__kafka_backoff(kcs->kc.rk, deadline, &tries)) {
            break;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (re == RD_KAFKA_RESP_ERR_NO_ERROR || re == RD_KAFKA_RESP_ERR__NO_OFFSET) {
        rv__kafka_alive(&kcs->kc);
        return RV_OK;
    }
    if (atomic_load(&kcs->kc.fatal)) {
        return rv__kafka_fatal(&kcs->kc, err);
    }
    e = commit_retriable(re) ? RV_ERR_TRANSPORT : rv__kafka_err(re);
    return rv__error_set(err, e, "group '%s': commit refused%s: %s (%s)", c->group,
                         e == RV_ERR_STATE ? " (the group rebalanced: the partitions may be "
                                             "another member's now)"
                                           : "",
                         rd_kafka_err2str(re), rd_kafka_err2name(re));
}

rv_err_t rv__kafka_committed(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                             rv_error_t **err) {
    kcons_t *kcs = c->impl;
    rd_kafka_topic_partition_list_t *l = rv__kafka_tplist(tps, count);
    if (!l) {
        return rv__error_set(err, RV_ERR_NOMEM, "committed: out of memory");
    }
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    int64_t deadline = rv_clock_mono_ms() + kcs->kc.kb->avail_ms;
    int tries = 0;
    while (count && (re = rd_kafka_committed(kcs->kc.rk, l, (int)kcs->kc.kb->avail_ms)) != 0 &&
           rv__kafka_retriable(re) && rv__kafka_backoff(kcs->kc.rk, deadline, &tries)) {
    }
    rv_err_t e = RV_OK;
    if (re) {
        e = rv__error_set(err, rv__kafka_retriable(re) ? RV_ERR_TRANSPORT : rv__kafka_err(re),
                          "group '%s': cannot read committed offsets: %s (%s)", c->group,
                          rd_kafka_err2str(re), rd_kafka_err2name(re));
    }
    for (size_t i = 0; !e && i < count; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];
        if (tp->err && tp->err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            e = rv__error_set(err, rv__kafka_err(tp->err),
                              "group '%s': committed offset of topic '%s' partition %d: %s",
                              c->group, tp->topic, (int)tp->partition, rd_kafka_err2str(tp->err));
        } else {
            tps[i].offset = tp->offset >= 0 ? tp->offset : RV_OFFSET_INVALID;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (!e) {
        rv__kafka_alive(&kcs->kc);
    }
    return e;
}

rv_err_t rv__kafka_position(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                            rv_error_t **err) {
    kcons_t *kcs = c->impl;
    for (size_t i = 0; i < count; i++) {
        kasg_t *a = asg_find(kcs, tps[i].topic, tps[i].partition);
        int64_t pos = RV_OFFSET_INVALID;
        if (a) {
            rv_err_t e = asg_position(kcs, a, &pos, err);
            if (e) {
                return e;
            }
        }
        tps[i].offset = pos;
    }
    return RV_OK;
}

static rv_err_t not_assigned(rv_error_t **err, const char *what, const char *topic,
                             int32_t partition) {
    return rv__error_set(err, RV_ERR_STATE,
                         "%s: topic '%s' partition %d is not assigned to this consumer", what,
                         topic, (int)partition);
}

/* Starts a partition again at `offset` by taking it out of the assignment and back in: the way
 * to restart one that librdkafka stopped after an offset error, where seeking is refused. */
static rv_err_t reassign(kcons_t *kcs, kasg_t *a, int64_t offset, rv_error_t **err) {
    rd_kafka_t *rk = kcs->kc.rk;
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    if (!one) {
        return rv__error_set(err, RV_ERR_NOMEM, "seek: out of memory");
    }
    rd_kafka_topic_partition_list_add(one, a->topic, a->partition)->offset = offset;
    rd_kafka_error_t *error = rd_kafka_incremental_unassign(rk, one);
    if (!error) {
        error = rd_kafka_incremental_assign(rk, one);
    }
    rd_kafka_topic_partition_list_destroy(one);
    if (error) {
        rv_err_t e = rv__error_set(err, rv__kafka_err(rd_kafka_error_code(error)),
                                   "seek: topic '%s' partition %d: %s", a->topic,
                                   (int)a->partition, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return e;
    }
    return RV_OK;
}

rv_err_t rv__kafka_seek(rv_consumer_t *c, const char *topic, int32_t partition, int64_t offset,
                        rv_error_t **err) {
    kcons_t *kcs = c->impl;
    kasg_t *a = asg_find(kcs, topic, partition);
    if (!a) {
        return not_assigned(err, "seek", topic, partition);
    }
    rv_err_t e = RV_OK;
    if (a->position == RV_OFFSET_INVALID) {
        e = reassign(kcs, a, offset, err); /* stopped by an offset error */
    } else {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        if (!l) {
            return rv__error_set(err, RV_ERR_NOMEM, "seek: out of memory");
        }
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
        rd_kafka_error_t *error =
            rd_kafka_seek_partitions(kcs->kc.rk, l, (int)kcs->kc.kb->avail_ms);
        rd_kafka_resp_err_t re = error ? rd_kafka_error_code(error) : l->elems[0].err;
        if (error) {
            rd_kafka_error_destroy(error);
        }
        rd_kafka_topic_partition_list_destroy(l);
        if (re == RD_KAFKA_RESP_ERR__STATE) {
            e = reassign(kcs, a, offset, err);
        } else if (re) {
            e = rv__error_set(err, rv__kafka_retriable(re) ? RV_ERR_TRANSPORT : rv__kafka_err(re),
                              "seek: topic '%s' partition %d to %lld: %s", topic, (int)partition,
                              (long long)offset, rd_kafka_err2str(re));
        }
    }
    if (!e) {
        a = asg_find(kcs, topic, partition);
        if (a) {
            a->position = offset;
            a->no_commit = false;
            if (a->paused) {
                rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
                if (l) {
                    rd_kafka_topic_partition_list_add(l, topic, partition);
                    rd_kafka_pause_partitions(kcs->kc.rk, l);
                    rd_kafka_topic_partition_list_destroy(l);
                }
            }
        }
    }
    return e;
}

rv_err_t rv__kafka_offsets_for_times(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                                     rv_error_t **err) {
    kcons_t *kcs = c->impl;
    for (size_t i = 0; i < count; i++) {
        rv_err_t e = rv__kafka_check_partition(kcs->kc.kb, "offsets_for_times", tps[i].topic,
                                               tps[i].partition, err);
        if (e) {
            return e;
        }
    }
    rd_kafka_topic_partition_list_t *l = rv__kafka_tplist(tps, count);
    if (!l) {
        return rv__error_set(err, RV_ERR_NOMEM, "offsets_for_times: out of memory");
    }
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    int64_t deadline = rv_clock_mono_ms() + kcs->kc.kb->avail_ms;
    int tries = 0;
    while (count &&
           (re = rd_kafka_offsets_for_times(kcs->kc.rk, l, (int)kcs->kc.kb->avail_ms)) != 0 &&
           rv__kafka_retriable(re) && rv__kafka_backoff(kcs->kc.rk, deadline, &tries)) {
    }
    rv_err_t e = RV_OK;
    if (re) {
        e = rv__error_set(err, rv__kafka_retriable(re) ? RV_ERR_TRANSPORT : rv__kafka_err(re),
                          "offsets_for_times: %s (%s)", rd_kafka_err2str(re),
                          rd_kafka_err2name(re));
    }
    for (size_t i = 0; !e && i < count; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];
        if (tp->err) {
            e = rv__error_set(err, rv__kafka_err(tp->err),
                              "offsets_for_times: topic '%s' partition %d: %s", tp->topic,
                              (int)tp->partition, rd_kafka_err2str(tp->err));
        } else {
            tps[i].offset = tp->offset >= 0 ? tp->offset : RV_OFFSET_END;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    return e;
}

rv_err_t rv__kafka_pause(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                         bool pause, rv_error_t **err) {
    kcons_t *kcs = c->impl;
    const char *what = pause ? "pause" : "resume";
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(count ? (int)count : 1);
    if (!l) {
        return rv__error_set(err, RV_ERR_NOMEM, "%s: out of memory", what);
    }
    rv_err_t e = RV_OK;
    for (size_t i = 0; i < count; i++) {
        kasg_t *a = asg_find(kcs, tps[i].topic, tps[i].partition);
        if (!a) {
            if (!e) {
                e = not_assigned(err, what, tps[i].topic, tps[i].partition);
            }
            continue;
        }
        rd_kafka_topic_partition_list_add(l, tps[i].topic, tps[i].partition);
    }
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (l->cnt > 0) {
        re = pause ? rd_kafka_pause_partitions(kcs->kc.rk, l)
                   : rd_kafka_resume_partitions(kcs->kc.rk, l);
    }
    for (int i = 0; !re && i < l->cnt; i++) {
        kasg_t *a = asg_find(kcs, l->elems[i].topic, l->elems[i].partition);
        bool was = a->paused;
        a->paused = pause;
        if (!pause && was && a->position >= 0) {
            /* Records fetched before the pause were dropped: read again from the position. */
            rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
            if (one) {
                rd_kafka_topic_partition_list_add(one, a->topic, a->partition)->offset =
                    a->position;
                rd_kafka_error_t *error =
                    rd_kafka_seek_partitions(kcs->kc.rk, one, (int)kcs->kc.kb->avail_ms);
                if (error) {
                    rd_kafka_error_destroy(error);
                }
                rd_kafka_topic_partition_list_destroy(one);
            }
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (re && !e) {
        e = rv__error_set(err, rv__kafka_err(re), "%s: %s", what, rd_kafka_err2str(re));
    }
    return e;
}
