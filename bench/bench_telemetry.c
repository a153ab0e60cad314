/*
 * bench_telemetry.c: the telemetry wire format's frame path, rivulet against protobuf-c.
 *
 * Frames of 100 timestamps (1 ms apart) by 50 double parameters, as a car's channels arrive in
 * a packet, are encoded with rv_tpacket_encode() and decoded with rv_tpacket_decode() (into an
 * arena reset per frame); the baseline packs and unpacks the same Envelope with protoc-c's
 * generated code for proto/telemetry.proto (the generic pack/unpack, freeing what it unpacked).
 * A second data set leaves one cell in five absent, so presence bitmaps and the scatter path are
 * timed too; a third is the dense frame as a stream writer sends it, with data format 1 and
 * no column names (the format gives them). The builder's rate (add a row, set 50 values) is
 * reported alone. Self-checks: a
 * decoded frame equals the one encoded, protobuf-c reads rivulet's bytes to the same values and
 * rivulet reads protobuf-c's. The target is absolute: 20 million samples decoded per second on
 * one core; the ratio to protobuf-c is reported beside it. Figures are never shaped to flatter.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "proto/telemetry.pb-c.h"
#include "rivulet/telemetry.h"

#define SUITE "telemetry"
#define ROWS 100
#define PARAMS 50
#define TARGET_DECODE 20e6 /* samples per second */

typedef struct data_s {
    const char *name;
    rv_arena_t *arena; /* the frame and packet */
    rv_tpacket_t packet;
    rv_tpacket_t expect; /* what decoding gives: names left to the format read as "" */
    rv_tframe_t uframe, eframe;
    rv_tcolumn_t ucols[PARAMS], ecols[PARAMS];
    rv_strbuf_t wire; /* rivulet's encoding */
    size_t samples;   /* present cells */
    /* protobuf-c's view of the same packet, for its pack */
    Rivulet__Telemetry__Envelope env;
    Rivulet__Telemetry__Frame frame;
    Rivulet__Telemetry__Column cols[PARAMS];
    Rivulet__Telemetry__Column *colp[PARAMS];
    double vals[PARAMS][ROWS];
    uint8_t bitmaps[PARAMS][(ROWS + 7) / 8];
    int64_t deltas[ROWS];
    char names[PARAMS][16];
    uint8_t *pc_wire;
    size_t pc_len;
    /* scratch for the timed operations */
    rv_arena_t *scratch;
    rv_strbuf_t out;
} data_t;

static uint64_t rng = UINT64_C(0x74656c656d657472);

static double next_value(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 400.0 - 100.0;
}

/* A frame of PARAMS double columns, one cell in `absent_every` absent (0: none); `unnamed`: the
 * frame has data format 1 and leaves its column names to it, as rv_twriter_t sends frames. */
