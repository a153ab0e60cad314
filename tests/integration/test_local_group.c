/*
 * test_local_group.c: a consumer group of the `local:` broker across processes, with a member
 * killed mid-stream.
 *
 * Two forked members of one group consume a 6-partition topic while the parent produces. Each
 * member appends to its own report file, with write(2) so a SIGKILL loses nothing written:
 * "A partition offset time" for each partition assigned (offset: where it resumes), "R
 * partition offset value" for each record consumed (before it commits), and "V partition time"
 * for each partition revoked (after committing). Then one member is SIGKILLed; the survivor
 * must own all six partitions within a bound. The parent then checks, from the reports and its
 * delivery reports: every produced record was consumed by someone with the right value (at
 * least once, no gap), each ownership interval reads its partition contiguously from the
 * offset on_assign gave, and no partition was ever owned by both members at once (times are
 * CLOCK_MONOTONIC, shared by the processes of the machine). A consumer pair inside one process
 * must split partitions the same way. Every wait is bounded; the test takes a few seconds.
 *
 * ctest-labels: threads
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rivulet/broker.h"
#include "rivulet/clock.h"
#include "rv_test.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define PARTITIONS 6
#define TOPIC "grp"
#define GROUP "workers"
#define MAX_RECORDS 1000

static char root[64];
static char url[96];
static char stop_path[128];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static rv_conf_t *member_conf(void) {
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "local.fsync.policy", "never", NULL);
    rv_conf_set(conf, "group.check.interval.ms", "100", NULL);
    rv_conf_set(conf, "auto.offset.reset", "earliest", NULL);
    return conf;
}

static rv_broker_t *open_broker(void) {
    rv_conf_t *conf = member_conf();
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

/* ---- the member process ------------------------------------------------------------------ */

typedef struct member_s {
    int fd;
    int failures;
} member_t;

static void say(member_t *m, const char *fmt, ...) RV_PRINTF(2, 3);

static void say(member_t *m, const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0 && write(m->fd, line, (size_t)n) != n) {
        m->failures++;
    }
}

static void on_assign(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps,
                      size_t count) {
    member_t *m = opaque;
    (void)c;
    int64_t now = rv_clock_mono_ns();
    for (size_t i = 0; i < count; i++) {
        say(m, "A %d %lld %lld\n", (int)tps[i].partition, (long long)tps[i].offset, (long long)now);
    }
}

static void on_revoke(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps,
                      size_t count) {
    member_t *m = opaque;
    if (rv_consumer_commit(c, NULL, 0, NULL) != RV_OK) {
        say(m, "E commit in revoke\n");
    }
    int64_t now = rv_clock_mono_ns();
    for (size_t i = 0; i < count; i++) {
        say(m, "V %d %lld\n", (int)tps[i].partition, (long long)now);
    }
}

static int member_main(const char *report) {
    member_t m = {.fd = open(report, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)};
    rv_broker_t *b = open_broker();
    if (m.fd < 0 || !b) {
        return 1;
    }
    rv_conf_t *conf = member_conf();
    rv_consumer_opts_t co = {
        .conf = conf,
        .group = GROUP,
        .callbacks = {.opaque = &m, .on_assign = on_assign, .on_revoke = on_revoke}};
    rv_error_t *err = NULL;
    rv_consumer_t *c = rv_consumer_new(b, &co, &err);
    rv_conf_destroy(conf);
    const char *topics[] = {TOPIC};
    if (!c || rv_consumer_subscribe(c, topics, 1, &err) != RV_OK) {
        say(&m, "E %s\n", rv_error_message(err));
        return 1;
    }
    int64_t deadline = rv_clock_mono_ms() + 28000;
    int rc = 0;
    while (access(stop_path, F_OK) != 0 && rv_clock_mono_ms() < deadline) {
        const rv_record_t *recs;
        size_t n = 0;
        if (rv_consumer_poll(c, &recs, 10, &n, 50, &err) != RV_OK) {
            say(&m, "E poll %s\n", rv_error_message(err));
            rc = 1;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            say(&m, "R %d %lld %.*s\n", (int)recs[i].partition, (long long)recs[i].offset,
                (int)recs[i].value_len, (const char *)recs[i].value);
        }
        if (n > 0) {
            rv_clock_sleep_ms(3); /* "processing": a kill often lands before the commit */
        }
        if (n > 0 && rv_consumer_commit(c, NULL, 0, &err) != RV_OK) {
            say(&m, "E commit %s\n", rv_error_message(err));
            rc = 1;
            break;
        }
    }
    rv_error_destroy(err);
    rv_consumer_close(c); /* revokes: the last V lines */
    rv_broker_close(b);
    close(m.fd);
    return rc || m.failures ? 1 : 0;
}

