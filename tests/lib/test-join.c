/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Joining: the limit, the exact count, records, crashes, fork and exec (lib/join.c,
 * lib/seat.c, lib/count.c). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

/* A second joiner with max 1 is refused with -EBUSY; after the first leaves, it gets in. */
START_TEST(test_slot_single_instance)
{
        hc_slot *a = NULL, *b = NULL;
        hc_instance who;

        ck_assert_int_eq(hc_join("one", TOPT(.max = 1, .tag = "first"), &a), 0);
        ck_assert_int_eq(hc_join("one", TOPT(.max = 1), &b), -EBUSY);
        ck_assert_ptr_null(b);
        ck_assert_int_eq(hc_primary("one", TOPT(), &who), 0);
        ck_assert_int_eq(who.pid, getpid());
        ck_assert_str_eq(who.tag, "first");
        ck_assert_uint_eq(who.slot, 0);
        a = hc_leave(a);
        ck_assert_ptr_null(a);
        ck_assert_int_eq(hc_primary("one", TOPT(), &who), -ENOENT);
        ck_assert_int_eq(hc_join("one", TOPT(.max = 1), &b), 0);
        b = hc_leave(b);
        ck_assert_ptr_null(hc_leave(NULL));
}
END_TEST

/* With max N exactly N seats are given, lowest first, and the count follows. */
START_TEST(test_slot_max_n)
{
        hc_slot *s[6] = { NULL };

        for (unsigned i = 0; i < 5; i++) {
                ck_assert_int_eq(hc_join("n", TOPT(.max = 5), &s[i]), 0);
                ck_assert_uint_eq(hc_slot_index(s[i]), i);
                ck_assert_int_eq(hc_count("n", TOPT()), (int) i + 1);
        }
        ck_assert_int_eq(hc_join("n", TOPT(.max = 5), &s[5]), -EBUSY);
        /* a caller with a smaller max is refused while the first seats are taken */
        s[2] = hc_leave(s[2]);
        ck_assert_int_eq(hc_join("n", TOPT(.max = 2), &s[5]), -EBUSY);
        ck_assert_int_eq(hc_join("n", TOPT(.max = 5), &s[5]), 0);
        ck_assert_uint_eq(hc_slot_index(s[5]), 2);
        /* capacity caps max: the default capacity is 64 */
        for (unsigned i = 0; i < 6; i++)
                s[i] = hc_leave(s[i]);
        ck_assert_int_eq(hc_count("n", TOPT()), 0);
}
END_TEST

/* The region's capacity is a hard limit whatever max a caller passes. */
START_TEST(test_slot_capacity_caps_max)
{
        hc_slot *s[4] = { NULL };

        ck_assert_int_eq(hc_create("cap", TOPT(.capacity = 3)), 1);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(hc_join("cap", TOPT(.max = 100), &s[i]), 0);
        ck_assert_int_eq(hc_join("cap", TOPT(.max = 100), &s[3]), -EBUSY);
        for (int i = 0; i < 3; i++)
                hc_leave(s[i]);
}
END_TEST

/* Seats beyond the first lock file (capacity 200, 3 lock files + region) count exactly,
 * cold and through a handle. */
START_TEST(test_slot_many_seats)
{
        hc_region *rg = NULL;
        hc_slot *s[200];
        hc_instance *l = NULL;

        ck_assert_int_eq(hc_region_open("many", TOPT(.capacity = 200), &rg), 0);
        for (int i = 0; i < 200; i++) {
                if (i % 2)
                        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 200), &s[i]), 0);
                else
                        ck_assert_int_eq(hc_join("many", TOPT(.max = 200), &s[i]), 0);
        }
        ck_assert_int_eq(hc_count("many", TOPT()), 200);
        ck_assert_int_eq(hc_region_count(rg), 200);
        ck_assert_int_eq(hc_region_count_approx(rg), 200);
        for (int i = 0; i < 200; i += 3)
                s[i] = hc_leave(s[i]);
        ck_assert_int_eq(hc_count("many", TOPT()), 133);
        ck_assert_int_eq(hc_list("many", TOPT(), &l), 133);
        for (int i = 0; i < 133; i++) {
                ck_assert_int_eq(l[i].pid, getpid());
                ck_assert_uint_eq(l[i].flags, 0);
                ck_assert_uint_ne(l[i].slot % 3, 0);
        }
        free(l);
        for (int i = 0; i < 200; i++)
                if (i % 3)
                        s[i] = hc_leave(s[i]);
        ck_assert_int_eq(hc_region_count(rg), 0);
        rg = hc_region_close(rg);
}
END_TEST

/* hc_list reports pid, uid, tag, join time and seq in join order; the primary is the
 * oldest live seat. */
