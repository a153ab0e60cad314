/*
 * json.c: rivulet's JSON codec: an exact, strict, iterative parser into rv_value_t trees and a
 * writer back to text (compact, pretty or ASCII-only).
 *
 * The parser makes one pass over the text with an explicit stack of open containers, so
 * hostile nesting can exhaust only the configured depth limit, never the C stack. Children of
 * an open container wait on scratch stacks (on the C stack while small, then on the heap) and
 * are copied into one arena array of the final size when the container closes; nodes and
 * strings are bump-allocated in the caller's arena. Strings are scanned 8 bytes at a time and
 * validated as UTF-8 on the way (ASCII runs cost nothing extra); integers that fit int64 stay
 * integers, every other number goes through rv__strtod(). The writer is iterative too, writes
 * straight into the caller's rv_strbuf_t after one capacity check per token, and copies strings
 * the parser already classified as needing no escapes with a single memcpy.
 *
 * Decisions (see docs/json.md): duplicate keys keep the first position and the last value;
 * "-0" is the double -0.0; lone surrogate escapes, a UTF-8 byte order mark and numbers beyond
 * the range of a double are rejected; integers beyond int64 become doubles.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "codec/fpconv.h"
#include "codec/value_int.h"
#include "rivulet/json.h"
#include "rivulet/strbuf.h"

typedef const unsigned char *cursor_t;

/* ==== parser ================================================================================ */

/* One open container: where its children start on the scratch stack, and its kind. */
typedef struct frame_s {
    size_t start;
    bool is_object;
} frame_t;

typedef struct parser_s {
    rv_arena_t *arena;
    cursor_t begin;
    cursor_t end;
    /* The first fault: where, its code and what was wrong. */
    cursor_t err_at;
    rv_err_t err_code;
    char err_what[200];
    /* Scratch stacks (each starts in a local buffer of rv_json_parse()). */
    rv_value_t **items;
    size_t items_top, items_cap;
    rv__member_t *members;
    size_t members_top, members_cap;
    frame_t *frames;
    size_t frames_cap;
} parser_t;

static inline bool is_digit(unsigned c) {
    return c - '0' < 10u;
}

static inline cursor_t skip_ws(cursor_t p, cursor_t end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
    }
    return p;
}

/* Describes the byte at `p` for an error message: "'x'", "byte 0x0a" or "end of input". */
static const char *describe(char *buf, size_t size, cursor_t p, cursor_t end) {
    if (p >= end) {
        return "end of input";
    }
    if (*p >= 0x21 && *p < 0x7F) {
        snprintf(buf, size, "'%c'", *p);
    } else {
        snprintf(buf, size, "byte 0x%02x", *p);
    }
    return buf;
}

/* Records the fault (the first one wins) and returns its code. */
static rv_err_t fail(parser_t *ps, cursor_t at, rv_err_t code, const char *fmt, ...)
    RV_PRINTF(4, 5);

