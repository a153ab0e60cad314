/*
 * kafka.c: the `kafka://host:port[,host:port]` broker: the URL, librdkafka configurations,
 * error codes, cluster availability, the topic cache and topic admin, on top of which
 * kafka_producer.c and kafka_consumer.c build producers and consumers.
 *
 * Every librdkafka handle is configured the same way: the bootstrap servers of the URL,
 * client.id, rivulet's log level and a log callback that forwards librdkafka's lines to the
 * broker's log callback, the rivulet properties that have a librdkafka equivalent, and then
 * the `kafka.*` pass-through properties (the broker's, then the client's own) so a user can
 * override anything. Topics are listed, checked and described from whole-cluster metadata
 * only: asking a broker older than Kafka 2.3 (or librdkafka's mock cluster) for one named topic
 * creates it, and rivulet must never create a topic by looking at it. Admin requests (create,
 * delete, describe configurations) go to the cluster's controller; a cluster that names no
 * usable controller cannot serve them and is told apart at once instead of after a timeout.
 * This file must never print, and never wait longer than broker.availability.timeout.ms for
 * the cluster.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/kafka_int.h"
#include "rivulet/clock.h"

/* The topic properties of rivulet's table that mean the same on a Kafka topic. */
static const char *const topic_props[] = {
    "retention.ms",     "retention.bytes", "cleanup.policy", "delete.retention.ms",
    "compression.type", "segment.bytes",   "segment.ms",     "max.message.bytes"};

/* How long topic admin waits for the controller to finish (the request itself waits
 * broker.availability.timeout.ms for the cluster). */
#define ADMIN_OPERATION_MS 30000

/* How long create and delete wait for the change to show in the cluster's metadata. */
#define PROPAGATION_MS 5000

/* ---- errors --------------------------------------------------------------------------------- */

rv_err_t rv__kafka_err(rd_kafka_resp_err_t e) {
    switch (e) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return RV_OK;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return RV_ERR_AGAIN;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return RV_ERR_LIMIT;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__NOENT:
        return RV_ERR_NOT_FOUND;
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICA_ASSIGNMENT:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
        return RV_ERR_INVALID_ARG;
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR__INVALID_TYPE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR_TOPIC_DELETION_DISABLED:
        return RV_ERR_CONFIG;
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
        return RV_ERR_EXISTS;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return RV_ERR_TIMEOUT;
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
        return RV_ERR_FATAL;
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
        return RV_ERR_RANGE;
    case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
    case RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE:
        return RV_ERR_UNSUPPORTED;
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__CONFLICT:
    case RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_INVALID_TXN_STATE:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
        return RV_ERR_STATE;
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
        return RV_ERR_PARTITION_EOF;
    case RD_KAFKA_RESP_ERR__DESTROY:
        return RV_ERR_CLOSED;
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR__BAD_COMPRESSION:
        return RV_ERR_CORRUPT;
    default:
        return RV_ERR_TRANSPORT;
    }
}

bool rv__kafka_retriable(rd_kafka_resp_err_t e) {
    switch (e) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__NODE_UPDATE:
    case RD_KAFKA_RESP_ERR__ISR_INSUFF:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
    case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_PREFERRED_LEADER_NOT_AVAILABLE:
        return true;
    default:
        return false;
    }
}

/* ---- callbacks and configurations ----------------------------------------------------------- */

static rv_log_level_t log_level_of(int syslog_level) {
    if (syslog_level <= 3) {
        return RV_LOG_ERROR;
    }
    if (syslog_level == 4) {
        return RV_LOG_WARNING;
    }
    return syslog_level == 5 ? RV_LOG_NOTICE : syslog_level == 6 ? RV_LOG_INFO : RV_LOG_DEBUG;
}

/* librdkafka's log lines, from any of its threads, to the broker's log callback. */
static void on_log(const rd_kafka_t *rk, int level, const char *facility, const char *line) {
    kclient_t *kc = rd_kafka_opaque(rk);
    if (kc && kc->kb) {
        rv__log(&kc->kb->b->log, log_level_of(level), "kafka", "%s: %s: %s", kc->role, facility,
                line);
    }
}

/* Errors librdkafka raises outside any request: every broker down, fatal errors. */
static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque) {
    kclient_t *kc = opaque;
    rd_kafka_resp_err_t e = (rd_kafka_resp_err_t)code;
    if (e == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof why);
        atomic_store(&kc->fatal, true);
        rv__log(&kc->kb->b->log, RV_LOG_ERROR, "kafka", "%s: fatal error %s: %s", kc->role,
                rd_kafka_err2name(orig), why);
        return;
    }
    if (e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        long long zero = 0;
        atomic_compare_exchange_strong(&kc->down_since, &zero, (long long)rv_clock_mono_ms());
    }
    rv__log(&kc->kb->b->log, rv__kafka_retriable(e) ? RV_LOG_NOTICE : RV_LOG_WARNING, "kafka",
            "%s: %s: %s", kc->role, rd_kafka_err2name(e), reason);
}

