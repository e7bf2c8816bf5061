/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Waiting for the count to change (lib/wait.c). */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* Waiting on a region that does not exist, or whose count is already below, returns
 * at once; a count that stays up times out. */
START_TEST(test_wait_immediate_and_timeout)
{
        hc_slot *s = NULL;
        long long t0;

        ck_assert_int_eq(hc_wait("none", TOPT(), 1, -1), 0);
        ck_assert_int_eq(hc_join("w", TOPT(.max = 2), &s), 0);
        ck_assert_int_eq(hc_wait("w", TOPT(), 2, -1), 1);
        ck_assert_int_eq(hc_wait("w", TOPT(), 1, 0), -ETIMEDOUT);
        t0 = mono_usec();
        ck_assert_int_eq(hc_wait("w", TOPT(), 1, 150), -ETIMEDOUT);
        ck_assert_int_ge(mono_usec() - t0, 150000);
        s = hc_leave(s);
        ck_assert_int_eq(hc_wait("w", TOPT(), 1, 0), 0);
}
END_TEST

/* Where a waiter writes the time its wait returned (a page shared with the children): a
 * wake-up is timed to that moment, not to the waiter's exit and our waitpid(), which a
 * loaded machine (or valgrind, checking for leaks at exit) may delay by a second or more. */
static long long *woke_usec(void) {
        static long long *p;

        if (!p)
                p = shared_page();
        return p;
}

/*
 * Forks a waiter that reports, through its exit status, what it returned: with CHANGE,
 * hc_region_wait_change(VALUE), else hc_region_wait(below VALUE).
 */
static pid_t spawn_waiter_for(const char *name, bool change, unsigned value, int timeout_ms,
                              int *ready_fd) {
        int p[2];
        pid_t pid;

        ck_assert_int_eq(pipe(p), 0);
        *woke_usec() = 0;
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                hc_region *rg = NULL;
                int r;

                close(p[0]);
                if (hc_region_open(name, TOPT(.flags = HC_NO_CREATE), &rg) < 0)
                        child_exit(100);
                /* tell the parent we are about to sleep, then wait */
                if (write(p[1], "r", 1) != 1)
                        child_exit(101);
                r = change ? hc_region_wait_change(rg, value, timeout_ms)
                           : hc_region_wait(rg, value, timeout_ms);
                *woke_usec() = mono_usec();
                child_exit(r == -ETIMEDOUT ? 99 : r < 0 ? 98 : r);
        }
        close(p[1]);
        *ready_fd = p[0];
        return pid;
}

static pid_t spawn_waiter(const char *name, unsigned below, int timeout_ms, int *ready_fd) {
        return spawn_waiter_for(name, false, below, timeout_ms, ready_fd);
}

static void await_ready(int fd) {
        char c;

        ck_assert_int_eq(read(fd, &c, 1), 1);
        close(fd);
}

/* hc_wait wakes after a clean leave, after a SIGKILL of the holder, and after a leave
 * through a handle (which closes nothing): within a generous second each time. */
START_TEST(test_wait_wakes_on_leave_and_kill)
{
        for (int how = 0; how < 3; how++) {
                hc_region *rg = NULL;
                hc_slot *s = NULL;
                int fd, status, seat, err;
                pid_t holder = 0, waiter;
                long long t0;

                if (how == 0)
                        ck_assert_int_eq(hc_join("wk", TOPT(), &s), 0);
                else if (how == 1)
                        holder = spawn_holder("wk", 1, false, &seat, &err);
                else {
                        ck_assert_int_eq(hc_region_open("wk", TOPT(), &rg), 0);
                        ck_assert_int_eq(hc_region_join(rg, TOPT(), &s), 0);
                }
                waiter = spawn_waiter("wk", 1, 20000, &fd);
                await_ready(fd);
                /* the waiter is asleep (or about to be: it counts once more after arming
                 * its watch, so a leave now cannot be missed) */
                t0 = mono_usec();
                if (how == 1)
                        kill_and_reap(holder, SIGKILL);
                else
                        s = hc_leave(s);
                ck_assert_int_eq(waitpid(waiter, &status, 0), waiter);
                ck_assert(WIFEXITED(status));
                ck_assert_int_eq(WEXITSTATUS(status), 0);
                ck_assert_int_ge(*woke_usec(), t0);
                ck_assert_int_lt(*woke_usec() - t0, 1000000);
                rg = hc_region_close(rg);
        }
}
END_TEST

