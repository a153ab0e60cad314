/*
 * agg.c: the aggregations of windows: the built-in ones (count, sum, mean, min, max, first,
 * last, earliest, latest, collect) as rv_agg_ops_t tables like any custom one, and aggregation
 * sets, which compute several aggregations over one window in one pass with one accumulator
 * block, and turn that block into bytes for the state store and back.
 *
 * Accumulator bytes are little-endian and versioned by the block; decoding checks every length,
 * so bytes from a damaged store give RV_ERR_CORRUPT, never a crash. This file must never touch
 * a store or a broker: it only computes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/json.h"
#include "stream/window_int.h"

/* ---- bytes ----------------------------------------------------------------------------------- */

static rv_err_t put_i64(rv_strbuf_t *out, int64_t v) {
    uint8_t b[8];
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(u >> (8 * i));
    }
    return rv_strbuf_append(out, b, 8);
}

static int64_t get_i64(const uint8_t *p) {
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) {
        u |= (uint64_t)p[i] << (8 * i);
    }
    return (int64_t)u;
}

static rv_err_t put_u32(rv_strbuf_t *out, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return rv_strbuf_append(out, b, 4);
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- numbers --------------------------------------------------------------------------------- */

/* A number accumulator: an int until a double or an overflow makes it a double. */
typedef struct num_s {
    int64_t i;
    double d;
    uint8_t any;
    uint8_t is_double;
} num_t;

/* Reads `v` as a number: 1 when it is one, 0 when missing or null, -1 (failing) otherwise. */
static int read_number(const rv_value_t *v, rv_ctx_t *ctx, const char *what, int64_t *i, double *d,
                       bool *is_double) {
    rv_type_t t = v ? rv_value_type(v) : RV_TYPE_NULL;
    if (t == RV_TYPE_NULL) {
        return 0;
    }
    if (t == RV_TYPE_INT) {
        *i = rv_value_int(v);
        *is_double = false;
        return 1;
    }
    if (t == RV_TYPE_DOUBLE) {
        *d = rv_value_double(v);
        *is_double = true;
        return 1;
    }
    if (ctx) {
        rv__ctx_failf(ctx, "%s: the input is %s, not a number", what, rv_type_name(t));
    }
    return -1;
}

static rv_err_t num_encode(const num_t *n, rv_strbuf_t *out) {
    double d = n->d;
    int64_t bits;
    memcpy(&bits, &d, 8);
    uint8_t flags = (uint8_t)(n->any | n->is_double << 1);
    if (put_i64(out, n->i) != RV_OK || put_i64(out, bits) != RV_OK) {
        return RV_ERR_NOMEM;
    }
    return rv_strbuf_append(out, &flags, 1);
}

static rv_err_t num_decode(num_t *n, const void *data, size_t len) {
    const uint8_t *p = data;
    if (len != 17 || p[16] > 3) {
        return RV_ERR_CORRUPT;
    }
    n->i = get_i64(p);
    int64_t bits = get_i64(p + 8);
    memcpy(&n->d, &bits, 8);
    n->any = p[16] & 1;
    n->is_double = (p[16] >> 1) & 1;
    return RV_OK;
}

static rv_value_t *num_value(const num_t *n, rv_arena_t *a) {
    return n->is_double ? rv_value_new_double(a, n->d) : rv_value_new_int(a, n->i);
}

/* -1, 0, 1 comparing x with y (ints exactly, otherwise as doubles). */
static int num_cmp(int64_t xi, double xd, bool xdbl, const num_t *y) {
    if (!xdbl && !y->is_double) {
        return xi < y->i ? -1 : xi > y->i;
    }
    double a = xdbl ? xd : (double)xi, b = y->is_double ? y->d : (double)y->i;
    return a < b ? -1 : a > b;
}

/* ---- count ----------------------------------------------------------------------------------- */

static void count_init(void *acc, void *opaque) {
    *(int64_t *)acc = 0;
}

static rv_err_t count_add(void *acc, const rv_value_t *in, int64_t ts, int64_t seq, rv_ctx_t *ctx,
                          void *opaque) {
    /* opaque (set by the set) is non-NULL when the aggregation names a field */
    if (!opaque || (in && rv_value_type(in) != RV_TYPE_NULL)) {
        (*(int64_t *)acc)++;
    }
    return RV_OK;
}

static void count_merge(void *acc, const void *other, void *opaque) {
    *(int64_t *)acc += *(const int64_t *)other;
}

static rv_value_t *count_result(const void *acc, rv_arena_t *a, void *opaque) {
    return rv_value_new_int(a, *(const int64_t *)acc);
}

static rv_err_t i64_encode(const void *acc, rv_strbuf_t *out, void *opaque) {
    return put_i64(out, *(const int64_t *)acc);
}

static rv_err_t i64_decode(void *acc, const void *data, size_t len, void *opaque) {
    if (len != 8) {
        return RV_ERR_CORRUPT;
    }
    *(int64_t *)acc = get_i64(data);
    return RV_OK;
}

static const rv_agg_ops_t count_ops = {.version = 1,
                                       .acc_size = sizeof(int64_t),
                                       .init = count_init,
                                       .add = count_add,
                                       .merge = count_merge,
                                       .result = count_result,
                                       .serialise = i64_encode,
                                       .deserialise = i64_decode};

/* ---- sum ------------------------------------------------------------------------------------- */

static void num_init(void *acc, void *opaque) {
    memset(acc, 0, sizeof(num_t));
}

static void sum_in(num_t *s, int64_t i, double d, bool dbl) {
    if (!dbl && !s->is_double) {
        int64_t r;
        if (!__builtin_add_overflow(s->i, i, &r)) {
            s->i = r;
            s->any = 1;
            return;
        }
    }
    if (!s->is_double) {
        s->d = (double)s->i;
        s->is_double = 1;
    }
    s->d += dbl ? d : (double)i;
    s->any = 1;
}

static rv_err_t sum_add(void *acc, const rv_value_t *in, int64_t ts, int64_t seq, rv_ctx_t *ctx,
                        void *opaque) {
    int64_t i = 0;
    double d = 0;
    bool dbl = false;
    int r = read_number(in, ctx, "sum", &i, &d, &dbl);
    if (r < 0) {
        return RV_ERR_INVALID_ARG;
    }
    if (r > 0) {
        sum_in(acc, i, d, dbl);
    }
    return RV_OK;
}

static void sum_merge(void *acc, const void *other, void *opaque) {
    const num_t *o = other;
    if (o->any) {
        sum_in(acc, o->i, o->d, o->is_double);
    }
}

static rv_value_t *sum_result(const void *acc, rv_arena_t *a, void *opaque) {
    return num_value(acc, a);
}

static rv_err_t numacc_encode(const void *acc, rv_strbuf_t *out, void *opaque) {
    return num_encode(acc, out);
}

static rv_err_t numacc_decode(void *acc, const void *data, size_t len, void *opaque) {
    return num_decode(acc, data, len);
}

static const rv_agg_ops_t sum_ops = {.version = 1,
                                     .acc_size = sizeof(num_t),
                                     .init = num_init,
                                     .add = sum_add,
                                     .merge = sum_merge,
                                     .result = sum_result,
                                     .serialise = numacc_encode,
                                     .deserialise = numacc_decode};

/* ---- mean ------------------------------------------------------------------------------------ */

typedef struct mean_s {
    double sum;
    int64_t n;
} mean_t;

static void mean_init(void *acc, void *opaque) {
    memset(acc, 0, sizeof(mean_t));
}

static rv_err_t mean_add(void *acc, const rv_value_t *in, int64_t ts, int64_t seq, rv_ctx_t *ctx,
                         void *opaque) {
    int64_t i = 0;
    double d = 0;
    bool dbl = false;
    int r = read_number(in, ctx, "mean", &i, &d, &dbl);
    if (r < 0) {
        return RV_ERR_INVALID_ARG;
    }
    if (r > 0) {
        mean_t *m = acc;
        m->sum += dbl ? d : (double)i;
        m->n++;
    }
    return RV_OK;
}

static void mean_merge(void *acc, const void *other, void *opaque) {
    mean_t *m = acc;
    const mean_t *o = other;
    m->sum += o->sum;
    m->n += o->n;
}

static rv_value_t *mean_result(const void *acc, rv_arena_t *a, void *opaque) {
    const mean_t *m = acc;
    return m->n ? rv_value_new_double(a, m->sum / (double)m->n) : rv_value_new_null(a);
}

static rv_err_t mean_encode(const void *acc, rv_strbuf_t *out, void *opaque) {
    const mean_t *m = acc;
    int64_t bits;
    memcpy(&bits, &m->sum, 8);
    return put_i64(out, bits) == RV_OK ? put_i64(out, m->n) : RV_ERR_NOMEM;
}

static rv_err_t mean_decode(void *acc, const void *data, size_t len, void *opaque) {
    mean_t *m = acc;
    if (len != 16) {
        return RV_ERR_CORRUPT;
    }
    int64_t bits = get_i64(data);
    memcpy(&m->sum, &bits, 8);
    m->n = get_i64((const uint8_t *)data + 8);
    return m->n < 0 ? RV_ERR_CORRUPT : RV_OK;
}

static const rv_agg_ops_t mean_ops = {.version = 1,
                                      .acc_size = sizeof(mean_t),
                                      .init = mean_init,
                                      .add = mean_add,
                                      .merge = mean_merge,
                                      .result = mean_result,
                                      .serialise = mean_encode,
                                      .deserialise = mean_decode};

/* ---- min and max ----------------------------------------------------------------------------- */

/* Keeps x in `m` when it is better (sign -1: smaller, 1: larger). */
static void extreme_in(num_t *m, int64_t i, double d, bool dbl, int sign) {
    if (dbl && isnan(d)) {
        return; /* NaN orders with nothing */
    }
    if (!m->any || num_cmp(i, d, dbl, m) == sign) {
        m->i = i;
        m->d = d;
        m->is_double = dbl;
        m->any = 1;
    }
}

static rv_err_t extreme_add(void *acc, const rv_value_t *in, rv_ctx_t *ctx, int sign) {
    int64_t i = 0;
    double d = 0;
    bool dbl = false;
    int r = read_number(in, ctx, sign < 0 ? "min" : "max", &i, &d, &dbl);
    if (r < 0) {
        return RV_ERR_INVALID_ARG;
    }
    if (r > 0) {
        extreme_in(acc, i, d, dbl, sign);
    }
    return RV_OK;
}

static rv_err_t min_add(void *acc, const rv_value_t *in, int64_t ts, int64_t seq, rv_ctx_t *ctx,
                        void *opaque) {
    return extreme_add(acc, in, ctx, -1);
}

static rv_err_t max_add(void *acc, const rv_value_t *in, int64_t ts, int64_t seq, rv_ctx_t *ctx,
                        void *opaque) {
    return extreme_add(acc, in, ctx, 1);
}

static void min_merge(void *acc, const void *other, void *opaque) {
    const num_t *o = other;
    if (o->any) {
        extreme_in(acc, o->i, o->d, o->is_double, -1);
    }
}

static void max_merge(void *acc, const void *other, void *opaque) {
    const num_t *o = other;
    if (o->any) {
        extreme_in(acc, o->i, o->d, o->is_double, 1);
    }
}

static rv_value_t *extreme_result(const void *acc, rv_arena_t *a, void *opaque) {
    const num_t *m = acc;
    return m->any ? num_value(m, a) : rv_value_new_null(a);
}

static const rv_agg_ops_t min_ops = {.version = 1,
                                     .acc_size = sizeof(num_t),
                                     .init = num_init,
                                     .add = min_add,
                                     .merge = min_merge,
                                     .result = extreme_result,
                                     .serialise = numacc_encode,
                                     .deserialise = numacc_decode};

static const rv_agg_ops_t max_ops = {.version = 1,
                                     .acc_size = sizeof(num_t),
                                     .init = num_init,
                                     .add = max_add,
                                     .merge = max_merge,
                                     .result = extreme_result,
                                     .serialise = numacc_encode,
                                     .deserialise = numacc_decode};

/* ---- first, last, earliest, latest: one kept value ------------------------------------------- */

/* A kept value: its JSON text, and the timestamp and arrival position of its record. */
typedef struct pick_s {
    int64_t ts;
    int64_t seq;
    int any;
    rv_strbuf_t json;
} pick_t;

/* Which record a pick keeps. */
enum { PICK_FIRST, PICK_LAST, PICK_EARLIEST, PICK_LATEST };

static void pick_init(void *acc, void *opaque) {
    memset(acc, 0, sizeof(pick_t));
}

/* Whether a record (ts, seq) replaces what `p` keeps under rule `how`. */
static bool pick_better(const pick_t *p, int64_t ts, int64_t seq, int how) {
    if (!p->any) {
        return true;
    }
    switch (how) {
        case PICK_FIRST:
            return seq < p->seq;
        case PICK_LAST: /* equal positions (records of one expand): the later call wins */
            return seq >= p->seq;
        case PICK_EARLIEST:
            return ts < p->ts || (ts == p->ts && seq < p->seq);
        default:
            return ts > p->ts || (ts == p->ts && seq >= p->seq);
    }
}

/* Writes `v` (NULL = null) as JSON into `out` (cleared first); fails the record when it cannot. */
static rv_err_t write_json(rv_strbuf_t *out, const rv_value_t *v, rv_ctx_t *ctx, const char *what) {
    rv_strbuf_clear(out);
    if (!v) {
        return rv_strbuf_append(out, "null", 4);
    }
    rv_error_t *err = NULL;
    rv_err_t e = rv_json_write(out, v, RV_JSON_COMPACT, &err);
    if (e != RV_OK && ctx) {
        rv__ctx_failf(ctx, "%s: cannot keep the input: %s", what,
                      err ? rv_error_message(err) : rv_err_str(e));
    }
    rv_error_destroy(err);
    return e;
}

static rv_err_t pick_add(pick_t *p, const rv_value_t *in, int64_t ts, int64_t seq, rv_ctx_t *ctx,
                         int how, const char *what) {
    if (!pick_better(p, ts, seq, how)) {
        return RV_OK;
    }
    rv_err_t e = write_json(&p->json, in, ctx, what);
    if (e != RV_OK) {
        return e;
    }
    p->ts = ts;
    p->seq = seq;
    p->any = 1;
    return RV_OK;
}

static rv_err_t first_add(void *acc, const rv_value_t *in, int64_t ts, int64_t seq, rv_ctx_t *ctx,
                          void *opaque) {
    return pick_add(acc, in, ts, seq, ctx, PICK_FIRST, "first");
}
static rv_err_t last_add(void *acc, const rv_value_t *in, int64_t ts, int64_t seq, rv_ctx_t *ctx,
                         void *opaque) {
    return pick_add(acc, in, ts, seq, ctx, PICK_LAST, "last");
}
static rv_err_t earliest_add(void *acc, const rv_value_t *in, int64_t ts, int64_t seq,
                             rv_ctx_t *ctx, void *opaque) {
    return pick_add(acc, in, ts, seq, ctx, PICK_EARLIEST, "earliest");
}
static rv_err_t latest_add(void *acc, const rv_value_t *in, int64_t ts, int64_t seq, rv_ctx_t *ctx,
                           void *opaque) {
    return pick_add(acc, in, ts, seq, ctx, PICK_LATEST, "latest");
}

static void pick_merge(void *acc, const void *other, int how) {
    pick_t *p = acc;
    const pick_t *o = other;
    if (o->any && pick_better(p, o->ts, o->seq, how)) {
        rv_strbuf_clear(&p->json);
        if (rv_strbuf_append(&p->json, o->json.data, o->json.len) == RV_OK) {
            p->ts = o->ts;
            p->seq = o->seq;
            p->any = 1;
        }
    }
}

static void first_merge(void *acc, const void *other, void *opaque) {
    pick_merge(acc, other, PICK_FIRST);
}
static void last_merge(void *acc, const void *other, void *opaque) {
    pick_merge(acc, other, PICK_LAST);
}
static void earliest_merge(void *acc, const void *other, void *opaque) {
    pick_merge(acc, other, PICK_EARLIEST);
}
static void latest_merge(void *acc, const void *other, void *opaque) {
    pick_merge(acc, other, PICK_LATEST);
}

/* Parses kept JSON text back into a value in `a` (NULL on NOMEM or damaged text). */
static rv_value_t *parse_kept(rv_arena_t *a, const char *text, size_t len) {
    rv_value_t *v = NULL;
    if (rv_json_parse(a, text, len, NULL, &v, NULL, NULL) != RV_OK) {
        return NULL;
    }
    return v;
}

static rv_value_t *pick_result(const void *acc, rv_arena_t *a, void *opaque) {
    const pick_t *p = acc;
    if (!p->any) {
        return rv_value_new_null(a);
    }
    return parse_kept(a, p->json.data, p->json.len);
}

static rv_err_t pick_encode(const void *acc, rv_strbuf_t *out, void *opaque) {
    const pick_t *p = acc;
    if (put_i64(out, p->ts) != RV_OK || put_i64(out, p->seq) != RV_OK ||
        rv_strbuf_append(out, &(uint8_t){(uint8_t)p->any}, 1) != RV_OK) {
        return RV_ERR_NOMEM;
    }
    return rv_strbuf_append(out, p->json.data, p->json.len);
}

static rv_err_t pick_decode(void *acc, const void *data, size_t len, void *opaque) {
    pick_t *p = acc;
    const uint8_t *b = data;
    memset(p, 0, sizeof *p);
    if (len < 17 || b[16] > 1) {
        return RV_ERR_CORRUPT;
    }
    p->ts = get_i64(b);
    p->seq = get_i64(b + 8);
    p->any = b[16];
    return rv_strbuf_append(&p->json, b + 17, len - 17);
}

static void strbuf_release(void *acc, void *opaque) {
    rv_strbuf_free(&((pick_t *)acc)->json);
}

#define PICK_OPS(nm)                                                                               \
    static const rv_agg_ops_t nm##_ops = {.version = 1,                                            \
                                          .acc_size = sizeof(pick_t),                              \
                                          .init = pick_init,                                       \
                                          .add = nm##_add,                                         \
                                          .merge = nm##_merge,                                     \
                                          .result = pick_result,                                   \
                                          .serialise = pick_encode,                                \
                                          .deserialise = pick_decode,                              \
                                          .release = strbuf_release}
