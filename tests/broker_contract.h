/*
 * broker_contract.h: the broker contract, one suite of tests every broker implementation must
 * pass, written against the public API of rivulet/broker.h only.
 *
 * A test executable includes this header after rv_test.h and calls bc_run_suite(url, caps) for
 * each broker URL it wants checked (`memory:`, `local:DIR`, `kafka://...`); `caps` (NULL for a
 * full broker) says what a test double behind the URL cannot do, and each test that needs it
 * is skipped with the reason printed, never weakened. Every test opens
 * its own broker handle on that URL and works on topics and groups with names of its own
 * (suffixed with the process id and a counter), so the suite also runs against a broker that
 * already holds data. Assertions are exact: they name the records, offsets and partitions
 * expected, and they hold on every implementation (for example, compaction is only asserted on
 * segments that the test has certainly closed). Waits are bounded, and the whole suite takes a
 * few seconds per URL. It must never reach into an implementation's internals.
 */
#ifndef RV_BROKER_CONTRACT_H
#define RV_BROKER_CONTRACT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rivulet/broker.h"
#include "rivulet/clock.h"
#include "rivulet/config.h"
#include "rivulet/hash.h"
#include "rv_test.h"

/*
 * What the broker behind a URL cannot be expected to do, for test doubles such as librdkafka's
 * mock cluster. Each reason is NULL for a broker that can; otherwise it is printed when a test
 * needing it is skipped.
 */
typedef struct bc_caps_s {
    /* Creates a topic by other means, for a broker that cannot create topics itself (its
     * rv_broker_create_topic() then only answers for existing ones). NULL: the broker can. */
    bool (*create_topic)(void *opaque, const char *topic, int32_t partitions);
    void *opaque;
    /* Properties ("name=value", NULL-terminated) added to every broker the suite opens. */
    const char *const *conf;
    const char *no_topic_config;      /* keeps no topic properties (describe, max.message.bytes) */
    const char *no_topic_delete;      /* cannot delete topics: rv_broker_delete_topic() says so */
    const char *no_retention;         /* never deletes old records */
    const char *no_compaction;        /* never compacts */
    const char *no_offsets_for_times; /* cannot look offsets up by timestamp */
    const char *no_transactions;      /* has no transactions (RV_ERR_UNSUPPORTED) */
} bc_caps_t;

/* The URL under test, what it cannot do, and a counter that makes names unique. */
static const char *bc_url;
static bc_caps_t bc_caps;
static int bc_seq;

/* Prints why the current test is skipped and returns true when `reason` is set. */
static bool bc_skip(const char *reason) {
    if (reason) {
        fprintf(stderr, "skip %s on %s: %s\n", rv_test_current, bc_url, reason);
    }
    return reason != NULL;
}

/* ---- helpers -------------------------------------------------------------------------------- */

/* Writes a name unique to this process and call into `buf`: "<base>-<pid>-<n>". */
static const char *bc_name(char *buf, size_t size, const char *base) {
    snprintf(buf, size, "%s-%ld-%d", base, (long)getpid(), ++bc_seq);
    return buf;
}

/* A configuration with the given "name=value" pairs (NULL-terminated). */
static rv_conf_t *bc_conf(const char *const *pairs) {
    rv_conf_t *conf = rv_conf_new();
    for (size_t i = 0; conf && pairs && pairs[i]; i++) {
        rv_error_t *err = NULL;
        rv_err_t e = rv_conf_set_pair(conf, pairs[i], &err);
        CHECK_MSG(e == RV_OK, "configuration %s: %s", pairs[i], rv_error_message(err));
        rv_error_destroy(err);
    }
    return conf;
}

/* Opens the broker under test, with broker properties `pairs` (may be NULL). */
static rv_broker_t *bc_open(const char *const *pairs) {
    rv_conf_t *conf = bc_conf(pairs);
    for (size_t i = 0; conf && bc_caps.conf && bc_caps.conf[i]; i++) {
        rv_error_t *err = NULL;
        CHECK_MSG(rv_conf_set_pair(conf, bc_caps.conf[i], &err) == RV_OK, "configuration %s: %s",
                  bc_caps.conf[i], rv_error_message(err));
        rv_error_destroy(err);
    }
    rv_broker_opts_t opts = {.conf = conf};
    rv_error_t *err = NULL;
    rv_broker_t *b = rv_broker_open(bc_url, &opts, &err);
    CHECK_MSG(b != NULL, "rv_broker_open(%s): %s", bc_url, rv_error_message(err));
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return b;
}

/* Creates a topic with topic properties `pairs` (may be NULL); false when it fails. */
static bool bc_create(rv_broker_t *b, const char *topic, int32_t partitions,
                      const char *const *pairs) {
    if (bc_caps.create_topic) {
        bool ok = bc_caps.create_topic(bc_caps.opaque, topic, partitions);
        CHECK_MSG(ok, "create topic %s by the harness", topic);
        return ok;
    }
    rv_conf_t *conf = pairs ? bc_conf(pairs) : NULL;
    rv_error_t *err = NULL;
    rv_err_t e = rv_broker_create_topic(b, topic, partitions, conf, &err);
    CHECK_MSG(e == RV_OK, "create topic %s: %s", topic, rv_error_message(err));
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return e == RV_OK;
}

/* Deletes a topic the test made; a broker that cannot delete topics must say so. */
static void bc_delete(rv_broker_t *b, const char *topic) {
    rv_error_t *err = NULL;
    rv_err_t e = rv_broker_delete_topic(b, topic, &err);
    rv_err_t want = bc_caps.no_topic_delete ? RV_ERR_UNSUPPORTED : RV_OK;
    CHECK_MSG(e == want, "delete topic %s: %s (expected %s)", topic, rv_error_message(err),
              rv_err_name(want));
    rv_error_destroy(err);
}

static rv_producer_t *bc_producer(rv_broker_t *b, rv_delivery_cb cb, void *opaque) {
    rv_producer_opts_t opts = {.delivery_cb = cb, .opaque = opaque};
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(b, &opts, &err);
    CHECK_MSG(p != NULL, "rv_producer_new: %s", rv_error_message(err));
    rv_error_destroy(err);
    return p;
}

/* Sends one record of strings (NULL key = no key, NULL value = tombstone). */
static rv_err_t bc_send(rv_producer_t *p, const char *topic, int32_t partition, const char *key,
                        const char *value, int64_t timestamp_ms) {
    rv_record_t r = {.topic = topic,
                     .partition = partition,
                     .timestamp_ms = timestamp_ms,
                     .key = key,
                     .key_len = key ? strlen(key) : 0,
                     .value = value,
                     .value_len = value ? strlen(value) : 0};
    rv_err_t e;
    /* A full queue is not a failure of the broker: serve reports and retry. */
    while ((e = rv_producer_send(p, &r, NULL)) == RV_ERR_AGAIN) {
        rv_producer_poll(p, 10);
    }
    CHECK_MSG(e == RV_OK, "send to %s [%d]: %s", topic, (int)partition, rv_err_name(e));
    return e;
}

static void bc_flush(rv_producer_t *p) {
    rv_error_t *err = NULL;
    rv_err_t e = rv_producer_flush(p, 10000, &err);
    CHECK_MSG(e == RV_OK, "flush: %s", rv_error_message(err));
    rv_error_destroy(err);
}

static rv_consumer_t *bc_consumer(rv_broker_t *b, const char *group, const char *reset,
                                  const rv_consumer_callbacks_t *cbs) {
    const char *pairs[] = {"group.check.interval.ms=20", NULL, NULL};
    char reset_pair[64];
    if (reset) {
        snprintf(reset_pair, sizeof reset_pair, "auto.offset.reset=%s", reset);
        pairs[1] = reset_pair;
    }
    rv_conf_t *conf = bc_conf(pairs);
    rv_consumer_opts_t opts = {.conf = conf, .group = group};
    if (cbs) {
        opts.callbacks = *cbs;
    }
    rv_error_t *err = NULL;
    rv_consumer_t *c = rv_consumer_new(b, &opts, &err);
    CHECK_MSG(c != NULL, "rv_consumer_new: %s", rv_error_message(err));
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return c;
}

static rv_err_t bc_assign1(rv_consumer_t *c, const char *topic, int32_t partition, int64_t offset) {
    rv_topic_partition_t tp = {topic, partition, offset};
    rv_error_t *err = NULL;
    rv_err_t e = rv_consumer_assign(c, &tp, 1, &err);
    rv_error_destroy(err);
    return e;
}

/* A consumed record, copied so it outlives the poll that returned it. */
typedef struct bc_rec_s {
    char topic[256];
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    char *key; /* NUL-terminated copy; NULL when the record has no key */
    size_t key_len;
    char *value; /* NUL-terminated copy; NULL for a tombstone */
    size_t value_len;
} bc_rec_t;

typedef struct bc_recs_s {
    bc_rec_t *v;
    size_t n;
    size_t cap;
} bc_recs_t;

static char *bc_dup(const void *p, size_t n) {
    if (!p) {
        return NULL;
    }
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static void bc_recs_add(bc_recs_t *rs, const rv_record_t *r) {
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 64;
        rs->v = realloc(rs->v, rs->cap * sizeof *rs->v);
        if (!rs->v) {
            abort();
        }
    }
    bc_rec_t *c = &rs->v[rs->n++];
    snprintf(c->topic, sizeof c->topic, "%s", r->topic ? r->topic : "(null)");
    c->partition = r->partition;
    c->offset = r->offset;
    c->timestamp_ms = r->timestamp_ms;
    c->key = bc_dup(r->key, r->key_len);
    c->key_len = r->key_len;
    c->value = bc_dup(r->value, r->value_len);
    c->value_len = r->value_len;
}

static void bc_recs_free(bc_recs_t *rs) {
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->v[i].key);
        free(rs->v[i].value);
    }
    free(rs->v);
    *rs = (bc_recs_t){0};
}

/* Polls, collecting copies, until `want` records are held or `timeout_ms` passed. */
static size_t bc_collect(rv_consumer_t *c, bc_recs_t *rs, size_t want, int timeout_ms) {
    int64_t deadline = rv_clock_mono_ms() + timeout_ms;
    while (rs->n < want) {
        int64_t left = deadline - rv_clock_mono_ms();
        if (left <= 0) {
            break;
        }
        const rv_record_t *recs;
        size_t n = 0;
        rv_error_t *err = NULL;
        rv_err_t e = rv_consumer_poll(c, &recs, 500, &n, left > 100 ? 100 : (int)left, &err);
        CHECK_MSG(e == RV_OK, "poll: %s", rv_error_message(err));
        rv_error_destroy(err);
        for (size_t i = 0; i < n; i++) {
            bc_recs_add(rs, &recs[i]);
        }
        if (e) {
            break;
        }
    }
    return rs->n;
}

/* Polls for `ms` milliseconds, collecting whatever comes. */
static void bc_drain(rv_consumer_t *c, bc_recs_t *rs, int ms) {
    int64_t deadline = rv_clock_mono_ms() + ms;
    for (;;) {
        int64_t left = deadline - rv_clock_mono_ms();
        if (left <= 0) {
            return;
        }
        const rv_record_t *recs;
        size_t n = 0;
        rv_error_t *err = NULL;
        rv_err_t e = rv_consumer_poll(c, &recs, 500, &n, (int)left, &err);
        CHECK_MSG(e == RV_OK, "poll: %s", rv_error_message(err));
        rv_error_destroy(err);
        for (size_t i = 0; i < n; i++) {
            bc_recs_add(rs, &recs[i]);
        }
    }
}

static int64_t bc_position(rv_consumer_t *c, const char *topic, int32_t partition) {
    rv_topic_partition_t tp = {topic, partition, 0};
    rv_error_t *err = NULL;
    rv_err_t e = rv_consumer_position(c, &tp, 1, &err);
    CHECK_MSG(e == RV_OK, "position: %s", rv_error_message(err));
    rv_error_destroy(err);
    return tp.offset;
}

static int64_t bc_committed(rv_consumer_t *c, const char *topic, int32_t partition) {
    rv_topic_partition_t tp = {topic, partition, 0};
    rv_error_t *err = NULL;
    rv_err_t e = rv_consumer_committed(c, &tp, 1, &err);
    CHECK_MSG(e == RV_OK, "committed: %s", rv_error_message(err));
    rv_error_destroy(err);
    return tp.offset;
}

