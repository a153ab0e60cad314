/*
 * writer.c: a telemetry stream writer (rv_twriter_t, tstream.h).
 *
 * One writer sends one stream's packets to a topic through a producer, the stream id as the
 * record key, in the protobuf or the legacy Quix wire. It keeps copies of what a consumer
 * joining mid-stream needs (properties, session start and latest info, parameter and event
 * definitions merged by id, the data formats it assigned) and sends them again as a block by
 * the rule in docs/telemetry.md ("Writers"). It never reads from the broker and never blocks
 * except to wait for producer queue space.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/tstream_int.h"

#define SEND_RETRIES 100 /* x 100 ms of polling while the producer's queue is full */

/* A stored packet: a deep copy in its own arena, replaced as a whole. */
typedef struct format_s {
    uint32_t id;
    rv_tpacket_t *p; /* in w->formats_arena */
} format_t;

struct rv_twriter_s {
    rv_producer_t *producer;
    char *topic;
    char *stream_id;
    rv_twire_t wire;
    int64_t redefine_interval_ns; /* < 0 never */
    int64_t redefine_packets;     /* < 0 never */
    bool compact_frames;          /* frames leave their format's names out */

    rv__tkept_t props, session, info, params, events;
    rv_arena_t *formats_arena;
    format_t *formats;
    size_t format_count;

    int64_t packets_since; /* data packets since the last re-send block (or open) */
    bool have_block_time;
    int64_t block_time; /* data time of the last re-send block */
    bool have_latest;
    int64_t latest; /* the latest data time sent */
    rv_arena_t *scratch;
    rv_strbuf_t buf;
    rv_strbuf_t names;  /* scratch for format matching */
    rv_tcolumn_t *cols; /* a frame's columns with the names its data format gives left out */
    size_t cols_cap;
};

rv_twriter_t *rv_twriter_open(rv_producer_t *producer, const char *topic, const char *stream_id,
                              const rv_twriter_opts_t *opts, rv_error_t **err) {
    if (!producer || !topic || !*topic || !stream_id || !*stream_id) {
        rv__error_set(err, RV_ERR_INVALID_ARG,
                      "telemetry writer: a producer, a topic and a non-empty stream id are needed");
        return NULL;
    }
    rv_twriter_opts_t o = opts ? *opts : (rv_twriter_opts_t){0};
    rv_twriter_t *w = calloc(1, sizeof *w);
    if (w) {
        w->topic = strdup(topic);
        w->stream_id = strdup(stream_id);
        w->scratch = rv_arena_new(0);
        w->formats_arena = rv_arena_new(0);
    }
    if (!w || !w->topic || !w->stream_id || !w->scratch || !w->formats_arena) {
        rv_twriter_destroy(w);
        rv__error_set(err, RV_ERR_NOMEM, "telemetry writer: out of memory");
        return NULL;
    }
    w->producer = producer;
    w->wire = o.wire == RV_TWIRE_QUIX ? RV_TWIRE_QUIX : RV_TWIRE_TELEMETRY;
    w->redefine_interval_ns =
        o.redefine_interval_ns ? o.redefine_interval_ns : RV_TWRITER_REDEFINE_INTERVAL_NS;
    w->redefine_packets = o.redefine_packets ? o.redefine_packets : RV_TWRITER_REDEFINE_PACKETS;
    w->compact_frames = o.compact_frames;
    return w;
}

const char *rv_twriter_stream_id(const rv_twriter_t *w) {
    return w->stream_id;
}

void rv_twriter_destroy(rv_twriter_t *w) {
    if (!w) {
        return;
    }
    rv__tkept_free(&w->props);
    rv__tkept_free(&w->session);
    rv__tkept_free(&w->info);
    rv__tkept_free(&w->params);
    rv__tkept_free(&w->events);
    rv_arena_destroy(w->formats_arena);
    rv_arena_destroy(w->scratch);
    free(w->formats);
    rv_strbuf_free(&w->buf);
    rv_strbuf_free(&w->names);
    free(w->cols);
    free(w->topic);
    free(w->stream_id);
    free(w);
}

