/*
 * rivulet/timeseries.h: the time-series buffer and resampling of telemetry frames.
 *
 * Both work on the columnar frames of telemetry.h, one stream at a time, and hand their output
 * to a callback as a frame that is borrowed: valid until the callback returns (copy it with
 * rv_tframe_slice() into an arena to keep it).
 *
 * The buffer (rv_tbuffer_t) gathers the rows of the frames added to it and releases them as one
 * merged frame when it holds `packet_size` rows, when its rows span `time_span_ns` of event time,
 * when it has waited `timeout_ms` of clock time, when a custom trigger says so (checked before
 * each row is taken, or after each frame), at a memory limit, or on rv_tbuffer_flush().
 *
 * The resampler (rv_tinterp_t) reduces chosen parameters to one value per grid point
 * (origin + k * period) with an aggregator (first, last, mean, min, max, or a custom processor)
 * and emits one row per completed grid point, incrementally over a stream of frames.
 *
 * Neither is thread-safe: one thread uses a handle at a time. docs/timeseries.md is the guide.
 */
#ifndef RIVULET_TIMESERIES_H
#define RIVULET_TIMESERIES_H

#include "common.h"
#include "error.h"
#include "telemetry.h"

RV_BEGIN_DECLS

/* ---- the time-series buffer ----------------------------------------------------------------- */

/** A time-series buffer for one stream. Opaque. */
typedef struct rv_tbuffer_s rv_tbuffer_t;

/** Why the buffer released a packet. */
typedef enum rv_tbuffer_reason_e {
    RV_TBUFFER_PACKET_SIZE = 1,    /* it held packet_size rows */
    RV_TBUFFER_TIME_SPAN = 2,      /* the next row lay time_span_ns or more past the first held */
    RV_TBUFFER_TIMEOUT = 3,        /* timeout_ms passed since the first held row arrived */
    RV_TBUFFER_TRIGGER_BEFORE = 4, /* trigger_before returned true for the next row */
    RV_TBUFFER_TRIGGER_AFTER = 5,  /* trigger_after returned true after a frame */
    RV_TBUFFER_LIMIT = 6,          /* max_rows or max_bytes was reached */
    RV_TBUFFER_TYPE_CHANGE = 7,    /* a frame brought a held column with another type */
    RV_TBUFFER_FLUSH = 8           /* rv_tbuffer_flush() */
} rv_tbuffer_reason_t;

/** The reason's name: "packet_size", "time_span", ... "flush" (NULL when unknown). */
RV_API const char *rv_tbuffer_reason_name(rv_tbuffer_reason_t reason);

/**
 * What the buffer holds, as the triggers see it. Times are the timestamps of held rows: `first`
 * and `last` in arrival order, `min` and `max` over all of them; all 0 when `rows` is 0.
 */
typedef struct rv_tbuffer_state_s {
    size_t rows;  /* rows held */
    size_t bytes; /* bytes of string, tag and bytes cells held */
    int64_t first_time, last_time, min_time, max_time;
    int64_t since_ms; /* clock time at which the first held row arrived */
} rv_tbuffer_state_t;

/**
 * Receives a released packet: every row held, in arrival order, merged column by column (the
 * columns in the order they first appeared in the packet; a column a frame lacked is absent in
 * that frame's rows). `frame` is borrowed until the callback returns. Return RV_OK, or an error,
 * which rv_tbuffer_add()/_tick()/_flush() return: the packet then stays held and is offered
 * again (with the same reason) first thing at the next add, tick or flush.
 */
typedef rv_err_t (*rv_tbuffer_release_fn)(void *opaque, const rv_tframe_t *frame,
                                          rv_tbuffer_reason_t reason);

/**
 * Buffer options; zero-initialise and set what you need (designated initialisers). Conditions
 * left 0 or NULL are off; several may be on at once, and whichever is met first releases.
 */
typedef struct rv_tbuffer_opts_s {
    /** Release when this many rows are held (0: off). A frame that overshoots is split: the
     * rows that fill the packet go, the rest start the next packet (and may fill more). */
    size_t packet_size;
    /** Release before taking a row whose timestamp t has t - first_time >= time_span_ns (0: off).
     * So a packet of in-order rows covers [first_time, first_time + span); the row that crosses
     * starts the next packet. A row earlier than first_time never crosses. */
    int64_t time_span_ns;
    /** Release when timeout_ms (clock time, `clock_ms`) have passed since the first held row
     * arrived: checked by rv_tbuffer_tick() and at the start of rv_tbuffer_add() (0: off). */
    int64_t timeout_ms;
    /** Called before taking each row (kept by the filter) while rows are held: true releases
     * what is held, then the row starts the next packet. `frame` is the frame being added. */
    bool (*trigger_before)(void *opaque, const rv_tframe_t *frame, size_t row,
                           const rv_tbuffer_state_t *held);
    /** Called once after each rv_tbuffer_add() that leaves rows held: true releases them. */
    bool (*trigger_after)(void *opaque, const rv_tframe_t *frame, const rv_tbuffer_state_t *held);
    /** Called once per added frame, before anything else looks at it, with `keep` holding one
     * bit per row (row i is bit i % 8 of byte i / 8), all set: clear the bits of rows to drop.
     * Dropped rows never reach the buffer, the triggers or the counts. */
    void (*filter)(void *opaque, const rv_tframe_t *frame, uint8_t *keep);
    /** Receives released packets (required). */
    rv_tbuffer_release_fn release;
    /** Passed to the callbacks above. */
    void *opaque;
    /** The clock for timeouts, in ms; NULL uses rv_clock_mono_ms(). Tests inject their own. */
    int64_t (*clock_ms)(void *opaque);
    /** Memory bounds: the most rows held (0: 1,048,576) and the most string/bytes cell bytes held
     * (0: 64 MiB); reaching either releases with RV_TBUFFER_LIMIT. A single row larger than
     * max_bytes is still taken, alone. packet_size may not exceed max_rows. */
    size_t max_rows;
    size_t max_bytes;
} rv_tbuffer_opts_t;