static void bc_watermarks(rv_broker_t *b, const char *topic, int32_t partition, int64_t *low,
                          int64_t *high) {
    rv_error_t *err = NULL;
    rv_err_t e = rv_broker_watermarks(b, topic, partition, low, high, &err);
    CHECK_MSG(e == RV_OK, "watermarks %s [%d]: %s", topic, (int)partition, rv_error_message(err));
    rv_error_destroy(err);
}

/* A value of exactly `len` bytes that starts with `text` and is padded with '.'. */
static const char *bc_padded(char *buf, size_t len, const char *text) {
    size_t n = strlen(text);
    memcpy(buf, text, n);
    memset(buf + n, '.', len > n ? len - n : 0);
    buf[len > n ? len : n] = 0;
    return buf;
}

/* ---- topics --------------------------------------------------------------------------------- */

static bool bc_list_has(char **names, const char *name) {
    for (size_t i = 0; names && names[i]; i++) {
        if (strcmp(names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static void bc_test_topic_admin(void) {
    if (bc_skip(bc_caps.no_topic_config) || bc_skip(bc_caps.no_topic_delete)) {
        return;
    }
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    CHECK_STR(rv_broker_url(b), bc_url);
    char ta[64], tb[64];
    bc_name(ta, sizeof ta, "admin-a");
    bc_name(tb, sizeof tb, "admin-b");

    char **names = NULL;
    size_t n0 = 99;
    CHECK_INT(rv_broker_list_topics(b, &names, &n0, NULL), RV_OK);
    CHECK(!bc_list_has(names, ta));
    rv_strv_free(names);

    const char *props[] = {"retention.ms=3600000", "cleanup.policy=compact",
                           "segment.bytes=1048576", "max.message.bytes=65536", NULL};
    REQUIRE(bc_create(b, ta, 3, props));
    REQUIRE(bc_create(b, tb, 1, NULL));

    int32_t parts = 0;
    rv_conf_t *conf = NULL;
    CHECK_INT(rv_broker_describe_topic(b, ta, &parts, &conf, NULL), RV_OK);
    CHECK_INT(parts, 3);
    REQUIRE(conf != NULL);
    CHECK_INT(rv_conf_get_int(conf, "retention.ms"), 3600000);
    CHECK_STR(rv_conf_get(conf, "cleanup.policy"), "compact");
    CHECK_INT(rv_conf_get_int(conf, "segment.bytes"), 1048576);
    CHECK_INT(rv_conf_get_int(conf, "max.message.bytes"), 65536);
    rv_conf_destroy(conf);
    conf = NULL;
    CHECK_INT(rv_broker_describe_topic(b, tb, &parts, &conf, NULL), RV_OK);
    CHECK_INT(parts, 1);
    REQUIRE(conf != NULL);
    CHECK_INT(rv_conf_get_int(conf, "retention.ms"), 604800000); /* the default */
    CHECK_STR(rv_conf_get(conf, "cleanup.policy"), "delete");
    rv_conf_destroy(conf);
    parts = 0;
    CHECK_INT(rv_broker_describe_topic(b, ta, &parts, NULL, NULL), RV_OK);
    CHECK_INT(parts, 3);

    size_t n1 = 0;
    CHECK_INT(rv_broker_list_topics(b, &names, &n1, NULL), RV_OK);
    CHECK_INT(n1, n0 + 2);
    CHECK(bc_list_has(names, ta));
    CHECK(bc_list_has(names, tb));
    size_t counted = 0;
    for (size_t i = 0; names && names[i]; i++, counted++) {
        if (i > 0) {
            CHECK_MSG(strcmp(names[i - 1], names[i]) < 0, "list not sorted: '%s' before '%s'",
                      names[i - 1], names[i]);
        }
    }
    CHECK_INT(counted, n1);
    rv_strv_free(names);

    /* Data goes with the topic: a topic created again under the name starts empty. */
    rv_producer_t *p = bc_producer(b, NULL, NULL);
    REQUIRE(p != NULL);
    for (int i = 0; i < 3; i++) {
        bc_send(p, ta, 1, "k", "v", 0);
    }
    bc_flush(p);
    rv_producer_close(p);
    int64_t lo = -5, hi = -5;
    bc_watermarks(b, ta, 1, &lo, &hi);
    CHECK_INT(hi, 3);

    CHECK_INT(rv_broker_delete_topic(b, ta, NULL), RV_OK);
    CHECK_INT(rv_broker_list_topics(b, &names, &n1, NULL), RV_OK);
    CHECK_INT(n1, n0 + 1);
    CHECK(!bc_list_has(names, ta));
    CHECK(bc_list_has(names, tb));
    rv_strv_free(names);
    CHECK_INT(rv_broker_describe_topic(b, ta, &parts, NULL, NULL), RV_ERR_NOT_FOUND);
    CHECK_INT(rv_broker_watermarks(b, ta, 0, &lo, &hi, NULL), RV_ERR_NOT_FOUND);

    REQUIRE(bc_create(b, ta, 2, NULL));
    CHECK_INT(rv_broker_describe_topic(b, ta, &parts, NULL, NULL), RV_OK);
    CHECK_INT(parts, 2);
    bc_watermarks(b, ta, 1, &lo, &hi);
    CHECK_INT(lo, 0);
    CHECK_INT(hi, 0);
    CHECK_INT(rv_broker_delete_topic(b, ta, NULL), RV_OK);
    CHECK_INT(rv_broker_delete_topic(b, tb, NULL), RV_OK);
    rv_broker_close(b);
}

/* Expects `e` to be `code` with a message that mentions `needle`. */
static void bc_expect_error(rv_err_t e, rv_error_t *err, rv_err_t code, const char *needle,
                            const char *what) {
    CHECK_MSG(e == code, "%s: got %s, expected %s", what, rv_err_name(e), rv_err_name(code));
    CHECK_MSG(rv_error_code(err) == code, "%s: error object says %s", what,
              rv_err_name(rv_error_code(err)));
    if (needle) {
        CHECK_MSG(strstr(rv_error_message(err), needle) != NULL,
                  "%s: message \"%s\" does not name '%s'", what, rv_error_message(err), needle);
    }
}

static void bc_test_topic_errors(void) {
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64], missing[64];
    bc_name(t, sizeof t, "errors");
    bc_name(missing, sizeof missing, "missing");
    REQUIRE(bc_create(b, t, 2, NULL));

    rv_error_t *err = NULL;
    rv_err_t e = rv_broker_create_topic(b, t, 2, NULL, &err);
    bc_expect_error(e, err, RV_ERR_EXISTS, t, "create twice");
    e = rv_broker_delete_topic(b, missing, &err);
    bc_expect_error(e, err, RV_ERR_NOT_FOUND, missing, "delete missing");
    int32_t parts = 7;
    e = rv_broker_describe_topic(b, missing, &parts, NULL, &err);
    bc_expect_error(e, err, RV_ERR_NOT_FOUND, missing, "describe missing");
    e = rv_broker_watermarks(b, t, 2, NULL, NULL, &err);
    bc_expect_error(e, err, RV_ERR_INVALID_ARG, t, "watermarks of partition 2 of 2");

    char long_name[300];
    memset(long_name, 'x', 250);
    long_name[250] = 0;
    const char *bad[] = {"", ".", "..", "a/b", "a b", "caf\xc3\xa9", "tab\t", long_name};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e = rv_broker_create_topic(b, bad[i], 1, NULL, &err);
        bc_expect_error(e, err, RV_ERR_INVALID_ARG, NULL, "bad topic name");
        CHECK_MSG(strstr(rv_error_message(err), "topic name") != NULL, "message: %s",
                  rv_error_message(err));
    }
    CHECK_INT(rv_broker_create_topic(b, NULL, 1, NULL, NULL), RV_ERR_INVALID_ARG);

    char ok_long[250];
    bc_name(ok_long, sizeof ok_long, "long");
    size_t len = strlen(ok_long);
    memset(ok_long + len, 'y', 249 - len);
    ok_long[249] = 0;
    CHECK(bc_create(b, ok_long, 1, NULL));
    bc_delete(b, ok_long);

    char other[64];
    bc_name(other, sizeof other, "parts");
    e = rv_broker_create_topic(b, other, 0, NULL, &err);
    bc_expect_error(e, err, RV_ERR_INVALID_ARG, other, "0 partitions");
    e = rv_broker_create_topic(b, other, -3, NULL, &err);
    bc_expect_error(e, err, RV_ERR_INVALID_ARG, other, "-3 partitions");

    /* A property that is not topic-scoped is refused, naming it. */
    const char *client_prop[] = {"linger.ms=10", NULL};
    rv_conf_t *conf = bc_conf(client_prop);
    e = rv_broker_create_topic(b, other, 1, conf, &err);
    bc_expect_error(e, err, RV_ERR_CONFIG, "linger.ms", "producer property on a topic");
    rv_conf_destroy(conf);
    CHECK_INT(rv_broker_describe_topic(b, other, &parts, NULL, NULL), RV_ERR_NOT_FOUND);

    rv_error_destroy(err);
    bc_delete(b, t);
    rv_broker_close(b);
}

/* ---- producing ------------------------------------------------------------------------------ */

static void bc_test_order_per_partition(void) {
    enum { N = 3000, P = 3 };
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64];
    bc_name(t, sizeof t, "order");
    REQUIRE(bc_create(b, t, P, NULL));
    rv_producer_t *p = bc_producer(b, NULL, NULL);
    REQUIRE(p != NULL);
    char v[32];
    for (int i = 0; i < N; i++) {
        snprintf(v, sizeof v, "v%d", i);
        bc_send(p, t, i % P, NULL, v, 0);
    }
    bc_flush(p);
    rv_producer_close(p);

    rv_consumer_t *c = bc_consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);
    rv_topic_partition_t tps[P];
    for (int k = 0; k < P; k++) {
        tps[k] = (rv_topic_partition_t){t, k, RV_OFFSET_BEGINNING};
    }
    CHECK_INT(rv_consumer_assign(c, tps, P, NULL), RV_OK);
    bc_recs_t rs = {0};
    bc_collect(c, &rs, N, 5000);
    CHECK_INT(rs.n, N);
    int64_t next[P] = {0};
    for (size_t i = 0; i < rs.n; i++) {
        const bc_rec_t *r = &rs.v[i];
        REQUIRE(r->partition >= 0 && r->partition < P);
        CHECK_STR(r->topic, t);
        CHECK_MSG(r->offset == next[r->partition], "partition %d: offset %lld after %lld",
                  (int)r->partition, (long long)r->offset, (long long)next[r->partition] - 1);
        snprintf(v, sizeof v, "v%lld", (long long)(r->offset * P + r->partition));
        CHECK_STR(r->value, v);
        CHECK(r->key == NULL);
        next[r->partition] = r->offset + 1;
    }
    for (int k = 0; k < P; k++) {
        CHECK_INT(next[k], N / P);
    }
    bc_recs_free(&rs);
    rv_consumer_close(c);
    rv_broker_close(b);
}

/* Delivery reports, kept for checking. */
typedef struct bc_report_s {
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    rv_err_t err;
    uintptr_t opaque;
    char key[32];
    char value[32];
    bool topic_ok;
} bc_report_t;

typedef struct bc_reports_s {
    pthread_mutex_t lock;
    const char *topic;
    bc_report_t *v;
    size_t n;
    size_t cap;
} bc_reports_t;

static void bc_on_delivery(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    bc_reports_t *rp = opaque;
    pthread_mutex_lock(&rp->lock);
    if (rp->n == rp->cap) {
        rp->cap = rp->cap ? rp->cap * 2 : 256;
        rp->v = realloc(rp->v, rp->cap * sizeof *rp->v);
        if (!rp->v) {
            abort();
        }
    }
    bc_report_t *r = &rp->v[rp->n++];
    memset(r, 0, sizeof *r);
    r->partition = rec->partition;
    r->offset = rec->offset;
    r->timestamp_ms = rec->timestamp_ms;
    r->err = err;
    r->opaque = (uintptr_t)rec_opaque;
    r->topic_ok = rec->topic && rp->topic && strcmp(rec->topic, rp->topic) == 0;
    if (rec->key && rec->key_len < sizeof r->key) {
        memcpy(r->key, rec->key, rec->key_len);
    }
    if (rec->value && rec->value_len < sizeof r->value) {
        memcpy(r->value, rec->value, rec->value_len);
    }
    pthread_mutex_unlock(&rp->lock);
}

