/*
 * test_local_group_commit.c: the `batch` fsync policy of the `local:` broker (group commit).
 *
 * Several batches of one partition must share one fsync: while the test holds the partition's
 * writer lock, a producer queues 40 batches; once the lock is released they are appended
 * together and the broker's sync counters (rv__local_sync_stats) must show at most two syncs
 * for the 40 appends. No delivery report may come before the fsync covering its record: every
 * report checks that its offset is below the offset the last finished sync covered. A producer
 * process killed with SIGKILL while it runs ahead of the disk must never have acknowledged a
 * record that is missing, or different, when the directory is reopened. Finally the broker
 * contract runs on `local:` under the `batch` and `never` policies (the default `interval` one
 * runs in test_broker_contract). Children are forked while the parent holds no broker, and
 * every wait is bounded.
 *
 * ctest-labels: threads
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker/local_int.h"
#include "broker_contract.h"
#include "rivulet/broker.h"
#include "rivulet/clock.h"
#include "rv_test.h"

static char root[64];
static char url[96];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static rv_broker_t *open_broker(const char *policy) {
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "local.fsync.policy", policy, NULL);
    rv_broker_opts_t opts = {.conf = conf};
    rv_error_t *err = NULL;
    rv_broker_t *b = rv_broker_open(url, &opts, &err);
    if (!b) {
        fprintf(stderr, "open %s: %s\n", url, rv_error_message(err));
    }
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return b;
}

static rv_producer_t *new_producer(rv_broker_t *b, const char *batch_size, const char *linger_ms,
                                   rv_delivery_cb cb, void *opaque) {
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "batch.size", batch_size, NULL);
    rv_conf_set(conf, "linger.ms", linger_ms, NULL);
    rv_producer_opts_t po = {.conf = conf, .delivery_cb = cb, .opaque = opaque};
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(b, &po, &err);
    if (!p) {
        fprintf(stderr, "producer: %s\n", rv_error_message(err));
    }
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return p;
}

/* The value of record `i`: its number, then filler, 40 to 139 bytes in all. */
static size_t value_of(int64_t i, char *out, size_t size) {
    int n = snprintf(out, size, "gc-%" PRId64 "-", i);
    size_t len = 40 + (size_t)(i % 100);
    for (size_t k = (size_t)n; k < len && k < size; k++) {
        out[k] = (char)('a' + (i + (int64_t)k) % 26);
    }
    return len < size ? len : size;
}

/* ---- several batches share one fsync ---------------------------------------------------------
 */

typedef struct acks_s {
    rv_broker_t *broker;
    int64_t next; /* the offset the next report should carry */
    int ok;       /* reports with RV_OK */
    int failed;   /* reports with an error */
    int disorder; /* reports out of offset order */
    int early;    /* reports whose record no finished sync covered yet */
} acks_t;

static void on_ack(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    acks_t *a = opaque;
    (void)rec_opaque;
    if (err != RV_OK) {
        a->failed++;
        return;
    }
    rv_local_sync_stats_t st = {0};
    if (rv__local_sync_stats(a->broker, rec->topic, rec->partition, &st) != RV_OK ||
        rec->offset >= st.synced_high) {
        a->early++;
    }
    if (rec->offset != a->next) {
        a->disorder++;
    }
    a->next = rec->offset + 1;
    a->ok++;
}

