/*
 * interp.c: resampling of time-series frames onto a fixed grid (rv_tinterp_t).
 *
 * A fed frame is cut into runs: consecutive rows in one grid interval ("slot"). Each output then
 * walks the runs over its input column with a kernel chosen once per frame for its aggregator
 * and the column's type (double or int64), a tight loop over the column array with no branch on
 * type or aggregator per sample; dense columns (no presence bitmap) take an unrolled path. The
 * interval still open at the end of a frame keeps its accumulators for the next frame; complete
 * intervals become rows of one result frame per feed. All scratch arrays belong to the resampler
 * and grow only when a frame is larger than any before, so steady feeding allocates nothing.
 * This file never looks at rows outside the frame it is given and never keeps a pointer into it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/timeseries.h"
#include "telemetry/telemetry_int.h"

#define DEFAULT_MAX_FILL 10000

/* A built-in aggregator's running state over one interval; n counts the values taken. */
typedef struct acc_s {
    double sum, min, max, first, last;
    int64_t n;
} acc_t;

typedef void (*kernel_fn)(acc_t *a, const rv_tcolumn_t *c, size_t from, size_t to);

typedef struct out_s {
    char *in_name, *out_name;
    rv_tagg_t agg;
    const rv_tinterp_ops_t *ops;
    void *opaque;
    void *state; /* a custom processor's state */
    acc_t acc;   /* the open interval */
    bool has_prev;
    double prev; /* the last value emitted, for RV_TFILL_PREVIOUS */
    size_t hint; /* where the column was in the last frame */
    /* the batch being emitted */
    double *vals;
    uint8_t *present;
    size_t count;
} out_t;

struct rv_tinterp_s {
    int64_t period, origin;
    rv_tfill_t fill;
    size_t max_fill;
    rv_tlate_t late_policy;
    rv_tinterp_emit_fn emit;
    void *opaque;
    out_t *outs;
    size_t nout;
    bool has_open;
    int64_t open_start;
    bool has_emitted;
    int64_t last_emitted;
    uint64_t late;
    /* per feed: runs (first row, slot or -1 for dropped rows), slots (grid points), results */
    size_t *run_from;
    long *run_slot;
    int64_t *slot_t;
    size_t scap; /* entries of the three arrays above */
    double *res;
    uint8_t *res_has; /* slot-major: [slot * nout + out] */
    size_t rescap;
    const rv_tcolumn_t **cols;
    /* the batch: rows and column views */
    int64_t *ots;
    size_t orows, ocap;
    rv_tcolumn_t *oviews;
};

const char *rv_tagg_name(rv_tagg_t agg) {
    switch (agg) {
        case RV_TAGG_FIRST:
            return "first";
        case RV_TAGG_LAST:
            return "last";
        case RV_TAGG_MEAN:
            return "mean";
        case RV_TAGG_MIN:
            return "min";
        case RV_TAGG_MAX:
            return "max";
        case RV_TAGG_CUSTOM:
            return "custom";
    }
    return NULL;
}

rv_tagg_t rv_tagg_parse(const char *name) {
    for (int a = RV_TAGG_FIRST; name && a <= RV_TAGG_CUSTOM; a++) {
        if (strcmp(rv_tagg_name((rv_tagg_t)a), name) == 0) {
            return (rv_tagg_t)a;
        }
    }
    return (rv_tagg_t)0;
}

/* ---- kernels -------------------------------------------------------------------------------- */

/*
 * Each kernel folds rows [i, to) of a column into an accumulator. LOAD reads row k as a double;
 * OK(v) says whether a loaded value counts (NaN does not). The dense paths keep four independent
 * accumulators so the adds and compares pipeline; bitmap paths select with the presence bit.
 */
#define PRESENT(p, k) (((p)[(k) >> 3] >> ((k)&7)) & 1u)

