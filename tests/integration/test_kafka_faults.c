/*
 * test_kafka_faults.c: the `kafka://` broker under faults, on a librdkafka mock cluster of
 * three brokers that the test starts on loopback TCP and breaks on purpose.
 *
 * Records are produced while the cluster refuses produce requests, loses a broker and gets it
 * back, moves partition leaders and goes dark for a moment; then they are consumed while fetch
 * and offset-commit requests fail and a broker goes down and up again. Every acknowledged
 * record must be stored exactly once (the idempotent producer) and read exactly once, in order
 * per partition, and the only errors that reach the application are the documented ones: none
 * for faults the client rides out, RV_ERR_CONFIG for a commit the broker refuses for good, and
 * RV_ERR_TRANSPORT, naming the bootstrap servers, once no broker has answered for
 * broker.availability.timeout.ms. The test must never depend on a Kafka server outside the
 * process, and every wait in it is bounded.
 *
 * librdkafka 2.0.2's mock does not check the sequence numbers of an idempotent producer that is
 * not transactional. When a later batch of a partition is accepted while an earlier one was
 * refused or timed out, librdkafka infers that the earlier batch was stored, as a real broker
 * (which refuses the later one with OUT_OF_ORDER_SEQUENCE otherwise) guarantees; the mock has
 * not stored it. So the producer here keeps one request in flight per connection and leaders
 * move between batches: then no later batch can overtake an earlier one on the mock.
 */
/* ctest-labels: threads */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka_mock.h"
#include "kafka_tsan.h"
#include "rivulet/broker.h"
#include "rivulet/clock.h"
#include "rivulet/hash.h"
#include "rv_test.h"

/* librdkafka's request type numbers (the protocol's ApiKeys). */
enum { API_PRODUCE = 0, API_FETCH = 1, API_OFFSET_COMMIT = 8 };

enum { N = 3000, P = 4, KEYS = 50 };

static km_cluster_t g_km;
static char g_topic[64];

static void set_all(bool up) {
    for (int32_t id = 1; id <= 3; id++) {
        if (up) {
            rd_kafka_mock_broker_set_up(g_km.mock, id);
        } else {
            rd_kafka_mock_broker_set_down(g_km.mock, id);
        }
    }
}

/* Opens the mock with properties that suit it (see kafka_mock.h) plus `extra`. */
static rv_broker_t *open_mock(const char *const *extra) {
    static const char *const base[] = {KM_GROUP_PAIRS,
                                       "kafka.reconnect.backoff.ms=50",
                                       "kafka.reconnect.backoff.max.ms=300",
                                       "kafka.retry.backoff.ms=50",
                                       "broker.availability.timeout.ms=30000", NULL};
    /* RV_TEST_LOG=1 shows the broker's log lines, to see what the faults did. */
    return km_open(g_km.url, base, extra);
}

/* ---- producing through faults --------------------------------------------------------------- */

/* What the delivery report of record i said. */
typedef struct ack_s {
    int reports;
    rv_err_t err;
    int32_t partition;
    int64_t offset;
} ack_t;

static ack_t g_acks[N];

static void on_ack(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    ack_t *acks = opaque;
    uintptr_t i = (uintptr_t)rec_opaque;
    if (i >= N) {
        return;
    }
    acks[i].reports++;
    acks[i].err = err;
    acks[i].partition = rec->partition;
    acks[i].offset = rec->offset;
}

static void key_of(char *buf, size_t size, int i) {
    snprintf(buf, size, "key-%d", i % KEYS);
}

/* Sends record i (key "key-<i mod KEYS>", value "<i>"), serving reports while the queue is
 * full; false if it could not be queued in 30 s. */
static bool send_one(rv_producer_t *p, int i) {
    char k[32], v[32];
    key_of(k, sizeof k, i);
    snprintf(v, sizeof v, "%d", i);
    rv_record_t r = {.topic = g_topic,
                     .partition = RV_PARTITION_ANY,
                     .key = k,
                     .key_len = strlen(k),
                     .value = v,
                     .value_len = strlen(v)};
    int64_t deadline = rv_clock_mono_ms() + 30000;
    rv_err_t e;
    while ((e = rv_producer_send(p, &r, (void *)(uintptr_t)i)) == RV_ERR_AGAIN &&
           rv_clock_mono_ms() < deadline) {
        rv_producer_poll(p, 10);
    }
    CHECK_MSG(e == RV_OK, "send of record %d: %s", i, rv_err_name(e));
    return e == RV_OK;
}

