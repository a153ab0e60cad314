/*
 * test_state_store.c: the state stores of src/state, driven directly: real RocksDB directories
 * in a temporary state.dir and real changelog topics on the memory: broker.
 *
 * It checks reads that see the current checkpoint's buffered writes and deletes, ordered range
 * and prefix iteration merging the buffer with committed keys (with big-endian time keys),
 * TTL on event time, a checkpoint (changelog records, then the WriteBatch) and a reopen that
 * finds everything, a rebuild from the changelog after the local directory is deleted (also
 * when the partition is revoked in the middle of the restore), replay detection by the stored
 * processed offset, and a bounded wait for a RocksDB lock held by another process (this program
 * run again as that process).
 *
 * ctest-labels: threads
 */
#include <rocksdb/c.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app/app_int.h"
#include "rivulet/clock.h"
#include "rv_test.h"
#include "state/state_int.h"

static char g_dir[256];

/* A world: an application on memory: (for its broker and a topic), one store declaration and a
 * producer whose delivery reports reach the stores. */
typedef struct world_s {
    rv_app_t *app;
    rv_topic_t *topic;
    rv__store_decl_t decl;
    rv__store_decl_t *decls[1];
    rv_producer_t *producer;
    rv__stores_t *ss;
    rv_logger_t log;
    _Atomic int64_t restored;
    int64_t restore_batch;
    int64_t lock_timeout_ms;
} world_t;

static void on_delivery(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    (void)opaque;
    if (rec_opaque) {
        rv__stores_delivered(rec_opaque, rec, err);
    }
}

static bool world_stores(world_t *w) {
    rv__stores_opts_t so = {.state_dir = g_dir,
                            .group = "g",
                            .broker = rv_app_broker(w->app),
                            .producer = w->producer,
                            .log = &w->log,
                            .decls = w->decls,
                            .ndecls = 1,
                            .lock_timeout_ms = w->lock_timeout_ms,
                            .restore_batch = w->restore_batch,
                            .worker = 0,
                            .restored = &w->restored};
    w->ss = rv__stores_new(&so, NULL);
    return w->ss != NULL;
}

static bool world_open(world_t *w, const char *url) {
    memset(w, 0, sizeof *w);
    w->restore_batch = 1000;
    w->lock_timeout_ms = 2000;
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "state.dir", g_dir, NULL);
    rv_app_opts_t ao = {.broker_url = url, .group = "g", .conf = conf};
    w->app = rv_app_new(&ao, NULL);
    rv_conf_destroy(conf);
    if (!w->app) {
        return false;
    }
    rv_topic_opts_t to = {.partitions = 2};
    w->topic = rv_app_topic(w->app, "in", &to, NULL);
    w->decl = (rv__store_decl_t){
        .name = "counts", .topic = w->topic, .index = 0, .changelog = "g--changelog--in--counts"};
    w->decls[0] = &w->decl;
    rv_broker_t *b = rv_app_broker(w->app);
    rv_broker_create_topic(b, "in", 2, NULL, NULL);
    rv_conf_t *tc = rv_conf_new();
    rv_conf_set(tc, "cleanup.policy", "compact", NULL);
    rv_broker_create_topic(b, w->decl.changelog, 2, tc, NULL);
    rv_conf_destroy(tc);
    rv_producer_opts_t po = {.delivery_cb = on_delivery};
    w->producer = rv_producer_new(b, &po, NULL);
    return w->producer && world_stores(w);
}

static void world_close(world_t *w) {
    rv__stores_destroy(w->ss);
    w->ss = NULL;
    rv_producer_close(w->producer);
    rv_app_destroy(w->app);
}

/* Assigns partition p and steps the restore until it is ready (or fails). */
static rv_err_t make_ready(world_t *w, int32_t p, rv_error_t **err) {
    rv_err_t e = rv__stores_assign(w->ss, w->topic, p, err);
    for (int i = 0; e == RV_OK && i < 2000 && !rv__stores_ready(w->ss, w->topic, p); i++) {
        bool busy, ready;
        rv_topic_t *t;
        int32_t rp;
        e = rv__stores_restore(w->ss, &busy, &ready, &t, &rp, err);
    }
    return e;
}

/* A context for a record of partition p at `offset` with timestamp `ts`. */
typedef struct fake_s {
    rv_ctx_t ctx;
    rv_record_t rec;
} fake_t;

