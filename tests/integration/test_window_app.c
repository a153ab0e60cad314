/*
 * test_window_app.c: windows through the real application runtime, with their state in RocksDB
 * stores, on memory: and local:<tmpdir> with one and two workers.
 *
 * Random records of a few string keys (out of order, some late) go to a 3-partition topic; one
 * application runs five windows on them at once (tumbling with grace, final; hopping, current;
 * sessions, final; count tumbling; sliding, final) into five topics, plus a last record per
 * partition far in the future that closes everything. The test reads the input back to learn each
 * record's partition and offset, computes every window's expected output per partition by plain
 * loops (the watermark is per partition), and compares the output topics (key, value and timestamp
 * = end - 1) with it. On local: the input is also processed in two runs of two application
 * instances, so windows open at the end of the first run live on in the stores and finish in the
 * second. A last check closes an idle window on wall-clock time. Every wait is bounded.
 */
/* ctest-labels: threads */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rivulet/rivulet.h"
#include "rv_test.h"

typedef struct env_s {
    const char *name;
    char url[600];
    int threads;
    char state[600];
} env_t;

static env_t *E;
static int g_seq;

static void on_log(void *opaque, rv_log_level_t level, const char *subsystem, const char *msg) {
    if (getenv("RV_TEST_LOG") || level <= RV_LOG_ERROR) {
        fprintf(stderr, "  [%s %s] %s\n", rv_log_level_name(level), subsystem, msg);
    }
}

static rv_app_t *mk_app(const char *group) {
    rv_conf_t *conf = rv_conf_new();
    char threads[16];
    snprintf(threads, sizeof threads, "%d", E->threads);
    CHECK_INT(rv_conf_set(conf, "auto.offset.reset", "earliest", NULL), RV_OK);
    CHECK_INT(rv_conf_set(conf, "commit.interval.ms", "200", NULL), RV_OK);
    CHECK_INT(rv_conf_set(conf, "app.threads", threads, NULL), RV_OK);
    CHECK_INT(rv_conf_set(conf, "group.check.interval.ms", "50", NULL), RV_OK);
    CHECK_INT(rv_conf_set(conf, "state.dir", E->state, NULL), RV_OK);
    rv_error_t *err = NULL;
    rv_app_opts_t opts = {.broker_url = E->url, .group = group, .conf = conf, .log_cb = on_log};
    rv_app_t *app = rv_app_new(&opts, &err);
    CHECK_MSG(app != NULL, "rv_app_new(%s): %s", E->url, rv_error_message(err));
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return app;
}

/* ---- input ----------------------------------------------------------------------------------- */

#define NREC 360
#define NPART 3
#define CLOSE_TS 100000000

typedef struct in_s {
    char key[8];
    int64_t ts;
    int64_t v;
    int32_t part; /* learnt by reading the topic back */
    int64_t off;
} in_t;

static in_t in[NREC + NPART];
static int nin;

static void gen(uint64_t seed) {
    uint64_t x = seed * 0x9E3779B97F4A7C15u + 7;
    int64_t t = 1000;
    nin = 0;
    for (int i = 0; i < NREC; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        t += (int64_t)(x % 9);
        int64_t ts = t - (int64_t)(x >> 8) % 30;
        if ((x >> 20) % 16 == 0) {
            ts -= (int64_t)(x >> 24) % 200; /* late */
        }
        snprintf(in[nin].key, sizeof in[nin].key, "k%d", (int)((x >> 32) % 7));
        in[nin].ts = ts;
        in[nin].v = (int64_t)((x >> 40) % 100) - 30;
        nin++;
    }
}

