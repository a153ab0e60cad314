/*
 * fuzz_telemetry.c: libFuzzer target for the telemetry decoders that read outside bytes.
 *
 * Every input goes to all three: the protobuf envelope, rivulet's JSON shape and the legacy
 * Quix JSON messages. A rejection must come with an error object of the same code; an accepted
 * packet is encoded again in the same form, decoded, and must equal the first (a NaN, which JSON
 * cannot spell, may make the JSON writer refuse: that refusal must be RV_ERR_RANGE). An accepted
 * protobuf packet must also survive the JSON tree and come back equal. Any mismatch aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/telemetry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rv_arena_t *arena;
static rv_strbuf_t buf = RV_STRBUF_INIT;

static void check_rejection(rv_err_t e, rv_tpacket_t *p, rv_error_t *err) {
    if (p != NULL || err == NULL || rv_error_code(err) != e || e == RV_ERR_INVALID_ARG) {
        abort();
    }
    rv_error_destroy(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!arena) {
        arena = rv_arena_new(0);
        if (!arena) {
            abort();
        }
    }
    rv_arena_reset(arena);
    rv_tpacket_t *p = NULL, *q = NULL;
    rv_error_t *err = NULL;

    /* protobuf */
    rv_err_t e = rv_tpacket_decode(arena, data, size, &p, &err);
    if (e != RV_OK) {
        check_rejection(e, p, err);
    } else {
        rv_strbuf_clear(&buf);
        if (rv_tpacket_encode(p, &buf, NULL) != RV_OK ||
            rv_tpacket_decode(arena, buf.data, buf.len, &q, NULL) != RV_OK ||
            !rv_tpacket_equal(p, q)) {
            abort();
        }
        if (p->type == RV_TPACKET_FRAME) {
            /* The whole time range slices to an equal frame; a frame appended to itself has
             * twice the rows and encodes like any other. */
            const rv_tframe_t *all = NULL, *twice = NULL;
            rv_tpacket_t cp = *p;
            if (rv_tframe_slice(arena, p->u.frame, INT64_MIN, INT64_MAX, &all) != RV_OK) {
                abort();
            }
            cp.u.frame = all;
            if (p->u.frame->rows && !rv_tpacket_equal(p, &cp) &&
                p->u.frame->timestamps[0] != INT64_MAX) {
                /* rows at INT64_MAX fall outside [MIN, MAX): compare only when none do */
                bool at_max = false;
                for (size_t r = 0; r < p->u.frame->rows; r++) {
                    at_max |= p->u.frame->timestamps[r] == INT64_MAX;
                }
                if (!at_max) {
                    abort();
                }
            }
            if (rv_tframe_append(arena, p->u.frame, p->u.frame, &twice, NULL) != RV_OK ||
                twice->rows != 2 * p->u.frame->rows) {
                abort();
            }
            cp.u.frame = twice;
            rv_strbuf_clear(&buf);
            if (rv_tpacket_encode(&cp, &buf, NULL) != RV_OK ||
                rv_tpacket_decode(arena, buf.data, buf.len, &q, NULL) != RV_OK ||
                !rv_tpacket_equal(&cp, q)) {
                abort();
            }
        }
        rv_value_t *v = NULL;
        if (rv_tpacket_to_value(arena, p, &v, NULL) != RV_OK ||
            rv_tpacket_from_value(arena, v, &q, NULL) != RV_OK || !rv_tpacket_equal(p, q)) {
            abort();
        }
    }

    /* rivulet's JSON */
    p = NULL;
    err = NULL;
    e = rv_tpacket_read_json(arena, (const char *)data, size, &p, &err);
    if (e != RV_OK) {
        check_rejection(e, p, err);
    } else {
        rv_strbuf_clear(&buf);
        e = rv_tpacket_write_json(p, &buf, NULL);
        if (e == RV_OK) {
            if (rv_tpacket_read_json(arena, buf.data, buf.len, &q, NULL) != RV_OK ||
                !rv_tpacket_equal(p, q)) {
                abort();
            }
        } else if (e != RV_ERR_RANGE) {
            abort();
        }
        rv_strbuf_clear(&buf);
        if (rv_tpacket_encode(p, &buf, NULL) != RV_OK ||
            rv_tpacket_decode(arena, buf.data, buf.len, &q, NULL) != RV_OK ||
            !rv_tpacket_equal(p, q)) {
            abort();
        }
    }

    /* legacy Quix */
    p = NULL;
    err = NULL;
    e = rv_tpacket_read_quix(arena, (const char *)data, size, &p, &err);
    if (e != RV_OK) {
        check_rejection(e, p, err);
    } else {
        rv_strbuf_clear(&buf);
        e = rv_tpacket_write_quix(p, &buf, NULL);
        if (e == RV_OK) {
            if (rv_tpacket_read_quix(arena, buf.data, buf.len, &q, NULL) != RV_OK ||
                !rv_tpacket_equal(p, q)) {
                abort();
            }
        } else if (e != RV_ERR_RANGE) {
            abort();
        }
    }
    return 0;
}
