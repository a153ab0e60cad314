/*
 * cmd_produce.c: `rivulet produce -t TOPIC [OPTIONS] [FILE ...]`: writes records to a topic,
 * one per input line (any length; \r\n endings accepted) or, with -l, one per whole file
 * (binary safe). Keys come from splitting each line at a delimiter (-K) or from -k; headers and
 * a timestamp apply to every record. It reads with read(2) into one growing buffer, so lines
 * are never copied twice, and it waits for every delivery report before exiting: the exit
 * status says whether everything was stored, and the first failure is named with the file and
 * line it came from.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define COMMAND "produce"

/* One input: where records [first_record, next input's first_record) came from. */
typedef struct input_s {
    const char *name;
    uint64_t first_record;
} input_t;

typedef struct produce_s {
    const char *topic;
    int32_t partition;  /* -p, or RV_PARTITION_ANY */
    int32_t partitions; /* the topic's partition count */
    rv_strbuf_t delim;  /* between records (-D; default "\n", then \r\n is accepted too) */
    rv_strbuf_t key_delim;
    int have_key_delim;
    const char *fixed_key; /* -k */
    rv_header_t *headers;
    size_t header_count;
    int64_t timestamp_ms;
    int null_empty;  /* -Z */
    int whole_files; /* -l */
    int verbose;

    rv_producer_t *producer;
    input_t *inputs;
    size_t input_count;
    uint64_t records; /* records handed to the producer */
    uint64_t delivered;
    uint64_t failed;
    uint64_t bytes;
    unsigned char *used; /* per partition: a record was stored there */
    char first_failure[512];
} produce_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: rivulet produce -t TOPIC [OPTIONS] [FILE ...]\n\n"
            "Writes one record per input line, from each FILE or standard input (\"-\").\n"
            "  -t TOPIC         the topic (it must exist: see `rivulet topics create`)\n"
            "  -p PARTITION     write to this partition (default: murmur2 of the key, as Kafka;\n"
            "                   records without key go round-robin)\n"
            "  -K DELIM         split each line into key and value at the first DELIM;\n"
            "                   a line without DELIM is a value without key\n"
            "  -k KEY           the same key for every record\n"
            "  -H name=value    add a header to every record (repeatable; \"name\" alone: a\n"
            "                   header without value)\n"
            "  -T TIMESTAMP_MS  the records' timestamp (default: now)\n"
            "  -D DELIM         records are separated by DELIM instead of a newline\n"
            "  -l               each FILE whole is one record's value (binary safe)\n"
            "  -Z               empty values and keys are sent as NULL (tombstones)\n"
            "  -v               print a summary on stderr (records, bytes, partitions)\n"
            "  -b URL           broker (default $RIVULET_BROKER, else %s)\n"
            "  -X name=value    configuration, e.g. -X linger.ms=0 (see `rivulet config list`)\n"
            "  -h, --help       this help\n"
            "DELIM may use the escapes \\n \\r \\t \\0 \\\\ \\xHH.\n"
            "Exit status: 0 when every record was stored, 1 when any was not, 2 for usage.\n",
            RV_BROKER_DEFAULT_URL);
}

/* Where record number `n` (0-based) came from, as "NAME:LINE" (or "NAME" with -l). */
static void record_origin(const produce_t *pr, uint64_t n, char *buf, size_t size) {
    size_t i = pr->input_count;
    while (i > 0 && pr->inputs[i - 1].first_record > n) {
        i--;
    }
    if (i == 0) {
        snprintf(buf, size, "record %" PRIu64, n + 1);
        return;
    }
    const input_t *in = &pr->inputs[i - 1];
    if (pr->whole_files) {
        snprintf(buf, size, "%s", in->name);
    } else {
        snprintf(buf, size, "%s:%" PRIu64, in->name, n - in->first_record + 1);
    }
}

static void on_delivery(void *opaque, const rv_record_t *record, rv_err_t err,
                        void *record_opaque) {
    produce_t *pr = opaque;
    if (err != RV_OK) {
        if (pr->failed++ == 0) {
            char origin[256];
            record_origin(pr, (uint64_t)(uintptr_t)record_opaque, origin, sizeof origin);
            snprintf(pr->first_failure, sizeof pr->first_failure,
                     "%s: not stored in topic '%s' partition %" PRId32 ": %s (%s)", origin,
                     pr->topic, record->partition, rv_err_str(err), rv_err_name(err));
        }
        return;
    }
    pr->delivered++;
    pr->bytes += record->key_len + record->value_len;
    if (record->partition >= 0 && record->partition < pr->partitions) {
        pr->used[record->partition] = 1;
    }
}

/* Sends one record made of `len` bytes of `data` (a line or a file). Returns 0, or CLI_FAILED
 * after printing why the producer refused it. */
