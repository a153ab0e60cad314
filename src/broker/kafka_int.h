/*
 * kafka_int.h: what the files of the `kafka://` broker (kafka.c, kafka_producer.c,
 * kafka_consumer.c) share.
 *
 * The broker handle keeps the bootstrap servers, one librdkafka handle for metadata, topic
 * admin and watermarks, and a cache of the cluster's topics (names, partition counts, and the
 * max.message.bytes of topics whose limit is known) that producers and consumers check records
 * and partitions against before librdkafka sees them. Every librdkafka handle the broker makes
 * starts with a kclient_t, which the log and error callbacks find through rd_kafka_opaque() and
 * which tracks how long the cluster has been out of reach. Nothing declared here is exported,
 * and nothing here may block while a cache lock is held except the metadata request that
 * refreshes that cache.
 */
#ifndef RV_KAFKA_INT_H
#define RV_KAFKA_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "broker/broker_int.h"

/* How long a topic cache stays trusted before the next lookup refreshes it. */
#define RV__KAFKA_CACHE_MS 30000

/* Slices in which blocking waits run, so the availability timeout is checked between them. */
#define RV__KAFKA_SLICE_MS 100

/* A topic as the cluster's metadata showed it. */
typedef struct ktopic_s {
    char *name;
    int32_t partitions;
    int64_t max_message_bytes; /* -1 when only the broker knows (left to it to refuse) */
} ktopic_t;

typedef struct kbroker_s kbroker_t;

/* The start of every librdkafka handle's opaque: its broker, a name for messages, and the
 * availability state its error callback and its successes keep. */
typedef struct kclient_s {
    kbroker_t *kb;
    const char *role;         /* "admin", "producer", "consumer" */
    rd_kafka_t *rk;
    atomic_llong down_since;  /* monotonic ms since every broker was down; 0 while reachable */
    atomic_llong last_probe;  /* monotonic ms of the last reachability probe */
    atomic_bool fatal;        /* librdkafka raised a fatal error: the handle must be closed */
} kclient_t;

struct kbroker_s {
    rv_broker_t *b;
    char *bootstrap;  /* "host:port,host:port" */
    int64_t avail_ms; /* broker.availability.timeout.ms */
    kclient_t admin;  /* metadata, topic admin, watermarks */
    pthread_mutex_t lock; /* guards the cache and serialises its refreshes */
    ktopic_t *topics; /* sorted by name */
    size_t ntopics;
    int64_t refreshed_ms; /* monotonic; 0 = never */
};

/* ---- kafka.c: shared by the producer and consumer files ------------------------------------ */

/* rivulet's code for a librdkafka error code. */
RV__HIDDEN rv_err_t rv__kafka_err(rd_kafka_resp_err_t e);

/* Whether librdkafka or the broker would succeed on a later try (a leader moving, a
 * coordinator loading, a connection dropped), as opposed to a permanent refusal. */
RV__HIDDEN bool rv__kafka_retriable(rd_kafka_resp_err_t e);

/*
 * Makes a librdkafka configuration for a client of `kb`: bootstrap servers, client.id, log
 * level, the log and error callbacks with `kc` as opaque, and `role`'s settings from the
 * rivulet properties of `conf` are set by the caller between this call and
 * rv__kafka_conf_finish(), which applies the `kafka.*` pass-through properties (the broker's,
 * then `conf`'s) last so they override everything, and creates the handle into kc->rk.
 * Errors: RV_ERR_CONFIG naming a property librdkafka refuses, RV_ERR_NOMEM.
 */
RV__HIDDEN rv_err_t rv__kafka_conf_new(kbroker_t *kb, kclient_t *kc, const char *role,
                                       rd_kafka_conf_t **out, rv_error_t **err);
RV__HIDDEN rv_err_t rv__kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                                       const char *value, const char *role, rv_error_t **err);
RV__HIDDEN rv_err_t rv__kafka_conf_finish(kbroker_t *kb, kclient_t *kc, const rv_conf_t *conf,
                                          rd_kafka_type_t type, rd_kafka_conf_t *rconf,
                                          rv_error_t **err);

/*
 * Looks `topic` up in the cache, refreshing it from the cluster when the topic is missing or
 * the cache is old: *partitions gets its partition count and *max_bytes (may be NULL) its
 * max.message.bytes or -1. RV_ERR_NOT_FOUND naming the topic; RV_ERR_TRANSPORT when the
 * cluster cannot be asked.
 */
RV__HIDDEN rv_err_t rv__kafka_topic(kbroker_t *kb, const char *topic, int32_t *partitions,
                                    int64_t *max_bytes, rv_error_t **err);

/* Checks that `topic` exists and has `partition`: RV_ERR_NOT_FOUND or RV_ERR_INVALID_ARG,
 * naming both, with `what` ("assign", "commit", ...) before the message. */
RV__HIDDEN rv_err_t rv__kafka_check_partition(kbroker_t *kb, const char *what, const char *topic,
                                              int32_t partition, rv_error_t **err);

