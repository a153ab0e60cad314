/*
 * run.c: one run of an application: preparing topics, starting the workers, stop conditions and
 * signals.
 *
 * rv_app_run() makes every declared topic exist (sources and destinations with the partitions
 * they were declared with, repartition topics with their source's partition count, the
 * dead-letter topic under that policy), finds each input topic's dataframes, starts app.threads
 * workers (worker 0 in the calling thread) and waits for them. A run stops when asked
 * (rv_app_stop(), a signal), at a limit (count, timeout, until_end), or at the first error that
 * the policy says stops it; every worker then checkpoints what it processed and leaves the
 * group. This file must never process a record or commit an offset: workers do.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app_int.h"
#include "rivulet/clock.h"

void rv__app_fail(rv_app_t *app, rv_error_t *err) {
    pthread_mutex_lock(&app->mu);
    if (!app->run_err) {
        app->run_err = err;
        err = NULL;
    }
    pthread_mutex_unlock(&app->mu);
    rv_error_destroy(err);
    atomic_store(&app->stop, 1);
}

/* ---- signals -------------------------------------------------------------------------------- */

static _Atomic(rv_app_t *) sig_app;
static volatile sig_atomic_t sig_count;
static struct sigaction sig_old_int, sig_old_term;

/* The first SIGINT or SIGTERM stops the run gracefully; the second stops the process at once. */
static void on_signal(int sig) {
    rv_app_t *app = atomic_load(&sig_app);
    if (!app) {
        return;
    }
    if (++sig_count >= 2) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    rv_app_stop(app);
}

static rv_err_t signals_install(rv_app_t *app, rv_error_t **err) {
    rv_app_t *none = NULL;
    if (!atomic_compare_exchange_strong(&sig_app, &none, app)) {
        return rv__error_set(err, RV_ERR_STATE,
                             "application '%s': another application of this process handles "
                             "the signals",
                             app->group);
    }
    sig_count = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &sig_old_int);
    sigaction(SIGTERM, &sa, &sig_old_term);
    return RV_OK;
}

static void signals_restore(void) {
    sigaction(SIGINT, &sig_old_int, NULL);
    sigaction(SIGTERM, &sig_old_term, NULL);
    atomic_store(&sig_app, NULL);
}

/* ---- preparing ------------------------------------------------------------------------------ */

