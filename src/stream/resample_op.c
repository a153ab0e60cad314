/*
 * resample_op.c: the resampling operator of dataframes (rv_df_resample()): a custom operator
 * node that runs the telemetry resampler (rv_tinterp_t, src/telemetry/interp.c) over frame
 * values as the `telemetry` serialiser decodes them.
 *
 * It keeps one resampler per (input topic and partition, stream id), made on the stream's first
 * frame. A frame value is read back into a frame, fed, and every batch the resampler emits is
 * turned into a frame value of the same stream and passed downstream with the input record's key;
 * every other value passes through untouched. The stream's data formats are remembered as they
 * pass, so frames written with compact_frames (columns left to their format) are matched by
 * parameter id like any other; a frame whose format was not seen yet (a run that starts after
 * it) is fed with only its named columns, with a warning per stream and format naming where.
 * Formats are kept as the stream reader keeps them (rv__tformats_t: the latest definition of
 * each id, at most RV__TFORMATS_MAX per stream). Resamplers and formats live in memory only:
 * nothing goes to a state store, and a partition whose offsets go back (it was revoked and is
 * read again from its committed offset) drops them and starts afresh. This file must never
 * touch a broker, a store or the value it is given: it only reads records and emits new ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/timeseries.h"
#include "stream/stream_int.h"
#include "telemetry/telemetry_int.h"
#include "telemetry/tstream_int.h"

/* ---- the operator's data ------------------------------------------------------------------- */

typedef struct rstream_s {
    char *id;               /* the stream id (malloc) */
    rv_tinterp_t *ip;       /* made on the stream's first frame */
    rv__tformats_t formats; /* the data formats seen */
    uint32_t warned_format; /* the last format id warned about as unknown */
} rstream_t;

/* One input partition's resamplers. Its mutex is held while a record of the partition runs, so
 * a partition handed to another worker meets its streams in a consistent state. */
typedef struct rslot_s {
    const rv_topic_t *topic; /* records of a concat may come from several topics */
    int32_t partition;
    pthread_mutex_t mu;
    rstream_t *streams;
    size_t n, cap;
    int64_t last_offset; /* of the last record run; -1 before any */
} rslot_t;

typedef struct rop_s {
    rv_tinterp_opts_t opts; /* params point into `arena`; emit and opaque set per stream */
    rv_arena_t *arena;
    pthread_mutex_t mu; /* the slot list (a slot has its own mutex) */
    rslot_t **slots;
    size_t nslots, cap;
} rop_t;

/* What the resampler's emit callback needs: set for the duration of one feed. */
typedef struct remit_s {
    rv_ctx_t *ctx;
    rv_df_t *node;
    const char *stream_id;
} remit_t;

static void slot_clear(rslot_t *sl) {
    for (size_t i = 0; i < sl->n; i++) {
        rv_tinterp_destroy(sl->streams[i].ip);
        rv__tformats_free(&sl->streams[i].formats);
        free(sl->streams[i].id);
    }
    sl->n = 0;
}

static void rop_destroy(void *state) {
    rop_t *op = state;
    if (!op) {
        return;
    }
    for (size_t i = 0; i < op->nslots; i++) {
        slot_clear(op->slots[i]);
        free(op->slots[i]->streams);
        pthread_mutex_destroy(&op->slots[i]->mu);
        free(op->slots[i]);
    }
    free(op->slots);
    pthread_mutex_destroy(&op->mu);
    rv_arena_destroy(op->arena);
    free(op);
}

/* The slot of partition `p` of `topic`, made when missing (a linear search: an operator sees
 * a handful of partitions). NULL on NOMEM. */
