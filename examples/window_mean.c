/*
 * window_mean.c: a 1-second tumbling window per sensor, with the mean, the maximum, a count and a
 * custom aggregation (the spread, max - min) computed in one pass.
 *
 * Sensors write readings {"celsius": ...} keyed by sensor name to topic "readings", with event
 * times in the record timestamps. rv_df_window() groups them per key into windows [k*1000,
 * (k+1)*1000) ms, keeps the aggregates in the application's state store (RocksDB under
 * state.dir, with a changelog topic), and emits each window once when event time passes its end
 * plus the grace period: {"start", "end", "mean", "max", "n", "spread"} keyed by the sensor, with
 * timestamp end - 1. One reading arrives after its window closed: the late-record callback says
 * so. The example reads the windows back, prints them and exits 0 when each is what the readings
 * give. It makes its own broker and state directory (or takes a broker URL as argv[1]).
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <rivulet/rivulet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, rv_error_t *err) {
    fprintf(stderr, "%s: %s\n", what, rv_error_message(err));
    rv_error_destroy(err);
    return 1;
}

/* ---- a custom aggregation: the spread of the readings (max - min) --------------------------- */

typedef struct spread_s {
    double lo, hi;
    int64_t n;
} spread_t;

static void spread_init(void *acc, void *opaque) {
    (void)opaque;
    *(spread_t *)acc = (spread_t){0, 0, 0};
}

static rv_err_t spread_add(void *acc, const rv_value_t *in, int64_t ts, int64_t seq, rv_ctx_t *ctx,
                           void *opaque) {
    (void)ts, (void)seq, (void)opaque;
    spread_t *s = acc;
    rv_type_t t = in ? rv_value_type(in) : RV_TYPE_NULL;
    if (t != RV_TYPE_INT && t != RV_TYPE_DOUBLE) {
        rv_ctx_fail(ctx, "spread: celsius is %s, not a number", rv_type_name(t));
        return RV_ERR_INVALID_ARG;
    }
    double x = rv_value_double(in);
    s->lo = s->n == 0 || x < s->lo ? x : s->lo;
    s->hi = s->n == 0 || x > s->hi ? x : s->hi;
    s->n++;
    return RV_OK;
}

static void spread_merge(void *acc, const void *other, void *opaque) {
    (void)opaque;
    spread_t *s = acc;
    const spread_t *o = other;
    if (o->n) {
        s->lo = s->n == 0 || o->lo < s->lo ? o->lo : s->lo;
        s->hi = s->n == 0 || o->hi > s->hi ? o->hi : s->hi;
        s->n += o->n;
    }
}

static rv_value_t *spread_result(const void *acc, rv_arena_t *arena, void *opaque) {
    (void)opaque;
    const spread_t *s = acc;
    return s->n ? rv_value_new_double(arena, s->hi - s->lo) : rv_value_new_null(arena);
}

/* The accumulator as bytes in the state store (this example keeps it as the struct's bytes). */
static rv_err_t spread_serialise(const void *acc, rv_strbuf_t *out, void *opaque) {
    (void)opaque;
    return rv_strbuf_append(out, acc, sizeof(spread_t));
}

static rv_err_t spread_deserialise(void *acc, const void *data, size_t len, void *opaque) {
    (void)opaque;
    if (len != sizeof(spread_t)) {
        return RV_ERR_CORRUPT;
    }
    memcpy(acc, data, len);
    return RV_OK;
}

static const rv_agg_ops_t spread_ops = {.version = 1,
                                        .acc_size = sizeof(spread_t),
                                        .init = spread_init,
                                        .add = spread_add,
                                        .merge = spread_merge,
                                        .result = spread_result,
                                        .serialise = spread_serialise,
                                        .deserialise = spread_deserialise};

/* ---- input ------------------------------------------------------------------------------------
 */

typedef struct reading_s {
    const char *sensor;
    int64_t ts;
    double celsius;
} reading_t;

/* Two sensors; the reading at 1150 for "oven" is out of order but within the 200 ms grace; the
 * one at 900 arrives after event time reached 2250, so its window [0, 1000) has closed. */
static const reading_t readings[] = {
    {"oven", 100, 180.0},  {"fridge", 120, 4.0},  {"oven", 600, 184.0},  {"fridge", 700, 5.0},
    {"oven", 1300, 190.0}, {"oven", 1150, 188.0}, {"fridge", 1400, 3.5}, {"oven", 1900, 192.0},
    {"oven", 2250, 195.0}, {"oven", 900, 999.0},  {"fridge", 2600, 4.5}, {"oven", 5000, 200.0},
    {"fridge", 5000, 4.0}};

static int produce(rv_broker_t *broker) {
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(broker, NULL, &err);
    if (!p) {
        return fail("producer", err);
    }
    for (size_t i = 0; i < sizeof readings / sizeof readings[0]; i++) {
        char value[64];
        snprintf(value, sizeof value, "{\"celsius\":%.1f}", readings[i].celsius);
        rv_record_t rec = {.topic = "readings",
                           .partition = 0, /* one partition: one watermark for both sensors */
                           .timestamp_ms = readings[i].ts,
                           .key = readings[i].sensor,
                           .key_len = strlen(readings[i].sensor),
                           .value = value,
                           .value_len = strlen(value)};
        rv_producer_send(p, &rec, NULL);
    }
    rv_err_t e = rv_producer_flush(p, 10000, &err);
    rv_producer_close(p);
    return e == RV_OK ? 0 : fail("flush", err);
}

static int late_records;

static void on_late(void *opaque, rv_ctx_t *ctx, const rv_value_t *key, int64_t ts, int64_t start,
                    int64_t end) {
    (void)opaque, (void)ctx;
    size_t len = 0;
    const char *k = key ? rv_value_str(key, &len) : "";
    printf("late: %.*s at %lld missed window [%lld, %lld)\n", (int)len, k, (long long)ts,
           (long long)start, (long long)end);
    late_records++;
}