START_TEST(test_slot_list_records)
{
        hc_slot *a = NULL, *b = NULL;
        hc_instance *l = NULL, who;
        long long before = (long long) time(NULL) * 1000000;
        const char tag[] = "quote\" back\\ ctl\x01 hi\xff";

        ck_assert_int_eq(hc_join("l", TOPT(.max = 3, .tag = tag), &a), 0);
        ck_assert_int_eq(hc_join("l", TOPT(.max = 3), &b), 0);
        ck_assert_int_eq(hc_list("l", TOPT(), &l), 2);
        ck_assert_uint_eq(l[0].slot, 0);
        ck_assert_uint_eq(l[1].slot, 1);
        ck_assert_int_eq(l[0].pid, getpid());
        ck_assert_uint_eq(l[0].uid, getuid());
        ck_assert_str_eq(l[0].tag, tag);
        ck_assert_str_eq(l[1].tag, "");
        ck_assert_uint_lt(l[0].seq, l[1].seq);
        ck_assert_uint_eq(l[0].seq, hc_slot_seq(a));
        ck_assert_int_ge(l[0].joined_usec, before - 1000000);
        ck_assert_int_le(l[0].joined_usec, (long long) time(NULL) * 1000000 + 1000000);
        ck_assert_uint_eq(l[0].flags & (HC_INSTANCE_OTHER_PIDNS | HC_INSTANCE_OTHER_BOOT), 0);
        free(l);
        a = hc_leave(a);
        ck_assert_int_eq(hc_primary("l", TOPT(), &who), 0);
        ck_assert_uint_eq(who.slot, 1);
        /* a pid that does not hold the seat is refused; a child that does is recorded */
        ck_assert_int_eq(hc_slot_set_pid(b, 1), -ESRCH);
        ck_assert_int_eq(hc_primary("l", TOPT(), &who), 0);
        ck_assert_int_eq(who.pid, getpid());
        {
                pid_t c = fork();
                ck_assert_int_ge(c, 0);
                if (c == 0) {
                        for (;;)
                                pause();
                }
                ck_assert_int_eq(hc_slot_set_pid(b, c), 0);
                ck_assert_int_eq(hc_primary("l", TOPT(), &who), 0);
                ck_assert_int_eq(who.pid, c);
                kill(c, SIGKILL);
                ck_assert_int_eq(waitpid(c, NULL, 0), c);
        }
        ck_assert_int_eq(hc_slot_set_pid(b, getpid()), 0);
        ck_assert_int_eq(hc_slot_set_pid(NULL, 1), -EINVAL);
        ck_assert_int_eq(hc_slot_set_pid(b, 0), -EINVAL);
        b = hc_leave(b);
}
END_TEST

/* A seat held by a process killed with SIGKILL is free for the next joiner, its record
 * is not listed, and the count is exact at once. */
START_TEST(test_slot_sigkill_frees_seat)
{
        for (int handle = 0; handle < 2; handle++) {
                hc_slot *s = NULL;
                hc_instance *l = NULL;
                int seat, err;
                pid_t child = spawn_holder("k", 1, handle, &seat, &err);

                ck_assert_int_gt(child, 0);
                ck_assert_int_eq(hc_count("k", TOPT()), 1);
                ck_assert_int_eq(hc_join("k", TOPT(.max = 1), &s), -EBUSY);
                ck_assert_int_eq(hc_list("k", TOPT(), &l), 1);
                ck_assert_int_eq(l[0].pid, child);
                ck_assert_str_eq(l[0].tag, "holder");
                free(l);
                kill_and_reap(child, SIGKILL);
                ck_assert_int_eq(hc_count("k", TOPT()), 0);
                ck_assert_int_eq(hc_list("k", TOPT(), &l), 0);
                ck_assert_int_eq(hc_join("k", TOPT(.max = 1), &s), 0);
                s = hc_leave(s);
        }
}
END_TEST

/* Holders killed at random moments, through both paths: the count always equals the
 * number of holders still alive. */
START_TEST(test_slot_count_exact_after_random_kills)
{
        pid_t kids[10];
        unsigned alive = 0;

        srand(12345);
        for (int i = 0; i < 10; i++) {
                kids[i] = spawn_holder("rk", 10, i % 2, NULL, NULL);
                ck_assert_int_gt(kids[i], 0);
                alive++;
        }
        ck_assert_int_eq(hc_count("rk", TOPT()), 10);
        for (int round = 0; round < 10; round++) {
                int i = rand() % 10;
                if (kids[i] > 0) {
                        kill_and_reap(kids[i], SIGKILL);
                        kids[i] = -1;
                        alive--;
                } else {
                        kids[i] = spawn_holder("rk", 10, round % 2, NULL, NULL);
                        ck_assert_int_gt(kids[i], 0);
                        alive++;
                }
                ck_assert_int_eq(hc_count("rk", TOPT()), (int) alive);
        }
        for (int i = 0; i < 10; i++)
                if (kids[i] > 0)
                        kill_and_reap(kids[i], SIGKILL);
        ck_assert_int_eq(hc_count("rk", TOPT()), 0);
        ck_assert_int_ge(hc_reap("rk", TOPT()), 0);
        ck_assert_int_eq(hc_reap("rk", TOPT()), 0);
}
END_TEST

struct thread_arg {
        hc_region *rg;
        int inside;
        int max_seen;
        int errors;
};

