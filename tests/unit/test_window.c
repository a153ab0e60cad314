/*
 * test_window.c: the window logic (src/stream/window.c, agg.c) over the in-memory store, against
 * references computed here by plain loops over the input.
 *
 * For every window type, random records of a few keys arrive out of order, some of them late;
 * each run's emitted windows (and late reports) are compared with what the definitions in
 * docs/windows.md give when applied by brute force to the input: for each candidate window,
 * find the record whose watermark closed it and aggregate the records that arrived before. Both
 * emission modes, grace, idle closing on wall-clock time, custom aggregations and the accumulator
 * bytes are covered. Nothing here uses the runtime: test_window_app.c does.
 */
#include <limits.h>

#include "rivulet/json.h"
#include "rv_test.h"
#include "stream/window_int.h"

/* ---- input ----------------------------------------------------------------------------------- */

#define MAXN 700

typedef struct rec_s {
    int key; /* 0..K-1, or 99 for the closing record */
    int64_t ts;
    int64_t v; /* the aggregated field */
} rec_t;

static rec_t in[MAXN];
static int nin;

static uint64_t rng_state;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* n records of k keys, time moving ~step per record, out of order by up to `jitter`, and 5 %
 * very late (by up to `late`); a final record of key 99 far ahead closes everything else. */
static void gen(uint64_t seed, int n, int k, int64_t step, int64_t jitter, int64_t late) {
    rng_state = seed * 2654435761u + 1;
    int64_t t = 1000;
    nin = 0;
    for (int i = 0; i < n; i++) {
        t += (int64_t)(rnd() % (uint64_t)(2 * step + 1));
        int64_t ts = t - (int64_t)(rnd() % (uint64_t)(jitter + 1));
        if (rnd() % 20 == 0) {
            ts -= (int64_t)(rnd() % (uint64_t)(late + 1));
        }
        in[nin++] = (rec_t){(int)(rnd() % (uint64_t)k), ts, (int64_t)(rnd() % 101) - 50};
    }
    in[nin++] = (rec_t){99, t + 1000000, 0};
}

/* ---- a custom aggregation: the sum of squares ------------------------------------------------ */

static void sq_init(void *acc, void *opaque) {
    *(int64_t *)acc = 0;
}
static rv_err_t sq_add(void *acc, const rv_value_t *v, int64_t ts, int64_t seq, rv_ctx_t *ctx,
                       void *opaque) {
    if (v && rv_value_type(v) == RV_TYPE_INT) {
        *(int64_t *)acc += rv_value_int(v) * rv_value_int(v);
    }
    return RV_OK;
}
static void sq_merge(void *acc, const void *o, void *opaque) {
    *(int64_t *)acc += *(const int64_t *)o;
}
static rv_value_t *sq_result(const void *acc, rv_arena_t *a, void *opaque) {
    return rv_value_new_int(a, *(const int64_t *)acc);
}
static rv_err_t sq_ser(const void *acc, rv_strbuf_t *out, void *opaque) {
    return rv_strbuf_append(out, acc, 8);
}
static rv_err_t sq_de(void *acc, const void *d, size_t len, void *opaque) {
    if (len != 8) {
        return RV_ERR_CORRUPT;
    }
    memcpy(acc, d, 8);
    return RV_OK;
}
static const rv_agg_ops_t sq_ops = {.version = 1,
                                    .acc_size = 8,
                                    .init = sq_init,
                                    .add = sq_add,
                                    .merge = sq_merge,
                                    .result = sq_result,
                                    .serialise = sq_ser,
                                    .deserialise = sq_de};

static const rv_agg_t all_aggs[] = {
    {.name = "count", .kind = RV_AGG_COUNT},
    {.name = "sum", .kind = RV_AGG_SUM, .field = "v"},
    {.name = "mean", .kind = RV_AGG_MEAN, .field = "v"},
    {.name = "min", .kind = RV_AGG_MIN, .field = "v"},
    {.name = "max", .kind = RV_AGG_MAX, .field = "v"},
    {.name = "first", .kind = RV_AGG_FIRST, .field = "v"},
    {.name = "last", .kind = RV_AGG_LAST, .field = "v"},
    {.name = "earliest", .kind = RV_AGG_EARLIEST, .field = "v"},
    {.name = "latest", .kind = RV_AGG_LATEST, .field = "v"},
    {.name = "collect", .kind = RV_AGG_COLLECT, .field = "v"},
    {.name = "sq", .kind = RV_AGG_CUSTOM, .field = "v", .ops = &sq_ops},
};

/* ---- what a run emitted ---------------------------------------------------------------------- */

#define MAXOUT 20000

typedef struct out_s {
    char *text; /* "<key>|<value JSON>" */
} out_t;

typedef struct outs_s {
    out_t *o;
    int n;
} outs_t;

static outs_t got, want, got_late, want_late;

static void outs_add(outs_t *s, const char *text) {
    if (!s->o) {
        s->o = calloc(MAXOUT, sizeof *s->o);
    }
    if (s->n < MAXOUT) {
        s->o[s->n++].text = strdup(text);
    }
}

static void outs_clear(outs_t *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->o[i].text);
    }
    free(s->o);
    s->o = NULL;
    s->n = 0;
}

static int cmp_out(const void *a, const void *b) {
    return strcmp(((const out_t *)a)->text, ((const out_t *)b)->text);
}

