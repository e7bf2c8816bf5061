/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * 'path', 'join --fd' and 'leave --fd': a seat held by a shell script's own descriptor,
 * for the rest of the script, as "exec 9>F; flock -n 9" holds a lock:
 *
 *     exec 9<>"$(headcount path NAME)" || exit 1
 *     headcount join --fd 9 NAME || exit
 *
 * We take the seat on fd 9, which we inherited: its open file description is the
 * shell's, and the seat (an OFD lock) belongs to that description, so it stays when we
 * exit and goes when the script and its children have closed fd 9. See hc_join_fd(3).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "cli.h"
#include "run.h"

int command_path(const struct cli *c) {
        char path[PATH_MAX + 64];
        int r;

        r = hc_seat_path(c->name, CLI_OPTIONS(c), path, sizeof path);
        if (r < 0) {
                region_error(c, "open", r);
                return EXIT_FAILURE;
        }
        if (!c->fleet && cli_error_text[0])
                message_error("%s", cli_error_text);   /* "replaced a damaged region ..." */
        printf("%s\n", path);
        return EXIT_SUCCESS;
}

/* One line for what is wrong with the descriptor; false when the error is not about it. */
static bool fd_error(const struct cli *c, int r) {
        if (r == -EBADF && fcntl(c->fd, F_GETFD) < 0)
                message_error("descriptor %d is not open: open it first, with "
                              "exec %d<>\"$(headcount path %s)\"", c->fd, c->fd, c->name);
        else if (r == -EBADF)
                message_error("descriptor %d is not open for writing: open it with "
                              "exec %d<>\"$(headcount path %s)\"", c->fd, c->fd, c->name);
        else if (r == -EXDEV)
                message_error("descriptor %d is not open on the seat file of region '%s': "
                              "open it with exec %d<>\"$(headcount path %s)\"", c->fd, c->name,
                              c->fd, c->name);
        else if (r == -ESTALE)
                message_error("descriptor %d is open on a seat file of region '%s' that was "
                              "removed since: open it again, with exec %d<>\"$(headcount path "
                              "%s)\"", c->fd, c->name, c->fd, c->name);
        else
                return false;
        return true;
}

int command_join(const struct cli *c) {
        pid_t pid = c->pid > 0 ? c->pid : getppid();
        int r;

        r = hc_join_fd(c->name, CLI_OPTIONS(c, .max = c->max, .tag = c->tag,
                                            .timeout_ms = c->timeout_ms), c->fd, pid);
        if (r == -EBUSY || r == -ETIMEDOUT) {
                if (!c->quiet)
                        report_no_seat(c, r);
                return c->conflict_exit_code;
        }
        if (r == -ESRCH) {
                message_error("cannot join region '%s': pid %d does not hold descriptor %d's "
                              "seat (it has no copy of the descriptor, or its descriptors may "
                              "not be read), so it is not recorded as the holder", c->name,
                              (int) pid, c->fd);
                return EXIT_FAILURE;
        }
        if (r < 0) {
                if (!fd_error(c, r))
                        region_error(c, "join", r);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

int command_leave(const struct cli *c) {
        int r;

        r = hc_leave_fd(c->name, CLI_OPTIONS(c), c->fd);
        if (r == -ENOENT) {
                message_error("descriptor %d holds no seat of region '%s'", c->fd, c->name);
                return EXIT_FAILURE;
        }
        if (r < 0) {
                if (!fd_error(c, r))
                        region_error(c, "leave", r);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
