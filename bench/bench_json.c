/*
 * bench_json.c: JSON parse and write throughput, rivulet against jansson and json-c.
 *
 * Two data sets are generated in memory from a fixed seed, so every run and every library sees
 * the same bytes: "telemetry", many small documents shaped like car telemetry records, and
 * "large file", one ~24 MB document that is written to a temporary file and read back before
 * it is parsed, as a user would parse a file. Each library parses with its idiomatic fastest
 * API and then writes the trees it parsed; all of them run the same number of passes over the
 * same bytes, after one unmeasured warm-up pass. Self-checks give the figures their meaning:
 * every parser must accept every document, rivulet's output must read back to an equal tree
 * (and to the same numbers through jansson), and the three parsers must agree on every number,
 * string and container they saw. This file must never shape a data set or an option to
 * flatter rivulet: a figure below target is reported as it is.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rivulet/arena.h"
#include "rivulet/error.h"
#include "rivulet/json.h"
#include "rivulet/strbuf.h"
#include "rivulet/value.h"

#include "bench.h"

#ifdef RV_HAVE_BASELINES
#include <jansson.h>
/*
 * jansson and json-c both declare json_type, json_object, json_object_get, json_object_iter
 * and json_object_iter_next, each their own way, so json-c's names are renamed while its
 * headers are read: here json-c's object type is `jc_value`. The executable's references to
 * json_object_iter_next (jansson's foreach) bind to jansson because CMake links it first;
 * check_symbol_binding() makes sure before any jansson object is walked.
 */
#define json_object jc_value
#define json_type jc_type
#define json_object_get jc_object_get_unused
#define json_object_iter jc_object_iter_unused
#define json_object_iter_next jc_object_iter_next_unused
#include <json-c/json.h>
#undef json_object
#undef json_type
#undef json_object_get
#undef json_object_iter
#undef json_object_iter_next
#endif

#define SUITE "json"
#define TARGET_RATIO 3.0
#define SEED UINT64_C(0x726976756c657421)
#define BASE_TS UINT64_C(1763900000000000000)

/* Sizes: documents in "telemetry", bytes of "large file"; --quick shrinks both. */
#define TELEMETRY_DOCS 16000
#define TELEMETRY_DOCS_QUICK 800
#define LARGE_BYTES (24u * 1000u * 1000u)
#define LARGE_BYTES_QUICK (1000u * 1000u)

/* ---- deterministic random numbers (splitmix64) ------------------------------------------- */

typedef struct rng_s {
    uint64_t state;
} rng_t;

