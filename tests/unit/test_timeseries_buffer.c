/*
 * test_timeseries_buffer.c: the time-series buffer (rv_tbuffer_t).
 *
 * Frames are built with the real frame builder, added to a buffer, and every released packet is
 * copied out (rv_tframe_slice) and compared row by row with what an independent plain loop in
 * this file says the packets must be: by packet size, time span, timeout on an injected clock,
 * before and after triggers, the filter, memory limits, type changes, a refusing callback, and
 * random combinations. Cell values are functions of the timestamp, so every cell is checked.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/rivulet.h"
#include "rv_test.h"

#define MAXP 1024

static rv_arena_t *A;

/* The cells every test frame carries for a row at time t. */
static bool a_present(int64_t t) {
    return t % 7 != 3;
}
static double a_value(int64_t t) {
    return (double)t * 0.5;
}
static int64_t b_value(int64_t t) {
    return t * 3;
}
static void lap_of(int64_t t, char *out) {
    snprintf(out, 24, "L%lld", (long long)(t / 10));
}

/* A frame of `n` rows at the given times with a (double, sometimes absent), b (int64, when
 * with_b) and lap (a tag). */
static const rv_tframe_t *make_frame(const int64_t *ts, size_t n, bool with_b) {
    static const rv_tframe_t empty = {.format_id = 7};
    if (n == 0) {
        return &empty; /* (a fresh builder finished with no rows trips UBSan in frame.c) */
    }
    rv_tframe_builder_t *b = rv_tframe_builder_new();
    int ca = rv_tframe_builder_column(b, "a", RV_TCOL_DOUBLE);
    int cb = with_b ? rv_tframe_builder_column(b, "b", RV_TCOL_INT64) : -1;
    int cl = rv_tframe_builder_column(b, "lap", RV_TCOL_TAG);
    for (size_t i = 0; i < n; i++) {
        char lap[24];
        rv_tframe_builder_add_row(b, ts[i]);
        if (a_present(ts[i])) {
            rv_tframe_builder_set_double(b, ca, a_value(ts[i]));
        }
        if (with_b) {
            rv_tframe_builder_set_int(b, cb, b_value(ts[i]));
        }
        lap_of(ts[i], lap);
        rv_tframe_builder_set_str(b, cl, lap, strlen(lap));
    }
    const rv_tframe_t *f = NULL;
    rv_err_t e = rv_tframe_builder_finish(b, A, 7, &f);
    rv_tframe_builder_destroy(b);
    return e == RV_OK ? f : NULL;
}

static const rv_tframe_t *make_range(int64_t t0, int64_t step, size_t n, bool with_b) {
    int64_t ts[512];
    for (size_t i = 0; i < n; i++) {
        ts[i] = t0 + (int64_t)i * step;
    }
    return make_frame(ts, n, with_b);
}

/* What the release callback saw. */
typedef struct got_s {
    size_t n;
    const rv_tframe_t *frames[MAXP];
    rv_tbuffer_reason_t reasons[MAXP];
    int refuse; /* refuse this many releases with RV_ERR_USER */
    int64_t clock;
} got_t;

static rv_err_t on_release(void *opaque, const rv_tframe_t *f, rv_tbuffer_reason_t reason) {
    got_t *g = opaque;
    if (g->refuse > 0) {
        g->refuse--;
        return RV_ERR_USER;
    }
    if (g->n >= MAXP) {
        return RV_ERR_LIMIT;
    }
    const rv_tframe_t *copy = NULL;
    if (rv_tframe_slice(A, f, INT64_MIN, INT64_MAX, &copy) != RV_OK) {
        return RV_ERR_NOMEM;
    }
    g->frames[g->n] = copy;
    g->reasons[g->n] = reason;
    g->n++;
    return RV_OK;
}

static int64_t fake_clock(void *opaque) {
    return ((got_t *)opaque)->clock;
}

/* Checks a released packet: its times are exactly `ts`, and every cell is what the row's time
 * says (b present exactly where `b_from` says, NULL: nowhere in the packet). */
