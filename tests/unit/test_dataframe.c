/*
 * test_dataframe.c: the dataframe operators and the application API, on memory: brokers.
 *
 * Building: every bad argument makes the operator return NULL and rv_app_run() return the first
 * such error, naming the operator. Running: field get/set/select/drop, the comparisons of
 * filter_field (numbers by value, kinds never mixing, missing fields as null), tombstones and
 * keys, the messages of failing operators (through the on_error callback under the skip
 * policy), print's output, and the run options (count, timeout, rv_app_stop()). Many cases share
 * one run: each case is a branch that only its own records (field "case") pass.
 */
/* ctest-labels: threads */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rivulet/rivulet.h"
#include "rv_test.h"

static int g_seq;

static rv_app_t *app_new(const char *policy, void (*on_error)(void *, rv_err_t, const char *),
                         void *error_opaque) {
    rv_conf_t *conf = rv_conf_new();
    rv_conf_set(conf, "auto.offset.reset", "earliest", NULL);
    rv_conf_set(conf, "commit.interval.ms", "100", NULL);
    if (policy) {
        CHECK_INT(rv_conf_set(conf, "processing.error.policy", policy, NULL), RV_OK);
    }
    char group[32];
    snprintf(group, sizeof group, "df-%d", ++g_seq);
    rv_app_opts_t o = {.broker_url = "memory:",
                       .group = group,
                       .conf = conf,
                       .on_error = on_error,
                       .error_opaque = error_opaque};
    rv_error_t *err = NULL;
    rv_app_t *app = rv_app_new(&o, &err);
    CHECK_MSG(app != NULL, "rv_app_new: %s", rv_error_message(err));
    rv_error_destroy(err);
    rv_conf_destroy(conf);
    return app;
}

/* Creates topic "in" and writes `n` JSON values to it (keys "k0", "k1", ...; NULL values are
 * tombstones), returning the declared topic. */
static rv_topic_t *input(rv_app_t *app, const char *const *values, size_t n) {
    rv_broker_t *b = rv_app_broker(app);
    CHECK_INT(rv_broker_create_topic(b, "in", 1, NULL, NULL), RV_OK);
    rv_producer_t *p = rv_producer_new(b, NULL, NULL);
    for (size_t i = 0; p && i < n; i++) {
        char k[32];
        snprintf(k, sizeof k, "k%zu", i);
        rv_record_t r = {.topic = "in",
                         .partition = 0,
                         .key = k,
                         .key_len = strlen(k),
                         .value = values[i],
                         .value_len = values[i] ? strlen(values[i]) : 0};
        CHECK_INT(rv_producer_send(p, &r, NULL), RV_OK);
    }
    CHECK_INT(rv_producer_flush(p, 5000, NULL), RV_OK);
    rv_producer_close(p);
    rv_topic_opts_t o = {.key_serde = "string"};
    return rv_app_topic(app, "in", &o, NULL);
}

static rv_err_t run_end(rv_app_t *app, rv_error_t **err) {
    rv_run_opts_t ro = {.until_end = true, .timeout_ms = 10000};
    return rv_app_run(app, &ro, err);
}

/* A sink keeping what reaches it as JSON text. */
typedef struct out_s {
    char *v[64];
    size_t n;
} out_t;

static rv_err_t collect(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)ctx;
    out_t *o = opaque;
    rv_strbuf_t sb = RV_STRBUF_INIT;
    rv_json_write(&sb, v, RV_JSON_COMPACT, NULL);
    if (o->n < 64) {
        o->v[o->n++] = sb.data ? sb.data : strdup("");
    } else {
        rv_strbuf_free(&sb);
    }
    return RV_OK;
}

static void out_free(out_t *o) {
    for (size_t i = 0; i < o->n; i++) {
        free(o->v[i]);
    }
    o->n = 0;
}

static rv_value_t *never(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)ctx;
    (void)v;
    (void)opaque;
    return NULL;
}

/* ---- building ----------------------------------------------------------------------------- */

static rv_err_t dummy_write(void *sink, rv_ctx_t *ctx, const rv_value_t *v) {
    (void)sink;
    (void)ctx;
    (void)v;
    return RV_OK;
}

