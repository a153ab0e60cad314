/*
 * test_telemetry_proto.c: the telemetry model's builder and its protobuf wire format.
 *
 * Every packet type is encoded and decoded back to an equal packet; the hand-written codec is
 * checked against protoc-c's generated code for proto/telemetry.proto in both directions (what
 * rivulet writes protobuf-c reads field by field, and what protobuf-c packs rivulet reads), and
 * malformed envelopes are rejected with errors that name the field and the byte offset.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto/telemetry.pb-c.h"
#include "rivulet/telemetry.h"
#include "rv_test.h"
#include "test_telemetry_samples.h"

static rv_arena_t *A;

static void test_builder(void) {
    rv_tframe_builder_t *b = rv_tframe_builder_new();
    REQUIRE(b);
    CHECK_INT(rv_tframe_builder_set_double(b, 0, 1.0), RV_ERR_STATE); /* no row yet */
    int x = rv_tframe_builder_column(b, "x", RV_TCOL_DOUBLE);
    CHECK_INT(x, 0);
    CHECK_INT(rv_tframe_builder_column(b, "x", RV_TCOL_INT64), -1); /* type clash */
    CHECK_INT(rv_tframe_builder_column(b, "x", RV_TCOL_DOUBLE), 0);
    CHECK_INT(rv_tframe_builder_column(b, "bad", (rv_tcol_type_t)9), -1);
    for (int r = 0; r < 200; r++) {
        CHECK_INT(rv_tframe_builder_add_row(b, 1000 + r), RV_OK);
        if (r % 3) {
            CHECK_INT(rv_tframe_builder_set_double(b, x, r), RV_OK);
            CHECK_INT(rv_tframe_builder_set_double(b, x, r * 2.0), RV_OK); /* last wins */
        }
    }
    CHECK_INT(rv_tframe_builder_set_int(b, x, 1), RV_ERR_INVALID_ARG);
    CHECK_INT(rv_tframe_builder_set_double(b, 7, 1), RV_ERR_INVALID_ARG);
    int y = rv_tframe_builder_column(b, "y", RV_TCOL_STRING); /* new column at the last row */
    CHECK_INT(rv_tframe_builder_set_str(b, y, "last", 4), RV_OK);
    const rv_tframe_t *f = NULL;
    REQUIRE(rv_tframe_builder_finish(b, A, 7, &f) == RV_OK);
    CHECK_INT(f->rows, 200);
    CHECK_INT(f->format_id, 7);
    CHECK_INT(f->column_count, 2);
    const rv_tcolumn_t *cx = rv_tframe_column(f, "x"), *cy = rv_tframe_column(f, "y");
    REQUIRE(cx && cy && !rv_tframe_column(f, "z"));
    for (int r = 0; r < 200; r++) {
        CHECK_INT(f->timestamps[r], 1000 + r);
        CHECK(rv_tcolumn_has(cx, (size_t)r) == (r % 3 != 0));
        CHECK(cx->v.d[r] == (r % 3 ? r * 2.0 : 0.0));
        CHECK(rv_tcolumn_has(cy, (size_t)r) == (r == 199));
    }
    CHECK(cy->v.s[199].len == 4 && memcmp(cy->v.s[199].data, "last", 4) == 0);
    /* The builder is empty and reusable; a column present in every row has no bitmap. */
    int z = rv_tframe_builder_column(b, "z", RV_TCOL_INT64);
    CHECK_INT(z, 0);
    for (int r = 0; r < 3; r++) {
        rv_tframe_builder_add_row(b, r);
        rv_tframe_builder_set_int(b, z, -r);
    }
    REQUIRE(rv_tframe_builder_finish(b, A, 0, &f) == RV_OK);
    CHECK_INT(f->rows, 3);
    CHECK(f->columns[0].present == NULL);
    CHECK_INT(f->columns[0].v.i[2], -2);
    rv_tframe_builder_destroy(b);
    /* A builder that never had a row finishes as an empty frame (it has no timestamp array to
     * copy: UBSan caught a memcpy from NULL here). */
    b = rv_tframe_builder_new();
    REQUIRE(b != NULL);
    f = NULL;
    REQUIRE(rv_tframe_builder_finish(b, A, 3, &f) == RV_OK);
    CHECK_INT(f->rows, 0);
    CHECK_INT(f->column_count, 0);
    CHECK_INT(f->format_id, 3);
    rv_tframe_builder_destroy(b);
}

