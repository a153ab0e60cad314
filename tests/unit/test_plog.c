/*
 * test_plog.c: unit tests of the partition log (src/broker/plog*.c), the storage engine of the
 * `local:` broker.
 *
 * Each test works in its own mkdtemp directory under /tmp and removes it. The tests check exact
 * records, offsets and file contents: round trips of keys, null keys, tombstones, headers and
 * timestamps; segment rolls, seeks and offset-for-time; index rebuilds; codecs; retention;
 * compaction; torn-tail recovery and mid-log damage; the writer lock; a reader in another
 * process woken by the futex; concurrent readers and one appender.
 * ctest-labels: threads
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker/plog.h"
#include "broker/plog_int.h"
#include "rivulet/clock.h"
#include "rv_test.h"

/* ---- helpers ----------------------------------------------------------------------------- */

typedef struct cap_s {
    char lines[64][600];
    int n;
    int warnings;
    int errors;
    pthread_mutex_t mu;
} cap_t;

static void cap_cb(void *opaque, rv_log_level_t level, const char *sub, const char *msg) {
    cap_t *c = opaque;
    pthread_mutex_lock(&c->mu);
    if (c->n < 64) {
        snprintf(c->lines[c->n++], sizeof c->lines[0], "%s %s", rv_log_level_name(level), msg);
    }
    c->warnings += level == RV_LOG_WARNING;
    c->errors += level == RV_LOG_ERROR;
    pthread_mutex_unlock(&c->mu);
    (void)sub;
}

static void cap_init(cap_t *c, rv_logger_t *lg) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    *lg = (rv_logger_t){.cb = cap_cb, .opaque = c, .level = RV_LOG_DEBUG};
}

/* The first captured line at `level` that contains `needle`, or NULL. */
static const char *cap_find(cap_t *c, const char *level, const char *needle) {
    for (int i = 0; i < c->n; i++) {
        if (strncmp(c->lines[i], level, strlen(level)) == 0 && strstr(c->lines[i], needle)) {
            return c->lines[i];
        }
    }
    return NULL;
}

static char *make_dir(void) {
    char tmpl[] = "/tmp/rv-plog-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_dir(char *dir) {
    if (dir) {
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(dir);
    }
}

static rv_plog_opts_t opts_w(const rv_logger_t *lg) {
    return (rv_plog_opts_t){.log = lg,
                            .name = "t/0",
                            .writable = true,
                            .fsync = RV_FSYNC_NEVER,
                            .codec = RV_CODEC_NONE,
                            .segment_bytes = 1 << 20,
                            .segment_ms = 0,
                            .index_interval_bytes = 256};
}

static rv_plog_t *open_log(const char *dir, rv_plog_opts_t o) {
    rv_plog_t *log = NULL;
    rv_error_t *err = NULL;
    rv_err_t rc = rv__plog_open(dir, &o, &log, &err);
    if (rc != RV_OK) {
        fprintf(stderr, "open %s: %s\n", dir, rv_error_message(err));
    }
    rv_error_destroy(err);
    return log;
}

/* Contents derived from the offset, so any record can be checked on its own. */
static size_t gen_value(int64_t off, uint8_t *buf) {
    size_t n = 5 + (size_t)((off * 7919) % 150);
    for (size_t i = 0; i < n; i++) {
        buf[i] = (uint8_t)(off * 131 + (int64_t)i * 7);
    }
    return n;
}

static size_t gen_key(int64_t off, char *buf) {
    return (size_t)snprintf(buf, 32, "key-%lld", (long long)(off % 37));
}

static int64_t gen_ts(int64_t off) {
    return 1600000000000LL + off * 10;
}

/* Appends `n` generated records starting at the log's high watermark. */
static rv_err_t append_gen(rv_plog_t *log, size_t n) {
    rv_record_t recs[256];
    uint8_t vals[256][160];
    char keys[256][32];
    int64_t base = rv__plog_high(log);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < 256 ? n - done : 256;
        for (size_t i = 0; i < k; i++) {
            int64_t off = base + (int64_t)(done + i);
            recs[i] = (rv_record_t){.timestamp_ms = gen_ts(off),
                                    .key = keys[i],
                                    .key_len = gen_key(off, keys[i]),
                                    .value = vals[i],
                                    .value_len = gen_value(off, vals[i])};
        }
        int64_t got = -1;
        rv_err_t rc = rv__plog_append(log, recs, k, &got, NULL);
        if (rc != RV_OK || got != base + (int64_t)done) {
            return rc != RV_OK ? rc : RV_ERR_STATE;
        }
        done += k;
    }
    return RV_OK;
}

/* Checks one generated record; returns 0 when it is right. */
static int check_gen(const rv_record_t *r, int64_t off) {
    uint8_t v[160];
    char k[32];
    size_t vl = gen_value(off, v), kl = gen_key(off, k);
    if (r->offset != off || r->timestamp_ms != gen_ts(off) || r->value_len != vl ||
        memcmp(r->value, v, vl) != 0 || r->key_len != kl || memcmp(r->key, k, kl) != 0 ||
        r->header_count != 0 || r->partition != -1 || r->topic != NULL) {
        return 1;
    }
    return 0;
}

/* Reads generated records [from, to) in chunks of `max`; returns how many were right, or -1. */
static int64_t read_gen(rv_plog_t *log, int64_t from, int64_t to, size_t max) {
    rv_plog_reader_t *r = NULL;
    rv_record_t out[512];
    if (rv__plog_reader_open(log, from, &r, NULL) != RV_OK) {
        return -1;
    }
    int64_t expect = from, good = 0;
    while (expect < to) {
        size_t n = 0;
        rv_error_t *err = NULL;
        if (rv__plog_read(r, out, max, &n, &err) != RV_OK) {
            fprintf(stderr, "read at %lld: %s\n", (long long)expect, rv_error_message(err));
            rv_error_destroy(err);
            break;
        }
        if (n == 0) {
            break;
        }
        for (size_t i = 0; i < n && expect < to; i++, expect++) {
            if (check_gen(&out[i], expect) != 0) {
                fprintf(stderr, "record %zu: offset %lld, expected %lld\n", i,
                        (long long)out[i].offset, (long long)expect);
                rv__plog_reader_close(r);
                return -1;
            }
            good++;
        }
    }
    rv__plog_reader_close(r);
    return good;
}

static int count_files(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        n += l > s && strcmp(e->d_name + l - s, suffix) == 0;
    }
    if (d) {
        closedir(d);
    }
    return n;
}

/* The base of the last segment file (the active one). */
static int64_t last_base(const char *dir) {
    DIR *d = opendir(dir);
    int64_t best = -1;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strlen(e->d_name) == 24 && strcmp(e->d_name + 20, ".log") == 0) {
            int64_t b = strtoll(e->d_name, NULL, 10);
            best = b > best ? b : best;
        }
    }
    if (d) {
        closedir(d);
    }
    return best;
}

static char *seg_file(const char *dir, int64_t base, const char *ext) {
    char *p = malloc(strlen(dir) + 40);
    sprintf(p, "%s/%020lld%s", dir, (long long)base, ext);
    return p;
}