static uint64_t rng_next(rng_t *r) {
    uint64_t z = (r->state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A number in [0, n); the modulo bias is irrelevant here. */
static uint64_t rng_below(rng_t *r, uint64_t n) {
    return n ? rng_next(r) % n : 0;
}

static bool rng_percent(rng_t *r, unsigned percent) {
    return rng_below(r, 100) < percent;
}

/* ---- text building ----------------------------------------------------------------------- */

static void put(rv_strbuf_t *sb, const char *s, size_t n) {
    if (rv_strbuf_append(sb, s, n) != RV_OK) {
        fprintf(stderr, "[json] out of memory while generating the data sets\n");
        exit(1);
    }
}

static void put_str(rv_strbuf_t *sb, const char *s) {
    put(sb, s, strlen(s));
}

static void put_u64(rv_strbuf_t *sb, uint64_t v) {
    char b[24];
    size_t i = sizeof b;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(sb, b + i, sizeof b - i);
}

static void put_i64(rv_strbuf_t *sb, int64_t v) {
    if (v < 0) {
        put(sb, "-", 1);
        put_u64(sb, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(sb, (uint64_t)v);
    }
}

static uint64_t pow10u(int n) {
    uint64_t p = 1;
    while (n-- > 0) {
        p *= 10;
    }
    return p;
}

/*
 * Writes scaled / 10^decimals as a decimal with a fraction ("287.4531"), trailing zeros
 * dropped but one fraction digit kept ("12.0"), the way telemetry loggers print readings.
 * Exact: no double is involved, so the text is the same on every machine.
 */
static void put_fixed(rv_strbuf_t *sb, int64_t scaled, int decimals) {
    uint64_t mag = scaled < 0 ? (uint64_t)0 - (uint64_t)scaled : (uint64_t)scaled;
    uint64_t p = pow10u(decimals);
    if (scaled < 0) {
        put(sb, "-", 1);
    }
    put_u64(sb, mag / p);
    char frac[16];
    uint64_t f = mag % p;
    for (int i = decimals - 1; i >= 0; i--) {
        frac[i] = (char)('0' + f % 10);
        f /= 10;
    }
    int n = decimals;
    while (n > 1 && frac[n - 1] == '0') {
        n--;
    }
    put(sb, ".", 1);
    put(sb, frac, (size_t)n);
}

/* ---- the telemetry shape ----------------------------------------------------------------- */

typedef enum ch_kind_e { CH_FIXED, CH_INT, CH_EXP, CH_GPS, CH_STRING, CH_BOOL } ch_kind_t;

typedef struct channel_s {
    const char *name;
    ch_kind_t kind;
    double lo, hi; /* range of the reading (CH_FIXED, CH_INT, CH_GPS) */
    int decimals;  /* fraction digits (CH_FIXED, CH_GPS) or index of the choices (CH_STRING) */
} channel_t;

static const char *const gears[] = {"N", "R", "1", "2", "3", "4", "5", "6", "7", "8"};
static const char *const track_states[] = {"green", "yellow", "double-yellow", "sc", "vsc", "red"};
static const char *const compounds[] = {"soft", "medium", "hard", "intermediate", "wet"};
static const char *const modes[] = {"race", "quali", "harvest", "overtake", "pit"};
static const char *const *const choices[] = {gears, track_states, compounds, modes};
static const size_t nchoices[] = {
    sizeof gears / sizeof *gears, sizeof track_states / sizeof *track_states,
    sizeof compounds / sizeof *compounds, sizeof modes / sizeof *modes};

#define FIXED(name, lo, hi, dec)                                                                   \
    { name, CH_FIXED, lo, hi, dec }
#define CORNERS(name, lo, hi, dec)                                                                 \
    FIXED(name "FL", lo, hi, dec), FIXED(name "FR", lo, hi, dec), FIXED(name "RL", lo, hi, dec),   \
        FIXED(name "RR", lo, hi, dec)

static const channel_t channels[] = {
    FIXED("vCar", 0, 360, 4),         {"nEngine", CH_INT, 3000, 15500, 0},
    FIXED("rThrottle", 0, 100, 2),    FIXED("pBrakeF", 0, 180, 3),
    FIXED("pBrakeR", 0, 120, 3),      FIXED("gLat", -6, 6, 5),
    FIXED("gLong", -6, 6, 5),         FIXED("gVert", -3, 3, 5),
    FIXED("sLap", 0, 5891, 3),        FIXED("lapFraction", 0, 1, 6),
    {"gear", CH_STRING, 0, 0, 0},     {"trackStatus", CH_STRING, 0, 0, 1},
    {"compound", CH_STRING, 0, 0, 2}, {"ersMode", CH_STRING, 0, 0, 3},
    FIXED("mFuel", 0, 110, 3),        FIXED("eBattery", 0, 4, 6),
    {"drsOpen", CH_BOOL, 0, 0, 0},    {"pitLimiter", CH_BOOL, 0, 0, 0},
    FIXED("aSteering", -180, 180, 3), FIXED("rYaw", -2, 2, 7),
    FIXED("tAir", 10, 45, 1),         FIXED("tTrack", 15, 60, 1),
    {"humidity", CH_INT, 20, 95, 0},  FIXED("vWind", 0, 15, 2),
    {"lat", CH_GPS, 52.0, 52.1, 14},  {"lon", CH_GPS, -1.1, -1.0, 14},
    FIXED("altitude", 100, 200, 2),   {"dtSample", CH_EXP, 0, 0, 0},
    {"iMGUK", CH_EXP, 0, 0, 0},       FIXED("torque", -200, 900, 2),
    FIXED("tOil", 80, 140, 2),        FIXED("tWater", 70, 130, 2),
    FIXED("rClutch", 0, 1, 4),        {"tLapMs", CH_INT, 60000, 120000, 0},
    {"sector", CH_INT, 1, 3, 0},      FIXED("xPos", -2000, 2000, 3),
    FIXED("yPos", -2000, 2000, 3),    FIXED("zPos", -50, 50, 3),
    CORNERS("tTyre", 60, 130, 1),     CORNERS("pTyre", 1.5, 2.2, 4),
    CORNERS("tBrake", 200, 1100, 1),  CORNERS("vWheel", 0, 360, 3),
    CORNERS("hRide", 10, 80, 3),
};
#define NCHANNELS (sizeof channels / sizeof channels[0])

/* Strings with escapes and non-ASCII text, already spelled as JSON. */
static const char *const notes[] = {
    "\"box, box \\\"now\\\"\"",
    "\"R\xc3\xa4ikk\xc3\xb6nen ahead in S2\"",
    "\"yellow flag in T3\\nslow car\"",
    "\"tTrack 41\\u00b0C, tab\\there\"",
    "\"chequered \\ud83c\\udfc1 / \xf0\x9f\x8f\x81\"",
    "\"path C:\\\\logs\\\\fp2\\/car-07\"",
};
static const char *const teams[] = {"red", "silver", "papaya", "green", "blue", "rosso"};
static const char *const sessions[] = {"FP1", "FP2", "FP3", "Q", "SQ", "R"};

static void put_reading(rng_t *rng, rv_strbuf_t *sb, const channel_t *ch) {
    switch (ch->kind) {
        case CH_FIXED:
        case CH_GPS: {
            int64_t lo = (int64_t)(ch->lo * (double)pow10u(ch->decimals));
            int64_t hi = (int64_t)(ch->hi * (double)pow10u(ch->decimals));
            put_fixed(sb, lo + (int64_t)rng_below(rng, (uint64_t)(hi - lo) + 1), ch->decimals);
            break;
        }
        case CH_INT:
            put_i64(sb, (int64_t)ch->lo + (int64_t)rng_below(rng, (uint64_t)(ch->hi - ch->lo) + 1));
            break;
        case CH_EXP: {
            /* Small quantities as loggers print them: "1.25e-3", "-4.08e-7". */
            uint64_t m = 100 + rng_below(rng, 900);
            char text[32];
            snprintf(text, sizeof text, "%s%d.%02de-%d", rng_percent(rng, 20) ? "-" : "",
                     (int)(m / 100), (int)(m % 100), 3 + (int)rng_below(rng, 6));
            put_str(sb, text);
            break;
        }
        case CH_STRING: {
            const char *s = choices[ch->decimals][rng_below(rng, nchoices[ch->decimals])];
            put(sb, "\"", 1);
            put_str(sb, s);
            put(sb, "\"", 1);
            break;
        }
        case CH_BOOL:
            put_str(sb, rng_percent(rng, 50) ? "true" : "false");
            break;
    }
}

/* The fields every record starts with: timestamp in ns, car id, lap. */
static void put_record_head(rng_t *rng, rv_strbuf_t *sb, uint64_t seq) {
    char car[16];
    put_str(sb, "{\"ts\":");
    put_u64(sb, BASE_TS + seq * 1000000u + rng_below(rng, 1000000));
    snprintf(car, sizeof car, "car-%02d", 1 + (int)rng_below(rng, 20));
    put_str(sb, ",\"car\":\"");
    put_str(sb, car);
    put_str(sb, "\",\"lap\":");
    put_u64(sb, 1 + rng_below(rng, 70));
}

/*
 * One telemetry record: 3 fixed fields, 2 to 44 channel readings picked at random (no key
 * twice), and now and then a null, a nested "tags" object and a string with escapes; 5 to 50
 * fields in all.
 */
static void put_telemetry(rng_t *rng, rv_strbuf_t *sb, uint64_t seq) {
    size_t idx[NCHANNELS];
    for (size_t i = 0; i < NCHANNELS; i++) {
        idx[i] = i;
    }
    put_record_head(rng, sb, seq);
    size_t k = 2 + (size_t)rng_below(rng, 43);
    for (size_t i = 0; i < k; i++) {
        size_t j = i + (size_t)rng_below(rng, NCHANNELS - i);
        size_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        const channel_t *ch = &channels[idx[i]];
        put_str(sb, ",\"");
        put_str(sb, ch->name);
        put_str(sb, "\":");
        put_reading(rng, sb, ch);
    }
    if (rng_percent(rng, 5)) {
        put_str(sb, ",\"flag\":null");
    }
    if (rng_percent(rng, 20)) {
        put_str(sb, ",\"tags\":{\"team\":\"");
        put_str(sb, teams[rng_below(rng, sizeof teams / sizeof *teams)]);
        put_str(sb, "\",\"session\":\"");
        put_str(sb, sessions[rng_below(rng, sizeof sessions / sizeof *sessions)]);
        put_str(sb, "\",\"stint\":");
        put_u64(sb, 1 + rng_below(rng, 4));
        put_str(sb, ",\"wet\":");
        put_str(sb, rng_percent(rng, 15) ? "true" : "false");
        put_str(sb, "}");
    }
    if (rng_percent(rng, 4)) {
        put_str(sb, ",\"note\":");
        put_str(sb, notes[rng_below(rng, sizeof notes / sizeof *notes)]);
    }
    put_str(sb, "}");
}

/*
 * A frame of one channel sampled at a fixed rate: a long array of readings (a random walk),
 * summary statistics and, sometimes, a small calibration matrix (arrays of arrays).
 */
static void put_frame(rng_t *rng, rv_strbuf_t *sb, uint64_t seq) {
    const channel_t *ch;
    do {
        ch = &channels[rng_below(rng, NCHANNELS)];
    } while (ch->kind != CH_FIXED);
    put_record_head(rng, sb, seq);
    put_str(sb, ",\"channel\":\"");
    put_str(sb, ch->name);
    put_str(sb, "\",\"hz\":1000,\"samples\":[");
    int64_t lo = (int64_t)(ch->lo * 1000), hi = (int64_t)(ch->hi * 1000);
    int64_t v = lo + (int64_t)rng_below(rng, (uint64_t)(hi - lo) + 1), vmin = v, vmax = v;
    size_t n = 100 + (size_t)rng_below(rng, 700);
    for (size_t i = 0; i < n; i++) {
        if (i) {
            put(sb, ",", 1);
        }
        put_fixed(sb, v, 3);
        v += (int64_t)rng_below(rng, 2001) - 1000;
        v = v < lo ? lo : v > hi ? hi : v;
        vmin = v < vmin ? v : vmin;
        vmax = v > vmax ? v : vmax;
    }
    put_str(sb, "],\"stats\":{\"min\":");
    put_fixed(sb, vmin, 3);
    put_str(sb, ",\"max\":");
    put_fixed(sb, vmax, 3);
    put_str(sb, ",\"count\":");
    put_u64(sb, n);
    put_str(sb, "}");
    if (rng_percent(rng, 30)) {
        put_str(sb, ",\"calibration\":[");
        for (int r = 0; r < 4; r++) {
            put_str(sb, r ? ",[" : "[");
            for (int c = 0; c < 4; c++) {
                if (c) {
                    put(sb, ",", 1);
                }
                put_fixed(sb, (int64_t)rng_below(rng, 2000000) - 1000000, 6);
            }
            put_str(sb, "]");
        }
        put_str(sb, "]");
    }
    put_str(sb, "}");
}

/* ---- data sets --------------------------------------------------------------------------- */

typedef struct dataset_s {
    const char *name;
    rv_strbuf_t text; /* every document, each followed by a newline */
    size_t *offset;   /* where document i starts in text */
    size_t *len;      /* its length, newline excluded */
    size_t ndocs;
    size_t bytes; /* the sum of len[] */
    int reps;     /* timed repetitions, each one pass over every document */
} dataset_t;

static void dataset_free(dataset_t *ds) {
    rv_strbuf_free(&ds->text);
    free(ds->offset);
    free(ds->len);
    memset(ds, 0, sizeof *ds);
}

static bool dataset_alloc_index(dataset_t *ds, size_t ndocs) {
    ds->offset = calloc(ndocs ? ndocs : 1, sizeof *ds->offset);
    ds->len = calloc(ndocs ? ndocs : 1, sizeof *ds->len);
    return ds->offset && ds->len;
}

static bool make_telemetry(dataset_t *ds) {
    size_t ndocs = rv_bench_quick() ? TELEMETRY_DOCS_QUICK : TELEMETRY_DOCS;
    rng_t rng = {SEED};
    ds->name = "telemetry";
    ds->reps = 5;
    if (!dataset_alloc_index(ds, ndocs)) {
        return false;
    }
    for (size_t i = 0; i < ndocs; i++) {
        ds->offset[i] = ds->text.len;
        put_telemetry(&rng, &ds->text, i);
        ds->len[i] = ds->text.len - ds->offset[i];
        ds->bytes += ds->len[i];
        put(&ds->text, "\n", 1);
    }
    ds->ndocs = ndocs;
    return true;
}

/* Writes `len` bytes to a new temporary file; its path goes to `path`. */
static bool write_temp_file(const char *data, size_t len, char *path, size_t path_size) {
    const char *dir = getenv("TMPDIR");
    snprintf(path, path_size, "%s/rivulet-bench-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        rv_bench_fail(SUITE, "cannot create a temporary file %s: %s", path, strerror(errno));
        return false;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rv_bench_fail(SUITE, "cannot write %s: %s", path, strerror(errno));
            close(fd);
            unlink(path);
            return false;
        }
        done += (size_t)n;
    }
    if (close(fd) != 0) {
        rv_bench_fail(SUITE, "cannot close %s: %s", path, strerror(errno));
        unlink(path);
        return false;
    }
    return true;
}

/* Reads the whole file at `path` into `out`, as a program parsing a file would. */
static bool read_file(const char *path, rv_strbuf_t *out) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        rv_bench_fail(SUITE, "cannot open %s: %s", path, strerror(errno));
        return false;
    }
    char chunk[1 << 16];
    size_t n;
    bool ok = true;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (rv_strbuf_append(out, chunk, n) != RV_OK) {
            ok = false;
            break;
        }
    }
    if (ferror(f) || !ok) {
        rv_bench_fail(SUITE, "cannot read %s", path);
        ok = false;
    }
    fclose(f);
    return ok;
}

