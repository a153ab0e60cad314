/*
 * cmd_demo.c: `rivulet demo`, the main job: a simulated motorsport session written as telemetry
 * streams (demo_sim.c) and processed by a rivulet application.
 *
 * The application reads demo-telemetry with the `telemetry` serialiser (one record per packet).
 * Its dataframe pipeline expands frames into one record per sample (naming the columns from
 * each stream's data format), summarises every car and second with a 1-second tumbling window
 * (RocksDB state) into demo-summary, adds derived channels (speed in m/s, rear-wheel slip,
 * brake balance) for the per-lap statistics and the events (gear changes, entries above
 * 300 km/h) on demo-events, writes a summary per car and lap into demo-laps when the lap's
 * marker arrives, and resamples each car's channels to 10 Hz (derived channels included) into
 * demo-derived. The coverage packet that ends each stream moves event time past the last
 * second, so every window is emitted although the input ends.
 *
 * Per-car state (gear, fast samples, data formats, lap statistics, the resampler) lives in the
 * demo and is touched only by the worker owning that car's partition (records are keyed by
 * car). Every topic, the window's changelog and its state directory are recreated on each run.
 * It must finish in seconds, check its own counts, and never leave a topic half-written
 * without saying so.
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

#define COMMAND DEMO_COMMAND
#define GROUP "rivulet-demo"
#define TOPIC DEMO_TOPIC
#define DERIVED "demo-derived"
#define EVENTS "demo-events"
#define SUMMARY "demo-summary"
#define LAPS "demo-laps"
#define STORE "demo-seconds" /* the window's state store */
#define PARTITIONS DEMO_PARTITIONS
#define MAX_CARS DEMO_MAX_CARS
#define MAX_LAPS DEMO_MAX_LAPS
#define LAP_METRES DEMO_LAP_METRES
#define NPARAMS DEMO_CHANNELS
#define SLOW_HZ DEMO_SLOW_HZ
#define FAST_KMH 300.0
#define WINDOW_MS 1000
#define GRACE_MS 500 /* cars share partitions, a frame apart in data time */
#define DERIVED_HZ 10

/* Per car and lap, what the sink, the event filters and the lap marker accumulate. */
typedef struct lap_stats_s {
    int64_t samples;
    double speed_sum, speed_max, rpm_max, slip_max;
    double balance_sum; /* brake balance (% front) summed over braking samples */
    int64_t braking;
    int gear_changes;
    int fast_entries; /* times the car went above FAST_KMH */
    int64_t lap_ns;   /* the lap marker's end - start; 0 before it arrived */
} lap_stats_t;

/* What the read side keeps per car, between records. */
typedef struct car_state_s {
    int last_gear;          /* 0 before the car's first sample */
    int from_gear;          /* the gear before the last change */
    int64_t last_fast_tick; /* the sample index of the last sample above FAST_KMH, or -2 */
    int64_t windows;        /* one-second summaries emitted */
    double best_second;     /* the highest mean speed of a one-second window */
    int64_t best_second_at; /* its start, ms */
    int64_t format_id;      /* the stream's data format, 0 before its data_format packet */
    int nformat;
    char format[NPARAMS][24]; /* its parameter ids: the names of a frame's "#k" columns */
    rv_tframe_builder_t *b;   /* the resampler's input, rebuilt from each frame's rows */
    rv_tinterp_t *ip;         /* resamples the car's channels to DERIVED_HZ */
    rv_arena_t *out_arena;    /* where the resampler's rows go (the record's arena) */
    rv_value_t *out;          /* an array of them, during a feed */
    const rv_value_t *id;     /* the stream id, during a feed */
} car_state_t;

/* The read side's state, shared by the pipeline's functions. */
typedef struct demo_s {
    const demo_opts_t *o;
    int64_t start_ns;  /* t of the first sample, a whole second */
    int64_t period_ns; /* between two samples of a car */
    car_state_t cars[MAX_CARS];
    lap_stats_t *stats; /* [MAX_CARS * MAX_LAPS] */
} demo_t;

static void usage(FILE *out) {
    fprintf(out,
            "usage: rivulet demo [-b URL] [-X name=value] [--cars N] [--laps N] [--rate HZ]\n"
            "                    [--seed N] [--metrics[=SECONDS]]\n\n"
            "Simulates a motorsport session, one telemetry stream per car, into the topic\n"
            "'" TOPIC "', then runs an application (consumer group '" GROUP "') whose\n"
            "dataframe pipeline derives channels ('" DERIVED "'), detects events\n"
            "('" EVENTS "'), summarises every car and second with a window ('" SUMMARY "')\n"
            "and every car and lap ('" LAPS "'). Every topic is recreated on each run; the\n"
            "window's state goes under state.dir (default: the broker directory + '.state').\n"
            "  -b URL       broker (default local:./rivulet-data)\n"
            "  -X name=value  a property for the broker and the application (app.threads, ...)\n"
            "  --cars N     cars on track (1..%d, default 4)\n"
            "  --laps N     laps per car (1..%d, default 5)\n"
            "  --rate HZ    samples per second per car (10..1000, a multiple of 10; default 100)\n"
            "  --seed N     the simulation's seed (default 1): a seed always gives the same data\n"
            "  --metrics[=SECONDS]  print the application's counters to stderr every SECONDS\n"
            "               (default 1; 0: only at the end) and when it stops\n",
            MAX_CARS, MAX_LAPS);
}

/* ---- the pipeline's functions ------------------------------------------------------------ */

/* The car (0-based) and lap (1-based) of a row, or -1 when they are out of range. */
static int car_of(const demo_t *d, const rv_value_t *v, int *lap) {
    const char *car = rv_value_str(rv_value_get_cstr(v, "car"), NULL);
    int no = car && strncmp(car, "car-", 4) == 0 ? atoi(car + 4) : 0;
    *lap = (int)rv_value_int(rv_value_get_cstr(v, "lap"));
    if (no < 1 || no > d->o->cars || *lap < 1 || *lap > d->o->laps) {
        return -1;
    }
    return no - 1;
}

/* The stats of the row's car and lap, failing the record when it names neither. */
static lap_stats_t *stats_of(rv_ctx_t *ctx, demo_t *d, const rv_value_t *v, int *car) {
    int lap;
    *car = car_of(d, v, &lap);
    if (*car < 0) {
        rv_ctx_fail(ctx, "the record names no car of 1..%d or no lap of 1..%d", d->o->cars,
                    d->o->laps);
        return NULL;
    }
    return &d->stats[*car * MAX_LAPS + (lap - 1)];
}

