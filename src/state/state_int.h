/*
 * state_int.h: state stores, as the runtime and the operators of src/stream see them.
 *
 * THIS HEADER IS THE CONTRACT FOR WINDOWS AND AGGREGATIONS (src/stream/window*.c, agg*.c):
 * their signatures stay stable. An operator that keeps state:
 *
 *   1. at build time declares a store on its node: `decl = rv__df_store(node, "window", name)`
 *      (dataframe.c; the name is unique per application, [a-zA-Z0-9._-]; the store follows the
 *      partitions of the topic the node's records come from, node->topic);
 *   2. for each record, asks for the store of the record's partition:
 *      `rv__store_t *s = rv__ctx_store(ctx, decl, &replay)`; NULL means the record cannot use
 *      state (no store for its topic, out of memory) and ctx->fail_msg says why: fail the record
 *      with that code (rv__ctx_store_error()). `replay` is true when the record's offset is at or
 *      below the offset already applied to this store (a replay after a crash between writing the
 *      changelog and committing offsets): the operator must then change nothing in the store and
 *      emit nothing downstream (its outputs were already delivered);
 *   3. reads and writes the store by byte keys with rv__store_get/put/del/exists, and scans key
 *      ranges in byte order with rv__store_iter_*. Keys are the operator's own layout: for
 *      windows, the record key then the window bounds as big-endian biased integers
 *      (rv__store_be64()), so byte order is time order within a key.
 *
 * Writes are buffered per checkpoint in the store (an in-memory map of each changed key's latest
 * value or deletion): reads and iterators see them at once; at a checkpoint the runtime sends every
 * key changed since the last one to the store's changelog topic, commits the input offsets and then
 * writes the buffer in one RocksDB WriteBatch with the processed offset and the changelog offset.
 * Operators never commit, flush or open stores themselves; the runtime opens a store when a
 * partition is assigned (restoring it from its changelog first: records of that partition are held
 * back until then) and closes it when the partition is revoked.
 *
 * Views returned (rv_buf_t) are borrowed: a get's value is valid until the next call on the same
 * store; an iterator's key and value until its next step. Do not write to a store while one of
 * its iterators is open (collect the keys, close the iterator, then write): put/del answer
 * RV_ERR_STATE then. A store belongs to the worker thread that owns its partition: no locking.
 *
 * Nothing here is exported from the library; users see rivulet/state.h.
 */
#ifndef RV_STATE_INT_H
#define RV_STATE_INT_H

#include "rivulet/app.h"
#include "rivulet/state.h"
#include "stream/stream_int.h"

/* ---- declarations (build time) -------------------------------------------------------------- */

/* A store declared by an operator: a name on an input topic. Owned by the graph. */
struct rv__store_decl_s {
    char *name;        /* unique in the application */
    rv_topic_t *topic; /* the topic whose partitions the store follows */
    int index;         /* position in the graph's store list */
    char *changelog;   /* "<group>--changelog--<topic>--<name>", set when the run prepares */
};

/* ---- one store instance --------------------------------------------------------------------- */

/* One store of one partition: a RocksDB instance and its write buffer. Opaque outside
 * src/state. */
typedef struct rv__store_s rv__store_t;

/*
 * The store of the record in `ctx` (its topic and partition) for declaration `decl`, or NULL
 * when there is none (then ctx->fail_msg says why and rv__ctx_store_error() gives the code).
 * *replay (may be NULL) is set to whether the record was already applied to this store.
 * Also advances the store's event time to the record's timestamp (not for a tick's context,
 * whose offset is -1).
 */
RV__HIDDEN rv__store_t *rv__ctx_store(rv_ctx_t *ctx, const rv__store_decl_t *decl, bool *replay);

/* The code of the last failed rv__ctx_store() on `ctx` (RV_ERR_STATE, RV_ERR_NOMEM, ...). */
RV__HIDDEN rv_err_t rv__ctx_store_error(const rv_ctx_t *ctx);

/*
 * Reads `key`: RV_OK with *value a view of it (valid until the next call on `s`), or
 * RV_ERR_NOT_FOUND when absent, deleted in the current buffer or expired. RV_ERR_IO when
 * RocksDB fails (the store's last error message says why: rv__store_errmsg()).
 */
RV__HIDDEN rv_err_t rv__store_get(rv__store_t *s, const void *key, size_t key_len, rv_buf_t *value);

/* Whether `key` is present (not deleted, not expired). */
RV__HIDDEN bool rv__store_exists(rv__store_t *s, const void *key, size_t key_len);

/*
 * Sets `key` to `value` in the current checkpoint's buffer. `expire_at` is an event time in ms
 * after which the key reads as absent (0 = never): see rv__store_time(). Keys are 1 to 65535
 * bytes. RV_ERR_INVALID_ARG for a bad key, RV_ERR_STATE while an iterator is open.
 */
