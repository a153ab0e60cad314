/*
 * test_chunk_large.c: a value of 50 MiB through brokers whose limit is 1 MiB, on `local:` and
 * on `kafka://` (librdkafka's mock cluster), split into chunks by the producer and reassembled
 * by the consumer (src/broker/chunk.c).
 *
 * On each broker a consumer thread is started first and reads while the producer sends (the
 * value is sent once the consumer has read a marker record, so it is certainly fetching), the
 * value is random bytes checked by CRC32C and a 64-bit FNV-1a hash, and the test checks the
 * one delivery report, the record's offset, key and headers, that the partition holds chunks
 * of at most 1 MiB, and that without splitting the same value is refused with RV_ERR_LIMIT.
 * The mock cluster keeps only 5 MiB per partition, so its produce responses are slowed (an
 * RTT of 100 ms, one request in flight) while the consumer fetches up to 16 MiB at a time: the
 * consumer stays within a few chunks of the producer. The mock is reached through dlopen() of
 * librdkafka, so this test builds whether or not the library links it; when this library has
 * no kafka:// broker (rv_broker_open() answers RV_ERR_UNSUPPORTED) the Kafka part says so and
 * is skipped. The test must stay well under a minute under AddressSanitizer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rivulet/broker.h"
#include "rivulet/clock.h"
#include "rivulet/config.h"
#include "rivulet/hash.h"
#include "rv_test.h"

#if defined(__has_include)
#if __has_include(<librdkafka/rdkafka_mock.h>)
#include <dlfcn.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#define HAVE_RDKAFKA_HEADERS 1
#endif
#endif

#define BIG ((size_t)50 * 1024 * 1024)
#define LIMIT_BYTES 1048576

/* ---- helpers --------------------------------------------------------------------------------- */

static uint64_t fnv1a64(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ p[i]) * 0x100000001b3u;
    }
    return h;
}

