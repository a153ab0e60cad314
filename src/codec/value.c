/*
 * value.c: the rv_value_t tree: constructors, accessors, objects with ordered members and a
 * hash index, structural equality and deep copy.
 *
 * Every node and every byte it refers to comes from an arena; nothing here calls malloc except
 * the scratch stacks of rv_value_equal() and rv_value_copy() on trees deeper than their
 * on-stack buffers. Walks over trees are iterative, so a deep tree cannot overflow the C stack.
 * Objects keep members in insertion order in one array; objects above RV__OBJ_INDEX_MIN members
 * also carry an open-addressing index of member positions, updated in place by set and remove.
 */
#include <math.h>
#include <stdlib.h>

#include "codec/value_int.h"

/* ---- small helpers ------------------------------------------------------------------------ */

static const char seed_anchor = 0;

uint64_t rv__key_seed(void) {
    uint64_t x = (uint64_t)(uintptr_t)&seed_anchor;
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    return x;
}

bool rv__stack_grow(void **buf, size_t *cap, size_t elem, const void *local, size_t need) {
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem) {
            return false;
        }
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / elem) {
        return false;
    }
    void *nb;
    if (*buf == local) {
        nb = malloc(ncap * elem);
        if (nb && *cap) {
            memcpy(nb, local, *cap * elem);
        }
    } else {
        nb = realloc(*buf, ncap * elem);
    }
    if (!nb) {
        return false;
    }
    *buf = nb;
    *cap = ncap;
    return true;
}

unsigned rv__str_classify(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + n;
    unsigned flags = RV__STR_VALID | RV__STR_PLAIN | RV__STR_ASCII;
    while (p < end) {
        if (end - p >= 8) {
            uint64_t m = rv__swar_special(rv__load64(p));
            if (!m) {
                p += 8;
                continue;
            }
            p += rv__swar_first(m);
        }
        unsigned c = *p;
        if (c < 0x80) {
            if (c < 0x20 || c == '"' || c == '\\') {
                flags &= ~(unsigned)RV__STR_PLAIN;
            }
            p++;
            continue;
        }
        size_t k = rv__utf8_seq(p, end);
        if (!k) {
            return 0;
        }
        flags &= ~(unsigned)RV__STR_ASCII;
        p += k;
    }
    return flags;
}

static inline rv_value_t *node_new(rv_arena_t *arena, rv_type_t type) {
    if (RV_UNLIKELY(!arena)) {
        return NULL;
    }
    size_t size = rv__node_size(type);
    rv_value_t *v = rv__arena_alloc(arena, size);
    if (RV_LIKELY(v != NULL)) {
        memset(v, 0, size);
        v->type = (uint8_t)type;
    }
    return v;
}

/* Copies `len` bytes into the arena followed by a NUL. */
static char *dup_nul(rv_arena_t *arena, const void *s, size_t len) {
    if (len == SIZE_MAX) {
        return NULL;
    }
    char *p = rv__arena_alloc(arena, len + 1);
    if (p) {
        if (len) {
            memcpy(p, s, len);
        }
        p[len] = 0;
    }
    return p;
}

const char *rv_type_name(rv_type_t type) {
    switch (type) {
        case RV_TYPE_NULL:
            return "null";
        case RV_TYPE_BOOL:
            return "bool";
        case RV_TYPE_INT:
            return "int";
        case RV_TYPE_DOUBLE:
            return "double";
        case RV_TYPE_STRING:
            return "string";
        case RV_TYPE_BYTES:
            return "bytes";
        case RV_TYPE_ARRAY:
            return "array";
        case RV_TYPE_OBJECT:
            return "object";
    }
    return "unknown";
}

/* ---- constructors ------------------------------------------------------------------------- */

rv_value_t *rv_value_new_null(rv_arena_t *arena) {
    return node_new(arena, RV_TYPE_NULL);
}

rv_value_t *rv_value_new_bool(rv_arena_t *arena, bool b) {
    rv_value_t *v = node_new(arena, RV_TYPE_BOOL);
    if (v) {
        v->u.b = b;
    }
    return v;
}

rv_value_t *rv_value_new_int(rv_arena_t *arena, int64_t i) {
    rv_value_t *v = node_new(arena, RV_TYPE_INT);
    if (v) {
        v->u.i = i;
    }
    return v;
}

