/*
 * test_json.c: the JSON codec against JSONTestSuite and against targeted cases.
 *
 * The conformance test walks every file of JSONTestSuite's test_parsing directory: y_ files
 * must parse and round-trip (parse, write, parse gives an equal tree; a second write gives the
 * same text), n_ files must be rejected with an error offset inside the file, and each i_ file
 * has its outcome pinned in a table that matches docs/json.md. The targeted tests cover number
 * exactness, escapes, UTF-8 validation, the nesting limit, the writer's exact output and the
 * error messages. Nothing here may pass vacuously: a missing suite is a failure.
 */
#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

#include "rivulet/json.h"
#include "rv_test.h"

#define SUITE_DIR RV_TESTDATA_DIR "/JSONTestSuite/test_parsing"
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static rv_arena_t *arena;

/* Reads a whole file; NULL when it cannot. Free with free(). */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

/* Parses a NUL-terminated text with default options. */
static rv_err_t parse(const char *text, rv_value_t **out) {
    return rv_json_parse(arena, text, strlen(text), NULL, out, NULL, NULL);
}

/* Parses `text` and returns the offset of the expected failure (or SIZE_MAX on success). */
static size_t fail_offset(const char *text, size_t len, rv_err_t *code) {
    rv_value_t *v = (rv_value_t *)1;
    size_t off = 12345;
    *code = rv_json_parse(arena, text, len, NULL, &v, &off, NULL);
    if (*code == RV_OK) {
        return SIZE_MAX;
    }
    if (v != NULL) {
        return SIZE_MAX - 1; /* *out must be NULL after a failure */
    }
    return off;
}

#define CHECK_FAILS_AT(text, want_code, want_off)                                                  \
    do {                                                                                           \
        rv_err_t code_;                                                                            \
        size_t off_ = fail_offset((text), sizeof(text) - 1, &code_);                               \
        CHECK_MSG(code_ == (want_code) && off_ == (size_t)(want_off),                              \
                  "%s: got code %s offset %zu, want %s offset %zu", #text, rv_err_name(code_),     \
                  off_, rv_err_name(want_code), (size_t)(want_off));                               \
    } while (0)

/* Writes `v` with `flags` into a fresh NUL-terminated arena copy (NULL on failure). */
static const char *write_text(const rv_value_t *v, int flags) {
    rv_strbuf_t sb = RV_STRBUF_INIT;
    rv_err_t e = rv_json_write(&sb, v, flags, NULL);
    const char *r = e ? NULL : rv_arena_strndup(arena, sb.data, sb.len);
    rv_strbuf_free(&sb);
    return r;
}

/* Parses `in` and writes it back compactly; "ERR:<code>" when parsing fails. */
static const char *reformat(const char *in, int flags) {
    rv_value_t *v;
    rv_err_t e = parse(in, &v);
    if (e) {
        return rv_err_name(e);
    }
    return write_text(v, flags);
}

/* ---- JSONTestSuite ------------------------------------------------------------------------ */

typedef struct i_case_s {
    const char *name;
    rv_err_t result;     /* RV_OK when rivulet accepts the file */
    rv_type_t item_type; /* for accepted numbers: the type of the array's first item */
} i_case_t;

/* rivulet's decisions for the implementation-defined files (docs/json.md has the reasons). */
static const i_case_t i_cases[] = {
    {"i_number_double_huge_neg_exp.json", RV_OK, RV_TYPE_DOUBLE},
    {"i_number_huge_exp.json", RV_ERR_RANGE, RV_TYPE_NULL},
    {"i_number_neg_int_huge_exp.json", RV_ERR_RANGE, RV_TYPE_NULL},
    {"i_number_pos_double_huge_exp.json", RV_ERR_RANGE, RV_TYPE_NULL},
    {"i_number_real_neg_overflow.json", RV_ERR_RANGE, RV_TYPE_NULL},
    {"i_number_real_pos_overflow.json", RV_ERR_RANGE, RV_TYPE_NULL},
    {"i_number_real_underflow.json", RV_OK, RV_TYPE_DOUBLE},
    {"i_number_too_big_neg_int.json", RV_OK, RV_TYPE_DOUBLE},
    {"i_number_too_big_pos_int.json", RV_OK, RV_TYPE_DOUBLE},
    {"i_number_very_big_negative_int.json", RV_OK, RV_TYPE_DOUBLE},
    {"i_object_key_lone_2nd_surrogate.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_1st_surrogate_but_2nd_missing.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_1st_valid_surrogate_2nd_invalid.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_UTF-16LE_with_BOM.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_UTF-8_invalid_sequence.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_UTF8_surrogate_U+D800.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_incomplete_surrogate_and_escape_valid.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_incomplete_surrogate_pair.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_incomplete_surrogates_escape_valid.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_invalid_lonely_surrogate.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_invalid_surrogate.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_invalid_utf-8.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_inverted_surrogates_U+1D11E.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_iso_latin_1.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_lone_second_surrogate.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_lone_utf8_continuation_byte.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_not_in_unicode_range.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_overlong_sequence_2_bytes.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_overlong_sequence_6_bytes.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_overlong_sequence_6_bytes_null.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_truncated-utf-8.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_utf16BE_no_BOM.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_string_utf16LE_no_BOM.json", RV_ERR_PARSE, RV_TYPE_NULL},
    {"i_structure_500_nested_arrays.json", RV_OK, RV_TYPE_ARRAY},
    {"i_structure_UTF-8_BOM_empty_object.json", RV_ERR_PARSE, RV_TYPE_NULL},
};

