/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcount(1): main(), and the commands small enough to need no file of their own
 * (count, wait, create, remove, status). The command line is options.c's, 'run' lives in
 * run.c, the listings in list.c. Everything goes through the public API in headcount.h.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>                   /* isfinite(), a macro: no libm */
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "errors.h"
#include "options.h"
#include "escape.h"
#include "stdio-fds.h"

/* ---- The small commands ---- */

static int command_count(const struct cli *c) {
        unsigned read_locked = 0;
        int n;

        if (c->fleet)
                n = hc_count(c->name, CLI_OPTIONS(c));
        else
                n = hc_count_read_locked(c->name, CLI_OPTIONS(c), &read_locked);
        if (n == -ENOENT)
                n = 0;                  /* a region nobody created yet has nobody in it */
        if (n < 0)
                return region_failure(c, "count", n);
        printf("%d\n", n);
        note_read_locked(c, read_locked);
        return EXIT_SUCCESS;
}

static int command_wait(const struct cli *c) {
        int r;

        r = hc_wait(c->name, CLI_OPTIONS(c), c->below, c->timeout_ms);
        if (r == -ETIMEDOUT)
                return EXIT_TIMEDOUT;
        if (r < 0)
                return region_failure(c, "wait for", r);
        return EXIT_SUCCESS;
}

/* The fleet agent's health: its line, and 0 while it holds its lease (renewed on time or
 * late), 69 when it holds none or no agent serves the scope. */
static int command_status(const struct cli *c) {
        char text[512], safe[ESCAPE_TEXT_SIZE(511)];
        int r;

        r = hc_fleet_status(CLI_OPTIONS(c), text, sizeof text);
        if (r < 0) {
                r = region_failure(c, "ask the agent for its status", r);
                return r == EXIT_FAILURE ? EXIT_NO_FLEET : r;
        }
        printf("%s\n", escape_text(text, safe, sizeof safe));
        return r == HC_FLEET_HELD || r == HC_FLEET_LATE ? EXIT_SUCCESS : EXIT_NO_FLEET;
}

/* Whether regions of C's scope may be writable by others: only in the system scope, where
 * the directory is root's and sticky (the library decides the same way). */
static bool system_scope(const struct cli *c) {
        if (c->dir)
                return false;
        if (strncmp(c->name, "Global\\", 7) == 0)
                return true;
        return c->scope == HC_SCOPE_SYSTEM && strncmp(c->name, "Local\\", 6) != 0;
}

static int command_create(const struct cli *c) {
        int r;

        if (c->fleet) {
                r = hc_fleet_create(c->name, CLI_OPTIONS(c, .max = c->max, .mode = c->mode),
                                    c->owner);
                return r < 0 ? region_failure(c, "define", r) : EXIT_SUCCESS;
        }

        /* Outside the system scope nobody would trust a region that others may write, so
         * creating one is an error, which the library reports as -EINVAL: say why in
         * words. Root's regions are trusted whatever their mode. */
        if ((c->mode & 0022) && geteuid() != 0 && !system_scope(c)) {
                message_error("cannot create region '%s': mode %04o (writable by group or "
                              "others) is only allowed in the system scope", c->name, c->mode);
                return EXIT_FAILURE;
        }
        r = hc_create(c->name, CLI_OPTIONS(c, .mode = c->mode, .capacity = c->capacity,
                                           .data_size = c->data_size));
        if (r < 0) {
                region_error(c, "create", r);
                return EXIT_FAILURE;
        }
        if (r == 2)                       /* the library says which, and where */
                message_error("%s", cli_error_text);
        return EXIT_SUCCESS;
}

static int command_remove(const struct cli *c) {
        int r;

        r = hc_remove(c->name, CLI_OPTIONS(c));
        if (r < 0)
                return region_failure(c, "remove", r);
        return EXIT_SUCCESS;
}

/* A directory the user named (--dir, $HEADCOUNT_DIR) must exist, for every command: a
 * mistyped one is an error, not a scope with nobody in it. Only the default directories
 * are made when needed (the user scope's by 'run', 'join', 'create' and 'path'; the system
 * scope's by root). */
static int check_named_dir(const struct cli *c) {
        const char *env = getenv("HEADCOUNT_DIR");
        int scope = c->scope;
        char dir[4096];
        struct stat st;

        if (c->name && strncmp(c->name, "Global\\", 7) == 0)
                scope = HC_SCOPE_SYSTEM;        /* a prefix chooses the scope, as in the library */
        else if (c->name && strncmp(c->name, "Local\\", 6) == 0)
                scope = HC_SCOPE_USER;
        if (!c->dir && !(scope == HC_SCOPE_USER && env && env[0]))
                return 0;
        if (hc_scope_dir(HC_OPTIONS(.scope = scope, .dir = c->dir), dir, sizeof dir) < 0 ||
            stat(dir, &st) == 0 || errno != ENOENT)
                return 0;               /* anything else: the library's checks say it */
        message_error("directory '%s' (from %s) does not exist: create it, or name another",
                      dir, c->dir ? "--dir" : "$HEADCOUNT_DIR");
        return -ENOENT;
}

/* Each command's function, by CMD_*. */
static int (*const commands[N_COMMANDS])(const struct cli *c) = {
        [CMD_RUN]    = command_run,
        [CMD_COUNT]  = command_count,
        [CMD_LIST]   = command_list,
        [CMD_NAMES]  = command_names,
        [CMD_WAIT]   = command_wait,
        [CMD_CREATE] = command_create,
        [CMD_REMOVE] = command_remove,
        [CMD_SEND]   = command_send,
        [CMD_PATH]   = command_path,
        [CMD_JOIN]   = command_join,
        [CMD_LEAVE]  = command_leave,
        [CMD_STATUS] = command_status,
        [CMD_HISTORY] = command_history,
};

/* ---- Output errors (util-linux close_stdout) ---- */

static int close_stream(FILE *stream) {
        bool pending = __fpending(stream) != 0, failed = ferror(stream) != 0;
        bool close_failed = fclose(stream) != 0;

        if (failed || (close_failed && (pending || errno != EBADF))) {
                if (!close_failed)
                        errno = 0;
                return EOF;
        }
        return 0;
}

static void close_stdout(void) {
        if (close_stream(stdout) != 0 && errno != EPIPE) {
                if (errno)
                        message_error("write error: %s", strerror(errno));
                else
                        message_error("write error");
                _exit(EXIT_FAILURE);
        }
        if (close_stream(stderr) != 0)
                _exit(EXIT_FAILURE);
}

int main(int argc, char *argv[]) {
        struct cli c;
        int r;

        /* Before anything is opened: no region or lock file may land on 0, 1 or 2. */
        message_program = "headcount";
        r = stdio_fds_ensure();
        if (r < 0) {
                message_error("cannot open /dev/null: %s", strerror(-r));
                return EXIT_FAILURE;
        }
        atexit(close_stdout);
        if (!parse_argv(argc, argv, &c, &r))
                return r;
        if (check_named_dir(&c) < 0)
                return EXIT_FAILURE;
        return commands[c.command_id](&c);
}
