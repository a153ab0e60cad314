/*
 * plog_int.h: internals shared by the partition-log files (plog.c, plog_batch.c,
 * plog_segment.c, plog_read.c, plog_compact.c).
 *
 * It holds the batch header layout and its codec entry points, the in-memory segment object
 * with its sparse indexes, the shared `state` page through which a writer publishes to readers
 * in any process, and the log and reader handles. Nothing here is used outside src/broker/plog*
 * except by the partition-log tests and the batch fuzzer; the broker uses plog.h only.
 */
#ifndef RV_PLOG_INT_H
#define RV_PLOG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "broker/plog.h"

/* ---- batches ----------------------------------------------------------------------------- */

#define RV__BATCH_HEADER 64u                /* bytes of the fixed batch header */
#define RV__BATCH_MAGIC 1u                  /* the format version byte */
#define RV__BATCH_MAX ((uint32_t)256 << 20) /* largest records section, stored or decompressed */

/* Batch attribute bits; the others are reserved and must be zero. */
#define RV__ATTR_TRANSACTIONAL 0x0001u
#define RV__ATTR_CONTROL 0x0002u
#define RV__ATTR_KNOWN (RV__ATTR_TRANSACTIONAL | RV__ATTR_CONTROL)

/* The fixed header of a batch, decoded. See docs/log-format.md for the byte layout. */
typedef struct rv__batch_hdr_s {
    uint32_t length;       /* whole batch in bytes, header included */
    uint32_t crc;          /* CRC32C of bytes [0,4) and [8,length) */
    uint8_t magic;         /* RV__BATCH_MAGIC */
    uint8_t codec;         /* rv_codec_t of the records section */
    uint16_t attributes;   /* RV__ATTR_* */
    uint32_t count;        /* records in the batch, at least 1 */
    int64_t base_offset;   /* offset of the first record */
    uint32_t last_delta;   /* offset of the last record minus base_offset */
    uint32_t records_size; /* bytes of the records section before compression */
    int64_t first_ts;      /* timestamp of the first record (timestamp deltas count from it) */
    int64_t max_ts;        /* largest timestamp in the batch */
    int64_t producer_id;   /* reserved for idempotent producers: -1 */
    int16_t producer_epoch;
    int32_t base_sequence;
} rv__batch_hdr_t;

/* Producer fields and attributes to stamp on an encoded batch (NULL = none: -1 and 0). */
typedef struct rv__batch_meta_s {
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    uint16_t attributes;
} rv__batch_meta_t;

/* A reusable batch encoder: one buffer for the encoded batch, one for uncompressed records. */
typedef struct rv__batch_enc_s {
    uint8_t *buf;
    size_t cap;
    uint8_t *tmp;
    size_t tmp_cap;
    void *lz4_state;
    void *zstd_cctx;
} rv__batch_enc_t;

RV__HIDDEN void rv__batch_enc_free(rv__batch_enc_t *enc);

/*
 * How many of the `n` records (at least 1) fit in one batch whose records section is at most
 * `max_bytes` before compression; *bound receives a size that surely holds them encoded.
 */
RV__HIDDEN size_t rv__batch_fit(const rv_record_t *recs, size_t n, size_t max_bytes, size_t *bound);

/*
 * Encodes `n` records into enc->buf as one batch and stores its length in *len. With
 * `keep_offsets` the records' own offsets are kept (they must increase; compaction), otherwise
 * they get base_offset, base_offset + 1, ... A timestamp <= 0 becomes `now_ms` when now_ms > 0.
 * A batch that the codec does not shrink is stored uncompressed. RV_ERR_LIMIT when the records
 * exceed RV__BATCH_MAX, RV_ERR_NOMEM.
 */
RV__HIDDEN rv_err_t rv__batch_encode(rv__batch_enc_t *enc, const rv_record_t *recs, size_t n,
                                     int64_t base_offset, bool keep_offsets, int64_t now_ms,
                                     rv_codec_t codec, const rv__batch_meta_t *meta, size_t *len);

