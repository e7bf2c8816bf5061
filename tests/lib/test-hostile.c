/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hostile local users: what another user who may write a shared region, plant files in a
 * shared directory, fill the filesystem or shift a clock can do to the processes that use
 * headcount. Everything here is black-box: the public API, the CLI's files and plain
 * system calls on the region's path. Nothing depends on the region's layout: damage is
 * written over byte ranges of the file (its first 128 bytes may be kept, so that the
 * region still passes the basic checks and the damage reaches the deeper paths).
 *
 * Every victim runs in a forked child with an alarm: a crash (SIGBUS, SIGSEGV, an abort)
 * or a hang fails the test; an error code is a fine answer.
 *
 * Tests that need other users run as root: they create throwaway users with useradd(8)
 * (removed again with userdel(8) when the test case ends) and use the system scope
 * (/run/headcount, created root-owned 01777 when missing) with region names unique to
 * this run, which are removed at the end. Without root they say SKIP on stderr and pass.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#ifndef HC_INSTANCE_UNVERIFIED
#define HC_INSTANCE_UNVERIFIED (1 << 3)
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define SYSTEM_DIR "/run/headcount"
#define NOTE_MAX 4000

/* ---- Users, the system scope, and bounded children ------------------------------------ */

struct user {
        char name[32];
        uid_t uid;
        gid_t gid;
};

static struct user users[3];     /* A, B, C: set up by the unchecked fixture when root */
static bool have_users;
static bool made_system_dir;
static char sys_prefix[32];      /* "hct<pid>-": region names of this run in SYSTEM_DIR */

#define USER_A (&users[0])
#define USER_B (&users[1])
#define USER_C (&users[2])

/* A page shared with the children: what a child that fails says, and numbers it reports. */
static char *note;
static int *box;

#define child_fail(...)                                         \
        do {                                                    \
                snprintf(note, NOTE_MAX, __VA_ARGS__);          \
                child_exit(1);                                  \
        } while (0)

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        (void) remove(path);
        return 0;
}

static void rm_tree(const char *path) {
        (void) nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs "COMMAND USER" quietly. */
static void run_quiet(const char *command, const char *user) {
        char cmd[256];

        snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>&1", command, user);
        (void) !system(cmd);
}

/* Unchecked fixture: runs once per test case, in the runner, so that users and system
 * scope files are removed even when a test fails. */
static void users_setup(void) {
        struct stat st;

        snprintf(sys_prefix, sizeof sys_prefix, "hct%ld-", (long) getpid());
        have_users = false;
        if (geteuid() != 0)
                return;
        if (stat(SYSTEM_DIR, &st) < 0 && errno == ENOENT) {
                if (mkdir(SYSTEM_DIR, 01777) == 0) {
                        (void) chmod(SYSTEM_DIR, 01777);
                        made_system_dir = true;
                }
        }
        for (unsigned i = 0; i < 3; i++) {
                struct passwd *pw;

                snprintf(users[i].name, sizeof users[i].name, "hct%ld%c", (long) getpid(),
                         (char) ('a' + i));
                run_quiet("userdel -f -r", users[i].name);
                run_quiet("useradd -M -N", users[i].name);
                pw = getpwnam(users[i].name);
                if (!pw) {
                        fprintf(stderr, "hostile: cannot create user %s\n", users[i].name);
                        return;
                }
                users[i].uid = pw->pw_uid;
                users[i].gid = pw->pw_gid;
        }
        have_users = true;
}

static void users_teardown(void) {
        DIR *d;

        if (geteuid() != 0)
                return;
        d = opendir(SYSTEM_DIR);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                        char path[512];
                        if (!strstr(de->d_name, sys_prefix))
                                continue;
                        snprintf(path, sizeof path, "%s/%s", SYSTEM_DIR, de->d_name);
                        rm_tree(path);
                }
                closedir(d);
        }
        if (made_system_dir && rmdir(SYSTEM_DIR) == 0)
                made_system_dir = false;
        for (unsigned i = 0; i < 3; i++) {
                char path[64];

                if (!users[i].uid)
                        continue;
                snprintf(path, sizeof path, "/dev/shm/headcount-%u", (unsigned) users[i].uid);
                rm_tree(path);
                run_quiet("userdel -f -r", users[i].name);
                users[i].uid = 0;
        }
        have_users = false;
}

static void note_setup(void) {
        char *p = shared_page();

        note = p;
        box = (int *) (p + NOTE_MAX);   /* 24 ints after the text */
}

static bool need_root(const char *test) {
        if (geteuid() == 0 && have_users)
                return true;
        fprintf(stderr, "hostile: SKIP %s: %s\n", test,
                geteuid() != 0 ? "needs root (other users)" : "could not create test users");
        return false;
}

/* Becomes USER for good (NULL: stays as we are); dies with the parent. */
static void become(const struct user *u) {
        if (u && (setgroups(0, NULL) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0))
                child_fail("cannot become %s: %s", u->name, strerror(errno));
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void sys_name(char *buf, size_t len, const char *what) {
        snprintf(buf, len, "%s%s", sys_prefix, what);
}

static void sys_path(char *buf, size_t len, const char *name) {
        snprintf(buf, len, "%s/%s", SYSTEM_DIR, name);
}

typedef void child_fn(void *arg);

/*
 * A child's alarm is for a hang, not for speed: a loaded machine, or make check's other
 * suites starting thousands of processes at once, can hold a child back for seconds
 * before it even runs. Whatever a test asks, a child has at least HANG_MIN_S; the parent
 * waits HANG_GRACE_S more before it kills one that outlived its alarm.
 */
#define HANG_MIN_S 60u
#define HANG_GRACE_S 30u

static unsigned hang_s(unsigned secs) {
        return secs < HANG_MIN_S ? HANG_MIN_S : secs;
}

/* Forks FN(ARG) as USER, killed by SIGALRM after hang_s(SECS) seconds. */
static pid_t fork_bounded(const struct user *u, unsigned secs, child_fn *fn, void *arg) {
        pid_t pid;

        note[0] = '\0';
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                become(u);
                /* Check's runner handles SIGALRM by killing the test's whole process group:
                 * our alarm must only end this child */
                (void) signal(SIGALRM, SIG_DFL);
                alarm(hang_s(secs));
                fn(arg);
                child_exit(0);
        }
        return pid;
}

/* Reaps PID; kills it when it is still there HANG_GRACE_S seconds after its alarm (a child
 * that blocks SIGALRM). Returns its wait status, or -1 when it had to be killed. */
static int reap_bounded(pid_t pid, unsigned secs) {
        long long deadline = mono_usec() + (long long) (hang_s(secs) + HANG_GRACE_S) * 1000000;
        int st;

        for (;;) {
                pid_t w = waitpid(pid, &st, WNOHANG);
                if (w == pid)
                        return st;
                ck_assert_int_eq(w, 0);
                if (mono_usec() > deadline) {
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, &st, 0);
                        return -1;
                }
                usleep(2000);
        }
}

/* The test fails when the child died of a signal, hung, or reported a failure. */
static void check_status(const char *what, int st, unsigned secs) {
        if (st == -1)
                ck_abort_msg("%s: hung (still running %u s after its alarm)", what, HANG_GRACE_S);
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
                ck_abort_msg("%s: hung (no exit within %u s)", what, hang_s(secs));
        if (WIFSIGNALED(st))
                ck_abort_msg("%s: killed by signal %d (%s)", what, WTERMSIG(st),
                             strsignal(WTERMSIG(st)));
        if (WEXITSTATUS(st) != 0)
                ck_abort_msg("%s: %s", what, note[0] ? note : "the child failed");
}

static void run_bounded(const char *what, const struct user *u, unsigned secs, child_fn *fn,
                        void *arg) {
        check_status(what, reap_bounded(fork_bounded(u, secs, fn, arg), secs), secs);
}

/* Forks a process (as USER) that joins NAME and holds the seat until it is killed. */
static pid_t hold_seat(const char *name, const hc_options *opt, const struct user *u,
                       int *ret_seat) {
        int p[2], msg[2] = { 0, 0 };
        pid_t pid;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                hc_slot *s = NULL;

                close(p[0]);
                become(u);
                msg[0] = hc_join(name, opt, &s);
                msg[1] = msg[0] == 0 ? (int) hc_slot_index(s) : -1;
                if (write(p[1], msg, sizeof msg) != sizeof msg || msg[0] < 0)
                        child_exit(2);
                for (;;)
                        pause();
        }
        close(p[1]);
        ck_assert_int_eq(read(p[0], msg, sizeof msg), (ssize_t) sizeof msg);
        close(p[0]);
        if (msg[0] < 0) {
                (void) waitpid(pid, NULL, 0);
                ck_abort_msg("a holder of '%s' could not join: %s", name, strerror(-msg[0]));
        }
        if (ret_seat)
                *ret_seat = msg[1];
        return pid;
}

static void stop(pid_t pid) {
        if (pid > 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
        }
}

static void fill_random(unsigned char *buf, size_t len, unsigned seed) {
        for (size_t i = 0; i < len; i++) {
                seed = seed * 1103515245u + 12345u;
                buf[i] = (unsigned char) (seed >> 16);
        }
}

