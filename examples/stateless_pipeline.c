/*
 * stateless_pipeline.c: an application with a stateless dataframe on the embedded log.
 *
 * Writes 40 temperature readings (JSON values keyed by sensor) to topic "readings", then runs an
 * application that keeps the hot ones with a field comparison (no user code), adds a field
 * computed by a C function, removes a field, marks each record with a header and writes the
 * result to topic "alerts". The run stops by itself once every input partition is read to its
 * end; the example then reads "alerts" back, prints it and the application's metrics, and exits
 * 0 when exactly the expected alerts arrived. It makes its own broker directory (or takes a URL
 * as argv[1], such as "memory:" or "kafka://host:9092") and removes it.
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <rivulet/rivulet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READINGS 40

static int fail(const char *what, rv_error_t *err) {
    fprintf(stderr, "%s: %s\n", what, rv_error_message(err));
    rv_error_destroy(err);
    return 1;
}

/* The temperature of reading i: every fourth one is above 30 degrees. */
static double temp_of(int i) {
    return i % 4 == 0 ? 31.0 + i * 0.5 : 20.0 + (i % 7);
}

/* set_field: the temperature in Fahrenheit, computed from the record's "temp_c". */
static rv_value_t *fahrenheit(rv_ctx_t *ctx, const rv_value_t *value, void *opaque) {
    (void)opaque;
    const rv_value_t *c = rv_value_get_cstr(value, "temp_c");
    if (rv_value_type(c) != RV_TYPE_DOUBLE && rv_value_type(c) != RV_TYPE_INT) {
        rv_ctx_fail(ctx, "temp_c is %s, not a number", rv_type_name(rv_value_type(c)));
        return NULL;
    }
    return rv_value_new_double(rv_ctx_arena(ctx), rv_value_double(c) * 9.0 / 5.0 + 32.0);
}

/* set_headers: every alert says where it came from. */
static rv_value_t *alert_headers(rv_ctx_t *ctx, const rv_value_t *value, void *opaque) {
    (void)value;
    (void)opaque;
    rv_arena_t *a = rv_ctx_arena(ctx);
    rv_value_t *h = rv_value_new_object(a, 1);
    rv_value_set(a, h, "origin", 6, rv_value_new_string(a, "stateless_pipeline", 18));
    return h;
}

static int produce_readings(rv_broker_t *broker) {
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(broker, NULL, &err);
    if (!p) {
        return fail("producer", err);
    }
    for (int i = 0; i < READINGS; i++) {
        char key[16], value[128];
        snprintf(key, sizeof key, "sensor-%d", i % 5);
        snprintf(value, sizeof value, "{\"seq\":%d,\"temp_c\":%.1f,\"unit\":\"C\"}", i, temp_of(i));
        rv_record_t rec = {.topic = "readings",
                           .partition = RV_PARTITION_ANY,
                           .key = key,
                           .key_len = strlen(key),
                           .value = value,
                           .value_len = strlen(value)};
        if (rv_producer_send(p, &rec, NULL) != RV_OK) {
            rv_producer_close(p);
            fprintf(stderr, "send failed\n");
            return 1;
        }
    }
    rv_err_t e = rv_producer_flush(p, 10000, &err);
    rv_producer_close(p);
    return e == RV_OK ? 0 : fail("flush", err);
}

/* Reads topic "alerts" from the beginning (every partition, no group) and prints it. */
static int read_alerts(rv_broker_t *broker) {
    rv_error_t *err = NULL;
    rv_consumer_t *c = rv_consumer_new(broker, NULL, &err);
    if (!c) {
        return -fail("consumer", err);
    }
    rv_topic_partition_t tps[] = {{"alerts", 0, RV_OFFSET_BEGINNING},
                                  {"alerts", 1, RV_OFFSET_BEGINNING}};
    int got = 0;
    if (rv_consumer_assign(c, tps, 2, &err) == RV_OK) {
        int64_t until = rv_clock_mono_ms() + 3000;
        while (got < READINGS / 4 && rv_clock_mono_ms() < until) {
            const rv_record_t *recs;
            size_t n = 0;
            if (rv_consumer_poll(c, &recs, 64, &n, 100, &err) != RV_OK) {
                break;
            }
            for (size_t i = 0; i < n; i++, got++) {
                printf("  alert %.*s: %.*s (header %s=%.*s)\n", (int)recs[i].key_len,
                       (const char *)recs[i].key, (int)recs[i].value_len,
                       (const char *)recs[i].value,
                       recs[i].header_count ? recs[i].headers[0].name : "-",
                       recs[i].header_count ? (int)recs[i].headers[0].value_len : 0,
                       recs[i].header_count ? (const char *)recs[i].headers[0].value : "");
            }
        }
    }
    rv_error_destroy(err);
    rv_consumer_close(c);
    return got;
}

