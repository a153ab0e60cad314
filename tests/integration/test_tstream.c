/*
 * test_tstream.c: telemetry stream writers, readers, the session catalogue and replay, on the
 * memory: broker and on the embedded log (local: in a temporary directory).
 *
 * A writer sends a full session (properties, session start/info/end, parameter and event
 * definitions, frames of two data formats, events, markers, coverage, end) and a reader fed by
 * a plain consumer must call back with exactly what was written (frames compared cell by cell
 * with rv_tpacket_equal, re-sends silent). A reader joining mid-stream must receive the
 * definitions before any frame it delivers, the frames before them held back and counted. The
 * time rule of re-sends is checked by counting definition records. The catalogue lists three
 * sessions (closed, aborted, live) with their times and counts (the records each writer call
 * sends, by the documented rule). Replay at speed 2 of 2 s of data must take 1 s (-1 %, +5 %: never
 * early, a little late under load), each packet on time within 50 ms, in order;
 * as fast as possible it must not wait; a time range cuts frames. Bad records are skipped and
 * counted with a message naming topic, partition, offset and key, or stop the reader.
 */
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rivulet/rivulet.h"
#include "rv_test.h"

#define T0 1763900000000000000LL /* ns since the epoch */
#define MS 1000000LL

static char url[128];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static rv_broker_t *open_broker(void) {
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "local.fsync.policy", "never", NULL);
    rv_conf_set(conf, "linger.ms", "0", NULL);
    rv_broker_opts_t opts = {.conf = conf};
    rv_error_t *err = NULL;
    rv_broker_t *b = rv_broker_open(url, &opts, &err);
    if (!b) {
        fprintf(stderr, "open %s: %s\n", url, rv_error_message(err));
        rv_error_destroy(err);
    }
    rv_conf_destroy(conf);
    return b;
}

static void make_topic(rv_broker_t *b, const char *topic, int32_t partitions) {
    rv_error_t *err = NULL;
    rv_err_t e = rv_broker_create_topic(b, topic, partitions, NULL, &err);
    CHECK_MSG(e == RV_OK, "create %s: %s", topic, rv_error_message(err));
    rv_error_destroy(err);
}

/* Reads every record of `topic` (all partitions, from `start` in partition 0 and the
 * beginning elsewhere) into `r`, until the ends. */
static void read_all(rv_broker_t *b, const char *topic, int64_t start, rv_treader_t *r) {
    int32_t parts = 0;
    rv_broker_describe_topic(b, topic, &parts, NULL, NULL);
    rv_topic_partition_t tps[8];
    int64_t high[8];
    size_t left = 0;
    for (int32_t p = 0; p < parts && p < 8; p++) {
        int64_t low = 0;
        rv_broker_watermarks(b, topic, p, &low, &high[p], NULL);
        tps[p] = (rv_topic_partition_t){topic, p, p == 0 ? start : RV_OFFSET_BEGINNING};
        left += high[p] > (p == 0 && start >= 0 ? start : low);
    }
    rv_consumer_t *c = rv_consumer_new(b, &(rv_consumer_opts_t){0}, NULL);
    REQUIRE(c);
    rv_consumer_assign(c, tps, (size_t)parts, NULL);
    int64_t deadline = rv_clock_mono_ms() + 10000;
    bool done[8] = {0};
    while (left && rv_clock_mono_ms() < deadline) {
        const rv_record_t *recs = NULL;
        size_t n = 0;
        rv_consumer_poll(c, &recs, 256, &n, 100, NULL);
        for (size_t i = 0; i < n; i++) {
            rv_error_t *err = NULL;
            rv_err_t e = rv_treader_feed(r, &recs[i], &err);
            CHECK_MSG(e == RV_OK, "feed: %s", rv_error_message(err));
            rv_error_destroy(err);
            int32_t p = recs[i].partition;
            if (!done[p] && recs[i].offset + 1 >= high[p]) {
                done[p] = true;
                left--;
            }
        }
    }
    CHECK_INT(left, 0);
    rv_consumer_close(c);
}

/* ---- what a reader saw ------------------------------------------------------------------ */

typedef struct seen_s {
    rv_arena_t *arena;
    char log[4096];
    rv_tpacket_t *frames[64];
    size_t frame_count;
    rv_tpacket_t *events[16];
    size_t event_count;
    rv_tpacket_t *markers[16];
    size_t marker_count;
    rv_tpacket_t *props;
    rv_tpacket_t *params;
    rv_tpacket_t *evdefs;
    rv_tpacket_t *session;
    char errors[1024];
    int definitions_before_frame; /* 1 when definitions came before the first frame */
} seen_t;

static void logf_(seen_t *s, const char *fmt, const char *arg) {
    size_t len = strlen(s->log);
    snprintf(s->log + len, sizeof s->log - len, fmt, arg);
}

static rv_tpacket_t *keep(seen_t *s, const rv_tpacket_t *p) {
    rv_strbuf_t sb = RV_STRBUF_INIT;
    rv_tpacket_t *out = NULL;
    if (rv_tpacket_encode(p, &sb, NULL) == RV_OK) {
        rv_tpacket_decode(s->arena, sb.data, sb.len, &out, NULL);
    }
    rv_strbuf_free(&sb);
    return out;
}

static void on_open(void *o, const rv_tstream_view_t *v) {
    seen_t *s = o;
    logf_(s, "open %s;", v->stream_id);
    if (v->properties) {
        rv_tpacket_t p = {.type = RV_TPACKET_STREAM_PROPERTIES, .stream_id = v->stream_id};
        p.u.properties = *v->properties;
        s->props = keep(s, &p);
    }
}

static void on_properties(void *o, const rv_tstream_view_t *v) {
    seen_t *s = o;
    logf_(s, "properties %s;", v->stream_id);
    rv_tpacket_t p = {.type = RV_TPACKET_STREAM_PROPERTIES, .stream_id = v->stream_id};
    p.u.properties = *v->properties;
    s->props = keep(s, &p);
}

