/*
 * main.c: the `rivulet` command: dispatches to subcommands and prints the overall help.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_command_t commands[] = {
    {"demo", cmd_demo, "run the main job on the embedded log"},
    {"topics", cmd_topics, "create, list, describe and delete topics"},
    {"produce", cmd_produce, "write records to a topic from lines or files"},
    {"consume", cmd_consume, "read records from topics (or as a consumer group)"},
    {"sessions", cmd_sessions, "list the telemetry streams and sessions of a topic"},
    {"replay", cmd_replay, "replay a recorded telemetry stream at its pace"},
    {"record", cmd_record, "record a telemetry session from a CSV file"},
    {"config", cmd_config, "list configuration properties and their defaults"},
    {"json", cmd_json, "validate and reformat JSON documents"},
};

int cli_fail(int status, const char *command, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "rivulet %s: ", command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return status;
}

int cli_is_help(const char *arg) {
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int cli_set_conf(rv_conf_t *conf, const char *command, const char *pair) {
    rv_error_t *err = NULL;
    if (rv_conf_set_pair(conf, pair, &err) != RV_OK) {
        cli_fail(CLI_USAGE, command, "%s", rv_error_message(err));
        rv_error_destroy(err);
        return 1;
    }
    return 0;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: rivulet COMMAND [OPTIONS]\n\n"
            "rivulet %s: stream processing in C on an embedded durable log or Kafka.\n\n"
            "commands:\n",
            rv_version());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out, "\n`rivulet COMMAND --help` describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (cli_is_help(argv[1])) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("rivulet %s\n", rv_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "rivulet: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
