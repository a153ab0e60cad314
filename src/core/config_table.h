/*
 * config_table.h: the one table of rivulet's configuration properties.
 *
 * Each row: X(ID, name, type, default, min, max, accepted values, scope, description).
 * config.c expands it into the public rv_conf_property() table and into the RV_CONF_ID_*
 * enum that library code uses for typed, lookup-free access (rv__conf_int() and friends).
 * Add a property here only together with the code that reads it; docs/configuration.md is
 * generated from this table (`make docs`) and a test checks it is current.
 */
#ifndef RV_CONFIG_TABLE_H
#define RV_CONFIG_TABLE_H

#define RV_CONF_TABLE(X)                                                                       \
    X(LOG_LEVEL, "log.level", RV_CONF_ENUM, "notice", 0, 0, "error|warning|notice|info|debug",   \
      "client", "The most detailed log level delivered to the log callback.")                  \
    X(JSON_MAX_DEPTH, "json.max.depth", RV_CONF_INT, "512", 1, 100000, NULL, "codec",            \
      "The deepest nesting of arrays and objects the JSON parser accepts; deeper input is an "  \
      "error rather than a risk to the stack or memory.")                                     \
    X(CLIENT_ID, "client.id", RV_CONF_STRING, "rivulet", 0, 0, NULL, "client",                  \
      "A name for this client, shown in logs and sent to Kafka brokers.")                       \
    X(BROKER_AVAILABILITY_MS, "broker.availability.timeout.ms", RV_CONF_DURATION, "60000", 100, \
      86400000, NULL, "client",                                                                 \
      "How long a Kafka client waits for an unreachable cluster: past it, polls, flushes and "  \
      "full sends fail with RV_ERR_TRANSPORT naming the bootstrap servers, and records not "   \
      "acknowledged in that time fail in their delivery report.")                               \
    X(LOCAL_FSYNC_POLICY, "local.fsync.policy", RV_CONF_ENUM, "interval", 0, 0,                 \
      "never|interval|batch", "client",                                                         \
      "When the embedded log fsyncs appended batches: never (the OS writes back; a killed "     \
      "process loses nothing, a power cut may), every local.fsync.interval.ms with group "      \
      "commit, or before every batch is acknowledged.")                                         \
    X(LOCAL_FSYNC_INTERVAL_MS, "local.fsync.interval.ms", RV_CONF_DURATION, "1000", 1,          \
      3600000, NULL, "client", "The fsync period of the interval policy.")                      \
    X(LINGER_MS, "linger.ms", RV_CONF_DURATION, "5", 0, 60000, NULL, "producer",                \
      "How long a producer waits for more records before writing a batch that is not full.")    \
    X(BATCH_SIZE, "batch.size", RV_CONF_BYTES, "262144", 1, 1073741824, NULL, "producer",       \
      "A partition's batch is written once it holds this many bytes of records.")               \
    X(QUEUE_MAX_BYTES, "queue.buffering.max.bytes", RV_CONF_BYTES, "67108864", 1024,            \
      17179869184, NULL, "producer",                                                            \
      "Bytes of records a producer holds before rv_producer_send() answers AGAIN.")             \
    X(TRANSACTIONAL_ID, "transactional.id", RV_CONF_STRING, "", 0, 0, NULL, "producer",        \
      "Makes a producer (kafka: or local:) transactional under this id (unique per producing "  \
      "process; a new producer with the same id fences the old one); empty for none. An "       \
      "application under exactly-once uses it as the prefix of its workers' ids (default: the " \
      "group), and ignores it under at-least-once.")                                            \
    X(TRANSACTION_MAX_BYTES, "transaction.max.bytes", RV_CONF_BYTES, "67108864", 1024,          \
      17179869184, NULL, "producer",                                                            \
      "On local:, the bytes of records one transaction may hold (they wait in memory until the " \
      "commit); past it rv_producer_send() answers RV_ERR_LIMIT.")                              \
    X(MESSAGE_SPLIT, "message.split", RV_CONF_BOOL, "true", 0, 0, NULL, "producer",             \
      "Whether a producer sends a record larger than message.split.bytes as chunk records "     \
      "that consumers reassemble (true), or refuses it with RV_ERR_LIMIT (false).")             \
    X(MESSAGE_SPLIT_BYTES, "message.split.bytes", RV_CONF_BYTES, "1000000", 1024, 1073741824,  \
      NULL, "producer",                                                                         \
      "The largest record a producer sends whole, counting its key, value and headers plus 64 " \
      "bytes per record and 16 per header; every chunk of a larger value fits in it too. Keep " \
      "it below the topic's max.message.bytes and Kafka's message.max.bytes.")                  \
    X(AUTO_OFFSET_RESET, "auto.offset.reset", RV_CONF_ENUM, "latest", 0, 0,                     \
      "earliest|latest|error", "consumer",                                                      \
      "Where a consumer starts in a partition without a committed offset.")                     \
    X(FETCH_MAX_BYTES, "fetch.max.bytes", RV_CONF_BYTES, "1048576", 1024, 1073741824, NULL,     \
      "consumer", "Bytes of stored batches a consumer reads from one partition in one poll.")   \
    X(GROUP_CHECK_MS, "group.check.interval.ms", RV_CONF_DURATION, "200", 10, 60000, NULL,      \
      "consumer",                                                                               \
      "How often a member of a consumer group on the embedded log looks for members that "      \
      "joined or died and rebalances partitions.")                                              \
    X(MESSAGE_SPLIT_TIMEOUT_MS, "message.split.timeout.ms", RV_CONF_DURATION, "60000", 10,      \
      86400000, NULL, "consumer",                                                               \
      "A split value whose chunks have not all arrived this long after its first one is "      \
      "dropped and reported (log and on_error), never delivered in part.")                      \
    X(MESSAGE_SPLIT_MAX_BYTES, "message.split.max.bytes", RV_CONF_BYTES, "268435456", 1024,     \
      17179869184, NULL, "consumer",                                                            \
      "Bytes a consumer holds for split values being reassembled; past it the oldest "         \
      "incomplete value is dropped and reported, and a larger value is never started.")        \
    X(MAINTENANCE_MS, "log.maintenance.interval.ms", RV_CONF_DURATION, "30000", 10, 86400000,  \
      NULL, "client",                                                                           \
      "How often the embedded log enforces retention and compacts compacted topics.")           \
    X(RETENTION_MS, "retention.ms", RV_CONF_DURATION, "604800000", -1, INT64_MAX, NULL,         \
      "topic",                                                                                  \
      "Closed segments whose newest record is older than this are deleted; -1 keeps them "      \
      "forever.")                                                                               \
    X(RETENTION_BYTES, "retention.bytes", RV_CONF_BYTES, "-1", -1, INT64_MAX, NULL, "topic",    \
      "A partition keeps at most this many bytes, deleting its oldest closed segments; -1 "     \
      "means no limit.")                                                                        \
    X(CLEANUP_POLICY, "cleanup.policy", RV_CONF_ENUM, "delete", 0, 0,                           \
      "delete|compact|compact,delete", "topic",                                                 \
      "delete enforces retention; compact keeps the latest record of each key (changelogs).")   \
    X(DELETE_RETENTION_MS, "delete.retention.ms", RV_CONF_DURATION, "86400000", 0, INT64_MAX,   \
      NULL, "topic", "How long compaction keeps a tombstone (a record with no value).")        \
    X(COMPRESSION_TYPE, "compression.type", RV_CONF_ENUM, "none", 0, 0, "none|lz4|zstd",        \
      "topic", "The codec that compresses stored batches.")                                     \
    X(SEGMENT_BYTES, "segment.bytes", RV_CONF_BYTES, "134217728", 4096, 4294967295, NULL,       \
      "topic", "A partition's active segment is closed and a new one started past this size.")  \
    X(SEGMENT_MS, "segment.ms", RV_CONF_DURATION, "604800000", 1000, INT64_MAX, NULL, "topic",  \
      "A segment older than this is closed, so retention can delete it.")                       \
    X(MAX_MESSAGE_BYTES, "max.message.bytes", RV_CONF_BYTES, "1048588", 64, 1073741824, NULL,   \
      "topic", "The largest batch of records a partition accepts.")                             \
    X(COMMIT_INTERVAL_MS, "commit.interval.ms", RV_CONF_DURATION, "5000", 0, 86400000, NULL,    \
      "app",                                                                                    \
      "An application checkpoints this often: it flushes its producers and sinks, then "       \
      "commits the offsets of the records it processed; 0 checkpoints after every batch.")     \
    X(COMMIT_EVERY, "commit.every", RV_CONF_INT, "0", 0, INT64_MAX, NULL, "app",                \
      "An application worker also checkpoints after processing this many records since its "   \
      "last checkpoint; 0 turns the count off.")                                               \
    X(PROCESSING_GUARANTEE, "processing.guarantee", RV_CONF_ENUM, "at-least-once", 0, 0,        \
      "at-least-once|exactly-once", "app",                                                      \
      "at-least-once: a crash may process a record again, never loses one. exactly-once: "     \
      "outputs, state changelogs and offsets commit in one transaction per checkpoint "         \
      "(kafka: and local: only; each worker's transactional.id is <transactional.id or "        \
      "group>-<worker>).")                                                                      \
    X(PROCESSING_ERROR_POLICY, "processing.error.policy", RV_CONF_ENUM, "stop", 0, 0,           \
      "stop|skip|dead-letter", "app",                                                           \
      "What an application does with a record it cannot decode or whose user function "        \
      "fails: stop (rv_app_run() returns the error, naming topic, partition, offset and key), " \
      "skip (logged and counted), or dead-letter (the original record goes to "                \
      "dead.letter.topic with the error in headers).")                                         \
    X(DEAD_LETTER_TOPIC, "dead.letter.topic", RV_CONF_STRING, "", 0, 0, NULL, "app",            \
      "The topic that receives failed records under the dead-letter policy; empty means "      \
      "\"<group>--dead-letter\".")                                                              \
    X(APP_THREADS, "app.threads", RV_CONF_INT, "1", 1, 64, NULL, "app",                         \
      "Worker threads of an application; each is a member of the consumer group with its "    \
      "own consumer, producer and arena, and processes the partitions assigned to it.")        \
    X(STATE_DIR, "state.dir", RV_CONF_STRING, "./rivulet-state", 0, 0, NULL, "app",             \
      "The directory of an application's local state stores: one RocksDB directory per "      \
      "store and partition, in the directory state.dir/GROUP/TOPIC/STORE/PARTITION.")         \
    X(STATE_LOCK_TIMEOUT_MS, "state.lock.timeout.ms", RV_CONF_DURATION, "60000", 0, 86400000,   \
      NULL, "app",                                                                              \
      "How long a worker waits for a store's RocksDB directory that another process (or "      \
      "worker) still holds, after a partition moved to it; past it the run fails with "         \
      "RV_ERR_BUSY naming the directory.")                                                    \
    X(STATE_BUFFER_MAX_BYTES, "state.buffer.max.bytes", RV_CONF_BYTES, "67108864", 4096,        \
      17179869184, NULL, "app",                                                                 \
      "Memory a worker's state stores may hold in changes not yet checkpointed; past it the "  \
      "worker checkpoints at once, whatever commit.interval.ms says.")

#endif
