/*
 * test_app_engine.c: the application runtime end to end: the same set of pipelines on memory:,
 * local:<tmpdir> (with one worker and with two) and kafka:// on a librdkafka mock cluster that
 * the test starts itself.
 *
 * Each pipeline writes its input records through the application's own broker handle (memory:
 * brokers are per handle), runs the application until every input partition is read to its end,
 * then reads the output topics back from the beginning and compares them, as sorted
 * "key<TAB>value" lines, with outputs the test computes itself in plain C: a stateless chain
 * (filter_field, set_field, drop, apply, expand, select), a branch to two topics, concat,
 * to_topic_fn, group_by through a repartition topic (its name, partition count and the key
 * placement checked), set_timestamp and set_headers after a timestamp extractor, a sink object
 * flushed at checkpoints, and the three error policies (stop: the error's message and the
 * committed offset; skip: the metrics; dead-letter: the original bytes and the error headers).
 * librdkafka's mock cluster cannot create topics through the admin API, so on kafka:// the test
 * creates every topic the application needs in the mock first (repartition and dead-letter
 * topics included); elsewhere the application creates its output topics itself. Every wait is
 * bounded. It must never depend on a server outside the process.
 */
/* ctest-labels: threads */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka_mock.h"
#include "kafka_tsan.h"
#include "rivulet/rivulet.h"
#include "rv_test.h"

/* ---- the broker under test ------------------------------------------------------------------ */

typedef struct env_s {
    const char *name;
    char url[600];
    int threads;
    bool kafka;
} env_t;

static env_t *E;
static int g_seq;
static km_cluster_t g_km; /* the mock cluster of the kafka:// runs */

/*
 * Properties every application gets on the mock (as in test_kafka_contract.c): its groups wait
 * a fixed 3 s before the first rebalance and drop a member waiting in a join longer than its
 * session, so a session just over 3 s; its fetches without data wait fetch.wait.max.ms even when
 * records arrive meanwhile, so wait less.
 */
static const char *const g_kafka_conf[] = {
    "kafka.session.timeout.ms=3100", "kafka.heartbeat.interval.ms=100",
    "kafka.fetch.wait.max.ms=100", "kafka.reconnect.backoff.max.ms=500", NULL};

static void on_log(void *opaque, rv_log_level_t level, const char *subsystem, const char *msg) {
    (void)opaque;
    if (getenv("RV_TEST_LOG") || level <= RV_LOG_ERROR) {
        fprintf(stderr, "  [%s %s] %s\n", rv_log_level_name(level), subsystem, msg);
    }
}

/* "<base>-<pid>-<n>" */
static const char *uniq(char *buf, size_t size, const char *base) {
    snprintf(buf, size, "%s-%ld-%d", base, (long)getpid(), ++g_seq);
    return buf;
}

/* An application on the broker under test with the test's defaults and `extra` properties. */
static rv_app_t *mk_app(const char *group, const char *const *extra) {
    rv_conf_t *conf = rv_conf_new();
    char threads[16];
    snprintf(threads, sizeof threads, "%d", E->threads);
    CHECK_INT(rv_conf_set(conf, "auto.offset.reset", "earliest", NULL), RV_OK);
    CHECK_INT(rv_conf_set(conf, "commit.interval.ms", "200", NULL), RV_OK);
    CHECK_INT(rv_conf_set(conf, "app.threads", threads, NULL), RV_OK);
    CHECK_INT(rv_conf_set(conf, "group.check.interval.ms", "50", NULL), RV_OK);
    if (getenv("RV_TEST_LOG")) {
        CHECK_INT(rv_conf_set(conf, "log.level", getenv("RV_TEST_LOG"), NULL), RV_OK);
    }
    if (E->kafka && getenv("RV_TEST_KAFKA_DEBUG")) {
        CHECK_INT(rv_conf_set(conf, "kafka.debug", getenv("RV_TEST_KAFKA_DEBUG"), NULL), RV_OK);
    }
    for (size_t i = 0; E->kafka && g_kafka_conf[i]; i++) {
        CHECK_INT(rv_conf_set_pair(conf, g_kafka_conf[i], NULL), RV_OK);
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        rv_error_t *err = NULL;
        CHECK_MSG(rv_conf_set_pair(conf, extra[i], &err) == RV_OK, "%s: %s", extra[i],
                  rv_error_message(err));
        rv_error_destroy(err);
    }
    rv_error_t *err = NULL;
    rv_app_opts_t opts = {.broker_url = E->url, .group = group, .conf = conf, .log_cb = on_log};
    rv_app_t *app = rv_app_new(&opts, &err);
    CHECK_MSG(app != NULL, "rv_app_new(%s): %s", E->url, rv_error_message(err));
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return app;
}

/* Creates a topic the test writes before the run (and, on kafka://, any topic at all). */
static bool mk_topic(rv_app_t *app, const char *name, int partitions) {
    if (E->kafka) {
        rd_kafka_resp_err_t re = rd_kafka_mock_topic_create(g_km.mock, name, partitions, 1);
        CHECK_MSG(re == RD_KAFKA_RESP_ERR_NO_ERROR, "mock topic %s: %s", name,
                  rd_kafka_err2str(re));
        return re == RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    rv_error_t *err = NULL;
    rv_err_t e = rv_broker_create_topic(rv_app_broker(app), name, partitions, NULL, &err);
    CHECK_MSG(e == RV_OK, "create %s: %s", name, rv_error_message(err));
    rv_error_destroy(err);
    return e == RV_OK;
}

/* An output topic: the application creates it, except on the mock, which cannot. */
static void out_topic(rv_app_t *app, const char *name, int partitions) {
    if (E->kafka) {
        mk_topic(app, name, partitions);
    }
}

static rv_topic_t *decl(rv_app_t *app, const char *name, const char *key_serde, int partitions) {
    rv_topic_opts_t o = {.key_serde = key_serde, .value_serde = "json", .partitions = partitions};
    rv_error_t *err = NULL;
    rv_topic_t *t = rv_app_topic(app, name, &o, &err);
    CHECK_MSG(t != NULL, "rv_app_topic(%s): %s", name, rv_error_message(err));
    rv_error_destroy(err);
    return t;
}

/* ---- producing and reading records ---------------------------------------------------------- */

typedef struct rec_s {
    char *key; /* NULL: none */
    char *value;
    size_t value_len;
    int32_t partition;
    int64_t offset;
    int64_t ts;
    char *headers; /* "name=value;" each */
} rec_t;

typedef struct recs_s {
    rec_t *v;
    size_t n;
    size_t cap;
} recs_t;

static char *dupn(const void *p, size_t n) {
    if (!p) {
        return NULL;
    }
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static void recs_free(recs_t *rs) {
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->v[i].key);
        free(rs->v[i].value);
        free(rs->v[i].headers);
    }
    free(rs->v);
    memset(rs, 0, sizeof *rs);
}

