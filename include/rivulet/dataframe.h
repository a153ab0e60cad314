/*
 * rivulet/dataframe.h: dataframes, the graph of operators an application runs on each record.
 *
 * rv_app_dataframe() starts a dataframe from a source topic; every operator returns a new
 * dataframe that follows it, so a pipeline reads as a chain. Applying two operators to the same
 * dataframe branches it: each record flows into both chains, in the order they were added.
 * The graph is built before rv_app_run() and never changes while it runs. Values are rv_value_t
 * trees in the batch's arena (rv_ctx_arena()); user functions are plain C function pointers
 * with a user-data pointer and must not keep pointers into a record after they return.
 *
 * A user function fails by calling rv_ctx_fail() and returning its failure value; the
 * application's error policy decides what happens to the record (stop, skip, dead-letter).
 *
 * Building never fails silently: an operator given bad arguments (a NULL function, an empty
 * field path, dataframes of different applications) returns NULL, and the application keeps the
 * first such error, naming the operator, for rv_app_run() to return. Operators given a NULL
 * dataframe return NULL, so a chain can be checked once at its end.
 */
#ifndef RIVULET_DATAFRAME_H
#define RIVULET_DATAFRAME_H

#include "app.h"
#include "common.h"
#include "error.h"
#include "state.h"
#include "strbuf.h"
#include "value.h"

RV_BEGIN_DECLS

/** A dataframe: a point in an application's graph. Opaque; owned by the application. */
typedef struct rv_df_s rv_df_t;

/** One in, one out: returns the new value (may be `value` itself), or NULL to fail. */
typedef rv_value_t *(*rv_apply_fn)(rv_ctx_t *ctx, rv_value_t *value, void *opaque);
/** Changes `value` in place; returns RV_OK, or an error code to fail. */
typedef rv_err_t (*rv_update_fn)(rv_ctx_t *ctx, rv_value_t *value, void *opaque);
/** Returns 1 to keep the record, 0 to drop it, a negative value to fail. */
typedef int (*rv_filter_fn)(rv_ctx_t *ctx, const rv_value_t *value, void *opaque);
/**
 * One in, many out: returns an array whose items are emitted in order as separate records
 * (an empty array emits nothing), or NULL to fail.
 */
typedef rv_value_t *(*rv_expand_fn)(rv_ctx_t *ctx, rv_value_t *value, void *opaque);
/** Computes a value from the record (for set_field, group_by keys, topic names, timestamps). */
typedef rv_value_t *(*rv_compute_fn)(rv_ctx_t *ctx, const rv_value_t *value, void *opaque);

/** Starts a dataframe reading `source`. NULL when memory is exhausted. */
RV_API rv_df_t *rv_app_dataframe(rv_app_t *app, rv_topic_t *source);

RV_API rv_df_t *rv_df_apply(rv_df_t *df, rv_apply_fn fn, void *opaque);
RV_API rv_df_t *rv_df_update(rv_df_t *df, rv_update_fn fn, void *opaque);
RV_API rv_df_t *rv_df_filter(rv_df_t *df, rv_filter_fn fn, void *opaque);
RV_API rv_df_t *rv_df_expand(rv_df_t *df, rv_expand_fn fn, void *opaque);

/*
 * Stateful operators: apply, update and filter whose function may call rv_ctx_state(ctx) for the
 * state of the record's key in the store named `store` (see state.h and docs/state.md). The
 * store follows the partitions of the topic the dataframe reads (after a group_by, of its
 * repartition topic), so every record of a key meets the same state. Store names are 1 to 100
 * of [a-zA-Z0-9._-]; operators naming the same store on the same topic share it. Records
 * without a key fail (error policy). A record replayed after a crash whose changes the store
 * already holds skips the operator and what follows it (its results were already delivered).
 */
RV_API rv_df_t *rv_df_apply_state(rv_df_t *df, const char *store, rv_apply_fn fn, void *opaque);
RV_API rv_df_t *rv_df_update_state(rv_df_t *df, const char *store, rv_update_fn fn,
                                   void *opaque);
RV_API rv_df_t *rv_df_filter_state(rv_df_t *df, const char *store, rv_filter_fn fn,
                                   void *opaque);

/*
 * Fields without user code. A field path names an object member, with dots for nested objects
 * ("gps.lat"). A missing field reads as null.
 */