static bool build(data_t *d, const char *name, int absent_every, bool unnamed) {
    memset(d, 0, sizeof *d);
    d->name = name;
    d->arena = rv_arena_new(1 << 20);
    d->scratch = rv_arena_new(1 << 20);
    rv_tframe_builder_t *b = rv_tframe_builder_new();
    int col[PARAMS];
    for (int p = 0; p < PARAMS; p++) {
        snprintf(d->names[p], sizeof d->names[p], "channel_%02d", p);
        col[p] = rv_tframe_builder_column(b, d->names[p], RV_TCOL_DOUBLE);
    }
    int64_t t0 = INT64_C(1763900000000000000);
    for (int r = 0; r < ROWS; r++) {
        rv_tframe_builder_add_row(b, t0 + r * 1000000);
        for (int p = 0; p < PARAMS; p++) {
            if (absent_every && (r * PARAMS + p) % absent_every == 0) {
                continue;
            }
            rv_tframe_builder_set_double(b, col[p], next_value());
            d->samples++;
        }
    }
    const rv_tframe_t *f = NULL;
    if (rv_tframe_builder_finish(b, d->arena, unnamed ? 1 : 0, &f) != RV_OK) {
        return false;
    }
    rv_tframe_builder_destroy(b);
    d->packet = (rv_tpacket_t){.type = RV_TPACKET_FRAME, .stream_id = "car-7", .u.frame = f};
    d->expect = d->packet;
    if (unnamed) {
        for (int p = 0; p < PARAMS; p++) {
            d->ucols[p] = d->ecols[p] = f->columns[p];
            d->ucols[p].name = NULL;
            d->ecols[p].name = "";
        }
        d->uframe = d->eframe = *f;
        d->uframe.columns = d->ucols;
        d->eframe.columns = d->ecols;
        d->packet.u.frame = &d->uframe;
        d->expect.u.frame = &d->eframe;
    }
    if (rv_tpacket_encode(&d->packet, &d->wire, NULL) != RV_OK) {
        return false;
    }
    /* The same frame as protobuf-c structs. */
    Rivulet__Telemetry__Envelope env = RIVULET__TELEMETRY__ENVELOPE__INIT;
    Rivulet__Telemetry__Frame fr = RIVULET__TELEMETRY__FRAME__INIT;
    d->env = env;
    d->frame = fr;
    d->env.has_version = 1;
    d->env.version = 1;
    d->env.stream_id = "car-7";
    d->env.packet_case = RIVULET__TELEMETRY__ENVELOPE__PACKET_FRAME;
    d->env.frame = &d->frame;
    int64_t prev = 0;
    for (int r = 0; r < ROWS; r++) {
        d->deltas[r] = f->timestamps[r] - prev;
        prev = f->timestamps[r];
    }
    d->frame.has_format_id = unnamed;
    d->frame.format_id = unnamed ? 1 : 0;
    d->frame.n_timestamp_deltas = ROWS;
    d->frame.timestamp_deltas = d->deltas;
    d->frame.n_columns = PARAMS;
    d->frame.columns = d->colp;
    for (int p = 0; p < PARAMS; p++) {
        Rivulet__Telemetry__Column c = RIVULET__TELEMETRY__COLUMN__INIT;
        const rv_tcolumn_t *src = &f->columns[p];
        d->cols[p] = c;
        d->colp[p] = &d->cols[p];
        d->cols[p].name = unnamed ? NULL : d->names[p];
        d->cols[p].has_type = 1;
        d->cols[p].type = RIVULET__TELEMETRY__COLUMN_TYPE__DOUBLE;
        size_t n = 0;
        for (int r = 0; r < ROWS; r++) {
            if (rv_tcolumn_has(src, (size_t)r)) {
                d->vals[p][n++] = src->v.d[r];
            }
        }
        if (src->present) {
            memcpy(d->bitmaps[p], src->present, sizeof d->bitmaps[p]);
            d->cols[p].has_present = 1;
            d->cols[p].present = (ProtobufCBinaryData){sizeof d->bitmaps[p], d->bitmaps[p]};
        }
        d->cols[p].n_doubles = n;
        d->cols[p].doubles = d->vals[p];
    }
    d->pc_len = rivulet__telemetry__envelope__get_packed_size(&d->env);
    d->pc_wire = malloc(d->pc_len);
    rivulet__telemetry__envelope__pack(&d->env, d->pc_wire);
    return true;
}

static void release(data_t *d) {
    rv_arena_destroy(d->arena);
    rv_arena_destroy(d->scratch);
    rv_strbuf_free(&d->wire);
    rv_strbuf_free(&d->out);
    free(d->pc_wire);
}

static int op_decode(void *ctx) {
    data_t *d = ctx;
    rv_arena_reset(d->scratch);
    rv_tpacket_t *p = NULL;
    return rv_tpacket_decode(d->scratch, d->wire.data, d->wire.len, &p, NULL) != RV_OK;
}

static int op_pc_unpack(void *ctx) {
    data_t *d = ctx;
    Rivulet__Telemetry__Envelope *e =
        rivulet__telemetry__envelope__unpack(NULL, d->pc_len, d->pc_wire);
    if (!e) {
        return 1;
    }
    rivulet__telemetry__envelope__free_unpacked(e, NULL);
    return 0;
}

