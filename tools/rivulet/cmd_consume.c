/*
 * cmd_consume.c: `rivulet consume -t TOPIC [OPTIONS]`: reads records and prints them, with a
 * kcat-like format (-f), as JSON objects (-J), or as plain values.
 *
 * Without -g it assigns the partitions itself, starting at -o (beginning by default); with -g
 * it joins the consumer group and commits. Output is formatted into one buffer written to
 * stdout in large pieces (and whenever the consumer is idle), so millions of records print
 * fast and a live tail still shows up at once. Commits only ever cover records whose output
 * reached stdout: a record is committed after it was written, never before (at least once).
 * It stops at -c COUNT records, at the end of every partition with -e, or on SIGINT/SIGTERM,
 * and in each case writes what it formatted and commits it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define COMMAND "consume"
#define POLL_MAX 1024
#define POLL_TIMEOUT_MS 200
#define COMMIT_INTERVAL_MS 5000
#define OUTPUT_FLUSH_BYTES (1u << 20)

typedef enum start_e {
    START_BEGINNING,
    START_END,
    START_STORED,
    START_OFFSET,
    START_TAIL,
    START_TIME
} start_t;

typedef enum field_e {
    FIELD_LITERAL,
    FIELD_TOPIC,
    FIELD_PARTITION,
    FIELD_OFFSET,
    FIELD_KEY,
    FIELD_VALUE,
    FIELD_KEY_LEN,
    FIELD_VALUE_LEN,
    FIELD_TIMESTAMP,
    FIELD_HEADERS
} field_t;

/* One step of a compiled -f format: a field, or `len` literal bytes at `off` in `literals`. */
typedef struct fmt_op_s {
    field_t field;
    size_t off;
    size_t len;
} fmt_op_t;

/* What this process knows of one partition it reads. */
typedef struct part_s {
    const char *topic; /* one of the -t arguments */
    int32_t partition;
    int assigned;
    int64_t eof_at;    /* the end offset reported by on_partition_eof, -1 when not at the end */
    int64_t printed;   /* the offset after the last record formatted, -1 when none */
    int64_t flushed;   /* the offset after the last record written to stdout, -1 when none */
    int64_t committed; /* what was last committed by this process, -1 when nothing */
} part_t;

typedef struct consume_s {
    const char **topics;
    size_t topic_count;
    const char *group;
    int32_t partition; /* -p, or -1 for all */
    start_t start;
    int64_t start_value;
    int exit_at_end;       /* -e */
    int64_t count;         /* -c, 0 = no limit */
    int json;              /* -J */
    int telemetry;         /* --telemetry: decode telemetry packets (tables, or JSON with -J) */
    int quiet;             /* -q */
    const char *null_text; /* how a NULL key or value prints: "" or, with -Z, "NULL" */

    fmt_op_t *ops;
    size_t op_count;
    rv_strbuf_t literals;
    rv_strbuf_t delim; /* after each JSON object */

    rv_consumer_t *consumer;
    part_t *parts;
    size_t part_count;
    size_t part_cap;
    size_t last_part;
    rv_strbuf_t out;
    rv_arena_t *arena;
    uint64_t consumed;
    int output_closed; /* stdout was closed by the reader (EPIPE) */
    int closing;       /* leaving the group: revocations are expected, not news */
    int status;
} consume_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: rivulet consume -t TOPIC [-t TOPIC ...] [OPTIONS]\n\n"
            "Reads records and prints them, one per line (the value) unless told otherwise.\n"
            "  -t TOPIC        a topic to read (repeatable)\n"
            "  -g GROUP        join consumer group GROUP: partitions are shared with the other\n"
            "                  members, and offsets are committed periodically and on exit\n"
            "  -p PARTITION    read only this partition of each topic (not with -g)\n"
            "  -o OFFSET       where to start: beginning (default without -g), end, stored\n"
            "                  (default with -g), an offset, -N (N records before the end of\n"
            "                  each partition) or @TIMESTAMP_MS (the first record at or after\n"
            "                  it); with -g, beginning and end set auto.offset.reset\n"
            "  -e              exit when every partition reached its end\n"
            "  -c COUNT        exit after COUNT records\n"
            "  -f FORMAT       print each record by FORMAT (see below)\n"
            "  -J              print each record as a JSON object\n"
            "  --telemetry     decode telemetry packets: a table per frame, a line per other\n"
            "                  packet (with -J: one JSON line per packet)\n"
            "  -K DELIM        print the key and DELIM before the value\n"
            "  -D DELIM        end each record with DELIM instead of a newline\n"
            "  -Z              print NULL keys and values as \"NULL\"\n"
            "  -q              quiet: no informational messages on stderr\n"
            "  -b URL          broker (default $RIVULET_BROKER, else %s)\n"
            "  -X name=value   configuration (see `rivulet config list`)\n"
            "  -h, --help      this help\n\n"
            "FORMAT fields: %%t topic, %%p partition, %%o offset, %%k key, %%s value, %%K key\n"
            "length, %%S value length (-1 for NULL), %%T timestamp (ms), %%h headers\n"
            "(name=value,...), %%%% a percent sign; escapes \\n \\r \\t \\0 \\\\ \\xHH.\n"
            "-J prints {\"topic\",\"partition\",\"offset\",\"timestamp\",\"key\",\"value\","
            "\"headers\"};\n"
            "keys and values that are not UTF-8 are base64, marked by \"key_encoding\" or\n"
            "\"value_encoding\": \"base64\".\n",
            RV_BROKER_DEFAULT_URL);
}