/*
 * Decodes and checks the fixed header at `p` (`avail` >= RV__BATCH_HEADER bytes). Checks the
 * magic byte, the codec, the attribute bits and that the lengths and counts are plausible; it
 * does not check the CRC. RV_ERR_CORRUPT with a reason in *why when the header is not valid.
 */
RV__HIDDEN rv_err_t rv__batch_peek(const uint8_t *p, size_t avail, rv__batch_hdr_t *h,
                                   const char **why);

/* The CRC32C a batch of `length` bytes at `p` should carry. */
RV__HIDDEN uint32_t rv__batch_crc(const uint8_t *p, uint32_t length);

/*
 * Makes the records section of the checked batch at `batch` available: in place when it is not
 * compressed, else decompressed into `dbuf` (`dcap` bytes; RV_ERR_LIMIT when smaller than
 * h->records_size). `*zstd_dctx` caches a zstd context (free with rv__batch_dctx_free()).
 * RV_ERR_CORRUPT when decompression fails or gives another size than the header says.
 */
RV__HIDDEN rv_err_t rv__batch_records(const uint8_t *batch, const rv__batch_hdr_t *h, uint8_t *dbuf,
                                      size_t dcap, void **zstd_dctx, const uint8_t **rec,
                                      size_t *rec_len, const char **why);
RV__HIDDEN void rv__batch_dctx_free(void *zstd_dctx);

/* A cursor over the records section of one batch. */
typedef struct rv__rec_cursor_s {
    const uint8_t *p;
    const uint8_t *end;
    uint32_t left;       /* records still to decode */
    uint32_t last_delta; /* from the header: the last record's offset delta */
    int64_t prev_delta;  /* the previous record's delta, -1 before the first */
    int64_t base_offset;
    int64_t first_ts;
} rv__rec_cursor_t;

RV__HIDDEN void rv__rec_cursor_init(rv__rec_cursor_t *c, const rv__batch_hdr_t *h,
                                    const uint8_t *rec, size_t rec_len);

/*
 * Decodes the next record into *out: offset, timestamp, key, value and header_count (headers
 * NULL, topic NULL, partition -1) as views into the records section; *hdr_bytes receives where
 * its headers start, for rv__rec_headers(). Every length is checked against the section, so any
 * byte string is safe to decode. RV_ERR_CORRUPT with a reason in *why when the bytes are not a
 * valid record (or the batch's records do not end exactly with the section).
 */
RV__HIDDEN rv_err_t rv__rec_next(rv__rec_cursor_t *c, rv_record_t *out, const uint8_t **hdr_bytes,
                                 const char **why);

/* Fills `count` headers of a record rv__rec_next() accepted, as views. */
RV__HIDDEN void rv__rec_headers(const uint8_t *hdr_bytes, const uint8_t *end, rv_header_t *out,
                                size_t count);

/* ---- little-endian helpers ---------------------------------------------------------------- */

static inline uint32_t rv__le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t rv__le64(const uint8_t *p) {
    return (uint64_t)rv__le32(p) | (uint64_t)rv__le32(p + 4) << 32;
}
static inline void rv__put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void rv__put64(uint8_t *p, uint64_t v) {
    rv__put32(p, (uint32_t)v);
    rv__put32(p + 4, (uint32_t)(v >> 32));
}

/* ---- segments ---------------------------------------------------------------------------- */

/* A sparse offset-index entry: a batch's base offset relative to the segment, and its byte
 * position. 8 bytes on disk. */
typedef struct rv__idx_s {
    uint32_t rel;
    uint32_t pos;
} rv__idx_t;

/* A time-index entry: the largest timestamp of the batches before the one at `pos`, that batch's
 * relative base offset and position. The entry of a closed segment's end has pos == size and ts
 * == the segment's largest timestamp. 16 bytes on disk. */
