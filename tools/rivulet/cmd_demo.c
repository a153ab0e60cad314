/*
 * cmd_demo.c: `rivulet demo`, the main job as far as the library goes today.
 *
 * It simulates a motorsport session (several cars lapping a circuit, a sample of many channels
 * every few milliseconds), writes it as JSON records keyed by car to a topic of the embedded log,
 * then reads the topic back from the beginning and computes, per car and lap, the lap time, top
 * and mean speed, gear changes and moments over a speed threshold, and prints a summary with
 * the commands to look further. The read side is a hand-written loop over the consumer API;
 * it is to become a dataframe pipeline with windows. It must
 * finish in seconds and never leave the topic half-written without saying so.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define COMMAND "demo"
#define TOPIC "demo-telemetry"
#define PARTITIONS 4
#define MAX_CARS 20
#define MAX_LAPS 50
#define LAP_METRES 5200.0
#define FAST_KMH 300.0

typedef struct demo_opts_s {
    int cars;
    int laps;
    int rate_hz;
} demo_opts_t;

/* One simulated car: where it is on the circuit and the state of its channels. */
typedef struct car_s {
    char id[16];
    double distance_m; /* since the start of the session */
    double speed_kmh;
    double pace;       /* the car's speed factor, around 1.0 */
    double tyre_c[4];
    double fuel_kg;
    int gear;
} car_t;

/* Per car and lap, what the read side computes. */
typedef struct lap_stats_s {
    int64_t first_ns, last_ns;
    int64_t samples;
    double speed_sum, speed_max, rpm_max;
    int gear_changes, last_gear;
    int fast_entries; /* times the car went above FAST_KMH */
    int fast;
} lap_stats_t;

static uint64_t rng_state = 0x853c49e6748fea9bULL;

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

/* Advances a car by dt seconds and fills `sample` (an object in `arena`) with its channels. */
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
    double brake = accel < 0 && next > target ? 1.0 : 0.0;
    car->speed_kmh = next + noise() * 0.4;
    car->distance_m += car->speed_kmh / 3.6 * dt;
    car->gear = gear_for(car->speed_kmh);
    car->fuel_kg -= 0.00055 * car->speed_kmh * dt;
    for (int i = 0; i < 4; i++) {
        car->tyre_c[i] += (car->speed_kmh / 300.0 - 0.45) * dt * 0.8 + noise() * 0.05;
    }

    rv_value_t *s = rv_value_new_object(arena, 24);
    struct {
        const char *name;
        rv_value_t *v;
    } fields[] = {
        {"car", rv_value_new_string_ref(arena, car->id, strlen(car->id))},
        {"lap", rv_value_new_int(arena, lap)},
        {"t_ns", rv_value_new_int(arena, t_ns)},
        {"distance_m", rv_value_new_double(arena, round(car->distance_m * 100.0) / 100.0)},
        {"speed_kmh", rv_value_new_double(arena, round(car->speed_kmh * 1000.0) / 1000.0)},
        {"rpm", rv_value_new_int(arena, (int64_t)rpm_for(car->speed_kmh, car->gear))},
        {"gear", rv_value_new_int(arena, car->gear)},
        {"throttle_pct", rv_value_new_double(arena, throttle)},
        {"brake_bar", rv_value_new_double(arena, round(brake * (80.0 + noise() * 4.0) * 10) / 10)},
        {"drs", rv_value_new_bool(arena, fraction > 0.02 && fraction < 0.09)},
        {"tyre_fl_c", rv_value_new_double(arena, round(car->tyre_c[0] * 10.0) / 10.0)},
        {"tyre_fr_c", rv_value_new_double(arena, round(car->tyre_c[1] * 10.0) / 10.0)},
        {"tyre_rl_c", rv_value_new_double(arena, round(car->tyre_c[2] * 10.0) / 10.0)},
        {"tyre_rr_c", rv_value_new_double(arena, round(car->tyre_c[3] * 10.0) / 10.0)},
        {"fuel_kg", rv_value_new_double(arena, round(car->fuel_kg * 1000.0) / 1000.0)},
        {"g_lat", rv_value_new_double(arena, round(sin(fraction * 60.0) * 3.5 * 100.0) / 100.0)},
        {"g_long", rv_value_new_double(arena, round(accel / 3.6 / 9.81 * 100.0) / 100.0)},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        rv_value_set(arena, s, fields[i].name, strlen(fields[i].name), fields[i].v);
    }
    return s;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: rivulet demo [-b URL] [-X name=value] [--cars N] [--laps N] [--rate HZ]\n\n"
            "Simulates a motorsport session, writes it to the topic '" TOPIC "' (recreated on\n"
            "every run) and summarises it per car and lap by reading the topic back.\n"
            "  -b URL       broker (default local:./rivulet-data)\n"
            "  --cars N     cars on track (1..%d, default 4)\n"
            "  --laps N     laps per car (1..%d, default 5)\n"
            "  --rate HZ    samples per second per car (1..1000, default 100)\n",
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