/** Replaces the value by its field `path` (null when missing). */
RV_API rv_df_t *rv_df_get_field(rv_df_t *df, const char *path);
/** Sets field `path` to the result of `fn` (objects on the path are created when missing). */
RV_API rv_df_t *rv_df_set_field(rv_df_t *df, const char *path, rv_compute_fn fn, void *opaque);
/** Sets field `path` to a copy of the constant `v` (copied when the dataframe is built). */
RV_API rv_df_t *rv_df_set_field_const(rv_df_t *df, const char *path, const rv_value_t *v);
/** Keeps only the `count` named top-level fields, in the given order. */
RV_API rv_df_t *rv_df_select(rv_df_t *df, const char *const *fields, size_t count);
/** Removes the `count` named top-level fields. */
RV_API rv_df_t *rv_df_drop(rv_df_t *df, const char *const *fields, size_t count);

/** Comparisons for rv_df_filter_field(). */
typedef enum rv_cmp_e {
    RV_CMP_EQ,      /**< equal (numbers compare by value: 1 == 1.0) */
    RV_CMP_NE,      /**< not equal */
    RV_CMP_LT,      /**< less than (numbers, or strings by bytes) */
    RV_CMP_LE,
    RV_CMP_GT,
    RV_CMP_GE,
    RV_CMP_EXISTS,  /**< the field is present and not null (`v` ignored) */
    RV_CMP_MISSING  /**< the field is absent or null (`v` ignored) */
} rv_cmp_t;

/**
 * Keeps records whose field `path` compares to the constant `v` as `cmp` says. Values of
 * different kinds (a string against a number) never compare less, greater or equal.
 */
RV_API rv_df_t *rv_df_filter_field(rv_df_t *df, const char *path, rv_cmp_t cmp,
                                   const rv_value_t *v);

/** Produces each record to `topic` (its serialisers), with the record's key and headers. */
RV_API rv_df_t *rv_df_to_topic(rv_df_t *df, rv_topic_t *topic);
/**
 * Produces each record to the topic named by `fn`'s string result (declared on first use with
 * `opts`, which may be NULL for defaults; created when missing).
 */
RV_API rv_df_t *rv_df_to_topic_fn(rv_df_t *df, rv_compute_fn fn, void *opaque,
                                  const rv_topic_opts_t *opts);

/**
 * Re-keys records by field `path` (when `fn` is NULL) or by `fn`'s result, through a repartition
 * topic named "<group>--repartition--<source topic>--<name>" created with the source's partition
 * count, so every record of a key is processed by the partition owning that key. The returned
 * dataframe continues after the repartition topic. `name` must be unique in the application.
 */
RV_API rv_df_t *rv_df_group_by(rv_df_t *df, const char *name, const char *path,
                               rv_compute_fn fn, void *opaque);

/** Sets the record's timestamp (ms) to `fn`'s integer result. */
RV_API rv_df_t *rv_df_set_timestamp(rv_df_t *df, rv_compute_fn fn, void *opaque);
/**
 * Replaces the record's headers by `fn`'s result: an object whose members are header names and
 * whose string or bytes values are the header values (null removes all headers).
 */
RV_API rv_df_t *rv_df_set_headers(rv_df_t *df, rv_compute_fn fn, void *opaque);

/** Merges `count` dataframes of one application into one that continues all of them. */
RV_API rv_df_t *rv_df_concat(rv_df_t *const *dfs, size_t count);

/** Print flags. */
typedef enum rv_print_flags_e {
    RV_PRINT_VALUE = 0,          /**< the value as compact JSON */
    RV_PRINT_METADATA = 1 << 0,  /**< also topic, partition, offset, key, timestamp */
    RV_PRINT_PRETTY = 1 << 1     /**< indented JSON */
} rv_print_flags_t;

/** Writes each record to stdout (one line each unless pretty); the record flows on. */
RV_API rv_df_t *rv_df_print(rv_df_t *df, int flags);

/** A sink callback: receives each record; returns RV_OK or an error to fail the record. */
typedef rv_err_t (*rv_sink_fn)(rv_ctx_t *ctx, const rv_value_t *value, void *opaque);

/** A sink object: writes records, and is flushed at every checkpoint before offsets commit. */
typedef struct rv_sink_ops_s {
    int version; /**< 1 */
    rv_err_t (*write)(void *sink, rv_ctx_t *ctx, const rv_value_t *value);
    /** Makes everything written so far durable; an error fails the checkpoint. May be NULL. */
    rv_err_t (*flush)(void *sink, rv_error_t **err);
    /** Called once when the application is destroyed. May be NULL. */
    void (*close)(void *sink);
} rv_sink_ops_t;

