/*
 * test_chunk.c: splitting of large values into chunk records and their reassembly
 * (src/broker/chunk.c), on the memory: broker with message.split.bytes of 1 KiB so that values
 * of a few KiB are split.
 *
 * Round trips of values of many sizes around the split boundary, one delivery report per
 * value, user headers, keys and timestamps kept, values interleaved across partitions, threads
 * and plain records, and chunks made by hand (a producer with message.split=false writing the
 * __rv.chunk.* headers itself) for what a producer never writes: values that never complete
 * (timeout), values that do not fit in message.split.max.bytes, corrupt chunk headers, tails of
 * values begun before the consumer's start, and commits while a value is incomplete. Every
 * test is fast; the 50 MiB values are in tests/integration/test_chunk_large.c.
 * ctest-labels: threads
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/chunk.h"
#include "rivulet/broker.h"
#include "rivulet/clock.h"
#include "rivulet/config.h"
#include "rv_test.h"

#define SPLIT 1024

/* ---- helpers --------------------------------------------------------------------------------- */

/* Log lines at warning level and above, kept for checks. */
typedef struct logs_s {
    pthread_mutex_t mu;
    char lines[64][640];
    size_t n;
} logs_t;

static void on_log(void *opaque, rv_log_level_t level, const char *subsystem, const char *msg) {
    logs_t *l = opaque;
    if (level > RV_LOG_NOTICE) {
        return;
    }
    pthread_mutex_lock(&l->mu);
    if (l->n < 64) {
        snprintf(l->lines[l->n++], sizeof l->lines[0], "%s: %s", subsystem, msg);
    }
    pthread_mutex_unlock(&l->mu);
}

static bool logs_have(logs_t *l, const char *a, const char *b) {
    bool found = false;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n && !found; i++) {
        found = strstr(l->lines[i], a) && (!b || strstr(l->lines[i], b));
    }
    pthread_mutex_unlock(&l->mu);
    return found;
}

static rv_conf_t *conf_of(const char *const *pairs) {
    rv_conf_t *conf = rv_conf_new();
    for (size_t i = 0; conf && pairs && pairs[i]; i++) {
        rv_error_t *err = NULL;
        CHECK_MSG(rv_conf_set_pair(conf, pairs[i], &err) == RV_OK, "%s: %s", pairs[i],
                  rv_error_message(err));
        rv_error_destroy(err);
    }
    return conf;
}

static rv_broker_t *open_memory(logs_t *logs) {
    rv_broker_opts_t opts = {.log_cb = logs ? on_log : NULL, .log_opaque = logs};
    rv_broker_t *b = rv_broker_open("memory:", &opts, NULL);
    CHECK(b != NULL);
    return b;
}

static bool create(rv_broker_t *b, const char *topic, int32_t partitions) {
    rv_error_t *err = NULL;
    rv_err_t e = rv_broker_create_topic(b, topic, partitions, NULL, &err);
    CHECK_MSG(e == RV_OK, "create %s: %s", topic, rv_error_message(err));
    rv_error_destroy(err);
    return e == RV_OK;
}

static rv_producer_t *producer(rv_broker_t *b, const char *const *pairs, rv_delivery_cb cb,
                               void *opaque) {
    rv_conf_t *conf = conf_of(pairs);
    rv_producer_opts_t opts = {.conf = conf, .delivery_cb = cb, .opaque = opaque};
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(b, &opts, &err);
    CHECK_MSG(p != NULL, "producer: %s", rv_error_message(err));
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return p;
}

static rv_producer_t *splitting_producer(rv_broker_t *b, rv_delivery_cb cb, void *opaque) {
    const char *pairs[] = {"message.split.bytes=1024", NULL};
    return producer(b, pairs, cb, opaque);
}

/* A producer that never splits, for chunk records made by hand. */
static rv_producer_t *raw_producer(rv_broker_t *b) {
    const char *pairs[] = {"message.split=false", NULL};
    return producer(b, pairs, NULL, NULL);
}

static rv_consumer_t *consumer(rv_broker_t *b, const char *group, const char *const *pairs,
                               const rv_consumer_callbacks_t *cbs) {
    rv_conf_t *conf = conf_of(pairs);
    rv_consumer_opts_t opts = {.conf = conf, .group = group};
    if (cbs) {
        opts.callbacks = *cbs;
    }
    rv_error_t *err = NULL;
    rv_consumer_t *c = rv_consumer_new(b, &opts, &err);
    CHECK_MSG(c != NULL, "consumer: %s", rv_error_message(err));
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return c;
}

static void assign(rv_consumer_t *c, const char *topic, int32_t partitions, int64_t offset) {
    rv_topic_partition_t tps[8];
    for (int32_t i = 0; i < partitions; i++) {
        tps[i] = (rv_topic_partition_t){topic, i, offset};
    }
    rv_error_t *err = NULL;
    CHECK_MSG(rv_consumer_assign(c, tps, (size_t)partitions, &err) == RV_OK, "assign: %s",
              rv_error_message(err));
    rv_error_destroy(err);
}

static void flush(rv_producer_t *p) {
    rv_error_t *err = NULL;
    CHECK_MSG(rv_producer_flush(p, 10000, &err) == RV_OK, "flush: %s", rv_error_message(err));
    rv_error_destroy(err);
}

static int64_t high(rv_broker_t *b, const char *topic, int32_t partition) {
    int64_t lo = 0, hi = 0;
    CHECK_INT(rv_broker_watermarks(b, topic, partition, &lo, &hi, NULL), RV_OK);
    return hi;
}