/* Compares two lists (sorted first unless `ordered`). */
static void compare(const char *what, outs_t *a, outs_t *b, bool ordered) {
    if (!ordered) {
        qsort(a->o, (size_t)a->n, sizeof *a->o, cmp_out);
        qsort(b->o, (size_t)b->n, sizeof *b->o, cmp_out);
    }
    CHECK_MSG(a->n == b->n, "%s: %d emitted, %d expected", what, a->n, b->n);
    int n = a->n < b->n ? a->n : b->n;
    int shown = 0;
    for (int i = 0; i < n && shown < 3; i++) {
        if (strcmp(a->o[i].text, b->o[i].text) != 0) {
            CHECK_MSG(false, "%s #%d:\n  got  %s\n  want %s", what, i, a->o[i].text, b->o[i].text);
            shown++;
        }
    }
}

static rv_err_t on_emit(void *arg, rv_ctx_t *ctx, const char *key, size_t klen, int64_t start,
                        int64_t end, rv_value_t *value) {
    rv_strbuf_t sb = RV_STRBUF_INIT;
    rv_value_t *k = NULL;
    CHECK(rv__window_key_decode(ctx->arena, key, klen, &k) == RV_OK);
    if (k) {
        rv_json_write(&sb, k, RV_JSON_COMPACT, NULL);
    }
    rv_strbuf_append(&sb, "|", 1);
    rv_json_write(&sb, value, RV_JSON_COMPACT, NULL);
    outs_add(&got, sb.data);
    rv_strbuf_free(&sb);
    return RV_OK;
}

static void on_late(void *opaque, rv_ctx_t *ctx, const rv_value_t *key, int64_t ts, int64_t start,
                    int64_t end) {
    char b[128];
    snprintf(b, sizeof b, "%lld %lld %lld %lld", (long long)rv_value_int(key), (long long)ts,
             (long long)start, (long long)end);
    outs_add(&got_late, b);
}

/* ---- the reference's aggregates -------------------------------------------------------------- */

/* The expected output for records idx[0..n) (arrival order) of `key` with bounds [s, e). */
static void ref_emit(outs_t *to, int key, int64_t s, int64_t e, const int *idx, int n) {
    rv_arena_t *a = rv_arena_new(4096);
    rv_value_t *o = rv_value_new_object(a, 16);
    int64_t sum = 0, sq = 0, mn = 0, mx = 0;
    int ie = -1, il = -1;
    rv_value_t *col = rv_value_new_array(a, (size_t)n);
    for (int i = 0; i < n; i++) {
        const rec_t *r = &in[idx[i]];
        sum += r->v;
        sq += r->v * r->v;
        mn = i == 0 || r->v < mn ? r->v : mn;
        mx = i == 0 || r->v > mx ? r->v : mx;
        if (ie < 0 || r->ts < in[ie].ts) {
            ie = idx[i];
        }
        if (il < 0 || r->ts >= in[il].ts) {
            il = idx[i];
        }
        rv_value_append(a, col, rv_value_new_int(a, r->v));
    }
    rv_value_set(a, o, "start", 5, rv_value_new_int(a, s));
    rv_value_set(a, o, "end", 3, rv_value_new_int(a, e));
    rv_value_set(a, o, "count", 5, rv_value_new_int(a, n));
    rv_value_set(a, o, "sum", 3, rv_value_new_int(a, sum));
    rv_value_set(a, o, "mean", 4, rv_value_new_double(a, (double)sum / n));
    rv_value_set(a, o, "min", 3, rv_value_new_int(a, mn));
    rv_value_set(a, o, "max", 3, rv_value_new_int(a, mx));
    rv_value_set(a, o, "first", 5, rv_value_new_int(a, in[idx[0]].v));
    rv_value_set(a, o, "last", 4, rv_value_new_int(a, in[idx[n - 1]].v));
    rv_value_set(a, o, "earliest", 8, rv_value_new_int(a, in[ie].v));
    rv_value_set(a, o, "latest", 6, rv_value_new_int(a, in[il].v));
    rv_value_set(a, o, "collect", 7, col);
    rv_value_set(a, o, "sq", 2, rv_value_new_int(a, sq));
    rv_strbuf_t sb = RV_STRBUF_INIT;
    rv_strbuf_appendf(&sb, "%d|", key);
    rv_json_write(&sb, o, RV_JSON_COMPACT, NULL);
    outs_add(to, sb.data);
    rv_strbuf_free(&sb);
    rv_arena_destroy(a);
}

static bool g_cached; /* run the logic through the write-back cache */

static int64_t wm_at[MAXN]; /* the watermark after record i */

static void ref_watermarks(int64_t grace) {
    int64_t mx = INT64_MIN;
    for (int i = 0; i < nin; i++) {
        mx = in[i].ts > mx ? in[i].ts : mx;
        wm_at[i] = mx - grace;
    }
}

/* The first record whose watermark reaches `c` (nin when none). */
static int closer(int64_t c) {
    for (int i = 0; i < nin; i++) {
        if (wm_at[i] >= c) {
            return i;
        }
    }
    return nin;
}

