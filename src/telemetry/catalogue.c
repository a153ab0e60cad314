/*
 * catalogue.c: the session catalogue of a telemetry topic (rv_tcatalogue_t, tstream.h).
 *
 * Reads every partition of a topic from its beginning to its end (and on, when following) and
 * keeps one entry per stream: its name and session, when it started and ended, whether it is
 * still live or ended (and how), and record counts. It decodes every record but keeps no data:
 * an entry is a few strings and counters, so a topic of any length fits. Records that do not
 * decode are counted as bad against their key; they never stop the scan.
 */
#include <stdlib.h>
#include <string.h>

#include "telemetry/tstream_int.h"

typedef struct entry_s {
    rv_tcatalogue_entry_t pub;
    char *stream_id, *name, *session_name, *session_id;
    bool has_session_start, has_recording, has_data, has_session_end;
    int64_t session_start, recording, data_min, data_max, session_end;
} entry_t;

struct rv_tcatalogue_s {
    rv__tmap_t map; /* stream id -> index */
    entry_t **entries;
    size_t count, cap;
    bool dirty; /* not sorted */
    rv_arena_t *scratch;
};

rv_tcatalogue_t *rv_tcatalogue_new(void) {
    rv_tcatalogue_t *cat = calloc(1, sizeof *cat);
    if (cat && !(cat->scratch = rv_arena_new(0))) {
        free(cat);
        cat = NULL;
    }
    return cat;
}

static void entry_free(entry_t *e) {
    free(e->stream_id);
    free(e->name);
    free(e->session_name);
    free(e->session_id);
    free(e);
}

void rv_tcatalogue_destroy(rv_tcatalogue_t *cat) {
    if (!cat) {
        return;
    }
    for (size_t i = 0; i < cat->count; i++) {
        entry_free(cat->entries[i]);
    }
    free(cat->entries);
    rv__tmap_free(&cat->map);
    rv_arena_destroy(cat->scratch);
    free(cat);
}

static int cmp_entry(const void *a, const void *b) {
    const rv_tcatalogue_entry_t *x = &(*(entry_t *const *)a)->pub;
    const rv_tcatalogue_entry_t *y = &(*(entry_t *const *)b)->pub;
    if (x->has_start != y->has_start) {
        return x->has_start ? -1 : 1;
    }
    if (x->has_start && x->start != y->start) {
        return x->start < y->start ? -1 : 1;
    }
    return strcmp(x->stream_id, y->stream_id);
}

static void sort(rv_tcatalogue_t *cat) {
    if (!cat->dirty) {
        return;
    }
    qsort(cat->entries, cat->count, sizeof *cat->entries, cmp_entry);
    for (size_t i = 0; i < cat->count; i++) {
        rv__tmap_put(&cat->map, cat->entries[i]->stream_id, i); /* replaces: cannot fail */
    }
    cat->dirty = false;
}

size_t rv_tcatalogue_count(rv_tcatalogue_t *cat) {
    sort(cat);
    return cat->count;
}

const rv_tcatalogue_entry_t *rv_tcatalogue_entry(rv_tcatalogue_t *cat, size_t i) {
    sort(cat);
    return i < cat->count ? &cat->entries[i]->pub : NULL;
}

const rv_tcatalogue_entry_t *rv_tcatalogue_find(rv_tcatalogue_t *cat, const char *stream_id) {
    size_t i;
    return rv__tmap_get(&cat->map, stream_id, &i) ? &cat->entries[i]->pub : NULL;
}

static entry_t *entry_get(rv_tcatalogue_t *cat, const char *id) {
    size_t i;
    if (rv__tmap_get(&cat->map, id, &i)) {
        return cat->entries[i];
    }
    if (cat->count == cat->cap) {
        size_t cap = cat->cap ? cat->cap * 2 : 16;
        entry_t **grown = realloc(cat->entries, cap * sizeof *grown);
        if (!grown) {
            return NULL;
        }
        cat->entries = grown;
        cat->cap = cap;
    }
    entry_t *e = calloc(1, sizeof *e);
    if (!e || !(e->stream_id = strdup(id)) || rv__tmap_put(&cat->map, id, cat->count) != RV_OK) {
        if (e) {
            free(e->stream_id);
        }
        free(e);
        return NULL;
    }
    e->pub.stream_id = e->stream_id;
    cat->entries[cat->count++] = e;
    cat->dirty = true;
    return e;
}