/* ---- the format ---------------------------------------------------------------------------- */

static int add_op(consume_t *c, field_t field, const void *lit, size_t len) {
    if (field == FIELD_LITERAL && c->op_count && c->ops[c->op_count - 1].field == FIELD_LITERAL) {
        c->ops[c->op_count - 1].len += len; /* literals are contiguous in `literals` */
        return rv_strbuf_append(&c->literals, lit, len) == RV_OK ? 0 : 1;
    }
    fmt_op_t *grown = realloc(c->ops, (c->op_count + 1) * sizeof *grown);
    if (!grown) {
        return 1;
    }
    c->ops = grown;
    c->ops[c->op_count++] = (fmt_op_t){field, c->literals.len, len};
    return field == FIELD_LITERAL && rv_strbuf_append(&c->literals, lit, len) != RV_OK;
}

/* Compiles a -f FORMAT (fields and escapes) into c->ops. */
static int compile_format(consume_t *c, const char *format) {
    rv_strbuf_t lit = RV_STRBUF_INIT;
    for (const char *p = format; *p; p++) {
        if (*p == '%') {
            field_t f;
            switch (p[1]) {
                case 't':
                    f = FIELD_TOPIC;
                    break;
                case 'p':
                    f = FIELD_PARTITION;
                    break;
                case 'o':
                    f = FIELD_OFFSET;
                    break;
                case 'k':
                    f = FIELD_KEY;
                    break;
                case 's':
                    f = FIELD_VALUE;
                    break;
                case 'K':
                    f = FIELD_KEY_LEN;
                    break;
                case 'S':
                    f = FIELD_VALUE_LEN;
                    break;
                case 'T':
                    f = FIELD_TIMESTAMP;
                    break;
                case 'h':
                    f = FIELD_HEADERS;
                    break;
                case '%':
                    f = FIELD_LITERAL;
                    break;
                default:
                    rv_strbuf_free(&lit);
                    if (!p[1]) {
                        return cli_fail(CLI_USAGE, COMMAND, "-f '%s' ends with a lone '%%'",
                                        format);
                    }
                    return cli_fail(CLI_USAGE, COMMAND,
                                    "-f '%s': unknown field '%%%c' (known: %%t %%p %%o %%k %%s "
                                    "%%K %%S %%T %%h %%%%)",
                                    format, p[1]);
            }
            p++;
            if (add_op(c, f, "%", f == FIELD_LITERAL ? 1 : 0)) {
                rv_strbuf_free(&lit);
                return cli_fail(CLI_FAILED, COMMAND, "out of memory");
            }
            continue;
        }
        /* A run of literal text up to the next field, with its escapes decoded. */
        const char *q = p;
        while (*q && *q != '%') {
            q += q[0] == '\\' && q[1] ? 2 : 1;
        }
        char *run = strndup(p, (size_t)(q - p));
        int bad = !run || cli_unescape(COMMAND, "-f", run, &lit);
        free(run);
        if (bad || add_op(c, FIELD_LITERAL, lit.data, lit.len)) {
            rv_strbuf_free(&lit);
            return bad ? CLI_USAGE : cli_fail(CLI_FAILED, COMMAND, "out of memory");
        }
        p = q - 1;
    }
    rv_strbuf_free(&lit);
    return 0;
}

