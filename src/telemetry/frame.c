/*
 * frame.c: time-series frames (the builder and column lookup), type names and packet equality.
 *
 * The builder keeps growable heap arrays per column and a byte pool for strings, reused from
 * frame to frame; finishing copies them into the caller's arena in one piece per column, so a
 * finished frame depends on nothing but its arena. This file never decodes outside bytes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/telemetry_int.h"

const char *rv_tcol_type_name(rv_tcol_type_t type) {
    switch (type) {
        case RV_TCOL_DOUBLE:
            return "double";
        case RV_TCOL_INT64:
            return "int64";
        case RV_TCOL_STRING:
            return "string";
        case RV_TCOL_BYTES:
            return "bytes";
        case RV_TCOL_TAG:
            return "tag";
    }
    return NULL;
}

const char *rv_tpacket_type_name(rv_tpacket_type_t type) {
    switch (type) {
        case RV_TPACKET_STREAM_PROPERTIES:
            return "stream_properties";
        case RV_TPACKET_STREAM_END:
            return "stream_end";
        case RV_TPACKET_SESSION_START:
            return "session_start";
        case RV_TPACKET_SESSION_INFO:
            return "session_info";
        case RV_TPACKET_SESSION_END:
            return "session_end";
        case RV_TPACKET_PARAMETER_DEFINITIONS:
            return "parameter_definitions";
        case RV_TPACKET_EVENT_DEFINITIONS:
            return "event_definitions";
        case RV_TPACKET_DATA_FORMAT:
            return "data_format";
        case RV_TPACKET_PERIODIC_DATA:
            return "periodic_data";
        case RV_TPACKET_FRAME:
            return "frame";
        case RV_TPACKET_EVENTS:
            return "events";
        case RV_TPACKET_MARKERS:
            return "markers";
        case RV_TPACKET_COVERAGE:
            return "coverage";
    }
    return NULL;
}

const rv_tcolumn_t *rv_tframe_column(const rv_tframe_t *frame, const char *name) {
    for (size_t i = 0; frame && name && i < frame->column_count; i++) {
        if (frame->columns[i].name && strcmp(frame->columns[i].name, name) == 0) {
            return &frame->columns[i];
        }
    }
    return NULL;
}

long rv__tcolumns_dup(rv_arena_t *arena, const rv_tcolumn_t *cols, size_t n) {
    if (n < 2) {
        return -1;
    }
    size_t cap = 4;
    while (cap < n * 2) {
        cap <<= 1;
    }
    uint32_t local[512];
    uint32_t *slots = cap <= 512 ? local : rv_arena_alloc(arena, cap * sizeof *slots);
    if (!slots) {
        return -2;
    }
    memset(slots, 0, cap * sizeof *slots);
    for (size_t i = 0; i < n; i++) {
        if (!cols[i].name) {
            continue; /* unnamed (the data format names it): never a duplicate */
        }
        uint64_t h = 1469598103934665603ull ^ (cols[i].type == RV_TCOL_TAG);
        for (const unsigned char *p = (const unsigned char *)cols[i].name; p && *p; p++) {
            h = (h ^ *p) * 1099511628211ull;
        }
        for (size_t k = (size_t)h & (cap - 1);; k = (k + 1) & (cap - 1)) {
            if (slots[k] == 0) {
                slots[k] = (uint32_t)i + 1;
                break;
            }
            const rv_tcolumn_t *o = &cols[slots[k] - 1];
            if ((o->type == RV_TCOL_TAG) == (cols[i].type == RV_TCOL_TAG) && o->name &&
                cols[i].name && strcmp(o->name, cols[i].name) == 0) {
                return (long)i;
            }
        }
    }
    return -1;
}

/* ---- the builder ---------------------------------------------------------------------------- */

/* A string cell: an offset into the pool and a length. */
typedef struct cell_s {
    size_t off, len;
} cell_t;

typedef struct bcol_s {
    char *name;
    rv_tcol_type_t type;
    size_t cap;       /* rows the arrays hold */
    uint8_t *present; /* cap / 8 + 1 bytes */
    void *vals;       /* double, int64_t or cell_t per row */
    size_t set;       /* rows marked present */
} bcol_t;

