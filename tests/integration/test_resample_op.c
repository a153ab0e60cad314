/*
 * test_resample_op.c: rv_df_resample() through the real application runtime, on memory: and
 * local:<tmpdir> (with one and two workers).
 *
 * Two telemetry streams are written with the stream writer (rv_twriter_t) to a 2-partition
 * topic: 1 kHz rows of a double "speed" (absent in every seventh row) and an int64 "rpm", in
 * frames of 37 rows that do not line up with the 100 ms grid, starting off the grid. An
 * application resamples them to 10 Hz (speed mean, rpm mean as "rpm_mean") into an output topic.
 * The test decodes the output and compares every frame row with means computed by plain loops
 * (every grid interval but the last, still open, one), checks keys and timestamps, and checks
 * that the writer's other packets passed through unchanged. The same runs again with frames
 * written with compact_frames (their columns named only by the data format): the operator must
 * name them from the formats it saw pass. Then frames whose data format never passes: their
 * named columns are still resampled, the others not, and the log says so once per stream. A
 * last check: bad options fail the build and rv_app_run() reports it.
 */
/* ctest-labels: threads */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rivulet/rivulet.h"
#include "rv_test.h"

#define NSTREAMS 2
#define NROWS 2050               /* per stream: 2.05 s at 1 kHz */
#define FRAME_ROWS 37            /* rows per written frame */
#define STEP_NS 1000000LL        /* 1 kHz */
#define PERIOD_NS 100000000LL    /* 10 Hz */
#define T0 1700000000003000000LL /* 3 ms past a grid point */

static const char *const ids[NSTREAMS] = {"car-1", "car-2"};
static char g_url[600];
static char g_state[600];
static int g_seq;
static const char *g_threads = "1";
static bool g_compact;        /* write frames with compact_frames */
static int g_format_warnings; /* log lines about a data format not seen */

static double speed_of(int s, int i) {
    return (double)(i % 50) * 0.5 + 100.0 * s;
}
static int64_t rpm_of(int s, int i) {
    return 1000 + (i * 7 + s * 13) % 300;
}
static bool speed_present(int i) {
    return i % 7 != 3;
}

static void on_log(void *opaque, rv_log_level_t level, const char *subsystem, const char *msg) {
    (void)opaque;
    if (strstr(msg, "whose definition has not passed yet")) {
        __atomic_add_fetch(&g_format_warnings, 1, __ATOMIC_RELAXED);
    }
    if (getenv("RV_TEST_LOG") || level <= RV_LOG_ERROR) {
        fprintf(stderr, "  [%s %s] %s\n", rv_log_level_name(level), subsystem, msg);
    }
}

static rv_app_t *mk_app(const char *group) {
    rv_conf_t *conf = rv_conf_new();
    CHECK_INT(rv_conf_set(conf, "auto.offset.reset", "earliest", NULL), RV_OK);
    CHECK_INT(rv_conf_set(conf, "commit.interval.ms", "200", NULL), RV_OK);
    CHECK_INT(rv_conf_set(conf, "state.dir", g_state, NULL), RV_OK);
    CHECK_INT(rv_conf_set(conf, "app.threads", g_threads, NULL), RV_OK);
    rv_error_t *err = NULL;
    rv_app_opts_t opts = {.broker_url = g_url, .group = group, .conf = conf, .log_cb = on_log};
    rv_app_t *app = rv_app_new(&opts, &err);
    CHECK_MSG(app != NULL, "rv_app_new(%s): %s", g_url, rv_error_message(err));
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return app;
}