/* --zero semantics with several holders: the wait ends only when the last one dies. */
START_TEST(test_wait_for_zero)
{
        pid_t h[3];
        int fd, status;
        pid_t waiter;

        for (int i = 0; i < 3; i++) {
                h[i] = spawn_holder("z", 3, i == 1, NULL, NULL);
                ck_assert_int_gt(h[i], 0);
        }
        waiter = spawn_waiter("z", 1, 20000, &fd);
        await_ready(fd);
        kill_and_reap(h[0], SIGKILL);
        kill_and_reap(h[1], SIGKILL);
        ck_assert_int_eq(waitpid(waiter, &status, WNOHANG), 0);   /* one is still in */
        ck_assert_int_eq(hc_count("z", TOPT()), 1);
        kill_and_reap(h[2], SIGKILL);
        ck_assert_int_eq(waitpid(waiter, &status, 0), waiter);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* A seat given back by the joiner while a forked child still shares the descriptor
 * sends no inotify event; the bounded re-check still wakes the waiter. */
START_TEST(test_wait_shared_descriptor_recheck)
{
        hc_slot *s = NULL;
        int fd, status;
        pid_t child, waiter;
        long long t0;

        ck_assert_int_eq(hc_join("sh", TOPT(), &s), 0);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                pause();
                child_exit(0);
        }
        waiter = spawn_waiter("sh", 1, 20000, &fd);
        await_ready(fd);
        t0 = mono_usec();
        s = hc_leave(s);
        ck_assert_int_eq(waitpid(waiter, &status, 0), waiter);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        ck_assert_int_ge(*woke_usec(), t0);
        ck_assert_int_lt(*woke_usec() - t0, 2000000);
        kill_and_reap(child, SIGKILL);
}
END_TEST

/* A handle opened with HC_WATCH makes every leave through a handle (which keeps its
 * descriptor open) raise an inotify event on the region file; without it, none. */
START_TEST(test_wait_watch_handle_sees_leaves)
{
        for (int watch = 0; watch < 2; watch++) {
                hc_region *mon = NULL, *rg = NULL;
                hc_slot *s = NULL;
                char path[512], buf[4096];
                int ifd, n;

                ck_assert_int_eq(hc_region_open("wt", TOPT(.flags = watch ? HC_WATCH : 0), &mon), 0);
                ck_assert_int_eq(hc_region_open("wt", TOPT(), &rg), 0);
                ck_assert_int_eq(hc_region_join(rg, TOPT(), &s), 0);
                s = hc_leave(s);                  /* the handle now has a spare descriptor */
                snprintf(path, sizeof path, "%s/wt", test_dir);
                ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
                ck_assert_int_ge(ifd, 0);
                ck_assert_int_ge(inotify_add_watch(ifd, path, IN_MODIFY | IN_CLOSE | IN_OPEN), 0);
                ck_assert_int_eq(hc_region_join(rg, TOPT(), &s), 0);
                s = hc_leave(s);
                n = (int) read(ifd, buf, sizeof buf);
                if (watch)
                        ck_assert_int_gt(n, 0);
                else
                        ck_assert_int_eq(n, -1);
                close(ifd);
                rg = hc_region_close(rg);
                mon = hc_region_close(mon);
        }
}
END_TEST

/* hc_region_wait_change wakes on a join (cold, and through a handle that opens nothing)
 * and on a leave, and returns the new count; it returns at once when the count already
 * differs. */