/* Deterministic bytes for a value, different for every seed. */
static void fill(unsigned char *buf, size_t len, uint64_t seed) {
    uint64_t x = seed * 0x9E3779B97F4A7C15u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (unsigned char)(x >> 24);
    }
}

/* A consumed record, copied with its headers so it outlives the poll. */
typedef struct crec_s {
    char topic[64];
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    unsigned char *key; /* NULL: no key */
    size_t key_len;
    unsigned char *value; /* NULL: tombstone */
    size_t value_len;
    size_t header_count;
    char hname[4][32];
    char hvalue[4][32];
} crec_t;

typedef struct crecs_s {
    crec_t *v;
    size_t n;
    size_t cap;
} crecs_t;

static unsigned char *dup_bytes(const void *p, size_t n) {
    if (!p) {
        return NULL;
    }
    unsigned char *s = malloc(n + 1);
    if (n) {
        memcpy(s, p, n);
    }
    s[n] = 0;
    return s;
}

static void crecs_add(crecs_t *rs, const rv_record_t *r) {
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 64;
        rs->v = realloc(rs->v, rs->cap * sizeof *rs->v);
    }
    crec_t *c = &rs->v[rs->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->topic, sizeof c->topic, "%s", r->topic);
    c->partition = r->partition;
    c->offset = r->offset;
    c->timestamp_ms = r->timestamp_ms;
    c->key = dup_bytes(r->key, r->key_len);
    c->key_len = r->key_len;
    c->value = dup_bytes(r->value, r->value_len);
    c->value_len = r->value_len;
    c->header_count = r->header_count;
    for (size_t i = 0; i < r->header_count && i < 4; i++) {
        snprintf(c->hname[i], sizeof c->hname[i], "%s", r->headers[i].name);
        snprintf(c->hvalue[i], sizeof c->hvalue[i], "%.*s", (int)r->headers[i].value_len,
                 (const char *)r->headers[i].value);
    }
}

static void crecs_free(crecs_t *rs) {
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->v[i].key);
        free(rs->v[i].value);
    }
    free(rs->v);
    *rs = (crecs_t){0};
}

/* Polls until `want` records are held or `ms` passed; then polls `extra_ms` more. */
static void collect(rv_consumer_t *c, crecs_t *rs, size_t want, int ms, int extra_ms) {
    int64_t deadline = rv_clock_mono_ms() + ms;
    int64_t end = -1;
    for (;;) {
        int64_t now = rv_clock_mono_ms();
        if (end < 0 && (rs->n >= want || now >= deadline)) {
            end = now + extra_ms;
        }
        if (end >= 0 && now >= end) {
            return;
        }
        const rv_record_t *recs = NULL;
        size_t n = 0;
        rv_error_t *err = NULL;
        rv_err_t e = rv_consumer_poll(c, &recs, 100, &n, 20, &err);
        CHECK_MSG(e == RV_OK, "poll: %s", rv_error_message(err));
        rv_error_destroy(err);
        for (size_t i = 0; i < n; i++) {
            crecs_add(rs, &recs[i]);
        }
    }
}

/* Delivery reports, kept for checks. */
typedef struct report_s {
    int64_t offset;
    int32_t partition;
    rv_err_t err;
    uintptr_t opaque;
    bool value_null;
    size_t value_len;
    size_t header_count;
    char hname[32];
} report_t;

typedef struct reports_s {
    pthread_mutex_t mu;
    report_t v[1024];
    size_t n;
} reports_t;

static void on_delivery(void *opaque, const rv_record_t *r, rv_err_t err, void *rec_opaque) {
    reports_t *rp = opaque;
    pthread_mutex_lock(&rp->mu);
    if (rp->n < 1024) {
        report_t *x = &rp->v[rp->n++];
        *x = (report_t){.offset = r->offset,
                        .partition = r->partition,
                        .err = err,
                        .opaque = (uintptr_t)rec_opaque,
                        .value_null = r->value == NULL,
                        .value_len = r->value_len,
                        .header_count = r->header_count};
        if (r->header_count) {
            snprintf(x->hname, sizeof x->hname, "%s", r->headers[0].name);
        }
    }
    pthread_mutex_unlock(&rp->mu);
}

/* Errors reported through the consumer's on_error callback. */
typedef struct errors_s {
    rv_err_t err[32];
    char msg[32][640];
    size_t n;
    int64_t last_ms; /* monotonic, when the last one came */
} errors_t;

static void on_error(void *opaque, rv_consumer_t *c, rv_err_t err, const char *message) {
    errors_t *es = opaque;
    if (es->n < 32) {
        es->err[es->n] = err;
        snprintf(es->msg[es->n], sizeof es->msg[0], "%s", message);
        es->n++;
        es->last_ms = rv_clock_mono_ms();
    }
}

/* Sends a chunk record made by hand: id of 16 bytes `id_byte`, numbers as text (NULL leaves
 * a header out). */