rv_value_t *rv_value_new_double(rv_arena_t *arena, double d) {
    rv_value_t *v = node_new(arena, RV_TYPE_DOUBLE);
    if (v) {
        v->u.d = d;
    }
    return v;
}

rv_value_t *rv_value_new_string(rv_arena_t *arena, const char *s, size_t len) {
    if (!s && len) {
        return NULL;
    }
    rv_value_t *v = node_new(arena, RV_TYPE_STRING);
    if (!v) {
        return NULL;
    }
    char *copy = dup_nul(arena, s, len);
    if (!copy) {
        return NULL;
    }
    v->u.str.ptr = copy;
    v->u.str.len = len;
    v->flags = (uint8_t)rv__str_classify(copy, len);
    return v;
}

rv_value_t *rv_value_new_string_ref(rv_arena_t *arena, const char *s, size_t len) {
    if (!s && len) {
        return NULL;
    }
    rv_value_t *v = node_new(arena, RV_TYPE_STRING);
    if (v) {
        /* Borrowed bytes are not classified: the owner might still change them. */
        v->u.str.ptr = len ? s : "";
        v->u.str.len = len;
    }
    return v;
}

rv_value_t *rv_value_new_bytes(rv_arena_t *arena, const void *data, size_t len) {
    if (!data && len) {
        return NULL;
    }
    rv_value_t *v = node_new(arena, RV_TYPE_BYTES);
    if (!v) {
        return NULL;
    }
    char *copy = dup_nul(arena, data, len);
    if (!copy) {
        return NULL;
    }
    v->u.str.ptr = copy;
    v->u.str.len = len;
    return v;
}

rv_value_t *rv_value_new_array(rv_arena_t *arena, size_t capacity) {
    if (capacity > RV__MAX_ENTRIES) {
        return NULL;
    }
    rv_value_t *v = node_new(arena, RV_TYPE_ARRAY);
    if (v && capacity) {
        v->u.arr.items = rv__arena_alloc(arena, capacity * sizeof(rv_value_t *));
        if (!v->u.arr.items) {
            return NULL;
        }
        v->u.arr.cap = (uint32_t)capacity;
    }
    return v;
}

rv_value_t *rv_value_new_object(rv_arena_t *arena, size_t capacity) {
    if (capacity > RV__MAX_ENTRIES) {
        return NULL;
    }
    rv_value_t *v = node_new(arena, RV_TYPE_OBJECT);
    if (v && capacity) {
        v->u.obj.members = rv__arena_alloc(arena, capacity * sizeof(rv__member_t));
        if (!v->u.obj.members) {
            return NULL;
        }
        v->u.obj.cap = (uint32_t)capacity;
    }
    return v;
}

/* ---- reading ------------------------------------------------------------------------------ */

rv_type_t rv_value_type(const rv_value_t *v) {
    return v ? (rv_type_t)v->type : RV_TYPE_NULL;
}

bool rv_value_bool(const rv_value_t *v) {
    return v && v->type == RV_TYPE_BOOL && v->u.b;
}

int64_t rv_value_int(const rv_value_t *v) {
    if (!v) {
        return 0;
    }
    if (v->type == RV_TYPE_INT) {
        return v->u.i;
    }
    if (v->type == RV_TYPE_DOUBLE) {
        double d = v->u.d;
        if (isnan(d)) {
            return 0;
        }
        if (d >= 9223372036854775808.0) {
            return INT64_MAX;
        }
        if (d <= -9223372036854775808.0) {
            return INT64_MIN;
        }
        return (int64_t)d;
    }
    return 0;
}

double rv_value_double(const rv_value_t *v) {
    if (!v) {
        return 0.0;
    }
    if (v->type == RV_TYPE_DOUBLE) {
        return v->u.d;
    }
    if (v->type == RV_TYPE_INT) {
        return (double)v->u.i;
    }
    return 0.0;
}

const char *rv_value_str(const rv_value_t *v, size_t *len) {
    if (v && (v->type == RV_TYPE_STRING || v->type == RV_TYPE_BYTES)) {
        if (len) {
            *len = v->u.str.len;
        }
        return v->u.str.ptr;
    }
    if (len) {
        *len = 0;
    }
    return NULL;
}

