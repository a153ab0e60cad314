/*
 * rivulet/tstream.h: telemetry streams on a topic: writers, readers, the session catalogue and
 * replay.
 *
 * A writer (rv_twriter_t) opens one stream (or session) on a topic through a producer: every
 * packet it sends is one record whose key is the stream id. It keeps what a late consumer needs
 * (properties, session, parameter and event definitions, the data formats in use) and sends it
 * again by a fixed rule (docs/telemetry.md, "Writers"): at least every `redefine_interval_ns`
 * of data time or every `redefine_packets` packets, whichever comes first, and always before
 * a frame using a new data format is sent.
 *
 * A reader (rv_treader_t) is fed records (from any consumer: a group member or assigned
 * partitions) and calls back per stream: opened, properties, definitions changed, frame (column
 * names resolved from the data format), events, markers, session, coverage, closed. Its state per
 * stream is bounded: closed streams are forgotten at once, idle ones after a timeout, and past
 * `max_streams` the least recently active one goes.
 *
 * The catalogue (rv_tcatalogue_t) lists the streams and sessions of a topic; replay
 * (rv_treplay_run) sends a recorded stream again at its recorded pace, scaled, or at once.
 *
 * Times are ns since the Unix epoch (data time) unless a name says ms. Nothing here is
 * thread-safe: one thread per writer, reader or catalogue (several writers may share a
 * producer, which is thread-safe).
 */
#ifndef RIVULET_TSTREAM_H
#define RIVULET_TSTREAM_H

#include "broker.h"
#include "common.h"
#include "error.h"
#include "telemetry.h"

RV_BEGIN_DECLS

/** The encoding of telemetry records. */
typedef enum rv_twire_e {
    RV_TWIRE_AUTO = 0,      /* readers: by the first byte ('{' legacy JSON, else protobuf);
                               writers: protobuf */
    RV_TWIRE_TELEMETRY = 1, /* the protobuf Envelope of proto/telemetry.proto */
    RV_TWIRE_QUIX = 2       /* legacy Quix Streams JSON messages */
} rv_twire_t;

/** The wire's name ("auto", "telemetry", "quix"), and its parse (-1 when unknown). */
RV_API const char *rv_twire_name(rv_twire_t wire);
RV_API int rv_twire_parse(const char *name);

/* ---- writers ------------------------------------------------------------------------------ */

/** Defaults of the re-send rule (docs/telemetry.md, "Writers"). */
#define RV_TWRITER_REDEFINE_INTERVAL_NS 10000000000LL /* 10 s of data time */
#define RV_TWRITER_REDEFINE_PACKETS 1000

/** Options of rv_twriter_open(); zero-initialise and set what you need. */
typedef struct rv_twriter_opts_s {
    rv_twire_t wire;              /* RV_TWIRE_AUTO = RV_TWIRE_TELEMETRY */
    int64_t redefine_interval_ns; /* 0 = the default; < 0 never by time */
    int64_t redefine_packets;     /* 0 = the default; < 0 never by count */
    /* Leave the column names out of frames on the protobuf wire once their data format has
     * been sent: smaller frames (a one-row frame of 50 channels about halves), but a record
     * decoded on its own (the `telemetry` serialiser in a dataframe) then names its columns
     * `#0`, `#1`, ...; readers (rv_treader_t), rv_df_resample() and `rivulet consume
     * --telemetry` restore the names from the format. Off by default, so pipelines see
     * parameter names. */
    bool compact_frames;
} rv_twriter_opts_t;

/** A stream writer. Opaque. */
typedef struct rv_twriter_s rv_twriter_t;

/**
 * Opens stream `stream_id` on `topic` through `producer` (borrowed: it must outlive the writer).
 * Nothing is sent yet. Free with rv_twriter_close() (which ends the stream) or
 * rv_twriter_destroy() (which does not). NULL with *err on RV_ERR_INVALID_ARG (empty id or
 * topic) or RV_ERR_NOMEM.
 */
RV_API rv_twriter_t *rv_twriter_open(rv_producer_t *producer, const char *topic,
                                     const char *stream_id, const rv_twriter_opts_t *opts,
                                     rv_error_t **err);

/** The stream id (borrowed, valid until the writer is freed). */
RV_API const char *rv_twriter_stream_id(const rv_twriter_t *w);

/*
 * Each call below sends one packet (copied: the arguments are borrowed for the call) and
 * returns RV_OK, or the producer's error (RV_ERR_AGAIN when its queue is full: poll and retry
 * the call), RV_ERR_INVALID_ARG for a packet the encoder refuses, RV_ERR_STATE after close,
 * RV_ERR_NOMEM; *err names the topic and stream. On the `quix` wire, sessions, markers,
 * coverage and data formats have no message: those calls send nothing and return RV_OK.
 */

