/*
 * local_txn.c: transactions of the `local:` broker: records and consumer offsets committed
 * atomically, across topics, partitions and processes, surviving a crash at any point.
 *
 * A producer made with a transactional.id buffers the records of its open transaction in
 * memory (at most transaction.max.bytes), grouped by partition, and the consumer offsets given
 * to it by group. Nothing reaches a partition log before the commit, so no consumer ever sees
 * a record of an open or aborted transaction. The commit:
 *
 *   1. takes the writer of every partition concerned, in (topic, partition) order: its mutex in
 *      this handle and its writer flock across processes, and notes each high watermark (the
 *      transaction's base offset there); no other append can slip in until step 6;
 *   2. under the flock of txn/ids/<id>.lock, checks that the producer's epoch is still the id's
 *      (else it was fenced: RV_ERR_FATAL), then writes the intent, txn/intents/<name>.txn
 *      (records per partition with their base offsets, the offsets per group, a CRC),
 *      fdatasync'ed, renamed from a temporary name and the directory fsynced: the commit
 *      point. The intent file stays flocked by its writer until it is deleted;
 *   3. appends each partition's records, and fsyncs them (unless local.fsync.policy=never);
 *   4. merges the offsets into each group's committed offsets (atomic file replacement);
 *   5. deletes the intent; 6. releases the writers; then serves the delivery reports.
 *
 * Recovery is idempotent: an intent whose flock can be taken belongs to a dead process. It is
 * completed by whoever opens the root (rv_broker_open) or first opens one of its partitions
 * for writing (rv__local_txn_pending(), from local.c): under the intent's flock, with the
 * partitions' writers taken, a partition whose high watermark is `base + k` already has the
 * first k records (appends of a partition are in order, and a torn tail is cut to whole
 * batches), so only the others are appended; offsets are merged again (the same values); the
 * intent is deleted. No other append can come between: the dead committer held every writer
 * flock of the intent, and whoever takes one afterwards finishes the intent first.
 *
 * Fencing: each transactional.id has an epoch in txn/ids/<id>.epoch, bumped by the first
 * rv_producer_begin_transaction() of every producer; a producer whose epoch is no longer the
 * id's gets RV_ERR_FATAL from its next begin or commit (checked under the id's flock, so a
 * commit either precedes the new producer's initialisation or fails).
 *
 * This file must never append a transaction's record before its intent is durable, and never
 * delete an intent before its records and offsets are stored.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/local_int.h"
#include "rivulet/clock.h"
#include "rivulet/hash.h"

#define INTENT_MAGIC "rivulet-txn 1\n"
#define INTENT_SUFFIX ".txn"
#define NULL_LEN UINT32_MAX
/* Bytes a record is accounted for beyond its key, value and headers in transaction.max.bytes. */
#define RECORD_OVERHEAD 24
/* How long a commit or a recovery retries partitions another process is writing. */
#define ACQUIRE_WAIT_MS RV_LOCAL_WRITER_WAIT_MS

/* ---- the transaction in memory --------------------------------------------------------------- */

/* Records of one partition, encoded as in the intent (see docs/log-format.md). */
typedef struct tpart_s {
    char *topic;
    int32_t partition;
    int64_t base; /* the partition's high watermark when the commit took its writer */
    size_t count;
    char *data;
    size_t len;
    size_t cap;
    void **opaques; /* [count] */
    size_t opaques_cap;
} tpart_t;

typedef struct toffset_s {
    char *group;
    char *topic;
    int32_t partition;
    int64_t offset;
} toffset_t;

struct rv_local_txn_s {
    rv_producer_t *producer;
    rv_local_t *lb;
    char *id;
    char *id_file;   /* txn/ids/<hex id>.epoch */
    char *lock_file; /* txn/ids/<hex id>.lock */
    pthread_mutex_t mu;
    int64_t epoch; /* 0 until the first begin */
    bool in_txn;
    bool fenced;
    size_t max_bytes;
    size_t bytes;
    uint32_t round_robin;
    tpart_t *parts;
    size_t nparts;
    size_t parts_cap;
    toffset_t *offs;
    size_t noffs;
    size_t offs_cap;
};

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) {
        return true;
    }
    size_t c = *cap ? *cap : 8;
    while (c < need) {
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q) {
        return false;
    }
    *p = q;
    *cap = c;
    return true;
}

static void parts_free(tpart_t *parts, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(parts[i].topic);
        free(parts[i].data);
        free(parts[i].opaques);
    }
    free(parts);
}

static void offs_free(toffset_t *offs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(offs[i].group);
        free(offs[i].topic);
    }
    free(offs);
}

/* Forgets the open transaction's records and offsets. With txn->mu held. */
static void txn_clear(rv_local_txn_t *txn) {
    parts_free(txn->parts, txn->nparts);
    offs_free(txn->offs, txn->noffs);
    txn->parts = NULL;
    txn->nparts = txn->parts_cap = 0;
    txn->offs = NULL;
    txn->noffs = txn->offs_cap = 0;
    txn->bytes = 0;
}

static char *hex_of(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(n * 2 + 1);
    if (out) {
        for (size_t i = 0; i < n; i++) {
            sprintf(out + 2 * i, "%02x", (unsigned char)s[i]);
        }
        out[2 * n] = '\0';
    }
    return out;
}

static char *unhex(const char *s) {
    size_t n = strlen(s);
    if (n % 2) {
        return NULL;
    }
    char *out = malloc(n / 2 + 1);
    for (size_t i = 0; out && i < n / 2; i++) {
        unsigned v = 0;
        if (sscanf(s + 2 * i, "%2x", &v) != 1 || v == 0) {
            free(out);
            return NULL;
        }
        out[i] = (char)v;
    }
    if (out) {
        out[n / 2] = '\0';
    }
    return out;
}

/* ---- record encoding ------------------------------------------------------------------------- */

static bool put(tpart_t *tp, const void *data, size_t len) {
    if (!grow((void **)&tp->data, &tp->cap, tp->len + len, 1)) {
        return false;
    }
    if (len) {
        memcpy(tp->data + tp->len, data, len);
    }
    tp->len += len;
    return true;
}

static bool put_u32(tpart_t *tp, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return put(tp, b, 4);
}

static bool put_bytes(tpart_t *tp, const void *data, size_t len) {
    return data ? put_u32(tp, (uint32_t)len) && put(tp, data, len) : put_u32(tp, NULL_LEN);
}