static rslot_t *slot_of(rop_t *op, const rv_topic_t *topic, int32_t p) {
    pthread_mutex_lock(&op->mu);
    rslot_t *sl = NULL;
    for (size_t i = 0; i < op->nslots && !sl; i++) {
        if (op->slots[i]->topic == topic && op->slots[i]->partition == p) {
            sl = op->slots[i];
        }
    }
    if (!sl && op->nslots == op->cap) {
        size_t cap = op->cap ? op->cap * 2 : 8;
        rslot_t **v = realloc(op->slots, cap * sizeof *v);
        if (v) {
            op->slots = v;
            op->cap = cap;
        }
    }
    if (!sl && op->nslots < op->cap) {
        rslot_t *s = calloc(1, sizeof *s);
        if (s && pthread_mutex_init(&s->mu, NULL) == 0) {
            s->topic = topic;
            s->partition = p;
            s->last_offset = -1;
            op->slots[op->nslots++] = sl = s;
        } else {
            free(s);
        }
    }
    pthread_mutex_unlock(&op->mu);
    return sl;
}

/* ---- running --------------------------------------------------------------------------------- */

/* The resampler's emit callback: one batch of grid rows as a frame value downstream. */
static rv_err_t on_emit(void *opaque, const rv_tframe_t *frame) {
    remit_t *re = opaque;
    rv_ctx_t *ctx = re->ctx;
    if (frame->rows == 0) {
        return RV_OK;
    }
    rv_tpacket_t pkt = {.type = RV_TPACKET_FRAME, .stream_id = re->stream_id, .u.frame = frame};
    rv_value_t *v = NULL;
    rv_error_t *err = NULL;
    rv_err_t e = rv_tpacket_to_value(ctx->arena, &pkt, &v, &err);
    if (e != RV_OK) {
        rv__ctx_failf(ctx, "resample: stream '%s': %s", re->stream_id, rv_error_message(err));
        rv_error_destroy(err);
        return e;
    }
    int64_t saved_ts = ctx->timestamp;
    const rv_header_t *saved_h = ctx->headers;
    size_t saved_hn = ctx->header_count;
    int64_t t = frame->timestamps[0];
    ctx->timestamp = t / 1000000 - (t % 1000000 < 0); /* the first grid point, in ms (floor) */
    ctx->headers = NULL;
    ctx->header_count = 0;
    e = rv__df_emit(ctx, re->node, v);
    ctx->timestamp = saved_ts;
    ctx->headers = saved_h;
    ctx->header_count = saved_hn;
    return e;
}

/* True when `value` is a packet tree of type `type` ("frame", "data_format"). */
static bool is_packet(const rv_value_t *value, const char *type) {
    if (!value || rv_value_type(value) != RV_TYPE_OBJECT) {
        return false;
    }
    const rv_value_t *t = rv_value_get_cstr(value, "type");
    size_t len = 0;
    const char *s = t && rv_value_type(t) == RV_TYPE_STRING ? rv_value_str(t, &len) : NULL;
    return s && len == strlen(type) && memcmp(s, type, len) == 0;
}

/* The record of stream `id` in `sl`, made when missing. NULL (ctx failed) on NOMEM. */
static rstream_t *stream_of(rslot_t *sl, rv_ctx_t *ctx, const char *id) {
    for (size_t i = 0; i < sl->n; i++) {
        if (strcmp(sl->streams[i].id, id) == 0) {
            return &sl->streams[i];
        }
    }
    if (sl->n == sl->cap) {
        size_t cap = sl->cap ? sl->cap * 2 : 4;
        rstream_t *v = realloc(sl->streams, cap * sizeof *v);
        if (!v) {
            rv__ctx_failf(ctx, "resample: out of memory");
            return NULL;
        }
        sl->streams = v;
        sl->cap = cap;
    }
    rstream_t *s = &sl->streams[sl->n];
    *s = (rstream_t){.id = strdup(id)};
    if (!s->id) {
        rv__ctx_failf(ctx, "resample: out of memory");
        return NULL;
    }
    sl->n++;
    return s;
}

