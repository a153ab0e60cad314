/*
 * buffer.c: the time-series buffer (rv_tbuffer_t), which gathers a stream's frames and releases
 * them as merged packets by row count, event-time span, clock timeout or custom triggers.
 *
 * The held rows live in a column store owned by the buffer: a timestamp array and, per column,
 * a value array and a presence bitmap, all grown geometrically up to max_rows and reused from
 * packet to packet, plus one byte pool for string cells. Adding a frame copies runs of rows into
 * it column by column (memcpy for numbers), so nothing is allocated per row or per sample once
 * the store has grown; a released packet is a frame whose columns point straight into the store.
 * This file never decodes outside bytes and never keeps a pointer into an added frame.
 */
#include <stdlib.h>
#include <string.h>

#include "rivulet/clock.h"
#include "rivulet/timeseries.h"
#include "telemetry/telemetry_int.h"

#define DEFAULT_MAX_ROWS ((size_t)1 << 20)
#define DEFAULT_MAX_BYTES ((size_t)64 << 20)

/* A string cell: an offset into the pool and a length (the pool moves as it grows). */
typedef struct cell_s {
    size_t off, len;
} cell_t;

/* A column of the store. Slots past `ncols` keep their name and arrays for reuse. */
typedef struct scol_s {
    char *name;
    rv_tcol_type_t type;
    size_t cap;       /* rows the arrays hold */
    uint8_t *present; /* cap / 8 + 1 bytes; zero past the held rows */
    void *vals;       /* double, int64_t or cell_t per row; zero past the held rows */
    rv_buf_t *bufs;   /* string views, filled at release (cap entries) */
    size_t set;       /* held rows present */
} scol_t;

struct rv_tbuffer_s {
    rv_tbuffer_opts_t o;
    int64_t *ts;
    size_t rows, cap;
    scol_t *cols;
    size_t ncols, colcap;
    rv_tcolumn_t *views; /* colcap entries, the released frame's columns */
    rv_strbuf_t pool;
    rv_tbuffer_state_t st;
    uint32_t format_id;
    bool format_set;
    bool pending; /* a packet the callback refused is held, waiting to be offered again */
    rv_tbuffer_reason_t pending_reason;
    size_t taken;
    /* per add: incoming column -> store column, and the filter's keep bitmap */
    bool mapped;
    long *map;
    size_t mapcap;
    uint8_t *keep;
    size_t keepcap;
};

const char *rv_tbuffer_reason_name(rv_tbuffer_reason_t reason) {
    switch (reason) {
        case RV_TBUFFER_PACKET_SIZE:
            return "packet_size";
        case RV_TBUFFER_TIME_SPAN:
            return "time_span";
        case RV_TBUFFER_TIMEOUT:
            return "timeout";
        case RV_TBUFFER_TRIGGER_BEFORE:
            return "trigger_before";
        case RV_TBUFFER_TRIGGER_AFTER:
            return "trigger_after";
        case RV_TBUFFER_LIMIT:
            return "limit";
        case RV_TBUFFER_TYPE_CHANGE:
            return "type_change";
        case RV_TBUFFER_FLUSH:
            return "flush";
    }
    return NULL;
}

static bool is_str(rv_tcol_type_t t) {
    return t == RV_TCOL_STRING || t == RV_TCOL_BYTES || t == RV_TCOL_TAG;
}

static size_t elem_size(rv_tcol_type_t t) {
    return is_str(t) ? sizeof(cell_t) : 8;
}

rv_err_t rv_tbuffer_new(const rv_tbuffer_opts_t *opts, rv_tbuffer_t **out, rv_error_t **err) {
    if (!opts || !out || !opts->release) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "time-series buffer: options with a release callback are required");
    }
    if (opts->time_span_ns < 0 || opts->timeout_ms < 0) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "time-series buffer: time_span_ns and timeout_ms may not be negative");
    }
    size_t max_rows = opts->max_rows ? opts->max_rows : DEFAULT_MAX_ROWS;
    if (opts->packet_size > max_rows) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "time-series buffer: packet_size %zu exceeds max_rows %zu",
                             opts->packet_size, max_rows);
    }
    rv_tbuffer_t *b = calloc(1, sizeof *b);
    if (!b) {
        return rv__error_set(err, RV_ERR_NOMEM, "time-series buffer: out of memory");
    }
    b->o = *opts;
    b->o.max_rows = max_rows;
    b->o.max_bytes = opts->max_bytes ? opts->max_bytes : DEFAULT_MAX_BYTES;
    *out = b;
    return RV_OK;
}