struct rv_tframe_builder_s {
    int64_t *ts;
    size_t rows, cap;
    bcol_t *cols;
    size_t ncols, colcap; /* colcap entries keep their buffers across resets */
    rv_strbuf_t pool;
};

static size_t elem_size(rv_tcol_type_t t) {
    return t == RV_TCOL_DOUBLE  ? sizeof(double)
           : t == RV_TCOL_INT64 ? sizeof(int64_t)
                                : sizeof(cell_t);
}

rv_tframe_builder_t *rv_tframe_builder_new(void) {
    return calloc(1, sizeof(rv_tframe_builder_t));
}

void rv_tframe_builder_destroy(rv_tframe_builder_t *b) {
    if (!b) {
        return;
    }
    for (size_t i = 0; i < b->colcap; i++) {
        free(b->cols[i].name);
        free(b->cols[i].present);
        free(b->cols[i].vals);
    }
    free(b->cols);
    free(b->ts);
    rv_strbuf_free(&b->pool);
    free(b);
}

void rv_tframe_builder_reset(rv_tframe_builder_t *b) {
    for (size_t i = 0; i < b->ncols; i++) {
        bcol_t *c = &b->cols[i];
        free(c->name);
        c->name = NULL;
        /* Clear only what the last frame used, so absent cells read 0 next time. */
        size_t used = b->rows < c->cap ? b->rows : c->cap;
        if (c->cap) {
            memset(c->present, 0, used / 8 + 1);
            memset(c->vals, 0, used * elem_size(c->type));
        }
        c->set = 0;
    }
    b->ncols = 0;
    b->rows = 0;
    rv_strbuf_clear(&b->pool);
}

int rv_tframe_builder_column(rv_tframe_builder_t *b, const char *name, rv_tcol_type_t type) {
    if (!b || !name || !rv_tcol_type_name(type)) {
        return -1;
    }
    for (size_t i = 0; i < b->ncols; i++) {
        /* Tags and parameters are apart: a tag may share a parameter's name. */
        if ((b->cols[i].type == RV_TCOL_TAG) == (type == RV_TCOL_TAG) &&
            strcmp(b->cols[i].name, name) == 0) {
            return b->cols[i].type == type ? (int)i : -1;
        }
    }
    if (b->ncols >= INT32_MAX) {
        return -1;
    }
    if (b->ncols == b->colcap) {
        size_t ncap = b->colcap ? b->colcap * 2 : 16;
        bcol_t *nc = realloc(b->cols, ncap * sizeof *nc);
        if (!nc) {
            return -1;
        }
        memset(nc + b->colcap, 0, (ncap - b->colcap) * sizeof *nc);
        b->cols = nc;
        b->colcap = ncap;
    }
    bcol_t *c = &b->cols[b->ncols];
    c->name = strdup(name);
    if (!c->name) {
        return -1;
    }
    if (c->type != type) {
        /* A reused slot sized for another element type: start it afresh. */
        free(c->vals);
        free(c->present);
        c->vals = NULL;
        c->present = NULL;
        c->cap = 0;
    }
    c->type = type;
    c->set = 0;
    return (int)b->ncols++;
}

rv_err_t rv_tframe_builder_add_row(rv_tframe_builder_t *b, int64_t timestamp) {
    if (b->rows == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        int64_t *nt = realloc(b->ts, ncap * sizeof *nt);
        if (!nt) {
            return RV_ERR_NOMEM;
        }
        b->ts = nt;
        b->cap = ncap;
    }
    b->ts[b->rows++] = timestamp;
    return RV_OK;
}

