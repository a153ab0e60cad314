/*
 * bench.h: the benchmark harness every bench/bench_*.c file uses.
 *
 * `rivulet_bench` is one executable: bench_main.c parses the command line, runs the suites
 * (all of them, or those named), and prints every reported row as one Markdown table followed
 * by the machine it ran on. A suite is a `void rv_bench_suite_<name>(void)` function in its own
 * bench_<name>.c, listed once in RV_BENCH_SUITES below. Inside, a suite times its operations
 * with rv_bench_time(), reports one row per case with rv_bench_report() (rivulet's figure, the
 * baseline's figure, their ratio and an optional target) and records failed self-checks with
 * rv_bench_fail(), which makes the run exit non-zero. Progress goes to stderr, the table to
 * stdout. The harness never decides what a figure means: that is the suite's business.
 */
#ifndef RV_BENCH_H
#define RV_BENCH_H

#include <stdbool.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include "rivulet/rivulet.h"

#if defined(__GNUC__)
#define RV_BENCH_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define RV_BENCH_PRINTF(fmt, args)
#endif

/*
 * The suites, in the order they run: X(name, description). To add one, write
 * bench/bench_<name>.c defining `void rv_bench_suite_<name>(void)` and add a line here; the
 * name is what `rivulet_bench <name>` selects.
 */
#define RV_BENCH_SUITES(X)                                                                         \
    X(json, "JSON parse and write throughput: rivulet vs jansson vs json-c")                       \
    X(log, "embedded log append and read throughput, beside memcpy and dd")                        \
    X(kafka, "kafka:// produce, consume and consume-produce on a mock cluster, beside kcat")       \
    X(pipeline, "a JSON dataframe pipeline on local: and a Kafka mock, beside kcat's pipe")      \
    X(window, "1 s tumbling aggregations per key with RocksDB state on local:")               \
    X(telemetry, "telemetry frames: protobuf encode and decode, beside protobuf-c")             \
    X(timeseries, "resampling 1 kHz channels to 10 Hz beside a naive loop; the frame buffer")

#define RV__BENCH_DECLARE(name, description) void rv_bench_suite_##name(void);
RV_BENCH_SUITES(RV__BENCH_DECLARE)
#undef RV__BENCH_DECLARE

/* ---- timing ------------------------------------------------------------------------------ */

/* Monotonic time in nanoseconds. */
double rv_bench_now_ns(void);

/* One operation to time: returns 0, or non-zero when it failed (counted, never hidden). */
typedef int (*rv_bench_op_fn)(void *ctx);

/*
 * How rv_bench_time() runs an operation; zero-initialise and set what you need. With `iters`
 * set, every repetition runs exactly that many operations, so two libraries given the same
 * options do the same work; otherwise each repetition runs until `min_ms` have elapsed.
 */
typedef struct rv_bench_timing_opts_s {
    int reps;         /* measured repetitions; 0 means 5 (1 under --quick) */
    uint64_t iters;   /* operations per repetition; 0 means "until min_ms" */
    double min_ms;    /* with iters 0, each repetition lasts at least this; 0 means 200 */
    bool skip_warmup; /* by default one operation runs first, unmeasured */
} rv_bench_timing_opts_t;

/* What rv_bench_time() measured. Times are per operation. */
typedef struct rv_bench_timing_s {
    double best_ns;    /* the fastest repetition's time per operation */
    double median_ns;  /* the median repetition's time per operation */
    uint64_t ops;      /* operations measured, warm-up excluded */
    int reps;          /* repetitions measured */
    uint64_t failures; /* operations that returned non-zero, warm-up included */
} rv_bench_timing_t;

/*
 * Runs `fn(ctx)` as `opts` says (NULL for defaults) and returns the per-operation times.
 * A failing operation does not stop the measurement; the caller reads `failures` and reports
 * it with rv_bench_fail().
 */
rv_bench_timing_t rv_bench_time(rv_bench_op_fn fn, void *ctx, const rv_bench_timing_opts_t *opts);

/* Units per second at the best repetition, for an operation that handles `units_per_op`. */
double rv_bench_rate(const rv_bench_timing_t *t, double units_per_op);

/* ---- memory ------------------------------------------------------------------------------ */

/* A field of /proc/self/status in kB ("VmHWM", "VmRSS"), or 0 when it cannot be read. */
long rv_bench_status_kb(const char *name);

/* The process's peak resident set size so far, in MiB (getrusage). */
double rv_bench_peak_rss_mib(void);

/*
 * Bytes the C heap currently holds for the program (malloc'ed and mmap'ed chunks, glibc's
 * mallinfo2); 0 where that is not available. The difference of two readings is what a data
 * structure built in between occupies.
 */
size_t rv_bench_heap_bytes(void);