static int64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* Positions of the batches in a segment file, read straight from the bytes. */
static int batch_positions(const char *path, int64_t *pos, uint8_t *codecs, int max) {
    int fd = open(path, O_RDONLY);
    int n = 0;
    int64_t at = 0, size = file_size(path);
    uint8_t h[64];
    while (fd >= 0 && n < max && at + 64 <= size && pread(fd, h, 64, at) == 64) {
        pos[n] = at;
        if (codecs) {
            codecs[n] = h[9];
        }
        n++;
        at += rv__le32(h);
    }
    if (fd >= 0) {
        close(fd);
    }
    return n;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_roundtrip(void) {
    char *dir = make_dir();
    REQUIRE(dir);
    rv_plog_t *log = open_log(dir, opts_w(NULL));
    REQUIRE(log);
    CHECK_INT(rv__plog_low(log), 0);
    CHECK_INT(rv__plog_high(log), 0);

    static const uint8_t bin[] = {0, 1, 2, 0xff, 0, 0x80};
    rv_header_t h1[] = {
        {"trace", "abc", 3}, {"bin", bin, sizeof bin}, {"empty", "", 0}, {"null", NULL, 0}};
    rv_header_t h2[] = {{"", "x", 1}};
    rv_record_t recs[] = {
        {.timestamp_ms = 1000, .key = "alpha", .key_len = 5, .value = "one", .value_len = 3},
        {.timestamp_ms = 900, .key = NULL, .value = "no key", .value_len = 6},
        {.timestamp_ms = 2000, .key = "alpha", .key_len = 5, .value = NULL}, /* tombstone */
        {.timestamp_ms = 1500,
         .key = "",
         .key_len = 0,
         .value = "",
         .value_len = 0,
         .headers = h1,
         .header_count = 4},
        {.timestamp_ms = 0,
         .key = bin,
         .key_len = sizeof bin,
         .value = bin,
         .value_len = sizeof bin,
         .headers = h2,
         .header_count = 1},
    };
    int64_t before = rv_clock_wall_ms();
    int64_t base = -1;
    CHECK_INT(rv__plog_append(log, recs, 3, &base, NULL), RV_OK);
    CHECK_INT(base, 0);
    CHECK_INT(rv__plog_append(log, recs + 3, 2, &base, NULL), RV_OK);
    CHECK_INT(base, 3);
    CHECK_INT(rv__plog_append(log, recs, 0, &base, NULL), RV_OK);
    CHECK_INT(base, 5);
    CHECK_INT(rv__plog_high(log), 5);
    int64_t after = rv_clock_wall_ms();

    for (int round = 0; round < 3; round++) {
        rv_plog_t *rl = log;
        if (round == 1) { /* reopened writable */
            rv__plog_close(log);
            log = rl = open_log(dir, opts_w(NULL));
            REQUIRE(log);
        } else if (round == 2) { /* and a read-only handle beside the writer */
            rv_plog_opts_t o = opts_w(NULL);
            o.writable = false;
            rl = open_log(dir, o);
            REQUIRE(rl);
        }
        CHECK_INT(rv__plog_high(rl), 5);
        rv_plog_reader_t *r = NULL;
        REQUIRE(rv__plog_reader_open(rl, 0, &r, NULL) == RV_OK);
        rv_record_t out[8];
        size_t n = 0;
        CHECK_INT(rv__plog_read(r, out, 8, &n, NULL), RV_OK);
        CHECK_INT(n, 5);
        for (size_t i = 0; i < n; i++) {
            CHECK_INT(out[i].offset, (int64_t)i);
        }
        CHECK_INT(out[0].timestamp_ms, 1000);
        CHECK(out[0].key_len == 5 && memcmp(out[0].key, "alpha", 5) == 0);
        CHECK(out[0].value_len == 3 && memcmp(out[0].value, "one", 3) == 0);
        CHECK_INT(out[1].timestamp_ms, 900);
        CHECK(out[1].key == NULL && out[1].key_len == 0);
        CHECK(out[1].value_len == 6 && memcmp(out[1].value, "no key", 6) == 0);
        CHECK(out[2].value == NULL && out[2].value_len == 0);
        CHECK_INT(out[2].timestamp_ms, 2000);
        CHECK(out[3].key != NULL && out[3].key_len == 0);
        CHECK(out[3].value != NULL && out[3].value_len == 0);
        CHECK_INT(out[3].header_count, 4);
        if (out[3].header_count == 4) {
            CHECK_STR(out[3].headers[0].name, "trace");
            CHECK(out[3].headers[0].value_len == 3 &&
                  memcmp(out[3].headers[0].value, "abc", 3) == 0);
            CHECK_STR(out[3].headers[1].name, "bin");
            CHECK(out[3].headers[1].value_len == sizeof bin &&
                  memcmp(out[3].headers[1].value, bin, sizeof bin) == 0);
            CHECK_STR(out[3].headers[2].name, "empty");
            CHECK(out[3].headers[2].value != NULL && out[3].headers[2].value_len == 0);
            CHECK_STR(out[3].headers[3].name, "null");
            CHECK(out[3].headers[3].value == NULL);
        }
        CHECK(out[4].timestamp_ms >= before && out[4].timestamp_ms <= after);
        CHECK(out[4].key_len == sizeof bin && memcmp(out[4].key, bin, sizeof bin) == 0);
        CHECK(out[4].value_len == sizeof bin && memcmp(out[4].value, bin, sizeof bin) == 0);
        CHECK_INT(out[4].header_count, 1);
        if (out[4].header_count == 1) {
            CHECK_STR(out[4].headers[0].name, "");
            CHECK(out[4].headers[0].value_len == 1 && memcmp(out[4].headers[0].value, "x", 1) == 0);
        }
        CHECK_INT(out[0].header_count, 0);
        CHECK(out[0].headers == NULL);
        CHECK_INT(rv__plog_reader_position(r), 5);
        CHECK_INT(rv__plog_read(r, out, 8, &n, NULL), RV_OK);
        CHECK_INT(n, 0);

        /* Small reads: two at a time across the batch boundary. */
        CHECK_INT(rv__plog_reader_seek(r, 1, NULL), RV_OK);
        int64_t expect = 1;
        for (int k = 0; k < 5; k++) {
            CHECK_INT(rv__plog_read(r, out, 2, &n, NULL), RV_OK);
            for (size_t i = 0; i < n; i++) {
                CHECK_INT(out[i].offset, expect++);
            }
        }
        CHECK_INT(expect, 5);
        rv__plog_reader_close(r);
        if (rl != log) {
            rv__plog_close(rl);
        }
    }
    rv__plog_close(log);
    rm_dir(dir);
}

static void test_errors(void) {
    char *dir = make_dir();
    REQUIRE(dir);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    rv_plog_opts_t o = opts_w(NULL);
    o.writable = false;
    rv_plog_t *log = NULL;
    rv_error_t *err = NULL;
    CHECK_INT(rv__plog_open(missing, &o, &log, &err), RV_ERR_NOT_FOUND);
    CHECK(err && strstr(rv_error_message(err), missing));
    CHECK(log == NULL);
    rv_error_destroy(err);
    err = NULL;

    /* A writable open creates the directories. */
    snprintf(missing, sizeof missing, "%s/topic/3", dir);
    log = open_log(missing, opts_w(NULL));
    REQUIRE(log);
    rv__plog_close(log);

    rv_plog_t *ro = open_log(missing, o);
    REQUIRE(ro);
    rv_record_t rec = {.value = "x", .value_len = 1};
    CHECK_INT(rv__plog_append(ro, &rec, 1, NULL, &err), RV_ERR_STATE);
    CHECK(err && strstr(rv_error_message(err), "t/0"));
    rv_error_destroy(err);
    err = NULL;
    CHECK_INT(rv__plog_enforce_retention(ro, 1, 1, 0, NULL, NULL), RV_ERR_STATE);
    CHECK_INT(rv__plog_compact(ro, 1, 0, NULL), RV_ERR_STATE);
    rv__plog_close(ro);

    /* A wait with nothing appended times out after about its timeout. */
    log = open_log(missing, opts_w(NULL));
    REQUIRE(log);
    int64_t t0 = rv_clock_mono_ms();
    CHECK(!rv__plog_wait(log, 0, 30));
    int64_t waited = rv_clock_mono_ms() - t0;
    CHECK_MSG(waited >= 29 && waited < 1000, "waited %lld ms", (long long)waited);
    CHECK(rv__plog_wait(log, 7, 0)); /* already differs */
    rv__plog_close(log);
    rv__plog_close(NULL);
    rm_dir(dir);
}

static void test_segments_and_seek(void) {
    char *dir = make_dir();
    REQUIRE(dir);
    rv_plog_opts_t o = opts_w(NULL);
    o.segment_bytes = 4096;
    rv_plog_t *log = open_log(dir, o);
    REQUIRE(log);
    for (int i = 0; i < 60; i++) { /* batches of 1 to 20 records */
        CHECK_INT(append_gen(log, (size_t)(1 + (i * 7) % 20)), RV_OK);
    }
    int64_t high = rv__plog_high(log);
    CHECK(high > 500);
    int segs = count_files(dir, ".log");
    CHECK_MSG(segs >= 10, "%d segments", segs);
    CHECK_INT(rv__plog_sync(log, NULL), RV_OK); /* writes the active segment's index too */
    CHECK_INT(count_files(dir, ".idx"), segs);
    CHECK_INT(count_files(dir, ".tix"), segs);
    CHECK_INT(read_gen(log, 0, high, 512), high);
    CHECK_INT(read_gen(log, 0, high, 7), high);
    CHECK_INT(rv__plog_size(log) > 0, 1);

    /* A batch larger than the segment size is split across segments. */
    CHECK_INT(append_gen(log, 200), RV_OK);
    CHECK_INT(rv__plog_high(log), high + 200);
    high += 200;
    segs = count_files(dir, ".log");

    for (int round = 0; round < 2; round++) {
        /* Seek into the middle of segments, on batch edges and inside batches. */
        int64_t targets[] = {0, 1, 17, 123, 377, high / 2, high - 201, high - 1};
        for (size_t i = 0; i < RV_ARRAY_LEN(targets); i++) {
            CHECK_MSG(read_gen(log, targets[i], high, 64) == high - targets[i], "seek to %lld",
                      (long long)targets[i]);
        }
        rv_plog_reader_t *r = NULL;
        REQUIRE(rv__plog_reader_open(log, high + 100, &r, NULL) == RV_OK);
        CHECK_INT(rv__plog_reader_position(r), high); /* clamped */
        rv_record_t out[4];
        size_t n = 9;
        CHECK_INT(rv__plog_read(r, out, 4, &n, NULL), RV_OK);
        CHECK_INT(n, 0);
        CHECK_INT(rv__plog_reader_seek(r, -5, NULL), RV_OK);
        CHECK_INT(rv__plog_reader_position(r), 0);
        CHECK_INT(rv__plog_read(r, out, 4, &n, NULL), RV_OK);
        CHECK_INT(n, 4);
        CHECK_INT(out[3].offset, 3);
        rv__plog_reader_close(r);
        /* Reopen: every segment is found again. */
        rv__plog_close(log);
        log = open_log(dir, o);
        REQUIRE(log);
        CHECK_INT(rv__plog_high(log), high);
        CHECK_INT(rv__plog_low(log), 0);
        CHECK_INT(count_files(dir, ".log"), segs);
    }
    CHECK_INT(read_gen(log, 0, high, 100), high);
    /* Appends continue at the right offset after the reopen. */
    CHECK_INT(append_gen(log, 5), RV_OK);
    CHECK_INT(read_gen(log, high - 3, high + 5, 100), 8);
    rv__plog_close(log);

    /* Rolling by age. */
    rm_dir(dir);
    dir = make_dir();
    REQUIRE(dir);
    o = opts_w(NULL);
    o.segment_ms = 40;
    log = open_log(dir, o);
    REQUIRE(log);
    CHECK_INT(append_gen(log, 3), RV_OK);
    CHECK_INT(append_gen(log, 3), RV_OK);
    CHECK_INT(count_files(dir, ".log"), 1);
    rv_clock_sleep_ms(60);
    CHECK_INT(append_gen(log, 3), RV_OK);
    CHECK_INT(count_files(dir, ".log"), 2);
    CHECK_INT(last_base(dir), 6);
    CHECK_INT(read_gen(log, 0, 9, 4), 9);
    rv__plog_close(log);
    rm_dir(dir);
}

static void test_large_records(void) {
    char *dir = make_dir();
    REQUIRE(dir);
    rv_plog_opts_t o = opts_w(NULL);
    o.segment_bytes = 64 << 20;
    rv_plog_t *log = open_log(dir, o);
    REQUIRE(log);
    /* 40 records of 256 KiB in one append: cut into several batches; then one of 3 MiB. */
    size_t big = 256 << 10, huge = 3 << 20;
    uint8_t *buf = malloc(huge);
    REQUIRE(buf);
    for (size_t i = 0; i < huge; i++) {
        buf[i] = (uint8_t)(i * 2654435761u >> 13);
    }
    rv_record_t recs[40];
    for (int i = 0; i < 40; i++) {
        recs[i] = (rv_record_t){.timestamp_ms = 1 + i, .value = buf + i * 1024, .value_len = big};
    }
    CHECK_INT(rv__plog_append(log, recs, 40, NULL, NULL), RV_OK);
    rv_record_t one = {
        .timestamp_ms = 99, .key = "h", .key_len = 1, .value = buf, .value_len = huge};
    int64_t off = -1;
    CHECK_INT(rv__plog_append(log, &one, 1, &off, NULL), RV_OK);
    CHECK_INT(off, 40);
    char *seg = seg_file(dir, 0, ".log");
    int64_t pos[16];
    int nb = batch_positions(seg, pos, NULL, 16);
    CHECK_MSG(nb >= 4, "%d batches", nb);
    free(seg);
    for (int round = 0; round < 2; round++) {
        rv_plog_reader_t *r = NULL;
        REQUIRE(rv__plog_reader_open(log, round * 39, &r, NULL) == RV_OK);
        rv_record_t out[50];
        int64_t expect = round * 39;
        for (;;) {
            size_t n = 0;
            CHECK_INT(rv__plog_read(r, out, 50, &n, NULL), RV_OK);
            if (n == 0) {
                break;
            }
            for (size_t i = 0; i < n; i++, expect++) {
                CHECK_INT(out[i].offset, expect);
                if (expect < 40) {
                    CHECK(out[i].value_len == big &&
                          memcmp(out[i].value, buf + expect * 1024, big) == 0);
                } else {
                    CHECK(out[i].value_len == huge && memcmp(out[i].value, buf, huge) == 0);
                }
            }
        }
        CHECK_INT(expect, 41);
        rv__plog_reader_close(r);
        if (round == 0) {
            rv__plog_close(log);
            o.codec = RV_CODEC_ZSTD;
            log = open_log(dir, o);
            REQUIRE(log);
        }
    }
    rv__plog_close(log);
    free(buf);
    rm_dir(dir);
}

/* Brute force: the first offset at or after `from` whose timestamp is >= ts. */
static int64_t brute_time(const int64_t *ts, int64_t n, int64_t t) {
    for (int64_t i = 0; i < n; i++) {
        if (ts[i] >= t) {
            return i;
        }
    }
    return n;
}

static void test_offset_for_time(void) {
    char *dir = make_dir();
    REQUIRE(dir);
    rv_plog_opts_t o = opts_w(NULL);
    o.segment_bytes = 2048;
    o.index_interval_bytes = 100;
    rv_plog_t *log = open_log(dir, o);
    REQUIRE(log);
    enum { N = 600 };
    static int64_t ts[N];
    rv_record_t recs[10];
    for (int64_t i = 0; i < N; i += 10) {
        for (int j = 0; j < 10; j++) {
            int64_t off = i + j;
            /* mostly rising, with some records out of order inside batches */
            ts[off] = 10000 + off * 10 + ((off % 7 == 3) ? -45 : 0) + ((off % 50 == 25) ? 500 : 0);
            recs[j] = (rv_record_t){.timestamp_ms = ts[off], .value = "v", .value_len = 1};
        }
        CHECK_INT(rv__plog_append(log, recs, 10, NULL, NULL), RV_OK);
    }
    CHECK_MSG(count_files(dir, ".log") >= 4, "%d segments", count_files(dir, ".log"));
    for (int round = 0; round < 3; round++) {
        rv_plog_t *q = log;
        if (round == 1) {
            rv_plog_opts_t ro = o;
            ro.writable = false;
            q = open_log(dir, ro);
            REQUIRE(q);
        }
        int bad = 0;
        for (int64_t t = 9000; t < 10000 + N * 10 + 700; t += 7) {
            int64_t got = -1;
            if (rv__plog_offset_for_time(q, t, &got, NULL) != RV_OK ||
                got != brute_time(ts, N, t)) {
                if (bad++ < 5) {
                    fprintf(stderr, "ts %lld: got %lld, expected %lld\n", (long long)t,
                            (long long)got, (long long)brute_time(ts, N, t));
                }
            }
        }
        CHECK_INT(bad, 0);
        int64_t got = -1;
        CHECK_INT(rv__plog_offset_for_time(q, INT64_MIN, &got, NULL), RV_OK);
        CHECK_INT(got, 0);
        CHECK_INT(rv__plog_offset_for_time(q, INT64_MAX, &got, NULL), RV_OK);
        CHECK_INT(got, N);
        if (q != log) {
            rv__plog_close(q);
        }
        if (round == 1) { /* and after a writable reopen */
            rv__plog_close(log);
            log = open_log(dir, o);
            REQUIRE(log);
        }
    }
    rv__plog_close(log);
    rm_dir(dir);
}

static void test_index_rebuild(void) {
    char *dir = make_dir();
    REQUIRE(dir);
    cap_t cap;
    rv_logger_t lg;
    cap_init(&cap, &lg);
    rv_plog_opts_t o = opts_w(&lg);
    o.segment_bytes = 4096;
    o.index_interval_bytes = 300;
    rv_plog_t *log = open_log(dir, o);
    REQUIRE(log);
    for (int i = 0; i < 40; i++) {
        CHECK_INT(append_gen(log, 9), RV_OK);
    }
    int64_t high = rv__plog_high(log);
    rv__plog_close(log);

    /* Keep a copy of the healthy indexes to compare with the rebuilt ones. */
    int64_t b0 = 0, bl = last_base(dir);
    char *idx0 = seg_file(dir, b0, ".idx"), *tix0 = seg_file(dir, b0, ".tix");
    int64_t idx0_size = file_size(idx0), tix0_size = file_size(tix0);
    CHECK(idx0_size > 8);
    CHECK_INT(tix0_size, (idx0_size / 8 + 1) * 16);

    /* Delete all, then damage the indexes of one segment differently. */
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 &&
            (strcmp(e->d_name + l - 4, ".idx") == 0 || strcmp(e->d_name + l - 4, ".tix") == 0)) {
            char p[512];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);

    /* Read-only, without indexes: everything is found by scanning. */
    rv_plog_opts_t ro = o;
    ro.writable = false;
    log = open_log(dir, ro);
    REQUIRE(log);
    CHECK_INT(read_gen(log, 150, high, 50), high - 150);
    int64_t off = -1;
    CHECK_INT(rv__plog_offset_for_time(log, gen_ts(200), &off, NULL), RV_OK);
    CHECK_INT(off, 200);
    rv__plog_close(log);
    CHECK_INT(count_files(dir, ".idx"), 0); /* a reader writes nothing */

    log = open_log(dir, o);
    REQUIRE(log);
    CHECK_INT(count_files(dir, ".idx"), count_files(dir, ".log"));
    CHECK_INT(count_files(dir, ".tix"), count_files(dir, ".log"));
    CHECK_INT(file_size(idx0), idx0_size);
    CHECK_INT(file_size(tix0), tix0_size);
    CHECK(cap_find(&cap, "info", "rebuilt the indexes"));
    rv__plog_close(log);

    /* Garbage indexes: an odd length, and entries that point at the wrong place. */
    int fd = open(idx0, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "xyz", 3) == 3);
    close(fd);
    char *idx1 = seg_file(dir, bl, ".idx");
    fd = open(idx1, O_WRONLY);
    uint8_t junk[8] = {1, 0, 0, 0, 9, 0, 0, 0};
    CHECK(fd >= 0 && pwrite(fd, junk, 8, 0) == 8);
    close(fd);
    log = open_log(dir, o);
    REQUIRE(log);
    CHECK_INT(file_size(idx0), idx0_size);
    for (int64_t t = 0; t < high; t += 37) {
        CHECK_MSG(read_gen(log, t, high, 64) == high - t, "seek %lld", (long long)t);
        CHECK_INT(rv__plog_offset_for_time(log, gen_ts(t), &off, NULL), RV_OK);
        CHECK_INT(off, t);
    }
    rv__plog_close(log);
    free(idx0);
    free(tix0);
    free(idx1);
    rm_dir(dir);
}

