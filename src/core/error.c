/*
 * error.c: error codes' names and texts, and error objects with formatted messages.
 *
 * Error objects are built only on failure paths; nothing here runs on a success path.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/core_int.h"

struct rv_error_s {
    rv_err_t code;
    char *message;
};

const char *rv_err_name(rv_err_t err) {
    switch (err) {
#define RV__ERR_NAME(name, value, text)                                                    \
    case RV_ERR_##name:                                                                    \
        return #name;
        RV_ERRORS(RV__ERR_NAME)
#undef RV__ERR_NAME
    }
    return "UNKNOWN";
}

const char *rv_err_str(rv_err_t err) {
    switch (err) {
#define RV__ERR_TEXT(name, value, text)                                                    \
    case RV_ERR_##name:                                                                    \
        return text;
        RV_ERRORS(RV__ERR_TEXT)
#undef RV__ERR_TEXT
    }
    return "unknown error code";
}

rv_err_t rv_error_code(const rv_error_t *err) {
    return err ? err->code : RV_OK;
}

const char *rv_error_message(const rv_error_t *err) {
    if (!err) {
        return "success";
    }
    return err->message ? err->message : rv_err_str(err->code);
}

void rv_error_destroy(rv_error_t *err) {
    if (err) {
        free(err->message);
        free(err);
    }
}

/* Formats into a fresh heap string; NULL when memory is exhausted. */
static char *vformat(const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0) {
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (s) {
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    }
    return s;
}

rv_err_t rv__error_setv(rv_error_t **err, rv_err_t code, const char *fmt, va_list ap) {
    if (!err) {
        return code;
    }
    rv_error_destroy(*err);
    *err = NULL;
    rv_error_t *e = calloc(1, sizeof *e);
    if (!e) {
        return code; /* the code still says what failed; the message is the casualty */
    }
    e->code = code;
    e->message = vformat(fmt, ap);
    *err = e;
    return code;
}

rv_err_t rv__error_set(rv_error_t **err, rv_err_t code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    rv__error_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

rv_err_t rv__error_prefix(rv_error_t **err, rv_err_t code_if_none, const char *fmt, ...) {
    if (!err || !*err) {
        return code_if_none;
    }
    va_list ap;
    va_start(ap, fmt);
    char *prefix = vformat(fmt, ap);
    va_end(ap);
    rv_error_t *e = *err;
    if (prefix) {
        const char *old = rv_error_message(e);
        size_t a = strlen(prefix), b = strlen(old);
        char *joined = malloc(a + b + 1);
        if (joined) {
            memcpy(joined, prefix, a);
            memcpy(joined + a, old, b + 1);
            free(e->message);
            e->message = joined;
        }
        free(prefix);
    }
    return e->code;
}

const char *rv__quote(char *out, size_t out_size, const void *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = s;
    size_t o = 0;
    if (out_size < 8) {
        if (out_size) {
            out[0] = 0;
        }
        return out;
    }
    out[o++] = '\'';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        size_t need = (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') ? 1 : 4;
        if (o + need + 5 > out_size) {
            memcpy(out + o, "'...", 4);
            o += 4;
            out[o] = 0;
            return out;
        }
        if (need == 1) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o++] = '\'';
    out[o] = 0;
    return out;
}
