/*
 * rivulet/app.h: applications: topics with serialisers, the run loop, checkpoints, errors,
 * metrics.
 *
 * An application consumes its source topics as a member of a consumer group, runs every record
 * through the dataframe graphs built on it (see dataframe.h), produces their outputs, and
 * checkpoints: every commit.interval.ms or commit.every records, and whenever partitions are
 * revoked, it flushes its producer and sinks, writes the changes of its state stores to their
 * changelogs, commits the offsets of the records it has processed and then commits the stores
 * (see state.h), so a crash anywhere loses nothing (at-least-once). With
 * processing.guarantee=exactly-once each worker's producer is transactional: a checkpoint puts
 * the outputs, the changelog records and the consumed offsets in one transaction and commits
 * it before the stores (docs/applications.md, "Processing guarantees"). Worker threads
 * (app.threads) each own a set of partitions. Bad records and failing user functions follow the
 * error policy (processing.error.policy: stop, skip or dead-letter); nothing is skipped silently.
 *
 * Thread rules: build the application (topics, dataframes) from one thread, then call
 * rv_app_run() once; rv_app_stop() may be called from any thread or a signal handler.
 */
#ifndef RIVULET_APP_H
#define RIVULET_APP_H

#include "broker.h"
#include "common.h"
#include "config.h"
#include "error.h"
#include "log.h"
#include "value.h"

RV_BEGIN_DECLS

/** An application. Opaque. */
typedef struct rv_app_s rv_app_t;

/** A topic known to an application, with its serialisers. Opaque; owned by the application. */
typedef struct rv_topic_s rv_topic_t;

/** The per-record context handed to user functions. Opaque; valid during the call only. */
typedef struct rv_ctx_s rv_ctx_t;

/** Options for rv_app_new(); zero-initialise and set what you need. */
typedef struct rv_app_opts_s {
    /** Broker URL; NULL = RV_BROKER_DEFAULT_URL. */
    const char *broker_url;
    /** Consumer group id; required. Also names the application's internal topics. */
    const char *group;
    /**
     * Properties (borrowed for the call): auto.offset.reset, commit.interval.ms, commit.every,
     * processing.guarantee, processing.error.policy, dead.letter.topic, app.threads, state.dir,
     * state.lock.timeout.ms, state.buffer.max.bytes, rocksdb.* (passed to RocksDB), and any
     * broker, producer and consumer property. NULL = defaults.
     */
    const rv_conf_t *conf;
    /** Where the application's and the broker's log lines go; NULL = nowhere. */
    rv_log_cb log_cb;
    void *log_opaque;
    /**
     * Called for every record that fails (bytes its serialiser cannot read, a failing operator
     * or user function), before the error policy applies, with the error's code and message
     * (which names topic, partition, offset, key and the reason; borrowed for the call). It is
     * called from the worker thread that processed the record; NULL = not called.
     */
    void (*on_error)(void *opaque, rv_err_t code, const char *message);
    void *error_opaque;
} rv_app_opts_t;

/**
 * Creates an application and opens its broker. Free with rv_app_destroy(). Errors:
 * RV_ERR_INVALID_ARG (no group), RV_ERR_CONFIG, and the broker's open errors; *err says which.
 */
RV_API rv_app_t *rv_app_new(const rv_app_opts_t *opts, rv_error_t **err);

/** Frees the application, its topics and dataframes. Must not be running. Accepts NULL. */
RV_API void rv_app_destroy(rv_app_t *app);

/** The application's broker (borrowed), for admin calls or extra producers. */
RV_API rv_broker_t *rv_app_broker(rv_app_t *app);

/**
 * Extracts a record's timestamp (ms) from its decoded value, or returns `record_ts` to keep the
 * broker's. Called once per record, before any operator.
 */
typedef int64_t (*rv_timestamp_fn)(void *opaque, const rv_value_t *key, const rv_value_t *value,
                                   int64_t record_ts);

/** Options for rv_app_topic(); zero-initialise and set what you need. */
typedef struct rv_topic_opts_s {
    /**
     * Serialiser of keys: "bytes" (default), "string", "int", "int32", "double", "json"
     * (docs/applications.md gives their byte layouts).
     */
    const char *key_serde;
    /** Serialiser of values: "json" (default), "bytes", "string", "int", "int32", "double". */
    const char *value_serde;
    /** Partitions when the application creates the topic (it does when missing); 0 = 1. */
    int32_t partitions;
    /** Topic properties for creation (retention.ms, cleanup.policy, ...); NULL = defaults. */
    const rv_conf_t *topic_conf;
    /** Timestamp extractor; NULL keeps the broker's timestamps. */
    rv_timestamp_fn timestamp_fn;
    void *timestamp_opaque;
} rv_topic_opts_t;

