/*
 * value_int.h: the layout of rv_value_t nodes, shared by the value model and the JSON codec.
 *
 * The JSON parser builds nodes directly (one bump allocation per node, member and item arrays
 * allocated once at their final size) and the writer reads them without function calls, so
 * both need the layout; everything else uses the accessors of rivulet/value.h. This header
 * also holds the helpers both sides must agree on: the key hash behind the object index, the
 * string classification flags and the strict UTF-8 validator. Code outside src/codec must
 * not include it, except for the unique-key object builder at its end (see there).
 */
#ifndef RV_VALUE_INT_H
#define RV_VALUE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/core_int.h"
#include "rivulet/value.h"

/* Objects with more members than this get a hash index; smaller ones are scanned linearly. */
#define RV__OBJ_INDEX_MIN 8

/* Arrays and objects hold at most this many entries (positions are 32-bit). */
#define RV__MAX_ENTRIES (UINT32_MAX - 1u)

/*
 * String flags, set on string nodes and member keys whose bytes were classified when they were
 * made (by the parser, rv_value_new_string() or rv_value_set()); a string without
 * RV__STR_VALID has not been checked, which is not the same as being invalid.
 */
enum {
    RV__STR_VALID = 1u << 0, /* the bytes are valid UTF-8 */
    RV__STR_PLAIN = 1u << 1, /* and hold no '"', '\\' or control character: copy verbatim */
    RV__STR_ASCII = 1u << 2  /* and every byte is below 0x80 */
};

/* One member of an object: the key (arena memory, NUL-terminated) and the value. */
typedef struct rv__member_s {
    const char *key;
    rv_value_t *value;
    uint32_t key_len;
    uint32_t key_flags;
} rv__member_t;

/*
 * The hash index of a large object: open addressing with linear probing over `mask + 1`
 * slots, each holding a member position plus one (0 is an empty slot). The table is kept at
 * most half full.
 */
typedef struct rv__index_s {
    uint32_t mask;
    uint32_t count;
    uint32_t slots[];
} rv__index_t;

struct rv_value_s {
    uint8_t type;  /* rv_type_t */
    uint8_t flags; /* RV__STR_* for strings */
    uint16_t reserved;
    uint32_t reserved2;
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            const char *ptr; /* followed by a NUL unless the node borrows its bytes */
            size_t len;
        } str;
        struct {
            rv_value_t **items;
            uint32_t len;
            uint32_t cap;
        } arr;
        struct {
            rv__member_t *members;
            rv__index_t *index; /* present whenever len > RV__OBJ_INDEX_MIN */
            uint32_t len;
            uint32_t cap;
        } obj;
    } u;
};

/*
 * Nodes of the scalar types (null, bool, int, double) are allocated short: only the header and
 * the 8 bytes of the union those types use exist, which halves the memory of number-heavy
 * trees. Code must therefore never read, copy or clear a whole rv_value_t of a scalar type,
 * only the union member its type names.
 */
#define RV__SHORT_NODE_SIZE (offsetof(struct rv_value_s, u) + 8u)
_Static_assert(RV__SHORT_NODE_SIZE == 16, "scalar nodes are 16 bytes");
_Static_assert(sizeof(struct rv_value_s) == 32, "other nodes are 32 bytes");

/* The bytes a node of type `t` occupies. */
static inline size_t rv__node_size(rv_type_t t) {
    return t <= RV_TYPE_DOUBLE ? RV__SHORT_NODE_SIZE : sizeof(struct rv_value_s);
}

/* Loads 8 bytes in native order from possibly unaligned memory. */
static inline uint64_t rv__load64(const void *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/*
 * Flags, in the high bit of each byte of the result, every byte of the 8-byte word `v` that a
 * JSON string cannot hold verbatim or that needs a closer look: '"', '\\', control characters
 * (below 0x20) and bytes 0x80 and above. Bytes above the first flagged one may be flagged
 * spuriously (a borrow carries upward), so only the lowest flag is meaningful.
 */
static inline uint64_t rv__swar_special(uint64_t v) {
    const uint64_t ones = 0x0101010101010101ull;
    const uint64_t high = 0x8080808080808080ull;
    uint64_t q = v ^ (ones * '"');
    uint64_t b = v ^ (ones * '\\');
    uint64_t lt = (v - ones * 0x20) & ~v;
    uint64_t zq = (q - ones) & ~q;
    uint64_t zb = (b - ones) & ~b;
    return (lt | zq | zb | v) & high;
}

/* The index (0..7, in memory order) of the lowest flagged byte of a non-zero SWAR mask. */
static inline unsigned rv__swar_first(uint64_t mask) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (unsigned)__builtin_clzll(mask) >> 3;
#else
    return (unsigned)__builtin_ctzll(mask) >> 3;
#endif
}

/*
 * Grows a scratch stack that starts in caller memory `local` (elements of `elem` bytes) to at
 * least `need` elements, moving it to the heap the first time. Returns false when memory is
 * exhausted (the old buffer stays valid). Free a heap buffer with free() when *buf != local.
 */
RV__HIDDEN bool rv__stack_grow(void **buf, size_t *cap, size_t elem, const void *local,
                               size_t need);