/** Sets the stream's properties (replacing earlier ones) and sends them. */
RV_API rv_err_t rv_twriter_set_properties(rv_twriter_t *w, const rv_tstream_properties_t *props,
                                          rv_error_t **err);

/** Starts a session (session_id, identifier, session_type, version, time, details). */
RV_API rv_err_t rv_twriter_session_start(rv_twriter_t *w, const rv_tsession_t *session,
                                         rv_error_t **err);

/** Updates the session's identifier, version or details (kept for re-sends: the last wins). */
RV_API rv_err_t rv_twriter_session_info(rv_twriter_t *w, const rv_tsession_t *info,
                                        rv_error_t **err);

/**
 * Adds or replaces (by id) parameter definitions and sends the whole set. The set is what
 * re-sends repeat.
 */
RV_API rv_err_t rv_twriter_define_parameters(rv_twriter_t *w, const rv_tparameter_def_t *defs,
                                             size_t count, rv_error_t **err);

/** Adds or replaces (by id) event definitions and sends the whole set. */
RV_API rv_err_t rv_twriter_define_events(rv_twriter_t *w, const rv_tevent_def_t *defs, size_t count,
                                         rv_error_t **err);

/**
 * Sends a frame. Its non-tag column names, in order, form its data format: the first frame
 * with a new list gets a new compact id (1, 2, ...) and a data-format packet sent just before
 * it; the frame is sent with that id (and its column names, which the decoder needs today).
 * May send the re-send block first (see the rule above).
 */
RV_API rv_err_t rv_twriter_write_frame(rv_twriter_t *w, const rv_tframe_t *frame, rv_error_t **err);

/**
 * Finishes the rows built in `b` into a frame (the builder is reset) and sends it as
 * rv_twriter_write_frame() does. A builder without rows sends nothing.
 */
RV_API rv_err_t rv_twriter_write_builder(rv_twriter_t *w, rv_tframe_builder_t *b, rv_error_t **err);

/** Sends events. */
RV_API rv_err_t rv_twriter_write_events(rv_twriter_t *w, const rv_tevent_t *events, size_t count,
                                        rv_error_t **err);

/** Sends markers (laps, sectors, any labelled range). */
RV_API rv_err_t rv_twriter_write_markers(rv_twriter_t *w, const rv_tmarker_t *markers, size_t count,
                                         rv_error_t **err);

/** Says the stream's data is complete up to `until` (ns). */
RV_API rv_err_t rv_twriter_coverage(rv_twriter_t *w, int64_t until, rv_error_t **err);

/** Sends the re-send block (properties, session, definitions, data formats) now. */
RV_API rv_err_t rv_twriter_redefine(rv_twriter_t *w, rv_error_t **err);

/**
 * Ends the stream: a session end (when a session was started; its time is `end_time`, or the
 * latest data time when `end_time` is 0) and a stream end of type `end`, then frees the writer
 * (also on error). Does not flush the producer. Accepts NULL (RV_OK).
 */
RV_API rv_err_t rv_twriter_close(rv_twriter_t *w, rv_tstream_end_t end, int64_t end_time,
                                 rv_error_t **err);

/** Frees the writer without ending the stream (readers see it live). Accepts NULL. */
RV_API void rv_twriter_destroy(rv_twriter_t *w);

/* ---- readers ------------------------------------------------------------------------------ */

/** What a reader knows of one stream: a view valid during the callback. */
typedef struct rv_tstream_view_s {
    const char *stream_id;
    const char *topic;
    int32_t partition;
    const rv_tstream_properties_t *properties; /* NULL until received */
    const rv_tsession_t *session; /* the session start with the latest info applied, or NULL */
    const rv_tparameter_def_t *parameters;
    size_t parameter_count;
    const rv_tevent_def_t *event_defs;
    size_t event_def_count;
    void **user; /* a slot for the application, NULL when the stream opens, kept until close */
} rv_tstream_view_t;

