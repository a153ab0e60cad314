/*
 * local_consumer.c: the consumer of the `local:` broker: assigned partitions, poll, seek,
 * pause and the tail wait.
 *
 * Each assigned partition has its own read-only log handle and reader, so any number of
 * processes read while one writes. Records are returned as views into the readers' buffers,
 * without copying; a partition is read at most once per poll (a second read would invalidate
 * the views of the first), what a poll cannot return (max records, fetch.max.bytes) is kept
 * and returned first by the next poll, and seeks are applied at the next poll, so records
 * stay valid until the next poll as the API promises. When every partition is at its end,
 * poll sleeps on the log's shared futex: on the one partition directly, or, with several,
 * in slices of RV_LOCAL_WAIT_SLICE_MS rotating over them. Group membership lives in
 * local_group.c. This file must never return a record of a paused or unassigned partition.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "broker/local_int.h"
#include "rivulet/clock.h"

/* The most records one poll returns, whatever `max` asks. */
#define POLL_MAX_RECORDS 65536
/* The most records one read of a partition asks for (bounds each partition's buffer). */
#define READ_MAX_RECORDS 4096

static void part_free(rv_local_part_t *part) {
    if (!part) {
        return;
    }
    rv__plog_reader_close(part->reader);
    rv__plog_close(part->log);
    if (part->owner_fd >= 0) {
        close(part->owner_fd);
    }
    free(part->pending);
    free(part->topic);
    free(part->name);
    free(part);
}

static void graveyard_clear(rv_local_consumer_t *lc) {
    for (size_t i = 0; i < lc->grave_count; i++) {
        part_free(lc->graveyard[i]);
    }
    lc->grave_count = 0;
}

rv_local_part_t *rv__local_part_find(rv_local_consumer_t *lc, const char *topic,
                                     int32_t partition) {
    for (size_t i = 0; i < lc->part_count; i++) {
        rv_local_part_t *p = lc->parts[i];
        if (p->partition == partition && strcmp(p->topic, topic) == 0) {
            return p;
        }
    }
    return NULL;
}

int64_t rv__local_part_position(const rv_local_part_t *part) {
    if (part->stopped) {
        return RV_OFFSET_INVALID;
    }
    if (part->seek_pending) {
        return part->seek_offset;
    }
    if (part->pending_pos < part->pending_len) {
        return part->pending[part->pending_pos].offset;
    }
    return rv__plog_reader_position(part->reader);
}

void rv__local_part_remove(rv_local_consumer_t *lc, size_t index) {
    rv_local_part_t *part = lc->parts[index];
    memmove(&lc->parts[index], &lc->parts[index + 1],
            (lc->part_count - index - 1) * sizeof *lc->parts);
    lc->part_count--;
    if (lc->grave_count == lc->grave_cap) {
        size_t cap = lc->grave_cap ? lc->grave_cap * 2 : 8;
        rv_local_part_t **v = realloc(lc->graveyard, cap * sizeof *v);
        if (!v) {
            part_free(part); /* no room to defer: its records of the last poll go with it */
            return;
        }
        lc->graveyard = v;
        lc->grave_cap = cap;
    }
    /* Its ownership lock is released now; its buffers live until the next poll. */
    if (part->owner_fd >= 0) {
        close(part->owner_fd);
        part->owner_fd = -1;
    }
    lc->graveyard[lc->grave_count++] = part;
}

/*
 * Where a partition starts for a logical or explicit offset: *out receives the offset, or the
 * partition is marked stopped (auto.offset.reset is error) and *out is its low watermark. An
 * offset outside the stored range, or RV_OFFSET_STORED without a committed offset (`committed`
 * < 0), follows auto.offset.reset.
 */