/* ---- formatting one record ------------------------------------------------------------------ */

static void append_i64(rv_strbuf_t *sb, int64_t v) {
    char tmp[24];
    char *end = tmp + sizeof tmp, *p = end;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        *--p = '-';
    }
    rv_strbuf_append(sb, p, (size_t)(end - p));
}

static void append_bytes_or_null(consume_t *c, const void *data, size_t len) {
    if (data) {
        rv_strbuf_append(&c->out, data, len);
    } else {
        rv_strbuf_append(&c->out, c->null_text, strlen(c->null_text));
    }
}

static void format_record(consume_t *c, const rv_record_t *r) {
    rv_strbuf_t *sb = &c->out;
    for (size_t i = 0; i < c->op_count; i++) {
        const fmt_op_t *op = &c->ops[i];
        switch (op->field) {
            case FIELD_LITERAL:
                rv_strbuf_append(sb, c->literals.data + op->off, op->len);
                break;
            case FIELD_TOPIC:
                rv_strbuf_append(sb, r->topic, strlen(r->topic));
                break;
            case FIELD_PARTITION:
                append_i64(sb, r->partition);
                break;
            case FIELD_OFFSET:
                append_i64(sb, r->offset);
                break;
            case FIELD_KEY:
                append_bytes_or_null(c, r->key, r->key_len);
                break;
            case FIELD_VALUE:
                append_bytes_or_null(c, r->value, r->value_len);
                break;
            case FIELD_KEY_LEN:
                append_i64(sb, r->key ? (int64_t)r->key_len : -1);
                break;
            case FIELD_VALUE_LEN:
                append_i64(sb, r->value ? (int64_t)r->value_len : -1);
                break;
            case FIELD_TIMESTAMP:
                append_i64(sb, r->timestamp_ms);
                break;
            case FIELD_HEADERS:
                for (size_t h = 0; h < r->header_count; h++) {
                    const rv_header_t *hd = &r->headers[h];
                    if (h) {
                        rv_strbuf_append(sb, ",", 1);
                    }
                    rv_strbuf_append(sb, hd->name, strlen(hd->name));
                    if (hd->value) {
                        rv_strbuf_append(sb, "=", 1);
                        rv_strbuf_append(sb, hd->value, hd->value_len);
                    }
                }
                break;
        }
    }
}

/* A string node when `data` is UTF-8, else a bytes node (written as base64). */
static rv_value_t *json_bytes(rv_arena_t *a, const void *data, size_t len, int *base64) {
    if (!data) {
        *base64 = 0;
        return rv_value_new_null(a);
    }
    *base64 = !cli_utf8_valid(data, len);
    return *base64 ? rv_value_new_bytes(a, data, len)
                   : rv_value_new_string_ref(a, len ? data : "", len);
}

static int set_member(rv_arena_t *a, rv_value_t *obj, const char *name, rv_value_t *v) {
    return v && rv_value_set(a, obj, name, strlen(name), v) == RV_OK ? 0 : 1;
}