/* Writes both streams, frame by frame, interleaved. */
static void write_input(rv_app_t *app, const char *topic) {
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(rv_app_broker(app), NULL, &err);
    REQUIRE(p != NULL);
    rv_tframe_builder_t *fb = rv_tframe_builder_new();
    REQUIRE(fb != NULL);
    rv_twriter_t *w[NSTREAMS];
    for (int s = 0; s < NSTREAMS; s++) {
        rv_twriter_opts_t wo = {.compact_frames = g_compact};
        w[s] = rv_twriter_open(p, topic, ids[s], &wo, &err);
        REQUIRE(w[s] != NULL);
    }
    for (int from = 0; from < NROWS; from += FRAME_ROWS) {
        for (int s = 0; s < NSTREAMS; s++) {
            rv_tframe_builder_reset(fb);
            int cs = rv_tframe_builder_column(fb, "speed", RV_TCOL_DOUBLE);
            int cr = rv_tframe_builder_column(fb, "rpm", RV_TCOL_INT64);
            REQUIRE(cs >= 0 && cr >= 0);
            for (int i = from; i < from + FRAME_ROWS && i < NROWS; i++) {
                CHECK_INT(rv_tframe_builder_add_row(fb, T0 + i * STEP_NS), RV_OK);
                if (speed_present(i)) {
                    CHECK_INT(rv_tframe_builder_set_double(fb, cs, speed_of(s, i)), RV_OK);
                }
                CHECK_INT(rv_tframe_builder_set_int(fb, cr, rpm_of(s, i)), RV_OK);
            }
            rv_err_t e = rv_twriter_write_builder(w[s], fb, &err);
            CHECK_MSG(e == RV_OK, "write %s: %s", ids[s], rv_error_message(err));
        }
    }
    for (int s = 0; s < NSTREAMS; s++) {
        CHECK_INT(rv_twriter_close(w[s], RV_TSTREAM_CLOSED, T0 + NROWS * STEP_NS, &err), RV_OK);
    }
    CHECK_INT(rv_producer_flush(p, 10000, &err), RV_OK);
    rv_error_destroy(err);
    rv_tframe_builder_destroy(fb);
    rv_producer_close(p);
}

/* ---- the reference ------------------------------------------------------------------------- */

typedef struct row_s {
    int64_t t;
    bool has_speed;
    double speed, rpm;
} row_t;

#define MAXROWS 64

/* The grid rows of stream `s`: every 100 ms interval holding a row, except the last (open). */
static int reference(int s, row_t *out) {
    int n = 0;
    int64_t first = (T0 / PERIOD_NS) * PERIOD_NS;
    int64_t last = ((T0 + (NROWS - 1) * STEP_NS) / PERIOD_NS) * PERIOD_NS;
    for (int64_t g = first; g < last; g += PERIOD_NS) {
        double ssum = 0, rsum = 0;
        int sn = 0, rn = 0;
        for (int i = 0; i < NROWS; i++) {
            int64_t t = T0 + i * STEP_NS;
            if (t < g || t >= g + PERIOD_NS) {
                continue;
            }
            if (speed_present(i)) {
                ssum += speed_of(s, i);
                sn++;
            }
            rsum += (double)rpm_of(s, i);
            rn++;
        }
        if (rn == 0) {
            continue;
        }
        if (n == MAXROWS) {
            CHECK_MSG(false, "reference: more than %d rows", MAXROWS);
            break;
        }
        out[n++] = (row_t){g, sn > 0, sn ? ssum / sn : 0, rsum / rn};
    }
    return n;
}

/* ---- reading back ---------------------------------------------------------------------------- */

typedef struct got_s {
    row_t rows[NSTREAMS][MAXROWS];
    int n[NSTREAMS];
    int other; /* packets other than frames */
    int frames;
    int bad; /* records that did not decode or did not match their key */
} got_t;

static bool near(double a, double b) {
    return fabs(a - b) <= 1e-9 * (fabs(a) > 1 ? fabs(a) : 1);
}