/** Reader callbacks (each may be NULL), called from rv_treader_feed()/rv_treader_poll(). */
typedef struct rv_treader_callbacks_s {
    void *opaque;
    /** A stream was seen for the first time (properties are set when they came first). */
    void (*on_open)(void *opaque, const rv_tstream_view_t *s);
    /** Properties arrived or changed. */
    void (*on_properties)(void *opaque, const rv_tstream_view_t *s);
    /** Parameter or event definitions arrived or changed (re-sends that change nothing don't). */
    void (*on_definitions)(void *opaque, const rv_tstream_view_t *s);
    /** A session packet (start, info or end; `packet->type` says which). */
    void (*on_session)(void *opaque, const rv_tstream_view_t *s, const rv_tpacket_t *packet);
    /** A frame (periodic data included), column names resolved. Borrowed for the call. */
    void (*on_frame)(void *opaque, const rv_tstream_view_t *s, const rv_tframe_t *frame);
    void (*on_events)(void *opaque, const rv_tstream_view_t *s, const rv_tevent_t *events,
                      size_t count);
    void (*on_markers)(void *opaque, const rv_tstream_view_t *s, const rv_tmarker_t *markers,
                       size_t count);
    void (*on_coverage)(void *opaque, const rv_tstream_view_t *s, int64_t until);
    /** The stream ended; its state is forgotten after the call. */
    void (*on_close)(void *opaque, const rv_tstream_view_t *s, rv_tstream_end_t end);
    /** The stream is forgotten without an end (idle past the timeout, or for room). */
    void (*on_forget)(void *opaque, const rv_tstream_view_t *s);
    /** A bad packet skipped under RV_TREADER_SKIP; `message` names topic, partition, offset, key.
     */
    void (*on_error)(void *opaque, rv_err_t code, const char *message);
} rv_treader_callbacks_t;

/** What a reader does with a record it cannot decode. */
typedef enum rv_treader_policy_e {
    RV_TREADER_STOP = 0, /* rv_treader_feed() returns the error (rv_treader_poll() stops at that
                            record; the consumer's position is already past it) */
    RV_TREADER_SKIP = 1  /* on_error, count it (rv_treader_stats()), go on */
} rv_treader_policy_t;

/** Defaults of the reader's bounds. */
#define RV_TREADER_MAX_STREAMS 4096
#define RV_TREADER_IDLE_TIMEOUT_MS 600000 /* 10 minutes without a packet */

/** Options of rv_treader_new(). */
typedef struct rv_treader_opts_s {
    rv_twire_t wire; /* RV_TWIRE_AUTO: per record by its first byte */
    rv_treader_policy_t on_bad;
    size_t max_streams;      /* 0 = RV_TREADER_MAX_STREAMS */
    int64_t idle_timeout_ms; /* 0 = RV_TREADER_IDLE_TIMEOUT_MS; < 0 never */
    /**
     * false (the default): a frame naming a data format the reader has not seen is held back
     * (dropped and counted as `undefined`): it belongs to a stream joined mid-way, and the
     * writer's next re-send brings the format. true: delivered with the names it carries.
     */
    bool deliver_undefined;
} rv_treader_opts_t;

/** Counters of a reader. */
typedef struct rv_treader_stats_s {
    uint64_t records;   /* records fed */
    uint64_t packets;   /* delivered to a callback or applied to a stream's state */
    uint64_t bad;       /* skipped as undecodable */
    uint64_t undefined; /* frames held back for want of their data format */
    uint64_t forgotten; /* streams forgotten idle or for room (not by their end) */
    size_t streams;     /* streams known now */
} rv_treader_stats_t;

typedef struct rv_treader_s rv_treader_t;

/** A new reader (opts may be NULL). Free with rv_treader_destroy(). NULL only for NOMEM. */
RV_API rv_treader_t *rv_treader_new(const rv_treader_opts_t *opts,
                                    const rv_treader_callbacks_t *callbacks, rv_error_t **err);

/**
 * Decodes one record (key = stream id) and calls back. A record without a key belongs to no
 * stream and is counted bad. Under RV_TREADER_STOP a bad record returns RV_ERR_PARSE (or
 * RV_ERR_UNSUPPORTED) with *err naming topic, partition, offset and key; under SKIP it returns
 * RV_OK. RV_ERR_NOMEM.
 */
RV_API rv_err_t rv_treader_feed(rv_treader_t *r, const rv_record_t *record, rv_error_t **err);

/**
 * Polls `consumer` once (up to `timeout_ms`) and feeds every record; forgets idle streams.
 * *count (may be NULL) receives the records fed. The consumer's errors pass through.
 */
RV_API rv_err_t rv_treader_poll(rv_treader_t *r, rv_consumer_t *consumer, int timeout_ms,
                                size_t *count, rv_error_t **err);

/** Forgets streams idle past the timeout (rv_treader_poll() calls it). */
RV_API void rv_treader_expire(rv_treader_t *r);

RV_API void rv_treader_stats(const rv_treader_t *r, rv_treader_stats_t *out);

RV_API void rv_treader_destroy(rv_treader_t *r);

/* ---- the session catalogue ---------------------------------------------------------------- */