/* Appends `r` as one JSON object. Returns 0, or 1 after printing what failed. */
static int format_json(consume_t *c, const rv_record_t *r) {
    rv_arena_t *a = c->arena;
    rv_arena_reset(a);
    rv_value_t *obj = rv_value_new_object(a, 10);
    rv_value_t *headers = rv_value_new_object(a, r->header_count);
    int key_b64 = 0, value_b64 = 0, bad = !obj || !headers;
    bad =
        bad || set_member(a, obj, "topic", rv_value_new_string_ref(a, r->topic, strlen(r->topic)));
    bad = bad || set_member(a, obj, "partition", rv_value_new_int(a, r->partition));
    bad = bad || set_member(a, obj, "offset", rv_value_new_int(a, r->offset));
    bad = bad || set_member(a, obj, "timestamp", rv_value_new_int(a, r->timestamp_ms));
    bad = bad || set_member(a, obj, "key", json_bytes(a, r->key, r->key_len, &key_b64));
    if (key_b64) {
        bad = bad || set_member(a, obj, "key_encoding", rv_value_new_string_ref(a, "base64", 6));
    }
    bad = bad || set_member(a, obj, "value", json_bytes(a, r->value, r->value_len, &value_b64));
    if (value_b64) {
        bad = bad || set_member(a, obj, "value_encoding", rv_value_new_string_ref(a, "base64", 6));
    }
    for (size_t h = 0; h < r->header_count && !bad; h++) {
        const rv_header_t *hd = &r->headers[h];
        int unused;
        if (!cli_utf8_valid(hd->name, strlen(hd->name))) {
            fprintf(stderr,
                    "rivulet consume: topic '%s' partition %" PRId32 " offset %" PRId64
                    ": a header name is not UTF-8; left out of the JSON\n",
                    r->topic, r->partition, r->offset);
            continue;
        }
        bad = set_member(a, headers, hd->name, json_bytes(a, hd->value, hd->value_len, &unused));
    }
    bad = bad || set_member(a, obj, "headers", headers);
    if (bad) {
        return cli_fail(CLI_FAILED, COMMAND, "out of memory");
    }
    rv_error_t *err = NULL;
    size_t mark = c->out.len;
    if (rv_json_write(&c->out, obj, RV_JSON_COMPACT, &err) != RV_OK) {
        c->out.len = mark;
        cli_fail(CLI_FAILED, COMMAND, "topic '%s' partition %" PRId32 " offset %" PRId64 ": %s",
                 r->topic, r->partition, r->offset, rv_error_message(err));
        rv_error_destroy(err);
        return 1;
    }
    rv_strbuf_append(&c->out, c->delim.data, c->delim.len);
    return 0;
}

/* ---- partitions, output and commits -------------------------------------------------------- */

static const char *own_topic(const consume_t *c, const char *topic) {
    for (size_t i = 0; i < c->topic_count; i++) {
        if (c->topics[i] == topic || strcmp(c->topics[i], topic) == 0) {
            return c->topics[i];
        }
    }
    return NULL;
}

/* The entry for topic/partition, created when `create` (NULL when out of memory or unknown). */
static part_t *part_find(consume_t *c, const char *topic, int32_t partition, int create) {
    if (c->last_part < c->part_count) {
        part_t *p = &c->parts[c->last_part];
        if (p->partition == partition && (p->topic == topic || strcmp(p->topic, topic) == 0)) {
            return p;
        }
    }
    for (size_t i = 0; i < c->part_count; i++) {
        part_t *p = &c->parts[i];
        if (p->partition == partition && strcmp(p->topic, topic) == 0) {
            c->last_part = i;
            return p;
        }
    }
    const char *own = own_topic(c, topic);
    if (!create || !own) {
        return NULL;
    }
    if (c->part_count == c->part_cap) {
        size_t cap = c->part_cap ? c->part_cap * 2 : 16;
        part_t *grown = realloc(c->parts, cap * sizeof *grown);
        if (!grown) {
            return NULL;
        }
        c->parts = grown;
        c->part_cap = cap;
    }
    c->parts[c->part_count] = (part_t){own, partition, 0, -1, -1, -1, -1};
    c->last_part = c->part_count;
    return &c->parts[c->part_count++];
}

/* Writes the formatted output to stdout; what was written becomes committable. */
static int flush_output(consume_t *c) {
    size_t done = 0;
    while (done < c->out.len && !c->output_closed) {
        ssize_t n = write(STDOUT_FILENO, c->out.data + done, c->out.len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            c->output_closed = 1;
            if (errno != EPIPE) { /* a reader that went away (| head) is not an error */
                cli_fail(CLI_FAILED, COMMAND, "cannot write to standard output: %s",
                         strerror(errno));
                c->status = CLI_FAILED;
            }
            break;
        }
        done += (size_t)n;
    }
    if (c->output_closed) {
        return 1;
    }
    rv_strbuf_clear(&c->out);
    for (size_t i = 0; i < c->part_count; i++) {
        c->parts[i].flushed = c->parts[i].printed;
    }
    return 0;
}

