/*
 * bench_timeseries.c: resampling and buffering telemetry frames (timeseries.h).
 *
 * The data: 50 double channels sampled at 1 kHz for 60 s (10 s under --quick), in frames of 100
 * rows (100 ms), as a car's channels arrive. Cases:
 *   - resample to 10 Hz with mean (50 outputs), and with mean, min and max (150 outputs), through
 *     rv_tinterp_feed() + rv_tinterp_flush(); the figure is input samples (rows x channels) per
 *     second on one core. The baseline is a plain C loop written here doing the same resample row
 *     by row (a floor division per row, a presence and NaN test per sample, one accumulator per
 *     channel): the ratio says what the column-wise kernels buy over the obvious code.
 *   - the same with one cell in five absent (presence bitmaps).
 *   - the buffer: the frames through rv_tbuffer_add() with packet_size 1000 (1 s packets); the
 *     figure is samples per second copied in and released; no baseline.
 * Self-checks: the resampler's and the baseline's results agree (means within 1e-9 relative,
 * min and max exactly, same rows), and the buffer releases every row. The target is absolute:
 * 50 million samples resampled per second per core (mean); the ratio to the naive loop is reported
 * beside it. Figures are never shaped to flatter.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "rivulet/rivulet.h"

#define SUITE "timeseries"
#define CHANNELS 50
#define ROWS 100                     /* per frame */
#define STEP_NS INT64_C(1000000)     /* 1 kHz */
#define PERIOD_NS INT64_C(100000000) /* 10 Hz */
#define TARGET 50e6                  /* samples per second */

typedef struct data_s {
    const char *name;
    rv_arena_t *arena;
    const rv_tframe_t **frames;
    size_t nframes;
    size_t samples; /* rows x channels, absent cells included (what a resampler scans) */
    char names[CHANNELS][16];
} data_t;

static uint64_t rng = UINT64_C(0x74696d6573657269);

static double next_value(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 400.0 - 100.0;
}

static bool build(data_t *d, const char *name, size_t seconds, int absent_every) {
    memset(d, 0, sizeof *d);
    d->name = name;
    d->nframes = seconds * 10;
    d->arena = rv_arena_new(1 << 24);
    d->frames = calloc(d->nframes, sizeof *d->frames);
    rv_tframe_builder_t *b = rv_tframe_builder_new();
    if (!d->arena || !d->frames || !b) {
        return false;
    }
    for (int p = 0; p < CHANNELS; p++) {
        snprintf(d->names[p], sizeof d->names[p], "channel_%02d", p);
    }
    int64_t t = INT64_C(1763900000000000000);
    for (size_t f = 0; f < d->nframes; f++) {
        int col[CHANNELS];
        for (int p = 0; p < CHANNELS; p++) {
            col[p] = rv_tframe_builder_column(b, d->names[p], RV_TCOL_DOUBLE);
        }
        for (int r = 0; r < ROWS; r++, t += STEP_NS) {
            rv_tframe_builder_add_row(b, t);
            for (int p = 0; p < CHANNELS; p++) {
                if (absent_every && (next_value(), rng % (uint64_t)absent_every == 0)) {
                    continue;
                }
                rv_tframe_builder_set_double(b, col[p], next_value());
            }
        }
        if (rv_tframe_builder_finish(b, d->arena, 0, &d->frames[f]) != RV_OK) {
            return false;
        }
        d->samples += ROWS * CHANNELS;
    }
    rv_tframe_builder_destroy(b);
    return true;
}

/* ---- the resampler ---------------------------------------------------------------------------
 */

typedef struct run_s {
    const data_t *d;
    int aggs; /* 1: mean; 3: mean, min, max */
    rv_tinterp_param_t params[CHANNELS * 3];
    char outnames[CHANNELS * 3][24];
    /* results, [row][output] */
    double *res;
    uint8_t *has;
    size_t rows, cap;
} run_t;