/* Random bytes (xorshift64*, seeded from the clock), 8 at a time. */
static void fill_random(unsigned char *buf, size_t len) {
    uint64_t x = (uint64_t)rv_clock_wall_ns() | 1;
    for (size_t i = 0; i < len; i += 8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t v = x * 0x2545F4914F6CDD1Du;
        memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
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

/* What the consumer thread saw. */
typedef struct seen_s {
    rv_broker_t *broker;
    const char *topic;
    const char *const *conf;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool ready;            /* it has read the marker record: it is fetching */
    int64_t marker_offset; /* the marker's offset */
    size_t records;        /* records other than the marker */
    size_t len;
    int64_t offset;
    uint32_t crc;
    uint64_t fnv;
    bool key_ok;
    bool headers_ok;
    int errors; /* on_error reports */
    char error[640];
    int failures; /* the thread's own failures, checked by the main thread */
    char failure[640];
    int64_t elapsed_ms;
} seen_t;

static void on_error(void *opaque, rv_consumer_t *c, rv_err_t err, const char *message) {
    seen_t *s = opaque;
    s->errors++;
    snprintf(s->error, sizeof s->error, "%s: %s", rv_err_name(err), message);
}

/* Notes a failure of the consumer thread (the CHECK counters belong to the main thread). */
static void thread_failed(seen_t *s, const char *what, const rv_error_t *err) {
    if (s->failures++ == 0) {
        snprintf(s->failure, sizeof s->failure, "%s: %s", what, rv_error_message(err));
    }
}

static void *consumer_main(void *arg) {
    seen_t *s = arg;
    rv_conf_t *conf = rv_conf_new();
    rv_error_t *err = NULL;
    for (size_t i = 0; conf && s->conf && s->conf[i]; i++) {
        if (rv_conf_set_pair(conf, s->conf[i], &err) != RV_OK) {
            thread_failed(s, s->conf[i], err);
        }
    }
    rv_consumer_opts_t opts = {.conf = conf, .callbacks = {.opaque = s, .on_error = on_error}};
    rv_consumer_t *c = rv_consumer_new(s->broker, &opts, &err);
    rv_conf_destroy(conf);
    if (!c) {
        thread_failed(s, "consumer", err);
    }
    rv_topic_partition_t tp = {s->topic, 0, RV_OFFSET_BEGINNING};
    if (c && rv_consumer_assign(c, &tp, 1, &err) != RV_OK) {
        thread_failed(s, "assign", err);
    }
    int64_t start = rv_clock_mono_ms();
    while (c && s->len == 0 && rv_clock_mono_ms() - start < 40000) {
        const rv_record_t *recs = NULL;
        size_t n = 0;
        if (rv_consumer_poll(c, &recs, 64, &n, 100, &err) != RV_OK) {
            thread_failed(s, "poll", err);
        }
        for (size_t i = 0; i < n; i++) {
            const rv_record_t *r = &recs[i];
            if (r->key_len == 6 && memcmp(r->key, "marker", 6) == 0) {
                pthread_mutex_lock(&s->mu);
                s->marker_offset = r->offset;
                s->ready = true;
                pthread_cond_broadcast(&s->cond);
                pthread_mutex_unlock(&s->mu);
                continue;
            }
            s->records++;
            s->len = r->value_len;
            s->offset = r->offset;
            s->crc = rv_crc32c(0, r->value, r->value_len);
            s->fnv = fnv1a64(r->value, r->value_len);
            s->key_ok = r->key_len == 3 && memcmp(r->key, "big", 3) == 0;
            s->headers_ok = r->header_count == 1 && strcmp(r->headers[0].name, "kind") == 0 &&
                            r->headers[0].value_len == 4 &&
                            memcmp(r->headers[0].value, "blob", 4) == 0;
        }
    }
    s->elapsed_ms = rv_clock_mono_ms() - start;
    rv_error_destroy(err);
    rv_consumer_close(c);
    pthread_mutex_lock(&s->mu);
    s->ready = true; /* even when it failed, so the main thread does not wait for ever */
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

typedef struct report_s {
    int n;
    rv_err_t err;
    int64_t offset;
} report_t;

static void on_delivery(void *opaque, const rv_record_t *r, rv_err_t err, void *rec_opaque) {
    report_t *rp = opaque;
    rp->n++;
    rp->err = err;
    rp->offset = r->offset;
}

/*
 * Sends `value` (BIG bytes) to partition 0 of `topic` with producer properties `pconf` while
 * a consumer thread with properties `cconf`, started first, reads it; checks what arrived.
 */
static void big_round_trip(const char *what, rv_broker_t *b, const char *topic,
                           const unsigned char *value, const char *const *pconf,
                           const char *const *cconf) {
    uint32_t crc = rv_crc32c(0, value, BIG);
    uint64_t fnv = fnv1a64(value, BIG);
    seen_t s = {.broker = b, .topic = topic, .conf = cconf, .offset = -1, .marker_offset = -1};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cond, NULL);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, consumer_main, &s) == 0);

    report_t rp = {0};
    rv_conf_t *conf = conf_of(pconf);
    rv_producer_opts_t popts = {.conf = conf, .delivery_cb = on_delivery, .opaque = &rp};
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(b, &popts, &err);
    rv_conf_destroy(conf);
    CHECK_MSG(p != NULL, "%s: producer: %s", what, rv_error_message(err));
    if (p) { /* the marker, then wait until the consumer has read it */
        rv_record_t m = {.topic = topic,
                         .partition = 0,
                         .key = "marker",
                         .key_len = 6,
                         .value = "m",
                         .value_len = 1};
        CHECK_INT(rv_producer_send(p, &m, NULL), RV_OK);
        CHECK_MSG(rv_producer_flush(p, 30000, &err) == RV_OK, "%s: flush: %s", what,
                  rv_error_message(err));
        rp.n = 0;
    }
    pthread_mutex_lock(&s.mu);
    while (!s.ready) {
        pthread_cond_wait(&s.cond, &s.mu);
    }
    pthread_mutex_unlock(&s.mu);
    int64_t t0 = rv_clock_mono_ms();
    if (p) {
        rv_header_t h = {"kind", "blob", 4};
        rv_record_t r = {.topic = topic,
                         .partition = 0,
                         .key = "big",
                         .key_len = 3,
                         .value = value,
                         .value_len = BIG,
                         .headers = &h,
                         .header_count = 1};
        rv_err_t e;
        while ((e = rv_producer_send(p, &r, NULL)) == RV_ERR_AGAIN) {
            rv_producer_poll(p, 10);
        }
        CHECK_MSG(e == RV_OK, "%s: send: %s", what, rv_err_name(e));
        CHECK_MSG(rv_producer_flush(p, 50000, &err) == RV_OK, "%s: flush: %s", what,
                  rv_error_message(err));
        rv_producer_close(p);
    }
    int64_t sent_ms = rv_clock_mono_ms() - t0;
    pthread_join(th, NULL);
    rv_error_destroy(err);

    CHECK_MSG(s.failures == 0, "%s: the consumer failed %d times, first: %s", what, s.failures,
              s.failure);
    CHECK_INT(s.marker_offset, 0);
    CHECK_INT(rp.n, 1);
    CHECK_INT(rp.err, RV_OK);
    CHECK_INT(rp.offset, 1); /* the first chunk's, after the marker */
    CHECK_INT(s.records, 1);
    CHECK_INT(s.len, BIG);
    CHECK_INT(s.offset, 1);
    CHECK_MSG(s.crc == crc && s.fnv == fnv, "%s: the value differs (crc %08x/%08x)", what,
              (unsigned)s.crc, (unsigned)crc);
    CHECK(s.key_ok);
    CHECK(s.headers_ok);
    CHECK_MSG(s.errors == 0, "%s: %d reports, the last: %s", what, s.errors, s.error);
    int64_t lo = 0, hi = 0;
    CHECK_INT(rv_broker_watermarks(b, topic, 0, &lo, &hi, NULL), RV_OK);
    CHECK_MSG(hi > (int64_t)(BIG / LIMIT_BYTES), "%s: %lld records for 50 MiB", what,
              (long long)hi);
    fprintf(stderr, "     %s 50 MiB in %lld chunk records, sent in %lld ms, read in %lld ms\n",
            what, (long long)(hi - 1), (long long)sent_ms, (long long)s.elapsed_ms);
    pthread_cond_destroy(&s.cond);
    pthread_mutex_destroy(&s.mu);
}

