/*
 * bench_pipeline.c: throughput and memory of a JSON dataframe pipeline run by the application
 * runtime, on the embedded log and on a librdkafka mock cluster beside kcat's bare pipe.
 *
 * The pipeline is what users write with the public API: each telemetry record (a JSON object of
 * about 130 bytes) is parsed, kept when its "speed" is above SPEED_LIMIT (rv_df_filter_field),
 * given a field "speed_ms" computed by a C function (rv_df_set_field), serialised back to JSON
 * and produced to an output topic (rv_df_to_topic). The input is written before anything is
 * timed; a run's time goes from rv_app_run() until it returns, which is after the final
 * checkpoint flushed every output record (until_end: the run stops when every input partition
 * is read to its end).
 *
 * Each run happens in a fresh process: rivulet_bench executes itself (/proc/self/exe) with the
 * run described in environment variables, so the input generator, the mock cluster and the
 * checks of the parent never count in the pipeline's memory. The child reports its time, its
 * counters and its peak resident set (VmHWM of /proc/self/status, which is per address space:
 * ru_maxrss of a child would include the image it was forked from). Rows report the fastest of
 * RUNS runs. Self-checks after every run: the counters say every record came in and exactly the
 * expected ones went out, and reading the output topic back finds exactly those records (count,
 * sum of "seq", a correct "speed_ms" in each).
 *
 * On the mock cluster (librdkafka 2.0.2's, started in this process on loopback; it keeps about
 * 5 MiB per partition, so the input is sized to fit), the baseline is kcat's bare pipe on the
 * same cluster in the same run: `kcat -C ... -e -o beginning | kcat -P ...`, wall time until
 * both exit. The mock's consumer groups wait a fixed 3 s before their first rebalance, which a
 * kcat assign does not, so those rows time the processing from the first record the pipeline
 * saw to the end of the run and give the whole run in the notes. This file must never tune a
 * library setting to flatter a figure: runs use the defaults users get (app.threads and the
 * local fsync policy named in each row aside).
 *
 * For diagnosis only (figures taken so are not the suite's): RV_BENCH_PIPELINE_ONLY=local|mock
 * runs one half, RV_BENCH_PIPELINE_CONF="name=value;..." adds properties to every pipeline
 * process, RV_BENCH_PIPELINE_DEBUG=1 prints every library log line with a timestamp and, for
 * each run, the process's mappings at the moment its RSS peaked (sampled every millisecond),
 * RV_BENCH_WRAP=tool runs each pipeline process under `tool` (heaptrack, say).
 */

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rivulet/rivulet.h"

#include "bench.h"

#define SUITE "pipeline"

/* Input sizes: `local:` runs read LOCAL_RECORDS; mock runs MOCK_PER_PART per partition. */
#define LOCAL_RECORDS 2000000u
#define LOCAL_RECORDS_QUICK 100000u
#define MOCK_PER_PART 30000u /* about 4 MB of JSON: under the mock's 5 MiB per partition */
#define MOCK_PER_PART_QUICK 5000u
#define RUNS 3

/* The filter keeps records faster than this (speeds are uniform in 80..320: about half). */
#define SPEED_LIMIT 200.0

/* The targets. */
#define TARGET_LOCAL_RPS 2e6 /* records/s on `local:` with 2 worker threads */
#define TARGET_RSS_MIB 30.0  /* peak RSS of the process running the pipeline */

#define CHILD_ENV "RV_BENCH_PIPELINE_CHILD"
#define STALL_MS 20000

/* The mock's consumer groups: a session just over its fixed 3 s join wait, quick heartbeats,
 * short empty fetches (as tests/integration/test_kafka_contract.c explains). */
static const char *const mock_conf[] = {
    "kafka.session.timeout.ms=3100", "kafka.heartbeat.interval.ms=100",
    "kafka.fetch.wait.max.ms=100", "kafka.reconnect.backoff.max.ms=500", NULL};

/* ---- small helpers ----------------------------------------------------------------------- */

