/*
 * cmd_demo.c: `rivulet demo`, the main job: a simulated motorsport session processed by a
 * rivulet application.
 *
 * The write side simulates several cars lapping a circuit (a sample of 19 channels every few
 * milliseconds, from a seeded generator, so a given seed always gives the same session) and
 * writes it as JSON records keyed by car to topic demo-telemetry. The read side is an
 * application whose dataframe pipeline, fed by that topic, adds derived channels (speed in m/s,
 * rear-wheel slip, brake balance), writes the enriched samples to demo-derived, turns gear
 * changes and entries above 300 km/h into events on demo-events (filters, then a function
 * building the event), and accumulates per car and lap summaries in a sink; once every input
 * partition is read to its end, the summaries go to demo-laps and are printed with what ran,
 * how fast, where the data is and how to look at it. Every topic is recreated on each run.
 *
 * Per-car state (the previous gear, the last fast sample) lives in the demo and is touched only
 * by the worker owning that car's partition (records are keyed by car). It must finish in
 * seconds and never leave a topic half-written without saying so.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define COMMAND "demo"
#define GROUP "rivulet-demo"
#define TOPIC "demo-telemetry"
#define DERIVED "demo-derived"
#define EVENTS "demo-events"
#define LAPS "demo-laps"
#define PARTITIONS 4
#define MAX_CARS 20
#define MAX_LAPS 50
#define LAP_METRES 5200.0
#define FAST_KMH 300.0

typedef struct demo_opts_s {
    int cars;
    int laps;
    int rate_hz;
    uint64_t seed;
    bool metrics;
    int64_t metrics_ms;
} demo_opts_t;

/* One simulated car: where it is on the circuit and the state of its channels. */
typedef struct car_s {
    char id[16];
    double distance_m; /* since the start of the session */
    double speed_kmh;
    double pace; /* the car's speed factor, around 1.0 */
    double tyre_c[4];
    double fuel_kg;
    int gear;
} car_t;

/* Per car and lap, what the sink and the event filters accumulate. */
typedef struct lap_stats_s {
    int64_t first_ns, last_ns;
    int64_t samples;
    double speed_sum, speed_max, rpm_max, slip_max;
    double balance_sum; /* brake balance (% front) summed over braking samples */
    int64_t braking;
    int gear_changes;
    int fast_entries; /* times the car went above FAST_KMH */
} lap_stats_t;

/* What the read side keeps per car, between records. */
typedef struct car_state_s {
    int last_gear;          /* 0 before the car's first sample */
    int from_gear;          /* the gear before the last change */
    int64_t last_fast_tick; /* the sample index of the last sample above FAST_KMH, or -2 */
} car_state_t;

/* The read side's state, shared by the pipeline's functions. */
typedef struct demo_s {
    const demo_opts_t *o;
    int64_t start_ns;  /* t_ns of the first tick */
    int64_t period_ns; /* between two samples of a car */
    car_state_t cars[MAX_CARS];
    lap_stats_t *stats; /* [MAX_CARS * MAX_LAPS] */
} demo_t;

/* ---- the simulation ---------------------------------------------------------------------- */

static uint64_t rng_state;

static void seed_rng(uint64_t seed) {
    /* splitmix64 of the seed, never 0 (xorshift's one fixed point) */
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    rng_state = (z ^ (z >> 31)) | 1;
}

static double noise(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0 - 0.5;
}

/* The speed the track allows at `fraction` of a lap: five straights and five corners. */
static double target_speed(double fraction, double pace) {
    double wave = sin(2.0 * M_PI * 5.0 * fraction);
    double corner = 0.5 + 0.5 * wave;
    return (95.0 + 235.0 * corner * corner) * pace;
}

static int gear_for(double kmh) {
    static const double tops[] = {85, 125, 160, 195, 230, 265, 300};
    int g = 1;
    while (g <= 7 && kmh > tops[g - 1]) {
        g++;
    }
    return g;
}

static double rpm_for(double kmh, int gear) {
    static const double lows[] = {0, 0, 85, 125, 160, 195, 230, 265, 300};
    static const double highs[] = {0, 85, 125, 160, 195, 230, 265, 300, 360};
    double span = highs[gear] - lows[gear];
    return 6500.0 + 5500.0 * (kmh - lows[gear]) / span;
}

/* `v` rounded to `scale` steps per unit (100: hundredths), so that it prints short. */
static double round_to(double v, double scale) {
    return round(v * scale) / scale;
}