static int64_t fdiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Tumbling (step == size) and hopping windows. */
static void ref_fixed(int64_t size, int64_t step, bool current) {
    static int idx[MAXN];
    if (current) {
        for (int i = 0; i < nin; i++) {
            for (int64_t s = fdiv(in[i].ts - size, step) * step; s <= in[i].ts; s += step) {
                int64_t e = s + size;
                if (!(s <= in[i].ts && in[i].ts < e)) {
                    continue;
                }
                if (e <= wm_at[i]) {
                    char b[128];
                    snprintf(b, sizeof b, "%d %lld %lld %lld", in[i].key, (long long)in[i].ts,
                             (long long)s, (long long)e);
                    outs_add(&want_late, b);
                    continue;
                }
                int n = 0;
                for (int j = 0; j <= i; j++) {
                    if (in[j].key == in[i].key && in[j].ts >= s && in[j].ts < e && e > wm_at[j]) {
                        idx[n++] = j;
                    }
                }
                ref_emit(&want, in[i].key, s, e, idx, n);
            }
        }
        return;
    }
    /* final: every (key, start) once */
    for (int i = 0; i < nin; i++) {
        for (int64_t s = fdiv(in[i].ts - size, step) * step; s <= in[i].ts; s += step) {
            int64_t e = s + size;
            if (!(s <= in[i].ts && in[i].ts < e)) {
                continue;
            }
            if (e <= wm_at[i]) {
                char b[128];
                snprintf(b, sizeof b, "%d %lld %lld %lld", in[i].key, (long long)in[i].ts,
                         (long long)s, (long long)e);
                outs_add(&want_late, b);
            }
            bool seen = false; /* handle (key, s) at its first record only */
            for (int j = 0; j < i && !seen; j++) {
                seen = in[j].key == in[i].key && in[j].ts >= s && in[j].ts < e;
            }
            if (seen) {
                continue;
            }
            int j = closer(e), n = 0;
            for (int x = 0; x < j; x++) {
                if (in[x].key == in[i].key && in[x].ts >= s && in[x].ts < e) {
                    idx[n++] = x;
                }
            }
            if (j < nin && n > 0) {
                ref_emit(&want, in[i].key, s, e, idx, n);
            }
        }
    }
}

/* Sessions, simulated with lists of records. */
static void ref_session(int64_t gap, bool current) {
    typedef struct sess_s {
        int key;
        int64_t s, last;
        int idx[MAXN];
        int n;
        bool open;
    } sess_t;
    static sess_t ss[MAXN];
    int ns = 0;
    for (int i = 0; i < nin; i++) {
        int64_t w = wm_at[i];
        for (;;) { /* close in (close time, key, start) order */
            int best = -1;
            for (int k = 0; k < ns; k++) {
                if (!ss[k].open || ss[k].last + gap > w) {
                    continue;
                }
                if (best < 0 || ss[k].last + gap < ss[best].last + gap ||
                    (ss[k].last + gap == ss[best].last + gap && ss[k].key < ss[best].key)) {
                    best = k;
                }
            }
            if (best < 0) {
                break;
            }
            ss[best].open = false;
            if (!current) {
                ref_emit(&want, ss[best].key, ss[best].s, ss[best].last + 1, ss[best].idx,
                         ss[best].n);
            }
        }
        if (in[i].ts < w) {
            char b[128];
            snprintf(b, sizeof b, "%d %lld %lld %lld", in[i].key, (long long)in[i].ts,
                     (long long)in[i].ts, (long long)in[i].ts + 1);
            outs_add(&want_late, b);
            continue;
        }
        sess_t *m = &ss[ns++];
        m->key = in[i].key;
        m->s = m->last = in[i].ts;
        m->n = 0;
        m->open = true;
        for (int k = 0; k < ns - 1; k++) {
            sess_t *o = &ss[k];
            if (o->open && o->key == in[i].key && in[i].ts > o->s - gap &&
                in[i].ts < o->last + gap) {
                for (int x = 0; x < o->n; x++) {
                    m->idx[m->n++] = o->idx[x];
                }
                m->s = o->s < m->s ? o->s : m->s;
                m->last = o->last > m->last ? o->last : m->last;
                o->open = false;
            }
        }
        m->idx[m->n++] = i;
        /* arrival order */
        for (int a = 1; a < m->n; a++) {
            for (int b = a; b > 0 && m->idx[b - 1] > m->idx[b]; b--) {
                int t = m->idx[b];
                m->idx[b] = m->idx[b - 1];
                m->idx[b - 1] = t;
            }
        }
        if (current) {
            ref_emit(&want, m->key, m->s, m->last + 1, m->idx, m->n);
        }
    }
}

/* Sliding windows of difference d, from the definition. */
static bool accepted(int i, int64_t d) {
    return in[i].ts + d + 1 > wm_at[i];
}

/* Whether sliding window [s, s+d] of `key` exists given the accepted records before `j`. */
static bool sl_exists(int key, int64_t s, int64_t d, int j) {
    bool left = false, right_of = false, inside = false;
    for (int x = 0; x < j; x++) {
        if (in[x].key != key || !accepted(x, d)) {
            continue;
        }
        left = left || in[x].ts - d == s;
        right_of = right_of || in[x].ts + 1 == s;
        inside = inside || (in[x].ts >= s && in[x].ts <= s + d);
    }
    return left || (right_of && inside);
}

static void ref_sliding(int64_t d, bool current) {
    static int idx[MAXN];
    static int64_t cand[2 * MAXN];
    for (int key = 0; key < 100; key++) {
        int nc = 0;
        for (int i = 0; i < nin; i++) {
            if (in[i].key == key) {
                cand[nc++] = in[i].ts - d;
                cand[nc++] = in[i].ts + 1;
            }
        }
        if (nc == 0) {
            continue;
        }
        for (int a = 1; a < nc; a++) { /* sort, then drop duplicates */
            for (int b = a; b > 0 && cand[b - 1] > cand[b]; b--) {
                int64_t t = cand[b];
                cand[b] = cand[b - 1];
                cand[b - 1] = t;
            }
        }
        int u = 0;
        for (int a = 0; a < nc; a++) {
            if (u == 0 || cand[u - 1] != cand[a]) {
                cand[u++] = cand[a];
            }
        }
        nc = u;
        if (current) {
            continue;
        }
        for (int a = 0; a < nc; a++) {
            int64_t s = cand[a];
            int j = closer(s + d + 1);
            if (j == nin || !sl_exists(key, s, d, j)) {
                continue;
            }
            int n = 0;
            for (int x = 0; x < j; x++) {
                if (in[x].key == key && accepted(x, d) && in[x].ts >= s && in[x].ts <= s + d) {
                    idx[n++] = x;
                }
            }
            ref_emit(&want, key, s, s + d + 1, idx, n);
        }
    }
    if (!current) {
        return;
    }
    for (int i = 0; i < nin; i++) {
        if (!accepted(i, d)) {
            continue;
        }
        /* open windows holding in[i] after it: starts in [t-d, t], by start */
        for (int64_t s = in[i].ts - d; s <= in[i].ts; s++) {
            if (s + d + 1 <= wm_at[i] || !sl_exists(in[i].key, s, d, i + 1)) {
                continue;
            }
            int n = 0;
            for (int x = 0; x <= i; x++) {
                if (in[x].key == in[i].key && accepted(x, d) && in[x].ts >= s &&
                    in[x].ts <= s + d) {
                    idx[n++] = x;
                }
            }
            ref_emit(&want, in[i].key, s, s + d + 1, idx, n);
        }
    }
}

