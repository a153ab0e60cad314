/*
 * test_state_handover.c: state moves with its partitions between processes of one group.
 *
 * ctest-labels: threads
 *
 * Two processes (fork and exec of this program, each a fresh process with its own state.dir,
 * as on two machines) run the same application on one embedded log (local:<tmpdir>): a
 * stateful count and sum per key over a 4-partition topic, writing {"n", "sum"} per record. The
 * parent writes the input in slices while it starts the first member, then a second (partitions
 * move to it: it restores their stores from the changelogs, its own directory being empty), then
 * stops the first one with SIGTERM mid-stream (its partitions move back to the second, which
 * restores them too), then writes the rest. When the second member has caught up, the last
 * output of every key must equal the reference computed by the parent: no contribution lost, none
 * counted twice. Bounded: about 10 s.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rivulet/rivulet.h"
#include "rv_test.h"

#define KEYS 20
#define PARTS 4
#define SLICES 30
#define PER_SLICE 100

static char g_base[256];
static char g_url[300];

/* ---- the child: one member ------------------------------------------------------------------ */

static rv_value_t *count(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)opaque;
    rv_state_t *st = rv_ctx_state(ctx);
    int64_t n = rv_state_get_int(st, "n", 0) + 1;
    int64_t sum = rv_state_get_int(st, "sum", 0) + rv_value_int(rv_value_get_cstr(v, "x"));
    if (rv_state_set_int(st, "n", n) != RV_OK || rv_state_set_int(st, "sum", sum) != RV_OK) {
        rv_ctx_fail(ctx, "cannot set state");
        return NULL;
    }
    usleep(200); /* slow enough to be caught mid-stream */
    rv_arena_t *a = rv_ctx_arena(ctx);
    rv_value_t *o = rv_value_new_object(a, 2);
    rv_value_set(a, o, "n", 1, rv_value_new_int(a, n));
    rv_value_set(a, o, "sum", 3, rv_value_new_int(a, sum));
    return o;
}

static int child_main(const char *state_dir) {
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "state.dir", state_dir, NULL);
    rv_conf_set(conf, "auto.offset.reset", "earliest", NULL);
    rv_conf_set(conf, "commit.interval.ms", "100", NULL);
    rv_conf_set(conf, "group.check.interval.ms", "50", NULL);
    rv_conf_set(conf, "log.level", "warning", NULL);
    rv_app_opts_t ao = {
        .broker_url = g_url, .group = "hand", .conf = conf, .log_cb = rv_log_to_stderr};
    rv_error_t *err = NULL;
    rv_app_t *app = rv_app_new(&ao, &err);
    rv_conf_destroy(conf);
    if (!app) {
        fprintf(stderr, "child: %s\n", rv_error_message(err));
        return 2;
    }
    rv_topic_opts_t to = {.key_serde = "string", .partitions = PARTS};
    rv_df_t *df = rv_app_dataframe(app, rv_app_topic(app, "in", &to, NULL));
    df = rv_df_apply_state(df, "counts", count, NULL);
    rv_df_to_topic(df, rv_app_topic(app, "out", &to, NULL));
    rv_run_opts_t ro = {.timeout_ms = 60000, .handle_signals = true};
    rv_err_t e = rv_app_run(app, &ro, &err);
    if (e != RV_OK) {
        fprintf(stderr, "child: %s\n", rv_error_message(err));
    }
    rv_error_destroy(err);
    rv_app_destroy(app);
    return e == RV_OK ? 0 : 1;
}

/* ---- the parent ----------------------------------------------------------------------------- */

static int64_t g_ref_n[KEYS], g_ref_sum[KEYS];
static int64_t g_written;

