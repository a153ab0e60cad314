/*
 * local_group.c: committed offsets and consumer groups of the `local:` broker, across the
 * processes of one machine, with file locks.
 *
 * A group lives in <root>/groups/<group>/ (the name percent-encoded where it is not a safe
 * file name): `offsets` holds the committed offsets as text lines "topic partition offset",
 * replaced atomically (temporary file, fsync, rename) under the flock of `offsets.lock`, so a
 * commit is durable when it returns and concurrent commits of several processes merge.
 * A member holds an flock on members/<member-id>.lock for as long as it lives; a partition
 * belongs to the member holding the flock on owners/<topic>.<partition>.lock. Every
 * group.check.interval.ms, during poll, a member lists the live members (a member file whose
 * flock can be taken belongs to a dead process and is removed), sorts their ids, deals the
 * subscribed partitions round-robin over them, releases what it should no longer own (after
 * on_revoke, so the application commits first) and takes what it should own as soon as the
 * lock is free (then on_assign, from the committed offsets). Every member must subscribe to
 * the same topics. flock locks belong to open file descriptions, so members in one process
 * exclude each other as members in different processes do. This file must never hold a
 * partition's ownership lock after its on_revoke returned, and never take one before the
 * previous owner released it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/local_int.h"
#include "rivulet/clock.h"

#define OFFSETS_FILE "offsets"
#define OFFSETS_HEADER "# rivulet committed offsets: topic partition offset\n"
/* How often a member retries the locks of partitions it should own but could not take yet. */
#define ACQUIRE_RETRY_MS 50
/* A member file still being set up is removed only when older than this (and unlocked). */
#define STALE_JOIN_S 60

/* ---- names --------------------------------------------------------------------------------- */

/* The group's directory name: [A-Za-z0-9_-] and inner dots kept, the rest as %XX. */
static char *encode_group(const char *group) {
    size_t len = strlen(group);
    char *out = malloc(len * 3 + 1);
    if (!out) {
        return NULL;
    }
    char *o = out;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)group[i];
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || (ch == '.' && i > 0);
        if (plain) {
            *o++ = (char)ch;
        } else {
            o += sprintf(o, "%%%02X", ch);
        }
    }
    *o = '\0';
    return out;
}

rv_err_t rv__local_group_init(rv_local_consumer_t *lc, rv_error_t **err) {
    const char *group = lc->consumer->group;
    if (!group) {
        return RV_OK;
    }
    if (!*group) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "a consumer group id cannot be empty");
    }
    char *enc = encode_group(group);
    if (enc && strlen(enc) > 200) {
        free(enc);
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "consumer group id '%.40s...' is too long for the embedded log",
                             group);
    }
    lc->group_dir = enc ? rv__local_strf("%s/%s", lc->lb->groups_dir, enc) : NULL;
    free(enc);
    if (!lc->group_dir) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory joining group '%s'", group);
    }
    char *members = rv__local_strf("%s/members", lc->group_dir);
    char *owners = rv__local_strf("%s/owners", lc->group_dir);
    rv_err_t rc = members && owners ? RV_OK : RV_ERR_NOMEM;
    if (rc == RV_OK) {
        rc = rv__local_mkdirs(members, err);
    }
    if (rc == RV_OK) {
        rc = rv__local_mkdirs(owners, err);
    }
    free(members);
    free(owners);
    return rc == RV_ERR_NOMEM ? rv__error_set(err, rc, "out of memory joining group '%s'", group)
                              : rc;
}

/* ---- committed offsets --------------------------------------------------------------------- */

typedef struct offset_entry_s {
    char *topic;
    int32_t partition;
    int64_t offset;
} offset_entry_t;

typedef struct offset_table_s {
    offset_entry_t *v;
    size_t n;
    size_t cap;
} offset_table_t;

static void table_free(offset_table_t *t) {
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].topic);
    }
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}

