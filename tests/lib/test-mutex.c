/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The region lock and its repair after a holder died with it (lib/mutex.c). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "format.h"
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

/* The words of the header that change (flags, hints, the lock markers) filled with
 * garbage, as a user who may write the region could: nothing crashes or hangs, the
 * region lock still works (the kernel holds it, not the file), a marker found set only
 * costs a repair, and the region can be used and removed. */
START_TEST(test_lock_hostile_header_words)
{
        static const uint8_t fills[] = { 0xff, 0x01, 0x80, 0x00, 0x5a };

        for (size_t i = 0; i < sizeof fills / sizeof fills[0]; i++) {
                size_t from = offsetof(struct hc_region_header, flags);
                uint8_t junk[sizeof(struct hc_region_header)];
                hc_instance *list = NULL;
                hc_region *rg = NULL;
                hc_slot *s = NULL;
                char path[512];
                int fd, r;

                ck_assert_int_eq(hc_create("k", TOPT()), 1);
                snprintf(path, sizeof path, "%s/k", test_dir);
                fd = open(path, O_RDWR | O_CLOEXEC);
                ck_assert_int_ge(fd, 0);
                memset(junk, fills[i], sizeof junk);
                ck_assert_int_eq(pwrite(fd, junk + from, sizeof junk - from, (off_t) from),
                                 (ssize_t) (sizeof junk - from));
                close(fd);

                ck_assert_int_ge(hc_reap("k", TOPT()), 0);
                ck_assert_int_eq(hc_count("k", TOPT()), 0);
                ck_assert_int_eq(hc_list("k", TOPT(), &list), 0);
                ck_assert_int_eq(hc_join("k", TOPT(.max = 1), &s), 0);
                ck_assert_int_eq(hc_count("k", TOPT()), 1);
                s = hc_leave(s);
                ck_assert_int_eq(hc_region_open("k", TOPT(), &rg), 0);
                r = hc_region_lock(rg, 1000);
                ck_assert(r == 0 || r == HC_OWNER_DIED);
                ck_assert_int_eq(hc_region_unlock(rg), 0);
                ck_assert_int_eq(hc_region_lock(rg, 1000), 0);     /* repaired */
                ck_assert_int_eq(hc_region_unlock(rg), 0);
                rg = hc_region_close(rg);
                ck_assert_int_eq(hc_remove("k", TOPT()), 0);
                ck_assert_int_eq(access(path, F_OK), -1);
        }
}
END_TEST

Suite *suite_mutex(void) {
        Suite *s = suite_create("mutex");
        TCase *tc = tcase_new("crash", 60);

        tcase_add_test(tc, test_lock_holder_killed_inside_mutex);
        tcase_add_test(tc, test_lock_repeated_owner_deaths);
        suite_add_tcase(s, tc);

        tc = tcase_new("hostile", 60);
        tcase_add_test(tc, test_lock_hostile_header_words);
        suite_add_tcase(s, tc);
        return s;
}
