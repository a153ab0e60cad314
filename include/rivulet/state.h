/*
 * rivulet/state.h: per-key state for user functions.
 *
 * The stateful operators rv_df_apply_state(), rv_df_update_state() and rv_df_filter_state()
 * (dataframe.h) name a store; while their function runs, rv_ctx_state() returns a handle on the
 * state of the record's key in that store. A key's state is a set of named values (rv_value_t,
 * stored as JSON: bytes read back as strings), read and written here. Writes become durable at
 * the application's next checkpoint, together with the input offsets: the store is a RocksDB
 * instance per (store, partition) under state.dir, and every change also goes to a compacted
 * changelog topic from which a partition's store is rebuilt when it moves to another process or
 * its files are lost. A record replayed after a crash (already applied to the state) does not
 * run the stateful operator again. See docs/state.md.
 *
 * A value set with a TTL expires on event time: it reads as absent once the partition has seen
 * a record whose timestamp is at or after the set record's timestamp plus the TTL.
 *
 * Thread rules: a handle is valid during the user function's call only, in its thread.
 */
#ifndef RIVULET_STATE_H
#define RIVULET_STATE_H

#include "app.h"
#include "common.h"
#include "error.h"
#include "value.h"

RV_BEGIN_DECLS

/** The state of one key in one store. Opaque; valid during the user function's call. */
typedef struct rv_state_s rv_state_t;

/**
 * The state of the current record's key in the store of the stateful operator being run, or
 * NULL outside a stateful operator.
 */
RV_API rv_state_t *rv_ctx_state(rv_ctx_t *ctx);

/**
 * Reads value `name` of the key: RV_OK with *out a new value in the batch's arena
 * (rv_ctx_arena()), RV_ERR_NOT_FOUND when it is not set (or expired), RV_ERR_CORRUPT when the
 * stored bytes do not parse, RV_ERR_IO when the store fails, RV_ERR_INVALID_ARG for a NULL or
 * empty name.
 */
RV_API rv_err_t rv_state_get(rv_state_t *state, const char *name, rv_value_t **out);

/**
 * Reads value `name` as an integer: the value, or `dflt` when it is not set or not a number
 * (a double is truncated).
 */
RV_API int64_t rv_state_get_int(rv_state_t *state, const char *name, int64_t dflt);

/**
 * Sets value `name` of the key to a copy of `value`, visible at once to this key's later records
 * and durable at the next checkpoint. RV_ERR_INVALID_ARG for a NULL or empty name or a NULL
 * value, RV_ERR_LIMIT for a name longer than 255 bytes, RV_ERR_RANGE or RV_ERR_PARSE for a
 * value JSON cannot hold (a NaN, invalid UTF-8), RV_ERR_NOMEM. (Records whose key is longer
 * than 65000 bytes fail before the function runs.)
 */
RV_API rv_err_t rv_state_set(rv_state_t *state, const char *name, const rv_value_t *value);

/** Sets value `name` to the integer `v` (as rv_state_set()). */
RV_API rv_err_t rv_state_set_int(rv_state_t *state, const char *name, int64_t v);

/**
 * As rv_state_set(), expiring `ttl_ms` (> 0) after the current record's timestamp in event
 * time. RV_ERR_INVALID_ARG for ttl_ms <= 0.
 */
RV_API rv_err_t rv_state_set_ttl(rv_state_t *state, const char *name, const rv_value_t *value,
                                 int64_t ttl_ms);

/** Deletes value `name` of the key (nothing when it is not set). */
RV_API rv_err_t rv_state_delete(rv_state_t *state, const char *name);

/** Whether value `name` of the key is set (and not expired). */
RV_API bool rv_state_exists(rv_state_t *state, const char *name);

RV_END_DECLS

#endif
