/*
 * demo_sim.c: the write side of `rivulet demo`: a seeded simulation of cars lapping a circuit,
 * written as one telemetry stream per car.
 *
 * Each car is a stream on DEMO_TOPIC (key = the car) written with a stream writer on the
 * protobuf wire: properties, a session start with its details, parameter definitions (units,
 * ranges, rates), event definitions, then one frame per car and 100 ms of data (the fast
 * channels at the sample rate, tyre temperatures and fuel at DEMO_SLOW_HZ, a lap tag), its gear
 * changes as events and a marker when a lap ends; once every car has finished, each stream gets
 * a coverage packet (its data is complete up to the last car's end), the session end and the
 * stream end. Cars are written in turn, a frame each, so the streams sharing a partition stay
 * within a frame of each other in data time. A seed always gives the same session; nothing here
 * reads the clock.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

#define COMMAND DEMO_COMMAND
#define TOPIC DEMO_TOPIC
#define MAX_CARS DEMO_MAX_CARS
#define LAP_METRES DEMO_LAP_METRES
#define FRAME_NS DEMO_FRAME_NS
#define SLOW_HZ DEMO_SLOW_HZ
#define NPARAMS DEMO_CHANNELS
#define FIRST_SLOW DEMO_FAST_CHANNELS

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
double demo_round_to(double v, double scale) {
    return round(v * scale) / scale;
}

/* The channels of a frame, as parameter definitions (frequencies are filled in at run time). */
enum {
    P_DISTANCE,
    P_SPEED,
    P_WHEEL,
    P_RPM,
    P_GEAR,
    P_THROTTLE,
    P_BRAKE_F,
    P_BRAKE_R,
    P_DRS,
    P_G_LAT,
    P_G_LONG,
    P_TYRE_FL, /* the slow channels, from here on */
    P_TYRE_FR,
    P_TYRE_RL,
    P_TYRE_RR,
    P_FUEL
};
_Static_assert(P_TYRE_FL == FIRST_SLOW && P_FUEL + 1 == NPARAMS, "the channels of demo.h");

static const rv_tparameter_def_t param_defs[NPARAMS] = {
    [P_DISTANCE] = {.id = "distance_m", .name = "Distance", .unit = "m", .location = "/car"},
    [P_SPEED] = {.id = "speed_kmh",
                 .name = "Speed",
                 .unit = "km/h",
                 .has_minimum = true,
                 .has_maximum = true,
                 .maximum = 360,
                 .location = "/car"},
    [P_WHEEL] = {.id = "rear_wheel_kmh",
                 .name = "Rear wheel speed",
                 .unit = "km/h",
                 .has_minimum = true,
                 .has_maximum = true,
                 .maximum = 400,
                 .location = "/chassis/wheels"},
    [P_RPM] = {.id = "rpm",
               .name = "Engine speed",
               .unit = "rpm",
               .has_minimum = true,
               .has_maximum = true,
               .maximum = 13000,
               .location = "/power unit"},
    [P_GEAR] = {.id = "gear",
                .name = "Gear",
                .has_minimum = true,
                .minimum = 1,
                .has_maximum = true,
                .maximum = 8,
                .location = "/chassis/gearbox"},
    [P_THROTTLE] = {.id = "throttle_pct",
                    .name = "Throttle",
                    .unit = "%",
                    .has_minimum = true,
                    .has_maximum = true,
                    .maximum = 100,
                    .location = "/driver"},
    [P_BRAKE_F] = {.id = "brake_front_bar",
                   .name = "Front brake pressure",
                   .unit = "bar",
                   .has_minimum = true,
                   .has_maximum = true,
                   .maximum = 120,
                   .location = "/chassis/brakes"},
    [P_BRAKE_R] = {.id = "brake_rear_bar",
                   .name = "Rear brake pressure",
                   .unit = "bar",
                   .has_minimum = true,
                   .has_maximum = true,
                   .maximum = 120,
                   .location = "/chassis/brakes"},
    [P_DRS] = {.id = "drs",
               .name = "DRS open",
               .has_minimum = true,
               .has_maximum = true,
               .maximum = 1,
               .location = "/chassis/aero"},
    [P_G_LAT] = {.id = "g_lat",
                 .name = "Lateral acceleration",
                 .unit = "g",
                 .has_minimum = true,
                 .minimum = -6,
                 .has_maximum = true,
                 .maximum = 6,
                 .location = "/car"},
    [P_G_LONG] = {.id = "g_long",
                  .name = "Longitudinal acceleration",
                  .unit = "g",
                  .has_minimum = true,
                  .minimum = -6,
                  .has_maximum = true,
                  .maximum = 6,
                  .location = "/car"},
    [P_TYRE_FL] = {.id = "tyre_fl_c",
                   .name = "Tyre temperature FL",
                   .unit = "C",
                   .location = "/chassis/tyres"},
    [P_TYRE_FR] = {.id = "tyre_fr_c",
                   .name = "Tyre temperature FR",
                   .unit = "C",
                   .location = "/chassis/tyres"},
    [P_TYRE_RL] = {.id = "tyre_rl_c",
                   .name = "Tyre temperature RL",
                   .unit = "C",
                   .location = "/chassis/tyres"},
    [P_TYRE_RR] = {.id = "tyre_rr_c",
                   .name = "Tyre temperature RR",
                   .unit = "C",
                   .location = "/chassis/tyres"},
    [P_FUEL] = {.id = "fuel_kg",
                .name = "Fuel",
                .unit = "kg",
                .has_minimum = true,
                .has_maximum = true,
                .maximum = 110,
                .location = "/power unit"},
};

