/*
 * plog.c: one partition's durable log: open and recovery, the writer lock, append and roll,
 * fsync policies, the shared state page (publication and futex wake-ups), and retention.
 *
 * The writer appends each batch with one pwrite() at the end of the active segment and only
 * then publishes the new high watermark, so no reader in any process ever sees a half-written
 * batch. Opening for writing is the only place that truncates a file, and it truncates only a
 * torn tail of the last segment; damage elsewhere is left in place for readers to report.
 * Readers (plog_read.c), compaction (plog_compact.c), the batch format (plog_batch.c) and the
 * segment files (plog_segment.c) live beside it. Nothing here prints; it logs through the
 * owner's logger.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "broker/plog_int.h"
#include "rivulet/clock.h"

#define DEFAULT_SEGMENT_BYTES ((int64_t)128 << 20)
#define DEFAULT_INDEX_INTERVAL 4096
#define MAX_APPEND_BATCH ((size_t)4 << 20) /* big appends are cut so readers keep small buffers */

/* ---- small helpers ------------------------------------------------------------------------- */

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *p = malloc(n);
    if (p) {
        snprintf(p, n, "%s/%s", dir, name);
    }
    return p;
}

/* mkdir -p */
static int make_dirs(const char *path) {
    char *p = strdup(path);
    if (!p) {
        return ENOMEM;
    }
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                rc = errno;
                break;
            }
            *s = c;
            if (c == 0) {
                break;
            }
        }
    }
    free(p);
    return rc;
}

static int64_t seg_birth_ms(int fd) {
#ifdef STATX_BTIME
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &stx) == 0 && (stx.stx_mask & STATX_BTIME)) {
        return (int64_t)stx.stx_btime.tv_sec * 1000 + stx.stx_btime.tv_nsec / 1000000;
    }
#endif
    (void)fd;
    return rv_clock_wall_ms();
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The base offsets of the segment files in the directory, sorted. */
static rv_err_t list_bases(rv_plog_t *log, int64_t **out, size_t *n, rv_error_t **err) {
    DIR *d = opendir(log->dir);
    if (!d) {
        return rv__error_set(err, errno == ENOENT ? RV_ERR_NOT_FOUND : RV_ERR_IO,
                             "partition log '%s': cannot list directory %s: %s", log->name,
                             log->dir, strerror(errno));
    }
    int64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *s = e->d_name;
        if (strlen(s) != 24 || strcmp(s + 20, ".log") != 0) {
            continue;
        }
        bool digits = true;
        for (int i = 0; i < 20; i++) {
            digits = digits && s[i] >= '0' && s[i] <= '9';
        }
        if (!digits) {
            continue;
        }
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                free(v);
                closedir(d);
                return rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory",
                                     log->name);
            }
            v = nv;
        }
        v[cnt++] = strtoll(s, NULL, 10);
    }
    closedir(d);
    if (cnt > 1) {
        qsort(v, cnt, sizeof *v, cmp_i64);
    }
    *out = v;
    *n = cnt;
    return RV_OK;
}

static rv_err_t push_seg(rv_plog_t *log, rv__seg_t ***arr, size_t *n, size_t *cap, rv__seg_t *s) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        rv__seg_t **a = realloc(*arr, c * sizeof *a);
        if (!a) {
            return RV_ERR_NOMEM;
        }
        *arr = a;
        *cap = c;
    }
    (*arr)[(*n)++] = s;
    (void)log;
    return RV_OK;
}

