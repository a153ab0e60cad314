/*
 * bench_log.c: append and read throughput of the embedded log (`local:`), beside the machine's
 * own memcpy and dd figures measured in the same run, on the same file system.
 *
 * What users get is measured through the public API: a producer sends N records of 100-byte or
 * 1 KiB values (no key, round-robin over 1 or 4 partitions) to a `local:` broker opened with
 * each fsync policy, then flushes; a consumer assigned to every partition from the beginning
 * polls until it has them all. The same records then go through the partition-log engine
 * directly (rv__plog_append of prepared batches, rv__plog_read), so the cost of the broker layer
 * shows. The baselines are the machine's: memcpy of a buffer larger than the caches, and the
 * system's own `dd` writing as many bytes as rivulet wrote, with the same write size as
 * rivulet's batches and the same sync discipline as each policy (page cache only, one
 * fdatasync at the end, or a sync per write), plus a write()+fdatasync() twin in C. Every run
 * starts from a synced file system and writes a fresh topic; a row reports the fastest of
 * RUNS runs. Self-checks: every delivery report OK and the watermarks add up to N; every read
 * returns exactly N records whose checksum matches, and one unmeasured pass before each read row
 * checks offsets, order and a CRC32C of every value. Everything lives in one temporary directory,
 * removed at the end. This file must never tune a library setting to flatter a figure: the runs
 * use the defaults users get except the fsync policy, and a figure below target is reported as
 * it is.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "broker/local_int.h"
#include "broker/plog.h"
#include "rivulet/broker.h"
#include "rivulet/config.h"
#include "rivulet/error.h"
#include "rivulet/hash.h"

#include "bench.h"

#define SUITE "log"

/* The two value sizes and how many records a run writes of each (about 200 MB of values). */
#define SMALL_VALUE 100u
#define LARGE_VALUE 1024u
#define SMALL_RECORDS 2000000u
#define LARGE_RECORDS 200000u
#define SMALL_RECORDS_QUICK 100000u
#define LARGE_RECORDS_QUICK 10000u

/* Timed runs per case (the fastest is reported); --quick runs one. */
#define RUNS 5

/* The targets. */
#define TARGET_APPEND_RPS 5e6 /* 100-byte records appended per second, fsync never */
#define TARGET_READ_RPS 10e6  /* 100-byte records read per second */
#define TARGET_SYNC_RATIO 0.8 /* fsync per batch: this share of the disk's, same write size */

#define MAX_PARTS 4
#define MEMCPY_BYTES ((size_t)64 << 20)
#define DD_SEQ_BS ((size_t)1 << 20)
#define POLL_MAX 65536       /* records one poll may return (the consumer's own limit) */
#define ENGINE_READ_MAX 4096 /* records one engine read asks for (as the consumer does) */
#define FLUSH_TIMEOUT_MS 120000
#define STALL_MS 10000 /* a read that makes no progress this long fails */

/* ---- small helpers ----------------------------------------------------------------------- */

static char *tmp_root;
static unsigned topic_counter;
static unsigned lib_warnings;

/* Writes back every dirty page of the file system under test, so each run starts clean. */
static void sync_fs(void) {
    int fd = open(tmp_root, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)syncfs(fd);
        close(fd);
    }
}

/* CPU seconds used by the whole process (every thread) so far. */
static double cpu_seconds(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0.0;
    }
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static const char *fs_name(const char *path) {
    struct statfs sf;
    if (statfs(path, &sf) != 0) {
        return "an unknown file system";
    }
    switch ((unsigned long)sf.f_type) {
        case 0xEF53UL:
            return "ext4";
        case 0x58465342UL:
            return "xfs";
        case 0x9123683EUL:
            return "btrfs";
        case 0x01021994UL:
            return "tmpfs (memory: the fsync figures mean nothing)";
        case 0x794C7630UL:
            return "overlayfs";
        default:
            return "another file system";
    }
}

/* Library warnings and errors go to stderr and are counted: a clean run has none. */
static void on_log(void *opaque, rv_log_level_t level, const char *sub, const char *msg) {
    (void)opaque;
    if (level <= RV_LOG_WARNING) {
        lib_warnings++;
        rv_bench_log(SUITE, "library %s (%s): %s", rv_log_level_name(level), sub, msg);
    }
}

/* ---- the records ------------------------------------------------------------------------- */

/*
 * Record `seq` of a data set: a fixed pseudo-random filler, with seq in the first 8 bytes and a
 * hash of it in the last 8, so every value is distinct and a cheap checksum of the two ends
 * catches a lost, repeated, shortened or misplaced record.
 */
typedef struct workload_s {
    const char *label; /* "100 B" */
    size_t value_len;
    uint64_t n;         /* records per run */
    uint64_t light_sum; /* the expected sum of value_light() over the run */
    uint64_t crc_sum;   /* the expected sum of each value's CRC32C */
    uint64_t per_batch; /* records per batch the producer made (measured), for the engine */
    uint8_t filler[LARGE_VALUE];
} workload_t;

