/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Seats held by a caller's descriptor: hc_seat_path, hc_join_fd, hc_leave_fd (lib/seatfd.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

static int open_seat_file(const char *name, int flags) {
        char path[PATH_MAX];
        int fd;

        ck_assert_int_gt(hc_seat_path(name, TOPT(), path, sizeof path), 0);
        fd = open(path, flags | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        return fd;
}

/* A seat taken through a descriptor that a child inherited stays after the child exits,
 * names the pid it was given (one that holds the description: the parent, as a shell
 * whose fd 9 it is), and goes when the last copy of the description is closed. */
START_TEST(test_seatfd_outlives_caller)
{
        hc_instance *list = NULL;
        int fd = open_seat_file("sh", O_RDWR), status;
        pid_t child;

        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0)
                child_exit(hc_join_fd("sh", TOPT(.tag = "script"), fd, getppid()) == 0 ? 0 : 1);
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert_int_eq(hc_count("sh", TOPT()), 1);
        ck_assert_int_eq(hc_list("sh", TOPT(), &list), 1);
        ck_assert_int_eq(list[0].pid, getpid());
        ck_assert_str_eq(list[0].tag, "script");
        free(list);
        close(fd);
        ck_assert_int_eq(hc_count("sh", TOPT()), 0);
}
END_TEST

/* The limit holds between descriptions; joining twice through one keeps its one seat;
 * leaving gives it back and erases the record. */
START_TEST(test_seatfd_limit_rejoin_leave)
{
        int a = open_seat_file("lim", O_RDWR), b = open_seat_file("lim", O_RDWR);
        hc_instance *list = NULL;

        ck_assert_int_eq(hc_join_fd("lim", TOPT(.max = 1), a, 0), 0);
        ck_assert_int_eq(hc_join_fd("lim", TOPT(.max = 1), a, 0), 0);
        ck_assert_int_eq(hc_count("lim", TOPT()), 1);
        ck_assert_int_eq(hc_join_fd("lim", TOPT(.max = 1), b, 0), -EBUSY);
        ck_assert_int_eq(hc_join_fd("lim", TOPT(.max = 2), b, 0), 1);
        ck_assert_int_eq(hc_list("lim", TOPT(), &list), 2);
        ck_assert_int_eq(list[0].pid, getpid());
        free(list);
        ck_assert_int_eq(hc_leave_fd("lim", TOPT(), a), 0);
        ck_assert_int_eq(hc_leave_fd("lim", TOPT(), a), -ENOENT);
        ck_assert_int_eq(hc_count("lim", TOPT()), 1);
        ck_assert_int_eq(hc_join_fd("lim", TOPT(.max = 1), a, 0), 0);
        close(a);
        close(b);
        ck_assert_int_eq(hc_count("lim", TOPT()), 0);
}
END_TEST

/* A holder killed with SIGKILL, with the only copy of the description, frees the seat. */
START_TEST(test_seatfd_sigkill)
{
        int fd = open_seat_file("kill", O_RDWR), pipefd[2];
        pid_t child;
        char c;

        ck_assert_int_eq(pipe(pipefd), 0);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                if (hc_join_fd("kill", TOPT(), fd, 0) != 0)
                        child_exit(1);
                (void) !write(pipefd[1], "j", 1);
                pause();
                child_exit(0);
        }
        close(fd);
        ck_assert_int_eq(read(pipefd[0], &c, 1), 1);
        ck_assert_int_eq(hc_count("kill", TOPT()), 1);
        kill_and_reap(child, SIGKILL);
        ck_assert_int_eq(hc_count("kill", TOPT()), 0);
        close(pipefd[0]);
        close(pipefd[1]);
}
END_TEST

/* Descriptors that cannot hold a seat of the name are refused, each with its own error. */
START_TEST(test_seatfd_bad_descriptors)
{
        int ro = open_seat_file("bad", O_RDONLY), other = open_seat_file("other", O_RDWR);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC), old;
        char path[8];

        ck_assert_int_eq(hc_join_fd("bad", TOPT(), 1000, 0), -EBADF);
        ck_assert_int_eq(hc_join_fd("bad", TOPT(), ro, 0), -EBADF);
        ck_assert_int_eq(hc_join_fd("bad", TOPT(), null, 0), -EXDEV);
        ck_assert_int_eq(hc_join_fd("bad", TOPT(), other, 0), -EXDEV);
        ck_assert_int_eq(hc_join_fd("bad", TOPT(), -1, 0), -EINVAL);
        ck_assert_int_eq(hc_join_fd("a/b", TOPT(), other, 0), -EINVAL);
        ck_assert_int_eq(hc_leave_fd("bad", TOPT(), null), -EXDEV);
        ck_assert_int_eq(hc_leave_fd("none", TOPT(), other), -ENOENT);
        ck_assert_int_eq(hc_seat_path("bad", TOPT(), path, sizeof path), -ENAMETOOLONG);
        ck_assert_int_eq(hc_seat_path("bad", HC_OPTIONS(.scope = HC_SCOPE_FLEET), path, sizeof path),
                         -EOPNOTSUPP);
        ck_assert_int_eq(hc_join_fd("bad", HC_OPTIONS(.scope = HC_SCOPE_FLEET), other, 0), -EOPNOTSUPP);
        ck_assert_int_eq(hc_leave_fd("bad", HC_OPTIONS(.scope = HC_SCOPE_FLEET), other), -EOPNOTSUPP);
        ck_assert_int_eq(hc_count("bad", TOPT()), 0);
        /* a lock file of a region removed since */
        old = open_seat_file("gone", O_RDWR);
        ck_assert_int_eq(hc_remove("gone", TOPT()), 0);
        ck_assert_int_eq(hc_join_fd("gone", TOPT(), old, 0), -ESTALE);
        close(old);
        close(ro);
        close(other);
        close(null);
}
END_TEST