RV__HIDDEN rv_err_t rv__store_put(rv__store_t *s, const void *key, size_t key_len,
                                  const void *value, size_t value_len, int64_t expire_at);

/* Deletes `key` in the current checkpoint's buffer (a tombstone in the changelog). */
RV__HIDDEN rv_err_t rv__store_del(rv__store_t *s, const void *key, size_t key_len);

/* The store's event time: the largest record timestamp (ms) seen in its partition, restored
 * with the store (INT64_MIN before the first record). */
RV__HIDDEN int64_t rv__store_time(const rv__store_t *s);

/* The store's partition and name (borrowed), for messages. */
RV__HIDDEN int32_t rv__store_partition(const rv__store_t *s);
RV__HIDDEN const char *rv__store_name(const rv__store_t *s);

/* The message of the store's last RocksDB failure (borrowed; "" when none). */
RV__HIDDEN const char *rv__store_errmsg(const rv__store_t *s);

/*
 * operators.c: the key-scoped state handle (rivulet/state.h) for a stateful operator of store
 * `decl`, in ctx's arena. RV_OK with *out set, or *replay true (then *out is NULL) for a record
 * the store already holds; a failure code with ctx->fail_msg saying why (no key, no store).
 */
RV__HIDDEN rv_err_t rv__state_begin(rv_ctx_t *ctx, const rv__store_decl_t *decl, rv_state_t **out,
                                    bool *replay);

/* ---- iteration ------------------------------------------------------------------------------ */

typedef struct rv__store_iter_s rv__store_iter_t;

/*
 * An iterator over the keys in [lo, hi) in byte order (lo NULL = from the first key, hi NULL =
 * to the last), merging the committed store with the current buffer (buffered writes seen,
 * buffered deletes and expired keys skipped). NULL on NOMEM. Close with rv__store_iter_close().
 */
RV__HIDDEN rv__store_iter_t *rv__store_iter(rv__store_t *s, const void *lo, size_t lo_len,
                                            const void *hi, size_t hi_len);

/* An iterator over the keys starting with `prefix` (len 0 = every key). */
RV__HIDDEN rv__store_iter_t *rv__store_iter_prefix(rv__store_t *s, const void *prefix, size_t len);

/* Steps to the next key: true with views of its key and value (valid until the next step), or
 * false at the end or on an error (then rv__store_iter_error() is not RV_OK). */
RV__HIDDEN bool rv__store_iter_next(rv__store_iter_t *it, rv_buf_t *key, rv_buf_t *value);

/* RV_OK, or RV_ERR_IO when RocksDB failed while iterating. */
RV__HIDDEN rv_err_t rv__store_iter_error(const rv__store_iter_t *it);

/* Closes the iterator. Accepts NULL. */
RV__HIDDEN void rv__store_iter_close(rv__store_iter_t *it);

/* ---- key encoding helpers ------------------------------------------------------------------- */

/* Writes `v` as 8 big-endian bytes with the sign bit flipped, so byte order is numeric order
 * (negative times sort before positive ones). */
static inline void rv__store_be64(unsigned char out[8], int64_t v) {
    uint64_t u = (uint64_t)v ^ UINT64_C(0x8000000000000000);
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(u & 0xff);
        u >>= 8;
    }
}

/* Reads what rv__store_be64() wrote. */
static inline int64_t rv__store_unbe64(const unsigned char in[8]) {
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) {
        u = (u << 8) | in[i];
    }
    return (int64_t)(u ^ UINT64_C(0x8000000000000000));
}

/* ---- the runtime's side (src/app) ----------------------------------------------------------- */

/* A worker's stores: every open store of the partitions it owns, restores under way. */
typedef struct rv__stores_s rv__stores_t;

/* What rv__stores_new() needs from the application. Borrowed for the stores' life. */
typedef struct rv__stores_opts_s {
    const char *state_dir;   /* the application's state.dir */
    const char *group;       /* the consumer group (a directory level under state_dir) */
    rv_broker_t *broker;     /* for the restore consumer */
    rv_producer_t *producer; /* the worker's producer: changelog records go through it */
    const rv_logger_t *log;
    rv__store_decl_t *const *decls; /* the graph's store declarations */
    size_t ndecls;
    int64_t lock_timeout_ms;   /* state.lock.timeout.ms */
    int64_t restore_batch;     /* changelog records applied per restore step */
    int worker;                /* the worker's index, for messages */
    _Atomic int64_t *restored; /* counts changelog records applied (may be NULL) */
    const char *rocksdb_opts;  /* "name=value;..." from the rocksdb.* properties, or NULL */
} rv__stores_opts_t;