size_t rv_value_len(const rv_value_t *v) {
    if (!v) {
        return 0;
    }
    switch (v->type) {
        case RV_TYPE_ARRAY:
            return v->u.arr.len;
        case RV_TYPE_OBJECT:
            return v->u.obj.len;
        case RV_TYPE_STRING:
        case RV_TYPE_BYTES:
            return v->u.str.len;
        default:
            return 0;
    }
}

/* ---- arrays ------------------------------------------------------------------------------- */

rv_value_t *rv_value_at(const rv_value_t *array, size_t index) {
    if (!array || array->type != RV_TYPE_ARRAY || index >= array->u.arr.len) {
        return NULL;
    }
    return array->u.arr.items[index];
}

rv_err_t rv_value_append(rv_arena_t *arena, rv_value_t *array, rv_value_t *item) {
    if (!arena || !array || !item || array->type != RV_TYPE_ARRAY) {
        return RV_ERR_INVALID_ARG;
    }
    if (array->u.arr.len == array->u.arr.cap) {
        if (array->u.arr.cap >= RV__MAX_ENTRIES) {
            return RV_ERR_LIMIT;
        }
        uint64_t ncap = array->u.arr.cap ? (uint64_t)array->u.arr.cap * 2 : 4;
        if (ncap > RV__MAX_ENTRIES) {
            ncap = RV__MAX_ENTRIES;
        }
        rv_value_t **items = rv__arena_alloc(arena, (size_t)ncap * sizeof *items);
        if (!items) {
            return RV_ERR_NOMEM;
        }
        if (array->u.arr.len) {
            memcpy(items, array->u.arr.items, array->u.arr.len * sizeof *items);
        }
        array->u.arr.items = items;
        array->u.arr.cap = (uint32_t)ncap;
    }
    array->u.arr.items[array->u.arr.len++] = item;
    return RV_OK;
}

/* ---- objects ------------------------------------------------------------------------------ */

static inline bool key_eq(const rv__member_t *m, const char *key, size_t len) {
    return m->key_len == len && (len == 0 || memcmp(m->key, key, len) == 0);
}

/* Slots an index needs to hold `n` members at most half full. */
static uint32_t index_slots_for(size_t n) {
    uint32_t slots = 32;
    while (slots < n * 2 && slots < (1u << 31)) {
        slots <<= 1;
    }
    return slots;
}

static rv__index_t *index_new(rv_arena_t *arena, uint32_t slots) {
    rv__index_t *ix = rv__arena_alloc(arena, sizeof *ix + (size_t)slots * sizeof(uint32_t));
    if (ix) {
        ix->mask = slots - 1;
        ix->count = 0;
        memset(ix->slots, 0, (size_t)slots * sizeof(uint32_t));
    }
    return ix;
}

/* Inserts position `pos` (whose key is known to be absent) into the index. */
static void index_put(rv__index_t *ix, const rv__member_t *members, uint32_t pos, uint64_t seed) {
    const rv__member_t *m = &members[pos];
    uint32_t i = (uint32_t)rv__key_hash(m->key, m->key_len, seed) & ix->mask;
    while (ix->slots[i]) {
        i = (i + 1) & ix->mask;
    }
    ix->slots[i] = pos + 1;
    ix->count++;
}

rv_err_t rv__obj_build_index(rv_arena_t *arena, rv_value_t *obj) {
    uint32_t n = obj->u.obj.len;
    rv__index_t *ix = index_new(arena, index_slots_for((size_t)n + 1));
    if (!ix) {
        return RV_ERR_NOMEM;
    }
    uint64_t seed = rv__key_seed();
    for (uint32_t i = 0; i < n; i++) {
        index_put(ix, obj->u.obj.members, i, seed);
    }
    obj->u.obj.index = ix;
    return RV_OK;
}

