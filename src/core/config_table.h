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
    X(AUTO_OFFSET_RESET, "auto.offset.reset", RV_CONF_ENUM, "latest", 0, 0,                     \
      "earliest|latest|error", "consumer",                                                      \
      "Where a consumer starts in a partition without a committed offset.")                     \
    X(FETCH_MAX_BYTES, "fetch.max.bytes", RV_CONF_BYTES, "4194304", 1024, 1073741824, NULL,     \
      "consumer", "Bytes of stored batches a consumer reads from one partition in one poll.")   \
    X(GROUP_CHECK_MS, "group.check.interval.ms", RV_CONF_DURATION, "200", 10, 60000, NULL,      \
      "consumer",                                                                               \
      "How often a member of a consumer group on the embedded log looks for members that "      \
      "joined or died and rebalances partitions.")                                              \
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
      "topic", "The largest batch of records a partition accepts.")

#endif
