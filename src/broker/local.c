/*
 * local.c: the `local:PATH` broker handle: directory layout, topic admin, the shared writable
 * partition logs and their syncs (group commit: one fsync covers every append made before it,
 * whichever producer made it, with the partition's mutex released during the fsync), and the
 * background thread (the `interval` policy's syncs, retention, compaction).
 *
 * Layout under the root: topics/<topic>/topic.conf and topics/<topic>/<partition>/ (a plog
 * directory each), groups/<group>/ (see local_group.c) and staging/, where topics are built
 * before an atomic rename into topics/ and where deleted topics are moved before removal.
 * Every file this code writes goes through a temporary file, fsync and rename, so a crash
 * leaves the old or the new version, never a torn one. The producer and consumer live in
 * local_producer.c, local_consumer.c and local_group.c. This file must never print and never
 * keep a partition's writer lock longer than its producers use it (idle writers are closed so
 * other processes can write).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "broker/local_int.h"
#include "rivulet/clock.h"

#define TOPIC_CONF "topic.conf"

/* ---- small file-system helpers ------------------------------------------------------------ */

char *rv__local_strf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

char *rv__local_unique(rv_local_t *lb) {
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
        rnd = (uint32_t)rv_clock_mono_ns() ^ (uint32_t)((uintptr_t)&rnd >> 4);
    }
    unsigned n = atomic_fetch_add(&lb->name_counter, 1u);
    return rv__local_strf("%ld-%u-%08" PRIx32, (long)getpid(), n, rnd);
}

rv_err_t rv__local_mkdirs(const char *path, rv_error_t **err) {
    char *copy = strdup(path);
    if (!copy) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory creating '%s'", path);
    }
    for (char *p = copy + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(copy, 0777) != 0 && errno != EEXIST) {
                int e = errno;
                free(copy);
                return rv__error_set(err, RV_ERR_IO, "cannot create directory '%s': %s", path,
                                     strerror(e));
            }
            *p = saved;
            if (saved == '\0') {
                break;
            }
        }
    }
    free(copy);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return rv__error_set(err, RV_ERR_IO, "'%s' exists and is not a directory", path);
    }
    return RV_OK;
}

rv_err_t rv__local_fsync_dir(const char *dir, rv_error_t **err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return rv__error_set(err, RV_ERR_IO, "cannot open directory '%s': %s", dir,
                             strerror(errno));
    }
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL) {
        return rv__error_set(err, RV_ERR_IO, "cannot fsync directory '%s': %s", dir, strerror(e));
    }
    return RV_OK;
}

static rv_err_t write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return RV_ERR_IO;
        }
        p += w;
        len -= (size_t)w;
    }
    return RV_OK;
}

rv_err_t rv__local_write_atomic(rv_local_t *lb, const char *dir, const char *name, const void *data,
                                size_t len, rv_error_t **err) {
    char *uniq = rv__local_unique(lb);
    char *tmp = uniq ? rv__local_strf("%s/.%s.tmp-%s", dir, name, uniq) : NULL;
    char *path = rv__local_strf("%s/%s", dir, name);
    rv_err_t rc = RV_OK;
    if (!tmp || !path) {
        rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory writing '%s/%s'", dir, name);
        goto out;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        rc = rv__error_set(err, RV_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (write_all(fd, data, len) != RV_OK || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        rc = rv__error_set(err, RV_ERR_IO, "cannot write '%s': %s", tmp, strerror(e));
        goto out;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        rc =
            rv__error_set(err, RV_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
        goto out;
    }
    rc = rv__local_fsync_dir(dir, err);
out:
    free(uniq);
    free(tmp);
    free(path);
    return rc;
}

rv_err_t rv__local_read_file(const char *path, char **data, size_t *len, rv_error_t **err) {
    *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            return rv__error_set(err, RV_ERR_NOT_FOUND, "'%s' does not exist", path);
        }
        return rv__error_set(err, RV_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return rv__error_set(err, RV_ERR_IO, "cannot read '%s': %s", path, strerror(e));
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    if (!buf) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory reading '%s'", path);
    }
    buf[n] = '\0';
    *data = buf;
    if (len) {
        *len = n;
    }
    return RV_OK;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Removes a directory tree; best effort (what cannot be removed stays). */
static void remove_tree(const char *path) {
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- topic.conf ----------------------------------------------------------------------------- */

/*
 * Renders a topic.conf: the partition count and the topic-scoped properties set explicitly in
 * `conf`. As in Kafka, a topic stores only its overrides; the others take the defaults of the
 * version that reads them.
 */
static rv_err_t topic_conf_render(const rv_conf_t *conf, int32_t partitions, rv_strbuf_t *out) {
    rv_err_t e = rv_strbuf_appendf(out, "# rivulet topic configuration\npartitions=%" PRId32 "\n",
                                   partitions);
    for (size_t i = 0; e == RV_OK && conf && i < rv_conf_property_count(); i++) {
        const rv_conf_property_t *p = rv_conf_property(i);
        if (strcmp(p->scope, "topic") == 0 && rv_conf_is_set(conf, p->name)) {
            e = rv_strbuf_appendf(out, "%s=%s\n", p->name, rv_conf_get(conf, p->name));
        }
    }
    return e;
}

/* Parses topic.conf text into a partition count and a configuration of its properties. */
static rv_err_t topic_conf_parse(const char *path, char *text, int32_t *partitions,
                                 rv_conf_t **conf_out, rv_error_t **err) {
    rv_conf_t *conf = rv_conf_new();
    if (!conf) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory reading '%s'", path);
    }
    long long parts = -1;
    int lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }
        char *eq = strchr(line, '=');
        if (!eq) {
            rv_conf_destroy(conf);
            return rv__error_set(err, RV_ERR_CORRUPT, "'%s' line %d: no '=' in \"%s\"", path,
                                 lineno, line);
        }
        *eq = '\0';
        const char *value = eq + 1;
        if (strcmp(line, "partitions") == 0) {
            char *end = NULL;
            errno = 0;
            parts = strtoll(value, &end, 10);
            if (errno || end == value || *end || parts < 1 || parts > RV_LOCAL_MAX_PARTITIONS) {
                rv_conf_destroy(conf);
                return rv__error_set(err, RV_ERR_CORRUPT,
                                     "'%s' line %d: bad partition count "
                                     "\"%s\"",
                                     path, lineno, value);
            }
            continue;
        }
        const rv_conf_property_t *p = rv_conf_property_find(line);
        if (!p || strcmp(p->scope, "topic") != 0) {
            continue; /* a property of a newer version, or not a topic's: ignored */
        }
        rv_error_t *e = NULL;
        if (rv_conf_set(conf, line, value, &e) != RV_OK) {
            rv_err_t code = rv__error_set(err, RV_ERR_CORRUPT, "'%s' line %d: %s", path, lineno,
                                          rv_error_message(e));
            rv_error_destroy(e);
            rv_conf_destroy(conf);
            return code;
        }
    }
    if (parts < 0) {
        rv_conf_destroy(conf);
        return rv__error_set(err, RV_ERR_CORRUPT, "'%s' has no partitions= line", path);
    }
    *partitions = (int32_t)parts;
    *conf_out = conf;
    return RV_OK;
}

/* Reads topics/<topic>/topic.conf. RV_ERR_NOT_FOUND names the topic when it does not exist. */
static rv_err_t topic_conf_load(rv_local_t *lb, const char *topic, int32_t *partitions,
                                rv_conf_t **conf, rv_error_t **err) {
    char *path = rv__local_strf("%s/%s/%s", lb->topics_dir, topic, TOPIC_CONF);
    if (!path) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory reading topic '%s'", topic);
    }
    char *text = NULL;
    rv_err_t rc = rv__local_read_file(path, &text, NULL, err);
    if (rc == RV_ERR_NOT_FOUND) {
        rc = rv__error_set(err, RV_ERR_NOT_FOUND, "topic '%s' does not exist in '%s'", topic,
                           lb->root);
    } else if (rc == RV_OK) {
        rc = topic_conf_parse(path, text, partitions, conf, err);
    }
    free(text);
    free(path);
    return rc;
}

