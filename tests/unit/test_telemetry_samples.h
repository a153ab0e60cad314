/*
 * test_telemetry_samples.h: one packet of every telemetry type, for the codec tests.
 *
 * Built by hand in an arena, with the awkward cases each encoding must keep: absent against
 * empty strings, cells missing from some rows, negative and out-of-order timestamps, int64
 * extremes, non-ASCII text and binary bytes. `with_nan` adds a NaN cell, which the JSON forms
 * cannot spell.
 */
#ifndef TEST_TELEMETRY_SAMPLES_H
#define TEST_TELEMETRY_SAMPLES_H

#include <math.h>
#include <string.h>

#include "rivulet/telemetry.h"

#define SAMPLE_COUNT 13

static const rv_tkv_t sample_kv[] = {{"car", "car-7"}, {"driver", "Zoë"}, {"empty", ""}};
static const char *const sample_parents[] = {"parent-a", "parent-b"};

/* A frame of 5 rows with every column type; row 2 has no speed, row 4 no gear. */
static const rv_tframe_t *sample_frame(rv_arena_t *a, bool with_nan, uint32_t format_id) {
    rv_tframe_builder_t *b = rv_tframe_builder_new();
    int speed = rv_tframe_builder_column(b, "speed", RV_TCOL_DOUBLE);
    int gear = rv_tframe_builder_column(b, "gear", RV_TCOL_INT64);
    int state = rv_tframe_builder_column(b, "state", RV_TCOL_STRING);
    static const int64_t ts[] = {1700000000000000000, 1700000000001000000, -5, 1700000000000500000,
                                 1700000000002000000};
    for (int r = 0; r < 5; r++) {
        rv_tframe_builder_add_row(b, ts[r]);
        if (r != 2) {
            rv_tframe_builder_set_double(b, speed, r == 3 && with_nan ? NAN : 100.25 * r - 0.5);
        }
        if (r != 4) {
            rv_tframe_builder_set_int(b, gear, r == 0 ? INT64_MIN : r == 1 ? INT64_MAX : r);
        }
        rv_tframe_builder_set_str(b, state, r % 2 ? "pit \xe2\x86\x92 lane" : "", r % 2 ? 12 : 0);
        if (r == 1) {
            /* Columns may appear mid-frame: earlier rows lack them. */
            int blob = rv_tframe_builder_column(b, "blob", RV_TCOL_BYTES);
            rv_tframe_builder_set_str(b, blob, "\x00\xff\x10", 3);
        }
        if (r >= 3) {
            int tag = rv_tframe_builder_column(b, "lap", RV_TCOL_TAG);
            rv_tframe_builder_set_str(b, tag, r == 3 ? "12" : "13", 2);
        }
    }
    const rv_tframe_t *f = NULL;
    rv_tframe_builder_finish(b, a, format_id, &f);
    rv_tframe_builder_destroy(b);
    return f;
}