static void test_slice_and_append(void) {
    rv_tpacket_t s[SAMPLE_COUNT];
    sample_packets(A, false, s);
    const rv_tframe_t *f = s[9].u.frame; /* rows at 1.7e18, +1 ms, -5, +0.5 ms, +2 ms */
    const rv_tframe_t *sl = NULL;
    REQUIRE(rv_tframe_slice(A, f, 1700000000000000000, 1700000000001500000, &sl) == RV_OK);
    CHECK_INT(sl->rows, 3); /* rows 0, 1 and 3, in order */
    CHECK(sl->timestamps[0] == 1700000000000000000 && sl->timestamps[1] == 1700000000001000000 &&
          sl->timestamps[2] == 1700000000000500000);
    CHECK_INT(sl->column_count, 5);
    const rv_tcolumn_t *speed = rv_tframe_column(sl, "speed");
    CHECK(speed->present == NULL && speed->v.d[0] == -0.5 && speed->v.d[2] == 300.25);
    const rv_tcolumn_t *blob = rv_tframe_column(sl, "blob");
    CHECK(!rv_tcolumn_has(blob, 0) && rv_tcolumn_has(blob, 1) && !rv_tcolumn_has(blob, 2));
    CHECK(blob->v.s[1].len == 3 && memcmp(blob->v.s[1].data, "\x00\xff\x10", 3) == 0);
    CHECK(rv_tcolumn_has(rv_tframe_column(sl, "lap"), 2) &&
          !rv_tcolumn_has(rv_tframe_column(sl, "lap"), 0));
    const rv_tframe_t *none = NULL;
    REQUIRE(rv_tframe_slice(A, f, 0, 0, &none) == RV_OK);
    CHECK(none->rows == 0 && none->column_count == 5);

    /* Appending a frame with one shared column and one new one. */
    rv_tframe_builder_t *b = rv_tframe_builder_new();
    int sp = rv_tframe_builder_column(b, "speed", RV_TCOL_DOUBLE);
    int rpm = rv_tframe_builder_column(b, "rpm", RV_TCOL_INT64);
    rv_tframe_builder_add_row(b, 9);
    rv_tframe_builder_set_double(b, sp, 7.5);
    rv_tframe_builder_set_int(b, rpm, 12000);
    const rv_tframe_t *g = NULL;
    REQUIRE(rv_tframe_builder_finish(b, A, 0, &g) == RV_OK);
    const rv_tframe_t *ap = NULL;
    REQUIRE(rv_tframe_append(A, sl, g, &ap, NULL) == RV_OK);
    CHECK_INT(ap->rows, 4);
    CHECK_INT(ap->column_count, 6);
    CHECK_STR(ap->columns[5].name, "rpm");
    CHECK(ap->timestamps[3] == 9 && rv_tframe_column(ap, "speed")->v.d[3] == 7.5);
    CHECK(!rv_tcolumn_has(rv_tframe_column(ap, "rpm"), 0) &&
          rv_tframe_column(ap, "rpm")->v.i[3] == 12000);
    CHECK(!rv_tcolumn_has(rv_tframe_column(ap, "gear"), 3));
    /* The result encodes and decodes like any frame. */
    rv_tpacket_t pk = {.type = RV_TPACKET_FRAME, .u.frame = ap};
    rv_strbuf_t buf = RV_STRBUF_INIT;
    rv_tpacket_t *back = NULL;
    CHECK(rv_tpacket_encode(&pk, &buf, NULL) == RV_OK &&
          rv_tpacket_decode(A, buf.data, buf.len, &back, NULL) == RV_OK &&
          rv_tpacket_equal(&pk, back));
    rv_strbuf_free(&buf);
    /* A column whose type differs between the frames is refused, by name. */
    rv_tframe_builder_column(b, "gear", RV_TCOL_DOUBLE);
    rv_tframe_builder_add_row(b, 1);
    REQUIRE(rv_tframe_builder_finish(b, A, 0, &g) == RV_OK);
    rv_error_t *err = NULL;
    CHECK_INT(rv_tframe_append(A, f, g, &ap, &err), RV_ERR_INVALID_ARG);
    CHECK(err && strstr(rv_error_message(err), "'gear' is int64 in the first frame and double"));
    rv_error_destroy(err);
    rv_tframe_builder_destroy(b);
}

static void test_round_trip_every_packet(void) {
    rv_tpacket_t s[SAMPLE_COUNT];
    sample_packets(A, true, s);
    rv_strbuf_t buf = RV_STRBUF_INIT;
    for (int i = 0; i < SAMPLE_COUNT; i++) {
        rv_strbuf_clear(&buf);
        rv_error_t *err = NULL;
        CHECK_INT(rv_tpacket_encode(&s[i], &buf, &err), RV_OK);
        rv_tpacket_t *back = NULL;
        rv_err_t e = rv_tpacket_decode(A, buf.data, buf.len, &back, &err);
        CHECK_MSG(e == RV_OK, "%s: %s", rv_tpacket_type_name(s[i].type), rv_error_message(err));
        CHECK_MSG(back && rv_tpacket_equal(&s[i], back), "%s differs after a round trip",
                  rv_tpacket_type_name(s[i].type));
        rv_error_destroy(err);
    }
    rv_strbuf_free(&buf);
}

/* Packs an envelope with protobuf-c into `out`. */
static void pc_pack(const Rivulet__Telemetry__Envelope *env, rv_strbuf_t *out) {
    size_t n = rivulet__telemetry__envelope__get_packed_size(env);
    rv_strbuf_clear(out);
    rv_strbuf_reserve(out, n);
    rivulet__telemetry__envelope__pack(env, (uint8_t *)out->data);
    out->len = n;
}