rv_err_t rv__local_topic_partitions(rv_local_t *lb, const char *topic, int32_t *partitions,
                                    rv_error_t **err) {
    rv_conf_t *conf = NULL;
    rv_err_t rc = topic_conf_load(lb, topic, partitions, &conf, err);
    rv_conf_destroy(conf);
    return rc;
}

rv_err_t rv__local_topic_get(rv_local_t *lb, const char *topic, rv_local_topic_t **out,
                             rv_error_t **err) {
    pthread_mutex_lock(&lb->mu);
    for (rv_local_topic_t *t = lb->topics; t; t = t->next) {
        if (strcmp(t->name, topic) == 0) {
            *out = t;
            pthread_mutex_unlock(&lb->mu);
            return RV_OK;
        }
    }
    pthread_mutex_unlock(&lb->mu);

    int32_t partitions = 0;
    rv_conf_t *conf = NULL;
    rv_err_t rc = topic_conf_load(lb, topic, &partitions, &conf, err);
    if (rc != RV_OK) {
        return rc;
    }
    rv_local_topic_t *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(topic))) {
        free(t);
        rv_conf_destroy(conf);
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory opening topic '%s'", topic);
    }
    t->partitions = partitions;
    t->retention_ms = rv__conf_int(conf, RV_CONF_ID_RETENTION_MS);
    t->retention_bytes = rv__conf_int(conf, RV_CONF_ID_RETENTION_BYTES);
    t->delete_retention_ms = rv__conf_int(conf, RV_CONF_ID_DELETE_RETENTION_MS);
    t->segment_bytes = rv__conf_int(conf, RV_CONF_ID_SEGMENT_BYTES);
    t->segment_ms = rv__conf_int(conf, RV_CONF_ID_SEGMENT_MS);
    t->max_message_bytes = rv__conf_int(conf, RV_CONF_ID_MAX_MESSAGE_BYTES);
    t->cleanup = (int)rv__conf_int(conf, RV_CONF_ID_CLEANUP_POLICY);
    t->codec = (rv_codec_t)rv__conf_int(conf, RV_CONF_ID_COMPRESSION_TYPE);
    atomic_init(&t->deleted, false);
    rv_conf_destroy(conf);

    pthread_mutex_lock(&lb->mu);
    for (rv_local_topic_t *other = lb->topics; other; other = other->next) {
        if (strcmp(other->name, topic) == 0) { /* another thread loaded it meanwhile */
            pthread_mutex_unlock(&lb->mu);
            free(t->name);
            free(t);
            *out = other;
            return RV_OK;
        }
    }
    t->next = lb->topics;
    lb->topics = t;
    pthread_mutex_unlock(&lb->mu);
    *out = t;
    return RV_OK;
}

/* ---- partition logs ------------------------------------------------------------------------ */

static rv_plog_opts_t plog_opts(rv_local_t *lb, const rv_local_topic_t *t, const char *name,
                                bool writable) {
    rv_plog_opts_t o = {
        .log = &lb->broker->log,
        .name = name,
        .writable = writable,
        /* Under `batch` the broker syncs itself after each group of appends (group commit,
         * rv__local_sync_to): the log must not also sync every append, but starts writing
         * each one back at once, so the disk works while the next ones are encoded and the
         * group's fsync waits only for the last. */
        .fsync = lb->fsync == RV_FSYNC_BATCH ? RV_FSYNC_INTERVAL : lb->fsync,
        .write_behind = lb->fsync == RV_FSYNC_BATCH,
        .codec = t ? t->codec : RV_CODEC_NONE,
        .segment_bytes = t ? t->segment_bytes : INT64_C(134217728),
        .segment_ms = t ? t->segment_ms : INT64_C(604800000),
        .index_interval_bytes = 4096,
    };
    return o;
}

rv_err_t rv__local_open_reader_log(rv_local_t *lb, const char *topic, int32_t partition,
                                   const char *name, rv_plog_t **out, rv_error_t **err) {
    char *tdir = rv__local_strf("%s/%s", lb->topics_dir, topic);
    char *pdir = rv__local_strf("%s/%s/%" PRId32, lb->topics_dir, topic, partition);
    rv_err_t rc = RV_OK;
    struct stat st;
    if (!tdir || !pdir) {
        rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory opening '%s'", name);
    } else if (stat(tdir, &st) != 0) {
        rc = rv__error_set(err, RV_ERR_NOT_FOUND, "topic '%s' does not exist in '%s'", topic,
                           lb->root);
    } else if (partition < 0 || stat(pdir, &st) != 0) {
        rc = rv__error_set(err, RV_ERR_INVALID_ARG, "topic '%s' has no partition %" PRId32, topic,
                           partition);
    } else {
        rv_plog_opts_t o = plog_opts(lb, NULL, name, false);
        rc = rv__plog_open(pdir, &o, out, err);
    }
    free(tdir);
    free(pdir);
    return rc;
}

/* Records that the appends (lo, hi] were covered by a failed sync. With w->mu held. */
static void failed_add(rv_local_writer_t *w, uint64_t lo, uint64_t hi) {
    unsigned n = atomic_load(&w->nfailed);
    if (n > 0 && w->failed[n - 1].hi >= lo) { /* syncs publish in order: merge adjacent spans */
        w->failed[n - 1].hi = hi > w->failed[n - 1].hi ? hi : w->failed[n - 1].hi;
        return;
    }
    if (n == RV_LOCAL_FAILED_SPANS) {
        /* Full (many failed syncs, each after a good one): widen the newest span over this
         * one, so appends synced in between may report RV_ERR_IO too, never the reverse. */
        w->failed[n - 1].hi = hi;
        return;
    }
    w->failed[n] = (rv_local_span_t){lo, hi};
    atomic_store(&w->nfailed, n + 1);
}

/*
 * One sync of a writer: fsyncs what was appended up to now and publishes synced_seq (and the
 * span it covered as failed when the fsync failed, so those delivery reports say RV_ERR_IO).
 * With `unlocked`, w->mu is released during the fsync so appends go on (the next sync covers
 * them) and w->syncing keeps another sync from starting and the log from closing meanwhile.
 * Called with w->mu held, w->log open and no sync running; returns with w->mu held. Returns
 * whether there was anything to sync.
 */
