/*
 * test_kafka_txn_chunk.c: offsets put in a Kafka transaction stop at the first chunk of a split
 * value the consumer is still reassembling, as rv_consumer_commit() does, on a librdkafka mock
 * cluster the test starts on loopback TCP.
 *
 * librdkafka 2.0.2's mock answers TxnOffsetCommit without storing the offsets, so the group's
 * committed offset cannot show what a transaction committed. The test instead defines
 * rd_kafka_send_offsets_to_transaction() itself: the dynamic linker binds rivulet's call to this
 * definition, which notes the offsets librdkafka is given and calls librdkafka's own function
 * (found with dlsym(RTLD_NEXT)), so the transaction still runs on the mock. The chunk records
 * are written by hand with the chunk headers of docs/brokers.md ("Large values"), so where the
 * value is cut is known exactly. The test must never depend on a Kafka server outside the
 * process.
 */
#include <dlfcn.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/chunk.h"
#include "kafka_mock.h"
#include "kafka_tsan.h"
#include "rivulet/broker.h"
#include "rivulet/clock.h"
#include "rv_test.h"

static km_cluster_t g_km;

/* ---- what rivulet puts in transactions ------------------------------------------------------- */

#define MAX_SEEN 8

static struct {
    int calls;
    int n;
    char topic[MAX_SEEN][64];
    int32_t partition[MAX_SEEN];
    int64_t offset[MAX_SEEN];
} g_seen;

typedef rd_kafka_error_t *(*send_offsets_fn)(rd_kafka_t *,
                                             const rd_kafka_topic_partition_list_t *,
                                             const rd_kafka_consumer_group_metadata_t *, int);

rd_kafka_error_t *rd_kafka_send_offsets_to_transaction(
    rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *offsets,
    const rd_kafka_consumer_group_metadata_t *cgmetadata, int timeout_ms) {
    static send_offsets_fn real;
    if (!real) {
        *(void **)&real = dlsym(RTLD_NEXT, "rd_kafka_send_offsets_to_transaction");
        if (!real) {
            fprintf(stderr, "cannot find librdkafka's rd_kafka_send_offsets_to_transaction\n");
            abort();
        }
    }
    g_seen.calls++;
    g_seen.n = 0;
    for (int i = 0; i < offsets->cnt && i < MAX_SEEN; i++) {
        snprintf(g_seen.topic[i], sizeof g_seen.topic[i], "%s", offsets->elems[i].topic);
        g_seen.partition[i] = offsets->elems[i].partition;
        g_seen.offset[i] = offsets->elems[i].offset;
        g_seen.n++;
    }
    return real(rk, offsets, cgmetadata, timeout_ms);
}

/* ---- the mock cluster ------------------------------------------------------------------------ */


static rv_broker_t *open_mock(void) {
    static const char *const pairs[] = {KM_GROUP_PAIRS, NULL};
    return km_open(g_km.url, pairs, NULL);
}

/* ---- writing chunks by hand ------------------------------------------------------------------ */

enum { VALUE_SIZE = 1000, CHUNKS = 4, PIECE = VALUE_SIZE / CHUNKS };

static char g_value[VALUE_SIZE];
static const unsigned char g_id[RV__CHUNK_ID_LEN] = "0123456789abcdef";

static void send_plain(rv_producer_t *p, const char *topic, const char *value) {
    rv_record_t r = {.topic = topic, .partition = 0, .key = "k", .key_len = 1, .value = value,
                     .value_len = strlen(value)};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
}

/* Writes chunks [from, to) of g_value to partition 0 of `topic`, with key "big". */
static void send_chunks(rv_producer_t *p, const char *topic, int from, int to) {
    char index[16], count[16], size[16];
    snprintf(count, sizeof count, "%d", CHUNKS);
    snprintf(size, sizeof size, "%d", VALUE_SIZE);
    for (int i = from; i < to; i++) {
        snprintf(index, sizeof index, "%d", i);
        rv_header_t h[] = {{RV__CHUNK_H_ID, g_id, RV__CHUNK_ID_LEN},
                           {RV__CHUNK_H_INDEX, index, strlen(index)},
                           {RV__CHUNK_H_COUNT, count, strlen(count)},
                           {RV__CHUNK_H_SIZE, size, strlen(size)}};
        rv_record_t r = {.topic = topic, .partition = 0, .key = "big", .key_len = 3,
                         .value = g_value + i * PIECE, .value_len = PIECE, .headers = h,
                         .header_count = 4};
        CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    }
    CHECK_INT(rv_producer_flush(p, 10000, NULL), RV_OK);
}

/* Polls until the consumer's position in partition 0 of `topic` reaches `pos`, counting the
 * records returned and keeping the last one's offset and value length. */
static void poll_to(rv_consumer_t *c, const char *topic, int64_t pos, int *records,
                    int64_t *last_offset, size_t *last_len, bool *whole) {
    int64_t until = rv_clock_mono_ms() + 15000;
    rv_topic_partition_t tp = {topic, 0, 0};
    while (rv_clock_mono_ms() < until) {
        const rv_record_t *recs;
        size_t n = 0;
        rv_consumer_poll(c, &recs, 64, &n, 100, NULL);
        for (size_t i = 0; i < n; i++) {
            (*records)++;
            *last_offset = recs[i].offset;
            *last_len = recs[i].value_len;
            if (whole && recs[i].value_len == VALUE_SIZE) {
                *whole = memcmp(recs[i].value, g_value, VALUE_SIZE) == 0;
            }
        }
        if (rv_consumer_position(c, &tp, 1, NULL) == RV_OK && tp.offset >= pos) {
            return;
        }
    }
}

