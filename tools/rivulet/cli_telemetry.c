/*
 * cli_telemetry.c: what the telemetry commands (sessions, replay, record, consume --telemetry)
 * share: data times as text and back, and a readable rendering of a telemetry record (a table
 * per frame). Public API only; it prints nothing itself but into the buffers it is given.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

void cli_time_format(int64_t ns, char *out, size_t size) {
    int64_t secs = ns / 1000000000LL, frac = ns % 1000000000LL;
    if (frac < 0) {
        frac += 1000000000LL;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac % 1000000 == 0) {
        snprintf(out, size, "%s.%03" PRId64 "Z", base, frac / 1000000);
    } else if (frac % 1000 == 0) {
        snprintf(out, size, "%s.%06" PRId64 "Z", base, frac / 1000);
    } else {
        snprintf(out, size, "%s.%09" PRId64 "Z", base, frac);
    }
}

/* ISO 8601: YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|+HH:MM|-HH:MM]. */
static int parse_iso(const char *s, int64_t *ns) {
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
        n < 19) {
        return 1;
    }
    const char *p = s + n;
    int64_t frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; isdigit((unsigned char)*p); p++, digits++) {
            if (digits < 9) {
                frac = frac * 10 + (*p - '0');
            }
        }
        if (!digits) {
            return 1;
        }
        for (; digits < 9; digits++) {
            frac *= 10;
        }
    }
    int64_t offset = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5) {
            return 1;
        }
        offset = (oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
        return 1;
    }
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    int64_t secs = (int64_t)timegm(&tm) - offset;
    *ns = secs * 1000000000LL + frac;
    return 0;
}

int cli_time_parse(const char *text, int64_t *ns) {
    if (!text || !*text) {
        return 1;
    }
    if (!cli_parse_int64(text, INT64_MIN, INT64_MAX, ns)) {
        return 0; /* an integer: ns since the epoch */
    }
    if (strchr(text, '-') && !parse_iso(text, ns)) {
        return 0;
    }
    errno = 0;
    char *end = NULL;
    double secs = strtod(text, &end);
    if (errno || *end || end == text || !isfinite(secs) || fabs(secs) > 9.2e9) {
        return 1;
    }
    *ns = (int64_t)llround(secs * 1e9); /* seconds since the epoch */
    return 0;
}

static void append_double(rv_strbuf_t *out, double v) {
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v) {
        snprintf(tmp, sizeof tmp, "%.17g", v);
    }
    rv_strbuf_append(out, tmp, strlen(tmp));
}

/* The text of one cell (absent: "-"). */
static void cell_text(rv_strbuf_t *cell, const rv_tcolumn_t *col, size_t row) {
    rv_strbuf_clear(cell);
    if (!rv_tcolumn_has(col, row)) {
        rv_strbuf_append(cell, "-", 1);
        return;
    }
    switch (col->type) {
        case RV_TCOL_DOUBLE:
            append_double(cell, col->v.d[row]);
            break;
        case RV_TCOL_INT64:
            rv_strbuf_appendf(cell, "%" PRId64, col->v.i[row]);
            break;
        case RV_TCOL_BYTES:
            rv_strbuf_appendf(cell, "<%zu bytes>", col->v.s[row].len);
            break;
        default:
            rv_strbuf_append(cell, col->v.s[row].data, col->v.s[row].len);
            break;
    }
}