PICK_OPS(first);
PICK_OPS(last);
PICK_OPS(earliest);
PICK_OPS(latest);

/* ---- collect --------------------------------------------------------------------------------- */

/* Items as [seq i64][len u32][JSON] in arrival order. */
typedef struct collect_s {
    int64_t n;
    rv_strbuf_t items;
} collect_t;

static void collect_init(void *acc, void *opaque) {
    memset(acc, 0, sizeof(collect_t));
}

static rv_err_t collect_add(void *acc, const rv_value_t *in, int64_t ts, int64_t seq, rv_ctx_t *ctx,
                            void *opaque) {
    collect_t *c = acc;
    rv_strbuf_t tmp = RV_STRBUF_INIT;
    rv_err_t e = write_json(&tmp, in, ctx, "collect");
    if (e == RV_OK) {
        size_t at = c->items.len;
        if (put_i64(&c->items, seq) != RV_OK || put_u32(&c->items, (uint32_t)tmp.len) != RV_OK ||
            rv_strbuf_append(&c->items, tmp.data, tmp.len) != RV_OK) {
            c->items.len = at;
            e = RV_ERR_NOMEM;
        } else {
            c->n++;
        }
    }
    rv_strbuf_free(&tmp);
    return e;
}

/* Merges two arrival-ordered item lists by arrival position. */
static void collect_merge(void *acc, const void *other, void *opaque) {
    collect_t *c = acc;
    const collect_t *o = other;
    if (o->n == 0) {
        return;
    }
    rv_strbuf_t out = RV_STRBUF_INIT;
    if (rv_strbuf_reserve(&out, c->items.len + o->items.len) != RV_OK) {
        return;
    }
    const uint8_t *a = (const uint8_t *)c->items.data, *b = (const uint8_t *)o->items.data;
    size_t ia = 0, ib = 0, la = c->items.len, lb = o->items.len;
    while (ia < la || ib < lb) {
        bool take_a = ib >= lb || (ia < la && get_i64(a + ia) <= get_i64(b + ib));
        const uint8_t *p = take_a ? a + ia : b + ib;
        size_t sz = 12 + get_u32(p + 8);
        rv_strbuf_append(&out, p, sz);
        if (take_a) {
            ia += sz;
        } else {
            ib += sz;
        }
    }
    rv_strbuf_free(&c->items);
    c->items = out;
    c->n += o->n;
}