static void recs_add(recs_t *rs, const rv_record_t *r) {
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 64;
        rs->v = realloc(rs->v, rs->cap * sizeof *rs->v);
    }
    rec_t *o = &rs->v[rs->n++];
    memset(o, 0, sizeof *o);
    o->key = dupn(r->key, r->key_len);
    o->value = dupn(r->value, r->value_len);
    o->value_len = r->value_len;
    o->partition = r->partition;
    o->offset = r->offset;
    o->ts = r->timestamp_ms;
    size_t need = 1;
    for (size_t i = 0; i < r->header_count; i++) {
        need += strlen(r->headers[i].name) + r->headers[i].value_len + 2;
    }
    o->headers = calloc(1, need);
    for (size_t i = 0; i < r->header_count; i++) {
        strcat(o->headers, r->headers[i].name);
        strcat(o->headers, "=");
        strncat(o->headers, r->headers[i].value, r->headers[i].value_len);
        strcat(o->headers, ";");
    }
}

/* Sends one record (NULL key: none) to an explicit partition or by key. */
static void send1(rv_producer_t *p, const char *topic, int32_t partition, const char *key,
                  const char *value, int64_t ts, const rv_header_t *h, size_t nh) {
    rv_record_t r = {.topic = topic,
                     .partition = partition,
                     .timestamp_ms = ts,
                     .key = key,
                     .key_len = key ? strlen(key) : 0,
                     .value = value,
                     .value_len = value ? strlen(value) : 0,
                     .headers = h,
                     .header_count = nh};
    rv_err_t e = rv_producer_send(p, &r, NULL);
    CHECK_MSG(e == RV_OK, "send to %s: %s", topic, rv_err_name(e));
}

static rv_producer_t *producer(rv_app_t *app) {
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(rv_app_broker(app), NULL, &err);
    CHECK_MSG(p != NULL, "producer: %s", rv_error_message(err));
    rv_error_destroy(err);
    return p;
}

static void flush_close(rv_producer_t *p) {
    rv_error_t *err = NULL;
    CHECK_MSG(rv_producer_flush(p, 10000, &err) == RV_OK, "flush: %s", rv_error_message(err));
    rv_error_destroy(err);
    rv_producer_close(p);
}

/* Reads every partition of `topic` from the beginning to its high watermark (every offset is a
 * record: these topics are neither compacted nor transactional); `want` is what the caller
 * expects, only used to say so when the topic holds less. At most 10 s. */
static void read_topic(rv_app_t *app, const char *topic, size_t want, recs_t *rs) {
    int32_t parts = 0;
    rv_error_t *err = NULL;
    rv_broker_t *b = rv_app_broker(app);
    rv_err_t e = rv_broker_describe_topic(b, topic, &parts, NULL, &err);
    CHECK_MSG(e == RV_OK, "describe %s: %s", topic, rv_error_message(err));
    rv_consumer_t *c = e == RV_OK ? rv_consumer_new(b, NULL, &err) : NULL;
    if (!c) {
        rv_error_destroy(err);
        return;
    }
    rv_topic_partition_t tps[64];
    size_t total = 0;
    for (int32_t i = 0; i < parts && i < 64; i++) {
        int64_t lo = 0, hi = 0;
        CHECK_INT(rv_broker_watermarks(b, topic, i, &lo, &hi, NULL), RV_OK);
        total += (size_t)(hi - lo);
        tps[i] = (rv_topic_partition_t){topic, i, RV_OFFSET_BEGINNING};
    }
    CHECK_MSG(total >= want, "topic %s on %s holds %zu records, expected %zu", topic, E->name,
              total, want);
    CHECK_INT(rv_consumer_assign(c, tps, (size_t)parts, NULL), RV_OK);
    int64_t end = rv_clock_mono_ms() + 10000;
    while (rs->n < total && rv_clock_mono_ms() < end) {
        const rv_record_t *recs;
        size_t n = 0;
        if (rv_consumer_poll(c, &recs, 256, &n, 50, NULL) != RV_OK) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            recs_add(rs, &recs[i]);
        }
    }
    CHECK_MSG(rs->n == total, "read %zu of the %zu records of %s", rs->n, total, topic);
    rv_consumer_close(c);
    rv_error_destroy(err);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Compares the records' sorted "key<TAB>value" lines with the expected ones (any order). */
/*
 * Whether outputs may repeat: with several workers on the mock, a member that gives partitions
 * up in a rebalance cannot commit (librdkafka 2.0.2's mock answers REBALANCE_IN_PROGRESS to every
 * commit during a rebalance, where a real cluster accepts them from the current generation), so
 * the next owner processes the records since the last checkpoint again: at-least-once allows it.
 */
static bool dups_ok(void) {
    return E->kafka && E->threads > 1;
}

/* Compares the records' sorted "key<TAB>value" lines with the expected ones (any order); where
 * dups_ok(), a line may come more than once, but every expected line must come and no other. */
