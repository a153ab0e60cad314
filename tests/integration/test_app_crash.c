/*
 * test_app_crash.c: at-least-once across SIGKILL: an application killed at random moments in
 * the middle of its run, restarted each time, and finally run to the end, has produced an output
 * for every input record.
 *
 * The parent writes N input records ({"id": i}, keyed by i) and then starts this same program
 * again (fork and exec of /proc/self/exe, so the child is a fresh process that shares nothing
 * with the parent) as the application: it reads the input as a member of a consumer group,
 * checkpoints often (commit.interval.ms=100, commit.every=50), and writes one output record per
 * input, slowly enough to be caught mid-run. The parent watches the output grow and SIGKILLs the
 * child a random moment after it made progress (some kills on local: land right after the start
 * instead), several times, then lets a last child run until its input is read to the end and
 * checks that every id 0..N-1 is in the output at least once (duplicates are allowed: that is
 * at-least-once). It runs on local:<tmpdir> and on kafka:// against a librdkafka mock cluster
 * that the parent owns, so it outlives every child, which connects to it over TCP. The random
 * seed is printed (RV_CRASH_SEED=... repeats a run). Bounded: well under 60 s under ASan. The
 * test must never depend on a server outside the process.
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

#define N_LOCAL 4000
#define N_KAFKA 1500
#define IN_PARTITIONS 3

/* Properties of every client on the mock, as in test_kafka_contract.c. */
static const char *const g_kafka_conf[] = {
    "kafka.session.timeout.ms=3100", "kafka.heartbeat.interval.ms=100",
    "kafka.fetch.wait.max.ms=100", "kafka.reconnect.backoff.max.ms=500", NULL};

/* ---- the child: the application ------------------------------------------------------------- */

/* Identity, slowly: a 2 ms pause every g_every records, so a run of the input takes a while. */
static int g_every = 10;

static rv_value_t *throttle(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)ctx;
    int *n = opaque;
    if (++*n % g_every == 0) {
        usleep(2000);
    }
    return v;
}

/* A sink whose flush takes a while, so a checkpoint (the last one too) is slow. */
static rv_err_t slow_write(void *sink, rv_ctx_t *ctx, const rv_value_t *v) {
    (void)sink;
    (void)ctx;
    (void)v;
    return RV_OK;
}

static rv_err_t slow_flush(void *sink, rv_error_t **err) {
    (void)sink;
    (void)err;
    int64_t end = rv_clock_mono_ms() + 300; /* signals interrupt usleep(): sleep it out */
    while (rv_clock_mono_ms() < end) {
        usleep(10 * 1000);
    }
    return RV_OK;
}

static const rv_sink_ops_t slow_sink = {.version = 1, .write = slow_write, .flush = slow_flush};

/* argv: child URL GROUP IN OUT FINAL KAFKA [slow] */
static int child_main(int argc, char **argv) {
    const char *url = argv[2], *group = argv[3], *in = argv[4], *out = argv[5];
    bool final = strcmp(argv[6], "1") == 0, kafka = strcmp(argv[7], "1") == 0;
    g_every = kafka ? 2 : 10; /* about 1000 and 5000 records/s */
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "auto.offset.reset", "earliest", NULL);
    rv_conf_set(conf, "commit.interval.ms", "100", NULL);
    rv_conf_set(conf, "commit.every", "50", NULL);
    rv_conf_set(conf, "group.check.interval.ms", "50", NULL);
    for (size_t i = 0; kafka && g_kafka_conf[i]; i++) {
        rv_conf_set_pair(conf, g_kafka_conf[i], NULL);
    }
    rv_error_t *err = NULL;
    rv_app_opts_t opts = {
        .broker_url = url, .group = group, .conf = conf, .log_cb = rv_log_to_stderr};
    rv_conf_set(conf, "log.level", "warning", NULL);
    rv_app_t *app = rv_app_new(&opts, &err);
    rv_conf_destroy(conf);
    if (!app) {
        fprintf(stderr, "child: %s\n", rv_error_message(err));
        return 2;
    }
    rv_topic_opts_t to = {.key_serde = "string", .value_serde = "json"};
    static int count;
    rv_df_t *df = rv_app_dataframe(app, rv_app_topic(app, in, &to, NULL));
    df = rv_df_apply(df, throttle, &count);
    df = rv_df_to_topic(df, rv_app_topic(app, out, &to, NULL));
    if (argc > 8 && strcmp(argv[8], "slow") == 0) {
        rv_df_sink_obj(df, &slow_sink, NULL);
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

/* ---- the parent ----------------------------------------------------------------------------- */

static km_cluster_t g_km; /* the mock cluster of the kafka:// runs */

static rv_broker_t *open_broker(const char *url, bool kafka) {
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "log.maintenance.interval.ms", "86400000", NULL);
    for (size_t i = 0; kafka && g_kafka_conf[i]; i++) {
        rv_conf_set_pair(conf, g_kafka_conf[i], NULL);
    }
    rv_broker_opts_t bo = {.conf = conf};
    rv_error_t *err = NULL;
    rv_broker_t *b = rv_broker_open(url, &bo, &err);
    CHECK_MSG(b != NULL, "open %s: %s", url, rv_error_message(err));
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return b;
}