/* Makes column `col` hold the current row; returns the column or NULL with *e set. */
static bcol_t *cell(rv_tframe_builder_t *b, int col, bool is_str, rv_tcol_type_t want,
                    rv_err_t *e) {
    if (b->rows == 0) {
        *e = RV_ERR_STATE;
        return NULL;
    }
    if (col < 0 || (size_t)col >= b->ncols) {
        *e = RV_ERR_INVALID_ARG;
        return NULL;
    }
    bcol_t *c = &b->cols[col];
    bool str = c->type == RV_TCOL_STRING || c->type == RV_TCOL_TAG || c->type == RV_TCOL_BYTES;
    if (is_str ? !str : c->type != want) {
        *e = RV_ERR_INVALID_ARG;
        return NULL;
    }
    if (c->cap < b->rows) {
        size_t ncap = b->cap, es = elem_size(c->type);
        uint8_t *np = realloc(c->present, ncap / 8 + 1);
        if (!np) {
            *e = RV_ERR_NOMEM;
            return NULL;
        }
        memset(np + (c->cap ? c->cap / 8 + 1 : 0), 0, ncap / 8 + 1 - (c->cap ? c->cap / 8 + 1 : 0));
        c->present = np;
        void *nv = realloc(c->vals, ncap * es);
        if (!nv) {
            *e = RV_ERR_NOMEM;
            return NULL;
        }
        memset((char *)nv + c->cap * es, 0, (ncap - c->cap) * es);
        c->vals = nv;
        c->cap = ncap;
    }
    size_t r = b->rows - 1;
    if (!((c->present[r >> 3] >> (r & 7)) & 1u)) {
        c->present[r >> 3] |= (uint8_t)(1u << (r & 7));
        c->set++;
    }
    return c;
}

rv_err_t rv_tframe_builder_set_double(rv_tframe_builder_t *b, int col, double v) {
    rv_err_t e = RV_OK;
    bcol_t *c = cell(b, col, false, RV_TCOL_DOUBLE, &e);
    if (c) {
        ((double *)c->vals)[b->rows - 1] = v;
    }
    return e;
}

rv_err_t rv_tframe_builder_set_int(rv_tframe_builder_t *b, int col, int64_t v) {
    rv_err_t e = RV_OK;
    bcol_t *c = cell(b, col, false, RV_TCOL_INT64, &e);
    if (c) {
        ((int64_t *)c->vals)[b->rows - 1] = v;
    }
    return e;
}

rv_err_t rv_tframe_builder_set_str(rv_tframe_builder_t *b, int col, const void *data, size_t len) {
    rv_err_t e = RV_OK;
    size_t off = b->pool.len;
    if (len && rv_strbuf_append(&b->pool, data, len) != RV_OK) {
        return RV_ERR_NOMEM;
    }
    bcol_t *c = cell(b, col, true, RV_TCOL_STRING, &e);
    if (c) {
        ((cell_t *)c->vals)[b->rows - 1] = (cell_t){off, len};
    }
    return e;
}

rv_err_t rv_tframe_builder_finish(rv_tframe_builder_t *b, rv_arena_t *arena, uint32_t format_id,
                                  const rv_tframe_t **out) {
    size_t rows = b->rows;
    rv_tframe_t *f = rv_arena_alloc(arena, sizeof *f);
    rv_tcolumn_t *cols = rv_arena_alloc(arena, b->ncols * sizeof *cols + 1);
    static const int64_t no_rows[1] = {0}; /* a builder that never had a row has no b->ts */
    int64_t *ts = rv_arena_memdup(arena, b->ts ? (const void *)b->ts : no_rows,
                                  rows ? rows * sizeof *ts : 1);
    char *pool = rv_arena_memdup(arena, b->pool.data ? b->pool.data : "", b->pool.len + 1);
    if (!f || !cols || !ts || !pool) {
        return RV_ERR_NOMEM;
    }
    for (size_t i = 0; i < b->ncols; i++) {
        bcol_t *c = &b->cols[i];
        rv_tcolumn_t *oc = &cols[i];
        oc->name = rv_arena_strndup(arena, c->name, strlen(c->name));
        oc->type = c->type;
        oc->present = NULL;
        size_t have = c->cap < rows ? c->cap : rows; /* rows past cap were never set */
        if (c->set != rows) {
            uint8_t *p = rv_arena_alloc(arena, rows / 8 + 1);
            if (!p) {
                return RV_ERR_NOMEM;
            }
            memset(p, 0, rows / 8 + 1);
            if (have) {
                memcpy(p, c->present, (have + 7) / 8);
                if (have % 8) {
                    p[have / 8] &= (uint8_t)((1u << (have % 8)) - 1);
                }
            }
            oc->present = p;
        }
        size_t es = c->type == RV_TCOL_DOUBLE || c->type == RV_TCOL_INT64 ? 8 : sizeof(rv_buf_t);
        void *vals = rv_arena_alloc(arena, rows * es + 1);
        if (!oc->name || !vals) {
            return RV_ERR_NOMEM;
        }
        memset(vals, 0, rows * es);
        if (c->type == RV_TCOL_DOUBLE || c->type == RV_TCOL_INT64) {
            if (have) {
                memcpy(vals, c->vals, have * 8);
            }
            if (c->type == RV_TCOL_DOUBLE) {
                oc->v.d = vals;
            } else {
                oc->v.i = vals;
            }
        } else {
            rv_buf_t *s = vals;
            const cell_t *cells = c->vals;
            for (size_t r = 0; r < have; r++) {
                s[r].data = pool + cells[r].off;
                s[r].len = cells[r].len;
            }
            for (size_t r = have; r < rows; r++) {
                s[r].data = pool;
            }
            oc->v.s = s;
        }
    }
    f->format_id = format_id;
    f->rows = rows;
    f->timestamps = ts;
    f->column_count = b->ncols;
    f->columns = cols;
    *out = f;
    rv_tframe_builder_reset(b);
    return RV_OK;
}

