/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcountd's fleet agent end to end: a real etcd (Debian's /usr/bin/etcd, on free
 * loopback ports, once per test case), real daemons (--dir, --host, --bus=none, a prefix
 * of each test's own) and the agent's socket protocol spoken by hand (docs/fleet.md). Every
 * wait is for a condition, bounded by T_MS only so that a hang fails instead of blocking.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "headcount.h"
#include "etcd-launch.h"
#include "test-harness.h"

#define ETCD_BIN "/usr/bin/etcd"
#define ETCDCTL_BIN "/usr/bin/etcdctl"
#define T_MS 60000                       /* a bound for a hang, not a timing assertion */
#define MSG_MAX 4096

static char etcd_dir[] = "/tmp/test-fleet-etcd-XXXXXX";
static struct etcd_launch cluster;
static pid_t etcd_pid;                   /* its member */
static char etcd_url[256];

static char top[] = "/tmp/test-fleet-agent-XXXXXX";
static pid_t daemons[4];
static unsigned n_daemons;
static unsigned test_serial;

/* A free loopback port (closed again, or kept bound and not listening: refused). */
static int reserve_port(char *url, size_t size) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        (void) snprintf(url, size, "http://127.0.0.1:%u", ntohs(sa.sin_port));
        return fd;
}

static bool file_says(const char *path, const char *needle) {
        static char buf[1 << 20];
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return false;
        n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        (void) fclose(f);
        return strstr(buf, needle) != NULL;
}

static void wait_for_file_text(const char *path, const char *needle, pid_t pid) {
        uint64_t deadline = now_usec() + (uint64_t) T_MS * 1000;

        while (!file_says(path, needle)) {
                int status;

                ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0, "pid %i exited; see %s",
                              (int) pid, path);
                ck_assert_msg(now_usec() < deadline, "no '%s' in %s", needle, path);
                (void) usleep(10000);
        }
}

/* Once per test case, in the runner. */
static void etcd_start(void) {
        if (access(ETCD_BIN, X_OK) < 0)
                return;                         /* each test skips */
        ck_assert_ptr_nonnull(mkdtemp(etcd_dir));
        ck_assert_int_eq(etcd_launch(&cluster, etcd_dir, 1, NULL), 0);
        (void) snprintf(etcd_url, sizeof etcd_url, "%s", cluster.endpoints);
        etcd_pid = cluster.pid[0];
}

static void etcd_stop(void) {
        char cmd[128];

        etcd_launch_stop(&cluster);
        etcd_pid = 0;
        (void) snprintf(cmd, sizeof cmd, "rm -rf '%s'", etcd_dir);
        if (!strstr(etcd_dir, "XXXXXX"))
                (void) !system(cmd);
        memcpy(etcd_dir + strlen(etcd_dir) - 6, "XXXXXX", 6);
}

static void setup(void) {
        if (etcd_pid <= 0)
                return;
        ck_assert_ptr_nonnull(mkdtemp(top));
        n_daemons = 0;
        test_serial++;
}

static void teardown(void) {
        char cmd[128];

        for (unsigned i = 0; i < n_daemons; i++) {
                (void) kill(daemons[i], SIGKILL);
                (void) waitpid(daemons[i], NULL, 0);
        }
        if (etcd_pid > 0)
                (void) kill(etcd_pid, SIGCONT);
        (void) snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
        if (!strstr(top, "XXXXXX"))
                (void) !system(cmd);
        memcpy(top + strlen(top) - 6, "XXXXXX", 6);
}

#define SKIP_WITHOUT_ETCD()                                                     \
        do {                                                                    \
                if (etcd_pid <= 0) {                                            \
                        fprintf(stderr, "SKIP: no %s\n", ETCD_BIN);             \
                        return;                                                 \
                }                                                               \
        } while (0)

/* Starts headcountd --dir TOP/HOST --host HOST on ENDPOINTS; with READY, waits for its
 * lease. Returns the scope directory's index (0, 1, ...). */