/* Reads `topic`; with `rows`, takes frame rows as the resampler's output. */
static void read_topic(rv_app_t *app, const char *topic, got_t *g, bool rows) {
    memset(g, 0, sizeof *g);
    rv_broker_t *b = rv_app_broker(app);
    int32_t parts = 0;
    rv_error_t *err = NULL;
    REQUIRE(rv_broker_describe_topic(b, topic, &parts, NULL, &err) == RV_OK);
    rv_consumer_t *c = rv_consumer_new(b, NULL, &err);
    REQUIRE(c != NULL);
    rv_topic_partition_t tps[8];
    int64_t total = 0;
    for (int32_t i = 0; i < parts && i < 8; i++) {
        int64_t lo = 0, hi = 0;
        rv_broker_watermarks(b, topic, i, &lo, &hi, NULL);
        total += hi - lo;
        tps[i] = (rv_topic_partition_t){topic, i, RV_OFFSET_BEGINNING};
    }
    CHECK_INT(rv_consumer_assign(c, tps, (size_t)parts, NULL), RV_OK);
    rv_arena_t *a = rv_arena_new(0);
    int64_t got = 0, end = rv_clock_mono_ms() + 10000;
    while (got < total && rv_clock_mono_ms() < end) {
        const rv_record_t *rs;
        size_t n = 0;
        if (rv_consumer_poll(c, &rs, 256, &n, 50, NULL) != RV_OK) {
            break;
        }
        for (size_t i = 0; i < n; i++, got++) {
            const rv_record_t *r = &rs[i];
            rv_tpacket_t *pk = NULL;
            if (rv_tpacket_decode(a, r->value, r->value_len, &pk, NULL) != RV_OK) {
                g->bad++;
                continue;
            }
            if (pk->type != RV_TPACKET_FRAME) {
                g->other++;
                continue;
            }
            g->frames++;
            if (!rows) {
                continue;
            }
            int s = -1;
            for (int k = 0; k < NSTREAMS; k++) {
                if (pk->stream_id && strcmp(pk->stream_id, ids[k]) == 0 &&
                    r->key_len == strlen(ids[k]) && memcmp(r->key, ids[k], r->key_len) == 0) {
                    s = k;
                }
            }
            const rv_tframe_t *f = pk->u.frame;
            if (s < 0 || f->rows == 0 || r->timestamp_ms != f->timestamps[0] / 1000000) {
                g->bad++;
                continue;
            }
            const rv_tcolumn_t *cs = rv_tframe_column(f, "speed");
            const rv_tcolumn_t *cr = rv_tframe_column(f, "rpm_mean");
            if (!cs || !cr || cs->type != RV_TCOL_DOUBLE || cr->type != RV_TCOL_DOUBLE) {
                g->bad++;
                continue;
            }
            for (size_t j = 0; j < f->rows && g->n[s] < MAXROWS; j++) {
                row_t *o = &g->rows[s][g->n[s]++];
                o->t = f->timestamps[j];
                o->has_speed = rv_tcolumn_has(cs, j);
                o->speed = o->has_speed ? cs->v.d[j] : 0;
                o->rpm = rv_tcolumn_has(cr, j) ? cr->v.d[j] : NAN;
            }
        }
        rv_arena_reset(a);
    }
    CHECK_MSG(got == total, "read %lld of %lld records of %s", (long long)got, (long long)total,
              topic);
    rv_arena_destroy(a);
    rv_consumer_close(c);
    rv_error_destroy(err);
}

/* ---- the tests ---------------------------------------------------------------------------- */

/* A new application (group named after `tag`) and its input topic of `parts` partitions;
 * the input and output topics' names go to `src` and `out` (64 bytes each). */
static rv_app_t *start_case(const char *tag, int32_t parts, char *src, char *out) {
    char group[64];
    int s = ++g_seq;
    snprintf(group, sizeof group, "resample-%s-%d-%d", tag, (int)getpid(), s);
    snprintf(src, 64, "tele-%s-in-%d", tag, s);
    snprintf(out, 64, "tele-%s-out-%d", tag, s);
    rv_app_t *app = mk_app(group);
    if (app) {
        CHECK_INT(rv_broker_create_topic(rv_app_broker(app), src, parts, NULL, NULL), RV_OK);
    }
    return app;
}

static void test_resample(void) {
    char src[64], out[64];
    rv_app_t *app = start_case("all", 2, src, out);
    REQUIRE(app != NULL);
    write_input(app, src);

    rv_topic_opts_t to = {.key_serde = "string", .value_serde = "telemetry", .partitions = 2};
    rv_topic_t *tin = rv_app_topic(app, src, &to, NULL);
    rv_topic_t *tout = rv_app_topic(app, out, &to, NULL);
    REQUIRE(tin && tout);
    rv_tinterp_param_t params[] = {{.name = "speed", .agg = RV_TAGG_MEAN},
                                   {.name = "rpm", .output = "rpm_mean", .agg = RV_TAGG_MEAN}};
    rv_tinterp_opts_t io = {.period_ns = PERIOD_NS, .params = params, .param_count = 2};
    CHECK(rv_df_to_topic(rv_df_resample(rv_app_dataframe(app, tin), &io), tout) != NULL);
    rv_run_opts_t ro = {.until_end = true, .timeout_ms = 60000};
    rv_error_t *err = NULL;
    rv_err_t e = rv_app_run(app, &ro, &err);
    CHECK_MSG(e == RV_OK, "%s: run: %s", g_url, rv_error_message(err));
    rv_error_destroy(err);

    static got_t in, res;
    read_topic(app, src, &in, false);
    read_topic(app, out, &res, true);
    CHECK_INT(res.bad, 0);
    CHECK_INT(in.bad, 0);
    CHECK(in.other > 0);
    CHECK_INT(in.frames, NSTREAMS * ((NROWS + FRAME_ROWS - 1) / FRAME_ROWS));
    CHECK_MSG(res.other == in.other, "%d other packets passed, %d written", res.other, in.other);
    for (int k = 0; k < NSTREAMS; k++) {
        row_t want[MAXROWS];
        int n = reference(k, want);
        CHECK_MSG(res.n[k] == n, "%s on %s: %d rows, expected %d", ids[k], g_url, res.n[k], n);
        int shown = 0;
        for (int i = 0; i < n && i < res.n[k] && shown < 3; i++) {
            const row_t *gr = &res.rows[k][i], *wr = &want[i];
            bool ok = gr->t == wr->t && gr->has_speed == wr->has_speed &&
                      (!wr->has_speed || near(gr->speed, wr->speed)) && near(gr->rpm, wr->rpm);
            if (!ok) {
                CHECK_MSG(false,
                          "%s on %s row %d: got t=%lld speed=%g rpm=%g, want t=%lld "
                          "speed=%g rpm=%g",
                          ids[k], g_url, i, (long long)gr->t, gr->speed, gr->rpm, (long long)wr->t,
                          wr->speed, wr->rpm);
                shown++;
            }
        }
    }
    rv_app_destroy(app);
}

