/*
 * plog_compact.c: compaction of a partition log's closed segments, and its crash recovery.
 *
 * Compaction keeps the latest record of each key (records without a key stay), drops
 * tombstones older than delete_retention_ms, and keeps every surviving record's offset. It
 * writes the survivors as new segments named <base>.log.cleaned (with their indexes), syncs
 * them, commits by renaming a `compact.swap` marker into place, then renames the new files over
 * the old and deletes the replaced ones. Opening for writing finishes a committed swap and
 * deletes the leftovers of an uncommitted one, so a crash leaves the old set or the new set,
 * never a mix. It never touches the active segment, and it never silently skips damage: a
 * corrupt batch in a closed segment stops it with RV_ERR_CORRUPT.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "broker/plog_int.h"

#define MARKER "compact.swap"
#define MARKER_TMP "compact.swap.tmp"

/* ---- reading whole segments ---------------------------------------------------------------- */

typedef struct seg_iter_s {
    rv_plog_t *log;
    rv__seg_t *seg;
    int64_t size;
    int64_t pos;
    int64_t batch_pos;
    uint8_t *buf;
    size_t cap;
    uint8_t *dbuf;
    size_t dcap;
    void *zctx;
    rv__batch_hdr_t h;
    rv__rec_cursor_t cur;
} seg_iter_t;

static void iter_free(seg_iter_t *it) {
    free(it->buf);
    free(it->dbuf);
    rv__batch_dctx_free(it->zctx);
}

static bool grow_to(uint8_t **buf, size_t *cap, size_t need) {
    if (*cap >= need) {
        return true;
    }
    size_t c = need < 65536 ? 65536 : need;
    uint8_t *p = malloc(c);
    if (!p) {
        return false;
    }
    free(*buf);
    *buf = p;
    *cap = c;
    return true;
}

/* Loads the next batch (checked) into it->cur; *got false at the end of the segment. */
static rv_err_t iter_batch(seg_iter_t *it, bool *got, rv_error_t **err) {
    const char *why = "cut short";
    *got = false;
    if (it->pos >= it->size) {
        return RV_OK;
    }
    it->batch_pos = it->pos;
    if (!grow_to(&it->buf, &it->cap, RV__BATCH_HEADER)) {
        goto nomem;
    }
    if (it->size - it->pos < (int64_t)RV__BATCH_HEADER ||
        rv__pread_full(it->seg->fd, it->buf, RV__BATCH_HEADER, it->pos) != RV_OK) {
        goto bad;
    }
    if (rv__batch_peek(it->buf, RV__BATCH_HEADER, &it->h, &why) != RV_OK) {
        goto bad;
    }
    why = "runs past the end of the segment";
    if ((int64_t)it->h.length > it->size - it->pos) {
        goto bad;
    }
    if (!grow_to(&it->buf, &it->cap, it->h.length)) {
        goto nomem;
    }
    if (rv__pread_full(it->seg->fd, it->buf, it->h.length, it->pos) != RV_OK) {
        goto bad;
    }
    why = "fails its CRC";
    if (rv__batch_crc(it->buf, it->h.length) != it->h.crc) {
        goto bad;
    }
    if (it->h.codec != RV_CODEC_NONE && !grow_to(&it->dbuf, &it->dcap, it->h.records_size)) {
        goto nomem;
    }
    const uint8_t *rec;
    size_t rec_len;
    if (rv__batch_records(it->buf, &it->h, it->dbuf, it->dcap, &it->zctx, &rec, &rec_len, &why) !=
        RV_OK) {
        goto bad;
    }
    rv__rec_cursor_init(&it->cur, &it->h, rec, rec_len);
    it->pos += it->h.length;
    *got = true;
    return RV_OK;
bad:
    return rv__error_set(err, RV_ERR_CORRUPT,
                         "partition log '%s': segment %s: batch at byte %" PRId64 " %s; "
                         "compaction stopped",
                         it->log->name, it->seg->path, it->batch_pos, why);
nomem:
    return rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", it->log->name);
}