rv_err_t rv__kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                            const char *role, rv_error_t **err) {
    char why[512];
    rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, name, value, why, sizeof why);
    if (r == RD_KAFKA_CONF_OK) {
        return RV_OK;
    }
    if (r == RD_KAFKA_CONF_UNKNOWN) {
        return rv__error_set(err, RV_ERR_CONFIG,
                             "%s: librdkafka has no configuration property '%s' (%s)", role, name,
                             why);
    }
    return rv__error_set(err, RV_ERR_CONFIG, "%s: librdkafka refuses %s=%s: %s", role, name,
                         value, why);
}

rv_err_t rv__kafka_conf_new(kbroker_t *kb, kclient_t *kc, const char *role,
                            rd_kafka_conf_t **out, rv_error_t **err) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        return rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory", kb->b->url);
    }
    kc->kb = kb;
    kc->role = role;
    char level[8];
    snprintf(level, sizeof level, "%d", (int)kb->b->log.level);
    rv_err_t e = rv__kafka_conf_set(conf, "bootstrap.servers", kb->bootstrap, role, err);
    if (!e) {
        e = rv__kafka_conf_set(conf, "client.id", rv__conf_str(kb->b->conf, RV_CONF_ID_CLIENT_ID),
                               role, err);
    }
    if (!e) {
        e = rv__kafka_conf_set(conf, "log_level", level, role, err);
    }
    if (e) {
        rd_kafka_conf_destroy(conf);
        return e;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, kc);
    *out = conf;
    return RV_OK;
}

typedef struct pass_s {
    rd_kafka_conf_t *conf;
    const char *role;
    rv_error_t **err;
} pass_t;

static rv_err_t pass_one(void *opaque, const char *name, const char *value) {
    pass_t *ps = opaque;
    rv_err_t e = rv__kafka_conf_set(ps->conf, name, value, ps->role, ps->err);
    return e ? rv__error_prefix(ps->err, e, "kafka.%s: ", name) : RV_OK;
}

rv_err_t rv__kafka_conf_finish(kbroker_t *kb, kclient_t *kc, const rv_conf_t *conf,
                               rd_kafka_type_t type, rd_kafka_conf_t *rconf, rv_error_t **err) {
    pass_t ps = {rconf, kc->role, err};
    rv_err_t e = rv_conf_foreach_prefixed(kb->b->conf, "kafka.", pass_one, &ps);
    if (!e && conf && conf != kb->b->conf) {
        e = rv_conf_foreach_prefixed(conf, "kafka.", pass_one, &ps);
    }
    if (e) {
        rd_kafka_conf_destroy(rconf);
        return e;
    }
    char why[512];
    kc->rk = rd_kafka_new(type, rconf, why, sizeof why);
    if (!kc->rk) {
        rd_kafka_conf_destroy(rconf);
        return rv__error_set(err, RV_ERR_CONFIG, "broker '%s': cannot create the Kafka %s: %s",
                             kb->b->url, kc->role, why);
    }
    return RV_OK;
}

rd_kafka_topic_partition_list_t *rv__kafka_tplist(const rv_topic_partition_t *tps, size_t count) {
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(count > 0 ? (int)count : 1);
    for (size_t i = 0; l && i < count; i++) {
        rd_kafka_topic_partition_list_add(l, tps[i].topic, tps[i].partition)->offset =
            tps[i].offset;
    }
    return l;
}

/* ---- availability --------------------------------------------------------------------------- */

bool rv__kafka_backoff(rd_kafka_t *rk, int64_t deadline, int *tries) {
    int64_t wait = 20LL << (*tries < 5 ? *tries : 5);
    int64_t left = deadline - rv_clock_mono_ms();
    if (left <= 0) {
        return false;
    }
    (*tries)++;
    wait = wait < 500 ? wait : 500;
    rv_clock_sleep_ms(wait < left ? wait : left);
    left = deadline - rv_clock_mono_ms();
    const struct rd_kafka_metadata *md = NULL;
    /* Whole-cluster metadata: asking for one topic could create it (see the top). */
    if (left > 0 && rd_kafka_metadata(rk, 1, NULL, &md, left < 1000 ? (int)left : 1000) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(md);
    }
    return rv_clock_mono_ms() < deadline;
}

void rv__kafka_alive(kclient_t *kc) {
    if (atomic_load_explicit(&kc->down_since, memory_order_relaxed) != 0) {
        atomic_store(&kc->down_since, 0);
    }
}

