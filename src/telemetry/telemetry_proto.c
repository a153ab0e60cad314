/*
 * telemetry_proto.c: the protobuf wire format of proto/telemetry.proto, by hand.
 *
 * Encoding appends to the caller's buffer; a nested message is written in place and its length
 * prefix inserted after it (one memmove per message). Decoding reads straight from the record's
 * bytes into the arena: packed double columns are copied in bulk, timestamps are delta varints.
 * Every field is checked: wire types, lengths, UTF-8 of strings, bitmaps against row counts, and
 * each failure names the packet type, the field and the byte offset. The tests check this code
 * against protoc-c's generated code in both directions. This file must never trust a length it
 * read before checking it against the bytes that remain.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/telemetry_int.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* Envelope field numbers of the packets, indexed by rv_tpacket_type_t. */
static const uint32_t packet_field[] = {[RV_TPACKET_STREAM_PROPERTIES] = 10,
                                        [RV_TPACKET_STREAM_END] = 11,
                                        [RV_TPACKET_SESSION_START] = 12,
                                        [RV_TPACKET_SESSION_INFO] = 13,
                                        [RV_TPACKET_SESSION_END] = 14,
                                        [RV_TPACKET_PARAMETER_DEFINITIONS] = 15,
                                        [RV_TPACKET_EVENT_DEFINITIONS] = 16,
                                        [RV_TPACKET_DATA_FORMAT] = 17,
                                        [RV_TPACKET_PERIODIC_DATA] = 18,
                                        [RV_TPACKET_FRAME] = 19,
                                        [RV_TPACKET_EVENTS] = 20,
                                        [RV_TPACKET_MARKERS] = 21,
                                        [RV_TPACKET_COVERAGE] = 22};

static uint64_t zigzag(int64_t v) {
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v) {
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* ---- writing -------------------------------------------------------------------------------- */

typedef struct wr_s {
    rv_strbuf_t *out;
    bool nomem;
} wr_t;

static void put_raw(wr_t *w, const void *data, size_t n) {
    if (!w->nomem && rv_strbuf_append(w->out, data, n) != RV_OK) {
        w->nomem = true;
    }
}

static size_t varint_to(uint8_t *b, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    return n;
}

static void put_varint(wr_t *w, uint64_t v) {
    uint8_t b[10];
    put_raw(w, b, varint_to(b, v));
}

static void put_key(wr_t *w, uint32_t field, int wt) {
    put_varint(w, (uint64_t)field << 3 | (unsigned)wt);
}

static void put_uint(wr_t *w, uint32_t field, uint64_t v) {
    put_key(w, field, WT_VARINT);
    put_varint(w, v);
}

static void put_int(wr_t *w, uint32_t field, int64_t v) {
    put_uint(w, field, (uint64_t)v);
}

static void put_double(wr_t *w, uint32_t field, double d) {
    put_key(w, field, WT_I64);
    put_raw(w, &d, 8); /* little-endian hosts only: see the check in rv_tpacket_encode() */
}

static void put_bytes(wr_t *w, uint32_t field, const void *data, size_t n) {
    put_key(w, field, WT_LEN);
    put_varint(w, n);
    put_raw(w, data, n);
}

static void put_str(wr_t *w, uint32_t field, const char *s) {
    if (s) {
        put_bytes(w, field, s, strlen(s));
    }
}

/* Starts a nested message: writes its key and returns where its body starts. */
static size_t begin(wr_t *w, uint32_t field) {
    put_key(w, field, WT_LEN);
    return w->out->len;
}

/* Ends a nested message begun at `start`: inserts the length prefix before the body. */
static void end(wr_t *w, size_t start) {
    if (w->nomem) {
        return;
    }
    uint8_t b[10];
    size_t body = w->out->len - start, n = varint_to(b, body);
    if (rv_strbuf_reserve(w->out, n) != RV_OK) {
        w->nomem = true;
        return;
    }
    char *p = w->out->data + start;
    memmove(p + n, p, body);
    memcpy(p, b, n);
    w->out->len += n;
    w->out->data[w->out->len] = '\0';
}

static void put_kvs(wr_t *w, uint32_t field, const rv_tkv_t *kv, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t s = begin(w, field);
        put_str(w, 1, kv[i].key);
        put_str(w, 2, kv[i].value);
        end(w, s);
    }
}