#define DEFINE_KERNELS(SUFFIX, T, FIELD)                                                           \
    static void mean_##SUFFIX(acc_t *a, const rv_tcolumn_t *c, size_t i, size_t to) {              \
        const T *x = c->v.FIELD;                                                                   \
        const uint8_t *p = c->present;                                                             \
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                     \
        int64_t n0 = 0, n1 = 0, n2 = 0, n3 = 0;                                                    \
        if (!p) {                                                                                  \
            for (; i + 4 <= to; i += 4) {                                                          \
                double v0 = (double)x[i], v1 = (double)x[i + 1];                                   \
                double v2 = (double)x[i + 2], v3 = (double)x[i + 3];                               \
                s0 += v0 == v0 ? v0 : 0.0;                                                         \
                s1 += v1 == v1 ? v1 : 0.0;                                                         \
                s2 += v2 == v2 ? v2 : 0.0;                                                         \
                s3 += v3 == v3 ? v3 : 0.0;                                                         \
                n0 += v0 == v0;                                                                    \
                n1 += v1 == v1;                                                                    \
                n2 += v2 == v2;                                                                    \
                n3 += v3 == v3;                                                                    \
            }                                                                                      \
        }                                                                                          \
        for (; i < to; i++) {                                                                      \
            double v = (double)x[i];                                                               \
            int ok = (int)(p ? PRESENT(p, i) : 1u) & (v == v);                                     \
            s0 += ok ? v : 0.0;                                                                    \
            n0 += ok;                                                                              \
        }                                                                                          \
        a->sum += (s0 + s1) + (s2 + s3);                                                           \
        a->n += (n0 + n1) + (n2 + n3);                                                             \
    }                                                                                              \
    static void min_##SUFFIX(acc_t *a, const rv_tcolumn_t *c, size_t i, size_t to) {               \
        const T *x = c->v.FIELD;                                                                   \
        const uint8_t *p = c->present;                                                             \
        double m0 = a->min, m1 = INFINITY, m2 = INFINITY, m3 = INFINITY;                           \
        int64_t n = 0;                                                                             \
        if (!p) {                                                                                  \
            for (; i + 4 <= to; i += 4) {                                                          \
                double v0 = (double)x[i], v1 = (double)x[i + 1];                                   \
                double v2 = (double)x[i + 2], v3 = (double)x[i + 3];                               \
                m0 = v0 < m0 ? v0 : m0; /* NaN compares false: skipped */                          \
                m1 = v1 < m1 ? v1 : m1;                                                            \
                m2 = v2 < m2 ? v2 : m2;                                                            \
                m3 = v3 < m3 ? v3 : m3;                                                            \
                n += (v0 == v0) + (v1 == v1) + (v2 == v2) + (v3 == v3);                            \
            }                                                                                      \
        }                                                                                          \
        for (; i < to; i++) {                                                                      \
            double v = (double)x[i];                                                               \
            int ok = (int)(p ? PRESENT(p, i) : 1u) & (v == v);                                     \
            m0 = ok && v < m0 ? v : m0;                                                            \
            n += ok;                                                                               \
        }                                                                                          \
        m0 = m1 < m0 ? m1 : m0;                                                                    \
        m2 = m3 < m2 ? m3 : m2;                                                                    \
        a->min = m2 < m0 ? m2 : m0;                                                                \
        a->n += n;                                                                                 \
    }                                                                                              \
    static void max_##SUFFIX(acc_t *a, const rv_tcolumn_t *c, size_t i, size_t to) {               \
        const T *x = c->v.FIELD;                                                                   \
        const uint8_t *p = c->present;                                                             \
        double m0 = a->max, m1 = -INFINITY, m2 = -INFINITY, m3 = -INFINITY;                        \
        int64_t n = 0;                                                                             \
        if (!p) {                                                                                  \
            for (; i + 4 <= to; i += 4) {                                                          \
                double v0 = (double)x[i], v1 = (double)x[i + 1];                                   \
                double v2 = (double)x[i + 2], v3 = (double)x[i + 3];                               \
                m0 = v0 > m0 ? v0 : m0;                                                            \
                m1 = v1 > m1 ? v1 : m1;                                                            \
                m2 = v2 > m2 ? v2 : m2;                                                            \
                m3 = v3 > m3 ? v3 : m3;                                                            \
                n += (v0 == v0) + (v1 == v1) + (v2 == v2) + (v3 == v3);                            \
            }                                                                                      \
        }                                                                                          \
        for (; i < to; i++) {                                                                      \
            double v = (double)x[i];                                                               \
            int ok = (int)(p ? PRESENT(p, i) : 1u) & (v == v);                                     \
            m0 = ok && v > m0 ? v : m0;                                                            \
            n += ok;                                                                               \
        }                                                                                          \
        m0 = m1 > m0 ? m1 : m0;                                                                    \
        m2 = m3 > m2 ? m3 : m2;                                                                    \
        a->max = m2 > m0 ? m2 : m0;                                                                \
        a->n += n;                                                                                 \
    }                                                                                              \
    static void first_##SUFFIX(acc_t *a, const rv_tcolumn_t *c, size_t i, size_t to) {             \
        const T *x = c->v.FIELD;                                                                   \
        const uint8_t *p = c->present;                                                             \
        for (; a->n == 0 && i < to; i++) {                                                         \
            double v = (double)x[i];                                                               \
            if ((!p || PRESENT(p, i)) && v == v) {                                                 \
                a->first = v;                                                                      \
                a->n = 1;                                                                          \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    static void last_##SUFFIX(acc_t *a, const rv_tcolumn_t *c, size_t from, size_t to) {           \
        const T *x = c->v.FIELD;                                                                   \
        const uint8_t *p = c->present;                                                             \
        for (size_t i = to; i > from; i--) {                                                       \
            double v = (double)x[i - 1];                                                           \
            if ((!p || PRESENT(p, i - 1)) && v == v) {                                             \
                a->last = v;                                                                       \
                a->n = 1;                                                                          \
                return;                                                                            \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_KERNELS(d, double, d)
DEFINE_KERNELS(i, int64_t, i)

#if defined(__SSE2__)
/*
 * Double columns with SSE2 (every x86-64 has it), eight rows per iteration in four 2-lane
 * accumulators so no lane waits on another. Presence comes from the bitmap two bits at a time
 * as lane masks (all ones for a dense column); a NaN lane is masked out of sums and counts with
 * (v == v), and minpd/maxpd keep their second operand when the first is NaN, so NaN is skipped as
 * the scalar kernels skip it (sums are added in another order: equal within rounding; min and max
 * of +0 and -0 may give either). Short runs and the rows before and after the 8-row blocks use
 * the scalar kernels above.
 */
#include <emmintrin.h>

static const int64_t PAIR_MASK[4][2] = {{0, 0}, {-1, 0}, {0, -1}, {-1, -1}};

/* Lane masks of two rows from their two presence bits (lane 0: the lower bit). */
static __m128d pair_mask(unsigned bits) {
    return _mm_castsi128_pd(_mm_loadu_si128((const __m128i *)(const void *)PAIR_MASK[bits & 3]));
}

static int64_t lanes_sum(__m128i a, __m128i b, __m128i c, __m128i d) {
    int64_t l[2];
    _mm_storeu_si128((__m128i *)(void *)l, _mm_add_epi64(_mm_add_epi64(a, b), _mm_add_epi64(c, d)));
    return l[0] + l[1];
}

/* Loads rows i..i+7 as v0..v3 and runs STEP on each lane pair. */
#define BLOCK_BODY(STEP)                                                                           \
    do {                                                                                           \
        __m128d v0 = _mm_loadu_pd(x + i), v1 = _mm_loadu_pd(x + i + 2);                            \
        __m128d v2 = _mm_loadu_pd(x + i + 4), v3 = _mm_loadu_pd(x + i + 6);                        \
        STEP(0);                                                                                   \
        STEP(1);                                                                                   \
        STEP(2);                                                                                   \
        STEP(3);                                                                                   \
    } while (0)

/*
 * The frame of a block kernel: scalar head up to a bitmap byte, 8-row blocks with values v0..v3
 * and presence masks p0..p3 in scope for STEP, then the scalar tail. SETUP declares accumulators,
 * FINISH folds them into *a.
 */
#define DEFINE_BLOCK_KERNEL(NAME, SCALAR, SETUP, STEP, FINISH)                                     \
    static void NAME(acc_t *a, const rv_tcolumn_t *c, size_t i, size_t to) {                       \
        const uint8_t *p = c->present;                                                             \
        if (to - i < 24) {                                                                         \
            SCALAR(a, c, i, to);                                                                   \
            return;                                                                                \
        }                                                                                          \
        if (p && (i & 7)) {                                                                        \
            size_t head = (i + 7) & ~(size_t)7;                                                    \
            SCALAR(a, c, i, head);                                                                 \
            i = head;                                                                              \
        }                                                                                          \
        const double *x = c->v.d;                                                                  \
        const __m128d ones = _mm_castsi128_pd(_mm_set1_epi32(-1));                                 \
        __m128d p0 = ones, p1 = ones, p2 = ones, p3 = ones;                                        \
        SETUP;                                                                                     \
        if (p) {                                                                                   \
            for (; i + 8 <= to; i += 8) {                                                          \
                unsigned byte = p[i >> 3];                                                         \
                p0 = pair_mask(byte);                                                              \
                p1 = pair_mask(byte >> 2);                                                         \
                p2 = pair_mask(byte >> 4);                                                         \
                p3 = pair_mask(byte >> 6);                                                         \
                BLOCK_BODY(STEP);                                                                  \
            }                                                                                      \
        } else {                                                                                   \
            for (; i + 8 <= to; i += 8) {                                                          \
                BLOCK_BODY(STEP);                                                                  \
            }                                                                                      \
        }                                                                                          \
        FINISH;                                                                                    \
        SCALAR(a, c, i, to);                                                                       \
    }

/* A lane counts when present and not NaN. */
#define COUNTED(j) _mm_and_pd(_mm_cmpeq_pd(v##j, v##j), p##j)

#define MEAN_SETUP                                                                                 \
    __m128d s0 = _mm_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;                                      \
    __m128i n0 = _mm_setzero_si128(), n1 = n0, n2 = n0, n3 = n0
#define MEAN_STEP(j)                                                                               \
    do {                                                                                           \
        __m128d k##j = COUNTED(j);                                                                 \
        s##j = _mm_add_pd(s##j, _mm_and_pd(v##j, k##j));                                           \
        n##j = _mm_sub_epi64(n##j, _mm_castpd_si128(k##j)); /* the mask is -1 where counted */     \
    } while (0)
#define MEAN_FINISH                                                                                \
    do {                                                                                           \
        double l[2];                                                                               \
        _mm_storeu_pd(l, _mm_add_pd(_mm_add_pd(s0, s1), _mm_add_pd(s2, s3)));                      \
        a->sum += l[0] + l[1];                                                                     \
        a->n += lanes_sum(n0, n1, n2, n3);                                                         \
    } while (0)

DEFINE_BLOCK_KERNEL(mean_dv, mean_d, MEAN_SETUP, MEAN_STEP, MEAN_FINISH)

/* Min and max: absent lanes become the identity (INIT) before minpd/maxpd. */
#define EXT_SETUP(INIT)                                                                            \
    const __m128d init = _mm_set1_pd(INIT);                                                        \
    __m128d m0 = init, m1 = init, m2 = init, m3 = init;                                            \
    __m128i n0 = _mm_setzero_si128(), n1 = n0, n2 = n0, n3 = n0
#define EXT_STEP(INTRIN, j)                                                                        \
    do {                                                                                           \
        __m128d w##j = _mm_or_pd(_mm_and_pd(p##j, v##j), _mm_andnot_pd(p##j, init));               \
        m##j = INTRIN(w##j, m##j);                                                                 \
        n##j = _mm_sub_epi64(n##j, _mm_castpd_si128(COUNTED(j)));                                  \
    } while (0)
#define EXT_FINISH(INTRIN, FIELD)                                                                  \
    do {                                                                                           \
        double l[2];                                                                               \
        _mm_storeu_pd(l, INTRIN(INTRIN(m0, m1), INTRIN(m2, m3)));                                  \
        __m128d r = INTRIN(_mm_set_sd(l[0]), _mm_set_sd(l[1]));                                    \
        a->FIELD = _mm_cvtsd_f64(INTRIN(r, _mm_set_sd(a->FIELD)));                                 \
        a->n += lanes_sum(n0, n1, n2, n3);                                                         \
    } while (0)

#define MIN_STEP(j) EXT_STEP(_mm_min_pd, j)
#define MAX_STEP(j) EXT_STEP(_mm_max_pd, j)
DEFINE_BLOCK_KERNEL(min_dv, min_d, EXT_SETUP(INFINITY), MIN_STEP, EXT_FINISH(_mm_min_pd, min))
DEFINE_BLOCK_KERNEL(max_dv, max_d, EXT_SETUP(-INFINITY), MAX_STEP, EXT_FINISH(_mm_max_pd, max))
#else
#define mean_dv mean_d
#define min_dv min_d
#define max_dv max_d
#endif

/* [aggregator - 1][int64 column] */
static const kernel_fn kernels[5][2] = {
    {first_d, first_i}, {last_d, last_i}, {mean_dv, mean_i}, {min_dv, min_i}, {max_dv, max_i}};

/* ---- setup ---------------------------------------------------------------------------------- */

static void out_reset(out_t *o) {
    o->acc = (acc_t){.min = INFINITY, .max = -INFINITY};
    if (o->agg == RV_TAGG_CUSTOM) {
        o->ops->init(o->state, o->opaque);
    }
}

/* The interval's value; false when it has none. */
static bool out_result(const out_t *o, int64_t grid, double *v) {
    switch (o->agg) {
        case RV_TAGG_FIRST:
            *v = o->acc.first;
            return o->acc.n > 0;
        case RV_TAGG_LAST:
            *v = o->acc.last;
            return o->acc.n > 0;
        case RV_TAGG_MEAN:
            *v = o->acc.n ? o->acc.sum / (double)o->acc.n : 0.0;
            return o->acc.n > 0;
        case RV_TAGG_MIN:
            *v = o->acc.min;
            return o->acc.n > 0;
        case RV_TAGG_MAX:
            *v = o->acc.max;
            return o->acc.n > 0;
        case RV_TAGG_CUSTOM:
            *v = 0.0;
            return o->ops->result(o->state, o->opaque, grid, v);
    }
    return false;
}

void rv_tinterp_destroy(rv_tinterp_t *ip) {
    if (!ip) {
        return;
    }
    for (size_t i = 0; i < ip->nout; i++) {
        free(ip->outs[i].in_name);
        free(ip->outs[i].out_name);
        free(ip->outs[i].state);
        free(ip->outs[i].vals);
        free(ip->outs[i].present);
    }
    free(ip->outs);
    free(ip->run_from);
    free(ip->run_slot);
    free(ip->slot_t);
    free(ip->res);
    free(ip->res_has);
    free(ip->cols);
    free(ip->ots);
    free(ip->oviews);
    free(ip);
}

rv_err_t rv_tinterp_new(const rv_tinterp_opts_t *opts, rv_tinterp_t **out, rv_error_t **err) {
    if (!opts || !out || !opts->emit || !opts->params || opts->param_count == 0) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "resampler: options with params and an emit callback are required");
    }
    if (opts->period_ns <= 0) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "resampler: period_ns must be positive, not %lld",
                             (long long)opts->period_ns);
    }
    if (opts->fill != RV_TFILL_NONE && opts->fill != RV_TFILL_PREVIOUS) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "resampler: unknown fill %d",
                             (int)opts->fill);
    }
    if (opts->late != RV_TLATE_ERROR && opts->late != RV_TLATE_DROP) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "resampler: unknown late policy %d",
                             (int)opts->late);
    }
    for (size_t i = 0; i < opts->param_count; i++) {
        const rv_tinterp_param_t *p = &opts->params[i];
        const char *oname = p->output ? p->output : p->name;
        if (!p->name) {
            return rv__error_set(err, RV_ERR_INVALID_ARG, "resampler: param %zu has no name", i);
        }
        if (!rv_tagg_name(p->agg)) {
            return rv__error_set(err, RV_ERR_INVALID_ARG,
                                 "resampler: param '%.60s' has an unknown aggregator %d", p->name,
                                 (int)p->agg);
        }
        if (p->agg == RV_TAGG_CUSTOM && (!p->ops || p->ops->version != RV_TINTERP_OPS_VERSION ||
                                         !p->ops->init || !p->ops->add || !p->ops->result)) {
            return rv__error_set(err, RV_ERR_INVALID_ARG,
                                 "resampler: param '%.60s' is custom but its ops are missing, "
                                 "incomplete or not version %d",
                                 p->name, RV_TINTERP_OPS_VERSION);
        }
        for (size_t j = 0; j < i; j++) {
            const rv_tinterp_param_t *q = &opts->params[j];
            if (strcmp(q->output ? q->output : q->name, oname) == 0) {
                return rv__error_set(err, RV_ERR_INVALID_ARG,
                                     "resampler: two outputs are named '%.60s' (set `output`)",
                                     oname);
            }
        }
    }
    rv_tinterp_t *ip = calloc(1, sizeof *ip);
    if (!ip || !(ip->outs = calloc(opts->param_count, sizeof *ip->outs)) ||
        !(ip->cols = calloc(opts->param_count, sizeof *ip->cols)) ||
        !(ip->oviews = calloc(opts->param_count, sizeof *ip->oviews))) {
        rv_tinterp_destroy(ip);
        return rv__error_set(err, RV_ERR_NOMEM, "resampler: out of memory");
    }
    ip->period = opts->period_ns;
    ip->origin = opts->origin_ns;
    ip->fill = opts->fill;
    ip->max_fill = opts->max_fill ? opts->max_fill : DEFAULT_MAX_FILL;
    ip->late_policy = opts->late;
    ip->emit = opts->emit;
    ip->opaque = opts->opaque;
    for (size_t i = 0; i < opts->param_count; i++) {
        const rv_tinterp_param_t *p = &opts->params[i];
        out_t *o = &ip->outs[ip->nout++];
        o->in_name = strdup(p->name);
        o->out_name = strdup(p->output ? p->output : p->name);
        o->agg = p->agg;
        o->ops = p->ops;
        o->opaque = p->opaque;
        o->hint = i;
        if (o->agg == RV_TAGG_CUSTOM) {
            size_t sz = (p->ops->state_size + 15) & ~(size_t)15;
            o->state = aligned_alloc(16, sz ? sz : 16);
        }
        if (!o->in_name || !o->out_name || (o->agg == RV_TAGG_CUSTOM && !o->state)) {
            rv_tinterp_destroy(ip);
            return rv__error_set(err, RV_ERR_NOMEM, "resampler: out of memory");
        }
        out_reset(o);
    }
    *out = ip;
    return RV_OK;
}