/* The position of `key` in `obj`, or -1. */
static int64_t obj_find(const rv_value_t *obj, const char *key, size_t len) {
    const rv__member_t *members = obj->u.obj.members;
    uint32_t n = obj->u.obj.len;
    const rv__index_t *ix = obj->u.obj.index;
    if (!ix || n <= RV__OBJ_INDEX_MIN) {
        for (uint32_t i = 0; i < n; i++) {
            if (key_eq(&members[i], key, len)) {
                return i;
            }
        }
        return -1;
    }
    uint32_t i = (uint32_t)rv__key_hash(key, len, rv__key_seed()) & ix->mask;
    for (;;) {
        uint32_t s = ix->slots[i];
        if (!s) {
            return -1;
        }
        if (key_eq(&members[s - 1], key, len)) {
            return s - 1;
        }
        i = (i + 1) & ix->mask;
    }
}

/*
 * Removes position `pos` from the index (backward-shift deletion, so no tombstones), then
 * renumbers the positions after it, which the member array is about to shift down by one.
 */
static void index_remove(rv__index_t *ix, const rv__member_t *members, uint32_t pos) {
    uint64_t seed = rv__key_seed();
    uint32_t mask = ix->mask;
    uint32_t i = (uint32_t)rv__key_hash(members[pos].key, members[pos].key_len, seed) & mask;
    while (ix->slots[i] != pos + 1) {
        i = (i + 1) & mask;
    }
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t s = ix->slots[j];
        if (!s) {
            break;
        }
        const rv__member_t *m = &members[s - 1];
        uint32_t home = (uint32_t)rv__key_hash(m->key, m->key_len, seed) & mask;
        /* The entry at j may move to the hole at i unless its home lies cyclically in (i, j]. */
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            ix->slots[i] = s;
            i = j;
        }
    }
    ix->slots[i] = 0;
    ix->count--;
    for (uint32_t k = 0; k <= mask; k++) {
        if (ix->slots[k] > pos + 1) {
            ix->slots[k]--;
        }
    }
}

rv_value_t *rv_value_get(const rv_value_t *object, const char *key, size_t len) {
    if (!object || object->type != RV_TYPE_OBJECT || (!key && len)) {
        return NULL;
    }
    int64_t pos = obj_find(object, key, len);
    return pos < 0 ? NULL : object->u.obj.members[pos].value;
}

rv_value_t *rv_value_get_cstr(const rv_value_t *object, const char *key) {
    return key ? rv_value_get(object, key, strlen(key)) : NULL;
}

rv_err_t rv_value_set(rv_arena_t *arena, rv_value_t *object, const char *key, size_t len,
                      rv_value_t *v) {
    if (!arena || !object || !v || (!key && len) || object->type != RV_TYPE_OBJECT) {
        return RV_ERR_INVALID_ARG;
    }
    if (len > UINT32_MAX) {
        return RV_ERR_LIMIT;
    }
    int64_t pos = obj_find(object, key, len);
    if (pos >= 0) {
        object->u.obj.members[pos].value = v;
        return RV_OK;
    }
    uint32_t n = object->u.obj.len;
    if (n == object->u.obj.cap) {
        if (n >= RV__MAX_ENTRIES) {
            return RV_ERR_LIMIT;
        }
        uint64_t ncap = n ? (uint64_t)n * 2 : 4;
        if (ncap > RV__MAX_ENTRIES) {
            ncap = RV__MAX_ENTRIES;
        }
        rv__member_t *members = rv__arena_alloc(arena, (size_t)ncap * sizeof *members);
        if (!members) {
            return RV_ERR_NOMEM;
        }
        if (n) {
            memcpy(members, object->u.obj.members, n * sizeof *members);
        }
        object->u.obj.members = members;
        object->u.obj.cap = (uint32_t)ncap;
    }
    char *kcopy = dup_nul(arena, key ? key : "", len);
    if (!kcopy) {
        return RV_ERR_NOMEM;
    }
    rv__member_t *m = &object->u.obj.members[n];
    m->key = kcopy;
    m->key_len = (uint32_t)len;
    m->key_flags = rv__str_classify(kcopy, len);
    m->value = v;
    rv__index_t *ix = object->u.obj.index;
    if (ix && (size_t)(ix->count + 1) * 2 <= (size_t)ix->mask + 1) {
        index_put(ix, object->u.obj.members, n, rv__key_seed());
        object->u.obj.len = n + 1;
        return RV_OK;
    }
    object->u.obj.len = n + 1;
    if (ix || n + 1 > RV__OBJ_INDEX_MIN) {
        rv_err_t e = rv__obj_build_index(arena, object);
        if (e) {
            object->u.obj.len = n; /* leave the object as it was */
            return e;
        }
    }
    return RV_OK;
}