static size_t vlen(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* The sizes of one column's Column message, computed before it is written so no length prefix
 * has to be inserted afterwards (a frame is written front to back, never moved). */
typedef struct colsize_s {
    size_t present; /* rows with a value */
    size_t payload; /* bytes of the packed doubles or ints, or of all value fields */
    size_t body;    /* the Column message's bytes */
} colsize_t;

bool rv__tcolumn_by_format(const rv_tframe_t *f, size_t c) {
    const rv_tcolumn_t *col = &f->columns[c];
    return f->format_id && col->type != RV_TCOL_TAG && (!col->name || !*col->name);
}

const char *rv__tcolumn_key(const rv_tframe_t *f, size_t c, char *buf) {
    if (!rv__tcolumn_by_format(f, c)) {
        return f->columns[c].name ? f->columns[c].name : "";
    }
    size_t k = 0;
    for (size_t i = 0; i < c; i++) {
        k += f->columns[i].type != RV_TCOL_TAG;
    }
    snprintf(buf, 24, "#%zu", k);
    return buf;
}

long rv__tcolumns_key_clash(const rv_tframe_t *f) {
    bool any = false;
    for (size_t c = 0; c < f->column_count && !any; c++) {
        any = rv__tcolumn_by_format(f, c);
    }
    if (!any) {
        return -1;
    }
    /* Each named non-tag column "#k": does non-tag column k leave its name to the format? */
    for (size_t c = 0; c < f->column_count; c++) {
        const char *n = f->columns[c].name;
        if (f->columns[c].type == RV_TCOL_TAG || !n || n[0] != '#' || n[1] < '0' || n[1] > '9' ||
            (n[1] == '0' && n[2])) {
            continue;
        }
        size_t k = 0;
        const char *d = n + 1;
        for (; *d >= '0' && *d <= '9' && k <= f->column_count; d++) {
            k = k * 10 + (size_t)(*d - '0');
        }
        if (*d || k >= f->column_count) {
            continue;
        }
        for (size_t i = 0, pos = 0; i < f->column_count; i++) {
            if (f->columns[i].type == RV_TCOL_TAG) {
                continue;
            }
            if (pos++ == k) {
                if (rv__tcolumn_by_format(f, i)) {
                    return (long)c;
                }
                break;
            }
        }
    }
    return -1;
}

/* The name a column is written with: none when the frame's data format gives it, else its
 * own. */
static const char *wire_name(const rv_tframe_t *f, const rv_tcolumn_t *col) {
    return rv__tcolumn_by_format(f, (size_t)(col - f->columns)) ? NULL : col->name;
}

static colsize_t column_size(const rv_tcolumn_t *col, const char *name, size_t rows) {
    colsize_t cs = {.present = rows};
    size_t bitmap_len = (rows + 7) / 8;
    if (col->present) {
        cs.present = 0;
        for (size_t i = 0; i < bitmap_len; i++) {
            cs.present += (size_t)__builtin_popcount(col->present[i]);
        }
    }
    size_t body = 0;
    if (name) {
        size_t n = strlen(name);
        body += 1 + vlen(n) + n;
    }
    body += 1 + vlen((uint64_t)col->type);
    if (col->present) {
        body += 1 + vlen(bitmap_len) + bitmap_len;
    }
    if (cs.present) {
        switch (col->type) {
            case RV_TCOL_DOUBLE:
                cs.payload = cs.present * 8;
                body += 1 + vlen(cs.payload) + cs.payload;
                break;
            case RV_TCOL_INT64:
                for (size_t r = 0; r < rows; r++) {
                    if (rv_tcolumn_has(col, r)) {
                        cs.payload += vlen(zigzag(col->v.i[r]));
                    }
                }
                body += 1 + vlen(cs.payload) + cs.payload;
                break;
            default:
                for (size_t r = 0; r < rows; r++) {
                    if (rv_tcolumn_has(col, r)) {
                        cs.payload += 1 + vlen(col->v.s[r].len) + col->v.s[r].len;
                    }
                }
                body += cs.payload;
        }
    }
    cs.body = body;
    return cs;
}

/* Raw writes at a cursor into room already reserved. */
static inline uint8_t *raw_varint(uint8_t *q, uint64_t v) {
    return q + varint_to(q, v);
}

static inline uint8_t *raw_bytes(uint8_t *q, uint32_t field, const void *data, size_t n) {
    q = raw_varint(q, (uint64_t)field << 3 | WT_LEN);
    q = raw_varint(q, n);
    if (n) {
        memcpy(q, data, n);
    }
    return q + n;
}

/* Writes the column, whose sizes are `cs`, as field `field` of the current message: the room
 * is reserved once and every byte written through a cursor. */
static void put_column(wr_t *w, uint32_t field, const rv_tcolumn_t *col, const char *name,
                       size_t rows, colsize_t cs) {
    if (w->nomem || rv_strbuf_reserve(w->out, cs.body + 20) != RV_OK) {
        w->nomem = true;
        return;
    }
    uint8_t *q = (uint8_t *)w->out->data + w->out->len;
    q = raw_varint(q, (uint64_t)field << 3 | WT_LEN);
    q = raw_varint(q, cs.body);
    if (name) {
        q = raw_bytes(q, 1, name, strlen(name));
    }
    q = raw_varint(q, 2 << 3 | WT_VARINT);
    q = raw_varint(q, (uint64_t)col->type);
    if (col->present) {
        q = raw_bytes(q, 3, col->present, (rows + 7) / 8);
    }
    if (cs.present && col->type == RV_TCOL_DOUBLE && !col->present) {
        q = raw_bytes(q, 4, col->v.d, cs.payload);
    } else if (cs.present && (col->type == RV_TCOL_DOUBLE || col->type == RV_TCOL_INT64)) {
        q = raw_varint(q, (uint64_t)(col->type == RV_TCOL_DOUBLE ? 4 : 5) << 3 | WT_LEN);
        q = raw_varint(q, cs.payload);
        for (size_t r = 0; r < rows; r++) {
            if (!rv_tcolumn_has(col, r)) {
                continue;
            }
            if (col->type == RV_TCOL_DOUBLE) {
                memcpy(q, &col->v.d[r], 8);
                q += 8;
            } else {
                q = raw_varint(q, zigzag(col->v.i[r]));
            }
        }
    } else if (cs.present) {
        for (size_t r = 0; r < rows; r++) {
            if (rv_tcolumn_has(col, r)) {
                q = raw_bytes(q, 6, col->v.s[r].data, col->v.s[r].len);
            }
        }
    }
    w->out->len = (size_t)((char *)q - w->out->data);
    w->out->data[w->out->len] = '\0';
}

/* Refuses a frame the decoder would refuse: an unknown column type, a column without a name
 * or with a name its kind already used. Nothing written may be unreadable. */
static bool check_columns(const rv_tframe_t *f, rv_error_t **err, const char *what) {
    for (size_t c = 0; c < f->column_count; c++) {
        const rv_tcolumn_t *col = &f->columns[c];
        if (!rv_tcol_type_name(col->type)) {
            rv__error_set(err, RV_ERR_INVALID_ARG, "telemetry %s: column %zu has an unknown type",
                          what, c);
            return false;
        }
        if (!col->name && (f->format_id == 0 || col->type == RV_TCOL_TAG)) {
            rv__error_set(err, RV_ERR_INVALID_ARG,
                          "telemetry %s: column %zu has no name (only a non-tag column of a "
                          "frame with a data format may leave it to the format)",
                          what, c);
            return false;
        }
        if (col->name && !rv__tutf8_valid(col->name, strlen(col->name), NULL)) {
            rv__error_set(err, RV_ERR_INVALID_ARG, "telemetry %s: column %zu's name is not UTF-8",
                          what, c);
            return false;
        }
        if (col->type != RV_TCOL_STRING && col->type != RV_TCOL_TAG) {
            continue;
        }
        for (size_t r = 0; r < f->rows; r++) {
            if (rv_tcolumn_has(col, r) &&
                !rv__tutf8_valid(col->v.s[r].data, col->v.s[r].len, NULL)) {
                rv__error_set(err, RV_ERR_INVALID_ARG,
                              "telemetry %s: column '%.60s' row %zu is not UTF-8 (use a bytes "
                              "column for binary values)",
                              what, col->name ? col->name : "(unnamed)", r);
                return false;
            }
        }
    }
    /* Columns the data format names are not compared (several may have the empty name):
     * compare a copy of the columns with their names absent when there are such. */
    bool empty_by_format = false;
    for (size_t c = 0; c < f->column_count; c++) {
        empty_by_format |= f->columns[c].name && !wire_name(f, &f->columns[c]);
    }
    rv_arena_t *scratch = NULL;
    if (f->column_count > 256 || empty_by_format) {
        scratch = rv_arena_new(f->column_count * (8 + sizeof(rv_tcolumn_t)) + 64);
        if (!scratch) {
            rv__error_set(err, RV_ERR_NOMEM, "telemetry %s: out of memory", what);
            return false;
        }
    }
    const rv_tcolumn_t *cmp = f->columns;
    if (empty_by_format) {
        rv_tcolumn_t *copy = rv_arena_alloc(scratch, f->column_count * sizeof *copy);
        for (size_t c = 0; copy && c < f->column_count; c++) {
            copy[c] = f->columns[c];
            copy[c].name = wire_name(f, &f->columns[c]);
        }
        cmp = copy;
    }
    long dup = cmp ? rv__tcolumns_dup(scratch, cmp, f->column_count) : -2;
    rv_arena_destroy(scratch);
    long clash = dup == -1 ? rv__tcolumns_key_clash(f) : -1;
    if (clash >= 0) {
        rv__error_set(err, RV_ERR_INVALID_ARG,
                      "telemetry %s: column %ld's name '%.30s' is the JSON key of an unnamed "
                      "column",
                      what, clash, f->columns[clash].name);
        return false;
    }
    if (dup != -1) {
        rv__error_set(err, dup == -2 ? RV_ERR_NOMEM : RV_ERR_INVALID_ARG,
                      "telemetry %s: column %ld ('%.60s') repeats a name", what, dup,
                      dup >= 0 ? f->columns[dup].name : "");
        return false;
    }
    return true;
}

static bool put_columns(wr_t *w, uint32_t field, const rv_tframe_t *f, rv_error_t **err,
                        const char *what) {
    if (!check_columns(f, err, what)) {
        return false;
    }
    for (size_t c = 0; c < f->column_count; c++) {
        const char *name = wire_name(f, &f->columns[c]);
        put_column(w, field, &f->columns[c], name, f->rows,
                   column_size(&f->columns[c], name, f->rows));
    }
    return true;
}

/* Writes a frame packet (Envelope field 19) with every length known in advance. */
static bool put_frame(wr_t *w, const rv_tframe_t *f, rv_error_t **err) {
    if (!check_columns(f, err, "frame")) {
        return false;
    }
    size_t ts_bytes = 0, body = 0;
    int64_t prev = 0;
    for (size_t r = 0; r < f->rows; r++) {
        ts_bytes += vlen(zigzag((int64_t)((uint64_t)f->timestamps[r] - (uint64_t)prev)));
        prev = f->timestamps[r];
    }
    if (f->format_id) {
        body += 1 + vlen(f->format_id);
    }
    if (f->rows) {
        body += 1 + vlen(ts_bytes) + ts_bytes;
    }
    /* Sizes are kept for up to 256 columns; wider frames compute them again while writing. */
    colsize_t sizes[256];
    for (size_t c = 0; c < f->column_count; c++) {
        colsize_t cs = column_size(&f->columns[c], wire_name(f, &f->columns[c]), f->rows);
        if (c < RV_ARRAY_LEN(sizes)) {
            sizes[c] = cs;
        }
        body += 1 + vlen(cs.body) + cs.body;
    }
    put_key(w, packet_field[RV_TPACKET_FRAME], WT_LEN);
    put_varint(w, body);
    if (w->nomem || rv_strbuf_reserve(w->out, body) != RV_OK) {
        w->nomem = true;
        return true;
    }
    if (f->format_id) {
        put_uint(w, 1, f->format_id);
    }
    if (f->rows) {
        put_key(w, 2, WT_LEN);
        put_varint(w, ts_bytes);
        uint8_t *q = (uint8_t *)w->out->data + w->out->len;
        prev = 0;
        for (size_t r = 0; r < f->rows; r++) {
            q += varint_to(q, zigzag((int64_t)((uint64_t)f->timestamps[r] - (uint64_t)prev)));
            prev = f->timestamps[r];
        }
        w->out->len = (size_t)((char *)q - w->out->data);
        w->out->data[w->out->len] = '\0';
    }
    for (size_t c = 0; c < f->column_count; c++) {
        const char *name = wire_name(f, &f->columns[c]);
        put_column(w, 3, &f->columns[c], name, f->rows,
                   c < RV_ARRAY_LEN(sizes) ? sizes[c] : column_size(&f->columns[c], name, f->rows));
    }
    return true;
}

static bool put_packet(wr_t *w, const rv_tpacket_t *p, rv_error_t **err) {
    const char *what = rv_tpacket_type_name(p->type);
    if (p->type == RV_TPACKET_FRAME) {
        const rv_tframe_t *f = p->u.frame;
        if (!f || (f->rows && !f->timestamps)) {
            return rv__error_set(err, RV_ERR_INVALID_ARG, "telemetry frame: %s",
                                 f ? "rows without timestamps" : "no frame"),
                   false;
        }
        return put_frame(w, f, err);
    }
    size_t s = begin(w, packet_field[p->type]);
    switch (p->type) {
        case RV_TPACKET_STREAM_PROPERTIES: {
            const rv_tstream_properties_t *x = &p->u.properties;
            put_str(w, 1, x->name);
            put_str(w, 2, x->location);
            put_kvs(w, 3, x->metadata, x->metadata_count);
            for (size_t i = 0; i < x->parent_count; i++) {
                put_str(w, 4, x->parents[i] ? x->parents[i] : "");
            }
            if (x->has_time_of_recording) {
                put_int(w, 5, x->time_of_recording);
            }
            break;
        }
        case RV_TPACKET_STREAM_END:
            if (p->u.end != RV_TSTREAM_CLOSED) {
                put_uint(w, 1, (uint64_t)p->u.end);
            }
            break;
        case RV_TPACKET_SESSION_START:
        case RV_TPACKET_SESSION_INFO: {
            const rv_tsession_t *x = &p->u.session;
            bool start = p->type == RV_TPACKET_SESSION_START;
            put_str(w, 1, x->session_id);
            put_str(w, 2, x->identifier);
            if (start) {
                put_str(w, 3, x->session_type);
            }
            if (x->version) {
                put_uint(w, start ? 4 : 3, x->version);
            }
            if (start && x->time) {
                put_int(w, 5, x->time);
            }
            put_kvs(w, start ? 6 : 4, x->details, x->detail_count);
            break;
        }
        case RV_TPACKET_SESSION_END:
            put_str(w, 1, p->u.session.session_id);
            if (p->u.session.time) {
                put_int(w, 2, p->u.session.time);
            }
            break;
        case RV_TPACKET_PARAMETER_DEFINITIONS:
            for (size_t i = 0; i < p->u.parameters.count; i++) {
                const rv_tparameter_def_t *d = &p->u.parameters.items[i];
                size_t ds = begin(w, 1);
                put_str(w, 1, d->id);
                put_str(w, 2, d->name);
                put_str(w, 3, d->description);
                put_str(w, 4, d->unit);
                if (d->has_minimum) {
                    put_double(w, 5, d->minimum);
                }
                if (d->has_maximum) {
                    put_double(w, 6, d->maximum);
                }
                put_str(w, 7, d->format);
                put_str(w, 8, d->location);
                put_str(w, 9, d->custom_properties);
                if (d->frequency != 0 || signbit(d->frequency)) { /* -0.0 too: bits survive */
                    put_double(w, 10, d->frequency);
                }
                end(w, ds);
            }
            break;
        case RV_TPACKET_EVENT_DEFINITIONS:
            for (size_t i = 0; i < p->u.event_defs.count; i++) {
                const rv_tevent_def_t *d = &p->u.event_defs.items[i];
                size_t ds = begin(w, 1);
                put_str(w, 1, d->id);
                put_str(w, 2, d->name);
                put_str(w, 3, d->description);
                if (d->level != RV_TLEVEL_TRACE) {
                    put_uint(w, 4, (uint64_t)d->level);
                }
                put_str(w, 5, d->location);
                put_str(w, 6, d->custom_properties);
                end(w, ds);
            }
            break;
        case RV_TPACKET_DATA_FORMAT:
            put_uint(w, 1, p->u.format.format_id);
            for (size_t i = 0; i < p->u.format.count; i++) {
                put_str(w, 2, p->u.format.parameter_ids[i] ? p->u.format.parameter_ids[i] : "");
            }
            break;
        case RV_TPACKET_PERIODIC_DATA: {
            const rv_tframe_t *f = p->u.periodic.frame;
            if (!f || f->rows > RV__TPERIODIC_MAX_ROWS) {
                return rv__error_set(err, RV_ERR_INVALID_ARG, "telemetry periodic_data: %s",
                                     f ? "more rows than the limit of 4194304" : "no frame"),
                       false;
            }
            put_int(w, 1, p->u.periodic.start_time);
            put_int(w, 2, p->u.periodic.interval);
            put_uint(w, 3, f->rows);
            if (f->format_id) {
                put_uint(w, 4, f->format_id);
            }
            if (!put_columns(w, 5, f, err, what)) {
                return false;
            }
            break;
        }
        case RV_TPACKET_FRAME:
            break; /* written by put_frame() above */
        case RV_TPACKET_EVENTS:
            for (size_t i = 0; i < p->u.events.count; i++) {
                const rv_tevent_t *e = &p->u.events.items[i];
                size_t es = begin(w, 1);
                put_str(w, 1, e->id);
                if (e->time) {
                    put_int(w, 2, e->time);
                }
                put_str(w, 3, e->value);
                put_kvs(w, 4, e->tags, e->tag_count);
                end(w, es);
            }
            break;
        case RV_TPACKET_MARKERS:
            for (size_t i = 0; i < p->u.markers.count; i++) {
                const rv_tmarker_t *m = &p->u.markers.items[i];
                size_t ms = begin(w, 1);
                put_str(w, 1, m->kind);
                put_str(w, 2, m->label);
                if (m->start_time) {
                    put_int(w, 3, m->start_time);
                }
                if (m->end_time) {
                    put_int(w, 4, m->end_time);
                }
                put_str(w, 5, m->description);
                end(w, ms);
            }
            break;
        case RV_TPACKET_COVERAGE:
            if (p->u.coverage_until) {
                put_int(w, 1, p->u.coverage_until);
            }
            break;
    }
    end(w, s);
    return true;
}

rv_err_t rv_tpacket_encode(const rv_tpacket_t *p, rv_strbuf_t *out, rv_error_t **err) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "the telemetry protobuf codec copies doubles as little-endian bytes"
#endif
    if (!p || !out) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "telemetry encode: NULL packet or buffer");
    }
    if (!rv_tpacket_type_name(p->type)) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "telemetry encode: unknown packet type %d",
                             (int)p->type);
    }
    size_t mark = out->len;
    wr_t w = {.out = out};
    put_uint(&w, 1, RV_TELEMETRY_VERSION);
    put_str(&w, 2, p->stream_id);
    if (!put_packet(&w, p, err)) {
        out->len = mark;
        return RV_ERR_INVALID_ARG;
    }
    if (w.nomem) {
        out->len = mark;
        return rv__error_set(err, RV_ERR_NOMEM, "telemetry encode: out of memory");
    }
    return RV_OK;
}

