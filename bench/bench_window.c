/*
 * bench_window.c: throughput and memory of windowed aggregations run by the application runtime
 * on the embedded log, with the windows in RocksDB state stores.
 *
 * The case is the issue's: a 1-second tumbling window per key over 20 keys, computing the mean of
 * a field (and, in a second case, five aggregations at once: count, sum, mean, min, max), on
 * `local:` with two worker threads and two input partitions (each key's records in one
 * partition). Event time advances 1 ms per record, so each key gets 50 records per window. A
 * last record per partition far in the future closes every window of the 20 keys. The input is
 * written before anything is timed; a run's time goes from rv_app_run() until it returns, after
 * the final checkpoint (state committed, outputs flushed).
 *
 * Each run happens in a fresh process (this program executed again with the run described in
 * environment variables, as bench_pipeline.c does), so neither the input generator nor the
 * checks count in its peak RSS (VmHWM). Self-checks after every run: reading the output back
 * finds exactly one record per (key, window) with the mean (and count, sum, min, max) the parent
 * computed from the input. A third row times the window logic alone (src/stream/window.c over
 * the in-memory store, no broker, no RocksDB), to show what the operator itself costs. This file
 * must never tune a setting to flatter a figure.
 *
 * For diagnosis only: RV_BENCH_WINDOW_DEBUG=1 prints each child's mappings at its RSS peak,
 * RV_BENCH_WRAP=tool runs each child under `tool` (heaptrack, say).
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rivulet/rivulet.h"
#include "stream/window_int.h"

#include "bench.h"

#define SUITE "window"
#define KEYS 20
#define PARTS 2
#define RECORDS 2000000u
#define RECORDS_QUICK 100000u
#define WINDOW_MS 1000
#define BASE_TS INT64_C(1763900000000)
#define RUNS 3
#define TARGET_RPS 1e6
#define CHILD_ENV "RV_BENCH_WINDOW_CHILD"

/* Record i: key i % KEYS, timestamp BASE_TS + i, value v(i) in 0..999. */
static int64_t v_of(uint64_t i) {
    uint64_t z = i * UINT64_C(0x9e3779b97f4a7c15);
    z ^= z >> 29;
    return (int64_t)(z % 1000);
}

static const rv_agg_t mean_only[] = {{.name = "mean", .kind = RV_AGG_MEAN, .field = "v"}};
static const rv_agg_t five[] = {{.name = "count", .kind = RV_AGG_COUNT},
                                {.name = "sum", .kind = RV_AGG_SUM, .field = "v"},
                                {.name = "mean", .kind = RV_AGG_MEAN, .field = "v"},
                                {.name = "min", .kind = RV_AGG_MIN, .field = "v"},
                                {.name = "max", .kind = RV_AGG_MAX, .field = "v"}};

/* ---- the child ----------------------------------------------------------------------------- */

static int child_main(void) {
    const char *url = getenv("RV_BW_URL"), *in = getenv("RV_BW_IN"), *out = getenv("RV_BW_OUT");
    const char *group = getenv("RV_BW_GROUP"), *result = getenv("RV_BW_RESULT");
    const char *state = getenv("RV_BW_STATE");
    bool five_aggs = getenv("RV_BW_FIVE") != NULL;
    if (!url || !in || !out || !group || !result || !state) {
        fprintf(stderr, "[window] child: incomplete environment\n");
        return 2;
    }
    long start_kb = rv_bench_status_kb("VmHWM");
    bool sampling = getenv("RV_BENCH_WINDOW_DEBUG") && rv_bench_rss_sampler_start();
    rv_error_t *err = NULL;
    rv_conf_t *conf = rv_conf_new();
    bool ok = conf && rv_conf_set(conf, "auto.offset.reset", "earliest", NULL) == RV_OK &&
              rv_conf_set(conf, "app.threads", "2", NULL) == RV_OK &&
              rv_conf_set(conf, "local.fsync.policy", "never", NULL) == RV_OK &&
              rv_conf_set(conf, "state.dir", state, NULL) == RV_OK;
    rv_app_opts_t ao = {.broker_url = url, .group = group, .conf = conf};
    rv_app_t *app = ok ? rv_app_new(&ao, &err) : NULL;
    rv_conf_destroy(conf);
    if (!app) {
        fprintf(stderr, "[window] child: rv_app_new: %s\n", err ? rv_error_message(err) : "");
        rv_error_destroy(err);
        return 1;
    }
    rv_topic_opts_t to = {.key_serde = "string", .value_serde = "json", .partitions = PARTS};
    rv_topic_t *tin = rv_app_topic(app, in, &to, &err);
    rv_topic_t *tout = tin ? rv_app_topic(app, out, &to, &err) : NULL;
    rv_window_opts_t wo = {.name = "mean1s", .type = RV_WINDOW_TUMBLING, .size = WINDOW_MS};
    rv_df_t *df = tout ? rv_app_dataframe(app, tin) : NULL;
    df = rv_df_window(df, &wo, five_aggs ? five : mean_only, five_aggs ? 5 : 1);
    df = rv_df_to_topic(df, tout);
    rv_bench_app_run_t run;
    if (!rv_bench_run_app(SUITE, app, df, sampling, &run)) {
        return 1;
    }
    const rv_app_metrics_t m = run.metrics;
    double t0 = run.t0_ns, t1 = run.t1_ns;
    long hwm_kb = run.hwm_kb;
    FILE *f = fopen(result, "w");
    if (!f) {
        return 1;
    }
    fprintf(f, "%.0f %ld %ld %" PRId64 " %" PRId64 " %" PRId64 "\n", t1 - t0, hwm_kb, start_kb,
            m.records_in, m.records_out, m.checkpoints);
    return fclose(f) == 0 ? 0 : 1;
}