/* Writes records [from, to) (and, when `closing`, a closing record to every partition). */
static void produce(rv_app_t *app, const char *topic, int from, int to, bool closing) {
    rv_error_t *err = NULL;
    rv_producer_t *p = rv_producer_new(rv_app_broker(app), NULL, &err);
    REQUIRE(p != NULL);
    for (int i = from; i < to; i++) {
        char val[64];
        snprintf(val, sizeof val, "{\"v\":%lld}", (long long)in[i].v);
        rv_record_t r = {.topic = topic,
                         .partition = RV_PARTITION_ANY,
                         .timestamp_ms = in[i].ts,
                         .key = in[i].key,
                         .key_len = strlen(in[i].key),
                         .value = val,
                         .value_len = strlen(val)};
        CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    }
    for (int32_t q = 0; closing && q < NPART; q++) {
        rv_record_t r = {.topic = topic,
                         .partition = q,
                         .timestamp_ms = CLOSE_TS,
                         .key = "zz",
                         .key_len = 2,
                         .value = "{\"v\":0}",
                         .value_len = 7};
        CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    }
    CHECK_INT(rv_producer_flush(p, 10000, &err), RV_OK);
    rv_error_destroy(err);
    rv_producer_close(p);
}

/* ---- output ---------------------------------------------------------------------------------- */

typedef struct lines_s {
    char **v;
    size_t n;
} lines_t;

static void lines_add(lines_t *l, const char *s) {
    l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = strdup(s);
}

