/*
 * test_state_app.c: stateful operators in applications: per-key counts and sums kept in RocksDB
 * stores with changelogs, across restarts, a lost state directory and replayed input.
 *
 * ctest-labels: threads
 *
 * The test writes records {"x": i} keyed "k0".."k12" to a 3-partition topic, and runs an
 * application whose apply_state counts the records of each key and sums their x, writing
 * {"n": count, "sum": sum} to an output topic. After every run the last output of each key must
 * equal a reference the test computes from what it wrote. Runs: a first batch; a restart with a
 * second batch (stores reopened from disk); the state directory deleted and a third batch (stores
 * rebuilt from their changelogs: the restore counter moves); the group's offsets reset to the
 * beginning (every record replayed: the stores' processed offsets make the stateful operator
 * skip them all, so no output at all, and the counts stay exact); a fourth batch with two worker
 * threads. On local:<tmpdir>, memory: and kafka:// against a librdkafka mock cluster the test
 * starts. Last, a store directory held open by another process (this program run again): the
 * run waits state.lock.timeout.ms, then fails with RV_ERR_BUSY naming the directory. It must
 * never depend on a server outside the process.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <rocksdb/c.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kafka_tsan.h"
#include "rivulet/rivulet.h"
#include "rv_test.h"

#define KEYS 13
#define PARTS 3

static const char *const g_kafka_conf[] = {
    "kafka.session.timeout.ms=3100", "kafka.heartbeat.interval.ms=100",
    "kafka.fetch.wait.max.ms=100", "kafka.reconnect.backoff.max.ms=500", NULL};

static char g_state[256];
static int64_t g_ref_n[KEYS], g_ref_sum[KEYS];
static int64_t g_written;

/* ---- the application ------------------------------------------------------------------------ */

static rv_value_t *count(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)opaque;
    rv_state_t *st = rv_ctx_state(ctx);
    if (!st) {
        rv_ctx_fail(ctx, "no state handle");
        return NULL;
    }
    int64_t n = rv_state_get_int(st, "n", 0) + 1;
    int64_t sum = rv_state_get_int(st, "sum", 0) + rv_value_int(rv_value_get_cstr(v, "x"));
    if (rv_state_set_int(st, "n", n) != RV_OK || rv_state_set_int(st, "sum", sum) != RV_OK) {
        rv_ctx_fail(ctx, "cannot set state");
        return NULL;
    }
    rv_arena_t *a = rv_ctx_arena(ctx);
    rv_value_t *o = rv_value_new_object(a, 2);
    rv_value_set(a, o, "n", 1, rv_value_new_int(a, n));
    rv_value_set(a, o, "sum", 3, rv_value_new_int(a, sum));
    return o;
}

typedef struct broker_s {
    const char *url;
    bool kafka;
    rv_app_t *app; /* memory: one application for every run (the broker lives in it) */
} broker_t;

static rv_conf_t *base_conf(const broker_t *b) {
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "state.dir", g_state, NULL);
    rv_conf_set(conf, "auto.offset.reset", "earliest", NULL);
    rv_conf_set(conf, "commit.interval.ms", "200", NULL);
    rv_conf_set(conf, "group.check.interval.ms", "50", NULL);
    rv_conf_set(conf, "state.lock.timeout.ms", "20000", NULL);
    rv_conf_set(conf, "rocksdb.write_buffer_size", "4194304", NULL); /* passed to every store */
    rv_conf_set(conf, "state.buffer.max.bytes", "1048576", NULL);
    for (size_t i = 0; b->kafka && g_kafka_conf[i]; i++) {
        rv_conf_set_pair(conf, g_kafka_conf[i], NULL);
    }
    return conf;
}

