/*
 * demo.h: what the two halves of `rivulet demo` share: the simulation that writes the session
 * (demo_sim.c) and the command that runs the application on it (cmd_demo.c). Nothing else
 * includes it.
 */
#ifndef RV_DEMO_H
#define RV_DEMO_H

#include "cli.h"

#define DEMO_COMMAND "demo"
#define DEMO_TOPIC "demo-telemetry"
#define DEMO_PARTITIONS 4
#define DEMO_MAX_CARS 20
#define DEMO_MAX_LAPS 50
#define DEMO_LAP_METRES 5200.0
#define DEMO_FRAME_NS 100000000LL /* a frame holds 100 ms of a car's data */
#define DEMO_SLOW_HZ 10           /* the rate of the slow channels (tyres, fuel) */
#define DEMO_CHANNELS 16          /* channels in a frame */
#define DEMO_FAST_CHANNELS 11     /* of which at the sample rate; the others at DEMO_SLOW_HZ */

typedef struct demo_opts_s {
    int cars;
    int laps;
    int rate_hz; /* a multiple of DEMO_SLOW_HZ */
    uint64_t seed;
    bool metrics;
    int64_t metrics_ms;
} demo_opts_t;

/* What the write side wrote. */
typedef struct demo_written_s {
    int64_t records, bytes, frames, rows, events, markers;
    int64_t end_ns[DEMO_MAX_CARS]; /* each car's session end */
    int64_t until_ns;              /* the coverage of every stream: the last car's end */
} demo_written_t;

/*
 * Simulates the session from `start_ns` (samples `period_ns` apart) and writes one telemetry
 * stream per car ("car-01", ...) to DEMO_TOPIC through a producer of `broker`, flushed and
 * checked. Returns 0, or -1 after printing why.
 */
int demo_write_session(rv_broker_t *broker, const demo_opts_t *o, int64_t start_ns,
                       int64_t period_ns, demo_written_t *wr);

/* `v` rounded to `scale` steps per unit (100: hundredths), so that it prints short. */
double demo_round_to(double v, double scale);

#endif
