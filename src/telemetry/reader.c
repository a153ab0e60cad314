/*
 * reader.c: a telemetry stream reader (rv_treader_t, tstream.h).
 *
 * Records are fed in (from any consumer); each is decoded in either wire and applied to the
 * state of its stream (the record key): properties, session, definitions merged by id, data
 * formats. Callbacks fire when something arrives or changes, so the writer's periodic re-sends
 * are silent unless they bring news. Frames get their column names from their data format; a
 * frame whose format is unknown is held back unless the options say otherwise. The per-stream
 * state lives in a string map and is bounded: closed streams go at once, idle ones after a
 * timeout, and past max_streams the least recently active. A record that does not decode is
 * never a crash: it stops the reader or is skipped and counted, by the options.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/clock.h"
#include "telemetry/telemetry_int.h"
#include "telemetry/tstream_int.h"

#define EXPIRE_EVERY_MS 1000

typedef struct stream_s {
    char *id;
    char *topic;
    int32_t partition;
    rv__tkept_t props, session, params, events;
    rv__tformats_t formats;
    int64_t last_seen_ms;
    void *user;
} stream_t;

struct rv_treader_s {
    rv_treader_opts_t opts;
    rv_treader_callbacks_t cb;
    rv__tmap_t map; /* stream id -> index in streams */
    stream_t **streams;
    size_t count, cap;
    rv_arena_t *scratch;
    rv_treader_stats_t stats;
    int64_t last_expire_ms;
};

rv_treader_t *rv_treader_new(const rv_treader_opts_t *opts, const rv_treader_callbacks_t *callbacks,
                             rv_error_t **err) {
    rv_treader_t *r = calloc(1, sizeof *r);
    if (r) {
        r->scratch = rv_arena_new(0);
    }
    if (!r || !r->scratch) {
        free(r);
        rv__error_set(err, RV_ERR_NOMEM, "telemetry reader: out of memory");
        return NULL;
    }
    if (opts) {
        r->opts = *opts;
    }
    if (callbacks) {
        r->cb = *callbacks;
    }
    if (!r->opts.max_streams) {
        r->opts.max_streams = RV_TREADER_MAX_STREAMS;
    }
    if (!r->opts.idle_timeout_ms) {
        r->opts.idle_timeout_ms = RV_TREADER_IDLE_TIMEOUT_MS;
    }
    r->last_expire_ms = rv_clock_mono_ms();
    return r;
}

static void stream_free(stream_t *s) {
    if (!s) {
        return;
    }
    rv__tkept_free(&s->props);
    rv__tkept_free(&s->session);
    rv__tkept_free(&s->params);
    rv__tkept_free(&s->events);
    rv__tformats_free(&s->formats);
    free(s->id);
    free(s->topic);
    free(s);
}

static void view_of(stream_t *s, rv_tstream_view_t *v) {
    *v = (rv_tstream_view_t){
        .stream_id = s->id,
        .topic = s->topic,
        .partition = s->partition,
        .properties = s->props.p ? &s->props.p->u.properties : NULL,
        .session = s->session.p ? &s->session.p->u.session : NULL,
        .parameters = s->params.p ? s->params.p->u.parameters.items : NULL,
        .parameter_count = s->params.p ? s->params.p->u.parameters.count : 0,
        .event_defs = s->events.p ? s->events.p->u.event_defs.items : NULL,
        .event_def_count = s->events.p ? s->events.p->u.event_defs.count : 0,
        .user = &s->user,
    };
}

/* Removes stream `i` (its index moves to the last one's place). */
static void remove_at(rv_treader_t *r, size_t i) {
    stream_t *s = r->streams[i];
    rv__tmap_del(&r->map, s->id);
    r->streams[i] = r->streams[--r->count];
    if (i < r->count) {
        rv__tmap_put(&r->map, r->streams[i]->id, i); /* replaces: cannot fail */
    }
    stream_free(s);
}

static void forget_at(rv_treader_t *r, size_t i) {
    if (r->cb.on_forget) {
        rv_tstream_view_t v;
        view_of(r->streams[i], &v);
        r->cb.on_forget(r->cb.opaque, &v);
    }
    r->stats.forgotten++;
    remove_at(r, i);
}

