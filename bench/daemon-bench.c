/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcountd's latency after a crash: a holder is killed with SIGKILL while an hc_wait()
 * caller waits for the count to drop, and we time
 *
 *   kill -> CountChanged      the daemon's D-Bus signal, read by a client
 *   kill -> hc_wait returns   with the daemon running (it reaps and wakes waiters)
 *   kill -> hc_wait returns   without the daemon (inotify and the library's re-checks)
 *
 * over HC_BENCH_KILLS kills (default 100) on a private bus, and report the medians, the
 * 90th percentiles and the maxima. Then the daemon's cost per holder it follows: its
 * resident memory and its descriptors, before and after 500 holders in 50 regions. Times are CLOCK_MONOTONIC, which the waiter process
 * and we share. Built as bench/bench-daemon, run by 'make bench'.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "headcount.h"
#include "test-harness.h"

#define NAME "bench"

static int compare(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return x < y ? -1 : x > y;
}

static void report(const char *label, double *v, int n) {
        if (n == 0) {
                printf("| %-40s | %9s | %9s | %9s |\n", label, "-", "-", "-");
                return;
        }
        qsort(v, (size_t) n, sizeof *v, compare);
        printf("| %-40s | %6.0f us | %6.0f us | %6.0f us |\n", label, v[n / 2],
               v[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1], v[n - 1]);
}

/* A child that waits for the count of NAME to drop below 1 and sends the time it woke. */
static pid_t spawn_waiter(const char *dir, int *ret_fd) {
        int p[2];
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                uint64_t t;
                int k;

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void) close(p[0]);
                t = 0;
                if (write(p[1], &t, sizeof t) != sizeof t)      /* about to wait */
                        _exit(1);
                k = hc_wait(NAME, HC_OPTIONS(.dir = dir), 1, 10000);
                t = now_usec();
                if (k < 0)
                        t = 0;
                if (write(p[1], &t, sizeof t) != sizeof t)
                        _exit(1);
                _exit(0);
        }
        (void) close(p[1]);
        *ret_fd = p[0];
        return pid;
}

static int read_time(int fd, uint64_t *ret) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };

        if (poll(&pfd, 1, 15000) <= 0)
                return -ETIMEDOUT;
        return read(fd, ret, sizeof *ret) == sizeof *ret ? 0 : -EIO;
}

/* One kill; the latencies in microseconds, or negative when not measured. */
static int one_kill(struct harness *h, bool daemon, double *ret_signal, double *ret_wait) {
        uint64_t t_kill, t_signal = 0, t_wait = 0, ready;
        pid_t holder, waiter;
        int fd = -1, k;

        holder = harness_spawn_holder(h, NAME, 1, 1, NULL, false, NULL);
        if (holder < 0) {
                fprintf(stderr, "bench-daemon: cannot start a holder\n");
                return holder;
        }
        if (daemon) {
                /* The daemon has listed the holder and holds its pidfd. */
                k = harness_wait_signal(h, "CountChanged", NAME, 1, 10000, NULL);
                if (k < 0) {
                        fprintf(stderr, "bench-daemon: no CountChanged(1)\n");
                        return k;
                }
        }
        waiter = spawn_waiter(h->dir, &fd);
        if (waiter < 0)
                return waiter;
        if (read_time(fd, &ready) < 0) {
                (void) close(fd);
                return -EIO;
        }
        /* hc_wait() has no "asleep now" hook: give it 5 ms to count and go to sleep. A late
         * waiter would still be right, only slower, and that would show in the figures. */
        (void) poll(NULL, 0, 5);

        t_kill = now_usec();
        (void) kill(holder, SIGKILL);
        if (daemon) {
                k = harness_wait_signal(h, "CountChanged", NAME, 0, 10000, &t_signal);
                if (k < 0) {
                        fprintf(stderr, "bench-daemon: no CountChanged(0)\n");
                        return k;
                }
        }
        k = read_time(fd, &t_wait);
        (void) close(fd);
        (void) waitpid(holder, NULL, 0);
        (void) waitpid(waiter, NULL, 0);
        h->n_spawned = 0;
        if (k < 0 || t_wait == 0) {
                fprintf(stderr, "bench-daemon: the waiter failed\n");
                return -EIO;
        }
        *ret_signal = daemon ? (double) (t_signal - t_kill) : -1;
        *ret_wait = (double) (t_wait - t_kill);
        return 0;
}

/* The daemon's resident set in KiB and its open descriptors. */
static void daemon_usage(pid_t pid, long *ret_rss_kib, long *ret_fds) {
        char path[64], line[256];
        FILE *f;

        *ret_rss_kib = *ret_fds = -1;
        (void) snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        while (f && fgets(line, sizeof line, f))
                if (sscanf(line, "VmRSS: %ld kB", ret_rss_kib) == 1)
                        break;
        if (f)
                (void) fclose(f);
        (void) snprintf(path, sizeof path, "/proc/%d/fd", (int) pid);
        {
                char cmd[128];
                FILE *p;

                (void) snprintf(cmd, sizeof cmd, "ls %s | wc -l", path);
                p = popen(cmd, "re");
                if (p && fscanf(p, "%ld", ret_fds) != 1)
                        *ret_fds = -1;
                if (p)
                        (void) pclose(p);
        }
}

