/*
 * fuzz_fpconv.c: libFuzzer target for the double <-> decimal conversions of src/codec/fpconv.c.
 *
 * Each input is used three times. Its first 8 bytes, as a double: when finite, the shortest
 * spelling must be a JSON number of at most 25 characters, read back to the same bits through
 * rv__strtod() and glibc's strtod_l(), no correctly rounded spelling with one digit less may
 * read back (for doubles whose rounding interval is symmetric), and no byte past the spelling
 * may change. Its first 16 bytes, as a short decimal (up to 15 significant digits, up to eight
 * on either side of the point, the shapes the writer's fast paths take): the double nearest it
 * must be spelled exactly as that decimal, without leading or trailing zeros. The whole input,
 * as text:
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
    char buf[RV_DTOA_MAX + 16];
    memset(buf, 'x', sizeof buf);
    size_t n = rv__dtoa_shortest(d, buf);
    if (n > 25 || !json_number(buf, n)) {
        abort();
    }
    for (size_t i = n; i < sizeof buf; i++) {
        if (buf[i] != 'x') {
            abort(); /* wrote past the spelling */
        }
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

/*
 * Builds the decimal [-]whole.frac from 16 input bytes: whole below 10^8, `places` (1..8)
 * fraction digits, at most 15 significant digits, so that no other decimal as short reads to
 * the same double. Unless it is below 1e-6 (spelled with an exponent), the double nearest it
 * must be spelled exactly so: the integer part, the point, the fraction without trailing
 * zeros but at least one digit.
 */
static void check_short_decimal(const uint8_t *data) {
    uint64_t a, b;
    memcpy(&a, data, 8);
    memcpy(&b, data + 8, 8);
    int places = 1 + (int)(b >> 60) % 8;
    uint64_t scale = 1;
    for (int i = 0; i < places; i++) {
        scale *= 10;
    }
    uint64_t whole = (a >> 1) % 100000000 >> (a >> 59); /* small integer parts often */
    if (places == 8) {
        whole %= 10000000;
    }
    uint64_t frac = (b & UINT64_C(0x0fffffffffffffff)) % scale;
    char frac_text[16], want[48];
    snprintf(frac_text, sizeof frac_text, "%0*llu", places, (unsigned long long)frac);
    int n = places;
    while (n > 1 && frac_text[n - 1] == '0') {
        n--;
    }
    snprintf(want, sizeof want, "%s%llu.%.*s", a & 1 ? "-" : "", (unsigned long long)whole, n,
             frac_text);
    double d = strtod_l(want, NULL, c_locale);
    if (whole == 0 && fabs(d) < 1e-6) {
        return;
    }
    char buf[RV_DTOA_MAX + 1];
    size_t len = rv__dtoa_shortest(d, buf);
    if (len != strlen(want) || memcmp(buf, want, len) != 0) {
        fprintf(stderr, "rv__dtoa_shortest(%s) = \"%.*s\"\n", want, (int)len, buf);
        abort();
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
    if (size >= 16) {
        check_short_decimal(data);
    }
    check_text(data, size);
    return 0;
}