static uint32_t get_u32(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Reads 4-byte length-prefixed bytes at *p (NULL data for the null length). */
static bool get_bytes(const char **p, const char *end, const void **data, size_t *len) {
    if (end - *p < 4) {
        return false;
    }
    uint32_t n = get_u32((const unsigned char *)*p);
    *p += 4;
    if (n == NULL_LEN) {
        *data = NULL;
        *len = 0;
        return true;
    }
    if ((size_t)(end - *p) < n) {
        return false;
    }
    *data = *p;
    *len = n;
    *p += n;
    return true;
}

/*
 * Decodes `count` records of `data` into views: *recs and *hdrs are malloc'ed (free both);
 * the views point into `data`. Header names are stored with their NUL. false when the bytes
 * do not hold `count` whole records.
 */
static bool decode_records(const char *topic, int32_t partition, const char *data, size_t len,
                           size_t count, rv_record_t **recs_out, rv_header_t **hdrs_out) {
    const char *end = data + len;
    size_t nh = 0;
    /* Pass 1: count the headers. */
    const char *p = data;
    for (size_t i = 0; i < count; i++) {
        const void *d;
        size_t l;
        if (end - p < 8 + 4) {
            return false;
        }
        p += 8;
        if (!get_bytes(&p, end, &d, &l) || !get_bytes(&p, end, &d, &l) || end - p < 4) {
            return false;
        }
        uint32_t h = get_u32((const unsigned char *)p);
        p += 4;
        for (uint32_t k = 0; k < h; k++) {
            if (!get_bytes(&p, end, &d, &l) || !get_bytes(&p, end, &d, &l)) {
                return false;
            }
        }
        nh += h;
    }
    if (p != end) {
        return false;
    }
    rv_record_t *recs = calloc(count ? count : 1, sizeof *recs);
    rv_header_t *hdrs = calloc(nh ? nh : 1, sizeof *hdrs);
    if (!recs || !hdrs) {
        free(recs);
        free(hdrs);
        return false;
    }
    p = data;
    size_t hi = 0;
    for (size_t i = 0; i < count; i++) {
        rv_record_t *r = &recs[i];
        uint64_t ts = (uint64_t)get_u32((const unsigned char *)p) |
                      (uint64_t)get_u32((const unsigned char *)p + 4) << 32;
        p += 8;
        r->topic = topic;
        r->partition = partition;
        r->timestamp_ms = (int64_t)ts;
        get_bytes(&p, end, &r->key, &r->key_len);
        get_bytes(&p, end, &r->value, &r->value_len);
        uint32_t h = get_u32((const unsigned char *)p);
        p += 4;
        r->headers = h ? &hdrs[hi] : NULL;
        r->header_count = h;
        for (uint32_t k = 0; k < h; k++, hi++) {
            const void *name = NULL;
            size_t name_len = 0;
            get_bytes(&p, end, &name, &name_len);
            hdrs[hi].name = name;
            get_bytes(&p, end, &hdrs[hi].value, &hdrs[hi].value_len);
        }
    }
    *recs_out = recs;
    *hdrs_out = hdrs;
    return true;
}

/* ---- the producer's side --------------------------------------------------------------------- */

rv_err_t rv__local_txn_init(rv_local_t *lb, rv_error_t **err) {
    char *ids = rv__local_strf("%s/ids", lb->txn_dir);
    char *intents = rv__local_strf("%s/intents", lb->txn_dir);
    rv_err_t rc = ids && intents
                      ? RV_OK
                      : rv__error_set(err, RV_ERR_NOMEM, "out of memory opening '%s'", lb->root);
    if (rc == RV_OK) {
        rc = rv__local_mkdirs(ids, err);
    }
    if (rc == RV_OK) {
        rc = rv__local_mkdirs(intents, err);
    }
    free(ids);
    free(intents);
    return rc;
}

rv_err_t rv__local_txn_new(rv_producer_t *p, rv_local_txn_t **out, rv_error_t **err) {
    *out = NULL;
    const char *id = rv__conf_str(p->conf, RV_CONF_ID_TRANSACTIONAL_ID);
    if (!id || !id[0]) {
        return RV_OK;
    }
    rv_local_t *lb = p->broker->impl;
    rv_local_txn_t *txn = calloc(1, sizeof *txn);
    char *hex = hex_of(id);
    if (txn && hex && strlen(hex) > 400) {
        free(hex);
        free(txn);
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "transactional.id '%.40s...' is too long for the embedded log", id);
    }
    if (txn && hex) {
        txn->id = strdup(id);
        txn->id_file = rv__local_strf("%s/ids/%s.epoch", lb->txn_dir, hex);
        txn->lock_file = rv__local_strf("%s/ids/%s.lock", lb->txn_dir, hex);
    }
    free(hex);
    if (!txn || !txn->id || !txn->id_file || !txn->lock_file) {
        if (txn) {
            free(txn->id);
            free(txn->id_file);
            free(txn->lock_file);
            free(txn);
        }
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory creating a producer on '%s'",
                             lb->root);
    }
    txn->producer = p;
    txn->lb = lb;
    txn->max_bytes = (size_t)rv__conf_int(p->conf, RV_CONF_ID_TRANSACTION_MAX_BYTES);
    pthread_mutex_init(&txn->mu, NULL);
    *out = txn;
    return RV_OK;
}

void rv__local_txn_free(rv_local_txn_t *txn) {
    if (!txn) {
        return;
    }
    txn_clear(txn);
    pthread_mutex_destroy(&txn->mu);
    free(txn->id);
    free(txn->id_file);
    free(txn->lock_file);
    free(txn);
}

static tpart_t *part_get(rv_local_txn_t *txn, const char *topic, int32_t partition) {
    for (size_t i = 0; i < txn->nparts; i++) {
        if (txn->parts[i].partition == partition && strcmp(txn->parts[i].topic, topic) == 0) {
            return &txn->parts[i];
        }
    }
    if (!grow((void **)&txn->parts, &txn->parts_cap, txn->nparts + 1, sizeof *txn->parts)) {
        return NULL;
    }
    tpart_t *tp = &txn->parts[txn->nparts];
    *tp = (tpart_t){.topic = strdup(topic), .partition = partition};
    if (!tp->topic) {
        return NULL;
    }
    txn->nparts++;
    return tp;
}

