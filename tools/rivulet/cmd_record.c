/*
 * cmd_record.c: `rivulet record -t TOPIC --csv FILE [OPTIONS]`: records a telemetry session
 * from a CSV file through a stream writer: the header row names the parameters, one column is
 * the time (ns since the epoch, seconds with a decimal point, or ISO 8601), every column whose
 * cells are all numbers becomes a double parameter and the others string parameters (an empty
 * cell is an absent value). The session starts at the first row's time, its rows go out as
 * frames of --rows-per-frame rows, and it is closed at the last row's time.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "telemetry/csv_int.h" /* the CSV reader, shared with its tests and fuzz target */

#define COMMAND "record"

static void usage(FILE *out) {
    fprintf(out,
            "usage: rivulet record -t TOPIC --csv FILE [OPTIONS]\n\n"
            "Records a telemetry session from a CSV file: the header row names the columns;\n"
            "the time column holds ns since the epoch (an integer), seconds since the epoch\n"
            "(with a decimal point) or ISO 8601 times; a column of numbers becomes a double\n"
            "parameter, any other a string parameter; empty cells are absent values.\n"
            "  -t TOPIC            the topic to write to\n"
            "  --csv FILE          the CSV file (comma-separated, RFC 4180 quoting)\n"
            "  --stream ID         the stream id (default: the file name without extension)\n"
            "  --name NAME         the stream's and session's name (default: the stream id)\n"
            "  --time-col COL      the time column (default: \"time\", else the first column)\n"
            "  --rows-per-frame N  rows per frame (default 100)\n"
            "  --wire W            telemetry (default) or quix\n"
            "  -q                  quiet: no summary\n"
            "  -b URL              broker (default $RIVULET_BROKER, else %s)\n"
            "  -X name=value       configuration (see `rivulet config list`)\n"
            "  -h, --help          this help\n",
            RV_BROKER_DEFAULT_URL);
}

static int read_file(const char *path, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        return cli_fail(CLI_FAILED, COMMAND, "cannot open '%s': %m", path);
    }
    rv_strbuf_t sb = RV_STRBUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (rv_strbuf_append(&sb, chunk, n) != RV_OK) {
            fclose(f);
            rv_strbuf_free(&sb);
            return cli_fail(CLI_FAILED, COMMAND, "out of memory");
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        rv_strbuf_free(&sb);
        return cli_fail(CLI_FAILED, COMMAND, "cannot read '%s'", path);
    }
    *out = sb.data;
    *len = sb.len;
    return 0;
}

/* The stream id a file name suggests: its base name without the extension. */
static char *default_id(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return strndup(base, len);
}

