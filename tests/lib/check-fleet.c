/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fleet scope through the library, against the real thing: a private etcd (Debian's
 * /usr/bin/etcd) on free loopback ports with its data in a scratch directory, and two
 * headcountd agents, "h1" and "h2", each serving its own local scope directory, as two
 * hosts would. Joins, BUSY, leaves, ranks and fences, counts, lists, waits, names,
 * removal, a holder's death, and losing a seat (etcd stopped, the agent killed).
 *
 * Everything started here is killed by PID at the end (and with the test program, by
 * PR_SET_PDEATHSIG). Skips (77) without etcd, or without a headcountd that serves the
 * fleet scope (configure --disable-daemon or --disable-fleet). Waits are on conditions,
 * each bounded by a minute for a loaded machine; nothing asserts a duration.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "etcd-launch.h"
#include "headcount.h"

#ifndef HC_TEST_BUILDDIR
#define HC_TEST_BUILDDIR "."
#endif
#define HEADCOUNTD HC_TEST_BUILDDIR "/daemon/headcountd"
#define ETCD_BIN "/usr/bin/etcd"
#define BOUND_USEC (60LL * 1000 * 1000)

static char base[] = "/tmp/check-fleet-XXXXXX";
static char dir1[64], dir2[64], etcd_dir[64], etcd_url[256];
static struct etcd_launch cluster;
static pid_t etcd_pid, agent1_pid, agent2_pid;  /* etcd_pid: the member */

#define H1(...) HC_OPTIONS(.scope = HC_SCOPE_FLEET, .dir = dir1, __VA_ARGS__)
#define H2(...) HC_OPTIONS(.scope = HC_SCOPE_FLEET, .dir = dir2, __VA_ARGS__)

static long long now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- The world: etcd and two agents ---- */