static void check_packet_at(const char *file, int line, const rv_tframe_t *f, const int64_t *ts,
                            size_t n, bool (*b_from)(int64_t)) {
    if (!f) {
        RV_FAIL_AT(file, line, "no packet");
        return;
    }
    if (f->rows != n) {
        RV_FAIL_AT(file, line, "packet has %zu rows, expected %zu", f->rows, n);
        return;
    }
    const rv_tcolumn_t *a = rv_tframe_column(f, "a"), *b = rv_tframe_column(f, "b");
    const rv_tcolumn_t *lap = rv_tframe_column(f, "lap");
    if (!a || !lap || a->type != RV_TCOL_DOUBLE || lap->type != RV_TCOL_TAG ||
        (b_from != NULL) != (b != NULL)) {
        RV_FAIL_AT(file, line, "packet columns are wrong");
        return;
    }
    rv_test_checks++;
    for (size_t i = 0; i < n; i++) {
        int64_t t = ts[i];
        char want[24];
        lap_of(t, want);
        if (f->timestamps[i] != t) {
            RV_FAIL_AT(file, line, "row %zu: time %lld, expected %lld", i,
                       (long long)f->timestamps[i], (long long)t);
            return;
        }
        if (rv_tcolumn_has(a, i) != a_present(t) || (a_present(t) && a->v.d[i] != a_value(t))) {
            RV_FAIL_AT(file, line, "row %zu (t=%lld): cell a is wrong", i, (long long)t);
            return;
        }
        if (b && (rv_tcolumn_has(b, i) != b_from(t) || (b_from(t) && b->v.i[i] != b_value(t)))) {
            RV_FAIL_AT(file, line, "row %zu (t=%lld): cell b is wrong", i, (long long)t);
            return;
        }
        if (!rv_tcolumn_has(lap, i) || lap->v.s[i].len != strlen(want) ||
            memcmp(lap->v.s[i].data, want, strlen(want)) != 0) {
            RV_FAIL_AT(file, line, "row %zu (t=%lld): tag lap is wrong", i, (long long)t);
            return;
        }
    }
}
#define CHECK_PACKET(f, ts, n, bfrom) check_packet_at(__FILE__, __LINE__, f, ts, n, bfrom)

static bool b_always(int64_t t) {
    (void)t;
    return true;
}

static void seq(int64_t *out, int64_t t0, int64_t step, size_t n) {
    for (size_t i = 0; i < n; i++) {
        out[i] = t0 + (int64_t)i * step;
    }
}

static rv_tbuffer_t *make_buffer(rv_tbuffer_opts_t o, got_t *g) {
    o.release = on_release;
    o.opaque = g;
    if (!o.clock_ms) {
        o.clock_ms = fake_clock;
    }
    rv_tbuffer_t *b = NULL;
    rv_error_t *err = NULL;
    if (rv_tbuffer_new(&o, &b, &err) != RV_OK) {
        fprintf(stderr, "rv_tbuffer_new: %s\n", rv_error_message(err));
        rv_error_destroy(err);
    }
    return b;
}

/* ---- one condition at a time ---------------------------------------------------------------- */