/*
 * One document of about LARGE_BYTES: an array, one element per line, of telemetry records
 * with a frame of samples every tenth element. It goes through a temporary file.
 */
static bool make_large(dataset_t *ds) {
    size_t target = rv_bench_quick() ? LARGE_BYTES_QUICK : LARGE_BYTES;
    rng_t rng = {SEED ^ UINT64_C(0x6c61726765)};
    rv_strbuf_t gen = RV_STRBUF_INIT;
    ds->name = "large file";
    ds->reps = 3;
    put_str(&gen, "[\n");
    for (uint64_t i = 0; gen.len < target; i++) {
        if (i) {
            put_str(&gen, ",\n");
        }
        if (i % 10 == 9) {
            put_frame(&rng, &gen, i);
        } else {
            put_telemetry(&rng, &gen, i);
        }
    }
    put_str(&gen, "\n]\n");

    char path[4096];
    bool ok = write_temp_file(gen.data, gen.len, path, sizeof path);
    size_t written = gen.len;
    rv_strbuf_free(&gen);
    if (!ok) {
        return false;
    }
    double start = rv_bench_now_ns();
    ok = read_file(path, &ds->text);
    double read_ms = (rv_bench_now_ns() - start) / 1e6;
    unlink(path);
    if (!ok || ds->text.len != written) {
        if (ok) {
            rv_bench_fail(SUITE, "%s: read back %zu bytes of %zu", path, ds->text.len, written);
        }
        return false;
    }
    rv_bench_log(SUITE, "large file: %.1f MB written to %s and read back in %.0f ms",
                 (double)written / 1e6, path, read_ms);
    if (!dataset_alloc_index(ds, 1)) {
        return false;
    }
    ds->offset[0] = 0;
    ds->len[0] = ds->text.len - 1; /* the final newline is whitespace the parsers skip anyway */
    ds->bytes = ds->len[0];
    ds->ndocs = 1;
    return true;
}