static void lines_free(lines_t *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_line(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads every record of `topic` into "key<TAB>value<TAB>timestamp" lines (and, for the input,
 * fills in[].part/off by matching key, timestamp and value in order). */
static void read_all(rv_app_t *app, const char *topic, lines_t *out, bool input) {
    rv_broker_t *b = rv_app_broker(app);
    int32_t parts = 0;
    rv_error_t *err = NULL;
    if (rv_broker_describe_topic(b, topic, &parts, NULL, &err) != RV_OK) {
        CHECK_MSG(false, "describe %s: %s", topic, rv_error_message(err));
        rv_error_destroy(err);
        return;
    }
    rv_consumer_t *c = rv_consumer_new(b, NULL, &err);
    REQUIRE(c != NULL);
    rv_topic_partition_t tps[16];
    int64_t total = 0;
    for (int32_t i = 0; i < parts && i < 16; i++) {
        int64_t lo = 0, hi = 0;
        rv_broker_watermarks(b, topic, i, &lo, &hi, NULL);
        total += hi - lo;
        tps[i] = (rv_topic_partition_t){topic, i, RV_OFFSET_BEGINNING};
    }
    CHECK_INT(rv_consumer_assign(c, tps, (size_t)parts, NULL), RV_OK);
    bool used[NREC + NPART] = {false};
    int64_t got = 0, end = rv_clock_mono_ms() + 10000;
    while (got < total && rv_clock_mono_ms() < end) {
        const rv_record_t *rs;
        size_t n = 0;
        if (rv_consumer_poll(c, &rs, 256, &n, 50, NULL) != RV_OK) {
            break;
        }
        for (size_t i = 0; i < n; i++, got++) {
            const rv_record_t *r = &rs[i];
            char line[1024];
            snprintf(line, sizeof line, "%.*s\t%.*s\t%lld", (int)r->key_len, (const char *)r->key,
                     (int)r->value_len, (const char *)r->value, (long long)r->timestamp_ms);
            lines_add(out, line);
            if (!input) {
                continue;
            }
            for (int k = 0; k < nin; k++) { /* the first unused input record like it */
                char val[64];
                snprintf(val, sizeof val, "{\"v\":%lld}", (long long)in[k].v);
                if (!used[k] && in[k].ts == r->timestamp_ms && strlen(in[k].key) == r->key_len &&
                    memcmp(in[k].key, r->key, r->key_len) == 0 && strlen(val) == r->value_len &&
                    memcmp(val, r->value, r->value_len) == 0) {
                    used[k] = true;
                    in[k].part = r->partition;
                    in[k].off = r->offset;
                    break;
                }
            }
        }
    }
    CHECK_MSG(got == total, "read %lld of %lld records of %s", (long long)got, (long long)total,
              topic);
    rv_consumer_close(c);
    rv_error_destroy(err);
}

/* ---- the reference --------------------------------------------------------------------------- */

/* The input records of partition `p` in offset order (the closing record included). */
static int part_recs(int32_t p, in_t *out) {
    int n = 0;
    for (int64_t off = 0;; off++) {
        int found = -1;
        for (int i = 0; i < nin && found < 0; i++) {
            if (in[i].part == p && in[i].off == off) {
                found = i;
            }
        }
        if (found < 0) {
            break;
        }
        out[n++] = in[found];
    }
    return n;
}

static void emit_line(lines_t *l, const char *key, int64_t s, int64_t e, const in_t *r,
                      const int *idx, int n, bool collect) {
    char buf[4096];
    int64_t sum = 0, lo = 0, hi = 0;
    for (int i = 0; i < n; i++) {
        int64_t v = r[idx[i]].v;
        sum += v;
        lo = i == 0 || v < lo ? v : lo;
        hi = i == 0 || v > hi ? v : hi;
    }
    int o = snprintf(buf, sizeof buf, "%s\t{\"start\":%lld,\"end\":%lld,\"n\":%d,\"sum\":%lld", key,
                     (long long)s, (long long)e, n, (long long)sum);
    if (collect) {
        o += snprintf(buf + o, sizeof buf - (size_t)o, ",\"all\":[");
        for (int i = 0; i < n; i++) {
            o += snprintf(buf + o, sizeof buf - (size_t)o, "%s%lld", i ? "," : "",
                          (long long)r[idx[i]].v);
        }
        o += snprintf(buf + o, sizeof buf - (size_t)o, "]");
    } else {
        o += snprintf(buf + o, sizeof buf - (size_t)o, ",\"min\":%lld,\"max\":%lld", (long long)lo,
                      (long long)hi);
    }
    snprintf(buf + o, sizeof buf - (size_t)o, "}\t%lld", (long long)(e - 1));
    lines_add(l, buf);
}

static int64_t fdiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static long long late_want;

/* Tumbling (size, grace, final) and hopping (size, step, no grace, current) per partition. */
static void ref_windows(lines_t *tum, lines_t *hop, lines_t *ses) {
    static in_t r[NREC + NPART];
    static int idx[NREC + NPART];
    static int64_t wm[NREC + NPART];
    late_want = 0;
    for (int32_t p = 0; p < NPART; p++) {
        int n = part_recs(p, r);
        int64_t mx = INT64_MIN;
        for (int i = 0; i < n; i++) {
            mx = r[i].ts > mx ? r[i].ts : mx;
            wm[i] = mx - 20; /* tumbling's grace */
        }
        /* tumbling 100 ms, grace 20, final */
        for (int i = 0; i < n; i++) {
            int64_t s = fdiv(r[i].ts, 100) * 100, e = s + 100;
            late_want += e <= wm[i];
            bool seen = false;
            for (int j = 0; j < i && !seen; j++) {
                seen = strcmp(r[j].key, r[i].key) == 0 && fdiv(r[j].ts, 100) * 100 == s;
            }
            int j = 0;
            while (j < n && wm[j] < e) {
                j++;
            }
            if (seen || j == n) {
                continue;
            }
            int m = 0;
            for (int x = 0; x < j; x++) {
                if (strcmp(r[x].key, r[i].key) == 0 && r[x].ts >= s && r[x].ts < e) {
                    idx[m++] = x;
                }
            }
            if (m > 0) { /* a window only late records fell in never opened */
                emit_line(tum, r[i].key, s, e, r, idx, m, false);
            }
        }
        /* hopping 100/50, no grace, current: every update */
        mx = INT64_MIN;
        for (int i = 0; i < n; i++) {
            mx = r[i].ts > mx ? r[i].ts : mx;
            wm[i] = mx;
        }
        for (int i = 0; i < n; i++) {
            for (int64_t s = fdiv(r[i].ts, 50) * 50 - 50; s <= r[i].ts; s += 50) {
                int64_t e = s + 100;
                if (r[i].ts < s || r[i].ts >= e || e <= wm[i]) {
                    continue;
                }
                int m = 0;
                for (int x = 0; x <= i; x++) {
                    if (strcmp(r[x].key, r[i].key) == 0 && r[x].ts >= s && r[x].ts < e &&
                        e > wm[x]) {
                        idx[m++] = x;
                    }
                }
                emit_line(hop, r[i].key, s, e, r, idx, m, false);
            }
        }
        /* sessions, gap 40, no grace, final: simulated */
        typedef struct sess_s {
            int key_rec; /* a record of the key */
            int64_t s, last;
            int idx[NREC + NPART];
            int n;
            bool open;
        } sess_t;
        static sess_t ss[NREC + NPART];
        int ns = 0;
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < ns; k++) {
                if (ss[k].open && ss[k].last + 40 <= wm[i]) {
                    ss[k].open = false;
                    emit_line(ses, r[ss[k].key_rec].key, ss[k].s, ss[k].last + 1, r, ss[k].idx,
                              ss[k].n, true);
                }
            }
            if (r[i].ts < wm[i]) {
                continue;
            }
            sess_t *m = &ss[ns++];
            *m = (sess_t){.key_rec = i, .s = r[i].ts, .last = r[i].ts, .open = true};
            for (int k = 0; k < ns - 1; k++) {
                sess_t *o = &ss[k];
                if (o->open && strcmp(r[o->key_rec].key, r[i].key) == 0 && r[i].ts > o->s - 40 &&
                    r[i].ts < o->last + 40) {
                    memcpy(m->idx + m->n, o->idx, (size_t)o->n * sizeof *o->idx);
                    m->n += o->n;
                    m->s = o->s < m->s ? o->s : m->s;
                    m->last = o->last > m->last ? o->last : m->last;
                    o->open = false;
                }
            }
            m->idx[m->n++] = i;
            for (int a = 1; a < m->n; a++) { /* arrival order */
                for (int b = a; b > 0 && m->idx[b - 1] > m->idx[b]; b--) {
                    int t = m->idx[b];
                    m->idx[b] = m->idx[b - 1];
                    m->idx[b - 1] = t;
                }
            }
        }
    }
}

