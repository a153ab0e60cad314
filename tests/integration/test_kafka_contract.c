/*
 * test_kafka_contract.c: the broker contract (tests/broker_contract.h) against `kafka://` on a
 * librdkafka mock cluster of three brokers that the test starts on loopback TCP, plus what only
 * the Kafka broker promises: URL checks, kafka.* pass-through errors that name the property,
 * clear refusals of topic admin by a cluster that cannot serve it, send errors, transactions.
 *
 * librdkafka 2.0.2's mock cluster cannot create, delete or describe topics through the admin
 * API, keeps no topic properties, never applies retention or compaction and cannot look
 * offsets up by time; the suite is told so (bc_caps_t) and skips exactly those tests, printing
 * why, and the harness creates topics directly in the mock. Its consumer groups wait for
 * session.timeout.ms - 1 s before each rebalance, so the suite's clients use a short session.
 * The test must never depend on a Kafka server outside the process.
 */
/* ctest-labels: threads */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_contract.h"
#include "kafka_mock.h"
#include "kafka_tsan.h"

static km_cluster_t g_km;

static bool mock_create_topic(void *opaque, const char *topic, int32_t partitions) {
    return rd_kafka_mock_topic_create(opaque, topic, partitions, 3) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Properties of every broker the suite opens, for the mock's sake (see KM_GROUP_PAIRS). */
static const char *const g_conf[] = {KM_GROUP_PAIRS, "kafka.reconnect.backoff.max.ms=500", NULL};

static bc_caps_t g_caps = {
    .create_topic = mock_create_topic,
    .conf = g_conf,
    .no_topic_config = "librdkafka 2.0.2's mock cluster keeps no topic properties (no "
                       "CreateTopics configs, no DescribeConfigs, no max.message.bytes)",
    .no_topic_delete = "librdkafka 2.0.2's mock cluster cannot delete topics",
    .no_retention = "librdkafka 2.0.2's mock cluster applies no retention",
    .no_compaction = "librdkafka 2.0.2's mock cluster does not compact",
    .no_offsets_for_times = "librdkafka 2.0.2's mock cluster answers every ListOffsets by "
                            "timestamp with -1",
    .no_transactions = "librdkafka 2.0.2's mock cluster stores no transactional offsets "
                       "(TxnOffsetCommit), which the contract checks; test_transactions here "
                       "checks the rest",
};

/* ---- what only kafka:// promises ------------------------------------------------------------ */

static void test_urls(void) {
    const char *bad[] = {"kafka:",          "kafka:host:9092",   "kafka://",
                         "kafka://host",    "kafka://host:",     "kafka://host:0",
                         "kafka://h:70000", "kafka://h:9092,",   "kafka://h:90a2",
                         "kafka://:9092",   "kafka://h:1,,h:2", "kafka://h 1:9092"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rv_error_t *err = NULL;
        rv_broker_t *b = rv_broker_open(bad[i], NULL, &err);
        CHECK_MSG(b == NULL, "%s was accepted", bad[i]);
        CHECK_INT(rv_error_code(err), RV_ERR_INVALID_ARG);
        CHECK_MSG(strstr(rv_error_message(err), bad[i]) != NULL, "message \"%s\" lacks the URL",
                  rv_error_message(err));
        rv_error_destroy(err);
        rv_broker_close(b);
    }
    rv_broker_t *b = rv_broker_open("kafka://h1:9092,[::1]:9093/", NULL, NULL);
    CHECK(b != NULL); /* opening does not connect */
    rv_broker_close(b);
}

/* Opens the mock with the suite's properties plus `extra` (may be NULL). */
static rv_broker_t *open_mock(const char *extra, rv_error_t **err) {
    rv_conf_t *conf = rv_conf_new();
    for (size_t i = 0; g_conf[i]; i++) {
        rv_conf_set_pair(conf, g_conf[i], NULL);
    }
    if (extra) {
        CHECK_INT(rv_conf_set_pair(conf, extra, NULL), RV_OK);
    }
    rv_broker_opts_t opts = {.conf = conf};
    rv_broker_t *b = rv_broker_open(g_km.url, &opts, err);
    rv_conf_destroy(conf);
    return b;
}

static void test_passthrough_errors(void) {
    rv_error_t *err = NULL;
    rv_broker_t *b = open_mock("kafka.no.such.property=1", &err);
    CHECK(b == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_CONFIG);
    CHECK_MSG(strstr(rv_error_message(err), "no.such.property") != NULL, "message: %s",
              rv_error_message(err));
    rv_broker_close(b);

    b = open_mock("kafka.socket.timeout.ms=-7", &err);
    CHECK(b == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_CONFIG);
    CHECK_MSG(strstr(rv_error_message(err), "socket.timeout.ms") != NULL, "message: %s",
              rv_error_message(err));
    rv_broker_close(b);

    /* A client's own pass-through properties are checked when it is made. */
    b = open_mock(NULL, &err);
    REQUIRE(b != NULL);
    rv_conf_t *conf = rv_conf_new();
    CHECK_INT(rv_conf_set(conf, "kafka.linger.ms", "lots", NULL), RV_OK);
    rv_producer_opts_t po = {.conf = conf};
    CHECK(rv_producer_new(b, &po, &err) == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_CONFIG);
    CHECK_MSG(strstr(rv_error_message(err), "linger.ms") != NULL, "message: %s",
              rv_error_message(err));
    rv_conf_destroy(conf);
    conf = rv_conf_new();
    CHECK_INT(rv_conf_set(conf, "kafka.fetch.wait.max.mz", "5", NULL), RV_OK);
    rv_consumer_opts_t co = {.conf = conf, .group = "g"};
    CHECK(rv_consumer_new(b, &co, &err) == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_CONFIG);
    CHECK_MSG(strstr(rv_error_message(err), "fetch.wait.max.mz") != NULL, "message: %s",
              rv_error_message(err));
    rv_conf_destroy(conf);
    rv_error_destroy(err);
    rv_broker_close(b);
}

/* The mock cluster names no usable controller: admin requests are refused at once, clearly. */
static void test_admin_refused(void) {
    rv_error_t *err = NULL;
    rv_broker_t *b = open_mock(NULL, &err);
    REQUIRE(b != NULL);
    char t[64], there[64];
    bc_name(t, sizeof t, "admin-refused");
    bc_name(there, sizeof there, "admin-there");
    REQUIRE(mock_create_topic(g_km.mock, there, 3));

    int64_t t0 = rv_clock_mono_ms();
    rv_err_t e = rv_broker_create_topic(b, t, 2, NULL, &err);
    CHECK_INT(e, RV_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(rv_error_message(err), t) && strstr(rv_error_message(err), "controller"),
              "message: %s", rv_error_message(err));
    CHECK_INT(rv_broker_describe_topic(b, t, NULL, NULL, NULL), RV_ERR_NOT_FOUND);
    /* Refusing to create did not create it by looking it up. */
    char **names = NULL;
    CHECK_INT(rv_broker_list_topics(b, &names, NULL, NULL), RV_OK);
    CHECK(bc_list_has(names, there) && !bc_list_has(names, t));
    rv_strv_free(names);

    CHECK_INT(rv_broker_create_topic(b, there, 3, NULL, &err), RV_ERR_EXISTS);
    CHECK(strstr(rv_error_message(err), there) != NULL);
    CHECK_INT(rv_broker_delete_topic(b, there, &err), RV_ERR_UNSUPPORTED);
    CHECK(strstr(rv_error_message(err), there) != NULL);
    CHECK_INT(rv_broker_delete_topic(b, t, &err), RV_ERR_NOT_FOUND);
    int32_t parts = 0;
    CHECK_INT(rv_broker_describe_topic(b, there, &parts, NULL, &err), RV_OK);
    CHECK_INT(parts, 3);
    rv_conf_t *tc = NULL;
    CHECK_INT(rv_broker_describe_topic(b, there, &parts, &tc, &err), RV_ERR_UNSUPPORTED);
    CHECK(tc == NULL);
    CHECK_MSG(rv_clock_mono_ms() - t0 < 5000, "refusals took %lld ms",
              (long long)(rv_clock_mono_ms() - t0));
    rv_error_destroy(err);
    rv_broker_close(b);
}

/* The send errors of the contract that do not need a topic's max.message.bytes, and the limit
 * librdkafka itself enforces (message.max.bytes). */
static void test_send_errors(void) {
    rv_broker_t *b = open_mock(NULL, NULL);
    REQUIRE(b != NULL);
    char t[64], missing[64];
    bc_name(t, sizeof t, "ksenderr");
    bc_name(missing, sizeof missing, "knosuch");
    REQUIRE(mock_create_topic(g_km.mock, t, 2));
    rv_conf_t *conf = rv_conf_new();
    CHECK_INT(rv_conf_set(conf, "kafka.message.max.bytes", "2000", NULL), RV_OK);
    bc_reports_t rp;
    bc_reports_init(&rp, t);
    rv_producer_opts_t po = {.conf = conf, .delivery_cb = bc_on_delivery, .opaque = &rp};
    rv_producer_t *p = rv_producer_new(b, &po, NULL);
    rv_conf_destroy(conf);
    REQUIRE(p != NULL);
    rv_record_t r = {.topic = missing, .partition = RV_PARTITION_ANY, .value = "x", .value_len = 1};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_NOT_FOUND);
    r.topic = t;
    r.partition = 2;
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_INVALID_ARG);
    static char big[4096];
    memset(big, 'b', sizeof big);
    r = (rv_record_t){.topic = t, .partition = 0, .value = big, .value_len = sizeof big};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_LIMIT);
    r.value_len = 100;
    CHECK_INT(rv_producer_send(p, &r, (void *)(uintptr_t)7), RV_OK);
    bc_flush(p);
    CHECK_INT(rp.n, 1);
    if (rp.n == 1) {
        CHECK_INT(rp.v[0].opaque, 7);
        CHECK_INT(rp.v[0].offset, 0);
        CHECK_INT(rp.v[0].err, RV_OK);
    }
    /* Looking a missing topic up did not create it. */
    CHECK_INT(rv_broker_describe_topic(b, missing, NULL, NULL, NULL), RV_ERR_NOT_FOUND);
    rv_producer_close(p);
    bc_reports_free(&rp);
    rv_broker_close(b);
}