static rv_value_t *collect_result(const void *acc, rv_arena_t *a, void *opaque) {
    const collect_t *c = acc;
    rv_value_t *arr = rv_value_new_array(a, (size_t)c->n);
    const uint8_t *p = (const uint8_t *)c->items.data;
    for (size_t at = 0; arr && at < c->items.len;) {
        uint32_t len = get_u32(p + at + 8);
        rv_value_t *v = parse_kept(a, (const char *)p + at + 12, len);
        if (!v || rv_value_append(a, arr, v) != RV_OK) {
            return NULL;
        }
        at += 12 + (size_t)len;
    }
    return arr;
}

static rv_err_t collect_encode(const void *acc, rv_strbuf_t *out, void *opaque) {
    const collect_t *c = acc;
    return put_i64(out, c->n) == RV_OK ? rv_strbuf_append(out, c->items.data, c->items.len)
                                       : RV_ERR_NOMEM;
}

static rv_err_t collect_decode(void *acc, const void *data, size_t len, void *opaque) {
    collect_t *c = acc;
    const uint8_t *b = data;
    memset(c, 0, sizeof *c);
    if (len < 8) {
        return RV_ERR_CORRUPT;
    }
    int64_t n = get_i64(b), seen = 0;
    size_t at = 8;
    while (at < len) { /* every item must fit */
        if (len - at < 12 || len - at - 12 < get_u32(b + at + 8)) {
            return RV_ERR_CORRUPT;
        }
        at += 12 + (size_t)get_u32(b + at + 8);
        seen++;
    }
    if (seen != n) {
        return RV_ERR_CORRUPT;
    }
    c->n = n;
    return rv_strbuf_append(&c->items, b + 8, len - 8);
}

