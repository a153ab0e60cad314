/*
 * telemetry_json.c: rivulet's own JSON shape of telemetry packets, as value trees.
 *
 * rv_tpacket_to_value() builds the tree a pipeline sees (the `telemetry` and `quix` serialisers
 * decode into it); rv_tpacket_from_value() reads such a tree back, checking every member's type
 * and naming the JSON path of anything wrong. The JSON text forms are these trees written and
 * parsed by the JSON codec. Members this file does not know are ignored, so newer writers stay
 * readable. This file must never keep a pointer into the tree it reads: it copies into the arena.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "codec/value_int.h" /* the unique-key object builder only */
#include "rivulet/json.h"
#include "telemetry/telemetry_int.h"

/* ---- packet -> tree ------------------------------------------------------------------------- */

typedef struct tb_s {
    rv_arena_t *arena;
    bool nomem;
} tb_t;

static rv_value_t *chk(tb_t *t, rv_value_t *v) {
    if (!v) {
        t->nomem = true;
    }
    return v;
}

static void set(tb_t *t, rv_value_t *obj, const char *key, rv_value_t *v) {
    if (t->nomem || !obj || !v || rv_value_set(t->arena, obj, key, strlen(key), v) != RV_OK) {
        t->nomem = true;
    }
}

static void set_str(tb_t *t, rv_value_t *obj, const char *key, const char *s) {
    if (s) {
        set(t, obj, key, chk(t, rv_value_new_string(t->arena, s, strlen(s))));
    }
}

static void set_int(tb_t *t, rv_value_t *obj, const char *key, int64_t i) {
    set(t, obj, key, chk(t, rv_value_new_int(t->arena, i)));
}

static void set_dbl(tb_t *t, rv_value_t *obj, const char *key, double d) {
    set(t, obj, key, chk(t, rv_value_new_double(t->arena, d)));
}

static void push(tb_t *t, rv_value_t *arr, rv_value_t *v) {
    if (t->nomem || !arr || !v || rv_value_append(t->arena, arr, v) != RV_OK) {
        t->nomem = true;
    }
}

static rv_value_t *kv_object(tb_t *t, const rv_tkv_t *kv, size_t n) {
    rv_value_t *o = chk(t, rv_value_new_object(t->arena, n));
    for (size_t i = 0; i < n && o; i++) {
        const char *k = kv[i].key ? kv[i].key : "";
        rv_value_t *v = kv[i].value
                            ? rv_value_new_string(t->arena, kv[i].value, strlen(kv[i].value))
                            : rv_value_new_null(t->arena);
        set(t, o, k, chk(t, v));
    }
    return o;
}

static const char *const end_names[] = {"closed", "aborted", "terminated"};
static const char *const level_names[] = {"trace",   "debug", "information",
                                          "warning", "error", "critical"};

static rv_value_t *cell_value(tb_t *t, const rv_tcolumn_t *col, size_t r) {
    switch (col->type) {
        case RV_TCOL_DOUBLE:
            return chk(t, rv_value_new_double(t->arena, col->v.d[r]));
        case RV_TCOL_INT64:
            return chk(t, rv_value_new_int(t->arena, col->v.i[r]));
        case RV_TCOL_BYTES:
            return chk(t, rv_value_new_bytes(t->arena, col->v.s[r].data, col->v.s[r].len));
        default:
            return chk(t, rv_value_new_string(t->arena, col->v.s[r].data, col->v.s[r].len));
    }
}

/*
 * The frame's members. A column its data format names, whose name a packet decoded on its own
 * does not know, is listed with the name "" and its cells are keyed "#k" (rv__tcolumn_key()).
 * Rows are the bulk of the work, so when the column keys are distinct within their kind
 * (always, for a frame a decoder accepted) each key is copied and classified once per frame and
 * the row objects are built without lookups (rv__value_obj_push_unique); otherwise
 * rv_value_set() merges repeated keys as it always has (the last column wins).
 */
