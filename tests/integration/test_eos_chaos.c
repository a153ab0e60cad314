/*
 * test_eos_chaos.c: processing guarantees of a stateful windowed application under SIGKILL, on
 * local: and on kafka:// (a librdkafka mock cluster this test starts on loopback), and the
 * rollback of state when a transaction aborts.
 *
 * The parent writes N records of six keys to a 3-partition topic (event time moving forward
 * with a little disorder, always within the grace period), plus a record per partition far in
 * the future that closes every window, and computes with plain loops each (key, window)'s count
 * and sum. It then starts this program again (fork and exec of /proc/self/exe) as the
 * application: a slow apply, a 100 ms tumbling window (count and sum, emitted once when final)
 * into an output topic, checkpointing often. It SIGKILLs the child a random moment after it
 * made progress, a few times, then lets a last run read the input to its end, and reads the
 * output back (read committed):
 *
 *   - exactly-once: every (key, window) appears exactly once, with the reference figures;
 *   - at-least-once: every (key, window) appears at least once, with the reference figures
 *     (a window that lost or double-counted records across a crash would show a wrong figure).
 *
 * On local: both guarantees run, each with its own group and output topic.
 *
 * On kafka://, librdkafka 2.0.2's mock cluster is first probed: it accepts transactions, but it
 * keeps the records of an aborted transaction visible to read_committed consumers and does not
 * store the offsets of TxnOffsetCommit, so exactly-once cannot hold on it. The test prints what
 * the probe found and, when the mock lacks either, checks at-least-once there (with the
 * application still configured exactly-once, so its transactional path runs under the kills).
 *
 * The rollback test runs an exactly-once application in this process on the mock and makes the
 * cluster refuse the first transaction's offsets (an error that requires an abort): the worker
 * aborts, forgets the state changes of the transaction, seeks back and processes the records
 * again. A window counted twice (state not rolled back) would show a wrong figure.
 *
 * Also: exactly-once is refused with a clear error on memory: (no transactions) and with
 * kafka.isolation.level=read_uncommitted; a run starts no more workers than input partitions.
 *
 * Bounded: a few kills per broker, well under 60 s under ASan. RV_CRASH_SEED repeats a run.
 * ctest-labels: threads
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kafka_mock.h"
#include "kafka_tsan.h"
#include "rivulet/rivulet.h"
#include "rv_test.h"

#define N 2400
#define KEYS 6
#define PARTS 3
#define SIZE 100
#define GRACE 50
#define BASE 100000
#define NWIN (N / SIZE + 4)

/* Options of the mock's clients: quick group membership, short fetch waits. */
static const char *const kafka_pairs[] = {
    "kafka.session.timeout.ms=3100", "kafka.heartbeat.interval.ms=100",
    "kafka.fetch.wait.max.ms=50", "group.check.interval.ms=50", NULL};

static bool is_kafka(const char *url) {
    return strncmp(url, "kafka://", 8) == 0;
}

static rv_conf_t *base_conf(const char *url) {
    rv_conf_t *conf = rv_conf_new();
    if (is_kafka(url)) {
        for (size_t i = 0; kafka_pairs[i]; i++) {
            rv_conf_set_pair(conf, kafka_pairs[i], NULL);
        }
    }
    return conf;
}

/* ---- the application ------------------------------------------------------------------------ */

static rv_value_t *throttle(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)ctx;
    int *n = opaque;
    if (++*n % 10 == 0) {
        usleep(2000);
    }
    return v;
}

static const rv_agg_t aggs[] = {{.name = "n", .kind = RV_AGG_COUNT},
                                {.name = "sum", .kind = RV_AGG_SUM, .field = "v"}};

