/*
 * resample.c: buffer a stream's small frames into packets, then resample them to 10 Hz.
 *
 * One second of a car's 1 kHz speed (double, one sample missing) and rpm (int64) arrives in
 * frames of 10 rows. A time-series buffer gathers them into 250-row packets; each packet goes to
 * a resampler that emits the mean speed and the maximum rpm of every 100 ms on the grid. The
 * example prints the 10 rows and checks them against the same figures computed with a plain
 * loop; it exits 0 when they agree, 1 otherwise.
 */
#include <math.h>
#include <rivulet/rivulet.h>
#include <stdio.h>

#define ROWS 1000
#define T0 INT64_C(1763900000000000000) /* ns since the epoch, on the 100 ms grid */
#define MS INT64_C(1000000)

static double speed_at(int i) {
    return 200.0 + 0.1 * i;
}

typedef struct result_s {
    size_t rows;
    int64_t t[16];
    double speed[16], rpm[16];
    bool speed_has[16];
} result_t;

/* The resampler's output: one row per 100 ms. */
static rv_err_t on_rows(void *opaque, const rv_tframe_t *f) {
    result_t *r = opaque;
    const rv_tcolumn_t *speed = rv_tframe_column(f, "speed.mean");
    const rv_tcolumn_t *rpm = rv_tframe_column(f, "rpm.max");
    for (size_t i = 0; i < f->rows && r->rows < 16; i++, r->rows++) {
        r->t[r->rows] = f->timestamps[i];
        r->speed_has[r->rows] = rv_tcolumn_has(speed, i);
        r->speed[r->rows] = speed->v.d[i];
        r->rpm[r->rows] = rpm->v.d[i];
        printf("t=+%3lld ms  speed.mean=%.4f  rpm.max=%.0f\n",
               (long long)((f->timestamps[i] - T0) / MS), speed->v.d[i], rpm->v.d[i]);
    }
    return RV_OK;
}

/* The buffer's output: a 250-row packet, fed to the resampler. */
static rv_err_t on_packet(void *opaque, const rv_tframe_t *packet, rv_tbuffer_reason_t why) {
    printf("packet of %zu rows (%s)\n", packet->rows, rv_tbuffer_reason_name(why));
    return rv_tinterp_feed(opaque, packet, NULL);
}

int main(void) {
    result_t res = {0};
    const rv_tinterp_param_t params[] = {
        {.name = "speed", .output = "speed.mean", .agg = RV_TAGG_MEAN},
        {.name = "rpm", .output = "rpm.max", .agg = RV_TAGG_MAX},
    };
    rv_tinterp_opts_t io = {
        .period_ns = 100 * MS, .params = params, .param_count = 2, .emit = on_rows, .opaque = &res};
    rv_tinterp_t *ip = NULL;
    rv_tbuffer_t *buf = NULL;
    rv_error_t *err = NULL;
    if (rv_tinterp_new(&io, &ip, &err) != RV_OK) {
        fprintf(stderr, "resampler: %s\n", rv_error_message(err));
        return 1;
    }
    rv_tbuffer_opts_t bo = {.packet_size = 250, .release = on_packet, .opaque = ip};
    if (rv_tbuffer_new(&bo, &buf, &err) != RV_OK) {
        fprintf(stderr, "buffer: %s\n", rv_error_message(err));
        return 1;
    }

    rv_arena_t *arena = rv_arena_new(0);
    rv_tframe_builder_t *b = rv_tframe_builder_new();
    for (int i = 0; i < ROWS; i += 10) { /* frames of 10 rows, as they arrive */
        int speed = rv_tframe_builder_column(b, "speed", RV_TCOL_DOUBLE);
        int rpm = rv_tframe_builder_column(b, "rpm", RV_TCOL_INT64);
        for (int k = i; k < i + 10; k++) {
            rv_tframe_builder_add_row(b, T0 + k * MS);
            if (k != 150) { /* a dropped sample */
                rv_tframe_builder_set_double(b, speed, speed_at(k));
            }
            rv_tframe_builder_set_int(b, rpm, 10000 + (k * 37) % 1000);
        }
        const rv_tframe_t *frame = NULL;
        if (rv_tframe_builder_finish(b, arena, 0, &frame) != RV_OK ||
            rv_tbuffer_add(buf, frame, &err) != RV_OK) {
            fprintf(stderr, "add: %s\n", rv_error_message(err));
            return 1;
        }
        rv_arena_reset(arena);
    }
    /* End of stream: the buffer's last rows, then the resampler's open interval. */
    if (rv_tbuffer_flush(buf, &err) != RV_OK || rv_tinterp_flush(ip, &err) != RV_OK) {
        fprintf(stderr, "flush: %s\n", rv_error_message(err));
        return 1;
    }
    rv_tframe_builder_destroy(b);
    rv_arena_destroy(arena);
    rv_tbuffer_destroy(buf);
    rv_tinterp_destroy(ip);

    /* The same figures with a plain loop. */
    int bad = res.rows != 10;
    for (size_t k = 0; k < res.rows && k < 10; k++) {
        double sum = 0, mx = -INFINITY;
        int n = 0;
        for (int i = (int)k * 100; i < (int)k * 100 + 100; i++) {
            if (i != 150) {
                sum += speed_at(i);
                n++;
            }
            double rpm = 10000 + (i * 37) % 1000;
            mx = rpm > mx ? rpm : mx;
        }
        bad |= res.t[k] != T0 + (int64_t)k * 100 * MS || !res.speed_has[k] ||
               fabs(res.speed[k] - sum / n) > 1e-9 || res.rpm[k] != mx;
    }
    printf("%s\n", bad ? "MISMATCH" : "ok: 10 rows match the plain loop");
    return bad;
}