static offset_entry_t *table_find(offset_table_t *t, const char *topic, int32_t partition) {
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i].partition == partition && strcmp(t->v[i].topic, topic) == 0) {
            return &t->v[i];
        }
    }
    return NULL;
}

static rv_err_t table_set(offset_table_t *t, const char *topic, int32_t partition, int64_t offset) {
    offset_entry_t *e = table_find(t, topic, partition);
    if (e) {
        e->offset = offset;
        return RV_OK;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        offset_entry_t *v = realloc(t->v, cap * sizeof *v);
        if (!v) {
            return RV_ERR_NOMEM;
        }
        t->v = v;
        t->cap = cap;
    }
    char *name = strdup(topic);
    if (!name) {
        return RV_ERR_NOMEM;
    }
    t->v[t->n++] = (offset_entry_t){name, partition, offset};
    return RV_OK;
}

/* Loads the offsets file of the group in `group_dir` (a missing file is an empty table). */
static rv_err_t table_load(const char *group_dir, offset_table_t *t, rv_error_t **err) {
    char *path = rv__local_strf("%s/%s", group_dir, OFFSETS_FILE);
    if (!path) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory reading committed offsets");
    }
    char *text = NULL;
    rv_error_t *read_err = NULL;
    rv_err_t rc = rv__local_read_file(path, &text, NULL, &read_err);
    if (rc == RV_ERR_NOT_FOUND) {
        /* No commit yet: an empty table, and no error left behind for the caller. */
        rv_error_destroy(read_err);
        free(path);
        return RV_OK;
    }
    if (rc != RV_OK) {
        if (err) {
            rv_error_destroy(*err);
            *err = read_err;
        } else {
            rv_error_destroy(read_err);
        }
    }
    int lineno = 0;
    char *save = NULL;
    for (char *line = rc == RV_OK ? strtok_r(text, "\n", &save) : NULL; line && rc == RV_OK;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }
        char topic[256];
        long long partition = 0, offset = 0;
        char extra = 0;
        if (sscanf(line, "%255s %lld %lld %c", topic, &partition, &offset, &extra) != 3 ||
            partition < 0 || partition > INT32_MAX || offset < 0) {
            rc = rv__error_set(err, RV_ERR_CORRUPT,
                               "'%s' line %d is not \"topic partition "
                               "offset\": \"%.80s\"",
                               path, lineno, line);
            break;
        }
        if (table_set(t, topic, (int32_t)partition, offset) != RV_OK) {
            rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory reading '%s'", path);
        }
    }
    free(text);
    free(path);
    if (rc != RV_OK) {
        table_free(t);
    }
    return rc;
}

rv_err_t rv__local_offsets_read(rv_local_consumer_t *lc, rv_topic_partition_t *tps, size_t count,
                                rv_error_t **err) {
    offset_table_t t = {0};
    rv_err_t rc = table_load(lc->group_dir, &t, err);
    if (rc != RV_OK) {
        return rc;
    }
    for (size_t i = 0; i < count; i++) {
        offset_entry_t *e = table_find(&t, tps[i].topic, tps[i].partition);
        tps[i].offset = e ? e->offset : RV_OFFSET_INVALID;
    }
    table_free(&t);
    return RV_OK;
}

rv_err_t rv__local_committed(rv_consumer_t *c, rv_topic_partition_t *tps, size_t count,
                             rv_error_t **err) {
    rv_local_consumer_t *lc = c->impl;
    if (!lc->group_dir) {
        return rv__error_set(err, RV_ERR_STATE,
                             "committed offsets need a consumer group; this "
                             "consumer has none");
    }
    return rv__local_offsets_read(lc, tps, count, err);
}

/* Merges `tps` into the offsets file of `group` (in `group_dir`) under its lock; durable on
 * return. */
