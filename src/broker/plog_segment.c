/*
 * plog_segment.c: segment files of a partition log and their sparse indexes.
 *
 * A segment is <dir>/<base>.log, a plain sequence of batches; <base>.idx and <base>.tix are its
 * offset and time indexes. Here are the segment object and its reference count, loading and
 * checking the indexes, rebuilding them by a scan of the segment, and the scan that finds a
 * torn tail. The indexes are a cache: anything doubtful about them is answered by rebuilding
 * from the segment, never by trusting them. Nothing here truncates or deletes a file; plog.c
 * decides that.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/plog_int.h"

#define SCAN_CHUNK ((size_t)1 << 20)

char *rv__seg_path(const char *dir, int64_t base, const char *ext) {
    size_t n = strlen(dir) + 1 + 20 + strlen(ext) + 1;
    char *p = malloc(n);
    if (p) {
        snprintf(p, n, "%s/%020" PRId64 "%s", dir, base, ext);
    }
    return p;
}

rv__seg_t *rv__seg_new(const char *dir, int64_t base) {
    rv__seg_t *s = calloc(1, sizeof *s);
    if (!s) {
        return NULL;
    }
    s->path = rv__seg_path(dir, base, ".log");
    if (!s->path) {
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    atomic_init(&s->size, 0);
    atomic_init(&s->final_size, -1);
    s->base = base;
    s->fd = -1;
    s->next_offset = -1;
    s->max_ts = INT64_MIN;
    s->last_idx_pos = -1;
    return s;
}

void rv__seg_ref(rv__seg_t *seg) {
    atomic_fetch_add_explicit(&seg->refs, 1, memory_order_relaxed);
}

void rv__seg_unref(rv__seg_t *seg) {
    if (!seg || atomic_fetch_sub_explicit(&seg->refs, 1, memory_order_acq_rel) != 1) {
        return;
    }
    if (seg->fd >= 0) {
        close(seg->fd);
    }
    free(seg->idx);
    free(seg->tix);
    free(seg->path);
    free(seg);
}

int64_t rv__seg_final_size(rv__seg_t *seg) {
    int64_t fs = atomic_load_explicit(&seg->final_size, memory_order_acquire);
    if (fs >= 0) {
        return fs;
    }
    struct stat st;
    if (fstat(seg->fd, &st) != 0) {
        return 0;
    }
    atomic_store_explicit(&seg->final_size, (int64_t)st.st_size, memory_order_release);
    return (int64_t)st.st_size;
}

rv_err_t rv__pread_full(int fd, void *buf, size_t len, int64_t pos) {
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)pos);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return RV_ERR_IO;
        }
        if (r == 0) {
            return RV_ERR_CORRUPT;
        }
        p += r;
        len -= (size_t)r;
        pos += r;
    }
    return RV_OK;
}

int rv__pwrite_full(int fd, const void *buf, size_t len, int64_t pos) {
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, (off_t)pos);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        p += w;
        len -= (size_t)w;
        pos += w;
    }
    return 0;
}

void rv__fsync_dir(rv_plog_t *log) {
    if (log->dir_fd >= 0) {
        (void)fsync(log->dir_fd);
    }
}

void rv__seg_unlink_files(rv_plog_t *log, int64_t base) {
    static const char *const exts[] = {".log", ".idx", ".tix"};
    for (size_t i = 0; i < RV_ARRAY_LEN(exts); i++) {
        char *p = rv__seg_path(log->dir, base, exts[i]);
        if (p && unlink(p) != 0 && errno != ENOENT) {
            rv__log(&log->logger, RV_LOG_WARNING, RV__SUB,
                    "partition log '%s': cannot delete %s: %s", log->name, p, strerror(errno));
        }
        free(p);
    }
}

/* ---- indexes ----------------------------------------------------------------------------- */

rv_err_t rv__seg_add_index(rv__seg_t *seg, int64_t pos, int64_t base_offset, int64_t ts_before) {
    int64_t rel = base_offset - seg->base;
    if (rel < 0 || rel > UINT32_MAX || pos > UINT32_MAX) {
        return RV_OK; /* beyond what an entry can say: the index just stays sparser */
    }
    if (seg->nidx == seg->idx_cap) {
        size_t c = seg->idx_cap ? seg->idx_cap * 2 : 64;
        rv__idx_t *a = realloc(seg->idx, c * sizeof *a);
        if (!a) {
            return RV_ERR_NOMEM;
        }
        seg->idx = a;
        seg->idx_cap = c;
    }
    if (seg->ntix == seg->tix_cap) {
        size_t c = seg->tix_cap ? seg->tix_cap * 2 : 64;
        rv__tix_t *a = realloc(seg->tix, c * sizeof *a);
        if (!a) {
            return RV_ERR_NOMEM;
        }
        seg->tix = a;
        seg->tix_cap = c;
    }
    seg->idx[seg->nidx++] = (rv__idx_t){(uint32_t)rel, (uint32_t)pos};
    seg->tix[seg->ntix++] = (rv__tix_t){ts_before, (uint32_t)rel, (uint32_t)pos};
    seg->last_idx_pos = pos;
    return RV_OK;
}

