/*
 * rivulet/strbuf.h: a growable byte buffer owned by the caller.
 *
 * Writers (JSON, CSV, the CLI's formatter) append to an rv_strbuf_t so a loop can reuse one
 * buffer for every record instead of allocating per call. The struct is a view the caller
 * may read directly: `data[0..len)` holds the bytes written, and `data[len]` is always a NUL
 * once anything was appended.
 */
#ifndef RIVULET_STRBUF_H
#define RIVULET_STRBUF_H

#include "common.h"
#include "error.h"

RV_BEGIN_DECLS

/** A growable buffer. Initialise with RV_STRBUF_INIT (or zero it); free with rv_strbuf_free(). */
typedef struct rv_strbuf_s {
    char *data;
    size_t len;
    size_t cap;
} rv_strbuf_t;

#define RV_STRBUF_INIT {NULL, 0, 0}

/** Makes room for `extra` more bytes plus the NUL. RV_ERR_NOMEM when memory is exhausted. */
RV_API rv_err_t rv_strbuf_reserve(rv_strbuf_t *sb, size_t extra);

/** Appends `len` bytes. RV_ERR_NOMEM when memory is exhausted (the buffer is unchanged). */
RV_API rv_err_t rv_strbuf_append(rv_strbuf_t *sb, const void *data, size_t len);

/** Appends formatted text, as printf does. */
RV_API rv_err_t rv_strbuf_appendf(rv_strbuf_t *sb, const char *fmt, ...) RV_PRINTF(2, 3);

/** Empties the buffer and keeps its memory. */
RV_API void rv_strbuf_clear(rv_strbuf_t *sb);

/** Frees the buffer's memory and leaves it empty and reusable. Accepts an empty buffer. */
RV_API void rv_strbuf_free(rv_strbuf_t *sb);

RV_END_DECLS

#endif