static bool writer_sync(rv_local_t *lb, rv_local_writer_t *w, bool unlocked) {
    uint64_t done = atomic_load(&w->synced_seq);
    uint64_t target = w->append_seq; /* every append up to it has been written and published */
    if (target <= done) {
        return false;
    }
    rv_plog_t *log = w->log;
    int64_t high = rv__plog_high(log);
    rv_error_t *e = NULL;
    rv_err_t rc;
    if (unlocked) {
        w->syncing = true;
        pthread_mutex_unlock(&w->mu);
        rc = rv__plog_sync(log, &e);
        pthread_mutex_lock(&w->mu);
        w->syncing = false;
        pthread_cond_broadcast(&w->idle);
    } else {
        rc = rv__plog_sync(log, &e);
    }
    if (rc != RV_OK) {
        rv__log(&lb->broker->log, RV_LOG_ERROR, "local", "partition %s: %s", w->name,
                rv_error_message(e));
        failed_add(w, done, target);
    } else if (high > w->synced_high) {
        w->synced_high = high;
    }
    rv_error_destroy(e);
    w->syncs++;
    w->synced_appends += target - done;
    atomic_store(&w->synced_seq, target); /* after failed_add: a reader that sees it sees both */
    return true;
}

/* Syncs and closes a writer's log, after any maintenance pass or sync using it has finished.
 * Called with w->mu held (kept through the fsync: no append may slip in after it). */
static bool writer_close_locked(rv_local_t *lb, rv_local_writer_t *w) {
    while (w->maintaining || w->syncing) {
        pthread_cond_wait(&w->idle, &w->mu);
    }
    if (!w->log) {
        return false;
    }
    bool synced = writer_sync(lb, w, false);
    rv__plog_close(w->log);
    w->log = NULL;
    return synced;
}

static rv_local_writer_t *writer_find_or_add(rv_local_t *lb, rv_local_topic_t *t,
                                             int32_t partition) {
    pthread_mutex_lock(&lb->mu);
    rv_local_writer_t *w = lb->writers;
    while (w && !(w->topic == t && w->partition == partition)) {
        w = w->next;
    }
    if (!w && (w = calloc(1, sizeof *w)) != NULL) {
        w->name = rv__local_strf("%s/%" PRId32, t->name, partition);
        w->dir = rv__local_strf("%s/%s/%" PRId32, lb->topics_dir, t->name, partition);
        if (!w->name || !w->dir) {
            free(w->name);
            free(w->dir);
            free(w);
            w = NULL;
        } else {
            pthread_mutex_init(&w->mu, NULL);
            pthread_cond_init(&w->idle, NULL);
            atomic_init(&w->nfailed, 0u);
            w->topic = t;
            w->partition = partition;
            atomic_init(&w->synced_seq, 0);
            w->next = lb->writers;
            lb->writers = w;
        }
    }
    pthread_mutex_unlock(&lb->mu);
    return w;
}

/* Opens w's log (taking the partition's writer lock). With w->mu held and w->log NULL. */
static rv_err_t writer_open_locked(rv_local_t *lb, rv_local_topic_t *t, int32_t partition,
                                   rv_local_writer_t *w, rv_error_t **err) {
    rv_err_t rc = RV_OK;
    char *conf = rv__local_strf("%s/%s/%s", lb->topics_dir, t->name, TOPIC_CONF);
    char *pdir = rv__local_strf("%s/%s/%" PRId32, lb->topics_dir, t->name, partition);
    struct stat st;
    if (!conf || !pdir) {
        rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory opening partition %s", w->name);
    } else if (stat(conf, &st) != 0) {
        rc = rv__error_set(err, RV_ERR_NOT_FOUND, "topic '%s' does not exist in '%s'", t->name,
                           lb->root);
    } else {
        rv_plog_opts_t o = plog_opts(lb, t, w->name, true);
        rc = rv__plog_open(pdir, &o, &w->log, err);
        if (rc == RV_OK && stat(pdir, &st) == 0) {
            w->dir_dev = st.st_dev;
            w->dir_ino = st.st_ino;
        }
        if (rc == RV_ERR_BUSY) {
            rc = rv__error_set(err, RV_ERR_BUSY,
                               "topic '%s' partition %" PRId32 " is being "
                               "written by another process (its writer lock in '%s' is "
                               "held)",
                               t->name, partition, pdir);
        }
    }
    free(conf);
    free(pdir);
    return rc;
}

/* What writer_ensure_open() does about transactions left half applied (local_txn.c). */
enum { TXN_IGNORE, TXN_RECOVER, TXN_BUSY };

/*
 * Makes sure w's log is open, with w->mu held (it may be released and taken again meanwhile).
 * Unless `txn` is TXN_IGNORE (recovery itself), a log it opens is first checked for
 * transactions a crashed process left half applied: while one nobody holds exists it is
 * completed first (TXN_RECOVER: the caller holds no other writer) or RV_ERR_BUSY is answered
 * (TXN_BUSY: the caller may hold other writers, and recovers after releasing them); one another
 * process is completing that names this partition answers RV_ERR_BUSY. So no append ever
 * slips between a transaction's records.
 */
static rv_err_t writer_ensure_open(rv_local_t *lb, rv_local_topic_t *t, int32_t partition,
                                   rv_local_writer_t *w, int txn, rv_error_t **err) {
    for (int attempt = 0; !w->log; attempt++) {
        if (w->retired || atomic_load(&t->deleted)) {
            return rv__error_set(err, RV_ERR_NOT_FOUND, "topic '%s' was deleted", t->name);
        }
        rv_err_t rc = writer_open_locked(lb, t, partition, w, err);
        if (rc != RV_OK || txn == TXN_IGNORE) {
            return rc;
        }
        int pending = rv__local_txn_pending(lb, t->name, partition);
        if (pending == 0) {
            return RV_OK;
        }
        rv__plog_close(w->log);
        w->log = NULL;
        if (pending == 2 || attempt == 2 || txn == TXN_BUSY) {
            return rv__error_set(err, RV_ERR_BUSY,
                                 "topic '%s' partition %" PRId32 ": a transaction left half "
                                 "applied by a dead process is being completed",
                                 t->name, partition);
        }
        pthread_mutex_unlock(&w->mu);
        rv__local_txn_recover(lb, NULL);
        pthread_mutex_lock(&w->mu);
    }
    return RV_OK;
}

rv_err_t rv__local_writer_acquire(rv_local_t *lb, rv_local_topic_t *t, int32_t partition,
                                  bool check_txn, rv_local_writer_t **out, rv_error_t **err) {
    rv_local_writer_t *w = writer_find_or_add(lb, t, partition);
    if (!w) {
        return rv__error_set(err, RV_ERR_NOMEM,
                             "out of memory writing topic '%s' partition %" PRId32, t->name,
                             partition);
    }
    pthread_mutex_lock(&w->mu);
    while (w->syncing) {
        pthread_cond_wait(&w->idle, &w->mu);
    }
    rv_err_t rc = writer_ensure_open(lb, t, partition, w, check_txn ? TXN_BUSY : TXN_IGNORE, err);
    if (rc != RV_OK) {
        pthread_mutex_unlock(&w->mu);
        return rv__error_prefix(err, rc, "topic '%s' partition %" PRId32 ": ", t->name, partition);
    }
    *out = w;
    return RV_OK;
}

void rv__local_writer_release(rv_local_writer_t *w, bool appended) {
    if (appended) {
        w->append_seq++;
        w->last_used_ms = rv_clock_mono_ms();
    }
    pthread_mutex_unlock(&w->mu);
}

