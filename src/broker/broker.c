/*
 * broker.c: the public broker functions, in front of every broker implementation.
 *
 * It parses broker URLs and picks the implementation registered for the scheme, allocates and
 * frees the handles (copying configurations and the logger), checks the arguments every
 * implementation would check the same way (NULL pointers, Kafka's topic-name rule, partition
 * counts, logical offsets, topic-scoped properties) with messages that name the topic and
 * partition, and then dispatches to the implementation's ops. It also holds the partitioner
 * the implementations share. Splitting of large values (chunk.c) sits between the public send,
 * poll and commit and the ops. It must never know how an implementation stores records:
 * anything that needs a topic's partition count or a record's offset belongs behind the ops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "broker/chunk.h"
#include "rivulet/hash.h"

/* The largest partition count a topic may have: a guard against nonsense, not a design limit. */
#define RV__MAX_PARTITIONS 100000

/* Kafka's limit on a topic name's length. */
#define RV__TOPIC_NAME_MAX 249

/* The implementations, by scheme. */
static const rv_broker_ops_t *const registry[] = {&rv__memory_broker_ops, &rv__local_broker_ops,
                                                   &rv__kafka_broker_ops};

/* Schemes rivulet knows but this library was built without (NULL-terminated; none today). */
static const char *const unbuilt_schemes[] = {NULL};

/* The implementation registered for `scheme` (length `len`); NULL when there is none, with
 * *known telling a scheme this library lacks from one that does not exist. */
static const rv_broker_ops_t *find_ops(const char *scheme, size_t len, bool *known) {
    for (size_t i = 0; i < RV_ARRAY_LEN(registry); i++) {
        if (strlen(registry[i]->scheme) == len && memcmp(scheme, registry[i]->scheme, len) == 0) {
            *known = true;
            return registry[i];
        }
    }
    *known = false;
    for (size_t i = 0; unbuilt_schemes[i]; i++) {
        if (strlen(unbuilt_schemes[i]) == len && memcmp(scheme, unbuilt_schemes[i], len) == 0) {
            *known = true;
        }
    }
    return NULL;
}

/* ---- shared checks and the partitioner ------------------------------------------------------ */

rv_err_t rv__topic_name_check(const char *topic, rv_error_t **err) {
    if (!topic) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "topic name is NULL");
    }
    size_t len = strlen(topic);
    bool ok = len >= 1 && len <= RV__TOPIC_NAME_MAX && strcmp(topic, ".") != 0 &&
              strcmp(topic, "..") != 0;
    for (size_t i = 0; ok && i < len; i++) {
        char c = topic[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    }
    if (ok) {
        return RV_OK;
    }
    char q[96];
    rv__quote(q, sizeof q, topic, len);
    return rv__error_set(err, RV_ERR_INVALID_ARG,
                         "invalid topic name %s (%zu characters): a topic name is 1 to %d "
                         "characters of a-z, A-Z, 0-9, '.', '_' and '-', and not '.' or '..'",
                         q, len, RV__TOPIC_NAME_MAX);
}

int32_t rv__choose_partition(const rv_record_t *rec, int32_t partitions, uint32_t *round_robin) {
    if (partitions < 1) {
        return -1;
    }
    if (rec->partition >= 0) {
        return rec->partition < partitions ? rec->partition : -1;
    }
    if (rec->key) {
        return rv_murmur2_partition(rec->key, rec->key_len, partitions);
    }
    uint32_t n = (*round_robin)++;
    return (int32_t)(n % (uint32_t)partitions);
}

/* Whether `offset` is a concrete offset or one of the logical ones in `allow_stored` mode. */
static bool offset_ok(int64_t offset, bool allow_stored) {
    return offset >= 0 || offset == RV_OFFSET_BEGINNING || offset == RV_OFFSET_END ||
           (allow_stored && offset == RV_OFFSET_STORED);
}