static const char *doc_text(const dataset_t *ds, size_t i) {
    return ds->text.data + ds->offset[i];
}

/* ---- what the parsers saw ---------------------------------------------------------------- */

/* Counts and checksums of a tree's leaves, so three parsers' trees can be compared. */
typedef struct leaves_s {
    uint64_t ints, doubles;
    uint64_t int_sum;         /* wrapping sum of the integers */
    uint64_t double_bits_sum; /* wrapping sum of the doubles' bit patterns */
    uint64_t strings, string_bytes;
    uint64_t bools, nulls;
    uint64_t arrays, items, objects, members, key_bytes;
} leaves_t;

static void add_double(leaves_t *s, double d) {
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    s->doubles++;
    s->double_bits_sum += bits;
}

static void rv_walk(const rv_value_t *v, leaves_t *s) {
    size_t n;
    switch (rv_value_type(v)) {
        case RV_TYPE_NULL:
            s->nulls++;
            break;
        case RV_TYPE_BOOL:
            s->bools++;
            break;
        case RV_TYPE_INT:
            s->ints++;
            s->int_sum += (uint64_t)rv_value_int(v);
            break;
        case RV_TYPE_DOUBLE:
            add_double(s, rv_value_double(v));
            break;
        case RV_TYPE_STRING:
        case RV_TYPE_BYTES:
            rv_value_str(v, &n);
            s->strings++;
            s->string_bytes += n;
            break;
        case RV_TYPE_ARRAY:
            n = rv_value_len(v);
            s->arrays++;
            s->items += n;
            for (size_t i = 0; i < n; i++) {
                rv_walk(rv_value_at(v, i), s);
            }
            break;
        case RV_TYPE_OBJECT:
            n = rv_value_len(v);
            s->objects++;
            s->members += n;
            for (size_t i = 0; i < n; i++) {
                const char *key;
                size_t key_len;
                const rv_value_t *m = rv_value_member_at(v, i, &key, &key_len);
                s->key_bytes += key_len;
                rv_walk(m, s);
            }
            break;
    }
}

#ifdef RV_HAVE_BASELINES
static bool leaves_same_numbers(const leaves_t *a, const leaves_t *b) {
    return a->ints == b->ints && a->doubles == b->doubles && a->int_sum == b->int_sum &&
           a->double_bits_sum == b->double_bits_sum;
}

static bool leaves_same_rest(const leaves_t *a, const leaves_t *b) {
    return a->strings == b->strings && a->string_bytes == b->string_bytes && a->bools == b->bools &&
           a->nulls == b->nulls && a->arrays == b->arrays && a->items == b->items &&
           a->objects == b->objects && a->members == b->members && a->key_bytes == b->key_bytes;
}

