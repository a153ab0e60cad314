/*
 * test_kafka_interop.c: `kafka://` speaks Kafka as other clients do: records written by kcat
 * and by Python's confluent-kafka are read by rivulet with exactly their keys, values and
 * headers, records written by rivulet are read by both with exactly rivulet's, and keys land in
 * the partitions Kafka's murmur2 partitioner (confluent-kafka's `murmur2_random`) gives them.
 *
 * The test starts a librdkafka mock cluster on loopback TCP and runs the other clients as child
 * processes against its bootstrap servers, each with a time limit: `kcat` (-P to produce with
 * -K and -H, -C -e -f to print what it read) and the Python scripts of tests/interop/ under a
 * python3 that can import confluent_kafka. They are dependencies (scripts/deps.sh installs the
 * Debian packages kcat and python3-confluent-kafka): a missing one fails the test, saying which,
 * and is never skipped. What each side must see is written out in the test. The test must never
 * depend on a Kafka server outside the process.
 */
/* ctest-labels: threads */
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kafka_mock.h"
#include "kafka_tsan.h"
#include "rivulet/broker.h"
#include "rivulet/clock.h"
#include "rivulet/hash.h"
#include "rv_test.h"

/* The longest one child process may run. */
#define CHILD_TIMEOUT_MS 60000

static km_cluster_t g_km;
static char g_kcat[512];
static const char *g_python;

/* ---- child processes ------------------------------------------------------------------------- */

typedef struct child_s {
    char *out; /* everything it wrote to stdout, NUL-terminated */
    size_t len;
    int status; /* exit status; -1 when it was killed or could not run */
} child_t;

/* Runs argv[0] (searched in PATH) with stdin from `input` (NULL: /dev/null), collecting its
 * stdout; its stderr goes to the test's. Killed after CHILD_TIMEOUT_MS. */