static void set_str(char **slot, const char *s) {
    if (!s || (*slot && strcmp(*slot, s) == 0)) {
        return;
    }
    char *copy = strdup(s);
    if (copy) {
        free(*slot);
        *slot = copy;
    }
}

static void data_time(entry_t *e, int64_t t) {
    if (!e->has_data || t < e->data_min) {
        e->data_min = t;
    }
    if (!e->has_data || t > e->data_max) {
        e->data_max = t;
    }
    e->has_data = true;
}

/* Derives the public start, end and name from what was read. */
static void settle(entry_t *e) {
    rv_tcatalogue_entry_t *p = &e->pub;
    p->name = e->name ? e->name : e->session_name;
    p->session_id = e->session_id;
    p->has_start = e->has_session_start || e->has_recording || e->has_data;
    p->start = e->has_session_start ? e->session_start
               : e->has_recording   ? e->recording
               : e->has_data        ? e->data_min
                                    : 0;
    p->has_end = e->has_session_end || e->has_data;
    p->end = e->has_session_end ? e->session_end : e->has_data ? e->data_max : 0;
}

static void account(entry_t *e, const rv_tpacket_t *p) {
    rv_tcatalogue_entry_t *pub = &e->pub;
    int64_t t;
    if (pub->ended &&
        (p->type == RV_TPACKET_STREAM_PROPERTIES || p->type == RV_TPACKET_SESSION_START)) {
        /* A stream id used again after its end: a new life (writers send nothing after the
         * end, so this is no re-send). Counts go on adding up. */
        pub->ended = false;
        e->has_session_end = false;
    }
    switch (p->type) {
        case RV_TPACKET_STREAM_PROPERTIES:
            set_str(&e->name, p->u.properties.name);
            if (p->u.properties.has_time_of_recording) {
                e->has_recording = true;
                e->recording = p->u.properties.time_of_recording;
            }
            break;
        case RV_TPACKET_SESSION_START:
            set_str(&e->session_id, p->u.session.session_id);
            set_str(&e->session_name, p->u.session.identifier);
            e->has_session_start = true;
            e->session_start = p->u.session.time;
            break;
        case RV_TPACKET_SESSION_INFO:
            set_str(&e->session_name, p->u.session.identifier);
            break;
        case RV_TPACKET_SESSION_END:
            e->has_session_end = true;
            e->session_end = p->u.session.time;
            break;
        case RV_TPACKET_STREAM_END:
            pub->ended = true;
            pub->end_type = p->u.end;
            break;
        case RV_TPACKET_FRAME:
        case RV_TPACKET_PERIODIC_DATA: {
            const rv_tframe_t *f = p->type == RV_TPACKET_FRAME ? p->u.frame : p->u.periodic.frame;
            pub->frames++;
            if (f) {
                pub->rows += f->rows;
                for (size_t i = 0; f->timestamps && i < f->rows; i++) {
                    data_time(e, f->timestamps[i]);
                }
            }
            break;
        }
        case RV_TPACKET_EVENTS:
            pub->events += p->u.events.count;
            if (rv__tpacket_time(p, &t)) {
                for (size_t i = 0; i < p->u.events.count; i++) {
                    data_time(e, p->u.events.items[i].time);
                }
            }
            break;
        case RV_TPACKET_MARKERS:
            pub->markers += p->u.markers.count;
            for (size_t i = 0; i < p->u.markers.count; i++) {
                data_time(e, p->u.markers.items[i].start_time);
                data_time(e, p->u.markers.items[i].end_time);
            }
            break;
        default:
            break;
    }
}

/* Accounts a record; *changed (may be NULL) receives its entry. */
static rv_err_t add(rv_tcatalogue_t *cat, const rv_record_t *rec, entry_t **changed) {
    if (changed) {
        *changed = NULL;
    }
    if (!rec->key || !rec->key_len || memchr(rec->key, '\0', rec->key_len)) {
        return RV_OK; /* no stream to count it for */
    }
    rv_arena_reset(cat->scratch);
    char *key = rv_arena_strndup(cat->scratch, rec->key, rec->key_len);
    entry_t *e = key ? entry_get(cat, key) : NULL;
    if (!e) {
        return RV_ERR_NOMEM;
    }
    e->pub.records++;
    e->pub.partition = rec->partition;
    rv_tpacket_t *p = NULL;
    if (!rec->value || rv__tdecode(cat->scratch, RV_TWIRE_AUTO, rec->value, rec->value_len, key, &p,
                                   NULL) != RV_OK) {
        e->pub.bad++;
    } else {
        account(e, p);
    }
    bool had_start = e->pub.has_start;
    int64_t start = e->pub.start;
    settle(e);
    if (had_start != e->pub.has_start || start != e->pub.start) {
        cat->dirty = true;
    }
    if (changed) {
        *changed = e;
    }
    return RV_OK;
}