/* Checks an array of topic-partitions: names, partitions >= 0, and optionally offsets. */
static rv_err_t check_tps(const char *what, const rv_topic_partition_t *tps, size_t count,
                          int offsets, rv_error_t **err) {
    if (count > 0 && !tps) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "%s: %zu partitions given but the array is NULL", what, count);
    }
    for (size_t i = 0; i < count; i++) {
        rv_err_t e = rv__topic_name_check(tps[i].topic, err);
        if (e) {
            return rv__error_prefix(err, e, "%s: ", what);
        }
        if (tps[i].partition < 0) {
            return rv__error_set(err, RV_ERR_INVALID_ARG,
                                 "%s: topic '%s' partition %d: a partition number is 0 or more",
                                 what, tps[i].topic, (int)tps[i].partition);
        }
        /* offsets: 0 = not read, 1 = concrete or logical, 2 = concrete only */
        if ((offsets == 1 && !offset_ok(tps[i].offset, true)) ||
            (offsets == 2 && tps[i].offset < 0)) {
            return rv__error_set(err, RV_ERR_INVALID_ARG,
                                 "%s: topic '%s' partition %d: invalid offset %lld", what,
                                 tps[i].topic, (int)tps[i].partition, (long long)tps[i].offset);
        }
    }
    return RV_OK;
}

/* Copies one `kafka.*` pass-through property (given without its prefix) into `opaque`. */
static rv_err_t kafka_passthrough(void *opaque, const char *name, const char *value) {
    char full[256];
    int n = snprintf(full, sizeof full, "kafka.%s", name);
    if (n < 0 || (size_t)n >= sizeof full) {
        return RV_ERR_CONFIG;
    }
    return rv_conf_set(opaque, full, value, NULL);
}

/*
 * Builds the topic configuration handed to the implementation: the topic-scoped properties
 * explicitly set on the broker's configuration (defaults for topics created through it),
 * overridden by those set in `topic_conf`, plus its `kafka.*` pass-through properties. A
 * property of another scope in `topic_conf` is a mistake worth saying.
 */
static rv_err_t effective_topic_conf(const rv_broker_t *b, const char *topic,
                                     const rv_conf_t *topic_conf, rv_conf_t **out,
                                     rv_error_t **err) {
    rv_conf_t *c = rv_conf_new();
    if (!c) {
        return rv__error_set(err, RV_ERR_NOMEM, "topic '%s': out of memory", topic);
    }
    for (size_t i = 0; i < rv_conf_property_count(); i++) {
        const rv_conf_property_t *p = rv_conf_property(i);
        bool topic_scope = strcmp(p->scope, "topic") == 0;
        const rv_conf_t *from = NULL;
        if (topic_conf && rv_conf_is_set(topic_conf, p->name)) {
            if (!topic_scope) {
                rv_conf_destroy(c);
                return rv__error_set(err, RV_ERR_CONFIG,
                                     "topic '%s': configuration property '%s' has scope '%s', "
                                     "not 'topic', so it cannot be set on a topic",
                                     topic, p->name, p->scope);
            }
            from = topic_conf;
        } else if (topic_scope && rv_conf_is_set(b->conf, p->name)) {
            from = b->conf;
        }
        if (from) {
            rv_err_t e = rv_conf_set(c, p->name, rv_conf_get(from, p->name), err);
            if (e) {
                rv_conf_destroy(c);
                return rv__error_prefix(err, e, "topic '%s': ", topic);
            }
        }
    }
    if (topic_conf && rv_conf_foreach_prefixed(topic_conf, "kafka.", kafka_passthrough, c)) {
        rv_conf_destroy(c);
        return rv__error_set(err, RV_ERR_CONFIG, "topic '%s': cannot copy its kafka.* properties",
                             topic);
    }
    *out = c;
    return RV_OK;
}

/* ---- brokers and admin ---------------------------------------------------------------------- */