static void test_protobuf_c_reads_ours(void) {
    rv_tpacket_t s[SAMPLE_COUNT];
    sample_packets(A, true, s);
    rv_strbuf_t buf = RV_STRBUF_INIT;
    for (int i = 0; i < SAMPLE_COUNT; i++) {
        rv_strbuf_clear(&buf);
        REQUIRE(rv_tpacket_encode(&s[i], &buf, NULL) == RV_OK);
        Rivulet__Telemetry__Envelope *env =
            rivulet__telemetry__envelope__unpack(NULL, buf.len, (const uint8_t *)buf.data);
        CHECK_MSG(env != NULL, "protobuf-c rejects our %s", rv_tpacket_type_name(s[i].type));
        if (!env) {
            continue;
        }
        CHECK(env->has_version && env->version == 1);
        CHECK((int)env->packet_case == i + 10);
        if (s[i].stream_id) {
            CHECK_STR(env->stream_id, s[i].stream_id);
        } else {
            CHECK(env->stream_id == NULL);
        }
        switch (s[i].type) {
            case RV_TPACKET_STREAM_PROPERTIES:
                CHECK_STR(env->stream_properties->name, "Silverstone FP1");
                CHECK_INT(env->stream_properties->n_metadata, 3);
                CHECK_STR(env->stream_properties->metadata[1]->value, "Zoë");
                CHECK_STR(env->stream_properties->metadata[2]->value, "");
                CHECK_INT(env->stream_properties->n_parents, 2);
                CHECK(env->stream_properties->has_time_of_recording);
                CHECK_INT(env->stream_properties->time_of_recording, 1700000000123456700);
                break;
            case RV_TPACKET_STREAM_END:
                CHECK_INT(env->stream_end->end_type, RIVULET__TELEMETRY__STREAM_END_TYPE__ABORTED);
                break;
            case RV_TPACKET_PARAMETER_DEFINITIONS: {
                Rivulet__Telemetry__ParameterDefinitions *d = env->parameter_definitions;
                CHECK_INT(d->n_parameters, 3);
                CHECK(d->parameters[0]->has_maximum && d->parameters[0]->maximum == 360.5);
                CHECK(d->parameters[0]->frequency == 1000);
                CHECK(d->parameters[1]->has_minimum && !d->parameters[1]->has_maximum);
                CHECK(d->parameters[2]->name && d->parameters[2]->name[0] == '\0');
                CHECK(d->parameters[2]->unit == NULL);
                break;
            }
            case RV_TPACKET_FRAME: {
                Rivulet__Telemetry__Frame *f = env->frame;
                CHECK_INT(f->n_timestamp_deltas, 5);
                int64_t t = 0;
                for (size_t r = 0; r < f->n_timestamp_deltas; r++) {
                    t += f->timestamp_deltas[r];
                    CHECK_INT(t, s[i].u.frame->timestamps[r]);
                }
                CHECK_INT(f->n_columns, 5);
                Rivulet__Telemetry__Column *speed = f->columns[0];
                CHECK_STR(speed->name, "speed");
                CHECK_INT(speed->type, RIVULET__TELEMETRY__COLUMN_TYPE__DOUBLE);
                CHECK(speed->has_present && speed->present.len == 1 &&
                      speed->present.data[0] == 0x1b); /* rows 0, 1, 3, 4 */
                CHECK_INT(speed->n_doubles, 4);
                CHECK(speed->doubles[1] == 99.75 && isnan(speed->doubles[2]));
                Rivulet__Telemetry__Column *gear = f->columns[1];
                CHECK_INT(gear->n_ints, 4);
                CHECK(gear->ints[0] == INT64_MIN && gear->ints[1] == INT64_MAX);
                CHECK(f->columns[2]->has_present == 0); /* state: every row */
                CHECK_INT(f->columns[2]->n_values, 5);
                CHECK(f->columns[2]->values[1].len == 12);
                CHECK_STR(f->columns[4]->name, "lap");
                CHECK_INT(f->columns[4]->type, RIVULET__TELEMETRY__COLUMN_TYPE__TAG);
                break;
            }
            case RV_TPACKET_PERIODIC_DATA:
                CHECK_INT(env->periodic_data->count, 4);
                CHECK_INT(env->periodic_data->interval, 1000000);
                CHECK_INT(env->periodic_data->format_id, 42);
                CHECK_INT(env->periodic_data->columns[1]->n_doubles, 3);
                break;
            case RV_TPACKET_EVENTS:
                CHECK_INT(env->events->n_events, 2);
                CHECK_STR(env->events->events[0]->tags[1]->key, "driver");
                break;
            case RV_TPACKET_MARKERS:
                CHECK_STR(env->markers->markers[1]->description, "first sector");
                break;
            case RV_TPACKET_COVERAGE:
                CHECK_INT(env->coverage->until, 1700000000999999999);
                break;
            default:
                break;
        }
        rivulet__telemetry__envelope__free_unpacked(env, NULL);
    }
    rv_strbuf_free(&buf);
}

