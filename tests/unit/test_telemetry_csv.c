/*
 * test_telemetry_csv.c: the CSV reader behind `rivulet record --csv` (src/telemetry/csv.c).
 *
 * Each case parses a literal text and checks every cell and the line each row starts on, or
 * the exact error message (file, line, column) for text that is not CSV; then the time and
 * number cells the recorder reads.
 */
#include <string.h>

#include "rv_test.h"
#include "telemetry/csv_int.h"

/* Parses `text` and checks it has the rows of `want` (cells joined by '|', rows by '/') and
 * the row start lines `lines` (comma-separated). */
static void expect_rows(const char *text, size_t len, const char *want, const char *lines) {
    rv__csv_t csv;
    rv_error_t *err = NULL;
    rv_err_t e = rv__csv_parse(text, len, "t.csv", &csv, &err);
    CHECK_MSG(e == RV_OK, "'%s': %s", text, rv_error_message(err));
    rv_error_destroy(err);
    char got[512] = "", at[128] = "";
    for (size_t r = 0; e == RV_OK && r < csv.row_count; r++) {
        for (size_t c = 0; c < csv.cols; c++) {
            strcat(got, csv.rows[r][c]);
            strcat(got, c + 1 < csv.cols ? "|" : r + 1 < csv.row_count ? "/" : "");
        }
        snprintf(at + strlen(at), sizeof at - strlen(at), "%s%zu", r ? "," : "", csv.lines[r]);
    }
    CHECK_STR(got, want);
    CHECK_STR(at, lines);
    rv__csv_free(&csv);
}

static void expect_error(const char *text, size_t len, const char *message) {
    rv__csv_t csv;
    rv_error_t *err = NULL;
    CHECK_INT(rv__csv_parse(text, len, "t.csv", &csv, &err), RV_ERR_PARSE);
    CHECK_STR(err ? rv_error_message(err) : "(none)", message);
    rv_error_destroy(err);
    rv__csv_free(&csv);
}

#define ROWS(text, want, lines) expect_rows(text, sizeof text - 1, want, lines)
#define ERROR(text, message) expect_error(text, sizeof text - 1, message)

static void test_cells(void) {
    ROWS("time,x\n1,2\n", "time|x/1|2", "1,2");
    /* No final line end; CRLF; a lone CR ends a line too. */
    ROWS("a,b\n1,2", "a|b/1|2", "1,2");
    ROWS("a,b\r\n1,2\r\n3,4\r\n", "a|b/1|2/3|4", "1,2,3");
    ROWS("a,b\r1,2\r", "a|b/1|2", "1,2");
    /* Empty cells, blank lines skipped (their line numbers still count). */
    ROWS("a,b,c\n,,\n\n\r\n1,,3\n", "a|b|c/||/1||3", "1,2,5");
    /* Quotes: separators, escaped quotes, line breaks inside, an empty quoted cell. */
    ROWS("a,b\n\"x,y\",\"say \"\"hi\"\"\"\n", "a|b/x,y|say \"hi\"", "1,2");
    ROWS("a,b\n\"two\nlines\",\"\"\n3,4\n", "a|b/two\nlines|/3|4", "1,2,4");
    /* A quote inside an unquoted cell is an ordinary character. */
    ROWS("a\nx\"y\n", "a/x\"y", "1,2");
    /* Only a header. */
    ROWS("time,speed\n", "time|speed", "1");
}

static void test_errors(void) {
    ERROR("", "t.csv: no header row");
    ERROR("\n\r\n\n", "t.csv: no header row");
    ERROR("a,b\n1,2,3\n", "t.csv:2: 3 cells, the header has 2");
    ERROR("a,b\n1,2\n\n7\n", "t.csv:4: 1 cells, the header has 2");
    ERROR("a,b\r\n\"q\"\r\n", "t.csv:2: 1 cells, the header has 2");
    ERROR("a,b\n1,\"open\n\n", "t.csv:2: column 2: a quoted cell is not closed");
    ERROR("a,b\n\"x\"y,2\n", "t.csv:2: column 1: text after a closing quote");
    ERROR("a,b\n\"two\nlines\" ,2\n", "t.csv:3: column 1: text after a closing quote");
    ERROR("a,b\n1,2\x00\n", "t.csv:2: column 2: a NUL byte");
    ERROR("a,b\n1,\"2\x00\"\n", "t.csv:2: column 2: a NUL byte");
}

static void test_times_and_numbers(void) {
    int64_t t = 0;
    CHECK(rv__csv_time("1763899200000000000", &t) && t == 1763899200000000000);
    CHECK(rv__csv_time("-5", &t) && t == -5);
    CHECK(rv__csv_time("1763899200.25", &t) && t == 1763899200250000000);
    CHECK(rv__csv_time("2025-11-23T12:00:00.5Z", &t) && t == 1763899200500000000);
    CHECK(rv__csv_time("2025-11-23 13:00:00+01:00", &t) && t == 1763899200000000000);
    CHECK(!rv__csv_time("", &t));
    CHECK(!rv__csv_time("noon", &t));
    CHECK(!rv__csv_time("12abc", &t));
    CHECK(!rv__csv_time("99999999999999999999", &t)); /* past int64 and not seconds */
    CHECK(!rv__csv_time("2025-13-01T00:00:00Z", &t));
    double v = 0;
    CHECK(rv__csv_number("1.5e3", &v) && v == 1500.0);
    CHECK(rv__csv_number("-0.25", &v) && v == -0.25);
    CHECK(!rv__csv_number("", &v));
    CHECK(!rv__csv_number("1.5x", &v));
    CHECK(!rv__csv_number("nan", &v));
    CHECK(!rv__csv_number("inf", &v));

    /* The times of a column: line and column of the first bad one in the message. */
    static const char text[] = "speed,time\n1,2025-11-23T12:00:00Z\n\n2,\"1763899200.5\"\n"
                               "3,\"noon\"\n";
    rv__csv_t csv;
    rv_error_t *err = NULL;
    REQUIRE(rv__csv_parse(text, sizeof text - 1, "lap.csv", &csv, NULL) == RV_OK);
    CHECK_INT(csv.row_count, 4);
    int64_t times[4] = {0};
    CHECK_INT(rv__csv_times(&csv, 1, "lap.csv", times, &err), RV_ERR_PARSE);
    CHECK_STR(err ? rv_error_message(err) : "", "lap.csv:5: column 2 ('time'): 'noon' is not a "
                                                "time (ns since the epoch, seconds with a "
                                                "decimal point, or ISO 8601)");
    rv_error_destroy(err);
    CHECK_INT(times[1], 1763899200000000000);
    CHECK_INT(times[2], 1763899200500000000);
    /* An empty time cell is not a time either. */
    static const char empty[] = "time,x\n,1\n";
    rv__csv_t c2;
    err = NULL;
    REQUIRE(rv__csv_parse(empty, sizeof empty - 1, "e.csv", &c2, NULL) == RV_OK);
    CHECK_INT(rv__csv_times(&c2, 0, "e.csv", times, &err), RV_ERR_PARSE);
    CHECK(err && strstr(rv_error_message(err), "e.csv:2: column 1 ('time'): '' is not a time"));
    rv_error_destroy(err);
    rv__csv_free(&c2);
    rv__csv_free(&csv);
}

int main(void) {
    RV_RUN(test_cells);
    RV_RUN(test_errors);
    RV_RUN(test_times_and_numbers);
    return rv_test_finish();
}
