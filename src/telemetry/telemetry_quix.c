/*
 * telemetry_quix.c: the JSON messages of legacy Quix Streams (< 2.0) topics.
 *
 * Legacy Quix wraps each model in {"C": codec id, "K": model key, "V": the model, "S": and "E":
 * the byte offsets of V's text in the message}. The "JT" codec writes models as Newtonsoft.Json
 * does by default: PascalCase members, enums as names, null members left out. This file reads
 * that wrapper (and bare models, as newer versions carry the key in headers) into packets and
 * writes packets back as "JT" messages; docs/telemetry.md lists the mapping and what Quix cannot
 * carry. It must never accept a message it only half understood: anything unexpected is an error
 * naming the JSON path.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rivulet/json.h"
#include "telemetry/telemetry_int.h"

static const char *const quix_levels[] = {"Trace",   "Debug", "Information",
                                          "Warning", "Error", "Critical"};
static const char *const quix_ends[] = {"Closed", "Aborted", "Terminated"};

typedef struct qr_s {
    rv_arena_t *arena;
    rv_error_t **err;
    rv_err_t code;
} qr_t;

static bool qbad(qr_t *q, const char *path, const char *fmt, ...) RV_PRINTF(3, 4);
static bool qbad(qr_t *q, const char *path, const char *fmt, ...) {
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    q->code = RV_ERR_PARSE;
    rv__error_set(q->err, RV_ERR_PARSE, "quix message: %s: %s", path, msg);
    return false;
}

static bool qnomem(qr_t *q) {
    q->code = RV_ERR_NOMEM;
    rv__error_set(q->err, RV_ERR_NOMEM, "quix message: out of memory");
    return false;
}

static void *qalloc(qr_t *q, size_t n, size_t size) {
    void *p = rv_arena_alloc(q->arena, n * size + 1);
    if (p) {
        memset(p, 0, n * size + 1);
    } else {
        qnomem(q);
    }
    return p;
}

/* A string member (absent or null: NULL). */
static bool qstr(qr_t *q, const rv_value_t *o, const char *key, const char **out,
                 const char *base) {
    const rv_value_t *v = rv_value_get_cstr(o, key);
    *out = NULL;
    if (rv_value_type(v) == RV_TYPE_NULL) {
        return true;
    }
    if (rv_value_type(v) != RV_TYPE_STRING) {
        return qbad(q, base, "%s: expected a string, found %s", key,
                    rv_type_name(rv_value_type(v)));
    }
    size_t n;
    const char *s = rv_value_str(v, &n);
    if (memchr(s, 0, n)) {
        return qbad(q, base, "%s: string holds a NUL character", key);
    }
    *out = rv_arena_strndup(q->arena, s, n);
    return *out ? true : qnomem(q);
}

static bool qkvs(qr_t *q, const rv_value_t *v, const rv_tkv_t **out, size_t *count,
                 const char *path) {
    *out = NULL;
    *count = 0;
    if (rv_value_type(v) == RV_TYPE_NULL) {
        return true;
    }
    if (rv_value_type(v) != RV_TYPE_OBJECT) {
        return qbad(q, path, "expected an object of strings");
    }
    size_t n = rv_value_len(v);
    rv_tkv_t *kv = qalloc(q, n, sizeof *kv);
    if (!kv) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        const rv_value_t *mv = rv_value_member_at(v, i, &k, &kl);
        if (memchr(k, 0, kl)) {
            return qbad(q, path, "a key holds a NUL character");
        }
        kv[i].key = rv_arena_strndup(q->arena, k, kl);
        if (rv_value_type(mv) == RV_TYPE_STRING) {
            size_t sl;
            const char *s = rv_value_str(mv, &sl);
            if (memchr(s, 0, sl)) {
                return qbad(q, path, "['%.60s']: string holds a NUL character", k);
            }
            kv[i].value = rv_arena_strndup(q->arena, s, sl);
            if (!kv[i].value) {
                return qnomem(q);
            }
        } else if (rv_value_type(mv) != RV_TYPE_NULL) {
            return qbad(q, path, "['%.60s']: expected a string, found %s", k,
                        rv_type_name(rv_value_type(mv)));
        }
        if (!kv[i].key) {
            return qnomem(q);
        }
    }
    *out = kv;
    *count = n;
    return true;
}

/* An enum member given by name (any case) or number; `dflt` when absent. */
static bool qenum(qr_t *q, const rv_value_t *o, const char *key, const char *const *names, int n,
                  int dflt, int *out, const char *base) {
    const rv_value_t *v = rv_value_get_cstr(o, key);
    *out = dflt;
    if (rv_value_type(v) == RV_TYPE_NULL) {
        return true;
    }
    if (rv_value_type(v) == RV_TYPE_INT && rv_value_int(v) >= 0 && rv_value_int(v) < n) {
        *out = (int)rv_value_int(v);
        return true;
    }
    if (rv_value_type(v) == RV_TYPE_STRING) {
        for (int i = 0; i < n; i++) {
            if (strcasecmp(rv_value_str(v, NULL), names[i]) == 0) {
                *out = i;
                return true;
            }
        }
    }
    return qbad(q, base, "%s: not one of %s..%s", key, names[0], names[n - 1]);
}

/* ---- reading the models --------------------------------------------------------------------- */

