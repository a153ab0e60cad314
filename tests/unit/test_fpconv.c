/*
 * test_fpconv.c: unit tests of the double <-> decimal conversions in src/codec/fpconv.c.
 *
 * Checks the table of powers of ten and the integer logarithms against exact big-integer
 * arithmetic, fixed spellings both ways, and, on a few hundred thousand pseudo-random doubles
 * and decimal strings, that rv__dtoa_shortest() is shortest, closest and round-trips and that
 * rv__strtod() agrees bit for bit with glibc's correctly rounded strtod_l() in the C locale.
 * The fast paths for short decimals are checked against spellings known in advance, at and
 * around their limits, and for writing nothing past the text.
 * Every run uses the same seed, so a failure reproduces.
 */
#include "codec/fpconv.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>

#include "rv_test.h"

static locale_t c_locale;

static double ref_strtod(const char *s) {
    return strtod_l(s, NULL, c_locale);
}

static uint64_t bits_of(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static double double_of(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

/* splitmix64: a fixed seed, so every failure reproduces. */
static uint64_t rng_state = UINT64_C(0x243f6a8885a308d3);

static uint64_t rng(void) {
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t n) {
    return rng() % n;
}

/* A random finite double from a random bit pattern. */
static double random_double(void) {
    for (;;) {
        double d = double_of(rng());
        if (isfinite(d)) {
            return d;
        }
    }
}

/* Runs rv__strtod on an exactly sized heap copy of the text, so ASan sees any over-read. */
static rv_err_t our_strtod(const char *s, size_t len, double *out) {
    char *copy = malloc(len ? len : 1);
    if (!copy) {
        abort();
    }
    memcpy(copy, s, len);
    rv_err_t err = rv__strtod(copy, len, out);
    free(copy);
    return err;
}

/* ---- exact big integers for checking the table ------------------------------------------ */

#define TBIG_LIMBS 240

typedef struct tbig_s {
    uint32_t d[TBIG_LIMBS]; /* least significant first */
    int n;
} tbig_t;

static void tbig_set(tbig_t *b, uint64_t v) {
    b->n = 0;
    while (v) {
        b->d[b->n++] = (uint32_t)v;
        v >>= 32;
    }
}

static void tbig_mul(tbig_t *b, uint32_t m) {
    uint64_t carry = 0;
    for (int i = 0; i < b->n; i++) {
        uint64_t t = (uint64_t)b->d[i] * m + carry;
        b->d[i] = (uint32_t)t;
        carry = t >> 32;
    }
    if (carry) {
        if (b->n == TBIG_LIMBS) {
            abort();
        }
        b->d[b->n++] = (uint32_t)carry;
    }
}

static void tbig_mul_pow10(tbig_t *b, int n) {
    for (; n >= 9; n -= 9) {
        tbig_mul(b, 1000000000);
    }
    for (; n > 0; n--) {
        tbig_mul(b, 10);
    }
}

static void tbig_shl(tbig_t *b, int n) {
    int words = n / 32;
    if (b->n == 0) {
        return;
    }
    if (b->n + words + 1 > TBIG_LIMBS) {
        abort();
    }
    memmove(b->d + words, b->d, (size_t)b->n * sizeof b->d[0]);
    memset(b->d, 0, (size_t)words * sizeof b->d[0]);
    b->n += words;
    for (n %= 32; n > 0; n--) {
        tbig_mul(b, 2);
    }
}

static int tbig_cmp(const tbig_t *a, const tbig_t *b) {
    if (a->n != b->n) {
        return a->n > b->n ? 1 : -1;
    }
    for (int i = a->n - 1; i >= 0; i--) {
        if (a->d[i] != b->d[i]) {
            return a->d[i] > b->d[i] ? 1 : -1;
        }
    }
    return 0;
}

/* The sign of c * 2^e2 - 10^e10, computed exactly. */
static int cmp_pow2_pow10(uint32_t c, int e2, int e10) {
    tbig_t a, b;
    tbig_set(&a, c);
    tbig_set(&b, 1);
    tbig_shl(e2 >= 0 ? &a : &b, abs(e2));
    tbig_mul_pow10(e10 >= 0 ? &b : &a, abs(e10));
    return tbig_cmp(&a, &b);
}

/* The 128-bit number hi:lo (+ add) as a big integer. */
static void tbig_set128(tbig_t *b, uint64_t hi, uint64_t lo, uint64_t add) {
    lo += add;
    hi += lo < add;
    b->d[0] = (uint32_t)lo;
    b->d[1] = (uint32_t)(lo >> 32);
    b->d[2] = (uint32_t)hi;
    b->d[3] = (uint32_t)(hi >> 32);
    b->n = 4;
    while (b->n > 0 && b->d[b->n - 1] == 0) {
        b->n--;
    }
}

static void test_integer_logs(void) {
    int bad = 0;
    for (int e = -1200; e <= 1200 && bad < 5; e++) {
        int f = rv__floor_log2_pow10(e);
        /* 2^f <= 10^e < 2^(f+1) */
        if (!(cmp_pow2_pow10(1, f, e) <= 0 && cmp_pow2_pow10(1, f + 1, e) > 0)) {
            CHECK_MSG(0, "floor_log2_pow10(%d) = %d", e, f);
            bad++;
        }
    }
    for (int q = -1200; q <= 1200 && bad < 5; q++) {
        int k = rv__floor_log10_pow2(q);
        /* 10^k <= 2^q < 10^(k+1) */
        if (!(cmp_pow2_pow10(1, q, k) >= 0 && cmp_pow2_pow10(1, q, k + 1) < 0)) {
            CHECK_MSG(0, "floor_log10_pow2(%d) = %d", q, k);
            bad++;
        }
        k = rv__floor_log10_three_quarters_pow2(q);
        /* 10^k <= 3 * 2^(q-2) < 10^(k+1) */
        if (!(cmp_pow2_pow10(3, q - 2, k) >= 0 && cmp_pow2_pow10(3, q - 2, k + 1) < 0)) {
            CHECK_MSG(0, "floor_log10_three_quarters_pow2(%d) = %d", q, k);
            bad++;
        }
    }
    CHECK_INT(bad, 0);
}

/* Every entry P of the table must be floor(10^e * 2^(127 - f)), with the top bit set. */
static void test_pow10_table(void) {
    int bad = 0;
    for (int e = RV__POW10_MIN; e <= RV__POW10_MAX; e++) {
        uint64_t hi, lo;
        rv__fpconv_pow10(e, &hi, &lo);
        int f = rv__floor_log2_pow10(e);
        int sh = 127 - f;
        tbig_t p, p1, x;
        tbig_set128(&p, hi, lo, 0);
        tbig_set128(&p1, hi, lo, 1);
        bool ok = hi >> 63 == 1;
        if (e >= 0 && sh >= 0) {
            /* exact: P = 10^e * 2^sh */
            tbig_set(&x, 1);
            tbig_mul_pow10(&x, e);
            tbig_shl(&x, sh);
            ok = ok && tbig_cmp(&p, &x) == 0;
        } else if (e >= 0) {
            /* P * 2^-sh <= 10^e < (P + 1) * 2^-sh */
            tbig_set(&x, 1);
            tbig_mul_pow10(&x, e);
            tbig_shl(&p, -sh);
            tbig_shl(&p1, -sh);
            ok = ok && tbig_cmp(&p, &x) <= 0 && tbig_cmp(&p1, &x) > 0;
        } else {
            /* P * 10^-e <= 2^sh < (P + 1) * 10^-e */
            tbig_set(&x, 1);
            tbig_shl(&x, sh);
            tbig_mul_pow10(&p, -e);
            tbig_mul_pow10(&p1, -e);
            ok = ok && tbig_cmp(&p, &x) <= 0 && tbig_cmp(&p1, &x) > 0;
        }
        if (!ok && bad++ < 5) {
            CHECK_MSG(0, "table entry for 10^%d is wrong: %016" PRIx64 " %016" PRIx64, e, hi, lo);
        }
    }
    CHECK_INT(bad, 0);
}

/* ---- writing ----------------------------------------------------------------------------- */

static const char *dtoa(double d, char *buf) {
    size_t n = rv__dtoa_shortest(d, buf);
    buf[n] = 0;
    return buf;
}

static void test_dtoa_fixed(void) {
    static const struct {
        double d;
        const char *text;
    } cases[] = {
        {0.0, "0.0"},
        {-0.0, "-0.0"},
        {1.0, "1.0"},
        {-1.0, "-1.0"},
        {0.1, "0.1"},
        {0.3, "0.3"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1.0 / 3.0, "0.3333333333333333"},
        {2.0 / 3.0, "0.6666666666666666"},
        {1.5, "1.5"},
        {100.0, "100.0"},
        {123.456, "123.456"},
        {-98765.4321, "-98765.4321"},
        {0.0012, "0.0012"},
        {4.35, "4.35"},
        {5e-324, "5e-324"},
        {1e-323, "1e-323"},
        {1.5e-323, "1.5e-323"},
        {2.2250738585072014e-308, "2.2250738585072014e-308"},
        {2.225073858507201e-308, "2.225073858507201e-308"},
        {-2.2250738585072014e-308, "-2.2250738585072014e-308"},
        {1.7976931348623157e308, "1.7976931348623157e308"},
        {-1.7976931348623157e308, "-1.7976931348623157e308"},
        {9007199254740993.0, "9007199254740992.0"},
        {9007199254740991.0, "9007199254740991.0"},
        {9223372036854775808.0, "9223372036854776000.0"},
        {1e15, "1000000000000000.0"},
        {1e20, "100000000000000000000.0"},
        {123456789012345680000.0, "123456789012345680000.0"},
        {1e21, "1e21"},
        {1.5e21, "1.5e21"},
        {1e22, "1e22"},
        {1e23, "1e23"},
        {1e-6, "0.000001"},
        {1.234e-6, "0.000001234"},
        {-1.2345678901234567e-6, "-0.0000012345678901234567"},
        {1e-7, "1e-7"},
        {1.5e-7, "1.5e-7"},
        {-1.5e300, "-1.5e300"},
        {5e-310, "5e-310"},
        {0x1p-1022, "2.2250738585072014e-308"},
        {0x1p-1021, "4.450147717014403e-308"},
        {0x1p1023, "8.98846567431158e307"},
        {0x1p60, "1152921504606847000.0"},
        {0x1p-10, "0.0009765625"},
        {299792458.0, "299792458.0"},
        {2.718281828459045, "2.718281828459045"},
    };
    char buf[RV_DTOA_MAX + 1];
    for (size_t i = 0; i < RV_ARRAY_LEN(cases); i++) {
        CHECK_STR(dtoa(cases[i].d, buf), cases[i].text);
    }
    CHECK_STR(dtoa(NAN, buf), "NaN");
    CHECK_STR(dtoa(INFINITY, buf), "Infinity");
    CHECK_STR(dtoa(-INFINITY, buf), "-Infinity");
}

/*
 * Splits a decimal spelling ("-0.00123", "1.5e-7", "100.0", "1.2300e+05") into its significant
 * digits, without leading or trailing zeros, and the decimal exponent of the first one.
 * Returns the number of digits (0 for zero).
 */
static int split_decimal(const char *s, char *digits, int *exp10) {
    int nd = 0, pos = 0, point = -1, first = -1;
    const char *p = s + (*s == '-');
    for (; *p && *p != 'e' && *p != 'E'; p++) {
        if (*p == '.') {
            point = pos;
            continue;
        }
        if (first < 0 && *p != '0') {
            first = pos;
        }
        if (first >= 0) {
            digits[nd++] = *p;
        }
        pos++;
    }
    if (point < 0) {
        point = pos;
    }
    while (nd > 0 && digits[nd - 1] == '0') {
        nd--;
    }
    digits[nd] = 0;
    *exp10 = point - 1 - first + (*p ? atoi(p + 1) : 0);
    return nd;
}

/* Whether the decimal digits[0..n) * 10^x reads back to exactly d. */
static bool reads_back(const char *digits, int n, int x, double d) {
    char t[1024];
    snprintf(t, sizeof t, "%.*se%d", n, digits, x);
    return bits_of(ref_strtod(t)) == bits_of(d);
}

/* Adds one to the decimal string digits[0..n) in place (room for n + 1); returns the length. */
static int increment(char *digits, int n) {
    int i = n - 1;
    while (i >= 0 && digits[i] == '9') {
        digits[i--] = '0';
    }
    if (i >= 0) {
        digits[i]++;
        return n;
    }
    memmove(digits + 1, digits, (size_t)n);
    digits[0] = '1';
    return n + 1;
}

/*
 * The exact oracle: from the full decimal expansion of |d|, no decimal with fewer digits than
 * ours reads back (the two neighbours of |d| with one digit less are the only candidates), and
 * ours is the closest of the two neighbours with as many digits that read back. Slow.
 */
static bool check_shortest_exact(double d, const char *ours) {
    char exact[900], od[64], buf[1024];
    int e_exact, e_ours;
    d = fabs(d);
    snprintf(buf, sizeof buf, "%.780e", d);
    int nx = split_decimal(buf, exact, &e_exact);
    int n = split_decimal(ours, od, &e_ours);
    if (n == 0 || nx == 0) {
        return false;
    }
    memset(exact + nx, '0', sizeof exact - 1 - (size_t)nx); /* pad with zeros */
    exact[sizeof exact - 1] = 0;

    /* (n-1)-digit neighbours: the truncation and one unit above it (one digit is the least). */
    char cand[900];
    int x = e_exact - (n - 1) + 1; /* exponent of the last kept digit */
    if (n > 1) {
        memcpy(cand, exact, (size_t)(n - 1));
        if (reads_back(cand, n - 1, x, d)) {
            return false;
        }
        int cl = increment(cand, n - 1);
        if (reads_back(cand, cl, x, d)) {
            return false;
        }
    }

    /* n-digit neighbours, and which is closer: the tail of the exact expansion against half. */
    char lo[900], hi[900];
    x = e_exact - n + 1;
    memcpy(lo, exact, (size_t)n);
    memcpy(hi, exact, (size_t)n);
    int hl = increment(hi, n);
    bool lo_ok = reads_back(lo, n, x, d), hi_ok = reads_back(hi, hl, x, d);
    int tail = 0; /* sign of (tail - half) */
    if (exact[n] != '5') {
        tail = exact[n] > '5' ? 1 : -1;
    } else {
        for (int i = n + 1; exact[i]; i++) {
            if (exact[i] != '0') {
                tail = 1;
                break;
            }
        }
    }
    bool pick_lo;
    if (lo_ok && hi_ok) {
        pick_lo = tail < 0 || (tail == 0 && (lo[n - 1] - '0') % 2 == 0);
    } else if (lo_ok || hi_ok) {
        pick_lo = lo_ok;
    } else {
        return false;
    }
    char want[1024], wd[900];
    int e_want;
    snprintf(want, sizeof want, "%.*se%d", pick_lo ? n : hl, pick_lo ? lo : hi, x);
    split_decimal(want, wd, &e_want);
    return strcmp(wd, od) == 0 && e_want == e_ours;
}

/*
 * The fast oracle, complete when the rounding interval of d is symmetric (d is not a power of
 * two): ours has n digits and equals the correctly rounded n-digit decimal (snprintf "%.*e"),
 * and the correctly rounded (n-1)-digit decimal does not read back.
 */
static bool check_shortest_fast(double d, const char *ours) {
    char od[64], sd[64], buf[64];
    int e_ours, e_snp;
    int n = split_decimal(ours, od, &e_ours);
    if (n < 1 || n > 17) {
        return false;
    }
    snprintf(buf, sizeof buf, "%.*e", n - 1, d);
    split_decimal(buf, sd, &e_snp);
    if (strcmp(sd, od) != 0 || e_snp != e_ours) {
        return false;
    }
    if (n >= 2) {
        snprintf(buf, sizeof buf, "%.*e", n - 2, d);
        if (bits_of(ref_strtod(buf)) == bits_of(d)) {
            return false;
        }
    }
    return true;
}

/* Checks one double: JSON shape, length, round trip through both readers, shortest. */
static bool check_dtoa(double d, bool exact_oracle) {
    char buf[RV_DTOA_MAX + 8];
    memset(buf, 'x', sizeof buf);
    size_t n = rv__dtoa_shortest(d, buf);
    if (n > 25 || buf[n] != 'x') {
        CHECK_MSG(0, "%a: %zu characters", d, n);
        return false;
    }
    buf[n] = 0;
    bool shape = strpbrk(buf, ".e") != NULL && !strchr(buf, '+') && buf[n - 1] != '.';
    double back;
    rv_err_t err = rv__strtod(buf, n, &back);
    bool ok = shape && err == RV_OK && bits_of(back) == bits_of(d) &&
              bits_of(ref_strtod(buf)) == bits_of(d);
    if (ok && d != 0) {
        uint64_t b = bits_of(d);
        bool pow2 = (b & ((UINT64_C(1) << 52) - 1)) == 0;
        ok = exact_oracle || pow2 ? check_shortest_exact(d, buf) : check_shortest_fast(d, buf);
    }
    if (!ok) {
        CHECK_MSG(0, "dtoa(%a = %.17g) = \"%s\" is wrong", d, d, buf);
    }
    return ok;
}

#define N_RANDOM_DTOA 300000

static void test_dtoa_random(void) {
    int bad = 0;
    for (int i = 0; i < N_RANDOM_DTOA && bad < 10; i++) {
        bad += !check_dtoa(random_double(), false);
    }
    /* Telemetry-like values: a few digits, scaled by a power of ten. */
    for (int i = 0; i < 50000 && bad < 10; i++) {
        double v = (double)(int64_t)rng_below(10000000) - 5000000.0;
        int e = (int)rng_below(40) - 20;
        bad += !check_dtoa(e < 0 ? v / pow(10, -e) : v * pow(10, e), false);
    }
    /* The exact oracle on a sample, to cross-check the fast one. */
    for (int i = 0; i < 3000 && bad < 10; i++) {
        bad += !check_dtoa(random_double(), true);
    }
    CHECK_INT(bad, 0);
}

static void test_dtoa_edges(void) {
    int bad = 0;
    /* Every power of two: the irregular intervals. */
    for (int e = -1074; e <= 1023 && bad < 10; e++) {
        bad += !check_dtoa(ldexp(1.0, e), true);
    }
    /* The smallest subnormals, where the scaled values have few digits. */
    for (uint64_t c = 1; c <= 3000 && bad < 10; c++) {
        bad += !check_dtoa(double_of(c), true);
    }
    /* Runs of neighbours around the points where the layout or the digit count changes. */
    static const double centres[] = {1e21,   1e-6,  1e-7,   1.0,  0.1,       1e16,     1e17,
                                     0x1p53, 1e308, 1e-308, 1e23, 0x1p-1022, 0x1p-1023};
    for (size_t i = 0; i < RV_ARRAY_LEN(centres) && bad < 10; i++) {
        double up = centres[i], down = centres[i];
        for (int j = 0; j < 500 && bad < 10; j++) {
            bad += !check_dtoa(up, j < 20);
            bad += !check_dtoa(-down, j < 20);
            up = nextafter(up, INFINITY);
            down = nextafter(down, 0);
        }
    }
    /* Integers, where the fast path for integers below 2^53 takes over. */
    for (int i = 0; i < 20000 && bad < 10; i++) {
        bad += !check_dtoa((double)(rng() >> rng_below(64)), false);
    }
    CHECK_INT(bad, 0);
}

/*
 * Calls rv__dtoa_shortest with a buffer full of 'x' and checks that nothing past the returned
 * length changed: the writer composes with wide stores and must end them exactly. Returns the
 * length, the text NUL-terminated in buf (RV_DTOA_MAX + 16 bytes), or -1 after a failure.
 */
static int dtoa_untouched(double d, char *buf) {
    memset(buf, 'x', RV_DTOA_MAX + 16);
    size_t n = rv__dtoa_shortest(d, buf);
    for (size_t i = n; i < RV_DTOA_MAX + 16; i++) {
        if (buf[i] != 'x') {
            CHECK_MSG(0, "dtoa(%a) wrote byte %zu past its %zu characters", d, i - n, n);
            return -1;
        }
    }
    buf[n] = 0;
    return (int)n;
}

/*
 * The decimal (-)whole.frac with `places` fraction digits (frac < 10^places), spelled the way
 * rv__dtoa_shortest must spell the double nearest to it: no leading zeros, no trailing zeros
 * after the point but one digit kept. With at most 15 significant digits (DBL_DIG) no other
 * decimal as short reads to the same double, so this spelling is the shortest and the closest.
 */
static void fixed_text(char *out, bool neg, uint64_t whole, uint64_t frac, int places) {
    char f[32];
    snprintf(f, sizeof f, "%0*" PRIu64, places, frac);
    int n = places;
    while (n > 1 && f[n - 1] == '0') {
        n--;
    }
    sprintf(out, "%s%" PRIu64 ".%.*s", neg ? "-" : "", whole, n, f);
}

/* Checks one such decimal; skips those below 1e-6 (spelled with an exponent). */
static bool check_fixed(bool neg, uint64_t whole, uint64_t frac, int places) {
    char want[64], buf[RV_DTOA_MAX + 16];
    fixed_text(want, neg, whole, frac, places);
    double d = ref_strtod(want);
    if (whole == 0 && fabs(d) < 1e-6) {
        return true;
    }
    if (dtoa_untouched(d, buf) < 0) {
        return false;
    }
    if (strcmp(buf, want) != 0) {
        CHECK_MSG(0, "dtoa(%a) = \"%s\", want \"%s\"", d, buf, want);
        return false;
    }
    return true;
}

/*
 * The fast paths for short decimals, against spellings known in advance: every integer part
 * below 10^4 and every four-digit fraction (so every value of each four-digit group that the
 * digit conversion handles), then random decimals with up to eight fraction digits.
 */
static void test_dtoa_short_decimals(void) {
    static const uint64_t some_fracs[] = {0, 1, 5, 10, 99, 500, 999, 1000, 1234, 5000, 9990, 9999};
    static const uint64_t some_wholes[] = {0, 1, 7, 10, 99, 100, 287, 1000, 4095, 8191, 8192, 9999};
    int bad = 0;
    for (uint64_t w = 0; w < 10000 && bad < 10; w++) {
        for (size_t i = 0; i < RV_ARRAY_LEN(some_fracs); i++) {
            bad += !check_fixed(w & 1, w, some_fracs[i], 4);
        }
    }
    for (uint64_t f = 0; f < 10000 && bad < 10; f++) {
        for (size_t i = 0; i < RV_ARRAY_LEN(some_wholes); i++) {
            bad += !check_fixed(f & 1, some_wholes[i], f, 4);
        }
        bad += !check_fixed(false, 0, f, 8); /* 0.0000ffff and shorter */
    }
    for (int i = 0; i < 300000 && bad < 10; i++) {
        int places = 1 + (int)rng_below(8);
        uint64_t scale = 1;
        for (int j = 0; j < places; j++) {
            scale *= 10;
        }
        /* Integer parts of every length up to 8 digits, at most 15 significant digits. */
        uint64_t whole = rng() >> (40 + rng_below(24));
        while (whole >= 100000000 || (whole >= 10000000 && places == 8)) {
            whole /= 10;
        }
        uint64_t frac = rng_below(scale) >> rng_below(30); /* leading zeros now and then */
        bad += !check_fixed(rng() & 1, whole, frac, places);
    }
    CHECK_INT(bad, 0);
}

/* Checks one double with the exact oracle and that nothing past its text was written. */
static bool check_dtoa_untouched(double d, bool exact_oracle) {
    char buf[RV_DTOA_MAX + 16];
    return dtoa_untouched(d, buf) >= 0 && check_dtoa(d, exact_oracle);
}

/*
 * The limits of the fast paths of src/codec/fpconv.c, which take 2^-11 <= |d| < 2^26 with at
 * most eight digits after the point, and below 2^13 with at most four more quickly: the ends of
 * those ranges, decimals with one digit more than a path takes, which must fall back, and runs
 * of neighbours of all of them, which mostly fall back to Schubfach.
 */
static void test_dtoa_short_limits(void) {
    static const double centres[] = {
        0x1p-11,           /* the smallest the fast paths take; 2^-11 itself needs 11 places */
        0x1p13,            /* four digits before the point, or eight */
        0x1p26,            /* the largest the fast paths take are just below */
        0.0005,            /* four places, the smallest */
        0.00049,           /* five places, just above 2^-11 */
        0.00048,           /* below 2^-11: Schubfach */
        0.0001,            /* 2^-14 < 0.0001 < 2^-13: below the fast paths */
        0.001,             /* three places */
        0.1,               /* one place */
        0.5,               /* 2^-1, exact */
        1.0,               /* an integer, 2^0 */
        9.9999,            /* four places */
        9.99999,           /* five: the eight-place path */
        8191.9999,         /* the largest four-place value of the four-digit path */
        8192.0001,         /* four places above 2^13: the eight-place path */
        9999.9999,         /* likewise */
        10000.0001,        /* five digits before the point */
        0.12345678,        /* eight places */
        0.123456789,       /* nine places: Schubfach */
        1.00000001,        /* eight places */
        1.000000001,       /* nine places */
        67108863.5,        /* below 2^26 */
        67108864.5,        /* above: Schubfach */
        12345678.9,        /* eight digits before the point */
        52.01234567890123, /* fourteen places, like a GPS reading: Schubfach */
    };
    int bad = 0;
    for (size_t i = 0; i < RV_ARRAY_LEN(centres) && bad < 10; i++) {
        double up = centres[i], down = centres[i];
        for (int j = 0; j < 300 && bad < 10; j++) {
            bad += !check_dtoa_untouched(up, j < 30);
            bad += !check_dtoa_untouched(-down, j < 30);
            up = nextafter(up, INFINITY);
            down = nextafter(down, 0);
        }
    }
    /* Every power of two the fast paths take, and its neighbours. */
    for (int e = -12; e <= 27 && bad < 10; e++) {
        double d = ldexp(1.0, e);
        bad += !check_dtoa_untouched(d, true);
        bad += !check_dtoa_untouched(nextafter(d, 0), true);
        bad += !check_dtoa_untouched(nextafter(d, INFINITY), true);
    }
    /* Fixed spellings through each path. */
    static const struct {
        double d;
        const char *text;
    } cases[] = {
        {0.0005, "0.0005"},
        {0.00048828125, "0.00048828125"},
        {0.00049, "0.00049"},
        {0.001, "0.001"},
        {1.5, "1.5"},
        {-2.0, "-2.0"},
        {8191.9999, "8191.9999"},
        {8192.0, "8192.0"},
        {8192.5, "8192.5"},
        {9999.9999, "9999.9999"},
        {0.12345678, "0.12345678"},
        {0.123456789, "0.123456789"},
        {0.00048, "0.00048"},
        {12345678.12345678, "12345678.12345678"},
        {67108863.5, "67108863.5"},
        {67108864.5, "67108864.5"},
        {52.01234567890123, "52.01234567890123"},
        {67108863.99999999, "67108863.99999999"},
        {67108864.0, "67108864.0"},
        {287.453, "287.453"},
        {-0.0123, "-0.0123"},
        {98765.4321, "98765.4321"},
        {12.5, "12.5"},
    };
    char buf[RV_DTOA_MAX + 16];
    for (size_t i = 0; i < RV_ARRAY_LEN(cases); i++) {
        if (dtoa_untouched(cases[i].d, buf) >= 0) {
            CHECK_STR(buf, cases[i].text);
        }
    }
    CHECK_INT(bad, 0);
}

/* Nothing past the text is written, for doubles of every kind and every length of text. */
static void test_dtoa_untouched(void) {
    char buf[RV_DTOA_MAX + 16];
    int bad = 0;
    for (int i = 0; i < 200000 && bad < 10; i++) {
        double d;
        switch (i % 4) {
            case 0:
                d = random_double();
                break;
            case 1: /* integers */
                d = (double)(rng() >> rng_below(64));
                break;
            case 2: /* a few digits at any scale */
                d = (double)(int64_t)rng_below(10000000) * pow(10, (int)rng_below(60) - 30);
                break;
            default: /* subnormals */
                d = double_of(rng() >> (12 + rng_below(52)));
                break;
        }
        bad += dtoa_untouched(d, buf) < 0;
    }
    bad += dtoa_untouched(NAN, buf) < 0;
    bad += dtoa_untouched(-INFINITY, buf) < 0;
    bad += dtoa_untouched(-0.0, buf) < 0;
    CHECK_INT(bad, 0);
}

/* ---- reading ----------------------------------------------------------------------------- */

static void test_strtod_fixed(void) {
    static const struct {
        const char *text;
        uint64_t bits;
        rv_err_t err;
    } cases[] = {
        {"0", 0, RV_OK},
        {"-0", UINT64_C(0x8000000000000000), RV_OK},
        {"0.0", 0, RV_OK},
        {"-0.0e-5", UINT64_C(0x8000000000000000), RV_OK},
        {"0e999999999999", 0, RV_OK},
        {"1", UINT64_C(0x3ff0000000000000), RV_OK},
        {"1.0", UINT64_C(0x3ff0000000000000), RV_OK},
        {"-1E0", UINT64_C(0xbff0000000000000), RV_OK},
        {"0.1", UINT64_C(0x3fb999999999999a), RV_OK},
        {"1e23", UINT64_C(0x44b52d02c7e14af6), RV_OK},
        {"9007199254740993", UINT64_C(0x4340000000000000), RV_OK}, /* 2^53+1: to even */
        {"9007199254740995", UINT64_C(0x4340000000000002), RV_OK}, /* 2^53+3: to even */
        {"9007199254740993.0000000000000001", UINT64_C(0x4340000000000001), RV_OK},
        {"2.2250738585072011e-308", UINT64_C(0x000fffffffffffff), RV_OK},
        {"2.2250738585072012e-308", UINT64_C(0x0010000000000000), RV_OK},
        {"2.2250738585072014e-308", UINT64_C(0x0010000000000000), RV_OK},
        {"4.9406564584124654e-324", 1, RV_OK},
        {"5e-324", 1, RV_OK},
        {"2.4703282292062327e-324", 0, RV_OK}, /* just below half the smallest subnormal */
        {"2.4703282292062328e-324", 1, RV_OK}, /* just above */
        {"1e-400", 0, RV_OK},
        {"-1e-400", UINT64_C(0x8000000000000000), RV_OK},
        {"1.7976931348623157e308", UINT64_C(0x7fefffffffffffff), RV_OK},
        {"1.7976931348623158e308", UINT64_C(0x7fefffffffffffff), RV_OK},
        {"1.7976931348623159e308", UINT64_C(0x7ff0000000000000), RV_ERR_RANGE},
        {"1e400", UINT64_C(0x7ff0000000000000), RV_ERR_RANGE},
        {"-1e400", UINT64_C(0xfff0000000000000), RV_ERR_RANGE},
        {"1e99999999999999999999", UINT64_C(0x7ff0000000000000), RV_ERR_RANGE},
        {"1e-99999999999999999999", 0, RV_OK},
        {"123.456", UINT64_C(0x405edd2f1a9fbe77), RV_OK},
        {"0.0012", UINT64_C(0x3f53a92a30553261), RV_OK},
        {"98765.4321", UINT64_C(0x40f81cd6e9e1b08a), RV_OK},
        {"123456789012345678901234567890", UINT64_C(0x45f8ee90ff6c373e), RV_OK},
        {"0.000000000000000000000000000001", UINT64_C(0x39b4484bfeebc2a0), RV_OK},
        {"7.2057594037927933e16", UINT64_C(0x4370000000000000), RV_OK},
    };
    for (size_t i = 0; i < RV_ARRAY_LEN(cases); i++) {
        double d = 42.0;
        rv_err_t err = our_strtod(cases[i].text, strlen(cases[i].text), &d);
        CHECK_MSG(bits_of(d) == cases[i].bits && err == cases[i].err,
                  "strtod(\"%s\") = %a (%016" PRIx64 ", err %d), want %016" PRIx64 " err %d",
                  cases[i].text, d, bits_of(d), (int)err, cases[i].bits, (int)cases[i].err);
        /* glibc agrees with the expectations. */
        CHECK(bits_of(ref_strtod(cases[i].text)) == cases[i].bits);
    }
    /* Only the given length is read. */
    double d = 0;
    CHECK_INT(rv__strtod("1.5e10", 3, &d), RV_OK);
    CHECK(d == 1.5);
}

static void test_strtod_malformed(void) {
    static const char *const bad[] = {"",    "-",   "+1",   "01",   "-01", "1.",  ".5",   "1e",
                                      "1e+", "1e-", "1x",   " 1",   "1 ",  "--1", "1.e5", "0x10",
                                      "inf", "NaN", "1.5.", "1e5e", "1,5", "00",  "-.5",  "1E+-2"};
    for (size_t i = 0; i < RV_ARRAY_LEN(bad); i++) {
        double d = 42.0;
        rv_err_t err = our_strtod(bad[i], strlen(bad[i]), &d);
        CHECK_MSG(err == RV_ERR_PARSE && d == 42.0, "strtod(\"%s\") = %d, %g", bad[i], (int)err, d);
    }
}

/* Compares rv__strtod with strtod_l on one JSON number text; returns whether they agree. */
static bool check_strtod(const char *text) {
    size_t len = strlen(text);
    double ours = 0;
    rv_err_t err = our_strtod(text, len, &ours);
    double ref = ref_strtod(text);
    bool ok = bits_of(ours) == bits_of(ref) && err == (isinf(ref) ? RV_ERR_RANGE : RV_OK);
    if (!ok) {
        CHECK_MSG(0, "strtod(\"%.200s\"%s) = %a (err %d), strtod_l says %a", text,
                  len > 200 ? "..." : "", ours, (int)err, ref);
    }
    return ok;
}

static void test_strtod_long(void) {
    static char text[12000];
    /* 1 followed by 1000 zeros: overflow; with e-1000: exactly 1. */
    text[0] = '1';
    memset(text + 1, '0', 1000);
    text[1001] = 0;
    double d;
    CHECK_INT(rv__strtod(text, 1001, &d), RV_ERR_RANGE);
    CHECK(isinf(d));
    strcpy(text + 1001, "e-1000");
    CHECK_INT(rv__strtod(text, strlen(text), &d), RV_OK);
    CHECK(d == 1.0);
    /* 0.000...0001 with 1000 zeros: underflow to zero. */
    memcpy(text, "0.", 2);
    memset(text + 2, '0', 1000);
    strcpy(text + 1002, "1");
    CHECK_INT(rv__strtod(text, strlen(text), &d), RV_OK);
    CHECK(bits_of(d) == 0);
    /* 2^53 + 1 followed by 5000 zeros after the point, then a 1: just above halfway. */
    strcpy(text, "9007199254740993.");
    memset(text + 17, '0', 5000);
    strcpy(text + 5017, "1");
    CHECK_INT(rv__strtod(text, strlen(text), &d), RV_OK);
    CHECK(bits_of(d) == UINT64_C(0x4340000000000001));
    text[5017] = 0; /* without the 1: a tie, to even */
    CHECK_INT(rv__strtod(text, strlen(text), &d), RV_OK);
    CHECK(bits_of(d) == UINT64_C(0x4340000000000000));
    /* Long random digit strings at every scale. */
    int bad = 0;
    for (int i = 0; i < 400 && bad < 10; i++) {
        size_t n = 20 + (size_t)rng_below(i < 300 ? 1000 : 10000);
        char *p = text;
        if (rng() & 1) {
            *p++ = '-';
        }
        *p++ = (char)('1' + rng_below(9));
        for (size_t j = 1; j < n; j++) {
            *p++ = (char)('0' + rng_below(10));
        }
        sprintf(p, "e%d", (int)rng_below(700) - 350 - (int)n);
        bad += !check_strtod(text);
    }
    CHECK_INT(bad, 0);
}

#define N_RANDOM_STRTOD 150000

static void test_strtod_random(void) {
    char text[2400];
    int bad = 0;
    /* Doubles printed with 17 digits and with fewer. */
    for (int i = 0; i < N_RANDOM_STRTOD && bad < 10; i++) {
        double d = random_double();
        snprintf(text, sizeof text, "%.17g", d);
        bad += !check_strtod(text);
        snprintf(text, sizeof text, "%.*g", 1 + (int)rng_below(17), d);
        bad += !check_strtod(text);
        snprintf(text, sizeof text, "%.*e", (int)rng_below(25), d);
        bad += !check_strtod(text);
    }
    /* Random digit strings of every shape: up to 40 digits, exponents across the range. */
    for (int i = 0; i < N_RANDOM_STRTOD && bad < 10; i++) {
        char *p = text;
        if (rng() & 1) {
            *p++ = '-';
        }
        int int_digits = (int)rng_below(25);
        if (int_digits == 0) {
            *p++ = '0';
        } else {
            *p++ = (char)('1' + rng_below(9));
            for (int j = 1; j < int_digits; j++) {
                *p++ = (char)('0' + rng_below(10));
            }
        }
        if (rng() & 1) {
            *p++ = '.';
            int frac_digits = 1 + (int)rng_below(25);
            int zeros = rng() % 4 == 0 ? (int)rng_below(20) : 0;
            for (int j = 0; j < frac_digits; j++) {
                *p++ = (char)(j < zeros ? '0' : '0' + rng_below(10));
            }
        }
        if (rng() & 1) {
            *p++ = rng() & 1 ? 'e' : 'E';
            int sign = (int)rng_below(3);
            if (sign) {
                *p++ = sign == 1 ? '+' : '-';
            }
            p += sprintf(p, "%d", (int)rng_below(360));
        }
        *p = 0;
        bad += !check_strtod(text);
    }
    CHECK_INT(bad, 0);
}

/*
 * Halfway points between neighbouring doubles, exactly (long double holds them), a hair above
 * and a hair below, and the same cut to 17-19 digits: the cases a fast path gets wrong.
 */
static void test_strtod_halfway(void) {
#if LDBL_MANT_DIG >= 64 && LDBL_MIN_EXP < -1100 && LDBL_MAX_EXP > 1024
    static char text[2400];
    int bad = 0;
    for (int i = 0; i < 3000 && bad < 10; i++) {
        double a;
        switch (i % 4) {
            case 0:
                a = fabs(random_double());
                break;
            case 1: /* subnormals and the smallest normals */
                a = double_of(rng_below(UINT64_C(1) << 53));
                break;
            case 2: /* integers near 2^53..2^64 */
                a = ldexp((double)((rng() >> 11) | (UINT64_C(1) << 52)), (int)rng_below(12));
                break;
            default: /* around 1 */
                a = 1.0 + (double)(rng() >> 11) * 0x1p-53;
                break;
        }
        if (a == DBL_MAX) {
            continue;
        }
        long double mid = ((long double)a + (long double)nextafter(a, INFINITY)) / 2;
        /* The exact expansion, split into mantissa (trailing zeros trimmed) and exponent. */
        snprintf(text, sizeof text, "%.1100Le", mid);
        char *e = strchr(text, 'e');
        char exp_part[16], mant[1200];
        snprintf(exp_part, sizeof exp_part, "%s", e);
        while (e[-1] == '0') {
            e--;
        }
        if (e[-1] == '.') {
            e--;
        }
        int n = (int)(e - text);
        memcpy(mant, text, (size_t)n);
        mant[n] = 0;
        const char *point = strchr(mant, '.') ? "" : ".";
        snprintf(text, sizeof text, "%s%s", mant, exp_part);
        bad += !check_strtod(text); /* the exact tie */
        snprintf(text, sizeof text, "%s%s1%s", mant, point, exp_part);
        bad += !check_strtod(text); /* a hair above */
        mant[n - 1]--;
        snprintf(text, sizeof text, "%s%s9999%s", mant, point, exp_part);
        bad += !check_strtod(text); /* below */
        snprintf(text, sizeof text, "%.*Le", 16 + (int)rng_below(3), mid);
        bad += !check_strtod(text); /* cut to 17..19 digits */
        mant[n - 1]++;
        snprintf(text, sizeof text, "%s%s%01000d%s", mant, point, 1, exp_part);
        bad += !check_strtod(text); /* a tie broken by a digit past the 1000th */
    }
    /* The overflow threshold, exactly: a tie that rounds to infinity. */
    long double top = ((long double)DBL_MAX + 0x1p1024L) / 2;
    snprintf(text, sizeof text, "%.400Le", top);
    bad += !check_strtod(text);
    CHECK_INT(bad, 0);
#endif
}

int main(void) {
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!c_locale) {
        fprintf(stderr, "cannot create the C locale\n");
        return 1;
    }
    RV_RUN(test_integer_logs);
    RV_RUN(test_pow10_table);
    RV_RUN(test_dtoa_fixed);
    RV_RUN(test_dtoa_random);
    RV_RUN(test_dtoa_edges);
    RV_RUN(test_dtoa_short_decimals);
    RV_RUN(test_dtoa_short_limits);
    RV_RUN(test_dtoa_untouched);
    RV_RUN(test_strtod_fixed);
    RV_RUN(test_strtod_malformed);
    RV_RUN(test_strtod_long);
    RV_RUN(test_strtod_random);
    RV_RUN(test_strtod_halfway);
    freelocale(c_locale);
    return rv_test_finish();
}