static void send_raw(rv_producer_t *p, const char *topic, int32_t partition, const char *key,
                     int id_byte, const char *index, const char *count, const char *size,
                     const void *data, size_t len) {
    unsigned char id[16];
    memset(id, id_byte, sizeof id);
    rv_header_t h[4];
    size_t n = 0;
    h[n++] = (rv_header_t){RV__CHUNK_H_ID, id, sizeof id};
    if (index) {
        h[n++] = (rv_header_t){RV__CHUNK_H_INDEX, index, strlen(index)};
    }
    if (count) {
        h[n++] = (rv_header_t){RV__CHUNK_H_COUNT, count, strlen(count)};
    }
    if (size) {
        h[n++] = (rv_header_t){RV__CHUNK_H_SIZE, size, strlen(size)};
    }
    rv_record_t r = {.topic = topic,
                     .partition = partition,
                     .key = key,
                     .key_len = key ? strlen(key) : 0,
                     .value = data,
                     .value_len = len,
                     .headers = h,
                     .header_count = n};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
}

static void send_plain(rv_producer_t *p, const char *topic, int32_t partition, const char *value) {
    rv_record_t r = {
        .topic = topic, .partition = partition, .value = value, .value_len = strlen(value)};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_round_trip_sizes(void) {
    rv_broker_t *b = open_memory(NULL);
    REQUIRE(b && create(b, "rt", 1));
    static reports_t rp = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rv_producer_t *p = splitting_producer(b, on_delivery, &rp);
    REQUIRE(p != NULL);
    const char *key = "key-1";
    rv_header_t hdr = {"trace", "abc", 3};
    /* The largest value sent whole: message.split.bytes less what the record counts for. */
    const size_t B = SPLIT - RV__CHUNK_RECORD_OVERHEAD - strlen(key) -
                     (RV__CHUNK_HEADER_OVERHEAD + strlen(hdr.name) + hdr.value_len);
    const size_t sizes[] = {0, 1, B - 1, B, B + 1, 2 * B, 2 * B + 1, 5000, 65536, 300000};
    enum { N = sizeof sizes / sizeof sizes[0] };
    int64_t first[N], chunks[N];
    unsigned char *buf = malloc(300000);
    REQUIRE(buf != NULL);
    for (size_t i = 0; i < N; i++) {
        fill(buf, sizes[i], i);
        rv_record_t r = {.topic = "rt",
                         .partition = RV_PARTITION_ANY,
                         .timestamp_ms = 1700000000000 + (int64_t)i,
                         .key = key,
                         .key_len = strlen(key),
                         .value = buf,
                         .value_len = sizes[i],
                         .headers = &hdr,
                         .header_count = 1};
        first[i] = high(b, "rt", 0);
        CHECK_INT(rv_producer_send(p, &r, (void *)(uintptr_t)(i + 1)), RV_OK);
        flush(p);
        chunks[i] = high(b, "rt", 0) - first[i];
    }
    /* A tombstone is never split. */
    rv_record_t tomb = {.topic = "rt", .partition = 0, .key = key, .key_len = strlen(key)};
    CHECK_INT(rv_producer_send(p, &tomb, (void *)(uintptr_t)100), RV_OK);
    flush(p);
    for (size_t i = 0; i < N; i++) {
        CHECK_MSG(sizes[i] <= B ? chunks[i] == 1 : chunks[i] >= 2, "%zu bytes went as %lld records",
                  sizes[i], (long long)chunks[i]);
    }
    CHECK_INT(chunks[4], 2); /* B + 1 */
    CHECK_INT(chunks[9] >= 300000 / SPLIT, 1);

    /* One report per value, with the first chunk's offset. */
    CHECK_INT(rp.n, N + 1);
    for (size_t i = 0; i < rp.n && i < N; i++) {
        CHECK_INT(rp.v[i].opaque, i + 1);
        CHECK_INT(rp.v[i].err, RV_OK);
        CHECK_INT(rp.v[i].offset, first[i]);
        CHECK_INT(rp.v[i].partition, 0);
        CHECK_INT(rp.v[i].header_count, 1);
        CHECK_STR(rp.v[i].hname, "trace");
        if (chunks[i] > 1) {
            CHECK(rp.v[i].value_null && rp.v[i].value_len == 0);
        } else {
            CHECK_INT(rp.v[i].value_len, sizes[i]);
        }
    }

    rv_consumer_t *c = consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);
    assign(c, "rt", 1, RV_OFFSET_BEGINNING);
    crecs_t rs = {0};
    collect(c, &rs, N + 1, 5000, 50);
    CHECK_INT(rs.n, N + 1);
    for (size_t i = 0; i < rs.n && i < N; i++) {
        crec_t *r = &rs.v[i];
        fill(buf, sizes[i], i);
        CHECK_INT(r->value_len, sizes[i]);
        CHECK_MSG(r->value && memcmp(r->value, buf, sizes[i]) == 0, "value %zu differs", i);
        CHECK_INT(r->offset, first[i]);
        CHECK_INT(r->timestamp_ms, 1700000000000 + (int64_t)i);
        CHECK(r->key && r->key_len == 5 && memcmp(r->key, key, 5) == 0);
        CHECK_INT(r->header_count, 1); /* the chunk headers are gone */
        CHECK_STR(r->hname[0], "trace");
        CHECK_STR(r->hvalue[0], "abc");
    }
    if (rs.n == N + 1) {
        CHECK(rs.v[N].value == NULL);
    }
    crecs_free(&rs);
    free(buf);
    rv_consumer_close(c);
    rv_producer_close(p);
    rv_broker_close(b);
}

