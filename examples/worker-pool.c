/* SPDX-License-Identifier: CC0-1.0 */
/*
 * worker-pool: at most SEATS workers work at once; the others wait for a free seat, but
 * not longer than TIMEOUT milliseconds.
 *
 * Here the workers are forked children of one program, but they could as well be
 * independent processes started by cron or by a build system: the seats are held by
 * the kernel, not by a parent, and a worker that crashes frees its seat at once.
 *
 *   ./worker-pool [WORKERS [SEATS [TIMEOUT_MS]]]      (default 8 2 10000)
 *
 * Each worker prints the seat it got and how many seats were busy; the program prints
 * how many workers did their work and how many gave up, and exits 0 when all worked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <headcount.h>

static const char *name = "worker-pool-example";

/* One worker: returns 0 when it did its work, 75 when no seat came in time. */
static int worker(unsigned id, unsigned seats, int timeout_ms) {
        hc_slot *slot = NULL;
        int busy, r;

        r = hc_join(name, HC_OPTIONS(.max = seats, .timeout_ms = timeout_ms), &slot);
        if (r == -ETIMEDOUT || r == -EBUSY) {
                printf("worker %u: no seat within %d ms\n", id, timeout_ms);
                return 75;
        }
        if (r < 0) {
                fprintf(stderr, "worker %u: cannot join: %s\n", id, strerror(-r));
                return 1;
        }

        busy = hc_count(name, NULL);
        printf("worker %u: seat %u, %d of %u seats busy\n", id, hc_slot_index(slot), busy, seats);
        fflush(stdout);

        nanosleep(&(struct timespec) { .tv_nsec = 20 * 1000 * 1000 }, NULL);   /* the work */

        slot = hc_leave(slot);
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned workers = argc > 1 ? (unsigned) atoi(argv[1]) : 8;
        unsigned seats = argc > 2 ? (unsigned) atoi(argv[2]) : 2;
        int timeout_ms = argc > 3 ? atoi(argv[3]) : 10000;
        unsigned done = 0, gave_up = 0, failed = 0;

        if (workers < 1 || seats < 1 || timeout_ms < -1) {
                fprintf(stderr, "usage: %s [WORKERS [SEATS [TIMEOUT_MS]]]\n", argv[0]);
                return 64;
        }

        for (unsigned i = 0; i < workers; i++) {
                pid_t pid = fork();

                if (pid < 0) {
                        perror("fork");
                        return 1;
                }
                if (pid == 0)
                        exit(worker(i, seats, timeout_ms));     /* exit() flushes stdout */
        }

        for (unsigned i = 0; i < workers; i++) {
                int status;

                if (wait(&status) < 0)
                        break;
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                        done++;
                else if (WIFEXITED(status) && WEXITSTATUS(status) == 75)
                        gave_up++;
                else
                        failed++;
        }

        printf("%u workers: %u worked, %u gave up, %u failed\n", workers, done, gave_up, failed);
        return done == workers ? 0 : 1;
}
