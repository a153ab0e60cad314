/*
 * chunk.c: values larger than a producer's message.split.bytes, split into chunk records on
 * send and reassembled on poll; a layer broker.c puts in front of every broker implementation,
 * so it works the same on memory:, local: and kafka://.
 *
 * Sending: a record that does not fit in message.split.bytes becomes `count` chunk records,
 * all with the record's key and timestamp and all to one partition (the key's, or one chosen
 * for a record without key). Chunk i holds bytes [i * P, min((i + 1) * P, size)) of the value,
 * where P = ceil(size / count), so every chunk is placed from its own headers: __rv.chunk.id
 * (16 random bytes), __rv.chunk.index, __rv.chunk.count and __rv.chunk.size (decimal text).
 * The user's headers travel on chunk 0 only. The user's delivery callback is replaced by
 * on_chunk_delivery(), which passes other records' reports through and reports a split value
 * once, after its last chunk's report. A chunk report is recognised by its record opaque being
 * a live tracker of this producer (kept in a pointer set), and, when the implementation
 * reports headers, by its __rv.chunk.id matching that tracker's.
 *
 * Polling: chunk records are held back per (topic, partition, id) in a buffer of the value's
 * whole size, allocated when chunk 0 arrives (each chunk is copied once, to its place); the
 * whole value is returned where its last chunk was read, with chunk 0's offset, timestamp,
 * key and headers. A value is only ever started by its chunk 0: a later chunk without one is
 * the tail of a value that began before where this consumer started reading (a commit or seek
 * inside it), skipped with a notice. Values still incomplete after message.split.timeout.ms,
 * pushed out by message.split.max.bytes, or with headers that do not fit together are dropped
 * and reported (a warning in the log and the on_error callback). The ids of values recently
 * finished or dropped are remembered so their stray chunks (retries) are skipped quietly. The
 * layer tracks the assignment (its own on_assign and on_revoke in front of the user's) so that
 * a commit of positions can be capped at the first offset of each partition's oldest
 * incomplete value.
 *
 * This file must never deliver part of a value, never hold more than message.split.max.bytes
 * for values being reassembled, never let a commit pass the first chunk of a value still being
 * reassembled, and never reach into an implementation's state: it works through the ops and
 * the public handle fields only.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "broker/chunk.h"
#include "rivulet/clock.h"
#include "rivulet/hash.h"

/* The most bytes the four chunk headers count for (names, a 16-byte id, three numbers of at
 * most 20 digits, and the per-header allowance). */
#define CHUNK_HEADERS_MAX                                                                          \
    (4 * RV__CHUNK_HEADER_OVERHEAD + sizeof RV__CHUNK_H_ID - 1 + sizeof RV__CHUNK_H_INDEX - 1 +    \
     sizeof RV__CHUNK_H_COUNT - 1 + sizeof RV__CHUNK_H_SIZE - 1 + RV__CHUNK_ID_LEN + 3 * 20)

/* How long rv_producer_send() waits for queue space for the chunks after the first. */
#define SEND_WAIT_MS 60000

/* The digits a chunk number may have (10^18 is past any value a consumer would hold). */
#define MAX_DIGITS 18

/* Ids of values recently finished or dropped, per consumer. */
#define RING_SIZE 256

/* ---- shared helpers -------------------------------------------------------------------------- */

static bool is_chunk_header(const char *name) {
    return name[0] == '_' && strncmp(name, RV__CHUNK_H_PREFIX, sizeof RV__CHUNK_H_PREFIX - 1) == 0;
}

/* The bytes `n` headers count for against message.split.bytes. */
static size_t headers_bytes(const rv_header_t *h, size_t n) {
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += RV__CHUNK_HEADER_OVERHEAD + strlen(h[i].name) + h[i].value_len;
    }
    return bytes;
}

/* Writes `v` in decimal into `buf` (at least 21 bytes); returns the length (no terminator). */
static size_t fmt_u64(char *buf, uint64_t v) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) {
        buf[i] = tmp[n - 1 - i];
    }
    return n;
}

/* Parses decimal text as written by fmt_u64(): digits only, no leading zero, at most
 * MAX_DIGITS of them. */
static bool parse_u64(const void *text, size_t len, uint64_t *out) {
    const unsigned char *s = text;
    if (!s || len == 0 || len > MAX_DIGITS || (len > 1 && s[0] == '0')) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/*
 * Copies `n` headers (without the layer's own when `drop_chunk`) and, when `key` is not NULL,
 * `key_len` bytes of key into one allocation: *out is the array (NULL when no header is kept),
 * *out_n their number, *key_out the copied key. The allocation is returned (free it); NULL
 * only on NOMEM.
 */
static void *headers_dup(const rv_header_t *in, size_t n, bool drop_chunk, rv_header_t **out,
                         size_t *out_n, const void *key, size_t key_len, void **key_out) {
    size_t kept = 0, bytes = key_len + 1;
    for (size_t i = 0; i < n; i++) {
        if (!drop_chunk || !is_chunk_header(in[i].name)) {
            kept++;
            bytes += strlen(in[i].name) + 1 + in[i].value_len;
        }
    }
    char *blob = malloc(kept * sizeof(rv_header_t) + bytes);
    if (!blob) {
        return NULL;
    }
    rv_header_t *h = (rv_header_t *)blob;
    char *p = blob + kept * sizeof(rv_header_t);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (drop_chunk && is_chunk_header(in[i].name)) {
            continue;
        }
        size_t nlen = strlen(in[i].name) + 1;
        memcpy(p, in[i].name, nlen);
        h[k].name = p;
        p += nlen;
        h[k].value = in[i].value ? p : NULL;
        h[k].value_len = in[i].value_len;
        if (in[i].value_len) {
            memcpy(p, in[i].value, in[i].value_len);
            p += in[i].value_len;
        }
        k++;
    }
    if (key_out) {
        *key_out = key ? p : NULL;
        if (key && key_len) {
            memcpy(p, key, key_len);
        }
    }
    *out = kept ? h : NULL;
    *out_n = kept;
    return blob;
}

/* Quotes a key for a message: 'text' (shortened) or "no key". */
static const char *key_text(char *buf, size_t size, const void *key, size_t len) {
    if (!key) {
        snprintf(buf, size, "no key");
        return buf;
    }
    char q[80];
    rv__quote(q, sizeof q, key, len);
    snprintf(buf, size, "key %s", q);
    return buf;
}