rv_err_t rv__local_append(rv_local_t *lb, rv_local_topic_t *t, int32_t partition,
                          const rv_record_t *recs, size_t n, int64_t *base_offset, size_t *stored,
                          rv_local_writer_t **writer, uint64_t *seq, rv_error_t **err) {
    rv_local_writer_t *w = *writer;
    *stored = 0;
    *seq = 0;
    if (!w || w->retired) {
        w = writer_find_or_add(lb, t, partition);
        if (!w) {
            return rv__error_set(err, RV_ERR_NOMEM,
                                 "out of memory writing topic '%s' "
                                 "partition %" PRId32,
                                 t->name, partition);
        }
        *writer = w;
    }
    pthread_mutex_lock(&w->mu);
    rv_err_t rc = RV_OK;
    if (w->retired || atomic_load(&t->deleted)) {
        rc = rv__error_set(err, RV_ERR_NOT_FOUND, "topic '%s' was deleted", t->name);
        goto out;
    }
    if (!w->log) {
        rc = writer_ensure_open(lb, t, partition, w, TXN_RECOVER, err);
        if (rc != RV_OK) {
            goto out;
        }
    }
    int64_t high_before = rv__plog_high(w->log);
    rc = rv__plog_append(w->log, recs, n, base_offset, err);
    /* A failed append may still have stored its first batches: the high watermark tells. */
    int64_t added = rv__plog_high(w->log) - high_before;
    *stored = rc == RV_OK ? n : added > 0 && (uint64_t)added < n ? (size_t)added : 0;
    if (rc != RV_OK) {
        *base_offset = high_before;
    }
    if (*stored > 0) {
        w->append_seq++;
        w->last_used_ms = rv_clock_mono_ms();
        *seq = lb->fsync == RV_FSYNC_NEVER ? 0 : w->append_seq;
    }
    if (rc != RV_OK) {
        rv__error_prefix(err, rc, "topic '%s' partition %" PRId32 ": ", t->name, partition);
        if (rc == RV_ERR_IO || rc == RV_ERR_CORRUPT) {
            writer_close_locked(lb, w); /* syncs what was stored; the next open recovers */
        }
    }
out:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

bool rv__local_synced(rv_local_writer_t *w, uint64_t seq, rv_err_t *err) {
    *err = RV_OK;
    if (seq == 0) {
        return true;
    }
    if (atomic_load(&w->synced_seq) < seq) {
        return false;
    }
    if (atomic_load(&w->nfailed) > 0) {
        pthread_mutex_lock(&w->mu);
        unsigned n = atomic_load(&w->nfailed);
        for (unsigned i = 0; i < n; i++) {
            if (seq > w->failed[i].lo && seq <= w->failed[i].hi) {
                *err = RV_ERR_IO;
                break;
            }
        }
        pthread_mutex_unlock(&w->mu);
    }
    return true;
}

void rv__local_sync_to(rv_local_t *lb, rv_local_writer_t *w, uint64_t seq) {
    pthread_mutex_lock(&w->mu);
    while (atomic_load(&w->synced_seq) < seq) {
        if (w->syncing) { /* its snapshot may cover `seq`: look again when it is published */
            pthread_cond_wait(&w->idle, &w->mu);
        } else if (!w->log) {
            break; /* cannot happen: closing a log syncs every append made to it */
        } else {
            writer_sync(lb, w, true);
        }
    }
    pthread_mutex_unlock(&w->mu);
}

rv_err_t rv__local_sync_stats(rv_broker_t *b, const char *topic, int32_t partition,
                              rv_local_sync_stats_t *out) {
    rv_local_t *lb = b->impl;
    rv_local_writer_t *w = NULL;
    pthread_mutex_lock(&lb->mu);
    for (w = lb->writers; w; w = w->next) {
        if (w->partition == partition && strcmp(w->topic->name, topic) == 0) {
            break;
        }
    }
    pthread_mutex_unlock(&lb->mu);
    if (!w) {
        return RV_ERR_NOT_FOUND;
    }
    pthread_mutex_lock(&w->mu);
    out->appends = w->append_seq;
    out->syncs = w->syncs;
    out->synced_appends = w->synced_appends;
    out->synced_high = w->synced_high;
    pthread_mutex_unlock(&w->mu);
    return RV_OK;
}

void rv__local_request_sync(rv_local_t *lb) {
    if (lb->fsync != RV_FSYNC_INTERVAL) {
        return;
    }
    pthread_mutex_lock(&lb->mu);
    lb->sync_requested = true;
    pthread_cond_signal(&lb->cond);
    pthread_mutex_unlock(&lb->mu);
}

/* A snapshot of the writer list (writers are freed only at close, so the pointers stay valid). */
static rv_local_writer_t **writers_snapshot(rv_local_t *lb, size_t *n) {
    pthread_mutex_lock(&lb->mu);
    size_t count = 0;
    for (rv_local_writer_t *w = lb->writers; w; w = w->next) {
        count++;
    }
    rv_local_writer_t **v = calloc(count + 1, sizeof *v);
    if (v) {
        size_t i = 0;
        for (rv_local_writer_t *w = lb->writers; w; w = w->next) {
            v[i++] = w;
        }
    }
    pthread_mutex_unlock(&lb->mu);
    *n = v ? count : 0;
    return v;
}

static void wake_producers(rv_local_t *lb) {
    pthread_mutex_lock(&lb->mu);
    for (size_t i = 0; i < lb->producer_count; i++) {
        rv__local_producer_wake(lb->producers[i]);
    }
    pthread_mutex_unlock(&lb->mu);
}

/* One group commit of the interval policy: fsyncs every partition written since its last
 * sync, with the writer's mutex released during each fsync so producers keep appending. */
static void sync_pass(rv_local_t *lb) {
    size_t n;
    rv_local_writer_t **v = writers_snapshot(lb, &n);
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        rv_local_writer_t *w = v[i];
        pthread_mutex_lock(&w->mu);
        while (w->syncing) { /* only a producer under `batch` syncs besides this thread */
            pthread_cond_wait(&w->idle, &w->mu);
        }
        if (w->log && writer_sync(lb, w, true)) {
            any = true;
        }
        pthread_mutex_unlock(&w->mu);
    }
    free(v);
    if (any) {
        wake_producers(lb);
    }
}

/* What a look at a partition directory tells about its closed segments. */
typedef struct seg_info_s {
    int segments;            /* .log files, the active one included */
    int64_t bytes;           /* of all of them */
    int64_t oldest_mtime_ms; /* last modification of the oldest closed segment */
    uint64_t sig;            /* a hash of the closed segments' names and sizes */
} seg_info_t;

