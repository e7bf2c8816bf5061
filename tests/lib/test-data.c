/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The user data area and its lock (lib/data.c). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* Forks a child that opens NAME, takes the data lock, writes WHAT into the data, reports
 * on a pipe and then waits to be killed (or kills itself when DIE). Returns its pid. */
static pid_t spawn_locker(const char *name, const char *what, bool die) {
        int p[2], r = 0;
        pid_t pid;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                hc_region *rg = NULL;

                r = hc_region_open(name, TOPT(.flags = HC_NO_CREATE), &rg);
                if (r == 0)
                        r = hc_region_lock(rg, 10000);
                if (r == 0)
                        strcpy(hc_region_data(rg), what);
                if (die)
                        raise(SIGKILL);   /* holding the lock, the data half-written */
                if (write(p[1], &r, sizeof r) != (ssize_t) sizeof r)
                        _exit(1);         /* the parent's read fails the test */
                for (;;)
                        pause();
        }
        close(p[1]);
        if (die) {
                int st;
                ck_assert_int_eq(waitpid(pid, &st, 0), pid);
                ck_assert(WIFSIGNALED(st));
        } else
                ck_assert_int_eq(read(p[0], &r, sizeof r), (ssize_t) sizeof r);
        close(p[0]);
        ck_assert_int_eq(r, 0);
        return pid;
}

/* ---- core ---- */

/* What one process writes under the lock, another process (with its own handle) sees. */
START_TEST(test_data_shared_across_processes)
{
        hc_region *rg = NULL, *none = NULL;
        char *data;
        pid_t pid;
        int st;

        ck_assert_int_eq(hc_region_open("d", TOPT(.data_size = 4096), &rg), 0);
        ck_assert_uint_eq(hc_region_data_size(rg), 4096);
        data = hc_region_data(rg);
        ck_assert_ptr_nonnull(data);
        ck_assert_int_eq(hc_region_lock(rg, -1), 0);
        strcpy(data, "from the parent");
        ck_assert_int_eq(hc_region_unlock(rg), 0);

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                hc_region *mine = NULL;
                char *d;

                if (hc_region_open("d", TOPT(.flags = HC_NO_CREATE), &mine) < 0)
                        child_exit(10);
                d = hc_region_data(mine);
                if (hc_region_lock(mine, 5000) != 0)
                        child_exit(11);
                if (strcmp(d, "from the parent") != 0)
                        child_exit(12);
                strcpy(d, "from the child");
                child_exit(hc_region_unlock(mine) == 0 ? 0 : 13);
        }
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);
        ck_assert_int_eq(hc_region_lock(rg, 0), 0);
        ck_assert_str_eq(data, "from the child");
        ck_assert_int_eq(hc_region_unlock(rg), 0);
        hc_region_close(rg);

        /* no data area: no pointer */
        ck_assert_int_eq(hc_region_open("empty", TOPT(), &none), 0);
        ck_assert_ptr_null(hc_region_data(none));
        hc_region_close(none);
}
END_TEST

/* Unlocking what we do not hold is refused; the seat knows its handle. */
START_TEST(test_data_unlock_and_slot_region)
{
        hc_region *rg = NULL;
        hc_slot *a = NULL, *b = NULL;

        ck_assert_int_eq(hc_region_open("u", TOPT(.data_size = 100), &rg), 0);
        ck_assert_int_eq(hc_region_unlock(rg), -EPERM);
        ck_assert_int_eq(hc_region_lock(rg, 0), 0);
        ck_assert_int_eq(hc_region_unlock(rg), 0);
        ck_assert_int_eq(hc_region_unlock(rg), -EPERM);
        ck_assert_int_eq(hc_region_lock(rg, -2), -EINVAL);
        ck_assert_int_eq(hc_region_lock(NULL, 0), -EINVAL);

        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 2), &a), 0);
        ck_assert_ptr_eq(hc_slot_region(a), rg);
        ck_assert_int_eq(hc_join("u", TOPT(.max = 2), &b), 0);
        ck_assert_ptr_null(hc_slot_region(b));
        ck_assert_ptr_null(hc_slot_region(NULL));
        a = hc_leave(a);
        b = hc_leave(b);
        hc_region_close(rg);
}
END_TEST

/* ---- limits ---- */

/* A held lock makes others wait their timeout, and no longer. */
START_TEST(test_data_lock_timeout)
{
        hc_region *rg = NULL;
        long long t0;
        pid_t holder;

        ck_assert_int_eq(hc_region_open("t", TOPT(.data_size = 64), &rg), 0);
        holder = spawn_locker("t", "held", false);
        ck_assert_int_eq(hc_region_lock(rg, 0), -ETIMEDOUT);
        t0 = mono_usec();
        ck_assert_int_eq(hc_region_lock(rg, 200), -ETIMEDOUT);
        ck_assert_int_ge(mono_usec() - t0, 200000);
        /* the holder is killed with the lock held: the next locker is told */
        kill_and_reap(holder, SIGKILL);
        ck_assert_int_eq(hc_region_lock(rg, 5000), HC_OWNER_DIED);
        ck_assert_str_eq(hc_region_data(rg), "held");
        ck_assert_int_eq(hc_region_unlock(rg), 0);
        hc_region_close(rg);
}
END_TEST