static void test_split_off_and_limits(void) {
    logs_t logs = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rv_broker_t *b = open_memory(&logs);
    REQUIRE(b && create(b, "off", 1));
    const char *pairs[] = {"message.split=false", "message.split.bytes=1024", NULL};
    rv_producer_t *off = producer(b, pairs, NULL, NULL);
    REQUIRE(off != NULL);
    static unsigned char big[4000];
    rv_record_t r = {.topic = "off", .partition = 0, .value = big, .value_len = 2000};
    CHECK_INT(rv_producer_send(off, &r, NULL), RV_ERR_LIMIT);
    CHECK(logs_have(&logs, "topic 'off'", "2064 bytes"));
    r.value_len = 900;
    CHECK_INT(rv_producer_send(off, &r, NULL), RV_OK);
    rv_producer_close(off);

    rv_producer_t *p = splitting_producer(b, NULL, NULL);
    REQUIRE(p != NULL);
    /* A key that leaves no room for a chunk. */
    r = (rv_record_t){.topic = "off",
                      .partition = 0,
                      .key = big,
                      .key_len = 1000,
                      .value = big,
                      .value_len = 2000};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_LIMIT);
    CHECK(logs_have(&logs, "cannot be split", "leave no room"));
    /* The chunk headers' names are reserved on a split record, not on a small one. */
    rv_header_t h = {RV__CHUNK_H_ID, "x", 1};
    r = (rv_record_t){.topic = "off",
                      .partition = 0,
                      .value = big,
                      .value_len = 3000,
                      .headers = &h,
                      .header_count = 1};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_INVALID_ARG);
    r.value_len = 10;
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    /* Errors of the first chunk are the send's. */
    r = (rv_record_t){
        .topic = "nosuch", .partition = RV_PARTITION_ANY, .value = big, .value_len = 3000};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_NOT_FOUND);
    r.key = "k";
    r.key_len = 1;
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_NOT_FOUND);
    r.topic = "off";
    r.partition = 5;
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_INVALID_ARG);
    flush(p);
    CHECK_INT(high(b, "off", 0), 2);
    rv_producer_close(p);
    rv_broker_close(b);
}

/* Values of three threads interleave on one partition and across three. */
typedef struct sender_s {
    rv_producer_t *p;
    int thread;
    rv_err_t failed; /* the first send that failed (checked by the main thread) */
} sender_t;

enum { THREADS = 3, PER_THREAD = 25 };

static size_t value_size(int thread, int i) {
    return 1500 + (size_t)thread * 977 + (size_t)i * 331;
}

static void *sender_main(void *arg) {
    sender_t *s = arg;
    unsigned char *buf = malloc(20000);
    for (int i = 0; i < PER_THREAD; i++) {
        char key[32];
        snprintf(key, sizeof key, "t%d-%d", s->thread, i);
        size_t len = value_size(s->thread, i);
        fill(buf, len, (uint64_t)(s->thread * 1000 + i));
        /* Thread 0 writes to partition 0 only, so its values meet the others' there. */
        rv_record_t r = {.topic = "il",
                         .partition = s->thread == 0 ? 0 : RV_PARTITION_ANY,
                         .key = key,
                         .key_len = strlen(key),
                         .value = buf,
                         .value_len = len};
        rv_err_t e;
        while ((e = rv_producer_send(s->p, &r, NULL)) == RV_ERR_AGAIN) {
            rv_producer_poll(s->p, 10);
        }
        if (e != RV_OK && s->failed == RV_OK) {
            s->failed = e;
        }
        if (s->thread == 2) { /* plain records between the values */
            char v[32];
            snprintf(v, sizeof v, "plain-%03d", i);
            rv_record_t pr = {.topic = "il", .partition = 0, .value = v, .value_len = strlen(v)};
            e = rv_producer_send(s->p, &pr, NULL);
            if (e != RV_OK && s->failed == RV_OK) {
                s->failed = e;
            }
        }
    }
    free(buf);
    return NULL;
}

static void test_interleaved_threads_and_partitions(void) {
    rv_broker_t *b = open_memory(NULL);
    REQUIRE(b && create(b, "il", 3));
    static reports_t rp = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rv_producer_t *p = splitting_producer(b, on_delivery, &rp);
    REQUIRE(p != NULL);
    pthread_t th[THREADS];
    sender_t ss[THREADS];
    for (int t = 0; t < THREADS; t++) {
        ss[t] = (sender_t){p, t, RV_OK};
        pthread_create(&th[t], NULL, sender_main, &ss[t]);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        CHECK_INT(ss[t].failed, RV_OK);
    }
    flush(p);
    CHECK_INT(rp.n, THREADS * PER_THREAD + PER_THREAD);

    rv_consumer_t *c = consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);
    assign(c, "il", 3, RV_OFFSET_BEGINNING);
    crecs_t rs = {0};
    collect(c, &rs, THREADS * PER_THREAD + PER_THREAD, 10000, 50);
    CHECK_INT(rs.n, THREADS * PER_THREAD + PER_THREAD);
    bool seen[THREADS][PER_THREAD] = {{false}};
    int plain = 0;
    unsigned char *buf = malloc(20000);
    for (size_t i = 0; i < rs.n; i++) {
        crec_t *r = &rs.v[i];
        if (!r->key) {
            char want[32];
            snprintf(want, sizeof want, "plain-%03d", plain++);
            CHECK_STR((const char *)r->value, want); /* in order, between the values */
            continue;
        }
        int t = -1, k = -1;
        REQUIRE(sscanf((const char *)r->key, "t%d-%d", &t, &k) == 2);
        REQUIRE(t >= 0 && t < THREADS && k >= 0 && k < PER_THREAD);
        CHECK(!seen[t][k]);
        seen[t][k] = true;
        size_t len = value_size(t, k);
        fill(buf, len, (uint64_t)(t * 1000 + k));
        CHECK_INT(r->value_len, len);
        CHECK_MSG(r->value_len == len && memcmp(r->value, buf, len) == 0, "value %s differs",
                  (const char *)r->key);
        CHECK_INT(r->header_count, 0);
        if (t == 0) {
            CHECK_INT(r->partition, 0);
        }
    }
    CHECK_INT(plain, PER_THREAD);
    free(buf);
    crecs_free(&rs);
    rv_consumer_close(c);
    rv_producer_close(p);
    rv_broker_close(b);
}

