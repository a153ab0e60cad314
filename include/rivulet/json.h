/*
 * rivulet/json.h: rivulet's JSON codec.
 *
 * The parser turns RFC 8259 JSON text into an rv_value_t tree in an arena; the writer turns a
 * tree back into text. Both are exact: an integer that fits int64 stays an int64, every double
 * is written in the shortest form that reads back to the same bits, strings are validated as
 * UTF-8 and escapes (surrogate pairs included) are decoded right. Malformed input is rejected
 * with the byte offset of the fault.
 */
#ifndef RIVULET_JSON_H
#define RIVULET_JSON_H

#include "arena.h"
#include "common.h"
#include "error.h"
#include "strbuf.h"
#include "value.h"

RV_BEGIN_DECLS

/** The nesting depth the parser accepts unless told otherwise. */
#define RV_JSON_DEFAULT_MAX_DEPTH 512

/** Parser options; zero-initialise and set what you need (designated initialisers). */
typedef struct rv_json_parse_opts_s {
    /** Deepest nesting of arrays and objects accepted; 0 means RV_JSON_DEFAULT_MAX_DEPTH. */
    int max_depth;
} rv_json_parse_opts_t;

/**
 * Parses `len` bytes of JSON text (one value, optionally surrounded by whitespace) into a tree
 * allocated in `arena`, stored in `*out`. `opts` may be NULL for defaults. `text` need not be
 * NUL-terminated; nothing at or after `text + len` is read.
 *
 * What the text becomes: an integer that fits int64 (INT64_MIN included) is an RV_TYPE_INT;
 * any other number (a fraction, an exponent, or an integer beyond int64) is the correctly
 * rounded RV_TYPE_DOUBLE, and "-0" is the double -0.0 so that its sign survives. Strings are
 * decoded (surrogate pairs included) and must be valid UTF-8. When an object repeats a key,
 * the last value wins and keeps the position of the first occurrence. Strict RFC 8259 otherwise:
 * no comments, no trailing commas, no byte order mark, no NaN or Infinity.
 *
 * On failure returns RV_ERR_PARSE (malformed text, invalid UTF-8, a lone surrogate escape),
 * RV_ERR_RANGE (a number beyond the range of a double, such as 1e400), RV_ERR_LIMIT (nesting
 * deeper than the limit), RV_ERR_NOMEM, or RV_ERR_INVALID_ARG (NULL arena or out, NULL text
 * with a non-zero length, a negative max_depth); `*out` is left NULL, `*err_offset` (when not
 * NULL) receives the byte offset of the fault (`len` when the text ends too early), and `*err`
 * (when not NULL) an error object whose message says what was wrong and what was expected and
 * gives the offset, line and column (both 1-based; the column counts bytes). The arena may
 * hold partial allocations after a failure; they are freed with it.
 *
 * The parser is iterative: no input, however deep, can exhaust the C stack.
 */
RV_API rv_err_t rv_json_parse(rv_arena_t *arena, const char *text, size_t len,
                              const rv_json_parse_opts_t *opts, rv_value_t **out,
                              size_t *err_offset, rv_error_t **err);

/** Writer flags, or-ed together. */
typedef enum rv_json_write_flags_e {
    /** Compact output: no whitespace. */
    RV_JSON_COMPACT = 0,
    /** Indent nested values by two spaces and put each member on its own line. */
    RV_JSON_PRETTY = 1 << 0,
    /** Escape every non-ASCII character as \uXXXX (surrogate pairs above U+FFFF). */
    RV_JSON_ASCII = 1 << 1
} rv_json_write_flags_t;

/**
 * Appends the JSON text of `v` to `out` (a NULL `v` is written as null). Bytes nodes are
 * written as base64 strings (standard alphabet, with padding); strings are written with the
 * minimal escapes (", \, and control characters, as \b \f \n \r \t or \u00XX) and, with
 * RV_JSON_ASCII, every non-ASCII character as \uXXXX in lower-case hex. Doubles are written in
 * the shortest form that reads back to the same bits, always with a fraction or an exponent
 * ("1.0", "-0.0", "1e21") so they read back as doubles; pretty output has no final newline.
 *
 * Returns RV_ERR_RANGE for a NaN or infinite double (JSON has no spelling for them),
 * RV_ERR_PARSE for a string node or key that is not valid UTF-8, RV_ERR_NOMEM; `*err` (when not
 * NULL) names the path of the offending node, such as `$.laps[3].speed` (keys that are not
 * plain identifiers appear as `$['a key']`). On failure `out` may hold partial text after its
 * original length. The writer is iterative, so a tree of any depth can be written.
 */
RV_API rv_err_t rv_json_write(rv_strbuf_t *out, const rv_value_t *v, int flags, rv_error_t **err);

RV_END_DECLS

#endif