uint64_t rv_tinterp_late(const rv_tinterp_t *ip) {
    return ip->late;
}

/* ---- feeding -------------------------------------------------------------------------------- */

/* The grid point of the interval holding t; false when it overflows int64. */
static bool grid_of(const rv_tinterp_t *ip, int64_t t, int64_t *g) {
    int64_t d, off;
    if (__builtin_sub_overflow(t, ip->origin, &d)) {
        return false;
    }
    int64_t q = d / ip->period;
    if (d % ip->period < 0) {
        q--;
    }
    return !__builtin_mul_overflow(q, ip->period, &off) &&
           !__builtin_add_overflow(off, ip->origin, g);
}

/* Makes the per-feed scratch hold `rows` runs and `rows + 1` slots of results. */
static bool ensure_scratch(rv_tinterp_t *ip, size_t rows) {
    size_t need = rows + 2;
    if (need > ip->scap) {
        size_t ncap = ip->scap ? ip->scap : 64;
        while (ncap < need) {
            ncap *= 2;
        }
        size_t *rf = realloc(ip->run_from, ncap * sizeof *rf);
        if (!rf) {
            return false;
        }
        ip->run_from = rf;
        long *rs = realloc(ip->run_slot, ncap * sizeof *rs);
        if (!rs) {
            return false;
        }
        ip->run_slot = rs;
        int64_t *st = realloc(ip->slot_t, ncap * sizeof *st);
        if (!st) {
            return false;
        }
        ip->slot_t = st;
        ip->scap = ncap;
    }
    if (ip->scap * ip->nout > ip->rescap) {
        size_t n = ip->scap * ip->nout;
        double *r = realloc(ip->res, n * sizeof *r);
        if (!r) {
            return false;
        }
        ip->res = r;
        uint8_t *h = realloc(ip->res_has, n);
        if (!h) {
            return false;
        }
        ip->res_has = h;
        ip->rescap = n;
    }
    return true;
}