/* Sets member `name` of `obj`; false when memory is exhausted. */
static bool put(rv_arena_t *a, rv_value_t *obj, const char *name, rv_value_t *v) {
    return v && rv_value_set(a, obj, name, strlen(name), v) == RV_OK;
}

static bool is_packet(const rv_value_t *v, const char *type) {
    const char *t = rv_value_str(rv_value_get_cstr(v, "type"), NULL);
    return t && strcmp(t, type) == 0;
}

/* The car (0-based) of a packet's stream, or -1. */
static int stream_car(const demo_t *d, const rv_value_t *v) {
    const char *id = rv_value_str(rv_value_get_cstr(v, "stream_id"), NULL);
    int no = id && strncmp(id, "car-", 4) == 0 ? atoi(id + 4) : 0;
    return no >= 1 && no <= d->o->cars ? no - 1 : -1;
}

/* Keeps a data_format packet's parameter ids: the protobuf wire leaves the names of a frame's
 * columns out when its data format gives them, and a packet decoded on its own (as the
 * `telemetry` serialiser does) calls them "#0", "#1", ... by their place in the format. */
static int keep_format(rv_ctx_t *ctx, demo_t *d, const rv_value_t *v) {
    int car = stream_car(d, v);
    const rv_value_t *ids = rv_value_get_cstr(v, "parameter_ids");
    size_t n = rv_value_len(ids);
    if (car < 0 || n > NPARAMS) {
        rv_ctx_fail(ctx, "a data format of no car of 1..%d, or of more than %d parameters",
                    d->o->cars, NPARAMS);
        return -1;
    }
    car_state_t *c = &d->cars[car];
    c->format_id = rv_value_int(rv_value_get_cstr(v, "format_id"));
    c->nformat = (int)n;
    for (size_t i = 0; i < n; i++) {
        const char *id = rv_value_str(rv_value_at(ids, i), NULL);
        snprintf(c->format[i], sizeof c->format[i], "%s", id ? id : "");
    }
    return 0;
}

/* The name of a frame's column key: itself, or for "#k" the k-th id of the car's format. */
static const char *column_name(const car_state_t *c, int64_t format_id, const char *key,
                               size_t *len) {
    if (key[0] != '#' || format_id != c->format_id) {
        return key;
    }
    int k = atoi(key + 1);
    if (k < 0 || k >= c->nformat) {
        return key;
    }
    *len = strlen(c->format[k]);
    return c->format[k];
}

/* expand: a frame packet into one record per row, {"car", "lap", "t_ns", <channels>}, its
 * values taken from the row as they are (slow channels only in the rows that hold them); a
 * data format is kept for the frames that follow; other packets give nothing. */
static rv_value_t *frame_rows(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    demo_t *d = opaque;
    rv_arena_t *a = rv_ctx_arena(ctx);
    if (is_packet(v, "data_format") && keep_format(ctx, d, v) != 0) {
        return NULL;
    }
    const rv_value_t *rows = is_packet(v, "frame") ? rv_value_get_cstr(v, "rows") : NULL;
    size_t n = rows ? rv_value_len(rows) : 0;
    int car = n ? stream_car(d, v) : 0;
    if (car < 0) {
        rv_ctx_fail(ctx, "a frame of no car of 1..%d", d->o->cars);
        return NULL;
    }
    const car_state_t *cs = &d->cars[car];
    int64_t format_id = rv_value_int(rv_value_get_cstr(v, "format_id"));
    rv_value_t *out = rv_value_new_array(a, n);
    rv_value_t *id = rv_value_get_cstr(v, "stream_id");
    for (size_t i = 0; out && i < n; i++) {
        const rv_value_t *row = rv_value_at(rows, i);
        const rv_value_t *values = rv_value_get_cstr(row, "values");
        const char *lap =
            rv_value_str(rv_value_get_cstr(rv_value_get_cstr(row, "tags"), "lap"), NULL);
        size_t nv = values ? rv_value_len(values) : 0;
        rv_value_t *r = rv_value_new_object(a, 3 + nv);
        bool ok = r && put(a, r, "car", id) &&
                  put(a, r, "lap", rv_value_new_int(a, lap ? atoi(lap) : 0)) &&
                  put(a, r, "t_ns", rv_value_get_cstr(row, "time"));
        for (size_t j = 0; ok && j < nv; j++) {
            const char *key;
            size_t len;
            rv_value_t *x = rv_value_member_at(values, j, &key, &len);
            const char *name = column_name(cs, format_id, key, &len);
            ok = x && rv_value_set(a, r, name, len, x) == RV_OK;
        }
        if (!ok || rv_value_append(a, out, r) != RV_OK) {
            out = NULL;
        }
    }
    if (!out) {
        rv_ctx_fail(ctx, "out of memory expanding a frame");
    }
    return out;
}

/* What the resampler makes of each 100 ms: means of the analogue channels, the last gear and
 * distance, the highest rpm. */
static const rv_tinterp_param_t resampled[] = {
    {.name = "speed_kmh", .agg = RV_TAGG_MEAN},
    {.name = "rear_wheel_kmh", .agg = RV_TAGG_MEAN},
    {.name = "throttle_pct", .agg = RV_TAGG_MEAN},
    {.name = "brake_front_bar", .agg = RV_TAGG_MEAN},
    {.name = "brake_rear_bar", .agg = RV_TAGG_MEAN},
    {.name = "rpm", .agg = RV_TAGG_MAX},
    {.name = "gear", .agg = RV_TAGG_LAST},
    {.name = "distance_m", .agg = RV_TAGG_LAST},
};
#define NRESAMPLED (sizeof resampled / sizeof resampled[0])

/* The resampler's output: one record per grid point, {"car", "lap", "t_ns", <channels>}. */
static rv_err_t on_resampled(void *opaque, const rv_tframe_t *f) {
    car_state_t *c = opaque;
    rv_arena_t *a = c->out_arena;
    for (size_t i = 0; i < f->rows; i++) {
        rv_value_t *r = rv_value_new_object(a, 3 + NRESAMPLED);
        bool ok = r && put(a, r, "car", (rv_value_t *)c->id) &&
                  put(a, r, "t_ns", rv_value_new_int(a, f->timestamps[i]));
        for (size_t k = 0; ok && k < NRESAMPLED && k < f->column_count; k++) {
            const rv_tcolumn_t *col = &f->columns[k];
            if (!rv_tcolumn_has(col, i)) {
                continue;
            }
            double x = col->v.d[i];
            bool whole =
                strcmp(resampled[k].name, "gear") == 0 || strcmp(resampled[k].name, "rpm") == 0;
            ok = put(a, r, resampled[k].name,
                     whole ? rv_value_new_int(a, (int64_t)x)
                           : rv_value_new_double(a, demo_round_to(x, 1000.0)));
            if (ok && strcmp(resampled[k].name, "distance_m") == 0) {
                ok = put(a, r, "lap", rv_value_new_int(a, (int64_t)(x / LAP_METRES) + 1));
            }
        }
        if (!ok || rv_value_append(a, c->out, r) != RV_OK) {
            return RV_ERR_NOMEM;
        }
    }
    return RV_OK;
}