static void collect_release(void *acc, void *opaque) {
    rv_strbuf_free(&((collect_t *)acc)->items);
}

static const rv_agg_ops_t collect_ops = {.version = 1,
                                         .acc_size = sizeof(collect_t),
                                         .init = collect_init,
                                         .add = collect_add,
                                         .merge = collect_merge,
                                         .result = collect_result,
                                         .serialise = collect_encode,
                                         .deserialise = collect_decode,
                                         .release = collect_release};

/* ---- the registry ---------------------------------------------------------------------------- */

const rv_agg_ops_t *rv__agg_builtin(rv_agg_kind_t kind) {
    switch (kind) {
        case RV_AGG_COUNT:
            return &count_ops;
        case RV_AGG_SUM:
            return &sum_ops;
        case RV_AGG_MEAN:
            return &mean_ops;
        case RV_AGG_MIN:
            return &min_ops;
        case RV_AGG_MAX:
            return &max_ops;
        case RV_AGG_FIRST:
            return &first_ops;
        case RV_AGG_LAST:
            return &last_ops;
        case RV_AGG_EARLIEST:
            return &earliest_ops;
        case RV_AGG_LATEST:
            return &latest_ops;
        case RV_AGG_COLLECT:
            return &collect_ops;
        default:
            return NULL;
    }
}