/* ---- reading -------------------------------------------------------------------------------- */

typedef struct rd_s {
    const uint8_t *base; /* the envelope's first byte, for offsets in messages */
    const uint8_t *p, *end;
    rv_arena_t *arena;
    rv_error_t **err;
    const char *what; /* the packet type being read ("envelope" before it is known) */
    rv_err_t code;
} rd_t;

static bool bad(rd_t *r, const uint8_t *at, const char *field, const char *fmt, ...)
    RV_PRINTF(4, 5);
static bool bad(rd_t *r, const uint8_t *at, const char *field, const char *fmt, ...) {
    if (r->code == RV_OK) {
        r->code = RV_ERR_PARSE;
    }
    if (r->err) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        rv__error_set(r->err, r->code, "telemetry %s: field %s: %s at byte %zu", r->what, field,
                      msg, (size_t)(at - r->base));
    }
    return false;
}

static bool nomem(rd_t *r) {
    r->code = RV_ERR_NOMEM;
    rv__error_set(r->err, RV_ERR_NOMEM, "telemetry %s: out of memory", r->what);
    return false;
}

static inline bool get_varint(rd_t *r, uint64_t *v, const char *field) {
    const uint8_t *p = r->p;
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p >= r->end) {
            return bad(r, r->p, field, "truncated varint");
        }
        uint8_t b = *p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (shift == 63 && b > 1) {
                return bad(r, r->p, field, "varint longer than 64 bits");
            }
            r->p = p;
            *v = x;
            return true;
        }
    }
    return bad(r, r->p, field, "varint longer than 10 bytes");
}

