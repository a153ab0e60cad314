/*
 * rivulet/common.h: definitions every other public header relies on.
 *
 * The export macro, the C++ guards and the one small view struct that crosses the API,
 * rv_buf_t. Nothing here allocates or has behaviour.
 */
#ifndef RIVULET_COMMON_H
#define RIVULET_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define RV_BEGIN_DECLS extern "C" {
#define RV_END_DECLS }
#else
#define RV_BEGIN_DECLS
#define RV_END_DECLS
#endif

#if defined(__GNUC__)
#define RV_API __attribute__((visibility("default")))
#define RV_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define RV_NODISCARD __attribute__((warn_unused_result))
#else
#define RV_API
#define RV_PRINTF(fmt, args)
#define RV_NODISCARD
#endif

RV_BEGIN_DECLS

/** A borrowed view of bytes: `data` is valid for `len` bytes for as long as its owner says. */
typedef struct rv_buf_s {
    const void *data;
    size_t len;
} rv_buf_t;

/** The library version as "MAJOR.MINOR.PATCH"; a static string. */
RV_API const char *rv_version(void);

/**
 * Frees memory the library handed to the caller with the phrase "free with rv_free()".
 * Accepts NULL.
 */
RV_API void rv_free(void *ptr);

RV_END_DECLS

#endif