/* 16 random bytes, for a value's id; from the kernel, else a mix of time, pid and a counter. */
static void random_id(uint8_t id[RV__CHUNK_ID_LEN]) {
    if (getrandom(id, RV__CHUNK_ID_LEN, GRND_NONBLOCK) == RV__CHUNK_ID_LEN) {
        return;
    }
    static atomic_uint_fast64_t counter;
    uint64_t x = (uint64_t)rv_clock_wall_ns() ^ ((uint64_t)getpid() << 32) ^
                 atomic_fetch_add(&counter, 0x9E3779B97F4A7C15u);
    for (size_t i = 0; i < RV__CHUNK_ID_LEN; i += 8) {
        x += 0x9E3779B97F4A7C15u; /* splitmix64 */
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
        z ^= z >> 31;
        memcpy(id + i, &z, 8);
    }
}

/* ---- producer: trackers of split values in flight -------------------------------------------- */

/* A split value whose chunk reports are outstanding. */
typedef struct tracker_s {
    uint8_t id[RV__CHUNK_ID_LEN];
    void *user_opaque;
    size_t count;         /* chunks of the value */
    size_t sent;          /* chunks queued, once `abandoned` */
    size_t acked;         /* chunk reports received */
    bool abandoned;       /* a later chunk could not be queued: the user gets no report */
    rv_err_t err;         /* the first error reported for a chunk */
    int64_t first_offset; /* the smallest offset reported; -1 before any */
    int64_t timestamp_ms;
    void *key;
    size_t key_len;
    rv_header_t *headers; /* the user's, for the report */
    size_t header_count;
    void *blob; /* headers and key */
} tracker_t;

struct rv_chunk_producer_s {
    rv_producer_t *p;
    bool split;
    size_t split_bytes;
    rv_delivery_cb user_cb; /* NULL: no reports wanted, so no trackers */
    void *user_opaque;
    atomic_uint round_robin; /* partitions for records without key */
    pthread_mutex_t mu;      /* guards the set and the trackers in it */
    atomic_size_t live;      /* trackers in the set, read without the mutex */
    tracker_t **set;         /* open addressing by address; NULL = free */
    size_t set_cap;          /* 0 or a power of two */
};

static size_t set_slot(const rv_chunk_producer_t *cp, const void *ptr) {
    uint64_t h = (uint64_t)(uintptr_t)ptr;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    return (size_t)h & (cp->set_cap - 1);
}

/* The tracker at address `ptr`, or NULL. With cp->mu held. */
static tracker_t *set_get(const rv_chunk_producer_t *cp, const void *ptr) {
    if (!ptr || cp->set_cap == 0) {
        return NULL;
    }
    for (size_t i = set_slot(cp, ptr);; i = (i + 1) & (cp->set_cap - 1)) {
        if (!cp->set[i]) {
            return NULL;
        }
        if (cp->set[i] == ptr) {
            return cp->set[i];
        }
    }
}

static void set_put(rv_chunk_producer_t *cp, tracker_t *t) {
    size_t i = set_slot(cp, t);
    while (cp->set[i]) {
        i = (i + 1) & (cp->set_cap - 1);
    }
    cp->set[i] = t;
}

/* Adds `t`; false on NOMEM. With cp->mu held. */
static bool set_add(rv_chunk_producer_t *cp, tracker_t *t) {
    size_t live = atomic_load_explicit(&cp->live, memory_order_relaxed);
    if ((live + 1) * 2 > cp->set_cap) {
        size_t cap = cp->set_cap ? cp->set_cap * 2 : 16;
        tracker_t **old = cp->set;
        size_t old_cap = cp->set_cap;
        tracker_t **set = calloc(cap, sizeof *set);
        if (!set) {
            return false;
        }
        cp->set = set;
        cp->set_cap = cap;
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i]) {
                set_put(cp, old[i]);
            }
        }
        free(old);
    }
    set_put(cp, t);
    atomic_store_explicit(&cp->live, live + 1, memory_order_release);
    return true;
}

