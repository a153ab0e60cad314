/*
 * test_local_txn.c: transactions of the `local:` broker (src/broker/local_txn.c).
 *
 * Checks what only the embedded log promises beyond the broker contract: a transaction's
 * records and offsets seen all or nothing from another handle of the same directory, the
 * transaction.max.bytes limit, fencing between handles, and crashes. The crash test forks a
 * child per round that reopens the directory, resumes from its group's committed offset like
 * an application would, runs a few transactions (each after an aborted one) and is killed
 * with SIGKILL at a chosen phase of its last commit (RV_LOCAL_TXN_KILL: before the intent,
 * after it, half-way through appending, before the offsets, before deleting the intent). In
 * half the rounds another process, which had the directory open before the crash, appends to
 * a partition of the dead transaction right after it: the half-applied transaction must be
 * completed before that append. After each round the parent reopens the directory and checks
 * that exactly the transactions below the committed offset are there, each record once and
 * in order, and nothing of an aborted or uncommitted one. Children are forked while the
 * parent holds no broker, and report through exit codes and pipes.
 *
 * ctest-labels: threads
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rivulet/broker.h"
#include "rivulet/clock.h"
#include "rv_test.h"

#define ROUNDS 20
#define TOPIC_A_PARTS 3
#define TOPIC_B_PARTS 2

static char g_root[256];
static char g_url[300];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void fresh_root(const char *name) {
    if (g_root[0]) {
        nftw(g_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    snprintf(g_root, sizeof g_root, "/tmp/rv-test-txn-%s-XXXXXX", name);
    if (!mkdtemp(g_root)) {
        abort();
    }
    snprintf(g_url, sizeof g_url, "local:%s", g_root);
}

static rv_broker_t *open_broker(void) {
    rv_error_t *err = NULL;
    rv_broker_t *b = rv_broker_open(g_url, NULL, &err);
    CHECK_MSG(b != NULL, "open %s: %s", g_url, rv_error_message(err));
    rv_error_destroy(err);
    return b;
}

static rv_producer_t *txn_producer(rv_broker_t *b, const char *id, const char *max_bytes) {
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "transactional.id", id, NULL);
    if (max_bytes) {
        rv_conf_set(conf, "transaction.max.bytes", max_bytes, NULL);
    }
    rv_producer_opts_t opts = {.conf = conf};
    rv_producer_t *p = rv_producer_new(b, &opts, NULL);
    rv_conf_destroy(conf);
    return p;
}

static rv_err_t send_str(rv_producer_t *p, const char *topic, int32_t partition,
                         const char *value) {
    rv_record_t r = {
        .topic = topic, .partition = partition, .value = value, .value_len = strlen(value)};
    return rv_producer_send(p, &r, NULL);
}

static rv_consumer_t *group_consumer(rv_broker_t *b, const char *group) {
    rv_consumer_opts_t opts = {.group = group};
    return rv_consumer_new(b, &opts, NULL);
}

static int64_t committed(rv_consumer_t *c, const char *topic) {
    rv_topic_partition_t tp = {topic, 0, 0};
    if (rv_consumer_committed(c, &tp, 1, NULL) != RV_OK) {
        return -100;
    }
    return tp.offset;
}

/* A stored record: its partition, offset and value. */
typedef struct rec_s {
    int32_t partition;
    int64_t offset;
    char value[64];
} rec_t;