void rv_tbuffer_destroy(rv_tbuffer_t *b) {
    if (!b) {
        return;
    }
    for (size_t i = 0; i < b->colcap; i++) {
        free(b->cols[i].name);
        free(b->cols[i].present);
        free(b->cols[i].vals);
        free(b->cols[i].bufs);
    }
    free(b->cols);
    free(b->views);
    free(b->ts);
    free(b->map);
    free(b->keep);
    rv_strbuf_free(&b->pool);
    free(b);
}

size_t rv_tbuffer_taken(const rv_tbuffer_t *b) {
    return b->taken;
}

rv_tbuffer_state_t rv_tbuffer_state(const rv_tbuffer_t *b) {
    return b->st;
}

/* ---- the store ------------------------------------------------------------------------------ */

/* Grows column `c`'s arrays to `ncap` rows, zeroing what is new. */
static bool col_grow(scol_t *c, size_t ncap) {
    if (c->cap >= ncap) {
        return true;
    }
    size_t es = elem_size(c->type), oldb = c->cap ? c->cap / 8 + 1 : 0;
    uint8_t *np = realloc(c->present, ncap / 8 + 1);
    if (!np) {
        return false;
    }
    memset(np + oldb, 0, ncap / 8 + 1 - oldb);
    c->present = np;
    void *nv = realloc(c->vals, ncap * es);
    if (!nv) {
        return false;
    }
    memset((char *)nv + c->cap * es, 0, (ncap - c->cap) * es);
    c->vals = nv;
    free(c->bufs);
    c->bufs = NULL;
    c->cap = ncap;
    return true;
}

/* Makes room for `need` held rows (need <= max_rows). */
static bool ensure_rows(rv_tbuffer_t *b, size_t need) {
    if (need <= b->cap) {
        return true;
    }
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need) {
        ncap *= 2;
    }
    if (ncap > b->o.max_rows) {
        ncap = b->o.max_rows;
    }
    int64_t *nt = realloc(b->ts, ncap * sizeof *nt);
    if (!nt) {
        return false;
    }
    b->ts = nt;
    b->cap = ncap;
    for (size_t i = 0; i < b->ncols; i++) {
        if (!col_grow(&b->cols[i], ncap)) {
            return false;
        }
    }
    return true;
}

/* Forgets the held rows, keeping the memory (and the columns' names and arrays). */
static void store_reset(rv_tbuffer_t *b) {
    for (size_t i = 0; i < b->ncols; i++) {
        scol_t *c = &b->cols[i];
        size_t used = b->rows < c->cap ? b->rows : c->cap;
        if (c->cap) {
            memset(c->present, 0, used / 8 + 1);
            memset(c->vals, 0, used * elem_size(c->type));
        }
        c->set = 0;
    }
    b->ncols = 0;
    b->rows = 0;
    b->format_set = false;
    b->format_id = 0;
    b->mapped = false;
    rv_strbuf_clear(&b->pool);
    memset(&b->st, 0, sizeof b->st);
}

/* The store column for frame column `ic` (tried first at `hint`), added when new. Returns the
 * index, -1 for NOMEM, -2 when a held column of that name has another type. */
static long store_col(rv_tbuffer_t *b, const rv_tcolumn_t *ic, size_t hint) {
    const char *name = ic->name ? ic->name : "";
    bool tag = ic->type == RV_TCOL_TAG;
    for (size_t k = 0; k <= b->ncols; k++) {
        /* k == 0 looks at the hint, then every column in order */
        size_t i = k == 0 ? hint : k - 1;
        if (i >= b->ncols || (k > 0 && i == hint)) {
            continue;
        }
        scol_t *c = &b->cols[i];
        if ((c->type == RV_TCOL_TAG) == tag && strcmp(c->name, name) == 0) {
            return c->type == ic->type ? (long)i : -2;
        }
    }
    if (b->ncols == b->colcap) {
        size_t ncap = b->colcap ? b->colcap * 2 : 16;
        scol_t *nc = realloc(b->cols, ncap * sizeof *nc);
        if (!nc) {
            return -1;
        }
        memset(nc + b->colcap, 0, (ncap - b->colcap) * sizeof *nc);
        b->cols = nc;
        rv_tcolumn_t *nv = realloc(b->views, ncap * sizeof *nv);
        if (!nv) {
            return -1;
        }
        b->views = nv;
        b->colcap = ncap;
    }
    scol_t *c = &b->cols[b->ncols];
    if (!c->name || strcmp(c->name, name) != 0) {
        char *n = strdup(name);
        if (!n) {
            return -1;
        }
        free(c->name);
        c->name = n;
    }
    if (c->type != ic->type && c->cap) {
        /* A reused slot sized for another element type: start it afresh. */
        free(c->present);
        free(c->vals);
        free(c->bufs);
        c->present = NULL;
        c->vals = NULL;
        c->bufs = NULL;
        c->cap = 0;
    }
    c->type = ic->type;
    c->set = 0;
    if (!col_grow(c, b->cap ? b->cap : 64)) {
        return -1;
    }
    return (long)b->ncols++;
}

