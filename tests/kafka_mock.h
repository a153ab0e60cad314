/*
 * kafka_mock.h: the librdkafka mock cluster that the `kafka://` tests start on loopback TCP,
 * and the opening of a rivulet broker on it with the properties a test wants.
 *
 * A test program includes it after rv_test.h, starts a cluster of as many brokers as it needs
 * with km_start() (which names its bootstrap servers and the `kafka://` URL to open), opens
 * brokers with km_open() and stops the cluster with km_stop(). The mock is librdkafka's own,
 * run in this process: nothing here may depend on a Kafka server outside it, and nothing here
 * may change what a test checks beyond checking that the broker it asked for opened.
 *
 * RV_TEST_MOCK_DEBUG=<contexts> (for example mock,cgrp) prints what the mock cluster does;
 * RV_TEST_KAFKA_DEBUG=<contexts> sets kafka.debug on the brokers km_open() opens, and
 * RV_TEST_LOG=1 shows their log lines, on stderr.
 */
#ifndef RV_KAFKA_MOCK_H
#define RV_KAFKA_MOCK_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "rivulet/broker.h"
#include "rivulet/config.h"
#include "rivulet/log.h"
#include "rv_test.h"

/*
 * Client properties that suit the mock's consumer groups, for a pair list's initialiser. Its
 * groups wait a fixed 3 s before the first rebalance and session.timeout.ms - 1 s before every
 * later one, and drop a member waiting in a join longer than its session: so a session just
 * over 3 s (a real broker refuses less than 6 s) and quick heartbeats. Its fetches without
 * data wait fetch.wait.max.ms even when records arrive meanwhile, so wait less.
 */
#define KM_GROUP_PAIRS                                                                             \
    "kafka.session.timeout.ms=3100", "kafka.heartbeat.interval.ms=100",                            \
        "kafka.fetch.wait.max.ms=100"

/* A running mock cluster. */
typedef struct km_cluster_s {
    rd_kafka_t *rk;                /* the handle that owns the cluster */
    rd_kafka_mock_cluster_t *mock; /* for creating topics and injecting faults */
    const char *bootstraps;        /* host:port,...; valid until km_stop() */
    char url[512];                 /* "kafka://" and the bootstraps, for rv_broker_open() */
} km_cluster_t;

/* The handle that owns the mock cluster says nothing. */
static inline void km_quiet(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

/*
 * Stops the cluster km_start() started in `km` (nothing if it started none, or failed) and
 * clears `km`, so that it can be started again.
 */
static inline void km_stop(km_cluster_t *km) {
    if (km->mock) {
        rd_kafka_mock_cluster_destroy(km->mock);
    }
    if (km->rk) {
        rd_kafka_destroy(km->rk);
    }
    *km = (km_cluster_t){0};
}

/*
 * Starts a mock cluster of `brokers` brokers (ids 1 to brokers) listening on loopback, and
 * fills `km`. Returns false, with `km` cleared and a line on stderr, when librdkafka cannot.
 */
static inline bool km_start(km_cluster_t *km, int brokers) {
    *km = (km_cluster_t){0};
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (getenv("RV_TEST_MOCK_DEBUG")) {
        rd_kafka_conf_set(conf, "debug", getenv("RV_TEST_MOCK_DEBUG"), why, sizeof why);
    } else {
        rd_kafka_conf_set_log_cb(conf, km_quiet);
    }
    km->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!km->rk) {
        fprintf(stderr, "cannot create the mock cluster's handle: %s\n", why);
        rd_kafka_conf_destroy(conf);
        return false;
    }
    km->mock = rd_kafka_mock_cluster_new(km->rk, brokers);
    if (!km->mock) {
        km_stop(km);
        return false;
    }
    km->bootstraps = rd_kafka_mock_cluster_bootstraps(km->mock);
    snprintf(km->url, sizeof km->url, "kafka://%s", km->bootstraps);
    return true;
}

/*
 * Opens `url` with the name=value pairs of `pairs` and then of `extra` (NULL-terminated lists;
 * either may be NULL) set in its configuration, checking that each is accepted and that the
 * broker opens. Returns the broker (close with rv_broker_close()), or NULL after a failed check.
 */
static inline rv_broker_t *km_open(const char *url, const char *const *pairs,
                                   const char *const *extra) {
    rv_conf_t *conf = rv_conf_new();
    for (size_t i = 0; pairs && pairs[i]; i++) {
        CHECK_INT(rv_conf_set_pair(conf, pairs[i], NULL), RV_OK);
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        CHECK_INT(rv_conf_set_pair(conf, extra[i], NULL), RV_OK);
    }
    if (getenv("RV_TEST_KAFKA_DEBUG")) {
        CHECK_INT(rv_conf_set(conf, "kafka.debug", getenv("RV_TEST_KAFKA_DEBUG"), NULL), RV_OK);
        CHECK_INT(rv_conf_set(conf, "log.level", "debug", NULL), RV_OK);
    }
    rv_broker_opts_t opts = {.conf = conf,
                             .log_cb = getenv("RV_TEST_LOG") ? rv_log_to_stderr : NULL};
    rv_error_t *err = NULL;
    rv_broker_t *b = rv_broker_open(url, &opts, &err);
    CHECK_MSG(b != NULL, "open %s: %s", url, rv_error_message(err));
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return b;
}

#endif