static uint64_t mix64(uint64_t z) {
    z += UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static unsigned lib_warnings;

static void on_log(void *opaque, rv_log_level_t level, const char *sub, const char *msg) {
    (void)opaque;
    if (getenv("RV_BENCH_PIPELINE_DEBUG")) { /* every line, for diagnosis */
        fprintf(stderr, "[pipeline %.3f] %s (%s): %s\n", rv_bench_now_ns() / 1e9,
                rv_log_level_name(level), sub, msg);
        return;
    }
    /* librdkafka warns that the consumer properties of mock_conf mean nothing to producers. */
    if (level <= RV_LOG_WARNING && !strstr(msg, "CONFWARN")) {
        lib_warnings++;
        rv_bench_log(SUITE, "library %s (%s): %s", rv_log_level_name(level), sub, msg);
    }
}

/* ---- the records ------------------------------------------------------------------------- */

/* The speed of record `seq`, in 80.00..319.99 km/h. */
static double speed_of(uint64_t seq) {
    return 80.0 + (double)(mix64(seq) % 24000u) / 100.0;
}

/* Writes record `seq` as JSON into buf (about 130 bytes); returns its length. */
static int record_json(char *buf, size_t size, uint64_t seq) {
    uint64_t r = mix64(seq ^ UINT64_C(0x5bd1e995));
    double speed = speed_of(seq);
    int gear = 1 + (int)(speed / 46.0);
    return snprintf(buf, size,
                    "{\"car\":\"car-%02u\",\"seq\":%" PRIu64 ",\"ts\":%" PRIu64
                    ",\"speed\":%.2f,\"rpm\":%u,\"gear\":%d,\"throttle\":%.1f,\"brake\":%.1f,"
                    "\"drs\":%s,\"lap\":%u}",
                    (unsigned)(seq % 20u) + 1u, seq, UINT64_C(1763900000000) + seq * 10u, speed,
                    6500u + (unsigned)(r % 5500u), gear, (double)(r >> 20 & 1023u) / 10.23,
                    (double)(r >> 32 & 127u) / 1.27, (r >> 40 & 1u) ? "true" : "false",
                    (unsigned)(seq / 5000u) + 1u);
}

/* What a data set's output must be: the records the filter keeps. */
typedef struct expect_s {
    uint64_t n;        /* input records */
    uint64_t kept;     /* records with speed > SPEED_LIMIT */
    uint64_t seq_sum;  /* sum of their seq */
    uint64_t in_bytes; /* bytes of input JSON */
} expect_t;

static void expect_init(expect_t *x, uint64_t n) {
    memset(x, 0, sizeof *x);
    x->n = n;
    char buf[256];
    for (uint64_t seq = 0; seq < n; seq++) {
        x->in_bytes += (uint64_t)record_json(buf, sizeof buf, seq);
        if (speed_of(seq) > SPEED_LIMIT) {
            x->kept++;
            x->seq_sum += seq;
        }
    }
}

static bool broker_conf_add(rv_conf_t *conf, const char *pair) {
    rv_error_t *err = NULL;
    if (rv_conf_set_pair(conf, pair, &err) != RV_OK) {
        rv_bench_fail(SUITE, "configuration %s: %s", pair, rv_error_message(err));
        rv_error_destroy(err);
        return false;
    }
    return true;
}

/* Opens `url` with the mock's settings when `mock`, the fsync policy `never` otherwise. */
static rv_broker_t *broker_open(const char *url, bool mock) {
    rv_conf_t *conf = rv_conf_new();
    bool ok = conf != NULL;
    if (mock) {
        for (size_t i = 0; ok && mock_conf[i]; i++) {
            ok = broker_conf_add(conf, mock_conf[i]);
        }
    } else {
        ok = ok && broker_conf_add(conf, "local.fsync.policy=never");
    }
    rv_error_t *err = NULL;
    rv_broker_opts_t o = {.conf = conf, .log_cb = on_log};
    rv_broker_t *b = ok ? rv_broker_open(url, &o, &err) : NULL;
    if (ok && !b) {
        rv_bench_fail(SUITE, "cannot open %s: %s", url, rv_error_message(err));
    }
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return b;
}

typedef struct reports_s {
    uint64_t ok;
    uint64_t failed;
} reports_t;

static void on_delivery(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    reports_t *r = opaque;
    (void)rec;
    (void)rec_opaque;
    if (err == RV_OK) {
        r->ok++;
    } else {
        r->failed++;
    }
}

/* Writes records 0..n-1 to `topic`, record seq to partition seq % parts (no key). */
static bool produce_input(rv_broker_t *b, const char *topic, int32_t parts, uint64_t n) {
    rv_error_t *err = NULL;
    reports_t reps = {0};
    rv_producer_opts_t po = {.delivery_cb = on_delivery, .opaque = &reps};
    rv_producer_t *p = rv_producer_new(b, &po, &err);
    if (!p) {
        rv_bench_fail(SUITE, "new producer: %s", rv_error_message(err));
        rv_error_destroy(err);
        return false;
    }
    char buf[256];
    rv_err_t rc = RV_OK;
    for (uint64_t seq = 0; seq < n && rc == RV_OK; seq++) {
        int len = record_json(buf, sizeof buf, seq);
        rv_record_t rec = {.topic = topic,
                           .partition = (int32_t)(seq % (uint64_t)parts),
                           .value = buf,
                           .value_len = (size_t)len};
        while ((rc = rv_producer_send(p, &rec, NULL)) == RV_ERR_AGAIN) {
            rv_producer_poll(p, 10);
        }
    }
    if (rc == RV_OK) {
        rc = rv_producer_flush(p, 120000, &err);
    }
    rv_producer_close(p);
    bool ok = rc == RV_OK && reps.ok == n && reps.failed == 0;
    if (!ok) {
        rv_bench_fail(SUITE, "writing the input to %s: %s %s; %" PRIu64 " of %" PRIu64 " stored",
                      topic, rv_err_name(rc), err ? rv_error_message(err) : "", reps.ok, n);
    }
    rv_error_destroy(err);
    return ok;
}

/* ---- the child: one run of the pipeline ------------------------------------------------- */

typedef struct child_s {
    _Atomic int64_t first_ns; /* when the first kept record reached set_field */
} child_t;

/* set_field: the speed in m/s, from the record's "speed" in km/h. */
static rv_value_t *speed_ms(rv_ctx_t *ctx, const rv_value_t *value, void *opaque) {
    child_t *c = opaque;
    if (atomic_load_explicit(&c->first_ns, memory_order_relaxed) == 0) {
        int64_t zero = 0;
        atomic_compare_exchange_strong(&c->first_ns, &zero, (int64_t)rv_bench_now_ns());
    }
    const rv_value_t *s = rv_value_get_cstr(value, "speed");
    if (rv_value_type(s) != RV_TYPE_DOUBLE && rv_value_type(s) != RV_TYPE_INT) {
        rv_ctx_fail(ctx, "speed is %s, not a number", rv_type_name(rv_value_type(s)));
        return NULL;
    }
    return rv_value_new_double(rv_ctx_arena(ctx), rv_value_double(s) / 3.6);
}

/*
 * Runs the pipeline described by the environment (RV_BP_URL, RV_BP_IN, RV_BP_OUT, RV_BP_PARTS,
 * RV_BP_THREADS, RV_BP_GROUP, RV_BP_MOCK) and writes one line of figures to RV_BP_RESULT.
 * Returns the process's exit status.
 */
static int child_main(void) {
    const char *url = getenv("RV_BP_URL"), *in = getenv("RV_BP_IN"), *out = getenv("RV_BP_OUT");
    const char *group = getenv("RV_BP_GROUP"), *result = getenv("RV_BP_RESULT");
    const char *threads = getenv("RV_BP_THREADS"), *parts = getenv("RV_BP_PARTS");
    bool mock = getenv("RV_BP_MOCK") != NULL;
    if (!url || !in || !out || !group || !result || !threads || !parts) {
        fprintf(stderr, "[pipeline] child: incomplete environment\n");
        return 2;
    }
    long start_kb = rv_bench_status_kb("VmHWM");
    bool sampling = getenv("RV_BENCH_PIPELINE_DEBUG") && rv_bench_rss_sampler_start();
    rv_error_t *err = NULL;
    rv_conf_t *conf = rv_conf_new();
    char *pair = rv_bench_strf("app.threads=%s", threads);
    bool ok =
        conf && broker_conf_add(conf, "auto.offset.reset=earliest") && broker_conf_add(conf, pair);
    free(pair);
    for (size_t i = 0; ok && mock && mock_conf[i]; i++) {
        ok = broker_conf_add(conf, mock_conf[i]);
    }
    if (ok && !mock) {
        ok = broker_conf_add(conf, "local.fsync.policy=never");
    }
    /* RV_BENCH_PIPELINE_CONF="name=value;...": extra properties, for diagnosis only. */
    char *extra =
        getenv("RV_BENCH_PIPELINE_CONF") ? strdup(getenv("RV_BENCH_PIPELINE_CONF")) : NULL;
    char *save = NULL;
    for (char *tok = extra ? strtok_r(extra, ";", &save) : NULL; ok && tok;
         tok = strtok_r(NULL, ";", &save)) {
        ok = broker_conf_add(conf, tok);
    }
    free(extra);
    rv_app_opts_t ao = {.broker_url = url, .group = group, .conf = conf, .log_cb = on_log};
    rv_app_t *app = ok ? rv_app_new(&ao, &err) : NULL;
    rv_conf_destroy(conf);
    if (!app) {
        fprintf(stderr, "[pipeline] child: rv_app_new: %s\n", err ? rv_error_message(err) : "");
        rv_error_destroy(err);
        return 1;
    }
    rv_topic_opts_t to = {.value_serde = "json", .partitions = atoi(parts)};
    rv_topic_t *tin = rv_app_topic(app, in, &to, &err);
    rv_topic_t *tout = tin ? rv_app_topic(app, out, &to, &err) : NULL;
    child_t c = {0};
    rv_arena_t *arena = rv_arena_new(0);
    rv_value_t *lim = arena ? rv_value_new_double(arena, SPEED_LIMIT) : NULL;
    rv_df_t *df = tout ? rv_app_dataframe(app, tin) : NULL;
    df = rv_df_filter_field(df, "speed", RV_CMP_GT, lim);
    df = rv_df_set_field(df, "speed_ms", speed_ms, &c);
    df = rv_df_to_topic(df, tout);
    rv_arena_destroy(arena);

    rv_bench_app_run_t run;
    if (!rv_bench_run_app(SUITE, app, df, sampling, &run)) {
        return 1;
    }
    const rv_app_metrics_t m = run.metrics;
    double t0 = run.t0_ns, t1 = run.t1_ns;
    long hwm_kb = run.hwm_kb;
    double first = (double)atomic_load(&c.first_ns);
    FILE *f = fopen(result, "w");
    if (!f) {
        return 1;
    }
    fprintf(f, "%.0f %.0f %ld %ld %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n",
            t1 - t0, first > t0 ? t1 - first : t1 - t0, hwm_kb, start_kb, m.records_in,
            m.records_out, m.records_filtered, m.errors, m.checkpoints);
    return fclose(f) == 0 ? 0 : 1;
}

/* ---- the parent: runs, checks, rows ----------------------------------------------------- */

/* What one run of the child measured. */
typedef struct run_s {
    double ns;        /* rv_app_run() to its return */
    double steady_ns; /* the first record processed to the return */
    double cpu_s;     /* the child's CPU time (user + system, all threads) */
    long hwm_kb;      /* the child's peak RSS */
    long start_kb;    /* its RSS high-water mark before the application existed */
    int64_t in, out, filtered, errors, checkpoints;
} run_t;

/* The best of a case's runs (by the figure the row reports). */
typedef struct best_s {
    run_t run;
    int runs;
    long max_hwm_kb; /* the largest peak RSS of all runs */
    int disturbed;   /* runs replaced because a rebalance made them process records twice */
} best_t;

static char *tmp_root;
static unsigned run_counter;

/* Executes this program as a child running the pipeline; fills *r. */
static bool spawn_child(const char *url, const char *in, const char *out, int32_t parts,
                        int threads, bool mock, run_t *r) {
    unsigned id = ++run_counter;
    char *result = rv_bench_strf("%s/result-%u", tmp_root, id);
    char *vars[] = {rv_bench_strf("%s=1", CHILD_ENV),
                    rv_bench_strf("RV_BP_URL=%s", url),
                    rv_bench_strf("RV_BP_IN=%s", in),
                    rv_bench_strf("RV_BP_OUT=%s", out),
                    rv_bench_strf("RV_BP_PARTS=%d", (int)parts),
                    rv_bench_strf("RV_BP_THREADS=%d", threads),
                    rv_bench_strf("RV_BP_GROUP=bench-pipeline-%u-%ld", id, (long)getpid()),
                    rv_bench_strf("RV_BP_RESULT=%s", result),
                    mock ? rv_bench_strf("RV_BP_MOCK=1") : NULL};
    size_t nvars = sizeof vars / sizeof vars[0];
    char **envp = rv_bench_child_env("RV_BP_", CHILD_ENV, vars, nvars);
    pid_t pid = 0;
    int se = envp ? rv_bench_spawn_self(&pid, SUITE, envp) : ENOMEM;
    bool ok = se == 0;
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    if (!ok) {
        rv_bench_fail(SUITE, "cannot start the pipeline process: %s", strerror(se));
    } else if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
               WEXITSTATUS(status) != 0) {
        rv_bench_fail(SUITE, "the pipeline process (%s -> %s, %d thread(s)) failed (status %d)", in,
                      out, threads, status);
        ok = false;
    }
    FILE *f = ok ? fopen(result, "r") : NULL;
    memset(r, 0, sizeof *r);
    if (ok &&
        (!f || fscanf(f, "%lf %lf %ld %ld %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64,
                      &r->ns, &r->steady_ns, &r->hwm_kb, &r->start_kb, &r->in, &r->out,
                      &r->filtered, &r->errors, &r->checkpoints) != 9)) {
        rv_bench_fail(SUITE, "the pipeline process left no figures in %s", result);
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

/* Reads topic `out` back from the beginning and checks it holds exactly the kept records. */
static bool check_output(rv_broker_t *b, const char *out, int32_t parts, const expect_t *x) {
    rv_error_t *err = NULL;
    rv_consumer_t *c = rv_consumer_new(b, NULL, &err);
    if (!c) {
        rv_bench_fail(SUITE, "new consumer: %s", rv_error_message(err));
        rv_error_destroy(err);
        return false;
    }
    rv_topic_partition_t tps[2];
    for (int32_t p = 0; p < parts; p++) {
        tps[p] = (rv_topic_partition_t){out, p, RV_OFFSET_BEGINNING};
    }
    rv_arena_t *arena = rv_arena_new(0);
    uint64_t count = 0, seq_sum = 0, bad = 0;
    rv_err_t rc = rv_consumer_assign(c, tps, (size_t)parts, &err);
    double last = rv_bench_now_ns();
    while (rc == RV_OK && count < x->kept) {
        const rv_record_t *recs;
        size_t n = 0;
        rc = rv_consumer_poll(c, &recs, 4096, &n, 200, &err);
        if (n == 0) {
            if (rv_bench_now_ns() - last > STALL_MS * 1e6) {
                break;
            }
            continue;
        }
        last = rv_bench_now_ns();
        rv_arena_reset(arena);
        for (size_t i = 0; i < n; i++) {
            rv_value_t *v = NULL;
            count++;
            if (rv_json_parse(arena, recs[i].value, recs[i].value_len, NULL, &v, NULL, NULL) !=
                RV_OK) {
                bad++;
                continue;
            }
            uint64_t seq = (uint64_t)rv_value_int(rv_value_get_cstr(v, "seq"));
            double speed = rv_value_double(rv_value_get_cstr(v, "speed"));
            double ms = rv_value_double(rv_value_get_cstr(v, "speed_ms"));
            /* The text "287.43" and 80 + 20743 / 100.0 may differ in the last bit. */
            if (fabs(speed - speed_of(seq)) > 1e-9 || !(speed > SPEED_LIMIT) ||
                fabs(ms - speed / 3.6) > 1e-12 * speed) {
                bad++;
            }
            seq_sum += seq;
        }
    }
    /* Nothing beyond the expected records: the watermarks say how many are stored. */
    int64_t stored = 0;
    for (int32_t p = 0; rc == RV_OK && p < parts; p++) {
        int64_t lo = 0, hi = 0;
        if (rv_broker_watermarks(b, out, p, &lo, &hi, NULL) == RV_OK) {
            stored += hi - lo;
        }
    }
    rv_arena_destroy(arena);
    rv_consumer_close(c);
    bool ok = rc == RV_OK && count == x->kept && seq_sum == x->seq_sum && bad == 0 &&
              stored == (int64_t)x->kept;
    if (!ok) {
        rv_bench_fail(SUITE,
                      "output topic %s: read %" PRIu64 " records (%" PRId64 " stored) of %" PRIu64
                      " expected, %" PRIu64 " wrong, seq sum %s%s%s",
                      out, count, stored, x->kept, bad, seq_sum == x->seq_sum ? "ok" : "DIFFERS",
                      rc != RV_OK ? ": " : "", rc != RV_OK ? rv_error_message(err) : "");
    }
    rv_error_destroy(err);
    return ok;
}

/* Checks a run's counters against the data set. */
static bool check_counters(const run_t *r, const expect_t *x, const char *what) {
    bool ok = r->in == (int64_t)x->n && r->out == (int64_t)x->kept &&
              r->filtered == (int64_t)(x->n - x->kept) && r->errors == 0;
    if (!ok) {
        rv_bench_fail(SUITE,
                      "%s: counters say %" PRId64 " in, %" PRId64 " out, %" PRId64
                      " filtered, %" PRId64 " errors; expected %" PRIu64 " in, %" PRIu64 " out",
                      what, r->in, r->out, r->filtered, r->errors, x->n, x->kept);
    }
    return ok;
}

/* Keeps the better run (by steady time on the mock, whole time on local:). */
static void best_add(best_t *b, const run_t *r, bool steady) {
    double t = steady ? r->steady_ns : r->ns;
    double bt = steady ? b->run.steady_ns : b->run.ns;
    if (b->runs == 0 || t < bt) {
        b->run = *r;
    }
    if (r->hwm_kb > b->max_hwm_kb) {
        b->max_hwm_kb = r->hwm_kb;
    }
    b->runs++;
}

/*
 * RUNS runs of one case; each writes a fresh output topic, checked and then deleted. A run that
 * processed records twice (at-least-once: its group rebalanced while a commit was refused, so a
 * partition was read again from its last commit) is not a measurement of the pipeline: it is
 * logged, counted in `disturbed` and replaced by another run, up to RUNS extra runs.
 */
static bool run_case(const char *url, rv_broker_t *b, const char *in, int32_t parts, int threads,
                     bool mock, const expect_t *x, best_t *best,
                     bool (*make_topic)(void *, const char *, int32_t), void *mk) {
    int runs = rv_bench_quick() ? 1 : RUNS;
    memset(best, 0, sizeof *best);
    for (int i = 0, attempts = 0; i < runs; attempts++) {
        char out[64];
        snprintf(out, sizeof out, "out-%dp-%dt-%u", (int)parts, threads, run_counter + 1);
        if (make_topic && !make_topic(mk, out, parts)) {
            rv_bench_fail(SUITE, "cannot create topic %s", out);
            return false;
        }
        run_t r;
        if (!spawn_child(url, in, out, parts, threads, mock, &r)) {
            return false;
        }
        char what[96];
        snprintf(what, sizeof what, "%s %dp %d thread(s) run %d", mock ? "mock" : "local",
                 (int)parts, threads, attempts + 1);
        if (r.in > (int64_t)x->n) {
            best->disturbed++;
            rv_bench_log(SUITE,
                         "%s: %" PRId64 " records processed for %" PRIu64 " in the topic: a "
                         "rebalance made the group read a partition again (see the warnings); "
                         "not a measurement%s",
                         what, r.in, x->n, attempts < 2 * runs ? ", running again" : "");
            if (!mock) {
                rv_broker_delete_topic(b, out, NULL);
            }
            if (attempts < 2 * runs) {
                continue;
            }
            rv_bench_fail(SUITE, "%s: every run was disturbed by rebalances", what);
            return false;
        }
        if (!check_counters(&r, x, what) || !check_output(b, out, parts, x)) {
            return false;
        }
        rv_bench_log(SUITE, "%s: %.3f s (%.3f s from the first record), %.2f CPU-s, %ld kB peak",
                     what, r.ns / 1e9, r.steady_ns / 1e9, r.cpu_s, r.hwm_kb);
        best_add(best, &r, mock);
        if (!mock) {
            rv_broker_delete_topic(b, out, NULL);
        }
        i++;
    }
    return true;
}

static void row(const char *name, double rps, double mbps, const char *baseline, double base_rps,
                double base_mbps, double target, const char *note) {
    rv_bench_row_t rw = {.suite = SUITE,
                         .name = name,
                         .value = rps,
                         .unit = "records/s",
                         .value2 = mbps,
                         .unit2 = "MB/s",
                         .baseline = baseline,
                         .baseline_value = base_rps,
                         .baseline_value2 = base_mbps,
                         .target = target,
                         .note = note};
    rv_bench_report(&rw);
}

/* "peak RSS 12.3 MiB (process start 5.1)" etc., for the notes. */
static void run_note(char *buf, size_t size, const best_t *b, const char *extra) {
    const run_t *r = &b->run;
    char disturbed[128] = "";
    if (b->disturbed) {
        snprintf(disturbed, sizeof disturbed,
                 "; %d more run(s) discarded: a group rebalance made them read a partition twice",
                 b->disturbed);
    }
    snprintf(buf, size,
             "%s%s%.2f cores busy (child CPU %.2f s over %.2f s run); peak RSS %.1f MiB (max of "
             "%d runs; VmHWM of the pipeline process, %.1f MiB before rv_app_new); "
             "%" PRId64 " checkpoints%s",
             extra ? extra : "", extra ? "; " : "", r->cpu_s / (r->ns / 1e9), r->cpu_s, r->ns / 1e9,
             (double)b->max_hwm_kb / 1024.0, b->runs, (double)r->start_kb / 1024.0, r->checkpoints,
             disturbed);
}

/* An RSS row: lower is better, the target as a limit. */
static void rss_row(const char *name, const best_t *b, const char *note) {
    rv_bench_row_t rw = {.suite = SUITE,
                         .name = name,
                         .value = (double)b->max_hwm_kb / 1024.0,
                         .unit = "MiB",
                         .baseline = "target limit",
                         .baseline_value = TARGET_RSS_MIB,
                         .lower_is_better = true,
                         .target = 1.0,
                         .note = note};
    rv_bench_report(&rw);
}

/* ---- local: ----------------------------------------------------------------------------- */

static void local_rows(void) {
    uint64_t n = rv_bench_quick() ? LOCAL_RECORDS_QUICK : LOCAL_RECORDS;
    expect_t x;
    expect_init(&x, n);
    char *dir = rv_bench_strf("%s/local", tmp_root);
    char *url = rv_bench_strf("local:%s", dir);
    rv_broker_t *b = broker_open(url, false);
    if (!b) {
        free(url);
        free(dir);
        return;
    }
    const char *inputs[2] = {"in-1p", "in-2p"};
    bool have[2] = {false, false};
    for (int k = 0; k < 2; k++) {
        rv_error_t *err = NULL;
        if (rv_broker_create_topic(b, inputs[k], k + 1, NULL, &err) != RV_OK) {
            rv_bench_fail(SUITE, "create %s: %s", inputs[k], rv_error_message(err));
            rv_error_destroy(err);
            continue;
        }
        double t0 = rv_bench_now_ns();
        have[k] = produce_input(b, inputs[k], k + 1, n);
        rv_bench_log(SUITE, "wrote %" PRIu64 " records (%.1f MB of JSON) to %s in %.2f s", n,
                     (double)x.in_bytes / 1e6, inputs[k], (rv_bench_now_ns() - t0) / 1e9);
    }
    best_t two_threads = {0};
    for (int k = 0; k < 2; k++) {
        int32_t parts = k + 1;
        for (int threads = 1; have[k] && threads <= 2; threads++) {
            best_t best;
            if (!run_case(url, b, inputs[k], parts, threads, false, &x, &best, NULL, NULL)) {
                continue;
            }
            char name[96], note[900], extra[160];
            snprintf(name, sizeof name, "local: %dp, app.threads %d", (int)parts, threads);
            double rps = (double)n * 1e9 / best.run.ns;
            double mbps = (double)x.in_bytes * 1e3 / best.run.ns;
            snprintf(extra, sizeof extra,
                     "fsync never; %" PRIu64 " in, %" PRIu64 " out; time from rv_app_run() to "
                     "its return (output flushed)",
                     x.n, x.kept);
            run_note(note, sizeof note, &best, extra);
            if (parts == 2 && threads == 2) {
                row(name, rps, mbps, "target rate", TARGET_LOCAL_RPS,
                    TARGET_LOCAL_RPS * (double)x.in_bytes / (double)n / 1e6, 1.0, note);
                two_threads = best;
            } else {
                row(name, rps, mbps, NULL, 0, 0, 0, note);
            }
        }
    }
    if (two_threads.runs) {
        rss_row("local: 2p, app.threads 2: peak RSS", &two_threads,
                "VmHWM of the process that ran only the pipeline (started by exec, so neither the "
                "input generator nor the checks count)");
    }
    rv_broker_close(b);
    rv_bench_rm_tree(dir);
    free(url);
    free(dir);
}

/* ---- the mock cluster and kcat ---------------------------------------------------------- */

static void quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static bool mock_topic(void *opaque, const char *topic, int32_t parts) {
    return rd_kafka_mock_topic_create(opaque, topic, parts, 1) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Seconds of wall time of a shell command; -1 when it failed. */
static double shell_seconds(const char *cmd) {
    double t0 = rv_bench_now_ns();
    int status = system(cmd);
    double secs = (rv_bench_now_ns() - t0) / 1e9;
    if (status != 0) {
        rv_bench_log(SUITE, "`%s` failed (status %d)", cmd, status);
        return -1;
    }
    return secs;
}

/* The best of RUNS kcat pipes from `in` to fresh topics; checks each copy's record count. */
static double kcat_case(rd_kafka_mock_cluster_t *mock, rv_broker_t *b, const char *bootstraps,
                        const char *in, int32_t parts, uint64_t n) {
    int runs = rv_bench_quick() ? 1 : RUNS;
    double best = 0;
    for (int i = 0; i < runs; i++) {
        char out[64];
        snprintf(out, sizeof out, "kcat-%dp-%d", (int)parts, i);
        if (!mock_topic(mock, out, parts)) {
            rv_bench_fail(SUITE, "cannot create topic %s", out);
            return 0;
        }
        char *cmd = rv_bench_strf("kcat -C -b %s -t %s -e -o beginning -q | kcat -P -b %s -t %s", bootstraps,
                         in, bootstraps, out);
        double secs = shell_seconds(cmd);
        free(cmd);
        if (secs < 0) {
            return 0;
        }
        /* The high watermarks count what was appended: the mock may already have dropped the
         * oldest batches of a partition past its 5 MiB (kcat's small batches weigh more). */
        int64_t stored = 0;
        for (int32_t p = 0; p < parts; p++) {
            int64_t lo = 0, hi = 0;
            if (rv_broker_watermarks(b, out, p, &lo, &hi, NULL) == RV_OK) {
                stored += hi;
            }
        }
        if (stored != (int64_t)n) {
            /* Say whether the reading side or the writing side lost them. */
            char *count = rv_bench_strf("kcat -C -b %s -t %s -e -o beginning -q | wc -l", bootstraps, in);
            FILE *p = popen(count, "r");
            long read = -1;
            if (p && fscanf(p, "%ld", &read) != 1) {
                read = -1;
            }
            if (p) {
                pclose(p);
            }
            free(count);
            rv_bench_fail(SUITE,
                          "kcat copied %" PRId64 " of %" PRIu64 " records to %s (kcat -C alone "
                          "reads %ld lines of %s)",
                          stored, n, out, read, in);
            return 0;
        }
        rv_bench_log(SUITE, "kcat pipe %dp run %d: %.3f s", (int)parts, i + 1, secs);
        if (best == 0 || secs < best) {
            best = secs;
        }
    }
    return best;
}

static void mock_rows(void) {
    if (system("kcat -V >/dev/null 2>&1") != 0) {
        rv_bench_log(SUITE, "kcat is not installed: the mock rows have no baseline");
    }
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, quiet);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!rk) {
        rv_bench_fail(SUITE, "cannot create the mock cluster's handle: %s", why);
        rd_kafka_conf_destroy(conf);
        return;
    }
    rd_kafka_mock_cluster_t *mock = rd_kafka_mock_cluster_new(rk, 1);
    if (!mock) {
        rv_bench_fail(SUITE, "cannot start the mock cluster");
        rd_kafka_destroy(rk);
        return;
    }
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mock);
    char *url = rv_bench_strf("kafka://%s", bootstraps);
    rv_broker_t *b = broker_open(url, true);
    uint64_t per = rv_bench_quick() ? MOCK_PER_PART_QUICK : MOCK_PER_PART;
    for (int32_t parts = 1; b && parts <= 2; parts++) {
        uint64_t n = per * (uint64_t)parts;
        expect_t x;
        expect_init(&x, n);
        char in[32];
        snprintf(in, sizeof in, "in-%dp", (int)parts);
        if (!mock_topic(mock, in, parts) || !produce_input(b, in, parts, n)) {
            rv_bench_fail(SUITE, "cannot write the input topic %s on the mock", in);
            continue;
        }
        double kcat_s = kcat_case(mock, b, bootstraps, in, parts, n);
        best_t best;
        if (!run_case(url, b, in, parts, parts, true, &x, &best, mock_topic, mock)) {
            continue;
        }
        char name[96], note[1000], extra[300];
        snprintf(name, sizeof name, "mock cluster: %dp, app.threads %d", (int)parts, parts);
        double rps = (double)n * 1e9 / best.run.steady_ns;
        double mbps = (double)x.in_bytes * 1e3 / best.run.steady_ns;
        snprintf(extra, sizeof extra,
                 "%" PRIu64 " in, %" PRIu64 " out; timed from the first record processed to the "
                 "end of the run; the whole run (with the mock group's fixed 3 s join) took "
                 "%.2f s: %.0f records/s",
                 x.n, x.kept, best.run.ns / 1e9, (double)n * 1e9 / best.run.ns);
        run_note(note, sizeof note, &best, extra);
        row(name, rps, mbps, kcat_s > 0 ? "kcat -C | kcat -P" : NULL,
            kcat_s > 0 ? (double)n / kcat_s : 0, kcat_s > 0 ? (double)x.in_bytes / kcat_s / 1e6 : 0,
            kcat_s > 0 ? 1.0 : 0, note);
        if (parts == 2) {
            rss_row("mock cluster: 2p, app.threads 2: peak RSS", &best,
                    "VmHWM of the process that ran only the pipeline; 2 workers, each with a "
                    "librdkafka consumer and producer, plus the broker's admin client");
        }
    }
    rv_broker_close(b);
    free(url);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(rk);
}