static uint64_t mix64(uint64_t z) {
    z += UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static inline void value_stamp(uint8_t *v, size_t len, uint64_t seq) {
    uint64_t tail = mix64(seq);
    memcpy(v, &seq, 8);
    memcpy(v + len - 8, &tail, 8);
}

static inline uint64_t value_seq(const void *v) {
    uint64_t seq;
    memcpy(&seq, v, 8);
    return seq;
}

static inline uint64_t value_light(const void *v, size_t len) {
    uint64_t head, tail;
    memcpy(&head, v, 8);
    memcpy(&tail, (const uint8_t *)v + len - 8, 8);
    return head + ((tail << 1) | (tail >> 63)) + len;
}

static void workload_init(workload_t *w, const char *label, size_t value_len, uint64_t n) {
    memset(w, 0, sizeof *w);
    w->label = label;
    w->value_len = value_len;
    w->n = n;
    uint64_t state = value_len;
    for (size_t i = 0; i < value_len; i++) {
        w->filler[i] = (uint8_t)mix64(state++);
    }
    uint8_t v[LARGE_VALUE];
    memcpy(v, w->filler, value_len);
    for (uint64_t i = 0; i < n; i++) {
        value_stamp(v, value_len, i);
        w->light_sum += value_light(v, value_len);
        w->crc_sum += rv_crc32c(0, v, value_len);
    }
}

/* ---- reading back and checking ----------------------------------------------------------- */

/* What a read saw. The light sum is taken in every run; the rest only in the checking pass. */
typedef struct seen_s {
    uint64_t count;
    uint64_t light_sum;
    uint64_t bad_len; /* records whose value is missing or of the wrong length */
    bool full;        /* check offsets, order and CRC32C too */
    uint64_t crc_sum;
    uint64_t disorder; /* records out of offset or send order within their partition */
    int64_t next_offset[MAX_PARTS];
    uint64_t last_seq[MAX_PARTS];
} seen_t;

static void seen_full(seen_t *s, const rv_record_t *r, int32_t partition, const workload_t *w) {
    if (partition < 0 || partition >= MAX_PARTS) {
        s->disorder++;
        return;
    }
    uint64_t seq = value_seq(r->value);
    bool first = s->next_offset[partition] == 0;
    if (r->offset != s->next_offset[partition] || (!first && seq <= s->last_seq[partition]) ||
        seq >= w->n) {
        s->disorder++;
    }
    s->next_offset[partition] = r->offset + 1;
    s->last_seq[partition] = seq;
    s->crc_sum += rv_crc32c(0, r->value, r->value_len);
}

static inline void seen_add(seen_t *s, const rv_record_t *recs, size_t n, int32_t partition,
                            const workload_t *w) {
    size_t len = w->value_len;
    for (size_t i = 0; i < n; i++) {
        const rv_record_t *r = &recs[i];
        if (!r->value || r->value_len != len) {
            s->bad_len++;
            continue;
        }
        s->light_sum += value_light(r->value, len);
        if (s->full) {
            seen_full(s, r, partition < 0 ? r->partition : partition, w);
        }
    }
    s->count += n;
}

/* Records a failed self-check when what was read is not what was written. */
static bool seen_check(const seen_t *s, const workload_t *w, const char *what) {
    bool ok = s->count == w->n && s->bad_len == 0 && s->light_sum == w->light_sum;
    if (s->full) {
        ok = ok && s->disorder == 0 && s->crc_sum == w->crc_sum;
    }
    if (!ok) {
        rv_bench_fail(SUITE,
                      "%s: read %" PRIu64 " of %" PRIu64 " records, %" PRIu64
                      " of the wrong length, checksum %s, %s%" PRIu64 " out of order",
                      what, s->count, w->n, s->bad_len,
                      s->light_sum == w->light_sum ? "matches" : "DIFFERS",
                      !s->full                   ? "(not checked) "
                      : s->crc_sum == w->crc_sum ? "CRC32C sum matches, "
                                                 : "CRC32C sum DIFFERS, ",
                      s->disorder);
    }
    return ok;
}

/* ---- what a case measured ---------------------------------------------------------------- */

typedef struct best_s {
    double ns;        /* the fastest run, wall time */
    double cpu_s;     /* CPU time of the process during that run */
    int runs;         /* runs completed */
    double all[RUNS]; /* every run's wall time, for the median in the progress lines */
} best_t;

static void best_add(best_t *b, double ns, double cpu_s) {
    if (b->runs == 0 || ns < b->ns) {
        b->ns = ns;
        b->cpu_s = cpu_s;
    }
    if (b->runs < RUNS) {
        b->all[b->runs] = ns;
    }
    b->runs++;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The progress line of a case: its best and median run. */
static void best_log(const best_t *b, const char *what) {
    double v[RUNS];
    int n = b->runs < RUNS ? b->runs : RUNS;
    memcpy(v, b->all, (size_t)n * sizeof *v);
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double median = n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    rv_bench_log(SUITE, "%s: best %.3f s, median %.3f s of %d runs", what, b->ns / 1e9,
                 median / 1e9, b->runs);
}

static double best_rps(const best_t *b, const workload_t *w) {
    return b->ns > 0 ? (double)w->n * 1e9 / b->ns : 0.0;
}

static double best_mbps(const best_t *b, const workload_t *w) {
    return best_rps(b, w) * (double)w->value_len / 1e6;
}

/* "1.62 cores, 3.80 M rec/CPU-s": how busy the process was and the rate per CPU second. */
static void cpu_note(char *out, size_t size, const best_t *b, const workload_t *w) {
    double cores = b->ns > 0 ? b->cpu_s * 1e9 / b->ns : 0.0;
    double per_cpu = b->cpu_s > 0 ? (double)w->n / b->cpu_s : 0.0;
    snprintf(out, size, "%.2f cores busy, %.2f M rec per CPU-s", cores, per_cpu / 1e6);
}

/* The segment files of a partition log: bytes and batches (walking the batch lengths), and the
 * fdatasyncs the broker made for them (group commit: one covers every batch appended before
 * it). */
typedef struct disk_s {
    uint64_t bytes;
    uint64_t batches;
    uint64_t syncs;
} disk_t;

static void disk_scan(const char *dir, disk_t *d) {
    DIR *dh = opendir(dir);
    if (!dh) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".log") != 0) {
            continue;
        }
        char *path = rv_bench_strf("%s/%s", dir, de->d_name);
        int fd = open(path, O_RDONLY);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0) {
            d->bytes += (uint64_t)st.st_size;
            uint64_t pos = 0;
            uint8_t h[4];
            while (pos + 64 <= (uint64_t)st.st_size && pread(fd, h, 4, (off_t)pos) == 4) {
                uint32_t blen = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                                (uint32_t)h[3] << 24;
                if (blen < 64) {
                    break;
                }
                d->batches++;
                pos += blen;
            }
        }
        if (fd >= 0) {
            close(fd);
        }
        free(path);
    }
    closedir(dh);
}

