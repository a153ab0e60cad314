/*
 * app.c: the application object: its configuration, broker, topics, graph and metrics.
 *
 * rv_app_new() reads the application's properties once (commit.interval.ms, commit.every,
 * processing.guarantee, processing.error.policy, dead.letter.topic, app.threads, state.dir) and
 * opens the broker; rv_app_topic() declares topics with their serialisers; the graph itself is
 * built by src/stream. Topics are made to exist on the broker here (created when missing, with
 * the partitions and properties they were declared with), at the start of a run or, for topics
 * named by to_topic_fn, on first use. This file must never process records: that is worker.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app_int.h"
#include "broker/broker_int.h"

/* ---- topics --------------------------------------------------------------------------------- */

static rv_topic_t *find_topic(rv_app_t *app, const char *name, size_t len) {
    for (size_t i = 0; i < app->ntopics; i++) {
        rv_topic_t *t = app->topics[i];
        if (strlen(t->name) == len && memcmp(t->name, name, len) == 0) {
            return t;
        }
    }
    return NULL;
}

static void topic_free(rv_topic_t *t) {
    if (t) {
        free(t->name);
        rv_conf_destroy(t->topic_conf);
        free(t->roots);
        free(t);
    }
}

/* Resolves a serialiser name (NULL = `def`); RV_ERR_CONFIG naming the known ones. */
static rv_err_t serde_of(const char *name, const char *def, const char *what, const char *topic,
                         const rv__serde_t **out, rv_error_t **err) {
    const rv__serde_t *s = rv__serde_find(name ? name : def);
    if (!s) {
        return rv__error_set(err, RV_ERR_CONFIG,
                             "topic '%s': unknown %s serialiser '%s'; the serialisers are %s",
                             topic, what, name, rv__serde_names());
    }
    *out = s;
    return RV_OK;
}