static void expect_lines(const char *what, const recs_t *rs, char **want, size_t nwant) {
    char **got = calloc(rs->n + 1, sizeof *got);
    for (size_t i = 0; i < rs->n; i++) {
        const rec_t *r = &rs->v[i];
        size_t len = (r->key ? strlen(r->key) : 6) + (r->value ? strlen(r->value) : 6) + 2;
        got[i] = malloc(len);
        snprintf(got[i], len, "%s\t%s", r->key ? r->key : "(none)", r->value ? r->value : "(null)");
    }
    qsort(got, rs->n, sizeof *got, cmp_str);
    qsort(want, nwant, sizeof *want, cmp_str);
    size_t n = rs->n, dups = 0;
    if (dups_ok()) { /* drop repeats, counting them */
        size_t k = 0;
        for (size_t i = 0; i < rs->n; i++) {
            if (k && strcmp(got[k - 1], got[i]) == 0) {
                free(got[i]);
                dups++;
            } else {
                got[k++] = got[i];
            }
        }
        n = k;
        if (dups) {
            fprintf(stderr, "  %s on %s: %zu records processed again after a rebalance\n", what,
                    E->name, dups);
        }
    }
    CHECK_MSG(n == nwant, "%s on %s: %zu records, expected %zu", what, E->name, n, nwant);
    for (size_t i = 0; i < n && i < nwant; i++) {
        if (strcmp(got[i], want[i]) != 0) {
            CHECK_MSG(false, "%s on %s: record %zu is \"%s\", expected \"%s\"", what, E->name, i,
                      got[i], want[i]);
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(got[i]);
    }
    free(got);
}

static char *line(const char *fmt, ...) RV_PRINTF(1, 2);
static char *line(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) {
        s = NULL;
    }
    va_end(ap);
    return s;
}

static void lines_free(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
}

/* Runs the application until its inputs are read to the end (at most 30 s). */
static rv_err_t run_to_end(rv_app_t *app, rv_error_t **err) {
    rv_run_opts_t ro = {.until_end = true, .timeout_ms = 30000};
    int64_t t0 = rv_clock_mono_ms();
    rv_err_t e = rv_app_run(app, &ro, err);
    int64_t ms = rv_clock_mono_ms() - t0;
    CHECK_MSG(ms < 29000, "the run on %s did not notice its end (%lld ms)", E->name, (long long)ms);
    return e;
}

static void run_ok(rv_app_t *app) {
    rv_error_t *err = NULL;
    rv_err_t e = run_to_end(app, &err);
    CHECK_MSG(e == RV_OK, "run on %s: %s", E->name, rv_error_message(err));
    rv_error_destroy(err);
}

/* ---- user functions ------------------------------------------------------------------------- */

static rv_value_t *times_ten(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)opaque;
    return rv_value_new_int(rv_ctx_arena(ctx), rv_value_int(rv_value_get_cstr(v, "n")) * 10);
}

/* apply, in place: n_tags = the length of "tags". */
static rv_value_t *count_tags(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)opaque;
    rv_arena_t *a = rv_ctx_arena(ctx);
    size_t n = rv_value_len(rv_value_get_cstr(v, "tags"));
    rv_value_set(a, v, "n_tags", 6, rv_value_new_int(a, (int64_t)n));
    return v;
}

/* expand: one record per tag: {"id", "tag", "v2", "n_tags", "extra"}. */
static rv_value_t *per_tag(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)opaque;
    rv_arena_t *a = rv_ctx_arena(ctx);
    const rv_value_t *tags = rv_value_get_cstr(v, "tags");
    rv_value_t *out = rv_value_new_array(a, rv_value_len(tags));
    for (size_t i = 0; i < rv_value_len(tags); i++) {
        rv_value_t *o = rv_value_new_object(a, 4);
        rv_value_set(a, o, "extra", 5, rv_value_new_bool(a, true));
        rv_value_set(a, o, "v2", 2, rv_value_get_cstr(v, "v2"));
        rv_value_set(a, o, "tag", 3, rv_value_at(tags, i));
        rv_value_set(a, o, "id", 2, rv_value_get_cstr(v, "n"));
        rv_value_set(a, o, "n_tags", 6, rv_value_get_cstr(v, "n_tags"));
        rv_value_append(a, out, o);
    }
    return out;
}

/* ---- the pipelines -------------------------------------------------------------------------- */

/*
 * A pipeline of the stateless set: setup() declares its topics, writes its input and builds its
 * dataframes on an application; check() reads its outputs back and compares them with what it
 * expects. On memory: and local: each pipeline has an application of its own (so its metrics
 * can be checked exactly); on kafka:// they share one, because the mock cluster makes every new
 * consumer group wait 3 s before its first rebalance.
 */
typedef struct pipe_s {
    const char *name;
    void (*setup)(rv_app_t *app, struct pipe_s *p);
    void (*check)(rv_app_t *app, struct pipe_s *p, bool alone);
    char t[4][240]; /* topic names */
    char *want[3][64];
    size_t nw[3];
} pipe_t;

static char g_group[64]; /* the group of the application being set up */

static void pipe_free(pipe_t *p) {
    for (int i = 0; i < 3; i++) {
        lines_free(p->want[i], p->nw[i]);
        p->nw[i] = 0;
    }
}

/* Reads topic t[ti] and compares it with want[wi]. */
static void pipe_expect(rv_app_t *app, pipe_t *p, int ti, int wi, const char *what) {
    recs_t rs = {0};
    read_topic(app, p->t[ti], p->nw[wi], &rs);
    expect_lines(what, &rs, p->want[wi], p->nw[wi]);
    recs_free(&rs);
}

#define N_CHAIN 30