const char *rv__agg_kind_name(rv_agg_kind_t kind) {
    static const char *const names[] = {"count", "sum",      "mean",   "min",     "max",   "first",
                                        "last",  "earliest", "latest", "collect", "custom"};
    return (unsigned)kind < RV_ARRAY_LEN(names) ? names[kind] : "unknown";
}

/* ---- sets ------------------------------------------------------------------------------------ */

#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

/* Splits `path` into `out` in `arena`; false when it has an empty segment. */
static bool split_path(rv_arena_t *arena, const char *path, rv__path_t *out, bool *nomem) {
    size_t len = strlen(path), n = 1;
    for (size_t i = 0; i < len; i++) {
        n += path[i] == '.';
    }
    char *text = rv_arena_strndup(arena, path, len);
    const char **seg = rv_arena_alloc(arena, n * sizeof *seg);
    size_t *lens = rv_arena_alloc(arena, n * sizeof *lens);
    if (!text || !seg || !lens) {
        *nomem = true;
        return false;
    }
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == '.') {
            if (i == start) {
                return false;
            }
            seg[k] = text + start;
            lens[k++] = i - start;
            start = i + 1;
        }
    }
    *out = (rv__path_t){.n = n, .seg = seg, .len = lens, .text = text};
    return true;
}

rv_err_t rv__aggset_build(rv__aggset_t *set, rv_arena_t *arena, const rv_agg_t *aggs, size_t count,
                          char *why, size_t why_size) {
    memset(set, 0, sizeof *set);
    if (count == 0 || !aggs) {
        snprintf(why, why_size, "a window needs at least one aggregation");
        return RV_ERR_INVALID_ARG;
    }
    set->a = rv_arena_alloc(arena, count * sizeof *set->a);
    if (!set->a) {
        snprintf(why, why_size, "out of memory");
        return RV_ERR_NOMEM;
    }
    size_t off = ALIGN8(sizeof(rv__acc_head_t));
    for (size_t i = 0; i < count; i++) {
        const rv_agg_t *g = &aggs[i];
        rv__agg_t *a = &set->a[i];
        memset(a, 0, sizeof *a);
        if (!g->name || !*g->name || strcmp(g->name, "start") == 0 || strcmp(g->name, "end") == 0) {
            snprintf(why, why_size, "aggregation %zu: the name %s", i,
                     !g->name    ? "is NULL"
                     : !*g->name ? "is empty"
                                 : "'start'/'end' is reserved");
            return RV_ERR_INVALID_ARG;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(set->a[j].name, g->name) == 0) {
                snprintf(why, why_size, "aggregation %zu: the name '%s' is used twice", i, g->name);
                return RV_ERR_INVALID_ARG;
            }
        }
        a->kind = g->kind;
        if (g->kind == RV_AGG_CUSTOM) {
            const rv_agg_ops_t *o = g->ops;
            if (!o || o->version != 1 || o->acc_size == 0 || !o->init || !o->add || !o->merge ||
                !o->result || !o->serialise || !o->deserialise) {
                snprintf(why, why_size, "aggregation '%s': custom ops %s", g->name,
                         !o                ? "are NULL"
                         : o->version != 1 ? "have an unknown version (this library knows 1)"
                                           : "need acc_size and every function but release");
                return RV_ERR_INVALID_ARG;
            }
            a->ops = o;
            a->opaque = g->opaque;
        } else {
            a->ops = rv__agg_builtin(g->kind);
            if (!a->ops) {
                snprintf(why, why_size, "aggregation '%s': unknown kind %d", g->name, (int)g->kind);
                return RV_ERR_INVALID_ARG;
            }
        }
        a->name_len = strlen(g->name);
        a->name = rv_arena_strndup(arena, g->name, a->name_len);
        bool nomem = false;
        if (g->field && !split_path(arena, g->field, &a->path, &nomem)) {
            snprintf(why, why_size, "aggregation '%s': %s", g->name,
                     nomem ? "out of memory" : "the field path is empty or has an empty name");
            return nomem ? RV_ERR_NOMEM : RV_ERR_INVALID_ARG;
        }
        if (!a->name) {
            snprintf(why, why_size, "out of memory");
            return RV_ERR_NOMEM;
        }
        if (g->kind == RV_AGG_COUNT) {
            a->opaque = g->field ? (void *)a : NULL; /* count: non-NULL = count present inputs */
        }
        a->offset = off;
        off += ALIGN8(a->ops->acc_size);
    }
    set->n = count;
    set->acc_size = off;
    return RV_OK;
}