static void *thread_loop(void *p) {
        struct thread_arg *a = p;

        for (int i = 0; i < 300; i++) {
                hc_slot *s = NULL;
                int r, in;

                if (i % 2)
                        r = hc_region_join(a->rg, TOPT(.max = 2, .timeout_ms = -1), &s);
                else
                        r = hc_join("th", TOPT(.max = 2, .timeout_ms = -1), &s);
                if (r < 0) {
                        __atomic_add_fetch(&a->errors, 1, __ATOMIC_RELAXED);
                        continue;
                }
                in = __atomic_add_fetch(&a->inside, 1, __ATOMIC_ACQ_REL);
                int seen = __atomic_load_n(&a->max_seen, __ATOMIC_RELAXED);
                while (in > seen && !__atomic_compare_exchange_n(&a->max_seen, &seen, in, false,
                                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                        ;
                if (hc_slot_index(s) >= 2)
                        __atomic_add_fetch(&a->errors, 1, __ATOMIC_RELAXED);
                __atomic_sub_fetch(&a->inside, 1, __ATOMIC_ACQ_REL);
                s = hc_leave(s);
        }
        return NULL;
}

/* 8 threads x 300 join/leave with max 2 (waiting for a seat) never have more than 2
 * inside at once, and all of them get in. */
START_TEST(test_slot_threads_never_exceed_max)
{
        struct thread_arg a = { 0 };
        pthread_t t[8];

        ck_assert_int_eq(hc_region_open("th", TOPT(), &a.rg), 0);
        for (int i = 0; i < 8; i++)
                ck_assert_int_eq(pthread_create(&t[i], NULL, thread_loop, &a), 0);
        for (int i = 0; i < 8; i++)
                pthread_join(t[i], NULL);
        ck_assert_int_eq(a.errors, 0);
        ck_assert_int_le(a.max_seen, 2);
        ck_assert_int_ge(a.max_seen, 1);
        ck_assert_int_eq(hc_count("th", TOPT()), 0);
        a.rg = hc_region_close(a.rg);
}
END_TEST

struct share_arg {
        hc_region *rg;
        int joiners_left;
        int errors;
};

static void *share_joiner(void *p) {
        struct share_arg *a = p;

        for (int i = 0; i < 200; i++) {
                hc_slot *s = NULL;
                int r = i % 3 ? hc_region_join(a->rg, TOPT(.max = 3, .timeout_ms = -1), &s)
                              : hc_join("sh", TOPT(.max = 3, .timeout_ms = -1), &s);

                if (r < 0 || hc_slot_index(s) >= 3)
                        __atomic_add_fetch(&a->errors, 1, __ATOMIC_RELAXED);
                s = hc_leave(s);
        }
        __atomic_sub_fetch(&a->joiners_left, 1, __ATOMIC_RELEASE);
        return NULL;
}

static void *share_querier(void *p) {
        struct share_arg *a = p;

        while (__atomic_load_n(&a->joiners_left, __ATOMIC_ACQUIRE) > 0) {
                hc_instance *l = NULL, who;
                int c = hc_region_count(a->rg), n = hc_region_list(a->rg, &l), w, q;

                w = hc_region_wait(a->rg, 4, 0);
                q = hc_region_primary(a->rg, &who);
                if (c < 0 || c > 3 || n < 0 || n > 3 || w < 0 || w > 3 || (q < 0 && q != -ENOENT))
                        __atomic_add_fetch(&a->errors, 1, __ATOMIC_RELAXED);
                free(l);
                (void) hc_region_count_approx(a->rg);
        }
        return NULL;
}

/* One handle shared by threads that join and leave (through it and by name) and threads
 * that count, list, wait and ask for the primary at the same time: every answer stays
 * within max, and nothing is left held. (The threaded test that the TSan build runs.) */
START_TEST(test_slot_threads_share_handle)
{
        struct share_arg a = { .joiners_left = 4 };
        pthread_t t[6];

        ck_assert_int_eq(hc_region_open("sh", TOPT(), &a.rg), 0);
        for (int i = 0; i < 6; i++)
                ck_assert_int_eq(pthread_create(&t[i], NULL, i < 4 ? share_joiner : share_querier,
                                                &a), 0);
        for (int i = 0; i < 6; i++)
                pthread_join(t[i], NULL);
        ck_assert_int_eq(a.errors, 0);
        ck_assert_int_eq(hc_region_count(a.rg), 0);
        ck_assert_int_eq(hc_count("sh", TOPT()), 0);
        a.rg = hc_region_close(a.rg);
}
END_TEST

/*
 * 12 processes x 400 join/leave with max 3, while the parent SIGKILLs them at random and
 * starts replacements: a process that holds a seat marks it in a shared table; a seat
 * found marked by another live process would be a violation. The count never exceeds 3
 * and ends at 0.
 */
START_TEST(test_slot_processes_never_exceed_max)
{
        /* [0..2] owner pid per seat, [8] violations, [15] n killed, [16..] killed pids */
        volatile int *page = shared_page();
        pid_t kids[12];
        int spawned = 0, killed = 0;

        ck_assert_int_eq(hc_create("procs", TOPT()), 1);

        srand(777);
        for (int i = 0; i < 12; i++, spawned++) {
                kids[i] = fork();
                ck_assert_int_ge(kids[i], 0);
                if (kids[i] == 0) {
                        for (int n = 0; n < 400; n++) {
                                hc_slot *s = NULL;
                                int r = hc_join("procs", TOPT(.max = 3, .timeout_ms = -1), &s);
                                if (r < 0)
                                        child_exit(10);
                                unsigned idx = hc_slot_index(s);
                                if (idx >= 3)
                                        child_exit(11);
                                pid_t prev = __atomic_exchange_n(&page[idx], getpid(), __ATOMIC_ACQ_REL);
                                /* the previous owner of this seat must be gone: either it
                                 * cleared its mark before leaving, or the parent killed it
                                 * (the parent notes a pid before it sends SIGKILL) */
                                if (prev != 0) {
                                        bool was_killed = false;
                                        int nk = __atomic_load_n(&page[15], __ATOMIC_ACQUIRE);
                                        for (int k = 0; k < nk; k++)
                                                if (page[16 + k] == prev)
                                                        was_killed = true;
                                        if (!was_killed)
                                                __atomic_add_fetch(&page[8], 1, __ATOMIC_RELAXED);
                                }
                                int c = hc_count("procs", TOPT());
                                if (c < 1 || c > 3)
                                        __atomic_add_fetch(&page[8], 1, __ATOMIC_RELAXED);
                                pid_t me = getpid();
                                __atomic_compare_exchange_n(&page[idx], &me, 0, false, __ATOMIC_ACQ_REL,
                                                            __ATOMIC_RELAXED);
                                s = hc_leave(s);
                        }
                        child_exit(0);
                }
        }
        for (;;) {
                int status, live = 0;
                for (int i = 0; i < 12; i++) {
                        if (kids[i] <= 0)
                                continue;
                        pid_t w = waitpid(kids[i], &status, WNOHANG);
                        if (w == kids[i]) {
                                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                                              "worker failed: %d", status);
                                kids[i] = 0;
                                continue;
                        }
                        live++;
                }
                if (live == 0)
                        break;
                int c = hc_count("procs", TOPT());
                ck_assert_int_ge(c, 0);
                ck_assert_int_le(c, 3);
                if (killed < 20 && rand() % 4 == 0) {
                        int i = rand() % 12;
                        if (kids[i] > 0) {
                                page[16 + killed] = kids[i];
                                __atomic_store_n(&page[15], killed + 1, __ATOMIC_RELEASE);
                                kill(kids[i], SIGKILL);
                                ck_assert_int_eq(waitpid(kids[i], &status, 0), kids[i]);
                                kids[i] = 0;
                                killed++;
                        }
                }
                usleep(2000);
        }
        ck_assert_int_eq(page[8], 0);
        ck_assert_int_gt(killed, 0);
        ck_assert_int_eq(hc_count("procs", TOPT()), 0);
}
END_TEST

/* After fork the child shares the seat; its hc_leave does not release the parent's
 * seat, and the seat stays held until the parent gives it back. */
START_TEST(test_slot_fork_child_cannot_release)
{
        for (int handle = 0; handle < 2; handle++) {
                hc_region *rg = NULL;
                hc_slot *s = NULL, *t = NULL;
                int status;
                pid_t pid;

                if (handle) {
                        ck_assert_int_eq(hc_region_open("f", TOPT(), &rg), 0);
                        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 1), &s), 0);
                } else
                        ck_assert_int_eq(hc_join("f", TOPT(.max = 1), &s), 0);
                pid = fork();
                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        hc_slot *u = NULL;
                        s = hc_leave(s);
                        /* still held by the parent: the child can neither join nor count 0 */
                        if (hc_count("f", TOPT()) != 1)
                                child_exit(1);
                        if (hc_join("f", TOPT(.max = 1), &u) != -EBUSY)
                                child_exit(2);
                        if (rg && hc_region_join(rg, TOPT(.max = 1), &u) != -EBUSY)
                                child_exit(3);
                        child_exit(0);
                }
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert(WIFEXITED(status));
                ck_assert_int_eq(WEXITSTATUS(status), 0);
                ck_assert_int_eq(hc_count("f", TOPT()), 1);
                ck_assert_int_eq(hc_join("f", TOPT(.max = 1), &t), -EBUSY);

                /* the joiner's leave releases the seat even though a child shares it */
                pid = fork();
                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        pause();
                        child_exit(0);
                }
                s = hc_leave(s);
                ck_assert_int_eq(hc_count("f", TOPT()), 0);
                kill_and_reap(pid, SIGKILL);
                rg = hc_region_close(rg);
        }
}
END_TEST