static rv_err_t iter_record(seg_iter_t *it, rv_record_t *rec, const uint8_t **hb,
                            rv_error_t **err) {
    const char *why = NULL;
    if (rv__rec_next(&it->cur, rec, hb, &why) != RV_OK) {
        return rv__error_set(err, RV_ERR_CORRUPT,
                             "partition log '%s': segment %s: batch at byte %" PRId64
                             " holds a malformed record (%s); compaction stopped",
                             it->log->name, it->seg->path, it->batch_pos, why);
    }
    return RV_OK;
}

/* ---- the key table ------------------------------------------------------------------------- */

typedef struct kent_s {
    uint64_t hash; /* 0 = empty slot */
    const void *key;
    size_t klen;
    int64_t offset;    /* the key's latest offset */
    int64_t ts;        /* and that record's timestamp */
    bool tomb;         /* whether that record is a tombstone */
    uint32_t closed_n; /* records of the key in closed segments */
} kent_t;

typedef struct ktab_s {
    kent_t *v;
    size_t cap; /* a power of two */
    size_t n;
    rv_arena_t *arena;
} ktab_t;

static uint64_t key_hash(const void *key, size_t len) {
    const uint8_t *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h ? h : 1;
}

static kent_t *ktab_find(ktab_t *t, const void *key, size_t len, uint64_t h) {
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        kent_t *e = &t->v[i];
        if (e->hash == 0 || (e->hash == h && e->klen == len && memcmp(e->key, key, len) == 0)) {
            return e;
        }
    }
}

/* The entry of `key`, inserted (offset -1) when new; NULL when memory is exhausted. */
static kent_t *ktab_get(ktab_t *t, const void *key, size_t len) {
    if ((t->n + 1) * 4 > t->cap * 3) {
        size_t nc = t->cap ? t->cap * 2 : 1024;
        kent_t *nv = calloc(nc, sizeof *nv);
        if (!nv) {
            return NULL;
        }
        kent_t *old = t->v;
        size_t oc = t->cap;
        t->v = nv;
        t->cap = nc;
        for (size_t i = 0; i < oc; i++) {
            if (old[i].hash) {
                *ktab_find(t, old[i].key, old[i].klen, old[i].hash) = old[i];
            }
        }
        free(old);
    }
    uint64_t h = key_hash(key, len);
    kent_t *e = ktab_find(t, key, len, h);
    if (e->hash == 0) {
        void *copy = rv_arena_memdup(t->arena, key, len);
        if (!copy) {
            return NULL;
        }
        *e = (kent_t){.hash = h, .key = copy, .klen = len, .offset = -1};
        t->n++;
    }
    return e;
}

static const kent_t *ktab_lookup(const ktab_t *t, const void *key, size_t len) {
    if (t->cap == 0) {
        return NULL;
    }
    const kent_t *e = ktab_find((ktab_t *)t, key, len, key_hash(key, len));
    return e->hash ? e : NULL;
}

/* ---- the swap ------------------------------------------------------------------------------ */

static bool exists(const char *path) {
    return path && access(path, F_OK) == 0;
}

/* Renames the cleaned files of `news` into place and deletes the `olds` they replace.
 * Idempotent, so recovery can run it again after a crash anywhere inside it. */
static rv_err_t apply_swap(rv_plog_t *log, const int64_t *olds, size_t nold, const int64_t *news,
                           size_t nnew, rv_error_t **err) {
    static const char *const exts[] = {".log", ".idx", ".tix"};
    rv_err_t rc = RV_OK;
    for (size_t i = 0; i < nnew && rc == RV_OK; i++) {
        for (size_t x = 0; x < RV_ARRAY_LEN(exts) && rc == RV_OK; x++) {
            char cext[24];
            snprintf(cext, sizeof cext, "%s.cleaned", exts[x]);
            char *from = rv__seg_path(log->dir, news[i], cext);
            char *to = rv__seg_path(log->dir, news[i], exts[x]);
            if (!from || !to) {
                rc = rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory",
                                   log->name);
            } else if (exists(from)) {
                if (x == 0) { /* the old indexes go first: they do not describe the new file */
                    for (size_t y = 1; y < RV_ARRAY_LEN(exts); y++) {
                        char *p = rv__seg_path(log->dir, news[i], exts[y]);
                        if (p) {
                            unlink(p);
                        }
                        free(p);
                    }
                }
                if (rename(from, to) != 0) {
                    rc = rv__error_set(err, RV_ERR_IO,
                                       "partition log '%s': cannot rename %s to %s: %s", log->name,
                                       from, to, strerror(errno));
                }
            }
            free(from);
            free(to);
        }
    }
    for (size_t i = 0; i < nold && rc == RV_OK; i++) {
        bool kept = false;
        for (size_t j = 0; j < nnew; j++) {
            kept = kept || news[j] == olds[i];
        }
        if (!kept) {
            rv__seg_unlink_files(log, olds[i]);
        }
    }
    rv__fsync_dir(log);
    return rc;
}

