/*
 * cmd_json.c: `rivulet json [--pretty|--compact] [--ascii] [-X name=value] [FILE...]`:
 * validates JSON documents and writes them back in rivulet's canonical form. Errors name the
 * file, line, column and byte offset of the fault. With --lines, each input line is one
 * document (JSON Lines) and errors also give the line number.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct opts_s {
    int flags;
    int lines;
    int quiet;
    rv_json_parse_opts_t parse;
} opts_t;

static void usage(FILE *out) {
    fprintf(out,
            "usage: rivulet json [OPTIONS] [FILE...]\n\n"
            "Parses each FILE (or standard input) as JSON and writes it back.\n"
            "  --pretty          indent the output (default: compact)\n"
            "  --ascii           escape every non-ASCII character\n"
            "  --lines           treat each input line as one document (JSON Lines)\n"
            "  -q, --quiet       validate only; print nothing but errors\n"
            "  -X name=value     configuration (json.max.depth)\n"
            "Exit status: 0 when every document is valid, 1 otherwise.\n");
}

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) {
            if (ferror(f)) {
                free(buf);
                return NULL;
            }
            break;
        }
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            return NULL;
        }
        buf = bigger;
        cap *= 2;
    }
    *len = n;
    return buf;
}

/* Parses and writes one document; returns 0 when valid. */
static int one_document(const opts_t *o, rv_arena_t *arena, rv_strbuf_t *out, const char *name,
                        long line_no, const char *text, size_t len) {
    rv_value_t *v = NULL;
    rv_error_t *err = NULL;
    rv_arena_reset(arena);
    if (rv_json_parse(arena, text, len, &o->parse, &v, NULL, &err) != RV_OK) {
        if (line_no > 0) {
            fprintf(stderr, "rivulet json: %s: line %ld: %s\n", name, line_no,
                    rv_error_message(err));
        } else {
            fprintf(stderr, "rivulet json: %s: %s\n", name, rv_error_message(err));
        }
        rv_error_destroy(err);
        return 1;
    }
    if (o->quiet) {
        return 0;
    }
    rv_strbuf_clear(out);
    if (rv_json_write(out, v, o->flags, &err) != RV_OK) {
        fprintf(stderr, "rivulet json: %s: %s\n", name, rv_error_message(err));
        rv_error_destroy(err);
        return 1;
    }
    fwrite(out->data, 1, out->len, stdout);
    fputc('\n', stdout);
    return 0;
}

static int one_input(const opts_t *o, rv_arena_t *arena, rv_strbuf_t *out, const char *name,
                     FILE *f) {
    size_t len;
    char *text = read_all(f, &len);
    if (!text) {
        return cli_fail(CLI_FAILED, "json", "%s: cannot read: %s", name, strerror(errno));
    }
    int bad = 0;
    if (!o->lines) {
        bad = one_document(o, arena, out, name, 0, text, len);
    } else {
        long line_no = 0;
        for (size_t start = 0; start < len;) {
            const char *nl = memchr(text + start, '\n', len - start);
            size_t end = nl ? (size_t)(nl - text) : len;
            line_no++;
            size_t n = end - start;
            if (n && text[start + n - 1] == '\r') {
                n--;
            }
            int blank = 1;
            for (size_t i = 0; i < n && blank; i++) {
                blank = text[start + i] == ' ' || text[start + i] == '\t';
            }
            if (!blank) {
                bad |= one_document(o, arena, out, name, line_no, text + start, n);
            }
            start = end + 1;
        }
    }
    free(text);
    return bad;
}

int cmd_json(int argc, char **argv) {
    opts_t o = {0};
    rv_conf_t *conf = rv_conf_new();
    int first_file = argc;
    int status = CLI_OK;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            rv_conf_destroy(conf);
            return CLI_OK;
        } else if (strcmp(a, "--pretty") == 0) {
            o.flags |= RV_JSON_PRETTY;
        } else if (strcmp(a, "--compact") == 0) {
            o.flags &= ~RV_JSON_PRETTY;
        } else if (strcmp(a, "--ascii") == 0) {
            o.flags |= RV_JSON_ASCII;
        } else if (strcmp(a, "--lines") == 0) {
            o.lines = 1;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            o.quiet = 1;
        } else if (strcmp(a, "-X") == 0) {
            if (i + 1 >= argc) {
                rv_conf_destroy(conf);
                return cli_fail(CLI_USAGE, "json", "-X needs name=value");
            }
            if (cli_set_conf(conf, "json", argv[++i])) {
                rv_conf_destroy(conf);
                return CLI_USAGE;
            }
        } else if (a[0] == '-' && a[1]) {
            rv_conf_destroy(conf);
            usage(stderr);
            return cli_fail(CLI_USAGE, "json", "unknown option '%s'", a);
        } else {
            first_file = i;
            break;
        }
    }
    o.parse.max_depth = (int)rv_conf_get_int(conf, "json.max.depth");
    rv_conf_destroy(conf);

    rv_arena_t *arena = rv_arena_new(0);
    rv_strbuf_t out = RV_STRBUF_INIT;
    if (!arena) {
        return cli_fail(CLI_FAILED, "json", "out of memory");
    }
    if (first_file >= argc) {
        status = one_input(&o, arena, &out, "<stdin>", stdin) ? CLI_FAILED : CLI_OK;
    }
    for (int i = first_file; i < argc; i++) {
        FILE *f = strcmp(argv[i], "-") == 0 ? stdin : fopen(argv[i], "rb");
        if (!f) {
            cli_fail(CLI_FAILED, "json", "%s: cannot open: %s", argv[i], strerror(errno));
            status = CLI_FAILED;
            continue;
        }
        if (one_input(&o, arena, &out, argv[i], f)) {
            status = CLI_FAILED;
        }
        if (f != stdin) {
            fclose(f);
        }
    }
    rv_strbuf_free(&out);
    rv_arena_destroy(arena);
    return status;
}