/* Removes `t` (backward-shift deletion keeps probe chains whole). With cp->mu held. */
static void set_remove(rv_chunk_producer_t *cp, const tracker_t *t) {
    size_t mask = cp->set_cap - 1;
    size_t i = set_slot(cp, t);
    while (cp->set[i] != t) {
        i = (i + 1) & mask;
    }
    cp->set[i] = NULL;
    for (size_t j = (i + 1) & mask; cp->set[j]; j = (j + 1) & mask) {
        size_t home = set_slot(cp, cp->set[j]);
        /* Move set[j] into the hole at i when its home is not in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            cp->set[i] = cp->set[j];
            cp->set[j] = NULL;
            i = j;
        }
    }
    atomic_fetch_sub_explicit(&cp->live, 1, memory_order_release);
}

static void tracker_free(tracker_t *t) {
    if (t) {
        free(t->blob);
        free(t);
    }
}

/* The __rv.chunk.id header of a reported record: 1 found (*id set), 0 none, -1 no headers. */
static int report_id(const rv_record_t *rec, const uint8_t **id) {
    if (rec->header_count == 0 || !rec->headers) {
        return -1;
    }
    for (size_t i = rec->header_count; i-- > 0;) {
        const rv_header_t *h = &rec->headers[i];
        if (h->name && strcmp(h->name, RV__CHUNK_H_ID) == 0 && h->value_len == RV__CHUNK_ID_LEN) {
            *id = h->value;
            return 1;
        }
    }
    return 0;
}

/* The delivery callback of a producer that splits: counts chunk reports and reports a split
 * value once; passes every other report to the user's callback. */
static void on_chunk_delivery(void *opaque, const rv_record_t *rec, rv_err_t err,
                              void *rec_opaque) {
    rv_chunk_producer_t *cp = opaque;
    const uint8_t *id = NULL;
    int has_id = -1;
    if (atomic_load_explicit(&cp->live, memory_order_acquire) == 0 ||
        (has_id = report_id(rec, &id)) == 0) {
        cp->user_cb(cp->user_opaque, rec, err, rec_opaque);
        return;
    }
    pthread_mutex_lock(&cp->mu);
    tracker_t *t = set_get(cp, rec_opaque);
    if (!t || (has_id == 1 && memcmp(id, t->id, RV__CHUNK_ID_LEN) != 0)) {
        pthread_mutex_unlock(&cp->mu);
        cp->user_cb(cp->user_opaque, rec, err, rec_opaque); /* a chunk the user made by hand */
        return;
    }
    t->acked++;
    if (err != RV_OK && t->err == RV_OK) {
        t->err = err;
    }
    if (err == RV_OK && rec->offset >= 0 &&
        (t->first_offset < 0 || rec->offset < t->first_offset)) {
        t->first_offset = rec->offset;
    }
    bool done = t->abandoned ? t->acked >= t->sent : t->acked >= t->count;
    if (done) {
        set_remove(cp, t);
    }
    pthread_mutex_unlock(&cp->mu);
    if (!done) {
        return;
    }
    if (!t->abandoned) {
        rv_record_t whole = {.topic = rec->topic,
                             .partition = rec->partition,
                             .offset = t->err == RV_OK ? t->first_offset : RV_OFFSET_INVALID,
                             .timestamp_ms = t->timestamp_ms,
                             .key = t->key,
                             .key_len = t->key_len,
                             .headers = t->headers,
                             .header_count = t->header_count};
        cp->user_cb(cp->user_opaque, &whole, t->err, t->user_opaque);
    }
    tracker_free(t);
}

rv_err_t rv__chunk_producer_new(rv_producer_t *p, rv_error_t **err) {
    rv_chunk_producer_t *cp = calloc(1, sizeof *cp);
    if (!cp) {
        return rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory for a producer",
                             p->broker->url);
    }
    cp->p = p;
    cp->split = rv__conf_int(p->conf, RV_CONF_ID_MESSAGE_SPLIT) != 0;
    cp->split_bytes = (size_t)rv__conf_int(p->conf, RV_CONF_ID_MESSAGE_SPLIT_BYTES);
    pthread_mutex_init(&cp->mu, NULL);
    if (cp->split && p->delivery_cb) {
        cp->user_cb = p->delivery_cb;
        cp->user_opaque = p->opaque;
        p->delivery_cb = on_chunk_delivery;
        p->opaque = cp;
    }
    p->chunk = cp;
    return RV_OK;
}

void rv__chunk_producer_destroy(rv_producer_t *p) {
    rv_chunk_producer_t *cp = p->chunk;
    if (!cp) {
        return;
    }
    for (size_t i = 0; i < cp->set_cap; i++) {
        tracker_free(cp->set[i]); /* only when reports never came (a flush that failed) */
    }
    free(cp->set);
    pthread_mutex_destroy(&cp->mu);
    if (cp->user_cb) {
        p->delivery_cb = cp->user_cb;
        p->opaque = cp->user_opaque;
    }
    free(cp);
    p->chunk = NULL;
}

/* Registers a tracker for a value of `count` chunks; NULL on NOMEM. */
static tracker_t *tracker_start(rv_chunk_producer_t *cp, const rv_record_t *rec, size_t count,
                                int64_t ts, const uint8_t *id, void *rec_opaque) {
    tracker_t *t = calloc(1, sizeof *t);
    if (!t) {
        return NULL;
    }
    t->blob = headers_dup(rec->headers, rec->header_count, false, &t->headers, &t->header_count,
                          rec->key, rec->key_len, &t->key);
    if (!t->blob) {
        free(t);
        return NULL;
    }
    memcpy(t->id, id, RV__CHUNK_ID_LEN);
    t->key_len = rec->key_len;
    t->user_opaque = rec_opaque;
    t->count = count;
    t->first_offset = -1;
    t->timestamp_ms = ts;
    pthread_mutex_lock(&cp->mu);
    bool ok = set_add(cp, t);
    pthread_mutex_unlock(&cp->mu);
    if (!ok) {
        tracker_free(t);
        return NULL;
    }
    return t;
}

/* Sends `rec` as chunk records; `hbytes` is what its headers count for. */
static rv_err_t send_split(rv_chunk_producer_t *cp, const rv_record_t *rec, void *rec_opaque,
                           size_t hbytes) {
    rv_producer_t *p = cp->p;
    const rv_broker_ops_t *ops = p->broker->ops;
    char kq[128];
    size_t fixed = RV__CHUNK_RECORD_OVERHEAD + rec->key_len + hbytes + CHUNK_HEADERS_MAX;
    if (fixed >= cp->split_bytes) {
        rv__log(&p->broker->log, RV_LOG_WARNING, "chunk",
                "topic '%s': a record of %zu bytes (%s) cannot be split: its key (%zu bytes) "
                "and headers (%zu bytes) leave no room for a chunk in message.split.bytes (%zu)",
                rec->topic, rec->key_len + rec->value_len + hbytes,
                key_text(kq, sizeof kq, rec->key, rec->key_len), rec->key_len, hbytes,
                cp->split_bytes);
        return RV_ERR_LIMIT;
    }
    for (size_t i = 0; i < rec->header_count; i++) {
        if (is_chunk_header(rec->headers[i].name)) {
            rv__log(&p->broker->log, RV_LOG_WARNING, "chunk",
                    "topic '%s': a record of %zu bytes (%s) cannot be split: it carries header "
                    "'%s', a name reserved for chunks",
                    rec->topic, rec->value_len, key_text(kq, sizeof kq, rec->key, rec->key_len),
                    rec->headers[i].name);
            return RV_ERR_INVALID_ARG;
        }
    }
    size_t size = rec->value_len;
    size_t room = cp->split_bytes - fixed;
    size_t count = (size + room - 1) / room;
    size_t piece = (size + count - 1) / count;

    /* Every chunk goes to one partition: the key's (the partitioner places equal keys alike),
     * or, without a key, one picked here round-robin. */
    int32_t partition = rec->partition;
    if (partition == RV_PARTITION_ANY && !rec->key) {
        int32_t n = 0;
        rv_err_t e = ops->describe_topic(p->broker, rec->topic, &n, NULL, NULL);
        if (e != RV_OK) {
            return e;
        }
        if (n < 1) {
            return RV_ERR_NOT_FOUND;
        }
        partition = (int32_t)(atomic_fetch_add(&cp->round_robin, 1u) % (unsigned)n);
    }
    int64_t ts = rec->timestamp_ms > 0 ? rec->timestamp_ms : rv_clock_wall_ms();
    uint8_t id[RV__CHUNK_ID_LEN];
    random_id(id);

    size_t uc = rec->header_count;
    rv_header_t *hdrs = malloc((uc + 4) * sizeof *hdrs);
    if (!hdrs) {
        return RV_ERR_NOMEM;
    }
    tracker_t *t = NULL;
    if (cp->user_cb && !(t = tracker_start(cp, rec, count, ts, id, rec_opaque))) {
        free(hdrs);
        return RV_ERR_NOMEM;
    }
    char index_txt[24], count_txt[24], size_txt[24];
    if (uc) {
        memcpy(hdrs, rec->headers, uc * sizeof *hdrs);
    }
    hdrs[uc] = (rv_header_t){RV__CHUNK_H_ID, id, RV__CHUNK_ID_LEN};
    hdrs[uc + 1] = (rv_header_t){RV__CHUNK_H_INDEX, index_txt, 0};
    hdrs[uc + 2] = (rv_header_t){RV__CHUNK_H_COUNT, count_txt, fmt_u64(count_txt, count)};
    hdrs[uc + 3] = (rv_header_t){RV__CHUNK_H_SIZE, size_txt, fmt_u64(size_txt, size)};

    rv_err_t e = RV_OK;
    size_t i;
    for (i = 0; i < count; i++) {
        size_t off = i * piece;
        hdrs[uc + 1].value_len = fmt_u64(index_txt, i);
        rv_record_t chunk = {.topic = rec->topic,
                             .partition = partition,
                             .timestamp_ms = ts,
                             .key = rec->key,
                             .key_len = rec->key_len,
                             .value = (const char *)rec->value + off,
                             .value_len = size - off < piece ? size - off : piece,
                             .headers = i == 0 ? hdrs : hdrs + uc,
                             .header_count = i == 0 ? uc + 4 : 4};
        int64_t deadline = -1;
        /* Once chunk 0 is queued, a full queue is waited out (serving reports), so a value is
         * not left half sent for want of room. */
        while ((e = ops->send(p, &chunk, t)) == RV_ERR_AGAIN && i > 0) {
            int64_t now = rv_clock_mono_ms();
            if (deadline < 0) {
                deadline = now + SEND_WAIT_MS;
            } else if (now >= deadline) {
                break;
            }
            ops->producer_poll(p, 10);
        }
        if (e != RV_OK) {
            break;
        }
    }
    free(hdrs);
    if (e == RV_OK) {
        return RV_OK;
    }
    if (i > 0) {
        char where[32] = "";
        if (partition >= 0) {
            snprintf(where, sizeof where, " partition %d", (int)partition);
        }
        rv__log(&p->broker->log, RV_LOG_WARNING, "chunk",
                "topic '%s'%s: a value of %zu bytes (%s) was abandoned after %zu of %zu chunks: "
                "%s; consumers will drop the chunks sent",
                rec->topic, where, size, key_text(kq, sizeof kq, rec->key, rec->key_len), i, count,
                rv_err_str(e));
    }
    if (t) {
        pthread_mutex_lock(&cp->mu);
        t->abandoned = true;
        t->sent = i;
        bool done = t->acked >= t->sent;
        if (done) {
            set_remove(cp, t);
        }
        pthread_mutex_unlock(&cp->mu);
        if (done) {
            tracker_free(t);
        }
    }
    return e;
}

rv_err_t rv__chunk_send(rv_producer_t *p, const rv_record_t *rec, void *rec_opaque) {
    rv_chunk_producer_t *cp = p->chunk;
    size_t hbytes = rec->header_count ? headers_bytes(rec->headers, rec->header_count) : 0;
    size_t bytes = RV__CHUNK_RECORD_OVERHEAD + rec->key_len + rec->value_len + hbytes;
    if (RV_LIKELY(bytes <= cp->split_bytes && bytes >= rec->value_len)) {
        return p->broker->ops->send(p, rec, rec_opaque);
    }
    if (!cp->split) {
        char kq[128];
        rv__log(&p->broker->log, RV_LOG_WARNING, "chunk",
                "topic '%s': a record of %zu bytes (%s) is larger than message.split.bytes (%zu) "
                "and message.split is off",
                rec->topic, bytes, key_text(kq, sizeof kq, rec->key, rec->key_len),
                cp->split_bytes);
        return RV_ERR_LIMIT;
    }
    return send_split(cp, rec, rec_opaque, hbytes);
}

/* ---- consumer: values being reassembled ------------------------------------------------------ */

/* A split value being reassembled (in the consumer's list) or just delivered. */
typedef struct assembly_s {
    struct assembly_s *prev;
    struct assembly_s *next;
    uint8_t id[RV__CHUNK_ID_LEN];
    char *topic;
    int32_t partition;
    uint64_t count;
    uint64_t size;
    uint64_t piece;
    uint64_t received;
    uint8_t *have; /* a bit per chunk */
    char *value;   /* `size` bytes */
    int64_t first_offset;
    int64_t started_ms; /* monotonic, when chunk 0 was read */
    int64_t timestamp_ms;
    void *key; /* NULL: no key */
    size_t key_len;
    rv_header_t *headers;
    size_t header_count;
    void *blob; /* headers and key */
} assembly_t;

/* An id recently finished or dropped. */
typedef struct ring_entry_s {
    uint8_t id[RV__CHUNK_ID_LEN];
    uint32_t topic_hash;
    int32_t partition; /* -1: unused */
} ring_entry_t;

typedef struct tp_s {
    char *topic;
    int32_t partition;
} tp_t;

struct rv_chunk_consumer_s {
    rv_consumer_t *c;
    rv_consumer_callbacks_t user;
    int64_t timeout_ms;
    size_t max_bytes;
    size_t held_bytes; /* value buffers of the incomplete assemblies */
    assembly_t *head;  /* incomplete, oldest first */
    assembly_t *tail;
    assembly_t *delivered; /* returned by the last poll, freed by the next */
    rv_record_t *out;
    size_t out_cap;
    ring_entry_t ring[RING_SIZE];
    size_t ring_next;
    tp_t *asg; /* the assignment, as the rebalance callbacks and rv_consumer_assign() tell it */
    size_t nasg;
    size_t asg_cap;
};

/* The chunk headers of a record. */
typedef struct chunk_hdr_s {
    const uint8_t *id; /* NULL when missing or not 16 bytes */
    uint64_t index;
    uint64_t count;
    uint64_t size;
} chunk_hdr_t;

static void assembly_free(assembly_t *a) {
    if (a) {
        free(a->topic);
        free(a->have);
        free(a->value);
        free(a->blob);
        free(a);
    }
}

static void unlink_assembly(rv_chunk_consumer_t *cc, assembly_t *a) {
    if (a->prev) {
        a->prev->next = a->next;
    } else {
        cc->head = a->next;
    }
    if (a->next) {
        a->next->prev = a->prev;
    } else {
        cc->tail = a->prev;
    }
    a->prev = a->next = NULL;
    cc->held_bytes -= (size_t)a->size;
}

static uint32_t topic_hash(const char *topic) {
    return (uint32_t)rv_murmur2(topic, strlen(topic));
}

static void ring_add(rv_chunk_consumer_t *cc, const uint8_t *id, const char *topic,
                     int32_t partition) {
    ring_entry_t *r = &cc->ring[cc->ring_next++ % RING_SIZE];
    memcpy(r->id, id, RV__CHUNK_ID_LEN);
    r->topic_hash = topic_hash(topic);
    r->partition = partition;
}

static bool ring_has(const rv_chunk_consumer_t *cc, const uint8_t *id, const char *topic,
                     int32_t partition) {
    uint32_t h = 0;
    bool hashed = false;
    for (size_t i = 0; i < RING_SIZE; i++) {
        const ring_entry_t *r = &cc->ring[i];
        if (r->partition == partition && memcmp(r->id, id, RV__CHUNK_ID_LEN) == 0) {
            if (!hashed) {
                h = topic_hash(topic);
                hashed = true;
            }
            if (r->topic_hash == h) {
                return true;
            }
        }
    }
    return false;
}

/* Forgets the ids of one partition (all when `topic` is NULL), so they can be read again. */
static void ring_forget(rv_chunk_consumer_t *cc, const char *topic, int32_t partition) {
    uint32_t h = topic ? topic_hash(topic) : 0;
    for (size_t i = 0; i < RING_SIZE; i++) {
        ring_entry_t *r = &cc->ring[i];
        if (!topic || (r->partition == partition && r->topic_hash == h)) {
            r->partition = -1;
        }
    }
}

/* Logs a report at warning level and passes it to the user's on_error callback. */
static void report(rv_chunk_consumer_t *cc, rv_err_t code, const char *fmt, ...) RV_PRINTF(3, 4);
static void report(rv_chunk_consumer_t *cc, rv_err_t code, const char *fmt, ...) {
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rv__log(&cc->c->broker->log, RV_LOG_WARNING, "chunk", "%s", msg);
    if (cc->user.on_error) {
        cc->user.on_error(cc->user.opaque, cc->c, code, msg);
    }
}

/* Drops an incomplete value and reports why (`why` completes "dropped: N of M chunks
 * arrived; ..."). */
static void drop(rv_chunk_consumer_t *cc, assembly_t *a, rv_err_t code, const char *why) {
    unlink_assembly(cc, a);
    ring_add(cc, a->id, a->topic, a->partition);
    char kq[128];
    report(cc, code,
           "topic '%s' partition %d: split value at offset %lld (%s, %llu bytes) dropped: %llu "
           "of %llu chunks arrived; %s",
           a->topic, (int)a->partition, (long long)a->first_offset,
           key_text(kq, sizeof kq, a->key, a->key_len), (unsigned long long)a->size,
           (unsigned long long)a->received, (unsigned long long)a->count, why);
    assembly_free(a);
}

/* Discards, without a report, the incomplete values of one partition (all when `topic` is
 * NULL): their chunks will be read again from wherever the partition resumes. */
static void discard(rv_chunk_consumer_t *cc, const char *topic, int32_t partition) {
    for (assembly_t *a = cc->head, *next; a; a = next) {
        next = a->next;
        if (!topic || (a->partition == partition && strcmp(a->topic, topic) == 0)) {
            rv__log(&cc->c->broker->log, RV_LOG_DEBUG, "chunk",
                    "topic '%s' partition %d: forgetting %llu of %llu chunks of the split value "
                    "at offset %lld (the partition moved or was sought)",
                    a->topic, (int)a->partition, (unsigned long long)a->received,
                    (unsigned long long)a->count, (long long)a->first_offset);
            unlink_assembly(cc, a);
            assembly_free(a);
        }
    }
    ring_forget(cc, topic, partition);
}

static assembly_t *find_assembly(rv_chunk_consumer_t *cc, const uint8_t *id, const char *topic,
                                 int32_t partition) {
    for (assembly_t *a = cc->head; a; a = a->next) {
        if (memcmp(a->id, id, RV__CHUNK_ID_LEN) == 0 && a->partition == partition &&
            strcmp(a->topic, topic) == 0) {
            return a;
        }
    }
    return NULL;
}

/*
 * Reads the chunk headers of `r`: 0 when it is not a chunk (no __rv.chunk.id header), 1 when
 * they are complete and well formed, -1 when not (*why says what is wrong; h->id is set when
 * the id itself is usable).
 */
static int chunk_parse(const rv_record_t *r, chunk_hdr_t *h, const char **why) {
    const rv_header_t *id = NULL, *index = NULL, *count = NULL, *size = NULL;
    bool twice = false;
    for (size_t i = 0; i < r->header_count; i++) {
        const rv_header_t *x = &r->headers[i];
        if (!is_chunk_header(x->name)) {
            continue;
        }
        const rv_header_t **slot = strcmp(x->name, RV__CHUNK_H_ID) == 0      ? &id
                                   : strcmp(x->name, RV__CHUNK_H_INDEX) == 0 ? &index
                                   : strcmp(x->name, RV__CHUNK_H_COUNT) == 0 ? &count
                                   : strcmp(x->name, RV__CHUNK_H_SIZE) == 0  ? &size
                                                                             : NULL;
        if (slot) {
            twice = twice || *slot != NULL;
            *slot = x;
        }
    }
    if (!id) {
        return 0;
    }
    *h = (chunk_hdr_t){.id = id->value_len == RV__CHUNK_ID_LEN && id->value ? id->value : NULL};
    if (!h->id) {
        *why = "its " RV__CHUNK_H_ID " header is not 16 bytes";
    } else if (twice) {
        *why = "a chunk header appears twice";
    } else if (!index || !count || !size) {
        *why = "a chunk header is missing";
    } else if (!parse_u64(index->value, index->value_len, &h->index) ||
               !parse_u64(count->value, count->value_len, &h->count) ||
               !parse_u64(size->value, size->value_len, &h->size)) {
        *why = "a chunk number is not decimal digits";
    } else if (h->count == 0) {
        *why = "its chunk count is 0";
    } else if (h->index >= h->count) {
        *why = "its chunk index is not below the chunk count";
    } else if (h->size == 0 || h->count > h->size ||
               (h->count - 1) * ((h->size + h->count - 1) / h->count) >= h->size) {
        *why = "its value size and chunk count do not fit together";
    } else {
        return 1;
    }
    return -1;
}

/* The length chunk `index` of a value has. */
static uint64_t chunk_len(uint64_t size, uint64_t piece, uint64_t index) {
    uint64_t off = index * piece;
    return size - off < piece ? size - off : piece;
}

/* Starts reassembling the value whose chunk 0 is `r`; NULL when it was dropped (reported). */
static assembly_t *start(rv_chunk_consumer_t *cc, const rv_record_t *r, const chunk_hdr_t *h,
                         uint64_t piece) {
    char kq[128];
    if (h->size > cc->max_bytes) {
        ring_add(cc, h->id, r->topic, r->partition);
        report(cc, RV_ERR_LIMIT,
               "topic '%s' partition %d: split value at offset %lld (%s, %llu bytes in %llu "
               "chunks) dropped: it is larger than message.split.max.bytes (%zu)",
               r->topic, (int)r->partition, (long long)r->offset,
               key_text(kq, sizeof kq, r->key, r->key_len), (unsigned long long)h->size,
               (unsigned long long)h->count, cc->max_bytes);
        return NULL;
    }
    while (cc->head && cc->held_bytes + h->size > cc->max_bytes) {
        char why[200];
        snprintf(why, sizeof why,
                 "message.split.max.bytes (%zu) left no room for the value at offset %lld",
                 cc->max_bytes, (long long)r->offset);
        drop(cc, cc->head, RV_ERR_LIMIT, why);
    }
    assembly_t *a = calloc(1, sizeof *a);
    if (a) {
        a->topic = strdup(r->topic);
        a->have = calloc((size_t)(h->count + 7) / 8, 1);
        a->value = malloc((size_t)h->size);
        a->blob = headers_dup(r->headers, r->header_count, true, &a->headers, &a->header_count,
                              r->key, r->key_len, &a->key);
    }
    if (!a || !a->topic || !a->have || !a->value || !a->blob) {
        assembly_free(a);
        ring_add(cc, h->id, r->topic, r->partition);
        report(cc, RV_ERR_NOMEM,
               "topic '%s' partition %d: split value at offset %lld (%s, %llu bytes) dropped: "
               "out of memory to reassemble it",
               r->topic, (int)r->partition, (long long)r->offset,
               key_text(kq, sizeof kq, r->key, r->key_len), (unsigned long long)h->size);
        return NULL;
    }
    memcpy(a->id, h->id, RV__CHUNK_ID_LEN);
    a->partition = r->partition;
    a->count = h->count;
    a->size = h->size;
    a->piece = piece;
    a->first_offset = r->offset;
    a->started_ms = rv_clock_mono_ms();
    a->timestamp_ms = r->timestamp_ms;
    a->key_len = r->key_len;
    a->prev = cc->tail;
    if (cc->tail) {
        cc->tail->next = a;
    } else {
        cc->head = a;
    }
    cc->tail = a;
    cc->held_bytes += (size_t)h->size;
    return a;
}

/*
 * Takes one polled record: false when it is not a chunk (the caller passes it on), true when
 * the layer took it; *done is then the value it completed, if any.
 */
static bool absorb(rv_chunk_consumer_t *cc, const rv_record_t *r, assembly_t **done) {
    *done = NULL;
    if (r->header_count == 0) {
        return false;
    }
    chunk_hdr_t h;
    const char *why = NULL;
    int parsed = chunk_parse(r, &h, &why);
    if (parsed == 0) {
        return false;
    }
    char kq[128];
    assembly_t *a = h.id ? find_assembly(cc, h.id, r->topic, r->partition) : NULL;
    if (parsed < 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "the chunk at offset %lld is corrupt: %s", (long long)r->offset,
                 why);
        if (a) {
            drop(cc, a, RV_ERR_CORRUPT, msg);
        } else {
            if (h.id && !ring_has(cc, h.id, r->topic, r->partition)) {
                ring_add(cc, h.id, r->topic, r->partition);
            }
            report(cc, RV_ERR_CORRUPT,
                   "topic '%s' partition %d: chunk record at offset %lld (%s) "
                   "dropped: %s",
                   r->topic, (int)r->partition, (long long)r->offset,
                   key_text(kq, sizeof kq, r->key, r->key_len), why);
        }
        return true;
    }
    uint64_t piece = (h.size + h.count - 1) / h.count;
    if (!a) {
        if (ring_has(cc, h.id, r->topic, r->partition)) {
            rv__log(&cc->c->broker->log, RV_LOG_DEBUG, "chunk",
                    "topic '%s' partition %d offset %lld: skipping chunk %llu of a split value "
                    "already delivered or dropped",
                    r->topic, (int)r->partition, (long long)r->offset, (unsigned long long)h.index);
            return true;
        }
        if (h.index > 0) {
            ring_add(cc, h.id, r->topic, r->partition);
            rv__log(&cc->c->broker->log, RV_LOG_NOTICE, "chunk",
                    "topic '%s' partition %d offset %lld (%s): skipping chunks %llu to %llu of a "
                    "split value whose first chunk was not read (it lies before where this "
                    "consumer started reading)",
                    r->topic, (int)r->partition, (long long)r->offset,
                    key_text(kq, sizeof kq, r->key, r->key_len), (unsigned long long)h.index,
                    (unsigned long long)(h.count - 1));
            return true;
        }
        if (r->value_len != chunk_len(h.size, piece, 0)) {
            ring_add(cc, h.id, r->topic, r->partition);
            report(cc, RV_ERR_CORRUPT,
                   "topic '%s' partition %d: split value at offset %lld (%s) dropped: its first "
                   "chunk holds %zu bytes where %llu chunks of a %llu-byte value hold %llu",
                   r->topic, (int)r->partition, (long long)r->offset,
                   key_text(kq, sizeof kq, r->key, r->key_len), r->value_len,
                   (unsigned long long)h.count, (unsigned long long)h.size,
                   (unsigned long long)piece);
            return true;
        }
        if (!(a = start(cc, r, &h, piece))) {
            return true;
        }
    } else if (h.count != a->count || h.size != a->size ||
               r->value_len != chunk_len(h.size, piece, h.index)) {
        char msg[240];
        snprintf(msg, sizeof msg,
                 "the chunk at offset %lld (index %llu, %zu bytes) does not fit the value's "
                 "first chunk (%llu chunks, %llu bytes)",
                 (long long)r->offset, (unsigned long long)h.index, r->value_len,
                 (unsigned long long)a->count, (unsigned long long)a->size);
        drop(cc, a, RV_ERR_CORRUPT, msg);
        return true;
    } else if (a->have[h.index / 8] & (1u << (h.index % 8))) {
        rv__log(&cc->c->broker->log, RV_LOG_DEBUG, "chunk",
                "topic '%s' partition %d offset %lld: skipping a second copy of chunk %llu",
                r->topic, (int)r->partition, (long long)r->offset, (unsigned long long)h.index);
        return true;
    }
    if (r->value_len) {
        memcpy(a->value + h.index * piece, r->value, r->value_len);
    }
    a->have[h.index / 8] |= (uint8_t)(1u << (h.index % 8));
    if (++a->received == a->count) {
        unlink_assembly(cc, a);
        ring_add(cc, a->id, a->topic, a->partition);
        a->next = cc->delivered;
        cc->delivered = a;
        *done = a;
    }
    return true;
}