static void test_packet_size(void) {
    got_t g = {0};
    rv_tbuffer_t *b = make_buffer((rv_tbuffer_opts_t){.packet_size = 4}, &g);
    REQUIRE(b);
    for (int i = 0; i < 4; i++) { /* 4 frames of 3 rows: 12 rows, 3 packets of 4 */
        CHECK_INT(rv_tbuffer_add(b, make_range(i * 3, 1, 3, true), NULL), RV_OK);
    }
    CHECK_INT(g.n, 3);
    int64_t ts[16];
    for (size_t p = 0; p < 3 && p < g.n; p++) {
        seq(ts, (int64_t)p * 4, 1, 4);
        CHECK_PACKET(g.frames[p], ts, 4, b_always);
        CHECK_INT(g.reasons[p], RV_TBUFFER_PACKET_SIZE);
        CHECK_INT(g.frames[p]->format_id, 7);
    }
    CHECK_INT(rv_tbuffer_state(b).rows, 0);
    /* One frame overshooting by far: split into packets, the rest held. */
    CHECK_INT(rv_tbuffer_add(b, make_range(100, 1, 10, true), NULL), RV_OK);
    CHECK_INT(g.n, 5);
    CHECK_INT(rv_tbuffer_state(b).rows, 2);
    CHECK_INT(rv_tbuffer_taken(b), 10);
    CHECK_INT(rv_tbuffer_flush(b, NULL), RV_OK);
    CHECK_INT(g.n, 6);
    if (g.n == 6) {
        seq(ts, 100, 1, 4);
        CHECK_PACKET(g.frames[3], ts, 4, b_always);
        seq(ts, 104, 1, 4);
        CHECK_PACKET(g.frames[4], ts, 4, b_always);
        seq(ts, 108, 1, 2);
        CHECK_PACKET(g.frames[5], ts, 2, b_always);
        CHECK_INT(g.reasons[5], RV_TBUFFER_FLUSH);
    }
    CHECK_INT(rv_tbuffer_flush(b, NULL), RV_OK); /* nothing held: nothing released */
    CHECK_INT(g.n, 6);
    rv_tbuffer_destroy(b);
}

static void test_time_span(void) {
    got_t g = {0};
    rv_tbuffer_t *b = make_buffer((rv_tbuffer_opts_t){.time_span_ns = 10}, &g);
    REQUIRE(b);
    /* times 0, 3, ..., 27 in frames of 4: packets [0,10) [12,22) and 24, 27 at the flush */
    for (int i = 0; i < 10; i += 4) {
        CHECK_INT(rv_tbuffer_add(b, make_range(i * 3, 3, i + 4 <= 10 ? 4 : 2, true), NULL), RV_OK);
    }
    CHECK_INT(g.n, 2);
    CHECK_INT(rv_tbuffer_flush(b, NULL), RV_OK);
    REQUIRE(g.n == 3);
    int64_t p0[] = {0, 3, 6, 9}, p1[] = {12, 15, 18, 21}, p2[] = {24, 27};
    CHECK_PACKET(g.frames[0], p0, 4, b_always);
    CHECK_PACKET(g.frames[1], p1, 4, b_always);
    CHECK_PACKET(g.frames[2], p2, 2, b_always);
    CHECK_INT(g.reasons[0], RV_TBUFFER_TIME_SPAN);
    CHECK_INT(g.reasons[2], RV_TBUFFER_FLUSH);
    /* A row earlier than the first held never crosses; one exactly span later does. */
    int64_t q[] = {100, 95, 109, 110, 111};
    CHECK_INT(rv_tbuffer_add(b, make_frame(q, 5, true), NULL), RV_OK);
    CHECK_INT(rv_tbuffer_flush(b, NULL), RV_OK);
    REQUIRE(g.n == 5);
    CHECK_PACKET(g.frames[3], q, 3, b_always);
    CHECK_PACKET(g.frames[4], q + 3, 2, b_always);
    rv_tbuffer_state_t st = rv_tbuffer_state(b);
    CHECK_INT(st.rows, 0);
    rv_tbuffer_destroy(b);
}

static void test_timeout(void) {
    got_t g = {0};
    rv_tbuffer_t *b = make_buffer((rv_tbuffer_opts_t){.timeout_ms = 100}, &g);
    REQUIRE(b);
    g.clock = 1000;
    CHECK_INT(rv_tbuffer_add(b, make_range(0, 1, 3, true), NULL), RV_OK);
    g.clock = 1050;
    CHECK_INT(rv_tbuffer_add(b, make_range(3, 1, 2, true), NULL), RV_OK);
    CHECK_INT(rv_tbuffer_state(b).since_ms, 1000);
    CHECK_INT(rv_tbuffer_tick(b, 1099, NULL), RV_OK);
    CHECK_INT(g.n, 0);
    CHECK_INT(rv_tbuffer_tick(b, 1100, NULL), RV_OK);
    REQUIRE(g.n == 1);
    int64_t ts[8];
    seq(ts, 0, 1, 5);
    CHECK_PACKET(g.frames[0], ts, 5, b_always);
    CHECK_INT(g.reasons[0], RV_TBUFFER_TIMEOUT);
    CHECK_INT(rv_tbuffer_tick(b, 5000, NULL), RV_OK); /* nothing held */
    CHECK_INT(g.n, 1);
    /* The timeout is checked again when the next frame comes: the old rows go first. */
    g.clock = 2000;
    CHECK_INT(rv_tbuffer_add(b, make_range(10, 1, 2, true), NULL), RV_OK);
    g.clock = 2100;
    CHECK_INT(rv_tbuffer_add(b, make_range(12, 1, 2, true), NULL), RV_OK);
    REQUIRE(g.n == 2);
    seq(ts, 10, 1, 2);
    CHECK_PACKET(g.frames[1], ts, 2, b_always);
    CHECK_INT(rv_tbuffer_state(b).since_ms, 2100);
    CHECK_INT(rv_tbuffer_state(b).rows, 2);
    rv_tbuffer_destroy(b);
}