static rv__store_t *store_for(world_t *w, fake_t *f, int32_t p, int64_t offset, int64_t ts,
                              bool *replay) {
    memset(f, 0, sizeof *f);
    f->rec = (rv_record_t){.topic = "in", .partition = p, .offset = offset, .timestamp_ms = ts};
    f->ctx.rec = &f->rec;
    f->ctx.topic = w->topic;
    f->ctx.timestamp = ts;
    f->ctx.stores = w->ss;
    return rv__ctx_store(&f->ctx, &w->decl, replay);
}

static int64_t next_is(void *opaque, const rv_topic_t *t, int32_t p) {
    (void)t;
    (void)p;
    return *(int64_t *)opaque;
}

/* Checkpoint steps 2 and 4 for every store, with `next` as the processed offset. */
static rv_err_t checkpoint(world_t *w, int64_t next) {
    bool sent;
    rv_error_t *err = NULL;
    rv_err_t e = rv__stores_send_changelog(w->ss, next_is, &next, &sent, &err);
    if (e == RV_OK) {
        e = rv__stores_commit(w->ss, &err);
    }
    if (e != RV_OK) {
        fprintf(stderr, "checkpoint: %s\n", rv_error_message(err));
    }
    rv_error_destroy(err);
    return e;
}

static bool get_is(rv__store_t *s, const char *k, const char *want) {
    rv_buf_t v;
    rv_err_t e = rv__store_get(s, k, strlen(k), &v);
    if (!want) {
        return e == RV_ERR_NOT_FOUND;
    }
    return e == RV_OK && v.len == strlen(want) && memcmp(v.data, want, v.len) == 0;
}

static void rmrf(const char *path) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    CHECK(system(cmd) == 0);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_buffer_and_reopen(void) {
    rmrf(g_dir);
    world_t w;
    REQUIRE(world_open(&w, "memory:"));
    rv_error_t *err = NULL;
    REQUIRE(make_ready(&w, 0, &err) == RV_OK);
    fake_t f;
    bool replay = true;
    rv__store_t *s = store_for(&w, &f, 0, 0, 1000, &replay);
    REQUIRE(s != NULL);
    CHECK(!replay);
    CHECK(get_is(s, "a", NULL));
    CHECK_INT(rv__store_put(s, "a", 1, "1", 1, 0), RV_OK);
    CHECK_INT(rv__store_put(s, "b", 1, "2", 1, 0), RV_OK);
    CHECK(get_is(s, "a", "1")); /* buffered, seen */
    CHECK_INT(rv__store_put(s, "a", 1, "11", 2, 0), RV_OK);
    CHECK(get_is(s, "a", "11"));
    CHECK_INT(rv__store_del(s, "b", 1), RV_OK);
    CHECK(get_is(s, "b", NULL));
    CHECK(!rv__store_exists(s, "b", 1));
    CHECK_INT(rv__store_put(s, "", 0, "x", 1, 0), RV_ERR_INVALID_ARG);
    CHECK(rv__stores_buffered(w.ss) > 0);
    CHECK_INT(checkpoint(&w, 10), RV_OK);
    CHECK_INT(rv__stores_buffered(w.ss), 0);
    CHECK(get_is(s, "a", "11"));
    CHECK(get_is(s, "b", NULL));
    /* The changelog got a and b (a tombstone) and the offsets record. */
    int64_t lo, hi;
    CHECK_INT(rv_broker_watermarks(rv_app_broker(w.app), w.decl.changelog, 0, &lo, &hi, NULL),
              RV_OK);
    CHECK_INT(hi, 3);
    /* Close and reopen: committed data and the processed offset are found. */
    rv__stores_destroy(w.ss);
    REQUIRE(world_stores(&w));
    REQUIRE(make_ready(&w, 0, &err) == RV_OK);
    s = store_for(&w, &f, 0, 9, 1000, &replay);
    REQUIRE(s != NULL);
    CHECK(replay); /* offset 9 < processed 10 */
    s = store_for(&w, &f, 0, 10, 1000, &replay);
    CHECK(!replay);
    CHECK(get_is(s, "a", "11"));
    CHECK(get_is(s, "b", NULL));
    CHECK_INT(atomic_load(&w.restored), 0); /* up to date: nothing to restore */
    /* Uncommitted writes are lost on close (the changelog never saw them either). */
    CHECK_INT(rv__store_put(s, "c", 1, "3", 1, 0), RV_OK);
    rv__stores_destroy(w.ss);
    REQUIRE(world_stores(&w));
    REQUIRE(make_ready(&w, 0, &err) == RV_OK);
    s = store_for(&w, &f, 0, 10, 1000, NULL);
    CHECK(get_is(s, "c", NULL));
    world_close(&w);
}

