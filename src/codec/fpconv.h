/*
 * fpconv.h: exact conversions between doubles and decimal text, for the codecs.
 *
 * rv__dtoa_shortest() writes the shortest decimal that reads back to the same double;
 * rv__strtod() reads decimal text to the nearest double, correctly rounded, independent of
 * the process locale. Both are internal to the library.
 */
#ifndef RV_FPCONV_H
#define RV_FPCONV_H

#include <stddef.h>

#include "core/core_int.h"

/* Longest text rv__dtoa_shortest() writes, without a NUL ("-2.2250738585072014e-308"). */
#define RV_DTOA_MAX 32

/*
 * Writes the shortest round-tripping JSON-compatible spelling of finite `d` into `buf` (at
 * least RV_DTOA_MAX bytes), without a NUL, and returns its length. The spelling always reads
 * as a number with a fraction or exponent (1.0 is "1.0", 1e21 is "1e21"), so a JSON reader
 * keeps it a double; -0.0 is "-0.0". `d` must be finite.
 */
RV__HIDDEN size_t rv__dtoa_shortest(double d, char *buf);

/*
 * Converts the JSON number text `s[0..len)` (already validated by the caller's grammar:
 * optional '-', digits, optional fraction, optional exponent) to the correctly rounded
 * double in *out. Overflow gives ±infinity and returns RV_ERR_RANGE; underflow gives ±0.0
 * (or the nearest subnormal) and RV_OK.
 */
RV__HIDDEN rv_err_t rv__strtod(const char *s, size_t len, double *out);

#endif
