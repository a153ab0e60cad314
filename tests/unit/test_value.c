/*
 * test_value.c: the value model: constructors and accessors, arrays, objects (order, in-place
 * replacement, removal, the hash index of large objects checked against a reference model),
 * structural equality and deep copy into another arena.
 */
#include <math.h>

#include "rivulet/value.h"
#include "rv_test.h"

static rv_arena_t *arena;

static void test_type_names(void) {
    CHECK_STR(rv_type_name(RV_TYPE_NULL), "null");
    CHECK_STR(rv_type_name(RV_TYPE_BOOL), "bool");
    CHECK_STR(rv_type_name(RV_TYPE_INT), "int");
    CHECK_STR(rv_type_name(RV_TYPE_DOUBLE), "double");
    CHECK_STR(rv_type_name(RV_TYPE_STRING), "string");
    CHECK_STR(rv_type_name(RV_TYPE_BYTES), "bytes");
    CHECK_STR(rv_type_name(RV_TYPE_ARRAY), "array");
    CHECK_STR(rv_type_name(RV_TYPE_OBJECT), "object");
    CHECK_STR(rv_type_name((rv_type_t)42), "unknown");
}

static void test_scalars(void) {
    rv_value_t *n = rv_value_new_null(arena);
    rv_value_t *t = rv_value_new_bool(arena, true);
    rv_value_t *i = rv_value_new_int(arena, -42);
    rv_value_t *d = rv_value_new_double(arena, 2.75);
    rv_value_t *s = rv_value_new_string(arena, "h\0llo", 5);
    rv_value_t *b = rv_value_new_bytes(arena, "\x00\xff", 2);
    CHECK_INT(rv_value_type(n), RV_TYPE_NULL);
    CHECK_INT(rv_value_type(t), RV_TYPE_BOOL);
    CHECK_INT(rv_value_type(i), RV_TYPE_INT);
    CHECK_INT(rv_value_type(d), RV_TYPE_DOUBLE);
    CHECK_INT(rv_value_type(s), RV_TYPE_STRING);
    CHECK_INT(rv_value_type(b), RV_TYPE_BYTES);
    CHECK(rv_value_bool(t));
    CHECK_INT(rv_value_int(i), -42);
    CHECK(rv_value_double(i) == -42.0);
    CHECK(rv_value_double(d) == 2.75);
    CHECK_INT(rv_value_int(d), 2);
    size_t len = 99;
    const char *p = rv_value_str(s, &len);
    CHECK_INT(len, 5);
    CHECK(p && memcmp(p, "h\0llo", 5) == 0 && p[5] == 0);
    CHECK_INT(rv_value_len(s), 5);
    p = rv_value_str(b, &len);
    CHECK(p && len == 2 && (unsigned char)p[1] == 0xff);

    /* The string is a copy, not the caller's buffer; a _ref string borrows it. */
    char buf[4] = "abc";
    rv_value_t *copy = rv_value_new_string(arena, buf, 3);
    rv_value_t *ref = rv_value_new_string_ref(arena, buf, 3);
    buf[0] = 'X';
    CHECK_STR(rv_value_str(copy, NULL), "abc");
    CHECK(rv_value_str(ref, NULL) == buf);

    /* Accessors on the wrong types give the documented defaults; NULL reads as null. */
    CHECK(!rv_value_bool(i));
    CHECK(!rv_value_bool(NULL));
    CHECK_INT(rv_value_int(s), 0);
    CHECK_INT(rv_value_int(t), 0);
    CHECK(rv_value_double(s) == 0.0);
    CHECK(rv_value_double(NULL) == 0.0);
    len = 7;
    CHECK(rv_value_str(i, &len) == NULL && len == 0);
    CHECK(rv_value_str(NULL, NULL) == NULL);
    CHECK_INT(rv_value_len(i), 0);
    CHECK_INT(rv_value_len(NULL), 0);
    CHECK_INT(rv_value_type(NULL), RV_TYPE_NULL);
    CHECK(rv_value_at(s, 0) == NULL);
    CHECK(rv_value_get_cstr(i, "x") == NULL);
    CHECK(rv_value_member_at(i, 0, NULL, NULL) == NULL);
    CHECK_INT(rv_value_append(arena, s, i), RV_ERR_INVALID_ARG);
    CHECK_INT(rv_value_set(arena, i, "k", 1, s), RV_ERR_INVALID_ARG);
    CHECK(!rv_value_remove(i, "k", 1));

    /* Bad arguments give NULL instead of a crash; an empty string needs no pointer. */
    CHECK(rv_value_new_int(NULL, 1) == NULL);
    CHECK(rv_value_new_string(arena, NULL, 3) == NULL);
    CHECK(rv_value_new_string_ref(arena, NULL, 3) == NULL);
    CHECK(rv_value_new_bytes(arena, NULL, 3) == NULL);
    rv_value_t *empty = rv_value_new_string(arena, NULL, 0);
    CHECK(empty && rv_value_len(empty) == 0 && strcmp(rv_value_str(empty, NULL), "") == 0);

    /* Double to int: truncation toward zero, saturating, NaN gives 0. */
    CHECK_INT(rv_value_int(rv_value_new_double(arena, -2.9)), -2);
    CHECK(rv_value_int(rv_value_new_double(arena, 1e300)) == INT64_MAX);
    CHECK(rv_value_int(rv_value_new_double(arena, -1e300)) == INT64_MIN);
    CHECK(rv_value_int(rv_value_new_double(arena, 9223372036854775808.0)) == INT64_MAX);
    CHECK(rv_value_int(rv_value_new_double(arena, -9223372036854775808.0)) == INT64_MIN);
    CHECK_INT(rv_value_int(rv_value_new_double(arena, NAN)), 0);
    CHECK(rv_value_double(rv_value_new_int(arena, INT64_MIN)) == -9223372036854775808.0);
}

