/*
 * store_impl.h: the layout of one store instance, shared by store.c (the RocksDB instance, its
 * write buffer and iterators) and stores.c (a worker's set: opening, restoring, changelogs,
 * checkpoints). Nothing outside src/state includes it.
 *
 * On disk every key has a one-byte namespace: 'd' for the operators' keys, 'm' for the store's
 * own metadata ("m offsets": the processed input offset and the event time, also sent to the
 * changelog; "m changelog": the next changelog offset to restore from, local only). A data value
 * starts with a flag byte; flag 1 means an 8-byte big-endian event-time expiry follows. The
 * changelog carries the same keys and values, so restoring is copying.
 */
#ifndef RV_STATE_STORE_IMPL_H
#define RV_STATE_STORE_IMPL_H

#include "state/rocks.h"

#include "state/state_int.h"

#define RV__NS_DATA 'd'
#define RV__NS_META 'm'
#define RV__META_OFFSETS "moffsets"
#define RV__META_CHANGELOG "mchangelog"
#define RV__VAL_EXPIRES 1

/* A store's life: opening (maybe waiting for another process's lock), restoring, ready. */
typedef enum rv__store_phase_e {
    RV__STORE_OPENING,
    RV__STORE_RESTORING,
    RV__STORE_READY
} rv__store_phase_t;

/* One buffered change: a namespaced key and its new value, or a deletion. */
typedef struct rv__bent_s {
    char *val; /* the stored value (flag byte first); NULL for a deletion */
    uint32_t vlen, vcap;
    uint32_t klen;
    char key[]; /* klen bytes */
} rv__bent_t;

/*
 * The changes since the last checkpoint: a hash map from key to its latest change (reads see
 * them), the changes in the order their keys were first changed (the checkpoint writes each once)
 * and, for iterators, a sorted index of them rebuilt lazily when new keys arrived.
 */
typedef struct rv__wbuf_s {
    rv__bent_t **slots; /* open addressing; cap a power of two */
    size_t cap;
    rv__bent_t **order; /* first-change order */
    size_t n, order_cap;
    rv__bent_t **sorted; /* the first `nsorted` of `order`, sorted by key */
    size_t nsorted, sorted_cap;
    int64_t bytes; /* memory held by the changes (entries, keys, values) */
} rv__wbuf_t;

struct rv__store_s {
    rv__stores_t *set;
    const rv__store_decl_t *decl;
    int32_t partition;
    char *dir;
    const char *rocksdb_opts; /* borrowed from the set's options; NULL = defaults */
    rv__store_phase_t phase;
    int64_t open_deadline_ms; /* opening: give up waiting for the lock then */
    bool lock_waited;         /* logged that it waits for the lock */
    rocksdb_t *db;
    rv__wbuf_t buf;         /* the current checkpoint's changes */
    int64_t *buffered;      /* the set's total of buffered bytes, kept up to date (may be NULL) */
    int64_t processed;      /* input records below this offset are in the store (committed) */
    int64_t time;           /* event time: the largest record timestamp seen */
    int64_t changelog_next; /* the next changelog offset to restore from (committed) */
    /* A checkpoint under way. */
    int64_t ck_processed;
    int64_t ck_changelog_next;
    int64_t delivered; /* changelog records of this checkpoint delivered */
    rv_err_t delivery_err;
    char delivery_msg[256];
    /* Restoring. */
    int64_t restore_end;          /* the changelog's high watermark when the restore started */
    int64_t restored;             /* records applied */
    bool announced;               /* reported ready to the worker */
    rocksdb_writebatch_t *rbatch; /* a restore step's writes */
    bool ck_sent;                 /* its changes went to the changelog in this checkpoint */
    bool closed; /* revoked: kept (without its database) until the set is destroyed,
                    as late delivery reports may still name it */
    rv__store_t *next_closed;
    /* Reads. */
    char *getbuf; /* the last get's value (RocksDB's allocation) */
    char *kbuf;   /* scratch for namespaced keys */
    size_t kcap;
    int iters; /* open iterators */
    char errmsg[384];
};

/* store.c */
RV__HIDDEN rv_err_t rv__store_open_db(rv__store_t *s, bool *locked, char **why);
RV__HIDDEN void rv__store_close_db(rv__store_t *s);
RV__HIDDEN rv_err_t rv__store_wipe(rv__store_t *s, char **why);
RV__HIDDEN rv_err_t rv__store_load_meta(rv__store_t *s);
RV__HIDDEN const char *rv__store_nskey(rv__store_t *s, char ns, const void *key, size_t len);
/* The number of buffered changes, and the i-th (key namespaced; value NULL for a deletion). */
static inline size_t rv__store_pending(const rv__store_t *s);
RV__HIDDEN const rv__bent_t *rv__store_pending_at(const rv__store_t *s, size_t i);
/* Writes the buffer and `nmeta` metadata pairs in one WriteBatch, then empties the buffer.
 * On failure returns RV_ERR_IO with RocksDB's reason in s->errmsg (the buffer is kept). */
RV__HIDDEN rv_err_t rv__store_commit_buffer(rv__store_t *s, const char *const *meta_keys,
                                            const char *const *meta_vals, const size_t *meta_lens,
                                            size_t nmeta);
RV__HIDDEN void rv__wbuf_free(rv__wbuf_t *b);
/* Forgets the buffered changes (an aborted transaction's). */
RV__HIDDEN void rv__store_discard(rv__store_t *s);
RV__HIDDEN const rocksdb_writeoptions_t *rv__store_wopts(void);
RV__HIDDEN const rocksdb_readoptions_t *rv__store_ropts(void);
RV__HIDDEN void rv__store_put_be64(char *out, int64_t v);
RV__HIDDEN int64_t rv__store_get_be64(const char *in);

static inline size_t rv__store_pending(const rv__store_t *s) {
    return s->buf.n;
}

#endif