/* Checks a RocksDB options string (the rocksdb.* properties joined as "name=value;...").
 * RV_ERR_CONFIG with RocksDB's reason in *err. */
RV__HIDDEN rv_err_t rv__store_check_options(const char *opts, rv_error_t **err);

RV__HIDDEN rv__stores_t *rv__stores_new(const rv__stores_opts_t *opts, rv_error_t **err);

/* Closes every store (without committing their buffers) and frees the set. Accepts NULL. */
RV__HIDDEN void rv__stores_destroy(rv__stores_t *ss);

/* Whether any declared store follows `topic`. */
RV__HIDDEN bool rv__stores_follow(const rv__stores_t *ss, const rv_topic_t *topic);

/*
 * Partition `partition` of `topic` was assigned: its stores are to be opened and restored
 * before its records are processed. Returns RV_OK (the work happens in rv__stores_restore()).
 */
RV__HIDDEN rv_err_t rv__stores_assign(rv__stores_t *ss, rv_topic_t *topic, int32_t partition,
                                      rv_error_t **err);

/* Partition `partition` of `topic` was revoked (after its last checkpoint): closes its stores,
 * dropping any restore under way and any uncommitted buffer. */
RV__HIDDEN void rv__stores_revoke(rv__stores_t *ss, const rv_topic_t *topic, int32_t partition);

/* Whether partition `partition` of `topic` has every store open and restored. */
RV__HIDDEN bool rv__stores_ready(const rv__stores_t *ss, const rv_topic_t *topic,
                                 int32_t partition);

/*
 * Does a bounded step of the work of assigned partitions: opening stores (waiting for another
 * process's RocksDB lock up to lock_timeout_ms, then RV_ERR_BUSY) and applying changelog
 * records. Sets *ready_topic and *ready_partition and returns RV_OK with *ready true when a
 * partition became ready (call again until *ready is false to collect them all). *busy says
 * whether restores are still under way. Errors name store, partition and reason.
 */
RV__HIDDEN rv_err_t rv__stores_restore(rv__stores_t *ss, bool *busy, bool *ready,
                                       rv_topic_t **ready_topic, int32_t *ready_partition,
                                       rv_error_t **err);

/* Checkpoint step 2: sends every buffered change (and the processed offset `next_of(topic,
 * partition)`) of every dirty store to its changelog. The caller flushes the producer and calls
 * rv__stores_delivered() for each report whose record_opaque is a store. */
typedef int64_t (*rv__next_offset_fn)(void *opaque, const rv_topic_t *topic, int32_t partition);
RV__HIDDEN rv_err_t rv__stores_send_changelog(rv__stores_t *ss, rv__next_offset_fn next_of,
                                              void *opaque, bool *sent, rv_error_t **err);

/* A delivery report of a changelog record (record_opaque is the store): remembers the offset. */
RV__HIDDEN void rv__stores_delivered(void *store, const rv_record_t *rec, rv_err_t err);

/* Checkpoint step 4: writes every dirty store's buffer with its processed and changelog offsets
 * in one WriteBatch. */
RV__HIDDEN rv_err_t rv__stores_commit(rv__stores_t *ss, rv_error_t **err);

/* Exactly-once: the checkpoint's transaction was aborted. Forgets every store's buffered
 * changes and rereads its processed offset, event time and changelog offset from RocksDB, so
 * the store is back at its last commit (and records after it are not taken for replays).
 * RV_ERR_IO when a store cannot be read (then the run must stop). */
RV__HIDDEN rv_err_t rv__stores_rollback(rv__stores_t *ss, rv_error_t **err);

/* Bytes of memory the stores' buffered changes hold (the runtime checkpoints early past
 * state.buffer.max.bytes). */
RV__HIDDEN int64_t rv__stores_buffered(const rv__stores_t *ss);

/* Whether any store has buffered changes not yet committed. */
RV__HIDDEN bool rv__stores_dirty(const rv__stores_t *ss);

/* Metrics: the number of open stores and their estimated bytes on disk
 * (rocksdb.total-sst-files-size + live memtables). */
RV__HIDDEN void rv__stores_size(rv__stores_t *ss, int64_t *stores, int64_t *bytes);

/* Tells every custom operator node of `g` whose topic is `topic` that wall-clock time passed
 * (see rv__op_ops_t.tick): the runtime calls it per assigned, ready partition. */
RV__HIDDEN rv_err_t rv__graph_tick(rv__graph_t *g, rv_ctx_t *ctx, int64_t wall_ms);

/* The directory of a store: state_dir, group, topic, name, partition joined by slashes. Returns the
 * length written (>= size means too long). */
RV__HIDDEN int rv__store_dir(char *out, size_t size, const char *state_dir, const char *group,
                             const char *topic, const char *name, int32_t partition);

#endif