rv_broker_t *rv_broker_open(const char *url, const rv_broker_opts_t *opts, rv_error_t **err) {
    if (!url) {
        url = RV_BROKER_DEFAULT_URL;
    }
    const char *colon = strchr(url, ':');
    if (!colon || colon == url) {
        char q[96];
        rv__quote(q, sizeof q, url, strlen(url));
        rv__error_set(err, RV_ERR_INVALID_ARG,
                      "broker URL %s has no scheme: expected memory:, local:PATH or "
                      "kafka://host:port",
                      q);
        return NULL;
    }
    bool known;
    size_t scheme_len = (size_t)(colon - url);
    const rv_broker_ops_t *ops = find_ops(url, scheme_len, &known);
    if (!known) {
        char q[96];
        rv__quote(q, sizeof q, url, strlen(url));
        rv__error_set(err, RV_ERR_INVALID_ARG,
                      "broker URL %s: unknown scheme '%.*s': expected memory:, local:PATH or "
                      "kafka://host:port",
                      q, (int)scheme_len, url);
        return NULL;
    }
    if (!ops) {
        rv__error_set(err, RV_ERR_UNSUPPORTED,
                      "broker URL '%s': the '%.*s' broker is not built into this library yet", url,
                      (int)scheme_len, url);
        return NULL;
    }

    rv_broker_t *b = calloc(1, sizeof *b);
    if (!b) {
        rv__error_set(err, RV_ERR_NOMEM, "broker URL '%s': out of memory", url);
        return NULL;
    }
    b->ops = ops;
    b->url = strdup(url);
    b->conf = opts && opts->conf ? rv_conf_dup(opts->conf) : rv_conf_new();
    if (!b->url || !b->conf) {
        free(b->url);
        rv_conf_destroy(b->conf);
        free(b);
        rv__error_set(err, RV_ERR_NOMEM, "broker URL '%s': out of memory", url);
        return NULL;
    }
    b->log.cb = opts ? opts->log_cb : NULL;
    b->log.opaque = opts ? opts->log_opaque : NULL;
    b->log.level = (rv_log_level_t)(RV_LOG_ERROR + rv__conf_int(b->conf, RV_CONF_ID_LOG_LEVEL));

    rv_err_t e = ops->open(b, colon + 1, err);
    if (e) {
        free(b->url);
        rv_conf_destroy(b->conf);
        free(b);
        return NULL;
    }
    return b;
}

void rv_broker_close(rv_broker_t *b) {
    if (!b) {
        return;
    }
    b->ops->close(b);
    free(b->url);
    rv_conf_destroy(b->conf);
    free(b);
}

const char *rv_broker_url(const rv_broker_t *b) {
    return b ? b->url : NULL;
}

rv_err_t rv_broker_create_topic(rv_broker_t *b, const char *topic, int32_t partitions,
                                const rv_conf_t *topic_conf, rv_error_t **err) {
    if (!b) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_broker_create_topic: broker is NULL");
    }
    rv_err_t e = rv__topic_name_check(topic, err);
    if (e) {
        return e;
    }
    if (partitions < 1 || partitions > RV__MAX_PARTITIONS) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "topic '%s': %d partitions asked: a topic has 1 to %d partitions",
                             topic, (int)partitions, RV__MAX_PARTITIONS);
    }
    rv_conf_t *conf = NULL;
    e = effective_topic_conf(b, topic, topic_conf, &conf, err);
    if (e) {
        return e;
    }
    e = b->ops->create_topic(b, topic, partitions, conf, err);
    rv_conf_destroy(conf);
    return e;
}

rv_err_t rv_broker_delete_topic(rv_broker_t *b, const char *topic, rv_error_t **err) {
    if (!b) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_broker_delete_topic: broker is NULL");
    }
    rv_err_t e = rv__topic_name_check(topic, err);
    return e ? e : b->ops->delete_topic(b, topic, err);
}

rv_err_t rv_broker_list_topics(rv_broker_t *b, char ***names, size_t *count, rv_error_t **err) {
    if (!b || !names) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "rv_broker_list_topics: broker and names must not be NULL");
    }
    *names = NULL;
    size_t n = 0;
    rv_err_t e = b->ops->list_topics(b, names, &n, err);
    if (count) {
        *count = e ? 0 : n;
    }
    return e;
}

void rv_strv_free(char **strv) {
    if (!strv) {
        return;
    }
    for (char **s = strv; *s; s++) {
        free(*s);
    }
    free(strv);
}

rv_err_t rv_broker_describe_topic(rv_broker_t *b, const char *topic, int32_t *partitions,
                                  rv_conf_t **topic_conf, rv_error_t **err) {
    if (!b) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_broker_describe_topic: broker is NULL");
    }
    rv_err_t e = rv__topic_name_check(topic, err);
    if (e) {
        return e;
    }
    int32_t n = 0;
    if (topic_conf) {
        *topic_conf = NULL;
    }
    e = b->ops->describe_topic(b, topic, &n, topic_conf, err);
    if (partitions) {
        *partitions = e ? 0 : n;
    }
    return e;
}

rv_err_t rv_broker_watermarks(rv_broker_t *b, const char *topic, int32_t partition, int64_t *low,
                              int64_t *high, rv_error_t **err) {
    if (!b) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_broker_watermarks: broker is NULL");
    }
    rv_err_t e = rv__topic_name_check(topic, err);
    if (e) {
        return e;
    }
    if (partition < 0) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "topic '%s' partition %d: a partition number is 0 or more", topic,
                             (int)partition);
    }
    int64_t lo = 0, hi = 0;
    e = b->ops->watermarks(b, topic, partition, &lo, &hi, err);
    if (low) {
        *low = lo;
    }
    if (high) {
        *high = hi;
    }
    return e;
}