/* Runs the app and expects the building error `needle`. */
static void expect_build_error(rv_app_t *app, const char *needle) {
    rv_error_t *err = NULL;
    CHECK_INT(rv_app_run(app, NULL, &err), RV_ERR_INVALID_ARG);
    CHECK_MSG(strstr(rv_error_message(err), needle) != NULL, "message \"%s\" lacks \"%s\"",
              rv_error_message(err), needle);
    rv_error_destroy(err);
    rv_app_destroy(app);
}

static void test_build_errors(void) {
    struct {
        int which;
        const char *needle;
    } cases[] = {
        {0, "apply: the function is NULL"},
        {1, "get_field: the field path is empty"},
        {2, "get_field: field path 'a..b' has an empty name"},
        {3, "select: field name 1 is NULL"},
        {4, "group_by: 'g': give either a field path or a key function, not neither"},
        {5, "group_by: 'g': give either a field path or a key function, not both"},
        {6, "group_by: the name 'g' is already used by operator #2"},
        {7, "filter_field: unknown comparison 99"},
        {8, "print: unknown flags 0x10"},
        {9, "sink_obj: the sink ops are NULL"},
        {10, "sink_obj: the sink ops have version 2"},
        {11, "to_topic: the topic is NULL"},
        {12, "concat: dataframe 1 belongs to another application"},
        {13, "rv_app_dataframe: the source topic belongs to another application"},
        {14, "set_field: the function is NULL"},
        {15, "operator #2 to_topic('x'): the topic belongs to another application"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rv_app_t *app = app_new(NULL, NULL, NULL);
        REQUIRE(app);
        rv_df_t *df = rv_app_dataframe(app, rv_app_topic(app, "in", NULL, NULL));
        REQUIRE(df);
        rv_df_t *r = df;
        const char *fields[] = {"a", NULL};
        rv_sink_ops_t v2 = {.version = 2, .write = NULL};
        rv_app_t *other = NULL;
        switch (cases[i].which) {
            case 0:
                r = rv_df_apply(df, NULL, NULL);
                break;
            case 1:
                r = rv_df_get_field(df, "");
                break;
            case 2:
                r = rv_df_get_field(df, "a..b");
                break;
            case 3:
                r = rv_df_select(df, fields, 2);
                break;
            case 4:
                r = rv_df_group_by(df, "g", NULL, NULL, NULL);
                break;
            case 5:
                r = rv_df_group_by(df, "g", "a", never, NULL);
                break;
            case 6:
                CHECK(rv_df_group_by(df, "g", "a", NULL, NULL) != NULL);
                r = rv_df_group_by(df, "g", "b", NULL, NULL);
                break;
            case 7:
                r = rv_df_filter_field(df, "a", (rv_cmp_t)99, NULL);
                break;
            case 8:
                r = rv_df_print(df, 0x10);
                break;
            case 9:
                r = rv_df_sink_obj(df, NULL, NULL);
                break;
            case 10:
                v2.write = dummy_write;
                r = rv_df_sink_obj(df, &v2, NULL);
                break;
            case 11:
                r = rv_df_to_topic(df, NULL);
                break;
            case 12: {
                other = app_new(NULL, NULL, NULL);
                rv_df_t *two[] = {df,
                                  rv_app_dataframe(other, rv_app_topic(other, "x", NULL, NULL))};
                r = rv_df_concat(two, 2);
                break;
            }
            case 13:
                other = app_new(NULL, NULL, NULL);
                r = rv_app_dataframe(app, rv_app_topic(other, "x", NULL, NULL));
                break;
            case 14:
                r = rv_df_set_field(df, "a", NULL, NULL);
                break;
            case 15:
                other = app_new(NULL, NULL, NULL);
                CHECK(rv_df_to_topic(df, rv_app_topic(other, "x", NULL, NULL)) != NULL);
                r = NULL; /* found when the run starts */
                break;
        }
        CHECK_MSG(r == NULL, "case %d built", cases[i].which);
        /* Operators given a NULL dataframe return NULL, so a chain is checked once at its end. */
        CHECK(rv_df_print(rv_df_apply(r, NULL, NULL), 0) == NULL);
        expect_build_error(app, cases[i].needle);
        rv_app_destroy(other);
    }
    /* A run needs a dataframe. */
    rv_app_t *app = app_new(NULL, NULL, NULL);
    rv_error_t *err = NULL;
    CHECK_INT(rv_app_run(app, NULL, &err), RV_ERR_STATE);
    CHECK(strstr(rv_error_message(err), "no dataframe") != NULL);
    rv_error_destroy(err);
    rv_app_destroy(app);
}

static void test_app_and_topics(void) {
    rv_error_t *err = NULL;
    rv_app_opts_t o = {.broker_url = "memory:"};
    CHECK(rv_app_new(&o, &err) == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_INVALID_ARG);
    CHECK(strstr(rv_error_message(err), "group") != NULL);
    CHECK(rv_app_new(NULL, &err) == NULL);

    rv_conf_t *conf = rv_conf_new();
    CHECK_INT(rv_conf_set(conf, "processing.guarantee", "exactly-once", NULL), RV_OK);
    o = (rv_app_opts_t){.broker_url = "memory:", .group = "g", .conf = conf};
    CHECK(rv_app_new(&o, &err) == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_UNSUPPORTED);
    CHECK(strstr(rv_error_message(err), "exactly-once") != NULL);
    rv_conf_destroy(conf);

    conf = rv_conf_new();
    CHECK_INT(rv_conf_set(conf, "processing.error.policy", "dead-letter", NULL), RV_OK);
    CHECK_INT(rv_conf_set(conf, "dead.letter.topic", "no spaces", NULL), RV_OK);
    o.conf = conf;
    CHECK(rv_app_new(&o, &err) == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_INVALID_ARG);
    CHECK(strstr(rv_error_message(err), "dead.letter.topic") != NULL);
    rv_conf_destroy(conf);

    o = (rv_app_opts_t){.broker_url = "nope:", .group = "g"};
    CHECK(rv_app_new(&o, &err) == NULL);
    CHECK(strstr(rv_error_message(err), "nope:") != NULL);

    rv_app_t *app = app_new(NULL, NULL, NULL);
    REQUIRE(app);
    CHECK(rv_app_broker(app) != NULL);
    rv_topic_opts_t bad = {.value_serde = "yaml"};
    CHECK(rv_app_topic(app, "t", &bad, &err) == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_CONFIG);
    CHECK_MSG(strstr(rv_error_message(err), "'yaml'") &&
                  strstr(rv_error_message(err), "bytes, string, int"),
              "message: %s", rv_error_message(err));
    CHECK(rv_app_topic(app, "bad name!", NULL, &err) == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_INVALID_ARG);
    rv_topic_opts_t s = {.key_serde = "string", .partitions = 2};
    rv_topic_t *t = rv_app_topic(app, "t", &s, &err);
    REQUIRE(t);
    CHECK_STR(rv_topic_name(t), "t");
    CHECK(rv_app_topic(app, "t", NULL, NULL) == t);
    CHECK(rv_app_topic(app, "t", &s, NULL) == t);
    rv_topic_opts_t other = {.key_serde = "int"};
    CHECK(rv_app_topic(app, "t", &other, &err) == NULL);
    CHECK_INT(rv_error_code(err), RV_ERR_CONFIG);
    CHECK(strstr(rv_error_message(err), "declared again") != NULL);
    rv_error_destroy(err);
    rv_app_metrics_t m;
    rv_app_metrics(app, &m);
    CHECK_INT(m.records_in, 0);
    rv_app_destroy(app);
    rv_app_destroy(NULL);
    rv_app_stop(NULL);
}

/* ---- running ------------------------------------------------------------------------------ */

static void test_fields(void) {
    rv_app_t *app = app_new(NULL, NULL, NULL);
    REQUIRE(app);
    const char *values[] = {"{\"a\":{\"b\":5},\"c\":3,\"d\":[1]}", "{\"x\":null,\"c\":1}", "{}"};
    rv_topic_t *in = input(app, values, 3);
    rv_arena_t *a = rv_arena_new(0);
    out_t got[5] = {0};
    const char *sel[] = {"c", "a"};
    const char *drop[] = {"c", "zz"};
    rv_df_t *df = rv_app_dataframe(app, in);
    rv_df_sink(rv_df_get_field(df, "a.b"), collect, &got[0]);
    rv_value_t *k = rv_value_new_object(a, 1);
    rv_value_set(a, k, "k", 1, rv_value_new_int(a, 1));
    rv_df_sink(rv_df_set_field_const(df, "x.y", k), collect, &got[1]);
    rv_df_sink(rv_df_select(df, sel, 2), collect, &got[2]);
    rv_df_sink(rv_df_drop(df, drop, 2), collect, &got[3]);
    /* The constant is copied per record: changing it downstream changes no other record. */
    rv_df_t *chg = rv_df_set_field_const(rv_df_set_field_const(df, "x", k), "x.k",
                                         rv_value_new_string(a, "changed", 7));
    rv_df_sink(rv_df_get_field(rv_df_set_field_const(chg, "y", k), "y"), collect, &got[4]);
    rv_arena_destroy(a);
    rv_error_t *err = NULL;
    CHECK_MSG(run_end(app, &err) == RV_OK, "run: %s", rv_error_message(err));
    rv_error_destroy(err);
    const char *want[5][3] = {
        {"5", "null", "null"},
        {"{\"a\":{\"b\":5},\"c\":3,\"d\":[1],\"x\":{\"y\":{\"k\":1}}}",
         "{\"x\":{\"y\":{\"k\":1}},\"c\":1}", "{\"x\":{\"y\":{\"k\":1}}}"},
        {"{\"c\":3,\"a\":{\"b\":5}}", "{\"c\":1}", "{}"},
        {"{\"a\":{\"b\":5},\"d\":[1]}", "{\"x\":null}", "{}"},
        {"{\"k\":1}", "{\"k\":1}", "{\"k\":1}"},
    };
    for (int i = 0; i < 5; i++) {
        CHECK_INT(got[i].n, 3);
        for (size_t j = 0; j < got[i].n && j < 3; j++) {
            CHECK_STR(got[i].v[j], want[i][j]);
        }
        out_free(&got[i]);
    }
    rv_app_destroy(app);
}

static void test_filter_field(void) {
    struct {
        const char *field; /* JSON of "v", or NULL for a missing field */
        rv_cmp_t cmp;
        const char *constant;
        bool keep;
    } cases[] = {
        {"1", RV_CMP_EQ, "1.0", true},
        {"1", RV_CMP_NE, "1.0", false},
        {"2", RV_CMP_GT, "1.5", true},
        {"9007199254740993", RV_CMP_GT, "9007199254740992.0", true},
        {"-3.5", RV_CMP_LT, "-3", true},
        {"-3.0", RV_CMP_LE, "-3", true},
        {"\"b\"", RV_CMP_LT, "\"c\"", true},
        {"\"b\"", RV_CMP_GE, "\"ba\"", false},
        {"\"1\"", RV_CMP_EQ, "1", false},
        {"\"1\"", RV_CMP_NE, "1", true},
        {"\"1\"", RV_CMP_LT, "2", false},
        {"\"1\"", RV_CMP_GT, "0", false},
        {"true", RV_CMP_EQ, "true", true},
        {"[1,2]", RV_CMP_EQ, "[1,2]", true},
        {"[1,2]", RV_CMP_LT, "[1,3]", false},
        {NULL, RV_CMP_EQ, "null", true},
        {NULL, RV_CMP_MISSING, NULL, true},
        {"null", RV_CMP_MISSING, NULL, true},
        {"0", RV_CMP_MISSING, NULL, false},
        {"0", RV_CMP_EXISTS, NULL, true},
        {NULL, RV_CMP_EXISTS, NULL, false},
        {"null", RV_CMP_EXISTS, NULL, false},
    };
    size_t n = sizeof cases / sizeof cases[0];
    rv_app_t *app = app_new(NULL, NULL, NULL);
    REQUIRE(app);
    char *values[32];
    for (size_t i = 0; i < n; i++) {
        values[i] = malloc(128);
        if (cases[i].field) {
            snprintf(values[i], 128, "{\"case\":%zu,\"v\":%s}", i, cases[i].field);
        } else {
            snprintf(values[i], 128, "{\"case\":%zu}", i);
        }
    }
    rv_topic_t *in = input(app, (const char *const *)values, n);
    rv_arena_t *a = rv_arena_new(0);
    out_t got[32] = {0};
    rv_df_t *df = rv_app_dataframe(app, in);
    for (size_t i = 0; i < n; i++) {
        rv_value_t *c = NULL;
        if (cases[i].constant) {
            CHECK_INT(rv_json_parse(a, cases[i].constant, strlen(cases[i].constant), NULL, &c, NULL,
                                    NULL),
                      RV_OK);
        }
        rv_df_t *d = rv_df_filter_field(df, "case", RV_CMP_EQ, rv_value_new_int(a, (int64_t)i));
        rv_df_sink(rv_df_filter_field(d, "v", cases[i].cmp, c), collect, &got[i]);
    }
    rv_arena_destroy(a);
    CHECK_INT(run_end(app, NULL), RV_OK);
    rv_app_metrics_t m;
    rv_app_metrics(app, &m);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK_MSG(got[i].n == (cases[i].keep ? 1u : 0u), "case %zu: v=%s cmp %d %s: kept %zu", i,
                  cases[i].field ? cases[i].field : "(missing)", (int)cases[i].cmp,
                  cases[i].constant ? cases[i].constant : "", got[i].n);
        kept += got[i].n;
        out_free(&got[i]);
        free(values[i]);
    }
    CHECK_INT(m.records_sunk, (int64_t)kept);
    /* Each record is dropped by n - 1 case filters, and by its own comparison unless kept. */
    CHECK_INT(m.records_filtered, (int64_t)(n * (n - 1) + (n - kept)));
    rv_app_destroy(app);
}