/* Opens a segment's file and fills its identity; `size` receives the file size. */
static rv_err_t seg_open_file(rv_plog_t *log, rv__seg_t *s, bool rw, bool create, int64_t *size,
                              rv_error_t **err) {
    int flags = (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0);
    s->fd = open(s->path, flags, 0644);
    struct stat st;
    if (s->fd < 0 || fstat(s->fd, &st) != 0) {
        int e = errno;
        return rv__error_set(err, e == ENOENT ? RV_ERR_NOT_FOUND : RV_ERR_IO,
                             "partition log '%s': cannot open segment %s: %s", log->name, s->path,
                             strerror(e));
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    *size = (int64_t)st.st_size;
    return RV_OK;
}

/* ---- the shared state page ---------------------------------------------------------------- */

static long futex_op(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts) {
    return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

static rv_err_t state_open(rv_plog_t *log, rv_error_t **err) {
    char *path = path_join(log->dir, "state");
    if (!path) {
        return rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
    }
    log->state_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (log->state_fd < 0 && !log->opts.writable && (errno == EACCES || errno == EROFS)) {
        free(path); /* a reader without write access follows by polling */
        return RV_OK;
    }
    struct stat st;
    if (log->state_fd < 0 || fstat(log->state_fd, &st) != 0 ||
        (st.st_size < RV__STATE_SIZE && ftruncate(log->state_fd, RV__STATE_SIZE) != 0)) {
        rv_err_t rc = rv__error_set(err, RV_ERR_IO, "partition log '%s': cannot open %s: %s",
                                    log->name, path, strerror(errno));
        free(path);
        return rc;
    }
    void *m = mmap(NULL, RV__STATE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, log->state_fd, 0);
    if (m == MAP_FAILED) {
        rv_err_t rc = rv__error_set(err, RV_ERR_IO, "partition log '%s': cannot map %s: %s",
                                    log->name, path, strerror(errno));
        free(path);
        return rc;
    }
    free(path);
    log->st = m;
    if (log->opts.writable) {
        rv__state_t *s = log->st;
        bool known = s->magic == RV__STATE_MAGIC && s->version == RV__STATE_VERSION &&
                     atomic_load(&s->valid) == 1;
        uint64_t gen = known ? atomic_load(&s->gen) + 1 : 1;
        if (!known) {
            atomic_store(&s->valid, 0);
            s->magic = RV__STATE_MAGIC;
            s->version = RV__STATE_VERSION;
        }
        uint64_t seq = atomic_load(&s->seq);
        if (seq & 1) { /* a writer died while publishing */
            atomic_store(&s->seq, seq + 1);
        }
        atomic_store(&s->writer_pid, (int64_t)getpid());
        atomic_store(&log->list_gen, gen);
    }
    return RV_OK;
}

void rv__plog_publish(rv_plog_t *log) {
    rv__state_t *s = log->st;
    rv__seg_t *a = log->segs[log->nsegs - 1];
    if (!s) {
        return;
    }
    uint64_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&s->high, log->high, memory_order_relaxed);
    atomic_store_explicit(&s->low, log->low, memory_order_relaxed);
    atomic_store_explicit(&s->active_base, a->base, memory_order_relaxed);
    atomic_store_explicit(&s->active_size, atomic_load(&a->size), memory_order_relaxed);
    atomic_store_explicit(&s->gen, atomic_load(&log->list_gen), memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
    if (atomic_load_explicit(&s->valid, memory_order_relaxed) != 1) {
        atomic_store_explicit(&s->valid, 1, memory_order_release);
    }
    atomic_fetch_add(&s->futex, 1);
    if (atomic_load(&s->waiters) > 0) {
        futex_op(&s->futex, FUTEX_WAKE, INT_MAX, NULL);
    }
}

void rv__plog_pub_read(rv_plog_t *log, rv__pub_t *p) {
    rv__state_t *s = log->st;
    if (!s || atomic_load_explicit(&s->valid, memory_order_acquire) != 1) {
        *p = log->local_pub;
        return;
    }
    bool writer_dead = false;
    for (unsigned spins = 0;; spins++) {
        uint64_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
        if ((s1 & 1) && !writer_dead && spins < 100000) {
            if (spins > 100) {
                sched_yield(); /* a writer is mid-publication (or died there) */
            }
            if (spins % 1000 == 999) {
                pid_t pid = (pid_t)atomic_load_explicit(&s->writer_pid, memory_order_relaxed);
                writer_dead = pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
            }
            continue;
        }
        p->high = atomic_load_explicit(&s->high, memory_order_relaxed);
        p->low = atomic_load_explicit(&s->low, memory_order_relaxed);
        p->active_base = atomic_load_explicit(&s->active_base, memory_order_relaxed);
        p->active_size = atomic_load_explicit(&s->active_size, memory_order_relaxed);
        p->gen = atomic_load_explicit(&s->gen, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        uint64_t s2 = atomic_load_explicit(&s->seq, memory_order_relaxed);
        if (s1 == s2 || writer_dead || spins >= 100000) {
            return;
        }
    }
}

int64_t rv__plog_low(rv_plog_t *log) {
    rv__pub_t p;
    rv__plog_pub_read(log, &p);
    return p.low;
}

int64_t rv__plog_high(rv_plog_t *log) {
    rv__pub_t p;
    rv__plog_pub_read(log, &p);
    return p.high;
}

bool rv__plog_wait(rv_plog_t *log, int64_t known_high, int timeout_ms) {
    rv__state_t *s = log->st;
    int64_t deadline = timeout_ms >= 0 ? rv_clock_mono_ns() + (int64_t)timeout_ms * 1000000 : -1;
    for (;;) {
        uint32_t word = s ? atomic_load(&s->futex) : 0;
        if (rv__plog_high(log) != known_high) {
            return true;
        }
        int64_t now = rv_clock_mono_ns();
        if (deadline >= 0 && now >= deadline) {
            return false;
        }
        /* Sleep at most 100 ms at a time, so a wake-up lost to a dead process costs little. */
        int64_t left = deadline >= 0 ? deadline - now : INT64_MAX;
        if (left > 100000000) {
            left = 100000000;
        }
        struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
        if (!s) {
            struct timespec poll = {0, 2000000};
            if (left < 2000000) {
                poll.tv_nsec = (long)left;
            }
            nanosleep(&poll, NULL);
            continue;
        }
        atomic_fetch_add(&s->waiters, 1);
        if (atomic_load(&s->futex) == word && rv__plog_high(log) == known_high) {
            futex_op(&s->futex, FUTEX_WAIT, word, &ts);
        }
        atomic_fetch_sub(&s->waiters, 1);
    }
}

/* ---- open and recovery -------------------------------------------------------------------- */

static rv_err_t open_writable(rv_plog_t *log, rv_error_t **err) {
    int e = make_dirs(log->dir);
    if (e != 0) {
        return rv__error_set(err, RV_ERR_IO, "partition log '%s': cannot create directory %s: %s",
                             log->name, log->dir, strerror(e));
    }
    log->dir_fd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char *lock_path = path_join(log->dir, "writer.lock");
    if (log->dir_fd < 0 || !lock_path) {
        free(lock_path);
        return rv__error_set(err, RV_ERR_IO, "partition log '%s': cannot open directory %s: %s",
                             log->name, log->dir, strerror(errno));
    }
    log->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (log->lock_fd < 0 || flock(log->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        e = errno;
        free(lock_path);
        if (e == EWOULDBLOCK) {
            return rv__error_set(err, RV_ERR_BUSY,
                                 "partition log '%s': directory %s is locked by another writer "
                                 "(writer.lock)",
                                 log->name, log->dir);
        }
        return rv__error_set(err, RV_ERR_IO, "partition log '%s': cannot lock %s/writer.lock: %s",
                             log->name, log->dir, strerror(e));
    }
    free(lock_path);

    rv_err_t rc = rv__compact_recover(log, err);
    if (rc != RV_OK) {
        return rc;
    }
    int64_t *bases = NULL;
    size_t nb = 0;
    rc = list_bases(log, &bases, &nb, err);
    if (rc != RV_OK) {
        return rc;
    }
    bool fresh = nb == 0;
    if (fresh) {
        bases = malloc(sizeof *bases);
        if (!bases) {
            return rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
        }
        bases[0] = 0;
        nb = 1;
    }
    for (size_t i = 0; i < nb && rc == RV_OK; i++) {
        bool last = i + 1 == nb;
        rv__seg_t *s = rv__seg_new(log->dir, bases[i]);
        if (!s || push_seg(log, &log->segs, &log->nsegs, &log->segs_cap, s) != RV_OK) {
            rv__seg_unref(s);
            rc = rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
            break;
        }
        int64_t size;
        rc = seg_open_file(log, s, last, fresh, &size, err);
        if (rc != RV_OK) {
            break;
        }
        if (!last) {
            atomic_store(&s->size, size);
            atomic_store(&s->final_size, size);
            if (rv__seg_load_index(log, s, size, true)) {
                continue;
            }
            rv__scan_t sc;
            rc = rv__seg_scan(log, s, size, true, &sc, err);
            if (rc != RV_OK) {
                break;
            }
            if (sc.tail_pos >= 0) {
                rv__log(&log->logger, RV_LOG_ERROR, RV__SUB,
                        "partition log '%s': closed segment %s is damaged from byte %" PRId64
                        " (%s); left in place, reads stop there with a corruption error",
                        log->name, s->path, sc.tail_pos, sc.tail_reason);
            }
            s->next_offset = sc.next_offset >= 0 ? sc.next_offset : s->base;
            s->max_ts = sc.max_ts;
            s->max_ts_known = true;
            rv__log(&log->logger, RV_LOG_INFO, RV__SUB,
                    "partition log '%s': rebuilt the indexes of segment %s", log->name, s->path);
            rc = rv__seg_write_index(log, s, true, NULL, err);
            continue;
        }
        /* The active segment: check every batch, cut a torn tail, rebuild its indexes. */
        rv__scan_t sc;
        rc = rv__seg_scan(log, s, size, true, &sc, err);
        if (rc != RV_OK) {
            break;
        }
        if (sc.tail_pos >= 0) {
            if (ftruncate(s->fd, sc.tail_pos) != 0) {
                rc = rv__error_set(err, RV_ERR_IO,
                                   "partition log '%s': cannot truncate the torn tail of %s at "
                                   "byte %" PRId64 ": %s",
                                   log->name, s->path, sc.tail_pos, strerror(errno));
                break;
            }
            if (log->opts.fsync != RV_FSYNC_NEVER) {
                (void)fdatasync(s->fd);
            }
            rv__log(&log->logger, RV_LOG_WARNING, RV__SUB,
                    "partition log '%s': truncated a torn tail of segment %s at byte %" PRId64
                    ": dropped %" PRId64 " bytes (%s)",
                    log->name, s->path, sc.tail_pos, size - sc.tail_pos, sc.tail_reason);
            size = sc.tail_pos;
        }
        atomic_store(&s->size, size);
        s->next_offset = sc.next_offset >= 0 ? sc.next_offset : s->base;
        s->max_ts = sc.max_ts;
        s->created_ms = seg_birth_ms(s->fd);
        rc = rv__seg_write_index(log, s, false, NULL, err);
    }
    free(bases);
    if (rc != RV_OK) {
        return rc;
    }
    rv__seg_t *active = log->segs[log->nsegs - 1];
    log->high = active->next_offset;
    log->low = log->segs[0]->base;
    if (fresh && log->opts.fsync != RV_FSYNC_NEVER) {
        rv__fsync_dir(log);
    }
    rc = state_open(log, err);
    if (rc != RV_OK) {
        return rc;
    }
    rv__plog_publish(log);
    return RV_OK;
}

/* Builds (or refreshes) a read-only log's segment list from the directory. */
static rv_err_t rescan(rv_plog_t *log, const rv__pub_t *pub, rv_error_t **err) {
    int64_t *bases = NULL;
    size_t nb = 0;
    rv_err_t rc = list_bases(log, &bases, &nb, err);
    if (rc != RV_OK) {
        return rc;
    }
    rv__seg_t **arr = NULL;
    size_t n = 0, cap = 0, j = 0;
    for (size_t i = 0; i < nb && rc == RV_OK; i++) {
        if (bases[i] < pub->low) {
            continue; /* being deleted by retention */
        }
        while (j < log->nsegs && log->segs[j]->base < bases[i]) {
            j++;
        }
        bool closed = bases[i] < pub->active_base;
        rv__seg_t *old = j < log->nsegs && log->segs[j]->base == bases[i] ? log->segs[j] : NULL;
        if (old) {
            struct stat st;
            if (stat(old->path, &st) == 0 && st.st_ino == old->ino && st.st_dev == old->dev) {
                rv__seg_ref(old);
                if (closed && !old->max_ts_known) {
                    rv__seg_load_index(log, old, rv__seg_final_size(old), true);
                }
                if (push_seg(log, &arr, &n, &cap, old) != RV_OK) {
                    rv__seg_unref(old);
                    rc = RV_ERR_NOMEM;
                }
                continue;
            }
        }
        rv__seg_t *s = rv__seg_new(log->dir, bases[i]);
        int64_t size = 0;
        if (!s) {
            rc = RV_ERR_NOMEM;
            break;
        }
        rv_error_t *e2 = NULL;
        rc = seg_open_file(log, s, false, false, &size, &e2);
        if (rc == RV_ERR_NOT_FOUND) { /* deleted while we looked */
            rv_error_destroy(e2);
            rv__seg_unref(s);
            rc = RV_OK;
            continue;
        }
        if (rc != RV_OK) {
            rv__seg_unref(s);
            if (err) {
                rv_error_destroy(*err);
                *err = e2;
            } else {
                rv_error_destroy(e2);
            }
            break;
        }
        atomic_store(&s->size, size);
        if (closed) {
            atomic_store(&s->final_size, size);
        }
        rv__seg_load_index(log, s, size, closed);
        if (push_seg(log, &arr, &n, &cap, s) != RV_OK) {
            rv__seg_unref(s);
            rc = RV_ERR_NOMEM;
        }
    }
    free(bases);
    if (rc != RV_OK) {
        for (size_t i = 0; i < n; i++) {
            rv__seg_unref(arr[i]);
        }
        free(arr);
        if (rc == RV_ERR_NOMEM) {
            return rv__error_set(err, rc, "partition log '%s': out of memory", log->name);
        }
        return rc;
    }
    for (size_t i = 0; i < log->nsegs; i++) {
        rv__seg_unref(log->segs[i]);
    }
    free(log->segs);
    log->segs = arr;
    log->nsegs = n;
    log->segs_cap = cap;
    atomic_store(&log->list_gen, pub->gen);
    return RV_OK;
}

rv_err_t rv__plog_refresh(rv_plog_t *log, const rv__pub_t *pub, rv_error_t **err) {
    if (log->opts.writable || atomic_load(&log->list_gen) == pub->gen) {
        return RV_OK;
    }
    pthread_rwlock_wrlock(&log->list_lock);
    rv_err_t rc = RV_OK;
    if (atomic_load(&log->list_gen) != pub->gen) {
        rc = rescan(log, pub, err);
    }
    pthread_rwlock_unlock(&log->list_lock);
    return rc;
}

static rv_err_t open_readonly(rv_plog_t *log, rv_error_t **err) {
    struct stat st;
    if (stat(log->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return rv__error_set(err, RV_ERR_NOT_FOUND, "partition log '%s': no log directory %s",
                             log->name, log->dir);
    }
    rv_err_t rc = state_open(log, err);
    if (rc != RV_OK) {
        return rc;
    }
    rv__pub_t pub;
    rv__plog_pub_read(log, &pub);
    if (log->st && atomic_load(&log->st->valid) == 1) {
        atomic_store(&log->list_gen, pub.gen + 1); /* anything but pub.gen: forces the scan */
        return rv__plog_refresh(log, &pub, err);
    }
    /* No writer ever published: the log is what the files say, read up to its last whole
     * batch (nothing is truncated: that is the writer's job). */
    int64_t *bases = NULL;
    size_t nb = 0;
    rc = list_bases(log, &bases, &nb, err);
    if (rc != RV_OK) {
        return rc;
    }
    int64_t first = nb ? bases[0] : 0, last = nb ? bases[nb - 1] : 0;
    free(bases);
    log->local_pub =
        (rv__pub_t){.high = last, .low = first, .active_base = last, .active_size = 0, .gen = 0};
    atomic_store(&log->list_gen, 1);
    rc = rescan(log, &log->local_pub, err);
    if (rc != RV_OK || log->nsegs == 0) {
        return rc;
    }
    rv__seg_t *a = log->segs[log->nsegs - 1];
    rv__scan_t sc;
    rc = rv__seg_scan(log, a, atomic_load(&a->size), true, &sc, err);
    if (rc != RV_OK) {
        return rc;
    }
    log->local_pub.high = sc.next_offset >= 0 ? sc.next_offset : a->base;
    log->local_pub.active_size = sc.tail_pos >= 0 ? sc.tail_pos : sc.valid_end;
    return RV_OK;
}

rv_err_t rv__plog_open(const char *dir, const rv_plog_opts_t *opts, rv_plog_t **out,
                       rv_error_t **err) {
    if (out) {
        *out = NULL;
    }
    if (!dir || !*dir || !opts || !out) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "partition log: %s is NULL",
                             !dir || !*dir ? "directory"
                             : !opts       ? "options"
                                           : "out");
    }
    if (opts->codec > RV_CODEC_ZSTD || opts->fsync > RV_FSYNC_BATCH) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "partition log '%s': unknown %s",
                             opts->name ? opts->name : dir,
                             opts->codec > RV_CODEC_ZSTD ? "codec" : "fsync policy");
    }
    rv_plog_t *log = calloc(1, sizeof *log);
    if (!log) {
        return rv__error_set(err, RV_ERR_NOMEM, "partition log: out of memory");
    }
    log->dir_fd = log->lock_fd = log->state_fd = -1;
    pthread_rwlock_init(&log->list_lock, NULL);
    pthread_mutex_init(&log->wmutex, NULL);
    pthread_mutex_init(&log->maint_mutex, NULL);
    log->dir = strdup(dir);
    log->name = strdup(opts->name ? opts->name : dir);
    if (!log->dir || !log->name) {
        rv__plog_close(log);
        return rv__error_set(err, RV_ERR_NOMEM, "partition log: out of memory");
    }
    for (size_t n = strlen(log->dir); n > 1 && log->dir[n - 1] == '/'; n--) {
        log->dir[n - 1] = 0;
    }
    log->opts = *opts;
    if (opts->log) {
        log->logger = *opts->log;
    }
    log->opts.log = &log->logger;
    log->opts.name = log->name;
    if (log->opts.segment_bytes <= 0) {
        log->opts.segment_bytes = DEFAULT_SEGMENT_BYTES;
    }
    if (log->opts.segment_bytes > (int64_t)UINT32_MAX) {
        log->opts.segment_bytes = UINT32_MAX;
    }
    if (log->opts.index_interval_bytes <= 0) {
        log->opts.index_interval_bytes = DEFAULT_INDEX_INTERVAL;
    }
    rv_err_t rc = opts->writable ? open_writable(log, err) : open_readonly(log, err);
    if (rc != RV_OK) {
        rv__plog_close(log);
        return rc;
    }
    log->opened = true;
    *out = log;
    return RV_OK;
}

void rv__plog_close(rv_plog_t *log) {
    if (!log) {
        return;
    }
    if (log->opened && log->opts.writable) {
        pthread_mutex_lock(&log->wmutex);
        rv__seg_flush_index(log, log->segs[log->nsegs - 1], false, NULL);
        pthread_mutex_unlock(&log->wmutex);
    }
    if (log->st) {
        munmap(log->st, RV__STATE_SIZE);
    }
    if (log->state_fd >= 0) {
        close(log->state_fd);
    }
    for (size_t i = 0; i < log->nsegs; i++) {
        rv__seg_unref(log->segs[i]);
    }
    free(log->segs);
    rv__batch_enc_free(&log->enc);
    if (log->dir_fd >= 0) {
        close(log->dir_fd);
    }
    if (log->lock_fd >= 0) {
        close(log->lock_fd); /* releases the writer lock */
    }
    pthread_rwlock_destroy(&log->list_lock);
    pthread_mutex_destroy(&log->wmutex);
    pthread_mutex_destroy(&log->maint_mutex);
    free(log->dir);
    free(log->name);
    free(log);
}

/* ---- append ------------------------------------------------------------------------------- */

/* Closes the active segment and starts a new one at the high watermark. Holds wmutex. */
static rv_err_t roll(rv_plog_t *log, int64_t now, rv_error_t **err) {
    rv__seg_t *old = log->segs[log->nsegs - 1];
    rv__seg_t *s = rv__seg_new(log->dir, log->high);
    if (!s) {
        return rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
    }
    int64_t size;
    rv_err_t rc = seg_open_file(log, s, true, true, &size, err);
    if (rc != RV_OK) {
        rv__seg_unref(s);
        return rc;
    }
    for (int i = 0; i < 2; i++) { /* stale indexes of an earlier life of this name */
        char *p = rv__seg_path(log->dir, s->base, i == 0 ? ".idx" : ".tix");
        if (p) {
            unlink(p);
        }
        free(p);
    }
    s->created_ms = now;
    s->next_offset = log->high;

    old->next_offset = log->high;
    old->max_ts_known = true;
    atomic_store(&old->final_size, atomic_load(&old->size));
    rv_error_t *ie = NULL;
    if (rv__seg_flush_index(log, old, true, &ie) != RV_OK) {
        rv__log(&log->logger, RV_LOG_WARNING, RV__SUB, "%s (it will be rebuilt)",
                rv_error_message(ie));
        rv_error_destroy(ie);
    }
    if (log->opts.fsync != RV_FSYNC_NEVER) {
        if (fdatasync(old->fd) != 0 && log->roll_sync_errno == 0) {
            log->roll_sync_errno = errno; /* the owner's next rv__plog_sync() says so */
            log->roll_sync_base = old->base;
        }
        rv__fsync_dir(log);
    }
    pthread_rwlock_wrlock(&log->list_lock);
    rc = push_seg(log, &log->segs, &log->nsegs, &log->segs_cap, s);
    if (rc == RV_OK) {
        atomic_fetch_add(&log->list_gen, 1);
    }
    pthread_rwlock_unlock(&log->list_lock);
    if (rc != RV_OK) {
        rv__seg_unref(s);
        return rv__error_set(err, rc, "partition log '%s': out of memory", log->name);
    }
    rv__plog_publish(log);
    rv__log(&log->logger, RV_LOG_DEBUG, RV__SUB, "partition log '%s': rolled to segment %s",
            log->name, s->path);
    return RV_OK;
}

rv_err_t rv__plog_append(rv_plog_t *log, const rv_record_t *recs, size_t n, int64_t *base_offset,
                         rv_error_t **err) {
    if (!log || (n > 0 && !recs)) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "partition log: append without %s",
                             log ? "records" : "a log");
    }
    if (!log->opts.writable) {
        return rv__error_set(err, RV_ERR_STATE, "partition log '%s': opened read-only", log->name);
    }
    const rv_plog_opts_t *o = &log->opts;
    size_t max_rec = (size_t)(o->segment_bytes > 4096 ? o->segment_bytes : 4096) - RV__BATCH_HEADER;
    if (max_rec > MAX_APPEND_BATCH) {
        max_rec = MAX_APPEND_BATCH;
    }
    rv_err_t rc = RV_OK;
    pthread_mutex_lock(&log->wmutex);
    int64_t first = log->high;
    int64_t now = rv_clock_wall_ms();
    for (size_t i = 0; i < n;) {
        size_t bound, len;
        size_t k = rv__batch_fit(recs + i, n - i, max_rec, &bound);
        rc = rv__batch_encode(&log->enc, recs + i, k, log->high, false, now, o->codec, NULL, &len);
        if (rc != RV_OK) {
            rc = rv__error_set(err, rc,
                               "partition log '%s': cannot encode records %zu to %zu "
                               "at offset %" PRId64 ": %s",
                               log->name, i, i + k - 1, log->high,
                               rc == RV_ERR_LIMIT ? "larger than a batch may be" : rv_err_str(rc));
            break;
        }
        rv__seg_t *a = log->segs[log->nsegs - 1];
        int64_t size = atomic_load_explicit(&a->size, memory_order_relaxed);
        if (size > 0 &&
            (size + (int64_t)len > o->segment_bytes || size + (int64_t)len > (int64_t)UINT32_MAX ||
             (o->segment_ms > 0 && now - a->created_ms >= o->segment_ms) ||
             log->high + (int64_t)k - a->base > (int64_t)UINT32_MAX)) {
            rc = roll(log, now, err);
            if (rc != RV_OK) {
                break;
            }
            a = log->segs[log->nsegs - 1];
            size = 0;
        }
        int e = rv__pwrite_full(a->fd, log->enc.buf, len, size);
        if (e == 0 && o->fsync == RV_FSYNC_BATCH && fdatasync(a->fd) != 0) {
            e = errno;
        }
        if (e == 0 && o->write_behind) { /* a hint: failures show in the owner's sync */
            (void)sync_file_range(a->fd, size, (off_t)len, SYNC_FILE_RANGE_WRITE);
        }
        if (e != 0) {
            (void)ftruncate(a->fd, size); /* take back a partial batch */
            rc = rv__error_set(err, RV_ERR_IO,
                               "partition log '%s': cannot write a batch of %zu "
                               "records at byte %" PRId64 " of %s: %s",
                               log->name, k, size, a->path, strerror(e));
            break;
        }
        int64_t batch_max_ts = (int64_t)rv__le64(log->enc.buf + 40);
        if (a->nidx == 0 || size - a->last_idx_pos >= o->index_interval_bytes) {
            pthread_rwlock_wrlock(&log->list_lock);
            rc = rv__seg_add_index(a, size, log->high, a->max_ts);
            pthread_rwlock_unlock(&log->list_lock);
            rc = RV_OK; /* an index entry that could not be added only makes seeks scan more */
        }
        if (batch_max_ts > a->max_ts) {
            a->max_ts = batch_max_ts;
        }
        log->high += (int64_t)k;
        a->next_offset = log->high;
        atomic_store_explicit(&a->size, size + (int64_t)len, memory_order_release);
        rv__plog_publish(log);
        i += k;
    }
    pthread_mutex_unlock(&log->wmutex);
    if (base_offset) {
        *base_offset = first;
    }
    return rc;
}