static bool q_timeseries(qr_t *q, const rv_value_t *v, rv_tpacket_t *p) {
    if (rv_value_type(v) != RV_TYPE_OBJECT) {
        return qbad(q, "$.V", "TimeseriesData must be an object");
    }
    int64_t epoch = 0;
    const rv_value_t *ev = rv_value_get_cstr(v, "Epoch");
    if (rv_value_type(ev) == RV_TYPE_INT) {
        epoch = rv_value_int(ev);
    } else if (rv_value_type(ev) != RV_TYPE_NULL) {
        return qbad(q, "$.V.Epoch", "expected an integer");
    }
    const rv_value_t *tsv = rv_value_get_cstr(v, "Timestamps");
    if (rv_value_type(tsv) != RV_TYPE_ARRAY) {
        return qbad(q, "$.V.Timestamps", "expected an array of integers");
    }
    size_t rows = rv_value_len(tsv);
    int64_t *ts = qalloc(q, rows, sizeof *ts);
    if (!ts) {
        return false;
    }
    for (size_t r = 0; r < rows; r++) {
        const rv_value_t *t = rv_value_at(tsv, r);
        if (rv_value_type(t) != RV_TYPE_INT ||
            __builtin_add_overflow(rv_value_int(t), epoch, &ts[r])) {
            char path[64];
            snprintf(path, sizeof path, "$.V.Timestamps[%zu]", r);
            return qbad(q, path, "expected an integer (nanoseconds) that Epoch keeps in range");
        }
    }
    static const char *const dicts[] = {"NumericValues", "StringValues", "BinaryValues",
                                        "TagValues"};
    static const rv_tcol_type_t types[] = {RV_TCOL_DOUBLE, RV_TCOL_STRING, RV_TCOL_BYTES,
                                           RV_TCOL_TAG};
    size_t ncols = 0;
    for (int d = 0; d < 4; d++) {
        const rv_value_t *dv = rv_value_get_cstr(v, dicts[d]);
        if (rv_value_type(dv) == RV_TYPE_OBJECT) {
            ncols += rv_value_len(dv);
        } else if (rv_value_type(dv) != RV_TYPE_NULL) {
            char path[64];
            snprintf(path, sizeof path, "$.V.%s", dicts[d]);
            return qbad(q, path, "expected an object of arrays");
        }
    }
    rv_tcolumn_t *cols = qalloc(q, ncols, sizeof *cols);
    if (!cols) {
        return false;
    }
    size_t c = 0;
    for (int d = 0; d < 4; d++) {
        const rv_value_t *dv = rv_value_get_cstr(v, dicts[d]);
        for (size_t m = 0; m < rv_value_len(dv) && rv_value_type(dv) == RV_TYPE_OBJECT; m++) {
            const char *k;
            size_t kl;
            const rv_value_t *arr = rv_value_member_at(dv, m, &k, &kl);
            char path[160];
            snprintf(path, sizeof path, "$.V.%s['%.80s']", dicts[d], k);
            if (rv_value_type(arr) != RV_TYPE_ARRAY || rv_value_len(arr) != rows) {
                return qbad(q, path, "expected an array of %zu values (one per timestamp)", rows);
            }
            if (memchr(k, 0, kl)) {
                return qbad(q, path, "name holds a NUL character");
            }
            rv_tcolumn_t *col = &cols[c++];
            col->name = rv_arena_strndup(q->arena, k, kl);
            col->type = types[d];
            uint8_t *present = qalloc(q, rows / 8 + 1, 1);
            void *vals = qalloc(q, rows, col->type == RV_TCOL_DOUBLE ? 8 : sizeof(rv_buf_t));
            if (!col->name || !present || !vals) {
                return false;
            }
            size_t have = 0;
            for (size_t r = 0; r < rows; r++) {
                const rv_value_t *x = rv_value_at(arr, r);
                rv_type_t xt = rv_value_type(x);
                if (col->type != RV_TCOL_DOUBLE) {
                    ((rv_buf_t *)vals)[r].data = "";
                }
                if (xt == RV_TYPE_NULL) {
                    continue;
                }
                if (col->type == RV_TCOL_DOUBLE) {
                    if (xt != RV_TYPE_INT && xt != RV_TYPE_DOUBLE) {
                        return qbad(q, path, "[%zu]: expected a number or null", r);
                    }
                    ((double *)vals)[r] = rv_value_double(x);
                } else {
                    if (xt != RV_TYPE_STRING) {
                        return qbad(q, path, "[%zu]: expected a string or null", r);
                    }
                    size_t n;
                    const char *s = rv_value_str(x, &n);
                    rv_buf_t *b = &((rv_buf_t *)vals)[r];
                    if (col->type == RV_TCOL_BYTES) {
                        bool good;
                        b->data = rv__tbase64_decode(q->arena, s, n, &b->len, &good);
                        if (!good) {
                            return qbad(q, path, "[%zu]: not base64", r);
                        }
                    } else {
                        b->data = rv_arena_memdup(q->arena, s, n + 1);
                        b->len = n;
                    }
                    if (!b->data) {
                        return qnomem(q);
                    }
                }
                present[r >> 3] |= (uint8_t)(1u << (r & 7));
                have++;
            }
            col->present = have == rows ? NULL : present;
            if (col->type == RV_TCOL_DOUBLE) {
                col->v.d = vals;
            } else {
                col->v.s = vals;
            }
        }
    }
    long dup = rv__tcolumns_dup(q->arena, cols, ncols);
    if (dup == -2) {
        return qnomem(q);
    }
    if (dup >= 0) {
        return qbad(q, "$.V",
                    "parameter '%.60s' appears in two of NumericValues, StringValues "
                    "and BinaryValues",
                    cols[dup].name);
    }
    rv_tframe_t *f = qalloc(q, 1, sizeof *f);
    if (!f) {
        return false;
    }
    f->rows = rows;
    f->timestamps = ts;
    f->column_count = ncols;
    f->columns = cols;
    p->type = RV_TPACKET_FRAME;
    p->u.frame = f;
    return true;
}

/*
 * The compact time-series codec "JT-PaDa-1" (Quix's "improved JSON"): {"Epoch", "Timestamps"
 * (deltas, the first from 0), "Numerics", "Strings", "Tags", "Binary"}. A numeric or string
 * parameter is a run list: a count of rows to skip, then one value or an array of values for
 * consecutive rows, then a count again, and so on. Numeric values are deltas from the
 * parameter's previous value (starting at 0); strings and tags are {"K": distinct values,
 * "V": run list of indexes into K}. Binary is one base64 string or null per row.
 */

/* Walks the run list `runs` of `rows` rows, calling `put(ctx, row, value)` per value. */
static bool q_runs(qr_t *q, const rv_value_t *runs, size_t rows, const char *path,
                   bool (*put)(qr_t *, void *, size_t, const rv_value_t *, const char *),
                   void *ctx) {
    if (rv_value_type(runs) != RV_TYPE_ARRAY) {
        return qbad(q, path, "expected a run list (an array)");
    }
    size_t row = 0;
    bool skip = true;
    for (size_t i = 0; i < rv_value_len(runs); i++) {
        const rv_value_t *x = rv_value_at(runs, i);
        if (skip) {
            if (rv_value_type(x) != RV_TYPE_INT || rv_value_int(x) < 0 ||
                (uint64_t)rv_value_int(x) > rows - row) {
                return qbad(q, path, "[%zu]: expected a count of rows to skip (at most %zu)", i,
                            rows - row);
            }
            row += (size_t)rv_value_int(x);
            skip = false;
            continue;
        }
        bool many = rv_value_type(x) == RV_TYPE_ARRAY;
        size_t n = many ? rv_value_len(x) : 1;
        if (n > rows - row) {
            return qbad(q, path, "[%zu]: values run past the last of %zu rows", i, rows);
        }
        for (size_t k = 0; k < n; k++) {
            if (!put(q, ctx, row++, many ? rv_value_at(x, k) : x, path)) {
                return false;
            }
        }
        skip = true;
    }
    return true;
}