/* ---- producers ------------------------------------------------------------------------------ */

rv_producer_t *rv_producer_new(rv_broker_t *b, const rv_producer_opts_t *opts, rv_error_t **err) {
    if (!b) {
        rv__error_set(err, RV_ERR_INVALID_ARG, "rv_producer_new: broker is NULL");
        return NULL;
    }
    rv_producer_t *p = calloc(1, sizeof *p);
    if (!p) {
        rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory for a producer", b->url);
        return NULL;
    }
    p->broker = b;
    p->conf = rv_conf_dup(opts && opts->conf ? opts->conf : b->conf);
    if (!p->conf) {
        free(p);
        rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory for a producer", b->url);
        return NULL;
    }
    if (opts) {
        p->delivery_cb = opts->delivery_cb;
        p->opaque = opts->opaque;
    }
    if (rv__chunk_producer_new(p, err)) {
        rv_conf_destroy(p->conf);
        free(p);
        return NULL;
    }
    if (b->ops->producer_new(p, err)) {
        rv__chunk_producer_destroy(p);
        rv_conf_destroy(p->conf);
        free(p);
        return NULL;
    }
    return p;
}

rv_err_t rv_producer_send(rv_producer_t *p, const rv_record_t *rec, void *rec_opaque) {
    if (RV_UNLIKELY(!p || !rec || !rec->topic || rec->partition < RV_PARTITION_ANY ||
                    (!rec->key && rec->key_len) || (!rec->value && rec->value_len) ||
                    (!rec->headers && rec->header_count))) {
        return RV_ERR_INVALID_ARG;
    }
    for (size_t i = 0; i < rec->header_count; i++) {
        if (RV_UNLIKELY(!rec->headers[i].name ||
                        (!rec->headers[i].value && rec->headers[i].value_len))) {
            return RV_ERR_INVALID_ARG;
        }
    }
    return rv__chunk_send(p, rec, rec_opaque);
}

int rv_producer_poll(rv_producer_t *p, int timeout_ms) {
    return p ? p->broker->ops->producer_poll(p, timeout_ms) : 0;
}

rv_err_t rv_producer_flush(rv_producer_t *p, int timeout_ms, rv_error_t **err) {
    if (!p) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_producer_flush: producer is NULL");
    }
    return p->broker->ops->flush(p, timeout_ms, err);
}

void rv_producer_close(rv_producer_t *p) {
    if (!p) {
        return;
    }
    p->broker->ops->flush(p, -1, NULL);
    p->broker->ops->producer_destroy(p);
    rv__chunk_producer_destroy(p);
    rv_conf_destroy(p->conf);
    free(p);
}

/* ---- consumers ------------------------------------------------------------------------------ */

rv_consumer_t *rv_consumer_new(rv_broker_t *b, const rv_consumer_opts_t *opts, rv_error_t **err) {
    if (!b) {
        rv__error_set(err, RV_ERR_INVALID_ARG, "rv_consumer_new: broker is NULL");
        return NULL;
    }
    if (opts && opts->group && !opts->group[0]) {
        rv__error_set(err, RV_ERR_INVALID_ARG,
                      "broker '%s': a consumer group name must not be empty (use NULL for no "
                      "group)",
                      b->url);
        return NULL;
    }
    rv_consumer_t *c = calloc(1, sizeof *c);
    if (!c) {
        rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory for a consumer", b->url);
        return NULL;
    }
    c->broker = b;
    c->conf = rv_conf_dup(opts && opts->conf ? opts->conf : b->conf);
    c->group = opts && opts->group ? strdup(opts->group) : NULL;
    if (!c->conf || (opts && opts->group && !c->group)) {
        rv_conf_destroy(c->conf);
        free(c->group);
        free(c);
        rv__error_set(err, RV_ERR_NOMEM, "broker '%s': out of memory for a consumer", b->url);
        return NULL;
    }
    if (opts) {
        c->callbacks = opts->callbacks;
    }
    if (rv__chunk_consumer_new(c, err)) {
        rv_conf_destroy(c->conf);
        free(c->group);
        free(c);
        return NULL;
    }
    if (b->ops->consumer_new(c, err)) {
        rv__chunk_consumer_destroy(c);
        rv_conf_destroy(c->conf);
        free(c->group);
        free(c);
        return NULL;
    }
    return c;
}