/* Commits what was written of the assigned partitions (of `only`, when not NULL). */
static void commit_written(consume_t *c, const rv_topic_partition_t *only, size_t only_count) {
    if (!c->group || !c->part_count) {
        return;
    }
    rv_topic_partition_t *tps = calloc(c->part_count, sizeof *tps);
    size_t n = 0;
    for (size_t i = 0; tps && i < c->part_count; i++) {
        part_t *p = &c->parts[i];
        if (!p->assigned || p->flushed < 0 || p->flushed == p->committed) {
            continue;
        }
        int wanted = !only;
        for (size_t j = 0; j < only_count && !wanted; j++) {
            wanted = only[j].partition == p->partition && strcmp(only[j].topic, p->topic) == 0;
        }
        if (wanted) {
            tps[n++] = (rv_topic_partition_t){p->topic, p->partition, p->flushed};
        }
    }
    rv_error_t *err = NULL;
    if (!tps) {
        c->status = cli_fail(CLI_FAILED, COMMAND, "out of memory; offsets not committed");
    } else if (n && rv_consumer_commit(c->consumer, tps, n, &err) != RV_OK) {
        c->status = cli_fail(CLI_FAILED, COMMAND, "group '%s': commit failed: %s", c->group,
                             rv_error_message(err));
    } else {
        for (size_t i = 0; i < n; i++) {
            part_find(c, tps[i].topic, tps[i].partition, 0)->committed = tps[i].offset;
        }
    }
    rv_error_destroy(err); /* NULL unless the commit failed */
    free(tps);
}

static void print_partitions(const char *what, const consume_t *c, const rv_topic_partition_t *tps,
                             size_t count) {
    rv_strbuf_t sb = RV_STRBUF_INIT;
    for (size_t i = 0; i < count; i++) {
        rv_strbuf_appendf(&sb, "%s%s [%" PRId32 "]", i ? ", " : "", tps[i].topic, tps[i].partition);
    }
    fprintf(stderr, "rivulet consume: group '%s': %s %s\n", c->group, what,
            sb.len ? sb.data : "no partitions");
    rv_strbuf_free(&sb);
}

static void on_assign(void *opaque, rv_consumer_t *consumer, const rv_topic_partition_t *tps,
                      size_t count) {
    consume_t *c = opaque;
    (void)consumer;
    if (!c->group) {
        return; /* assign mode set its partitions up itself */
    }
    for (size_t i = 0; i < count; i++) {
        part_t *p = part_find(c, tps[i].topic, tps[i].partition, 1);
        if (p) {
            *p = (part_t){p->topic, p->partition, 1, -1, -1, -1, -1};
        }
    }
    if (!c->quiet) {
        print_partitions("assigned", c, tps, count);
    }
}

static void on_revoke(void *opaque, rv_consumer_t *consumer, const rv_topic_partition_t *tps,
                      size_t count) {
    consume_t *c = opaque;
    (void)consumer;
    if (!c->group) {
        return;
    }
    flush_output(c);
    commit_written(c, tps, count);
    for (size_t i = 0; i < count; i++) {
        part_t *p = part_find(c, tps[i].topic, tps[i].partition, 0);
        if (p) {
            p->assigned = 0;
        }
    }
    if (!c->quiet && !c->closing) {
        print_partitions("revoked", c, tps, count);
    }
}

static void on_partition_eof(void *opaque, rv_consumer_t *consumer, const char *topic,
                             int32_t partition, int64_t offset) {
    consume_t *c = opaque;
    (void)consumer;
    part_t *p = part_find(c, topic, partition, 0);
    if (!p || p->eof_at == offset) {
        return;
    }
    p->eof_at = offset;
    if (!c->quiet) {
        fprintf(stderr,
                "rivulet consume: reached the end of topic '%s' partition %" PRId32
                " at offset %" PRId64 "\n",
                topic, partition, offset);
    }
}

/* With -e: whether every assigned partition is at its end. */
static int all_at_end(const consume_t *c) {
    size_t assigned = 0;
    for (size_t i = 0; i < c->part_count; i++) {
        if (c->parts[i].assigned) {
            if (c->parts[i].eof_at < 0) {
                return 0;
            }
            assigned++;
        }
    }
    return assigned > 0;
}

/* ---- setting up ------------------------------------------------------------------------------ */

static int parse_start(consume_t *c, const char *arg) {
    if (strcmp(arg, "beginning") == 0) {
        c->start = START_BEGINNING;
    } else if (strcmp(arg, "end") == 0) {
        c->start = START_END;
    } else if (strcmp(arg, "stored") == 0) {
        c->start = START_STORED;
    } else if (arg[0] == '@' && !cli_parse_int64(arg + 1, 0, INT64_MAX, &c->start_value)) {
        c->start = START_TIME;
    } else if (arg[0] == '-' && !cli_parse_int64(arg + 1, 1, INT64_MAX, &c->start_value)) {
        c->start = START_TAIL;
    } else if (!cli_parse_int64(arg, 0, INT64_MAX, &c->start_value)) {
        c->start = START_OFFSET;
    } else {
        return cli_fail(CLI_USAGE, COMMAND,
                        "-o takes beginning, end, stored, an offset, -N (N records before the "
                        "end) or @TIMESTAMP_MS; got '%s'",
                        arg);
    }
    return 0;
}