/* expand: feeds a frame's rows (channels named, see frame_rows) to the car's resampler and
 * returns the grid points it completed; at the stream's end, the last one. */
static rv_value_t *resample_rows(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    demo_t *d = opaque;
    rv_arena_t *a = rv_ctx_arena(ctx);
    rv_value_t *out = rv_value_new_array(a, 2);
    bool frame = is_packet(v, "frame"), end = is_packet(v, "stream_end");
    int car = frame || end ? stream_car(d, v) : 0;
    if (!out || car < 0) {
        rv_ctx_fail(ctx, !out ? "out of memory" : "a packet of no car of 1..%d", d->o->cars);
        return NULL;
    }
    car_state_t *c = &d->cars[car];
    if (!frame && !(end && c->ip)) {
        return out;
    }
    rv_error_t *err = NULL;
    rv_err_t e = RV_OK;
    if (!c->ip) {
        rv_tinterp_opts_t io = {.period_ns = 1000000000 / DERIVED_HZ,
                                .params = resampled,
                                .param_count = NRESAMPLED,
                                .emit = on_resampled,
                                .opaque = c};
        c->b = rv_tframe_builder_new();
        e = c->b ? rv_tinterp_new(&io, &c->ip, &err) : RV_ERR_NOMEM;
    }
    c->out_arena = a;
    c->out = out;
    c->id = rv_value_get_cstr(v, "stream_id");
    if (e == RV_OK && end) {
        e = rv_tinterp_flush(c->ip, &err);
    } else if (e == RV_OK) {
        const rv_value_t *rows = rv_value_get_cstr(v, "rows");
        int64_t format_id = rv_value_int(rv_value_get_cstr(v, "format_id"));
        for (size_t i = 0; e == RV_OK && i < rv_value_len(rows); i++) {
            const rv_value_t *row = rv_value_at(rows, i);
            const rv_value_t *values = rv_value_get_cstr(row, "values");
            e = rv_tframe_builder_add_row(c->b, rv_value_int(rv_value_get_cstr(row, "time")));
            for (size_t j = 0; e == RV_OK && j < rv_value_len(values); j++) {
                const char *key;
                size_t len;
                rv_value_t *x = rv_value_member_at(values, j, &key, &len);
                const char *name = column_name(c, format_id, key, &len);
                int col = rv_tframe_builder_column(c->b, name, RV_TCOL_DOUBLE);
                e = col < 0 ? RV_ERR_NOMEM
                            : rv_tframe_builder_set_double(c->b, col, rv_value_double(x));
            }
        }
        const rv_tframe_t *f = NULL;
        if (e == RV_OK) {
            e = rv_tframe_builder_finish(c->b, a, 0, &f);
        }
        if (e == RV_OK) {
            e = rv_tinterp_feed(c->ip, f, &err);
        }
    }
    if (end || e != RV_OK) { /* the stream is over (or broken): a new one starts afresh */
        rv_tinterp_destroy(c->ip);
        rv_tframe_builder_destroy(c->b);
        c->ip = NULL;
        c->b = NULL;
    }
    if (e != RV_OK) {
        rv_ctx_fail(ctx, "resampling: %s", err ? rv_error_message(err) : rv_err_str(e));
        rv_error_destroy(err);
        return NULL;
    }
    return out;
}

/* expand: a lap marker into {"car", "lap", "start_ns", "end_ns"}; other packets into nothing. */
static rv_value_t *lap_markers(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)opaque;
    rv_arena_t *a = rv_ctx_arena(ctx);
    const rv_value_t *ms = is_packet(v, "markers") ? rv_value_get_cstr(v, "markers") : NULL;
    size_t n = ms ? rv_value_len(ms) : 0;
    rv_value_t *out = rv_value_new_array(a, n);
    for (size_t i = 0; out && i < n; i++) {
        const rv_value_t *m = rv_value_at(ms, i);
        const char *kind = rv_value_str(rv_value_get_cstr(m, "kind"), NULL);
        const char *label = rv_value_str(rv_value_get_cstr(m, "label"), NULL);
        if (!kind || strcmp(kind, "lap") != 0 || !label || strncmp(label, "Lap ", 4) != 0) {
            continue;
        }
        rv_value_t *r = rv_value_new_object(a, 4);
        if (!r || !put(a, r, "car", rv_value_get_cstr(v, "stream_id")) ||
            !put(a, r, "lap", rv_value_new_int(a, atoi(label + 4))) ||
            !put(a, r, "start_ns", rv_value_get_cstr(m, "start_time")) ||
            !put(a, r, "end_ns", rv_value_get_cstr(m, "end_time")) ||
            rv_value_append(a, out, r) != RV_OK) {
            out = NULL;
        }
    }
    if (!out) {
        rv_ctx_fail(ctx, "out of memory expanding markers");
    }
    return out;
}

/* expand: a coverage packet into one record {"car", "t_ns"} timed a window and the grace past
 * the coverage, so that event time closes every window of the data before it; the record
 * carries no channel, so it adds nothing to the window it opens (which never closes). */
static rv_value_t *coverage_tick(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)opaque;
    rv_arena_t *a = rv_ctx_arena(ctx);
    rv_value_t *out = rv_value_new_array(a, 1);
    if (out && is_packet(v, "coverage")) {
        int64_t until = rv_value_int(rv_value_get_cstr(v, "until"));
        int64_t t = until + (int64_t)(WINDOW_MS + GRACE_MS) * 1000000;
        rv_value_t *r = rv_value_new_object(a, 2);
        if (!r || !put(a, r, "car", rv_value_get_cstr(v, "stream_id")) ||
            !put(a, r, "t_ns", rv_value_new_int(a, t)) || rv_value_append(a, out, r) != RV_OK) {
            out = NULL;
        }
    }
    if (!out) {
        rv_ctx_fail(ctx, "out of memory expanding coverage");
    }
    return out;
}

/* set_timestamp: the row's time in ms. */
static rv_value_t *row_ms(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)opaque;
    return rv_value_new_int(rv_ctx_arena(ctx),
                            rv_value_int(rv_value_get_cstr(v, "t_ns")) / 1000000);
}

static double num(const rv_value_t *v, const char *name) {
    return rv_value_double(rv_value_get_cstr(v, name));
}