/* A seat joined with HC_INHERIT stays held by an exec'd child after the joiner dies,
 * and is released when that child dies. Without it, exec closes the seat. */
START_TEST(test_slot_inherit_across_exec)
{
        for (int inherit = 0; inherit < 2; inherit++) {
                int p[2], status;
                pid_t wrapper, cmd = 0;

                ck_assert_int_eq(pipe(p), 0);
                wrapper = fork();
                ck_assert_int_ge(wrapper, 0);
                if (wrapper == 0) {
                        hc_slot *s = NULL;
                        pid_t c;
                        close(p[0]);
                        if (hc_join("ex", TOPT(.flags = inherit ? HC_INHERIT : 0), &s) < 0)
                                child_exit(1);
                        c = fork();
                        if (c == 0) {
                                execlp("sleep", "sleep", "60", (char *) NULL);
                                child_exit(127);
                        }
                        hc_slot_set_pid(s, c);
                        if (write(p[1], &c, sizeof c) != sizeof c)
                                child_exit(2);
                        raise(SIGKILL);           /* the wrapper dies without leaving */
                        child_exit(3);
                }
                close(p[1]);
                ck_assert_int_eq(read(p[0], &cmd, sizeof cmd), (ssize_t) sizeof cmd);
                close(p[0]);
                ck_assert_int_eq(waitpid(wrapper, &status, 0), wrapper);
                /* the command may still be between fork and exec: wait for the exec (the
                 * bound is for a hang: a loaded machine may take its time) */
                for (long long end = mono_usec() + 30000000;;) {
                        char path[64], comm[32] = "";
                        FILE *f;
                        snprintf(path, sizeof path, "/proc/%d/comm", cmd);
                        f = fopen(path, "r");
                        if (f) {
                                if (!fgets(comm, sizeof comm, f))
                                        comm[0] = '\0';
                                fclose(f);
                        }
                        if (strncmp(comm, "sleep", 5) == 0)
                                break;
                        ck_assert_msg(mono_usec() < end, "the command never ran 'sleep'");
                        usleep(1000);
                }
                if (inherit) {
                        hc_instance who;
                        ck_assert_int_eq(hc_count("ex", TOPT()), 1);
                        ck_assert_int_eq(hc_primary("ex", TOPT(), &who), 0);
                        ck_assert_int_eq(who.pid, cmd);
                } else {
                        /* exec closes the seat (after comm changes: wait for it) */
                        ck_assert_int_eq(hc_wait("ex", TOPT(), 1, 30000), 0);
                }
                kill(cmd, SIGKILL);
                /* the orphan is reaped by init or a subreaper; its lock goes at exit */
                ck_assert_int_eq(hc_wait("ex", TOPT(), 1, 30000), 0);
        }
}
END_TEST

/* A join that waits for a seat gets it when the holder leaves, or times out. */
START_TEST(test_slot_join_waits_for_seat)
{
        hc_slot *s = NULL;
        long long t0;
        int seat, err;
        pid_t child = spawn_holder("w", 1, false, &seat, &err);

        ck_assert_int_gt(child, 0);
        t0 = mono_usec();
        ck_assert_int_eq(hc_join("w", TOPT(.max = 1, .timeout_ms = 50), &s), -ETIMEDOUT);
        ck_assert_int_ge(mono_usec() - t0, 50000);
        pid_t killer = fork();
        if (killer == 0) {
                usleep(100000);
                kill(child, SIGKILL);
                child_exit(0);
        }
        ck_assert_int_eq(hc_join("w", TOPT(.max = 1, .timeout_ms = 20000), &s), 0);
        waitpid(killer, NULL, 0);
        waitpid(child, NULL, 0);
        s = hc_leave(s);
}
END_TEST

/* The approximate count is the count seen by the last exact count, list or reap, by any
 * process; joins and leaves do not touch it. */