static void frame_members(tb_t *t, rv_value_t *o, const rv_tframe_t *f, bool with_time) {
    if (f->format_id) {
        set_int(t, o, "format_id", f->format_id);
    }
    size_t nc = f->column_count;
    rv_tcolumn_t *named = nc ? rv_arena_alloc(t->arena, nc * sizeof *named) : NULL;
    rv__vkey_t *keys = nc ? rv_arena_alloc(t->arena, nc * sizeof *keys) : NULL;
    if (nc && (!named || !keys)) {
        t->nomem = true;
        return;
    }
    rv_value_t *cols = chk(t, rv_value_new_array(t->arena, nc));
    for (size_t c = 0; c < nc && !t->nomem; c++) {
        char buf[24];
        const char *key = rv__tcolumn_key(f, c, buf);
        named[c] = f->columns[c];
        if (!rv__vkey_make(t->arena, key, strlen(key), &keys[c])) {
            t->nomem = true;
            break;
        }
        named[c].name = keys[c].key;
        rv_value_t *cd = chk(t, rv_value_new_object(t->arena, 2));
        set_str(t, cd, "name", f->columns[c].name ? f->columns[c].name : "");
        set_str(t, cd, "type", rv_tcol_type_name(f->columns[c].type));
        push(t, cols, cd);
    }
    set(t, o, "columns", cols);
    if (t->nomem) {
        return;
    }
    long dup = rv__tcolumns_dup(t->arena, named, nc);
    if (dup == -2) {
        t->nomem = true;
        return;
    }
    size_t ntags = 0;
    for (size_t c = 0; c < nc; c++) {
        ntags += f->columns[c].type == RV_TCOL_TAG;
    }
    rv_value_t *rows = chk(t, rv_value_new_array(t->arena, f->rows));
    for (size_t r = 0; r < f->rows && !t->nomem; r++) {
        rv_value_t *row = chk(t, rv_value_new_object(t->arena, 3));
        if (with_time) {
            set_int(t, row, "time", f->timestamps[r]);
        }
        rv_value_t *values = NULL, *tags = NULL;
        for (size_t c = 0; c < nc && !t->nomem; c++) {
            const rv_tcolumn_t *col = &f->columns[c];
            if (!rv_tcolumn_has(col, r)) {
                continue;
            }
            rv_value_t *v = cell_value(t, col, r);
            bool tag = col->type == RV_TCOL_TAG;
            rv_value_t **dst = tag ? &tags : &values;
            if (!*dst) {
                *dst = chk(t, rv_value_new_object(t->arena, tag ? ntags : nc - ntags));
            }
            if (dup != -1) {
                set(t, *dst, named[c].name, v);
            } else if (!t->nomem && *dst && v &&
                       rv__value_obj_push_unique(t->arena, *dst, &keys[c], v) != RV_OK) {
                t->nomem = true;
            }
        }
        if (values) {
            if (rv__value_obj_seal(t->arena, values) != RV_OK) {
                t->nomem = true;
            }
            set(t, row, "values", values);
        }
        if (tags) {
            if (rv__value_obj_seal(t->arena, tags) != RV_OK) {
                t->nomem = true;
            }
            set(t, row, "tags", tags);
        }
        push(t, rows, row);
    }
    set(t, o, "rows", rows);
}