bool rv__kafka_unavailable(kclient_t *kc, rv_error_t **err) {
    long long since = atomic_load(&kc->down_since);
    if (since == 0) {
        return false;
    }
    long long now = rv_clock_mono_ms();
    if (now - since < kc->kb->avail_ms) {
        return false;
    }
    long long probed = atomic_load(&kc->last_probe);
    if (now - probed >= 1000 && atomic_compare_exchange_strong(&kc->last_probe, &probed, now)) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(kc->rk, 0, NULL, &md, 500) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_metadata_destroy(md);
            rv__kafka_alive(kc);
            return false;
        }
    }
    rv__error_set(err, RV_ERR_TRANSPORT,
                  "broker '%s': no broker of %s has been reachable for %lld ms "
                  "(broker.availability.timeout.ms is %lld)",
                  kc->kb->b->url, kc->kb->bootstrap, now - since, (long long)kc->kb->avail_ms);
    return true;
}

rv_err_t rv__kafka_fatal(kclient_t *kc, rv_error_t **err) {
    char why[512] = "";
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(kc->rk, why, sizeof why);
    return rv__error_set(err, RV_ERR_FATAL,
                         "broker '%s': the Kafka %s hit a fatal error (%s: %s) and must be "
                         "closed",
                         kc->kb->b->url, kc->role, rd_kafka_err2name(orig), why);
}

/* ---- the topic cache ------------------------------------------------------------------------ */

static int ktopic_cmp(const void *a, const void *b) {
    return strcmp(((const ktopic_t *)a)->name, ((const ktopic_t *)b)->name);
}

static ktopic_t *cache_find(const kbroker_t *kb, const char *name) {
    ktopic_t key = {.name = (char *)name};
    return kb->ntopics ? bsearch(&key, kb->topics, kb->ntopics, sizeof key, ktopic_cmp) : NULL;
}

static void topics_free(ktopic_t *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
    }
    free(v);
}

/* Whether a topic in the metadata exists for rivulet: listed without error, or with a leader
 * still being elected (a topic just created). */
static bool topic_listed(const struct rd_kafka_metadata_topic *t) {
    return t->err == RD_KAFKA_RESP_ERR_NO_ERROR ||
           t->err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
}

/* Reads every topic from the cluster into the cache. Called with kb->lock held. */
static rv_err_t cache_refresh(kbroker_t *kb, rv_error_t **err) {
    rd_kafka_poll(kb->admin.rk, 0); /* serves the admin handle's events, which nothing else does */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t re = rd_kafka_metadata(kb->admin.rk, 1, NULL, &md, (int)kb->avail_ms);
    if (re) {
        rv_err_t e = rv__kafka_retriable(re) ? RV_ERR_TRANSPORT : rv__kafka_err(re);
        return rv__error_set(err, e, "broker '%s': cannot read the topics of %s: %s (%s)",
                             kb->b->url, kb->bootstrap, rd_kafka_err2str(re),
                             rd_kafka_err2name(re));
    }
    rv__kafka_alive(&kb->admin);
    ktopic_t *v = calloc((size_t)md->topic_cnt + 1, sizeof *v);
    size_t n = 0;
    bool ok = v != NULL;
    for (int i = 0; ok && i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (!topic_listed(t) || t->partition_cnt <= 0) {
            continue;
        }
        const ktopic_t *old = cache_find(kb, t->topic);
        v[n].name = strdup(t->topic);
        v[n].partitions = t->partition_cnt;
        v[n].max_message_bytes =
            old && old->partitions == t->partition_cnt ? old->max_message_bytes : -1;
        ok = v[n++].name != NULL;
    }
    rd_kafka_metadata_destroy(md);
    if (!ok) {
        topics_free(v, n);
        return rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory", kb->b->url);
    }
    qsort(v, n, sizeof *v, ktopic_cmp);
    topics_free(kb->topics, kb->ntopics);
    kb->topics = v;
    kb->ntopics = n;
    kb->refreshed_ms = rv_clock_mono_ms();
    return RV_OK;
}

static rv_err_t topic_not_found(kbroker_t *kb, const char *topic, rv_error_t **err) {
    return rv__error_set(err, RV_ERR_NOT_FOUND, "topic '%s' does not exist on %s", topic,
                         kb->bootstrap);
}

/* Looks `topic` up, refreshing first when `force` or when it is missing or the cache is old.
 * Called with kb->lock held; *found is NULL when the topic does not exist. */
static rv_err_t cache_lookup(kbroker_t *kb, const char *topic, bool force, ktopic_t **found,
                             rv_error_t **err) {
    ktopic_t *t = force ? NULL : cache_find(kb, topic);
    if (!t || rv_clock_mono_ms() - kb->refreshed_ms > RV__KAFKA_CACHE_MS) {
        rv_err_t e = cache_refresh(kb, err);
        if (e && (force || !t)) {
            return e; /* a stale answer is better than none only for a topic seen before */
        }
        t = cache_find(kb, topic);
    }
    *found = t;
    return RV_OK;
}

