/*
 * rivulet/hash.h: the checksums and hashes rivulet shares with other systems.
 *
 * CRC32C (Castagnoli) guards every batch of the embedded log, as in Kafka's record batches.
 * murmur2 is Kafka's key hash: rv_murmur2_partition() picks the same partition as the Java
 * client's default partitioner (and librdkafka's murmur2 partitioners) for the same key bytes.
 */
#ifndef RIVULET_HASH_H
#define RIVULET_HASH_H

#include "common.h"

RV_BEGIN_DECLS

/**
 * Continues a CRC32C over `len` bytes: start with `crc` 0, and pass the previous result to
 * checksum data in pieces. Uses the CPU's CRC32 instruction when it has one.
 */
RV_API uint32_t rv_crc32c(uint32_t crc, const void *data, size_t len);

/** Kafka's murmur2 hash (seed 0x9747b28c) of `len` bytes, as a signed 32-bit value. */
RV_API int32_t rv_murmur2(const void *key, size_t len);

/**
 * The partition Kafka's default partitioner gives a non-null key:
 * (murmur2(key) & 0x7fffffff) % partition_count. `partition_count` must be at least 1.
 */
RV_API int32_t rv_murmur2_partition(const void *key, size_t len, int32_t partition_count);

RV_END_DECLS

#endif