/* Waits before trying a retriable request again (20 ms, growing to 500 ms with *tries), then
 * refreshes `rk`'s metadata so a moved leader is found, and says whether there is time left
 * before `deadline` (monotonic ms). */
RV__HIDDEN bool rv__kafka_backoff(rd_kafka_t *rk, int64_t deadline, int *tries);

/* Records a sign of life of the cluster (a delivery, a fetched record, an answered request). */
RV__HIDDEN void rv__kafka_alive(kclient_t *kc);

/*
 * Whether the cluster has been out of reach for broker.availability.timeout.ms: when the
 * error callback says so, probes it (at most once a second, waiting up to 500 ms) and answers
 * true only when the probe fails too. Fills *err (may be NULL) with a message naming the
 * bootstrap servers when it answers true.
 */
RV__HIDDEN bool rv__kafka_unavailable(kclient_t *kc, rv_error_t **err);

/* The message of a fatal error, into *err, as RV_ERR_FATAL; returns RV_ERR_FATAL. */
RV__HIDDEN rv_err_t rv__kafka_fatal(kclient_t *kc, rv_error_t **err);

/* Converts rivulet topic-partitions into a new librdkafka list (offsets copied as they are,
 * the logical offsets having the same values). NULL on NOMEM. */
RV__HIDDEN rd_kafka_topic_partition_list_t *rv__kafka_tplist(const rv_topic_partition_t *tps,
                                                             size_t count);

/* ---- kafka_producer.c --------------------------------------------------------------------- */

RV__HIDDEN rv_err_t rv__kafka_producer_new(rv_producer_t *p, rv_error_t **err);
RV__HIDDEN void rv__kafka_producer_destroy(rv_producer_t *p);
RV__HIDDEN rv_err_t rv__kafka_send(rv_producer_t *p, const rv_record_t *rec, void *rec_opaque);
RV__HIDDEN int rv__kafka_producer_poll(rv_producer_t *p, int timeout_ms);
RV__HIDDEN rv_err_t rv__kafka_flush(rv_producer_t *p, int timeout_ms, rv_error_t **err);
RV__HIDDEN rv_err_t rv__kafka_begin_transaction(rv_producer_t *p, rv_error_t **err);
RV__HIDDEN rv_err_t rv__kafka_send_offsets_to_transaction(rv_producer_t *p, rv_consumer_t *c,
                                                          const rv_topic_partition_t *tps,
                                                          size_t count, int timeout_ms,
                                                          rv_error_t **err);
RV__HIDDEN rv_err_t rv__kafka_commit_transaction(rv_producer_t *p, int timeout_ms,
                                                 rv_error_t **err);
RV__HIDDEN rv_err_t rv__kafka_abort_transaction(rv_producer_t *p, int timeout_ms,
                                                rv_error_t **err);

/* ---- kafka_consumer.c --------------------------------------------------------------------- */

RV__HIDDEN rv_err_t rv__kafka_consumer_new(rv_consumer_t *c, rv_error_t **err);
RV__HIDDEN void rv__kafka_consumer_destroy(rv_consumer_t *c);
RV__HIDDEN rv_err_t rv__kafka_subscribe(rv_consumer_t *c, const char *const *topics, size_t count,
                                        rv_error_t **err);
RV__HIDDEN rv_err_t rv__kafka_assign(rv_consumer_t *c, const rv_topic_partition_t *tps,
                                     size_t count, rv_error_t **err);
RV__HIDDEN rv_err_t rv__kafka_poll(rv_consumer_t *c, const rv_record_t **records, size_t max,
                                   size_t *count, int timeout_ms, rv_error_t **err);
RV__HIDDEN rv_err_t rv__kafka_commit(rv_consumer_t *c, const rv_topic_partition_t *tps,
                                     size_t count, rv_error_t **err);
RV__HIDDEN rv_err_t rv__kafka_committed(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                                        rv_error_t **err);
RV__HIDDEN rv_err_t rv__kafka_position(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                                       rv_error_t **err);
RV__HIDDEN rv_err_t rv__kafka_seek(rv_consumer_t *c, const char *topic, int32_t partition,
                                   int64_t offset, rv_error_t **err);
RV__HIDDEN rv_err_t rv__kafka_offsets_for_times(rv_consumer_t *c, rv_topic_partition_t *tps,
                                                size_t count, rv_error_t **err);
RV__HIDDEN rv_err_t rv__kafka_pause(rv_consumer_t *c, const rv_topic_partition_t *tps,
                                    size_t count, bool pause, rv_error_t **err);

/* The consumer's librdkafka handle and the positions to put in a transaction (`tps` NULL: every
 * assigned partition's position), for rv__kafka_send_offsets_to_transaction(). The list is
 * new (free it with rd_kafka_topic_partition_list_destroy()). */
RV__HIDDEN rv_err_t rv__kafka_consumer_offsets(rv_consumer_t *c, const rv_topic_partition_t *tps,
                                               size_t count, rd_kafka_t **rk,
                                               rd_kafka_topic_partition_list_t **list,
                                               rv_error_t **err);

#endif