static pid_t spawn(const char *state_dir) {
    char *argv[] = {"test_state_handover", "child", g_url, (char *)state_dir, NULL};
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

static void write_slice(rv_producer_t *p) {
    char key[16], val[64];
    for (int i = 0; i < PER_SLICE; i++) {
        int64_t x = g_written++;
        int k = (int)((x * 11) % KEYS);
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
}

/* Reads the output from `c` (assigned to every partition) into the last values per key;
 * returns how many keys match the reference. */
static int drain(rv_consumer_t *c, rv_arena_t *a, int64_t *last_n, int64_t *last_sum) {
    for (;;) {
        const rv_record_t *recs;
        size_t n = 0;
        if (rv_consumer_poll(c, &recs, 1024, &n, 50, NULL) != RV_OK || n == 0) {
            break;
        }
        for (size_t i = 0; i < n; i++) {
            int k = atoi((const char *)recs[i].key + 1);
            rv_value_t *v = NULL;
            rv_arena_reset(a);
            if (k < 0 || k >= KEYS ||
                rv_json_parse(a, recs[i].value, recs[i].value_len, NULL, &v, NULL, NULL) != RV_OK) {
                CHECK_MSG(false, "bad output at offset %lld", (long long)recs[i].offset);
                continue;
            }
            last_n[k] = rv_value_int(rv_value_get_cstr(v, "n"));
            last_sum[k] = rv_value_int(rv_value_get_cstr(v, "sum"));
        }
    }
    int ok = 0;
    for (int k = 0; k < KEYS; k++) {
        ok += last_n[k] == g_ref_n[k] && last_sum[k] == g_ref_sum[k];
    }
    return ok;
}

static void test_handover(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_base);
    CHECK(system(cmd) == 0);
    rv_broker_t *b = rv_broker_open(g_url, NULL, NULL);
    REQUIRE(b != NULL);
    CHECK_INT(rv_broker_create_topic(b, "in", PARTS, NULL, NULL), RV_OK);
    CHECK_INT(rv_broker_create_topic(b, "out", PARTS, NULL, NULL), RV_OK);
    rv_producer_t *p = rv_producer_new(b, NULL, NULL);
    char dir_a[300], dir_b[300];
    snprintf(dir_a, sizeof dir_a, "%s/state-a", g_base);
    snprintf(dir_b, sizeof dir_b, "%s/state-b", g_base);
    pid_t a = spawn(dir_a), bpid = -1;
    for (int s = 0; s < SLICES; s++) {
        write_slice(p);
        usleep(60 * 1000);
        if (s == 8) {
            bpid = spawn(dir_b); /* partitions move to B */
        }
        if (s == 18) {
            kill(a, SIGTERM); /* A leaves mid-stream: its partitions move to B */
        }
    }
    int st = -1;
    CHECK(waitpid(a, &st, 0) == a && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Wait for B to catch up: every key's last output matches the reference. */
    rv_consumer_t *c = rv_consumer_new(b, NULL, NULL);
    rv_topic_partition_t tps[PARTS];
    for (int i = 0; i < PARTS; i++) {
        tps[i] = (rv_topic_partition_t){"out", i, RV_OFFSET_BEGINNING};
    }
    CHECK_INT(rv_consumer_assign(c, tps, PARTS, NULL), RV_OK);
    int64_t last_n[KEYS] = {0}, last_sum[KEYS] = {0};
    rv_arena_t *ar = rv_arena_new(0);
    int ok = 0;
    int64_t until = rv_clock_mono_ms() + 40000;
    while ((ok = drain(c, ar, last_n, last_sum)) < KEYS && rv_clock_mono_ms() < until) {
        usleep(100 * 1000);
    }
    usleep(500 * 1000); /* nothing more may come: a doubled contribution would show now */
    ok = drain(c, ar, last_n, last_sum);
    for (int k = 0; k < KEYS; k++) {
        CHECK_MSG(last_n[k] == g_ref_n[k] && last_sum[k] == g_ref_sum[k],
                  "key k%d: n %lld sum %lld, want n %lld sum %lld", k, (long long)last_n[k],
                  (long long)last_sum[k], (long long)g_ref_n[k], (long long)g_ref_sum[k]);
    }
    CHECK_INT(ok, KEYS);
    kill(bpid, SIGTERM);
    CHECK(waitpid(bpid, &st, 0) == bpid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* B restored partitions it took over: its directory holds stores of every partition. */
    int found = 0;
    for (int i = 0; i < PARTS; i++) {
        char d[400];
        snprintf(d, sizeof d, "%s/hand/in/counts/%d/CURRENT", dir_b, i);
        found += access(d, F_OK) == 0;
    }
    CHECK_INT(found, PARTS);
    rv_arena_destroy(ar);
    rv_consumer_close(c);
    rv_producer_close(p);
    rv_broker_close(b);
    CHECK(system(cmd) == 0);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "child") == 0) {
        snprintf(g_url, sizeof g_url, "%s", argv[2]);
        return child_main(argv[3]);
    }
    snprintf(g_base, sizeof g_base, "/tmp/rv-test-state-handover-%d", (int)getpid());
    snprintf(g_url, sizeof g_url, "local:%s/log", g_base);
    RV_RUN(test_handover);
    return rv_test_finish();
}