static void test_codecs(void) {
    char *dir = make_dir();
    REQUIRE(dir);
    rv_codec_t order[] = {RV_CODEC_LZ4, RV_CODEC_ZSTD, RV_CODEC_NONE, RV_CODEC_ZSTD, RV_CODEC_LZ4};
    rv_record_t recs[50];
    char vals[50][300];
    int64_t high = 0;
    for (size_t c = 0; c < RV_ARRAY_LEN(order); c++) {
        rv_plog_opts_t o = opts_w(NULL);
        o.codec = order[c];
        rv_plog_t *log = open_log(dir, o);
        REQUIRE(log);
        for (int b = 0; b < 3; b++) {
            for (int i = 0; i < 50; i++) {
                int64_t off = high + i;
                memset(vals[i], 'a' + (int)(off % 26), sizeof vals[i]); /* compressible */
                snprintf(vals[i], 20, "%lld:", (long long)off);
                recs[i] = (rv_record_t){.timestamp_ms = 5000 + off,
                                        .key = vals[i],
                                        .key_len = 6,
                                        .value = vals[i],
                                        .value_len = sizeof vals[i]};
            }
            CHECK_INT(rv__plog_append(log, recs, 50, NULL, NULL), RV_OK);
            high += 50;
        }
        rv__plog_close(log);
    }
    /* The batches on disk carry the codec they were written with. */
    char *seg = seg_file(dir, 0, ".log");
    int64_t pos[32];
    uint8_t codecs[32];
    int nb = batch_positions(seg, pos, codecs, 32);
    CHECK_INT(nb, 15);
    for (int i = 0; i < nb && i < 15; i++) {
        CHECK_INT(codecs[i], order[i / 3]);
    }
    CHECK(file_size(seg) < high * 300 / 2);
    free(seg);
    rv_plog_opts_t ro = opts_w(NULL);
    ro.writable = false;
    rv_plog_t *log = open_log(dir, ro);
    REQUIRE(log);
    rv_plog_reader_t *r = NULL;
    REQUIRE(rv__plog_reader_open(log, 0, &r, NULL) == RV_OK);
    rv_record_t out[40];
    int64_t expect = 0;
    for (;;) {
        size_t n = 0;
        CHECK_INT(rv__plog_read(r, out, 40, &n, NULL), RV_OK);
        if (n == 0) {
            break;
        }
        for (size_t i = 0; i < n; i++, expect++) {
            char v[300];
            memset(v, 'a' + (int)(expect % 26), sizeof v);
            char head[24];
            int hn = snprintf(head, sizeof head, "%lld:", (long long)expect);
            memcpy(v, head, (size_t)hn + 1); /* the number, a colon and a NUL, as written */
            CHECK_INT(out[i].offset, expect);
            CHECK_INT(out[i].timestamp_ms, 5000 + expect);
            CHECK(out[i].value_len == sizeof v && memcmp(out[i].value, v, sizeof v) == 0);
            CHECK(out[i].key_len == 6 && memcmp(out[i].key, v, 6) == 0);
        }
    }
    CHECK_INT(expect, high);
    /* Seek into the middle of compressed batches. */
    CHECK_INT(rv__plog_reader_seek(r, 77, NULL), RV_OK);
    size_t n = 0;
    CHECK_INT(rv__plog_read(r, out, 3, &n, NULL), RV_OK);
    CHECK_INT(n, 3);
    CHECK_INT(out[0].offset, 77);
    CHECK_INT(out[2].offset, 79);
    rv__plog_reader_close(r);
    rv__plog_close(log);
    rm_dir(dir);
}