/**
 * Creates a buffer. RV_ERR_INVALID_ARG (no release callback, a negative span or timeout,
 * packet_size above max_rows), RV_ERR_NOMEM; `*err` says which. Free with rv_tbuffer_destroy().
 */
RV_API rv_err_t rv_tbuffer_new(const rv_tbuffer_opts_t *opts, rv_tbuffer_t **out, rv_error_t **err);

/** Frees the buffer; rows still held are dropped (call rv_tbuffer_flush() first). Accepts NULL. */
RV_API void rv_tbuffer_destroy(rv_tbuffer_t *b);

/**
 * Adds the rows of `frame` (borrowed for the call: the buffer copies what it keeps), releasing
 * packets as the conditions say, in this order: a pending packet is offered again; the timeout;
 * the filter; then per kept row the before-trigger, the time span and max_bytes (each releasing
 * what is held before the row), the row is taken, then packet_size and max_rows (releasing with
 * the row); after the last row, the after-trigger. A frame column that has another type than
 * the held column of that name releases what is held first (RV_TBUFFER_TYPE_CHANGE).
 * Returns RV_OK, RV_ERR_INVALID_ARG, RV_ERR_NOMEM, or the release callback's error: then the rows
 * of `frame` from rv_tbuffer_taken() on were not taken; add them again with rv_tbuffer_add_from().
 */
RV_API rv_err_t rv_tbuffer_add(rv_tbuffer_t *b, const rv_tframe_t *frame, rv_error_t **err);

/** rv_tbuffer_add() of the rows of `frame` from row `from` on. */
RV_API rv_err_t rv_tbuffer_add_from(rv_tbuffer_t *b, const rv_tframe_t *frame, size_t from,
                                    rv_error_t **err);

/** The index of the first row of the last added frame that was not taken (its row count when
 * every row was taken or dropped by the filter). */
RV_API size_t rv_tbuffer_taken(const rv_tbuffer_t *b);

/** Releases what is held when the timeout has passed at clock time `now_ms` (same clock as
 * `clock_ms`). Also offers a pending packet again. Returns RV_OK or the callback's error. */
RV_API rv_err_t rv_tbuffer_tick(rv_tbuffer_t *b, int64_t now_ms, rv_error_t **err);

/** Releases whatever is held (RV_TBUFFER_FLUSH); call it at the end of the stream. */
RV_API rv_err_t rv_tbuffer_flush(rv_tbuffer_t *b, rv_error_t **err);

/** What the buffer holds now. */
RV_API rv_tbuffer_state_t rv_tbuffer_state(const rv_tbuffer_t *b);

/* ---- resampling ----------------------------------------------------------------------------- */

/** A resampler for one stream. Opaque. */
typedef struct rv_tinterp_s rv_tinterp_t;

/** How a parameter's values in one grid interval become one value. */
typedef enum rv_tagg_e {
    RV_TAGG_FIRST = 1, /* the earliest-arrived value */
    RV_TAGG_LAST = 2,  /* the latest-arrived value */
    RV_TAGG_MEAN = 3,  /* arithmetic mean */
    RV_TAGG_MIN = 4,
    RV_TAGG_MAX = 5,
    RV_TAGG_CUSTOM = 6 /* a processor given as rv_tinterp_ops_t */
} rv_tagg_t;

/** The aggregator's name ("first", "last", "mean", "min", "max", "custom"); NULL if unknown. */
RV_API const char *rv_tagg_name(rv_tagg_t agg);

/** The aggregator named `name` (as rv_tagg_name() spells it), or 0 when there is none. */
RV_API rv_tagg_t rv_tagg_parse(const char *name);

#define RV_TINTERP_OPS_VERSION 1

/**
 * A custom processor: state of `state_size` bytes per output (16-byte aligned, owned by the
 * resampler) is set up with init() at the start of every grid interval, fed with add() one run
 * of rows at a time (rows from..to-1 of `col`, all inside the interval; `col` is the frame's
 * column of any type, absent cells included: check rv_tcolumn_has()), and read with result()
 * when the interval completes: return true and set *out, or false for "no value".
 */