/* ---- reading reports --------------------------------------------------------------------- */

typedef struct interval_s {
    int member;
    int partition;
    int64_t from_ns;
    int64_t to_ns; /* INT64_MAX while open */
} interval_t;

typedef struct replay_s {
    bool owned[PARTITIONS];
    int64_t next[PARTITIONS];
    int records;
    int errors;
    interval_t intervals[256];
    size_t nintervals;
} replay_t;

/* Which value each (partition, offset) was produced with; -1 = not produced. */
static int produced[PARTITIONS][MAX_RECORDS];
/* How many times each (partition, offset) was consumed, by anyone. */
static int consumed[PARTITIONS][MAX_RECORDS];

/* Replays a member's report: checks contiguity per ownership interval and values, and
 * collects the intervals. `count` false only looks at ownership. */
static void replay(const char *path, int member, replay_t *r, bool count) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "r");
    if (!f) {
        return;
    }
    char line[512];
    while (fgets(line, sizeof line, f)) {
        int p = -1;
        long long a = 0, t = 0;
        char value[64];
        if (line[0] == 'A' && sscanf(line, "A %d %lld %lld", &p, &a, &t) == 3 && p >= 0 &&
            p < PARTITIONS) {
            if (count) {
                CHECK_MSG(!r->owned[p], "member %d assigned partition %d twice", member, p);
            }
            r->owned[p] = true;
            r->next[p] = a;
            if (r->nintervals < ARRAY_LEN(r->intervals)) {
                r->intervals[r->nintervals++] = (interval_t){member, p, t, INT64_MAX};
            }
        } else if (line[0] == 'V' && sscanf(line, "V %d %lld", &p, &t) == 2 && p >= 0 &&
                   p < PARTITIONS) {
            r->owned[p] = false;
            for (size_t i = r->nintervals; i-- > 0;) {
                if (r->intervals[i].partition == p && r->intervals[i].to_ns == INT64_MAX) {
                    r->intervals[i].to_ns = t;
                    break;
                }
            }
        } else if (line[0] == 'R' && sscanf(line, "R %d %lld %63s", &p, &a, value) == 3 && p >= 0 &&
                   p < PARTITIONS && a >= 0 && a < MAX_RECORDS) {
            r->records++;
            if (!count) {
                continue;
            }
            CHECK_MSG(r->owned[p], "member %d read partition %d offset %lld without owning it",
                      member, p, a);
            CHECK_MSG(a == r->next[p],
                      "member %d partition %d: read offset %lld, expected "
                      "%lld (a gap or a repeat within one assignment)",
                      member, p, a, (long long)r->next[p]);
            r->next[p] = a + 1;
            char want[32];
            snprintf(want, sizeof want, "v%d", produced[p][a]);
            CHECK_MSG(produced[p][a] >= 0 && strcmp(value, want) == 0,
                      "partition %d offset %lld holds '%s', produced as '%s'", p, a, value, want);
            consumed[p][a]++;
        } else if (line[0] == 'E') {
            r->errors++;
            if (count) {
                fprintf(stderr, "member %d: %s", member, line);
            }
        }
    }
    fclose(f);
}

static int owned_count(const replay_t *r) {
    int n = 0;
    for (int p = 0; p < PARTITIONS; p++) {
        n += r->owned[p];
    }
    return n;
}

/* Consumed-at-least-once coverage of the produced records, read from both reports. */
static bool covered(const char *rep0, const char *rep1, int total) {
    static int seen[PARTITIONS][MAX_RECORDS];
    memset(seen, 0, sizeof seen);
    const char *reps[2] = {rep0, rep1};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(reps[k], "r");
        if (!f) {
            continue;
        }
        char line[512];
        while (fgets(line, sizeof line, f)) {
            int p;
            long long a;
            if (line[0] == 'R' && sscanf(line, "R %d %lld", &p, &a) == 2 && p >= 0 &&
                p < PARTITIONS && a >= 0 && a < MAX_RECORDS) {
                seen[p][a] = 1;
            }
        }
        fclose(f);
    }
    int n = 0;
    for (int p = 0; p < PARTITIONS; p++) {
        for (int a = 0; a < MAX_RECORDS; a++) {
            n += produced[p][a] >= 0 && seen[p][a];
        }
    }
    return n == total;
}

/* ---- the parent -------------------------------------------------------------------------- */

static void on_delivery(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    int *failures = opaque;
    int value = (int)(intptr_t)rec_opaque;
    if (err != RV_OK || rec->partition < 0 || rec->partition >= PARTITIONS || rec->offset < 0 ||
        rec->offset >= MAX_RECORDS) {
        (*failures)++;
        return;
    }
    produced[rec->partition][rec->offset] = value;
}