/* Sets bits [h, h + n) of `dst`. */
static void set_bits(uint8_t *dst, size_t h, size_t n) {
    size_t end = h + n;
    while (h < end && (h & 7)) {
        dst[h >> 3] |= (uint8_t)(1u << (h & 7));
        h++;
    }
    if (end - h >= 8) {
        memset(dst + (h >> 3), 0xff, (end - h) >> 3);
        h += (end - h) & ~(size_t)7;
    }
    while (h < end) {
        dst[h >> 3] |= (uint8_t)(1u << (h & 7));
        h++;
    }
}

/* ORs bits [r, r + n) of `src` into bits [h, h + n) of `dst`; returns how many were set. Whole
 * destination bytes are assembled from two source bytes at a time. */
static size_t copy_bits(uint8_t *dst, size_t h, const uint8_t *src, size_t r, size_t n) {
    size_t cnt = 0, k = 0;
    for (; k < n && ((h + k) & 7); k++) {
        unsigned bit = (src[(r + k) >> 3] >> ((r + k) & 7)) & 1u;
        dst[(h + k) >> 3] |= (uint8_t)(bit << ((h + k) & 7));
        cnt += bit;
    }
    for (; k + 8 <= n; k += 8) {
        size_t sp = r + k, shift = sp & 7;
        unsigned byte = src[sp >> 3] >> shift;
        if (shift) { /* bit sp + 7 is a row of the frame, so its byte exists */
            byte |= (unsigned)src[(sp >> 3) + 1] << (8 - shift);
        }
        byte &= 0xffu;
        dst[(h + k) >> 3] |= (uint8_t)byte;
        cnt += (size_t)__builtin_popcount(byte);
    }
    for (; k < n; k++) {
        unsigned bit = (src[(r + k) >> 3] >> ((r + k) & 7)) & 1u;
        dst[(h + k) >> 3] |= (uint8_t)(bit << ((h + k) & 7));
        cnt += bit;
    }
    return cnt;
}

/* Copies rows [r, e) of `f` after the held rows. The columns are mapped. */
static rv_err_t copy_rows(rv_tbuffer_t *b, const rv_tframe_t *f, size_t r, size_t e) {
    size_t h = b->rows, n = e - r;
    if (!ensure_rows(b, h + n)) {
        return RV_ERR_NOMEM;
    }
    memcpy(b->ts + h, f->timestamps + r, n * sizeof *b->ts);
    for (size_t i = 0; i < f->column_count; i++) {
        const rv_tcolumn_t *ic = &f->columns[i];
        scol_t *c = &b->cols[b->map[i]];
        if (ic->present) {
            c->set += copy_bits(c->present, h, ic->present, r, n);
        } else {
            set_bits(c->present, h, n);
            c->set += n;
        }
        if (!is_str(c->type)) {
            memcpy((int64_t *)c->vals + h, ic->v.i + r, n * 8);
            continue;
        }
        cell_t *cells = c->vals;
        for (size_t k = 0; k < n; k++) {
            if (!rv_tcolumn_has(ic, r + k)) {
                continue;
            }
            const rv_buf_t *s = &ic->v.s[r + k];
            cells[h + k] = (cell_t){b->pool.len, s->len};
            if (s->len && rv_strbuf_append(&b->pool, s->data, s->len) != RV_OK) {
                return RV_ERR_NOMEM;
            }
        }
    }
    if (!b->format_set) {
        b->format_id = f->format_id;
        b->format_set = true;
    } else if (b->format_id != f->format_id) {
        b->format_id = 0;
    }
    b->rows = h + n;
    return RV_OK;
}

/* Hands the held rows to the callback and forgets them; on the callback's error they stay held
 * and pending. */