/* Parse, write, parse again, write again: equal trees and identical texts, in every mode. */
static void check_round_trip(const char *name, const rv_value_t *first) {
    static const int modes[] = {RV_JSON_COMPACT, RV_JSON_PRETTY, RV_JSON_ASCII,
                                RV_JSON_PRETTY | RV_JSON_ASCII};
    for (size_t m = 0; m < ARRAY_LEN(modes); m++) {
        const char *t1 = write_text(first, modes[m]);
        CHECK_MSG(t1 != NULL, "%s: write failed (mode %d)", name, modes[m]);
        if (!t1) {
            continue;
        }
        rv_value_t *second = NULL;
        rv_err_t e = parse(t1, &second);
        CHECK_MSG(e == RV_OK, "%s: reparse failed (mode %d): %s", name, modes[m], t1);
        CHECK_MSG(rv_value_equal(first, second), "%s: trees differ after a round trip (%d)", name,
                  modes[m]);
        const char *t2 = write_text(second, modes[m]);
        CHECK_MSG(t2 && strcmp(t1, t2) == 0, "%s: second write differs (mode %d)", name, modes[m]);
        if (modes[m] & RV_JSON_ASCII) {
            bool ascii = true;
            for (const char *c = t1; *c; c++) {
                ascii = ascii && (unsigned char)*c < 0x80;
            }
            CHECK_MSG(ascii, "%s: ASCII output holds a non-ASCII byte", name);
        }
    }
}

static void test_suite(void) {
    DIR *dir = opendir(SUITE_DIR);
    CHECK_MSG(dir != NULL, "cannot open %s", SUITE_DIR);
    if (!dir) {
        return;
    }
    int files = 0, y = 0, n = 0, i = 0;
    bool seen[ARRAY_LEN(i_cases)];
    memset(seen, 0, sizeof seen);
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.') {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", SUITE_DIR, name);
        size_t len = 0;
        char *text = read_file(path, &len);
        CHECK_MSG(text != NULL, "cannot read %s", path);
        if (!text) {
            continue;
        }
        files++;
        rv_value_t *v = NULL;
        size_t off = SIZE_MAX;
        rv_error_t *err = NULL;
        rv_err_t e = rv_json_parse(arena, text, len, NULL, &v, &off, &err);
        if (name[0] == 'y') {
            y++;
            CHECK_MSG(e == RV_OK, "%s must parse: %s", name, rv_error_message(err));
            if (e == RV_OK) {
                check_round_trip(name, v);
            }
        } else if (name[0] == 'n') {
            n++;
            CHECK_MSG(e != RV_OK, "%s must be rejected", name);
            CHECK_MSG(e == RV_OK || (off <= len && err != NULL && v == NULL),
                      "%s: error offset %zu outside the file (%zu bytes)", name, off, len);
        } else if (name[0] == 'i') {
            i++;
            size_t k = 0;
            while (k < ARRAY_LEN(i_cases) && strcmp(i_cases[k].name, name) != 0) {
                k++;
            }
            CHECK_MSG(k < ARRAY_LEN(i_cases), "%s is not in the i_ table", name);
            if (k < ARRAY_LEN(i_cases)) {
                seen[k] = true;
                CHECK_MSG(e == i_cases[k].result, "%s: got %s, the table says %s", name,
                          rv_err_name(e), rv_err_name(i_cases[k].result));
                if (e == RV_OK && i_cases[k].result == RV_OK) {
                    CHECK_MSG(rv_value_type(rv_value_at(v, 0)) == i_cases[k].item_type,
                              "%s: first item is %s", name,
                              rv_type_name(rv_value_type(rv_value_at(v, 0))));
                    check_round_trip(name, v);
                } else if (e != RV_OK) {
                    CHECK_MSG(off <= len, "%s: error offset %zu outside the file", name, off);
                }
            }
        }
        rv_error_destroy(err);
        free(text);
        rv_arena_reset(arena);
    }
    closedir(dir);
    CHECK_MSG(files >= 300, "only %d files in %s", files, SUITE_DIR);
    CHECK_MSG(y >= 90 && n >= 180 && i >= 30, "y=%d n=%d i=%d", y, n, i);
    for (size_t k = 0; k < ARRAY_LEN(i_cases); k++) {
        CHECK_MSG(seen[k], "%s is in the table but not in the suite", i_cases[k].name);
    }
}

/* The values behind the accepted i_ number files. */
static void test_suite_number_values(void) {
    rv_value_t *v;
    REQUIRE(parse("[123.456e-789]", &v) == RV_OK);
    CHECK(rv_value_double(rv_value_at(v, 0)) == 0.0);
    REQUIRE(parse("[123e-10000000]", &v) == RV_OK);
    CHECK(rv_value_double(rv_value_at(v, 0)) == 0.0 &&
          !signbit(rv_value_double(rv_value_at(v, 0))));
    REQUIRE(parse("[-123e-10000000]", &v) == RV_OK);
    CHECK(signbit(rv_value_double(rv_value_at(v, 0))));
    REQUIRE(parse("[100000000000000000000]", &v) == RV_OK);
    CHECK(rv_value_double(rv_value_at(v, 0)) == 1e20);
    REQUIRE(parse("[-123123123123123123123123123123]", &v) == RV_OK);
    CHECK(rv_value_double(rv_value_at(v, 0)) == -123123123123123123123123123123.0);
}

/* ---- numbers ------------------------------------------------------------------------------ */

