/*
 * rivulet/broker.h: the broker interface: topics, producers and consumers.
 *
 * One interface over three implementations chosen by URL: `local:PATH` (the embedded durable
 * log, the default `local:./rivulet-data`), `kafka://host:port[,host:port]` (librdkafka) and
 * `memory:` (in-process, not durable). The semantics are Kafka's so a program behaves the same
 * on each: topics with partitions; records with key, value, headers and a millisecond timestamp;
 * offsets per partition; keys placed by Kafka's murmur2 partitioner; consumer groups with
 * committed offsets and assignment and revocation callbacks; seek by offset and by time; pause
 * and resume; topic admin.
 *
 * Thread rules: an rv_broker_t may be shared by threads; a producer may be used by several
 * threads at once; a consumer by one thread at a time.
 */
#ifndef RIVULET_BROKER_H
#define RIVULET_BROKER_H

#include "common.h"
#include "config.h"
#include "error.h"
#include "log.h"

RV_BEGIN_DECLS

/** The URL used when none is given. */
#define RV_BROKER_DEFAULT_URL "local:./rivulet-data"

/** Partition "let the partitioner choose" (murmur2 of the key, or round-robin without key). */
#define RV_PARTITION_ANY (-1)

/** Logical offsets for assignment, seek and auto.offset.reset. */
#define RV_OFFSET_BEGINNING (-2)
#define RV_OFFSET_END (-1)
#define RV_OFFSET_STORED (-1000) /**< the group's committed offset, else auto.offset.reset */
#define RV_OFFSET_INVALID (-1001)

/** A record header: a name and a value of bytes (borrowed view). */
typedef struct rv_header_s {
    const char *name;
    const void *value;
    size_t value_len;
} rv_header_t;

/**
 * A record, as a borrowed view. To produce, fill topic, key, value, headers and optionally
 * partition (RV_PARTITION_ANY) and timestamp_ms (0 = now); the producer copies what it needs.
 * A consumed record's fields point into the consumer's buffers and are valid until the next
 * rv_consumer_poll() or rv_consumer_close() on that consumer.
 * A NULL key means "no key"; a NULL value is a tombstone (deletes the key in compacted topics).
 */
typedef struct rv_record_s {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const rv_header_t *headers;
    size_t header_count;
} rv_record_t;

/** A topic, partition and offset (or timestamp, for rv_consumer_offsets_for_times()). */
typedef struct rv_topic_partition_s {
    const char *topic;
    int32_t partition;
    int64_t offset;
} rv_topic_partition_t;

/* ---- brokers and admin ------------------------------------------------------------------- */

/** A broker connection. Opaque. */
typedef struct rv_broker_s rv_broker_t;

/** Options for rv_broker_open(); zero-initialise and set what you need. */
typedef struct rv_broker_opts_s {
    /** Client properties (see docs/configuration.md); borrowed for the call; NULL = defaults. */
    const rv_conf_t *conf;
    /** Where the broker's log lines go; NULL = nowhere. */
    rv_log_cb log_cb;
    void *log_opaque;
} rv_broker_opts_t;

/**
 * Opens the broker named by `url` (NULL = RV_BROKER_DEFAULT_URL). For `local:PATH` the
 * directory is created when missing and every partition's log is recovered (a torn tail is
 * truncated to the last whole batch and logged at warning level). Free with rv_broker_close().
 * Errors: RV_ERR_INVALID_ARG for an unknown URL scheme, RV_ERR_CONFIG, RV_ERR_IO,
 * RV_ERR_CORRUPT, RV_ERR_TRANSPORT; *err names the URL, file or broker concerned.
 */
RV_API rv_broker_t *rv_broker_open(const char *url, const rv_broker_opts_t *opts,
                                   rv_error_t **err);

/** Closes the broker. Producers and consumers made from it must be closed first. Accepts NULL. */
RV_API void rv_broker_close(rv_broker_t *broker);

/** The URL the broker was opened with. Borrowed. */
RV_API const char *rv_broker_url(const rv_broker_t *broker);

/**
 * Creates `topic` with `partitions` partitions (>= 1). `topic_conf` holds topic-scoped
 * properties (retention.ms, retention.bytes, cleanup.policy, compression.type, ...) or is NULL
 * for defaults. RV_ERR_EXISTS when the topic exists, RV_ERR_INVALID_ARG for a bad name
 * (Kafka's rule: 1 to 249 characters of [a-zA-Z0-9._-], not "." or "..").
 */
RV_API rv_err_t rv_broker_create_topic(rv_broker_t *broker, const char *topic,
                                       int32_t partitions, const rv_conf_t *topic_conf,
                                       rv_error_t **err);