/* Starts ARGV with its output in LOG; it dies with us. */
static pid_t start(const char *log, char *const argv[]) {
        pid_t pid = fork();

        if (pid == 0) {
                int out = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (out < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
                        _exit(127);
                execv(argv[0], argv);
                _exit(127);
        }
        return pid;
}

/* Whether PID still runs (a forked test asks about its parent's children too). */
static bool alive(pid_t pid) {
        return pid > 0 && waitpid(pid, NULL, WNOHANG) <= 0 && kill(pid, 0) == 0;
}

/* Whether task TID of PID is gone or a zombie. */
static bool task_ended(pid_t pid, const char *tid) {
        char path[384], buf[512], *s;
        FILE *f;
        size_t n;

        (void) snprintf(path, sizeof path, "/proc/%d/task/%s/stat", (int) pid, tid);
        f = fopen(path, "re");
        if (!f)
                return true;
        n = fread(buf, 1, sizeof buf - 1, f);
        (void) fclose(f);
        buf[n] = '\0';
        s = strrchr(buf, ')');            /* the command name may hold anything */
        return n == 0 || (s && (s[2] == 'Z' || s[2] == 'X'));
}

/* Waits until PID has exited: every thread of it gone or a zombie (its descriptors are all
 * closed then: the leader of a process with threads, as headcountd --etcd, is a zombie
 * while another thread still holds them). A forked test cannot reap its parent's
 * children, so it looks at /proc. */
static bool exited(pid_t pid) {
        long long deadline = now_usec() + BOUND_USEC;
        char path[64];

        (void) snprintf(path, sizeof path, "/proc/%d/task", (int) pid);
        while (now_usec() < deadline) {
                DIR *d = opendir(path);
                struct dirent *de;
                bool live = false;

                if (!d)
                        return true;
                while ((de = readdir(d)) && !live)
                        if (de->d_name[0] != '.' && !task_ended(pid, de->d_name))
                                live = true;
                (void) closedir(d);
                if (!live)
                        return true;
                (void) usleep(20000);
        }
        return false;
}

/* Waits until the agent in DIR answers a count (it holds its etcd lease by then). */
/* The agent in DIR serves, and holds a lease: a try-once join needs one. */
static bool agent_ready(const char *dir, pid_t pid) {
        long long deadline = now_usec() + BOUND_USEC;

        while (now_usec() < deadline && alive(pid)) {
                if (hc_fleet_status(HC_OPTIONS(.scope = HC_SCOPE_FLEET, .dir = dir), NULL, 0) ==
                    HC_FLEET_HELD)
                        return true;
                (void) usleep(20000);
        }
        return false;
}

static pid_t start_agent(const char *dir, const char *host) {
        char log[128];
        pid_t pid;

        (void) snprintf(log, sizeof log, "%s/%s.log", base, host);
        pid = start(log, (char *[]) { (char *) HEADCOUNTD, "--dir", (char *) dir, "--bus=none",
                                      "--log-target=stderr", "--etcd", etcd_url, "--host",
                                      (char *) host, NULL });
        if (pid < 0 || !agent_ready(dir, pid)) {
                fprintf(stderr, "headcountd for %s did not start serving; see %s\n", host, log);
                return -1;
        }
        return pid;
}

/* Starts etcd (tests/common/etcd-launch.h) and waits until it serves. */
static int etcd_start(void) {
        (void) snprintf(etcd_dir, sizeof etcd_dir, "%s/etcd", base);
        if (mkdir(etcd_dir, 0700) < 0 || etcd_launch(&cluster, etcd_dir, 1, NULL) < 0)
                return -1;
        (void) snprintf(etcd_url, sizeof etcd_url, "%s", cluster.endpoints);
        etcd_pid = cluster.pid[0];
        return 0;
}

static int world_start(void) {
        if (!mkdtemp(base))
                return -1;
        (void) snprintf(dir1, sizeof dir1, "%s/h1", base);
        (void) snprintf(dir2, sizeof dir2, "%s/h2", base);
        if (mkdir(dir1, 0700) < 0 || mkdir(dir2, 0700) < 0)
                return -1;
        if (etcd_start() < 0)
                return -1;
        /* the agents wait for etcd themselves: a first count answers once both are up */
        agent1_pid = start_agent(dir1, "h1");
        agent2_pid = start_agent(dir2, "h2");
        return agent1_pid > 0 && agent2_pid > 0 ? 0 : -1;
}

static void world_stop(void) {
        pid_t pids[] = { agent1_pid, agent2_pid, etcd_pid };
        char cmd[128];

        for (size_t i = 0; i < sizeof pids / sizeof pids[0]; i++)
                if (pids[i] > 0) {
                        (void) kill(pids[i], SIGCONT);
                        (void) kill(pids[i], SIGKILL);
                        (void) waitpid(pids[i], NULL, 0);
                }
        etcd_launch_stop(&cluster);
        (void) snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
        if (!strstr(base, "XXXXXX"))
                (void) !system(cmd);
}

/* Waits until the count of NAME (as the agent in DIR sees it) is WANT. */
static void count_becomes(const char *dir, const char *name, int want) {
        long long deadline = now_usec() + BOUND_USEC;
        int n;

        while ((n = hc_count(name, HC_OPTIONS(.scope = HC_SCOPE_FLEET, .dir = dir))) != want) {
                ck_assert_msg(now_usec() < deadline, "count of '%s' stays %d, not %d", name, n, want);
                (void) usleep(20000);
        }
}

/* Waits until etcd holds a seat key of NAME for process PID: a waiter has a key but no
 * seat, so only etcd itself shows it (the agent's counts and lists stop at N). The keys
 * are PREFIX NAME/s/HOST/BOOTID/PID.SERIAL (docs/fleet.md). */
static void waiter_listed(const char *name, pid_t pid) {
        long long deadline = now_usec() + BOUND_USEC;
        char cmd[512], needle[32], line[1024];

        (void) snprintf(cmd, sizeof cmd, "etcdctl --endpoints=%s get --prefix --keys-only "
                        "/headcount/%s/s/ 2>/dev/null", etcd_url, name);
        (void) snprintf(needle, sizeof needle, "/%d.", (int) pid);
        for (;;) {
                bool found = false;
                FILE *f = popen(cmd, "r");

                ck_assert_ptr_nonnull(f);
                while (fgets(line, sizeof line, f))
                        found |= strstr(line, needle) != NULL;
                (void) pclose(f);
                if (found)
                        return;
                ck_assert_msg(now_usec() < deadline, "pid %d never waited for '%s'", (int) pid, name);
                (void) usleep(20000);
        }
}

/* ---- The tests ---- */

/* Two hosts share N = 2: ranks and fences in order of arrival, the third is BUSY, and a
 * seat given back on one host is free for the other. */
START_TEST(test_fleet_join_busy_leave)
{
        hc_slot *a = NULL, *b = NULL, *c = NULL;
        uint64_t fa, fb;
        int fd;

        ck_assert_int_eq(hc_join("jbl", H1(.max = 2, .tag = "first"), &a), 0);
        ck_assert_int_eq(hc_join("jbl", H2(.max = 2, .tag = "second"), &b), 0);
        ck_assert_uint_eq(hc_slot_index(a), 0);
        ck_assert_uint_eq(hc_slot_index(b), 1);
        ck_assert_int_eq(hc_slot_fence(a, &fa), 0);
        ck_assert_int_eq(hc_slot_fence(b, &fb), 0);
        ck_assert_uint_gt(fb, fa);
        ck_assert_uint_eq(hc_slot_seq(a), fa);
        ck_assert_int_eq(hc_join("jbl", H1(.max = 2), &c), -EBUSY);
        ck_assert_ptr_null(c);
        ck_assert_int_eq(hc_count("jbl", H1()), 2);
        ck_assert_int_eq(hc_count("jbl", H2()), 2);
        ck_assert_int_eq(hc_slot_is_primary("jbl", H2(), a), 1);
        ck_assert_int_eq(hc_slot_is_primary("jbl", H2(), b), 0);

        /* the seat is a descriptor above stdio, close-on-exec without HC_INHERIT */
        fd = hc_slot_fd(a);
        ck_assert_int_gt(fd, 2);
        ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        ck_assert_int_eq(hc_slot_lost(a), 0);
        /* a fleet seat has no region: no handle, no listener, no local primary */
        ck_assert_ptr_null(hc_slot_region(a));
        ck_assert_int_eq(hc_listen("jbl", NULL, a, &(hc_listener *) { NULL }), -EOPNOTSUPP);
        ck_assert_int_eq(hc_slot_is_primary("jbl", NULL, a), -EINVAL);

        a = hc_leave(a);
        count_becomes(dir2, "jbl", 1);
        ck_assert_int_eq(hc_slot_is_primary("jbl", H1(), b), 1);    /* ranks only fall */
        ck_assert_int_eq(hc_join("jbl", H2(.max = 2, .flags = HC_INHERIT), &c), 0);
        ck_assert_uint_eq(hc_slot_index(c), 1);
        ck_assert_int_eq(fcntl(hc_slot_fd(c), F_GETFD) & FD_CLOEXEC, 0);
        b = hc_leave(b);
        c = hc_leave(c);
        count_becomes(dir1, "jbl", 0);
}
END_TEST

/* hc_list() and hc_fleet_list(): rank order, hosts, fences, pids, tags; hc_primary(). */
START_TEST(test_fleet_list)
{
        hc_slot *a = NULL, *b = NULL;
        hc_fleet_instance *fl = NULL;
        hc_instance *l = NULL, p;

        ck_assert_int_eq(hc_list("lst", H1(), &l), 0);
        ck_assert_ptr_null(l);
        ck_assert_int_eq(hc_primary("lst", H1(), &p), -ENOENT);
        ck_assert_int_eq(hc_join("lst", H2(.max = 3, .tag = "on h2"), &a), 0);
        ck_assert_int_eq(hc_join("lst", H1(.max = 3, .tag = "on h1"), &b), 0);

        ck_assert_int_eq(hc_fleet_list("lst", H1(), &fl), 2);
        ck_assert_str_eq(fl[0].host, "h2");
        ck_assert_str_eq(fl[1].host, "h1");
        ck_assert_uint_eq(fl[0].instance.slot, 0);
        ck_assert_uint_eq(fl[1].instance.slot, 1);
        ck_assert_uint_eq(fl[0].fence, hc_slot_seq(a));
        ck_assert_uint_eq(fl[1].fence, hc_slot_seq(b));
        ck_assert_uint_eq(fl[1].instance.seq, fl[1].fence);
        ck_assert_str_eq(fl[0].instance.tag, "on h2");
        ck_assert_int_eq(fl[0].instance.pid, getpid());
        ck_assert_uint_eq(fl[0].instance.uid, getuid());
        ck_assert_int_gt(fl[0].instance.joined_usec, 0);
        free(fl);

        ck_assert_int_eq(hc_list("lst", H2(), &l), 2);
        ck_assert_str_eq(l[1].tag, "on h1");
        ck_assert_uint_eq(l[1].seq, hc_slot_seq(b));
        free(l);
        ck_assert_int_eq(hc_primary("lst", H1(), &p), 0);
        ck_assert_uint_eq(p.seq, hc_slot_seq(a));
        a = hc_leave(a);
        b = hc_leave(b);
        count_becomes(dir1, "lst", 0);
}
END_TEST

/* HC_RECORD_LATER and hc_slot_set_pid() name the holder; only the joiner may. */
START_TEST(test_fleet_set_pid)
{
        long long deadline = now_usec() + BOUND_USEC;
        hc_slot *s = NULL;
        hc_instance *l = NULL;
        pid_t child;
        int status;

        ck_assert_int_eq(hc_join("pid", H1(.flags = HC_RECORD_LATER), &s), 0);
        ck_assert_int_eq(hc_slot_set_pid(s, 4242), 0);
        for (;;) {               /* the agent rewrites the record in etcd after the message */
                ck_assert_int_eq(hc_list("pid", H2(), &l), 1);
                if (l[0].pid == 4242)
                        break;
                free(l);
                ck_assert_msg(now_usec() < deadline, "the pid was never recorded");
                (void) usleep(20000);
        }
        free(l);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0)
                _exit(hc_slot_set_pid(s, 1) == -ESTALE ? 0 : 1);
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert_int_eq(status, 0);
        s = hc_leave(s);
}
END_TEST

