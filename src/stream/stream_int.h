/*
 * stream_int.h: the dataframe graph and the per-record context, shared by src/stream and the
 * runtime in src/app.
 *
 * A graph is a set of operator nodes (rv_df_t) built before a run: each node has the children
 * that follow it, in the order they were added, so a node with several children branches. The
 * runtime hands each decoded record to the root nodes of its topic through rv__df_run(); the
 * stream layer never touches brokers, producers or topics itself: what it needs from the runtime
 * that hosts it (producing a record, finding a topic by name, declaring a repartition topic) it
 * asks through the rv__df_host_t vtable. Nothing here is exported from the library.
 */
#ifndef RV_STREAM_INT_H
#define RV_STREAM_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/core_int.h"
#include "rivulet/dataframe.h"

/* A store declared by an operator (defined in state/state_int.h). */
typedef struct rv__store_decl_s rv__store_decl_t;
/* A worker's set of open stores (defined in src/state). */
typedef struct rv__stores_s rv__stores_t;

/* ---- counters ------------------------------------------------------------------------------- */

/*
 * Counters one worker keeps. Each has one writer (its worker) and any number of readers
 * (rv_app_metrics()), so they are atomics written with plain relaxed stores.
 */
typedef struct rv__counters_s {
    _Atomic int64_t records_in;
    _Atomic int64_t records_out;
    _Atomic int64_t records_sunk;
    _Atomic int64_t records_filtered;
    _Atomic int64_t errors;
    _Atomic int64_t skipped;
    _Atomic int64_t dead_lettered;
    _Atomic int64_t checkpoints;
    _Atomic int64_t txn_commits; /* exactly-once: transactions committed */
    _Atomic int64_t txn_aborts;  /* exactly-once: transactions aborted (state rolled back) */
    _Atomic int64_t checkpoint_last_us;
    _Atomic int64_t checkpoint_max_us;
    _Atomic int64_t lag;
    _Atomic int64_t state_stores; /* gauges, refreshed at checkpoints */
    _Atomic int64_t state_bytes;
    _Atomic int64_t state_restored;
} rv__counters_t;

/* Adds `n` to a counter that only the calling thread writes. */
static inline void rv__count(_Atomic int64_t *c, int64_t n) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* ---- the per-record context ----------------------------------------------------------------- */

struct rv_ctx_s {
    rv_arena_t *arena;      /* the worker's batch arena */
    const rv_record_t *rec; /* the consumed record (its original bytes) */
    rv_topic_t *topic;      /* the topic it came from */
    const rv_value_t *key;  /* decoded key; NULL = no key */
    int64_t timestamp;
    const rv_header_t *headers;
    size_t header_count;
    rv__counters_t *counters;
    void *host;               /* the runtime's worker */
    rv_strbuf_t text;         /* scratch text for print */
    bool printed;             /* print wrote since the runtime last flushed stdout */
    const rv_df_t *fail_node; /* the operator that failed the record */
    bool fail_set;            /* fail_msg holds the user's reason */
    char fail_msg[512];
    /* State: the worker's stores, and the store handle of the stateful operator being run. */
    rv__stores_t *stores;
    rv_err_t store_err;       /* the code of the last failed rv__ctx_store() */
    struct rv_state_s *state; /* rv_ctx_state(): set while a stateful operator runs */
};

/* ---- the host ------------------------------------------------------------------------------- */

#define RV__DF_HOST_VERSION 1

/* What a graph asks of the runtime that runs it. */
typedef struct rv__df_host_s {
    int version; /* RV__DF_HOST_VERSION */
    /* Build time: declares the repartition topic of group_by `name` reading `source`. */
    rv_topic_t *(*repartition_topic)(void *opaque, rv_topic_t *source, const char *name,
                                     rv_error_t **err);
    /*
     * Run time: encodes `key` and `value` with `topic`'s serialisers and produces them with the
     * context's timestamp and headers. On failure returns the code and sets ctx->fail_msg.
     */
    rv_err_t (*produce)(rv_ctx_t *ctx, rv_topic_t *topic, const rv_value_t *key,
                        const rv_value_t *value);
    /*
     * Run time: the topic named by `len` bytes of `name`, declared with `opts` (may be NULL) and
     * created on the broker when new. On failure returns the code and sets ctx->fail_msg.
     */
    rv_err_t (*topic_named)(rv_ctx_t *ctx, const char *name, size_t len,
                            const rv_topic_opts_t *opts, rv_topic_t **out);
    /* Run time: writes `msg` to the application's log (NULL: operators' lines are dropped). */
    void (*log)(rv_ctx_t *ctx, rv_log_level_t level, const char *msg);
} rv__df_host_t;

