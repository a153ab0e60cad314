/*
 * test_plog_crash.c: the partition log survives kill -9 at any moment.
 *
 * A child process opens the log for writing and appends batches of varied sizes as fast as it
 * can, reporting through a pipe the last offset of every append that returned. The parent kills
 * it with SIGKILL after a random 1 to 50 ms, reopens the log for writing, and checks that every
 * acknowledged record is there, in order, exactly once, with the contents its offset implies,
 * that at most one unacknowledged batch survived, and that recovery cut at most one batch's
 * bytes. Rounds alternate the fsync policies never and batch, the codecs and the segment size,
 * and continue on the same directory, so every recovery starts from an earlier one. Bounded by
 * round count and by about 30 seconds.
 */
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker/plog.h"
#include "rivulet/clock.h"
#include "rv_test.h"

#define ROUNDS 30
#define MAX_BATCH 300 /* records per append */
#define MAX_VALUE 400 /* bytes per value */
#define TIME_BUDGET_MS 30000

typedef struct cap_s {
    int warnings;
    long long dropped_max;
    char last[600];
} cap_t;

static void cap_cb(void *opaque, rv_log_level_t level, const char *sub, const char *msg) {
    cap_t *c = opaque;
    (void)sub;
    if (level == RV_LOG_WARNING) {
        c->warnings++;
        snprintf(c->last, sizeof c->last, "%s", msg);
        const char *d = strstr(msg, "dropped ");
        if (d) {
            long long n = atoll(d + 8);
            c->dropped_max = n > c->dropped_max ? n : c->dropped_max;
        }
    }
}