/* A child's hc_leave() only closes its copy; a holder that dies gives its seat back. */
START_TEST(test_fleet_fork_and_death)
{
        hc_slot *s = NULL;
        int p[2], status;
        char ok;
        pid_t child;

        ck_assert_int_eq(hc_join("fork", H1(), &s), 0);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                s = hc_leave(s);
                _exit(0);
        }
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        /* the parent's copy is open: no hang-up reached the agent */
        ck_assert_int_eq(hc_count("fork", H2()), 1);
        ck_assert_int_eq(hc_slot_lost(s), 0);
        s = hc_leave(s);
        count_becomes(dir2, "fork", 0);

        ck_assert_int_eq(pipe(p), 0);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                hc_slot *t = NULL;

                ok = hc_join("death", H2(), &t) == 0 ? 'y' : 'n';
                (void) !write(p[1], &ok, 1);
                pause();
                _exit(0);
        }
        ck_assert_int_eq(read(p[0], &ok, 1), 1);
        ck_assert_int_eq(ok, 'y');
        ck_assert_int_eq(hc_count("death", H1()), 1);
        ck_assert_int_eq(kill(child, SIGKILL), 0);
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        /* the kernel closed its connection; the agent deleted the key */
        ck_assert_int_eq(hc_wait("death", H1(), 1, -1), 0);
        close(p[0]);
        close(p[1]);
}
END_TEST

