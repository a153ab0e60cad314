/*
 * plog_read.c: read cursors over a partition log, and offset lookup by timestamp.
 *
 * A reader reads segments in large chunks with pread() into one buffer it keeps, checks each
 * batch's CRC, and hands out records as views into that buffer (or into its decompression
 * buffer): nothing is allocated per record or per batch once the buffers have grown. It reads
 * only what the writer has published (the high watermark and the active segment's valid
 * length), so it never sees a half-written batch. It must never return a record of a batch
 * whose CRC fails; on damage it returns the records before it first, then RV_ERR_CORRUPT naming
 * the segment file and byte position, and stays there.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker/plog_int.h"

#define READ_CHUNK ((size_t)1 << 20)

struct rv_plog_reader_s {
    rv_plog_t *log;
    int64_t next;   /* offset of the next record to hand out */
    int64_t min_ts; /* records older are skipped (offset-for-time lookups); else INT64_MIN */
    rv__seg_t *seg; /* the segment being read (a reference), NULL = locate `next` first */
    int64_t fpos;   /* position in seg of the next batch to load */
    /* bytes [buf_at, buf_at + buf_len) of seg */
    uint8_t *buf;
    size_t cap;
    int64_t buf_at;
    size_t buf_len;
    /* the batch being handed out */
    bool in_batch;
    bool batch_in_dbuf;
    int64_t batch_pos;
    int64_t batch_end; /* one past its last offset */
    rv__rec_cursor_t cur;
    /* decompressed records sections: [0, dused) in use by this call's records */
    uint8_t *dbuf;
    size_t dcap;
    size_t dused;
    void *zdctx;
    rv_header_t *hdrs;
    size_t hcap;
};

static void drop_position(rv_plog_reader_t *r) {
    rv__seg_unref(r->seg);
    r->seg = NULL;
    r->in_batch = false;
    r->buf_len = 0;
}

/* Where to start reading `seg` for `next` (and, when set, min_ts): a batch boundary such that
 * every batch before it holds only offsets below `next` or timestamps below `min_ts`. Holds the
 * list lock (the active segment's indexes grow under it). */
static int64_t index_lookup(const rv__seg_t *s, int64_t next, int64_t min_ts) {
    int64_t pos = 0;
    if (s->nidx > 0 && next > s->base) {
        size_t lo = 0, hi = s->nidx; /* last entry with base + rel <= next */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (s->base + (int64_t)s->idx[mid].rel <= next) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (lo > 0) {
            pos = s->idx[lo - 1].pos;
        }
    }
    if (min_ts != INT64_MIN && s->ntix > 0) {
        size_t lo = 0, hi = s->ntix; /* last entry whose earlier batches are all < min_ts */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (s->tix[mid].ts < min_ts) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (lo > 0 && (int64_t)s->tix[lo - 1].pos > pos) {
            pos = s->tix[lo - 1].pos;
        }
    }
    return pos;
}

/* True when the whole closed segment can be skipped by an offset-for-time lookup. */
static bool skip_by_time(const rv_plog_reader_t *r, const rv__seg_t *s, const rv__pub_t *pub) {
    return r->min_ts != INT64_MIN && s->base < pub->active_base && s->max_ts_known &&
           s->max_ts < r->min_ts;
}

/* Finds the segment holding r->next. Leaves r->seg NULL when the log has none. */
static rv_err_t locate(rv_plog_reader_t *r, const rv__pub_t *pub, rv_error_t **err) {
    rv_plog_t *log = r->log;
    rv_err_t rc = rv__plog_refresh(log, pub, err);
    if (rc != RV_OK) {
        return rc;
    }
    drop_position(r);
    pthread_rwlock_rdlock(&log->list_lock);
    if (log->nsegs > 0) {
        size_t lo = 0, hi = log->nsegs; /* last segment with base <= next */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (log->segs[mid]->base <= r->next) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        size_t i = lo > 0 ? lo - 1 : 0;
        while (i + 1 < log->nsegs && skip_by_time(r, log->segs[i], pub)) {
            i++;
        }
        r->seg = log->segs[i];
        rv__seg_ref(r->seg);
        r->fpos = index_lookup(r->seg, r->next, r->min_ts);
    }
    pthread_rwlock_unlock(&log->list_lock);
    return RV_OK;
}

