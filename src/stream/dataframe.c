/*
 * dataframe.c: building the dataframe graph (the rv_df_* functions of rivulet/dataframe.h).
 *
 * Every operator makes a node that follows its dataframe; a dataframe that gets two operators
 * branches. Arguments are checked here, once, so running never meets a bad argument: a bad one
 * makes the operator return NULL and the graph keep the first such error, naming the operator,
 * for rv_app_run() to return. Field paths are split at their dots, constants copied and
 * descriptions for error messages written when the node is built. This file must never run a
 * record or touch a broker: it only builds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/json.h"
#include "state/state_int.h"
#include "stream/stream_int.h"

/* ---- errors and allocation ------------------------------------------------------------------ */

/* Records the graph's first building error ("<op>: <message>") and returns NULL. */
static rv_df_t *bad(rv__graph_t *g, rv_err_t code, const char *op, const char *fmt, ...)
    RV_PRINTF(4, 5);
static rv_df_t *bad(rv__graph_t *g, rv_err_t code, const char *op, const char *fmt, ...) {
    if (g && !g->err) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        rv__error_set(&g->err, code, "building the dataframe graph: %s: %s", op, msg);
    }
    return NULL;
}

/* A formatted string in the graph's arena (NULL on NOMEM). */
static const char *gfmt(rv__graph_t *g, const char *fmt, ...) RV_PRINTF(2, 3);
static const char *gfmt(rv__graph_t *g, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return rv_arena_strndup(g->arena, buf, strlen(buf));
}

static bool add_child(rv_df_t *parent, rv_df_t *child) {
    if (parent->nchildren == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 2;
        rv_df_t **v = realloc(parent->children, cap * sizeof *v);
        if (!v) {
            return false;
        }
        parent->children = v;
        parent->cap = cap;
    }
    parent->children[parent->nchildren++] = child;
    return true;
}

/* Makes a node of `g` (not yet linked to a parent). */
static rv_df_t *node_alloc(rv__graph_t *g, rv__op_t op, rv_topic_t *topic) {
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        rv_df_t **v = realloc(g->nodes, cap * sizeof *v);
        if (!v) {
            return bad(g, RV_ERR_NOMEM, "graph", "out of memory");
        }
        g->nodes = v;
        g->cap = cap;
    }
    rv_df_t *d = calloc(1, sizeof *d);
    if (!d) {
        return bad(g, RV_ERR_NOMEM, "graph", "out of memory");
    }
    d->graph = g;
    d->op = op;
    d->topic = topic;
    d->id = (int)g->n + 1;
    g->nodes[g->n++] = d;
    return d;
}

/* Makes a node following `parent`, described by `desc` (copied). */
static rv_df_t *node_after(rv_df_t *parent, rv__op_t op, const char *desc) {
    rv__graph_t *g = parent->graph;
    rv_df_t *d = node_alloc(g, op, parent->topic);
    if (!d) {
        return NULL;
    }
    d->desc = desc ? desc : "operator";
    if (!add_child(parent, d)) {
        return bad(g, RV_ERR_NOMEM, d->desc, "out of memory");
    }
    return d;
}

/* Splits `path` at its dots into d->path; false (recorded) when it is empty or has an empty
 * segment. */
static bool path_parse(rv_df_t *d, const char *op, const char *path) {
    rv__graph_t *g = d->graph;
    if (!path || !*path) {
        bad(g, RV_ERR_INVALID_ARG, op, "the field path is %s", path ? "empty" : "NULL");
        return false;
    }
    size_t len = strlen(path), n = 1;
    for (size_t i = 0; i < len; i++) {
        n += path[i] == '.';
    }
    char *text = rv_arena_strndup(g->arena, path, len);
    const char **seg = rv_arena_alloc(g->arena, n * sizeof *seg);
    size_t *lens = rv_arena_alloc(g->arena, n * sizeof *lens);
    if (!text || !seg || !lens) {
        bad(g, RV_ERR_NOMEM, op, "out of memory");
        return false;
    }
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == '.') {
            if (i == start) {
                bad(g, RV_ERR_INVALID_ARG, op, "field path '%s' has an empty name", path);
                return false;
            }
            seg[k] = text + start;
            lens[k] = i - start;
            k++;
            start = i + 1;
        }
    }
    d->path = (rv__path_t){.n = n, .seg = seg, .len = lens, .text = text};
    return true;
}

