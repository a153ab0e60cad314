/*
 * replay.c: replaying a recorded telemetry stream (rv_treplay_run, tstream.h).
 *
 * Reads one stream (a record key) of a topic from the beginning to the end the topic had when
 * the replay started, and hands each packet to a callback and/or a producer when it is due by
 * its data time: at start + (t - t0) / speed against the monotonic clock, computed from the
 * start every time so that sleeps never accumulate drift. Untimed packets (properties,
 * definitions, formats, session, end) go at once, in their order, so a consumer of the copy
 * always has what the data needs. It never changes the source topic.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rivulet/clock.h"
#include "telemetry/tstream_int.h"

#define SLEEP_SLICE_NS 100000000LL /* check *stop at least every 100 ms */

typedef struct replay_s {
    const rv_treplay_opts_t *o;
    rv_treplay_stats_t *st;
    rv_arena_t *arena;
    rv_strbuf_t buf;
    bool started;
    int64_t wall0, t0;
    bool found;
    bool stopped;
} replay_t;

static bool stop_asked(const replay_t *r) {
    return r->stopped || (r->o->stop && *r->o->stop);
}

/* Sleeps until the monotonic clock reads `due` (or a stop is asked). */
static void sleep_until(const replay_t *r, int64_t due) {
    for (;;) {
        int64_t left = due - rv_clock_mono_ns();
        if (left <= 0 || stop_asked(r)) {
            return;
        }
        if (left > SLEEP_SLICE_NS) {
            left = SLEEP_SLICE_NS;
        }
        struct timespec ts = {(time_t)(left / 1000000000LL), (long)(left % 1000000000LL)};
        nanosleep(&ts, NULL);
    }
}

static bool in_range(const rv_treplay_opts_t *o, int64_t t) {
    return (!o->from || t >= o->from) && (!o->to || t < o->to);
}

/* Cuts a timed packet to the range. False: nothing of it is left. */
static bool cut(replay_t *r, rv_tpacket_t *p) {
    const rv_treplay_opts_t *o = r->o;
    if (!o->from && !o->to) {
        return true;
    }
    switch (p->type) {
        case RV_TPACKET_FRAME: {
            const rv_tframe_t *f = NULL;
            if (rv_tframe_slice(r->arena, p->u.frame, o->from ? o->from : INT64_MIN,
                                o->to ? o->to : INT64_MAX, &f) != RV_OK) {
                return false;
            }
            p->u.frame = f;
            return f->rows > 0;
        }
        case RV_TPACKET_EVENTS: {
            rv_tevent_t *kept = rv_arena_alloc(r->arena, (p->u.events.count + 1) * sizeof *kept);
            size_t n = 0;
            for (size_t i = 0; kept && i < p->u.events.count; i++) {
                if (in_range(o, p->u.events.items[i].time)) {
                    kept[n++] = p->u.events.items[i];
                }
            }
            p->u.events.items = kept;
            p->u.events.count = n;
            return n > 0;
        }
        case RV_TPACKET_MARKERS: {
            rv_tmarker_t *kept = rv_arena_alloc(r->arena, (p->u.markers.count + 1) * sizeof *kept);
            size_t n = 0;
            for (size_t i = 0; kept && i < p->u.markers.count; i++) {
                if (in_range(o, p->u.markers.items[i].start_time)) {
                    kept[n++] = p->u.markers.items[i];
                }
            }
            p->u.markers.items = kept;
            p->u.markers.count = n;
            return n > 0;
        }
        case RV_TPACKET_PERIODIC_DATA:
            return in_range(o, p->u.periodic.start_time);
        case RV_TPACKET_COVERAGE:
            return in_range(o, p->u.coverage_until);
        default:
            return true;
    }
}

static rv_err_t emit(replay_t *r, rv_tpacket_t *p, rv_twire_t src_wire, int64_t t,
                     rv_error_t **err) {
    const rv_treplay_opts_t *o = r->o;
    if (o->on_packet && !o->on_packet(o->opaque, p, t)) {
        r->stopped = true;
    }
    if (o->producer && o->out_topic) {
        rv_twire_t wire = o->out_wire != RV_TWIRE_AUTO ? o->out_wire : src_wire;
        rv_strbuf_clear(&r->buf);
        rv_err_t e = rv__tencode(wire, p, &r->buf, err);
        if (e == RV_ERR_UNSUPPORTED && wire == RV_TWIRE_QUIX) {
            rv_error_destroy(err ? *err : NULL);
            if (err) {
                *err = NULL;
            }
            return RV_OK; /* legacy Quix has no message for it, as for writers */
        }
        if (e != RV_OK) {
            return e;
        }
        rv_record_t rec = {
            .topic = o->out_topic,
            .partition = RV_PARTITION_ANY,
            .key = o->stream_id,
            .key_len = strlen(o->stream_id),
            .value = r->buf.data ? r->buf.data : "",
            .value_len = r->buf.len,
            .timestamp_ms = t > 0 ? t / 1000000 : 0,
        };
        for (int i = 0;; i++) {
            e = rv_producer_send(o->producer, &rec, NULL);
            if (e != RV_ERR_AGAIN || i >= 100) {
                break;
            }
            rv_producer_poll(o->producer, 100);
        }
        if (e != RV_OK) {
            return rv__error_set(err, e, "telemetry replay: cannot send to topic '%s': %s",
                                 o->out_topic, rv_err_str(e));
        }
    }
    r->st->packets++;
    return RV_OK;
}