static unsigned daemon_start(const char *host, const char *endpoints, const char *ttl, bool ready) {
        char dir[256], log[256], prefix[64];
        unsigned i = n_daemons;
        pid_t pid;

        ck_assert_uint_lt(i, 4);
        (void) snprintf(dir, sizeof dir, "%s/%s", top, host);
        (void) snprintf(log, sizeof log, "%s/%s.log", top, host);
        (void) snprintf(prefix, sizeof prefix, "/test-%u-%u/", (unsigned) getpid(), test_serial);
        ck_assert_int_eq(mkdir(dir, 0700), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int out = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (out < 0 || dup2(out, 2) < 0)
                        _exit(127);
                execl(harness_daemon_path(), "headcountd", "--dir", dir, "--host", host,
                      "--bus=none", "--log-target=stderr", "--etcd", endpoints,
                      "--etcd-prefix", prefix, "--ttl", ttl, (char *) NULL);
                _exit(127);
        }
        daemons[n_daemons++] = pid;
        wait_for_file_text(log, ready ? "Holding etcd lease" : "Watching", pid);
        return i;
}

static int agent_connect(const char *host) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        (void) snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s/.headcountd.fleet", top, host);
        ck_assert_int_eq(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        return fd;
}

/* Sends the fields (NULL-terminated) as one message. */
static void agent_send(int fd, const char *first, ...) {
        char buf[MSG_MAX];
        size_t len = 0;
        va_list ap;

        va_start(ap, first);
        for (const char *s = first; s; s = va_arg(ap, const char *)) {
                size_t n = strlen(s) + 1;

                ck_assert_uint_le(len + n, sizeof buf);
                memcpy(buf + len, s, n);
                len += n;
        }
        va_end(ap);
        ck_assert_int_eq(send(fd, buf, len - 1, MSG_NOSIGNAL), (ssize_t) (len - 1));
}

/* Receives one answer, its NULs turned into spaces ("OK 12 0"); "" at a hang-up. */
static char *agent_recv(int fd, char *buf, size_t size) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        ck_assert_int_eq(poll(&p, 1, T_MS), 1);
        n = recv(fd, buf, size - 1, 0);
        ck_assert_int_ge(n, 0);
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] == '\0')
                        buf[i] = ' ';
        buf[n] = '\0';
        return buf;
}

/* How many keys under this test's prefix + SUFFIX etcd holds (etcdctl), or -1 without
 * etcdctl. */
static int etcd_keys(const char *suffix) {
        char cmd[512], line[1024];
        int n = 0;
        FILE *p;

        if (access(ETCDCTL_BIN, X_OK) < 0)
                return -1;
        (void) snprintf(cmd, sizeof cmd, "ETCDCTL_API=3 %s --endpoints=%s get --prefix "
                        "--keys-only /test-%u-%u/%s", ETCDCTL_BIN, etcd_url,
                        (unsigned) getpid(), test_serial, suffix);
        p = popen(cmd, "re");
        ck_assert_ptr_nonnull(p);
        while (fgets(line, sizeof line, p))
                if (line[0] == '/')
                        n++;
        ck_assert_int_eq(pclose(p), 0);
        return n;
}