/* Frames of data format 7, whose definition is never sent: a named "speed" column and one the
 * format would name ("gone"). The speed means come out right, "gone" never does, and the log
 * says so once for the stream (not once per frame). */
static void test_format_never_seen(void) {
    char src[64], out[64];
    rv_app_t *app = start_case("nofmt", 1, src, out);
    REQUIRE(app != NULL);
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(rv_app_broker(app), NULL, &err);
    REQUIRE(p != NULL);
    enum { ROWS = 10, FRAMES = 30 }; /* 300 rows at 1 kHz: 3 closed grid intervals of 10 Hz */
    int64_t ts[ROWS];
    double sp[ROWS], gone[ROWS];
    rv_strbuf_t buf = {0};
    for (int fr = 0; fr < FRAMES; fr++) {
        for (int i = 0; i < ROWS; i++) {
            int row = fr * ROWS + i;
            ts[i] = (T0 / PERIOD_NS) * PERIOD_NS + row * STEP_NS;
            sp[i] = speed_of(0, row);
            gone[i] = 1.0;
        }
        rv_tcolumn_t cols[2] = {{.name = "speed", .type = RV_TCOL_DOUBLE, .v.d = sp},
                                {.name = "", .type = RV_TCOL_DOUBLE, .v.d = gone}};
        rv_tframe_t f = {
            .format_id = 7, .rows = ROWS, .timestamps = ts, .column_count = 2, .columns = cols};
        rv_tpacket_t pk = {.type = RV_TPACKET_FRAME, .stream_id = ids[0], .u.frame = &f};
        rv_strbuf_clear(&buf);
        CHECK_INT(rv_tpacket_encode(&pk, &buf, &err), RV_OK);
        rv_record_t r = {.topic = src,
                         .partition = 0,
                         .key = ids[0],
                         .key_len = strlen(ids[0]),
                         .value = buf.data,
                         .value_len = buf.len};
        CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    }
    rv_strbuf_free(&buf);
    CHECK_INT(rv_producer_flush(p, 10000, &err), RV_OK);
    rv_producer_close(p);

    rv_topic_opts_t to = {.key_serde = "string", .value_serde = "telemetry", .partitions = 1};
    rv_topic_t *tin = rv_app_topic(app, src, &to, NULL);
    rv_topic_t *tout = rv_app_topic(app, out, &to, NULL);
    REQUIRE(tin && tout);
    rv_tinterp_param_t params[] = {{.name = "speed", .agg = RV_TAGG_MEAN},
                                   {.name = "gone", .agg = RV_TAGG_MEAN}};
    rv_tinterp_opts_t io = {.period_ns = PERIOD_NS, .params = params, .param_count = 2};
    CHECK(rv_df_to_topic(rv_df_resample(rv_app_dataframe(app, tin), &io), tout) != NULL);
    g_format_warnings = 0;
    rv_run_opts_t ro = {.until_end = true, .timeout_ms = 60000};
    CHECK_MSG(rv_app_run(app, &ro, &err) == RV_OK, "run: %s", rv_error_message(err));
    CHECK_INT(__atomic_load_n(&g_format_warnings, __ATOMIC_RELAXED), 1);

    /* Read the output back: 2 closed intervals (the third is still open at the end). */
    rv_consumer_t *c = rv_consumer_new(rv_app_broker(app), NULL, &err);
    REQUIRE(c != NULL);
    rv_topic_partition_t tp = {out, 0, RV_OFFSET_BEGINNING};
    CHECK_INT(rv_consumer_assign(c, &tp, 1, NULL), RV_OK);
    rv_arena_t *a = rv_arena_new(0);
    int grid = 0, with_gone = 0, bad = 0;
    for (int idle = 0; idle < 5;) {
        const rv_record_t *rs;
        size_t n = 0;
        if (rv_consumer_poll(c, &rs, 64, &n, 50, NULL) != RV_OK || n == 0) {
            idle++;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            rv_tpacket_t *pk = NULL;
            if (rv_tpacket_decode(a, rs[i].value, rs[i].value_len, &pk, NULL) != RV_OK ||
                pk->type != RV_TPACKET_FRAME) {
                bad++;
                continue;
            }
            const rv_tframe_t *f = pk->u.frame;
            const rv_tcolumn_t *cs = rv_tframe_column(f, "speed");
            const rv_tcolumn_t *cg = rv_tframe_column(f, "gone");
            for (size_t j = 0; cs && j < f->rows; j++, grid++) {
                double want = 0;
                int k0 = (int)((f->timestamps[j] - (T0 / PERIOD_NS) * PERIOD_NS) / STEP_NS);
                for (int k = k0; k < k0 + 100; k++) {
                    want += speed_of(0, k) / 100.0;
                }
                CHECK_MSG(rv_tcolumn_has(cs, j) && near(cs->v.d[j], want),
                          "grid row %d: speed %g, want %g", grid, cs->v.d[j], want);
                with_gone += cg && rv_tcolumn_has(cg, j);
            }
            bad += !cs;
        }
        rv_arena_reset(a);
    }
    CHECK_INT(bad, 0);
    CHECK_INT(grid, 2);
    CHECK_INT(with_gone, 0);
    rv_arena_destroy(a);
    rv_consumer_close(c);
    rv_error_destroy(err);
    rv_app_destroy(app);
}