static void chain_setup(rv_app_t *app, pipe_t *p) {
    uniq(p->t[0], sizeof p->t[0], "chain-in");
    uniq(p->t[1], sizeof p->t[1], "chain-out");
    mk_topic(app, p->t[0], 3);
    out_topic(app, p->t[1], 2);
    rv_producer_t *pr = producer(app);
    for (int i = 0; i < N_CHAIN; i++) {
        char k[16], v[256], tags[64] = "";
        snprintf(k, sizeof k, "k%d", i);
        for (int j = 0; j <= i % 3; j++) {
            char t[16];
            snprintf(t, sizeof t, "%s\"t%d\"", j ? "," : "", j);
            strcat(tags, t);
        }
        snprintf(v, sizeof v, "{\"n\":%d,\"kind\":\"%s\",\"tags\":[%s],\"junk\":{\"x\":1}}", i,
                 i % 2 == 0 ? "a" : "b", tags);
        send1(pr, p->t[0], RV_PARTITION_ANY, k, v, 0, NULL, 0);
        if (i % 2 == 0) { /* kind a */
            for (int j = 0; j <= i % 3; j++) {
                p->want[0][p->nw[0]++] =
                    line("k%d\t{\"id\":%d,\"tag\":\"t%d\",\"v2\":%d}", i, i, j, i * 10);
            }
        }
    }
    flush_close(pr);
    rv_arena_t *a = rv_arena_new(0);
    const char *drop[] = {"junk"};
    const char *sel[] = {"id", "tag", "v2", "not-there"};
    rv_df_t *df = rv_app_dataframe(app, decl(app, p->t[0], "string", 0));
    df = rv_df_filter_field(df, "kind", RV_CMP_EQ, rv_value_new_string(a, "a", 1));
    df = rv_df_set_field(df, "v2", times_ten, NULL);
    df = rv_df_drop(df, drop, 1);
    df = rv_df_apply(df, count_tags, NULL);
    df = rv_df_expand(df, per_tag, NULL);
    df = rv_df_select(df, sel, 4);
    df = rv_df_to_topic(df, decl(app, p->t[1], "string", 2));
    rv_arena_destroy(a);
    CHECK(df != NULL);
}

static void chain_check(rv_app_t *app, pipe_t *p, bool alone) {
    pipe_expect(app, p, 1, 0, "stateless chain");
    if (alone) {
        rv_app_metrics_t m;
        rv_app_metrics(app, &m);
        CHECK_INT(m.records_in, N_CHAIN);
        CHECK_INT(m.records_filtered, N_CHAIN / 2);
        CHECK_INT(m.records_out, (int64_t)p->nw[0]);
        CHECK_INT(m.errors, 0);
        CHECK(m.checkpoints >= 1);
        CHECK_INT(m.lag, 0);
    }
    if (!E->kafka) { /* the application created its output with the partitions declared */
        int32_t parts = 0;
        CHECK_INT(rv_broker_describe_topic(rv_app_broker(app), p->t[1], &parts, NULL, NULL), RV_OK);
        CHECK_INT(parts, 2);
    }
}

static void branch_setup(rv_app_t *app, pipe_t *p) {
    uniq(p->t[0], sizeof p->t[0], "branch-in");
    uniq(p->t[1], sizeof p->t[1], "branch-a");
    uniq(p->t[2], sizeof p->t[2], "branch-b");
    mk_topic(app, p->t[0], 2);
    out_topic(app, p->t[1], 1);
    out_topic(app, p->t[2], 1);
    rv_producer_t *pr = producer(app);
    for (int i = 0; i < 12; i++) {
        char k[16], v[64];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "{\"n\":%d}", i);
        send1(pr, p->t[0], RV_PARTITION_ANY, k, v, 0, NULL, 0);
        if (i < 5) {
            p->want[0][p->nw[0]++] = line("k%d\t{\"n\":%d,\"branch\":\"a\"}", i, i);
        }
        p->want[1][p->nw[1]++] = line("k%d\t{\"n\":%d}", i, i); /* untouched by branch a */
    }
    flush_close(pr);
    rv_arena_t *a = rv_arena_new(0);
    rv_df_t *df = rv_app_dataframe(app, decl(app, p->t[0], "string", 0));
    rv_df_t *da = rv_df_set_field_const(df, "branch", rv_value_new_string(a, "a", 1));
    da = rv_df_filter_field(da, "n", RV_CMP_LT, rv_value_new_double(a, 4.5));
    da = rv_df_to_topic(da, decl(app, p->t[1], "string", 1));
    rv_df_t *db = rv_df_to_topic(df, decl(app, p->t[2], "string", 1));
    rv_arena_destroy(a);
    CHECK(da && db);
}

static void branch_check(rv_app_t *app, pipe_t *p, bool alone) {
    (void)alone;
    pipe_expect(app, p, 1, 0, "branch a");
    pipe_expect(app, p, 2, 1, "branch b");
}

static void concat_setup(rv_app_t *app, pipe_t *p) {
    uniq(p->t[0], sizeof p->t[0], "concat-one");
    uniq(p->t[1], sizeof p->t[1], "concat-two");
    uniq(p->t[2], sizeof p->t[2], "concat-out");
    mk_topic(app, p->t[0], 1);
    mk_topic(app, p->t[1], 2);
    out_topic(app, p->t[2], 1);
    rv_producer_t *pr = producer(app);
    for (int i = 0; i < 10; i++) {
        char k[16], v[64];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "{\"n\":%d}", i);
        send1(pr, p->t[i % 2], RV_PARTITION_ANY, k, v, 0, NULL, 0);
        p->want[0][p->nw[0]++] =
            line("k%d\t{\"n\":%d,\"src\":\"%s\",\"v2\":%d}", i, i, i % 2 ? "two" : "one", i * 10);
    }
    flush_close(pr);
    rv_arena_t *a = rv_arena_new(0);
    rv_df_t *d1 = rv_df_set_field_const(rv_app_dataframe(app, decl(app, p->t[0], "string", 0)),
                                        "src", rv_value_new_string(a, "one", 3));
    rv_df_t *d2 = rv_df_set_field_const(rv_app_dataframe(app, decl(app, p->t[1], "string", 0)),
                                        "src", rv_value_new_string(a, "two", 3));
    rv_df_t *both[] = {d1, d2};
    rv_df_t *df = rv_df_set_field(rv_df_concat(both, 2), "v2", times_ten, NULL);
    df = rv_df_to_topic(df, decl(app, p->t[2], "string", 1));
    rv_arena_destroy(a);
    CHECK(df != NULL);
}

static void concat_check(rv_app_t *app, pipe_t *p, bool alone) {
    (void)alone;
    pipe_expect(app, p, 2, 0, "concat");
}

/* to_topic_fn: "<prefix>-<kind>" */
static rv_value_t *route(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    char name[200];
    snprintf(name, sizeof name, "%s-%s", (const char *)opaque,
             rv_value_str(rv_value_get_cstr(v, "kind"), NULL));
    return rv_value_new_string(rv_ctx_arena(ctx), name, strlen(name));
}

