/*
 * cmd_replay.c: `rivulet replay -t TOPIC -s STREAM [OPTIONS]`: replays a recorded telemetry
 * stream at its recorded pace (scaled by --speed, or at once with --max), optionally cut to a
 * time range, into another topic (-o) or to stdout as JSON lines (rivulet's shape of each
 * packet, or a readable table per frame with --table). Stops early on SIGINT/SIGTERM.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define COMMAND "replay"

static volatile int stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: rivulet replay -t TOPIC -s STREAM [OPTIONS]\n\n"
            "Replays a recorded telemetry stream by the data time of its packets: definitions\n"
            "at once, then each frame, event, marker and coverage when due.\n"
            "  -t TOPIC        the topic holding the recording\n"
            "  -s STREAM       the stream id (record key) to replay\n"
            "  --speed X       X times real time (default 1)\n"
            "  --max           as fast as possible\n"
            "  --from T        only data at or after T\n"
            "  --to T          only data before T (T: ns since the epoch, seconds with a\n"
            "                  decimal point, or ISO 8601 such as 2025-11-23T12:00:00.5Z)\n"
            "  -o TOPIC        write the packets to TOPIC (same key) instead of stdout\n"
            "  --wire W        with -o: telemetry or quix (default: as recorded)\n"
            "  --table         on stdout: a table per frame instead of JSON lines\n"
            "  -q              quiet: no summary on stderr\n"
            "  -b URL          broker (default $RIVULET_BROKER, else %s)\n"
            "  -X name=value   configuration (see `rivulet config list`)\n"
            "  -h, --help      this help\n",
            RV_BROKER_DEFAULT_URL);
}

typedef struct out_s {
    int table;
    rv_strbuf_t buf;
    int failed;
} out_t;

static bool on_packet(void *opaque, const rv_tpacket_t *p, int64_t t) {
    out_t *o = opaque;
    (void)t;
    rv_strbuf_clear(&o->buf);
    if (cli_packet_format(&o->buf, p, !o->table, COMMAND)) {
        o->failed = 1;
        return false;
    }
    fwrite(o->buf.data, 1, o->buf.len, stdout);
    fflush(stdout);
    return !stop_requested;
}

int cmd_replay(int argc, char **argv) {
    enum { OPT_SPEED = 1000, OPT_MAX, OPT_FROM, OPT_TO, OPT_WIRE, OPT_TABLE };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},        {"speed", required_argument, NULL, OPT_SPEED},
        {"max", no_argument, NULL, OPT_MAX},     {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO}, {"wire", required_argument, NULL, OPT_WIRE},
        {"table", no_argument, NULL, OPT_TABLE}, {0, 0, 0, 0}};
    rv_treplay_opts_t ro = {.speed = 1.0};
    out_t out = {0};
    int opt, status = CLI_OK, quiet = 0, speed_given = 0, max = 0;
    cli_client_t cl;
    if (cli_client_init(&cl, COMMAND)) {
        return CLI_FAILED;
    }
    optind = 0;
    opterr = 0;
    while (status == CLI_OK &&
           (opt = getopt_long(argc, argv, ":b:X:t:s:o:qh", longopts, NULL)) != -1) {
        int r = cli_client_option(&cl, opt, optarg);
        if (r >= 0) {
            status = r;
            continue;
        }
        char *end = NULL;
        int w;
        switch (opt) {
            case 'h':
                usage(stdout);
                status = -1;
                break;
            case 't':
                ro.topic = optarg;
                break;
            case 's':
                ro.stream_id = optarg;
                break;
            case 'o':
                ro.out_topic = optarg;
                break;
            case 'q':
                quiet = 1;
                break;
            case OPT_SPEED:
                ro.speed = strtod(optarg, &end);
                speed_given = 1;
                if (!*optarg || *end || !isfinite(ro.speed) || ro.speed <= 0) {
                    status = cli_fail(CLI_USAGE, COMMAND,
                                      "--speed needs a factor above 0 (2 = twice as fast), got "
                                      "'%s'",
                                      optarg);
                }
                break;
            case OPT_MAX:
                max = 1;
                break;
            case OPT_FROM:
            case OPT_TO:
                if (cli_time_parse(optarg, opt == OPT_FROM ? &ro.from : &ro.to)) {
                    status = cli_fail(CLI_USAGE, COMMAND,
                                      "%s needs a time: ns since the epoch, seconds with a "
                                      "decimal point, or ISO 8601; got '%s'",
                                      opt == OPT_FROM ? "--from" : "--to", optarg);
                }
                break;
            case OPT_WIRE:
                w = rv_twire_parse(optarg);
                if (w < 0) {
                    status = cli_fail(CLI_USAGE, COMMAND,
                                      "--wire takes telemetry or quix, got '%s'", optarg);
                }
                ro.out_wire = (rv_twire_t)(w < 0 ? 0 : w);
                break;
            case OPT_TABLE:
                out.table = 1;
                break;
            default:
                status = cli_bad_option(COMMAND, opt, argv);
                break;
        }
    }
    if (status == CLI_OK && optind < argc) {
        status = cli_fail(CLI_USAGE, COMMAND, "unexpected argument '%s'", argv[optind]);
    } else if (status == CLI_OK && (!ro.topic || !ro.stream_id)) {
        status = cli_fail(CLI_USAGE, COMMAND, "-t TOPIC and -s STREAM are required");
    } else if (status == CLI_OK && max && speed_given) {
        status = cli_fail(CLI_USAGE, COMMAND, "--speed and --max exclude each other");
    } else if (status == CLI_OK && ro.from && ro.to && ro.to <= ro.from) {
        status = cli_fail(CLI_USAGE, COMMAND, "--to must be after --from");
    }
    if (max) {
        ro.speed = 0;
    }
    rv_broker_t *b = status == CLI_OK ? cli_client_open(&cl) : NULL;
    if (status == CLI_OK && !b) {
        status = CLI_FAILED;
    }
    rv_producer_t *prod = NULL;
    rv_error_t *err = NULL;
    if (status == CLI_OK && ro.out_topic) {
        prod = rv_producer_new(b, &(rv_producer_opts_t){0}, &err);
        if (!prod) {
            status = cli_fail_error(CLI_FAILED, COMMAND, err);
            err = NULL;
        }
        ro.producer = prod;
    } else if (status == CLI_OK) {
        ro.on_packet = on_packet;
        ro.opaque = &out;
    }
    if (status == CLI_OK) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        ro.stop = &stop_requested;
        rv_treplay_stats_t st;
        if (rv_treplay_run(b, &ro, &st, &err) != RV_OK) {
            status = cli_fail_error(CLI_FAILED, COMMAND, err);
        } else if (out.failed) {
            status = CLI_FAILED;
        } else if (!quiet) {
            fprintf(stderr,
                    "rivulet replay: %" PRIu64 " packets of stream '%s' in %.3f s (%" PRIu64
                    " outside the range, %" PRIu64 " bad)\n",
                    st.packets, ro.stream_id, (double)st.elapsed_ns / 1e9, st.skipped, st.bad);
        }
    }
    rv_producer_close(prod);
    rv_broker_close(b);
    rv_strbuf_free(&out.buf);
    cli_client_free(&cl);
    return status < 0 ? CLI_OK : status;
}