static rv_err_t offsets_merge(rv_local_t *lb, const char *group, const char *group_dir,
                              const rv_topic_partition_t *tps, size_t count, rv_error_t **err) {
    char *lock_path = rv__local_strf("%s/offsets.lock", group_dir);
    if (!lock_path) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory committing to group '%s'", group);
    }
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        rv_err_t rc =
            rv__error_set(err, RV_ERR_IO, "cannot open '%s': %s", lock_path, strerror(errno));
        free(lock_path);
        return rc;
    }
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {
    }
    offset_table_t t = {0};
    rv_strbuf_t text = RV_STRBUF_INIT;
    rv_err_t rc = table_load(group_dir, &t, err);
    for (size_t i = 0; rc == RV_OK && i < count; i++) {
        if (table_set(&t, tps[i].topic, tps[i].partition, tps[i].offset) != RV_OK) {
            rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory committing to group '%s'", group);
        }
    }
    if (rc == RV_OK) {
        rc = rv_strbuf_append(&text, OFFSETS_HEADER, strlen(OFFSETS_HEADER));
        for (size_t i = 0; rc == RV_OK && i < t.n; i++) {
            rc = rv_strbuf_appendf(&text, "%s %" PRId32 " %" PRId64 "\n", t.v[i].topic,
                                   t.v[i].partition, t.v[i].offset);
        }
        if (rc != RV_OK) {
            rc = rv__error_set(err, rc, "out of memory committing to group '%s'", group);
        }
    }
    if (rc == RV_OK) {
        rc = rv__local_write_atomic(lb, group_dir, OFFSETS_FILE, text.data, text.len, err);
        if (rc != RV_OK) {
            rv__error_prefix(err, rc, "committing offsets of group '%s': ", group);
        }
    }
    flock(fd, LOCK_UN);
    close(fd);
    free(lock_path);
    rv_strbuf_free(&text);
    table_free(&t);
    return rc;
}

static rv_err_t offsets_write(rv_local_consumer_t *lc, const rv_topic_partition_t *tps,
                              size_t count, rv_error_t **err) {
    return offsets_merge(lc->lb, lc->consumer->group, lc->group_dir, tps, count, err);
}

rv_err_t rv__local_group_offsets_merge(rv_local_t *lb, const char *group,
                                       const rv_topic_partition_t *tps, size_t count,
                                       rv_error_t **err) {
    char *enc = encode_group(group);
    char *dir = enc ? rv__local_strf("%s/%s", lb->groups_dir, enc) : NULL;
    free(enc);
    rv_err_t rc = dir ? rv__local_mkdirs(dir, err)
                      : rv__error_set(err, RV_ERR_NOMEM, "out of memory committing to group '%s'",
                                      group);
    if (rc == RV_OK) {
        rc = offsets_merge(lb, group, dir, tps, count, err);
    }
    free(dir);
    return rc;
}

rv_err_t rv__local_commit(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count,
                          rv_error_t **err) {
    rv_local_consumer_t *lc = c->impl;
    if (!lc->group_dir) {
        return rv__error_set(err, RV_ERR_STATE,
                             "commit needs a consumer group; this consumer "
                             "has none");
    }
    if (tps) {
        for (size_t i = 0; i < count; i++) {
            if (!tps[i].topic || tps[i].partition < 0 || tps[i].offset < 0) {
                return rv__error_set(
                    err, RV_ERR_INVALID_ARG,
                    "cannot commit offset %" PRId64 " for topic '%s' partition %" PRId32,
                    tps[i].offset, tps[i].topic ? tps[i].topic : "(null)", tps[i].partition);
            }
        }
        for (size_t i = 0; i < count; i++) {
            rv_local_topic_t *t = NULL;
            rv_err_t rc = rv__local_topic_get(lc->lb, tps[i].topic, &t, err);
            if (rc == RV_OK && tps[i].partition >= t->partitions) {
                rc = rv__error_set(err, RV_ERR_INVALID_ARG,
                                   "topic '%s' partition %" PRId32
                                   ": no such partition (the topic has %" PRId32 ")",
                                   tps[i].topic, tps[i].partition, t->partitions);
            }
            if (rc != RV_OK) {
                return rv__error_prefix(err, rc, "group '%s': commit: ", c->group);
            }
        }
        return count ? offsets_write(lc, tps, count, err) : RV_OK;
    }
    if (lc->part_count == 0) {
        return RV_OK;
    }
    rv_topic_partition_t *all = malloc(lc->part_count * sizeof *all);
    if (!all) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory committing to group '%s'", c->group);
    }
    size_t n = 0;
    for (size_t i = 0; i < lc->part_count; i++) {
        if (!lc->parts[i]->stopped) {
            all[n++] = (rv_topic_partition_t){lc->parts[i]->topic, lc->parts[i]->partition,
                                              rv__local_part_position(lc->parts[i])};
        }
    }
    rv_err_t rc = n ? offsets_write(lc, all, n, err) : RV_OK;
    free(all);
    return rc;
}