/* Records stored in `topic` (the sum of its partitions' high watermarks). */
static int64_t stored(rv_broker_t *b, const char *topic) {
    int32_t parts = 0;
    if (rv_broker_describe_topic(b, topic, &parts, NULL, NULL) != RV_OK) {
        return 0;
    }
    int64_t sum = 0;
    for (int32_t p = 0; p < parts; p++) {
        int64_t lo = 0, hi = 0;
        if (rv_broker_watermarks(b, topic, p, &lo, &hi, NULL) == RV_OK) {
            sum += hi;
        }
    }
    return sum;
}

/* Starts a child running the application; argv is built before fork, so the child only execs.
 * A `slow` child checkpoints slowly (a sink whose flush takes 300 ms). */
static pid_t spawn_child(const char *url, const char *group, const char *in, const char *out,
                         bool final, bool kafka, bool slow) {
    char *argv[] = {"test_app_crash",     "child",     (char *)url,       (char *)group,
                    (char *)in,           (char *)out, final ? "1" : "0", kafka ? "1" : "0",
                    slow ? "slow" : NULL, NULL};
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

static unsigned g_seed;

static int64_t rnd(int64_t lo, int64_t hi) {
    return lo + (int64_t)(rand_r(&g_seed) % (unsigned)(hi - lo + 1));
}

/* One leg: N inputs, `kills` SIGKILLs at random moments, a final run, then the check. */
static void crash_leg(const char *name, const char *url, bool kafka, int n, int kills) {
    int64_t t0 = rv_clock_mono_ms();
    char group[64], in[64], out[64];
    snprintf(group, sizeof group, "crash-%ld-%s", (long)getpid(), kafka ? "k" : "l");
    snprintf(in, sizeof in, "crash-in-%ld", (long)getpid());
    snprintf(out, sizeof out, "crash-out-%ld", (long)getpid());
    rv_broker_t *b = open_broker(url, kafka);
    if (!b) {
        return;
    }
    if (kafka) {
        REQUIRE(rd_kafka_mock_topic_create(g_km.mock, in, IN_PARTITIONS, 1) == 0);
        REQUIRE(rd_kafka_mock_topic_create(g_km.mock, out, IN_PARTITIONS, 1) == 0);
    } else {
        REQUIRE(rv_broker_create_topic(b, in, IN_PARTITIONS, NULL, NULL) == RV_OK);
    }
    rv_producer_t *p = rv_producer_new(b, NULL, NULL);
    REQUIRE(p != NULL);
    for (int i = 0; i < n; i++) {
        char k[16], v[32];
        snprintf(k, sizeof k, "%d", i);
        snprintf(v, sizeof v, "{\"id\":%d}", i);
        rv_record_t r = {.topic = in,
                         .partition = RV_PARTITION_ANY,
                         .key = k,
                         .key_len = strlen(k),
                         .value = v,
                         .value_len = strlen(v)};
        CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    }
    CHECK_INT(rv_producer_flush(p, 20000, NULL), RV_OK);
    rv_producer_close(p);

    int mid_run = 0;
    for (int k = 0; k < kills; k++) {
        int64_t before = stored(b, out);
        pid_t pid = spawn_child(url, group, in, out, false, kafka, false);
        if (pid <= 0) {
            break;
        }
        bool early = !kafka && k % 2 == 1; /* right after the start, before any progress */
        int64_t deadline = rv_clock_mono_ms() + 20000;
        if (early) {
            usleep((useconds_t)rnd(0, 150) * 1000);
        } else {
            while (stored(b, out) <= before && rv_clock_mono_ms() < deadline) {
                usleep(10000);
            }
            usleep((useconds_t)rnd(10, 250) * 1000);
        }
        int status = 0;
        pid_t w = waitpid(pid, &status, WNOHANG);
        CHECK_MSG(w == 0, "%s: child %d ended by itself before the kill (status %d)", name,
                  (int)pid, status);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        int64_t after = stored(b, out);
        mid_run += after > before && after < n;
        fprintf(stderr, "  %s: kill %d (%s) after %lld ms: %lld outputs stored\n", name, k + 1,
                early ? "early" : "after progress", (long long)(rv_clock_mono_ms() - t0),
                (long long)after);
    }
    CHECK_MSG(mid_run > 0, "%s: no kill landed in the middle of the run", name);

    pid_t pid = spawn_child(url, group, in, out, true, kafka, false);
    int status = 0;
    if (pid > 0) {
        waitpid(pid, &status, 0);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "%s: the final run failed (status 0x%x)", name, status);
    }

    /* Every input id has its output, at least once. */
    int32_t parts = 0;
    CHECK_INT(rv_broker_describe_topic(b, out, &parts, NULL, NULL), RV_OK);
    int64_t total = stored(b, out);
    unsigned char *seen = calloc((size_t)n, 1);
    rv_consumer_t *c = rv_consumer_new(b, NULL, NULL);
    REQUIRE(c && seen);
    rv_topic_partition_t tps[IN_PARTITIONS];
    for (int32_t i = 0; i < parts && i < IN_PARTITIONS; i++) {
        tps[i] = (rv_topic_partition_t){out, i, RV_OFFSET_BEGINNING};
    }
    CHECK_INT(rv_consumer_assign(c, tps, (size_t)parts, NULL), RV_OK);
    int64_t got = 0, bad = 0, end = rv_clock_mono_ms() + 15000;
    while (got < total && rv_clock_mono_ms() < end) {
        const rv_record_t *recs;
        size_t m = 0;
        if (rv_consumer_poll(c, &recs, 512, &m, 50, NULL) != RV_OK) {
            break;
        }
        for (size_t i = 0; i < m; i++, got++) {
            int id = -1;
            char v[64];
            snprintf(v, sizeof v, "%.*s", (int)recs[i].value_len, (const char *)recs[i].value);
            if (sscanf(v, "{\"id\":%d}", &id) == 1 && id >= 0 && id < n) {
                seen[id] = 1;
            } else {
                bad++;
            }
        }
    }
    rv_consumer_close(c);
    int missing = 0, first_missing = -1;
    for (int i = 0; i < n; i++) {
        if (!seen[i]) {
            missing++;
            first_missing = first_missing < 0 ? i : first_missing;
        }
    }
    CHECK_MSG(missing == 0, "%s: %d of %d inputs have no output (the first: id %d)", name, missing,
              n, first_missing);
    CHECK_INT(bad, 0);
    CHECK_INT(got, total);
    fprintf(stderr, "  %s: %d inputs, %lld outputs (%lld processed again after a kill), %lld ms\n",
            name, n, (long long)got, (long long)(got - n), (long long)(rv_clock_mono_ms() - t0));
    free(seen);
    rv_broker_close(b);
}