/* Assign mode: every partition (or -p) of every topic, at the -o position. */
static int assign_partitions(consume_t *c, rv_broker_t *b) {
    rv_error_t *err = NULL;
    for (size_t t = 0; t < c->topic_count; t++) {
        int32_t partitions = 0;
        if (rv_broker_describe_topic(b, c->topics[t], &partitions, NULL, &err) != RV_OK) {
            return cli_fail_error(CLI_FAILED, COMMAND, err);
        }
        if (c->partition >= partitions) {
            return cli_fail(
                CLI_FAILED, COMMAND,
                "-p %" PRId32 ": topic '%s' has %" PRId32 " partition%s (0..%" PRId32 ")",
                c->partition, c->topics[t], partitions, partitions == 1 ? "" : "s", partitions - 1);
        }
        for (int32_t p = 0; p < partitions; p++) {
            if (c->partition >= 0 && p != c->partition) {
                continue;
            }
            part_t *part = part_find(c, c->topics[t], p, 1);
            if (!part) {
                return cli_fail(CLI_FAILED, COMMAND, "out of memory");
            }
            part->assigned = 1;
        }
    }
    rv_topic_partition_t *tps = calloc(c->part_count ? c->part_count : 1, sizeof *tps);
    if (!tps) {
        return cli_fail(CLI_FAILED, COMMAND, "out of memory");
    }
    int status = CLI_OK;
    for (size_t i = 0; i < c->part_count && status == CLI_OK; i++) {
        part_t *p = &c->parts[i];
        tps[i] = (rv_topic_partition_t){p->topic, p->partition, RV_OFFSET_BEGINNING};
        if (c->start == START_END) {
            tps[i].offset = RV_OFFSET_END;
        } else if (c->start == START_OFFSET || c->start == START_TIME) {
            tps[i].offset = c->start_value;
        } else if (c->start == START_TAIL) {
            int64_t low = 0, high = 0;
            if (rv_broker_watermarks(b, p->topic, p->partition, &low, &high, &err) != RV_OK) {
                status = cli_fail_error(CLI_FAILED, COMMAND, err);
                break;
            }
            tps[i].offset = high - c->start_value > low ? high - c->start_value : low;
        }
    }
    if (status == CLI_OK && c->start == START_TIME &&
        rv_consumer_offsets_for_times(c->consumer, tps, c->part_count, &err) != RV_OK) {
        status = cli_fail_error(CLI_FAILED, COMMAND, err);
    }
    if (status == CLI_OK && rv_consumer_assign(c->consumer, tps, c->part_count, &err) != RV_OK) {
        status = cli_fail_error(CLI_FAILED, COMMAND, err);
    }
    free(tps);
    return status;
}

/* Group mode: check the topics exist (for a clear error), then subscribe. */
static int subscribe_topics(consume_t *c, rv_broker_t *b) {
    rv_error_t *err = NULL;
    for (size_t t = 0; t < c->topic_count; t++) {
        int32_t partitions = 0;
        if (rv_broker_describe_topic(b, c->topics[t], &partitions, NULL, &err) != RV_OK) {
            return cli_fail_error(CLI_FAILED, COMMAND, err);
        }
    }
    if (rv_consumer_subscribe(c->consumer, c->topics, c->topic_count, &err) != RV_OK) {
        return cli_fail_error(CLI_FAILED, COMMAND, err);
    }
    return CLI_OK;
}

/* ---- the loop -------------------------------------------------------------------------------- */

