/*
 * cli.h: what the `rivulet` command's subcommands share.
 *
 * The CLI is written on the public API only (<rivulet/rivulet.h>); it is the one place in
 * the project that prints. Each subcommand is a function taking its own argc/argv (argv[0] is
 * the subcommand's name) and returning the process exit status: 0 success, 1 failure of the
 * work, 2 a usage error.
 */
#ifndef RV_CLI_H
#define RV_CLI_H

#include <rivulet/broker.h>
#include <rivulet/rivulet.h>

#define CLI_OK 0
#define CLI_FAILED 1
#define CLI_USAGE 2

typedef struct cli_command_s {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command_t;

int cmd_config(int argc, char **argv);
int cmd_json(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_topics(int argc, char **argv);
int cmd_produce(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_sessions(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_record(int argc, char **argv);

/* Prints "rivulet NAME: message" to stderr and returns `status`. */
int cli_fail(int status, const char *command, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True when `arg` is -h or --help. */
int cli_is_help(const char *arg);

/* Applies a -X name=value argument to `conf`; prints the error and returns non-zero on failure. */
int cli_set_conf(rv_conf_t *conf, const char *command, const char *pair);

/* ---- cli_common.c: what the broker commands (topics, produce, consume) share ---------- */

/* The broker and configuration a command works with: -b URL (else $RIVULET_BROKER, else
 * RV_BROKER_DEFAULT_URL) and -X name=value. */
typedef struct cli_client_s {
    const char *command; /* "produce", "topics create", ...: the prefix of messages */
    const char *url;
    rv_conf_t *conf;
} cli_client_t;

/* Sets defaults; returns non-zero (after printing) when memory is exhausted. */
int cli_client_init(cli_client_t *c, const char *command);

/* Handles the common options seen by getopt: 'b' (-b URL) and 'X' (-X name=value). Returns 0
 * when `opt` was one of them and applied, CLI_USAGE after printing an error, -1 when `opt` is
 * not a common option. */
int cli_client_option(cli_client_t *c, int opt, const char *arg);

/* Prints the error getopt() reported as `opt` ('?' unknown option, ':' missing value) with a
 * pointer to `rivulet COMMAND --help`, and returns CLI_USAGE. Call with opterr = 0. */
int cli_bad_option(const char *command, int opt, char **argv);

/* Opens the broker, printing the error (naming the URL) and returning NULL on failure. */
rv_broker_t *cli_client_open(cli_client_t *c);

void cli_client_free(cli_client_t *c);

/* Prints "rivulet COMMAND: message of err" to stderr, frees `err` and returns `status`. */
int cli_fail_error(int status, const char *command, rv_error_t *err);

/* Decodes the escapes \n \r \t \0 \\ and \xHH in `text` into `out` (cleared first). Returns
 * 0, or non-zero after printing an error naming `what` (for example "-K"). */
int cli_unescape(const char *command, const char *what, const char *text, rv_strbuf_t *out);

/* Parses all of `text` as a decimal integer within [min, max]; returns 0 on success. */
int cli_parse_int64(const char *text, int64_t min, int64_t max, int64_t *out);

/* Whether `len` bytes at `s` are valid UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF). */
int cli_utf8_valid(const void *s, size_t len);

/* ---- cli_metrics.c: --metrics[=SECONDS] for the commands that run an application ------- */

/* The interval of a bare --metrics. */
#define CLI_METRICS_DEFAULT_MS 1000

typedef struct cli_metrics_s cli_metrics_t;

/* Parses the value of --metrics (NULL when given bare: CLI_METRICS_DEFAULT_MS) into
 * *interval_ms (0: only the final line). Returns 0, or CLI_USAGE after printing an error. */
int cli_metrics_parse(const char *command, const char *arg, int64_t *interval_ms);

/* Starts printing `app`'s counters to stderr every `interval_ms` (0: none while it runs), as
 * "rivulet COMMAND: metrics at 2.0 s: in N, out N, ...". NULL when memory is exhausted. */
cli_metrics_t *cli_metrics_start(rv_app_t *app, const char *command, int64_t interval_ms);

/* Stops the periodic lines, prints the final one ("metrics after S s: ...") and frees. Accepts
 * NULL. */
void cli_metrics_stop(cli_metrics_t *mx);

/* Formats the counters as "in N, out N, sunk N, filtered N, errors N (...), lag N,
 * checkpoints N (last X ms, longest Y ms)". */
void cli_metrics_format(char *out, size_t size, const rv_app_metrics_t *m);

/* ---- cli_telemetry.c: what the telemetry commands share -------------------------------- */

/* ns since the epoch as "2025-11-23T12:13:20.010Z" (3, 6 or 9 fraction digits, as needed). */
void cli_time_format(int64_t ns, char *out, size_t size);

/* A data time: an integer is ns since the epoch, a decimal number seconds since the epoch,
 * else ISO 8601 (YYYY-MM-DDTHH:MM:SS[.f][Z|+HH:MM]). Returns 0 on success. */
int cli_time_parse(const char *text, int64_t *ns);

/* A frame as a table: a "time" column then one per column, a header row, "-" for absent. */
void cli_frame_table(rv_strbuf_t *out, const rv_tframe_t *frame);

/* A packet: a frame as "ID frame: N rows" and its table, others as "ID TYPE: JSON"; with
 * `json`, one JSON line (rivulet's shape). Returns 0, or 1 after printing an error. */
int cli_packet_format(rv_strbuf_t *out, const rv_tpacket_t *p, int json, const char *command);

/* Decodes a telemetry record (protobuf or legacy Quix JSON) and formats it as above. A record
 * that does not decode is reported on stderr (naming topic, partition, offset and key) and
 * skipped: returns 1. */
int cli_telemetry_format(rv_strbuf_t *out, rv_arena_t *arena, const rv_record_t *r, int json,
                         const char *command);

#endif