static void test_iteration(void) {
    rmrf(g_dir);
    world_t w;
    REQUIRE(world_open(&w, "memory:"));
    REQUIRE(make_ready(&w, 1, NULL) == RV_OK);
    fake_t f;
    rv__store_t *s = store_for(&w, &f, 1, 0, 0, NULL);
    REQUIRE(s != NULL);
    /* Keys: "k" + big-endian time, committed for even times, buffered for odd ones. */
    int64_t times[] = {-5, 0, 3, 70000, 1LL << 40, 12};
    unsigned char key[9];
    key[0] = 'k';
    for (size_t i = 0; i < RV_ARRAY_LEN(times); i++) {
        if (times[i] % 2 == 0) {
            rv__store_be64(key + 1, times[i]);
            CHECK_INT(rv__store_put(s, key, 9, &times[i], 8, 0), RV_OK);
        }
    }
    CHECK_INT(checkpoint(&w, 1), RV_OK);
    for (size_t i = 0; i < RV_ARRAY_LEN(times); i++) {
        if (times[i] % 2 != 0) {
            rv__store_be64(key + 1, times[i]);
            CHECK_INT(rv__store_put(s, key, 9, &times[i], 8, 0), RV_OK);
        }
    }
    CHECK_INT(rv__store_put(s, "j", 1, "x", 1, 0), RV_OK);
    CHECK_INT(rv__store_put(s, "l", 1, "x", 1, 0), RV_OK);
    rv__store_be64(key + 1, 12);
    CHECK_INT(rv__store_del(s, key, 9), RV_OK); /* a buffered delete of a committed key */
    int64_t want[] = {-5, 0, 3, 70000, 1LL << 40};
    rv__store_iter_t *it = rv__store_iter_prefix(s, "k", 1);
    REQUIRE(it != NULL);
    rv_buf_t k, v;
    size_t n = 0;
    while (rv__store_iter_next(it, &k, &v)) {
        REQUIRE(k.len == 9 && v.len == 8);
        int64_t t = rv__store_unbe64((const unsigned char *)k.data + 1), tv;
        memcpy(&tv, v.data, 8);
        CHECK(n < RV_ARRAY_LEN(want) && t == want[n] && tv == t);
        n++;
    }
    CHECK_INT(rv__store_iter_error(it), RV_OK);
    CHECK_INT(n, RV_ARRAY_LEN(want));
    /* Writes are refused while an iterator is open. */
    CHECK_INT(rv__store_put(s, "z", 1, "x", 1, 0), RV_ERR_STATE);
    rv__store_iter_close(it);
    /* A range [k+0, k+70000): 0 and 3. */
    unsigned char lo[9] = {'k'}, hi[9] = {'k'};
    rv__store_be64(lo + 1, 0);
    rv__store_be64(hi + 1, 70000);
    it = rv__store_iter(s, lo, 9, hi, 9);
    n = 0;
    while (rv__store_iter_next(it, &k, &v)) {
        n++;
    }
    rv__store_iter_close(it);
    CHECK_INT(n, 2);
    /* Everything: j, 5 k keys, l. */
    it = rv__store_iter(s, NULL, 0, NULL, 0);
    n = 0;
    while (rv__store_iter_next(it, &k, &v)) {
        n++;
    }
    rv__store_iter_close(it);
    CHECK_INT(n, 7);
    world_close(&w);
}

/* Random puts and deletes over a small key space, committed at random moments, against a model:
 * after every step, gets and full and prefix iterations must see exactly the model. */
