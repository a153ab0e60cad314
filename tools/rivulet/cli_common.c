/*
 * cli_common.c: what the broker commands (topics, produce, consume) share: the -b and -X
 * options, opening the broker with the library's log on stderr, escapes in delimiters and
 * formats, strict number parsing and a UTF-8 check. Like all of the CLI it uses the public API
 * only; it never decides anything a command should decide (defaults, output formats).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_client_init(cli_client_t *c, const char *command) {
    const char *env = getenv("RIVULET_BROKER");
    c->command = command;
    c->url = env && *env ? env : RV_BROKER_DEFAULT_URL;
    c->conf = rv_conf_new();
    if (!c->conf) {
        return cli_fail(CLI_FAILED, command, "out of memory");
    }
    return 0;
}

int cli_client_option(cli_client_t *c, int opt, const char *arg) {
    if (opt == 'b') {
        if (!*arg) {
            return cli_fail(CLI_USAGE, c->command,
                            "-b needs a broker URL, such as "
                            "local:./rivulet-data");
        }
        c->url = arg;
        return 0;
    }
    if (opt == 'X') {
        return cli_set_conf(c->conf, c->command, arg) ? CLI_USAGE : 0;
    }
    return -1;
}

/* The library's log lines, as "rivulet COMMAND: warning: subsystem: message". */
static void log_line(void *opaque, rv_log_level_t level, const char *subsystem,
                     const char *message) {
    fprintf(stderr, "rivulet %s: %s: %s: %s\n", (const char *)opaque, rv_log_level_name(level),
            subsystem, message);
}

rv_broker_t *cli_client_open(cli_client_t *c) {
    rv_broker_opts_t opts = {
        .conf = c->conf,
        .log_cb = log_line,
        .log_opaque = (void *)c->command,
    };
    rv_error_t *err = NULL;
    rv_broker_t *b = rv_broker_open(c->url, &opts, &err);
    if (!b) {
        if (err) {
            cli_fail(CLI_FAILED, c->command, "%s", rv_error_message(err));
        } else {
            cli_fail(CLI_FAILED, c->command, "cannot open broker '%s'", c->url);
        }
        rv_error_destroy(err);
    }
    return b;
}

void cli_client_free(cli_client_t *c) {
    rv_conf_destroy(c->conf);
    c->conf = NULL;
}

int cli_fail_error(int status, const char *command, rv_error_t *err) {
    cli_fail(status, command, "%s", err ? rv_error_message(err) : "unknown error");
    rv_error_destroy(err);
    return status;
}

static int hex_digit(char ch) {
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

int cli_unescape(const char *command, const char *what, const char *text, rv_strbuf_t *out) {
    rv_strbuf_clear(out);
    for (const char *p = text; *p; p++) {
        char ch = *p;
        if (ch == '\\') {
            p++;
            switch (*p) {
                case 'n':
                    ch = '\n';
                    break;
                case 'r':
                    ch = '\r';
                    break;
                case 't':
                    ch = '\t';
                    break;
                case '0':
                    ch = '\0';
                    break;
                case '\\':
                    ch = '\\';
                    break;
                case 'x': {
                    int hi = p[1] ? hex_digit(p[1]) : -1;
                    int lo = hi >= 0 && p[2] ? hex_digit(p[2]) : -1;
                    if (lo < 0) {
                        return cli_fail(CLI_USAGE, command, "%s '%s': \\x needs two hex digits",
                                        what, text);
                    }
                    ch = (char)(hi * 16 + lo);
                    p += 2;
                    break;
                }
                case '\0':
                    return cli_fail(CLI_USAGE, command, "%s '%s' ends with a lone backslash", what,
                                    text);
                default:
                    return cli_fail(CLI_USAGE, command,
                                    "%s '%s': unknown escape '\\%c' (known: \\n \\r \\t \\0 "
                                    "\\\\ \\xHH)",
                                    what, text, *p);
            }
        }
        if (rv_strbuf_append(out, &ch, 1) != RV_OK) {
            return cli_fail(CLI_FAILED, command, "out of memory");
        }
    }
    if (rv_strbuf_reserve(out, 0) != RV_OK) { /* an empty result still gets its NUL */
        return cli_fail(CLI_FAILED, command, "out of memory");
    }
    out->data[out->len] = '\0';
    return 0;
}

int cli_parse_int64(const char *text, int64_t min, int64_t max, int64_t *out) {
    if (!text || !*text || (*text != '-' && (*text < '0' || *text > '9'))) {
        return 1;
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v < min || v > max) {
        return 1;
    }
    *out = (int64_t)v;
    return 0;
}

int cli_utf8_valid(const void *s, size_t len) {
    const unsigned char *p = s;
    const unsigned char *end = p + len;
    while (p < end) {
        /* Skip ASCII eight bytes at a time when aligned enough to matter. */
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (w & 0x8080808080808080ULL) {
                break;
            }
            p += 8;
        }
        if (p >= end) {
            break;
        }
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if ((size_t)(end - p) <= n) {
            return 0;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
            return 0;
        }
        p += n + 1;
    }
    return 1;
}

int cli_bad_option(const char *command, int opt, char **argv) {
    if (opt == ':') {
        cli_fail(CLI_USAGE, command, "option -%c needs a value", optopt);
    } else if (optopt) {
        cli_fail(CLI_USAGE, command, "unknown option '-%c'", optopt);
    } else {
        cli_fail(CLI_USAGE, command, "unknown option '%s'", argv[optind - 1]);
    }
    fprintf(stderr, "try 'rivulet %s --help'\n", command);
    return CLI_USAGE;
}
