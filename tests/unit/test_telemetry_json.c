/*
 * test_telemetry_json.c: rivulet's JSON shape of telemetry packets, the legacy Quix Streams
 * messages, and the `telemetry` and `quix` serialisers.
 *
 * Every packet type goes through the value tree and through JSON text and comes back equal. The
 * golden files in tests/data/quix were written by hand from the documented Quix message shape:
 * each is read, its contents checked against expectations typed here, written back, and (for
 * the compact ones) compared byte for byte. Malformed input is rejected naming the JSON path.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/serde.h"
#include "rivulet/json.h"
#include "rivulet/telemetry.h"
#include "rv_test.h"
#include "test_telemetry_samples.h"

static rv_arena_t *A;

static char *slurp(const char *name, size_t *len) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/quix/%s", RV_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void test_value_and_json_round_trip(void) {
    rv_tpacket_t s[SAMPLE_COUNT];
    sample_packets(A, false, s);
    rv_strbuf_t text = RV_STRBUF_INIT;
    for (int i = 0; i < SAMPLE_COUNT; i++) {
        const char *name = rv_tpacket_type_name(s[i].type);
        rv_value_t *v = NULL;
        rv_error_t *err = NULL;
        REQUIRE(rv_tpacket_to_value(A, &s[i], &v, &err) == RV_OK);
        CHECK_STR(rv_value_str(rv_value_get_cstr(v, "type"), NULL), name);
        rv_tpacket_t *back = NULL;
        CHECK_MSG(rv_tpacket_from_value(A, v, &back, &err) == RV_OK, "%s: %s", name,
                  rv_error_message(err));
        CHECK_MSG(back && rv_tpacket_equal(&s[i], back), "%s differs through the tree", name);
        rv_strbuf_clear(&text);
        CHECK_INT(rv_tpacket_write_json(&s[i], &text, &err), RV_OK);
        back = NULL;
        CHECK_MSG(rv_tpacket_read_json(A, text.data, text.len, &back, &err) == RV_OK, "%s: %s",
                  name, rv_error_message(err));
        CHECK_MSG(back && rv_tpacket_equal(&s[i], back), "%s differs through JSON text: %s", name,
                  text.data);
        rv_error_destroy(err);
    }
    /* The frame's shape, checked on the text. */
    rv_strbuf_clear(&text);
    REQUIRE(rv_tpacket_write_json(&s[12], &text, NULL) == RV_OK);
    CHECK_STR(text.data, "{\"version\":1,\"type\":\"coverage\",\"stream_id\":\"stream-1\","
                         "\"until\":1700000000999999999}");
    rv_value_t *v = NULL;
    REQUIRE(rv_tpacket_to_value(A, &s[9], &v, NULL) == RV_OK);
    rv_value_t *row2 = rv_value_at(rv_value_get_cstr(v, "rows"), 2);
    CHECK_INT(rv_value_int(rv_value_get_cstr(row2, "time")), -5);
    CHECK(rv_value_get_cstr(rv_value_get_cstr(row2, "values"), "speed") == NULL); /* absent */
    CHECK_INT(rv_value_int(rv_value_get_cstr(rv_value_get_cstr(row2, "values"), "gear")), 2);
    rv_value_t *row4 = rv_value_at(rv_value_get_cstr(v, "rows"), 4);
    CHECK_STR(rv_value_str(rv_value_get_cstr(rv_value_get_cstr(row4, "tags"), "lap"), NULL), "13");
    /* NaN has no JSON spelling: the text writer says so. */
    rv_tpacket_t nan[SAMPLE_COUNT];
    sample_packets(A, true, nan);
    rv_error_t *err = NULL;
    CHECK_INT(rv_tpacket_write_json(&nan[9], &text, &err), RV_ERR_RANGE);
    rv_error_destroy(err);
    rv_strbuf_free(&text);
}

static void expect_json_bad(const char *text, rv_err_t code, const char *needle) {
    rv_tpacket_t *p = NULL;
    rv_error_t *err = NULL;
    rv_err_t e = rv_tpacket_read_json(A, text, strlen(text), &p, &err);
    CHECK_MSG(e == code && p == NULL, "%s: expected %s, got %s", text, rv_err_name(code),
              rv_err_name(e));
    CHECK_MSG(err && strstr(rv_error_message(err), needle), "message '%s' lacks '%s'",
              rv_error_message(err), needle);
    rv_error_destroy(err);
}