/* Makes every topic exist and finds the dataframes of each input. */
static rv_err_t prepare(rv_app_t *app, rv_error_t **err) {
    const rv_error_t *be = rv__graph_error(app->graph);
    if (be) {
        return rv__error_set(err, rv_error_code(be), "application '%s': %s", app->group,
                             rv_error_message(be));
    }
    for (size_t i = 0; i < app->graph->n; i++) {
        const rv_df_t *d = app->graph->nodes[i];
        if (d->dest && d->dest->app != app) {
            return rv__error_set(err, RV_ERR_INVALID_ARG,
                                 "application '%s': building the dataframe graph: operator #%d "
                                 "%s: the topic belongs to another application",
                                 app->group, d->id, d->desc);
        }
    }
    if (app->policy == RV__POLICY_DEAD_LETTER && !app->dead_letter) {
        rv_topic_opts_t o = {.key_serde = "bytes", .value_serde = "bytes"};
        app->dead_letter = rv_app_topic(app, app->dead_letter_name, &o, err);
        if (!app->dead_letter) {
            return rv__error_prefix(err, RV_ERR_CONFIG,
                                    "application '%s': dead.letter.topic: ", app->group);
        }
        app->dead_letter->kind |= RV__TOPIC_DEAD_LETTER;
    }
    int inputs = 0;
    int32_t widest = 1;
    /* Sources and destinations first, so repartition topics can copy their source's count. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < app->ntopics; i++) {
            rv_topic_t *t = app->topics[i];
            bool rep = (t->kind & RV__TOPIC_REPARTITION) != 0;
            if (rep != (pass == 1) || t == app->dead_letter) {
                continue;
            }
            int32_t want = t->partitions;
            if (rep) {
                want = t->repartition_of->actual_partitions;
            }
            rv_err_t e = rv__app_topic_ensure(app, t, want, err);
            if (e != RV_OK) {
                return e;
            }
            size_t n = rv__graph_roots(app->graph, t, NULL, 0);
            free(t->roots);
            t->roots = NULL;
            t->nroots = 0;
            t->input_index = -1;
            if (n) {
                t->roots = malloc(n * sizeof *t->roots);
                if (!t->roots) {
                    return rv__error_set(err, RV_ERR_NOMEM, "out of memory");
                }
                t->nroots = rv__graph_roots(app->graph, t, t->roots, n);
                t->kind |= RV__TOPIC_INPUT;
                t->input_index = inputs++;
                if (t->actual_partitions > widest) {
                    widest = t->actual_partitions;
                }
            }
        }
    }
    if (inputs == 0) {
        return rv__error_set(err, RV_ERR_STATE,
                             "application '%s': no dataframe reads a topic (see "
                             "rv_app_dataframe())",
                             app->group);
    }
    if (app->dead_letter && !app->dead_letter->ready) {
        rv_err_t e = rv__app_topic_ensure(app, app->dead_letter, widest, err);
        if (e != RV_OK) {
            return e;
        }
    }
    rv_err_t ce = rv__app_changelogs(app, err);
    if (ce != RV_OK) {
        return ce;
    }
    app->input_partitions = 0;
    for (size_t i = 0; i < app->ntopics; i++) {
        if (app->topics[i]->input_index >= 0) {
            app->input_partitions += app->topics[i]->actual_partitions;
        }
    }
    return RV_OK;
}

/* ---- the run -------------------------------------------------------------------------------- */

static void workers_free(rv__worker_t *ws, int n) {
    for (int i = 0; ws && i < n; i++) {
        rv__worker_t *w = &ws[i];
        rv_arena_destroy(w->arena);
        rv_strbuf_free(&w->key_buf);
        rv_strbuf_free(&w->value_buf);
        rv_strbuf_free(&w->ctx.text);
        for (int32_t j = 0; w->parts && j < (int32_t)w->nparts_topics; j++) {
            free(w->parts[j]);
        }
        free(w->parts);
        free(w->nparts);
        free(w->inputs);
        free(w->commit_buf);
    }
    free(ws);
}

/* Adds a finished run's counters to the application's totals (app->mu held). */
static void fold(rv__counters_t *to, const rv__counters_t *from) {
#define FOLD(f)                                                                                    \
    atomic_store_explicit(&to->f,                                                                  \
                          atomic_load_explicit(&to->f, memory_order_relaxed) +                     \
                              atomic_load_explicit(&from->f, memory_order_relaxed),                \
                          memory_order_relaxed)
    FOLD(records_in);
    FOLD(records_out);
    FOLD(records_sunk);
    FOLD(records_filtered);
    FOLD(errors);
    FOLD(skipped);
    FOLD(dead_lettered);
    FOLD(checkpoints);
    FOLD(state_restored);
    FOLD(txn_commits);
    FOLD(txn_aborts);
#undef FOLD
}

rv_err_t rv_app_run(rv_app_t *app, const rv_run_opts_t *opts, rv_error_t **err) {
    if (!app) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_app_run: the application is NULL");
    }
    int idle = 0;
    if (!atomic_compare_exchange_strong(&app->running, &idle, 1)) {
        return rv__error_set(err, RV_ERR_STATE, "application '%s' is already running", app->group);
    }
    atomic_store(&app->stop, 0);
    rv_run_opts_t o = opts ? *opts : (rv_run_opts_t){0};
    rv_err_t e = prepare(app, err);
    if (e == RV_OK && o.handle_signals) {
        e = signals_install(app, err);
    }
    if (e != RV_OK) {
        atomic_store(&app->running, 0);
        return e;
    }
    int n = app->threads;
    if (app->input_partitions > 0 && n > app->input_partitions) {
        /* A worker with no partition to read would only add rebalances. */
        rv__log(&app->log, RV_LOG_INFO, "app",
                "application '%s': app.threads=%d but the inputs have %d partition%s: starting "
                "%d worker%s",
                app->group, n, (int)app->input_partitions, app->input_partitions == 1 ? "" : "s",
                (int)app->input_partitions, app->input_partitions == 1 ? "" : "s");
        n = (int)app->input_partitions;
    }
    rv__worker_t *ws = calloc((size_t)n, sizeof *ws);
    bool ok = ws != NULL;
    for (int i = 0; ok && i < n; i++) {
        ws[i].app = app;
        ws[i].index = i;
        ws[i].arena = rv_arena_new(0);
        ok = ws[i].arena != NULL;
    }
    if (!ok) {
        workers_free(ws, ws ? n : 0);
        if (o.handle_signals) {
            signals_restore();
        }
        atomic_store(&app->running, 0);
        return rv__error_set(err, RV_ERR_NOMEM, "application '%s': out of memory", app->group);
    }
    pthread_mutex_lock(&app->mu);
    rv_error_destroy(app->run_err);
    app->run_err = NULL;
    app->workers = ws;
    app->nworkers = n;
    app->count_limit = o.count > 0 ? o.count : 0;
    app->deadline_ms = o.timeout_ms > 0 ? rv_clock_mono_ms() + o.timeout_ms : 0;
    app->until_end = o.until_end;
    app->activity = 0;
    atomic_store(&app->claimed, 0);
    pthread_mutex_unlock(&app->mu);
    rv__log(&app->log, RV_LOG_INFO, "app",
            "application '%s' runs on %s with %d worker%s (commit.interval.ms=%lld, "
            "commit.every=%lld)",
            app->group, rv_broker_url(app->broker), n, n == 1 ? "" : "s",
            (long long)app->commit_interval_ms, (long long)app->commit_every);

    for (int i = 1; i < n; i++) {
        if (pthread_create(&ws[i].thread, NULL, rv__worker_main, &ws[i]) != 0) {
            rv_error_t *te = NULL;
            rv__error_set(&te, RV_ERR_NOMEM, "application '%s': cannot start worker thread %d",
                          app->group, i);
            rv__app_fail(app, te);
            break;
        }
        ws[i].started = true;
    }
    rv__worker_main(&ws[0]);
    for (int i = 1; i < n; i++) {
        if (ws[i].started) {
            pthread_join(ws[i].thread, NULL);
        }
    }
    if (o.handle_signals) {
        signals_restore();
    }

    pthread_mutex_lock(&app->mu);
    for (int i = 0; i < n; i++) {
        fold(&app->totals, &ws[i].counters);
    }
    int64_t lag = 0;
    for (int i = 0; i < n; i++) {
        lag += atomic_load(&ws[i].counters.lag);
    }
    atomic_store(&app->totals.lag, lag);
    int64_t stores = 0, bytes = 0;
    for (int i = 0; i < n; i++) {
        stores += atomic_load(&ws[i].counters.state_stores);
        bytes += atomic_load(&ws[i].counters.state_bytes);
    }
    atomic_store(&app->totals.state_stores, stores);
    atomic_store(&app->totals.state_bytes, bytes);
    app->workers = NULL;
    app->nworkers = 0;
    rv_error_t *re = app->run_err;
    app->run_err = NULL;
    pthread_mutex_unlock(&app->mu);
    workers_free(ws, n);
    atomic_store(&app->running, 0);
    if (re) {
        e = rv_error_code(re);
        rv__log(&app->log, RV_LOG_ERROR, "app", "application '%s' stopped: %s", app->group,
                rv_error_message(re));
        if (err) {
            rv_error_destroy(*err);
            *err = re;
        } else {
            rv_error_destroy(re);
        }
        return e;
    }
    rv__log(&app->log, RV_LOG_INFO, "app", "application '%s' stopped", app->group);
    return RV_OK;
}