static int send_one(produce_t *pr, const char *data, size_t len) {
    rv_record_t rec = {
        .topic = pr->topic,
        .partition = pr->partition,
        .timestamp_ms = pr->timestamp_ms,
        .value = data,
        .value_len = len,
        .headers = pr->headers,
        .header_count = pr->header_count,
    };
    if (pr->fixed_key) {
        rec.key = pr->fixed_key;
        rec.key_len = strlen(pr->fixed_key);
    } else if (pr->have_key_delim) {
        const char *kd = pr->key_delim.data;
        size_t kdlen = pr->key_delim.len;
        const char *hit = kdlen == 1 ? memchr(data, kd[0], len) : memmem(data, len, kd, kdlen);
        if (hit) {
            rec.key = data;
            rec.key_len = (size_t)(hit - data);
            rec.value = hit + kdlen;
            rec.value_len = len - rec.key_len - kdlen;
        }
    }
    if (pr->null_empty) {
        if (rec.key && rec.key_len == 0) {
            rec.key = NULL;
        }
        if (rec.value_len == 0) {
            rec.value = NULL;
        }
    }
    void *opaque = (void *)(uintptr_t)pr->records;
    for (;;) {
        rv_err_t e = rv_producer_send(pr->producer, &rec, opaque);
        if (e == RV_OK) {
            break;
        }
        if (e == RV_ERR_AGAIN) { /* the queue is full: let deliveries drain it */
            rv_producer_poll(pr->producer, 100);
            continue;
        }
        char origin[256];
        record_origin(pr, pr->records, origin, sizeof origin);
        if (e == RV_ERR_LIMIT) {
            return cli_fail(CLI_FAILED, COMMAND,
                            "%s: a record of %zu bytes is larger than topic '%s' accepts "
                            "(its max.message.bytes, or message.split.bytes when "
                            "message.split=false)",
                            origin, rec.key_len + rec.value_len, pr->topic);
        }
        return cli_fail(CLI_FAILED, COMMAND, "%s: cannot send to topic '%s': %s (%s)", origin,
                        pr->topic, rv_err_str(e), rv_err_name(e));
    }
    pr->records++;
    if ((pr->records & 1023) == 0) {
        rv_producer_poll(pr->producer, 0);
    }
    return 0;
}

/* Reads `fd` to its end (or until a signal asks to stop). Returns 0 or CLI_FAILED. */
static int read_whole(int fd, const char *name, char **data, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        return cli_fail(CLI_FAILED, COMMAND, "%s: out of memory", name);
    }
    for (;;) {
        if (n == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                return cli_fail(CLI_FAILED, COMMAND, "%s: out of memory", name);
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR && !stop_requested) {
            continue;
        }
        if (got < 0) {
            int e = errno;
            free(buf);
            if (e == EINTR) {
                return cli_fail(CLI_FAILED, COMMAND, "%s: interrupted before the end", name);
            }
            return cli_fail(CLI_FAILED, COMMAND, "%s: cannot read: %s", name, strerror(e));
        }
        if (got == 0) {
            break;
        }
        n += (size_t)got;
    }
    *data = buf;
    *len = n;
    return 0;
}

/* Sends each delimited record of `fd`. Returns 0 or CLI_FAILED. */
static int produce_lines(produce_t *pr, int fd, const char *name) {
    const char *d = pr->delim.data;
    size_t dlen = pr->delim.len;
    int crlf = dlen == 1 && d[0] == '\n';
    size_t cap = 1 << 16, start = 0, end = 0, scan = 0;
    char *buf = malloc(cap);
    if (!buf) {
        return cli_fail(CLI_FAILED, COMMAND, "%s: out of memory", name);
    }
    int status = 0, eof = 0;
    while (status == 0) {
        const char *hit = NULL;
        if (end - scan >= dlen) {
            hit = dlen == 1 ? memchr(buf + scan, d[0], end - scan)
                            : memmem(buf + scan, end - scan, d, dlen);
        }
        if (hit || (eof && end > start)) {
            size_t rlen = hit ? (size_t)(hit - (buf + start)) : end - start;
            if (crlf && rlen && buf[start + rlen - 1] == '\r') {
                rlen--;
            }
            status = send_one(pr, buf + start, rlen);
            start = hit ? (size_t)(hit - buf) + dlen : end;
            scan = start;
            continue;
        }
        if (eof || stop_requested) {
            break;
        }
        /* No whole record in the buffer: keep the partial one and read more. */
        scan = end - start >= dlen ? end - dlen + 1 : start;
        if (start > 0) {
            memmove(buf, buf + start, end - start);
            end -= start;
            scan -= start;
            start = 0;
        }
        if (end == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                return cli_fail(CLI_FAILED, COMMAND,
                                "%s: out of memory (a record of more "
                                "than %zu bytes)",
                                name, cap);
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + end, cap - end);
        if (got < 0) {
            if (errno != EINTR) {
                status =
                    cli_fail(CLI_FAILED, COMMAND, "%s: cannot read: %s", name, strerror(errno));
            }
            continue; /* on EINTR, the loop stops if a signal asked to */
        }
        if (got == 0) {
            eof = 1;
        }
        end += (size_t)got;
    }
    free(buf);
    return status;
}