static void resolve_offset(rv_local_consumer_t *lc, rv_local_part_t *part, int64_t wanted,
                           int64_t committed, int64_t *out) {
    int64_t low = rv__plog_low(part->log), high = rv__plog_high(part->log);
    bool no_commit = false;
    part->stopped = part->error_due = false;
    if (wanted == RV_OFFSET_STORED) {
        wanted = committed >= 0 ? committed : RV_OFFSET_INVALID;
        no_commit = committed < 0;
    }
    if (wanted == RV_OFFSET_BEGINNING) {
        *out = low;
        return;
    }
    if (wanted == RV_OFFSET_END) {
        *out = high;
        return;
    }
    if (wanted >= low && wanted <= high) {
        *out = wanted;
        return;
    }
    if (lc->auto_reset == 0) {
        *out = low;
    } else if (lc->auto_reset == 1) {
        *out = high;
    } else {
        *out = low;
        part->stopped = part->error_due = true;
        part->no_commit = no_commit;
        part->bad_offset = wanted;
    }
}

/* The error of a partition stopped by auto.offset.reset=error, once. */
static rv_err_t due_error(rv_local_consumer_t *lc, rv_error_t **err) {
    for (size_t i = 0; i < lc->part_count; i++) {
        rv_local_part_t *part = lc->parts[i];
        if (!part->error_due) {
            continue;
        }
        part->error_due = false;
        const char *group = lc->consumer->group;
        if (part->no_commit) {
            return rv__error_set(err, RV_ERR_RANGE,
                                 "topic '%s' partition %" PRId32 ": no "
                                 "committed offset for %s%s%s and auto.offset.reset is 'error';"
                                 " seek to start it",
                                 part->topic, part->partition,
                                 group ? "group '" : "a consumer without a group",
                                 group ? group : "", group ? "'" : "");
        }
        return rv__error_set(err, RV_ERR_RANGE,
                             "topic '%s' partition %" PRId32 ": offset %" PRId64
                             " is outside the stored range %" PRId64 "..%" PRId64 " and "
                             "auto.offset.reset is 'error'; seek to restart it",
                             part->topic, part->partition, part->bad_offset,
                             rv__plog_low(part->log), rv__plog_high(part->log));
    }
    return RV_OK;
}

rv_err_t rv__local_parts_add(rv_local_consumer_t *lc, rv_topic_partition_t *tps,
                             const int *owner_fds, size_t count, rv_error_t **err) {
    rv_topic_partition_t *committed = NULL;
    rv_err_t rc = RV_OK;
    bool need_committed = false;
    for (size_t i = 0; i < count; i++) {
        need_committed |= tps[i].offset == RV_OFFSET_STORED;
    }
    if (need_committed && lc->group_dir) {
        committed = calloc(count, sizeof *committed);
        if (!committed) {
            return rv__error_set(err, RV_ERR_NOMEM, "out of memory assigning partitions");
        }
        memcpy(committed, tps, count * sizeof *tps);
        rc = rv__local_offsets_read(lc, committed, count, err);
        if (rc != RV_OK) {
            free(committed);
            return rc;
        }
    }
    if (lc->part_count + count > lc->part_cap) {
        size_t cap = lc->part_cap ? lc->part_cap : 8;
        while (cap < lc->part_count + count) {
            cap *= 2;
        }
        rv_local_part_t **v = realloc(lc->parts, cap * sizeof *v);
        if (!v) {
            free(committed);
            return rv__error_set(err, RV_ERR_NOMEM, "out of memory assigning partitions");
        }
        lc->parts = v;
        lc->part_cap = cap;
    }
    size_t first = lc->part_count;
    for (size_t i = 0; rc == RV_OK && i < count; i++) {
        if (rv__local_part_find(lc, tps[i].topic, tps[i].partition)) {
            rc = rv__error_set(err, RV_ERR_INVALID_ARG,
                               "topic '%s' partition %" PRId32 " is assigned twice", tps[i].topic,
                               tps[i].partition);
            break;
        }
        rv_local_part_t *part = calloc(1, sizeof *part);
        if (!part || !(part->topic = strdup(tps[i].topic)) ||
            !(part->name = rv__local_strf("%s/%" PRId32, tps[i].topic, tps[i].partition))) {
            if (part) {
                free(part->topic);
                free(part);
            }
            rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory assigning partitions");
            break;
        }
        part->partition = tps[i].partition;
        part->owner_fd = -1;
        part->seen_high = -1;
        rc = rv__local_open_reader_log(lc->lb, part->topic, part->partition, part->name, &part->log,
                                       err);
        int64_t start = 0;
        if (rc == RV_OK) {
            resolve_offset(lc, part, tps[i].offset,
                           committed ? committed[i].offset : RV_OFFSET_INVALID, &start);
            rc = rv__plog_reader_open(part->log, start, &part->reader, err);
        }
        if (rc != RV_OK) {
            part_free(part);
            break;
        }
        tps[i].offset = rv__local_part_position(part);
        lc->parts[lc->part_count++] = part;
    }
    if (rc != RV_OK) { /* undo this call's additions; the caller keeps its lock fds */
        while (lc->part_count > first) {
            part_free(lc->parts[--lc->part_count]);
        }
    } else if (owner_fds) {
        for (size_t i = 0; i < count; i++) {
            lc->parts[first + i]->owner_fd = owner_fds[i];
        }
    }
    free(committed);
    return rc;
}

