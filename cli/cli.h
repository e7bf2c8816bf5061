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
#define EXIT_SEAT_LOST 69       /* EX_UNAVAILABLE: 'run' lost its fleet seat and stopped CMD */
#define EXIT_NO_FLEET 69        /* EX_UNAVAILABLE: --fleet, and no headcountd serves the
                                 * fleet scope, or it cannot reach etcd */
#define EXIT_FULL 75            /* EX_TEMPFAIL: no free seat, the default --conflict-exit-code */
#define EXIT_TIMEDOUT 124       /* 'wait' ran out of time, as timeout(1) */
#define EXIT_CANNOT_EXEC 126    /* as a shell: found but not executable */
#define EXIT_NOT_FOUND 127      /* as a shell: command not found */

/* list --time-format: how JOINED is shown. */
enum {
        TIME_FORMAT_LOCAL,      /* the default: local time (JSON: RFC 3339 in UTC) */
        TIME_FORMAT_ISO,        /* ISO 8601, local time with its offset */
        TIME_FORMAT_RELATIVE,   /* "4m05s ago" */
        TIME_FORMAT_RAW,        /* microseconds since the epoch, as recorded */
};

/* Everything the command line said, checked. */
struct cli {
        int command_id;         /* CMD_* (options.h) */
        const char *command;    /* its name: "run", "count", ... */
        const char *name;       /* the region; NULL for 'names' */
        char **cmd;             /* run: the command and its arguments; send: the words */

        int scope;              /* HC_SCOPE_USER or HC_SCOPE_SYSTEM */
        const char *dir;        /* --dir, or NULL */
        bool fleet;             /* --fleet: the scope is HC_SCOPE_FLEET, and the one above
                                 * says whose headcountd serves it */
        const char *fleet_dir;  /* --fleet: that headcountd's directory; NULL: the library
                                 * finds it ($HEADCOUNT_DIR, user, then system scope) */

        unsigned max;           /* run --max */
        int timeout_ms;         /* run --wait, wait and send --timeout: -1 forever, 0 at once */
        const char *tag;        /* run --tag */
        int conflict_exit_code; /* run --conflict-exit-code */
        bool quiet;             /* run --quiet */
        bool replace;           /* run --replace */
        int kill_after_ms;      /* run --kill-after, or run_check_options()'s default */
        int restart;            /* run --restart: RESTART_* */
        int restart_sec_ms;     /* run --restart-sec */
        int on_lost;            /* run --on-lost: ON_LOST_* */
        bool json;              /* list, names -J, --json */
        const char *output;     /* list, names -o, --output: the columns, or NULL */
        bool output_all;        /* list, names --output-all */
        bool noheadings;        /* list, names -n, --noheadings */
        bool raw;               /* list, names -r, --raw */
        int time_format;        /* list --time-format: TIME_FORMAT_* */
        unsigned below;         /* wait --below, --zero */
        unsigned mode;          /* create --mode */
        const char *owner;      /* create --owner (fleet) */
        unsigned capacity;      /* create --capacity */
        size_t data_size;       /* create --data-size */
        int fd;                 /* join, leave --fd: the shell's descriptor; -1 when not given */
        pid_t pid;              /* join --pid: the holder to record; 0: our parent */
};

/* run --restart */
enum { RESTART_NO, RESTART_ALWAYS, RESTART_ON_FAILURE, RESTART_ON_SUCCESS };

/* run --on-lost */
enum { ON_LOST_TERM, ON_LOST_KILL, ON_LOST_IGNORE };


/* run's defaults (headcount(1)) */
#define RESTART_SEC_DEFAULT_MS 100
#define KILL_AFTER_DEFAULT_MS 5000          /* --replace */
#define KILL_AFTER_LOST_DEFAULT_MS 2000     /* --on-lost=term */

/* The commands; each returns the process's exit status. */
int command_run(const struct cli *c);
int command_list(const struct cli *c);
int command_names(const struct cli *c);
int command_send(const struct cli *c);
int command_path(const struct cli *c);          /* seatfd.c: a seat held by a shell's fd */
int command_join(const struct cli *c);
int command_leave(const struct cli *c);

/* Prints the usage of command NAME (help.c) with the rows of OPTIONS, the long names of
 * the options the parser lets it take, and of SCOPE, the scope options (both
 * NULL-terminated); false when there is no such command. */
bool command_usage(const char *name, const char *const *options, const char *const *scope);

/* Prints the columns of 'list' or 'names' (COMMAND) and their defaults (list.c). */
void list_columns_usage(const char *command);

/* Where the library explains a failure in the fleet scope (hc_options.error_text):
 * errors.c shows it. */
extern char cli_error_text[512];

/* Options for the library from the scope part of the command line. */
#define CLI_OPTIONS(c, ...)                                                             \
        HC_OPTIONS(.scope = (c)->fleet ? HC_SCOPE_FLEET : (c)->scope,                   \
                   .dir = (c)->fleet ? (c)->fleet_dir : (c)->dir,                       \
                   .error_text = cli_error_text, .error_text_size = sizeof cli_error_text, \
                   __VA_ARGS__)

#endif