/* ---- the graph ------------------------------------------------------------------------------ */

rv__graph_t *rv__graph_new(const rv__df_host_t *host, void *host_opaque) {
    rv__graph_t *g = calloc(1, sizeof *g);
    if (!g) {
        return NULL;
    }
    g->arena = rv_arena_new(4096);
    if (!g->arena || pthread_mutex_init(&g->print_mu, NULL) != 0) {
        rv_arena_destroy(g->arena);
        free(g);
        return NULL;
    }
    g->host = host;
    g->host_opaque = host_opaque;
    return g;
}

void rv__graph_destroy(rv__graph_t *g) {
    if (!g) {
        return;
    }
    for (size_t i = 0; i < g->n; i++) {
        rv_df_t *d = g->nodes[i];
        if (d->op == RV__OP_SINK_OBJ && d->sink_ops && d->sink_ops->close) {
            bool seen = false; /* one sink object behind several operators closes once */
            for (size_t j = 0; j < i && !seen; j++) {
                rv_df_t *o = g->nodes[j];
                seen = o->op == RV__OP_SINK_OBJ && o->sink_ops == d->sink_ops &&
                       o->sink_obj == d->sink_obj;
            }
            if (!seen) {
                d->sink_ops->close(d->sink_obj);
            }
        }
    }
    for (size_t i = 0; i < g->n; i++) {
        rv_df_t *d = g->nodes[i];
        if (d->op == RV__OP_CUSTOM && d->ops && d->ops->destroy) {
            d->ops->destroy(d->op_state);
        }
        if (d->mu_init) {
            pthread_mutex_destroy(&d->mu);
        }
        rv_conf_destroy((rv_conf_t *)d->dest_opts.topic_conf);
        free(d->children);
        free(d);
    }
    free(g->nodes);
    for (size_t i = 0; i < g->nstores; i++) {
        free(g->stores[i]->name);
        free(g->stores[i]->changelog);
        free(g->stores[i]);
    }
    free(g->stores);
    pthread_mutex_destroy(&g->print_mu);
    rv_error_destroy(g->err);
    rv_arena_destroy(g->arena);
    free(g);
}

void rv__graph_fail(rv__graph_t *g, rv_err_t code, const char *op, const char *msg) {
    bad(g, code, op, "%s", msg);
}

const rv_error_t *rv__graph_error(const rv__graph_t *g) {
    return g ? g->err : NULL;
}

rv_df_t *rv__graph_source(rv__graph_t *g, rv_topic_t *topic) {
    if (!g) {
        return NULL;
    }
    if (!topic) {
        return bad(g, RV_ERR_INVALID_ARG, "rv_app_dataframe", "the source topic is NULL");
    }
    rv_df_t *d = node_alloc(g, RV__OP_SOURCE, topic);
    if (d) {
        d->desc = gfmt(g, "source '%s'", rv_topic_name(topic));
    }
    return d;
}

/* Whether an operator may change a value it is given in place. */
static bool op_mutates(const rv_df_t *d) {
    switch (d->op) {
        case RV__OP_CUSTOM:
            return d->ops->mutates;
        case RV__OP_APPLY:
        case RV__OP_UPDATE:
        case RV__OP_APPLY_STATE:
        case RV__OP_UPDATE_STATE:
        case RV__OP_EXPAND:
        case RV__OP_SET_FIELD:
        case RV__OP_SET_CONST:
        case RV__OP_DROP:
            return true;
        default:
            return false;
    }
}

/* Whether `d` or a node below it may change a value in place (memoised; the graph is a DAG). */
static bool settle(rv_df_t *d) {
    if (d->mutates_known) {
        return d->mutates;
    }
    bool m = op_mutates(d);
    for (size_t i = 0; i < d->nchildren; i++) {
        m = settle(d->children[i]) || m;
    }
    d->mutates = m;
    d->mutates_known = true;
    return m;
}

size_t rv__graph_roots(rv__graph_t *g, const rv_topic_t *topic, rv_df_t **out, size_t max) {
    size_t n = 0;
    for (size_t i = 0; g && i < g->n; i++) {
        rv_df_t *d = g->nodes[i];
        if (d->op == RV__OP_SOURCE && d->topic == topic) {
            settle(d);
            if (n < max) {
                out[n] = d;
            }
            n++;
        }
    }
    return n;
}

