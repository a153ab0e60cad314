/*
 * app_int.h: the application runtime's internals, shared by the files of src/app.
 *
 * app.c owns the application object (configuration, topics, the graph, metrics), run.c the run
 * (preparing topics, starting workers, stop conditions, signals), worker.c a worker's loop
 * (poll, process, checkpoint, rebalance callbacks) and policy.c what happens to a record that
 * fails (stop, skip, dead-letter). Nothing declared here is exported from the library.
 */
#ifndef RV_APP_INT_H
#define RV_APP_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "codec/serde.h"
#include "core/config_int.h"
#include "rivulet/app.h"
#include "state/state_int.h"
#include "stream/stream_int.h"

/* The error policies, in the order of processing.error.policy's values. */
typedef enum rv__policy_e { RV__POLICY_STOP, RV__POLICY_SKIP, RV__POLICY_DEAD_LETTER } rv__policy_t;

/* What a topic is to the application (flags). */
enum {
    RV__TOPIC_INPUT = 1 << 0,       /* read: it has dataframes */
    RV__TOPIC_OUTPUT = 1 << 1,      /* written by to_topic */
    RV__TOPIC_REPARTITION = 1 << 2, /* an internal topic of a group_by */
    RV__TOPIC_DEAD_LETTER = 1 << 3, /* the dead-letter topic */
    RV__TOPIC_DYNAMIC = 1 << 4,     /* declared at run time by to_topic_fn */
    RV__TOPIC_CHANGELOG = 1 << 5    /* a state store's compacted changelog */
};

struct rv_topic_s {
    rv_app_t *app;
    char *name;
    const rv__serde_t *key_serde;
    const rv__serde_t *value_serde;
    int32_t partitions;    /* asked for when the application creates it (0 = 1) */
    rv_conf_t *topic_conf; /* owned; NULL = defaults */
    rv_timestamp_fn timestamp_fn;
    void *timestamp_opaque;
    int kind;                   /* RV__TOPIC_* */
    rv_topic_t *repartition_of; /* the source a repartition topic copies its partition count from */
    /* Set by the run. */
    int32_t actual_partitions; /* on the broker */
    bool ready;                /* exists on the broker */
    rv_df_t **roots;           /* the dataframes reading it */
    size_t nroots;
    int input_index; /* position among the subscribed topics, or -1 */
};

/* One partition a worker reads: where its processing is. */
typedef struct rv__part_s {
    bool assigned;
    bool dirty;            /* processed records not committed yet */
    int64_t next;          /* the offset after the last record processed (or the resume offset) */
    int64_t committed;     /* the last offset committed by this worker */
    bool restoring;        /* paused until its stores are restored */
    uint64_t held_batch;   /* the batch in which its held-back records were sought back */
    uint64_t rolled_batch; /* the batch in which an aborted transaction sought it back */
} rv__part_t;

/* A worker: one thread with its consumer, producer, arena and counters. */
typedef struct rv__worker_s {
    rv_app_t *app;
    int index;
    pthread_t thread;
    bool started;
    rv_consumer_t *consumer;
    rv_producer_t *producer;
    rv_arena_t *arena;
    rv_ctx_t ctx;
    rv__counters_t counters;
    rv_strbuf_t key_buf; /* encoding scratch, reused per record */
    rv_strbuf_t value_buf;
    /* Offsets: parts[input_index][partition], for nparts_topics input topics. */
    rv__part_t **parts;
    int32_t *nparts;
    size_t nparts_topics;
    rv_topic_t **inputs;              /* the input topics by input_index */
    rv_topic_t *last_topic;           /* the topic of the previous record (a lookup cache) */
    rv_topic_partition_t *commit_buf; /* offsets being committed, reused */
    size_t commit_cap;
    int64_t since_checkpoint; /* records processed since the last checkpoint */
    int64_t last_checkpoint_ms;
    int64_t last_lag_ms;
    bool produced;       /* sent records since the last flush */
    bool commit_pending; /* a checkpoint's offset commit was refused: retry after each poll */
    /* Exactly-once: the transaction of the records produced since the last checkpoint. */
    bool in_txn;
    int aborts_in_row; /* transactions aborted since the last one committed */
    /* Delivery failures since the last checkpoint (from the delivery callback). */
    int64_t delivery_failures;
    char delivery_error[512];
    rv_err_t delivery_code;
    /* A small cache of topics found by name (to_topic_fn). */
    rv_topic_t *recent[8];
    unsigned recent_next;
    /* State: the stores of the partitions this worker owns (NULL without stateful operators). */
    rv__stores_t *stores;
    bool restoring; /* stores are being opened or restored */
    bool ticks;     /* the graph has operators that want wall-clock ticks */
    int64_t last_tick_ms;
    uint64_t batch_no;
    /* until_end: guarded by app->mu. */
    bool idle;
    uint64_t idle_activity;
    _Atomic int32_t assigned; /* partitions assigned now */
} rv__worker_t;