static rv_app_t *app_build(const char *url, const char *state, const char *group, const char *in,
                           const char *out, bool eos, bool throttled, rv_error_t **err) {
    rv_conf_t *conf = base_conf(url);
    rv_conf_set(conf, "auto.offset.reset", "earliest", NULL);
    rv_conf_set(conf, "commit.interval.ms", "100", NULL);
    rv_conf_set(conf, "commit.every", "50", NULL);
    rv_conf_set(conf, "group.check.interval.ms", "50", NULL);
    rv_conf_set(conf, "state.dir", state, NULL);
    rv_conf_set(conf, "log.level", getenv("RV_TEST_LOG") ? "debug" : "error", NULL);
    rv_conf_set(conf, "processing.guarantee", eos ? "exactly-once" : "at-least-once", NULL);
    rv_app_opts_t opts = {
        .broker_url = url, .group = group, .conf = conf, .log_cb = rv_log_to_stderr};
    rv_app_t *app = rv_app_new(&opts, err);
    rv_conf_destroy(conf);
    if (!app) {
        return NULL;
    }
    rv_topic_opts_t to = {.key_serde = "string", .value_serde = "json"};
    static int count;
    rv_window_opts_t wo = {
        .name = "eos-window", .type = RV_WINDOW_TUMBLING, .size = SIZE, .grace_ms = GRACE};
    rv_df_t *df = rv_app_dataframe(app, rv_app_topic(app, in, &to, NULL));
    if (throttled) {
        df = rv_df_apply(df, throttle, &count);
    }
    df = rv_df_window(df, &wo, aggs, 2);
    rv_df_to_topic(df, rv_app_topic(app, out, &to, NULL));
    return app;
}

/* argv: child URL STATE GROUP IN OUT FINAL EOS */
static int child_main(char **argv) {
    bool final = strcmp(argv[7], "1") == 0, eos = strcmp(argv[8], "1") == 0;
    rv_error_t *err = NULL;
    rv_app_t *app = app_build(argv[2], argv[3], argv[4], argv[5], argv[6], eos, true, &err);
    if (!app) {
        fprintf(stderr, "child: %s\n", rv_error_message(err));
        rv_error_destroy(err);
        return 2;
    }
    rv_run_opts_t ro = {
        .until_end = final, .timeout_ms = final ? 40000 : 60000, .handle_signals = true};
    rv_err_t e = rv_app_run(app, &ro, &err);
    if (e != RV_OK) {
        fprintf(stderr, "child: %s\n", rv_error_message(err));
    }
    rv_error_destroy(err);
    rv_app_destroy(app);
    return e == RV_OK ? 0 : 1;
}

static pid_t spawn_child(const char *url, const char *state, const char *group, const char *in,
                         const char *out, bool final, bool eos) {
    char *argv[] = {"test_eos_chaos", "child",    (char *)url, (char *)state,
                    (char *)group,    (char *)in, (char *)out, final ? "1" : "0",
                    eos ? "1" : "0",  NULL};
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    CHECK_MSG(pid > 0, "fork: %s", strerror(errno));
    return pid;
}

/* ---- the input and the reference ------------------------------------------------------------ */

static unsigned g_seed;
static int64_t want_n[KEYS][NWIN], want_sum[KEYS][NWIN];
static int seen[KEYS][NWIN];

static rv_broker_t *open_broker(const char *url) {
    rv_conf_t *conf = base_conf(url);
    rv_broker_opts_t bo = {.conf = conf, .log_cb = getenv("RV_TEST_LOG") ? rv_log_to_stderr : NULL};
    rv_error_t *err = NULL;
    rv_broker_t *b = rv_broker_open(url, &bo, &err);
    CHECK_MSG(b != NULL, "open %s: %s", url, rv_error_message(err));
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return b;
}