static void test_retention(void) {
    char *dir = make_dir();
    REQUIRE(dir);
    cap_t cap;
    rv_logger_t lg;
    cap_init(&cap, &lg);
    rv_plog_opts_t o = opts_w(&lg);
    o.segment_bytes = 4096;
    rv_plog_t *log = open_log(dir, o);
    REQUIRE(log);
    for (int i = 0; i < 30; i++) {
        CHECK_INT(append_gen(log, 10), RV_OK);
    }
    int64_t high = rv__plog_high(log);
    int segs = count_files(dir, ".log");
    REQUIRE(segs >= 6);
    int64_t size = rv__plog_size(log);
    rv_plog_reader_t *old = NULL;
    REQUIRE(rv__plog_reader_open(log, 0, &old, NULL) == RV_OK);
    rv_record_t out[4];
    size_t n = 0;
    CHECK_INT(rv__plog_read(old, out, 4, &n, NULL), RV_OK); /* holds the first segment */
    CHECK_INT(n, 4);

    /* By bytes: keep at most half of what there is. */
    int deleted = -1;
    CHECK_INT(rv__plog_enforce_retention(log, -1, size / 2, 0, &deleted, NULL), RV_OK);
    CHECK(deleted > 0);
    CHECK_INT(count_files(dir, ".log"), segs - deleted);
    CHECK_INT(rv__plog_sync(log, NULL), RV_OK);
    CHECK_INT(count_files(dir, ".idx"), segs - deleted);
    CHECK(rv__plog_size(log) <= size / 2);
    int64_t low = rv__plog_low(log);
    CHECK(low > 0);
    CHECK_INT(low, rv__plog_low(log));
    char *first = seg_file(dir, low, ".log");
    CHECK(file_size(first) > 0);
    free(first);
    rv_plog_reader_t *clamped = NULL;
    REQUIRE(rv__plog_reader_open(log, 0, &clamped, NULL) == RV_OK);
    CHECK_INT(rv__plog_reader_position(clamped), low);
    rv__plog_reader_close(clamped);
    CHECK_INT(read_gen(log, low, high, 100), high - low);
    CHECK(cap_find(&cap, "info", "retention deletes segment"));
    /* The reader that held a deleted segment jumps to the low watermark. */
    CHECK_INT(rv__plog_read(old, out, 4, &n, NULL), RV_OK);
    CHECK_INT(n, 4);
    CHECK_INT(out[0].offset, low);
    rv__plog_reader_close(old);

    /* A read-only handle opened before retention sees the move. */
    rv_plog_opts_t ro = opts_w(NULL);
    ro.writable = false;
    rv_plog_t *rl = open_log(dir, ro);
    REQUIRE(rl);

    /* Zero bytes: every closed segment goes, never the active one. */
    CHECK_INT(rv__plog_enforce_retention(log, -1, 0, 0, &deleted, NULL), RV_OK);
    CHECK_INT(count_files(dir, ".log"), 1);
    CHECK_INT(rv__plog_low(log), last_base(dir));
    CHECK_INT(rv__plog_low(rl), last_base(dir));
    CHECK_INT(read_gen(rl, last_base(dir), high, 100), high - last_base(dir));
    CHECK_INT(rv__plog_enforce_retention(log, -1, 0, 0, &deleted, NULL), RV_OK);
    CHECK_INT(deleted, 0);
    rv__plog_close(rl);

    /* By time: segments whose newest record is older than retention_ms. */
    for (int i = 0; i < 30; i++) {
        CHECK_INT(append_gen(log, 10), RV_OK); /* timestamps gen_ts(offset) */
    }
    high = rv__plog_high(log);
    int64_t now = gen_ts(high);
    int before = count_files(dir, ".log");
    /* keep records newer than now - 1000 ms: offsets >= high - 100 */
    CHECK_INT(rv__plog_enforce_retention(log, 1000, -1, now, &deleted, NULL), RV_OK);
    CHECK(deleted > 0 && deleted < before);
    low = rv__plog_low(log);
    CHECK(low <= high - 100);
    /* The first kept segment has a record inside the window; the deleted did not. */
    CHECK_INT(read_gen(log, low, high, 100), high - low);
    CHECK_INT(rv__plog_enforce_retention(log, 1000, -1, now, &deleted, NULL), RV_OK);
    CHECK_INT(deleted, 0);
    rv__plog_close(log);
    /* Reopen: the low watermark is the first remaining segment. */
    log = open_log(dir, o);
    REQUIRE(log);
    CHECK_INT(rv__plog_low(log), low);
    CHECK_INT(rv__plog_high(log), high);
    rv__plog_close(log);
    rm_dir(dir);
}