/* Moves to the segment after r->seg; false when there is none yet. */
static bool next_segment(rv_plog_reader_t *r, const rv__pub_t *pub) {
    rv_plog_t *log = r->log;
    if (rv__plog_refresh(log, pub, NULL) != RV_OK) {
        return false;
    }
    rv__seg_t *found = NULL;
    pthread_rwlock_rdlock(&log->list_lock);
    for (size_t i = 0; i < log->nsegs; i++) {
        rv__seg_t *s = log->segs[i];
        if (s->base <= r->seg->base || (i + 1 < log->nsegs && skip_by_time(r, s, pub))) {
            continue;
        }
        found = s;
        rv__seg_ref(found);
        r->fpos = index_lookup(found, r->next, r->min_ts);
        break;
    }
    pthread_rwlock_unlock(&log->list_lock);
    if (!found) {
        return false;
    }
    rv__seg_unref(r->seg);
    r->seg = found;
    r->buf_len = 0;
    return true;
}

/* Makes [pos, pos + need) of r->seg available in r->buf, reading ahead up to `limit`. */
static rv_err_t fill(rv_plog_reader_t *r, int64_t pos, size_t need, int64_t limit) {
    if (need > r->cap || !r->buf) {
        size_t c = need > READ_CHUNK ? need : READ_CHUNK;
        uint8_t *nb = malloc(c);
        if (!nb) {
            return RV_ERR_NOMEM;
        }
        free(r->buf);
        r->buf = nb;
        r->cap = c;
    }
    size_t len = r->cap;
    if ((int64_t)len > limit - pos) {
        len = (size_t)(limit - pos);
    }
    r->buf_len = 0;
    rv_err_t rc = rv__pread_full(r->seg->fd, r->buf, len, pos);
    if (rc != RV_OK) {
        return rc;
    }
    r->buf_at = pos;
    r->buf_len = len;
    return RV_OK;
}

static bool in_buf(const rv_plog_reader_t *r, int64_t pos, size_t need) {
    return r->buf_len > 0 && pos >= r->buf_at &&
           pos + (int64_t)need <= r->buf_at + (int64_t)r->buf_len;
}

static rv_err_t corrupt(rv_plog_reader_t *r, rv_error_t **err, int64_t pos, const char *what) {
    return rv__error_set(err, RV_ERR_CORRUPT,
                         "partition log '%s': segment %s: batch at byte %" PRId64 " %s",
                         r->log->name, r->seg->path, pos, what);
}