/* Chunks of two values and plain records interleaved by hand on one partition. */
static void test_interleaved_by_hand(void) {
    rv_broker_t *b = open_memory(NULL);
    REQUIRE(b && create(b, "hand", 1));
    rv_producer_t *raw = raw_producer(b);
    REQUIRE(raw != NULL);
    unsigned char x[3000], y[2000];
    fill(x, sizeof x, 1);
    fill(y, sizeof y, 2);
    send_raw(raw, "hand", 0, "x", 'X', "0", "3", "3000", x, 1000);        /* 0 */
    send_raw(raw, "hand", 0, "y", 'Y', "0", "2", "2000", y, 1000);        /* 1 */
    send_plain(raw, "hand", 0, "n1");                                     /* 2 */
    send_raw(raw, "hand", 0, "x", 'X', "1", "3", "3000", x + 1000, 1000); /* 3 */
    send_raw(raw, "hand", 0, "y", 'Y', "1", "2", "2000", y + 1000, 1000); /* 4 */
    send_plain(raw, "hand", 0, "n2");                                     /* 5 */
    send_raw(raw, "hand", 0, "x", 'X', "2", "3", "3000", x + 2000, 1000); /* 6 */
    flush(raw);
    rv_consumer_t *c = consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);
    assign(c, "hand", 1, RV_OFFSET_BEGINNING);
    crecs_t rs = {0};
    collect(c, &rs, 4, 3000, 50);
    REQUIRE(rs.n == 4);
    CHECK_STR((const char *)rs.v[0].value, "n1");
    CHECK_INT(rs.v[0].offset, 2);
    CHECK_INT(rs.v[1].offset, 1); /* y, where its last chunk was read, with its first offset */
    CHECK(rs.v[1].value_len == sizeof y && memcmp(rs.v[1].value, y, sizeof y) == 0);
    CHECK_STR((const char *)rs.v[1].key, "y");
    CHECK_STR((const char *)rs.v[2].value, "n2");
    CHECK_INT(rs.v[3].offset, 0);
    CHECK(rs.v[3].value_len == sizeof x && memcmp(rs.v[3].value, x, sizeof x) == 0);
    crecs_free(&rs);
    rv_consumer_close(c);
    rv_producer_close(raw);
    rv_broker_close(b);
}

static void test_timeout_reported(void) {
    logs_t logs = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rv_broker_t *b = open_memory(&logs);
    REQUIRE(b && create(b, "slow", 2));
    rv_producer_t *raw = raw_producer(b);
    REQUIRE(raw != NULL);
    unsigned char v[3000];
    fill(v, sizeof v, 3);
    send_raw(raw, "slow", 1, "tk", 'T', "0", "3", "3000", v, 1000);
    send_raw(raw, "slow", 1, "tk", 'T', "1", "3", "3000", v + 1000, 1000);
    send_plain(raw, "slow", 1, "after");
    flush(raw);
    errors_t es = {0};
    rv_consumer_callbacks_t cbs = {.opaque = &es, .on_error = on_error};
    const char *pairs[] = {"message.split.timeout.ms=400", NULL};
    rv_consumer_t *c = consumer(b, NULL, pairs, &cbs);
    REQUIRE(c != NULL);
    assign(c, "slow", 2, RV_OFFSET_BEGINNING);
    crecs_t rs = {0};
    collect(c, &rs, 1, 2000, 100);
    CHECK_INT(rs.n, 1);
    CHECK_INT(es.n, 0); /* not yet */
    /* One long poll: the value is dropped when it expires, not when the poll ends. */
    int64_t t0 = rv_clock_mono_ms();
    const rv_record_t *recs = NULL;
    size_t n = 0;
    CHECK_INT(rv_consumer_poll(c, &recs, 10, &n, 2500, NULL), RV_OK);
    CHECK_INT(n, 0); /* never half a value */
    CHECK_INT(es.n, 1);
    CHECK_MSG(es.n == 1 && es.last_ms - t0 < 1500, "reported %lld ms into the poll",
              (long long)(es.last_ms - t0));
    if (es.n == 1) {
        CHECK_INT(es.err[0], RV_ERR_TIMEOUT);
        CHECK_MSG(strstr(es.msg[0], "topic 'slow' partition 1") && strstr(es.msg[0], "offset 0") &&
                      strstr(es.msg[0], "key 'tk'") && strstr(es.msg[0], "2 of 3 chunks") &&
                      strstr(es.msg[0], "message.split.timeout.ms"),
                  "message: %s", es.msg[0]);
    }
    CHECK(logs_have(&logs, "chunk: topic 'slow' partition 1", "2 of 3 chunks"));
    /* The last chunk, arriving late, is skipped quietly. */
    send_raw(raw, "slow", 1, "tk", 'T', "2", "3", "3000", v + 2000, 1000);
    flush(raw);
    collect(c, &rs, 99, 150, 0);
    CHECK_INT(rs.n, 1);
    CHECK_INT(es.n, 1);
    crecs_free(&rs);
    rv_consumer_close(c);
    rv_producer_close(raw);
    rv_broker_close(b);
}