rv_err_t rv_tpacket_to_value(rv_arena_t *arena, const rv_tpacket_t *p, rv_value_t **out,
                             rv_error_t **err) {
    if (!arena || !p || !out || !rv_tpacket_type_name(p->type)) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "telemetry to value: %s",
                             p && arena && out ? "unknown packet type" : "NULL argument");
    }
    tb_t t = {.arena = arena};
    rv_value_t *o = chk(&t, rv_value_new_object(arena, 8));
    set_int(&t, o, "version", RV_TELEMETRY_VERSION);
    set_str(&t, o, "type", rv_tpacket_type_name(p->type));
    set_str(&t, o, "stream_id", p->stream_id);
    switch (p->type) {
        case RV_TPACKET_STREAM_PROPERTIES: {
            const rv_tstream_properties_t *x = &p->u.properties;
            set_str(&t, o, "name", x->name);
            set_str(&t, o, "location", x->location);
            set(&t, o, "metadata", kv_object(&t, x->metadata, x->metadata_count));
            rv_value_t *a = chk(&t, rv_value_new_array(arena, x->parent_count));
            for (size_t i = 0; i < x->parent_count; i++) {
                const char *s = x->parents[i] ? x->parents[i] : "";
                push(&t, a, chk(&t, rv_value_new_string(arena, s, strlen(s))));
            }
            set(&t, o, "parents", a);
            if (x->has_time_of_recording) {
                set_int(&t, o, "time_of_recording", x->time_of_recording);
            }
            break;
        }
        case RV_TPACKET_STREAM_END:
            if ((unsigned)p->u.end > RV_TSTREAM_TERMINATED) {
                return rv__error_set(err, RV_ERR_INVALID_ARG,
                                     "telemetry stream_end: unknown end %d", (int)p->u.end);
            }
            set_str(&t, o, "end", end_names[p->u.end]);
            break;
        case RV_TPACKET_SESSION_START:
        case RV_TPACKET_SESSION_INFO:
        case RV_TPACKET_SESSION_END: {
            const rv_tsession_t *x = &p->u.session;
            set_str(&t, o, "session_id", x->session_id);
            if (p->type != RV_TPACKET_SESSION_END) {
                set_str(&t, o, "identifier", x->identifier);
                if (p->type == RV_TPACKET_SESSION_START) {
                    set_str(&t, o, "session_type", x->session_type);
                }
                set_int(&t, o, "session_version", x->version);
                set(&t, o, "details", kv_object(&t, x->details, x->detail_count));
            }
            if (p->type == RV_TPACKET_SESSION_START) {
                set_int(&t, o, "start_time", x->time);
            } else if (p->type == RV_TPACKET_SESSION_END) {
                set_int(&t, o, "end_time", x->time);
            }
            break;
        }
        case RV_TPACKET_PARAMETER_DEFINITIONS: {
            rv_value_t *a = chk(&t, rv_value_new_array(arena, p->u.parameters.count));
            for (size_t i = 0; i < p->u.parameters.count && !t.nomem; i++) {
                const rv_tparameter_def_t *d = &p->u.parameters.items[i];
                rv_value_t *e = chk(&t, rv_value_new_object(arena, 10));
                set_str(&t, e, "id", d->id);
                set_str(&t, e, "name", d->name);
                set_str(&t, e, "description", d->description);
                set_str(&t, e, "unit", d->unit);
                if (d->has_minimum) {
                    set_dbl(&t, e, "minimum", d->minimum);
                }
                if (d->has_maximum) {
                    set_dbl(&t, e, "maximum", d->maximum);
                }
                set_str(&t, e, "format", d->format);
                set_str(&t, e, "location", d->location);
                set_str(&t, e, "custom_properties", d->custom_properties);
                if (d->frequency != 0 || signbit(d->frequency)) { /* -0.0 too: bits survive */
                    set_dbl(&t, e, "frequency", d->frequency);
                }
                push(&t, a, e);
            }
            set(&t, o, "parameters", a);
            break;
        }
        case RV_TPACKET_EVENT_DEFINITIONS: {
            rv_value_t *a = chk(&t, rv_value_new_array(arena, p->u.event_defs.count));
            for (size_t i = 0; i < p->u.event_defs.count && !t.nomem; i++) {
                const rv_tevent_def_t *d = &p->u.event_defs.items[i];
                if ((unsigned)d->level > RV_TLEVEL_CRITICAL) {
                    return rv__error_set(err, RV_ERR_INVALID_ARG,
                                         "telemetry event_definitions: events[%zu]: level %d", i,
                                         (int)d->level);
                }
                rv_value_t *e = chk(&t, rv_value_new_object(arena, 6));
                set_str(&t, e, "id", d->id);
                set_str(&t, e, "name", d->name);
                set_str(&t, e, "description", d->description);
                set_str(&t, e, "level", level_names[d->level]);
                set_str(&t, e, "location", d->location);
                set_str(&t, e, "custom_properties", d->custom_properties);
                push(&t, a, e);
            }
            set(&t, o, "events", a);
            break;
        }
        case RV_TPACKET_DATA_FORMAT: {
            set_int(&t, o, "format_id", p->u.format.format_id);
            rv_value_t *a = chk(&t, rv_value_new_array(arena, p->u.format.count));
            for (size_t i = 0; i < p->u.format.count; i++) {
                const char *s = p->u.format.parameter_ids[i] ? p->u.format.parameter_ids[i] : "";
                push(&t, a, chk(&t, rv_value_new_string(arena, s, strlen(s))));
            }
            set(&t, o, "parameter_ids", a);
            break;
        }
        case RV_TPACKET_PERIODIC_DATA:
            if (!p->u.periodic.frame) {
                return rv__error_set(err, RV_ERR_INVALID_ARG, "telemetry periodic_data: no frame");
            }
            set_int(&t, o, "start_time", p->u.periodic.start_time);
            set_int(&t, o, "interval", p->u.periodic.interval);
            frame_members(&t, o, p->u.periodic.frame, false);
            break;
        case RV_TPACKET_FRAME:
            if (!p->u.frame) {
                return rv__error_set(err, RV_ERR_INVALID_ARG, "telemetry frame: no frame");
            }
            frame_members(&t, o, p->u.frame, true);
            break;
        case RV_TPACKET_EVENTS: {
            rv_value_t *a = chk(&t, rv_value_new_array(arena, p->u.events.count));
            for (size_t i = 0; i < p->u.events.count && !t.nomem; i++) {
                const rv_tevent_t *e = &p->u.events.items[i];
                rv_value_t *eo = chk(&t, rv_value_new_object(arena, 4));
                set_str(&t, eo, "id", e->id);
                set_int(&t, eo, "time", e->time);
                set_str(&t, eo, "value", e->value);
                set(&t, eo, "tags", kv_object(&t, e->tags, e->tag_count));
                push(&t, a, eo);
            }
            set(&t, o, "events", a);
            break;
        }
        case RV_TPACKET_MARKERS: {
            rv_value_t *a = chk(&t, rv_value_new_array(arena, p->u.markers.count));
            for (size_t i = 0; i < p->u.markers.count && !t.nomem; i++) {
                const rv_tmarker_t *m = &p->u.markers.items[i];
                rv_value_t *mo = chk(&t, rv_value_new_object(arena, 5));
                set_str(&t, mo, "kind", m->kind);
                set_str(&t, mo, "label", m->label);
                set_int(&t, mo, "start_time", m->start_time);
                set_int(&t, mo, "end_time", m->end_time);
                set_str(&t, mo, "description", m->description);
                push(&t, a, mo);
            }
            set(&t, o, "markers", a);
            break;
        }
        case RV_TPACKET_COVERAGE:
            set_int(&t, o, "until", p->u.coverage_until);
            break;
    }
    if (t.nomem) {
        return rv__error_set(err, RV_ERR_NOMEM, "telemetry to value: out of memory");
    }
    *out = o;
    return RV_OK;
}

/* ---- tree -> packet ------------------------------------------------------------------------- */

typedef struct tr_s {
    rv_arena_t *arena;
    rv_error_t **err;
    rv_err_t code;
} tr_t;

static bool jbad(tr_t *t, const char *path, const char *fmt, ...) RV_PRINTF(3, 4);
static bool jbad(tr_t *t, const char *path, const char *fmt, ...) {
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->code = RV_ERR_PARSE;
    rv__error_set(t->err, RV_ERR_PARSE, "telemetry json: %s: %s", path, msg);
    return false;
}

static bool jnomem(tr_t *t) {
    t->code = RV_ERR_NOMEM;
    rv__error_set(t->err, RV_ERR_NOMEM, "telemetry json: out of memory");
    return false;
}

/* Path of a member: "$.rows[3].values" style, into `buf`. */
static const char *path2(char *buf, size_t size, const char *base, const char *key, long index) {
    if (index >= 0) {
        snprintf(buf, size, "%s.%s[%ld]", base, key, index);
    } else {
        snprintf(buf, size, "%s.%s", base, key);
    }
    return buf;
}