/** One stream (and its session) on a topic, as the catalogue sees it. Borrowed views. */
typedef struct rv_tcatalogue_entry_s {
    const char *stream_id;
    const char *name;       /* the properties' name, else the session identifier, else NULL */
    const char *session_id; /* NULL without a session */
    int32_t partition;
    bool has_start, has_end;
    int64_t start; /* session start, else time of recording, else the earliest data time */
    int64_t end;   /* session end, else the latest data time */
    bool ended;    /* a stream end was read */
    rv_tstream_end_t end_type;
    uint64_t records, frames, rows, events, markers, bad;
} rv_tcatalogue_entry_t;

typedef struct rv_tcatalogue_s rv_tcatalogue_t;

/** Called for each entry changed while following; return false to stop following. */
typedef bool (*rv_tcatalogue_update_cb)(void *opaque, const rv_tcatalogue_entry_t *entry);

/** Options of rv_tcatalogue_scan(). */
typedef struct rv_tcatalogue_opts_s {
    bool follow;                       /* keep reading after the end, calling on_update */
    rv_tcatalogue_update_cb on_update; /* called once the first pass reached the end */
    /** Called once when the first pass reached the end of every partition (may be NULL). */
    void (*on_scanned)(void *opaque, rv_tcatalogue_t *cat);
    void *opaque;
    int poll_timeout_ms; /* while following; 0 = 200 */
    volatile int *stop;  /* when not NULL, following stops once *stop is non-zero */
} rv_tcatalogue_opts_t;

RV_API rv_tcatalogue_t *rv_tcatalogue_new(void);
RV_API void rv_tcatalogue_destroy(rv_tcatalogue_t *cat);

/** Accounts for one record (a record that does not decode counts as bad for its key). */
RV_API rv_err_t rv_tcatalogue_add(rv_tcatalogue_t *cat, const rv_record_t *record);

/**
 * Reads `topic` from the beginning to the end of every partition into `cat` and, with
 * opts->follow, goes on reading until on_update returns false or *stop is set. Errors of the
 * broker pass through (RV_ERR_NOT_FOUND for no such topic).
 */
RV_API rv_err_t rv_tcatalogue_scan(rv_tcatalogue_t *cat, rv_broker_t *broker, const char *topic,
                                   const rv_tcatalogue_opts_t *opts, rv_error_t **err);

/** The entries, sorted by start time (no start last) then stream id. Valid until the next add. */
RV_API size_t rv_tcatalogue_count(rv_tcatalogue_t *cat);
RV_API const rv_tcatalogue_entry_t *rv_tcatalogue_entry(rv_tcatalogue_t *cat, size_t i);
/** The entry of `stream_id`, or NULL. */
RV_API const rv_tcatalogue_entry_t *rv_tcatalogue_find(rv_tcatalogue_t *cat, const char *stream_id);

/* ---- replay ------------------------------------------------------------------------------- */

/** Called for each packet replayed, when it is due; return false to stop. */
typedef bool (*rv_treplay_cb)(void *opaque, const rv_tpacket_t *packet, int64_t data_time);

/** Options of rv_treplay_run(). */
typedef struct rv_treplay_opts_s {
    const char *topic;       /* required */
    const char *stream_id;   /* required: the stream (record key) to replay */
    double speed;            /* 1 = real time, 2 = twice as fast; <= 0 = as fast as possible */
    int64_t from, to;        /* data time range [from, to) in ns; 0 = unbounded */
    rv_producer_t *producer; /* with out_topic: where packets go (re-encoded in out_wire) */
    const char *out_topic;
    rv_twire_t out_wire;     /* AUTO = the wire the record came in */
    rv_treplay_cb on_packet; /* may be NULL */
    void *opaque;
    volatile int *stop; /* when not NULL, replay stops once *stop is non-zero */
} rv_treplay_opts_t;

/** What a replay did. */
typedef struct rv_treplay_stats_s {
    uint64_t packets;              /* replayed */
    uint64_t skipped;              /* outside the time range, or of other streams */
    uint64_t bad;                  /* undecodable records of the stream (skipped) */
    int64_t first_time, last_time; /* data times of the first and last timed packet */
    int64_t elapsed_ns;            /* wall time from the first timed packet to the last */
} rv_treplay_stats_t;

/**
 * Replays stream `stream_id` of `topic` (every partition, from the beginning to the end as it
 * was when the call started). Definitions and other untimed packets go out at once; a timed
 * packet (frame, events, markers, coverage) goes out when its data time is due: at
 * start + (t - t0) / speed, where start is the wall clock at the first timed packet and t0 its
 * data time, so sleeps never add up to drift. Frames are cut to the range, events and markers
 * filtered. NOT_FOUND when the stream has no record in the topic; broker errors pass through.
 */
RV_API rv_err_t rv_treplay_run(rv_broker_t *broker, const rv_treplay_opts_t *opts,
                               rv_treplay_stats_t *stats, rv_error_t **err);

RV_END_DECLS

#endif