static int record(cli_client_t *cl, const char *topic, const char *path, const char *id,
                  const char *name, const char *time_col, int64_t per_frame, rv_twire_t wire,
                  int quiet) {
    rv__csv_t csv = {0};
    char *text = NULL;
    size_t text_len = 0;
    if (read_file(path, &text, &text_len)) {
        return CLI_FAILED;
    }
    rv_error_t *perr = NULL;
    rv_err_t pe = rv__csv_parse(text, text_len, path, &csv, &perr);
    free(text);
    if (pe != RV_OK) {
        rv__csv_free(&csv);
        return cli_fail_error(CLI_FAILED, COMMAND, perr);
    }
    char **head = csv.rows[0];
    size_t tcol = 0, cols = csv.cols;
    if (time_col) {
        while (tcol < cols && strcmp(head[tcol], time_col) != 0) {
            tcol++;
        }
        if (tcol == cols) {
            rv__csv_free(&csv);
            return cli_fail(CLI_FAILED, COMMAND, "%s: no column '%s' in the header", path,
                            time_col);
        }
    } else {
        while (tcol < cols && strcmp(head[tcol], "time") != 0) {
            tcol++;
        }
        tcol = tcol == cols ? 0 : tcol;
    }
    /* Column types, and the times. */
    int *numeric = calloc(cols, sizeof *numeric);
    int64_t *times = calloc(csv.row_count, sizeof *times);
    rv_tparameter_def_t *defs = calloc(cols, sizeof *defs);
    int status = numeric && times && defs ? CLI_OK : cli_fail(CLI_FAILED, COMMAND, "out of memory");
    for (size_t c = 0; c < cols && status == CLI_OK; c++) {
        numeric[c] = 1;
        for (size_t r = 1; r < csv.row_count && numeric[c]; r++) {
            double v;
            numeric[c] = !*csv.rows[r][c] || rv__csv_number(csv.rows[r][c], &v);
        }
    }
    if (status == CLI_OK && rv__csv_times(&csv, tcol, path, times, &perr) != RV_OK) {
        status = cli_fail_error(CLI_FAILED, COMMAND, perr);
    }
    size_t ndefs = 0;
    for (size_t c = 0; c < cols; c++) {
        if (c != tcol && defs) {
            defs[ndefs++] = (rv_tparameter_def_t){.id = head[c], .name = head[c]};
        }
    }
    rv_broker_t *b = status == CLI_OK ? cli_client_open(cl) : NULL;
    if (status == CLI_OK && !b) {
        status = CLI_FAILED;
    }
    rv_error_t *err = NULL;
    rv_producer_t *prod = status == CLI_OK ? rv_producer_new(b, NULL, &err) : NULL;
    if (status == CLI_OK && !prod) {
        status = cli_fail_error(CLI_FAILED, COMMAND, err);
        err = NULL;
    }
    rv_twriter_opts_t wo = {.wire = wire};
    rv_twriter_t *w = status == CLI_OK ? rv_twriter_open(prod, topic, id, &wo, &err) : NULL;
    if (status == CLI_OK && !w) {
        status = cli_fail_error(CLI_FAILED, COMMAND, err);
        err = NULL;
    }
    rv_tframe_builder_t *fb = rv_tframe_builder_new();
    int64_t first = csv.row_count > 1 ? times[1] : 0, last = first;
    size_t frames = 0;
    rv_err_t e = status == CLI_OK && fb ? RV_OK : RV_ERR_NOMEM;
    if (status == CLI_OK) {
        rv_tstream_properties_t props = {
            .name = name, .has_time_of_recording = csv.row_count > 1, .time_of_recording = first};
        rv_tsession_t sess = {.session_id = id, .identifier = name, .time = first};
        if (e == RV_OK) {
            e = rv_twriter_set_properties(w, &props, &err);
        }
        if (e == RV_OK) {
            e = rv_twriter_session_start(w, &sess, &err);
        }
        if (e == RV_OK && ndefs) {
            e = rv_twriter_define_parameters(w, defs, ndefs, &err);
        }
    }
    for (size_t r = 1; r < csv.row_count && e == RV_OK && status == CLI_OK; r++) {
        if ((r - 1) % (size_t)per_frame == 0) { /* every frame has the header's columns */
            for (size_t c = 0; c < cols && e == RV_OK; c++) {
                if (c != tcol &&
                    rv_tframe_builder_column(fb, head[c],
                                             numeric[c] ? RV_TCOL_DOUBLE : RV_TCOL_STRING) < 0) {
                    e = RV_ERR_INVALID_ARG;
                }
            }
        }
        e = e == RV_OK ? rv_tframe_builder_add_row(fb, times[r]) : e;
        last = times[r] > last ? times[r] : last;
        for (size_t c = 0; c < cols && e == RV_OK; c++) {
            const char *cell = csv.rows[r][c];
            if (c == tcol || !*cell) {
                continue;
            }
            int col =
                rv_tframe_builder_column(fb, head[c], numeric[c] ? RV_TCOL_DOUBLE : RV_TCOL_STRING);
            double v = 0;
            e = col < 0      ? RV_ERR_INVALID_ARG
                : numeric[c] ? (rv__csv_number(cell, &v), rv_tframe_builder_set_double(fb, col, v))
                             : rv_tframe_builder_set_str(fb, col, cell, strlen(cell));
        }
        if (e == RV_OK && (r % (size_t)per_frame == 0 || r + 1 == csv.row_count)) {
            e = rv_twriter_write_builder(w, fb, &err);
            frames++;
        }
    }
    if (status == CLI_OK && e == RV_OK) {
        e = rv_twriter_close(w, RV_TSTREAM_CLOSED, last, &err);
        w = NULL;
    }
    if (status == CLI_OK && e == RV_OK) {
        e = rv_producer_flush(prod, -1, &err);
    }
    if (status == CLI_OK && e != RV_OK) {
        status = err ? cli_fail_error(CLI_FAILED, COMMAND, err)
                     : cli_fail(CLI_FAILED, COMMAND, "%s: %s (a column name repeats?)", path,
                                rv_err_str(e));
        err = NULL;
    }
    if (status == CLI_OK && !quiet) {
        printf("recorded %zu rows (%zu frames, %zu parameters) from %s as stream '%s' in topic "
               "'%s'\n",
               csv.row_count - 1, frames, ndefs, path, id, topic);
    }
    rv_twriter_destroy(w);
    rv_tframe_builder_destroy(fb);
    rv_producer_close(prod);
    rv_broker_close(b);
    rv_error_destroy(err);
    free(numeric);
    free(times);
    free(defs);
    rv__csv_free(&csv);
    return status;
}