static rv_app_t *make_app(broker_t *b, int threads) {
    if (b->app) {
        return b->app;
    }
    rv_conf_t *conf = base_conf(b);
    char t[8];
    snprintf(t, sizeof t, "%d", threads);
    rv_conf_set(conf, "app.threads", t, NULL);
    rv_app_opts_t ao = {.broker_url = b->url, .group = "counter", .conf = conf};
    rv_error_t *err = NULL;
    rv_app_t *app = rv_app_new(&ao, &err);
    rv_conf_destroy(conf);
    if (!app) {
        fprintf(stderr, "rv_app_new: %s\n", rv_error_message(err));
        rv_error_destroy(err);
        return NULL;
    }
    rv_topic_opts_t in_o = {.key_serde = "string", .partitions = PARTS};
    rv_topic_opts_t out_o = {.key_serde = "string", .partitions = PARTS};
    rv_topic_t *in = rv_app_topic(app, "in", &in_o, NULL);
    rv_topic_t *out = rv_app_topic(app, "out", &out_o, NULL);
    rv_df_t *df = rv_app_dataframe(app, in);
    df = rv_df_apply_state(df, "counts", count, NULL);
    df = rv_df_to_topic(df, out);
    if (!df) {
        rv_app_destroy(app);
        return NULL;
    }
    if (strcmp(b->url, "memory:") == 0) {
        b->app = app;
    }
    return app;
}

/* Runs the application until its input is read to the end; returns the metrics. */
static rv_err_t run(broker_t *b, int threads, rv_app_metrics_t *m) {
    rv_app_t *app = make_app(b, threads);
    if (!app) {
        return RV_ERR_NOMEM;
    }
    rv_app_metrics_t before;
    rv_app_metrics(app, &before);
    rv_run_opts_t ro = {.until_end = true, .timeout_ms = 60000};
    rv_error_t *err = NULL;
    rv_err_t e = rv_app_run(app, &ro, &err);
    if (e != RV_OK) {
        fprintf(stderr, "rv_app_run: %s\n", rv_error_message(err));
    }
    rv_error_destroy(err);
    rv_app_metrics(app, m);
    m->records_in -= before.records_in;
    m->records_out -= before.records_out;
    m->state_restored -= before.state_restored;
    if (app != b->app) {
        rv_app_destroy(app);
    }
    return e;
}

/* ---- input and checks ----------------------------------------------------------------------- */

static rv_broker_t *broker_of(broker_t *b, rv_broker_t **owned) {
    *owned = NULL;
    if (b->app) {
        return rv_app_broker(b->app);
    }
    rv_conf_t *conf = base_conf(b);
    rv_broker_opts_t bo = {.conf = conf};
    *owned = rv_broker_open(b->url, &bo, NULL);
    rv_conf_destroy(conf);
    return *owned;
}

static void write_batch(broker_t *b, int n) {
    rv_broker_t *owned;
    rv_broker_t *br = broker_of(b, &owned);
    rv_producer_t *p = rv_producer_new(br, NULL, NULL);
    char key[16], val[64];
    for (int i = 0; i < n; i++) {
        int64_t x = g_written++;
        int k = (int)((x * 7) % KEYS);
        snprintf(key, sizeof key, "k%d", k);
        snprintf(val, sizeof val, "{\"x\":%lld}", (long long)x);
        rv_record_t r = {.topic = "in",
                         .partition = RV_PARTITION_ANY,
                         .key = key,
                         .key_len = strlen(key),
                         .value = val,
                         .value_len = strlen(val)};
        while (rv_producer_send(p, &r, NULL) == RV_ERR_AGAIN) {
            rv_producer_poll(p, 10);
        }
        g_ref_n[k]++;
        g_ref_sum[k] += x;
    }
    CHECK_INT(rv_producer_flush(p, -1, NULL), RV_OK);
    rv_producer_close(p);
    rv_broker_close(owned);
}

/* Reads the whole output: the last {"n","sum"} of every key must match the reference. Returns
 * the number of output records. */