static void pwrite_all(int fd, const void *buf, size_t len, off_t off) {
        ck_assert_int_eq(pwrite(fd, buf, len, off), (ssize_t) len);
}

/* ---- 1. Garbage in the region --------------------------------------------------------- */

struct target {
        char name[64];
        hc_options opt;          /* scope or dir; the calls set max, timeouts and flags */
        char path[512];
        pid_t expect_pid;        /* works_again: the pid list must report */
};

static void sane(const char *call, int r, int max) {
        if (r < -4095 || r > max)
                child_fail("%s returned %d", call, r);
}

static void sane_list(const char *call, const hc_instance *v, int n) {
        for (int i = 0; i < n; i++) {
                if (v[i].slot >= HC_CAPACITY_MAX)
                        child_fail("%s: entry %d has slot %u", call, i, v[i].slot);
                if (strnlen(v[i].tag, sizeof v[i].tag) > HC_TAG_MAX)
                        child_fail("%s: entry %d has an unterminated tag", call, i);
        }
}

/* Every call a process makes on a region, as a victim of whatever is in the file. */
static void garbage_ops(void *arg) {
        const struct target *t = arg;
        hc_options o = t->opt;
        hc_instance *v = NULL, in;
        hc_region *rg = NULL;
        hc_slot *s = NULL;
        int r;

        o.max = 4;
        o.timeout_ms = 0;
        sane("hc_reap", hc_reap(t->name, &o), HC_CAPACITY_MAX);
        sane("hc_count", hc_count(t->name, &o), HC_CAPACITY_MAX);
        sane("hc_count_approx", hc_count_approx(t->name, &o), INT32_MAX);
        r = hc_list(t->name, &o, &v);
        sane("hc_list", r, HC_CAPACITY_MAX);
        if (r > 0)
                sane_list("hc_list", v, r);
        free(v);
        v = NULL;
        sane("hc_primary", hc_primary(t->name, &o, &in), 0);
        r = hc_join(t->name, &o, &s);
        sane("hc_join", r, 0);
        if (r == 0) {
                sane("hc_slot_is_primary", hc_slot_is_primary(t->name, &o, s), 1);
                s = hc_leave(s);
        }
        sane("hc_wait below 1", hc_wait(t->name, &o, 1, 0), HC_CAPACITY_MAX);
        sane("hc_wait below 100", hc_wait(t->name, &o, 100, 0), HC_CAPACITY_MAX);

        r = hc_region_open(t->name, &o, &rg);
        sane("hc_region_open", r, 0);
        if (r == 0) {
                sane("hc_region_count", hc_region_count(rg), HC_CAPACITY_MAX);
                r = hc_region_list(rg, &v);
                sane("hc_region_list", r, HC_CAPACITY_MAX);
                if (r > 0)
                        sane_list("hc_region_list", v, r);
                free(v);
                v = NULL;
                r = hc_region_lock(rg, 0);
                sane("hc_region_lock", r, HC_OWNER_DIED);
                if (r >= 0)
                        sane("hc_region_unlock", hc_region_unlock(rg), 0);
                sane("hc_region_wait below 1", hc_region_wait(rg, 1, 0), HC_CAPACITY_MAX);
                sane("hc_region_wait below 100", hc_region_wait(rg, 100, 0), HC_CAPACITY_MAX);
                r = hc_region_join(rg, &o, &s);
                sane("hc_region_join", r, 0);
                if (r == 0)
                        s = hc_leave(s);
                rg = hc_region_close(rg);
        }
        sane("hc_remove", hc_remove(t->name, &o), 0);
}

static void remove_any(void *arg) {
        const struct target *t = arg;

        (void) hc_remove(t->name, &t->opt);
}

/* Once the damaged file is gone, the name works as if nothing had happened. */
static void works_again(void *arg) {
        const struct target *t = arg;
        hc_options o = t->opt;
        hc_instance *v = NULL;
        hc_region *rg = NULL;
        hc_slot *s = NULL;
        int r;

        o.max = 4;
        if ((r = hc_join(t->name, &o, &s)) != 0)
                child_fail("hc_join after the damaged region was removed: %s", strerror(-r));
        if ((r = hc_count(t->name, &o)) != 1)
                child_fail("hc_count after a fresh join: %d", r);
        if ((r = hc_list(t->name, &o, &v)) != 1 || v[0].pid != getpid())
                child_fail("hc_list after a fresh join: %d", r);
        free(v);
        if ((r = hc_region_open(t->name, &o, &rg)) != 0)
                child_fail("hc_region_open: %s", strerror(-r));
        if ((r = hc_region_count(rg)) != 1)
                child_fail("hc_region_count: %d", r);
        s = hc_leave(s);
        if ((r = hc_region_count(rg)) != 0)
                child_fail("hc_region_count after leaving: %d", r);
        rg = hc_region_close(rg);
        if ((r = hc_remove(t->name, &o)) != 0)
                child_fail("hc_remove: %s", strerror(-r));
}

/*
 * Writes damage over [128, end of file) of T's region while a seat is held in it, and runs
 * every call as VICTIM after each write: first one 32-bit word at a time over the rest of
 * the first 4 KiB (where the header's counters and lock state, and the first records, are
 * or were), with a few patterns; then whole fills of zeros, ones and random bytes. Then the
 * damaged file is removed (hc_remove by the owner, or unlink) and the name must work again.
 */
static void garbage_campaign(struct target *t, const struct user *victim) {
        static const uint32_t patterns[] = { 0xffffffffu, 0x00000001u, 0x80000000u };
        unsigned char *orig, *junk;
        struct stat st, now;
        size_t size, limit;
        char what[128];
        pid_t holder;
        hc_options ho = t->opt;
        int fd;

        ho.max = 4;
        ho.tag = "holder";
        holder = hold_seat(t->name, &ho, NULL, NULL);
        fd = open(t->path, O_RDWR | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fstat(fd, &st), 0);
        size = (size_t) st.st_size;
        ck_assert_uint_gt(size, 128);
        orig = malloc(size);
        junk = malloc(size);
        ck_assert(orig && junk);
        ck_assert_int_eq(pread(fd, orig, size, 0), (ssize_t) size);
        limit = size < 4096 ? size : 4096;

        /* HC_TEST_SAMPLE=N (set by make check-valgrind) keeps every Nth position only */
        const char *sample_env = getenv("HC_TEST_SAMPLE");
        size_t sample = sample_env && atoi(sample_env) > 1 ? (size_t) atoi(sample_env) : 1;

        for (size_t p = 0; p < sizeof patterns / sizeof *patterns; p++)
                for (size_t off = 128; off + 4 <= limit; off += 4) {
                        /* every pattern over the header's changing words and the first
                         * records, then one pattern on every fifth word */
                        if (off >= 512 && ((off / 4) % 5 != 0 || (off / 20) % 3 != p))
                                continue;
                        if ((off / 4) % sample != 0)
                                continue;
                        pwrite_all(fd, &patterns[p], 4, (off_t) off);
                        snprintf(what, sizeof what, "word %#x at offset %zu", patterns[p], off);
                        run_bounded(what, victim, 10, garbage_ops, t);
                        pwrite_all(fd, orig + off, 4, (off_t) off);
                        ck_assert_msg(stat(t->path, &now) == 0 && now.st_ino == st.st_ino,
                                      "%s: the region was removed while a seat was held", what);
                }

        for (unsigned f = 0; f < 18; f++) {
                if (f == 0)
                        memset(junk, 0, size);
                else if (f == 1)
                        memset(junk, 0xff, size);
                else
                        fill_random(junk, size, f);
                pwrite_all(fd, junk + 128, size - 128, 128);
                snprintf(what, sizeof what, "fill %u of bytes 128..%zu", f, size);
                run_bounded(what, victim, 10, garbage_ops, t);
                pwrite_all(fd, orig + 128, size - 128, 128);
                ck_assert_msg(stat(t->path, &now) == 0 && now.st_ino == st.st_ino,
                              "%s: the region was removed while a seat was held", what);
        }

        /* the holder goes, the damage stays; removed by its owner, the name works again */
        stop(holder);
        fill_random(junk, size, 99);
        pwrite_all(fd, junk + 128, size - 128, 128);
        close(fd);
        run_bounded("hc_remove of a damaged region", NULL, 10, remove_any, t);
        if (unlink(t->path) < 0)
                ck_assert_int_eq(errno, ENOENT);
        run_bounded("the name after the damaged region was removed", victim, 10, works_again, t);
        free(orig);
        free(junk);
}

/* Damage in a region of our own, as its owner. */
START_TEST(test_hostile_garbage_owner)
{
        struct target t = { .opt = *TOPT() };

        snprintf(t.name, sizeof t.name, "garbage");
        snprintf(t.path, sizeof t.path, "%s/garbage", test_dir);
        ck_assert_int_eq(hc_create(t.name, TOPT(.mode = 0600)), 1);
        garbage_campaign(&t, NULL);
}
END_TEST

