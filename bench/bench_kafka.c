/*
 * bench_kafka.c: produce, consume and consume-produce throughput of the `kafka://` broker,
 * beside kcat doing the same work against the same cluster in the same run.
 *
 * The cluster is librdkafka's mock (one broker, started in this process on loopback TCP): no
 * Kafka server is needed, and what is measured is the clients' work plus the mock's, which runs
 * in librdkafka threads of this process in both cases (it keeps at most 5 MiB and 100000
 * batches per partition, so the data set is RECORDS records of 100-byte values and 10-byte keys
 * over PARTS partitions, about 3.3 MB per partition, and every topic is checked to still hold
 * all of them). Each case runs RUNS times alternately for rivulet and kcat on fresh topics, and
 * the fastest run of each is reported, with the least CPU time of each side in the notes (this
 * process's, the mock's threads included, plus kcat's): on a shared machine the CPU time
 * varies far less than the wall time:
 *
 * - produce: rivulet's producer (public API, records prepared in memory, from rv_producer_new()
 *   to rv_producer_close() after the flush) against `kcat -P -K:` reading the same records from
 *   a file, process start and exit included.
 * - consume: a rivulet consumer assigned to every partition from the beginning, from
 *   rv_consumer_new() until it has all the records and is closed, against
 *   `kcat -C -o beginning -e -c N` writing to /dev/null.
 * - consume-produce: rivulet reading one topic and producing every record (key and value) to
 *   another, until all are acknowledged, against `kcat -C ... | kcat -P ...` through a pipe.
 *
 * kcat is given, with -X, the librdkafka settings rivulet's clients use (idempotence, the
 * murmur2 partitioner, linger.ms, batch.size, the queue size, max.partition.fetch.bytes), so
 * both ask librdkafka for the same thing; nothing is tuned for the bench. Self-checks: every
 * delivery report is OK, each topic's watermarks add up to exactly N records from offset 0,
 * rivulet reads exactly N records of the right size, and one unmeasured kcat read counts N
 * lines. RV_BENCH_KAFKA_STEPS=1 logs where a consume's time goes, and
 * RV_BENCH_KAFKA_DEBUG=<librdkafka debug contexts> prints librdkafka's debug log of rivulet's
 * clients with timestamps. This file must never tune a setting for one side only, and reports
 * a figure below target as it is.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rivulet/broker.h"
#include "rivulet/config.h"
#include "rivulet/error.h"

#include "bench.h"

#define SUITE "kafka"

#define PARTS 8
#define KEY_LEN 10
#define VALUE_LEN 100
#define RECORDS 200000u
#define RECORDS_QUICK 20000u
#define RUNS 7
#define TARGET 1.0
#define POLL_MAX 10000
#define STALL_MS 20000

/* What rivulet's clients set in librdkafka (src/broker/kafka_*.c, with rivulet's defaults),
 * given to kcat too. */
#define KCAT_PRODUCER_X                                                                            \
    "-X", "enable.idempotence=true", "-X", "partitioner=murmur2_random", "-X", "linger.ms=5",      \
        "-X", "batch.size=262144", "-X", "queue.buffering.max.kbytes=65536"
#define KCAT_CONSUMER_X                                                                            \
    "-X", "max.partition.fetch.bytes=4194304", "-X", "queued.min.messages=1000000", "-X",          \
        "fetch.wait.max.ms=100"

extern char **environ;

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static const char *boot;
static char url[512];
static char kcat[512];
static char data_path[64];
static unsigned records;
static char *keys;   /* records * KEY_LEN */
static char *values; /* records * VALUE_LEN */
static unsigned topic_seq;
static unsigned lib_warnings;

/* ---- helpers --------------------------------------------------------------------------------- */

static double now_s(void) {
    return rv_bench_now_ns() / 1e9;
}

static void on_log(void *opaque, rv_log_level_t level, const char *sub, const char *msg) {
    (void)opaque;
    if (getenv("RV_BENCH_KAFKA_DEBUG")) {
        fprintf(stderr, "%.3f %s\n", now_s(), msg);
        return;
    }
    if (level <= RV_LOG_WARNING) {
        lib_warnings++;
        rv_bench_log(SUITE, "library %s (%s): %s", rv_log_level_name(level), sub, msg);
    }
}

