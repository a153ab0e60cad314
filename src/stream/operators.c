/*
 * operators.c: running one record through the dataframe graph.
 *
 * rv__df_run() walks the graph from a topic's roots: each operator transforms, keeps or drops
 * the value, and hands it on to its children in the order they were added. A chain of single
 * children is walked in a loop; only branches recurse. When a node branches, every child but
 * the last gets its own deep copy of the value if something below it may change values in place
 * (so branches never see each other's changes), and the record's timestamp and headers are put
 * back after each branch. Everything a record allocates comes from the batch arena in the
 * context. Producing goes through the host (the runtime). A failing operator stops the record
 * at once and names itself in ctx->fail_node; the error policy is the runtime's business, never
 * this file's. It must never allocate on the heap per record or keep pointers into a record.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rivulet/json.h"
#include "state/state_int.h"
#include "stream/stream_int.h"

static rv_err_t run_node(rv_ctx_t *ctx, rv_df_t *node, rv_value_t *value);

/* Fails the record in `node` with `code`, and the reason when `fmt` is not NULL. */
static rv_err_t op_fail(rv_ctx_t *ctx, const rv_df_t *node, rv_err_t code, const char *fmt, ...)
    RV_PRINTF(4, 5);
static rv_err_t op_fail(rv_ctx_t *ctx, const rv_df_t *node, rv_err_t code, const char *fmt, ...) {
    if (!ctx->fail_node) {
        ctx->fail_node = node;
    }
    if (fmt && !ctx->fail_set) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->fail_msg, sizeof ctx->fail_msg, fmt, ap);
        va_end(ap);
        ctx->fail_set = true;
    }
    return code;
}

static rv_err_t nomem(rv_ctx_t *ctx, const rv_df_t *node) {
    return op_fail(ctx, node, RV_ERR_NOMEM, "out of memory in the batch arena");
}

/* ---- fields --------------------------------------------------------------------------------- */

/* The value at `path` in `v`, or NULL when a step is missing or not an object. */
static rv_value_t *path_get(const rv_value_t *v, const rv__path_t *path) {
    rv_value_t *cur = (rv_value_t *)v;
    for (size_t i = 0; i < path->n && cur; i++) {
        if (rv_value_type(cur) != RV_TYPE_OBJECT) {
            return NULL;
        }
        cur = rv_value_get(cur, path->seg[i], path->len[i]);
    }
    return cur;
}

/* Sets `path` in `v` to `x`, creating the objects on the way when missing or null. */
static rv_err_t path_set(rv_ctx_t *ctx, const rv_df_t *node, rv_value_t *v, rv_value_t *x) {
    const rv__path_t *path = &node->path;
    rv_value_t *cur = v;
    for (size_t i = 0;; i++) {
        if (rv_value_type(cur) != RV_TYPE_OBJECT) {
            if (i == 0) {
                return op_fail(ctx, node, RV_ERR_INVALID_ARG, "the value is %s, not an object",
                               rv_type_name(rv_value_type(cur)));
            }
            return op_fail(ctx, node, RV_ERR_INVALID_ARG, "'%.*s' is %s, not an object",
                           (int)(path->seg[i - 1] + path->len[i - 1] - path->text), path->text,
                           rv_type_name(rv_value_type(cur)));
        }
        if (i + 1 == path->n) {
            break;
        }
        rv_value_t *next = rv_value_get(cur, path->seg[i], path->len[i]);
        if (!next || rv_value_type(next) == RV_TYPE_NULL) {
            next = rv_value_new_object(ctx->arena, 4);
            if (!next || rv_value_set(ctx->arena, cur, path->seg[i], path->len[i], next) != RV_OK) {
                return nomem(ctx, node);
            }
        }
        cur = next;
    }
    size_t last = path->n - 1;
    if (rv_value_set(ctx->arena, cur, path->seg[last], path->len[last], x) != RV_OK) {
        return nomem(ctx, node);
    }
    return RV_OK;
}

/* ---- comparisons ---------------------------------------------------------------------------- */