static int64_t check_output(broker_t *b) {
    rv_broker_t *owned;
    rv_broker_t *br = broker_of(b, &owned);
    int64_t last_n[KEYS] = {0}, last_sum[KEYS] = {0}, total = 0;
    rv_consumer_t *c = rv_consumer_new(br, NULL, NULL);
    rv_topic_partition_t tps[PARTS];
    int64_t hi[PARTS];
    for (int p = 0; p < PARTS; p++) {
        int64_t lo;
        tps[p] = (rv_topic_partition_t){"out", p, RV_OFFSET_BEGINNING};
        hi[p] = 0;
        rv_broker_watermarks(br, "out", p, &lo, &hi[p], NULL);
        total += hi[p];
    }
    CHECK_INT(rv_consumer_assign(c, tps, PARTS, NULL), RV_OK);
    int64_t seen = 0;
    rv_arena_t *a = rv_arena_new(0);
    for (int spins = 0; seen < total && spins < 600; spins++) {
        const rv_record_t *recs;
        size_t n = 0;
        if (rv_consumer_poll(c, &recs, 1024, &n, 100, NULL) != RV_OK) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            seen++;
            int k = atoi((const char *)recs[i].key + 1);
            rv_value_t *v = NULL;
            rv_arena_reset(a);
            if (rv_json_parse(a, recs[i].value, recs[i].value_len, NULL, &v, NULL, NULL) != RV_OK) {
                CHECK_MSG(false, "output offset %lld is not JSON", (long long)recs[i].offset);
                continue;
            }
            last_n[k] = rv_value_int(rv_value_get_cstr(v, "n"));
            last_sum[k] = rv_value_int(rv_value_get_cstr(v, "sum"));
        }
    }
    rv_arena_destroy(a);
    CHECK_INT(seen, total);
    for (int k = 0; k < KEYS; k++) {
        CHECK_MSG(last_n[k] == g_ref_n[k] && last_sum[k] == g_ref_sum[k],
                  "key k%d: n %lld sum %lld, want n %lld sum %lld", k, (long long)last_n[k],
                  (long long)last_sum[k], (long long)g_ref_n[k], (long long)g_ref_sum[k]);
    }
    rv_consumer_close(c);
    rv_broker_close(owned);
    return total;
}

static void count_assigned(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps,
                           size_t count) {
    (void)c;
    (void)tps;
    *(size_t *)opaque += count;
}

/* Commits offset 0 for every input partition of the group (as its only member: Kafka takes
 * commits from members only), so the next run replays all. */
static void reset_offsets(broker_t *b) {
    rv_broker_t *owned;
    rv_broker_t *br = broker_of(b, &owned);
    size_t assigned = 0;
    rv_consumer_opts_t co = {.group = "counter",
                             .callbacks = {.opaque = &assigned, .on_assign = count_assigned}};
    rv_consumer_t *c = rv_consumer_new(br, &co, NULL);
    const char *topics[] = {"in"};
    CHECK_INT(rv_consumer_subscribe(c, topics, 1, NULL), RV_OK);
    rv_topic_partition_t tps[PARTS];
    for (int p = 0; p < PARTS; p++) {
        tps[p] = (rv_topic_partition_t){"in", p, 0};
    }
    for (int i = 0; i < 300 && assigned < PARTS; i++) {
        const rv_record_t *recs;
        size_t n;
        rv_consumer_poll(c, &recs, 1024, &n, 100, NULL);
    }
    CHECK_INT(assigned, PARTS);
    rv_error_t *err = NULL;
    CHECK_INT(rv_consumer_commit(c, tps, PARTS, &err), RV_OK);
    if (err) {
        fprintf(stderr, "reset: %s\n", rv_error_message(err));
    }
    rv_error_destroy(err);
    rv_consumer_close(c);
    rv_broker_close(owned);
}

static void rmrf(const char *path) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    CHECK(system(cmd) == 0);
}