/* ---- the parent ---------------------------------------------------------------------------- */

typedef struct run_s {
    double ns;
    double cpu_s;
    long hwm_kb, start_kb;
    int64_t in, out, checkpoints;
} run_t;

static char *tmp_root;
static unsigned run_counter;

static bool spawn_child(const char *url, const char *in, const char *out, bool five_aggs,
                        run_t *r) {
    unsigned id = ++run_counter;
    char *result = rv_bench_strf("%s/result-%u", tmp_root, id);
    char *vars[] = {rv_bench_strf("%s=1", CHILD_ENV),
                    rv_bench_strf("RV_BW_URL=%s", url),
                    rv_bench_strf("RV_BW_IN=%s", in),
                    rv_bench_strf("RV_BW_OUT=%s", out),
                    rv_bench_strf("RV_BW_GROUP=bench-window-%u-%ld", id, (long)getpid()),
                    rv_bench_strf("RV_BW_STATE=%s/state-%u", tmp_root, id),
                    rv_bench_strf("RV_BW_RESULT=%s", result),
                    five_aggs ? rv_bench_strf("RV_BW_FIVE=1") : NULL};
    size_t nvars = sizeof vars / sizeof vars[0];
    char **envp = rv_bench_child_env("RV_BW_", CHILD_ENV, vars, nvars);
    pid_t pid = 0;
    int se = envp ? rv_bench_spawn_self(&pid, SUITE, envp) : ENOMEM;
    bool ok = se == 0;
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    if (!ok) {
        rv_bench_fail(SUITE, "cannot start the window process: %s", strerror(se));
    } else if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
               WEXITSTATUS(status) != 0) {
        rv_bench_fail(SUITE, "the window process failed (status %d)", status);
        ok = false;
    }
    FILE *f = ok ? fopen(result, "r") : NULL;
    memset(r, 0, sizeof *r);
    if (ok && (!f || fscanf(f, "%lf %ld %ld %" SCNd64 " %" SCNd64 " %" SCNd64, &r->ns, &r->hwm_kb,
                            &r->start_kb, &r->in, &r->out, &r->checkpoints) != 6)) {
        rv_bench_fail(SUITE, "the window process left no figures in %s", result);
        ok = false;
    }
    if (f) {
        fclose(f);
    }
    r->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    unlink(result);
    free(result);
    for (size_t i = 0; i < nvars; i++) {
        free(vars[i]);
    }
    free(envp);
    return ok;
}

/* Writes the input: record i to key i % KEYS in partition (i % KEYS) % PARTS, then a closing
 * record per partition. */
