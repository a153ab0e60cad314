/*
 * group_by.c: re-keying a stream through a repartition topic.
 *
 * Orders arrive in topic "orders" keyed by order id, so one customer's orders are spread over
 * every partition. rv_df_group_by() re-keys them by the field "customer": the application writes
 * each order to its repartition topic ("<group>--repartition--orders--by-customer", created with
 * the source's partition count) under the new key, and the dataframe it returns continues from
 * there, where every order of a customer is on one partition and rv_ctx_key() is the customer.
 * The continuation adds a field and writes "orders-by-customer". The example reads the result
 * back, checks that each customer's orders share one partition and prints them; it exits 0 when
 * every order arrived re-keyed. It makes its own broker directory (or takes a URL as argv[1]).
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <rivulet/rivulet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORDERS 24
#define CUSTOMERS 4

static int fail(const char *what, rv_error_t *err) {
    fprintf(stderr, "%s: %s\n", what, rv_error_message(err));
    rv_error_destroy(err);
    return 1;
}

/* After the repartition the key is the customer: keep it in the value too. */
static rv_err_t add_customer_key(rv_ctx_t *ctx, rv_value_t *value, void *opaque) {
    (void)opaque;
    rv_arena_t *a = rv_ctx_arena(ctx);
    return rv_value_set(a, value, "grouped_by", 10, rv_value_copy(a, rv_ctx_key(ctx)));
}

static int produce_orders(rv_broker_t *broker) {
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(broker, NULL, &err);
    if (!p) {
        return fail("producer", err);
    }
    for (int i = 0; i < ORDERS; i++) {
        char key[16], value[96];
        snprintf(key, sizeof key, "order-%d", i);
        snprintf(value, sizeof value, "{\"customer\":\"c%d\",\"amount\":%d.5}", i % CUSTOMERS,
                 10 + i);
        rv_record_t rec = {.topic = "orders",
                           .partition = RV_PARTITION_ANY,
                           .key = key,
                           .key_len = strlen(key),
                           .value = value,
                           .value_len = strlen(value)};
        rv_producer_send(p, &rec, NULL);
    }
    rv_err_t e = rv_producer_flush(p, 10000, &err);
    rv_producer_close(p);
    return e == RV_OK ? 0 : fail("flush", err);
}

/* Reads the output; returns how many records came with the right key, or -1. */
static int check_output(rv_broker_t *broker) {
    int partition_of[CUSTOMERS] = {-1, -1, -1, -1};
    rv_consumer_t *c = rv_consumer_new(broker, NULL, NULL);
    rv_topic_partition_t tps[3];
    for (int i = 0; i < 3; i++) {
        tps[i] = (rv_topic_partition_t){"orders-by-customer", i, RV_OFFSET_BEGINNING};
    }
    int good = 0, seen = 0;
    if (!c || rv_consumer_assign(c, tps, 3, NULL) != RV_OK) {
        rv_consumer_close(c);
        return -1;
    }
    int64_t until = rv_clock_mono_ms() + 5000;
    while (seen < ORDERS && rv_clock_mono_ms() < until) {
        const rv_record_t *recs;
        size_t n = 0;
        if (rv_consumer_poll(c, &recs, 64, &n, 100, NULL) != RV_OK) {
            break;
        }
        for (size_t i = 0; i < n; i++, seen++) {
            int customer = -1;
            if (recs[i].key_len == 2 && ((const char *)recs[i].key)[0] == 'c') {
                customer = ((const char *)recs[i].key)[1] - '0';
            }
            bool same = customer >= 0 && customer < CUSTOMERS &&
                        (partition_of[customer] < 0 || partition_of[customer] == recs[i].partition);
            if (same) {
                partition_of[customer] = recs[i].partition;
                good++;
            }
            printf("  [%d] %.*s: %.*s\n", (int)recs[i].partition, (int)recs[i].key_len,
                   (const char *)recs[i].key, (int)recs[i].value_len, (const char *)recs[i].value);
        }
    }
    rv_consumer_close(c);
    return good;
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
    rv_app_opts_t opts = {.broker_url = url, .group = "group-by-example", .conf = conf};
    rv_app_t *app = rv_app_new(&opts, &err);
    rv_conf_destroy(conf);
    if (!app) {
        return fail("rv_app_new", err);
    }
    rv_topic_opts_t topic_opts = {.key_serde = "string", .value_serde = "json", .partitions = 3};
    rv_topic_t *orders = rv_app_topic(app, "orders", &topic_opts, &err);
    rv_topic_t *by_customer =
        orders ? rv_app_topic(app, "orders-by-customer", &topic_opts, &err) : NULL;
    if (!by_customer) {
        rv_app_destroy(app);
        return fail("rv_app_topic", err);
    }
    if (rv_broker_create_topic(rv_app_broker(app), "orders", 3, NULL, &err) != RV_OK ||
        produce_orders(rv_app_broker(app)) != 0) {
        rv_app_destroy(app);
        return fail("orders", err);
    }

    rv_df_t *df = rv_app_dataframe(app, orders);
    df = rv_df_group_by(df, "by-customer", "customer", NULL, NULL);
    df = rv_df_update(df, add_customer_key, NULL);
    df = rv_df_to_topic(df, by_customer);

    rv_run_opts_t run = {.until_end = true, .timeout_ms = 30000, .handle_signals = true};
    if (rv_app_run(app, &run, &err) != RV_OK) {
        rv_app_destroy(app);
        return fail("rv_app_run", err);
    }
    int32_t parts = 0;
    rv_broker_describe_topic(rv_app_broker(app),
                             "group-by-example--repartition--orders--by-customer", &parts, NULL,
                             NULL);
    printf("repartition topic group-by-example--repartition--orders--by-customer: %d "
           "partitions\n",
           (int)parts);
    int good = check_output(rv_app_broker(app));
    rv_app_metrics_t m;
    rv_app_metrics(app, &m);
    printf("%lld orders in, %lld records out (repartition and result), %d re-keyed\n",
           (long long)m.records_in, (long long)m.records_out, good);
    rv_app_destroy(app);
    if (argc == 1) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", dir);
        }
    }
    return good == ORDERS && parts == 3 && m.records_out == 2 * ORDERS ? 0 : 1;
}