/** Hands each record to `fn`; the record flows on. */
RV_API rv_df_t *rv_df_sink(rv_df_t *df, rv_sink_fn fn, void *opaque);
/** Hands each record to a sink object (`ops` static; `sink` owned by the caller until close). */
RV_API rv_df_t *rv_df_sink_obj(rv_df_t *df, const rv_sink_ops_t *ops, void *sink);

/* ==== windows and aggregations (docs/windows.md) ============================================ */

/**
 * An aggregation's operations, for custom aggregations (RV_AGG_CUSTOM). A window keeps one
 * accumulator per aggregation and window: `acc_size` bytes that the window allocates (aligned
 * for any C type) and that live in the window's state store in the bytes `serialise` writes.
 * Built-in aggregations are such tables too. All functions are called from the worker thread
 * that owns the record's partition; `opaque` is rv_agg_t.opaque.
 */
typedef struct rv_agg_ops_s {
    int version;     /**< 1 */
    size_t acc_size; /**< bytes of one accumulator (> 0) */
    /** Makes `acc` the accumulator of an empty window. */
    void (*init)(void *acc, void *opaque);
    /**
     * Adds one record: `input` is the aggregated field (or the whole value; NULL when the field
     * is missing), `ts` the record's event time, `seq` its arrival position in its partition
     * (increasing). Returns RV_OK, or an error (after rv_ctx_fail()) to fail the record.
     */
    rv_err_t (*add)(void *acc, const rv_value_t *input, int64_t ts, int64_t seq, rv_ctx_t *ctx,
                    void *opaque);
    /** Adds everything `other` holds into `acc` (session windows merging). */
    void (*merge)(void *acc, const void *other, void *opaque);
    /** The window's result, allocated in `arena`; NULL when memory is exhausted. */
    rv_value_t *(*result)(const void *acc, rv_arena_t *arena, void *opaque);
    /** Appends the accumulator's bytes to `out`. RV_ERR_NOMEM when it cannot. */
    rv_err_t (*serialise)(const void *acc, rv_strbuf_t *out, void *opaque);
    /** Rebuilds an accumulator (not initialised) from `len` bytes; RV_ERR_CORRUPT when bad. */
    rv_err_t (*deserialise)(void *acc, const void *data, size_t len, void *opaque);
    /** Frees what the accumulator owns. May be NULL. */
    void (*release)(void *acc, void *opaque);
} rv_agg_ops_t;

/** The aggregations a window computes. */
typedef enum rv_agg_kind_e {
    RV_AGG_COUNT,    /**< records (with a field: records whose field is present and not null) */
    RV_AGG_SUM,      /**< sum of numbers: an int while every input is an int and it fits */
    RV_AGG_MEAN,     /**< mean of numbers, a double; null when there were none */
    RV_AGG_MIN,      /**< smallest number; null when there were none */
    RV_AGG_MAX,      /**< largest number; null when there were none */
    RV_AGG_FIRST,    /**< the input of the first record to arrive */
    RV_AGG_LAST,     /**< the input of the last record to arrive */
    RV_AGG_EARLIEST, /**< the input of the record with the smallest timestamp (ties: first) */
    RV_AGG_LATEST,   /**< the input of the record with the largest timestamp (ties: last) */
    RV_AGG_COLLECT,  /**< every input, in arrival order, as an array */
    RV_AGG_CUSTOM    /**< `ops` with `opaque` */
} rv_agg_kind_t;

/**
 * One aggregation of a window: its result appears as member `name` of every emitted window.
 * Sum, mean, min and max skip missing and null inputs and fail a record whose input is not a
 * number.
 */
typedef struct rv_agg_s {
    const char *name;        /**< output member name (not "start" or "end"); copied */
    rv_agg_kind_t kind;
    const char *field;       /**< field path of the value to aggregate; NULL = the whole value */
    const rv_agg_ops_t *ops; /**< RV_AGG_CUSTOM only (static; borrowed for the graph's life) */
    void *opaque;            /**< handed to `ops` */
} rv_agg_t;

/** Kinds of windows (docs/windows.md defines each precisely). */
typedef enum rv_window_type_e {
    RV_WINDOW_TUMBLING,       /**< [k*size, (k+1)*size): each record in one window */
    RV_WINDOW_HOPPING,        /**< [k*step, k*step+size): each record in size/step windows */
    RV_WINDOW_SLIDING,        /**< windows of `size`+1 ms ending at or starting after each record */
    RV_WINDOW_COUNT_TUMBLING, /**< every `size` records of a key */
    RV_WINDOW_COUNT_HOPPING,  /**< `size` records of a key, a new window every `step` records */
    RV_WINDOW_SESSION         /**< records of a key less than `size` ms apart */
} rv_window_type_t;