static void test_bad_options(void) {
    rv_app_t *app = mk_app("resample-bad");
    REQUIRE(app != NULL);
    rv_topic_opts_t to = {.key_serde = "string", .value_serde = "telemetry", .partitions = 1};
    rv_topic_t *tin = rv_app_topic(app, "tele-bad", &to, NULL);
    rv_tinterp_param_t params[] = {{.name = "speed", .agg = RV_TAGG_MEAN}};
    rv_tinterp_opts_t io = {.period_ns = 0, .params = params, .param_count = 1};
    CHECK(rv_df_resample(rv_app_dataframe(app, tin), &io) == NULL);
    CHECK(rv_df_resample(NULL, &io) == NULL);
    rv_error_t *err = NULL;
    rv_run_opts_t ro = {.until_end = true, .timeout_ms = 5000};
    CHECK_INT(rv_app_run(app, &ro, &err), RV_ERR_INVALID_ARG);
    const char *msg = rv_error_message(err);
    CHECK_MSG(msg && strstr(msg, "resample"), "message: %s", msg ? msg : "(none)");
    rv_error_destroy(err);
    rv_app_destroy(app);
}

int main(void) {
    char dir[] = "/tmp/rv-resample-op-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g_url, sizeof g_url, "memory:");
    snprintf(g_state, sizeof g_state, "%s/state0", dir);
    fprintf(stderr, "-- memory\n");
    RV_RUN(test_resample);
    RV_RUN(test_bad_options);
    snprintf(g_url, sizeof g_url, "local:%s/log", dir);
    snprintf(g_state, sizeof g_state, "%s/state1", dir);
    fprintf(stderr, "-- local\n");
    RV_RUN(test_resample);
    g_threads = "2";
    fprintf(stderr, "-- local, 2 workers\n");
    RV_RUN(test_resample);
    g_compact = true;
    fprintf(stderr, "-- local, 2 workers, compact frames\n");
    RV_RUN(test_resample);
    g_threads = "1";
    snprintf(g_url, sizeof g_url, "memory:");
    fprintf(stderr, "-- memory, compact frames\n");
    RV_RUN(test_resample);
    RV_RUN(test_format_never_seen);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    return rv_test_finish();
}