static void route_setup(rv_app_t *app, pipe_t *p) {
    uniq(p->t[0], sizeof p->t[0], "route-in");
    uniq(p->t[1], sizeof p->t[1], "route-out");
    snprintf(p->t[2], sizeof p->t[2], "%.64s-a", p->t[1]);
    snprintf(p->t[3], sizeof p->t[3], "%.64s-b", p->t[1]);
    mk_topic(app, p->t[0], 2);
    out_topic(app, p->t[2], 3);
    out_topic(app, p->t[3], 3);
    rv_producer_t *pr = producer(app);
    for (int i = 0; i < 14; i++) {
        char k[16], v[64];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "{\"n\":%d,\"kind\":\"%s\"}", i, i % 3 ? "a" : "b");
        send1(pr, p->t[0], RV_PARTITION_ANY, k, v, 0, NULL, 0);
        int w = i % 3 ? 0 : 1;
        p->want[w][p->nw[w]++] = line("k%d\t%s", i, v);
    }
    flush_close(pr);
    rv_topic_opts_t o = {.key_serde = "string", .partitions = 3};
    rv_df_t *df = rv_df_to_topic_fn(rv_app_dataframe(app, decl(app, p->t[0], "string", 0)), route,
                                    p->t[1], &o);
    CHECK(df != NULL);
}

static void route_check(rv_app_t *app, pipe_t *p, bool alone) {
    (void)alone;
    pipe_expect(app, p, 2, 0, "to_topic_fn a");
    pipe_expect(app, p, 3, 1, "to_topic_fn b");
    if (!E->kafka) {
        int32_t parts = 0;
        CHECK_INT(rv_broker_describe_topic(rv_app_broker(app), p->t[2], &parts, NULL, NULL), RV_OK);
        CHECK_INT(parts, 3);
    }
}

/* After group_by: the record's key is the user, as a string, copied into the value. */
static rv_err_t key_into_value(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)opaque;
    const rv_value_t *k = rv_ctx_key(ctx);
    if (rv_value_type(k) != RV_TYPE_STRING) {
        rv_ctx_fail(ctx, "the key is %s", rv_type_name(rv_value_type(k)));
        return RV_ERR_USER;
    }
    return rv_value_set(rv_ctx_arena(ctx), v, "key_seen", 8, rv_value_copy(rv_ctx_arena(ctx), k));
}

static void group_setup(rv_app_t *app, pipe_t *p) {
    uniq(p->t[0], sizeof p->t[0], "grp-in");
    uniq(p->t[1], sizeof p->t[1], "grp-out");
    snprintf(p->t[2], sizeof p->t[2], "%.64s--repartition--%.64s--by-user", g_group, p->t[0]);
    mk_topic(app, p->t[0], 3);
    out_topic(app, p->t[2], 3);
    out_topic(app, p->t[1], 2);
    rv_producer_t *pr = producer(app);
    for (int i = 0; i < 24; i++) {
        char k[16], v[64];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "{\"user\":\"u%d\",\"amount\":%d}", i % 4, i);
        send1(pr, p->t[0], RV_PARTITION_ANY, k, v, 0, NULL, 0);
        p->want[0][p->nw[0]++] = line("u%d\t{\"user\":\"u%d\",\"amount\":%d,\"key_seen\":\"u%d\"}",
                                      i % 4, i % 4, i, i % 4);
    }
    flush_close(pr);
    rv_df_t *df = rv_app_dataframe(app, decl(app, p->t[0], "string", 0));
    df = rv_df_group_by(df, "by-user", "user", NULL, NULL);
    df = rv_df_update(df, key_into_value, NULL);
    df = rv_df_to_topic(df, decl(app, p->t[1], "string", 2));
    CHECK(df != NULL);
}

static void group_check(rv_app_t *app, pipe_t *p, bool alone) {
    (void)alone;
    pipe_expect(app, p, 1, 0, "group_by");
    /* The repartition topic: named after the group and the source, the source's partitions,
     * every record on the partition of its new (JSON) key. */
    int32_t parts = 0;
    CHECK_INT(rv_broker_describe_topic(rv_app_broker(app), p->t[2], &parts, NULL, NULL), RV_OK);
    CHECK_INT(parts, 3);
    recs_t rr = {0};
    read_topic(app, p->t[2], 24, &rr);
    CHECK(rr.n == 24 || (dups_ok() && rr.n > 24));
    for (size_t i = 0; i < rr.n; i++) {
        const rec_t *r = &rr.v[i];
        if (!r->key) {
            CHECK_MSG(false, "a repartitioned record without key");
            break;
        }
        CHECK_MSG(strlen(r->key) == 4 && r->key[0] == '"' && r->key[1] == 'u', "repartition key %s",
                  r->key);
        CHECK_INT(r->partition, rv_murmur2_partition(r->key, strlen(r->key), 3));
    }
    recs_free(&rr);
}

static int64_t ts_from_value(void *opaque, const rv_value_t *key, const rv_value_t *value,
                             int64_t record_ts) {
    (void)opaque;
    (void)key;
    const rv_value_t *t = rv_value_get_cstr(value, "at");
    return t ? rv_value_int(t) : record_ts;
}

static rv_value_t *ts_plus(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)v;
    return rv_value_new_int(rv_ctx_arena(ctx), rv_ctx_timestamp(ctx) + *(int *)opaque);
}

static rv_value_t *make_headers(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)opaque;
    rv_arena_t *a = rv_ctx_arena(ctx);
    char s[32];
    size_t n;
    const rv_header_t *h = rv_ctx_headers(ctx, &n);
    snprintf(s, sizeof s, "x%lld/%zu%s", (long long)rv_value_int(rv_value_get_cstr(v, "n")), n,
             n ? (const char *)h[0].name : "");
    rv_value_t *o = rv_value_new_object(a, 2);
    rv_value_set(a, o, "h1", 2, rv_value_new_string(a, s, strlen(s)));
    rv_value_set(a, o, "bin", 3, rv_value_new_bytes(a, "\0\1", 2));
    return o;
}