/* ---- the ops ----------------------------------------------------------------------------- */

rv_err_t rv__local_consumer_new(rv_consumer_t *c, rv_error_t **err) {
    rv_local_consumer_t *lc = calloc(1, sizeof *lc);
    if (!lc) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory creating a consumer");
    }
    lc->consumer = c;
    lc->lb = c->broker->impl;
    lc->fetch_max_bytes = rv__conf_int(c->conf, RV_CONF_ID_FETCH_MAX_BYTES);
    lc->auto_reset = (int)rv__conf_int(c->conf, RV_CONF_ID_AUTO_OFFSET_RESET);
    lc->check_ms = rv__conf_int(c->conf, RV_CONF_ID_GROUP_CHECK_MS);
    lc->member_fd = -1;
    c->impl = lc;
    rv_err_t rc = rv__local_group_init(lc, err);
    if (rc != RV_OK) {
        free(lc->group_dir);
        free(lc);
        c->impl = NULL;
    }
    return rc;
}

void rv__local_consumer_destroy(rv_consumer_t *c) {
    rv_local_consumer_t *lc = c->impl;
    if (!lc) {
        return;
    }
    rv__local_group_leave(lc);
    while (lc->part_count > 0) {
        part_free(lc->parts[--lc->part_count]);
    }
    graveyard_clear(lc);
    free(lc->parts);
    free(lc->graveyard);
    free(lc->out);
    free(lc);
    c->impl = NULL;
}

rv_err_t rv__local_assign(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                          rv_error_t **err) {
    rv_local_consumer_t *lc = c->impl;
    if (lc->subscribed) {
        return rv__error_set(err, RV_ERR_STATE,
                             "this consumer is subscribed to topics of group "
                             "'%s'; it cannot also assign partitions by hand",
                             c->group);
    }
    rv_topic_partition_t *copy = count ? malloc(count * sizeof *copy) : NULL;
    if (count && !copy) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory assigning partitions");
    }
    if (count) {
        memcpy(copy, tps, count * sizeof *copy);
    }
    /* Replace the assignment: the old partitions stay readable until the next poll. */
    rv_local_part_t **old = lc->parts;
    size_t old_count = lc->part_count, old_cap = lc->part_cap;
    lc->parts = NULL;
    lc->part_count = lc->part_cap = 0;
    rv_err_t rc = rv__local_parts_add(lc, copy, NULL, count, err);
    free(copy);
    if (rc != RV_OK) {
        while (lc->part_count > 0) {
            part_free(lc->parts[--lc->part_count]);
        }
        free(lc->parts);
        lc->parts = old;
        lc->part_count = old_count;
        lc->part_cap = old_cap;
        return rc;
    }
    rv_local_part_t **fresh = lc->parts;
    size_t fresh_count = lc->part_count, fresh_cap = lc->part_cap;
    lc->parts = old;
    lc->part_count = old_count;
    lc->part_cap = old_cap;
    while (lc->part_count > 0) {
        rv__local_part_remove(lc, lc->part_count - 1);
    }
    free(lc->parts);
    lc->parts = fresh;
    lc->part_count = fresh_count;
    lc->part_cap = fresh_cap;
    lc->rr = 0;
    return RV_OK;
}