/* -1, 0 or 1 comparing an int with a double exactly; 2 when the double is NaN. */
static int cmp_int_double(int64_t i, double d) {
    if (isnan(d)) {
        return 2;
    }
    if (d >= 9223372036854775808.0) {
        return -1;
    }
    if (d < -9223372036854775808.0) {
        return 1;
    }
    double t = trunc(d);
    int64_t ti = (int64_t)t;
    if (i != ti) {
        return i < ti ? -1 : 1;
    }
    double frac = d - t;
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

/* -1, 0 or 1 ordering two values of comparable kinds, 2 when they are unordered (different
 * kinds, NaN, containers), 3 when they are containers that are equal. */
static int order(const rv_value_t *a, const rv_value_t *b) {
    rv_type_t ta = rv_value_type(a), tb = rv_value_type(b);
    bool na = ta == RV_TYPE_INT || ta == RV_TYPE_DOUBLE;
    bool nb = tb == RV_TYPE_INT || tb == RV_TYPE_DOUBLE;
    if (na && nb) {
        if (ta == RV_TYPE_INT && tb == RV_TYPE_INT) {
            int64_t x = rv_value_int(a), y = rv_value_int(b);
            return x < y ? -1 : x > y;
        }
        if (ta == RV_TYPE_INT) {
            return cmp_int_double(rv_value_int(a), rv_value_double(b));
        }
        if (tb == RV_TYPE_INT) {
            int c = cmp_int_double(rv_value_int(b), rv_value_double(a));
            return c == 2 ? 2 : -c;
        }
        double x = rv_value_double(a), y = rv_value_double(b);
        if (isnan(x) || isnan(y)) {
            return 2;
        }
        return x < y ? -1 : x > y;
    }
    if (ta != tb) {
        return 2;
    }
    switch (ta) {
        case RV_TYPE_NULL:
            return 0;
        case RV_TYPE_BOOL:
            return (int)rv_value_bool(a) - (int)rv_value_bool(b);
        case RV_TYPE_STRING:
        case RV_TYPE_BYTES: {
            size_t la, lb;
            const char *sa = rv_value_str(a, &la), *sb = rv_value_str(b, &lb);
            int c = memcmp(sa, sb, la < lb ? la : lb);
            if (c != 0) {
                return c < 0 ? -1 : 1;
            }
            return la < lb ? -1 : la > lb;
        }
        default:
            return rv_value_equal(a, b) ? 3 : 2;
    }
}

/* Whether field `f` (NULL when missing) passes `cmp` against `c`. */
static bool compare(const rv_value_t *f, rv_cmp_t cmp, const rv_value_t *c) {
    if (cmp == RV_CMP_EXISTS) {
        return f && rv_value_type(f) != RV_TYPE_NULL;
    }
    if (cmp == RV_CMP_MISSING) {
        return !f || rv_value_type(f) == RV_TYPE_NULL;
    }
    int o = order(f, c); /* a missing field reads as null */
    switch (cmp) {
        case RV_CMP_EQ:
            return o == 0 || o == 3;
        case RV_CMP_NE:
            return !(o == 0 || o == 3);
        case RV_CMP_LT:
            return o == -1;
        case RV_CMP_LE:
            return o == -1 || o == 0;
        case RV_CMP_GT:
            return o == 1;
        case RV_CMP_GE:
            return o == 1 || o == 0;
        default:
            return false;
    }
}

/* ---- operators on records ------------------------------------------------------------------- */

static rv_err_t set_headers(rv_ctx_t *ctx, const rv_df_t *node, const rv_value_t *h) {
    rv_type_t t = rv_value_type(h);
    if (t == RV_TYPE_NULL) {
        ctx->headers = NULL;
        ctx->header_count = 0;
        return RV_OK;
    }
    if (t != RV_TYPE_OBJECT) {
        return op_fail(ctx, node, RV_ERR_INVALID_ARG,
                       "the function returned %s, not an object of headers or null",
                       rv_type_name(t));
    }
    size_t n = rv_value_len(h);
    rv_header_t *v = rv_arena_alloc(ctx->arena, (n ? n : 1) * sizeof *v);
    if (!v) {
        return nomem(ctx, node);
    }
    for (size_t i = 0; i < n; i++) {
        const char *name;
        size_t name_len, len;
        const rv_value_t *m = rv_value_member_at(h, i, &name, &name_len);
        rv_type_t mt = rv_value_type(m);
        if (mt != RV_TYPE_STRING && mt != RV_TYPE_BYTES) {
            return op_fail(ctx, node, RV_ERR_INVALID_ARG,
                           "header '%s' is %s; header values are strings or bytes", name,
                           rv_type_name(mt));
        }
        v[i] = (rv_header_t){.name = name, .value = rv_value_str(m, &len)};
        v[i].value_len = len;
    }
    ctx->headers = v;
    ctx->header_count = n;
    return RV_OK;
}

static rv_err_t print_record(rv_ctx_t *ctx, const rv_df_t *node, const rv_value_t *value) {
    const rv_value_t *out = value;
    if (node->flags & RV_PRINT_METADATA) {
        rv_arena_t *a = ctx->arena;
        rv_value_t *o = rv_value_new_object(a, 6);
        const char *t = rv_ctx_topic(ctx);
        rv_value_t *vt = rv_value_new_string_ref(a, t, strlen(t));
        rv_value_t *vp = rv_value_new_int(a, rv_ctx_partition(ctx));
        rv_value_t *vo = rv_value_new_int(a, rv_ctx_offset(ctx));
        rv_value_t *vs = rv_value_new_int(a, ctx->timestamp);
        rv_value_t *vk = ctx->key ? (rv_value_t *)ctx->key : rv_value_new_null(a);
        if (!o || !vt || !vp || !vo || !vs || !vk || rv_value_set(a, o, "topic", 5, vt) != RV_OK ||
            rv_value_set(a, o, "partition", 9, vp) != RV_OK ||
            rv_value_set(a, o, "offset", 6, vo) != RV_OK ||
            rv_value_set(a, o, "timestamp", 9, vs) != RV_OK ||
            rv_value_set(a, o, "key", 3, vk) != RV_OK ||
            rv_value_set(a, o, "value", 5, (rv_value_t *)value) != RV_OK) {
            return nomem(ctx, node);
        }
        out = o;
    }
    rv_strbuf_clear(&ctx->text);
    rv_error_t *err = NULL;
    int flags = (node->flags & RV_PRINT_PRETTY) ? RV_JSON_PRETTY : RV_JSON_COMPACT;
    rv_err_t e = rv_json_write(&ctx->text, out, flags, &err);
    if (e == RV_OK) {
        e = rv_strbuf_append(&ctx->text, "\n", 1);
    }
    if (e != RV_OK) {
        op_fail(ctx, node, e, "%s", err ? rv_error_message(err) : rv_err_str(e));
        rv_error_destroy(err);
        return e;
    }
    pthread_mutex_lock(&node->graph->print_mu);
    size_t w = fwrite(ctx->text.data, 1, ctx->text.len, stdout);
    pthread_mutex_unlock(&node->graph->print_mu);
    ctx->printed = true;
    if (w != ctx->text.len) {
        return op_fail(ctx, node, RV_ERR_IO, "cannot write to stdout");
    }
    return RV_OK;
}

/* ---- the walk ------------------------------------------------------------------------------- */

/* Hands `value` to every child of `node`, copying it for branches that change values. */
static rv_err_t run_children(rv_ctx_t *ctx, rv_df_t *node, rv_value_t *value) {
    size_t n = node->nchildren;
    int64_t ts = ctx->timestamp;
    const rv_header_t *headers = ctx->headers;
    size_t header_count = ctx->header_count;
    for (size_t i = 0; i < n; i++) {
        rv_df_t *child = node->children[i];
        rv_value_t *v = value;
        if (i + 1 < n && child->mutates) {
            v = rv_value_copy(ctx->arena, value);
            if (!v) {
                return nomem(ctx, child);
            }
        }
        rv_err_t e = run_node(ctx, child, v);
        ctx->timestamp = ts;
        ctx->headers = headers;
        ctx->header_count = header_count;
        if (e != RV_OK) {
            return e;
        }
    }
    return RV_OK;
}

/* Runs a stateful apply, update or filter with the key's state handle. Sets *stop when the record
 * goes no further (filtered, or a replay the store already holds). */
static rv_err_t run_state(rv_ctx_t *ctx, rv_df_t *node, rv_value_t **value, bool *stop) {
    bool replay = false;
    rv_state_t *st = NULL;
    rv_err_t e = rv__state_begin(ctx, node->store, &st, &replay);
    if (e != RV_OK) {
        return op_fail(ctx, node, e, NULL);
    }
    if (replay) {
        *stop = true;
        return RV_OK;
    }
    ctx->state = st;
    switch (node->op) {
        case RV__OP_APPLY_STATE: {
            rv_value_t *v = node->fn.apply(ctx, *value, node->opaque);
            if (!v) {
                e = op_fail(ctx, node, RV_ERR_USER, NULL);
            }
            *value = v;
            break;
        }
        case RV__OP_UPDATE_STATE:
            e = node->fn.update(ctx, *value, node->opaque);
            if (e != RV_OK) {
                e = op_fail(ctx, node, e, NULL);
            }
            break;
        default: {
            int keep = node->fn.filter(ctx, *value, node->opaque);
            if (keep < 0) {
                e = op_fail(ctx, node, RV_ERR_USER, NULL);
            } else if (keep == 0) {
                rv__count(&ctx->counters->records_filtered, 1);
                *stop = true;
            }
            break;
        }
    }
    ctx->state = NULL;
    return e;
}

rv_err_t rv__df_emit(rv_ctx_t *ctx, rv_df_t *node, rv_value_t *value) {
    if (node->nchildren == 0) {
        return RV_OK;
    }
    if (node->nchildren == 1) {
        return run_node(ctx, node->children[0], value);
    }
    return run_children(ctx, node, value);
}

static rv_err_t run_node(rv_ctx_t *ctx, rv_df_t *node, rv_value_t *value) {
    for (;;) {
        switch (node->op) {
            case RV__OP_SOURCE:
            case RV__OP_CONCAT:
                break;
            case RV__OP_APPLY_STATE:
            case RV__OP_UPDATE_STATE:
            case RV__OP_FILTER_STATE: {
                bool stop = false;
                rv_err_t e = run_state(ctx, node, &value, &stop);
                if (e != RV_OK || stop) {
                    return e;
                }
                break;
            }
            case RV__OP_CUSTOM: {
                /* The operator emits downstream itself (rv__df_emit()). */
                rv_err_t e = node->ops->run(ctx, node, value);
                return e == RV_OK ? RV_OK : op_fail(ctx, node, e, NULL);
            }
            case RV__OP_APPLY:
                value = node->fn.apply(ctx, value, node->opaque);
                if (!value) {
                    return op_fail(ctx, node, RV_ERR_USER, NULL);
                }
                break;
            case RV__OP_UPDATE: {
                rv_err_t e = node->fn.update(ctx, value, node->opaque);
                if (e != RV_OK) {
                    return op_fail(ctx, node, e, NULL);
                }
                break;
            }
            case RV__OP_FILTER: {
                int keep = node->fn.filter(ctx, value, node->opaque);
                if (keep < 0) {
                    return op_fail(ctx, node, RV_ERR_USER, NULL);
                }
                if (keep == 0) {
                    rv__count(&ctx->counters->records_filtered, 1);
                    return RV_OK;
                }
                break;
            }
            case RV__OP_EXPAND: {
                rv_value_t *items = node->fn.expand(ctx, value, node->opaque);
                if (!items) {
                    return op_fail(ctx, node, RV_ERR_USER, NULL);
                }
                if (rv_value_type(items) != RV_TYPE_ARRAY) {
                    return op_fail(ctx, node, RV_ERR_INVALID_ARG,
                                   "the function returned %s, not an array",
                                   rv_type_name(rv_value_type(items)));
                }
                size_t n = rv_value_len(items);
                for (size_t i = 0; i < n; i++) {
                    rv_value_t *item = rv_value_at(items, i);
                    rv_err_t e = node->nchildren == 1 ? run_node(ctx, node->children[0], item)
                                                      : run_children(ctx, node, item);
                    if (e != RV_OK) {
                        return e;
                    }
                }
                return RV_OK;
            }
            case RV__OP_GET_FIELD:
                value = path_get(value, &node->path);
                if (!value && !(value = rv_value_new_null(ctx->arena))) {
                    return nomem(ctx, node);
                }
                break;
            case RV__OP_SET_FIELD: {
                rv_value_t *x = node->fn.compute(ctx, value, node->opaque);
                if (!x) {
                    return op_fail(ctx, node, RV_ERR_USER, NULL);
                }
                rv_err_t e = path_set(ctx, node, value, x);
                if (e != RV_OK) {
                    return e;
                }
                break;
            }
            case RV__OP_SET_CONST: {
                rv_value_t *x = node->constant;
                rv_type_t t = rv_value_type(x);
                if (t == RV_TYPE_ARRAY || t == RV_TYPE_OBJECT) {
                    x = rv_value_copy(ctx->arena, x); /* later operators may change it */
                    if (!x) {
                        return nomem(ctx, node);
                    }
                }
                rv_err_t e = path_set(ctx, node, value, x);
                if (e != RV_OK) {
                    return e;
                }
                break;
            }
            case RV__OP_SELECT: {
                rv_type_t t = rv_value_type(value);
                if (t != RV_TYPE_OBJECT) {
                    return op_fail(ctx, node, RV_ERR_INVALID_ARG, "the value is %s, not an object",
                                   rv_type_name(t));
                }
                rv_value_t *o = rv_value_new_object(ctx->arena, node->nfields);
                if (!o) {
                    return nomem(ctx, node);
                }
                for (size_t i = 0; i < node->nfields; i++) {
                    rv_value_t *f = rv_value_get(value, node->fields[i], node->field_lens[i]);
                    if (f && rv_value_set(ctx->arena, o, node->fields[i], node->field_lens[i], f) !=
                                 RV_OK) {
                        return nomem(ctx, node);
                    }
                }
                value = o;
                break;
            }
            case RV__OP_DROP: {
                rv_type_t t = rv_value_type(value);
                if (t != RV_TYPE_OBJECT) {
                    return op_fail(ctx, node, RV_ERR_INVALID_ARG, "the value is %s, not an object",
                                   rv_type_name(t));
                }
                for (size_t i = 0; i < node->nfields; i++) {
                    rv_value_remove(value, node->fields[i], node->field_lens[i]);
                }
                break;
            }
            case RV__OP_FILTER_FIELD:
                if (!compare(path_get(value, &node->path), node->cmp, node->constant)) {
                    rv__count(&ctx->counters->records_filtered, 1);
                    return RV_OK;
                }
                break;
            case RV__OP_TO_TOPIC: {
                rv_err_t e = node->graph->host->produce(ctx, node->dest, ctx->key, value);
                if (e != RV_OK) {
                    return op_fail(ctx, node, e, NULL);
                }
                break;
            }
            case RV__OP_TO_TOPIC_FN: {
                const rv_value_t *name = node->fn.compute(ctx, value, node->opaque);
                if (!name) {
                    return op_fail(ctx, node, RV_ERR_USER, NULL);
                }
                if (rv_value_type(name) != RV_TYPE_STRING) {
                    return op_fail(ctx, node, RV_ERR_INVALID_ARG,
                                   "the function returned %s, not a topic name (a string)",
                                   rv_type_name(rv_value_type(name)));
                }
                size_t len;
                const char *s = rv_value_str(name, &len);
                rv_topic_t *t = NULL;
                const rv__df_host_t *h = node->graph->host;
                rv_err_t e = h->topic_named(ctx, s, len, &node->dest_opts, &t);
                if (e == RV_OK) {
                    e = h->produce(ctx, t, ctx->key, value);
                }
                if (e != RV_OK) {
                    return op_fail(ctx, node, e, NULL);
                }
                break;
            }
            case RV__OP_GROUP_BY: {
                const rv_value_t *key;
                if (node->fn.compute) {
                    key = node->fn.compute(ctx, value, node->opaque);
                    if (!key) {
                        return op_fail(ctx, node, RV_ERR_USER, NULL);
                    }
                } else {
                    key = path_get(value, &node->path);
                    if (!key) {
                        return op_fail(ctx, node, RV_ERR_NOT_FOUND,
                                       "the record has no field '%s' to group by", node->path.text);
                    }
                }
                if (rv_value_type(key) == RV_TYPE_NULL) {
                    return op_fail(ctx, node, RV_ERR_INVALID_ARG,
                                   "the new key is null; a record needs a key to be grouped");
                }
                rv_err_t e = node->graph->host->produce(ctx, node->dest, key, value);
                if (e != RV_OK) {
                    return op_fail(ctx, node, e, NULL);
                }
                break;
            }
            case RV__OP_SET_TIMESTAMP: {
                const rv_value_t *t = node->fn.compute(ctx, value, node->opaque);
                if (!t) {
                    return op_fail(ctx, node, RV_ERR_USER, NULL);
                }
                rv_type_t tt = rv_value_type(t);
                if (tt == RV_TYPE_INT) {
                    ctx->timestamp = rv_value_int(t);
                } else if (tt == RV_TYPE_DOUBLE && isfinite(rv_value_double(t))) {
                    ctx->timestamp = rv_value_int(t);
                } else {
                    return op_fail(ctx, node, RV_ERR_INVALID_ARG,
                                   "the function returned %s, not a timestamp in ms (an int)",
                                   rv_type_name(tt));
                }
                break;
            }
            case RV__OP_SET_HEADERS: {
                const rv_value_t *h = node->fn.compute(ctx, value, node->opaque);
                if (!h) {
                    return op_fail(ctx, node, RV_ERR_USER, NULL);
                }
                rv_err_t e = set_headers(ctx, node, h);
                if (e != RV_OK) {
                    return e;
                }
                break;
            }
            case RV__OP_PRINT: {
                rv_err_t e = print_record(ctx, node, value);
                if (e != RV_OK) {
                    return e;
                }
                break;
            }
            case RV__OP_SINK: {
                rv_err_t e = node->fn.sink(ctx, value, node->opaque);
                if (e != RV_OK) {
                    return op_fail(ctx, node, e, NULL);
                }
                rv__count(&ctx->counters->records_sunk, 1);
                break;
            }
            case RV__OP_SINK_OBJ: {
                pthread_mutex_lock(&node->mu);
                rv_err_t e = node->sink_ops->write(node->sink_obj, ctx, value);
                pthread_mutex_unlock(&node->mu);
                if (e != RV_OK) {
                    return op_fail(ctx, node, e, NULL);
                }
                rv__count(&ctx->counters->records_sunk, 1);
                break;
            }
        }
        if (node->nchildren == 0) {
            return RV_OK;
        }
        if (node->nchildren > 1) {
            return run_children(ctx, node, value);
        }
        node = node->children[0];
    }
}

rv_err_t rv__df_run(rv_ctx_t *ctx, rv_df_t *const *roots, size_t n, rv_value_t *value) {
    int64_t ts = ctx->timestamp;
    const rv_header_t *headers = ctx->headers;
    size_t header_count = ctx->header_count;
    for (size_t i = 0; i < n; i++) {
        rv_value_t *v = value;
        if (i + 1 < n && roots[i]->mutates) {
            v = rv_value_copy(ctx->arena, value);
            if (!v) {
                return nomem(ctx, roots[i]);
            }
        }
        rv_err_t e = run_node(ctx, roots[i], v);
        ctx->timestamp = ts;
        ctx->headers = headers;
        ctx->header_count = header_count;
        if (e != RV_OK) {
            return e;
        }
    }
    return RV_OK;
}

rv_err_t rv__graph_tick(rv__graph_t *g, rv_ctx_t *ctx, int64_t wall_ms) {
    for (size_t i = 0; g && i < g->n; i++) {
        rv_df_t *d = g->nodes[i];
        if (d->op != RV__OP_CUSTOM || !d->ops->tick || d->topic != ctx->topic) {
            continue;
        }
        ctx->key = NULL;
        ctx->timestamp = wall_ms;
        ctx->fail_node = NULL;
        ctx->fail_set = false;
        rv_err_t e = d->ops->tick(ctx, d, wall_ms);
        if (e != RV_OK) {
            return op_fail(ctx, d, e, NULL);
        }
    }
    return RV_OK;
}

rv_err_t rv__graph_flush_ops(rv__graph_t *g, rv__stores_t *stores, rv_error_t **err) {
    for (size_t i = 0; g && stores && i < g->n; i++) {
        rv_df_t *d = g->nodes[i];
        if (d->op == RV__OP_CUSTOM && d->ops->flush) {
            rv_err_t e = d->ops->flush(d, stores, err);
            if (e != RV_OK) {
                return e;
            }
        }
    }
    return RV_OK;
}

void rv__df_fail_reason(const rv_ctx_t *ctx, rv_err_t code, char *out, size_t size) {
    const rv_df_t *node = ctx->fail_node;
    if (!node) {
        snprintf(out, size, "%s", ctx->fail_set ? ctx->fail_msg : rv_err_str(code));
        return;
    }
    if (ctx->fail_set) {
        snprintf(out, size, "operator #%d %s: %s", node->id, node->desc, ctx->fail_msg);
        return;
    }
    const char *why;
    switch (node->op) {
        case RV__OP_APPLY:
        case RV__OP_APPLY_STATE:
        case RV__OP_EXPAND:
        case RV__OP_SET_FIELD:
        case RV__OP_SET_TIMESTAMP:
        case RV__OP_SET_HEADERS:
        case RV__OP_TO_TOPIC_FN:
        case RV__OP_GROUP_BY:
            why = "the function returned NULL without saying why (see rv_ctx_fail())";
            break;
        case RV__OP_FILTER:
        case RV__OP_FILTER_STATE:
            why = "the function returned a negative value without saying why (see rv_ctx_fail())";
            break;
        default:
            why = NULL;
            break;
    }
    if (why) {
        snprintf(out, size, "operator #%d %s: %s", node->id, node->desc, why);
    } else {
        snprintf(out, size, "operator #%d %s: failed with %s (%s)", node->id, node->desc,
                 rv_err_name(code), rv_err_str(code));
    }
}

/* ---- the context ---------------------------------------------------------------------------- */

void rv__ctx_failf(rv_ctx_t *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->fail_msg, sizeof ctx->fail_msg, fmt, ap);
    va_end(ap);
    ctx->fail_set = true;
}