static void quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}


/* CPU seconds used so far by this process (the mock cluster's threads included) and by the
 * children it has waited for (kcat). */
static double cpu_s(void) {
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    return (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec +
                    kids.ru_stime.tv_sec) +
           (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec +
                    kids.ru_stime.tv_usec) /
               1e6;
}

static bool find_kcat(void) {
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(kcat, sizeof kcat, "%.*s/kcat", (int)n, path);
        if (access(kcat, X_OK) == 0) {
            return true;
        }
        path += n + (path[n] == ':');
    }
    return false;
}

static const char *new_topic(const char *what) {
    static char name[64];
    snprintf(name, sizeof name, "bench-%s-%u", what, ++topic_seq);
    if (rd_kafka_mock_topic_create(mock, name, PARTS, 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rv_bench_fail(SUITE, "cannot create topic %s in the mock", name);
    }
    return name;
}

/* Runs argv (argv[0] a path) with stdin from `in_path` (NULL: /dev/null) and stdout to
 * /dev/null; returns the wall time in seconds, or -1 when it failed. */
static double run_timed(char *const *argv, const char *in_path) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in_path ? in_path : "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    double t0 = now_s();
    pid_t pid;
    int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0) {
        rv_bench_fail(SUITE, "cannot run %s: %s", argv[0], strerror(r));
        return -1;
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    double t = now_s() - t0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        rv_bench_fail(SUITE, "%s %s exited with status %d", argv[0], argv[1], st);
        return -1;
    }
    return t;
}

/* Checks that `topic` holds exactly the records of a run: offsets 0 to n over its partitions. */
static void check_topic(rv_broker_t *b, const char *topic, const char *who) {
    int64_t total = 0;
    for (int32_t p = 0; p < PARTS; p++) {
        int64_t lo = -1, hi = -1;
        rv_error_t *err = NULL;
        if (rv_broker_watermarks(b, topic, p, &lo, &hi, &err) != RV_OK) {
            rv_bench_fail(SUITE, "%s: watermarks of %s: %s", who, topic, rv_error_message(err));
            rv_error_destroy(err);
            return;
        }
        if (lo != 0) {
            rv_bench_fail(SUITE, "%s: the mock dropped records of %s [%d] (low watermark %" PRId64
                          "): the data set is too large for it", who, topic, (int)p, lo);
        }
        total += hi;
    }
    if (total != (int64_t)records) {
        rv_bench_fail(SUITE, "%s: topic %s holds %" PRId64 " records, not %u", who, topic, total,
                      records);
    }
}

/* ---- the data set ---------------------------------------------------------------------------- */

static bool make_data(void) {
    keys = malloc((size_t)records * KEY_LEN);
    values = malloc((size_t)records * VALUE_LEN);
    if (!keys || !values) {
        return false;
    }
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (unsigned i = 0; i < records; i++) {
        char k[KEY_LEN + 1];
        snprintf(k, sizeof k, "k%09u", i % 1000000000u);
        memcpy(keys + (size_t)i * KEY_LEN, k, KEY_LEN);
        char *v = values + (size_t)i * VALUE_LEN;
        for (int j = 0; j < VALUE_LEN; j++) { /* printable, no ':' nor newline, for kcat */
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v[j] = (char)('a' + x % 26);
        }
    }
    snprintf(data_path, sizeof data_path, "/tmp/rv-bench-kafka-XXXXXX");
    int fd = mkstemp(data_path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        return false;
    }
    for (unsigned i = 0; i < records; i++) {
        fwrite(keys + (size_t)i * KEY_LEN, 1, KEY_LEN, f);
        fputc(':', f);
        fwrite(values + (size_t)i * VALUE_LEN, 1, VALUE_LEN, f);
        fputc('\n', f);
    }
    return fclose(f) == 0;
}

/* ---- rivulet --------------------------------------------------------------------------------- */

typedef struct dr_s {
    unsigned ok;
    unsigned failed;
} dr_t;

static void on_delivery(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    (void)rec;
    (void)rec_opaque;
    dr_t *d = opaque;
    if (err) {
        d->failed++;
    } else {
        d->ok++;
    }
}

/* Sends one record the way kcat -P does: on a full queue, serve delivery reports (waiting up
 * to 5 ms) and try again; after each record, serve the reports that are ready. */