void rv__graph_flush_print(rv__graph_t *g) {
    pthread_mutex_lock(&g->print_mu);
    fflush(stdout);
    pthread_mutex_unlock(&g->print_mu);
}

rv_err_t rv__graph_flush_sinks(rv__graph_t *g, rv_error_t **err) {
    for (size_t i = 0; g && i < g->n; i++) {
        rv_df_t *d = g->nodes[i];
        if (d->op != RV__OP_SINK_OBJ || !d->sink_ops->flush) {
            continue;
        }
        pthread_mutex_lock(&d->mu);
        rv_error_t *e2 = NULL;
        rv_err_t e = d->sink_ops->flush(d->sink_obj, &e2);
        pthread_mutex_unlock(&d->mu);
        if (e != RV_OK) {
            rv__error_set(err, e, "operator #%d (%s): flush failed: %s", d->id, d->desc,
                          e2 ? rv_error_message(e2) : rv_err_str(e));
            rv_error_destroy(e2);
            return e;
        }
        rv_error_destroy(e2);
    }
    return RV_OK;
}

/* ---- operators with user functions ---------------------------------------------------------- */

/* The common checks of an operator taking a function: a dataframe and a function. */
#define NEED_FN(df, fnp, op)                                                                       \
    do {                                                                                           \
        if (!(df)) {                                                                               \
            return NULL;                                                                           \
        }                                                                                          \
        if (!(fnp)) {                                                                              \
            return bad((df)->graph, RV_ERR_INVALID_ARG, op, "the function is NULL");               \
        }                                                                                          \
    } while (0)

rv_df_t *rv_df_apply(rv_df_t *df, rv_apply_fn fn, void *opaque) {
    NEED_FN(df, fn, "apply");
    rv_df_t *d = node_after(df, RV__OP_APPLY, "apply");
    if (d) {
        d->fn.apply = fn;
        d->opaque = opaque;
    }
    return d;
}

rv_df_t *rv_df_update(rv_df_t *df, rv_update_fn fn, void *opaque) {
    NEED_FN(df, fn, "update");
    rv_df_t *d = node_after(df, RV__OP_UPDATE, "update");
    if (d) {
        d->fn.update = fn;
        d->opaque = opaque;
    }
    return d;
}

rv_df_t *rv_df_filter(rv_df_t *df, rv_filter_fn fn, void *opaque) {
    NEED_FN(df, fn, "filter");
    rv_df_t *d = node_after(df, RV__OP_FILTER, "filter");
    if (d) {
        d->fn.filter = fn;
        d->opaque = opaque;
    }
    return d;
}

rv_df_t *rv_df_expand(rv_df_t *df, rv_expand_fn fn, void *opaque) {
    NEED_FN(df, fn, "expand");
    rv_df_t *d = node_after(df, RV__OP_EXPAND, "expand");
    if (d) {
        d->fn.expand = fn;
        d->opaque = opaque;
    }
    return d;
}

/* A stateful operator: a function and the store it names. */
static rv_df_t *state_op(rv_df_t *df, rv__op_t op, const char *what, const char *store, bool has_fn,
                         void *opaque) {
    if (!df) {
        return NULL;
    }
    if (!has_fn) {
        return bad(df->graph, RV_ERR_INVALID_ARG, what, "the function is NULL");
    }
    rv_df_t *d = node_after(df, op, NULL);
    if (!d || !rv__df_store(d, what, store)) {
        return NULL;
    }
    d->desc = gfmt(df->graph, "%s(store '%s')", what, store);
    d->opaque = opaque;
    return d;
}

rv_df_t *rv_df_apply_state(rv_df_t *df, const char *store, rv_apply_fn fn, void *opaque) {
    rv_df_t *d = state_op(df, RV__OP_APPLY_STATE, "apply_state", store, fn != NULL, opaque);
    if (d) {
        d->fn.apply = fn;
    }
    return d;
}

rv_df_t *rv_df_update_state(rv_df_t *df, const char *store, rv_update_fn fn, void *opaque) {
    rv_df_t *d = state_op(df, RV__OP_UPDATE_STATE, "update_state", store, fn != NULL, opaque);
    if (d) {
        d->fn.update = fn;
    }
    return d;
}