static void put_tix(uint8_t *p, const rv__tix_t *t) {
    rv__put64(p, (uint64_t)t->ts);
    rv__put32(p + 8, t->rel);
    rv__put32(p + 12, t->pos);
}

/* The end entry of a closed segment. */
static rv__tix_t end_entry(const rv__seg_t *seg) {
    int64_t next = seg->next_offset >= 0 ? seg->next_offset : seg->base;
    int64_t rel = next - seg->base;
    int64_t size = atomic_load(&seg->size);
    return (rv__tix_t){seg->max_ts, (uint32_t)(rel > UINT32_MAX ? UINT32_MAX : rel),
                       (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size)};
}

/* Writes idx entries [from, nidx) and tix entries [from_t, ntix) (+ end) at their places. */
static rv_err_t write_entries(rv_plog_t *log, rv__seg_t *seg, const char *suffix, bool trunc,
                              bool end, rv_error_t **err) {
    char ext[32];
    rv_err_t rc = RV_OK;
    size_t from = trunc ? 0 : seg->idx_flushed, from_t = trunc ? 0 : seg->tix_flushed;
    size_t n = seg->nidx - from, nt = seg->ntix - from_t + (end ? 1 : 0);
    size_t bytes = n * RV__IDX_BYTES > nt * RV__TIX_BYTES ? n * RV__IDX_BYTES : nt * RV__TIX_BYTES;
    uint8_t *buf = malloc(bytes ? bytes : 1);
    if (!buf) {
        return rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
    }
    for (int which = 0; which < 2 && rc == RV_OK; which++) {
        snprintf(ext, sizeof ext, "%s%s", which == 0 ? ".idx" : ".tix", suffix ? suffix : "");
        char *path = rv__seg_path(log->dir, seg->base, ext);
        if (!path) {
            rc = rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
            break;
        }
        size_t len;
        int64_t at;
        if (which == 0) {
            for (size_t i = 0; i < n; i++) {
                rv__put32(buf + i * RV__IDX_BYTES, seg->idx[from + i].rel);
                rv__put32(buf + i * RV__IDX_BYTES + 4, seg->idx[from + i].pos);
            }
            len = n * RV__IDX_BYTES;
            at = (int64_t)(from * RV__IDX_BYTES);
        } else {
            for (size_t i = 0; i < seg->ntix - from_t; i++) {
                put_tix(buf + i * RV__TIX_BYTES, &seg->tix[from_t + i]);
            }
            if (end) {
                rv__tix_t e = end_entry(seg);
                put_tix(buf + (nt - 1) * RV__TIX_BYTES, &e);
            }
            len = nt * RV__TIX_BYTES;
            at = (int64_t)(from_t * RV__TIX_BYTES);
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (trunc ? O_TRUNC : 0), 0644);
        int e = fd < 0 ? errno : rv__pwrite_full(fd, buf, len, at);
        if (fd >= 0) {
            close(fd);
        }
        if (e != 0) {
            rc = rv__error_set(err, RV_ERR_IO, "partition log '%s': cannot write index %s: %s",
                               log->name, path, strerror(e));
        }
        free(path);
    }
    free(buf);
    if (rc == RV_OK) {
        seg->idx_flushed = seg->nidx;
        seg->tix_flushed = seg->ntix;
    }
    return rc;
}

rv_err_t rv__seg_write_index(rv_plog_t *log, rv__seg_t *seg, bool closed, const char *suffix,
                             rv_error_t **err) {
    return write_entries(log, seg, suffix, true, closed, err);
}

rv_err_t rv__seg_flush_index(rv_plog_t *log, rv__seg_t *seg, bool closing, rv_error_t **err) {
    if (seg->idx_flushed == seg->nidx && seg->tix_flushed == seg->ntix && !closing) {
        return RV_OK;
    }
    return write_entries(log, seg, NULL, false, closing, err);
}

/* Reads a whole small file; NULL when missing or unreadable. */
static uint8_t *read_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) == 0 && st.st_size >= 0 && st.st_size < ((off_t)1 << 32)) {
        buf = malloc((size_t)st.st_size + 1);
        if (buf && rv__pread_full(fd, buf, (size_t)st.st_size, 0) != RV_OK) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)st.st_size;
    }
    close(fd);
    return buf;
}