/**
 * Declares topic `name` for use as a source (rv_app_dataframe()) or a destination
 * (rv_df_to_topic()); creates it on the broker at run time when it does not exist. Declaring the
 * same name twice returns the same topic (options of the second call must match or be NULL).
 * RV_ERR_CONFIG for an unknown serialiser name (the message lists the known ones).
 */
RV_API rv_topic_t *rv_app_topic(rv_app_t *app, const char *name, const rv_topic_opts_t *opts,
                                rv_error_t **err);

/** The topic's name. Borrowed. */
RV_API const char *rv_topic_name(const rv_topic_t *topic);

/** Options for rv_app_run(). */
typedef struct rv_run_opts_s {
    /** Stop after this many source records were processed (0 = no limit). */
    int64_t count;
    /** Stop after this many ms (0 = no limit). */
    int64_t timeout_ms;
    /** Stop when every assigned source partition reached its end (for batch jobs and tests). */
    bool until_end;
    /** Install SIGINT and SIGTERM handlers: the first stops gracefully, a second at once. */
    bool handle_signals;
} rv_run_opts_t;

/**
 * Runs the application until a stop condition, rv_app_stop(), or an error under the `stop`
 * policy; checkpoints on the way out. Returns RV_OK on a clean stop, or the error that stopped
 * it with *err naming topic, partition, offset, key and the reason. `opts` may be NULL.
 */
RV_API rv_err_t rv_app_run(rv_app_t *app, const rv_run_opts_t *opts, rv_error_t **err);

/** Asks a running application to stop after a final checkpoint. Async-signal-safe. */
RV_API void rv_app_stop(rv_app_t *app);

/** Counters kept by the runtime, read with rv_app_metrics(). A plain value view. */
typedef struct rv_app_metrics_s {
    int64_t records_in;        /**< source records consumed */
    int64_t records_out;       /**< records produced to topics (dead letters included) */
    int64_t records_sunk;      /**< records handed to sinks */
    int64_t records_filtered;  /**< records dropped by filters */
    int64_t errors;            /**< bad records and failed user functions */
    int64_t skipped;           /**< of those, skipped under the skip policy */
    int64_t dead_lettered;     /**< of those, sent to the dead-letter topic */
    int64_t checkpoints;       /**< checkpoints completed */
    int64_t checkpoint_last_us;  /**< duration of the last checkpoint */
    int64_t checkpoint_max_us;   /**< longest checkpoint */
    int64_t lag;               /**< records behind the high watermarks at the last checkpoint */
    int64_t state_stores;      /**< state stores open (one per store and partition) */
    int64_t state_bytes;       /**< their estimated size: SST files and memtables */
    int64_t state_restored;    /**< changelog records applied restoring stores */
    int64_t txn_commits;       /**< exactly-once: transactions committed (one per checkpoint) */
    int64_t txn_aborts;        /**< exactly-once: transactions aborted (state rolled back) */
} rv_app_metrics_t;

/** Copies the current counters into *out. Safe from any thread while running. */
RV_API void rv_app_metrics(rv_app_t *app, rv_app_metrics_t *out);

/* ---- the per-record context ---------------------------------------------------------------- */

/** The arena of the current batch: allocate new values here. */
RV_API rv_arena_t *rv_ctx_arena(rv_ctx_t *ctx);
/** The record's decoded key (NULL when it has none). */
RV_API const rv_value_t *rv_ctx_key(const rv_ctx_t *ctx);
/** The record's timestamp in ms (after extraction and set_timestamp). */
RV_API int64_t rv_ctx_timestamp(const rv_ctx_t *ctx);
/** Where the source record came from: topic (borrowed), partition, offset. */
RV_API const char *rv_ctx_topic(const rv_ctx_t *ctx);
RV_API int32_t rv_ctx_partition(const rv_ctx_t *ctx);
RV_API int64_t rv_ctx_offset(const rv_ctx_t *ctx);
/** The record's headers (borrowed; valid during the call). */
RV_API const rv_header_t *rv_ctx_headers(const rv_ctx_t *ctx, size_t *count);
/**
 * Records why a user function fails: call it, then return the failure (NULL from apply, an
 * error code from update, a negative value from filter). The message goes into the error that
 * the policy reports (with topic, partition, offset and key added by the runtime).
 */
RV_API void rv_ctx_fail(rv_ctx_t *ctx, const char *fmt, ...) RV_PRINTF(2, 3);

RV_END_DECLS

#endif
