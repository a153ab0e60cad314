/*
 * local_int.h: internals shared by the files of the `local:PATH` broker (the embedded log).
 *
 * local.c owns the broker handle: the directory layout, topic admin, the table of writable
 * partition logs shared by every producer of the handle with their syncs (the group commits of
 * both fsync policies that sync), and the background thread that runs the `interval` policy's
 * syncs, retention and compaction. local_producer.c batches records and appends them through
 * that table (and, under the `batch` policy, syncs each group of appends itself);
 * local_consumer.c reads partitions; local_group.c keeps committed offsets and consumer-group
 * membership with file locks. Nothing here is visible outside
 * src/broker, and nothing here may print: it logs through the broker's logger.
 */
#ifndef RV_LOCAL_INT_H
#define RV_LOCAL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "broker/broker_int.h"
#include "broker/plog.h"

/* How long a producer keeps retrying a partition whose writer lock another process holds
 * before failing the partition's queued records with RV_ERR_BUSY. */
#define RV_LOCAL_WRITER_WAIT_MS 5000
/* How often a producer retries a partition whose writer lock is held elsewhere. */
#define RV_LOCAL_WRITER_RETRY_MS 20
/* A writable partition log unused for this long is synced and closed, which releases its
 * writer lock for other processes. */
#define RV_LOCAL_WRITER_IDLE_MS 1000
/* The longest a consumer waiting on several partitions sleeps on one before looking at the
 * others (the tail latency of the partitions it is not waiting on). */
#define RV_LOCAL_WAIT_SLICE_MS 2
/* The most partitions a topic may have. */
#define RV_LOCAL_MAX_PARTITIONS 100000

typedef struct rv_local_s rv_local_t;
typedef struct rv_local_producer_s rv_local_producer_t;

/* cleanup.policy, as the index of its value in the configuration table. */
enum { RV_LOCAL_CLEANUP_DELETE = 0, RV_LOCAL_CLEANUP_COMPACT = 1, RV_LOCAL_CLEANUP_BOTH = 2 };

/*
 * A topic's metadata as read from its topic.conf, cached by the broker handle. Entries live
 * until the handle closes (a deleted topic's entry is marked and moved aside), so producers
 * may keep pointers to them.
 */
typedef struct rv_local_topic_s {
    struct rv_local_topic_s *next;
    char *name;
    int32_t partitions;
    int64_t retention_ms;
    int64_t retention_bytes;
    int64_t delete_retention_ms;
    int64_t segment_bytes;
    int64_t segment_ms;
    int64_t max_message_bytes;
    int cleanup; /* RV_LOCAL_CLEANUP_* */
    rv_codec_t codec;
    atomic_bool deleted;
} rv_local_topic_t;

/* The most spans of failed syncs a writer remembers (see rv_local_writer_t.failed). */
#define RV_LOCAL_FAILED_SPANS 16

/* Appends (lo, hi] of a writer, by sequence number. */
typedef struct rv_local_span_s {
    uint64_t lo;
    uint64_t hi;
} rv_local_span_t;

/*
 * One partition's writable log in this broker handle, shared by all its producers. The log
 * is opened on the first append and closed when idle, so another process may take the
 * writer lock in between. `mu` serialises append, retention and compaction, and the start and
 * end of a sync; the fsync itself runs with `mu` released (appends go on meanwhile and are
 * covered by the next sync), one at a time (`syncing`).
 *
 * Durability is tracked by sequence numbers: every append that stored records takes the next
 * append_seq, and a sync publishes in synced_seq the append_seq it snapshotted before its
 * fsync began, so every append up to synced_seq is covered by a finished sync. Syncs publish
 * in order (one at a time), so synced_seq only grows.
 */