/* Parses the marker: "rivulet-compact 1", "old N" lines, "new N" lines, "end". */
static bool parse_marker(char *text, int64_t **olds, size_t *nold, int64_t **news, size_t *nnew) {
    size_t lines = 1;
    for (char *c = text; *c; c++) {
        lines += *c == '\n';
    }
    *olds = calloc(lines, sizeof **olds);
    *news = calloc(lines, sizeof **news);
    *nold = *nnew = 0;
    if (!*olds || !*news) {
        return false;
    }
    bool header = false, end = false;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        long long v;
        if (end) {
            return false;
        }
        if (!header) {
            header = strcmp(line, "rivulet-compact 1") == 0;
            if (!header) {
                return false;
            }
        } else if (sscanf(line, "old %lld", &v) == 1 && v >= 0) {
            (*olds)[(*nold)++] = v;
        } else if (sscanf(line, "new %lld", &v) == 1 && v >= 0) {
            (*news)[(*nnew)++] = v;
        } else if (strcmp(line, "end") == 0) {
            end = true;
        } else {
            return false;
        }
    }
    return end && *nold > 0;
}

rv_err_t rv__compact_recover(rv_plog_t *log, rv_error_t **err) {
    size_t n = strlen(log->dir) + sizeof "/" MARKER;
    char *marker = malloc(n);
    if (!marker) {
        return rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
    }
    snprintf(marker, n, "%s/%s", log->dir, MARKER);
    rv_err_t rc = RV_OK;
    int fd = open(marker, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char text[65536];
        ssize_t got = read(fd, text, sizeof text - 1);
        close(fd);
        int64_t *olds = NULL, *news = NULL;
        size_t nold = 0, nnew = 0;
        if (got > 0 && got < (ssize_t)sizeof text - 1) {
            text[got] = 0;
        } else {
            text[0] = 0;
        }
        if (parse_marker(text, &olds, &nold, &news, &nnew)) {
            rc = apply_swap(log, olds, nold, news, nnew, err);
            if (rc == RV_OK) {
                rv__log(&log->logger, RV_LOG_WARNING, RV__SUB,
                        "partition log '%s': finished an interrupted compaction (%zu segments "
                        "replaced by %zu)",
                        log->name, nold, nnew);
            }
        } else {
            rv__log(&log->logger, RV_LOG_ERROR, RV__SUB,
                    "partition log '%s': ignoring the unreadable compaction marker %s; the "
                    "segments before that compaction stay",
                    log->name, marker);
        }
        free(olds);
        free(news);
        if (rc == RV_OK) {
            unlink(marker);
            rv__fsync_dir(log);
        }
    }
    free(marker);
    if (rc != RV_OK) {
        return rc;
    }
    DIR *d = opendir(log->dir);
    if (!d) {
        return RV_OK; /* listing the segments will say what is wrong */
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        bool cleaned = len > 8 && strcmp(e->d_name + len - 8, ".cleaned") == 0;
        if (cleaned || strcmp(e->d_name, MARKER_TMP) == 0) {
            if (unlinkat(dirfd(d), e->d_name, 0) == 0) {
                rv__log(&log->logger, RV_LOG_INFO, RV__SUB,
                        "partition log '%s': deleted %s left by an unfinished compaction",
                        log->name, e->d_name);
            }
        }
    }
    closedir(d);
    return RV_OK;
}

/* ---- compaction ---------------------------------------------------------------------------- */

typedef struct outs_s {
    rv__seg_t **v;
    size_t n, cap;
} outs_t;