/* ---- the suite --------------------------------------------------------------------------- */

void rv_bench_suite_pipeline(void) {
    if (getenv(CHILD_ENV)) {
        int status = child_main();
        fflush(stdout);
        fflush(stderr);
        _exit(status);
    }
    const char *tmp = getenv("TMPDIR");
    char *tmpl = rv_bench_strf("%s/rv-bench-pipeline-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpl)) {
        rv_bench_fail(SUITE, "cannot create a directory %s: %s", tmpl, strerror(errno));
        free(tmpl);
        return;
    }
    tmp_root = tmpl;
    const char *only = getenv("RV_BENCH_PIPELINE_ONLY"); /* "local" or "mock", for diagnosis */
    if (!only || strcmp(only, "local") == 0) {
        local_rows();
    }
    if (!only || strcmp(only, "mock") == 0) {
        mock_rows();
    }
    rv_bench_context(
        "pipeline: each JSON record (about 130 bytes of car telemetry, no key) is parsed, kept "
        "when speed > %.0f (rv_df_filter_field: about half), given speed_ms (rv_df_set_field, a C "
        "function), written as JSON and produced to an output topic of as many partitions; the "
        "input is written before the run; each run is a fresh process (this program, executed "
        "again) whose figures are rv_app_run() to its return, after the last output record "
        "was flushed; MB/s counts input JSON; the fastest of %d runs; every run's output is "
        "read back and checked",
        SPEED_LIMIT, rv_bench_quick() ? 1 : RUNS);
    rv_bench_context(
        "pipeline: mock rows run on librdkafka %s's mock cluster (1 broker, in the benchmark's "
        "process, loopback TCP) with %u records per partition (it keeps about 5 MiB per "
        "partition); kcat's baseline is `kcat -C -b B -t in -e -o beginning -q | kcat -P -b B "
        "-t out` on the same cluster, wall time",
        rd_kafka_version_str(), rv_bench_quick() ? MOCK_PER_PART_QUICK : MOCK_PER_PART);
    if (lib_warnings) {
        rv_bench_context("pipeline: the library logged %u warning(s) or error(s), see stderr",
                         lib_warnings);
    }
    rv_bench_rm_tree(tmp_root);
    free(tmp_root);
    tmp_root = NULL;
}