/* Collects the messages of failed records. */
typedef struct errs_s {
    char *msg[16];
    rv_err_t code[16];
    int n;
} errs_t;

static void on_error(void *opaque, rv_err_t code, const char *message) {
    errs_t *e = opaque;
    if (e->n < 16) {
        e->code[e->n] = code;
        e->msg[e->n++] = strdup(message);
    }
}

static rv_value_t *a_string(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)v;
    (void)opaque;
    return rv_value_new_string(rv_ctx_arena(ctx), "oops", 4);
}

static rv_value_t *an_int(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)v;
    (void)opaque;
    return rv_value_new_int(rv_ctx_arena(ctx), 7);
}

static rv_value_t *bad_headers(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)v;
    (void)opaque;
    rv_arena_t *a = rv_ctx_arena(ctx);
    rv_value_t *o = rv_value_new_object(a, 1);
    rv_value_set(a, o, "h", 1, rv_value_new_int(a, 1));
    return o;
}

static rv_value_t *expand_not_array(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)opaque;
    (void)ctx;
    return v;
}

static rv_err_t failing_sink(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    (void)ctx;
    (void)v;
    (void)opaque;
    return RV_ERR_IO;
}

static rv_value_t *no_reason(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)ctx;
    (void)v;
    (void)opaque;
    return NULL;
}