static int op_encode(void *ctx) {
    data_t *d = ctx;
    rv_strbuf_clear(&d->out);
    return rv_tpacket_encode(&d->packet, &d->out, NULL) != RV_OK;
}

static int op_pc_pack(void *ctx) {
    data_t *d = ctx;
    rv_strbuf_clear(&d->out);
    if (rv_strbuf_reserve(&d->out, d->pc_len) != RV_OK) {
        return 1;
    }
    size_t n = rivulet__telemetry__envelope__pack(&d->env, (uint8_t *)d->out.data);
    d->out.len = n;
    return n != d->pc_len;
}

static rv_tframe_builder_t *bench_builder;

static int op_build(void *ctx) {
    data_t *d = ctx;
    rv_arena_reset(d->scratch);
    rv_tframe_builder_t *b = bench_builder;
    const rv_tframe_t *f = d->packet.u.frame;
    int col[PARAMS];
    for (int p = 0; p < PARAMS; p++) {
        col[p] = rv_tframe_builder_column(b, d->names[p], RV_TCOL_DOUBLE);
    }
    for (int r = 0; r < ROWS; r++) {
        rv_tframe_builder_add_row(b, f->timestamps[r]);
        for (int p = 0; p < PARAMS; p++) {
            rv_tframe_builder_set_double(b, col[p], f->columns[p].v.d[r]);
        }
    }
    const rv_tframe_t *out = NULL;
    return rv_tframe_builder_finish(b, d->scratch, 0, &out) != RV_OK;
}

static int op_tree(void *ctx) {
    data_t *d = ctx;
    rv_arena_reset(d->scratch);
    rv_tpacket_t *p = NULL;
    rv_value_t *v = NULL;
    return rv_tpacket_decode(d->scratch, d->wire.data, d->wire.len, &p, NULL) != RV_OK ||
           rv_tpacket_to_value(d->scratch, p, &v, NULL) != RV_OK;
}

/* The self-checks: both directions of interoperability and an exact round trip. */
static void check(data_t *d) {
    rv_tpacket_t *p = NULL;
    rv_arena_reset(d->scratch);
    if (rv_tpacket_decode(d->scratch, d->wire.data, d->wire.len, &p, NULL) != RV_OK ||
        !rv_tpacket_equal(p, &d->expect)) {
        rv_bench_fail(SUITE, "%s: rivulet's decode of its own frame differs", d->name);
    }
    rv_arena_reset(d->scratch);
    if (rv_tpacket_decode(d->scratch, d->pc_wire, d->pc_len, &p, NULL) != RV_OK ||
        !rv_tpacket_equal(p, &d->expect)) {
        rv_bench_fail(SUITE, "%s: rivulet reads protobuf-c's frame differently", d->name);
    }
    Rivulet__Telemetry__Envelope *e =
        rivulet__telemetry__envelope__unpack(NULL, d->wire.len, (const uint8_t *)d->wire.data);
    bool same = e && e->frame && e->frame->n_columns == PARAMS;
    for (int c = 0; same && c < PARAMS; c++) {
        same = e->frame->columns[c]->n_doubles == d->cols[c].n_doubles &&
               memcmp(e->frame->columns[c]->doubles, d->vals[c],
                      d->cols[c].n_doubles * sizeof(double)) == 0;
    }
    if (!same) {
        rv_bench_fail(SUITE, "%s: protobuf-c reads rivulet's frame differently", d->name);
    }
    if (e) {
        rivulet__telemetry__envelope__free_unpacked(e, NULL);
    }
}