/* Writes the input and computes the reference aggregates with plain loops. */
static void write_input(rv_broker_t *b, const char *in) {
    if (!is_kafka(rv_broker_url(b))) {
        REQUIRE(rv_broker_create_topic(b, in, PARTS, NULL, NULL) == RV_OK);
    }
    rv_producer_t *p = rv_producer_new(b, NULL, NULL);
    REQUIRE(p != NULL);
    memset(want_n, 0, sizeof want_n);
    memset(want_sum, 0, sizeof want_sum);
    for (int i = 0; i < N + PARTS; i++) {
        bool closing = i >= N;
        int key = i % KEYS;
        int64_t ts = closing ? BASE + 10 * N : BASE + 30 + i - (int64_t)(rand_r(&g_seed) % 30);
        int64_t v = (int64_t)(rand_r(&g_seed) % 1000) - 300;
        char k[16], val[32];
        snprintf(k, sizeof k, closing ? "zz" : "k%d", key);
        snprintf(val, sizeof val, "{\"v\":%lld}", (long long)v);
        rv_record_t r = {.topic = in,
                         .partition = closing ? i - N : key % PARTS,
                         .timestamp_ms = ts,
                         .key = k,
                         .key_len = strlen(k),
                         .value = val,
                         .value_len = strlen(val)};
        CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
        if (!closing) {
            int w = (int)((ts - BASE / SIZE * SIZE) / SIZE);
            want_n[key][w]++;
            want_sum[key][w] += v;
        }
    }
    CHECK_INT(rv_producer_flush(p, 20000, NULL), RV_OK);
    rv_producer_close(p);
}

static int64_t stored(rv_broker_t *b, const char *topic) {
    int32_t parts = 0;
    if (rv_broker_describe_topic(b, topic, &parts, NULL, NULL) != RV_OK) {
        return 0;
    }
    int64_t total = 0;
    for (int32_t p = 0; p < parts; p++) {
        int64_t lo = 0, hi = 0;
        if (rv_broker_watermarks(b, topic, p, &lo, &hi, NULL) == RV_OK) {
            total += hi - lo;
        }
    }
    return total;
}

/* Reads the output (read committed) until it is quiet, and checks every window against the
 * reference: exactly once (`exactly`) or at least once. */
static void check_output(rv_broker_t *b, const char *out, bool exactly, const char *what) {
    memset(seen, 0, sizeof seen);
    int64_t got = 0, bad = 0;
    rv_consumer_t *c = rv_consumer_new(b, NULL, NULL);
    REQUIRE(c != NULL);
    int32_t oparts = 0;
    CHECK_INT(rv_broker_describe_topic(b, out, &oparts, NULL, NULL), RV_OK);
    rv_topic_partition_t tps[16];
    for (int32_t i = 0; i < oparts && i < 16; i++) {
        tps[i] = (rv_topic_partition_t){out, i, RV_OFFSET_BEGINNING};
    }
    CHECK_INT(rv_consumer_assign(c, tps, (size_t)oparts, NULL), RV_OK);
    rv_arena_t *a = rv_arena_new(4096);
    int64_t end = rv_clock_mono_ms() + 15000, quiet_since = rv_clock_mono_ms();
    while (rv_clock_mono_ms() < end && rv_clock_mono_ms() - quiet_since < 1500) {
        const rv_record_t *rs;
        size_t m = 0;
        if (rv_consumer_poll(c, &rs, 256, &m, 50, NULL) != RV_OK) {
            break;
        }
        if (m) {
            quiet_since = rv_clock_mono_ms();
        }
        for (size_t i = 0; i < m; i++, got++) {
            rv_value_t *v = NULL;
            int key = -1;
            if (rs[i].key_len == 2 && ((const char *)rs[i].key)[0] == 'k') {
                key = ((const char *)rs[i].key)[1] - '0';
            }
            if (key < 0 || key >= KEYS ||
                rv_json_parse(a, rs[i].value, rs[i].value_len, NULL, &v, NULL, NULL) != RV_OK) {
                bad++;
                continue;
            }
            int64_t start = rv_value_int(rv_value_get_cstr(v, "start"));
            int w = (int)((start - BASE / SIZE * SIZE) / SIZE);
            if (w < 0 || w >= NWIN || rv_value_int(rv_value_get_cstr(v, "n")) != want_n[key][w] ||
                rv_value_int(rv_value_get_cstr(v, "sum")) != want_sum[key][w]) {
                if (bad++ < 3) {
                    fprintf(stderr, "  wrong window: k%d %.*s (want n %lld sum %lld)\n", key,
                            (int)rs[i].value_len, (const char *)rs[i].value,
                            (long long)(w >= 0 && w < NWIN ? want_n[key][w] : -1),
                            (long long)(w >= 0 && w < NWIN ? want_sum[key][w] : -1));
                }
                continue;
            }
            seen[key][w]++;
        }
    }
    rv_arena_destroy(a);
    rv_consumer_close(c);
    int missing = 0, windows = 0, again = 0;
    for (int k = 0; k < KEYS; k++) {
        for (int w = 0; w < NWIN; w++) {
            windows += want_n[k][w] > 0;
            missing += want_n[k][w] > 0 && !seen[k][w];
            again += seen[k][w] > 1 ? seen[k][w] - 1 : 0;
        }
    }
    CHECK_MSG(missing == 0, "%s: %d of %d windows missing", what, missing, windows);
    CHECK_MSG(bad == 0, "%s: %lld outputs with wrong figures", what, (long long)bad);
    if (exactly) {
        CHECK_MSG(again == 0, "%s: %d windows emitted more than once under exactly-once", what,
                  again);
    }
    fprintf(stderr, "  %s: %d windows, %lld outputs read committed (%d emitted again)\n", what,
            windows, (long long)got, again);
}