typedef struct numrun_s {
    double *vals;
    uint8_t *present;
    double prev;
} numrun_t;

static bool put_num(qr_t *q, void *ctx, size_t row, const rv_value_t *x, const char *path) {
    numrun_t *n = ctx;
    if (rv_value_type(x) != RV_TYPE_INT && rv_value_type(x) != RV_TYPE_DOUBLE) {
        return qbad(q, path, "row %zu: expected a number", row);
    }
    n->prev += rv_value_double(x);
    n->vals[row] = n->prev;
    n->present[row >> 3] |= (uint8_t)(1u << (row & 7));
    return true;
}

typedef struct strrun_s {
    rv_buf_t *vals;
    uint8_t *present;
    const rv_value_t *keys;
} strrun_t;

static bool put_str_index(qr_t *q, void *ctx, size_t row, const rv_value_t *x, const char *path) {
    strrun_t *s = ctx;
    if (rv_value_type(x) != RV_TYPE_INT || rv_value_int(x) < 0 ||
        (uint64_t)rv_value_int(x) >= rv_value_len(s->keys)) {
        return qbad(q, path, "row %zu: expected an index into K (below %zu)", row,
                    rv_value_len(s->keys));
    }
    const rv_value_t *k = rv_value_at(s->keys, (size_t)rv_value_int(x));
    if (rv_value_type(k) != RV_TYPE_STRING) {
        return qbad(q, path, "K[%lld] is not a string", (long long)rv_value_int(x));
    }
    size_t n;
    const char *str = rv_value_str(k, &n);
    s->vals[row].data = str; /* the tree lives in the packet's arena */
    s->vals[row].len = n;
    s->present[row >> 3] |= (uint8_t)(1u << (row & 7));
    return true;
}

static bool q_timeseries_compact(qr_t *q, const rv_value_t *v, rv_tpacket_t *p) {
    if (rv_value_type(v) != RV_TYPE_OBJECT) {
        return qbad(q, "$.V", "TimeseriesData must be an object");
    }
    int64_t epoch = 0;
    const rv_value_t *ev = rv_value_get_cstr(v, "Epoch");
    if (rv_value_type(ev) == RV_TYPE_INT) {
        epoch = rv_value_int(ev);
    } else if (rv_value_type(ev) != RV_TYPE_NULL) {
        return qbad(q, "$.V.Epoch", "expected an integer");
    }
    const rv_value_t *tsv = rv_value_get_cstr(v, "Timestamps");
    if (rv_value_type(tsv) != RV_TYPE_ARRAY) {
        return qbad(q, "$.V.Timestamps", "expected an array of integer deltas");
    }
    size_t rows = rv_value_len(tsv);
    int64_t *ts = qalloc(q, rows, sizeof *ts);
    if (!ts) {
        return false;
    }
    int64_t acc = 0;
    for (size_t r = 0; r < rows; r++) {
        const rv_value_t *t = rv_value_at(tsv, r);
        if (rv_value_type(t) != RV_TYPE_INT || __builtin_add_overflow(acc, rv_value_int(t), &acc) ||
            __builtin_add_overflow(acc, epoch, &ts[r])) {
            char path[64];
            snprintf(path, sizeof path, "$.V.Timestamps[%zu]", r);
            return qbad(q, path, "expected an integer delta that keeps the time in range");
        }
    }
    static const char *const dicts[] = {"Numerics", "Strings", "Binary", "Tags"};
    static const rv_tcol_type_t types[] = {RV_TCOL_DOUBLE, RV_TCOL_STRING, RV_TCOL_BYTES,
                                           RV_TCOL_TAG};
    size_t ncols = 0;
    for (int d = 0; d < 4; d++) {
        const rv_value_t *dv = rv_value_get_cstr(v, dicts[d]);
        if (rv_value_type(dv) == RV_TYPE_OBJECT) {
            ncols += rv_value_len(dv);
        } else if (rv_value_type(dv) != RV_TYPE_NULL) {
            char path[64];
            snprintf(path, sizeof path, "$.V.%s", dicts[d]);
            return qbad(q, path, "expected an object");
        }
    }
    rv_tcolumn_t *cols = qalloc(q, ncols, sizeof *cols);
    if (!cols) {
        return false;
    }
    size_t c = 0;
    for (int d = 0; d < 4; d++) {
        const rv_value_t *dv = rv_value_get_cstr(v, dicts[d]);
        for (size_t m = 0; rv_value_type(dv) == RV_TYPE_OBJECT && m < rv_value_len(dv); m++) {
            const char *k;
            size_t kl;
            const rv_value_t *x = rv_value_member_at(dv, m, &k, &kl);
            char path[160];
            snprintf(path, sizeof path, "$.V.%s['%.80s']", dicts[d], k);
            if (memchr(k, 0, kl)) {
                return qbad(q, path, "name holds a NUL character");
            }
            rv_tcolumn_t *col = &cols[c++];
            col->name = rv_arena_strndup(q->arena, k, kl);
            col->type = types[d];
            uint8_t *present = qalloc(q, rows / 8 + 1, 1);
            void *vals = qalloc(q, rows, col->type == RV_TCOL_DOUBLE ? 8 : sizeof(rv_buf_t));
            if (!col->name || !present || !vals) {
                return false;
            }
            if (col->type != RV_TCOL_DOUBLE) {
                for (size_t r = 0; r < rows; r++) {
                    ((rv_buf_t *)vals)[r].data = "";
                }
            }
            bool ok = true;
            if (col->type == RV_TCOL_DOUBLE) {
                numrun_t n = {.vals = vals, .present = present};
                ok = q_runs(q, x, rows, path, put_num, &n);
            } else if (col->type == RV_TCOL_BYTES) {
                if (rv_value_type(x) != RV_TYPE_ARRAY || rv_value_len(x) != rows) {
                    return qbad(q, path, "expected an array of %zu values (one per timestamp)",
                                rows);
                }
                for (size_t r = 0; r < rows; r++) {
                    const rv_value_t *b = rv_value_at(x, r);
                    if (rv_value_type(b) == RV_TYPE_NULL) {
                        continue;
                    }
                    bool good = false;
                    rv_buf_t *o = &((rv_buf_t *)vals)[r];
                    if (rv_value_type(b) == RV_TYPE_STRING) {
                        o->data = rv__tbase64_decode(q->arena, rv_value_str(b, NULL),
                                                     rv_value_len(b), &o->len, &good);
                    }
                    if (!good) {
                        return qbad(q, path, "[%zu]: expected base64 or null", r);
                    }
                    if (!o->data) {
                        return qnomem(q);
                    }
                    present[r >> 3] |= (uint8_t)(1u << (r & 7));
                }
            } else {
                strrun_t sr = {.vals = vals, .present = present, .keys = rv_value_get_cstr(x, "K")};
                if (rv_value_type(x) != RV_TYPE_OBJECT || rv_value_type(sr.keys) != RV_TYPE_ARRAY) {
                    return qbad(q, path, "expected {\"K\": [values], \"V\": [runs]}");
                }
                char vpath[170];
                snprintf(vpath, sizeof vpath, "%s.V", path);
                ok = q_runs(q, rv_value_get_cstr(x, "V"), rows, vpath, put_str_index, &sr);
            }
            if (!ok) {
                return false;
            }
            size_t have = 0;
            for (size_t b = 0; b < (rows + 7) / 8; b++) {
                have += (size_t)__builtin_popcount(present[b]);
            }
            col->present = have == rows ? NULL : present;
            col->v.d = vals; /* the union's members share the pointer */
        }
    }
    long dup = rv__tcolumns_dup(q->arena, cols, ncols);
    if (dup == -2) {
        return qnomem(q);
    }
    if (dup >= 0) {
        return qbad(q, "$.V", "parameter '%.60s' appears in two of Numerics, Strings and Binary",
                    cols[dup].name);
    }
    rv_tframe_t *f = qalloc(q, 1, sizeof *f);
    if (!f) {
        return false;
    }
    *f = (rv_tframe_t){.rows = rows, .timestamps = ts, .column_count = ncols, .columns = cols};
    p->type = RV_TPACKET_FRAME;
    p->u.frame = f;
    return true;
}