/* Copies a string node into the arena (NULL for an absent or null member). */
static bool jstr(tr_t *t, const rv_value_t *v, const char **out, const char *path) {
    rv_type_t ty = rv_value_type(v);
    if (ty == RV_TYPE_NULL) {
        *out = NULL;
        return true;
    }
    if (ty != RV_TYPE_STRING) {
        return jbad(t, path, "expected a string, found %s", rv_type_name(ty));
    }
    size_t n;
    const char *s = rv_value_str(v, &n);
    if (memchr(s, 0, n)) {
        return jbad(t, path, "string holds a NUL character");
    }
    char *c = rv_arena_strndup(t->arena, s, n);
    if (!c) {
        return jnomem(t);
    }
    *out = c;
    return true;
}

static bool jmember_str(tr_t *t, const rv_value_t *o, const char *key, const char **out,
                        const char *base) {
    char p[160];
    return jstr(t, rv_value_get_cstr(o, key), out, path2(p, sizeof p, base, key, -1));
}

static bool jint(tr_t *t, const rv_value_t *v, int64_t *out, const char *path) {
    rv_type_t ty = rv_value_type(v);
    if (ty == RV_TYPE_NULL) {
        return true;
    }
    if (ty != RV_TYPE_INT) {
        return jbad(t, path, "expected an integer, found %s", rv_type_name(ty));
    }
    *out = rv_value_int(v);
    return true;
}

static bool jmember_int(tr_t *t, const rv_value_t *o, const char *key, int64_t *out,
                        const char *base) {
    char p[160];
    return jint(t, rv_value_get_cstr(o, key), out, path2(p, sizeof p, base, key, -1));
}

static bool jmember_u32(tr_t *t, const rv_value_t *o, const char *key, uint32_t *out,
                        const char *base) {
    char p[160];
    int64_t i = 0;
    if (!jint(t, rv_value_get_cstr(o, key), &i, path2(p, sizeof p, base, key, -1))) {
        return false;
    }
    if (i < 0 || i > UINT32_MAX) {
        return jbad(t, p, "%lld is not an unsigned 32-bit number", (long long)i);
    }
    *out = (uint32_t)i;
    return true;
}

/* A number member (int or double); `*has` says whether it was there. */
static bool jmember_num(tr_t *t, const rv_value_t *o, const char *key, double *out, bool *has,
                        const char *base) {
    const rv_value_t *v = rv_value_get_cstr(o, key);
    rv_type_t ty = rv_value_type(v);
    if (has) {
        *has = ty != RV_TYPE_NULL;
    }
    if (ty == RV_TYPE_NULL) {
        return true;
    }
    if (ty != RV_TYPE_INT && ty != RV_TYPE_DOUBLE) {
        char p[160];
        return jbad(t, path2(p, sizeof p, base, key, -1), "expected a number, found %s",
                    rv_type_name(ty));
    }
    *out = rv_value_double(v);
    return true;
}

/* The array member `key` (absent or null: an empty array); false for another type. */
static bool jarray(tr_t *t, const rv_value_t *o, const char *key, const rv_value_t **out, size_t *n,
                   const char *base) {
    const rv_value_t *v = rv_value_get_cstr(o, key);
    rv_type_t ty = rv_value_type(v);
    *out = v;
    *n = 0;
    if (ty == RV_TYPE_NULL) {
        return true;
    }
    if (ty != RV_TYPE_ARRAY) {
        char p[160];
        return jbad(t, path2(p, sizeof p, base, key, -1), "expected an array, found %s",
                    rv_type_name(ty));
    }
    *n = rv_value_len(v);
    return true;
}

static void *jalloc(tr_t *t, size_t n, size_t size) {
    void *p = rv_arena_alloc(t->arena, n * size + 1);
    if (p) {
        memset(p, 0, n * size + 1);
    } else {
        jnomem(t);
    }
    return p;
}

/* An object of strings as key-value pairs. */
static bool jkvs(tr_t *t, const rv_value_t *o, const char *key, const rv_tkv_t **out, size_t *n,
                 const char *base) {
    char p[160];
    path2(p, sizeof p, base, key, -1);
    const rv_value_t *v = rv_value_get_cstr(o, key);
    *n = 0;
    *out = NULL;
    if (rv_value_type(v) == RV_TYPE_NULL) {
        return true;
    }
    if (rv_value_type(v) != RV_TYPE_OBJECT) {
        return jbad(t, p, "expected an object of strings, found %s",
                    rv_type_name(rv_value_type(v)));
    }
    size_t len = rv_value_len(v);
    rv_tkv_t *kv = jalloc(t, len, sizeof *kv);
    if (!kv) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        const char *k;
        size_t kl;
        const rv_value_t *mv = rv_value_member_at(v, i, &k, &kl);
        char mp[256];
        snprintf(mp, sizeof mp, "%s['%.60s']", p, k);
        if (memchr(k, 0, kl)) {
            return jbad(t, mp, "key holds a NUL character");
        }
        kv[i].key = rv_arena_strndup(t->arena, k, kl);
        if (!kv[i].key) {
            return jnomem(t);
        }
        if (!jstr(t, mv, &kv[i].value, mp)) {
            return false;
        }
    }
    *out = kv;
    *n = len;
    return true;
}