static char g_dir[] = "/tmp/rv-app-crash-XXXXXX";

/* Waits up to `ms` for `pid`; false when it is still running (then it is killed). */
static bool wait_for(pid_t pid, int *status, int ms) {
    int64_t end = rv_clock_mono_ms() + ms;
    while (rv_clock_mono_ms() < end) {
        if (waitpid(pid, status, WNOHANG) == pid) {
            return true;
        }
        usleep(5000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return false;
}

/* SIGTERM stops the application gracefully (it commits what it processed and exits 0); a second
 * SIGTERM while it stops ends the process at once. */
static void test_signals_local(void) {
    char url[600], group[64], in[64], out[64];
    snprintf(url, sizeof url, "local:%s", g_dir);
    snprintf(group, sizeof group, "sig-%ld", (long)getpid());
    snprintf(in, sizeof in, "sig-in-%ld", (long)getpid());
    snprintf(out, sizeof out, "sig-out-%ld", (long)getpid());
    rv_broker_t *b = open_broker(url, false);
    REQUIRE(b != NULL);
    REQUIRE(rv_broker_create_topic(b, in, 1, NULL, NULL) == RV_OK);
    rv_producer_t *p = rv_producer_new(b, NULL, NULL);
    REQUIRE(p != NULL);
    for (int i = 0; i < 2000; i++) {
        char v[32];
        snprintf(v, sizeof v, "{\"id\":%d}", i);
        rv_record_t r = {.topic = in, .partition = 0, .value = v, .value_len = strlen(v)};
        CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    }
    CHECK_INT(rv_producer_flush(p, 20000, NULL), RV_OK);
    rv_producer_close(p);

    for (int twice = 0; twice < 2; twice++) {
        int64_t before = stored(b, out);
        pid_t pid = spawn_child(url, group, in, out, false, false, true);
        REQUIRE(pid > 0);
        int64_t deadline = rv_clock_mono_ms() + 20000;
        while (stored(b, out) <= before && rv_clock_mono_ms() < deadline) {
            usleep(10000);
        }
        kill(pid, SIGTERM);
        if (twice) {
            usleep(150 * 1000); /* the child is in its last, slow checkpoint (300 ms) */
            kill(pid, SIGTERM);
        }
        int status = 0;
        CHECK_MSG(wait_for(pid, &status, 10000), "the child did not stop after SIGTERM");
        if (!twice) {
            CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "one SIGTERM: status 0x%x, expected a clean exit", status);
            /* Every output's input is committed, and nothing else. */
            rv_consumer_opts_t co = {.group = group};
            rv_consumer_t *c = rv_consumer_new(b, &co, NULL);
            rv_topic_partition_t tp = {in, 0, RV_OFFSET_INVALID};
            CHECK_INT(rv_consumer_committed(c, &tp, 1, NULL), RV_OK);
            rv_consumer_close(c);
            CHECK_INT(tp.offset, stored(b, out));
            fprintf(stderr, "  one SIGTERM: clean exit, %lld records committed\n",
                    (long long)tp.offset);
        } else {
            CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
                      "two SIGTERMs: status 0x%x, expected death by SIGTERM", status);
        }
    }
    rv_broker_close(b);
}

