/*
 * csv.c: the CSV reader behind `rivulet record --csv` (csv_int.h).
 *
 * One pass over a private copy of the text: quoted cells are unescaped in place (a cell never
 * grows), every cell is NUL-terminated where its separator was, and rows are arrays of pointers
 * into the copy. Lines are counted as the text is read so that every error names the line and
 * the column it is about. This file must never read past the `len` bytes it was given: the
 * copy ends with a NUL it adds, and a NUL byte inside the text is an error, not an end.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/csv_int.h"
#include "telemetry/telemetry_int.h"

void rv__csv_free(rv__csv_t *csv) {
    if (!csv) {
        return;
    }
    for (size_t i = 0; i < csv->row_count; i++) {
        free(csv->rows[i]);
    }
    free(csv->rows);
    free(csv->lines);
    free(csv->text);
    *csv = (rv__csv_t){0};
}

/* Appends a row of `n` cells that starts on `line`; the row is owned by csv from then on. */
static rv_err_t add_row(rv__csv_t *csv, char **cells, size_t line) {
    if (csv->row_count == csv->row_cap) {
        size_t cap = csv->row_cap ? csv->row_cap * 2 : 64;
        char ***rows = realloc(csv->rows, cap * sizeof *rows);
        if (rows) {
            csv->rows = rows;
        }
        size_t *lines = rows ? realloc(csv->lines, cap * sizeof *lines) : NULL;
        if (!lines) {
            free(cells);
            return RV_ERR_NOMEM;
        }
        csv->lines = lines;
        csv->row_cap = cap;
    }
    csv->lines[csv->row_count] = line;
    csv->rows[csv->row_count++] = cells;
    return RV_OK;
}