rv_err_t rv_consumer_subscribe(rv_consumer_t *c, const char *const *topics, size_t count,
                               rv_error_t **err) {
    if (!c || (!topics && count)) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "rv_consumer_subscribe: consumer and topics must not be NULL");
    }
    if (!c->group) {
        return rv__error_set(err, RV_ERR_STATE,
                             "cannot subscribe without a consumer group: give a group in the "
                             "consumer options, or assign partitions with rv_consumer_assign()");
    }
    if (count == 0) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "group '%s': subscribe needs at least one topic", c->group);
    }
    for (size_t i = 0; i < count; i++) {
        rv_err_t e = rv__topic_name_check(topics[i], err);
        if (e) {
            return rv__error_prefix(err, e, "group '%s': subscribe: ", c->group);
        }
    }
    return c->broker->ops->subscribe(c, topics, count, err);
}

rv_err_t rv_consumer_assign(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                            rv_error_t **err) {
    if (!c) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_consumer_assign: consumer is NULL");
    }
    rv_err_t e = check_tps("assign", tps, count, 1, err);
    if (e) {
        return e;
    }
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < i; j++) {
            if (tps[i].partition == tps[j].partition && strcmp(tps[i].topic, tps[j].topic) == 0) {
                return rv__error_set(err, RV_ERR_INVALID_ARG,
                                     "assign: topic '%s' partition %d is listed twice",
                                     tps[i].topic, (int)tps[i].partition);
            }
        }
    }
    e = c->broker->ops->assign(c, tps, count, err);
    if (e == RV_OK) {
        rv__chunk_assigned(c, tps, count);
    }
    return e;
}

rv_err_t rv_consumer_poll(rv_consumer_t *c, const rv_record_t **records, size_t max, size_t *count,
                          int timeout_ms, rv_error_t **err) {
    if (count) {
        *count = 0;
    }
    if (RV_UNLIKELY(!c || !records || !count || max == 0)) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "rv_consumer_poll: consumer, records and count must not be NULL, "
                             "and max must be at least 1");
    }
    *records = NULL;
    return rv__chunk_poll(c, records, max, count, timeout_ms, err);
}

rv_err_t rv_consumer_commit(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                            rv_error_t **err) {
    if (!c) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_consumer_commit: consumer is NULL");
    }
    if (!c->group) {
        return rv__error_set(err, RV_ERR_STATE, "cannot commit offsets: the consumer has no group");
    }
    rv_err_t e = tps ? check_tps("commit", tps, count, 2, err) : RV_OK;
    return e ? e : rv__chunk_commit(c, tps, tps ? count : 0, err);
}

rv_err_t rv_consumer_committed(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                               rv_error_t **err) {
    if (!c) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_consumer_committed: consumer is NULL");
    }
    if (!c->group) {
        return rv__error_set(err, RV_ERR_STATE,
                             "cannot read committed offsets: the consumer has no group");
    }
    rv_err_t e = check_tps("committed", tps, count, 0, err);
    return e ? e : c->broker->ops->committed(c, tps, count, err);
}

rv_err_t rv_consumer_position(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                              rv_error_t **err) {
    if (!c) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_consumer_position: consumer is NULL");
    }
    rv_err_t e = check_tps("position", tps, count, 0, err);
    return e ? e : c->broker->ops->position(c, tps, count, err);
}

rv_err_t rv_consumer_seek(rv_consumer_t *c, const char *topic, int32_t partition, int64_t offset,
                          rv_error_t **err) {
    if (!c) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_consumer_seek: consumer is NULL");
    }
    rv_topic_partition_t tp = {topic, partition, offset};
    rv_err_t e = check_tps("seek", &tp, 1, 0, err);
    if (e) {
        return e;
    }
    if (!offset_ok(offset, false)) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "seek: topic '%s' partition %d: invalid offset %lld (an offset, "
                             "RV_OFFSET_BEGINNING or RV_OFFSET_END)",
                             topic, (int)partition, (long long)offset);
    }
    e = c->broker->ops->seek(c, topic, partition, offset, err);
    if (e == RV_OK) {
        rv__chunk_sought(c, topic, partition);
    }
    return e;
}