/* Count tumbling windows of 5 records and sliding windows of D = 30 ms (no grace, final), per
 * partition, by the definitions in docs/windows.md applied by brute force. */
static void ref_more(lines_t *cnt, lines_t *sld) {
    static in_t r[NREC + NPART];
    static int idx[NREC + NPART];
    static int64_t wm[NREC + NPART], cand[2 * (NREC + NPART)];
    const int64_t d = 30;
    for (int32_t p = 0; p < NPART; p++) {
        int n = part_recs(p, r);
        for (int i = 0; i < n; i++) { /* count windows: every 5th record of a key closes one */
            int nth = 0;
            for (int j = 0; j < i; j++) {
                nth += strcmp(r[j].key, r[i].key) == 0;
            }
            if (nth % 5 != 4) {
                continue;
            }
            int m = 0, seen = 0;
            int64_t lo = INT64_MAX, hi = INT64_MIN;
            for (int j = 0; j <= i; j++) {
                if (strcmp(r[j].key, r[i].key) == 0 && seen++ >= nth - 4) {
                    idx[m++] = j;
                    lo = r[j].ts < lo ? r[j].ts : lo;
                    hi = r[j].ts > hi ? r[j].ts : hi;
                }
            }
            emit_line(cnt, r[i].key, lo, hi + 1, r, idx, m, false);
        }
        int64_t mx = INT64_MIN;
        for (int i = 0; i < n; i++) {
            mx = r[i].ts > mx ? r[i].ts : mx;
            wm[i] = mx;
        }
        for (int i = 0; i < n; i++) { /* sliding: each (key, start) once, at its first record */
            bool first = true;
            for (int j = 0; j < i && first; j++) {
                first = strcmp(r[j].key, r[i].key) != 0;
            }
            if (!first) {
                continue;
            }
            int nc = 0;
            for (int j = 0; j < n; j++) {
                if (strcmp(r[j].key, r[i].key) == 0) {
                    cand[nc++] = r[j].ts - d;
                    cand[nc++] = r[j].ts + 1;
                }
            }
            for (int a = 0; a < nc; a++) {
                bool dup = false;
                for (int b = 0; b < a && !dup; b++) {
                    dup = cand[b] == cand[a];
                }
                int64_t s = cand[a];
                int j = 0;
                while (j < n && wm[j] < s + d + 1) {
                    j++;
                }
                if (dup || j == n) {
                    continue;
                }
                /* exists: a left window of an accepted record before j, or a right window with
                 * an accepted record in it */
                bool left = false, right_of = false;
                int m = 0;
                for (int x = 0; x < j; x++) {
                    if (strcmp(r[x].key, r[i].key) != 0 || r[x].ts + d + 1 <= wm[x]) {
                        continue;
                    }
                    left = left || r[x].ts - d == s;
                    right_of = right_of || r[x].ts + 1 == s;
                    if (r[x].ts >= s && r[x].ts <= s + d) {
                        idx[m++] = x;
                    }
                }
                if (left || (right_of && m > 0)) {
                    emit_line(sld, r[i].key, s, s + d + 1, r, idx, m, false);
                }
            }
        }
    }
}