/* Whether the wire has a message for this packet type. */
static bool wire_carries(const rv_twriter_t *w, rv_tpacket_type_t type) {
    if (w->wire != RV_TWIRE_QUIX) {
        return true;
    }
    switch (type) {
        case RV_TPACKET_SESSION_START:
        case RV_TPACKET_SESSION_INFO:
        case RV_TPACKET_SESSION_END:
        case RV_TPACKET_DATA_FORMAT:
        case RV_TPACKET_MARKERS:
        case RV_TPACKET_COVERAGE:
            return false;
        default:
            return true;
    }
}

/* Encodes and sends one packet of this stream. */
static rv_err_t send_packet(rv_twriter_t *w, rv_tpacket_t *p, rv_error_t **err) {
    if (!wire_carries(w, p->type)) {
        return RV_OK;
    }
    p->stream_id = w->stream_id;
    rv_strbuf_clear(&w->buf);
    rv_err_t e = rv__tencode(w->wire, p, &w->buf, err);
    if (e != RV_OK) {
        return rv__error_prefix(err, e, "telemetry writer: topic '%s' stream '%s': ", w->topic,
                                w->stream_id);
    }
    int64_t t = 0;
    rv_record_t rec = {
        .topic = w->topic,
        .partition = RV_PARTITION_ANY,
        .key = w->stream_id,
        .key_len = strlen(w->stream_id),
        .value = w->buf.data ? w->buf.data : "",
        .value_len = w->buf.len,
        .timestamp_ms = rv__tpacket_time(p, &t) && t > 0 ? t / 1000000 : 0,
    };
    for (int i = 0;; i++) {
        e = rv_producer_send(w->producer, &rec, NULL);
        if (e != RV_ERR_AGAIN || i >= SEND_RETRIES) {
            break;
        }
        rv_producer_poll(w->producer, 100);
    }
    if (e != RV_OK) {
        return rv__error_set(err, e,
                             "telemetry writer: topic '%s' stream '%s': cannot send a %s "
                             "packet: %s",
                             w->topic, w->stream_id, rv_tpacket_type_name(p->type), rv_err_str(e));
    }
    return RV_OK;
}

/* Replaces a stored part with a deep copy of `p`. */
static rv_err_t part_set(rv_twriter_t *w, rv__tkept_t *pt, const rv_tpacket_t *p,
                         rv_error_t **err) {
    rv_err_t e = rv__tkept_set(pt, p, err);
    return e == RV_OK
               ? RV_OK
               : rv__error_prefix(err, e, "telemetry writer: topic '%s' stream '%s': ", w->topic,
                                  w->stream_id);
}

rv_err_t rv_twriter_redefine(rv_twriter_t *w, rv_error_t **err) {
    rv__tkept_t *parts[] = {&w->props, &w->session, &w->info, &w->params, &w->events};
    for (size_t i = 0; i < RV_ARRAY_LEN(parts); i++) {
        if (parts[i]->p) {
            rv_err_t e = send_packet(w, parts[i]->p, err);
            if (e != RV_OK) {
                return e;
            }
        }
    }
    for (size_t i = 0; i < w->format_count; i++) {
        rv_err_t e = send_packet(w, w->formats[i].p, err);
        if (e != RV_OK) {
            return e;
        }
    }
    w->packets_since = 0;
    if (w->have_latest) {
        w->have_block_time = true;
        w->block_time = w->latest;
    }
    return RV_OK;
}

/* Before a data packet at data time `t` (has_t): the re-send block when the rule says so. */
static rv_err_t before_data(rv_twriter_t *w, bool has_t, int64_t t, rv_error_t **err) {
    bool due = w->redefine_packets > 0 && w->packets_since >= w->redefine_packets;
    if (has_t && w->redefine_interval_ns > 0) {
        if (!w->have_block_time) {
            w->have_block_time = true; /* the definitions went out just before the first data */
            w->block_time = t;
        } else if (t - w->block_time >= w->redefine_interval_ns) {
            due = true;
        }
    }
    if (due) {
        rv_err_t e = rv_twriter_redefine(w, err);
        if (e != RV_OK) {
            return e;
        }
        if (has_t) {
            w->have_block_time = true;
            w->block_time = t;
        }
    }
    return RV_OK;
}