/* Count windows: the key's n-th record belongs to windows k with k*step <= n < k*step+size. */
static void ref_count(int64_t size, int64_t step, bool current) {
    static int idx[MAXN], nth[MAXN];
    int seen[100] = {0};
    for (int i = 0; i < nin; i++) {
        nth[i] = seen[in[i].key]++;
    }
    for (int i = 0; i < nin; i++) {
        int64_t n = nth[i];
        for (int64_t k = 0; k * step <= n; k++) {
            if (n >= k * step + size) {
                continue;
            }
            bool full = n == k * step + size - 1;
            if (!current && !full) {
                continue;
            }
            int m = 0;
            int64_t lo = INT64_MAX, hi = INT64_MIN;
            for (int x = 0; x <= i; x++) {
                if (in[x].key == in[i].key && nth[x] >= k * step && nth[x] < k * step + size) {
                    idx[m++] = x;
                    lo = in[x].ts < lo ? in[x].ts : lo;
                    hi = in[x].ts > hi ? in[x].ts : hi;
                }
            }
            ref_emit(&want, in[i].key, lo, hi + 1, idx, m);
        }
    }
}

/* ---- running the logic ----------------------------------------------------------------------- */

/* Runs the input through a window of type/size/step/grace/emit on a memory store. */
static void run(rv_window_type_t type, int64_t size, int64_t step, int64_t grace, rv_emit_t emit) {
    rv_arena_t *ga = rv_arena_new(4096), *ba = rv_arena_new(1 << 16);
    rv__window_t w = {.opts = {.name = "w",
                               .type = type,
                               .size = size,
                               .step = step,
                               .grace_ms = grace,
                               .emit = emit,
                               .on_late = on_late}};
    char why[256];
    if (rv__window_check(&w.opts, why, sizeof why) != RV_OK ||
        rv__aggset_build(&w.aggs, ga, all_aggs, RV_ARRAY_LEN(all_aggs), why, sizeof why) != RV_OK) {
        CHECK_MSG(false, "%s", why);
        return;
    }
    rv__memstore_t *m = rv__memstore_new();
    rv__wcache_t *cache = NULL;
    rv__wstore_t store = {&rv__memstore_ops, m};
    if (g_cached) { /* the write-back cache in front, flushed and forgotten every 37 records */
        cache = rv__wcache_new();
        rv__wcache_bind(cache, store);
        store = (rv__wstore_t){&rv__wcache_ops, cache};
    }
    rv__wpart_t p;
    REQUIRE(rv__wpart_init(&p, &w, store) == RV_OK);
    struct rv_ctx_s ctx = {.arena = ba};
    for (int i = 0; i < nin; i++) {
        if (cache && i % 37 == 36) {
            CHECK(rv__wcache_flush(cache) == RV_OK);
            rv__wcache_clear(cache);
            p.next_close = INT64_MIN;
            p.closed_upto = INT64_MIN;
        }
        rv_value_t *key = rv_value_new_int(ba, in[i].key);
        rv_value_t *val = rv_value_new_object(ba, 2);
        rv_value_set(ba, val, "v", 1, rv_value_new_int(ba, in[i].v));
        rv_err_t e = rv__window_process(&w, &p, &ctx, key, val, in[i].ts, i, 0, on_emit, NULL);
        CHECK_MSG(e == RV_OK, "record %d: %s", i, ctx.fail_msg);
        if (i % 64 == 0) {
            rv_arena_reset(ba);
        }
    }
    if (cache) {
        CHECK(rv__wcache_flush(cache) == RV_OK);
        CHECK_INT(rv__wcache_dirty(cache), 0);
    }
    rv__wpart_free(&p, &w);
    rv__wcache_destroy(cache);
    rv__memstore_destroy(m);
    rv_arena_destroy(ga);
    rv_arena_destroy(ba);
}

static const char *type_name(rv_window_type_t t) {
    static const char *n[] = {"tumbling",       "hopping",       "sliding",
                              "count_tumbling", "count_hopping", "session"};
    return n[t];
}

/* One randomised comparison. */
static void one(rv_window_type_t type, int64_t size, int64_t step, int64_t grace, rv_emit_t emit,
                uint64_t seed, int n, int keys) {
    bool cur = emit == RV_EMIT_CURRENT;
    gen(seed, n, keys, 3, 40, 400);
    if (type == RV_WINDOW_COUNT_TUMBLING || type == RV_WINDOW_COUNT_HOPPING) {
        nin--; /* no closing record: counts close windows */
    }
    ref_watermarks(grace);
    switch (type) {
        case RV_WINDOW_TUMBLING:
            ref_fixed(size, size, cur);
            break;
        case RV_WINDOW_HOPPING:
            ref_fixed(size, step, cur);
            break;
        case RV_WINDOW_SLIDING:
            ref_sliding(size, cur);
            break;
        case RV_WINDOW_SESSION:
            ref_session(size, cur);
            break;
        case RV_WINDOW_COUNT_TUMBLING:
            ref_count(size, size, cur);
            break;
        case RV_WINDOW_COUNT_HOPPING:
            ref_count(size, step, cur);
            break;
    }
    run(type, size, step, grace, emit);
    char what[128];
    snprintf(what, sizeof what, "%s size %lld step %lld grace %lld %s seed %llu", type_name(type),
             (long long)size, (long long)step, (long long)grace, cur ? "current" : "final",
             (unsigned long long)seed);
    CHECK_MSG(want.n > 3, "%s: the reference emitted only %d windows", what, want.n);
    compare(what, &got, &want, cur);
    if (type != RV_WINDOW_SLIDING) {
        char lw[160];
        snprintf(lw, sizeof lw, "%s (late records)", what);
        compare(lw, &got_late, &want_late, true);
    }
    outs_clear(&got);
    outs_clear(&want);
    outs_clear(&got_late);
    outs_clear(&want_late);
}