/* ---- membership ---------------------------------------------------------------------------- */

static void strv_free_n(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Joins: creates and locks a member file under a temporary name, then renames it into view, so
 * every visible member file is locked by a live member from the start. */
static rv_err_t join(rv_local_consumer_t *lc, rv_error_t **err) {
    const char *group = lc->consumer->group;
    char *id = rv__local_unique(lc->lb);
    char *tmp = id ? rv__local_strf("%s/members/.join-%s", lc->group_dir, id) : NULL;
    char *path = id ? rv__local_strf("%s/members/%s.lock", lc->group_dir, id) : NULL;
    rv_err_t rc = RV_OK;
    int fd = -1;
    if (!tmp || !path) {
        rc = rv__error_set(err, RV_ERR_NOMEM, "out of memory joining group '%s'", group);
        goto out;
    }
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        rc = rv__error_set(err, RV_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rc = rv__error_set(err, RV_ERR_IO, "cannot lock '%s': %s", tmp, strerror(errno));
        goto out;
    }
    char info[64];
    int len = snprintf(info, sizeof info, "pid %ld\n", (long)getpid());
    if (write(fd, info, (size_t)len) < 0) {
        /* the content is informative only */
    }
    if (rename(tmp, path) != 0) {
        rc = rv__error_set(err, RV_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path,
                           strerror(errno));
        goto out;
    }
    lc->member_fd = fd;
    lc->member_id = id;
    fd = -1;
    id = NULL;
    rv__log(&lc->lb->broker->log, RV_LOG_INFO, "local", "member %s joined group '%s'",
            lc->member_id, group);
out:
    if (fd >= 0) {
        unlink(tmp);
        close(fd);
    }
    free(id);
    free(tmp);
    free(path);
    return rc;
}

/* Whether the lock of `path` is free (its holder is dead); if so removes the file. */
static bool remove_if_unlocked(const char *path) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT;
    }
    bool dead = flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (dead) {
        unlink(path);
    }
    close(fd);
    return dead;
}