typedef struct rv_local_writer_s {
    struct rv_local_writer_s *next;
    pthread_mutex_t mu;
    rv_local_topic_t *topic;
    int32_t partition;
    char *name;          /* "topic/partition" */
    char *dir;           /* the partition's directory */
    rv_plog_t *log;      /* NULL while closed */
    atomic_bool retired; /* the topic was deleted: appends fail */
    dev_t dir_dev;       /* the directory the log was opened in, to notice a deletion */
    ino_t dir_ino;
    int64_t last_used_ms;  /* monotonic time of the last append */
    int64_t last_maint_ms; /* monotonic time of the last retention/compaction pass; 0 = never */
    uint64_t maint_sig;    /* the closed segments (names and sizes) after that pass */
    int64_t maint_wall_ms; /* its wall-clock time */
    uint64_t compact_sig;  /* the closed segments after the last compaction */
    int64_t compact_wall_ms;
    uint64_t append_seq;             /* bumped by every append that stored records (under mu) */
    atomic_uint_fast64_t synced_seq; /* every append up to this one is synced (written under mu) */
    pthread_cond_t idle;             /* signalled when a maintenance pass or a sync ends */
    bool maintaining;                /* the background thread uses `log` without holding mu */
    bool syncing;                    /* a sync uses `log` without holding mu */
    /* Spans of appends covered by a failed sync, oldest first, adjacent ones merged (under mu;
     * nfailed is also read without it, to skip the lookup while there is none). */
    rv_local_span_t failed[RV_LOCAL_FAILED_SPANS];
    atomic_uint nfailed;
    /* What the syncs did (under mu), for rv__local_sync_stats(). */
    uint64_t syncs;          /* syncs that covered at least one append */
    uint64_t synced_appends; /* appends they covered */
    int64_t synced_high;     /* every offset below it was covered by a sync that succeeded */
} rv_local_writer_t;

/* The broker handle's implementation state (rv_broker_t.impl). */
struct rv_local_s {
    rv_broker_t *broker;
    char *root;
    char *topics_dir;
    char *groups_dir;
    char *staging_dir;
    char *txn_dir; /* <root>/txn: transaction intents and producer epochs (local_txn.c) */
    rv_fsync_t fsync;
    int64_t fsync_interval_ms;
    int64_t maint_interval_ms;

    pthread_mutex_t mu; /* guards everything below; taken before any producer's mutex */
    pthread_cond_t cond;
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping;
    bool sync_requested;
    rv_local_topic_t *topics;
    rv_local_topic_t *dead_topics;
    rv_local_writer_t *writers;
    rv_local_writer_t *dead_writers;
    int64_t next_scan_ms; /* when to look for partitions without a writer that need care */
    rv_local_producer_t **producers;
    size_t producer_count;
    size_t producer_cap;
    atomic_uint name_counter;
};

/* ---- local.c ----------------------------------------------------------------------------- */

/* A malloc'ed formatted string (a path); NULL when memory is exhausted. */
RV__HIDDEN char *rv__local_strf(const char *fmt, ...) RV_PRINTF(1, 2);

/* A name unique among this machine's processes: "<pid>-<counter>-<random hex>". */
RV__HIDDEN char *rv__local_unique(rv_local_t *lb);

/* Creates `path` and its missing parents. RV_ERR_IO naming the path on failure. */
RV__HIDDEN rv_err_t rv__local_mkdirs(const char *path, rv_error_t **err);

/* fsyncs a directory so that renames and creations in it are durable. */
RV__HIDDEN rv_err_t rv__local_fsync_dir(const char *dir, rv_error_t **err);

/*
 * Writes `len` bytes to `dir`/`name` atomically: into a temporary file in `dir`, fsynced,
 * renamed over the target, then the directory fsynced. Durable when it returns RV_OK.
 */
RV__HIDDEN rv_err_t rv__local_write_atomic(rv_local_t *lb, const char *dir, const char *name,
                                           const void *data, size_t len, rv_error_t **err);

/* Reads a whole file into a NUL-terminated malloc'ed buffer. RV_ERR_NOT_FOUND when missing. */
RV__HIDDEN rv_err_t rv__local_read_file(const char *path, char **data, size_t *len,
                                        rv_error_t **err);

/* The cached metadata of `topic` (read from disk on a miss). RV_ERR_NOT_FOUND names it. */
RV__HIDDEN rv_err_t rv__local_topic_get(rv_local_t *lb, const char *topic, rv_local_topic_t **out,
                                        rv_error_t **err);

/* The partition count of `topic` read from disk now (not cached). RV_ERR_NOT_FOUND if none. */
RV__HIDDEN rv_err_t rv__local_topic_partitions(rv_local_t *lb, const char *topic,
                                               int32_t *partitions, rv_error_t **err);

/* Opens a read-only log of `topic`/`partition`; `name` ("topic/partition", for messages) must
 * outlive the log. RV_ERR_NOT_FOUND for a missing topic, RV_ERR_INVALID_ARG for a partition
 * out of range. */
RV__HIDDEN rv_err_t rv__local_open_reader_log(rv_local_t *lb, const char *topic, int32_t partition,
                                              const char *name, rv_plog_t **out, rv_error_t **err);