/* Fills `out` with one packet of each type (index i has type i + 1). */
static void sample_packets(rv_arena_t *a, bool with_nan, rv_tpacket_t out[SAMPLE_COUNT]) {
    memset(out, 0, SAMPLE_COUNT * sizeof *out);
    for (int i = 0; i < SAMPLE_COUNT; i++) {
        out[i].type = (rv_tpacket_type_t)(i + 1);
        out[i].stream_id = i == 3 ? NULL : "stream-1";
    }
    rv_tstream_properties_t *pr = &out[0].u.properties;
    pr->name = "Silverstone FP1";
    pr->location = "/cars/car-7";
    pr->metadata = sample_kv;
    pr->metadata_count = 3;
    pr->parents = sample_parents;
    pr->parent_count = 2;
    pr->has_time_of_recording = true;
    pr->time_of_recording = 1700000000123456700;
    out[1].u.end = RV_TSTREAM_ABORTED;
    out[2].u.session = (rv_tsession_t){.session_id = "s-1",
                                       .identifier = "FP1 run 3",
                                       .session_type = "practice",
                                       .version = 2,
                                       .time = 1700000000000000000,
                                       .details = sample_kv,
                                       .detail_count = 2};
    out[3].u.session = (rv_tsession_t){.session_id = "s-1",
                                       .identifier = "FP1 run 3b",
                                       .version = 3,
                                       .details = sample_kv + 2,
                                       .detail_count = 1};
    out[4].u.session = (rv_tsession_t){.session_id = "s-1", .time = 1700000003600000000};
    static rv_tparameter_def_t params[3];
    params[0] = (rv_tparameter_def_t){.id = "speed",
                                      .name = "Speed",
                                      .description = "ground speed",
                                      .unit = "km/h",
                                      .has_minimum = true,
                                      .minimum = 0,
                                      .has_maximum = true,
                                      .maximum = 360.5,
                                      .format = "0.0",
                                      .location = "/chassis",
                                      .custom_properties = "{\"x\":1}",
                                      .frequency = 1000};
    params[1] = (rv_tparameter_def_t){
        .id = "gear", .location = "/chassis/gearbox", .has_minimum = true, .minimum = -1};
    params[2] = (rv_tparameter_def_t){.id = "state", .name = ""};
    out[5].u.parameters.items = params;
    out[5].u.parameters.count = 3;
    static rv_tevent_def_t evdefs[2];
    evdefs[0] = (rv_tevent_def_t){.id = "yellow",
                                  .name = "Yellow flag",
                                  .level = RV_TLEVEL_WARNING,
                                  .location = "/flags",
                                  .description = "sector yellow",
                                  .custom_properties = "c"};
    evdefs[1] = (rv_tevent_def_t){.id = "crash", .level = RV_TLEVEL_CRITICAL};
    out[6].u.event_defs.items = evdefs;
    out[6].u.event_defs.count = 2;
    static const char *const ids[] = {"speed", "gear", "state"};
    out[7].u.format.format_id = 42;
    out[7].u.format.parameter_ids = ids;
    out[7].u.format.count = 3;
    out[8].u.periodic.start_time = 1700000000000000000;
    out[8].u.periodic.interval = 1000000;
    {
        /* Periodic data: timestamps are start + i * interval. */
        rv_tframe_builder_t *b = rv_tframe_builder_new();
        int c0 = rv_tframe_builder_column(b, "rpm", RV_TCOL_DOUBLE);
        int c1 = rv_tframe_builder_column(b, "throttle", RV_TCOL_DOUBLE);
        for (int r = 0; r < 4; r++) {
            rv_tframe_builder_add_row(b, 1700000000000000000 + r * 1000000);
            rv_tframe_builder_set_double(b, c0, 11000 + r);
            if (r != 1) {
                rv_tframe_builder_set_double(b, c1, r * 0.25);
            }
        }
        const rv_tframe_t *f = NULL;
        rv_tframe_builder_finish(b, a, 42, &f);
        rv_tframe_builder_destroy(b);
        out[8].u.periodic.frame = f;
    }
    out[9].u.frame = sample_frame(a, with_nan, 0);
    static rv_tevent_t events[2];
    events[0] = (rv_tevent_t){.id = "yellow",
                              .time = 1700000000500000000,
                              .value = "sector 2",
                              .tags = sample_kv,
                              .tag_count = 2};
    events[1] = (rv_tevent_t){.id = "crash", .time = 1700000000600000000, .value = ""};
    out[10].u.events.items = events;
    out[10].u.events.count = 2;
    static rv_tmarker_t markers[2];
    markers[0] = (rv_tmarker_t){.kind = "lap",
                                .label = "Lap 12",
                                .start_time = 1700000000000000000,
                                .end_time = 1700000090000000000};
    markers[1] = (rv_tmarker_t){.kind = "sector",
                                .label = "S1",
                                .start_time = 1,
                                .end_time = 2,
                                .description = "first sector"};
    out[11].u.markers.items = markers;
    out[11].u.markers.count = 2;
    out[12].u.coverage_until = 1700000000999999999;
}

#endif