/* Fails the run when `b` (from parser `who`) disagrees with rivulet's `a` on data set `ds`. */
static void compare_leaves(const char *ds, const leaves_t *a, const char *who, const leaves_t *b) {
    if (!leaves_same_numbers(a, b)) {
        rv_bench_fail(SUITE,
                      "%s: rivulet and %s disagree on the numbers: ints %" PRIu64 " vs %" PRIu64
                      " (sum %" PRIu64 " vs %" PRIu64 "), doubles %" PRIu64 " vs %" PRIu64
                      " (bit sum %" PRIx64 " vs %" PRIx64 ")",
                      ds, who, a->ints, b->ints, a->int_sum, b->int_sum, a->doubles, b->doubles,
                      a->double_bits_sum, b->double_bits_sum);
    }
    if (!leaves_same_rest(a, b)) {
        rv_bench_fail(SUITE,
                      "%s: rivulet and %s disagree on the structure: strings %" PRIu64 "/%" PRIu64
                      " (%" PRIu64 "/%" PRIu64 " bytes), bools %" PRIu64 "/%" PRIu64
                      ", nulls %" PRIu64 "/%" PRIu64 ", members %" PRIu64 "/%" PRIu64
                      ", items %" PRIu64 "/%" PRIu64,
                      ds, who, a->strings, b->strings, a->string_bytes, b->string_bytes, a->bools,
                      b->bools, a->nulls, b->nulls, a->members, b->members, a->items, b->items);
    }
}

static void jn_walk(json_t *j, leaves_t *s) {
    switch (json_typeof(j)) {
        case JSON_OBJECT: {
            const char *key;
            json_t *m;
            s->objects++;
            json_object_foreach(j, key, m) {
                s->members++;
                s->key_bytes += strlen(key);
                jn_walk(m, s);
            }
            break;
        }
        case JSON_ARRAY: {
            size_t i;
            json_t *item;
            s->arrays++;
            json_array_foreach(j, i, item) {
                s->items++;
                jn_walk(item, s);
            }
            break;
        }
        case JSON_STRING:
            s->strings++;
            s->string_bytes += json_string_length(j);
            break;
        case JSON_INTEGER:
            s->ints++;
            s->int_sum += (uint64_t)json_integer_value(j);
            break;
        case JSON_REAL:
            add_double(s, json_real_value(j));
            break;
        case JSON_TRUE:
        case JSON_FALSE:
            s->bools++;
            break;
        case JSON_NULL:
            s->nulls++;
            break;
    }
}

static void jc_walk(jc_value *o, leaves_t *s) {
    switch (json_object_get_type(o)) {
        case json_type_null:
            s->nulls++;
            break;
        case json_type_boolean:
            s->bools++;
            break;
        case json_type_int:
            s->ints++;
            s->int_sum += (uint64_t)json_object_get_int64(o);
            break;
        case json_type_double:
            add_double(s, json_object_get_double(o));
            break;
        case json_type_string:
            s->strings++;
            s->string_bytes += (uint64_t)json_object_get_string_len(o);
            break;
        case json_type_array: {
            size_t n = json_object_array_length(o);
            s->arrays++;
            s->items += n;
            for (size_t i = 0; i < n; i++) {
                jc_walk(json_object_array_get_idx(o, i), s);
            }
            break;
        }
        case json_type_object: {
            s->objects++;
            for (struct lh_entry *e = lh_table_head(json_object_get_object(o)); e;
                 e = lh_entry_next(e)) {
                s->members++;
                s->key_bytes += strlen((const char *)lh_entry_k(e));
                jc_walk((jc_value *)lh_entry_v(e), s);
            }
            break;
        }
    }
}

/*
 * jansson's json_object_foreach calls json_object_iter_next, a name json-c exports too; make
 * sure the executable bound it to jansson before walking anything with it.
 */
static bool check_symbol_binding(void) {
    void *(*fn)(json_t *, void *) = json_object_iter_next;
    void *addr;
    Dl_info info;
    memcpy(&addr, &fn, sizeof addr);
    if (dladdr(addr, &info) && info.dli_fname && strstr(info.dli_fname, "jansson")) {
        return true;
    }
    rv_bench_fail(SUITE, "json_object_iter_next is bound to %s, not to jansson (link order?)",
                  info.dli_fname ? info.dli_fname : "an unknown object");
    return false;
}
#endif

/* ---- the timed operations ---------------------------------------------------------------- */

/* Everything the operations of one data set share. */
typedef struct run_s {
    const dataset_t *ds;
    rv_arena_t *arena;     /* rivulet parse: reset before every document */
    rv_strbuf_t out;       /* rivulet write: cleared before every document */
    rv_value_t **rv_trees; /* rivulet's trees of every document, for the write */
    size_t out_bytes;      /* bytes the last write pass produced */
#ifdef RV_HAVE_BASELINES
    json_t **jn_trees;
    jc_value **jc_trees;
    json_tokener *tok; /* json-c parse: one tokener, reset before every document */
    char *jn_buf;      /* jansson write: json_dumpb into this preallocated buffer */
    size_t jn_buf_size;
#endif
} run_t;

static int op_rv_parse(void *p) {
    run_t *r = p;
    const dataset_t *ds = r->ds;
    int failed = 0;
    for (size_t i = 0; i < ds->ndocs; i++) {
        rv_value_t *v = NULL;
        rv_arena_reset(r->arena);
        if (rv_json_parse(r->arena, doc_text(ds, i), ds->len[i], NULL, &v, NULL, NULL) != RV_OK) {
            failed = 1;
        }
    }
    return failed;
}