static void bc_reports_init(bc_reports_t *rp, const char *topic) {
    memset(rp, 0, sizeof *rp);
    pthread_mutex_init(&rp->lock, NULL);
    rp->topic = topic;
}

static void bc_reports_free(bc_reports_t *rp) {
    pthread_mutex_destroy(&rp->lock);
    free(rp->v);
}

static void bc_test_delivery_reports(void) {
    enum { N = 500 };
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64];
    bc_name(t, sizeof t, "delivery");
    REQUIRE(bc_create(b, t, 2, NULL));
    bc_reports_t rp;
    bc_reports_init(&rp, t);
    rv_producer_t *p = bc_producer(b, bc_on_delivery, &rp);
    REQUIRE(p != NULL);
    char k[32], v[32];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "v%d", i);
        rv_record_t r = {.topic = t,
                         .partition = i % 2,
                         .key = k,
                         .key_len = strlen(k),
                         .value = v,
                         .value_len = strlen(v)};
        CHECK_INT(rv_producer_send(p, &r, (void *)(uintptr_t)(i + 1)), RV_OK);
        if (i % 100 == 99) {
            rv_producer_poll(p, 0); /* some reports may be served here, the rest by flush */
        }
    }
    bc_flush(p);
    CHECK_INT(rp.n, N); /* every report is served by the time flush returns */
    int64_t next[2] = {0, 0};
    bool seen[N] = {false};
    for (size_t i = 0; i < rp.n; i++) {
        const bc_report_t *r = &rp.v[i];
        CHECK_INT(r->err, RV_OK);
        CHECK(r->topic_ok);
        REQUIRE(r->opaque >= 1 && r->opaque <= N);
        int idx = (int)r->opaque - 1;
        CHECK(!seen[idx]);
        seen[idx] = true;
        CHECK_INT(r->partition, idx % 2);
        /* Reports of one partition come in offset order, and offsets follow the sends. */
        CHECK_INT(r->offset, next[r->partition]);
        CHECK_INT(r->offset, idx / 2);
        next[r->partition] = r->offset + 1;
        snprintf(k, sizeof k, "k%d", idx);
        snprintf(v, sizeof v, "v%d", idx);
        CHECK_STR(r->key, k);
        CHECK_STR(r->value, v);
        CHECK(r->timestamp_ms > 0);
    }
    CHECK_INT(rv_producer_poll(p, 0), 0); /* nothing left */
    rv_producer_close(p);
    CHECK_INT(rp.n, N);
    bc_reports_free(&rp);
    rv_broker_close(b);
}

static void bc_test_send_errors(void) {
    if (bc_skip(bc_caps.no_topic_config)) {
        return;
    }
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64], missing[64], small[64];
    bc_name(t, sizeof t, "senderr");
    bc_name(missing, sizeof missing, "nosuch");
    bc_name(small, sizeof small, "small");
    REQUIRE(bc_create(b, t, 2, NULL));
    const char *props[] = {"max.message.bytes=1024", NULL};
    REQUIRE(bc_create(b, small, 1, props));
    bc_reports_t rp;
    bc_reports_init(&rp, small);
    rv_producer_t *p = bc_producer(b, bc_on_delivery, &rp);
    REQUIRE(p != NULL);

    rv_record_t r = {.topic = missing, .partition = RV_PARTITION_ANY, .value = "x", .value_len = 1};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_NOT_FOUND);
    r.topic = t;
    r.partition = 2;
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_INVALID_ARG);
    r.partition = -2;
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_INVALID_ARG);
    CHECK_INT(rv_producer_send(p, NULL, NULL), RV_ERR_INVALID_ARG);
    r.partition = 0;
    r.value = NULL; /* a length without bytes */
    r.value_len = 3;
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_INVALID_ARG);

    static char big[4096];
    memset(big, 'b', sizeof big);
    r = (rv_record_t){.topic = small, .partition = 0, .value = big, .value_len = sizeof big};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_ERR_LIMIT);
    r.value_len = 100;
    CHECK_INT(rv_producer_send(p, &r, (void *)(uintptr_t)7), RV_OK);
    bc_flush(p);
    CHECK_INT(rp.n, 1); /* refused sends have no report */
    if (rp.n == 1) {
        CHECK_INT(rp.v[0].opaque, 7);
        CHECK_INT(rp.v[0].offset, 0);
    }
    int64_t lo, hi;
    bc_watermarks(b, t, 0, &lo, &hi);
    CHECK_INT(hi, 0);
    bc_watermarks(b, small, 0, &lo, &hi);
    CHECK_INT(hi, 1);
    rv_producer_close(p);
    bc_reports_free(&rp);
    rv_broker_close(b);
}

static void bc_test_key_partitioning(void) {
    enum { P = 8, N = 200 };
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64];
    bc_name(t, sizeof t, "keys");
    REQUIRE(bc_create(b, t, P, NULL));
    bc_reports_t rp;
    bc_reports_init(&rp, t);
    rv_producer_t *p = bc_producer(b, bc_on_delivery, &rp);
    REQUIRE(p != NULL);
    char k[32];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        rv_record_t r = {.topic = t,
                         .partition = RV_PARTITION_ANY,
                         .key = k,
                         .key_len = strlen(k),
                         .value = "v",
                         .value_len = 1};
        CHECK_INT(rv_producer_send(p, &r, (void *)(uintptr_t)(i + 1)), RV_OK);
    }
    /* An empty key is a key (hashed), and binary keys hash their bytes. */
    static const char bin[] = {'\0', 'a', '\xff', '\0'};
    rv_record_t r = {.topic = t, .partition = RV_PARTITION_ANY, .key = "", .key_len = 0};
    CHECK_INT(rv_producer_send(p, &r, (void *)(uintptr_t)(N + 1)), RV_OK);
    r.key = bin;
    r.key_len = sizeof bin;
    CHECK_INT(rv_producer_send(p, &r, (void *)(uintptr_t)(N + 2)), RV_OK);
    bc_flush(p);
    REQUIRE(rp.n == N + 2);
    int per_partition[P] = {0};
    for (size_t i = 0; i < rp.n; i++) {
        int idx = (int)rp.v[i].opaque - 1;
        int32_t want;
        if (idx < N) {
            snprintf(k, sizeof k, "key-%d", idx);
            want = rv_murmur2_partition(k, strlen(k), P);
        } else if (idx == N) {
            want = rv_murmur2_partition("", 0, P);
        } else {
            want = rv_murmur2_partition(bin, sizeof bin, P);
        }
        CHECK_MSG(rp.v[i].partition == want, "key #%d went to partition %d, murmur2 says %d", idx,
                  (int)rp.v[i].partition, (int)want);
        if (rp.v[i].partition >= 0 && rp.v[i].partition < P) {
            per_partition[rp.v[i].partition]++;
        }
    }
    /* The consumer sees each key in the partition murmur2 chose. */
    rv_consumer_t *c = bc_consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);
    rv_topic_partition_t tps[P];
    for (int i = 0; i < P; i++) {
        tps[i] = (rv_topic_partition_t){t, i, RV_OFFSET_BEGINNING};
    }
    CHECK_INT(rv_consumer_assign(c, tps, P, NULL), RV_OK);
    bc_recs_t rs = {0};
    bc_collect(c, &rs, N + 2, 5000);
    CHECK_INT(rs.n, N + 2);
    int consumed[P] = {0};
    for (size_t i = 0; i < rs.n; i++) {
        REQUIRE(rs.v[i].key != NULL);
        CHECK_INT(rs.v[i].partition, rv_murmur2_partition(rs.v[i].key, rs.v[i].key_len, P));
        consumed[rs.v[i].partition]++;
    }
    for (int i = 0; i < P; i++) {
        CHECK_INT(consumed[i], per_partition[i]);
    }
    bc_recs_free(&rs);
    rv_consumer_close(c);
    rv_producer_close(p);
    bc_reports_free(&rp);
    rv_broker_close(b);
}

static void bc_test_null_key_round_robin(void) {
    enum { P = 4, N = 40 };
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64];
    bc_name(t, sizeof t, "rr");
    REQUIRE(bc_create(b, t, P, NULL));
    bc_reports_t rp;
    bc_reports_init(&rp, t);
    rv_producer_t *p = bc_producer(b, bc_on_delivery, &rp);
    REQUIRE(p != NULL);
    for (int i = 0; i < N; i++) {
        bc_send(p, t, RV_PARTITION_ANY, NULL, "x", 0);
    }
    bc_flush(p);
    int count[P] = {0};
    for (size_t i = 0; i < rp.n; i++) {
        REQUIRE(rp.v[i].partition >= 0 && rp.v[i].partition < P);
        count[rp.v[i].partition]++;
    }
    for (int i = 0; i < P; i++) {
        CHECK_MSG(count[i] == N / P, "partition %d got %d of %d keyless records", i, count[i], N);
        int64_t lo, hi;
        bc_watermarks(b, t, i, &lo, &hi);
        CHECK_INT(hi, N / P);
    }
    rv_producer_close(p);
    bc_reports_free(&rp);
    rv_broker_close(b);
}

static void bc_test_headers_timestamps(void) {
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64];
    bc_name(t, sizeof t, "headers");
    REQUIRE(bc_create(b, t, 1, NULL));
    rv_producer_t *p = bc_producer(b, NULL, NULL);
    REQUIRE(p != NULL);
    static const char bin[] = {'\0', '\x01', '\xff', '\0', 'z'};
    rv_header_t hs[] = {{"a", "1", 1}, {"bin", bin, sizeof bin}, {"empty", "", 0}, {"a", "2", 1}};
    rv_record_t r = {.topic = t,
                     .partition = 0,
                     .key = "k",
                     .key_len = 1,
                     .value = "v",
                     .value_len = 1,
                     .headers = hs,
                     .header_count = 4,
                     .timestamp_ms = INT64_C(1600000000123)};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    int64_t before = rv_clock_wall_ms();
    r = (rv_record_t){.topic = t, .partition = 0, .value = "now", .value_len = 3};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    bc_flush(p);
    int64_t after = rv_clock_wall_ms();
    rv_producer_close(p);

    rv_consumer_t *c = bc_consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);
    CHECK_INT(bc_assign1(c, t, 0, RV_OFFSET_BEGINNING), RV_OK);
    const rv_record_t *recs = NULL;
    size_t n = 0, got = 0;
    int64_t deadline = rv_clock_mono_ms() + 5000;
    while (got < 2 && rv_clock_mono_ms() < deadline) {
        CHECK_INT(rv_consumer_poll(c, &recs, 10, &n, 100, NULL), RV_OK);
        for (size_t i = 0; i < n; i++, got++) {
            const rv_record_t *x = &recs[i];
            CHECK_INT(x->offset, (int64_t)got);
            if (got == 0) {
                CHECK_INT(x->timestamp_ms, INT64_C(1600000000123));
                REQUIRE(x->header_count == 4);
                REQUIRE(x->headers != NULL);
                CHECK_STR(x->headers[0].name, "a");
                CHECK_INT(x->headers[0].value_len, 1);
                CHECK(memcmp(x->headers[0].value, "1", 1) == 0);
                CHECK_STR(x->headers[1].name, "bin");
                CHECK_INT(x->headers[1].value_len, sizeof bin);
                CHECK(x->headers[1].value && memcmp(x->headers[1].value, bin, sizeof bin) == 0);
                CHECK_STR(x->headers[2].name, "empty");
                CHECK_INT(x->headers[2].value_len, 0);
                CHECK_STR(x->headers[3].name, "a");
                CHECK(x->headers[3].value_len == 1 && memcmp(x->headers[3].value, "2", 1) == 0);
            } else {
                CHECK_MSG(x->timestamp_ms >= before && x->timestamp_ms <= after,
                          "timestamp %lld not within [%lld, %lld]", (long long)x->timestamp_ms,
                          (long long)before, (long long)after);
                CHECK_INT(x->header_count, 0);
                CHECK(x->value_len == 3 && memcmp(x->value, "now", 3) == 0);
            }
        }
    }
    CHECK_INT(got, 2);
    rv_consumer_close(c);
    rv_broker_close(b);
}

