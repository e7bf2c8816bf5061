/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * 'headcount run NAME -- CMD': take a seat, run CMD while holding it, give it back.
 * --restart lives in restart.c, --replace in replace.c, CMD's start and wait in child.c.
 *
 * The seat is joined with HC_INHERIT, so CMD inherits the descriptor that holds it: the
 * kernel keeps the seat for as long as CMD (or the wrapper) has it open, and a SIGKILLed
 * wrapper cannot free a seat that CMD still uses. The slot's record names CMD's pid, so
 * 'list' shows the process that does the work; it is written only once that pid is known
 * (HC_RECORD_LATER), so that headcountd names CMD in every event of the holding.
 *
 * Process groups: by default CMD stays in our process group, as any child does. With
 * --replace, --restart or in the fleet scope, CMD leads a process group of its own, so
 * that it can be stopped with everything it started (by a later --replace, or when the
 * fleet seat is lost), unless we are in the foreground of our controlling terminal:
 * there CMD must stay in the terminal's foreground group for ^C, ^Z and terminal input
 * to reach it, and only CMD itself is signalled. A signal that the kernel sent to our
 * group is passed on to CMD's group when CMD has one of its own.
 *
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "child.h"
#include "run.h"

/* The fleet scope: the fence for CMD, and the descriptor that says the seat is lost. */
static void fleet_setup(struct run *r) {
        uint64_t fence;
        int fd;

        if (hc_slot_fence(r->slot, &fence) == 0) {
                char buf[24];

                (void) snprintf(buf, sizeof buf, "%" PRIu64, fence);
                (void) setenv("HEADCOUNT_FENCE", buf, 1);
        }
        fd = hc_slot_lost_fd(r->slot);          /* -EOPNOTSUPP for a local seat */
        r->lostfd = fd >= 0 ? fd : -1;
}

int command_run(const struct cli *c) {
        struct run r = { .c = c, .sigfd = -1, .lostfd = -1, .kill_at_ms = -1 };
        bool modes = c->replace || c->restart != RESTART_NO || c->fleet;
        int status = 0, ret, w;

        if (c->replace) {
                ret = run_replace(c, &r.slot);
                if (ret != 0)
                        return ret;
        } else {
                w = hc_join(c->name, RUN_OPTIONS(c, c->timeout_ms), &r.slot);
                if (w == -EBUSY || w == -ETIMEDOUT) {
                        if (!c->quiet)
                                report_no_seat(c, w);
                        return c->conflict_exit_code;
                }
                if (w < 0)
                        return region_failure(c, "join", w);
        }
        if (!c->fleet && cli_error_text[0])
                message_error("%s", cli_error_text);   /* "replaced a damaged region ..." */

        w = run_signals_setup(&r);
        if (w < 0) {
                message_error("cannot run '%s': %s", c->cmd[0], strerror(-w));
                r.slot = hc_leave(r.slot);
                return EXIT_FAILURE;
        }
        r.own_group = modes && !run_in_foreground();
        fleet_setup(&r);

        if (c->restart != RESTART_NO)
                return run_restart(&r);

        ret = run_spawn(&r, false);
        if (ret != 0) {
                r.slot = hc_leave(r.slot);
                return ret;
        }
        pid_t pid = r.pid;
        w = run_wait(&r, -1, &status);
        run_lost_cleanup(&r, pid);
        /* CMD killed by a signal died holding the seat: monitors are told so */
        r.slot = w == RUN_EXITED && WIFSIGNALED(status) && !r.lost ?
                hc_abandon(r.slot) : hc_leave(r.slot);
        if (w < 0) {
                message_error("cannot wait for '%s': %s", c->cmd[0], strerror(-w));
                return EXIT_FAILURE;
        }
        if (r.lost)
                return EXIT_SEAT_LOST;
        return run_exit_status(status);
}
