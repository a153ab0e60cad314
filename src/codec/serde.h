/*
 * serde.h: the serialisers registry: how a topic's keys and values become rv_value_t trees and
 * back.
 *
 * A serialiser is a const vtable found by name ("bytes", "string", "int", "int32", "double",
 * "json", "telemetry", "quix"); an application's topics keep one for keys and one for values. Decoding reads the
 * bytes of a consumed record (a borrowed view) into the batch's arena; encoding appends to a
 * caller-owned buffer that is reused from record to record, so neither allocates on the heap in
 * steady state. Failures return a code and write a one-line reason into a caller buffer; they
 * never allocate an error object on the success path, never log and never print. Absent bytes
 * (a record without key, a tombstone) are the caller's business: decoders are only given bytes.
 */
#ifndef RV_SERDE_H
#define RV_SERDE_H

#include "core/core_int.h"
#include "rivulet/strbuf.h"
#include "rivulet/value.h"

#define RV__SERDE_VERSION 1

/* A serialiser. */
typedef struct rv__serde_s {
    int version; /* RV__SERDE_VERSION */
    const char *name;
    /*
     * Decodes `len` bytes at `data` into a tree in `arena`, stored in *out. `max_depth` bounds
     * the nesting of formats that nest (json); 0 means the format's default. On failure returns
     * RV_ERR_PARSE (bytes that are not in the format: invalid UTF-8, a wrong length, malformed
     * JSON), RV_ERR_RANGE, RV_ERR_LIMIT or RV_ERR_NOMEM, leaves *out NULL and writes the reason
     * into `why` (`why_size` bytes, always NUL-terminated).
     */
    rv_err_t (*decode)(rv_arena_t *arena, const void *data, size_t len, int max_depth,
                       rv_value_t **out, char *why, size_t why_size);
    /*
     * Appends the encoding of `v` to `out`. A null value has no encoding in the binary formats:
     * they set *tombstone (and append nothing), and the caller sends no bytes; json writes the
     * text `null`. On failure returns RV_ERR_INVALID_ARG (a value of a type the format cannot
     * hold), RV_ERR_RANGE (a number out of the format's range, a NaN in JSON), RV_ERR_PARSE
     * (a string that is not UTF-8, in JSON) or RV_ERR_NOMEM, with the reason in `why`.
     */
    rv_err_t (*encode)(const rv_value_t *v, rv_strbuf_t *out, bool *tombstone, char *why,
                       size_t why_size);
} rv__serde_t;

/* The serialiser registered under `name`; NULL when there is none. */
RV__HIDDEN const rv__serde_t *rv__serde_find(const char *name);

/* The registered names, for messages: "bytes, string, int, int32, double, json, telemetry,
 * quix". */
RV__HIDDEN const char *rv__serde_names(void);

#endif
