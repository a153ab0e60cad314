/*
 * cmd_demo.c: `rivulet demo`, the main job. Until the engine exists it says so plainly and
 * shows what works today, rather than pretending.
 */
#include <stdio.h>

#include "cli.h"

int cmd_demo(int argc, char **argv) {
    if (argc > 1 && cli_is_help(argv[1])) {
        printf("usage: rivulet demo\n\nRuns the main job: a simulated motorsport session written "
               "to the embedded log and processed by a pipeline.\n");
        return CLI_OK;
    }
    printf("rivulet %s\n\n"
           "The main job (a simulated motorsport session on the embedded log, resampled and\n"
           "aggregated by a pipeline) needs the embedded log and the streaming engine, which are\n"
           "not built yet. What works today:\n\n"
           "  rivulet json --pretty FILE      validate and reformat JSON (exact numbers, UTF-8)\n"
           "  rivulet config list             every configuration property\n"
           "  make bench                      JSON parse/write speed against jansson and json-c\n",
           rv_version());
    return CLI_OK;
}