START_TEST(test_slot_approx_count)
{
        hc_region *rg = NULL;
        hc_slot *s[3];
        hc_instance *l = NULL;

        ck_assert_int_eq(hc_region_open("ap", TOPT(), &rg), 0);
        ck_assert_int_eq(hc_region_count_approx(rg), 0);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 3), &s[i]), 0);
        ck_assert_int_eq(hc_region_count_approx(rg), 0);
        ck_assert_int_eq(hc_region_count(rg), 3);
        ck_assert_int_eq(hc_region_count_approx(rg), 3);
        ck_assert_int_eq(hc_count_approx("ap", TOPT()), 3);
        s[0] = hc_leave(s[0]);
        ck_assert_int_eq(hc_list("ap", TOPT(), &l), 2);
        free(l);
        ck_assert_int_eq(hc_region_count_approx(rg), 2);
        s[1] = hc_leave(s[1]);
        s[2] = hc_leave(s[2]);
        ck_assert_int_eq(hc_reap("ap", TOPT()), 0);
        ck_assert_int_eq(hc_region_count_approx(rg), 0);
        rg = hc_region_close(rg);
        ck_assert_int_eq(hc_count_approx("none", TOPT()), -ENOENT);
}
END_TEST

/* Through a handle: hc_slot_set_pid() rewrites the record that hc_list() shows, and
 * hc_slot_fd() gives the descriptor that holds the seat (a leave then still frees it). */
START_TEST(test_slot_handle_set_pid_and_fd)
{
        hc_region *rg = NULL;
        hc_instance *l = NULL;
        hc_slot *s = NULL;
        int fd;

        ck_assert_int_eq(hc_region_open("sp", TOPT(), &rg), 0);
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 2, .tag = "t"), &s), 0);
        ck_assert_int_eq(hc_slot_set_pid(s, 4242), -ESRCH);    /* holds nothing */
        ck_assert_int_eq(hc_slot_set_pid(s, 0), -EINVAL);
        ck_assert_int_eq(hc_region_list(rg, &l), 1);
        ck_assert_int_eq(l[0].pid, getpid());
        ck_assert_str_eq(l[0].tag, "t");
        free(l);
        fd = hc_slot_fd(s);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_ne(fcntl(fd, F_GETFD), -1);
        ck_assert_int_eq(hc_slot_fd(NULL), -EINVAL);
        s = hc_leave(s);
        ck_assert_int_eq(hc_region_count(rg), 0);
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 1), &s), 0);
        s = hc_leave(s);
        rg = hc_region_close(rg);
}
END_TEST

/* A handle used after fork(): the child joins through it (its own seat, counted with the
 * parent's), and its leave of a seat the parent joined drops only its own reference. */
START_TEST(test_slot_handle_after_fork)
{
        hc_region *rg = NULL;
        hc_slot *s = NULL;
        int status;
        pid_t pid;

        ck_assert_int_eq(hc_region_open("hf", TOPT(), &rg), 0);
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 3), &s), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                hc_slot *c = NULL;
                int ok = hc_region_join(rg, TOPT(.max = 3), &c) == 0 && hc_region_count(rg) == 2;

                c = hc_leave(c);
                s = hc_leave(s);                /* the parent's seat: only our reference */
                ok = ok && hc_region_count(rg) == 1;
                rg = hc_region_close(rg);
                child_exit(ok ? 0 : 1);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        ck_assert_int_eq(hc_region_count(rg), 1);
        s = hc_leave(s);
        ck_assert_int_eq(hc_region_count(rg), 0);
        rg = hc_region_close(rg);
}
END_TEST

/* A seat joined through a handle with HC_INHERIT survives exec: its descriptor is not
 * close-on-exec. */
START_TEST(test_slot_handle_inherit_flag)
{
        hc_region *rg = NULL;
        hc_slot *s = NULL;

        ck_assert_int_eq(hc_region_open("hi", TOPT(), &rg), 0);
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 1, .flags = HC_INHERIT), &s), 0);
        ck_assert_int_eq(fcntl(hc_slot_fd(s), F_GETFD) & FD_CLOEXEC, 0);
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 1), &(hc_slot *) { NULL }), -EBUSY);
        s = hc_leave(s);
        ck_assert_int_eq(hc_region_count(rg), 0);
        rg = hc_region_close(rg);
}
END_TEST

/* hc_slot_fd() hands out a descriptor that reaches its own seat only: whoever gets it
 * can lock every byte of its file and still hold one seat. When the joiner goes without
 * a leave (hc_abandon(), as a SIGKILLed wrapper does) while a child keeps the descriptor,
 * the seat counts until the child ends, and no joiner takes it meanwhile. */
START_TEST(test_slot_fd_reaches_one_seat)
{
        hc_region *rg = NULL;
        hc_slot *s = NULL, *t = NULL;
        int fd, p[2], status;
        pid_t pid;

        ck_assert_int_eq(hc_region_open("own", TOPT(), &rg), 0);
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 8), &s), 0);
        fd = hc_slot_fd(s);
        ck_assert_int_ge(fd, 0);
        for (int i = 0; i < 64; i++) {
                struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                                   .l_start = ((off_t) 1 << 40) + i, .l_len = 1 };
                (void) fcntl(fd, F_OFD_SETLK, &l);
        }
        ck_assert_int_eq(hc_region_count(rg), 1);
        ck_assert_int_eq(hc_count("own", TOPT()), 1);
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 8), &t), 0);
        t = hc_leave(t);

        /* the joiner dies (no leave), a child keeps the descriptor */
        ck_assert_int_eq(pipe(p), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char c;
                close(p[1]);
                child_exit(read(p[0], &c, 1) < 0);
        }
        close(p[0]);
        s = hc_abandon(s);
        ck_assert_int_eq(hc_count("own", TOPT()), 1);
        ck_assert_int_eq(hc_region_count(rg), 1);       /* and it reaps nothing */
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 1), &t), -EBUSY);
        ck_assert_int_eq(hc_join("own", TOPT(.max = 1), &t), -EBUSY);
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 2), &t), 0);
        ck_assert_int_eq(hc_slot_index(t), 1);
        t = hc_leave(t);
        close(p[1]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_int_eq(hc_region_count(rg), 0);
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 1), &t), 0);
        t = hc_leave(t);
        rg = hc_region_close(rg);
}
END_TEST