/* ---- transactions --------------------------------------------------------------------------- */

static rv_producer_t *txn_producer(rv_broker_t *b, const char *id) {
    rv_conf_t *conf = rv_conf_new();
    CHECK_INT(rv_conf_set(conf, "transactional.id", id, NULL), RV_OK);
    rv_producer_opts_t po = {.conf = conf};
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(b, &po, &err);
    CHECK_MSG(p != NULL, "transactional producer: %s", rv_error_message(err));
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return p;
}

static rv_err_t txn_send(rv_producer_t *p, const char *topic, int from, int n) {
    char v[32];
    rv_err_t e = RV_OK;
    for (int i = from; i < from + n && !e; i++) {
        snprintf(v, sizeof v, "t%d", i);
        e = bc_send(p, topic, 0, NULL, v, 0);
    }
    return e;
}

/* Reads what a read_committed consumer sees of partition 0 within `ms`. */
static void read_committed(rv_broker_t *b, const char *topic, bc_recs_t *rs, int ms) {
    rv_consumer_t *c = bc_consumer(b, NULL, "earliest", NULL);
    if (!c) {
        return;
    }
    CHECK_INT(bc_assign1(c, topic, 0, RV_OFFSET_BEGINNING), RV_OK);
    bc_drain(c, rs, ms);
    rv_consumer_close(c);
}