/* ---- the application ------------------------------------------------------------------------- */

static _Atomic long long late_got;

static void on_late(void *opaque, rv_ctx_t *ctx, const rv_value_t *key, int64_t ts, int64_t start,
                    int64_t end) {
    atomic_fetch_add(&late_got, 1);
}

static const rv_agg_t aggs_minmax[] = {{.name = "n", .kind = RV_AGG_COUNT},
                                       {.name = "sum", .kind = RV_AGG_SUM, .field = "v"},
                                       {.name = "min", .kind = RV_AGG_MIN, .field = "v"},
                                       {.name = "max", .kind = RV_AGG_MAX, .field = "v"}};
static const rv_agg_t aggs_collect[] = {{.name = "n", .kind = RV_AGG_COUNT},
                                        {.name = "sum", .kind = RV_AGG_SUM, .field = "v"},
                                        {.name = "all", .kind = RV_AGG_COLLECT, .field = "v"}};

/* Builds the application with its three windows. */
static rv_app_t *build(const char *group, const char *src, const char *o1, const char *o2,
                       const char *o3, const char *o4, const char *o5) {
    rv_app_t *app = mk_app(group);
    if (!app) {
        return NULL;
    }
    rv_topic_opts_t to = {.key_serde = "string", .value_serde = "json", .partitions = NPART};
    rv_topic_t *tin = rv_app_topic(app, src, &to, NULL);
    rv_topic_t *t1 = rv_app_topic(app, o1, &to, NULL);
    rv_topic_t *t2 = rv_app_topic(app, o2, &to, NULL);
    rv_topic_t *t3 = rv_app_topic(app, o3, &to, NULL);
    rv_topic_t *t4 = rv_app_topic(app, o4, &to, NULL);
    rv_topic_t *t5 = rv_app_topic(app, o5, &to, NULL);
    rv_df_t *df = rv_app_dataframe(app, tin);
    rv_window_opts_t tum = {.name = "tumbling",
                            .type = RV_WINDOW_TUMBLING,
                            .size = 100,
                            .grace_ms = 20,
                            .emit = RV_EMIT_FINAL,
                            .on_late = on_late};
    rv_window_opts_t hop = {.name = "hopping",
                            .type = RV_WINDOW_HOPPING,
                            .size = 100,
                            .step = 50,
                            .emit = RV_EMIT_CURRENT};
    rv_window_opts_t ses = {.name = "sessions", .type = RV_WINDOW_SESSION, .size = 40};
    CHECK(rv_df_to_topic(rv_df_window(df, &tum, aggs_minmax, 4), t1) != NULL);
    CHECK(rv_df_to_topic(rv_df_window(df, &hop, aggs_minmax, 4), t2) != NULL);
    CHECK(rv_df_to_topic(rv_df_window(df, &ses, aggs_collect, 3), t3) != NULL);
    rv_window_opts_t cnt = {.name = "count5", .type = RV_WINDOW_COUNT_TUMBLING, .size = 5};
    rv_window_opts_t sld = {.name = "sliding30", .type = RV_WINDOW_SLIDING, .size = 30};
    CHECK(rv_df_to_topic(rv_df_window(df, &cnt, aggs_minmax, 4), t4) != NULL);
    CHECK(rv_df_to_topic(rv_df_window(df, &sld, aggs_minmax, 4), t5) != NULL);
    return app;
}