/* The sorted ids of the live members (this one included); dead members' files are removed. */
static rv_err_t live_members(rv_local_consumer_t *lc, char ***ids_out, size_t *n_out,
                             rv_error_t **err) {
    char *dir = rv__local_strf("%s/members", lc->group_dir);
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        rv_err_t rc = rv__error_set(err, dir ? RV_ERR_IO : RV_ERR_NOMEM,
                                    "cannot read the members of group '%s' in '%s'",
                                    lc->consumer->group, dir ? dir : lc->group_dir);
        free(dir);
        return rc;
    }
    size_t n = 0, cap = 8;
    char **ids = malloc(cap * sizeof *ids);
    bool self = false;
    rv_err_t rc = ids ? RV_OK : RV_ERR_NOMEM;
    struct dirent *de;
    time_t now = time(NULL);
    while (rc == RV_OK && (de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        char *path = rv__local_strf("%s/%s", dir, name);
        if (!path) {
            rc = RV_ERR_NOMEM;
            break;
        }
        if (strncmp(name, ".join-", 6) == 0) {
            struct stat st;
            if (stat(path, &st) == 0 && now - st.st_mtime > STALE_JOIN_S) {
                remove_if_unlocked(path);
            }
            free(path);
            continue;
        }
        if (len <= 5 || strcmp(name + len - 5, ".lock") != 0) {
            free(path);
            continue;
        }
        bool mine = strncmp(name, lc->member_id, len - 5) == 0 && strlen(lc->member_id) == len - 5;
        if (!mine && remove_if_unlocked(path)) {
            rv__log(&lc->lb->broker->log, RV_LOG_NOTICE, "local",
                    "group '%s': member %.*s is gone; its partitions will be reassigned",
                    lc->consumer->group, (int)(len - 5), name);
            free(path);
            continue;
        }
        free(path);
        self |= mine;
        if (n == cap) {
            char **v = realloc(ids, cap * 2 * sizeof *ids);
            if (!v) {
                rc = RV_ERR_NOMEM;
                break;
            }
            ids = v;
            cap *= 2;
        }
        if (!(ids[n] = strndup(name, len - 5))) {
            rc = RV_ERR_NOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    free(dir);
    if (rc == RV_OK && !self) { /* our file vanished (someone cleaned the directory): count us */
        char **v = n == cap ? realloc(ids, (cap + 1) * sizeof *ids) : ids;
        if (!v || !(v[n] = strdup(lc->member_id))) {
            ids = v ? v : ids;
            rc = RV_ERR_NOMEM;
        } else {
            ids = v;
            n++;
        }
    }
    if (rc != RV_OK) {
        strv_free_n(ids, n);
        return rv__error_set(err, rc, "out of memory listing the members of group '%s'",
                             lc->consumer->group);
    }
    qsort(ids, n, sizeof *ids, compare_strings);
    *ids_out = ids;
    *n_out = n;
    return RV_OK;
}

static void targets_free(rv_local_consumer_t *lc) {
    for (size_t i = 0; i < lc->target_count; i++) {
        free((char *)lc->targets[i].topic);
    }
    free(lc->targets);
    lc->targets = NULL;
    lc->target_count = 0;
}

static bool is_target(const rv_local_consumer_t *lc, const char *topic, int32_t partition) {
    for (size_t i = 0; i < lc->target_count; i++) {
        if (lc->targets[i].partition == partition && strcmp(lc->targets[i].topic, topic) == 0) {
            return true;
        }
    }
    return false;
}

/* Deals the subscribed partitions round-robin over the sorted live members and keeps those of
 * member `me` of `n` as this member's targets. */
static rv_err_t compute_targets(rv_local_consumer_t *lc, size_t me, size_t n, rv_error_t **err) {
    targets_free(lc);
    size_t k = 0, cap = 0;
    for (size_t t = 0; t < lc->topic_count; t++) {
        int32_t partitions = 0;
        rv_err_t rc = rv__local_topic_partitions(lc->lb, lc->topics[t], &partitions, NULL);
        if (rc == RV_ERR_NOT_FOUND) {
            continue; /* not created yet: its partitions are dealt once it exists */
        }
        if (rc != RV_OK) {
            return rv__local_topic_partitions(lc->lb, lc->topics[t], &partitions, err);
        }
        for (int32_t p = 0; p < partitions; p++, k++) {
            if (k % n != me) {
                continue;
            }
            if (lc->target_count == cap) {
                cap = cap ? cap * 2 : 16;
                rv_topic_partition_t *v = realloc(lc->targets, cap * sizeof *v);
                if (!v) {
                    return rv__error_set(err, RV_ERR_NOMEM, "out of memory rebalancing");
                }
                lc->targets = v;
            }
            char *topic = strdup(lc->topics[t]);
            if (!topic) {
                return rv__error_set(err, RV_ERR_NOMEM, "out of memory rebalancing");
            }
            lc->targets[lc->target_count++] = (rv_topic_partition_t){topic, p, RV_OFFSET_STORED};
        }
    }
    return RV_OK;
}

/* Revokes the owned partitions that are no longer targets (or all of them): on_revoke first,
 * then the ownership locks are released. */
static rv_err_t revoke_where(rv_local_consumer_t *lc, bool all, int *served, rv_error_t **err) {
    size_t n = 0;
    for (size_t i = 0; i < lc->part_count; i++) {
        rv_local_part_t *p = lc->parts[i];
        n += p->owner_fd >= 0 && (all || !is_target(lc, p->topic, p->partition));
    }
    if (n == 0) {
        return RV_OK;
    }
    rv_topic_partition_t *tps = malloc(n * sizeof *tps);
    if (!tps) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory rebalancing");
    }
    size_t j = 0;
    for (size_t i = 0; i < lc->part_count; i++) {
        rv_local_part_t *p = lc->parts[i];
        if (p->owner_fd >= 0 && (all || !is_target(lc, p->topic, p->partition))) {
            tps[j++] = (rv_topic_partition_t){p->topic, p->partition, rv__local_part_position(p)};
        }
    }
    rv_consumer_t *c = lc->consumer;
    if (c->callbacks.on_revoke) {
        c->callbacks.on_revoke(c->callbacks.opaque, c, tps, n);
    }
    (*served)++;
    rv__log(&lc->lb->broker->log, RV_LOG_INFO, "local",
            "group '%s': member %s released %zu "
            "partition(s)",
            c->group, lc->member_id, n);
    for (size_t k = 0; k < n; k++) {
        for (size_t i = 0; i < lc->part_count; i++) {
            rv_local_part_t *p = lc->parts[i];
            if (p->partition == tps[k].partition && strcmp(p->topic, tps[k].topic) == 0) {
                rv__local_part_remove(lc, i); /* closes the ownership lock */
                break;
            }
        }
    }
    free(tps);
    return RV_OK;
}

/* Takes the ownership locks of the targets not owned yet; on_assign for those taken. */
static rv_err_t acquire(rv_local_consumer_t *lc, int *served, rv_error_t **err) {
    size_t n = 0;
    rv_topic_partition_t *tps = malloc((lc->target_count + 1) * sizeof *tps);
    int *fds = malloc((lc->target_count + 1) * sizeof *fds);
    bool missing = false;
    rv_err_t rc = RV_OK;
    if (!tps || !fds) {
        free(tps);
        free(fds);
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory rebalancing");
    }
    for (size_t i = 0; i < lc->target_count; i++) {
        const rv_topic_partition_t *t = &lc->targets[i];
        if (rv__local_part_find(lc, t->topic, t->partition)) {
            continue;
        }
        char *path =
            rv__local_strf("%s/owners/%s.%" PRId32 ".lock", lc->group_dir, t->topic, t->partition);
        int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666) : -1;
        if (fd < 0) {
            rc = rv__error_set(err, path ? RV_ERR_IO : RV_ERR_NOMEM, "cannot open '%s': %s",
                               path ? path : "owner lock", strerror(errno));
            free(path);
            break;
        }
        free(path);
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd); /* its previous owner has not released it yet */
            missing = true;
            continue;
        }
        fds[n] = fd;
        tps[n++] = (rv_topic_partition_t){t->topic, t->partition, RV_OFFSET_STORED};
    }
    if (rc == RV_OK && n > 0) {
        rc = rv__local_parts_add(lc, tps, fds, n, err);
    }
    if (rc != RV_OK) {
        for (size_t i = 0; i < n; i++) {
            close(fds[i]);
        }
    } else if (n > 0) {
        rv__log(&lc->lb->broker->log, RV_LOG_INFO, "local",
                "group '%s': member %s took %zu "
                "partition(s)",
                lc->consumer->group, lc->member_id, n);
        rv_consumer_t *c = lc->consumer;
        if (c->callbacks.on_assign) {
            c->callbacks.on_assign(c->callbacks.opaque, c, tps, n);
        }
        (*served)++;
    }
    lc->missing_targets = missing || rc != RV_OK;
    lc->next_acquire_ms =
        rv_clock_mono_ms() + (lc->check_ms < ACQUIRE_RETRY_MS ? lc->check_ms : ACQUIRE_RETRY_MS);
    free(tps);
    free(fds);
    return rc;
}