/* Reads every record of `topic` (partitions 0..n-1) up to its high watermarks into *out. */
static size_t read_topic(rv_broker_t *b, const char *topic, int32_t n, rec_t **out) {
    rv_consumer_t *c = rv_consumer_new(b, NULL, NULL);
    size_t count = 0, cap = 0;
    *out = NULL;
    if (!c) {
        CHECK(c != NULL);
        return 0;
    }
    for (int32_t p = 0; p < n; p++) {
        int64_t lo = 0, hi = 0;
        CHECK_INT(rv_broker_watermarks(b, topic, p, &lo, &hi, NULL), RV_OK);
        rv_topic_partition_t tp = {topic, p, RV_OFFSET_BEGINNING};
        CHECK_INT(rv_consumer_assign(c, &tp, 1, NULL), RV_OK); /* replaces: read one by one */
        int64_t deadline = rv_clock_mono_ms() + 5000;
        int64_t got = 0;
        while (got < hi && rv_clock_mono_ms() < deadline) {
            const rv_record_t *recs;
            size_t k = 0;
            if (rv_consumer_poll(c, &recs, 1000, &k, 100, NULL) != RV_OK) {
                break;
            }
            for (size_t i = 0; i < k; i++, got++) {
                if (count == cap) {
                    cap = cap ? cap * 2 : 256;
                    *out = realloc(*out, cap * sizeof **out);
                }
                rec_t *r = &(*out)[count++];
                r->partition = recs[i].partition;
                r->offset = recs[i].offset;
                snprintf(r->value, sizeof r->value, "%.*s", (int)recs[i].value_len,
                         (const char *)recs[i].value);
            }
        }
        CHECK_MSG(got == hi, "%s/%d: read %lld of %lld", topic, (int)p, (long long)got,
                  (long long)hi);
    }
    rv_consumer_close(c);
    return count;
}

/* ---- visibility, limit, fencing ------------------------------------------------------------- */

static void test_visibility_across_handles(void) {
    fresh_root("vis");
    rv_broker_t *w = open_broker();
    rv_broker_t *r = open_broker();
    REQUIRE(w && r);
    CHECK_INT(rv_broker_create_topic(w, "a", 2, NULL, NULL), RV_OK);
    CHECK_INT(rv_broker_create_topic(w, "in", 1, NULL, NULL), RV_OK);
    rv_producer_t *p = txn_producer(w, "vis", NULL);
    rv_consumer_t *c = group_consumer(w, "g");
    rv_consumer_t *rc = group_consumer(r, "g");
    REQUIRE(p && c && rc);
    rv_error_t *err = NULL;
    /* Outside a transaction a transactional producer cannot send. */
    CHECK_INT(send_str(p, "a", 0, "early"), RV_ERR_STATE);
    CHECK_INT(rv_producer_begin_transaction(p, &err), RV_OK);
    CHECK_INT(send_str(p, "a", 0, "v0"), RV_OK);
    CHECK_INT(send_str(p, "a", 1, "v1"), RV_OK);
    rv_topic_partition_t off = {"in", 0, 7};
    CHECK_INT(rv_producer_send_offsets_to_transaction(p, c, &off, 1, -1, &err), RV_OK);
    int64_t lo, hi;
    CHECK_INT(rv_broker_watermarks(r, "a", 0, &lo, &hi, NULL), RV_OK);
    CHECK_INT(hi, 0);
    CHECK_INT(committed(rc, "in"), RV_OFFSET_INVALID);
    CHECK_MSG(rv_producer_commit_transaction(p, -1, &err) == RV_OK, "commit: %s",
              rv_error_message(err));
    CHECK_INT(rv_broker_watermarks(r, "a", 0, &lo, &hi, NULL), RV_OK);
    CHECK_INT(hi, 1);
    CHECK_INT(rv_broker_watermarks(r, "a", 1, &lo, &hi, NULL), RV_OK);
    CHECK_INT(hi, 1);
    CHECK_INT(committed(rc, "in"), 7);
    /* An empty transaction commits nothing and is fine. */
    CHECK_INT(rv_producer_begin_transaction(p, &err), RV_OK);
    CHECK_INT(rv_producer_commit_transaction(p, -1, &err), RV_OK);
    /* Offsets from a consumer of another kind of broker are refused. */
    rv_broker_t *m = rv_broker_open("memory:", NULL, NULL);
    rv_consumer_t *mc = group_consumer(m, "g");
    CHECK_INT(rv_producer_begin_transaction(p, &err), RV_OK);
    CHECK_INT(rv_producer_send_offsets_to_transaction(p, mc, &off, 1, -1, &err),
              RV_ERR_INVALID_ARG);
    CHECK_INT(rv_producer_abort_transaction(p, -1, &err), RV_OK);
    rv_consumer_close(mc);
    rv_broker_close(m);
    rv_error_destroy(err);
    rv_consumer_close(rc);
    rv_consumer_close(c);
    rv_producer_close(p);
    rv_broker_close(r);
    rv_broker_close(w);
}