/* Damage in a root-owned 0666 system-scope region, with another user as the victim. */
START_TEST(test_hostile_garbage_other_user)
{
        struct target t = { .opt = *HC_OPTIONS(.scope = HC_SCOPE_SYSTEM) };

        if (!need_root(__func__))
                return;
        sys_name(t.name, sizeof t.name, "garbage");
        sys_path(t.path, sizeof t.path, t.name);
        ck_assert_int_eq(hc_create(t.name, HC_OPTIONS(.scope = HC_SCOPE_SYSTEM, .mode = 0666)), 1);
        garbage_campaign(&t, USER_A);
}
END_TEST

/* ---- 2. Truncation under a running process ------------------------------------------- */

struct victim {
        struct target *t;
        int ready;               /* write end of the pipe the victim reports on */
        int kind;
};

enum { V_WAIT, V_NAME_LOOP, V_REGION_WAIT, V_WAIT_CHANGE, V_QUERY_LOOP, V_JOIN_LOOP, V_KINDS };
#define V_BY_NAME (V_NAME_LOOP + 1)       /* the kinds that use no handle */

static const char *const victim_names[V_KINDS] = {
        "a process in hc_wait", "a process counting, listing and joining by name in a loop",
        "a process in hc_region_wait", "a process in hc_region_wait_change",
        "a process counting and listing in a loop", "a process joining and leaving in a loop",
};

static void victim_run(void *arg) {
        const struct victim *v = arg;
        hc_options o = v->t->opt;
        hc_region *rg = NULL;
        long long end;
        char c = 'r';

        o.max = 4;
        if (v->kind >= V_BY_NAME && hc_region_open(v->t->name, &o, &rg) < 0)
                child_fail("%s: cannot open the region", victim_names[v->kind]);
        if (write(v->ready, &c, 1) != 1)
                child_exit(3);
        switch (v->kind) {
        case V_REGION_WAIT:
                (void) hc_region_wait(rg, 1, 2000);
                break;
        case V_WAIT:
                (void) hc_wait(v->t->name, &o, 1, 2000);
                break;
        case V_NAME_LOOP:
                for (end = mono_usec() + 1500000; mono_usec() < end;) {
                        hc_instance *list = NULL;
                        hc_slot *s = NULL;

                        (void) hc_count(v->t->name, &o);
                        if (hc_list(v->t->name, &o, &list) > 0)
                                free(list);
                        if (hc_join(v->t->name, &o, &s) == 0)
                                s = hc_leave(s);
                }
                break;
        case V_WAIT_CHANGE:
                (void) hc_region_wait_change(rg, 1, 2000);
                break;
        case V_QUERY_LOOP:
                for (end = mono_usec() + 1500000; mono_usec() < end;) {
                        hc_instance *list = NULL;

                        (void) hc_region_count(rg);
                        (void) hc_region_count_approx(rg);
                        if (hc_region_list(rg, &list) > 0)
                                free(list);
                }
                break;
        case V_JOIN_LOOP:
                for (end = mono_usec() + 1500000; mono_usec() < end;) {
                        hc_slot *s = NULL;

                        if (hc_region_join(rg, &o, &s) == 0)
                                s = hc_leave(s);
                }
                break;
        }
        rg = hc_region_close(rg);
}

static off_t truncate_to;

static void truncate_region(void *arg) {
        const struct target *t = arg;

        if (truncate(t->path, truncate_to) < 0)
                child_fail("cannot truncate %s: %s", t->path, strerror(errno));
}

/*
 * Truncates T's region to HALF ? half its size : 0 (as TRUNCATOR) while VICTIM processes
 * wait on it, count, list, join and leave by name and (unless BY_NAME_ONLY) through a
 * handle.
 */
static void truncate_campaign(struct target *t, bool half, const struct user *victim,
                              const struct user *truncator, bool by_name_only) {
        int kinds = by_name_only ? V_BY_NAME : V_KINDS;
        struct victim v[V_KINDS];
        pid_t pids[V_KINDS], holder;
        hc_options ho = t->opt;
        struct stat st;
        int p[2];
        char what[160];

        ho.max = 4;
        holder = hold_seat(t->name, &ho, NULL, NULL);
        ck_assert_int_eq(stat(t->path, &st), 0);
        truncate_to = half ? st.st_size / 2 : 0;
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        for (int k = 0; k < kinds; k++) {
                v[k] = (struct victim) { .t = t, .ready = p[1], .kind = k };
                pids[k] = fork_bounded(victim, 10, victim_run, &v[k]);
        }
        close(p[1]);
        for (int k = 0; k < kinds; k++) {
                struct pollfd pfd = { .fd = p[0], .events = POLLIN };
                char c;

                ck_assert_msg(poll(&pfd, 1, 10000) == 1 && read(p[0], &c, 1) == 1,
                              "a victim did not start");
        }
        close(p[0]);
        usleep(200000);           /* the waiters are asleep, the loops are running */
        run_bounded("truncate", truncator, 5, truncate_region, t);
        for (int k = 0; k < kinds; k++) {
                snprintf(what, sizeof what, "%s, when the region was truncated to %lld bytes",
                         victim_names[k], (long long) truncate_to);
                check_status(what, reap_bounded(pids[k], 10), 10);
        }
        stop(holder);
}

/*
 * The owner truncates its own 0600 region. Calls by name never map a region, so they
 * survive it. A handle (hc_region_open()) maps a region that only its own user can write,
 * and so trusts that user not to shrink it under the user's own running programs, as a
 * program trusts its user not to send it SIGBUS: that is documented, and shown here.
 */
static void truncate_owner(bool half) {
        struct target t = { .opt = *TOPT() };
        hc_region *rg = NULL;

        snprintf(t.name, sizeof t.name, "trunc");
        snprintf(t.path, sizeof t.path, "%s/trunc", test_dir);
        ck_assert_int_eq(hc_create(t.name, TOPT(.mode = 0600)), 1);
        ck_assert_int_eq(hc_region_open(t.name, TOPT(), &rg), 0);
        ck_assert_int_eq(hc_region_mapped(rg), 1);
        rg = hc_region_close(rg);
        truncate_campaign(&t, half, NULL, NULL, true);
}

static void truncate_other(bool half) {
        struct target t = { .opt = *HC_OPTIONS(.scope = HC_SCOPE_SYSTEM) };

        sys_name(t.name, sizeof t.name, half ? "trunc-half" : "trunc-zero");
        sys_path(t.path, sizeof t.path, t.name);
        ck_assert_int_eq(hc_create(t.name, HC_OPTIONS(.scope = HC_SCOPE_SYSTEM, .mode = 0666)), 1);
        truncate_campaign(&t, half, USER_B, USER_C, false);
}

START_TEST(test_hostile_truncate_zero_owner)
{
        truncate_owner(false);
}
END_TEST

START_TEST(test_hostile_truncate_half_owner)
{
        truncate_owner(true);
}
END_TEST

/* A root-owned 0666 region, user B's processes on it, truncated by user C. */
START_TEST(test_hostile_truncate_zero_other_user)
{
        if (need_root(__func__))
                truncate_other(false);
}
END_TEST

START_TEST(test_hostile_truncate_half_other_user)
{
        if (need_root(__func__))
                truncate_other(true);
}
END_TEST

/* ---- 3. A full filesystem ------------------------------------------------------------- */

static char fs_dir[512];

static void create_big(void *arg) {
        hc_slot *s = NULL;

        (void) arg;
        box[0] = hc_create("big", HC_OPTIONS(.dir = fs_dir, .data_size = 1 << 20));
        box[1] = hc_join("big2", HC_OPTIONS(.dir = fs_dir, .data_size = 1 << 20), &s);
}

/* Entries of fs_dir other than "fill", as text. */
static void leftovers(char *buf, size_t len) {
        DIR *d = opendir(fs_dir);
        struct dirent *de;
        size_t o = 0;

        buf[0] = '\0';
        if (!d)
                return;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
                    strcmp(de->d_name, "fill") && o < len)
                        o += (size_t) snprintf(buf + o, len - o, " %s", de->d_name);
        closedir(d);
}

static void clear_leftovers(void) {
        DIR *d = opendir(fs_dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
                    strcmp(de->d_name, "fill")) {
                        char p[800];
                        snprintf(p, sizeof p, "%s/%s", fs_dir, de->d_name);
                        rm_tree(p);
                }
        closedir(d);
}

static bool no_space(int r) {
        return r == -ENOSPC || r == -EDQUOT;
}

/* hc_create and hc_join of a region with 1 MiB of data on a filesystem that is full, and
 * on one that has a little room left (enough for a header, not for the data). */