static double disk_mean_batch(const disk_t *d) {
    return d->batches ? (double)d->bytes / (double)d->batches : 0.0;
}

/* ---- the machine's baselines ------------------------------------------------------------- */

static volatile uint8_t sink;

/* MB/s of memcpy between two MEMCPY_BYTES buffers (larger than any cache), best of 5. */
static double memcpy_mbps(void) {
    uint8_t *src = malloc(MEMCPY_BYTES), *dst = malloc(MEMCPY_BYTES);
    if (!src || !dst) {
        free(src);
        free(dst);
        return 0.0;
    }
    for (size_t i = 0; i < MEMCPY_BYTES; i++) {
        src[i] = (uint8_t)(i * 131);
    }
    memset(dst, 0, MEMCPY_BYTES);
    double best = 0;
    for (int r = 0; r < 6; r++) { /* the first one warms up */
        src[r] = (uint8_t)r;
        double t0 = rv_bench_now_ns();
        memcpy(dst, src, MEMCPY_BYTES);
        double ns = rv_bench_now_ns() - t0;
        sink = dst[r] ^ dst[MEMCPY_BYTES - 1 - (size_t)r];
        if (r > 0 && (best == 0 || ns < best)) {
            best = ns;
        }
    }
    free(src);
    free(dst);
    return (double)MEMCPY_BYTES * 1e3 / best;
}

/*
 * MB/s of `dd if=/dev/zero of=FILE bs=BS count=COUNT FLAGS`, best of the runs, from the bytes
 * and seconds dd prints on stderr (its own MB/s is the same figure, rounded). 0 when dd failed.
 */
static double dd_mbps(size_t bs, size_t count, const char *flags) {
    char *file = rv_bench_strf("%s/dd.out", tmp_root);
    char *cmd =
        rv_bench_strf("LC_ALL=C dd if=/dev/zero of='%s' bs=%zu count=%zu %s 2>&1", file, bs, count, flags);
    double best = 0;
    int runs = rv_bench_quick() ? 1 : RUNS;
    for (int r = 0; r < runs; r++) {
        sync_fs();
        FILE *p = popen(cmd, "r");
        if (!p) {
            break;
        }
        char line[512];
        double mbps = 0;
        while (fgets(line, sizeof line, p)) {
            const char *copied = strstr(line, " copied, ");
            if (copied) {
                double bytes = (double)strtoull(line, NULL, 10);
                double secs = strtod(copied + strlen(" copied, "), NULL);
                mbps = secs > 0 ? bytes / secs / 1e6 : 0.0;
            }
        }
        int status = pclose(p);
        unlink(file);
        if (status != 0 || mbps <= 0) {
            rv_bench_log(SUITE, "`%s` failed (status %d): no dd baseline", cmd, status);
            best = 0;
            break;
        }
        if (mbps > best) {
            best = mbps;
        }
    }
    free(cmd);
    free(file);
    return best;
}

/*
 * The C twin of `dd oflag=dsync`: MB/s of COUNT write()s of BS bytes, each followed by
 * fdatasync(), as rivulet's fsync=batch does per batch; with `files` > 1 the writes go
 * round-robin to that many files, as batches of that many partitions do. Best of the runs.
 */
static double write_sync_mbps(size_t bs, size_t count, int files) {
    int fds[MAX_PARTS];
    char *names[MAX_PARTS];
    uint8_t *buf = malloc(bs);
    double best = 0;
    int runs = rv_bench_quick() ? 1 : RUNS;
    for (int f = 0; f < files; f++) {
        names[f] = rv_bench_strf("%s/twin%d.out", tmp_root, f);
    }
    for (int r = 0; buf && r < runs; r++) {
        memset(buf, r + 1, bs);
        sync_fs();
        bool ok = true;
        int opened = 0;
        for (; opened < files && ok; opened++) {
            fds[opened] = open(names[opened], O_WRONLY | O_CREAT | O_TRUNC, 0600);
            ok = fds[opened] >= 0;
        }
        double t0 = rv_bench_now_ns();
        for (size_t i = 0; i < count && ok; i++) {
            int fd = fds[i % (size_t)files];
            ok = write(fd, buf, bs) == (ssize_t)bs && fdatasync(fd) == 0;
        }
        double ns = rv_bench_now_ns() - t0;
        int e = errno;
        for (int f = 0; f < opened; f++) {
            if (fds[f] >= 0) {
                close(fds[f]);
            }
            unlink(names[f]);
        }
        if (!ok) {
            rv_bench_log(SUITE, "write+fdatasync baseline failed: %s", strerror(e));
            best = 0;
            break;
        }
        double mbps = (double)bs * (double)count * 1e3 / ns;
        if (mbps > best) {
            best = mbps;
        }
    }
    for (int f = 0; f < files; f++) {
        free(names[f]);
    }
    free(buf);
    return best;
}

/* ---- through the public API -------------------------------------------------------------- */

typedef struct reports_s {
    uint64_t ok;
    uint64_t failed;
    rv_err_t first_err;
} reports_t;

static void on_delivery(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    reports_t *r = opaque;
    (void)rec_opaque;
    if (err == RV_OK && rec->offset >= 0) {
        r->ok++;
    } else {
        if (r->failed++ == 0) {
            r->first_err = err != RV_OK ? err : RV_ERR_STATE;
        }
    }
}

