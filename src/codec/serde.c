/*
 * serde.c: the serialisers of keys and values, registered by name.
 *
 * bytes:  the bytes as they are (a bytes node); writes bytes or string nodes verbatim.
 * string: UTF-8 text (a string node; invalid UTF-8 is an error); writes strings and bytes
 *         verbatim, and ints, doubles and booleans as their JSON text.
 * int:    a big-endian two's-complement integer: reads 8 bytes (Kafka's LongSerializer) or 4
 *         bytes (Kafka's IntegerSerializer, which quixstreams and confluent-kafka use); writes 8.
 * int32:  reads as int; writes 4 bytes (an int outside int32 is an error), for topics shared
 *         with Kafka IntegerSerializer clients.
 * double: a big-endian IEEE 754 number: reads 8 bytes (DoubleSerializer) or 4 (FloatSerializer);
 *         writes 8, from a double or an int.
 * json:   rivulet's exact JSON codec, parsing straight from the record's bytes.
 * telemetry: rivulet's protobuf telemetry envelope (proto/telemetry.proto), decoded into the
 *         packet's value tree (rv_tpacket_to_value(): an object with "type", "stream_id" and the
 *         packet's fields; a frame as "columns" and "rows"); encoding reads such a tree back.
 * quix:   the JSON messages of legacy Quix Streams topics ({"C","K","V","S","E"}), decoded into
 *         the same tree as telemetry, so a pipeline reads both alike; encoding writes "JT".
 *
 * The binary formats (and quix) have no null: a null value encodes as a tombstone. This file
 * must never allocate outside the arena and the caller's buffer on a success path (the one
 * exception: telemetry and quix encoders read the tree through a scratch arena per record), and
 * never log.
 */
#include <stdio.h>
#include <string.h>

#include "codec/serde.h"
#include "codec/value_int.h"
#include "rivulet/json.h"
#include "rivulet/telemetry.h"

/* Writes a formatted reason into `why` and returns `code`. */
static rv_err_t fail(rv_err_t code, char *why, size_t why_size, const char *fmt, ...)
    RV_PRINTF(4, 5);
