/*
 * fpconv.h: exact conversions between doubles and decimal text, for the codecs.
 *
 * rv__dtoa_shortest() writes the shortest decimal that reads back to the same double;
 * rv__strtod() reads decimal text to the nearest double, correctly rounded, independent of
 * the process locale. Both are internal to the library, allocate nothing, keep no state and
 * may be called from any thread.
 */
#ifndef RV_FPCONV_H
#define RV_FPCONV_H

#include <stddef.h>
#include <stdint.h>

#include "core/core_int.h"

/* Room for the text rv__dtoa_shortest() writes, without a NUL; the longest is 25 characters
 * ("-0.0000012345678901234567"). */
#define RV_DTOA_MAX 32

/*
 * Writes the shortest round-tripping JSON-compatible spelling of finite `d` into `buf` (at
 * least RV_DTOA_MAX bytes), without a NUL, and returns its length; the bytes after it keep
 * their values (nothing past the returned length is written). The spelling always reads
 * as a number with a fraction or exponent (1.0 is "1.0", 1e21 is "1e21"), so a JSON reader
 * keeps it a double; -0.0 is "-0.0".
 *
 * The digits are the fewest that read back to exactly `d`; among spellings with that many
 * digits, the one closest to the exact value of `d` (an exact tie takes the even last digit).
 * The layout follows JavaScript's Number.prototype.toString: plain decimal when
 * 1e-6 <= |d| < 1e21 ("123.456", "0.000001", "100000000000000000000.0"), otherwise one digit
 * before the point and an exponent without '+' or leading zeros ("1e21", "1e-7", "1.5e-7",
 * "5e-324", "1.7976931348623157e308"). Never longer than 25 characters.
 *
 * `d` must be finite; a NaN is written "NaN" and the infinities "Infinity" and "-Infinity"
 * (JavaScript's names, which are not JSON), so a caller that forgot to check gets no crash.
 */
RV__HIDDEN size_t rv__dtoa_shortest(double d, char *buf);

/*
 * Converts the JSON number text `s[0..len)` (optional '-', digits without a leading zero,
 * optional fraction, optional exponent) to the correctly rounded double (round half to even)
 * in *out. Overflow gives ±infinity and returns RV_ERR_RANGE; underflow gives ±0.0 (or the
 * nearest subnormal) and RV_OK. Text that is not exactly one JSON number (empty, "+1", "01",
 * "1.", ".5", "1e", spaces) returns RV_ERR_PARSE and leaves *out unchanged. Any length of
 * digits and any exponent are accepted; the cost grows linearly with `len`. Assumes the
 * default floating-point rounding mode (to nearest).
 */
RV__HIDDEN rv_err_t rv__strtod(const char *s, size_t len, double *out);

/* ---- internals, shared with the unit test ------------------------------------------------ */

/* The range of decimal exponents held in the table of powers of ten. */
#define RV__POW10_MIN (-342)
#define RV__POW10_MAX 324

/*
 * Reads the table entry for 10^e, RV__POW10_MIN <= e <= RV__POW10_MAX: the floor of
 * 10^e * 2^(127 - rv__floor_log2_pow10(e)), a number in [2^127, 2^128), as its high and low
 * 64-bit halves. Exact for 0 <= e <= 55.
 */
RV__HIDDEN void rv__fpconv_pow10(int e, uint64_t *hi, uint64_t *lo);

/*
 * Integer logarithms by fixed-point multiplication, valid for |e| <= 1200 (the unit test
 * checks the ranges used against exact arithmetic). They rely on '>>' of a negative int being
 * an arithmetic shift, as GCC and Clang define it.
 */
/* floor(e * log2(10)). */
static inline int rv__floor_log2_pow10(int e) {
    return (e * 1741647) >> 19;
}

/* floor(q * log10(2)). */
static inline int rv__floor_log10_pow2(int q) {
    return (q * 1262611) >> 22;
}

/* floor(q * log10(2) + log10(3/4)). */
static inline int rv__floor_log10_three_quarters_pow2(int q) {
    return (q * 1262611 - 524031) >> 22;
}

#endif