START_TEST(test_hostile_full_filesystem)
{
        static char block[4096];
        int st[2], res[2][2], fd;
        char left[2][512];
        off_t filled = 0;

        if (geteuid() != 0) {
                fprintf(stderr, "hostile: SKIP %s: needs root (mount)\n", __func__);
                return;
        }
        snprintf(fs_dir, sizeof fs_dir, "%s/fs", test_dir);
        ck_assert_int_eq(mkdir(fs_dir, 0700), 0);
        if (mount("tmpfs", fs_dir, "tmpfs", 0, "size=64k,mode=0700") < 0) {
                fprintf(stderr, "hostile: SKIP %s: cannot mount a tmpfs: %s\n", __func__,
                        strerror(errno));
                return;
        }
        {
                char p[600];
                snprintf(p, sizeof p, "%s/fill", fs_dir);
                fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        }
        if (fd >= 0) {
                ssize_t n;
                while ((n = write(fd, block, sizeof block)) > 0)
                        filled += n;
        }
        for (int round = 0; round < 2; round++) {
                if (round == 1 && fd >= 0)    /* leave 16 KiB: a header fits, 1 MiB does not */
                        ck_assert_int_eq(ftruncate(fd, filled > 16384 ? filled - 16384 : 0), 0);
                box[0] = box[1] = 1;
                st[round] = reap_bounded(fork_bounded(NULL, 10, create_big, NULL), 10);
                res[round][0] = box[0];
                res[round][1] = box[1];
                leftovers(left[round], sizeof left[round]);
                clear_leftovers();        /* what a first round left must not spoil the second */
        }
        if (fd >= 0)
                close(fd);
        ck_assert_int_eq(umount2(fs_dir, MNT_DETACH), 0);
        ck_assert_int_ge(fd, 0);
        for (int round = 0; round < 2; round++) {
                const char *how = round == 0 ? "full" : "nearly full";
                char what[64];

                snprintf(what, sizeof what, "hc_create/hc_join on a %s filesystem", how);
                check_status(what, st[round], 10);
                ck_assert_msg(no_space(res[round][0]),
                              "hc_create of 1 MiB of data on a %s filesystem returned %d, "
                              "expected -ENOSPC", how, res[round][0]);
                ck_assert_msg(no_space(res[round][1]),
                              "hc_join creating 1 MiB of data on a %s filesystem returned %d, "
                              "expected -ENOSPC", how, res[round][1]);
                ck_assert_msg(left[round][0] == '\0', "files left on a %s filesystem:%s", how,
                              left[round]);
        }
}
END_TEST

/* ---- 4. The forwarding socket --------------------------------------------------------- */

static volatile sig_atomic_t serving;

static _Noreturn void serve_echo(hc_listener *l) {
        for (;;) {
                struct pollfd pfd = { .fd = hc_listener_fd(l), .events = POLLIN };
                hc_message *m;

                if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                        child_exit(20);
                while (hc_listener_receive(l, &m) == 0) {
                        char reply[256];
                        int n = snprintf(reply, sizeof reply, "%d %s", (int) getpid(),
                                         (const char *) m->data);
                        (void) hc_message_reply(m, reply, (size_t) n);
                }
        }
}

/* Forks a process (as USER) that joins NAME, listens and echoes "<its pid> <message>".
 * Returns its pid; *RET_R gets what hc_join or hc_listen returned (the child has exited
 * when that is not 0). */
static pid_t spawn_primary(const char *name, const hc_options *opt, const struct user *u,
                           int *ret_r) {
        int p[2], r = 0;
        pid_t pid;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                hc_options o = *opt;
                hc_listener *l = NULL;
                hc_slot *s = NULL;

                close(p[0]);
                become(u);
                o.max = 8;
                r = hc_join(name, &o, &s);
                if (r == 0)
                        r = hc_listen(name, &o, s, &l);
                if (write(p[1], &r, sizeof r) != sizeof r || r < 0)
                        child_exit(2);
                serve_echo(l);
        }
        close(p[1]);
        ck_assert_int_eq(read(p[0], &r, sizeof r), (ssize_t) sizeof r);
        close(p[0]);
        if (r < 0)
                (void) waitpid(pid, NULL, 0);
        *ret_r = r;
        return pid;
}

struct send_ctx {
        const char *name;
        hc_options opt;
};

/* In a child: box[0] = hc_send's result, note = the reply. */
static void send_ping(void *arg) {
        const struct send_ctx *c = arg;
        hc_options o = c->opt;
        void *reply = NULL;
        size_t len = 0;

        o.timeout_ms = 3000;
        box[0] = hc_send(c->name, &o, "ping", 4, &reply, &len);
        if (box[0] == 0)
                snprintf(note, NOTE_MAX, "%.*s", (int) len, (const char *) reply);
        free(reply);
}

/* hc_send as USER reaches PRIMARY and gets its reply. */
static void expect_reply(const char *name, const hc_options *opt, const struct user *u,
                         pid_t primary, const char *what) {
        struct send_ctx c = { .name = name, .opt = *opt };
        char want[64];

        box[0] = 1;
        run_bounded(what, u, 10, send_ping, &c);
        ck_assert_msg(box[0] == 0, "%s: hc_send returned %s", what, strerror(-box[0]));
        snprintf(want, sizeof want, "%d ping", (int) primary);
        ck_assert_msg(strcmp(note, want) == 0, "%s: the reply was '%s', expected '%s'", what, note,
                      want);
}

enum plant { PLANT_FILE, PLANT_FIFO, PLANT_DIR, PLANT_DEAD_SOCKET, PLANT_LIVE_SOCKET, PLANTS };

static const char *const plant_names[PLANTS] = {
        "a regular file", "a FIFO", "a directory", "a socket nobody listens on",
        "a socket another process listens on",
};

static int bind_socket(const char *path, bool listening) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        if (fd < 0 || strlen(path) >= sizeof sa.sun_path)
                return -1;
        strcpy(sa.sun_path, path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            (listening && listen(fd, 16) < 0)) {
                close(fd);
                return -1;
        }
        return fd;
}

/* Whether a listening socket has a connection waiting (or accepted one). */
static bool saw_connection(int fd) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (c >= 0) {
                close(c);
                return true;
        }
        return false;
}

/*
 * A planter: becomes USER, plants KIND at PATH, reports on a pipe and stays until told to
 * go; a live socket's planter then says (exit status 3) whether anyone connected to it.
 */
struct planter {
        pid_t pid;
        int go;                  /* write end: close it to let the planter finish */
};

static struct planter plant_as(const struct user *u, const char *path, enum plant kind) {
        int ready[2], go[2], r = 0;
        struct planter pl;

        ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
        pl.pid = fork();
        ck_assert_int_ge(pl.pid, 0);
        if (pl.pid == 0) {
                int fd = -1;
                char c;

                close(ready[0]);
                close(go[1]);
                become(u);
                switch (kind) {
                case PLANT_FILE:
                        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                        r = fd >= 0 && write(fd, "junk\n", 5) == 5 ? 0 : -1;
                        break;
                case PLANT_FIFO:
                        r = mkfifo(path, 0666);
                        break;
                case PLANT_DIR:
                        r = mkdir(path, 0755);
                        break;
                case PLANT_DEAD_SOCKET:
                        fd = bind_socket(path, false);
                        r = fd >= 0 ? 0 : -1;
                        close(fd);
                        fd = -1;
                        break;
                case PLANT_LIVE_SOCKET:
                        fd = bind_socket(path, true);
                        r = fd >= 0 ? 0 : -1;
                        break;
                default:
                        r = -1;
                }
                if (r == 0)
                        (void) chmod(path, 0666);
                r = r < 0 ? -errno : 0;
                if (write(ready[1], &r, sizeof r) != sizeof r || r < 0)
                        child_exit(2);
                (void) !read(go[0], &c, 1);
                child_exit(kind == PLANT_LIVE_SOCKET && saw_connection(fd) ? 3 : 0);
        }
        close(ready[1]);
        close(go[0]);
        ck_assert_int_eq(read(ready[0], &r, sizeof r), (ssize_t) sizeof r);
        close(ready[0]);
        ck_assert_msg(r == 0, "cannot plant %s at %s: %s", plant_names[kind], path, strerror(-r));
        pl.go = go[1];
        return pl;
}

static void plant_finish(struct planter *pl, enum plant kind) {
        int st;

        close(pl->go);
        ck_assert_int_eq(waitpid(pl->pid, &st, 0), pl->pid);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 3,
                      "the process listening on %s got a connection meant for the primary",
                      plant_names[kind]);
}

/* Plants each kind of file at the old socket name ".NAME.sock" (as PLANTER), then
 * PRIMARY_USER's primary must be able to listen, and a sender of that user reach it. */
static void socket_campaign(const hc_options *opt, const char *dir, const char *prefix,
                            bool system_region, const struct user *planter,
                            const struct user *primary_user) {
        for (int k = 0; k < PLANTS; k++) {
                char name[64], path[600], what[200];
                struct planter pl;
                pid_t primary;
                int r;

                snprintf(name, sizeof name, "%ssock%d", prefix, k);
                snprintf(path, sizeof path, "%s/.%s.sock", dir, name);
                if (system_region)
                        ck_assert_int_eq(hc_create(name, HC_OPTIONS(.scope = HC_SCOPE_SYSTEM,
                                                                    .mode = 0666)), 1);
                pl = plant_as(planter, path, (enum plant) k);
                primary = spawn_primary(name, opt, primary_user, &r);
                ck_assert_msg(r == 0, "hc_listen with %s at the old socket name%s: %s",
                              plant_names[k], planter ? " (planted by another user)" : "",
                              strerror(-r));
                snprintf(what, sizeof what, "hc_send with %s at the old socket name",
                         plant_names[k]);
                expect_reply(name, opt, primary_user, primary, what);
                stop(primary);
                plant_finish(&pl, (enum plant) k);
        }
}

