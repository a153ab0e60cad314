/*
 * test_core.c: unit tests of src/core: error codes and objects, arenas, string buffers,
 * CRC32C against published vectors, Kafka's murmur2 against the Java client's vectors,
 * the configuration table, clocks and the log callback.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/config_int.h"
#include "core/core_int.h"
#include "rivulet/clock.h"
#include "rivulet/config.h"
#include "rivulet/hash.h"
#include "rivulet/strbuf.h"
#include "rv_test.h"

static void test_error_codes(void) {
    CHECK_STR(rv_err_name(RV_OK), "OK");
    CHECK_STR(rv_err_name(RV_ERR_CORRUPT), "CORRUPT");
    CHECK_STR(rv_err_str(RV_ERR_TIMEOUT), "timed out");
    CHECK_STR(rv_err_name((rv_err_t)-999), "UNKNOWN");
    CHECK_INT(RV_ERR_USER, -20);
    CHECK_INT(rv_error_code(NULL), RV_OK);
    CHECK_STR(rv_error_message(NULL), "success");

    rv_error_t *err = NULL;
    rv_err_t e = rv__error_set(&err, RV_ERR_IO, "cannot open '%s': %s", "seg.log", "denied");
    CHECK_INT(e, RV_ERR_IO);
    CHECK_INT(rv_error_code(err), RV_ERR_IO);
    CHECK_STR(rv_error_message(err), "cannot open 'seg.log': denied");
    e = rv__error_prefix(&err, RV_OK, "topic '%s' partition %d: ", "t", 3);
    CHECK_INT(e, RV_ERR_IO);
    CHECK_STR(rv_error_message(err), "topic 't' partition 3: cannot open 'seg.log': denied");
    /* Setting again replaces (no leak under ASan). */
    rv__error_set(&err, RV_ERR_PARSE, "second");
    CHECK_STR(rv_error_message(err), "second");
    rv_error_destroy(err);
    /* A NULL destination only returns the code. */
    CHECK_INT(rv__error_set(NULL, RV_ERR_BUSY, "x"), RV_ERR_BUSY);
    CHECK_INT(rv__error_prefix(NULL, RV_ERR_AGAIN, "x"), RV_ERR_AGAIN);
}

static void test_quote(void) {
    char out[32];
    CHECK_STR(rv__quote(out, sizeof out, "ab\n'c", 5), "'ab\\x0a\\x27c'");
    rv__quote(out, sizeof out, "0123456789012345678901234567890123456789", 40);
    CHECK(strlen(out) < sizeof out);
    CHECK(strstr(out, "...") != NULL);
}

static void test_arena(void) {
    rv_arena_t *a = rv_arena_new(256);
    REQUIRE(a != NULL);
    char *prev = NULL;
    for (int i = 1; i < 2000; i++) {
        char *p = rv_arena_alloc(a, (size_t)(i % 97));
        REQUIRE(p != NULL);
        CHECK(((uintptr_t)p & 15) == 0);
        memset(p, 0xab, (size_t)(i % 97)); /* ASan flags any overlap or overrun */
        CHECK(p != prev);
        prev = i % 97 ? p : NULL; /* a 0-byte allocation may share the next one's address */
    }
    char *big = rv_arena_alloc(a, 1 << 20);
    REQUIRE(big != NULL);
    memset(big, 1, 1 << 20);
    size_t reserved = rv_arena_reserved(a);
    CHECK(rv_arena_used(a) > (1 << 20));
    size_t used = rv_arena_used(a);
    rv_arena_reset(a);
    CHECK_INT(rv_arena_used(a), 0);
    CHECK(rv_arena_reserved(a) <= reserved);
    /* After a reset one block serves the same workload without growing. */
    size_t kept = rv_arena_reserved(a);
    CHECK(kept >= used);
    for (int i = 1; i < 2000; i++) {
        CHECK(rv_arena_alloc(a, (size_t)(i % 97)) != NULL);
    }
    void *again = rv_arena_alloc(a, 1 << 20);
    CHECK(again != NULL);
    CHECK_INT(rv_arena_reserved(a), kept);
    rv_arena_reset(a);
    CHECK_INT(rv_arena_reserved(a), kept); /* a single block is rewound, not replaced */
    char *s = rv_arena_strndup(a, "hello world", 5);
    CHECK_STR(s, "hello");
    CHECK(memcmp(rv_arena_memdup(a, "xyz", 3), "xyz", 3) == 0);
    CHECK(rv_arena_alloc(a, SIZE_MAX - 4) == NULL);
    rv_arena_destroy(a);
    rv_arena_destroy(NULL);
}