rv_err_t rv__local_txn_send(rv_local_txn_t *txn, const rv_record_t *rec, void *rec_opaque) {
    if (!rec || !rec->topic || (rec->header_count && !rec->headers)) {
        return RV_ERR_INVALID_ARG;
    }
    size_t bytes =
        RECORD_OVERHEAD + (rec->key ? rec->key_len : 0) + (rec->value ? rec->value_len : 0);
    for (size_t i = 0; i < rec->header_count; i++) {
        if (!rec->headers[i].name) {
            return RV_ERR_INVALID_ARG;
        }
        bytes += 8 + strlen(rec->headers[i].name) +
                 (rec->headers[i].value ? rec->headers[i].value_len : 0);
    }
    rv_local_topic_t *t = NULL;
    rv_err_t rc = rv__local_topic_get(txn->lb, rec->topic, &t, NULL);
    if (rc != RV_OK) {
        return rc;
    }
    if ((int64_t)bytes > t->max_message_bytes) {
        rv__log(&txn->producer->broker->log, RV_LOG_WARNING, "local",
                "topic '%s': a record of %zu bytes exceeds max.message.bytes (%" PRId64 ")",
                rec->topic, bytes, t->max_message_bytes);
        return RV_ERR_LIMIT;
    }
    pthread_mutex_lock(&txn->mu);
    if (txn->fenced || !txn->in_txn) {
        rc = txn->fenced ? RV_ERR_FATAL : RV_ERR_STATE;
        pthread_mutex_unlock(&txn->mu);
        rv__log(&txn->producer->broker->log, RV_LOG_WARNING, "local",
                "transactional.id '%s': send %s", txn->id,
                rc == RV_ERR_FATAL ? "after the producer was fenced by a newer one"
                                   : "outside a transaction (begin one first)");
        return rc;
    }
    if (txn->bytes + bytes > txn->max_bytes) {
        pthread_mutex_unlock(&txn->mu);
        rv__log(&txn->producer->broker->log, RV_LOG_WARNING, "local",
                "transactional.id '%s': the transaction would exceed transaction.max.bytes "
                "(%zu): commit it or raise the limit",
                txn->id, txn->max_bytes);
        return RV_ERR_LIMIT;
    }
    int32_t partition = rec->partition;
    if (partition == RV_PARTITION_ANY) {
        partition = rv__choose_partition(rec, t->partitions, &txn->round_robin);
    } else if (partition < 0 || partition >= t->partitions) {
        pthread_mutex_unlock(&txn->mu);
        return RV_ERR_INVALID_ARG;
    }
    tpart_t *tp = part_get(txn, rec->topic, partition);
    size_t old_len = tp ? tp->len : 0;
    int64_t ts = rec->timestamp_ms ? rec->timestamp_ms : rv_clock_wall_ms();
    bool ok = tp && grow((void **)&tp->opaques, &tp->opaques_cap, tp->count + 1, sizeof(void *)) &&
              put_u32(tp, (uint32_t)(uint64_t)ts) && put_u32(tp, (uint32_t)((uint64_t)ts >> 32)) &&
              put_bytes(tp, rec->key, rec->key_len) && put_bytes(tp, rec->value, rec->value_len) &&
              put_u32(tp, (uint32_t)rec->header_count);
    for (size_t i = 0; ok && i < rec->header_count; i++) {
        const rv_header_t *h = &rec->headers[i];
        ok = put_bytes(tp, h->name, strlen(h->name) + 1) && put_bytes(tp, h->value, h->value_len);
    }
    if (!ok) {
        if (tp) {
            tp->len = old_len;
        }
        pthread_mutex_unlock(&txn->mu);
        return RV_ERR_NOMEM;
    }
    tp->opaques[tp->count++] = rec_opaque;
    txn->bytes += bytes;
    pthread_mutex_unlock(&txn->mu);
    return RV_OK;
}

/* ---- epochs and fencing ---------------------------------------------------------------------- */

static int lock_open(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd >= 0) {
        while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {
        }
    }
    return fd;
}

static void lock_close(int fd) {
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}

/* The id's current epoch (0 when it has none yet). */
static rv_err_t epoch_read(rv_local_txn_t *txn, int64_t *epoch, rv_error_t **err) {
    char *text = NULL;
    rv_error_t *e = NULL;
    rv_err_t rc = rv__local_read_file(txn->id_file, &text, NULL, &e);
    *epoch = 0;
    if (rc == RV_ERR_NOT_FOUND) {
        rv_error_destroy(e);
        return RV_OK;
    }
    if (rc != RV_OK) {
        if (err) {
            rv_error_destroy(*err);
            *err = e;
        } else {
            rv_error_destroy(e);
        }
        return rc;
    }
    long long v = 0;
    if (sscanf(text, "epoch %lld", &v) != 1 || v <= 0) {
        rc = rv__error_set(err, RV_ERR_CORRUPT, "'%s' does not hold \"epoch N\"", txn->id_file);
    }
    free(text);
    *epoch = v;
    return rc;
}

static rv_err_t fenced_error(rv_local_txn_t *txn, const char *what, rv_error_t **err) {
    txn->fenced = true;
    return rv__error_set(err, RV_ERR_FATAL,
                         "%s: transactional.id '%s' was taken by a newer producer (this one is "
                         "fenced): close it",
                         what, txn->id);
}

/* Whether the producer still owns its id. With txn->mu held. */
static rv_err_t epoch_check(rv_local_txn_t *txn, const char *what, rv_error_t **err) {
    int64_t now = 0;
    rv_err_t rc = epoch_read(txn, &now, err);
    if (rc == RV_OK && now != txn->epoch) {
        rc = fenced_error(txn, what, err);
    }
    return rc;
}

/* Takes the id: bumps its epoch, which fences every older producer. With txn->mu held. */
static rv_err_t epoch_take(rv_local_txn_t *txn, rv_error_t **err) {
    int fd = lock_open(txn->lock_file);
    if (fd < 0) {
        return rv__error_set(err, RV_ERR_IO, "cannot open '%s': %s", txn->lock_file,
                             strerror(errno));
    }
    int64_t epoch = 0;
    rv_err_t rc = epoch_read(txn, &epoch, err);
    char text[64];
    int len = snprintf(text, sizeof text, "epoch %" PRId64 "\n", epoch + 1);
    if (rc == RV_OK) {
        char *dir = rv__local_strf("%s/ids", txn->lb->txn_dir);
        const char *base = strrchr(txn->id_file, '/') + 1;
        rc = dir ? rv__local_write_atomic(txn->lb, dir, base, text, (size_t)len, err)
                 : rv__error_set(err, RV_ERR_NOMEM, "out of memory");
        free(dir);
    }
    lock_close(fd);
    if (rc == RV_OK) {
        txn->epoch = epoch + 1;
    }
    return rc;
}