static void test_we_read_protobuf_c(void) {
    /* A frame packed by protobuf-c, with the timestamps unpacked as protobuf allows (repeated
     * scalars may arrive packed or not: protobuf-c writes [packed=true] ones packed, so build
     * the column values both ways over two columns). */
    Rivulet__Telemetry__Envelope env = RIVULET__TELEMETRY__ENVELOPE__INIT;
    Rivulet__Telemetry__Frame frame = RIVULET__TELEMETRY__FRAME__INIT;
    Rivulet__Telemetry__Column c0 = RIVULET__TELEMETRY__COLUMN__INIT;
    Rivulet__Telemetry__Column c1 = RIVULET__TELEMETRY__COLUMN__INIT;
    Rivulet__Telemetry__Column c2 = RIVULET__TELEMETRY__COLUMN__INIT;
    Rivulet__Telemetry__Column *cols[] = {&c0, &c1, &c2};
    int64_t deltas[] = {1000, 10, 10, -5};
    double dv[] = {1.5, -2.5, 3.25, 4.0};
    int64_t iv[] = {-1, 300};
    uint8_t bitmap[] = {0x09}; /* rows 0 and 3 */
    ProtobufCBinaryData strs[] = {{3, (uint8_t *)"abc"}, {0, (uint8_t *)""}};
    uint8_t bitmap2[] = {0x06}; /* rows 1 and 2 */
    env.has_version = 1;
    env.version = 1;
    env.stream_id = "car-9";
    env.packet_case = RIVULET__TELEMETRY__ENVELOPE__PACKET_FRAME;
    env.frame = &frame;
    frame.has_format_id = 1;
    frame.format_id = 3;
    frame.n_timestamp_deltas = 4;
    frame.timestamp_deltas = deltas;
    frame.n_columns = 3;
    frame.columns = cols;
    c0.name = "d";
    c0.has_type = 1;
    c0.type = RIVULET__TELEMETRY__COLUMN_TYPE__DOUBLE;
    c0.n_doubles = 4;
    c0.doubles = dv;
    c1.name = "i";
    c1.has_type = 1;
    c1.type = RIVULET__TELEMETRY__COLUMN_TYPE__INT64;
    c1.has_present = 1;
    c1.present = (ProtobufCBinaryData){1, bitmap};
    c1.n_ints = 2;
    c1.ints = iv;
    c2.name = "s";
    c2.has_type = 1;
    c2.type = RIVULET__TELEMETRY__COLUMN_TYPE__STRING;
    c2.has_present = 1;
    c2.present = (ProtobufCBinaryData){1, bitmap2};
    c2.n_values = 2;
    c2.values = strs;
    rv_strbuf_t buf = RV_STRBUF_INIT;
    pc_pack(&env, &buf);
    rv_tpacket_t *p = NULL;
    rv_error_t *err = NULL;
    REQUIRE(rv_tpacket_decode(A, buf.data, buf.len, &p, &err) == RV_OK);
    CHECK_INT(p->type, RV_TPACKET_FRAME);
    CHECK_STR(p->stream_id, "car-9");
    const rv_tframe_t *f = p->u.frame;
    CHECK_INT(f->format_id, 3);
    CHECK_INT(f->rows, 4);
    CHECK(f->timestamps[0] == 1000 && f->timestamps[1] == 1010 && f->timestamps[2] == 1020 &&
          f->timestamps[3] == 1015);
    CHECK(f->columns[0].present == NULL && f->columns[0].v.d[2] == 3.25);
    CHECK(rv_tcolumn_has(&f->columns[1], 0) && !rv_tcolumn_has(&f->columns[1], 1));
    CHECK(f->columns[1].v.i[0] == -1 && f->columns[1].v.i[3] == 300);
    CHECK(!rv_tcolumn_has(&f->columns[2], 0) && rv_tcolumn_has(&f->columns[2], 2));
    CHECK(f->columns[2].v.s[1].len == 3 && memcmp(f->columns[2].v.s[1].data, "abc", 3) == 0);
    CHECK(f->columns[2].v.s[2].len == 0);

    /* Our encoding of the packet protobuf-c just read is byte-identical to protobuf-c's. */
    rv_strbuf_t ours = RV_STRBUF_INIT;
    REQUIRE(rv_tpacket_encode(p, &ours, NULL) == RV_OK);
    CHECK(ours.len == buf.len && memcmp(ours.data, buf.data, buf.len) == 0);

    /* Other packet types packed by protobuf-c. */
    Rivulet__Telemetry__Envelope e2 = RIVULET__TELEMETRY__ENVELOPE__INIT;
    Rivulet__Telemetry__SessionStart ss = RIVULET__TELEMETRY__SESSION_START__INIT;
    Rivulet__Telemetry__KeyValue kv = RIVULET__TELEMETRY__KEY_VALUE__INIT;
    Rivulet__Telemetry__KeyValue *kvs[] = {&kv};
    kv.key = "track";
    kv.value = "Monza";
    ss.session_id = "S9";
    ss.has_start_time = 1;
    ss.start_time = -42;
    ss.n_details = 1;
    ss.details = kvs;
    e2.has_version = 1;
    e2.version = 1;
    e2.packet_case = RIVULET__TELEMETRY__ENVELOPE__PACKET_SESSION_START;
    e2.session_start = &ss;
    pc_pack(&e2, &buf);
    REQUIRE(rv_tpacket_decode(A, buf.data, buf.len, &p, &err) == RV_OK);
    CHECK_INT(p->type, RV_TPACKET_SESSION_START);
    CHECK(p->stream_id == NULL);
    CHECK_STR(p->u.session.session_id, "S9");
    CHECK_INT(p->u.session.time, -42);
    CHECK_INT(p->u.session.detail_count, 1);
    CHECK_STR(p->u.session.details[0].value, "Monza");
    rv_strbuf_free(&buf);
    rv_strbuf_free(&ours);
    rv_error_destroy(err);
}