static void test_limit(void) {
    fresh_root("limit");
    rv_broker_t *b = open_broker();
    REQUIRE(b != NULL);
    CHECK_INT(rv_broker_create_topic(b, "a", 1, NULL, NULL), RV_OK);
    rv_producer_t *p = txn_producer(b, "limit", "2048");
    REQUIRE(p != NULL);
    CHECK_INT(rv_producer_begin_transaction(p, NULL), RV_OK);
    char v[600];
    memset(v, 'v', sizeof v - 1);
    v[sizeof v - 1] = 0;
    CHECK_INT(send_str(p, "a", 0, v), RV_OK);
    CHECK_INT(send_str(p, "a", 0, v), RV_OK);
    CHECK_INT(send_str(p, "a", 0, v), RV_OK);
    CHECK_INT(send_str(p, "a", 0, v), RV_ERR_LIMIT); /* 4 x 624 > 2048 */
    CHECK_INT(send_str(p, "nope", 0, "x"), RV_ERR_NOT_FOUND);
    CHECK_INT(send_str(p, "a", 5, "x"), RV_ERR_INVALID_ARG);
    CHECK_INT(rv_producer_commit_transaction(p, -1, NULL), RV_OK);
    int64_t lo, hi;
    CHECK_INT(rv_broker_watermarks(b, "a", 0, &lo, &hi, NULL), RV_OK);
    CHECK_INT(hi, 3);
    /* The limit is per transaction. */
    CHECK_INT(rv_producer_begin_transaction(p, NULL), RV_OK);
    CHECK_INT(send_str(p, "a", 0, v), RV_OK);
    CHECK_INT(rv_producer_abort_transaction(p, -1, NULL), RV_OK);
    rv_producer_close(p);
    rv_broker_close(b);
}

/* A value larger than message.split.bytes goes into a transaction as chunks and comes out
 * whole, once, with one delivery report at the commit. */
static int g_reports;
static rv_err_t g_report_err;
static void on_report(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    (void)opaque;
    (void)rec;
    (void)rec_opaque;
    g_reports++;
    g_report_err = err;
}

static void test_split_value(void) {
    fresh_root("split");
    rv_broker_t *b = open_broker();
    REQUIRE(b != NULL);
    CHECK_INT(rv_broker_create_topic(b, "a", 1, NULL, NULL), RV_OK);
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "transactional.id", "split", NULL);
    rv_conf_set(conf, "message.split.bytes", "1024", NULL);
    rv_producer_opts_t opts = {.conf = conf, .delivery_cb = on_report};
    rv_producer_t *p = rv_producer_new(b, &opts, NULL);
    rv_conf_destroy(conf);
    REQUIRE(p != NULL);
    size_t len = 10000;
    char *v = malloc(len);
    for (size_t i = 0; i < len; i++) {
        v[i] = (char)('a' + i % 26);
    }
    CHECK_INT(rv_producer_begin_transaction(p, NULL), RV_OK);
    rv_record_t r = {
        .topic = "a", .partition = 0, .key = "k", .key_len = 1, .value = v, .value_len = len};
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    CHECK_INT(g_reports, 0);
    CHECK_INT(rv_producer_commit_transaction(p, -1, NULL), RV_OK);
    rv_producer_poll(p, 100);
    CHECK_INT(g_reports, 1);
    CHECK_INT(g_report_err, RV_OK);
    int64_t lo, hi;
    CHECK_INT(rv_broker_watermarks(b, "a", 0, &lo, &hi, NULL), RV_OK);
    CHECK_MSG(hi > 1, "stored as %lld record(s), not chunks", (long long)hi);
    rv_consumer_t *c = rv_consumer_new(b, NULL, NULL);
    rv_topic_partition_t tp = {"a", 0, RV_OFFSET_BEGINNING};
    CHECK_INT(rv_consumer_assign(c, &tp, 1, NULL), RV_OK);
    int whole = 0;
    int64_t deadline = rv_clock_mono_ms() + 3000;
    while (whole == 0 && rv_clock_mono_ms() < deadline) {
        const rv_record_t *recs;
        size_t n = 0;
        CHECK_INT(rv_consumer_poll(c, &recs, 100, &n, 100, NULL), RV_OK);
        for (size_t i = 0; i < n; i++) {
            CHECK_INT(recs[i].value_len, len);
            CHECK(recs[i].value_len == len && memcmp(recs[i].value, v, len) == 0);
            whole++;
        }
    }
    CHECK_INT(whole, 1);
    rv_consumer_close(c);
    free(v);
    rv_producer_close(p);
    rv_broker_close(b);
}

