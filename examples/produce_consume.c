/*
 * produce_consume.c: the broker interface on the embedded log.
 *
 * Opens a `local:` broker in a fresh directory (or the one given as argv[1]), creates a topic with
 * three partitions, produces keyed telemetry records with a header, then consumes them back as a
 * member of a consumer group, commits, and shows that a second run of the group resumes after the
 * commit. Prints what it did; exits 0 on success and 1 with the library's error message otherwise.
 * The same code runs on `memory:` or `kafka://host:port` by changing the URL.
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <rivulet/rivulet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORDS 9

static int fail(const char *what, rv_error_t *err) {
    fprintf(stderr, "%s: %s\n", what, rv_error_message(err));
    rv_error_destroy(err);
    return 1;
}

static void on_delivery(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    int *delivered = opaque;
    (void)rec_opaque;
    if (err == RV_OK) {
        (*delivered)++;
    } else {
        fprintf(stderr, "delivery to %s failed: %s\n", rec->topic, rv_err_str(err));
    }
}

static void on_assign(void *opaque, rv_consumer_t *c, const rv_topic_partition_t *tps, size_t n) {
    (void)c;
    *(int *)opaque = 0; /* a new assignment: no partition has reached its end yet */
    for (size_t i = 0; i < n; i++) {
        printf("  assigned %s[%d]\n", tps[i].topic, (int)tps[i].partition);
    }
}

static void on_eof(void *opaque, rv_consumer_t *c, const char *topic, int32_t partition,
                   int64_t offset) {
    (void)c;
    printf("  end of %s[%d] at offset %lld\n", topic, (int)partition, (long long)offset);
    (*(int *)opaque)++;
}

/* Reads until every partition of the topic reached its end (or 5 s passed), commits, and returns
 * how many records it read. */
static int consume(rv_broker_t *broker, int partitions) {
    int at_end = 0;
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "auto.offset.reset", "earliest", NULL);
    rv_consumer_opts_t opts = {.conf = conf, .group = "example-group",
                               .callbacks = {.opaque = &at_end,
                                             .on_assign = on_assign,
                                             .on_partition_eof = on_eof}};
    rv_error_t *err = NULL;
    rv_consumer_t *c = rv_consumer_new(broker, &opts, &err);
    rv_conf_destroy(conf);
    if (!c) {
        return -fail("consumer", err);
    }
    const char *topics[] = {"laps"};
    if (rv_consumer_subscribe(c, topics, 1, &err) != RV_OK) {
        rv_consumer_close(c);
        return -fail("subscribe", err);
    }
    int got = 0;
    int64_t deadline = rv_clock_mono_ms() + 5000;
    while (at_end < partitions && rv_clock_mono_ms() < deadline) {
        const rv_record_t *recs;
        size_t n = 0;
        if (rv_consumer_poll(c, &recs, 64, &n, 100, &err) != RV_OK) {
            rv_consumer_close(c);
            return -fail("poll", err);
        }
        for (size_t i = 0; i < n; i++, got++) {
            printf("  %s[%d]@%lld key=%.*s value=%.*s\n", recs[i].topic, (int)recs[i].partition,
                   (long long)recs[i].offset, (int)recs[i].key_len, (const char *)recs[i].key,
                   (int)recs[i].value_len, (const char *)recs[i].value);
        }
    }
    if (rv_consumer_commit(c, NULL, 0, &err) != RV_OK) {
        rv_consumer_close(c);
        return -fail("commit", err);
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
    rv_broker_t *broker = rv_broker_open(url, NULL, &err);
    if (!broker) {
        return fail(url, err);
    }
    printf("broker %s\n", rv_broker_url(broker));
    if (rv_broker_create_topic(broker, "laps", 3, NULL, &err) != RV_OK) {
        rv_broker_close(broker);
        return fail("create topic", err);
    }

    int delivered = 0;
    rv_producer_opts_t popts = {.delivery_cb = on_delivery, .opaque = &delivered};
    rv_producer_t *p = rv_producer_new(broker, &popts, &err);
    if (!p) {
        rv_broker_close(broker);
        return fail("producer", err);
    }
    for (int i = 0; i < RECORDS; i++) {
        char key[16], value[64];
        snprintf(key, sizeof key, "car-%d", i % 3);
        snprintf(value, sizeof value, "{\"lap\":%d,\"time_s\":%.3f}", i / 3 + 1, 81.5 + i * 0.25);
        rv_header_t h = {"source", "example", 7};
        rv_record_t rec = {.topic = "laps", .partition = RV_PARTITION_ANY, .key = key,
                           .key_len = strlen(key), .value = value, .value_len = strlen(value),
                           .headers = &h, .header_count = 1};
        if (rv_producer_send(p, &rec, NULL) != RV_OK) {
            fprintf(stderr, "send failed\n");
        }
    }
    if (rv_producer_flush(p, 10000, &err) != RV_OK) {
        rv_producer_close(p);
        rv_broker_close(broker);
        return fail("flush", err);
    }
    rv_producer_close(p);
    printf("produced %d records\n", delivered);

    printf("first run of the group:\n");
    int first = consume(broker, 3);
    printf("second run of the group (resumes after the commit):\n");
    int second = consume(broker, 3);
    rv_broker_close(broker);
    printf("read %d, then %d\n", first, second);
    if (argc == 1) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", dir);
        }
    }
    return delivered == RECORDS && first == RECORDS && second == 0 ? 0 : 1;
}