void rv_treader_expire(rv_treader_t *r) {
    int64_t now = rv_clock_mono_ms();
    r->last_expire_ms = now;
    if (r->opts.idle_timeout_ms < 0) {
        return;
    }
    for (size_t i = r->count; i-- > 0;) {
        if (now - r->streams[i]->last_seen_ms > r->opts.idle_timeout_ms) {
            forget_at(r, i);
        }
    }
}

void rv_treader_destroy(rv_treader_t *r) {
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->count; i++) {
        stream_free(r->streams[i]);
    }
    free(r->streams);
    rv__tmap_free(&r->map);
    rv_arena_destroy(r->scratch);
    free(r);
}

void rv_treader_stats(const rv_treader_t *r, rv_treader_stats_t *out) {
    *out = r->stats;
    out->streams = r->count;
}

/* The stream of `id`, made (and announced by on_open, by the caller) when new. */
static stream_t *stream_get(rv_treader_t *r, const char *id, const rv_record_t *rec, bool *fresh,
                            rv_error_t **err) {
    size_t i;
    *fresh = false;
    if (rv__tmap_get(&r->map, id, &i)) {
        return r->streams[i];
    }
    if (r->count >= r->opts.max_streams) { /* make room: the least recently active goes */
        size_t oldest = 0;
        for (size_t k = 1; k < r->count; k++) {
            if (r->streams[k]->last_seen_ms < r->streams[oldest]->last_seen_ms) {
                oldest = k;
            }
        }
        forget_at(r, oldest);
    }
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        stream_t **grown = realloc(r->streams, cap * sizeof *grown);
        if (!grown) {
            rv__error_set(err, RV_ERR_NOMEM, "telemetry reader: out of memory");
            return NULL;
        }
        r->streams = grown;
        r->cap = cap;
    }
    stream_t *s = calloc(1, sizeof *s);
    if (s) {
        s->id = strdup(id);
        s->topic = strdup(rec->topic ? rec->topic : "");
    }
    if (!s || !s->id || !s->topic || rv__tmap_put(&r->map, id, r->count) != RV_OK) {
        stream_free(s);
        rv__error_set(err, RV_ERR_NOMEM, "telemetry reader: out of memory");
        return NULL;
    }
    s->partition = rec->partition;
    r->streams[r->count++] = s;
    *fresh = true;
    return s;
}