static bool jstrs(tr_t *t, const rv_value_t *o, const char *key, const char *const **out, size_t *n,
                  const char *base) {
    const rv_value_t *a;
    if (!jarray(t, o, key, &a, n, base)) {
        return false;
    }
    const char **s = jalloc(t, *n, sizeof *s);
    if (!s) {
        return false;
    }
    for (size_t i = 0; i < *n; i++) {
        char p[160];
        if (!jstr(t, rv_value_at(a, i), &s[i], path2(p, sizeof p, base, key, (long)i))) {
            return false;
        }
        if (!s[i]) {
            return jbad(t, p, "expected a string, found null");
        }
    }
    *out = s;
    return true;
}

/* Finds a name in a table of names; -1 when absent. */
static int lookup(const char *const *names, int n, const char *s) {
    for (int i = 0; s && i < n; i++) {
        if (strcmp(names[i], s) == 0) {
            return i;
        }
    }
    return -1;
}

/* Reads "columns" and "rows" into a frame; timestamps from "time" unless `times` is given. */
static bool jframe(tr_t *t, const rv_value_t *o, rv_tframe_t *f, const int64_t *times,
                   size_t nrows_fixed) {
    const rv_value_t *cols, *rows;
    size_t nc, nr;
    if (!jarray(t, o, "columns", &cols, &nc, "$") || !jarray(t, o, "rows", &rows, &nr, "$")) {
        return false;
    }
    rv_tcolumn_t *c = jalloc(t, nc, sizeof *c);
    int64_t *ts = jalloc(t, nr, sizeof *ts);
    if (!c || !ts) {
        return false;
    }
    uint32_t fmt = 0;
    if (!jmember_u32(t, o, "format_id", &fmt, "$")) {
        return false;
    }
    for (size_t i = 0; i < nc; i++) {
        char base[64];
        snprintf(base, sizeof base, "$.columns[%zu]", i);
        const rv_value_t *cd = rv_value_at(cols, i);
        if (rv_value_type(cd) != RV_TYPE_OBJECT) {
            return jbad(t, base, "expected an object {name, type}");
        }
        const char *type = NULL;
        if (!jmember_str(t, cd, "name", &c[i].name, base) ||
            !jmember_str(t, cd, "type", &type, base)) {
            return false;
        }
        if (!c[i].name) {
            return jbad(t, base, "column without a name");
        }
        int ty = 0;
        for (int k = RV_TCOL_DOUBLE; k <= RV_TCOL_TAG; k++) {
            if (type && strcmp(type, rv_tcol_type_name((rv_tcol_type_t)k)) == 0) {
                ty = k;
            }
        }
        if (!ty) {
            return jbad(t, base, "type '%.40s' is not double, int64, string, bytes or tag",
                        type ? type : "(missing)");
        }
        c[i].type = (rv_tcol_type_t)ty;
        size_t es = ty == RV_TCOL_DOUBLE || ty == RV_TCOL_INT64 ? 8 : sizeof(rv_buf_t);
        void *vals = jalloc(t, nr, es);
        uint8_t *present = jalloc(t, nr / 8 + 1, 1);
        if (!vals || !present) {
            return false;
        }
        if (ty == RV_TCOL_DOUBLE) {
            c[i].v.d = vals;
        } else if (ty == RV_TCOL_INT64) {
            c[i].v.i = vals;
        } else {
            rv_buf_t *sv = vals;
            for (size_t r = 0; r < nr; r++) {
                sv[r].data = "";
            }
            c[i].v.s = sv;
        }
        c[i].present = present;
    }
    /* Rows key cells by name, or by "#k" for columns the data format names: the keys must be
     * distinct within their kind. */
    rv_tcolumn_t *keyed = jalloc(t, nc, sizeof *keyed);
    if (!keyed) {
        return false;
    }
    rv_tframe_t kf = {.format_id = fmt, .column_count = nc, .columns = c};
    for (size_t i = 0; i < nc; i++) {
        char buf[24];
        keyed[i] = c[i];
        const char *key = rv__tcolumn_key(&kf, i, buf);
        keyed[i].name = key == buf ? rv_arena_strndup(t->arena, buf, strlen(buf)) : key;
        if (!keyed[i].name) {
            return jnomem(t);
        }
    }
    long dup = rv__tcolumns_dup(t->arena, keyed, nc);
    if (dup == -2) {
        return jnomem(t);
    }
    if (dup >= 0) {
        char base[64];
        snprintf(base, sizeof base, "$.columns[%ld]", dup);
        return jbad(t, base, "a second %s named '%.60s'",
                    c[dup].type == RV_TCOL_TAG ? "tag" : "column", keyed[dup].name);
    }
    if (times && nr != nrows_fixed) {
        return jbad(t, "$.rows", "%zu rows where count says %zu", nr, nrows_fixed);
    }
    for (size_t r = 0; r < nr; r++) {
        char base[64];
        snprintf(base, sizeof base, "$.rows[%zu]", r);
        const rv_value_t *row = rv_value_at(rows, r);
        if (rv_value_type(row) != RV_TYPE_OBJECT) {
            return jbad(t, base, "expected an object {time, values, tags}");
        }
        if (times) {
            ts[r] = times[r];
        } else {
            const rv_value_t *tv = rv_value_get_cstr(row, "time");
            if (rv_value_type(tv) != RV_TYPE_INT) {
                char p[96];
                return jbad(t, path2(p, sizeof p, base, "time", -1),
                            "expected an integer, found %s", rv_type_name(rv_value_type(tv)));
            }
            ts[r] = rv_value_int(tv);
        }
        for (int part = 0; part < 2; part++) {
            const char *pk = part ? "tags" : "values";
            const rv_value_t *vals = rv_value_get_cstr(row, pk);
            char pbase[96];
            path2(pbase, sizeof pbase, base, pk, -1);
            if (rv_value_type(vals) == RV_TYPE_NULL) {
                continue;
            }
            if (rv_value_type(vals) != RV_TYPE_OBJECT) {
                return jbad(t, pbase, "expected an object, found %s",
                            rv_type_name(rv_value_type(vals)));
            }
            for (size_t m = 0; m < rv_value_len(vals); m++) {
                const char *k;
                size_t kl;
                const rv_value_t *v = rv_value_member_at(vals, m, &k, &kl);
                char mp[200];
                snprintf(mp, sizeof mp, "%s['%.60s']", pbase, k);
                rv_tcolumn_t *col = NULL;
                for (size_t i = 0; i < nc; i++) {
                    if ((c[i].type == RV_TCOL_TAG) == (part == 1) && strlen(keyed[i].name) == kl &&
                        memcmp(keyed[i].name, k, kl) == 0) {
                        col = &c[i];
                    }
                }
                if (!col) {
                    return jbad(t, mp, "no such %s in \"columns\"", part ? "tag" : "column");
                }
                rv_type_t vt = rv_value_type(v);
                if (vt == RV_TYPE_NULL) {
                    continue;
                }
                bool ok = true;
                switch (col->type) {
                    case RV_TCOL_DOUBLE:
                        ok = vt == RV_TYPE_DOUBLE || vt == RV_TYPE_INT;
                        ((double *)col->v.d)[r] = rv_value_double(v);
                        break;
                    case RV_TCOL_INT64:
                        ok = vt == RV_TYPE_INT;
                        ((int64_t *)col->v.i)[r] = rv_value_int(v);
                        break;
                    case RV_TCOL_BYTES: {
                        size_t n;
                        const char *s = rv_value_str(v, &n);
                        rv_buf_t *b = (rv_buf_t *)&col->v.s[r];
                        if (vt == RV_TYPE_BYTES) {
                            b->data = rv_arena_memdup(t->arena, s, n + 1);
                            b->len = n;
                            if (!b->data) {
                                return jnomem(t);
                            }
                        } else if (vt == RV_TYPE_STRING) {
                            bool good;
                            b->data = rv__tbase64_decode(t->arena, s, n, &b->len, &good);
                            if (!good) {
                                return jbad(t, mp, "not base64");
                            }
                            if (!b->data) {
                                return jnomem(t);
                            }
                        } else {
                            ok = false;
                        }
                        break;
                    }
                    default: {
                        ok = vt == RV_TYPE_STRING;
                        size_t n;
                        const char *s = rv_value_str(v, &n);
                        rv_buf_t *b = (rv_buf_t *)&col->v.s[r];
                        b->data = ok ? rv_arena_memdup(t->arena, s, n + 1) : "";
                        b->len = ok ? n : 0;
                        if (!b->data) {
                            return jnomem(t);
                        }
                    }
                }
                if (!ok) {
                    return jbad(t, mp, "a %s column cannot hold %s", rv_tcol_type_name(col->type),
                                rv_type_name(vt));
                }
                ((uint8_t *)col->present)[r >> 3] |= (uint8_t)(1u << (r & 7));
            }
        }
    }
    /* Columns present in every row drop their bitmap, as the builder does. */
    for (size_t i = 0; i < nc; i++) {
        size_t have = 0;
        for (size_t r = 0; r < nr; r++) {
            have += rv_tcolumn_has(&c[i], r);
        }
        if (have == nr) {
            c[i].present = NULL;
        }
    }
    f->format_id = fmt;
    f->rows = nr;
    f->timestamps = ts;
    f->column_count = nc;
    f->columns = c;
    return true;
}