/* A handle opened read-only can read the data but not lock it. A region of another
 * owner is never mapped: its data is read with hc_region_data_read(). */
START_TEST(test_data_read_only_handle)
{
        pid_t pid;
        int st;

        if (geteuid() != 0)
                return;                   /* needs root to become somebody else */
        ck_assert_int_eq(chmod(test_dir, 0755), 0);
        ck_assert_int_eq(hc_create("ro", TOPT(.data_size = 64, .mode = 0644)), 1);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                hc_region *rg = NULL;

                if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        child_exit(10);
                if (hc_region_open("ro", TOPT(.flags = HC_NO_CREATE), &rg) < 0)
                        child_exit(11);
                char c = 'x';
                if (hc_region_data(rg) || hc_region_mapped(rg) != 0)
                        child_exit(12);
                if (hc_region_data_read(rg, 0, &c, 1) != 0 || c != '\0' ||
                    hc_region_data_write(rg, 0, &c, 1) != -EACCES ||
                    hc_region_data_read(rg, 64, &c, 1) != -EINVAL)
                        child_exit(14);
                child_exit(hc_region_lock(rg, 0) == -EACCES && hc_region_unlock(rg) == -EPERM ? 0 : 13);
        }
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st));
        ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

/* ---- crash ---- */

/* A holder that dies inside the user data is reported to the next user-data locker, once. */
START_TEST(test_data_owner_died_reported)
{
        hc_region *rg = NULL;

        ck_assert_int_eq(hc_region_open("od", TOPT(.data_size = 64), &rg), 0);
        spawn_locker("od", "half", true);
        ck_assert_int_eq(hc_region_lock(rg, 5000), HC_OWNER_DIED);
        ck_assert_str_eq(hc_region_data(rg), "half");
        strcpy(hc_region_data(rg), "repaired");
        ck_assert_int_eq(hc_region_unlock(rg), 0);
        ck_assert_int_eq(hc_region_lock(rg, 5000), 0);
        ck_assert_str_eq(hc_region_data(rg), "repaired");
        ck_assert_int_eq(hc_region_unlock(rg), 0);
        hc_region_close(rg);
}
END_TEST

/* ... even when an internal locker (a reap) got the EOWNERDEAD first and repaired the
 * region: the user data is still half-written. */
START_TEST(test_data_owner_died_seen_after_reap)
{
        hc_region *rg = NULL;

        ck_assert_int_eq(hc_region_open("odr", TOPT(.data_size = 64), &rg), 0);
        spawn_locker("odr", "half", true);
        ck_assert_int_ge(hc_reap("odr", TOPT()), 0);
        ck_assert_int_ge(hc_region_reap(rg), 0);
        ck_assert_int_eq(hc_region_lock(rg, 5000), HC_OWNER_DIED);
        ck_assert_int_eq(hc_region_unlock(rg), 0);
        ck_assert_int_eq(hc_region_lock(rg, 5000), 0);
        ck_assert_int_eq(hc_region_unlock(rg), 0);
        hc_region_close(rg);
}
END_TEST

/* A process that dies inside the region's own use of the mutex (the reaper) does not
 * make the user data suspect. */
START_TEST(test_data_internal_death_not_reported)
{
        hc_region *rg = NULL;
        pid_t pid;
        int st;

        ck_assert_int_eq(hc_region_open("idd", TOPT(.data_size = 64), &rg), 0);
        pid = spawn_holder("idd", 2, false, NULL, NULL);
        ck_assert_int_gt(pid, 0);
        kill_and_reap(pid, SIGKILL);      /* a dead record for the reaper */
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                die_at("reap-locked");
                hc_reap("idd", TOPT());
                child_exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFSIGNALED(st));
        ck_assert_int_eq(hc_region_lock(rg, 5000), 0);
        ck_assert_int_eq(hc_region_unlock(rg), 0);
        hc_region_close(rg);
}
END_TEST

Suite *suite_data(void) {
        Suite *s = suite_create("data");
        TCase *tc;

        tc = tcase_new("core", 60);
        tcase_add_test(tc, test_data_shared_across_processes);
        tcase_add_test(tc, test_data_unlock_and_slot_region);
        suite_add_tcase(s, tc);

        tc = tcase_new("limits", 60);
        tcase_add_test(tc, test_data_lock_timeout);
        tcase_add_test(tc, test_data_read_only_handle);
        suite_add_tcase(s, tc);

        tc = tcase_new("crash", 60);
        tcase_add_test(tc, test_data_owner_died_reported);
        tcase_add_test(tc, test_data_owner_died_seen_after_reap);
        tcase_add_test(tc, test_data_internal_death_not_reported);
        suite_add_tcase(s, tc);
        return s;
}