rv_err_t rv__csv_parse(const void *data, size_t len, const char *path, rv__csv_t *out,
                       rv_error_t **err) {
    *out = (rv__csv_t){0};
    path = path ? path : "csv";
    if (len == SIZE_MAX || !(out->text = malloc(len + 1))) {
        return rv__error_set(err, RV_ERR_NOMEM, "%s: out of memory", path);
    }
    if (len) {
        memcpy(out->text, data, len);
    }
    out->text[len] = '\0';
    char *p = out->text, *end = out->text + len, *w;
    size_t line = 1;
    while (p < end) {
        size_t cap = 8, n = 0, start_line = line;
        char **cells = malloc(cap * sizeof *cells);
        if (!cells) {
            return rv__error_set(err, RV_ERR_NOMEM, "%s: out of memory", path);
        }
        for (;;) { /* one cell; `p` is at its first byte */
            if (n == cap) {
                char **grown = realloc(cells, (cap *= 2) * sizeof *grown);
                if (!grown) {
                    free(cells);
                    return rv__error_set(err, RV_ERR_NOMEM, "%s: out of memory", path);
                }
                cells = grown;
            }
            cells[n++] = w = p;
            size_t cell_line = line;
            if (p < end && *p == '"') {
                p++;
                for (;;) {
                    if (p == end) {
                        free(cells);
                        return rv__error_set(err, RV_ERR_PARSE,
                                             "%s:%zu: column %zu: a quoted cell is not closed",
                                             path, cell_line, n);
                    }
                    if (*p == '"' && p + 1 < end && p[1] == '"') {
                        *w++ = '"';
                        p += 2;
                    } else if (*p == '"') {
                        p++;
                        break;
                    } else if (*p == '\0') {
                        break; /* reported below */
                    } else {
                        line += *p == '\n';
                        *w++ = *p++;
                    }
                }
                if (p < end && *p && *p != ',' && *p != '\n' && *p != '\r') {
                    free(cells);
                    return rv__error_set(err, RV_ERR_PARSE,
                                         "%s:%zu: column %zu: text after a closing quote", path,
                                         line, n);
                }
            } else {
                while (p < end && *p && *p != ',' && *p != '\n' && *p != '\r') {
                    *w++ = *p++;
                }
            }
            if (p < end && *p == '\0') {
                free(cells);
                return rv__error_set(err, RV_ERR_PARSE, "%s:%zu: column %zu: a NUL byte", path,
                                     line, n);
            }
            char sep = p < end ? *p : '\0';
            *w = '\0'; /* at most where the separator was: cells never grow */
            if (sep == ',') {
                p++;
                continue;
            }
            if (sep == '\r') {
                p++;
                p += p < end && *p == '\n';
                line++;
            } else if (sep == '\n') {
                p++;
                line++;
            }
            break;
        }
        if (n == 1 && !*cells[0]) { /* an empty line */
            free(cells);
            continue;
        }
        if (out->row_count == 0) {
            out->cols = n;
        } else if (n != out->cols) {
            free(cells);
            return rv__error_set(err, RV_ERR_PARSE, "%s:%zu: %zu cells, the header has %zu", path,
                                 start_line, n, out->cols);
        }
        if (add_row(out, cells, start_line) != RV_OK) {
            return rv__error_set(err, RV_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    if (out->row_count == 0) {
        return rv__error_set(err, RV_ERR_PARSE, "%s: no header row", path);
    }
    return RV_OK;
}

/* An optional '-' and decimal digits, within int64. */
static bool parse_int(const char *s, int64_t *out) {
    const char *p = s + (*s == '-');
    if (*p < '0' || *p > '9') {
        return false;
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) {
        return false;
    }
    *out = (int64_t)v;
    return true;
}

/* Seconds written as [-]DIGITS.DIGITS, exactly (a double would lose the nanoseconds of a
 * present-day time); digits past the ninth decimal are dropped. */
static bool parse_decimal_seconds(const char *s, int64_t *ns) {
    bool neg = *s == '-';
    const char *p = s + neg;
    int64_t secs = 0, frac = 0;
    int whole = 0, digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, whole++) {
        if (secs > (INT64_MAX / 1000000000 - 9) / 10) {
            return false;
        }
        secs = secs * 10 + (*p - '0');
    }
    if (*p++ != '.' || !whole) {
        return false;
    }
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (digits < 9) {
            frac = frac * 10 + (*p - '0');
        }
    }
    if (*p || !digits) {
        return false;
    }
    for (int d = digits; d < 9; d++) {
        frac *= 10;
    }
    int64_t v = secs * 1000000000 + frac;
    *ns = neg ? -v : v;
    return true;
}

bool rv__csv_time(const char *text, int64_t *ns) {
    if (!text || !*text) {
        return false;
    }
    if (parse_int(text, ns)) {
        return true; /* ns since the epoch */
    }
    if (strchr(text + 1, '-') && rv__tiso_parse(text, strlen(text), ns)) {
        return true;
    }
    if (parse_decimal_seconds(text, ns)) {
        return true;
    }
    double secs;
    if (!rv__csv_number(text, &secs) || fabs(secs) > 9.2e9) {
        return false;
    }
    *ns = (int64_t)llround(secs * 1e9); /* seconds since the epoch */
    return true;
}

rv_err_t rv__csv_times(const rv__csv_t *csv, size_t col, const char *path, int64_t *times,
                       rv_error_t **err) {
    if (col >= csv->cols) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "%s: no column %zu", path, col + 1);
    }
    for (size_t r = 1; r < csv->row_count; r++) {
        if (!rv__csv_time(csv->rows[r][col], &times[r])) {
            return rv__error_set(err, RV_ERR_PARSE,
                                 "%s:%zu: column %zu ('%.60s'): '%.60s' is not a time (ns since "
                                 "the epoch, seconds with a decimal point, or ISO 8601)",
                                 path, csv->lines[r], col + 1, csv->rows[0][col],
                                 csv->rows[r][col]);
        }
    }
    return RV_OK;
}

bool rv__csv_number(const char *text, double *v) {
    if (!text || !*text) {
        return false;
    }
    char *end = NULL;
    *v = strtod(text, &end);
    return end != text && !*end && isfinite(*v);
}