int main(int argc, char **argv) {
    char dir[] = "/tmp/rivulet-example-XXXXXX";
    char url[600];
    if (argc > 1) {
        snprintf(url, sizeof url, "%s", argv[1]);
    } else if (mkdtemp(dir)) {
        snprintf(url, sizeof url, "local:%s", dir);
    } else {
        perror("mkdtemp");
        return 1;
    }

    /* The application: its broker, consumer group and checkpoint settings. */
    rv_error_t *err = NULL;
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "auto.offset.reset", "earliest", NULL);
    rv_conf_set(conf, "commit.interval.ms", "1000", NULL);
    rv_app_opts_t opts = {.broker_url = url, .group = "stateless-example", .conf = conf};
    rv_app_t *app = rv_app_new(&opts, &err);
    rv_conf_destroy(conf);
    if (!app) {
        return fail("rv_app_new", err);
    }

    /* Topics with their serialisers; the application creates them when missing. */
    rv_topic_opts_t in_opts = {.key_serde = "string", .value_serde = "json", .partitions = 2};
    rv_topic_t *readings = rv_app_topic(app, "readings", &in_opts, &err);
    rv_topic_t *alerts = readings ? rv_app_topic(app, "alerts", &in_opts, &err) : NULL;
    if (!alerts) {
        rv_app_destroy(app);
        return fail("rv_app_topic", err);
    }
    /* The input must exist before it is written; the run would create it otherwise. */
    rv_broker_create_topic(rv_app_broker(app), "readings", 2, NULL, NULL);
    if (produce_readings(rv_app_broker(app)) != 0) {
        rv_app_destroy(app);
        return 1;
    }

    /* The pipeline: readings above 30 C become alerts in Fahrenheit, without their unit. */
    rv_arena_t *arena = rv_arena_new(0);
    rv_value_t *limit = rv_value_new_double(arena, 30.0);
    const char *drop[] = {"unit"};
    rv_df_t *df = rv_app_dataframe(app, readings);
    df = rv_df_filter_field(df, "temp_c", RV_CMP_GT, limit);
    df = rv_df_set_field(df, "temp_f", fahrenheit, NULL);
    df = rv_df_drop(df, drop, 1);
    df = rv_df_set_headers(df, alert_headers, NULL);
    df = rv_df_to_topic(df, alerts);
    rv_arena_destroy(arena); /* constants were copied when the graph was built */

    rv_run_opts_t run = {.until_end = true, .timeout_ms = 30000, .handle_signals = true};
    rv_err_t e = rv_app_run(app, &run, &err);
    if (e != RV_OK) {
        rv_app_destroy(app);
        return fail("rv_app_run", err);
    }
    rv_app_metrics_t m;
    rv_app_metrics(app, &m);
    printf("application metrics: %lld in, %lld out, %lld filtered, %lld errors, %lld "
           "checkpoints\n",
           (long long)m.records_in, (long long)m.records_out, (long long)m.records_filtered,
           (long long)m.errors, (long long)m.checkpoints);
    int got = read_alerts(rv_app_broker(app));
    rv_app_destroy(app);
    if (argc == 1) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", dir);
        }
    }
    bool ok = got == READINGS / 4 && m.records_in == READINGS && m.records_out == READINGS / 4 &&
              m.records_filtered == READINGS - READINGS / 4 && m.errors == 0;
    printf("%s: %d alerts\n", ok ? "ok" : "unexpected", got);
    return ok ? 0 : 1;
}