/* Waiting: a join that waits is admitted when a seat is given back; timeouts. */
START_TEST(test_fleet_wait)
{
        hc_slot *s = NULL, *t = NULL;
        int p[2], status;
        unsigned rank;
        pid_t child;

        ck_assert_int_eq(hc_wait("wt", H1(), 1, 0), 0);          /* nobody: at once */
        ck_assert_int_eq(hc_join("wt", H1(), &s), 0);
        ck_assert_int_eq(hc_join("wt", H2(.timeout_ms = 200), &t), -ETIMEDOUT);
        ck_assert_int_eq(hc_wait("wt", H2(), 1, 200), -ETIMEDOUT);
        count_becomes(dir1, "wt", 1);     /* the timed-out join's key is gone */

        ck_assert_int_eq(pipe(p), 0);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                int r = hc_join("wt", H2(.timeout_ms = -1), &t);

                rank = r == 0 ? hc_slot_index(t) : 99;
                (void) !write(p[1], &rank, sizeof rank);
                _exit(r == 0 ? 0 : 1);
        }
        /* the waiter's key is in etcd, ranked after ours (docs/fleet.md, "Wait"), before
         * we leave */
        waiter_listed("wt", child);
        s = hc_leave(s);
        ck_assert_int_eq(read(p[0], &rank, sizeof rank), (ssize_t) sizeof rank);
        ck_assert_uint_eq(rank, 0);
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert_int_eq(status, 0);
        ck_assert_int_eq(hc_wait("wt", H1(), 1, -1), 0);
        close(p[0]);
        close(p[1]);
}
END_TEST