/* ---- intents --------------------------------------------------------------------------------- */

typedef struct intent_s {
    char *buf; /* the whole file */
    size_t len;
    char *id;
    int64_t epoch;
    tpart_t *parts; /* topic malloc'ed; data points into buf (not owned: data_owned false) */
    size_t nparts;
    toffset_t *offs;
    size_t noffs;
} intent_t;

static void intent_free(intent_t *in) {
    for (size_t i = 0; i < in->nparts; i++) {
        free(in->parts[i].topic);
    }
    free(in->parts);
    offs_free(in->offs, in->noffs);
    free(in->id);
    free(in->buf);
    memset(in, 0, sizeof *in);
}

/* Renders the intent of `txn`'s transaction (parts sorted, bases noted). */
static rv_err_t intent_render(rv_local_txn_t *txn, rv_strbuf_t *out) {
    char *hid = hex_of(txn->id);
    rv_err_t rc = hid ? RV_OK : RV_ERR_NOMEM;
    if (rc == RV_OK) {
        rc = rv_strbuf_appendf(out, "%sid %s\nepoch %" PRId64 "\n", INTENT_MAGIC, hid, txn->epoch);
    }
    free(hid);
    for (size_t i = 0; rc == RV_OK && i < txn->noffs; i++) {
        char *hg = hex_of(txn->offs[i].group);
        rc = hg ? rv_strbuf_appendf(out, "offset %s %s %" PRId32 " %" PRId64 "\n", hg,
                                    txn->offs[i].topic, txn->offs[i].partition, txn->offs[i].offset)
                : RV_ERR_NOMEM;
        free(hg);
    }
    for (size_t i = 0; rc == RV_OK && i < txn->nparts; i++) {
        const tpart_t *tp = &txn->parts[i];
        rc = rv_strbuf_appendf(out, "part %s %" PRId32 " %" PRId64 " %zu %zu\n", tp->topic,
                               tp->partition, tp->base, tp->count, tp->len);
    }
    if (rc == RV_OK) {
        rc = rv_strbuf_append(out, "data\n", 5);
    }
    for (size_t i = 0; rc == RV_OK && i < txn->nparts; i++) {
        rc = rv_strbuf_append(out, txn->parts[i].data, txn->parts[i].len);
    }
    if (rc == RV_OK) {
        uint32_t crc = rv_crc32c(0, out->data, out->len);
        unsigned char b[4] = {(unsigned char)crc, (unsigned char)(crc >> 8),
                              (unsigned char)(crc >> 16), (unsigned char)(crc >> 24)};
        rc = rv_strbuf_append(out, (const char *)b, 4);
    }
    return rc;
}

/* Parses an intent file's bytes (taking `buf`). RV_ERR_CORRUPT naming `path` when broken. */
static rv_err_t intent_parse(const char *path, char *buf, size_t len, intent_t *in,
                             rv_error_t **err) {
    memset(in, 0, sizeof *in);
    in->buf = buf;
    in->len = len;
    size_t magic = strlen(INTENT_MAGIC);
    if (len < magic + 4 || memcmp(buf, INTENT_MAGIC, magic) != 0 ||
        rv_crc32c(0, buf, len - 4) != get_u32((const unsigned char *)buf + len - 4)) {
        return rv__error_set(err, RV_ERR_CORRUPT,
                             "transaction intent '%s' is not whole (bad magic or checksum)", path);
    }
    const char *p = buf + magic;
    const char *end = buf + len - 4;
    size_t total = 0;
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl || nl - p > 1000) {
            return rv__error_set(err, RV_ERR_CORRUPT, "transaction intent '%s': no data line",
                                 path);
        }
        char line[1024];
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = '\0';
        p = nl + 1;
        char a[520], b[256];
        long long x = 0, y = 0;
        unsigned long long n1 = 0, n2 = 0;
        bool ok = true;
        if (strcmp(line, "data") == 0) {
            break;
        } else if (sscanf(line, "id %519s", a) == 1) {
            free(in->id);
            ok = (in->id = unhex(a)) != NULL;
        } else if (sscanf(line, "epoch %lld", &x) == 1) {
            in->epoch = x;
        } else if (sscanf(line, "offset %519s %255s %lld %lld", a, b, &x, &y) == 4) {
            toffset_t *o = realloc(in->offs, (in->noffs + 1) * sizeof *o);
            ok = o != NULL && x >= 0 && x <= INT32_MAX && y >= 0;
            if (o) {
                in->offs = o;
                o[in->noffs] = (toffset_t){unhex(a), strdup(b), (int32_t)x, y};
                ok = ok && o[in->noffs].group && o[in->noffs].topic;
                in->noffs++;
            }
        } else if (sscanf(line, "part %255s %lld %lld %llu %llu", b, &x, &y, &n1, &n2) == 5) {
            tpart_t *v = realloc(in->parts, (in->nparts + 1) * sizeof *v);
            ok = v != NULL && x >= 0 && x <= INT32_MAX && y >= 0;
            if (v) {
                in->parts = v;
                v[in->nparts] = (tpart_t){.topic = strdup(b),
                                          .partition = (int32_t)x,
                                          .base = y,
                                          .count = (size_t)n1,
                                          .len = (size_t)n2};
                ok = ok && v[in->nparts].topic;
                in->nparts++;
                total += (size_t)n2;
            }
        } else {
            ok = false;
        }
        if (!ok) {
            return rv__error_set(err, RV_ERR_CORRUPT, "transaction intent '%s': bad line \"%.80s\"",
                                 path, line);
        }
    }
    if ((size_t)(end - p) != total || !in->id) {
        return rv__error_set(err, RV_ERR_CORRUPT,
                             "transaction intent '%s': %zu bytes of records, %zu announced", path,
                             (size_t)(end - p), total);
    }
    for (size_t i = 0; i < in->nparts; i++) {
        in->parts[i].data = (char *)p;
        p += in->parts[i].len;
    }
    return RV_OK;
}

/* ---- applying -------------------------------------------------------------------------------- */

/* The phase a test asks a committing process to die at (RV_LOCAL_TXN_KILL), or NULL. */
static void kill_point(const char *phase) {
    const char *want = getenv("RV_LOCAL_TXN_KILL");
    if (want && strcmp(want, phase) == 0) {
        raise(SIGKILL);
    }
}