static void bc_test_null_vs_empty(void) {
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64];
    bc_name(t, sizeof t, "nulls");
    REQUIRE(bc_create(b, t, 1, NULL));
    rv_producer_t *p = bc_producer(b, NULL, NULL);
    REQUIRE(p != NULL);
    bc_send(p, t, 0, NULL, NULL, 0); /* no key, tombstone */
    bc_send(p, t, 0, "", "", 0);     /* empty key, empty value */
    bc_send(p, t, 0, "k", NULL, 0);  /* key, tombstone */
    bc_send(p, t, 0, NULL, "", 0);   /* no key, empty value */
    bc_flush(p);
    rv_producer_close(p);
    rv_consumer_t *c = bc_consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);
    CHECK_INT(bc_assign1(c, t, 0, RV_OFFSET_BEGINNING), RV_OK);
    bc_recs_t rs = {0};
    bc_collect(c, &rs, 4, 5000);
    REQUIRE(rs.n == 4);
    CHECK(rs.v[0].key == NULL && rs.v[0].value == NULL);
    CHECK(rs.v[1].key != NULL && rs.v[1].key_len == 0);
    CHECK(rs.v[1].value != NULL && rs.v[1].value_len == 0);
    CHECK(rs.v[2].key != NULL && rs.v[2].key_len == 1 && rs.v[2].value == NULL);
    CHECK(rs.v[3].key == NULL && rs.v[3].value != NULL && rs.v[3].value_len == 0);
    for (size_t i = 0; i < rs.n; i++) {
        CHECK_INT(rs.v[i].offset, (int64_t)i);
    }
    bc_recs_free(&rs);
    rv_consumer_close(c);
    rv_broker_close(b);
}

/* Several threads send through one producer; every record lands once, in per-thread order. */
typedef struct bc_sender_s {
    rv_producer_t *p;
    const char *topic;
    int id;
    int count;
    int failures;
} bc_sender_t;

static void *bc_sender_main(void *arg) {
    bc_sender_t *s = arg;
    char v[32];
    for (int i = 0; i < s->count; i++) {
        snprintf(v, sizeof v, "%d:%d", s->id, i);
        rv_record_t r = {
            .topic = s->topic, .partition = s->id % 2, .value = v, .value_len = strlen(v)};
        rv_err_t e;
        while ((e = rv_producer_send(s->p, &r, NULL)) == RV_ERR_AGAIN) {
            rv_producer_poll(s->p, 5);
        }
        if (e != RV_OK) {
            s->failures++;
        }
    }
    return NULL;
}

static void bc_test_threaded_send(void) {
    enum { THREADS = 4, PER = 500 };
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64];
    bc_name(t, sizeof t, "threads");
    REQUIRE(bc_create(b, t, 2, NULL));
    bc_reports_t rp;
    bc_reports_init(&rp, t);
    rv_producer_t *p = bc_producer(b, bc_on_delivery, &rp);
    REQUIRE(p != NULL);
    pthread_t th[THREADS];
    bc_sender_t s[THREADS];
    for (int i = 0; i < THREADS; i++) {
        s[i] = (bc_sender_t){p, t, i, PER, 0};
        REQUIRE(pthread_create(&th[i], NULL, bc_sender_main, &s[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(s[i].failures, 0);
    }
    bc_flush(p);
    CHECK_INT(rp.n, THREADS * PER);
    for (int k = 0; k < 2; k++) {
        int64_t lo, hi;
        bc_watermarks(b, t, k, &lo, &hi);
        CHECK_INT(hi, THREADS * PER / 2);
    }
    rv_producer_close(p);
    bc_reports_free(&rp);

    rv_consumer_t *c = bc_consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);
    rv_topic_partition_t tps[2] = {{t, 0, RV_OFFSET_BEGINNING}, {t, 1, RV_OFFSET_BEGINNING}};
    CHECK_INT(rv_consumer_assign(c, tps, 2, NULL), RV_OK);
    bc_recs_t rs = {0};
    bc_collect(c, &rs, THREADS * PER, 5000);
    CHECK_INT(rs.n, THREADS * PER);
    int next[THREADS] = {0};
    for (size_t i = 0; i < rs.n; i++) {
        int id = -1, seq = -1;
        REQUIRE(rs.v[i].value && sscanf(rs.v[i].value, "%d:%d", &id, &seq) == 2);
        REQUIRE(id >= 0 && id < THREADS);
        CHECK_INT(rs.v[i].partition, id % 2);
        CHECK_MSG(seq == next[id], "thread %d: record %d after %d", id, seq, next[id] - 1);
        next[id] = seq + 1;
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK_INT(next[i], PER);
    }
    bc_recs_free(&rs);
    rv_consumer_close(c);
    rv_broker_close(b);
}

/* ---- consuming ------------------------------------------------------------------------------ */

static void bc_test_watermarks(void) {
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64], missing[64];
    bc_name(t, sizeof t, "marks");
    bc_name(missing, sizeof missing, "nomarks");
    REQUIRE(bc_create(b, t, 2, NULL));
    int64_t lo = -9, hi = -9;
    bc_watermarks(b, t, 0, &lo, &hi);
    CHECK_INT(lo, 0);
    CHECK_INT(hi, 0);
    rv_producer_t *p = bc_producer(b, NULL, NULL);
    REQUIRE(p != NULL);
    for (int i = 0; i < 7; i++) {
        bc_send(p, t, 0, NULL, "a", 0);
    }
    for (int i = 0; i < 3; i++) {
        bc_send(p, t, 1, NULL, "b", 0);
    }
    bc_flush(p);
    rv_producer_close(p);
    bc_watermarks(b, t, 0, &lo, &hi);
    CHECK_INT(lo, 0);
    CHECK_INT(hi, 7);
    bc_watermarks(b, t, 1, &lo, &hi);
    CHECK_INT(lo, 0);
    CHECK_INT(hi, 3);
    rv_error_t *err = NULL;
    CHECK_INT(rv_broker_watermarks(b, t, 2, &lo, &hi, &err), RV_ERR_INVALID_ARG);
    CHECK_INT(rv_broker_watermarks(b, missing, 0, &lo, &hi, &err), RV_ERR_NOT_FOUND);
    CHECK(strstr(rv_error_message(err), missing) != NULL);
    rv_error_destroy(err);
    rv_broker_close(b);
}

/* Produces `n` records "v<i>" to partition `partition`. */
static void bc_fill(rv_broker_t *b, const char *topic, int32_t partition, int from, int n) {
    rv_producer_t *p = bc_producer(b, NULL, NULL);
    if (!p) {
        return;
    }
    char v[32];
    for (int i = from; i < from + n; i++) {
        snprintf(v, sizeof v, "v%d", i);
        bc_send(p, topic, partition, NULL, v, 0);
    }
    bc_flush(p);
    rv_producer_close(p);
}

/* Checks that `rs` holds offsets first..first+n-1 of one partition with values "v<offset>". */
static void bc_check_run(const bc_recs_t *rs, int32_t partition, int64_t first, size_t n) {
    CHECK_INT(rs->n, n);
    char v[32];
    for (size_t i = 0; i < rs->n && i < n; i++) {
        CHECK_INT(rs->v[i].partition, partition);
        CHECK_INT(rs->v[i].offset, first + (int64_t)i);
        snprintf(v, sizeof v, "v%lld", (long long)rs->v[i].offset);
        CHECK_STR(rs->v[i].value, v);
    }
}

static void bc_test_assign_offsets(void) {
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64], missing[64];
    bc_name(t, sizeof t, "assign");
    bc_name(missing, sizeof missing, "noassign");
    REQUIRE(bc_create(b, t, 2, NULL));
    bc_fill(b, t, 0, 0, 10);
    rv_consumer_t *c = bc_consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);

    CHECK_INT(bc_assign1(c, t, 0, 4), RV_OK);
    CHECK_INT(bc_position(c, t, 0), 4);
    bc_recs_t rs = {0};
    bc_collect(c, &rs, 6, 5000);
    bc_check_run(&rs, 0, 4, 6);
    bc_drain(c, &rs, 100);
    CHECK_INT(rs.n, 6); /* nothing past the end */
    CHECK_INT(bc_position(c, t, 0), 10);
    bc_recs_free(&rs);

    CHECK_INT(bc_assign1(c, t, 0, RV_OFFSET_BEGINNING), RV_OK);
    bc_collect(c, &rs, 10, 5000);
    bc_check_run(&rs, 0, 0, 10);
    bc_recs_free(&rs);

    CHECK_INT(bc_assign1(c, t, 0, RV_OFFSET_END), RV_OK);
    bc_drain(c, &rs, 100);
    CHECK_INT(rs.n, 0);
    bc_fill(b, t, 0, 10, 2);
    bc_collect(c, &rs, 2, 5000);
    bc_check_run(&rs, 0, 10, 2);
    bc_recs_free(&rs);

    /* An empty assignment stops everything; a position of an unassigned partition is INVALID. */
    CHECK_INT(rv_consumer_assign(c, NULL, 0, NULL), RV_OK);
    bc_fill(b, t, 0, 12, 1);
    bc_drain(c, &rs, 100);
    CHECK_INT(rs.n, 0);
    CHECK_INT(bc_position(c, t, 0), RV_OFFSET_INVALID);

    rv_error_t *err = NULL;
    rv_topic_partition_t bad = {missing, 0, RV_OFFSET_BEGINNING};
    CHECK_INT(rv_consumer_assign(c, &bad, 1, &err), RV_ERR_NOT_FOUND);
    CHECK(strstr(rv_error_message(err), missing) != NULL);
    bad = (rv_topic_partition_t){t, 2, RV_OFFSET_BEGINNING};
    CHECK_INT(rv_consumer_assign(c, &bad, 1, &err), RV_ERR_INVALID_ARG);
    bad = (rv_topic_partition_t){t, 0, -7};
    CHECK_INT(rv_consumer_assign(c, &bad, 1, &err), RV_ERR_INVALID_ARG);
    rv_error_destroy(err);
    rv_consumer_close(c);
    rv_broker_close(b);
}

static void bc_test_auto_offset_reset(void) {
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64], g1[64], g2[64], g3[64];
    bc_name(t, sizeof t, "reset");
    bc_name(g1, sizeof g1, "g-earliest");
    bc_name(g2, sizeof g2, "g-latest");
    bc_name(g3, sizeof g3, "g-error");
    REQUIRE(bc_create(b, t, 1, NULL));
    bc_fill(b, t, 0, 0, 5);

    rv_consumer_t *c = bc_consumer(b, g1, "earliest", NULL);
    REQUIRE(c != NULL);
    CHECK_INT(bc_assign1(c, t, 0, RV_OFFSET_STORED), RV_OK);
    bc_recs_t rs = {0};
    bc_collect(c, &rs, 5, 5000);
    bc_check_run(&rs, 0, 0, 5);
    bc_recs_free(&rs);
    rv_consumer_close(c);

    c = bc_consumer(b, g2, "latest", NULL);
    REQUIRE(c != NULL);
    CHECK_INT(bc_assign1(c, t, 0, RV_OFFSET_STORED), RV_OK);
    bc_drain(c, &rs, 150);
    CHECK_INT(rs.n, 0);
    bc_fill(b, t, 0, 5, 1);
    bc_collect(c, &rs, 1, 5000);
    bc_check_run(&rs, 0, 5, 1);
    bc_recs_free(&rs);
    rv_consumer_close(c);

    /* With "error", a partition without a committed offset fails with RANGE, naming it. */
    c = bc_consumer(b, g3, "error", NULL);
    REQUIRE(c != NULL);
    rv_error_t *err = NULL;
    rv_err_t e = bc_assign1(c, t, 0, RV_OFFSET_STORED);
    if (e == RV_OK) {
        int64_t deadline = rv_clock_mono_ms() + 3000;
        while (e == RV_OK && rv_clock_mono_ms() < deadline) {
            const rv_record_t *recs;
            size_t n = 0;
            e = rv_consumer_poll(c, &recs, 10, &n, 50, &err);
            CHECK_INT(n, 0);
        }
        CHECK(err != NULL && strstr(rv_error_message(err), t) != NULL);
    }
    CHECK_INT(e, RV_ERR_RANGE);
    rv_error_destroy(err);
    err = NULL;
    /* A seek gives the partition a position again. */
    CHECK_INT(rv_consumer_seek(c, t, 0, 2, NULL), RV_OK);
    bc_collect(c, &rs, 4, 5000);
    bc_check_run(&rs, 0, 2, 4);
    bc_recs_free(&rs);

    /* A position past the high watermark is out of range: "error" stops the partition... */
    CHECK_INT(rv_consumer_seek(c, t, 0, 1000, NULL), RV_OK);
    e = RV_OK;
    int64_t t0 = rv_clock_mono_ms();
    while (e == RV_OK && rv_clock_mono_ms() - t0 < 3000) {
        const rv_record_t *recs;
        size_t n = 0;
        e = rv_consumer_poll(c, &recs, 10, &n, 1000, &err);
        CHECK_INT(n, 0);
    }
    CHECK_INT(e, RV_ERR_RANGE);
    CHECK_MSG(rv_clock_mono_ms() - t0 < 900, "the error waited for the poll's timeout");
    CHECK(err != NULL && strstr(rv_error_message(err), "1000") != NULL);
    rv_error_destroy(err);
    err = NULL;
    rv_consumer_close(c);

    /* ... and "earliest" moves it to the low watermark. */
    c = bc_consumer(b, NULL, "earliest", NULL);
    REQUIRE(c != NULL);
    CHECK_INT(bc_assign1(c, t, 0, 1000), RV_OK);
    bc_collect(c, &rs, 6, 5000);
    bc_check_run(&rs, 0, 0, 6);
    bc_recs_free(&rs);
    rv_consumer_close(c);
    rv_broker_close(b);
}

