/*
 * telemetry_int.h: helpers the telemetry codecs share (src/telemetry only).
 *
 * UTF-8 checks for strings read from outside, arena copies, base64 for the JSON forms' bytes,
 * and ISO 8601 times for legacy Quix StreamProperties. Nothing here allocates on the heap.
 */
#ifndef RV_TELEMETRY_INT_H
#define RV_TELEMETRY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/core_int.h"
#include "rivulet/telemetry.h"

/* The most rows a periodic-data packet may declare (its timestamps are made, not read). */
#define RV__TPERIODIC_MAX_ROWS (1u << 22)

/* True when the `n` bytes at `s` are valid UTF-8 (no overlongs, surrogates or code points above
 * U+10FFFF). `*bad` (when not NULL) receives the offset of the first invalid byte. */
RV__HIDDEN bool rv__tutf8_valid(const void *s, size_t n, size_t *bad);

/* The index of the first column whose name (within its kind: tags apart from the other types)
 * an earlier column already has (columns without a name are skipped: a data format names
 * them); -1 when the names are unique, -2 when memory is exhausted
 * (up to 256 columns the check needs no memory; beyond, it hashes the names in `arena`). */
RV__HIDDEN long rv__tcolumns_dup(rv_arena_t *arena, const rv_tcolumn_t *cols, size_t n);

/* True when column `c` of `f` is one its data format names: a non-tag column with an absent
 * or empty name in a frame with a format id. */
RV__HIDDEN bool rv__tcolumn_by_format(const rv_tframe_t *f, size_t c);

/* `f` with the names its data format `fmt` gives to the columns it names (rv__tcolumn_by_format:
 * the k-th non-tag column takes parameter_ids[k]): a copy in `arena` when `f` has such columns,
 * `f` itself when it has none or `fmt` is not `f`'s format, NULL when memory is exhausted. */
RV__HIDDEN const rv_tframe_t *rv__tframe_name_columns(rv_arena_t *arena, const rv_tframe_t *f,
                                                      const rv_tpacket_t *fmt);

/* The key of column `c` in the JSON forms' rows: its name, or "#k" (into `buf`, at least 24
 * bytes) for a column its data format names, k its position among the non-tag columns. */
RV__HIDDEN const char *rv__tcolumn_key(const rv_tframe_t *f, size_t c, char *buf);

/* The index of a named column whose name is the row key "#k" of a column the data format names
 * (the JSON forms could not tell them apart), or -1. Only frames with such columns can clash. */
RV__HIDDEN long rv__tcolumns_key_clash(const rv_tframe_t *f);

/* Decodes standard base64 (with or without padding) into the arena; NULL with *ok false when
 * the text is not base64, NULL with *ok true when memory is exhausted. */
RV__HIDDEN void *rv__tbase64_decode(rv_arena_t *arena, const char *s, size_t n, size_t *out_len,
                                    bool *ok);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
RV__HIDDEN int64_t rv__tdays_from_civil(int64_t y, unsigned m, unsigned d);
RV__HIDDEN void rv__tcivil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* Parses an ISO 8601 date-time ("2021-03-04T05:06:07.1234567Z", offsets "+01:00", no zone read
 * as UTC) into ns since the epoch. False when the text is not one. */
RV__HIDDEN bool rv__tiso_parse(const char *s, size_t n, int64_t *ns);

/* Writes ns since the epoch as "YYYY-MM-DDTHH:MM:SS[.fffffff]Z" (trailing zeros of the
 * fraction trimmed, 100 ns resolution as .NET keeps) into `out` (at least 40 bytes). Returns the
 * length. A time not a multiple of 100 ns keeps all nine digits. */
RV__HIDDEN size_t rv__tiso_format(int64_t ns, char *out);

#endif