void rv__aggset_init(const rv__aggset_t *set, void *acc) {
    memset(acc, 0, sizeof(rv__acc_head_t));
    for (size_t i = 0; i < set->n; i++) {
        set->a[i].ops->init((char *)acc + set->a[i].offset, set->a[i].opaque);
    }
}

/* The aggregated input of `a` in `value` (NULL when a step is missing). */
static const rv_value_t *input_of(const rv__agg_t *a, const rv_value_t *value) {
    const rv_value_t *cur = value;
    for (size_t i = 0; i < a->path.n && cur; i++) {
        if (rv_value_type(cur) != RV_TYPE_OBJECT) {
            return NULL;
        }
        cur = rv_value_get(cur, a->path.seg[i], a->path.len[i]);
    }
    return cur;
}

rv_err_t rv__aggset_add(const rv__aggset_t *set, void *acc, const rv_value_t *value, int64_t ts,
                        int64_t seq, rv_ctx_t *ctx) {
    for (size_t i = 0; i < set->n; i++) {
        const rv__agg_t *a = &set->a[i];
        if (ctx) {
            ctx->fail_set = false;
        }
        rv_err_t e =
            a->ops->add((char *)acc + a->offset, input_of(a, value), ts, seq, ctx, a->opaque);
        if (e != RV_OK) {
            if (ctx) {
                char msg[sizeof ctx->fail_msg];
                snprintf(msg, sizeof msg, "%s", ctx->fail_set ? ctx->fail_msg : rv_err_str(e));
                rv__ctx_failf(ctx, "aggregation '%s' (%s of %s): %s", a->name,
                              rv__agg_kind_name(a->kind), a->path.n ? a->path.text : "the value",
                              msg);
            }
            return e;
        }
    }
    rv__acc_head_t *h = acc;
    if (h->count == 0 || ts < h->min_ts) {
        h->min_ts = ts;
    }
    if (h->count == 0 || ts > h->max_ts) {
        h->max_ts = ts;
    }
    h->count++;
    return RV_OK;
}