/* Drops the values whose first chunk was read more than message.split.timeout.ms ago. */
static void expire(rv_chunk_consumer_t *cc) {
    if (!cc->head) {
        return;
    }
    int64_t now = rv_clock_mono_ms();
    while (cc->head && now - cc->head->started_ms >= cc->timeout_ms) {
        char why[160];
        snprintf(why, sizeof why,
                 "the others did not arrive within message.split.timeout.ms "
                 "(%lld ms)",
                 (long long)cc->timeout_ms);
        drop(cc, cc->head, RV_ERR_TIMEOUT, why);
    }
}

/* ---- consumer: the assignment and the callbacks in front of the user's ----------------------- */

static bool asg_add(rv_chunk_consumer_t *cc, const char *topic, int32_t partition) {
    for (size_t i = 0; i < cc->nasg; i++) {
        if (cc->asg[i].partition == partition && strcmp(cc->asg[i].topic, topic) == 0) {
            return true;
        }
    }
    if (cc->nasg == cc->asg_cap) {
        size_t cap = cc->asg_cap ? cc->asg_cap * 2 : 8;
        tp_t *n = realloc(cc->asg, cap * sizeof *n);
        if (!n) {
            return false;
        }
        cc->asg = n;
        cc->asg_cap = cap;
    }
    char *t = strdup(topic);
    if (!t) {
        return false;
    }
    cc->asg[cc->nasg++] = (tp_t){t, partition};
    return true;
}