static rv_err_t fail(parser_t *ps, cursor_t at, rv_err_t code, const char *fmt, ...) {
    if (ps->err_code == RV_OK) {
        ps->err_at = at;
        ps->err_code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err_what, sizeof ps->err_what, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* "expected X, found Y" at `at`. */
static rv_err_t fail_expected(parser_t *ps, cursor_t at, const char *expected) {
    char buf[16];
    return fail(ps, at, RV_ERR_PARSE, "expected %s, found %s", expected,
                describe(buf, sizeof buf, at, ps->end));
}

static inline int hex_value(unsigned c) {
    if (c - '0' < 10u) {
        return (int)(c - '0');
    }
    c |= 0x20;
    if (c - 'a' < 6u) {
        return (int)(c - 'a' + 10);
    }
    return -1;
}

/* The code unit of 4 hex digits known to be valid. */
static inline unsigned hex4(cursor_t p) {
    return (unsigned)(hex_value(p[0]) << 12 | hex_value(p[1]) << 8 | hex_value(p[2]) << 4 |
                      hex_value(p[3]));
}

static inline char *put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/*
 * Decodes the escapes of the string body s[0..n) (already checked by scan_string: every escape
 * is well formed) into `o`, which has room for n bytes. Returns the end of the output, or NULL
 * after recording a fault for a lone or mismatched surrogate. Updates *flags.
 */
static char *decode_escapes(parser_t *ps, cursor_t s, cursor_t q, char *o, unsigned *flags) {
    cursor_t r = s;
    while (r < q) {
        cursor_t bs = memchr(r, '\\', (size_t)(q - r));
        if (!bs) {
            bs = q;
        }
        memcpy(o, r, (size_t)(bs - r));
        o += bs - r;
        r = bs;
        if (r == q) {
            break;
        }
        unsigned c = r[1];
        r += 2;
        switch (c) {
            case '"':
            case '\\':
                *o++ = (char)c;
                *flags &= ~(unsigned)RV__STR_PLAIN;
                continue;
            case '/':
                *o++ = '/';
                continue;
            case 'b':
                *o++ = '\b';
                break;
            case 'f':
                *o++ = '\f';
                break;
            case 'n':
                *o++ = '\n';
                break;
            case 'r':
                *o++ = '\r';
                break;
            case 't':
                *o++ = '\t';
                break;
            default: { /* 'u' */
                unsigned cp = hex4(r);
                r += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (q - r >= 6 && r[0] == '\\' && r[1] == 'u') {
                        unsigned lo = hex4(r + 2);
                        if (lo < 0xDC00 || lo > 0xDFFF) {
                            fail(ps, r, RV_ERR_PARSE,
                                 "high surrogate \\u%04X is followed by \\u%04X, not by a low "
                                 "surrogate (\\uDC00-\\uDFFF)",
                                 cp, lo);
                            return NULL;
                        }
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        r += 6;
                    } else {
                        fail(
                            ps, r - 6, RV_ERR_PARSE,
                            "lone high surrogate \\u%04X: expected a low surrogate escape after it",
                            cp);
                        return NULL;
                    }
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    fail(ps, r - 6, RV_ERR_PARSE,
                         "lone low surrogate \\u%04X without a high surrogate before it", cp);
                    return NULL;
                }
                if (cp < 0x20 || cp == '"' || cp == '\\') {
                    *flags &= ~(unsigned)RV__STR_PLAIN;
                } else if (cp >= 0x80) {
                    *flags &= ~(unsigned)RV__STR_ASCII;
                }
                o = put_utf8(o, cp);
                continue;
            }
        }
        *flags &= ~(unsigned)RV__STR_PLAIN; /* a control character */
    }
    return o;
}

/*
 * Parses the string whose opening quote is at `p`. Allocates `prefix` bytes (for the node that
 * will hold it, or 0) followed by the decoded bytes and a NUL; *mem receives the allocation,
 * *len the decoded length, *flags its RV__STR_* class, *next the byte after the closing quote.
 */
static rv_err_t parse_string(parser_t *ps, cursor_t p, size_t prefix, char **mem, size_t *len,
                             unsigned *flags, cursor_t *next) {
    cursor_t s = p + 1;
    cursor_t q = s;
    cursor_t end = ps->end;
    unsigned fl = RV__STR_VALID | RV__STR_PLAIN | RV__STR_ASCII;
    bool escaped = false;
    for (;;) {
        while (end - q >= 8) {
            uint64_t m = rv__swar_special(rv__load64(q));
            if (m) {
                q += rv__swar_first(m);
                goto special;
            }
            q += 8;
        }
        while (q < end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\') {
            q++;
        }
        if (q == end) {
            return fail(ps, q, RV_ERR_PARSE,
                        "unterminated string (it opens at offset %zu), found end of input",
                        (size_t)(p - ps->begin));
        }
    special:;
        unsigned c = *q;
        if (c == '"') {
            break;
        }
        if (c == '\\') {
            escaped = true;
            if (end - q < 2) {
                return fail(ps, end, RV_ERR_PARSE,
                            "unterminated string (it opens at offset %zu), found end of input",
                            (size_t)(p - ps->begin));
            }
            unsigned e = q[1];
            if (e == 'u') {
                for (int i = 0; i < 4; i++) {
                    if (q + 2 + i >= end || hex_value(q[2 + i]) < 0) {
                        return fail_expected(ps, q + 2 + i, "4 hex digits after \\u");
                    }
                }
                q += 6;
                continue;
            }
            if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
                e == 't') {
                q += 2;
                continue;
            }
            char buf[16];
            return fail(ps, q + 1, RV_ERR_PARSE,
                        "invalid escape: expected one of \" \\ / b f n r t u after '\\', found %s",
                        describe(buf, sizeof buf, q + 1, end));
        }
        if (c < 0x20) {
            return fail(ps, q, RV_ERR_PARSE, "control character 0x%02x in a string must be escaped",
                        c);
        }
        size_t k = rv__utf8_seq(q, end);
        if (!k) {
            return fail(ps, q, RV_ERR_PARSE,
                        "invalid UTF-8 in a string: byte 0x%02x does not start a valid "
                        "sequence (overlong, surrogate, above U+10FFFF, stray continuation or "
                        "truncated)",
                        c);
        }
        fl &= ~(unsigned)RV__STR_ASCII;
        q += k;
    }
    size_t n = (size_t)(q - s);
    char *m = rv__arena_alloc(ps->arena, prefix + n + 1);
    if (!m) {
        return fail(ps, p, RV_ERR_NOMEM, "out of memory");
    }
    char *o = m + prefix;
    if (!escaped) {
        memcpy(o, s, n);
        o[n] = 0;
        *len = n;
    } else {
        char *e = decode_escapes(ps, s, q, o, &fl);
        if (!e) {
            return ps->err_code;
        }
        *e = 0;
        *len = (size_t)(e - o);
    }
    *mem = m;
    *flags = fl;
    *next = q + 1;
    return RV_OK;
}