static void test_tumbling(void) {
    for (uint64_t seed = 1; seed <= 4; seed++) {
        one(RV_WINDOW_TUMBLING, 50, 0, seed % 2 ? 0 : 30, RV_EMIT_FINAL, seed, 600, 4);
        one(RV_WINDOW_TUMBLING, 50, 0, seed % 2 ? 0 : 30, RV_EMIT_CURRENT, seed, 300, 4);
    }
}

static void test_hopping(void) {
    for (uint64_t seed = 11; seed <= 14; seed++) {
        one(RV_WINDOW_HOPPING, 60, 20, seed % 2 ? 0 : 25, RV_EMIT_FINAL, seed, 500, 3);
        one(RV_WINDOW_HOPPING, 50, 30, 10, RV_EMIT_CURRENT, seed, 250, 3);
    }
}

static void test_sliding(void) {
    for (uint64_t seed = 21; seed <= 24; seed++) {
        one(RV_WINDOW_SLIDING, 30, 0, seed % 2 ? 0 : 20, RV_EMIT_FINAL, seed, 300, 3);
        one(RV_WINDOW_SLIDING, 20, 0, 15, RV_EMIT_CURRENT, seed, 200, 3);
    }
}

static void test_session(void) {
    for (uint64_t seed = 31; seed <= 36; seed++) {
        one(RV_WINDOW_SESSION, 10 + (int64_t)seed % 3 * 10, 0, seed % 2 ? 0 : 30, RV_EMIT_FINAL,
            seed, 500, 5);
        one(RV_WINDOW_SESSION, 15, 0, 20, RV_EMIT_CURRENT, seed, 300, 5);
    }
}

static void test_count(void) {
    for (uint64_t seed = 41; seed <= 43; seed++) {
        one(RV_WINDOW_COUNT_TUMBLING, 7, 0, 0, RV_EMIT_FINAL, seed, 400, 3);
        one(RV_WINDOW_COUNT_TUMBLING, 5, 0, 0, RV_EMIT_CURRENT, seed, 200, 3);
        one(RV_WINDOW_COUNT_HOPPING, 7, 3, 0, RV_EMIT_FINAL, seed, 400, 3);
        one(RV_WINDOW_COUNT_HOPPING, 6, 4, 0, RV_EMIT_CURRENT, seed, 200, 3);
    }
}

/* ---- idle closing on wall-clock time --------------------------------------------------------- */

typedef struct small_s {
    rv_arena_t *ga, *ba;
    rv__window_t w;
    rv__memstore_t *m;
    rv__wpart_t p;
    struct rv_ctx_s ctx;
} small_t;

static const rv_agg_t count_sum[] = {{.name = "n", .kind = RV_AGG_COUNT},
                                     {.name = "s", .kind = RV_AGG_SUM, .field = "v"}};

static bool small_open(small_t *t, rv_window_type_t type, int64_t size, int64_t grace,
                       int64_t idle) {
    memset(t, 0, sizeof *t);
    t->ga = rv_arena_new(1024);
    t->ba = rv_arena_new(1 << 16);
    t->w.opts = (rv_window_opts_t){.name = "w",
                                   .type = type,
                                   .size = size,
                                   .grace_ms = grace,
                                   .idle_timeout_ms = idle,
                                   .on_late = on_late};
    char why[256];
    if (rv__window_check(&t->w.opts, why, sizeof why) != RV_OK ||
        rv__aggset_build(&t->w.aggs, t->ga, count_sum, 2, why, sizeof why) != RV_OK) {
        CHECK_MSG(false, "%s", why);
        return false;
    }
    t->m = rv__memstore_new();
    t->ctx.arena = t->ba;
    return rv__wpart_init(&t->p, &t->w, (rv__wstore_t){&rv__memstore_ops, t->m}) == RV_OK;
}

static void small_close(small_t *t) {
    rv__wpart_free(&t->p, &t->w);
    rv__memstore_destroy(t->m);
    rv_arena_destroy(t->ga);
    rv_arena_destroy(t->ba);
    outs_clear(&got);
    outs_clear(&got_late);
}

static int64_t seqn;

static void small_rec(small_t *t, int key, int64_t ts, int64_t v, int64_t now) {
    rv_value_t *k = rv_value_new_int(t->ba, key);
    rv_value_t *val = rv_value_new_object(t->ba, 1);
    rv_value_set(t->ba, val, "v", 1, rv_value_new_int(t->ba, v));
    rv_err_t e = rv__window_process(&t->w, &t->p, &t->ctx, k, val, ts, seqn++, now, on_emit, NULL);
    CHECK_MSG(e == RV_OK, "%s", t->ctx.fail_msg);
}

static void small_sweep(small_t *t, int64_t now) {
    CHECK(rv__window_sweep(&t->w, &t->p, &t->ctx, now, on_emit, NULL) == RV_OK);
}