static void test_arrays(void) {
    rv_value_t *a = rv_value_new_array(arena, 0);
    CHECK_INT(rv_value_len(a), 0);
    CHECK(rv_value_at(a, 0) == NULL);
    for (int i = 0; i < 100; i++) {
        CHECK_INT(rv_value_append(arena, a, rv_value_new_int(arena, i)), RV_OK);
    }
    CHECK_INT(rv_value_len(a), 100);
    int wrong = 0;
    for (int i = 0; i < 100; i++) {
        wrong += rv_value_int(rv_value_at(a, (size_t)i)) != i;
    }
    CHECK_INT(wrong, 0);
    CHECK(rv_value_at(a, 100) == NULL);
    CHECK_INT(rv_value_append(arena, a, NULL), RV_ERR_INVALID_ARG);
    rv_value_t *sized = rv_value_new_array(arena, 3);
    CHECK_INT(rv_value_len(sized), 0);
    rv_value_append(arena, sized, a);
    CHECK(rv_value_at(sized, 0) == a);
}

static void test_object_order(void) {
    rv_value_t *o = rv_value_new_object(arena, 2);
    const char *keys[] = {"zeta", "alpha", "mid", "beta", ""};
    for (int i = 0; i < 5; i++) {
        CHECK_INT(rv_value_set(arena, o, keys[i], strlen(keys[i]), rv_value_new_int(arena, i)),
                  RV_OK);
    }
    CHECK_INT(rv_value_len(o), 5);
    for (size_t i = 0; i < 5; i++) {
        const char *k = NULL;
        size_t kl = 99;
        rv_value_t *v = rv_value_member_at(o, i, &k, &kl);
        CHECK_STR(k, keys[i]);
        CHECK_INT(kl, strlen(keys[i]));
        CHECK_INT(rv_value_int(v), (int64_t)i);
    }
    CHECK(rv_value_member_at(o, 5, NULL, NULL) == NULL);

    /* set on an existing key replaces in place: position and length are kept. */
    rv_value_t *repl = rv_value_new_string(arena, "new", 3);
    CHECK_INT(rv_value_set(arena, o, "alpha", 5, repl), RV_OK);
    CHECK_INT(rv_value_len(o), 5);
    const char *k;
    CHECK(rv_value_member_at(o, 1, &k, NULL) == repl);
    CHECK_STR(k, "alpha");
    CHECK(rv_value_get_cstr(o, "alpha") == repl);
    CHECK(rv_value_get(o, "", 0) != NULL);
    CHECK(rv_value_get(o, "alph", 4) == NULL);
    CHECK(rv_value_get(o, "alphaX", 6) == NULL);

    /* The key is copied. */
    char key[8] = "temp";
    rv_value_set(arena, o, key, 4, rv_value_new_null(arena));
    key[0] = 'X';
    CHECK(rv_value_get_cstr(o, "temp") != NULL);
    CHECK(rv_value_get_cstr(o, "Xemp") == NULL);

    /* remove keeps the order of the others. */
    CHECK(rv_value_remove(o, "mid", 3));
    CHECK(!rv_value_remove(o, "mid", 3));
    const char *after[] = {"zeta", "alpha", "beta", "", "temp"};
    CHECK_INT(rv_value_len(o), 5);
    for (size_t i = 0; i < 5; i++) {
        rv_value_member_at(o, i, &k, NULL);
        CHECK_STR(k, after[i]);
    }
    CHECK(rv_value_get_cstr(o, "mid") == NULL);
    CHECK_INT(rv_value_int(rv_value_get_cstr(o, "beta")), 3);

    /* Keys may hold NUL bytes and are compared by length. */
    rv_value_set(arena, o, "a\0b", 3, rv_value_new_int(arena, 7));
    CHECK_INT(rv_value_int(rv_value_get(o, "a\0b", 3)), 7);
    CHECK(rv_value_get(o, "a", 1) == NULL);
    CHECK(rv_value_get_cstr(o, NULL) == NULL);
}