rv_df_t *rv_df_filter_state(rv_df_t *df, const char *store, rv_filter_fn fn, void *opaque) {
    rv_df_t *d = state_op(df, RV__OP_FILTER_STATE, "filter_state", store, fn != NULL, opaque);
    if (d) {
        d->fn.filter = fn;
    }
    return d;
}

/* ---- stores and custom operators ---------------------------------------------------------- */

rv__store_decl_t *rv__df_store(rv_df_t *node, const char *op, const char *name) {
    if (!node) {
        return NULL;
    }
    rv__graph_t *g = node->graph;
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > 100) {
        bad(g, RV_ERR_INVALID_ARG, op, "the store name is %s",
            !name ? "NULL"
            : len ? "longer than 100 bytes"
                  : "empty");
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            bad(g, RV_ERR_INVALID_ARG, op,
                "store name '%s': only letters, digits, '.', '_' and '-' are allowed", name);
            return NULL;
        }
    }
    for (size_t i = 0; i < g->nstores; i++) {
        rv__store_decl_t *sd = g->stores[i];
        if (strcmp(sd->name, name) == 0) {
            if (sd->topic != node->topic) {
                bad(g, RV_ERR_INVALID_ARG, op,
                    "store '%s' is already declared on topic '%s'; a store follows the "
                    "partitions of one topic (this operator reads '%s')",
                    name, rv_topic_name(sd->topic), rv_topic_name(node->topic));
                return NULL;
            }
            node->store = sd;
            return sd;
        }
    }
    rv__store_decl_t **v = realloc(g->stores, (g->nstores + 1) * sizeof *v);
    if (!v) {
        bad(g, RV_ERR_NOMEM, op, "out of memory");
        return NULL;
    }
    g->stores = v;
    rv__store_decl_t *sd = calloc(1, sizeof *sd);
    if (!sd || !(sd->name = strdup(name))) {
        free(sd);
        bad(g, RV_ERR_NOMEM, op, "out of memory");
        return NULL;
    }
    sd->topic = node->topic;
    sd->index = (int)g->nstores;
    g->stores[g->nstores++] = sd;
    node->store = sd;
    return sd;
}

rv_df_t *rv__df_custom(rv_df_t *parent, const char *desc, const rv__op_ops_t *ops, void *op_state) {
    rv__graph_t *g = parent ? parent->graph : NULL;
    rv_df_t *d = NULL;
    if (!ops || ops->version != RV__OP_OPS_VERSION || !ops->run) {
        bad(g, RV_ERR_INVALID_ARG, desc ? desc : "custom operator", "bad operator vtable");
    } else if (parent) {
        d = node_after(parent, RV__OP_CUSTOM, NULL);
    }
    if (!d) {
        if (ops && ops->destroy) {
            ops->destroy(op_state);
        }
        return NULL;
    }
    d->ops = ops;
    d->op_state = op_state;
    d->desc = desc ? gfmt(g, "%s", desc) : "custom operator";
    return d;
}

/* ---- fields --------------------------------------------------------------------------------- */

rv_df_t *rv_df_get_field(rv_df_t *df, const char *path) {
    if (!df) {
        return NULL;
    }
    rv_df_t *d = node_after(df, RV__OP_GET_FIELD, NULL);
    if (d && path_parse(d, "get_field", path)) {
        d->desc = gfmt(df->graph, "get_field('%s')", path);
        return d;
    }
    return NULL;
}

rv_df_t *rv_df_set_field(rv_df_t *df, const char *path, rv_compute_fn fn, void *opaque) {
    NEED_FN(df, fn, "set_field");
    rv_df_t *d = node_after(df, RV__OP_SET_FIELD, NULL);
    if (d && path_parse(d, "set_field", path)) {
        d->desc = gfmt(df->graph, "set_field('%s')", path);
        d->fn.compute = fn;
        d->opaque = opaque;
        return d;
    }
    return NULL;
}

rv_df_t *rv_df_set_field_const(rv_df_t *df, const char *path, const rv_value_t *v) {
    if (!df) {
        return NULL;
    }
    rv_df_t *d = node_after(df, RV__OP_SET_CONST, NULL);
    if (!d || !path_parse(d, "set_field_const", path)) {
        return NULL;
    }
    d->desc = gfmt(df->graph, "set_field_const('%s')", path);
    d->constant = rv_value_copy(df->graph->arena, v);
    if (!d->constant) {
        return bad(df->graph, RV_ERR_NOMEM, "set_field_const", "out of memory");
    }
    return d;
}