static void test_int64_limits(void) {
    rv_value_t *v;
    REQUIRE(parse("9223372036854775807", &v) == RV_OK);
    CHECK_INT(rv_value_type(v), RV_TYPE_INT);
    CHECK(rv_value_int(v) == INT64_MAX);
    CHECK_STR(write_text(v, 0), "9223372036854775807");

    REQUIRE(parse("-9223372036854775808", &v) == RV_OK);
    CHECK_INT(rv_value_type(v), RV_TYPE_INT);
    CHECK(rv_value_int(v) == INT64_MIN);
    CHECK_STR(write_text(v, 0), "-9223372036854775808");

    REQUIRE(parse("9223372036854775808", &v) == RV_OK);
    CHECK_INT(rv_value_type(v), RV_TYPE_DOUBLE);
    CHECK(rv_value_double(v) == 9223372036854775808.0);

    REQUIRE(parse("-9223372036854775809", &v) == RV_OK);
    CHECK_INT(rv_value_type(v), RV_TYPE_DOUBLE);
    CHECK(rv_value_double(v) == -9223372036854775808.0);

    REQUIRE(parse("18446744073709551616", &v) == RV_OK);
    CHECK_INT(rv_value_type(v), RV_TYPE_DOUBLE);
    CHECK(rv_value_double(v) == 18446744073709551616.0);

    REQUIRE(parse("99999999999999999999999", &v) == RV_OK);
    CHECK_INT(rv_value_type(v), RV_TYPE_DOUBLE);
    CHECK(rv_value_double(v) == 1e23);

    const char *ints[] = {"0",
                          "1",
                          "-1",
                          "9",
                          "10",
                          "99",
                          "100",
                          "12345678",
                          "-999999999999999999",
                          "1000000000000000000",
                          "4294967296",
                          "-4294967297"};
    for (size_t i = 0; i < ARRAY_LEN(ints); i++) {
        REQUIRE(parse(ints[i], &v) == RV_OK);
        CHECK_INT(rv_value_type(v), RV_TYPE_INT);
        CHECK(rv_value_int(v) == strtoll(ints[i], NULL, 10));
        CHECK_STR(write_text(v, 0), ints[i]);
    }

    /* The integer writer at every digit-count boundary, both signs, against printf. */
    int wrong = 0;
    uint64_t p = 1;
    for (int k = 0; k <= 19; k++, p *= 10) {
        int64_t around[] = {(int64_t)p - 1, (int64_t)p, (int64_t)p + 1};
        for (int j = 0; j < 3; j++) {
            if (k == 19 && j > 0) {
                continue; /* 10^19 is beyond int64 */
            }
            for (int sign = 0; sign < 2; sign++) {
                int64_t x = sign ? -around[j] : around[j];
                char want[32];
                snprintf(want, sizeof want, "%" PRId64, x);
                const char *got = write_text(rv_value_new_int(arena, x), 0);
                wrong += !got || strcmp(got, want) != 0;
            }
        }
    }
    CHECK_INT(wrong, 0);
    CHECK_STR(write_text(rv_value_new_int(arena, INT64_MAX - 1), 0), "9223372036854775806");
    CHECK_STR(write_text(rv_value_new_int(arena, INT64_MIN + 1), 0), "-9223372036854775807");
}

static void test_doubles(void) {
    rv_value_t *v;
    REQUIRE(parse("0.1", &v) == RV_OK);
    CHECK_INT(rv_value_type(v), RV_TYPE_DOUBLE);
    CHECK(rv_value_double(v) == 0.1);
    CHECK_STR(write_text(v, 0), "0.1");

    REQUIRE(parse("1e308", &v) == RV_OK);
    CHECK(rv_value_double(v) == 1e308);
    CHECK_STR(reformat(write_text(v, 0), 0), write_text(v, 0));

    REQUIRE(parse("1.7976931348623157e308", &v) == RV_OK);
    CHECK(rv_value_double(v) == 1.7976931348623157e308);

    REQUIRE(parse("5e-324", &v) == RV_OK);
    CHECK(rv_value_double(v) == 4.9406564584124654e-324);
    CHECK(rv_value_double(v) > 0.0);
    rv_value_t *again;
    REQUIRE(parse(write_text(v, 0), &again) == RV_OK);
    CHECK(memcmp(&(double){rv_value_double(v)}, &(double){rv_value_double(again)}, 8) == 0);

    /* "-0" keeps its sign: it is the double -0.0 and is written back as "-0.0". */
    REQUIRE(parse("-0", &v) == RV_OK);
    CHECK_INT(rv_value_type(v), RV_TYPE_DOUBLE);
    CHECK(rv_value_double(v) == 0.0 && signbit(rv_value_double(v)));
    CHECK_STR(write_text(v, 0), "-0.0");
    REQUIRE(parse("-0.0", &v) == RV_OK);
    CHECK(signbit(rv_value_double(v)));
    REQUIRE(parse("0", &v) == RV_OK);
    CHECK_INT(rv_value_type(v), RV_TYPE_INT);
    REQUIRE(parse("-0e5", &v) == RV_OK);
    CHECK(signbit(rv_value_double(v)));

    /* A fraction or exponent always makes a double, and doubles stay doubles when written. */
    REQUIRE(parse("[1.0, 1e2, 1E+2, 20e-1, 0e0]", &v) == RV_OK);
    for (size_t i = 0; i < 5; i++) {
        CHECK_INT(rv_value_type(rv_value_at(v, i)), RV_TYPE_DOUBLE);
    }
    CHECK(rv_value_double(rv_value_at(v, 1)) == 100.0);
    CHECK(rv_value_double(rv_value_at(v, 3)) == 2.0);
    rv_value_t *w;
    REQUIRE(parse(write_text(v, 0), &w) == RV_OK);
    CHECK(rv_value_equal(v, w));
    CHECK_INT(rv_value_type(rv_value_at(w, 0)), RV_TYPE_DOUBLE);

    /* Doubles the writer builds itself (not parsed) round-trip to the same bits. */
    double samples[] = {
        3.141592653589793,   2.2250738585072014e-308, 1e21, 1e-7, 123456789.125, -1.5,
        0.30000000000000004, 9007199254740993.0};
    for (size_t i = 0; i < ARRAY_LEN(samples); i++) {
        rv_value_t *d = rv_value_new_double(arena, samples[i]);
        rv_value_t *r;
        REQUIRE(parse(write_text(d, 0), &r) == RV_OK);
        CHECK_INT(rv_value_type(r), RV_TYPE_DOUBLE);
        CHECK_MSG(rv_value_double(r) == samples[i], "%.17g changed", samples[i]);
    }
}