/* Lists a partition's segment files without opening the log. False when it cannot. */
static bool scan_segments(const char *dir, seg_info_t *out) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) {
        return false;
    }
    typedef struct seg_s {
        long long base;
        int64_t size;
        int64_t mtime_ms;
    } seg_t;
    seg_t segs[64];
    size_t n = 0, total = 0;
    long long newest = -1;
    struct dirent *de;
    int dfd = dirfd(d);
    while ((de = readdir(d)) != NULL) {
        char *end = NULL;
        long long base = strtoll(de->d_name, &end, 10);
        struct stat st;
        if (end == de->d_name || strcmp(end, ".log") != 0 ||
            fstatat(dfd, de->d_name, &st, 0) != 0) {
            continue;
        }
        total++;
        out->bytes += st.st_size;
        newest = base > newest ? base : newest;
        seg_t s = {base, st.st_size,
                   (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000};
        if (n < RV_ARRAY_LEN(segs)) {
            segs[n++] = s;
        } else { /* keep the oldest ones: they decide retention */
            size_t hi = 0;
            for (size_t i = 1; i < n; i++) {
                hi = segs[i].base > segs[hi].base ? i : hi;
            }
            if (base < segs[hi].base) {
                segs[hi] = s;
            }
        }
    }
    closedir(d);
    out->segments = (int)total;
    uint64_t h = 1469598103934665603u ^ total;
    long long oldest = -1;
    for (size_t i = 0; i < n; i++) {
        if (segs[i].base == newest) {
            continue; /* the active segment changes all the time */
        }
        h = (h ^ (uint64_t)segs[i].base) * 1099511628211u;
        h = (h ^ (uint64_t)segs[i].size) * 1099511628211u;
        if (oldest < 0 || segs[i].base < oldest) {
            oldest = segs[i].base;
            out->oldest_mtime_ms = segs[i].mtime_ms;
        }
    }
    out->sig = h;
    return true;
}

/*
 * Retention and compaction of one partition through `log`, a writable log (the handle's
 * writer, or one opened for this pass). Retention is cheap and runs every time; compaction
 * rewrites the closed segments, so it runs only when they changed since the last one, or when
 * tombstones it kept may have expired. Runs in the background thread, which alone touches the
 * maintenance fields of `w`, with w->mu held or w->maintaining set.
 */
static void maintain(rv_local_t *lb, rv_local_writer_t *w, rv_plog_t *log) {
    const rv_local_topic_t *t = w->topic;
    int64_t now = rv_clock_wall_ms();
    rv_error_t *e = NULL;
    seg_info_t info;
    if (t->cleanup == RV_LOCAL_CLEANUP_DELETE || t->cleanup == RV_LOCAL_CLEANUP_BOTH) {
        int deleted = 0;
        if (rv__plog_enforce_retention(log, t->retention_ms, t->retention_bytes, now, &deleted,
                                       &e) != RV_OK) {
            rv__log(&lb->broker->log, RV_LOG_ERROR, "local", "retention of partition %s: %s",
                    w->name, rv_error_message(e));
        } else if (deleted > 0) {
            rv__log(&lb->broker->log, RV_LOG_INFO, "local",
                    "retention deleted %d segment(s) of partition %s", deleted, w->name);
        }
    }
    if ((t->cleanup == RV_LOCAL_CLEANUP_COMPACT || t->cleanup == RV_LOCAL_CLEANUP_BOTH) &&
        scan_segments(w->dir, &info) && info.segments > 1) {
        int64_t recheck = t->delete_retention_ms;
        if (recheck < 10 * lb->maint_interval_ms) {
            recheck = 10 * lb->maint_interval_ms;
        }
        if (info.sig != w->compact_sig || now - w->compact_wall_ms >= recheck) {
            if (rv__plog_compact(log, t->delete_retention_ms, now, &e) != RV_OK) {
                rv__log(&lb->broker->log, RV_LOG_ERROR, "local", "compaction of partition %s: %s",
                        w->name, rv_error_message(e));
            }
            if (scan_segments(w->dir, &info)) {
                w->compact_sig = info.sig;
            }
            w->compact_wall_ms = now;
        }
    }
    rv_error_destroy(e);
    w->last_maint_ms = rv_clock_mono_ms();
    w->maint_wall_ms = now;
    if (scan_segments(w->dir, &info)) {
        w->maint_sig = info.sig;
    }
}

static void retire_topic(rv_local_t *lb, const char *topic);

/* Retention and compaction where due; idle writers closed (their lock released); writers of
 * topics another process deleted retired. */
static void housekeeping_pass(rv_local_t *lb) {
    size_t n;
    rv_local_writer_t **v = writers_snapshot(lb, &n);
    bool synced = false;
    char *gone = NULL;
    for (size_t i = 0; i < n; i++) {
        rv_local_writer_t *w = v[i];
        pthread_mutex_lock(&w->mu);
        int64_t now = rv_clock_mono_ms();
        struct stat st;
        if (w->log && !gone &&
            (stat(w->dir, &st) != 0 || st.st_ino != w->dir_ino || st.st_dev != w->dir_dev)) {
            /* Deleted (and maybe created again) by another process: stop writing into it. */
            gone = strdup(w->topic->name);
            pthread_mutex_unlock(&w->mu);
            continue;
        }
        if (w->log && (w->last_maint_ms == 0 || now - w->last_maint_ms >= lb->maint_interval_ms)) {
            /* Compaction may take long: producers keep appending meanwhile (the log
             * serialises what must be), and closing waits until the pass ends. */
            w->maintaining = true;
            pthread_mutex_unlock(&w->mu);
            maintain(lb, w, w->log);
            pthread_mutex_lock(&w->mu);
            w->maintaining = false;
            pthread_cond_broadcast(&w->idle);
            now = rv_clock_mono_ms();
        }
        if (w->log && now - w->last_used_ms >= RV_LOCAL_WRITER_IDLE_MS) {
            synced |= writer_close_locked(lb, w);
        }
        pthread_mutex_unlock(&w->mu);
    }
    free(v);
    if (synced) {
        wake_producers(lb);
    }
    if (gone) {
        rv__log(&lb->broker->log, RV_LOG_NOTICE, "local",
                "topic '%s' was deleted by another "
                "process; its writers in this process are closed",
                gone);
        retire_topic(lb, gone);
        free(gone);
    }
}

static rv_err_t list_topic_names(rv_local_t *lb, char ***names, size_t *count, rv_error_t **err);

/*
 * Partitions nobody writes still need retention and compaction: once per maintenance interval
 * this looks at every partition's segment files, and when one without a writer has closed
 * segments that changed since its last pass (or that retention.ms expired since), takes its
 * writer lock for the pass. A partition another process writes is left to that process.
 */
static void writerless_pass(rv_local_t *lb) {
    char **names = NULL;
    if (list_topic_names(lb, &names, NULL, NULL) != RV_OK) {
        return;
    }
    for (char **name = names; *name && !lb->stopping; name++) {
        rv_local_topic_t *t = NULL;
        if (rv__local_topic_get(lb, *name, &t, NULL) != RV_OK) {
            continue;
        }
        bool del = t->cleanup == RV_LOCAL_CLEANUP_DELETE || t->cleanup == RV_LOCAL_CLEANUP_BOTH;
        bool compact = t->cleanup != RV_LOCAL_CLEANUP_DELETE;
        if (!compact && t->retention_ms < 0 && t->retention_bytes < 0) {
            continue;
        }
        for (int32_t p = 0; p < t->partitions; p++) {
            rv_local_writer_t *w = writer_find_or_add(lb, t, p);
            seg_info_t info;
            if (!w || !scan_segments(w->dir, &info) || info.segments < 2) {
                continue;
            }
            pthread_mutex_lock(&w->mu);
            int64_t now = rv_clock_wall_ms();
            bool expired = del && t->retention_ms >= 0 &&
                           info.oldest_mtime_ms + t->retention_ms <= now &&
                           w->maint_wall_ms < info.oldest_mtime_ms + t->retention_ms;
            int64_t recheck = t->delete_retention_ms;
            if (recheck < 10 * lb->maint_interval_ms) {
                recheck = 10 * lb->maint_interval_ms;
            }
            bool tombstones =
                compact && w->compact_wall_ms > 0 && now - w->compact_wall_ms >= recheck;
            bool due = info.sig != w->maint_sig || expired || tombstones;
            if (!w->log && !w->retired && due) {
                rv_plog_opts_t o = plog_opts(lb, t, w->name, true);
                rv_plog_t *log = NULL;
                rv_error_t *e = NULL;
                rv_err_t rc = rv__plog_open(w->dir, &o, &log, &e);
                if (rc == RV_OK) {
                    maintain(lb, w, log);
                    rv__plog_close(log);
                } else if (rc != RV_ERR_BUSY) {
                    rv__log(&lb->broker->log, RV_LOG_ERROR, "local",
                            "maintenance of partition "
                            "%s: %s",
                            w->name, rv_error_message(e));
                    w->maint_sig = info.sig; /* do not retry until something changes */
                    w->maint_wall_ms = now;
                }
                rv_error_destroy(e);
            }
            pthread_mutex_unlock(&w->mu);
        }
    }
    rv_strv_free(names);
}