/* Runs the child `kills` times, killing it at random moments, then a final run to the end. */
static void chaos(const char *url, const char *state, const char *group, const char *in,
                  const char *out, bool eos, int kills, const char *what) {
    rv_broker_t *b = open_broker(url);
    int64_t t0 = rv_clock_mono_ms();
    for (int k = 0; k < kills; k++) {
        int64_t before = stored(b, out);
        pid_t pid = spawn_child(url, state, group, in, out, false, eos);
        if (pid <= 0) {
            break;
        }
        int64_t deadline = rv_clock_mono_ms() + 15000;
        while (stored(b, out) <= before && rv_clock_mono_ms() < deadline) {
            usleep(10000);
        }
        usleep((useconds_t)(10 + rand_r(&g_seed) % 250) * 1000);
        int status = 0;
        CHECK_MSG(waitpid(pid, &status, WNOHANG) == 0, "%s: child %d ended before the kill", what,
                  (int)pid);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fprintf(stderr, "  %s: kill %d after %lld ms: %lld output offsets\n", what, k + 1,
                (long long)(rv_clock_mono_ms() - t0), (long long)stored(b, out));
    }
    pid_t pid = spawn_child(url, state, group, in, out, true, eos);
    int status = 0;
    if (pid > 0) {
        waitpid(pid, &status, 0);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: the final run failed (0x%x)",
                  what, status);
    }
    fprintf(stderr, "  %s: %d kills and the final run in %lld ms\n", what, kills,
            (long long)(rv_clock_mono_ms() - t0));
    rv_broker_close(b);
}

static void rm_rf(const char *dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
}

/* ---- local: -----------------------------------------------------------------------------------
 */

static void test_local_chaos(void) {
    char dir[] = "/tmp/rv-eos-chaos-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char url[128], state[128];
    snprintf(url, sizeof url, "local:%s/log", dir);
    snprintf(state, sizeof state, "%s/state", dir);
    rv_broker_t *b = open_broker(url);
    write_input(b, "eos-in");
    /* Does this build's local: broker have transactions? (rv_app_new says.) */
    rv_error_t *err = NULL;
    rv_app_t *probe =
        app_build(url, state, "eos-probe", "eos-in", "eos-probe-out", true, false, &err);
    bool eos = probe != NULL;
    if (!probe) {
        CHECK_INT(rv_error_code(err), RV_ERR_UNSUPPORTED);
        fprintf(stderr, "  local: exactly-once refused (%s): checking at-least-once\n",
                rv_error_message(err));
    }
    rv_app_destroy(probe);
    rv_error_destroy(err);
    chaos(url, state, "eos-local", "eos-in", "eos-out", eos, 5, "local");
    check_output(b, "eos-out", eos, eos ? "local, exactly-once" : "local, at-least-once");
    if (eos) {
        /* The same kills under at-least-once: the windows, restored from their stores and
         * changelogs, still carry exactly the aggregates of all their records, though a window
         * may be emitted again after a kill. */
        chaos(url, state, "alo-local", "eos-in", "alo-out", false, 4, "local at-least-once");
        check_output(b, "alo-out", false, "local, at-least-once");
    }
    rv_broker_close(b);
    rm_rf(dir);
}