#define CHANNELS 19

/* Advances a car by dt seconds and returns its sample (an object in `arena`). */
static rv_value_t *step_car(rv_arena_t *arena, car_t *car, double dt, int64_t t_ns) {
    int lap = (int)(car->distance_m / LAP_METRES) + 1;
    double fraction = fmod(car->distance_m, LAP_METRES) / LAP_METRES;
    double target = target_speed(fraction, car->pace);
    double accel = target > car->speed_kmh ? 45.0 : -140.0; /* km/h per second */
    double next = car->speed_kmh + accel * dt;
    if ((accel > 0 && next > target) || (accel < 0 && next < target)) {
        next = target;
    }
    double throttle = accel > 0 ? 100.0 : 0.0;
    double brake = accel < 0 ? (car->speed_kmh - next) / (140.0 * dt) : 0.0; /* 0..1 */
    car->speed_kmh = next + noise() * 0.4;
    car->distance_m += car->speed_kmh / 3.6 * dt;
    car->gear = gear_for(car->speed_kmh);
    car->fuel_kg -= 0.00055 * car->speed_kmh * dt;
    for (int i = 0; i < 4; i++) {
        car->tyre_c[i] += (car->speed_kmh / 300.0 - 0.45) * dt * 0.8 + noise() * 0.05;
    }
    /* The driven rear wheels spin faster than the car under power, most in low gears. */
    double slip = accel > 0 ? 0.01 + 0.06 / car->gear : -0.004;
    double wheel = car->speed_kmh * (1.0 + slip + noise() * 0.004);
    double pressure = brake * (80.0 + noise() * 4.0);
    double bias = 0.57 + noise() * 0.02; /* the front's share of the braking */

    rv_value_t *s = rv_value_new_object(arena, CHANNELS);
    struct {
        const char *name;
        rv_value_t *v;
    } fields[CHANNELS] = {
        {"car", rv_value_new_string_ref(arena, car->id, strlen(car->id))},
        {"lap", rv_value_new_int(arena, lap)},
        {"t_ns", rv_value_new_int(arena, t_ns)},
        {"distance_m", rv_value_new_double(arena, round_to(car->distance_m, 100.0))},
        {"speed_kmh", rv_value_new_double(arena, round_to(car->speed_kmh, 1000.0))},
        {"rear_wheel_kmh", rv_value_new_double(arena, round_to(wheel, 1000.0))},
        {"rpm", rv_value_new_int(arena, (int64_t)rpm_for(car->speed_kmh, car->gear))},
        {"gear", rv_value_new_int(arena, car->gear)},
        {"throttle_pct", rv_value_new_double(arena, throttle)},
        {"brake_front_bar", rv_value_new_double(arena, round_to(pressure * bias, 10.0))},
        {"brake_rear_bar", rv_value_new_double(arena, round_to(pressure * (1.0 - bias), 10.0))},
        {"drs", rv_value_new_bool(arena, fraction > 0.02 && fraction < 0.09)},
        {"tyre_fl_c", rv_value_new_double(arena, round_to(car->tyre_c[0], 10.0))},
        {"tyre_fr_c", rv_value_new_double(arena, round_to(car->tyre_c[1], 10.0))},
        {"tyre_rl_c", rv_value_new_double(arena, round_to(car->tyre_c[2], 10.0))},
        {"tyre_rr_c", rv_value_new_double(arena, round_to(car->tyre_c[3], 10.0))},
        {"fuel_kg", rv_value_new_double(arena, round_to(car->fuel_kg, 1000.0))},
        {"g_lat", rv_value_new_double(arena, round_to(sin(fraction * 60.0) * 3.5, 100.0))},
        {"g_long", rv_value_new_double(arena, round_to(accel / 3.6 / 9.81, 100.0))},
    };
    for (size_t i = 0; i < CHANNELS; i++) {
        if (!fields[i].v ||
            rv_value_set(arena, s, fields[i].name, strlen(fields[i].name), fields[i].v) != RV_OK) {
            return NULL;
        }
    }
    return s;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: rivulet demo [-b URL] [-X name=value] [--cars N] [--laps N] [--rate HZ]\n"
            "                    [--seed N] [--metrics[=SECONDS]]\n\n"
            "Simulates a motorsport session into the topic '" TOPIC "', then runs an\n"
            "application (consumer group '" GROUP "') whose dataframe pipeline derives channels\n"
            "('" DERIVED "'), detects events ('" EVENTS "') and summarises every car and lap\n"
            "('" LAPS "'). Every topic is recreated on each run.\n"
            "  -b URL       broker (default local:./rivulet-data)\n"
            "  -X name=value  a property for the broker and the application (app.threads, ...)\n"
            "  --cars N     cars on track (1..%d, default 4)\n"
            "  --laps N     laps per car (1..%d, default 5)\n"
            "  --rate HZ    samples per second per car (1..1000, default 100)\n"
            "  --seed N     the simulation's seed (default 1): a seed always gives the same data\n"
            "  --metrics[=SECONDS]  print the application's counters to stderr every SECONDS\n"
            "               (default 1; 0: only at the end) and when it stops\n",
            MAX_CARS, MAX_LAPS);
}