static rv_broker_t *broker_open(const char *dir, const char *policy) {
    rv_error_t *err = NULL;
    rv_conf_t *conf = rv_conf_new();
    char *url = rv_bench_strf("local:%s", dir);
    rv_broker_t *b = NULL;
    if (conf && rv_conf_set(conf, "local.fsync.policy", policy, &err) == RV_OK) {
        rv_broker_opts_t o = {.conf = conf, .log_cb = on_log};
        b = rv_broker_open(url, &o, &err);
    }
    if (!b) {
        rv_bench_fail(SUITE, "cannot open %s: %s", url, err ? rv_error_message(err) : "no memory");
    }
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    free(url);
    return b;
}

/*
 * One timed run: a fresh topic of `parts` partitions, then, from a synced file system, every
 * record sent and flushed (timed); then the reports and watermarks are checked and the segment
 * files measured. The topic is kept (its name in `topic`) when `keep`, else deleted.
 */
static bool produce_run(rv_broker_t *b, const char *root, const workload_t *w, int32_t parts,
                        bool keep, char *topic, size_t topic_size, best_t *best, disk_t *disk) {
    rv_error_t *err = NULL;
    snprintf(topic, topic_size, "t%u", ++topic_counter);
    if (rv_broker_create_topic(b, topic, parts, NULL, &err) != RV_OK) {
        rv_bench_fail(SUITE, "create topic: %s", rv_error_message(err));
        rv_error_destroy(err);
        return false;
    }
    reports_t reps = {0};
    rv_producer_opts_t po = {.delivery_cb = on_delivery, .opaque = &reps};
    rv_producer_t *p = rv_producer_new(b, &po, &err);
    if (!p) {
        rv_bench_fail(SUITE, "new producer: %s", rv_error_message(err));
        rv_error_destroy(err);
        return false;
    }
    uint8_t val[LARGE_VALUE];
    memcpy(val, w->filler, w->value_len);
    rv_record_t rec = {
        .topic = topic, .partition = RV_PARTITION_ANY, .value = val, .value_len = w->value_len};

    sync_fs();
    double cpu0 = cpu_seconds(), t0 = rv_bench_now_ns();
    rv_err_t rc = RV_OK;
    for (uint64_t i = 0; i < w->n && rc == RV_OK; i++) {
        value_stamp(val, w->value_len, i);
        while ((rc = rv_producer_send(p, &rec, NULL)) == RV_ERR_AGAIN) {
            rv_producer_poll(p, 10); /* the queue is full: serve reports, then retry */
        }
        if ((i & 0xffff) == 0xffff) {
            rv_producer_poll(p, 0); /* serve reports now and then, as an application would */
        }
    }
    if (rc == RV_OK) {
        rc = rv_producer_flush(p, FLUSH_TIMEOUT_MS, &err);
    }
    double ns = rv_bench_now_ns() - t0, cpu = cpu_seconds() - cpu0;
    rv_producer_close(p);

    bool ok = rc == RV_OK && reps.ok == w->n && reps.failed == 0;
    if (!ok) {
        rv_bench_fail(SUITE,
                      "producing %" PRIu64 " records of %s to %d partition(s): %s%s%s; %" PRIu64
                      " reports OK, %" PRIu64 " failed (first: %s)",
                      w->n, w->label, (int)parts, rv_err_name(rc), err ? ": " : "",
                      err ? rv_error_message(err) : "", reps.ok, reps.failed,
                      rv_err_name(reps.first_err));
    }
    rv_error_destroy(err);
    err = NULL;
    int64_t stored = 0;
    for (int32_t part = 0; ok && part < parts; part++) {
        int64_t low = 0, high = 0;
        if (rv_broker_watermarks(b, topic, part, &low, &high, &err) != RV_OK) {
            rv_bench_fail(SUITE, "watermarks: %s", rv_error_message(err));
            ok = false;
        }
        stored += high - low;
    }
    if (ok && stored != (int64_t)w->n) {
        rv_bench_fail(SUITE, "the watermarks of topic %s count %" PRId64 " records, not %" PRIu64,
                      topic, stored, w->n);
        ok = false;
    }
    rv_error_destroy(err);
    err = NULL;
    if (ok) {
        best_add(best, ns, cpu);
        memset(disk, 0, sizeof *disk);
        for (int32_t part = 0; part < parts; part++) {
            char *dir = rv_bench_strf("%s/topics/%s/%d", root, topic, (int)part);
            disk_scan(dir, disk);
            free(dir);
            rv_local_sync_stats_t st;
            if (rv__local_sync_stats(b, topic, part, &st) == RV_OK) {
                disk->syncs += st.syncs;
            }
        }
    }
    if (!keep || !ok) {
        rv_broker_delete_topic(b, topic, NULL);
    }
    return ok;
}

/* RUNS runs of produce_run(); the last run's topic is kept when `keep` (its name in `kept`). */
static bool produce_case(rv_broker_t *b, const char *root, const workload_t *w, int32_t parts,
                         const char *policy, bool keep, char *kept, size_t kept_size, best_t *best,
                         disk_t *disk) {
    int runs = rv_bench_quick() ? 1 : RUNS;
    char topic[32];
    memset(best, 0, sizeof *best);
    for (int r = 0; r < runs; r++) {
        bool last = r == runs - 1;
        if (!produce_run(b, root, w, parts, keep && last, topic, sizeof topic, best, disk)) {
            return false;
        }
    }
    if (keep) {
        snprintf(kept, kept_size, "%s", topic);
    }
    char what[64];
    snprintf(what, sizeof what, "append %s %dp %s", w->label, (int)parts, policy);
    best_log(best, what);
    return true;
}