/* A small deterministic generator for the random operations. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

#define NKEYS 1500

/* Checks an object against a reference: ref_val[k] >= 0 means key k is present with that
 * value; `order` lists present keys in insertion order. */
static int check_against(const rv_value_t *o, const int *ref_val, const int *order, size_t count) {
    int wrong = 0;
    if (rv_value_len(o) != count) {
        return 1000000;
    }
    for (int k = 0; k < NKEYS; k++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "key-%d", k);
        rv_value_t *v = rv_value_get(o, key, (size_t)kl);
        if (ref_val[k] < 0) {
            wrong += v != NULL;
        } else {
            wrong += v == NULL || rv_value_int(v) != ref_val[k];
        }
    }
    for (size_t i = 0; i < count; i++) {
        const char *key;
        rv_value_member_at(o, i, &key, NULL);
        char want[16];
        snprintf(want, sizeof want, "key-%d", order[i]);
        wrong += strcmp(key, want) != 0;
    }
    return wrong;
}

static void test_large_object(void) {
    rv_value_t *o = rv_value_new_object(arena, 0);
    int ref_val[NKEYS];
    int order[NKEYS];
    size_t count = 0;
    for (int k = 0; k < NKEYS; k++) {
        ref_val[k] = -1;
    }
    /* Grow to 1000 members, crossing the index threshold on the way. */
    for (int k = 0; k < 1000; k++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "key-%d", k);
        REQUIRE(rv_value_set(arena, o, key, (size_t)kl, rv_value_new_int(arena, k)) == RV_OK);
        ref_val[k] = k;
        order[count++] = k;
        if (k < 20) {
            CHECK_INT(check_against(o, ref_val, order, count), 0);
        }
    }
    CHECK_INT(check_against(o, ref_val, order, count), 0);

    /* Random sets (new and existing keys) and removes, checked against the reference. */
    for (int step = 0; step < 4000; step++) {
        int k = (int)(rng() % NKEYS);
        char key[16];
        int kl = snprintf(key, sizeof key, "key-%d", k);
        if (rng() % 3 == 0) {
            bool was = ref_val[k] >= 0;
            CHECK(rv_value_remove(o, key, (size_t)kl) == was);
            if (was) {
                ref_val[k] = -1;
                size_t i = 0;
                while (order[i] != k) {
                    i++;
                }
                memmove(&order[i], &order[i + 1], (count - i - 1) * sizeof order[0]);
                count--;
            }
        } else {
            int val = (int)(rng() % 100000);
            REQUIRE(rv_value_set(arena, o, key, (size_t)kl, rv_value_new_int(arena, val)) == RV_OK);
            if (ref_val[k] < 0) {
                order[count++] = k;
            }
            ref_val[k] = val;
        }
        if (step % 500 == 0) {
            CHECK_INT(check_against(o, ref_val, order, count), 0);
        }
    }
    CHECK_INT(check_against(o, ref_val, order, count), 0);

    /* Shrink below the index threshold and grow again. */
    for (int k = 0; k < NKEYS && count > 3; k++) {
        if (ref_val[k] >= 0) {
            char key[16];
            int kl = snprintf(key, sizeof key, "key-%d", k);
            CHECK(rv_value_remove(o, key, (size_t)kl));
            ref_val[k] = -1;
            size_t i = 0;
            while (order[i] != k) {
                i++;
            }
            memmove(&order[i], &order[i + 1], (count - i - 1) * sizeof order[0]);
            count--;
        }
    }
    CHECK_INT(check_against(o, ref_val, order, count), 0);
    for (int k = 0; k < 50; k++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "key-%d", k);
        REQUIRE(rv_value_set(arena, o, key, (size_t)kl, rv_value_new_int(arena, k + 1)) == RV_OK);
        if (ref_val[k] < 0) {
            order[count++] = k;
        }
        ref_val[k] = k + 1;
    }
    CHECK_INT(check_against(o, ref_val, order, count), 0);

    /* A copy of a large object answers lookups the same way. */
    rv_arena_t *other = rv_arena_new(0);
    rv_value_t *c = rv_value_copy(other, o);
    CHECK_INT(check_against(c, ref_val, order, count), 0);
    rv_arena_destroy(other);
}

