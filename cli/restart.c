/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * 'headcount run --restart=always|on-failure|on-success NAME -- CMD': keep CMD running
 * on one seat (systemd's Restart= words; run-one-constantly, run-one-until-success,
 * run-one-until-failure).
 *
 * The seat is joined once and held by the wrapper across restarts, so no other launch
 * can slip in between two runs of CMD. Each run of CMD inherits the seat and the record
 * names it, as for a plain run, and is a run of its own in the region's history: it ends
 * with CMD's status (hc_slot_end_run()), and the next begins when the next CMD is named.
 * Between runs the record names the wrapper, so that it always names a live process that
 * holds the seat, and is no run. A new CMD is held back until its pid
 * is in the record (run_spawn() with a gate): no CMD ever holds the seat while the
 * record names somebody else, whenever the wrapper is killed.
 *
 * SIGKILL of the wrapper: while CMD runs, CMD keeps the seat with its own pid in the
 * record, as after a plain run's wrapper is killed; it just is not restarted any more.
 * Between runs (the back-off) nothing else holds the seat, so the kernel frees it.
 *
 * Back-off: the first restart comes --restart-sec after CMD ended (default 0.1 s). When
 * CMD lived less than RESTART_RAPID_MS, the next delay doubles (from at least 0.1 s), up
 * to RESTART_DELAY_MAX_MS or --restart-sec if that is larger; a run that lived longer
 * resets it. SIGTERM or SIGINT to the wrapper is passed on to CMD and ends the loop; the
 * exit status is then CMD's last. A CMD that cannot be executed (126, 127) is not
 * restarted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run.h"

#define RESTART_RAPID_MS 1000
#define RESTART_DELAY_MIN_MS 100
#define RESTART_DELAY_MAX_MS 30000

/* Whether STATUS asks for another run under --restart=WHEN. */
static bool wants_restart(int when, int status) {
        bool success = WIFEXITED(status) && WEXITSTATUS(status) == 0;

        switch (when) {
        case RESTART_ALWAYS:
                return true;
        case RESTART_ON_FAILURE:
                return !success;
        case RESTART_ON_SUCCESS:
                return success;
        default:
                return false;
        }
}

int run_restart(struct run *r) {
        const struct cli *c = r->c;
        int64_t cap = c->restart_sec_ms > RESTART_DELAY_MAX_MS ?
                c->restart_sec_ms : RESTART_DELAY_MAX_MS;
        int64_t delay = c->restart_sec_ms;
        int status = 0, w = 0, ret;
        bool ran = false;

        for (;;) {
                int64_t started = run_now_ms(), lived;
                pid_t pid;

                ret = run_spawn(r, true);
                if (ret != 0)
                        break;
                ran = true;
                pid = r->pid;
                w = run_wait(r, -1, &status);
                if (w < 0)
                        break;
                run_lost_cleanup(r, pid);
                if (r->lost || r->stopping || !wants_restart(c->restart, status))
                        break;

                lived = run_now_ms() - started;
                /* CMD's run ends with its status, as a leave's would; the seat is ours
                 * until the next CMD, whose run begins when the gate names it */
                if (hc_slot_end_run(r->slot, status) < 0)
                        (void) hc_slot_set_pid(r->slot, getpid());
                w = run_wait(r, (int) delay, NULL);
                if (w != RUN_TIMEOUT)
                        break;
                if (lived < RESTART_RAPID_MS) {
                        delay = delay * 2 < RESTART_DELAY_MIN_MS ? RESTART_DELAY_MIN_MS : delay * 2;
                        if (delay > cap)
                                delay = cap;
                } else
                        delay = c->restart_sec_ms;
        }

        /* a leave that says how the last CMD ended (run.c) */
        r->slot = ran && w == RUN_EXITED ? hc_leave_status(r->slot, status) : hc_leave(r->slot);
        if (w < 0) {
                message_error("cannot wait for '%s': %s", c->cmd[0], strerror(-w));
                return EXIT_FAILURE;
        }
        if (r->lost)
                return EXIT_SEAT_LOST;
        if (ret != 0)
                return ret;
        return run_exit_status(status);
}
