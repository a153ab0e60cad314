/*
 * test_state_load.c: RocksDB is loaded when the first state store opens, not before.
 *
 * librivulet does not link RocksDB (src/state/rocks.c): mapping it costs a process about
 * 8.5 MiB of resident memory, which a stateless application never needs. This test (which must
 * not link RocksDB itself) checks, by reading /proc/self/maps, that:
 *   - the process starts without librocksdb;
 *   - a stateless application runs to the end without loading it;
 *   - a stateful one (a count per key in a store) loads it, and its counts are right;
 *   - a library that cannot be loaded, or that lacks a function rivulet calls, is refused with
 *     a message naming the library (and the function).
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/rivulet.h"
#include "rv_test.h"
#include "state/rocks.h"

enum { RECORDS = 200, KEYS = 5 };

/* Whether a mapping of this process names librocksdb. */
static bool rocksdb_mapped(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    if (!f) {
        return false;
    }
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        found = strstr(line, "librocksdb") != NULL;
    }
    fclose(f);
    return found;
}

static int64_t counts[KEYS];

static rv_err_t count(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)opaque;
    rv_state_t *st = rv_ctx_state(ctx);
    int64_t n = rv_state_get_int(st, "n", 0) + 1;
    rv_err_t e = rv_state_set_int(st, "n", n);
    int k = (int)rv_value_int(rv_value_get_cstr(v, "k"));
    if (e == RV_OK && k >= 0 && k < KEYS && n > counts[k]) {
        counts[k] = n;
    }
    return e;
}

/* A memory: application over RECORDS JSON records keyed k0..k4, stateful or not. */
static void run_app(const char *state_dir, bool stateful) {
    rv_conf_t *conf = rv_conf_new();
    CHECK_INT(rv_conf_set(conf, "state.dir", state_dir, NULL), RV_OK);
    CHECK_INT(rv_conf_set(conf, "auto.offset.reset", "earliest", NULL), RV_OK);
    rv_error_t *err = NULL;
    rv_app_opts_t ao = {.broker_url = "memory:", .group = "load", .conf = conf};
    rv_app_t *app = rv_app_new(&ao, &err);
    rv_conf_destroy(conf);
    CHECK_MSG(app != NULL, "rv_app_new: %s", rv_error_message(err));
    if (!app) {
        rv_error_destroy(err);
        return;
    }
    rv_topic_opts_t to = {.key_serde = "string", .value_serde = "json", .partitions = 1};
    rv_topic_t *in = rv_app_topic(app, "in", &to, &err);
    rv_topic_t *out = rv_app_topic(app, "out", &to, &err);
    CHECK(in && out);
    rv_broker_t *b = rv_app_broker(app);
    rv_err_t ce = rv_broker_create_topic(b, "in", 1, NULL, NULL);
    CHECK(ce == RV_OK || ce == RV_ERR_EXISTS);
    rv_producer_t *p = rv_producer_new(b, NULL, &err);
    CHECK(p != NULL);
    for (int i = 0; p && i < RECORDS; i++) {
        char key[8], value[32];
        snprintf(key, sizeof key, "k%d", i % KEYS);
        snprintf(value, sizeof value, "{\"k\":%d,\"i\":%d}", i % KEYS, i);
        rv_record_t r = {.topic = "in",
                         .partition = 0,
                         .key = key,
                         .key_len = strlen(key),
                         .value = value,
                         .value_len = strlen(value)};
        CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    }
    if (p) {
        CHECK_INT(rv_producer_flush(p, 10000, &err), RV_OK);
        rv_producer_close(p);
    }
    rv_df_t *df = rv_app_dataframe(app, in);
    if (stateful) {
        df = rv_df_update_state(df, "counts", count, NULL);
    }
    rv_df_to_topic(df, out);
    rv_run_opts_t ro = {.until_end = true, .timeout_ms = 30000};
    CHECK_MSG(rv_app_run(app, &ro, &err) == RV_OK, "run: %s", rv_error_message(err));
    rv_app_metrics_t m;
    rv_app_metrics(app, &m);
    CHECK_INT(m.records_in, RECORDS);
    CHECK_INT(m.records_out, RECORDS);
    rv_error_destroy(err);
    rv_app_destroy(app);
}

static void test_loaded_only_by_state(void) {
    char tmpl[] = "/tmp/rv-test-state-load-XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    if (!dir) {
        return;
    }
    CHECK_MSG(!rocksdb_mapped(), "librocksdb is mapped before any application ran");
    run_app(dir, false);
    CHECK_MSG(!rocksdb_mapped(), "a stateless application loaded librocksdb");
    run_app(dir, true);
    CHECK_MSG(rocksdb_mapped(), "a stateful application ran without loading librocksdb");
    for (int k = 0; k < KEYS; k++) {
        CHECK_INT(counts[k], RECORDS / KEYS);
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

static void test_refusals_name_the_library(void) {
    rv__rocks_t t;
    char why[512];
    CHECK(!rv__rocks_resolve("librocksdb-absent.so.0", &t, why, sizeof why));
    CHECK_MSG(strstr(why, "librocksdb-absent.so.0") != NULL, "why: %s", why);
    /* A library that loads but is not RocksDB: the first function missing is named. */
    CHECK(!rv__rocks_resolve("libm.so.6", &t, why, sizeof why));
    CHECK_MSG(strstr(why, "libm.so.6") && strstr(why, "no function rocksdb_open"), "why: %s", why);
    /* The process's own loader still works after those. */
    const char *w = NULL;
    CHECK(rv__rocks_load(&w));
}

int main(void) {
    RV_RUN(test_loaded_only_by_state);
    RV_RUN(test_refusals_name_the_library);
    return rv_test_finish();
}