static void test_model(void) {
    rmrf(g_dir);
    world_t w;
    REQUIRE(world_open(&w, "memory:"));
    REQUIRE(make_ready(&w, 0, NULL) == RV_OK);
    fake_t f;
    rv__store_t *s = store_for(&w, &f, 0, 0, 0, NULL);
    REQUIRE(s != NULL);
    enum { NK = 60 };
    int model[NK]; /* -1 = absent, else the value */
    for (int i = 0; i < NK; i++) {
        model[i] = -1;
    }
    unsigned seed = 12345;
    int64_t next = 1;
    for (int step = 0; step < 1500; step++) {
        int k = (int)(rand_r(&seed) % NK), op = (int)(rand_r(&seed) % 10);
        char key[16];
        /* Keys "a00".."a59" and "b00".. (two prefixes), so prefix scans have neighbours. */
        snprintf(key, sizeof key, "%c%02d", k % 2 ? 'b' : 'a', k / 2);
        if (op < 6) {
            int v = step;
            CHECK_INT(rv__store_put(s, key, 3, &v, sizeof v, 0), RV_OK);
            model[k] = v;
        } else if (op < 9) {
            CHECK_INT(rv__store_del(s, key, 3), RV_OK);
            model[k] = -1;
        } else {
            CHECK_INT(checkpoint(&w, next++), RV_OK);
        }
        if (step % 25 != 0) {
            continue;
        }
        for (int i = 0; i < NK; i++) {
            snprintf(key, sizeof key, "%c%02d", i % 2 ? 'b' : 'a', i / 2);
            rv_buf_t v;
            rv_err_t e = rv__store_get(s, key, 3, &v);
            int got = -1;
            if (e == RV_OK && v.len == sizeof got) {
                memcpy(&got, v.data, sizeof got);
            }
            CHECK_MSG(got == model[i], "step %d get %s: %d, model %d", step, key, got, model[i]);
        }
        for (int pass = 0; pass < 2; pass++) {
            /* pass 0: every key in order (all "a" then all "b"); pass 1: prefix "b". */
            /* The model's keys in byte order: a00, a01, .. (even k), then b00, .. (odd k). */
            char want[NK][4];
            size_t nw = 0;
            for (int half = 0; half < 2; half++) {
                for (int i = half; i < NK; i += 2) {
                    if (model[i] >= 0 && (!pass || half == 1)) {
                        snprintf(want[nw++], 4, "%c%02d", half ? 'b' : 'a', i / 2);
                    }
                }
            }
            rv__store_iter_t *it =
                pass ? rv__store_iter_prefix(s, "b", 1) : rv__store_iter(s, NULL, 0, NULL, 0);
            REQUIRE(it != NULL);
            rv_buf_t kb, vb;
            size_t n = 0;
            while (rv__store_iter_next(it, &kb, &vb)) {
                CHECK_MSG(n < nw && kb.len == 3 && memcmp(kb.data, want[n], 3) == 0,
                          "step %d pass %d item %zu: got %.*s", step, pass, n, (int)kb.len,
                          (const char *)kb.data);
                n++;
            }
            CHECK_INT(rv__store_iter_error(it), RV_OK);
            rv__store_iter_close(it);
            CHECK_MSG(n == nw, "step %d pass %d: %zu keys, model %zu", step, pass, n, nw);
        }
    }
    world_close(&w);
}

static void test_ttl(void) {
    rmrf(g_dir);
    world_t w;
    REQUIRE(world_open(&w, "memory:"));
    REQUIRE(make_ready(&w, 0, NULL) == RV_OK);
    fake_t f;
    rv__store_t *s = store_for(&w, &f, 0, 0, 1000, NULL);
    CHECK_INT(rv__store_put(s, "t", 1, "v", 1, 1500), RV_OK);
    CHECK(get_is(s, "t", "v"));
    s = store_for(&w, &f, 0, 1, 1499, NULL);
    CHECK(get_is(s, "t", "v"));
    s = store_for(&w, &f, 0, 2, 1200, NULL); /* time does not go back */
    CHECK_INT(rv__store_time(s), 1499);
    s = store_for(&w, &f, 0, -1, 999999, NULL); /* a tick: wall-clock time is not event time */
    CHECK_INT(rv__store_time(s), 1499);
    CHECK(get_is(s, "t", "v"));
    s = store_for(&w, &f, 0, 3, 1500, NULL);
    CHECK(get_is(s, "t", NULL));
    CHECK(!rv__store_exists(s, "t", 1));
    world_close(&w);
}

/* Deleting the local directory: the store is rebuilt from its changelog, offsets included;
 * revoked in the middle of a restore, it continues where it stopped. */
