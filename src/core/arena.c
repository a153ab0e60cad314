/*
 * arena.c: region allocation for value trees and per-batch scratch memory.
 *
 * Blocks are chained; a reset coalesces them into one block as large as all of them, so a
 * steady workload stops calling malloc after its first batch. The fast path is inlined from
 * core_int.h.
 */
#include <stdlib.h>

#include "core/core_int.h"

#define DEFAULT_BLOCK (64 * 1024)
#define HEADER_SIZE ((sizeof(rv_arena_block_t) + 15u) & ~(size_t)15u)

static rv_arena_block_t *block_new(size_t size) {
    if (size > SIZE_MAX - HEADER_SIZE) {
        return NULL;
    }
    rv_arena_block_t *b = malloc(HEADER_SIZE + size);
    if (b) {
        b->prev = NULL;
        b->size = size;
    }
    return b;
}

static void use_block(rv_arena_t *a, rv_arena_block_t *b) {
    b->prev = a->block;
    a->block = b;
    a->cur = (char *)b + HEADER_SIZE;
    a->end = a->cur + b->size;
    a->reserved += HEADER_SIZE + b->size;
}

rv_arena_t *rv_arena_new(size_t block_size) {
    rv_arena_t *a = calloc(1, sizeof *a);
    if (!a) {
        return NULL;
    }
    a->block_size = block_size ? block_size : DEFAULT_BLOCK;
    rv_arena_block_t *b = block_new(a->block_size);
    if (!b) {
        free(a);
        return NULL;
    }
    use_block(a, b);
    return a;
}

void rv_arena_destroy(rv_arena_t *a) {
    if (!a) {
        return;
    }
    rv_arena_block_t *b = a->block;
    while (b) {
        rv_arena_block_t *prev = b->prev;
        free(b);
        b = prev;
    }
    free(a);
}

void *rv__arena_alloc_slow(rv_arena_t *a, size_t size) {
    size_t rounded = (size + 15u) & ~(size_t)15u;
    if (rounded < size) {
        return NULL; /* overflow */
    }
    /* Grow geometrically so the number of blocks stays logarithmic in the bytes used. */
    size_t want = a->block ? a->block->size * 2 : a->block_size;
    if (want < a->block_size) {
        want = a->block_size;
    }
    if (want < rounded) {
        want = rounded;
    }
    rv_arena_block_t *b = block_new(want);
    if (!b) {
        return NULL;
    }
    use_block(a, b);
    void *p = a->cur;
    a->cur += rounded;
    a->used += rounded;
    return p;
}

void *rv_arena_alloc(rv_arena_t *a, size_t size) {
    return rv__arena_alloc(a, size);
}

void *rv_arena_memdup(rv_arena_t *a, const void *data, size_t len) {
    void *p = rv__arena_alloc(a, len);
    if (p && len) {
        memcpy(p, data, len);
    }
    return p;
}

char *rv_arena_strndup(rv_arena_t *a, const char *str, size_t len) {
    if (len == SIZE_MAX) {
        return NULL;
    }
    char *p = rv__arena_alloc(a, len + 1);
    if (p) {
        if (len) {
            memcpy(p, str, len);
        }
        p[len] = 0;
    }
    return p;
}

void rv_arena_reset(rv_arena_t *a) {
    /* A single block is simply rewound. Several blocks mean the workload outgrew the first:
     * replace them with one block as large as all of them together, so the same workload fits
     * in one block from now on (if that allocation fails, keep the largest block instead). */
    rv_arena_block_t *b = a->block;
    size_t total = 0;
    rv_arena_block_t *largest = NULL;
    for (rv_arena_block_t *i = b; i; i = i->prev) {
        total += i->size;
        if (!largest || i->size > largest->size) {
            largest = i;
        }
    }
    rv_arena_block_t *keep = b->prev ? block_new(total) : b;
    if (!keep) {
        keep = largest;
    }
    while (b) {
        rv_arena_block_t *prev = b->prev;
        if (b != keep) {
            free(b);
        }
        b = prev;
    }
    a->block = NULL;
    a->reserved = 0;
    a->used = 0;
    use_block(a, keep);
}

size_t rv_arena_used(const rv_arena_t *a) {
    return a->used;
}

size_t rv_arena_reserved(const rv_arena_t *a) {
    return a->reserved;
}
