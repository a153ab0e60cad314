/*
 * rivulet/value.h: the value model.
 *
 * A message value decoded by a serialiser is a tree of rv_value_t nodes: null, bool, int64,
 * double, string, bytes, array or object. Every node and every byte it refers to lives in an
 * arena (see arena.h), so a tree is freed all at once with its arena and building one makes no
 * heap allocation of its own. Object members keep their insertion order; lookups by key are fast
 * for small and large objects alike (objects of more than 8 members carry a hash index in the
 * arena). Strings are UTF-8 and carry their length (they may hold NUL bytes). Arrays and
 * objects hold at most 2^32 - 2 entries. Trees must not contain cycles. Trees are not
 * thread-safe: one thread reads or changes a tree at a time.
 */
#ifndef RIVULET_VALUE_H
#define RIVULET_VALUE_H

#include "arena.h"
#include "common.h"
#include "error.h"

RV_BEGIN_DECLS

/** The type of a value node. */
typedef enum rv_type_e {
    RV_TYPE_NULL = 0,
    RV_TYPE_BOOL,
    RV_TYPE_INT,
    RV_TYPE_DOUBLE,
    RV_TYPE_STRING,
    RV_TYPE_BYTES,
    RV_TYPE_ARRAY,
    RV_TYPE_OBJECT
} rv_type_t;

/** A value node. Opaque; allocated in an arena. */
typedef struct rv_value_s rv_value_t;

/** The type's name in lower case ("null", "bool", "int", ...). */
RV_API const char *rv_type_name(rv_type_t type);

/* Constructors. Each allocates the node in `arena` and returns NULL when memory is exhausted. */

RV_API rv_value_t *rv_value_new_null(rv_arena_t *arena);
RV_API rv_value_t *rv_value_new_bool(rv_arena_t *arena, bool b);
RV_API rv_value_t *rv_value_new_int(rv_arena_t *arena, int64_t i);
RV_API rv_value_t *rv_value_new_double(rv_arena_t *arena, double d);
/** A string node holding a copy of `len` bytes of `s` (which need not be NUL-terminated). */
RV_API rv_value_t *rv_value_new_string(rv_arena_t *arena, const char *s, size_t len);
/**
 * A string node that borrows `s`: the bytes must outlive the tree (for example, arena memory).
 * rv_value_str() then returns `s` itself, followed by a NUL only if the owner put one there.
 */
RV_API rv_value_t *rv_value_new_string_ref(rv_arena_t *arena, const char *s, size_t len);
/** A bytes node holding a copy of `len` bytes. */
RV_API rv_value_t *rv_value_new_bytes(rv_arena_t *arena, const void *data, size_t len);
/** An empty array with room for `capacity` items before it grows (0 is fine). */
RV_API rv_value_t *rv_value_new_array(rv_arena_t *arena, size_t capacity);
/** An empty object with room for `capacity` members before it grows (0 is fine). */
RV_API rv_value_t *rv_value_new_object(rv_arena_t *arena, size_t capacity);

/* Reading. A NULL `v` reads as null. */

RV_API rv_type_t rv_value_type(const rv_value_t *v);
/** The boolean; false for other types. */
RV_API bool rv_value_bool(const rv_value_t *v);
/** The integer; a double is truncated toward zero (saturating); 0 for other types. */
RV_API int64_t rv_value_int(const rv_value_t *v);
/** The number as a double (an int is converted); 0.0 for other types. */
RV_API double rv_value_double(const rv_value_t *v);
/**
 * A string's or bytes' contents, borrowed from the tree; `*len` receives the length. NULL (and
 * `*len` 0) for other types. A string's bytes are followed by a NUL.
 */
RV_API const char *rv_value_str(const rv_value_t *v, size_t *len);
/** The number of items of an array, members of an object, or bytes of a string or bytes; else 0. */
RV_API size_t rv_value_len(const rv_value_t *v);

/** The array's item at `index`, or NULL when out of range or not an array. */
RV_API rv_value_t *rv_value_at(const rv_value_t *array, size_t index);
/**
 * Appends `item` to `array`. RV_ERR_INVALID_ARG when not an array (or `item` is NULL),
 * RV_ERR_LIMIT when the array is full, RV_ERR_NOMEM.
 */
RV_API rv_err_t rv_value_append(rv_arena_t *arena, rv_value_t *array, rv_value_t *item);

/** The object's member named by `len` bytes of `key`, or NULL when absent or not an object. */
RV_API rv_value_t *rv_value_get(const rv_value_t *object, const char *key, size_t len);
/** rv_value_get() with a NUL-terminated key. */
RV_API rv_value_t *rv_value_get_cstr(const rv_value_t *object, const char *key);
/**
 * Sets member `key` of `object` to `v`: replaces the value in place when the key exists (its
 * position is kept), otherwise appends the member. The key is copied into `arena`.
 * RV_ERR_INVALID_ARG when not an object (or `v` is NULL), RV_ERR_LIMIT for a key of 4 GiB or
 * more or a full object, RV_ERR_NOMEM.
 */
RV_API rv_err_t rv_value_set(rv_arena_t *arena, rv_value_t *object, const char *key, size_t len,
                             rv_value_t *v);
/** Removes member `key`, keeping the order of the others. Returns true when it was present. */
RV_API bool rv_value_remove(rv_value_t *object, const char *key, size_t len);
/**
 * The object's member at position `index` (insertion order): returns its value and stores its
 * key (borrowed, NUL-terminated) in `*key` and length in `*key_len`. NULL when out of range.
 */
RV_API rv_value_t *rv_value_member_at(const rv_value_t *object, size_t index, const char **key,
                                      size_t *key_len);

/**
 * Structural equality: same types (an int never equals a double), same contents, arrays in
 * order, objects with the same members in the same order. Doubles compare by value (0.0
 * equals -0.0), except that NaN equals NaN here. Trees of any depth are compared without
 * recursion.
 */
RV_API bool rv_value_equal(const rv_value_t *a, const rv_value_t *b);

/**
 * A deep copy of `v` into `arena` (which may differ from the source's): every node, key and
 * string byte is copied, borrowed strings included, so the copy does not depend on the source's
 * arena. A NULL `v` gives a null node. NULL on NOMEM (or a NULL arena).
 */
RV_API rv_value_t *rv_value_copy(rv_arena_t *arena, const rv_value_t *v);

RV_END_DECLS

#endif