static void tsh_setup(rv_app_t *app, pipe_t *p) {
    uniq(p->t[0], sizeof p->t[0], "tsh-in");
    uniq(p->t[1], sizeof p->t[1], "tsh-out");
    mk_topic(app, p->t[0], 1);
    out_topic(app, p->t[1], 1);
    rv_producer_t *pr = producer(app);
    rv_header_t orig = {"orig", "yes", 3};
    for (int i = 0; i < 8; i++) {
        char v[64];
        snprintf(v, sizeof v, "{\"n\":%d,\"at\":%lld}", i, 1700000000000LL + i * 1000);
        send1(pr, p->t[0], 0, NULL, v, 1600000000000LL, &orig, 1);
    }
    flush_close(pr);
    static int plus = 7;
    rv_topic_opts_t o = {.timestamp_fn = ts_from_value};
    rv_error_t *err = NULL;
    rv_topic_t *tin = rv_app_topic(app, p->t[0], &o, &err);
    CHECK(tin != NULL);
    rv_error_destroy(err);
    rv_df_t *df = rv_app_dataframe(app, tin);
    df = rv_df_set_timestamp(df, ts_plus, &plus);
    df = rv_df_set_headers(df, make_headers, NULL);
    df = rv_df_to_topic(df, decl(app, p->t[1], NULL, 1));
    CHECK(df != NULL);
}

static void tsh_check(rv_app_t *app, pipe_t *p, bool alone) {
    (void)alone;
    recs_t rs = {0};
    read_topic(app, p->t[1], 8, &rs);
    CHECK(rs.n == 8 || (dups_ok() && rs.n > 8));
    for (size_t i = 0; i < rs.n; i++) {
        const rec_t *r = &rs.v[i];
        int n = -1;
        CHECK(sscanf(r->value, "{\"n\":%d", &n) == 1);
        CHECK_INT(r->ts, 1700000000000LL + n * 1000 + 7);
        char want[64];
        snprintf(want, sizeof want, "h1=x%d/1orig;bin=", n);
        CHECK_MSG(strncmp(r->headers, want, strlen(want)) == 0, "headers %s, expected %s...",
                  r->headers, want);
        CHECK(r->key == NULL);
    }
    recs_free(&rs);
}

static pipe_t g_pipes[] = {
    {.name = "test_stateless_chain", .setup = chain_setup, .check = chain_check},
    {.name = "test_branch", .setup = branch_setup, .check = branch_check},
    {.name = "test_concat", .setup = concat_setup, .check = concat_check},
    {.name = "test_to_topic_fn", .setup = route_setup, .check = route_check},
    {.name = "test_group_by", .setup = group_setup, .check = group_check},
    {.name = "test_timestamps_headers", .setup = tsh_setup, .check = tsh_check},
};

/* Runs the application twice: the second run must find nothing new to do (the first committed
 * everything it processed). */
static void run_twice(rv_app_t *app) {
    run_ok(app);
    rv_app_metrics_t m1, m2;
    rv_app_metrics(app, &m1);
    run_ok(app);
    rv_app_metrics(app, &m2);
    CHECK_INT(m2.records_in, m1.records_in);
    CHECK_INT(m2.records_out, m1.records_out);
}

/* The stateless set: one application per pipeline, or one for all (`shared`). */
static void run_pipes(bool shared) {
    size_t n = sizeof g_pipes / sizeof g_pipes[0];
    rv_app_t *app = NULL;
    if (shared) {
        uniq(g_group, sizeof g_group, "pipes");
        app = mk_app(g_group, NULL);
        if (!app) {
            return;
        }
        for (size_t i = 0; i < n; i++) {
            g_pipes[i].setup(app, &g_pipes[i]);
        }
        run_twice(app);
    }
    for (size_t i = 0; i < n; i++) {
        pipe_t *p = &g_pipes[i];
        int before = rv_test_failures;
        rv_test_current = p->name;
        if (!shared) {
            uniq(g_group, sizeof g_group, p->name + 5);
            app = mk_app(g_group, NULL);
            if (!app) {
                continue;
            }
            p->setup(app, p);
            run_twice(app);
        }
        p->check(app, p, !shared);
        pipe_free(p);
        if (!shared) {
            rv_app_destroy(app);
        }
        fprintf(stderr, "%-4s %s%s\n", rv_test_failures == before ? "ok" : "FAIL", p->name,
                shared ? " (one application for the set)" : "");
    }
    if (shared) {
        rv_app_destroy(app);
    }
}

/* A sink object that makes what it was given durable only when flushed. */
typedef struct test_sink_s {
    int written, durable, flushes, closes;
    int64_t last_offset;
} test_sink_t;

static rv_err_t sink_write(void *s, rv_ctx_t *ctx, const rv_value_t *v) {
    test_sink_t *ts = s;
    (void)v;
    ts->written++;
    ts->last_offset = rv_ctx_offset(ctx);
    return RV_OK;
}

static rv_err_t sink_flush(void *s, rv_error_t **err) {
    test_sink_t *ts = s;
    (void)err;
    ts->durable = ts->written;
    ts->flushes++;
    return RV_OK;
}

static void sink_close(void *s) {
    ((test_sink_t *)s)->closes++;
}

static const rv_sink_ops_t test_sink_ops = {
    .version = 1, .write = sink_write, .flush = sink_flush, .close = sink_close};

static void test_sink_checkpoints(void) {
    char g[64], in[64];
    uniq(g, sizeof g, "sink");
    uniq(in, sizeof in, "sink-in");
    const char *extra[] = {"commit.every=7", "commit.interval.ms=60000", NULL};
    rv_app_t *app = mk_app(g, extra);
    REQUIRE(app);
    REQUIRE(mk_topic(app, in, 1));
    rv_producer_t *p = producer(app);
    for (int i = 0; i < 30; i++) {
        send1(p, in, 0, NULL, "{}", 0, NULL, 0);
    }
    flush_close(p);
    test_sink_t s = {0};
    rv_df_t *df = rv_df_sink_obj(rv_app_dataframe(app, decl(app, in, NULL, 0)), &test_sink_ops, &s);
    REQUIRE(df);
    run_ok(app);
    rv_app_metrics_t m;
    rv_app_metrics(app, &m);
    CHECK_INT(s.written, 30);
    CHECK_INT(s.durable, 30);
    CHECK_MSG(s.flushes >= 30 / 7, "%d flushes", s.flushes);
    CHECK_INT(m.records_sunk, 30);
    CHECK(m.checkpoints >= 30 / 7);
    CHECK(m.checkpoint_max_us >= m.checkpoint_last_us);
    CHECK_INT(s.closes, 0);
    rv_app_destroy(app);
    CHECK_INT(s.closes, 1);
}