typedef struct rv__tix_s {
    int64_t ts;
    uint32_t rel;
    uint32_t pos;
} rv__tix_t;

#define RV__IDX_BYTES 8
#define RV__TIX_BYTES 16

typedef struct rv__seg_s {
    atomic_int refs;
    int64_t base; /* from the file name: no record in it is below */
    int fd;       /* read (and, for the writer's active segment, write) */
    dev_t dev;
    ino_t ino;
    char *path;                 /* <dir>/<base>.log */
    _Atomic int64_t size;       /* bytes of whole batches (the writer's); -1 = unknown */
    _Atomic int64_t final_size; /* size once closed (-1 = not known yet: look with fstat) */
    int64_t next_offset;        /* one past its last record when known, else -1 */
    int64_t max_ts;             /* largest timestamp when known (INT64_MIN when empty) */
    bool max_ts_known;
    int64_t created_ms; /* wall-clock birth, for segment_ms */
    /* The sparse indexes, in memory (loaded, rebuilt, or grown by the writer). The writer's
     * active segment grows them under the log's list lock. */
    rv__idx_t *idx;
    size_t nidx, idx_cap, idx_flushed;
    rv__tix_t *tix;
    size_t ntix, tix_cap, tix_flushed;
    int64_t last_idx_pos; /* position of the last index entry, -1 without one */
} rv__seg_t;

/* ---- the shared state page ------------------------------------------------------------------ */

#define RV__STATE_MAGIC 0x54535652u /* "RVST" */
#define RV__STATE_VERSION 1u
#define RV__STATE_SIZE 4096

/* The `state` file, mapped shared by the writer and every reader. */
typedef struct rv__state_s {
    uint32_t magic;
    uint32_t version;
    _Atomic uint32_t futex;   /* bumped after every publication; readers FUTEX_WAIT on it */
    _Atomic uint32_t waiters; /* readers inside rv__plog_wait(): the writer wakes only then */
    _Atomic uint64_t seq;     /* seqlock over the fields below: odd while they change */
    _Atomic int64_t high;
    _Atomic int64_t low;
    _Atomic int64_t active_base;
    _Atomic int64_t active_size;
    _Atomic uint64_t gen; /* bumped when the segment list changes */
    _Atomic int64_t writer_pid;
    _Atomic uint32_t valid; /* 1 once a writer has published */
} rv__state_t;

/* One consistent publication. */
typedef struct rv__pub_s {
    int64_t high;
    int64_t low;
    int64_t active_base;
    int64_t active_size;
    uint64_t gen;
} rv__pub_t;

/* ---- the log ------------------------------------------------------------------------------- */

struct rv_plog_s {
    char *dir;
    char *name;          /* for messages: opts->name or the directory */
    rv_logger_t logger;  /* a copy of opts->log (cb NULL when none) */
    rv_plog_opts_t opts; /* with name/log pointing at the copies above */
    int dir_fd;
    int lock_fd;
    bool opened; /* rv__plog_open() finished */

    int state_fd;
    rv__state_t *st;
    rv__pub_t local_pub; /* what a read-only log uses while no writer ever published */

    pthread_rwlock_t list_lock; /* the segment array and the active segment's index arrays */
    rv__seg_t **segs;
    size_t nsegs, segs_cap;
    _Atomic uint64_t list_gen; /* the publication generation the list reflects */

    /* Writer side. wmutex serialises append, sync, roll and list changes and publication;
     * maint_mutex serialises retention and compaction (taken before wmutex). */
    pthread_mutex_t wmutex;
    pthread_mutex_t maint_mutex;
    rv__batch_enc_t enc;
    int64_t high;
    int64_t low;
    /* The first fsync a roll made of the segment it closed that failed (errno, 0 = none), and
     * that segment's base offset: the next rv__plog_sync() reports it, since it covers only
     * the active segment. Under wmutex. */
    int roll_sync_errno;
    int64_t roll_sync_base;
};