static void test_failures(void) {
    errs_t errs = {0};
    rv_app_t *app = app_new("skip", on_error, &errs);
    REQUIRE(app);
    const char *values[] = {"{\"case\":0}", "{\"case\":1}",         "{\"case\":2}", "{\"case\":3}",
                            "{\"case\":4}", "{\"case\":5,\"v\":3}", "{\"case\":6}", "{\"case\":7}",
                            "[1]",          "{\"case\":9}"};
    rv_topic_t *in = input(app, values, 10);
    rv_arena_t *a = rv_arena_new(0);
    rv_df_t *df = rv_app_dataframe(app, in);
    rv_df_t *c[10];
    for (int i = 0; i < 10; i++) {
        c[i] = rv_df_filter_field(df, "case", RV_CMP_EQ, rv_value_new_int(a, i));
    }
    rv_arena_destroy(a);
    rv_df_expand(c[0], expand_not_array, NULL);
    rv_df_set_headers(c[1], a_string, NULL);
    rv_df_set_headers(c[2], bad_headers, NULL);
    rv_df_set_timestamp(c[3], a_string, NULL);
    rv_df_to_topic_fn(c[4], an_int, NULL, NULL);
    rv_df_set_field(c[5], "v.w", an_int, NULL);
    rv_df_sink(c[6], failing_sink, NULL);
    rv_df_apply(c[7], no_reason, NULL);
    const char *sel[] = {"x"};
    rv_df_select(df, sel, 1);                      /* every record: "[1]" is not an object */
    rv_df_to_topic_fn(c[9], a_string, NULL, NULL); /* "oops" is a fine topic: created */
    rv_error_t *err = NULL;
    CHECK_MSG(run_end(app, &err) == RV_OK, "run: %s", rv_error_message(err));
    rv_error_destroy(err);
    const char *want[] = {
        "topic 'in' partition 0 offset 0 key 'k0': operator #12 expand: the function returned "
        "object, not an array",
        "offset 1 key 'k1': operator #13 set_headers: the function returned string, not an "
        "object of headers or null",
        "offset 2 key 'k2': operator #14 set_headers: header 'h' is int; header values are "
        "strings or bytes",
        "offset 3 key 'k3': operator #15 set_timestamp: the function returned string, not a "
        "timestamp in ms (an int)",
        "offset 4 key 'k4': operator #16 to_topic_fn: the function returned int, not a topic "
        "name (a string)",
        "offset 5 key 'k5': operator #17 set_field('v.w'): 'v' is int, not an object",
        "offset 6 key 'k6': operator #18 sink: failed with IO (input/output error)",
        "offset 7 key 'k7': operator #19 apply: the function returned NULL without saying why "
        "(see rv_ctx_fail())",
        "offset 8 key 'k8': operator #20 select('x'): the value is array, not an object",
    };
    CHECK_INT(errs.n, 9);
    for (int i = 0; i < errs.n && i < 9; i++) {
        CHECK_MSG(strstr(errs.msg[i], want[i]) != NULL, "error %d: \"%s\" lacks \"%s\"", i,
                  errs.msg[i], want[i]);
    }
    CHECK_INT(errs.code[6], RV_ERR_IO);
    CHECK_INT(errs.code[7], RV_ERR_USER);
    rv_app_metrics_t m;
    rv_app_metrics(app, &m);
    CHECK_INT(m.errors, 9);
    CHECK_INT(m.skipped, 9);
    CHECK_INT(m.records_out, 1);
    int32_t parts = 0;
    CHECK_INT(rv_broker_describe_topic(rv_app_broker(app), "oops", &parts, NULL, NULL), RV_OK);
    for (int i = 0; i < errs.n; i++) {
        free(errs.msg[i]);
    }
    rv_app_destroy(app);
}