typedef struct rv_tinterp_ops_s {
    int version; /* RV_TINTERP_OPS_VERSION */
    size_t state_size;
    void (*init)(void *state, void *opaque);
    void (*add)(void *state, void *opaque, const rv_tcolumn_t *col, const int64_t *timestamps,
                size_t from, size_t to);
    bool (*result)(void *state, void *opaque, int64_t grid_time, double *out);
} rv_tinterp_ops_t;

/** One output column: parameter `name` reduced with `agg`. */
typedef struct rv_tinterp_param_s {
    const char *name;   /* the input column (a parameter, not a tag) */
    const char *output; /* the output column's name; NULL: `name` */
    rv_tagg_t agg;
    const rv_tinterp_ops_t *ops; /* with RV_TAGG_CUSTOM */
    void *opaque;                /* passed to ops */
} rv_tinterp_param_t;

/** Which grid points get a row. */
typedef enum rv_tfill_e {
    /** A row per grid point where at least one output has a value; outputs without one are
     * absent in that row. */
    RV_TFILL_NONE = 0,
    /** A row per grid point from the first emitted one on, gaps included (at most max_fill
     * points per gap); an output with no value there repeats its last value (absent before it
     * has one). */
    RV_TFILL_PREVIOUS = 1
} rv_tfill_t;

/** What happens to a row whose grid interval is already complete (it arrived too late). */
typedef enum rv_tlate_e {
    RV_TLATE_ERROR = 0, /* rv_tinterp_feed() fails with RV_ERR_INVALID_ARG, taking nothing */
    RV_TLATE_DROP = 1   /* the row is dropped and counted (rv_tinterp_late()) */
} rv_tlate_t;

/**
 * Receives a batch of results: one row per emitted grid point (timestamp = the grid point, the
 * start of its interval), a double column per output in the order of `params`, absent cells as
 * rv_tfill_t says. `frame` is borrowed until the callback returns. An error is returned by
 * rv_tinterp_feed()/_flush(); the batch counts as delivered.
 */
typedef rv_err_t (*rv_tinterp_emit_fn)(void *opaque, const rv_tframe_t *frame);

/** Resampler options; zero-initialise and set what you need. */
typedef struct rv_tinterp_opts_s {
    int64_t period_ns; /* the delivery period, > 0 */
    /** Grid points are origin_ns + k * period_ns; 0 gives floor(t / period) * period. */
    int64_t origin_ns;
    const rv_tinterp_param_t *params; /* copied by rv_tinterp_new() */
    size_t param_count;
    rv_tfill_t fill;
    size_t max_fill; /* with RV_TFILL_PREVIOUS, 0: 10,000 */
    rv_tlate_t late;
    rv_tinterp_emit_fn emit; /* required */
    void *opaque;            /* passed to emit */
} rv_tinterp_opts_t;

/**
 * Creates a resampler. RV_ERR_INVALID_ARG (period not positive, no params or emit, an unknown
 * aggregator, RV_TAGG_CUSTOM without complete ops of this version, two outputs with one name),
 * RV_ERR_NOMEM; `*err` says which. Free with rv_tinterp_destroy().
 */
RV_API rv_err_t rv_tinterp_new(const rv_tinterp_opts_t *opts, rv_tinterp_t **out, rv_error_t **err);

/** Frees the resampler; an open interval is dropped (call rv_tinterp_flush() first). NULL ok. */
RV_API void rv_tinterp_destroy(rv_tinterp_t *ip);

/**
 * Feeds the rows of `frame` (borrowed for the call). Rows are grouped by grid interval; an
 * interval is complete, and emitted, once a row of a later interval arrives. Rows must arrive in
 * interval order: within an interval any order (first and last follow arrival), but a row of an
 * interval before the open one is late (see rv_tlate_t). Parameters the frame lacks have no data
 * in its rows. Built-in aggregators read double and int64 columns (int64 converted to double)
 * and skip NaN values as if absent; the output is absent where no value remained.
 * Errors: RV_ERR_INVALID_ARG (a late row under RV_TLATE_ERROR, a built-in aggregator on a
 * string, bytes or tag column; the message names the row, its time or the column, and nothing
 * of the frame is taken), RV_ERR_RANGE (a timestamp whose grid point overflows int64),
 * RV_ERR_NOMEM, or the emit callback's error.
 */
RV_API rv_err_t rv_tinterp_feed(rv_tinterp_t *ip, const rv_tframe_t *frame, rv_error_t **err);

/** Emits the open interval (at the end of the stream). Later rows must belong to later
 * intervals. Returns RV_OK, RV_ERR_NOMEM or the emit callback's error. */
RV_API rv_err_t rv_tinterp_flush(rv_tinterp_t *ip, rv_error_t **err);

/** Rows dropped as late under RV_TLATE_DROP, since creation. */
RV_API uint64_t rv_tinterp_late(const rv_tinterp_t *ip);

RV_END_DECLS

#endif
