/*
 * test_serde.c: the serialisers registry (src/codec/serde.c): every serialiser reads what it
 * writes, reads the byte layouts of the clients it shares topics with (Kafka's Long, Integer,
 * Double and Float serializers are big-endian; quixstreams' int is Kafka's 4-byte Integer), says
 * why it refuses bytes or values, and writes a null as a tombstone in the binary formats.
 */
#include <math.h>
#include <string.h>

#include "codec/serde.h"
#include "rivulet/json.h"
#include "rv_test.h"

static rv_arena_t *A;

/* Decodes with `name`; returns the code and leaves the value in *out. */
static rv_err_t dec(const char *name, const void *data, size_t len, rv_value_t **out, char *why) {
    const rv__serde_t *s = rv__serde_find(name);
    *out = NULL;
    why[0] = 0;
    return s ? s->decode(A, data, len, 0, out, why, 256) : RV_ERR_NOT_FOUND;
}

/* Encodes with `name` into `sb` (cleared first). */
static rv_err_t enc(const char *name, const rv_value_t *v, rv_strbuf_t *sb, bool *tomb, char *why) {
    const rv__serde_t *s = rv__serde_find(name);
    rv_strbuf_clear(sb);
    *tomb = false;
    why[0] = 0;
    return s ? s->encode(v, sb, tomb, why, 256) : RV_ERR_NOT_FOUND;
}

static void test_registry(void) {
    const char *names[] = {"bytes", "string", "int", "int32", "double", "json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const rv__serde_t *s = rv__serde_find(names[i]);
        REQUIRE(s != NULL);
        CHECK_STR(s->name, names[i]);
        CHECK_INT(s->version, RV__SERDE_VERSION);
        CHECK(strstr(rv__serde_names(), names[i]) != NULL);
    }
    CHECK(rv__serde_find("protobuf") == NULL);
    CHECK(rv__serde_find(NULL) == NULL);
}

static void test_bytes(void) {
    char why[256];
    rv_value_t *v;
    rv_strbuf_t sb = RV_STRBUF_INIT;
    bool tomb;
    CHECK_INT(dec("bytes",
                  "\0\xff"
                  "ab",
                  4, &v, why),
              RV_OK);
    CHECK_INT(rv_value_type(v), RV_TYPE_BYTES);
    CHECK_INT(rv_value_len(v), 4);
    CHECK_INT(enc("bytes", v, &sb, &tomb, why), RV_OK);
    CHECK(sb.len == 4 &&
          memcmp(sb.data,
                 "\0\xff"
                 "ab",
                 4) == 0 &&
          !tomb);
    CHECK_INT(dec("bytes", "", 0, &v, why), RV_OK); /* empty is a value, not absent */
    CHECK_INT(rv_value_len(v), 0);
    CHECK_INT(enc("bytes", rv_value_new_string(A, "txt", 3), &sb, &tomb, why), RV_OK);
    CHECK(sb.len == 3 && memcmp(sb.data, "txt", 3) == 0);
    CHECK_INT(enc("bytes", rv_value_new_int(A, 1), &sb, &tomb, why), RV_ERR_INVALID_ARG);
    CHECK_MSG(strstr(why, "int") != NULL, "why: %s", why);
    CHECK_INT(enc("bytes", rv_value_new_null(A), &sb, &tomb, why), RV_OK);
    CHECK(tomb && sb.len == 0);
    rv_strbuf_free(&sb);
}

static void test_string(void) {
    char why[256];
    rv_value_t *v;
    rv_strbuf_t sb = RV_STRBUF_INIT;
    bool tomb;
    CHECK_INT(dec("string", "h\xc3\xa9llo", 6, &v, why), RV_OK);
    CHECK_INT(rv_value_type(v), RV_TYPE_STRING);
    CHECK_STR(rv_value_str(v, NULL), "h\xc3\xa9llo");
    CHECK_INT(dec("string", "ab\xc3(", 4, &v, why), RV_ERR_PARSE);
    CHECK(v == NULL);
    CHECK_MSG(strstr(why, "byte 2 of 4") != NULL, "why: %s", why);
    CHECK_INT(enc("string", rv_value_new_string(A, "x y", 3), &sb, &tomb, why), RV_OK);
    CHECK_STR(sb.data, "x y");
    CHECK_INT(enc("string", rv_value_new_int(A, -42), &sb, &tomb, why), RV_OK);
    CHECK_STR(sb.data, "-42");
    CHECK_INT(enc("string", rv_value_new_double(A, 0.5), &sb, &tomb, why), RV_OK);
    CHECK_STR(sb.data, "0.5");
    CHECK_INT(enc("string", rv_value_new_bool(A, true), &sb, &tomb, why), RV_OK);
    CHECK_STR(sb.data, "true");
    CHECK_INT(enc("string", rv_value_new_object(A, 0), &sb, &tomb, why), RV_ERR_INVALID_ARG);
    CHECK_MSG(strstr(why, "object") != NULL, "why: %s", why);
    CHECK_INT(enc("string", rv_value_new_null(A), &sb, &tomb, why), RV_OK);
    CHECK(tomb);
    rv_strbuf_free(&sb);
}