static rv_err_t keep(void *opaque, const rv_tframe_t *f) {
    run_t *r = opaque;
    for (size_t i = 0; i < f->rows && r->rows < r->cap; i++, r->rows++) {
        for (size_t c = 0; c < f->column_count; c++) {
            r->has[r->rows * f->column_count + c] = rv_tcolumn_has(&f->columns[c], i);
            r->res[r->rows * f->column_count + c] = f->columns[c].v.d[i];
        }
    }
    return RV_OK;
}

static void run_setup(run_t *r, const data_t *d, int aggs) {
    memset(r, 0, sizeof *r);
    r->d = d;
    r->aggs = aggs;
    static const rv_tagg_t kinds[3] = {RV_TAGG_MEAN, RV_TAGG_MIN, RV_TAGG_MAX};
    for (int p = 0; p < CHANNELS; p++) {
        for (int a = 0; a < aggs; a++) {
            int o = p * aggs + a;
            snprintf(r->outnames[o], sizeof r->outnames[o], "%s.%s", d->names[p],
                     rv_tagg_name(kinds[a]));
            r->params[o] = (rv_tinterp_param_t){
                .name = d->names[p], .output = r->outnames[o], .agg = kinds[a]};
        }
    }
    r->cap = d->nframes * ROWS * (size_t)STEP_NS / (size_t)PERIOD_NS + 2;
    r->res = calloc(r->cap * CHANNELS * (size_t)aggs, sizeof *r->res);
    r->has = calloc(r->cap * CHANNELS * (size_t)aggs, 1);
}

static int op_resample(void *ctx) {
    run_t *r = ctx;
    r->rows = 0;
    rv_tinterp_opts_t o = {.period_ns = PERIOD_NS,
                           .params = r->params,
                           .param_count = CHANNELS * (size_t)r->aggs,
                           .emit = keep,
                           .opaque = r};
    rv_tinterp_t *ip = NULL;
    if (rv_tinterp_new(&o, &ip, NULL) != RV_OK) {
        return 1;
    }
    int bad = 0;
    for (size_t f = 0; f < r->d->nframes; f++) {
        bad |= rv_tinterp_feed(ip, r->d->frames[f], NULL) != RV_OK;
    }
    bad |= rv_tinterp_flush(ip, NULL) != RV_OK;
    rv_tinterp_destroy(ip);
    return bad;
}

/* ---- the baseline: the obvious loop, row by row --------------------------------------------- */

typedef struct naive_s {
    const data_t *d;
    int aggs;
    double sum[CHANNELS], mn[CHANNELS], mx[CHANNELS];
    int64_t n[CHANNELS];
    double *res; /* [row][channel * aggs + a] */
    uint8_t *has;
    size_t rows, cap;
} naive_t;

static void naive_emit(naive_t *z) {
    size_t w = CHANNELS * (size_t)z->aggs;
    if (z->rows < z->cap) {
        for (int p = 0; p < CHANNELS; p++) {
            double vals[3] = {z->n[p] ? z->sum[p] / (double)z->n[p] : 0, z->mn[p], z->mx[p]};
            for (int a = 0; a < z->aggs; a++) {
                z->res[z->rows * w + (size_t)(p * z->aggs + a)] = vals[a];
                z->has[z->rows * w + (size_t)(p * z->aggs + a)] = z->n[p] > 0;
            }
        }
        z->rows++;
    }
    for (int p = 0; p < CHANNELS; p++) {
        z->sum[p] = 0;
        z->n[p] = 0;
        z->mn[p] = INFINITY;
        z->mx[p] = -INFINITY;
    }
}