static rv_err_t send_one(rv_producer_t *p, const rv_record_t *r) {
    rv_err_t e;
    while ((e = rv_producer_send(p, r, NULL)) == RV_ERR_AGAIN) {
        rv_producer_poll(p, 5);
    }
    rv_producer_poll(p, 0);
    return e;
}

static bool finish_producer(rv_producer_t *p, dr_t *d, const char *who) {
    rv_error_t *err = NULL;
    if (rv_producer_flush(p, 120000, &err) != RV_OK) {
        rv_bench_fail(SUITE, "%s: flush: %s", who, rv_error_message(err));
        rv_error_destroy(err);
        rv_producer_close(p);
        return false;
    }
    rv_producer_close(p);
    if (d->ok != records || d->failed) {
        rv_bench_fail(SUITE, "%s: %u records acknowledged, %u failed, of %u", who, d->ok,
                      d->failed, records);
        return false;
    }
    return true;
}

static double rv_produce(rv_broker_t *b, const char *topic) {
    dr_t d = {0};
    double t0 = now_s();
    rv_producer_opts_t po = {.delivery_cb = on_delivery, .opaque = &d};
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(b, &po, &err);
    if (!p) {
        rv_bench_fail(SUITE, "new producer: %s", rv_error_message(err));
        rv_error_destroy(err);
        return -1;
    }
    for (unsigned i = 0; i < records; i++) {
        rv_record_t r = {.topic = topic, .partition = RV_PARTITION_ANY,
                         .key = keys + (size_t)i * KEY_LEN, .key_len = KEY_LEN,
                         .value = values + (size_t)i * VALUE_LEN, .value_len = VALUE_LEN};
        if (send_one(p, &r) != RV_OK) {
            rv_bench_fail(SUITE, "produce: send refused at record %u", i);
            break;
        }
    }
    if (!finish_producer(p, &d, "produce")) {
        return -1;
    }
    return now_s() - t0;
}

static rv_consumer_t *reader(rv_broker_t *b, const char *topic) {
    rv_error_t *err = NULL;
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "kafka.fetch.wait.max.ms", "100", NULL);
    rv_consumer_opts_t co = {.conf = conf};
    rv_consumer_t *c = rv_consumer_new(b, &co, &err);
    rv_conf_destroy(conf);
    if (!c) {
        rv_bench_fail(SUITE, "new consumer: %s", rv_error_message(err));
        rv_error_destroy(err);
        return NULL;
    }
    rv_topic_partition_t tps[PARTS];
    for (int32_t p = 0; p < PARTS; p++) {
        tps[p] = (rv_topic_partition_t){topic, p, RV_OFFSET_BEGINNING};
    }
    if (rv_consumer_assign(c, tps, PARTS, &err) != RV_OK) {
        rv_bench_fail(SUITE, "assign: %s", rv_error_message(err));
        rv_error_destroy(err);
        rv_consumer_close(c);
        return NULL;
    }
    return c;
}

/* Polls `c` until `records` records came, calling `each` (may be NULL) on every batch. */
static bool drain(rv_consumer_t *c, const char *who,
                  bool (*each)(void *, const rv_record_t *, size_t), void *opaque) {
    unsigned got = 0;
    double last = now_s();
    while (got < records) {
        const rv_record_t *recs;
        size_t n = 0;
        rv_error_t *err = NULL;
        if (rv_consumer_poll(c, &recs, POLL_MAX, &n, 100, &err) != RV_OK) {
            rv_bench_fail(SUITE, "%s: poll: %s", who, rv_error_message(err));
            rv_error_destroy(err);
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            if (recs[i].value_len != VALUE_LEN || recs[i].key_len != KEY_LEN) {
                rv_bench_fail(SUITE, "%s: a record of %zu bytes", who, recs[i].value_len);
                return false;
            }
        }
        if (n && each && !each(opaque, recs, n)) {
            return false;
        }
        got += (unsigned)n;
        if (n) {
            last = now_s();
        } else if (now_s() - last > STALL_MS / 1000.0) {
            rv_bench_fail(SUITE, "%s: no record for %d s after %u", who, STALL_MS / 1000, got);
            return false;
        }
    }
    if (got != records) {
        rv_bench_fail(SUITE, "%s: read %u records, not %u", who, got, records);
        return false;
    }
    return true;
}