/* Without splitting the broker refuses the value: its limit is real. */
static void refused_whole(const char *what, rv_broker_t *b, const char *topic,
                          const unsigned char *value) {
    const char *pairs[] = {"message.split=false", "message.split.bytes=67108864", NULL};
    rv_conf_t *conf = conf_of(pairs);
    rv_producer_opts_t popts = {.conf = conf};
    rv_producer_t *p = rv_producer_new(b, &popts, NULL);
    rv_conf_destroy(conf);
    REQUIRE(p != NULL);
    rv_record_t r = {.topic = topic, .partition = 0, .value = value, .value_len = BIG};
    rv_err_t e = rv_producer_send(p, &r, NULL);
    if (e == RV_OK) { /* a broker may only find out when the batch is sent */
        rv_producer_flush(p, 10000, NULL);
    }
    CHECK_MSG(e == RV_ERR_LIMIT || e == RV_OK, "%s: %s", what, rv_err_name(e));
    rv_producer_close(p);
    int64_t lo = 0, hi = 0;
    CHECK_INT(rv_broker_watermarks(b, topic, 0, &lo, &hi, NULL), RV_OK);
    CHECK_INT(hi, 0);
}

/* ---- local: ---------------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    return remove(path);
}

static void test_local(const unsigned char *value) {
    char dir[] = "/tmp/rv-chunk-large-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char url[64];
    snprintf(url, sizeof url, "local:%s", dir);
    const char *bpairs[] = {"local.fsync.policy=never", NULL};
    rv_conf_t *bconf = conf_of(bpairs);
    rv_broker_opts_t bopts = {.conf = bconf};
    rv_error_t *err = NULL;
    rv_broker_t *b = rv_broker_open(url, &bopts, &err);
    rv_conf_destroy(bconf);
    CHECK_MSG(b != NULL, "open %s: %s", url, rv_error_message(err));
    rv_error_destroy(err);
    if (b) {
        const char *tpairs[] = {"max.message.bytes=1048576", NULL};
        rv_conf_t *tconf = conf_of(tpairs);
        CHECK_INT(rv_broker_create_topic(b, "big", 1, tconf, NULL), RV_OK);
        rv_conf_destroy(tconf);
        refused_whole("local:", b, "big", value);
        const char *pconf[] = {"message.split.bytes=1000000", NULL};
        big_round_trip("local:", b, "big", value, pconf, NULL);
        rv_broker_close(b);
    }
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- kafka:// on librdkafka's mock cluster --------------------------------------------------- */

#ifdef HAVE_RDKAFKA_HEADERS
/* librdkafka's functions, looked up at run time. */
typedef struct rdk_s {
    void *dl;
    __typeof__(rd_kafka_conf_new) *conf_new;
    __typeof__(rd_kafka_conf_set) *conf_set;
    __typeof__(rd_kafka_new) *kafka_new;
    __typeof__(rd_kafka_destroy) *kafka_destroy;
    __typeof__(rd_kafka_mock_cluster_new) *cluster_new;
    __typeof__(rd_kafka_mock_cluster_destroy) *cluster_destroy;
    __typeof__(rd_kafka_mock_cluster_bootstraps) *bootstraps;
    __typeof__(rd_kafka_mock_topic_create) *topic_create;
    __typeof__(rd_kafka_mock_broker_set_rtt) *set_rtt;
} rdk_t;

