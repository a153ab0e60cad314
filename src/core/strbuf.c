/*
 * strbuf.c: the caller-owned growable byte buffer writers append to.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/core_int.h"
#include "rivulet/strbuf.h"

rv_err_t rv_strbuf_reserve(rv_strbuf_t *sb, size_t extra) {
    if (extra > SIZE_MAX - sb->len - 1) {
        return RV_ERR_NOMEM;
    }
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap) {
        return RV_OK;
    }
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    char *d = realloc(sb->data, cap);
    if (!d) {
        return RV_ERR_NOMEM;
    }
    sb->data = d;
    sb->cap = cap;
    return RV_OK;
}

rv_err_t rv_strbuf_append(rv_strbuf_t *sb, const void *data, size_t len) {
    if (sb->cap - sb->len <= len || !sb->data) {
        rv_err_t e = rv_strbuf_reserve(sb, len);
        if (e) {
            return e;
        }
    }
    if (len) {
        memcpy(sb->data + sb->len, data, len);
    }
    sb->len += len;
    sb->data[sb->len] = 0;
    return RV_OK;
}

rv_err_t rv_strbuf_appendf(rv_strbuf_t *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    rv_err_t e = n < 0 ? RV_ERR_INVALID_ARG : rv_strbuf_reserve(sb, (size_t)n);
    if (!e) {
        vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
        sb->len += (size_t)n;
    }
    va_end(ap);
    return e;
}

void rv_strbuf_clear(rv_strbuf_t *sb) {
    sb->len = 0;
    if (sb->data) {
        sb->data[0] = 0;
    }
}

void rv_strbuf_free(rv_strbuf_t *sb) {
    free(sb->data);
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
}
