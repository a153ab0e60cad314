/*
 * telemetry_frame.c: build a time-series frame, send it as protobuf, read it back, and write it
 * as rivulet's JSON and as a legacy Quix Streams message.
 *
 * One car's 1 kHz speed and gear channels for 5 ms, with a lap tag; the gear is missing in one
 * row. Run it with no arguments; it prints each form and exits 0, or prints the error and exits 1.
 */
#include <rivulet/rivulet.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *what, rv_error_t *err) {
    fprintf(stderr, "%s: %s\n", what, rv_error_message(err));
    rv_error_destroy(err);
    return 1;
}

int main(void) {
    rv_arena_t *arena = rv_arena_new(0);
    rv_tframe_builder_t *b = rv_tframe_builder_new();
    if (!arena || !b) {
        return 1;
    }
    int speed = rv_tframe_builder_column(b, "speed", RV_TCOL_DOUBLE);
    int gear = rv_tframe_builder_column(b, "gear", RV_TCOL_INT64);
    int lap = rv_tframe_builder_column(b, "lap", RV_TCOL_TAG);
    const int64_t t0 = 1763900000000000000; /* ns since the epoch */
    for (int i = 0; i < 5; i++) {
        rv_tframe_builder_add_row(b, t0 + i * 1000000);
        rv_tframe_builder_set_double(b, speed, 287.5 + i * 0.25);
        if (i != 2) {
            rv_tframe_builder_set_int(b, gear, 7);
        }
        rv_tframe_builder_set_str(b, lap, "12", 2);
    }
    const rv_tframe_t *frame = NULL;
    if (rv_tframe_builder_finish(b, arena, 0, &frame) != RV_OK) {
        return 1;
    }
    rv_tframe_builder_destroy(b);

    /* The protobuf envelope a `telemetry` topic carries, keyed by the stream id. */
    rv_tpacket_t packet = {.type = RV_TPACKET_FRAME, .stream_id = "car-7", .u.frame = frame};
    rv_strbuf_t wire = RV_STRBUF_INIT, text = RV_STRBUF_INIT;
    rv_error_t *err = NULL;
    if (rv_tpacket_encode(&packet, &wire, &err) != RV_OK) {
        return fail("encode", err);
    }
    rv_tpacket_t *back = NULL;
    if (rv_tpacket_decode(arena, wire.data, wire.len, &back, &err) != RV_OK) {
        return fail("decode", err);
    }
    const rv_tcolumn_t *g = rv_tframe_column(back->u.frame, "gear");
    printf("protobuf: %zu bytes, %zu rows, gear in row 2: %s, equal: %s\n", wire.len,
           back->u.frame->rows, rv_tcolumn_has(g, 2) ? "present" : "absent",
           rv_tpacket_equal(&packet, back) ? "yes" : "no");

    if (rv_tpacket_write_json(back, &text, &err) != RV_OK) {
        return fail("json", err);
    }
    printf("rivulet json: %s\n", text.data);
    rv_strbuf_clear(&text);
    if (rv_tpacket_write_quix(back, &text, &err) != RV_OK) {
        return fail("quix", err);
    }
    printf("legacy quix: %s\n", text.data);

    int ok = rv_tpacket_equal(&packet, back);
    rv_strbuf_free(&wire);
    rv_strbuf_free(&text);
    rv_arena_destroy(arena);
    return ok ? 0 : 1;
}