static rv_err_t release(rv_tbuffer_t *b, rv_tbuffer_reason_t reason, rv_error_t **err) {
    for (size_t i = 0; i < b->ncols; i++) {
        scol_t *c = &b->cols[i];
        rv_tcolumn_t *v = &b->views[i];
        *v = (rv_tcolumn_t){
            .name = c->name, .type = c->type, .present = c->set == b->rows ? NULL : c->present};
        if (!is_str(c->type)) {
            v->v.d = c->vals;
            continue;
        }
        if (!c->bufs) {
            c->bufs = malloc(c->cap * sizeof *c->bufs + 1);
            if (!c->bufs) {
                return rv__error_set(err, RV_ERR_NOMEM, "time-series buffer: out of memory");
            }
        }
        const cell_t *cells = c->vals;
        const char *pool = b->pool.data ? b->pool.data : "";
        for (size_t r = 0; r < b->rows; r++) {
            c->bufs[r] = (rv_buf_t){pool + cells[r].off, cells[r].len};
        }
        v->v.s = c->bufs;
    }
    rv_tframe_t f = {.format_id = b->format_id,
                     .rows = b->rows,
                     .timestamps = b->ts ? b->ts : (const int64_t *)&b->st.first_time,
                     .column_count = b->ncols,
                     .columns = b->views};
    rv_err_t e = b->o.release(b->o.opaque, &f, reason);
    if (e != RV_OK) {
        b->pending = true;
        b->pending_reason = reason;
        return rv__error_set(err, e,
                             "time-series buffer: the release callback failed (%s) on a packet "
                             "of %zu rows (%s); it stays held",
                             rv_err_name(e), b->rows, rv_tbuffer_reason_name(reason));
    }
    b->pending = false;
    store_reset(b);
    return RV_OK;
}

static rv_err_t retry_pending(rv_tbuffer_t *b, rv_error_t **err) {
    return b->pending ? release(b, b->pending_reason, err) : RV_OK;
}

static int64_t now_ms(const rv_tbuffer_t *b) {
    return b->o.clock_ms ? b->o.clock_ms(b->o.opaque) : rv_clock_mono_ms();
}

static bool timed_out(const rv_tbuffer_t *b, int64_t now) {
    return b->o.timeout_ms > 0 && b->st.rows > 0 && now - b->st.since_ms >= b->o.timeout_ms;
}

/* Maps the frame's columns to store columns, releasing what is held on a type change. */
static rv_err_t map_columns(rv_tbuffer_t *b, const rv_tframe_t *f, rv_error_t **err) {
    if (f->column_count > b->mapcap) {
        long *nm = realloc(b->map, f->column_count * sizeof *nm);
        if (!nm) {
            return rv__error_set(err, RV_ERR_NOMEM, "time-series buffer: out of memory");
        }
        b->map = nm;
        b->mapcap = f->column_count;
    }
    for (size_t i = 0; i < f->column_count; i++) {
        long m = store_col(b, &f->columns[i], i);
        if (m == -2) {
            if (b->rows == 0) {
                /* Nothing held: the clash is inside this frame (two columns, one name). */
                return rv__error_set(err, RV_ERR_INVALID_ARG,
                                     "time-series buffer: the frame has two columns named "
                                     "'%.60s' with different types",
                                     f->columns[i].name ? f->columns[i].name : "");
            }
            rv_err_t e = release(b, RV_TBUFFER_TYPE_CHANGE, err);
            if (e != RV_OK) {
                return e;
            }
            return map_columns(b, f, err);
        }
        if (m < 0) {
            return rv__error_set(err, RV_ERR_NOMEM, "time-series buffer: out of memory");
        }
        b->map[i] = m;
    }
    b->mapped = true;
    return RV_OK;
}

/* Bytes of the string cells of row `r` of `f`. */
static size_t row_bytes(const rv_tframe_t *f, size_t r) {
    size_t n = 0;
    for (size_t i = 0; i < f->column_count; i++) {
        const rv_tcolumn_t *c = &f->columns[i];
        if (is_str(c->type) && rv_tcolumn_has(c, r)) {
            n += c->v.s[r].len;
        }
    }
    return n;
}

static bool kept(const uint8_t *keep, size_t r) {
    return !keep || (keep[r >> 3] >> (r & 7)) & 1u;
}