/* ---- slicing and appending ------------------------------------------------------------------ */

/* A new frame of `rows` rows whose columns copy the names and types of `cols` (n of them), with
 * zeroed values and all-clear bitmaps, ready to be filled by put_cell(). */
static rv_tframe_t *frame_like(rv_arena_t *arena, const rv_tcolumn_t *const *cols, size_t n,
                               size_t rows) {
    rv_tframe_t *f = rv_arena_alloc(arena, sizeof *f);
    rv_tcolumn_t *oc = rv_arena_alloc(arena, n * sizeof *oc + 1);
    int64_t *ts = rv_arena_alloc(arena, rows * sizeof *ts + 1);
    if (!f || !oc || !ts) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t es = cols[i]->type == RV_TCOL_DOUBLE || cols[i]->type == RV_TCOL_INT64
                        ? 8
                        : sizeof(rv_buf_t);
        uint8_t *present = rv_arena_alloc(arena, rows / 8 + 1);
        void *vals = rv_arena_alloc(arena, rows * es + 1);
        if (!present || !vals) {
            return NULL;
        }
        memset(present, 0, rows / 8 + 1);
        memset(vals, 0, rows * es + 1);
        if (es != 8) {
            for (size_t r = 0; r < rows; r++) {
                ((rv_buf_t *)vals)[r].data = "";
            }
        }
        const char *name = cols[i]->name ? cols[i]->name : "";
        oc[i] = (rv_tcolumn_t){.name = rv_arena_strndup(arena, name, strlen(name)),
                               .type = cols[i]->type,
                               .present = present};
        if (!oc[i].name) {
            return NULL;
        }
        oc[i].v.d = vals; /* the union's members share the pointer */
    }
    *f = (rv_tframe_t){.rows = rows, .timestamps = ts, .column_count = n, .columns = oc};
    return f;
}

/* Copies cell `sr` of `src` (when present) into cell `dr` of `dst`. */
static bool put_cell(rv_arena_t *arena, rv_tcolumn_t *dst, size_t dr, const rv_tcolumn_t *src,
                     size_t sr) {
    if (!src || !rv_tcolumn_has(src, sr)) {
        return true;
    }
    ((uint8_t *)dst->present)[dr >> 3] |= (uint8_t)(1u << (dr & 7));
    switch (dst->type) {
        case RV_TCOL_DOUBLE:
            ((double *)dst->v.d)[dr] = src->v.d[sr];
            return true;
        case RV_TCOL_INT64:
            ((int64_t *)dst->v.i)[dr] = src->v.i[sr];
            return true;
        default: {
            rv_buf_t *b = &((rv_buf_t *)dst->v.s)[dr];
            b->len = src->v.s[sr].len;
            b->data = rv_arena_memdup(arena, b->len ? src->v.s[sr].data : "", b->len + 1);
            return b->data != NULL;
        }
    }
}

/* Drops the bitmaps of columns present in every row, as the builder does. */
static void settle(rv_tframe_t *f) {
    for (size_t i = 0; i < f->column_count; i++) {
        rv_tcolumn_t *c = (rv_tcolumn_t *)&f->columns[i];
        size_t have = 0;
        for (size_t b = 0; b < (f->rows + 7) / 8; b++) {
            have += (size_t)__builtin_popcount(c->present[b]);
        }
        if (have == f->rows) {
            c->present = NULL;
        }
    }
}