static int compare_parts(const void *a, const void *b) {
    const tpart_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* Releases the writers taken so far. */
static void writers_release(rv_local_writer_t **ws, size_t n, bool appended) {
    for (size_t i = n; i-- > 0;) {
        if (ws[i]) {
            rv__local_writer_release(ws[i], appended);
            ws[i] = NULL;
        }
    }
}

/*
 * Takes the writers of `parts` (sorted), retrying partitions another process is writing until
 * `deadline` (monotonic ms). A part whose topic is gone gets a NULL writer when `skip_gone`,
 * else fails the call. On failure none is held.
 */
static rv_err_t writers_take(rv_local_t *lb, tpart_t *parts, size_t n, bool check_txn,
                             bool skip_gone, int64_t deadline, rv_local_writer_t **ws,
                             rv_error_t **err) {
    for (;;) {
        rv_err_t rc = RV_OK;
        size_t i = 0;
        for (; i < n; i++) {
            rv_local_topic_t *t = NULL;
            rv_error_t *e = NULL;
            rc = rv__local_topic_get(lb, parts[i].topic, &t, &e);
            if (rc == RV_OK && parts[i].partition >= t->partitions) {
                rc = rv__error_set(&e, RV_ERR_NOT_FOUND, "topic '%s' has no partition %" PRId32,
                                   parts[i].topic, parts[i].partition);
            }
            if (rc == RV_OK) {
                rc = rv__local_writer_acquire(lb, t, parts[i].partition, check_txn, &ws[i], &e);
            }
            if (rc == RV_ERR_NOT_FOUND && skip_gone) {
                rv__log(&lb->broker->log, RV_LOG_WARNING, "local",
                        "transaction: %s: its records there are dropped", rv_error_message(e));
                ws[i] = NULL;
                rc = RV_OK;
            }
            if (rc != RV_OK) {
                if (rc != RV_ERR_BUSY || rv_clock_mono_ms() >= deadline) {
                    if (err) {
                        rv_error_destroy(*err);
                        *err = e;
                        e = NULL;
                    }
                }
                rv_error_destroy(e);
                break;
            }
            rv_error_destroy(e);
        }
        if (rc == RV_OK) {
            return RV_OK;
        }
        writers_release(ws, i, false);
        if (rc != RV_ERR_BUSY || rv_clock_mono_ms() >= deadline) {
            return rc;
        }
        if (check_txn) { /* an intent a dead process left may be what is in the way */
            rv__local_txn_recover(lb, NULL);
        }
        rv_clock_sleep_ms(RV_LOCAL_WRITER_RETRY_MS);
    }
}

/*
 * Appends what of each part is missing from its log (see the file comment) and syncs, with
 * the writers held; then merges the offsets. `killable` lets a test end the process between
 * the steps.
 */
static rv_err_t apply(rv_local_t *lb, tpart_t *parts, size_t n, rv_local_writer_t **ws,
                      const toffset_t *offs, size_t noffs, bool killable, rv_error_t **err) {
    rv_err_t rc = RV_OK;
    for (size_t i = 0; rc == RV_OK && i < n; i++) {
        tpart_t *tp = &parts[i];
        if (!ws[i] || tp->count == 0) {
            continue;
        }
        int64_t high = rv__plog_high(ws[i]->log);
        int64_t present = high - tp->base;
        if (present < 0 || present > (int64_t)tp->count) {
            rv__log(&lb->broker->log, RV_LOG_WARNING, "local",
                    "transaction: topic '%s' partition %" PRId32 ": its records were to start "
                    "at offset %" PRId64 " but the log ends at %" PRId64 ": %s",
                    tp->topic, tp->partition, tp->base, high,
                    present < 0 ? "appending them all" : "leaving it as it is");
            if (present > 0) {
                continue;
            }
            present = 0;
        }
        if (present == (int64_t)tp->count) {
            continue;
        }
        rv_record_t *recs = NULL;
        rv_header_t *hdrs = NULL;
        if (!decode_records(tp->topic, tp->partition, tp->data, tp->len, tp->count, &recs, &hdrs)) {
            rc = rv__error_set(err, RV_ERR_CORRUPT,
                               "transaction: topic '%s' partition %" PRId32
                               ": its records do not decode",
                               tp->topic, tp->partition);
            break;
        }
        size_t from = (size_t)present;
        size_t todo = tp->count - from;
        int64_t base = 0;
        if (killable && i == 0 && todo > 1 && getenv("RV_LOCAL_TXN_KILL") &&
            strcmp(getenv("RV_LOCAL_TXN_KILL"), "mid-apply") == 0) {
            rc = rv__plog_append(ws[i]->log, recs + from, todo / 2, &base, err);
            kill_point("mid-apply");
        }
        if (rc == RV_OK) {
            rc = rv__plog_append(ws[i]->log, recs + from, todo, &base, err);
        }
        free(recs);
        free(hdrs);
        if (rc == RV_OK && lb->fsync != RV_FSYNC_NEVER) {
            rc = rv__plog_sync(ws[i]->log, err);
        }
        if (rc != RV_OK) {
            rv__error_prefix(err, rc, "transaction: topic '%s' partition %" PRId32 ": ", tp->topic,
                             tp->partition);
        }
    }
    if (killable) {
        kill_point("before-offsets");
    }
    /* Offsets, one merge per group. */
    bool *done = noffs ? calloc(noffs, sizeof *done) : NULL;
    rv_topic_partition_t *tps = noffs ? malloc(noffs * sizeof *tps) : NULL;
    if (noffs && (!done || !tps) && rc == RV_OK) {
        rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory committing a transaction");
    }
    for (size_t i = 0; rc == RV_OK && i < noffs; i++) {
        if (done[i]) {
            continue;
        }
        size_t k = 0;
        for (size_t j = i; j < noffs; j++) {
            if (!done[j] && strcmp(offs[j].group, offs[i].group) == 0) {
                tps[k++] = (rv_topic_partition_t){offs[j].topic, offs[j].partition, offs[j].offset};
                done[j] = true;
            }
        }
        rc = rv__local_group_offsets_merge(lb, offs[i].group, tps, k, err);
    }
    free(done);
    free(tps);
    return rc;
}

/* Completes one intent held by nobody (its writer died). */
static rv_err_t recover_one(rv_local_t *lb, const char *path, rv_error_t **err_out) {
    rv_error_t *error = NULL; /* always filled, for the log */
    rv_error_t **err = &error;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return RV_OK; /* completed meanwhile */
    }
    struct stat st;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0 || st.st_nlink == 0) {
        close(fd); /* live, being recovered, or just completed */
        return RV_OK;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    rv_err_t rc =
        buf ? RV_OK : rv__error_set(err, RV_ERR_NOMEM, "out of memory reading '%s'", path);
    size_t got = 0;
    while (rc == RV_OK && got < (size_t)st.st_size) {
        ssize_t r = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            rc = rv__error_set(err, RV_ERR_IO, "cannot read '%s': %s", path,
                               r < 0 ? strerror(errno) : "file shorter than its size");
        }
        got += r > 0 ? (size_t)r : 0;
    }
    intent_t in;
    memset(&in, 0, sizeof in);
    if (rc == RV_OK) {
        rc = intent_parse(path, buf, got, &in, err);
        buf = NULL;
    }
    free(buf);
    if (rc == RV_ERR_CORRUPT) {
        /* Intents are renamed into place whole: this one was damaged afterwards. Keep it aside
         * so it blocks nothing, and say so. */
        char *aside = rv__local_strf("%s.corrupt", path);
        if (aside && rename(path, aside) == 0) {
            rv__log(&lb->broker->log, RV_LOG_ERROR, "local",
                    "%s; moved to '%s': that transaction is lost", rv_error_message(*err), aside);
        }
        free(aside);
        if (err) {
            rv_error_destroy(*err);
            *err = NULL;
        }
    }
    rv_local_writer_t **ws = NULL;
    if (rc == RV_OK) {
        ws = calloc(in.nparts ? in.nparts : 1, sizeof *ws);
        rc = ws ? writers_take(lb, in.parts, in.nparts, false, true,
                               rv_clock_mono_ms() + ACQUIRE_WAIT_MS, ws, err)
                : rv__error_set(err, RV_ERR_NOMEM, "out of memory recovering '%s'", path);
    }
    if (rc == RV_OK) {
        rv__log(&lb->broker->log, RV_LOG_NOTICE, "local",
                "completing the transaction of transactional.id '%s' (epoch %" PRId64
                ") left by a dead process in '%s'",
                in.id, in.epoch, path);
        rc = apply(lb, in.parts, in.nparts, ws, in.offs, in.noffs, false, err);
        if (rc == RV_OK && unlink(path) != 0) {
            rc = rv__error_set(err, RV_ERR_IO, "cannot delete '%s': %s", path, strerror(errno));
        }
        writers_release(ws, in.nparts, true);
    }
    if (rc == RV_ERR_CORRUPT) {
        rc = RV_OK; /* logged and moved aside: it must not block the directory */
    } else if (rc != RV_OK) {
        rv__error_prefix(err, rc, "completing transaction intent '%s': ", path);
    }
    free(ws);
    intent_free(&in);
    flock(fd, LOCK_UN);
    close(fd);
    if (rc != RV_OK) {
        rv__log(&lb->broker->log, RV_LOG_WARNING, "local", "%s", rv_error_message(error));
    }
    if (err_out && rc != RV_OK) {
        rv_error_destroy(*err_out);
        *err_out = error;
    } else {
        rv_error_destroy(error);
    }
    return rc;
}