static void produce(rv_producer_t *p, int from, int to) {
    for (int i = from; i < to; i++) {
        char value[32];
        snprintf(value, sizeof value, "v%d", i);
        rv_record_t rec = {.topic = TOPIC,
                           .partition = i % PARTITIONS,
                           .value = value,
                           .value_len = strlen(value)};
        CHECK_INT(rv_producer_send(p, &rec, (void *)(intptr_t)i), RV_OK);
    }
    CHECK_INT(rv_producer_flush(p, 10000, NULL), RV_OK);
}

static bool wait_for(int ms, bool (*cond)(void *), void *arg) {
    int64_t deadline = rv_clock_mono_ms() + ms;
    while (rv_clock_mono_ms() < deadline) {
        if (cond(arg)) {
            return true;
        }
        rv_clock_sleep_ms(10);
    }
    return cond(arg);
}

static char rep[2][128];

static bool both_own_three(void *arg) {
    (void)arg;
    replay_t a, b;
    replay(rep[0], 0, &a, false);
    replay(rep[1], 1, &b, false);
    return owned_count(&a) == 3 && owned_count(&b) == 3;
}

static bool survivor_owns_all(void *arg) {
    (void)arg;
    replay_t b;
    replay(rep[1], 1, &b, false);
    return owned_count(&b) == PARTITIONS;
}

static int total_produced;

static bool all_covered(void *arg) {
    (void)arg;
    return covered(rep[0], rep[1], total_produced);
}

static void test_group_with_killed_member(void) {
    memset(produced, 0xff, sizeof produced);
    memset(consumed, 0, sizeof consumed);
    {
        rv_broker_t *b = open_broker();
        REQUIRE(b);
        CHECK_INT(rv_broker_create_topic(b, TOPIC, PARTITIONS, NULL, NULL), RV_OK);
        rv_broker_close(b); /* no library thread may run while forking */
    }
    pid_t pids[2];
    for (int k = 0; k < 2; k++) {
        snprintf(rep[k], sizeof rep[k], "%s/member%d.txt", root, k);
        pids[k] = fork();
        REQUIRE(pids[k] >= 0);
        if (pids[k] == 0) {
            exit(member_main(rep[k]));
        }
        rv_clock_sleep_ms(k == 0 ? 300 : 0); /* the first member takes all, then shares */
    }
    CHECK_MSG(wait_for(10000, both_own_three, NULL), "the members did not split 3/3");

    rv_broker_t *b = open_broker();
    REQUIRE(b);
    int failures = 0;
    rv_producer_opts_t po = {.delivery_cb = on_delivery, .opaque = &failures};
    rv_producer_t *p = rv_producer_new(b, &po, NULL);
    REQUIRE(p);

    produce(p, 0, 300);
    total_produced = 300;
    CHECK_MSG(wait_for(10000, all_covered, NULL), "phase 1 not consumed");

    produce(p, 300, 600);
    total_produced = 600;
    rv_clock_sleep_ms(30); /* the members are mid-way through the new records */
    int64_t kill_ns = rv_clock_mono_ns();
    kill(pids[0], SIGKILL);
    int status;
    waitpid(pids[0], &status, 0);
    CHECK(WIFSIGNALED(status));
    int64_t t0 = rv_clock_mono_ms();
    bool took = wait_for(10000, survivor_owns_all, NULL);
    int64_t takeover = rv_clock_mono_ms() - t0;
    CHECK_MSG(took, "the survivor did not take the dead member's partitions");
    fprintf(stderr, "survivor owned all %d partitions %lld ms after the kill\n", PARTITIONS,
            (long long)takeover);
    CHECK_MSG(takeover < 5000, "takeover took %lld ms", (long long)takeover);

    produce(p, 600, 720);
    total_produced = 720;
    CHECK_MSG(wait_for(10000, all_covered, NULL), "not every record was consumed");
    CHECK_INT(failures, 0);
    rv_producer_close(p);

    int fd = open(stop_path, O_WRONLY | O_CREAT, 0644);
    close(fd);
    int64_t deadline = rv_clock_mono_ms() + 10000;
    int code = -1;
    while (rv_clock_mono_ms() < deadline) {
        if (waitpid(pids[1], &status, WNOHANG) == pids[1]) {
            code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            break;
        }
        rv_clock_sleep_ms(10);
    }
    if (code == -1) {
        kill(pids[1], SIGKILL);
        waitpid(pids[1], &status, 0);
    }
    CHECK_INT(code, 0);

    /* The full check of both reports. */
    replay_t r0, r1;
    replay(rep[0], 0, &r0, true);
    replay(rep[1], 1, &r1, true);
    CHECK_INT(r0.errors + r1.errors, 0);
    int missing = 0, twice = 0;
    for (int q = 0; q < PARTITIONS; q++) {
        for (int a = 0; a < MAX_RECORDS; a++) {
            if (produced[q][a] >= 0) {
                missing += consumed[q][a] == 0;
                twice += consumed[q][a] > 1;
            }
        }
    }
    CHECK_INT(missing, 0);
    fprintf(stderr, "consumed %d + %d records for %d produced (%d redelivered after the kill)\n",
            r0.records, r1.records, total_produced, twice);
    CHECK_INT(owned_count(&r1), 0); /* closing revoked everything */
    /* Ownership never overlaps; the dead member's intervals end at the kill at the latest. */
    for (size_t i = 0; i < r0.nintervals; i++) {
        interval_t x = r0.intervals[i];
        if (x.to_ns == INT64_MAX) {
            x.to_ns = kill_ns;
        }
        for (size_t j = 0; j < r1.nintervals; j++) {
            interval_t y = r1.intervals[j];
            if (x.partition != y.partition) {
                continue;
            }
            bool disjoint = x.to_ns <= y.from_ns || y.to_ns <= x.from_ns;
            CHECK_MSG(disjoint, "partition %d owned by both: [%lld, %lld] and [%lld, %lld]",
                      x.partition, (long long)x.from_ns, (long long)x.to_ns, (long long)y.from_ns,
                      (long long)y.to_ns);
        }
    }
    rv_broker_close(b);
}