static void test_json_malformed(void) {
    expect_json_bad("[1]", RV_ERR_PARSE, "$: expected a telemetry packet object");
    expect_json_bad("{\"type\":\"nope\"}", RV_ERR_PARSE, "$.type: 'nope' is not");
    expect_json_bad("{\"version\":2,\"type\":\"coverage\"}", RV_ERR_UNSUPPORTED, "version 2");
    expect_json_bad("{\"type\":\"coverage\",\"until\":\"x\"}", RV_ERR_PARSE,
                    "$.until: expected an integer, found string");
    expect_json_bad("{\"type\":\"frame\",\"columns\":[{\"name\":\"a\",\"type\":\"double\"}],"
                    "\"rows\":[{\"time\":1,\"values\":{\"a\":\"fast\"}}]}",
                    RV_ERR_PARSE, "$.rows[0].values['a']: a double column cannot hold string");
    expect_json_bad("{\"type\":\"frame\",\"columns\":[],\"rows\":[{\"time\":1,\"values\":"
                    "{\"b\":1}}]}",
                    RV_ERR_PARSE, "$.rows[0].values['b']: no such column");
    expect_json_bad("{\"type\":\"frame\",\"columns\":[{\"name\":\"a\",\"type\":\"float\"}]}",
                    RV_ERR_PARSE, "$.columns[0]: type 'float'");
    expect_json_bad("{\"type\":\"frame\",\"rows\":[{}]}", RV_ERR_PARSE, "$.rows[0].time");
    expect_json_bad("{\"type\":\"event_definitions\",\"events\":[{\"level\":\"loud\"}]}",
                    RV_ERR_PARSE, "$.events[0]: level 'loud'");
    expect_json_bad("{\"type\":\"stream_end\",\"end\":\"later\"}", RV_ERR_PARSE, "$.end");
    expect_json_bad("{\"type\":", RV_ERR_PARSE, "telemetry json: ");
    expect_json_bad("{\"type\":\"frame\",\"columns\":[{\"name\":\"a\",\"type\":\"double\"},"
                    "{\"name\":\"a\",\"type\":\"tag\"},{\"name\":\"a\",\"type\":\"int64\"}]}",
                    RV_ERR_PARSE, "$.columns[2]: a second column named 'a'");
}

/* Reads a golden file, checks it reads back the same after writing, and returns the packet. */
static rv_tpacket_t *golden(const char *name, bool compare_bytes) {
    size_t len = 0;
    char *text = slurp(name, &len);
    CHECK_MSG(text != NULL, "cannot read %s", name);
    if (!text) {
        return NULL;
    }
    rv_tpacket_t *p = NULL;
    rv_error_t *err = NULL;
    rv_err_t e = rv_tpacket_read_quix(A, text, len, &p, &err);
    CHECK_MSG(e == RV_OK, "%s: %s", name, rv_error_message(err));
    rv_error_destroy(err);
    err = NULL;
    if (e != RV_OK) {
        free(text);
        return NULL;
    }
    CHECK(p->stream_id == NULL);
    rv_strbuf_t out = RV_STRBUF_INIT;
    CHECK_MSG(rv_tpacket_write_quix(p, &out, &err) == RV_OK, "%s: %s", name, rv_error_message(err));
    if (compare_bytes) {
        CHECK_MSG(out.len == len && memcmp(out.data, text, len) == 0, "%s:\nwrote %s\nwant  %s",
                  name, out.data, text);
    }
    rv_tpacket_t *again = NULL;
    CHECK(rv_tpacket_read_quix(A, out.data, out.len, &again, NULL) == RV_OK);
    CHECK_MSG(again && rv_tpacket_equal(p, again), "%s: differs after a write and a read", name);
    /* The S and E offsets we wrote frame V's text exactly. */
    rv_value_t *root = NULL;
    if (rv_json_parse(A, out.data, out.len, NULL, &root, NULL, NULL) == RV_OK) {
        int64_t s = rv_value_int(rv_value_get_cstr(root, "S"));
        int64_t en = rv_value_int(rv_value_get_cstr(root, "E"));
        rv_value_t *v = NULL;
        CHECK(s > 0 && en <= (int64_t)out.len &&
              rv_json_parse(A, out.data + s, (size_t)(en - s), NULL, &v, NULL, NULL) == RV_OK &&
              rv_value_equal(v, rv_value_get_cstr(root, "V")));
    }
    rv_error_destroy(err);
    rv_strbuf_free(&out);
    free(text);
    return p;
}