static bool has_suffix(const char *name, const char *suffix) {
    size_t n = strlen(name), s = strlen(suffix);
    return n > s && strcmp(name + n - s, suffix) == 0;
}

rv_err_t rv__local_txn_recover(rv_local_t *lb, rv_error_t **err) {
    char *dir = rv__local_strf("%s/intents", lb->txn_dir);
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        free(dir);
        return RV_OK;
    }
    rv_err_t rc = RV_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        bool intent = has_suffix(de->d_name, INTENT_SUFFIX);
        bool tmp = has_suffix(de->d_name, ".tmp");
        if (!intent && !tmp) {
            continue;
        }
        char *path = rv__local_strf("%s/%s", dir, de->d_name);
        if (!path) {
            continue;
        }
        if (tmp) { /* a commit that died before its commit point: nothing to do but remove */
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
                unlink(path);
            }
            if (fd >= 0) {
                close(fd);
            }
        } else {
            rv_err_t r = recover_one(lb, path, rc == RV_OK ? err : NULL);
            rc = rc == RV_OK ? r : rc;
        }
        free(path);
    }
    closedir(d);
    free(dir);
    return rc;
}

int rv__local_txn_pending(rv_local_t *lb, const char *topic, int32_t partition) {
    char *dir = rv__local_strf("%s/intents", lb->txn_dir);
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        free(dir);
        return 0;
    }
    int verdict = 0;
    struct dirent *de;
    while (verdict < 2 && (de = readdir(d)) != NULL) {
        if (!has_suffix(de->d_name, INTENT_SUFFIX)) {
            continue;
        }
        char *path = rv__local_strf("%s/%s", dir, de->d_name);
        int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
            verdict = 1; /* a dead process's */
        } else if (fd >= 0) {
            /* Held: by a live committer (which holds its partitions' writer locks, so not this
             * one's) or by a recovery, which may not have taken this partition yet. */
            char *buf = NULL;
            size_t len = 0;
            rv_error_t *e = NULL;
            intent_t in;
            memset(&in, 0, sizeof in);
            if (rv__local_read_file(path, &buf, &len, &e) == RV_OK &&
                intent_parse(path, buf, len, &in, NULL) == RV_OK) {
                for (size_t i = 0; i < in.nparts; i++) {
                    if (in.parts[i].partition == partition &&
                        strcmp(in.parts[i].topic, topic) == 0) {
                        verdict = 2;
                    }
                }
            }
            if (!in.buf) {
                free(buf);
            }
            intent_free(&in);
            rv_error_destroy(e);
        }
        if (fd >= 0) {
            close(fd);
        }
        free(path);
    }
    closedir(d);
    free(dir);
    return verdict;
}

/* ---- the transaction calls ------------------------------------------------------------------- */

static rv_local_txn_t *txn_of(rv_producer_t *p, const char *what, rv_error_t **err) {
    rv_local_txn_t *txn = rv__local_producer_txn(p);
    if (!txn) {
        rv__error_set(err, RV_ERR_STATE, "%s: the producer has no transactional.id", what);
    }
    return txn;
}