rv_err_t rv__plog_sync(rv_plog_t *log, rv_error_t **err) {
    if (!log->opts.writable) {
        return RV_OK;
    }
    pthread_mutex_lock(&log->wmutex);
    rv__seg_t *a = log->segs[log->nsegs - 1];
    rv__seg_ref(a);
    rv_error_t *ie = NULL;
    if (rv__seg_flush_index(log, a, false, &ie) != RV_OK) {
        rv__log(&log->logger, RV_LOG_WARNING, RV__SUB, "%s (it will be rebuilt)",
                rv_error_message(ie));
        rv_error_destroy(ie);
    }
    int roll_errno = log->roll_sync_errno; /* earlier segments were synced when rolled */
    int64_t roll_base = log->roll_sync_base;
    log->roll_sync_errno = 0;
    pthread_mutex_unlock(&log->wmutex);
    rv_err_t rc = RV_OK;
    if (fdatasync(a->fd) != 0) {
        rc = rv__error_set(err, RV_ERR_IO, "partition log '%s': cannot fsync %s: %s", log->name,
                           a->path, strerror(errno));
    } else if (roll_errno != 0) {
        char *path = rv__seg_path(log->dir, roll_base, ".log");
        rc = rv__error_set(err, RV_ERR_IO, "partition log '%s': cannot fsync %s: %s", log->name,
                           path ? path : "a rolled segment", strerror(roll_errno));
        free(path);
    }
    rv__seg_unref(a);
    return rc;
}