/* One read of the whole topic by a consumer assigned to every partition from the beginning. */
static bool consume_run(rv_broker_t *b, const char *topic, int32_t parts, const workload_t *w,
                        bool full, best_t *best) {
    rv_error_t *err = NULL;
    rv_consumer_opts_t co = {0};
    rv_consumer_t *c = rv_consumer_new(b, &co, &err);
    if (!c) {
        rv_bench_fail(SUITE, "new consumer: %s", rv_error_message(err));
        rv_error_destroy(err);
        return false;
    }
    rv_topic_partition_t tps[MAX_PARTS];
    for (int32_t p = 0; p < parts; p++) {
        tps[p] = (rv_topic_partition_t){topic, p, RV_OFFSET_BEGINNING};
    }
    seen_t seen = {.full = full};
    rv_err_t rc = RV_OK;
    double last_progress = rv_bench_now_ns();
    double cpu0 = cpu_seconds(), t0 = rv_bench_now_ns();
    rc = rv_consumer_assign(c, tps, (size_t)parts, &err);
    while (rc == RV_OK && seen.count < w->n) {
        const rv_record_t *recs;
        size_t n = 0;
        rc = rv_consumer_poll(c, &recs, POLL_MAX, &n, 1000, &err);
        if (n > 0) {
            seen_add(&seen, recs, n, -1, w);
            last_progress = rv_bench_now_ns();
        } else if (rv_bench_now_ns() - last_progress > STALL_MS * 1e6) {
            rv_bench_fail(SUITE, "reading topic %s: no record for %d s", topic, STALL_MS / 1000);
            break;
        }
    }
    double ns = rv_bench_now_ns() - t0, cpu = cpu_seconds() - cpu0;
    rv_consumer_close(c);
    if (rc != RV_OK) {
        rv_bench_fail(SUITE, "reading topic %s: %s", topic, rv_error_message(err));
    }
    rv_error_destroy(err);
    char what[96];
    snprintf(what, sizeof what, "consumer of %s %dp%s", w->label, (int)parts,
             full ? " (checking pass)" : "");
    bool ok = rc == RV_OK && seen_check(&seen, w, what);
    if (ok && !full) {
        best_add(best, ns, cpu);
    }
    return ok;
}

/* One unmeasured checking pass, then RUNS timed reads. */
static bool consume_case(rv_broker_t *b, const char *topic, int32_t parts, const workload_t *w,
                         best_t *best) {
    memset(best, 0, sizeof *best);
    if (!consume_run(b, topic, parts, w, true, best)) {
        return false;
    }
    int runs = rv_bench_quick() ? 1 : RUNS;
    for (int r = 0; r < runs; r++) {
        if (!consume_run(b, topic, parts, w, false, best)) {
            return false;
        }
    }
    char what[64];
    snprintf(what, sizeof what, "read %s %dp", w->label, (int)parts);
    best_log(best, what);
    return true;
}

/* ---- the engine alone -------------------------------------------------------------------- */

/* The partition-log options the `local:` broker uses for a topic with default properties. */
static rv_plog_opts_t engine_opts(bool writable, rv_fsync_t fsync) {
    return (rv_plog_opts_t){.name = "bench/0",
                            .writable = writable,
                            .fsync = fsync,
                            .codec = RV_CODEC_NONE,
                            .segment_bytes = INT64_C(134217728),
                            .segment_ms = INT64_C(604800000),
                            .index_interval_bytes = 4096};
}

/*
 * One timed run of rv__plog_append() into a fresh log in `dir`: batches of w->per_batch records
 * prepared in memory (views into one buffer); before each append the 16 bytes that number each
 * record of the batch are rewritten (timed: a few ns per record).
 */
static bool engine_append_run(const char *dir, rv_fsync_t fsync, const workload_t *w, best_t *best,
                              disk_t *disk) {
    size_t k = (size_t)w->per_batch;
    uint8_t *buf = malloc(k * w->value_len);
    rv_record_t *recs = calloc(k, sizeof *recs);
    rv_plog_t *log = NULL;
    rv_error_t *err = NULL;
    rv_bench_rm_tree(dir);
    rv_plog_opts_t o = engine_opts(true, fsync);
    bool ok = buf && recs && rv__plog_open(dir, &o, &log, &err) == RV_OK;
    if (!ok) {
        rv_bench_fail(SUITE, "engine: cannot open a log in %s: %s", dir,
                      err ? rv_error_message(err) : "no memory");
    }
    for (size_t i = 0; ok && i < k; i++) {
        memcpy(buf + i * w->value_len, w->filler, w->value_len);
        recs[i] = (rv_record_t){
            .partition = -1, .value = buf + i * w->value_len, .value_len = w->value_len};
    }
    double ns = 0, cpu = 0;
    if (ok) {
        sync_fs();
        double cpu0 = cpu_seconds(), t0 = rv_bench_now_ns();
        for (uint64_t seq = 0; seq < w->n && ok; seq += k) {
            size_t m = w->n - seq < k ? (size_t)(w->n - seq) : k;
            for (size_t i = 0; i < m; i++) {
                value_stamp(buf + i * w->value_len, w->value_len, seq + i);
            }
            int64_t base = 0;
            if (rv__plog_append(log, recs, m, &base, &err) != RV_OK || base != (int64_t)seq) {
                rv_bench_fail(SUITE, "engine append at %" PRIu64 ": %s", seq,
                              err ? rv_error_message(err) : "wrong base offset");
                ok = false;
            }
        }
        ns = rv_bench_now_ns() - t0;
        cpu = cpu_seconds() - cpu0;
    }
    if (ok && rv__plog_high(log) != (int64_t)w->n) {
        rv_bench_fail(SUITE, "engine: high watermark %" PRId64 " after %" PRIu64 " records",
                      rv__plog_high(log), w->n);
        ok = false;
    }
    rv__plog_close(log);
    rv_error_destroy(err);
    free(buf);
    free(recs);
    if (ok) {
        best_add(best, ns, cpu);
        memset(disk, 0, sizeof *disk);
        disk_scan(dir, disk);
    }
    return ok;
}

