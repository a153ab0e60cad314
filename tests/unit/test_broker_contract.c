/*
 * test_broker_contract.c: the broker contract suite (tests/broker_contract.h) run against each
 * broker URL, plus unit tests of the broker front (broker.c) and of what only the `memory:`
 * broker promises.
 *
 * Without arguments it checks `memory:` and `local:` on a fresh temporary directory (removed
 * afterwards); with arguments it checks the URLs given, for example
 * `test_broker_contract kafka://localhost:9092`. The front tests use broker.c's internal
 * helpers directly; the suite itself uses the public API only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker_int.h"
#include "broker_contract.h"

/* ---- the front: URLs, names, partitioner, shared checks ------------------------------------- */

static void test_url_parsing(void) {
    rv_error_t *err = NULL;
    CHECK(rv_broker_open("bogus:x", NULL, &err) == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_INVALID_ARG);
    CHECK(strstr(rv_error_message(err), "bogus") != NULL);
    CHECK(rv_broker_open("no-scheme", NULL, &err) == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_INVALID_ARG);
    CHECK(strstr(rv_error_message(err), "no-scheme") != NULL);
    CHECK(rv_broker_open(":x", NULL, &err) == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_INVALID_ARG);
    CHECK(rv_broker_open("memory:somewhere", NULL, &err) == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_INVALID_ARG);
    CHECK(strstr(rv_error_message(err), "memory:somewhere") != NULL);
    rv_error_destroy(err);

    /* Each memory: broker is its own world. */
    rv_broker_t *a = rv_broker_open("memory:", NULL, NULL);
    rv_broker_t *b = rv_broker_open("memory:", NULL, NULL);
    REQUIRE(a && b);
    CHECK_STR(rv_broker_url(a), "memory:");
    CHECK_INT(rv_broker_create_topic(a, "only-in-a", 1, NULL, NULL), RV_OK);
    CHECK_INT(rv_broker_describe_topic(b, "only-in-a", NULL, NULL, NULL), RV_ERR_NOT_FOUND);
    char **names = NULL;
    size_t n = 9;
    CHECK_INT(rv_broker_list_topics(b, &names, &n, NULL), RV_OK);
    CHECK_INT(n, 0);
    CHECK(names != NULL && names[0] == NULL);
    rv_strv_free(names);
    rv_broker_close(a);
    rv_broker_close(b);
}

static void test_topic_name_rule(void) {
    const char *good[] = {"a", "A.b_c-9", "...", "-", "_"};
    for (size_t i = 0; i < RV_ARRAY_LEN(good); i++) {
        CHECK_MSG(rv__topic_name_check(good[i], NULL) == RV_OK, "'%s' refused", good[i]);
    }
    char name[251];
    memset(name, 'n', 250);
    name[249] = 0;
    CHECK_INT(rv__topic_name_check(name, NULL), RV_OK);
    name[249] = 'n';
    name[250] = 0;
    rv_error_t *err = NULL;
    CHECK_INT(rv__topic_name_check(name, &err), RV_ERR_INVALID_ARG);
    CHECK(strstr(rv_error_message(err), "250 characters") != NULL);
    const char *bad[] = {"", ".", "..", "a b", "a/b", "a:b", "a\nb", "\xc3\xa9"};
    for (size_t i = 0; i < RV_ARRAY_LEN(bad); i++) {
        CHECK_MSG(rv__topic_name_check(bad[i], &err) == RV_ERR_INVALID_ARG, "'%s' accepted",
                  bad[i]);
    }
    CHECK(strstr(rv_error_message(err), "'\\xc3\\xa9'") != NULL); /* quoted, printable */
    CHECK_INT(rv__topic_name_check(NULL, &err), RV_ERR_INVALID_ARG);
    rv_error_destroy(err);
}