/** Deletes `topic` and its data. RV_ERR_NOT_FOUND when there is no such topic. */
RV_API rv_err_t rv_broker_delete_topic(rv_broker_t *broker, const char *topic, rv_error_t **err);

/**
 * Lists the topics, sorted by name: stores a NULL-terminated array of names in *names (free the
 * array with rv_strv_free()) and their number in *count (may be NULL).
 */
RV_API rv_err_t rv_broker_list_topics(rv_broker_t *broker, char ***names, size_t *count,
                                      rv_error_t **err);

/** Frees a NULL-terminated string array returned by the library. Accepts NULL. */
RV_API void rv_strv_free(char **strv);

/**
 * Describes `topic`: its partition count in *partitions and, when `topic_conf` is not NULL, a
 * new configuration holding its topic properties (free with rv_conf_destroy()).
 * RV_ERR_NOT_FOUND when there is no such topic.
 */
RV_API rv_err_t rv_broker_describe_topic(rv_broker_t *broker, const char *topic,
                                         int32_t *partitions, rv_conf_t **topic_conf,
                                         rv_error_t **err);

/**
 * The low watermark (first offset still stored) and high watermark (the offset the next record
 * will get) of a partition.
 */
RV_API rv_err_t rv_broker_watermarks(rv_broker_t *broker, const char *topic, int32_t partition,
                                     int64_t *low, int64_t *high, rv_error_t **err);

/* ---- producers --------------------------------------------------------------------------- */

/** A producer. Opaque. */
typedef struct rv_producer_s rv_producer_t;

/**
 * A delivery report: `record` is the record as stored (topic, partition, offset and timestamp
 * filled in; key, value and headers valid only during the call), `err` RV_OK or why it was not
 * stored, `record_opaque` the pointer given to rv_producer_send(). Called from
 * rv_producer_poll() or rv_producer_flush() in the calling thread (or from rv_producer_send()
 * while it waits for queue space in the middle of a split value).
 * A value sent split into chunks has one report, once every chunk is acknowledged: its offset
 * is the first chunk's (where a consumer reading it starts), `err` the first error of any
 * chunk (then the offset is RV_OFFSET_INVALID), and its value is not kept: `value` is NULL
 * and `value_len` 0.
 */
typedef void (*rv_delivery_cb)(void *opaque, const rv_record_t *record, rv_err_t err,
                               void *record_opaque);

/** Options for rv_producer_new(). */
typedef struct rv_producer_opts_s {
    const rv_conf_t *conf;       /**< producer properties; NULL = the broker's */
    rv_delivery_cb delivery_cb;  /**< may be NULL */
    void *opaque;                /**< passed to delivery_cb */
} rv_producer_opts_t;

RV_API rv_producer_t *rv_producer_new(rv_broker_t *broker, const rv_producer_opts_t *opts,
                                      rv_error_t **err);

/**
 * Queues `record` for its topic (copied; the view may be reused at once). The record is stored
 * when its batch is written (on size, on linger, or at rv_producer_flush()); its delivery report
 * says so. A record larger than message.split.bytes is sent as chunk records that consumers
 * reassemble (message.split=true, the default; see docs/brokers.md, "Large values"); once its
 * first chunk is queued, the call waits for queue space for the others, serving delivery
 * reports, up to 60 s. RV_ERR_NOT_FOUND for an unknown topic, RV_ERR_INVALID_ARG for a
 * partition out of range (or a split record carrying a header named "__rv.chunk.*"),
 * RV_ERR_LIMIT when the record exceeds message.split.bytes and splitting is off, when its key
 * and headers alone leave no room for a chunk of value, or when it exceeds the topic's
 * max.message.bytes, RV_ERR_AGAIN when the queue is full (poll or flush, then retry). When a
 * later chunk of a split value cannot be queued the call returns that error, no report
 * follows, and consumers drop the partial value.
 */
RV_API rv_err_t rv_producer_send(rv_producer_t *producer, const rv_record_t *record,
                                 void *record_opaque);

/** Serves delivery reports ready now, waiting up to `timeout_ms`. Returns how many it served. */
RV_API int rv_producer_poll(rv_producer_t *producer, int timeout_ms);

/**
 * Writes every queued record and waits for all delivery reports, up to `timeout_ms` (-1 = no
 * limit). RV_ERR_TIMEOUT when reports are still outstanding.
 */
RV_API rv_err_t rv_producer_flush(rv_producer_t *producer, int timeout_ms, rv_error_t **err);

/** Flushes (without limit) and frees the producer. Accepts NULL. */
RV_API void rv_producer_close(rv_producer_t *producer);

/* ---- consumers --------------------------------------------------------------------------- */

