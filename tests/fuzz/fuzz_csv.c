/*
 * fuzz_csv.c: libFuzzer target for the CSV reader of `rivulet record --csv` (csv_int.h).
 *
 * A rejection must come with an error of RV_ERR_PARSE naming the file. An accepted text must
 * have rows of the header's width whose cells lie inside the reader's copy, with row lines
 * that never go back; written out again with every cell quoted, it must parse to the same
 * cells. The first column is then read as times, which either all parse or fail naming the
 * file. Any mismatch aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/strbuf.h"
#include "telemetry/csv_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rv_strbuf_t again = RV_STRBUF_INIT;

static void write_quoted(const rv__csv_t *c) {
    rv_strbuf_clear(&again);
    for (size_t r = 0; r < c->row_count; r++) {
        for (size_t k = 0; k < c->cols; k++) {
            rv_strbuf_append(&again, k ? ",\"" : "\"", k ? 2 : 1);
            for (const char *p = c->rows[r][k]; *p; p++) {
                rv_strbuf_append(&again, p, 1);
                if (*p == '"') {
                    rv_strbuf_append(&again, "\"", 1);
                }
            }
            rv_strbuf_append(&again, "\"", 1);
        }
        rv_strbuf_append(&again, "\r\n", 2);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rv__csv_t c, d;
    rv_error_t *err = NULL;
    rv_err_t e = rv__csv_parse(data, size, "f.csv", &c, &err);
    if (e != RV_OK) {
        if (e != RV_ERR_PARSE || !err || rv_error_code(err) != e ||
            strncmp(rv_error_message(err), "f.csv", 5) != 0) {
            abort();
        }
        rv_error_destroy(err);
        rv__csv_free(&c);
        return 0;
    }
    if (err || c.row_count == 0 || c.cols == 0) {
        abort();
    }
    size_t prev = 1;
    for (size_t r = 0; r < c.row_count; r++) {
        if (c.lines[r] < prev || c.lines[r] > size + 1) {
            abort();
        }
        prev = c.lines[r];
        for (size_t k = 0; k < c.cols; k++) {
            const char *cell = c.rows[r][k];
            if (cell < c.text || cell + strlen(cell) > c.text + size) {
                abort();
            }
        }
    }
    write_quoted(&c);
    if (rv__csv_parse(again.data, again.len, "g.csv", &d, NULL) != RV_OK ||
        d.row_count != c.row_count || d.cols != c.cols) {
        abort();
    }
    for (size_t r = 0; r < c.row_count; r++) {
        for (size_t k = 0; k < c.cols; k++) {
            if (strcmp(c.rows[r][k], d.rows[r][k]) != 0) {
                abort();
            }
        }
    }
    rv__csv_free(&d);
    int64_t *times = calloc(c.row_count, sizeof *times);
    if (!times) {
        abort();
    }
    e = rv__csv_times(&c, 0, "f.csv", times, &err);
    if (e != RV_OK && (e != RV_ERR_PARSE || !err || strncmp(rv_error_message(err), "f.csv:", 6))) {
        abort();
    }
    rv_error_destroy(err);
    free(times);
    rv__csv_free(&c);
    return 0;
}