rv_err_t rv__plog_read(rv_plog_reader_t *r, rv_record_t *out, size_t max, size_t *n,
                       rv_error_t **err) {
    *n = 0;
    if (max == 0) {
        return RV_OK;
    }
    rv__pub_t pub;
    rv__plog_pub_read(r->log, &pub);
    if (r->next < pub.low) {
        r->next = pub.low;
        drop_position(r);
    }
    /* The previous call's views are dead now: keep only what is left of a decompressed batch. */
    r->dused = 0;
    if (r->in_batch && r->batch_in_dbuf) {
        size_t left = (size_t)(r->cur.end - r->cur.p);
        memmove(r->dbuf, r->cur.p, left);
        r->cur.p = r->dbuf;
        r->cur.end = r->dbuf + left;
        r->dused = left;
    }
    size_t count = 0, hused = 0;
    bool pinned = false; /* records of this call point into r->buf */
    rv_err_t rc = RV_OK;
    char why_buf[160];
    while (count < max) {
        if (r->in_batch) {
            pinned = pinned || !r->batch_in_dbuf;
            while (r->cur.left > 0 && count < max) {
                rv_record_t *o = &out[count];
                const uint8_t *hb;
                const char *why = NULL;
                if (rv__rec_next(&r->cur, o, &hb, &why) != RV_OK) {
                    r->in_batch = false;
                    r->fpos = r->batch_pos; /* stay on the damaged batch */
                    if (count == 0) {
                        snprintf(why_buf, sizeof why_buf, "holds a malformed record: %s", why);
                        rc = corrupt(r, err, r->batch_pos, why_buf);
                    }
                    goto done;
                }
                if (o->offset < r->next || o->timestamp_ms < r->min_ts) {
                    continue;
                }
                if (o->header_count > 0) {
                    if (hused + o->header_count > r->hcap) {
                        size_t c = r->hcap ? r->hcap * 2 : 256;
                        while (c < hused + o->header_count) {
                            c *= 2;
                        }
                        rv_header_t *nh = realloc(r->hdrs, c * sizeof *nh);
                        if (!nh) {
                            rc = rv__error_set(err, RV_ERR_NOMEM,
                                               "partition log '%s': out of memory", r->log->name);
                            goto done;
                        }
                        r->hdrs = nh;
                        r->hcap = c;
                    }
                    rv__rec_headers(hb, r->cur.end, r->hdrs + hused, o->header_count);
                    hused += o->header_count;
                }
                r->next = o->offset + 1;
                count++;
            }
            if (r->cur.left == 0) {
                r->in_batch = false;
                if (r->batch_end > r->next) {
                    r->next = r->batch_end;
                }
            }
            continue;
        }
        if (r->next >= pub.high) {
            break;
        }
        if (!r->seg) {
            rc = locate(r, &pub, err);
            if (rc != RV_OK || !r->seg) {
                break;
            }
        }
        rv__seg_t *s = r->seg;
        if (s->base > pub.active_base) {
            break; /* a segment the writer has not published yet */
        }
        bool active = s->base == pub.active_base;
        int64_t limit = active ? pub.active_size : rv__seg_final_size(s);
        if (r->fpos >= limit) {
            if (active || !next_segment(r, &pub)) {
                break;
            }
            continue;
        }
        if (limit - r->fpos < (int64_t)RV__BATCH_HEADER) {
            if (count == 0) {
                rc = corrupt(r, err, r->fpos, "is cut short (partial batch header)");
            }
            break;
        }
        if (!in_buf(r, r->fpos, RV__BATCH_HEADER)) {
            if (pinned) {
                break;
            }
            rc = fill(r, r->fpos, RV__BATCH_HEADER, limit);
            if (rc != RV_OK) {
                rc = count ? RV_OK : corrupt(r, err, r->fpos, "cannot be read");
                break;
            }
        }
        rv__batch_hdr_t h;
        const char *why = NULL;
        if (rv__batch_peek(r->buf + (r->fpos - r->buf_at), RV__BATCH_HEADER, &h, &why) != RV_OK) {
            if (count == 0) {
                snprintf(why_buf, sizeof why_buf, "has an invalid header: %s", why);
                rc = corrupt(r, err, r->fpos, why_buf);
            }
            break;
        }
        if ((int64_t)h.length > limit - r->fpos) {
            if (count == 0) {
                snprintf(why_buf, sizeof why_buf,
                         "runs past the end of the segment (%u bytes, %" PRId64 " left)", h.length,
                         limit - r->fpos);
                rc = corrupt(r, err, r->fpos, why_buf);
            }
            break;
        }
        int64_t batch_end = h.base_offset + (int64_t)h.last_delta + 1;
        if (batch_end <= r->next || h.max_ts < r->min_ts) {
            r->fpos += h.length; /* nothing wanted in it: skip without reading it */
            continue;
        }
        if (h.base_offset >= pub.high) {
            break;
        }
        if (!in_buf(r, r->fpos, h.length)) {
            if (pinned) {
                break;
            }
            rc = fill(r, r->fpos, h.length, limit);
            if (rc != RV_OK) {
                rc = count ? RV_OK : corrupt(r, err, r->fpos, "cannot be read");
                break;
            }
        }
        const uint8_t *bp = r->buf + (r->fpos - r->buf_at);
        uint32_t crc = rv__batch_crc(bp, h.length);
        if (crc != h.crc) {
            if (count == 0) {
                snprintf(why_buf, sizeof why_buf, "fails its CRC (stored %08x, computed %08x)",
                         h.crc, crc);
                rc = corrupt(r, err, r->fpos, why_buf);
            }
            break;
        }
        uint8_t *dst = NULL;
        size_t dcap = 0;
        if (h.codec != RV_CODEC_NONE) {
            if (r->dused + h.records_size > r->dcap) {
                if (count > 0) {
                    break; /* this call's records point into dbuf */
                }
                size_t c = r->dcap ? r->dcap : READ_CHUNK;
                while (c < h.records_size) {
                    c *= 2;
                }
                uint8_t *nd = malloc(c);
                if (!nd) {
                    rc = rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory",
                                       r->log->name);
                    break;
                }
                free(r->dbuf);
                r->dbuf = nd;
                r->dcap = c;
                r->dused = 0;
            }
            dst = r->dbuf + r->dused;
            dcap = r->dcap - r->dused;
        }
        const uint8_t *rec;
        size_t rec_len;
        rc = rv__batch_records(bp, &h, dst, dcap, &r->zdctx, &rec, &rec_len, &why);
        if (rc != RV_OK) {
            if (count == 0) {
                rc = corrupt(r, err, r->fpos, why);
            } else {
                rc = RV_OK;
            }
            break;
        }
        r->batch_in_dbuf = h.codec != RV_CODEC_NONE;
        if (r->batch_in_dbuf) {
            r->dused += h.records_size;
        }
        rv__rec_cursor_init(&r->cur, &h, rec, rec_len);
        r->in_batch = true;
        r->batch_pos = r->fpos;
        r->batch_end = batch_end;
        r->fpos += h.length;
    }