/* ---- error policies ------------------------------------------------------------------------- */

static rv_value_t *refuse(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)opaque;
    if (rv_value_bool(rv_value_get_cstr(v, "fail"))) {
        rv_ctx_fail(ctx, "record %lld refused", (long long)rv_value_int(rv_value_get_cstr(v, "n")));
        return NULL;
    }
    return v;
}

/* Ten records on one partition; offset 3 is not JSON, offset 6 fails the user function. */
static void policy_input(rv_app_t *app, const char *in) {
    rv_producer_t *p = producer(app);
    rv_header_t orig = {"orig", "yes", 3};
    for (int i = 0; i < 10; i++) {
        char k[16], v[64];
        snprintf(k, sizeof k, "k%d", i);
        if (i == 3) {
            snprintf(v, sizeof v, "{not json");
        } else {
            snprintf(v, sizeof v, "{\"n\":%d,\"fail\":%s}", i, i == 6 ? "true" : "false");
        }
        send1(p, in, 0, k, v, 0, &orig, 1);
    }
    flush_close(p);
}

static rv_app_t *policy_app(const char *g, const char *in, const char *out, const char *policy) {
    char pol[64];
    snprintf(pol, sizeof pol, "processing.error.policy=%s", policy);
    const char *extra[] = {pol, NULL};
    rv_app_t *app = mk_app(g, extra);
    if (!app) {
        return NULL;
    }
    mk_topic(app, in, 1);
    out_topic(app, out, 1);
    policy_input(app, in);
    rv_df_t *df = rv_df_apply(rv_app_dataframe(app, decl(app, in, "string", 0)), refuse, NULL);
    df = rv_df_to_topic(df, decl(app, out, "string", 1));
    CHECK(df != NULL);
    return app;
}

static int64_t committed_of(rv_app_t *app, const char *group, const char *topic) {
    rv_consumer_opts_t co = {.group = group};
    rv_consumer_t *c = rv_consumer_new(rv_app_broker(app), &co, NULL);
    rv_topic_partition_t tp = {topic, 0, RV_OFFSET_INVALID};
    if (c) {
        CHECK_INT(rv_consumer_committed(c, &tp, 1, NULL), RV_OK);
    }
    rv_consumer_close(c);
    return tp.offset;
}

static void test_policy_stop(void) {
    char g[64], in[64], out[64];
    uniq(g, sizeof g, "stop");
    uniq(in, sizeof in, "stop-in");
    uniq(out, sizeof out, "stop-out");
    rv_app_t *app = policy_app(g, in, out, "stop");
    REQUIRE(app);
    rv_error_t *err = NULL;
    rv_err_t e = run_to_end(app, &err);
    CHECK_INT(e, RV_ERR_PARSE);
    const char *msg = rv_error_message(err);
    char where[160];
    snprintf(where, sizeof where, "topic '%s' partition 0 offset 3 key 'k3': ", in);
    CHECK_MSG(strstr(msg, where) != NULL, "message \"%s\" lacks \"%s\"", msg, where);
    CHECK_MSG(strstr(msg, "json serialiser") != NULL, "message: %s", msg);
    /* The records before it were processed and committed; it was not. */
    CHECK_INT(committed_of(app, g, in), 3);
    recs_t rs = {0};
    read_topic(app, out, 3, &rs);
    CHECK_INT(rs.n, 3);
    recs_free(&rs);
    rv_app_metrics_t m;
    rv_app_metrics(app, &m);
    CHECK_INT(m.errors, 1);
    CHECK_INT(m.records_in, 3);
    /* A second run meets the same record again: nothing is skipped. (Not repeated on the mock,
     * where every run of a group costs seconds of rebalance delay.) */
    if (!E->kafka) {
        e = run_to_end(app, &err);
        CHECK_INT(e, RV_ERR_PARSE);
        CHECK(strstr(rv_error_message(err), where) != NULL);
    }
    rv_error_destroy(err);
    rv_app_destroy(app);

    /* A failing user function: its reason and the operator are in the message. */
    uniq(g, sizeof g, "stop-fn");
    uniq(in, sizeof in, "stop-fn-in");
    uniq(out, sizeof out, "stop-fn-out");
    char pol[] = "processing.error.policy=stop";
    const char *extra[] = {pol, NULL};
    app = mk_app(g, extra);
    REQUIRE(app);
    mk_topic(app, in, 1);
    out_topic(app, out, 1);
    rv_producer_t *p = producer(app);
    for (int i = 0; i < 5; i++) {
        char v[64];
        snprintf(v, sizeof v, "{\"n\":%d,\"fail\":%s}", i, i == 2 ? "true" : "false");
        send1(p, in, 0, "key-x", v, 0, NULL, 0);
    }
    flush_close(p);
    rv_df_t *df = rv_df_apply(rv_app_dataframe(app, decl(app, in, NULL, 0)), refuse, NULL);
    REQUIRE(rv_df_to_topic(df, decl(app, out, NULL, 1)));
    err = NULL;
    e = run_to_end(app, &err);
    CHECK_INT(e, RV_ERR_USER);
    msg = rv_error_message(err);
    snprintf(where, sizeof where,
             "topic '%s' partition 0 offset 2 key 'key-x': operator #2 "
             "apply: record 2 refused",
             in);
    CHECK_MSG(strstr(msg, where) != NULL, "message \"%s\" lacks \"%s\"", msg, where);
    CHECK_INT(committed_of(app, g, in), 2);
    rv_error_destroy(err);
    rv_app_destroy(app);
}