/* ---- compaction ---------------------------------------------------------------------------- */

typedef struct crec_s {
    int64_t offset;
    int key; /* -1 = no key */
    int version;
    bool tomb;
    int64_t ts;
} crec_t;

static void compaction_fill(rv_plog_t *log, crec_t *model, int *n, int64_t now) {
    /* 10 keys, several versions each; some keyless records; tombstones old and recent. */
    int count = 0;
    for (int round = 0; round < 12; round++) {
        rv_record_t recs[16];
        char keys[16][16], vals[16][32];
        int k = 0;
        for (int i = 0; i < 12; i++, k++) {
            bool keyless = (i == 11);
            int key = keyless ? -1 : (round * 5 + i * 3) % 10;
            int64_t off = rv__plog_high(log) + k;
            bool tomb = !keyless && round >= 8 && (key == 2 || key == 7) && i % 2 == 0;
            int64_t ts = (key == 2) ? now - 100000 : now - 10; /* key 2: old tombstones */
            snprintf(keys[k], sizeof keys[k], "k%d", key);
            snprintf(vals[k], sizeof vals[k], "v%d-%lld", key, (long long)off);
            recs[k] = (rv_record_t){.timestamp_ms = ts,
                                    .key = keyless ? NULL : keys[k],
                                    .key_len = keyless ? 0 : strlen(keys[k]),
                                    .value = tomb ? NULL : vals[k],
                                    .value_len = tomb ? 0 : strlen(vals[k])};
            model[count++] = (crec_t){off, keyless ? -1 : key, round, tomb, ts};
        }
        CHECK_INT(rv__plog_append(log, recs, (size_t)k, NULL, NULL), RV_OK);
    }
    /* Last words: a recent tombstone of k7 and an old one of k2, then keyless records so both
     * end up in closed segments. */
    for (int b = 0; b < 4; b++) {
        rv_record_t recs[12];
        char vals[12][32];
        size_t k = b == 0 ? 2 : 12;
        for (size_t i = 0; i < k; i++) {
            int64_t off = rv__plog_high(log) + (int64_t)i;
            int key = b == 0 ? (i == 0 ? 7 : 2) : -1;
            int64_t ts = key == 2 ? now - 100000 : now - 10;
            snprintf(vals[i], sizeof vals[i], "v%d-%lld", key, (long long)off);
            recs[i] = (rv_record_t){.timestamp_ms = ts,
                                    .key = key == 7 ? "k7" : "k2",
                                    .key_len = key >= 0 ? 2 : 0,
                                    .value = vals[i],
                                    .value_len = strlen(vals[i])};
            if (key < 0) {
                recs[i].key = NULL;
            } else {
                recs[i].value = NULL;
                recs[i].value_len = 0;
            }
            model[count++] = (crec_t){off, key, 99, key >= 0, ts};
        }
        CHECK_INT(rv__plog_append(log, recs, k, NULL, NULL), RV_OK);
    }
    *n = count;
}

/* Which records should survive compaction with the active segment starting at `active`. */
static int expected_survivors(const crec_t *m, int n, int64_t active, int64_t cutoff,
                              int64_t *keep) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        bool survive = true;
        if (m[i].offset < active && m[i].key >= 0) {
            for (int j = i + 1; j < n; j++) {
                survive = survive && m[j].key != m[i].key;
            }
            survive = survive && !(m[i].tomb && m[i].ts < cutoff);
        }
        if (survive) {
            keep[k++] = m[i].offset;
        }
    }
    return k;
}

static int read_offsets(rv_plog_t *log, int64_t *offs, int max, const crec_t *model) {
    rv_plog_reader_t *r = NULL;
    rv_record_t out[32];
    int k = 0;
    if (rv__plog_reader_open(log, 0, &r, NULL) != RV_OK) {
        return -1;
    }
    for (;;) {
        size_t n = 0;
        if (rv__plog_read(r, out, 32, &n, NULL) != RV_OK || n == 0) {
            break;
        }
        for (size_t i = 0; i < n && k < max; i++) {
            const crec_t *c = &model[out[i].offset];
            char kb[16], vb[32];
            snprintf(kb, sizeof kb, "k%d", c->key);
            snprintf(vb, sizeof vb, "v%d-%lld", c->key, (long long)c->offset);
            bool ok = out[i].timestamp_ms == c->ts &&
                      (c->key < 0 ? out[i].key == NULL
                                  : out[i].key_len == strlen(kb) &&
                                        memcmp(out[i].key, kb, strlen(kb)) == 0) &&
                      (c->tomb ? out[i].value == NULL
                               : out[i].value_len == strlen(vb) &&
                                     memcmp(out[i].value, vb, strlen(vb)) == 0);
            offs[k++] = ok ? out[i].offset : -1;
        }
    }
    rv__plog_reader_close(r);
    return k;
}