static void asg_remove(rv_chunk_consumer_t *cc, const char *topic, int32_t partition) {
    for (size_t i = 0; i < cc->nasg; i++) {
        if (cc->asg[i].partition == partition && strcmp(cc->asg[i].topic, topic) == 0) {
            free(cc->asg[i].topic);
            cc->asg[i] = cc->asg[--cc->nasg];
            return;
        }
    }
}

static void asg_clear(rv_chunk_consumer_t *cc) {
    for (size_t i = 0; i < cc->nasg; i++) {
        free(cc->asg[i].topic);
    }
    cc->nasg = 0;
}

static void on_assign(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps, size_t n) {
    rv_chunk_consumer_t *cc = opaque;
    for (size_t i = 0; i < n; i++) {
        discard(cc, tps[i].topic, tps[i].partition);
        if (!asg_add(cc, tps[i].topic, tps[i].partition)) {
            rv__log(&c->broker->log, RV_LOG_WARNING, "chunk",
                    "topic '%s' partition %d: out of memory noting the assignment; a commit "
                    "of positions may leave the partition out",
                    tps[i].topic, (int)tps[i].partition);
        }
    }
    if (cc->user.on_assign) {
        cc->user.on_assign(cc->user.opaque, c, tps, n);
    }
}

static void on_revoke(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps, size_t n) {
    rv_chunk_consumer_t *cc = opaque;
    if (cc->user.on_revoke) {
        cc->user.on_revoke(cc->user.opaque, c, tps, n); /* commits are still capped here */
    }
    for (size_t i = 0; i < n; i++) {
        discard(cc, tps[i].topic, tps[i].partition);
        asg_remove(cc, tps[i].topic, tps[i].partition);
    }
}