/* In the owner's own directory: whatever sits at the old socket name. */
START_TEST(test_hostile_socket_planted_owner)
{
        socket_campaign(TOPT(), test_dir, "", false, NULL, NULL);
}
END_TEST

/* In the shared sticky directory: files of user A at the old name; user B's primary. */
START_TEST(test_hostile_socket_planted_other_user)
{
        if (!need_root(__func__))
                return;
        socket_campaign(HC_OPTIONS(.scope = HC_SCOPE_SYSTEM), SYSTEM_DIR, sys_prefix, true, USER_A,
                        USER_B);
}
END_TEST

/* A primary of user A crashes; user B's later primary listens, and B's sender reaches it. */
START_TEST(test_hostile_socket_crashed_primary_other_user)
{
        const hc_options *so = HC_OPTIONS(.scope = HC_SCOPE_SYSTEM);
        char name[64];
        pid_t a, b;
        int r;

        if (!need_root(__func__))
                return;
        sys_name(name, sizeof name, "crashed");
        ck_assert_int_eq(hc_create(name, HC_OPTIONS(.scope = HC_SCOPE_SYSTEM, .mode = 0666)), 1);
        a = spawn_primary(name, so, USER_A, &r);
        ck_assert_msg(r == 0, "user A's primary cannot listen: %s", strerror(-r));
        stop(a);                  /* SIGKILL: whatever it had made stays behind */
        b = spawn_primary(name, so, USER_B, &r);
        ck_assert_msg(r == 0, "user B's primary cannot listen after user A's crashed: %s",
                      strerror(-r));
        expect_reply(name, so, USER_B, b, "user B's hc_send after user A's primary crashed");
        stop(b);
}
END_TEST

/*
 * User A plants a symlink at the old socket name to a socket that root listens on. User B's
 * hc_send must never get there: with no primary it fails, and with B's primary listening it
 * reaches that primary.
 */
START_TEST(test_hostile_socket_symlink_to_root_socket)
{
        const hc_options *so = HC_OPTIONS(.scope = HC_SCOPE_SYSTEM);
        struct send_ctx c = { .opt = *so };
        char name[64], link_path[600], target[600];
        int root_sock, r;
        pid_t b;

        if (!need_root(__func__))
                return;
        ck_assert_int_eq(chmod(test_dir, 0755), 0);
        snprintf(target, sizeof target, "%s/root.sock", test_dir);
        root_sock = bind_socket(target, true);
        ck_assert_int_ge(root_sock, 0);
        ck_assert_int_eq(chmod(target, 0666), 0);

        sys_name(name, sizeof name, "symlink");
        c.name = name;
        ck_assert_int_eq(hc_create(name, HC_OPTIONS(.scope = HC_SCOPE_SYSTEM, .mode = 0666)), 1);
        snprintf(link_path, sizeof link_path, "%s/.%s.sock", SYSTEM_DIR, name);
        {
                pid_t pid = fork();
                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        become(USER_A);
                        child_exit(symlink(target, link_path) == 0 ? 0 : 1);
                }
                ck_assert_int_eq(reap_bounded(pid, 5), 0);
        }

        /* nobody listens */
        box[0] = 1;
        run_bounded("user B's hc_send with no primary", USER_B, 10, send_ping, &c);
        ck_assert_msg(!saw_connection(root_sock),
                      "user B's hc_send (no primary) connected to root's socket through the "
                      "planted symlink (hc_send returned %d)", box[0]);
        ck_assert_msg(box[0] < 0, "user B's hc_send with no primary returned %d", box[0]);

        /* B's primary */
        b = spawn_primary(name, so, USER_B, &r);
        ck_assert_msg(r == 0, "user B's primary cannot listen with a symlink at the old "
                      "socket name: %s", strerror(-r));
        box[0] = 1;
        run_bounded("user B's hc_send to B's primary", USER_B, 10, send_ping, &c);
        ck_assert_msg(!saw_connection(root_sock),
                      "user B's hc_send connected to root's socket through the planted symlink");
        ck_assert_msg(box[0] == 0, "user B's hc_send to B's primary returned %s",
                      strerror(-box[0]));
        {
                char want[64];
                snprintf(want, sizeof want, "%d ping", (int) b);
                ck_assert_str_eq(note, want);
        }
        stop(b);
        close(root_sock);
}
END_TEST

/* ---- 5. Hard links -------------------------------------------------------------------- */

struct alias_ctx {
        const char *alias;
        hc_options opt;
};

/* box[0..3]: hc_join, hc_count, hc_list, hc_region_open on the alias. */
static void use_alias(void *arg) {
        const struct alias_ctx *a = arg;
        hc_options o = a->opt;
        hc_instance *v = NULL;
        hc_region *rg = NULL;
        hc_slot *s = NULL;

        o.max = 1;
        box[0] = hc_join(a->alias, &o, &s);
        box[1] = hc_count(a->alias, &o);
        box[2] = hc_list(a->alias, &o, &v);
        box[3] = hc_region_open(a->alias, &o, &rg);
        free(v);
        hc_region_close(rg);
        hc_leave(s);
}

static void expect_alias_refused(const struct alias_ctx *a, const struct user *u,
                                 const char *who) {
        static const char *const calls[] = { "hc_join", "hc_count", "hc_list", "hc_region_open" };

        run_bounded(who, u, 10, use_alias, (void *) a);
        for (int i = 0; i < 4; i++)
                ck_assert_msg(box[i] == -EPERM,
                              "%s on a hard link to a region (%s) returned %d (%s), "
                              "expected -EPERM", calls[i], who, box[i],
                              box[i] < 0 ? strerror(-box[i]) : "not an error");
}

/* Root links a root region under another name: the alias is no region. */
START_TEST(test_hostile_hard_link_owner)
{
        struct alias_ctx a = { .alias = "alias", .opt = *TOPT() };
        char orig[512], alias[512];
        pid_t holder;

        snprintf(orig, sizeof orig, "%s/orig", test_dir);
        snprintf(alias, sizeof alias, "%s/alias", test_dir);
        ck_assert_int_eq(hc_create("orig", TOPT()), 1);
        holder = hold_seat("orig", TOPT(.max = 1), NULL, NULL);
        ck_assert_int_eq(link(orig, alias), 0);
        expect_alias_refused(&a, NULL, "the owner");
        stop(holder);
}
END_TEST

/* User A links root's 0666 system region under another name; user B and root use it. */
START_TEST(test_hostile_hard_link_other_user)
{
        struct alias_ctx a = { .opt = *HC_OPTIONS(.scope = HC_SCOPE_SYSTEM) };
        char name[64], alias_name[64], orig[600], alias[600];
        pid_t holder, pid;

        if (!need_root(__func__))
                return;
        sys_name(name, sizeof name, "linked");
        sys_name(alias_name, sizeof alias_name, "linked-alias");
        sys_path(orig, sizeof orig, name);
        sys_path(alias, sizeof alias, alias_name);
        a.alias = alias_name;
        ck_assert_int_eq(hc_create(name, HC_OPTIONS(.scope = HC_SCOPE_SYSTEM, .mode = 0666)), 1);
        holder = hold_seat(name, HC_OPTIONS(.scope = HC_SCOPE_SYSTEM, .max = 1), NULL, NULL);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                become(USER_A);
                child_exit(link(orig, alias) == 0 ? 0 : 1);
        }
        ck_assert_msg(reap_bounded(pid, 5) == 0, "user A cannot hard-link the region");
        expect_alias_refused(&a, USER_B, "user B");
        expect_alias_refused(&a, NULL, "root");
        stop(holder);
}
END_TEST

/* ---- 6. Modes that would make a user's region writable by others --------------------- */

static char own_dir[512];

/* box[0..4]: creations with a mode others could write, in the user scope and in own_dir. */
static void create_open_modes(void *arg) {
        hc_slot *s = NULL;

        (void) arg;
        unsetenv("XDG_RUNTIME_DIR");
        unsetenv("HEADCOUNT_DIR");
        box[0] = hc_create("m0666", HC_OPTIONS(.mode = 0666));
        box[1] = hc_create("m0620", HC_OPTIONS(.mode = 0620));
        box[2] = hc_join("mjoin", HC_OPTIONS(.mode = 0666), &s);
        box[3] = hc_create("d0666", HC_OPTIONS(.dir = own_dir, .mode = 0666));
        box[4] = hc_create("d0620", HC_OPTIONS(.dir = own_dir, .mode = 0620));
        hc_leave(s);
}