typedef struct bc_eof_s {
    int32_t partition[16];
    int64_t offset[16];
    int n;
    bool topic_ok;
    const char *topic;
} bc_eof_t;

static void bc_on_eof(void *opaque, rv_consumer_t *c, const char *topic, int32_t partition,
                      int64_t offset) {
    bc_eof_t *e = opaque;
    if (!topic || strcmp(topic, e->topic) != 0) {
        e->topic_ok = false;
    }
    if (e->n < 16) {
        e->partition[e->n] = partition;
        e->offset[e->n] = offset;
    }
    e->n++;
}

static void bc_test_partition_eof(void) {
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64];
    bc_name(t, sizeof t, "eof");
    REQUIRE(bc_create(b, t, 2, NULL));
    bc_fill(b, t, 0, 0, 5);
    bc_eof_t ev = {.topic_ok = true, .topic = t};
    rv_consumer_callbacks_t cbs = {.opaque = &ev, .on_partition_eof = bc_on_eof};
    rv_consumer_t *c = bc_consumer(b, NULL, NULL, &cbs);
    REQUIRE(c != NULL);
    rv_topic_partition_t tps[2] = {{t, 0, RV_OFFSET_BEGINNING}, {t, 1, RV_OFFSET_BEGINNING}};
    CHECK_INT(rv_consumer_assign(c, tps, 2, NULL), RV_OK);
    bc_recs_t rs = {0};
    int64_t deadline = rv_clock_mono_ms() + 5000;
    while ((rs.n < 5 || ev.n < 2) && rv_clock_mono_ms() < deadline) {
        bc_drain(c, &rs, 20);
    }
    bc_drain(c, &rs, 150); /* no more events at rest */
    bc_check_run(&rs, 0, 0, 5);
    CHECK_INT(ev.n, 2);
    CHECK(ev.topic_ok);
    for (int i = 0; i < ev.n && i < 2; i++) {
        CHECK_INT(ev.offset[i], ev.partition[i] == 0 ? 5 : 0);
    }
    CHECK(ev.n == 2 && ev.partition[0] != ev.partition[1]);
    bc_recs_free(&rs);

    /* Reaching the end again after a new record is a new EOF, for that partition only. */
    bc_fill(b, t, 0, 5, 1);
    deadline = rv_clock_mono_ms() + 5000;
    while ((rs.n < 1 || ev.n < 3) && rv_clock_mono_ms() < deadline) {
        bc_drain(c, &rs, 20);
    }
    bc_drain(c, &rs, 150);
    bc_check_run(&rs, 0, 5, 1);
    CHECK_INT(ev.n, 3);
    CHECK_INT(ev.partition[2], 0);
    CHECK_INT(ev.offset[2], 6);
    bc_recs_free(&rs);
    rv_consumer_close(c);
    rv_broker_close(b);
}

static void bc_test_commit_committed(void) {
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64], g[64], other[64], missing[64];
    bc_name(t, sizeof t, "commit");
    bc_name(g, sizeof g, "g-commit");
    bc_name(other, sizeof other, "g-other");
    bc_name(missing, sizeof missing, "nocommit");
    REQUIRE(bc_create(b, t, 2, NULL));
    bc_fill(b, t, 0, 0, 10);
    bc_fill(b, t, 1, 0, 10);

    rv_consumer_t *c = bc_consumer(b, g, "earliest", NULL);
    REQUIRE(c != NULL);
    rv_topic_partition_t tps[2] = {{t, 0, RV_OFFSET_BEGINNING}, {t, 1, RV_OFFSET_BEGINNING}};
    CHECK_INT(rv_consumer_assign(c, tps, 2, NULL), RV_OK);
    CHECK_INT(bc_committed(c, t, 0), RV_OFFSET_INVALID);
    bc_recs_t rs = {0};
    bc_collect(c, &rs, 20, 5000);
    CHECK_INT(rs.n, 20);
    bc_recs_free(&rs);
    rv_error_t *err = NULL;
    CHECK_INT(rv_consumer_commit(c, NULL, 0, &err), RV_OK);
    CHECK_INT(bc_committed(c, t, 0), 10);
    CHECK_INT(bc_committed(c, t, 1), 10);
    rv_topic_partition_t back = {t, 0, 3};
    CHECK_INT(rv_consumer_commit(c, &back, 1, &err), RV_OK);
    CHECK_INT(bc_committed(c, t, 0), 3);
    CHECK_INT(bc_committed(c, t, 1), 10);
    rv_topic_partition_t bad = {missing, 0, 1};
    CHECK_INT(rv_consumer_commit(c, &bad, 1, &err), RV_ERR_NOT_FOUND);
    CHECK(strstr(rv_error_message(err), missing) != NULL);
    rv_consumer_close(c);

    /* A new consumer of the group resumes from the committed offsets. */
    c = bc_consumer(b, g, "earliest", NULL);
    REQUIRE(c != NULL);
    tps[0].offset = tps[1].offset = RV_OFFSET_STORED;
    CHECK_INT(rv_consumer_assign(c, tps, 2, NULL), RV_OK);
    CHECK_INT(bc_committed(c, t, 0), 3);
    bc_collect(c, &rs, 7, 5000);
    bc_drain(c, &rs, 100);
    bc_check_run(&rs, 0, 3, 7);
    bc_recs_free(&rs);
    CHECK_INT(bc_position(c, t, 1), 10);
    rv_consumer_close(c);

    /* Commits belong to their group. */
    c = bc_consumer(b, other, "earliest", NULL);
    REQUIRE(c != NULL);
    CHECK_INT(bc_committed(c, t, 0), RV_OFFSET_INVALID);
    rv_consumer_close(c);

    /* Without a group there is nothing to commit to. */
    c = bc_consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);
    CHECK_INT(rv_consumer_assign(c, tps, 1, NULL), RV_OK);
    CHECK_INT(rv_consumer_commit(c, NULL, 0, &err), RV_ERR_STATE);
    const char *topics[] = {t};
    CHECK_INT(rv_consumer_subscribe(c, topics, 1, &err), RV_ERR_STATE);
    rv_error_destroy(err);
    rv_consumer_close(c);
    rv_broker_close(b);
}

static void bc_test_seek_position(void) {
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64];
    bc_name(t, sizeof t, "seek");
    REQUIRE(bc_create(b, t, 2, NULL));
    bc_fill(b, t, 0, 0, 20);
    rv_consumer_t *c = bc_consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);
    CHECK_INT(bc_assign1(c, t, 0, RV_OFFSET_BEGINNING), RV_OK);
    bc_recs_t rs = {0};
    bc_collect(c, &rs, 20, 5000);
    bc_check_run(&rs, 0, 0, 20);
    bc_recs_free(&rs);
    CHECK_INT(bc_position(c, t, 0), 20);

    rv_error_t *err = NULL;
    CHECK_INT(rv_consumer_seek(c, t, 0, 5, &err), RV_OK); /* backwards */
    CHECK_INT(bc_position(c, t, 0), 5);
    bc_collect(c, &rs, 15, 5000);
    bc_check_run(&rs, 0, 5, 15);
    bc_recs_free(&rs);

    CHECK_INT(rv_consumer_seek(c, t, 0, 2, &err), RV_OK);
    bc_collect(c, &rs, 3, 5000); /* read a little, then jump forwards */
    CHECK_INT(rs.v[0].offset, 2);
    bc_recs_free(&rs);
    CHECK_INT(rv_consumer_seek(c, t, 0, 15, &err), RV_OK);
    bc_collect(c, &rs, 5, 5000);
    bc_check_run(&rs, 0, 15, 5);
    bc_recs_free(&rs);

    CHECK_INT(rv_consumer_seek(c, t, 0, RV_OFFSET_BEGINNING, &err), RV_OK);
    bc_collect(c, &rs, 20, 5000);
    bc_check_run(&rs, 0, 0, 20);
    bc_recs_free(&rs);

    CHECK_INT(rv_consumer_seek(c, t, 0, RV_OFFSET_END, &err), RV_OK);
    bc_drain(c, &rs, 100);
    CHECK_INT(rs.n, 0);
    bc_fill(b, t, 0, 20, 1);
    bc_collect(c, &rs, 1, 5000);
    bc_check_run(&rs, 0, 20, 1);
    bc_recs_free(&rs);

    CHECK(rv_consumer_seek(c, t, 1, 0, &err) != RV_OK); /* not assigned */
    CHECK(strstr(rv_error_message(err), t) != NULL);
    CHECK_INT(rv_consumer_seek(c, t, 0, RV_OFFSET_STORED, &err), RV_ERR_INVALID_ARG);
    CHECK_INT(bc_position(c, t, 1), RV_OFFSET_INVALID);
    rv_error_destroy(err);
    rv_consumer_close(c);
    rv_broker_close(b);
}

static void bc_test_offsets_for_times(void) {
    if (bc_skip(bc_caps.no_offsets_for_times)) {
        return;
    }
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64], missing[64];
    bc_name(t, sizeof t, "times");
    bc_name(missing, sizeof missing, "notimes");
    REQUIRE(bc_create(b, t, 2, NULL));
    int64_t base = (rv_clock_wall_ms() - 3600000) / 1000 * 1000;
    static const int64_t delta[] = {0, 10, 10, 20, 30, 40, 50, 60, 70, 80};
    rv_producer_t *p = bc_producer(b, NULL, NULL);
    REQUIRE(p != NULL);
    for (size_t i = 0; i < 10; i++) {
        bc_send(p, t, 0, NULL, "x", base + delta[i]);
    }
    bc_flush(p);
    rv_producer_close(p);
    rv_consumer_t *c = bc_consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);
    struct {
        int64_t ts;
        int64_t want;
    } cases[] = {{0, 0},         {base - 1, 0},  {base, 0},
                 {base + 1, 1},  {base + 10, 1}, {base + 11, 3},
                 {base + 79, 9}, {base + 80, 9}, {base + 81, RV_OFFSET_END}};
    enum { NC = sizeof cases / sizeof cases[0] };
    rv_topic_partition_t tps[NC + 1];
    for (size_t i = 0; i < NC; i++) {
        tps[i] = (rv_topic_partition_t){t, 0, cases[i].ts};
    }
    tps[NC] = (rv_topic_partition_t){t, 1, base}; /* an empty partition has no such offset */
    rv_error_t *err = NULL;
    CHECK_INT(rv_consumer_offsets_for_times(c, tps, NC + 1, &err), RV_OK);
    for (size_t i = 0; i < NC; i++) {
        CHECK_MSG(tps[i].offset == cases[i].want, "time base%+lld: offset %lld, expected %lld",
                  (long long)(cases[i].ts - base), (long long)tps[i].offset,
                  (long long)cases[i].want);
    }
    CHECK_INT(tps[NC].offset, RV_OFFSET_END);
    rv_topic_partition_t bad = {missing, 0, base};
    CHECK_INT(rv_consumer_offsets_for_times(c, &bad, 1, &err), RV_ERR_NOT_FOUND);
    rv_error_destroy(err);

    /* The answer is a place to seek to. */
    CHECK_INT(bc_assign1(c, t, 0, RV_OFFSET_BEGINNING), RV_OK);
    rv_topic_partition_t q = {t, 0, base + 11};
    CHECK_INT(rv_consumer_offsets_for_times(c, &q, 1, NULL), RV_OK);
    CHECK_INT(rv_consumer_seek(c, t, 0, q.offset, NULL), RV_OK);
    bc_recs_t rs = {0};
    bc_collect(c, &rs, 7, 5000);
    CHECK_INT(rs.n, 7);
    if (rs.n > 0) {
        CHECK_INT(rs.v[0].offset, 3);
        CHECK_INT(rs.v[0].timestamp_ms, base + 20);
    }
    bc_recs_free(&rs);
    rv_consumer_close(c);
    rv_broker_close(b);
}