static void test_strbuf(void) {
    rv_strbuf_t sb = RV_STRBUF_INIT;
    CHECK_INT(rv_strbuf_append(&sb, "abc", 3), RV_OK);
    CHECK_INT(rv_strbuf_appendf(&sb, "-%d-%s", 42, "x"), RV_OK);
    CHECK_STR(sb.data, "abc-42-x");
    CHECK_INT(sb.len, 8);
    for (int i = 0; i < 10000; i++) {
        rv_strbuf_append(&sb, "0123456789", 10);
    }
    CHECK_INT(sb.len, 8 + 100000);
    CHECK_INT(sb.data[sb.len], 0);
    rv_strbuf_clear(&sb);
    CHECK_INT(sb.len, 0);
    CHECK_STR(sb.data, "");
    rv_strbuf_free(&sb);
    CHECK(sb.data == NULL);
}

static void test_crc32c_vectors(void) {
    /* RFC 3720 (iSCSI), appendix B.4, and the common "123456789" check value. */
    unsigned char buf[48];
    memset(buf, 0, 32);
    CHECK_INT(rv_crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, 32);
    CHECK_INT(rv_crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) {
        buf[i] = (unsigned char)i;
    }
    CHECK_INT(rv_crc32c(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) {
        buf[i] = (unsigned char)(31 - i);
    }
    CHECK_INT(rv_crc32c(0, buf, 32), 0x113FDB5Cu);
    CHECK_INT(rv_crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_INT(rv__crc32c_portable(0, "123456789", 9), 0xE3069283u);
    static const unsigned char iscsi_read[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    CHECK_INT(rv_crc32c(0, iscsi_read, 48), 0xD9963A56u);
    CHECK_INT(rv_crc32c(0, "", 0), 0);
}

static void test_crc32c_paths_agree(void) {
    /* Every length and alignment up to a few KiB, and incremental use, on both paths. */
    size_t n = 5000;
    unsigned char *data = malloc(n + 16);
    REQUIRE(data != NULL);
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (size_t i = 0; i < n + 16; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data[i] = (unsigned char)x;
    }
    int mismatches = 0;
    for (size_t off = 0; off < 9; off++) {
        for (size_t len = 0; len < n; len += (len < 64 ? 1 : 37)) {
            uint32_t a = rv_crc32c(0, data + off, len);
            uint32_t b = rv__crc32c_portable(0, data + off, len);
            uint32_t half = len / 2;
            uint32_t c = rv_crc32c(rv_crc32c(0, data + off, half), data + off + half, len - half);
            if (a != b || a != c) {
                mismatches++;
            }
        }
    }
    CHECK_INT(mismatches, 0);
    free(data);
}

static void test_murmur2(void) {
    /* The Java client's own vectors (Kafka UtilsTest.testMurmur2). */
    struct {
        const char *key;
        int32_t hash;
    } v[] = {{"21", -973932308},
             {"foobar", -790332482},
             {"a-little-bit-long-string", -985981536},
             {"a-little-bit-longer-string", -1486304829},
             {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
             {"abc", 479470107},
             {"", 275646681}};
    for (size_t i = 0; i < RV_ARRAY_LEN(v); i++) {
        CHECK_MSG(rv_murmur2(v[i].key, strlen(v[i].key)) == v[i].hash, "murmur2(%s) = %d, want %d",
                  v[i].key, rv_murmur2(v[i].key, strlen(v[i].key)), v[i].hash);
    }
    /* toPositive(-790332482) = 1357151166; % 50 = 16. */
    CHECK_INT(rv_murmur2_partition("foobar", 6, 50), 16);
    CHECK_INT(rv_murmur2_partition("foobar", 6, 1), 0);
    CHECK_INT(rv_murmur2_partition("21", 2, 12), (-973932308 & 0x7fffffff) % 12);
}

static void test_config_values(void) {
    rv_conf_t *c = rv_conf_new();
    REQUIRE(c != NULL);
    rv_error_t *err = NULL;
    CHECK_STR(rv_conf_get(c, "log.level"), "notice");
    CHECK(!rv_conf_is_set(c, "log.level"));
    CHECK_INT(rv_conf_get_int(c, "json.max.depth"), 512);
    CHECK_INT(rv__conf_int(c, RV_CONF_ID_JSON_MAX_DEPTH), 512);

    CHECK_INT(rv_conf_set(c, "json.max.depth", "64", &err), RV_OK);
    CHECK_INT(rv_conf_get_int(c, "json.max.depth"), 64);
    CHECK(rv_conf_is_set(c, "json.max.depth"));

    CHECK_INT(rv_conf_set(c, "log.level", "DEBUG", &err), RV_OK);
    CHECK_INT(rv__conf_int(c, RV_CONF_ID_LOG_LEVEL), 4);

    /* Invalid enum value: names the property, the value and the accepted values. */
    CHECK_INT(rv_conf_set(c, "log.level", "loud", &err), RV_ERR_CONFIG);
    CHECK(strstr(rv_error_message(err), "'log.level'") != NULL);
    CHECK(strstr(rv_error_message(err), "'loud'") != NULL);
    CHECK(strstr(rv_error_message(err), "error,warning,notice,info,debug") != NULL);
    CHECK_STR(rv_conf_get(c, "log.level"), "DEBUG"); /* unchanged on failure */

    /* Range and form. */
    CHECK_INT(rv_conf_set(c, "json.max.depth", "0", &err), RV_ERR_RANGE);
    CHECK(strstr(rv_error_message(err), "1..100000") != NULL);
    CHECK_INT(rv_conf_set(c, "json.max.depth", "12abc", &err), RV_ERR_CONFIG);
    CHECK(strstr(rv_error_message(err), "an integer") != NULL);
    CHECK_INT(rv_conf_set(c, "json.max.depth", "99999999999999999999999", &err), RV_ERR_CONFIG);

    /* Unknown names suggest the nearest property. */
    CHECK_INT(rv_conf_set(c, "log.levle", "info", &err), RV_ERR_CONFIG);
    CHECK(strstr(rv_error_message(err), "'log.levle'") != NULL);
    CHECK(strstr(rv_error_message(err), "did you mean 'log.level'") != NULL);
    CHECK_INT(rv_conf_set(c, "completely.unrelated.thing", "1", &err), RV_ERR_CONFIG);
    CHECK(strstr(rv_error_message(err), "did you mean") == NULL);

    /* Pairs. */
    CHECK_INT(rv_conf_set_pair(c, "json.max.depth=100", &err), RV_OK);
    CHECK_INT(rv_conf_get_int(c, "json.max.depth"), 100);
    CHECK_INT(rv_conf_set_pair(c, "json.max.depth", &err), RV_ERR_CONFIG);
    CHECK(strstr(rv_error_message(err), "name=value") != NULL);

    /* Pass-through properties keep their order and last value. */
    CHECK_INT(rv_conf_set(c, "kafka.security.protocol", "SASL_SSL", &err), RV_OK);
    CHECK_INT(rv_conf_set(c, "kafka.sasl.mechanism", "PLAIN", &err), RV_OK);
    CHECK_INT(rv_conf_set(c, "rocksdb.max_open_files", "64", &err), RV_OK);
    CHECK_INT(rv_conf_set(c, "kafka.sasl.mechanism", "SCRAM-SHA-512", &err), RV_OK);
    CHECK_STR(rv_conf_get(c, "kafka.sasl.mechanism"), "SCRAM-SHA-512");
    CHECK(rv_conf_get(c, "kafka.not.set") == NULL);
    CHECK_INT(rv_conf_set(c, "kafka.", "x", &err), RV_ERR_CONFIG); /* empty name after prefix */

    rv_conf_t *d = rv_conf_dup(c);
    REQUIRE(d != NULL);
    rv_conf_destroy(c);
    CHECK_INT(rv_conf_get_int(d, "json.max.depth"), 100);
    CHECK_STR(rv_conf_get(d, "kafka.security.protocol"), "SASL_SSL");
    rv_conf_destroy(d);
    rv_error_destroy(err);
}

static rv_err_t collect_pair(void *opaque, const char *name, const char *value) {
    rv_strbuf_t *sb = opaque;
    return rv_strbuf_appendf(sb, "%s=%s;", name, value);
}

static void test_config_passthrough_order(void) {
    rv_conf_t *c = rv_conf_new();
    REQUIRE(c != NULL);
    rv_conf_set(c, "kafka.b", "2", NULL);
    rv_conf_set(c, "rocksdb.x", "9", NULL);
    rv_conf_set(c, "kafka.a", "1", NULL);
    rv_conf_set(c, "kafka.b", "3", NULL);
    rv_strbuf_t sb = RV_STRBUF_INIT;
    CHECK_INT(rv_conf_foreach_prefixed(c, "kafka.", collect_pair, &sb), RV_OK);
    CHECK_STR(sb.data, "b=3;a=1;");
    rv_strbuf_clear(&sb);
    rv_conf_foreach_prefixed(c, "rocksdb.", collect_pair, &sb);
    CHECK_STR(sb.data, "x=9;");
    rv_strbuf_free(&sb);
    rv_conf_destroy(c);
}

static void test_config_table(void) {
    /* Every default parses, names are unique and the reference doc is current. */
    size_t n = rv_conf_property_count();
    CHECK(n > 0);
    rv_conf_t *c = rv_conf_new();
    for (size_t i = 0; i < n; i++) {
        const rv_conf_property_t *p = rv_conf_property(i);
        rv_error_t *err = NULL;
        CHECK_MSG(rv_conf_set(c, p->name, p->default_value, &err) == RV_OK,
                  "default of %s: %s", p->name, rv_error_message(err));
        rv_error_destroy(err);
        CHECK(p->description && strlen(p->description) > 10);
        CHECK(rv_conf_property_find(p->name) == p);
        for (size_t j = i + 1; j < n; j++) {
            CHECK(strcmp(p->name, rv_conf_property(j)->name) != 0);
        }
    }
    CHECK(rv_conf_property(n) == NULL);
    rv_conf_destroy(c);

    rv_strbuf_t sb = RV_STRBUF_INIT;
    CHECK_INT(rv_conf_describe_markdown(&sb), RV_OK);
    FILE *f = fopen(RV_SOURCE_DIR "/docs/configuration.md", "rb");
    CHECK_MSG(f != NULL, "docs/configuration.md is missing: run `make docs`");
    if (f) {
        char *doc = calloc(1, sb.len + 2);
        size_t got = fread(doc, 1, sb.len + 1, f);
        fclose(f);
        CHECK_MSG(got == sb.len && memcmp(doc, sb.data, sb.len) == 0,
                  "docs/configuration.md is stale: run `make docs`");
        free(doc);
    }
    rv_strbuf_free(&sb);
}

static void test_config_units(void) {
    /* The value parser on synthetic rows of each type, independent of the table's contents. */
    rv_conf_property_t bytes = {"x.bytes", RV_CONF_BYTES, "0", 0, INT64_MAX, NULL, "t", "d"};
    rv_conf_property_t dur = {"x.ms", RV_CONF_DURATION, "0", -1, INT64_MAX, NULL, "t", "d"};
    rv_conf_property_t flag = {"x.flag", RV_CONF_BOOL, "false", 0, 1, NULL, "t", "d"};
    rv_conf_property_t num = {"x.ratio", RV_CONF_DOUBLE, "0.5", 0, 1, NULL, "t", "d"};
    struct {
        const rv_conf_property_t *p;
        const char *text;
        rv_err_t want;
        int64_t i;
    } cases[] = {
        {&bytes, "1048576", RV_OK, 1048576},   {&bytes, "1MiB", RV_OK, 1048576},
        {&bytes, "16 KiB", RV_OK, 16384},      {&bytes, "2G", RV_OK, 2000000000},
        {&bytes, "3gib", RV_OK, INT64_C(3221225472)},
        {&bytes, "12 parsecs", RV_ERR_CONFIG, 0},
        {&bytes, "-5", RV_ERR_RANGE, 0},       {&bytes, "9999999999TiB", RV_ERR_CONFIG, 0},
        {&dur, "250", RV_OK, 250},             {&dur, "250ms", RV_OK, 250},
        {&dur, "30s", RV_OK, 30000},           {&dur, "5m", RV_OK, 300000},
        {&dur, "2h", RV_OK, 7200000},          {&dur, "7d", RV_OK, 604800000},
        {&dur, "-1", RV_OK, -1},               {&dur, "-2", RV_ERR_RANGE, 0},
        {&dur, "soon", RV_ERR_CONFIG, 0},      {&flag, "yes", RV_OK, 1},
        {&flag, "OFF", RV_OK, 0},              {&flag, "maybe", RV_ERR_CONFIG, 0},
        {&num, "0.25", RV_OK, 0},              {&num, "1.5", RV_ERR_RANGE, 0},
        {&num, "nan", RV_ERR_CONFIG, 0},
    };
    for (size_t k = 0; k < RV_ARRAY_LEN(cases); k++) {
        int64_t i = -99;
        double d = 0;
        rv_error_t *err = NULL;
        rv_err_t e = rv__conf_parse(cases[k].p, cases[k].text, &i, &d, &err);
        CHECK_MSG(e == cases[k].want, "%s=%s gave %s (%s)", cases[k].p->name, cases[k].text,
                  rv_err_name(e), rv_error_message(err));
        if (e == RV_OK) {
            CHECK_MSG(cases[k].p == &num || i == cases[k].i, "%s=%s gave %lld",
                      cases[k].p->name, cases[k].text, (long long)i);
        } else {
            CHECK(strstr(rv_error_message(err), cases[k].p->name) != NULL);
        }
        rv_error_destroy(err);
    }
}

static void test_clock(void) {
    int64_t a = rv_clock_mono_ns();
    rv_clock_sleep_ms(20);
    int64_t b = rv_clock_mono_ns();
    CHECK(b - a >= 20 * 1000000);
    CHECK(rv_clock_mono_ms() >= b / 1000000);
    /* Wall clock after 2025-01-01 and within a second of the ms reading. */
    CHECK(rv_clock_wall_ms() > INT64_C(1735689600000));
    CHECK(rv_clock_wall_ns() / 1000000 - rv_clock_wall_ms() <= 1000);
}

typedef struct captured {
    int count;
    rv_log_level_t level;
    char line[256];
} captured_t;

static void capture(void *opaque, rv_log_level_t level, const char *subsystem, const char *msg) {
    captured_t *c = opaque;
    c->count++;
    c->level = level;
    snprintf(c->line, sizeof c->line, "%s: %s", subsystem, msg);
}

static void test_log(void) {
    captured_t cap = {0};
    rv_logger_t logger = {capture, &cap, RV_LOG_NOTICE};
    rv__log(&logger, RV_LOG_WARNING, "log", "truncated %d bytes of %s", 17, "00000.seg");
    CHECK_INT(cap.count, 1);
    CHECK_INT(cap.level, RV_LOG_WARNING);
    CHECK_STR(cap.line, "log: truncated 17 bytes of 00000.seg");
    rv__log(&logger, RV_LOG_DEBUG, "log", "dropped by level");
    CHECK_INT(cap.count, 1);
    rv_logger_t none = {0};
    rv__log(&none, RV_LOG_ERROR, "log", "nobody listens");
    rv__log(NULL, RV_LOG_ERROR, "log", "nobody listens");
    CHECK_STR(rv_log_level_name(RV_LOG_INFO), "info");
}

int main(void) {
    RV_RUN(test_error_codes);
    RV_RUN(test_quote);
    RV_RUN(test_arena);
    RV_RUN(test_strbuf);
    RV_RUN(test_crc32c_vectors);
    RV_RUN(test_crc32c_paths_agree);
    RV_RUN(test_murmur2);
    RV_RUN(test_config_values);
    RV_RUN(test_config_passthrough_order);
    RV_RUN(test_config_table);
    RV_RUN(test_config_units);
    RV_RUN(test_clock);
    RV_RUN(test_log);
    return rv_test_finish();
}