static bool produce_input(rv_broker_t *b, const char *topic, uint64_t n) {
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(b, NULL, &err);
    if (!p) {
        rv_bench_fail(SUITE, "new producer: %s", rv_error_message(err));
        rv_error_destroy(err);
        return false;
    }
    char key[16], val[64];
    rv_err_t rc = RV_OK;
    for (uint64_t i = 0; i < n + PARTS && rc == RV_OK; i++) {
        bool closing = i >= n;
        int kk = (int)(i % KEYS);
        snprintf(key, sizeof key, closing ? "zz" : "key-%02d", kk);
        int vl = snprintf(val, sizeof val, "{\"v\":%" PRId64 ",\"unit\":\"kPa\"}", v_of(i));
        rv_record_t rec = {.topic = topic,
                           .partition = closing ? (int32_t)(i - n) : kk % PARTS,
                           .timestamp_ms =
                               closing ? BASE_TS + (int64_t)n + 100000 : BASE_TS + (int64_t)i,
                           .key = key,
                           .key_len = strlen(key),
                           .value = val,
                           .value_len = (size_t)vl};
        while ((rc = rv_producer_send(p, &rec, NULL)) == RV_ERR_AGAIN) {
            rv_producer_poll(p, 10);
        }
    }
    if (rc == RV_OK) {
        rc = rv_producer_flush(p, 120000, &err);
    }
    rv_producer_close(p);
    if (rc != RV_OK) {
        rv_bench_fail(SUITE, "writing the input: %s %s", rv_err_name(rc),
                      err ? rv_error_message(err) : "");
    }
    rv_error_destroy(err);
    return rc == RV_OK;
}

/* Per (key, window): what the output must say. */
typedef struct expect_s {
    int64_t count, sum, min, max;
    bool seen;
} expect_t;

/* Reads the output back and checks every window against the input. */
static bool check_output(rv_broker_t *b, const char *out, uint64_t n, bool five_aggs) {
    size_t nw = (size_t)(n / WINDOW_MS + 2);
    expect_t *x = calloc(KEYS * nw, sizeof *x);
    if (!x) {
        return false;
    }
    for (uint64_t i = 0; i < n; i++) {
        expect_t *e = &x[(i % KEYS) * nw + (size_t)(((uint64_t)BASE_TS + i) / WINDOW_MS -
                                                    (uint64_t)BASE_TS / WINDOW_MS)];
        int64_t v = v_of(i);
        e->min = e->count == 0 || v < e->min ? v : e->min;
        e->max = e->count == 0 || v > e->max ? v : e->max;
        e->count++;
        e->sum += v;
    }
    size_t want = 0;
    for (size_t i = 0; i < KEYS * nw; i++) {
        want += x[i].count > 0;
    }
    rv_error_t *err = NULL;
    rv_consumer_t *c = rv_consumer_new(b, NULL, &err);
    rv_topic_partition_t tps[PARTS];
    int64_t total = 0;
    for (int32_t p = 0; c && p < PARTS; p++) {
        int64_t lo = 0, hi = 0;
        rv_broker_watermarks(b, out, p, &lo, &hi, NULL);
        total += hi - lo;
        tps[p] = (rv_topic_partition_t){out, p, RV_OFFSET_BEGINNING};
    }
    bool ok = c && rv_consumer_assign(c, tps, PARTS, NULL) == RV_OK;
    rv_arena_t *a = rv_arena_new(1 << 16);
    int64_t got = 0, bad = 0, end = (int64_t)(rv_bench_now_ns() / 1e6) + 30000;
    while (ok && got < total && (int64_t)(rv_bench_now_ns() / 1e6) < end) {
        const rv_record_t *rs;
        size_t k = 0;
        if (rv_consumer_poll(c, &rs, 512, &k, 50, NULL) != RV_OK) {
            break;
        }
        rv_arena_reset(a);
        for (size_t i = 0; i < k; i++, got++) {
            rv_value_t *v = NULL;
            int kk = -1;
            if (rs[i].key_len == 6 && sscanf((const char *)rs[i].key + 4, "%2d", &kk) != 1) {
                kk = -1;
            }
            if (kk < 0 || kk >= KEYS ||
                rv_json_parse(a, rs[i].value, rs[i].value_len, NULL, &v, NULL, NULL) != RV_OK) {
                bad++;
                continue;
            }
            int64_t start = rv_value_int(rv_value_get_cstr(v, "start"));
            size_t w = (size_t)((start - BASE_TS / WINDOW_MS * WINDOW_MS) / WINDOW_MS);
            expect_t *e = w < nw ? &x[(size_t)kk * nw + w] : NULL;
            double mean = rv_value_double(rv_value_get_cstr(v, "mean"));
            if (!e || e->seen || e->count == 0 ||
                fabs(mean - (double)e->sum / (double)e->count) > 1e-9 * fabs(mean) + 1e-12 ||
                rs[i].timestamp_ms != start + WINDOW_MS - 1 ||
                (five_aggs && (rv_value_int(rv_value_get_cstr(v, "count")) != e->count ||
                               rv_value_int(rv_value_get_cstr(v, "sum")) != e->sum ||
                               rv_value_int(rv_value_get_cstr(v, "min")) != e->min ||
                               rv_value_int(rv_value_get_cstr(v, "max")) != e->max))) {
                bad++;
                continue;
            }
            e->seen = true;
        }
    }
    rv_arena_destroy(a);
    rv_consumer_close(c);
    rv_error_destroy(err);
    free(x);
    if (got != (int64_t)want || total != (int64_t)want || bad) {
        rv_bench_fail(SUITE,
                      "output %s: %" PRId64 " windows read of %" PRId64 " (expected %zu), "
                      "%" PRId64 " wrong",
                      out, got, total, want, bad);
        return false;
    }
    return true;
}