static double rv_consume(rv_broker_t *b, const char *topic) {
    double t0 = now_s();
    rv_consumer_t *c = reader(b, topic);
    if (!c) {
        return -1;
    }
    double t1 = now_s();
    bool ok = drain(c, "consume", NULL, NULL);
    double t2 = now_s();
    rv_consumer_close(c);
    if (getenv("RV_BENCH_KAFKA_STEPS")) {
        rv_bench_log(SUITE, "consume: new+assign %.3f s, read %.3f s, close %.3f s", t1 - t0,
                     t2 - t1, now_s() - t2);
    }
    return ok ? now_s() - t0 : -1;
}

typedef struct pipe_s {
    rv_producer_t *p;
    const char *out;
} pipe_t;

static bool forward(void *opaque, const rv_record_t *recs, size_t n) {
    pipe_t *pp = opaque;
    for (size_t i = 0; i < n; i++) {
        rv_record_t r = {.topic = pp->out, .partition = RV_PARTITION_ANY, .key = recs[i].key,
                         .key_len = recs[i].key_len, .value = recs[i].value,
                         .value_len = recs[i].value_len};
        if (send_one(pp->p, &r) != RV_OK) {
            rv_bench_fail(SUITE, "consume-produce: send refused");
            return false;
        }
    }
    return true;
}

static double rv_pipe(rv_broker_t *b, const char *in, const char *out) {
    dr_t d = {0};
    double t0 = now_s();
    rv_producer_opts_t po = {.delivery_cb = on_delivery, .opaque = &d};
    rv_producer_t *p = rv_producer_new(b, &po, NULL);
    rv_consumer_t *c = p ? reader(b, in) : NULL;
    if (!c) {
        rv_producer_close(p);
        rv_bench_fail(SUITE, "consume-produce: cannot make the clients");
        return -1;
    }
    pipe_t pp = {p, out};
    bool ok = drain(c, "consume-produce", forward, &pp);
    rv_consumer_close(c);
    ok = finish_producer(p, &d, "consume-produce") && ok;
    return ok ? now_s() - t0 : -1;
}

/* ---- kcat ------------------------------------------------------------------------------------ */

static double kcat_produce(const char *topic) {
    char *argv[] = {kcat, "-q", "-P", "-b", (char *)boot, "-t", (char *)topic, "-K", ":",
                    KCAT_PRODUCER_X, NULL};
    return run_timed(argv, data_path);
}

static double kcat_consume(const char *topic) {
    char count[16];
    snprintf(count, sizeof count, "%u", records);
    char *argv[] = {kcat, "-q", "-C", "-b", (char *)boot, "-t", (char *)topic, "-o", "beginning",
                    "-e", "-c", count, KCAT_CONSUMER_X, "-f", "%k:%s\n", NULL};
    return run_timed(argv, NULL);
}

/* The consume-produce pipeline of two kcat processes, through /bin/sh. */
static char *kcat_pipeline(const char *in, const char *out, const char *tail) {
    char *cmd = NULL;
    if (asprintf(&cmd,
                 "'%s' -q -C -b '%s' -t '%s' -o beginning -e -c %u -X "
                 "max.partition.fetch.bytes=4194304 -X queued.min.messages=1000000 -X "
                 "fetch.wait.max.ms=100 -f '%%k:%%s\\n' %s",
                 kcat, boot, in, records, tail) < 0) {
        return NULL;
    }
    if (out) {
        char *full = NULL;
        if (asprintf(&full,
                     "%s | '%s' -q -P -b '%s' -t '%s' -K : -X enable.idempotence=true -X "
                     "partitioner=murmur2_random -X linger.ms=5 -X batch.size=262144 -X "
                     "queue.buffering.max.kbytes=65536",
                     cmd, kcat, boot, out) < 0) {
            full = NULL;
        }
        free(cmd);
        cmd = full;
    }
    return cmd;
}

static double kcat_pipe(const char *in, const char *out) {
    char *cmd = kcat_pipeline(in, out, "");
    if (!cmd) {
        return -1;
    }
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    double t = run_timed(argv, NULL);
    free(cmd);
    return t;
}

