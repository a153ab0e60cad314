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

RV_END_DECLS

#endif