/* Parses the number at `p` into `v`; *next receives the byte after it. */
static rv_err_t parse_number(parser_t *ps, cursor_t p, rv_value_t *v, cursor_t *next) {
    cursor_t start = p;
    cursor_t end = ps->end;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
        if (p == end || !is_digit(*p)) {
            return fail_expected(ps, p, "a digit after '-'");
        }
    }
    cursor_t digits = p;
    uint64_t m = 0;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) {
            return fail(ps, p, RV_ERR_PARSE, "leading zeros are not allowed in a number");
        }
    } else {
        while (p < end && is_digit(*p)) {
            m = m * 10 + (uint64_t)(*p - '0'); /* wraps past 20 digits; checked below */
            p++;
        }
    }
    size_t nd = (size_t)(p - digits);
    bool integer = true;
    if (p < end && *p == '.') {
        integer = false;
        p++;
        if (p == end || !is_digit(*p)) {
            return fail_expected(ps, p, "a digit after the decimal point");
        }
        while (p < end && is_digit(*p)) {
            p++;
        }
    }
    if (p < end && (*p | 0x20) == 'e') {
        integer = false;
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p == end || !is_digit(*p)) {
            return fail_expected(ps, p, "a digit in the exponent");
        }
        while (p < end && is_digit(*p)) {
            p++;
        }
    }
    *next = p;
    if (integer) {
        if (nd <= 19) { /* 19 digits cannot wrap a uint64 */
            if (!neg && m <= (uint64_t)INT64_MAX) {
                v->type = RV_TYPE_INT;
                v->u.i = (int64_t)m;
                return RV_OK;
            }
            if (neg && m != 0 && m <= (uint64_t)INT64_MAX + 1) {
                v->type = RV_TYPE_INT;
                v->u.i = (int64_t)(0 - m); /* two's complement: INT64_MIN included */
                return RV_OK;
            }
            if (neg && m == 0) {
                v->type = RV_TYPE_DOUBLE; /* "-0" keeps its sign as the double -0.0 */
                v->u.d = -0.0;
                return RV_OK;
            }
        }
    }
    double d;
    rv_err_t e = rv__strtod((const char *)start, (size_t)(p - start), &d);
    if (e == RV_ERR_RANGE) {
        return fail(ps, start, RV_ERR_RANGE, "number %.*s%s is beyond the range of a double",
                    (int)((p - start) > 40 ? 40 : (p - start)), (const char *)start,
                    (p - start) > 40 ? "..." : "");
    }
    if (e) {
        return fail(ps, start, e, "cannot convert the number: %s", rv_err_str(e));
    }
    v->type = RV_TYPE_DOUBLE;
    v->u.d = d;
    return RV_OK;
}

/* Allocates a node of `size` bytes (type and flags are set by the caller). */
static inline rv_value_t *new_node(parser_t *ps, size_t size, cursor_t at) {
    rv_value_t *v = rv__arena_alloc(ps->arena, size);
    if (RV_UNLIKELY(!v)) {
        fail(ps, at, RV_ERR_NOMEM, "out of memory");
    }
    return v;
}

/* Composes the public error from the recorded fault. */
static rv_err_t report(parser_t *ps, size_t *err_offset, rv_error_t **err) {
    size_t off = (size_t)(ps->err_at - ps->begin);
    if (err_offset) {
        *err_offset = off;
    }
    if (err) {
        size_t line = 1, col_start = 0;
        for (size_t i = 0; i < off; i++) {
            if (ps->begin[i] == '\n') {
                line++;
                col_start = i + 1;
            }
        }
        rv__error_set(err, ps->err_code, "JSON %s at offset %zu (line %zu, column %zu): %s",
                      ps->err_code == RV_ERR_PARSE ? "syntax error" : "error", off, line,
                      off - col_start + 1, ps->err_what);
    }
    return ps->err_code;
}

rv_err_t rv_json_parse(rv_arena_t *arena, const char *text, size_t len,
                       const rv_json_parse_opts_t *opts, rv_value_t **out, size_t *err_offset,
                       rv_error_t **err) {
    if (out) {
        *out = NULL;
    }
    if (err_offset) {
        *err_offset = 0;
    }
    int max_depth = opts && opts->max_depth ? opts->max_depth : RV_JSON_DEFAULT_MAX_DEPTH;
    if (!arena || !out || (!text && len) || max_depth < 0) {
        return rv__error_set(err, RV_ERR_INVALID_ARG,
                             "rv_json_parse: arena, out and text are required and max_depth "
                             "must not be negative");
    }
    if (!text) {
        text = "";
    }
    rv_value_t *items_local[64];
    rv__member_t members_local[48];
    frame_t frames_local[32];
    parser_t ps = {
        .arena = arena,
        .begin = (cursor_t)text,
        .end = (cursor_t)text + len,
        .items = items_local,
        .items_cap = RV_ARRAY_LEN(items_local),
        .members = members_local,
        .members_cap = RV_ARRAY_LEN(members_local),
        .frames = frames_local,
        .frames_cap = RV_ARRAY_LEN(frames_local),
    };
    const uint64_t seed = rv__key_seed();
    cursor_t p = ps.begin;
    cursor_t end = ps.end;
    size_t depth = 0;
    rv_value_t *v = NULL;
    rv_err_t e;

    if (len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) {
        fail(&ps, p, RV_ERR_PARSE, "a UTF-8 byte order mark (EF BB BF) is not accepted");
        goto failed;
    }

value:
    p = skip_ws(p, end);
    if (RV_UNLIKELY(p == end)) {
        fail_expected(&ps, p, "a value");
        goto failed;
    }
    switch (*p) {
        case '"': {
            char *mem;
            size_t n;
            unsigned fl;
            if (parse_string(&ps, p, sizeof(rv_value_t), &mem, &n, &fl, &p)) {
                goto failed;
            }
            v = (rv_value_t *)(void *)mem;
            v->type = RV_TYPE_STRING;
            v->flags = (uint8_t)fl;
            v->u.str.ptr = mem + sizeof(rv_value_t);
            v->u.str.len = n;
            goto have_value;
        }
        case '-':
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7':
        case '8':
        case '9':
            v = new_node(&ps, RV__SHORT_NODE_SIZE, p);
            if (!v || parse_number(&ps, p, v, &p)) {
                goto failed;
            }
            v->flags = 0;
            goto have_value;
        case '{':
        case '[': {
            if (depth >= (size_t)max_depth) {
                fail(&ps, p, RV_ERR_LIMIT, "nesting deeper than the limit of %d levels", max_depth);
                goto failed;
            }
            if (depth == ps.frames_cap &&
                !rv__stack_grow((void **)&ps.frames, &ps.frames_cap, sizeof(frame_t), frames_local,
                                depth + 1)) {
                fail(&ps, p, RV_ERR_NOMEM, "out of memory");
                goto failed;
            }
            bool is_object = *p == '{';
            ps.frames[depth].is_object = is_object;
            ps.frames[depth].start = is_object ? ps.members_top : ps.items_top;
            depth++;
            p = skip_ws(p + 1, end);
            if (is_object) {
                if (p < end && *p == '}') {
                    p++;
                    goto close_object;
                }
                goto key;
            }
            if (p < end && *p == ']') {
                p++;
                goto close_array;
            }
            goto value;
        }
        case 't':
            if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
                v = new_node(&ps, RV__SHORT_NODE_SIZE, p);
                if (!v) {
                    goto failed;
                }
                v->type = RV_TYPE_BOOL;
                v->flags = 0;
                v->u.b = true;
                p += 4;
                goto have_value;
            }
            goto bad_literal;
        case 'f':
            if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
                v = new_node(&ps, RV__SHORT_NODE_SIZE, p);
                if (!v) {
                    goto failed;
                }
                v->type = RV_TYPE_BOOL;
                v->flags = 0;
                v->u.b = false;
                p += 5;
                goto have_value;
            }
            goto bad_literal;
        case 'n':
            if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
                v = new_node(&ps, RV__SHORT_NODE_SIZE, p);
                if (!v) {
                    goto failed;
                }
                v->type = RV_TYPE_NULL;
                v->flags = 0;
                p += 4;
                goto have_value;
            }
            goto bad_literal;
        default:
            fail_expected(&ps, p, "a value (object, array, string, number, true, false or null)");
            goto failed;
    }