/* ---- rows and results --------------------------------------------------------------------- */

/*
 * One row of the table: a case of a suite, rivulet's figure and a baseline's. Up to two
 * figures per side (for example MB/s and docs/s); the second is optional (`unit2` NULL).
 * The ratio says how many times better rivulet is: rivulet / baseline for rates, baseline /
 * rivulet when `lower_is_better` (latencies). It is computed on the first figures, or on the
 * second with `ratio_on_second`. A `target` > 0 is the ratio the row must reach; `--check`
 * fails the run when it does not.
 */
typedef struct rv_bench_row_s {
    const char *suite;      /* "json" */
    const char *name;       /* the case: "parse telemetry" */
    double value;           /* rivulet's first figure */
    const char *unit;       /* its unit: "MB/s" */
    double value2;          /* rivulet's second figure (when unit2 is set) */
    const char *unit2;      /* "docs/s", or NULL */
    const char *baseline;   /* the baseline's name, or NULL for a row without one */
    double baseline_value;  /* the baseline's first figure, same unit */
    double baseline_value2; /* the baseline's second figure, same unit2 */
    bool ratio_on_second;   /* compare the second figures instead of the first */
    bool lower_is_better;   /* smaller figures are better (latency, bytes) */
    double target;          /* minimum ratio; 0 for none */
    const char *note;       /* free text for the notes column, or NULL */
} rv_bench_row_t;

/* Adds a row to the table printed at the end. Every string is copied. */
void rv_bench_report(const rv_bench_row_t *row);

/*
 * Records a failed self-check of `suite` and prints it to stderr at once. Any failure makes
 * rivulet_bench exit with status 1: a figure from a run whose checks failed means nothing.
 */
void rv_bench_fail(const char *suite, const char *fmt, ...) RV_BENCH_PRINTF(2, 3);

/* Adds a line printed under the table, after the machine (library versions, data sizes). */
void rv_bench_context(const char *fmt, ...) RV_BENCH_PRINTF(1, 2);

/* Prints a progress line to stderr: "[suite] ...". */
void rv_bench_log(const char *suite, const char *fmt, ...) RV_BENCH_PRINTF(2, 3);

/* True under --quick: suites shrink their data sets so the run is a smoke test. */
bool rv_bench_quick(void);

/* ---- helpers for suites ------------------------------------------------------------------ */

/* A formatted string on the heap (free it); exits the program when memory is exhausted. */
char *rv_bench_strf(const char *fmt, ...) RV_BENCH_PRINTF(1, 2);

/* Removes the file or directory tree at `path`, best effort. */
void rv_bench_rm_tree(const char *path);

/*
 * The environment for a child run of this program: this process's environment without the
 * variables whose names start with `drop_prefix` or `child_env`, followed by the non-NULL
 * entries of `vars` (borrowed). A new array to free (not its strings), or NULL.
 */
char **rv_bench_child_env(const char *drop_prefix, const char *child_env, char *const *vars,
                          size_t nvars);

/*
 * Diagnosis of a peak RSS: rv_bench_rss_sampler_start() starts a thread that reads VmRSS every
 * millisecond and keeps this process's mappings (resident kB, largest first) as they were at
 * the highest reading; rv_bench_rss_sampler_stop() stops it and prints them on stderr, prefixed
 * by `suite`. Start returns false when the thread cannot be made (then do not call stop).
 */
bool rv_bench_rss_sampler_start(void);
void rv_bench_rss_sampler_stop(const char *suite);

/*
 * Starts this program again as a child running suite `suite` with environment `envp` (see
 * rv_bench_child_env()); stdout and stderr are flushed first. With RV_BENCH_WRAP=tool in this
 * process's environment the child runs under `tool` (heaptrack, valgrind ...), for diagnosis.
 * Returns posix_spawn()'s result.
 */
int rv_bench_spawn_self(pid_t *pid, const char *suite, char **envp);

/* What rv_bench_run_app() measured. */
typedef struct rv_bench_app_run_s {
    double t0_ns, t1_ns; /* rv_app_run() called and returned (rv_bench_now_ns()) */
    rv_app_metrics_t metrics;
    long hwm_kb; /* the process's peak RSS (VmHWM) after the application was destroyed */
} rv_bench_app_run_t;

/*
 * A child run's application: runs `app` (built up to dataframe `df`, NULL when building
 * failed) until every input partition is read to its end, takes its metrics, stops the RSS
 * sampler when `sampling`, destroys the application and reads the peak RSS into *out. False
 * after a line on stderr prefixed by `suite` when building or the run failed (the application
 * is destroyed either way).
 */
bool rv_bench_run_app(const char *suite, rv_app_t *app, const rv_df_t *df, bool sampling,
                      rv_bench_app_run_t *out);

#endif
