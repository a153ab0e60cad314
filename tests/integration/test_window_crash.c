/*
 * test_window_crash.c: windows survive SIGKILL: an application with a tumbling window, killed at
 * random moments and restarted from its state stores (RocksDB files and changelogs), finally
 * emits every window with exactly the aggregates of all its records.
 *
 * The parent writes N records of six keys (event time moving forward with a little disorder,
 * always within the grace period, so no record is late) to a 3-partition topic on
 * local:<tmpdir>, plus a record per partition far in the future that closes every window. It
 * then starts this program again (fork and exec of /proc/self/exe) as the application: a slow
 * apply, then a 100 ms tumbling window (count and sum) into an output topic, checkpointing
 * often. The parent SIGKILLs it a random moment after it made progress, several times, then lets
 * a last run read the input to its end. Every (key, window) of the input must be in the output,
 * and every output record must carry exactly the count and sum of its window's records: a window
 * that lost or double-counted records across a crash would show a wrong figure. A window emitted
 * again after a kill (at-least-once output) is allowed. Bounded: well under 60 s under ASan.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rivulet/rivulet.h"
#include "rv_test.h"

#define N 3000
#define KEYS 6
#define PARTS 3
#define SIZE 100
#define GRACE 50
#define BASE 100000

/* ---- the child: the application ------------------------------------------------------------- */

static rv_value_t *throttle(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    int *n = opaque;
    if (++*n % 10 == 0) {
        usleep(2000);
    }
    return v;
}

static const rv_agg_t aggs[] = {{.name = "n", .kind = RV_AGG_COUNT},
                                {.name = "sum", .kind = RV_AGG_SUM, .field = "v"}};

/* argv: child URL STATE GROUP IN OUT FINAL */
static int child_main(char **argv) {
    const char *url = argv[2], *state = argv[3], *group = argv[4], *in = argv[5], *out = argv[6];
    bool final = strcmp(argv[7], "1") == 0;
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "auto.offset.reset", "earliest", NULL);
    rv_conf_set(conf, "commit.interval.ms", "100", NULL);
    rv_conf_set(conf, "commit.every", "50", NULL);
    rv_conf_set(conf, "group.check.interval.ms", "50", NULL);
    rv_conf_set(conf, "state.dir", state, NULL);
    rv_conf_set(conf, "log.level", "warning", NULL);
    rv_error_t *err = NULL;
    rv_app_opts_t opts = {
        .broker_url = url, .group = group, .conf = conf, .log_cb = rv_log_to_stderr};
    rv_app_t *app = rv_app_new(&opts, &err);
    rv_conf_destroy(conf);
    if (!app) {
        fprintf(stderr, "child: %s\n", rv_error_message(err));
        return 2;
    }
    rv_topic_opts_t to = {.key_serde = "string", .value_serde = "json"};
    static int count;
    rv_window_opts_t wo = {
        .name = "crash-window", .type = RV_WINDOW_TUMBLING, .size = SIZE, .grace_ms = GRACE};
    rv_df_t *df = rv_app_dataframe(app, rv_app_topic(app, in, &to, NULL));
    df = rv_df_apply(df, throttle, &count);
    df = rv_df_window(df, &wo, aggs, 2);
    df = rv_df_to_topic(df, rv_app_topic(app, out, &to, NULL));
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

static pid_t spawn_child(const char *url, const char *state, const char *group, const char *in,
                         const char *out, bool final) {
    char *argv[] = {"test_window_crash", "child",           (char *)url,
                    (char *)state,       (char *)group,     (char *)in,
                    (char *)out,         final ? "1" : "0", NULL};
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

static unsigned g_seed;

/* The expected aggregates per (key, window index). */
#define NWIN (N / SIZE + 4)
static int64_t want_n[KEYS][NWIN], want_sum[KEYS][NWIN];
static int seen[KEYS][NWIN];

static void test_crash(void) {
    char dir[] = "/tmp/rv-window-crash-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char url[128], state[128];
    snprintf(url, sizeof url, "local:%s/log", dir);
    snprintf(state, sizeof state, "%s/state", dir);
    const char *group = "window-crash", *in = "wc-in", *out = "wc-out";
    rv_error_t *err = NULL;
    rv_broker_t *b = rv_broker_open(url, NULL, &err);
    REQUIRE(b != NULL);
    REQUIRE(rv_broker_create_topic(b, in, PARTS, NULL, NULL) == RV_OK);
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

    int64_t t0 = rv_clock_mono_ms();
    for (int k = 0; k < 4; k++) {
        int64_t before = stored(b, out);
        pid_t pid = spawn_child(url, state, group, in, out, false);
        if (pid <= 0) {
            break;
        }
        int64_t deadline = rv_clock_mono_ms() + 20000;
        while (stored(b, out) <= before && rv_clock_mono_ms() < deadline) {
            usleep(10000);
        }
        usleep((useconds_t)(10 + rand_r(&g_seed) % 200) * 1000);
        int status = 0;
        CHECK_MSG(waitpid(pid, &status, WNOHANG) == 0, "child %d ended before the kill", (int)pid);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fprintf(stderr, "  kill %d after %lld ms: %lld windows stored\n", k + 1,
                (long long)(rv_clock_mono_ms() - t0), (long long)stored(b, out));
    }
    pid_t pid = spawn_child(url, state, group, in, out, true);
    int status = 0;
    if (pid > 0) {
        waitpid(pid, &status, 0);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the final run failed (0x%x)",
                  status);
    }

    /* Every window exactly right, each at least once. */
    memset(seen, 0, sizeof seen);
    int64_t total = stored(b, out), got = 0, bad = 0;
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
    int64_t end = rv_clock_mono_ms() + 15000;
    while (got < total && rv_clock_mono_ms() < end) {
        const rv_record_t *rs;
        size_t m = 0;
        if (rv_consumer_poll(c, &rs, 256, &m, 50, NULL) != RV_OK) {
            break;
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
    CHECK_MSG(missing == 0, "%d of %d windows missing", missing, windows);
    CHECK_INT(bad, 0);
    CHECK_INT(got, total);
    fprintf(stderr, "  %d windows, %lld outputs (%d emitted again after a kill), %lld ms\n",
            windows, (long long)got, again, (long long)(rv_clock_mono_ms() - t0));
    rv_broker_close(b);
    rv_error_destroy(err);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        return child_main(argv);
    }
    const char *s = getenv("RV_CRASH_SEED");
    g_seed = s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
    fprintf(stderr, "seed %u (RV_CRASH_SEED=%u repeats it)\n", g_seed, g_seed);
    RV_RUN(test_crash);
    return rv_test_finish();
}