static void test_memory_bound(void) {
    rv_broker_t *b = open_memory(NULL);
    REQUIRE(b && create(b, "mem", 1));
    rv_producer_t *raw = raw_producer(b);
    REQUIRE(raw != NULL);
    unsigned char a[3000], v[3000], big[1000];
    fill(a, sizeof a, 4);
    fill(v, sizeof v, 5);
    fill(big, sizeof big, 6);
    send_raw(raw, "mem", 0, "a", 'A', "0", "3", "3000", a, 1000);        /* 0 */
    send_raw(raw, "mem", 0, "b", 'B', "0", "3", "3000", v, 1000);        /* 1: pushes a out */
    send_raw(raw, "mem", 0, "b", 'B', "1", "3", "3000", v + 1000, 1000); /* 2 */
    send_raw(raw, "mem", 0, "b", 'B', "2", "3", "3000", v + 2000, 1000); /* 3 */
    send_raw(raw, "mem", 0, "a", 'A', "1", "3", "3000", a + 1000, 1000); /* 4: skipped */
    send_raw(raw, "mem", 0, "a", 'A', "2", "3", "3000", a + 2000, 1000); /* 5: skipped */
    send_raw(raw, "mem", 0, "c", 'C', "0", "5", "5000", big, 1000);      /* 6: too big */
    send_plain(raw, "mem", 0, "end");                                    /* 7 */
    flush(raw);
    errors_t es = {0};
    rv_consumer_callbacks_t cbs = {.opaque = &es, .on_error = on_error};
    const char *pairs[] = {"message.split.max.bytes=4096", NULL};
    rv_consumer_t *c = consumer(b, NULL, pairs, &cbs);
    REQUIRE(c != NULL);
    assign(c, "mem", 1, RV_OFFSET_BEGINNING);
    crecs_t rs = {0};
    collect(c, &rs, 2, 3000, 50);
    REQUIRE(rs.n == 2);
    CHECK_INT(rs.v[0].offset, 1);
    CHECK(rs.v[0].value_len == sizeof v && memcmp(rs.v[0].value, v, sizeof v) == 0);
    CHECK_STR((const char *)rs.v[1].value, "end");
    CHECK_INT(es.n, 2);
    if (es.n == 2) {
        CHECK_INT(es.err[0], RV_ERR_LIMIT);
        CHECK_MSG(strstr(es.msg[0], "offset 0") && strstr(es.msg[0], "key 'a'") &&
                      strstr(es.msg[0], "1 of 3 chunks") &&
                      strstr(es.msg[0], "message.split.max.bytes"),
                  "message: %s", es.msg[0]);
        CHECK_INT(es.err[1], RV_ERR_LIMIT);
        CHECK_MSG(strstr(es.msg[1], "offset 6") && strstr(es.msg[1], "key 'c'") &&
                      strstr(es.msg[1], "larger than message.split.max.bytes"),
                  "message: %s", es.msg[1]);
    }
    crecs_free(&rs);
    rv_consumer_close(c);
    rv_producer_close(raw);
    rv_broker_close(b);
}

static void test_corrupt_headers(void) {
    rv_broker_t *b = open_memory(NULL);
    REQUIRE(b && create(b, "bad", 1));
    rv_producer_t *raw = raw_producer(b);
    REQUIRE(raw != NULL);
    unsigned char v[3000];
    fill(v, sizeof v, 7);
    send_raw(raw, "bad", 0, "k0", 1, "0", "0", "3000", v, 1000);        /* count 0 */
    send_raw(raw, "bad", 0, "k1", 2, "3", "3", "3000", v, 1000);        /* index >= count */
    send_raw(raw, "bad", 0, "k2", 3, "0", "3", "2", v, 1);              /* count > size */
    send_raw(raw, "bad", 0, "k3", 4, "0", "3", "30x0", v, 1000);        /* not digits */
    send_raw(raw, "bad", 0, "k4", 5, "0", "3", NULL, v, 1000);          /* size missing */
    send_raw(raw, "bad", 0, "k5", 6, "0", "3", "3000", v, 999);         /* wrong length */
    send_raw(raw, "bad", 0, "k6", 7, "0", "3", "3000", v, 1000);        /* good first ... */
    send_raw(raw, "bad", 0, "k6", 7, "1", "4", "3000", v + 1000, 1000); /* ... other count */
    send_raw(raw, "bad", 0, "k7", 8, "0", "5", "5", v, 1);
    send_raw(raw, "bad", 0, "k7", 8, "0", "5", "05", v, 1); /* leading zero */
    send_raw(raw, "bad", 0, "k8", 9, "0", "4", "6", v, 2);  /* a chunk would be empty */
    unsigned char shortid[5] = {1, 2, 3, 4, 5};
    rv_header_t h[4] = {{RV__CHUNK_H_ID, shortid, 5},
                        {RV__CHUNK_H_INDEX, "0", 1},
                        {RV__CHUNK_H_COUNT, "2", 1},
                        {RV__CHUNK_H_SIZE, "2", 1}};
    rv_record_t r = {.topic = "bad",
                     .partition = 0,
                     .value = v,
                     .value_len = 1,
                     .headers = h,
                     .header_count = 4};
    CHECK_INT(rv_producer_send(raw, &r, NULL), RV_OK); /* id of 5 bytes */
    send_plain(raw, "bad", 0, "fine");
    flush(raw);
    errors_t es = {0};
    rv_consumer_callbacks_t cbs = {.opaque = &es, .on_error = on_error};
    rv_consumer_t *c = consumer(b, NULL, NULL, &cbs);
    REQUIRE(c != NULL);
    assign(c, "bad", 1, RV_OFFSET_BEGINNING);
    crecs_t rs = {0};
    collect(c, &rs, 1, 3000, 100);
    CHECK_INT(rs.n, 1);
    if (rs.n >= 1) {
        CHECK_STR((const char *)rs.v[0].value, "fine");
    }
    CHECK_INT(es.n, 10);
    for (size_t i = 0; i < es.n; i++) {
        CHECK_INT(es.err[i], RV_ERR_CORRUPT);
        CHECK_MSG(strstr(es.msg[i], "topic 'bad' partition 0") != NULL, "message: %s", es.msg[i]);
    }
    if (es.n == 10) {
        CHECK(strstr(es.msg[0], "offset 0") && strstr(es.msg[0], "key 'k0'") &&
              strstr(es.msg[0], "count is 0"));
        CHECK(strstr(es.msg[1], "index is not below"));
        CHECK(strstr(es.msg[5], "999 bytes"));
        CHECK(strstr(es.msg[6], "key 'k6'") && strstr(es.msg[6], "does not fit"));
        CHECK(strstr(es.msg[7], "offset 9") && strstr(es.msg[7], "not decimal"));
        CHECK(strstr(es.msg[9], "16 bytes"));
    }
    crecs_free(&rs);
    rv_consumer_close(c);
    rv_producer_close(raw);
    rv_broker_close(b);
}