/* Reads a key; false at the end of the message (r->code untouched) or on a bad key. */
static bool get_key(rd_t *r, uint32_t *field, int *wt) {
    if (r->p >= r->end) {
        return false;
    }
    const uint8_t *at = r->p;
    uint64_t k = 0;
    if (!get_varint(r, &k, "(key)")) {
        return false;
    }
    if (k >> 3 == 0 || k >> 3 > 0x1fffffff) {
        return bad(r, at, "(key)", "invalid field number %llu", (unsigned long long)(k >> 3));
    }
    *field = (uint32_t)(k >> 3);
    *wt = (int)(k & 7);
    return true;
}

static bool get_len(rd_t *r, const uint8_t **data, size_t *n, const char *field) {
    const uint8_t *at = r->p;
    uint64_t len = 0;
    if (!get_varint(r, &len, field)) {
        return false;
    }
    if (len > (uint64_t)(r->end - r->p)) {
        return bad(r, at, field, "length %llu runs past the end (%zu bytes left)",
                   (unsigned long long)len, (size_t)(r->end - r->p));
    }
    *data = r->p;
    *n = (size_t)len;
    r->p += len;
    return true;
}

/* The name of an unknown field for messages; formatted only on failure paths. */
#define UNKNOWN_NAME(buf, field) (snprintf(buf, sizeof buf, "%u (unknown)", field), buf)

static bool skip(rd_t *r, int wt, uint32_t field) {
    char name[24];
    const uint8_t *d;
    size_t n;
    uint64_t v = 0;
    switch (wt) {
        case WT_VARINT:
            return get_varint(r, &v, "(an unknown field)");
        case WT_I64:
        case WT_I32: {
            size_t k = wt == WT_I64 ? 8 : 4;
            if ((size_t)(r->end - r->p) < k) {
                return bad(r, r->p, UNKNOWN_NAME(name, field), "truncated fixed-size value");
            }
            r->p += k;
            return true;
        }
        case WT_LEN:
            return get_len(r, &d, &n, "(an unknown field)");
        default:
            return bad(r, r->p, UNKNOWN_NAME(name, field), "unsupported wire type %d", wt);
    }
}

static bool expect(rd_t *r, int wt, int want, const char *field) {
    return wt == want ? true : bad(r, r->p, field, "wire type %d where %d was expected", wt, want);
}

/* Reads a length-delimited string into the arena (NUL-terminated, UTF-8, no NUL inside). */
static bool get_str(rd_t *r, int wt, const char **out, const char *field) {
    const uint8_t *d;
    size_t n, badat;
    if (!expect(r, wt, WT_LEN, field) || !get_len(r, &d, &n, field)) {
        return false;
    }
    if (memchr(d, 0, n)) {
        return bad(r, d, field, "string holds a NUL byte");
    }
    if (!rv__tutf8_valid(d, n, &badat)) {
        return bad(r, d + badat, field, "string is not valid UTF-8");
    }
    char *s = rv_arena_strndup(r->arena, (const char *)d, n);
    if (!s) {
        return nomem(r);
    }
    *out = s;
    return true;
}

static bool get_u32(rd_t *r, int wt, uint32_t *out, const char *field) {
    const uint8_t *at = r->p;
    uint64_t v = 0;
    if (!expect(r, wt, WT_VARINT, field) || !get_varint(r, &v, field)) {
        return false;
    }
    if (v > UINT32_MAX) {
        return bad(r, at, field, "%llu does not fit 32 bits", (unsigned long long)v);
    }
    *out = (uint32_t)v;
    return true;
}

static bool get_i64(rd_t *r, int wt, int64_t *out, const char *field) {
    uint64_t v = 0;
    if (!expect(r, wt, WT_VARINT, field) || !get_varint(r, &v, field)) {
        return false;
    }
    *out = (int64_t)v;
    return true;
}

static bool get_dbl(rd_t *r, int wt, double *out, const char *field) {
    if (!expect(r, wt, WT_I64, field)) {
        return false;
    }
    if (r->end - r->p < 8) {
        return bad(r, r->p, field, "truncated double");
    }
    memcpy(out, r->p, 8);
    r->p += 8;
    return true;
}

static bool get_enum(rd_t *r, int wt, int *out, int max, const char *field) {
    const uint8_t *at = r->p;
    uint64_t v = 0;
    if (!expect(r, wt, WT_VARINT, field) || !get_varint(r, &v, field)) {
        return false;
    }
    if (v > (uint64_t)max) {
        return bad(r, at, field, "unknown value %llu", (unsigned long long)v);
    }
    *out = (int)v;
    return true;
}

/* A reader over a nested message's bytes (offsets stay relative to the envelope). */
static rd_t sub(const rd_t *r, const uint8_t *d, size_t n) {
    rd_t s = *r;
    s.p = d;
    s.end = d + n;
    return s;
}

/* Enters a nested message field: checks the wire type and returns a reader over it. */
static bool enter(rd_t *r, int wt, rd_t *out, const char *field) {
    const uint8_t *d;
    size_t n;
    if (!expect(r, wt, WT_LEN, field) || !get_len(r, &d, &n, field)) {
        return false;
    }
    *out = sub(r, d, n);
    return true;
}

/* Propagates a nested reader's failure code. */
static bool up(rd_t *r, const rd_t *s) {
    r->code = s->code;
    return false;
}

/* Counts the occurrences of `field` in the message (stops quietly at a malformed key: the
 * decoding pass reports it). */
static size_t count_field(const rd_t *r, uint32_t want) {
    rd_t s = *r;
    s.err = NULL;
    size_t n = 0;
    uint32_t f = 0;
    int wt = 0;
    while (get_key(&s, &f, &wt)) {
        if (f == want) {
            n++;
        }
        if (!skip(&s, wt, f)) {
            break;
        }
    }
    return n;
}