static rv_err_t send_data(rv_twriter_t *w, rv_tpacket_t *p, rv_error_t **err) {
    int64_t t = 0;
    bool has_t = rv__tpacket_time(p, &t);
    rv_err_t e = before_data(w, has_t, t, err);
    if (e == RV_OK) {
        e = send_packet(w, p, err);
    }
    if (e == RV_OK) {
        w->packets_since++;
        if (has_t) {
            int64_t last = t;
            if (p->type == RV_TPACKET_FRAME) {
                for (size_t i = 0; i < p->u.frame->rows; i++) {
                    last = p->u.frame->timestamps[i] > last ? p->u.frame->timestamps[i] : last;
                }
            }
            if (!w->have_latest || last > w->latest) {
                w->latest = last;
                w->have_latest = true;
            }
        }
    }
    return e;
}

rv_err_t rv_twriter_set_properties(rv_twriter_t *w, const rv_tstream_properties_t *props,
                                   rv_error_t **err) {
    rv_tpacket_t p = {.type = RV_TPACKET_STREAM_PROPERTIES, .stream_id = w->stream_id};
    p.u.properties = *props;
    rv_err_t e = part_set(w, &w->props, &p, err);
    return e == RV_OK ? send_packet(w, w->props.p, err) : e;
}

rv_err_t rv_twriter_session_start(rv_twriter_t *w, const rv_tsession_t *session, rv_error_t **err) {
    rv_tpacket_t p = {.type = RV_TPACKET_SESSION_START, .stream_id = w->stream_id};
    p.u.session = *session;
    rv_err_t e = part_set(w, &w->session, &p, err);
    return e == RV_OK ? send_packet(w, w->session.p, err) : e;
}

rv_err_t rv_twriter_session_info(rv_twriter_t *w, const rv_tsession_t *info, rv_error_t **err) {
    rv_tpacket_t p = {.type = RV_TPACKET_SESSION_INFO, .stream_id = w->stream_id};
    p.u.session = *info;
    p.u.session.session_type = NULL;
    p.u.session.time = 0;
    rv_err_t e = part_set(w, &w->info, &p, err);
    return e == RV_OK ? send_packet(w, w->info.p, err) : e;
}