typedef struct produced_s {
    int64_t ok;
    int64_t failed;
    rv_err_t first_error;
} produced_t;

static void on_delivery(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    produced_t *p = opaque;
    (void)rec;
    (void)rec_opaque;
    if (err == RV_OK) {
        p->ok++;
    } else if (p->failed++ == 0) {
        p->first_error = err;
    }
}

/* Sends a record, waiting out a full queue; prints why on failure. */
static int send_record(rv_producer_t *p, const rv_record_t *rec) {
    rv_err_t e;
    while ((e = rv_producer_send(p, rec, NULL)) == RV_ERR_AGAIN) {
        rv_producer_poll(p, 10);
    }
    if (e != RV_OK) {
        return cli_fail(CLI_FAILED, COMMAND, "sending to '%s' failed: %s", rec->topic,
                        rv_err_str(e));
    }
    return 0;
}

/* Flushes and checks every delivery report; prints why on failure. */
static int flush_checked(rv_producer_t *p, const produced_t *produced, const char *topic) {
    rv_error_t *err = NULL;
    if (rv_producer_flush(p, 60000, &err) != RV_OK) {
        return cli_fail_error(CLI_FAILED, COMMAND, err);
    }
    if (produced->failed) {
        return cli_fail(CLI_FAILED, COMMAND, "%lld records were not stored in '%s': %s",
                        (long long)produced->failed, topic, rv_err_str(produced->first_error));
    }
    return 0;
}

/* Writes the simulated session; returns the number of records or -1 after printing why. */
static int64_t write_session(rv_broker_t *broker, const demo_opts_t *o, int64_t start_ns,
                             int64_t period_ns, int64_t *bytes) {
    rv_error_t *err = NULL;
    produced_t produced = {0};
    rv_producer_opts_t popts = {.delivery_cb = on_delivery, .opaque = &produced};
    rv_producer_t *p = rv_producer_new(broker, &popts, &err);
    if (!p) {
        cli_fail_error(CLI_FAILED, COMMAND, err);
        return -1;
    }
    seed_rng(o->seed);
    car_t cars[MAX_CARS];
    for (int c = 0; c < o->cars; c++) {
        memset(&cars[c], 0, sizeof cars[c]);
        snprintf(cars[c].id, sizeof cars[c].id, "car-%02d", c + 1);
        cars[c].pace = 1.0 - 0.012 * c + noise() * 0.004;
        cars[c].speed_kmh = 180.0;
        cars[c].distance_m = -40.0 * c; /* staggered grid */
        cars[c].fuel_kg = 100.0;
        for (int i = 0; i < 4; i++) {
            cars[c].tyre_c[i] = 85.0;
        }
    }
    rv_arena_t *arena = rv_arena_new(0);
    rv_strbuf_t json = RV_STRBUF_INIT;
    double dt = 1.0 / o->rate_hz;
    int64_t records = 0;
    int finished = 0;
    for (int64_t tick = 0; arena && finished < o->cars; tick++) {
        int64_t t_ns = start_ns + tick * period_ns;
        finished = 0;
        rv_arena_reset(arena);
        for (int c = 0; c < o->cars; c++) {
            if (cars[c].distance_m >= LAP_METRES * o->laps) {
                finished++;
                continue;
            }
            rv_value_t *sample = step_car(arena, &cars[c], dt, t_ns);
            rv_strbuf_clear(&json);
            if (!sample) {
                cli_fail(CLI_FAILED, COMMAND, "out of memory");
                records = -1;
                goto out;
            }
            if (rv_json_write(&json, sample, RV_JSON_COMPACT, &err) != RV_OK) {
                cli_fail_error(CLI_FAILED, COMMAND, err);
                records = -1;
                goto out;
            }
            rv_record_t rec = {.topic = TOPIC,
                               .partition = RV_PARTITION_ANY,
                               .timestamp_ms = t_ns / 1000000,
                               .key = cars[c].id,
                               .key_len = strlen(cars[c].id),
                               .value = json.data,
                               .value_len = json.len};
            if (send_record(p, &rec)) {
                records = -1;
                goto out;
            }
            records++;
            *bytes += (int64_t)json.len;
        }
    }
    if (!arena) {
        cli_fail(CLI_FAILED, COMMAND, "out of memory");
        records = -1;
    } else if (flush_checked(p, &produced, TOPIC)) {
        records = -1;
    }
out:
    rv_producer_close(p);
    rv_strbuf_free(&json);
    rv_arena_destroy(arena);
    return records;
}