/*
 * Appends `n` records to `topic`/`partition` through the handle's shared writer, opening it
 * (taking the writer lock) when needed: RV_ERR_BUSY when another process holds the lock.
 * The append itself never fsyncs. *stored receives how many of the records were appended (all
 * on success; a prefix when writing failed part-way), *base_offset the first one's offset,
 * *writer the writer used and *seq the append's sequence number: under the `interval` and
 * `batch` policies the stored records are durable once synced_seq reaches it (0 = nothing to
 * wait for: the `never` policy, or nothing stored).
 */
RV__HIDDEN rv_err_t rv__local_append(rv_local_t *lb, rv_local_topic_t *topic, int32_t partition,
                                     const rv_record_t *recs, size_t n, int64_t *base_offset,
                                     size_t *stored, rv_local_writer_t **writer, uint64_t *seq,
                                     rv_error_t **err);

/*
 * Takes `topic`/`partition`'s writer for a transaction (local_txn.c): returns with (*out)->mu
 * held and (*out)->log open, after any sync in progress. With `check_txn`, a log it opens is
 * first checked for transactions left half applied (see rv__local_txn_pending()), answering
 * RV_ERR_BUSY while one is: release every writer held, rv__local_txn_recover(), retry;
 * recovery itself passes false. RV_ERR_BUSY also when another process holds the writer lock.
 * Release with rv__local_writer_release() (`appended`: records were appended meanwhile).
 */
RV__HIDDEN rv_err_t rv__local_writer_acquire(rv_local_t *lb, rv_local_topic_t *topic,
                                             int32_t partition, bool check_txn,
                                             rv_local_writer_t **out, rv_error_t **err);
RV__HIDDEN void rv__local_writer_release(rv_local_writer_t *w, bool appended);

/* Whether an append (writer, seq) from rv__local_append() is covered by a sync; *err is
 * RV_ERR_IO when the sync that covered it failed. */
RV__HIDDEN bool rv__local_synced(rv_local_writer_t *w, uint64_t seq, rv_err_t *err);

/*
 * The group commit of the `batch` policy: returns once a sync covers the append `seq` of `w`
 * (at once when one already did). When none does, it waits for the sync running, if any, and
 * then fsyncs the log itself, which covers every append made so far, by any producer of the
 * handle: several batches share one fsync. `w->mu` is released during the fsync. The outcome
 * is read with rv__local_synced(). Call without w->mu held.
 */
RV__HIDDEN void rv__local_sync_to(rv_local_t *lb, rv_local_writer_t *w, uint64_t seq);

/* What the syncs of one partition's writer in this handle did, for tests. */
typedef struct rv_local_sync_stats_s {
    uint64_t appends;        /* appends that stored records */
    uint64_t syncs;          /* syncs that covered at least one append */
    uint64_t synced_appends; /* appends those syncs covered */
    int64_t synced_high;     /* every offset below it was covered by a sync that succeeded */
} rv_local_sync_stats_t;

/* Fills `out` for `topic`/`partition` of the `local:` broker `b`; RV_ERR_NOT_FOUND when this
 * handle has never written that partition. */
RV__HIDDEN rv_err_t rv__local_sync_stats(rv_broker_t *b, const char *topic, int32_t partition,
                                         rv_local_sync_stats_t *out);

/* Asks the background thread for a sync pass now (interval policy; no-op otherwise: under
 * `batch` the producers sync with rv__local_sync_to()). */
RV__HIDDEN void rv__local_request_sync(rv_local_t *lb);

/* Producers register so sync passes can wake them; the last one to leave closes writers. */
RV__HIDDEN rv_err_t rv__local_producer_register(rv_local_t *lb, rv_local_producer_t *lp);
RV__HIDDEN void rv__local_producer_unregister(rv_local_t *lb, rv_local_producer_t *lp);

/* ---- local_producer.c -------------------------------------------------------------------- */

RV__HIDDEN rv_err_t rv__local_producer_new(rv_producer_t *p, rv_error_t **err);
RV__HIDDEN void rv__local_producer_destroy(rv_producer_t *p);
RV__HIDDEN rv_err_t rv__local_send(rv_producer_t *p, const rv_record_t *rec, void *rec_opaque);
RV__HIDDEN int rv__local_producer_poll(rv_producer_t *p, int timeout_ms);
RV__HIDDEN rv_err_t rv__local_flush(rv_producer_t *p, int timeout_ms, rv_error_t **err);
/* Wakes threads waiting for delivery reports (called after a sync pass). */
RV__HIDDEN void rv__local_producer_wake(rv_local_producer_t *lp);