static int op_rv_write(void *p) {
    run_t *r = p;
    size_t bytes = 0;
    int failed = 0;
    for (size_t i = 0; i < r->ds->ndocs; i++) {
        rv_strbuf_clear(&r->out);
        if (!r->rv_trees[i] || rv_json_write(&r->out, r->rv_trees[i], RV_JSON_COMPACT, NULL)) {
            failed = 1;
        }
        bytes += r->out.len;
    }
    r->out_bytes = bytes;
    return failed;
}

#ifdef RV_HAVE_BASELINES
static int op_jn_parse(void *p) {
    run_t *r = p;
    const dataset_t *ds = r->ds;
    int failed = 0;
    for (size_t i = 0; i < ds->ndocs; i++) {
        json_error_t error;
        json_t *j = json_loadb(doc_text(ds, i), ds->len[i], 0, &error);
        if (!j) {
            failed = 1;
            continue;
        }
        json_decref(j);
    }
    return failed;
}

static int op_jn_write(void *p) {
    run_t *r = p;
    size_t bytes = 0;
    int failed = 0;
    for (size_t i = 0; i < r->ds->ndocs; i++) {
        size_t n = r->jn_trees[i]
                       ? json_dumpb(r->jn_trees[i], r->jn_buf, r->jn_buf_size, JSON_COMPACT)
                       : 0;
        if (n == 0 || n > r->jn_buf_size) {
            failed = 1;
        }
        bytes += n;
    }
    r->out_bytes = bytes;
    return failed;
}

static int op_jc_parse(void *p) {
    run_t *r = p;
    const dataset_t *ds = r->ds;
    int failed = 0;
    for (size_t i = 0; i < ds->ndocs; i++) {
        json_tokener_reset(r->tok);
        jc_value *o = json_tokener_parse_ex(r->tok, doc_text(ds, i), (int)ds->len[i]);
        if (!o || json_tokener_get_error(r->tok) != json_tokener_success) {
            failed = 1;
        }
        json_object_put(o);
    }
    return failed;
}

static int op_jc_write(void *p) {
    run_t *r = p;
    size_t bytes = 0;
    int failed = 0;
    for (size_t i = 0; i < r->ds->ndocs; i++) {
        size_t n = 0;
        if (!r->jc_trees[i] ||
            !json_object_to_json_string_length(r->jc_trees[i], JSON_C_TO_STRING_PLAIN, &n)) {
            failed = 1;
        }
        bytes += n;
    }
    r->out_bytes = bytes;
    return failed;
}
#endif

typedef struct lib_s {
    const char *name;
    rv_bench_op_fn parse;
    rv_bench_op_fn write;
} lib_t;

static const lib_t libs[] = {
    {"rivulet", op_rv_parse, op_rv_write},
#ifdef RV_HAVE_BASELINES
    {"jansson", op_jn_parse, op_jn_write},
    {"json-c", op_jc_parse, op_jc_write},
#endif
};
#define NLIBS (sizeof libs / sizeof libs[0])

/* What one library did in one case (parse or write) of one data set. */
typedef struct result_s {
    double ns;         /* best time of one pass over every document */
    double out_bytes;  /* write: bytes one pass produced */
    double tree_bytes; /* parse: heap the trees of every document hold */
    bool ran;
} result_t;

static void time_case(run_t *r, bool write, result_t res[NLIBS]) {
    const dataset_t *ds = r->ds;
    rv_bench_timing_opts_t opts = {.reps = ds->reps, .iters = 1};
    for (size_t l = 0; l < NLIBS; l++) {
        rv_bench_timing_t t = rv_bench_time(write ? libs[l].write : libs[l].parse, r, &opts);
        if (t.failures) {
            rv_bench_fail(SUITE, "%s %s with %s: %" PRIu64 " of %" PRIu64 " passes failed",
                          write ? "write" : "parse", ds->name, libs[l].name, t.failures, t.ops + 1);
        }
        res[l].ns = t.best_ns;
        res[l].out_bytes = (double)r->out_bytes;
        res[l].ran = true;
        double bytes = write ? (double)r->out_bytes : (double)ds->bytes;
        rv_bench_log(SUITE, "%s %s: %-8s %8.1f MB/s %12.0f docs/s (median %.1f MB/s)",
                     write ? "write" : "parse", ds->name, libs[l].name,
                     rv_bench_rate(&t, bytes) / 1e6, rv_bench_rate(&t, (double)ds->ndocs),
                     t.median_ns > 0 ? bytes * 1e3 / t.median_ns : 0.0);
    }
}

/* ---- the self-checks and the trees the write case serialises ----------------------------- */

static size_t heap_mark;

static void heap_begin(void) {
    heap_mark = rv_bench_heap_bytes();
}

static double heap_end(void) {
    size_t now = rv_bench_heap_bytes();
    return now > heap_mark ? (double)(now - heap_mark) : 0.0;
}

/*
 * Parses every document with every library into trees kept for the write case, and checks
 * that all parsers accept every document, that rivulet's compact output reads back to an
 * equal tree and to the same numbers through jansson, and that the parsers agree.
 * `res[l].tree_bytes` receives what each library's trees hold.
 */