static bool str_eq(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

/*
 * Merges `count` definitions of `size` bytes each into the `old` ones by id (a later one
 * replaces an earlier one with the same id, new ids are appended) into a new array *out of
 * *n; each definition type begins with its `const char *id`. NULL when memory is exhausted.
 */
_Static_assert(offsetof(rv_tparameter_def_t, id) == 0, "merge_defs reads the id first");
_Static_assert(offsetof(rv_tevent_def_t, id) == 0, "merge_defs reads the id first");

static void *merge_defs(const void *old, size_t nold, const void *defs, size_t count, size_t size,
                        size_t *n) {
    unsigned char *all = calloc(nold + count + 1, size);
    if (!all) {
        return NULL;
    }
    if (nold) {
        memcpy(all, old, nold * size);
    }
    *n = nold;
    for (size_t i = 0; i < count; i++) {
        const unsigned char *d = (const unsigned char *)defs + i * size;
        const char *id;
        memcpy(&id, d, sizeof id);
        size_t j = 0;
        for (; j < *n; j++) {
            const char *have;
            memcpy(&have, all + j * size, sizeof have);
            if (str_eq(have, id)) {
                break;
            }
        }
        memcpy(all + j * size, d, size);
        *n += j == *n;
    }
    return all;
}

rv_err_t rv_twriter_define_parameters(rv_twriter_t *w, const rv_tparameter_def_t *defs,
                                      size_t count, rv_error_t **err) {
    rv_tpacket_t p = {.type = RV_TPACKET_PARAMETER_DEFINITIONS, .stream_id = w->stream_id};
    const rv_tpacket_t *had = w->params.p;
    rv_tparameter_def_t *all =
        merge_defs(had ? had->u.parameters.items : NULL, had ? had->u.parameters.count : 0, defs,
                   count, sizeof *defs, &p.u.parameters.count);
    if (!all) {
        return rv__error_set(err, RV_ERR_NOMEM, "telemetry writer: out of memory");
    }
    p.u.parameters.items = all;
    rv_err_t e = part_set(w, &w->params, &p, err);
    free(all);
    return e == RV_OK ? send_packet(w, w->params.p, err) : e;
}

rv_err_t rv_twriter_define_events(rv_twriter_t *w, const rv_tevent_def_t *defs, size_t count,
                                  rv_error_t **err) {
    rv_tpacket_t p = {.type = RV_TPACKET_EVENT_DEFINITIONS, .stream_id = w->stream_id};
    const rv_tpacket_t *had = w->events.p;
    rv_tevent_def_t *all =
        merge_defs(had ? had->u.event_defs.items : NULL, had ? had->u.event_defs.count : 0, defs,
                   count, sizeof *defs, &p.u.event_defs.count);
    if (!all) {
        return rv__error_set(err, RV_ERR_NOMEM, "telemetry writer: out of memory");
    }
    p.u.event_defs.items = all;
    rv_err_t e = part_set(w, &w->events, &p, err);
    free(all);
    return e == RV_OK ? send_packet(w, w->events.p, err) : e;
}

/* The data format of the frame's non-tag columns: found, or made (and sent) when new. */
static rv_err_t format_for(rv_twriter_t *w, const rv_tframe_t *f, uint32_t *id, rv_error_t **err) {
    size_t n = 0;
    for (size_t c = 0; c < f->column_count; c++) {
        n += f->columns[c].type != RV_TCOL_TAG;
    }
    for (size_t i = 0; i < w->format_count; i++) {
        const rv_tpacket_t *p = w->formats[i].p;
        if (p->u.format.count != n) {
            continue;
        }
        size_t k = 0, c = 0;
        for (; c < f->column_count; c++) {
            if (f->columns[c].type == RV_TCOL_TAG) {
                continue;
            }
            if (!str_eq(p->u.format.parameter_ids[k], f->columns[c].name)) {
                break;
            }
            k++;
        }
        if (c == f->column_count) {
            *id = w->formats[i].id;
            return RV_OK;
        }
    }
    const char **ids = calloc(n + 1, sizeof *ids);
    format_t *grown = realloc(w->formats, (w->format_count + 1) * sizeof *grown);
    if (!ids || !grown) {
        free(ids);
        if (grown) {
            w->formats = grown;
        }
        return rv__error_set(err, RV_ERR_NOMEM, "telemetry writer: out of memory");
    }
    w->formats = grown;
    size_t k = 0;
    for (size_t c = 0; c < f->column_count; c++) {
        if (f->columns[c].type != RV_TCOL_TAG) {
            ids[k++] = f->columns[c].name;
        }
    }
    rv_tpacket_t p = {.type = RV_TPACKET_DATA_FORMAT, .stream_id = w->stream_id};
    p.u.format.format_id = (uint32_t)w->format_count + 1;
    p.u.format.parameter_ids = ids;
    p.u.format.count = n;
    rv_tpacket_t *copy = NULL;
    rv_err_t e = rv__tpacket_clone(w->formats_arena, &p, &copy, err);
    free(ids);
    if (e != RV_OK) {
        return e;
    }
    w->formats[w->format_count++] = (format_t){p.u.format.format_id, copy};
    *id = p.u.format.format_id;
    return send_packet(w, copy, err);
}

/* Points `f` at a copy of its columns without the names of its data format, which the writer
 * has sent (format_for): a reader names the columns from the format, so a frame costs no
 * bytes per name. Tag columns keep theirs (formats name parameters only). */
static rv_err_t leave_names_out(rv_twriter_t *w, rv_tframe_t *f, rv_error_t **err) {
    if (f->column_count > w->cols_cap) {
        rv_tcolumn_t *grown = realloc(w->cols, f->column_count * sizeof *grown);
        if (!grown) {
            return rv__error_set(err, RV_ERR_NOMEM, "telemetry writer: out of memory");
        }
        w->cols = grown;
        w->cols_cap = f->column_count;
    }
    for (size_t c = 0; c < f->column_count; c++) {
        w->cols[c] = f->columns[c];
        if (w->cols[c].type != RV_TCOL_TAG) {
            w->cols[c].name = NULL;
        }
    }
    f->columns = w->cols;
    return RV_OK;
}

rv_err_t rv_twriter_write_frame(rv_twriter_t *w, const rv_tframe_t *frame, rv_error_t **err) {
    if (!frame || frame->rows == 0) {
        return RV_OK;
    }
    rv_tframe_t f = *frame;
    rv_tpacket_t p = {.type = RV_TPACKET_FRAME, .stream_id = w->stream_id};
    p.u.frame = &f;
    int64_t t = 0;
    bool has_t = rv__tpacket_time(&p, &t);
    rv_err_t e = before_data(w, has_t, t, err);
    if (e == RV_OK && w->wire != RV_TWIRE_QUIX) {
        e = format_for(w, frame, &f.format_id, err);
        if (e == RV_OK && w->compact_frames) {
            e = leave_names_out(w, &f, err);
        }
    }
    return e == RV_OK ? send_data(w, &p, err) : e;
}

rv_err_t rv_twriter_write_builder(rv_twriter_t *w, rv_tframe_builder_t *b, rv_error_t **err) {
    rv_arena_reset(w->scratch);
    const rv_tframe_t *f = NULL;
    if (rv_tframe_builder_finish(b, w->scratch, 0, &f) != RV_OK) {
        return rv__error_set(err, RV_ERR_NOMEM, "telemetry writer: out of memory");
    }
    return rv_twriter_write_frame(w, f, err);
}

rv_err_t rv_twriter_write_events(rv_twriter_t *w, const rv_tevent_t *events, size_t count,
                                 rv_error_t **err) {
    if (!count) {
        return RV_OK;
    }
    rv_tpacket_t p = {.type = RV_TPACKET_EVENTS, .stream_id = w->stream_id};
    p.u.events.items = events;
    p.u.events.count = count;
    return send_data(w, &p, err);
}

rv_err_t rv_twriter_write_markers(rv_twriter_t *w, const rv_tmarker_t *markers, size_t count,
                                  rv_error_t **err) {
    if (!count) {
        return RV_OK;
    }
    rv_tpacket_t p = {.type = RV_TPACKET_MARKERS, .stream_id = w->stream_id};
    p.u.markers.items = markers;
    p.u.markers.count = count;
    return send_data(w, &p, err);
}

rv_err_t rv_twriter_coverage(rv_twriter_t *w, int64_t until, rv_error_t **err) {
    rv_tpacket_t p = {.type = RV_TPACKET_COVERAGE, .stream_id = w->stream_id};
    p.u.coverage_until = until;
    return send_data(w, &p, err);
}

rv_err_t rv_twriter_close(rv_twriter_t *w, rv_tstream_end_t end, int64_t end_time,
                          rv_error_t **err) {
    if (!w) {
        return RV_OK;
    }
    rv_err_t e = RV_OK;
    if (w->session.p) {
        rv_tpacket_t p = {.type = RV_TPACKET_SESSION_END, .stream_id = w->stream_id};
        p.u.session.session_id = w->session.p->u.session.session_id;
        p.u.session.time = end_time ? end_time : w->have_latest ? w->latest : 0;
        e = send_packet(w, &p, err);
    }
    if (e == RV_OK) {
        rv_tpacket_t p = {.type = RV_TPACKET_STREAM_END, .stream_id = w->stream_id};
        p.u.end = end;
        e = send_packet(w, &p, err);
    }
    rv_twriter_destroy(w);
    return e;
}