static const rv_tevent_def_t event_defs[] = {
    {.id = "gear_change",
     .name = "Gear change",
     .description = "value: \"FROM>TO\"",
     .level = RV_TLEVEL_INFORMATION,
     .location = "/chassis/gearbox"},
};

/* What the writer keeps per car beyond the simulation. */
typedef struct sim_s {
    car_t car;
    rv_twriter_t *w;
    rv_tframe_builder_t *b;
    int col[NPARAMS], lap_col;
    int lap;              /* of the last row, 0 before the first */
    int64_t lap_start_ns; /* its first row */
    bool finished;
    size_t nevents;
    rv_tevent_t events[64]; /* gear changes of the frame being built */
    rv_tkv_t tags[64][2];
    char text[64][3][8]; /* value, from, to */
    size_t rows;         /* in the frame being built */
    int nmarkers;
    rv_tmarker_t marker; /* a lap that ended in the frame being built */
    char label[16];
} sim_t;

/* Declares the frame's columns (a finished frame forgets them: this runs before each frame, and
 * the same order gives the same indexes and data format every time). */
static bool sim_columns(sim_t *s) {
    for (int i = 0; i < NPARAMS; i++) {
        rv_tcol_type_t type =
            i == P_RPM || i == P_GEAR || i == P_DRS ? RV_TCOL_INT64 : RV_TCOL_DOUBLE;
        s->col[i] = rv_tframe_builder_column(s->b, param_defs[i].id, type);
        if (s->col[i] < 0) {
            return false;
        }
    }
    s->lap_col = rv_tframe_builder_column(s->b, "lap", RV_TCOL_TAG);
    return s->lap_col >= 0;
}

/* Advances a car by dt seconds and adds its sample at t_ns as a row; gear changes and a lap
 * that ended are queued for the end of the frame. */
static rv_err_t step_car(sim_t *s, double dt, int64_t t_ns, bool slow) {
    car_t *car = &s->car;
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
    int last_gear = car->gear;
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

    if (lap != s->lap) {
        if (s->lap > 0) { /* the previous lap ended with the last row */
            snprintf(s->label, sizeof s->label, "Lap %d", s->lap);
            s->marker = (rv_tmarker_t){
                .kind = "lap", .label = s->label, .start_time = s->lap_start_ns, .end_time = t_ns};
            s->nmarkers = 1;
        }
        s->lap = lap;
        s->lap_start_ns = t_ns;
    }
    if (last_gear != 0 && last_gear != car->gear && s->nevents < 64) {
        size_t n = s->nevents++;
        snprintf(s->text[n][0], 8, "%d>%d", last_gear, car->gear);
        snprintf(s->text[n][1], 8, "%d", last_gear);
        snprintf(s->text[n][2], 8, "%d", car->gear);
        s->tags[n][0] = (rv_tkv_t){"from", s->text[n][1]};
        s->tags[n][1] = (rv_tkv_t){"to", s->text[n][2]};
        s->events[n] = (rv_tevent_t){.id = "gear_change",
                                     .time = t_ns,
                                     .value = s->text[n][0],
                                     .tags = s->tags[n],
                                     .tag_count = 2};
    }

    const double values[NPARAMS] = {
        [P_DISTANCE] = demo_round_to(car->distance_m, 100.0),
        [P_SPEED] = demo_round_to(car->speed_kmh, 1000.0),
        [P_WHEEL] = demo_round_to(wheel, 1000.0),
        [P_RPM] = rpm_for(car->speed_kmh, car->gear),
        [P_GEAR] = car->gear,
        [P_THROTTLE] = throttle,
        [P_BRAKE_F] = demo_round_to(pressure * bias, 10.0),
        [P_BRAKE_R] = demo_round_to(pressure * (1.0 - bias), 10.0),
        [P_DRS] = fraction > 0.02 && fraction < 0.09,
        [P_G_LAT] = demo_round_to(sin(fraction * 60.0) * 3.5, 100.0),
        [P_G_LONG] = demo_round_to(accel / 3.6 / 9.81, 100.0),
        [P_TYRE_FL] = demo_round_to(car->tyre_c[0], 10.0),
        [P_TYRE_FR] = demo_round_to(car->tyre_c[1], 10.0),
        [P_TYRE_RL] = demo_round_to(car->tyre_c[2], 10.0),
        [P_TYRE_RR] = demo_round_to(car->tyre_c[3], 10.0),
        [P_FUEL] = demo_round_to(car->fuel_kg, 1000.0),
    };
    char lap_text[8];
    int len = snprintf(lap_text, sizeof lap_text, "%d", lap);
    rv_err_t e = rv_tframe_builder_add_row(s->b, t_ns);
    s->rows++;
    for (int i = 0; e == RV_OK && i < (slow ? NPARAMS : FIRST_SLOW); i++) {
        e = i == P_RPM || i == P_GEAR || i == P_DRS
                ? rv_tframe_builder_set_int(s->b, s->col[i], (int64_t)values[i])
                : rv_tframe_builder_set_double(s->b, s->col[i], values[i]);
    }
    return e == RV_OK ? rv_tframe_builder_set_str(s->b, s->lap_col, lap_text, (size_t)len) : e;
}