static int produce_input(produce_t *pr, const char *path) {
    int is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    pr->inputs[pr->input_count++] = (input_t){name, pr->records};
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return cli_fail(CLI_FAILED, COMMAND, "%s: cannot open: %s", path, strerror(errno));
    }
    int status;
    if (pr->whole_files) {
        char *data = NULL;
        size_t len = 0;
        status = read_whole(fd, name, &data, &len);
        if (status == 0) {
            status = send_one(pr, len ? data : "", len);
        }
        free(data);
    } else {
        status = produce_lines(pr, fd, name);
    }
    if (!is_stdin) {
        close(fd);
    }
    return status;
}

/* "0-2,5,7-9" for the partitions records were stored in. */
static void partition_ranges(const produce_t *pr, rv_strbuf_t *sb) {
    for (int32_t p = 0; p < pr->partitions; p++) {
        if (!pr->used[p]) {
            continue;
        }
        int32_t q = p;
        while (q + 1 < pr->partitions && pr->used[q + 1]) {
            q++;
        }
        rv_strbuf_appendf(sb, "%s%" PRId32, sb->len ? "," : "", p);
        if (q > p) {
            rv_strbuf_appendf(sb, "-%" PRId32, q);
        }
        p = q;
    }
}

/* Parses -H name=value into `h`, copying the name. */
static int parse_header(const char *arg, rv_header_t *h) {
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    if (n == 0) {
        return cli_fail(CLI_USAGE, COMMAND, "-H '%s': the header needs a name (name=value)", arg);
    }
    char *name = malloc(n + 1);
    if (!name) {
        return cli_fail(CLI_FAILED, COMMAND, "out of memory");
    }
    memcpy(name, arg, n);
    name[n] = '\0';
    h->name = name;
    h->value = eq ? eq + 1 : NULL;
    h->value_len = eq ? strlen(eq + 1) : 0;
    return 0;
}