/* set_field speed_ms: the speed in metres per second. */
static rv_value_t *speed_ms(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)opaque;
    return rv_value_new_double(rv_ctx_arena(ctx), demo_round_to(num(v, "speed_kmh") / 3.6, 1000.0));
}

/* set_field wheel_slip_pct: how much faster the driven wheels turn than the car moves. */
static rv_value_t *wheel_slip(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)opaque;
    double car = num(v, "speed_kmh"), wheel = num(v, "rear_wheel_kmh");
    if (car <= 1.0) {
        return rv_value_new_null(rv_ctx_arena(ctx));
    }
    return rv_value_new_double(rv_ctx_arena(ctx),
                               demo_round_to((wheel - car) / car * 100.0, 100.0));
}

/* set_field brake_balance_pct: the front's share of the brake pressure (null off the brakes). */
static rv_value_t *brake_balance(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)opaque;
    double front = num(v, "brake_front_bar"), rear = num(v, "brake_rear_bar");
    if (front + rear <= 0.0) {
        return rv_value_new_null(rv_ctx_arena(ctx));
    }
    return rv_value_new_double(rv_ctx_arena(ctx),
                               demo_round_to(front / (front + rear) * 100.0, 100.0));
}

/* The sink: per car and lap statistics of the rows. */
static rv_err_t lap_sink(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    demo_t *d = opaque;
    int car;
    lap_stats_t *s = stats_of(ctx, d, v, &car);
    if (!s) {
        return RV_ERR_INVALID_ARG;
    }
    double kmh = num(v, "speed_kmh"), rpm = num(v, "rpm"), slip = num(v, "wheel_slip_pct");
    const rv_value_t *bal = rv_value_get_cstr(v, "brake_balance_pct");
    s->samples++;
    s->speed_sum += kmh;
    s->speed_max = kmh > s->speed_max ? kmh : s->speed_max;
    s->rpm_max = rpm > s->rpm_max ? rpm : s->rpm_max;
    s->slip_max = slip > s->slip_max ? slip : s->slip_max;
    if (rv_value_type(bal) == RV_TYPE_DOUBLE || rv_value_type(bal) == RV_TYPE_INT) {
        s->balance_sum += rv_value_double(bal);
        s->braking++;
    }
    return RV_OK;
}

/* filter: keeps the rows whose gear differs from the car's previous row. */
static int gear_changed(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    demo_t *d = opaque;
    int car;
    lap_stats_t *s = stats_of(ctx, d, v, &car);
    if (!s) {
        return -1;
    }
    int gear = (int)rv_value_int(rv_value_get_cstr(v, "gear"));
    int last = d->cars[car].last_gear;
    d->cars[car].last_gear = gear;
    if (last == 0 || last == gear) {
        return 0;
    }
    d->cars[car].from_gear = last;
    s->gear_changes++;
    return 1;
}

/* filter (after speed_kmh > FAST_KMH): keeps a fast row whose predecessor was not fast. */
static int fast_entry(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    demo_t *d = opaque;
    int car;
    lap_stats_t *s = stats_of(ctx, d, v, &car);
    if (!s) {
        return -1;
    }
    int64_t tick = (rv_value_int(rv_value_get_cstr(v, "t_ns")) - d->start_ns) / d->period_ns;
    int64_t last = d->cars[car].last_fast_tick;
    d->cars[car].last_fast_tick = tick;
    if (last == tick - 1) {
        return 0;
    }
    s->fast_entries++;
    return 1;
}

/* Starts an event object: {"type", "car", "lap", "t_ns", "speed_kmh"}. */
static rv_value_t *event_new(rv_ctx_t *ctx, const rv_value_t *v, const char *type, size_t extra) {
    rv_arena_t *a = rv_ctx_arena(ctx);
    rv_value_t *e = rv_value_new_object(a, 5 + extra);
    const char *names[] = {"car", "lap", "t_ns", "speed_kmh"};
    if (!e || !put(a, e, "type", rv_value_new_string_ref(a, type, strlen(type)))) {
        return NULL;
    }
    for (size_t i = 0; i < 4; i++) {
        if (!put(a, e, names[i], rv_value_get_cstr(v, names[i]))) {
            return NULL;
        }
    }
    return e;
}

/* apply: a gear change event, with the gears before and after. */
static rv_value_t *gear_event(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    demo_t *d = opaque;
    int lap, car = car_of(d, v, &lap);
    rv_arena_t *a = rv_ctx_arena(ctx);
    rv_value_t *e = car >= 0 ? event_new(ctx, v, "gear_change", 2) : NULL;
    if (!e || !put(a, e, "from", rv_value_new_int(a, d->cars[car].from_gear)) ||
        !put(a, e, "to", rv_value_new_int(a, d->cars[car].last_gear))) {
        rv_ctx_fail(ctx, "out of memory building the event");
        return NULL;
    }
    return e;
}

/* apply: an event for a car going above FAST_KMH. */
static rv_value_t *fast_event(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)opaque;
    rv_value_t *e = event_new(ctx, v, "over_300_kmh", 0);
    if (!e) {
        rv_ctx_fail(ctx, "out of memory building the event");
    }
    return e;
}

/* apply: a lap marker into the lap's summary (every row of the lap came before its marker). */
static rv_value_t *lap_summary(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    demo_t *d = opaque;
    int car;
    lap_stats_t *s = stats_of(ctx, d, v, &car);
    if (!s) {
        return NULL;
    }
    s->lap_ns = rv_value_int(rv_value_get_cstr(v, "end_ns")) -
                rv_value_int(rv_value_get_cstr(v, "start_ns"));
    rv_arena_t *a = rv_ctx_arena(ctx);
    int64_t n = s->samples ? s->samples : 1;
    struct {
        const char *name;
        rv_value_t *v;
    } f[] = {
        {"time_s", rv_value_new_double(a, demo_round_to((double)s->lap_ns / 1e9, 1000.0))},
        {"samples", rv_value_new_int(a, s->samples)},
        {"top_kmh", rv_value_new_double(a, s->speed_max)},
        {"mean_kmh", rv_value_new_double(a, demo_round_to(s->speed_sum / (double)n, 1000.0))},
        {"max_rpm", rv_value_new_double(a, s->rpm_max)},
        {"gear_changes", rv_value_new_int(a, s->gear_changes)},
        {"entries_over_300_kmh", rv_value_new_int(a, s->fast_entries)},
        {"max_wheel_slip_pct", rv_value_new_double(a, s->slip_max)},
        {"mean_brake_balance_pct",
         s->braking
             ? rv_value_new_double(a, demo_round_to(s->balance_sum / (double)s->braking, 100.0))
             : rv_value_new_null(a)},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!put(a, v, f[i].name, f[i].v)) {
            rv_ctx_fail(ctx, "out of memory building the lap summary");
            return NULL;
        }
    }
    return v;
}