void cli_frame_table(rv_strbuf_t *out, const rv_tframe_t *f) {
    size_t ncol = f->column_count + 1;
    size_t *width = calloc(ncol, sizeof *width);
    rv_strbuf_t cell = RV_STRBUF_INIT;
    char when[48];
    if (!width) {
        return;
    }
    width[0] = 4;
    for (size_t c = 0; c < f->column_count; c++) {
        width[c + 1] = strlen(f->columns[c].name);
    }
    for (size_t r = 0; r < f->rows; r++) {
        cli_time_format(f->timestamps[r], when, sizeof when);
        width[0] = strlen(when) > width[0] ? strlen(when) : width[0];
        for (size_t c = 0; c < f->column_count; c++) {
            cell_text(&cell, &f->columns[c], r);
            width[c + 1] = cell.len > width[c + 1] ? cell.len : width[c + 1];
        }
    }
    /* Header, then rows; text columns left-aligned, numbers right-aligned; no trailing blanks. */
    for (size_t r = 0; r <= f->rows; r++) {
        size_t mark = out->len;
        for (size_t c = 0; c < ncol; c++) {
            const char *text;
            size_t len;
            int right = 0;
            if (r == 0) {
                text = c == 0 ? "time" : f->columns[c - 1].name;
                len = strlen(text);
                right = c > 0 && (f->columns[c - 1].type == RV_TCOL_DOUBLE ||
                                  f->columns[c - 1].type == RV_TCOL_INT64);
            } else if (c == 0) {
                cli_time_format(f->timestamps[r - 1], when, sizeof when);
                text = when;
                len = strlen(when);
            } else {
                cell_text(&cell, &f->columns[c - 1], r - 1);
                text = cell.data;
                len = cell.len;
                right = f->columns[c - 1].type == RV_TCOL_DOUBLE ||
                        f->columns[c - 1].type == RV_TCOL_INT64;
            }
            if (c) {
                rv_strbuf_append(out, "  ", 2);
            }
            size_t pad = width[c] - len;
            if (right) {
                rv_strbuf_appendf(out, "%*s", (int)pad, "");
            }
            rv_strbuf_append(out, text, len);
            if (!right) {
                rv_strbuf_appendf(out, "%*s", (int)pad, "");
            }
        }
        while (out->len > mark && out->data[out->len - 1] == ' ') {
            out->len--;
        }
        rv_strbuf_append(out, "\n", 1);
    }
    rv_strbuf_free(&cell);
    free(width);
}

static int packet_format(rv_strbuf_t *out, const rv_tpacket_t *p, int json, const char *command);

int cli_telemetry_format(rv_strbuf_t *out, rv_arena_t *arena, const rv_record_t *r, int json,
                         const char *command) {
    rv_arena_reset(arena);
    rv_tpacket_t *p = NULL;
    rv_error_t *err = NULL;
    const char *v = r->value ? r->value : "";
    size_t i = 0;
    while (i < r->value_len && (v[i] == ' ' || v[i] == '\n' || v[i] == '\t' || v[i] == '\r')) {
        i++;
    }
    rv_err_t e = i < r->value_len && (v[i] == '{' || v[i] == '[')
                     ? rv_tpacket_read_quix(arena, v, r->value_len, &p, &err)
                     : rv_tpacket_decode(arena, v, r->value_len, &p, &err);
    if (e != RV_OK) {
        fprintf(stderr,
                "rivulet %s: topic '%s' partition %" PRId32 " offset %" PRId64
                " key '%.*s': %s (skipped)\n",
                command, r->topic, r->partition, r->offset, r->key ? (int)r->key_len : 0,
                r->key ? (const char *)r->key : "", rv_error_message(err));
        rv_error_destroy(err);
        return 1;
    }
    if (!p->stream_id && r->key) {
        p->stream_id = rv_arena_strndup(arena, r->key, r->key_len);
    }
    return cli_packet_format(out, p, json, command);
}

/*
 * The data formats printed so far, per stream. Writers on the protobuf wire leave out the column
 * names a frame's data format gives (the format goes out first and again with each re-send), so
 * a frame is printed with the names of the last format of its stream and id. Process-wide: the
 * CLI prints one topic at a time, from one thread.
 */
typedef struct seen_format_s {
    char *stream;
    uint32_t id;
    char **ids;
    size_t count;
} seen_format_t;

static seen_format_t *seen_formats;
static size_t seen_count;

static seen_format_t *seen_find(const char *stream, uint32_t id) {
    for (size_t i = 0; i < seen_count; i++) {
        if (seen_formats[i].id == id && strcmp(seen_formats[i].stream, stream) == 0) {
            return &seen_formats[i];
        }
    }
    return NULL;
}