static void run_until_end(rv_app_t *app) {
    rv_run_opts_t ro = {.until_end = true, .timeout_ms = 60000};
    rv_error_t *err = NULL;
    rv_err_t e = rv_app_run(app, &ro, &err);
    CHECK_MSG(e == RV_OK, "%s: run: %s", E->name, rv_error_message(err));
    rv_error_destroy(err);
}

static void compare(const char *what, lines_t *got, lines_t *want) {
    qsort(got->v, got->n, sizeof *got->v, cmp_line);
    qsort(want->v, want->n, sizeof *want->v, cmp_line);
    CHECK_MSG(got->n == want->n, "%s on %s: %zu records, expected %zu", what, E->name, got->n,
              want->n);
    int shown = 0;
    for (size_t i = 0; i < got->n && i < want->n && shown < 3; i++) {
        if (strcmp(got->v[i], want->v[i]) != 0) {
            CHECK_MSG(false, "%s on %s #%zu:\n  got  %s\n  want %s", what, E->name, i, got->v[i],
                      want->v[i]);
            shown++;
        }
    }
}

/* The three windows over the input, in one run or (`split`) two runs of two instances. */
static void test_windows(bool split) {
    char g[64], src[64], o1[64], o2[64], o3[64], o4[64], o5[64];
    int s = ++g_seq;
    snprintf(g, sizeof g, "win-%d-%d", (int)getpid(), s);
    snprintf(src, sizeof src, "in-%d", s);
    snprintf(o1, sizeof o1, "tum-%d", s);
    snprintf(o2, sizeof o2, "hop-%d", s);
    snprintf(o3, sizeof o3, "ses-%d", s);
    snprintf(o4, sizeof o4, "cnt-%d", s);
    snprintf(o5, sizeof o5, "sld-%d", s);
    gen((uint64_t)s);
    atomic_store(&late_got, 0);
    rv_app_t *app = build(g, src, o1, o2, o3, o4, o5);
    REQUIRE(app != NULL);
    CHECK_INT(rv_broker_create_topic(rv_app_broker(app), src, NPART, NULL, NULL), RV_OK);
    produce(app, src, 0, split ? nin / 2 : nin, !split);
    run_until_end(app);
    if (split) {
        rv_app_destroy(app);
        app = build(g, src, o1, o2, o3, o4, o5);
        REQUIRE(app != NULL);
        produce(app, src, nin / 2, nin, true);
        run_until_end(app);
    }
    for (int32_t q = 0; q < NPART; q++) { /* the closing records, for the reference */
        in[nin + q] = (in_t){.key = "zz", .ts = CLOSE_TS, .v = 0};
    }
    nin += NPART;
    lines_t inl = {0}, got1 = {0}, got2 = {0}, got3 = {0}, w1 = {0}, w2 = {0}, w3 = {0};
    lines_t got4 = {0}, got5 = {0}, w4 = {0}, w5 = {0};
    read_all(app, src, &inl, true);
    read_all(app, o1, &got1, false);
    read_all(app, o2, &got2, false);
    read_all(app, o3, &got3, false);
    read_all(app, o4, &got4, false);
    read_all(app, o5, &got5, false);
    ref_windows(&w1, &w2, &w3);
    ref_more(&w4, &w5);
    CHECK_MSG(w1.n > 20 && w2.n > 100 && w3.n > 10, "the reference is too small: %zu %zu %zu", w1.n,
              w2.n, w3.n);
    compare("tumbling", &got1, &w1);
    compare("hopping", &got2, &w2);
    compare("sessions", &got3, &w3);
    compare("count", &got4, &w4);
    compare("sliding", &got5, &w5);
    CHECK_MSG(w4.n > 20 && w5.n > 100, "the reference is too small: %zu %zu", w4.n, w5.n);
    CHECK_MSG(atomic_load(&late_got) == late_want, "%s: %lld late reports, expected %lld", E->name,
              (long long)atomic_load(&late_got), late_want);
    CHECK_MSG(late_want > 0, "no late records in the input");
    lines_free(&inl);
    lines_free(&got1);
    lines_free(&got2);
    lines_free(&got3);
    lines_free(&w1);
    lines_free(&w2);
    lines_free(&w3);
    lines_free(&got4);
    lines_free(&got5);
    lines_free(&w4);
    lines_free(&w5);
    rv_app_destroy(app);
}