static void scenario(broker_t *b) {
    memset(g_ref_n, 0, sizeof g_ref_n);
    memset(g_ref_sum, 0, sizeof g_ref_sum);
    g_written = 0;
    rmrf(g_state);
    rv_app_metrics_t m;
    /* The first batch. */
    if (b->app == NULL && strcmp(b->url, "memory:") == 0) {
        REQUIRE(make_app(b, 1) != NULL);
    }
    {
        rv_broker_t *owned;
        rv_broker_t *br = broker_of(b, &owned);
        rv_broker_create_topic(br, "in", PARTS, NULL, NULL);
        rv_broker_create_topic(br, "out", PARTS, NULL, NULL);
        rv_broker_close(owned);
    }
    write_batch(b, 400);
    REQUIRE(run(b, 1, &m) == RV_OK);
    CHECK_INT(m.records_in, 400);
    CHECK(m.state_stores == PARTS);
    CHECK(m.state_bytes > 0);
    CHECK_INT(check_output(b), 400);
    /* A restart: the stores come back from disk. */
    write_batch(b, 300);
    REQUIRE(run(b, 1, &m) == RV_OK);
    CHECK_INT(m.records_in, 300);
    CHECK_INT(m.state_restored, 0);
    CHECK_INT(check_output(b), 700);
    /* The state directory is lost: rebuilt from the changelogs. */
    rmrf(g_state);
    write_batch(b, 200);
    REQUIRE(run(b, 1, &m) == RV_OK);
    CHECK_INT(m.records_in, 200);
    CHECK(m.state_restored >= KEYS * 2); /* at least n and sum of every key */
    CHECK_INT(check_output(b), 900);
    /* Every input record replayed: the stores hold them all, nothing is counted again. */
    reset_offsets(b);
    REQUIRE(run(b, 1, &m) == RV_OK);
    CHECK_INT(m.records_in, 900);
    CHECK_INT(m.records_out, 0);
    CHECK_INT(check_output(b), 900);
    /* Two workers, and the state of one partition lost. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/counter/in/counts/1", g_state);
    rmrf(dir);
    write_batch(b, 250);
    REQUIRE(run(b, 2, &m) == RV_OK);
    /* A rebalance between the two workers may have its commit refused (Kafka): the new owner
     * reads those records again, and the store's processed offset makes them skip the count. */
    CHECK(m.records_in >= 250);
    CHECK(m.state_restored > 0);
    CHECK_INT(check_output(b), 1150);
    if (b->app) {
        rv_app_destroy(b->app);
        b->app = NULL;
    }
}

static void test_local(void) {
    char url[300];
    snprintf(url, sizeof url, "local:%s-log", g_state);
    broker_t b = {.url = url};
    scenario(&b);
    char dir[300];
    snprintf(dir, sizeof dir, "%s-log", g_state);
    rmrf(dir);
}

static void test_memory(void) {
    broker_t b = {.url = "memory:"};
    scenario(&b);
}

static void quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static void test_kafka(void) {
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, quiet);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    REQUIRE(rk != NULL);
    rd_kafka_mock_cluster_t *mock = rd_kafka_mock_cluster_new(rk, 1);
    REQUIRE(mock != NULL);
    char url[300];
    snprintf(url, sizeof url, "kafka://%s", rd_kafka_mock_cluster_bootstraps(mock));
    /* The mock serves no topic admin: the topics, the changelog too, are made here. */
    REQUIRE(rd_kafka_mock_topic_create(mock, "in", PARTS, 1) == 0);
    REQUIRE(rd_kafka_mock_topic_create(mock, "out", PARTS, 1) == 0);
    REQUIRE(rd_kafka_mock_topic_create(mock, "counter--changelog--in--counts", PARTS, 1) == 0);
    broker_t b = {.url = url, .kafka = true};
    scenario(&b);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(rk);
}

/* A large changelog restored by two workers that share the partitions: the second worker joins
 * while the first restores, so partitions are revoked in the middle of their restore and the
 * second continues from the changelog offset the first reached. Nothing is restored twice and
 * the counts are exact. */
#define BIG 20000
#define AGAIN 300

static int g_mid_restore;

static void on_log(void *opaque, rv_log_level_t level, const char *sub, const char *msg) {
    (void)opaque;
    (void)level;
    (void)sub;
    if (strstr(msg, "in the middle of its restore")) {
        __atomic_add_fetch(&g_mid_restore, 1, __ATOMIC_RELAXED);
    }
}

static void write_keys(rv_broker_t *br, int from, int n, int key0) {
    rv_producer_t *p = rv_producer_new(br, NULL, NULL);
    char key[16], val[64];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "u%d", key0 + i);
        snprintf(val, sizeof val, "{\"x\":%d}", from + i);
        rv_record_t r = {.topic = "in",
                         .partition = RV_PARTITION_ANY,
                         .key = key,
                         .key_len = strlen(key),
                         .value = val,
                         .value_len = strlen(val)};
        while (rv_producer_send(p, &r, NULL) == RV_ERR_AGAIN) {
            rv_producer_poll(p, 10);
        }
    }
    CHECK_INT(rv_producer_flush(p, -1, NULL), RV_OK);
    rv_producer_close(p);
}