static bool q_event(qr_t *q, const rv_value_t *v, rv_tevent_t *e, const char *path) {
    if (rv_value_type(v) != RV_TYPE_OBJECT) {
        return qbad(q, path, "EventData must be an object");
    }
    const rv_value_t *t = rv_value_get_cstr(v, "Timestamp");
    if (rv_value_type(t) == RV_TYPE_INT) {
        e->time = rv_value_int(t);
    } else if (rv_value_type(t) != RV_TYPE_NULL) {
        return qbad(q, path, "Timestamp: expected an integer (nanoseconds)");
    }
    char tp[96];
    snprintf(tp, sizeof tp, "%s.Tags", path);
    return qstr(q, v, "Id", &e->id, path) && qstr(q, v, "Value", &e->value, path) &&
           qkvs(q, rv_value_get_cstr(v, "Tags"), &e->tags, &e->tag_count, tp);
}

static bool q_events(qr_t *q, const rv_value_t *v, rv_tpacket_t *p) {
    bool many = rv_value_type(v) == RV_TYPE_ARRAY;
    size_t n = many ? rv_value_len(v) : 1;
    rv_tevent_t *ev = qalloc(q, n, sizeof *ev);
    if (!ev) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char path[48];
        snprintf(path, sizeof path, many ? "$.V[%zu]" : "$.V", i);
        if (!q_event(q, many ? rv_value_at(v, i) : v, &ev[i], path)) {
            return false;
        }
    }
    p->type = RV_TPACKET_EVENTS;
    p->u.events.items = ev;
    p->u.events.count = n;
    return true;
}

/* Definitions: parameters (events == false) or events, walked through their groups. */
typedef struct defs_s {
    rv_tparameter_def_t *params;
    rv_tevent_def_t *events;
    size_t count, cap;
} defs_t;

