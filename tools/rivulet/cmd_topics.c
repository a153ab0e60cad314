/*
 * cmd_topics.c: `rivulet topics create|list|describe|delete`: topic administration on any
 * broker (the embedded log by default). It validates what it can before asking the broker
 * (partition counts, that -c names a topic property) so mistakes are reported as usage errors,
 * and prints the library's messages unchanged otherwise: they already name the topic.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: rivulet topics SUBCOMMAND [OPTIONS]\n\n"
            "Topic administration.\n"
            "  create NAME [-p PARTITIONS] [-c name=value ...]   create a topic\n"
            "  list                                           list topics, one per line\n"
            "  describe NAME                                  partitions, watermarks, config\n"
            "  delete NAME                                    delete a topic and its data\n\n"
            "Options of every subcommand:\n"
            "  -b URL          broker (default $RIVULET_BROKER, else %s)\n"
            "  -X name=value   client configuration (see `rivulet config list`)\n"
            "  -h, --help      this help\n",
            RV_BROKER_DEFAULT_URL);
}

static void usage_create(FILE *out) {
    fprintf(out,
            "usage: rivulet topics create NAME [-p PARTITIONS] [-c name=value ...] [-b URL] "
            "[-X name=value ...]\n\n"
            "Creates topic NAME.\n"
            "  -p PARTITIONS   number of partitions, 1 or more (default 1)\n"
            "  -c name=value   topic configuration, repeatable, e.g. -c cleanup.policy=compact\n"
            "                  -c retention.ms=1h; topic properties:");
    for (size_t i = 0; i < rv_conf_property_count(); i++) {
        const rv_conf_property_t *p = rv_conf_property(i);
        if (strcmp(p->scope, "topic") == 0) {
            fprintf(out, " %s", p->name);
        }
    }
    fprintf(out,
            "\n  -b URL          broker (default $RIVULET_BROKER, else %s)\n"
            "  -X name=value   client configuration\n",
            RV_BROKER_DEFAULT_URL);
}

static void usage_simple(FILE *out, const char *sub, const char *what) {
    fprintf(out,
            "usage: rivulet topics %s%s [-b URL] [-X name=value ...]\n\n%s\n"
            "  -b URL          broker (default $RIVULET_BROKER, else %s)\n"
            "  -X name=value   client configuration\n",
            sub, strcmp(sub, "list") == 0 ? "" : " NAME", what, RV_BROKER_DEFAULT_URL);
}

/* Lists the topic-scoped property names, separated by ", ", into `sb`. */
static void topic_property_names(rv_strbuf_t *sb) {
    for (size_t i = 0; i < rv_conf_property_count(); i++) {
        const rv_conf_property_t *p = rv_conf_property(i);
        if (strcmp(p->scope, "topic") == 0) {
            rv_strbuf_appendf(sb, "%s%s", sb->len ? ", " : "", p->name);
        }
    }
}

/* Applies one -c name=value to the topic configuration. */
static int topic_conf_set(rv_conf_t *tconf, const char *command, const char *pair) {
    if (cli_set_conf(tconf, command, pair)) {
        return 1;
    }
    const char *eq = strchr(pair, '=');
    char name[256];
    size_t n = (size_t)(eq - pair);
    if (n >= sizeof name) {
        n = sizeof name - 1;
    }
    memcpy(name, pair, n);
    name[n] = '\0';
    const rv_conf_property_t *p = rv_conf_property_find(name);
    if (p && strcmp(p->scope, "topic") != 0) {
        rv_strbuf_t sb = RV_STRBUF_INIT;
        topic_property_names(&sb);
        cli_fail(CLI_USAGE, command,
                 "-c %s: '%s' is a %s property, not a topic property (topic properties: %s); "
                 "client properties go in -X",
                 pair, name, p->scope, sb.data ? sb.data : "");
        rv_strbuf_free(&sb);
        return 1;
    }
    return 0;
}

