/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared test helpers: a temporary scope directory per test, and processes to kill. */
#ifndef HC_TESTS_HELPERS_H
#define HC_TESTS_HELPERS_H

#include <check.h>
#include <stdbool.h>
#include <sys/types.h>

#include "headcount.h"

/* The test's own directory (mkdtemp), created by the checked fixture. */
extern char test_dir[];

void fixture_setup(void);
void fixture_teardown(void);
TCase *tcase_new(const char *name, int timeout_s);

/* Options pointing at test_dir. */
#define TOPT(...) HC_OPTIONS(.dir = test_dir, __VA_ARGS__)

/*
 * Forks a child that joins NAME with MAX (through a handle when HANDLE), reports its seat
 * on a pipe and then waits to be killed. Returns its pid, or -1 when the join failed
 * (*ret_err then holds the error). *ret_seat gets the seat.
 */
pid_t spawn_holder(const char *name, unsigned max, bool handle, int *ret_seat, int *ret_err);

/* Sends SIG and reaps the child; returns its wait status. */
int kill_and_reap(pid_t pid, int sig);

/* Files in test_dir whose name starts with '.' (temporaries, lock files). */
unsigned hidden_files(void);
/* All entries in test_dir. */
unsigned dir_entries(void);

/* A microsecond clock for the generous wake-up bounds the tests assert. */
long long mono_usec(void);
/* The CPU time this process has used: what a test may bound (wall time is the load's). */
long long cpu_usec(void);

/* A process-shared counter page (for invariants that span processes). */
void *shared_page(void);

/* Ends a forked test child at once, as _exit() does. Under --enable-coverage it writes the
 * child's gcov counts first, which _exit() skips, so code run only in children counts. */
#ifdef HC_COVERAGE
void __gcov_dump(void);
#define child_exit(code)                \
        do {                            \
                __gcov_dump();          \
                _exit(code);            \
        } while (0)
#else
#define child_exit(code) _exit(code)
#endif

/* Kills the calling process with SIGKILL when the library reaches POINT. */
void die_at(const char *point);

/* One suite per module of lib/. */
Suite *suite_scope(void);
Suite *suite_region(void);
Suite *suite_join(void);
Suite *suite_mutex(void);
Suite *suite_wait(void);
Suite *suite_listen(void);
Suite *suite_data(void);
Suite *suite_section(void);
Suite *suite_fleet(void);
Suite *suite_seatfd(void);
Suite *suite_damaged(void);
/* Not a module: what hostile local users can do (black-box). */
Suite *suite_hostile(void);

#endif