/* A handle whose region was removed: queries report nobody, joins say -ESTALE, waiting
 * returns at once, and removing it again says -ENOENT. */
START_TEST(test_slot_handle_on_retired_region)
{
        hc_region *rg = NULL;
        hc_instance *l = (hc_instance *) 1, who;
        hc_slot *s = NULL;

        ck_assert_int_eq(hc_region_open("rt", TOPT(), &rg), 0);
        ck_assert_int_eq(hc_region_retired(rg), 0);
        ck_assert_int_eq(hc_remove("rt", TOPT()), 0);
        ck_assert_int_eq(hc_region_retired(rg), 1);
        ck_assert_int_eq(hc_region_count(rg), 0);
        ck_assert_int_eq(hc_region_list(rg, &l), 0);
        ck_assert_ptr_null(l);
        ck_assert_int_eq(hc_region_primary(rg, &who), -ENOENT);
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 1), &s), -ESTALE);
        ck_assert_ptr_null(s);
        ck_assert_int_eq(hc_region_wait(rg, 1, 1000), 0);
        ck_assert_int_eq(hc_remove("rt", TOPT()), -ENOENT);
        rg = hc_region_close(rg);
}
END_TEST

static int names_seen(const char *name, int count, void *u) {
        int *n = u;

        if (strcmp(name, "fifo") == 0) {
                ck_assert_int_eq(count, -EPERM);        /* reported, never opened for I/O */
                n[1]++;
                return 0;
        }
        ck_assert_str_eq(name, "real");
        ck_assert_int_eq(count, 1);
        n[0]++;
        return 0;
}

/* hc_names() skips files whose names are not region names, reports a FIFO in place of a
 * region as unreadable (-EPERM) without blocking on it, and finds the scope through
 * $HEADCOUNT_DIR when no directory is given. */
START_TEST(test_slot_names_skips_other_files)
{
        char path[600];
        hc_slot *s = NULL;
        int n[2] = { 0, 0 }, fd;

        ck_assert_int_eq(hc_join("real", TOPT(.max = 1), &s), 0);
        snprintf(path, sizeof path, "%s/not a name", test_dir);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);
        snprintf(path, sizeof path, "%s/fifo", test_dir);
        ck_assert_int_eq(mkfifo(path, 0600), 0);
        ck_assert_int_eq(setenv("HEADCOUNT_DIR", test_dir, 1), 0);
        ck_assert_int_eq(hc_names(NULL, names_seen, n), 0);
        ck_assert_int_eq(n[0], 1);
        ck_assert_int_eq(n[1], 1);
        unsetenv("HEADCOUNT_DIR");
        s = hc_leave(s);
}
END_TEST

/* A process that joins and then exits, with or without leaving first. */
static pid_t join_and_exit(const char *name, bool leave, bool cold, int *ret_seat, uint64_t *ret_seq) {
        int p[2];
        pid_t pid;
        struct { int seat; uint64_t seq; } got;

        memset(&got, 0, sizeof got);    /* the padding too: it goes through a pipe */
        got.seat = -1;
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                hc_region *rg = NULL;
                hc_slot *s = NULL;

                close(p[0]);
                if (cold ? hc_join(name, TOPT(.max = 4), &s) < 0
                         : hc_region_open(name, TOPT(), &rg) < 0 || hc_region_join(rg, TOPT(.max = 4), &s) < 0)
                        child_exit(10);
                got.seat = (int) hc_slot_index(s);
                got.seq = hc_slot_seq(s);
                if (write(p[1], &got, sizeof got) != (ssize_t) sizeof got)
                        child_exit(11);
                if (leave)
                        s = hc_leave(s);
                child_exit(0);            /* without leaving: the seat goes with the process */
        }
        close(p[1]);
        ck_assert_int_eq(read(p[0], &got, sizeof got), (ssize_t) sizeof got);
        close(p[0]);
        *ret_seat = got.seat;
        *ret_seq = got.seq;
        return pid;
}

/* A monitor can tell a holder that left from one that died holding its seat, also after
 * a reap and whichever way it joined; a seat taken again since cannot be told. */
START_TEST(test_slot_departure)
{
        hc_region *mon = NULL;
        hc_slot *s = NULL;
        uint64_t seq;
        int seat, status;
        pid_t pid;

        ck_assert_int_eq(hc_region_open("dep", TOPT(), &mon), 0);
        for (int cold = 0; cold < 2; cold++) {
                /* left, then exited */
                pid = join_and_exit("dep", true, cold, &seat, &seq);
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert_int_eq(hc_region_departure(mon, (unsigned) seat, seq), 0);

                /* exited holding it */
                pid = join_and_exit("dep", false, cold, &seat, &seq);
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert_int_eq(hc_region_departure(mon, (unsigned) seat, seq), 1);
                ck_assert_int_ge(hc_region_reap(mon), 0);         /* any reaper */
                ck_assert_int_eq(hc_region_departure(mon, (unsigned) seat, seq), 1);

                /* killed holding it */
                pid = spawn_holder("dep", 4, cold == 0, &seat, &status);
                ck_assert_int_gt(pid, 0);
                {
                        hc_instance *list = NULL;
                        ck_assert_int_eq(hc_region_list(mon, &list), 1);
                        seq = list[0].seq;
                        ck_assert_int_eq(hc_region_departure(mon, (unsigned) seat, seq), -EBUSY);
                        free(list);
                }
                kill_and_reap(pid, SIGKILL);
                ck_assert_int_eq(hc_region_count(mon), 0);        /* a count reaps too */
                ck_assert_int_eq(hc_region_departure(mon, (unsigned) seat, seq), 1);

                /* taken again since: the seat's history still tells, for as many runs as
                 * it keeps, and not after */
                ck_assert_int_eq(hc_join("dep", TOPT(.max = 4), &s), 0);
                ck_assert_int_eq((int) hc_slot_index(s), seat);
                ck_assert_int_eq(hc_region_departure(mon, (unsigned) seat, seq), 1);
                s = hc_leave(s);
                for (int i = 0; i < HC_RUNS_PER_SEAT_KEPT; i++) {
                        ck_assert_int_eq(hc_join("dep", TOPT(.max = 4), &s), 0);
                        ck_assert_int_eq((int) hc_slot_index(s), seat);
                        s = hc_leave(s);
                }
                ck_assert_int_eq(hc_region_departure(mon, (unsigned) seat, seq), -ESTALE);
        }
        ck_assert_int_eq(hc_region_departure(mon, 9999, seq), -EINVAL);
        ck_assert_int_eq(hc_region_departure(mon, 0, 0), -EINVAL);
        hc_region_close(mon);
}
END_TEST