/* Entries of DIR (whose name contains WITH, when not NULL), counted and listed in BUF. */
static unsigned entries_with(const char *dir, const char *with, char *buf, size_t len) {
        DIR *d = opendir(dir);
        struct dirent *de;
        unsigned n = 0;
        size_t o = 0;

        buf[0] = '\0';
        if (!d)
                return 0;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
                    (!with || strstr(de->d_name, with))) {
                        n++;
                        if (o < len)
                                o += (size_t) snprintf(buf + o, len - o, " %s", de->d_name);
                }
        closedir(d);
        return n;
}

static unsigned entries_of(const char *dir, char *buf, size_t len) {
        return entries_with(dir, NULL, buf, len);
}

START_TEST(test_hostile_user_scope_mode)
{
        static const char *const calls[] = {
                "hc_create mode 0666 (user scope)", "hc_create mode 0620 (user scope)",
                "hc_join mode 0666 (user scope, creating)", "hc_create mode 0666 (own --dir)",
                "hc_create mode 0620 (own --dir)",
        };
        const struct user *u = NULL;
        char shm[64], list[512];

        if (geteuid() == 0) {
                if (!need_root(__func__))
                        return;
                u = USER_A;
        }
        ck_assert_int_eq(chmod(test_dir, 0755), 0);
        snprintf(own_dir, sizeof own_dir, "%s/own", test_dir);
        ck_assert_int_eq(mkdir(own_dir, 0700), 0);
        if (u)
                ck_assert_int_eq(chown(own_dir, u->uid, u->gid), 0);
        snprintf(shm, sizeof shm, "/dev/shm/headcount-%u", (unsigned) (u ? u->uid : geteuid()));
        for (int i = 0; i < 5; i++)
                box[i] = 1;
        run_bounded("creating with modes others could write", u, 10, create_open_modes, NULL);
        for (int i = 0; i < 5; i++)
                ck_assert_msg(box[i] == -EINVAL, "%s returned %d, expected -EINVAL", calls[i],
                              box[i]);
        ck_assert_msg(entries_of(own_dir, list, sizeof list) == 0, "left in the directory:%s",
                      list);
        /* the user's own scope may hold other regions when we are not root */
        ck_assert_msg(entries_with(shm, "m0666", list, sizeof list) == 0 &&
                      entries_with(shm, "m0620", list, sizeof list) == 0 &&
                      entries_with(shm, "mjoin", list, sizeof list) == 0, "left in %s:%s", shm,
                      list);
}
END_TEST

/* ---- 7. The descriptor that holds a seat ---------------------------------------------- */

static void seat_fd_is_not_region(const char *what, int fd, const char *path) {
        struct stat a, b;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fstat(fd, &a), 0);
        ck_assert_int_eq(stat(path, &b), 0);
        ck_assert_msg(a.st_dev != b.st_dev || a.st_ino != b.st_ino,
                      "%s: the seat's descriptor is the region file itself", what);
}

START_TEST(test_hostile_seat_fd_not_region)
{
        char path[512];
        hc_region *rg = NULL;
        hc_slot *s = NULL, *t = NULL;

        snprintf(path, sizeof path, "%s/seat", test_dir);
        ck_assert_int_eq(hc_join("seat", TOPT(.flags = HC_INHERIT), &s), 0);
        seat_fd_is_not_region("hc_join", hc_slot_fd(s), path);
        ck_assert_int_eq(hc_region_open("seat", TOPT(), &rg), 0);
        ck_assert_int_eq(hc_region_join(rg, TOPT(.max = 2, .flags = HC_INHERIT), &t), 0);
        seat_fd_is_not_region("hc_region_join", hc_slot_fd(t), path);
        hc_leave(t);
        hc_leave(s);
        hc_region_close(rg);
}
END_TEST

static void region_still_works(void *arg) {
        const struct target *t = arg;
        hc_instance *v = NULL;
        hc_region *rg = NULL;
        hc_slot *s = NULL;
        int r;

        if ((r = hc_count(t->name, TOPT())) != 1)
                child_fail("hc_count: %d, expected 1", r);
        if ((r = hc_list(t->name, TOPT(), &v)) != 1)
                child_fail("hc_list: %d, expected 1", r);
        if (v[0].pid != t->expect_pid || (v[0].flags & HC_INSTANCE_NO_RECORD))
                child_fail("hc_list: pid %d, flags %#x, expected pid %d", (int) v[0].pid,
                           v[0].flags, (int) t->expect_pid);
        free(v);
        if ((r = hc_join(t->name, TOPT(.max = 2), &s)) != 0)
                child_fail("hc_join: %s", strerror(-r));
        if ((r = hc_count(t->name, TOPT())) != 2)
                child_fail("hc_count with a second seat: %d", r);
        s = hc_leave(s);
        if ((r = hc_region_open(t->name, TOPT(), &rg)) != 0)
                child_fail("hc_region_open: %s", strerror(-r));
        if ((r = hc_region_join(rg, TOPT(.max = 2), &s)) != 0)
                child_fail("hc_region_join: %s", strerror(-r));
        if ((r = hc_region_count(rg)) != 2)
                child_fail("hc_region_count: %d", r);
        s = hc_leave(s);
        if ((r = hc_region_count(rg)) != 1)
                child_fail("hc_region_count after leaving: %d", r);
        hc_region_close(rg);
}

/* 4 KiB of garbage written through the seat's descriptor change nothing. */
START_TEST(test_hostile_seat_fd_garbage)
{
        struct target t = { .name = "seatjunk", .expect_pid = getpid() };
        unsigned char junk[4096];
        hc_slot *s = NULL;

        ck_assert_int_eq(hc_join(t.name, TOPT(.flags = HC_INHERIT, .tag = "mine"), &s), 0);
        fill_random(junk, sizeof junk, 7);
        (void) !pwrite(hc_slot_fd(s), junk, sizeof junk, 0);
        run_bounded("the region after garbage through the seat's descriptor", NULL, 10,
                    region_still_works, &t);
        hc_leave(s);
        ck_assert_int_eq(hc_count(t.name, TOPT()), 0);
}
END_TEST

/* ---- 8. Closed standard descriptors --------------------------------------------------- */

static void closed_stdio(void *arg) {
        char path_c[600], path_d[600];
        struct stat sc, sd;
        hc_listener *l = NULL;
        hc_region *rg = NULL;
        hc_instance *v = NULL;
        hc_slot *s = NULL, *t = NULL;
        size_t o = 0;
        int r;

        (void) arg;
        close(0);
        close(1);
        close(2);
        if ((r = hc_create("stdio-made", TOPT())) != 1)
                child_fail("hc_create: %d", r);
        if ((r = hc_join("stdio", TOPT(.max = 4), &s)) != 0)
                child_fail("hc_join: %d", r);
        if ((r = hc_region_open("stdio", TOPT(), &rg)) != 0)
                child_fail("hc_region_open: %d", r);
        if ((r = hc_region_join(rg, TOPT(.max = 4), &t)) != 0)
                child_fail("hc_region_join: %d", r);
        if ((r = hc_count("stdio", TOPT())) != 2)
                child_fail("hc_count: %d", r);
        if ((r = hc_list("stdio", TOPT(), &v)) != 2)
                child_fail("hc_list: %d", r);
        free(v);
        if ((r = hc_wait("stdio", TOPT(), 100, 0)) != 2)
                child_fail("hc_wait: %d", r);
        if ((r = hc_listen("stdio", TOPT(), s, &l)) != 0)
                child_fail("hc_listen: %d", r);

        snprintf(path_c, sizeof path_c, "%s/stdio", test_dir);
        snprintf(path_d, sizeof path_d, "%s/stdio-made", test_dir);
        if (stat(path_c, &sc) < 0 || stat(path_d, &sd) < 0)
                child_fail("the regions are missing");
        note[0] = '\0';
        for (int fd = 0; fd <= 2; fd++) {
                char link[64], target[600] = "";
                struct stat st;
                ssize_t n;

                if (fstat(fd, &st) < 0)
                        continue;         /* still closed */
                snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
                n = readlink(link, target, sizeof target - 1);
                target[n > 0 ? n : 0] = '\0';
                if (strncmp(target, test_dir, strlen(test_dir)) == 0 ||
                    (st.st_dev == sc.st_dev && st.st_ino == sc.st_ino) ||
                    (st.st_dev == sd.st_dev && st.st_ino == sd.st_ino))
                        o += (size_t) snprintf(note + o, NOTE_MAX - o, "fd %d is %s; ", fd, target);
        }
        if (o > 0)
                child_exit(1);
        hc_listener_free(l);
        hc_leave(t);
        hc_leave(s);
        hc_region_close(rg);
}

START_TEST(test_hostile_closed_stdio)
{
        run_bounded("a process with fds 0, 1 and 2 closed", NULL, 10, closed_stdio, NULL);
}
END_TEST

/* ---- 9. Directory checks on every call ------------------------------------------------ */