/* Applies a deferred seek. */
static rv_err_t apply_seek(rv_local_part_t *part, rv_error_t **err) {
    if (!part->seek_pending) {
        return RV_OK;
    }
    part->seek_pending = false;
    part->pending_len = part->pending_pos = 0;
    part->seen_high = -1;
    part->eof_sent = false;
    rv_err_t rc = rv__plog_reader_seek(part->reader, part->seek_offset, err);
    if (rc != RV_OK) {
        rv__error_prefix(err, rc, "topic '%s' partition %" PRId32 ": ", part->topic,
                         part->partition);
    }
    return rc;
}

static size_t record_bytes(const rv_record_t *r) {
    size_t n = r->key_len + r->value_len;
    for (size_t i = 0; i < r->header_count; i++) {
        n += strlen(r->headers[i].name) + r->headers[i].value_len;
    }
    return n;
}

typedef struct eof_event_s {
    const char *topic;
    int32_t partition;
    int64_t offset;
} eof_event_t;

/* Reads what is ready, round-robin over the partitions; at most one read per partition. */
static rv_err_t gather(rv_local_consumer_t *lc, size_t max, size_t *count, size_t *eof_count,
                       rv_error_t **err) {
    *count = 0;
    size_t n = 0;
    size_t parts = lc->part_count;
    eof_event_t eofs[16];
    size_t neof = 0;
    rv_err_t rc = RV_OK;
    for (size_t k = 0; k < parts && n < max && rc == RV_OK; k++) {
        rv_local_part_t *part = lc->parts[(lc->rr + k) % parts];
        if (part->paused || part->stopped) {
            continue;
        }
        if ((rc = apply_seek(part, err)) != RV_OK) {
            break;
        }
        if (part->pending_pos >= part->pending_len &&
            rv__plog_reader_position(part->reader) < rv__plog_low(part->log)) {
            /* Retention deleted records this consumer had not read yet. */
            int64_t target = 0;
            resolve_offset(lc, part, rv__plog_reader_position(part->reader), RV_OFFSET_INVALID,
                           &target);
            if (part->stopped || (rc = rv__plog_reader_seek(part->reader, target, err)) != RV_OK) {
                continue;
            }
        }
        if (part->pending_pos >= part->pending_len) {
            size_t want = max - n < READ_MAX_RECORDS ? max - n : READ_MAX_RECORDS;
            if (want > part->pending_cap) {
                rv_record_t *v = realloc(part->pending, want * sizeof *v);
                if (!v) {
                    rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory reading partition %s",
                                       part->name);
                    break;
                }
                part->pending = v;
                part->pending_cap = want;
            }
            size_t got = 0;
            part->pending_len = part->pending_pos = 0;
            int64_t high_before = rv__plog_high(part->log);
            rc = rv__plog_read(part->reader, part->pending, want, &got, err);
            if (rc != RV_OK) {
                rv__error_prefix(err, rc, "topic '%s' partition %" PRId32 ": ", part->topic,
                                 part->partition);
                break;
            }
            part->pending_len = got;
            part->seen_high = got > 0 ? -1 : high_before;
            if (got > 0) {
                part->eof_sent = false;
            }
        }
        size_t bytes = 0;
        while (part->pending_pos < part->pending_len && n < max &&
               (bytes < (size_t)lc->fetch_max_bytes || bytes == 0)) {
            rv_record_t *r = &lc->out[n++];
            *r = part->pending[part->pending_pos++];
            r->topic = part->topic;
            r->partition = part->partition;
            bytes += record_bytes(r);
        }
        if (part->pending_pos >= part->pending_len && !part->eof_sent) {
            int64_t pos = rv__plog_reader_position(part->reader);
            if (pos >= rv__plog_high(part->log) && neof < RV_ARRAY_LEN(eofs)) {
                part->eof_sent = true;
                eofs[neof++] = (eof_event_t){part->topic, part->partition, pos};
            }
        }
    }
    if (parts > 0) {
        lc->rr = (lc->rr + 1) % parts;
    }
    *count = n;
    *eof_count = neof;
    /* Callbacks last: they may seek or reassign, which only takes effect at the next poll. */
    rv_consumer_t *c = lc->consumer;
    for (size_t i = 0; i < neof && c->callbacks.on_partition_eof; i++) {
        c->callbacks.on_partition_eof(c->callbacks.opaque, c, eofs[i].topic, eofs[i].partition,
                                      eofs[i].offset);
    }
    return rc;
}

