/*
 * plog.h: one partition's durable log, the storage engine under the `local:` broker.
 *
 * A partition is a directory of segment files, each named by the first offset it holds
 * (00000000000000000000.log) with a sparse offset index (.idx) and time index (.tix) beside
 * it, and a small shared-memory state file (`state`) through which the writing process
 * publishes its high watermark and wakes readers in any process (a futex on a shared
 * mapping), so readers follow the tail within a few milliseconds without busy-polling.
 * Records are stored in batches: each batch carries its length, a CRC32C of every other byte of
 * the batch (header and stored records, compressed or not), a magic/version byte, the base
 * offset, a record count, the first and largest timestamps, the compression codec and fields
 * reserved for idempotent and transactional producers, then the records (varint-encoded,
 * Kafka-like). The byte format and the recovery rules are described in docs/log-format.md.
 * The implementation is split over plog.c (open, recovery, append, state, retention),
 * plog_batch.c (the byte format), plog_segment.c (segments and indexes), plog_read.c (readers)
 * and plog_compact.c (compaction); their shared internals are in plog_int.h.
 *
 * Threads: one thread appends (rv__plog_append, rv__plog_sync may come from another thread,
 * retention and compaction from a third); any number of threads read, each with its own
 * reader. Segment list changes (roll, retention, compaction) are safe against them: a reader
 * keeps the segment it reads open, even when retention deletes its file.
 *
 * One process writes a partition at a time (an exclusive lock on the directory's `writer.lock`
 * taken by rv__plog_open(..., writable)); any number of processes read it. Opening for writing
 * recovers the log: a torn tail (a partial or checksum-failing last batch) is truncated to the
 * last whole batch and reported through the logger; damage anywhere else is RV_ERR_CORRUPT
 * naming the segment file and byte position, and no corrupted record is ever returned to a
 * reader. Offsets stay increasing but may have gaps after compaction.
 */
#ifndef RV_PLOG_H
#define RV_PLOG_H

#include "core/core_int.h"
#include "rivulet/broker.h"

typedef struct rv_plog_s rv_plog_t;

typedef enum rv_codec_e { RV_CODEC_NONE = 0, RV_CODEC_LZ4 = 1, RV_CODEC_ZSTD = 2 } rv_codec_t;

typedef enum rv_fsync_e {
    RV_FSYNC_NEVER = 0,    /* the OS writes back; survives a process kill, not a power cut */
    RV_FSYNC_INTERVAL = 1, /* the owner calls rv__plog_sync() (every interval, or per group) */
    RV_FSYNC_BATCH = 2     /* every append is synced before it returns */
} rv_fsync_t;

typedef struct rv_plog_opts_s {
    const rv_logger_t *log;       /* where recovery and retention report; may be NULL */
    const char *name;             /* "topic/partition", used in messages */
    bool writable;                /* take the writer lock and recover the tail */
    rv_fsync_t fsync;             /* what rv__plog_append() does after writing */
    bool write_behind;            /* start writing each batch back to the disk at once
                                     (sync_file_range), so the owner's next rv__plog_sync()
                                     waits only for the last ones; durability is unchanged */
    rv_codec_t codec;             /* compression of new batches */
    int64_t segment_bytes;        /* roll to a new segment past this size */
    int64_t segment_ms;           /* or when the active segment is older than this */
    int64_t index_interval_bytes; /* bytes between sparse index entries */
} rv_plog_opts_t;

/*
 * Opens (creating when writable and missing) the partition log in `dir`. A writable open fails
 * with RV_ERR_BUSY when another process holds the writer lock.
 */
RV__HIDDEN rv_err_t rv__plog_open(const char *dir, const rv_plog_opts_t *opts, rv_plog_t **out,
                                  rv_error_t **err);
RV__HIDDEN void rv__plog_close(rv_plog_t *log);

/*
 * Appends `n` records as one batch (or several when they exceed the segment size): assigns
 * consecutive offsets from the high watermark, stamps timestamp_ms <= 0 with the current time,
 * writes with one write() per batch, syncs when the policy is "batch" (or starts the batch's
 * writeback with `write_behind`), then publishes the new high watermark to readers.
 * *base_offset receives the first record's offset. The records' topic and partition fields
 * are ignored. Errors: RV_ERR_STATE on a read-only log,
 * RV_ERR_LIMIT for a record larger than a batch may be (256 MiB), RV_ERR_IO when writing or
 * syncing fails (the failed batch is taken back; batches of the same call before it stay, and
 * the high watermark says how far the call got).
 */