/* Copies `count` field names into the node; false (recorded) for a NULL or empty name. */
static bool fields_copy(rv_df_t *d, const char *op, const char *const *fields, size_t count) {
    rv__graph_t *g = d->graph;
    if (count && !fields) {
        bad(g, RV_ERR_INVALID_ARG, op, "the field list is NULL");
        return false;
    }
    d->fields = rv_arena_alloc(g->arena, (count ? count : 1) * sizeof *d->fields);
    d->field_lens = rv_arena_alloc(g->arena, (count ? count : 1) * sizeof *d->field_lens);
    if (!d->fields || !d->field_lens) {
        bad(g, RV_ERR_NOMEM, op, "out of memory");
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        if (!fields[i] || !*fields[i]) {
            bad(g, RV_ERR_INVALID_ARG, op, "field name %zu is %s", i, fields[i] ? "empty" : "NULL");
            return false;
        }
        d->field_lens[i] = strlen(fields[i]);
        d->fields[i] = rv_arena_strndup(g->arena, fields[i], d->field_lens[i]);
        if (!d->fields[i]) {
            bad(g, RV_ERR_NOMEM, op, "out of memory");
            return false;
        }
    }
    d->nfields = count;
    return true;
}

/* "'a', 'b', 'c'" for a description (shortened past a few names). */
static const char *fields_desc(rv__graph_t *g, const char *op, const char *const *fields,
                               size_t count) {
    char buf[256];
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < count && o < sizeof buf - 8; i++) {
        int w = snprintf(buf + o, sizeof buf - o, "%s'%s'", i ? ", " : "", fields[i]);
        if (w < 0 || (size_t)w >= sizeof buf - o) {
            snprintf(buf + o, sizeof buf - o, ", ...");
            break;
        }
        o += (size_t)w;
    }
    return gfmt(g, "%s(%s)", op, buf);
}

rv_df_t *rv_df_select(rv_df_t *df, const char *const *fields, size_t count) {
    if (!df) {
        return NULL;
    }
    rv_df_t *d = node_after(df, RV__OP_SELECT, "select");
    if (d && fields_copy(d, "select", fields, count)) {
        d->desc = fields_desc(df->graph, "select", d->fields, count);
        return d;
    }
    return NULL;
}

rv_df_t *rv_df_drop(rv_df_t *df, const char *const *fields, size_t count) {
    if (!df) {
        return NULL;
    }
    rv_df_t *d = node_after(df, RV__OP_DROP, "drop");
    if (d && fields_copy(d, "drop", fields, count)) {
        d->desc = fields_desc(df->graph, "drop", d->fields, count);
        return d;
    }
    return NULL;
}

static const char *cmp_text(rv_cmp_t cmp) {
    switch (cmp) {
        case RV_CMP_EQ:
            return "==";
        case RV_CMP_NE:
            return "!=";
        case RV_CMP_LT:
            return "<";
        case RV_CMP_LE:
            return "<=";
        case RV_CMP_GT:
            return ">";
        case RV_CMP_GE:
            return ">=";
        case RV_CMP_EXISTS:
            return "exists";
        case RV_CMP_MISSING:
            return "missing";
    }
    return NULL;
}

rv_df_t *rv_df_filter_field(rv_df_t *df, const char *path, rv_cmp_t cmp, const rv_value_t *v) {
    if (!df) {
        return NULL;
    }
    rv__graph_t *g = df->graph;
    const char *ct = cmp_text(cmp);
    if (!ct) {
        return bad(g, RV_ERR_INVALID_ARG, "filter_field", "unknown comparison %d", (int)cmp);
    }
    bool unary = cmp == RV_CMP_EXISTS || cmp == RV_CMP_MISSING;
    rv_df_t *d = node_after(df, RV__OP_FILTER_FIELD, "filter_field");
    if (!d || !path_parse(d, "filter_field", path)) {
        return NULL;
    }
    d->cmp = cmp;
    if (!unary) {
        d->constant = rv_value_copy(g->arena, v);
        if (!d->constant) {
            return bad(g, RV_ERR_NOMEM, "filter_field", "out of memory");
        }
        rv_strbuf_t sb = RV_STRBUF_INIT;
        if (rv_json_write(&sb, d->constant, RV_JSON_COMPACT, NULL) != RV_OK) {
            rv_strbuf_clear(&sb);
            rv_strbuf_appendf(&sb, "a %s", rv_type_name(rv_value_type(d->constant)));
        }
        if (sb.len > 64) {
            sb.len = 60;
            rv_strbuf_append(&sb, "...", 3);
        }
        d->desc = gfmt(g, "filter_field('%s' %s %s)", path, ct, sb.data ? sb.data : "null");
        rv_strbuf_free(&sb);
    } else {
        d->desc = gfmt(g, "filter_field('%s' %s)", path, ct);
    }
    return d;
}