/* An uninitialised arena array of n elements (plus a byte, so n == 0 is a valid pointer). */
static void *alloc_raw(rd_t *r, size_t n, size_t size) {
    if (n > SIZE_MAX / size - 1) {
        return NULL;
    }
    return rv_arena_alloc(r->arena, n * size + 1);
}

static void *alloc_array(rd_t *r, size_t n, size_t size) {
    if (n > SIZE_MAX / size - 1) {
        return NULL;
    }
    void *p = rv_arena_alloc(r->arena, n * size + 1);
    if (p) {
        memset(p, 0, n * size + 1);
    }
    return p;
}

static bool get_kv(rd_t *r, int wt, rv_tkv_t *kv, const char *field) {
    rd_t s;
    if (!enter(r, wt, &s, field)) {
        return false;
    }
    uint32_t f = 0;
    int w = 0;
    while (get_key(&s, &f, &w)) {
        bool ok = f == 1   ? get_str(&s, w, &kv->key, "key")
                  : f == 2 ? get_str(&s, w, &kv->value, "value")
                           : skip(&s, w, f);
        if (!ok) {
            return up(r, &s);
        }
    }
    if (!kv->key) {
        kv->key = ""; /* a pair without a key has the empty key, as the JSON forms say */
    }
    return s.code == RV_OK ? true : up(r, &s);
}

/* Reads every `field` key-value pair of the message at `r` (a fresh reader over it). */
static bool get_kvs(rd_t *msg, uint32_t field, const rv_tkv_t **out, size_t *count,
                    const char *name) {
    size_t n = count_field(msg, field);
    rv_tkv_t *kv = alloc_array(msg, n, sizeof *kv);
    if (!kv) {
        return nomem(msg);
    }
    *out = kv;
    *count = n;
    return true;
}

/* Checks that the `n` pairs read into `kv` have distinct keys: maps in the JSON forms cannot
 * hold a key twice, so neither may the wire. */
static bool kv_unique(rd_t *r, const rv_tkv_t *kv, size_t n, const char *field) {
    for (size_t i = 1; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(kv[i].key, kv[j].key) == 0) {
                return bad(r, r->p, field, "key '%.60s' appears twice", kv[i].key);
            }
        }
    }
    return true;
}

/* ---- frames --------------------------------------------------------------------------------- */

static size_t popcount_bitmap(const uint8_t *b, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c += (size_t)__builtin_popcount(b[i]);
    }
    return c;
}

/* Counts the varints in a packed payload (every byte without the high bit ends one). */
static size_t count_varints(const uint8_t *d, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c += !(d[i] & 0x80);
    }
    return c;
}

/* Reads one Column message of a frame of `rows` rows into `col`. */
static bool get_column(rd_t *r, int wt, size_t rows, rv_tcolumn_t *col, size_t index) {
    rd_t s;
    if (!enter(r, wt, &s, "columns")) {
        return false;
    }
    const uint8_t *colstart = s.p;
    /* Pass 1: name, type, bitmap, and how many values of each kind. */
    int type = 0;
    const uint8_t *bitmap = NULL;
    size_t bitmap_len = 0, nd = 0, ni = 0, nv = 0;
    uint32_t f = 0;
    int w = 0;
    rd_t p1 = s;
    while (get_key(&p1, &f, &w)) {
        const uint8_t *at = p1.p, *d;
        size_t n;
        bool ok = true;
        switch (f) {
            case 1:
                ok = get_str(&p1, w, &col->name, "columns.name");
                break;
            case 2:
                ok = get_enum(&p1, w, &type, RV_TCOL_TAG, "columns.type");
                break;
            case 3:
                ok = expect(&p1, w, WT_LEN, "columns.present") &&
                     get_len(&p1, &bitmap, &bitmap_len, "columns.present");
                break;
            case 4:
                if (w == WT_LEN) {
                    ok = get_len(&p1, &d, &n, "columns.doubles");
                    if (ok && n % 8) {
                        ok = bad(&p1, at, "columns.doubles",
                                 "packed length %zu is not a multiple of 8", n);
                    }
                    nd += n / 8;
                } else {
                    double x;
                    ok = get_dbl(&p1, w, &x, "columns.doubles");
                    nd++;
                }
                break;
            case 5:
                if (w == WT_LEN) {
                    ok = get_len(&p1, &d, &n, "columns.ints");
                    if (ok && n && (d[n - 1] & 0x80)) {
                        ok = bad(&p1, d + n - 1, "columns.ints", "packed varints end mid-value");
                    }
                    ni += ok ? count_varints(d, n) : 0;
                } else {
                    uint64_t x = 0;
                    ok = expect(&p1, w, WT_VARINT, "columns.ints") &&
                         get_varint(&p1, &x, "columns.ints");
                    ni++;
                }
                break;
            case 6:
                ok = expect(&p1, w, WT_LEN, "columns.values") &&
                     get_len(&p1, &d, &n, "columns.values");
                nv++;
                break;
            default:
                ok = skip(&p1, w, f);
        }
        if (!ok) {
            return up(r, &p1);
        }
    }
    if (p1.code != RV_OK) {
        return up(r, &p1);
    }
    char cname[96];
#define CNAME()                                                                                    \
    (snprintf(cname, sizeof cname, "columns[%zu] (%.60s)", index, col->name ? col->name : "?"),    \
     cname)
    if (type == 0) {
        return bad(r, colstart, CNAME(), "column has no type");
    }
    col->type = (rv_tcol_type_t)type;
    size_t present = rows;
    if (bitmap_len) {
        if (bitmap_len != (rows + 7) / 8) {
            return bad(r, bitmap, CNAME(), "presence bitmap of %zu bytes for %zu rows", bitmap_len,
                       rows);
        }
        if (rows % 8 && (bitmap[bitmap_len - 1] >> (rows % 8))) {
            return bad(r, bitmap, CNAME(), "presence bitmap marks rows past the last");
        }
        present = popcount_bitmap(bitmap, bitmap_len);
        uint8_t *copy = rv_arena_memdup(r->arena, bitmap, bitmap_len);
        if (!copy) {
            return nomem(r);
        }
        col->present = copy;
    }
    size_t have = type == RV_TCOL_DOUBLE ? nd : type == RV_TCOL_INT64 ? ni : nv;
    size_t other = nd + ni + nv - have;
    if (other) {
        return bad(r, colstart, CNAME(), "a %s column holds values of another type",
                   rv_tcol_type_name(col->type));
    }
    if (have != present) {
        return bad(r, colstart, CNAME(), "%zu values for %zu present rows", have, present);
    }
    /* Pass 2: the values, scattered to their rows. */
    size_t es = type == RV_TCOL_DOUBLE || type == RV_TCOL_INT64 ? 8 : sizeof(rv_buf_t);
    /* Every row is written below when all are present; otherwise absent rows must read 0. */
    void *vals = present == rows ? alloc_raw(r, rows, es) : alloc_array(r, rows, es);
    if (!vals) {
        return nomem(r);
    }
    size_t row = 0;
    /* The next present row at or after `row`. */
#define NEXT_ROW()                                                                                 \
    do {                                                                                           \
        while (col->present && !((col->present[row >> 3] >> (row & 7)) & 1u)) {                    \
            row++;                                                                                 \
        }                                                                                          \
    } while (0)
    rd_t p2 = s;
    while (get_key(&p2, &f, &w)) {
        const uint8_t *d;
        size_t n;
        if (f == 4 && type == RV_TCOL_DOUBLE) {
            double *out = vals;
            if (w == WT_LEN) {
                get_len(&p2, &d, &n, "columns.doubles");
                if (!col->present) {
                    memcpy(out + row, d, n);
                    row += n / 8;
                } else {
                    for (size_t k = 0; k < n; k += 8) {
                        NEXT_ROW();
                        memcpy(out + row++, d + k, 8);
                    }
                }
            } else {
                NEXT_ROW();
                get_dbl(&p2, w, out + row++, "columns.doubles");
            }
        } else if (f == 5 && type == RV_TCOL_INT64) {
            int64_t *out = vals;
            rd_t pk = p2;
            if (w == WT_LEN) {
                get_len(&p2, &d, &n, "columns.ints");
                pk = sub(&p2, d, n);
            } else {
                pk.end = pk.p; /* the single varint below, read from p2 */
            }
            uint64_t x = 0;
            if (w != WT_LEN) {
                get_varint(&p2, &x, "columns.ints");
                NEXT_ROW();
                out[row++] = unzigzag(x);
            } else {
                while (pk.p < pk.end) {
                    if (!get_varint(&pk, &x, "columns.ints")) {
                        return up(r, &pk);
                    }
                    NEXT_ROW();
                    out[row++] = unzigzag(x);
                }
            }
        } else if (f == 6) {
            rv_buf_t *out = vals;
            get_len(&p2, &d, &n, "columns.values");
            size_t badat;
            if (type != RV_TCOL_BYTES && !rv__tutf8_valid(d, n, &badat)) {
                return bad(r, d + badat, CNAME(), "string value is not valid UTF-8");
            }
            NEXT_ROW();
            out[row].data = d; /* borrowed from the record until copied below */
            out[row++].len = n;
        } else {
            skip(&p2, w, f);
        }
    }
#undef NEXT_ROW
#undef CNAME
    if (type == RV_TCOL_DOUBLE) {
        col->v.d = vals;
    } else if (type == RV_TCOL_INT64) {
        col->v.i = vals;
    } else {
        /* Copy the string bytes into the arena so the packet outlives the record. */
        rv_buf_t *sv = vals;
        size_t total = 0;
        for (size_t k = 0; k < rows; k++) {
            total += sv[k].len;
        }
        char *pool = rv_arena_alloc(r->arena, total + 1);
        if (!pool) {
            return nomem(r);
        }
        for (size_t k = 0; k < rows; k++) {
            if (sv[k].len) {
                memcpy(pool, sv[k].data, sv[k].len);
            }
            sv[k].data = pool;
            pool += sv[k].len;
        }
        col->v.s = sv;
    }
    return true;
}