static void test_compaction(void) {
    char *dir = make_dir();
    REQUIRE(dir);
    cap_t cap;
    rv_logger_t lg;
    cap_init(&cap, &lg);
    rv_plog_opts_t o = opts_w(&lg);
    o.segment_bytes = 600;
    o.codec = RV_CODEC_LZ4;
    rv_plog_t *log = open_log(dir, o);
    REQUIRE(log);
    int64_t now = 1700000000000LL;
    static crec_t model[200];
    int n = 0;
    compaction_fill(log, model, &n, now);
    int64_t high = rv__plog_high(log);
    CHECK_INT(high, n);
    int segs_before = count_files(dir, ".log");
    REQUIRE(segs_before >= 4);
    int64_t active = last_base(dir);
    int64_t cutoff = now - 50000; /* delete_retention_ms 50 s: key 2's tombstones are older */

    static int64_t expect[200], got[200];
    int ne = expected_survivors(model, n, active, cutoff, expect);
    CHECK(ne < n - 20);
    /* Hand-checked facts of the model: key k3's last version survives in a closed segment or
     * the active one, older k3 versions in closed segments do not. */
    CHECK_INT(rv__plog_compact(log, 50000, now, NULL), RV_OK);
    int ng = read_offsets(log, got, 200, model);
    CHECK_INT(ng, ne);
    for (int i = 0; i < ng && i < ne; i++) {
        CHECK_MSG(got[i] == expect[i], "survivor %d: got %lld, expected %lld", i, (long long)got[i],
                  (long long)expect[i]);
    }
    CHECK_INT(rv__plog_high(log), high);
    CHECK_INT(rv__plog_low(log), 0);
    CHECK(count_files(dir, ".log") < segs_before);
    CHECK_INT(count_files(dir, ".cleaned"), 0);
    char marker[512];
    snprintf(marker, sizeof marker, "%s/compact.swap", dir);
    CHECK(access(marker, F_OK) != 0);
    CHECK(cap_find(&cap, "info", "compacted"));
    /* Old tombstones (key 2) are gone from the closed segments; the model keeps recent ones. */
    int tomb2 = 0, tomb_expected = 0;
    for (int i = 0; i < ng; i++) {
        if (got[i] >= 0 && got[i] < active) {
            tomb2 += model[got[i]].tomb && model[got[i]].key == 2;
        }
    }
    for (int i = 0; i < ne; i++) {
        tomb_expected += model[expect[i]].tomb && expect[i] < active;
    }
    CHECK_INT(tomb2, 0);
    CHECK_INT(tomb_expected, 1);
    int64_t t7 = -1, t2 = -1; /* the final tombstones */
    for (int i = 0; i < n; i++) {
        t7 = model[i].key == 7 ? model[i].offset : t7;
        t2 = model[i].key == 2 ? model[i].offset : t2;
    }
    REQUIRE(t7 >= 0 && t2 >= 0 && model[t7].tomb && model[t2].tomb && t2 < active);
    bool has7 = false, has2 = false;
    for (int i = 0; i < ng; i++) {
        has7 = has7 || got[i] == t7;
        has2 = has2 || got[i] == t2;
    }
    CHECK(has7);
    CHECK(!has2);
    /* Each key appears at most once among the closed segments' survivors. */
    int seen_keys[10] = {0};
    for (int i = 0; i < ng; i++) {
        if (got[i] >= 0 && got[i] < active && model[got[i]].key >= 0) {
            CHECK_INT(++seen_keys[model[got[i]].key], 1);
        }
    }
    fprintf(stderr, "     compaction: %d records, %d survivors (%d recent tombstones kept)\n", n,
            ne, tomb_expected);

    /* Appends continue; a second compaction with nothing to drop changes nothing. */
    rv_record_t extra = {
        .timestamp_ms = now, .key = "k3", .key_len = 2, .value = "v3-last", .value_len = 7};
    int64_t off = -1;
    CHECK_INT(rv__plog_append(log, &extra, 1, &off, NULL), RV_OK);
    CHECK_INT(off, high);
    rv__plog_close(log);

    /* Reopen: same survivors, and seeks land right despite the gaps. */
    log = open_log(dir, o);
    REQUIRE(log);
    ng = read_offsets(log, got, 200, model);
    CHECK_INT(ng, ne + 1);
    for (int i = 0; i < ne && i < ng; i++) {
        CHECK_INT(got[i], expect[i]);
    }
    rv_plog_reader_t *r = NULL;
    REQUIRE(rv__plog_reader_open(log, expect[ne / 2] - 1, &r, NULL) == RV_OK);
    rv_record_t out[2];
    size_t nr = 0;
    CHECK_INT(rv__plog_read(r, out, 1, &nr, NULL), RV_OK);
    CHECK_INT(nr, 1);
    int64_t want = -1;
    for (int i = 0; i < ne && want < 0; i++) {
        want = expect[i] >= expect[ne / 2] - 1 ? expect[i] : -1;
    }
    CHECK_INT(out[0].offset, want);
    rv__plog_reader_close(r);
    rv__plog_close(log);
    rm_dir(dir);
}

static int copy_file(const char *from, const char *to) {
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char buf[65536];
    ssize_t r;
    int rc = in >= 0 && out >= 0 ? 0 : -1;
    while (rc == 0 && (r = read(in, buf, sizeof buf)) > 0) {
        rc = write(out, buf, (size_t)r) == r ? 0 : -1;
    }
    if (in >= 0) {
        close(in);
    }
    if (out >= 0) {
        close(out);
    }
    return rc;
}

/* Copies every file of `from` into `to`, adding `suffix` to the names of segment files. */
static void copy_dir(const char *from, const char *to, const char *suffix) {
    DIR *d = opendir(from);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        bool seg =
            l == 24 && (strcmp(e->d_name + 20, ".log") == 0 ||
                        strcmp(e->d_name + 20, ".idx") == 0 || strcmp(e->d_name + 20, ".tix") == 0);
        if (e->d_name[0] == '.' || (suffix && !seg)) {
            continue;
        }
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/%s", from, e->d_name);
        snprintf(b, sizeof b, "%s/%s%s", to, e->d_name, suffix ? suffix : "");
        copy_file(a, b);
    }
    if (d) {
        closedir(d);
    }
}

static void test_compaction_recovery(void) {
    char *a = make_dir(), *b = make_dir(), *c = make_dir();
    REQUIRE(a && b && c);
    cap_t cap;
    rv_logger_t lg;
    cap_init(&cap, &lg);
    rv_plog_opts_t o = opts_w(&lg);
    o.segment_bytes = 600;
    int64_t now = 1700000000000LL;
    static crec_t model[200];
    int n = 0;
    rv_plog_t *log = open_log(a, o);
    REQUIRE(log);
    compaction_fill(log, model, &n, now);
    rv__plog_close(log);
    copy_dir(a, b, NULL); /* b and c: the log before compaction */
    copy_dir(a, c, NULL);
    int64_t active = last_base(a);
    static int64_t expect[200], got[200], before[200];
    int ne = expected_survivors(model, n, active, now - 50000, expect);
    log = open_log(b, o);
    REQUIRE(log);
    int nbefore = read_offsets(log, before, 200, model);
    CHECK_INT(nbefore, n);
    rv__plog_close(log);

    /* Compact a; then give b the cleaned files and a committed marker, as if the process had
     * died right after committing: opening b must finish the swap. */
    log = open_log(a, o);
    REQUIRE(log);
    CHECK_INT(rv__plog_compact(log, 50000, now, NULL), RV_OK);
    rv__plog_close(log);
    char marker[512];
    snprintf(marker, sizeof marker, "%s/compact.swap", b);
    FILE *f = fopen(marker, "w");
    REQUIRE(f);
    fprintf(f, "rivulet-compact 1\n");
    DIR *d = opendir(b);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strlen(e->d_name) == 24 && strcmp(e->d_name + 20, ".log") == 0 &&
            strtoll(e->d_name, NULL, 10) < active) {
            fprintf(f, "old %lld\n", strtoll(e->d_name, NULL, 10));
        }
    }
    closedir(d);
    d = opendir(a);
    while (d && (e = readdir(d)) != NULL) {
        if (strlen(e->d_name) == 24 && strcmp(e->d_name + 20, ".log") == 0 &&
            strtoll(e->d_name, NULL, 10) < active) {
            fprintf(f, "new %lld\n", strtoll(e->d_name, NULL, 10));
            char from[512], to[512];
            for (int x = 0; x < 3; x++) {
                const char *ext = x == 0 ? ".log" : x == 1 ? ".idx" : ".tix";
                snprintf(from, sizeof from, "%s/%.20s%s", a, e->d_name, ext);
                snprintf(to, sizeof to, "%s/%.20s%s.cleaned", b, e->d_name, ext);
                copy_file(from, to);
            }
        }
    }
    closedir(d);
    fprintf(f, "end\n");
    fclose(f);
    log = open_log(b, o);
    REQUIRE(log);
    CHECK(cap_find(&cap, "warning", "finished an interrupted compaction"));
    int ng = read_offsets(log, got, 200, model);
    CHECK_INT(ng, ne);
    for (int i = 0; i < ng && i < ne; i++) {
        CHECK_INT(got[i], expect[i]);
    }
    CHECK_INT(count_files(b, ".log"), count_files(a, ".log"));
    CHECK_INT(count_files(b, ".cleaned"), 0);
    CHECK(access(marker, F_OK) != 0);
    rv__plog_close(log);

    /* c: cleaned files but no marker (died before committing): they are deleted and the old
     * set stays whole. */
    copy_dir(a, c, ".cleaned");
    int cl = count_files(c, ".cleaned");
    CHECK(cl > 0);
    log = open_log(c, o);
    REQUIRE(log);
    CHECK_INT(count_files(c, ".cleaned"), 0);
    ng = read_offsets(log, got, 200, model);
    CHECK_INT(ng, n);
    for (int i = 0; i < ng && i < nbefore; i++) {
        CHECK_INT(got[i], before[i]);
    }
    rv__plog_close(log);
    rm_dir(a);
    rm_dir(b);
    rm_dir(c);
}

/* ---- damage -------------------------------------------------------------------------------- */