static int op_naive(void *ctx) {
    naive_t *z = ctx;
    z->rows = 0;
    bool open = false;
    int64_t cur = 0;
    for (int p = 0; p < CHANNELS; p++) {
        z->sum[p] = 0;
        z->n[p] = 0;
        z->mn[p] = INFINITY;
        z->mx[p] = -INFINITY;
    }
    for (size_t fi = 0; fi < z->d->nframes; fi++) {
        const rv_tframe_t *f = z->d->frames[fi];
        const rv_tcolumn_t *cols[CHANNELS];
        for (int p = 0; p < CHANNELS; p++) { /* the frames keep the channel order */
            cols[p] = (size_t)p < f->column_count && strcmp(f->columns[p].name, z->d->names[p]) == 0
                          ? &f->columns[p]
                          : rv_tframe_column(f, z->d->names[p]);
        }
        for (size_t r = 0; r < f->rows; r++) {
            int64_t t = f->timestamps[r];
            int64_t q = t / PERIOD_NS;
            if (t % PERIOD_NS < 0) {
                q--;
            }
            int64_t g = q * PERIOD_NS;
            if (open && g != cur) {
                naive_emit(z);
            }
            open = true;
            cur = g;
            for (int p = 0; p < CHANNELS; p++) {
                const rv_tcolumn_t *c = cols[p];
                if (!c || !rv_tcolumn_has(c, r) || isnan(c->v.d[r])) {
                    continue;
                }
                double v = c->v.d[r];
                z->sum[p] += v;
                z->n[p]++;
                if (z->aggs > 1) {
                    z->mn[p] = v < z->mn[p] ? v : z->mn[p];
                    z->mx[p] = v > z->mx[p] ? v : z->mx[p];
                }
            }
        }
    }
    if (open) {
        naive_emit(z);
    }
    return 0;
}

static void compare(const run_t *r, const naive_t *z) {
    size_t w = CHANNELS * (size_t)r->aggs;
    if (r->rows != z->rows) {
        rv_bench_fail(SUITE, "%s: resampler emitted %zu rows, the loop %zu", r->d->name, r->rows,
                      z->rows);
        return;
    }
    for (size_t i = 0; i < r->rows * w; i++) {
        double a = r->res[i], b = z->res[i];
        bool mean = (i % w) % (size_t)r->aggs == 0;
        bool ok = r->has[i] == z->has[i] &&
                  (!r->has[i] || (mean ? fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b)) : a == b));
        if (!ok) {
            rv_bench_fail(SUITE, "%s: result %zu differs: %.17g vs %.17g", r->d->name, i, a, b);
            return;
        }
    }
}

static void resample_case(const data_t *d, int aggs) {
    static run_t r;
    static naive_t z;
    run_setup(&r, d, aggs);
    memset(&z, 0, sizeof z);
    z.d = d;
    z.aggs = aggs;
    z.cap = r.cap;
    z.res = calloc(z.cap * CHANNELS * (size_t)aggs, sizeof *z.res);
    z.has = calloc(z.cap * CHANNELS * (size_t)aggs, 1);
    if (!r.res || !r.has || !z.res || !z.has) {
        rv_bench_fail(SUITE, "out of memory");
        return;
    }
    rv_bench_timing_opts_t opts = {.min_ms = rv_bench_quick() ? 20 : 300};
    rv_bench_log(SUITE, "%s: resample to 10 Hz, %s", d->name, aggs == 1 ? "mean" : "mean/min/max");
    rv_bench_timing_t t = rv_bench_time(op_resample, &r, &opts);
    rv_bench_timing_t tb = rv_bench_time(op_naive, &z, &opts);
    if (t.failures) {
        rv_bench_fail(SUITE, "%s: %llu failed resamples", d->name, (unsigned long long)t.failures);
    }
    compare(&r, &z);
    double rate = rv_bench_rate(&t, (double)d->samples);
    double base = rv_bench_rate(&tb, (double)d->samples);
    char name[160], note[200];
    snprintf(name, sizeof name, "resample 1 kHz -> 10 Hz, %s, %s",
             aggs == 1 ? "mean" : "mean+min+max", d->name);
    snprintf(note, sizeof note,
             "input samples/s, one core; absolute target >= %.0f M samples/s: %s", TARGET / 1e6,
             rate >= TARGET ? "met" : "NOT met");
    rv_bench_row_t row = {.suite = SUITE,
                          .name = name,
                          .value = rate / 1e6,
                          .unit = "M samples/s",
                          .baseline = "naive C loop, row by row",
                          .baseline_value = base / 1e6,
                          .note = note};
    rv_bench_report(&row);
    if (rate < TARGET) {
        rv_bench_log(SUITE, "%s: %.1f M samples/s is below the %.0f M target", name, rate / 1e6,
                     TARGET / 1e6);
    }
    free(r.res);
    free(r.has);
    free(z.res);
    free(z.has);
}