/* ---- local_txn.c ------------------------------------------------------------------------- */

/* The transaction state of a producer with a transactional.id (NULL without one). */
typedef struct rv_local_txn_s rv_local_txn_t;

/* Creates <root>/txn and its subdirectories. */
RV__HIDDEN rv_err_t rv__local_txn_init(rv_local_t *lb, rv_error_t **err);
/* Creates the transaction state of producer `p` when its conf sets transactional.id
 * (*out NULL otherwise). */
RV__HIDDEN rv_err_t rv__local_txn_new(rv_producer_t *p, rv_local_txn_t **out, rv_error_t **err);
/* Frees it; an open transaction is dropped without reports. Accepts NULL. */
RV__HIDDEN void rv__local_txn_free(rv_local_txn_t *txn);
/* rv_producer_send() of a transactional producer: buffers the record in the transaction. */
RV__HIDDEN rv_err_t rv__local_txn_send(rv_local_txn_t *txn, const rv_record_t *rec,
                                       void *rec_opaque);
/*
 * Whether an intent names `topic`/`partition` and must be finished before anything else is
 * appended there: 0 no, 1 an intent nobody holds exists (a crashed process's: recover it),
 * 2 another process is completing one that names this partition.
 */
RV__HIDDEN int rv__local_txn_pending(rv_local_t *lb, const char *topic, int32_t partition);
/* Completes every intent a dead process left (idempotently), skipping those held by a live
 * one. */
RV__HIDDEN rv_err_t rv__local_txn_recover(rv_local_t *lb, rv_error_t **err);
RV__HIDDEN rv_err_t rv__local_begin_transaction(rv_producer_t *p, rv_error_t **err);
RV__HIDDEN rv_err_t rv__local_send_offsets_to_transaction(rv_producer_t *p, rv_consumer_t *c,
                                                          const rv_topic_partition_t *tps,
                                                          size_t count, int timeout_ms,
                                                          rv_error_t **err);
RV__HIDDEN rv_err_t rv__local_commit_transaction(rv_producer_t *p, int timeout_ms,
                                                 rv_error_t **err);
RV__HIDDEN rv_err_t rv__local_abort_transaction(rv_producer_t *p, int timeout_ms,
                                                rv_error_t **err);
/* The transaction state of a local producer (NULL when it is not transactional). */
RV__HIDDEN rv_local_txn_t *rv__local_producer_txn(rv_producer_t *p);

/* ---- local_consumer.c -------------------------------------------------------------------- */

/* One assigned partition of a consumer. */
typedef struct rv_local_part_s {
    char *topic;
    int32_t partition;
    char *name; /* "topic/partition" */
    rv_plog_t *log;
    rv_plog_reader_t *reader;
    rv_record_t *pending; /* records of the last read not yet returned (views into reader) */
    size_t pending_len;
    size_t pending_pos;
    size_t pending_cap;
    bool paused;
    bool eof_sent;
    int64_t seen_high;  /* the high watermark before the last read that found nothing; -1 */
    bool stopped;       /* no valid position (auto.offset.reset is error) until a seek */
    bool error_due;     /* the next poll says why it stopped */
    bool no_commit;     /* it stopped for want of a committed offset (else out of range) */
    int64_t bad_offset; /* the out-of-range offset it stopped at */
    bool seek_pending;  /* a seek applied at the next poll, so returned records stay valid */
    int64_t seek_offset;
    int owner_fd; /* the group ownership lock, or -1 for a manual assignment */
} rv_local_part_t;

typedef struct rv_local_consumer_s {
    rv_consumer_t *consumer;
    rv_local_t *lb;
    int64_t fetch_max_bytes;
    int auto_reset; /* index in auto.offset.reset: earliest, latest, error */
    rv_local_part_t **parts;
    size_t part_count;
    size_t part_cap;
    rv_local_part_t **graveyard; /* removed parts whose records may still be in use */
    size_t grave_count;
    size_t grave_cap;
    size_t rr;      /* where the next poll starts its round */
    size_t wait_rr; /* which partition the next multi-partition wait sleeps on */
    rv_record_t *out;
    size_t out_cap;

    /* The group (local_group.c). */
    char *group_dir; /* <root>/groups/<encoded group>, or NULL without a group */
    bool subscribed;
    char **topics;
    size_t topic_count;
    char *member_id;
    int member_fd;
    rv_topic_partition_t *targets; /* the partitions this member should own (topics owned) */
    size_t target_count;
    int64_t check_ms;
    int64_t next_check_ms;
    int64_t next_acquire_ms;
    bool missing_targets; /* some partitions this member should own were still locked */
} rv_local_consumer_t;