static void test_choose_partition(void) {
    uint32_t rr = 0;
    rv_record_t r = {.partition = 2};
    CHECK_INT(rv__choose_partition(&r, 3, &rr), 2);
    r.partition = 3;
    CHECK_INT(rv__choose_partition(&r, 3, &rr), -1);
    CHECK_INT(rv__choose_partition(&r, 0, &rr), -1);
    r = (rv_record_t){.partition = RV_PARTITION_ANY, .key = "user-42", .key_len = 7};
    CHECK_INT(rv__choose_partition(&r, 12, &rr), rv_murmur2_partition("user-42", 7, 12));
    CHECK_INT(rr, 0); /* keys do not move the round-robin counter */
    r.key = "";
    r.key_len = 0;
    CHECK_INT(rv__choose_partition(&r, 12, &rr), rv_murmur2_partition("", 0, 12));
    r.key = NULL;
    for (int i = 0; i < 7; i++) {
        CHECK_INT(rv__choose_partition(&r, 3, &rr), i % 3);
    }
    rr = UINT32_MAX; /* wrapping stays in range */
    CHECK_INT(rv__choose_partition(&r, 3, &rr), (int32_t)(UINT32_MAX % 3));
    CHECK_INT(rv__choose_partition(&r, 3, &rr), 0);
}

static void test_null_arguments(void) {
    rv_broker_close(NULL);
    rv_producer_close(NULL);
    rv_consumer_close(NULL);
    rv_strv_free(NULL);
    CHECK(rv_broker_url(NULL) == NULL);
    CHECK_INT(rv_producer_poll(NULL, 0), 0);
    rv_error_t *err = NULL;
    CHECK_INT(rv_broker_create_topic(NULL, "t", 1, NULL, &err), RV_ERR_INVALID_ARG);
    CHECK(rv_producer_new(NULL, NULL, &err) == NULL);
    CHECK(rv_consumer_new(NULL, NULL, &err) == NULL);
    const rv_record_t *recs;
    size_t n = 5;
    CHECK_INT(rv_consumer_poll(NULL, &recs, 1, &n, 0, &err), RV_ERR_INVALID_ARG);
    CHECK_INT(n, 0);

    rv_broker_t *b = rv_broker_open("memory:", NULL, NULL);
    REQUIRE(b != NULL);
    CHECK_INT(rv_broker_list_topics(b, NULL, NULL, &err), RV_ERR_INVALID_ARG);
    rv_consumer_opts_t empty_group = {.group = ""};
    CHECK(rv_consumer_new(b, &empty_group, &err) == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_INVALID_ARG);
    rv_consumer_t *c = rv_consumer_new(b, NULL, &err);
    REQUIRE(c != NULL);
    CHECK_INT(rv_consumer_poll(c, &recs, 0, &n, 0, &err), RV_ERR_INVALID_ARG);
    CHECK_INT(rv_consumer_poll(c, &recs, 4, &n, 0, &err), RV_OK); /* nothing assigned */
    CHECK_INT(n, 0);
    rv_topic_partition_t tp = {"t", -1, 0};
    CHECK_INT(rv_consumer_assign(c, &tp, 1, &err), RV_ERR_INVALID_ARG);
    CHECK(strstr(rv_error_message(err), "partition -1") != NULL);
    CHECK_INT(rv_broker_create_topic(b, "t", 1, NULL, NULL), RV_OK);
    rv_topic_partition_t twice[2] = {{"t", 0, 0}, {"t", 0, 1}};
    CHECK_INT(rv_consumer_assign(c, twice, 2, &err), RV_ERR_INVALID_ARG);
    CHECK(strstr(rv_error_message(err), "twice") != NULL);
    CHECK_INT(rv_consumer_assign(c, NULL, 1, &err), RV_ERR_INVALID_ARG);
    rv_topic_partition_t when = {"t", 0, -5};
    CHECK_INT(rv_consumer_offsets_for_times(c, &when, 1, &err), RV_ERR_INVALID_ARG);
    rv_consumer_close(c);
    rv_error_destroy(err);
    rv_broker_close(b);
}