/* ---- the buffer ----------------------------------------------------------------------------- */

typedef struct buf_s {
    const data_t *d;
    size_t released;
} buf_t;

static rv_err_t count_rows(void *opaque, const rv_tframe_t *f, rv_tbuffer_reason_t reason) {
    (void)reason;
    ((buf_t *)opaque)->released += f->rows;
    return RV_OK;
}

static rv_tbuffer_t *bench_buffer;

static int op_buffer(void *ctx) {
    buf_t *bt = ctx;
    bt->released = 0;
    int bad = 0;
    for (size_t f = 0; f < bt->d->nframes; f++) {
        bad |= rv_tbuffer_add(bench_buffer, bt->d->frames[f], NULL) != RV_OK;
    }
    bad |= rv_tbuffer_flush(bench_buffer, NULL) != RV_OK;
    return bad || bt->released != bt->d->nframes * ROWS;
}

static void buffer_case(const data_t *d) {
    static buf_t bt;
    bt.d = d;
    rv_tbuffer_opts_t o = {.packet_size = 1000, .release = count_rows, .opaque = &bt};
    if (rv_tbuffer_new(&o, &bench_buffer, NULL) != RV_OK) {
        rv_bench_fail(SUITE, "buffer: could not create");
        return;
    }
    rv_bench_log(SUITE, "%s: buffer, packet_size 1000", d->name);
    rv_bench_timing_opts_t opts = {.min_ms = rv_bench_quick() ? 20 : 300};
    rv_bench_timing_t t = rv_bench_time(op_buffer, &bt, &opts);
    if (t.failures) {
        rv_bench_fail(SUITE, "buffer: %llu failed passes (rows lost or errors)",
                      (unsigned long long)t.failures);
    }
    char name[160];
    snprintf(name, sizeof name, "buffer 100-row frames into 1000-row packets, %s", d->name);
    rv_bench_row_t row = {.suite = SUITE,
                          .name = name,
                          .value = rv_bench_rate(&t, (double)d->samples) / 1e6,
                          .unit = "M samples/s",
                          .note = "rv_tbuffer_add + release, packet_size 1000; no baseline"};
    rv_bench_report(&row);
    rv_tbuffer_destroy(bench_buffer);
}

void rv_bench_suite_timeseries(void) {
    static data_t dense, sparse;
    size_t seconds = rv_bench_quick() ? 10 : 60;
    if (!build(&dense, "50 doubles", seconds, 0) ||
        !build(&sparse, "50 doubles, 1 in 5 absent", seconds, 5)) {
        rv_bench_fail(SUITE, "could not build the frames");
        return;
    }
    resample_case(&dense, 1);
    resample_case(&dense, 3);
    resample_case(&sparse, 1);
    buffer_case(&dense);
    buffer_case(&sparse);
    rv_bench_context("timeseries: %zu s of 1 kHz data, %d double channels, frames of %d rows; "
                     "resampled to 10 Hz (grid origin 0) by a resampler created per pass",
                     seconds, CHANNELS, ROWS);
    data_t *sets[] = {&dense, &sparse};
    for (int i = 0; i < 2; i++) {
        rv_arena_destroy(sets[i]->arena);
        free(sets[i]->frames);
    }
}