static void test_revoke_restore(void) {
    rmrf(g_state);
    char url[300], logdir[300];
    snprintf(url, sizeof url, "local:%s-big", g_state);
    snprintf(logdir, sizeof logdir, "%s-big", g_state);
    rmrf(logdir);
    broker_t b = {.url = url};
    rv_broker_t *br = rv_broker_open(url, NULL, NULL);
    REQUIRE(br != NULL);
    CHECK_INT(rv_broker_create_topic(br, "in", PARTS, NULL, NULL), RV_OK);
    CHECK_INT(rv_broker_create_topic(br, "out", PARTS, NULL, NULL), RV_OK);
    write_keys(br, 0, BIG, 0);
    rv_app_metrics_t m;
    REQUIRE(run(&b, 1, &m) == RV_OK);
    /* 40000 buffered values pass state.buffer.max.bytes=1MiB several times: early checkpoints. */
    CHECK_MSG(m.checkpoints >= 3, "%lld checkpoints", (long long)m.checkpoints);
    int64_t changelog = 0;
    for (int p = 0; p < PARTS; p++) {
        int64_t lo, hi;
        CHECK_INT(rv_broker_watermarks(br, "counter--changelog--in--counts", p, &lo, &hi, NULL),
                  RV_OK);
        changelog += hi - lo;
    }
    CHECK(changelog >= 2 * BIG);
    rmrf(g_state);
    write_keys(br, BIG, AGAIN, 0);
    /* Two workers with a log callback that sees restores cut short by a revocation. */
    rv_conf_t *conf = base_conf(&b);
    rv_conf_set(conf, "app.threads", "2", NULL);
    rv_conf_set(conf, "log.level", "info", NULL);
    rv_app_opts_t ao = {.broker_url = url, .group = "counter", .conf = conf, .log_cb = on_log};
    rv_app_t *app = rv_app_new(&ao, NULL);
    rv_conf_destroy(conf);
    REQUIRE(app != NULL);
    rv_topic_opts_t to = {.key_serde = "string", .partitions = PARTS};
    rv_df_t *df = rv_app_dataframe(app, rv_app_topic(app, "in", &to, NULL));
    rv_df_to_topic(rv_df_apply_state(df, "counts", count, NULL),
                   rv_app_topic(app, "out", &to, NULL));
    rv_run_opts_t ro = {.until_end = true, .timeout_ms = 60000};
    CHECK_INT(rv_app_run(app, &ro, NULL), RV_OK);
    rv_app_metrics(app, &m);
    rv_app_destroy(app);
    CHECK_INT(m.records_in, AGAIN);
    CHECK_MSG(m.state_restored >= 2 * BIG && m.state_restored <= changelog,
              "restored %lld records of a %lld-record changelog", (long long)m.state_restored,
              (long long)changelog);
    fprintf(stderr, "  %d restore%s revoked in the middle\n", g_mid_restore,
            g_mid_restore == 1 ? "" : "s");
    /* The last output of every key written twice: n 2, sum of both values. */
    static int64_t last_n[AGAIN], last_sum[AGAIN];
    rv_consumer_t *c = rv_consumer_new(br, NULL, NULL);
    rv_topic_partition_t tps[PARTS];
    int64_t total = 0;
    for (int p = 0; p < PARTS; p++) {
        int64_t lo, hi;
        rv_broker_watermarks(br, "out", p, &lo, &hi, NULL);
        total += hi;
        tps[p] = (rv_topic_partition_t){"out", p, RV_OFFSET_BEGINNING};
    }
    CHECK_INT(total, BIG + AGAIN);
    CHECK_INT(rv_consumer_assign(c, tps, PARTS, NULL), RV_OK);
    rv_arena_t *a = rv_arena_new(0);
    int64_t seen = 0;
    for (int spins = 0; seen < total && spins < 600; spins++) {
        const rv_record_t *recs;
        size_t n = 0;
        if (rv_consumer_poll(c, &recs, 4096, &n, 100, NULL) != RV_OK) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            seen++;
            int k = atoi((const char *)recs[i].key + 1);
            rv_value_t *v = NULL;
            rv_arena_reset(a);
            if (k >= AGAIN ||
                rv_json_parse(a, recs[i].value, recs[i].value_len, NULL, &v, NULL, NULL) != RV_OK) {
                continue;
            }
            last_n[k] = rv_value_int(rv_value_get_cstr(v, "n"));
            last_sum[k] = rv_value_int(rv_value_get_cstr(v, "sum"));
        }
    }
    int bad = 0;
    for (int k = 0; k < AGAIN; k++) {
        bad += last_n[k] != 2 || last_sum[k] != (int64_t)k + BIG + k;
    }
    CHECK_INT(bad, 0);
    rv_arena_destroy(a);
    rv_consumer_close(c);
    rv_broker_close(br);
    rmrf(logdir);
}

