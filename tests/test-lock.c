/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The robust mutex and its repair after a holder died with it (lib/lock.c). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* A process killed while it holds the region mutex (inside the reaper) leaves no
 * deadlock: the next locker repairs the region and carries on, and the counts stay
 * exact. */
START_TEST(test_lock_holder_killed_inside_mutex)
{
        hc_slot *s = NULL;
        int status;
        pid_t pid, holder;

        /* a dead record for the reaper to find, and a live holder to keep counting */
        holder = spawn_holder("m", 4, false, NULL, NULL);
        ck_assert_int_gt(holder, 0);
        pid = spawn_holder("m", 4, false, NULL, NULL);
        ck_assert_int_gt(pid, 0);
        kill_and_reap(pid, SIGKILL);

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                die_at("reap-locked");
                hc_reap("m", TOPT());
                _exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFSIGNALED(status));
        ck_assert_int_eq(WTERMSIG(status), SIGKILL);

        /* the mutex is now owned by a dead process: these must not hang */
        ck_assert_int_eq(hc_reap("m", TOPT()), 0);
        ck_assert_int_eq(hc_count("m", TOPT()), 1);
        ck_assert_int_eq(hc_join("m", TOPT(.max = 4), &s), 0);
        ck_assert_int_eq(hc_count("m", TOPT()), 2);
        s = hc_leave(s);
        kill_and_reap(holder, SIGKILL);
        ck_assert_int_eq(hc_remove("m", TOPT()), 0);
}
END_TEST

/* Repeated deaths inside the mutex never wedge it. */
START_TEST(test_lock_repeated_owner_deaths)
{
        ck_assert_int_eq(hc_create("rep", TOPT()), 1);
        for (int i = 0; i < 20; i++) {
                hc_slot *s = NULL;
                int status;
                pid_t holder = spawn_holder("rep", 2, true, NULL, NULL), pid;

                ck_assert_int_gt(holder, 0);
                kill_and_reap(holder, SIGKILL);   /* leaves a record to reap */
                pid = fork();
                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        die_at("reap-locked");
                        hc_reap("rep", TOPT());
                        _exit(0);
                }
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert(WIFSIGNALED(status));
                ck_assert_int_eq(hc_join("rep", TOPT(.max = 2), &s), 0);
                s = hc_leave(s);
        }
        ck_assert_int_eq(hc_reap("rep", TOPT()), 0);
        ck_assert_int_eq(hc_remove("rep", TOPT()), 0);
}
END_TEST

Suite *suite_lock(void) {
        Suite *s = suite_create("lock");
        TCase *tc = tcase_new("crash", 60);

        tcase_add_test(tc, test_lock_holder_killed_inside_mutex);
        tcase_add_test(tc, test_lock_repeated_owner_deaths);
        suite_add_tcase(s, tc);
        return s;
}