static void test_policy_skip(void) {
    char g[64], in[64], out[64];
    uniq(g, sizeof g, "skip");
    uniq(in, sizeof in, "skip-in");
    uniq(out, sizeof out, "skip-out");
    rv_app_t *app = policy_app(g, in, out, "skip");
    REQUIRE(app);
    run_ok(app);
    recs_t rs = {0};
    read_topic(app, out, 8, &rs);
    CHECK_INT(rs.n, 8);
    for (size_t i = 0; i < rs.n; i++) {
        CHECK(strcmp(rs.v[i].key, "k3") != 0 && strcmp(rs.v[i].key, "k6") != 0);
    }
    rv_app_metrics_t m;
    rv_app_metrics(app, &m);
    CHECK_INT(m.records_in, 10);
    CHECK_INT(m.errors, 2);
    CHECK_INT(m.skipped, 2);
    CHECK_INT(m.dead_lettered, 0);
    CHECK_INT(m.records_out, 8);
    CHECK_INT(committed_of(app, g, in), 10);
    recs_free(&rs);
    rv_app_destroy(app);
}

static void test_policy_dead_letter(void) {
    char g[64], in[64], out[64], dl[128];
    uniq(g, sizeof g, "dlq");
    uniq(in, sizeof in, "dlq-in");
    uniq(out, sizeof out, "dlq-out");
    snprintf(dl, sizeof dl, "%s--dead-letter", g);
    if (E->kafka) {
        rd_kafka_mock_topic_create(g_km.mock, dl, 1, 1);
    }
    rv_app_t *app = policy_app(g, in, out, "dead-letter");
    REQUIRE(app);
    run_ok(app);
    recs_t rs = {0}, rd = {0};
    read_topic(app, out, 8, &rs);
    CHECK_INT(rs.n, 8);
    read_topic(app, dl, 2, &rd);
    CHECK_INT(rd.n, 2);
    for (size_t i = 0; i < rd.n; i++) {
        const rec_t *r = &rd.v[i];
        bool parse = strcmp(r->key, "k3") == 0;
        CHECK(parse || strcmp(r->key, "k6") == 0);
        if (parse) {
            CHECK_STR(r->value, "{not json"); /* the original bytes */
        } else {
            CHECK_STR(r->value, "{\"n\":6,\"fail\":true}");
        }
        char want[512];
        snprintf(want, sizeof want,
                 "orig=yes;rv.error.message=topic '%s' partition 0 offset %d key 'k%d': ", in,
                 parse ? 3 : 6, parse ? 3 : 6);
        CHECK_MSG(strncmp(r->headers, want, strlen(want)) == 0, "headers %s, expected %s...",
                  r->headers, want);
        snprintf(want, sizeof want,
                 ";rv.error.code=%s;rv.source.topic=%s;"
                 "rv.source.partition=0;rv.source.offset=%d;",
                 parse ? "PARSE" : "USER", in, parse ? 3 : 6);
        CHECK_MSG(strstr(r->headers, want) != NULL, "headers %s lack %s", r->headers, want);
        CHECK(parse || strstr(r->headers, "operator #2 apply: record 6 refused") != NULL);
    }
    rv_app_metrics_t m;
    rv_app_metrics(app, &m);
    CHECK_INT(m.errors, 2);
    CHECK_INT(m.dead_lettered, 2);
    CHECK_INT(m.skipped, 0);
    CHECK_INT(m.records_out, 10);
    recs_free(&rs);
    recs_free(&rd);
    rv_app_destroy(app);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void run_all(env_t *env) {
    const char *only = getenv("RV_TEST_ONLY"); /* a part of the environment's name */
    if (only && !strstr(env->name, only)) {
        return;
    }
    E = env;
    fprintf(stderr, "== %s (%s, %d worker%s)\n", env->name, env->url, env->threads,
            env->threads == 1 ? "" : "s");
    int64_t t0 = rv_clock_mono_ms();
    run_pipes(env->kafka);
    if (env->kafka && env->threads > 1) {
        /* Two workers on the mock: the stateless set is enough; each group costs seconds. */
        fprintf(stderr, "== %s: %lld ms\n", env->name, (long long)(rv_clock_mono_ms() - t0));
        return;
    }
    RV_RUN(test_sink_checkpoints);
    RV_RUN(test_policy_stop);
    RV_RUN(test_policy_skip);
    RV_RUN(test_policy_dead_letter);
    fprintf(stderr, "== %s: %lld ms\n", env->name, (long long)(rv_clock_mono_ms() - t0));
}

int main(void) {
    char dir[] = "/tmp/rv-app-engine-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    env_t mem = {.name = "memory", .url = "memory:", .threads = 1};
    env_t mem2 = {.name = "memory, 2 workers", .url = "memory:", .threads = 2};
    env_t loc = {.name = "local", .threads = 1};
    env_t loc2 = {.name = "local, 2 workers", .threads = 2};
    snprintf(loc.url, sizeof loc.url, "local:%s/one", dir);
    snprintf(loc2.url, sizeof loc2.url, "local:%s/two", dir);
    run_all(&mem);
    run_all(&mem2);
    run_all(&loc);
    run_all(&loc2);

    rv_error_t *err = NULL;
    rv_broker_t *probe = rv_broker_open("kafka://127.0.0.1:9", NULL, &err);
    if (!probe && rv_error_code(err) == RV_ERR_UNSUPPORTED) {
        fprintf(stderr, "skip kafka://: this library has no Kafka broker (%s)\n",
                rv_error_message(err));
    } else if (km_start(&g_km, 3)) {
        env_t kaf = {.name = "kafka", .threads = 1, .kafka = true};
        snprintf(kaf.url, sizeof kaf.url, "%s", g_km.url);
        run_all(&kaf);
        env_t kaf2 = kaf;
        kaf2.name = "kafka, 2 workers";
        kaf2.threads = 2;
        run_all(&kaf2);
    } else {
        CHECK_MSG(false, "cannot start the mock cluster");
    }
    rv_broker_close(probe);
    rv_error_destroy(err);
    km_stop(&g_km);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    return rv_test_finish();
}
