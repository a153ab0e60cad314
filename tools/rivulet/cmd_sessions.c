/*
 * cmd_sessions.c: `rivulet sessions -t TOPIC [-f]`: the session catalogue of a telemetry topic
 * as a table (one row per stream: id, name, start, end, duration, state, record counts), read
 * from the beginning to the end of every partition. With -f it then follows the topic and
 * prints a line for each stream that changes, until SIGINT/SIGTERM.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define COMMAND "sessions"

static volatile int stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: rivulet sessions -t TOPIC [OPTIONS]\n\n"
            "Lists the telemetry streams and sessions of a topic: id, name, start, end,\n"
            "duration, state (live, or how it ended) and counts of records, frames, rows,\n"
            "events, markers and bad records.\n"
            "  -t TOPIC        the topic to scan (all partitions, beginning to end)\n"
            "  -f              follow: then print a line per stream that changes\n"
            "  -b URL          broker (default $RIVULET_BROKER, else %s)\n"
            "  -X name=value   configuration (see `rivulet config list`)\n"
            "  -h, --help      this help\n",
            RV_BROKER_DEFAULT_URL);
}

static const char *state_of(const rv_tcatalogue_entry_t *e) {
    if (!e->ended) {
        return "live";
    }
    switch (e->end_type) {
        case RV_TSTREAM_CLOSED:
            return "closed";
        case RV_TSTREAM_ABORTED:
            return "aborted";
        default:
            return "terminated";
    }
}

enum { COLS = 12 };

/* The cells of one row. */
static void cells(const rv_tcatalogue_entry_t *e, char cell[COLS][64]) {
    snprintf(cell[0], 64, "%.63s", e->stream_id);
    snprintf(cell[1], 64, "%.63s", e->name ? e->name : "-");
    if (e->has_start) {
        cli_time_format(e->start, cell[2], 64);
    } else {
        strcpy(cell[2], "-");
    }
    if (e->has_end) {
        cli_time_format(e->end, cell[3], 64);
    } else {
        strcpy(cell[3], "-");
    }
    if (e->has_start && e->has_end) {
        int64_t d = e->end - e->start;
        snprintf(cell[4], 64, "%s%" PRId64 ".%03" PRId64 "s", d < 0 ? "-" : "",
                 (d < 0 ? -d : d) / 1000000000, (d < 0 ? -d : d) / 1000000 % 1000);
    } else {
        strcpy(cell[4], "-");
    }
    snprintf(cell[5], 64, "%s", state_of(e));
    snprintf(cell[6], 64, "%" PRIu64, e->records);
    snprintf(cell[7], 64, "%" PRIu64, e->frames);
    snprintf(cell[8], 64, "%" PRIu64, e->rows);
    snprintf(cell[9], 64, "%" PRIu64, e->events);
    snprintf(cell[10], 64, "%" PRIu64, e->markers);
    snprintf(cell[11], 64, "%" PRIu64, e->bad);
}

static const char *const heads[COLS] = {"STREAM",  "NAME",   "START", "END",    "DURATION", "STATE",
                                        "RECORDS", "FRAMES", "ROWS",  "EVENTS", "MARKERS",  "BAD"};

static void print_row(char cell[COLS][64], const size_t *width) {
    char line[1024];
    size_t n = 0;
    for (int c = 0; c < COLS; c++) {
        int right = c >= 4 && c != 5;
        int w = c == COLS - 1 && !right ? 0 : (int)width[c];
        n += (size_t)snprintf(line + n, sizeof line - n, "%s%*s", c ? "  " : "", right ? w : -w,
                              cell[c]);
        if (n >= sizeof line) {
            n = sizeof line - 1;
        }
    }
    while (n && line[n - 1] == ' ') {
        n--;
    }
    printf("%.*s\n", (int)n, line);
}

static void print_table(void *opaque, rv_tcatalogue_t *cat) {
    (void)opaque;
    size_t n = rv_tcatalogue_count(cat), width[COLS];
    char cell[COLS][64];
    for (int c = 0; c < COLS; c++) {
        width[c] = strlen(heads[c]);
    }
    for (size_t i = 0; i < n; i++) {
        cells(rv_tcatalogue_entry(cat, i), cell);
        for (int c = 0; c < COLS; c++) {
            width[c] = strlen(cell[c]) > width[c] ? strlen(cell[c]) : width[c];
        }
    }
    for (int c = 0; c < COLS; c++) {
        snprintf(cell[c], 64, "%s", heads[c]);
    }
    print_row(cell, width);
    for (size_t i = 0; i < n; i++) {
        cells(rv_tcatalogue_entry(cat, i), cell);
        print_row(cell, width);
    }
    fflush(stdout);
}

static bool on_update(void *opaque, const rv_tcatalogue_entry_t *e) {
    (void)opaque;
    char cell[COLS][64];
    cells(e, cell);
    printf("%s: %s, name %s, start %s, end %s, duration %s, records %s, frames %s, rows %s, "
           "events %s, markers %s, bad %s\n",
           cell[0], cell[5], cell[1], cell[2], cell[3], cell[4], cell[6], cell[7], cell[8], cell[9],
           cell[10], cell[11]);
    fflush(stdout);
    return !stop_requested;
}

int cmd_sessions(int argc, char **argv) {
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    const char *topic = NULL;
    int follow = 0, opt, status = CLI_OK;
    cli_client_t cl;
    if (cli_client_init(&cl, COMMAND)) {
        return CLI_FAILED;
    }
    optind = 0;
    opterr = 0;
    while (status == CLI_OK && (opt = getopt_long(argc, argv, ":b:X:t:fh", longopts, NULL)) != -1) {
        int r = cli_client_option(&cl, opt, optarg);
        if (r >= 0) {
            status = r;
            continue;
        }
        switch (opt) {
            case 'h':
                usage(stdout);
                status = -1;
                break;
            case 't':
                topic = optarg;
                break;
            case 'f':
                follow = 1;
                break;
            default:
                status = cli_bad_option(COMMAND, opt, argv);
                break;
        }
    }
    if (status == CLI_OK && optind < argc) {
        status = cli_fail(CLI_USAGE, COMMAND, "unexpected argument '%s'", argv[optind]);
    } else if (status == CLI_OK && !topic) {
        status = cli_fail(CLI_USAGE, COMMAND, "-t TOPIC is required");
    }
    rv_broker_t *b = status == CLI_OK ? cli_client_open(&cl) : NULL;
    if (status == CLI_OK && !b) {
        status = CLI_FAILED;
    }
    rv_tcatalogue_t *cat = status == CLI_OK ? rv_tcatalogue_new() : NULL;
    if (status == CLI_OK && !cat) {
        status = cli_fail(CLI_FAILED, COMMAND, "out of memory");
    }
    if (status == CLI_OK) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        /* The table when the first pass reaches the end; with -f, a line per change after. */
        rv_tcatalogue_opts_t o = {.follow = follow,
                                  .on_update = on_update,
                                  .on_scanned = print_table,
                                  .stop = &stop_requested};
        rv_error_t *err = NULL;
        if (rv_tcatalogue_scan(cat, b, topic, &o, &err) != RV_OK) {
            status = cli_fail_error(CLI_FAILED, COMMAND, err);
        }
    }
    rv_tcatalogue_destroy(cat);
    rv_broker_close(b);
    cli_client_free(&cl);
    return status < 0 ? CLI_OK : status;
}