/** When a window emits. */
typedef enum rv_emit_e {
    RV_EMIT_FINAL,  /**< once, when the window closes */
    RV_EMIT_CURRENT /**< after every record that changed it */
} rv_emit_t;

/**
 * Called for each window a record misses because that window is already closed (the record is
 * then dropped from it): the record's key (may be NULL), timestamp and the window's bounds.
 * Called from the worker thread processing the record; `ctx` is valid during the call.
 */
typedef void (*rv_late_fn)(void *opaque, rv_ctx_t *ctx, const rv_value_t *key, int64_t ts,
                           int64_t start, int64_t end);

/** Options for rv_df_window(); zero-initialise and set what you need. */
typedef struct rv_window_opts_s {
    /** Names the window's state store: 1 to 100 of [a-zA-Z0-9._-], unique in the application. */
    const char *name;
    rv_window_type_t type;
    /**
     * Window length: ms for tumbling and hopping, the time difference (ms) for sliding, the
     * inactivity gap (ms) for sessions, records for count windows. > 0.
     */
    int64_t size;
    /** Hopping windows: ms (or records) between window starts, 0 < step <= size. */
    int64_t step;
    /** How long (ms of event time) after its end a window still accepts records. >= 0. */
    int64_t grace_ms;
    rv_emit_t emit;
    /**
     * When none of a key's open windows received a record for this many ms of wall-clock time,
     * closes them all (emitting final values) although event time did not reach their ends;
     * later records of that key for those windows are late. 0 = never.
     */
    int64_t idle_timeout_ms;
    rv_late_fn on_late; /**< may be NULL */
    void *late_opaque;
} rv_window_opts_t;

/**
 * Aggregates records per key over windows on event time (the record timestamps), keeping the
 * windows in the application's state stores, per partition of the dataframe's topic: a key's
 * records must share a partition (re-key with rv_df_group_by() when the key is not the message
 * key). Emits records whose key is the window's key, whose value is an object {"start", "end",
 * <name of each aggregation>: its result} (start inclusive, end exclusive, ms), whose timestamp
 * is end - 1, without headers. `aggs` (`count` >= 1; copied, ops borrowed) are computed in one
 * pass. Bad options, aggregations or a store name already used make it return NULL with the
 * application keeping the error (RV_ERR_INVALID_ARG). A record whose aggregated input has the
 * wrong type fails (error policy).
 */
RV_API rv_df_t *rv_df_window(rv_df_t *df, const rv_window_opts_t *opts, const rv_agg_t *aggs,
                             size_t count);

/* ==== end of windows and aggregations ======================================================= */

/* ==== resampling telemetry frames (docs/timeseries.md) ===================================== */

/* rv_tinterp_opts_t of timeseries.h (included by rivulet.h), named by its tag here. */
struct rv_tinterp_opts_s;

/**
 * Resamples telemetry frames: records whose value is a frame packet tree (as the `telemetry`
 * and `quix` serialisers decode them: {"type": "frame", "stream_id", "columns", "rows"}) are fed
 * to a resampler (rv_tinterp_t) made with `opts` (copied; `emit` and `opaque` are ignored), one
 * per input partition and stream id, created on the stream's first frame. Each batch of grid
 * rows it emits goes downstream as a frame packet tree of the same stream id, with the input
 * record's key, timestamp = its first grid point in ms, and no headers. Every other value
 * (other packets, tombstones, non-telemetry values) passes through unchanged.
 * A grid interval is emitted once a frame with a row of a later interval arrives; nothing is
 * flushed at the end of input. The resamplers live in memory only: they are lost when the
 * application stops, and a partition read again from an earlier offset (after a rebalance)
 * starts afresh, so reprocessed input rebuilds only what it covers. A frame with a late row
 * (opts->late = RV_TLATE_ERROR) or a string column under a built-in aggregator fails (error
 * policy). Bad options make it return NULL with the application keeping the error.
 */
RV_API rv_df_t *rv_df_resample(rv_df_t *df, const struct rv_tinterp_opts_s *opts);

/* ==== end of resampling ===================================================================== */

RV_END_DECLS

#endif
