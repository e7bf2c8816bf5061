/* SPDX-License-Identifier: CC0-1.0 */
/*
 * notify-daemon: a single-instance service for systemd's Type=notify.
 *
 * It takes the only seat of its own region, so a second copy (started by hand beside the
 * unit, or by a second unit) refuses to run and names the holder. Once it holds the seat
 * it tells the service manager READY=1, and keeps a STATUS= line up to date with the
 * number of instances of the region it watches (--watch NAME, for example the workers it
 * serves), so 'systemctl status' shows it. See notify-daemon.service.
 *
 *   ./notify-daemon [--watch NAME]      (stop it with SIGTERM)
 *
 * Without $NOTIFY_SOCKET (not started by systemd) sd_notify() does nothing.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include <headcount.h>

#define SELF "notify-daemon-example"
#define STOP_CHECK_MS 250

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
        stop = 1;
}

int main(int argc, char *argv[]) {
        const char *watch = argc > 2 && strcmp(argv[1], "--watch") == 0 ? argv[2] : SELF;
        hc_region *rg = NULL;
        hc_slot *slot = NULL;
        hc_instance holder;
        int shown = -1, r;

        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);

        r = hc_join(SELF, HC_OPTIONS(.max = 1), &slot);
        if (r == -EBUSY) {
                if (hc_primary(SELF, NULL, &holder) == 0)
                        fprintf(stderr, SD_ERR "already running as pid %d\n", (int) holder.pid);
                else
                        fprintf(stderr, SD_ERR "already running\n");
                return 75;
        }
        if (r < 0) {
                fprintf(stderr, SD_ERR "cannot join '%s': %s\n", SELF, strerror(-r));
                return 1;
        }
        r = hc_region_open(watch, NULL, &rg);
        if (r < 0) {
                fprintf(stderr, SD_ERR "cannot open '%s': %s\n", watch, strerror(-r));
                hc_leave(slot);
                return 1;
        }

        (void) sd_notify(0, "READY=1");
        fprintf(stderr, SD_INFO "running as the only instance, watching '%s'\n", watch);

        while (!stop) {
                int n = hc_region_count(rg);

                if (n < 0) {
                        fprintf(stderr, SD_ERR "cannot count '%s': %s\n", watch, strerror(-n));
                        break;
                }
                if (n != shown) {
                        (void) sd_notifyf(0, "STATUS=%d instance%s of '%s' running", n,
                                          n == 1 ? "" : "s", watch);
                        shown = n;
                }
                /* wakes at once when one starts or ends; every STOP_CHECK_MS to see
                 * whether we were asked to stop */
                (void) hc_region_wait_change(rg, (unsigned) n, STOP_CHECK_MS);
        }

        (void) sd_notify(0, "STOPPING=1");
        rg = hc_region_close(rg);
        slot = hc_leave(slot);
        return 0;
}