void rv__df_logf(rv_ctx_t *ctx, const rv_df_t *node, rv_log_level_t level, const char *fmt,
                 ...) {
    const rv__df_host_t *host = node->graph->host;
    if (!host || !host->log) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    host->log(ctx, level, msg);
}

rv_arena_t *rv_ctx_arena(rv_ctx_t *ctx) {
    return ctx->arena;
}

const rv_value_t *rv_ctx_key(const rv_ctx_t *ctx) {
    return ctx->key;
}

int64_t rv_ctx_timestamp(const rv_ctx_t *ctx) {
    return ctx->timestamp;
}

const char *rv_ctx_topic(const rv_ctx_t *ctx) {
    return ctx->rec->topic;
}

int32_t rv_ctx_partition(const rv_ctx_t *ctx) {
    return ctx->rec->partition;
}

int64_t rv_ctx_offset(const rv_ctx_t *ctx) {
    return ctx->rec->offset;
}

const rv_header_t *rv_ctx_headers(const rv_ctx_t *ctx, size_t *count) {
    if (count) {
        *count = ctx->header_count;
    }
    return ctx->headers;
}

void rv_ctx_fail(rv_ctx_t *ctx, const char *fmt, ...) {
    if (!ctx || !fmt) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->fail_msg, sizeof ctx->fail_msg, fmt, ap);
    va_end(ap);
    ctx->fail_set = true;
}