static void rows_for(const char *url, rv_broker_t *b, const char *in, uint64_t n, bool five_aggs) {
    run_t best = {0};
    long max_hwm = 0;
    int runs = rv_bench_quick() ? 1 : RUNS;
    for (int r = 0; r < runs; r++) {
        char *out = rv_bench_strf("out-%s-%d", five_aggs ? "five" : "mean", r);
        run_t run;
        if (spawn_child(url, in, out, five_aggs, &run) && check_output(b, out, n, five_aggs)) {
            if (!best.ns || run.ns < best.ns) {
                best = run;
            }
            max_hwm = run.hwm_kb > max_hwm ? run.hwm_kb : max_hwm;
        }
        free(out);
    }
    if (!best.ns) {
        return;
    }
    char name[128], note[512];
    snprintf(name, sizeof name, "tumbling 1 s, %s, 20 keys, local: 2p, app.threads 2",
             five_aggs ? "count+sum+mean+min+max" : "mean");
    snprintf(note, sizeof note,
             "%" PRIu64 " records (+2 closing), RocksDB state, fsync never; %.2f cores busy "
             "(CPU %.2f s over %.2f s); peak RSS %.1f MiB (max of %d runs; %.1f MiB before "
             "rv_app_new); %" PRId64 " windows out; %" PRId64 " checkpoints",
             n, best.cpu_s / (best.ns / 1e9), best.cpu_s, best.ns / 1e9, (double)max_hwm / 1024.0,
             runs, (double)best.start_kb / 1024.0, best.out, best.checkpoints);
    rv_bench_row_t rw = {.suite = SUITE,
                         .name = name,
                         .value = (double)(n + PARTS) * 1e9 / best.ns,
                         .unit = "records/s",
                         .baseline = "target rate",
                         .baseline_value = TARGET_RPS,
                         .target = 1.0,
                         .note = note};
    rv_bench_report(&rw);
    char rss_name[160];
    snprintf(rss_name, sizeof rss_name, "%s: peak RSS", name);
    rv_bench_row_t rr = {.suite = SUITE,
                         .name = rss_name,
                         .value = (double)max_hwm / 1024.0,
                         .unit = "MiB",
                         .lower_is_better = true,
                         .note = "VmHWM of the process that ran only the application (started by "
                                 "exec: neither the input generator nor the checks count)"};
    rv_bench_report(&rr);
}

/* ---- the window logic alone ---------------------------------------------------------------- */

typedef struct pure_s {
    rv__window_t w;
    rv__wpart_t part;
    rv__memstore_t *m;
    rv_arena_t *arena;
    struct rv_ctx_s ctx;
    rv_value_t *keys[KEYS];
    uint64_t i, emitted;
} pure_t;

static rv_err_t pure_emit(void *arg, rv_ctx_t *ctx, const char *key, size_t klen, int64_t start,
                          int64_t end, rv_value_t *value) {
    ((pure_t *)arg)->emitted++;
    return RV_OK;
}

