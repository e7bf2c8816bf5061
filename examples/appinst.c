/* SPDX-License-Identifier: CC0-1.0 */
/*
 * appinst: how many copies of me are running? Every copy shows the live count and
 * updates it when another copy starts or ends.
 *
 * This is the AppInst sample from Jeffrey Richter's "Windows via C/C++", done so that it
 * stays right. There, every instance increments a LONG in a shared data section at
 * start-up and decrements it at exit, and broadcasts a window message so the others
 * repaint; a copy killed from Task Manager never decrements, and the count is wrong for
 * good. Here each copy holds a seat whose lock the kernel drops when the process dies,
 * however it dies, so the count is the number of live copies, SIGKILL included.
 *
 * The region is opened once as a handle, as a monitor does. hc_region_wait_change() sleeps
 * until the count differs from what we showed: a copy started, or ended (at once, even
 * for SIGKILL). It wakes every STOP_CHECK_MS only to see whether we were asked to stop.
 *
 *   ./appinst [NAME]        (start several; kill some; stop them with Ctrl-C)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <headcount.h>

#define STOP_CHECK_MS 500

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
        stop = 1;
}

int main(int argc, char *argv[]) {
        const char *name = argc > 1 ? argv[1] : "appinst-example";
        hc_region *rg = NULL;
        hc_slot *slot = NULL;
        int shown = -1, r;

        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);

        r = hc_region_open(name, NULL, &rg);
        if (r < 0) {
                fprintf(stderr, "%s: cannot open: %s\n", name, strerror(-r));
                return 1;
        }
        /* Any number of copies may run: each may take any seat of the region. */
        r = hc_region_join(rg, HC_OPTIONS(.max = hc_region_capacity(rg)), &slot);
        if (r < 0) {
                fprintf(stderr, "%s: cannot join: %s\n", name, strerror(-r));
                hc_region_close(rg);
                return 1;
        }

        while (!stop) {
                int n = hc_region_count(rg);

                if (n < 0) {
                        fprintf(stderr, "%s: cannot count: %s\n", name, strerror(-n));
                        break;
                }
                if (n != shown) {
                        printf("pid %d: %d instance%s running\n", (int) getpid(), n,
                               n == 1 ? "" : "s");
                        fflush(stdout);
                        shown = n;
                }
                /* Returns the new count at once when a copy starts or ends. */
                r = hc_region_wait_change(rg, (unsigned) shown, STOP_CHECK_MS);
                if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
                        fprintf(stderr, "%s: cannot wait: %s\n", name, strerror(-r));
                        break;
                }
        }

        slot = hc_leave(slot);
        rg = hc_region_close(rg);
        return 0;
}