static void test_fencing_across_handles(void) {
    fresh_root("fence");
    rv_broker_t *b1 = open_broker();
    rv_broker_t *b2 = open_broker();
    REQUIRE(b1 && b2);
    CHECK_INT(rv_broker_create_topic(b1, "a", 1, NULL, NULL), RV_OK);
    rv_producer_t *old = txn_producer(b1, "app", NULL);
    REQUIRE(old != NULL);
    CHECK_INT(rv_producer_begin_transaction(old, NULL), RV_OK);
    CHECK_INT(send_str(old, "a", 0, "zombie"), RV_OK);
    /* A restarted application takes the id while the old one is mid-transaction. */
    rv_producer_t *fresh = txn_producer(b2, "app", NULL);
    REQUIRE(fresh != NULL);
    CHECK_INT(rv_producer_begin_transaction(fresh, NULL), RV_OK);
    rv_error_t *err = NULL;
    CHECK_INT(rv_producer_commit_transaction(old, -1, &err), RV_ERR_FATAL);
    CHECK(err && strstr(rv_error_message(err), "fenced") != NULL);
    CHECK_INT(send_str(old, "a", 0, "zombie2"), RV_ERR_FATAL);
    CHECK_INT(rv_producer_begin_transaction(old, &err), RV_ERR_FATAL);
    CHECK_INT(send_str(fresh, "a", 0, "new"), RV_OK);
    CHECK_INT(rv_producer_commit_transaction(fresh, -1, &err), RV_OK);
    rv_error_destroy(err);
    rec_t *recs = NULL;
    size_t n = read_topic(b1, "a", 1, &recs);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_STR(recs[0].value, "new");
    }
    free(recs);
    rv_producer_close(old);
    rv_producer_close(fresh);
    rv_broker_close(b1);
    rv_broker_close(b2);
}

/* Transactional producers in several threads and a plain one, on the same partitions: no
 * deadlock, and each transaction's records stay together in every partition. */
typedef struct worker_s {
    rv_broker_t *b;
    int id;
    int failures;
} worker_t;

#define WORKER_TXNS 30

static void *txn_worker(void *arg) {
    worker_t *w = arg;
    char id[16];
    snprintf(id, sizeof id, "w%d", w->id);
    rv_producer_t *p = txn_producer(w->b, id, NULL);
    if (!p) {
        w->failures++;
        return NULL;
    }
    for (int i = 0; i < WORKER_TXNS; i++) {
        if (rv_producer_begin_transaction(p, NULL) != RV_OK) {
            w->failures++;
            break;
        }
        for (int k = 0; k < 6; k++) {
            char v[32];
            snprintf(v, sizeof v, "%d:%d:%d", w->id, i, k);
            /* Worker 0 goes up the partitions, worker 1 down. */
            int32_t part = w->id == 0 ? k % 3 : 2 - k % 3;
            w->failures += send_str(p, "a", part, v) != RV_OK;
        }
        w->failures += rv_producer_commit_transaction(p, -1, NULL) != RV_OK;
    }
    rv_producer_close(p);
    return NULL;
}