int64_t rv__plog_size(rv_plog_t *log) {
    rv__pub_t pub;
    rv__plog_pub_read(log, &pub);
    rv__plog_refresh(log, &pub, NULL);
    int64_t total = 0;
    pthread_rwlock_rdlock(&log->list_lock);
    for (size_t i = 0; i < log->nsegs; i++) {
        rv__seg_t *s = log->segs[i];
        if (s->base == pub.active_base) {
            total += pub.active_size;
        } else if (s->base < pub.active_base) {
            total += rv__seg_final_size(s);
        }
    }
    pthread_rwlock_unlock(&log->list_lock);
    return total;
}

/* ---- retention ---------------------------------------------------------------------------- */

rv_err_t rv__plog_enforce_retention(rv_plog_t *log, int64_t retention_ms, int64_t retention_bytes,
                                    int64_t now_ms, int *deleted, rv_error_t **err) {
    if (deleted) {
        *deleted = 0;
    }
    if (!log->opts.writable) {
        return rv__error_set(err, RV_ERR_STATE, "partition log '%s': retention needs the writer",
                             log->name);
    }
    pthread_mutex_lock(&log->maint_mutex);
    pthread_mutex_lock(&log->wmutex);
    int64_t total = 0;
    for (size_t i = 0; i < log->nsegs; i++) {
        total += atomic_load(&log->segs[i]->size);
    }
    size_t ndel = 0;
    int64_t cutoff =
        retention_ms >= 0 && now_ms > INT64_MIN + retention_ms ? now_ms - retention_ms : INT64_MIN;
    for (; ndel + 1 < log->nsegs; ndel++) {
        rv__seg_t *s = log->segs[ndel];
        bool by_time = retention_ms >= 0 && s->max_ts < cutoff;
        bool by_bytes = retention_bytes >= 0 && total > retention_bytes;
        if (!by_time && !by_bytes) {
            break;
        }
        rv__log(&log->logger, RV_LOG_INFO, RV__SUB,
                "partition log '%s': retention deletes segment %s (%" PRId64
                " bytes, newest record at %" PRId64 " ms): %s",
                log->name, s->path, (int64_t)atomic_load(&s->size), s->max_ts,
                by_time ? "older than retention.ms" : "beyond retention.bytes");
        total -= atomic_load(&s->size);
    }
    rv__seg_t **gone = NULL;
    if (ndel > 0) {
        gone = malloc(ndel * sizeof *gone);
        if (!gone) {
            pthread_mutex_unlock(&log->wmutex);
            pthread_mutex_unlock(&log->maint_mutex);
            return rv__error_set(err, RV_ERR_NOMEM, "partition log '%s': out of memory", log->name);
        }
        pthread_rwlock_wrlock(&log->list_lock);
        memcpy(gone, log->segs, ndel * sizeof *gone);
        memmove(log->segs, log->segs + ndel, (log->nsegs - ndel) * sizeof *log->segs);
        log->nsegs -= ndel;
        log->low = log->segs[0]->base;
        atomic_fetch_add(&log->list_gen, 1);
        pthread_rwlock_unlock(&log->list_lock);
        rv__plog_publish(log);
    }
    pthread_mutex_unlock(&log->wmutex);
    for (size_t i = 0; i < ndel; i++) {
        rv__seg_unlink_files(log, gone[i]->base);
        rv__seg_unref(gone[i]); /* readers still holding it keep their descriptor */
    }
    if (ndel > 0 && log->opts.fsync != RV_FSYNC_NEVER) {
        rv__fsync_dir(log);
    }
    free(gone);
    pthread_mutex_unlock(&log->maint_mutex);
    if (deleted) {
        *deleted = (int)ndel;
    }
    return RV_OK;
}