static void *background_main(void *arg) {
    rv_local_t *lb = arg;
    int64_t tick = lb->maint_interval_ms < 250 ? lb->maint_interval_ms : 250;
    int64_t now = rv_clock_mono_ms();
    int64_t next_sync = now + lb->fsync_interval_ms;
    int64_t next_house = now + tick;
    pthread_mutex_lock(&lb->mu);
    while (!lb->stopping) {
        now = rv_clock_mono_ms();
        if (lb->fsync == RV_FSYNC_INTERVAL && (lb->sync_requested || now >= next_sync)) {
            lb->sync_requested = false;
            pthread_mutex_unlock(&lb->mu);
            sync_pass(lb);
            pthread_mutex_lock(&lb->mu);
            next_sync = now + lb->fsync_interval_ms;
            continue;
        }
        if (now >= next_house) {
            bool scan = now >= lb->next_scan_ms;
            pthread_mutex_unlock(&lb->mu);
            housekeeping_pass(lb);
            if (scan) {
                writerless_pass(lb);
            }
            pthread_mutex_lock(&lb->mu);
            if (scan) {
                lb->next_scan_ms = rv_clock_mono_ms() + lb->maint_interval_ms;
            }
            next_house = rv_clock_mono_ms() + tick;
            continue;
        }
        int64_t until = next_house;
        if (lb->fsync == RV_FSYNC_INTERVAL && next_sync < until) {
            until = next_sync;
        }
        /* Condition variables wait on CLOCK_REALTIME by default; convert the monotonic
         * deadline into a relative wait. */
        int64_t wait_ms = until - now;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (wait_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(wait_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&lb->cond, &lb->mu, &ts);
    }
    pthread_mutex_unlock(&lb->mu);
    return NULL;
}

/* Closes every writer (syncing first under the interval policy). */
static void close_all_writers(rv_local_t *lb) {
    size_t n;
    rv_local_writer_t **v = writers_snapshot(lb, &n);
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&v[i]->mu);
        writer_close_locked(lb, v[i]);
        pthread_mutex_unlock(&v[i]->mu);
    }
    free(v);
}

rv_err_t rv__local_producer_register(rv_local_t *lb, rv_local_producer_t *lp) {
    pthread_mutex_lock(&lb->mu);
    if (lb->producer_count == lb->producer_cap) {
        size_t cap = lb->producer_cap ? lb->producer_cap * 2 : 4;
        rv_local_producer_t **v = realloc(lb->producers, cap * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&lb->mu);
            return RV_ERR_NOMEM;
        }
        lb->producers = v;
        lb->producer_cap = cap;
    }
    lb->producers[lb->producer_count++] = lp;
    pthread_mutex_unlock(&lb->mu);
    return RV_OK;
}

void rv__local_producer_unregister(rv_local_t *lb, rv_local_producer_t *lp) {
    pthread_mutex_lock(&lb->mu);
    for (size_t i = 0; i < lb->producer_count; i++) {
        if (lb->producers[i] == lp) {
            lb->producers[i] = lb->producers[--lb->producer_count];
            break;
        }
    }
    bool last = lb->producer_count == 0;
    pthread_mutex_unlock(&lb->mu);
    if (last) {
        close_all_writers(lb); /* release the writer locks for other processes now */
    }
}

/* ---- open and close -------------------------------------------------------------------------- */

/* Removes what crashed processes left in staging/ (entries are named after their pid). */
static void clean_staging(rv_local_t *lb) {
    DIR *d = opendir(lb->staging_dir);
    if (!d) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end = NULL;
        long pid = strtol(de->d_name, &end, 10);
        if (end == de->d_name || *end != '-' || pid <= 0) {
            continue;
        }
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) {
            continue;
        }
        char *path = rv__local_strf("%s/%s", lb->staging_dir, de->d_name);
        if (path) {
            rv__log(&lb->broker->log, RV_LOG_INFO, "local",
                    "removing '%s' left by dead process %ld", path, pid);
            remove_tree(path);
            free(path);
        }
    }
    closedir(d);
}

/* Opens every partition for writing once, so torn tails left by a crash are truncated now. A
 * partition another process is writing is skipped: its writer recovered it. */
static rv_err_t recover_all(rv_local_t *lb, rv_error_t **err) {
    char **names = NULL;
    size_t count = 0;
    rv_err_t rc = list_topic_names(lb, &names, &count, err);
    for (size_t i = 0; rc == RV_OK && i < count; i++) {
        rv_local_topic_t *t = NULL;
        rc = rv__local_topic_get(lb, names[i], &t, err);
        if (rc == RV_ERR_NOT_FOUND) { /* deleted by another process meanwhile */
            rc = RV_OK;
            continue;
        }
        for (int32_t p = 0; rc == RV_OK && p < t->partitions; p++) {
            char *name = rv__local_strf("%s/%" PRId32, t->name, p);
            char *dir = rv__local_strf("%s/%s/%" PRId32, lb->topics_dir, t->name, p);
            if (!name || !dir) {
                rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory recovering '%s'", lb->root);
            } else {
                rv_plog_opts_t o = plog_opts(lb, t, name, true);
                rv_plog_t *log = NULL;
                rv_error_t *e = NULL;
                rc = rv__plog_open(dir, &o, &log, &e);
                if (rc == RV_OK) {
                    rv__plog_close(log);
                } else if (rc == RV_ERR_BUSY) {
                    rc = RV_OK; /* its writer (another process) recovered it */
                } else if (err) {
                    rv_error_destroy(*err);
                    *err = e;
                    e = NULL;
                }
                rv_error_destroy(e);
            }
            free(name);
            free(dir);
        }
    }
    rv_strv_free(names);
    return rc;
}

static void local_free(rv_local_t *lb) {
    if (!lb) {
        return;
    }
    rv_local_writer_t *lists[2] = {lb->writers, lb->dead_writers};
    for (int l = 0; l < 2; l++) {
        for (rv_local_writer_t *w = lists[l], *next; w; w = next) {
            next = w->next;
            if (w->log) {
                writer_close_locked(lb, w);
            }
            pthread_cond_destroy(&w->idle);
            pthread_mutex_destroy(&w->mu);
            free(w->name);
            free(w->dir);
            free(w);
        }
    }
    rv_local_topic_t *tlists[2] = {lb->topics, lb->dead_topics};
    for (int l = 0; l < 2; l++) {
        for (rv_local_topic_t *t = tlists[l], *next; t; t = next) {
            next = t->next;
            free(t->name);
            free(t);
        }
    }
    free(lb->producers);
    free(lb->root);
    free(lb->topics_dir);
    free(lb->groups_dir);
    free(lb->staging_dir);
    free(lb->txn_dir);
    pthread_cond_destroy(&lb->cond);
    pthread_mutex_destroy(&lb->mu);
    free(lb);
}