static bool buf_is(rv_buf_t b, const char *s, size_t n) {
    return b.len == n && (n == 0 || memcmp(b.data, s, n) == 0);
}

static void test_quix_golden(void) {
    rv_tpacket_t *p = golden("timeseries.json", true);
    REQUIRE(p && p->type == RV_TPACKET_FRAME);
    const rv_tframe_t *f = p->u.frame;
    CHECK_INT(f->rows, 3);
    CHECK_INT(f->timestamps[2], 1700000000002000000);
    CHECK_INT(f->column_count, 5);
    const rv_tcolumn_t *speed = rv_tframe_column(f, "speed");
    REQUIRE(speed && speed->type == RV_TCOL_DOUBLE);
    CHECK(speed->v.d[0] == 100.5 && !rv_tcolumn_has(speed, 1) && speed->v.d[2] == 102.25);
    const rv_tcolumn_t *state = rv_tframe_column(f, "state");
    REQUIRE(state && state->type == RV_TCOL_STRING);
    CHECK(buf_is(state->v.s[0], "pit", 3) && rv_tcolumn_has(state, 1) &&
          buf_is(state->v.s[1], "", 0));
    CHECK(!rv_tcolumn_has(state, 2));
    const rv_tcolumn_t *blob = rv_tframe_column(f, "blob");
    REQUIRE(blob && blob->type == RV_TCOL_BYTES);
    CHECK(!rv_tcolumn_has(blob, 0) && buf_is(blob->v.s[1], "\x00\xff\x10", 3));
    const rv_tcolumn_t *lap = rv_tframe_column(f, "lap");
    REQUIRE(lap && lap->type == RV_TCOL_TAG && lap->present == NULL);
    CHECK(buf_is(lap->v.s[2], "13", 2));

    p = golden("parameterdata_doc.json", false);
    REQUIRE(p && p->type == RV_TPACKET_FRAME);
    f = p->u.frame;
    CHECK(f->rows == 3 && f->timestamps[0] == 1000010 && f->timestamps[2] == 1000012);
    CHECK(rv_tframe_column(f, "p0")->v.d[1] == 110.0);
    CHECK(buf_is(rv_tframe_column(f, "p1")->v.s[2], "120", 3));
    CHECK(buf_is(rv_tframe_column(f, "p2")->v.s[0], "100", 3)); /* base64 "MTAw" */

    /* The compact codec (JT-PaDa-1): run lists of deltas and of string indexes. */
    p = golden("timeseries_compact.json", false);
    REQUIRE(p && p->type == RV_TPACKET_FRAME);
    f = p->u.frame;
    CHECK_INT(f->rows, 4);
    CHECK(f->timestamps[0] == 1005 && f->timestamps[1] == 1015 && f->timestamps[2] == 1015 &&
          f->timestamps[3] == 1035);
    speed = rv_tframe_column(f, "speed");
    REQUIRE(speed && speed->type == RV_TCOL_DOUBLE);
    CHECK(speed->v.d[0] == 1.5 && !rv_tcolumn_has(speed, 1) && speed->v.d[2] == 2.0 &&
          speed->v.d[3] == 2.5);
    const rv_tcolumn_t *gear = rv_tframe_column(f, "gear");
    REQUIRE(gear && gear->present == NULL);
    CHECK(gear->v.d[0] == 3 && gear->v.d[1] == 3 && gear->v.d[2] == 4 && gear->v.d[3] == 4);
    state = rv_tframe_column(f, "state");
    REQUIRE(state && state->type == RV_TCOL_STRING);
    CHECK(buf_is(state->v.s[0], "pit", 3) && buf_is(state->v.s[1], "pit", 3));
    CHECK(!rv_tcolumn_has(state, 2) && buf_is(state->v.s[3], "out", 3));
    lap = rv_tframe_column(f, "lap");
    REQUIRE(lap && lap->type == RV_TCOL_TAG);
    CHECK(buf_is(lap->v.s[2], "12", 2) && buf_is(lap->v.s[3], "13", 2));
    blob = rv_tframe_column(f, "blob");
    REQUIRE(blob && blob->type == RV_TCOL_BYTES);
    CHECK(!rv_tcolumn_has(blob, 0) && buf_is(blob->v.s[1], "\x00\xff\x10", 3));

    p = golden("bare_timeseries.json", false);
    REQUIRE(p && p->type == RV_TPACKET_FRAME);
    CHECK(p->u.frame->timestamps[1] == 15 && p->u.frame->column_count == 2);
    CHECK(!rv_tcolumn_has(rv_tframe_column(p->u.frame, "x"), 1));

    p = golden("eventdata.json", true);
    REQUIRE(p && p->type == RV_TPACKET_EVENTS && p->u.events.count == 1);
    CHECK_STR(p->u.events.items[0].id, "track_status");
    CHECK_INT(p->u.events.items[0].time, 1700000000500000000);
    CHECK_INT(p->u.events.items[0].tag_count, 2);
    CHECK_STR(p->u.events.items[0].tags[1].value, "2");

    p = golden("eventdata_array.json", true);
    REQUIRE(p && p->type == RV_TPACKET_EVENTS && p->u.events.count == 2);
    CHECK_STR(p->u.events.items[1].tags[0].value, "Zoë");
    CHECK_STR(p->u.events.items[1].value, "");

    p = golden("parameter_definitions.json", true);
    REQUIRE(p && p->type == RV_TPACKET_PARAMETER_DEFINITIONS && p->u.parameters.count == 3);
    const rv_tparameter_def_t *d = p->u.parameters.items;
    /* Root parameters first, then each group depth-first: its own, then its children's. */
    CHECK_STR(d[0].id, "state");
    CHECK(d[0].location == NULL);
    CHECK_STR(d[1].id, "speed");
    CHECK_STR(d[1].location, "/chassis");
    CHECK(d[1].has_maximum && d[1].maximum == 360.5 && d[1].has_minimum && d[1].minimum == 0);
    CHECK_STR(d[1].custom_properties, "{\"colour\":\"red\"}");
    CHECK_STR(d[2].location, "/chassis/gearbox");
    CHECK(d[2].minimum == -1 && d[2].unit == NULL);

    p = golden("event_definitions.json", true);
    REQUIRE(p && p->type == RV_TPACKET_EVENT_DEFINITIONS && p->u.event_defs.count == 3);
    CHECK_STR(p->u.event_defs.items[0].id, "pit_in");
    CHECK_INT(p->u.event_defs.items[1].level, RV_TLEVEL_CRITICAL);
    CHECK_STR(p->u.event_defs.items[2].location, "/flags");
    CHECK_INT(p->u.event_defs.items[2].level, RV_TLEVEL_WARNING);

    p = golden("stream_properties.json", true);
    REQUIRE(p && p->type == RV_TPACKET_STREAM_PROPERTIES);
    CHECK_STR(p->u.properties.name, "Silverstone FP1 car 7");
    CHECK_INT(p->u.properties.metadata_count, 2);
    CHECK_STR(p->u.properties.parents[0], "session-41");
    /* 2023-11-14T22:13:20Z is 1700000000 s after the epoch. */
    CHECK(p->u.properties.has_time_of_recording);
    CHECK_INT(p->u.properties.time_of_recording, 1700000000123456700);

    p = golden("stream_end.json", true);
    REQUIRE(p && p->type == RV_TPACKET_STREAM_END);
    CHECK_INT(p->u.end, RV_TSTREAM_ABORTED);
    p = golden("bare_stream_end.json", false);
    REQUIRE(p && p->type == RV_TPACKET_STREAM_END);
    CHECK_INT(p->u.end, RV_TSTREAM_CLOSED);
}

