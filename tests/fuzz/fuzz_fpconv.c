/*
 * fuzz_fpconv.c: libFuzzer target for the double <-> decimal conversions of src/codec/fpconv.c.
 *
 * Each input is used twice. Its first 8 bytes, as a double: when finite, the shortest spelling
 * must be a JSON number of at most 25 characters, read back to the same bits through
 * rv__strtod() and glibc's strtod_l(), and no correctly rounded spelling with one digit less
 * may read back (for doubles whose rounding interval is symmetric). The whole input, as text:
 * when it is a JSON number, rv__strtod() must agree bit for bit with strtod_l() in the C
 * locale (and say RV_ERR_RANGE exactly when that gives an infinity); otherwise it must say
 * RV_ERR_PARSE. Any disagreement aborts.
 */
#include "codec/fpconv.h"

#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static locale_t c_locale;

static uint64_t bits_of(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static bool is_digit(char ch) {
    return ch >= '0' && ch <= '9';
}

/* Whether s[0..n) is exactly one number in the JSON grammar (RFC 8259, section 6). */
static bool json_number(const char *s, size_t n) {
    size_t i = 0;
    if (i < n && s[i] == '-') {
        i++;
    }
    if (i == n) {
        return false;
    }
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && is_digit(s[i])) {
            i++;
        }
    } else {
        return false;
    }
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        while (i < n && is_digit(s[i])) {
            i++;
        }
        if (i == start) {
            return false;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        size_t start = i;
        while (i < n && is_digit(s[i])) {
            i++;
        }
        if (i == start) {
            return false;
        }
    }
    return i == n;
}

/* The number of significant digits of a spelling, leading and trailing zeros excluded. */
static int significant_digits(const char *s) {
    int n = 0, trailing = 0;
    for (; *s && *s != 'e'; s++) {
        if (!is_digit(*s) || (n == 0 && *s == '0')) {
            continue;
        }
        n++;
        trailing = *s == '0' ? trailing + 1 : 0;
    }
    return n - trailing;
}

static void check_double(double d) {
    char buf[RV_DTOA_MAX + 1];
    size_t n = rv__dtoa_shortest(d, buf);
    if (n > 25 || !json_number(buf, n)) {
        abort();
    }
    buf[n] = 0;
    if (!strpbrk(buf, ".e")) {
        abort(); /* would read back as an integer */
    }
    double back = 0;
    if (rv__strtod(buf, n, &back) != RV_OK || bits_of(back) != bits_of(d)) {
        abort();
    }
    if (bits_of(strtod_l(buf, NULL, c_locale)) != bits_of(d)) {
        abort();
    }
    /* Shortest: the correctly rounded spelling with one digit less does not read back. The
     * test is complete only when the interval is symmetric, so skip powers of two. */
    int digits = significant_digits(buf);
    if (digits >= 2 && (bits_of(d) & ((UINT64_C(1) << 52) - 1)) != 0) {
        char shorter[64];
        snprintf(shorter, sizeof shorter, "%.*e", digits - 2, d);
        if (bits_of(strtod_l(shorter, NULL, c_locale)) == bits_of(d)) {
            abort();
        }
    }
}

static void check_text(const uint8_t *data, size_t size) {
    /* An exactly sized copy, so ASan catches a read past the end. */
    char *text = malloc(size + 1);
    if (!text) {
        abort();
    }
    memcpy(text, data, size);
    double ours = 0.5;
    rv_err_t err = rv__strtod(text, size, &ours);
    if (json_number(text, size)) {
        text[size] = 0;
        double ref = strtod_l(text, NULL, c_locale);
        if (bits_of(ours) != bits_of(ref) || err != (isinf(ref) ? RV_ERR_RANGE : RV_OK)) {
            fprintf(stderr, "rv__strtod(\"%.300s\") = %a (err %d), strtod_l = %a\n", text, ours,
                    (int)err, ref);
            abort();
        }
    } else if (err != RV_ERR_PARSE || ours != 0.5) {
        abort();
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!c_locale) {
        c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
        if (!c_locale) {
            abort();
        }
    }
    if (size >= 8) {
        double d;
        memcpy(&d, data, sizeof d);
        if (isfinite(d)) {
            check_double(d);
        }
    }
    check_text(data, size);
    return 0;
}