static bool rdk_load(rdk_t *k) {
    k->dl = dlopen("librdkafka.so.1", RTLD_NOW);
    if (!k->dl) {
        return false;
    }
#define RDK_SYM(field, name)                                                                       \
    do {                                                                                           \
        *(void **)&k->field = dlsym(k->dl, name);                                                  \
        if (!k->field) {                                                                           \
            return false;                                                                          \
        }                                                                                          \
    } while (0)
    RDK_SYM(conf_new, "rd_kafka_conf_new");
    RDK_SYM(conf_set, "rd_kafka_conf_set");
    RDK_SYM(kafka_new, "rd_kafka_new");
    RDK_SYM(kafka_destroy, "rd_kafka_destroy");
    RDK_SYM(cluster_new, "rd_kafka_mock_cluster_new");
    RDK_SYM(cluster_destroy, "rd_kafka_mock_cluster_destroy");
    RDK_SYM(bootstraps, "rd_kafka_mock_cluster_bootstraps");
    RDK_SYM(topic_create, "rd_kafka_mock_topic_create");
    RDK_SYM(set_rtt, "rd_kafka_mock_broker_set_rtt");
#undef RDK_SYM
    return true;
}

static void test_kafka(const unsigned char *value) {
    rdk_t k = {0};
    if (!rdk_load(&k)) {
        fprintf(stderr, "     kafka://: librdkafka cannot be loaded; this part is skipped\n");
        if (k.dl) {
            dlclose(k.dl);
        }
        return;
    }
    char errstr[256];
    rd_kafka_conf_t *kconf = k.conf_new();
    k.conf_set(kconf, "log_level", "0", errstr, sizeof errstr);
    rd_kafka_t *rk = k.kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, sizeof errstr);
    REQUIRE(rk != NULL);
    rd_kafka_mock_cluster_t *mc = k.cluster_new(rk, 1);
    REQUIRE(mc != NULL);
    CHECK_INT(k.topic_create(mc, "big", 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    char url[256];
    snprintf(url, sizeof url, "kafka://%s", k.bootstraps(mc));
    rv_error_t *err = NULL;
    rv_broker_t *b = rv_broker_open(url, NULL, &err);
    if (!b && rv_error_code(err) == RV_ERR_UNSUPPORTED) {
        fprintf(stderr,
                "     kafka://: not built into this library (%s); this part is "
                "skipped\n",
                rv_error_message(err));
    } else {
        CHECK_MSG(b != NULL, "open %s: %s", url, rv_error_message(err));
    }
    rv_error_destroy(err);
    if (b) {
        refused_whole("kafka://", b, "big", value);
        /* Produce responses come 100 ms late and one at a time, so the consumer, fetching up to
         * 16 MiB at once, reads each chunk long before the mock's 5 MiB window drops it. The
         * mock answers an empty fetch only after fetch.wait.max.ms, new data or not: keep it
         * short. */
        k.set_rtt(mc, 1, 100);
        const char *pconf[] = {"message.split.bytes=1000000",
                               "kafka.max.in.flight.requests.per.connection=1", NULL};
        const char *cconf[] = {"kafka.max.partition.fetch.bytes=16777216",
                               "kafka.fetch.max.bytes=16777216", "kafka.fetch.wait.max.ms=10",
                               NULL};
        big_round_trip("kafka://", b, "big", value, pconf, cconf);
        rv_broker_close(b);
    }
    k.cluster_destroy(mc);
    k.kafka_destroy(rk);
    /* librdkafka stays loaded: its threads may still be ending. */
}
#else
static void test_kafka(const unsigned char *value) {
    fprintf(stderr, "     kafka://: built without librdkafka's headers; this part is skipped\n");
}
#endif

static unsigned char *big_value;

static void test_local_50mib(void) {
    test_local(big_value);
}

static void test_kafka_50mib(void) {
    test_kafka(big_value);
}

int main(void) {
    big_value = malloc(BIG);
    if (!big_value) {
        return 1;
    }
    fill_random(big_value, BIG);
    RV_RUN(test_local_50mib);
    RV_RUN(test_kafka_50mib);
    free(big_value);
    return rv_test_finish();
}