/* Sleeps until a partition may have data, `until_ms` (monotonic) passes, whichever first. */
static void wait_for_data(rv_local_consumer_t *lc, int64_t until_ms) {
    rv_local_part_t *active[64];
    size_t nactive = 0, total = 0;
    for (size_t i = 0; i < lc->part_count; i++) {
        rv_local_part_t *part = lc->parts[i];
        if (part->paused || part->stopped) {
            continue;
        }
        if (part->seek_pending || part->pending_pos < part->pending_len ||
            part->seen_high != rv__plog_high(part->log)) {
            return; /* something to read already */
        }
        total++;
        if (nactive < RV_ARRAY_LEN(active)) {
            active[nactive++] = part;
        }
    }
    int64_t ms = until_ms - rv_clock_mono_ms();
    if (ms <= 0) {
        return;
    }
    if (nactive == 0) {
        rv_clock_sleep_ms(ms < 100 ? ms : 100);
        return;
    }
    rv_local_part_t *part = active[lc->wait_rr++ % nactive];
    if (total > 1 && ms > RV_LOCAL_WAIT_SLICE_MS) {
        ms = RV_LOCAL_WAIT_SLICE_MS;
    }
    if (ms > 1000) {
        ms = 1000;
    }
    rv__plog_wait(part->log, part->seen_high, (int)ms);
}

rv_err_t rv__local_poll(rv_consumer_t *c, const rv_record_t **records, size_t max, size_t *count,
                        int timeout_ms, rv_error_t **err) {
    rv_local_consumer_t *lc = c->impl;
    *count = 0;
    if (records) {
        *records = NULL;
    }
    graveyard_clear(lc); /* the previous poll's records are no longer in use */
    if (max > POLL_MAX_RECORDS) {
        max = POLL_MAX_RECORDS;
    }
    if (max > lc->out_cap) {
        rv_record_t *v = realloc(lc->out, max * sizeof *v);
        if (!v) {
            return rv__error_set(err, RV_ERR_NOMEM, "out of memory polling");
        }
        lc->out = v;
        lc->out_cap = max;
    }
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : rv_clock_mono_ms() + timeout_ms;
    for (;;) {
        int served = 0;
        rv_err_t rc = rv__local_group_tick(lc, &served, err);
        if (rc == RV_OK) {
            rc = due_error(lc, err);
        }
        if (rc != RV_OK) {
            return rc;
        }
        size_t n = 0, neof = 0;
        if (max > 0) {
            rc = gather(lc, max, &n, &neof, err);
        }
        if (n > 0 || neof > 0 || served > 0 || rc != RV_OK) {
            *count = n;
            if (records) {
                *records = lc->out;
            }
            return rc;
        }
        int64_t now = rv_clock_mono_ms();
        if (now >= deadline) {
            return RV_OK;
        }
        int64_t until = deadline;
        int64_t due = rv__local_group_due_in(lc, now);
        if (due >= 0 && now + due < until) {
            until = now + due;
        }
        wait_for_data(lc, until);
    }
}