static int assigned_calls;

static void count_assign(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps,
                         size_t n) {
    assigned_calls++;
}

static int64_t committed(rv_consumer_t *c, const char *topic, int32_t partition) {
    rv_topic_partition_t tp = {topic, partition, 0};
    CHECK_INT(rv_consumer_committed(c, &tp, 1, NULL), RV_OK);
    return tp.offset;
}

static int64_t position(rv_consumer_t *c, const char *topic, int32_t partition) {
    rv_topic_partition_t tp = {topic, partition, 0};
    CHECK_INT(rv_consumer_position(c, &tp, 1, NULL), RV_OK);
    return tp.offset;
}

static void test_commit_capped(void) {
    rv_broker_t *b = open_memory(NULL);
    REQUIRE(b && create(b, "cap", 2));
    rv_producer_t *raw = raw_producer(b);
    REQUIRE(raw != NULL);
    unsigned char v[2000];
    fill(v, sizeof v, 8);
    send_plain(raw, "cap", 0, "p0");                              /* p0: 0 */
    send_plain(raw, "cap", 1, "a");                               /* p1: 0 */
    send_raw(raw, "cap", 1, "v", 'V', "0", "2", "2000", v, 1000); /* p1: 1 */
    send_plain(raw, "cap", 1, "b");                               /* p1: 2 */
    flush(raw);

    /* A subscribed member: the layer learns its partitions from on_assign. */
    rv_consumer_callbacks_t cbs = {.on_assign = count_assign};
    const char *pairs[] = {"auto.offset.reset=earliest", NULL};
    rv_consumer_t *c = consumer(b, "g", pairs, &cbs);
    REQUIRE(c != NULL);
    const char *topics[] = {"cap"};
    CHECK_INT(rv_consumer_subscribe(c, topics, 1, NULL), RV_OK);
    crecs_t rs = {0};
    collect(c, &rs, 3, 3000, 50);
    CHECK_INT(rs.n, 3);
    CHECK(assigned_calls >= 1);          /* the user's callback still runs */
    CHECK_INT(position(c, "cap", 1), 3); /* the real read position */
    CHECK_INT(rv_consumer_commit(c, NULL, 0, NULL), RV_OK);
    CHECK_INT(committed(c, "cap", 0), 1);
    CHECK_INT(committed(c, "cap", 1), 1); /* held at the incomplete value's first chunk */
    rv_topic_partition_t tp[2] = {{"cap", 1, 3}, {"cap", 0, 1}};
    CHECK_INT(rv_consumer_commit(c, tp, 2, NULL), RV_OK);
    CHECK_INT(committed(c, "cap", 1), 1);
    tp[0].offset = 1;
    CHECK_INT(rv_consumer_commit(c, tp, 1, NULL), RV_OK);
    CHECK_INT(committed(c, "cap", 1), 1);
    rv_consumer_close(c);

    /* A new member resumes at the value's first chunk and reads all of it. */
    send_raw(raw, "cap", 1, "v", 'V', "1", "2", "2000", v + 1000, 1000); /* p1: 3 */
    flush(raw);
    c = consumer(b, "g", pairs, NULL);
    REQUIRE(c != NULL);
    CHECK_INT(rv_consumer_subscribe(c, topics, 1, NULL), RV_OK);
    crecs_free(&rs);
    collect(c, &rs, 2, 3000, 50);
    REQUIRE(rs.n == 2);
    CHECK_STR((const char *)rs.v[0].value, "b"); /* read again: at least once */
    CHECK_INT(rs.v[1].offset, 1);
    CHECK(rs.v[1].value_len == sizeof v && memcmp(rs.v[1].value, v, sizeof v) == 0);
    CHECK_INT(rv_consumer_commit(c, NULL, 0, NULL), RV_OK);
    CHECK_INT(committed(c, "cap", 1), 4); /* complete: nothing holds the commit back */
    crecs_free(&rs);
    rv_consumer_close(c);
    rv_producer_close(raw);
    rv_broker_close(b);
}