static void test_restore(void) {
    rmrf(g_dir);
    world_t w;
    REQUIRE(world_open(&w, "memory:"));
    REQUIRE(make_ready(&w, 0, NULL) == RV_OK);
    fake_t f;
    rv__store_t *s = store_for(&w, &f, 0, 0, 5, NULL);
    char k[32], v[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 300; i++) {
            snprintf(k, sizeof k, "key-%d", i);
            snprintf(v, sizeof v, "%d", i * 10 + round);
            CHECK_INT(rv__store_put(s, k, strlen(k), v, strlen(v), 0), RV_OK);
        }
        CHECK_INT(rv__store_del(s, "key-7", 5), RV_OK);
        CHECK_INT(checkpoint(&w, 100 + round), RV_OK);
    }
    rv__stores_destroy(w.ss);
    char dir[512];
    rv__store_dir(dir, sizeof dir, g_dir, "g", "in", "counts", 0);
    rmrf(dir);
    w.restore_batch = 50;
    REQUIRE(world_stores(&w));
    /* A few steps, then revoked in the middle. */
    REQUIRE(rv__stores_assign(w.ss, w.topic, 0, NULL) == RV_OK);
    for (int i = 0; i < 4; i++) {
        bool busy, ready;
        rv_topic_t *t;
        int32_t rp;
        CHECK_INT(rv__stores_restore(w.ss, &busy, &ready, &t, &rp, NULL), RV_OK);
    }
    CHECK(!rv__stores_ready(w.ss, w.topic, 0));
    int64_t part = atomic_load(&w.restored);
    CHECK(part > 0 && part < 903);
    rv__stores_revoke(w.ss, w.topic, 0);
    REQUIRE(make_ready(&w, 0, NULL) == RV_OK);
    /* The second restore read only what the first had not. */
    CHECK_INT(atomic_load(&w.restored), 903);
    bool replay = false;
    s = store_for(&w, &f, 0, 101, 5, &replay);
    REQUIRE(s != NULL);
    CHECK(replay); /* processed offset 102 came back with the changelog */
    s = store_for(&w, &f, 0, 102, 5, &replay);
    CHECK(!replay);
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        snprintf(v, sizeof v, "%d", i * 10 + 2);
        CHECK_MSG(get_is(s, k, i == 7 ? NULL : v), "%s", k);
    }
    world_close(&w);
}

/* Another process holds the RocksDB directory: a bounded wait, then RV_ERR_BUSY naming it; and a
 * lock released within the wait is taken. */
static void test_lock_wait(void) {
    rmrf(g_dir);
    char dir[512];
    rv__store_dir(dir, sizeof dir, g_dir, "g", "in", "counts", 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    REQUIRE(system(cmd) == 0);
    for (int round = 0; round < 2; round++) {
        int pipefd[2];
        REQUIRE(pipe(pipefd) == 0);
        char fd[16], ms[16];
        snprintf(fd, sizeof fd, "%d", pipefd[1]);
        snprintf(ms, sizeof ms, "%d", round == 0 ? 3000 : 400);
        char *argv[] = {"test_state_store", "hold", dir, ms, fd, NULL};
        fflush(stderr);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            execv("/proc/self/exe", argv);
            _exit(127);
        }
        char c = 0;
        CHECK(read(pipefd[0], &c, 1) == 1 && c == 'y');
        close(pipefd[0]);
        close(pipefd[1]);
        world_t w;
        REQUIRE(world_open(&w, "memory:"));
        w.lock_timeout_ms = round == 0 ? 600 : 5000;
        rv__stores_destroy(w.ss);
        REQUIRE(world_stores(&w));
        rv_error_t *err = NULL;
        int64_t t0 = rv_clock_mono_ms();
        rv_err_t e = make_ready(&w, 0, &err);
        int64_t took = rv_clock_mono_ms() - t0;
        if (round == 0) {
            CHECK_INT(e, RV_ERR_BUSY);
            CHECK(took >= 550 && took < 2500);
            CHECK(err && strstr(rv_error_message(err), dir) &&
                  strstr(rv_error_message(err), "state.lock.timeout.ms"));
        } else {
            CHECK_INT(e, RV_OK);
            CHECK(rv__stores_ready(w.ss, w.topic, 0));
        }
        rv_error_destroy(err);
        world_close(&w);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

/* The other process: opens the RocksDB directory, says so on the pipe, holds it `ms`. */
static int hold_main(const char *dir, int ms, int fd) {
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    char *e = NULL;
    rocksdb_t *db = rocksdb_open(o, dir, &e);
    char c = db ? 'y' : 'n';
    if (write(fd, &c, 1) != 1) {
        return 2;
    }
    usleep((useconds_t)ms * 1000);
    if (db) {
        rocksdb_close(db);
    }
    free(e);
    rocksdb_options_destroy(o);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "hold") == 0) {
        return hold_main(argv[2], atoi(argv[3]), atoi(argv[4]));
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/rv-test-state-store-%d", (int)getpid());
    RV_RUN(test_buffer_and_reopen);
    RV_RUN(test_iteration);
    RV_RUN(test_model);
    RV_RUN(test_ttl);
    RV_RUN(test_restore);
    RV_RUN(test_lock_wait);
    rmrf(g_dir);
    return rv_test_finish();
}
