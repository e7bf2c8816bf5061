/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer harness: headcount(1)'s command line. The input is split at NUL bytes into
 * argv[1..]; cli/headcount.c is compiled into this file with its main() renamed, and
 * parse_argv() runs on it as it would in the program. Its exits (usage errors, --help,
 * --version) come back here through longjmp, so that one process can parse many command
 * lines; no command is run.
 */
#include <getopt.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static jmp_buf fuzz_exit_jmp;

static _Noreturn void fuzz_exit(int status) {
        longjmp(fuzz_exit_jmp, status + 1);
}

#define exit(status) fuzz_exit(status)
#define main headcount_main
#include "../../cli/headcount.c"
#undef main
#undef exit

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ARGS_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *argv[ARGS_MAX + 2], *copy;
        volatile int argc = 1;
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
        (void) getopt_long(1, argv, "", longopts, NULL);

        if (setjmp(fuzz_exit_jmp) == 0) {
                parse_argv(argc, argv, &c);
                /* What the commands rely on after a successful parse. */
                if (!command || !c.command)
                        abort();
                if (command->takes_name && (!c.name || hc_name_valid(c.name) < 0))
                        abort();
                if (strcmp(c.command, "run") == 0 && (!c.cmd || !c.cmd[0] || c.max < 1))
                        abort();
                if (strcmp(c.command, "wait") == 0 && c.below == 0)
                        abort();
        }
        free(copy);
        return 0;
}