/** A consumer. Opaque. */
typedef struct rv_consumer_s rv_consumer_t;

/** Callbacks of a consumer, all called from rv_consumer_poll() in the polling thread. */
typedef struct rv_consumer_callbacks_s {
    void *opaque;
    /** Partitions newly assigned to this member, with the offsets it will resume from. */
    void (*on_assign)(void *opaque, rv_consumer_t *consumer, const rv_topic_partition_t *tps,
                      size_t count);
    /** Partitions about to be taken away; commit what was processed before returning. */
    void (*on_revoke)(void *opaque, rv_consumer_t *consumer, const rv_topic_partition_t *tps,
                      size_t count);
    /** The consumer has read every record of a partition up to `offset` (its high watermark). */
    void (*on_partition_eof)(void *opaque, rv_consumer_t *consumer, const char *topic,
                             int32_t partition, int64_t offset);
    /**
     * Something the consumer read could not be delivered and was dropped; polling goes on.
     * `message` (borrowed, valid during the call) names the topic, partition, first offset and
     * key concerned. Today these are split values (see docs/brokers.md, "Large values"):
     * RV_ERR_TIMEOUT when a value's chunks did not all arrive within
     * message.split.timeout.ms, RV_ERR_LIMIT when values being reassembled would exceed
     * message.split.max.bytes (the oldest is dropped), RV_ERR_CORRUPT for chunk headers that
     * do not fit together, RV_ERR_NOMEM. The same report goes to the log at warning level.
     * May be NULL.
     */
    void (*on_error)(void *opaque, rv_consumer_t *consumer, rv_err_t err, const char *message);
} rv_consumer_callbacks_t;

/** Options for rv_consumer_new(). */
typedef struct rv_consumer_opts_s {
    const rv_conf_t *conf;           /**< consumer properties; NULL = the broker's */
    const char *group;               /**< consumer group id; NULL = no group (assign only) */
    rv_consumer_callbacks_t callbacks;
} rv_consumer_opts_t;

RV_API rv_consumer_t *rv_consumer_new(rv_broker_t *broker, const rv_consumer_opts_t *opts,
                                      rv_error_t **err);

/**
 * Joins the group and subscribes to `count` topics; partitions are assigned to this member by
 * the group (on_assign) and may move to other members later (on_revoke). Needs a group.
 */
RV_API rv_err_t rv_consumer_subscribe(rv_consumer_t *consumer, const char *const *topics,
                                      size_t count, rv_error_t **err);

/**
 * Assigns partitions by hand (replacing any previous assignment), each starting at its offset
 * (an offset, RV_OFFSET_BEGINNING, RV_OFFSET_END or RV_OFFSET_STORED).
 */
RV_API rv_err_t rv_consumer_assign(rv_consumer_t *consumer, const rv_topic_partition_t *tps,
                                   size_t count, rv_error_t **err);

/**
 * Returns up to `max` records in *records (an array owned by the consumer, valid until the next
 * poll) and their number in *count, waiting up to `timeout_ms` for the first one (-1 = no
 * limit, 0 = no wait). Records of one partition come in offset order, except that a value sent
 * split into chunks comes, whole, where its last chunk was read, with the offset of its first
 * chunk (chunk records themselves are never returned). Serves the callbacks.
 * RV_ERR_CORRUPT when stored data fails its checksum (*err names the file and offset; no
 * corrupted record is ever returned).
 */
RV_API rv_err_t rv_consumer_poll(rv_consumer_t *consumer, const rv_record_t **records,
                                 size_t max, size_t *count, int timeout_ms, rv_error_t **err);

/**
 * Commits offsets for the group: `tps` (offset = the next record to read) or, when `tps` is
 * NULL, the current position of every assigned partition. Synchronous: durable on return.
 * A partition holding a split value whose chunks are still arriving is committed at most at
 * that value's first offset, so a consumer resuming there reads all of it.
 */
RV_API rv_err_t rv_consumer_commit(rv_consumer_t *consumer, const rv_topic_partition_t *tps,
                                   size_t count, rv_error_t **err);

/** Fills the `offset` of each of `tps` with the group's committed offset (RV_OFFSET_INVALID if none). */
RV_API rv_err_t rv_consumer_committed(rv_consumer_t *consumer, rv_topic_partition_t *tps,
                                      size_t count, rv_error_t **err);

/**
 * Fills the `offset` of each of `tps` with the consumer's position (next offset to read). It
 * is the real read position, also past the chunks of a value still being reassembled (which
 * rv_consumer_commit() does not commit past).
 */
RV_API rv_err_t rv_consumer_position(rv_consumer_t *consumer, rv_topic_partition_t *tps,
                                     size_t count, rv_error_t **err);