/* Room for one more output row. */
static bool ensure_orow(rv_tinterp_t *ip) {
    if (ip->orows < ip->ocap) {
        return true;
    }
    size_t ncap = ip->ocap ? ip->ocap * 2 : 64;
    int64_t *t = realloc(ip->ots, ncap * sizeof *t);
    if (!t) {
        return false;
    }
    ip->ots = t;
    for (size_t i = 0; i < ip->nout; i++) {
        out_t *o = &ip->outs[i];
        double *v = realloc(o->vals, ncap * sizeof *v);
        if (!v) {
            return false;
        }
        o->vals = v;
        uint8_t *p = realloc(o->present, ncap / 8 + 1);
        if (!p) {
            return false;
        }
        o->present = p;
    }
    ip->ocap = ncap;
    return true;
}

/* Appends a row at grid point g: output i gets vals[i] where has[i] (NULL: none), else its
 * previous value under RV_TFILL_PREVIOUS. Rows with no value at all are not added. */
static bool add_row(rv_tinterp_t *ip, int64_t g, const double *vals, const uint8_t *has) {
    if (!ensure_orow(ip)) {
        return false;
    }
    size_t r = ip->orows;
    bool any = false;
    for (size_t i = 0; i < ip->nout; i++) {
        out_t *o = &ip->outs[i];
        if (r % 8 == 0) {
            o->present[r >> 3] = 0;
        }
        if (has && has[i]) {
            o->vals[r] = vals[i];
            if (ip->fill == RV_TFILL_PREVIOUS) {
                o->prev = vals[i];
                o->has_prev = true;
            }
        } else if (ip->fill == RV_TFILL_PREVIOUS && o->has_prev) {
            o->vals[r] = o->prev;
        } else {
            o->vals[r] = 0.0;
            continue;
        }
        o->present[r >> 3] |= (uint8_t)(1u << (r & 7));
        o->count++;
        any = true;
    }
    if (any) {
        ip->ots[r] = g;
        ip->orows++;
    }
    return true;
}