static void run_case(data_t *d, const char *what, rv_bench_op_fn ours, rv_bench_op_fn theirs,
                     double target) {
    rv_bench_timing_opts_t opts = {.min_ms = rv_bench_quick() ? 20 : 200};
    rv_bench_timing_t a = rv_bench_time(ours, d, &opts);
    rv_bench_timing_t b = rv_bench_time(theirs, d, &opts);
    if (a.failures || b.failures) {
        rv_bench_fail(SUITE, "%s %s: %" PRIu64 " + %" PRIu64 " failed operations", d->name, what,
                      a.failures, b.failures);
    }
    double ra = rv_bench_rate(&a, (double)d->samples), rb = rv_bench_rate(&b, (double)d->samples);
    char name[96], note[160];
    snprintf(name, sizeof name, "frame %s, %s", what, d->name);
    snprintf(note, sizeof note, "%zu B a frame (protobuf-c %zu B)%s", d->wire.len, d->pc_len,
             target > 0 ? (ra >= target ? "; >= 20 M samples/s target met"
                                        : "; BELOW the 20 M samples/s target")
                        : "");
    rv_bench_row_t row = {.suite = SUITE,
                          .name = name,
                          .value = ra / 1e6,
                          .unit = "M samples/s",
                          .value2 = rv_bench_rate(&a, (double)d->wire.len) / 1e6,
                          .unit2 = "MB/s",
                          .baseline = "protobuf-c",
                          .baseline_value = rb / 1e6,
                          .baseline_value2 = rv_bench_rate(&b, (double)d->pc_len) / 1e6,
                          .note = note};
    rv_bench_report(&row);
    if (target > 0 && ra < target) {
        rv_bench_log(SUITE, "%s: %.1f M samples/s is below the %.0f M target", name, ra / 1e6,
                     target / 1e6);
    }
}

void rv_bench_suite_telemetry(void) {
    static data_t dense, sparse, unnamed;
    if (!build(&dense, "100 x 50 doubles", 0, false) ||
        !build(&sparse, "100 x 50 doubles, 1 in 5 absent", 5, false) ||
        !build(&unnamed, "100 x 50 doubles, names left to the data format", 0, true)) {
        rv_bench_fail(SUITE, "could not build the frames");
        return;
    }
    bench_builder = rv_tframe_builder_new();
    data_t *sets[] = {&dense, &sparse, &unnamed};
    for (int i = 0; i < 3; i++) {
        check(sets[i]);
        rv_bench_log(SUITE, "%s: decode", sets[i]->name);
        run_case(sets[i], "decode", op_decode, op_pc_unpack, TARGET_DECODE);
        rv_bench_log(SUITE, "%s: encode", sets[i]->name);
        run_case(sets[i], "encode", op_encode, op_pc_pack, 0);
    }
    rv_bench_timing_opts_t opts = {.min_ms = rv_bench_quick() ? 20 : 200};
    rv_bench_timing_t t = rv_bench_time(op_build, &dense, &opts);
    rv_bench_row_t row = {.suite = SUITE,
                          .name = "frame build (add_row + set_double, finish), 100 x 50",
                          .value = rv_bench_rate(&t, (double)dense.samples) / 1e6,
                          .unit = "M samples/s",
                          .note = "rv_tframe_builder_t, reused; no baseline"};
    rv_bench_report(&row);
    /* What a pipeline pays on top: the packet as the value tree the serialisers hand over. */
    t = rv_bench_time(op_tree, &dense, &opts);
    if (t.failures) {
        rv_bench_fail(SUITE, "tree: %" PRIu64 " failed operations", t.failures);
    }
    rv_bench_row_t tree = {.suite = SUITE,
                           .name = "frame decode + rv_tpacket_to_value (the serialiser's tree)",
                           .value = rv_bench_rate(&t, (double)dense.samples) / 1e6,
                           .unit = "M samples/s",
                           .note = "rows of objects, as the telemetry serialiser hands a frame "
                                   "to a dataframe; no baseline"};
    rv_bench_report(&tree);
    rv_bench_context("telemetry: frames of %d timestamps 1 ms apart x %d double channels; "
                     "decode into an arena reset per frame; protobuf-c %s generic "
                     "pack/unpack (+free_unpacked) of the same Envelope",
                     ROWS, PARAMS, protobuf_c_version());
    rv_tframe_builder_destroy(bench_builder);
    release(&dense);
    release(&sparse);
    release(&unnamed);
}