/* Topic-scoped properties set on the broker are defaults for the topics created through it. */
static void test_topic_conf_defaults(void) {
    rv_conf_t *conf = rv_conf_new();
    REQUIRE(conf != NULL);
    CHECK_INT(rv_conf_set(conf, "segment.bytes", "8192", NULL), RV_OK);
    CHECK_INT(rv_conf_set(conf, "retention.ms", "60000", NULL), RV_OK);
    rv_broker_opts_t opts = {.conf = conf};
    rv_broker_t *b = rv_broker_open("memory:", &opts, NULL);
    rv_conf_destroy(conf);
    REQUIRE(b != NULL);
    rv_conf_t *tc = rv_conf_new();
    CHECK_INT(rv_conf_set(tc, "retention.ms", "1000", NULL), RV_OK);
    CHECK_INT(rv_conf_set(tc, "kafka.min.insync.replicas", "2", NULL), RV_OK);
    CHECK_INT(rv_broker_create_topic(b, "t", 1, tc, NULL), RV_OK);
    rv_conf_destroy(tc);
    rv_conf_t *got = NULL;
    CHECK_INT(rv_broker_describe_topic(b, "t", NULL, &got, NULL), RV_OK);
    REQUIRE(got != NULL);
    CHECK_INT(rv_conf_get_int(got, "segment.bytes"), 8192);
    CHECK_INT(rv_conf_get_int(got, "retention.ms"), 1000);
    CHECK(rv_conf_is_set(got, "segment.bytes"));
    CHECK(!rv_conf_is_set(got, "retention.bytes"));
    CHECK_STR(rv_conf_get(got, "kafka.min.insync.replicas"), "2");
    CHECK(!rv_conf_is_set(got, "log.level")); /* only topic properties */
    rv_conf_destroy(got);
    rv_broker_close(b);
}

/* ---- what the memory broker promises beyond the contract ------------------------------------ */

/* Records handed out stay valid until the next poll, whatever happens to the topic meanwhile. */
static int g_reports;
static char g_report_value[16];

static void remember_report(void *opaque, const rv_record_t *rec, rv_err_t err, void *ro) {
    g_reports++;
    if (rec->value && rec->value_len < sizeof g_report_value) {
        memcpy(g_report_value, rec->value, rec->value_len);
        g_report_value[rec->value_len] = 0;
    }
}

static void test_memory_views_outlive_deletion(void) {
    rv_broker_t *b = rv_broker_open("memory:", NULL, NULL);
    REQUIRE(b != NULL);
    CHECK_INT(rv_broker_create_topic(b, "gone", 1, NULL, NULL), RV_OK);
    rv_producer_opts_t po = {.delivery_cb = remember_report};
    rv_producer_t *p = rv_producer_new(b, &po, NULL);
    REQUIRE(p != NULL);
    rv_record_t r = {.topic = "gone",
                     .partition = 0,
                     .key = "k",
                     .key_len = 1,
                     .value = "hello",
                     .value_len = 5};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    rv_consumer_t *c = rv_consumer_new(b, NULL, NULL);
    REQUIRE(c != NULL);
    rv_topic_partition_t tp = {"gone", 0, RV_OFFSET_BEGINNING};
    CHECK_INT(rv_consumer_assign(c, &tp, 1, NULL), RV_OK);
    const rv_record_t *recs;
    size_t n = 0;
    CHECK_INT(rv_consumer_poll(c, &recs, 10, &n, 1000, NULL), RV_OK);
    REQUIRE(n == 1);
    CHECK_INT(rv_broker_delete_topic(b, "gone", NULL), RV_OK);
    /* ASan would flag a use after free here. */
    CHECK_STR(recs[0].topic, "gone");
    CHECK(recs[0].value_len == 5 && memcmp(recs[0].value, "hello", 5) == 0);
    CHECK_INT(rv_producer_poll(p, 0), 1);
    CHECK_INT(g_reports, 1);
    CHECK_STR(g_report_value, "hello");
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_NOT_FOUND);
    CHECK_INT(rv_consumer_poll(c, &recs, 10, &n, 50, NULL), RV_OK);
    CHECK_INT(n, 0);
    CHECK_INT(rv_consumer_commit(c, NULL, 0, NULL), RV_ERR_STATE); /* no group */
    rv_consumer_close(c);
    rv_producer_close(p);
    rv_broker_close(b);
}