bool rv__seg_load_index(rv_plog_t *log, rv__seg_t *seg, int64_t size, bool closed) {
    char *ipath = rv__seg_path(log->dir, seg->base, ".idx");
    char *tpath = rv__seg_path(log->dir, seg->base, ".tix");
    size_t ilen = 0, tlen = 0;
    uint8_t *ib = ipath ? read_file(ipath, &ilen) : NULL;
    uint8_t *tb = tpath ? read_file(tpath, &tlen) : NULL;
    rv__idx_t *idx = NULL;
    rv__tix_t *tix = NULL;
    bool ok = false;
    free(ipath);
    free(tpath);
    if (!ib || !tb || ilen % RV__IDX_BYTES || tlen % RV__TIX_BYTES) {
        goto out;
    }
    size_t n = ilen / RV__IDX_BYTES, nt = tlen / RV__TIX_BYTES;
    if (nt != n + (closed ? 1 : 0) || (n == 0 && size != 0) || (n > 0 && size == 0)) {
        goto out;
    }
    idx = malloc((n ? n : 1) * sizeof *idx);
    tix = malloc((nt ? nt : 1) * sizeof *tix);
    if (!idx || !tix) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        idx[i].rel = rv__le32(ib + i * RV__IDX_BYTES);
        idx[i].pos = rv__le32(ib + i * RV__IDX_BYTES + 4);
        if ((i == 0 && idx[i].pos != 0) ||
            (i > 0 && (idx[i].rel <= idx[i - 1].rel || idx[i].pos <= idx[i - 1].pos)) ||
            (int64_t)idx[i].pos >= size) {
            goto out;
        }
    }
    for (size_t i = 0; i < nt; i++) {
        const uint8_t *p = tb + i * RV__TIX_BYTES;
        tix[i] = (rv__tix_t){(int64_t)rv__le64(p), rv__le32(p + 8), rv__le32(p + 12)};
        if (i > 0 && tix[i].ts < tix[i - 1].ts) {
            goto out;
        }
        if (i < n && (tix[i].rel != idx[i].rel || tix[i].pos != idx[i].pos)) {
            goto out;
        }
    }
    if (closed) {
        const rv__tix_t *e = &tix[n];
        if ((int64_t)e->pos != size || (n > 0 && e->rel <= idx[n - 1].rel)) {
            goto out;
        }
    }
    if (n > 0) { /* the last entry must point at a batch that starts with its offset */
        uint8_t hb[RV__BATCH_HEADER];
        rv__batch_hdr_t h;
        if (rv__pread_full(seg->fd, hb, sizeof hb, idx[n - 1].pos) != RV_OK ||
            rv__batch_peek(hb, sizeof hb, &h, NULL) != RV_OK ||
            h.base_offset != seg->base + (int64_t)idx[n - 1].rel ||
            (int64_t)idx[n - 1].pos + (int64_t)h.length > size) {
            goto out;
        }
    }
    free(seg->idx);
    free(seg->tix);
    seg->idx = idx;
    seg->nidx = seg->idx_cap = seg->idx_flushed = n;
    seg->tix = tix;
    seg->ntix = seg->tix_cap = seg->tix_flushed = n;
    seg->last_idx_pos = n > 0 ? (int64_t)idx[n - 1].pos : -1;
    if (closed) {
        seg->max_ts = tix[n].ts;
        seg->next_offset = seg->base + (int64_t)tix[n].rel;
        seg->max_ts_known = true;
    }
    idx = NULL;
    tix = NULL;
    ok = true;
out:
    free(ib);
    free(tb);
    free(idx);
    free(tix);
    return ok;
}

/* ---- scanning ---------------------------------------------------------------------------- */

typedef struct scan_buf_s {
    int fd;
    uint8_t *buf;
    size_t cap;
    int64_t at;  /* file position of buf[0] */
    size_t len;  /* bytes held */
    int64_t end; /* bytes of the file to consider */
} scan_buf_t;

/* Makes [pos, pos + need) available; need <= end - pos. */
static rv_err_t scan_ensure(scan_buf_t *b, int64_t pos, size_t need, const uint8_t **p) {
    if (pos >= b->at && pos + (int64_t)need <= b->at + (int64_t)b->len) {
        *p = b->buf + (pos - b->at);
        return RV_OK;
    }
    if (need > b->cap) {
        uint8_t *nb = realloc(b->buf, need);
        if (!nb) {
            return RV_ERR_NOMEM;
        }
        b->buf = nb;
        b->cap = need;
    }
    size_t len = b->cap;
    if ((int64_t)len > b->end - pos) {
        len = (size_t)(b->end - pos);
    }
    rv_err_t rc = rv__pread_full(b->fd, b->buf, len, pos);
    if (rc != RV_OK) {
        b->len = 0;
        return rc;
    }
    b->at = pos;
    b->len = len;
    *p = b->buf;
    return RV_OK;
}