rv_err_t rv_tframe_slice(rv_arena_t *arena, const rv_tframe_t *frame, int64_t from, int64_t to,
                         const rv_tframe_t **out) {
    if (!arena || !frame || !out) {
        return RV_ERR_INVALID_ARG;
    }
    size_t rows = 0, n = frame->column_count;
    for (size_t r = 0; r < frame->rows; r++) {
        rows += frame->timestamps[r] >= from && frame->timestamps[r] < to;
    }
    const rv_tcolumn_t **cols = rv_arena_alloc(arena, n * sizeof *cols + 1);
    if (!cols) {
        return RV_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        cols[i] = &frame->columns[i];
    }
    rv_tframe_t *f = frame_like(arena, cols, n, rows);
    if (!f) {
        return RV_ERR_NOMEM;
    }
    f->format_id = frame->format_id;
    size_t dr = 0;
    for (size_t r = 0; r < frame->rows; r++) {
        if (frame->timestamps[r] < from || frame->timestamps[r] >= to) {
            continue;
        }
        ((int64_t *)f->timestamps)[dr] = frame->timestamps[r];
        for (size_t i = 0; i < n; i++) {
            if (!put_cell(arena, (rv_tcolumn_t *)&f->columns[i], dr, cols[i], r)) {
                return RV_ERR_NOMEM;
            }
        }
        dr++;
    }
    settle(f);
    *out = f;
    return RV_OK;
}

/* The column of `f` with the name and kind of `c` (a column of `cf`), or NULL. Columns their
 * data format names match by their place in the format ("#k", as the JSON forms key them). */
static const rv_tcolumn_t *same_column(const rv_tframe_t *f, const rv_tframe_t *cf,
                                       const rv_tcolumn_t *c) {
    char cbuf[24], xbuf[24];
    const char *ck = rv__tcolumn_key(cf, (size_t)(c - cf->columns), cbuf);
    for (size_t i = 0; i < f->column_count; i++) {
        const rv_tcolumn_t *x = &f->columns[i];
        if ((x->type == RV_TCOL_TAG) == (c->type == RV_TCOL_TAG) &&
            strcmp(rv__tcolumn_key(f, i, xbuf), ck) == 0) {
            return x;
        }
    }
    return NULL;
}

static bool has_unnamed(const rv_tframe_t *f) {
    for (size_t i = 0; i < f->column_count; i++) {
        if (rv__tcolumn_by_format(f, i)) {
            return true;
        }
    }
    return false;
}

rv_err_t rv_tframe_append(rv_arena_t *arena, const rv_tframe_t *a, const rv_tframe_t *b,
                          const rv_tframe_t **out, rv_error_t **err) {
    if (!arena || !a || !b || !out) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "frame append: NULL argument");
    }
    if (a->format_id != b->format_id && (has_unnamed(a) || has_unnamed(b))) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "frame append: frames of data formats %u and %u with columns "
                             "only their formats name",
                             (unsigned)a->format_id, (unsigned)b->format_id);
    }
    size_t n = a->column_count;
    const rv_tcolumn_t **cols =
        rv_arena_alloc(arena, (a->column_count + b->column_count) * sizeof *cols + 1);
    const rv_tframe_t **from =
        rv_arena_alloc(arena, (a->column_count + b->column_count) * sizeof *from + 1);
    if (!cols || !from) {
        return rv__error_set(err, RV_ERR_NOMEM, "frame append: out of memory");
    }
    for (size_t i = 0; i < a->column_count; i++) {
        cols[i] = &a->columns[i];
        from[i] = a;
    }
    for (size_t i = 0; i < b->column_count; i++) {
        const rv_tcolumn_t *c = &b->columns[i], *in_a = same_column(a, b, c);
        if (in_a && in_a->type != c->type) {
            return rv__error_set(err, RV_ERR_INVALID_ARG,
                                 "frame append: column '%.60s' is %s in the first frame and %s "
                                 "in the second",
                                 c->name, rv_tcol_type_name(in_a->type),
                                 rv_tcol_type_name(c->type));
        }
        if (!in_a) {
            from[n] = b;
            cols[n++] = c;
        }
    }
    rv_tframe_t *f = frame_like(arena, cols, n, a->rows + b->rows);
    if (!f) {
        return rv__error_set(err, RV_ERR_NOMEM, "frame append: out of memory");
    }
    f->format_id = a->format_id == b->format_id ? a->format_id : 0;
    for (int part = 0; part < 2; part++) {
        const rv_tframe_t *src = part ? b : a;
        size_t base = part ? a->rows : 0;
        for (size_t i = 0; i < n; i++) {
            const rv_tcolumn_t *sc = same_column(src, from[i], cols[i]);
            for (size_t r = 0; r < src->rows; r++) {
                if (!put_cell(arena, (rv_tcolumn_t *)&f->columns[i], base + r, sc, r)) {
                    return rv__error_set(err, RV_ERR_NOMEM, "frame append: out of memory");
                }
            }
        }
        for (size_t r = 0; r < src->rows; r++) {
            ((int64_t *)f->timestamps)[base + r] = src->timestamps[r];
        }
    }
    settle(f);
    *out = f;
    return RV_OK;
}