/* The windows the readings give (event time reached 5000: every window before [5000, 6000) is
 * closed, as 5000 - 200 >= 2000 + 1000). */
static const char *const expected[] = {
    "fridge\t{\"start\":0,\"end\":1000,\"mean\":4.5,\"max\":5.0,\"n\":2,\"spread\":1.0}\t999",
    "fridge\t{\"start\":1000,\"end\":2000,\"mean\":3.5,\"max\":3.5,\"n\":1,\"spread\":0.0}\t1999",
    "fridge\t{\"start\":2000,\"end\":3000,\"mean\":4.5,\"max\":4.5,\"n\":1,\"spread\":0.0}\t2999",
    "oven\t{\"start\":0,\"end\":1000,\"mean\":182.0,\"max\":184.0,\"n\":2,\"spread\":4.0}\t999",
    "oven\t{\"start\":1000,\"end\":2000,\"mean\":190.0,\"max\":192.0,\"n\":3,\"spread\":4.0}\t1999",
    "oven\t{\"start\":2000,\"end\":3000,\"mean\":195.0,\"max\":195.0,\"n\":1,\"spread\":0.0}\t2999",
};

/* Reads the windows back; returns how many were as expected, or -1. */
static int check_output(rv_broker_t *broker) {
    rv_consumer_t *c = rv_consumer_new(broker, NULL, NULL);
    rv_topic_partition_t tp = {"sensor-means", 0, RV_OFFSET_BEGINNING};
    if (!c || rv_consumer_assign(c, &tp, 1, NULL) != RV_OK) {
        rv_consumer_close(c);
        return -1;
    }
    size_t want = sizeof expected / sizeof expected[0];
    int good = 0, seen = 0;
    int64_t until = rv_clock_mono_ms() + 5000;
    while ((size_t)seen < want && rv_clock_mono_ms() < until) {
        const rv_record_t *recs;
        size_t n = 0;
        if (rv_consumer_poll(c, &recs, 64, &n, 100, NULL) != RV_OK) {
            break;
        }
        for (size_t i = 0; i < n; i++, seen++) {
            char line[256];
            snprintf(line, sizeof line, "%.*s\t%.*s\t%lld", (int)recs[i].key_len,
                     (const char *)recs[i].key, (int)recs[i].value_len, (const char *)recs[i].value,
                     (long long)recs[i].timestamp_ms);
            bool ok = false;
            for (size_t k = 0; k < want && !ok; k++) {
                ok = strcmp(line, expected[k]) == 0;
            }
            good += ok;
            printf("  %s%s\n", line, ok ? "" : "   <- unexpected");
        }
    }
    rv_consumer_close(c);
    return seen == (int)want ? good : -1;
}

int main(int argc, char **argv) {
    char dir[] = "/tmp/rivulet-example-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char url[600], state[600];
    snprintf(url, sizeof url, "%s", argc > 1 ? argv[1] : "");
    if (argc == 1) {
        snprintf(url, sizeof url, "local:%s/log", dir);
    }
    snprintf(state, sizeof state, "%s/state", dir);
    rv_error_t *err = NULL;
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "auto.offset.reset", "earliest", NULL);
    rv_conf_set(conf, "state.dir", state, NULL);
    rv_app_opts_t opts = {.broker_url = url, .group = "window-example", .conf = conf};
    rv_app_t *app = rv_app_new(&opts, &err);
    rv_conf_destroy(conf);
    if (!app) {
        return fail("rv_app_new", err);
    }
    rv_topic_opts_t topic_opts = {.key_serde = "string", .value_serde = "json", .partitions = 1};
    rv_topic_t *in = rv_app_topic(app, "readings", &topic_opts, &err);
    rv_topic_t *out = in ? rv_app_topic(app, "sensor-means", &topic_opts, &err) : NULL;
    if (!out) {
        rv_app_destroy(app);
        return fail("rv_app_topic", err);
    }
    if (rv_broker_create_topic(rv_app_broker(app), "readings", 1, NULL, &err) != RV_OK ||
        produce(rv_app_broker(app)) != 0) {
        rv_app_destroy(app);
        return fail("readings", err);
    }

    rv_window_opts_t window = {.name = "sensor-means",
                               .type = RV_WINDOW_TUMBLING,
                               .size = 1000,
                               .grace_ms = 200,
                               .emit = RV_EMIT_FINAL,
                               .on_late = on_late};
    rv_agg_t aggs[] = {
        {.name = "mean", .kind = RV_AGG_MEAN, .field = "celsius"},
        {.name = "max", .kind = RV_AGG_MAX, .field = "celsius"},
        {.name = "n", .kind = RV_AGG_COUNT},
        {.name = "spread", .kind = RV_AGG_CUSTOM, .field = "celsius", .ops = &spread_ops}};
    rv_df_t *df = rv_app_dataframe(app, in);
    df = rv_df_window(df, &window, aggs, sizeof aggs / sizeof aggs[0]);
    df = rv_df_to_topic(df, out);

    rv_run_opts_t run = {.until_end = true, .timeout_ms = 30000, .handle_signals = true};
    if (rv_app_run(app, &run, &err) != RV_OK) {
        rv_app_destroy(app);
        return fail("rv_app_run", err);
    }
    printf("windows (key, value, timestamp):\n");
    int good = check_output(rv_app_broker(app));
    rv_app_destroy(app);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    int want = (int)(sizeof expected / sizeof expected[0]);
    printf("%d of %d windows as expected, %d late reading(s)\n", good, want, late_records);
    return good == want && late_records == 1 ? 0 : 1;
}