static void build_and_check(run_t *r, rv_arena_t *tree_arena, result_t res[NLIBS]) {
    const dataset_t *ds = r->ds;
    leaves_t rv_leaves = {0};
    int reported = 0;

    heap_begin();
    res[0].tree_bytes = (double)rv_arena_reserved(tree_arena); /* its first block, made before */
    for (size_t i = 0; i < ds->ndocs; i++) {
        size_t off = 0;
        rv_error_t *err = NULL;
        if (rv_json_parse(tree_arena, doc_text(ds, i), ds->len[i], NULL, &r->rv_trees[i], &off,
                          &err) != RV_OK) {
            r->rv_trees[i] = NULL;
            if (reported++ < 3) {
                rv_bench_fail(SUITE, "%s: rivulet rejects document %zu at byte %zu: %s", ds->name,
                              i, off, rv_error_message(err));
            }
        }
        rv_error_destroy(err);
        rv_walk(r->rv_trees[i], &rv_leaves);
    }
    res[0].tree_bytes += heap_end();

    /* Round trip: write compact, parse again, compare. */
    rv_arena_t *scratch = rv_arena_new(0);
#ifdef RV_HAVE_BASELINES
    leaves_t reread = {0};
#endif
    reported = 0;
    for (size_t i = 0; i < ds->ndocs && scratch; i++) {
        if (!r->rv_trees[i]) {
            continue;
        }
        rv_value_t *again = NULL;
        rv_error_t *err = NULL;
        rv_strbuf_clear(&r->out);
        rv_arena_reset(scratch);
        if (rv_json_write(&r->out, r->rv_trees[i], RV_JSON_COMPACT, &err) != RV_OK ||
            rv_json_parse(scratch, r->out.data, r->out.len, NULL, &again, NULL, &err) != RV_OK ||
            !rv_value_equal(r->rv_trees[i], again)) {
            if (reported++ < 3) {
                rv_bench_fail(SUITE,
                              "%s: document %zu does not survive rivulet's write and "
                              "parse: %s",
                              ds->name, i, err ? rv_error_message(err) : "trees differ");
            }
        }
        rv_error_destroy(err);
#ifdef RV_HAVE_BASELINES
        json_error_t jerr;
        json_t *j = json_loadb(r->out.data, r->out.len, 0, &jerr);
        if (!j) {
            if (reported++ < 3) {
                rv_bench_fail(SUITE, "%s: jansson rejects rivulet's output of document %zu: %s",
                              ds->name, i, jerr.text);
            }
            continue;
        }
        jn_walk(j, &reread);
        json_decref(j);
#endif
    }
    rv_arena_destroy(scratch);
#ifdef RV_HAVE_BASELINES
    compare_leaves(ds->name, &rv_leaves, "jansson reading rivulet's output", &reread);

    leaves_t jn_leaves = {0}, jc_leaves = {0};
    size_t need = 0;
    reported = 0;
    heap_begin();
    for (size_t i = 0; i < ds->ndocs; i++) {
        json_error_t error;
        r->jn_trees[i] = json_loadb(doc_text(ds, i), ds->len[i], 0, &error);
        if (!r->jn_trees[i]) {
            if (reported++ < 3) {
                rv_bench_fail(SUITE, "%s: jansson rejects document %zu: %s (line %d column %d)",
                              ds->name, i, error.text, error.line, error.column);
            }
            continue;
        }
        jn_walk(r->jn_trees[i], &jn_leaves);
    }
    res[1].tree_bytes = heap_end();
    for (size_t i = 0; i < ds->ndocs; i++) {
        size_t n = r->jn_trees[i] ? json_dumpb(r->jn_trees[i], NULL, 0, JSON_COMPACT) : 0;
        need = n > need ? n : need;
    }
    r->jn_buf_size = need + 1;
    r->jn_buf = malloc(r->jn_buf_size);
    if (!r->jn_buf) {
        rv_bench_fail(SUITE, "%s: no memory for jansson's output buffer", ds->name);
        r->jn_buf_size = 0;
    }

    reported = 0;
    heap_begin();
    for (size_t i = 0; i < ds->ndocs; i++) {
        json_tokener_reset(r->tok);
        r->jc_trees[i] = json_tokener_parse_ex(r->tok, doc_text(ds, i), (int)ds->len[i]);
        enum json_tokener_error e = json_tokener_get_error(r->tok);
        if (!r->jc_trees[i] || e != json_tokener_success ||
            json_tokener_get_parse_end(r->tok) != ds->len[i]) {
            if (reported++ < 3) {
                rv_bench_fail(SUITE, "%s: json-c rejects document %zu: %s", ds->name, i,
                              json_tokener_error_desc(e));
            }
            json_object_put(r->jc_trees[i]);
            r->jc_trees[i] = NULL;
            continue;
        }
        jc_walk(r->jc_trees[i], &jc_leaves);
    }
    res[2].tree_bytes = heap_end();

    compare_leaves(ds->name, &rv_leaves, "jansson", &jn_leaves);
    compare_leaves(ds->name, &rv_leaves, "json-c", &jc_leaves);
#endif
    rv_bench_log(SUITE,
                 "%s: %zu docs, %.2f MB, %" PRIu64 " ints, %" PRIu64 " doubles, %" PRIu64
                 " strings, %" PRIu64 " objects, %" PRIu64 " arrays",
                 ds->name, ds->ndocs, (double)ds->bytes / 1e6, rv_leaves.ints, rv_leaves.doubles,
                 rv_leaves.strings, rv_leaves.objects, rv_leaves.arrays);
    rv_bench_context("json %s: %zu document%s, %.2f MB, %" PRIu64 " numbers (%" PRIu64
                     " ints, %" PRIu64 " doubles), %" PRIu64 " strings",
                     ds->name, ds->ndocs, ds->ndocs == 1 ? "" : "s", (double)ds->bytes / 1e6,
                     rv_leaves.ints + rv_leaves.doubles, rv_leaves.ints, rv_leaves.doubles,
                     rv_leaves.strings);
}

static void free_trees(run_t *r) {
#ifdef RV_HAVE_BASELINES
    for (size_t i = 0; i < r->ds->ndocs; i++) {
        json_decref(r->jn_trees[i]);
        json_object_put(r->jc_trees[i]);
        r->jn_trees[i] = NULL;
        r->jc_trees[i] = NULL;
    }
    free(r->jn_buf);
    r->jn_buf = NULL;
#else
    (void)r;
#endif
}

/* ---- rows -------------------------------------------------------------------------------- */

/*
 * Reports one case as a row: rivulet against the faster baseline, with the slower baseline's
 * figure and each library's tree memory (parse) or output size (write) in the notes.
 */