static rv_err_t out_open(rv_plog_t *log, outs_t *outs, int64_t base, rv_error_t **err) {
    if (outs->n == outs->cap) {
        size_t c = outs->cap ? outs->cap * 2 : 8;
        rv__seg_t **v = realloc(outs->v, c * sizeof *v);
        if (!v) {
            return rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
        }
        outs->v = v;
        outs->cap = c;
    }
    rv__seg_t *s = rv__seg_new(log->dir, base);
    char *path = rv__seg_path(log->dir, base, ".log.cleaned");
    if (!s || !path) {
        rv__seg_unref(s);
        free(path);
        return rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
    }
    s->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        rv_err_t rc = rv__error_set(err, RV_ERR_IO, "partition log '%s': cannot create %s: %s",
                                    log->name, path, strerror(errno));
        free(path);
        rv__seg_unref(s);
        return rc;
    }
    free(path);
    s->next_offset = base;
    s->max_ts_known = true;
    outs->v[outs->n++] = s;
    return RV_OK;
}

static rv_err_t out_finish(rv_plog_t *log, rv__seg_t *s, rv_error_t **err) {
    rv_err_t rc = rv__seg_write_index(log, s, true, ".cleaned", err);
    if (rc == RV_OK && fdatasync(s->fd) != 0) {
        rc = rv__error_set(err, RV_ERR_IO, "partition log '%s': cannot fsync %s.cleaned: %s",
                           log->name, s->path, strerror(errno));
    }
    atomic_store(&s->final_size, atomic_load(&s->size));
    return rc;
}

static void outs_discard(rv_plog_t *log, outs_t *outs) {
    static const char *const exts[] = {".log.cleaned", ".idx.cleaned", ".tix.cleaned"};
    for (size_t i = 0; i < outs->n; i++) {
        for (size_t x = 0; x < RV_ARRAY_LEN(exts); x++) {
            char *p = rv__seg_path(log->dir, outs->v[i]->base, exts[x]);
            if (p) {
                unlink(p);
            }
            free(p);
        }
        rv__seg_unref(outs->v[i]);
    }
    free(outs->v);
    outs->v = NULL;
    outs->n = outs->cap = 0;
}

static rv_err_t write_marker(rv_plog_t *log, rv__seg_t *const *olds, size_t nold,
                             const outs_t *outs, rv_error_t **err) {
    size_t cap = 64 + (nold + outs->n) * 32, len = 0;
    char *text = malloc(cap);
    size_t n = strlen(log->dir) + sizeof "/" MARKER_TMP;
    char *tmp = malloc(n), *fin = malloc(n);
    rv_err_t rc = RV_OK;
    if (!text || !tmp || !fin) {
        rc = rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
        goto out;
    }
    snprintf(tmp, n, "%s/%s", log->dir, MARKER_TMP);
    snprintf(fin, n, "%s/%s", log->dir, MARKER);
    len += (size_t)snprintf(text + len, cap - len, "rivulet-compact 1\n");
    for (size_t i = 0; i < nold; i++) {
        len += (size_t)snprintf(text + len, cap - len, "old %" PRId64 "\n", olds[i]->base);
    }
    for (size_t i = 0; i < outs->n; i++) {
        len += (size_t)snprintf(text + len, cap - len, "new %" PRId64 "\n", outs->v[i]->base);
    }
    len += (size_t)snprintf(text + len, cap - len, "end\n");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int e = fd < 0 ? errno : rv__pwrite_full(fd, text, len, 0);
    if (e == 0 && fdatasync(fd) != 0) {
        e = errno;
    }
    if (fd >= 0) {
        close(fd);
    }
    if (e == 0 && rename(tmp, fin) != 0) {
        e = errno;
    }
    if (e != 0) {
        unlink(tmp);
        rc = rv__error_set(err, RV_ERR_IO, "partition log '%s': cannot write %s: %s", log->name,
                           fin, strerror(e));
        goto out;
    }
    rv__fsync_dir(log);
out:
    free(text);
    free(tmp);
    free(fin);
    return rc;
}

