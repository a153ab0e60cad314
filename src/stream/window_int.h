/*
 * window_int.h: windows and aggregations, shared by agg.c, window.c, window_store.c and the
 * window operator's hook in operators.c.
 *
 * The window logic (assigning a record to its windows, adding it to their accumulators, merging
 * sessions, closing windows in watermark order, idle closing on wall-clock time) is written
 * against a small ordered byte-key store interface (rv__wstore_t): get, put, delete and an
 * ordered range scan. The running application backs it with the state stores of src/state; the
 * unit tests and the in-process fallback back it with the in-memory ordered map of
 * window_store.c. Nothing declared here is exported from the library.
 *
 * Layout of one window store (one per window operator and partition); keys compare as bytes,
 * timestamps are written big-endian with the sign bit flipped so byte order is time order:
 *   "W" key_len(u32) key start(i64) end(i64) -> the window's record (header + accumulators)
 *   "I" close(i64) key_len(u32) key start(i64) -> "" (open windows by the time they close)
 *   "R" key_len(u32) key ts seq n(u32)      -> a record's value (sliding windows; n tells apart
 *                                              records of one arrival position)
 *   "C" key_len(u32) key                    -> records seen of the key (count windows)
 *   "F" key_len(u32) key                    -> close floor after an idle close
 *   "I" 0xff x 9                            -> "" (a sentinel after the index, see window.c)
 * where `key` is the record key as rv__window_key_encode() writes it (a type byte, then the
 * string's or bytes' own bytes, or JSON for other values). The partition's largest event
 * time is the state store's own (rv__store_time()), restored with it.
 */
#ifndef RV_WINDOW_INT_H
#define RV_WINDOW_INT_H

#include "stream/stream_int.h"

/* ---- aggregations (agg.c) ------------------------------------------------------------------ */

/* The built-in operations of `kind` (NULL for RV_AGG_CUSTOM or an unknown kind). */
RV__HIDDEN const rv_agg_ops_t *rv__agg_builtin(rv_agg_kind_t kind);

/* The name of `kind` for messages ("sum", ...). */
RV__HIDDEN const char *rv__agg_kind_name(rv_agg_kind_t kind);

/* One aggregation of a set. */
typedef struct rv__agg_s {
    const char *name; /* output member */
    size_t name_len;
    rv_agg_kind_t kind;
    const rv_agg_ops_t *ops;
    void *opaque;
    rv__path_t path; /* n == 0: the whole value */
    size_t offset;   /* of its accumulator in the set's accumulator block */
} rv__agg_t;

/*
 * Several aggregations computed in one pass. An accumulator block is `acc_size` bytes: a header
 * (records, smallest and largest timestamp, wall-clock time of the last update) followed by each
 * aggregation's accumulator.
 */
typedef struct rv__aggset_s {
    rv__agg_t *a;
    size_t n;
    size_t acc_size;
} rv__aggset_t;

/* The header of an accumulator block. */
typedef struct rv__acc_head_s {
    int64_t count;  /* records added */
    int64_t min_ts; /* smallest and largest event time added */
    int64_t max_ts;
    int64_t touched_ms; /* wall-clock ms of the last change (idle closing) */
} rv__acc_head_t;

/*
 * Builds a set from the user's list, copying names and paths into `arena`. Returns RV_OK, or
 * RV_ERR_INVALID_ARG with `why` saying which aggregation is wrong.
 */
RV__HIDDEN rv_err_t rv__aggset_build(rv__aggset_t *set, rv_arena_t *arena, const rv_agg_t *aggs,
                                     size_t count, char *why, size_t why_size);

/* Initialises an accumulator block (every accumulator empty, count 0). */
RV__HIDDEN void rv__aggset_init(const rv__aggset_t *set, void *acc);

/* Adds one record (its value, event time and arrival position). Fails with ctx->fail_msg set. */
RV__HIDDEN rv_err_t rv__aggset_add(const rv__aggset_t *set, void *acc, const rv_value_t *value,
                                   int64_t ts, int64_t seq, rv_ctx_t *ctx);

/* Adds block `other` into `acc` (sessions merging). */
RV__HIDDEN void rv__aggset_merge(const rv__aggset_t *set, void *acc, const void *other);

/* The emitted value {"start", "end", <names>: results}; NULL when the arena is exhausted. */
RV__HIDDEN rv_value_t *rv__aggset_result(const rv__aggset_t *set, const void *acc,
                                         rv_arena_t *arena, int64_t start, int64_t end);

/* Appends the block's bytes to `out`. */
RV__HIDDEN rv_err_t rv__aggset_encode(const rv__aggset_t *set, const void *acc, rv_strbuf_t *out);

/* Rebuilds a block from bytes; RV_ERR_CORRUPT (the block is left empty and released) when bad. */
RV__HIDDEN rv_err_t rv__aggset_decode(const rv__aggset_t *set, void *acc, const void *data,
                                      size_t len);

/* Frees what the block's accumulators own (the block itself is the caller's). */
RV__HIDDEN void rv__aggset_release(const rv__aggset_t *set, void *acc);

/* ---- the store interface (window_store.c for the in-memory one) ---------------------------- */

/* Called per entry of a scan, in key order; returns 0 to go on, 1 to stop. The views are valid
 * during the call only, and the callback must not change the store. */
typedef int (*rv__wscan_fn)(void *arg, const void *key, size_t key_len, const void *val,
                            size_t val_len);