static void bc_test_pause_resume(void) {
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64];
    bc_name(t, sizeof t, "pause");
    REQUIRE(bc_create(b, t, 3, NULL));
    bc_fill(b, t, 0, 0, 10);
    bc_fill(b, t, 1, 0, 10);
    rv_consumer_t *c = bc_consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);
    rv_topic_partition_t tps[2] = {{t, 0, RV_OFFSET_BEGINNING}, {t, 1, RV_OFFSET_BEGINNING}};
    CHECK_INT(rv_consumer_assign(c, tps, 2, NULL), RV_OK);
    rv_error_t *err = NULL;
    CHECK_INT(rv_consumer_pause(c, tps, 1, &err), RV_OK);
    bc_recs_t rs = {0};
    bc_collect(c, &rs, 10, 5000);
    bc_drain(c, &rs, 200);
    bc_check_run(&rs, 1, 0, 10); /* only the partition that is not paused */
    bc_recs_free(&rs);
    CHECK_INT(bc_position(c, t, 0), 0);
    bc_fill(b, t, 0, 10, 2); /* new records do not wake a paused partition either */
    bc_drain(c, &rs, 100);
    CHECK_INT(rs.n, 0);

    CHECK_INT(rv_consumer_resume(c, tps, 1, &err), RV_OK);
    bc_collect(c, &rs, 12, 5000);
    bc_check_run(&rs, 0, 0, 12);
    bc_recs_free(&rs);

    rv_topic_partition_t other = {t, 2, 0};
    CHECK(rv_consumer_pause(c, &other, 1, &err) != RV_OK); /* not assigned */
    rv_error_destroy(err);
    rv_consumer_close(c);
    rv_broker_close(b);
}

/* A thread that produces one record after a delay, to wake a blocked poll. It records its
 * failures instead of checking, since the test harness counts checks in one thread only. */
typedef struct bc_late_s {
    rv_broker_t *b;
    const char *topic;
    rv_err_t result;
} bc_late_t;

static void *bc_late_main(void *arg) {
    bc_late_t *l = arg;
    rv_clock_sleep_ms(100);
    rv_producer_t *p = rv_producer_new(l->b, NULL, NULL);
    if (!p) {
        l->result = RV_ERR_STATE;
        return NULL;
    }
    rv_record_t r = {.topic = l->topic, .partition = 0, .value = "v0", .value_len = 2};
    l->result = rv_producer_send(p, &r, NULL);
    if (l->result == RV_OK) {
        l->result = rv_producer_flush(p, 10000, NULL);
    }
    rv_producer_close(p);
    return NULL;
}

static void bc_test_blocking_poll_wakes(void) {
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64];
    bc_name(t, sizeof t, "wake");
    REQUIRE(bc_create(b, t, 1, NULL));
    rv_consumer_t *c = bc_consumer(b, NULL, NULL, NULL);
    REQUIRE(c != NULL);
    CHECK_INT(bc_assign1(c, t, 0, RV_OFFSET_BEGINNING), RV_OK);
    bc_late_t late = {b, t, RV_OK};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, bc_late_main, &late) == 0);
    int64_t t0 = rv_clock_mono_ms();
    size_t got = 0;
    while (got == 0 && rv_clock_mono_ms() - t0 < 4000) {
        const rv_record_t *recs;
        CHECK_INT(rv_consumer_poll(c, &recs, 10, &got, 3000, NULL), RV_OK);
    }
    int64_t waited = rv_clock_mono_ms() - t0;
    pthread_join(th, NULL);
    CHECK_INT(late.result, RV_OK);
    CHECK_INT(got, 1);
    /* Woken by the record, not by its 3000 ms timeout; the margin allows a loaded machine and
     * the mock cluster's fetch round trips (one run took 1501 ms there). */
    CHECK_MSG(waited >= 90 && waited < 2800, "a blocked poll woke after %lld ms",
              (long long)waited);
    /* A poll with nothing to read waits about its timeout. */
    const rv_record_t *recs;
    t0 = rv_clock_mono_ms();
    CHECK_INT(rv_consumer_poll(c, &recs, 10, &got, 150, NULL), RV_OK);
    if (got == 0) {
        waited = rv_clock_mono_ms() - t0;
        CHECK_MSG(waited < 1500, "an idle poll of 150 ms took %lld ms", (long long)waited);
    }
    rv_consumer_close(c);
    rv_broker_close(b);
}

/* ---- consumer groups ------------------------------------------------------------------------ */

enum { BC_GP = 4, BC_GMAX = 256 };

typedef struct bc_gstate_s bc_gstate_t;

typedef struct bc_member_s {
    rv_consumer_t *c;
    bc_gstate_t *gs;
    const char *topic;
    bool owned[BC_GP];
    int64_t assigned_at[BC_GP]; /* the offset on_assign gave, per partition */
    bool commit_on_revoke;
    int assigns;
    int revokes;
} bc_member_t;

struct bc_gstate_s {
    bc_member_t m[2];
    int overlaps;    /* a partition assigned while the other member still owned it */
    int bad_topic;   /* a callback named another topic */
    int commit_errs; /* a commit from on_revoke failed */
    int seen[BC_GP][BC_GMAX];
};

static bc_member_t *bc_other(bc_member_t *m) {
    return m == &m->gs->m[0] ? &m->gs->m[1] : &m->gs->m[0];
}

static void bc_on_assign(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps,
                         size_t n) {
    bc_member_t *m = opaque;
    m->assigns++;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(tps[i].topic, m->topic) != 0 || tps[i].partition >= BC_GP) {
            m->gs->bad_topic++;
            continue;
        }
        if (bc_other(m)->owned[tps[i].partition]) {
            m->gs->overlaps++;
        }
        m->owned[tps[i].partition] = true;
        m->assigned_at[tps[i].partition] = tps[i].offset;
    }
}

static void bc_on_revoke(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps,
                         size_t n) {
    bc_member_t *m = opaque;
    m->revokes++;
    if (m->commit_on_revoke && rv_consumer_commit(c, NULL, 0, NULL) != RV_OK) {
        m->gs->commit_errs++;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(tps[i].topic, m->topic) != 0 || tps[i].partition >= BC_GP) {
            m->gs->bad_topic++;
            continue;
        }
        m->owned[tps[i].partition] = false;
    }
}

static int bc_owned_count(const bc_member_t *m) {
    int n = 0;
    for (int i = 0; i < BC_GP; i++) {
        n += m->owned[i];
    }
    return n;
}

/* One poll of a member, counting what it reads; `uncommitted` (may be NULL) collects reads. */
static size_t bc_member_poll(bc_member_t *m, size_t max, int timeout_ms, bc_recs_t *uncommitted) {
    const rv_record_t *recs;
    size_t n = 0;
    rv_error_t *err = NULL;
    rv_err_t e = rv_consumer_poll(m->c, &recs, max, &n, timeout_ms, &err);
    CHECK_MSG(e == RV_OK, "group poll: %s", rv_error_message(err));
    rv_error_destroy(err);
    for (size_t i = 0; i < n; i++) {
        const rv_record_t *r = &recs[i];
        if (r->partition < 0 || r->partition >= BC_GP || r->offset < 0 || r->offset >= BC_GMAX) {
            CHECK_MSG(false, "unexpected record %d/%lld", (int)r->partition, (long long)r->offset);
            continue;
        }
        CHECK_MSG(m->owned[r->partition], "a record of partition %d, which is not assigned",
                  (int)r->partition);
        m->gs->seen[r->partition][r->offset]++;
        if (uncommitted) {
            bc_recs_add(uncommitted, r);
        }
    }
    return n;
}

static void bc_produce_keys(rv_broker_t *b, const char *topic, int from, int to) {
    rv_producer_t *p = bc_producer(b, NULL, NULL);
    if (!p) {
        return;
    }
    char k[32];
    for (int i = from; i < to; i++) {
        snprintf(k, sizeof k, "k%d", i);
        bc_send(p, topic, RV_PARTITION_ANY, k, k, 0);
    }
    bc_flush(p);
    rv_producer_close(p);
}

/* How long the group test waits for a rebalance or for records. Every wait ends as soon as its
 * condition holds; the bound is generous because a group protocol over TCP (Kafka's, or the
 * mock cluster's on a loaded machine) needs several seconds per rebalance round. */
#define BC_GROUP_WAIT_MS 20000

