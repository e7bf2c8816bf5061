/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The robust mutex and its repair after a holder died with it (lib/lock.c). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "region.h"

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
                child_exit(0);
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
                        child_exit(0);
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

/* A region whose mutex claims another kind than the robust, process-shared one we make
 * (here priority-protected, which made glibc abort the process: found by fuzz-region)
 * is refused with -EBADMSG by everything that locks it; nothing crashes. */
START_TEST(test_lock_hostile_mutex_kind)
{
        static const int kinds[] = { 64, 32, 16 | 64 | 128, 16 | 32 | 128, 0, 1, -1 };

        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
                struct hc_region_header h;
                char path[512];
                int fd;

                ck_assert_int_eq(hc_create("k", TOPT()), 1);
                snprintf(path, sizeof path, "%s/k", test_dir);
                fd = open(path, O_RDWR | O_CLOEXEC);
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(pread(fd, &h, sizeof h, 0), (ssize_t) sizeof h);
                h.lock.__data.__kind = kinds[i];
                ck_assert_int_eq(pwrite(fd, &h, sizeof h, 0), (ssize_t) sizeof h);
                close(fd);

                ck_assert_int_eq(hc_reap("k", TOPT()), -EBADMSG);
                ck_assert_int_eq(hc_remove("k", TOPT()), -EBADMSG);
                ck_assert_int_eq(hc_count("k", TOPT()), 0);     /* no mutex needed */
                ck_assert_int_eq(unlink(path), 0);
        }
}
END_TEST

Suite *suite_lock(void) {
        Suite *s = suite_create("lock");
        TCase *tc = tcase_new("crash", 60);

        tcase_add_test(tc, test_lock_holder_killed_inside_mutex);
        tcase_add_test(tc, test_lock_repeated_owner_deaths);
        suite_add_tcase(s, tc);

        tc = tcase_new("hostile", 60);
        tcase_add_test(tc, test_lock_hostile_mutex_kind);
        suite_add_tcase(s, tc);
        return s;
}