/* ---- the graph ------------------------------------------------------------------------------ */

typedef enum rv__op_e {
    RV__OP_SOURCE,
    RV__OP_APPLY,
    RV__OP_UPDATE,
    RV__OP_FILTER,
    RV__OP_EXPAND,
    RV__OP_GET_FIELD,
    RV__OP_SET_FIELD,
    RV__OP_SET_CONST,
    RV__OP_SELECT,
    RV__OP_DROP,
    RV__OP_FILTER_FIELD,
    RV__OP_TO_TOPIC,
    RV__OP_TO_TOPIC_FN,
    RV__OP_GROUP_BY,
    RV__OP_SET_TIMESTAMP,
    RV__OP_SET_HEADERS,
    RV__OP_CONCAT,
    RV__OP_PRINT,
    RV__OP_SINK,
    RV__OP_SINK_OBJ,
    RV__OP_APPLY_STATE, /* apply, update, filter with a key-scoped state handle */
    RV__OP_UPDATE_STATE,
    RV__OP_FILTER_STATE,
    RV__OP_CUSTOM /* an operator defined by a vtable (windows, aggregations) */
} rv__op_t;

typedef struct rv__op_ops_s rv__op_ops_t;

/* A field path split at its dots, in the graph's arena. */
typedef struct rv__path_s {
    size_t n;
    const char **seg;
    size_t *len;
    const char *text; /* the whole path, for messages */
} rv__path_t;

typedef struct rv__graph_s rv__graph_t;

struct rv_df_s {
    rv__graph_t *graph;
    rv__op_t op;
    int id;            /* 1-based position in the graph, for messages */
    const char *desc;  /* "apply", "filter_field('speed' > ...)": for messages */
    rv_topic_t *topic; /* the topic records reaching this node were read from */
    rv_df_t **children;
    size_t nchildren;
    size_t cap;
    bool mutates; /* some node from here down may change a value in place */
    bool mutates_known;
    /* The operator's arguments. */
    union {
        rv_apply_fn apply;
        rv_update_fn update;
        rv_filter_fn filter;
        rv_expand_fn expand;
        rv_compute_fn compute;
        rv_sink_fn sink;
    } fn;
    void *opaque;
    rv__path_t path;
    rv_value_t *constant; /* set_field_const, filter_field */
    rv_cmp_t cmp;
    const char **fields; /* select, drop */
    size_t *field_lens;
    size_t nfields;
    rv_topic_t *dest;          /* to_topic, group_by (the repartition topic) */
    rv_topic_opts_t dest_opts; /* to_topic_fn: options of the topics it declares */
    int flags;                 /* print */
    const rv_sink_ops_t *sink_ops;
    void *sink_obj;
    pthread_mutex_t mu; /* sink objects: one call at a time */
    bool mu_init;
    rv__store_decl_t *store; /* the store of a stateful or custom operator */
    const rv__op_ops_t *ops; /* custom operators */
    void *op_state;          /* custom operators: their build-time data (ops->destroy frees) */
};

struct rv__graph_s {
    rv_df_t **nodes;
    size_t n;
    size_t cap;
    rv_arena_t *arena; /* paths, constants, descriptions, copied options */
    const rv__df_host_t *host;
    void *host_opaque;
    rv_error_t *err; /* the first building error */
    pthread_mutex_t print_mu;
    rv__store_decl_t **stores; /* stores declared by operators, by index */
    size_t nstores;
};

/* A new, empty graph hosted by `host`. NULL on NOMEM. */
RV__HIDDEN rv__graph_t *rv__graph_new(const rv__df_host_t *host, void *host_opaque);

/* Closes the sink objects and frees the graph and its nodes. Accepts NULL. */
RV__HIDDEN void rv__graph_destroy(rv__graph_t *g);

/* A root node reading `topic`, as rv_app_dataframe() makes. NULL (recorded) on failure. */
RV__HIDDEN rv_df_t *rv__graph_source(rv__graph_t *g, rv_topic_t *topic);

/* Records a building error found outside src/stream (the first one wins). */
RV__HIDDEN void rv__graph_fail(rv__graph_t *g, rv_err_t code, const char *op, const char *msg);

/* The first building error (borrowed; NULL when there was none). */
RV__HIDDEN const rv_error_t *rv__graph_error(const rv__graph_t *g);

/*
 * Fills `out` (room for `max`) with the root nodes reading `topic` and returns how many there
 * are (which may exceed `max`). Also settles the graph for running (idempotent).
 */