/* Releases before a row whose lap differs from the previous row's. */
typedef struct lapstate_s {
    got_t g;
    char last[24];
    int calls;
} lapstate_t;

static bool lap_changed(void *opaque, const rv_tframe_t *f, size_t row,
                        const rv_tbuffer_state_t *held) {
    lapstate_t *ls = opaque;
    const rv_tcolumn_t *lap = rv_tframe_column(f, "lap");
    char now[24];
    snprintf(now, sizeof now, "%.*s", (int)lap->v.s[row].len, (const char *)lap->v.s[row].data);
    bool changed = strcmp(now, ls->last) != 0 && held->rows > 0;
    strcpy(ls->last, now);
    ls->calls++;
    return changed;
}

static rv_err_t on_release_ls(void *opaque, const rv_tframe_t *f, rv_tbuffer_reason_t r) {
    return on_release(&((lapstate_t *)opaque)->g, f, r);
}

static void test_trigger_before(void) {
    lapstate_t ls = {.last = "L0"};
    rv_tbuffer_opts_t o = {.trigger_before = lap_changed, .release = on_release_ls, .opaque = &ls};
    rv_tbuffer_t *b = NULL;
    REQUIRE(rv_tbuffer_new(&o, &b, NULL) == RV_OK);
    /* times 0..34 step 1 in frames of 7: laps change at 10, 20, 30 (inside frames) */
    for (int i = 0; i < 35; i += 7) {
        CHECK_INT(rv_tbuffer_add(b, make_range(i, 1, 7, true), NULL), RV_OK);
    }
    CHECK_INT(ls.g.n, 3);
    CHECK_INT(rv_tbuffer_flush(b, NULL), RV_OK);
    REQUIRE(ls.g.n == 4);
    int64_t ts[16];
    for (int p = 0; p < 3; p++) {
        seq(ts, p * 10, 1, 10);
        CHECK_PACKET(ls.g.frames[p], ts, 10, b_always);
        CHECK_INT(ls.g.reasons[p], RV_TBUFFER_TRIGGER_BEFORE);
    }
    seq(ts, 30, 1, 5);
    CHECK_PACKET(ls.g.frames[3], ts, 5, b_always);
    /* Called once per row while rows were held: all rows but the very first. */
    CHECK_INT(ls.calls, 34);
    rv_tbuffer_destroy(b);
}

static bool held_five(void *opaque, const rv_tframe_t *f, const rv_tbuffer_state_t *held) {
    (void)opaque;
    (void)f;
    return held->rows >= 5;
}

static void test_trigger_after(void) {
    got_t g = {0};
    rv_tbuffer_t *b = make_buffer((rv_tbuffer_opts_t){.trigger_after = held_five}, &g);
    REQUIRE(b);
    CHECK_INT(rv_tbuffer_add(b, make_range(0, 1, 3, true), NULL), RV_OK);
    CHECK_INT(g.n, 0);
    CHECK_INT(rv_tbuffer_add(b, make_range(3, 1, 3, true), NULL), RV_OK);
    REQUIRE(g.n == 1); /* 6 rows, after the whole frame: no split */
    int64_t ts[8];
    seq(ts, 0, 1, 6);
    CHECK_PACKET(g.frames[0], ts, 6, b_always);
    CHECK_INT(g.reasons[0], RV_TBUFFER_TRIGGER_AFTER);
    CHECK_INT(rv_tbuffer_state(b).rows, 0);
    rv_tbuffer_destroy(b);
}