/* ---- the pipeline's functions ------------------------------------------------------------ */

/* The car (0-based) and lap (1-based) of a sample, or -1 when they are out of range. */
static int car_of(const demo_t *d, const rv_value_t *v, int *lap) {
    const char *car = rv_value_str(rv_value_get_cstr(v, "car"), NULL);
    int no = car && strncmp(car, "car-", 4) == 0 ? atoi(car + 4) : 0;
    *lap = (int)rv_value_int(rv_value_get_cstr(v, "lap"));
    if (no < 1 || no > d->o->cars || *lap < 1 || *lap > d->o->laps) {
        return -1;
    }
    return no - 1;
}

/* The stats of the sample's car and lap, failing the record when it names neither. */
static lap_stats_t *stats_of(rv_ctx_t *ctx, demo_t *d, const rv_value_t *v, int *car) {
    int lap;
    *car = car_of(d, v, &lap);
    if (*car < 0) {
        rv_ctx_fail(ctx, "the sample names no car of 1..%d or no lap of 1..%d", d->o->cars,
                    d->o->laps);
        return NULL;
    }
    return &d->stats[*car * MAX_LAPS + (lap - 1)];
}

static double num(const rv_value_t *v, const char *name) {
    return rv_value_double(rv_value_get_cstr(v, name));
}

/* set_field speed_ms: the speed in metres per second. */
static rv_value_t *speed_ms(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)opaque;
    return rv_value_new_double(rv_ctx_arena(ctx), round_to(num(v, "speed_kmh") / 3.6, 1000.0));
}

/* set_field wheel_slip_pct: how much faster the driven wheels turn than the car moves. */
static rv_value_t *wheel_slip(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)opaque;
    double car = num(v, "speed_kmh"), wheel = num(v, "rear_wheel_kmh");
    if (car <= 1.0) {
        return rv_value_new_null(rv_ctx_arena(ctx));
    }
    return rv_value_new_double(rv_ctx_arena(ctx), round_to((wheel - car) / car * 100.0, 100.0));
}

/* set_field brake_balance_pct: the front's share of the brake pressure (null off the brakes). */
static rv_value_t *brake_balance(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)opaque;
    double front = num(v, "brake_front_bar"), rear = num(v, "brake_rear_bar");
    if (front + rear <= 0.0) {
        return rv_value_new_null(rv_ctx_arena(ctx));
    }
    return rv_value_new_double(rv_ctx_arena(ctx), round_to(front / (front + rear) * 100.0, 100.0));
}