static void test_batches_share_one_sync(void) {
    enum { BATCHES = 40, PER_BATCH = 4 };
    rv_broker_t *b = open_broker("batch");
    REQUIRE(b);
    CHECK_INT(rv_broker_create_topic(b, "share", 1, NULL, NULL), RV_OK);
    /* Hold the partition's writer lock as another process would: the producer's batches
     * queue up behind it. */
    char lock_path[160];
    snprintf(lock_path, sizeof lock_path, "%s/data/topics/share/0/writer.lock", root);
    int fd = open(lock_path, O_RDWR | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(flock(fd, LOCK_EX | LOCK_NB) == 0);

    acks_t a = {.broker = b};
    /* 1000-byte values are accounted 1024 bytes: a batch is sealed every 4 records. */
    rv_producer_t *p = new_producer(b, "4096", "60000", on_ack, &a);
    REQUIRE(p);
    char value[1000];
    memset(value, 'v', sizeof value);
    for (int i = 0; i < BATCHES * PER_BATCH; i++) {
        memcpy(value, &i, sizeof i);
        rv_record_t rec = {
            .topic = "share", .partition = 0, .value = value, .value_len = sizeof value};
        CHECK_INT(rv_producer_send(p, &rec, NULL), RV_OK);
    }
    rv_clock_sleep_ms(100); /* the producer meets the lock and retries every 20 ms */
    CHECK_INT(rv_producer_poll(p, 0), 0);
    rv_local_sync_stats_t st = {0};
    CHECK_INT(rv__local_sync_stats(b, "share", 0, &st), RV_OK);
    CHECK_INT(st.appends, 0);

    flock(fd, LOCK_UN);
    close(fd);
    CHECK_INT(rv_producer_flush(p, 10000, NULL), RV_OK);
    CHECK_INT(a.ok, BATCHES * PER_BATCH);
    CHECK_INT(a.failed, 0);
    CHECK_INT(a.disorder, 0);
    CHECK_MSG(a.early == 0, "%d report(s) came before the sync covering their record", a.early);
    CHECK_INT(rv__local_sync_stats(b, "share", 0, &st), RV_OK);
    fprintf(stderr,
            "batch policy: %" PRIu64 " appends, %" PRIu64 " sync(s), synced up to %" PRId64 "\n",
            st.appends, st.syncs, st.synced_high);
    CHECK_INT(st.appends, BATCHES);
    CHECK_INT(st.synced_appends, BATCHES);
    CHECK_MSG(st.syncs >= 1 && st.syncs <= 2, "%" PRIu64 " syncs for %d batches", st.syncs,
              BATCHES);
    CHECK_INT(st.synced_high, BATCHES * PER_BATCH);
    rv_producer_close(p);
    rv_broker_close(b);
}

/* ---- acknowledged records survive SIGKILL ------------------------------------------------------
 */

typedef struct child_s {
    rv_broker_t *broker;
    int fd;
} child_t;

/* Reports each acknowledged offset to the parent, or -1 - offset for a report that came before
 * the sync covering its record. One write(2) each, so a SIGKILL never leaves half a report. */
static void child_ack(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    child_t *c = opaque;
    (void)rec_opaque;
    if (err != RV_OK) {
        return;
    }
    rv_local_sync_stats_t st = {0};
    int64_t line = rec->offset;
    if (rv__local_sync_stats(c->broker, rec->topic, rec->partition, &st) != RV_OK ||
        rec->offset >= st.synced_high) {
        line = -1 - rec->offset;
    }
    if (write(c->fd, &line, sizeof line) < 0) {
        /* the parent sees a short report */
    }
}

static void child_produce(int fd) {
    rv_broker_t *b = open_broker("batch");
    child_t c = {b, fd};
    /* Small batches, so the producer runs ahead of the disk and groups form. */
    rv_producer_t *p = b ? new_producer(b, "16384", "1", child_ack, &c) : NULL;
    for (int64_t i = 0; p; i++) { /* until killed */
        char value[160];
        rv_record_t rec = {.topic = "kill", .partition = 0, .value = value};
        rec.value_len = value_of(i, value, sizeof value);
        rv_err_t rc;
        while ((rc = rv_producer_send(p, &rec, NULL)) == RV_ERR_AGAIN) {
            rv_producer_poll(p, 10);
        }
        if (rc != RV_OK) {
            break;
        }
        if (i % 64 == 0) {
            rv_producer_poll(p, 0);
        }
    }
    _exit(1);
}

/* Appends to `acked` what the pipe holds (whole reports only; `have` keeps a partial one). */
static void drain(int fd, int64_t **acked, size_t *n, size_t *cap, char *part, size_t *have) {
    for (;;) {
        ssize_t r = read(fd, part + *have, sizeof(int64_t) - *have);
        if (r <= 0) {
            return;
        }
        *have += (size_t)r;
        if (*have == sizeof(int64_t)) {
            if (*n == *cap) {
                *cap = *cap ? *cap * 2 : 4096;
                int64_t *bigger = realloc(*acked, *cap * sizeof **acked);
                if (!bigger) {
                    return;
                }
                *acked = bigger;
            }
            memcpy(&(*acked)[(*n)++], part, sizeof(int64_t));
            *have = 0;
        }
    }
}

static void test_acked_survive_kill(void) {
    enum { WANT = 20000 };
    rv_broker_t *admin = open_broker("never");
    REQUIRE(admin);
    CHECK_INT(rv_broker_create_topic(admin, "kill", 1, NULL, NULL), RV_OK);
    rv_broker_close(admin);
    int out[2];
    REQUIRE(pipe(out) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(out[0]);
        child_produce(out[1]);
    }
    close(out[1]);
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    int64_t *acked = NULL;
    size_t n = 0, cap = 0, have = 0;
    char part[sizeof(int64_t)];
    int64_t deadline = rv_clock_mono_ms() + 20000;
    while (n < WANT && rv_clock_mono_ms() < deadline) {
        drain(out[0], &acked, &n, &cap, part, &have);
        rv_clock_sleep_ms(1);
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    drain(out[0], &acked, &n, &cap, part, &have); /* reports written before the kill */
    close(out[0]);
    CHECK_MSG(n >= WANT, "only %zu records were acknowledged", n);

    int64_t max_acked = -1;
    size_t early = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t off = acked[i] >= 0 ? acked[i] : -1 - acked[i];
        early += acked[i] < 0;
        max_acked = off > max_acked ? off : max_acked;
    }
    CHECK_MSG(early == 0, "%zu report(s) came before the sync covering their record", early);

    rv_broker_t *b = open_broker("batch"); /* recovers the log the kill left */
    REQUIRE(b);
    int64_t low = -1, high = -1;
    CHECK_INT(rv_broker_watermarks(b, "kill", 0, &low, &high, NULL), RV_OK);
    CHECK_MSG(high > max_acked, "high watermark %" PRId64 ", acknowledged up to %" PRId64, high,
              max_acked);
    rv_consumer_t *c = rv_consumer_new(b, NULL, NULL);
    REQUIRE(c);
    rv_topic_partition_t tp = {"kill", 0, RV_OFFSET_BEGINNING};
    CHECK_INT(rv_consumer_assign(c, &tp, 1, NULL), RV_OK);
    int64_t next = 0, bad = 0;
    while (next < high) {
        const rv_record_t *recs;
        size_t got = 0;
        rv_error_t *err = NULL;
        rv_err_t e = rv_consumer_poll(c, &recs, 4096, &got, 1000, &err);
        CHECK_MSG(e == RV_OK, "%s", rv_error_message(err));
        rv_error_destroy(err);
        if (e != RV_OK || got == 0) {
            break;
        }
        for (size_t i = 0; i < got; i++, next++) {
            char want[160];
            size_t len = value_of(next, want, sizeof want);
            if (recs[i].offset != next || recs[i].value_len != len ||
                memcmp(recs[i].value, want, len) != 0) {
                bad++;
            }
        }
    }
    CHECK_INT(next, high);
    CHECK_INT(bad, 0);
    fprintf(stderr,
            "after SIGKILL: %zu acknowledged (up to offset %" PRId64 "), %" PRId64 " stored\n", n,
            max_acked, high);
    free(acked);
    rv_consumer_close(c);
    rv_broker_close(b);
}

/* ---- the broker contract under the other policies ------------------------------------------- */

static void contract(const char *policy) {
    char pair[64], curl[128];
    snprintf(pair, sizeof pair, "local.fsync.policy=%s", policy);
    snprintf(curl, sizeof curl, "local:%s/contract-%s", root, policy);
    const char *const conf[] = {pair, NULL};
    bc_caps_t caps = {.conf = conf};
    bc_run_suite(curl, &caps);
}

static void test_contract_batch(void) {
    contract("batch");
}

static void test_contract_never(void) {
    contract("never");
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/rv-gc-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(url, sizeof url, "local:%s/data", root);
    RV_RUN(test_batches_share_one_sync);
    RV_RUN(test_acked_survive_kill);
    RV_RUN(test_contract_batch);
    RV_RUN(test_contract_never);
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rv_test_finish();
}