bad_literal:
    /* A literal that starts right but is misspelt or cut short. */
    {
        const char *word = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
        size_t i = 0;
        while (word[i] && p + i < end && p[i] == (unsigned char)word[i]) {
            i++;
        }
        char what[32];
        snprintf(what, sizeof what, "'%s'", word);
        fail_expected(&ps, p + i, what);
        goto failed;
    }

key:
    /* p is past whitespace, where an object key must start. */
    if (RV_UNLIKELY(p == end || *p != '"')) {
        fail_expected(&ps, p, "a string key");
        goto failed;
    }
    if (ps.members_top == ps.members_cap &&
        !rv__stack_grow((void **)&ps.members, &ps.members_cap, sizeof(rv__member_t), members_local,
                        ps.members_top + 1)) {
        fail(&ps, p, RV_ERR_NOMEM, "out of memory");
        goto failed;
    }
    {
        rv__member_t *m = &ps.members[ps.members_top];
        char *mem;
        size_t n;
        unsigned fl;
        cursor_t kp = p;
        if (parse_string(&ps, p, 0, &mem, &n, &fl, &p)) {
            goto failed;
        }
        if (n > UINT32_MAX) {
            fail(&ps, kp, RV_ERR_LIMIT, "object key longer than 4 GiB");
            goto failed;
        }
        m->key = mem;
        m->key_len = (uint32_t)n;
        m->key_flags = fl;
        m->value = NULL;
        ps.members_top++;
    }
    p = skip_ws(p, end);
    if (RV_UNLIKELY(p == end || *p != ':')) {
        fail_expected(&ps, p, "':' after an object key");
        goto failed;
    }
    p++;
    goto value;

have_value:
    /* v is complete: hand it to the innermost open container, or finish. */
    if (RV_UNLIKELY(depth == 0)) {
        goto finish;
    }
    if (ps.frames[depth - 1].is_object) {
        ps.members[ps.members_top - 1].value = v;
        p = skip_ws(p, end);
        if (RV_LIKELY(p < end)) {
            if (*p == ',') {
                p = skip_ws(p + 1, end);
                goto key;
            }
            if (*p == '}') {
                p++;
                goto close_object;
            }
        }
        fail_expected(&ps, p, "',' or '}' after an object member");
        goto failed;
    }
    if (ps.items_top == ps.items_cap &&
        !rv__stack_grow((void **)&ps.items, &ps.items_cap, sizeof(rv_value_t *), items_local,
                        ps.items_top + 1)) {
        fail(&ps, p, RV_ERR_NOMEM, "out of memory");
        goto failed;
    }
    ps.items[ps.items_top++] = v;
    p = skip_ws(p, end);
    if (RV_LIKELY(p < end)) {
        if (*p == ',') {
            p++;
            goto value;
        }
        if (*p == ']') {
            p++;
            goto close_array;
        }
    }
    fail_expected(&ps, p, "',' or ']' after an array item");
    goto failed;

