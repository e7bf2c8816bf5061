/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared test helpers: fixture, holder processes, directory inspection. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

char test_dir[256];

extern void (*hc_test_hook)(const char *point);

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

void fixture_setup(void) {
        const char *base = getenv("TMPDIR");

        snprintf(test_dir, sizeof test_dir, "%s/hc-test-XXXXXX", base ? base : "/tmp");
        ck_assert_ptr_nonnull(mkdtemp(test_dir));
        /* no stray environment may redirect a test to another directory */
        unsetenv("HEADCOUNT_DIR");
}

void fixture_teardown(void) {
        (void) nftw(test_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TCase *tcase_new(const char *name, int timeout_s) {
        TCase *tc = tcase_create(name);

        tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
        tcase_set_timeout(tc, timeout_s);
        return tc;
}

pid_t spawn_holder(const char *name, unsigned max, bool handle, int *ret_seat, int *ret_err) {
        int p[2], msg[2] = { -1, 0 };
        pid_t pid;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                hc_slot *s = NULL;
                hc_region *rg = NULL;
                int r;

                close(p[0]);
                if (handle) {
                        r = hc_region_open(name, TOPT(.max = max), &rg);
                        if (r == 0)
                                r = hc_region_join(rg, TOPT(.max = max, .tag = "holder"), &s);
                } else
                        r = hc_join(name, TOPT(.max = max, .tag = "holder"), &s);
                msg[0] = r < 0 ? -1 : (int) hc_slot_index(s);
                msg[1] = r;
                if (write(p[1], msg, sizeof msg) != sizeof msg)
                        child_exit(3);
                if (r < 0)
                        child_exit(2);
                for (;;)
                        pause();
        }
        close(p[1]);
        ck_assert_int_eq(read(p[0], msg, sizeof msg), (ssize_t) sizeof msg);
        close(p[0]);
        if (ret_seat)
                *ret_seat = msg[0];
        if (ret_err)
                *ret_err = msg[1];
        if (msg[1] < 0) {
                int st;
                waitpid(pid, &st, 0);
                return -1;
        }
        return pid;
}

int kill_and_reap(pid_t pid, int sig) {
        int st = 0;

        ck_assert_int_eq(kill(pid, sig), 0);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        return st;
}

static unsigned count_entries(bool hidden_only) {
        DIR *d = opendir(test_dir);
        struct dirent *de;
        unsigned n = 0;

        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (hidden_only && de->d_name[0] != '.')
                        continue;
                n++;
        }
        closedir(d);
        return n;
}

unsigned hidden_files(void) {
        return count_entries(true);
}

unsigned dir_entries(void) {
        return count_entries(false);
}

long long mono_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long cpu_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void *shared_page(void) {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

        ck_assert_ptr_ne(p, MAP_FAILED);
        memset(p, 0, 4096);
        return p;
}

static const char *die_point;

static void die_hook(const char *point) {
        if (die_point && strcmp(point, die_point) == 0)
                raise(SIGKILL);
}

void die_at(const char *point) {
        die_point = point;
        hc_test_hook = die_hook;
}