/* The runs of a seat (hc_history()) are right whenever a holder is SIGKILLed: after it
 * wrote its run to the ring but before it erased its record and gave the seat back (a
 * leave with its status, not a death, and not twice), while it holds the seat (a death,
 * before anyone buried it and after), and while a reader looks between the record and the
 * ring (the record's run read running, then found in the ring). */
static pid_t join_and_die(const char *point, bool leave, bool hold) {
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                hc_slot *s = NULL;

                if (point)
                        die_at(point);
                if (hc_join("runs", TOPT(), &s) != 0)
                        child_exit(1);
                if (hold)
                        raise(SIGKILL);
                if (leave)
                        s = hc_leave_status(s, W_EXITCODE(3, 0));
                child_exit(0);
        }
        return pid;
}

static void reap_killed(pid_t pid) {
        int status;

        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "not killed where meant");
}

START_TEST(test_runs_sigkill_at_every_point) {
        hc_run *runs = NULL;
        hc_slot *s = NULL;
        pid_t a, b, c;
        int n;

        /* killed after its run went to the ring: a leave with exit 3, though its record
         * outlived it, and one run, not a leave and a death */
        reap_killed(b = join_and_die("run-ended", true, false));
        n = hc_history("runs", TOPT(), &runs);
        ck_assert_int_eq(n, 1);
        ck_assert_int_eq(runs[0].how, HC_RUN_LEFT);
        free(runs);
        /* killed holding the seat: a death, unburied (the next join buries it) */
        reap_killed(c = join_and_die(NULL, false, true));
        n = hc_history("runs", TOPT(), &runs);
        ck_assert_int_eq(n, 2);
        ck_assert_int_eq(runs[1].how, HC_RUN_DIED);
        ck_assert_int_eq(runs[1].pid, c);
        free(runs);
        /* and a holder that is still there, which a reader finds in its record */
        ck_assert_int_eq(hc_join("runs", TOPT(), &s), 0);
        a = getpid();

        n = hc_history("runs", TOPT(), &runs);
        ck_assert_int_eq(n, 3);
        ck_assert_uint_eq(runs[0].run, 1);
        ck_assert_uint_eq(runs[1].run, 2);
        ck_assert_uint_eq(runs[2].run, 3);
        ck_assert_int_eq(runs[0].pid, b);
        ck_assert_int_eq(runs[0].how, HC_RUN_LEFT);
        ck_assert_int_eq(runs[0].exit_status, 3);
        ck_assert_int_eq(runs[0].signal, 0);
        ck_assert_int_eq(runs[1].pid, c);
        ck_assert_int_eq(runs[1].how, HC_RUN_DIED);
        ck_assert_int_eq(runs[1].exit_status, -1);
        ck_assert_int_eq(runs[2].pid, a);
        ck_assert_int_eq(runs[2].how, HC_RUN_RUNNING);
        ck_assert_uint_eq(runs[2].seq, hc_slot_seq(s));
        free(runs);

        /* a leave with a signal; then the seat's runs read through a handle */
        s = hc_leave_status(s, SIGTERM);
        n = hc_history("runs", TOPT(), &runs);
        ck_assert_int_eq(n, 3);
        ck_assert_int_eq(runs[2].how, HC_RUN_LEFT);
        ck_assert_int_eq(runs[2].signal, SIGTERM);
        ck_assert_int_eq(runs[2].exit_status, -1);
        ck_assert_uint_ge(runs[2].ended_seq, runs[2].seq);
        ck_assert_int_ge(runs[2].ended_usec, runs[2].started_usec);
        free(runs);
}
END_TEST

/* hc_slot_end_run(): each run of a holding that runs its command again is a run of its
 * own, whenever the holder is SIGKILLed: after the run went to the ring but before the
 * record says so (one run, left with its status), during the next run (a death of that
 * run), and between two runs (no run at all for the pause). */
static pid_t rerun_and_die(const char *point, int code, bool again, bool hold) {
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                hc_slot *s = NULL;

                if (point)
                        die_at(point);
                if (hc_join("rerun", TOPT(), &s) != 0)
                        child_exit(1);
                if (hc_slot_end_run(s, W_EXITCODE(code, 0)) != 0)
                        child_exit(2);
                if (again && hc_slot_set_pid(s, getpid()) != 0)
                        child_exit(3);
                if (hold)
                        raise(SIGKILL);
                child_exit(0);
        }
        return pid;
}

