/* SPDX-License-Identifier: CC0-1.0 */
/*
 * appinst-section: Richter's AppInst with a real shared data section, made right.
 *
 * In "Windows via C/C++" AppInst declares
 *
 *     #pragma data_seg("Shared")
 *     volatile LONG g_lApplicationInstances = 0;
 *     #pragma data_seg()
 *     #pragma comment(linker, "/Section:Shared,RWS")
 *
 * increments the LONG at start-up and decrements it at exit. One copy of the variable is
 * mapped into every instance. A copy killed from Task Manager never decrements, so the
 * count is wrong until the last instance ends.
 *
 * Here the variable is declared with HC_SHARED_SECTION() and hc_section_attach() maps
 * the region's data over it: every copy of this program sees one `shared`, which holds
 * the instance count and who started last, as Richter's sample does. What makes it
 * right after crashes: each copy also holds a seat, so hc_count() is exact even when
 * copies are killed with SIGKILL. We store that exact count instead of incrementing, so a
 * counter left too high by a killed copy is repaired by the next update; and when a copy
 * died in the middle of an update (hc_section_lock() returns HC_OWNER_DIED), the next
 * one says so and recomputes.
 *
 *   cc appinst-section.c -o appinst-section $(pkg-config --cflags --libs headcount)
 *   ./appinst-section [NAME]        (start several; kill some; stop them with Ctrl-C)
 *
 * Only plain data may live in the section: no pointers (each process maps it at its own
 * address), no descriptors. The string is a fixed array for that reason.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <headcount.h>

#define RECHECK_MS 100

struct appinst {
        long instances;                  /* g_lApplicationInstances */
        char last_started_by[64];        /* a fixed array, not a pointer */
};

/* The initial values are those of the first copy to attach. The value is shared.value. */
static HC_SHARED_SECTION(struct appinst, shared) = {
        .value = { .instances = 0, .last_started_by = "nobody yet" },
};

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
        stop = 1;
}

enum when { STARTING, RUNNING, LEAVING };

/*
 * Under the section's lock: sets the shared count to the exact count, and records us as
 * the last to start (STARTING) or gives our seat back (LEAVING: inside the lock, so that
 * the count we store is never one that a copy still holding a seat could contradict).
 * A shared count higher than the exact one can then only be left by a copy that was
 * killed, which we say. Returns the count, and copies the last starter to LAST.
 */
static long update(const char *name, enum when when, hc_slot **slot, char *last, size_t size) {
        long n;
        int r;

        r = hc_section_lock(&shared, -1);
        if (r < 0) {
                fprintf(stderr, "%s: cannot lock: %s\n", name, strerror(-r));
                return r;
        }
        if (r == HC_OWNER_DIED)
                printf("pid %d: a copy died while it updated the shared data; recounting\n",
                       (int) getpid());
        n = hc_count(name, NULL);
        if (n >= 0) {
                if (when == LEAVING) {
                        n--;
                        *slot = hc_leave(*slot);
                } else if (shared.value.instances > n && r != HC_OWNER_DIED)
                        printf("pid %d: the shared count said %ld: a copy was killed\n",
                               (int) getpid(), shared.value.instances);
                shared.value.instances = n;
        }
        if (when == STARTING)
                snprintf(shared.value.last_started_by, sizeof shared.value.last_started_by,
                         "pid %d", (int) getpid());
        snprintf(last, size, "%s", shared.value.last_started_by);
        (void) hc_section_unlock(&shared);
        return n;
}

int main(int argc, char *argv[]) {
        const char *name = argc > 1 ? argv[1] : "appinst-section-example";
        char last[sizeof shared.value.last_started_by], shown_last[sizeof last] = "";
        hc_slot *slot = NULL;
        long shown = -1;
        int r;

        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);

        /* First the section (this creates the region with a data area that fits it), then
         * the seat that makes the count exact. */
        r = hc_section_attach(name, NULL, &shared, sizeof shared);
        if (r < 0) {
                fprintf(stderr, "%s: cannot attach the shared section: %s\n", name, strerror(-r));
                return 1;
        }
        r = hc_join(name, HC_OPTIONS(.max = HC_CAPACITY_MAX), &slot);
        if (r < 0) {
                fprintf(stderr, "%s: cannot join: %s\n", name, strerror(-r));
                return 1;
        }

        for (enum when when = STARTING; !stop; when = RUNNING) {
                long n = update(name, when, &slot, last, sizeof last);

                if (n < 0)
                        break;
                if (n != shown || strcmp(last, shown_last) != 0) {
                        printf("pid %d: %ld instance%s running, last started by %s\n",
                               (int) getpid(), n, n == 1 ? "" : "s", last);
                        fflush(stdout);
                        shown = n;
                        snprintf(shown_last, sizeof shown_last, "%s", last);
                }
                /* Returns at once when a copy ends (SIGKILL included); else after
                 * RECHECK_MS, to notice new copies. */
                r = hc_wait(name, NULL, (unsigned) shown, RECHECK_MS);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        fprintf(stderr, "%s: cannot wait: %s\n", name, strerror(-r));
                        break;
                }
        }

        /* Leaving: the shared count goes down with our seat, as Richter's decrement. */
        (void) update(name, LEAVING, &slot, last, sizeof last);
        slot = hc_leave(slot);            /* in case the update failed */
        (void) hc_section_detach(&shared);
        return 0;
}