rv_err_t rv__local_group_tick(rv_local_consumer_t *lc, int *served, rv_error_t **err) {
    *served = 0;
    if (!lc->subscribed) {
        return RV_OK;
    }
    int64_t now = rv_clock_mono_ms();
    if (now >= lc->next_check_ms) {
        lc->next_check_ms = now + lc->check_ms;
        char **ids = NULL;
        size_t n = 0;
        rv_err_t rc = live_members(lc, &ids, &n, err);
        if (rc != RV_OK) {
            return rc;
        }
        size_t me = 0;
        while (me < n && strcmp(ids[me], lc->member_id) != 0) {
            me++;
        }
        strv_free_n(ids, n);
        rc = compute_targets(lc, me, n, err);
        if (rc == RV_OK) {
            rc = revoke_where(lc, false, served, err);
        }
        return rc == RV_OK ? acquire(lc, served, err) : rc;
    }
    if (lc->missing_targets && now >= lc->next_acquire_ms) {
        return acquire(lc, served, err);
    }
    return RV_OK;
}

int64_t rv__local_group_due_in(const rv_local_consumer_t *lc, int64_t now_ms) {
    if (!lc->subscribed) {
        return -1;
    }
    int64_t due = lc->next_check_ms;
    if (lc->missing_targets && lc->next_acquire_ms < due) {
        due = lc->next_acquire_ms;
    }
    return due > now_ms ? due - now_ms : 0;
}

