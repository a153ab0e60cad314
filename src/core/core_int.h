/*
 * core_int.h: internals of src/core shared by every layer of the library.
 *
 * Error-object construction, the inline arena fast path, the logger handle components keep,
 * and small helpers. Nothing declared here is exported from the shared library.
 */
#ifndef RV_CORE_INT_H
#define RV_CORE_INT_H

#include <stdarg.h>
#include <string.h>

#include "rivulet/arena.h"
#include "rivulet/error.h"
#include "rivulet/log.h"

#define RV__HIDDEN __attribute__((visibility("hidden")))
#define RV_LIKELY(x) __builtin_expect(!!(x), 1)
#define RV_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RV_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Builds an error object with a formatted message into *err (when err is not NULL) and returns
 * `code`, so a failure path reads `return rv__error_set(err, RV_ERR_IO, "...", ...);`.
 * An existing *err is replaced (freed).
 */
RV__HIDDEN rv_err_t rv__error_set(rv_error_t **err, rv_err_t code, const char *fmt, ...)
    RV_PRINTF(3, 4);
RV__HIDDEN rv_err_t rv__error_setv(rv_error_t **err, rv_err_t code, const char *fmt, va_list ap);

/*
 * Prefixes the message of *err with formatted context ("topic 'x' partition 3: ") and returns
 * its code; does nothing when err or *err is NULL (then returns `code_if_none`).
 */
RV__HIDDEN rv_err_t rv__error_prefix(rv_error_t **err, rv_err_t code_if_none, const char *fmt, ...)
    RV_PRINTF(3, 4);

/* The arena's layout, shared so the allocation fast path can be inlined. */
typedef struct rv_arena_block_s {
    struct rv_arena_block_s *prev;
    size_t size; /* usable bytes after the header */
} rv_arena_block_t;

struct rv_arena_s {
    char *cur;           /* next free byte in the current block */
    char *end;           /* end of the current block */
    rv_arena_block_t *block;
    size_t block_size;   /* the size new blocks start from */
    size_t used;         /* bytes handed out since the last reset */
    size_t reserved;     /* bytes held in blocks */
};

RV__HIDDEN void *rv__arena_alloc_slow(rv_arena_t *arena, size_t size);

/* Allocation inlined into hot paths: 16-byte aligned. */
static inline void *rv__arena_alloc(rv_arena_t *a, size_t size) {
    size_t rounded = (size + 15u) & ~(size_t)15u;
    if (RV_LIKELY(rounded <= (size_t)(a->end - a->cur) && rounded >= size)) {
        void *p = a->cur;
        a->cur += rounded;
        a->used += rounded;
        return p;
    }
    return rv__arena_alloc_slow(a, size);
}

/* A logger a component keeps: the owner's callback, its opaque pointer and the level. */
typedef struct rv_logger_s {
    rv_log_cb cb;
    void *opaque;
    rv_log_level_t level; /* messages above this level are dropped */
} rv_logger_t;

/* Formats and delivers one log line when a callback is set and the level passes. */
RV__HIDDEN void rv__log(const rv_logger_t *logger, rv_log_level_t level, const char *subsystem,
                        const char *fmt, ...) RV_PRINTF(4, 5);

/* Writes `len` bytes of `s` into `out` as a printable, quoted, possibly shortened string for
 * error messages (keys and values from outside may hold anything). Returns `out`. */
RV__HIDDEN const char *rv__quote(char *out, size_t out_size, const void *s, size_t len);

/* CRC32C with the portable table code only, so tests can check both paths agree. */
RV__HIDDEN uint32_t rv__crc32c_portable(uint32_t crc, const void *data, size_t len);

#endif
