/*
 * broker_int.h: the broker vtable and the handles' shared layout.
 *
 * broker.c owns the public functions of rivulet/broker.h: it parses the URL, validates
 * arguments that every implementation would check the same way (topic names, partition
 * ranges, NULL pointers) and dispatches to the implementation's ops. Implementations
 * (memory.c, local.c, kafka.c) fill one `static const rv_broker_ops_t` each and keep
 * their own state behind the `impl` pointers.
 */
#ifndef RV_BROKER_INT_H
#define RV_BROKER_INT_H

#include "core/config_int.h"
#include "core/core_int.h"
#include "rivulet/broker.h"

#define RV_BROKER_OPS_VERSION 1

typedef struct rv_broker_ops_s {
    int version; /* RV_BROKER_OPS_VERSION */
    const char *scheme; /* "memory", "local", "kafka" */

    /* `location` is the URL after "scheme:" (a path for local, "//host:port" for kafka). */
    rv_err_t (*open)(rv_broker_t *b, const char *location, rv_error_t **err);
    void (*close)(rv_broker_t *b);

    rv_err_t (*create_topic)(rv_broker_t *b, const char *topic, int32_t partitions,
                             const rv_conf_t *topic_conf, rv_error_t **err);
    rv_err_t (*delete_topic)(rv_broker_t *b, const char *topic, rv_error_t **err);
    /* Returns a sorted, NULL-terminated, malloc'ed array of malloc'ed names. */
    rv_err_t (*list_topics)(rv_broker_t *b, char ***names, size_t *count, rv_error_t **err);
    rv_err_t (*describe_topic)(rv_broker_t *b, const char *topic, int32_t *partitions,
                               rv_conf_t **topic_conf, rv_error_t **err);
    rv_err_t (*watermarks)(rv_broker_t *b, const char *topic, int32_t partition, int64_t *low,
                           int64_t *high, rv_error_t **err);

    rv_err_t (*producer_new)(rv_producer_t *p, rv_error_t **err);
    void (*producer_destroy)(rv_producer_t *p); /* after a final flush by broker.c */
    rv_err_t (*send)(rv_producer_t *p, const rv_record_t *rec, void *rec_opaque);
    int (*producer_poll)(rv_producer_t *p, int timeout_ms);
    rv_err_t (*flush)(rv_producer_t *p, int timeout_ms, rv_error_t **err);

    rv_err_t (*consumer_new)(rv_consumer_t *c, rv_error_t **err);
    void (*consumer_destroy)(rv_consumer_t *c); /* leaves the group (revoking) first */
    rv_err_t (*subscribe)(rv_consumer_t *c, const char *const *topics, size_t count,
                          rv_error_t **err);
    rv_err_t (*assign)(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                       rv_error_t **err);
    rv_err_t (*poll)(rv_consumer_t *c, const rv_record_t **records, size_t max, size_t *count,
                     int timeout_ms, rv_error_t **err);
    rv_err_t (*commit)(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                       rv_error_t **err);
    rv_err_t (*committed)(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                          rv_error_t **err);
    rv_err_t (*position)(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                         rv_error_t **err);
    rv_err_t (*seek)(rv_consumer_t *c, const char *topic, int32_t partition, int64_t offset,
                     rv_error_t **err);
    rv_err_t (*offsets_for_times)(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                                  rv_error_t **err);
    rv_err_t (*pause)(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                      bool pause, rv_error_t **err);

    /* Transactions; NULL when the implementation has none (broker.c answers UNSUPPORTED).
     * `timeout_ms` is -1 for the implementation's default. `c` belongs to the same kind of
     * broker as `p` only when the implementation checks it; `tps` NULL means c's positions. */
    rv_err_t (*begin_transaction)(rv_producer_t *p, rv_error_t **err);
    rv_err_t (*send_offsets_to_transaction)(rv_producer_t *p, rv_consumer_t *c,
                                            const rv_topic_partition_t *tps, size_t count,
                                            int timeout_ms, rv_error_t **err);
    rv_err_t (*commit_transaction)(rv_producer_t *p, int timeout_ms, rv_error_t **err);
    rv_err_t (*abort_transaction)(rv_producer_t *p, int timeout_ms, rv_error_t **err);
} rv_broker_ops_t;

struct rv_broker_s {
    const rv_broker_ops_t *ops;
    char *url;
    rv_conf_t *conf; /* a copy of the opening configuration (defaults when none was given) */
    rv_logger_t log;
    void *impl;
};

struct rv_producer_s {
    rv_broker_t *broker;
    rv_conf_t *conf; /* the producer's own, or a copy of the broker's */
    rv_delivery_cb delivery_cb; /* the user's, or chunk.c's in front of it */
    void *opaque;
    void *impl;
    struct rv_chunk_producer_s *chunk; /* splitting of large values (chunk.c) */
};

struct rv_consumer_s {
    rv_broker_t *broker;
    rv_conf_t *conf;
    char *group; /* NULL without a group */
    rv_consumer_callbacks_t callbacks; /* chunk.c's rebalance callbacks before the user's */
    void *impl;
    struct rv_chunk_consumer_s *chunk; /* reassembly of split values (chunk.c) */
};

/* The implementations, registered in broker.c by scheme. */
extern const rv_broker_ops_t rv__memory_broker_ops;
extern const rv_broker_ops_t rv__local_broker_ops;
extern const rv_broker_ops_t rv__kafka_broker_ops;

/* Kafka's topic-name rule; fills *err naming the topic when it is broken. */
RV__HIDDEN rv_err_t rv__topic_name_check(const char *topic, rv_error_t **err);

/* The partition for a record without an explicit one: murmur2 of the key, or `*round_robin`
 * (advanced) for a NULL key. */
RV__HIDDEN int32_t rv__choose_partition(const rv_record_t *rec, int32_t partitions,
                                        uint32_t *round_robin);

#endif