static void test_one_run(void) {
    test_windows(false);
}

static void test_two_runs(void) {
    test_windows(true);
}

/* A window closes on wall-clock time when its key goes idle, with no later record at all. */
static void test_idle(void) {
    char g[64], src[64], out[64];
    int s = ++g_seq;
    snprintf(g, sizeof g, "idle-%d-%d", (int)getpid(), s);
    snprintf(src, sizeof src, "idle-in-%d", s);
    snprintf(out, sizeof out, "idle-out-%d", s);
    rv_app_t *app = mk_app(g);
    REQUIRE(app != NULL);
    rv_topic_opts_t to = {.key_serde = "string", .value_serde = "json", .partitions = 1};
    rv_topic_t *tin = rv_app_topic(app, src, &to, NULL);
    rv_topic_t *tout = rv_app_topic(app, out, &to, NULL);
    rv_window_opts_t wo = {.name = "idle",
                           .type = RV_WINDOW_TUMBLING,
                           .size = 60000,
                           .emit = RV_EMIT_FINAL,
                           .idle_timeout_ms = 300};
    static const rv_agg_t mean[] = {{.name = "mean", .kind = RV_AGG_MEAN, .field = "v"}};
    CHECK(rv_df_to_topic(rv_df_window(rv_app_dataframe(app, tin), &wo, mean, 1), tout) != NULL);
    CHECK_INT(rv_broker_create_topic(rv_app_broker(app), src, 1, NULL, NULL), RV_OK);
    nin = 2;
    in[0] = (in_t){.key = "a", .ts = 120000, .v = 3};
    in[1] = (in_t){.key = "a", .ts = 130000, .v = 4};
    produce(app, src, 0, 2, false);
    rv_run_opts_t ro = {.timeout_ms = 2500};
    rv_error_t *err = NULL;
    CHECK_INT(rv_app_run(app, &ro, &err), RV_OK);
    rv_error_destroy(err);
    lines_t got = {0};
    read_all(app, out, &got, false);
    CHECK_INT(got.n, 1);
    CHECK_STR(got.n ? got.v[0] : "", "a\t{\"start\":120000,\"end\":180000,\"mean\":3.5}\t179999");
    lines_free(&got);
    rv_app_destroy(app);
}

/* Keys read with the default "bytes" serialiser come out of windows closed by another key's
 * record as the same bytes. */