static rv_err_t tombstone_sink(rv_ctx_t *ctx, const rv_value_t *v, void *opaque) {
    int *seen = opaque;
    if (rv_value_type(v) == RV_TYPE_NULL && rv_ctx_key(ctx) &&
        rv_value_type(rv_ctx_key(ctx)) == RV_TYPE_STRING) {
        (*seen)++;
    }
    return RV_OK;
}

static rv_value_t *empty_array(rv_ctx_t *ctx, rv_value_t *v, void *opaque) {
    (void)v;
    (void)opaque;
    return rv_value_new_array(rv_ctx_arena(ctx), 0);
}

static void test_tombstones_and_expand(void) {
    rv_app_t *app = app_new(NULL, NULL, NULL);
    REQUIRE(app);
    const char *values[] = {NULL, "1", NULL};
    rv_topic_t *in = input(app, values, 3);
    int seen = 0;
    out_t got = {0};
    rv_df_t *df = rv_app_dataframe(app, in);
    rv_df_sink(df, tombstone_sink, &seen);
    rv_df_sink(rv_df_expand(df, empty_array, NULL), collect, &got);
    CHECK_INT(run_end(app, NULL), RV_OK);
    CHECK_INT(seen, 2);
    CHECK_INT(got.n, 0);
    rv_app_destroy(app);
}