static void on_definitions(void *o, const rv_tstream_view_t *v) {
    seen_t *s = o;
    logf_(s, "definitions %s;", v->stream_id);
    if (s->frame_count == 0) {
        s->definitions_before_frame = 1;
    }
    rv_tpacket_t p = {.type = RV_TPACKET_PARAMETER_DEFINITIONS, .stream_id = v->stream_id};
    p.u.parameters.items = v->parameters;
    p.u.parameters.count = v->parameter_count;
    s->params = keep(s, &p);
    rv_tpacket_t q = {.type = RV_TPACKET_EVENT_DEFINITIONS, .stream_id = v->stream_id};
    q.u.event_defs.items = v->event_defs;
    q.u.event_defs.count = v->event_def_count;
    s->evdefs = keep(s, &q);
}

static void on_session(void *o, const rv_tstream_view_t *v, const rv_tpacket_t *p) {
    seen_t *s = o;
    logf_(s, "%s;", rv_tpacket_type_name(p->type));
    if (v->session) {
        rv_tpacket_t q = {.type = RV_TPACKET_SESSION_START, .stream_id = v->stream_id};
        q.u.session = *v->session;
        s->session = keep(s, &q);
    }
}

static void on_frame(void *o, const rv_tstream_view_t *v, const rv_tframe_t *f) {
    seen_t *s = o;
    logf_(s, "frame %s;", v->stream_id);
    rv_tpacket_t p = {.type = RV_TPACKET_FRAME, .stream_id = v->stream_id};
    p.u.frame = f;
    if (s->frame_count < 64) {
        s->frames[s->frame_count++] = keep(s, &p);
    }
}

static void on_events(void *o, const rv_tstream_view_t *v, const rv_tevent_t *ev, size_t n) {
    seen_t *s = o;
    logf_(s, "events %s;", v->stream_id);
    rv_tpacket_t p = {.type = RV_TPACKET_EVENTS, .stream_id = v->stream_id};
    p.u.events.items = ev;
    p.u.events.count = n;
    if (s->event_count < 16) {
        s->events[s->event_count++] = keep(s, &p);
    }
}

static void on_markers(void *o, const rv_tstream_view_t *v, const rv_tmarker_t *m, size_t n) {
    seen_t *s = o;
    logf_(s, "markers %s;", v->stream_id);
    rv_tpacket_t p = {.type = RV_TPACKET_MARKERS, .stream_id = v->stream_id};
    p.u.markers.items = m;
    p.u.markers.count = n;
    if (s->marker_count < 16) {
        s->markers[s->marker_count++] = keep(s, &p);
    }
}

static void on_coverage(void *o, const rv_tstream_view_t *v, int64_t until) {
    seen_t *s = o;
    (void)until;
    logf_(s, "coverage %s;", v->stream_id);
}

static void on_close(void *o, const rv_tstream_view_t *v, rv_tstream_end_t end) {
    seen_t *s = o;
    (void)v;
    logf_(s, "close %s;",
          end == RV_TSTREAM_CLOSED    ? "closed"
          : end == RV_TSTREAM_ABORTED ? "aborted"
                                      : "terminated");
}

static void on_error(void *o, rv_err_t code, const char *message) {
    seen_t *s = o;
    (void)code;
    size_t len = strlen(s->errors);
    snprintf(s->errors + len, sizeof s->errors - len, "%s\n", message);
}

static rv_treader_callbacks_t callbacks(seen_t *s) {
    return (rv_treader_callbacks_t){
        .opaque = s,
        .on_open = on_open,
        .on_properties = on_properties,
        .on_definitions = on_definitions,
        .on_session = on_session,
        .on_frame = on_frame,
        .on_events = on_events,
        .on_markers = on_markers,
        .on_coverage = on_coverage,
        .on_close = on_close,
        .on_error = on_error,
    };
}

/* ---- a session to write ----------------------------------------------------------------- */

static const rv_tkv_t meta[] = {{"driver", "A. Senna"}, {"car", "7"}};
static const rv_tparameter_def_t params[] = {
    {.id = "speed",
     .name = "Speed",
     .unit = "km/h",
     .has_minimum = true,
     .minimum = 0,
     .has_maximum = true,
     .maximum = 400,
     .location = "/chassis",
     .frequency = 100},
    {.id = "rpm", .name = "Engine speed", .unit = "1/min", .location = "/engine"},
    {.id = "gear", .name = "Gear", .description = "selected gear"},
};
static const rv_tevent_def_t evdefs[] = {
    {.id = "pit", .name = "Pit stop", .level = RV_TLEVEL_INFORMATION},
    {.id = "flag", .name = "Flag", .level = RV_TLEVEL_WARNING, .location = "/race"},
};

/* Frame i: format A (speed, rpm and a lap tag) when i is even, B (speed, gear) when odd. */
static const rv_tframe_t *make_frame(rv_arena_t *a, rv_tframe_builder_t *b, int i) {
    if (i % 2 == 0) {
        int speed = rv_tframe_builder_column(b, "speed", RV_TCOL_DOUBLE);
        int rpm = rv_tframe_builder_column(b, "rpm", RV_TCOL_DOUBLE);
        int lap = rv_tframe_builder_column(b, "lap", RV_TCOL_TAG);
        for (int r = 0; r < 3; r++) {
            rv_tframe_builder_add_row(b, T0 + (int64_t)(i * 3 + r) * 10 * MS);
            rv_tframe_builder_set_double(b, speed, 100.5 + i + r * 0.25);
            if (r != 1) {
                rv_tframe_builder_set_double(b, rpm, 9000 + i * 10 + r);
            }
            rv_tframe_builder_set_str(b, lap, "3", 1);
        }
    } else {
        int speed = rv_tframe_builder_column(b, "speed", RV_TCOL_DOUBLE);
        int gear = rv_tframe_builder_column(b, "gear", RV_TCOL_INT64);
        for (int r = 0; r < 2; r++) {
            rv_tframe_builder_add_row(b, T0 + (int64_t)(i * 3 + r) * 10 * MS);
            rv_tframe_builder_set_double(b, speed, 200.0 - i - r);
            rv_tframe_builder_set_int(b, gear, 4 + r);
        }
    }
    const rv_tframe_t *f = NULL;
    rv_tframe_builder_finish(b, a, 0, &f);
    return f;
}