/* Reads the columns (field `field`) of a frame message of `rows` rows. */
static bool get_columns(rd_t *msg, uint32_t field, size_t rows, rv_tframe_t *f) {
    size_t n = count_field(msg, field);
    rv_tcolumn_t *cols = alloc_array(msg, n, sizeof *cols);
    if (!cols) {
        return nomem(msg);
    }
    f->columns = cols;
    f->column_count = n;
    size_t i = 0;
    uint32_t k = 0;
    int w = 0;
    rd_t s = *msg;
    while (get_key(&s, &k, &w)) {
        bool ok = k == field ? get_column(&s, w, rows, &cols[i], i) : skip(&s, w, k);
        i += k == field;
        if (!ok) {
            return up(msg, &s);
        }
    }
    if (s.code != RV_OK) {
        return up(msg, &s);
    }
    /* A column may leave its name out only when the frame's data format names it: column i
     * of the non-tag columns is the format's parameter i (the reader fills the name in). */
    for (size_t c = 0; c < n; c++) {
        if (cols[c].name) {
            continue;
        }
        if (cols[c].type == RV_TCOL_TAG || f->format_id == 0) {
            char cname[32];
            snprintf(cname, sizeof cname, "columns[%zu]", c);
            return bad(msg, msg->p, cname, "%s",
                       cols[c].type == RV_TCOL_TAG
                           ? "a tag column has no name (data formats name parameters only)"
                           : "column has no name and the frame names no data format "
                             "(format_id 0)");
        }
    }
    long dup = rv__tcolumns_dup(msg->arena, cols, n); /* unnamed columns are not compared */
    if (dup == -2) {
        return nomem(msg);
    }
    for (size_t c = 0; c < n; c++) {
        if (!cols[c].name) {
            cols[c].name = ""; /* named by the data format: the reader fills the name in */
        }
    }
    long clash = dup == -1 ? rv__tcolumns_key_clash(f) : -1;
    if (clash >= 0) {
        char cname[96];
        snprintf(cname, sizeof cname, "columns[%ld] (%.60s)", clash, cols[clash].name);
        return bad(msg, msg->p, cname, "the name is the JSON key of an unnamed column");
    }
    if (dup >= 0) {
        char cname[96];
        snprintf(cname, sizeof cname, "columns[%ld] (%.60s)", dup, cols[dup].name);
        return bad(msg, msg->p, cname, "a second %s named so in the frame",
                   cols[dup].type == RV_TCOL_TAG ? "tag" : "column");
    }
    return true;
}

static bool get_frame(rd_t *r, rv_tframe_t *f) {
    /* Pass 1: the number of timestamps, so columns can be checked against it. */
    rd_t s = *r;
    size_t rows = 0;
    uint32_t k = 0;
    int w = 0;
    while (get_key(&s, &k, &w)) {
        const uint8_t *d;
        size_t n;
        bool ok;
        if (k == 2 && w == WT_LEN) {
            ok = get_len(&s, &d, &n, "timestamp_deltas");
            if (ok && n && (d[n - 1] & 0x80)) {
                ok = bad(&s, d + n - 1, "timestamp_deltas", "packed varints end mid-value");
            }
            rows += ok ? count_varints(d, n) : 0;
        } else {
            rows += k == 2;
            ok = skip(&s, w, k);
        }
        if (!ok) {
            return up(r, &s);
        }
    }
    if (s.code != RV_OK) {
        return up(r, &s);
    }
    int64_t *ts = alloc_raw(r, rows, sizeof *ts); /* every entry is written in pass 2 */
    if (!ts) {
        return nomem(r);
    }
    f->rows = rows;
    f->timestamps = ts;
    /* Pass 2: everything but the columns. */
    s = *r;
    size_t i = 0;
    uint64_t prev = 0;
    while (get_key(&s, &k, &w)) {
        bool ok = true;
        if (k == 1) {
            ok = get_u32(&s, w, &f->format_id, "format_id");
        } else if (k == 2 && w == WT_LEN) {
            const uint8_t *d;
            size_t n;
            get_len(&s, &d, &n, "timestamp_deltas");
            rd_t pk = sub(&s, d, n);
            /* The hot loop: one-byte deltas are the common case. */
            const uint8_t *q = pk.p, *e = pk.end;
            while (q < e) {
                uint64_t x = *q;
                if (RV_LIKELY(x < 0x80)) {
                    q++;
                } else {
                    pk.p = q;
                    if (!get_varint(&pk, &x, "timestamp_deltas")) {
                        return up(r, &pk);
                    }
                    q = pk.p;
                }
                prev += (uint64_t)unzigzag(x);
                ts[i++] = (int64_t)prev;
            }
        } else if (k == 2) {
            uint64_t x = 0;
            ok = expect(&s, w, WT_VARINT, "timestamp_deltas") &&
                 get_varint(&s, &x, "timestamp_deltas");
            prev += (uint64_t)unzigzag(x);
            ts[i++] = (int64_t)prev;
        } else {
            ok = skip(&s, w, k);
        }
        if (!ok) {
            return up(r, &s);
        }
    }
    return get_columns(r, 3, rows, f);
}