/* sink after the window: counts each car's one-second summaries and keeps its fastest second. */
static rv_err_t second_sink(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    demo_t *d = opaque;
    const char *key = rv_value_str(rv_ctx_key(ctx), NULL);
    int no = key && strncmp(key, "car-", 4) == 0 ? atoi(key + 4) : 0;
    if (no < 1 || no > d->o->cars) {
        rv_ctx_fail(ctx, "a window of no car of 1..%d", d->o->cars);
        return RV_ERR_INVALID_ARG;
    }
    car_state_t *c = &d->cars[no - 1];
    double mean = num(v, "mean_kmh");
    if (c->windows++ == 0 || mean > c->best_second) {
        c->best_second = mean;
        c->best_second_at = rv_value_int(rv_value_get_cstr(v, "start"));
    }
    return RV_OK;
}

/* ---- topics and the application ----------------------------------------------------------- */

static const struct {
    const char *name;
    const char *what;
} demo_topics[] = {
    {TOPIC, "the telemetry streams (input), one per car, protobuf"},
    {DERIVED, "the main channels resampled to 10 Hz, with the derived ones"},
    {EVENTS, "gear changes and entries above 300 km/h, JSON"},
    {SUMMARY, "one summary per car and second (1 s tumbling window)"},
    {LAPS, "one summary per car and lap (at its lap marker)"},
};
#define NTOPICS (sizeof demo_topics / sizeof demo_topics[0])
#define CHANGELOG GROUP "--changelog--" TOPIC "--" STORE

/* The application's log lines (warnings and errors only) and failed records go to stderr. */
static void app_log(void *opaque, rv_log_level_t level, const char *subsystem, const char *msg) {
    (void)opaque;
    if (level > RV_LOG_WARNING) {
        return;
    }
    fprintf(stderr, "rivulet " COMMAND ": %s: %s: %s\n", rv_log_level_name(level), subsystem, msg);
}

static void app_error(void *opaque, rv_err_t code, const char *message) {
    (void)opaque;
    fprintf(stderr, "rivulet " COMMAND ": a record failed (%s): %s\n", rv_err_name(code), message);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Deletes the window's store directory of an earlier run (its changelog goes with the topics):
 * state.dir/GROUP/TOPIC/STORE. */
static int reset_state(const char *state_dir) {
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s/%s/%s", state_dir, GROUP, TOPIC, STORE);
    if (n < 0 || (size_t)n >= sizeof path) {
        return cli_fail(CLI_FAILED, COMMAND, "state.dir '%s' is too long", state_dir);
    }
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT) {
        return cli_fail(CLI_FAILED, COMMAND, "removing the demo's old state '%s': %s", path,
                        strerror(errno));
    }
    return 0;
}

/* Deletes and creates every topic of the demo (and deletes the window's changelog), so a run
 * never appends to an earlier one. */
static int recreate_topics(rv_broker_t *broker) {
    for (size_t i = 0; i <= NTOPICS; i++) {
        const char *name = i < NTOPICS ? demo_topics[i].name : CHANGELOG;
        rv_error_t *err = NULL;
        rv_err_t e = rv_broker_delete_topic(broker, name, &err);
        if (e != RV_OK && e != RV_ERR_NOT_FOUND) {
            return cli_fail_error(CLI_FAILED, COMMAND, err);
        }
        rv_error_destroy(err);
        err = NULL;
        if (i < NTOPICS && rv_broker_create_topic(broker, name, PARTITIONS, NULL, &err) != RV_OK) {
            return cli_fail_error(CLI_FAILED, COMMAND, err);
        }
    }
    return 0;
}

/* The group's offsets from an earlier run point into the deleted topic: start it at 0. */
static int reset_group(rv_broker_t *broker) {
    rv_error_t *err = NULL;
    rv_consumer_opts_t co = {.group = GROUP};
    rv_consumer_t *c = rv_consumer_new(broker, &co, &err);
    rv_topic_partition_t tps[PARTITIONS];
    for (int i = 0; i < PARTITIONS; i++) {
        tps[i] = (rv_topic_partition_t){TOPIC, i, 0};
    }
    if (!c || rv_consumer_commit(c, tps, PARTITIONS, &err) != RV_OK) {
        rv_consumer_close(c);
        cli_fail(CLI_FAILED, COMMAND, "resetting the offsets of group '%s': %s", GROUP,
                 err ? rv_error_message(err) : "out of memory");
        rv_error_destroy(err);
        return CLI_FAILED;
    }
    rv_consumer_close(c);
    return 0;
}

/* Builds the dataframe graph (see the file comment). A topic that cannot be declared fails
 * here (false, *err says why); an operator's bad argument surfaces from rv_app_run(). */