static rv_err_t fail(rv_err_t code, char *why, size_t why_size, const char *fmt, ...) {
    if (why && why_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* A NOMEM answer, said once for every serialiser. */
static rv_err_t nomem(char *why, size_t why_size) {
    return fail(RV_ERR_NOMEM, why, why_size, "out of memory");
}

/* Copies an error object's message into `why`, frees it and returns its code. */
static rv_err_t from_error(rv_err_t code, rv_error_t *err, char *why, size_t why_size) {
    fail(code, why, why_size, "%s", err ? rv_error_message(err) : rv_err_str(code));
    rv_error_destroy(err);
    return code;
}

static uint64_t load_be(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static rv_err_t store_be(rv_strbuf_t *out, uint64_t v, size_t n, char *why, size_t why_size) {
    unsigned char b[8];
    for (size_t i = 0; i < n; i++) {
        b[n - 1 - i] = (unsigned char)(v >> (8 * i));
    }
    return rv_strbuf_append(out, b, n) == RV_OK ? RV_OK : nomem(why, why_size);
}

/* ---- bytes ---------------------------------------------------------------------------------- */

static rv_err_t bytes_decode(rv_arena_t *arena, const void *data, size_t len, int max_depth,
                             rv_value_t **out, char *why, size_t why_size) {
    (void)max_depth;
    *out = rv_value_new_bytes(arena, data, len);
    return *out ? RV_OK : nomem(why, why_size);
}

static rv_err_t bytes_encode(const rv_value_t *v, rv_strbuf_t *out, bool *tombstone, char *why,
                             size_t why_size) {
    rv_type_t t = rv_value_type(v);
    if (t == RV_TYPE_NULL) {
        *tombstone = true;
        return RV_OK;
    }
    if (t != RV_TYPE_BYTES && t != RV_TYPE_STRING) {
        return fail(RV_ERR_INVALID_ARG, why, why_size,
                    "the bytes serialiser writes bytes or strings, not %s", rv_type_name(t));
    }
    size_t len;
    const char *s = rv_value_str(v, &len);
    return rv_strbuf_append(out, s, len) == RV_OK ? RV_OK : nomem(why, why_size);
}

/* ---- string --------------------------------------------------------------------------------- */

static rv_err_t string_decode(rv_arena_t *arena, const void *data, size_t len, int max_depth,
                              rv_value_t **out, char *why, size_t why_size) {
    (void)max_depth;
    if (len && !(rv__str_classify(data, len) & RV__STR_VALID)) {
        const unsigned char *p = data, *end = p + len;
        size_t at = 0;
        while (p + at < end) {
            if (p[at] < 0x80) {
                at++;
                continue;
            }
            size_t n = rv__utf8_seq(p + at, end);
            if (n == 0) {
                break;
            }
            at += n;
        }
        return fail(RV_ERR_PARSE, why, why_size,
                    "the string serialiser reads UTF-8 text; byte %zu of %zu is not valid UTF-8",
                    at, len);
    }
    *out = rv_value_new_string(arena, data, len);
    return *out ? RV_OK : nomem(why, why_size);
}

static rv_err_t string_encode(const rv_value_t *v, rv_strbuf_t *out, bool *tombstone, char *why,
                              size_t why_size) {
    rv_type_t t = rv_value_type(v);
    switch (t) {
        case RV_TYPE_NULL:
            *tombstone = true;
            return RV_OK;
        case RV_TYPE_STRING:
        case RV_TYPE_BYTES: {
            size_t len;
            const char *s = rv_value_str(v, &len);
            return rv_strbuf_append(out, s, len) == RV_OK ? RV_OK : nomem(why, why_size);
        }
        case RV_TYPE_BOOL:
        case RV_TYPE_INT:
        case RV_TYPE_DOUBLE: {
            rv_error_t *err = NULL;
            rv_err_t e = rv_json_write(out, v, RV_JSON_COMPACT, &err);
            return e == RV_OK ? RV_OK : from_error(e, err, why, why_size);
        }
        default:
            return fail(RV_ERR_INVALID_ARG, why, why_size,
                        "the string serialiser writes strings, bytes, numbers and booleans, not "
                        "%s",
                        rv_type_name(t));
    }
}

/* ---- int and int32 -------------------------------------------------------------------------- */

static rv_err_t int_decode(rv_arena_t *arena, const void *data, size_t len, int max_depth,
                           rv_value_t **out, char *why, size_t why_size) {
    (void)max_depth;
    int64_t i;
    if (len == 8) {
        i = (int64_t)load_be(data, 8);
    } else if (len == 4) {
        i = (int32_t)(uint32_t)load_be(data, 4);
    } else {
        return fail(RV_ERR_PARSE, why, why_size,
                    "the int serialiser reads 8 or 4 big-endian bytes, not %zu", len);
    }
    *out = rv_value_new_int(arena, i);
    return *out ? RV_OK : nomem(why, why_size);
}

static rv_err_t int_check(const rv_value_t *v, bool *tombstone, const char *name, char *why,
                          size_t why_size) {
    rv_type_t t = rv_value_type(v);
    if (t == RV_TYPE_NULL) {
        *tombstone = true;
        return RV_OK;
    }
    if (t != RV_TYPE_INT) {
        return fail(RV_ERR_INVALID_ARG, why, why_size, "the %s serialiser writes ints, not %s",
                    name, rv_type_name(t));
    }
    return RV_OK;
}

static rv_err_t int_encode(const rv_value_t *v, rv_strbuf_t *out, bool *tombstone, char *why,
                           size_t why_size) {
    rv_err_t e = int_check(v, tombstone, "int", why, why_size);
    if (e != RV_OK || *tombstone) {
        return e;
    }
    return store_be(out, (uint64_t)rv_value_int(v), 8, why, why_size);
}

static rv_err_t int32_encode(const rv_value_t *v, rv_strbuf_t *out, bool *tombstone, char *why,
                             size_t why_size) {
    rv_err_t e = int_check(v, tombstone, "int32", why, why_size);
    if (e != RV_OK || *tombstone) {
        return e;
    }
    int64_t i = rv_value_int(v);
    if (i < INT32_MIN || i > INT32_MAX) {
        return fail(RV_ERR_RANGE, why, why_size,
                    "the int32 serialiser writes 32-bit ints; %lld is out of range", (long long)i);
    }
    return store_be(out, (uint32_t)(int32_t)i, 4, why, why_size);
}

/* ---- double --------------------------------------------------------------------------------- */

static rv_err_t double_decode(rv_arena_t *arena, const void *data, size_t len, int max_depth,
                              rv_value_t **out, char *why, size_t why_size) {
    (void)max_depth;
    double d;
    if (len == 8) {
        uint64_t bits = load_be(data, 8);
        memcpy(&d, &bits, 8);
    } else if (len == 4) {
        uint32_t bits = (uint32_t)load_be(data, 4);
        float f;
        memcpy(&f, &bits, 4);
        d = f;
    } else {
        return fail(RV_ERR_PARSE, why, why_size,
                    "the double serialiser reads 8 (or 4) big-endian IEEE 754 bytes, not %zu", len);
    }
    *out = rv_value_new_double(arena, d);
    return *out ? RV_OK : nomem(why, why_size);
}

static rv_err_t double_encode(const rv_value_t *v, rv_strbuf_t *out, bool *tombstone, char *why,
                              size_t why_size) {
    rv_type_t t = rv_value_type(v);
    if (t == RV_TYPE_NULL) {
        *tombstone = true;
        return RV_OK;
    }
    if (t != RV_TYPE_DOUBLE && t != RV_TYPE_INT) {
        return fail(RV_ERR_INVALID_ARG, why, why_size,
                    "the double serialiser writes numbers, not %s", rv_type_name(t));
    }
    double d = rv_value_double(v);
    uint64_t bits;
    memcpy(&bits, &d, 8);
    return store_be(out, bits, 8, why, why_size);
}

/* ---- json ----------------------------------------------------------------------------------- */

static rv_err_t json_decode(rv_arena_t *arena, const void *data, size_t len, int max_depth,
                            rv_value_t **out, char *why, size_t why_size) {
    rv_json_parse_opts_t opts = {.max_depth = max_depth};
    rv_error_t *err = NULL;
    rv_err_t e = rv_json_parse(arena, data, len, &opts, out, NULL, &err);
    if (e != RV_OK) {
        *out = NULL;
        return from_error(e, err, why, why_size);
    }
    return RV_OK;
}

static rv_err_t json_encode(const rv_value_t *v, rv_strbuf_t *out, bool *tombstone, char *why,
                            size_t why_size) {
    (void)tombstone;
    rv_error_t *err = NULL;
    rv_err_t e = rv_json_write(out, v, RV_JSON_COMPACT, &err);
    return e == RV_OK ? RV_OK : from_error(e, err, why, why_size);
}

/* ---- telemetry and quix ------------------------------------------------------------------- */

/* Hands a decoded packet over as its value tree, or reports why decoding failed. */
static rv_err_t packet_to_value(rv_arena_t *arena, rv_tpacket_t *p, rv_err_t e, rv_error_t *err,
                                rv_value_t **out, char *why, size_t why_size) {
    if (e != RV_OK) {
        return from_error(e, err, why, why_size);
    }
    e = rv_tpacket_to_value(arena, p, out, &err);
    if (e != RV_OK) {
        *out = NULL;
        return from_error(e, err, why, why_size);
    }
    return RV_OK;
}

static rv_err_t telemetry_decode(rv_arena_t *arena, const void *data, size_t len, int max_depth,
                                 rv_value_t **out, char *why, size_t why_size) {
    (void)max_depth;
    rv_tpacket_t *p = NULL;
    rv_error_t *err = NULL;
    *out = NULL;
    rv_err_t e = rv_tpacket_decode(arena, data, len, &p, &err);
    return packet_to_value(arena, p, e, err, out, why, why_size);
}

static rv_err_t quix_decode(rv_arena_t *arena, const void *data, size_t len, int max_depth,
                            rv_value_t **out, char *why, size_t why_size) {
    (void)max_depth;
    rv_tpacket_t *p = NULL;
    rv_error_t *err = NULL;
    *out = NULL;
    rv_err_t e = rv_tpacket_read_quix(arena, data, len, &p, &err);
    return packet_to_value(arena, p, e, err, out, why, why_size);
}

/*
 * Reads a packet tree and writes it with `write`. The tree is read into a scratch arena made
 * for the call (the serialiser interface gives encoders no arena): one allocation per record.
 */
static rv_err_t
packet_encode(const rv_value_t *v, rv_strbuf_t *out, bool *tombstone, char *why, size_t why_size,
              rv_err_t (*write)(const rv_tpacket_t *, rv_strbuf_t *, rv_error_t **)) {
    if (rv_value_type(v) == RV_TYPE_NULL) {
        *tombstone = true;
        return RV_OK;
    }
    rv_arena_t *scratch = rv_arena_new(4096);
    if (!scratch) {
        return nomem(why, why_size);
    }
    rv_tpacket_t *p = NULL;
    rv_error_t *err = NULL;
    rv_err_t e = rv_tpacket_from_value(scratch, v, &p, &err);
    if (e == RV_OK) {
        e = write(p, out, &err);
    }
    rv_arena_destroy(scratch);
    return e == RV_OK ? RV_OK : from_error(e, err, why, why_size);
}

static rv_err_t telemetry_encode(const rv_value_t *v, rv_strbuf_t *out, bool *tombstone, char *why,
                                 size_t why_size) {
    return packet_encode(v, out, tombstone, why, why_size, rv_tpacket_encode);
}

static rv_err_t quix_encode(const rv_value_t *v, rv_strbuf_t *out, bool *tombstone, char *why,
                            size_t why_size) {
    return packet_encode(v, out, tombstone, why, why_size, rv_tpacket_write_quix);
}

/* ---- the registry --------------------------------------------------------------------------- */

static const rv__serde_t serde_bytes = {
    .version = RV__SERDE_VERSION, .name = "bytes", .decode = bytes_decode, .encode = bytes_encode};
static const rv__serde_t serde_string = {.version = RV__SERDE_VERSION,
                                         .name = "string",
                                         .decode = string_decode,
                                         .encode = string_encode};
static const rv__serde_t serde_int = {
    .version = RV__SERDE_VERSION, .name = "int", .decode = int_decode, .encode = int_encode};
static const rv__serde_t serde_int32 = {
    .version = RV__SERDE_VERSION, .name = "int32", .decode = int_decode, .encode = int32_encode};
static const rv__serde_t serde_double = {.version = RV__SERDE_VERSION,
                                         .name = "double",
                                         .decode = double_decode,
                                         .encode = double_encode};
static const rv__serde_t serde_json = {
    .version = RV__SERDE_VERSION, .name = "json", .decode = json_decode, .encode = json_encode};

static const rv__serde_t serde_telemetry = {.version = RV__SERDE_VERSION,
                                            .name = "telemetry",
                                            .decode = telemetry_decode,
                                            .encode = telemetry_encode};
static const rv__serde_t serde_quix = {
    .version = RV__SERDE_VERSION, .name = "quix", .decode = quix_decode, .encode = quix_encode};

static const rv__serde_t *const registry[] = {&serde_bytes,     &serde_string, &serde_int,
                                              &serde_int32,     &serde_double, &serde_json,
                                              &serde_telemetry, &serde_quix};

const rv__serde_t *rv__serde_find(const char *name) {
    for (size_t i = 0; name && i < RV_ARRAY_LEN(registry); i++) {
        if (strcmp(registry[i]->name, name) == 0) {
            return registry[i];
        }
    }
    return NULL;
}

const char *rv__serde_names(void) {
    return "bytes, string, int, int32, double, json, telemetry, quix";
}