static void test_torn_tail(void) {
    char *dir = make_dir();
    REQUIRE(dir);
    cap_t cap;
    rv_logger_t lg;
    cap_init(&cap, &lg);
    rv_plog_opts_t o = opts_w(&lg);
    rv_plog_t *log = open_log(dir, o);
    REQUIRE(log);
    for (int i = 0; i < 5; i++) {
        CHECK_INT(append_gen(log, 10), RV_OK);
    }
    rv__plog_close(log);
    char *seg = seg_file(dir, 0, ".log");
    int64_t size = file_size(seg);
    int64_t pos[8];
    REQUIRE(batch_positions(seg, pos, NULL, 8) == 5);

    /* 1. Garbage after the last batch. */
    int fd = open(seg, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "garbage!garbage!", 16) == 16);
    close(fd);
    log = open_log(dir, o);
    REQUIRE(log);
    CHECK_INT(rv__plog_high(log), 50);
    CHECK_INT(file_size(seg), size);
    const char *w = cap_find(&cap, "warning", "truncated a torn tail");
    CHECK(w && strstr(w, seg) && strstr(w, "dropped 16 bytes"));
    char at[64];
    snprintf(at, sizeof at, "at byte %lld", (long long)size);
    CHECK(w && strstr(w, at));
    CHECK_INT(read_gen(log, 0, 50, 100), 50);
    rv__plog_close(log);

    /* 2. The last batch cut in the middle: it is dropped, the others stay. */
    CHECK(truncate(seg, size - 10) == 0);
    cap.n = 0;
    log = open_log(dir, o);
    REQUIRE(log);
    CHECK_INT(rv__plog_high(log), 40);
    CHECK_INT(file_size(seg), pos[4]);
    w = cap_find(&cap, "warning", "truncated a torn tail");
    char dropped[64];
    snprintf(dropped, sizeof dropped, "dropped %lld bytes", (long long)(size - 10 - pos[4]));
    CHECK(w && strstr(w, dropped) && strstr(w, "partial batch"));
    CHECK_INT(read_gen(log, 0, 40, 100), 40);
    /* New appends continue at the right offset and read back. */
    CHECK_INT(append_gen(log, 10), RV_OK);
    CHECK_INT(rv__plog_high(log), 50);
    CHECK_INT(read_gen(log, 0, 50, 100), 50);
    rv__plog_close(log);

    /* 3. A flipped byte in the last batch (a CRC failure at the tail). */
    size = file_size(seg);
    fd = open(seg, O_RDWR);
    uint8_t byte;
    CHECK(pread(fd, &byte, 1, size - 3) == 1);
    byte ^= 0x40;
    CHECK(pwrite(fd, &byte, 1, size - 3) == 1);
    close(fd);
    cap.n = 0;
    log = open_log(dir, o);
    REQUIRE(log);
    CHECK_INT(rv__plog_high(log), 40);
    w = cap_find(&cap, "warning", "truncated a torn tail");
    CHECK(w && strstr(w, "CRC"));
    CHECK_INT(read_gen(log, 0, 40, 100), 40);
    rv__plog_close(log);

    /* 4. A file that ends inside a batch header. */
    CHECK(truncate(seg, file_size(seg) + 0) == 0);
    fd = open(seg, O_WRONLY | O_APPEND);
    uint8_t part[20] = {0};
    CHECK(fd >= 0 && write(fd, part, sizeof part) == (ssize_t)sizeof part);
    close(fd);
    cap.n = 0;
    log = open_log(dir, o);
    REQUIRE(log);
    CHECK_INT(rv__plog_high(log), 40);
    CHECK(cap_find(&cap, "warning", "partial batch header"));
    rv__plog_close(log);
    free(seg);
    rm_dir(dir);
}

static void test_corrupt_middle(void) {
    char *dir = make_dir();
    REQUIRE(dir);
    cap_t cap;
    rv_logger_t lg;
    cap_init(&cap, &lg);
    rv_plog_opts_t o = opts_w(&lg);
    o.segment_bytes = 8000;
    rv_plog_t *log = open_log(dir, o);
    REQUIRE(log);
    for (int i = 0; i < 12; i++) {
        CHECK_INT(append_gen(log, 10), RV_OK);
    }
    int64_t high = rv__plog_high(log);
    rv__plog_close(log);
    REQUIRE(count_files(dir, ".log") >= 2);

    /* Damage batch 2 of the first (closed) and of the last (active) segment. */
    int64_t bases[2] = {0, last_base(dir)};
    int64_t bad_pos[2];
    for (int s = 0; s < 2; s++) {
        char *seg = seg_file(dir, bases[s], ".log");
        int64_t pos[64];
        int nb = batch_positions(seg, pos, NULL, 64);
        REQUIRE(nb >= 3);
        bad_pos[s] = pos[1];
        int fd = open(seg, O_RDWR);
        uint8_t byte;
        CHECK(pread(fd, &byte, 1, pos[1] + 100) == 1);
        byte ^= 0x01;
        CHECK(pwrite(fd, &byte, 1, pos[1] + 100) == 1);
        close(fd);
        free(seg);
    }
    log = open_log(dir, o);
    REQUIRE(log);
    CHECK_INT(rv__plog_high(log), high); /* not truncated: valid batches follow */
    CHECK(cap.warnings == 0);
    CHECK(cap_find(&cap, "error", "damaged batch"));
    for (int s = 0; s < 2; s++) {
        rv_plog_reader_t *r = NULL;
        REQUIRE(rv__plog_reader_open(log, bases[s], &r, NULL) == RV_OK);
        rv_record_t out[100];
        size_t n = 0;
        rv_error_t *err = NULL;
        CHECK_INT(rv__plog_read(r, out, 100, &n, &err), RV_OK);
        CHECK_INT(n, 10); /* the batch before the damage */
        for (size_t i = 0; i < n; i++) {
            CHECK_INT(check_gen(&out[i], bases[s] + (int64_t)i), 0);
        }
        for (int again = 0; again < 2; again++) {
            CHECK_INT(rv__plog_read(r, out, 100, &n, &err), RV_ERR_CORRUPT);
            CHECK_INT(n, 0);
            char *seg = seg_file(dir, bases[s], ".log");
            char at[64];
            snprintf(at, sizeof at, "byte %lld", (long long)bad_pos[s]);
            CHECK_MSG(err && strstr(rv_error_message(err), seg) &&
                          strstr(rv_error_message(err), at),
                      "message: %s", rv_error_message(err));
            free(seg);
            rv_error_destroy(err);
            err = NULL;
        }
        CHECK_INT(rv__plog_reader_position(r), bases[s] + 10);
        /* Past the damage, reads go on. */
        CHECK_INT(rv__plog_reader_seek(r, bases[s] + 20, NULL), RV_OK);
        CHECK_INT(rv__plog_read(r, out, 10, &n, NULL), RV_OK);
        CHECK_INT(n, 10);
        CHECK_INT(check_gen(&out[0], bases[s] + 20), 0);
        rv__plog_reader_close(r);
    }
    /* Compaction refuses to carry damage along. */
    rv_error_t *err = NULL;
    CHECK_INT(rv__plog_compact(log, 0, INT64_MAX / 2, &err), RV_ERR_CORRUPT);
    CHECK(err && strstr(rv_error_message(err), "00000000000000000000.log"));
    rv_error_destroy(err);
    CHECK_INT(count_files(dir, ".cleaned"), 0);
    rv__plog_close(log);
    rm_dir(dir);
}

/* ---- processes ------------------------------------------------------------------------------ */