/* got's i-th output, or "" */
static const char *got_at(int i) {
    return i < got.n ? got.o[i].text : "";
}

static void test_idle(void) {
    small_t t;
    /* tumbling 100 ms, idle after 1000 ms of wall-clock time */
    REQUIRE(small_open(&t, RV_WINDOW_TUMBLING, 100, 0, 1000));
    small_rec(&t, 1, 10, 5, 0);
    small_rec(&t, 1, 50, 7, 500);
    small_sweep(&t, 1200); /* touched at 500: not idle yet */
    CHECK_INT(got.n, 0);
    small_sweep(&t, 1600);
    CHECK_INT(got.n, 1);
    CHECK_STR(got_at(0), "1|{\"start\":0,\"end\":100,\"n\":2,\"s\":12}");
    small_rec(&t, 1, 60, 1, 1700); /* its window closed early: late */
    CHECK_INT(got_late.n, 1);
    CHECK_STR(got_late.n ? got_late.o[0].text : "", "1 60 0 100");
    small_rec(&t, 2, 70, 3, 1700); /* another key's window [0, 100) is still open */
    CHECK_INT(got_late.n, 1);
    small_rec(&t, 1, 120, 2, 1700); /* W = 120 closes key 2's [0, 100) */
    CHECK_INT(got.n, 2);
    CHECK_STR(got_at(1), "2|{\"start\":0,\"end\":100,\"n\":1,\"s\":3}");
    small_sweep(&t, 3000);
    CHECK_INT(got.n, 3);
    CHECK_STR(got_at(2), "1|{\"start\":100,\"end\":200,\"n\":1,\"s\":2}");
    CHECK_INT(rv__memstore_count(t.m), 2); /* key 1's close floor and the index sentinel */
    small_close(&t);

    /* sessions: an idle close moves the key's floor to last + gap */
    REQUIRE(small_open(&t, RV_WINDOW_SESSION, 50, 0, 1000));
    small_rec(&t, 1, 10, 1, 0);
    small_rec(&t, 1, 30, 2, 0);
    small_sweep(&t, 2000);
    CHECK_STR(got_at(0), "1|{\"start\":10,\"end\":31,\"n\":2,\"s\":3}");
    small_rec(&t, 1, 40, 4, 2100); /* would have joined the closed session: late */
    CHECK_INT(got_late.n, 1);
    small_rec(&t, 1, 100, 8, 2100);
    small_sweep(&t, 4000);
    CHECK_STR(got_at(1), "1|{\"start\":100,\"end\":101,\"n\":1,\"s\":8}");
    small_close(&t);

    /* count windows: an idle close emits the partial window; the key starts afresh */
    REQUIRE(small_open(&t, RV_WINDOW_COUNT_TUMBLING, 3, 0, 1000));
    small_rec(&t, 1, 10, 1, 0);
    small_rec(&t, 1, 20, 2, 0);
    small_sweep(&t, 2000);
    CHECK_STR(got_at(0), "1|{\"start\":10,\"end\":21,\"n\":2,\"s\":3}");
    small_rec(&t, 1, 30, 4, 2100);
    small_rec(&t, 1, 40, 8, 2100);
    small_rec(&t, 1, 50, 16, 2100);
    CHECK_INT(got.n, 2);
    CHECK_STR(got_at(1), "1|{\"start\":30,\"end\":51,\"n\":3,\"s\":28}");
    CHECK_INT(rv__memstore_count(t.m), 1); /* the counter */
    small_close(&t);

    /* sliding: the idle close emits the open windows and forgets the kept records */
    REQUIRE(small_open(&t, RV_WINDOW_SLIDING, 20, 0, 1000));
    small_rec(&t, 1, 10, 1, 0);
    small_rec(&t, 1, 15, 2, 0);
    small_sweep(&t, 2000);
    CHECK_INT(got.n, 3); /* [-10,10], [-5,15] and the right window [11,31] of 10 */
    CHECK_STR(got_at(0), "1|{\"start\":-10,\"end\":11,\"n\":1,\"s\":1}");
    CHECK_STR(got_at(1), "1|{\"start\":-5,\"end\":16,\"n\":2,\"s\":3}");
    CHECK_STR(got_at(2), "1|{\"start\":11,\"end\":32,\"n\":1,\"s\":2}");
    CHECK_INT(rv__memstore_count(t.m), 2); /* the close floor and the index sentinel */
    small_close(&t);
}

/* Records sharing an arrival position (the items of one expand) are all kept by sliding
 * windows, in the order they came. */
static void test_same_position(void) {
    small_t t;
    REQUIRE(small_open(&t, RV_WINDOW_SLIDING, 10, 0, 0));
    int64_t saved = seqn;
    small_rec(&t, 1, 5, 1, 0);
    seqn = saved; /* the same position again */
    small_rec(&t, 1, 5, 2, 0);
    small_rec(&t, 2, 1000, 0, 0); /* closes key 1's window [-5, 5] */
    CHECK_INT(got.n, 1);
    CHECK_STR(got_at(0), "1|{\"start\":-5,\"end\":6,\"n\":2,\"s\":3}");
    small_close(&t);
}

/* Grace: a record behind the max by less than grace still enters its window. */
static void test_grace(void) {
    small_t t;
    REQUIRE(small_open(&t, RV_WINDOW_TUMBLING, 100, 50, 0));
    small_rec(&t, 1, 90, 1, 0);
    small_rec(&t, 1, 140, 2, 0); /* W = 90: [0,100) stays open */
    small_rec(&t, 1, 95, 4, 0);  /* enters [0,100) */
    CHECK_INT(got.n, 0);
    small_rec(&t, 1, 150, 8, 0); /* W = 100: [0,100) closes before this record is added */
    CHECK_INT(got.n, 1);
    CHECK_STR(got_at(0), "1|{\"start\":0,\"end\":100,\"n\":2,\"s\":5}");
    small_rec(&t, 1, 99, 16, 0); /* late */
    CHECK_INT(got_late.n, 1);
    CHECK_STR(got_late.n ? got_late.o[0].text : "", "1 99 0 100");
    small_rec(&t, 1, 250, 0, 0); /* W = 200 closes [100,200) */
    CHECK_STR(got_at(1), "1|{\"start\":100,\"end\":200,\"n\":2,\"s\":10}");
    small_close(&t);
}