static int topics_create(cli_client_t *c, int argc, char **argv) {
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    int64_t partitions = 1;
    rv_conf_t *tconf = rv_conf_new();
    if (!tconf) {
        return cli_fail(CLI_FAILED, c->command, "out of memory");
    }
    int status = CLI_OK;
    int opt;
    optind = 0;
    opterr = 0;
    while (status == CLI_OK &&
           (opt = getopt_long(argc, argv, ":b:X:p:c:h", longopts, NULL)) != -1) {
        int r = cli_client_option(c, opt, optarg);
        if (r >= 0) {
            status = r;
            continue;
        }
        switch (opt) {
            case 'h':
                usage_create(stdout);
                rv_conf_destroy(tconf);
                return CLI_OK;
            case 'p':
                if (cli_parse_int64(optarg, 1, INT32_MAX, &partitions)) {
                    status = cli_fail(CLI_USAGE, c->command,
                                      "-p needs a partition count from 1 to %d, got '%s'",
                                      INT32_MAX, optarg);
                }
                break;
            case 'c':
                if (topic_conf_set(tconf, c->command, optarg)) {
                    status = CLI_USAGE;
                }
                break;
            default:
                status = cli_bad_option(c->command, opt, argv);
                break;
        }
    }
    if (status == CLI_OK && optind >= argc) {
        status = cli_fail(CLI_USAGE, c->command, "missing the topic NAME");
    } else if (status == CLI_OK && optind < argc - 1) {
        status = cli_fail(CLI_USAGE, c->command, "unexpected argument '%s'", argv[optind + 1]);
    }
    if (status != CLI_OK) {
        rv_conf_destroy(tconf);
        return status;
    }
    const char *topic = argv[optind];
    rv_broker_t *b = cli_client_open(c);
    if (!b) {
        rv_conf_destroy(tconf);
        return CLI_FAILED;
    }
    rv_error_t *err = NULL;
    if (rv_broker_create_topic(b, topic, (int32_t)partitions, tconf, &err) != RV_OK) {
        status = cli_fail_error(CLI_FAILED, c->command, err);
    } else {
        printf("created topic '%s' with %" PRId64 " partition%s\n", topic, partitions,
               partitions == 1 ? "" : "s");
    }
    rv_broker_close(b);
    rv_conf_destroy(tconf);
    return status;
}

/* Parses the options of list, describe and delete; stores the NAME (when `want_name`). */
static int simple_args(cli_client_t *c, int argc, char **argv, int want_name, const char **name,
                       const char *what) {
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    int opt;
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":b:X:h", longopts, NULL)) != -1) {
        int r = cli_client_option(c, opt, optarg);
        if (r > 0) {
            return r;
        }
        if (r == 0) {
            continue;
        }
        if (opt == 'h') {
            usage_simple(stdout, argv[0], what);
            return -1;
        }
        return cli_bad_option(c->command, opt, argv);
    }
    int operands = argc - optind;
    if (want_name && operands == 0) {
        return cli_fail(CLI_USAGE, c->command, "missing the topic NAME");
    }
    if (operands > want_name) {
        return cli_fail(CLI_USAGE, c->command, "unexpected argument '%s'",
                        argv[optind + want_name]);
    }
    if (want_name) {
        *name = argv[optind];
    }
    return 0;
}

static int topics_list(cli_client_t *c, int argc, char **argv) {
    int r = simple_args(c, argc, argv, 0, NULL, "Lists the topics, one name per line, sorted.");
    if (r) {
        return r < 0 ? CLI_OK : r;
    }
    rv_broker_t *b = cli_client_open(c);
    if (!b) {
        return CLI_FAILED;
    }
    char **names = NULL;
    rv_error_t *err = NULL;
    int status = CLI_OK;
    if (rv_broker_list_topics(b, &names, NULL, &err) != RV_OK) {
        status = cli_fail_error(CLI_FAILED, c->command, err);
    } else {
        for (char **n = names; n && *n; n++) {
            printf("%s\n", *n);
        }
    }
    rv_strv_free(names);
    rv_broker_close(b);
    return status;
}

