/*
 * stateful_count.c: per-key state that survives restarts: counting page views per user.
 *
 * Writes page views (JSON values keyed by user) to topic "views", then runs an application
 * whose update_state adds to each view the number of views of its user so far and the total
 * time spent, kept in the state store "per-user", and whose filter_state passes on only a
 * user's first view of each page (a per-key set of seen pages, also in state). Results go to
 * topic "counted". The application runs twice, as a service restarted between two batches of
 * input would: the second run continues the counts from the state the first left in state.dir
 * (a RocksDB store per partition, backed by a compacted changelog topic). The example then reads
 * "counted" back, prints it, and exits 0 when the last count of every user is right. It makes
 * its own directories (or takes a broker URL as argv[1], such as "memory:") and removes them.
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <rivulet/rivulet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USERS 4
#define VIEWS 30 /* per batch */

static int fail(const char *what, rv_error_t *err) {
    fprintf(stderr, "%s: %s\n", what, rv_error_message(err));
    rv_error_destroy(err);
    return 1;
}

/* update_state: counts the user's views and sums their seconds; writes both into the view. */
static rv_err_t count_views(rv_ctx_t *ctx, rv_value_t *view, void *opaque) {
    (void)opaque;
    rv_state_t *st = rv_ctx_state(ctx);
    int64_t views = rv_state_get_int(st, "views", 0) + 1;
    int64_t secs =
        rv_state_get_int(st, "seconds", 0) + rv_value_int(rv_value_get_cstr(view, "seconds"));
    rv_err_t e = rv_state_set_int(st, "views", views);
    if (e == RV_OK) {
        e = rv_state_set_int(st, "seconds", secs);
    }
    if (e != RV_OK) {
        rv_ctx_fail(ctx, "cannot keep the counts: %s", rv_err_str(e));
        return e;
    }
    rv_arena_t *a = rv_ctx_arena(ctx);
    rv_value_set(a, view, "views", 5, rv_value_new_int(a, views));
    rv_value_set(a, view, "seconds_total", 13, rv_value_new_int(a, secs));
    return RV_OK;
}

/* filter_state: keeps a view only when its user has not seen that page before. */
static int first_visit(rv_ctx_t *ctx, const rv_value_t *view, void *opaque) {
    (void)opaque;
    rv_state_t *st = rv_ctx_state(ctx);
    size_t len = 0;
    const char *page = rv_value_str(rv_value_get_cstr(view, "page"), &len);
    char name[64];
    snprintf(name, sizeof name, "seen:%.*s", (int)len, page ? page : "");
    if (rv_state_exists(st, name)) {
        return 0;
    }
    rv_value_t *yes = rv_value_new_bool(rv_ctx_arena(ctx), true);
    return rv_state_set(st, name, yes) == RV_OK ? 1 : -1;
}

static int produce_views(rv_broker_t *broker, int batch) {
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(broker, NULL, &err);
    if (!p) {
        return fail("producer", err);
    }
    for (int i = 0; i < VIEWS; i++) {
        char key[16], value[128];
        snprintf(key, sizeof key, "user-%d", i % USERS);
        snprintf(value, sizeof value, "{\"page\":\"/p%d\",\"seconds\":%d}", (i + batch) % 6,
                 1 + i % 5);
        rv_record_t r = {.topic = "views",
                         .partition = RV_PARTITION_ANY,
                         .key = key,
                         .key_len = strlen(key),
                         .value = value,
                         .value_len = strlen(value)};
        rv_err_t e = rv_producer_send(p, &r, NULL);
        if (e != RV_OK) {
            rv_producer_close(p);
            fprintf(stderr, "send: %s\n", rv_err_str(e));
            return 1;
        }
    }
    rv_err_t e = rv_producer_flush(p, -1, &err);
    rv_producer_close(p);
    return e == RV_OK ? 0 : fail("flush", err);
}