static void *plain_worker(void *arg) {
    worker_t *w = arg;
    rv_producer_t *p = rv_producer_new(w->b, NULL, NULL);
    for (int i = 0; p && i < 200; i++) {
        char v[32];
        snprintf(v, sizeof v, "plain:%d", i);
        w->failures += send_str(p, "a", i % 3, v) != RV_OK;
        if (i % 20 == 0) {
            rv_clock_sleep_ms(1);
        }
    }
    w->failures += !p || rv_producer_flush(p, 10000, NULL) != RV_OK;
    rv_producer_close(p);
    return NULL;
}

static void test_threads(void) {
    fresh_root("threads");
    rv_broker_t *b = open_broker();
    REQUIRE(b != NULL);
    CHECK_INT(rv_broker_create_topic(b, "a", 3, NULL, NULL), RV_OK);
    worker_t ws[3] = {{b, 0, 0}, {b, 1, 0}, {b, 2, 0}};
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        REQUIRE(pthread_create(&th[i], NULL, i < 2 ? txn_worker : plain_worker, &ws[i]) == 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(ws[i].failures, 0);
    }
    rec_t *recs = NULL;
    size_t n = read_topic(b, "a", 3, &recs);
    CHECK_INT(n, 2 * WORKER_TXNS * 6 + 200);
    /* In each partition, the records of one transaction are adjacent: the next record after
     * one of a transaction is of the same transaction until all of its records there came. */
    for (size_t k = 0; k + 1 < n; k++) {
        int w1, i1, k1, w2, i2, k2;
        if (sscanf(recs[k].value, "%d:%d:%d", &w1, &i1, &k1) != 3 || k1 >= 3) {
            continue; /* plain, or the second record of this transaction in its partition */
        }
        CHECK_MSG(recs[k + 1].partition == recs[k].partition &&
                      sscanf(recs[k + 1].value, "%d:%d:%d", &w2, &i2, &k2) == 3 && w2 == w1 &&
                      i2 == i1 && k2 == k1 + 3,
                  "%s at %d/%lld is followed by %s", recs[k].value, (int)recs[k].partition,
                  (long long)recs[k].offset, recs[k + 1].value);
    }
    free(recs);
    rv_broker_close(b);
}

/* A damaged intent is moved aside with an error in the log, and blocks nothing; a temporary
 * intent nobody holds (a commit that died before its commit point) is removed. */
static char g_logged[1024];
static void on_log(void *opaque, rv_log_level_t level, const char *facility, const char *msg) {
    (void)opaque;
    (void)facility;
    if (level == RV_LOG_ERROR) {
        snprintf(g_logged, sizeof g_logged, "%s", msg);
    }
}