RV__HIDDEN rv_err_t rv__plog_append(rv_plog_t *log, const rv_record_t *recs, size_t n,
                                    int64_t *base_offset, rv_error_t **err);

/* fsyncs the active segment and writes its pending index entries (group commit for the interval
 * policy; earlier segments were synced when rolled). Everything appended before the call is
 * durable when it returns RV_OK; RV_ERR_IO when this fsync failed, or the one a roll made of
 * the segment it closed since the previous call. Safe to call from another thread than the
 * appender (appends go on during the fsync); does nothing on a read-only log. */
RV__HIDDEN rv_err_t rv__plog_sync(rv_plog_t *log, rv_error_t **err);

/* The first offset still stored (after retention) and the next offset to be written, as last
 * published by the writer (readers see the writer's latest publication). */
RV__HIDDEN int64_t rv__plog_low(rv_plog_t *log);
RV__HIDDEN int64_t rv__plog_high(rv_plog_t *log);

/*
 * Waits until the high watermark differs from `known_high` or `timeout_ms` passes (futex on the
 * shared state; works across processes; timeout_ms < 0 waits without limit). Returns true when
 * it changed.
 */
RV__HIDDEN bool rv__plog_wait(rv_plog_t *log, int64_t known_high, int timeout_ms);

/* A read cursor over one partition log; one thread uses it at a time. */
typedef struct rv_plog_reader_s rv_plog_reader_t;

/* Opens a cursor positioned at `offset` (clamped to the low watermark; may equal high; an offset
 * above high is clamped to high). A cursor that falls behind retention jumps to the new low
 * watermark on its next read. Free with rv__plog_reader_close(). */
RV__HIDDEN rv_err_t rv__plog_reader_open(rv_plog_t *log, int64_t offset, rv_plog_reader_t **out,
                                         rv_error_t **err);
RV__HIDDEN void rv__plog_reader_close(rv_plog_reader_t *r);

/* Moves the cursor (clamped as above). */
RV__HIDDEN rv_err_t rv__plog_reader_seek(rv_plog_reader_t *r, int64_t offset, rv_error_t **err);

/* The offset of the next record the cursor returns. */
RV__HIDDEN int64_t rv__plog_reader_position(const rv_plog_reader_t *r);

/*
 * Reads up to `max` records at the cursor into `out` (views into the reader's buffers, valid
 * until the next read, seek or close on this reader; topic is NULL, partition -1: the caller
 * fills them). *n = 0 when the cursor is at the high watermark. Verifies each batch's CRC before
 * returning any of its records: RV_ERR_CORRUPT names the segment file and byte position.
 */
RV__HIDDEN rv_err_t rv__plog_read(rv_plog_reader_t *r, rv_record_t *out, size_t max, size_t *n,
                                  rv_error_t **err);

/* The earliest offset whose timestamp is >= ts_ms, or the high watermark when none is. */
RV__HIDDEN rv_err_t rv__plog_offset_for_time(rv_plog_t *log, int64_t ts_ms, int64_t *offset,
                                             rv_error_t **err);

/*
 * Deletes whole closed segments that are older than retention_ms (by their largest timestamp,
 * against now_ms) or beyond retention_bytes counted from the newest (-1 disables either).
 * The active segment is never deleted. Writer only. *deleted receives the segment count.
 */
RV__HIDDEN rv_err_t rv__plog_enforce_retention(rv_plog_t *log, int64_t retention_ms,
                                               int64_t retention_bytes, int64_t now_ms,
                                               int *deleted, rv_error_t **err);

/*
 * Compacts the closed segments: keeps the latest record of each key (records without a key
 * are kept), drops tombstones (NULL value) older than delete_retention_ms against now_ms, keeps
 * offsets, and swaps the rewritten segments in atomically (a crash mid-way leaves the old or
 * the new set, never a mix). Writer only.
 */
RV__HIDDEN rv_err_t rv__plog_compact(rv_plog_t *log, int64_t delete_retention_ms, int64_t now_ms,
                                     rv_error_t **err);

/* Bytes stored in all segments. */
RV__HIDDEN int64_t rv__plog_size(rv_plog_t *log);

#endif