/* Sends the car's frame, then its gear changes and the lap that ended in it. */
static rv_err_t send_frame(sim_t *s, demo_written_t *wr, rv_error_t **err) {
    rv_err_t e = RV_OK;
    if (s->rows > 0) {
        wr->rows += (int64_t)s->rows;
        wr->frames++;
        s->rows = 0;
        e = rv_twriter_write_builder(s->w, s->b, err);
        if (e == RV_OK && !sim_columns(s)) {
            e = RV_ERR_NOMEM;
        }
    }
    if (e == RV_OK && s->nevents) {
        e = rv_twriter_write_events(s->w, s->events, s->nevents, err);
        wr->events += (int64_t)s->nevents;
        s->nevents = 0;
    }
    if (e == RV_OK && s->nmarkers) {
        e = rv_twriter_write_markers(s->w, &s->marker, 1, err);
        wr->markers++;
        s->nmarkers = 0;
    }
    return e;
}

typedef struct produced_s {
    int64_t ok;
    int64_t bytes;
    int64_t failed;
    rv_err_t first_error;
} produced_t;

static void on_delivery(void *opaque, const rv_record_t *rec, rv_err_t err, void *rec_opaque) {
    produced_t *p = opaque;
    (void)rec_opaque;
    if (err == RV_OK) {
        p->ok++;
        p->bytes += (int64_t)(rec->key_len + rec->value_len);
    } else if (p->failed++ == 0) {
        p->first_error = err;
    }
    (void)rec;
}

/* Opens car c's stream and sends what comes before its data. */
static rv_err_t open_car(rv_producer_t *p, sim_t *s, const demo_opts_t *o, int64_t start_ns,
                         rv_error_t **err) {
    char laps[16], seed[24], name[64], location[64], identifier[80];
    snprintf(laps, sizeof laps, "%d", o->laps);
    snprintf(seed, sizeof seed, "%" PRIu64, o->seed);
    snprintf(name, sizeof name, "Rivulet Ring demo, %s", s->car.id);
    snprintf(location, sizeof location, "/cars/%s", s->car.id);
    snprintf(identifier, sizeof identifier, "Demo race (seed %s), %s", seed, s->car.id);
    const rv_tkv_t meta[] = {{"circuit", "Rivulet Ring"}, {"car", s->car.id}};
    const rv_tkv_t details[] = {{"circuit", "Rivulet Ring"}, {"laps", laps}, {"seed", seed}};
    rv_tparameter_def_t defs[NPARAMS];
    for (int i = 0; i < NPARAMS; i++) {
        defs[i] = param_defs[i];
        defs[i].frequency = i < FIRST_SLOW ? o->rate_hz : SLOW_HZ;
    }
    s->w = rv_twriter_open(p, TOPIC, s->car.id, NULL, err);
    s->b = s->w ? rv_tframe_builder_new() : NULL;
    if (!s->b) {
        return s->w ? RV_ERR_NOMEM : rv_error_code(*err);
    }
    rv_err_t e = sim_columns(s) ? RV_OK : RV_ERR_NOMEM;
    if (e == RV_OK) {
        rv_tstream_properties_t props = {.name = name,
                                         .location = location,
                                         .metadata = meta,
                                         .metadata_count = 2,
                                         .has_time_of_recording = true,
                                         .time_of_recording = start_ns};
        e = rv_twriter_set_properties(s->w, &props, err);
    }
    if (e == RV_OK) {
        rv_tsession_t session = {.session_id = "demo-race",
                                 .identifier = identifier,
                                 .session_type = "race",
                                 .version = 1,
                                 .time = start_ns,
                                 .details = details,
                                 .detail_count = 3};
        e = rv_twriter_session_start(s->w, &session, err);
    }
    if (e == RV_OK) {
        e = rv_twriter_define_parameters(s->w, defs, NPARAMS, err);
    }
    if (e == RV_OK) {
        e = rv_twriter_define_events(s->w, event_defs, 1, err);
    }
    return e;
}