static rv_value_t *sample_tree(rv_arena_t *a, double x) {
    rv_value_t *root = rv_value_new_object(a, 0);
    rv_value_t *arr = rv_value_new_array(a, 0);
    rv_value_append(a, arr, rv_value_new_int(a, 1));
    rv_value_append(a, arr, rv_value_new_double(a, x));
    rv_value_append(a, arr, rv_value_new_string(a, "s", 1));
    rv_value_append(a, arr, rv_value_new_bytes(a, "\x01", 1));
    rv_value_append(a, arr, rv_value_new_null(a));
    rv_value_append(a, arr, rv_value_new_object(a, 0));
    rv_value_set(a, root, "arr", 3, arr);
    rv_value_set(a, root, "flag", 4, rv_value_new_bool(a, true));
    return root;
}

static void test_equal(void) {
    CHECK(rv_value_equal(sample_tree(arena, 1.5), sample_tree(arena, 1.5)));
    CHECK(!rv_value_equal(sample_tree(arena, 1.5), sample_tree(arena, 2.5)));
    CHECK(rv_value_equal(sample_tree(arena, NAN), sample_tree(arena, NAN)));
    CHECK(rv_value_equal(NULL, NULL));
    CHECK(rv_value_equal(NULL, rv_value_new_null(arena)));
    CHECK(!rv_value_equal(NULL, rv_value_new_int(arena, 0)));

    /* An int never equals a double; a string never equals bytes. */
    CHECK(!rv_value_equal(rv_value_new_int(arena, 1), rv_value_new_double(arena, 1.0)));
    CHECK(!rv_value_equal(rv_value_new_string(arena, "a", 1), rv_value_new_bytes(arena, "a", 1)));
    CHECK(rv_value_equal(rv_value_new_double(arena, 0.0), rv_value_new_double(arena, -0.0)));
    CHECK(!rv_value_equal(rv_value_new_string(arena, "a", 1), rv_value_new_string(arena, "ab", 2)));
    CHECK(!rv_value_equal(rv_value_new_bool(arena, true), rv_value_new_bool(arena, false)));

    /* Objects: same members in the same order. */
    rv_value_t *x = rv_value_new_object(arena, 0), *y = rv_value_new_object(arena, 0);
    rv_value_set(arena, x, "a", 1, rv_value_new_int(arena, 1));
    rv_value_set(arena, x, "b", 1, rv_value_new_int(arena, 2));
    rv_value_set(arena, y, "b", 1, rv_value_new_int(arena, 2));
    rv_value_set(arena, y, "a", 1, rv_value_new_int(arena, 1));
    CHECK(!rv_value_equal(x, y));
    rv_value_remove(y, "b", 1);
    rv_value_set(arena, y, "b", 1, rv_value_new_int(arena, 2));
    CHECK(rv_value_equal(x, y));
    rv_value_set(arena, y, "c", 1, rv_value_new_int(arena, 3));
    CHECK(!rv_value_equal(x, y));

    /* Arrays: order and length count; a difference deep inside is found. */
    rv_value_t *p = sample_tree(arena, 1.0), *q = sample_tree(arena, 1.0);
    CHECK(rv_value_equal(p, q));
    rv_value_append(arena, rv_value_get_cstr(q, "arr"), rv_value_new_int(arena, 9));
    CHECK(!rv_value_equal(p, q));
    rv_value_t *r = sample_tree(arena, 1.0);
    rv_value_set(arena, rv_value_at(rv_value_get_cstr(r, "arr"), 5), "deep", 4,
                 rv_value_new_int(arena, 1));
    CHECK(!rv_value_equal(p, r));
    rv_value_t *s = sample_tree(arena, 1.0);
    rv_value_set(arena, rv_value_at(rv_value_get_cstr(s, "arr"), 5), "deep", 4,
                 rv_value_new_int(arena, 1));
    CHECK(rv_value_equal(r, s));
    rv_value_set(arena, rv_value_at(rv_value_get_cstr(s, "arr"), 5), "deep", 4,
                 rv_value_new_int(arena, 2));
    CHECK(!rv_value_equal(r, s));
}