static bool get_periodic(rd_t *r, rv_tpacket_t *p) {
    rv_tframe_t *f = rv_arena_alloc(r->arena, sizeof *f);
    if (!f) {
        return nomem(r);
    }
    memset(f, 0, sizeof *f);
    rd_t s = *r;
    uint32_t k = 0, count = 0;
    int w = 0;
    while (get_key(&s, &k, &w)) {
        bool ok = k == 1   ? get_i64(&s, w, &p->u.periodic.start_time, "start_time")
                  : k == 2 ? get_i64(&s, w, &p->u.periodic.interval, "interval")
                  : k == 3 ? get_u32(&s, w, &count, "count")
                  : k == 4 ? get_u32(&s, w, &f->format_id, "format_id")
                           : skip(&s, w, k);
        if (!ok) {
            return up(r, &s);
        }
    }
    if (s.code != RV_OK) {
        return up(r, &s);
    }
    /* The only row count not bounded by the bytes that carry it: keep it sane. */
    if (count > RV__TPERIODIC_MAX_ROWS) {
        return bad(r, r->p, "count", "%u rows exceed the limit of %u", count,
                   (unsigned)RV__TPERIODIC_MAX_ROWS);
    }
    int64_t *ts = alloc_raw(r, count, sizeof *ts);
    if (!ts) {
        return nomem(r);
    }
    for (uint32_t i = 0; i < count; i++) {
        int64_t t;
        if (__builtin_mul_overflow(p->u.periodic.interval, (int64_t)i, &t) ||
            __builtin_add_overflow(t, p->u.periodic.start_time, &t)) {
            return bad(r, r->p, "interval", "sample %u overflows the time range", i);
        }
        ts[i] = t;
    }
    f->rows = count;
    f->timestamps = ts;
    p->u.periodic.frame = f;
    return get_columns(r, 5, count, f);
}

/* ---- the other packets ---------------------------------------------------------------------- */

/* Reads repeated strings (field `field`) of the message at `msg` into an arena array. */
static bool get_strs(rd_t *msg, uint32_t field, const char *const **out, size_t *count,
                     const char *name) {
    size_t n = count_field(msg, field);
    const char **a = alloc_array(msg, n, sizeof *a);
    if (!a) {
        return nomem(msg);
    }
    rd_t s = *msg;
    uint32_t k = 0;
    int w = 0;
    size_t i = 0;
    while (get_key(&s, &k, &w)) {
        bool ok = k == field ? get_str(&s, w, &a[i++], name) : skip(&s, w, k);
        if (!ok) {
            return up(msg, &s);
        }
    }
    *out = a;
    *count = n;
    return s.code == RV_OK ? true : up(msg, &s);
}

static bool get_body(rd_t *r, rv_tpacket_t *p) {
    uint32_t k = 0;
    int w = 0;
    bool ok = true;
    rd_t s = *r;
    size_t i = 0;
    switch (p->type) {
        case RV_TPACKET_STREAM_PROPERTIES: {
            rv_tstream_properties_t *x = &p->u.properties;
            rv_tkv_t *kv;
            if (!get_kvs(&s, 3, &x->metadata, &x->metadata_count, "metadata") ||
                !get_strs(&s, 4, &x->parents, &x->parent_count, "parents")) {
                return up(r, &s);
            }
            kv = (rv_tkv_t *)x->metadata;
            while (ok && get_key(&s, &k, &w)) {
                ok = k == 1   ? get_str(&s, w, &x->name, "name")
                     : k == 2 ? get_str(&s, w, &x->location, "location")
                     : k == 3 ? get_kv(&s, w, &kv[i++], "metadata")
                     : k == 5 ? (x->has_time_of_recording = true,
                                 get_i64(&s, w, &x->time_of_recording, "time_of_recording"))
                              : skip(&s, w, k);
            }
            ok = ok && s.code == RV_OK && kv_unique(&s, x->metadata, x->metadata_count, "metadata");
            break;
        }
        case RV_TPACKET_STREAM_END:
            while (ok && get_key(&s, &k, &w)) {
                int e = 0;
                ok = k == 1 ? get_enum(&s, w, &e, RV_TSTREAM_TERMINATED, "end_type")
                            : skip(&s, w, k);
                if (k == 1) {
                    p->u.end = (rv_tstream_end_t)e;
                }
            }
            break;
        case RV_TPACKET_SESSION_START:
        case RV_TPACKET_SESSION_INFO:
        case RV_TPACKET_SESSION_END: {
            rv_tsession_t *x = &p->u.session;
            bool start = p->type == RV_TPACKET_SESSION_START;
            bool end_ = p->type == RV_TPACKET_SESSION_END;
            uint32_t fdetails = start ? 6 : end_ ? 0 : 4;
            uint32_t fversion = start ? 4 : end_ ? 0 : 3;
            uint32_t ftime = start ? 5 : end_ ? 2 : 0;
            if (fdetails && !get_kvs(&s, fdetails, &x->details, &x->detail_count, "details")) {
                return up(r, &s);
            }
            rv_tkv_t *kv = (rv_tkv_t *)x->details;
            while (ok && get_key(&s, &k, &w)) {
                if (k == 1) {
                    ok = get_str(&s, w, &x->session_id, "session_id");
                } else if (k == 2 && !end_) {
                    ok = get_str(&s, w, &x->identifier, "identifier");
                } else if (k == 3 && start) {
                    ok = get_str(&s, w, &x->session_type, "session_type");
                } else if (k == fversion) {
                    ok = get_u32(&s, w, &x->version, "session_version");
                } else if (k == ftime) {
                    ok = get_i64(&s, w, &x->time, end_ ? "end_time" : "start_time");
                } else if (k == fdetails) {
                    ok = get_kv(&s, w, &kv[i++], "details");
                } else {
                    ok = skip(&s, w, k);
                }
            }
            ok = ok && s.code == RV_OK && kv_unique(&s, x->details, x->detail_count, "details");
            break;
        }
        case RV_TPACKET_PARAMETER_DEFINITIONS: {
            size_t n = count_field(&s, 1);
            rv_tparameter_def_t *defs = alloc_array(&s, n, sizeof *defs);
            if (!defs) {
                return nomem(r);
            }
            p->u.parameters.items = defs;
            p->u.parameters.count = n;
            while (ok && get_key(&s, &k, &w)) {
                if (k != 1) {
                    ok = skip(&s, w, k);
                    continue;
                }
                rd_t d;
                rv_tparameter_def_t *x = &defs[i++];
                ok = enter(&s, w, &d, "parameters");
                if (!ok) {
                    return up(r, &s);
                }
                uint32_t f = 0;
                int dw = 0;
                while (ok && get_key(&d, &f, &dw)) {
                    switch (f) {
                        case 1:
                            ok = get_str(&d, dw, &x->id, "parameters.id");
                            break;
                        case 2:
                            ok = get_str(&d, dw, &x->name, "parameters.name");
                            break;
                        case 3:
                            ok = get_str(&d, dw, &x->description, "parameters.description");
                            break;
                        case 4:
                            ok = get_str(&d, dw, &x->unit, "parameters.unit");
                            break;
                        case 5:
                            x->has_minimum = true;
                            ok = get_dbl(&d, dw, &x->minimum, "parameters.minimum");
                            break;
                        case 6:
                            x->has_maximum = true;
                            ok = get_dbl(&d, dw, &x->maximum, "parameters.maximum");
                            break;
                        case 7:
                            ok = get_str(&d, dw, &x->format, "parameters.format");
                            break;
                        case 8:
                            ok = get_str(&d, dw, &x->location, "parameters.location");
                            break;
                        case 9:
                            ok = get_str(&d, dw, &x->custom_properties,
                                         "parameters.custom_properties");
                            break;
                        case 10:
                            ok = get_dbl(&d, dw, &x->frequency, "parameters.frequency");
                            break;
                        default:
                            ok = skip(&d, dw, f);
                    }
                }
                if (ok && d.code != RV_OK) {
                    ok = false;
                }
                if (!ok) {
                    return up(r, &d);
                }
            }
            break;
        }
        case RV_TPACKET_EVENT_DEFINITIONS: {
            size_t n = count_field(&s, 1);
            rv_tevent_def_t *defs = alloc_array(&s, n, sizeof *defs);
            if (!defs) {
                return nomem(r);
            }
            p->u.event_defs.items = defs;
            p->u.event_defs.count = n;
            while (ok && get_key(&s, &k, &w)) {
                if (k != 1) {
                    ok = skip(&s, w, k);
                    continue;
                }
                rd_t d;
                rv_tevent_def_t *x = &defs[i++];
                ok = enter(&s, w, &d, "events");
                if (!ok) {
                    return up(r, &s);
                }
                uint32_t f = 0;
                int dw = 0, level = 0;
                while (ok && get_key(&d, &f, &dw)) {
                    switch (f) {
                        case 1:
                            ok = get_str(&d, dw, &x->id, "events.id");
                            break;
                        case 2:
                            ok = get_str(&d, dw, &x->name, "events.name");
                            break;
                        case 3:
                            ok = get_str(&d, dw, &x->description, "events.description");
                            break;
                        case 4:
                            ok = get_enum(&d, dw, &level, RV_TLEVEL_CRITICAL, "events.level");
                            x->level = (rv_tevent_level_t)level;
                            break;
                        case 5:
                            ok = get_str(&d, dw, &x->location, "events.location");
                            break;
                        case 6:
                            ok = get_str(&d, dw, &x->custom_properties, "events.custom_properties");
                            break;
                        default:
                            ok = skip(&d, dw, f);
                    }
                }
                if (!ok || d.code != RV_OK) {
                    return up(r, &d);
                }
            }
            break;
        }
        case RV_TPACKET_DATA_FORMAT:
            if (!get_strs(&s, 2, &p->u.format.parameter_ids, &p->u.format.count, "parameter_ids")) {
                return up(r, &s);
            }
            while (ok && get_key(&s, &k, &w)) {
                ok = k == 1 ? get_u32(&s, w, &p->u.format.format_id, "format_id") : skip(&s, w, k);
            }
            break;
        case RV_TPACKET_PERIODIC_DATA:
            return get_periodic(r, p);
        case RV_TPACKET_FRAME: {
            rv_tframe_t *f = rv_arena_alloc(r->arena, sizeof *f);
            if (!f) {
                return nomem(r);
            }
            memset(f, 0, sizeof *f);
            p->u.frame = f;
            return get_frame(r, f);
        }
        case RV_TPACKET_EVENTS: {
            size_t n = count_field(&s, 1);
            rv_tevent_t *ev = alloc_array(&s, n, sizeof *ev);
            if (!ev) {
                return nomem(r);
            }
            p->u.events.items = ev;
            p->u.events.count = n;
            while (ok && get_key(&s, &k, &w)) {
                if (k != 1) {
                    ok = skip(&s, w, k);
                    continue;
                }
                rd_t d;
                rv_tevent_t *x = &ev[i++];
                ok = enter(&s, w, &d, "events");
                if (!ok) {
                    return up(r, &s);
                }
                if (!get_kvs(&d, 4, &x->tags, &x->tag_count, "events.tags")) {
                    return up(r, &d);
                }
                rv_tkv_t *kv = (rv_tkv_t *)x->tags;
                size_t j = 0;
                uint32_t f = 0;
                int dw = 0;
                while (ok && get_key(&d, &f, &dw)) {
                    ok = f == 1   ? get_str(&d, dw, &x->id, "events.id")
                         : f == 2 ? get_i64(&d, dw, &x->time, "events.time")
                         : f == 3 ? get_str(&d, dw, &x->value, "events.value")
                         : f == 4 ? get_kv(&d, dw, &kv[j++], "events.tags")
                                  : skip(&d, dw, f);
                }
                ok = ok && d.code == RV_OK && kv_unique(&d, x->tags, x->tag_count, "events.tags");
                if (!ok || d.code != RV_OK) {
                    return up(r, &d);
                }
            }
            break;
        }
        case RV_TPACKET_MARKERS: {
            size_t n = count_field(&s, 1);
            rv_tmarker_t *mk = alloc_array(&s, n, sizeof *mk);
            if (!mk) {
                return nomem(r);
            }
            p->u.markers.items = mk;
            p->u.markers.count = n;
            while (ok && get_key(&s, &k, &w)) {
                if (k != 1) {
                    ok = skip(&s, w, k);
                    continue;
                }
                rd_t d;
                rv_tmarker_t *x = &mk[i++];
                ok = enter(&s, w, &d, "markers");
                if (!ok) {
                    return up(r, &s);
                }
                uint32_t f = 0;
                int dw = 0;
                while (ok && get_key(&d, &f, &dw)) {
                    ok = f == 1   ? get_str(&d, dw, &x->kind, "markers.kind")
                         : f == 2 ? get_str(&d, dw, &x->label, "markers.label")
                         : f == 3 ? get_i64(&d, dw, &x->start_time, "markers.start_time")
                         : f == 4 ? get_i64(&d, dw, &x->end_time, "markers.end_time")
                         : f == 5 ? get_str(&d, dw, &x->description, "markers.description")
                                  : skip(&d, dw, f);
                }
                if (!ok || d.code != RV_OK) {
                    return up(r, &d);
                }
            }
            break;
        }
        case RV_TPACKET_COVERAGE:
            while (ok && get_key(&s, &k, &w)) {
                ok = k == 1 ? get_i64(&s, w, &p->u.coverage_until, "until") : skip(&s, w, k);
            }
            break;
    }
    if (!ok || s.code != RV_OK) {
        return up(r, &s);
    }
    return true;
}