/* Emits slots [0, k) (results in res), with the gap rows RV_TFILL_PREVIOUS asks for. */
static rv_err_t emit_slots(rv_tinterp_t *ip, size_t k, rv_error_t **err) {
    ip->orows = 0;
    for (size_t i = 0; i < ip->nout; i++) {
        ip->outs[i].count = 0;
    }
    for (size_t s = 0; s < k; s++) {
        int64_t g = ip->slot_t[s];
        if (ip->fill == RV_TFILL_PREVIOUS && ip->has_emitted) {
            uint64_t step = (uint64_t)ip->period;
            uint64_t gap = ((uint64_t)g - (uint64_t)ip->last_emitted) / step;
            for (uint64_t j = 1; j < gap && j <= ip->max_fill; j++) {
                int64_t gg = (int64_t)((uint64_t)ip->last_emitted + j * step);
                if (!add_row(ip, gg, NULL, NULL)) {
                    return rv__error_set(err, RV_ERR_NOMEM, "resampler: out of memory");
                }
            }
        }
        if (!add_row(ip, g, ip->res + s * ip->nout, ip->res_has + s * ip->nout)) {
            return rv__error_set(err, RV_ERR_NOMEM, "resampler: out of memory");
        }
        ip->has_emitted = true;
        ip->last_emitted = g;
    }
    if (ip->orows == 0) {
        return RV_OK;
    }
    for (size_t i = 0; i < ip->nout; i++) {
        const out_t *o = &ip->outs[i];
        ip->oviews[i] = (rv_tcolumn_t){.name = o->out_name,
                                       .type = RV_TCOL_DOUBLE,
                                       .present = o->count == ip->orows ? NULL : o->present};
        ip->oviews[i].v.d = o->vals;
    }
    rv_tframe_t f = {
        .rows = ip->orows, .timestamps = ip->ots, .column_count = ip->nout, .columns = ip->oviews};
    rv_err_t e = ip->emit(ip->opaque, &f);
    if (e != RV_OK) {
        return rv__error_set(err, e, "resampler: the emit callback failed (%s) on %zu rows",
                             rv_err_name(e), ip->orows);
    }
    return RV_OK;
}