rv_err_t rv_tbuffer_add_from(rv_tbuffer_t *b, const rv_tframe_t *f, size_t from, rv_error_t **err) {
    if (!b || !f || (f->rows && !f->timestamps)) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "time-series buffer: NULL argument");
    }
    b->taken = from;
    rv_err_t e = retry_pending(b, err);
    if (e != RV_OK) {
        return e;
    }
    int64_t now = now_ms(b);
    if (timed_out(b, now) && (e = release(b, RV_TBUFFER_TIMEOUT, err)) != RV_OK) {
        return e;
    }
    size_t n = f->rows;
    const uint8_t *keep = NULL;
    if (b->o.filter && n > from) {
        size_t bytes = n / 8 + 1;
        if (bytes > b->keepcap) {
            uint8_t *nk = realloc(b->keep, bytes);
            if (!nk) {
                return rv__error_set(err, RV_ERR_NOMEM, "time-series buffer: out of memory");
            }
            b->keep = nk;
            b->keepcap = bytes;
        }
        memset(b->keep, 0xff, bytes);
        b->o.filter(b->o.opaque, f, b->keep);
        keep = b->keep;
    }
    bool strings = false;
    for (size_t i = 0; i < f->column_count; i++) {
        strings |= is_str(f->columns[i].type);
    }
    b->mapped = false;
    size_t r = from;
    while (r < n) {
        if (!kept(keep, r)) {
            r++;
            continue;
        }
        if (!b->mapped && (e = map_columns(b, f, err)) != RV_OK) {
            b->taken = r;
            return e;
        }
        /* Scan the run of rows that go into the held packet as it is, updating a copy of the
         * state as if they were taken (the triggers see it), then copy the run in one go. */
        rv_tbuffer_state_t s = b->st;
        rv_tbuffer_reason_t before = 0, after = 0;
        size_t x = r;
        for (; x < n && kept(keep, x); x++) {
            int64_t t = f->timestamps[x];
            size_t rb = strings ? row_bytes(f, x) : 0;
            if (s.rows > 0) {
                if (b->o.trigger_before && b->o.trigger_before(b->o.opaque, f, x, &s)) {
                    before = RV_TBUFFER_TRIGGER_BEFORE;
                    break;
                }
                if (b->o.time_span_ns > 0 && t > s.first_time &&
                    (uint64_t)t - (uint64_t)s.first_time >= (uint64_t)b->o.time_span_ns) {
                    before = RV_TBUFFER_TIME_SPAN;
                    break;
                }
                if (rb && s.bytes + rb > b->o.max_bytes) {
                    before = RV_TBUFFER_LIMIT;
                    break;
                }
                s.last_time = t;
                s.min_time = t < s.min_time ? t : s.min_time;
                s.max_time = t > s.max_time ? t : s.max_time;
            } else {
                s.first_time = s.last_time = s.min_time = s.max_time = t;
                s.since_ms = now;
            }
            s.rows++;
            s.bytes += rb;
            if (s.rows == b->o.packet_size) {
                after = RV_TBUFFER_PACKET_SIZE;
                x++;
                break;
            }
            if (s.rows >= b->o.max_rows || s.bytes >= b->o.max_bytes) {
                after = RV_TBUFFER_LIMIT;
                x++;
                break;
            }
        }
        if (x > r && (e = copy_rows(b, f, r, x)) != RV_OK) {
            b->taken = r;
            return rv__error_set(err, e, "time-series buffer: out of memory");
        }
        b->st = s;
        b->taken = x;
        r = x;
        if ((after || before) && (e = release(b, after ? after : before, err)) != RV_OK) {
            return e;
        }
    }
    b->taken = n;
    if (b->o.trigger_after && b->st.rows > 0 && b->o.trigger_after(b->o.opaque, f, &b->st)) {
        return release(b, RV_TBUFFER_TRIGGER_AFTER, err);
    }
    return RV_OK;
}

rv_err_t rv_tbuffer_add(rv_tbuffer_t *b, const rv_tframe_t *frame, rv_error_t **err) {
    return rv_tbuffer_add_from(b, frame, 0, err);
}

rv_err_t rv_tbuffer_tick(rv_tbuffer_t *b, int64_t now, rv_error_t **err) {
    rv_err_t e = retry_pending(b, err);
    if (e == RV_OK && timed_out(b, now)) {
        e = release(b, RV_TBUFFER_TIMEOUT, err);
    }
    return e;
}

rv_err_t rv_tbuffer_flush(rv_tbuffer_t *b, rv_error_t **err) {
    rv_err_t e = retry_pending(b, err);
    if (e == RV_OK && b->st.rows > 0) {
        e = release(b, RV_TBUFFER_FLUSH, err);
    }
    return e;
}