/**
 * Moves an assigned partition's position to `offset` (or RV_OFFSET_BEGINNING / END). Chunks
 * of split values read from that partition and not yet delivered are forgotten (a value whose
 * first chunk is before `offset` is then skipped with a notice in the log).
 */
RV_API rv_err_t rv_consumer_seek(rv_consumer_t *consumer, const char *topic, int32_t partition,
                                 int64_t offset, rv_error_t **err);

/**
 * For each of `tps`, whose `offset` holds a timestamp in ms, stores the earliest offset whose
 * record timestamp is at or after it (RV_OFFSET_END when there is none).
 */
RV_API rv_err_t rv_consumer_offsets_for_times(rv_consumer_t *consumer, rv_topic_partition_t *tps,
                                              size_t count, rv_error_t **err);

/** Stops (pause) or restarts (resume) fetching from assigned partitions. */
RV_API rv_err_t rv_consumer_pause(rv_consumer_t *consumer, const rv_topic_partition_t *tps,
                                  size_t count, rv_error_t **err);
RV_API rv_err_t rv_consumer_resume(rv_consumer_t *consumer, const rv_topic_partition_t *tps,
                                   size_t count, rv_error_t **err);

/** Leaves the group (revoking its partitions) and frees the consumer. Accepts NULL. */
RV_API void rv_consumer_close(rv_consumer_t *consumer);

/* ---- transactions ------------------------------------------------------------------------ */

/*
 * A producer made with the property transactional.id set writes records in transactions:
 * records sent between rv_producer_begin_transaction() and rv_producer_commit_transaction()
 * become visible to read_committed consumers all at once when the commit succeeds, and never
 * when the transaction is aborted. Consumed offsets sent with
 * rv_producer_send_offsets_to_transaction() are committed for the consumer's group in the same
 * transaction, which makes consume-transform-produce exactly-once. `kafka://` and `local:`
 * brokers have transactions; `memory:` answers RV_ERR_UNSUPPORTED. On `local:` the records wait
 * in the producer until the commit (at most transaction.max.bytes: RV_ERR_LIMIT past it), and
 * their delivery reports are served from inside rv_producer_commit_transaction() (an abort
 * reports them with RV_ERR_STATE); see docs/brokers.md, "local: ... Transactions".
 *
 * Errors of every transaction call: RV_ERR_UNSUPPORTED (the broker has no transactions),
 * RV_ERR_STATE (the producer has no transactional.id, the call does not fit the transaction's
 * state, or the transaction failed and must be aborted), RV_ERR_AGAIN (a retriable failure:
 * call it again), RV_ERR_TIMEOUT, RV_ERR_TRANSPORT (the cluster could not be reached in time),
 * RV_ERR_FATAL (the producer was fenced by a newer one with the same transactional.id, or
 * another fatal error: close it). *err says which, and what to do.
 */

/**
 * Starts a transaction. The first call also initialises the producer's transactions with the
 * cluster (fencing older producers with the same transactional.id), waiting up to
 * broker.availability.timeout.ms.
 */
RV_API rv_err_t rv_producer_begin_transaction(rv_producer_t *producer, rv_error_t **err);

/**
 * Adds consumed offsets to the current transaction, committed for `consumer`'s group when the
 * transaction commits: `offsets` (each the next offset to read) or, when NULL, the position of
 * every partition assigned to `consumer`. The consumer must have a group and come from a broker
 * of the same kind (RV_ERR_INVALID_ARG otherwise). `timeout_ms` -1 waits up to
 * broker.availability.timeout.ms.
 */
RV_API rv_err_t rv_producer_send_offsets_to_transaction(rv_producer_t *producer,
                                                        rv_consumer_t *consumer,
                                                        const rv_topic_partition_t *offsets,
                                                        size_t count, int timeout_ms,
                                                        rv_error_t **err);

/**
 * Flushes the transaction's records and commits it, waiting up to `timeout_ms` (-1:
 * broker.availability.timeout.ms). On RV_ERR_AGAIN or RV_ERR_TIMEOUT the outcome is not known
 * yet: call it again; on RV_ERR_STATE abort the transaction.
 */
RV_API rv_err_t rv_producer_commit_transaction(rv_producer_t *producer, int timeout_ms,
                                               rv_error_t **err);

/**
 * Aborts the current transaction: its records are never shown to read_committed consumers and
 * its offsets are not committed. Waits up to `timeout_ms` (-1: broker.availability.timeout.ms).
 */
RV_API rv_err_t rv_producer_abort_transaction(rv_producer_t *producer, int timeout_ms,
                                              rv_error_t **err);

RV_END_DECLS

#endif