static void bc_test_group_split_and_takeover(void) {
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char t[64], g[64];
    bc_name(t, sizeof t, "group");
    bc_name(g, sizeof g, "g-split");
    REQUIRE(bc_create(b, t, BC_GP, NULL));
    bc_produce_keys(b, t, 0, 100);

    bc_gstate_t *gs = calloc(1, sizeof *gs);
    REQUIRE(gs != NULL);
    const char *topics[] = {t};
    for (int i = 0; i < 2; i++) {
        bc_member_t *m = &gs->m[i];
        m->gs = gs;
        m->topic = t;
        m->commit_on_revoke = true;
        for (int k = 0; k < BC_GP; k++) {
            m->assigned_at[k] = -100;
        }
        rv_consumer_callbacks_t cbs = {
            .opaque = m, .on_assign = bc_on_assign, .on_revoke = bc_on_revoke};
        m->c = bc_consumer(b, g, "earliest", &cbs);
    }
    bc_member_t *A = &gs->m[0], *B = &gs->m[1];
    if (!A->c || !B->c) {
        rv_consumer_close(A->c);
        rv_consumer_close(B->c);
        free(gs);
        rv_broker_close(b);
        return;
    }

    /* A alone gets every partition and reads some records (uncommitted so far). */
    CHECK_INT(rv_consumer_subscribe(A->c, topics, 1, NULL), RV_OK);
    int64_t deadline = rv_clock_mono_ms() + BC_GROUP_WAIT_MS;
    size_t read_a = 0;
    while ((bc_owned_count(A) < BC_GP || read_a < 20) && rv_clock_mono_ms() < deadline) {
        read_a += bc_member_poll(A, 5, 20, NULL);
    }
    CHECK_INT(bc_owned_count(A), BC_GP);
    for (int k = 0; k < BC_GP; k++) {
        CHECK_INT(A->assigned_at[k], 0); /* no commit yet: auto.offset.reset=earliest */
    }

    /* B joins: the partitions are split between them, never owned by both. */
    CHECK_INT(rv_consumer_subscribe(B->c, topics, 1, NULL), RV_OK);
    deadline = rv_clock_mono_ms() + BC_GROUP_WAIT_MS;
    for (;;) {
        /* B first: it must not get a partition before A has given it up. */
        bc_member_poll(B, 5, 10, NULL);
        bc_member_poll(A, 5, 10, NULL);
        int na = bc_owned_count(A), nb = bc_owned_count(B);
        bool disjoint = true;
        for (int k = 0; k < BC_GP; k++) {
            disjoint = disjoint && !(A->owned[k] && B->owned[k]);
        }
        if ((na > 0 && nb > 0 && na + nb == BC_GP && disjoint) || rv_clock_mono_ms() > deadline) {
            break;
        }
    }
    CHECK(bc_owned_count(A) > 0);
    CHECK(bc_owned_count(B) > 0);
    for (int k = 0; k < BC_GP; k++) {
        CHECK_MSG(A->owned[k] != B->owned[k], "partition %d owned by %s", k,
                  A->owned[k] ? "both" : "neither");
    }
    CHECK(A->revokes >= 1);

    /* Together they read everything exactly once: A committed what it read when revoked. */
    int64_t high[BC_GP];
    int total = 0;
    for (int k = 0; k < BC_GP; k++) {
        int64_t lo;
        bc_watermarks(b, t, k, &lo, &high[k]);
        total += (int)high[k];
    }
    CHECK_INT(total, 100);
    deadline = rv_clock_mono_ms() + BC_GROUP_WAIT_MS;
    for (;;) {
        int done = 0;
        for (int k = 0; k < BC_GP; k++) {
            for (int64_t o = 0; o < high[k]; o++) {
                done += gs->seen[k][o] > 0;
            }
        }
        if (done == total || rv_clock_mono_ms() > deadline) {
            break;
        }
        bc_member_poll(A, 50, 10, NULL);
        bc_member_poll(B, 50, 10, NULL);
    }
    for (int k = 0; k < BC_GP; k++) {
        for (int64_t o = 0; o < high[k]; o++) {
            CHECK_MSG(gs->seen[k][o] == 1, "partition %d offset %lld read %d times", k,
                      (long long)o, gs->seen[k][o]);
        }
    }

    /* Both commit; more records come; A reads some of them without committing, then leaves. */
    CHECK_INT(rv_consumer_commit(A->c, NULL, 0, NULL), RV_OK);
    CHECK_INT(rv_consumer_commit(B->c, NULL, 0, NULL), RV_OK);
    int64_t a_committed[BC_GP];
    bool a_had[BC_GP];
    for (int k = 0; k < BC_GP; k++) {
        a_had[k] = A->owned[k];
        a_committed[k] = bc_committed(A->c, t, k);
        CHECK_INT(a_committed[k], high[k]);
    }
    bc_produce_keys(b, t, 100, 140);
    bc_recs_t a_uncommitted = {0};
    deadline = rv_clock_mono_ms() + BC_GROUP_WAIT_MS;
    while (a_uncommitted.n == 0 && rv_clock_mono_ms() < deadline) {
        bc_member_poll(A, 3, 20, &a_uncommitted);
    }
    CHECK(a_uncommitted.n > 0);
    A->commit_on_revoke = false;
    rv_consumer_close(A->c);
    A->c = NULL;
    for (int k = 0; k < BC_GP; k++) {
        CHECK(!A->owned[k]); /* closing revoked everything */
    }

    /* B takes A's partitions, resuming from A's committed offsets, and reads to the end. */
    deadline = rv_clock_mono_ms() + BC_GROUP_WAIT_MS;
    while (bc_owned_count(B) < BC_GP && rv_clock_mono_ms() < deadline) {
        bc_member_poll(B, 50, 20, NULL);
    }
    CHECK_INT(bc_owned_count(B), BC_GP);
    for (int k = 0; k < BC_GP; k++) {
        if (a_had[k]) {
            CHECK_MSG(B->assigned_at[k] == a_committed[k],
                      "partition %d: B resumed at %lld, A committed %lld", k,
                      (long long)B->assigned_at[k], (long long)a_committed[k]);
        }
    }
    total = 0;
    for (int k = 0; k < BC_GP; k++) {
        int64_t lo;
        bc_watermarks(b, t, k, &lo, &high[k]);
        total += (int)high[k];
    }
    CHECK_INT(total, 140);
    deadline = rv_clock_mono_ms() + BC_GROUP_WAIT_MS;
    for (;;) {
        int done = 0;
        for (int k = 0; k < BC_GP; k++) {
            for (int64_t o = 0; o < high[k]; o++) {
                done += gs->seen[k][o] > 0;
            }
        }
        if (done == total || rv_clock_mono_ms() > deadline) {
            break;
        }
        bc_member_poll(B, 50, 20, NULL);
    }
    bc_member_poll(B, 50, 50, NULL);
    /* Nothing lost; read twice exactly the records A read after its last commit. */
    for (int k = 0; k < BC_GP; k++) {
        for (int64_t o = 0; o < high[k]; o++) {
            int want = 1;
            for (size_t i = 0; i < a_uncommitted.n; i++) {
                if (a_uncommitted.v[i].partition == k && a_uncommitted.v[i].offset == o) {
                    want = 2;
                }
            }
            CHECK_MSG(gs->seen[k][o] == want,
                      "partition %d offset %lld read %d times, "
                      "expected %d",
                      k, (long long)o, gs->seen[k][o], want);
        }
    }
    bc_recs_free(&a_uncommitted);
    CHECK_INT(gs->overlaps, 0);
    CHECK_INT(gs->bad_topic, 0);
    CHECK_INT(gs->commit_errs, 0);
    rv_consumer_close(A->c);
    rv_consumer_close(B->c);
    free(gs);
    rv_broker_close(b);
}

/* ---- retention and compaction --------------------------------------------------------------- */

static const char *const bc_fast_maintenance[] = {"log.maintenance.interval.ms=20", NULL};

/* Waits (bounded) until the low watermark is above 0, then until it stops moving. */
static int64_t bc_wait_low(rv_broker_t *b, const char *topic) {
    int64_t lo = 0, hi = 0, deadline = rv_clock_mono_ms() + 5000;
    while (lo == 0 && rv_clock_mono_ms() < deadline) {
        rv_clock_sleep_ms(20);
        bc_watermarks(b, topic, 0, &lo, &hi);
    }
    int64_t prev = -1;
    while (lo != prev && rv_clock_mono_ms() < deadline) {
        prev = lo;
        rv_clock_sleep_ms(150);
        bc_watermarks(b, topic, 0, &lo, &hi);
    }
    return lo;
}

/* Reads the partition from the low watermark and checks offsets low..high-1, intact. */
static void bc_check_tail(rv_broker_t *b, const char *topic, int64_t low, int64_t high,
                          size_t value_len) {
    rv_consumer_t *c = bc_consumer(b, NULL, NULL, NULL);
    if (!c) {
        return;
    }
    CHECK_INT(bc_assign1(c, topic, 0, RV_OFFSET_BEGINNING), RV_OK);
    bc_recs_t rs = {0};
    bc_collect(c, &rs, (size_t)(high - low), 5000);
    CHECK_INT(rs.n, high - low);
    char want[256];
    for (size_t i = 0; i < rs.n; i++) {
        CHECK_INT(rs.v[i].offset, low + (int64_t)i);
        char text[32];
        snprintf(text, sizeof text, "r%05lld", (long long)rs.v[i].offset);
        CHECK_STR(rs.v[i].value, bc_padded(want, value_len, text));
    }
    bc_recs_free(&rs);
    rv_consumer_close(c);
}

static void bc_test_retention_bytes(void) {
    enum { N = 200, LEN = 100 };
    if (bc_skip(bc_caps.no_retention)) {
        return;
    }
    rv_broker_t *b = bc_open(bc_fast_maintenance);
    REQUIRE(b != NULL);
    char t[64];
    bc_name(t, sizeof t, "retain-bytes");
    const char *props[] = {"segment.bytes=4096", "retention.bytes=8192", NULL};
    REQUIRE(bc_create(b, t, 1, props));
    rv_producer_t *p = bc_producer(b, NULL, NULL);
    REQUIRE(p != NULL);
    char v[LEN + 1], text[32];
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof text, "r%05d", i);
        bc_send(p, t, 0, NULL, bc_padded(v, LEN, text), 0);
        if (i % 10 == 9) {
            bc_flush(p);
        }
    }
    bc_flush(p);
    rv_producer_close(p);
    int64_t low = bc_wait_low(b, t);
    int64_t lo, hi;
    bc_watermarks(b, t, 0, &lo, &hi);
    CHECK_INT(hi, N);
    CHECK_MSG(low > 0, "retention.bytes=8192 kept all %d records of %d bytes", N, LEN);
    /* At least retention.bytes less one segment stays, even at 4 * LEN bytes a record. */
    CHECK_MSG(low <= N - (8192 - 4096) / (4 * LEN), "low watermark %lld leaves too little",
              (long long)low);
    bc_check_tail(b, t, low, N, LEN);
    rv_broker_close(b);
}

static void bc_test_retention_ms(void) {
    enum { OLD = 100, NEW = 30, LEN = 100 };
    if (bc_skip(bc_caps.no_retention)) {
        return;
    }
    rv_broker_t *b = bc_open(bc_fast_maintenance);
    REQUIRE(b != NULL);
    char t[64];
    bc_name(t, sizeof t, "retain-ms");
    const char *props[] = {"segment.bytes=4096", "retention.ms=3600000", NULL};
    REQUIRE(bc_create(b, t, 1, props));
    rv_producer_t *p = bc_producer(b, NULL, NULL);
    REQUIRE(p != NULL);
    int64_t old_ts = rv_clock_wall_ms() - 2 * 86400000LL;
    char v[LEN + 1], text[32];
    for (int i = 0; i < OLD + NEW; i++) {
        snprintf(text, sizeof text, "r%05d", i);
        bc_send(p, t, 0, NULL, bc_padded(v, LEN, text), i < OLD ? old_ts + i : 0);
        if (i % 10 == 9) {
            bc_flush(p);
        }
    }
    bc_flush(p);
    rv_producer_close(p);
    int64_t low = bc_wait_low(b, t);
    CHECK_MSG(low > 0, "retention.ms kept segments of two-day-old records");
    /* Only segments made entirely of old records go: every new record stays. */
    CHECK_MSG(low <= OLD, "low watermark %lld is past the first recent record %d", (long long)low,
              OLD);
    bc_check_tail(b, t, low, OLD + NEW, LEN);
    rv_broker_close(b);
}

/*
 * A compacted topic: 20 keys written 10 times each (the last write of k00 a tombstone, with
 * delete.retention.ms=0), then enough records of another key to close every segment holding
 * them. Reading from the beginning must always give the latest value of every key and never an
 * older value after a newer one; once compaction has run it gives each of k01..k19 exactly
 * once, with its latest value, and no k00 at all.
 */
typedef struct bc_scan_s {
    int count[20];
    int last_round[20];
    bool k00_last_tombstone;
    bool filler_latest;
    int order_errors;
    int64_t last_offset;
    size_t n;
} bc_scan_t;

static void bc_compaction_scan(rv_broker_t *b, const char *topic, int64_t high, bc_scan_t *s) {
    memset(s, 0, sizeof *s);
    for (int k = 0; k < 20; k++) {
        s->last_round[k] = -1;
    }
    s->last_offset = -1;
    rv_consumer_t *c = bc_consumer(b, NULL, NULL, NULL);
    if (!c) {
        return;
    }
    CHECK_INT(bc_assign1(c, topic, 0, RV_OFFSET_BEGINNING), RV_OK);
    int64_t deadline = rv_clock_mono_ms() + 5000;
    while (bc_position(c, topic, 0) < high && rv_clock_mono_ms() < deadline) {
        const rv_record_t *recs;
        size_t n = 0;
        CHECK_INT(rv_consumer_poll(c, &recs, 500, &n, 50, NULL), RV_OK);
        for (size_t i = 0; i < n; i++) {
            const rv_record_t *r = &recs[i];
            s->n++;
            if (r->offset <= s->last_offset) {
                s->order_errors++;
            }
            s->last_offset = r->offset;
            char key[32] = {0};
            if (r->key && r->key_len < sizeof key) {
                memcpy(key, r->key, r->key_len);
            }
            int k = -1, round = -1;
            if (strcmp(key, "filler") == 0) {
                s->filler_latest =
                    r->value && r->value_len >= 4 && memcmp(r->value, "f099", 4) == 0;
                continue;
            }
            if (sscanf(key, "k%d", &k) != 1 || k < 0 || k >= 20) {
                s->order_errors++;
                continue;
            }
            if (r->value) {
                char text[32] = {0};
                memcpy(text, r->value, r->value_len < 31 ? r->value_len : 31);
                int kk = -1;
                if (sscanf(text, "k%d=r%d", &kk, &round) != 2 || kk != k) {
                    s->order_errors++;
                }
            } else {
                round = 9; /* only k00's last write is a tombstone */
            }
            if (round <= s->last_round[k]) {
                s->order_errors++; /* an older value after a newer one */
            }
            s->last_round[k] = round;
            s->count[k]++;
            if (k == 0) {
                s->k00_last_tombstone = r->value == NULL;
            }
        }
    }
    CHECK_INT(bc_position(c, topic, 0), high);
    rv_consumer_close(c);
}