static bool starts_with(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Two hosts, max 2: first come, first served; the third is BUSY; COUNT, LIST (in rank
 * order, with each seat's host, pid and tag) and NAMES agree. */
START_TEST(test_fleet_agent_join_busy_count_list)
{
        char buf[MSG_MAX], fence_a[32], fence_b[32];
        int a, b, c, q;

        SKIP_WITHOUT_ETCD();
        daemon_start("hosta", etcd_url, "10", true);
        daemon_start("hostb", etcd_url, "10", true);
        a = agent_connect("hosta");
        agent_send(a, "JOIN", "web", "2", "0", "4242", "first", NULL);
        ck_assert_int_eq(sscanf(agent_recv(a, buf, sizeof buf), "OK %31s 0", fence_a), 1);
        b = agent_connect("hostb");
        agent_send(b, "JOIN", "web", "2", "0", "4343", "second", NULL);
        ck_assert_int_eq(sscanf(agent_recv(b, buf, sizeof buf), "OK %31s 1", fence_b), 1);
        ck_assert_int_lt(atoll(fence_a), atoll(fence_b));
        c = agent_connect("hosta");
        agent_send(c, "JOIN", "web", "2", "0", "4444", "third", NULL);
        ck_assert_str_eq(agent_recv(c, buf, sizeof buf), "BUSY");

        q = agent_connect("hostb");
        agent_send(q, "COUNT", "web", NULL);
        ck_assert_str_eq(agent_recv(q, buf, sizeof buf), "OK 2");
        agent_send(q, "LIST", "web", NULL);
        agent_recv(q, buf, sizeof buf);
        /* 4242 is a pid the joiner named, not its own: listed, as unverified */
        ck_assert_msg(starts_with(buf, "I 0 ") && strstr(buf, " hosta 4242 ") &&
                      strstr(buf, " first 0"), "first line: %s", buf);
        agent_recv(q, buf, sizeof buf);
        ck_assert_msg(starts_with(buf, "I 1 ") && strstr(buf, " hostb 4343 ") &&
                      strstr(buf, " second"), "second line: %s", buf);
        ck_assert_str_eq(agent_recv(q, buf, sizeof buf), "END 2");
        agent_send(q, "NAMES", NULL);
        ck_assert_str_eq(agent_recv(q, buf, sizeof buf), "N web 2 2 root 0644");
        ck_assert_str_eq(agent_recv(q, buf, sizeof buf), "END 1");

        /* REMOVE is refused while seats are held */
        agent_send(q, "REMOVE", "web", NULL);
        ck_assert(starts_with(agent_recv(q, buf, sizeof buf), "ERR 16 "));
        (void) close(a);
        (void) close(b);
        (void) close(c);
        (void) close(q);
}
END_TEST

/* A holder killed with SIGKILL frees its seat: a waiting JOIN on the other host is
 * admitted, and a WAIT for the count to drop is answered. */
START_TEST(test_fleet_agent_death_frees_seat)
{
        char buf[MSG_MAX];
        int sv[2], w, j;
        pid_t child;

        SKIP_WITHOUT_ETCD();
        daemon_start("hosta", etcd_url, "10", true);
        daemon_start("hostb", etcd_url, "10", true);
        ck_assert_int_eq(pipe(sv), 0);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                int fd;

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                fd = agent_connect("hosta");

                agent_send(fd, "JOIN", "db", "1", "0", "0", "", NULL);
                agent_recv(fd, buf, sizeof buf);
                (void) !write(sv[1], buf, strlen(buf) + 1);
                for (;;)
                        pause();
        }
        ck_assert_int_gt(read(sv[0], buf, sizeof buf), 0);
        ck_assert_msg(starts_with(buf, "OK "), "the holder got %s", buf);

        w = agent_connect("hostb");
        agent_send(w, "WAIT", "db", "2", "-1", NULL);
        ck_assert_str_eq(agent_recv(w, buf, sizeof buf), "OK 1");   /* 1 < 2 already */
        agent_send(w, "LIST", "db", NULL);
        agent_recv(w, buf, sizeof buf);
        ck_assert_msg(strstr(buf, " hosta ") != NULL, "%s", buf);   /* rank 0: the child */
        ck_assert_str_eq(agent_recv(w, buf, sizeof buf), "END 1");
        j = agent_connect("hostb");
        agent_send(j, "JOIN", "db", "1", "-1", "0", "waiter", NULL);
        /* once the waiter's key is there, it still counts for nothing: it holds no seat */
        if (etcd_keys("db/s/") >= 0) {
                for (uint64_t end = now_usec() + (uint64_t) T_MS * 1000; etcd_keys("db/s/") < 2;) {
                        ck_assert_msg(now_usec() < end, "the waiter's key did not appear");
                        (void) usleep(20000);
                }
                agent_send(w, "COUNT", "db", NULL);
                ck_assert_str_eq(agent_recv(w, buf, sizeof buf), "OK 1");
                agent_send(w, "LIST", "db", NULL);
                ck_assert(starts_with(agent_recv(w, buf, sizeof buf), "I 0 "));
                ck_assert_str_eq(agent_recv(w, buf, sizeof buf), "END 1");
                agent_send(w, "NAMES", NULL);
                ck_assert_str_eq(agent_recv(w, buf, sizeof buf), "N db 1 1 root 0644");
                ck_assert_str_eq(agent_recv(w, buf, sizeof buf), "END 1");
        }

        harness_kill(child);
        ck_assert_msg(starts_with(agent_recv(j, buf, sizeof buf), "OK "), "the waiter got %s",
                      buf);
        (void) close(j);
        agent_send(w, "WAIT", "db", "1", "-1", NULL);
        ck_assert_str_eq(agent_recv(w, buf, sizeof buf), "OK 0");
        (void) close(w);
        (void) close(sv[0]);
        (void) close(sv[1]);
}
END_TEST

/* On D-Bus: FleetCountChanged for a name this host uses, FleetCount and FleetNames. */
START_TEST(test_fleet_agent_bus)
{
        const char *args[] = { "--bus=user", "--host", "hosta", "--etcd", etcd_url,
                               "--etcd-prefix", NULL, NULL };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct harness h;
        char buf[MSG_MAX], prefix[64];
        const char *name = NULL;
        uint32_t count = 0;
        int fd;

        SKIP_WITHOUT_ETCD();
        if (!harness_have_dbus()) {
                fprintf(stderr, "SKIP: no dbus-daemon\n");
                return;
        }
        (void) snprintf(prefix, sizeof prefix, "/test-%u-%u/", (unsigned) getpid(), test_serial);
        args[6] = prefix;
        ck_assert_int_eq(harness_init(&h), 0);
        ck_assert_int_eq(harness_start_bus(&h), 0);
        ck_assert_int_eq(harness_connect(&h), 0);
        ck_assert_int_eq(harness_spawn_daemon(&h, args, 0, NULL), 0);
        ck_assert_int_eq(harness_notify_wait(&h, "READY=1", T_MS, NULL, 0), 0);
        wait_for_file_text(h.log, "Holding etcd lease", h.daemon_pid);

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_lt(snprintf(sa.sun_path, sizeof sa.sun_path, "%s/.headcountd.fleet",
                                  h.dir), (int) sizeof sa.sun_path);
        ck_assert_int_eq(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        agent_send(fd, "JOIN", "web", "2", "0", "0", "", NULL);
        ck_assert(starts_with(agent_recv(fd, buf, sizeof buf), "OK "));
        ck_assert_int_eq(harness_wait_signal(&h, "FleetCountChanged", "web", 1, T_MS, NULL), 0);

        ck_assert_int_ge(sd_bus_call_method(h.bus, "org.headcount.Manager1",
                                            "/org/headcount/Manager1", "org.headcount.Manager1",
                                            "FleetCount", &error, &reply, "s", "web"), 0);
        ck_assert_int_ge(sd_bus_message_read(reply, "u", &count), 0);
        ck_assert_uint_eq(count, 1);
        reply = sd_bus_message_unref(reply);
        ck_assert_int_ge(sd_bus_call_method(h.bus, "org.headcount.Manager1",
                                            "/org/headcount/Manager1", "org.headcount.Manager1",
                                            "FleetNames", &error, &reply, ""), 0);
        ck_assert_int_eq(sd_bus_message_read(reply, "a(su)", 1, &name, &count), 1);
        ck_assert_str_eq(name, "web");
        ck_assert_uint_eq(count, 1);
        reply = sd_bus_message_unref(reply);
        ck_assert_int_lt(sd_bus_call_method(h.bus, "org.headcount.Manager1",
                                            "/org/headcount/Manager1", "org.headcount.Manager1",
                                            "FleetCount", &error, NULL, "s", "no/such"), 0);
        ck_assert(sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS));
        (void) close(fd);
        harness_done(&h);
}
END_TEST

/* Joiners that disagree on N are refused with a message naming both numbers. */
START_TEST(test_fleet_agent_disagreeing_max)
{
        char buf[MSG_MAX];
        int a, b;

        SKIP_WITHOUT_ETCD();
        daemon_start("hosta", etcd_url, "10", true);
        a = agent_connect("hosta");
        agent_send(a, "JOIN", "web", "2", "0", "0", "", NULL);
        ck_assert(starts_with(agent_recv(a, buf, sizeof buf), "OK "));
        b = agent_connect("hosta");
        agent_send(b, "JOIN", "web", "3", "0", "0", "", NULL);
        ck_assert_str_eq(agent_recv(b, buf, sizeof buf),
                         "ERR 22 fleet name 'web' allows at most 2; asked for 3");
        (void) close(a);
        (void) close(b);
}
END_TEST

/* With etcd unreachable, a try-once JOIN and a COUNT get EHOSTUNREACH naming the endpoint
 * at once, a waiting JOIN at its deadline, and STATUS says unreachable, and why. */
START_TEST(test_fleet_agent_etcd_down)
{
        char buf[MSG_MAX], dead[64];
        uint64_t start;
        int fd, port;

        SKIP_WITHOUT_ETCD();
        port = reserve_port(dead, sizeof dead);         /* bound, not listening: refused */
        daemon_start("hosta", dead, "10", false);
        fd = agent_connect("hosta");
        /* a try-once join hears the failure at once */
        agent_send(fd, "JOIN", "web", "1", "0", "0", "", NULL);
        agent_recv(fd, buf, sizeof buf);
        ck_assert_msg(starts_with(buf, "ERR 113 ") && strstr(buf, dead), "%s", buf);
        (void) close(fd);
        /* a waiting one waits for a lease until its deadline, then hears why */
        fd = agent_connect("hosta");
        start = now_usec();
        agent_send(fd, "JOIN", "web", "1", "1500", "0", "", NULL);
        agent_recv(fd, buf, sizeof buf);
        ck_assert_msg(starts_with(buf, "ERR 113 ") && strstr(buf, dead), "%s", buf);
        ck_assert_uint_ge(now_usec() - start, 1400 * 1000);
        (void) close(fd);
        fd = agent_connect("hosta");
        agent_send(fd, "COUNT", "web", NULL);
        agent_recv(fd, buf, sizeof buf);
        ck_assert_msg(starts_with(buf, "ERR 113 ") && strstr(buf, dead), "%s", buf);
        agent_send(fd, "STATUS", NULL);
        agent_recv(fd, buf, sizeof buf);
        ck_assert_msg(starts_with(buf, "OK unreachable etcd unreachable: ") && strstr(buf, dead),
                      "%s", buf);
        (void) close(fd);
        (void) close(port);
}
END_TEST

/* etcd stops answering: the holder hears LOST before its lease can expire; once etcd is
 * back, a new lease takes joins again. */
START_TEST(test_fleet_agent_lost)
{
        char buf[MSG_MAX];
        int fd, again;

        SKIP_WITHOUT_ETCD();
        daemon_start("hosta", etcd_url, "2", true);
        fd = agent_connect("hosta");
        agent_send(fd, "JOIN", "web", "1", "0", "0", "", NULL);
        ck_assert(starts_with(agent_recv(fd, buf, sizeof buf), "OK "));
        ck_assert_int_eq(kill(etcd_pid, SIGSTOP), 0);
        ck_assert_msg(starts_with(agent_recv(fd, buf, sizeof buf), "LOST "), "%s", buf);
        ck_assert_int_eq(kill(etcd_pid, SIGCONT), 0);
        (void) close(fd);

        for (uint64_t end = now_usec() + (uint64_t) T_MS * 1000;;) {
                again = agent_connect("hosta");
                agent_send(again, "JOIN", "web", "1", "0", "0", "", NULL);
                agent_recv(again, buf, sizeof buf);
                (void) close(again);
                if (starts_with(buf, "OK "))
                        break;
                ck_assert_msg(starts_with(buf, "ERR ") || starts_with(buf, "BUSY"), "%s", buf);
                ck_assert_msg(now_usec() < end, "no new lease: %s", buf);
                (void) usleep(100000);
        }
}
END_TEST

/* Malformed requests get ERR EINVAL naming the problem, and the connection goes on; a
 * joiner that hangs up while it waits leaves no key behind. */
START_TEST(test_fleet_agent_bad_requests)
{
        char buf[MSG_MAX], tag[HC_TAG_MAX + 2];
        int fd, h, w;

        SKIP_WITHOUT_ETCD();
        daemon_start("hosta", etcd_url, "10", true);
        fd = agent_connect("hosta");
        agent_send(fd, "JOIN", ".bad", "1", "0", "0", "", NULL);
        ck_assert(starts_with(agent_recv(fd, buf, sizeof buf), "ERR 22 invalid fleet name"));
        agent_send(fd, "JOIN", "web", "0", "0", "0", "", NULL);
        ck_assert(starts_with(agent_recv(fd, buf, sizeof buf), "ERR 22 the maximum is"));
        memset(tag, 't', sizeof tag - 1);
        tag[sizeof tag - 1] = '\0';
        agent_send(fd, "JOIN", "web", "1", "0", "0", tag, NULL);
        ck_assert(starts_with(agent_recv(fd, buf, sizeof buf), "ERR 22 the tag is longer"));
        agent_send(fd, "JOIN", "web", "1", "soon", "0", "", NULL);
        ck_assert_str_eq(agent_recv(fd, buf, sizeof buf), "ERR 22 malformed JOIN request");
        agent_send(fd, "FROB", "web", NULL);
        ck_assert_str_eq(agent_recv(fd, buf, sizeof buf), "ERR 22 malformed request");
        agent_send(fd, "WAIT", "web", "0", "0", NULL);
        ck_assert_str_eq(agent_recv(fd, buf, sizeof buf), "ERR 22 malformed WAIT request");
        agent_send(fd, "COUNT", "web", NULL);
        ck_assert_str_eq(agent_recv(fd, buf, sizeof buf), "OK 0");

        h = agent_connect("hosta");
        agent_send(h, "JOIN", "web", "1", "0", "0", "", NULL);
        ck_assert(starts_with(agent_recv(h, buf, sizeof buf), "OK "));
        w = agent_connect("hosta");
        agent_send(w, "JOIN", "web", "1", "-1", "0", "", NULL);
        if (etcd_keys("web/s/") >= 0)
                for (uint64_t end = now_usec() + (uint64_t) T_MS * 1000; etcd_keys("web/s/") < 2;) {
                        ck_assert_msg(now_usec() < end, "the waiter's key did not appear");
                        (void) usleep(20000);
                }
        (void) close(w);
        (void) close(h);
        agent_send(fd, "WAIT", "web", "1", "-1", NULL);
        ck_assert_str_eq(agent_recv(fd, buf, sizeof buf), "OK 0");
        if (etcd_keys("web/s/") >= 0)
                for (uint64_t end = now_usec() + (uint64_t) T_MS * 1000; etcd_keys("web/s/") > 0;) {
                        ck_assert_msg(now_usec() < end, "a key was left behind");
                        (void) usleep(20000);
                }
        (void) close(fd);
}
END_TEST

/* Bad fleet options are usage errors (exit 64) with one line on stderr. */
START_TEST(test_fleet_agent_bad_options)
{
        static const char *const bad[][2] = {
                { "--host", "a/b" },
                { "--host", "" },
                { "--ttl", "1" },
                { "--etcd-timeout", "0" },
                { "--etcd-prefix", "noslash" },
                { "--etcd-prefix", "/nolast" },
        };

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                pid_t pid = fork();
                int status;

                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

                        (void) dup2(null, 2);
                        execl(harness_daemon_path(), "headcountd", "--dir", "/tmp",
                              "--bus=none", "--etcd", "http://127.0.0.1:1", bad[i][0],
                              bad[i][1], (char *) NULL);
                        _exit(127);
                }
                status = harness_wait_exit(pid, T_MS);
                ck_assert_msg(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 64,
                              "%s '%s': status %i", bad[i][0], bad[i][1], status);
        }
}
END_TEST

static Suite *suite_fleet_agent(void) {
        Suite *s = suite_create("fleet-agent");
        TCase *tc;

        tc = tcase_create("core");
        tcase_add_unchecked_fixture(tc, etcd_start, etcd_stop);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_fleet_agent_join_busy_count_list);
        tcase_add_test(tc, test_fleet_agent_disagreeing_max);
        tcase_add_test(tc, test_fleet_agent_bus);
        suite_add_tcase(s, tc);

        tc = tcase_create("crash");
        tcase_add_unchecked_fixture(tc, etcd_start, etcd_stop);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_fleet_agent_death_frees_seat);
        tcase_add_test(tc, test_fleet_agent_lost);
        suite_add_tcase(s, tc);

        tc = tcase_create("hostile");
        tcase_add_unchecked_fixture(tc, etcd_start, etcd_stop);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_fleet_agent_etcd_down);
        tcase_add_test(tc, test_fleet_agent_bad_requests);
        tcase_add_test(tc, test_fleet_agent_bad_options);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(suite_fleet_agent());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