void rv__aggset_merge(const rv__aggset_t *set, void *acc, const void *other) {
    rv__acc_head_t *h = acc;
    const rv__acc_head_t *o = other;
    if (o->count == 0) {
        return;
    }
    for (size_t i = 0; i < set->n; i++) {
        set->a[i].ops->merge((char *)acc + set->a[i].offset, (const char *)other + set->a[i].offset,
                             set->a[i].opaque);
    }
    if (h->count == 0 || o->min_ts < h->min_ts) {
        h->min_ts = o->min_ts;
    }
    if (h->count == 0 || o->max_ts > h->max_ts) {
        h->max_ts = o->max_ts;
    }
    h->count += o->count;
    if (o->touched_ms > h->touched_ms) {
        h->touched_ms = o->touched_ms;
    }
}

rv_value_t *rv__aggset_result(const rv__aggset_t *set, const void *acc, rv_arena_t *arena,
                              int64_t start, int64_t end) {
    rv_value_t *o = rv_value_new_object(arena, set->n + 2);
    rv_value_t *vs = rv_value_new_int(arena, start), *ve = rv_value_new_int(arena, end);
    if (!o || !vs || !ve || rv_value_set(arena, o, "start", 5, vs) != RV_OK ||
        rv_value_set(arena, o, "end", 3, ve) != RV_OK) {
        return NULL;
    }
    for (size_t i = 0; i < set->n; i++) {
        const rv__agg_t *a = &set->a[i];
        rv_value_t *r = a->ops->result((const char *)acc + a->offset, arena, a->opaque);
        if (!r || rv_value_set(arena, o, a->name, a->name_len, r) != RV_OK) {
            return NULL;
        }
    }
    return o;
}

