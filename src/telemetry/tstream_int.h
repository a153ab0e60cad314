/*
 * tstream_int.h: what the telemetry stream layer (writer.c, reader.c, catalogue.c, replay.c)
 * shares: encoding and decoding a record in either wire, deep copies of packets, a packet's
 * data time, and a small string-keyed hash map. Internal to src/telemetry.
 */
#ifndef RV_TSTREAM_INT_H
#define RV_TSTREAM_INT_H

#include "core/core_int.h"
#include "rivulet/broker.h"
#include "rivulet/tstream.h"

/* The wire of a record's value under `wire` (AUTO: '{' or JSON whitespace first = quix). */
RV__HIDDEN rv_twire_t rv__twire_of(rv_twire_t wire, const void *data, size_t len);

/* Decodes a record value into `arena`; the packet's stream_id is set from `key` when the wire
 * does not carry it (quix). RV_ERR_PARSE/UNSUPPORTED/NOMEM with *err. */
RV__HIDDEN rv_err_t rv__tdecode(rv_arena_t *arena, rv_twire_t wire, const void *data, size_t len,
                                const char *key, rv_tpacket_t **out, rv_error_t **err);

/* Appends the packet in `wire` (AUTO = telemetry) to `out`. */
RV__HIDDEN rv_err_t rv__tencode(rv_twire_t wire, const rv_tpacket_t *p, rv_strbuf_t *out,
                                rv_error_t **err);

/* A deep copy of `p` in `arena` (through the protobuf encoding: every field survives). */
RV__HIDDEN rv_err_t rv__tpacket_clone(rv_arena_t *arena, const rv_tpacket_t *p, rv_tpacket_t **out,
                                      rv_error_t **err);

/* A packet kept: a deep copy in its own arena (NULL p: none). Zero-initialise. */
typedef struct rv__tkept_s {
    rv_arena_t *arena;
    rv_tpacket_t *p;
} rv__tkept_t;

/* Replaces what `k` keeps with a copy of `p` (the old copy is freed once the new one exists).
 * RV_ERR_NOMEM with *err. */
RV__HIDDEN rv_err_t rv__tkept_set(rv__tkept_t *k, const rv_tpacket_t *p, rv_error_t **err);
RV__HIDDEN void rv__tkept_free(rv__tkept_t *k);

/* A stream's data formats: the latest definition of each format id, each kept in its own
 * arena, at most RV__TFORMATS_MAX (past it the oldest is dropped). Zero-initialise. */
#define RV__TFORMATS_MAX 1024
typedef struct rv__tformats_s {
    rv__tkept_t *v;
    size_t n;
} rv__tformats_t;

/* Keeps data format `p` (a copy; a redefinition of its id replaces the old one, an identical
 * one costs nothing). RV_ERR_NOMEM with *err. */
RV__HIDDEN rv_err_t rv__tformats_put(rv__tformats_t *fs, const rv_tpacket_t *p, rv_error_t **err);
/* The definition of format `id`, or NULL. */
RV__HIDDEN const rv_tpacket_t *rv__tformats_find(const rv__tformats_t *fs, uint32_t id);
RV__HIDDEN void rv__tformats_free(rv__tformats_t *fs);

/* The data time of a timed packet (frame: earliest row; periodic: start; events: earliest;
 * markers: earliest start; coverage: its time). False for untimed packets and empty ones. */
RV__HIDDEN bool rv__tpacket_time(const rv_tpacket_t *p, int64_t *t);

/* "topic 'T' partition P offset O key 'K'" for messages (truncating long keys). */
RV__HIDDEN void rv__trecord_where(const rv_record_t *r, char *out, size_t size);

/* A string -> size_t map with open addressing; keys are copied. */
typedef struct rv__tmap_s {
    char **keys; /* NULL = empty, RV__TMAP_GONE = deleted */
    size_t *vals;
    size_t cap;   /* a power of two, or 0 */
    size_t used;  /* live + deleted slots */
    size_t count; /* live */
} rv__tmap_t;

RV__HIDDEN bool rv__tmap_get(const rv__tmap_t *m, const char *key, size_t *val);
/* Inserts or replaces; RV_ERR_NOMEM. */
RV__HIDDEN rv_err_t rv__tmap_put(rv__tmap_t *m, const char *key, size_t val);
RV__HIDDEN void rv__tmap_del(rv__tmap_t *m, const char *key);
RV__HIDDEN void rv__tmap_free(rv__tmap_t *m);

#endif
