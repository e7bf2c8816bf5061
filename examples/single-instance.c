/* SPDX-License-Identifier: CC0-1.0 */
/*
 * single-instance: a program that refuses to start twice, and says who is running.
 *
 * The first copy takes the only seat of the region and keeps it until it exits, however
 * it exits: the kernel gives the seat back even after SIGKILL, so no stale lock file
 * ever blocks the next start. A second copy is told which PID holds the seat and since
 * when, and exits with 75 (EX_TEMPFAIL), as 'headcount run' does.
 *
 *   cc single-instance.c -o single-instance $(pkg-config --cflags --libs headcount)
 *   ./single-instance [NAME]        (stop it with Ctrl-C)
 *
 * The region lives in the user scope, or in $HEADCOUNT_DIR when that is set.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <headcount.h>

int main(int argc, char *argv[]) {
        const char *name = argc > 1 ? argv[1] : "single-instance-example";
        hc_slot *slot = NULL;
        hc_instance holder;
        sigset_t stop;
        int sig, r;

        /* Blocked from the start, so that a stop request is never lost. */
        sigemptyset(&stop);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGTERM);
        sigprocmask(SIG_BLOCK, &stop, NULL);

        r = hc_join(name, HC_OPTIONS(.max = 1), &slot);
        if (r == -EBUSY) {
                /* The primary is the seat holder with the lowest sequence number: with
                 * one seat, the one that holds it. It may have left meanwhile. */
                if (hc_primary(name, NULL, &holder) == 0) {
                        time_t t = (time_t) (holder.joined_usec / 1000000);
                        char when[64];

                        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
                        fprintf(stderr, "%s: already running as pid %d since %s\n", name,
                                (int) holder.pid, when);
                } else
                        fprintf(stderr, "%s: already running\n", name);
                return 75;
        }
        if (r < 0) {
                fprintf(stderr, "%s: cannot join: %s\n", name, strerror(-r));
                return 1;
        }

        printf("%s: running as pid %d\n", name, (int) getpid());
        fflush(stdout);

        /* The work of the program would go here; we wait to be told to stop. */
        sigwait(&stop, &sig);

        slot = hc_leave(slot);
        printf("%s: stopped\n", name);
        return 0;
}