/* Block bytes: [version u8 = 1][count][min_ts][max_ts][touched] then [len u32][bytes] each. */
rv_err_t rv__aggset_encode(const rv__aggset_t *set, const void *acc, rv_strbuf_t *out) {
    const rv__acc_head_t *h = acc;
    if (rv_strbuf_append(out, "\x01", 1) != RV_OK || put_i64(out, h->count) != RV_OK ||
        put_i64(out, h->min_ts) != RV_OK || put_i64(out, h->max_ts) != RV_OK ||
        put_i64(out, h->touched_ms) != RV_OK) {
        return RV_ERR_NOMEM;
    }
    for (size_t i = 0; i < set->n; i++) {
        const rv__agg_t *a = &set->a[i];
        size_t at = out->len;
        if (put_u32(out, 0) != RV_OK) {
            return RV_ERR_NOMEM;
        }
        rv_err_t e = a->ops->serialise((const char *)acc + a->offset, out, a->opaque);
        if (e != RV_OK) {
            return e;
        }
        uint32_t len = (uint32_t)(out->len - at - 4);
        uint8_t b[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                        (uint8_t)(len >> 24)};
        memcpy(out->data + at, b, 4);
    }
    return RV_OK;
}

rv_err_t rv__aggset_decode(const rv__aggset_t *set, void *acc, const void *data, size_t len) {
    const uint8_t *b = data;
    rv__aggset_init(set, acc);
    if (len < 33 || b[0] != 1) {
        return RV_ERR_CORRUPT;
    }
    rv__acc_head_t *h = acc;
    h->count = get_i64(b + 1);
    h->min_ts = get_i64(b + 9);
    h->max_ts = get_i64(b + 17);
    h->touched_ms = get_i64(b + 25);
    size_t at = 33;
    for (size_t i = 0; i < set->n; i++) {
        const rv__agg_t *a = &set->a[i];
        void *slot = (char *)acc + a->offset;
        if (a->ops->release) {
            a->ops->release(slot, a->opaque); /* undo init */
        }
        uint32_t n = len - at >= 4 ? get_u32(b + at) : 0;
        rv_err_t e = len - at < 4 || len - at - 4 < n
                         ? RV_ERR_CORRUPT
                         : a->ops->deserialise(slot, b + at + 4, n, a->opaque);
        if (e != RV_OK) {
            a->ops->init(slot, a->opaque);
            rv__aggset_release(set, acc);
            rv__aggset_init(set, acc);
            return e == RV_ERR_NOMEM ? e : RV_ERR_CORRUPT;
        }
        at += 4 + (size_t)n;
    }
    if (at != len) {
        rv__aggset_release(set, acc);
        rv__aggset_init(set, acc);
        return RV_ERR_CORRUPT;
    }
    return RV_OK;
}

void rv__aggset_release(const rv__aggset_t *set, void *acc) {
    for (size_t i = 0; i < set->n; i++) {
        if (set->a[i].ops->release) {
            set->a[i].ops->release((char *)acc + set->a[i].offset, set->a[i].opaque);
        }
    }
}