/* ---- topics ------------------------------------------------------------------------------- */

rv_df_t *rv_df_to_topic(rv_df_t *df, rv_topic_t *topic) {
    if (!df) {
        return NULL;
    }
    if (!topic) {
        return bad(df->graph, RV_ERR_INVALID_ARG, "to_topic", "the topic is NULL");
    }
    rv_df_t *d = node_after(df, RV__OP_TO_TOPIC, NULL);
    if (d) {
        d->desc = gfmt(df->graph, "to_topic('%s')", rv_topic_name(topic));
        d->dest = topic;
    }
    return d;
}

rv_df_t *rv_df_to_topic_fn(rv_df_t *df, rv_compute_fn fn, void *opaque,
                           const rv_topic_opts_t *opts) {
    NEED_FN(df, fn, "to_topic_fn");
    rv__graph_t *g = df->graph;
    rv_df_t *d = node_after(df, RV__OP_TO_TOPIC_FN, "to_topic_fn");
    if (!d) {
        return NULL;
    }
    d->fn.compute = fn;
    d->opaque = opaque;
    if (opts) {
        d->dest_opts = *opts;
        d->dest_opts.topic_conf = NULL;
        if (opts->key_serde) {
            d->dest_opts.key_serde =
                rv_arena_strndup(g->arena, opts->key_serde, strlen(opts->key_serde));
        }
        if (opts->value_serde) {
            d->dest_opts.value_serde =
                rv_arena_strndup(g->arena, opts->value_serde, strlen(opts->value_serde));
        }
        if (opts->topic_conf) {
            d->dest_opts.topic_conf = rv_conf_dup(opts->topic_conf);
        }
        if ((opts->key_serde && !d->dest_opts.key_serde) ||
            (opts->value_serde && !d->dest_opts.value_serde) ||
            (opts->topic_conf && !d->dest_opts.topic_conf)) {
            return bad(g, RV_ERR_NOMEM, "to_topic_fn", "out of memory");
        }
    }
    return d;
}

rv_df_t *rv_df_group_by(rv_df_t *df, const char *name, const char *path, rv_compute_fn fn,
                        void *opaque) {
    if (!df) {
        return NULL;
    }
    rv__graph_t *g = df->graph;
    if (!name || !*name) {
        return bad(g, RV_ERR_INVALID_ARG, "group_by", "the name is %s", name ? "empty" : "NULL");
    }
    if ((path == NULL) == (fn == NULL)) {
        return bad(g, RV_ERR_INVALID_ARG, "group_by",
                   "'%s': give either a field path or a key function, not %s", name,
                   fn ? "both" : "neither");
    }
    for (size_t i = 0; i < g->n; i++) {
        rv_df_t *o = g->nodes[i];
        if (o->op == RV__OP_GROUP_BY && o->nfields == 1 && strcmp(o->fields[0], name) == 0) {
            return bad(g, RV_ERR_INVALID_ARG, "group_by",
                       "the name '%s' is already used by operator #%d", name, o->id);
        }
    }
    if (!g->host || !g->host->repartition_topic) {
        return bad(g, RV_ERR_STATE, "group_by", "the graph has no runtime to repartition");
    }
    rv_error_t *err = NULL;
    rv_topic_t *rt = g->host->repartition_topic(g->host_opaque, df->topic, name, &err);
    if (!rt) {
        bad(g, rv_error_code(err) ? rv_error_code(err) : RV_ERR_NOMEM, "group_by", "'%s': %s", name,
            rv_error_message(err));
        rv_error_destroy(err);
        return NULL;
    }
    rv_df_t *d = node_after(df, RV__OP_GROUP_BY, NULL);
    if (!d) {
        return NULL;
    }
    if (path && !path_parse(d, "group_by", path)) {
        return NULL;
    }
    const char *nm = name;
    if (!fields_copy(d, "group_by", &nm, 1)) {
        return NULL;
    }
    d->desc = path ? gfmt(g, "group_by('%s' by field '%s')", name, path)
                   : gfmt(g, "group_by('%s')", name);
    d->fn.compute = fn;
    d->opaque = opaque;
    d->dest = rt;
    return rv__graph_source(g, rt);
}

