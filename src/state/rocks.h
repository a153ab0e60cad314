/*
 * rocks.h: RocksDB, loaded when the first state store needs it.
 *
 * Mapping librocksdb (and the C++ runtime it brings) costs a process about 8.5 MiB of resident
 * memory before it does anything: relocated tables and static constructors. A stateless
 * application never touches RocksDB, so librivulet does not link it: the first store to open
 * (or the first check of rocksdb.* properties) loads it with dlopen, and every call goes through
 * the table below, whose entries have the exact types of rocksdb/c.h's declarations.
 * Nothing outside src/state includes this file.
 */
#ifndef RV_STATE_ROCKS_H
#define RV_STATE_ROCKS_H

#include <rocksdb/c.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/core_int.h"

/* Every RocksDB function rivulet calls. */
#define RV__ROCKS_FUNCTIONS(X)                                                                     \
    X(rocksdb_open)                                                                                \
    X(rocksdb_close)                                                                               \
    X(rocksdb_destroy_db)                                                                          \
    X(rocksdb_get)                                                                                 \
    X(rocksdb_write)                                                                               \
    X(rocksdb_property_int)                                                                        \
    X(rocksdb_options_create)                                                                      \
    X(rocksdb_options_destroy)                                                                     \
    X(rocksdb_options_set_create_if_missing)                                                       \
    X(rocksdb_options_set_keep_log_file_num)                                                       \
    X(rocksdb_options_set_max_open_files)                                                          \
    X(rocksdb_options_set_write_buffer_size)                                                       \
    X(rocksdb_get_options_from_string)                                                             \
    X(rocksdb_readoptions_create)                                                                  \
    X(rocksdb_readoptions_destroy)                                                                 \
    X(rocksdb_readoptions_set_iterate_upper_bound)                                                 \
    X(rocksdb_writeoptions_create)                                                                 \
    X(rocksdb_writebatch_create)                                                                   \
    X(rocksdb_writebatch_destroy)                                                                  \
    X(rocksdb_writebatch_clear)                                                                    \
    X(rocksdb_writebatch_count)                                                                    \
    X(rocksdb_writebatch_put)                                                                      \
    X(rocksdb_writebatch_delete)                                                                   \
    X(rocksdb_create_iterator)                                                                     \
    X(rocksdb_iter_destroy)                                                                        \
    X(rocksdb_iter_seek)                                                                           \
    X(rocksdb_iter_next)                                                                           \
    X(rocksdb_iter_valid)                                                                          \
    X(rocksdb_iter_key)                                                                            \
    X(rocksdb_iter_value)                                                                          \
    X(rocksdb_iter_get_error)

#define RV__ROCKS_FIELD(name) __typeof__(name) *name;
typedef struct rv__rocks_s {
    RV__ROCKS_FUNCTIONS(RV__ROCKS_FIELD)
} rv__rocks_t;
#undef RV__ROCKS_FIELD

/* The loaded functions; valid once rv__rocks_load() returned true. */
RV__HIDDEN extern rv__rocks_t rv__rk;

/* Loads RocksDB once per process (thread-safe; later calls answer at once). On failure returns
 * false with a message naming the library and the loader's reason in *why (static storage). */
RV__HIDDEN bool rv__rocks_load(const char **why);

/* Opens the library `soname` and fills *out with its functions; false with the reason in `why`
 * when it cannot be opened or lacks one of them (the first missing one is named). */
RV__HIDDEN bool rv__rocks_resolve(const char *soname, rv__rocks_t *out, char *why, size_t cap);

#endif
