/*
 * rivulet/telemetry.h: the telemetry model and its three encodings.
 *
 * A telemetry topic carries streams (the stream id is the record key); each record value is one
 * packet: stream properties or end, session start/info/end, parameter or event definitions, a
 * data format, periodic data, a time-series frame, events, markers or coverage. Packets are plain
 * structs that live in an arena (arena.h): a decoder fills them there, a writer builds them
 * there (or on the stack) and hands them to an encoder, which only reads them. They are views,
 * like rv_buf_t: nothing in them is freed on its own, the arena frees everything at once.
 *
 * Strings in packets are NUL-terminated UTF-8; NULL means "absent" and is kept apart from ""
 * by every encoding that can say so. Times are int64 nanoseconds since the Unix epoch.
 *
 * A frame (rv_tframe_t) is columnar: one timestamp array and one typed array per parameter
 * (double, int64, string, bytes) or tag, each with a presence bitmap, so a time-series buffer can
 * merge and slice it column by column and interpolation can read a channel as one array. Frames
 * are built with rv_tframe_builder_t: add a row by timestamp, then set values by column.
 *
 * Encodings: the protobuf wire format of proto/telemetry.proto (rv_tpacket_encode/decode, the
 * `telemetry` serialiser), rivulet's own JSON shape (rv_tpacket_to_value/from_value and the
 * _json helpers: the same tree a pipeline sees), and the JSON messages of legacy Quix Streams
 * topics (rv_tpacket_read_quix/write_quix, the `quix` serialiser). See docs/telemetry.md.
 * Decoders never trust their input: every failure is RV_ERR_PARSE (or RV_ERR_UNSUPPORTED for a
 * version or legacy codec rivulet does not read) with a message naming the packet type, the field
 * and the byte offset or JSON path. Nothing here is thread-safe beyond "one thread per arena".
 */
#ifndef RIVULET_TELEMETRY_H
#define RIVULET_TELEMETRY_H

#include "arena.h"
#include "common.h"
#include "error.h"
#include "strbuf.h"
#include "value.h"

RV_BEGIN_DECLS

/** The protocol version the encoders write and the decoders accept. */
#define RV_TELEMETRY_VERSION 1

/** A string pair (metadata, session details, event tags). */
typedef struct rv_tkv_s {
    const char *key;
    const char *value;
} rv_tkv_t;

/* ---- frames --------------------------------------------------------------------------------- */

/** The type of a frame column. Tags are string columns that label rows rather than measure. */
typedef enum rv_tcol_type_e {
    RV_TCOL_DOUBLE = 1,
    RV_TCOL_INT64 = 2,
    RV_TCOL_STRING = 3,
    RV_TCOL_BYTES = 4,
    RV_TCOL_TAG = 5
} rv_tcol_type_t;

/** The column type's name: "double", "int64", "string", "bytes", "tag" (NULL when unknown). */
RV_API const char *rv_tcol_type_name(rv_tcol_type_t type);

/**
 * One column of a frame: `rows` entries (the frame's), each present or not. Values of absent
 * rows are 0 (or an empty view) and mean nothing. `present` holds one bit per row, least
 * significant bit first (row i is bit i % 8 of byte i / 8); NULL means every row is present.
 */
typedef struct rv_tcolumn_s {
    const char *name; /* parameter id, or tag name; NULL or "" when the data format names it */
    rv_tcol_type_t type;
    const uint8_t *present;
    union {
        const double *d;   /* RV_TCOL_DOUBLE */
        const int64_t *i;  /* RV_TCOL_INT64 */
        const rv_buf_t *s; /* RV_TCOL_STRING, RV_TCOL_BYTES, RV_TCOL_TAG */
    } v;
} rv_tcolumn_t;

/** A time-series frame: `rows` timestamps and `columns` columns. */
typedef struct rv_tframe_s {
    uint32_t format_id; /* the data format that names the columns, 0 for none */
    size_t rows;
    const int64_t *timestamps; /* ns since the epoch, in the order written (not sorted) */
    size_t column_count;
    const rv_tcolumn_t *columns;
} rv_tframe_t;

/** True when row `row` of `col` holds a value. */
static inline bool rv_tcolumn_has(const rv_tcolumn_t *col, size_t row) {
    return col->present == NULL || (col->present[row >> 3] >> (row & 7)) & 1u;
}

/** The frame's column named `name`, or NULL (a linear search). */
RV_API const rv_tcolumn_t *rv_tframe_column(const rv_tframe_t *frame, const char *name);