/* ---- records ------------------------------------------------------------------------------ */

rv_df_t *rv_df_set_timestamp(rv_df_t *df, rv_compute_fn fn, void *opaque) {
    NEED_FN(df, fn, "set_timestamp");
    rv_df_t *d = node_after(df, RV__OP_SET_TIMESTAMP, "set_timestamp");
    if (d) {
        d->fn.compute = fn;
        d->opaque = opaque;
    }
    return d;
}

rv_df_t *rv_df_set_headers(rv_df_t *df, rv_compute_fn fn, void *opaque) {
    NEED_FN(df, fn, "set_headers");
    rv_df_t *d = node_after(df, RV__OP_SET_HEADERS, "set_headers");
    if (d) {
        d->fn.compute = fn;
        d->opaque = opaque;
    }
    return d;
}

rv_df_t *rv_df_concat(rv_df_t *const *dfs, size_t count) {
    if (!dfs || count == 0) {
        return NULL;
    }
    rv__graph_t *g = NULL;
    for (size_t i = 0; i < count; i++) {
        if (dfs[i]) {
            g = dfs[i]->graph;
            break;
        }
    }
    if (!g) {
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        if (!dfs[i]) {
            return bad(g, RV_ERR_INVALID_ARG, "concat", "dataframe %zu of %zu is NULL", i, count);
        }
        if (dfs[i]->graph != g) {
            return bad(g, RV_ERR_INVALID_ARG, "concat",
                       "dataframe %zu belongs to another application", i);
        }
    }
    rv_df_t *d = node_alloc(g, RV__OP_CONCAT, dfs[0]->topic);
    if (!d) {
        return NULL;
    }
    d->desc = gfmt(g, "concat(%zu dataframes)", count);
    for (size_t i = 0; i < count; i++) {
        bool dup = false;
        for (size_t j = 0; j < i; j++) {
            dup = dup || dfs[j] == dfs[i];
        }
        if (!dup && !add_child(dfs[i], d)) {
            return bad(g, RV_ERR_NOMEM, "concat", "out of memory");
        }
    }
    return d;
}

rv_df_t *rv_df_print(rv_df_t *df, int flags) {
    if (!df) {
        return NULL;
    }
    if (flags & ~(RV_PRINT_METADATA | RV_PRINT_PRETTY)) {
        return bad(df->graph, RV_ERR_INVALID_ARG, "print", "unknown flags 0x%x", (unsigned)flags);
    }
    rv_df_t *d = node_after(df, RV__OP_PRINT, "print");
    if (d) {
        d->flags = flags;
    }
    return d;
}

rv_df_t *rv_df_sink(rv_df_t *df, rv_sink_fn fn, void *opaque) {
    NEED_FN(df, fn, "sink");
    rv_df_t *d = node_after(df, RV__OP_SINK, "sink");
    if (d) {
        d->fn.sink = fn;
        d->opaque = opaque;
    }
    return d;
}

rv_df_t *rv_df_sink_obj(rv_df_t *df, const rv_sink_ops_t *ops, void *sink) {
    if (!df) {
        return NULL;
    }
    if (!ops || !ops->write) {
        return bad(df->graph, RV_ERR_INVALID_ARG, "sink_obj", "the sink ops %s",
                   ops ? "have no write function" : "are NULL");
    }
    if (ops->version != 1) {
        return bad(df->graph, RV_ERR_INVALID_ARG, "sink_obj",
                   "the sink ops have version %d; this library knows version 1", ops->version);
    }
    rv_df_t *d = node_after(df, RV__OP_SINK_OBJ, "sink_obj");
    if (!d) {
        return NULL;
    }
    d->sink_ops = ops;
    d->sink_obj = sink;
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        return bad(df->graph, RV_ERR_NOMEM, "sink_obj", "cannot make a mutex");
    }
    d->mu_init = true;
    return d;
}