rv_err_t rv_tpacket_decode(rv_arena_t *arena, const void *data, size_t len, rv_tpacket_t **out,
                           rv_error_t **err) {
    if (!arena || !out || (!data && len)) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "telemetry decode: NULL argument");
    }
    *out = NULL;
    rv_tpacket_t *p = rv_arena_alloc(arena, sizeof *p);
    if (!p) {
        return rv__error_set(err, RV_ERR_NOMEM, "telemetry decode: out of memory");
    }
    memset(p, 0, sizeof *p);
    rd_t r = {.base = data,
              .p = data,
              .end = (const uint8_t *)data + len,
              .arena = arena,
              .err = err,
              .what = "envelope"};
    uint32_t k = 0;
    int w = 0;
    bool have_version = false;
    const uint8_t *body = NULL;
    size_t body_len = 0;
    while (get_key(&r, &k, &w)) {
        const uint8_t *at = r.p;
        bool ok = true;
        if (k == 1) {
            uint32_t v = 0;
            ok = get_u32(&r, w, &v, "version");
            if (ok && v != RV_TELEMETRY_VERSION) {
                r.code = RV_ERR_UNSUPPORTED;
                ok = bad(&r, at, "version", "version %u (this build reads version %d)", v,
                         RV_TELEMETRY_VERSION);
            }
            have_version = true;
        } else if (k == 2) {
            ok = get_str(&r, w, &p->stream_id, "stream_id");
        } else if (k >= 10 && k <= 22) {
            if (p->type) {
                ok = bad(&r, at, "packet", "a second packet (%s after %s)",
                         rv_tpacket_type_name((rv_tpacket_type_t)(k - 9)),
                         rv_tpacket_type_name(p->type));
            } else {
                p->type = (rv_tpacket_type_t)(k - 9);
                ok = expect(&r, w, WT_LEN, rv_tpacket_type_name(p->type)) &&
                     get_len(&r, &body, &body_len, rv_tpacket_type_name(p->type));
            }
        } else {
            ok = skip(&r, w, k);
        }
        if (!ok) {
            return r.code;
        }
    }
    if (r.code != RV_OK) {
        return r.code;
    }
    if (!have_version) {
        bad(&r, r.base, "version", "missing (not a rivulet telemetry envelope?)");
        return r.code;
    }
    if (!p->type) {
        bad(&r, r.end, "packet", "the envelope holds no packet");
        return r.code;
    }
    _Static_assert(RV_TPACKET_STREAM_PROPERTIES == 1 && RV_TPACKET_COVERAGE == 13,
                   "packet types follow envelope fields 10..22");
    rd_t b = sub(&r, body, body_len);
    b.what = rv_tpacket_type_name(p->type);
    if (!get_body(&b, p)) {
        return b.code != RV_OK ? b.code : RV_ERR_PARSE;
    }
    *out = p;
    return RV_OK;
}