static void test_produce_through_faults(void) {
    rv_broker_t *b = open_mock(NULL);
    REQUIRE(b != NULL);
    snprintf(g_topic, sizeof g_topic, "faults-%ld", (long)getpid());
    REQUIRE(rd_kafka_mock_topic_create(g_km.mock, g_topic, P, 3) == RD_KAFKA_RESP_ERR_NO_ERROR);
    rv_conf_t *pconf = rv_conf_new();
    CHECK_INT(rv_conf_set(pconf, "kafka.max.in.flight.requests.per.connection", "1", NULL), RV_OK);
    rv_producer_opts_t po = {.conf = pconf, .delivery_cb = on_ack, .opaque = g_acks};
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(b, &po, &err);
    rv_conf_destroy(pconf);
    REQUIRE(p != NULL);
    bool downed_all = false;
    int64_t all_down_at = 0;
    for (int i = 0; i < N; i++) {
        switch (i) {
        case 300: /* produce requests refused for a while: retried, not duplicated */
            rd_kafka_mock_push_request_errors(
                g_km.mock, API_PRODUCE, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
                RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
            break;
        case 800: /* a broker goes down mid-stream ... */
            rd_kafka_mock_broker_set_down(g_km.mock, 1);
            break;
        case 1100: /* ... and comes back */
            rd_kafka_mock_broker_set_up(g_km.mock, 1);
            break;
        case 1500:
            /* Leaders move, between batches: with batches in flight on both sides of the move,
             * a later one can reach the new leader before an earlier one's retry, which a real
             * broker refuses (OUT_OF_ORDER_SEQUENCE) and the mock accepts (see the top). */
            CHECK_INT(rv_producer_flush(p, 30000, NULL), RV_OK);
            rd_kafka_mock_partition_set_leader(g_km.mock, g_topic, 0, 3);
            rd_kafka_mock_partition_set_leader(g_km.mock, g_topic, 1, 1);
            rd_kafka_mock_partition_set_leader(g_km.mock, g_topic, 2, 2);
            rd_kafka_mock_partition_set_leader(g_km.mock, g_topic, 3, 2);
            break;
        case 2000:
            rd_kafka_mock_push_request_errors(
                g_km.mock, API_PRODUCE, 4, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
                RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
            break;
        case 2400: /* the whole cluster goes dark for less than the availability timeout */
            set_all(false);
            downed_all = true;
            all_down_at = rv_clock_mono_ms();
            break;
        default:
            break;
        }
        if (downed_all && rv_clock_mono_ms() - all_down_at > 700) {
            set_all(true);
            downed_all = false;
        }
        if (!send_one(p, i)) {
            break;
        }
        if (i == 1500) {
            /* The first record after the move finds the new leaders alone. */
            CHECK_INT(rv_producer_flush(p, 30000, NULL), RV_OK);
        }
        if (i % 2 == 1) {
            rv_producer_poll(p, 0);
            rv_clock_sleep_ms(2); /* spread the records over the faults, about 3 s */
        }
    }
    if (downed_all) {
        rv_clock_sleep_ms(700);
        set_all(true);
    }
    int64_t t0 = rv_clock_mono_ms();
    rv_err_t e = rv_producer_flush(p, 60000, &err);
    CHECK_MSG(e == RV_OK, "flush: %s", rv_error_message(err));
    fprintf(stderr, "produced %d records through the faults; the final flush took %lld ms\n", N,
            (long long)(rv_clock_mono_ms() - t0));
    rv_producer_close(p);

    /* Every record acknowledged once, without error, at an offset of its key's partition. */
    int64_t last[P];
    int count[P] = {0};
    for (int k = 0; k < P; k++) {
        last[k] = -1;
    }
    int failed = 0;
    for (int i = 0; i < N; i++) {
        const ack_t *a = &g_acks[i];
        CHECK_MSG(a->reports == 1, "record %d: %d reports", i, a->reports);
        if (a->err != RV_OK) {
            if (failed++ < 5) {
                fprintf(stderr, "record %d failed: %s\n", i, rv_err_name(a->err));
            }
            continue;
        }
        char k[32];
        key_of(k, sizeof k, i);
        CHECK_INT(a->partition, rv_murmur2_partition(k, strlen(k), P));
        if (a->partition < 0 || a->partition >= P) {
            continue;
        }
        /* One producer's records of a partition are stored in the order they were sent. */
        CHECK_MSG(a->offset > last[a->partition], "record %d at offset %lld after %lld", i,
                  (long long)a->offset, (long long)last[a->partition]);
        last[a->partition] = a->offset;
        count[a->partition]++;
    }
    CHECK_MSG(failed == 0, "%d records failed although every fault was retriable", failed);
    /* Stored exactly once: each partition holds as many records as were acknowledged in it. */
    for (int k = 0; k < P; k++) {
        int64_t lo = -1, hi = -1;
        CHECK_INT(rv_broker_watermarks(b, g_topic, k, &lo, &hi, NULL), RV_OK);
        CHECK_INT(lo, 0);
        CHECK_MSG(hi == count[k], "partition %d holds %lld records, %d acknowledged", k,
                  (long long)hi, count[k]);
    }
    rv_error_destroy(err);
    rv_broker_close(b);
}

/* ---- consuming through faults --------------------------------------------------------------- */

static rv_err_t commit_all(rv_consumer_t *c, rv_error_t **err) {
    return rv_consumer_commit(c, NULL, 0, err);
}

static void test_consume_through_faults(void) {
    rv_broker_t *b = open_mock(NULL);
    REQUIRE(b != NULL);
    char g[64];
    snprintf(g, sizeof g, "g-faults-%ld", (long)getpid());
    /* The group's coordinator stays up: broker 2 is the one that goes down. */
    rd_kafka_mock_coordinator_set(g_km.mock, "group", g, 1);
    rv_conf_t *conf = rv_conf_new();
    CHECK_INT(rv_conf_set(conf, "auto.offset.reset", "earliest", NULL), RV_OK);
    rv_consumer_opts_t co = {.conf = conf, .group = g};
    rv_error_t *err = NULL;
    rv_consumer_t *c = rv_consumer_new(b, &co, &err);
    rv_conf_destroy(conf);
    REQUIRE(c != NULL);
    const char *topics[] = {g_topic};
    CHECK_INT(rv_consumer_subscribe(c, topics, 1, &err), RV_OK);

    int expected = 0;
    for (int i = 0; i < N; i++) {
        expected += g_acks[i].err == RV_OK && g_acks[i].reports == 1;
    }
    static unsigned char seen[N];
    memset(seen, 0, sizeof seen);
    int64_t next[P];
    for (int k = 0; k < P; k++) {
        next[k] = 0;
    }
    int got = 0, dupes = 0, disorder = 0, errors = 0, commits = 0;
    bool fetch_errs = false, down = false, commit_errs = false, refused = false;
    int64_t down_at = 0;
    int64_t deadline = rv_clock_mono_ms() + 45000;
    while (got < expected && rv_clock_mono_ms() < deadline) {
        const rv_record_t *recs;
        size_t n = 0;
        rv_err_t e = rv_consumer_poll(c, &recs, 200, &n, 100, &err);
        if (e != RV_OK) {
            errors++;
            CHECK_MSG(false, "poll: %s", rv_error_message(err));
        }
        for (size_t j = 0; j < n; j++) {
            int i = atoi(recs[j].value ? (const char *)recs[j].value : "-1");
            int32_t k = recs[j].partition;
            if (i < 0 || i >= N || k < 0 || k >= P) {
                CHECK_MSG(false, "unexpected record at %d/%lld", (int)k,
                          (long long)recs[j].offset);
                continue;
            }
            if (seen[i]++) {
                dupes++;
                continue;
            }
            got++;
            CHECK_MSG(g_acks[i].partition == k && g_acks[i].offset == recs[j].offset,
                      "record %d read at %d/%lld, acknowledged at %d/%lld", i, (int)k,
                      (long long)recs[j].offset, (int)g_acks[i].partition,
                      (long long)g_acks[i].offset);
            disorder += recs[j].offset < next[k];
            next[k] = recs[j].offset + 1;
        }
        if (!fetch_errs && got >= 400) {
            rd_kafka_mock_push_request_errors(
                g_km.mock, API_FETCH, 5, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
                RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION);
            fetch_errs = true;
        }
        if (!down && got >= 1200 && down_at == 0) {
            rd_kafka_mock_broker_set_down(g_km.mock, 2);
            down = true;
            down_at = rv_clock_mono_ms();
        }
        if (down && rv_clock_mono_ms() - down_at > 1500) {
            rd_kafka_mock_broker_set_up(g_km.mock, 2);
            down = false;
        }
        if (got / 700 > commits) {
            commits++;
            if (!commit_errs) {
                /* The coordinator moves and times out: commit rides it out. */
                rd_kafka_mock_push_request_errors(g_km.mock, API_OFFSET_COMMIT, 3,
                                                  RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                                  RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                                                  RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
                commit_errs = true;
            }
            rv_err_t ce = commit_all(c, &err);
            CHECK_MSG(ce == RV_OK, "commit through retriable errors: %s", rv_error_message(err));
        }
        if (!refused && got >= 2000) {
            /* A refusal for good reaches the application, named. */
            rd_kafka_mock_push_request_errors(g_km.mock, API_OFFSET_COMMIT, 1,
                                              RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED);
            rv_err_t ce = commit_all(c, &err);
            CHECK_INT(ce, RV_ERR_CONFIG);
            CHECK_MSG(strstr(rv_error_message(err), g) != NULL, "message: %s",
                      rv_error_message(err));
            refused = true;
        }
    }
    if (down) {
        rd_kafka_mock_broker_set_up(g_km.mock, 2);
    }
    CHECK_MSG(got == expected, "read %d of %d acknowledged records", got, expected);
    CHECK_INT(dupes, 0);
    CHECK_INT(disorder, 0);
    CHECK_INT(errors, 0);
    CHECK(fetch_errs && commit_errs && refused);
    /* The final commit lands where the partitions end. */
    CHECK_INT(commit_all(c, &err), RV_OK);
    for (int k = 0; k < P; k++) {
        rv_topic_partition_t tp = {g_topic, k, 0};
        int64_t lo, hi;
        CHECK_INT(rv_consumer_committed(c, &tp, 1, &err), RV_OK);
        CHECK_INT(rv_broker_watermarks(b, g_topic, k, &lo, &hi, NULL), RV_OK);
        CHECK_INT(tp.offset, hi);
    }
    rv_error_destroy(err);
    rv_consumer_close(c);
    rv_broker_close(b);
}

/* ---- the availability timeout --------------------------------------------------------------- */

typedef struct lost_s {
    int reports;
    int transport;
} lost_t;

static void on_lost(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    lost_t *l = opaque;
    l->reports++;
    l->transport += err == RV_ERR_TRANSPORT;
}

static void test_availability_timeout(void) {
    static const char *const fast[] = {"broker.availability.timeout.ms=1500", NULL};
    rv_broker_t *b = open_mock(fast);
    REQUIRE(b != NULL);
    char t[64];
    snprintf(t, sizeof t, "avail-%ld", (long)getpid());
    REQUIRE(rd_kafka_mock_topic_create(g_km.mock, t, 2, 3) == RD_KAFKA_RESP_ERR_NO_ERROR);
    lost_t lost = {0, 0};
    rv_producer_opts_t po = {.delivery_cb = on_lost, .opaque = &lost};
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(b, &po, &err);
    rv_consumer_t *c = rv_consumer_new(b, NULL, &err);
    REQUIRE(p != NULL && c != NULL);
    rv_topic_partition_t tp = {t, 0, RV_OFFSET_BEGINNING};
    CHECK_INT(rv_consumer_assign(c, &tp, 1, &err), RV_OK);
    rv_record_t r = {.topic = t, .partition = 0, .value = "before", .value_len = 6};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    CHECK_INT(rv_producer_flush(p, 10000, &err), RV_OK);
    const rv_record_t *recs;
    size_t n = 0, got = 0;
    int64_t deadline = rv_clock_mono_ms() + 10000;
    while (got < 1 && rv_clock_mono_ms() < deadline) {
        CHECK_INT(rv_consumer_poll(c, &recs, 10, &n, 100, &err), RV_OK);
        got += n;
    }
    CHECK_INT(got, 1);
    lost.reports = 0;

    /* No broker answers: a flush without limit ends, the records fail as transport failures,
     * and polls say so too, each naming the bootstrap servers. */
    set_all(false);
    int64_t t0 = rv_clock_mono_ms();
    r.value = "during";
    r.value_len = 6;
    for (int i = 0; i < 3; i++) {
        CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    }
    rv_err_t e = rv_producer_flush(p, -1, &err);
    int64_t took = rv_clock_mono_ms() - t0;
    CHECK_INT(e, RV_ERR_TRANSPORT);
    CHECK_MSG(strstr(rv_error_message(err), g_km.bootstraps) != NULL, "message: %s",
              rv_error_message(err));
    CHECK_MSG(took < 10000, "flush returned after %lld ms", (long long)took);
    /* The records' reports follow once their delivery times out, if flush did not wait. */
    deadline = rv_clock_mono_ms() + 10000;
    while (lost.reports < 3 && rv_clock_mono_ms() < deadline) {
        rv_producer_poll(p, 100);
    }
    CHECK_INT(lost.reports, 3);
    CHECK_INT(lost.transport, 3);
    fprintf(stderr, "with every broker down, flush failed after %lld ms: %s\n", (long long)took,
            rv_error_message(err));

    e = RV_OK;
    t0 = rv_clock_mono_ms();
    while (e == RV_OK && rv_clock_mono_ms() - t0 < 15000) {
        e = rv_consumer_poll(c, &recs, 10, &n, 200, &err);
        CHECK_INT(n, 0);
    }
    took = rv_clock_mono_ms() - t0;
    CHECK_INT(e, RV_ERR_TRANSPORT);
    CHECK_MSG(strstr(rv_error_message(err), g_km.bootstraps) != NULL, "message: %s",
              rv_error_message(err));
    fprintf(stderr, "with every broker down, poll failed after %lld ms more: %s\n",
            (long long)took, rv_error_message(err));

    /* The brokers come back: the same producer and consumer carry on. */
    set_all(true);
    r.value = "after";
    r.value_len = 5;
    deadline = rv_clock_mono_ms() + 20000;
    got = 0;
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    e = rv_producer_flush(p, 20000, &err);
    CHECK_MSG(e == RV_OK, "flush after recovery: %s", rv_error_message(err));
    while (got < 1 && rv_clock_mono_ms() < deadline) {
        e = rv_consumer_poll(c, &recs, 10, &n, 100, &err);
        for (size_t i = 0; e == RV_OK && i < n; i++) {
            CHECK_MSG(recs[i].value_len == 5 && memcmp(recs[i].value, "after", 5) == 0,
                      "after recovery: offset %lld holds '%.*s'", (long long)recs[i].offset,
                      (int)recs[i].value_len, (const char *)recs[i].value);
        }
        if (e == RV_OK) {
            got += n;
        }
    }
    CHECK_INT(got, 1);
    rv_error_destroy(err);
    rv_consumer_close(c);
    rv_producer_close(p);
    rv_broker_close(b);
}

int main(void) {
    if (!km_start(&g_km, 3)) {
        fprintf(stderr, "cannot start librdkafka's mock cluster\n");
        return 1;
    }
    fprintf(stderr, "-- mock cluster at %s\n", g_km.url);
    RV_RUN(test_produce_through_faults);
    RV_RUN(test_consume_through_faults);
    RV_RUN(test_availability_timeout);
    km_stop(&g_km);
    return rv_test_finish();
}