/* The per-process seed of the key hash (derived from an address, so it varies with ASLR). */
RV__HIDDEN uint64_t rv__key_seed(void);

/*
 * The hash of an object key: 8 bytes per step through a multiply-xorshift mix, seeded per
 * process so that crafted inputs cannot be prepared in advance to collide. The last partial
 * word is read with overlapping fixed-size loads (no call, no byte loop), which still makes
 * the result a function of the key's bytes and length only.
 */
static inline uint64_t rv__key_hash(const char *k, size_t n, uint64_t seed) {
    const uint64_t m1 = 0x9E3779B97F4A7C15ull;
    const uint64_t m2 = 0xBF58476D1CE4E5B9ull;
    const unsigned char *p = (const unsigned char *)k;
    uint64_t h = seed ^ ((uint64_t)n * m1);
    uint64_t w;
    if (n >= 8) {
        const unsigned char *last = p + n - 8;
        while (p < last) {
            h = (h ^ rv__load64(p)) * m2;
            h ^= h >> 29;
            p += 8;
        }
        w = rv__load64(last);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        w = (uint64_t)b << 32 | a;
    } else if (n > 0) {
        w = (uint64_t)p[0] | (uint64_t)p[n >> 1] << 8 | (uint64_t)p[n - 1] << 16;
    } else {
        w = 0;
    }
    h = (h ^ w) * m2;
    h ^= h >> 32;
    h *= m1;
    h ^= h >> 29;
    return h;
}

/*
 * The length of the valid UTF-8 sequence (2, 3 or 4) that starts with the byte at `p`, which
 * must be 0x80 or above, or 0 when the sequence is invalid: a continuation or overlong lead
 * byte, a missing continuation, an encoded surrogate or a code point above U+10FFFF. Never reads
 * at or past `end`.
 */
static inline size_t rv__utf8_seq(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    size_t avail = (size_t)(end - p);
    if (c >= 0xC2 && c <= 0xDF) {
        return (avail >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3) {
            return 0;
        }
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xE0) {
            lo = 0xA0; /* overlong below U+0800 */
        } else if (c == 0xED) {
            hi = 0x9F; /* surrogates U+D800..U+DFFF */
        }
        return (p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4) {
            return 0;
        }
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xF0) {
            lo = 0x90; /* overlong below U+10000 */
        } else if (c == 0xF4) {
            hi = 0x8F; /* above U+10FFFF */
        }
        return (p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80) ? 4 : 0;
    }
    return 0;
}

/*
 * Classifies `n` bytes as RV__STR_* flags: 0 when they are not valid UTF-8, else RV__STR_VALID
 * with RV__STR_PLAIN and RV__STR_ASCII as they apply.
 */
RV__HIDDEN unsigned rv__str_classify(const char *s, size_t n);

/*
 * Builds (or rebuilds, larger) the hash index of `obj` in `arena` from its members.
 * RV_ERR_NOMEM when memory is exhausted (the object keeps its old index).
 */
RV__HIDDEN rv_err_t rv__obj_build_index(rv_arena_t *arena, rv_value_t *obj);

/*
 * Makes `obj` (an object node with no members) own the `n` members in `scratch`, as the parser
 * hands them over: duplicate keys are merged (the last value wins, at the first key's position),
 * the members are copied into one arena array of the final size, and the index is built when
 * the object is large. `scratch` is reordered. RV_ERR_NOMEM when memory is exhausted.
 */
RV__HIDDEN rv_err_t rv__obj_adopt(rv_arena_t *arena, rv_value_t *obj, rv__member_t *scratch,
                                  size_t n, uint64_t seed);

/*
 * Building objects whose keys are known to be distinct, without the lookup, copy and
 * classification rv_value_set() does per member (telemetry frames: one key per column, the same
 * keys in every row). This is the one part of this header code outside src/codec may use
 * (src/telemetry/telemetry_json.c); it needs no node layout.
 *
 * rv__vkey_make() copies a key into `arena` once and classifies it; the key then serves any
 * number of objects of that arena (members share its bytes, which nothing ever modifies).
 * rv__value_obj_push_unique() appends a member, growing the member array when full; the caller
 * guarantees the object holds no member with that key. Until rv__value_obj_seal() the object
 * may lack its hash index, so it must be sealed before anything reads or changes it.
 * Each returns false (push, seal: RV_ERR_NOMEM or RV_ERR_LIMIT) and leaves the object as it
 * was when memory is exhausted.
 */
typedef struct rv__vkey_s {
    const char *key; /* NUL-terminated, in the arena */
    uint32_t len;
    uint32_t flags; /* RV__STR_* */
} rv__vkey_t;

RV__HIDDEN bool rv__vkey_make(rv_arena_t *arena, const char *key, size_t len, rv__vkey_t *out);
RV__HIDDEN rv_err_t rv__value_obj_push_unique(rv_arena_t *arena, rv_value_t *obj,
                                              const rv__vkey_t *key, rv_value_t *v);
RV__HIDDEN rv_err_t rv__value_obj_seal(rv_arena_t *arena, rv_value_t *obj);

#endif