static bool recs_have(const bc_recs_t *rs, const char *value) {
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->v[i].value && strcmp(rs->v[i].value, value) == 0) {
            return true;
        }
    }
    return false;
}

static void test_transactions(void) {
    rv_broker_t *b = open_mock(NULL, NULL);
    REQUIRE(b != NULL);
    char t[64], id[64];
    bc_name(t, sizeof t, "txn");
    bc_name(id, sizeof id, "txn-id");
    REQUIRE(mock_create_topic(g_km.mock, t, 1));
    rv_error_t *err = NULL;

    /* Without a transactional.id there are no transactions; memory: has none at all. */
    rv_producer_t *plain = bc_producer(b, NULL, NULL);
    REQUIRE(plain != NULL);
    CHECK_INT(rv_producer_begin_transaction(plain, &err), RV_ERR_STATE);
    CHECK(strstr(rv_error_message(err), "transactional.id") != NULL);
    rv_producer_close(plain);
    rv_broker_t *mem = rv_broker_open("memory:", NULL, NULL);
    rv_producer_t *mp = mem ? rv_producer_new(mem, NULL, NULL) : NULL;
    CHECK_INT(rv_producer_begin_transaction(mp, &err), RV_ERR_UNSUPPORTED);
    CHECK_INT(rv_producer_commit_transaction(mp, -1, &err), RV_ERR_UNSUPPORTED);
    rv_producer_close(mp);
    rv_broker_close(mem);

    rv_producer_t *p = txn_producer(b, id);
    REQUIRE(p != NULL);
    /* Records outside a transaction are refused. */
    rv_record_t r = {.topic = t, .partition = 0, .value = "x", .value_len = 1};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_STATE);
    CHECK_INT(rv_producer_commit_transaction(p, 5000, &err), RV_ERR_STATE);

    CHECK_INT(rv_producer_begin_transaction(p, &err), RV_OK);
    CHECK_INT(txn_send(p, t, 0, 10), RV_OK);
    CHECK_MSG(rv_producer_commit_transaction(p, 10000, &err) == RV_OK, "commit: %s",
              rv_error_message(err));
    bc_recs_t rs = {0};
    read_committed(b, t, &rs, 1500);
    CHECK_INT(rs.n, 10);
    CHECK(recs_have(&rs, "t0") && recs_have(&rs, "t9"));
    bc_recs_free(&rs);

    CHECK_INT(rv_producer_begin_transaction(p, &err), RV_OK);
    CHECK_INT(txn_send(p, t, 10, 5), RV_OK);
    rv_producer_flush(p, 5000, NULL);
    CHECK_MSG(rv_producer_abort_transaction(p, 10000, &err) == RV_OK, "abort: %s",
              rv_error_message(err));
    CHECK_INT(rv_producer_begin_transaction(p, &err), RV_OK);
    CHECK_INT(txn_send(p, t, 15, 3), RV_OK);
    CHECK_INT(rv_producer_commit_transaction(p, 10000, &err), RV_OK);
    read_committed(b, t, &rs, 1500);
    CHECK(recs_have(&rs, "t15") && recs_have(&rs, "t17"));
    int aborted = 0;
    for (int i = 10; i < 15; i++) {
        char v[32];
        snprintf(v, sizeof v, "t%d", i);
        aborted += recs_have(&rs, v);
    }
    /* librdkafka 2.0.2's mock cluster writes no transaction markers (its EndTxn only answers),
     * so aborted records stay visible there: only a real cluster can show them hidden. */
    fprintf(stderr,
            "skip check (aborted records hidden) on the mock: its EndTxn writes no markers; "
            "%d of 5 aborted records are visible\n",
            aborted);
    bc_recs_free(&rs);
    rv_producer_close(p);
    rv_error_destroy(err);
    rv_broker_close(b);
}