/* State after group_by: records without a key are re-keyed by their "user" field through the
 * repartition topic, and the store follows the repartition topic's partitions. */
static void test_group_by(void) {
    rmrf(g_state);
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "state.dir", g_state, NULL);
    rv_conf_set(conf, "auto.offset.reset", "earliest", NULL);
    rv_app_opts_t ao = {.broker_url = "memory:", .group = "grouped", .conf = conf};
    rv_app_t *app = rv_app_new(&ao, NULL);
    rv_conf_destroy(conf);
    REQUIRE(app != NULL);
    rv_topic_opts_t to = {.partitions = PARTS};
    rv_topic_opts_t oo = {.key_serde = "json", .partitions = PARTS};
    rv_topic_t *in = rv_app_topic(app, "events", &to, NULL);
    rv_df_t *df = rv_app_dataframe(app, in);
    df = rv_df_group_by(df, "by-user", "user", NULL, NULL);
    df = rv_df_apply_state(df, "per-user", count, NULL);
    REQUIRE(rv_df_to_topic(df, rv_app_topic(app, "per-user-out", &oo, NULL)) != NULL);
    rv_broker_t *br = rv_app_broker(app);
    REQUIRE(rv_broker_create_topic(br, "events", PARTS, NULL, NULL) == RV_OK);
    rv_producer_t *p = rv_producer_new(br, NULL, NULL);
    int64_t n_ref[5] = {0}, sum_ref[5] = {0};
    for (int i = 0; i < 500; i++) {
        char val[64];
        int u = (i * 3) % 5;
        snprintf(val, sizeof val, "{\"user\":\"u%d\",\"x\":%d}", u, i);
        rv_record_t r = {
            .topic = "events", .partition = i % PARTS, .value = val, .value_len = strlen(val)};
        CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
        n_ref[u]++;
        sum_ref[u] += i;
    }
    CHECK_INT(rv_producer_flush(p, -1, NULL), RV_OK);
    rv_producer_close(p);
    rv_run_opts_t ro = {.until_end = true, .timeout_ms = 30000};
    rv_error_t *err = NULL;
    CHECK_INT(rv_app_run(app, &ro, &err), RV_OK);
    rv_error_destroy(err);
    rv_consumer_t *c = rv_consumer_new(br, NULL, NULL);
    rv_topic_partition_t tps[PARTS];
    for (int i = 0; i < PARTS; i++) {
        tps[i] = (rv_topic_partition_t){"per-user-out", i, RV_OFFSET_BEGINNING};
    }
    CHECK_INT(rv_consumer_assign(c, tps, PARTS, NULL), RV_OK);
    int64_t last_n[5] = {0}, last_sum[5] = {0}, seen = 0;
    rv_arena_t *a = rv_arena_new(0);
    for (int spins = 0; seen < 500 && spins < 100; spins++) {
        const rv_record_t *recs;
        size_t n = 0;
        if (rv_consumer_poll(c, &recs, 1024, &n, 50, NULL) != RV_OK) {
            break;
        }
        for (size_t i = 0; i < n; i++, seen++) {
            /* keys are JSON strings: "u3" */
            int u = recs[i].key_len == 4 ? ((const char *)recs[i].key)[2] - '0' : -1;
            rv_value_t *v = NULL;
            rv_arena_reset(a);
            if (u < 0 || u > 4 ||
                rv_json_parse(a, recs[i].value, recs[i].value_len, NULL, &v, NULL, NULL) != RV_OK) {
                CHECK_MSG(false, "bad output at offset %lld", (long long)recs[i].offset);
                continue;
            }
            last_n[u] = rv_value_int(rv_value_get_cstr(v, "n"));
            last_sum[u] = rv_value_int(rv_value_get_cstr(v, "sum"));
        }
    }
    CHECK_INT(seen, 500);
    for (int u = 0; u < 5; u++) {
        CHECK_MSG(last_n[u] == n_ref[u] && last_sum[u] == sum_ref[u],
                  "u%d: n %lld sum %lld, want %lld %lld", u, (long long)last_n[u],
                  (long long)last_sum[u], (long long)n_ref[u], (long long)sum_ref[u]);
    }
    /* The store follows the repartition topic. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/grouped/grouped--repartition--events--by-user/per-user", g_state);
    CHECK_MSG(access(dir, F_OK) == 0, "no %s", dir);
    rv_arena_destroy(a);
    rv_consumer_close(c);
    rv_app_destroy(app);
}

/* The other process: holds a RocksDB directory open until killed, after saying so on fd 1. */
static int hold_main(const char *dir) {
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    char *e = NULL;
    rocksdb_t *db = rocksdb_open(o, dir, &e);
    char c = db ? 'y' : 'n';
    if (write(1, &c, 1) != 1) {
        return 2;
    }
    pause();
    return 0;
}