/* ---- aggregations ---------------------------------------------------------------------------- */

static rv_value_t *obj_v(rv_arena_t *a, rv_value_t *v) {
    rv_value_t *o = rv_value_new_object(a, 1);
    if (v) {
        rv_value_set(a, o, "v", 1, v);
    }
    return o;
}

static void test_inputs(void) {
    rv_arena_t *a = rv_arena_new(4096);
    rv__aggset_t set;
    char why[256];
    static const rv_agg_t aggs[] = {{.name = "n", .kind = RV_AGG_COUNT},
                                    {.name = "nv", .kind = RV_AGG_COUNT, .field = "v"},
                                    {.name = "s", .kind = RV_AGG_SUM, .field = "v"},
                                    {.name = "m", .kind = RV_AGG_MEAN, .field = "v"},
                                    {.name = "lo", .kind = RV_AGG_MIN, .field = "v"},
                                    {.name = "hi", .kind = RV_AGG_MAX, .field = "v"},
                                    {.name = "all", .kind = RV_AGG_COLLECT}};
    REQUIRE(rv__aggset_build(&set, a, aggs, RV_ARRAY_LEN(aggs), why, sizeof why) == RV_OK);
    void *acc = malloc(set.acc_size);
    struct rv_ctx_s ctx = {.arena = a};
    rv__aggset_init(&set, acc);
    rv_strbuf_t sb = RV_STRBUF_INIT;
    /* empty: mean/min/max are null, sum 0 */
    rv_json_write(&sb, rv__aggset_result(&set, acc, a, 0, 1), RV_JSON_COMPACT, NULL);
    CHECK_STR(sb.data, "{\"start\":0,\"end\":1,\"n\":0,\"nv\":0,\"s\":0,\"m\":null,\"lo\":null,"
                       "\"hi\":null,\"all\":[]}");
    CHECK(rv__aggset_add(&set, acc, obj_v(a, rv_value_new_int(a, INT64_MAX)), 1, 1, &ctx) == RV_OK);
    CHECK(rv__aggset_add(&set, acc, obj_v(a, NULL), 2, 2, &ctx) == RV_OK); /* missing: skipped */
    CHECK(rv__aggset_add(&set, acc, obj_v(a, rv_value_new_null(a)), 3, 3, &ctx) == RV_OK);
    CHECK(rv__aggset_add(&set, acc, obj_v(a, rv_value_new_int(a, 1)), 4, 4, &ctx) == RV_OK);
    rv_strbuf_clear(&sb);
    rv_json_write(&sb, rv__aggset_result(&set, acc, a, 0, 1), RV_JSON_COMPACT, NULL);
    /* the int sum overflowed into a double */
    CHECK_STR(sb.data, "{\"start\":0,\"end\":1,\"n\":4,\"nv\":2,\"s\":9223372036854776000.0,"
                       "\"m\":4611686018427388000.0,\"lo\":1,\"hi\":9223372036854775807,"
                       "\"all\":[{\"v\":9223372036854775807},{},{\"v\":null},{\"v\":1}]}");
    /* a string where a number belongs fails the record, naming the aggregation */
    rv_value_t *bad = obj_v(a, rv_value_new_string(a, "fast", 4));
    CHECK(rv__aggset_add(&set, acc, bad, 5, 5, &ctx) == RV_ERR_INVALID_ARG);
    CHECK_MSG(strstr(ctx.fail_msg, "aggregation 's' (sum of v)") &&
                  strstr(ctx.fail_msg, "the input is string, not a number"),
              "message: %s", ctx.fail_msg);
    rv_strbuf_free(&sb);
    rv__aggset_release(&set, acc);
    free(acc);

    /* building errors */
    static const rv_agg_ops_t no_fns = {.version = 1, .acc_size = 8};
    const rv_agg_t bads[][2] = {
        {{.name = "start", .kind = RV_AGG_SUM}, {.name = "x"}},
        {{.name = "a", .kind = RV_AGG_SUM}, {.name = "a", .kind = RV_AGG_MAX}},
        {{.name = "c", .kind = RV_AGG_CUSTOM}, {.name = "x"}},
        {{.name = "c", .kind = RV_AGG_CUSTOM, .ops = &no_fns}, {.name = "x"}},
        {{.name = "f", .kind = RV_AGG_SUM, .field = "a..b"}, {.name = "x"}},
        {{.name = "k", .kind = (rv_agg_kind_t)77}, {.name = "x"}},
    };
    for (size_t i = 0; i < RV_ARRAY_LEN(bads); i++) {
        CHECK_MSG(rv__aggset_build(&set, a, bads[i], 2, why, sizeof why) == RV_ERR_INVALID_ARG,
                  "bad set %zu accepted", i);
    }
    CHECK(rv__aggset_build(&set, a, NULL, 0, why, sizeof why) == RV_ERR_INVALID_ARG);
    rv_window_opts_t bo[] = {
        {.type = RV_WINDOW_TUMBLING, .size = 0},
        {.type = RV_WINDOW_HOPPING, .size = 10, .step = 20},
        {.type = RV_WINDOW_TUMBLING, .size = 10, .step = 5},
        {.type = RV_WINDOW_COUNT_TUMBLING, .size = 10, .grace_ms = 5},
        {.type = RV_WINDOW_SESSION, .size = 10, .grace_ms = -1},
        {.type = (rv_window_type_t)9, .size = 10},
    };
    for (size_t i = 0; i < RV_ARRAY_LEN(bo); i++) {
        CHECK_MSG(rv__window_check(&bo[i], why, sizeof why) == RV_ERR_INVALID_ARG,
                  "bad options %zu accepted", i);
    }
    rv_arena_destroy(a);
}