/* The resampler of stream `s`, made when missing. NULL (ctx failed) on error. */
static rv_tinterp_t *interp_of(rop_t *op, rstream_t *s, rv_ctx_t *ctx, remit_t *re) {
    if (!s->ip) {
        rv_tinterp_opts_t o = op->opts;
        o.emit = on_emit;
        o.opaque = re;
        rv_error_t *err = NULL;
        if (rv_tinterp_new(&o, &s->ip, &err) != RV_OK) {
            rv__ctx_failf(ctx, "resample: stream '%s': %s", s->id,
                          err ? rv_error_message(err) : "out of memory");
            rv_error_destroy(err);
            s->ip = NULL;
        }
    }
    return s->ip;
}

/* The record's slot, with its mutex held; a partition read again from an earlier offset drops
 * what it held. NULL (ctx failed) on NOMEM. */
static rslot_t *lock_slot(rop_t *op, rv_ctx_t *ctx) {
    rslot_t *sl = slot_of(op, ctx->topic, ctx->rec->partition);
    if (!sl) {
        rv__ctx_failf(ctx, "resample: out of memory");
        return NULL;
    }
    pthread_mutex_lock(&sl->mu);
    if (ctx->rec->offset >= 0) {
        if (ctx->rec->offset <= sl->last_offset) {
            slot_clear(sl); /* the partition is read again from an earlier offset */
        }
        sl->last_offset = ctx->rec->offset;
    }
    return sl;
}

/* The packet tree `value` read back into a packet in the batch arena; NULL with *e set (and
 * ctx failed) when it is not one. */
static rv_tpacket_t *read_packet(rv_ctx_t *ctx, const rv_value_t *value, rv_err_t *e) {
    rv_tpacket_t *pkt = NULL;
    rv_error_t *err = NULL;
    *e = rv_tpacket_from_value(ctx->arena, value, &pkt, &err);
    if (*e != RV_OK) {
        rv__ctx_failf(ctx, "resample: not a telemetry packet: %s", rv_error_message(err));
        pkt = NULL;
    }
    rv_error_destroy(err);
    return pkt;
}

/* A data format passing by: remembered for its stream's frames, then passed on. */
static rv_err_t on_format(rop_t *op, rv_ctx_t *ctx, rv_df_t *node, rv_value_t *value) {
    rv_err_t e;
    rv_tpacket_t *pkt = read_packet(ctx, value, &e);
    if (!pkt) {
        return e;
    }
    rslot_t *sl = lock_slot(op, ctx);
    if (!sl) {
        return RV_ERR_NOMEM;
    }
    rstream_t *s = stream_of(sl, ctx, pkt->stream_id ? pkt->stream_id : "");
    rv_error_t *err = NULL;
    e = s ? rv__tformats_put(&s->formats, pkt, &err) : RV_ERR_NOMEM;
    pthread_mutex_unlock(&sl->mu);
    if (e != RV_OK) {
        if (s) {
            rv__ctx_failf(ctx, "resample: stream '%s': %s", s->id, rv_error_message(err));
        }
        rv_error_destroy(err);
        return e;
    }
    return rv__df_emit(ctx, node, value);
}