/* A child that holds a copy of FD (and so the seat taken through it) until it is killed:
 * its pid. */
static pid_t keeper(int fd) {
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                (void) fd;
                for (;;)
                        pause();
        }
        return pid;
}

static void reap(pid_t pid) {
        kill(pid, SIGKILL);
        ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}

/* hc_region_holder() believes the kernel, not the record: the process named holds the
 * seat only while a descriptor of its own is the seat's description; a search finds who
 * does; a lock on another byte of the lock file is no seat. hc_join_fd() records another
 * pid only when that pid holds the seat, and gives back a seat it took otherwise. */
START_TEST(test_seatfd_holder_proven)
{
        hc_region *rg = NULL;
        hc_instance *list = NULL;
        int fd = open_seat_file("pr", O_RDWR), other, r;
        pid_t child, bystander;

        ck_assert_int_eq(hc_region_open("pr", TOPT(.flags = HC_NO_CREATE), &rg), 0);

        /* a pid that does not hold the description is refused, and the seat given back */
        ck_assert_int_eq(hc_join_fd("pr", TOPT(), fd, 1), -ESRCH);
        ck_assert_int_eq(hc_count("pr", TOPT()), 0);

        /* the script's pattern: it joins, a child keeps a copy, the script lets go */
        ck_assert_int_eq(hc_join_fd("pr", TOPT(), fd, 0), 0);
        child = keeper(fd);
        ck_assert_int_eq(hc_region_holder(rg, 0, getpid()), getpid());
        ck_assert_int_eq(hc_region_holder(rg, 0, child), child);
        r = hc_region_holder(rg, 0, 0);
        ck_assert(r == getpid() || r == child);
        close(fd);
        ck_assert_int_eq(hc_list("pr", TOPT(), &list), 1);
        ck_assert_int_eq(list[0].pid, getpid());          /* the record still names us */
        free(list);
        ck_assert_int_eq(hc_region_holder(rg, 0, getpid()), -ESRCH);
        ck_assert_int_eq(hc_region_holder(rg, 0, child), child);
        ck_assert_int_eq(hc_region_holder(rg, 0, 0), child);

        /* a free seat has no holder; a seat past the capacity is no seat */
        ck_assert_int_eq(hc_region_holder(rg, 1, 0), -ESRCH);
        ck_assert_int_eq(hc_region_holder(rg, 1, child), -ESRCH);
        ck_assert_int_eq(hc_region_holder(rg, hc_region_capacity(rg), 0), -EINVAL);
        ck_assert_int_eq(hc_region_holder(NULL, 0, 0), -EINVAL);
        ck_assert_int_eq(hc_region_holder(rg, 0, -1), -EINVAL);

        /* a write lock on a byte below the seats (where the region's own locks may live)
         * is nobody's seat */
        other = open_seat_file("pr", O_RDWR);
        {
                struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                                    .l_start = ((off_t) 1 << 40) - 3, .l_len = 1 };
                ck_assert_int_eq(fcntl(other, F_OFD_SETLK, &fl), 0);
        }
        bystander = keeper(other);
        close(other);
        ck_assert_int_eq(hc_region_holder(rg, 0, bystander), -ESRCH);
        ck_assert_int_eq(hc_region_holder(rg, 1, 0), -ESRCH);

        /* the holder gone, nobody holds it */
        reap(child);
        ck_assert_int_eq(hc_region_holder(rg, 0, child), -ESRCH);
        ck_assert_int_eq(hc_region_holder(rg, 0, 0), -ESRCH);
        reap(bystander);
        rg = hc_region_close(rg);
}
END_TEST

Suite *suite_seatfd(void) {
        Suite *s = suite_create("seatfd");
        TCase *tc = tcase_new("core", 30);

        tcase_add_test(tc, test_seatfd_outlives_caller);
        tcase_add_test(tc, test_seatfd_limit_rejoin_leave);
        tcase_add_test(tc, test_seatfd_bad_descriptors);
        tcase_add_test(tc, test_seatfd_holder_proven);
        suite_add_tcase(s, tc);
        tc = tcase_new("crash", 30);
        tcase_add_test(tc, test_seatfd_sigkill);
        suite_add_tcase(s, tc);
        return s;
}