static void seen_remember(const rv_tpacket_t *p) {
    const char *stream = p->stream_id ? p->stream_id : "";
    seen_format_t *f = seen_find(stream, p->u.format.format_id);
    if (!f) {
        seen_format_t *grown = realloc(seen_formats, (seen_count + 1) * sizeof *grown);
        char *copy = strdup(stream);
        if (!grown || !copy) {
            seen_formats = grown ? grown : seen_formats;
            free(copy);
            return;
        }
        seen_formats = grown;
        f = &seen_formats[seen_count++];
        *f = (seen_format_t){.stream = copy, .id = p->u.format.format_id};
    }
    for (size_t i = 0; i < f->count; i++) {
        free(f->ids[i]);
    }
    free(f->ids);
    f->count = 0;
    f->ids = calloc(p->u.format.count + 1, sizeof *f->ids);
    for (size_t i = 0; f->ids && i < p->u.format.count; i++) {
        const char *id = p->u.format.parameter_ids[i];
        f->ids[i] = strdup(id ? id : "");
        f->count += f->ids[i] != NULL;
    }
}

/* `f` with the names its stream's data format gives, in `cols` (free it) when any was
 * missing; `f` itself otherwise. */
static const rv_tframe_t *seen_name(const rv_tpacket_t *p, const rv_tframe_t *f, rv_tframe_t *named,
                                    rv_tcolumn_t **cols) {
    *cols = NULL;
    seen_format_t *fmt =
        f->format_id ? seen_find(p->stream_id ? p->stream_id : "", f->format_id) : NULL;
    if (!fmt || !(*cols = malloc(f->column_count * sizeof **cols + 1))) {
        return f;
    }
    for (size_t c = 0, k = 0; c < f->column_count; c++) {
        (*cols)[c] = f->columns[c];
        if (f->columns[c].type == RV_TCOL_TAG) {
            continue;
        }
        if ((!f->columns[c].name || !*f->columns[c].name) && k < fmt->count) {
            (*cols)[c].name = fmt->ids[k];
        }
        k++;
    }
    *named = *f;
    named->columns = *cols;
    return named;
}

int cli_packet_format(rv_strbuf_t *out, const rv_tpacket_t *p, int json, const char *command) {
    if (p->type == RV_TPACKET_DATA_FORMAT) {
        seen_remember(p);
    }
    const rv_tframe_t *f = p->type == RV_TPACKET_FRAME           ? p->u.frame
                           : p->type == RV_TPACKET_PERIODIC_DATA ? p->u.periodic.frame
                                                                 : NULL;
    if (f) {
        rv_tframe_t named;
        rv_tcolumn_t *cols;
        rv_tpacket_t copy = *p;
        f = seen_name(p, f, &named, &cols);
        if (p->type == RV_TPACKET_FRAME) {
            copy.u.frame = f;
        } else {
            copy.u.periodic.frame = f;
        }
        int rc = packet_format(out, &copy, json, command);
        free(cols);
        return rc;
    }
    return packet_format(out, p, json, command);
}

static int packet_format(rv_strbuf_t *out, const rv_tpacket_t *p, int json, const char *command) {
    rv_error_t *err = NULL;
    if (json) {
        if (rv_tpacket_write_json(p, out, &err) != RV_OK) {
            cli_fail(CLI_FAILED, command, "%s", rv_error_message(err));
            rv_error_destroy(err);
            return 1;
        }
        rv_strbuf_append(out, "\n", 1);
        return 0;
    }
    const char *id = p->stream_id ? p->stream_id : "-";
    const rv_tframe_t *f = p->type == RV_TPACKET_FRAME           ? p->u.frame
                           : p->type == RV_TPACKET_PERIODIC_DATA ? p->u.periodic.frame
                                                                 : NULL;
    if (f) {
        rv_strbuf_appendf(out, "%s %s: %zu row%s", id, rv_tpacket_type_name(p->type), f->rows,
                          f->rows == 1 ? "" : "s");
        if (f->format_id) {
            rv_strbuf_appendf(out, ", format %" PRIu32, f->format_id);
        }
        rv_strbuf_append(out, "\n", 1);
        cli_frame_table(out, f);
        return 0;
    }
    rv_strbuf_appendf(out, "%s %s: ", id, rv_tpacket_type_name(p->type));
    if (rv_tpacket_write_json(p, out, &err) != RV_OK) {
        rv_error_destroy(err);
        rv_strbuf_append(out, "?", 1);
    }
    rv_strbuf_append(out, "\n", 1);
    return 0;
}