RV__HIDDEN rv_err_t rv__local_consumer_new(rv_consumer_t *c, rv_error_t **err);
RV__HIDDEN void rv__local_consumer_destroy(rv_consumer_t *c);
RV__HIDDEN rv_err_t rv__local_assign(rv_consumer_t *c, const rv_topic_partition_t *tps,
                                     size_t count, rv_error_t **err);
RV__HIDDEN rv_err_t rv__local_poll(rv_consumer_t *c, const rv_record_t **records, size_t max,
                                   size_t *count, int timeout_ms, rv_error_t **err);
RV__HIDDEN rv_err_t rv__local_position(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                                       rv_error_t **err);
RV__HIDDEN rv_err_t rv__local_seek(rv_consumer_t *c, const char *topic, int32_t partition,
                                   int64_t offset, rv_error_t **err);
RV__HIDDEN rv_err_t rv__local_offsets_for_times(rv_consumer_t *c, rv_topic_partition_t *tps,
                                                size_t count, rv_error_t **err);
RV__HIDDEN rv_err_t rv__local_pause(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                                    bool pause, rv_error_t **err);

/* The assigned partition, or NULL. */
RV__HIDDEN rv_local_part_t *rv__local_part_find(rv_local_consumer_t *lc, const char *topic,
                                                int32_t partition);
/* The position (next offset to return) of an assigned partition. */
RV__HIDDEN int64_t rv__local_part_position(const rv_local_part_t *part);
/*
 * Adds partitions to the assignment, each starting at its offset (an offset or a logical
 * one, RV_OFFSET_STORED resolved with `committed` when given, else by auto.offset.reset);
 * owner_fds (may be NULL) become the parts' ownership locks. On return tps[i].offset holds
 * the resolved start offsets.
 */
RV__HIDDEN rv_err_t rv__local_parts_add(rv_local_consumer_t *lc, rv_topic_partition_t *tps,
                                        const int *owner_fds, size_t count, rv_error_t **err);
/* Removes an assigned partition (its records stay valid until the next poll). */
RV__HIDDEN void rv__local_part_remove(rv_local_consumer_t *lc, size_t index);

/* ---- local_group.c ----------------------------------------------------------------------- */

/* Sets up the consumer's group directory (lc->group_dir) when it has a group. */
RV__HIDDEN rv_err_t rv__local_group_init(rv_local_consumer_t *lc, rv_error_t **err);
/* Revokes owned partitions and leaves the group; frees the group state. */
RV__HIDDEN void rv__local_group_leave(rv_local_consumer_t *lc);
RV__HIDDEN rv_err_t rv__local_subscribe(rv_consumer_t *c, const char *const *topics, size_t count,
                                        rv_error_t **err);
/* Runs the membership check and rebalance when due (called from poll); *served counts the
 * rebalance callbacks it made. */
RV__HIDDEN rv_err_t rv__local_group_tick(rv_local_consumer_t *lc, int *served, rv_error_t **err);
/* Milliseconds until the next membership check or acquisition attempt (-1 = none). */
RV__HIDDEN int64_t rv__local_group_due_in(const rv_local_consumer_t *lc, int64_t now_ms);
RV__HIDDEN rv_err_t rv__local_commit(rv_consumer_t *c, const rv_topic_partition_t *tps,
                                     size_t count, rv_error_t **err);
RV__HIDDEN rv_err_t rv__local_committed(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                                        rv_error_t **err);
/* Merges `tps` into the committed offsets of `group` (created when missing); durable on
 * return. Used by transactions, which have no consumer at hand when they are recovered. */
RV__HIDDEN rv_err_t rv__local_group_offsets_merge(rv_local_t *lb, const char *group,
                                                  const rv_topic_partition_t *tps, size_t count,
                                                  rv_error_t **err);
/* Fills each tps[i].offset with the committed offset or RV_OFFSET_INVALID. */
RV__HIDDEN rv_err_t rv__local_offsets_read(rv_local_consumer_t *lc, rv_topic_partition_t *tps,
                                           size_t count, rv_error_t **err);

#endif