static bool engine_append_case(const char *dir, rv_fsync_t fsync, const char *policy,
                               const workload_t *w, best_t *best, disk_t *disk) {
    int runs = rv_bench_quick() ? 1 : RUNS;
    memset(best, 0, sizeof *best);
    for (int r = 0; r < runs; r++) {
        if (!engine_append_run(dir, fsync, w, best, disk)) {
            return false;
        }
    }
    char what[64];
    snprintf(what, sizeof what, "engine append %s %s", w->label, policy);
    best_log(best, what);
    return true;
}

/* One read of the log in `dir` with rv__plog_read() from offset 0 to the high watermark. */
static bool engine_read_run(const char *dir, const workload_t *w, bool full, best_t *best) {
    rv_plog_t *log = NULL;
    rv_plog_reader_t *r = NULL;
    rv_error_t *err = NULL;
    rv_record_t *out = malloc(ENGINE_READ_MAX * sizeof *out);
    seen_t seen = {.full = full};
    rv_plog_opts_t o = engine_opts(false, RV_FSYNC_NEVER);
    bool ok = out && rv__plog_open(dir, &o, &log, &err) == RV_OK;
    double ns = 0, cpu = 0;
    if (ok) {
        double cpu0 = cpu_seconds(), t0 = rv_bench_now_ns();
        ok = rv__plog_reader_open(log, 0, &r, &err) == RV_OK;
        while (ok) {
            size_t n = 0;
            if (rv__plog_read(r, out, ENGINE_READ_MAX, &n, &err) != RV_OK) {
                ok = false;
            } else if (n == 0) {
                break;
            } else {
                seen_add(&seen, out, n, 0, w);
            }
        }
        ns = rv_bench_now_ns() - t0;
        cpu = cpu_seconds() - cpu0;
    }
    if (!ok) {
        rv_bench_fail(SUITE, "engine read of %s: %s", dir,
                      err ? rv_error_message(err) : "no memory");
    }
    rv__plog_reader_close(r);
    rv__plog_close(log);
    rv_error_destroy(err);
    free(out);
    ok = ok && seen_check(&seen, w, full ? "engine read (checking pass)" : "engine read");
    if (ok && !full) {
        best_add(best, ns, cpu);
    }
    return ok;
}

static bool engine_read_case(const char *dir, const workload_t *w, best_t *best) {
    memset(best, 0, sizeof *best);
    if (!engine_read_run(dir, w, true, best)) {
        return false;
    }
    int runs = rv_bench_quick() ? 1 : RUNS;
    for (int r = 0; r < runs; r++) {
        if (!engine_read_run(dir, w, false, best)) {
            return false;
        }
    }
    char what[64];
    snprintf(what, sizeof what, "engine read %s", w->label);
    best_log(best, what);
    return true;
}

/* ---- rows -------------------------------------------------------------------------------- */

/*
 * A row: rivulet's MB/s of values and records/s, against a baseline in MB/s (its records/s is
 * the same bandwidth divided by the value size: the rate at which it would move those values).
 */
static void report(const char *name, const workload_t *w, const best_t *b, const char *baseline,
                   double base_mbps, bool ratio_on_records, double target, const char *note) {
    rv_bench_row_t row = {
        .suite = SUITE,
        .name = name,
        .value = best_mbps(b, w),
        .unit = "MB/s",
        .value2 = best_rps(b, w),
        .unit2 = "records/s",
        .baseline = baseline,
        .baseline_value = base_mbps,
        .baseline_value2 = base_mbps * 1e6 / (double)w->value_len,
        .ratio_on_second = ratio_on_records,
        .target = target,
        .note = note,
    };
    rv_bench_report(&row);
}

/* The machine figures every value size shares. */
typedef struct machine_s {
    double memcpy_mbps;
    double dd_seq_mbps; /* dd bs=1M conv=fdatasync: the disk's sequential write bandwidth */
} machine_t;

/* What one append case (1 and 4 partitions under one policy) measured, and its baselines. */
typedef struct append_s {
    bool ok[2];
    best_t best[2];
    disk_t disk[2];
    char base[64];    /* the baseline's name */
    double base_mbps; /* the baseline's figure (the faster of dd and the twin, when both ran) */
    double dd_mbps;
    double twin_mbps;  /* write+fdatasync, one file */
    double twin4_mbps; /* write+fdatasync round-robin over MAX_PARTS files */
} append_t;

/* mine / theirs, or 0 without a baseline figure. */
static double ratio(double mine, double theirs) {
    return theirs > 0 ? mine / theirs : 0.0;
}