rv_err_t rv__kafka_topic(kbroker_t *kb, const char *topic, int32_t *partitions,
                         int64_t *max_bytes, rv_error_t **err) {
    ktopic_t *t;
    pthread_mutex_lock(&kb->lock);
    rv_err_t e = cache_lookup(kb, topic, false, &t, err);
    if (!e && t) {
        *partitions = t->partitions;
        if (max_bytes) {
            *max_bytes = t->max_message_bytes;
        }
    }
    pthread_mutex_unlock(&kb->lock);
    if (e) {
        return e;
    }
    return t ? RV_OK : topic_not_found(kb, topic, err);
}

rv_err_t rv__kafka_check_partition(kbroker_t *kb, const char *what, const char *topic,
                                   int32_t partition, rv_error_t **err) {
    int32_t n = 0;
    rv_err_t e = rv__kafka_topic(kb, topic, &n, NULL, err);
    if (e) {
        return rv__error_prefix(err, e, "%s: ", what);
    }
    if (partition >= n) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "%s: topic '%s' has %d partitions: there is no partition %d", what,
                             topic, (int)n, (int)partition);
    }
    return RV_OK;
}

/* ---- opening and closing -------------------------------------------------------------------- */

/* Checks "//host:port[,host:port]" and stores "host:port,..." in *out (malloc'ed). */
static rv_err_t parse_location(const rv_broker_t *b, const char *location, char **out,
                               rv_error_t **err) {
    if (strncmp(location, "//", 2) != 0 || !location[2]) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "broker URL '%s': expected kafka://host:port[,host:port]", b->url);
    }
    const char *list = location + 2;
    size_t len = strlen(list);
    if (list[len - 1] == '/') {
        len--; /* a trailing slash, as URLs often have */
    }
    const char *p = list, *end = list + len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        const char *colon = NULL;
        for (const char *q = p; q < item_end; q++) {
            if (*q == ':') {
                colon = q; /* the last colon: IPv6 hosts come in brackets */
            }
        }
        bool ok = colon && colon > p && colon + 1 < item_end;
        long port = 0;
        for (const char *q = colon ? colon + 1 : item_end; ok && q < item_end; q++) {
            ok = *q >= '0' && *q <= '9' && (port = port * 10 + (*q - '0')) <= 65535;
        }
        for (const char *q = p; ok && q < item_end; q++) {
            ok = *q != ' ' && *q != '/' && *q != '\t';
        }
        if (!ok || port < 1) {
            return rv__error_set(err, RV_ERR_INVALID_ARG,
                                 "broker URL '%s': '%.*s' is not host:port (a port is 1 to "
                                 "65535)",
                                 b->url, (int)(item_end - p), p);
        }
        p = comma ? comma + 1 : end;
        if (comma && p == end) {
            return rv__error_set(err, RV_ERR_INVALID_ARG,
                                 "broker URL '%s': empty server after ','", b->url);
        }
    }
    *out = strndup(list, len);
    return *out ? RV_OK
                : rv__error_set(err, RV_ERR_NOMEM, "broker URL '%s': out of memory", b->url);
}

static rv_err_t kafka_open(rv_broker_t *b, const char *location, rv_error_t **err) {
    kbroker_t *kb = calloc(1, sizeof *kb);
    if (!kb) {
        return rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory", b->url);
    }
    kb->b = b;
    kb->avail_ms = rv__conf_int(b->conf, RV_CONF_ID_BROKER_AVAILABILITY_MS);
    rv_err_t e = parse_location(b, location, &kb->bootstrap, err);
    rd_kafka_conf_t *conf = NULL;
    if (!e) {
        e = rv__kafka_conf_new(kb, &kb->admin, "admin client", &conf, err);
    }
    if (!e) {
        e = rv__kafka_conf_finish(kb, &kb->admin, b->conf, RD_KAFKA_PRODUCER, conf, err);
    }
    if (e) {
        free(kb->bootstrap);
        free(kb);
        return e;
    }
    pthread_mutex_init(&kb->lock, NULL);
    b->impl = kb;
    rv__log(&b->log, RV_LOG_INFO, "kafka", "opened %s (librdkafka %s)", kb->bootstrap,
            rd_kafka_version_str());
    return RV_OK;
}

static void kafka_close(rv_broker_t *b) {
    kbroker_t *kb = b->impl;
    rd_kafka_destroy(kb->admin.rk);
    topics_free(kb->topics, kb->ntopics);
    pthread_mutex_destroy(&kb->lock);
    free(kb->bootstrap);
    free(kb);
    b->impl = NULL;
}

/* ---- topic admin ---------------------------------------------------------------------------- */