static int topics_describe(cli_client_t *c, int argc, char **argv) {
    const char *topic = NULL;
    int r = simple_args(c, argc, argv, 1, &topic,
                        "Describes a topic: its partitions with their low watermark (first stored\n"
                        "offset) and high watermark (the next offset), and its configuration\n"
                        "(\"(default)\" marks values not set when the topic was created).");
    if (r) {
        return r < 0 ? CLI_OK : r;
    }
    rv_broker_t *b = cli_client_open(c);
    if (!b) {
        return CLI_FAILED;
    }
    int32_t partitions = 0;
    rv_conf_t *tconf = NULL;
    rv_error_t *err = NULL;
    if (rv_broker_describe_topic(b, topic, &partitions, &tconf, &err) != RV_OK) {
        rv_broker_close(b);
        return cli_fail_error(CLI_FAILED, c->command, err);
    }
    /* Gather everything before printing so a failure prints nothing half-done. */
    rv_strbuf_t out = RV_STRBUF_INIT;
    int status = CLI_OK;
    rv_strbuf_appendf(&out, "topic: %s\npartitions: %" PRId32 "\n", topic, partitions);
    for (int32_t p = 0; p < partitions; p++) {
        int64_t low = 0, high = 0;
        if (rv_broker_watermarks(b, topic, p, &low, &high, &err) != RV_OK) {
            status = cli_fail_error(CLI_FAILED, c->command, err);
            break;
        }
        rv_strbuf_appendf(&out, "  partition %" PRId32 ": low %" PRId64 ", high %" PRId64 "\n", p,
                          low, high);
    }
    rv_strbuf_appendf(&out, "config:\n");
    for (size_t i = 0; i < rv_conf_property_count(); i++) {
        const rv_conf_property_t *p = rv_conf_property(i);
        if (strcmp(p->scope, "topic") != 0) {
            continue;
        }
        int set = tconf && rv_conf_is_set(tconf, p->name);
        const char *v = tconf ? rv_conf_get(tconf, p->name) : p->default_value;
        rv_strbuf_appendf(&out, "  %s=", p->name);
        if (set &&
            (p->type == RV_CONF_INT || p->type == RV_CONF_BYTES || p->type == RV_CONF_DURATION)) {
            /* As a plain number (1h reads back as 3600000), the way defaults are shown. */
            rv_strbuf_appendf(&out, "%" PRId64, rv_conf_get_int(tconf, p->name));
        } else {
            rv_strbuf_appendf(&out, "%s", v ? v : "");
        }
        rv_strbuf_appendf(&out, "%s\n", set ? "" : " (default)");
    }
    if (status == CLI_OK) {
        fwrite(out.data, 1, out.len, stdout);
    }
    rv_strbuf_free(&out);
    rv_conf_destroy(tconf);
    rv_broker_close(b);
    return status;
}

static int topics_delete(cli_client_t *c, int argc, char **argv) {
    const char *topic = NULL;
    int r = simple_args(c, argc, argv, 1, &topic, "Deletes a topic and all its data.");
    if (r) {
        return r < 0 ? CLI_OK : r;
    }
    rv_broker_t *b = cli_client_open(c);
    if (!b) {
        return CLI_FAILED;
    }
    rv_error_t *err = NULL;
    int status = CLI_OK;
    if (rv_broker_delete_topic(b, topic, &err) != RV_OK) {
        status = cli_fail_error(CLI_FAILED, c->command, err);
    } else {
        printf("deleted topic '%s'\n", topic);
    }
    rv_broker_close(b);
    return status;
}

int cmd_topics(int argc, char **argv) {
    static const struct {
        const char *name;
        const char *command;
        int (*run)(cli_client_t *c, int argc, char **argv);
    } subs[] = {
        {"create", "topics create", topics_create},
        {"list", "topics list", topics_list},
        {"describe", "topics describe", topics_describe},
        {"delete", "topics delete", topics_delete},
    };
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (cli_is_help(argv[1])) {
        usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(argv[1], subs[i].name) == 0) {
            cli_client_t c;
            if (cli_client_init(&c, subs[i].command)) {
                return CLI_FAILED;
            }
            int status = subs[i].run(&c, argc - 1, argv + 1);
            cli_client_free(&c);
            return status;
        }
    }
    usage(stderr);
    return cli_fail(CLI_USAGE, "topics", "unknown subcommand '%s'", argv[1]);
}