bool rv__vkey_make(rv_arena_t *arena, const char *key, size_t len, rv__vkey_t *out) {
    if (len > UINT32_MAX || (!key && len)) {
        return false;
    }
    char *k = dup_nul(arena, key ? key : "", len);
    if (!k) {
        return false;
    }
    *out = (rv__vkey_t){.key = k, .len = (uint32_t)len, .flags = rv__str_classify(k, len)};
    return true;
}

rv_err_t rv__value_obj_push_unique(rv_arena_t *arena, rv_value_t *obj, const rv__vkey_t *key,
                                   rv_value_t *v) {
    uint32_t n = obj->u.obj.len;
    if (RV_UNLIKELY(n == obj->u.obj.cap)) {
        if (n >= RV__MAX_ENTRIES) {
            return RV_ERR_LIMIT;
        }
        uint64_t ncap = n ? (uint64_t)n * 2 : 4;
        ncap = ncap > RV__MAX_ENTRIES ? RV__MAX_ENTRIES : ncap;
        rv__member_t *members = rv__arena_alloc(arena, (size_t)ncap * sizeof *members);
        if (!members) {
            return RV_ERR_NOMEM;
        }
        if (n) {
            memcpy(members, obj->u.obj.members, n * sizeof *members);
        }
        obj->u.obj.members = members;
        obj->u.obj.cap = (uint32_t)ncap;
    }
    obj->u.obj.members[n] =
        (rv__member_t){.key = key->key, .value = v, .key_len = key->len, .key_flags = key->flags};
    obj->u.obj.len = n + 1;
    return RV_OK;
}

rv_err_t rv__value_obj_seal(rv_arena_t *arena, rv_value_t *obj) {
    const rv__index_t *ix = obj->u.obj.index;
    if (obj->u.obj.len <= RV__OBJ_INDEX_MIN ||
        (ix && ix->count == obj->u.obj.len && (size_t)ix->count * 2 <= (size_t)ix->mask + 1)) {
        return RV_OK;
    }
    return rv__obj_build_index(arena, obj);
}

bool rv_value_remove(rv_value_t *object, const char *key, size_t len) {
    if (!object || object->type != RV_TYPE_OBJECT || (!key && len)) {
        return false;
    }
    int64_t pos = obj_find(object, key, len);
    if (pos < 0) {
        return false;
    }
    rv__member_t *members = object->u.obj.members;
    uint32_t n = object->u.obj.len;
    if (object->u.obj.index) {
        index_remove(object->u.obj.index, members, (uint32_t)pos);
    }
    memmove(&members[pos], &members[pos + 1], (size_t)(n - (uint32_t)pos - 1) * sizeof *members);
    object->u.obj.len = n - 1;
    return true;
}

rv_value_t *rv_value_member_at(const rv_value_t *object, size_t index, const char **key,
                               size_t *key_len) {
    if (!object || object->type != RV_TYPE_OBJECT || index >= object->u.obj.len) {
        return NULL;
    }
    const rv__member_t *m = &object->u.obj.members[index];
    if (key) {
        *key = m->key;
    }
    if (key_len) {
        *key_len = m->key_len;
    }
    return m->value;
}