static void expect_quix_bad(const char *text, rv_err_t code, const char *needle) {
    rv_tpacket_t *p = NULL;
    rv_error_t *err = NULL;
    rv_err_t e = rv_tpacket_read_quix(A, text, strlen(text), &p, &err);
    CHECK_MSG(e == code && p == NULL, "%s: expected %s, got %s", text, rv_err_name(code),
              rv_err_name(e));
    CHECK_MSG(err && strstr(rv_error_message(err), needle), "message '%s' lacks '%s'",
              rv_error_message(err), needle);
    rv_error_destroy(err);
}

static void test_quix_malformed_and_limits(void) {
    expect_quix_bad("{\"C\":\"PB\",\"K\":\"TimeseriesData\",\"V\":\"CAE=\"}", RV_ERR_UNSUPPORTED,
                    "codec 'PB'");
    expect_quix_bad("{\"C\":\"JT-PaDa-1\",\"K\":\"EventData\",\"V\":{}}", RV_ERR_UNSUPPORTED,
                    "JT-PaDa-1 carries time-series data");
    expect_quix_bad("{\"C\":\"JT-PaDa-1\",\"K\":\"TimeseriesData\",\"V\":{\"Timestamps\":[1,1],"
                    "\"Numerics\":{\"x\":[1,[1,2]]}}}",
                    RV_ERR_PARSE, "$.V.Numerics['x']: [1]: values run past the last of 2 rows");
    expect_quix_bad("{\"C\":\"JT-PaDa-1\",\"K\":\"TimeseriesData\",\"V\":{\"Timestamps\":[1],"
                    "\"Tags\":{\"t\":{\"K\":[\"a\"],\"V\":[0,1]}}}}",
                    RV_ERR_PARSE, "$.V.Tags['t'].V: row 0: expected an index into K (below 1)");
    expect_quix_bad("{\"C\":\"JT\",\"K\":\"Unicorn\",\"V\":{}}", RV_ERR_UNSUPPORTED,
                    "model key 'Unicorn'");
    expect_quix_bad("{\"C\":\"JT\",\"K\":\"TimeseriesData\",\"V\":{\"Timestamps\":[1,2],"
                    "\"NumericValues\":{\"x\":[1]}}}",
                    RV_ERR_PARSE, "$.V.NumericValues['x']: expected an array of 2 values");
    expect_quix_bad("{\"K\":\"TimeseriesData\",\"V\":{\"Timestamps\":[1],\"BinaryValues\":"
                    "{\"b\":[\"!!\"]}}}",
                    RV_ERR_PARSE, "$.V.BinaryValues['b']: [0]: not base64");
    expect_quix_bad("{\"K\":\"TimeseriesData\",\"V\":{\"Timestamps\":[\"soon\"]}}", RV_ERR_PARSE,
                    "$.V.Timestamps[0]");
    expect_quix_bad("{\"K\":\"EventData\",\"V\":[]}", RV_ERR_PARSE, "must be an object");
    expect_quix_bad("{\"K\":\"StreamEnd\",\"V\":{\"StreamEndType\":\"Paused\"}}", RV_ERR_PARSE,
                    "StreamEndType: not one of Closed..Terminated");
    expect_quix_bad("{\"K\":\"StreamProperties\",\"V\":{\"TimeOfRecording\":\"yesterday\"}}",
                    RV_ERR_PARSE, "$.V.TimeOfRecording: not an ISO 8601");
    expect_quix_bad("{\"K\":\"ParameterDefinitions\",\"V\":{\"ParameterGroups\":[{\"Name\":"
                    "\"a/b\"}]}}",
                    RV_ERR_PARSE, "$.V.ParameterGroups[0]: a group needs a Name without '/'");
    expect_quix_bad("{\"hello\":1}", RV_ERR_PARSE, "neither a Quix message wrapper");
    expect_quix_bad("{\"K\":\"TimeseriesData\",\"V\":{\"Timestamps\":[1],\"NumericValues\":"
                    "{\"p\":[1]},\"StringValues\":{\"p\":[\"a\"]},\"TagValues\":{\"p\":[\"t\"]}}}",
                    RV_ERR_PARSE, "parameter 'p' appears in two of");
    expect_quix_bad("{\"K\":\"StreamEnd\",\"V\":{},\"S\":\"x\"}", RV_ERR_PARSE, "$.S");
    expect_quix_bad("{", RV_ERR_PARSE, "quix message: ");
    /* A Closed StreamEnd with its default left out, as Newtonsoft writes it. */
    rv_tpacket_t *p = NULL;
    static const char closed[] = "{\"C\":\"JT\",\"K\":\"StreamEnd\",\"V\":{},\"S\":30,\"E\":32}";
    CHECK_INT(rv_tpacket_read_quix(A, closed, strlen(closed), &p, NULL), RV_OK);
    CHECK(p && p->type == RV_TPACKET_STREAM_END && p->u.end == RV_TSTREAM_CLOSED);
    /* Packets Quix has no message for are refused by the writer. */
    rv_tpacket_t s[SAMPLE_COUNT];
    sample_packets(A, false, s);
    rv_strbuf_t out = RV_STRBUF_INIT;
    rv_error_t *err = NULL;
    CHECK_INT(rv_tpacket_write_quix(&s[11], &out, &err), RV_ERR_UNSUPPORTED);
    CHECK(err && strstr(rv_error_message(err), "no message for markers"));
    CHECK_INT(out.len, 0);
    rv_error_destroy(err);
    /* Periodic data becomes TimeseriesData with its computed timestamps. */
    CHECK_INT(rv_tpacket_write_quix(&s[8], &out, NULL), RV_OK);
    CHECK(strstr(out.data, "\"Timestamps\":[1700000000000000000,1700000000001000000,"));
    CHECK(strstr(out.data, "\"throttle\":[0.0,null,0.5,0.75]"));
    rv_strbuf_free(&out);
}