/*
 * Admin requests go to the controller. A cluster whose metadata names no controller among its
 * brokers (librdkafka's mock cluster names broker 0 of brokers 1..n) would leave them waiting
 * for ever: say so at once.
 */
static rv_err_t check_controller(kbroker_t *kb, const char *what, const char *topic,
                                 rv_error_t **err) {
    int32_t id = rd_kafka_controllerid(kb->admin.rk, (int)kb->avail_ms);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t re = rd_kafka_metadata(kb->admin.rk, 0, NULL, &md, (int)kb->avail_ms);
    if (re) {
        return rv__error_set(err, RV_ERR_TRANSPORT, "topic '%s': cannot %s it: %s: %s", topic,
                             what, kb->bootstrap, rd_kafka_err2str(re));
    }
    bool known = false;
    for (int i = 0; i < md->broker_cnt; i++) {
        known = known || md->brokers[i].id == id;
    }
    rd_kafka_metadata_destroy(md);
    if (id < 0) {
        return rv__error_set(err, RV_ERR_TRANSPORT,
                             "topic '%s': cannot %s it: the cluster at %s names no controller",
                             topic, what, kb->bootstrap);
    }
    if (!known) {
        return rv__error_set(err, RV_ERR_UNSUPPORTED,
                             "topic '%s': cannot %s it: the cluster at %s names broker %d as its "
                             "controller, which is none of its brokers, so it serves no topic "
                             "admin requests (librdkafka's mock cluster is such a cluster)",
                             topic, what, kb->bootstrap, (int)id);
    }
    return RV_OK;
}

/* Options for an admin request: the request waits for the cluster as long as the
 * availability timeout allows, the controller for the operation ADMIN_OPERATION_MS. */
static rd_kafka_AdminOptions_t *admin_options(kbroker_t *kb, rd_kafka_admin_op_t op) {
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(kb->admin.rk, op);
    char why[256];
    if (o) {
        rd_kafka_AdminOptions_set_request_timeout(o, (int)kb->avail_ms, why, sizeof why);
        if (op != RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS) {
            rd_kafka_AdminOptions_set_operation_timeout(o, ADMIN_OPERATION_MS, why, sizeof why);
        }
    }
    return o;
}

/* Waits for the result event of an admin request on `q` into *ev; on failure fills *err and
 * returns its code (with *ev NULL). */
static rv_err_t admin_wait(kbroker_t *kb, rd_kafka_queue_t *q, const char *what,
                           const char *topic, rd_kafka_event_t **ev, rv_error_t **err) {
    *ev = rd_kafka_queue_poll(q, (int)kb->avail_ms + ADMIN_OPERATION_MS);
    if (!*ev) {
        return rv__error_set(err, RV_ERR_TIMEOUT, "topic '%s': %s: no answer from %s", topic,
                             what, kb->bootstrap);
    }
    rd_kafka_resp_err_t re = rd_kafka_event_error(*ev);
    if (re) {
        rv_err_t e = rv__error_set(
            err, rv__kafka_retriable(re) ? RV_ERR_TRANSPORT : rv__kafka_err(re),
            "topic '%s': %s: %s (%s)", topic, what, rd_kafka_event_error_string(*ev),
            rd_kafka_err2name(re));
        rd_kafka_event_destroy(*ev);
        *ev = NULL;
        return e;
    }
    return RV_OK;
}

/* Waits until the topic's presence in the metadata is `present` (bounded): Kafka's metadata
 * follows a topic change a little later. Called with kb->lock held. */
static void await_metadata(kbroker_t *kb, const char *topic, bool present) {
    int64_t deadline = rv_clock_mono_ms() + PROPAGATION_MS;
    while (cache_refresh(kb, NULL) == RV_OK && (cache_find(kb, topic) != NULL) != present &&
           rv_clock_mono_ms() < deadline) {
        rv_clock_sleep_ms(50);
    }
}

/* Adds the kafka.* properties of a topic's configuration to the request, except
 * kafka.replication.factor, which is an argument of the request rather than a property. */
typedef struct newtopic_ctx_s {
    rd_kafka_NewTopic_t *nt;
    rv_error_t **err;
    const char *topic;
} newtopic_ctx_t;

static rv_err_t newtopic_pass(void *opaque, const char *name, const char *value) {
    newtopic_ctx_t *nc = opaque;
    if (strcmp(name, "replication.factor") != 0 && rd_kafka_NewTopic_set_config(nc->nt, name,
                                                                                value)) {
        return rv__error_set(nc->err, RV_ERR_CONFIG, "topic '%s': kafka.%s=%s refused",
                             nc->topic, name, value);
    }
    return RV_OK;
}

