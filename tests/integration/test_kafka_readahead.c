/*
 * test_kafka_readahead.c: a `kafka://` consumer's bounded read-ahead, on a librdkafka mock
 * cluster the test starts on loopback TCP.
 *
 * librdkafka fetches ahead of the application until queued.min.messages records or
 * queued.max.messages.kbytes KiB wait in the consumer; rivulet keeps both small (a few MiB)
 * so that a lagging consumer's memory stays bounded. librdkafka before 2.1 then does not fetch
 * again until its broker thread wakes for another reason or after a second, so a consumer that
 * drained its read-ahead sat idle: reading a topic many read-aheads long took about a second
 * per read-ahead. rivulet wakes the fetcher when a poll finds nothing while a partition still
 * has records (src/broker/kafka_consumer.c, kick_fetch()).
 *
 * Here the read-ahead is made tiny (64 KiB, 64 KiB per fetch) so that reading 4 partitions of
 * 2 MB each takes about 30 refills: every record must arrive, in order, once, and the whole
 * read must take less than READ_BOUND_MS. That bound is loose, as this is no speed test, only
 * the stall's absence: on a 2-core machine under AddressSanitizer the read takes about 0.3 s,
 * and 9 s without the wake-ups (librdkafka's broker thread wakes now and then for other
 * reasons). A second case checks the defaults rivulet sets: the same topic read with them
 * needs no kafka.* property and arrives whole.
 * The test must never depend on a Kafka server outside the process.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_mock.h"
#include "rivulet/broker.h"
#include "rivulet/clock.h"
#include "rv_test.h"

enum { PARTITIONS = 4, PER_PARTITION = 10000, VALUE_BYTES = 200 };

/* About 0.3 s with the wake-ups, 9 s without (see above). */
#define READ_BOUND_MS 4000

static const char *const TOPIC = "readahead";

static km_cluster_t g_km;

/* Writes PER_PARTITION records of VALUE_BYTES to each partition; value i of partition p
 * starts with "p:i;". */
static void produce_input(void) {
    rv_broker_t *b = km_open(g_km.url, NULL, NULL);
    if (!b) {
        return;
    }
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(b, NULL, &err);
    CHECK_MSG(p != NULL, "producer: %s", rv_error_message(err));
    char value[VALUE_BYTES];
    memset(value, 'x', sizeof value);
    for (int32_t part = 0; p && part < PARTITIONS; part++) {
        for (int i = 0; i < PER_PARTITION; i++) {
            int n = snprintf(value, sizeof value, "%d:%d;", (int)part, i);
            value[n] = 'x';
            rv_record_t r = {
                .topic = TOPIC, .partition = part, .value = value, .value_len = sizeof value};
            rv_err_t e;
            while ((e = rv_producer_send(p, &r, NULL)) == RV_ERR_AGAIN) {
                rv_producer_poll(p, 10);
            }
            CHECK_INT(e, RV_OK);
        }
    }
    if (p) {
        CHECK_INT(rv_producer_flush(p, 30000, &err), RV_OK);
        rv_producer_close(p);
    }
    rv_error_destroy(err);
    rv_broker_close(b);
}

/* Reads the whole topic with a consumer of broker properties `extra`, checking every record;
 * returns the time it took in ms, or -1. */
static int64_t read_all(const char *const *extra) {
    rv_broker_t *b = km_open(g_km.url, NULL, extra);
    if (!b) {
        return -1;
    }
    rv_error_t *err = NULL;
    rv_consumer_t *c = rv_consumer_new(b, NULL, &err);
    CHECK_MSG(c != NULL, "consumer: %s", rv_error_message(err));
    rv_topic_partition_t tps[PARTITIONS];
    for (int32_t p = 0; p < PARTITIONS; p++) {
        tps[p] =
            (rv_topic_partition_t){.topic = TOPIC, .partition = p, .offset = RV_OFFSET_BEGINNING};
    }
    if (c) {
        CHECK_INT(rv_consumer_assign(c, tps, PARTITIONS, &err), RV_OK);
    }
    int next[PARTITIONS] = {0};
    int64_t total = 0, bad = 0;
    int64_t t0 = rv_clock_mono_ms();
    int64_t give_up = t0 + 15 * READ_BOUND_MS;
    while (c && total < (int64_t)PARTITIONS * PER_PARTITION && rv_clock_mono_ms() < give_up) {
        const rv_record_t *recs;
        size_t n = 0;
        rv_err_t e = rv_consumer_poll(c, &recs, 1024, &n, 100, &err);
        CHECK_MSG(e == RV_OK, "poll: %s", rv_error_message(err));
        if (e != RV_OK) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            int32_t p = recs[i].partition;
            char want[32];
            int wn = snprintf(want, sizeof want, "%d:%d;", (int)p,
                              p >= 0 && p < PARTITIONS ? next[p] : -1);
            if (p < 0 || p >= PARTITIONS || recs[i].offset != next[p] ||
                recs[i].value_len != VALUE_BYTES || memcmp(recs[i].value, want, (size_t)wn)) {
                if (bad++ < 5) {
                    fprintf(stderr, "unexpected record: partition %d offset %" PRId64 "\n", (int)p,
                            recs[i].offset);
                }
                continue;
            }
            next[p]++;
            total++;
        }
    }
    int64_t took = rv_clock_mono_ms() - t0;
    CHECK_MSG(bad == 0, "%" PRId64 " records out of order, repeated or altered", bad);
    for (int32_t p = 0; p < PARTITIONS; p++) {
        CHECK_MSG(next[p] == PER_PARTITION, "partition %d: %d of %d records read in %" PRId64 " ms",
                  (int)p, next[p], PER_PARTITION, took);
    }
    rv_consumer_close(c);
    rv_error_destroy(err);
    rv_broker_close(b);
    return took;
}

static void test_tiny_readahead_does_not_stall(void) {
    static const char *const tiny[] = {"kafka.queued.max.messages.kbytes=64",
                                       "kafka.queued.min.messages=300", "fetch.max.bytes=65536",
                                       NULL};
    int64_t took = read_all(tiny);
    fprintf(stderr, "tiny read-ahead: %d records in %" PRId64 " ms\n", PARTITIONS * PER_PARTITION,
            took);
    CHECK_MSG(took >= 0 && took < READ_BOUND_MS,
              "reading %d records through a 64 KiB read-ahead took %" PRId64 " ms (bound %d): "
              "the fetcher idles after each refill",
              PARTITIONS * PER_PARTITION, took, READ_BOUND_MS);
}

static void test_defaults(void) {
    int64_t took = read_all(NULL);
    fprintf(stderr, "default read-ahead: %d records in %" PRId64 " ms\n",
            PARTITIONS * PER_PARTITION, took);
    CHECK_MSG(took >= 0 && took < READ_BOUND_MS, "reading with the defaults took %" PRId64 " ms",
              took);
}

int main(void) {
    if (!km_start(&g_km, 1)) {
        fprintf(stderr, "cannot start librdkafka's mock cluster\n");
        return 1;
    }
    CHECK_INT(rd_kafka_mock_topic_create(g_km.mock, TOPIC, PARTITIONS, 1),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    produce_input();
    RV_RUN(test_tiny_readahead_does_not_stall);
    RV_RUN(test_defaults);
    km_stop(&g_km);
    return rv_test_finish();
}