/* Decodes and expects failure `code` with `needle` in the message. */
static void expect_bad(const void *data, size_t len, rv_err_t code, const char *needle) {
    rv_tpacket_t *p = (rv_tpacket_t *)1;
    rv_error_t *err = NULL;
    rv_err_t e = rv_tpacket_decode(A, data, len, &p, &err);
    CHECK_MSG(e == code, "expected %s, got %s (%s)", rv_err_name(code), rv_err_name(e),
              rv_error_message(err));
    CHECK(p == NULL);
    CHECK_MSG(err && strstr(rv_error_message(err), needle), "message '%s' lacks '%s'",
              rv_error_message(err), needle);
    rv_error_destroy(err);
}

static void test_malformed(void) {
    rv_tpacket_t s[SAMPLE_COUNT];
    sample_packets(A, false, s);
    rv_strbuf_t buf = RV_STRBUF_INIT;
    REQUIRE(rv_tpacket_encode(&s[9], &buf, NULL) == RV_OK);
    /* Every strict prefix of a frame is rejected, with an offset inside the input. */
    for (size_t n = 0; n < buf.len; n++) {
        rv_tpacket_t *p = NULL;
        rv_error_t *err = NULL;
        rv_err_t e = rv_tpacket_decode(A, buf.data, n, &p, &err);
        CHECK_MSG(e == RV_ERR_PARSE && p == NULL, "prefix %zu of %zu accepted", n, buf.len);
        CHECK(err && strstr(rv_error_message(err), "at byte"));
        rv_error_destroy(err);
    }
    /* Unknown fields are skipped: an extra varint field 7 and a length field 99. */
    rv_strbuf_t more = RV_STRBUF_INIT;
    rv_strbuf_append(&more, "\x38\x05\x9a\x06\x02hi", 7);
    rv_strbuf_append(&more, buf.data, buf.len);
    rv_tpacket_t *p = NULL;
    CHECK_INT(rv_tpacket_decode(A, more.data, more.len, &p, NULL), RV_OK);
    CHECK(p && rv_tpacket_equal(p, &s[9]));

    /* Hand-made envelopes. */
    expect_bad("\x08\x02\xb2\x01\x00", 5, RV_ERR_UNSUPPORTED, "version 2");
    expect_bad("\xb2\x01\x00", 3, RV_ERR_PARSE, "version: missing");
    expect_bad("\x08\x01", 2, RV_ERR_PARSE, "holds no packet");
    expect_bad("\x08\x01\xb2\x01\x00\xb2\x01\x00", 8, RV_ERR_PARSE, "second packet");
    expect_bad("\x08\x01\x12\x02\xc3\x28\xb2\x01\x00", 9, RV_ERR_PARSE,
               "field stream_id: string is not valid UTF-8 at byte 4");
    expect_bad("\x08\x01\x10\x01", 4, RV_ERR_PARSE, "wire type 0 where 2 was expected");
    expect_bad("\x08\x01\x9a\x01\x05\x0a\x01", 7, RV_ERR_PARSE, "runs past the end");
    /* A frame whose column has 1 timestamp and 2 doubles. */
    static const char two_doubles[] = "\x08\x01\x9a\x01\x1c\x12\x01\x02\x1a\x17\x0a\x01\x78"
                                      "\x10\x01\x22\x10\x00\x00\x00\x00\x00\x00\xf0\x3f"
                                      "\x00\x00\x00\x00\x00\x00\xf0\x3f";
    expect_bad(two_doubles, sizeof two_doubles - 1, RV_ERR_PARSE,
               "frame: field columns[0] (x): 2 values for 1 present rows");
    /* A bitmap of the wrong size for 1 row. */
    static const char bitmap[] = "\x08\x01\x9a\x01\x10\x12\x01\x02\x1a\x0b\x0a\x01\x78\x10"
                                 "\x01\x1a\x02\x01\x00\x22\x00";
    expect_bad(bitmap, sizeof bitmap - 1, RV_ERR_PARSE, "presence bitmap of 2 bytes for 1 rows");
    /* A column without a type; a column type out of range; a level out of range. */
    static const char notype[] = "\x08\x01\x9a\x01\x07\x12\x00\x1a\x03\x0a\x01x";
    expect_bad(notype, sizeof notype - 1, RV_ERR_PARSE, "column has no type");
    static const char badtype[] = "\x08\x01\x9a\x01\x06\x1a\x04\x0a\x00\x10\x09";
    expect_bad(badtype, sizeof badtype - 1, RV_ERR_PARSE, "columns.type: unknown value 9");
    static const char badlevel[] = "\x08\x01\x82\x01\x04\x0a\x02\x20\x07";
    expect_bad(badlevel, sizeof badlevel - 1, RV_ERR_PARSE,
               "event_definitions: field events.level: unknown value 7");
    /* Column names are unique within their kind: a tag may share a parameter's name. */
    static const char dup[] = "\x08\x01\x9a\x01\x15\x1a\x05\x0a\x01\x78\x10\x04\x1a\x05\x0a\x01\x78"
                              "\x10\x05\x1a\x05\x0a\x01\x78\x10\x04";
    expect_bad(dup, sizeof dup - 1, RV_ERR_PARSE, "columns[2] (x): a second column named so");
    /* A periodic packet may not declare more rows than the limit (its timestamps are made). */
    expect_bad("\x08\x01\x92\x01\x05\x18\x80\x80\x80\x10", 10, RV_ERR_PARSE,
               "field count: 33554432 rows exceed the limit");
    /* Maps may not repeat a key (the JSON forms could not say it). */
    expect_bad("\x08\x01\x52\x0a\x1a\x03\x0a\x01\x61\x1a\x03\x0a\x01\x61", 14, RV_ERR_PARSE,
               "stream_properties: field metadata: key 'a' appears twice");
    /* Encoding refuses what the format cannot hold. */
    rv_tpacket_t bad = {.type = (rv_tpacket_type_t)99};
    rv_error_t *err = NULL;
    CHECK_INT(rv_tpacket_encode(&bad, &buf, &err), RV_ERR_INVALID_ARG);
    CHECK(err && strstr(rv_error_message(err), "unknown packet type 99"));
    rv_error_destroy(err);
    /* ... nor a frame the decoder would refuse (two columns of one name). */
    static const double vals[] = {1.0};
    static const int64_t ts[] = {5};
    rv_tcolumn_t cols[2] = {{.name = "x", .type = RV_TCOL_DOUBLE, .v.d = vals},
                            {.name = "x", .type = RV_TCOL_DOUBLE, .v.d = vals}};
    rv_tframe_t twice = {.rows = 1, .timestamps = ts, .column_count = 2, .columns = cols};
    rv_tpacket_t fp = {.type = RV_TPACKET_FRAME, .u.frame = &twice};
    size_t before = buf.len;
    err = NULL;
    CHECK_INT(rv_tpacket_encode(&fp, &buf, &err), RV_ERR_INVALID_ARG);
    CHECK(err && strstr(rv_error_message(err), "column 1 ('x') repeats a name"));
    CHECK_INT(buf.len, before); /* nothing half-written is left behind */
    rv_error_destroy(err);
    cols[1].type = RV_TCOL_TAG; /* a tag may share a parameter's name */
    static const rv_buf_t badv[] = {{"\xc3", 1}};
    cols[1].v.s = badv; /* ... but must be UTF-8 */
    err = NULL;
    CHECK_INT(rv_tpacket_encode(&fp, &buf, &err), RV_ERR_INVALID_ARG);
    CHECK(err && strstr(rv_error_message(err), "column 'x' row 0 is not UTF-8"));
    rv_error_destroy(err);
    static const rv_buf_t tagv[] = {{"t", 1}};
    cols[1].v.s = tagv;
    rv_strbuf_clear(&buf);
    CHECK_INT(rv_tpacket_encode(&fp, &buf, NULL), RV_OK);
    p = NULL;
    CHECK_INT(rv_tpacket_decode(A, buf.data, buf.len, &p, NULL), RV_OK);
    CHECK(p && rv_tpacket_equal(p, &fp));
    rv_strbuf_free(&buf);
    rv_strbuf_free(&more);
}