static int collect(const char *name, int count, void *userdata) {
        int *seen = userdata;

        if (strcmp(name, "nm-a") == 0)
                seen[0] = count;
        else if (strcmp(name, "nm-b") == 0)
                seen[1] = count;
        return 0;
}

static int stop_at_first(const char *name, int count, void *userdata) {
        (void) name;
        (void) count;
        ++*(int *) userdata;
        return 7;
}

/* names, the N every holder must share, and remove. */
START_TEST(test_fleet_names_max_remove)
{
        hc_slot *a = NULL, *b = NULL, *c = NULL;
        int seen[2] = { -1, -1 }, calls = 0;
        char text[256] = "";

        /* nm-a defined by its first join, nm-b ahead of use, for good */
        ck_assert_int_eq(hc_join("nm-a", H1(.max = 2), &a), 0);
        ck_assert_int_eq(hc_join("nm-a", H2(.max = 2), &b), 0);
        ck_assert_int_eq(hc_create("nm-b", H2(.max = 5, .mode = 0644)), 0);
        ck_assert_int_eq(hc_create("nm-b", H2(.max = 5, .mode = 0644)), 0);  /* as it is */
        ck_assert_int_eq(hc_fleet_create("nm-b", H2(.max = 5, .mode = 0640), NULL), -EINVAL);
        ck_assert_int_eq(hc_join("nm-b", H2(.max = 5), &c), 0);
        ck_assert_int_eq(hc_names(H1(), collect, seen), 0);
        ck_assert_int_eq(seen[0], 2);
        ck_assert_int_eq(seen[1], 1);
        ck_assert_int_eq(hc_names(H1(), stop_at_first, &calls), 7);
        ck_assert_int_eq(calls, 1);

        ck_assert_int_eq(hc_join("nm-b", H1(.max = 3, .error_text = text,
                                            .error_text_size = sizeof text), &a), -EINVAL);
        ck_assert_msg(strstr(text, "5") && strstr(text, "3"), "error text '%s'", text);
        ck_assert_ptr_nonnull(a);

        ck_assert_int_eq(hc_remove("nm-b", H1(.error_text = text, .error_text_size = sizeof text)),
                         -EBUSY);
        ck_assert_str_ne(text, "");
        c = hc_leave(c);
        count_becomes(dir1, "nm-b", 0);
        ck_assert_int_eq(hc_remove("nm-b", H1()), 0);
        /* removed with its N: another N is welcome now */
        ck_assert_int_eq(hc_join("nm-b", H1(.max = 3), &c), 0);
        a = hc_leave(a);
        b = hc_leave(b);
        c = hc_leave(c);
}
END_TEST

/* etcd stops answering: the agent cannot renew its lease and tells the holder LOST
 * before the lease can expire; the descriptor wakes up. hc_fleet_status() says held
 * before, lost (or unreachable) after. */