static bool jbody(tr_t *t, const rv_value_t *o, rv_tpacket_t *p) {
    switch (p->type) {
        case RV_TPACKET_STREAM_PROPERTIES: {
            rv_tstream_properties_t *x = &p->u.properties;
            const rv_value_t *tor = rv_value_get_cstr(o, "time_of_recording");
            x->has_time_of_recording = rv_value_type(tor) != RV_TYPE_NULL;
            return jmember_str(t, o, "name", &x->name, "$") &&
                   jmember_str(t, o, "location", &x->location, "$") &&
                   jkvs(t, o, "metadata", &x->metadata, &x->metadata_count, "$") &&
                   jstrs(t, o, "parents", &x->parents, &x->parent_count, "$") &&
                   jmember_int(t, o, "time_of_recording", &x->time_of_recording, "$");
        }
        case RV_TPACKET_STREAM_END: {
            const char *e = NULL;
            if (!jmember_str(t, o, "end", &e, "$")) {
                return false;
            }
            int i = e ? lookup(end_names, 3, e) : 0;
            if (i < 0) {
                return jbad(t, "$.end", "'%.40s' is not closed, aborted or terminated", e);
            }
            p->u.end = (rv_tstream_end_t)i;
            return true;
        }
        case RV_TPACKET_SESSION_START:
        case RV_TPACKET_SESSION_INFO:
        case RV_TPACKET_SESSION_END: {
            /* Exactly the members rv_tpacket_to_value() writes for the type, so every form
             * carries the same fields. */
            rv_tsession_t *x = &p->u.session;
            bool start = p->type == RV_TPACKET_SESSION_START;
            if (!jmember_str(t, o, "session_id", &x->session_id, "$")) {
                return false;
            }
            if (p->type == RV_TPACKET_SESSION_END) {
                return jmember_int(t, o, "end_time", &x->time, "$");
            }
            return jmember_str(t, o, "identifier", &x->identifier, "$") &&
                   (!start || jmember_str(t, o, "session_type", &x->session_type, "$")) &&
                   jmember_u32(t, o, "session_version", &x->version, "$") &&
                   (!start || jmember_int(t, o, "start_time", &x->time, "$")) &&
                   jkvs(t, o, "details", &x->details, &x->detail_count, "$");
        }
        case RV_TPACKET_PARAMETER_DEFINITIONS: {
            const rv_value_t *a;
            size_t n;
            if (!jarray(t, o, "parameters", &a, &n, "$")) {
                return false;
            }
            rv_tparameter_def_t *d = jalloc(t, n, sizeof *d);
            if (!d) {
                return false;
            }
            for (size_t i = 0; i < n; i++) {
                char b[48];
                snprintf(b, sizeof b, "$.parameters[%zu]", i);
                const rv_value_t *e = rv_value_at(a, i);
                if (rv_value_type(e) != RV_TYPE_OBJECT) {
                    return jbad(t, b, "expected an object");
                }
                if (!jmember_str(t, e, "id", &d[i].id, b) ||
                    !jmember_str(t, e, "name", &d[i].name, b) ||
                    !jmember_str(t, e, "description", &d[i].description, b) ||
                    !jmember_str(t, e, "unit", &d[i].unit, b) ||
                    !jmember_num(t, e, "minimum", &d[i].minimum, &d[i].has_minimum, b) ||
                    !jmember_num(t, e, "maximum", &d[i].maximum, &d[i].has_maximum, b) ||
                    !jmember_str(t, e, "format", &d[i].format, b) ||
                    !jmember_str(t, e, "location", &d[i].location, b) ||
                    !jmember_str(t, e, "custom_properties", &d[i].custom_properties, b) ||
                    !jmember_num(t, e, "frequency", &d[i].frequency, NULL, b)) {
                    return false;
                }
            }
            p->u.parameters.items = d;
            p->u.parameters.count = n;
            return true;
        }
        case RV_TPACKET_EVENT_DEFINITIONS: {
            const rv_value_t *a;
            size_t n;
            if (!jarray(t, o, "events", &a, &n, "$")) {
                return false;
            }
            rv_tevent_def_t *d = jalloc(t, n, sizeof *d);
            if (!d) {
                return false;
            }
            for (size_t i = 0; i < n; i++) {
                char b[48];
                snprintf(b, sizeof b, "$.events[%zu]", i);
                const rv_value_t *e = rv_value_at(a, i);
                const char *level = NULL;
                if (rv_value_type(e) != RV_TYPE_OBJECT) {
                    return jbad(t, b, "expected an object");
                }
                if (!jmember_str(t, e, "id", &d[i].id, b) ||
                    !jmember_str(t, e, "name", &d[i].name, b) ||
                    !jmember_str(t, e, "description", &d[i].description, b) ||
                    !jmember_str(t, e, "level", &level, b) ||
                    !jmember_str(t, e, "location", &d[i].location, b) ||
                    !jmember_str(t, e, "custom_properties", &d[i].custom_properties, b)) {
                    return false;
                }
                int l = level ? lookup(level_names, 6, level) : RV_TLEVEL_INFORMATION;
                if (l < 0) {
                    return jbad(t, b,
                                "level '%.40s' is not trace, debug, information, warning, "
                                "error or critical",
                                level);
                }
                d[i].level = (rv_tevent_level_t)l;
            }
            p->u.event_defs.items = d;
            p->u.event_defs.count = n;
            return true;
        }
        case RV_TPACKET_DATA_FORMAT:
            return jmember_u32(t, o, "format_id", &p->u.format.format_id, "$") &&
                   jstrs(t, o, "parameter_ids", &p->u.format.parameter_ids, &p->u.format.count,
                         "$");
        case RV_TPACKET_PERIODIC_DATA: {
            int64_t start = 0, interval = 0;
            const rv_value_t *rows;
            size_t nr;
            if (!jmember_int(t, o, "start_time", &start, "$") ||
                !jmember_int(t, o, "interval", &interval, "$") ||
                !jarray(t, o, "rows", &rows, &nr, "$")) {
                return false;
            }
            int64_t *times = jalloc(t, nr, sizeof *times);
            rv_tframe_t *f = jalloc(t, 1, sizeof *f);
            if (!times || !f) {
                return false;
            }
            for (size_t i = 0; i < nr; i++) {
                if (__builtin_mul_overflow(interval, (int64_t)i, &times[i]) ||
                    __builtin_add_overflow(times[i], start, &times[i])) {
                    return jbad(t, "$.interval", "row %zu overflows the time range", i);
                }
            }
            p->u.periodic.start_time = start;
            p->u.periodic.interval = interval;
            p->u.periodic.frame = f;
            return jframe(t, o, f, times, nr);
        }
        case RV_TPACKET_FRAME: {
            rv_tframe_t *f = jalloc(t, 1, sizeof *f);
            p->u.frame = f;
            return f && jframe(t, o, f, NULL, 0);
        }
        case RV_TPACKET_EVENTS: {
            const rv_value_t *a;
            size_t n;
            if (!jarray(t, o, "events", &a, &n, "$")) {
                return false;
            }
            rv_tevent_t *ev = jalloc(t, n, sizeof *ev);
            if (!ev) {
                return false;
            }
            for (size_t i = 0; i < n; i++) {
                char b[48];
                snprintf(b, sizeof b, "$.events[%zu]", i);
                const rv_value_t *e = rv_value_at(a, i);
                if (rv_value_type(e) != RV_TYPE_OBJECT) {
                    return jbad(t, b, "expected an object");
                }
                if (!jmember_str(t, e, "id", &ev[i].id, b) ||
                    !jmember_int(t, e, "time", &ev[i].time, b) ||
                    !jmember_str(t, e, "value", &ev[i].value, b) ||
                    !jkvs(t, e, "tags", &ev[i].tags, &ev[i].tag_count, b)) {
                    return false;
                }
            }
            p->u.events.items = ev;
            p->u.events.count = n;
            return true;
        }
        case RV_TPACKET_MARKERS: {
            const rv_value_t *a;
            size_t n;
            if (!jarray(t, o, "markers", &a, &n, "$")) {
                return false;
            }
            rv_tmarker_t *mk = jalloc(t, n, sizeof *mk);
            if (!mk) {
                return false;
            }
            for (size_t i = 0; i < n; i++) {
                char b[48];
                snprintf(b, sizeof b, "$.markers[%zu]", i);
                const rv_value_t *e = rv_value_at(a, i);
                if (rv_value_type(e) != RV_TYPE_OBJECT) {
                    return jbad(t, b, "expected an object");
                }
                if (!jmember_str(t, e, "kind", &mk[i].kind, b) ||
                    !jmember_str(t, e, "label", &mk[i].label, b) ||
                    !jmember_int(t, e, "start_time", &mk[i].start_time, b) ||
                    !jmember_int(t, e, "end_time", &mk[i].end_time, b) ||
                    !jmember_str(t, e, "description", &mk[i].description, b)) {
                    return false;
                }
            }
            p->u.markers.items = mk;
            p->u.markers.count = n;
            return true;
        }
        case RV_TPACKET_COVERAGE:
            return jmember_int(t, o, "until", &p->u.coverage_until, "$");
    }
    return false;
}

