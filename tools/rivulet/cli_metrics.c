/*
 * cli_metrics.c: `--metrics[=SECONDS]` for the commands that run an application: the runtime's
 * counters (rv_app_metrics()) printed to stderr every few seconds while the application runs,
 * and once when it has stopped.
 *
 * A small thread wakes every interval, reads the counters (safe from any thread) and prints one
 * line; stopping it wakes it at once, so a run never waits for the interval to end. The lines
 * go to stderr so that stdout keeps only what the command itself prints. This file never
 * changes what an application does; it only reads its counters.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

struct cli_metrics_s {
    rv_app_t *app;
    const char *command;
    int64_t interval_ms; /* 0: only the final line */
    int64_t start_ns;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;       /* guarded by mu */
    int64_t last_in; /* the previous line's records_in, for the rate (printer thread only) */
    int64_t last_ns;
};

int cli_metrics_parse(const char *command, const char *arg, int64_t *interval_ms) {
    if (!arg) {
        *interval_ms = CLI_METRICS_DEFAULT_MS;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    double secs = strtod(arg, &end);
    if (errno || end == arg || *end || !(secs >= 0) || secs > 86400) {
        return cli_fail(CLI_USAGE, command,
                        "--metrics takes a number of seconds from 0 to 86400 (0: only at the "
                        "end), not '%s'",
                        arg);
    }
    *interval_ms = (int64_t)(secs * 1000.0 + 0.5);
    if (secs > 0 && *interval_ms == 0) {
        *interval_ms = 1;
    }
    return 0;
}

void cli_metrics_format(char *out, size_t size, const rv_app_metrics_t *m) {
    snprintf(out, size,
             "in %lld, out %lld, sunk %lld, filtered %lld, errors %lld (skipped %lld, "
             "dead-lettered %lld), lag %lld, checkpoints %lld (last %.1f ms, longest %.1f ms), "
             "state stores %lld (%.1f MiB, %lld restored), transactions %lld (aborted %lld)",
             (long long)m->records_in, (long long)m->records_out, (long long)m->records_sunk,
             (long long)m->records_filtered, (long long)m->errors, (long long)m->skipped,
             (long long)m->dead_lettered, (long long)m->lag, (long long)m->checkpoints,
             (double)m->checkpoint_last_us / 1000.0, (double)m->checkpoint_max_us / 1000.0,
             (long long)m->state_stores, (double)m->state_bytes / (1024.0 * 1024.0),
             (long long)m->state_restored, (long long)m->txn_commits, (long long)m->txn_aborts);
}

/* One line: "rivulet demo: metrics at 2.0 s: in 1234 (617/s), ...". */
static void print_line(cli_metrics_t *mx, const char *when) {
    rv_app_metrics_t m;
    rv_app_metrics(mx->app, &m);
    int64_t now = rv_clock_mono_ns();
    double secs = (double)(now - mx->start_ns) / 1e9;
    double span = (double)(now - mx->last_ns) / 1e9;
    double rate = span > 0 ? (double)(m.records_in - mx->last_in) / span : 0.0;
    mx->last_in = m.records_in;
    mx->last_ns = now;
    char line[512];
    cli_metrics_format(line, sizeof line, &m);
    fprintf(stderr, "rivulet %s: metrics %s %.1f s: %s; %.0f records/s in %s\n", mx->command, when,
            secs, line, rate, strcmp(when, "at") == 0 ? "since the last line" : "over the run");
    fflush(stderr);
}

static void *printer(void *arg) {
    cli_metrics_t *mx = arg;
    pthread_mutex_lock(&mx->mu);
    while (!mx->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t ns = (int64_t)until.tv_nsec + (mx->interval_ms % 1000) * 1000000;
        until.tv_sec += (time_t)(mx->interval_ms / 1000 + ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        while (!mx->stop && pthread_cond_timedwait(&mx->cv, &mx->mu, &until) != ETIMEDOUT) {
        }
        if (mx->stop) {
            break;
        }
        pthread_mutex_unlock(&mx->mu);
        print_line(mx, "at");
        pthread_mutex_lock(&mx->mu);
    }
    pthread_mutex_unlock(&mx->mu);
    return NULL;
}

cli_metrics_t *cli_metrics_start(rv_app_t *app, const char *command, int64_t interval_ms) {
    cli_metrics_t *mx = calloc(1, sizeof *mx);
    if (!mx) {
        return NULL;
    }
    mx->app = app;
    mx->command = command;
    mx->interval_ms = interval_ms;
    mx->start_ns = mx->last_ns = rv_clock_mono_ns();
    pthread_mutex_init(&mx->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&mx->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (interval_ms > 0) {
        mx->started = pthread_create(&mx->thread, NULL, printer, mx) == 0;
        if (!mx->started) {
            cli_fail(CLI_FAILED, command,
                     "cannot start the metrics thread: only the final "
                     "metrics will be printed");
        }
    }
    return mx;
}

void cli_metrics_stop(cli_metrics_t *mx) {
    if (!mx) {
        return;
    }
    pthread_mutex_lock(&mx->mu);
    mx->stop = true;
    pthread_cond_signal(&mx->cv);
    pthread_mutex_unlock(&mx->mu);
    if (mx->started) {
        pthread_join(mx->thread, NULL);
    }
    mx->last_in = 0;
    mx->last_ns = mx->start_ns;
    print_line(mx, "after");
    pthread_cond_destroy(&mx->cv);
    pthread_mutex_destroy(&mx->mu);
    free(mx);
}