rv_err_t rv__obj_adopt(rv_arena_t *arena, rv_value_t *obj, rv__member_t *m, size_t n,
                       uint64_t seed) {
    if (n > RV__MAX_ENTRIES) {
        return RV_ERR_LIMIT;
    }
    size_t w = 0;
    rv__index_t *ix = NULL;
    if (n <= RV__OBJ_INDEX_MIN) {
        for (size_t i = 0; i < n; i++) {
            size_t j = 0;
            while (j < w && !key_eq(&m[j], m[i].key, m[i].key_len)) {
                j++;
            }
            if (j < w) {
                m[j].value = m[i].value; /* a duplicate: the last value wins, first place */
            } else {
                m[w++] = m[i];
            }
        }
    } else {
        ix = index_new(arena, index_slots_for(n + 1));
        if (!ix) {
            return RV_ERR_NOMEM;
        }
        uint32_t mask = ix->mask;
        for (size_t i = 0; i < n; i++) {
            uint32_t h = (uint32_t)rv__key_hash(m[i].key, m[i].key_len, seed) & mask;
            for (;;) {
                uint32_t s = ix->slots[h];
                if (!s) {
                    m[w] = m[i];
                    ix->slots[h] = (uint32_t)++w;
                    break;
                }
                if (key_eq(&m[s - 1], m[i].key, m[i].key_len)) {
                    m[s - 1].value = m[i].value;
                    break;
                }
                h = (h + 1) & mask;
            }
        }
        ix->count = (uint32_t)w;
    }
    rv__member_t *members = NULL;
    if (w) {
        members = rv__arena_alloc(arena, w * sizeof *members);
        if (!members) {
            return RV_ERR_NOMEM;
        }
        memcpy(members, m, w * sizeof *members);
    }
    obj->u.obj.members = members;
    obj->u.obj.len = (uint32_t)w;
    obj->u.obj.cap = (uint32_t)w;
    obj->u.obj.index = ix;
    return RV_OK;
}

/* ---- equality ----------------------------------------------------------------------------- */

/* Compares two nodes' own contents (for containers: type and length only). */
static bool node_eq(const rv_value_t *a, const rv_value_t *b) {
    rv_type_t ta = rv_value_type(a), tb = rv_value_type(b);
    if (ta != tb) {
        return false;
    }
    switch (ta) {
        case RV_TYPE_NULL:
            return true;
        case RV_TYPE_BOOL:
            return a->u.b == b->u.b;
        case RV_TYPE_INT:
            return a->u.i == b->u.i;
        case RV_TYPE_DOUBLE:
            return a->u.d == b->u.d || (isnan(a->u.d) && isnan(b->u.d));
        case RV_TYPE_STRING:
        case RV_TYPE_BYTES:
            return a->u.str.len == b->u.str.len &&
                   (a->u.str.len == 0 || memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0);
        case RV_TYPE_ARRAY:
            return a->u.arr.len == b->u.arr.len;
        case RV_TYPE_OBJECT:
            return a->u.obj.len == b->u.obj.len;
    }
    return false;
}

static inline bool is_container(const rv_value_t *v) {
    return v && (v->type == RV_TYPE_ARRAY || v->type == RV_TYPE_OBJECT) &&
           (v->type == RV_TYPE_ARRAY ? v->u.arr.len : v->u.obj.len) > 0;
}

typedef struct walk_s {
    const rv_value_t *a;
    const rv_value_t *b;
    rv_value_t *dst;
    uint32_t next;
} walk_t;

bool rv_value_equal(const rv_value_t *a, const rv_value_t *b) {
    walk_t local[32];
    walk_t *stack = local;
    size_t cap = RV_ARRAY_LEN(local), top = 0;
    bool result = true;
    for (;;) {
        /* Compare the current pair; the same node on both sides is equal without a look. */
        if (a != b) {
            if (!node_eq(a, b)) {
                result = false;
                break;
            }
            if (is_container(a)) {
                if (top == cap &&
                    !rv__stack_grow((void **)&stack, &cap, sizeof *stack, local, top + 1)) {
                    result = false; /* out of memory: equality cannot be shown */
                    break;
                }
                stack[top++] = (walk_t){a, b, NULL, 0};
            }
        }
        /* Take the next pair: the next child of the innermost container with children left. */
        bool found = false;
        while (top && !found) {
            walk_t *f = &stack[top - 1];
            if (f->a->type == RV_TYPE_ARRAY) {
                if (f->next < f->a->u.arr.len) {
                    a = f->a->u.arr.items[f->next];
                    b = f->b->u.arr.items[f->next];
                    f->next++;
                    found = true;
                    continue;
                }
            } else if (f->next < f->a->u.obj.len) {
                const rv__member_t *ma = &f->a->u.obj.members[f->next];
                const rv__member_t *mb = &f->b->u.obj.members[f->next];
                if (!key_eq(ma, mb->key, mb->key_len)) {
                    result = false;
                    top = 0;
                    break;
                }
                a = ma->value;
                b = mb->value;
                f->next++;
                found = true;
                continue;
            }
            top--;
        }
        if (!found) {
            break;
        }
    }
    if (stack != local) {
        free(stack);
    }
    return result;
}