/* Measures the baselines of a policy: rivulet's bytes again, in writes of its batch size. */
static void append_baselines(append_t *a, const char *policy, const workload_t *w) {
    size_t bs = (size_t)(disk_mean_batch(&a->disk[0]) + 0.5);
    size_t count = bs ? (size_t)(a->disk[0].bytes / bs) : 0;
    if (bs == 0 || count == 0) {
        return;
    }
    if (strcmp(policy, "never") == 0) {
        a->dd_mbps = dd_mbps(bs, count, "");
        snprintf(a->base, sizeof a->base, "dd bs=%zu (page cache)", bs);
    } else if (strcmp(policy, "interval") == 0) {
        a->dd_mbps = dd_mbps(bs, count, "conv=fdatasync");
        snprintf(a->base, sizeof a->base, "dd bs=%zu conv=fdatasync", bs);
    } else {
        a->dd_mbps = dd_mbps(bs, count, "oflag=dsync");
        a->twin_mbps = write_sync_mbps(bs, count, 1);
        a->twin4_mbps = write_sync_mbps(bs, count, MAX_PARTS);
        snprintf(a->base, sizeof a->base, "%s bs=%zu",
                 a->twin_mbps > a->dd_mbps ? "write+fdatasync" : "dd oflag=dsync", bs);
    }
    a->base_mbps = a->twin_mbps > a->dd_mbps ? a->twin_mbps : a->dd_mbps;
    rv_bench_log(SUITE, "baseline for %s, %s: %s %.1f MB/s (%zu writes)", policy, w->label, a->base,
                 a->base_mbps, count);
}

/* The rows of one policy: 1 and 4 partitions, with the target where the issue sets one. */
static void append_rows(const append_t *a, const char *policy, const workload_t *w,
                        const machine_t *m) {
    for (int k = 0; k < 2; k++) {
        if (!a->ok[k]) {
            continue;
        }
        int parts = k == 0 ? 1 : MAX_PARTS;
        const best_t *b = &a->best[k];
        const disk_t *d = &a->disk[k];
        char name[64], cpu[96], note[400];
        snprintf(name, sizeof name, "append %s %dp %s", w->label, parts, policy);
        cpu_note(cpu, sizeof cpu, b, w);
        double mbps = best_mbps(b, w), disk_mbps = (double)d->bytes * 1e3 / b->ns;
        if (strcmp(policy, "never") == 0 && k == 0 && w->value_len == SMALL_VALUE) {
            snprintf(note, sizeof note, "1 producer: %s; %s %.0f MB/s: %.2fx", cpu, a->base,
                     a->base_mbps, ratio(mbps, a->base_mbps));
            report(name, w, b, "target rate", TARGET_APPEND_RPS * (double)w->value_len / 1e6, true,
                   1.0, note);
        } else if (strcmp(policy, "batch") == 0) {
            char four[96] = "";
            if (k == 1) {
                snprintf(four, sizeof four, "; write+fdatasync over %d files %.0f MB/s: %.2fx",
                         MAX_PARTS, a->twin4_mbps, ratio(mbps, a->twin4_mbps));
            }
            snprintf(note, sizeof note,
                     "1 producer: %s; %" PRIu64 " batches of %.0f kB, %" PRIu64 " fdatasyncs, "
                     "%.0f MB/s to disk; dd oflag=dsync %.0f MB/s%s; dd bs=1M conv=fdatasync "
                     "%.0f MB/s: %.2fx",
                     cpu, d->batches, disk_mean_batch(d) / 1e3, d->syncs, disk_mbps, a->dd_mbps,
                     four,
                     m->dd_seq_mbps, ratio(mbps, m->dd_seq_mbps));
            report(name, w, b, a->base, a->base_mbps, false, TARGET_SYNC_RATIO, note);
        } else {
            snprintf(note, sizeof note, "1 producer: %s; %" PRIu64 " batches of %.0f kB", cpu,
                     d->batches, disk_mean_batch(d) / 1e3);
            report(name, w, b, a->base, a->base_mbps, false, 0, note);
        }
    }
}