close_array:
    /* The array is complete: one allocation holds the node and its items. */
    {
        size_t start = ps.frames[--depth].start;
        size_t n = ps.items_top - start;
        if (n > RV__MAX_ENTRIES) {
            fail(&ps, p - 1, RV_ERR_LIMIT, "array with more than %u items", RV__MAX_ENTRIES);
            goto failed;
        }
        v = rv__arena_alloc(arena, sizeof *v + n * sizeof(rv_value_t *));
        if (!v) {
            fail(&ps, p - 1, RV_ERR_NOMEM, "out of memory");
            goto failed;
        }
        v->type = RV_TYPE_ARRAY;
        v->flags = 0;
        v->u.arr.items = n ? (rv_value_t **)(void *)(v + 1) : NULL;
        v->u.arr.len = v->u.arr.cap = (uint32_t)n;
        if (n) {
            memcpy(v->u.arr.items, &ps.items[start], n * sizeof(rv_value_t *));
        }
        ps.items_top = start;
        goto have_value;
    }

close_object:
    /* The object is complete: merge repeated keys, build the member array and index. */
    {
        size_t start = ps.frames[--depth].start;
        v = new_node(&ps, sizeof(rv_value_t), p - 1);
        if (!v) {
            goto failed;
        }
        v->type = RV_TYPE_OBJECT;
        v->flags = 0;
        e = rv__obj_adopt(arena, v, &ps.members[start], ps.members_top - start, seed);
        if (e) {
            fail(&ps, p - 1, e, "%s",
                 e == RV_ERR_LIMIT ? "object with too many members" : "out of memory");
            goto failed;
        }
        ps.members_top = start;
        goto have_value;
    }

finish:
    p = skip_ws(p, end);
    if (p != end) {
        fail_expected(&ps, p, "end of input after the JSON value");
        goto failed;
    }
    *out = v;
    e = RV_OK;
    goto cleanup;

failed:
    e = report(&ps, err_offset, err);

cleanup:
    if (ps.items != items_local) {
        free(ps.items);
    }
    if (ps.members != members_local) {
        free(ps.members);
    }
    if (ps.frames != frames_local) {
        free(ps.frames);
    }
    return e;
}

/* ==== writer ================================================================================ */

/* One open container being written: the node and the child being written now. */
typedef struct wframe_s {
    const rv_value_t *node;
    uint32_t next;
} wframe_t;

typedef struct writer_s {
    rv_strbuf_t *sb;
    char *p;   /* next byte to write */
    char *end; /* end of the capacity (the NUL's byte excluded) */
} writer_t;

static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

static const char hex_digits[] = "0123456789abcdef";

/* Makes room for `need` more bytes; false when memory is exhausted. */
static bool wgrow(writer_t *w, size_t need) {
    w->sb->len = (size_t)(w->p - w->sb->data);
    if (rv_strbuf_reserve(w->sb, need)) {
        return false;
    }
    w->p = w->sb->data + w->sb->len;
    w->end = w->sb->data + w->sb->cap - 1;
    return true;
}

#define ENSURE(w, n)                                                                               \
    do {                                                                                           \
        if (RV_UNLIKELY((size_t)((w)->end - (w)->p) < (size_t)(n)) && !wgrow((w), (n))) {          \
            goto nomem;                                                                            \
        }                                                                                          \
    } while (0)

/* The number of decimal digits of `x` (1 to 20). */
static inline unsigned digit_count(uint64_t x) {
    static const uint64_t pow10[20] = {1ull,
                                       10ull,
                                       100ull,
                                       1000ull,
                                       10000ull,
                                       100000ull,
                                       1000000ull,
                                       10000000ull,
                                       100000000ull,
                                       1000000000ull,
                                       10000000000ull,
                                       100000000000ull,
                                       1000000000000ull,
                                       10000000000000ull,
                                       100000000000000ull,
                                       1000000000000000ull,
                                       10000000000000000ull,
                                       100000000000000000ull,
                                       1000000000000000000ull,
                                       10000000000000000000ull};
    /* floor(log10(2^bits)) by fixed point, then one comparison to land on the exact count. */
    unsigned t = (unsigned)(64 - __builtin_clzll(x | 1)) * 1233u >> 12;
    return t - ((x | 1) < pow10[t]) + 1; /* x | 1: zero has one digit too */
}

/* Writes the decimal digits of `x` at `p` (room for 20 bytes) and returns the end. */
static inline char *put_u64(char *p, uint64_t x) {
    char *e = p + digit_count(x);
    char *q = e;
    while (x >= 100) {
        q -= 2;
        memcpy(q, &digit_pairs[(x % 100) * 2], 2);
        x /= 100;
    }
    if (x >= 10) {
        memcpy(q - 2, &digit_pairs[x * 2], 2);
    } else {
        q[-1] = (char)('0' + x);
    }
    return e;
}

static inline char *put_u16_escape(char *o, unsigned u) {
    o[0] = '\\';
    o[1] = 'u';
    o[2] = hex_digits[(u >> 12) & 15];
    o[3] = hex_digits[(u >> 8) & 15];
    o[4] = hex_digits[(u >> 4) & 15];
    o[5] = hex_digits[u & 15];
    return o + 6;
}

/* The JSON spelling of each byte below 0x20 that has a short escape; 0 for the others. */
static char short_escape(unsigned c) {
    switch (c) {
        case '\b':
            return 'b';
        case '\f':
            return 'f';
        case '\n':
            return 'n';
        case '\r':
            return 'r';
        case '\t':
            return 't';
        case '"':
            return '"';
        case '\\':
            return '\\';
        default:
            return 0;
    }
}