static rv_err_t local_open(rv_broker_t *b, const char *location, rv_error_t **err) {
    if (!location || !*location) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "broker URL 'local:' needs a directory, as in 'local:./data'");
    }
    rv_local_t *lb = calloc(1, sizeof *lb);
    if (!lb) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory opening 'local:%s'", location);
    }
    pthread_mutex_init(&lb->mu, NULL);
    pthread_cond_init(&lb->cond, NULL);
    atomic_init(&lb->name_counter, 0);
    lb->broker = b;
    size_t len = strlen(location);
    while (len > 1 && location[len - 1] == '/') {
        len--;
    }
    lb->root = strndup(location, len);
    lb->topics_dir = rv__local_strf("%.*s/topics", (int)len, location);
    lb->groups_dir = rv__local_strf("%.*s/groups", (int)len, location);
    lb->staging_dir = rv__local_strf("%.*s/staging", (int)len, location);
    lb->txn_dir = rv__local_strf("%.*s/txn", (int)len, location);
    lb->fsync = (rv_fsync_t)rv__conf_int(b->conf, RV_CONF_ID_LOCAL_FSYNC_POLICY);
    lb->fsync_interval_ms = rv__conf_int(b->conf, RV_CONF_ID_LOCAL_FSYNC_INTERVAL_MS);
    lb->maint_interval_ms = rv__conf_int(b->conf, RV_CONF_ID_MAINTENANCE_MS);
    rv_err_t rc = RV_OK;
    if (!lb->root || !lb->topics_dir || !lb->groups_dir || !lb->staging_dir || !lb->txn_dir) {
        rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory opening 'local:%s'", location);
    }
    if (rc == RV_OK) {
        rc = rv__local_mkdirs(lb->topics_dir, err);
    }
    if (rc == RV_OK) {
        rc = rv__local_mkdirs(lb->groups_dir, err);
    }
    if (rc == RV_OK) {
        rc = rv__local_mkdirs(lb->staging_dir, err);
    }
    if (rc == RV_OK) {
        rc = rv__local_txn_init(lb, err);
    }
    b->impl = lb;
    if (rc == RV_OK) {
        clean_staging(lb);
        rc = recover_all(lb, err);
    }
    if (rc == RV_OK) {
        /* Transactions a crashed process committed but did not finish applying. One whose
         * partitions another process is writing is left to that process (it completes it
         * before appending there). */
        rv_error_t *e = NULL;
        rc = rv__local_txn_recover(lb, &e);
        if (rc == RV_ERR_BUSY) {
            rv__log(&b->log, RV_LOG_WARNING, "local", "%s", rv_error_message(e));
            rc = RV_OK;
        } else if (rc != RV_OK && err) {
            rv_error_destroy(*err);
            *err = e;
            e = NULL;
        }
        rv_error_destroy(e);
    }
    if (rc == RV_OK) {
        int e = pthread_create(&lb->thread, NULL, background_main, lb);
        if (e != 0) {
            rc = rv__error_set(err, RV_ERR_NOMEM,
                               "cannot start the background thread of "
                               "'local:%s': %s",
                               location, strerror(e));
        } else {
            lb->thread_started = true;
        }
    }
    if (rc != RV_OK) {
        local_free(lb);
        b->impl = NULL;
    }
    return rc;
}

static void local_close(rv_broker_t *b) {
    rv_local_t *lb = b->impl;
    if (!lb) {
        return;
    }
    if (lb->thread_started) {
        pthread_mutex_lock(&lb->mu);
        lb->stopping = true;
        pthread_cond_signal(&lb->cond);
        pthread_mutex_unlock(&lb->mu);
        pthread_join(lb->thread, NULL);
    }
    local_free(lb);
    b->impl = NULL;
}

/* ---- topic admin ------------------------------------------------------------------------------
 */

static rv_err_t local_create_topic(rv_broker_t *b, const char *topic, int32_t partitions,
                                   const rv_conf_t *topic_conf, rv_error_t **err) {
    rv_local_t *lb = b->impl;
    if (partitions < 1 || partitions > RV_LOCAL_MAX_PARTITIONS) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "topic '%s': partition count %" PRId32 " is outside 1..%d", topic,
                             partitions, RV_LOCAL_MAX_PARTITIONS);
    }
    char *final = rv__local_strf("%s/%s", lb->topics_dir, topic);
    char *uniq = rv__local_unique(lb);
    char *tmp = uniq ? rv__local_strf("%s/%s-create", lb->staging_dir, uniq) : NULL;
    rv_strbuf_t text = RV_STRBUF_INIT;
    rv_err_t rc = RV_OK;
    struct stat st;
    if (!final || !tmp) {
        rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory creating topic '%s'", topic);
        goto out;
    }
    if (stat(final, &st) == 0) {
        rc =
            rv__error_set(err, RV_ERR_EXISTS, "topic '%s' already exists in '%s'", topic, lb->root);
        goto out;
    }
    if (mkdir(tmp, 0777) != 0) {
        rc = rv__error_set(err, RV_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (topic_conf_render(topic_conf, partitions, &text) != RV_OK) {
        rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory creating topic '%s'", topic);
        goto fail;
    }
    rc = rv__local_write_atomic(lb, tmp, TOPIC_CONF, text.data, text.len, err);
    for (int32_t p = 0; rc == RV_OK && p < partitions; p++) {
        char *pdir = rv__local_strf("%s/%" PRId32, tmp, p);
        char *name = rv__local_strf("%s/%" PRId32, topic, p);
        if (!pdir || !name) {
            rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory creating topic '%s'", topic);
        } else if (mkdir(pdir, 0777) != 0) {
            rc = rv__error_set(err, RV_ERR_IO, "cannot create '%s': %s", pdir, strerror(errno));
        } else {
            /* A writable open lays out the empty log so readers can open it at once. */
            rv_plog_opts_t o = plog_opts(lb, NULL, name, true);
            rv_plog_t *log = NULL;
            rc = rv__plog_open(pdir, &o, &log, err);
            rv__plog_close(log);
        }
        free(pdir);
        free(name);
    }
    if (rc == RV_OK) {
        rc = rv__local_fsync_dir(tmp, err);
    }
    if (rc != RV_OK) {
        goto fail;
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) != 0) {
        int e = errno;
        if (e == ENOSYS || e == EINVAL) { /* no renameat2 here: a non-empty target still fails */
            e = rename(tmp, final) == 0 ? 0 : errno;
        }
        if (e == EEXIST || e == ENOTEMPTY) {
            rc = rv__error_set(err, RV_ERR_EXISTS, "topic '%s' already exists in '%s'", topic,
                               lb->root);
            goto fail;
        }
        if (e != 0) {
            rc = rv__error_set(err, RV_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, final,
                               strerror(e));
            goto fail;
        }
    }
    rc = rv__local_fsync_dir(lb->topics_dir, err);
    if (rc == RV_OK) {
        rv__log(&b->log, RV_LOG_INFO, "local",
                "created topic '%s' with %" PRId32 " partition(s) in '%s'", topic, partitions,
                lb->root);
    }
    goto out;
fail:
    remove_tree(tmp);
out:
    rv_strbuf_free(&text);
    free(final);
    free(uniq);
    free(tmp);
    return rc;
}