static bool q_defs_level(qr_t *q, const rv_value_t *o, bool events, const char *location, defs_t *d,
                         int depth, const char *path) {
    if (depth > 64) {
        return qbad(q, path, "groups nested deeper than 64");
    }
    if (rv_value_type(o) != RV_TYPE_OBJECT) {
        return qbad(q, path, "expected an object");
    }
    const char *items_key = events ? "Events" : "Parameters";
    const char *groups_key = events ? "EventGroups" : "ParameterGroups";
    const char *child_key = "ChildGroups";
    const rv_value_t *items = rv_value_get_cstr(o, items_key);
    const rv_value_t *groups = rv_value_get_cstr(o, depth == 0 ? groups_key : child_key);
    if ((rv_value_type(items) != RV_TYPE_NULL && rv_value_type(items) != RV_TYPE_ARRAY) ||
        (rv_value_type(groups) != RV_TYPE_NULL && rv_value_type(groups) != RV_TYPE_ARRAY)) {
        return qbad(q, path, "%s and %s must be arrays", items_key,
                    depth == 0 ? groups_key : child_key);
    }
    for (size_t i = 0; i < rv_value_len(items) && rv_value_type(items) == RV_TYPE_ARRAY; i++) {
        char ip[200];
        snprintf(ip, sizeof ip, "%s.%s[%zu]", path, items_key, i);
        const rv_value_t *it = rv_value_at(items, i);
        if (rv_value_type(it) != RV_TYPE_OBJECT) {
            return qbad(q, ip, "expected an object");
        }
        if (d->count == d->cap) {
            size_t ncap = d->cap ? d->cap * 2 : 16;
            size_t es = events ? sizeof(rv_tevent_def_t) : sizeof(rv_tparameter_def_t);
            void *na = qalloc(q, ncap, es);
            if (!na) {
                return false;
            }
            void *old = events ? (void *)d->events : (void *)d->params;
            if (d->count) {
                memcpy(na, old, d->count * es);
            }
            if (events) {
                d->events = na;
            } else {
                d->params = na;
            }
            d->cap = ncap;
        }
        if (events) {
            rv_tevent_def_t *e = &d->events[d->count++];
            int level;
            e->location = location;
            if (!qstr(q, it, "Id", &e->id, ip) || !qstr(q, it, "Name", &e->name, ip) ||
                !qstr(q, it, "Description", &e->description, ip) ||
                !qstr(q, it, "CustomProperties", &e->custom_properties, ip) ||
                !qenum(q, it, "Level", quix_levels, 6, RV_TLEVEL_INFORMATION, &level, ip)) {
                return false;
            }
            e->level = (rv_tevent_level_t)level;
        } else {
            rv_tparameter_def_t *e = &d->params[d->count++];
            e->location = location;
            const rv_value_t *mn = rv_value_get_cstr(it, "MinimumValue");
            const rv_value_t *mx = rv_value_get_cstr(it, "MaximumValue");
            for (int k = 0; k < 2; k++) {
                const rv_value_t *x = k ? mx : mn;
                rv_type_t xt = rv_value_type(x);
                if (xt != RV_TYPE_NULL && xt != RV_TYPE_INT && xt != RV_TYPE_DOUBLE) {
                    return qbad(q, ip, "%s: expected a number",
                                k ? "MaximumValue" : "MinimumValue");
                }
            }
            e->has_minimum = rv_value_type(mn) != RV_TYPE_NULL;
            e->minimum = rv_value_double(mn);
            e->has_maximum = rv_value_type(mx) != RV_TYPE_NULL;
            e->maximum = rv_value_double(mx);
            if (!qstr(q, it, "Id", &e->id, ip) || !qstr(q, it, "Name", &e->name, ip) ||
                !qstr(q, it, "Description", &e->description, ip) ||
                !qstr(q, it, "Unit", &e->unit, ip) || !qstr(q, it, "Format", &e->format, ip) ||
                !qstr(q, it, "CustomProperties", &e->custom_properties, ip)) {
                return false;
            }
        }
    }
    for (size_t i = 0; i < rv_value_len(groups) && rv_value_type(groups) == RV_TYPE_ARRAY; i++) {
        char gp[200];
        snprintf(gp, sizeof gp, "%s.%s[%zu]", path, depth == 0 ? groups_key : child_key, i);
        const rv_value_t *g = rv_value_at(groups, i);
        const char *name = NULL;
        if (rv_value_type(g) != RV_TYPE_OBJECT || !qstr(q, g, "Name", &name, gp)) {
            return q->code != RV_OK ? false : qbad(q, gp, "expected a group object");
        }
        if (!name || !*name || strchr(name, '/')) {
            return qbad(q, gp, "a group needs a Name without '/'");
        }
        size_t ll = location ? strlen(location) : 0, nl = strlen(name);
        char *loc = rv_arena_alloc(q->arena, ll + nl + 2);
        if (!loc) {
            return qnomem(q);
        }
        if (ll) {
            memcpy(loc, location, ll);
        }
        loc[ll] = '/';
        memcpy(loc + ll + 1, name, nl + 1);
        if (!q_defs_level(q, g, events, loc, d, depth + 1, gp)) {
            return false;
        }
    }
    return true;
}

static bool q_defs(qr_t *q, const rv_value_t *v, bool events, rv_tpacket_t *p) {
    defs_t d = {0};
    if (!q_defs_level(q, v, events, NULL, &d, 0, "$.V")) {
        return false;
    }
    if (events) {
        p->type = RV_TPACKET_EVENT_DEFINITIONS;
        p->u.event_defs.items = d.events;
        p->u.event_defs.count = d.count;
    } else {
        p->type = RV_TPACKET_PARAMETER_DEFINITIONS;
        p->u.parameters.items = d.params;
        p->u.parameters.count = d.count;
    }
    return true;
}

static bool q_properties(qr_t *q, const rv_value_t *v, rv_tpacket_t *p) {
    if (rv_value_type(v) != RV_TYPE_OBJECT) {
        return qbad(q, "$.V", "StreamProperties must be an object");
    }
    rv_tstream_properties_t *x = &p->u.properties;
    p->type = RV_TPACKET_STREAM_PROPERTIES;
    if (!qstr(q, v, "Name", &x->name, "$.V") || !qstr(q, v, "Location", &x->location, "$.V") ||
        !qkvs(q, rv_value_get_cstr(v, "Metadata"), &x->metadata, &x->metadata_count,
              "$.V.Metadata")) {
        return false;
    }
    const rv_value_t *parents = rv_value_get_cstr(v, "Parents");
    if (rv_value_type(parents) == RV_TYPE_ARRAY) {
        size_t n = rv_value_len(parents);
        const char **a = qalloc(q, n, sizeof *a);
        if (!a) {
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            const rv_value_t *s = rv_value_at(parents, i);
            if (rv_value_type(s) != RV_TYPE_STRING) {
                return qbad(q, "$.V.Parents", "[%zu]: expected a string", i);
            }
            a[i] = rv_arena_strndup(q->arena, rv_value_str(s, NULL), rv_value_len(s));
        }
        x->parents = a;
        x->parent_count = n;
    } else if (rv_value_type(parents) != RV_TYPE_NULL) {
        return qbad(q, "$.V.Parents", "expected an array of strings");
    }
    const rv_value_t *tor = rv_value_get_cstr(v, "TimeOfRecording");
    if (rv_value_type(tor) == RV_TYPE_STRING) {
        if (!rv__tiso_parse(rv_value_str(tor, NULL), rv_value_len(tor), &x->time_of_recording)) {
            return qbad(q, "$.V.TimeOfRecording", "not an ISO 8601 date and time");
        }
        x->has_time_of_recording = true;
    } else if (rv_value_type(tor) != RV_TYPE_NULL) {
        return qbad(q, "$.V.TimeOfRecording", "expected an ISO 8601 string");
    }
    return true;
}

