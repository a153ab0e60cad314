/*
 * murmur2.c: Kafka's key hash and default partitioner.
 *
 * The arithmetic follows the Java client's Utils.murmur2 (32-bit MurmurHash2 with seed
 * 0x9747b28c over little-endian 4-byte words), done in unsigned integers so C's overflow
 * rules match Java's wrapping ints. The result is cast to int32_t only at the end.
 */
#include "core/core_int.h"
#include "rivulet/hash.h"

int32_t rv_murmur2(const void *key, size_t len) {
    const unsigned char *p = key;
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t words = len / 4;
    for (size_t i = 0; i < words; i++, p += 4) {
        uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (len & 3) {
        case 3:
            h ^= (uint32_t)p[2] << 16;
            /* fall through */
        case 2:
            h ^= (uint32_t)p[1] << 8;
            /* fall through */
        case 1:
            h ^= (uint32_t)p[0];
            h *= m;
            break;
        default:
            break;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

int32_t rv_murmur2_partition(const void *key, size_t len, int32_t partition_count) {
    if (partition_count < 1) {
        return 0;
    }
    uint32_t positive = (uint32_t)rv_murmur2(key, len) & 0x7fffffffu;
    return (int32_t)(positive % (uint32_t)partition_count);
}