/*
 * Frames whose data format names their columns: the encoder leaves the names out (absent or
 * empty names of non-tag columns in a frame with a format id), protobuf-c still reads the
 * bytes, the decoder gives such columns the empty name, and only a frame with a format id may
 * have them.
 */
static void test_names_left_to_the_format(void) {
    static const int64_t ts[] = {1000, 1010, 1020};
    static const double speed[] = {1.5, 2.5, 3.5};
    static const int64_t gear[] = {3, 4, -5};
    static const rv_buf_t driver[] = {{"ann", 3}, {"bob", 3}, {"cy", 2}};
    rv_tcolumn_t named[3] = {{.name = "speed", .type = RV_TCOL_DOUBLE, .v.d = speed},
                             {.name = "gear", .type = RV_TCOL_INT64, .v.i = gear},
                             {.name = "driver", .type = RV_TCOL_TAG, .v.s = driver}};
    rv_tcolumn_t unnamed[3] = {named[0], named[1], named[2]};
    unnamed[0].name = NULL;
    unnamed[1].name = "";
    rv_tframe_t fn = {
        .format_id = 4, .rows = 3, .timestamps = ts, .column_count = 3, .columns = named};
    rv_tframe_t fu = fn;
    fu.columns = unnamed;
    rv_tpacket_t pn = {.type = RV_TPACKET_FRAME, .stream_id = "s", .u.frame = &fn};
    rv_tpacket_t pu = pn;
    pu.u.frame = &fu;
    rv_strbuf_t a = RV_STRBUF_INIT, b = RV_STRBUF_INIT;
    REQUIRE(rv_tpacket_encode(&pn, &a, NULL) == RV_OK);
    REQUIRE(rv_tpacket_encode(&pu, &b, NULL) == RV_OK);
    /* Exactly the two name fields are gone: key, length and bytes of "speed" and "gear". */
    CHECK_INT(a.len - b.len, (2 + 5) + (2 + 4));
    CHECK(memmem(b.data, b.len, "driver", 6) != NULL); /* tags keep theirs */
    CHECK(memmem(b.data, b.len, "speed", 5) == NULL);
    /* protobuf-c reads it: the names are absent, everything else is there. */
    Rivulet__Telemetry__Envelope *env =
        rivulet__telemetry__envelope__unpack(NULL, b.len, (const uint8_t *)b.data);
    REQUIRE(env && env->frame);
    CHECK_INT(env->frame->format_id, 4);
    CHECK_INT(env->frame->n_columns, 3);
    CHECK(env->frame->columns[0]->name == NULL || *env->frame->columns[0]->name == 0);
    CHECK(env->frame->columns[1]->name == NULL || *env->frame->columns[1]->name == 0);
    CHECK_STR(env->frame->columns[2]->name, "driver");
    CHECK_INT(env->frame->columns[0]->n_doubles, 3);
    CHECK(env->frame->columns[0]->doubles[2] == 3.5);
    CHECK_INT(env->frame->columns[1]->n_ints, 3);
    CHECK_INT(env->frame->columns[1]->ints[2], -5);
    rivulet__telemetry__envelope__free_unpacked(env, NULL);
    /* Decoded: the empty name, values intact; encoding that again gives the same bytes. */
    rv_tpacket_t *p = NULL;
    REQUIRE(rv_tpacket_decode(A, b.data, b.len, &p, NULL) == RV_OK);
    const rv_tframe_t *f = p->u.frame;
    CHECK_INT(f->format_id, 4);
    CHECK_INT(f->column_count, 3);
    CHECK_STR(f->columns[0].name, "");
    CHECK_STR(f->columns[1].name, "");
    CHECK_STR(f->columns[2].name, "driver");
    CHECK(f->columns[0].v.d[1] == 2.5);
    CHECK_INT(f->columns[1].v.i[2], -5);
    rv_strbuf_t c = RV_STRBUF_INIT;
    REQUIRE(rv_tpacket_encode(p, &c, NULL) == RV_OK);
    CHECK(c.len == b.len && memcmp(c.data, b.data, b.len) == 0);
    /* Appending matches unnamed columns by their place in the format, and only within one. */
    const rv_tframe_t *twice = NULL;
    REQUIRE(rv_tframe_append(A, f, f, &twice, NULL) == RV_OK);
    CHECK_INT(twice->rows, 6);
    CHECK_INT(twice->column_count, 3);
    CHECK_INT(twice->format_id, 4);
    CHECK(twice->columns[0].type == RV_TCOL_DOUBLE && twice->columns[0].v.d[4] == 2.5);
    CHECK(twice->columns[1].type == RV_TCOL_INT64 && twice->columns[1].v.i[5] == -5);
    rv_tframe_t other = *f;
    other.format_id = 5;
    rv_error_t *err = NULL;
    CHECK_INT(rv_tframe_append(A, f, &other, &twice, &err), RV_ERR_INVALID_ARG);
    CHECK(err && strstr(rv_error_message(err), "data formats 4 and 5"));
    rv_error_destroy(err);
    /* The tree lists such columns with the empty name and keys their cells by their place in
     * the format; reading the tree back gives the same packet. */
    rv_strbuf_clear(&c);
    REQUIRE(rv_tpacket_write_json(p, &c, NULL) == RV_OK);
    CHECK_STR(c.data,
              "{\"version\":1,\"type\":\"frame\",\"stream_id\":\"s\",\"format_id\":4,"
              "\"columns\":[{\"name\":\"\",\"type\":\"double\"},{\"name\":\"\","
              "\"type\":\"int64\"},{\"name\":\"driver\",\"type\":\"tag\"}],\"rows\":["
              "{\"time\":1000,\"values\":{\"#0\":1.5,\"#1\":3},\"tags\":{\"driver\":\"ann\"}},"
              "{\"time\":1010,\"values\":{\"#0\":2.5,\"#1\":4},\"tags\":{\"driver\":\"bob\"}},"
              "{\"time\":1020,\"values\":{\"#0\":3.5,\"#1\":-5},\"tags\":{\"driver\":\"cy\"}}"
              "]}");
    rv_tpacket_t *back = NULL;
    REQUIRE(rv_tpacket_read_json(A, c.data, c.len, &back, NULL) == RV_OK);
    CHECK(rv_tpacket_equal(back, p));
    /* A column named like an unnamed column's key could not be told apart: refused both ways. */
    unnamed[2].name = "#1";
    unnamed[2].type = RV_TCOL_STRING;
    err = NULL;
    CHECK_INT(rv_tpacket_encode(&pu, &c, &err), RV_ERR_INVALID_ARG);
    CHECK(err && strstr(rv_error_message(err), "column 2's name '#1' is the JSON key of an "
                                               "unnamed column"));
    rv_error_destroy(err);
    unnamed[2].name = "#2"; /* its own position: no clash */
    rv_strbuf_clear(&c);
    CHECK_INT(rv_tpacket_encode(&pu, &c, NULL), RV_OK);
    unnamed[2].name = "driver";
    unnamed[2].type = RV_TCOL_TAG;
    static const char clash[] = "{\"version\":1,\"type\":\"frame\",\"format_id\":1,\"columns\":"
                                "[{\"name\":\"\",\"type\":\"double\"},{\"name\":\"#0\","
                                "\"type\":\"int64\"}],\"rows\":[]}";
    err = NULL;
    CHECK_INT(rv_tpacket_read_json(A, clash, sizeof clash - 1, &back, &err), RV_ERR_PARSE);
    CHECK(err && strstr(rv_error_message(err), "$.columns[1]: a second column named '#0'"));
    rv_error_destroy(err);
    /* The encoder refuses an unnamed column without a format, and an unnamed tag. */
    err = NULL;
    fu.format_id = 0;
    CHECK_INT(rv_tpacket_encode(&pu, &c, &err), RV_ERR_INVALID_ARG);
    CHECK(err && strstr(rv_error_message(err), "column 0 has no name"));
    rv_error_destroy(err);
    fu.format_id = 4;
    unnamed[2].name = NULL;
    err = NULL;
    CHECK_INT(rv_tpacket_encode(&pu, &c, &err), RV_ERR_INVALID_ARG);
    CHECK(err && strstr(rv_error_message(err), "column 2 has no name"));
    rv_error_destroy(err);
    /* The decoder likewise: protobuf-c packs a frame with an unnamed column and no format id,
     * then an unnamed tag in a frame with one. */
    Rivulet__Telemetry__Envelope e = RIVULET__TELEMETRY__ENVELOPE__INIT;
    Rivulet__Telemetry__Frame fr = RIVULET__TELEMETRY__FRAME__INIT;
    Rivulet__Telemetry__Column col = RIVULET__TELEMETRY__COLUMN__INIT;
    Rivulet__Telemetry__Column *colp = &col;
    int64_t delta = 7;
    double one = 1.0;
    e.has_version = 1;
    e.version = 1;
    e.packet_case = RIVULET__TELEMETRY__ENVELOPE__PACKET_FRAME;
    e.frame = &fr;
    fr.n_timestamp_deltas = 1;
    fr.timestamp_deltas = &delta;
    fr.n_columns = 1;
    fr.columns = &colp;
    col.has_type = 1;
    col.type = RIVULET__TELEMETRY__COLUMN_TYPE__DOUBLE;
    col.n_doubles = 1;
    col.doubles = &one;
    pc_pack(&e, &c);
    expect_bad(c.data, c.len, RV_ERR_PARSE,
               "field columns[0]: column has no name and the frame names no data format");
    fr.has_format_id = 1;
    fr.format_id = 2;
    pc_pack(&e, &c);
    p = NULL;
    REQUIRE(rv_tpacket_decode(A, c.data, c.len, &p, NULL) == RV_OK);
    CHECK_STR(p->u.frame->columns[0].name, "");
    col.type = RIVULET__TELEMETRY__COLUMN_TYPE__TAG;
    col.n_doubles = 0;
    ProtobufCBinaryData v = {1, (uint8_t *)"t"};
    col.n_values = 1;
    col.values = &v;
    pc_pack(&e, &c);
    expect_bad(c.data, c.len, RV_ERR_PARSE, "field columns[0]: a tag column has no name");
    /* An unnamed column and a column named "#0", its key in the JSON forms. */
    col.type = RIVULET__TELEMETRY__COLUMN_TYPE__DOUBLE;
    col.n_values = 0;
    col.n_doubles = 1;
    Rivulet__Telemetry__Column col2 = col;
    col2.name = "#0";
    Rivulet__Telemetry__Column *two[] = {&col, &col2};
    fr.n_columns = 2;
    fr.columns = two;
    pc_pack(&e, &c);
    expect_bad(c.data, c.len, RV_ERR_PARSE,
               "field columns[1] (#0): the name is the JSON key of an unnamed column");
    rv_strbuf_free(&a);
    rv_strbuf_free(&b);
    rv_strbuf_free(&c);
}

int main(void) {
    A = rv_arena_new(0);
    RV_RUN(test_builder);
    RV_RUN(test_slice_and_append);
    RV_RUN(test_round_trip_every_packet);
    RV_RUN(test_protobuf_c_reads_ours);
    RV_RUN(test_we_read_protobuf_c);
    RV_RUN(test_malformed);
    RV_RUN(test_names_left_to_the_format);
    rv_arena_destroy(A);
    return rv_test_finish();
}