static void consume_loop(consume_t *c) {
    int64_t last_commit = rv_clock_mono_ms();
    while (!stop_requested && !c->output_closed && c->status == CLI_OK) {
        size_t max = POLL_MAX;
        if (c->count && (uint64_t)(c->count) - c->consumed < max) {
            max = (size_t)((uint64_t)c->count - c->consumed);
        }
        const rv_record_t *recs = NULL;
        size_t n = 0;
        rv_error_t *err = NULL;
        rv_err_t e = rv_consumer_poll(c->consumer, &recs, max, &n, POLL_TIMEOUT_MS, &err);
        if (e != RV_OK && e != RV_ERR_TIMEOUT && e != RV_ERR_AGAIN) {
            c->status = cli_fail_error(CLI_FAILED, COMMAND, err);
            break;
        }
        rv_error_destroy(err);
        for (size_t i = 0; i < n; i++) {
            const rv_record_t *r = &recs[i];
            part_t *p = part_find(c, r->topic, r->partition, 1);
            if (p) {
                p->printed = r->offset + 1;
                if (p->eof_at >= 0 && r->offset >= p->eof_at) {
                    p->eof_at = -1; /* records arrived after the end it had reached */
                }
            }
            if (c->telemetry) {
                cli_telemetry_format(&c->out, c->arena, r, c->json, COMMAND);
            } else if (c->json) {
                if (format_json(c, r)) {
                    c->status = CLI_FAILED;
                }
            } else {
                format_record(c, r);
            }
            c->consumed++;
            if (c->out.len >= OUTPUT_FLUSH_BYTES) {
                flush_output(c);
            }
            if (c->count && c->consumed >= (uint64_t)c->count) {
                return;
            }
        }
        if (n == 0) {
            flush_output(c); /* idle: show what there is */
        }
        if (c->exit_at_end && all_at_end(c)) {
            return;
        }
        if (c->group && rv_clock_mono_ms() - last_commit >= COMMIT_INTERVAL_MS) {
            flush_output(c);
            commit_written(c, NULL, 0);
            last_commit = rv_clock_mono_ms();
        }
    }
}

