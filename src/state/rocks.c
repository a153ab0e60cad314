/*
 * rocks.c: loading RocksDB on first use (see rocks.h for why it is not linked).
 *
 * RV_ROCKSDB_SONAME is the library the build found (CMake reads its SONAME), so the loaded
 * library is the one whose rocksdb/c.h this code was compiled against.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "state/rocks.h"

#ifndef RV_ROCKSDB_SONAME
#define RV_ROCKSDB_SONAME "librocksdb.so"
#endif

rv__rocks_t rv__rk;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static bool loaded;
static char load_error[512];

bool rv__rocks_resolve(const char *soname, rv__rocks_t *out, char *why, size_t cap) {
    /* RTLD_LOCAL: RocksDB's C++ symbols stay out of the global namespace of the process. */
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        snprintf(why, cap, "cannot load RocksDB (%s): %s", soname, e ? e : "unknown reason");
        return false;
    }
    rv__rocks_t t;
    const char *missing = NULL;
    /* POSIX guarantees that a function's address survives the round trip through void *. */
#define RV__ROCKS_RESOLVE(name)                                                                    \
    if (!missing) {                                                                                \
        void *sym = dlsym(lib, #name);                                                             \
        if (sym) {                                                                                 \
            memcpy(&t.name, &sym, sizeof sym);                                                     \
        } else {                                                                                   \
            missing = #name;                                                                       \
        }                                                                                          \
    }
    RV__ROCKS_FUNCTIONS(RV__ROCKS_RESOLVE)
#undef RV__ROCKS_RESOLVE
    if (missing) {
        snprintf(why, cap, "cannot use RocksDB (%s): it has no function %s", soname, missing);
        dlclose(lib);
        return false;
    }
    *out = t; /* the library stays loaded for the life of the process */
    return true;
}

static void load(void) {
    loaded = rv__rocks_resolve(RV_ROCKSDB_SONAME, &rv__rk, load_error, sizeof load_error);
}

bool rv__rocks_load(const char **why) {
    pthread_once(&load_once, load);
    if (!loaded && why) {
        *why = load_error;
    }
    return loaded;
}