done:
    for (size_t i = 0, hp = 0; i < count; i++) {
        if (out[i].header_count > 0) {
            out[i].headers = r->hdrs + hp;
            hp += out[i].header_count;
        }
    }
    *n = count;
    return count > 0 ? RV_OK : rc;
}

rv_err_t rv__plog_reader_seek(rv_plog_reader_t *r, int64_t offset, rv_error_t **err) {
    rv__pub_t pub;
    rv__plog_pub_read(r->log, &pub);
    if (offset < pub.low) {
        offset = pub.low;
    }
    if (offset > pub.high) {
        offset = pub.high;
    }
    drop_position(r);
    r->next = offset;
    (void)err;
    return RV_OK;
}

rv_err_t rv__plog_reader_open(rv_plog_t *log, int64_t offset, rv_plog_reader_t **out,
                              rv_error_t **err) {
    *out = NULL;
    rv_plog_reader_t *r = calloc(1, sizeof *r);
    if (!r) {
        return rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
    }
    r->log = log;
    r->min_ts = INT64_MIN;
    rv__plog_reader_seek(r, offset, err);
    *out = r;
    return RV_OK;
}

static void reader_free_buffers(rv_plog_reader_t *r) {
    rv__seg_unref(r->seg);
    free(r->buf);
    free(r->dbuf);
    free(r->hdrs);
    rv__batch_dctx_free(r->zdctx);
}

void rv__plog_reader_close(rv_plog_reader_t *r) {
    if (r) {
        reader_free_buffers(r);
        free(r);
    }
}

int64_t rv__plog_reader_position(const rv_plog_reader_t *r) {
    return r->next;
}

rv_err_t rv__plog_offset_for_time(rv_plog_t *log, int64_t ts_ms, int64_t *offset,
                                  rv_error_t **err) {
    rv_plog_reader_t r = {.log = log, .min_ts = ts_ms};
    rv__pub_t pub;
    rv__plog_pub_read(log, &pub);
    r.next = pub.low;
    rv_record_t rec;
    size_t n = 0;
    rv_err_t rc = rv__plog_read(&r, &rec, 1, &n, err);
    if (rc == RV_OK) {
        *offset = n == 1 ? rec.offset : (r.next > pub.high ? r.next : pub.high);
    }
    reader_free_buffers(&r);
    return rc;
}