START_TEST(test_runs_end_run_sigkill) {
        hc_run *runs = NULL;
        hc_slot *s = NULL;
        int n;

        reap_killed(rerun_and_die("run-ended-held", 5, false, false));
        n = hc_history("rerun", TOPT(), &runs);
        ck_assert_int_eq(n, 1);
        ck_assert_int_eq(runs[0].how, HC_RUN_LEFT);
        ck_assert_int_eq(runs[0].exit_status, 5);
        free(runs);

        reap_killed(rerun_and_die(NULL, 6, true, true));
        reap_killed(rerun_and_die(NULL, 7, false, true));
        ck_assert_int_eq(hc_count("rerun", TOPT()), 0);
        n = hc_history("rerun", TOPT(), &runs);
        ck_assert_int_eq(n, 4);
        ck_assert_uint_eq(runs[1].run, 2);
        ck_assert_int_eq(runs[1].how, HC_RUN_LEFT);
        ck_assert_int_eq(runs[1].exit_status, 6);
        ck_assert_uint_eq(runs[2].run, 3);            /* the next run, then the kill */
        ck_assert_int_eq(runs[2].how, HC_RUN_DIED);
        ck_assert_uint_eq(runs[3].run, 4);
        ck_assert_int_eq(runs[3].how, HC_RUN_LEFT);
        ck_assert_int_eq(runs[3].exit_status, 7);
        ck_assert_uint_gt(runs[2].seq, runs[1].seq);  /* a run's start, not the holding's */
        free(runs);

        /* the seat is taken again: the pause left no run, and numbering goes on */
        ck_assert_int_eq(hc_join("rerun", TOPT(), &s), 0);
        ck_assert_int_eq(hc_slot_end_run(s, W_EXITCODE(8, 0)), 0);
        ck_assert_int_eq(hc_slot_end_run(s, W_EXITCODE(9, 0)), 0);    /* no run: nothing */
        s = hc_leave(s);
        n = hc_history("rerun", TOPT(), &runs);
        ck_assert_int_eq(n, 5);
        ck_assert_uint_eq(runs[4].run, 5);
        ck_assert_int_eq(runs[4].exit_status, 8);
        free(runs);
}
END_TEST

/* A process that forked joins again by name: its seat is its own, not shared with the
 * child through a description kept from before the fork, so its death frees the seat
 * while the child lives on. */
START_TEST(test_join_after_fork_is_own) {
        int p[2], status;
        pid_t holder, child = 0;
        char c;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        holder = fork();
        ck_assert_int_ge(holder, 0);
        if (holder == 0) {
                hc_slot *s = NULL;
                hc_region *rg = NULL;
                pid_t kid;

                close(p[0]);
                /* a spare of each kind: a cold join's, and a handle's */
                if (hc_join("forked", TOPT(), &s) != 0)
                        child_exit(1);
                s = hc_leave(s);
                if (hc_region_open("forked", TOPT(), &rg) != 0 || hc_region_join(rg, TOPT(), &s) != 0)
                        child_exit(2);
                s = hc_leave(s);
                kid = fork();
                if (kid == 0) {
                        for (;;)
                                pause();
                }
                if (kid < 0 || write(p[1], &kid, sizeof kid) != sizeof kid)
                        child_exit(3);
                if (hc_join("forked", TOPT(), &s) != 0 || hc_region_join(rg, TOPT(.max = 2), &s) != 0)
                        child_exit(4);
                if (write(p[1], "j", 1) != 1)
                        child_exit(5);
                for (;;)
                        pause();
        }
        close(p[1]);
        ck_assert_int_eq(read(p[0], &child, sizeof child), (ssize_t) sizeof child);
        ck_assert_int_eq(read(p[0], &c, 1), 1);
        close(p[0]);
        ck_assert_int_eq(hc_count("forked", TOPT()), 2);
        ck_assert_int_eq(kill(holder, SIGKILL), 0);
        ck_assert_int_eq(waitpid(holder, &status, 0), holder);
        ck_assert_int_eq(hc_count("forked", TOPT()), 0);      /* the child holds nothing */
        ck_assert_int_eq(kill(child, 0), 0);                   /* and still lives */
        ck_assert_int_eq(kill(child, SIGKILL), 0);
}
END_TEST

Suite *suite_join(void) {
        Suite *s = suite_create("join");
        TCase *tc;

        tc = tcase_new("core", 60);
        tcase_add_test(tc, test_slot_single_instance);
        tcase_add_test(tc, test_slot_max_n);
        tcase_add_test(tc, test_slot_capacity_caps_max);
        tcase_add_test(tc, test_slot_many_seats);
        tcase_add_test(tc, test_slot_list_records);
        tcase_add_test(tc, test_slot_departure);
        tcase_add_test(tc, test_slot_approx_count);
        tcase_add_test(tc, test_slot_join_waits_for_seat);
        tcase_add_test(tc, test_slot_handle_set_pid_and_fd);
        tcase_add_test(tc, test_slot_handle_inherit_flag);
        tcase_add_test(tc, test_slot_fd_reaches_one_seat);
        tcase_add_test(tc, test_slot_handle_on_retired_region);
        tcase_add_test(tc, test_slot_names_skips_other_files);
        suite_add_tcase(s, tc);

        tc = tcase_new("limits", 300);
        tcase_add_test(tc, test_slot_threads_never_exceed_max);
        tcase_add_test(tc, test_slot_threads_share_handle);
        tcase_add_test(tc, test_slot_processes_never_exceed_max);
        suite_add_tcase(s, tc);

        tc = tcase_new("crash", 120);
        tcase_add_test(tc, test_slot_sigkill_frees_seat);
        tcase_add_test(tc, test_slot_count_exact_after_random_kills);
        tcase_add_test(tc, test_slot_fork_child_cannot_release);
        tcase_add_test(tc, test_slot_inherit_across_exec);
        tcase_add_test(tc, test_slot_handle_after_fork);
        tcase_add_test(tc, test_runs_sigkill_at_every_point);
        tcase_add_test(tc, test_runs_end_run_sigkill);
        tcase_add_test(tc, test_join_after_fork_is_own);
        suite_add_tcase(s, tc);
        return s;
}