static void test_serialisers(void) {
    const rv__serde_t *tel = rv__serde_find("telemetry"), *quix = rv__serde_find("quix");
    REQUIRE(tel && quix);
    CHECK(strstr(rv__serde_names(), "telemetry") && strstr(rv__serde_names(), "quix"));
    rv_tpacket_t s[SAMPLE_COUNT];
    sample_packets(A, false, s);
    rv_strbuf_t wire = RV_STRBUF_INIT, again = RV_STRBUF_INIT;
    char why[256];
    for (int i = 0; i < SAMPLE_COUNT; i++) {
        rv_strbuf_clear(&wire);
        rv_strbuf_clear(&again);
        REQUIRE(rv_tpacket_encode(&s[i], &wire, NULL) == RV_OK);
        rv_value_t *v = NULL;
        CHECK_INT(tel->decode(A, wire.data, wire.len, 0, &v, why, sizeof why), RV_OK);
        bool tomb = false;
        CHECK_INT(tel->encode(v, &again, &tomb, why, sizeof why), RV_OK);
        CHECK(!tomb && again.len == wire.len && memcmp(again.data, wire.data, wire.len) == 0);
    }
    /* The quix serialiser yields the same tree shape as telemetry. */
    size_t len;
    char *text = slurp("eventdata.json", &len);
    REQUIRE(text);
    rv_value_t *v = NULL;
    CHECK_INT(quix->decode(A, text, len, 0, &v, why, sizeof why), RV_OK);
    CHECK_STR(rv_value_str(rv_value_get_cstr(v, "type"), NULL), "events");
    rv_strbuf_clear(&again);
    bool tomb = false;
    CHECK_INT(quix->encode(v, &again, &tomb, why, sizeof why), RV_OK);
    CHECK(again.len == len && memcmp(again.data, text, len) == 0);
    free(text);
    /* Errors arrive in `why`. */
    CHECK_INT(tel->decode(A, "\x08\x05", 2, 0, &v, why, sizeof why), RV_ERR_UNSUPPORTED);
    CHECK(strstr(why, "version 5") != NULL);
    CHECK_INT(quix->decode(A, "{}", 2, 0, &v, why, sizeof why), RV_ERR_PARSE);
    CHECK(v == NULL && strstr(why, "neither") != NULL);
    rv_value_t *notpacket = rv_value_new_int(A, 3);
    CHECK_INT(tel->encode(notpacket, &again, &tomb, why, sizeof why), RV_ERR_PARSE);
    tomb = false;
    CHECK_INT(tel->encode(rv_value_new_null(A), &again, &tomb, why, sizeof why), RV_OK);
    CHECK(tomb);
    rv_strbuf_free(&wire);
    rv_strbuf_free(&again);
}