/* rocksdb.* properties RocksDB does not know are refused when the application is made. */
static void test_rocksdb_options(void) {
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "rocksdb.no_such_option", "1", NULL);
    rv_app_opts_t ao = {.broker_url = "memory:", .group = "counter", .conf = conf};
    rv_error_t *err = NULL;
    rv_app_t *app = rv_app_new(&ao, &err);
    CHECK(app == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_CONFIG);
    CHECK_MSG(err && strstr(rv_error_message(err), "no_such_option"), "message: %s",
              rv_error_message(err));
    rv_error_destroy(err);
    rv_app_destroy(app);
    rv_conf_destroy(conf);
}

static void test_lock_busy(void) {
    rmrf(g_state);
    char dir[512], cmd[700];
    snprintf(dir, sizeof dir, "%s/counter/in/counts/0", g_state);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    REQUIRE(system(cmd) == 0);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    char *argv[] = {"test_state_app", "hold", dir, NULL};
    fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fds[1]);
    char c = 0;
    CHECK(read(fds[0], &c, 1) == 1 && c == 'y');
    close(fds[0]);
    char url[300];
    snprintf(url, sizeof url, "local:%s-log", g_state);
    broker_t b = {.url = url};
    rv_conf_t *conf = base_conf(&b);
    rv_conf_set(conf, "state.lock.timeout.ms", "700", NULL);
    rv_app_opts_t ao = {.broker_url = url, .group = "counter", .conf = conf};
    rv_app_t *app = rv_app_new(&ao, NULL);
    rv_conf_destroy(conf);
    REQUIRE(app != NULL);
    rv_topic_opts_t to = {.key_serde = "string", .partitions = PARTS};
    rv_df_t *df = rv_app_dataframe(app, rv_app_topic(app, "in", &to, NULL));
    rv_df_to_topic(rv_df_apply_state(df, "counts", count, NULL),
                   rv_app_topic(app, "out", &to, NULL));
    rv_run_opts_t ro = {.timeout_ms = 20000};
    rv_error_t *err = NULL;
    int64_t t0 = rv_clock_mono_ms();
    CHECK_INT(rv_app_run(app, &ro, &err), RV_ERR_BUSY);
    int64_t took = rv_clock_mono_ms() - t0;
    CHECK_MSG(took >= 650 && took < 10000, "took %lld ms", (long long)took);
    CHECK_MSG(err && strstr(rv_error_message(err), dir) &&
                  strstr(rv_error_message(err), "state.lock.timeout.ms=700"),
              "message: %s", rv_error_message(err));
    rv_error_destroy(err);
    rv_app_destroy(app);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s-log'", g_state);
    CHECK(system(cmd) == 0);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "hold") == 0) {
        return hold_main(argv[2]);
    }
    snprintf(g_state, sizeof g_state, "/tmp/rv-test-state-app-%d", (int)getpid());
    RV_RUN(test_rocksdb_options);
    RV_RUN(test_group_by);
    RV_RUN(test_lock_busy);
    RV_RUN(test_revoke_restore);
    RV_RUN(test_local);
    RV_RUN(test_memory);
    RV_RUN(test_kafka);
    rmrf(g_state);
    return rv_test_finish();
}