/* Reads model `key` from `v` into `p`. */
static bool q_model(qr_t *q, const char *key, const rv_value_t *v, rv_tpacket_t *p) {
    if (strcmp(key, "TimeseriesData") == 0 || strcmp(key, "ParameterData") == 0) {
        return q_timeseries(q, v, p);
    }
    if (strcmp(key, "EventData") == 0 || strcmp(key, "EventData[]") == 0) {
        if ((rv_value_type(v) == RV_TYPE_ARRAY) != (key[9] == '[')) {
            return qbad(q, "$.V", "%s must be %s", key, key[9] ? "an array" : "an object");
        }
        return q_events(q, v, p);
    }
    if (strcmp(key, "ParameterDefinitions") == 0) {
        return q_defs(q, v, false, p);
    }
    if (strcmp(key, "EventDefinitions") == 0) {
        return q_defs(q, v, true, p);
    }
    if (strcmp(key, "StreamProperties") == 0) {
        return q_properties(q, v, p);
    }
    if (strcmp(key, "StreamEnd") == 0) {
        if (rv_value_type(v) != RV_TYPE_OBJECT) {
            return qbad(q, "$.V", "StreamEnd must be an object");
        }
        int e;
        p->type = RV_TPACKET_STREAM_END;
        if (!qenum(q, v, "StreamEndType", quix_ends, 3, RV_TSTREAM_CLOSED, &e, "$.V")) {
            return false;
        }
        p->u.end = (rv_tstream_end_t)e;
        return true;
    }
    q->code = RV_ERR_UNSUPPORTED;
    rv__error_set(q->err, RV_ERR_UNSUPPORTED,
                  "quix message: $.K: model key '%.60s' is not one "
                  "rivulet reads",
                  key);
    return false;
}

/* The model key a bare value's shape says. */
static const char *guess_key(const rv_value_t *v) {
    if (rv_value_type(v) == RV_TYPE_ARRAY) {
        return "EventData[]";
    }
    if (rv_value_type(v) != RV_TYPE_OBJECT) {
        return NULL;
    }
    static const struct {
        const char *member, *key;
    } shapes[] = {
        {"Timestamps", "TimeseriesData"},       {"Timestamp", "EventData"},
        {"Parameters", "ParameterDefinitions"}, {"ParameterGroups", "ParameterDefinitions"},
        {"Events", "EventDefinitions"},         {"EventGroups", "EventDefinitions"},
        {"StreamEndType", "StreamEnd"},         {"Name", "StreamProperties"},
        {"Location", "StreamProperties"},       {"Metadata", "StreamProperties"},
        {"Parents", "StreamProperties"},        {"TimeOfRecording", "StreamProperties"}};
    for (size_t i = 0; i < RV_ARRAY_LEN(shapes); i++) {
        if (rv_value_get_cstr(v, shapes[i].member)) {
            return shapes[i].key;
        }
    }
    return NULL;
}

rv_err_t rv_tpacket_read_quix(rv_arena_t *arena, const char *text, size_t len, rv_tpacket_t **out,
                              rv_error_t **err) {
    if (!arena || !out) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "quix message: NULL argument");
    }
    *out = NULL;
    rv_value_t *root = NULL;
    rv_err_t e = rv_json_parse(arena, text, len, NULL, &root, NULL, err);
    if (e != RV_OK) {
        return rv__error_prefix(err, e, "quix message: ");
    }
    qr_t q = {.arena = arena, .err = err};
    rv_tpacket_t *p = qalloc(&q, 1, sizeof *p);
    if (!p) {
        return q.code;
    }
    const rv_value_t *k = rv_value_get_cstr(root, "K");
    const rv_value_t *model = root;
    const char *key;
    bool compact = false;
    if (rv_value_type(k) == RV_TYPE_STRING && rv_value_get_cstr(root, "V")) {
        const char *codec = NULL;
        if (!qstr(&q, root, "C", &codec, "$")) {
            return q.code;
        }
        compact = codec && strcmp(codec, "JT-PaDa-1") == 0;
        if (codec && *codec && strcmp(codec, "JT") != 0 && strcmp(codec, "J") != 0 && !compact) {
            return rv__error_set(err, RV_ERR_UNSUPPORTED,
                                 "quix message: $.C: codec '%.40s' is not read by rivulet (only "
                                 "the JSON codecs JT, J and JT-PaDa-1; PB is not)",
                                 codec);
        }
        /* S and E locate V's text for readers that skip parsing it; the tree has V already,
         * so they only have to be offsets. */
        static const char *const be[] = {"$.S", "$.E"};
        for (int i = 0; i < 2; i++) {
            const rv_value_t *b = rv_value_get_cstr(root, be[i] + 2);
            if (rv_value_type(b) != RV_TYPE_NULL && rv_value_type(b) != RV_TYPE_INT) {
                qbad(&q, be[i], "expected an integer offset, found %s",
                     rv_type_name(rv_value_type(b)));
                return q.code;
            }
        }
        key = rv_value_str(k, NULL);
        model = rv_value_get_cstr(root, "V");
    } else {
        key = guess_key(root);
        if (!key) {
            qbad(&q, "$",
                 "neither a Quix message wrapper {C, K, V} nor a model whose shape "
                 "says its type");
            return q.code;
        }
    }
    if (compact) {
        if (strcmp(key, "TimeseriesData") != 0 && strcmp(key, "ParameterData") != 0) {
            return rv__error_set(err, RV_ERR_UNSUPPORTED,
                                 "quix message: $.K: codec JT-PaDa-1 carries time-series data, "
                                 "not '%.60s'",
                                 key);
        }
        if (!q_timeseries_compact(&q, model, p)) {
            return q.code != RV_OK ? q.code : RV_ERR_PARSE;
        }
        *out = p;
        return RV_OK;
    }
    if (!q_model(&q, key, model, p)) {
        return q.code != RV_OK ? q.code : RV_ERR_PARSE;
    }
    *out = p;
    return RV_OK;
}

/* ---- writing -------------------------------------------------------------------------------- */

typedef struct qw_s {
    rv_arena_t *arena;
    bool nomem;
} qw_t;

static rv_value_t *wchk(qw_t *w, rv_value_t *v) {
    if (!v) {
        w->nomem = true;
    }
    return v;
}

static void wset(qw_t *w, rv_value_t *o, const char *key, rv_value_t *v) {
    if (w->nomem || !o || !v || rv_value_set(w->arena, o, key, strlen(key), v) != RV_OK) {
        w->nomem = true;
    }
}

static void wstr(qw_t *w, rv_value_t *o, const char *key, const char *s) {
    if (s) {
        wset(w, o, key, wchk(w, rv_value_new_string(w->arena, s, strlen(s))));
    }
}

static void wpush(qw_t *w, rv_value_t *a, rv_value_t *v) {
    if (w->nomem || !a || !v || rv_value_append(w->arena, a, v) != RV_OK) {
        w->nomem = true;
    }
}