rv_err_t rv__local_position(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                            rv_error_t **err) {
    rv_local_consumer_t *lc = c->impl;
    for (size_t i = 0; i < count; i++) {
        rv_local_part_t *part = rv__local_part_find(lc, tps[i].topic, tps[i].partition);
        tps[i].offset = part ? rv__local_part_position(part) : RV_OFFSET_INVALID;
    }
    (void)err;
    return RV_OK;
}

rv_err_t rv__local_seek(rv_consumer_t *c, const char *topic, int32_t partition, int64_t offset,
                        rv_error_t **err) {
    rv_local_consumer_t *lc = c->impl;
    rv_local_part_t *part = rv__local_part_find(lc, topic, partition);
    if (!part) {
        return rv__error_set(err, RV_ERR_STATE,
                             "cannot seek topic '%s' partition %" PRId32
                             ": it is not assigned to this consumer",
                             topic, partition);
    }
    int64_t committed = RV_OFFSET_INVALID;
    if (offset == RV_OFFSET_STORED && lc->group_dir) {
        rv_topic_partition_t tp = {topic, partition, RV_OFFSET_INVALID};
        rv_err_t rc = rv__local_offsets_read(lc, &tp, 1, err);
        if (rc != RV_OK) {
            return rc;
        }
        committed = tp.offset;
    }
    int64_t target = 0;
    resolve_offset(lc, part, offset, committed, &target);
    part->seek_pending = true;
    part->seek_offset = target;
    return RV_OK;
}

rv_err_t rv__local_offsets_for_times(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                                     rv_error_t **err) {
    rv_local_consumer_t *lc = c->impl;
    for (size_t i = 0; i < count; i++) {
        rv_local_part_t *part = rv__local_part_find(lc, tps[i].topic, tps[i].partition);
        rv_plog_t *log = part ? part->log : NULL;
        char name[300];
        rv_err_t rc = RV_OK;
        if (!log) {
            snprintf(name, sizeof name, "%s/%" PRId32, tps[i].topic, tps[i].partition);
            rc = rv__local_open_reader_log(lc->lb, tps[i].topic, tps[i].partition, name, &log, err);
            if (rc != RV_OK) {
                return rc;
            }
        }
        int64_t offset = 0;
        rc = rv__plog_offset_for_time(log, tps[i].offset, &offset, err);
        if (rc == RV_OK) {
            tps[i].offset = offset >= rv__plog_high(log) ? RV_OFFSET_END : offset;
        } else {
            rv__error_prefix(err, rc, "topic '%s' partition %" PRId32 ": ", tps[i].topic,
                             tps[i].partition);
        }
        if (!part) {
            rv__plog_close(log);
        }
        if (rc != RV_OK) {
            return rc;
        }
    }
    return RV_OK;
}

rv_err_t rv__local_pause(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                         bool pause, rv_error_t **err) {
    rv_local_consumer_t *lc = c->impl;
    for (size_t i = 0; i < count; i++) {
        if (!rv__local_part_find(lc, tps[i].topic, tps[i].partition)) {
            return rv__error_set(err, RV_ERR_STATE,
                                 "cannot %s topic '%s' partition %" PRId32
                                 ": it is not assigned to this consumer",
                                 pause ? "pause" : "resume", tps[i].topic, tps[i].partition);
        }
    }
    for (size_t i = 0; i < count; i++) {
        rv__local_part_find(lc, tps[i].topic, tps[i].partition)->paused = pause;
    }
    return RV_OK;
}