/** A frame builder. Opaque; reusable from frame to frame. */
typedef struct rv_tframe_builder_s rv_tframe_builder_t;

/** A new, empty builder; NULL when memory is exhausted. Free with rv_tframe_builder_destroy(). */
RV_API rv_tframe_builder_t *rv_tframe_builder_new(void);

/** Frees the builder. Accepts NULL. */
RV_API void rv_tframe_builder_destroy(rv_tframe_builder_t *b);

/** Forgets rows and columns, keeps the memory, for the next frame. */
RV_API void rv_tframe_builder_reset(rv_tframe_builder_t *b);

/**
 * The index of column `name` of type `type`, added (absent in earlier rows) when new. Keep the
 * index: setting values by index is the fast path. Returns -1 for RV_ERR_INVALID_ARG (NULL name,
 * unknown type, a name already used with another type) and for NOMEM.
 */
RV_API int rv_tframe_builder_column(rv_tframe_builder_t *b, const char *name, rv_tcol_type_t type);

/** Starts a new row at time `timestamp`; later set calls fill it. RV_ERR_NOMEM. */
RV_API rv_err_t rv_tframe_builder_add_row(rv_tframe_builder_t *b, int64_t timestamp);

/*
 * Set the current row's value of column `col` (an index from rv_tframe_builder_column(), whose
 * type must match). RV_ERR_STATE before the first row, RV_ERR_INVALID_ARG for a bad index or a
 * type mismatch, RV_ERR_NOMEM. Setting twice keeps the last value. Strings and bytes are copied.
 */
RV_API rv_err_t rv_tframe_builder_set_double(rv_tframe_builder_t *b, int col, double v);
RV_API rv_err_t rv_tframe_builder_set_int(rv_tframe_builder_t *b, int col, int64_t v);
/** For RV_TCOL_STRING, RV_TCOL_TAG and RV_TCOL_BYTES columns. */
RV_API rv_err_t rv_tframe_builder_set_str(rv_tframe_builder_t *b, int col, const void *data,
                                          size_t len);

/**
 * Copies the rows built so far into `arena` as a frame (columns in the order they were added;
 * a column present in every row gets a NULL bitmap) and resets the builder. `format_id` is
 * stored as is. RV_ERR_NOMEM (the builder keeps its rows).
 */
RV_API rv_err_t rv_tframe_builder_finish(rv_tframe_builder_t *b, rv_arena_t *arena,
                                         uint32_t format_id, const rv_tframe_t **out);

/**
 * The rows of `frame` whose timestamp t has `from` <= t < `to`, in their order, as a new frame in
 * `arena` (every column is kept, even one with no value in the slice; strings are copied).
 * RV_ERR_NOMEM, RV_ERR_INVALID_ARG for NULL arguments.
 */
RV_API rv_err_t rv_tframe_slice(rv_arena_t *arena, const rv_tframe_t *frame, int64_t from,
                                int64_t to, const rv_tframe_t **out);

/**
 * The rows of `a` followed by the rows of `b` as a new frame in `arena`. Columns are matched by
 * name and kind (tags apart); the result has a's columns, then b's new ones, and a column one
 * frame lacks is absent in that frame's rows. The format id is kept when both agree, else 0.
 * RV_ERR_INVALID_ARG when a column has different types in the two frames (the message names it),
 * RV_ERR_NOMEM.
 */
RV_API rv_err_t rv_tframe_append(rv_arena_t *arena, const rv_tframe_t *a, const rv_tframe_t *b,
                                 const rv_tframe_t **out, rv_error_t **err);

/* ---- packets -------------------------------------------------------------------------------- */

/** Packet types. The values are stable (they appear in no encoding, but tools print them). */
typedef enum rv_tpacket_type_e {
    RV_TPACKET_STREAM_PROPERTIES = 1,
    RV_TPACKET_STREAM_END,
    RV_TPACKET_SESSION_START,
    RV_TPACKET_SESSION_INFO,
    RV_TPACKET_SESSION_END,
    RV_TPACKET_PARAMETER_DEFINITIONS,
    RV_TPACKET_EVENT_DEFINITIONS,
    RV_TPACKET_DATA_FORMAT,
    RV_TPACKET_PERIODIC_DATA,
    RV_TPACKET_FRAME,
    RV_TPACKET_EVENTS,
    RV_TPACKET_MARKERS,
    RV_TPACKET_COVERAGE
} rv_tpacket_type_t;