/* Drops rows whose a is absent or whose time is a multiple of 4. */
static void drop_some(void *opaque, const rv_tframe_t *f, uint8_t *keep) {
    (void)opaque;
    const rv_tcolumn_t *a = rv_tframe_column(f, "a");
    for (size_t r = 0; r < f->rows; r++) {
        if (!rv_tcolumn_has(a, r) || f->timestamps[r] % 4 == 0) {
            keep[r >> 3] &= (uint8_t) ~(1u << (r & 7));
        }
    }
}

static void test_filter(void) {
    got_t g = {0};
    rv_tbuffer_t *b = make_buffer((rv_tbuffer_opts_t){.packet_size = 5, .filter = drop_some}, &g);
    REQUIRE(b);
    for (int i = 0; i < 60; i += 12) {
        CHECK_INT(rv_tbuffer_add(b, make_range(i, 1, 12, true), NULL), RV_OK);
    }
    CHECK_INT(rv_tbuffer_flush(b, NULL), RV_OK);
    /* the reference: kept times in order, cut every 5 */
    int64_t kept[64];
    size_t nk = 0;
    for (int64_t t = 0; t < 60; t++) {
        if (a_present(t) && t % 4 != 0) {
            kept[nk++] = t;
        }
    }
    size_t want = (nk + 4) / 5;
    REQUIRE(g.n == want);
    for (size_t p = 0; p < want; p++) {
        size_t n = p + 1 < want ? 5 : nk - p * 5;
        CHECK_PACKET(g.frames[p], kept + p * 5, n, b_always);
    }
    rv_tbuffer_destroy(b);
}

/* ---- merging, limits, errors ---------------------------------------------------------------- */

static bool b_even_hundreds(int64_t t) {
    return (t / 100) % 2 == 0;
}

static void test_column_union(void) {
    got_t g = {0};
    rv_tbuffer_t *b = make_buffer((rv_tbuffer_opts_t){0}, &g);
    REQUIRE(b);
    /* frames without b between frames with it; one with an extra column "z" */
    CHECK_INT(rv_tbuffer_add(b, make_range(0, 10, 10, true), NULL), RV_OK);
    CHECK_INT(rv_tbuffer_add(b, make_range(100, 10, 10, false), NULL), RV_OK);
    rv_tframe_builder_t *fb = rv_tframe_builder_new();
    int cz = rv_tframe_builder_column(fb, "z", RV_TCOL_STRING);
    int ca = rv_tframe_builder_column(fb, "a", RV_TCOL_DOUBLE);
    int cl = rv_tframe_builder_column(fb, "lap", RV_TCOL_TAG);
    int cb = rv_tframe_builder_column(fb, "b", RV_TCOL_INT64);
    for (int64_t t = 200; t < 210; t++) {
        char lap[24];
        lap_of(t, lap);
        rv_tframe_builder_add_row(fb, t);
        rv_tframe_builder_set_str(fb, cz, "zz", 2);
        if (a_present(t)) {
            rv_tframe_builder_set_double(fb, ca, a_value(t));
        }
        rv_tframe_builder_set_str(fb, cl, lap, strlen(lap));
        rv_tframe_builder_set_int(fb, cb, b_value(t));
    }
    const rv_tframe_t *fz = NULL;
    REQUIRE(rv_tframe_builder_finish(fb, A, 9, &fz) == RV_OK);
    rv_tframe_builder_destroy(fb);
    CHECK_INT(rv_tbuffer_add(b, fz, NULL), RV_OK);
    CHECK_INT(rv_tbuffer_flush(b, NULL), RV_OK);
    REQUIRE(g.n == 1);
    const rv_tframe_t *f = g.frames[0];
    int64_t ts[30];
    seq(ts, 0, 10, 20);
    seq(ts + 20, 200, 1, 10);
    CHECK_PACKET(f, ts, 30, b_even_hundreds);
    REQUIRE(f->column_count == 4);
    CHECK_STR(f->columns[0].name, "a");
    CHECK_STR(f->columns[1].name, "b");
    CHECK_STR(f->columns[2].name, "lap");
    CHECK_STR(f->columns[3].name, "z");
    const rv_tcolumn_t *z = &f->columns[3];
    for (size_t r = 0; r < 30; r++) {
        CHECK(rv_tcolumn_has(z, r) == (r >= 20));
    }
    CHECK(z->v.s[25].len == 2 && memcmp(z->v.s[25].data, "zz", 2) == 0);
    CHECK_INT(f->format_id, 0); /* formats 7 and 9 disagree */
    rv_tbuffer_destroy(b);
}