struct rv_app_s {
    rv_broker_t *broker;
    rv_conf_t *conf;
    char *group;
    rv_logger_t log;
    rv_log_cb log_cb;
    void *log_opaque;
    void (*on_error)(void *opaque, rv_err_t code, const char *message);
    void *error_opaque;
    /* Settings from the configuration. */
    int64_t commit_interval_ms;
    int64_t commit_every;
    rv__policy_t policy;
    char *dead_letter_name;
    int threads;
    char *state_dir;
    int64_t state_lock_timeout_ms;
    int64_t state_buffer_max;
    bool eos;           /* processing.guarantee=exactly-once: transactional checkpoints */
    char *txn_prefix;   /* the transactional.id prefix of the workers' producers (exactly-once) */
    char *rocksdb_opts; /* the rocksdb.* properties as "name=value;...", or NULL */
    int json_max_depth;
    /* Topics, in the order they were declared. */
    rv_topic_t **topics;
    size_t ntopics;
    size_t topics_cap;
    rv_topic_t *dead_letter;
    rv__graph_t *graph;
    /* The run. */
    pthread_mutex_t mu; /* topics at run time, the run's error, until_end, workers */
    _Atomic int stop;   /* 1: stop after a final checkpoint */
    _Atomic int running;
    rv__worker_t *workers;
    int nworkers;
    rv_error_t *run_err; /* the first error that stops the run */
    int64_t count_limit;
    _Atomic int64_t claimed; /* source records claimed for processing (count limit) */
    int64_t deadline_ms;     /* 0 = none */
    bool until_end;
    uint64_t activity;        /* until_end: bumped when a flush made records visible */
    int32_t input_partitions; /* until_end: partitions of every subscribed topic */
    /* Counters of finished runs, and the checkpoint durations of all. */
    rv__counters_t totals;
    _Atomic int64_t checkpoint_last_us;
    _Atomic int64_t checkpoint_max_us;
};

/* run.c: records the error that stops the run (the first one wins) and asks every worker to
 * stop. Takes ownership of `err`. */
RV__HIDDEN void rv__app_fail(rv_app_t *app, rv_error_t *err);

/* run.c: whether the run must stop (asked, failed, or a limit reached). */
static inline bool rv__app_stopping(rv_app_t *app) {
    return atomic_load_explicit(&app->stop, memory_order_relaxed) != 0;
}

/* app.c: finds or declares a topic at run time (to_topic_fn), making sure it exists on the
 * broker. Thread-safe. */
RV__HIDDEN rv_err_t rv__app_topic_at_run(rv_app_t *app, const char *name, size_t len,
                                         const rv_topic_opts_t *opts, rv_topic_t **out, char *why,
                                         size_t why_size);

/* app.c: makes sure `t` exists on the broker (creating it when missing) and learns its
 * partition count. */
RV__HIDDEN rv_err_t rv__app_topic_ensure(rv_app_t *app, rv_topic_t *t, int32_t partitions,
                                         rv_error_t **err);

/* app.c: names every store's changelog "<group>--changelog--<topic>--<store>" and makes it
 * exist (compacted, with its topic's partition count). Run after the input topics are ready. */
RV__HIDDEN rv_err_t rv__app_changelogs(rv_app_t *app, rv_error_t **err);

/* app.c: the graph host's build-time hook: declares the repartition topic
 * "<group>--repartition--<source>--<name>" of a group_by. */
RV__HIDDEN rv_topic_t *rv__app_repartition_topic(void *opaque, rv_topic_t *source, const char *name,
                                                 rv_error_t **err);

/* worker.c: the worker's thread body (also run in the caller's thread for worker 0). */
RV__HIDDEN void *rv__worker_main(void *arg);

/* worker.c: the runtime's side of the graph (produce, topics by name, repartition topics). */
extern const rv__df_host_t rv__app_host;

/* policy.c: applies the error policy to the record in w->ctx that failed with `code` and the
 * reason `why`. Returns RV_OK when processing goes on (skipped, dead-lettered), or the code
 * when the run must stop (then the run's error is set). */
RV__HIDDEN rv_err_t rv__policy_apply(rv__worker_t *w, rv_err_t code, const char *why);

/* worker.c: produces a record through the worker's producer, waiting out a full queue. */
RV__HIDDEN rv_err_t rv__worker_send(rv__worker_t *w, const rv_record_t *rec);

#endif