/** The type's name as rivulet's JSON writes it ("frame", "stream_end", ...); NULL if unknown. */
RV_API const char *rv_tpacket_type_name(rv_tpacket_type_t type);

/** How a stream ended. */
typedef enum rv_tstream_end_e {
    RV_TSTREAM_CLOSED = 0,    /* normally */
    RV_TSTREAM_ABORTED = 1,   /* by the writer, on purpose */
    RV_TSTREAM_TERMINATED = 2 /* unexpectedly, while data was being written */
} rv_tstream_end_t;

/** An event's severity. */
typedef enum rv_tevent_level_e {
    RV_TLEVEL_TRACE = 0,
    RV_TLEVEL_DEBUG = 1,
    RV_TLEVEL_INFORMATION = 2,
    RV_TLEVEL_WARNING = 3,
    RV_TLEVEL_ERROR = 4,
    RV_TLEVEL_CRITICAL = 5
} rv_tevent_level_t;

/** A stream's properties (RV_TPACKET_STREAM_PROPERTIES); the time is ns since the epoch. */
typedef struct rv_tstream_properties_s {
    const char *name;
    const char *location; /* a path in the data catalogue, "/cars/car-1" */
    const rv_tkv_t *metadata;
    size_t metadata_count;
    const char *const *parents; /* ids of the streams this one derives from */
    size_t parent_count;
    bool has_time_of_recording;
    int64_t time_of_recording;
} rv_tstream_properties_t;

/**
 * A session packet (RV_TPACKET_SESSION_START, _INFO, _END). Each type carries the fields its
 * comment names; the others must be left zero (the encodings do not carry them).
 */
typedef struct rv_tsession_s {
    const char *session_id;
    const char *identifier;   /* a readable name */
    const char *session_type; /* start only */
    uint32_t version;
    int64_t time;            /* start: start time; end: end time; info: unused */
    const rv_tkv_t *details; /* start and info */
    size_t detail_count;
} rv_tsession_t;

/** A parameter's definition (RV_TPACKET_PARAMETER_DEFINITIONS holds an array of them). */
typedef struct rv_tparameter_def_s {
    const char *id;
    const char *name;
    const char *description;
    const char *unit;
    bool has_minimum, has_maximum;
    double minimum, maximum;
    const char *format;   /* display format */
    const char *location; /* a path of groups, "/chassis/suspension" */
    const char *custom_properties;
    double frequency; /* nominal samples per second, 0 when unknown */
} rv_tparameter_def_t;

/** An event's definition (RV_TPACKET_EVENT_DEFINITIONS holds an array of them). */
typedef struct rv_tevent_def_s {
    const char *id;
    const char *name;
    const char *description;
    rv_tevent_level_t level;
    const char *location;
    const char *custom_properties;
} rv_tevent_def_t;

/** One event (RV_TPACKET_EVENTS holds an array): id, time, a text value and tags. */
typedef struct rv_tevent_s {
    const char *id;
    int64_t time;
    const char *value;
    const rv_tkv_t *tags;
    size_t tag_count;
} rv_tevent_t;

/** A labelled time range (RV_TPACKET_MARKERS holds an array), such as a lap or a sector. */
typedef struct rv_tmarker_s {
    const char *kind;  /* "lap", "sector", or any label */
    const char *label; /* "Lap 12" */
    int64_t start_time, end_time;
    const char *description;
} rv_tmarker_t;

/**
 * One packet. `type` says which member of `u` holds it. Periodic data holds a frame whose
 * timestamps are start + i * interval (decoders fill them; encoders ignore them).
 */
typedef struct rv_tpacket_s {
    rv_tpacket_type_t type;
    const char *stream_id; /* NULL when the packet belongs to no stream */
    union {
        rv_tstream_properties_t properties;
        rv_tstream_end_t end;
        rv_tsession_t session; /* SESSION_START, SESSION_INFO, SESSION_END */
        struct {
            const rv_tparameter_def_t *items;
            size_t count;
        } parameters;
        struct {
            const rv_tevent_def_t *items;
            size_t count;
        } event_defs;
        struct {
            uint32_t format_id;
            const char *const *parameter_ids;
            size_t count;
        } format;
        struct {
            int64_t start_time;
            int64_t interval;
            const rv_tframe_t *frame;
        } periodic;
        const rv_tframe_t *frame;
        struct {
            const rv_tevent_t *items;
            size_t count;
        } events;
        struct {
            const rv_tmarker_t *items;
            size_t count;
        } markers;
        int64_t coverage_until;
    } u;
} rv_tpacket_t;

