/*
 * cmd_config.c: `rivulet config list [--markdown]`: the configuration table, as a terminal
 * listing or as the Markdown reference kept in docs/configuration.md.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
    fprintf(out, "usage: rivulet config list [--markdown]\n\n"
                 "Lists every configuration property with its type, default and accepted values.\n"
                 "  --markdown   print the reference as Markdown (docs/configuration.md)\n");
}

int cmd_config(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "list") != 0) {
        usage(stderr);
        return cli_fail(CLI_USAGE, "config", "unknown subcommand '%s'", argv[1]);
    }
    int markdown = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--markdown") == 0) {
            markdown = 1;
        } else {
            return cli_fail(CLI_USAGE, "config", "unknown option '%s'", argv[i]);
        }
    }
    if (markdown) {
        rv_strbuf_t sb = RV_STRBUF_INIT;
        if (rv_conf_describe_markdown(&sb) != RV_OK) {
            rv_strbuf_free(&sb);
            return cli_fail(CLI_FAILED, "config", "out of memory");
        }
        fwrite(sb.data, 1, sb.len, stdout);
        rv_strbuf_free(&sb);
        return CLI_OK;
    }
    for (size_t i = 0; i < rv_conf_property_count(); i++) {
        const rv_conf_property_t *p = rv_conf_property(i);
        printf("%-28s %-8s default %s", p->name, rv_conf_type_name(p->type), p->default_value);
        if (p->values) {
            printf("  (%s)", p->values);
        } else if (p->type != RV_CONF_STRING && p->type != RV_CONF_BOOL) {
            printf("  (%lld..%lld)", (long long)p->min, (long long)p->max);
        }
        printf("\n    %s\n", p->description);
    }
    return CLI_OK;
}
