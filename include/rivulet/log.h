/*
 * rivulet/log.h: the log callback.
 *
 * The library never prints. Components that have something to say (a torn segment tail
 * truncated, a record skipped by the error policy) call the log callback their owner was given,
 * with a level, the subsystem and a formatted line. Without a callback, nothing is said.
 */
#ifndef RIVULET_LOG_H
#define RIVULET_LOG_H

#include "common.h"

RV_BEGIN_DECLS

/** Log levels, with syslog's numbering: lower is more severe. */
typedef enum rv_log_level_e {
    RV_LOG_ERROR = 3,
    RV_LOG_WARNING = 4,
    RV_LOG_NOTICE = 5,
    RV_LOG_INFO = 6,
    RV_LOG_DEBUG = 7
} rv_log_level_t;

/**
 * A log callback: `opaque` is the pointer registered with it, `subsystem` a short name such as
 * "log" or "json", `message` one line without a newline. Both strings are borrowed for the call.
 * It may be called from any of the library's threads.
 */
typedef void (*rv_log_cb)(void *opaque, rv_log_level_t level, const char *subsystem,
                          const char *message);

/** The level's name in lower case ("error", "warning", ...). */
RV_API const char *rv_log_level_name(rv_log_level_t level);

/**
 * A ready callback that writes "LEVEL subsystem: message" lines to stderr, for programs that
 * want the library's log on their terminal. `opaque` is ignored.
 */
RV_API void rv_log_to_stderr(void *opaque, rv_log_level_t level, const char *subsystem,
                             const char *message);

RV_END_DECLS

#endif