static size_t gen_value(int64_t off, uint8_t *buf) {
    size_t n = (size_t)((off * 2654435761u) % (MAX_VALUE + 1));
    for (size_t i = 0; i < n; i++) {
        buf[i] = (uint8_t)(off ^ (int64_t)(i * 13));
    }
    return n;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static rv_plog_opts_t round_opts(int round, const rv_logger_t *lg) {
    static const rv_codec_t codecs[] = {RV_CODEC_NONE, RV_CODEC_LZ4, RV_CODEC_NONE, RV_CODEC_ZSTD};
    return (rv_plog_opts_t){.log = lg,
                            .name = "crash/0",
                            .writable = true,
                            .fsync = round % 2 ? RV_FSYNC_BATCH : RV_FSYNC_NEVER,
                            .codec = codecs[round % 4],
                            .segment_bytes = round % 3 == 0 ? 65536 : 1 << 20,
                            .index_interval_bytes = 4096};
}

/* The child: append until killed, acknowledging each append through `fd`. */
static void child(const char *dir, int round, int fd) {
    rv_plog_opts_t o = round_opts(round, NULL);
    rv_plog_t *log = NULL;
    if (rv__plog_open(dir, &o, &log, NULL) != RV_OK) {
        int64_t bad = -2;
        (void)!write(fd, &bad, sizeof bad);
        _exit(1);
    }
    static rv_record_t recs[MAX_BATCH];
    static uint8_t vals[MAX_BATCH][MAX_VALUE];
    static char keys[MAX_BATCH][24];
    unsigned seed = (unsigned)round * 7919u + 1;
    for (;;) {
        size_t k = 1 + (size_t)(rand_r(&seed) % MAX_BATCH);
        int64_t base = rv__plog_high(log);
        for (size_t i = 0; i < k; i++) {
            int64_t off = base + (int64_t)i;
            int kl = snprintf(keys[i], sizeof keys[i], "%lld", (long long)off);
            recs[i] = (rv_record_t){.timestamp_ms = 1000 + off,
                                    .key = keys[i],
                                    .key_len = (size_t)kl,
                                    .value = vals[i],
                                    .value_len = gen_value(off, vals[i])};
        }
        int64_t got = -1;
        if (rv__plog_append(log, recs, k, &got, NULL) != RV_OK || got != base) {
            _exit(2);
        }
        int64_t acked = base + (int64_t)k - 1;
        if (write(fd, &acked, sizeof acked) != (ssize_t)sizeof acked) {
            _exit(3);
        }
    }
}

static void test_kill9(void) {
    char tmpl[] = "/tmp/rv-plog-crash-XXXXXX";
    char *dir = mkdtemp(tmpl);
    REQUIRE(dir);
    int64_t t0 = rv_clock_mono_ms();
    unsigned seed = 12345;
    int rounds = 0, torn = 0;
    int64_t total_acked = 0, prev_high = 0;
    for (int round = 0; round < ROUNDS && rv_clock_mono_ms() - t0 < TIME_BUDGET_MS; round++) {
        int p[2];
        REQUIRE(pipe(p) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            child(dir, round, p[1]);
        }
        close(p[1]);
        rv_clock_sleep_ms(1 + rand_r(&seed) % 50);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "round %d: child ended with status %d", round, status);
        int64_t acked = -1, v;
        while (read(p[0], &v, sizeof v) == (ssize_t)sizeof v) {
            CHECK_MSG(v > acked, "round %d: acknowledgements go backwards", round);
            acked = v > acked ? v : acked;
        }
        close(p[0]);

        cap_t cap = {0};
        rv_logger_t lg = {.cb = cap_cb, .opaque = &cap, .level = RV_LOG_DEBUG};
        rv_plog_opts_t o = round_opts(round + 1, &lg);
        rv_plog_t *log = NULL;
        rv_error_t *err = NULL;
        if (rv__plog_open(dir, &o, &log, &err) != RV_OK) {
            CHECK_MSG(false, "round %d: reopen: %s", round, rv_error_message(err));
            rv_error_destroy(err);
            break;
        }
        int64_t high = rv__plog_high(log);
        CHECK_MSG(high >= acked + 1, "round %d: high %lld below acknowledged %lld", round,
                  (long long)high, (long long)acked);
        CHECK_MSG(high - (acked >= 0 ? acked + 1 : prev_high) <= MAX_BATCH,
                  "round %d: %lld records beyond the last acknowledgement", round,
                  (long long)(high - acked - 1));
        if (cap.warnings > 0) {
            torn++;
            /* at most one batch: header + MAX_BATCH records with their varints */
            CHECK_MSG(cap.dropped_max <= 64 + MAX_BATCH * (MAX_VALUE + 40),
                      "round %d: recovery dropped %lld bytes: %s", round, cap.dropped_max,
                      cap.last);
        }
        if (acked >= 0) {
            total_acked += acked + 1 - prev_high;
        }
        prev_high = high;

        /* Every record, in order, exactly once, with its contents. */
        rv_plog_reader_t *r = NULL;
        REQUIRE(rv__plog_reader_open(log, 0, &r, NULL) == RV_OK);
        static rv_record_t out[1024];
        int64_t expect = 0;
        int bad = 0;
        for (;;) {
            size_t n = 0;
            if (rv__plog_read(r, out, 1024, &n, &err) != RV_OK) {
                CHECK_MSG(false, "round %d: read at %lld: %s", round, (long long)expect,
                          rv_error_message(err));
                rv_error_destroy(err);
                err = NULL;
                break;
            }
            if (n == 0) {
                break;
            }
            for (size_t i = 0; i < n; i++, expect++) {
                uint8_t v2[MAX_VALUE];
                char key[24];
                size_t vl = gen_value(expect, v2);
                int kl = snprintf(key, sizeof key, "%lld", (long long)expect);
                if (out[i].offset != expect || out[i].timestamp_ms != 1000 + expect ||
                    out[i].value_len != vl || memcmp(out[i].value, v2, vl) != 0 ||
                    out[i].key_len != (size_t)kl || memcmp(out[i].key, key, (size_t)kl) != 0) {
                    if (bad++ < 3) {
                        fprintf(stderr, "round %d: record at %lld is wrong (offset %lld)\n", round,
                                (long long)expect, (long long)out[i].offset);
                    }
                }
            }
        }
        CHECK_INT(bad, 0);
        CHECK_MSG(expect == high, "round %d: read %lld records, high %lld", round,
                  (long long)expect, (long long)high);
        rv__plog_reader_close(r);
        rv__plog_close(log);
        rounds++;
    }
    fprintf(stderr,
            "     %d kill -9 rounds in %lld ms, %lld records acknowledged, %d torn tails "
            "truncated\n",
            rounds, (long long)(rv_clock_mono_ms() - t0), (long long)total_acked, torn);
    CHECK(rounds >= 4);
    CHECK(total_acked > 0);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
    RV_RUN(test_kill9);
    return rv_test_finish();
}