typedef struct rv__wstore_ops_s {
    /* RV_OK with a view valid until the next call on the store, or RV_ERR_NOT_FOUND. */
    rv_err_t (*get)(void *s, const void *key, size_t key_len, const void **val, size_t *val_len);
    rv_err_t (*put)(void *s, const void *key, size_t key_len, const void *val, size_t val_len);
    rv_err_t (*del)(void *s, const void *key, size_t key_len);
    /* Entries with from <= key < to, in order (to == NULL: no upper bound). */
    rv_err_t (*scan)(void *s, const void *from, size_t from_len, const void *to, size_t to_len,
                     rv__wscan_fn fn, void *arg);
} rv__wstore_ops_t;

typedef struct rv__wstore_s {
    const rv__wstore_ops_t *ops;
    void *s;
} rv__wstore_t;

/* An in-memory ordered map (a sorted array). */
typedef struct rv__memstore_s rv__memstore_t;
RV__HIDDEN rv__memstore_t *rv__memstore_new(void);
RV__HIDDEN void rv__memstore_destroy(rv__memstore_t *m);
RV__HIDDEN size_t rv__memstore_count(const rv__memstore_t *m);
extern const rv__wstore_ops_t rv__memstore_ops;

/* A write-back cache in front of a store (window_cache.c): rv__wstore_t{&rv__wcache_ops, c}. */
typedef struct rv__wcache_s rv__wcache_t;
RV__HIDDEN rv__wcache_t *rv__wcache_new(void);
RV__HIDDEN void rv__wcache_destroy(rv__wcache_t *c);
/* Forgets everything (without writing) and puts the cache in front of `under`. */
RV__HIDDEN void rv__wcache_bind(rv__wcache_t *c, rv__wstore_t under);
/* Writes every dirty entry (and deletion) to the store. */
RV__HIDDEN rv_err_t rv__wcache_flush(rv__wcache_t *c);
/* Forgets every entry without writing. */
RV__HIDDEN void rv__wcache_clear(rv__wcache_t *c);
/* Entries changed since the last flush. */
RV__HIDDEN size_t rv__wcache_dirty(const rv__wcache_t *c);
extern const rv__wstore_ops_t rv__wcache_ops;

/* ---- windows (window.c) -------------------------------------------------------------------- */

/* A window operator's definition (in the graph's arena). */
typedef struct rv__window_s {
    rv_window_opts_t opts; /* name copied */
    rv__aggset_t aggs;
} rv__window_t;

/* One partition of a window operator: its store and what is cached of it. */
typedef struct rv__wpart_s {
    rv__wstore_t store;
    int64_t max_ts;        /* largest event time seen (INT64_MIN: none) */
    int64_t next_close;    /* no open window closes before this (INT64_MIN: unknown) */
    int64_t closed_upto;   /* every window closing at or before this is closed (INT64_MIN: ?) */
    int64_t next_sweep_ms; /* wall-clock time of the next idle sweep */
    rv_strbuf_t kbuf;      /* scratch: store keys */
    rv_strbuf_t vbuf;      /* scratch: store values */
    rv_strbuf_t jkey;      /* scratch: the record key as stored */
    void *acc;             /* scratch accumulator blocks */
    void *acc2;
} rv__wpart_t;

/* Receives an emitted window: its key as stored (rv__window_key_decode() reads it), bounds and
 * the value to emit. */
typedef rv_err_t (*rv__wemit_fn)(void *arg, rv_ctx_t *ctx, const char *key, size_t key_len,
                                 int64_t start, int64_t end, rv_value_t *value);

/* The stored form of a record key (`key` NULL: none); RV_ERR_PARSE etc. with `why`. */
RV__HIDDEN rv_err_t rv__window_key_encode(rv_strbuf_t *out, const rv_value_t *key, char *why,
                                          size_t why_size);
/* Reads a stored key back into `arena` (*out NULL for none); RV_ERR_CORRUPT when damaged. */
RV__HIDDEN rv_err_t rv__window_key_decode(rv_arena_t *arena, const char *b, size_t len,
                                          rv_value_t **out);

/* Checks options; RV_OK or RV_ERR_INVALID_ARG with `why`. */
RV__HIDDEN rv_err_t rv__window_check(const rv_window_opts_t *o, char *why, size_t why_size);

/* Prepares `p` over `store` (scratch buffers sized for `w`). */
RV__HIDDEN rv_err_t rv__wpart_init(rv__wpart_t *p, const rv__window_t *w, rv__wstore_t store);
RV__HIDDEN void rv__wpart_free(rv__wpart_t *p, const rv__window_t *w);

/*
 * Processes one record of partition `p`: `key` (NULL = none), `value`, event time `ts`, arrival
 * position `seq`, wall-clock `now_ms`. Closes the windows the new watermark passes (emitting in
 * final mode), then adds the record to its windows (emitting in current mode) or reports them
 * late. Failures set ctx->fail_msg.
 */
RV__HIDDEN rv_err_t rv__window_process(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx,
                                       const rv_value_t *key, const rv_value_t *value, int64_t ts,
                                       int64_t seq, int64_t now_ms, rv__wemit_fn emit, void *arg);

/* Closes the windows of `p` untouched for idle_timeout_ms at wall-clock `now_ms`. */
RV__HIDDEN rv_err_t rv__window_sweep(const rv__window_t *w, rv__wpart_t *p, rv_ctx_t *ctx,
                                     int64_t now_ms, rv__wemit_fn emit, void *arg);

#endif
