/*
 * rivulet/arena.h: region allocation.
 *
 * An arena hands out memory from large blocks and frees it all at once. Message values are
 * decoded into a per-batch arena, so processing a record allocates nothing on the heap; user
 * functions that build new values allocate from the arena they are given. An arena is not
 * thread-safe: one thread uses it at a time.
 */
#ifndef RIVULET_ARENA_H
#define RIVULET_ARENA_H

#include "common.h"

RV_BEGIN_DECLS

/** An arena. Opaque. */
typedef struct rv_arena_s rv_arena_t;

/**
 * Creates an arena whose first block holds `block_size` bytes (0 picks 64 KiB). Returns NULL
 * when memory is exhausted. Free with rv_arena_destroy().
 */
RV_API rv_arena_t *rv_arena_new(size_t block_size);

/** Frees the arena and everything allocated from it. Accepts NULL. */
RV_API void rv_arena_destroy(rv_arena_t *arena);

/**
 * Returns `size` bytes aligned to 16, valid until the next rv_arena_reset() or
 * rv_arena_destroy(); NULL when memory is exhausted. `size` 0 returns a valid pointer
 * that may equal the next allocation.
 */
RV_API void *rv_arena_alloc(rv_arena_t *arena, size_t size);

/** Copies `len` bytes into the arena; NULL when memory is exhausted. */
RV_API void *rv_arena_memdup(rv_arena_t *arena, const void *data, size_t len);

/** Copies `len` bytes into the arena and adds a terminating NUL. */
RV_API char *rv_arena_strndup(rv_arena_t *arena, const char *str, size_t len);

/**
 * Forgets every allocation and keeps the memory: when the arena grew past one block, the blocks
 * are replaced by one as large as all of them, so a steady workload stops calling malloc after
 * its first batch.
 */
RV_API void rv_arena_reset(rv_arena_t *arena);

/** Bytes handed out since creation or the last reset. */
RV_API size_t rv_arena_used(const rv_arena_t *arena);

/** Bytes the arena holds from the system (its blocks). */
RV_API size_t rv_arena_reserved(const rv_arena_t *arena);

RV_END_DECLS

#endif
