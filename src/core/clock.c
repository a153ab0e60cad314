/*
 * clock.c: monotonic and wall-clock time in nanoseconds and milliseconds.
 */
#include <errno.h>
#include <time.h>

#include "core/core_int.h"
#include "rivulet/clock.h"

static int64_t read_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t rv_clock_mono_ns(void) {
    return read_ns(CLOCK_MONOTONIC);
}

int64_t rv_clock_mono_ms(void) {
    return read_ns(CLOCK_MONOTONIC) / 1000000;
}

int64_t rv_clock_wall_ns(void) {
    return read_ns(CLOCK_REALTIME);
}

int64_t rv_clock_wall_ms(void) {
    return read_ns(CLOCK_REALTIME) / 1000000;
}

void rv_clock_sleep_ms(int64_t ms) {
    if (ms <= 0) {
        return;
    }
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