static void test_type_change(void) {
    got_t g = {0};
    rv_tbuffer_t *b = make_buffer((rv_tbuffer_opts_t){0}, &g);
    REQUIRE(b);
    CHECK_INT(rv_tbuffer_add(b, make_range(0, 1, 4, true), NULL), RV_OK);
    rv_tframe_builder_t *fb = rv_tframe_builder_new();
    int ca = rv_tframe_builder_column(fb, "a", RV_TCOL_INT64);
    rv_tframe_builder_add_row(fb, 50);
    rv_tframe_builder_set_int(fb, ca, 5);
    const rv_tframe_t *fi = NULL;
    REQUIRE(rv_tframe_builder_finish(fb, A, 0, &fi) == RV_OK);
    rv_tframe_builder_destroy(fb);
    CHECK_INT(rv_tbuffer_add(b, fi, NULL), RV_OK);
    REQUIRE(g.n == 1);
    int64_t ts[4] = {0, 1, 2, 3};
    CHECK_PACKET(g.frames[0], ts, 4, b_always);
    CHECK_INT(g.reasons[0], RV_TBUFFER_TYPE_CHANGE);
    CHECK_INT(rv_tbuffer_flush(b, NULL), RV_OK);
    REQUIRE(g.n == 2);
    CHECK_INT(g.frames[1]->rows, 1);
    CHECK_INT(g.frames[1]->columns[0].type, RV_TCOL_INT64);
    CHECK_INT(g.frames[1]->columns[0].v.i[0], 5);
    rv_tbuffer_destroy(b);
}

static void test_limits(void) {
    got_t g = {0};
    rv_tbuffer_t *b = make_buffer((rv_tbuffer_opts_t){.max_rows = 8}, &g);
    REQUIRE(b);
    CHECK_INT(rv_tbuffer_add(b, make_range(0, 1, 20, true), NULL), RV_OK);
    CHECK_INT(g.n, 2);
    CHECK_INT(g.reasons[0], RV_TBUFFER_LIMIT);
    CHECK_INT(rv_tbuffer_state(b).rows, 4);
    rv_tbuffer_destroy(b);
    /* max_bytes: each row's lap tag is 2 bytes ("L0".."L9"); 7 bytes hold 3 rows */
    got_t h = {0};
    b = make_buffer((rv_tbuffer_opts_t){.max_bytes = 7}, &h);
    REQUIRE(b);
    CHECK_INT(rv_tbuffer_add(b, make_range(0, 1, 10, true), NULL), RV_OK);
    CHECK_INT(rv_tbuffer_flush(b, NULL), RV_OK);
    REQUIRE(h.n == 4);
    int64_t ts[4];
    for (int p = 0; p < 4; p++) {
        size_t n = p < 3 ? 3 : 1;
        seq(ts, p * 3, 1, n);
        CHECK_PACKET(h.frames[p], ts, n, b_always);
    }
    CHECK_INT(h.reasons[0], RV_TBUFFER_LIMIT);
    CHECK_INT(rv_tbuffer_state(b).bytes, 0);
    rv_tbuffer_destroy(b);
    /* bad options */
    rv_error_t *err = NULL;
    rv_tbuffer_opts_t bad = {.packet_size = 10, .max_rows = 5, .release = on_release};
    CHECK_INT(rv_tbuffer_new(&bad, &b, &err), RV_ERR_INVALID_ARG);
    CHECK(strstr(rv_error_message(err), "packet_size") != NULL);
    rv_error_destroy(err);
    err = NULL;
    rv_tbuffer_opts_t none = {.packet_size = 10};
    CHECK_INT(rv_tbuffer_new(&none, &b, &err), RV_ERR_INVALID_ARG);
    rv_error_destroy(err);
    CHECK_STR(rv_tbuffer_reason_name(RV_TBUFFER_TIME_SPAN), "time_span");
    CHECK(rv_tbuffer_reason_name((rv_tbuffer_reason_t)99) == NULL);
}