rv_err_t rv_tpacket_from_value(rv_arena_t *arena, const rv_value_t *v, rv_tpacket_t **out,
                               rv_error_t **err) {
    if (!arena || !out) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "telemetry from value: NULL argument");
    }
    *out = NULL;
    tr_t t = {.arena = arena, .err = err};
    if (rv_value_type(v) != RV_TYPE_OBJECT) {
        jbad(&t, "$", "expected a telemetry packet object, found %s",
             rv_type_name(rv_value_type(v)));
        return t.code;
    }
    int64_t version = RV_TELEMETRY_VERSION;
    const char *type = NULL;
    rv_tpacket_t *p = jalloc(&t, 1, sizeof *p);
    if (!p || !jmember_int(&t, v, "version", &version, "$") ||
        !jmember_str(&t, v, "type", &type, "$") ||
        !jmember_str(&t, v, "stream_id", &p->stream_id, "$")) {
        return t.code;
    }
    if (version != RV_TELEMETRY_VERSION) {
        return rv__error_set(err, RV_ERR_UNSUPPORTED,
                             "telemetry json: $.version: version %lld (this build reads %d)",
                             (long long)version, RV_TELEMETRY_VERSION);
    }
    for (int k = RV_TPACKET_STREAM_PROPERTIES; k <= RV_TPACKET_COVERAGE; k++) {
        if (type && strcmp(type, rv_tpacket_type_name((rv_tpacket_type_t)k)) == 0) {
            p->type = (rv_tpacket_type_t)k;
        }
    }
    if (!p->type) {
        jbad(&t, "$.type", "'%.40s' is not a telemetry packet type", type ? type : "(missing)");
        return t.code;
    }
    if (!jbody(&t, v, p)) {
        return t.code != RV_OK ? t.code : RV_ERR_PARSE;
    }
    *out = p;
    return RV_OK;
}

rv_err_t rv_tpacket_write_json(const rv_tpacket_t *p, rv_strbuf_t *out, rv_error_t **err) {
    rv_arena_t *arena = rv_arena_new(0);
    if (!arena) {
        return rv__error_set(err, RV_ERR_NOMEM, "telemetry json: out of memory");
    }
    rv_value_t *v = NULL;
    rv_err_t e = rv_tpacket_to_value(arena, p, &v, err);
    if (e == RV_OK) {
        e = rv_json_write(out, v, RV_JSON_COMPACT, err);
    }
    rv_arena_destroy(arena);
    return e;
}

rv_err_t rv_tpacket_read_json(rv_arena_t *arena, const char *text, size_t len, rv_tpacket_t **out,
                              rv_error_t **err) {
    rv_value_t *v = NULL;
    rv_err_t e = rv_json_parse(arena, text, len, NULL, &v, NULL, err);
    if (e != RV_OK) {
        return rv__error_prefix(err, e, "telemetry json: ");
    }
    return rv_tpacket_from_value(arena, v, out, err);
}
