/*
 * rivulet/error.h: error codes and error objects.
 *
 * Hot paths return an rv_err_t: 0 is success, every failure a negative code from the single
 * list below. Control-plane calls (open, configure, create, commit) also take an
 * `rv_error_t **err` that, when not NULL, receives an error object whose message names what
 * was wrong and where (file, topic, partition, offset, key). The library never prints and never
 * relies on errno or on a thread-local "last error".
 */
#ifndef RIVULET_ERROR_H
#define RIVULET_ERROR_H

#include "common.h"

RV_BEGIN_DECLS

/*
 * The one list of error codes: X(NAME, value, description). Values are stable; new codes are
 * appended with the next free value.
 */
#define RV_ERRORS(X)                                                             \
    X(OK, 0, "success")                                                          \
    X(INVALID_ARG, -1, "invalid argument")                                       \
    X(NOMEM, -2, "out of memory")                                                \
    X(IO, -3, "input/output error")                                              \
    X(CORRUPT, -4, "corrupt data")                                               \
    X(PARSE, -5, "malformed input")                                              \
    X(NOT_FOUND, -6, "not found")                                                \
    X(EXISTS, -7, "already exists")                                              \
    X(CONFIG, -8, "invalid configuration")                                       \
    X(RANGE, -9, "value out of range")                                           \
    X(LIMIT, -10, "limit exceeded")                                              \
    X(TIMEOUT, -11, "timed out")                                                 \
    X(UNSUPPORTED, -12, "not supported")                                         \
    X(STATE, -13, "operation not valid in the current state")                    \
    X(BUSY, -14, "resource busy or locked by another process")                   \
    X(AGAIN, -15, "try again")                                                   \
    X(CLOSED, -16, "closed")                                                     \
    X(PARTITION_EOF, -17, "reached the end of the partition")                    \
    X(TRANSPORT, -18, "broker transport failure")                                \
    X(FATAL, -19, "fatal error; the handle must be closed")                      \
    X(USER, -20, "error raised by a user function")

#define RV__ERR_ENUM(name, value, text) RV_ERR_##name = value,
/** An error code; RV_OK (0) is success, every failure is negative. */
typedef enum rv_err_e { RV_ERRORS(RV__ERR_ENUM) } rv_err_t;
#undef RV__ERR_ENUM

/** RV_OK under its plain name. */
#define RV_OK RV_ERR_OK

/** The code's name without prefix, for example "CORRUPT"; "UNKNOWN" for a value not in the list. */
RV_API const char *rv_err_name(rv_err_t err);

/** A one-line description of the code; a static string. */
RV_API const char *rv_err_str(rv_err_t err);

/** An error object: a code and a formatted message. Opaque. */
typedef struct rv_error_s rv_error_t;

/** The error's code. `err` may be NULL (then RV_OK). */
RV_API rv_err_t rv_error_code(const rv_error_t *err);

/**
 * The error's message, naming what was wrong and where. Borrowed, valid until
 * rv_error_destroy(). `err` may be NULL (then "success").
 */
RV_API const char *rv_error_message(const rv_error_t *err);

/** Frees an error object. Accepts NULL. */
RV_API void rv_error_destroy(rv_error_t *err);

RV_END_DECLS

#endif