static void test_refusing_callback(void) {
    got_t g = {.refuse = 2};
    rv_tbuffer_t *b = make_buffer((rv_tbuffer_opts_t){.packet_size = 4}, &g);
    REQUIRE(b);
    const rv_tframe_t *f = make_range(0, 1, 10, true);
    rv_error_t *err = NULL;
    CHECK_INT(rv_tbuffer_add(b, f, &err), RV_ERR_USER);
    CHECK(err && strstr(rv_error_message(err), "stays held") != NULL);
    rv_error_destroy(err);
    err = NULL;
    CHECK_INT(rv_tbuffer_taken(b), 4); /* rows 0-3 held in the refused packet */
    CHECK_INT(rv_tbuffer_state(b).rows, 4);
    /* Still refused when offered again: nothing more is taken. */
    CHECK_INT(rv_tbuffer_add_from(b, f, 4, NULL), RV_ERR_USER);
    CHECK_INT(rv_tbuffer_taken(b), 4);
    CHECK_INT(g.n, 0);
    /* Accepted now: the pending packet goes first, then the rest of the frame. */
    CHECK_INT(rv_tbuffer_add_from(b, f, rv_tbuffer_taken(b), NULL), RV_OK);
    CHECK_INT(rv_tbuffer_flush(b, NULL), RV_OK);
    REQUIRE(g.n == 3);
    int64_t ts[4];
    seq(ts, 0, 1, 4);
    CHECK_PACKET(g.frames[0], ts, 4, b_always);
    CHECK_INT(g.reasons[0], RV_TBUFFER_PACKET_SIZE);
    seq(ts, 4, 1, 4);
    CHECK_PACKET(g.frames[1], ts, 4, b_always);
    seq(ts, 8, 1, 2);
    CHECK_PACKET(g.frames[2], ts, 2, b_always);
    rv_tbuffer_destroy(b);
}

static bool reached_1000(void *opaque, const rv_tframe_t *f, const rv_tbuffer_state_t *held) {
    (void)opaque;
    (void)f;
    return held->last_time >= 1000;
}

/* Several conditions at once, each winning in turn. */
static void test_combined_conditions(void) {
    got_t g = {0};
    rv_tbuffer_t *b = make_buffer(
        (rv_tbuffer_opts_t){
            .packet_size = 6, .time_span_ns = 50, .timeout_ms = 100, .trigger_after = reached_1000},
        &g);
    REQUIRE(b);
    g.clock = 0;
    CHECK_INT(rv_tbuffer_add(b, make_range(0, 1, 5, true), NULL), RV_OK);
    g.clock = 10;
    CHECK_INT(rv_tbuffer_add(b, make_range(5, 1, 5, true), NULL), RV_OK); /* 6 rows: release */
    CHECK_INT(rv_tbuffer_state(b).since_ms, 10);
    CHECK_INT(rv_tbuffer_tick(b, 109, NULL), RV_OK);
    CHECK_INT(rv_tbuffer_tick(b, 110, NULL), RV_OK); /* rows 6..9 time out */
    g.clock = 200;
    int64_t f3[] = {100, 120, 140, 160};
    CHECK_INT(rv_tbuffer_add(b, make_frame(f3, 4, true), NULL), RV_OK); /* 160 crosses 50 ns */
    g.clock = 210;
    int64_t f4[] = {1000};
    CHECK_INT(rv_tbuffer_add(b, make_frame(f4, 1, true), NULL), RV_OK);
    REQUIRE(g.n == 5);
    int64_t ts[8];
    seq(ts, 0, 1, 6);
    CHECK_PACKET(g.frames[0], ts, 6, b_always);
    CHECK_INT(g.reasons[0], RV_TBUFFER_PACKET_SIZE);
    seq(ts, 6, 1, 4);
    CHECK_PACKET(g.frames[1], ts, 4, b_always);
    CHECK_INT(g.reasons[1], RV_TBUFFER_TIMEOUT);
    CHECK_PACKET(g.frames[2], f3, 3, b_always);
    CHECK_INT(g.reasons[2], RV_TBUFFER_TIME_SPAN);
    CHECK_PACKET(g.frames[3], f3 + 3, 1, b_always);
    CHECK_INT(g.reasons[3], RV_TBUFFER_TIME_SPAN);
    CHECK_PACKET(g.frames[4], f4, 1, b_always);
    CHECK_INT(g.reasons[4], RV_TBUFFER_TRIGGER_AFTER);
    CHECK_INT(rv_tbuffer_state(b).rows, 0);
    rv_tbuffer_destroy(b);
}