/* Checks the topic and partition, then creates the producer and sends every input. */
static int run(produce_t *pr, cli_client_t *c, char **files, int nfiles) {
    rv_broker_t *b = cli_client_open(c);
    if (!b) {
        return CLI_FAILED;
    }
    rv_error_t *err = NULL;
    int status = CLI_OK;
    if (rv_broker_describe_topic(b, pr->topic, &pr->partitions, NULL, &err) != RV_OK) {
        rv_broker_close(b);
        return cli_fail_error(CLI_FAILED, COMMAND, err);
    }
    if (pr->partition != RV_PARTITION_ANY && pr->partition >= pr->partitions) {
        rv_broker_close(b);
        return cli_fail(CLI_FAILED, COMMAND,
                        "-p %" PRId32 ": topic '%s' has %" PRId32 " partition%s (0..%" PRId32 ")",
                        pr->partition, pr->topic, pr->partitions, pr->partitions == 1 ? "" : "s",
                        pr->partitions - 1);
    }
    pr->used = calloc((size_t)pr->partitions, 1);
    pr->inputs = calloc((size_t)(nfiles ? nfiles : 1), sizeof *pr->inputs);
    rv_producer_opts_t popts = {.delivery_cb = on_delivery, .opaque = pr};
    pr->producer = pr->used && pr->inputs ? rv_producer_new(b, &popts, &err) : NULL;
    if (!pr->producer) {
        rv_broker_close(b);
        return pr->used && pr->inputs ? cli_fail_error(CLI_FAILED, COMMAND, err)
                                      : cli_fail(CLI_FAILED, COMMAND, "out of memory");
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second signal ends the process at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (nfiles == 0) {
        status = produce_input(pr, "-");
    }
    for (int i = 0; i < nfiles && status == CLI_OK && !stop_requested; i++) {
        status = produce_input(pr, files[i]);
    }
    if (rv_producer_flush(pr->producer, -1, &err) != RV_OK) {
        status = cli_fail_error(CLI_FAILED, COMMAND, err);
    }
    if (pr->failed) {
        cli_fail(CLI_FAILED, COMMAND, "%s", pr->first_failure);
        if (pr->failed > 1) {
            cli_fail(CLI_FAILED, COMMAND, "%" PRIu64 " records were not stored", pr->failed);
        }
        status = CLI_FAILED;
    }
    if (pr->verbose) {
        rv_strbuf_t parts = RV_STRBUF_INIT;
        partition_ranges(pr, &parts);
        fprintf(stderr,
                "rivulet produce: %" PRIu64 " record%s (%" PRIu64 " bytes) stored in topic "
                "'%s' partition%s %s",
                pr->delivered, pr->delivered == 1 ? "" : "s", pr->bytes, pr->topic,
                parts.len && strpbrk(parts.data, ",-") ? "s" : "",
                parts.len ? parts.data : "(none)");
        if (pr->failed) {
            fprintf(stderr, "; %" PRIu64 " failed", pr->failed);
        }
        fputc('\n', stderr);
        rv_strbuf_free(&parts);
    }
    if (stop_requested && status == CLI_OK) {
        status = cli_fail(CLI_FAILED, COMMAND,
                          "interrupted; the records read before were "
                          "stored");
    }
    rv_producer_close(pr->producer);
    rv_broker_close(b);
    return status;
}

int cmd_produce(int argc, char **argv) {
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    produce_t pr = {.partition = RV_PARTITION_ANY};
    cli_client_t c;
    if (cli_client_init(&c, COMMAND)) {
        return CLI_FAILED;
    }
    pr.headers = calloc((size_t)argc, sizeof *pr.headers);
    int status = pr.headers && rv_strbuf_append(&pr.delim, "\n", 1) == RV_OK
                     ? CLI_OK
                     : cli_fail(CLI_FAILED, COMMAND, "out of memory");
    int64_t v;
    int opt;
    optind = 0;
    opterr = 0;
    while (status == CLI_OK &&
           (opt = getopt_long(argc, argv, ":b:X:t:p:K:k:H:T:D:lZvh", longopts, NULL)) != -1) {
        int r = cli_client_option(&c, opt, optarg);
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
                pr.topic = optarg;
                break;
            case 'p':
                if (cli_parse_int64(optarg, 0, INT32_MAX, &v)) {
                    status = cli_fail(CLI_USAGE, COMMAND,
                                      "-p needs a partition number (0 or more), got '%s'", optarg);
                }
                pr.partition = (int32_t)v;
                break;
            case 'K':
                if (cli_unescape(COMMAND, "-K", optarg, &pr.key_delim)) {
                    status = CLI_USAGE;
                } else if (pr.key_delim.len == 0) {
                    status = cli_fail(CLI_USAGE, COMMAND, "-K needs a non-empty delimiter");
                }
                pr.have_key_delim = 1;
                break;
            case 'k':
                pr.fixed_key = optarg;
                break;
            case 'H':
                status = parse_header(optarg, &pr.headers[pr.header_count]);
                if (status == CLI_OK) {
                    pr.header_count++;
                }
                break;
            case 'T':
                if (cli_parse_int64(optarg, 0, INT64_MAX, &pr.timestamp_ms)) {
                    status = cli_fail(CLI_USAGE, COMMAND,
                                      "-T needs a timestamp in milliseconds since the epoch, "
                                      "got '%s'",
                                      optarg);
                }
                break;
            case 'D':
                if (cli_unescape(COMMAND, "-D", optarg, &pr.delim)) {
                    status = CLI_USAGE;
                } else if (pr.delim.len == 0) {
                    status = cli_fail(CLI_USAGE, COMMAND, "-D needs a non-empty delimiter");
                }
                break;
            case 'l':
                pr.whole_files = 1;
                break;
            case 'Z':
                pr.null_empty = 1;
                break;
            case 'v':
                pr.verbose = 1;
                break;
            default:
                status = cli_bad_option(COMMAND, opt, argv);
                break;
        }
    }
    if (status == CLI_OK && !pr.topic) {
        status = cli_fail(CLI_USAGE, COMMAND, "-t TOPIC is required");
    }
    if (status == CLI_OK && pr.fixed_key && pr.have_key_delim) {
        status = cli_fail(CLI_USAGE, COMMAND, "-k and -K cannot be used together");
    }
    if (status == CLI_OK && pr.whole_files && pr.have_key_delim) {
        status = cli_fail(CLI_USAGE, COMMAND, "-K splits lines; with -l use -k KEY instead");
    }
    if (status == CLI_OK) {
        status = run(&pr, &c, argv + optind, argc - optind);
    }
    for (size_t i = 0; i < pr.header_count; i++) {
        free((char *)pr.headers[i].name);
    }
    free(pr.headers);
    free(pr.inputs);
    free(pr.used);
    rv_strbuf_free(&pr.delim);
    rv_strbuf_free(&pr.key_delim);
    cli_client_free(&c);
    return status < 0 ? CLI_OK : status;
}