static void on_partition_eof(void *opaque, rv_consumer_t *c, const char *topic, int32_t partition,
                             int64_t offset) {
    rv_chunk_consumer_t *cc = opaque;
    cc->user.on_partition_eof(cc->user.opaque, c, topic, partition, offset);
}

static void on_error(void *opaque, rv_consumer_t *c, rv_err_t err, const char *message) {
    rv_chunk_consumer_t *cc = opaque;
    cc->user.on_error(cc->user.opaque, c, err, message);
}

rv_err_t rv__chunk_consumer_new(rv_consumer_t *c, rv_error_t **err) {
    rv_chunk_consumer_t *cc = calloc(1, sizeof *cc);
    if (!cc) {
        return rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory for a consumer",
                             c->broker->url);
    }
    cc->c = c;
    cc->timeout_ms = rv__conf_int(c->conf, RV_CONF_ID_MESSAGE_SPLIT_TIMEOUT_MS);
    cc->max_bytes = (size_t)rv__conf_int(c->conf, RV_CONF_ID_MESSAGE_SPLIT_MAX_BYTES);
    for (size_t i = 0; i < RING_SIZE; i++) {
        cc->ring[i].partition = -1;
    }
    cc->user = c->callbacks;
    c->callbacks = (rv_consumer_callbacks_t){
        .opaque = cc,
        .on_assign = on_assign,
        .on_revoke = on_revoke,
        .on_partition_eof = cc->user.on_partition_eof ? on_partition_eof : NULL,
        .on_error = cc->user.on_error ? on_error : NULL,
    };
    c->chunk = cc;
    return RV_OK;
}