/* ---- copy --------------------------------------------------------------------------------- */

/* Copies one node; containers get arrays of their final size with children still to fill. */
static rv_value_t *copy_node(rv_arena_t *arena, const rv_value_t *src) {
    rv_value_t *v = node_new(arena, rv_value_type(src));
    if (!v || !src) {
        return v;
    }
    v->flags = src->flags;
    switch (src->type) {
        /* Scalars live in short nodes: copy only the member the type names, never the union. */
        case RV_TYPE_BOOL:
            v->u.b = src->u.b;
            break;
        case RV_TYPE_INT:
            v->u.i = src->u.i;
            break;
        case RV_TYPE_DOUBLE:
            v->u.d = src->u.d;
            break;
        case RV_TYPE_STRING:
        case RV_TYPE_BYTES:
            v->u.str.ptr = dup_nul(arena, src->u.str.ptr, src->u.str.len);
            if (!v->u.str.ptr) {
                return NULL;
            }
            v->u.str.len = src->u.str.len;
            break;
        case RV_TYPE_ARRAY: {
            uint32_t n = src->u.arr.len;
            if (n) {
                v->u.arr.items = rv__arena_alloc(arena, (size_t)n * sizeof(rv_value_t *));
                if (!v->u.arr.items) {
                    return NULL;
                }
            }
            v->u.arr.len = v->u.arr.cap = n;
            break;
        }
        case RV_TYPE_OBJECT: {
            uint32_t n = src->u.obj.len;
            if (n) {
                rv__member_t *m = rv__arena_alloc(arena, (size_t)n * sizeof *m);
                if (!m) {
                    return NULL;
                }
                for (uint32_t i = 0; i < n; i++) {
                    const rv__member_t *s = &src->u.obj.members[i];
                    m[i].key = dup_nul(arena, s->key, s->key_len);
                    if (!m[i].key) {
                        return NULL;
                    }
                    m[i].key_len = s->key_len;
                    m[i].key_flags = s->key_flags;
                    m[i].value = NULL;
                }
                v->u.obj.members = m;
            }
            v->u.obj.len = v->u.obj.cap = n;
            const rv__index_t *ix = src->u.obj.index;
            if (ix) {
                /* Same keys, same positions, same per-process seed: the table copies verbatim. */
                size_t size = sizeof *ix + ((size_t)ix->mask + 1) * sizeof(uint32_t);
                v->u.obj.index = rv_arena_memdup(arena, ix, size);
                if (!v->u.obj.index) {
                    return NULL;
                }
            }
            break;
        }
        default:
            break;
    }
    return v;
}

rv_value_t *rv_value_copy(rv_arena_t *arena, const rv_value_t *v) {
    if (!arena) {
        return NULL;
    }
    rv_value_t *root = copy_node(arena, v);
    if (!root || !is_container(v)) {
        return root;
    }
    walk_t local[32];
    walk_t *stack = local;
    size_t cap = RV_ARRAY_LEN(local), top = 0;
    stack[top++] = (walk_t){v, NULL, root, 0};
    while (top) {
        walk_t *f = &stack[top - 1];
        const rv_value_t *src = f->a;
        uint32_t n = src->type == RV_TYPE_ARRAY ? src->u.arr.len : src->u.obj.len;
        if (f->next == n) {
            top--;
            continue;
        }
        uint32_t i = f->next++;
        const rv_value_t *child =
            src->type == RV_TYPE_ARRAY ? src->u.arr.items[i] : src->u.obj.members[i].value;
        rv_value_t *copy = copy_node(arena, child);
        if (!copy) {
            root = NULL;
            break;
        }
        if (src->type == RV_TYPE_ARRAY) {
            f->dst->u.arr.items[i] = copy;
        } else {
            f->dst->u.obj.members[i].value = copy;
        }
        if (is_container(child)) {
            if (top == cap &&
                !rv__stack_grow((void **)&stack, &cap, sizeof *stack, local, top + 1)) {
                root = NULL;
                break;
            }
            stack[top++] = (walk_t){child, NULL, copy, 0};
        }
    }
    if (stack != local) {
        free(stack);
    }
    return root;
}