/* A directory others may write to without the sticky bit is refused by every call. */
START_TEST(test_hostile_dir_world_writable)
{
        hc_region *rg = NULL;
        hc_instance *v = NULL;
        hc_slot *s = NULL;
        int r[5];

        ck_assert_int_eq(hc_create("open", TOPT()), 1);
        ck_assert_int_eq(chmod(test_dir, 0777), 0);
        r[0] = hc_join("open", TOPT(), &s);
        r[1] = hc_count("open", TOPT());
        r[2] = hc_list("open", TOPT(), &v);
        r[3] = hc_wait("open", TOPT(), 1, 0);
        r[4] = hc_region_open("open", TOPT(), &rg);
        hc_leave(s);
        free(v);
        hc_region_close(rg);
        ck_assert_int_eq(chmod(test_dir, 0700), 0);
        ck_assert_msg(r[0] == -EPERM && r[1] == -EPERM && r[2] == -EPERM && r[3] == -EPERM &&
                      r[4] == -EPERM,
                      "in a 0777 directory: hc_join %d, hc_count %d, hc_list %d, hc_wait %d, "
                      "hc_region_open %d; expected -EPERM (%d) from each",
                      r[0], r[1], r[2], r[3], r[4], -EPERM);
}
END_TEST

#define SCOPE_CALLS 12

static int names_cb(const char *name, int count, void *userdata) {
        (void) name;
        (void) count;
        (void) userdata;
        return 0;
}

static void every_call_user_default(void *arg) {
        hc_region *rg = NULL;
        hc_instance *v = NULL, in;
        hc_slot *s = NULL;

        (void) arg;
        unsetenv("XDG_RUNTIME_DIR");
        unsetenv("HEADCOUNT_DIR");
        box[0] = hc_join("web", NULL, &s);
        box[1] = hc_create("web2", NULL);
        box[2] = hc_count("web", NULL);
        box[3] = hc_count_approx("web", NULL);
        box[4] = hc_list("web", NULL, &v);
        box[5] = hc_primary("web", NULL, &in);
        box[6] = hc_wait("web", NULL, 1, 0);
        box[7] = hc_reap("web", NULL);
        box[8] = hc_remove("web", NULL);
        box[9] = hc_region_open("web", NULL, &rg);
        box[10] = hc_names(NULL, names_cb, NULL);
        box[11] = hc_send("web", HC_OPTIONS(.timeout_ms = 1000), "x", 1, NULL, NULL);
        hc_leave(s);
        free(v);
        hc_region_close(rg);
}

static void plant_symlink(void *arg) {
        const char *const *p = arg;

        if (symlink(p[0], p[1]) < 0)
                child_fail("cannot plant %s: %s", p[1], strerror(errno));
}

/*
 * With XDG_RUNTIME_DIR and HEADCOUNT_DIR unset, user A's scope is /dev/shm/headcount-UID.
 * User B plants a symlink there, to a directory that A owns and to one of B's own: every
 * call of A refuses it.
 */
START_TEST(test_hostile_dir_user_default_symlink)
{
        static const char *const calls[SCOPE_CALLS] = {
                "hc_join", "hc_create", "hc_count", "hc_count_approx", "hc_list", "hc_primary",
                "hc_wait", "hc_reap", "hc_remove", "hc_region_open", "hc_names", "hc_send",
        };
        char shm[64], targets[2][600], list[512];

        if (!need_root(__func__))
                return;
        ck_assert_int_eq(chmod(test_dir, 0755), 0);
        snprintf(shm, sizeof shm, "/dev/shm/headcount-%u", (unsigned) USER_A->uid);
        rm_tree(shm);
        snprintf(targets[0], sizeof targets[0], "%s/a-owned", test_dir);
        snprintf(targets[1], sizeof targets[1], "%s/b-owned", test_dir);
        ck_assert_int_eq(mkdir(targets[0], 0700), 0);
        ck_assert_int_eq(chown(targets[0], USER_A->uid, USER_A->gid), 0);
        ck_assert_int_eq(mkdir(targets[1], 0777), 0);
        ck_assert_int_eq(chown(targets[1], USER_B->uid, USER_B->gid), 0);
        for (int k = 0; k < 2; k++) {
                const char *p[2] = { targets[k], shm };

                run_bounded("planting the symlink", USER_B, 5, plant_symlink, p);
                for (int i = 0; i < SCOPE_CALLS; i++)
                        box[i] = 1;
                run_bounded("user A's calls", USER_A, 10, every_call_user_default, NULL);
                ck_assert_int_eq(unlink(shm), 0);
                for (int i = 0; i < SCOPE_CALLS; i++)
                        ck_assert_msg(box[i] == -EPERM,
                                      "%s with %s a symlink to a directory of %s returned %d "
                                      "(%s), expected -EPERM", calls[i], shm,
                                      k == 0 ? "user A" : "user B", box[i],
                                      box[i] < 0 ? strerror(-box[i]) : "not an error");
                ck_assert_msg(entries_of(targets[k], list, sizeof list) == 0,
                              "made in the symlink's target:%s", list);
        }
}
END_TEST

/* ---- 10. The primary's order, whatever the clocks say --------------------------------- */

/*
 * A joins; then B joins from a time namespace whose CLOCK_MONOTONIC runs far behind ours.
 * A stays the primary. box[0]: B's join result, box[1]: B's pid, box[2]: 77 = no time
 * namespaces.
 */
static void join_in_past(void *arg) {
        long long offset = *(const long long *) arg;
        pid_t gc;
        int fd, st;
        char buf[64];

        if (unshare(CLONE_NEWTIME) < 0) {
                box[2] = 77;
                snprintf(note, NOTE_MAX, "unshare(CLONE_NEWTIME): %s", strerror(errno));
                return;
        }
        fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
        snprintf(buf, sizeof buf, "monotonic %lld 0\n", -offset);
        if (fd < 0 || write(fd, buf, strlen(buf)) != (ssize_t) strlen(buf)) {
                box[2] = 77;
                snprintf(note, NOTE_MAX, "timens_offsets: %s", strerror(errno));
                return;
        }
        close(fd);
        gc = fork();
        if (gc < 0)
                child_fail("fork: %s", strerror(errno));
        if (gc == 0) {
                hc_slot *s = NULL;

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                box[3] = (int) (mono_usec() / 1000000);
                box[0] = hc_join("prim", TOPT(.max = 2, .tag = "B"), &s);
                box[1] = (int) getpid();
                box[4] = 1;       /* joined */
                for (;;)
                        pause();
        }
        while (!box[4])
                usleep(1000);
        /* keep B holding until we are killed */
        (void) waitpid(gc, &st, 0);
}

START_TEST(test_hostile_primary_time_namespace)
{
        long long offset = mono_usec() / 1000000 - 3;
        hc_instance in, *v = NULL;
        hc_slot *a = NULL;
        pid_t child;
        int n;

        if (geteuid() != 0) {
                fprintf(stderr, "hostile: SKIP %s: needs root (time namespace)\n", __func__);
                return;
        }
        if (offset < 10) {
                fprintf(stderr, "hostile: SKIP %s: the machine has been up for less than 13 s\n",
                        __func__);
                return;
        }
        ck_assert_int_eq(hc_join("prim", TOPT(.max = 2, .tag = "A"), &a), 0);
        box[0] = box[1] = box[2] = box[4] = 0;
        child = fork_bounded(NULL, 30, join_in_past, &offset);
        /* as long as the child's own alarm: the bound is for a hang */
        for (long long end = mono_usec() + 30000000; !box[4] && !box[2] && mono_usec() < end;)
                usleep(1000);
        if (box[2] == 77) {
                reap_bounded(child, 30);
                fprintf(stderr, "hostile: SKIP %s: no time namespaces (%s)\n", __func__, note);
                hc_leave(a);
                return;
        }
        ck_assert_msg(box[4], "B did not join");
        ck_assert_msg(box[0] == 0, "B's join failed: %s", strerror(-box[0]));
        ck_assert_msg(box[3] < 30, "B's CLOCK_MONOTONIC reads %d s: the offset was not applied",
                      box[3]);
        ck_assert_int_eq(hc_primary("prim", TOPT(), &in), 0);
        n = hc_list("prim", TOPT(), &v);
        stop(child);
        ck_assert_int_eq(n, 2);
        ck_assert_msg(in.pid == getpid(),
                      "the primary is pid %d (B = %d), expected A = %d: a clock decided the order",
                      (int) in.pid, box[1], (int) getpid());
        ck_assert_int_eq(hc_slot_is_primary("prim", TOPT(), a), 1);
        ck_assert_uint_eq(in.slot, hc_slot_index(a));
        free(v);
        hc_leave(a);
}
END_TEST

/* ---- 11. Records others could have written -------------------------------------------- */

/* User A's seat in root's 0666 region is listed as unverified; in a 0600 region of ours,
 * our own seat is not. */