START_TEST(test_wait_change_wakes_on_join_and_leave)
{
        hc_region *rg = NULL;
        hc_slot *s = NULL, *t = NULL;
        int fd, status;
        pid_t waiter;

        ck_assert_int_eq(hc_region_open("ch", TOPT(), &rg), 0);
        ck_assert_int_eq(hc_region_wait_change(rg, 5, 0), 0);      /* differs already */
        ck_assert_int_eq(hc_region_wait_change(rg, 0, 0), -ETIMEDOUT);
        ck_assert_int_eq(hc_region_wait_change(rg, 0, 50), -ETIMEDOUT);

        /* a cold join */
        waiter = spawn_waiter_for("ch", true, 0, 20000, &fd);
        await_ready(fd);
        ck_assert_int_eq(hc_join("ch", TOPT(.max = 3), &s), 0);
        ck_assert_int_eq(waitpid(waiter, &status, 0), waiter);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 1);

        /* a join through a handle whose spare descriptor is already open */
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 3), &t), 0);
        t = hc_leave(t);
        waiter = spawn_waiter_for("ch", true, 1, 20000, &fd);
        await_ready(fd);
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 3), &t), 0);
        ck_assert_int_eq(waitpid(waiter, &status, 0), waiter);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 2);

        /* a leave */
        waiter = spawn_waiter_for("ch", true, 2, 20000, &fd);
        await_ready(fd);
        s = hc_leave(s);
        ck_assert_int_eq(waitpid(waiter, &status, 0), waiter);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 1);
        t = hc_leave(t);
        rg = hc_region_close(rg);
}
END_TEST

extern bool hc_test_no_inotify;

/* Without inotify (instances used up), a waiter sleeps on the generation futex: a leave
 * through a handle wakes it at once, and a plain leave, which only closes a descriptor,
 * is seen by the bounded re-check. */
START_TEST(test_wait_without_inotify)
{
        hc_region *rg = NULL;
        hc_slot *s = NULL;
        int fd, status;
        pid_t waiter;
        long long t0;

        hc_test_no_inotify = true;        /* inherited by the waiter we fork */
        ck_assert_int_eq(hc_region_open("ni", TOPT(), &rg), 0);
        ck_assert_int_eq(hc_region_join(rg, TOPT(), &s), 0);
        waiter = spawn_waiter("ni", 1, 20000, &fd);
        await_ready(fd);
        t0 = mono_usec();
        s = hc_leave(s);
        ck_assert_int_eq(waitpid(waiter, &status, 0), waiter);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        ck_assert_int_ge(*woke_usec(), t0);
        ck_assert_int_lt(*woke_usec() - t0, 2000000);

        ck_assert_int_eq(hc_join("ni", TOPT(), &s), 0);
        waiter = spawn_waiter("ni", 1, 20000, &fd);
        await_ready(fd);
        s = hc_leave(s);
        ck_assert_int_eq(waitpid(waiter, &status, 0), waiter);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        ck_assert_int_eq(hc_wait("ni", TOPT(), 1, 0), 0);
        rg = hc_region_close(rg);
}
END_TEST

Suite *suite_wait(void) {
        Suite *s = suite_create("wait");
        TCase *tc;

        tc = tcase_new("core", 60);
        tcase_add_test(tc, test_wait_immediate_and_timeout);
        tcase_add_test(tc, test_wait_for_zero);
        tcase_add_test(tc, test_wait_watch_handle_sees_leaves);
        tcase_add_test(tc, test_wait_change_wakes_on_join_and_leave);
        suite_add_tcase(s, tc);

        tc = tcase_new("crash", 60);
        tcase_add_test(tc, test_wait_wakes_on_leave_and_kill);
        tcase_add_test(tc, test_wait_shared_descriptor_recheck);
        tcase_add_test(tc, test_wait_without_inotify);
        suite_add_tcase(s, tc);
        return s;
}