static void test_bytes_keys(void) {
    char g[64], src[64], out[64];
    int s = ++g_seq;
    snprintf(g, sizeof g, "bytes-%d-%d", (int)getpid(), s);
    snprintf(src, sizeof src, "bytes-in-%d", s);
    snprintf(out, sizeof out, "bytes-out-%d", s);
    rv_app_t *app = mk_app(g);
    REQUIRE(app != NULL);
    rv_topic_opts_t to = {.partitions = 1}; /* bytes keys, JSON values */
    rv_topic_t *tin = rv_app_topic(app, src, &to, NULL);
    rv_topic_t *tout = rv_app_topic(app, out, &to, NULL);
    rv_window_opts_t wo = {.name = "bytes", .type = RV_WINDOW_TUMBLING, .size = 100};
    CHECK(rv_df_to_topic(rv_df_window(rv_app_dataframe(app, tin), &wo, aggs_minmax, 4), tout) !=
          NULL);
    CHECK_INT(rv_broker_create_topic(rv_app_broker(app), src, 1, NULL, NULL), RV_OK);
    nin = 3;
    in[0] = (in_t){.key = "a\x01", .ts = 10, .v = 3};
    in[1] = (in_t){.key = "b\xff", .ts = 20, .v = 4};
    in[2] = (in_t){.key = "c", .ts = 500, .v = 5};
    produce(app, src, 0, 3, false);
    run_until_end(app);
    lines_t got = {0};
    read_all(app, out, &got, false);
    qsort(got.v, got.n, sizeof *got.v, cmp_line);
    CHECK_INT(got.n, 2);
    CHECK_STR(got.n > 0 ? got.v[0] : "",
              "a\x01\t{\"start\":0,\"end\":100,\"n\":1,\"sum\":3,\"min\":3,\"max\":3}\t99");
    CHECK_STR(got.n > 1 ? got.v[1] : "",
              "b\xff\t{\"start\":0,\"end\":100,\"n\":1,\"sum\":4,\"min\":4,\"max\":4}\t99");
    lines_free(&got);
    rv_app_destroy(app);
}

/* Bad windows make building fail with an error naming the operator and the reason. */
static void test_build_errors(void) {
    rv_app_t *app = mk_app("win-bad");
    REQUIRE(app != NULL);
    rv_topic_opts_t to = {.key_serde = "string", .value_serde = "json", .partitions = 1};
    rv_topic_t *tin = rv_app_topic(app, "bad-in", &to, NULL);
    rv_df_t *df = rv_app_dataframe(app, tin);
    rv_window_opts_t wo = {.name = "same", .type = RV_WINDOW_TUMBLING, .size = 10};
    CHECK(rv_df_window(df, &wo, aggs_minmax, 4) != NULL);
    CHECK(rv_df_window(df, &wo, aggs_minmax, 4) == NULL); /* the store name is taken */
    rv_window_opts_t bad = {.name = "hop", .type = RV_WINDOW_HOPPING, .size = 10, .step = 20};
    CHECK(rv_df_window(df, &bad, aggs_minmax, 4) == NULL);
    CHECK(rv_df_window(NULL, &wo, aggs_minmax, 4) == NULL);
    rv_run_opts_t ro = {.until_end = true, .timeout_ms = 5000};
    rv_error_t *err = NULL;
    CHECK_INT(rv_app_run(app, &ro, &err), RV_ERR_INVALID_ARG);
    const char *msg = rv_error_message(err);
    CHECK_MSG(msg && strstr(msg, "window") && strstr(msg, "'same' is already used"), "message: %s",
              msg ? msg : "(none)");
    rv_error_destroy(err);
    rv_app_destroy(app);
}

static void run_env(env_t *e) {
    E = e;
    fprintf(stderr, "-- %s\n", e->name);
    RV_RUN(test_one_run);
    if (strncmp(e->url, "local:", 6) == 0) {
        RV_RUN(test_two_runs);
    }
    RV_RUN(test_idle);
    if (e->threads == 1 && strcmp(e->url, "memory:") == 0) {
        RV_RUN(test_build_errors);
        RV_RUN(test_bytes_keys);
    }
}

int main(void) {
    char dir[] = "/tmp/rv-window-app-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    env_t envs[4] = {{.name = "memory", .url = "memory:", .threads = 1},
                     {.name = "memory, 2 workers", .url = "memory:", .threads = 2},
                     {.name = "local", .threads = 1},
                     {.name = "local, 2 workers", .threads = 2}};
    for (int i = 0; i < 4; i++) {
        if (i >= 2) {
            snprintf(envs[i].url, sizeof envs[i].url, "local:%s/log%d", dir, i);
        }
        snprintf(envs[i].state, sizeof envs[i].state, "%s/state%d", dir, i);
        run_env(&envs[i]);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    return rv_test_finish();
}