/* Consume, transform, produce, and commit the consumed offsets in the same transaction. */
static void test_transaction_offsets(void) {
    rv_broker_t *b = open_mock(NULL, NULL);
    REQUIRE(b != NULL);
    char in[64], out[64], g[64], id[64];
    bc_name(in, sizeof in, "eos-in");
    bc_name(out, sizeof out, "eos-out");
    bc_name(g, sizeof g, "g-eos");
    bc_name(id, sizeof id, "eos-id");
    REQUIRE(mock_create_topic(g_km.mock, in, 1));
    REQUIRE(mock_create_topic(g_km.mock, out, 1));
    bc_fill(b, in, 0, 0, 20);
    rv_consumer_t *c = bc_consumer(b, g, "earliest", NULL);
    rv_producer_t *p = txn_producer(b, id);
    REQUIRE(c != NULL && p != NULL);
    CHECK_INT(bc_assign1(c, in, 0, RV_OFFSET_STORED), RV_OK);
    bc_recs_t rs = {0};
    bc_collect(c, &rs, 20, 5000);
    CHECK_INT(rs.n, 20);
    rv_error_t *err = NULL;
    CHECK_INT(rv_producer_begin_transaction(p, &err), RV_OK);
    for (size_t i = 0; i < rs.n; i++) {
        char v[64];
        snprintf(v, sizeof v, "out-%s", rs.v[i].value);
        bc_send(p, out, 0, NULL, v, 0);
    }
    rv_err_t e = rv_producer_send_offsets_to_transaction(p, c, NULL, 0, 10000, &err);
    CHECK_MSG(e == RV_OK, "send offsets: %s", rv_error_message(err));
    e = rv_producer_commit_transaction(p, 10000, &err);
    CHECK_MSG(e == RV_OK, "commit: %s", rv_error_message(err));
    /* librdkafka 2.0.2's mock cluster answers TxnOffsetCommit without storing the offsets. */
    fprintf(stderr, "skip check (offsets committed by the transaction) on the mock: its "
                    "TxnOffsetCommit stores nothing; committed offset is %lld\n",
            (long long)bc_committed(c, in, 0));
    int64_t lo, hi;
    bc_watermarks(b, out, 0, &lo, &hi);
    CHECK(hi >= 20); /* the records and the commit marker */
    bc_recs_free(&rs);
    /* Explicit offsets work as well, and a consumer without a group has none to send. */
    rv_topic_partition_t back = {in, 0, 5};
    CHECK_INT(rv_producer_begin_transaction(p, &err), RV_OK);
    CHECK_INT(rv_producer_send_offsets_to_transaction(p, c, &back, 1, -1, &err), RV_OK);
    CHECK_INT(rv_producer_commit_transaction(p, -1, &err), RV_OK);
    rv_consumer_t *nog = bc_consumer(b, NULL, NULL, NULL);
    CHECK_INT(rv_producer_send_offsets_to_transaction(p, nog, NULL, 0, -1, &err), RV_ERR_STATE);
    rv_consumer_close(nog);
    rv_error_destroy(err);
    rv_producer_close(p);
    rv_consumer_close(c);
    rv_broker_close(b);
}

int main(void) {
    if (!km_start(&g_km, 3)) {
        fprintf(stderr, "cannot start librdkafka's mock cluster\n");
        return 1;
    }
    fprintf(stderr, "-- mock cluster at %s\n", g_km.url);
    bc_url = g_km.url;
    g_caps.opaque = g_km.mock;
    RV_RUN(test_urls);
    RV_RUN(test_passthrough_errors);
    RV_RUN(test_admin_refused);
    RV_RUN(test_send_errors);
    RV_RUN(test_transactions);
    RV_RUN(test_transaction_offsets);
    bc_run_suite(g_km.url, &g_caps);
    km_stop(&g_km);
    return rv_test_finish();
}