static void test_number_errors(void) {
    CHECK_FAILS_AT("[1e400]", RV_ERR_RANGE, 1);
    CHECK_FAILS_AT("-1e400", RV_ERR_RANGE, 0);
    CHECK_FAILS_AT("01", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("-01", RV_ERR_PARSE, 2);
    CHECK_FAILS_AT("1.", RV_ERR_PARSE, 2);
    CHECK_FAILS_AT("1.e5", RV_ERR_PARSE, 2);
    CHECK_FAILS_AT(".1", RV_ERR_PARSE, 0);
    CHECK_FAILS_AT("-", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("- 1", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("+1", RV_ERR_PARSE, 0);
    CHECK_FAILS_AT("1e", RV_ERR_PARSE, 2);
    CHECK_FAILS_AT("1e+", RV_ERR_PARSE, 3);
    CHECK_FAILS_AT("0x10", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("[NaN]", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("[Infinity]", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("[1,2 3]", RV_ERR_PARSE, 5);
}

/* ---- strings ------------------------------------------------------------------------------ */

static void check_string(const char *json, const char *want, size_t want_len) {
    rv_value_t *v = NULL;
    rv_err_t e = parse(json, &v);
    CHECK_MSG(e == RV_OK, "%s: %s", json, rv_err_name(e));
    size_t len = 0;
    const char *s = rv_value_str(v, &len);
    CHECK_MSG(s && len == want_len && memcmp(s, want, len) == 0 && s[len] == 0,
              "%s decoded wrong (len %zu)", json, len);
}

static void test_escapes(void) {
    check_string("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", "\" \\ / \b \f \n \r \t", 15);
    check_string("\"\\u0041\\u00e9\\u00E9\\u20ac\"", "A\xC3\xA9\xC3\xA9\xE2\x82\xAC", 8);
    check_string("\"\\u0000\"", "\0", 1);
    check_string("\"a\\u0000b\"", "a\0b", 3);
    check_string("\"\\uD834\\uDD1E\"", "\xF0\x9D\x84\x9E", 4);
    check_string("\"\\ud834\\udd1e\"", "\xF0\x9D\x84\x9E", 4);
    check_string("\"\\uDBFF\\uDFFF\"", "\xF4\x8F\xBF\xBF", 4);
    check_string("\"\\uD800\\uDC00\"", "\xF0\x90\x80\x80", 4);
    check_string("\"\\uFFFF\\u07FF\\u0800\"", "\xEF\xBF\xBF\xDF\xBF\xE0\xA0\x80", 8);
    check_string("\"0123456789abcdef\\n0123456789\"", "0123456789abcdef\n0123456789", 27);
    check_string("\"\"", "", 0);
    check_string("\"\x7f\"", "\x7f", 1);

    /* Lone and mismatched surrogates are rejected where the escape starts. */
    CHECK_FAILS_AT("\"\\uD800\"", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("\"ab\\uDC00\"", RV_ERR_PARSE, 3);
    CHECK_FAILS_AT("\"\\uD800\\u0041\"", RV_ERR_PARSE, 7);
    CHECK_FAILS_AT("\"\\uD800x\"", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("\"\\uDD1E\\uD834\"", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("\"\\uD800\\n\"", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("\"\\uD800\\uD800\"", RV_ERR_PARSE, 7);

    /* Malformed escapes. */
    CHECK_FAILS_AT("\"\\x\"", RV_ERR_PARSE, 2);
    CHECK_FAILS_AT("\"\\'\"", RV_ERR_PARSE, 2);
    CHECK_FAILS_AT("\"\\u12G4\"", RV_ERR_PARSE, 5);
    CHECK_FAILS_AT("\"\\u12\"", RV_ERR_PARSE, 5);
    CHECK_FAILS_AT("\"\\u", RV_ERR_PARSE, 3);
    CHECK_FAILS_AT("\"abc\\", RV_ERR_PARSE, 5);
    CHECK_FAILS_AT("\"abc", RV_ERR_PARSE, 4);
    CHECK_FAILS_AT("\"abcdefghijklmnopqrstuvwxyz", RV_ERR_PARSE, 27);

    /* Raw control characters must be escaped. */
    CHECK_FAILS_AT("\"a\tb\"", RV_ERR_PARSE, 2);
    CHECK_FAILS_AT("\"a\nb\"", RV_ERR_PARSE, 2);
    CHECK_FAILS_AT("\"0123456789abcdef\x01\"", RV_ERR_PARSE, 17);
}

static void test_utf8(void) {
    /* Valid boundaries: U+0080, U+07FF, U+0800, U+FFFF, U+10000, U+10FFFF; also after 8-byte
     * ASCII runs so both the word-at-a-time and the byte loops see them. */
    check_string("\"\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF\"",
                 "\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF", 18);
    check_string("\"abcdefghij\xE2\x82\xAC klmnopqrstuv\"", "abcdefghij\xE2\x82\xAC klmnopqrstuv",
                 26);
    check_string("\"\xED\x9F\xBF\xEE\x80\x80\"", "\xED\x9F\xBF\xEE\x80\x80", 6);

    /* Rejected: the offset is the lead byte of the bad sequence. */
    CHECK_FAILS_AT("\"\xC0\xAF\"", RV_ERR_PARSE, 1);             /* overlong '/' */
    CHECK_FAILS_AT("\"\xC1\xBF\"", RV_ERR_PARSE, 1);             /* overlong */
    CHECK_FAILS_AT("\"\xE0\x80\xAF\"", RV_ERR_PARSE, 1);         /* overlong 3 bytes */
    CHECK_FAILS_AT("\"\xE0\x9F\xBF\"", RV_ERR_PARSE, 1);         /* overlong U+07FF */
    CHECK_FAILS_AT("\"\xF0\x80\x80\xAF\"", RV_ERR_PARSE, 1);     /* overlong 4 bytes */
    CHECK_FAILS_AT("\"\xF0\x8F\xBF\xBF\"", RV_ERR_PARSE, 1);     /* overlong U+FFFF */
    CHECK_FAILS_AT("\"\xED\xA0\x80\"", RV_ERR_PARSE, 1);         /* U+D800 */
    CHECK_FAILS_AT("\"\xED\xBF\xBF\"", RV_ERR_PARSE, 1);         /* U+DFFF */
    CHECK_FAILS_AT("\"\xF4\x90\x80\x80\"", RV_ERR_PARSE, 1);     /* U+110000 */
    CHECK_FAILS_AT("\"\xF5\x80\x80\x80\"", RV_ERR_PARSE, 1);     /* lead byte F5 */
    CHECK_FAILS_AT("\"\xF8\x88\x80\x80\x80\"", RV_ERR_PARSE, 1); /* 5-byte form */
    CHECK_FAILS_AT("\"\xFC\x83\xBF\xBF\xBF\xBF\"", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("\"\xFF\"", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("\"\x80\"", RV_ERR_PARSE, 1);     /* stray continuation */
    CHECK_FAILS_AT("\"\xE2\x82\"", RV_ERR_PARSE, 1); /* truncated before '"' */
    CHECK_FAILS_AT("\"\xE2\x82", RV_ERR_PARSE, 1);   /* truncated at the end */
    CHECK_FAILS_AT("\"\xC3", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("\"\xC3\x28\"", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("\"0123456789abcdefghij\xE9xyz\"", RV_ERR_PARSE, 21); /* Latin-1 */
    CHECK_FAILS_AT("{\"k\xFF\":1}", RV_ERR_PARSE, 3);                    /* in a key */
    CHECK_FAILS_AT("[\"ok\xC3\xA9\", \"\xED\xA0\x80\"]", RV_ERR_PARSE, 10);
}

/* ---- structure ---------------------------------------------------------------------------- */

/* Builds `depth` nested arrays around `inner` into a heap string. */
static char *nested(size_t depth, const char *inner, bool close) {
    size_t in = strlen(inner);
    char *s = malloc(depth * 2 + in + 1);
    memset(s, '[', depth);
    memcpy(s + depth, inner, in);
    size_t n = depth + in;
    if (close) {
        memset(s + n, ']', depth);
        n += depth;
    }
    s[n] = 0;
    return s;
}

static void test_nesting_limit(void) {
    rv_value_t *v = NULL;
    size_t off = 0;
    rv_error_t *err = NULL;

    char *s = nested(512, "1", true);
    CHECK_INT(rv_json_parse(arena, s, strlen(s), NULL, &v, &off, NULL), RV_OK);
    free(s);

    s = nested(513, "1", true);
    CHECK_INT(rv_json_parse(arena, s, strlen(s), NULL, &v, &off, &err), RV_ERR_LIMIT);
    CHECK_INT(off, 512);
    CHECK(v == NULL);
    CHECK(strstr(rv_error_message(err), "limit of 512") != NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_LIMIT);
    free(s);

    /* Objects count too, and the option changes the limit. */
    const char *objs = "{\"a\":{\"a\":{\"a\":[]}}}"; /* depth 4 */
    rv_json_parse_opts_t o4 = {.max_depth = 4}, o3 = {.max_depth = 3};
    CHECK_INT(rv_json_parse(arena, objs, strlen(objs), &o4, &v, &off, NULL), RV_OK);
    CHECK_INT(rv_json_parse(arena, objs, strlen(objs), &o3, &v, &off, NULL), RV_ERR_LIMIT);
    CHECK_INT(off, 15);

    /* A hostile 100000-deep prefix fails cleanly, whatever the limit. */
    s = nested(100000, "", false);
    CHECK_INT(rv_json_parse(arena, s, strlen(s), NULL, &v, &off, NULL), RV_ERR_LIMIT);
    CHECK_INT(off, 512);
    rv_json_parse_opts_t big = {.max_depth = 1000000};
    CHECK_INT(rv_json_parse(arena, s, strlen(s), &big, &v, &off, NULL), RV_ERR_PARSE);
    CHECK_INT(off, 100000);
    free(s);

    /* And with a high limit a deep balanced document parses, writes, compares and copies
     * without recursion. */
    s = nested(100000, "7", true);
    REQUIRE(rv_json_parse(arena, s, strlen(s), &big, &v, &off, NULL) == RV_OK);
    const char *t = write_text(v, 0);
    CHECK(t && strcmp(t, s) == 0);
    rv_arena_t *other = rv_arena_new(0);
    rv_value_t *c = rv_value_copy(other, v);
    CHECK(c != NULL && rv_value_equal(v, c));
    rv_arena_destroy(other);
    free(s);

    rv_json_parse_opts_t neg = {.max_depth = -1};
    CHECK_INT(rv_json_parse(arena, "1", 1, &neg, &v, NULL, NULL), RV_ERR_INVALID_ARG);
    rv_error_destroy(err);
}

static void test_structure(void) {
    rv_value_t *v;
    REQUIRE(parse(" \t\r\n{ \"a\" : [ 1 , { } , [ ] , \"x\" ] , \"b\" : null } \n", &v) == RV_OK);
    CHECK_STR(write_text(v, 0), "{\"a\":[1,{},[],\"x\"],\"b\":null}");
    REQUIRE(parse("true", &v) == RV_OK);
    CHECK(rv_value_bool(v));
    REQUIRE(parse("false", &v) == RV_OK);
    CHECK_INT(rv_value_type(v), RV_TYPE_BOOL);
    CHECK(!rv_value_bool(v));
    REQUIRE(parse("null", &v) == RV_OK);
    CHECK(v != NULL && rv_value_type(v) == RV_TYPE_NULL);

    /* Duplicate keys: the last value wins, at the first key's position; small and large. */
    REQUIRE(parse("{\"a\":1,\"b\":2,\"a\":3}", &v) == RV_OK);
    CHECK_STR(write_text(v, 0), "{\"a\":3,\"b\":2}");
    CHECK_INT(rv_value_len(v), 2);
    REQUIRE(parse("{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,"
                  "\"k8\":8,\"k9\":9,\"k1\":11,\"k10\":10,\"k9\":99}",
                  &v) == RV_OK);
    CHECK_STR(write_text(v, 0), "{\"k0\":0,\"k1\":11,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,"
                                "\"k7\":7,\"k8\":8,\"k9\":99,\"k10\":10}");
    CHECK_INT(rv_value_int(rv_value_get_cstr(v, "k9")), 99);
    CHECK_INT(rv_value_int(rv_value_get_cstr(v, "k10")), 10);
    REQUIRE(parse("{\"\":1,\"\":2}", &v) == RV_OK);
    CHECK_INT(rv_value_len(v), 1);
    CHECK_INT(rv_value_int(rv_value_get(v, "", 0)), 2);
    /* Keys equal after decoding escapes are duplicates too. */
    REQUIRE(parse("{\"a\":1,\"\\u0061\":2}", &v) == RV_OK);
    CHECK_STR(write_text(v, 0), "{\"a\":2}");

    CHECK_FAILS_AT("", RV_ERR_PARSE, 0);
    CHECK_FAILS_AT("   ", RV_ERR_PARSE, 3);
    CHECK_FAILS_AT("1 2", RV_ERR_PARSE, 2);
    CHECK_FAILS_AT("[1,]", RV_ERR_PARSE, 3);
    CHECK_FAILS_AT("{\"a\":1,}", RV_ERR_PARSE, 7);
    CHECK_FAILS_AT("{\"a\" 1}", RV_ERR_PARSE, 5);
    CHECK_FAILS_AT("{a:1}", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("{\"a\":1 \"b\":2}", RV_ERR_PARSE, 7);
    CHECK_FAILS_AT("[1}", RV_ERR_PARSE, 2);
    CHECK_FAILS_AT("{\"a\":1]", RV_ERR_PARSE, 6);
    CHECK_FAILS_AT("tru", RV_ERR_PARSE, 3);
    CHECK_FAILS_AT("[trUe]", RV_ERR_PARSE, 3);
    CHECK_FAILS_AT("nul", RV_ERR_PARSE, 3);
    CHECK_FAILS_AT("[falsey]", RV_ERR_PARSE, 6);
    CHECK_FAILS_AT("\xEF\xBB\xBF{}", RV_ERR_PARSE, 0);
    CHECK_FAILS_AT("[\x00]", RV_ERR_PARSE, 1);
    CHECK_FAILS_AT("[1]\x00", RV_ERR_PARSE, 3);

    /* Arguments. */
    CHECK_INT(rv_json_parse(NULL, "1", 1, NULL, &v, NULL, NULL), RV_ERR_INVALID_ARG);
    CHECK_INT(rv_json_parse(arena, "1", 1, NULL, NULL, NULL, NULL), RV_ERR_INVALID_ARG);
    CHECK_INT(rv_json_parse(arena, NULL, 1, NULL, &v, NULL, NULL), RV_ERR_INVALID_ARG);
    CHECK_INT(rv_json_parse(arena, NULL, 0, NULL, &v, NULL, NULL), RV_ERR_PARSE);
    /* The length is honoured: text after it is never read. */
    CHECK_INT(rv_json_parse(arena, "[1]garbage", 3, NULL, &v, NULL, NULL), RV_OK);
}

static void test_error_messages(void) {
    const char *text = "{\n  \"a\": [1, 2,\n        x]\n}";
    rv_value_t *v = NULL;
    size_t off = 0;
    rv_error_t *err = NULL;
    CHECK_INT(rv_json_parse(arena, text, strlen(text), NULL, &v, &off, &err), RV_ERR_PARSE);
    CHECK_INT(off, 24);
    const char *msg = rv_error_message(err);
    CHECK_MSG(strstr(msg, "offset 24") != NULL, "%s", msg);
    CHECK_MSG(strstr(msg, "line 3") != NULL, "%s", msg);
    CHECK_MSG(strstr(msg, "column 9") != NULL, "%s", msg);
    CHECK_MSG(strstr(msg, "expected a value") != NULL, "%s", msg);
    CHECK_MSG(strstr(msg, "found 'x'") != NULL, "%s", msg);

    CHECK_INT(rv_json_parse(arena, "[1 2]", 5, NULL, &v, &off, &err), RV_ERR_PARSE);
    msg = rv_error_message(err);
    CHECK_MSG(strstr(msg, "expected ',' or ']'") && strstr(msg, "line 1, column 4"), "%s", msg);

    CHECK_INT(rv_json_parse(arena, "{\"k\":1", 6, NULL, &v, &off, &err), RV_ERR_PARSE);
    msg = rv_error_message(err);
    CHECK_MSG(strstr(msg, "offset 6") && strstr(msg, "end of input"), "%s", msg);

    CHECK_INT(rv_json_parse(arena, "[\"\\uDC00\"]", 10, NULL, &v, &off, &err), RV_ERR_PARSE);
    msg = rv_error_message(err);
    CHECK_MSG(strstr(msg, "surrogate") && strstr(msg, "offset 2"), "%s", msg);

    CHECK_INT(rv_json_parse(arena, "[1e999]", 7, NULL, &v, &off, &err), RV_ERR_RANGE);
    CHECK_INT(rv_error_code(err), RV_ERR_RANGE);
    msg = rv_error_message(err);
    CHECK_MSG(strstr(msg, "1e999") && strstr(msg, "range"), "%s", msg);
    rv_error_destroy(err);
}

/* ---- writer ------------------------------------------------------------------------------- */

static void test_write_exact(void) {
    const char *in = "{\"name\":\"caf\xC3\xA9 \xF0\x9D\x84\x9E\",\"n\":[1,-2,3.5,true,null],"
                     "\"e\":{},\"a\":[],\"o\":{\"x\":[{}]}}";
    CHECK_STR(reformat(in, RV_JSON_COMPACT), in);
    CHECK_STR(reformat(in, RV_JSON_PRETTY), "{\n"
                                            "  \"name\": \"caf\xC3\xA9 \xF0\x9D\x84\x9E\",\n"
                                            "  \"n\": [\n"
                                            "    1,\n"
                                            "    -2,\n"
                                            "    3.5,\n"
                                            "    true,\n"
                                            "    null\n"
                                            "  ],\n"
                                            "  \"e\": {},\n"
                                            "  \"a\": [],\n"
                                            "  \"o\": {\n"
                                            "    \"x\": [\n"
                                            "      {}\n"
                                            "    ]\n"
                                            "  }\n"
                                            "}");
    CHECK_STR(reformat(in, RV_JSON_ASCII),
              "{\"name\":\"caf\\u00e9 \\ud834\\udd1e\",\"n\":[1,-2,3.5,true,null],\"e\":{},"
              "\"a\":[],\"o\":{\"x\":[{}]}}");
    CHECK_STR(reformat("{\"\xC3\xA9\":\"\xE2\x82\xAC\\n\"}", RV_JSON_ASCII),
              "{\"\\u00e9\":\"\\u20ac\\n\"}");
    CHECK_STR(reformat("[]", RV_JSON_PRETTY), "[]");
    CHECK_STR(reformat("5", RV_JSON_PRETTY), "5");

    /* Minimal escapes: quote, backslash and controls; '/' and DEL stay as they are. */
    CHECK_STR(reformat("\"\\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u0001\\u001f\\u0000 \x7f\"", 0),
              "\"\\\" \\\\ / \\b\\f\\n\\r\\t \\u0001\\u001f\\u0000 \x7f\"");
    CHECK_STR(reformat("{\"a\\tb\":1}", 0), "{\"a\\tb\":1}");
    CHECK_STR(reformat("\"\\u00e9\\u2028\"", 0), "\"\xC3\xA9\xE2\x80\xA8\"");

    /* Appends after what the buffer holds. */
    rv_strbuf_t sb = RV_STRBUF_INIT;
    rv_strbuf_append(&sb, "x=", 2);
    rv_value_t *v;
    REQUIRE(parse("[1,2]", &v) == RV_OK);
    CHECK_INT(rv_json_write(&sb, v, 0, NULL), RV_OK);
    CHECK_STR(sb.data, "x=[1,2]");
    CHECK_INT(sb.len, 7);
    rv_strbuf_free(&sb);
    CHECK_INT(rv_json_write(NULL, v, 0, NULL), RV_ERR_INVALID_ARG);
}

static void test_write_built_tree(void) {
    rv_value_t *o = rv_value_new_object(arena, 0);
    rv_value_set(arena, o, "s", 1, rv_value_new_string(arena, "a\"b\x01\xC3\xA9", 6));
    rv_value_set(arena, o, "r", 1, rv_value_new_string_ref(arena, "ref\n", 4));
    rv_value_set(arena, o, "z", 1, rv_value_new_string(arena, "\0x", 2));
    rv_value_set(arena, o, "i", 1, rv_value_new_int(arena, INT64_MIN));
    rv_value_set(arena, o, "k\"", 2, rv_value_new_bool(arena, false));
    rv_value_set(arena, o, "n", 1, NULL); /* refused: not a value */
    CHECK_STR(write_text(o, 0),
              "{\"s\":\"a\\\"b\\u0001\xC3\xA9\",\"r\":\"ref\\n\",\"z\":\"\\u0000x\","
              "\"i\":-9223372036854775808,\"k\\\"\":false}");
    CHECK_STR(write_text(o, RV_JSON_ASCII),
              "{\"s\":\"a\\\"b\\u0001\\u00e9\",\"r\":\"ref\\n\",\"z\":\"\\u0000x\","
              "\"i\":-9223372036854775808,\"k\\\"\":false}");
    CHECK_STR(write_text(NULL, 0), "null");

    /* A long string needing escapes crosses the writer's 4 KiB segments. */
    size_t n = 20000;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++) {
        big[i] = (i % 7 == 0) ? '\n' : (i % 13 == 0) ? '"' : (char)('a' + i % 26);
    }
    rv_value_t *s = rv_value_new_string(arena, big, n);
    const char *t = write_text(s, RV_JSON_ASCII);
    REQUIRE(t != NULL);
    rv_value_t *back;
    REQUIRE(parse(t, &back) == RV_OK);
    CHECK(rv_value_equal(s, back));
    free(big);
}

static void test_base64(void) {
    static const struct {
        const char *in;
        const char *out;
    } vectors[] = {{"", "\"\""},
                   {"f", "\"Zg==\""},
                   {"fo", "\"Zm8=\""},
                   {"foo", "\"Zm9v\""},
                   {"foob", "\"Zm9vYg==\""},
                   {"fooba", "\"Zm9vYmE=\""},
                   {"foobar", "\"Zm9vYmFy\""}};
    for (size_t i = 0; i < ARRAY_LEN(vectors); i++) {
        rv_value_t *b = rv_value_new_bytes(arena, vectors[i].in, strlen(vectors[i].in));
        CHECK_STR(write_text(b, 0), vectors[i].out);
    }
    static const unsigned char bin[] = {0xFB, 0xFF, 0xBF, 0x00, 0x10, 0x83};
    rv_value_t *a = rv_value_new_array(arena, 1);
    rv_value_append(arena, a, rv_value_new_bytes(arena, bin, sizeof bin));
    CHECK_STR(write_text(a, 0), "[\"+/+/ABCD\"]");
}

static void test_write_errors(void) {
    /* $.laps[3].speed is NaN. */
    rv_value_t *root = rv_value_new_object(arena, 0);
    rv_value_t *laps = rv_value_new_array(arena, 0);
    for (int i = 0; i < 4; i++) {
        rv_value_t *lap = rv_value_new_object(arena, 0);
        rv_value_set(arena, lap, "n", 1, rv_value_new_int(arena, i));
        rv_value_set(arena, lap, "speed", 5, rv_value_new_double(arena, i == 3 ? NAN : 1.5));
        rv_value_append(arena, laps, lap);
    }
    rv_value_set(arena, root, "car", 3, rv_value_new_string(arena, "x", 1));
    rv_value_set(arena, root, "laps", 4, laps);
    rv_strbuf_t sb = RV_STRBUF_INIT;
    rv_error_t *err = NULL;
    CHECK_INT(rv_json_write(&sb, root, 0, &err), RV_ERR_RANGE);
    CHECK_INT(rv_error_code(err), RV_ERR_RANGE);
    CHECK_MSG(strstr(rv_error_message(err), "$.laps[3].speed") != NULL, "%s",
              rv_error_message(err));
    CHECK_MSG(strstr(rv_error_message(err), "NaN") != NULL, "%s", rv_error_message(err));
    CHECK(sb.len == strlen(sb.data)); /* partial, but consistent */

    rv_strbuf_clear(&sb);
    rv_value_t *arr = rv_value_new_array(arena, 0);
    rv_value_append(arena, arr, rv_value_new_double(arena, -INFINITY));
    CHECK_INT(rv_json_write(&sb, arr, RV_JSON_PRETTY, &err), RV_ERR_RANGE);
    CHECK_MSG(strstr(rv_error_message(err), "$[0]") != NULL, "%s", rv_error_message(err));
    CHECK_INT(rv_json_write(&sb, rv_value_new_double(arena, INFINITY), 0, &err), RV_ERR_RANGE);
    CHECK_MSG(strstr(rv_error_message(err), "at $:") != NULL, "%s", rv_error_message(err));

    /* Invalid UTF-8 in a string node and in a key. */
    rv_strbuf_clear(&sb);
    rv_value_t *o = rv_value_new_object(arena, 0);
    rv_value_t *inner = rv_value_new_object(arena, 0);
    rv_value_set(arena, o, "a b", 3, inner);
    rv_value_set(arena, inner, "s", 1, rv_value_new_string(arena, "ok\xFF", 3));
    CHECK_INT(rv_json_write(&sb, o, 0, &err), RV_ERR_PARSE);
    CHECK_MSG(strstr(rv_error_message(err), "$['a b'].s") != NULL, "%s", rv_error_message(err));
    CHECK_MSG(strstr(rv_error_message(err), "UTF-8") != NULL, "%s", rv_error_message(err));

    rv_strbuf_clear(&sb);
    rv_value_t *ref = rv_value_new_string_ref(arena, "\xED\xA0\x80", 3); /* not checked early */
    CHECK_INT(rv_json_write(&sb, ref, 0, &err), RV_ERR_PARSE);

    rv_strbuf_clear(&sb);
    rv_value_t *bad_key = rv_value_new_object(arena, 0);
    rv_value_set(arena, bad_key, "k\xC0", 2, rv_value_new_null(arena));
    CHECK_INT(rv_json_write(&sb, bad_key, 0, &err), RV_ERR_PARSE);
    CHECK_MSG(strstr(rv_error_message(err), "$['k\\xc0']") != NULL, "%s", rv_error_message(err));
    CHECK_MSG(strstr(rv_error_message(err), "key") != NULL, "%s", rv_error_message(err));
    rv_error_destroy(err);
    rv_strbuf_free(&sb);
}

/* ---- larger documents --------------------------------------------------------------------- */

static void test_large_document(void) {
    /* Telemetry-shaped records, many of them, plus one object of 1000 members. */
    rv_strbuf_t in = RV_STRBUF_INIT;
    rv_strbuf_append(&in, "{\"records\":[", 12);
    for (int i = 0; i < 2000; i++) {
        rv_strbuf_appendf(&in,
                          "%s{\"ts\":%d,\"car\":\"car-%d\",\"speed\":%d.25,\"rpm\":%d,"
                          "\"gear\":%d,\"drs\":%s,\"tags\":[\"a\",\"b\\u00e9\"],\"note\":null}",
                          i ? "," : "", 1700000000 + i, i % 20, i % 300, 9000 + i, i % 8,
                          i % 2 ? "true" : "false");
    }
    rv_strbuf_append(&in, "],\"wide\":{", 10);
    for (int i = 0; i < 1000; i++) {
        rv_strbuf_appendf(&in, "%s\"ch%d\":%d", i ? "," : "", i, i * 3);
    }
    rv_strbuf_append(&in, "}}", 2);
    rv_value_t *v;
    REQUIRE(rv_json_parse(arena, in.data, in.len, NULL, &v, NULL, NULL) == RV_OK);
    rv_value_t *recs = rv_value_get_cstr(v, "records");
    CHECK_INT(rv_value_len(recs), 2000);
    rv_value_t *r = rv_value_at(recs, 1234);
    CHECK_INT(rv_value_int(rv_value_get_cstr(r, "ts")), 1700001234);
    CHECK(rv_value_double(rv_value_get_cstr(r, "speed")) == 34.25);
    rv_value_t *wide = rv_value_get_cstr(v, "wide");
    CHECK_INT(rv_value_len(wide), 1000);
    int wrong = 0;
    for (int i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof key, "ch%d", i);
        wrong += rv_value_int(rv_value_get_cstr(wide, key)) != i * 3;
    }
    CHECK_INT(wrong, 0);
    CHECK(rv_value_get_cstr(wide, "ch1000") == NULL);
    /* The parsed object's index stays right across set and remove. */
    CHECK(rv_value_remove(wide, "ch10", 4));
    CHECK(rv_value_get_cstr(wide, "ch10") == NULL);
    CHECK_INT(rv_value_int(rv_value_get_cstr(wide, "ch11")), 33);
    CHECK_INT(rv_value_set(arena, wide, "ch10", 4, rv_value_new_int(arena, -1)), RV_OK);
    const char *k;
    rv_value_member_at(wide, 999, &k, NULL);
    CHECK_STR(k, "ch10");
    CHECK_INT(rv_value_int(rv_value_get_cstr(wide, "ch10")), -1);

    const char *out = write_text(v, 0);
    REQUIRE(out != NULL);
    rv_value_t *back;
    REQUIRE(parse(out, &back) == RV_OK);
    CHECK(rv_value_equal(v, back));
    CHECK_STR(write_text(back, 0), out);
    rv_strbuf_free(&in);
}

int main(void) {
    arena = rv_arena_new(0);
    RV_RUN(test_suite);
    RV_RUN(test_suite_number_values);
    RV_RUN(test_int64_limits);
    RV_RUN(test_doubles);
    RV_RUN(test_number_errors);
    RV_RUN(test_escapes);
    RV_RUN(test_utf8);
    RV_RUN(test_nesting_limit);
    RV_RUN(test_structure);
    RV_RUN(test_error_messages);
    RV_RUN(test_write_exact);
    RV_RUN(test_write_built_tree);
    RV_RUN(test_base64);
    RV_RUN(test_write_errors);
    RV_RUN(test_large_document);
    rv_arena_destroy(arena);
    return rv_test_finish();
}