RV__HIDDEN size_t rv__graph_roots(rv__graph_t *g, const rv_topic_t *topic, rv_df_t **out,
                                  size_t max);

/*
 * Flushes every sink object of the graph (one at a time per sink). The first failure is
 * returned, with *err naming the sink's operator.
 */
RV__HIDDEN rv_err_t rv__graph_flush_sinks(rv__graph_t *g, rv_error_t **err);

/* Flushes stdout for the print operators (the runtime calls it after a batch that printed). */
RV__HIDDEN void rv__graph_flush_print(rv__graph_t *g);

/*
 * Runs `value` (of the record in `ctx`) through the `n` roots. Returns RV_OK, or the failure
 * of an operator with ctx->fail_node naming it and, when the user said why, ctx->fail_msg.
 */
RV__HIDDEN rv_err_t rv__df_run(rv_ctx_t *ctx, rv_df_t *const *roots, size_t n, rv_value_t *value);

/* Writes why `ctx`'s record failed in operator ctx->fail_node with code `code` into `out`. */
RV__HIDDEN void rv__df_fail_reason(const rv_ctx_t *ctx, rv_err_t code, char *out, size_t size);

/* ---- custom operators and stores (the contract for windows and aggregations) ------------- */

#define RV__OP_OPS_VERSION 1

/*
 * An operator defined outside operators.c, as a const vtable. Its node (made with
 * rv__df_custom()) runs `run` for every record; `run` passes results downstream with
 * rv__df_emit() (zero, one or many times) and fails a record by returning a code after
 * rv__ctx_failf() (the runtime adds topic, partition, offset, key and the operator).
 */
struct rv__op_ops_s {
    int version; /* RV__OP_OPS_VERSION */
    rv_err_t (*run)(rv_ctx_t *ctx, rv_df_t *node, rv_value_t *value);
    /*
     * Wall-clock time passed on a partition the worker owns (to close windows of an idle
     * stream): called about every 100 ms per assigned, restored partition of node->topic, with
     * ctx->rec a record view holding only topic, partition and offset -1, ctx->key NULL and
     * ctx->timestamp = wall_ms. Set ctx->key/ctx->timestamp before emitting. May be NULL.
     */
    rv_err_t (*tick)(rv_ctx_t *ctx, rv_df_t *node, int64_t wall_ms);
    /* Frees node->op_state when the graph is destroyed. May be NULL. */
    void (*destroy)(void *op_state);
    /* Whether `run` changes the value it is given in place (so branches get copies). */
    bool mutates;
    /*
     * Checkpoint (windows): writes what the operator keeps in memory for the partitions of
     * worker store set `stores` into their stores, and forgets it; called at the start of each
     * checkpoint of that worker, before changelogs are sent. May be NULL.
     */
    rv_err_t (*flush)(rv_df_t *node, rv__stores_t *stores, rv_error_t **err);
};

/* Calls every custom operator's flush for worker store set `stores` (the first failure wins). */
RV__HIDDEN rv_err_t rv__graph_flush_ops(rv__graph_t *g, rv__stores_t *stores, rv_error_t **err);

/*
 * Adds a custom operator after `parent` with description `desc` (copied, for messages) and
 * build-time data `op_state` (node->op_state; freed by ops->destroy with the graph, also when
 * this call fails). NULL, recorded in the graph, on a bad vtable or NOMEM.
 */
RV__HIDDEN rv_df_t *rv__df_custom(rv_df_t *parent, const char *desc, const rv__op_ops_t *ops,
                                  void *op_state);

/* Runs `value` through the children of `node` (a custom operator emitting a result). */
RV__HIDDEN rv_err_t rv__df_emit(rv_ctx_t *ctx, rv_df_t *node, rv_value_t *value);

/*
 * Declares store `name` for `node` (sets node->store and returns it): the store follows the
 * partitions of node->topic. `op` names the operator for messages. Names are 1 to 100 of
 * [a-zA-Z0-9._-]; declaring a name already declared on the same topic returns that store
 * (shared), on another topic fails. NULL, recorded in the graph, on failure.
 */
RV__HIDDEN rv__store_decl_t *rv__df_store(rv_df_t *node, const char *op, const char *name);

/* Sets ctx->fail_msg from a format (as rv_ctx_fail() does). */
RV__HIDDEN void rv__ctx_failf(rv_ctx_t *ctx, const char *fmt, ...) RV_PRINTF(2, 3);
/* A line from operator `node` to the application's log, through its graph's host. */
RV__HIDDEN void rv__df_logf(rv_ctx_t *ctx, const rv_df_t *node, rv_log_level_t level,
                            const char *fmt, ...) RV_PRINTF(4, 5);

#endif
