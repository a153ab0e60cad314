/*
 * telemetry_session.c: write a small telemetry session to a topic of the embedded log and read
 * it back with a stream reader.
 *
 * A writer opens stream "car-7" on topic "telemetry" (in a temporary directory), sends its
 * properties, a session, two parameter definitions, three frames of a 10 Hz speed and gear
 * channel, a pit event and a lap marker, and closes the stream. A reader, fed by a consumer
 * from the beginning, prints what each callback receives and checks it. Run it with no
 * arguments; it exits 0 when everything came back, 1 otherwise.
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <rivulet/rivulet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1763900000000000000LL /* ns since the epoch */
#define MS 1000000LL

typedef struct seen_s {
    int opened, definitions, frames, rows, events, markers, closed;
    double speed_sum;
} seen_t;

static void on_open(void *opaque, const rv_tstream_view_t *s) {
    seen_t *seen = opaque;
    seen->opened++;
    printf("stream %s opened: %s\n", s->stream_id, s->properties ? s->properties->name : "?");
}

static void on_definitions(void *opaque, const rv_tstream_view_t *s) {
    seen_t *seen = opaque;
    seen->definitions++;
    printf("  %zu parameters defined:", s->parameter_count);
    for (size_t i = 0; i < s->parameter_count; i++) {
        printf(" %s (%s)", s->parameters[i].id, s->parameters[i].unit);
    }
    printf("\n");
}

static void on_frame(void *opaque, const rv_tstream_view_t *s, const rv_tframe_t *f) {
    seen_t *seen = opaque;
    (void)s;
    const rv_tcolumn_t *speed = rv_tframe_column(f, "speed");
    seen->frames++;
    seen->rows += (int)f->rows;
    for (size_t r = 0; speed && r < f->rows; r++) {
        seen->speed_sum += speed->v.d[r];
    }
    printf("  frame of %zu rows, format %u\n", f->rows, (unsigned)f->format_id);
}

static void on_events(void *opaque, const rv_tstream_view_t *s, const rv_tevent_t *ev, size_t n) {
    seen_t *seen = opaque;
    (void)s;
    seen->events += (int)n;
    printf("  event %s: %s\n", ev[0].id, ev[0].value);
}

static void on_markers(void *opaque, const rv_tstream_view_t *s, const rv_tmarker_t *m, size_t n) {
    seen_t *seen = opaque;
    (void)s;
    seen->markers += (int)n;
    printf("  marker %s '%s': %.1f s\n", m[0].kind, m[0].label,
           (double)(m[0].end_time - m[0].start_time) / 1e9);
}

static void on_close(void *opaque, const rv_tstream_view_t *s, rv_tstream_end_t end) {
    seen_t *seen = opaque;
    seen->closed++;
    printf("stream %s closed (%s)\n", s->stream_id, end == RV_TSTREAM_CLOSED ? "normally" : "not");
}

static int fail(const char *what, rv_error_t *err) {
    fprintf(stderr, "%s: %s\n", what, rv_error_message(err));
    rv_error_destroy(err);
    return 1;
}