#define WCHECK(call)                                                                               \
    do {                                                                                           \
        rv_error_t *err_ = NULL;                                                                   \
        rv_err_t e_ = (call);                                                                      \
        CHECK_MSG(e_ == RV_OK, "%s: %s", #call, rv_error_message(err_));                           \
        rv_error_destroy(err_);                                                                    \
    } while (0)
#define ERR (&err_)

static void test_round_trip(void) {
    rv_broker_t *b = open_broker();
    REQUIRE(b);
    make_topic(b, "laps", 3);
    rv_producer_t *prod = rv_producer_new(b, &(rv_producer_opts_t){0}, NULL);
    REQUIRE(prod);
    rv_arena_t *a = rv_arena_new(0);
    rv_tframe_builder_t *fb = rv_tframe_builder_new();
    rv_twriter_opts_t wo = {.redefine_packets = 3}; /* re-sends often: they must stay silent */
    rv_twriter_t *w = rv_twriter_open(prod, "laps", "car-7", &wo, NULL);
    REQUIRE(w);

    rv_tstream_properties_t props = {.name = "Monaco FP1",
                                     .location = "/cars/car-7",
                                     .metadata = meta,
                                     .metadata_count = 2,
                                     .has_time_of_recording = true,
                                     .time_of_recording = T0};
    rv_tsession_t sess = {.session_id = "S-1",
                          .identifier = "FP1",
                          .session_type = "practice",
                          .version = 1,
                          .time = T0};
    rv_tkv_t details[] = {{"track", "Monaco"}};
    rv_tsession_t info = {.session_id = "S-1",
                          .identifier = "FP1 (wet)",
                          .version = 2,
                          .details = details,
                          .detail_count = 1};
    WCHECK(rv_twriter_set_properties(w, &props, ERR));
    WCHECK(rv_twriter_session_start(w, &sess, ERR));
    WCHECK(rv_twriter_define_parameters(w, params, 2, ERR));
    WCHECK(rv_twriter_define_parameters(w, params + 2, 1, ERR)); /* merged by id */
    WCHECK(rv_twriter_define_events(w, evdefs, 2, ERR));
    const rv_tframe_t *frames[6];
    for (int i = 0; i < 6; i++) {
        frames[i] = make_frame(a, fb, i);
        WCHECK(rv_twriter_write_frame(w, frames[i], ERR));
    }
    rv_tkv_t tags[] = {{"lane", "fast"}};
    rv_tevent_t ev[] = {
        {.id = "pit", .time = T0 + 55 * MS, .value = "in", .tags = tags, .tag_count = 1},
        {.id = "flag", .time = T0 + 56 * MS, .value = "yellow"}};
    WCHECK(rv_twriter_write_events(w, ev, 2, ERR));
    rv_tmarker_t mk[] = {
        {.kind = "lap", .label = "Lap 1", .start_time = T0, .end_time = T0 + 90 * MS},
        {.kind = "sector",
         .label = "S1",
         .start_time = T0,
         .end_time = T0 + 30 * MS,
         .description = "first"}};
    WCHECK(rv_twriter_write_markers(w, mk, 2, ERR));
    WCHECK(rv_twriter_session_info(w, &info, ERR));
    WCHECK(rv_twriter_coverage(w, T0 + 200 * MS, ERR));
    WCHECK(rv_twriter_close(w, RV_TSTREAM_ABORTED, T0 + 300 * MS, ERR));
    CHECK(rv_producer_flush(prod, 5000, NULL) == RV_OK);

    seen_t s = {.arena = rv_arena_new(0)};
    rv_treader_callbacks_t cb = callbacks(&s);
    rv_treader_t *r = rv_treader_new(NULL, &cb, NULL);
    REQUIRE(r);
    read_all(b, "laps", RV_OFFSET_BEGINNING, r);
    /* Definitions change three times (parameters, parameters merged, events); re-sends do not. */
    CHECK_STR(s.log,
              "open car-7;session_start;definitions car-7;definitions car-7;"
              "definitions car-7;frame car-7;frame car-7;frame car-7;frame car-7;frame car-7;"
              "frame car-7;events car-7;markers car-7;session_info;coverage car-7;session_end;"
              "close aborted;");
    CHECK(s.definitions_before_frame);
    rv_tpacket_t want = {.type = RV_TPACKET_STREAM_PROPERTIES, .stream_id = "car-7"};
    want.u.properties = props;
    CHECK(s.props && rv_tpacket_equal(s.props, &want));
    want = (rv_tpacket_t){.type = RV_TPACKET_PARAMETER_DEFINITIONS, .stream_id = "car-7"};
    want.u.parameters.items = params;
    want.u.parameters.count = 3;
    CHECK(s.params && rv_tpacket_equal(s.params, &want));
    want = (rv_tpacket_t){.type = RV_TPACKET_EVENT_DEFINITIONS, .stream_id = "car-7"};
    want.u.event_defs.items = evdefs;
    want.u.event_defs.count = 2;
    CHECK(s.evdefs && rv_tpacket_equal(s.evdefs, &want));
    /* The session as the reader keeps it: the start with the info applied. */
    rv_tsession_t merged = sess;
    merged.identifier = "FP1 (wet)";
    merged.version = 2;
    merged.details = details;
    merged.detail_count = 1;
    want = (rv_tpacket_t){.type = RV_TPACKET_SESSION_START, .stream_id = "car-7"};
    want.u.session = merged;
    CHECK(s.session && rv_tpacket_equal(s.session, &want));
    REQUIRE(s.frame_count == 6);
    for (int i = 0; i < 6; i++) {
        rv_tframe_t f = *frames[i];
        f.format_id = i % 2 == 0 ? 1 : 2; /* two formats, numbered in order of first use */
        want = (rv_tpacket_t){.type = RV_TPACKET_FRAME, .stream_id = "car-7"};
        want.u.frame = &f;
        CHECK_MSG(rv_tpacket_equal(s.frames[i], &want), "frame %d differs", i);
    }
    want = (rv_tpacket_t){.type = RV_TPACKET_EVENTS, .stream_id = "car-7"};
    want.u.events.items = ev;
    want.u.events.count = 2;
    CHECK(s.event_count == 1 && rv_tpacket_equal(s.events[0], &want));
    want = (rv_tpacket_t){.type = RV_TPACKET_MARKERS, .stream_id = "car-7"};
    want.u.markers.items = mk;
    want.u.markers.count = 2;
    CHECK(s.marker_count == 1 && rv_tpacket_equal(s.markers[0], &want));
    rv_treader_stats_t st;
    rv_treader_stats(r, &st);
    CHECK_INT(st.bad, 0);
    CHECK_INT(st.undefined, 0);
    CHECK_INT(st.streams, 0); /* closed: forgotten */

    rv_treader_destroy(r);
    rv_arena_destroy(s.arena);
    rv_tframe_builder_destroy(fb);
    rv_arena_destroy(a);
    rv_producer_close(prod);
    rv_broker_close(b);
}

/* The legacy Quix wire: what it can carry comes back the same. */
static void test_quix_wire(void) {
    rv_broker_t *b = open_broker();
    REQUIRE(b);
    make_topic(b, "quix", 1);
    rv_producer_t *prod = rv_producer_new(b, &(rv_producer_opts_t){0}, NULL);
    REQUIRE(prod);
    rv_arena_t *a = rv_arena_new(0);
    rv_tframe_builder_t *fb = rv_tframe_builder_new();
    rv_twriter_t *w =
        rv_twriter_open(prod, "quix", "rig-1", &(rv_twriter_opts_t){.wire = RV_TWIRE_QUIX}, NULL);
    REQUIRE(w);
    rv_tstream_properties_t props = {.name = "Rig", .location = "/rigs"};
    rv_tsession_t sess = {.session_id = "X", .time = T0};
    WCHECK(rv_twriter_set_properties(w, &props, ERR));
    WCHECK(rv_twriter_session_start(w, &sess, ERR)); /* no Quix message: nothing sent */
    WCHECK(rv_twriter_define_parameters(w, params, 1, ERR));
    const rv_tframe_t *f = make_frame(a, fb, 0);
    WCHECK(rv_twriter_write_frame(w, f, ERR));
    WCHECK(rv_twriter_close(w, RV_TSTREAM_CLOSED, 0, ERR));
    CHECK(rv_producer_flush(prod, 5000, NULL) == RV_OK);
    int64_t low = 0, high = 0;
    rv_broker_watermarks(b, "quix", 0, &low, &high, NULL);
    CHECK_INT(high, 4); /* properties, definitions, frame, end */

    seen_t s = {.arena = rv_arena_new(0)};
    rv_treader_callbacks_t cb = callbacks(&s);
    rv_treader_t *r = rv_treader_new(NULL, &cb, NULL);
    REQUIRE(r);
    read_all(b, "quix", RV_OFFSET_BEGINNING, r);
    CHECK_STR(s.log, "open rig-1;definitions rig-1;frame rig-1;close closed;");
    REQUIRE(s.frame_count == 1);
    rv_tpacket_t want = {.type = RV_TPACKET_FRAME, .stream_id = "rig-1"};
    want.u.frame = f;
    CHECK(rv_tpacket_equal(s.frames[0], &want));
    rv_treader_destroy(r);
    rv_arena_destroy(s.arena);
    rv_tframe_builder_destroy(fb);
    rv_arena_destroy(a);
    rv_producer_close(prod);
    rv_broker_close(b);
}

/* Writes 20 one-row frames (10 ms apart) of format (speed) to `topic` partition 0. */
static void write_series(rv_broker_t *b, const char *topic, const char *id,
                         const rv_twriter_opts_t *wo, rv_arena_t *a, const rv_tframe_t **frames) {
    rv_producer_t *prod = rv_producer_new(b, &(rv_producer_opts_t){0}, NULL);
    REQUIRE(prod);
    rv_tframe_builder_t *fb = rv_tframe_builder_new();
    rv_twriter_t *w = rv_twriter_open(prod, topic, id, wo, NULL);
    REQUIRE(w);
    rv_tstream_properties_t props = {.name = id};
    WCHECK(rv_twriter_set_properties(w, &props, ERR));
    WCHECK(rv_twriter_define_parameters(w, params, 1, ERR));
    for (int i = 0; i < 20; i++) {
        int speed = rv_tframe_builder_column(fb, "speed", RV_TCOL_DOUBLE);
        rv_tframe_builder_add_row(fb, T0 + i * 10 * MS);
        rv_tframe_builder_set_double(fb, speed, i);
        rv_tframe_builder_finish(fb, a, 0, &frames[i]);
        WCHECK(rv_twriter_write_frame(w, frames[i], ERR));
    }
    WCHECK(rv_twriter_close(w, RV_TSTREAM_CLOSED, 0, ERR));
    CHECK(rv_producer_flush(prod, 5000, NULL) == RV_OK);
    rv_tframe_builder_destroy(fb);
    rv_producer_close(prod);
}

static size_t count_type(rv_broker_t *b, const char *topic, rv_tpacket_type_t type) {
    rv_consumer_t *c = rv_consumer_new(b, &(rv_consumer_opts_t){0}, NULL);
    rv_topic_partition_t tp = {topic, 0, RV_OFFSET_BEGINNING};
    rv_consumer_assign(c, &tp, 1, NULL);
    int64_t low = 0, high = 0;
    rv_broker_watermarks(b, topic, 0, &low, &high, NULL);
    rv_arena_t *a = rv_arena_new(0);
    size_t count = 0;
    int64_t next = low, deadline = rv_clock_mono_ms() + 10000;
    while (next < high && rv_clock_mono_ms() < deadline) {
        const rv_record_t *recs = NULL;
        size_t n = 0;
        rv_consumer_poll(c, &recs, 256, &n, 100, NULL);
        for (size_t i = 0; i < n; i++) {
            rv_tpacket_t *p = NULL;
            if (rv_tpacket_decode(a, recs[i].value, recs[i].value_len, &p, NULL) == RV_OK &&
                p->type == type) {
                count++;
            }
            next = recs[i].offset + 1;
        }
    }
    rv_arena_destroy(a);
    rv_consumer_close(c);
    return count;
}

/* The frame records of `topic` as they are on the wire. With `compact` their column names are
 * left to the data format (format 1, sent before them), which saves the name's bytes in every
 * frame; without, every frame names its column. */
static void check_frame_names(rv_broker_t *b, const char *topic, size_t want, bool compact) {
    rv_consumer_t *c = rv_consumer_new(b, &(rv_consumer_opts_t){0}, NULL);
    rv_topic_partition_t tp = {topic, 0, RV_OFFSET_BEGINNING};
    rv_consumer_assign(c, &tp, 1, NULL);
    int64_t low = 0, high = 0;
    rv_broker_watermarks(b, topic, 0, &low, &high, NULL);
    rv_arena_t *a = rv_arena_new(0);
    rv_strbuf_t named = RV_STRBUF_INIT;
    size_t frames = 0;
    int64_t next = low, deadline = rv_clock_mono_ms() + 10000;
    while (next < high && rv_clock_mono_ms() < deadline) {
        const rv_record_t *recs = NULL;
        size_t n = 0;
        rv_consumer_poll(c, &recs, 256, &n, 100, NULL);
        for (size_t i = 0; i < n; i++) {
            next = recs[i].offset + 1;
            rv_tpacket_t *p = NULL;
            REQUIRE(rv_tpacket_decode(a, recs[i].value, recs[i].value_len, &p, NULL) == RV_OK);
            if (p->type != RV_TPACKET_FRAME) {
                continue;
            }
            frames++;
            CHECK_INT(p->u.frame->format_id, 1);
            REQUIRE(p->u.frame->column_count == 1);
            if (!compact) {
                CHECK_STR(p->u.frame->columns[0].name, "speed");
                continue;
            }
            CHECK_STR(p->u.frame->columns[0].name, "");
            CHECK(memmem(recs[i].value, recs[i].value_len, "speed", 5) == NULL);
            /* The same frame with its name costs the name's field: key, length, 5 bytes. */
            rv_tcolumn_t col = p->u.frame->columns[0];
            col.name = "speed";
            rv_tframe_t f = *p->u.frame;
            f.columns = &col;
            rv_tpacket_t q = *p;
            q.u.frame = &f;
            rv_strbuf_clear(&named);
            REQUIRE(rv_tpacket_encode(&q, &named, NULL) == RV_OK);
            CHECK_INT(named.len, recs[i].value_len + 7);
        }
    }
    CHECK_INT(frames, want);
    rv_strbuf_free(&named);
    rv_arena_destroy(a);
    rv_consumer_close(c);
}

static void test_late_consumer(void) {
    rv_broker_t *b = open_broker();
    REQUIRE(b);
    make_topic(b, "late", 1);
    rv_arena_t *a = rv_arena_new(0);
    const rv_tframe_t *frames[20];
    /* Every 5 data packets: records are 0 props, 1 defs, 2 format, 3..7 frames 0-4, 8 props,
     * 9 defs, 10 format, 11..15 frames 5-9, ... */
    rv_twriter_opts_t wo = {
        .redefine_packets = 5, .redefine_interval_ns = -1, .compact_frames = true};
    write_series(b, "late", "car-1", &wo, a, frames);
    seen_t s = {.arena = rv_arena_new(0)};
    rv_treader_callbacks_t cb = callbacks(&s);
    rv_treader_t *r = rv_treader_new(NULL, &cb, NULL);
    REQUIRE(r);
    read_all(b, "late", 4, r); /* from frame 1: frames 1-4 come before the next definitions */
    CHECK(s.definitions_before_frame);
    rv_treader_stats_t st;
    rv_treader_stats(r, &st);
    CHECK_INT(st.undefined, 4);
    REQUIRE(s.frame_count == 15);
    for (int i = 0; i < 15; i++) {
        rv_tframe_t f = *frames[5 + i];
        f.format_id = 1;
        rv_tpacket_t want = {.type = RV_TPACKET_FRAME, .stream_id = "car-1"};
        want.u.frame = &f;
        CHECK_MSG(rv_tpacket_equal(s.frames[i], &want), "frame %d differs", 5 + i);
    }
    CHECK(strncmp(s.log, "open car-1;properties car-1;definitions car-1;frame car-1;", 58) == 0);
    CHECK_INT(count_type(b, "late", RV_TPACKET_PARAMETER_DEFINITIONS), 4);
    check_frame_names(b, "late", 20, true);
    /* By default frames keep their names, for records decoded on their own. */
    make_topic(b, "named", 1);
    const rv_tframe_t *named[20];
    write_series(b, "named", "car-2", &(rv_twriter_opts_t){.redefine_packets = 5}, a, named);
    check_frame_names(b, "named", 20, false);
    rv_treader_destroy(r);
    rv_arena_destroy(s.arena);

    /* A late consumer that takes frames before their format (deliver_undefined) gets them
     * unnamed; once the re-sent format arrives, frames have their names again. */
    memset(&s, 0, sizeof s);
    s.arena = rv_arena_new(0);
    cb = callbacks(&s);
    r = rv_treader_new(&(rv_treader_opts_t){.deliver_undefined = true}, &cb, NULL);
    REQUIRE(r);
    read_all(b, "late", 4, r);
    REQUIRE(s.frame_count == 19);
    for (size_t i = 0; i < 19; i++) {
        const rv_tframe_t *f = s.frames[i]->u.frame;
        REQUIRE(f->column_count == 1);
        CHECK_STR(f->columns[0].name, i < 4 ? "" : "speed");
        CHECK(f->columns[0].v.d[0] == (double)(i + 1));
    }
    rv_treader_destroy(r);
    rv_arena_destroy(s.arena);

    /* The time rule alone: every 50 ms of data (frames 10 ms apart, 0..190 ms) re-sends at 50,
     * 100 and 150 ms: four definition records in all. */
    make_topic(b, "bytime", 1);
    rv_twriter_opts_t wt = {.redefine_packets = -1, .redefine_interval_ns = 50 * MS};
    write_series(b, "bytime", "car-2", &wt, a, frames);
    CHECK_INT(count_type(b, "bytime", RV_TPACKET_PARAMETER_DEFINITIONS), 4);
    CHECK_INT(count_type(b, "bytime", RV_TPACKET_DATA_FORMAT), 4);
    rv_arena_destroy(a);
    rv_broker_close(b);
}

typedef struct follow_s {
    rv_producer_t *prod;
    rv_tframe_builder_t *fb;
    int scanned;
    char log[512];
    volatile int stop;
    int64_t deadline;
} follow_t;

static void on_follow_scanned(void *opaque, rv_tcatalogue_t *cat) {
    follow_t *fo = opaque;
    fo->scanned++;
    CHECK_INT(rv_tcatalogue_count(cat), 3);
    fo->deadline = rv_clock_mono_ms() + 10000;
    /* The live session goes on with a new writer: a data format, a frame, then its end. */
    rv_twriter_t *w = rv_twriter_open(fo->prod, "cat", "s-live", NULL, NULL);
    int c = rv_tframe_builder_column(fo->fb, "x", RV_TCOL_INT64);
    for (int row = 0; row < 4; row++) {
        rv_tframe_builder_add_row(fo->fb, T0 + 5000 * MS + row * MS);
        rv_tframe_builder_set_int(fo->fb, c, row);
    }
    WCHECK(rv_twriter_write_builder(w, fo->fb, ERR));
    WCHECK(rv_twriter_close(w, RV_TSTREAM_TERMINATED, 0, ERR));
    CHECK(rv_producer_flush(fo->prod, 5000, NULL) == RV_OK);
}

static bool on_follow_update(void *opaque, const rv_tcatalogue_entry_t *e) {
    follow_t *fo = opaque;
    size_t len = strlen(fo->log);
    snprintf(fo->log + len, sizeof fo->log - len, "%s %s %llu %llu;", e->stream_id,
             !e->ended                              ? "live"
             : e->end_type == RV_TSTREAM_TERMINATED ? "terminated"
                                                    : "ended",
             (unsigned long long)e->records, (unsigned long long)e->frames);
    if (rv_clock_mono_ms() > fo->deadline) {
        fo->stop = 1;
    }
    return !e->ended;
}

static void test_catalogue(void) {
    rv_broker_t *b = open_broker();
    REQUIRE(b);
    make_topic(b, "cat", 2);
    rv_producer_t *prod = rv_producer_new(b, &(rv_producer_opts_t){0}, NULL);
    REQUIRE(prod);
    rv_arena_t *a = rv_arena_new(0);
    rv_tframe_builder_t *fb = rv_tframe_builder_new();
    const char *ids[] = {"s-closed", "s-live", "s-aborted"};
    int64_t starts[] = {T0 + 2000 * MS, T0 + 1000 * MS, T0 + 3000 * MS};
    for (int k = 0; k < 3; k++) {
        rv_twriter_t *w = rv_twriter_open(prod, "cat", ids[k], NULL, NULL);
        REQUIRE(w);
        rv_tstream_properties_t props = {.name = ids[k]};
        rv_tsession_t sess = {.session_id = ids[k], .identifier = "run", .time = starts[k]};
        WCHECK(rv_twriter_set_properties(w, &props, ERR));
        WCHECK(rv_twriter_session_start(w, &sess, ERR));
        for (int i = 0; i < 3; i++) {
            int c = rv_tframe_builder_column(fb, "x", RV_TCOL_INT64);
            for (int row = 0; row < 4; row++) {
                rv_tframe_builder_add_row(fb, starts[k] + (i * 4 + row) * 100 * MS);
                rv_tframe_builder_set_int(fb, c, row);
            }
            WCHECK(rv_twriter_write_builder(w, fb, ERR));
        }
        if (k == 1) {
            rv_twriter_destroy(w); /* left live */
        } else {
            WCHECK(rv_twriter_close(w, k == 0 ? RV_TSTREAM_CLOSED : RV_TSTREAM_ABORTED,
                                    k == 0 ? starts[k] + 1500 * MS : 0, ERR));
        }
    }
    CHECK(rv_producer_flush(prod, 5000, NULL) == RV_OK);
    rv_tcatalogue_t *cat = rv_tcatalogue_new();
    rv_error_t *err = NULL;
    rv_err_t e = rv_tcatalogue_scan(cat, b, "cat", NULL, &err);
    CHECK_MSG(e == RV_OK, "scan: %s", rv_error_message(err));
    rv_error_destroy(err);
    REQUIRE(rv_tcatalogue_count(cat) == 3);
    /* Sorted by start: live (1 s), closed (2 s), aborted (3 s). Records per stream: properties,
     * session start, data format, 3 frames; closed ones add a session end and a stream end. */
    const rv_tcatalogue_entry_t *x = rv_tcatalogue_entry(cat, 0);
    CHECK_STR(x->stream_id, "s-live");
    CHECK(!x->ended && x->has_start && x->start == starts[1]);
    CHECK(x->has_end && x->end == starts[1] + 1100 * MS); /* the latest data time */
    CHECK_INT(x->records, 6);
    CHECK_INT(x->frames, 3);
    CHECK_INT(x->rows, 12);
    x = rv_tcatalogue_entry(cat, 1);
    CHECK_STR(x->stream_id, "s-closed");
    CHECK_STR(x->name, "s-closed");
    CHECK_STR(x->session_id, "s-closed");
    CHECK(x->ended && x->end_type == RV_TSTREAM_CLOSED);
    CHECK(x->end == starts[0] + 1500 * MS);
    CHECK_INT(x->records, 8);
    x = rv_tcatalogue_entry(cat, 2);
    CHECK_STR(x->stream_id, "s-aborted");
    CHECK(x->ended && x->end_type == RV_TSTREAM_ABORTED);
    CHECK(x->end == starts[2] + 1100 * MS); /* session end at the latest data time */
    CHECK(rv_tcatalogue_find(cat, "s-live") == rv_tcatalogue_entry(cat, 0));
    rv_tcatalogue_destroy(cat);

    /* Following: once the first pass is done, the live session gets a frame and its end; the
     * updates must show them as they come (no thread: the writes happen in on_scanned). */
    follow_t fo = {.prod = prod, .fb = fb};
    cat = rv_tcatalogue_new();
    rv_tcatalogue_opts_t opts = {.follow = true,
                                 .on_update = on_follow_update,
                                 .on_scanned = on_follow_scanned,
                                 .opaque = &fo,
                                 .poll_timeout_ms = 50,
                                 .stop = &fo.stop};
    err = NULL;
    e = rv_tcatalogue_scan(cat, b, "cat", &opts, &err);
    CHECK_MSG(e == RV_OK, "follow: %s", rv_error_message(err));
    rv_error_destroy(err);
    CHECK_INT(fo.scanned, 1);
    CHECK_STR(fo.log, "s-live live 7 3;s-live live 8 4;s-live terminated 9 4;");
    x = rv_tcatalogue_find(cat, "s-live");
    CHECK(x && x->ended && x->end_type == RV_TSTREAM_TERMINATED && x->rows == 16);
    rv_tcatalogue_destroy(cat);
    rv_tframe_builder_destroy(fb);
    rv_arena_destroy(a);
    rv_producer_close(prod);
    rv_broker_close(b);
}

/* ---- replay ------------------------------------------------------------------------------ */

typedef struct timing_s {
    int64_t wall[64];
    int64_t data[64];
    size_t n;
    size_t untimed;
} timing_t;

static bool on_replayed(void *o, const rv_tpacket_t *p, int64_t t) {
    timing_t *tm = o;
    if (!t) {
        tm->untimed++;
        return true;
    }
    (void)p;
    if (tm->n < 64) {
        tm->wall[tm->n] = rv_clock_mono_ns();
        tm->data[tm->n++] = t;
    }
    return true;
}

static void test_replay(void) {
    rv_broker_t *b = open_broker();
    REQUIRE(b);
    make_topic(b, "rec", 2);
    make_topic(b, "copy", 1);
    rv_producer_t *prod = rv_producer_new(b, &(rv_producer_opts_t){0}, NULL);
    REQUIRE(prod);
    rv_tframe_builder_t *fb = rv_tframe_builder_new();
    rv_twriter_t *w = rv_twriter_open(prod, "rec", "lap-9", NULL, NULL);
    REQUIRE(w);
    WCHECK(rv_twriter_define_parameters(w, params, 1, ERR));
    for (int i = 0; i <= 20; i++) { /* 2 s of data, a frame every 100 ms */
        int c = rv_tframe_builder_column(fb, "speed", RV_TCOL_DOUBLE);
        rv_tframe_builder_add_row(fb, T0 + i * 100 * MS);
        rv_tframe_builder_set_double(fb, c, i);
        WCHECK(rv_twriter_write_builder(w, fb, ERR));
    }
    WCHECK(rv_twriter_close(w, RV_TSTREAM_CLOSED, 0, ERR));
    CHECK(rv_producer_flush(prod, 5000, NULL) == RV_OK);

    timing_t tm = {0};
    rv_treplay_stats_t st;
    rv_error_t *err = NULL;
    rv_treplay_opts_t o = {.topic = "rec",
                           .stream_id = "lap-9",
                           .speed = 2.0,
                           .on_packet = on_replayed,
                           .opaque = &tm};
    rv_err_t e = rv_treplay_run(b, &o, &st, &err);
    CHECK_MSG(e == RV_OK, "replay: %s", rv_error_message(err));
    rv_error_destroy(err);
    REQUIRE(tm.n == 21);
    double took = (double)(tm.wall[20] - tm.wall[0]) / 1e9;
    fprintf(stderr, "replay: 2 s of data at speed 2 took %.4f s\n", took);
    CHECK_MSG(took > 0.99 && took < 1.05, "2 s of data at speed 2 took %.3f s", took);
    for (size_t i = 1; i < tm.n; i++) {
        CHECK(tm.data[i] == T0 + (int64_t)i * 100 * MS); /* order preserved */
        double due = (double)(tm.data[i] - tm.data[0]) / 2.0;
        double at = (double)(tm.wall[i] - tm.wall[0]);
        CHECK_MSG(at >= due - 1e6 && at < due + 50e6, "packet %zu at %.1f ms, due %.1f ms", i,
                  at / 1e6, due / 1e6);
    }
    CHECK_INT(tm.untimed, 3); /* definitions, data format, stream end */
    CHECK_INT(st.packets, 24);

    /* As fast as possible, into another topic, cut to [0.5 s, 1.5 s). */
    timing_t fast = {0};
    o = (rv_treplay_opts_t){.topic = "rec",
                            .stream_id = "lap-9",
                            .speed = 0,
                            .from = T0 + 500 * MS,
                            .to = T0 + 1500 * MS,
                            .producer = prod,
                            .out_topic = "copy",
                            .on_packet = on_replayed,
                            .opaque = &fast};
    int64_t t0 = rv_clock_mono_ns();
    e = rv_treplay_run(b, &o, &st, NULL);
    CHECK(e == RV_OK);
    CHECK_MSG(rv_clock_mono_ns() - t0 < 900 * MS, "an unpaced replay waited");
    CHECK_INT(fast.n, 10);
    CHECK_INT(st.skipped, 11);
    CHECK_INT(count_type(b, "copy", RV_TPACKET_FRAME), 10);

    CHECK(rv_treplay_run(b, &(rv_treplay_opts_t){.topic = "rec", .stream_id = "nope"}, NULL,
                         NULL) == RV_ERR_NOT_FOUND);
    rv_tframe_builder_destroy(fb);
    rv_producer_close(prod);
    rv_broker_close(b);
}

/* ---- bad records ------------------------------------------------------------------------- */

static void test_bad_records(void) {
    rv_broker_t *b = open_broker();
    REQUIRE(b);
    make_topic(b, "bad", 1);
    rv_producer_t *prod = rv_producer_new(b, &(rv_producer_opts_t){0}, NULL);
    REQUIRE(prod);
    rv_twriter_t *w = rv_twriter_open(prod, "bad", "car-9", NULL, NULL);
    REQUIRE(w);
    rv_tstream_properties_t props = {.name = "nine"};
    WCHECK(rv_twriter_set_properties(w, &props, ERR)); /* offset 0 */
    rv_record_t junk = {.topic = "bad",
                        .partition = 0,
                        .key = "car-9",
                        .key_len = 5,
                        .value = "\x08\x01\x52\x09zz",
                        .value_len = 7};                 /* truncated frame */
    CHECK(rv_producer_send(prod, &junk, NULL) == RV_OK); /* offset 1 */
    rv_record_t nokey = {.topic = "bad", .partition = 0, .value = "x", .value_len = 1};
    CHECK(rv_producer_send(prod, &nokey, NULL) == RV_OK);       /* offset 2 */
    WCHECK(rv_twriter_close(w, RV_TSTREAM_TERMINATED, 0, ERR)); /* offset 3 */
    CHECK(rv_producer_flush(prod, 5000, NULL) == RV_OK);

    seen_t s = {.arena = rv_arena_new(0)};
    rv_treader_callbacks_t cb = callbacks(&s);
    rv_treader_t *r = rv_treader_new(&(rv_treader_opts_t){.on_bad = RV_TREADER_SKIP}, &cb, NULL);
    REQUIRE(r);
    read_all(b, "bad", RV_OFFSET_BEGINNING, r);
    CHECK_STR(s.log, "open car-9;close terminated;");
    rv_treader_stats_t st;
    rv_treader_stats(r, &st);
    CHECK_INT(st.bad, 2);
    CHECK_MSG(strstr(s.errors, "topic 'bad' partition 0 offset 1 key 'car-9': telemetry") != NULL,
              "errors: %s", s.errors);
    CHECK_MSG(strstr(s.errors, "topic 'bad' partition 0 offset 2 key (none): a telemetry record "
                               "needs a key") != NULL,
              "errors: %s", s.errors);
    rv_treader_destroy(r);

    /* Stop: the bad record's error comes back from feed. */
    rv_treader_t *r2 = rv_treader_new(NULL, NULL, NULL);
    rv_error_t *err = NULL;
    CHECK(rv_treader_feed(r2, &junk, &err) == RV_ERR_PARSE);
    CHECK_MSG(err && strstr(rv_error_message(err), "key 'car-9'"), "%s", rv_error_message(err));
    rv_error_destroy(err);
    rv_treader_destroy(r2);

    rv_tcatalogue_t *cat = rv_tcatalogue_new();
    CHECK(rv_tcatalogue_scan(cat, b, "bad", NULL, NULL) == RV_OK);
    const rv_tcatalogue_entry_t *x = rv_tcatalogue_find(cat, "car-9");
    CHECK(x && x->bad == 1 && x->records == 3 && x->ended && x->end_type == RV_TSTREAM_TERMINATED);
    rv_tcatalogue_destroy(cat);
    rv_arena_destroy(s.arena);
    rv_producer_close(prod);
    rv_broker_close(b);
}

/* The reader's bounds: past max_streams the least recently active stream is forgotten. */
static int forgotten;
static void on_forget(void *o, const rv_tstream_view_t *v) {
    (void)o;
    (void)v;
    forgotten++;
}

static void test_bounds(void) {
    rv_treader_callbacks_t cb = {.on_forget = on_forget};
    rv_treader_t *r = rv_treader_new(&(rv_treader_opts_t){.max_streams = 2}, &cb, NULL);
    rv_strbuf_t sb = RV_STRBUF_INIT;
    rv_tpacket_t p = {.type = RV_TPACKET_COVERAGE, .u.coverage_until = 5};
    rv_tpacket_encode(&p, &sb, NULL);
    const char *keys[] = {"a", "b", "c", "a"};
    for (int i = 0; i < 4; i++) {
        rv_record_t rec = {
            .topic = "t", .key = keys[i], .key_len = 1, .value = sb.data, .value_len = sb.len};
        CHECK(rv_treader_feed(r, &rec, NULL) == RV_OK);
    }
    rv_treader_stats_t st;
    rv_treader_stats(r, &st);
    CHECK_INT(st.streams, 2);
    CHECK_INT(st.forgotten, 2); /* c pushed a out, then a pushed b out */
    CHECK_INT(forgotten, 2);
    rv_treader_destroy(r);

    /* Idle streams are forgotten after the timeout. */
    r = rv_treader_new(&(rv_treader_opts_t){.idle_timeout_ms = 20}, &cb, NULL);
    rv_record_t rec = {
        .topic = "t", .key = "a", .key_len = 1, .value = sb.data, .value_len = sb.len};
    CHECK(rv_treader_feed(r, &rec, NULL) == RV_OK);
    rv_treader_expire(r);
    rv_treader_stats(r, &st);
    CHECK_INT(st.streams, 1);
    rv_clock_sleep_ms(40);
    rv_treader_expire(r);
    rv_treader_stats(r, &st);
    CHECK_INT(st.streams, 0);
    CHECK_INT(forgotten, 3);
    rv_strbuf_free(&sb);
    rv_treader_destroy(r);
}

int main(void) {
    char tmpl[] = "/tmp/rv_tstream_XXXXXX";
    const char *urls[2] = {"memory:", NULL};
    if (!mkdtemp(tmpl)) {
        return 1;
    }
    char local[128];
    snprintf(local, sizeof local, "local:%s", tmpl);
    urls[1] = local;
    for (int i = 0; i < 2; i++) {
        snprintf(url, sizeof url, "%s", urls[i]);
        fprintf(stderr, "-- %s\n", url);
        RV_RUN(test_round_trip);
        RV_RUN(test_quix_wire);
        RV_RUN(test_late_consumer);
        RV_RUN(test_catalogue);
        RV_RUN(test_bad_records);
        if (i == 0) {
            RV_RUN(test_replay); /* timed: once is enough */
            RV_RUN(test_bounds);
        }
    }
    nftw(tmpl, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rv_test_finish();
}
