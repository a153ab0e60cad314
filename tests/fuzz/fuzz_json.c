/*
 * fuzz_json.c: libFuzzer target for the JSON codec.
 *
 * Every input is parsed; a rejected input must come with an error offset inside it. An accepted
 * one is written in each mode (compact, pretty, ASCII), the text parsed again, and the two trees
 * must be equal, a second write must give the same text, and a deep copy must equal the tree.
 * Any mismatch calls abort() so the fuzzer records it. One arena is reset per input, so nothing
 * leaks between runs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rv_arena_t *arena;
static rv_strbuf_t first = RV_STRBUF_INIT;
static rv_strbuf_t second = RV_STRBUF_INIT;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int modes[] = {RV_JSON_COMPACT, RV_JSON_PRETTY, RV_JSON_ASCII};
    if (!arena) {
        arena = rv_arena_new(0);
        if (!arena) {
            abort();
        }
    }
    rv_arena_reset(arena);
    rv_value_t *v = NULL;
    size_t off = SIZE_MAX;
    rv_error_t *err = NULL;
    rv_err_t e = rv_json_parse(arena, (const char *)data, size, NULL, &v, &off, &err);
    if (e != RV_OK) {
        if (v != NULL || off > size || err == NULL || rv_error_code(err) != e) {
            abort();
        }
        rv_error_destroy(err);
        return 0;
    }
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        rv_strbuf_clear(&first);
        rv_strbuf_clear(&second);
        if (rv_json_write(&first, v, modes[m], NULL) != RV_OK) {
            abort();
        }
        rv_value_t *again = NULL;
        if (rv_json_parse(arena, first.data, first.len, NULL, &again, NULL, NULL) != RV_OK) {
            abort();
        }
        if (!rv_value_equal(v, again)) {
            abort();
        }
        if (rv_json_write(&second, again, modes[m], NULL) != RV_OK) {
            abort();
        }
        if (first.len != second.len || memcmp(first.data, second.data, first.len) != 0) {
            abort();
        }
    }
    rv_value_t *copy = rv_value_copy(arena, v);
    if (!copy || !rv_value_equal(v, copy)) {
        abort();
    }
    return 0;
}
