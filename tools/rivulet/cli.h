/*
 * cli.h: what the `rivulet` command's subcommands share.
 *
 * The CLI is written on the public API only (<rivulet/rivulet.h>); it is the one place in
 * the project that prints. Each subcommand is a function taking its own argc/argv (argv[0] is
 * the subcommand's name) and returning the process exit status: 0 success, 1 failure of the
 * work, 2 a usage error.
 */
#ifndef RV_CLI_H
#define RV_CLI_H

#include <rivulet/rivulet.h>

#define CLI_OK 0
#define CLI_FAILED 1
#define CLI_USAGE 2

typedef struct cli_command_s {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command_t;

int cmd_config(int argc, char **argv);
int cmd_json(int argc, char **argv);
int cmd_demo(int argc, char **argv);

/* Prints "rivulet NAME: message" to stderr and returns `status`. */
int cli_fail(int status, const char *command, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True when `arg` is -h or --help. */
int cli_is_help(const char *arg);

/* Applies a -X name=value argument to `conf`; prints the error and returns non-zero on failure. */
int cli_set_conf(rv_conf_t *conf, const char *command, const char *pair);

#endif