static void report_case(const dataset_t *ds, bool write, const result_t res[NLIBS]) {
    char name[64], note[512];
    size_t used = 0;
    snprintf(name, sizeof name, "%s %s", write ? "write" : "parse", ds->name);

    size_t best = 0;
    for (size_t l = 1; l < NLIBS; l++) {
        if (res[l].ran && res[l].ns > 0 && (best == 0 || res[l].ns < res[best].ns)) {
            best = l;
        }
    }
    note[0] = 0;
    for (size_t l = 1; l < NLIBS; l++) {
        if (l == best || res[l].ns <= 0) {
            continue;
        }
        double bytes = write ? res[l].out_bytes : (double)ds->bytes;
        used += (size_t)snprintf(note + used, sizeof note - used, "%s %.1f MB/s; ", libs[l].name,
                                 bytes * 1e3 / res[l].ns);
    }
    for (size_t l = 0; l < NLIBS && used < sizeof note; l++) {
        double mb = (write ? res[l].out_bytes : res[l].tree_bytes) / 1e6;
        used += (size_t)snprintf(note + used, sizeof note - used, "%s%s %.1f", l ? ", " : "",
                                 libs[l].name, mb);
    }
    if (used < sizeof note) {
        snprintf(note + used, sizeof note - used, " MB %s",
                 write ? "written per pass" : "of trees in memory");
    }

    double in_or_out = write ? res[0].out_bytes : (double)ds->bytes;
    rv_bench_row_t row = {
        .suite = SUITE,
        .name = name,
        .value = res[0].ns > 0 ? in_or_out * 1e3 / res[0].ns : 0.0,
        .unit = "MB/s",
        .value2 = res[0].ns > 0 ? (double)ds->ndocs * 1e9 / res[0].ns : 0.0,
        .unit2 = "docs/s",
        /* Writers spell numbers differently (jansson prints 17 digits), so their output sizes
         * differ: compare documents per second, which for a parse is the same as MB/s. */
        .ratio_on_second = true,
        .target = TARGET_RATIO,
        .note = note,
    };
    if (best) {
        double bytes = write ? res[best].out_bytes : (double)ds->bytes;
        row.baseline = libs[best].name;
        row.baseline_value = bytes * 1e3 / res[best].ns;
        row.baseline_value2 = (double)ds->ndocs * 1e9 / res[best].ns;
    }
    rv_bench_report(&row);
}

/* ---- the suite --------------------------------------------------------------------------- */

static void run_dataset(const dataset_t *ds) {
    run_t r = {.ds = ds, .out = RV_STRBUF_INIT};
    result_t parse_res[NLIBS] = {{0}}, write_res[NLIBS] = {{0}};
    rv_arena_t *tree_arena = NULL;
    r.arena = rv_arena_new(0);
    r.rv_trees = calloc(ds->ndocs, sizeof *r.rv_trees);
#ifdef RV_HAVE_BASELINES
    r.jn_trees = calloc(ds->ndocs, sizeof *r.jn_trees);
    r.jc_trees = calloc(ds->ndocs, sizeof *r.jc_trees);
    r.tok = json_tokener_new();
    if (!r.jn_trees || !r.jc_trees || !r.tok) {
        rv_bench_fail(SUITE, "%s: out of memory", ds->name);
        goto done;
    }
#endif
    if (!r.arena || !r.rv_trees) {
        rv_bench_fail(SUITE, "%s: out of memory", ds->name);
        goto done;
    }

    /* Parse first, while no tree is alive, so every library starts from the same heap. */
    time_case(&r, false, parse_res);

    tree_arena = rv_arena_new(1 << 20);
    if (!tree_arena) {
        rv_bench_fail(SUITE, "%s: out of memory", ds->name);
        goto done;
    }
    build_and_check(&r, tree_arena, parse_res);
    time_case(&r, true, write_res);
    free_trees(&r);

    report_case(ds, false, parse_res);
    report_case(ds, true, write_res);

done:
    rv_arena_destroy(tree_arena);
    rv_arena_destroy(r.arena);
    rv_strbuf_free(&r.out);
    free(r.rv_trees);
#ifdef RV_HAVE_BASELINES
    free(r.jn_trees);
    free(r.jc_trees);
    if (r.tok) {
        json_tokener_free(r.tok);
    }
#endif
}

void rv_bench_suite_json(void) {
#ifdef RV_HAVE_BASELINES
    if (!check_symbol_binding()) {
        return;
    }
    rv_bench_context("json baselines: jansson %s (json_loadb, json_dumpb JSON_COMPACT), json-c %s "
                     "(json_tokener_parse_ex, json_object_to_json_string_length PLAIN)",
                     JANSSON_VERSION, JSON_C_VERSION);
#else
    rv_bench_context("json baselines: none (jansson and json-c were not found when building)");
#endif
    rv_bench_context("json figures: the best of %s timed passes over every document after one "
                     "warm-up pass, the same passes over the same bytes for every library; "
                     "MB = 10^6 bytes (the input for parse, each library's own output for "
                     "write); ratio = rivulet / the faster baseline, in docs/s",
                     rv_bench_quick() ? "1 (--quick)" : "5 (telemetry) or 3 (large file)");

    dataset_t telemetry = {0}, large = {0};
    double start = rv_bench_now_ns();
    bool ok_t = make_telemetry(&telemetry);
    bool ok_l = make_large(&large);
    rv_bench_log(SUITE, "data sets generated in %.0f ms", (rv_bench_now_ns() - start) / 1e6);
    if (ok_t) {
        run_dataset(&telemetry);
    } else {
        rv_bench_fail(SUITE, "could not generate the telemetry data set");
    }
    dataset_free(&telemetry);
    if (ok_l) {
        run_dataset(&large);
    } else {
        rv_bench_fail(SUITE, "could not prepare the large file");
    }
    dataset_free(&large);
}