/* ---- equality ------------------------------------------------------------------------------- */

static bool str_eq(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool dbl_eq(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

static bool kv_eq(const rv_tkv_t *a, size_t na, const rv_tkv_t *b, size_t nb) {
    if (na != nb) {
        return false;
    }
    for (size_t i = 0; i < na; i++) {
        if (!str_eq(a[i].key, b[i].key) || !str_eq(a[i].value, b[i].value)) {
            return false;
        }
    }
    return true;
}

static bool frame_eq(const rv_tframe_t *a, const rv_tframe_t *b, bool timestamps) {
    if (!a || !b) {
        return a == b;
    }
    if (a->format_id != b->format_id || a->rows != b->rows || a->column_count != b->column_count) {
        return false;
    }
    if (timestamps) {
        for (size_t r = 0; r < a->rows; r++) {
            if (a->timestamps[r] != b->timestamps[r]) {
                return false;
            }
        }
    }
    for (size_t i = 0; i < a->column_count; i++) {
        const rv_tcolumn_t *x = &a->columns[i], *y = &b->columns[i];
        if (!str_eq(x->name, y->name) || x->type != y->type) {
            return false;
        }
        for (size_t r = 0; r < a->rows; r++) {
            bool hx = rv_tcolumn_has(x, r);
            if (hx != rv_tcolumn_has(y, r)) {
                return false;
            }
            if (!hx) {
                continue;
            }
            switch (x->type) {
                case RV_TCOL_DOUBLE:
                    if (!dbl_eq(x->v.d[r], y->v.d[r])) {
                        return false;
                    }
                    break;
                case RV_TCOL_INT64:
                    if (x->v.i[r] != y->v.i[r]) {
                        return false;
                    }
                    break;
                default:
                    if (x->v.s[r].len != y->v.s[r].len ||
                        (x->v.s[r].len &&
                         memcmp(x->v.s[r].data, y->v.s[r].data, x->v.s[r].len) != 0)) {
                        return false;
                    }
            }
        }
    }
    return true;
}

static bool session_eq(const rv_tsession_t *a, const rv_tsession_t *b) {
    return str_eq(a->session_id, b->session_id) && str_eq(a->identifier, b->identifier) &&
           str_eq(a->session_type, b->session_type) && a->version == b->version &&
           a->time == b->time && kv_eq(a->details, a->detail_count, b->details, b->detail_count);
}

bool rv_tpacket_equal(const rv_tpacket_t *a, const rv_tpacket_t *b) {
    if (!a || !b) {
        return a == b;
    }
    if (a->type != b->type || !str_eq(a->stream_id, b->stream_id)) {
        return false;
    }
    switch (a->type) {
        case RV_TPACKET_STREAM_PROPERTIES: {
            const rv_tstream_properties_t *x = &a->u.properties, *y = &b->u.properties;
            if (!str_eq(x->name, y->name) || !str_eq(x->location, y->location) ||
                !kv_eq(x->metadata, x->metadata_count, y->metadata, y->metadata_count) ||
                x->parent_count != y->parent_count ||
                x->has_time_of_recording != y->has_time_of_recording ||
                (x->has_time_of_recording && x->time_of_recording != y->time_of_recording)) {
                return false;
            }
            for (size_t i = 0; i < x->parent_count; i++) {
                if (!str_eq(x->parents[i], y->parents[i])) {
                    return false;
                }
            }
            return true;
        }
        case RV_TPACKET_STREAM_END:
            return a->u.end == b->u.end;
        case RV_TPACKET_SESSION_START:
        case RV_TPACKET_SESSION_INFO:
        case RV_TPACKET_SESSION_END:
            return session_eq(&a->u.session, &b->u.session);
        case RV_TPACKET_PARAMETER_DEFINITIONS:
            if (a->u.parameters.count != b->u.parameters.count) {
                return false;
            }
            for (size_t i = 0; i < a->u.parameters.count; i++) {
                const rv_tparameter_def_t *x = &a->u.parameters.items[i];
                const rv_tparameter_def_t *y = &b->u.parameters.items[i];
                if (!str_eq(x->id, y->id) || !str_eq(x->name, y->name) ||
                    !str_eq(x->description, y->description) || !str_eq(x->unit, y->unit) ||
                    x->has_minimum != y->has_minimum || x->has_maximum != y->has_maximum ||
                    (x->has_minimum && !dbl_eq(x->minimum, y->minimum)) ||
                    (x->has_maximum && !dbl_eq(x->maximum, y->maximum)) ||
                    !str_eq(x->format, y->format) || !str_eq(x->location, y->location) ||
                    !str_eq(x->custom_properties, y->custom_properties) ||
                    !dbl_eq(x->frequency, y->frequency)) {
                    return false;
                }
            }
            return true;
        case RV_TPACKET_EVENT_DEFINITIONS:
            if (a->u.event_defs.count != b->u.event_defs.count) {
                return false;
            }
            for (size_t i = 0; i < a->u.event_defs.count; i++) {
                const rv_tevent_def_t *x = &a->u.event_defs.items[i];
                const rv_tevent_def_t *y = &b->u.event_defs.items[i];
                if (!str_eq(x->id, y->id) || !str_eq(x->name, y->name) ||
                    !str_eq(x->description, y->description) || x->level != y->level ||
                    !str_eq(x->location, y->location) ||
                    !str_eq(x->custom_properties, y->custom_properties)) {
                    return false;
                }
            }
            return true;
        case RV_TPACKET_DATA_FORMAT:
            if (a->u.format.format_id != b->u.format.format_id ||
                a->u.format.count != b->u.format.count) {
                return false;
            }
            for (size_t i = 0; i < a->u.format.count; i++) {
                if (!str_eq(a->u.format.parameter_ids[i], b->u.format.parameter_ids[i])) {
                    return false;
                }
            }
            return true;
        case RV_TPACKET_PERIODIC_DATA:
            return a->u.periodic.start_time == b->u.periodic.start_time &&
                   a->u.periodic.interval == b->u.periodic.interval &&
                   frame_eq(a->u.periodic.frame, b->u.periodic.frame, false);
        case RV_TPACKET_FRAME:
            return frame_eq(a->u.frame, b->u.frame, true);
        case RV_TPACKET_EVENTS:
            if (a->u.events.count != b->u.events.count) {
                return false;
            }
            for (size_t i = 0; i < a->u.events.count; i++) {
                const rv_tevent_t *x = &a->u.events.items[i], *y = &b->u.events.items[i];
                if (!str_eq(x->id, y->id) || x->time != y->time || !str_eq(x->value, y->value) ||
                    !kv_eq(x->tags, x->tag_count, y->tags, y->tag_count)) {
                    return false;
                }
            }
            return true;
        case RV_TPACKET_MARKERS:
            if (a->u.markers.count != b->u.markers.count) {
                return false;
            }
            for (size_t i = 0; i < a->u.markers.count; i++) {
                const rv_tmarker_t *x = &a->u.markers.items[i], *y = &b->u.markers.items[i];
                if (!str_eq(x->kind, y->kind) || !str_eq(x->label, y->label) ||
                    x->start_time != y->start_time || x->end_time != y->end_time ||
                    !str_eq(x->description, y->description)) {
                    return false;
                }
            }
            return true;
        case RV_TPACKET_COVERAGE:
            return a->u.coverage_until == b->u.coverage_until;
    }
    return false;
}