typedef struct counts_s {
    int assigned;
    int revoked;
} counts_t;

static void count_assign(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps,
                         size_t n) {
    ((counts_t *)opaque)->assigned += (int)n;
}

static void count_revoke(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps,
                         size_t n) {
    ((counts_t *)opaque)->revoked += (int)n;
}

/* A subscription to a topic that does not exist yet picks it up when it is created, and a
 * deleted topic's partitions are revoked; three members share the partitions round-robin. */
static void test_memory_group_follows_topics(void) {
    rv_broker_t *b = rv_broker_open("memory:", NULL, NULL);
    REQUIRE(b != NULL);
    counts_t cnt[3] = {{0, 0}, {0, 0}, {0, 0}};
    rv_consumer_t *c[3];
    const char *topics[] = {"later"};
    for (int i = 0; i < 3; i++) {
        rv_consumer_opts_t o = {
            .group = "g",
            .callbacks = {.opaque = &cnt[i], .on_assign = count_assign, .on_revoke = count_revoke}};
        c[i] = rv_consumer_new(b, &o, NULL);
        REQUIRE(c[i] != NULL);
        CHECK_INT(rv_consumer_subscribe(c[i], topics, 1, NULL), RV_OK);
    }
    const rv_record_t *recs;
    size_t n;
    for (int i = 0; i < 3; i++) {
        CHECK_INT(rv_consumer_poll(c[i], &recs, 10, &n, 0, NULL), RV_OK);
        CHECK_INT(cnt[i].assigned, 0);
    }
    CHECK_INT(rv_broker_create_topic(b, "later", 7, NULL, NULL), RV_OK);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(rv_consumer_poll(c[i], &recs, 10, &n, 0, NULL), RV_OK);
    }
    CHECK_INT(cnt[0].assigned, 3); /* partitions 0, 3, 6 */
    CHECK_INT(cnt[1].assigned, 2);
    CHECK_INT(cnt[2].assigned, 2);
    CHECK_INT(rv_broker_delete_topic(b, "later", NULL), RV_OK);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(rv_consumer_poll(c[i], &recs, 10, &n, 0, NULL), RV_OK);
        CHECK_INT(cnt[i].revoked, cnt[i].assigned);
    }
    /* Assigning by hand while subscribed is refused. */
    CHECK_INT(rv_broker_create_topic(b, "other", 1, NULL, NULL), RV_OK);
    rv_topic_partition_t tp = {"other", 0, RV_OFFSET_BEGINNING};
    CHECK_INT(rv_consumer_assign(c[0], &tp, 1, NULL), RV_ERR_STATE);
    for (int i = 0; i < 3; i++) {
        rv_consumer_close(c[i]);
    }
    rv_broker_close(b);
}

/* ---- running the suite per URL -------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void run_url(const char *url) {
    rv_error_t *err = NULL;
    rv_broker_t *probe = rv_broker_open(url, NULL, &err);
    if (!probe) {
        CHECK_MSG(false, "cannot open %s: %s", url, rv_error_message(err));
        rv_error_destroy(err);
        return;
    }
    rv_broker_close(probe);
    bc_caps_t caps = {.no_transactions = strncmp(url, "memory:", 7) == 0
                                             ? "memory: has no transactions"
                                             : NULL};
    bc_run_suite(url, &caps);
}

int main(int argc, char **argv) {
    RV_RUN(test_url_parsing);
    RV_RUN(test_topic_name_rule);
    RV_RUN(test_choose_partition);
    RV_RUN(test_null_arguments);
    RV_RUN(test_topic_conf_defaults);
    RV_RUN(test_memory_views_outlive_deletion);
    RV_RUN(test_memory_group_follows_topics);
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            run_url(argv[i]);
        }
        return rv_test_finish();
    }
    run_url("memory:");
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/rv-contract-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        CHECK_MSG(false, "mkdtemp(%s) failed", dir);
        return rv_test_finish();
    }
    char url[600];
    snprintf(url, sizeof url, "local:%s/data", dir);
    run_url(url);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rv_test_finish();
}