int cmd_record(int argc, char **argv) {
    enum { OPT_CSV = 1000, OPT_STREAM, OPT_NAME, OPT_TIME_COL, OPT_PER_FRAME, OPT_WIRE };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"csv", required_argument, NULL, OPT_CSV},
        {"stream", required_argument, NULL, OPT_STREAM},
        {"name", required_argument, NULL, OPT_NAME},
        {"time-col", required_argument, NULL, OPT_TIME_COL},
        {"rows-per-frame", required_argument, NULL, OPT_PER_FRAME},
        {"wire", required_argument, NULL, OPT_WIRE},
        {0, 0, 0, 0}};
    const char *topic = NULL, *path = NULL, *id = NULL, *name = NULL, *time_col = NULL;
    int64_t per_frame = 100;
    rv_twire_t wire = RV_TWIRE_TELEMETRY;
    int opt, status = CLI_OK, quiet = 0, wv;
    cli_client_t cl;
    if (cli_client_init(&cl, COMMAND)) {
        return CLI_FAILED;
    }
    optind = 0;
    opterr = 0;
    while (status == CLI_OK && (opt = getopt_long(argc, argv, ":b:X:t:qh", longopts, NULL)) != -1) {
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
            case 'q':
                quiet = 1;
                break;
            case OPT_CSV:
                path = optarg;
                break;
            case OPT_STREAM:
                id = optarg;
                break;
            case OPT_NAME:
                name = optarg;
                break;
            case OPT_TIME_COL:
                time_col = optarg;
                break;
            case OPT_PER_FRAME:
                if (cli_parse_int64(optarg, 1, 1000000, &per_frame)) {
                    status = cli_fail(CLI_USAGE, COMMAND,
                                      "--rows-per-frame needs 1 to 1000000, got '%s'", optarg);
                }
                break;
            case OPT_WIRE:
                wv = rv_twire_parse(optarg);
                if (wv != RV_TWIRE_TELEMETRY && wv != RV_TWIRE_QUIX) {
                    status = cli_fail(CLI_USAGE, COMMAND,
                                      "--wire takes telemetry or quix, got '%s'", optarg);
                }
                wire = (rv_twire_t)wv;
                break;
            default:
                status = cli_bad_option(COMMAND, opt, argv);
                break;
        }
    }
    if (status == CLI_OK && optind < argc) {
        status = cli_fail(CLI_USAGE, COMMAND, "unexpected argument '%s'", argv[optind]);
    } else if (status == CLI_OK && (!topic || !path)) {
        status = cli_fail(CLI_USAGE, COMMAND, "-t TOPIC and --csv FILE are required");
    } else if (status == CLI_OK && id && !*id) {
        status = cli_fail(CLI_USAGE, COMMAND, "--stream needs a non-empty id");
    }
    char *own_id = NULL;
    if (status == CLI_OK && !id) {
        id = own_id = default_id(path);
        if (!own_id || !*own_id) {
            status =
                cli_fail(CLI_USAGE, COMMAND, "cannot make a stream id of '%s': use --stream", path);
        }
    }
    if (status == CLI_OK) {
        status = record(&cl, topic, path, id, name ? name : id, time_col, per_frame, wire, quiet);
    }
    free(own_id);
    cli_client_free(&cl);
    return status < 0 ? CLI_OK : status;
}