int demo_write_session(rv_broker_t *broker, const demo_opts_t *o, int64_t start_ns,
                       int64_t period_ns, demo_written_t *wr) {
    rv_error_t *err = NULL;
    produced_t produced = {0};
    rv_producer_opts_t popts = {.delivery_cb = on_delivery, .opaque = &produced};
    rv_producer_t *p = rv_producer_new(broker, &popts, &err);
    if (!p) {
        cli_fail_error(CLI_FAILED, COMMAND, err);
        return -1;
    }
    seed_rng(o->seed);
    sim_t *sims = calloc((size_t)o->cars, sizeof *sims);
    rv_err_t e = sims ? RV_OK : RV_ERR_NOMEM;
    for (int c = 0; e == RV_OK && c < o->cars; c++) {
        car_t *car = &sims[c].car;
        snprintf(car->id, sizeof car->id, "car-%02d", c + 1);
        car->pace = 1.0 - 0.012 * c + noise() * 0.004;
        car->speed_kmh = 180.0;
        car->distance_m = -40.0 * c; /* staggered grid */
        car->fuel_kg = 100.0;
        for (int i = 0; i < 4; i++) {
            car->tyre_c[i] = 85.0;
        }
        e = open_car(p, &sims[c], o, start_ns, &err);
    }
    double dt = 1.0 / o->rate_hz;
    int64_t per_frame = FRAME_NS / period_ns, slow_every = o->rate_hz / SLOW_HZ;
    int finished = 0;
    for (int64_t tick = 0; e == RV_OK && finished < o->cars; tick++) {
        int64_t t_ns = start_ns + tick * period_ns;
        for (int c = 0; e == RV_OK && c < o->cars; c++) {
            sim_t *s = &sims[c];
            if (s->finished) {
                continue;
            }
            if (s->car.distance_m >= LAP_METRES * o->laps) { /* the last lap ends here */
                snprintf(s->label, sizeof s->label, "Lap %d", s->lap);
                s->marker = (rv_tmarker_t){.kind = "lap",
                                           .label = s->label,
                                           .start_time = s->lap_start_ns,
                                           .end_time = t_ns};
                s->nmarkers = 1;
                s->finished = true;
                wr->end_ns[c] = t_ns;
                finished++;
                e = send_frame(s, wr, &err);
                continue;
            }
            e = step_car(s, dt, t_ns, tick % slow_every == 0);
        }
        if ((tick + 1) % per_frame == 0) { /* every car's frame, in turn */
            for (int c = 0; e == RV_OK && c < o->cars; c++) {
                e = send_frame(&sims[c], wr, &err);
            }
        }
    }
    /* Every car is done: the data of every stream is complete up to the last car's end. */
    for (int c = 0; c < o->cars; c++) {
        wr->until_ns = wr->end_ns[c] > wr->until_ns ? wr->end_ns[c] : wr->until_ns;
    }
    for (int c = 0; sims && c < o->cars; c++) {
        if (e == RV_OK) {
            e = rv_twriter_coverage(sims[c].w, wr->until_ns, &err);
        }
        if (e == RV_OK) {
            e = rv_twriter_close(sims[c].w, RV_TSTREAM_CLOSED, wr->end_ns[c], &err);
        } else {
            rv_twriter_destroy(sims[c].w);
        }
        rv_tframe_builder_destroy(sims[c].b);
    }
    free(sims);
    int status = 0;
    if (e != RV_OK) {
        status = err ? cli_fail_error(CLI_FAILED, COMMAND, err)
                     : cli_fail(CLI_FAILED, COMMAND, "writing the session: %s", rv_err_str(e));
    } else if (rv_producer_flush(p, 60000, &err) != RV_OK) {
        status = cli_fail_error(CLI_FAILED, COMMAND, err);
    } else if (produced.failed) {
        status = cli_fail(CLI_FAILED, COMMAND, "%" PRId64 " records were not stored in '%s': %s",
                          produced.failed, TOPIC, rv_err_str(produced.first_error));
    }
    wr->records = produced.ok;
    wr->bytes = produced.bytes;
    rv_producer_close(p);
    return status ? -1 : 0;
}