/* A wide frame's rows are objects built without lookups (the unique-key builder): they must
 * still answer lookups through their index, take new members and drop old ones, and a frame
 * whose columns repeat a name still merges them (the last wins). */
static void test_wide_rows(void) {
    rv_arena_t *a = rv_arena_new(0);
    rv_tframe_builder_t *b = rv_tframe_builder_new();
    char name[16];
    int col[40];
    for (int c = 0; c < 40; c++) {
        snprintf(name, sizeof name, "ch%02d", c);
        col[c] = rv_tframe_builder_column(b, name, c % 2 ? RV_TCOL_DOUBLE : RV_TCOL_INT64);
    }
    for (int r = 0; r < 3; r++) {
        rv_tframe_builder_add_row(b, 100 + r);
        for (int c = 0; c < 40; c++) {
            if ((r + c) % 7 == 0) {
                continue; /* absent cells */
            }
            if (c % 2) {
                rv_tframe_builder_set_double(b, col[c], r * 100 + c + 0.5);
            } else {
                rv_tframe_builder_set_int(b, col[c], r * 100 + c);
            }
        }
    }
    const rv_tframe_t *f = NULL;
    REQUIRE(rv_tframe_builder_finish(b, a, 0, &f) == RV_OK);
    rv_tpacket_t p = {.type = RV_TPACKET_FRAME, .u.frame = f};
    rv_value_t *v = NULL;
    REQUIRE(rv_tpacket_to_value(a, &p, &v, NULL) == RV_OK);
    for (int r = 0; r < 3; r++) {
        rv_value_t *vals =
            rv_value_get_cstr(rv_value_at(rv_value_get_cstr(v, "rows"), r), "values");
        REQUIRE(vals);
        size_t present = 0;
        for (int c = 39; c >= 0; c--) {
            snprintf(name, sizeof name, "ch%02d", c);
            rv_value_t *x = rv_value_get_cstr(vals, name);
            if ((r + c) % 7 == 0) {
                CHECK_MSG(x == NULL, "row %d %s present", r, name);
                continue;
            }
            present++;
            REQUIRE(x);
            if (c % 2) {
                CHECK(rv_value_double(x) == r * 100 + c + 0.5);
            } else {
                CHECK_INT(rv_value_int(x), r * 100 + c);
            }
        }
        CHECK_INT(rv_value_len(vals), present);
        /* In order of the columns. */
        const char *k0 = NULL;
        rv_value_member_at(vals, 0, &k0, NULL);
        CHECK_STR(k0, r == 0 ? "ch01" : "ch00");
        REQUIRE(rv_value_set(a, vals, "extra", 5, rv_value_new_int(a, 7)) == RV_OK);
        REQUIRE(rv_value_set(a, vals, "ch05", 4, rv_value_new_int(a, -1)) == RV_OK);
        CHECK_INT(rv_value_len(vals), present + 1 + ((r + 5) % 7 == 0)); /* ch05 new in row 2 */
        CHECK_INT(rv_value_int(rv_value_get_cstr(vals, "extra")), 7);
        CHECK_INT(rv_value_int(rv_value_get_cstr(vals, "ch05")), -1);
        CHECK(rv_value_remove(vals, "ch03", 4) == ((r + 3) % 7 != 0));
        CHECK(rv_value_get_cstr(vals, "ch03") == NULL);
        CHECK_INT(rv_value_int(rv_value_get_cstr(vals, "extra")), 7);
    }
    /* Two columns of one name (a frame no decoder accepts, built by hand): the last wins. */
    static const double d1[] = {1.0}, d2[] = {2.0};
    static const int64_t ts[] = {9};
    rv_tcolumn_t twice[2] = {{.name = "x", .type = RV_TCOL_DOUBLE, .v.d = d1},
                             {.name = "x", .type = RV_TCOL_DOUBLE, .v.d = d2}};
    rv_tframe_t tf = {.rows = 1, .timestamps = ts, .column_count = 2, .columns = twice};
    p.u.frame = &tf;
    rv_strbuf_t out = RV_STRBUF_INIT;
    REQUIRE(rv_tpacket_write_json(&p, &out, NULL) == RV_OK);
    CHECK(strstr(out.data, "\"values\":{\"x\":2.0}") != NULL);
    rv_strbuf_free(&out);
    rv_tframe_builder_destroy(b);
    rv_arena_destroy(a);
}

int main(void) {
    A = rv_arena_new(0);
    RV_RUN(test_value_and_json_round_trip);
    RV_RUN(test_json_malformed);
    RV_RUN(test_quix_golden);
    RV_RUN(test_quix_malformed_and_limits);
    RV_RUN(test_serialisers);
    RV_RUN(test_wide_rows);
    rv_arena_destroy(A);
    return rv_test_finish();
}