static bool build_pipeline(rv_app_t *app, demo_t *d, rv_error_t **err) {
    rv_topic_opts_t in = {
        .key_serde = "string", .value_serde = "telemetry", .partitions = PARTITIONS};
    rv_topic_opts_t keyed = {
        .key_serde = "string", .value_serde = "json", .partitions = PARTITIONS};
    rv_topic_t *telemetry = rv_app_topic(app, TOPIC, &in, err);
    rv_topic_t *derived = telemetry ? rv_app_topic(app, DERIVED, &keyed, err) : NULL;
    rv_topic_t *events = derived ? rv_app_topic(app, EVENTS, &keyed, err) : NULL;
    rv_topic_t *summary = events ? rv_app_topic(app, SUMMARY, &keyed, err) : NULL;
    rv_topic_t *laps = summary ? rv_app_topic(app, LAPS, &keyed, err) : NULL;
    if (!laps) {
        return false;
    }
    rv_df_t *packets = rv_app_dataframe(app, telemetry);
    rv_df_t *rows = rv_df_expand(packets, frame_rows, d);

    /* Branch 1: one summary per car and second, closed at the end by the coverage packets. */
    rv_df_t *ticks = rv_df_expand(packets, coverage_tick, d);
    rv_df_t *timed[] = {rows, ticks};
    rv_df_t *w = rows && ticks ? rv_df_concat(timed, 2) : NULL;
    w = rv_df_set_timestamp(w, row_ms, d);
    rv_window_opts_t wo = {.name = STORE,
                           .type = RV_WINDOW_TUMBLING,
                           .size = WINDOW_MS,
                           .grace_ms = GRACE_MS,
                           .emit = RV_EMIT_FINAL};
    rv_agg_t aggs[] = {{.name = "mean_kmh", .kind = RV_AGG_MEAN, .field = "speed_kmh"},
                       {.name = "max_kmh", .kind = RV_AGG_MAX, .field = "speed_kmh"},
                       {.name = "max_rpm", .kind = RV_AGG_MAX, .field = "rpm"},
                       {.name = "mean_throttle_pct", .kind = RV_AGG_MEAN, .field = "throttle_pct"},
                       {.name = "samples", .kind = RV_AGG_COUNT, .field = "speed_kmh"}};
    w = rv_df_window(w, &wo, aggs, sizeof aggs / sizeof aggs[0]);
    rv_df_sink(rv_df_to_topic(w, summary), second_sink, d);

    /* The derived channels, which the lap statistics and the derived topic read. */
    rv_df_t *x = rv_df_set_field(rows, "speed_ms", speed_ms, d);
    x = rv_df_set_field(x, "wheel_slip_pct", wheel_slip, d);
    x = rv_df_set_field(x, "brake_balance_pct", brake_balance, d);

    /* Branch 2: the lap statistics; the lap markers turn them into summaries. */
    rv_df_sink(x, lap_sink, d);
    rv_df_t *marks = rv_df_expand(packets, lap_markers, d);
    rv_df_to_topic(rv_df_apply(marks, lap_summary, d), laps);

    /* Branches 3 and 4: events, merged into one topic. */
    rv_df_t *gears = rv_df_filter(x, gear_changed, d);
    gears = rv_df_apply(gears, gear_event, d);
    rv_arena_t *arena = rv_arena_new(0);
    rv_value_t *limit = arena ? rv_value_new_double(arena, FAST_KMH) : NULL;
    rv_df_t *fast = rv_df_filter_field(x, "speed_kmh", RV_CMP_GT, limit);
    rv_arena_destroy(arena); /* the constant was copied */
    fast = rv_df_filter(fast, fast_entry, d);
    fast = rv_df_apply(fast, fast_event, d);
    rv_df_t *both[] = {gears, fast};
    rv_df_to_topic(gears && fast ? rv_df_concat(both, 2) : NULL, events);

    /* Branch 5: the channels resampled to DERIVED_HZ, with the derived ones. */
    rv_df_t *r = rv_df_expand(packets, resample_rows, d);
    r = rv_df_set_field(r, "speed_ms", speed_ms, d);
    r = rv_df_set_field(r, "wheel_slip_pct", wheel_slip, d);
    r = rv_df_set_field(r, "brake_balance_pct", brake_balance, d);
    static const char *const keep[] = {
        "car", "lap",  "t_ns",         "speed_kmh",      "speed_ms",
        "rpm", "gear", "throttle_pct", "wheel_slip_pct", "brake_balance_pct"};
    rv_df_to_topic(rv_df_select(r, keep, sizeof keep / sizeof keep[0]), derived);
    return true;
}

/* ---- after the run ------------------------------------------------------------------------ */

/* Records stored in a topic (the sum of its partitions' watermark spans), or -1. */
static int64_t topic_records(rv_broker_t *broker, const char *topic) {
    int64_t total = 0;
    for (int p = 0; p < PARTITIONS; p++) {
        int64_t lo, hi;
        if (rv_broker_watermarks(broker, topic, p, &lo, &hi, NULL) != RV_OK) {
            return -1;
        }
        total += hi - lo;
    }
    return total;
}

/* The sessions of the input topic, as `rivulet sessions` lists them (without the wall-clock
 * start and end, so that a seed always prints the same table). Returns 0 or prints why. */
static int print_sessions(rv_broker_t *broker) {
    rv_error_t *err = NULL;
    rv_tcatalogue_t *cat = rv_tcatalogue_new();
    if (!cat) {
        return cli_fail(CLI_FAILED, COMMAND, "out of memory");
    }
    if (rv_tcatalogue_scan(cat, broker, TOPIC, NULL, &err) != RV_OK) {
        rv_tcatalogue_destroy(cat);
        return cli_fail_error(CLI_FAILED, COMMAND, err);
    }
    printf("sessions in '%s':\n  %-7s %-28s %9s %-6s %7s %6s %7s %6s %7s\n", TOPIC, "STREAM",
           "NAME", "DURATION", "STATE", "RECORDS", "FRAMES", "ROWS", "EVENTS", "MARKERS");
    for (size_t i = 0; i < rv_tcatalogue_count(cat); i++) {
        const rv_tcatalogue_entry_t *e = rv_tcatalogue_entry(cat, i);
        int64_t d = e->has_start && e->has_end ? e->end - e->start : 0;
        printf("  %-7s %-28s %5" PRId64 ".%03" PRId64 "s %-6s %7" PRIu64 " %6" PRIu64 " %7" PRIu64
               " %6" PRIu64 " %7" PRIu64 "\n",
               e->stream_id, e->name ? e->name : "-", d / 1000000000, d / 1000000 % 1000,
               e->ended && e->end_type == RV_TSTREAM_CLOSED ? "closed" : "live", e->records,
               e->frames, e->rows, e->events, e->markers);
    }
    rv_tcatalogue_destroy(cat);
    return 0;
}

static void print_table(const demo_t *d) {
    const demo_opts_t *o = d->o;
    printf("%-7s %4s %9s %9s %10s %8s %7s %10s %7s %8s\n", "car", "lap", "time s", "top km/h",
           "mean km/h", "max rpm", "shifts", ">300 km/h", "slip %", "brake %F");
    for (int c = 0; c < o->cars; c++) {
        double best = 0;
        int best_lap = 0;
        for (int l = 0; l < o->laps; l++) {
            const lap_stats_t *s = &d->stats[c * MAX_LAPS + l];
            if (!s->samples) {
                continue;
            }
            double secs = (double)s->lap_ns / 1e9;
            char balance[16] = "-";
            if (s->braking) {
                snprintf(balance, sizeof balance, "%.1f", s->balance_sum / (double)s->braking);
            }
            printf("car-%02d  %4d %9.3f %9.1f %10.1f %8.0f %7d %10d %7.2f %8s\n", c + 1, l + 1,
                   secs, s->speed_max, s->speed_sum / (double)s->samples, s->rpm_max,
                   s->gear_changes, s->fast_entries, s->slip_max, balance);
            if (l > 0 && (best == 0 || secs < best)) { /* lap 1 starts from the grid */
                best = secs;
                best_lap = l + 1;
            }
        }
        if (best_lap) {
            printf("car-%02d  best flying lap: lap %d in %.3f s\n", c + 1, best_lap, best);
        }
        const car_state_t *cs = &d->cars[c];
        printf("car-%02d  %lld one-second summaries; fastest second: %.1f km/h mean, from "
               "+%lld s\n",
               c + 1, (long long)cs->windows, cs->best_second,
               (long long)((cs->best_second_at - d->start_ns / 1000000) / 1000));
    }
}