static void test_damaged_intent(void) {
    fresh_root("damaged");
    rv_broker_t *b = open_broker();
    REQUIRE(b != NULL);
    CHECK_INT(rv_broker_create_topic(b, "a", 1, NULL, NULL), RV_OK);
    rv_broker_close(b);
    char path[400], tmp[400], aside[420];
    snprintf(path, sizeof path, "%s/txn/intents/1-0-bad.txn", g_root);
    snprintf(tmp, sizeof tmp, "%s/txn/intents/1-1-dead.tmp", g_root);
    snprintf(aside, sizeof aside, "%s.corrupt", path);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("rivulet-txn 1\nid 61\nepoch 1\npart a 0 0 1 5\ndata\nhello", f);
    fclose(f);
    f = fopen(tmp, "w");
    REQUIRE(f != NULL);
    fputs("half", f);
    fclose(f);
    rv_broker_opts_t opts = {.log_cb = on_log};
    rv_error_t *err = NULL;
    b = rv_broker_open(g_url, &opts, &err);
    CHECK_MSG(b != NULL, "open: %s", rv_error_message(err));
    rv_error_destroy(err);
    CHECK(access(path, F_OK) != 0);
    CHECK(access(aside, F_OK) == 0);
    CHECK(access(tmp, F_OK) != 0);
    CHECK_MSG(strstr(g_logged, "1-0-bad.txn") && strstr(g_logged, "checksum"), "logged: \"%s\"",
              g_logged);
    int64_t lo, hi;
    CHECK_INT(rv_broker_watermarks(b, "a", 0, &lo, &hi, NULL), RV_OK);
    CHECK_INT(hi, 0);
    /* Writing the partition is not blocked. */
    rv_producer_t *p = rv_producer_new(b, NULL, NULL);
    CHECK_INT(send_str(p, "a", 0, "after"), RV_OK);
    CHECK_INT(rv_producer_flush(p, 10000, NULL), RV_OK);
    rv_producer_close(p);
    CHECK_INT(rv_broker_watermarks(b, "a", 0, &lo, &hi, NULL), RV_OK);
    CHECK_INT(hi, 1);
    rv_broker_close(b);
}

/* ---- crashes -------------------------------------------------------------------------------- */

static const char *const k_phases[] = {"before-intent",  "after-intent",  "mid-apply",
                                       "before-offsets", "before-delete", NULL};
#define NPHASES 6 /* the last: no kill */

/* Records of transaction i: two on a/0, one on a/(1 + i % 2), one on b/(i % 2). */
static int txn_send(rv_producer_t *p, int i, const char *tag) {
    char v[64];
    int bad = 0;
    snprintf(v, sizeof v, "%s%d:z0", tag, i);
    bad |= send_str(p, "a", 0, v) != RV_OK;
    snprintf(v, sizeof v, "%s%d:z1", tag, i);
    bad |= send_str(p, "a", 0, v) != RV_OK;
    snprintf(v, sizeof v, "%s%d:y", tag, i);
    bad |= send_str(p, "a", 1 + i % 2, v) != RV_OK;
    snprintf(v, sizeof v, "%s%d:b", tag, i);
    bad |= send_str(p, "b", i % 2, v) != RV_OK;
    return bad;
}

/* The crashing application: resumes at its committed offset, runs `n` transactions, the last
 * one killed at `phase` (NULL: none). Exit codes: 0 done, 2..9 a failure. */
static void crash_child(int n, const char *phase) {
    rv_broker_t *b = rv_broker_open(g_url, NULL, NULL);
    if (!b) {
        _exit(2);
    }
    rv_consumer_t *c = group_consumer(b, "g");
    rv_producer_t *p = txn_producer(b, "app", NULL);
    if (!c || !p) {
        _exit(3);
    }
    if (rv_producer_begin_transaction(p, NULL) != RV_OK) {
        _exit(4); /* fences the previous round's producer and finishes its transaction */
    }
    if (rv_producer_abort_transaction(p, -1, NULL) != RV_OK) {
        _exit(4);
    }
    int64_t at = committed(c, "in");
    int i = at == RV_OFFSET_INVALID ? 0 : (int)at;
    for (int k = 0; k < n; k++, i++) {
        /* An aborted attempt first, then the real one. */
        if (rv_producer_begin_transaction(p, NULL) != RV_OK || txn_send(p, i, "x") ||
            rv_producer_abort_transaction(p, -1, NULL) != RV_OK) {
            _exit(5);
        }
        if (rv_producer_begin_transaction(p, NULL) != RV_OK || txn_send(p, i, "")) {
            _exit(6);
        }
        rv_topic_partition_t off = {"in", 0, i + 1};
        if (rv_producer_send_offsets_to_transaction(p, c, &off, 1, -1, NULL) != RV_OK) {
            _exit(7);
        }
        if (k == n - 1 && phase) {
            setenv("RV_LOCAL_TXN_KILL", phase, 1);
        }
        rv_error_t *err = NULL;
        if (rv_producer_commit_transaction(p, -1, &err) != RV_OK) {
            fprintf(stderr, "child commit %d: %s\n", i, rv_error_message(err));
            _exit(8);
        }
    }
    if (phase) {
        _exit(9); /* should have been killed */
    }
    rv_producer_close(p);
    rv_consumer_close(c);
    rv_broker_close(b);
    _exit(0);
}