static void test_seek_and_tails(void) {
    rv_broker_t *b = open_memory(NULL);
    REQUIRE(b && create(b, "seek", 1));
    rv_producer_t *raw = raw_producer(b);
    REQUIRE(raw != NULL);
    unsigned char v[3000];
    fill(v, sizeof v, 9);
    send_raw(raw, "seek", 0, "v", 'S', "0", "3", "3000", v, 1000);        /* 0 */
    send_raw(raw, "seek", 0, "v", 'S', "1", "3", "3000", v + 1000, 1000); /* 1 */
    send_plain(raw, "seek", 0, "n");                                      /* 2 */
    flush(raw);
    errors_t es = {0};
    rv_consumer_callbacks_t cbs = {.opaque = &es, .on_error = on_error};
    rv_consumer_t *c = consumer(b, NULL, NULL, &cbs);
    REQUIRE(c != NULL);
    assign(c, "seek", 1, RV_OFFSET_BEGINNING);
    crecs_t rs = {0};
    collect(c, &rs, 1, 3000, 50);
    CHECK_INT(rs.n, 1);
    /* Seeking back forgets the two chunks held; they are read again. */
    CHECK_INT(rv_consumer_seek(c, "seek", 0, 0, NULL), RV_OK);
    send_raw(raw, "seek", 0, "v", 'S', "2", "3", "3000", v + 2000, 1000); /* 3 */
    flush(raw);
    collect(c, &rs, 3, 3000, 50);
    REQUIRE(rs.n == 3);
    CHECK_STR((const char *)rs.v[1].value, "n");
    CHECK_INT(rs.v[2].offset, 0);
    CHECK(rs.v[2].value_len == sizeof v && memcmp(rs.v[2].value, v, sizeof v) == 0);
    /* A value delivered before is delivered again after a seek back. */
    CHECK_INT(rv_consumer_seek(c, "seek", 0, 0, NULL), RV_OK);
    collect(c, &rs, 5, 3000, 50);
    REQUIRE(rs.n == 5);
    CHECK_INT(rs.v[4].offset, 0);
    CHECK_INT(rs.v[4].value_len, sizeof v);
    /* Starting inside a value skips its tail, without a report. */
    CHECK_INT(rv_consumer_seek(c, "seek", 0, 1, NULL), RV_OK);
    collect(c, &rs, 6, 3000, 100);
    CHECK_INT(rs.n, 6);
    CHECK_STR((const char *)rs.v[5].value, "n");
    CHECK_INT(es.n, 0);
    crecs_free(&rs);
    rv_consumer_close(c);
    rv_producer_close(raw);
    rv_broker_close(b);
}

static void test_keyless_one_partition(void) {
    rv_broker_t *b = open_memory(NULL);
    REQUIRE(b && create(b, "nokey", 4));
    static reports_t rp = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rv_producer_t *p = splitting_producer(b, on_delivery, &rp);
    REQUIRE(p != NULL);
    unsigned char v[6000];
    for (int i = 0; i < 8; i++) {
        fill(v, sizeof v, (uint64_t)(100 + i));
        rv_record_t r = {
            .topic = "nokey", .partition = RV_PARTITION_ANY, .value = v, .value_len = sizeof v};
        CHECK_INT(rv_producer_send(p, &r, (void *)(uintptr_t)i), RV_OK);
    }
    flush(p);
    CHECK_INT(rp.n, 8);
    rv_consumer_t *c = consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);
    assign(c, "nokey", 4, RV_OFFSET_BEGINNING);
    crecs_t rs = {0};
    collect(c, &rs, 8, 3000, 50);
    CHECK_INT(rs.n, 8);
    int per_partition[4] = {0};
    for (size_t i = 0; i < rs.n; i++) {
        crec_t *r = &rs.v[i];
        CHECK(r->key == NULL);
        bool found = false;
        for (size_t k = 0; k < rp.n && !found; k++) {
            if (rp.v[k].partition == r->partition && rp.v[k].offset == r->offset) {
                fill(v, sizeof v, 100 + rp.v[k].opaque);
                found = r->value_len == sizeof v && memcmp(r->value, v, sizeof v) == 0;
            }
        }
        CHECK_MSG(found, "partition %d offset %lld: no matching value", (int)r->partition,
                  (long long)r->offset);
        per_partition[r->partition]++;
    }
    for (int i = 0; i < 4; i++) {
        CHECK_INT(per_partition[i], 2); /* round-robin by value, not by chunk */
    }
    crecs_free(&rs);
    rv_consumer_close(c);
    rv_producer_close(p);
    rv_broker_close(b);
}

int main(void) {
    RV_RUN(test_round_trip_sizes);
    RV_RUN(test_split_off_and_limits);
    RV_RUN(test_interleaved_threads_and_partitions);
    RV_RUN(test_interleaved_by_hand);
    RV_RUN(test_timeout_reported);
    RV_RUN(test_memory_bound);
    RV_RUN(test_corrupt_headers);
    RV_RUN(test_commit_capped);
    RV_RUN(test_seek_and_tails);
    RV_RUN(test_keyless_one_partition);
    return rv_test_finish();
}