static rv_value_t *wkvs(qw_t *w, const rv_tkv_t *kv, size_t n) {
    rv_value_t *o = wchk(w, rv_value_new_object(w->arena, n));
    for (size_t i = 0; i < n; i++) {
        wset(w, o, kv[i].key ? kv[i].key : "",
             wchk(w, kv[i].value ? rv_value_new_string(w->arena, kv[i].value, strlen(kv[i].value))
                                 : rv_value_new_null(w->arena)));
    }
    return o;
}

static rv_value_t *w_timeseries(qw_t *w, const rv_tframe_t *f) {
    rv_value_t *o = wchk(w, rv_value_new_object(w->arena, 5));
    rv_value_t *ts = wchk(w, rv_value_new_array(w->arena, f->rows));
    for (size_t r = 0; r < f->rows; r++) {
        wpush(w, ts, wchk(w, rv_value_new_int(w->arena, f->timestamps[r])));
    }
    wset(w, o, "Timestamps", ts);
    static const char *const dicts[] = {"NumericValues", "StringValues", "BinaryValues",
                                        "TagValues"};
    rv_value_t *d[4];
    for (int i = 0; i < 4; i++) {
        d[i] = wchk(w, rv_value_new_object(w->arena, 0));
        wset(w, o, dicts[i], d[i]);
    }
    for (size_t c = 0; c < f->column_count && !w->nomem; c++) {
        const rv_tcolumn_t *col = &f->columns[c];
        int which = col->type == RV_TCOL_DOUBLE || col->type == RV_TCOL_INT64 ? 0
                    : col->type == RV_TCOL_STRING                             ? 1
                    : col->type == RV_TCOL_BYTES                              ? 2
                                                                              : 3;
        rv_value_t *a = wchk(w, rv_value_new_array(w->arena, f->rows));
        for (size_t r = 0; r < f->rows; r++) {
            rv_value_t *x;
            if (!rv_tcolumn_has(col, r)) {
                x = rv_value_new_null(w->arena);
            } else if (col->type == RV_TCOL_DOUBLE) {
                x = rv_value_new_double(w->arena, col->v.d[r]);
            } else if (col->type == RV_TCOL_INT64) {
                x = rv_value_new_double(w->arena, (double)col->v.i[r]);
            } else if (col->type == RV_TCOL_BYTES) {
                x = rv_value_new_bytes(w->arena, col->v.s[r].data, col->v.s[r].len);
            } else {
                x = rv_value_new_string(w->arena, col->v.s[r].data, col->v.s[r].len);
            }
            wpush(w, a, wchk(w, x));
        }
        wset(w, d[which], col->name ? col->name : "", a);
    }
    return o;
}

static rv_value_t *w_event(qw_t *w, const rv_tevent_t *e) {
    rv_value_t *o = wchk(w, rv_value_new_object(w->arena, 4));
    wset(w, o, "Timestamp", wchk(w, rv_value_new_int(w->arena, e->time)));
    if (e->tag_count) {
        wset(w, o, "Tags", wkvs(w, e->tags, e->tag_count));
    }
    wstr(w, o, "Id", e->id);
    wstr(w, o, "Value", e->value);
    return o;
}

/* The group object for `location` under `root` (created on the way); NULL on NOMEM. */
static rv_value_t *w_group(qw_t *w, rv_value_t *root, const char *location, bool events) {
    rv_value_t *cur = root;
    const char *p = location ? location : "";
    int depth = 0;
    while (*p) {
        while (*p == '/') {
            p++;
        }
        if (!*p) {
            break;
        }
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *gk = depth == 0 ? (events ? "EventGroups" : "ParameterGroups") : "ChildGroups";
        rv_value_t *groups = rv_value_get_cstr(cur, gk);
        if (!groups) {
            groups = wchk(w, rv_value_new_array(w->arena, 1));
            wset(w, cur, gk, groups);
        }
        rv_value_t *found = NULL;
        for (size_t i = 0; groups && i < rv_value_len(groups); i++) {
            rv_value_t *g = rv_value_at(groups, i);
            size_t gl;
            const char *gn = rv_value_str(rv_value_get_cstr(g, "Name"), &gl);
            if (gn && gl == n && memcmp(gn, p, n) == 0) {
                found = g;
            }
        }
        if (!found) {
            /* Members in the order Quix declares them; empty arrays are pruned at the end. */
            found = wchk(w, rv_value_new_object(w->arena, 3));
            wset(w, found, "Name", wchk(w, rv_value_new_string(w->arena, p, n)));
            wset(w, found, "ChildGroups", wchk(w, rv_value_new_array(w->arena, 0)));
            wset(w, found, events ? "Events" : "Parameters",
                 wchk(w, rv_value_new_array(w->arena, 0)));
            wpush(w, groups, found);
        }
        if (w->nomem) {
            return NULL;
        }
        cur = found;
        p += n;
        depth++;
    }
    return cur;
}

/* Removes the empty arrays w_group() made ahead, through the whole group tree. */
static void prune(rv_value_t *o, int depth) {
    for (size_t i = rv_value_len(o); i-- > 0 && depth < 64;) {
        const char *k;
        size_t kl;
        rv_value_t *v = rv_value_member_at(o, i, &k, &kl);
        if (rv_value_type(v) != RV_TYPE_ARRAY) {
            continue;
        }
        if (rv_value_len(v) == 0) {
            rv_value_remove(o, k, kl);
            continue;
        }
        for (size_t j = 0; j < rv_value_len(v); j++) {
            if (rv_value_type(rv_value_at(v, j)) == RV_TYPE_OBJECT &&
                rv_value_get_cstr(rv_value_at(v, j), "Name")) {
                prune(rv_value_at(v, j), depth + 1);
            }
        }
    }
}