/* Declares a new topic (the caller holds app->mu or is building). */
static rv_topic_t *topic_new(rv_app_t *app, const char *name, size_t len,
                             const rv_topic_opts_t *opts, int kind, rv_error_t **err) {
    rv_topic_opts_t o = opts ? *opts : (rv_topic_opts_t){0};
    rv_topic_t *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strndup(name, len))) {
        free(t);
        rv__error_set(err, RV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    t->app = app;
    t->kind = kind;
    t->input_index = -1;
    if (rv__topic_name_check(t->name, err) != RV_OK ||
        serde_of(o.key_serde, "bytes", "key", t->name, &t->key_serde, err) != RV_OK ||
        serde_of(o.value_serde, "json", "value", t->name, &t->value_serde, err) != RV_OK) {
        topic_free(t);
        return NULL;
    }
    if (o.partitions < 0) {
        rv__error_set(err, RV_ERR_INVALID_ARG, "topic '%s': %d partitions", t->name,
                      (int)o.partitions);
        topic_free(t);
        return NULL;
    }
    t->partitions = o.partitions;
    t->timestamp_fn = o.timestamp_fn;
    t->timestamp_opaque = o.timestamp_opaque;
    if (o.topic_conf && !(t->topic_conf = rv_conf_dup(o.topic_conf))) {
        rv__error_set(err, RV_ERR_NOMEM, "out of memory");
        topic_free(t);
        return NULL;
    }
    if (app->ntopics == app->topics_cap) {
        size_t cap = app->topics_cap ? app->topics_cap * 2 : 8;
        rv_topic_t **v = realloc(app->topics, cap * sizeof *v);
        if (!v) {
            rv__error_set(err, RV_ERR_NOMEM, "out of memory");
            topic_free(t);
            return NULL;
        }
        app->topics = v;
        app->topics_cap = cap;
    }
    app->topics[app->ntopics++] = t;
    return t;
}

rv_topic_t *rv_app_topic(rv_app_t *app, const char *name, const rv_topic_opts_t *opts,
                         rv_error_t **err) {
    if (!app || !name) {
        rv__error_set(err, RV_ERR_INVALID_ARG, "rv_app_topic: %s is NULL",
                      app ? "the name" : "the application");
        return NULL;
    }
    pthread_mutex_lock(&app->mu);
    rv_topic_t *t = find_topic(app, name, strlen(name));
    if (t) {
        const rv__serde_t *ks = t->key_serde, *vs = t->value_serde;
        if (opts && (serde_of(opts->key_serde, "bytes", "key", name, &ks, err) != RV_OK ||
                     serde_of(opts->value_serde, "json", "value", name, &vs, err) != RV_OK)) {
            t = NULL;
        } else if (opts && (ks != t->key_serde || vs != t->value_serde ||
                            (opts->partitions && opts->partitions != t->partitions))) {
            rv__error_set(err, RV_ERR_CONFIG,
                          "topic '%s' is declared again with other options (key %s, value %s, "
                          "%d partitions; first declared with key %s, value %s, %d partitions)",
                          name, ks->name, vs->name, (int)opts->partitions, t->key_serde->name,
                          t->value_serde->name, (int)t->partitions);
            t = NULL;
        }
    } else {
        t = topic_new(app, name, strlen(name), opts, 0, err);
    }
    pthread_mutex_unlock(&app->mu);
    return t;
}

const char *rv_topic_name(const rv_topic_t *topic) {
    return topic ? topic->name : NULL;
}

rv_err_t rv__app_topic_ensure(rv_app_t *app, rv_topic_t *t, int32_t partitions, rv_error_t **err) {
    int32_t n = 0;
    rv_error_t *missing = NULL;
    rv_err_t e = rv_broker_describe_topic(app->broker, t->name, &n, NULL, &missing);
    if (e != RV_ERR_NOT_FOUND && e != RV_OK && err) {
        rv_error_destroy(*err);
        *err = missing;
        missing = NULL;
    }
    rv_error_destroy(missing);
    if (e == RV_ERR_NOT_FOUND) {
        e = rv_broker_create_topic(app->broker, t->name, partitions > 0 ? partitions : 1,
                                   t->topic_conf, err);
        if (e == RV_OK || e == RV_ERR_EXISTS) {
            if (e == RV_OK) {
                rv__log(&app->log, RV_LOG_INFO, "app", "created topic '%s' with %d partitions",
                        t->name, (int)(partitions > 0 ? partitions : 1));
            }
            e = rv_broker_describe_topic(app->broker, t->name, &n, NULL, err);
        }
    }
    if (e != RV_OK) {
        return rv__error_prefix(err, e, "application '%s': topic '%s': ", app->group, t->name);
    }
    if (partitions > 0 && n != partitions && (t->kind & RV__TOPIC_REPARTITION)) {
        rv__log(&app->log, RV_LOG_WARNING, "app",
                "repartition topic '%s' has %d partitions, its source %d: keys keep their "
                "partition within it, but not the source's numbering",
                t->name, (int)n, (int)partitions);
    }
    t->actual_partitions = n;
    t->ready = true;
    return RV_OK;
}

rv_err_t rv__app_topic_at_run(rv_app_t *app, const char *name, size_t len,
                              const rv_topic_opts_t *opts, rv_topic_t **out, char *why,
                              size_t why_size) {
    rv_error_t *err = NULL;
    rv_err_t e = RV_OK;
    pthread_mutex_lock(&app->mu);
    rv_topic_t *t = find_topic(app, name, len);
    if (!t) {
        t = topic_new(app, name, len, opts, RV__TOPIC_OUTPUT | RV__TOPIC_DYNAMIC, &err);
        e = t ? RV_OK : rv_error_code(err);
    }
    if (t && !t->ready) {
        e = rv__app_topic_ensure(app, t, t->partitions, &err);
    }
    pthread_mutex_unlock(&app->mu);
    if (e != RV_OK) {
        snprintf(why, why_size, "%s", rv_error_message(err));
        rv_error_destroy(err);
        return e;
    }
    *out = t;
    return RV_OK;
}

rv_topic_t *rv__app_repartition_topic(void *opaque, rv_topic_t *source, const char *name,
                                      rv_error_t **err) {
    rv_app_t *app = opaque;
    char tn[512];
    int w = snprintf(tn, sizeof tn, "%s--repartition--%s--%s", app->group, source->name, name);
    if (w < 0 || (size_t)w >= sizeof tn) {
        rv__error_set(err, RV_ERR_INVALID_ARG, "the repartition topic's name is too long");
        return NULL;
    }
    pthread_mutex_lock(&app->mu);
    rv_topic_t *t = find_topic(app, tn, strlen(tn));
    if (t) {
        rv__error_set(err, RV_ERR_EXISTS, "topic '%s' is already declared", tn);
        t = NULL;
    } else {
        rv_topic_opts_t o = {.key_serde = "json", .value_serde = "json"};
        t = topic_new(app, tn, strlen(tn), &o, RV__TOPIC_REPARTITION, err);
        if (t) {
            t->repartition_of = source;
        }
    }
    pthread_mutex_unlock(&app->mu);
    return t;
}

rv_err_t rv__app_changelogs(rv_app_t *app, rv_error_t **err) {
    rv__graph_t *g = app->graph;
    for (size_t i = 0; i < g->nstores; i++) {
        rv__store_decl_t *sd = g->stores[i];
        rv_topic_t *src = sd->topic;
        char tn[512];
        int w = snprintf(tn, sizeof tn, "%s--changelog--%s--%s", app->group, src->name, sd->name);
        if (w < 0 || (size_t)w > 249) {
            return rv__error_set(err, RV_ERR_INVALID_ARG,
                                 "application '%s': store '%s': its changelog topic name "
                                 "'%s' is longer than 249 characters (shorten the group, topic "
                                 "or store name)",
                                 app->group, sd->name, tn);
        }
        pthread_mutex_lock(&app->mu);
        rv_topic_t *t = find_topic(app, tn, strlen(tn));
        if (!t) {
            rv_topic_opts_t o = {.key_serde = "bytes", .value_serde = "bytes"};
            t = topic_new(app, tn, strlen(tn), &o, RV__TOPIC_CHANGELOG, err);
            if (t && !(t->topic_conf = rv_conf_new())) {
                t = NULL;
                rv__error_set(err, RV_ERR_NOMEM, "out of memory");
            }
            if (t && rv_conf_set(t->topic_conf, "cleanup.policy", "compact", err) != RV_OK) {
                t = NULL;
            }
        }
        pthread_mutex_unlock(&app->mu);
        if (!t) {
            return rv__error_prefix(err, RV_ERR_NOMEM, "application '%s': store '%s': ", app->group,
                                    sd->name);
        }
        rv_err_t e = t->ready ? RV_OK : rv__app_topic_ensure(app, t, src->actual_partitions, err);
        if (e != RV_OK) {
            return e;
        }
        if (t->actual_partitions < src->actual_partitions) {
            return rv__error_set(err, RV_ERR_STATE,
                                 "application '%s': store '%s': changelog topic '%s' has %d "
                                 "partitions but topic '%s' has %d; a store needs one changelog "
                                 "partition per partition",
                                 app->group, sd->name, tn, (int)t->actual_partitions, src->name,
                                 (int)src->actual_partitions);
        }
        free(sd->changelog);
        if (!(sd->changelog = strdup(tn))) {
            return rv__error_set(err, RV_ERR_NOMEM, "out of memory");
        }
    }
    return RV_OK;
}

/* ---- the application ------------------------------------------------------------------------ */

rv_df_t *rv_app_dataframe(rv_app_t *app, rv_topic_t *source) {
    if (!app) {
        return NULL;
    }
    if (source && source->app != app) {
        rv__graph_fail(app->graph, RV_ERR_INVALID_ARG, "rv_app_dataframe",
                       "the source topic belongs to another application");
        return NULL;
    }
    return rv__graph_source(app->graph, source);
}

/* Appends one rocksdb.* property to the options string. */
static rv_err_t add_rocksdb_opt(void *opaque, const char *name, const char *value) {
    rv_strbuf_t *sb = opaque;
    if (rv_strbuf_append(sb, name, strlen(name)) != RV_OK ||
        rv_strbuf_append(sb, "=", 1) != RV_OK ||
        rv_strbuf_append(sb, value, strlen(value)) != RV_OK ||
        rv_strbuf_append(sb, ";", 1) != RV_OK) {
        return RV_ERR_NOMEM;
    }
    return RV_OK;
}

/* Collects and checks the rocksdb.* properties, which every state store opens with. */
static rv_err_t rocksdb_opts_read(rv_app_t *app, rv_error_t **err) {
    rv_strbuf_t sb = {0};
    rv_err_t e = rv_conf_foreach_prefixed(app->conf, "rocksdb.", add_rocksdb_opt, &sb);
    if (e == RV_OK && sb.len) {
        e = rv__store_check_options(sb.data, err);
        if (e == RV_OK && !(app->rocksdb_opts = strdup(sb.data))) {
            e = RV_ERR_NOMEM;
        }
    }
    rv_strbuf_free(&sb);
    if (e == RV_ERR_NOMEM) {
        rv__error_set(err, e, "out of memory");
    }
    return e == RV_OK ? RV_OK : rv__error_prefix(err, e, "application '%s': ", app->group);
}

/*
 * Checks that exactly-once can hold on the application's broker: it must have transactions
 * (its workers' producers are transactional) and its consumers must read committed records
 * only (kafka.isolation.level stays read_committed, librdkafka's default).
 */
static rv_err_t eos_check(rv_app_t *app, rv_error_t **err) {
    if (!app->broker->ops->begin_transaction) {
        return rv__error_set(err, RV_ERR_UNSUPPORTED,
                             "application '%s': processing.guarantee=exactly-once needs a broker "
                             "with transactions, and '%s' has none; use at-least-once there",
                             app->group, rv_broker_url(app->broker));
    }
    const char *iso = rv_conf_get(app->conf, "kafka.isolation.level");
    if (iso && strcmp(iso, "read_committed") != 0) {
        return rv__error_set(err, RV_ERR_CONFIG,
                             "application '%s': processing.guarantee=exactly-once reads committed "
                             "records only: kafka.isolation.level=%s is not allowed with it",
                             app->group, iso);
    }
    return RV_OK;
}

rv_app_t *rv_app_new(const rv_app_opts_t *opts, rv_error_t **err) {
    if (!opts || !opts->group || !*opts->group) {
        rv__error_set(err, RV_ERR_INVALID_ARG, "rv_app_new: the consumer group is %s",
                      !opts         ? "missing (no options)"
                      : opts->group ? "empty"
                                    : "NULL");
        return NULL;
    }
    rv_app_t *app = calloc(1, sizeof *app);
    if (!app) {
        rv__error_set(err, RV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&app->mu, NULL) != 0) {
        free(app);
        rv__error_set(err, RV_ERR_NOMEM, "cannot make a mutex");
        return NULL;
    }
    app->conf = opts->conf ? rv_conf_dup(opts->conf) : rv_conf_new();
    app->group = strdup(opts->group);
    app->graph = rv__graph_new(&rv__app_host, app);
    if (!app->conf || !app->group || !app->graph) {
        rv__error_set(err, RV_ERR_NOMEM, "out of memory");
        rv_app_destroy(app);
        return NULL;
    }
    app->log_cb = opts->log_cb;
    app->log_opaque = opts->log_opaque;
    app->on_error = opts->on_error;
    app->error_opaque = opts->error_opaque;
    app->log = (rv_logger_t){
        .cb = opts->log_cb,
        .opaque = opts->log_opaque,
        .level = (rv_log_level_t)(RV_LOG_ERROR + rv__conf_int(app->conf, RV_CONF_ID_LOG_LEVEL))};
    app->commit_interval_ms = rv__conf_int(app->conf, RV_CONF_ID_COMMIT_INTERVAL_MS);
    app->commit_every = rv__conf_int(app->conf, RV_CONF_ID_COMMIT_EVERY);
    app->policy = (rv__policy_t)rv__conf_int(app->conf, RV_CONF_ID_PROCESSING_ERROR_POLICY);
    app->threads = (int)rv__conf_int(app->conf, RV_CONF_ID_APP_THREADS);
    app->json_max_depth = (int)rv__conf_int(app->conf, RV_CONF_ID_JSON_MAX_DEPTH);
    app->state_lock_timeout_ms = rv__conf_int(app->conf, RV_CONF_ID_STATE_LOCK_TIMEOUT_MS);
    app->state_buffer_max = rv__conf_int(app->conf, RV_CONF_ID_STATE_BUFFER_MAX_BYTES);
    app->eos = rv__conf_int(app->conf, RV_CONF_ID_PROCESSING_GUARANTEE) != 0;
    if (app->eos) {
        /* The workers' transactional ids: "<prefix>-<worker>", the prefix being the
         * transactional.id property when set, else the group (see eos_check()). */
        const char *tid = rv__conf_str(app->conf, RV_CONF_ID_TRANSACTIONAL_ID);
        app->txn_prefix = strdup(tid && *tid ? tid : app->group);
        if (!app->txn_prefix) {
            rv__error_set(err, RV_ERR_NOMEM, "out of memory");
            rv_app_destroy(app);
            return NULL;
        }
    }
    const char *sd = rv__conf_str(app->conf, RV_CONF_ID_STATE_DIR);
    if (!sd || !*sd) {
        rv__error_set(err, RV_ERR_CONFIG, "application '%s': state.dir is empty", app->group);
        rv_app_destroy(app);
        return NULL;
    }
    const char *dl = rv__conf_str(app->conf, RV_CONF_ID_DEAD_LETTER_TOPIC);
    char dlbuf[512];
    if (!dl || !*dl) {
        snprintf(dlbuf, sizeof dlbuf, "%s--dead-letter", app->group);
        dl = dlbuf;
    }
    if (rocksdb_opts_read(app, err) != RV_OK) {
        rv_app_destroy(app);
        return NULL;
    }
    app->state_dir = strdup(sd);
    app->dead_letter_name = strdup(dl);
    if (!app->state_dir || !app->dead_letter_name) {
        rv__error_set(err, RV_ERR_NOMEM, "out of memory");
        rv_app_destroy(app);
        return NULL;
    }
    if (app->policy == RV__POLICY_DEAD_LETTER &&
        rv__topic_name_check(app->dead_letter_name, err) != RV_OK) {
        rv__error_prefix(err, RV_ERR_CONFIG, "application '%s': dead.letter.topic: ", app->group);
        rv_app_destroy(app);
        return NULL;
    }
    rv_broker_opts_t bo = {
        .conf = app->conf, .log_cb = opts->log_cb, .log_opaque = opts->log_opaque};
    app->broker = rv_broker_open(opts->broker_url, &bo, err);
    if (!app->broker) {
        rv__error_prefix(err, RV_ERR_IO, "application '%s': ", app->group);
        rv_app_destroy(app);
        return NULL;
    }
    if (app->eos && eos_check(app, err) != RV_OK) {
        rv_app_destroy(app);
        return NULL;
    }
    return app;
}

void rv_app_destroy(rv_app_t *app) {
    if (!app) {
        return;
    }
    rv__graph_destroy(app->graph);
    for (size_t i = 0; i < app->ntopics; i++) {
        topic_free(app->topics[i]);
    }
    free(app->topics);
    rv_broker_close(app->broker);
    rv_conf_destroy(app->conf);
    rv_error_destroy(app->run_err);
    free(app->group);
    free(app->state_dir);
    free(app->rocksdb_opts);
    free(app->dead_letter_name);
    free(app->txn_prefix);
    pthread_mutex_destroy(&app->mu);
    free(app);
}

rv_broker_t *rv_app_broker(rv_app_t *app) {
    return app ? app->broker : NULL;
}

void rv_app_stop(rv_app_t *app) {
    if (app) {
        atomic_store(&app->stop, 1);
    }
}

/* ---- metrics -------------------------------------------------------------------------------- */

static int64_t get(const _Atomic int64_t *c) {
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void add_counters(rv_app_metrics_t *m, const rv__counters_t *c) {
    m->records_in += get(&c->records_in);
    m->records_out += get(&c->records_out);
    m->records_sunk += get(&c->records_sunk);
    m->records_filtered += get(&c->records_filtered);
    m->errors += get(&c->errors);
    m->skipped += get(&c->skipped);
    m->dead_lettered += get(&c->dead_lettered);
    m->checkpoints += get(&c->checkpoints);
    m->state_restored += get(&c->state_restored);
    m->txn_commits += get(&c->txn_commits);
    m->txn_aborts += get(&c->txn_aborts);
}

void rv_app_metrics(rv_app_t *app, rv_app_metrics_t *out) {
    if (!out) {
        return;
    }
    memset(out, 0, sizeof *out);
    if (!app) {
        return;
    }
    pthread_mutex_lock(&app->mu);
    add_counters(out, &app->totals);
    out->lag = get(&app->totals.lag);
    out->state_stores = get(&app->totals.state_stores);
    out->state_bytes = get(&app->totals.state_bytes);
    if (app->workers) {
        out->lag = 0;
        out->state_stores = 0;
        out->state_bytes = 0;
        for (int i = 0; i < app->nworkers; i++) {
            add_counters(out, &app->workers[i].counters);
            out->lag += get(&app->workers[i].counters.lag);
            out->state_stores += get(&app->workers[i].counters.state_stores);
            out->state_bytes += get(&app->workers[i].counters.state_bytes);
        }
    }
    pthread_mutex_unlock(&app->mu);
    out->checkpoint_last_us = get(&app->checkpoint_last_us);
    out->checkpoint_max_us = get(&app->checkpoint_max_us);
}