static void free_delivered(rv_chunk_consumer_t *cc) {
    for (assembly_t *a = cc->delivered, *next; a; a = next) {
        next = a->next;
        assembly_free(a);
    }
    cc->delivered = NULL;
}

void rv__chunk_consumer_destroy(rv_consumer_t *c) {
    rv_chunk_consumer_t *cc = c->chunk;
    if (!cc) {
        return;
    }
    if (cc->head) {
        rv__log(&c->broker->log, RV_LOG_DEBUG, "chunk",
                "closing with split values incomplete; their chunks are read again from the "
                "committed offsets");
    }
    discard(cc, NULL, 0);
    free_delivered(cc);
    asg_clear(cc);
    free(cc->asg);
    free(cc->out);
    c->callbacks = cc->user;
    free(cc);
    c->chunk = NULL;
}

void rv__chunk_assigned(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count) {
    rv_chunk_consumer_t *cc = c->chunk;
    discard(cc, NULL, 0);
    asg_clear(cc);
    for (size_t i = 0; i < count; i++) {
        if (!asg_add(cc, tps[i].topic, tps[i].partition)) {
            rv__log(&c->broker->log, RV_LOG_WARNING, "chunk",
                    "topic '%s' partition %d: out of memory noting the assignment; a commit "
                    "of positions may leave the partition out",
                    tps[i].topic, (int)tps[i].partition);
        }
    }
}

void rv__chunk_sought(rv_consumer_t *c, const char *topic, int32_t partition) {
    discard(c->chunk, topic, partition);
}

/* ---- consumer: poll and commit --------------------------------------------------------------- */