rv_err_t rv__local_subscribe(rv_consumer_t *c, const char *const *topics, size_t count,
                             rv_error_t **err) {
    rv_local_consumer_t *lc = c->impl;
    if (!lc->group_dir) {
        return rv__error_set(err, RV_ERR_STATE,
                             "subscribe needs a consumer group; this "
                             "consumer has none (use assign)");
    }
    if (!lc->subscribed && lc->part_count > 0) {
        return rv__error_set(err, RV_ERR_STATE,
                             "this consumer has partitions assigned by hand; "
                             "it cannot also subscribe");
    }
    char **v = calloc(count + 1, sizeof *v);
    if (!v) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory subscribing");
    }
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++) {
            dup = strcmp(v[j], topics[i]) == 0;
        }
        if (dup) {
            continue;
        }
        if (!(v[n] = strdup(topics[i]))) {
            strv_free_n(v, n);
            return rv__error_set(err, RV_ERR_NOMEM, "out of memory subscribing");
        }
        n++;
    }
    qsort(v, n, sizeof *v, compare_strings);
    if (!lc->member_id) {
        rv_err_t rc = join(lc, err);
        if (rc != RV_OK) {
            strv_free_n(v, n);
            return rc;
        }
    }
    strv_free_n(lc->topics, lc->topic_count);
    lc->topics = v;
    lc->topic_count = n;
    lc->subscribed = true;
    lc->next_check_ms = 0; /* rebalance at the next poll */
    return RV_OK;
}

void rv__local_group_leave(rv_local_consumer_t *lc) {
    if (lc->subscribed) {
        int served = 0;
        revoke_where(lc, true, &served, NULL);
    }
    if (lc->member_id) {
        char *path = rv__local_strf("%s/members/%s.lock", lc->group_dir, lc->member_id);
        if (path) {
            unlink(path); /* while still locked, so no one mistakes it for a dead member's */
            free(path);
        }
        rv__log(&lc->lb->broker->log, RV_LOG_INFO, "local", "member %s left group '%s'",
                lc->member_id, lc->consumer->group);
    }
    if (lc->member_fd >= 0) {
        close(lc->member_fd);
        lc->member_fd = -1;
    }
    targets_free(lc);
    strv_free_n(lc->topics, lc->topic_count);
    lc->topics = NULL;
    lc->topic_count = 0;
    lc->subscribed = false;
    free(lc->member_id);
    lc->member_id = NULL;
    free(lc->group_dir);
    lc->group_dir = NULL;
}
