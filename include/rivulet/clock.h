/*
 * rivulet/clock.h: time sources.
 *
 * Monotonic time measures durations and deadlines; wall-clock time stamps records. Record
 * timestamps are milliseconds since the Unix epoch, as in Kafka.
 */
#ifndef RIVULET_CLOCK_H
#define RIVULET_CLOCK_H

#include "common.h"

RV_BEGIN_DECLS

/** Monotonic time in nanoseconds from an arbitrary origin; never goes backwards. */
RV_API int64_t rv_clock_mono_ns(void);

/** Monotonic time in milliseconds. */
RV_API int64_t rv_clock_mono_ms(void);

/** Wall-clock time in nanoseconds since the Unix epoch. */
RV_API int64_t rv_clock_wall_ns(void);

/** Wall-clock time in milliseconds since the Unix epoch. */
RV_API int64_t rv_clock_wall_ms(void);

/** Sleeps for `ms` milliseconds (resuming after signals until the time has passed). */
RV_API void rv_clock_sleep_ms(int64_t ms);

RV_END_DECLS

#endif