/* ---- combinations against a plain-loop reference -------------------------------------------- */

static uint64_t rng = 0x62756666657231ull;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_random_combined(void) {
    for (int round = 0; round < 40; round++) {
        size_t packet = 1 + rnd() % 20;
        int64_t span = (int64_t)(rnd() % 3 == 0 ? 0 : 5 + rnd() % 60);
        size_t max_rows = 4 + rnd() % 40;
        if (packet > max_rows) {
            packet = max_rows;
        }
        got_t g = {0};
        rv_tbuffer_t *b = make_buffer(
            (rv_tbuffer_opts_t){.packet_size = packet, .time_span_ns = span, .max_rows = max_rows},
            &g);
        REQUIRE(b);
        int64_t all[600];
        size_t total = 0;
        int64_t t = (int64_t)(rnd() % 1000);
        while (total < 500) {
            size_t n = rnd() % 40; /* empty frames too */
            int64_t ts[64];
            for (size_t i = 0; i < n; i++) {
                t += (int64_t)(rnd() % 4); /* repeats allowed */
                ts[i] = t;
                all[total + i] = t;
            }
            total += n;
            CHECK_INT(rv_tbuffer_add(b, make_frame(ts, n, true), NULL), RV_OK);
        }
        CHECK_INT(rv_tbuffer_flush(b, NULL), RV_OK);
        /* reference: walk the rows in order with the documented rules */
        size_t p = 0, start = 0;
        for (size_t i = 0; i <= total; i++) {
            size_t held = i - start;
            bool cut_before =
                i == total ? held > 0 : held > 0 && span > 0 && all[i] - all[start] >= span;
            if (cut_before) {
                REQUIRE(p < g.n);
                CHECK_PACKET(g.frames[p], all + start, held, b_always);
                p++;
                start = i;
            }
            if (i == total) {
                break;
            }
            held = i + 1 - start;
            if (held == packet || held == max_rows) {
                REQUIRE(p < g.n);
                CHECK_PACKET(g.frames[p], all + start, held, b_always);
                CHECK_INT(g.reasons[p], held == packet ? RV_TBUFFER_PACKET_SIZE : RV_TBUFFER_LIMIT);
                p++;
                start = i + 1;
            }
        }
        CHECK_INT(g.n, p);
        rv_tbuffer_destroy(b);
        rv_arena_reset(A);
    }
}

int main(void) {
    A = rv_arena_new(1 << 20);
    RV_RUN(test_packet_size);
    RV_RUN(test_time_span);
    RV_RUN(test_timeout);
    RV_RUN(test_trigger_before);
    RV_RUN(test_trigger_after);
    RV_RUN(test_filter);
    RV_RUN(test_column_union);
    RV_RUN(test_type_change);
    RV_RUN(test_limits);
    RV_RUN(test_refusing_callback);
    RV_RUN(test_combined_conditions);
    RV_RUN(test_random_combined);
    rv_arena_destroy(A);
    return rv_test_finish();
}
