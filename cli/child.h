/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CMD's life under 'headcount run' (child.c): start it, wait for it, forward signals. */
#ifndef HC_CLI_CHILD_H
#define HC_CLI_CHILD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli.h"

/* One 'headcount run': the seat, CMD and what the wait loop watches. */
struct run {
        const struct cli *c;
        hc_slot *slot;
        sigset_t mask;          /* the forwarded signals and SIGCHLD, blocked throughout */
        sigset_t saved;         /* the mask we started with, which CMD gets back */
        int sigfd;              /* a signalfd over mask */
        int lostfd;             /* hc_slot_lost_fd() while we watch it, else -1 */
        bool own_group;         /* CMD leads a process group of its own */
        pid_t pid;              /* CMD while it runs, else 0 */
        bool stopping;          /* --restart: SIGTERM or SIGINT came, restart no more */
        bool lost;              /* the fleet seat was lost: CMD is being stopped */
        int64_t kill_at_ms;     /* when to SIGKILL CMD after a lost seat; -1: never */
};

/* What run_wait() saw. */
enum {
        RUN_EXITED,             /* CMD ended: *ret_status says how */
        RUN_TIMEOUT,            /* no CMD, and the time passed */
        RUN_INTERRUPTED,        /* no CMD, and a stop or a lost seat came first */
};

/* Starts CMD. With GATED, CMD is held back (fork() instead of vfork()) until its pid is
 * in the seat's record, so that no CMD ever holds the seat while the record names another
 * process. Returns 0, or the exit status (126, 127, 1) after saying why. */
int run_spawn(struct run *r, bool gated);

/* Waits for CMD to end (r->pid > 0), or for TIMEOUT_MS (-1: forever) while no CMD runs,
 * forwarding signals and acting on a lost seat meanwhile. Returns RUN_*, or -errno. */
int run_wait(struct run *r, int timeout_ms, int *ret_status);

/* CMD's status as an exit status: its code, or 128 + the signal that killed it. */
int run_exit_status(int status);

/* What --on-lost asks for once CMD is gone: SIGKILL what is left of its process group. */
void run_lost_cleanup(struct run *r, pid_t pid);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t run_now_ms(void);

/* Whether our process group is the foreground group of our controlling terminal. */
bool run_in_foreground(void);

/* Blocks the signals we forward and SIGCHLD, and opens R's signalfd that reads them. */
int run_signals_setup(struct run *r);

#endif