/* One data set (value size): every append, read and engine row for it. */
static void run_workload(const workload_t *w0, const machine_t *m, bool with_interval) {
    workload_t w = *w0;
    const char *policies[] = {"never", "interval", "batch"};
    char kept[MAX_PARTS + 1][32] = {{0}};
    rv_broker_t *never_broker = NULL;
    char *never_root = NULL;
    char name[64], note[400], cpu[96];

    for (size_t pi = 0; pi < 3; pi++) {
        const char *policy = policies[pi];
        if (pi == 1 && !with_interval) {
            continue;
        }
        char *root = rv_bench_strf("%s/%s-%zu", tmp_root, policy, w.value_len);
        rv_broker_t *b = broker_open(root, policy);
        if (!b) {
            free(root);
            continue;
        }
        append_t a = {0};
        for (int k = 0; k < 2; k++) {
            int32_t parts = k == 0 ? 1 : MAX_PARTS;
            a.ok[k] = produce_case(b, root, &w, parts, policy, pi == 0, kept[parts],
                                   sizeof kept[parts], &a.best[k], &a.disk[k]);
        }
        if (pi == 0 && a.ok[0] && a.disk[0].batches > 0) {
            w.per_batch = (w.n + a.disk[0].batches - 1) / a.disk[0].batches;
        }
        append_baselines(&a, policy, &w);
        append_rows(&a, policy, &w, m);
        if (pi == 0) {
            never_broker = b;
            never_root = root;
        } else {
            rv_broker_close(b);
            rv_bench_rm_tree(root);
            free(root);
        }
    }

    /* Reads of the topics the `never` runs kept, from the page cache. */
    for (int k = 0; never_broker && k < 2; k++) {
        int32_t parts = k == 0 ? 1 : MAX_PARTS;
        best_t best;
        if (!kept[parts][0] || !consume_case(never_broker, kept[parts], parts, &w, &best)) {
            continue;
        }
        snprintf(name, sizeof name, "read %s %dp", w.label, (int)parts);
        cpu_note(cpu, sizeof cpu, &best, &w);
        if (k == 0 && w.value_len == SMALL_VALUE) {
            snprintf(note, sizeof note, "1 consumer: %s; page cache; memcpy %.0f MB/s: %.2fx", cpu,
                     m->memcpy_mbps, ratio(best_mbps(&best, &w), m->memcpy_mbps));
            report(name, &w, &best, "target rate", TARGET_READ_RPS * (double)w.value_len / 1e6,
                   true, 1.0, note);
        } else {
            snprintf(note, sizeof note, "1 consumer: %s; page cache", cpu);
            report(name, &w, &best, "memcpy", m->memcpy_mbps, false, 0, note);
        }
    }
    rv_broker_close(never_broker);
    if (never_root) {
        rv_bench_rm_tree(never_root);
        free(never_root);
    }

    /* The engine alone: the same records in the batches the producer made. */
    if (w.per_batch == 0) {
        rv_bench_log(SUITE, "engine rows of %s skipped: no producer batch size", w.label);
        return;
    }
    char *dirs[2] = {rv_bench_strf("%s/engine-never-%zu", tmp_root, w.value_len),
                     rv_bench_strf("%s/engine-batch-%zu", tmp_root, w.value_len)};
    bool have_never = false;
    for (int i = 0; i < 2; i++) {
        rv_fsync_t fsync = i == 0 ? RV_FSYNC_NEVER : RV_FSYNC_BATCH;
        const char *policy = i == 0 ? "never" : "batch";
        best_t best;
        disk_t disk = {0};
        if (!engine_append_case(dirs[i], fsync, policy, &w, &best, &disk)) {
            continue;
        }
        have_never = have_never || i == 0;
        if (i == 1) {
            rv_bench_rm_tree(dirs[i]); /* its bytes are on disk; the baseline should not wait for them */
        }
        size_t bs = (size_t)(disk_mean_batch(&disk) + 0.5);
        size_t count = bs ? (size_t)(disk.bytes / bs) : 0;
        double dd = count ? dd_mbps(bs, count, i == 0 ? "" : "oflag=dsync") : 0.0;
        char base[64];
        snprintf(base, sizeof base, "dd bs=%zu%s", bs, i == 0 ? " (page cache)" : " oflag=dsync");
        snprintf(name, sizeof name, "engine append %s %s", w.label, policy);
        cpu_note(cpu, sizeof cpu, &best, &w);
        snprintf(note, sizeof note,
                 "rv__plog_append, 1 thread: %s; batches of %" PRIu64 " records prepared", cpu,
                 w.per_batch);
        report(name, &w, &best, base, dd, false, 0, note);
    }
    best_t best;
    if (have_never && engine_read_case(dirs[0], &w, &best)) {
        snprintf(name, sizeof name, "engine read %s", w.label);
        cpu_note(cpu, sizeof cpu, &best, &w);
        snprintf(note, sizeof note, "rv__plog_read, %d records a call, 1 thread: %s",
                 ENGINE_READ_MAX, cpu);
        report(name, &w, &best, "memcpy", m->memcpy_mbps, false, 0, note);
    }
    for (int i = 0; i < 2; i++) {
        rv_bench_rm_tree(dirs[i]);
        free(dirs[i]);
    }
}

/* ---- the suite --------------------------------------------------------------------------- */

void rv_bench_suite_log(void) {
    const char *tmp = getenv("TMPDIR");
    char *tmpl = rv_bench_strf("%s/rv-bench-log-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpl)) {
        rv_bench_fail(SUITE, "cannot create a directory %s: %s", tmpl, strerror(errno));
        free(tmpl);
        return;
    }
    tmp_root = tmpl;
    bool quick = rv_bench_quick();

    machine_t m = {0};
    m.memcpy_mbps = memcpy_mbps();
    size_t seq_count = quick ? 32 : 256;
    m.dd_seq_mbps = dd_mbps(DD_SEQ_BS, seq_count, "conv=fdatasync");
    rv_bench_log(SUITE, "memcpy %.0f MB/s; dd bs=1M count=%zu conv=fdatasync %.0f MB/s",
                 m.memcpy_mbps, seq_count, m.dd_seq_mbps);

    static workload_t small, large;
    workload_init(&small, "100 B", SMALL_VALUE, quick ? SMALL_RECORDS_QUICK : SMALL_RECORDS);
    workload_init(&large, "1 KiB", LARGE_VALUE, quick ? LARGE_RECORDS_QUICK : LARGE_RECORDS);
    run_workload(&small, &m, true);
    run_workload(&large, &m, false);

    rv_bench_context("log machine: memcpy of a %zu MiB buffer %.0f MB/s; `dd if=/dev/zero bs=1M "
                     "count=%zu conv=fdatasync` (the disk's sequential write bandwidth) %.0f MB/s; "
                     "data in %s on %s",
                     MEMCPY_BYTES >> 20, m.memcpy_mbps, seq_count, m.dd_seq_mbps, tmp_root,
                     fs_name(tmp_root));
    rv_bench_context(
        "log data: per run %" PRIu64 " records of 100 B and %" PRIu64 " of 1 KiB (no key), "
        "sent round-robin to 1 or 4 partitions (1p, 4p) by one producer with the default "
        "settings (batch.size 256 KiB, linger.ms 5) and local.fsync.policy as named; "
        "MB = 10^6 bytes of values; the fastest of %d runs, each into a fresh topic after "
        "syncfs(); reads from the page cache, one consumer, after one unmeasured checking pass",
        small.n, large.n, quick ? 1 : RUNS);
    rv_bench_context("log baselines: dd and write+fdatasync write as many bytes as rivulet's "
                     "segment files held, in writes of rivulet's mean batch size (bs=); their "
                     "records/s is their MB/s over the value size; `target` rows compare with "
                     "the issue's rate (5 M appended, 10 M read, 100-byte records per second)");
    if (lib_warnings) {
        rv_bench_context("log: the library logged %u warning(s) or error(s), see stderr",
                         lib_warnings);
    }
    rv_bench_rm_tree(tmp_root);
    free(tmp_root);
    tmp_root = NULL;
}