/* 10 processes hold a seat in each of 50 regions; returns when the daemon counts them
 * all, the holders' pids in PIDS. */
static int hold_many(struct harness *h, pid_t *pids) {
        for (int p = 0; p < 10; p++) {
                pids[p] = fork();
                if (pids[p] < 0)
                        return -errno;
                if (pids[p] == 0) {
                        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                        for (int r = 0; r < 50; r++) {
                                char name[32];
                                hc_slot *s = NULL;

                                (void) snprintf(name, sizeof name, "mem%d", r);
                                if (hc_join(name, HC_OPTIONS(.dir = h->dir, .max = 10), &s) < 0)
                                        _exit(1);
                        }
                        pause();
                        _exit(0);
                }
        }
        for (int r = 0; r < 50; r++) {
                char name[32];
                uint32_t count = 0;
                sd_bus_error error = SD_BUS_ERROR_NULL;

                (void) snprintf(name, sizeof name, "mem%d", r);
                for (int t = 0; t < 3000 && count != 10; t++) {
                        if (harness_count(h, name, &error, &count) < 0)
                                count = 0;
                        sd_bus_error_free(&error);
                        if (count != 10)
                                usleep(10000);
                }
                if (count != 10)
                        return -ETIMEDOUT;
        }
        return 0;
}

int main(void) {
        const char *e = getenv("HC_BENCH_KILLS");
        int kills = e ? atoi(e) : 100, n_with = 0, n_without = 0, k;
        double *sig, *wait_with, *wait_without;
        struct harness h;

        if (kills <= 0)
                kills = 100;
        if (!harness_have_dbus()) {
                printf("bench-daemon: skipped, dbus-daemon is not installed\n");
                return 0;
        }
        sig = calloc((size_t) kills, sizeof(double));
        wait_with = calloc((size_t) kills, sizeof(double));
        wait_without = calloc((size_t) kills, sizeof(double));
        if (!sig || !wait_with || !wait_without)
                return 1;

        if (harness_init(&h) < 0 || harness_start_bus(&h) < 0 || harness_connect(&h) < 0 ||
            harness_spawn_daemon(&h, (const char *[]) { "--log-target=stderr", NULL }, 0, NULL) < 0 ||
            harness_notify_wait(&h, "READY=1", 10000, NULL, 0) < 0) {
                fprintf(stderr, "bench-daemon: cannot start the bus and headcountd\n");
                harness_done(&h);
                return 1;
        }

        for (int i = 0; i < kills; i++) {
                k = one_kill(&h, true, sig + n_with, wait_with + n_with);
                if (k < 0) {
                        fprintf(stderr, "bench-daemon: kill %d with the daemon: %s\n", i,
                                strerror(-k));
                        if (getenv("HC_BENCH_DEBUG")) {
                                char cmd[8192];

                                (void) snprintf(cmd, sizeof cmd, "cat %s >&2", h.log);
                                (void) system(cmd);
                        }
                        break;
                }
                n_with++;
        }

        /* What following holders costs the daemon. */
        long rss0, fds0, rss1 = -1, fds1 = -1;
        pid_t many[10];
        int held;

        daemon_usage(h.daemon_pid, &rss0, &fds0);
        held = hold_many(&h, many);
        if (held == 0)
                daemon_usage(h.daemon_pid, &rss1, &fds1);
        for (int p = 0; p < 10; p++)
                if (many[p] > 0) {
                        (void) kill(many[p], SIGKILL);
                        (void) waitpid(many[p], NULL, 0);
                }

        /* The same without the daemon. */
        (void) kill(h.daemon_pid, SIGTERM);
        (void) harness_wait_exit(h.daemon_pid, 10000);
        h.daemon_pid = 0;
        for (int i = 0; i < kills; i++) {
                double unused;

                k = one_kill(&h, false, &unused, wait_without + n_without);
                if (k < 0) {
                        fprintf(stderr, "bench-daemon: kill %d without the daemon: %s\n", i,
                                strerror(-k));
                        break;
                }
                n_without++;
        }
        harness_done(&h);

        printf("headcountd: SIGKILL of a holder to the news of it (%d kills each)\n\n", kills);
        printf("| %-40s | %9s | %9s | %9s |\n", "latency from SIGKILL to", "median", "p90", "max");
        printf("|------------------------------------------|-----------|-----------|-----------|\n");
        report("CountChanged signal (daemon)", sig, n_with);
        report("hc_wait() returns, daemon running", wait_with, n_with);
        report("hc_wait() returns, no daemon", wait_without, n_without);

        if (held == 0 && rss0 >= 0 && rss1 >= 0)
                printf("\nheadcountd's cost of following 500 holders in 50 regions: %.2f KiB of "
                       "memory and %.2f descriptors per holder (%ld -> %ld KiB, %ld -> %ld "
                       "descriptors)\n", (double) (rss1 - rss0) / 500, (double) (fds1 - fds0) / 500,
                       rss0, rss1, fds0, fds1);
        else
                printf("\nheadcountd's cost per holder: not measured (%s)\n", strerror(-held));
        free(sig);
        free(wait_with);
        free(wait_without);
        return n_with == kills && n_without == kills ? 0 : 1;
}