static void test_print(void) {
    rv_app_t *app = app_new(NULL, NULL, NULL);
    REQUIRE(app);
    const char *values[] = {"{\"a\":1}", "[true]"};
    rv_topic_t *in = input(app, values, 2);
    rv_df_t *df = rv_app_dataframe(app, in);
    rv_df_print(df, RV_PRINT_VALUE);
    rv_df_print(df, RV_PRINT_METADATA);
    rv_df_print(rv_df_get_field(df, "a"), RV_PRINT_PRETTY);
    char path[] = "/tmp/rv-print-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    rv_err_t e = run_end(app, NULL);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    CHECK_INT(e, RV_OK);
    char buf[1024] = {0};
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    unlink(path);
    CHECK(n > 0);
    const char *want = "{\"a\":1}\n"
                       "{\"topic\":\"in\",\"partition\":0,\"offset\":0,\"timestamp\":";
    CHECK_MSG(strncmp(buf, want, strlen(want)) == 0, "printed:\n%s", buf);
    CHECK_MSG(strstr(buf, ",\"key\":\"k0\",\"value\":{\"a\":1}}\n1\n[true]\n") != NULL,
              "printed:\n%s", buf);
    CHECK_MSG(strstr(buf, ",\"key\":\"k1\",\"value\":[true]}\nnull\n") != NULL, "printed:\n%s",
              buf);
    rv_app_destroy(app);
}