/*
 * Forgets a deleted topic in this handle: its cached metadata is marked deleted (producers look
 * it up again) and its writers are closed and retired (appends through them fail).
 */
static void retire_topic(rv_local_t *lb, const char *topic) {
    pthread_mutex_lock(&lb->mu);
    for (rv_local_topic_t **tp = &lb->topics; *tp;) {
        rv_local_topic_t *t = *tp;
        if (strcmp(t->name, topic) == 0) {
            atomic_store(&t->deleted, true);
            *tp = t->next;
            t->next = lb->dead_topics;
            lb->dead_topics = t;
        } else {
            tp = &t->next;
        }
    }
    rv_local_writer_t *retired = NULL;
    for (rv_local_writer_t **wp = &lb->writers; *wp;) {
        rv_local_writer_t *w = *wp;
        if (atomic_load(&w->topic->deleted)) {
            *wp = w->next;
            w->next = retired;
            retired = w;
        } else {
            wp = &w->next;
        }
    }
    pthread_mutex_unlock(&lb->mu);
    bool synced = false;
    for (rv_local_writer_t *w = retired, *next; w; w = next) {
        next = w->next;
        pthread_mutex_lock(&w->mu);
        synced |= writer_close_locked(lb, w);
        atomic_store(&w->retired, true);
        atomic_store(&w->synced_seq, UINT64_MAX); /* nothing of it is awaited any more */
        pthread_mutex_unlock(&w->mu);
        pthread_mutex_lock(&lb->mu);
        w->next = lb->dead_writers;
        lb->dead_writers = w;
        pthread_mutex_unlock(&lb->mu);
    }
    if (synced) {
        wake_producers(lb);
    }
}

static rv_err_t local_delete_topic(rv_broker_t *b, const char *topic, rv_error_t **err) {
    rv_local_t *lb = b->impl;
    char *path = rv__local_strf("%s/%s", lb->topics_dir, topic);
    char *uniq = rv__local_unique(lb);
    char *trash = uniq ? rv__local_strf("%s/%s-deleted", lb->staging_dir, uniq) : NULL;
    rv_err_t rc = RV_OK;
    if (!path || !trash) {
        rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory deleting topic '%s'", topic);
        goto out;
    }
    if (rename(path, trash) != 0) {
        if (errno == ENOENT) {
            rc = rv__error_set(err, RV_ERR_NOT_FOUND, "topic '%s' does not exist in '%s'", topic,
                               lb->root);
        } else {
            rc = rv__error_set(err, RV_ERR_IO, "cannot move '%s' to '%s': %s", path, trash,
                               strerror(errno));
        }
        goto out;
    }
    rv__local_fsync_dir(lb->topics_dir, NULL);

    retire_topic(lb, topic);
    remove_tree(trash);
    rv__log(&b->log, RV_LOG_INFO, "local", "deleted topic '%s' in '%s'", topic, lb->root);
out:
    free(path);
    free(uniq);
    free(trash);
    return rc;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static rv_err_t list_topic_names(rv_local_t *lb, char ***names, size_t *count, rv_error_t **err) {
    DIR *d = opendir(lb->topics_dir);
    if (!d) {
        return rv__error_set(err, RV_ERR_IO, "cannot read directory '%s': %s", lb->topics_dir,
                             strerror(errno));
    }
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof *v);
    rv_err_t rc = v ? RV_OK : RV_ERR_NOMEM;
    struct dirent *de;
    while (rc == RV_OK && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        char *conf = rv__local_strf("%s/%s/%s", lb->topics_dir, de->d_name, TOPIC_CONF);
        struct stat st;
        bool is_topic = conf && stat(conf, &st) == 0;
        free(conf);
        if (!is_topic) {
            continue;
        }
        if (n + 1 >= cap) {
            char **bigger = realloc(v, cap * 2 * sizeof *v);
            if (!bigger) {
                rc = RV_ERR_NOMEM;
                break;
            }
            v = bigger;
            cap *= 2;
        }
        if (!(v[n] = strdup(de->d_name))) {
            rc = RV_ERR_NOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc != RV_OK) {
        for (size_t i = 0; v && i < n; i++) {
            free(v[i]);
        }
        free(v);
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory listing topics of '%s'", lb->root);
    }
    qsort(v, n, sizeof *v, compare_names);
    v[n] = NULL;
    *names = v;
    if (count) {
        *count = n;
    }
    return RV_OK;
}

static rv_err_t local_list_topics(rv_broker_t *b, char ***names, size_t *count, rv_error_t **err) {
    return list_topic_names(b->impl, names, count, err);
}

static rv_err_t local_describe_topic(rv_broker_t *b, const char *topic, int32_t *partitions,
                                     rv_conf_t **topic_conf, rv_error_t **err) {
    int32_t parts = 0;
    rv_conf_t *conf = NULL;
    rv_err_t rc = topic_conf_load(b->impl, topic, &parts, &conf, err);
    if (rc != RV_OK) {
        return rc;
    }
    if (partitions) {
        *partitions = parts;
    }
    if (topic_conf) {
        *topic_conf = conf;
    } else {
        rv_conf_destroy(conf);
    }
    return RV_OK;
}

static rv_err_t local_watermarks(rv_broker_t *b, const char *topic, int32_t partition, int64_t *low,
                                 int64_t *high, rv_error_t **err) {
    rv_local_t *lb = b->impl;
    char name[300];
    snprintf(name, sizeof name, "%s/%" PRId32, topic, partition);
    rv_plog_t *log = NULL;
    rv_err_t rc = rv__local_open_reader_log(lb, topic, partition, name, &log, err);
    if (rc != RV_OK) {
        return rc;
    }
    if (low) {
        *low = rv__plog_low(log);
    }
    if (high) {
        *high = rv__plog_high(log);
    }
    rv__plog_close(log);
    return RV_OK;
}

const rv_broker_ops_t rv__local_broker_ops = {
    .version = RV_BROKER_OPS_VERSION,
    .scheme = "local",
    .open = local_open,
    .close = local_close,
    .create_topic = local_create_topic,
    .delete_topic = local_delete_topic,
    .list_topics = local_list_topics,
    .describe_topic = local_describe_topic,
    .watermarks = local_watermarks,
    .producer_new = rv__local_producer_new,
    .producer_destroy = rv__local_producer_destroy,
    .send = rv__local_send,
    .producer_poll = rv__local_producer_poll,
    .flush = rv__local_flush,
    .consumer_new = rv__local_consumer_new,
    .consumer_destroy = rv__local_consumer_destroy,
    .subscribe = rv__local_subscribe,
    .assign = rv__local_assign,
    .poll = rv__local_poll,
    .commit = rv__local_commit,
    .committed = rv__local_committed,
    .position = rv__local_position,
    .seek = rv__local_seek,
    .offsets_for_times = rv__local_offsets_for_times,
    .pause = rv__local_pause,
    .begin_transaction = rv__local_begin_transaction,
    .send_offsets_to_transaction = rv__local_send_offsets_to_transaction,
    .commit_transaction = rv__local_commit_transaction,
    .abort_transaction = rv__local_abort_transaction,
};