/*
 * Writes a string that needs escapes, validation or ASCII transliteration. Returns RV_OK,
 * RV_ERR_PARSE for invalid UTF-8 (nothing more is written) or RV_ERR_NOMEM.
 */
static rv_err_t write_string_slow(writer_t *w, const char *str, size_t n, bool ascii) {
    cursor_t s = (cursor_t)str;
    cursor_t end = s + n;
    ENSURE(w, 1);
    *w->p++ = '"';
    while (s < end) {
        /* A segment of at most 4 KiB of input: reserve for its worst case (6 bytes out per
         * byte in, plus one 4-byte sequence straddling its end) once. */
        cursor_t seg_end = (end - s) > 4096 ? s + 4096 : end;
        ENSURE(w, (size_t)(seg_end - s) * 6 + 16);
        char *o = w->p;
        while (s < seg_end) {
            if (seg_end - s >= 8) {
                uint64_t m = rv__swar_special(rv__load64(s));
                if (!m) {
                    memcpy(o, s, 8);
                    o += 8;
                    s += 8;
                    continue;
                }
                unsigned k = rv__swar_first(m);
                memcpy(o, s, 8); /* copying the whole word is harmless; only k bytes count */
                o += k;
                s += k;
            }
            unsigned c = *s;
            if (c >= 0x80) {
                size_t k = rv__utf8_seq(s, end);
                if (!k) {
                    w->p = o;
                    return RV_ERR_PARSE;
                }
                if (!ascii) {
                    memcpy(o, s, k);
                    o += k;
                } else {
                    unsigned cp;
                    if (k == 2) {
                        cp = (c & 0x1Fu) << 6 | (s[1] & 0x3Fu);
                    } else if (k == 3) {
                        cp = (c & 0x0Fu) << 12 | (s[1] & 0x3Fu) << 6 | (s[2] & 0x3Fu);
                    } else {
                        cp = (c & 0x07u) << 18 | (s[1] & 0x3Fu) << 12 | (s[2] & 0x3Fu) << 6 |
                             (s[3] & 0x3Fu);
                    }
                    if (cp >= 0x10000) {
                        cp -= 0x10000;
                        o = put_u16_escape(o, 0xD800 + (cp >> 10));
                        o = put_u16_escape(o, 0xDC00 + (cp & 0x3FF));
                    } else {
                        o = put_u16_escape(o, cp);
                    }
                }
                s += k;
            } else if (c < 0x20 || c == '"' || c == '\\') {
                char e = short_escape(c);
                if (e) {
                    o[0] = '\\';
                    o[1] = e;
                    o += 2;
                } else {
                    o = put_u16_escape(o, c);
                }
                s++;
            } else {
                *o++ = (char)c;
                s++;
            }
        }
        w->p = o;
    }
    ENSURE(w, 1);
    *w->p++ = '"';
    return RV_OK;
nomem:
    return RV_ERR_NOMEM;
}

/* Copies `n` bytes with fixed-size moves for short runs (no call for keys and short values). */
static inline void copy_bytes(char *d, const char *s, size_t n) {
    if (n <= 16) {
        if (n >= 8) {
            memcpy(d, s, 8);
            memcpy(d + n - 8, s + n - 8, 8);
        } else if (n >= 4) {
            memcpy(d, s, 4);
            memcpy(d + n - 4, s + n - 4, 4);
        } else if (n > 0) {
            d[0] = s[0];
            d[n >> 1] = s[n >> 1];
            d[n - 1] = s[n - 1];
        }
        return;
    }
    memcpy(d, s, n);
}

/* Writes a string node or key; `flags` are its RV__STR_* classification. */
static inline rv_err_t write_string(writer_t *w, const char *s, size_t n, unsigned flags,
                                    bool ascii) {
    if (RV_LIKELY((flags & RV__STR_PLAIN) && (!ascii || (flags & RV__STR_ASCII)))) {
        ENSURE(w, n + 2);
        char *o = w->p;
        *o++ = '"';
        copy_bytes(o, s, n);
        o += n;
        *o++ = '"';
        w->p = o;
        return RV_OK;
    }
    return write_string_slow(w, s, n, ascii);
nomem:
    return RV_ERR_NOMEM;
}

static rv_err_t write_base64(writer_t *w, const unsigned char *s, size_t n) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n / 3 >= SIZE_MAX / 4 - 2) {
        return RV_ERR_NOMEM;
    }
    ENSURE(w, (n + 2) / 3 * 4 + 2);
    char *o = w->p;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t x = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        o[0] = alphabet[x >> 18];
        o[1] = alphabet[(x >> 12) & 63];
        o[2] = alphabet[(x >> 6) & 63];
        o[3] = alphabet[x & 63];
        o += 4;
    }
    if (n - i == 1) {
        uint32_t x = (uint32_t)s[i] << 16;
        o[0] = alphabet[x >> 18];
        o[1] = alphabet[(x >> 12) & 63];
        o[2] = '=';
        o[3] = '=';
        o += 4;
    } else if (n - i == 2) {
        uint32_t x = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        o[0] = alphabet[x >> 18];
        o[1] = alphabet[(x >> 12) & 63];
        o[2] = alphabet[(x >> 6) & 63];
        o[3] = '=';
        o += 4;
    }
    *o++ = '"';
    w->p = o;
    return RV_OK;