static void test_writer_lock(void) {
    char *dir = make_dir();
    REQUIRE(dir);
    rv_plog_t *log = open_log(dir, opts_w(NULL));
    REQUIRE(log);
    rv_plog_opts_t o = opts_w(NULL);
    rv_plog_t *second = NULL;
    rv_error_t *err = NULL;
    CHECK_INT(rv__plog_open(dir, &o, &second, &err), RV_ERR_BUSY);
    CHECK(second == NULL);
    CHECK_MSG(err && strstr(rv_error_message(err), dir), "%s", rv_error_message(err));
    rv_error_destroy(err);

    pid_t pid = fork();
    if (pid == 0) {
        rv_plog_t *l2 = NULL;
        rv_plog_opts_t o2 = opts_w(NULL);
        rv_err_t rc = rv__plog_open(dir, &o2, &l2, NULL);
        _exit(rc == RV_ERR_BUSY ? 0 : 1);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    o.writable = false;
    rv_plog_t *r1 = open_log(dir, o), *r2 = open_log(dir, o);
    CHECK(r1 && r2);
    rv__plog_close(r1);
    rv__plog_close(r2);
    rv__plog_close(log);
    /* Released on close. */
    log = open_log(dir, opts_w(NULL));
    CHECK(log != NULL);
    rv__plog_close(log);
    rm_dir(dir);
}

static void test_cross_process_reader(void) {
    char *dir = make_dir();
    REQUIRE(dir);
    rv_plog_opts_t o = opts_w(NULL);
    o.segment_bytes = 4096;
    rv_plog_t *log = open_log(dir, o);
    REQUIRE(log);
    CHECK_INT(append_gen(log, 20), RV_OK);
    int ready[2], report[2];
    REQUIRE(pipe(ready) == 0 && pipe(report) == 0);
    enum { ROUNDS = 6 };
    pid_t pid = fork();
    if (pid == 0) {
        /* The child: its own read-only handle, opened after the first appends. */
        rv_plog_opts_t ro = opts_w(NULL);
        ro.writable = false;
        rv_plog_t *rl = NULL;
        int64_t lat[ROUNDS];
        int fail = 0;
        if (rv__plog_open(dir, &ro, &rl, NULL) != RV_OK) {
            _exit(2);
        }
        rv_plog_reader_t *r = NULL;
        rv__plog_reader_open(rl, 0, &r, NULL);
        rv_record_t out[64];
        size_t n;
        int64_t next = 0;
        while (next < 20 && rv__plog_read(r, out, 64, &n, NULL) == RV_OK && n > 0) {
            for (size_t i = 0; i < n; i++, next++) {
                fail += check_gen(&out[i], next);
            }
        }
        for (int round = 0; round < ROUNDS; round++) {
            char c = 'r';
            int64_t known = 20 + round * 31; /* each round: a stamp and 30 records */
            if (rv__plog_high(rl) != known || write(ready[1], &c, 1) != 1) {
                _exit(3);
            }
            if (!rv__plog_wait(rl, known, 5000)) {
                _exit(4);
            }
            int64_t woke = rv_clock_mono_ns();
            if (rv__plog_read(r, out, 1, &n, NULL) != RV_OK || n != 1 || out[0].offset != known ||
                out[0].value_len != sizeof(int64_t)) {
                _exit(5);
            }
            int64_t sent;
            memcpy(&sent, out[0].value, sizeof sent);
            lat[round] = woke - sent;
            /* the records appended after the stamp (crossing segments) all arrive */
            next = known + 1;
            int64_t deadline = rv_clock_mono_ms() + 5000;
            while (next < known + 31 && rv_clock_mono_ms() < deadline) {
                if (rv__plog_read(r, out, 64, &n, NULL) != RV_OK) {
                    _exit(6);
                }
                if (n == 0) {
                    rv__plog_wait(rl, next, 100);
                }
                for (size_t i = 0; i < n; i++, next++) {
                    fail += check_gen(&out[i], next);
                }
            }
            fail += next != known + 31;
        }
        if (write(report[1], lat, sizeof lat) != (ssize_t)sizeof lat) {
            _exit(6);
        }
        rv__plog_reader_close(r);
        rv__plog_close(rl);
        _exit(fail ? 7 : 0);
    }
    for (int round = 0; round < ROUNDS; round++) {
        char c;
        REQUIRE(read(ready[0], &c, 1) == 1);
        rv_clock_sleep_ms(30); /* let the child block in the futex */
        int64_t stamp = rv_clock_mono_ns();
        rv_record_t rec = {.timestamp_ms = 1, .value = &stamp, .value_len = sizeof stamp};
        CHECK_INT(rv__plog_append(log, &rec, 1, NULL, NULL), RV_OK);
        CHECK_INT(append_gen(log, 30), RV_OK);
    }
    int64_t lat[ROUNDS];
    CHECK(read(report[0], lat, sizeof lat) == (ssize_t)sizeof lat);
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    int64_t worst = 0;
    for (int i = 0; i < ROUNDS; i++) {
        worst = lat[i] > worst ? lat[i] : worst;
    }
    fprintf(stderr, "     cross-process wake latency: worst %.3f ms, first %.3f ms\n",
            (double)worst / 1e6, (double)lat[0] / 1e6);
    CHECK_MSG(worst < 200000000, "wake latency %lld ns", (long long)worst);
    close(ready[0]);
    close(ready[1]);
    close(report[0]);
    close(report[1]);
    rv__plog_close(log);
    rm_dir(dir);
}

/* ---- threads -------------------------------------------------------------------------------- */

typedef struct tctx_s {
    rv_plog_t *log;
    int64_t target;
    bool strict; /* no retention: offsets must be consecutive */
    int errors;
    int64_t seen;
} tctx_t;

static void *reader_thread(void *arg) {
    tctx_t *t = arg;
    rv_plog_reader_t *r = NULL;
    rv_record_t out[100];
    if (rv__plog_reader_open(t->log, 0, &r, NULL) != RV_OK) {
        t->errors++;
        return NULL;
    }
    int64_t last = -1;
    int64_t deadline = rv_clock_mono_ms() + 20000;
    while (last + 1 < t->target && rv_clock_mono_ms() < deadline) {
        size_t n = 0;
        rv_error_t *err = NULL;
        if (rv__plog_read(r, out, 100, &n, &err) != RV_OK) {
            fprintf(stderr, "reader: %s\n", rv_error_message(err));
            rv_error_destroy(err);
            t->errors++;
            break;
        }
        if (n == 0) {
            rv__plog_wait(t->log, rv__plog_reader_position(r), 50);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if ((t->strict && out[i].offset != last + 1) || out[i].offset <= last ||
                check_gen(&out[i], out[i].offset) != 0) {
                t->errors++;
            }
            last = out[i].offset;
            t->seen++;
        }
    }
    if (last + 1 != t->target) {
        t->errors++;
    }
    rv__plog_reader_close(r);
    return NULL;
}

static void test_threads(void) {
    char *dir = make_dir();
    REQUIRE(dir);
    cap_t cap;
    rv_logger_t lg;
    cap_init(&cap, &lg);
    lg.level = RV_LOG_INFO;
    rv_plog_opts_t o = opts_w(&lg);
    o.segment_bytes = 16384;
    o.fsync = RV_FSYNC_INTERVAL;
    rv_plog_t *log = open_log(dir, o);
    REQUIRE(log);
    for (int phase = 0; phase < 2; phase++) {
        int64_t start = rv__plog_high(log);
        int64_t target = start + 6000;
        tctx_t ctx[3];
        pthread_t th[3];
        for (int i = 0; i < 3; i++) {
            ctx[i] = (tctx_t){.log = log, .target = target, .strict = phase == 0};
            pthread_create(&th[i], NULL, reader_thread, &ctx[i]);
        }
        for (int64_t done = start; done < target;) {
            size_t k = (size_t)(1 + done % 97);
            if (done + (int64_t)k > target) {
                k = (size_t)(target - done);
            }
            CHECK_INT(append_gen(log, k), RV_OK);
            done += (int64_t)k;
            if (done % 7 == 0) {
                CHECK_INT(rv__plog_sync(log, NULL), RV_OK);
            }
            if (phase == 1 && done % 5 == 0) {
                int deleted;
                CHECK_INT(rv__plog_enforce_retention(log, -1, 60000, 0, &deleted, NULL), RV_OK);
            }
            if (phase == 1 && done % 11 == 0) {
                CHECK_INT(rv__plog_compact(log, 0, 0, NULL), RV_OK);
            }
        }
        for (int i = 0; i < 3; i++) {
            pthread_join(th[i], NULL);
            CHECK_INT(ctx[i].errors, 0);
            CHECK(ctx[i].seen > 0);
        }
    }
    CHECK(cap_find(&cap, "info", "compacted"));
    CHECK(cap_find(&cap, "info", "retention deletes"));
    CHECK_INT(cap.warnings + cap.errors, 0);
    rv__plog_close(log);
    rm_dir(dir);
}

int main(void) {
    RV_RUN(test_roundtrip);
    RV_RUN(test_errors);
    RV_RUN(test_segments_and_seek);
    RV_RUN(test_large_records);
    RV_RUN(test_offset_for_time);
    RV_RUN(test_index_rebuild);
    RV_RUN(test_codecs);
    RV_RUN(test_retention);
    RV_RUN(test_compaction);
    RV_RUN(test_compaction_recovery);
    RV_RUN(test_torn_tail);
    RV_RUN(test_corrupt_middle);
    RV_RUN(test_writer_lock);
    RV_RUN(test_cross_process_reader);
    RV_RUN(test_threads);
    return rv_test_finish();
}