/* Segment helpers (plog_segment.c). */
RV__HIDDEN char *rv__seg_path(const char *dir, int64_t base, const char *ext);
RV__HIDDEN rv__seg_t *rv__seg_new(const char *dir, int64_t base);
RV__HIDDEN void rv__seg_ref(rv__seg_t *seg);
RV__HIDDEN void rv__seg_unref(rv__seg_t *seg);
/* Deletes <base>.log, .idx and .tix (missing ones are fine; failures are logged). */
RV__HIDDEN void rv__seg_unlink_files(rv_plog_t *log, int64_t base);
RV__HIDDEN rv_err_t rv__seg_add_index(rv__seg_t *seg, int64_t pos, int64_t base_offset,
                                      int64_t ts_before);
/* Writes the whole in-memory index of `seg` (with the end entry when `closed`) to the files
 * <base>.idx and <base>.tix, or to the same names with `suffix` appended. */
RV__HIDDEN rv_err_t rv__seg_write_index(rv_plog_t *log, rv__seg_t *seg, bool closed,
                                        const char *suffix, rv_error_t **err);
/* Appends the index entries not yet written (the active segment's), and the end entry when
 * `closing`. */
RV__HIDDEN rv_err_t rv__seg_flush_index(rv_plog_t *log, rv__seg_t *seg, bool closing,
                                        rv_error_t **err);
/* Loads and checks <base>.idx/.tix; false (nothing loaded) when missing or inconsistent. */
RV__HIDDEN bool rv__seg_load_index(rv_plog_t *log, rv__seg_t *seg, int64_t size, bool closed);

/* What a scan of a segment found. */
typedef struct rv__scan_s {
    int64_t valid_end;   /* end of the last whole, checksummed batch */
    int64_t tail_pos;    /* where a torn tail starts, -1 without one */
    int64_t next_offset; /* one past the last valid record, -1 without a valid batch */
    int64_t max_ts;
    int64_t corrupt_pos; /* first damaged batch that valid batches follow, -1 without */
    char tail_reason[128];
} rv__scan_t;

/* Reads `seg` from 0 to `size`, checking every batch, rebuilding its in-memory indexes (when
 * `build_index`) and finding a torn tail. */
RV__HIDDEN rv_err_t rv__seg_scan(rv_plog_t *log, rv__seg_t *seg, int64_t size, bool build_index,
                                 rv__scan_t *out, rv_error_t **err);
/* The size a closed segment's reader may read to. */
RV__HIDDEN int64_t rv__seg_final_size(rv__seg_t *seg);

/* Reads exactly `len` bytes at `pos`; RV_ERR_IO, or RV_ERR_CORRUPT when the file is shorter. */
RV__HIDDEN rv_err_t rv__pread_full(int fd, void *buf, size_t len, int64_t pos);
/* Writes all of `len` bytes at `pos`. Returns 0 or an errno value. */
RV__HIDDEN int rv__pwrite_full(int fd, const void *buf, size_t len, int64_t pos);
RV__HIDDEN void rv__fsync_dir(rv_plog_t *log);

/* Log internals (plog.c). */
RV__HIDDEN void rv__plog_pub_read(rv_plog_t *log, rv__pub_t *p);
/* Publishes the writer's high/low/active segment and generation; the caller holds wmutex. */
RV__HIDDEN void rv__plog_publish(rv_plog_t *log);
/* For a read-only log: rescans the directory when the writer changed the segment list. */
RV__HIDDEN rv_err_t rv__plog_refresh(rv_plog_t *log, const rv__pub_t *pub, rv_error_t **err);
/* Compaction recovery at writable open (plog_compact.c): finishes a committed swap and removes
 * leftovers of an unfinished one. */
RV__HIDDEN rv_err_t rv__compact_recover(rv_plog_t *log, rv_error_t **err);

#define RV__SUB "log"

#endif
