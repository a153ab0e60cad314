/*
 * test_timeseries_interp.c: resampling frames onto a time grid (rv_tinterp_t).
 *
 * Random streams (absent cells, NaN, int64 and string columns, a column some frames lack,
 * negative times, gaps, explicit grid origins) are cut into random frames, fed to a resampler,
 * and every emitted row is compared with a reference this file computes with plain loops over
 * all the rows at once: each aggregator, two custom processors (one on a string column), both
 * fill modes with their gap limit, and late rows under both policies. Means are compared within
 * 1e-9 relative (the resampler sums with several accumulators); everything else bit for bit.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/rivulet.h"
#include "rv_test.h"

#define NOUT 10
#define MAXROWS 20000

/* ---- the input ------------------------------------------------------------------------------ */

typedef struct row_s {
    int64_t t;
    bool xp, kp, sp; /* present */
    double x;
    int64_t k;
} row_t;

static uint64_t rng = 0x696e746572703031ull;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static double unit(void) {
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static rv_arena_t *A;

/* Rows [a, b) as a frame; without k when !with_k (then those rows have no k). */
static const rv_tframe_t *frame_of(row_t *rows, size_t a, size_t b, bool with_k) {
    static const rv_tframe_t empty = {0};
    if (a == b) {
        return &empty; /* (a fresh builder finished with no rows trips UBSan in frame.c) */
    }
    rv_tframe_builder_t *fb = rv_tframe_builder_new();
    int cs = rv_tframe_builder_column(fb, "s", RV_TCOL_STRING);
    int cx = rv_tframe_builder_column(fb, "x", RV_TCOL_DOUBLE);
    int ck = with_k ? rv_tframe_builder_column(fb, "k", RV_TCOL_INT64) : -1;
    int cl = rv_tframe_builder_column(fb, "x", RV_TCOL_TAG); /* a tag named like a parameter */
    for (size_t i = a; i < b; i++) {
        rv_tframe_builder_add_row(fb, rows[i].t);
        if (rows[i].xp) {
            rv_tframe_builder_set_double(fb, cx, rows[i].x);
        }
        if (!with_k) {
            rows[i].kp = false;
        } else if (rows[i].kp) {
            rv_tframe_builder_set_int(fb, ck, rows[i].k);
        }
        if (rows[i].sp) {
            rv_tframe_builder_set_str(fb, cs, "abc", 3);
        }
        rv_tframe_builder_set_str(fb, cl, "tag", 3);
    }
    const rv_tframe_t *f = NULL;
    rv_err_t e = rv_tframe_builder_finish(fb, A, 0, &f);
    rv_tframe_builder_destroy(fb);
    return e == RV_OK ? f : NULL;
}

/* ---- custom processors ---------------------------------------------------------------------- */

typedef struct sumsq_s {
    double sum;
    int64_t n;
} sumsq_t;

static void sumsq_init(void *state, void *opaque) {
    (void)opaque;
    memset(state, 0, sizeof(sumsq_t));
}
static void sumsq_add(void *state, void *opaque, const rv_tcolumn_t *col, const int64_t *ts,
                      size_t from, size_t to) {
    (void)opaque;
    (void)ts;
    sumsq_t *s = state;
    for (size_t i = from; i < to; i++) {
        if (rv_tcolumn_has(col, i) && !isnan(col->v.d[i])) {
            s->sum += col->v.d[i] * col->v.d[i];
            s->n++;
        }
    }
}
static bool sumsq_result(void *state, void *opaque, int64_t grid, double *out) {
    (void)opaque;
    (void)grid;
    const sumsq_t *s = state;
    *out = s->sum;
    return s->n > 0;
}
static const rv_tinterp_ops_t sumsq_ops = {.version = RV_TINTERP_OPS_VERSION,
                                           .state_size = sizeof(sumsq_t),
                                           .init = sumsq_init,
                                           .add = sumsq_add,
                                           .result = sumsq_result};

/* Counts present cells of any column type (here a string column). */
static void count_init(void *state, void *opaque) {
    (void)opaque;
    *(int64_t *)state = 0;
}
static void count_add(void *state, void *opaque, const rv_tcolumn_t *col, const int64_t *ts,
                      size_t from, size_t to) {
    (void)opaque;
    (void)ts;
    for (size_t i = from; i < to; i++) {
        *(int64_t *)state += rv_tcolumn_has(col, i);
    }
}
static bool count_result(void *state, void *opaque, int64_t grid, double *out) {
    (void)opaque;
    (void)grid;
    *out = (double)*(int64_t *)state;
    return *(int64_t *)state > 0;
}
static const rv_tinterp_ops_t count_ops = {.version = RV_TINTERP_OPS_VERSION,
                                           .state_size = sizeof(int64_t),
                                           .init = count_init,
                                           .add = count_add,
                                           .result = count_result};

static const rv_tinterp_param_t PARAMS[NOUT] = {
    {.name = "x", .output = "x.first", .agg = RV_TAGG_FIRST},
    {.name = "x", .output = "x.last", .agg = RV_TAGG_LAST},
    {.name = "x", .output = "x.mean", .agg = RV_TAGG_MEAN},
    {.name = "x", .output = "x.min", .agg = RV_TAGG_MIN},
    {.name = "x", .output = "x.max", .agg = RV_TAGG_MAX},
    {.name = "k", .output = "k.mean", .agg = RV_TAGG_MEAN},
    {.name = "k", .output = "k.max", .agg = RV_TAGG_MAX},
    {.name = "x", .output = "x.sumsq", .agg = RV_TAGG_CUSTOM, .ops = &sumsq_ops},
    {.name = "s", .output = "s.count", .agg = RV_TAGG_CUSTOM, .ops = &count_ops},
    {.name = "nope", .agg = RV_TAGG_MEAN}, /* never in a frame: always absent */
};
static const bool IS_MEAN[NOUT] = {false, false, true, false, false, true};

/* ---- what the resampler emitted ------------------------------------------------------------- */

typedef struct res_s {
    size_t n;
    int64_t t[MAXROWS];
    bool has[MAXROWS][NOUT];
    double v[MAXROWS][NOUT];
    int calls;
    bool bad_shape;
} res_t;

static rv_err_t collect(void *opaque, const rv_tframe_t *f) {
    res_t *r = opaque;
    r->calls++;
    if (f->column_count != NOUT || f->rows == 0) {
        r->bad_shape = true;
        return RV_OK;
    }
    for (size_t c = 0; c < NOUT; c++) {
        const char *want = PARAMS[c].output ? PARAMS[c].output : PARAMS[c].name;
        if (f->columns[c].type != RV_TCOL_DOUBLE || strcmp(f->columns[c].name, want) != 0) {
            r->bad_shape = true;
        }
    }
    for (size_t i = 0; i < f->rows && r->n < MAXROWS; i++, r->n++) {
        r->t[r->n] = f->timestamps[i];
        for (size_t c = 0; c < NOUT; c++) {
            r->has[r->n][c] = rv_tcolumn_has(&f->columns[c], i);
            r->v[r->n][c] = r->has[r->n][c] ? f->columns[c].v.d[i] : 0.0;
        }
    }
    return RV_OK;
}

/* ---- the reference -------------------------------------------------------------------------- */

static int64_t ref_grid(int64_t t, int64_t origin, int64_t period) {
    int64_t d = t - origin, q = d / period;
    if (d < 0 && q * period != d) {
        q -= 1;
    }
    return origin + q * period;
}

/* The value of output o over rows [a, b), which share an interval. */
static bool ref_value(const row_t *rows, size_t a, size_t b, int o, double *v) {
    double sum = 0, mn = INFINITY, mx = -INFINITY, first = 0, last = 0;
    int64_t n = 0;
    for (size_t i = a; i < b; i++) {
        const row_t *r = &rows[i];
        double x;
        bool ok;
        if (o <= 4 || o == 7) {
            ok = r->xp && !isnan(r->x);
            x = r->x;
        } else if (o == 5 || o == 6) {
            ok = r->kp;
            x = (double)r->k;
        } else if (o == 8) {
            ok = r->sp;
            x = 1;
        } else {
            ok = false;
            x = 0;
        }
        if (!ok) {
            continue;
        }
        if (n == 0) {
            first = x;
        }
        last = x;
        sum += o == 7 ? x * x : x;
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
        n++;
    }
    switch (o) {
        case 0:
            *v = first;
            break;
        case 1:
            *v = last;
            break;
        case 2:
        case 5:
            *v = n ? sum / (double)n : 0;
            break;
        case 3:
            *v = mn;
            break;
        case 4:
        case 6:
            *v = mx;
            break;
        case 7:
            *v = sum;
            break;
        case 8:
            *v = (double)n;
            break;
        default:
            break;
    }
    return n > 0;
}

/* Appends the expected rows for `rows` (in order, late rows already removed) to `e`. */
static void reference(const row_t *rows, size_t n, int64_t origin, int64_t period, rv_tfill_t fill,
                      size_t max_fill, res_t *e) {
    bool has_prev[NOUT] = {false}, any_bucket = false;
    double prev[NOUT] = {0};
    int64_t last_g = 0;
    for (size_t a = 0; a < n;) {
        int64_t g = ref_grid(rows[a].t, origin, period);
        size_t b = a;
        while (b < n && ref_grid(rows[b].t, origin, period) == g) {
            b++;
        }
        if (fill == RV_TFILL_PREVIOUS && any_bucket) {
            size_t filled = 0;
            for (int64_t gg = last_g + period; gg < g && filled < max_fill; gg += period) {
                bool any = false;
                for (int o = 0; o < NOUT; o++) {
                    e->has[e->n][o] = has_prev[o];
                    e->v[e->n][o] = has_prev[o] ? prev[o] : 0;
                    any |= has_prev[o];
                }
                if (any) {
                    e->t[e->n++] = gg;
                }
                filled++;
            }
        }
        bool any = false;
        for (int o = 0; o < NOUT; o++) {
            double v = 0;
            bool h = ref_value(rows, a, b, o, &v);
            if (h) {
                prev[o] = v;
                has_prev[o] = true;
            } else if (fill == RV_TFILL_PREVIOUS && has_prev[o]) {
                v = prev[o];
                h = true;
            }
            e->has[e->n][o] = h;
            e->v[e->n][o] = h ? v : 0;
            any |= h;
        }
        if (any) {
            e->t[e->n++] = g;
        }
        any_bucket = true;
        last_g = g;
        a = b;
    }
}

static bool same(double a, double b, bool mean) {
    if (mean) {
        return fabs(a - b) <= 1e-9 * (fabs(b) > 1 ? fabs(b) : 1);
    }
    return memcmp(&a, &b, sizeof a) == 0;
}

static void compare_at(const char *file, int line, const res_t *got, const res_t *want) {
    rv_test_checks++;
    if (got->bad_shape) {
        RV_FAIL_AT(file, line, "an emitted frame had the wrong columns");
        return;
    }
    if (got->n != want->n) {
        RV_FAIL_AT(file, line, "%zu rows emitted, expected %zu", got->n, want->n);
        return;
    }
    for (size_t i = 0; i < got->n; i++) {
        if (got->t[i] != want->t[i]) {
            RV_FAIL_AT(file, line, "row %zu: time %lld, expected %lld", i, (long long)got->t[i],
                       (long long)want->t[i]);
            return;
        }
        for (int o = 0; o < NOUT; o++) {
            if (got->has[i][o] != want->has[i][o] ||
                (want->has[i][o] && !same(got->v[i][o], want->v[i][o], o < 6 && IS_MEAN[o]))) {
                RV_FAIL_AT(file, line, "row %zu (t=%lld) output %d: %s%.17g, expected %s%.17g", i,
                           (long long)got->t[i], o, got->has[i][o] ? "" : "absent ", got->v[i][o],
                           want->has[i][o] ? "" : "absent ", want->v[i][o]);
                return;
            }
        }
    }
}
#define COMPARE(got, want) compare_at(__FILE__, __LINE__, got, want)

static rv_tinterp_t *make(int64_t period, int64_t origin, rv_tfill_t fill, size_t max_fill,
                          rv_tlate_t late, res_t *r) {
    rv_tinterp_opts_t o = {.period_ns = period,
                           .origin_ns = origin,
                           .params = PARAMS,
                           .param_count = NOUT,
                           .fill = fill,
                           .max_fill = max_fill,
                           .late = late,
                           .emit = collect,
                           .opaque = r};
    rv_tinterp_t *ip = NULL;
    rv_error_t *err = NULL;
    if (rv_tinterp_new(&o, &ip, &err) != RV_OK) {
        fprintf(stderr, "rv_tinterp_new: %s\n", rv_error_message(err));
        rv_error_destroy(err);
    }
    return ip;
}

/* Random rows: `dense` rounds put ~period/2 rows in an interval (long runs, the vector kernels'
 * case) and, with all_x, no x absent (no bitmap at all); others put a few rows per interval. */
static size_t random_rows_mode(row_t *rows, size_t n, int64_t period, bool dense, bool all_x) {
    int64_t t = -(int64_t)(rnd() % 2000);
    for (size_t i = 0; i < n; i++) {
        uint64_t j = rnd() % 100;
        t += j < 3   ? (int64_t)(rnd() % (uint64_t)(12 * period)) /* a gap */
             : dense ? (int64_t)(rnd() % 3)
                     : (int64_t)(rnd() % (uint64_t)(period / 3 + 2));
        rows[i].t = t;
        rows[i].xp = all_x || rnd() % 5 != 0;
        rows[i].x = rnd() % 10 == 0 ? NAN : unit() * 2000.0 - 1000.0;
        rows[i].kp = rnd() % 10 < 7;
        rows[i].k = (int64_t)(rnd() % 2000001) - 1000000;
        rows[i].sp = rnd() % 2 == 0;
    }
    return n;
}

static size_t random_rows(row_t *rows, size_t n, int64_t period) {
    return random_rows_mode(rows, n, period, false, false);
}

static res_t GOT, WANT;

static void test_random_streams(void) {
    static row_t rows[4000];
    for (int round = 0; round < 60; round++) {
        bool dense = round % 3 == 2;
        int64_t period = 1 + (int64_t)(rnd() % (dense ? 150 : 50));
        int64_t origin = (int64_t)(rnd() % 41) - 20;
        rv_tfill_t fill = round % 2 ? RV_TFILL_PREVIOUS : RV_TFILL_NONE;
        size_t max_fill = 1 + rnd() % 5;
        size_t n = random_rows_mode(rows, 200 + rnd() % 3000, period, dense, round % 6 == 2);
        size_t frame_max = dense ? 300 : 40;
        memset(&GOT, 0, sizeof GOT);
        memset(&WANT, 0, sizeof WANT);
        rv_tinterp_t *ip = make(period, origin, fill, max_fill, RV_TLATE_ERROR, &GOT);
        REQUIRE(ip);
        for (size_t a = 0; a < n;) {
            size_t b = a + rnd() % frame_max;
            b = b > n ? n : b;
            CHECK_INT(rv_tinterp_feed(ip, frame_of(rows, a, b, rnd() % 4 != 0), NULL), RV_OK);
            a = b;
        }
        CHECK_INT(rv_tinterp_flush(ip, NULL), RV_OK);
        CHECK_INT(rv_tinterp_late(ip), 0);
        reference(rows, n, origin, period, fill, max_fill, &WANT);
        COMPARE(&GOT, &WANT);
        rv_tinterp_destroy(ip);
        rv_arena_reset(A);
    }
}

/* Emission is incremental: an interval goes once a later one's row arrives, the last at flush. */
static void test_incremental(void) {
    memset(&GOT, 0, sizeof GOT);
    rv_tinterp_t *ip = make(10, 0, RV_TFILL_NONE, 0, RV_TLATE_ERROR, &GOT);
    REQUIRE(ip);
    row_t rows[4] = {{.t = 0, .xp = true, .x = 1},
                     {.t = 5, .xp = true, .x = 3},
                     {.t = 12, .xp = true, .x = 7},
                     {.t = 19, .xp = true, .x = 9}};
    CHECK_INT(rv_tinterp_feed(ip, frame_of(rows, 0, 2, true), NULL), RV_OK);
    CHECK_INT(GOT.calls, 0);
    CHECK_INT(rv_tinterp_feed(ip, frame_of(rows, 2, 3, true), NULL), RV_OK);
    CHECK_INT(GOT.calls, 1);
    REQUIRE(GOT.n == 1);
    CHECK_INT(GOT.t[0], 0);
    CHECK(GOT.has[0][2] && GOT.v[0][2] == 2.0); /* mean of 1, 3 */
    CHECK(GOT.has[0][0] && GOT.v[0][0] == 1.0 && GOT.v[0][1] == 3.0);
    CHECK(!GOT.has[0][9]);
    CHECK_INT(rv_tinterp_feed(ip, frame_of(rows, 3, 4, true), NULL), RV_OK);
    CHECK_INT(GOT.calls, 1);
    CHECK_INT(rv_tinterp_flush(ip, NULL), RV_OK);
    REQUIRE(GOT.n == 2);
    CHECK_INT(GOT.t[1], 10);
    CHECK(GOT.v[1][2] == 8.0 && GOT.v[1][3] == 7.0 && GOT.v[1][4] == 9.0);
    CHECK_INT(rv_tinterp_flush(ip, NULL), RV_OK); /* nothing open */
    CHECK_INT(GOT.calls, 2);
    rv_tinterp_destroy(ip);
}

/* Late rows: an error that takes nothing, or dropped and counted. */
static void test_late_rows(void) {
    static row_t rows[3000];
    for (int policy = 0; policy < 2; policy++) {
        int64_t period = 10;
        size_t n = random_rows(rows, 2000, period);
        memset(&GOT, 0, sizeof GOT);
        memset(&WANT, 0, sizeof WANT);
        rv_tinterp_t *ip = make(period, 3, RV_TFILL_NONE, 0, (rv_tlate_t)policy, &GOT);
        REQUIRE(ip);
        /* Every 50 rows, a frame carrying the good rows with one stale row in the middle. */
        static row_t kept[3000];
        size_t nk = 0;
        uint64_t late = 0;
        for (size_t a = 0; a < n; a += 50) {
            size_t b = a + 50 < n ? a + 50 : n;
            row_t buf[64];
            size_t m = 0;
            for (size_t i = a; i < b; i++) {
                buf[m++] = rows[i];
                if (i == a + 25 && a >= 100) {
                    buf[m] = rows[i];
                    buf[m].t = rows[a - 60].t; /* its interval is long complete */
                    m++;
                }
            }
            bool has_late = m > b - a;
            rv_error_t *err = NULL;
            rv_err_t e = rv_tinterp_feed(ip, frame_of(buf, 0, m, true), &err);
            if (policy == RV_TLATE_ERROR && has_late) {
                CHECK_INT(e, RV_ERR_INVALID_ARG);
                CHECK(err && strstr(rv_error_message(err), "late") != NULL);
                rv_error_destroy(err);
                /* nothing was taken: feed the good rows alone */
                CHECK_INT(rv_tinterp_feed(ip, frame_of(rows, a, b, true), NULL), RV_OK);
            } else {
                CHECK_INT(e, RV_OK);
                rv_error_destroy(err);
                late += has_late;
            }
            for (size_t i = a; i < b; i++) {
                kept[nk++] = rows[i];
            }
        }
        CHECK_INT(rv_tinterp_flush(ip, NULL), RV_OK);
        CHECK_INT(rv_tinterp_late(ip), late);
        CHECK(policy == RV_TLATE_ERROR || late > 30);
        reference(kept, nk, 3, period, RV_TFILL_NONE, 0, &WANT);
        COMPARE(&GOT, &WANT);
        rv_tinterp_destroy(ip);
        rv_arena_reset(A);
    }
}

static rv_err_t refuse(void *opaque, const rv_tframe_t *f) {
    (void)opaque;
    (void)f;
    return RV_ERR_USER;
}

static void test_errors(void) {
    rv_tinterp_t *ip = NULL;
    rv_error_t *err = NULL;
    rv_tinterp_param_t p[2] = {{.name = "x", .agg = RV_TAGG_MEAN},
                               {.name = "x", .agg = RV_TAGG_MAX}};
    rv_tinterp_opts_t o = {.period_ns = 10, .params = p, .param_count = 2, .emit = collect};
    CHECK_INT(rv_tinterp_new(&o, &ip, &err), RV_ERR_INVALID_ARG); /* two outputs named x */
    CHECK(err && strstr(rv_error_message(err), "'x'") != NULL);
    rv_error_destroy(err);
    err = NULL;
    p[1].output = "x.max";
    o.period_ns = 0;
    CHECK_INT(rv_tinterp_new(&o, &ip, NULL), RV_ERR_INVALID_ARG);
    o.period_ns = 10;
    p[1].agg = RV_TAGG_CUSTOM; /* no ops */
    CHECK_INT(rv_tinterp_new(&o, &ip, NULL), RV_ERR_INVALID_ARG);
    p[1].agg = (rv_tagg_t)42;
    CHECK_INT(rv_tinterp_new(&o, &ip, NULL), RV_ERR_INVALID_ARG);
    /* a built-in aggregator on a string column */
    p[0].name = "s";
    p[1].agg = RV_TAGG_MIN;
    res_t *r = &GOT;
    memset(r, 0, sizeof *r);
    o.opaque = r;
    REQUIRE(rv_tinterp_new(&o, &ip, NULL) == RV_OK);
    row_t rows[2] = {{.t = 1, .sp = true, .xp = true, .x = 2}, {.t = 30, .sp = true}};
    CHECK_INT(rv_tinterp_feed(ip, frame_of(rows, 0, 1, true), &err), RV_ERR_INVALID_ARG);
    CHECK(err && strstr(rv_error_message(err), "'s' is a string column") != NULL);
    rv_error_destroy(err);
    err = NULL;
    rv_tinterp_destroy(ip);
    /* an emit callback's error comes back */
    p[0].name = "x";
    o.emit = refuse;
    REQUIRE(rv_tinterp_new(&o, &ip, NULL) == RV_OK);
    CHECK_INT(rv_tinterp_feed(ip, frame_of(rows, 0, 1, true), NULL), RV_OK);
    CHECK_INT(rv_tinterp_feed(ip, frame_of(rows, 1, 2, true), &err), RV_ERR_USER);
    CHECK(err && strstr(rv_error_message(err), "emit callback") != NULL);
    rv_error_destroy(err);
    rv_tinterp_destroy(ip);
    /* an overflowing grid point */
    o.emit = collect;
    o.period_ns = INT64_C(1000000000);
    o.origin_ns = INT64_MAX - 5;
    REQUIRE(rv_tinterp_new(&o, &ip, NULL) == RV_OK);
    row_t low[1] = {{.t = INT64_MIN + 3, .xp = true, .x = 1}};
    CHECK_INT(rv_tinterp_feed(ip, frame_of(low, 0, 1, true), NULL), RV_ERR_RANGE);
    rv_tinterp_destroy(ip);
    CHECK_INT(rv_tagg_parse("mean"), RV_TAGG_MEAN);
    CHECK_INT(rv_tagg_parse("median"), 0);
    CHECK_STR(rv_tagg_name(RV_TAGG_MAX), "max");
}

int main(void) {
    A = rv_arena_new(1 << 20);
    RV_RUN(test_incremental);
    RV_RUN(test_random_streams);
    RV_RUN(test_late_rows);
    RV_RUN(test_errors);
    rv_arena_destroy(A);
    return rv_test_finish();
}