rv_err_t rv_consumer_offsets_for_times(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                                       rv_error_t **err) {
    if (!c) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "rv_consumer_offsets_for_times: consumer is NULL");
    }
    rv_err_t e = check_tps("offsets_for_times", tps, count, 0, err);
    if (e) {
        return e;
    }
    for (size_t i = 0; i < count; i++) {
        if (tps[i].offset < 0) {
            return rv__error_set(err, RV_ERR_INVALID_ARG,
                                 "offsets_for_times: topic '%s' partition %d: invalid timestamp "
                                 "%lld (milliseconds since the epoch, 0 or more)",
                                 tps[i].topic, (int)tps[i].partition, (long long)tps[i].offset);
        }
    }
    return c->broker->ops->offsets_for_times(c, tps, count, err);
}

rv_err_t rv_consumer_pause(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                           rv_error_t **err) {
    if (!c) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_consumer_pause: consumer is NULL");
    }
    rv_err_t e = check_tps("pause", tps, count, 0, err);
    return e ? e : c->broker->ops->pause(c, tps, count, true, err);
}

rv_err_t rv_consumer_resume(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                            rv_error_t **err) {
    if (!c) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_consumer_resume: consumer is NULL");
    }
    rv_err_t e = check_tps("resume", tps, count, 0, err);
    return e ? e : c->broker->ops->pause(c, tps, count, false, err);
}

void rv_consumer_close(rv_consumer_t *c) {
    if (!c) {
        return;
    }
    c->broker->ops->consumer_destroy(c);
    rv__chunk_consumer_destroy(c);
    rv_conf_destroy(c->conf);
    free(c->group);
    free(c);
}

/* ---- transactions --------------------------------------------------------------------------- */

/* Checks the producer and that its broker has transactions; RV_OK to go on. */
static rv_err_t txn_check(const rv_producer_t *p, const char *what, bool has_op,
                          rv_error_t **err) {
    if (!p) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "%s: producer is NULL", what);
    }
    if (!has_op) {
        return rv__error_set(err, RV_ERR_UNSUPPORTED,
                             "broker '%s': %s: the '%s' broker has no transactions", p->broker->url,
                             what, p->broker->ops->scheme);
    }
    return RV_OK;
}

rv_err_t rv_producer_begin_transaction(rv_producer_t *p, rv_error_t **err) {
    rv_err_t e = txn_check(p, "begin transaction", p && p->broker->ops->begin_transaction, err);
    return e ? e : p->broker->ops->begin_transaction(p, err);
}

rv_err_t rv_producer_send_offsets_to_transaction(rv_producer_t *p, rv_consumer_t *c,
                                                 const rv_topic_partition_t *tps, size_t count,
                                                 int timeout_ms, rv_error_t **err) {
    rv_err_t e = txn_check(p, "send offsets to transaction",
                           p && p->broker->ops->send_offsets_to_transaction, err);
    if (e) {
        return e;
    }
    if (!c) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "send offsets to transaction: consumer "
                                                      "is NULL");
    }
    e = tps ? check_tps("send offsets to transaction", tps, count, 2, err) : RV_OK;
    if (e) {
        return e;
    }
    /* Offsets past a split value still being reassembled are lowered to its first chunk, as a
     * commit's are, so a consumer resuming from the transaction reads all of the value. */
    rv_topic_partition_t *capped = NULL;
    size_t ncapped = 0;
    e = rv__chunk_capped_offsets(c, tps, tps ? count : 0, &capped, &ncapped, err);
    if (e) {
        return e;
    }
    e = capped ? p->broker->ops->send_offsets_to_transaction(p, c, capped, ncapped, timeout_ms, err)
               : p->broker->ops->send_offsets_to_transaction(p, c, tps, tps ? count : 0,
                                                             timeout_ms, err);
    free(capped);
    return e;
}

rv_err_t rv_producer_commit_transaction(rv_producer_t *p, int timeout_ms, rv_error_t **err) {
    rv_err_t e = txn_check(p, "commit transaction", p && p->broker->ops->commit_transaction, err);
    return e ? e : p->broker->ops->commit_transaction(p, timeout_ms, err);
}

rv_err_t rv_producer_abort_transaction(rv_producer_t *p, int timeout_ms, rv_error_t **err) {
    rv_err_t e = txn_check(p, "abort transaction", p && p->broker->ops->abort_transaction, err);
    return e ? e : p->broker->ops->abort_transaction(p, timeout_ms, err);
}
