/*
 * dead_letter.c: the dead-letter error policy.
 *
 * Payments arrive in topic "payments"; a few are broken: one is not JSON at all and two have a
 * negative amount, which the validating function refuses with rv_ctx_fail(). With
 * processing.error.policy=dead-letter the application does not stop on them: it sends each
 * failed record, exactly as it was read (key, value bytes, headers, timestamp), to the topic
 * "payments--dead-letter" (dead.letter.topic; the default would be "<group>--dead-letter") with
 * the error in headers (rv.error.message, rv.error.code, rv.source.topic, rv.source.partition,
 * rv.source.offset), counts it, and goes on. The example prints the dead letters and the
 * metrics and exits 0 when the good payments reached "payments-ok" and the bad ones the
 * dead-letter topic. It makes its own broker directory (or takes a URL as argv[1]).
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <rivulet/rivulet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const payments[] = {
    "{\"id\":1,\"amount\":12.5}", "{\"id\":2,\"amount\":-3}",   "{\"id\":3,\"amount\":7}",
    "{\"id\":4,\"amount\"",       "{\"id\":5,\"amount\":99.9}", "{\"id\":6,\"amount\":-0.5}",
    "{\"id\":7,\"amount\":1}",
};
#define PAYMENTS (sizeof payments / sizeof payments[0])
#define BAD 3

static int fail(const char *what, rv_error_t *err) {
    fprintf(stderr, "%s: %s\n", what, rv_error_message(err));
    rv_error_destroy(err);
    return 1;
}

/* Refuses payments whose amount is not a positive number, saying why. */
static int valid_payment(rv_ctx_t *ctx, const rv_value_t *value, void *opaque) {
    (void)opaque;
    double amount = rv_value_double(rv_value_get_cstr(value, "amount"));
    if (amount <= 0) {
        rv_ctx_fail(ctx, "payment %lld has amount %g; amounts must be positive",
                    (long long)rv_value_int(rv_value_get_cstr(value, "id")), amount);
        return -1;
    }
    return 1;
}

/* Reads every record of partition 0 of `topic`, printing dead letters with their headers. */
static int read_back(rv_broker_t *broker, const char *topic, bool show_headers) {
    rv_consumer_t *c = rv_consumer_new(broker, NULL, NULL);
    rv_topic_partition_t tp = {topic, 0, RV_OFFSET_BEGINNING};
    int got = 0;
    if (c && rv_consumer_assign(c, &tp, 1, NULL) == RV_OK) {
        int64_t until = rv_clock_mono_ms() + 1000;
        while (rv_clock_mono_ms() < until) {
            const rv_record_t *recs;
            size_t n = 0;
            if (rv_consumer_poll(c, &recs, 64, &n, 100, NULL) != RV_OK) {
                break;
            }
            for (size_t i = 0; i < n; i++, got++) {
                printf("  %s@%lld: %.*s\n", topic, (long long)recs[i].offset,
                       (int)recs[i].value_len, (const char *)recs[i].value);
                for (size_t h = 0; show_headers && h < recs[i].header_count; h++) {
                    printf("      %s: %.*s\n", recs[i].headers[h].name,
                           (int)recs[i].headers[h].value_len,
                           (const char *)recs[i].headers[h].value);
                }
            }
        }
    }
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
    rv_error_t *err = NULL;
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "auto.offset.reset", "earliest", NULL);
    rv_conf_set(conf, "processing.error.policy", "dead-letter", NULL);
    rv_conf_set(conf, "dead.letter.topic", "payments--dead-letter", NULL);
    rv_app_opts_t opts = {.broker_url = url, .group = "payments-app", .conf = conf};
    rv_app_t *app = rv_app_new(&opts, &err);
    rv_conf_destroy(conf);
    if (!app) {
        return fail("rv_app_new", err);
    }
    rv_broker_t *broker = rv_app_broker(app);
    if (rv_broker_create_topic(broker, "payments", 1, NULL, &err) != RV_OK) {
        rv_app_destroy(app);
        return fail("create topic", err);
    }
    rv_producer_t *p = rv_producer_new(broker, NULL, &err);
    if (!p) {
        rv_app_destroy(app);
        return fail("producer", err);
    }
    rv_header_t source = {"source", "till-3", 6};
    for (size_t i = 0; i < PAYMENTS; i++) {
        rv_record_t rec = {.topic = "payments",
                           .partition = 0,
                           .value = payments[i],
                           .value_len = strlen(payments[i]),
                           .headers = &source,
                           .header_count = 1};
        rv_producer_send(p, &rec, NULL);
    }
    rv_producer_flush(p, 10000, NULL);
    rv_producer_close(p);

    rv_df_t *df = rv_app_dataframe(app, rv_app_topic(app, "payments", NULL, NULL));
    df = rv_df_filter(df, valid_payment, NULL);
    df = rv_df_to_topic(df, rv_app_topic(app, "payments-ok", NULL, NULL));
    rv_run_opts_t run = {.until_end = true, .timeout_ms = 30000, .handle_signals = true};
    if (rv_app_run(app, &run, &err) != RV_OK) {
        rv_app_destroy(app);
        return fail("rv_app_run", err);
    }
    printf("accepted payments:\n");
    int ok = read_back(broker, "payments-ok", false);
    printf("dead letters:\n");
    int dead = read_back(broker, "payments--dead-letter", true);
    rv_app_metrics_t m;
    rv_app_metrics(app, &m);
    printf("%lld in, %lld errors, %lld dead-lettered, %lld out (dead letters included)\n",
           (long long)m.records_in, (long long)m.errors, (long long)m.dead_lettered,
           (long long)m.records_out);
    rv_app_destroy(app);
    if (argc == 1) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", dir);
        }
    }
    return ok == (int)PAYMENTS - BAD && dead == BAD && m.dead_lettered == BAD ? 0 : 1;
}
