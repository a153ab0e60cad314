/*
 * version.c: the library version and rv_free(), the one deallocator for memory the library
 * hands to callers.
 */
#include <stdlib.h>

#include "core/core_int.h"

const char *rv_version(void) {
    return RV_VERSION_STRING;
}

void rv_free(void *ptr) {
    free(ptr);
}