static void *stop_later(void *app) {
    usleep(200 * 1000);
    rv_app_stop(app);
    return NULL;
}

static void test_run_options(void) {
    rv_app_t *app = app_new(NULL, NULL, NULL);
    REQUIRE(app);
    const char *values[20];
    for (int i = 0; i < 20; i++) {
        values[i] = "{}";
    }
    rv_topic_t *in = input(app, values, 20);
    out_t got = {0};
    rv_df_sink(rv_app_dataframe(app, in), collect, &got);
    /* count: exactly that many, committed. */
    rv_run_opts_t ro = {.count = 5, .timeout_ms = 10000};
    CHECK_INT(rv_app_run(app, &ro, NULL), RV_OK);
    CHECK_INT(got.n, 5);
    rv_app_metrics_t m;
    rv_app_metrics(app, &m);
    CHECK_INT(m.records_in, 5);
    /* timeout: the rest, then the run stops by itself. */
    ro = (rv_run_opts_t){.timeout_ms = 300};
    int64_t t0 = rv_clock_mono_ms();
    CHECK_INT(rv_app_run(app, &ro, NULL), RV_OK);
    int64_t ms = rv_clock_mono_ms() - t0;
    CHECK_MSG(ms >= 290 && ms < 3000, "%lld ms", (long long)ms);
    CHECK_INT(got.n, 20);
    /* rv_app_stop() from another thread. */
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, stop_later, app) == 0);
    t0 = rv_clock_mono_ms();
    CHECK_INT(rv_app_run(app, NULL, NULL), RV_OK);
    ms = rv_clock_mono_ms() - t0;
    pthread_join(th, NULL);
    CHECK_MSG(ms >= 150 && ms < 3000, "%lld ms", (long long)ms);
    CHECK_INT(got.n, 20); /* nothing read twice */
    rv_app_metrics(app, &m);
    CHECK_INT(m.records_in, 20);
    CHECK_INT(m.records_sunk, 20);
    out_free(&got);
    rv_app_destroy(app);
}

int main(void) {
    RV_RUN(test_build_errors);
    RV_RUN(test_app_and_topics);
    RV_RUN(test_fields);
    RV_RUN(test_filter_field);
    RV_RUN(test_failures);
    RV_RUN(test_tombstones_and_expand);
    RV_RUN(test_print);
    RV_RUN(test_run_options);
    return rv_test_finish();
}