static void test_copy(void) {
    rv_arena_t *src = rv_arena_new(0);
    rv_value_t *orig = sample_tree(src, 3.25);
    rv_value_t *ref = rv_value_new_string_ref(src, "borrowed", 8);
    rv_value_set(src, orig, "ref", 3, ref);
    rv_value_t *twin = sample_tree(arena, 3.25);
    rv_value_set(arena, twin, "ref", 3, rv_value_new_string(arena, "borrowed", 8));

    rv_value_t *copy = rv_value_copy(arena, orig);
    REQUIRE(copy != NULL);
    CHECK(copy != orig);
    CHECK(rv_value_equal(copy, orig));
    /* Changing the copy leaves the original alone. */
    rv_value_set(arena, copy, "extra", 5, rv_value_new_null(arena));
    CHECK(rv_value_get_cstr(orig, "extra") == NULL);
    CHECK(!rv_value_equal(copy, orig));
    rv_value_remove(copy, "extra", 5);
    /* The copy owns all its bytes: it outlives the source arena (ASan checks the reads). */
    rv_arena_destroy(src);
    CHECK(rv_value_equal(copy, twin));
    CHECK_STR(rv_value_str(rv_value_get_cstr(copy, "ref"), NULL), "borrowed");

    rv_value_t *scalar = rv_value_copy(arena, rv_value_new_int(arena, 5));
    CHECK_INT(rv_value_int(scalar), 5);
    CHECK_INT(rv_value_type(rv_value_copy(arena, NULL)), RV_TYPE_NULL);
    CHECK(rv_value_copy(NULL, scalar) == NULL);

    /* Deep trees are walked without recursion. */
    rv_value_t *deep = rv_value_new_array(arena, 0);
    rv_value_t *cur = deep;
    for (int i = 0; i < 200000; i++) {
        rv_value_t *next = rv_value_new_array(arena, 1);
        rv_value_append(arena, cur, next);
        cur = next;
    }
    rv_value_append(arena, cur, rv_value_new_int(arena, 1));
    rv_value_t *dc = rv_value_copy(arena, deep);
    CHECK(dc != NULL && rv_value_equal(deep, dc));
    rv_value_t *leaf = dc;
    while (rv_value_type(rv_value_at(leaf, 0)) == RV_TYPE_ARRAY) {
        leaf = rv_value_at(leaf, 0);
    }
    rv_value_append(arena, leaf, rv_value_new_int(arena, 2));
    CHECK(!rv_value_equal(deep, dc));
}

/* Scalars are short nodes: copying one must write only its own bytes. A 16-byte arena holds
 * exactly one short node, so ASan sees any write past it (a fuzzer finding: the copy once
 * assigned the whole union). */
static void test_copy_short_nodes(void) {
    rv_value_t *sources[3];
    rv_arena_t *src = rv_arena_new(0);
    REQUIRE(src != NULL);
    sources[0] = rv_value_new_int(src, -1372036);
    sources[1] = rv_value_new_double(src, 5e-324);
    sources[2] = rv_value_new_bool(src, true);
    for (int k = 0; k < 3; k++) {
        rv_arena_t *dst = rv_arena_new(16);
        REQUIRE(dst != NULL);
        rv_value_t *c = rv_value_copy(dst, sources[k]);
        CHECK(c != NULL);
        CHECK(rv_value_equal(c, sources[k]));
        rv_arena_destroy(dst);
    }
    rv_arena_destroy(src);
}

int main(void) {
    RV_RUN(test_copy_short_nodes);
    arena = rv_arena_new(0);
    RV_RUN(test_type_names);
    RV_RUN(test_scalars);
    RV_RUN(test_arrays);
    RV_RUN(test_object_order);
    RV_RUN(test_large_object);
    RV_RUN(test_equal);
    RV_RUN(test_copy);
    rv_arena_destroy(arena);
    return rv_test_finish();
}