static child_t run(const char *const *argv, const char *input) {
    child_t ch = {.status = -1};
    char in_path[] = "/tmp/rv-interop-XXXXXX";
    int in_fd = -1;
    if (input) {
        in_fd = mkstemp(in_path);
        if (in_fd < 0 || write(in_fd, input, strlen(input)) != (ssize_t)strlen(input) ||
            lseek(in_fd, 0, SEEK_SET) != 0) {
            fprintf(stderr, "cannot write the input of %s: %s\n", argv[0], strerror(errno));
            return ch;
        }
        unlink(in_path);
    }
    int out[2];
    if (pipe(out) != 0) {
        return ch;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int fd = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);
        dup2(fd, 0);
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    if (in_fd >= 0) {
        close(in_fd);
    }
    if (pid < 0) {
        close(out[0]);
        return ch;
    }
    size_t cap = 4096;
    ch.out = malloc(cap);
    int64_t deadline = rv_clock_mono_ms() + CHILD_TIMEOUT_MS;
    bool killed = false;
    for (;;) {
        int64_t left = deadline - rv_clock_mono_ms();
        if (left <= 0) {
            fprintf(stderr, "%s ran longer than %d ms: killed\n", argv[0], CHILD_TIMEOUT_MS);
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        if (poll(&pfd, 1, (int)(left < 1000 ? left : 1000)) <= 0) {
            continue;
        }
        if (ch.len + 4096 + 1 > cap) {
            cap *= 2;
            ch.out = realloc(ch.out, cap);
        }
        ssize_t n = read(out[0], ch.out + ch.len, cap - ch.len - 1);
        if (n <= 0) {
            break;
        }
        ch.len += (size_t)n;
    }
    ch.out[ch.len] = '\0';
    close(out[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    ch.status = !killed && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return ch;
}

/* Finds `name` in PATH into `buf`; false when it is not there. */
static bool in_path(const char *name, char *buf, size_t size) {
    const char *path = getenv("PATH");
    if (!path) {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, size, "%.*s/%s", (int)n, path, name);
        if (access(buf, X_OK) == 0) {
            return true;
        }
        path += n + (path[n] == ':');
    }
    return false;
}

/* The tools the test needs, or a failure naming the missing one. */
static bool find_tools(void) {
    bool ok = true;
    if (!in_path("kcat", g_kcat, sizeof g_kcat)) {
        RV_FAIL_AT(__FILE__, __LINE__,
                   "kcat is not installed (Debian package kcat, installed by scripts/deps.sh): "
                   "the interoperability tests need it");
        ok = false;
    }
    /* Debian's python3 first: python3-confluent-kafka installs into it, not into a python3
     * that a version manager may put first in PATH. */
    static const char *const pythons[] = {"/usr/bin/python3", "python3"};
    for (size_t i = 0; i < sizeof pythons / sizeof pythons[0] && !g_python; i++) {
        const char *argv[] = {pythons[i], "-c", "import confluent_kafka", NULL};
        child_t ch = run(argv, NULL);
        if (ch.status == 0) {
            g_python = pythons[i];
        }
        free(ch.out);
    }
    if (!g_python) {
        RV_FAIL_AT(__FILE__, __LINE__,
                   "no python3 can import confluent_kafka (Debian package "
                   "python3-confluent-kafka, installed by scripts/deps.sh): the "
                   "interoperability tests need it");
        ok = false;
    }
    return ok;
}

/* ---- the mock cluster and rivulet ------------------------------------------------------------ */


static rv_broker_t *open_mock(void) {
    static const char *const pairs[] = {"kafka.fetch.wait.max.ms=100", NULL};
    return km_open(g_km.url, pairs, NULL);
}

/* A record as a test writes it out: text fields, NULL for a null key or value. */
typedef struct want_s {
    const char *key;
    const char *value;
    const char *headers[4][2]; /* name, value; ends at a NULL name */
} want_t;

static size_t header_count(const want_t *w) {
    size_t n = 0;
    while (n < 4 && w->headers[n][0]) {
        n++;
    }
    return n;
}

static bool same_bytes(const void *a, size_t alen, const char *b) {
    return b ? a != NULL && alen == strlen(b) && memcmp(a, b, alen) == 0 : a == NULL;
}

/* Reads `count` records of partitions [0, partitions) of `topic` from the beginning, calling
 * `fn` for each. Returns how many came within 20 s. */
static size_t rv_read(rv_broker_t *b, const char *topic, int32_t partitions, size_t count,
                      void (*fn)(void *, const rv_record_t *, size_t), void *opaque) {
    rv_consumer_t *c = rv_consumer_new(b, NULL, NULL);
    if (!c) {
        return 0;
    }
    rv_topic_partition_t tps[16];
    for (int32_t p = 0; p < partitions; p++) {
        tps[p] = (rv_topic_partition_t){topic, p, RV_OFFSET_BEGINNING};
    }
    CHECK_INT(rv_consumer_assign(c, tps, (size_t)partitions, NULL), RV_OK);
    size_t got = 0;
    int64_t until = rv_clock_mono_ms() + 20000;
    while (got < count && rv_clock_mono_ms() < until) {
        const rv_record_t *recs;
        size_t n = 0;
        rv_consumer_poll(c, &recs, 256, &n, 100, NULL);
        for (size_t i = 0; i < n; i++) {
            fn(opaque, &recs[i], got++);
        }
    }
    rv_consumer_close(c);
    return got;
}

/* ---- kcat and Python write, rivulet reads ---------------------------------------------------- */

/* What the kcat runs below write to partition 0, offsets 0 to 5. */
static const want_t g_from_kcat[] = {
    {"user-1", "first value", {{"trace", "abc-123"}, {"origin", "kcat"}}},
    {"user-2", "second:with:colons", {{"trace", "abc-123"}, {"origin", "kcat"}}},
    {"user-3", "\xc3\xbc" "bung \xe2\x9c\x93", {{"trace", "abc-123"}, {"origin", "kcat"}}},
    {"k4", "v4", {{"only", "one"}}},
    {"k5", "five", {{"only", "one"}}},
    {"k6", "six", {{NULL, NULL}}},
};

static void check_from_kcat(void *opaque, const rv_record_t *r, size_t i) {
    (void)opaque;
    if (i >= sizeof g_from_kcat / sizeof g_from_kcat[0]) {
        CHECK_MSG(false, "record %zu is one too many", i);
        return;
    }
    const want_t *w = &g_from_kcat[i];
    CHECK_INT(r->partition, 0);
    CHECK_INT(r->offset, (int64_t)i);
    CHECK_MSG(same_bytes(r->key, r->key_len, w->key), "record %zu: key '%.*s', want '%s'", i,
              (int)r->key_len, r->key ? (const char *)r->key : "", w->key);
    CHECK_MSG(same_bytes(r->value, r->value_len, w->value), "record %zu: value '%.*s', want '%s'",
              i, (int)r->value_len, r->value ? (const char *)r->value : "", w->value);
    size_t nh = header_count(w);
    CHECK_MSG(r->header_count == nh, "record %zu: %zu headers, want %zu", i, r->header_count, nh);
    for (size_t h = 0; h < nh && h < r->header_count; h++) {
        CHECK_STR(r->headers[h].name, w->headers[h][0]);
        CHECK_MSG(same_bytes(r->headers[h].value, r->headers[h].value_len, w->headers[h][1]),
                  "record %zu header %zu: value '%.*s', want '%s'", i, h,
                  (int)r->headers[h].value_len, (const char *)r->headers[h].value,
                  w->headers[h][1]);
    }
}

static void test_kcat_to_rivulet(void) {
    rv_broker_t *b = open_mock();
    REQUIRE(b != NULL);
    const char *t = "interop-from-kcat";
    REQUIRE(rd_kafka_mock_topic_create(g_km.mock, t, 1, 3) == 0);
    const char *run1[] = {g_kcat, "-q", "-P", "-b", g_km.bootstraps, "-t", t, "-p", "0", "-K",
                          ":", "-H", "trace=abc-123", "-H", "origin=kcat", NULL};
    child_t ch = run(run1, "user-1:first value\n"
                           "user-2:second:with:colons\n"
                           "user-3:\xc3\xbc" "bung \xe2\x9c\x93\n");
    CHECK_MSG(ch.status == 0, "kcat -P exited with %d", ch.status);
    free(ch.out);
    const char *run2[] = {g_kcat, "-q", "-P", "-b", g_km.bootstraps, "-t", t, "-p", "0", "-K",
                          ":", "-H", "only=one", NULL};
    ch = run(run2, "k4:v4\nk5:five\n");
    CHECK_MSG(ch.status == 0, "kcat -P exited with %d", ch.status);
    free(ch.out);
    const char *run3[] = {g_kcat, "-q", "-P", "-b", g_km.bootstraps, "-t", t, "-p", "0", "-K",
                          ":", NULL};
    ch = run(run3, "k6:six\n");
    CHECK_MSG(ch.status == 0, "kcat -P exited with %d", ch.status);
    free(ch.out);

    size_t want = sizeof g_from_kcat / sizeof g_from_kcat[0];
    CHECK_INT(rv_read(b, t, 1, want, check_from_kcat, NULL), want);
    int64_t lo = -1, hi = -1;
    CHECK_INT(rv_broker_watermarks(b, t, 0, &lo, &hi, NULL), RV_OK);
    CHECK_INT(hi, (int64_t)want); /* nothing more than these */
    rv_broker_close(b);
}

/* ---- rivulet writes, kcat and Python read ---------------------------------------------------- */

/* What rivulet writes to partition 0, offsets 0 to 5: keys and headers of every kind kcat's
 * format shows (a null key, an empty value, a null value, a repeated header name). */
static const want_t g_from_rv[] = {
    {"alpha", "one", {{"h1", "x"}, {"h2", "yy"}}},
    {"beta", "two:2", {{"trace", "t-1"}}},
    {NULL, "three", {{NULL, NULL}}},
    {"delta", "", {{"dup", "a"}, {"dup", "b"}}},
    {"epsilon", "\xc3\xbc\xe2\x9c\x93 utf8", {{"lang", "\xc3\xa9t\xc3\xa9"}}},
    {"zeta", NULL, {{"tomb", "stone"}}},
};
#define N_FROM_RV (sizeof g_from_rv / sizeof g_from_rv[0])

static void rv_write(rv_broker_t *b, const char *topic) {
    rv_producer_t *p = rv_producer_new(b, NULL, NULL);
    if (!p) {
        CHECK(p != NULL);
        return;
    }
    for (size_t i = 0; i < N_FROM_RV; i++) {
        const want_t *w = &g_from_rv[i];
        rv_header_t h[4];
        size_t nh = header_count(w);
        for (size_t k = 0; k < nh; k++) {
            h[k] = (rv_header_t){w->headers[k][0], w->headers[k][1], strlen(w->headers[k][1])};
        }
        rv_record_t r = {.topic = topic, .partition = 0, .key = w->key,
                         .key_len = w->key ? strlen(w->key) : 0, .value = w->value,
                         .value_len = w->value ? strlen(w->value) : 0,
                         .headers = nh ? h : NULL, .header_count = nh};
        CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    }
    CHECK_INT(rv_producer_flush(p, 10000, NULL), RV_OK);
    rv_producer_close(p);
}

static void append(char **buf, size_t *len, const char *fmt, ...) RV_PRINTF(3, 4);
static void append(char **buf, size_t *len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    *buf = realloc(*buf, *len + (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(*buf + *len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *len += (size_t)n;
}

static void append_hex(char **buf, size_t *len, const char *s) {
    if (!s) {
        append(buf, len, "-");
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        append(buf, len, "%02x", *p);
    }
}

/* What kcat -f '%p|%o|%K|%k|%S|%s|%h\n' prints for g_from_rv: lengths are -1 for null, headers
 * name=value joined by ",". */
static char *kcat_expected(void) {
    char *s = NULL;
    size_t len = 0;
    append(&s, &len, "%s", "");
    for (size_t i = 0; i < N_FROM_RV; i++) {
        const want_t *w = &g_from_rv[i];
        append(&s, &len, "0|%zu|%d|%s|%d|%s|", i, w->key ? (int)strlen(w->key) : -1,
               w->key ? w->key : "", w->value ? (int)strlen(w->value) : -1,
               w->value ? w->value : "");
        for (size_t h = 0; h < header_count(w); h++) {
            append(&s, &len, "%s%s=%s", h ? "," : "", w->headers[h][0], w->headers[h][1]);
        }
        append(&s, &len, "\n");
    }
    return s;
}

/* What tests/interop/consume.py prints for g_from_rv. */
static char *python_expected(void) {
    char *s = NULL;
    size_t len = 0;
    append(&s, &len, "%s", "");
    for (size_t i = 0; i < N_FROM_RV; i++) {
        const want_t *w = &g_from_rv[i];
        append(&s, &len, "0 %zu ", i);
        append_hex(&s, &len, w->key);
        append(&s, &len, " ");
        append_hex(&s, &len, w->value);
        append(&s, &len, " ");
        size_t nh = header_count(w);
        for (size_t h = 0; h < nh; h++) {
            append(&s, &len, "%s%s=", h ? "," : "", w->headers[h][0]);
            append_hex(&s, &len, w->headers[h][1]);
        }
        append(&s, &len, "%s\n", nh ? "" : "-");
    }
    return s;
}

static void test_rivulet_to_kcat_and_python(void) {
    rv_broker_t *b = open_mock();
    REQUIRE(b != NULL);
    const char *t = "interop-from-rivulet";
    REQUIRE(rd_kafka_mock_topic_create(g_km.mock, t, 1, 3) == 0);
    rv_write(b, t);

    const char *kc[] = {g_kcat, "-q", "-C", "-b", g_km.bootstraps, "-t", t, "-o", "beginning",
                        "-e", "-f", "%p|%o|%K|%k|%S|%s|%h\n", NULL};
    child_t ch = run(kc, NULL);
    char *want = kcat_expected();
    CHECK_MSG(ch.status == 0, "kcat -C exited with %d", ch.status);
    CHECK_MSG(ch.out && strcmp(ch.out, want) == 0, "kcat read:\n%s\nwant:\n%s", ch.out, want);
    free(want);
    free(ch.out);

    char script[1024], count[16];
    snprintf(script, sizeof script, "%s/tests/interop/consume.py", RV_SOURCE_DIR);
    snprintf(count, sizeof count, "%zu", N_FROM_RV);
    const char *py[] = {g_python, script, g_km.bootstraps, t, "1", count, "30", NULL};
    ch = run(py, NULL);
    want = python_expected();
    CHECK_MSG(ch.status == 0, "consume.py exited with %d", ch.status);
    CHECK_MSG(ch.out && strcmp(ch.out, want) == 0, "confluent-kafka read:\n%s\nwant:\n%s",
              ch.out, want);
    free(want);
    free(ch.out);
    rv_broker_close(b);
}

/* ---- partitioning: confluent-kafka's murmur2_random against rivulet -------------------------- */

enum { KEY_PARTITIONS = 7, MAX_KEYS = 400 };

typedef struct keyset_s {
    char keys[MAX_KEYS][160];
    size_t lens[MAX_KEYS];
    size_t n;
    int32_t py_partition[MAX_KEYS]; /* where confluent-kafka's report says it landed */
    int32_t rv_partition[MAX_KEYS]; /* where rivulet's producer put the same key */
    int32_t read_partition[MAX_KEYS]; /* where rivulet's consumer found confluent-kafka's */
} keyset_t;

static void keyset_add(keyset_t *ks, const void *key, size_t len) {
    memcpy(ks->keys[ks->n], key, len);
    ks->lens[ks->n] = len;
    ks->py_partition[ks->n] = ks->rv_partition[ks->n] = ks->read_partition[ks->n] = -1;
    ks->n++;
}

static void keyset_fill(keyset_t *ks) {
    char k[160];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        keyset_add(ks, k, strlen(k));
    }
    for (int i = 0; i < 32; i++) { /* one byte, every high bit pattern of murmur2's tail */
        k[0] = (char)(i * 8 + 3);
        keyset_add(ks, k, 1);
    }
    for (int len = 2; len <= 9; len++) { /* each tail length of the 4-byte blocks */
        for (int i = 0; i < len; i++) {
            k[i] = (char)(0xf0 + i);
        }
        keyset_add(ks, k, (size_t)len);
    }
    for (int i = 0; i < 10; i++) { /* long keys */
        memset(k, 'a' + i, 150);
        keyset_add(ks, k, 150);
    }
    keyset_add(ks, "\xc3\xa9t\xc3\xa9", 6);
    keyset_add(ks, "\xe2\x9c\x93 done", 8);
}

static int32_t keyset_find(const keyset_t *ks, const void *key, size_t len) {
    for (size_t i = 0; i < ks->n; i++) {
        if (ks->lens[i] == len && memcmp(ks->keys[i], key, len) == 0) {
            return (int32_t)i;
        }
    }
    return -1;
}

static void on_key_delivery(void *opaque, const rv_record_t *rec, rv_err_t err,
                            void *rec_opaque) {
    keyset_t *ks = opaque;
    size_t i = (size_t)(uintptr_t)rec_opaque;
    CHECK_INT(err, RV_OK);
    if (i < ks->n) {
        ks->rv_partition[i] = rec->partition;
    }
}

static void on_key_read(void *opaque, const rv_record_t *r, size_t n) {
    (void)n;
    keyset_t *ks = opaque;
    int32_t i = keyset_find(ks, r->key, r->key_len);
    CHECK_MSG(i >= 0, "rivulet read a key confluent-kafka did not write");
    if (i >= 0) {
        CHECK_MSG(ks->read_partition[i] < 0, "key %d read twice", (int)i);
        ks->read_partition[i] = r->partition;
    }
}

static void test_partitioner_matches_confluent_kafka(void) {
    rv_broker_t *b = open_mock();
    REQUIRE(b != NULL);
    const char *tpy = "interop-keys-python", *trv = "interop-keys-rivulet";
    REQUIRE(rd_kafka_mock_topic_create(g_km.mock, tpy, KEY_PARTITIONS, 3) == 0);
    REQUIRE(rd_kafka_mock_topic_create(g_km.mock, trv, KEY_PARTITIONS, 3) == 0);
    keyset_t *ks = calloc(1, sizeof *ks);
    REQUIRE(ks != NULL);
    keyset_fill(ks);

    /* confluent-kafka writes every key, letting murmur2_random choose. */
    char *input = NULL;
    size_t len = 0;
    append(&input, &len, "%s", "");
    for (size_t i = 0; i < ks->n; i++) {
        for (size_t j = 0; j < ks->lens[i]; j++) {
            append(&input, &len, "%02x", (unsigned char)ks->keys[i][j]);
        }
        append(&input, &len, "\n");
    }
    char script[1024];
    snprintf(script, sizeof script, "%s/tests/interop/produce_keys.py", RV_SOURCE_DIR);
    const char *py[] = {g_python, script, g_km.bootstraps, tpy, NULL};
    child_t ch = run(py, input);
    free(input);
    CHECK_MSG(ch.status == 0, "produce_keys.py exited with %d", ch.status);
    size_t reported = 0;
    for (char *line = ch.out ? strtok(ch.out, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char hex[400];
        int partition = -1;
        long long offset = -1;
        if (sscanf(line, "%399s %d %lld", hex, &partition, &offset) != 3) {
            CHECK_MSG(false, "produce_keys.py printed '%s'", line);
            continue;
        }
        char key[200];
        size_t klen = strlen(hex) / 2;
        for (size_t j = 0; j < klen && j < sizeof key; j++) {
            unsigned v = 0;
            sscanf(hex + 2 * j, "%2x", &v);
            key[j] = (char)v;
        }
        int32_t i = keyset_find(ks, key, klen);
        CHECK_MSG(i >= 0, "produce_keys.py reported a key it was not given: %s", hex);
        if (i >= 0) {
            ks->py_partition[i] = partition;
            reported++;
        }
    }
    free(ch.out);
    CHECK_INT(reported, ks->n);

    /* rivulet writes the same keys without a partition. */
    rv_producer_opts_t po = {.delivery_cb = on_key_delivery, .opaque = ks};
    rv_producer_t *p = rv_producer_new(b, &po, NULL);
    REQUIRE(p != NULL);
    for (size_t i = 0; i < ks->n; i++) {
        rv_record_t r = {.topic = trv, .partition = RV_PARTITION_ANY, .key = ks->keys[i],
                         .key_len = ks->lens[i], .value = "v", .value_len = 1};
        CHECK_INT(rv_producer_send(p, &r, (void *)(uintptr_t)i), RV_OK);
    }
    CHECK_INT(rv_producer_flush(p, 20000, NULL), RV_OK);
    rv_producer_close(p);

    /* And rivulet reads back where confluent-kafka's records are. */
    CHECK_INT(rv_read(b, tpy, KEY_PARTITIONS, ks->n, on_key_read, ks), ks->n);

    int used[KEY_PARTITIONS] = {0};
    size_t differ = 0;
    for (size_t i = 0; i < ks->n; i++) {
        int32_t want = rv_murmur2_partition(ks->keys[i], ks->lens[i], KEY_PARTITIONS);
        if (ks->py_partition[i] != want || ks->rv_partition[i] != want ||
            ks->read_partition[i] != want) {
            if (differ++ < 10) {
                CHECK_MSG(false,
                          "key %zu (%zu bytes): confluent-kafka put it in %d (read there: %d), "
                          "rivulet in %d, rv_murmur2_partition says %d",
                          i, ks->lens[i], (int)ks->py_partition[i], (int)ks->read_partition[i],
                          (int)ks->rv_partition[i], (int)want);
            }
        }
        if (want >= 0 && want < KEY_PARTITIONS) {
            used[want]++;
        }
    }
    CHECK_INT(differ, 0);
    for (int i = 0; i < KEY_PARTITIONS; i++) {
        CHECK_MSG(used[i] > 0, "no key went to partition %d: the keys do not test much", i);
    }
    fprintf(stderr, "%zu keys compared over %d partitions\n", ks->n, KEY_PARTITIONS);
    free(ks);
    rv_broker_close(b);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    if (!find_tools()) {
        return rv_test_finish();
    }
    if (!km_start(&g_km, 3)) {
        fprintf(stderr, "cannot start librdkafka's mock cluster\n");
        return 1;
    }
    fprintf(stderr, "-- mock cluster at %s; kcat %s; python %s\n", g_km.bootstraps, g_kcat,
            g_python);
    RV_RUN(test_kcat_to_rivulet);
    RV_RUN(test_rivulet_to_kcat_and_python);
    RV_RUN(test_partitioner_matches_confluent_kafka);
    km_stop(&g_km);
    return rv_test_finish();
}