/* ---- kafka:// on the mock cluster -------------------------------------------------------------
 */

static km_cluster_t g_km;

/*
 * What the mock does with transactions: whether a read_committed consumer sees the records of
 * an aborted transaction, and whether offsets sent to a committed transaction are stored for
 * the group. Exactly-once needs both right.
 */
#define PROBE_REQUIRE(cond)                                                                        \
    do {                                                                                           \
        bool ok_ = (cond);                                                                         \
        CHECK_MSG(ok_, "probe: %s", #cond);                                                        \
        if (!ok_) {                                                                                \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

static bool mock_probe(void) {
    rv_broker_t *b = open_broker(g_km.url);
    const char *topic = "probe-in";
    PROBE_REQUIRE(rd_kafka_mock_topic_create(g_km.mock, topic, 1, 1) == 0);
    rv_conf_t *pc = base_conf(g_km.url);
    rv_conf_set(pc, "transactional.id", "eos-probe", NULL);
    rv_producer_opts_t po = {.conf = pc};
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(b, &po, &err);
    rv_conf_destroy(pc);
    PROBE_REQUIRE(p != NULL);
    rv_record_t r = {.topic = topic, .partition = 0, .value = "aborted", .value_len = 7};
    CHECK_INT(rv_producer_begin_transaction(p, &err), RV_OK);
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    CHECK_INT(rv_producer_flush(p, 10000, NULL), RV_OK);
    CHECK_INT(rv_producer_abort_transaction(p, -1, &err), RV_OK);
    r.value = "committed";
    r.value_len = 9;
    CHECK_INT(rv_producer_begin_transaction(p, &err), RV_OK);
    CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    /* Offsets for a group, put in the transaction through a group member. */
    rv_consumer_opts_t co = {.group = "eos-probe-group"};
    rv_consumer_t *gc = rv_consumer_new(b, &co, &err);
    PROBE_REQUIRE(gc != NULL);
    rv_topic_partition_t tp = {topic, 0, 1};
    rv_err_t so = rv_producer_send_offsets_to_transaction(p, gc, &tp, 1, -1, &err);
    CHECK_INT(rv_producer_commit_transaction(p, -1, &err), RV_OK);
    rv_topic_partition_t got = {topic, 0, RV_OFFSET_INVALID};
    rv_consumer_committed(gc, &got, 1, NULL);
    rv_consumer_close(gc);
    rv_producer_close(p);
    /* Read committed (librdkafka's default isolation). */
    rv_consumer_t *c = rv_consumer_new(b, NULL, NULL);
    PROBE_REQUIRE(c != NULL);
    rv_topic_partition_t at = {topic, 0, RV_OFFSET_BEGINNING};
    CHECK_INT(rv_consumer_assign(c, &at, 1, NULL), RV_OK);
    bool saw_aborted = false, saw_committed = false;
    int64_t end = rv_clock_mono_ms() + 5000;
    while (!saw_committed && rv_clock_mono_ms() < end) {
        const rv_record_t *rs;
        size_t m = 0;
        if (rv_consumer_poll(c, &rs, 16, &m, 100, NULL) != RV_OK) {
            break;
        }
        for (size_t i = 0; i < m; i++) {
            saw_aborted |= rs[i].value_len == 7 && memcmp(rs[i].value, "aborted", 7) == 0;
            saw_committed |= rs[i].value_len == 9 && memcmp(rs[i].value, "committed", 9) == 0;
        }
    }
    rv_consumer_close(c);
    rv_broker_close(b);
    rv_error_destroy(err);
    CHECK_MSG(saw_committed, "mock: the committed transaction's record was not read");
    bool offsets_kept = so == RV_OK && got.offset == 1;
    fprintf(stderr,
            "  kafka mock: aborted records %s to read_committed consumers; offsets of a "
            "committed transaction %s (committed offset read back: %lld)\n",
            saw_aborted ? "VISIBLE" : "hidden", offsets_kept ? "stored" : "NOT stored",
            (long long)got.offset);
    return !saw_aborted && offsets_kept;
}

/* The mock serves no admin requests: the test makes the application's topics. */
static void mock_topics(const char *group, const char *in, const char *out) {
    char cl[256];
    snprintf(cl, sizeof cl, "%s--changelog--%s--eos-window", group, in);
    REQUIRE(rd_kafka_mock_topic_create(g_km.mock, in, PARTS, 1) == 0);
    REQUIRE(rd_kafka_mock_topic_create(g_km.mock, out, PARTS, 1) == 0);
    REQUIRE(rd_kafka_mock_topic_create(g_km.mock, cl, PARTS, 1) == 0);
}

static void test_kafka_chaos(void) {
    REQUIRE(km_start(&g_km, 3));
    bool eos_holds = mock_probe();
    mock_topics("eos-kafka", "keos-in", "keos-out");
    char dir[] = "/tmp/rv-eos-kchaos-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char state[128];
    snprintf(state, sizeof state, "%s/state", dir);
    rv_broker_t *b = open_broker(g_km.url);
    write_input(b, "keos-in");
    if (!eos_holds) {
        fprintf(stderr, "  kafka mock: exactly-once cannot hold on it; the application runs "
                        "exactly-once (transactions, read_committed) but the output is checked "
                        "at-least-once\n");
    }
    chaos(g_km.url, state, "eos-kafka", "keos-in", "keos-out", true, 2, "kafka");
    check_output(b, "keos-out", eos_holds,
                 eos_holds ? "kafka, exactly-once" : "kafka, checked at-least-once");
    rv_broker_close(b);
    rm_rf(dir);
    km_stop(&g_km);
}

/* ---- rollback ----------------------------------------------------------------------------------
 */

static void test_kafka_rollback(void) {
    REQUIRE(km_start(&g_km, 3));
    char dir[] = "/tmp/rv-eos-rollback-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char state[128];
    snprintf(state, sizeof state, "%s/state", dir);
    mock_topics("eos-rollback", "rb-in", "rb-out");
    rv_broker_t *b = open_broker(g_km.url);
    write_input(b, "rb-in");
    /* The first transactions' offsets are refused with an error that requires an abort. */
    rd_kafka_mock_push_request_errors(g_km.mock, 25 /* AddOffsetsToTxn */, 2,
                                      RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED);
    rv_error_t *err = NULL;
    rv_app_t *app =
        app_build(g_km.url, state, "eos-rollback", "rb-in", "rb-out", true, false, &err);
    CHECK_MSG(app != NULL, "rv_app_new: %s", rv_error_message(err));
    if (app) {
        rv_run_opts_t ro = {.until_end = true, .timeout_ms = 40000};
        rv_err_t e = rv_app_run(app, &ro, &err);
        CHECK_MSG(e == RV_OK, "run: %s", rv_error_message(err));
        rv_app_metrics_t m;
        rv_app_metrics(app, &m);
        fprintf(stderr, "  rollback: %lld transactions committed, %lld aborted\n",
                (long long)m.txn_commits, (long long)m.txn_aborts);
        CHECK_MSG(m.txn_aborts >= 1, "no transaction was aborted");
        CHECK_MSG(m.txn_commits >= 1, "no transaction was committed");
        rv_app_destroy(app);
    }
    rv_error_destroy(err);
    /* Aborted outputs stay visible on the mock: at least once, but every figure exact. */
    check_output(b, "rb-out", false, "kafka rollback");
    rv_broker_close(b);
    rm_rf(dir);
    km_stop(&g_km);
}

/* ---- exactly-once refused cleanly: no transactions, or uncommitted reads ----------------------
 */

static void test_eos_refused(void) {
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "processing.guarantee", "exactly-once", NULL);
    rv_app_opts_t opts = {.broker_url = "memory:", .group = "eos-mem", .conf = conf};
    rv_error_t *err = NULL;
    rv_app_t *app = rv_app_new(&opts, &err);
    rv_conf_destroy(conf);
    CHECK(app == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_UNSUPPORTED);
    CHECK_MSG(err && strstr(rv_error_message(err), "transactions") != NULL, "message: %s",
              rv_error_message(err));
    rv_app_destroy(app);
    rv_error_destroy(err);
    err = NULL;
    /* Exactly-once reads committed records only. */
    char dir[] = "/tmp/rv-eos-refused-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char url[128];
    snprintf(url, sizeof url, "local:%s/log", dir);
    conf = rv_conf_new();
    rv_conf_set(conf, "processing.guarantee", "exactly-once", NULL);
    CHECK_INT(rv_conf_set(conf, "kafka.isolation.level", "read_uncommitted", NULL), RV_OK);
    opts.broker_url = url;
    opts.conf = conf;
    app = rv_app_new(&opts, &err);
    rv_conf_destroy(conf);
    CHECK(app == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_CONFIG);
    CHECK_MSG(err && strstr(rv_error_message(err), "read_uncommitted") != NULL, "message: %s",
              rv_error_message(err));
    rv_app_destroy(app);
    rv_error_destroy(err);
    rm_rf(dir);
}

/* ---- engine: no more workers than input partitions ---------------------------------------------
 */

static void note_workers(void *opaque, rv_log_level_t level, const char *subsystem,
                         const char *message) {
    (void)level;
    (void)subsystem;
    const char *at = strstr(message, " with ");
    if (strstr(message, " runs on ") && at) {
        *(int *)opaque = atoi(at + 6); /* "... runs on URL with N workers (...)" */
    }
}

static void test_threads_capped(void) {
    char dir[] = "/tmp/rv-eos-threads-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char url[128];
    snprintf(url, sizeof url, "local:%s/log", dir);
    rv_broker_t *b = open_broker(url);
    REQUIRE(rv_broker_create_topic(b, "two", 2, NULL, NULL) == RV_OK);
    rv_broker_close(b);
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "app.threads", "4", NULL);
    rv_conf_set(conf, "log.level", "info", NULL);
    int workers = -1;
    rv_app_opts_t opts = {.broker_url = url,
                          .group = "threads",
                          .conf = conf,
                          .log_cb = note_workers,
                          .log_opaque = &workers};
    rv_error_t *err = NULL;
    rv_app_t *app = rv_app_new(&opts, &err);
    rv_conf_destroy(conf);
    REQUIRE(app != NULL);
    rv_df_t *df = rv_app_dataframe(app, rv_app_topic(app, "two", NULL, NULL));
    rv_df_to_topic(df, rv_app_topic(app, "two-out", NULL, NULL));
    rv_run_opts_t ro = {.timeout_ms = 300};
    CHECK_INT(rv_app_run(app, &ro, &err), RV_OK);
    CHECK_INT(workers, 2); /* app.threads=4, but the input has 2 partitions */
    rv_app_destroy(app);
    rv_error_destroy(err);
    rm_rf(dir);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        return child_main(argv);
    }
    const char *s = getenv("RV_CRASH_SEED");
    g_seed = s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
    fprintf(stderr, "seed %u (RV_CRASH_SEED=%u repeats it)\n", g_seed, g_seed);
    const char *only = getenv("RV_TEST_ONLY"); /* a test's name, to run it alone */
#define RUN(fn)                                                                                    \
    if (!only || strcmp(only, #fn) == 0) {                                                         \
        RV_RUN(fn);                                                                                \
    }
    RUN(test_eos_refused);
    RUN(test_threads_capped);
    RUN(test_kafka_rollback);
    RUN(test_local_chaos);
    RUN(test_kafka_chaos);
#undef RUN
    return rv_test_finish();
}