/* Sends `tps` (NULL: the consumer's positions) to a transaction and commits it; returns the
 * offset librdkafka was given for partition 0 of `topic`, or -100 when it was given none. */
static int64_t txn_offsets(rv_producer_t *txp, rv_consumer_t *c, const char *out,
                           const char *topic, const rv_topic_partition_t *tps, size_t count) {
    rv_error_t *err = NULL;
    int calls = g_seen.calls;
    CHECK_INT(rv_producer_begin_transaction(txp, &err), RV_OK);
    send_plain(txp, out, "derived");
    rv_err_t e = rv_producer_send_offsets_to_transaction(txp, c, tps, count, 10000, &err);
    CHECK_MSG(e == RV_OK, "send offsets: %s", rv_error_message(err));
    e = rv_producer_commit_transaction(txp, 10000, &err);
    CHECK_MSG(e == RV_OK, "commit: %s", rv_error_message(err));
    rv_error_destroy(err);
    CHECK_INT(g_seen.calls, calls + 1);
    for (int i = 0; i < g_seen.n; i++) {
        if (strcmp(g_seen.topic[i], topic) == 0 && g_seen.partition[i] == 0) {
            return g_seen.offset[i];
        }
    }
    return -100;
}

static void test_transaction_stops_at_first_chunk(void) {
    for (int i = 0; i < VALUE_SIZE; i++) {
        g_value[i] = (char)('A' + (i * 7) % 26);
    }
    rv_broker_t *b = open_mock();
    REQUIRE(b != NULL);
    const char *in = "txn-chunk-in", *out = "txn-chunk-out";
    REQUIRE(rd_kafka_mock_topic_create(g_km.mock, in, 1, 3) == 0);
    REQUIRE(rd_kafka_mock_topic_create(g_km.mock, out, 1, 3) == 0);

    /* offset 0: a plain record; 1 and 2: the first half of a value in four chunks. */
    rv_producer_t *p = rv_producer_new(b, NULL, NULL);
    REQUIRE(p != NULL);
    send_plain(p, in, "plain");
    send_chunks(p, in, 0, 2);

    rv_consumer_opts_t co = {.group = "txn-chunk-group"};
    rv_consumer_t *c = rv_consumer_new(b, &co, NULL);
    rv_conf_t *tconf = rv_conf_new();
    CHECK_INT(rv_conf_set(tconf, "transactional.id", "txn-chunk-id", NULL), RV_OK);
    rv_producer_opts_t po = {.conf = tconf};
    rv_producer_t *txp = rv_producer_new(b, &po, NULL);
    rv_conf_destroy(tconf);
    REQUIRE(c != NULL && txp != NULL);
    rv_topic_partition_t start = {in, 0, RV_OFFSET_BEGINNING};
    CHECK_INT(rv_consumer_assign(c, &start, 1, NULL), RV_OK);

    /* The consumer has read offsets 0 to 2 and returned only the plain record. */
    int records = 0;
    int64_t last = -1;
    size_t len = 0;
    poll_to(c, in, 3, &records, &last, &len, NULL);
    rv_topic_partition_t pos = {in, 0, 0};
    CHECK_INT(rv_consumer_position(c, &pos, 1, NULL), RV_OK);
    CHECK_INT(pos.offset, 3);
    CHECK_INT(records, 1);
    CHECK_INT(last, 0);

    /* Its positions, and offsets given past the chunk, are cut back to the first chunk. */
    CHECK_INT(txn_offsets(txp, c, out, in, NULL, 0), 1);
    rv_topic_partition_t past = {in, 0, 3};
    CHECK_INT(txn_offsets(txp, c, out, in, &past, 1), 1);
    /* Offsets at or before the first chunk are sent as given. */
    rv_topic_partition_t before = {in, 0, 1};
    CHECK_INT(txn_offsets(txp, c, out, in, &before, 1), 1);
    before.offset = 0;
    CHECK_INT(txn_offsets(txp, c, out, in, &before, 1), 0);
    /* The same cut as a plain commit's, which the mock does store. */
    CHECK_INT(rv_consumer_commit(c, NULL, 0, NULL), RV_OK);
    rv_topic_partition_t committed = {in, 0, 0};
    CHECK_INT(rv_consumer_committed(c, &committed, 1, NULL), RV_OK);
    CHECK_INT(committed.offset, 1);

    /* Once the other half is read the value comes out whole and nothing is cut any more. */
    send_chunks(p, in, 2, CHUNKS);
    bool whole = false;
    poll_to(c, in, 5, &records, &last, &len, &whole);
    CHECK_INT(records, 2);
    CHECK_INT(last, 1); /* the value has its first chunk's offset */
    CHECK_INT(len, VALUE_SIZE);
    CHECK(whole);
    CHECK_INT(txn_offsets(txp, c, out, in, NULL, 0), 5);

    rv_producer_close(txp);
    rv_producer_close(p);
    rv_consumer_close(c);
    rv_broker_close(b);
}

int main(void) {
    if (!km_start(&g_km, 3)) {
        fprintf(stderr, "cannot start librdkafka's mock cluster\n");
        return 1;
    }
    RV_RUN(test_transaction_stops_at_first_chunk);
    km_stop(&g_km);
    return rv_test_finish();
}