static rv_err_t replay_record(replay_t *r, const rv_record_t *rec, rv_error_t **err) {
    const rv_treplay_opts_t *o = r->o;
    size_t idlen = strlen(o->stream_id);
    if (!rec->key || rec->key_len != idlen || memcmp(rec->key, o->stream_id, idlen) != 0) {
        return RV_OK;
    }
    r->found = true;
    rv_arena_reset(r->arena);
    rv_tpacket_t *p = NULL;
    rv_twire_t wire = rv__twire_of(RV_TWIRE_AUTO, rec->value, rec->value_len);
    if (!rec->value ||
        rv__tdecode(r->arena, wire, rec->value, rec->value_len, o->stream_id, &p, NULL) != RV_OK) {
        r->st->bad++;
        return RV_OK;
    }
    p->stream_id = o->stream_id;
    int64_t t = 0;
    if (!rv__tpacket_time(p, &t)) {
        return emit(r, p, wire, 0, err);
    }
    if (!cut(r, p)) {
        r->st->skipped++;
        return RV_OK;
    }
    rv__tpacket_time(p, &t);
    if (!r->started) {
        r->started = true;
        r->wall0 = rv_clock_mono_ns();
        r->t0 = t;
        r->st->first_time = t;
    } else if (o->speed > 0 && t > r->t0) {
        sleep_until(r, r->wall0 + (int64_t)((double)(t - r->t0) / o->speed));
    }
    if (stop_asked(r)) {
        return RV_OK;
    }
    r->st->last_time = t;
    r->st->elapsed_ns = rv_clock_mono_ns() - r->wall0;
    return emit(r, p, wire, t, err);
}

typedef struct ends_s {
    int64_t *high;
    bool *done;
    int32_t count;
} ends_t;

static void on_eof(void *opaque, rv_consumer_t *consumer, const char *topic, int32_t partition,
                   int64_t offset) {
    ends_t *e = opaque;
    (void)consumer;
    (void)topic;
    if (partition >= 0 && partition < e->count && offset >= e->high[partition]) {
        e->done[partition] = true;
    }
}

rv_err_t rv_treplay_run(rv_broker_t *broker, const rv_treplay_opts_t *opts,
                        rv_treplay_stats_t *stats, rv_error_t **err) {
    rv_treplay_stats_t local_stats;
    if (!stats) {
        stats = &local_stats;
    }
    *stats = (rv_treplay_stats_t){0};
    if (!opts || !opts->topic || !opts->stream_id || !*opts->stream_id) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "telemetry replay: a topic and a stream id "
                             "are needed");
    }
    int32_t partitions = 0;
    rv_err_t e = rv_broker_describe_topic(broker, opts->topic, &partitions, NULL, err);
    if (e != RV_OK) {
        return e;
    }
    replay_t r = {.o = opts, .st = stats, .arena = rv_arena_new(0)};
    ends_t ends = {calloc((size_t)partitions, sizeof *ends.high),
                   calloc((size_t)partitions, sizeof *ends.done), partitions};
    rv_topic_partition_t *tps = calloc((size_t)partitions, sizeof *tps);
    if (!r.arena || !ends.high || !ends.done || !tps) {
        e = rv__error_set(err, RV_ERR_NOMEM, "telemetry replay: out of memory");
    }
    for (int32_t i = 0; i < partitions && e == RV_OK; i++) {
        int64_t low = 0;
        e = rv_broker_watermarks(broker, opts->topic, i, &low, &ends.high[i], err);
        ends.done[i] = ends.high[i] <= low;
        tps[i] = (rv_topic_partition_t){opts->topic, i, RV_OFFSET_BEGINNING};
    }
    rv_consumer_opts_t copts = {.callbacks = {.opaque = &ends, .on_partition_eof = on_eof}};
    rv_consumer_t *c = e == RV_OK ? rv_consumer_new(broker, &copts, err) : NULL;
    if (e == RV_OK && !c) {
        e = err && *err ? rv_error_code(*err) : RV_ERR_NOMEM;
    }
    if (e == RV_OK) {
        e = rv_consumer_assign(c, tps, (size_t)partitions, err);
    }
    while (e == RV_OK && !stop_asked(&r)) {
        bool done = true;
        for (int32_t i = 0; i < partitions; i++) {
            done = done && ends.done[i];
        }
        if (done) {
            break;
        }
        const rv_record_t *recs = NULL;
        size_t n = 0;
        e = rv_consumer_poll(c, &recs, 256, &n, 200, err);
        if (e == RV_ERR_TIMEOUT || e == RV_ERR_AGAIN) {
            e = RV_OK;
        }
        for (size_t i = 0; i < n && e == RV_OK && !stop_asked(&r); i++) {
            const rv_record_t *rec = &recs[i];
            if (rec->partition >= 0 && rec->partition < partitions &&
                rec->offset >= ends.high[rec->partition]) {
                continue; /* written after the replay started */
            }
            if (rec->partition >= 0 && rec->partition < partitions &&
                rec->offset + 1 >= ends.high[rec->partition]) {
                ends.done[rec->partition] = true;
            }
            e = replay_record(&r, rec, err);
        }
    }
    rv_consumer_close(c);
    rv_arena_destroy(r.arena);
    rv_strbuf_free(&r.buf);
    free(ends.high);
    free(ends.done);
    free(tps);
    if (e == RV_OK && !r.found && !stop_asked(&r)) {
        return rv__error_set(err, RV_ERR_NOT_FOUND,
                             "telemetry replay: topic '%s' has no record of stream '%s'",
                             opts->topic, opts->stream_id);
    }
    if (e == RV_OK && opts->producer) {
        e = rv_producer_flush(opts->producer, -1, err);
    }
    return e;
}
