/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the parts of headcount(1) share: the parsed command line, exit codes, messages. */
#ifndef HC_CLI_H
#define HC_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "headcount.h"
#include "message.h"

/* Exit codes (sysexits and timeout(1), as DESIGN.md fixes them). */
#define EXIT_USAGE 64           /* EX_USAGE */
#define EXIT_NO_PRIMARY 69      /* EX_UNAVAILABLE: 'send' found no primary listening */
#define EXIT_FULL 75            /* EX_TEMPFAIL: no free seat, the default --conflict-exit-code */
#define EXIT_TIMEDOUT 124       /* 'wait' ran out of time, as timeout(1) */
#define EXIT_CANNOT_EXEC 126    /* as a shell: found but not executable */
#define EXIT_NOT_FOUND 127      /* as a shell: command not found */

/* Everything the command line said, checked. */
struct cli {
        const char *command;    /* "run", "count", ... */
        const char *name;       /* the region; NULL for 'names' */
        char **cmd;             /* run: the command and its arguments; send: the words */

        int scope;              /* HC_SCOPE_USER or HC_SCOPE_SYSTEM */
        const char *dir;        /* --dir, or NULL */

        unsigned max;           /* run --max */
        int timeout_ms;         /* run --wait, wait and send --timeout: -1 forever, 0 at once */
        const char *tag;        /* run --tag */
        int conflict_exit_code; /* run --conflict-exit-code */
        bool quiet;             /* run --quiet */
        bool json;              /* list, names --json */
        unsigned below;         /* wait --below, --zero */
        unsigned mode;          /* create --mode */
        unsigned capacity;      /* create --capacity */
        size_t data_size;       /* create --data-size */
        int fd;                 /* join, leave --fd: the shell's descriptor; -1 when not given */
        pid_t pid;              /* join --pid: the holder to record; 0: our parent */
};

/* Prints a usage error as message_error() does, then the --help hint, and exits 64. */
_Noreturn void usage_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* The commands; each returns the process's exit status. */
int command_run(const struct cli *c);
int command_list(const struct cli *c);
int command_names(const struct cli *c);
int command_send(const struct cli *c);
int command_path(const struct cli *c);          /* seatfd.c: a seat held by a shell's fd */
int command_join(const struct cli *c);
int command_leave(const struct cli *c);

/* Prints the usage of command NAME (help.c); false when there is no such command. */
bool command_usage(const char *name);

/* Says on stderr that "cannot VERB region 'NAME'" and why, in words that say what to do
 * where strerror() would not (explain.c): a region of another owner, a file that is no
 * region, a directory that does not exist. */
void region_error(const struct cli *c, const char *verb, int r);

/* run.c: says who holds the seats when none is free (-EBUSY) or that none came (-ETIMEDOUT). */
void report_full(const struct cli *c, int r);

/* Options for the library from the scope part of the command line. */
#define CLI_OPTIONS(c, ...) \
        HC_OPTIONS(.scope = (c)->scope, .dir = (c)->dir, __VA_ARGS__)

#endif
