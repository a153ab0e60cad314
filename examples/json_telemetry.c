/*
 * json_telemetry.c: the JSON codec on a telemetry sample.
 *
 * Parses one sample, reads typed fields, derives a new field, drops one, and writes the result
 * back, compact and pretty. Run it with no arguments; it prints what it did and exits 0, or
 * prints the error (with its byte offset, line and column) and exits 1.
 */
#include <rivulet/rivulet.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    const char *sample = "{\"car\":\"44\",\"lap\":12,\"speed_kmh\":287.4531,"
                         "\"ts\":1763900000000000123,\"gear\":7,\"drs\":true,\"debug\":null}";
    rv_arena_t *arena = rv_arena_new(0);
    rv_value_t *doc = NULL;
    rv_error_t *err = NULL;
    if (!arena) {
        return 1;
    }
    if (rv_json_parse(arena, sample, strlen(sample), NULL, &doc, NULL, &err) != RV_OK) {
        fprintf(stderr, "parse failed: %s\n", rv_error_message(err));
        rv_error_destroy(err);
        rv_arena_destroy(arena);
        return 1;
    }

    /* Integers stay exact int64: the nanosecond timestamp survives untouched. */
    int64_t ts = rv_value_int(rv_value_get_cstr(doc, "ts"));
    double kmh = rv_value_double(rv_value_get_cstr(doc, "speed_kmh"));
    printf("car %s lap %lld at ts %lld: %.4f km/h\n",
           rv_value_str(rv_value_get_cstr(doc, "car"), NULL),
           (long long)rv_value_int(rv_value_get_cstr(doc, "lap")), (long long)ts, kmh);

    /* Derive a field and drop one; the members keep their order. */
    rv_value_set(arena, doc, "speed_ms", 8, rv_value_new_double(arena, kmh / 3.6));
    rv_value_remove(doc, "debug", 5);

    rv_strbuf_t out = RV_STRBUF_INIT;
    int status = 0;
    if (rv_json_write(&out, doc, RV_JSON_COMPACT, &err) != RV_OK) {
        fprintf(stderr, "write failed: %s\n", rv_error_message(err));
        rv_error_destroy(err);
        status = 1;
    } else {
        printf("compact: %s\n", out.data);
        rv_strbuf_clear(&out);
        rv_json_write(&out, doc, RV_JSON_PRETTY, NULL);
        printf("pretty:\n%s\n", out.data);
    }

    /* A malformed document is rejected with a position. */
    const char *bad = "{\"car\":\"44\",\n \"speed\": 287.4.5}";
    rv_value_t *ignored = NULL;
    size_t offset = 0;
    if (rv_json_parse(arena, bad, strlen(bad), NULL, &ignored, &offset, &err) == RV_OK) {
        fprintf(stderr, "a malformed document was accepted\n");
        status = 1;
    } else {
        printf("rejected as expected at byte %zu: %s\n", offset, rv_error_message(err));
        rv_error_destroy(err);
    }

    rv_strbuf_free(&out);
    rv_arena_destroy(arena);
    return status;
}