/* One unmeasured kcat read of `topic`, counting the lines it prints: it must see every record. */
static void kcat_check_read(const char *topic) {
    char *cmd = kcat_pipeline(topic, NULL, "| wc -l");
    if (!cmd) {
        return;
    }
    FILE *f = popen(cmd, "r");
    unsigned long lines = 0;
    if (!f || fscanf(f, "%lu", &lines) != 1) {
        rv_bench_fail(SUITE, "kcat check read of %s failed", topic);
    }
    if (f) {
        pclose(f);
    }
    if (lines != records) {
        rv_bench_fail(SUITE, "kcat read %lu records of %s, not %u", lines, topic, records);
    }
    free(cmd);
}

/* ---- the suite ------------------------------------------------------------------------------- */

static double best(const double *t, int n) {
    double b = -1;
    for (int i = 0; i < n; i++) {
        if (t[i] > 0 && (b < 0 || t[i] < b)) {
            b = t[i];
        }
    }
    return b;
}

static void report(const char *name, const char *baseline, double rv_s, double kc_s,
                   const char *note) {
    if (rv_s <= 0 || kc_s <= 0) {
        rv_bench_fail(SUITE, "%s: no successful run to report", name);
        return;
    }
    double mb = (double)records * VALUE_LEN / 1e6;
    rv_bench_row_t row = {
        .suite = SUITE,
        .name = name,
        .value = mb / rv_s,
        .unit = "MB/s",
        .value2 = records / rv_s,
        .unit2 = "records/s",
        .baseline = baseline,
        .baseline_value = mb / kc_s,
        .baseline_value2 = records / kc_s,
        .target = TARGET,
        .note = note,
    };
    rv_bench_report(&row);
}

static double kcat_start_ms(void) {
    double b = -1;
    for (int i = 0; i < 5; i++) {
        char *argv[] = {kcat, "-V", NULL};
        double t = run_timed(argv, NULL);
        if (t > 0 && (b < 0 || t < b)) {
            b = t;
        }
    }
    return b * 1e3;
}