/**
 * Structural equality of two packets: same type, stream id and fields (strings by content, NULL
 * apart from ""; doubles by bits, so NaN equals NaN; frames cell by cell with presence).
 */
RV_API bool rv_tpacket_equal(const rv_tpacket_t *a, const rv_tpacket_t *b);

/* ---- protobuf (proto/telemetry.proto) -------------------------------------------------------- */

/**
 * Appends the packet's Envelope encoding to `out`. A frame with a format id is written without
 * the names of its non-tag columns that are NULL or "" (its data format names them; the
 * decoder gives them ""). RV_ERR_INVALID_ARG for a packet the format cannot hold (an unknown
 * type or column type, a frame with no timestamps array but rows, a column without a name that
 * no data format names), RV_ERR_NOMEM; `*err` (when not NULL) says what and where.
 */
RV_API rv_err_t rv_tpacket_encode(const rv_tpacket_t *p, rv_strbuf_t *out, rv_error_t **err);

/**
 * Decodes `len` bytes of an Envelope into a packet in `arena`. Unknown fields are skipped as
 * protobuf says; wrong wire types, truncations, counts that do not match a bitmap, invalid UTF-8
 * and the like are RV_ERR_PARSE, another version RV_ERR_UNSUPPORTED; the message names the
 * packet type, the field and the byte offset.
 */
RV_API rv_err_t rv_tpacket_decode(rv_arena_t *arena, const void *data, size_t len,
                                  rv_tpacket_t **out, rv_error_t **err);

/* ---- rivulet's JSON shape ------------------------------------------------------------------- */

/**
 * The packet as a value tree in `arena`: an object with "version", "type" (the type name),
 * "stream_id" when set, and the type's fields (docs/telemetry.md lists them). A frame is
 * {"format_id", "columns": [{"name", "type"}...], "rows": [{"time", "values": {...},
 * "tags": {...}}...]}, absent cells left out. RV_ERR_NOMEM, RV_ERR_INVALID_ARG.
 */
RV_API rv_err_t rv_tpacket_to_value(rv_arena_t *arena, const rv_tpacket_t *p, rv_value_t **out,
                                    rv_error_t **err);

/** The inverse of rv_tpacket_to_value(); RV_ERR_PARSE names the JSON path that is wrong. */
RV_API rv_err_t rv_tpacket_from_value(rv_arena_t *arena, const rv_value_t *v, rv_tpacket_t **out,
                                      rv_error_t **err);

/** rv_tpacket_to_value() written as compact JSON (RV_ERR_RANGE for a NaN or infinity). */
RV_API rv_err_t rv_tpacket_write_json(const rv_tpacket_t *p, rv_strbuf_t *out, rv_error_t **err);

/** Parses JSON text and reads it with rv_tpacket_from_value(). */
RV_API rv_err_t rv_tpacket_read_json(rv_arena_t *arena, const char *text, size_t len,
                                     rv_tpacket_t **out, rv_error_t **err);

/* ---- legacy Quix Streams JSON -----------------------------------------------------------------
 */

/**
 * Reads one legacy Quix Streams message: the wrapper {"C": codec, "K": model key, "V": value,
 * "S": start, "E": end} with codec "JT" (or "J"), or "JT-PaDa-1" (the compact time-series
 * codec), or a bare value whose shape says its model. Model keys: TimeseriesData (and
 * ParameterData) become a frame, EventData and EventData[] events, ParameterDefinitions,
 * EventDefinitions, StreamProperties and StreamEnd their packets. The stream id is the record key
 * in Quix, so the packet's stream_id is NULL. RV_ERR_UNSUPPORTED for other codecs (protobuf,
 * "PB") and model keys.
 */
RV_API rv_err_t rv_tpacket_read_quix(rv_arena_t *arena, const char *text, size_t len,
                                     rv_tpacket_t **out, rv_error_t **err);

/**
 * Writes the packet as a legacy Quix Streams "JT" message with the "S" and "E" offsets of the
 * value. Frames and periodic data become TimeseriesData (int64 columns as numbers, tags as
 * TagValues); events EventData (one) or EventData[] (several); definitions, properties and end
 * their models. RV_ERR_UNSUPPORTED for sessions, data formats, markers and coverage, which Quix
 * has no message for.
 */
RV_API rv_err_t rv_tpacket_write_quix(const rv_tpacket_t *p, rv_strbuf_t *out, rv_error_t **err);

RV_END_DECLS

#endif