rv_err_t rv_tcatalogue_add(rv_tcatalogue_t *cat, const rv_record_t *record) {
    return add(cat, record, NULL);
}

typedef struct scan_part_s {
    int32_t partition;
    int64_t high; /* the end when the scan started */
    bool done;
} scan_part_t;

typedef struct scan_s {
    scan_part_t *parts;
    int32_t count;
} scan_t;

static void on_eof(void *opaque, rv_consumer_t *consumer, const char *topic, int32_t partition,
                   int64_t offset) {
    scan_t *s = opaque;
    (void)consumer;
    (void)topic;
    if (partition >= 0 && partition < s->count && offset >= s->parts[partition].high) {
        s->parts[partition].done = true;
    }
}

static bool all_done(const scan_t *s) {
    for (int32_t i = 0; i < s->count; i++) {
        if (!s->parts[i].done) {
            return false;
        }
    }
    return true;
}

rv_err_t rv_tcatalogue_scan(rv_tcatalogue_t *cat, rv_broker_t *broker, const char *topic,
                            const rv_tcatalogue_opts_t *opts, rv_error_t **err) {
    rv_tcatalogue_opts_t o = opts ? *opts : (rv_tcatalogue_opts_t){0};
    int32_t partitions = 0;
    rv_err_t e = rv_broker_describe_topic(broker, topic, &partitions, NULL, err);
    if (e != RV_OK) {
        return e;
    }
    scan_t s = {calloc((size_t)partitions, sizeof *s.parts), partitions};
    rv_topic_partition_t *tps = calloc((size_t)partitions, sizeof *tps);
    if (!s.parts || !tps) {
        free(s.parts);
        free(tps);
        return rv__error_set(err, RV_ERR_NOMEM, "telemetry catalogue: out of memory");
    }
    for (int32_t i = 0; i < partitions && e == RV_OK; i++) {
        int64_t low = 0;
        s.parts[i].partition = i;
        e = rv_broker_watermarks(broker, topic, i, &low, &s.parts[i].high, err);
        s.parts[i].done = s.parts[i].high <= low;
        tps[i] = (rv_topic_partition_t){topic, i, RV_OFFSET_BEGINNING};
    }
    rv_consumer_opts_t copts = {.callbacks = {.opaque = &s, .on_partition_eof = on_eof}};
    rv_consumer_t *c = e == RV_OK ? rv_consumer_new(broker, &copts, err) : NULL;
    if (e == RV_OK && !c) {
        e = err && *err ? rv_error_code(*err) : RV_ERR_NOMEM;
    }
    if (e == RV_OK) {
        e = rv_consumer_assign(c, tps, (size_t)partitions, err);
    }
    bool scanning = true;
    while (e == RV_OK) {
        if (scanning && all_done(&s)) {
            scanning = false;
            if (o.on_scanned) {
                o.on_scanned(o.opaque, cat);
            }
            if (!o.follow) {
                break;
            }
        }
        if (o.stop && *o.stop) {
            break;
        }
        const rv_record_t *recs = NULL;
        size_t n = 0;
        e = rv_consumer_poll(c, &recs, 1024, &n, o.poll_timeout_ms ? o.poll_timeout_ms : 200, err);
        if (e == RV_ERR_TIMEOUT || e == RV_ERR_AGAIN) {
            e = RV_OK;
        }
        bool go_on = true;
        for (size_t i = 0; i < n && e == RV_OK; i++) {
            const rv_record_t *r = &recs[i];
            entry_t *changed = NULL;
            if (add(cat, r, &changed) != RV_OK) {
                e = rv__error_set(err, RV_ERR_NOMEM, "telemetry catalogue: out of memory");
                break;
            }
            if (r->partition >= 0 && r->partition < s.count &&
                r->offset + 1 >= s.parts[r->partition].high) {
                s.parts[r->partition].done = true;
            }
            if (!scanning && changed && o.on_update && go_on) {
                go_on = o.on_update(o.opaque, &changed->pub);
            }
        }
        if (!go_on) {
            break;
        }
    }
    rv_consumer_close(c);
    free(s.parts);
    free(tps);
    if (e != RV_OK) {
        return rv__error_prefix(err, e, "telemetry catalogue: topic '%s': ", topic);
    }
    return RV_OK;
}