nomem:
    return RV_ERR_NOMEM;
}

/* True when `key` can follow a '.' in a path: an identifier of ASCII letters, digits, '_'. */
static bool path_ident(const char *key, size_t n) {
    if (n == 0 || is_digit((unsigned char)key[0])) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)key[i];
        if (!(is_digit(c) || ((c | 0x20) - 'a' < 26u) || c == '_')) {
            return false;
        }
    }
    return true;
}

/* Builds the error for the node at the path the frame stack describes. */
static rv_err_t path_error(rv_error_t **err, rv_err_t code, const wframe_t *frames, size_t top,
                           const char *what) {
    if (!err) {
        return code;
    }
    rv_strbuf_t path = RV_STRBUF_INIT;
    rv_strbuf_append(&path, "$", 1);
    for (size_t i = 0; i < top; i++) {
        const rv_value_t *n = frames[i].node;
        if (n->type == RV_TYPE_ARRAY) {
            rv_strbuf_appendf(&path, "[%u]", frames[i].next);
        } else {
            const rv__member_t *m = &n->u.obj.members[frames[i].next];
            if (path_ident(m->key, m->key_len)) {
                rv_strbuf_append(&path, ".", 1);
                rv_strbuf_append(&path, m->key, m->key_len);
            } else {
                char q[96];
                rv_strbuf_appendf(&path, "[%s]", rv__quote(q, sizeof q, m->key, m->key_len));
            }
        }
    }
    rv__error_set(err, code, "JSON write error at %s: %s", path.data ? path.data : "$", what);
    rv_strbuf_free(&path);
    return code;
}

/* Room every scalar but strings and bytes needs, with a separator and a key's punctuation. */
#define SCALAR_ROOM (RV_DTOA_MAX + 8)

/*
 * Writes a scalar node (anything but a non-empty container). The caller has ensured
 * SCALAR_ROOM bytes; strings and bytes ensure their own. On failure *what says why.
 */
static rv_err_t write_scalar(writer_t *w, const rv_value_t *v, bool ascii, const char **what) {
    char *o = w->p;
    switch (v ? v->type : RV_TYPE_NULL) {
        case RV_TYPE_NULL:
            memcpy(o, "null", 4);
            w->p = o + 4;
            return RV_OK;
        case RV_TYPE_BOOL:
            if (v->u.b) {
                memcpy(o, "true", 4);
                w->p = o + 4;
            } else {
                memcpy(o, "false", 5);
                w->p = o + 5;
            }
            return RV_OK;
        case RV_TYPE_INT:
            if (v->u.i < 0) {
                *o++ = '-';
                w->p = put_u64(o, 0 - (uint64_t)v->u.i);
            } else {
                w->p = put_u64(o, (uint64_t)v->u.i);
            }
            return RV_OK;
        case RV_TYPE_DOUBLE:
            if (RV_UNLIKELY(!isfinite(v->u.d))) {
                *what = isnan(v->u.d) ? "NaN has no JSON spelling"
                                      : "an infinite double has no JSON spelling";
                return RV_ERR_RANGE;
            }
            w->p = o + rv__dtoa_shortest(v->u.d, o);
            return RV_OK;
        case RV_TYPE_STRING: {
            rv_err_t e = write_string(w, v->u.str.ptr, v->u.str.len, v->flags, ascii);
            if (RV_UNLIKELY(e)) {
                *what = e == RV_ERR_PARSE ? "string is not valid UTF-8" : "out of memory";
            }
            return e;
        }
        case RV_TYPE_BYTES: {
            rv_err_t e = write_base64(w, (cursor_t)v->u.str.ptr, v->u.str.len);
            if (e) {
                *what = "out of memory";
            }
            return e;
        }
        case RV_TYPE_ARRAY: /* empty */
            memcpy(o, "[]", 2);
            w->p = o + 2;
            return RV_OK;
        case RV_TYPE_OBJECT: /* empty */
            memcpy(o, "{}", 2);
            w->p = o + 2;
            return RV_OK;
    }
    *what = "node of an unknown type";
    return RV_ERR_INVALID_ARG;
}

/* write_scalar() with the common cases (numbers and plain strings) inlined into the loop. */
static inline rv_err_t write_scalar_fast(writer_t *w, const rv_value_t *v, bool ascii,
                                         const char **what) {
    if (RV_LIKELY(v != NULL)) {
        if (v->type == RV_TYPE_DOUBLE && RV_LIKELY(isfinite(v->u.d))) {
            w->p += rv__dtoa_shortest(v->u.d, w->p);
            return RV_OK;
        }
        if (v->type == RV_TYPE_INT) {
            char *o = w->p;
            if (v->u.i < 0) {
                *o++ = '-';
                w->p = put_u64(o, 0 - (uint64_t)v->u.i);
            } else {
                w->p = put_u64(o, (uint64_t)v->u.i);
            }
            return RV_OK;
        }
        if (v->type == RV_TYPE_STRING && (v->flags & RV__STR_PLAIN) &&
            (!ascii || (v->flags & RV__STR_ASCII)) && v->u.str.len <= 64) {
            size_t n = v->u.str.len; /* SCALAR_ROOM covers short strings; longer ones go out */
            if (RV_LIKELY((size_t)(w->end - w->p) >= n + 2)) {
                char *o = w->p;
                *o++ = '"';
                copy_bytes(o, v->u.str.ptr, n);
                o += n;
                *o++ = '"';
                w->p = o;
                return RV_OK;
            }
        }
    }
    return write_scalar(w, v, ascii, what);
}