static int pure_op(void *arg) {
    pure_t *p = arg;
    uint64_t i = p->i++;
    if (i % 1024 == 0) {
        rv_arena_reset(p->arena);
    }
    rv_value_t *v = rv_value_new_object(p->arena, 1);
    rv_value_set(p->arena, v, "v", 1, rv_value_new_int(p->arena, v_of(i)));
    return rv__window_process(&p->w, &p->part, &p->ctx, p->keys[i % KEYS], v, BASE_TS + (int64_t)i,
                              (int64_t)i, 0, pure_emit, p) != RV_OK;
}

static void pure_row(bool five_aggs) {
    pure_t p = {0};
    char why[256];
    rv_arena_t *ga = rv_arena_new(1024);
    p.w.opts = (rv_window_opts_t){.name = "w", .type = RV_WINDOW_TUMBLING, .size = WINDOW_MS};
    if (rv__aggset_build(&p.w.aggs, ga, five_aggs ? five : mean_only, five_aggs ? 5 : 1, why,
                         sizeof why) != RV_OK) {
        rv_bench_fail(SUITE, "%s", why);
        rv_arena_destroy(ga);
        return;
    }
    p.m = rv__memstore_new();
    p.arena = rv_arena_new(1 << 16);
    p.ctx.arena = p.arena;
    for (int k = 0; k < KEYS; k++) {
        char key[16];
        snprintf(key, sizeof key, "key-%02d", k);
        p.keys[k] = rv_value_new_string(ga, key, strlen(key));
    }
    rv__wpart_init(&p.part, &p.w, (rv__wstore_t){&rv__memstore_ops, p.m});
    rv_bench_timing_t t = rv_bench_time(pure_op, &p, NULL);
    if (t.failures) {
        rv_bench_fail(SUITE, "the window logic failed %" PRIu64 " times: %s", t.failures,
                      p.ctx.fail_msg);
    }
    char name[128];
    snprintf(name, sizeof name, "window logic alone (%s), in-memory store, 1 thread",
             five_aggs ? "five aggregations" : "mean");
    rv_bench_row_t rw = {.suite = SUITE,
                         .name = name,
                         .value = rv_bench_rate(&t, 1),
                         .unit = "records/s",
                         .note = "src/stream/window.c over the in-memory map of window_store.c: "
                                 "no broker, no serialisers, no RocksDB"};
    rv_bench_report(&rw);
    rv__wpart_free(&p.part, &p.w);
    rv__memstore_destroy(p.m);
    rv_arena_destroy(p.arena);
    rv_arena_destroy(ga);
}

void rv_bench_suite_window(void) {
    if (getenv(CHILD_ENV)) {
        int status = child_main();
        fflush(stdout);
        fflush(stderr);
        _exit(status);
    }
    const char *tmp = getenv("TMPDIR");
    char *root = rv_bench_strf("%s/rv-bench-window-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!root || !mkdtemp(root)) {
        rv_bench_fail(SUITE, "cannot create a temporary directory: %s", strerror(errno));
        free(root);
        return;
    }
    tmp_root = root;
    uint64_t n = rv_bench_quick() ? RECORDS_QUICK : RECORDS;
    char *url = rv_bench_strf("local:%s/log", tmp_root);
    rv_error_t *err = NULL;
    rv_broker_t *b = rv_broker_open(url, NULL, &err);
    if (!b) {
        rv_bench_fail(SUITE, "open %s: %s", url, rv_error_message(err));
    } else if (rv_broker_create_topic(b, "in", PARTS, NULL, &err) != RV_OK) {
        rv_bench_fail(SUITE, "create the input: %s", rv_error_message(err));
    } else {
        double t0 = rv_bench_now_ns();
        if (produce_input(b, "in", n)) {
            rv_bench_log(SUITE, "wrote %" PRIu64 " records in %.2f s", n,
                         (rv_bench_now_ns() - t0) / 1e9);
            rows_for(url, b, "in", n, false);
            rows_for(url, b, "in", n, true);
        }
    }
    rv_error_destroy(err);
    rv_broker_close(b);
    pure_row(false);
    pure_row(true);
    rv_bench_context("window: record i has key key-(i %% 20) (10 keys per partition), event time "
                     "base + i ms and a JSON value {\"v\": 0..999, \"unit\": \"kPa\"}; windows "
                     "emit once, when closed (final); every run's output is read back and "
                     "checked window by window");
    rv_bench_rm_tree(tmp_root);
    free(tmp_root);
    tmp_root = NULL;
    free(url);
}