/* Another process with the directory open before the crash: appends "p:<round>" to a/0 once
 * told to (a byte on `go`), after saying it is ready (a byte on `ready`). */
static void bystander_child(int round, int ready, int go) {
    rv_broker_t *b = rv_broker_open(g_url, NULL, NULL);
    if (!b) {
        _exit(2);
    }
    char byte = 'r';
    if (write(ready, &byte, 1) != 1 || read(go, &byte, 1) != 1) {
        _exit(3);
    }
    rv_producer_t *p = rv_producer_new(b, NULL, NULL);
    char v[32];
    snprintf(v, sizeof v, "p:%d", round);
    rv_err_t e = p ? send_str(p, "a", 0, v) : RV_ERR_NOMEM;
    if (e != RV_OK || rv_producer_flush(p, 20000, NULL) != RV_OK) {
        _exit(4);
    }
    rv_producer_close(p);
    rv_broker_close(b);
    _exit(0);
}

/* Parses "<i>:..." (a committed record) or "x<i>:..." (an aborted one). */
static int txn_of(const char *v, bool *aborted) {
    *aborted = v[0] == 'x';
    return atoi(v + (*aborted ? 1 : 0));
}

/* Checks the directory after a round: transactions [0, want) each whole and once. */
static void check_state(int want, const int *bystander_after) {
    rv_broker_t *b = open_broker();
    REQUIRE(b != NULL);
    rv_consumer_t *c = group_consumer(b, "g");
    int64_t at = c ? committed(c, "in") : -1;
    CHECK_MSG(at == want, "committed offset %lld, expected %d", (long long)at, want);
    rec_t *a = NULL, *bb = NULL;
    size_t na = read_topic(b, "a", TOPIC_A_PARTS, &a);
    size_t nb = read_topic(b, "b", TOPIC_B_PARTS, &bb);
    int *seen_a = calloc((size_t)want + 1, sizeof *seen_a);
    int *seen_b = calloc((size_t)want + 1, sizeof *seen_b);
    int last_txn[TOPIC_A_PARTS] = {-1, -1, -1};
    int last_p_round = -1;
    for (size_t k = 0; k < na; k++) {
        if (strncmp(a[k].value, "p:", 2) == 0) {
            int r = atoi(a[k].value + 2);
            CHECK_MSG(a[k].partition == 0 && r > last_p_round, "bystander record %s misplaced",
                      a[k].value);
            /* Every transaction committed before that round's crash is entirely before it. */
            CHECK_MSG(last_txn[0] + 1 >= bystander_after[r],
                      "p:%d at a/0 offset %lld comes before transaction %d was whole", r,
                      (long long)a[k].offset, bystander_after[r] - 1);
            last_p_round = r;
            continue;
        }
        bool aborted;
        int i = txn_of(a[k].value, &aborted);
        CHECK_MSG(!aborted, "aborted record %s visible at a/%d offset %lld", a[k].value,
                  (int)a[k].partition, (long long)a[k].offset);
        CHECK_MSG(i >= 0 && i < want, "record %s of an uncommitted transaction visible",
                  a[k].value);
        CHECK_MSG(i >= last_txn[a[k].partition], "a/%d: %s after transaction %d",
                  (int)a[k].partition, a[k].value, last_txn[a[k].partition]);
        if (a[k].partition == 0 && i == last_txn[0]) { /* z0 then z1 */
            CHECK_MSG(strstr(a[k].value, ":z1") != NULL, "a/0: %s twice or out of order",
                      a[k].value);
        }
        last_txn[a[k].partition] = i;
        if (i >= 0 && i < want && !aborted) {
            seen_a[i]++;
        }
    }
    for (size_t k = 0; k < nb; k++) {
        bool aborted;
        int i = txn_of(bb[k].value, &aborted);
        CHECK_MSG(!aborted && i >= 0 && i < want, "record %s visible in b", bb[k].value);
        CHECK_MSG(bb[k].partition == i % 2, "%s in b/%d", bb[k].value, (int)bb[k].partition);
        if (!aborted && i >= 0 && i < want) {
            seen_b[i]++;
        }
    }
    for (int i = 0; i < want; i++) {
        CHECK_MSG(seen_a[i] == 3 && seen_b[i] == 1,
                  "transaction %d: %d of 3 records in a, %d of 1 in b", i, seen_a[i], seen_b[i]);
    }
    free(seen_a);
    free(seen_b);
    free(a);
    free(bb);
    rv_consumer_close(c);
    rv_broker_close(b);
}