static rv_err_t rop_run(rv_ctx_t *ctx, rv_df_t *node, rv_value_t *value) {
    rop_t *op = node->op_state;
    if (is_packet(value, "data_format")) {
        return on_format(op, ctx, node, value);
    }
    if (!is_packet(value, "frame")) {
        return rv__df_emit(ctx, node, value); /* other packets and values pass through */
    }
    rv_err_t e;
    rv_tpacket_t *pkt = read_packet(ctx, value, &e);
    if (!pkt) {
        return e;
    }
    const char *id = pkt->stream_id ? pkt->stream_id : "";
    rslot_t *sl = lock_slot(op, ctx);
    if (!sl) {
        return RV_ERR_NOMEM;
    }
    remit_t re = {ctx, node, id};
    rstream_t *s = stream_of(sl, ctx, id);
    rv_tinterp_t *ip = s ? interp_of(op, s, ctx, &re) : NULL;
    if (!ip) {
        pthread_mutex_unlock(&sl->mu);
        return RV_ERR_NOMEM;
    }
    const rv_tframe_t *f = pkt->u.frame;
    if (f->format_id != 0) {
        const rv_tpacket_t *fmt = rv__tformats_find(&s->formats, f->format_id);
        if (fmt) {
            f = rv__tframe_name_columns(ctx->arena, f, fmt);
        } else if (s->warned_format != f->format_id) {
            s->warned_format = f->format_id;
            rv__df_logf(ctx, node, RV_LOG_WARNING,
                        "resample: stream '%s' (topic '%s' partition %d offset %lld): frames of "
                        "data format %u, whose definition has not passed yet, are resampled "
                        "with their named columns only until it does",
                        id, rv_ctx_topic(ctx), (int)ctx->rec->partition,
                        (long long)ctx->rec->offset, (unsigned)f->format_id);
        }
    }
    rv_error_t *err = NULL;
    e = f ? rv_tinterp_feed(ip, f, &err) : RV_ERR_NOMEM;
    if (e != RV_OK && !ctx->fail_set) {
        rv__ctx_failf(ctx, "resample: stream '%s': %s", id,
                      err ? rv_error_message(err) : "out of memory");
    }
    rv_error_destroy(err);
    pthread_mutex_unlock(&sl->mu);
    return e;
}

static const rv__op_ops_t resample_ops = {
    .version = RV__OP_OPS_VERSION,
    .run = rop_run,
    .destroy = rop_destroy,
    .mutates = false,
};

/* ---- building -------------------------------------------------------------------------------- */

static rv_err_t no_emit(void *opaque, const rv_tframe_t *frame) {
    (void)opaque;
    (void)frame;
    return RV_OK;
}

static const char *arena_str(rv_arena_t *a, const char *s) {
    return s ? rv_arena_strndup(a, s, strlen(s)) : NULL;
}

rv_df_t *rv_df_resample(rv_df_t *df, const struct rv_tinterp_opts_s *opts) {
    if (!df) {
        return NULL;
    }
    rv__graph_t *g = df->graph;
    if (!opts) {
        rv__graph_fail(g, RV_ERR_INVALID_ARG, "resample", "no options");
        return NULL;
    }
    /* Check the options once by making (and freeing) a resampler of them. */
    rv_tinterp_opts_t o = *opts;
    o.emit = no_emit;
    o.opaque = NULL;
    rv_tinterp_t *probe = NULL;
    rv_error_t *err = NULL;
    rv_err_t e = rv_tinterp_new(&o, &probe, &err);
    rv_tinterp_destroy(probe);
    if (e != RV_OK) {
        rv__graph_fail(g, e, "resample", err ? rv_error_message(err) : "out of memory");
        rv_error_destroy(err);
        return NULL;
    }
    rop_t *op = calloc(1, sizeof *op);
    if (!op || !(op->arena = rv_arena_new(512)) || pthread_mutex_init(&op->mu, NULL) != 0) {
        if (op) {
            rv_arena_destroy(op->arena);
        }
        free(op);
        rv__graph_fail(g, RV_ERR_NOMEM, "resample", "out of memory");
        return NULL;
    }
    op->opts = o;
    rv_tinterp_param_t *ps = rv_arena_alloc(op->arena, o.param_count * sizeof *ps);
    bool ok = ps != NULL;
    for (size_t i = 0; ok && i < o.param_count; i++) {
        ps[i] = opts->params[i];
        ps[i].name = arena_str(op->arena, opts->params[i].name);
        ps[i].output = arena_str(op->arena, opts->params[i].output);
        ok = ps[i].name && (!opts->params[i].output || ps[i].output);
    }
    if (!ok) {
        rv__graph_fail(g, RV_ERR_NOMEM, "resample", "out of memory");
        rop_destroy(op);
        return NULL;
    }
    op->opts.params = ps;
    char desc[128];
    snprintf(desc, sizeof desc, "resample(%lld ns, %zu outputs)", (long long)o.period_ns,
             o.param_count);
    return rv__df_custom(df, desc, &resample_ops, op); /* owns op from here */
}