static void bc_test_compaction(void) {
    enum { KEYS = 20, ROUNDS = 10, FILLER = 100, LEN = 100 };
    if (bc_skip(bc_caps.no_compaction)) {
        return;
    }
    rv_broker_t *b = bc_open(bc_fast_maintenance);
    REQUIRE(b != NULL);
    char t[64];
    bc_name(t, sizeof t, "compact");
    const char *props[] = {"cleanup.policy=compact", "segment.bytes=4096", "delete.retention.ms=0",
                           NULL};
    REQUIRE(bc_create(b, t, 1, props));
    rv_producer_t *p = bc_producer(b, NULL, NULL);
    REQUIRE(p != NULL);
    char k[32], v[LEN + 1], text[32];
    for (int round = 0; round < ROUNDS; round++) {
        for (int key = 0; key < KEYS; key++) {
            snprintf(k, sizeof k, "k%02d", key);
            snprintf(text, sizeof text, "k%02d=r%d", key, round);
            bool tombstone = key == 0 && round == ROUNDS - 1;
            bc_send(p, t, 0, k, tombstone ? NULL : bc_padded(v, LEN, text), 0);
        }
        bc_flush(p);
    }
    /* More than twice segment.bytes of another key: every segment above is closed. */
    for (int i = 0; i < FILLER; i++) {
        snprintf(text, sizeof text, "f%03d", i);
        bc_send(p, t, 0, "filler", bc_padded(v, LEN, text), 0);
        if (i % 20 == 19) {
            bc_flush(p);
        }
    }
    bc_flush(p);
    rv_producer_close(p);
    const int64_t high = KEYS * ROUNDS + FILLER;

    bc_scan_t s;
    bool compacted = false;
    int failures_before = rv_test_failures;
    int64_t deadline = rv_clock_mono_ms() + 5000;
    for (;;) {
        bc_compaction_scan(b, t, high, &s);
        /* Whenever read: ordered, the latest value of every key present, k00 only if its
         * tombstone still closes it. */
        CHECK_INT(s.order_errors, 0);
        CHECK(s.filler_latest);
        for (int key = 1; key < KEYS; key++) {
            CHECK_MSG(s.last_round[key] == ROUNDS - 1, "key k%02d: latest round read is %d", key,
                      s.last_round[key]);
        }
        CHECK_MSG(s.count[0] == 0 || s.k00_last_tombstone,
                  "k00 was read without its final tombstone");
        compacted = s.count[0] == 0;
        for (int key = 1; key < KEYS; key++) {
            compacted = compacted && s.count[key] == 1;
        }
        if (compacted || rv_clock_mono_ms() > deadline || rv_test_failures > failures_before) {
            break;
        }
        rv_clock_sleep_ms(50);
    }
    CHECK_MSG(compacted, "not compacted in 5 s: k00 x%d, k01 x%d, %zu records read", s.count[0],
              s.count[1], s.n);
    int64_t lo, hi;
    bc_watermarks(b, t, 0, &lo, &hi);
    CHECK_INT(hi, high);
    rv_broker_close(b);
}


/* ---- transactions --------------------------------------------------------------------------- */

static rv_producer_t *bc_txn_producer(rv_broker_t *b, const char *id, rv_delivery_cb cb,
                                      void *opaque) {
    const char *pairs[] = {NULL, NULL};
    char pair[128];
    snprintf(pair, sizeof pair, "transactional.id=%s", id);
    pairs[0] = pair;
    rv_conf_t *conf = bc_conf(pairs);
    rv_producer_opts_t opts = {.conf = conf, .delivery_cb = cb, .opaque = opaque};
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(b, &opts, &err);
    CHECK_MSG(p != NULL, "transactional producer: %s", rv_error_message(err));
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return p;
}

/* Every record of `topic` (all `partitions`) that a fresh consumer reads within `ms`. */
static void bc_read_all(rv_broker_t *b, const char *topic, int32_t partitions, bc_recs_t *rs,
                        int ms) {
    rv_consumer_t *c = bc_consumer(b, NULL, "earliest", NULL);
    if (!c) {
        return;
    }
    rv_topic_partition_t *tps = calloc((size_t)partitions, sizeof *tps);
    for (int32_t p = 0; p < partitions; p++) {
        tps[p] = (rv_topic_partition_t){topic, p, RV_OFFSET_BEGINNING};
    }
    CHECK_INT(rv_consumer_assign(c, tps, (size_t)partitions, NULL), RV_OK);
    free(tps);
    bc_drain(c, rs, ms);
    rv_consumer_close(c);
}

static int bc_count_value(const bc_recs_t *rs, const char *value) {
    int n = 0;
    for (size_t i = 0; i < rs->n; i++) {
        n += rs->v[i].value && strcmp(rs->v[i].value, value) == 0;
    }
    return n;
}

static void bc_test_transactions(void) {
    if (bc_skip(bc_caps.no_transactions)) {
        return;
    }
    rv_broker_t *b = bc_open(NULL);
    REQUIRE(b != NULL);
    char ta[64], tb[64], tin[64], group[64], id[64];
    bc_name(ta, sizeof ta, "txn-a");
    bc_name(tb, sizeof tb, "txn-b");
    bc_name(tin, sizeof tin, "txn-in");
    bc_name(group, sizeof group, "txn-g");
    bc_name(id, sizeof id, "txn-id");
    REQUIRE(bc_create(b, ta, 2, NULL) && bc_create(b, tb, 1, NULL) && bc_create(b, tin, 1, NULL));
    bc_reports_t rp;
    bc_reports_init(&rp, NULL);
    rv_producer_t *p = bc_txn_producer(b, id, bc_on_delivery, &rp);
    REQUIRE(p != NULL);
    rv_consumer_t *in = bc_consumer(b, group, "earliest", NULL);
    REQUIRE(in != NULL);
    rv_error_t *err = NULL;

    /* Not in a transaction: commit and abort are refused. */
    CHECK_INT(rv_producer_commit_transaction(p, -1, &err), RV_ERR_STATE);
    CHECK_INT(rv_producer_abort_transaction(p, -1, &err), RV_ERR_STATE);

    /* A committed transaction: records on two topics and three partitions, and offsets. */
    CHECK_INT(rv_producer_begin_transaction(p, &err), RV_OK);
    CHECK_INT(rv_producer_begin_transaction(p, &err), RV_ERR_STATE);
    CHECK_INT(bc_send(p, ta, 0, "k", "c-a0", 0), RV_OK);
    CHECK_INT(bc_send(p, ta, 1, "k", "c-a1", 0), RV_OK);
    CHECK_INT(bc_send(p, tb, 0, NULL, "c-b0", 0), RV_OK);
    CHECK_INT(bc_send(p, ta, 0, "k", "c-a0-2", 0), RV_OK);
    rv_topic_partition_t off = {tin, 0, 3};
    CHECK_INT(rv_producer_send_offsets_to_transaction(p, in, &off, 1, -1, &err), RV_OK);
    bc_recs_t before = {0};
    bc_read_all(b, ta, 2, &before, 200);
    CHECK_MSG(before.n == 0, "%zu record(s) of an open transaction visible", before.n);
    bc_recs_free(&before);
    CHECK_INT(bc_committed(in, tin, 0), RV_OFFSET_INVALID);
    CHECK_MSG(rv_producer_commit_transaction(p, -1, &err) == RV_OK, "commit: %s",
              rv_error_message(err));
    rv_producer_poll(p, 1000);
    CHECK_INT(bc_committed(in, tin, 0), 3);
    /* Each record reported once, stored where a consumer finds it. */
    pthread_mutex_lock(&rp.lock);
    CHECK_INT(rp.n, 4);
    for (size_t i = 0; i < rp.n; i++) {
        const bc_report_t *r = &rp.v[i];
        CHECK_INT(r->err, RV_OK);
        int64_t want = strcmp(r->value, "c-a0-2") == 0 ? 1 : 0;
        CHECK_MSG(r->offset == want, "%s reported at offset %lld", r->value, (long long)r->offset);
    }
    pthread_mutex_unlock(&rp.lock);
    bc_recs_t ra = {0}, rb = {0};
    bc_read_all(b, ta, 2, &ra, 300);
    bc_read_all(b, tb, 1, &rb, 300);
    CHECK_INT(ra.n, 3);
    CHECK_INT(rb.n, 1);
    CHECK_INT(bc_count_value(&ra, "c-a0"), 1);
    CHECK_INT(bc_count_value(&ra, "c-a1"), 1);
    CHECK_INT(bc_count_value(&ra, "c-a0-2"), 1);
    CHECK_INT(bc_count_value(&rb, "c-b0"), 1);
    for (size_t i = 0; i < ra.n; i++) { /* order within a partition is kept */
        if (ra.v[i].value && strcmp(ra.v[i].value, "c-a0-2") == 0) {
            CHECK_INT(ra.v[i].partition, 0);
            CHECK_INT(ra.v[i].offset, 1);
        }
    }
    bc_recs_free(&ra);
    bc_recs_free(&rb);

    /* An aborted transaction leaves no record and no offset. */
    CHECK_INT(rv_producer_begin_transaction(p, &err), RV_OK);
    CHECK_INT(bc_send(p, ta, 0, NULL, "x-a0", 0), RV_OK);
    CHECK_INT(bc_send(p, tb, 0, NULL, "x-b0", 0), RV_OK);
    off.offset = 9;
    CHECK_INT(rv_producer_send_offsets_to_transaction(p, in, &off, 1, -1, &err), RV_OK);
    CHECK_INT(rv_producer_abort_transaction(p, -1, &err), RV_OK);
    rv_producer_poll(p, 100);
    pthread_mutex_lock(&rp.lock);
    for (size_t i = 4; i < rp.n; i++) { /* an aborted record is never reported stored */
        CHECK(rp.v[i].err != RV_OK);
    }
    pthread_mutex_unlock(&rp.lock);
    CHECK_INT(bc_committed(in, tin, 0), 3);
    bc_read_all(b, ta, 2, &ra, 300);
    bc_read_all(b, tb, 1, &rb, 300);
    CHECK_INT(ra.n, 3);
    CHECK_INT(rb.n, 1);
    CHECK_INT(bc_count_value(&ra, "x-a0") + bc_count_value(&rb, "x-b0"), 0);
    bc_recs_free(&ra);
    bc_recs_free(&rb);

    /* A newer producer with the same transactional.id fences this one. */
    rv_producer_t *p2 = bc_txn_producer(b, id, NULL, NULL);
    REQUIRE(p2 != NULL);
    CHECK_MSG(rv_producer_begin_transaction(p2, &err) == RV_OK, "begin: %s",
              rv_error_message(err));
    CHECK_INT(rv_producer_begin_transaction(p, &err), RV_ERR_FATAL);
    CHECK(err && strstr(rv_error_message(err), id) != NULL);
    CHECK_INT(bc_send(p2, ta, 1, NULL, "n-a1", 0), RV_OK);
    CHECK_INT(rv_producer_commit_transaction(p2, -1, &err), RV_OK);
    bc_read_all(b, ta, 2, &ra, 300);
    CHECK_INT(ra.n, 4);
    CHECK_INT(bc_count_value(&ra, "n-a1"), 1);
    bc_recs_free(&ra);
    rv_error_destroy(err);
    rv_producer_close(p2);
    rv_producer_close(p);
    rv_consumer_close(in);
    bc_reports_free(&rp);
    rv_broker_close(b);
}

/* ---- the suite ------------------------------------------------------------------------------ */

/* Runs every contract test against `url`; `caps` (may be NULL) says what it cannot do. */
static void bc_run_suite(const char *url, const bc_caps_t *caps) {
    bc_url = url;
    bc_caps = caps ? *caps : (bc_caps_t){0};
    fprintf(stderr, "-- broker contract on %s\n", url);
    RV_RUN(bc_test_topic_admin);
    RV_RUN(bc_test_topic_errors);
    RV_RUN(bc_test_order_per_partition);
    RV_RUN(bc_test_delivery_reports);
    RV_RUN(bc_test_send_errors);
    RV_RUN(bc_test_key_partitioning);
    RV_RUN(bc_test_null_key_round_robin);
    RV_RUN(bc_test_headers_timestamps);
    RV_RUN(bc_test_null_vs_empty);
    RV_RUN(bc_test_threaded_send);
    RV_RUN(bc_test_watermarks);
    RV_RUN(bc_test_assign_offsets);
    RV_RUN(bc_test_auto_offset_reset);
    RV_RUN(bc_test_partition_eof);
    RV_RUN(bc_test_commit_committed);
    RV_RUN(bc_test_seek_position);
    RV_RUN(bc_test_offsets_for_times);
    RV_RUN(bc_test_pause_resume);
    RV_RUN(bc_test_blocking_poll_wakes);
    RV_RUN(bc_test_group_split_and_takeover);
    RV_RUN(bc_test_retention_bytes);
    RV_RUN(bc_test_retention_ms);
    RV_RUN(bc_test_compaction);
    RV_RUN(bc_test_transactions);
}

#endif