/* Accumulator bytes round-trip exactly, and damaged bytes never crash. */
static void test_bytes(void) {
    rv_arena_t *a = rv_arena_new(4096);
    rv__aggset_t set;
    char why[256];
    REQUIRE(rv__aggset_build(&set, a, all_aggs, RV_ARRAY_LEN(all_aggs), why, sizeof why) == RV_OK);
    void *acc = malloc(set.acc_size), *back = malloc(set.acc_size);
    struct rv_ctx_s ctx = {.arena = a};
    rv__aggset_init(&set, acc);
    for (int i = 0; i < 9; i++) {
        rv__aggset_add(&set, acc, obj_v(a, rv_value_new_int(a, i * 7 % 5)), 100 - i, i, &ctx);
    }
    rv_strbuf_t b1 = RV_STRBUF_INIT, b2 = RV_STRBUF_INIT, j1 = RV_STRBUF_INIT, j2 = RV_STRBUF_INIT;
    REQUIRE(rv__aggset_encode(&set, acc, &b1) == RV_OK);
    REQUIRE(rv__aggset_decode(&set, back, b1.data, b1.len) == RV_OK);
    rv__aggset_encode(&set, back, &b2);
    CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
    rv_json_write(&j1, rv__aggset_result(&set, acc, a, 1, 2), RV_JSON_COMPACT, NULL);
    rv_json_write(&j2, rv__aggset_result(&set, back, a, 1, 2), RV_JSON_COMPACT, NULL);
    CHECK_STR(j1.data, j2.data);
    rv__aggset_release(&set, back);
    int corrupt = 0;
    for (size_t cut = 0; cut < b1.len; cut++) { /* every truncation is refused */
        rv_err_t e = rv__aggset_decode(&set, back, b1.data, cut);
        corrupt += e == RV_ERR_CORRUPT;
        rv__aggset_release(&set, back);
    }
    CHECK_INT(corrupt, (long long)b1.len);
    for (size_t i = 0; i < b1.len; i++) { /* flipped bytes: decoded or refused, never a crash */
        b1.data[i] ^= 0x5a;
        if (rv__aggset_decode(&set, back, b1.data, b1.len) == RV_OK) {
            rv__aggset_result(&set, back, a, 0, 1);
        }
        rv__aggset_release(&set, back);
        b1.data[i] ^= 0x5a;
    }
    rv__aggset_release(&set, acc);
    free(acc);
    free(back);
    rv_strbuf_free(&b1);
    rv_strbuf_free(&b2);
    rv_strbuf_free(&j1);
    rv_strbuf_free(&j2);
    rv_arena_destroy(a);
}

/* Stored keys read back as the same value (bytes stay bytes); damaged ones are refused. */
static void test_keys(void) {
    rv_arena_t *a = rv_arena_new(4096);
    rv_value_t *obj = rv_value_new_object(a, 1);
    rv_value_set(a, obj, "id", 2, rv_value_new_int(a, 7));
    rv_value_t *keys[] = {NULL,
                          rv_value_new_null(a),
                          rv_value_new_string(a, "car-7", 5),
                          rv_value_new_string(a, "", 0),
                          rv_value_new_bytes(a, "\x00\xff\x01", 3),
                          rv_value_new_int(a, -42),
                          rv_value_new_double(a, 2.5),
                          obj};
    rv_strbuf_t sb = RV_STRBUF_INIT;
    char why[128];
    for (size_t i = 0; i < RV_ARRAY_LEN(keys); i++) {
        REQUIRE(rv__window_key_encode(&sb, keys[i], why, sizeof why) == RV_OK);
        rv_value_t *back = NULL;
        CHECK(rv__window_key_decode(a, sb.data, sb.len, &back) == RV_OK);
        bool none = !keys[i] || rv_value_type(keys[i]) == RV_TYPE_NULL;
        CHECK_MSG(none ? back == NULL
                       : back && rv_value_equal(back, keys[i]) &&
                             rv_value_type(back) == rv_value_type(keys[i]),
                  "key %zu did not read back", i);
    }
    rv_value_t *back = NULL;
    CHECK(rv__window_key_decode(a, "", 0, &back) == RV_ERR_CORRUPT);
    CHECK(rv__window_key_decode(a, "x12", 3, &back) == RV_ERR_CORRUPT);
    CHECK(rv__window_key_decode(a, "j{", 2, &back) == RV_ERR_CORRUPT);
    CHECK(rv__window_key_decode(a, "nx", 2, &back) == RV_ERR_CORRUPT);
    rv_strbuf_free(&sb);
    rv_arena_destroy(a);
}

int main(void) {
    RV_RUN(test_tumbling);
    RV_RUN(test_hopping);
    RV_RUN(test_sliding);
    RV_RUN(test_session);
    RV_RUN(test_count);
    g_cached = true;
    RV_RUN(test_tumbling);
    RV_RUN(test_hopping);
    RV_RUN(test_sliding);
    RV_RUN(test_session);
    RV_RUN(test_count);
    g_cached = false;
    RV_RUN(test_idle);
    RV_RUN(test_grace);
    RV_RUN(test_same_position);
    RV_RUN(test_inputs);
    RV_RUN(test_bytes);
    RV_RUN(test_keys);
    return rv_test_finish();
}
