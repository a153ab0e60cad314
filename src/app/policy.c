/*
 * policy.c: the processing-error policy: what happens to a record that cannot be decoded or
 * whose operator fails.
 *
 * Every failure is counted and its message names the topic, partition, offset and key of the
 * record and the reason (the operator and what it said). Then, by processing.error.policy:
 * stop makes it the run's error (rv_app_run() returns it; the record stays uncommitted, so the
 * next run meets it again); skip logs it at warning level and counts it; dead-letter sends the
 * ORIGINAL record (its key and value bytes, headers and timestamp) to the dead-letter topic with
 * the error in headers (rv.error.message, rv.error.code, rv.source.topic, rv.source.partition,
 * rv.source.offset), counts and logs it. Nothing is ever dropped without a trace: this file must
 * never return RV_OK for a record it did not skip or dead-letter in the open.
 */
#include <stdio.h>
#include <string.h>

#include "app/app_int.h"

/* The header names the dead-letter policy adds. */
#define H_MESSAGE "rv.error.message"
#define H_CODE "rv.error.code"
#define H_TOPIC "rv.source.topic"
#define H_PARTITION "rv.source.partition"
#define H_OFFSET "rv.source.offset"

/* Sends the original record of `ctx` to the dead-letter topic with the error in headers. */
static rv_err_t dead_letter(rv__worker_t *w, rv_err_t code, const char *msg) {
    rv_ctx_t *ctx = &w->ctx;
    const rv_record_t *rec = ctx->rec;
    size_t n = rec->header_count + 5;
    rv_header_t *h = rv_arena_alloc(w->arena, n * sizeof *h);
    char *num = rv_arena_alloc(w->arena, 48);
    if (!h || !num) {
        return RV_ERR_NOMEM;
    }
    if (rec->header_count) {
        memcpy(h, rec->headers, rec->header_count * sizeof *h);
    }
    int pl = snprintf(num, 24, "%d", (int)rec->partition);
    int ol = snprintf(num + 24, 24, "%lld", (long long)rec->offset);
    const char *cname = rv_err_name(code);
    size_t k = rec->header_count;
    h[k++] = (rv_header_t){H_MESSAGE, msg, strlen(msg)};
    h[k++] = (rv_header_t){H_CODE, cname, strlen(cname)};
    h[k++] = (rv_header_t){H_TOPIC, rec->topic, strlen(rec->topic)};
    h[k++] = (rv_header_t){H_PARTITION, num, (size_t)pl};
    h[k++] = (rv_header_t){H_OFFSET, num + 24, (size_t)ol};
    rv_record_t r = {.topic = w->app->dead_letter->name,
                     .partition = RV_PARTITION_ANY,
                     .timestamp_ms = rec->timestamp_ms,
                     .key = rec->key,
                     .key_len = rec->key_len,
                     .value = rec->value,
                     .value_len = rec->value_len,
                     .headers = h,
                     .header_count = k};
    return rv__worker_send(w, &r);
}

rv_err_t rv__policy_apply(rv__worker_t *w, rv_err_t code, const char *why) {
    rv_app_t *app = w->app;
    const rv_record_t *rec = w->ctx.rec;
    char key[128];
    if (rec->key) {
        rv__quote(key, sizeof key, rec->key, rec->key_len);
    } else {
        snprintf(key, sizeof key, "(none)");
    }
    char msg[1400];
    snprintf(msg, sizeof msg, "topic '%s' partition %d offset %lld key %s: %s", rec->topic,
             (int)rec->partition, (long long)rec->offset, key, why);
    rv__count(&w->counters.errors, 1);
    if (app->on_error) {
        app->on_error(app->error_opaque, code, msg);
    }
    switch (app->policy) {
        case RV__POLICY_SKIP:
            rv__count(&w->counters.skipped, 1);
            rv__log(&app->log, RV_LOG_WARNING, "app", "skipped a record (%s): %s",
                    rv_err_name(code), msg);
            return RV_OK;
        case RV__POLICY_DEAD_LETTER: {
            rv_err_t e = dead_letter(w, code, msg);
            if (e != RV_OK) {
                rv_error_t *err = NULL;
                rv__error_set(&err, e,
                              "application '%s': cannot send a failed record to dead-letter "
                              "topic '%s' (%s); the record: %s",
                              app->group, app->dead_letter->name, rv_err_str(e), msg);
                rv__app_fail(app, err);
                return e;
            }
            rv__count(&w->counters.dead_lettered, 1);
            rv__log(&app->log, RV_LOG_WARNING, "app",
                    "sent a record to dead-letter topic '%s' "
                    "(%s): %s",
                    app->dead_letter->name, rv_err_name(code), msg);
            return RV_OK;
        }
        case RV__POLICY_STOP:
        default: {
            rv_error_t *err = NULL;
            rv__error_set(&err, code, "%s", msg);
            rv__app_fail(app, err);
            return code;
        }
    }
}