rv_err_t rv__local_begin_transaction(rv_producer_t *p, rv_error_t **err) {
    rv_local_txn_t *txn = txn_of(p, "begin transaction", err);
    if (!txn) {
        return RV_ERR_STATE;
    }
    pthread_mutex_lock(&txn->mu);
    rv_err_t rc = RV_OK;
    if (txn->fenced) {
        rc = fenced_error(txn, "begin transaction", err);
    } else if (txn->in_txn) {
        rc = rv__error_set(err, RV_ERR_STATE,
                           "begin transaction: transactional.id '%s' has a transaction open "
                           "already (commit or abort it first)",
                           txn->id);
    } else if (txn->epoch == 0) {
        rc = epoch_take(txn, err);
        if (rc == RV_OK) {
            /* What an older producer of any id committed and left half applied is finished
             * before this one starts. */
            rc = rv__local_txn_recover(txn->lb, err);
        }
    } else {
        rc = epoch_check(txn, "begin transaction", err);
    }
    if (rc == RV_OK) {
        txn->in_txn = true;
    }
    pthread_mutex_unlock(&txn->mu);
    return rc;
}

rv_err_t rv__local_send_offsets_to_transaction(rv_producer_t *p, rv_consumer_t *c,
                                               const rv_topic_partition_t *tps, size_t count,
                                               int timeout_ms, rv_error_t **err) {
    (void)timeout_ms;
    rv_local_txn_t *txn = txn_of(p, "send offsets to transaction", err);
    if (!txn) {
        return RV_ERR_STATE;
    }
    if (c->broker->ops != &rv__local_broker_ops) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "send offsets to transaction: the consumer's broker '%s' is not a "
                             "local: one",
                             c->broker->url);
    }
    if (!c->group) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "send offsets to transaction: the consumer has no group");
    }
    rv_local_consumer_t *lc = c->impl;
    rv_topic_partition_t *all = NULL;
    if (!tps) {
        all = malloc((lc->part_count ? lc->part_count : 1) * sizeof *all);
        if (!all) {
            return rv__error_set(err, RV_ERR_NOMEM, "out of memory");
        }
        count = 0;
        for (size_t i = 0; i < lc->part_count; i++) {
            if (!lc->parts[i]->stopped) {
                all[count++] = (rv_topic_partition_t){lc->parts[i]->topic, lc->parts[i]->partition,
                                                      rv__local_part_position(lc->parts[i])};
            }
        }
        tps = all;
    }
    rv_err_t rc = RV_OK;
    for (size_t i = 0; rc == RV_OK && i < count; i++) {
        rv_local_topic_t *t = NULL;
        rc = rv__local_topic_get(txn->lb, tps[i].topic, &t, err);
        if (rc == RV_OK &&
            (tps[i].partition < 0 || tps[i].partition >= t->partitions || tps[i].offset < 0)) {
            rc = rv__error_set(err, RV_ERR_INVALID_ARG,
                               "send offsets to transaction: topic '%s' partition %" PRId32
                               " offset %" PRId64 ": no such partition or offset",
                               tps[i].topic, tps[i].partition, tps[i].offset);
        }
    }
    pthread_mutex_lock(&txn->mu);
    if (rc == RV_OK && (txn->fenced || !txn->in_txn)) {
        rc = txn->fenced ? fenced_error(txn, "send offsets to transaction", err)
                         : rv__error_set(err, RV_ERR_STATE,
                                         "send offsets to transaction: no transaction is open");
    }
    for (size_t i = 0; rc == RV_OK && i < count; i++) {
        toffset_t *o = NULL;
        for (size_t j = 0; j < txn->noffs && !o; j++) {
            if (txn->offs[j].partition == tps[i].partition &&
                strcmp(txn->offs[j].topic, tps[i].topic) == 0 &&
                strcmp(txn->offs[j].group, c->group) == 0) {
                o = &txn->offs[j];
            }
        }
        if (o) {
            o->offset = tps[i].offset;
            continue;
        }
        if (!grow((void **)&txn->offs, &txn->offs_cap, txn->noffs + 1, sizeof *txn->offs)) {
            rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory");
            break;
        }
        o = &txn->offs[txn->noffs];
        *o = (toffset_t){strdup(c->group), strdup(tps[i].topic), tps[i].partition, tps[i].offset};
        if (!o->group || !o->topic) {
            free(o->group);
            free(o->topic);
            rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory");
            break;
        }
        txn->noffs++;
    }
    pthread_mutex_unlock(&txn->mu);
    free(all);
    return rc;
}

/* Serves the delivery reports of committed (err RV_OK) or aborted parts, then frees them. */
static void report(rv_producer_t *p, tpart_t *parts, size_t n, rv_err_t e) {
    for (size_t i = 0; p->delivery_cb && i < n; i++) {
        tpart_t *tp = &parts[i];
        rv_record_t *recs = NULL;
        rv_header_t *hdrs = NULL;
        if (tp->count == 0 ||
            !decode_records(tp->topic, tp->partition, tp->data, tp->len, tp->count, &recs, &hdrs)) {
            continue;
        }
        for (size_t k = 0; k < tp->count; k++) {
            recs[k].offset = e == RV_OK ? tp->base + (int64_t)k : RV_OFFSET_INVALID;
            p->delivery_cb(p->opaque, &recs[k], e, tp->opaques[k]);
        }
        free(recs);
        free(hdrs);
    }
    parts_free(parts, n);
}

/* Writes the intent durably under its flock (kept in *fd_out): the commit point. */
static rv_err_t intent_write(rv_local_txn_t *txn, const rv_strbuf_t *text, char **path_out,
                             int *fd_out, rv_error_t **err) {
    rv_local_t *lb = txn->lb;
    char *uniq = rv__local_unique(lb);
    char *dir = rv__local_strf("%s/intents", lb->txn_dir);
    char *tmp = uniq && dir ? rv__local_strf("%s/%s.tmp", dir, uniq) : NULL;
    char *path = uniq && dir ? rv__local_strf("%s/%s%s", dir, uniq, INTENT_SUFFIX) : NULL;
    rv_err_t rc = tmp && path ? RV_OK : rv__error_set(err, RV_ERR_NOMEM, "out of memory");
    int fd = -1;
    if (rc == RV_OK) {
        fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 || flock(fd, LOCK_EX) != 0) {
            rc = rv__error_set(err, RV_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        }
    }
    const char *data = text->data;
    size_t left = text->len;
    while (rc == RV_OK && left > 0) {
        ssize_t w = write(fd, data, left);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            rc = rv__error_set(err, RV_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
            break;
        }
        data += w;
        left -= (size_t)w;
    }
    if (rc == RV_OK && fdatasync(fd) != 0) {
        rc = rv__error_set(err, RV_ERR_IO, "cannot sync '%s': %s", tmp, strerror(errno));
    }
    if (rc == RV_OK && rename(tmp, path) != 0) {
        rc = rv__error_set(err, RV_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path,
                           strerror(errno));
    }
    if (rc == RV_OK) {
        rc = rv__local_fsync_dir(dir, err);
        if (rc != RV_OK) {
            unlink(path);
        }
    } else if (fd >= 0) {
        unlink(tmp);
    }
    if (rc != RV_OK && fd >= 0) {
        close(fd);
        fd = -1;
    }
    free(uniq);
    free(dir);
    free(tmp);
    if (rc == RV_OK) {
        *path_out = path;
        *fd_out = fd;
    } else {
        free(path);
    }
    return rc;
}