static rv_record_t assembly_view(const assembly_t *a) {
    return (rv_record_t){.topic = a->topic,
                         .partition = a->partition,
                         .offset = a->first_offset,
                         .timestamp_ms = a->timestamp_ms,
                         .key = a->key,
                         .key_len = a->key_len,
                         .value = a->value,
                         .value_len = (size_t)a->size,
                         .headers = a->headers,
                         .header_count = a->header_count};
}

/* Whether `r` carries an __rv.chunk.id header (the quick test before the layer takes it). */
static bool maybe_chunk(const rv_record_t *r) {
    for (size_t i = 0; i < r->header_count; i++) {
        if (is_chunk_header(r->headers[i].name)) {
            return true;
        }
    }
    return false;
}

rv_err_t rv__chunk_poll(rv_consumer_t *c, const rv_record_t **records, size_t max, size_t *count,
                        int timeout_ms, rv_error_t **err) {
    rv_chunk_consumer_t *cc = c->chunk;
    free_delivered(cc);
    int64_t deadline = timeout_ms < 0 ? -1 : rv_clock_mono_ms() + timeout_ms;
    for (;;) {
        int64_t now = rv_clock_mono_ms();
        int left = timeout_ms;
        if (deadline >= 0) {
            left = deadline > now ? (int)(deadline - now) : 0;
        }
        /* Wake up in time to drop the oldest incomplete value when it expires. */
        bool capped = false;
        if (cc->head) {
            int64_t until = cc->head->started_ms + cc->timeout_ms - now;
            until = until > 0 ? until : 0;
            if (left < 0 || until < left) {
                left = (int)until;
                capped = true;
            }
        }
        const rv_record_t *in = NULL;
        size_t n = 0;
        rv_err_t e = c->broker->ops->poll(c, &in, max, &n, left, err);
        size_t first = 0;
        while (first < n && !maybe_chunk(&in[first])) {
            first++;
        }
        size_t out_n = first;
        if (first == n) {
            *records = in;
        } else {
            if (n > cc->out_cap) {
                rv_record_t *o = realloc(cc->out, n * sizeof *o);
                if (!o) {
                    *records = in;
                    *count = 0;
                    return rv__error_set(err, RV_ERR_NOMEM, "poll: out of memory for %zu records",
                                         n);
                }
                cc->out = o;
                cc->out_cap = n;
            }
            memcpy(cc->out, in, first * sizeof *in);
            for (size_t i = first; i < n; i++) {
                assembly_t *done;
                if (!absorb(cc, &in[i], &done)) {
                    cc->out[out_n++] = in[i];
                } else if (done) {
                    cc->out[out_n++] = assembly_view(done);
                }
            }
            *records = cc->out;
        }
        *count = out_n;
        expire(cc);
        /* Only chunks were read, or the wait was cut short to expire a value: wait on for a
         * record while the time lasts. */
        if (e != RV_OK || out_n > 0 || (n == 0 && !capped) ||
            (deadline >= 0 && rv_clock_mono_ms() >= deadline)) {
            return e;
        }
    }
}

/* The first offset of the oldest value being reassembled in a partition; -1 when none. */
static int64_t cap_of(const rv_chunk_consumer_t *cc, const char *topic, int32_t partition) {
    int64_t cap = -1;
    for (const assembly_t *a = cc->head; a; a = a->next) {
        if (a->partition == partition && strcmp(a->topic, topic) == 0 &&
            (cap < 0 || a->first_offset < cap)) {
            cap = a->first_offset;
        }
    }
    return cap;
}

/* Lowers offsets past a value being reassembled to its first offset. */
static void apply_caps(rv_chunk_consumer_t *cc, rv_topic_partition_t *tps, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int64_t cap = cap_of(cc, tps[i].topic, tps[i].partition);
        if (cap >= 0 && tps[i].offset > cap) {
            rv__log(&cc->c->broker->log, RV_LOG_DEBUG, "chunk",
                    "topic '%s' partition %d: committing offset %lld, not %lld: the split value "
                    "at %lld is still being reassembled",
                    tps[i].topic, (int)tps[i].partition, (long long)cap, (long long)tps[i].offset,
                    (long long)cap);
            tps[i].offset = cap;
        }
    }
}

rv_err_t rv__chunk_capped_offsets(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                                  rv_topic_partition_t **out, size_t *out_count, rv_error_t **err) {
    rv_chunk_consumer_t *cc = c->chunk;
    *out = NULL;
    *out_count = 0;
    if (!cc->head) {
        return RV_OK;
    }
    size_t n = tps ? count : cc->nasg;
    if (!tps) {
        for (const assembly_t *a = cc->head; a; a = a->next) {
            n++; /* a partition the assignment missed; duplicates are removed below */
        }
    }
    rv_topic_partition_t *list = malloc((n ? n : 1) * sizeof *list);
    if (!list) {
        return rv__error_set(err, RV_ERR_NOMEM, "group '%s': out of memory committing",
                             c->group ? c->group : "(none)");
    }
    if (tps) {
        memcpy(list, tps, count * sizeof *list);
    } else {
        /* The positions of the assigned partitions, as a NULL commit would take them. */
        n = 0;
        for (size_t i = 0; i < cc->nasg; i++) {
            list[n++] = (rv_topic_partition_t){cc->asg[i].topic, cc->asg[i].partition, 0};
        }
        for (const assembly_t *a = cc->head; a; a = a->next) {
            bool seen = false;
            for (size_t i = 0; i < n && !seen; i++) {
                seen = list[i].partition == a->partition && strcmp(list[i].topic, a->topic) == 0;
            }
            if (!seen) {
                list[n++] = (rv_topic_partition_t){a->topic, a->partition, 0};
            }
        }
        rv_err_t e = c->broker->ops->position(c, list, n, err);
        if (e != RV_OK) {
            free(list);
            return e;
        }
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            if (list[i].offset >= 0) { /* assigned and not stopped */
                list[kept++] = list[i];
            }
        }
        n = kept;
    }
    apply_caps(cc, list, n);
    *out = list;
    *out_count = n;
    return RV_OK;
}

rv_err_t rv__chunk_commit(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                          rv_error_t **err) {
    rv_topic_partition_t *list;
    size_t n;
    rv_err_t e = rv__chunk_capped_offsets(c, tps, count, &list, &n, err);
    if (e != RV_OK) {
        return e;
    }
    if (!list) {
        return c->broker->ops->commit(c, tps, count, err);
    }
    e = c->broker->ops->commit(c, list, n, err);
    free(list);
    return e;
}