START_TEST(test_hostile_unverified_records)
{
        char name[64];
        hc_instance *v = NULL;
        pid_t holder;
        int seat, n;

        /* a region nobody else may write: verified */
        ck_assert_int_eq(hc_create("private", TOPT(.mode = 0600)), 1);
        holder = hold_seat("private", TOPT(), NULL, &seat);
        n = hc_list("private", TOPT(), &v);
        ck_assert_int_eq(n, 1);
        ck_assert_msg(!(v[0].flags & HC_INSTANCE_UNVERIFIED),
                      "a seat in a 0600 region of our own is listed as unverified");
        ck_assert_int_eq(v[0].pid, holder);
        free(v);
        v = NULL;
        stop(holder);

        if (!need_root(__func__))
                return;
        sys_name(name, sizeof name, "forgeable");
        ck_assert_int_eq(hc_create(name, HC_OPTIONS(.scope = HC_SCOPE_SYSTEM, .mode = 0666)), 1);
        holder = hold_seat(name, HC_OPTIONS(.scope = HC_SCOPE_SYSTEM, .max = 4), USER_A, &seat);
        n = hc_list(name, HC_OPTIONS(.scope = HC_SCOPE_SYSTEM), &v);
        stop(holder);
        ck_assert_int_eq(n, 1);
        ck_assert_uint_eq(v[0].slot, (unsigned) seat);
        ck_assert_msg(v[0].flags & HC_INSTANCE_UNVERIFIED,
                      "user A's seat in a region others may write is not flagged unverified "
                      "(flags %#x)", v[0].flags);
        free(v);
}
END_TEST

/* A holder in another PID namespace is listed with HC_INSTANCE_OTHER_PIDNS. */
static void join_in_pidns(void *arg) {
        pid_t gc;
        int st;

        (void) arg;
        if (unshare(CLONE_NEWPID) < 0) {
                box[2] = 77;
                return;
        }
        gc = fork();
        if (gc < 0)
                child_fail("fork: %s", strerror(errno));
        if (gc == 0) {
                hc_slot *s = NULL;

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                box[0] = hc_join("ns", TOPT(.tag = "in a namespace"), &s);
                box[1] = (int) getpid();
                box[4] = 1;
                for (;;)
                        pause();
        }
        box[3] = (int) gc;
        (void) waitpid(gc, &st, 0);
}

START_TEST(test_hostile_other_pid_namespace)
{
        hc_instance *v = NULL;
        pid_t child;
        int n;

        if (geteuid() != 0) {
                fprintf(stderr, "hostile: SKIP %s: needs root (PID namespace)\n", __func__);
                return;
        }
        box[0] = box[1] = box[2] = box[3] = box[4] = 0;
        child = fork_bounded(NULL, 30, join_in_pidns, NULL);
        /* as long as the child's own alarm: the bound is for a hang */
        for (long long end = mono_usec() + 30000000; !box[4] && !box[2] && mono_usec() < end;)
                usleep(1000);
        if (box[2] == 77) {
                reap_bounded(child, 30);
                fprintf(stderr, "hostile: SKIP %s: no PID namespaces\n", __func__);
                return;
        }
        ck_assert_msg(box[4] && box[0] == 0, "the holder in a PID namespace did not join");
        n = hc_list("ns", TOPT(), &v);
        if (box[3] > 0)
                (void) kill(box[3], SIGKILL);
        stop(child);
        ck_assert_int_eq(n, 1);
        ck_assert_int_eq(v[0].pid, 1);
        ck_assert_msg(v[0].flags & HC_INSTANCE_OTHER_PIDNS,
                      "a holder in another PID namespace is listed without "
                      "HC_INSTANCE_OTHER_PIDNS (flags %#x)", v[0].flags);
        free(v);
}
END_TEST

/* ---- Crash safety on the paths above -------------------------------------------------- */

static void soak_lister(void *arg) {
        hc_region *rg = NULL;
        int r;

        (void) arg;
        if ((r = hc_region_open("soak", TOPT(), &rg)) != 0)
                child_fail("lister: hc_region_open: %d", r);
        while (!box[0]) {
                hc_instance *v = NULL;

                if ((r = hc_region_list(rg, &v)) < 0 || r > 8)
                        child_fail("lister: hc_region_list: %d", r);
                free(v);
                v = NULL;
                if ((r = hc_list("soak", TOPT(), &v)) < 0 || r > 8)
                        child_fail("lister: hc_list: %d", r);
                free(v);
                if ((r = hc_region_count(rg)) < 0 || r > 8)
                        child_fail("lister: hc_region_count: %d", r);
                if ((r = hc_count("soak", TOPT())) < 0 || r > 8)
                        child_fail("lister: hc_count: %d", r);
                box[1]++;
        }
        hc_region_close(rg);
}

static _Noreturn void soak_worker(unsigned seed) {
        hc_region *rg = NULL;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (hc_region_open("soak", TOPT(), &rg) != 0)
                child_exit(2);
        for (;;) {
                hc_slot *s = NULL;

                seed = seed * 1103515245u + 12345u;
                if ((seed >> 16) & 1) {
                        if (hc_region_join(rg, TOPT(.max = 8, .tag = "worker"), &s) == 0)
                                s = hc_leave(s);
                } else if (hc_join("soak", TOPT(.max = 8, .tag = "worker"), &s) == 0)
                        s = hc_leave(s);
        }
}

/* Processes that join and leave in a loop are killed at random moments while another lists
 * the region: nothing is left held, and the lister never sees an error. */
START_TEST(test_hostile_kill_while_listing)
{
        unsigned seed = (unsigned) time(NULL) ^ (unsigned) getpid();
        hc_instance *v = NULL;
        pid_t lister;
        int n;

        ck_assert_int_eq(hc_create("soak", TOPT(.capacity = 8)), 1);
        box[0] = box[1] = 0;
        lister = fork_bounded(NULL, 60, soak_lister, NULL);
        for (int i = 0; i < 150; i++) {
                pid_t w[2];

                for (int k = 0; k < 2; k++) {
                        seed = seed * 1103515245u + 12345u;
                        w[k] = fork();
                        ck_assert_int_ge(w[k], 0);
                        if (w[k] == 0)
                                soak_worker(seed);
                }
                seed = seed * 1103515245u + 12345u;
                usleep(1000 + (seed >> 16) % 8000);
                for (int k = 0; k < 2; k++) {
                        int st;
                        ck_assert_int_eq(kill(w[k], SIGKILL), 0);
                        ck_assert_int_eq(waitpid(w[k], &st, 0), w[k]);
                        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                                      "a worker ended by itself (status %#x)", st);
                }
        }
        box[0] = 1;
        check_status("the lister", reap_bounded(lister, 60), 60);
        ck_assert_int_gt(box[1], 0);
        ck_assert_int_eq(hc_count("soak", TOPT()), 0);
        n = hc_list("soak", TOPT(), &v);
        ck_assert_int_eq(n, 0);
        free(v);
        ck_assert_int_ge(hc_reap("soak", TOPT()), 0);
        ck_assert_int_eq(hc_count("soak", TOPT()), 0);
        ck_assert_int_eq(hc_remove("soak", TOPT()), 0);
}
END_TEST

static TCase *hostile_tcase(const char *name, int timeout_s) {
        TCase *tc = tcase_new(name, timeout_s);

        tcase_add_checked_fixture(tc, note_setup, NULL);
        tcase_add_unchecked_fixture(tc, users_setup, users_teardown);
        return tc;
}

Suite *suite_hostile(void) {
        Suite *s = suite_create("hostile");
        TCase *tc;

        tc = hostile_tcase("garbage", 600);
        tcase_add_test(tc, test_hostile_garbage_owner);
        tcase_add_test(tc, test_hostile_garbage_other_user);
        suite_add_tcase(s, tc);

        tc = hostile_tcase("truncate", 120);
        tcase_add_test(tc, test_hostile_truncate_zero_owner);
        tcase_add_test(tc, test_hostile_truncate_half_owner);
        tcase_add_test(tc, test_hostile_truncate_zero_other_user);
        tcase_add_test(tc, test_hostile_truncate_half_other_user);
        tcase_add_test(tc, test_hostile_full_filesystem);
        suite_add_tcase(s, tc);

        tc = hostile_tcase("socket", 120);
        tcase_add_test(tc, test_hostile_socket_planted_owner);
        tcase_add_test(tc, test_hostile_socket_planted_other_user);
        tcase_add_test(tc, test_hostile_socket_crashed_primary_other_user);
        tcase_add_test(tc, test_hostile_socket_symlink_to_root_socket);
        suite_add_tcase(s, tc);

        tc = hostile_tcase("trust", 120);
        tcase_add_test(tc, test_hostile_hard_link_owner);
        tcase_add_test(tc, test_hostile_hard_link_other_user);
        tcase_add_test(tc, test_hostile_user_scope_mode);
        tcase_add_test(tc, test_hostile_seat_fd_not_region);
        tcase_add_test(tc, test_hostile_seat_fd_garbage);
        tcase_add_test(tc, test_hostile_closed_stdio);
        tcase_add_test(tc, test_hostile_dir_world_writable);
        tcase_add_test(tc, test_hostile_dir_user_default_symlink);
        suite_add_tcase(s, tc);

        tc = hostile_tcase("records", 120);
        tcase_add_test(tc, test_hostile_primary_time_namespace);
        tcase_add_test(tc, test_hostile_unverified_records);
        tcase_add_test(tc, test_hostile_other_pid_namespace);
        tcase_add_test(tc, test_hostile_kill_while_listing);
        suite_add_tcase(s, tc);
        return s;
}