START_TEST(test_fleet_lost_lease)
{
        hc_slot *s = NULL;
        struct pollfd pfd;
        char text[64], tiny[5];
        int r;

        ck_assert_int_eq(hc_fleet_status(H1(), text, sizeof text), HC_FLEET_HELD);
        ck_assert_str_eq(text, "lease held");
        ck_assert_int_eq(hc_fleet_status(H1(), tiny, sizeof tiny), HC_FLEET_HELD);
        ck_assert_str_eq(tiny, "leas");                         /* cut to fit */
        ck_assert_int_eq(hc_fleet_status(H1(), NULL, 0), HC_FLEET_HELD);
        ck_assert_int_eq(hc_fleet_status(H1(), NULL, 1), -EINVAL);
        ck_assert_int_eq(hc_join("lost", H1(), &s), 0);
        pfd = (struct pollfd) { .fd = hc_slot_lost_fd(s), .events = POLLIN };
        ck_assert_int_gt(pfd.fd, 2);
        ck_assert_int_eq(hc_slot_lost(s), 0);
        ck_assert_int_eq(kill(etcd_pid, SIGSTOP), 0);
        ck_assert_int_eq(poll(&pfd, 1, (int) (BOUND_USEC / 1000)), 1);
        r = hc_fleet_status(H1(), text, sizeof text);
        ck_assert_msg(r == HC_FLEET_LOST || r == HC_FLEET_UNREACHABLE, "%d %s", r, text);
        ck_assert_int_eq(kill(etcd_pid, SIGCONT), 0);
        ck_assert_int_eq(hc_slot_lost(s), 1);
        ck_assert_int_eq(hc_slot_lost(s), 1);    /* remembered */
        s = hc_leave(s);
        ck_assert(agent_ready(dir1, agent1_pid));  /* a new lease, for the next test */
        ck_assert(agent_ready(dir2, agent2_pid));
}
END_TEST

/* The agent dies: its holders' descriptors wake up and read as lost; then nobody serves
 * the directory (-EHOSTDOWN). Last: h2 is gone after it. */
START_TEST(test_fleet_agent_dies)
{
        hc_slot *s = NULL;
        struct pollfd pfd;
        char text[256];

        ck_assert_int_eq(hc_join("gone", H2(), &s), 0);
        pfd = (struct pollfd) { .fd = hc_slot_lost_fd(s), .events = POLLIN };
        ck_assert_int_eq(kill(agent2_pid, SIGKILL), 0);
        ck_assert_int_eq(poll(&pfd, 1, (int) (BOUND_USEC / 1000)), 1);
        ck_assert_int_eq(hc_slot_lost(s), 1);
        s = hc_leave(s);
        /* our connection may hang up before the agent's listening socket is closed: only
         * once the agent is gone does nobody serve the directory */
        ck_assert_msg(exited(agent2_pid), "the agent still runs after SIGKILL");
        ck_assert_int_eq(hc_count("gone", H2(.error_text = text, .error_text_size = sizeof text)),
                         -EHOSTDOWN);
        ck_assert_msg(strstr(text, dir2), "error text '%s'", text);
        ck_assert_int_eq(hc_fleet_status(H2(), text, sizeof text), -EHOSTDOWN);
}
END_TEST

static Suite *suite_fleet_agent(void) {
        Suite *s = suite_create("fleet-agent");
        TCase *tc = tcase_create("agent");

        tcase_set_timeout(tc, 300);
        tcase_add_test(tc, test_fleet_join_busy_leave);
        tcase_add_test(tc, test_fleet_list);
        tcase_add_test(tc, test_fleet_set_pid);
        tcase_add_test(tc, test_fleet_fork_and_death);
        tcase_add_test(tc, test_fleet_wait);
        tcase_add_test(tc, test_fleet_names_max_remove);
        tcase_add_test(tc, test_fleet_lost_lease);
        tcase_add_test(tc, test_fleet_agent_dies);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        char cmd[256];
        SRunner *sr;
        int failed;

        if (access(ETCD_BIN, X_OK) < 0) {
                printf("SKIP: %s is missing (Debian package 'etcd-server')\n", ETCD_BIN);
                return 77;
        }
        (void) snprintf(cmd, sizeof cmd, "'%s' --help 2>/dev/null | grep -q -e --etcd", HEADCOUNTD);
        if (access(HEADCOUNTD, X_OK) < 0 || system(cmd) != 0) {
                printf("SKIP: no headcountd with the fleet agent at %s (configure "
                       "--disable-daemon or --disable-fleet?)\n", HEADCOUNTD);
                return 77;
        }
        if (world_start() < 0) {
                printf("ERROR: cannot start etcd and the agents (logs in %s)\n", base);
                world_stop();
                return 99;
        }
        sr = srunner_create(suite_fleet_agent());
        srunner_set_fork_status(sr, CK_FORK);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        world_stop();
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