/* The sink: per car and lap summaries. */
static rv_err_t lap_sink(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    demo_t *d = opaque;
    int car;
    lap_stats_t *s = stats_of(ctx, d, v, &car);
    if (!s) {
        return RV_ERR_INVALID_ARG;
    }
    int64_t t = rv_value_int(rv_value_get_cstr(v, "t_ns"));
    double kmh = num(v, "speed_kmh"), rpm = num(v, "rpm"), slip = num(v, "wheel_slip_pct");
    const rv_value_t *bal = rv_value_get_cstr(v, "brake_balance_pct");
    if (s->samples == 0) {
        s->first_ns = t;
    }
    s->last_ns = t;
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

/* filter: keeps the samples whose gear differs from the car's previous sample. */
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

/* filter (after speed_kmh > FAST_KMH): keeps a fast sample whose predecessor was not fast. */
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
    if (!e || rv_value_set(a, e, "type", 4, rv_value_new_string_ref(a, type, strlen(type)))) {
        return NULL;
    }
    for (size_t i = 0; i < 4; i++) {
        rv_value_t *f = rv_value_get_cstr(v, names[i]);
        if (!f || rv_value_set(a, e, names[i], strlen(names[i]), f) != RV_OK) {
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
    if (!e || rv_value_set(a, e, "from", 4, rv_value_new_int(a, d->cars[car].from_gear)) ||
        rv_value_set(a, e, "to", 2, rv_value_new_int(a, d->cars[car].last_gear))) {
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

/* ---- topics and the application ----------------------------------------------------------- */

static const struct {
    const char *name;
    const char *what;
} demo_topics[] = {
    {TOPIC, "the simulated samples (input), JSON keyed by car"},
    {DERIVED, "the samples' main channels with the derived ones"},
    {EVENTS, "gear changes and entries above 300 km/h"},
    {LAPS, "one summary per car and lap"},
};
#define NTOPICS (sizeof demo_topics / sizeof demo_topics[0])

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

/* Deletes and creates every topic of the demo, so a run never appends to an earlier one. */
static int recreate_topics(rv_broker_t *broker) {
    for (size_t i = 0; i < NTOPICS; i++) {
        rv_error_t *err = NULL;
        rv_err_t e = rv_broker_delete_topic(broker, demo_topics[i].name, &err);
        if (e != RV_OK && e != RV_ERR_NOT_FOUND) {
            return cli_fail_error(CLI_FAILED, COMMAND, err);
        }
        rv_error_destroy(err);
        err = NULL;
        if (rv_broker_create_topic(broker, demo_topics[i].name, PARTITIONS, NULL, &err) != RV_OK) {
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
    rv_topic_opts_t keyed = {
        .key_serde = "string", .value_serde = "json", .partitions = PARTITIONS};
    rv_topic_t *telemetry = rv_app_topic(app, TOPIC, &keyed, err);
    rv_topic_t *derived = telemetry ? rv_app_topic(app, DERIVED, &keyed, err) : NULL;
    rv_topic_t *events = derived ? rv_app_topic(app, EVENTS, &keyed, err) : NULL;
    if (!events) {
        return false;
    }
    rv_df_t *x = rv_app_dataframe(app, telemetry);
    x = rv_df_set_field(x, "speed_ms", speed_ms, d);
    x = rv_df_set_field(x, "wheel_slip_pct", wheel_slip, d);
    x = rv_df_set_field(x, "brake_balance_pct", brake_balance, d);

    /* Branch 1: the lap summaries. */
    rv_df_sink(x, lap_sink, d);

    /* Branches 2 and 3: events, merged into one topic. */
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

    /* Branch 4 (last: it changes the value in place, so no copy is needed): the derived
     * channels with the main ones. */
    static const char *const keep[] = {
        "car",  "lap",          "t_ns",           "speed_kmh",        "speed_ms",
        "gear", "throttle_pct", "wheel_slip_pct", "brake_balance_pct"};
    rv_df_to_topic(rv_df_select(x, keep, sizeof keep / sizeof keep[0]), derived);
    return true;
}

/* ---- after the run ------------------------------------------------------------------------ */

static double lap_seconds(const lap_stats_t *s, const demo_opts_t *o) {
    return (double)(s->last_ns - s->first_ns) / 1e9 + 1.0 / o->rate_hz;
}

/* Writes one summary per car and lap to LAPS; returns how many, or -1 after printing why. */
static int64_t write_laps(rv_broker_t *broker, const demo_t *d) {
    rv_error_t *err = NULL;
    produced_t produced = {0};
    rv_producer_opts_t popts = {.delivery_cb = on_delivery, .opaque = &produced};
    rv_producer_t *p = rv_producer_new(broker, &popts, &err);
    if (!p) {
        cli_fail_error(CLI_FAILED, COMMAND, err);
        return -1;
    }
    rv_arena_t *a = rv_arena_new(0);
    rv_strbuf_t json = RV_STRBUF_INIT;
    int64_t n = 0;
    for (int c = 0; a && c < d->o->cars && n >= 0; c++) {
        for (int l = 0; l < d->o->laps && n >= 0; l++) {
            const lap_stats_t *s = &d->stats[c * MAX_LAPS + l];
            if (!s->samples) {
                continue;
            }
            char car[16];
            snprintf(car, sizeof car, "car-%02d", c + 1);
            rv_arena_reset(a);
            rv_value_t *v = rv_value_new_object(a, 11);
            struct {
                const char *name;
                rv_value_t *v;
            } f[] = {
                {"car", rv_value_new_string(a, car, strlen(car))},
                {"lap", rv_value_new_int(a, l + 1)},
                {"time_s", rv_value_new_double(a, round_to(lap_seconds(s, d->o), 1000.0))},
                {"samples", rv_value_new_int(a, s->samples)},
                {"top_kmh", rv_value_new_double(a, s->speed_max)},
                {"mean_kmh", rv_value_new_double(a, round_to(s->speed_sum / s->samples, 1000.0))},
                {"max_rpm", rv_value_new_double(a, s->rpm_max)},
                {"gear_changes", rv_value_new_int(a, s->gear_changes)},
                {"entries_over_300_kmh", rv_value_new_int(a, s->fast_entries)},
                {"max_wheel_slip_pct", rv_value_new_double(a, s->slip_max)},
                {"mean_brake_balance_pct",
                 s->braking ? rv_value_new_double(a, round_to(s->balance_sum / s->braking, 100.0))
                            : rv_value_new_null(a)},
            };
            bool ok = v != NULL;
            for (size_t i = 0; ok && i < sizeof f / sizeof f[0]; i++) {
                ok = f[i].v && rv_value_set(a, v, f[i].name, strlen(f[i].name), f[i].v) == RV_OK;
            }
            rv_strbuf_clear(&json);
            if (!ok || rv_json_write(&json, v, RV_JSON_COMPACT, &err) != RV_OK) {
                cli_fail(CLI_FAILED, COMMAND, "writing the summary of %s lap %d: %s", car, l + 1,
                         err ? rv_error_message(err) : "out of memory");
                rv_error_destroy(err);
                n = -1;
                break;
            }
            rv_record_t rec = {.topic = LAPS,
                               .partition = RV_PARTITION_ANY,
                               .key = car,
                               .key_len = strlen(car),
                               .value = json.data,
                               .value_len = json.len};
            n = send_record(p, &rec) ? -1 : n + 1;
        }
    }
    if (!a) {
        cli_fail(CLI_FAILED, COMMAND, "out of memory");
        n = -1;
    }
    if (n >= 0 && flush_checked(p, &produced, LAPS)) {
        n = -1;
    }
    rv_producer_close(p);
    rv_strbuf_free(&json);
    rv_arena_destroy(a);
    return n;
}

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
            double secs = lap_seconds(s, o);
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
    }
}

static int parse_count(const char *opt, const char *text, int max, int *out) {
    int64_t v;
    if (cli_parse_int64(text, 1, max, &v)) {
        return cli_fail(CLI_USAGE, COMMAND, "%s needs a number from 1 to %d, not '%s'", opt, max,
                        text);
    }
    *out = (int)v;
    return 0;
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
    rv_app_opts_t ao = {.broker_url = client->url,
                        .group = GROUP,
                        .conf = conf,
                        .log_cb = app_log,
                        .on_error = app_error};
    rv_app_t *app = rv_app_new(&ao, &err);
    rv_conf_destroy(conf);
    if (!app) {
        return cli_fail_error(CLI_FAILED, COMMAND, err);
    }
    rv_broker_t *broker = rv_app_broker(app);
    demo_t d = {.o = o, .period_ns = 1000000000 / o->rate_hz};
    d.stats = calloc((size_t)MAX_CARS * MAX_LAPS, sizeof *d.stats);
    int status = d.stats ? CLI_OK : cli_fail(CLI_FAILED, COMMAND, "out of memory");
    for (int c = 0; c < MAX_CARS; c++) {
        d.cars[c].last_fast_tick = -2;
    }
    int threads = (int)rv_conf_get_int(client->conf, "app.threads");
    printf("rivulet %s demo: %d cars, %d laps, %d channels sampled at %d Hz (seed %llu), on %s\n\n",
           rv_version(), o->cars, o->laps, CHANNELS, o->rate_hz, (unsigned long long)o->seed,
           client->url);
    if (status == CLI_OK) {
        status = recreate_topics(broker);
    }
    if (status == CLI_OK) {
        status = reset_group(broker);
    }

    /* The write side. */
    int64_t bytes = 0, written = -1;
    int64_t t0 = rv_clock_mono_ns();
    if (status == CLI_OK) {
        d.start_ns = rv_clock_wall_ns() / 1000000 * 1000000; /* whole ms: record timestamps */
        written = write_session(broker, o, d.start_ns, d.period_ns, &bytes);
        status = written < 0 ? CLI_FAILED : CLI_OK;
    }
    int64_t t1 = rv_clock_mono_ns();
    if (status == CLI_OK) {
        double secs = (double)(t1 - t0) / 1e9;
        printf("wrote %lld samples (%.1f MB of JSON) to topic '%s' (%d partitions, keyed by car)\n"
               "      in %.2f s: %.0f records/s, simulating and encoding included\n",
               (long long)written, (double)bytes / 1e6, TOPIC, PARTITIONS, secs,
               (double)written / secs);
        printf("ran   the application '%s' (consumer group, %d worker thread%s): a dataframe "
               "pipeline reading '%s'\n"
               "        set_field speed_ms, wheel_slip_pct, brake_balance_pct (derived channels)\n"
               "        -> sink: per car and lap summaries\n"
               "        -> filter (gear changed) -> apply (event) --------------------+\n"
               "        -> filter_field speed_kmh > 300 -> filter (entry) -> apply (event) -+-> "
               "to_topic '%s'\n"
               "        -> select (9 fields) -> to_topic '%s'\n",
               GROUP, threads > 0 ? threads : 1, threads > 1 ? "s" : "", TOPIC, EVENTS, DERIVED);
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

    int64_t laps = -1;
    if (status == CLI_OK) {
        laps = write_laps(broker, &d);
        status = laps < 0 ? CLI_FAILED : CLI_OK;
    }
    int64_t stored[NTOPICS];
    for (size_t i = 0; i < NTOPICS; i++) {
        stored[i] = status == CLI_OK ? topic_records(broker, demo_topics[i].name) : -1;
    }
    int64_t gear_changes = 0, entries = 0;
    for (int i = 0; d.stats && i < MAX_CARS * MAX_LAPS; i++) {
        gear_changes += d.stats[i].gear_changes;
        entries += d.stats[i].fast_entries;
    }
    if (status == CLI_OK) {
        double secs = (double)(t3 - t2) / 1e9;
        printf("processed %lld samples in %.2f s: %.0f records/s; %lld records out, %lld errors, "
               "%lld checkpoint%s\n"
               "      ('%s' %lld, '%s' %lld: %lld gear changes and %lld entries above 300 km/h)\n"
               "wrote %lld lap summaries to topic '%s'\n\n",
               (long long)m.records_in, secs, (double)m.records_in / secs, (long long)m.records_out,
               (long long)m.errors, (long long)m.checkpoints, m.checkpoints == 1 ? "" : "s",
               DERIVED, (long long)stored[1], EVENTS, (long long)stored[2], (long long)gear_changes,
               (long long)entries, (long long)laps, LAPS);
        print_table(&d);
        bool consistent = m.records_in == written && m.errors == 0 && stored[0] == written &&
                          stored[1] == written && stored[2] == gear_changes + entries &&
                          m.records_out == stored[1] + stored[2] && stored[3] == laps;
        if (!consistent) {
            status = cli_fail(CLI_FAILED, COMMAND,
                              "the counts do not add up: %lld written, %lld processed, %lld "
                              "errors; topics hold %lld, %lld, %lld (events expected %lld), %lld",
                              (long long)written, (long long)m.records_in, (long long)m.errors,
                              (long long)stored[0], (long long)stored[1], (long long)stored[2],
                              (long long)(gear_changes + entries), (long long)stored[3]);
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
               "  rivulet consume -b %s -t %s -e -c 5\n"
               "  rivulet consume -b %s -t %s -e -f '%%k %%s\\n'\n"
               "  rivulet consume -b %s -t %s -p 0 -o -3 -e\n"
               "  rivulet topics describe %s -b %s\n"
               "  rivulet demo -b %s --metrics    (the application's counters while it runs)\n",
               u, EVENTS, u, LAPS, u, DERIVED, TOPIC, u, u);
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
            status = parse_count("--cars", optarg, MAX_CARS, &o.cars);
        } else if (opt == 'L') {
            status = parse_count("--laps", optarg, MAX_LAPS, &o.laps);
        } else if (opt == 'R') {
            status = parse_count("--rate", optarg, 1000, &o.rate_hz);
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