/* Writes the simulated session; returns the number of records or -1 after printing why. */
static int64_t write_session(rv_broker_t *broker, const demo_opts_t *o, int64_t *bytes) {
    rv_error_t *err = NULL;
    produced_t produced = {0};
    rv_producer_opts_t popts = {.delivery_cb = on_delivery, .opaque = &produced};
    rv_producer_t *p = rv_producer_new(broker, &popts, &err);
    if (!p) {
        cli_fail_error(CLI_FAILED, COMMAND, err);
        return -1;
    }
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
    int64_t start_ns = rv_clock_wall_ns();
    int64_t records = 0;
    int finished = 0;
    for (int64_t tick = 0; finished < o->cars; tick++) {
        int64_t t_ns = start_ns + tick * (int64_t)(1e9 / o->rate_hz);
        finished = 0;
        rv_arena_reset(arena);
        for (int c = 0; c < o->cars; c++) {
            if (cars[c].distance_m >= LAP_METRES * o->laps) {
                finished++;
                continue;
            }
            rv_value_t *sample = step_car(arena, &cars[c], dt, t_ns);
            rv_strbuf_clear(&json);
            if (!sample || rv_json_write(&json, sample, RV_JSON_COMPACT, &err) != RV_OK) {
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
            rv_err_t e;
            while ((e = rv_producer_send(p, &rec, NULL)) == RV_ERR_AGAIN) {
                rv_producer_poll(p, 10);
            }
            if (e != RV_OK) {
                cli_fail(CLI_FAILED, COMMAND, "sending to '%s' failed: %s", TOPIC, rv_err_str(e));
                records = -1;
                goto out;
            }
            records++;
            *bytes += (int64_t)json.len;
        }
    }
    if (rv_producer_flush(p, 60000, &err) != RV_OK) {
        cli_fail_error(CLI_FAILED, COMMAND, err);
        records = -1;
    } else if (produced.failed) {
        cli_fail(CLI_FAILED, COMMAND, "%lld records were not stored: %s",
                 (long long)produced.failed, rv_err_str(produced.first_error));
        records = -1;
    }
out:
    rv_producer_close(p);
    rv_strbuf_free(&json);
    rv_arena_destroy(arena);
    return records;
}

typedef struct reader_s {
    int at_end;
} reader_t;

static void on_eof(void *opaque, rv_consumer_t *c, const char *topic, int32_t partition,
                   int64_t offset) {
    (void)c;
    (void)topic;
    (void)partition;
    (void)offset;
    ((reader_t *)opaque)->at_end++;
}

/* Reads the topic back and aggregates per car and lap; returns records read or -1. */
static int64_t summarise(rv_broker_t *broker, const demo_opts_t *o, lap_stats_t *stats,
                         int64_t *bad) {
    reader_t reader = {0};
    rv_error_t *err = NULL;
    rv_consumer_opts_t copts = {.callbacks = {.opaque = &reader, .on_partition_eof = on_eof}};
    rv_consumer_t *c = rv_consumer_new(broker, &copts, &err);
    if (!c) {
        cli_fail_error(CLI_FAILED, COMMAND, err);
        return -1;
    }
    rv_topic_partition_t tps[PARTITIONS];
    for (int i = 0; i < PARTITIONS; i++) {
        tps[i] = (rv_topic_partition_t){TOPIC, i, RV_OFFSET_BEGINNING};
    }
    if (rv_consumer_assign(c, tps, PARTITIONS, &err) != RV_OK) {
        rv_consumer_close(c);
        cli_fail_error(CLI_FAILED, COMMAND, err);
        return -1;
    }
    rv_arena_t *arena = rv_arena_new(0);
    int64_t records = 0;
    while (reader.at_end < PARTITIONS) {
        const rv_record_t *recs;
        size_t n = 0;
        if (rv_consumer_poll(c, &recs, 4096, &n, 1000, &err) != RV_OK) {
            cli_fail_error(CLI_FAILED, COMMAND, err);
            records = -1;
            break;
        }
        rv_arena_reset(arena);
        for (size_t i = 0; i < n; i++) {
            const rv_record_t *r = &recs[i];
            rv_value_t *v = NULL;
            records++;
            if (rv_json_parse(arena, r->value, r->value_len, NULL, &v, NULL, &err) != RV_OK) {
                fprintf(stderr, "rivulet demo: %s[%d] offset %lld: %s\n", r->topic,
                        (int)r->partition, (long long)r->offset, rv_error_message(err));
                rv_error_destroy(err);
                err = NULL;
                (*bad)++;
                continue;
            }
            const char *car = rv_value_str(rv_value_get_cstr(v, "car"), NULL);
            int car_no = car ? atoi(car + 4) : 0;
            int lap = (int)rv_value_int(rv_value_get_cstr(v, "lap"));
            if (car_no < 1 || car_no > o->cars || lap < 1 || lap > o->laps) {
                (*bad)++;
                continue;
            }
            lap_stats_t *s = &stats[(car_no - 1) * MAX_LAPS + (lap - 1)];
            int64_t t = rv_value_int(rv_value_get_cstr(v, "t_ns"));
            double kmh = rv_value_double(rv_value_get_cstr(v, "speed_kmh"));
            double rpm = rv_value_double(rv_value_get_cstr(v, "rpm"));
            int gear = (int)rv_value_int(rv_value_get_cstr(v, "gear"));
            if (s->samples == 0) {
                s->first_ns = t;
                s->last_gear = gear;
            }
            s->last_ns = t;
            s->samples++;
            s->speed_sum += kmh;
            s->speed_max = kmh > s->speed_max ? kmh : s->speed_max;
            s->rpm_max = rpm > s->rpm_max ? rpm : s->rpm_max;
            if (gear != s->last_gear) {
                s->gear_changes++;
                s->last_gear = gear;
            }
            int fast = kmh > FAST_KMH;
            if (fast && !s->fast) {
                s->fast_entries++;
            }
            s->fast = fast;
        }
    }
    rv_arena_destroy(arena);
    rv_consumer_close(c);
    return records;
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

int cmd_demo(int argc, char **argv) {
    demo_opts_t o = {.cars = 4, .laps = 5, .rate_hz = 100};
    cli_client_t client;
    if (cli_client_init(&client, COMMAND)) {
        return CLI_FAILED;
    }
    static const struct option longopts[] = {{"cars", required_argument, NULL, 'C'},
                                             {"laps", required_argument, NULL, 'L'},
                                             {"rate", required_argument, NULL, 'R'},
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
        } else {
            status = cli_bad_option(COMMAND, opt, argv);
        }
    }
    if (status == CLI_OK && optind < argc) {
        status = cli_fail(CLI_USAGE, COMMAND, "unexpected argument '%s'", argv[optind]);
    }
    rv_broker_t *broker = status == CLI_OK ? cli_client_open(&client) : NULL;
    if (!broker) {
        cli_client_free(&client);
        return status == CLI_OK ? CLI_FAILED : status;
    }

    printf("rivulet %s demo: %d cars, %d laps, %d channels sampled at %d Hz, on %s\n\n",
           rv_version(), o.cars, o.laps, 17, o.rate_hz, client.url);
    rv_error_t *err = NULL;
    rv_err_t e = rv_broker_delete_topic(broker, TOPIC, &err);
    if (e != RV_OK && e != RV_ERR_NOT_FOUND) {
        status = cli_fail_error(CLI_FAILED, COMMAND, err);
        goto done;
    }
    rv_error_destroy(err);
    err = NULL;
    if (rv_broker_create_topic(broker, TOPIC, PARTITIONS, NULL, &err) != RV_OK) {
        status = cli_fail_error(CLI_FAILED, COMMAND, err);
        goto done;
    }

    int64_t bytes = 0;
    int64_t t0 = rv_clock_mono_ns();
    int64_t written = write_session(broker, &o, &bytes);
    int64_t t1 = rv_clock_mono_ns();
    if (written < 0) {
        status = CLI_FAILED;
        goto done;
    }
    lap_stats_t *stats = calloc((size_t)MAX_CARS * MAX_LAPS, sizeof *stats);
    int64_t bad = 0;
    int64_t read = stats ? summarise(broker, &o, stats, &bad) : -1;
    int64_t t2 = rv_clock_mono_ns();
    if (read < 0) {
        free(stats);
        status = CLI_FAILED;
        goto done;
    }
    double wsec = (double)(t1 - t0) / 1e9, rsec = (double)(t2 - t1) / 1e9;
    printf("wrote %lld samples (%.1f MB of JSON) to topic '%s' (%d partitions, keyed by car)\n"
           "      in %.2f s: %.0f records/s, simulating and encoding included\n",
           (long long)written, (double)bytes / 1e6, TOPIC, PARTITIONS, wsec, written / wsec);
    printf("read  %lld samples back and parsed every one in %.2f s: %.0f records/s\n\n",
           (long long)read, rsec, read / rsec);

    printf("%-7s %4s %9s %10s %10s %9s %7s %9s\n", "car", "lap", "time s", "top km/h",
           "mean km/h", "max rpm", "shifts", ">300 km/h");
    for (int c = 0; c < o.cars; c++) {
        double best = 0;
        int best_lap = 0;
        for (int l = 0; l < o.laps; l++) {
            lap_stats_t *s = &stats[c * MAX_LAPS + l];
            if (!s->samples) {
                continue;
            }
            double secs = (double)(s->last_ns - s->first_ns) / 1e9 + 1.0 / o.rate_hz;
            printf("car-%02d  %4d %9.3f %10.1f %10.1f %9.0f %7d %9d\n", c + 1, l + 1, secs,
                   s->speed_max, s->speed_sum / (double)s->samples, s->rpm_max, s->gear_changes,
                   s->fast_entries);
            if (l > 0 && (best == 0 || secs < best)) { /* lap 1 starts from the grid */
                best = secs;
                best_lap = l + 1;
            }
        }
        if (best_lap) {
            printf("car-%02d  best flying lap: lap %d in %.3f s\n", c + 1, best_lap, best);
        }
    }
    free(stats);
    if (bad || read != written) {
        status = cli_fail(CLI_FAILED, COMMAND, "read %lld of %lld records, %lld unusable",
                          (long long)read, (long long)written, (long long)bad);
        goto done;
    }
    printf("\nThe session is stored in %s. Look further with:\n"
           "  rivulet topics describe %s -b %s\n"
           "  rivulet consume -t %s -b %s -o beginning -c 3 -e\n"
           "  rivulet consume -t %s -b %s -p 0 -o -2 -e -J\n",
           client.url, TOPIC, client.url, TOPIC, client.url, TOPIC, client.url);
    printf("\nThe read side is a hand-written consumer loop; running it as a dataframe pipeline\n"
           "(with windows once they exist) is the next step for this demo.\n");
done:
    rv_broker_close(broker);
    cli_client_free(&client);
    return status;
}