/* Pass 1: the latest offset of every key, over the closed segments and the active one. */
static rv_err_t map_keys(rv_plog_t *log, rv__seg_t **segs, const int64_t *sizes, size_t nseg,
                         size_t nclosed, ktab_t *t, int64_t *records, rv_error_t **err) {
    rv_err_t rc = RV_OK;
    for (size_t i = 0; i < nseg && rc == RV_OK; i++) {
        seg_iter_t it = {.log = log, .seg = segs[i], .size = sizes[i]};
        bool got;
        while ((rc = iter_batch(&it, &got, err)) == RV_OK && got) {
            while (it.cur.left > 0) {
                rv_record_t r;
                const uint8_t *hb;
                if ((rc = iter_record(&it, &r, &hb, err)) != RV_OK) {
                    break;
                }
                *records += i < nclosed;
                if (!r.key) {
                    continue;
                }
                kent_t *e = ktab_get(t, r.key, r.key_len);
                if (!e) {
                    rc = rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory",
                                       log->name);
                    break;
                }
                if (r.offset > e->offset) {
                    e->offset = r.offset;
                    e->ts = r.timestamp_ms;
                    e->tomb = r.value == NULL;
                }
                e->closed_n += i < nclosed;
            }
            if (rc != RV_OK) {
                break;
            }
        }
        iter_free(&it);
    }
    return rc;
}

/* Pass 2: rewrites the closed segments' survivors into .cleaned outputs. */
static rv_err_t write_survivors(rv_plog_t *log, rv__seg_t **segs, const int64_t *sizes,
                                size_t nclosed, const ktab_t *t, int64_t cutoff, outs_t *outs,
                                int64_t *kept_total, rv_error_t **err) {
    rv__batch_enc_t enc = {0};
    rv_record_t *kept = NULL;
    rv_header_t *hdrs = NULL;
    size_t kcap = 0, hcap = 0;
    rv_err_t rc = out_open(log, outs, segs[0]->base, err);
    rv__seg_t *cur = rc == RV_OK ? outs->v[0] : NULL;
    for (size_t i = 0; i < nclosed && rc == RV_OK; i++) {
        int64_t last = segs[i]->next_offset >= 0 ? segs[i]->next_offset : segs[i]->base;
        if (cur && atomic_load(&cur->size) > 0 &&
            (atomic_load(&cur->size) + sizes[i] > log->opts.segment_bytes ||
             last - cur->base > (int64_t)UINT32_MAX)) {
            rc = out_finish(log, cur, err);
            cur = NULL;
        }
        seg_iter_t it = {.log = log, .seg = segs[i], .size = sizes[i]};
        bool got;
        while (rc == RV_OK && (rc = iter_batch(&it, &got, err)) == RV_OK && got) {
            size_t nk = 0, hused = 0;
            while (it.cur.left > 0) {
                rv_record_t r;
                const uint8_t *hb;
                if ((rc = iter_record(&it, &r, &hb, err)) != RV_OK) {
                    break;
                }
                if (r.key) {
                    const kent_t *e = ktab_lookup(t, r.key, r.key_len);
                    if (!e || e->offset != r.offset) {
                        continue; /* a later record of the key supersedes it */
                    }
                    if (!r.value && r.timestamp_ms < cutoff) {
                        continue; /* a tombstone past delete_retention_ms */
                    }
                }
                if (nk == kcap) {
                    size_t c = kcap ? kcap * 2 : 256;
                    rv_record_t *v = realloc(kept, c * sizeof *v);
                    if (!v) {
                        rc = rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory",
                                           log->name);
                        break;
                    }
                    kept = v;
                    kcap = c;
                }
                if (hused + r.header_count > hcap) {
                    size_t c = hcap ? hcap * 2 : 256;
                    while (c < hused + r.header_count) {
                        c *= 2;
                    }
                    rv_header_t *v = realloc(hdrs, c * sizeof *v);
                    if (!v) {
                        rc = rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory",
                                           log->name);
                        break;
                    }
                    hdrs = v;
                    hcap = c;
                }
                rv__rec_headers(hb, it.cur.end, hdrs + hused, r.header_count);
                hused += r.header_count;
                kept[nk++] = r;
            }
            if (rc != RV_OK || nk == 0) {
                continue;
            }
            for (size_t k = 0, hp = 0; k < nk; k++) {
                kept[k].headers = kept[k].header_count ? hdrs + hp : NULL;
                hp += kept[k].header_count;
            }
            if (!cur) {
                if ((rc = out_open(log, outs, segs[i]->base, err)) != RV_OK) {
                    break;
                }
                cur = outs->v[outs->n - 1];
            }
            rv__batch_meta_t meta = {it.h.producer_id, it.h.producer_epoch, it.h.base_sequence,
                                     it.h.attributes};
            size_t len;
            rc = rv__batch_encode(&enc, kept, nk, 0, true, 0, (rv_codec_t)it.h.codec, &meta, &len);
            if (rc != RV_OK) {
                rc = rv__error_set(err, rc, "partition log '%s': cannot re-encode a batch of %s",
                                   log->name, segs[i]->path);
                break;
            }
            int64_t size = atomic_load(&cur->size);
            int e = rv__pwrite_full(cur->fd, enc.buf, len, size);
            if (e != 0) {
                rc =
                    rv__error_set(err, RV_ERR_IO, "partition log '%s': cannot write %s.cleaned: %s",
                                  log->name, cur->path, strerror(e));
                break;
            }
            if (cur->nidx == 0 || size - cur->last_idx_pos >= log->opts.index_interval_bytes) {
                rv__seg_add_index(cur, size, kept[0].offset, cur->max_ts);
            }
            int64_t mts = (int64_t)rv__le64(enc.buf + 40);
            if (mts > cur->max_ts) {
                cur->max_ts = mts;
            }
            cur->next_offset = kept[nk - 1].offset + 1;
            atomic_store(&cur->size, size + (int64_t)len);
            *kept_total += (int64_t)nk;
        }
        iter_free(&it);
    }
    if (rc == RV_OK && cur) {
        rc = out_finish(log, cur, err);
    }
    rv__batch_enc_free(&enc);
    free(kept);
    free(hdrs);
    return rc;
}