static int run(consume_t *c, cli_client_t *cl) {
    if (c->group && (c->start == START_BEGINNING || c->start == START_END)) {
        rv_error_t *err = NULL;
        if (rv_conf_set(cl->conf, "auto.offset.reset",
                        c->start == START_BEGINNING ? "earliest" : "latest", &err) != RV_OK) {
            return cli_fail_error(CLI_FAILED, COMMAND, err);
        }
    }
    rv_broker_t *b = cli_client_open(cl);
    if (!b) {
        return CLI_FAILED;
    }
    rv_error_t *err = NULL;
    rv_consumer_opts_t copts = {
        .group = c->group,
        .callbacks = {.opaque = c,
                      .on_assign = on_assign,
                      .on_revoke = on_revoke,
                      .on_partition_eof = on_partition_eof},
    };
    c->consumer = rv_consumer_new(b, &copts, &err);
    if (!c->consumer) {
        rv_broker_close(b);
        return cli_fail_error(CLI_FAILED, COMMAND, err);
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second signal ends the process at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout shows up as EPIPE from write() */

    c->status = c->group ? subscribe_topics(c, b) : assign_partitions(c, b);
    if (c->status == CLI_OK) {
        consume_loop(c);
    }
    flush_output(c);
    commit_written(c, NULL, 0);
    c->closing = 1;
    rv_consumer_close(c->consumer); /* revokes: on_revoke commits anything left */
    rv_broker_close(b);
    return c->status;
}

int cmd_consume(int argc, char **argv) {
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
                                             {"telemetry", no_argument, NULL, 1000},
                                             {0, 0, 0, 0}};
    consume_t c = {.partition = -1, .start = START_BEGINNING, .null_text = ""};
    const char *format = NULL, *key_delim = NULL, *delim = NULL;
    int start_given = 0;
    cli_client_t cl;
    if (cli_client_init(&cl, COMMAND)) {
        return CLI_FAILED;
    }
    c.topics = calloc((size_t)argc, sizeof *c.topics);
    c.arena = rv_arena_new(0);
    int status = c.topics && c.arena ? CLI_OK : cli_fail(CLI_FAILED, COMMAND, "out of memory");
    int64_t v;
    int opt;
    optind = 0;
    opterr = 0;
    while (status == CLI_OK &&
           (opt = getopt_long(argc, argv, ":b:X:t:g:p:o:ec:f:JK:D:Zqh", longopts, NULL)) != -1) {
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
                c.topics[c.topic_count++] = optarg;
                break;
            case 'g':
                c.group = optarg;
                if (!*optarg) {
                    status = cli_fail(CLI_USAGE, COMMAND, "-g needs a group name");
                }
                break;
            case 'p':
                if (cli_parse_int64(optarg, 0, INT32_MAX, &v)) {
                    status = cli_fail(CLI_USAGE, COMMAND,
                                      "-p needs a partition number (0 or more), got '%s'", optarg);
                }
                c.partition = (int32_t)v;
                break;
            case 'o':
                status = parse_start(&c, optarg);
                start_given = 1;
                break;
            case 'e':
                c.exit_at_end = 1;
                break;
            case 'c':
                if (cli_parse_int64(optarg, 1, INT64_MAX, &c.count)) {
                    status = cli_fail(CLI_USAGE, COMMAND,
                                      "-c needs a record count (1 or more), got '%s'", optarg);
                }
                break;
            case 'f':
                format = optarg;
                break;
            case 'J':
                c.json = 1;
                break;
            case 'K':
                key_delim = optarg;
                break;
            case 'D':
                delim = optarg;
                break;
            case 'Z':
                c.null_text = "NULL";
                break;
            case 'q':
                c.quiet = 1;
                break;
            case 1000:
                c.telemetry = 1;
                break;
            default:
                status = cli_bad_option(COMMAND, opt, argv);
                break;
        }
    }
    if (status == CLI_OK && optind < argc) {
        status = cli_fail(CLI_USAGE, COMMAND, "unexpected argument '%s'", argv[optind]);
    } else if (status == CLI_OK && c.topic_count == 0) {
        status = cli_fail(CLI_USAGE, COMMAND, "-t TOPIC is required");
    } else if (status == CLI_OK && c.group && c.partition >= 0) {
        status = cli_fail(CLI_USAGE, COMMAND,
                          "-p cannot be used with -g: the group assigns the partitions");
    } else if (status == CLI_OK && c.group && start_given && c.start != START_BEGINNING &&
               c.start != START_END && c.start != START_STORED) {
        status = cli_fail(CLI_USAGE, COMMAND,
                          "with -g, -o takes beginning, end or stored (where to start when the "
                          "group has no committed offset)");
    } else if (status == CLI_OK && !c.group && c.start == START_STORED) {
        status = cli_fail(CLI_USAGE, COMMAND, "-o stored needs a group (-g GROUP)");
    } else if (status == CLI_OK && (format || c.json) && key_delim) {
        status = cli_fail(CLI_USAGE, COMMAND, "-K cannot be combined with -f or -J");
    } else if (status == CLI_OK && c.telemetry && (format || key_delim)) {
        status = cli_fail(CLI_USAGE, COMMAND, "--telemetry cannot be combined with -f or -K");
    } else if (status == CLI_OK && format && (c.json || delim)) {
        status = cli_fail(CLI_USAGE, COMMAND, "-f cannot be combined with -J or -D");
    }
    if (status == CLI_OK && c.group && !start_given) {
        c.start = START_STORED;
    }
    /* Compile the output: -f, or the default "%s\n" with -K and -D folded in. */
    if (status == CLI_OK && c.json) {
        if (cli_unescape(COMMAND, "-D", delim ? delim : "\\n", &c.delim)) {
            status = CLI_USAGE;
        }
    } else if (status == CLI_OK && format) {
        status = compile_format(&c, format);
    } else if (status == CLI_OK) {
        rv_strbuf_t sb = RV_STRBUF_INIT;
        if (key_delim) {
            status = add_op(&c, FIELD_KEY, NULL, 0) ||
                             cli_unescape(COMMAND, "-K", key_delim, &sb) ||
                             add_op(&c, FIELD_LITERAL, sb.data, sb.len)
                         ? CLI_USAGE
                         : CLI_OK;
        }
        if (status == CLI_OK) {
            status = add_op(&c, FIELD_VALUE, NULL, 0) ||
                             cli_unescape(COMMAND, "-D", delim ? delim : "\\n", &sb) ||
                             add_op(&c, FIELD_LITERAL, sb.data, sb.len)
                         ? CLI_USAGE
                         : CLI_OK;
        }
        rv_strbuf_free(&sb);
    }
    if (status == CLI_OK) {
        status = run(&c, &cl);
    }
    free(c.topics);
    free(c.ops);
    free(c.parts);
    rv_strbuf_free(&c.literals);
    rv_strbuf_free(&c.delim);
    rv_strbuf_free(&c.out);
    rv_arena_destroy(c.arena);
    cli_client_free(&cl);
    return status < 0 ? CLI_OK : status;
}