static rv_value_t *w_defs(qw_t *w, const rv_tpacket_t *p) {
    bool events = p->type == RV_TPACKET_EVENT_DEFINITIONS;
    rv_value_t *root = wchk(w, rv_value_new_object(w->arena, 2));
    wset(w, root, events ? "EventGroups" : "ParameterGroups",
         wchk(w, rv_value_new_array(w->arena, 0)));
    wset(w, root, events ? "Events" : "Parameters", wchk(w, rv_value_new_array(w->arena, 0)));
    size_t n = events ? p->u.event_defs.count : p->u.parameters.count;
    for (size_t i = 0; i < n && !w->nomem; i++) {
        const char *loc =
            events ? p->u.event_defs.items[i].location : p->u.parameters.items[i].location;
        rv_value_t *g = w_group(w, root, loc, events);
        const char *ik = events ? "Events" : "Parameters";
        rv_value_t *items = g ? rv_value_get_cstr(g, ik) : NULL;
        if (g && !items) {
            items = wchk(w, rv_value_new_array(w->arena, 1));
            wset(w, g, ik, items);
        }
        rv_value_t *o = wchk(w, rv_value_new_object(w->arena, 8));
        if (events) {
            const rv_tevent_def_t *d = &p->u.event_defs.items[i];
            wstr(w, o, "Id", d->id);
            wstr(w, o, "Name", d->name);
            wstr(w, o, "Description", d->description);
            wstr(w, o, "CustomProperties", d->custom_properties);
            wstr(w, o, "Level",
                 (unsigned)d->level <= RV_TLEVEL_CRITICAL ? quix_levels[d->level] : "Information");
        } else {
            const rv_tparameter_def_t *d = &p->u.parameters.items[i];
            wstr(w, o, "Id", d->id);
            wstr(w, o, "Name", d->name);
            wstr(w, o, "Description", d->description);
            if (d->has_minimum) {
                wset(w, o, "MinimumValue", wchk(w, rv_value_new_double(w->arena, d->minimum)));
            }
            if (d->has_maximum) {
                wset(w, o, "MaximumValue", wchk(w, rv_value_new_double(w->arena, d->maximum)));
            }
            wstr(w, o, "Unit", d->unit);
            wstr(w, o, "Format", d->format);
            wstr(w, o, "CustomProperties", d->custom_properties);
        }
        wpush(w, items, o);
    }
    if (!w->nomem) {
        prune(root, 0);
    }
    return root;
}

rv_err_t rv_tpacket_write_quix(const rv_tpacket_t *p, rv_strbuf_t *out, rv_error_t **err) {
    if (!p || !out) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "quix message: NULL argument");
    }
    rv_arena_t *arena = rv_arena_new(0);
    if (!arena) {
        return rv__error_set(err, RV_ERR_NOMEM, "quix message: out of memory");
    }
    qw_t w = {.arena = arena};
    rv_value_t *v = NULL;
    const char *key = NULL;
    switch (p->type) {
        case RV_TPACKET_FRAME:
        case RV_TPACKET_PERIODIC_DATA: {
            const rv_tframe_t *f = p->type == RV_TPACKET_FRAME ? p->u.frame : p->u.periodic.frame;
            if (f) {
                v = w_timeseries(&w, f);
            }
            key = "TimeseriesData";
            break;
        }
        case RV_TPACKET_EVENTS:
            if (p->u.events.count == 1) {
                v = w_event(&w, &p->u.events.items[0]);
                key = "EventData";
            } else {
                v = wchk(&w, rv_value_new_array(arena, p->u.events.count));
                for (size_t i = 0; i < p->u.events.count; i++) {
                    wpush(&w, v, w_event(&w, &p->u.events.items[i]));
                }
                key = "EventData[]";
            }
            break;
        case RV_TPACKET_PARAMETER_DEFINITIONS:
        case RV_TPACKET_EVENT_DEFINITIONS:
            v = w_defs(&w, p);
            key = p->type == RV_TPACKET_EVENT_DEFINITIONS ? "EventDefinitions"
                                                          : "ParameterDefinitions";
            break;
        case RV_TPACKET_STREAM_PROPERTIES: {
            const rv_tstream_properties_t *x = &p->u.properties;
            v = wchk(&w, rv_value_new_object(arena, 5));
            wstr(&w, v, "Name", x->name);
            wstr(&w, v, "Location", x->location);
            if (x->metadata_count) {
                wset(&w, v, "Metadata", wkvs(&w, x->metadata, x->metadata_count));
            }
            if (x->parent_count) {
                rv_value_t *a = wchk(&w, rv_value_new_array(arena, x->parent_count));
                for (size_t i = 0; i < x->parent_count; i++) {
                    const char *s = x->parents[i] ? x->parents[i] : "";
                    wpush(&w, a, wchk(&w, rv_value_new_string(arena, s, strlen(s))));
                }
                wset(&w, v, "Parents", a);
            }
            if (x->has_time_of_recording) {
                char iso[48];
                size_t n = rv__tiso_format(x->time_of_recording, iso);
                wset(&w, v, "TimeOfRecording", wchk(&w, rv_value_new_string(arena, iso, n)));
            }
            key = "StreamProperties";
            break;
        }
        case RV_TPACKET_STREAM_END:
            v = wchk(&w, rv_value_new_object(arena, 1));
            wstr(&w, v, "StreamEndType",
                 (unsigned)p->u.end <= RV_TSTREAM_TERMINATED ? quix_ends[p->u.end] : "Closed");
            key = "StreamEnd";
            break;
        default:
            rv_arena_destroy(arena);
            return rv__error_set(err, RV_ERR_UNSUPPORTED,
                                 "quix message: legacy Quix Streams has no message for %s packets",
                                 rv_tpacket_type_name(p->type) ? rv_tpacket_type_name(p->type)
                                                               : "unknown");
    }
    if (w.nomem || !v) {
        rv_arena_destroy(arena);
        return rv__error_set(err, w.nomem ? RV_ERR_NOMEM : RV_ERR_INVALID_ARG, "quix message: %s",
                             w.nomem ? "out of memory" : "packet has no frame");
    }
    size_t mark = out->len;
    rv_err_t e = rv_strbuf_appendf(out, "{\"C\":\"JT\",\"K\":\"%s\",\"V\":", key);
    size_t start = out->len - mark;
    if (e == RV_OK) {
        e = rv_json_write(out, v, RV_JSON_COMPACT, err);
        if (e != RV_OK) {
            rv__error_prefix(err, e, "quix message: %s: ", key);
        }
    } else {
        rv__error_set(err, e, "quix message: out of memory");
    }
    size_t stop = out->len - mark;
    if (e == RV_OK && rv_strbuf_appendf(out, ",\"S\":%zu,\"E\":%zu}", start, stop) != RV_OK) {
        e = rv__error_set(err, RV_ERR_NOMEM, "quix message: out of memory");
    }
    if (e != RV_OK) {
        out->len = mark;
        if (out->data) {
            out->data[mark] = '\0';
        }
    }
    rv_arena_destroy(arena);
    return e;
}