/* Two members in one process split the partitions as two processes do. */
typedef struct local_member_s {
    int owned[PARTITIONS];
    int assigns;
} local_member_t;

static void lm_assign(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps,
                      size_t count) {
    local_member_t *m = opaque;
    (void)c;
    m->assigns++;
    for (size_t i = 0; i < count; i++) {
        m->owned[tps[i].partition]++;
    }
}

static void lm_revoke(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps,
                      size_t count) {
    local_member_t *m = opaque;
    rv_consumer_commit(c, NULL, 0, NULL);
    for (size_t i = 0; i < count; i++) {
        m->owned[tps[i].partition]--;
    }
}

static void test_two_members_one_process(void) {
    rv_broker_t *b = open_broker();
    REQUIRE(b);
    CHECK_INT(rv_broker_create_topic(b, "inproc", PARTITIONS, NULL, NULL), RV_OK);
    local_member_t ms[2];
    memset(ms, 0, sizeof ms);
    rv_consumer_t *cs[2];
    const char *topics[] = {"inproc"};
    rv_conf_t *conf = member_conf();
    for (int k = 0; k < 2; k++) {
        rv_consumer_opts_t co = {
            .conf = conf,
            .group = "inproc-group",
            .callbacks = {.opaque = &ms[k], .on_assign = lm_assign, .on_revoke = lm_revoke}};
        cs[k] = rv_consumer_new(b, &co, NULL);
        REQUIRE(cs[k]);
        CHECK_INT(rv_consumer_subscribe(cs[k], topics, 1, NULL), RV_OK);
    }
    rv_conf_destroy(conf);
    int64_t deadline = rv_clock_mono_ms() + 10000;
    int n0 = 0, n1 = 0;
    while (rv_clock_mono_ms() < deadline) {
        for (int k = 0; k < 2; k++) {
            const rv_record_t *recs;
            size_t n;
            CHECK_INT(rv_consumer_poll(cs[k], &recs, 10, &n, 20, NULL), RV_OK);
        }
        n0 = n1 = 0;
        bool overlap = false;
        for (int q = 0; q < PARTITIONS; q++) {
            n0 += ms[0].owned[q];
            n1 += ms[1].owned[q];
            overlap |= ms[0].owned[q] && ms[1].owned[q];
        }
        CHECK(!overlap);
        if (n0 == 3 && n1 == 3) {
            break;
        }
    }
    CHECK_INT(n0, 3);
    CHECK_INT(n1, 3);
    rv_consumer_close(cs[0]);
    /* The remaining member takes the other three once the first has left. */
    deadline = rv_clock_mono_ms() + 10000;
    while (rv_clock_mono_ms() < deadline && n1 != PARTITIONS) {
        const rv_record_t *recs;
        size_t n;
        CHECK_INT(rv_consumer_poll(cs[1], &recs, 10, &n, 20, NULL), RV_OK);
        n1 = 0;
        for (int q = 0; q < PARTITIONS; q++) {
            n1 += ms[1].owned[q];
        }
    }
    CHECK_INT(n1, PARTITIONS);
    rv_consumer_close(cs[1]);
    rv_broker_close(b);
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/rv-localgrp-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(url, sizeof url, "local:%s/data", root);
    snprintf(stop_path, sizeof stop_path, "%s/stop", root);
    RV_RUN(test_group_with_killed_member);
    RV_RUN(test_two_members_one_process);
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rv_test_finish();
}
