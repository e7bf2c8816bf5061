/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: headcount(1)'s command line. The input is split at NUL bytes into
 * argv[1..] and parse_argv() (cli/options.c, linked with the rest of the CLI but its
 * main()) parses it as it would in the program. The parser never exits, so one process
 * parses many command lines; no command is run.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ARGS_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *argv[ARGS_MAX + 2], *copy;
        int argc = 1, status;
        struct cli c;
        size_t i = 0;

        copy = malloc(size + 1);
        if (!copy)
                abort();
        memcpy(copy, data, size);
        copy[size] = '\0';
        argv[0] = (char *) "headcount";
        while (i <= size && argc <= ARGS_MAX) {
                argv[argc++] = copy + i;
                i += strlen(copy + i) + 1;
        }
        argv[argc] = NULL;

        /* The real program parses once per process; reset getopt's hidden state (its
         * position inside a cluster such as "-hq") the way glibc documents: optind = 0. */
        optind = 0;
        opterr = 0;
        (void) getopt_long(1, argv, "", (const struct option[]) { {} }, NULL);

        if (parse_argv(argc, argv, &c, &status)) {
                /* What the commands rely on after a successful parse. */
                if (!c.command || c.command_id < 0 || c.command_id >= CMD_HELP)
                        abort();
                if (command_takes_name(c.command_id) && (!c.name || hc_name_valid(c.name) < 0))
                        abort();
                if (c.command_id == CMD_RUN && (!c.cmd || !c.cmd[0] || c.max < 1))
                        abort();
                if (c.command_id == CMD_WAIT && c.below == 0)
                        abort();
        } else if (status != 0 && status != 64)
                abort();                /* --help, --version, or a usage error: nothing else */
        free(copy);
        return 0;
}