rv_err_t rv__local_commit_transaction(rv_producer_t *p, int timeout_ms, rv_error_t **err) {
    rv_local_txn_t *txn = txn_of(p, "commit transaction", err);
    if (!txn) {
        return RV_ERR_STATE;
    }
    rv_local_t *lb = txn->lb;
    pthread_mutex_lock(&txn->mu);
    if (txn->fenced || !txn->in_txn) {
        rv_err_t rc = txn->fenced ? fenced_error(txn, "commit transaction", err)
                                  : rv__error_set(err, RV_ERR_STATE,
                                                  "commit transaction: no transaction is open");
        pthread_mutex_unlock(&txn->mu);
        return rc;
    }
    if (txn->nparts == 0 && txn->noffs == 0) {
        txn->in_txn = false;
        pthread_mutex_unlock(&txn->mu);
        return RV_OK;
    }
    qsort(txn->parts, txn->nparts, sizeof *txn->parts, compare_parts);
    int64_t wait = timeout_ms < 0 ? ACQUIRE_WAIT_MS : timeout_ms;
    rv_local_writer_t **ws = calloc(txn->nparts ? txn->nparts : 1, sizeof *ws);
    rv_err_t rc = ws ? writers_take(lb, txn->parts, txn->nparts, true, false,
                                    rv_clock_mono_ms() + wait, ws, err)
                     : rv__error_set(err, RV_ERR_NOMEM, "out of memory");
    if (rc == RV_ERR_BUSY) {
        char *why = err && *err ? strdup(rv_error_message(*err)) : NULL;
        rc = rv__error_set(err, RV_ERR_TIMEOUT,
                           "commit transaction: %s; nothing is committed yet (call it again, "
                           "or abort)",
                           why ? why : "a partition stayed busy");
        free(why);
    }
    if (rc != RV_OK) {
        free(ws);
        pthread_mutex_unlock(&txn->mu);
        return rc;
    }
    for (size_t i = 0; i < txn->nparts; i++) {
        txn->parts[i].base = rv__plog_high(ws[i]->log);
    }
    kill_point("before-intent");
    /* The commit point, under the id's lock so that no newer producer takes the id between
     * the check and the intent. */
    rv_strbuf_t text = RV_STRBUF_INIT;
    char *path = NULL;
    int ifd = -1;
    int lfd = lock_open(txn->lock_file);
    if (lfd < 0) {
        rc = rv__error_set(err, RV_ERR_IO, "cannot open '%s': %s", txn->lock_file, strerror(errno));
    }
    if (rc == RV_OK) {
        rc = epoch_check(txn, "commit transaction", err);
    }
    if (rc == RV_OK && intent_render(txn, &text) != RV_OK) {
        rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory committing a transaction");
    }
    if (rc == RV_OK) {
        rc = intent_write(txn, &text, &path, &ifd, err);
    }
    lock_close(lfd);
    rv_strbuf_free(&text);
    if (rc != RV_OK) {
        writers_release(ws, txn->nparts, false);
        free(ws);
        pthread_mutex_unlock(&txn->mu);
        return rc; /* not committed: the transaction stays open (or the producer is fenced) */
    }
    kill_point("after-intent");
    rc = apply(lb, txn->parts, txn->nparts, ws, txn->offs, txn->noffs, true, err);
    if (rc == RV_OK) {
        kill_point("before-delete");
        unlink(path);
    }
    writers_release(ws, txn->nparts, true);
    free(ws);
    flock(ifd, LOCK_UN);
    close(ifd);
    if (rc != RV_OK) {
        /* Committed but not wholly applied: the intent stays; try to complete it now, else
         * the next open of the root or of one of its partitions will. */
        rv__log(&lb->broker->log, RV_LOG_ERROR, "local",
                "transactional.id '%s': %s; the transaction is committed and will be completed "
                "from '%s'",
                txn->id, err && *err ? rv_error_message(*err) : rv_err_str(rc), path);
        if (rv__local_txn_recover(lb, NULL) == RV_OK) {
            rc = RV_OK;
            if (err) {
                rv_error_destroy(*err);
                *err = NULL;
            }
        }
    }
    free(path);
    tpart_t *parts = txn->parts;
    size_t nparts = txn->nparts;
    txn->parts = NULL;
    txn->nparts = txn->parts_cap = 0;
    txn_clear(txn);
    txn->in_txn = false;
    pthread_mutex_unlock(&txn->mu);
    report(p, parts, nparts, RV_OK);
    return rc;
}

rv_err_t rv__local_abort_transaction(rv_producer_t *p, int timeout_ms, rv_error_t **err) {
    (void)timeout_ms;
    rv_local_txn_t *txn = txn_of(p, "abort transaction", err);
    if (!txn) {
        return RV_ERR_STATE;
    }
    pthread_mutex_lock(&txn->mu);
    if (!txn->in_txn) {
        rv_err_t rc = txn->fenced ? fenced_error(txn, "abort transaction", err)
                                  : rv__error_set(err, RV_ERR_STATE,
                                                  "abort transaction: no transaction is open");
        pthread_mutex_unlock(&txn->mu);
        return rc;
    }
    tpart_t *parts = txn->parts;
    size_t nparts = txn->nparts;
    txn->parts = NULL;
    txn->nparts = txn->parts_cap = 0;
    txn_clear(txn);
    txn->in_txn = false;
    bool fenced = txn->fenced;
    pthread_mutex_unlock(&txn->mu);
    report(p, parts, nparts, RV_ERR_STATE);
    return fenced ? rv__error_set(err, RV_ERR_FATAL,
                                  "abort transaction: transactional.id '%s' was taken by a newer "
                                  "producer (this one is fenced): close it",
                                  txn->id)
                  : RV_OK;
}
