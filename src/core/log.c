/*
 * log.c: delivery of log lines to the owner's callback. The library itself never prints;
 * rv_log_to_stderr() is a ready callback for programs (the CLI) that choose to.
 */
#include <stdio.h>

#include "core/core_int.h"

const char *rv_log_level_name(rv_log_level_t level) {
    switch (level) {
        case RV_LOG_ERROR:
            return "error";
        case RV_LOG_WARNING:
            return "warning";
        case RV_LOG_NOTICE:
            return "notice";
        case RV_LOG_INFO:
            return "info";
        case RV_LOG_DEBUG:
            return "debug";
    }
    return "unknown";
}

void rv__log(const rv_logger_t *logger, rv_log_level_t level, const char *subsystem,
             const char *fmt, ...) {
    if (!logger || !logger->cb || level > logger->level) {
        return;
    }
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    logger->cb(logger->opaque, level, subsystem, line);
}

void rv_log_to_stderr(void *opaque, rv_log_level_t level, const char *subsystem,
                      const char *message) {
    (void)opaque;
    fprintf(stderr, "%%%d|%s|%s: %s\n", (int)level, rv_log_level_name(level), subsystem, message);
}