static int parse_count(const char *opt, const char *text, int min, int max, int *out) {
    int64_t v;
    if (cli_parse_int64(text, min, max, &v)) {
        return cli_fail(CLI_USAGE, COMMAND, "%s needs a number from %d to %d, not '%s'", opt, min,
                        max, text);
    }
    *out = (int)v;
    return 0;
}

/* Where the window's state goes: state.dir when set, else beside a local log's directory. */
static void state_dir_for(const cli_client_t *client, rv_conf_t *conf) {
    if (rv_conf_is_set(conf, "state.dir") || strncmp(client->url, "local:", 6) != 0) {
        return;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s.state", client->url + 6);
    rv_conf_set(conf, "state.dir", dir, NULL);
}

/* Runs the demo once the options are known; returns the exit status. */
static int run_demo(cli_client_t *client, const demo_opts_t *o) {
    rv_error_t *err = NULL;
    rv_conf_t *conf = rv_conf_dup(client->conf);
    if (!conf) {
        return cli_fail(CLI_FAILED, COMMAND, "out of memory");
    }
    if (!rv_conf_is_set(conf, "auto.offset.reset")) {
        rv_conf_set(conf, "auto.offset.reset", "earliest", NULL);
    }
    state_dir_for(client, conf);
    rv_app_opts_t ao = {.broker_url = client->url,
                        .group = GROUP,
                        .conf = conf,
                        .log_cb = app_log,
                        .on_error = app_error};
    rv_app_t *app = rv_app_new(&ao, &err);
    int status = app ? reset_state(rv_conf_get(conf, "state.dir")) : CLI_OK;
    rv_conf_destroy(conf);
    if (!app) {
        return cli_fail_error(CLI_FAILED, COMMAND, err);
    }
    rv_broker_t *broker = rv_app_broker(app);
    demo_t d = {.o = o, .period_ns = 1000000000 / o->rate_hz};
    d.stats = calloc((size_t)MAX_CARS * MAX_LAPS, sizeof *d.stats);
    if (status == CLI_OK && !d.stats) {
        status = cli_fail(CLI_FAILED, COMMAND, "out of memory");
    }
    for (int c = 0; c < MAX_CARS; c++) {
        d.cars[c].last_fast_tick = -2;
    }
    int threads = (int)rv_conf_get_int(client->conf, "app.threads");
    printf("rivulet %s demo: %d cars, %d laps, %d channels (%d at %d Hz, %d at %d Hz), seed "
           "%llu, on %s\n\n",
           rv_version(), o->cars, o->laps, NPARAMS, DEMO_FAST_CHANNELS, o->rate_hz,
           NPARAMS - DEMO_FAST_CHANNELS, SLOW_HZ, (unsigned long long)o->seed, client->url);
    if (status == CLI_OK) {
        status = recreate_topics(broker);
    }
    if (status == CLI_OK) {
        status = reset_group(broker);
    }

    /* The write side. */
    demo_written_t wr = {0};
    int64_t t0 = rv_clock_mono_ns();
    if (status == CLI_OK) {
        d.start_ns = rv_clock_wall_ns() / 1000000000 * 1000000000; /* a whole second */
        status = demo_write_session(broker, o, d.start_ns, d.period_ns, &wr) ? CLI_FAILED : CLI_OK;
    }
    int64_t t1 = rv_clock_mono_ns();
    if (status == CLI_OK) {
        double secs = (double)(t1 - t0) / 1e9;
        printf("wrote %d telemetry streams to topic '%s' (%d partitions, keyed by car), "
               "protobuf, %.1f MB:\n"
               "      %lld records: %lld frames of %lld samples, %lld gear-change events, %lld lap "
               "markers\n"
               "      in %.2f s: %.0f samples/s, simulating and encoding included\n",
               o->cars, TOPIC, PARTITIONS, (double)wr.bytes / 1e6, (long long)wr.records,
               (long long)wr.frames, (long long)wr.rows, (long long)wr.events,
               (long long)wr.markers, secs, (double)wr.rows / secs);
        status = print_sessions(broker);
    }
    if (status == CLI_OK) {
        printf("ran   the application '%s' (consumer group, %d worker thread%s): a dataframe "
               "pipeline reading '%s' (serialiser 'telemetry')\n"
               "        expand frames -> one record per sample\n"
               "          -> window 1 s tumbling per car (coverage closes the last): mean and max "
               "speed, max rpm -> to_topic '%s'\n"
               "          -> set_field speed_ms, wheel_slip_pct, brake_balance_pct (derived "
               "channels)\n"
               "             -> sink: per car and lap statistics\n"
               "             -> filter (gear changed) -> apply (event) ---------------------+\n"
               "             -> filter_field speed_kmh > 300 -> filter (entry) -> apply (event) "
               "-+-> to_topic '%s'\n"
               "        expand lap markers -> apply (the lap's statistics) -> to_topic '%s'\n"
               "        expand frames -> resample to %d Hz per car (mean, max, last) -> "
               "set_field (derived channels)\n"
               "          -> select (10 fields) -> to_topic '%s'\n",
               GROUP, threads > 0 ? threads : 1, threads > 1 ? "s" : "", TOPIC, SUMMARY, EVENTS,
               LAPS, DERIVED_HZ, DERIVED);
        fflush(stdout);
        if (!build_pipeline(app, &d, &err)) {
            status = cli_fail_error(CLI_FAILED, COMMAND, err);
            err = NULL;
        }
    }

    /* The read side: the application, until every input partition is read to its end. */
    rv_app_metrics_t m = {0};
    int64_t t2 = t1, t3 = t1;
    if (status == CLI_OK) {
        cli_metrics_t *mx = o->metrics ? cli_metrics_start(app, COMMAND, o->metrics_ms) : NULL;
        rv_run_opts_t ro = {.until_end = true, .handle_signals = true};
        t2 = rv_clock_mono_ns();
        rv_err_t e = rv_app_run(app, &ro, &err);
        t3 = rv_clock_mono_ns();
        cli_metrics_stop(mx);
        rv_app_metrics(app, &m);
        if (e != RV_OK) {
            status = cli_fail_error(CLI_FAILED, COMMAND, err);
            err = NULL;
        }
    }
    rv_error_destroy(err);
    err = NULL;

    int64_t stored[NTOPICS];
    for (size_t i = 0; i < NTOPICS; i++) {
        stored[i] = status == CLI_OK ? topic_records(broker, demo_topics[i].name) : -1;
    }
    int64_t gear_changes = 0, entries = 0, laps = 0, windows = 0, samples = 0;
    for (int i = 0; d.stats && i < MAX_CARS * MAX_LAPS; i++) {
        samples += d.stats[i].samples;
        gear_changes += d.stats[i].gear_changes;
        entries += d.stats[i].fast_entries;
        laps += d.stats[i].lap_ns > 0;
    }
    for (int c = 0; c < MAX_CARS; c++) {
        windows += d.cars[c].windows;
        rv_tinterp_destroy(d.cars[c].ip); /* a stream that never ended */
        rv_tframe_builder_destroy(d.cars[c].b);
    }
    if (status == CLI_OK) {
        double secs = (double)(t3 - t2) / 1e9;
        printf("processed %lld records (%lld samples) in %.2f s: %.0f records/s, %.0f samples/s;\n"
               "      %lld records out, %lld errors, %lld checkpoint%s\n"
               "      ('%s' %lld at %d Hz, '%s' %lld: %lld gear changes and %lld entries above "
               "300 km/h,\n"
               "       '%s' %lld one-second summaries, '%s' %lld lap summaries)\n\n",
               (long long)m.records_in, (long long)samples, secs, (double)m.records_in / secs,
               (double)samples / secs, (long long)m.records_out, (long long)m.errors,
               (long long)m.checkpoints, m.checkpoints == 1 ? "" : "s", DERIVED,
               (long long)stored[1], DERIVED_HZ, EVENTS, (long long)stored[2],
               (long long)gear_changes, (long long)entries, SUMMARY, (long long)stored[3], LAPS,
               (long long)stored[4]);
        print_table(&d);
        bool consistent = m.records_in == wr.records && m.errors == 0 && stored[0] == wr.records &&
                          samples == wr.rows && stored[1] == wr.frames &&
                          gear_changes == wr.events && stored[2] == gear_changes + entries &&
                          stored[3] == windows && stored[4] == laps && laps == wr.markers &&
                          m.records_out == stored[1] + stored[2] + stored[3] + stored[4];
        if (!consistent) {
            status = cli_fail(CLI_FAILED, COMMAND,
                              "the counts do not add up: %lld records written (%lld samples, "
                              "%lld gear changes, %lld laps), %lld processed (%lld samples), "
                              "%lld out, %lld "
                              "errors; topics hold %lld, %lld, %lld (events expected %lld), "
                              "%lld (windows %lld), %lld (laps %lld)",
                              (long long)wr.records, (long long)wr.rows, (long long)wr.events,
                              (long long)wr.markers, (long long)m.records_in, (long long)samples,
                              (long long)m.records_out, (long long)m.errors, (long long)stored[0],
                              (long long)stored[1], (long long)stored[2],
                              (long long)(gear_changes + entries), (long long)stored[3],
                              (long long)windows, (long long)stored[4], (long long)laps);
        }
    }
    if (status == CLI_OK) {
        const char *u = client->url;
        printf("\nThe data is in %s", u);
        if (strncmp(u, "local:", 6) == 0) {
            printf(" (the directory %s)", u + 6);
        }
        printf(":\n");
        for (size_t i = 0; i < NTOPICS; i++) {
            printf("  %-15s %8lld records  %s\n", demo_topics[i].name, (long long)stored[i],
                   demo_topics[i].what);
        }
        printf("Look further with:\n"
               "  rivulet sessions -b %s -t %s\n"
               "  rivulet replay -b %s -t %s -s car-01 --max --table | head -40\n"
               "  rivulet consume -b %s -t %s --telemetry -e -c 12\n"
               "  rivulet consume -b %s -t %s -e -f '%%k %%s\\n' | head\n"
               "  rivulet consume -b %s -t %s -e -f '%%k %%s\\n'\n"
               "  rivulet consume -b %s -t %s -e -c 5\n"
               "  rivulet demo -b %s --metrics    (the application's counters while it runs)\n",
               u, TOPIC, u, TOPIC, u, TOPIC, u, SUMMARY, u, LAPS, u, EVENTS, u);
    }
    free(d.stats);
    rv_app_destroy(app);
    return status;
}

int cmd_demo(int argc, char **argv) {
    demo_opts_t o = {.cars = 4, .laps = 5, .rate_hz = 100, .seed = 1};
    cli_client_t client;
    if (cli_client_init(&client, COMMAND)) {
        return CLI_FAILED;
    }
    static const struct option longopts[] = {{"cars", required_argument, NULL, 'C'},
                                             {"laps", required_argument, NULL, 'L'},
                                             {"rate", required_argument, NULL, 'R'},
                                             {"seed", required_argument, NULL, 'S'},
                                             {"metrics", optional_argument, NULL, 'M'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    int status = CLI_OK;
    opterr = 0;
    optind = 1;
    while (status == CLI_OK && (opt = getopt_long(argc, argv, ":b:X:h", longopts, NULL)) != -1) {
        int r = cli_client_option(&client, opt, optarg);
        if (r >= 0) {
            status = r;
        } else if (opt == 'h') {
            usage(stdout);
            cli_client_free(&client);
            return CLI_OK;
        } else if (opt == 'C') {
            status = parse_count("--cars", optarg, 1, MAX_CARS, &o.cars);
        } else if (opt == 'L') {
            status = parse_count("--laps", optarg, 1, MAX_LAPS, &o.laps);
        } else if (opt == 'R') {
            status = parse_count("--rate", optarg, SLOW_HZ, 1000, &o.rate_hz);
            if (status == CLI_OK && o.rate_hz % SLOW_HZ != 0) {
                status = cli_fail(CLI_USAGE, COMMAND, "--rate needs a multiple of %d, not '%s'",
                                  SLOW_HZ, optarg);
            }
        } else if (opt == 'S') {
            int64_t v = 0;
            if (cli_parse_int64(optarg, 0, INT64_MAX, &v)) {
                status = cli_fail(CLI_USAGE, COMMAND,
                                  "--seed needs a number of 0 or more, not '%s'", optarg);
            } else {
                o.seed = (uint64_t)v;
            }
        } else if (opt == 'M') {
            o.metrics = true;
            status = cli_metrics_parse(COMMAND, optarg, &o.metrics_ms);
        } else {
            status = cli_bad_option(COMMAND, opt, argv);
        }
    }
    if (status == CLI_OK && optind < argc) {
        status = cli_fail(CLI_USAGE, COMMAND, "unexpected argument '%s'", argv[optind]);
    }
    if (status == CLI_OK) {
        status = run_demo(&client, &o);
    }
    cli_client_free(&client);
    return status;
}