void rv_bench_suite_kafka(void) {
    records = rv_bench_quick() ? RECORDS_QUICK : RECORDS;
    int runs = rv_bench_quick() ? 1 : RUNS;
    if (!find_kcat()) {
        rv_bench_fail(SUITE, "kcat is not installed (Debian package kcat, scripts/deps.sh)");
        return;
    }
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, quiet);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    mock = mock_rk ? rd_kafka_mock_cluster_new(mock_rk, 1) : NULL;
    if (!mock || !make_data()) {
        rv_bench_fail(SUITE, "cannot start the mock cluster or write the data set");
        goto out;
    }
    boot = rd_kafka_mock_cluster_bootstraps(mock);
    snprintf(url, sizeof url, "kafka://%s", boot);
    /* The mock answers a fetch that finds no data only after fetch.wait.max.ms (500 ms by
     * default), even when records arrive meanwhile: both sides wait at most 100 ms. */
    rv_conf_t *bconf = rv_conf_new();
    if (getenv("RV_BENCH_KAFKA_DEBUG")) {
        rv_conf_set(bconf, "kafka.debug", getenv("RV_BENCH_KAFKA_DEBUG"), NULL);
        rv_conf_set(bconf, "log.level", "debug", NULL);
    }
    rv_broker_opts_t bo = {.conf = bconf, .log_cb = on_log};
    rv_error_t *err = NULL;
    rv_broker_t *b = rv_broker_open(url, &bo, &err);
    rv_conf_destroy(bconf);
    if (!b) {
        rv_bench_fail(SUITE, "open %s: %s", url, rv_error_message(err));
        rv_error_destroy(err);
        goto out;
    }
    double start_ms = kcat_start_ms();
    rv_bench_log(SUITE, "%u records of %d-byte values, %d-byte keys, %d partitions; kcat -V "
                 "runs in %.1f ms", records, VALUE_LEN, KEY_LEN, PARTS, start_ms);

    double rp[RUNS], kp[RUNS], rc[RUNS], kc[RUNS], rx[RUNS], kx[RUNS];
    /* CPU seconds of each run, the mock's included: [case][0 rivulet, 1 kcat][run] */
    double cpu[3][2][RUNS];
    double c0;
    char src_rv[64] = "", src_kc[64] = "";
    for (int i = 0; i < runs; i++) {
        const char *t = new_topic("produce-rv");
        c0 = cpu_s();
        rp[i] = rv_produce(b, t);
        cpu[0][0][i] = cpu_s() - c0;
        check_topic(b, t, "rivulet produce");
        snprintf(src_rv, sizeof src_rv, "%s", t);
        t = new_topic("produce-kcat");
        c0 = cpu_s();
        kp[i] = kcat_produce(t);
        cpu[0][1][i] = cpu_s() - c0;
        check_topic(b, t, "kcat produce");
        snprintf(src_kc, sizeof src_kc, "%s", t);
        rv_bench_log(SUITE, "produce run %d: rivulet %.3f s, kcat %.3f s", i, rp[i], kp[i]);
    }
    /* Both read the topic rivulet wrote last (then the one kcat wrote, unmeasured check). */
    kcat_check_read(src_rv);
    kcat_check_read(src_kc);
    for (int i = 0; i < runs; i++) {
        c0 = cpu_s();
        rc[i] = rv_consume(b, src_rv);
        cpu[1][0][i] = cpu_s() - c0;
        c0 = cpu_s();
        kc[i] = kcat_consume(src_rv);
        cpu[1][1][i] = cpu_s() - c0;
        rv_bench_log(SUITE, "consume run %d: rivulet %.3f s, kcat %.3f s", i, rc[i], kc[i]);
    }
    for (int i = 0; i < runs; i++) {
        const char *t = new_topic("pipe-rv");
        c0 = cpu_s();
        rx[i] = rv_pipe(b, src_rv, t);
        cpu[2][0][i] = cpu_s() - c0;
        check_topic(b, t, "rivulet consume-produce");
        t = new_topic("pipe-kcat");
        c0 = cpu_s();
        kx[i] = kcat_pipe(src_rv, t);
        cpu[2][1][i] = cpu_s() - c0;
        check_topic(b, t, "kcat consume-produce");
        rv_bench_log(SUITE, "consume-produce run %d: rivulet %.3f s, kcat %.3f s", i, rx[i],
                     kx[i]);
    }
    char note[640];
    snprintf(note, sizeof note,
             "%u records, 100 B values + 10 B keys, %d partitions, 1-broker librdkafka mock in "
             "this process; MB/s of values; best of %d wall times; rivulet from producer_new to "
             "close; kcat wall time incl. process start (kcat -V: %.0f ms) reading a file; "
             "least CPU s (mock included) rivulet %.2f, kcat %.2f",
             records, PARTS, runs, start_ms, best(cpu[0][0], runs), best(cpu[0][1], runs));
    report("produce 100 B", "kcat -P", best(rp, runs), best(kp, runs), note);
    snprintf(note, sizeof note,
             "same topic; rivulet from consumer_new to close after N records; kcat -C -e -c N "
             "to /dev/null, wall time incl. process start; best of %d; least CPU s rivulet "
             "%.2f, kcat %.2f",
             runs, best(cpu[1][0], runs), best(cpu[1][1], runs));
    report("consume 100 B", "kcat -C", best(rc, runs), best(kc, runs), note);
    snprintf(note, sizeof note,
             "read N, write each (key, value) to another topic until all acknowledged; kcat -C "
             "| kcat -P through /bin/sh, wall time incl. both process starts; best of %d; least "
             "CPU s rivulet %.2f, kcat %.2f",
             runs, best(cpu[2][0], runs), best(cpu[2][1], runs));
    report("consume-produce 100 B", "kcat -C | kcat -P", best(rx, runs), best(kx, runs), note);
    rv_bench_context("kafka: %s; librdkafka %s; kcat start-up %.1f ms", kcat,
                     rd_kafka_version_str(), start_ms);
    if (lib_warnings) {
        rv_bench_fail(SUITE, "the library logged %u warnings", lib_warnings);
    }
    rv_broker_close(b);
out:
    if (mock) {
        rd_kafka_mock_cluster_destroy(mock);
    }
    if (mock_rk) {
        rd_kafka_destroy(mock_rk);
    }
    if (data_path[0]) {
        unlink(data_path);
    }
    free(keys);
    free(values);
}