static void test_int(void) {
    char why[256];
    rv_value_t *v;
    rv_strbuf_t sb = RV_STRBUF_INIT;
    bool tomb;
    /* 8 bytes: Kafka's LongSerializer. */
    CHECK_INT(dec("int", "\xff\xff\xff\xff\xff\xff\xff\xfe", 8, &v, why), RV_OK);
    CHECK_INT(rv_value_int(v), -2);
    CHECK_INT(dec("int", "\x00\x00\x00\x00\x00\x00\x01\x00", 8, &v, why), RV_OK);
    CHECK_INT(rv_value_int(v), 256);
    /* 4 bytes: Kafka's IntegerSerializer (quixstreams, confluent-kafka). */
    CHECK_INT(dec("int", "\x80\x00\x00\x00", 4, &v, why), RV_OK);
    CHECK_INT(rv_value_int(v), INT32_MIN);
    CHECK_INT(dec("int32", "\x00\x00\x01\x02", 4, &v, why), RV_OK);
    CHECK_INT(rv_value_int(v), 258);
    CHECK_INT(dec("int", "\x01\x02\x03", 3, &v, why), RV_ERR_PARSE);
    CHECK_MSG(strstr(why, "not 3") != NULL, "why: %s", why);
    CHECK_INT(enc("int", rv_value_new_int(A, INT64_MIN), &sb, &tomb, why), RV_OK);
    CHECK(sb.len == 8 && memcmp(sb.data, "\x80\0\0\0\0\0\0\0", 8) == 0);
    CHECK_INT(dec("int", sb.data, sb.len, &v, why), RV_OK);
    CHECK(rv_value_int(v) == INT64_MIN);
    CHECK_INT(enc("int32", rv_value_new_int(A, -1), &sb, &tomb, why), RV_OK);
    CHECK(sb.len == 4 && memcmp(sb.data, "\xff\xff\xff\xff", 4) == 0);
    CHECK_INT(enc("int32", rv_value_new_int(A, 1LL << 31), &sb, &tomb, why), RV_ERR_RANGE);
    CHECK_MSG(strstr(why, "2147483648") != NULL, "why: %s", why);
    CHECK_INT(enc("int", rv_value_new_double(A, 1.0), &sb, &tomb, why), RV_ERR_INVALID_ARG);
    CHECK_INT(enc("int", rv_value_new_null(A), &sb, &tomb, why), RV_OK);
    CHECK(tomb);
    rv_strbuf_free(&sb);
}

static void test_double(void) {
    char why[256];
    rv_value_t *v;
    rv_strbuf_t sb = RV_STRBUF_INIT;
    bool tomb;
    /* 1.5 as Kafka's DoubleSerializer writes it. */
    CHECK_INT(dec("double", "\x3f\xf8\0\0\0\0\0\0", 8, &v, why), RV_OK);
    CHECK(rv_value_type(v) == RV_TYPE_DOUBLE && rv_value_double(v) == 1.5);
    /* -2.25f as FloatSerializer writes it. */
    CHECK_INT(dec("double", "\xc0\x10\0\0", 4, &v, why), RV_OK);
    CHECK(rv_value_double(v) == -2.25);
    CHECK_INT(dec("double", "\0\0", 2, &v, why), RV_ERR_PARSE);
    CHECK_INT(enc("double", rv_value_new_double(A, 1.5), &sb, &tomb, why), RV_OK);
    CHECK(sb.len == 8 && memcmp(sb.data, "\x3f\xf8\0\0\0\0\0\0", 8) == 0);
    CHECK_INT(enc("double", rv_value_new_int(A, 3), &sb, &tomb, why), RV_OK);
    CHECK_INT(dec("double", sb.data, sb.len, &v, why), RV_OK);
    CHECK(rv_value_double(v) == 3.0);
    CHECK_INT(enc("double", rv_value_new_double(A, NAN), &sb, &tomb, why), RV_OK); /* bits */
    CHECK_INT(dec("double", sb.data, sb.len, &v, why), RV_OK);
    CHECK(isnan(rv_value_double(v)));
    CHECK_INT(enc("double", rv_value_new_string(A, "1", 1), &sb, &tomb, why), RV_ERR_INVALID_ARG);
    rv_strbuf_free(&sb);
}

static void test_json(void) {
    char why[256];
    rv_value_t *v;
    rv_strbuf_t sb = RV_STRBUF_INIT;
    bool tomb;
    const char *text = "{\"a\":[1,2.5,\"x\"],\"b\":null,\"c\":{\"d\":true}}";
    CHECK_INT(dec("json", text, strlen(text), &v, why), RV_OK);
    CHECK_INT(rv_value_type(v), RV_TYPE_OBJECT);
    CHECK_INT(enc("json", v, &sb, &tomb, why), RV_OK);
    CHECK_STR(sb.data, text);
    CHECK_INT(dec("json", "{\"a\":", 5, &v, why), RV_ERR_PARSE);
    CHECK(v == NULL);
    CHECK_MSG(strstr(why, "offset 5") != NULL, "why: %s", why);
    CHECK_INT(dec("json", "", 0, &v, why), RV_ERR_PARSE);
    CHECK_INT(enc("json", rv_value_new_null(A), &sb, &tomb, why), RV_OK);
    CHECK(!tomb);
    CHECK_STR(sb.data, "null"); /* JSON has a null; it is not a tombstone */
    CHECK_INT(enc("json", rv_value_new_double(A, INFINITY), &sb, &tomb, why), RV_ERR_RANGE);
    CHECK(why[0] != 0);
    /* Nesting deeper than the limit the caller gives. */
    CHECK_INT(rv__serde_find("json")->decode(A, "[[[1]]]", 7, 2, &v, why, sizeof why),
              RV_ERR_LIMIT);
    rv_strbuf_free(&sb);
}

int main(void) {
    A = rv_arena_new(0);
    RV_RUN(test_registry);
    RV_RUN(test_bytes);
    RV_RUN(test_string);
    RV_RUN(test_int);
    RV_RUN(test_double);
    RV_RUN(test_json);
    rv_arena_destroy(A);
    return rv_test_finish();
}