/* Stores output i's value for slot s. */
static void finish(rv_tinterp_t *ip, size_t i, size_t s) {
    double v = 0.0;
    bool has = out_result(&ip->outs[i], ip->slot_t[s], &v);
    ip->res[s * ip->nout + i] = v;
    ip->res_has[s * ip->nout + i] = has;
}

/* The frame's parameter column named like output o (tried first where it was last time). */
static const rv_tcolumn_t *find_col(out_t *o, const rv_tframe_t *f) {
    if (o->hint < f->column_count) {
        const rv_tcolumn_t *c = &f->columns[o->hint];
        if (c->type != RV_TCOL_TAG && c->name && strcmp(c->name, o->in_name) == 0) {
            return c;
        }
    }
    for (size_t j = 0; j < f->column_count; j++) {
        const rv_tcolumn_t *c = &f->columns[j];
        if (c->type != RV_TCOL_TAG && c->name && strcmp(c->name, o->in_name) == 0) {
            o->hint = j;
            return c;
        }
    }
    return NULL;
}

rv_err_t rv_tinterp_feed(rv_tinterp_t *ip, const rv_tframe_t *f, rv_error_t **err) {
    if (!ip || !f || (f->rows && !f->timestamps)) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "resampler: NULL argument");
    }
    size_t n = f->rows;
    if (n == 0) {
        return RV_OK;
    }
    for (size_t i = 0; i < ip->nout; i++) {
        out_t *o = &ip->outs[i];
        const rv_tcolumn_t *c = find_col(o, f);
        if (c && o->agg != RV_TAGG_CUSTOM && c->type != RV_TCOL_DOUBLE &&
            c->type != RV_TCOL_INT64) {
            return rv__error_set(err, RV_ERR_INVALID_ARG,
                                 "resampler: parameter '%.60s' is a %s column; %s reads double "
                                 "and int64 columns only",
                                 o->in_name, rv_tcol_type_name(c->type), rv_tagg_name(o->agg));
        }
        ip->cols[i] = c;
    }
    if (!ensure_scratch(ip, n)) {
        return rv__error_set(err, RV_ERR_NOMEM, "resampler: out of memory");
    }
    /* Cut the rows into runs of one interval each; nothing changes state until all is read. */
    size_t nruns = 0, nslots = 0;
    uint64_t late = 0;
    bool has_cur = ip->has_open;
    int64_t cur = ip->open_start;
    const uint64_t period = (uint64_t)ip->period;
    if (has_cur) {
        ip->slot_t[nslots++] = cur;
    }
    long run_slot = -2;
    for (size_t r = 0; r < n; r++) {
        int64_t t = f->timestamps[r];
        long slot;
        if (has_cur && t >= cur && (uint64_t)t - (uint64_t)cur < period) {
            slot = (long)nslots - 1;
        } else {
            int64_t g;
            if (!grid_of(ip, t, &g)) {
                return rv__error_set(err, RV_ERR_RANGE,
                                     "resampler: row %zu: the grid point of time %lld ns (period "
                                     "%lld, origin %lld) does not fit in int64",
                                     r, (long long)t, (long long)ip->period, (long long)ip->origin);
            }
            bool is_late = has_cur ? g < cur : (ip->has_emitted && g <= ip->last_emitted);
            if (is_late && ip->late_policy == RV_TLATE_ERROR) {
                return rv__error_set(
                    err, RV_ERR_INVALID_ARG,
                    "resampler: row %zu at %lld ns is late: its interval starts at %lld ns, "
                    "before the %s interval at %lld ns (rows must arrive in interval order)",
                    r, (long long)t, (long long)g, has_cur ? "open" : "last emitted",
                    (long long)(has_cur ? cur : ip->last_emitted));
            }
            if (is_late) {
                late++;
                slot = -1;
            } else {
                ip->slot_t[nslots++] = g;
                cur = g;
                has_cur = true;
                slot = (long)nslots - 1;
            }
        }
        if (slot != run_slot) {
            ip->run_from[nruns] = r;
            ip->run_slot[nruns] = slot;
            nruns++;
            run_slot = slot;
        }
    }
    ip->run_from[nruns] = n;
    /* Fold each output's column, run by run; a slot change completes the previous slot. */
    for (size_t i = 0; i < ip->nout; i++) {
        out_t *o = &ip->outs[i];
        const rv_tcolumn_t *c = ip->cols[i];
        kernel_fn k = NULL;
        if (c && o->agg != RV_TAGG_CUSTOM) {
            k = kernels[o->agg - 1][c->type == RV_TCOL_INT64];
        }
        long s_cur = ip->has_open ? 0 : -1;
        for (size_t q = 0; q < nruns; q++) {
            long s = ip->run_slot[q];
            if (s < 0) {
                continue;
            }
            if (s != s_cur) {
                if (s_cur >= 0) {
                    finish(ip, i, (size_t)s_cur);
                }
                out_reset(o);
                s_cur = s;
            }
            if (k) {
                k(&o->acc, c, ip->run_from[q], ip->run_from[q + 1]);
            } else if (c) {
                o->ops->add(o->state, o->opaque, c, f->timestamps, ip->run_from[q],
                            ip->run_from[q + 1]);
            }
        }
    }
    ip->late += late;
    if (nslots == 0) {
        return RV_OK;
    }
    ip->has_open = true;
    ip->open_start = ip->slot_t[nslots - 1];
    return emit_slots(ip, nslots - 1, err);
}

rv_err_t rv_tinterp_flush(rv_tinterp_t *ip, rv_error_t **err) {
    if (!ip || !ip->has_open) {
        return RV_OK;
    }
    if (!ensure_scratch(ip, 0)) {
        return rv__error_set(err, RV_ERR_NOMEM, "resampler: out of memory");
    }
    ip->slot_t[0] = ip->open_start;
    for (size_t i = 0; i < ip->nout; i++) {
        finish(ip, i, 0);
    }
    ip->has_open = false;
    return emit_slots(ip, 1, err);
}