static bool str_eq(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Merges definitions by id into the stored set; *changed says whether anything changed. */
static rv_err_t merge_defs(stream_t *s, const rv_tpacket_t *p, bool *changed, rv_error_t **err) {
    bool params = p->type == RV_TPACKET_PARAMETER_DEFINITIONS;
    rv__tkept_t *pt = params ? &s->params : &s->events;
    size_t old = pt->p ? (params ? pt->p->u.parameters.count : pt->p->u.event_defs.count) : 0;
    size_t add = params ? p->u.parameters.count : p->u.event_defs.count;
    size_t size = params ? sizeof(rv_tparameter_def_t) : sizeof(rv_tevent_def_t);
    char *all = calloc(old + add + 1, size);
    if (!all) {
        return rv__error_set(err, RV_ERR_NOMEM, "telemetry reader: out of memory");
    }
    size_t n = 0;
    if (old) {
        memcpy(all,
               params ? (const void *)pt->p->u.parameters.items
                      : (const void *)pt->p->u.event_defs.items,
               old * size);
        n = old;
    }
    for (size_t i = 0; i < add; i++) {
        const char *id = params ? p->u.parameters.items[i].id : p->u.event_defs.items[i].id;
        size_t j = 0;
        while (j < n && !str_eq(id, params ? ((rv_tparameter_def_t *)(void *)all)[j].id
                                           : ((rv_tevent_def_t *)(void *)all)[j].id)) {
            j++;
        }
        memcpy(all + j * size,
               params ? (const void *)&p->u.parameters.items[i]
                      : (const void *)&p->u.event_defs.items[i],
               size);
        n += j == n;
    }
    rv_tpacket_t m = {.type = p->type, .stream_id = p->stream_id};
    if (params) {
        m.u.parameters.items = (const rv_tparameter_def_t *)(void *)all;
        m.u.parameters.count = n;
    } else {
        m.u.event_defs.items = (const rv_tevent_def_t *)(void *)all;
        m.u.event_defs.count = n;
    }
    rv_err_t e = RV_OK;
    *changed = !pt->p || !rv_tpacket_equal(pt->p, &m);
    if (*changed) {
        e = rv__tkept_set(pt, &m, err);
    }
    free(all);
    return e;
}

/* The session with an info packet applied. */
static rv_err_t apply_session_info(stream_t *s, const rv_tpacket_t *p, rv_error_t **err) {
    if (!s->session.p) {
        return rv__tkept_set(&s->session, p, err);
    }
    rv_tpacket_t m = *s->session.p;
    const rv_tsession_t *in = &p->u.session;
    if (in->identifier) {
        m.u.session.identifier = in->identifier;
    }
    if (in->version) {
        m.u.session.version = in->version;
    }
    if (in->detail_count) {
        m.u.session.details = in->details;
        m.u.session.detail_count = in->detail_count;
    }
    if (rv_tpacket_equal(&m, s->session.p)) {
        return RV_OK;
    }
    return rv__tkept_set(&s->session, &m,
                         err); /* rv__tkept_set copies before freeing the old arena */
}

/* Resolves unnamed columns of a frame from its data format. NULL: hold it back. */
static const rv_tframe_t *resolve(rv_treader_t *r, stream_t *s, const rv_tframe_t *f) {
    if (!f || f->format_id == 0) {
        return f;
    }
    const rv_tpacket_t *fmt = rv__tformats_find(&s->formats, f->format_id);
    if (!fmt) {
        return r->opts.deliver_undefined ? f : NULL;
    }
    const rv_tframe_t *named = rv__tframe_name_columns(r->scratch, f, fmt);
    return named ? named : f;
}

static rv_err_t apply(rv_treader_t *r, stream_t *s, const rv_tpacket_t *p, rv_error_t **err) {
    rv_tstream_view_t v;
    const rv_treader_callbacks_t *cb = &r->cb;
    rv_err_t e = RV_OK;
    bool changed = false;
    switch (p->type) {
        case RV_TPACKET_STREAM_PROPERTIES:
            if (!s->props.p || !rv_tpacket_equal(s->props.p, p)) {
                e = rv__tkept_set(&s->props, p, err);
                changed = e == RV_OK;
            }
            if (changed && cb->on_properties) {
                view_of(s, &v);
                cb->on_properties(cb->opaque, &v);
            }
            break;
        case RV_TPACKET_PARAMETER_DEFINITIONS:
        case RV_TPACKET_EVENT_DEFINITIONS:
            e = merge_defs(s, p, &changed, err);
            if (e == RV_OK && changed && cb->on_definitions) {
                view_of(s, &v);
                cb->on_definitions(cb->opaque, &v);
            }
            break;
        case RV_TPACKET_DATA_FORMAT:
            e = rv__tformats_put(&s->formats, p, err);
            break;
        case RV_TPACKET_SESSION_START:
        case RV_TPACKET_SESSION_INFO:
        case RV_TPACKET_SESSION_END: {
            bool repeat = false;
            if (p->type == RV_TPACKET_SESSION_START) {
                repeat = s->session.p && rv_tpacket_equal(s->session.p, p);
                e = repeat ? RV_OK : rv__tkept_set(&s->session, p, err);
            } else if (p->type == RV_TPACKET_SESSION_INFO) {
                /* A re-sent info changes nothing: the stored session stays as it was. */
                bool had = s->session.p != NULL;
                void *old_arena = s->session.arena;
                e = apply_session_info(s, p, err);
                repeat = had && s->session.arena == old_arena;
            }
            if (e == RV_OK && !repeat && cb->on_session) {
                view_of(s, &v);
                cb->on_session(cb->opaque, &v, p);
            }
            break;
        }
        case RV_TPACKET_FRAME:
        case RV_TPACKET_PERIODIC_DATA: {
            const rv_tframe_t *f =
                resolve(r, s, p->type == RV_TPACKET_FRAME ? p->u.frame : p->u.periodic.frame);
            if (!f) {
                r->stats.undefined++;
                return RV_OK;
            }
            if (cb->on_frame) {
                view_of(s, &v);
                cb->on_frame(cb->opaque, &v, f);
            }
            break;
        }
        case RV_TPACKET_EVENTS:
            if (cb->on_events) {
                view_of(s, &v);
                cb->on_events(cb->opaque, &v, p->u.events.items, p->u.events.count);
            }
            break;
        case RV_TPACKET_MARKERS:
            if (cb->on_markers) {
                view_of(s, &v);
                cb->on_markers(cb->opaque, &v, p->u.markers.items, p->u.markers.count);
            }
            break;
        case RV_TPACKET_COVERAGE:
            if (cb->on_coverage) {
                view_of(s, &v);
                cb->on_coverage(cb->opaque, &v, p->u.coverage_until);
            }
            break;
        case RV_TPACKET_STREAM_END:
            if (cb->on_close) {
                view_of(s, &v);
                cb->on_close(cb->opaque, &v, p->u.end);
            }
            break;
    }
    if (e == RV_OK) {
        r->stats.packets++;
    }
    return e;
}

rv_err_t rv_treader_feed(rv_treader_t *r, const rv_record_t *rec, rv_error_t **err) {
    r->stats.records++;
    rv_arena_reset(r->scratch);
    char where[256];
    rv_error_t *perr = NULL;
    rv_tpacket_t *p = NULL;
    rv_err_t e;
    const char *key = rec->key ? rv_arena_strndup(r->scratch, rec->key, rec->key_len) : NULL;
    if (!rec->key || rec->key_len == 0 || memchr(rec->key, '\0', rec->key_len)) {
        e = rv__error_set(&perr, RV_ERR_PARSE, "a telemetry record needs a key (its stream id)");
    } else if (!key) {
        return rv__error_set(err, RV_ERR_NOMEM, "telemetry reader: out of memory");
    } else if (!rec->value) {
        e = rv__error_set(&perr, RV_ERR_PARSE, "a tombstone (no value) is not a telemetry packet");
    } else {
        e = rv__tdecode(r->scratch, r->opts.wire, rec->value, rec->value_len, key, &p, &perr);
    }
    if (e == RV_ERR_NOMEM) {
        rv_error_destroy(perr);
        return rv__error_set(err, e, "telemetry reader: out of memory");
    }
    if (e != RV_OK) {
        rv__trecord_where(rec, where, sizeof where);
        rv_error_t *full = NULL;
        rv__error_set(&full, e, "telemetry reader: %s: %s", where, rv_error_message(perr));
        rv_error_destroy(perr);
        if (r->opts.on_bad == RV_TREADER_STOP) {
            if (err) {
                rv_error_destroy(*err);
                *err = full;
            } else {
                rv_error_destroy(full);
            }
            return e;
        }
        r->stats.bad++;
        if (r->cb.on_error) {
            r->cb.on_error(r->cb.opaque, e, rv_error_message(full));
        }
        rv_error_destroy(full);
        return RV_OK;
    }
    bool fresh = false;
    stream_t *s = stream_get(r, key, rec, &fresh, err);
    if (!s) {
        return RV_ERR_NOMEM;
    }
    s->last_seen_ms = rv_clock_mono_ms();
    s->partition = rec->partition;
    if (fresh) {
        if (p->type == RV_TPACKET_STREAM_PROPERTIES) {
            e = rv__tkept_set(&s->props, p, err);
            if (e != RV_OK) {
                return e;
            }
        }
        if (r->cb.on_open) {
            rv_tstream_view_t v;
            view_of(s, &v);
            r->cb.on_open(r->cb.opaque, &v);
        }
    }
    e = apply(r, s, p, err);
    if (p->type == RV_TPACKET_STREAM_END) {
        size_t i;
        if (rv__tmap_get(&r->map, key, &i)) {
            remove_at(r, i);
        }
    }
    return e;
}

rv_err_t rv_treader_poll(rv_treader_t *r, rv_consumer_t *consumer, int timeout_ms, size_t *count,
                         rv_error_t **err) {
    const rv_record_t *recs = NULL;
    size_t n = 0;
    if (count) {
        *count = 0;
    }
    rv_err_t e = rv_consumer_poll(consumer, &recs, 512, &n, timeout_ms, err);
    if (e == RV_ERR_TIMEOUT || e == RV_ERR_AGAIN) {
        rv_error_destroy(err ? *err : NULL);
        if (err) {
            *err = NULL;
        }
        e = RV_OK;
    }
    for (size_t i = 0; i < n && e == RV_OK; i++) {
        e = rv_treader_feed(r, &recs[i], err);
        if (e == RV_OK && count) {
            (*count)++;
        }
    }
    if (rv_clock_mono_ms() - r->last_expire_ms >= EXPIRE_EVERY_MS) {
        rv_treader_expire(r);
    }
    return e;
}