/* One run of the application on its state directory, until the input is read to the end. */
static int run_once(const char *url, const char *state_dir, rv_app_t *shared, rv_app_t **kept) {
    rv_error_t *err = NULL;
    rv_app_t *app = shared;
    if (!app) {
        rv_conf_t *conf = rv_conf_new();
        rv_conf_set(conf, "state.dir", state_dir, NULL);
        rv_conf_set(conf, "auto.offset.reset", "earliest", NULL);
        rv_app_opts_t ao = {.broker_url = url, .group = "view-counter", .conf = conf};
        app = rv_app_new(&ao, &err);
        rv_conf_destroy(conf);
        if (!app) {
            return fail("rv_app_new", err);
        }
        rv_topic_opts_t to = {.key_serde = "string", .partitions = 2};
        rv_df_t *df = rv_app_dataframe(app, rv_app_topic(app, "views", &to, NULL));
        df = rv_df_update_state(df, "per-user", count_views, NULL);
        df = rv_df_filter_state(df, "per-user", first_visit, NULL);
        rv_df_to_topic(df, rv_app_topic(app, "counted", &to, NULL));
    }
    rv_run_opts_t ro = {.until_end = true, .timeout_ms = 30000};
    rv_err_t e = rv_app_run(app, &ro, &err);
    rv_app_metrics_t m;
    rv_app_metrics(app, &m);
    printf("run: %lld views in, %lld first visits out, %lld stores (%lld bytes)\n",
           (long long)m.records_in, (long long)m.records_out, (long long)m.state_stores,
           (long long)m.state_bytes);
    if (kept) {
        *kept = app;
    } else if (app != shared) {
        rv_app_destroy(app);
    }
    return e == RV_OK ? 0 : fail("rv_app_run", err);
}

int main(int argc, char **argv) {
    char tmpl[] = "/tmp/rivulet-stateful-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        perror("mkdtemp");
        return 1;
    }
    char url[256], state_dir[256];
    snprintf(url, sizeof url, "%s", argc > 1 ? argv[1] : "");
    if (!*url) {
        snprintf(url, sizeof url, "local:%s/log", dir);
    }
    snprintf(state_dir, sizeof state_dir, "%s/state", dir);
    bool memory = strcmp(url, "memory:") == 0;
    rv_error_t *err = NULL;
    rv_app_t *app = NULL; /* memory: the broker lives in the application, so keep it */
    rv_broker_t *broker = NULL;
    int rc = 0;
    if (memory) {
        rc = run_once(url, state_dir, NULL, &app); /* declares the topics, reads nothing */
        broker = rv_app_broker(app);
    } else if (!(broker = rv_broker_open(url, NULL, &err))) {
        return fail("open", err);
    }
    rv_broker_create_topic(broker, "views", 2, NULL, NULL);
    rc = rc || produce_views(broker, 0) || run_once(url, state_dir, app, NULL);
    rc = rc || produce_views(broker, 1) || run_once(url, state_dir, app, NULL);
    /* Read the results back: the last view of each user carries its count of both batches. */
    int64_t last[USERS] = {0};
    rv_consumer_t *c = rc ? NULL : rv_consumer_new(broker, NULL, &err);
    rv_topic_partition_t tps[2] = {{"counted", 0, RV_OFFSET_BEGINNING},
                                   {"counted", 1, RV_OFFSET_BEGINNING}};
    if (c && rv_consumer_assign(c, tps, 2, &err) == RV_OK) {
        rv_arena_t *a = rv_arena_new(0);
        for (int idle = 0; idle < 5;) {
            const rv_record_t *recs;
            size_t n = 0;
            if (rv_consumer_poll(c, &recs, 256, &n, 100, NULL) != RV_OK || n == 0) {
                idle++;
                continue;
            }
            for (size_t i = 0; i < n; i++) {
                rv_value_t *v = NULL;
                rv_arena_reset(a);
                if (rv_json_parse(a, recs[i].value, recs[i].value_len, NULL, &v, NULL, NULL) ==
                    RV_OK) {
                    printf("%.*s %.*s\n", (int)recs[i].key_len, (const char *)recs[i].key,
                           (int)recs[i].value_len, (const char *)recs[i].value);
                    int u = atoi((const char *)recs[i].key + 5);
                    int64_t views = rv_value_int(rv_value_get_cstr(v, "views"));
                    if (u >= 0 && u < USERS && views > last[u]) {
                        last[u] = views;
                    }
                }
            }
        }
        rv_arena_destroy(a);
    }
    rv_consumer_close(c);
    /* The reference: replay the same views here, in each user's order. */
    for (int u = 0; u < USERS && rc == 0; u++) {
        int64_t views = 0, want = 0;
        bool seen[6] = {false};
        for (int batch = 0; batch < 2; batch++) {
            for (int i = u; i < VIEWS; i += USERS) {
                views++;
                int page = (i + batch) % 6;
                if (!seen[page]) {
                    seen[page] = true;
                    want = views; /* the count carried by the user's last output */
                }
            }
        }
        if (last[u] != want) {
            fprintf(stderr, "user-%d: last count %lld, want %lld\n", u, (long long)last[u],
                    (long long)want);
            rc = 1;
        }
    }
    if (memory) {
        rv_app_destroy(app);
    } else {
        rv_broker_close(broker);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        rc = 1;
    }
    printf("%s\n", rc == 0 ? "counts continued across the restart" : "FAILED");
    return rc;
}
