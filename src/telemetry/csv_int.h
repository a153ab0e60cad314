/*
 * csv_int.h: the CSV reader behind `rivulet record --csv` (src/telemetry/csv.c).
 *
 * Comma-separated text with RFC 4180 quoting ("a ""quoted"" cell", line breaks inside quotes),
 * LF or CRLF line ends, blank lines skipped; the first row is the header and every row must have
 * as many cells as it. Cells are NUL-terminated views into a copy of the text, so a file is read
 * with one allocation for the text and one per row. Errors name the file, the line and the
 * column. Internal: the CLI and the tests use it; it is not API.
 */
#ifndef RV_CSV_INT_H
#define RV_CSV_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core_int.h"

/* A parsed CSV text: rows[0] is the header, rows[r][c] the cell of row r, column c. */
typedef struct rv__csv_s {
    char *text;       /* the copy the cells point into */
    char ***rows;     /* row_count rows of `cols` cells */
    size_t *lines;    /* the line (from 1) each row starts on */
    size_t row_count; /* the header included */
    size_t row_cap;
    size_t cols; /* the header's cells */
} rv__csv_t;

/*
 * Parses `len` bytes of CSV into `out` (zeroed first; free it with rv__csv_free() whatever the
 * result). `path` names the text in messages. RV_ERR_PARSE, with "PATH:LINE: column C: ..."
 * (C from 1), for a quoted cell that is not closed, text after a closing quote, a NUL byte, a
 * row whose cell count differs from the header's, or no header row; RV_ERR_NOMEM.
 */
RV__HIDDEN rv_err_t rv__csv_parse(const void *data, size_t len, const char *path, rv__csv_t *out,
                                  rv_error_t **err);

/* Frees what rv__csv_parse() allocated. Accepts a zeroed or partly filled csv. */
RV__HIDDEN void rv__csv_free(rv__csv_t *csv);

/*
 * A time cell as ns since the epoch: an integer (ns), ISO 8601 ("2025-11-23T12:00:00.5Z",
 * offsets allowed, no zone read as UTC) or seconds with a decimal point ("1763899200.25").
 * False for anything else, empty text included.
 */
RV__HIDDEN bool rv__csv_time(const char *text, int64_t *ns);

/*
 * Reads column `col` of every data row as a time into times[1 .. row_count - 1] (times[0], the
 * header's slot, is left alone). RV_ERR_PARSE at the first cell that is not one, with
 * "PATH:LINE: column C ('NAME'): 'TEXT' is not a time (...)".
 */
RV__HIDDEN rv_err_t rv__csv_times(const rv__csv_t *csv, size_t col, const char *path,
                                  int64_t *times, rv_error_t **err);

/* True when the cell is a finite number as strtod() reads it, and nothing else. */
RV__HIDDEN bool rv__csv_number(const char *text, double *v);

#endif