static int write_session(rv_broker_t *broker) {
    rv_error_t *err = NULL;
    rv_producer_t *producer = rv_producer_new(broker, NULL, &err);
    if (!producer) {
        return fail("producer", err);
    }
    rv_twriter_t *w = rv_twriter_open(producer, "telemetry", "car-7", NULL, &err);
    if (!w) {
        rv_producer_close(producer);
        return fail("writer", err);
    }
    rv_tstream_properties_t props = {.name = "Monaco FP1", .location = "/cars/car-7"};
    rv_tsession_t session = {.session_id = "FP1", .identifier = "Free practice 1", .time = T0};
    rv_tparameter_def_t params[] = {{.id = "speed", .name = "Speed", .unit = "km/h"},
                                    {.id = "gear", .name = "Gear", .unit = "-"}};
    rv_err_t e = rv_twriter_set_properties(w, &props, &err);
    e = e ? e : rv_twriter_session_start(w, &session, &err);
    e = e ? e : rv_twriter_define_parameters(w, params, 2, &err);

    /* Three frames of 10 rows at 10 Hz, built column by column. */
    rv_tframe_builder_t *b = rv_tframe_builder_new();
    int speed = rv_tframe_builder_column(b, "speed", RV_TCOL_DOUBLE);
    int gear = rv_tframe_builder_column(b, "gear", RV_TCOL_INT64);
    for (int f = 0; f < 3 && !e; f++) {
        if (f > 0) { /* finish() resets the builder: declare the columns again, same order */
            speed = rv_tframe_builder_column(b, "speed", RV_TCOL_DOUBLE);
            gear = rv_tframe_builder_column(b, "gear", RV_TCOL_INT64);
        }
        for (int r = 0; r < 10; r++) {
            int i = f * 10 + r;
            rv_tframe_builder_add_row(b, T0 + i * 100 * MS);
            rv_tframe_builder_set_double(b, speed, 100.0 + i);
            rv_tframe_builder_set_int(b, gear, 3 + i / 10);
        }
        e = rv_twriter_write_builder(w, b, &err);
    }
    rv_tframe_builder_destroy(b);
    rv_tevent_t pit = {.id = "pit", .time = T0 + 2500 * MS, .value = "box this lap"};
    rv_tmarker_t lap = {
        .kind = "lap", .label = "Lap 1", .start_time = T0, .end_time = T0 + 2900 * MS};
    e = e ? e : rv_twriter_write_events(w, &pit, 1, &err);
    e = e ? e : rv_twriter_write_markers(w, &lap, 1, &err);
    if (e) {
        rv_twriter_destroy(w);
        rv_producer_close(producer);
        return fail("write", err);
    }
    e = rv_twriter_close(w, RV_TSTREAM_CLOSED, 0, &err); /* session end at the last data time */
    e = e ? e : rv_producer_flush(producer, 10000, &err);
    rv_producer_close(producer);
    return e ? fail("close", err) : 0;
}

static int read_session(rv_broker_t *broker, seen_t *seen) {
    rv_error_t *err = NULL;
    rv_treader_callbacks_t cb = {.opaque = seen,
                                 .on_open = on_open,
                                 .on_definitions = on_definitions,
                                 .on_frame = on_frame,
                                 .on_events = on_events,
                                 .on_markers = on_markers,
                                 .on_close = on_close};
    rv_treader_t *reader = rv_treader_new(NULL, &cb, &err);
    rv_consumer_t *consumer = rv_consumer_new(broker, NULL, &err);
    if (!reader || !consumer) {
        rv_treader_destroy(reader);
        return fail("reader", err);
    }
    rv_topic_partition_t tp = {"telemetry", 0, RV_OFFSET_BEGINNING};
    rv_err_t e = rv_consumer_assign(consumer, &tp, 1, &err);
    int64_t deadline = rv_clock_mono_ms() + 10000;
    while (!e && !seen->closed && rv_clock_mono_ms() < deadline) {
        e = rv_treader_poll(reader, consumer, 100, NULL, &err);
    }
    rv_consumer_close(consumer);
    rv_treader_destroy(reader);
    return e ? fail("read", err) : 0;
}

int main(void) {
    char dir[] = "/tmp/rivulet_telemetry_session_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char url[128];
    snprintf(url, sizeof url, "local:%s", dir);
    rv_error_t *err = NULL;
    rv_broker_t *broker = rv_broker_open(url, NULL, &err);
    if (!broker) {
        return fail("broker", err);
    }
    int status = 1;
    seen_t seen = {0};
    if (rv_broker_create_topic(broker, "telemetry", 1, NULL, &err) != RV_OK) {
        fail("create topic", err);
    } else if (write_session(broker) == 0 && read_session(broker, &seen) == 0) {
        /* speed is 100 + i for i in 0..29: the sum is 3000 + 435. */
        status = seen.opened == 1 && seen.definitions == 1 && seen.frames == 3 && seen.rows == 30 &&
                         seen.speed_sum == 3435.0 && seen.events == 1 && seen.markers == 1 &&
                         seen.closed == 1
                     ? 0
                     : 1;
        printf("%s\n", status == 0 ? "all of the session came back" : "something is missing");
    }
    rv_broker_close(broker);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    return status;
}