static void test_crash_local(void) {
    char url[600];
    snprintf(url, sizeof url, "local:%s", g_dir);
    crash_leg("local", url, false, N_LOCAL, 6);
}

static void test_crash_kafka(void) {
    rv_error_t *err = NULL;
    rv_broker_t *probe = rv_broker_open("kafka://127.0.0.1:9", NULL, &err);
    bool none = !probe && rv_error_code(err) == RV_ERR_UNSUPPORTED;
    rv_broker_close(probe);
    rv_error_destroy(err);
    if (none) {
        fprintf(stderr, "skip test_crash_kafka: this library has no Kafka broker\n");
        return;
    }
    REQUIRE(km_start(&g_km, 1));
    crash_leg("kafka", g_km.url, true, N_KAFKA, 3);
    km_stop(&g_km);
}

int main(int argc, char **argv) {
    if (argc >= 8 && strcmp(argv[1], "child") == 0) {
        return child_main(argc, argv);
    }
    const char *s = getenv("RV_CRASH_SEED");
    g_seed = s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL) ^ (unsigned)getpid();
    fprintf(stderr, "seed %u (RV_CRASH_SEED=%u repeats it)\n", g_seed, g_seed);
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RV_RUN(test_signals_local);
    RV_RUN(test_crash_local);
    RV_RUN(test_crash_kafka);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", g_dir);
    }
    return rv_test_finish();
}