static void test_crash_rounds(void) {
    fresh_root("crash");
    rv_broker_t *b = open_broker();
    REQUIRE(b != NULL);
    CHECK_INT(rv_broker_create_topic(b, "a", TOPIC_A_PARTS, NULL, NULL), RV_OK);
    CHECK_INT(rv_broker_create_topic(b, "b", TOPIC_B_PARTS, NULL, NULL), RV_OK);
    CHECK_INT(rv_broker_create_topic(b, "in", 1, NULL, NULL), RV_OK);
    rv_broker_close(b);
    srand(20261123);
    int committed_txns = 0;
    int bystander_after[ROUNDS];
    int64_t t0 = rv_clock_mono_ms();
    for (int round = 0; round < ROUNDS && rv_test_failures == 0; round++) {
        int phase = round % NPHASES;
        const char *kill_at = phase < NPHASES - 1 ? k_phases[phase] : NULL;
        int n = 1 + rand() % 3;
        /* The last transaction is lost only when killed before its intent. */
        int expect = committed_txns + n - (phase == 0 ? 1 : 0);
        bystander_after[round] = expect;
        bool bystander = round % 2 == 1;
        int ready[2], go[2];
        pid_t by = -1;
        if (bystander) {
            REQUIRE(pipe(ready) == 0 && pipe(go) == 0);
            by = fork();
            REQUIRE(by >= 0);
            if (by == 0) {
                close(ready[0]);
                close(go[1]);
                bystander_child(round, ready[1], go[0]);
            }
            close(ready[1]);
            close(go[0]);
            char byte;
            CHECK_INT(read(ready[0], &byte, 1), 1);
        }
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            crash_child(n, kill_at);
        }
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        if (kill_at) {
            CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                      "round %d (%s): child ended with status %d", round, kill_at, status);
        } else {
            CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "round %d: child ended with status %d", round, status);
        }
        if (bystander) {
            char byte = 'g';
            CHECK_INT(write(go[1], &byte, 1), 1);
            REQUIRE(waitpid(by, &status, 0) == by);
            CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "round %d: bystander ended with status %d", round, status);
            close(ready[0]);
            close(go[1]);
        } else {
            bystander_after[round] = 0;
        }
        committed_txns = expect;
        check_state(committed_txns, bystander_after);
    }
    fprintf(stderr, "crash rounds: %d transactions committed over %d rounds in %lld ms\n",
            committed_txns, ROUNDS, (long long)(rv_clock_mono_ms() - t0));
}

int main(void) {
    RV_RUN(test_visibility_across_handles);
    RV_RUN(test_limit);
    RV_RUN(test_split_value);
    RV_RUN(test_fencing_across_handles);
    RV_RUN(test_damaged_intent);
    RV_RUN(test_threads);
    RV_RUN(test_crash_rounds);
    if (g_root[0]) {
        nftw(g_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    return rv_test_finish();
}