/* True when, following batch lengths from `pos`, some whole batch with a good CRC comes. */
static bool valid_batch_follows(scan_buf_t *b, int64_t pos) {
    while (b->end - pos >= (int64_t)RV__BATCH_HEADER) {
        const uint8_t *p;
        rv__batch_hdr_t h;
        if (scan_ensure(b, pos, RV__BATCH_HEADER, &p) != RV_OK ||
            rv__batch_peek(p, RV__BATCH_HEADER, &h, NULL) != RV_OK ||
            (int64_t)h.length > b->end - pos || scan_ensure(b, pos, h.length, &p) != RV_OK) {
            return false;
        }
        if (rv__batch_crc(p, h.length) == h.crc) {
            return true;
        }
        pos += h.length;
    }
    return false;
}

rv_err_t rv__seg_scan(rv_plog_t *log, rv__seg_t *seg, int64_t size, bool build_index,
                      rv__scan_t *out, rv_error_t **err) {
    scan_buf_t b = {.fd = seg->fd, .cap = SCAN_CHUNK, .at = 0, .len = 0, .end = size};
    int64_t interval = log->opts.index_interval_bytes;
    int64_t pos = 0;
    rv_err_t rc = RV_OK;
    out->valid_end = 0;
    out->tail_pos = -1;
    out->next_offset = -1;
    out->max_ts = INT64_MIN;
    out->corrupt_pos = -1;
    out->tail_reason[0] = 0;
    if (build_index) {
        seg->nidx = seg->ntix = seg->idx_flushed = seg->tix_flushed = 0;
        seg->last_idx_pos = -1;
    }
    b.buf = malloc(b.cap);
    if (!b.buf) {
        return rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
    }
    while (pos < size) {
        const uint8_t *p;
        rv__batch_hdr_t h;
        const char *why = NULL;
        if (size - pos < (int64_t)RV__BATCH_HEADER) {
            snprintf(out->tail_reason, sizeof out->tail_reason,
                     "partial batch header (%" PRId64 " of %u bytes)", size - pos,
                     RV__BATCH_HEADER);
            out->tail_pos = pos;
            break;
        }
        rc = scan_ensure(&b, pos, RV__BATCH_HEADER, &p);
        if (rc != RV_OK) {
            break;
        }
        if (rv__batch_peek(p, RV__BATCH_HEADER, &h, &why) != RV_OK) {
            snprintf(out->tail_reason, sizeof out->tail_reason, "invalid batch header: %s", why);
            out->tail_pos = pos;
            break;
        }
        if ((int64_t)h.length > size - pos) {
            snprintf(out->tail_reason, sizeof out->tail_reason,
                     "partial batch (%" PRId64 " of %u bytes)", size - pos, h.length);
            out->tail_pos = pos;
            break;
        }
        rc = scan_ensure(&b, pos, h.length, &p);
        if (rc != RV_OK) {
            break;
        }
        uint32_t crc = rv__batch_crc(p, h.length);
        bool in_order = h.base_offset >= seg->base &&
                        (out->next_offset < 0 || h.base_offset >= out->next_offset);
        if (crc != h.crc || !in_order) {
            int64_t after = pos + h.length;
            if (after == size || !valid_batch_follows(&b, after)) {
                snprintf(out->tail_reason, sizeof out->tail_reason, "%s%s",
                         crc != h.crc ? "batch fails its CRC" : "batch offsets go backwards",
                         after == size ? " (the last batch)" : " and no valid batch follows");
                out->tail_pos = pos;
                break;
            }
            if (out->corrupt_pos < 0) {
                out->corrupt_pos = pos;
            }
            rv__log(&log->logger, RV_LOG_ERROR, RV__SUB,
                    "partition log '%s': segment %s: damaged batch at byte %" PRId64
                    " (%s) with valid batches after it; it stays in place and reads stop there "
                    "with a corruption error",
                    log->name, seg->path, pos,
                    crc != h.crc ? "CRC mismatch" : "offsets go backwards");
            pos = after;
            out->valid_end = pos;
            continue;
        }
        if (build_index && (seg->nidx == 0 || pos - seg->last_idx_pos >= interval)) {
            rc = rv__seg_add_index(seg, pos, h.base_offset, out->max_ts);
            if (rc != RV_OK) {
                break;
            }
        }
        if (h.max_ts > out->max_ts) {
            out->max_ts = h.max_ts;
        }
        out->next_offset = h.base_offset + (int64_t)h.last_delta + 1;
        pos += h.length;
        out->valid_end = pos;
    }
    free(b.buf);
    if (rc != RV_OK) {
        return rv__error_set(
            err, rc, "partition log '%s': cannot read segment %s at byte %" PRId64 ": %s",
            log->name, seg->path, pos, rc == RV_ERR_IO ? strerror(errno) : rv_err_str(rc));
    }
    return RV_OK;
}