/* Adds rivulet's topic properties set in `conf`, in Kafka's spelling. */
static rv_err_t topic_configs(rd_kafka_NewTopic_t *nt, const char *topic, const rv_conf_t *conf,
                              rv_error_t **err) {
    for (size_t i = 0; conf && i < RV_ARRAY_LEN(topic_props); i++) {
        const char *name = topic_props[i];
        if (!rv_conf_is_set(conf, name)) {
            continue;
        }
        const rv_conf_property_t *p = rv_conf_property_find(name);
        char num[32];
        const char *value = rv_conf_get(conf, name);
        if (p && p->type != RV_CONF_ENUM && p->type != RV_CONF_STRING) {
            snprintf(num, sizeof num, "%lld", (long long)rv_conf_get_int(conf, name));
            value = num; /* "1h" and "64KiB" are rivulet's forms, not Kafka's */
        } else if (strcmp(name, "compression.type") == 0 && strcmp(value, "none") == 0) {
            value = "uncompressed";
        }
        if (rd_kafka_NewTopic_set_config(nt, name, value)) {
            return rv__error_set(err, RV_ERR_CONFIG, "topic '%s': %s=%s refused", topic, name,
                                 value);
        }
    }
    return RV_OK;
}

static rv_err_t kafka_create_topic(rv_broker_t *b, const char *topic, int32_t partitions,
                                   const rv_conf_t *topic_conf, rv_error_t **err) {
    kbroker_t *kb = b->impl;
    ktopic_t *t;
    pthread_mutex_lock(&kb->lock);
    rv_err_t e = cache_lookup(kb, topic, true, &t, err);
    pthread_mutex_unlock(&kb->lock);
    if (e) {
        return e;
    }
    if (t) {
        return rv__error_set(err, RV_ERR_EXISTS, "topic '%s' already exists on %s", topic,
                             kb->bootstrap);
    }
    if ((e = check_controller(kb, "create", topic, err)) != RV_OK) {
        return e;
    }
    /* -1: the cluster's default.replication.factor (Kafka 2.4 and later). */
    int replication = -1;
    const char *rf = topic_conf ? rv_conf_get(topic_conf, "kafka.replication.factor") : NULL;
    if (rf) {
        char *end;
        long r = strtol(rf, &end, 10);
        if (*end || end == rf || r < 1 || r > 32767) {
            return rv__error_set(err, RV_ERR_CONFIG,
                                 "topic '%s': kafka.replication.factor=%s: expected 1 to 32767",
                                 topic, rf);
        }
        replication = (int)r;
    }
    char why[512];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(topic, partitions, replication, why, sizeof why);
    if (!nt) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "topic '%s': %s", topic, why);
    }
    newtopic_ctx_t nc = {nt, err, topic};
    e = topic_configs(nt, topic, topic_conf, err);
    if (!e && topic_conf) {
        e = rv_conf_foreach_prefixed(topic_conf, "kafka.", newtopic_pass, &nc);
    }
    if (e) {
        rd_kafka_NewTopic_destroy(nt);
        return e;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(kb->admin.rk);
    rd_kafka_AdminOptions_t *o = admin_options(kb, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(kb->admin.rk, &nt, 1, o, q);
    rd_kafka_event_t *ev;
    e = admin_wait(kb, q, "create", topic, &ev, err);
    if (!e) {
        size_t n = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t re = n ? rd_kafka_topic_result_error(res[0]) : 0;
        if (re == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            e = rv__error_set(err, RV_ERR_EXISTS, "topic '%s' already exists on %s", topic,
                              kb->bootstrap);
        } else if (re) {
            const char *msg = rd_kafka_topic_result_error_string(res[0]);
            e = rv__error_set(err, rv__kafka_err(re),
                              "topic '%s': the cluster at %s refused to create it: %s (%s)",
                              topic, kb->bootstrap, msg ? msg : rd_kafka_err2str(re),
                              rd_kafka_err2name(re));
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    if (e) {
        return e;
    }
    pthread_mutex_lock(&kb->lock);
    await_metadata(kb, topic, true);
    if ((t = cache_find(kb, topic)) != NULL && topic_conf &&
        rv_conf_is_set(topic_conf, "max.message.bytes")) {
        t->max_message_bytes = rv_conf_get_int(topic_conf, "max.message.bytes");
    }
    pthread_mutex_unlock(&kb->lock);
    rv__log(&b->log, RV_LOG_INFO, "kafka", "created topic '%s' with %d partitions on %s", topic,
            (int)partitions, kb->bootstrap);
    return RV_OK;
}

static rv_err_t kafka_delete_topic(rv_broker_t *b, const char *topic, rv_error_t **err) {
    kbroker_t *kb = b->impl;
    ktopic_t *t;
    pthread_mutex_lock(&kb->lock);
    rv_err_t e = cache_lookup(kb, topic, true, &t, err);
    pthread_mutex_unlock(&kb->lock);
    if (e) {
        return e;
    }
    if (!t) {
        return topic_not_found(kb, topic, err);
    }
    if ((e = check_controller(kb, "delete", topic, err)) != RV_OK) {
        return e;
    }
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(kb->admin.rk);
    rd_kafka_AdminOptions_t *o = admin_options(kb, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_DeleteTopics(kb->admin.rk, &dt, 1, o, q);
    rd_kafka_event_t *ev;
    e = admin_wait(kb, q, "delete", topic, &ev, err);
    if (!e) {
        size_t n = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
        rd_kafka_resp_err_t re = n ? rd_kafka_topic_result_error(res[0]) : 0;
        if (re == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            e = topic_not_found(kb, topic, err);
        } else if (re) {
            const char *msg = rd_kafka_topic_result_error_string(res[0]);
            e = rv__error_set(err, rv__kafka_err(re),
                              "topic '%s': the cluster at %s refused to delete it: %s (%s)",
                              topic, kb->bootstrap, msg ? msg : rd_kafka_err2str(re),
                              rd_kafka_err2name(re));
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteTopic_destroy(dt);
    if (e) {
        return e;
    }
    pthread_mutex_lock(&kb->lock);
    await_metadata(kb, topic, false);
    pthread_mutex_unlock(&kb->lock);
    rv__log(&b->log, RV_LOG_INFO, "kafka", "deleted topic '%s' on %s", topic, kb->bootstrap);
    return RV_OK;
}

static rv_err_t kafka_list_topics(rv_broker_t *b, char ***names, size_t *count,
                                  rv_error_t **err) {
    kbroker_t *kb = b->impl;
    pthread_mutex_lock(&kb->lock);
    rv_err_t e = cache_refresh(kb, err);
    size_t n = e ? 0 : kb->ntopics;
    char **v = e ? NULL : calloc(n + 1, sizeof *v);
    bool ok = e || v != NULL;
    for (size_t i = 0; !e && ok && i < n; i++) {
        ok = (v[i] = strdup(kb->topics[i].name)) != NULL; /* the cache is sorted */
    }
    pthread_mutex_unlock(&kb->lock);
    if (e) {
        return e;
    }
    if (!ok) {
        rv_strv_free(v);
        return rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory listing topics",
                             b->url);
    }
    *names = v;
    *count = n;
    return RV_OK;
}

/* Sets one configuration entry of a described topic on `c`: rivulet's property when it has
 * one of that name that takes the value, else `kafka.<name>` when the topic set it itself. */
static void describe_entry(rv_conf_t *c, const rd_kafka_ConfigEntry_t *ce) {
    const char *name = rd_kafka_ConfigEntry_name(ce);
    const char *value = rd_kafka_ConfigEntry_value(ce);
    rd_kafka_ConfigSource_t src = rd_kafka_ConfigEntry_source(ce);
    if (!name || !value || src == RD_KAFKA_CONFIG_SOURCE_DEFAULT_CONFIG ||
        rd_kafka_ConfigEntry_is_sensitive(ce)) {
        return;
    }
    bool ours = false;
    for (size_t i = 0; i < RV_ARRAY_LEN(topic_props); i++) {
        ours = ours || strcmp(topic_props[i], name) == 0;
    }
    if (ours) {
        const char *v = value;
        if (strcmp(name, "compression.type") == 0 &&
            (strcmp(value, "uncompressed") == 0 || strcmp(value, "producer") == 0)) {
            v = "none";
        } else if (strcmp(name, "cleanup.policy") == 0 && strstr(value, "compact") &&
                   strstr(value, "delete")) {
            v = "compact,delete";
        }
        if (rv_conf_set(c, name, v, NULL) == RV_OK) {
            return;
        }
    }
    if (src == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG || ours) {
        char full[256];
        snprintf(full, sizeof full, "kafka.%s", name);
        rv_conf_set(c, full, value, NULL);
    }
}

static rv_err_t describe_configs(kbroker_t *kb, const char *topic, rv_conf_t **out,
                                 rv_error_t **err) {
    rv_err_t e = check_controller(kb, "describe the configuration of", topic, err);
    if (e) {
        return e;
    }
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(kb->admin.rk);
    rd_kafka_AdminOptions_t *o = admin_options(kb, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(kb->admin.rk, &res, 1, o, q);
    rd_kafka_event_t *ev;
    e = admin_wait(kb, q, "describe configuration", topic, &ev, err);
    rv_conf_t *c = NULL;
    if (!e) {
        size_t n = 0;
        const rd_kafka_ConfigResource_t **rs =
            rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev),
                                                      &n);
        rd_kafka_resp_err_t re = n ? rd_kafka_ConfigResource_error(rs[0]) : 0;
        if (re) {
            const char *msg = rd_kafka_ConfigResource_error_string(rs[0]);
            e = re == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                    ? topic_not_found(kb, topic, err)
                    : rv__error_set(err, rv__kafka_err(re),
                                    "topic '%s': the cluster at %s refused to describe its "
                                    "configuration: %s (%s)",
                                    topic, kb->bootstrap, msg ? msg : rd_kafka_err2str(re),
                                    rd_kafka_err2name(re));
        } else if ((c = rv_conf_new()) == NULL) {
            e = rv__error_set(err, RV_ERR_NOMEM, "topic '%s': out of memory", topic);
        } else {
            size_t cnt = 0;
            const rd_kafka_ConfigEntry_t **ces = n ? rd_kafka_ConfigResource_configs(rs[0], &cnt)
                                                   : NULL;
            for (size_t i = 0; i < cnt; i++) {
                describe_entry(c, ces[i]);
            }
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    if (e) {
        rv_conf_destroy(c);
        return e;
    }
    if (rv_conf_is_set(c, "max.message.bytes")) {
        pthread_mutex_lock(&kb->lock);
        ktopic_t *t = cache_find(kb, topic);
        if (t) {
            t->max_message_bytes = rv_conf_get_int(c, "max.message.bytes");
        }
        pthread_mutex_unlock(&kb->lock);
    }
    *out = c;
    return RV_OK;
}

static rv_err_t kafka_describe_topic(rv_broker_t *b, const char *topic, int32_t *partitions,
                                     rv_conf_t **topic_conf, rv_error_t **err) {
    kbroker_t *kb = b->impl;
    ktopic_t *t;
    pthread_mutex_lock(&kb->lock);
    rv_err_t e = cache_lookup(kb, topic, true, &t, err);
    if (!e && t) {
        *partitions = t->partitions;
    }
    pthread_mutex_unlock(&kb->lock);
    if (e) {
        return e;
    }
    if (!t) {
        return topic_not_found(kb, topic, err);
    }
    return topic_conf ? describe_configs(kb, topic, topic_conf, err) : RV_OK;
}

static rv_err_t kafka_watermarks(rv_broker_t *b, const char *topic, int32_t partition,
                                 int64_t *low, int64_t *high, rv_error_t **err) {
    kbroker_t *kb = b->impl;
    rv_err_t e = rv__kafka_check_partition(kb, "watermarks", topic, partition, err);
    if (e) {
        return e;
    }
    /* A leader that moved answers NOT_LEADER until the metadata follows: try again. */
    int64_t deadline = rv_clock_mono_ms() + kb->avail_ms;
    int tries = 0;
    rd_kafka_resp_err_t re;
    while ((re = rd_kafka_query_watermark_offsets(kb->admin.rk, topic, partition, low, high,
                                                  (int)kb->avail_ms)) != 0 &&
           rv__kafka_retriable(re) && rv__kafka_backoff(kb->admin.rk, deadline, &tries)) {
    }
    if (re) {
        return rv__error_set(err, rv__kafka_retriable(re) ? RV_ERR_TRANSPORT : rv__kafka_err(re),
                             "watermarks: topic '%s' partition %d: %s (%s)", topic,
                             (int)partition, rd_kafka_err2str(re), rd_kafka_err2name(re));
    }
    rv__kafka_alive(&kb->admin);
    return RV_OK;
}

const rv_broker_ops_t rv__kafka_broker_ops = {
    .version = RV_BROKER_OPS_VERSION,
    .scheme = "kafka",
    .open = kafka_open,
    .close = kafka_close,
    .create_topic = kafka_create_topic,
    .delete_topic = kafka_delete_topic,
    .list_topics = kafka_list_topics,
    .describe_topic = kafka_describe_topic,
    .watermarks = kafka_watermarks,
    .producer_new = rv__kafka_producer_new,
    .producer_destroy = rv__kafka_producer_destroy,
    .send = rv__kafka_send,
    .producer_poll = rv__kafka_producer_poll,
    .flush = rv__kafka_flush,
    .consumer_new = rv__kafka_consumer_new,
    .consumer_destroy = rv__kafka_consumer_destroy,
    .subscribe = rv__kafka_subscribe,
    .assign = rv__kafka_assign,
    .poll = rv__kafka_poll,
    .commit = rv__kafka_commit,
    .committed = rv__kafka_committed,
    .position = rv__kafka_position,
    .seek = rv__kafka_seek,
    .offsets_for_times = rv__kafka_offsets_for_times,
    .pause = rv__kafka_pause,
    .begin_transaction = rv__kafka_begin_transaction,
    .send_offsets_to_transaction = rv__kafka_send_offsets_to_transaction,
    .commit_transaction = rv__kafka_commit_transaction,
    .abort_transaction = rv__kafka_abort_transaction,
};