rv_err_t rv__plog_compact(rv_plog_t *log, int64_t delete_retention_ms, int64_t now_ms,
                          rv_error_t **err) {
    if (!log->opts.writable) {
        return rv__error_set(err, RV_ERR_STATE, "partition log '%s': compaction needs the writer",
                             log->name);
    }
    pthread_mutex_lock(&log->maint_mutex);
    /* A snapshot: the closed segments and the active one up to what is written now. */
    pthread_mutex_lock(&log->wmutex);
    size_t nseg = log->nsegs, nclosed = nseg - 1;
    rv__seg_t **segs = malloc(nseg * sizeof *segs);
    int64_t *sizes = malloc(nseg * sizeof *sizes);
    if (segs && sizes) {
        for (size_t i = 0; i < nseg; i++) {
            segs[i] = log->segs[i];
            rv__seg_ref(segs[i]);
            sizes[i] = atomic_load(&segs[i]->size);
        }
    }
    int64_t active_base = log->segs[nseg - 1]->base;
    pthread_mutex_unlock(&log->wmutex);
    if (!segs || !sizes) {
        free(segs);
        free(sizes);
        pthread_mutex_unlock(&log->maint_mutex);
        return rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
    }

    ktab_t t = {.arena = rv_arena_new(0)};
    outs_t outs = {0};
    int64_t records = 0, kept = 0, droppable = 0;
    int64_t cutoff = delete_retention_ms >= 0 && now_ms > INT64_MIN + delete_retention_ms
                         ? now_ms - delete_retention_ms
                         : INT64_MIN;
    rv_err_t rc =
        t.arena ? RV_OK
                : rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
    if (rc == RV_OK && nclosed > 0) {
        rc = map_keys(log, segs, sizes, nseg, nclosed, &t, &records, err);
    }
    if (rc == RV_OK && nclosed > 0) {
        for (size_t i = 0; i < t.cap; i++) {
            const kent_t *e = &t.v[i];
            if (e->hash) {
                bool latest_closed = e->offset < active_base;
                droppable += (int64_t)e->closed_n - (latest_closed ? 1 : 0);
                droppable += latest_closed && e->tomb && e->ts < cutoff;
            }
        }
    }
    if (rc != RV_OK || nclosed == 0 || droppable == 0) {
        goto out; /* nothing to gain: leave the files alone */
    }
    rc = write_survivors(log, segs, sizes, nclosed, &t, cutoff, &outs, &kept, err);
    if (rc == RV_OK) {
        rv__fsync_dir(log);
        rc = write_marker(log, segs, nclosed, &outs, err);
    }
    if (rc != RV_OK) {
        outs_discard(log, &outs);
        goto out;
    }
    /* Committed: from here a crash is finished by the next writable open. */
    int64_t *olds = malloc(nclosed * sizeof *olds), *news = malloc(outs.n * sizeof *news);
    if (!olds || !news) {
        free(olds);
        free(news);
        rc = rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
        goto out_committed;
    }
    for (size_t i = 0; i < nclosed; i++) {
        olds[i] = segs[i]->base;
    }
    for (size_t i = 0; i < outs.n; i++) {
        news[i] = outs.v[i]->base;
    }
    rc = apply_swap(log, olds, nclosed, news, outs.n, err);
    free(olds);
    free(news);
    if (rc == RV_OK) {
        char *marker = malloc(strlen(log->dir) + sizeof "/" MARKER);
        if (marker) {
            sprintf(marker, "%s/%s", log->dir, MARKER);
            unlink(marker);
            rv__fsync_dir(log);
        }
        free(marker);
    }
out_committed:
    if (rc != RV_OK) {
        rv__log(&log->logger, RV_LOG_ERROR, RV__SUB,
                "partition log '%s': compaction committed but not applied (%s); the next "
                "writable open finishes it",
                log->name, rv_error_message(err ? *err : NULL));
        for (size_t i = 0; i < outs.n; i++) {
            rv__seg_unref(outs.v[i]);
        }
        free(outs.v);
        goto out;
    }
    /* Swap the in-memory list: the outputs replace the closed segments of the snapshot. */
    {
        int64_t before = 0, after = 0;
        for (size_t i = 0; i < nclosed; i++) {
            before += sizes[i];
        }
        for (size_t i = 0; i < outs.n; i++) {
            after += atomic_load(&outs.v[i]->size);
        }
        pthread_mutex_lock(&log->wmutex);
        pthread_rwlock_wrlock(&log->list_lock);
        size_t rest = log->nsegs - nclosed;
        size_t need = outs.n + rest;
        rv__seg_t **arr = malloc((need > log->segs_cap ? need : log->segs_cap) * sizeof *arr);
        if (arr) {
            memcpy(arr, outs.v, outs.n * sizeof *arr);
            memcpy(arr + outs.n, log->segs + nclosed, rest * sizeof *arr);
            for (size_t i = 0; i < nclosed; i++) {
                rv__seg_unref(log->segs[i]); /* the list's reference */
            }
            free(log->segs);
            log->segs = arr;
            log->segs_cap = need > log->segs_cap ? need : log->segs_cap;
            log->nsegs = need;
            log->low = log->segs[0]->base;
            atomic_fetch_add(&log->list_gen, 1);
        }
        pthread_rwlock_unlock(&log->list_lock);
        if (arr) {
            rv__plog_publish(log);
        }
        pthread_mutex_unlock(&log->wmutex);
        if (!arr) {
            /* The files are swapped; only the in-memory list is stale. Old descriptors still
             * read the old files correctly, and the next open lists the new ones. */
            for (size_t i = 0; i < outs.n; i++) {
                rv__seg_unref(outs.v[i]);
            }
        }
        free(outs.v);
        rv__log(&log->logger, RV_LOG_INFO, RV__SUB,
                "partition log '%s': compacted %zu segments into %zu: kept %" PRId64 " of %" PRId64
                " records, %" PRId64 " bytes to %" PRId64,
                log->name, nclosed, outs.n, kept, records, before, after);
    }
out:
    for (size_t i = 0; i < nseg; i++) {
        rv__seg_unref(segs[i]);
    }
    free(segs);
    free(sizes);
    free(t.v);
    rv_arena_destroy(t.arena);
    pthread_mutex_unlock(&log->maint_mutex);
    return rc;
}