static inline bool open_container(const rv_value_t *v) {
    return v && ((v->type == RV_TYPE_OBJECT && v->u.obj.len) ||
                 (v->type == RV_TYPE_ARRAY && v->u.arr.len));
}

rv_err_t rv_json_write(rv_strbuf_t *out, const rv_value_t *v, int flags, rv_error_t **err) {
    if (!out) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_json_write: out is required");
    }
    const bool pretty = (flags & RV_JSON_PRETTY) != 0;
    const bool ascii = (flags & RV_JSON_ASCII) != 0;
    writer_t w = {out, NULL, NULL};
    wframe_t local[32];
    wframe_t *stack = local;
    size_t cap = RV_ARRAY_LEN(local), top = 0;
    rv_err_t e = RV_OK;
    const char *what = "out of memory";
    if (rv_strbuf_reserve(out, 256)) {
        return rv__error_set(err, RV_ERR_NOMEM, "JSON write: out of memory");
    }
    w.p = out->data + out->len;
    w.end = out->data + out->cap - 1;

    const rv_value_t *cur = v;
    uint32_t i;
    if (!open_container(cur)) {
        ENSURE(&w, SCALAR_ROOM);
        e = write_scalar(&w, cur, ascii, &what);
        if (e) {
            goto fault;
        }
        goto done;
    }

open:
    /* `cur` is a non-empty container: push it and write its children from the first. */
    if (top == cap && !rv__stack_grow((void **)&stack, &cap, sizeof *stack, local, top + 1)) {
        goto nomem;
    }
    stack[top++] = (wframe_t){cur, 0};
    ENSURE(&w, 1);
    *w.p++ = cur->type == RV_TYPE_OBJECT ? '{' : '[';
    i = 0;

resume:
    /* Write children i.. of the innermost open container; descend into non-empty ones. */
    {
        wframe_t *f = &stack[top - 1];
        const rv_value_t *node = f->node;
        if (node->type == RV_TYPE_OBJECT) {
            const rv__member_t *members = node->u.obj.members;
            uint32_t n = node->u.obj.len;
            for (; i < n; i++) {
                const rv__member_t *m = &members[i];
                ENSURE(&w, (size_t)m->key_len + SCALAR_ROOM + (pretty ? 2 * top + 2 : 0));
                if (i) {
                    *w.p++ = ',';
                }
                if (pretty) {
                    *w.p++ = '\n';
                    memset(w.p, ' ', 2 * top);
                    w.p += 2 * top;
                }
                if (RV_LIKELY((m->key_flags & RV__STR_PLAIN) &&
                              (!ascii || (m->key_flags & RV__STR_ASCII)))) {
                    char *o = w.p;
                    *o++ = '"';
                    copy_bytes(o, m->key, m->key_len);
                    o += m->key_len;
                    *o++ = '"';
                    w.p = o;
                } else {
                    e = write_string_slow(&w, m->key, m->key_len, ascii);
                    if (e) {
                        f->next = i;
                        what =
                            e == RV_ERR_PARSE ? "member key is not valid UTF-8" : "out of memory";
                        goto fault;
                    }
                    ENSURE(&w, SCALAR_ROOM);
                }
                *w.p++ = ':';
                if (pretty) {
                    *w.p++ = ' ';
                }
                const rv_value_t *c = m->value;
                if (open_container(c)) {
                    f->next = i;
                    cur = c;
                    goto open;
                }
                e = write_scalar_fast(&w, c, ascii, &what);
                if (RV_UNLIKELY(e)) {
                    f->next = i;
                    goto fault;
                }
            }
        } else {
            rv_value_t *const *items = node->u.arr.items;
            uint32_t n = node->u.arr.len;
            for (; i < n; i++) {
                ENSURE(&w, SCALAR_ROOM + (pretty ? 2 * top + 1 : 0));
                if (i) {
                    *w.p++ = ',';
                }
                if (pretty) {
                    *w.p++ = '\n';
                    memset(w.p, ' ', 2 * top);
                    w.p += 2 * top;
                }
                const rv_value_t *c = items[i];
                if (open_container(c)) {
                    f->next = i;
                    cur = c;
                    goto open;
                }
                e = write_scalar_fast(&w, c, ascii, &what);
                if (RV_UNLIKELY(e)) {
                    f->next = i;
                    goto fault;
                }
            }
        }
        /* All children written: close, and resume the parent after this child. */
        top--;
        ENSURE(&w, 2 * top + 2);
        if (pretty) {
            *w.p++ = '\n';
            memset(w.p, ' ', 2 * top);
            w.p += 2 * top;
        }
        *w.p++ = node->type == RV_TYPE_OBJECT ? '}' : ']';
        if (top) {
            i = stack[top - 1].next + 1;
            goto resume;
        }
    }

done:
    out->len = (size_t)(w.p - out->data);
    out->data[out->len] = 0;
    if (stack != local) {
        free(stack);
    }
    return RV_OK;

nomem:
    e = RV_ERR_NOMEM;
    what = "out of memory";
fault:
    out->len = (size_t)(w.p - out->data);
    out->data[out->len] = 0;
    path_error(err, e, stack, top, what);
    if (stack != local) {
        free(stack);
    }
    return e;
}
