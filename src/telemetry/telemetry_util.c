/*
 * telemetry_util.c: UTF-8, base64 and ISO 8601 helpers for the telemetry codecs.
 *
 * Small pure functions over caller memory or an arena; they must never allocate on the heap.
 */
#include <stdio.h>
#include <string.h>

#include "telemetry/telemetry_int.h"

bool rv__tutf8_valid(const void *s, size_t n, size_t *bad) {
    const unsigned char *p = s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t avail = (size_t)(end - p), need;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 3;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 4;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            need = 0;
        }
        bool ok = need != 0 && avail >= need && p[1] >= lo && p[1] <= hi;
        for (size_t k = 2; ok && k < need; k++) {
            ok = (p[k] & 0xC0) == 0x80;
        }
        if (!ok) {
            if (bad) {
                *bad = (size_t)(p - (const unsigned char *)s);
            }
            return false;
        }
        p += need;
    }
    return true;
}

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

void *rv__tbase64_decode(rv_arena_t *arena, const char *s, size_t n, size_t *out_len, bool *ok) {
    *ok = false;
    while (n > 0 && s[n - 1] == '=') {
        n--;
    }
    if (n % 4 == 1) {
        return NULL;
    }
    size_t len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    unsigned char *out = rv_arena_alloc(arena, len ? len : 1);
    if (!out) {
        *ok = true;
        return NULL;
    }
    uint32_t acc = 0;
    size_t bits = 0, o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    *ok = true;
    *out_len = o;
    return out;
}

int64_t rv__tdays_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void rv__tcivil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Reads exactly `k` digits at s[*i]; false when they are not there. */
static bool digits(const char *s, size_t n, size_t *i, int k, unsigned *out) {
    unsigned v = 0;
    for (int j = 0; j < k; j++, (*i)++) {
        if (*i >= n || s[*i] < '0' || s[*i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(s[*i] - '0');
    }
    *out = v;
    return true;
}

bool rv__tiso_parse(const char *s, size_t n, int64_t *ns) {
    size_t i = 0;
    unsigned y, mo, d, h, mi, se;
    if (!digits(s, n, &i, 4, &y) || i >= n || s[i++] != '-' || !digits(s, n, &i, 2, &mo) ||
        i >= n || s[i++] != '-' || !digits(s, n, &i, 2, &d) || i >= n ||
        (s[i] != 'T' && s[i] != ' ') || !(++i, digits(s, n, &i, 2, &h)) || i >= n ||
        s[i++] != ':' || !digits(s, n, &i, 2, &mi) || i >= n || s[i++] != ':' ||
        !digits(s, n, &i, 2, &se)) {
        return false;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
        return false;
    }
    int64_t frac = 0;
    if (i < n && s[i] == '.') {
        i++;
        int k = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (k < 9) {
                frac = frac * 10 + (s[i] - '0');
                k++;
            }
            i++;
        }
        if (k == 0) {
            return false;
        }
        while (k++ < 9) {
            frac *= 10;
        }
    }
    int64_t offset = 0;
    if (i < n && s[i] == 'Z') {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i++] == '-' ? -1 : 1;
        unsigned oh, om;
        if (!digits(s, n, &i, 2, &oh) || i >= n || s[i++] != ':' || !digits(s, n, &i, 2, &om) ||
            oh > 23 || om > 59) {
            return false;
        }
        offset = sign * ((int64_t)oh * 3600 + om * 60);
    }
    if (i != n) {
        return false;
    }
    int64_t secs = rv__tdays_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
    /* Years 0000..9999 keep this well inside int64 nanoseconds only between 1678 and 2262. */
    if (secs < INT64_MIN / 1000000000 + 1 || secs > INT64_MAX / 1000000000 - 1) {
        return false;
    }
    *ns = secs * 1000000000 + frac;
    return true;
}

size_t rv__tiso_format(int64_t ns, char *out) {
    int64_t secs = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        secs--;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    rv__tcivil_from_days(days, &y, &m, &d);
    char *p = out;
    int n = snprintf(p, 40, "%04lld-%02u-%02uT%02u:%02u:%02u", (long long)y, m, d,
                     (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60));
    p += n;
    if (frac) {
        char f[10];
        snprintf(f, sizeof f, "%09lld", (long long)frac);
        int k = 9;
        while (k > 0 && f[k - 1] == '0') {
            k--;
        }
        *p++ = '.';
        memcpy(p, f, (size_t)k);
        p += k;
    }
    *p++ = 'Z';
    *p = '\0';
    return (size_t)(p - out);
}

const rv_tframe_t *rv__tframe_name_columns(rv_arena_t *arena, const rv_tframe_t *f,
                                           const rv_tpacket_t *fmt) {
    if (!f || !fmt || fmt->type != RV_TPACKET_DATA_FORMAT || f->format_id == 0 ||
        fmt->u.format.format_id != f->format_id) {
        return f;
    }
    bool unnamed = false;
    for (size_t c = 0; c < f->column_count && !unnamed; c++) {
        unnamed = rv__tcolumn_by_format(f, c);
    }
    if (!unnamed) {
        return f;
    }
    rv_tcolumn_t *cols = rv_arena_memdup(arena, f->columns, f->column_count * sizeof *cols);
    rv_tframe_t *copy = rv_arena_memdup(arena, f, sizeof *copy);
    if (!cols || !copy) {
        return NULL;
    }
    size_t k = 0;
    for (size_t c = 0; c < f->column_count; c++) {
        if (cols[c].type == RV_TCOL_TAG) {
            continue;
        }
        if ((!cols[c].name || !*cols[c].name) && k < fmt->u.format.count) {
            cols[c].name = fmt->u.format.parameter_ids[k];
        }
        k++;
    }
    copy->columns = cols;
    return copy;
}
