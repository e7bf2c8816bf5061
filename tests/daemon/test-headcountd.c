/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcountd end to end: a private session bus, a notification socket in systemd's place,
 * the real daemon binary, and seat holders that the tests join and kill. Each test has its
 * own scratch directory and bus, and synchronises on notifications, signals and process
 * exits, never on sleeps.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "headcount.h"
#include "test-harness.h"

#define T_MS 30000               /* a bound for a hang, not a timing assertion */

static struct harness h;

static void setup(void) {
        ck_assert_int_eq(harness_init(&h), 0);
        ck_assert_int_eq(harness_start_bus(&h), 0);
        ck_assert_int_eq(harness_connect(&h), 0);
}

static void teardown(void) {
        harness_done(&h);
}

static void start_daemon_args(const char *const *args, uint64_t watchdog_usec) {
        ck_assert_int_eq(harness_spawn_daemon(&h, args, watchdog_usec, NULL), 0);
        ck_assert_msg(harness_notify_wait(&h, "READY=1", T_MS, NULL, 0) == 0,
                      "no READY=1 from headcountd");
}

static void start_daemon(uint64_t watchdog_usec) {
        start_daemon_args(NULL, watchdog_usec);
}

/* Reads the file PATH (at most LEN - 1 bytes) into BUF, NUL-terminated; returns the bytes
 * read, 0 when it is missing. */
static size_t read_file(const char *path, char *buf, size_t len) {
        FILE *f = fopen(path, "re");
        size_t n;

        buf[0] = '\0';
        if (!f)
                return 0;
        n = fread(buf, 1, len - 1, f);
        buf[n] = '\0';
        (void) fclose(f);
        return n;
}

static bool log_contains(const char *needle) {
        static char buf[65536];

        (void) read_file(h.log, buf, sizeof buf);
        return strstr(buf, needle) != NULL;
}

/* The first control character in the LEN bytes at S other than a newline: a C0 control,
 * DEL, or a C1 control (U+0080..U+009F, "\xc2\x80".."\xc2\x9f"); NULL when there is none. */
static const char *find_control(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s;

        for (size_t i = 0; i < len; i++)
                if ((p[i] < 0x20 && p[i] != '\n') || p[i] == 0x7f ||
                    (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f))
                        return s + i;
        return NULL;
}

/* One entry of ListInstances. */
struct bus_instance {
        uint32_t slot, pid, uid, flags;
        uint64_t seq, joined;
        const char *tag;                 /* points into the reply */
};

/* Reads the next entry of a ListInstances reply: 1, or 0 at the end. */
static int bus_instance_next(sd_bus_message *reply, struct bus_instance *ret) {
        return sd_bus_message_read(reply, "(uuuttus)", &ret->slot, &ret->pid, &ret->uid,
                                   &ret->seq, &ret->joined, &ret->flags, &ret->tag);
}

/* Calls ListInstances(NAME) and reads its first entry into *RET. Returns the reply, with
 * the next entry up for bus_instance_next(); unref it when done. */
static sd_bus_message *list_instances(const char *name, struct bus_instance *ret) {
        sd_bus_message *reply = NULL;

        ck_assert_int_ge(sd_bus_call_method(h.bus, "org.headcount.Manager1",
                                            "/org/headcount/Manager1", "org.headcount.Manager1",
                                            "ListInstances", NULL, &reply, "s", name), 0);
        ck_assert_int_eq(sd_bus_message_enter_container(reply, 'a', "(uuuttus)"), 1);
        ck_assert_int_eq(bus_instance_next(reply, ret), 1);
        return reply;
}

/* READY=1 comes with a STATUS= line, and STATUS= follows the counts. */
START_TEST(test_daemon_ready_and_status)
{
        char line[1024];
        pid_t a, b;

        ck_assert_int_eq(harness_spawn_daemon(&h, NULL, 0, NULL), 0);
        ck_assert_int_eq(harness_notify_wait(&h, "STATUS=", T_MS, line, sizeof line), 0);
        ck_assert_str_eq(line, "STATUS=0 regions, 0 instances");

        a = harness_spawn_holder(&h, "web", 4, 4, NULL, false, NULL);
        b = harness_spawn_holder(&h, "web", 4, 4, NULL, false, NULL);
        ck_assert_int_gt(a, 0);
        ck_assert_int_gt(b, 0);
        ck_assert_int_eq(harness_notify_wait(&h, "STATUS=1 region, 2 instances; web 2/4",
                                             T_MS, NULL, 0), 0);
        harness_kill(a);
        ck_assert_int_eq(harness_notify_wait(&h, "STATUS=1 region, 1 instance; web 1/4",
                                             T_MS, NULL, 0), 0);
        harness_kill(b);
}
END_TEST

/*
 * With WATCHDOG_USEC set, WATCHDOG=1 comes again and again, and no more often than every
 * half interval: the pings are due at start + 100, 200, 300... ms (WATCHDOG_USEC=200 ms),
 * each sent once, at or after its time. A daemon that lags sends the ones it owes in a
 * burst, and we may read a ping late, so only this holds on a loaded machine: the third
 * ping we read after READY=1 was due 300 ms after the start at the earliest, and the start
 * came after we spawned the daemon.
 */
START_TEST(test_daemon_watchdog)
{
        uint64_t t_spawn, t3;

        t_spawn = now_usec();
        start_daemon(200 * 1000);
        for (int i = 0; i < 3; i++)
                ck_assert_msg(harness_notify_wait(&h, "WATCHDOG=1", T_MS, NULL, 0) == 0,
                              "WATCHDOG=1 number %d missing", i + 1);
        t3 = now_usec();
        ck_assert_uint_ge(t3 - t_spawn, 300 * 1000);
}
END_TEST

/* SIGTERM: STOPPING=1, then exit status 0. */
START_TEST(test_daemon_sigterm)
{
        int status;

        start_daemon(0);
        ck_assert_int_eq(kill(h.daemon_pid, SIGTERM), 0);
        ck_assert_int_eq(harness_notify_wait(&h, "STOPPING=1", T_MS, NULL, 0), 0);
        status = harness_wait_exit(h.daemon_pid, T_MS);
        h.daemon_pid = 0;
        ck_assert_int_ge(status, 0);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* A region created after the start is picked up and counted. */
START_TEST(test_daemon_region_appears)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t count = 99;
        pid_t a;

        start_daemon(0);
        ck_assert_int_eq(hc_create("late", HC_OPTIONS(.dir = h.dir, .capacity = 3)), 1);
        ck_assert_int_eq(harness_wait_signal(&h, "RegionAdded", "late", -1, T_MS, NULL), 0);
        ck_assert_int_eq(harness_count(&h, "late", &error, &count), 0);
        ck_assert_uint_eq(count, 0);

        a = harness_spawn_holder(&h, "late", 3, 3, NULL, false, NULL);
        ck_assert_int_gt(a, 0);
        ck_assert_int_eq(harness_wait_signal(&h, "CountChanged", "late", 1, T_MS, NULL), 0);
        ck_assert_int_eq(harness_count(&h, "late", &error, &count), 0);
        ck_assert_uint_eq(count, 1);
        ck_assert(log_contains("late: pid "));

        harness_kill(a);
        ck_assert_int_eq(harness_wait_signal(&h, "CountChanged", "late", 0, T_MS, NULL), 0);
        ck_assert_int_eq(hc_remove("late", HC_OPTIONS(.dir = h.dir)), 0);
        ck_assert_int_eq(harness_wait_signal(&h, "RegionRemoved", "late", -1, T_MS, NULL), 0);
        sd_bus_error_free(&error);
}
END_TEST

/* Regions that exist at the start are counted before READY=1; ListNames and
 * ListInstances report them. */
START_TEST(test_daemon_lists)
{
        sd_bus_message *reply = NULL;
        struct bus_instance in;
        const char *name;
        uint32_t count;
        bool seen = false;
        pid_t a;

        a = harness_spawn_holder(&h, "early", 2, 2, "caf\xc3\xa9 \xff", false, NULL);
        ck_assert_int_gt(a, 0);
        start_daemon(0);

        ck_assert_int_ge(sd_bus_call_method(h.bus, "org.headcount.Manager1",
                                            "/org/headcount/Manager1", "org.headcount.Manager1",
                                            "ListNames", NULL, &reply, ""), 0);
        ck_assert_int_eq(sd_bus_message_enter_container(reply, 'a', "(su)"), 1);
        while (sd_bus_message_read(reply, "(su)", &name, &count) > 0)
                if (strcmp(name, "early") == 0) {
                        ck_assert_uint_eq(count, 1);
                        seen = true;
                }
        ck_assert(seen);
        reply = sd_bus_message_unref(reply);

        reply = list_instances("early", &in);
        ck_assert_uint_eq(in.slot, 0);
        ck_assert_uint_eq(in.pid, (uint32_t) a);
        ck_assert_uint_eq(in.uid, getuid());
        ck_assert_uint_eq(in.flags, 0);
        ck_assert_uint_gt(in.joined, 0);
        ck_assert_str_eq(in.tag, "caf\xc3\xa9 \\xff");    /* UTF-8 kept, the rest escaped */
        ck_assert_int_eq(bus_instance_next(reply, &in), 0);
        sd_bus_message_unref(reply);
        harness_kill(a);
}
END_TEST

/* ListInstances escapes the tags' control characters: C0 (ESC), DEL and C1 (CSI, OSC),
 * which are valid UTF-8 but which a client printing the string would hand to a terminal. */
START_TEST(test_daemon_tag_controls)
{
        sd_bus_message *reply;
        struct bus_instance in;
        pid_t a;

        start_daemon(0);
        a = harness_spawn_holder(&h, "ctl", 1, 1, "\x1b[31m\xc2\x9b" "1m\xc2\x9d" "0;t\x07"
                                 "\xc2\x9c\x7f\xc2\x85 caf\xc3\xa9 \xc2\xa0", false, NULL);
        ck_assert_int_gt(a, 0);
        ck_assert_int_eq(harness_wait_signal(&h, "CountChanged", "ctl", 1, T_MS, NULL), 0);

        reply = list_instances("ctl", &in);
        ck_assert_ptr_null(find_control(in.tag, strlen(in.tag)));
        ck_assert_str_eq(in.tag, "\\x1b[31m\\xc2\\x9b1m\\xc2\\x9d0;t\\x07\\xc2\\x9c\\x7f"
                              "\\xc2\\x85 caf\xc3\xa9 \xc2\xa0");
        sd_bus_message_unref(reply);
        harness_kill(a);
}
END_TEST

/* Log lines and D-Bus strings never carry a control character raw: a scope directory
 * whose name holds ESC, CSI (U+009B) and DEL is logged and served escaped. */
START_TEST(test_daemon_log_escapes)
{
        const char *args[] = { "--dir", NULL, NULL };
        char dir[PATH_MAX], want[PATH_MAX + 64], buf[65536];
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *property = NULL;
        const char *bad;
        size_t n;

        (void) snprintf(dir, sizeof dir, "%s/\x1b[31m\xc2\x9b" "1m\x7fscope", h.top);
        ck_assert_int_eq(mkdir(dir, 0700), 0);
        args[1] = dir;
        start_daemon_args(args, 0);

        (void) snprintf(want, sizeof want, "Watching %s/\\x1b[31m\\xc2\\x9b1m\\x7fscope",
                        h.top);
        n = read_file(h.log, buf, sizeof buf);
        ck_assert_msg(strstr(buf, want), "no '%s' in the log: %s", want, buf);
        bad = find_control(buf, n);
        ck_assert_msg(!bad, "a raw control character at byte %zu of the log: %s",
                      (size_t) (bad - buf), buf);

        ck_assert_int_ge(sd_bus_get_property_string(h.bus, "org.headcount.Manager1",
                                                    "/org/headcount/Manager1",
                                                    "org.headcount.Manager1", "Directory",
                                                    &error, &property), 0);
        ck_assert_str_eq(property, want + strlen("Watching "));
        {
                /* a file that is no region: its error names the directory */
                char path[PATH_MAX + 8];
                int fd;

                (void) snprintf(path, sizeof path, "%s/none", dir);
                fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(write(fd, "not a region", 12), 12);
                close(fd);
        }
        ck_assert_int_lt(sd_bus_call_method(h.bus, "org.headcount.Manager1",
                                            "/org/headcount/Manager1", "org.headcount.Manager1",
                                            "Count", &error, NULL, "s", "none"), 0);
        ck_assert_ptr_nonnull(strstr(error.message, property));
        ck_assert_ptr_null(find_control(error.message, strlen(error.message)));
        free(property);
        sd_bus_error_free(&error);
}
END_TEST

/* A holder in another PID namespace is named as such in the log, and flagged (2) in
 * ListInstances: its PID means nothing in ours. Needs the right to make a PID namespace. */
START_TEST(test_daemon_other_pidns)
{
        sd_bus_message *reply;
        struct bus_instance in;
        pid_t outer;
        int p[2];
        char c;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        outer = fork();
        ck_assert_int_ge(outer, 0);
        if (outer == 0) {
                pid_t inner;

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (unshare(CLONE_NEWPID) < 0)
                        _exit(77);
                inner = fork();                 /* PID 1 of the new namespace */
                if (inner == 0) {
                        hc_slot *seat = NULL;

                        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                        if (hc_join("ns", HC_OPTIONS(.dir = h.dir, .max = 2), &seat) < 0)
                                _exit(1);
                        (void) !write(p[1], "j", 1);
                        for (;;)
                                pause();
                }
                (void) waitpid(inner, NULL, 0);
                _exit(1);
        }
        (void) close(p[1]);
        if (read(p[0], &c, 1) != 1) {
                int status = harness_wait_exit(outer, T_MS);

                (void) close(p[0]);
                if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 77) {
                        fprintf(stderr, "test_daemon_other_pidns: skipped: we may not make "
                                "a PID namespace\n");
                        return;
                }
                ck_abort_msg("the holder in a new PID namespace did not join");
        }
        (void) close(p[0]);
        h.spawned[h.n_spawned++] = outer;

        start_daemon(0);
        reply = list_instances("ns", &in);
        ck_assert_uint_eq(in.pid, 1);
        ck_assert_uint_eq(in.flags & HC_INSTANCE_OTHER_PIDNS, HC_INSTANCE_OTHER_PIDNS);
        ck_assert_uint_eq(in.flags & HC_INSTANCE_UNVERIFIED, 0);
        sd_bus_message_unref(reply);

        /* Known before READY=1 (a debug line), then its death, as the kernel tells. */
        ck_assert_msg(log_contains("ns: pid 1 in another PID namespace holds slot 0"),
                      "no holder in another PID namespace in the log");
        harness_kill(outer);
        ck_assert_int_eq(harness_wait_signal(&h, "CountChanged", "ns", 0, T_MS, NULL), 0);
        ck_assert_msg(log_contains("ns: pid 1 in another PID namespace left, slot 0") ||
                      log_contains("ns: pid 1 in another PID namespace died holding slot 0"),
                      "no leave of the holder in another PID namespace in the log");
}
END_TEST

/* Started with 0, 1 and 2 closed, the daemon puts /dev/null there before it opens anything:
 * no region, lock file or socket of its own takes those numbers, where its log lines (on
 * 2) would go into it. */
START_TEST(test_daemon_closed_stdio)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t count = 0;

        h.daemon_closed_stdio = true;
        start_daemon(0);
        ck_assert_int_eq(hc_create("probe", HC_OPTIONS(.dir = h.dir)), 1);
        ck_assert_int_eq(harness_count(&h, "probe", &error, &count), 0);
        ck_assert_uint_eq(count, 0);
        for (int fd = 0; fd <= 2; fd++) {
                char path[64], target[PATH_MAX] = "";
                ssize_t n;

                (void) snprintf(path, sizeof path, "/proc/%d/fd/%d", (int) h.daemon_pid, fd);
                n = readlink(path, target, sizeof target - 1);
                ck_assert_msg(n > 0, "descriptor %d is closed", fd);
                target[n] = '\0';
                ck_assert_msg(strcmp(target, "/dev/null") == 0, "descriptor %d is %s", fd,
                              target);
        }
        ck_assert_int_eq(hc_count("probe", HC_OPTIONS(.dir = h.dir)), 0);
        sd_bus_error_free(&error);
}
END_TEST

/* CountChanged arrives at once (well within 1 s; the benchmark measures it) after a
 * holder is killed with SIGKILL, the count is right, and the death is logged. */
START_TEST(test_daemon_sigkill_signal)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t t_kill, t_signal;
        uint32_t count = 99;
        pid_t a, b;

        start_daemon(0);
        a = harness_spawn_holder(&h, "web", 4, 0, NULL, false, NULL);
        ck_assert_int_gt(a, 0);
        ck_assert_int_eq(harness_wait_signal(&h, "CountChanged", "web", 1, T_MS, NULL), 0);
        b = harness_spawn_holder(&h, "web", 4, 0, NULL, false, NULL);
        ck_assert_int_gt(b, 0);
        ck_assert_int_eq(harness_wait_signal(&h, "CountChanged", "web", 2, T_MS, NULL), 0);

        t_kill = now_usec();
        harness_kill(a);
        ck_assert_int_eq(harness_wait_signal(&h, "CountChanged", "web", 1, T_MS, &t_signal), 0);
        fprintf(stderr, "CountChanged %llu us after SIGKILL\n",
                (unsigned long long) (t_signal - t_kill));
        ck_assert_uint_lt(t_signal - t_kill, 1000 * 1000);
        ck_assert_int_eq(harness_count(&h, "web", &error, &count), 0);
        ck_assert_uint_eq(count, 1);
        ck_assert_int_eq(hc_count("web", HC_OPTIONS(.dir = h.dir)), 1);

        harness_kill(b);
        ck_assert_int_eq(harness_wait_signal(&h, "CountChanged", "web", 0, T_MS, NULL), 0);

        /* The log has the deaths, with the holder's pid. */
        ck_assert_int_eq(kill(h.daemon_pid, SIGTERM), 0);
        ck_assert_int_ge(harness_wait_exit(h.daemon_pid, T_MS), 0);
        h.daemon_pid = 0;
        {
                char died[128];

                (void) snprintf(died, sizeof died, "web: pid %d died holding slot", (int) a);
                ck_assert_msg(log_contains(died), "no '%s' in the log", died);
        }
        sd_bus_error_free(&error);
}
END_TEST

/* A holder whose seat a forked child shares dies: the seat is still held, and the count
 * stays until the child dies too. */
START_TEST(test_daemon_shared_seat)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t count = 99;
        pid_t a, child = 0;

        start_daemon(0);
        a = harness_spawn_holder(&h, "shared", 2, 0, NULL, true, &child);
        ck_assert_int_gt(a, 0);
        ck_assert_int_gt(child, 0);
        ck_assert_int_eq(harness_wait_signal(&h, "CountChanged", "shared", 1, T_MS, NULL), 0);

        harness_kill(a);
        /* The daemon has counted again after the pidfd fired once Count answers; the seat is
         * still held by the child. */
        ck_assert_int_eq(harness_count(&h, "shared", &error, &count), 0);
        ck_assert_uint_eq(count, 1);

        (void) kill(child, SIGKILL);             /* our grandchild: init reaps it */
        ck_assert_int_eq(harness_wait_signal(&h, "CountChanged", "shared", 0, T_MS, NULL), 0);
        ck_assert_int_eq(harness_count(&h, "shared", &error, &count), 0);
        ck_assert_uint_eq(count, 0);
        sd_bus_error_free(&error);
}
END_TEST

/* A second daemon for the same scope is refused with one log line and exit status 1. */
/* A holder that gives its seat back and then exits is logged as leaving, with the pid it
 * joined with; one that exits holding its seat, as dying: the library's records tell them
 * apart for certain, however quickly the process goes. */
START_TEST(test_daemon_leave_is_not_death)
{
        char want[128];
        pid_t left = 0, died = 0;
        int status;

        start_daemon(0);
        for (int k = 0; k < 2; k++) {
                int go[2];
                pid_t pid;
                char c = 0;

                ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
                pid = fork();
                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        hc_slot *s = NULL;

                        close(go[1]);
                        if (hc_join("job", HC_OPTIONS(.dir = h.dir, .max = 2), &s) < 0)
                                _exit(10);
                        if (read(go[0], &c, 1) != 1)      /* the daemon has seen us */
                                _exit(11);
                        if (k == 0)
                                s = hc_leave(s);
                        _exit(0);         /* at once: the exit races the daemon's look */
                }
                close(go[0]);
                /* Its join event, not the count: the daemon may count a seat whose record
                 * is still being written, and learns who holds it only at its next look.
                 * A holder that left before that look would have no join to leave from. */
                ck_assert_int_eq(harness_wait_signal(&h, "InstanceEvent:join", "job", pid, T_MS, NULL), 0);
                ck_assert_int_eq(write(go[1], &c, 1), 1);
                close(go[1]);
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                /* the D-Bus signal says what the log says */
                ck_assert_int_eq(harness_wait_signal(&h, k == 0 ? "InstanceEvent:leave"
                                                                : "InstanceEvent:died",
                                                     "job", pid, T_MS, NULL), 0);
                ck_assert_int_eq(harness_wait_signal(&h, "CountChanged", "job", 0, T_MS, NULL), 0);
                if (k == 0)
                        left = pid;
                else
                        died = pid;
        }
        ck_assert_int_eq(kill(h.daemon_pid, SIGTERM), 0);
        ck_assert_int_ge(harness_wait_exit(h.daemon_pid, T_MS), 0);
        h.daemon_pid = 0;
        (void) snprintf(want, sizeof want, "job: pid %d left", (int) left);
        ck_assert_msg(log_contains(want), "no '%s' in the log", want);
        (void) snprintf(want, sizeof want, "job: pid %d died", (int) left);
        ck_assert_msg(!log_contains(want), "a leave logged as a death: '%s'", want);
        (void) snprintf(want, sizeof want, "job: pid %d died holding slot", (int) died);
        ck_assert_msg(log_contains(want), "no '%s' in the log", want);
}
END_TEST

/* Nothing a user puts in the scope directory keeps the daemon from starting: a region, or
 * files, called "headcountd"; and its own lock is no region anybody sees. */
START_TEST(test_daemon_squatted_names)
{
        static const char *const files[] = { ".headcountd", ".headcountd.lock", "headcountd.lock" };
        sd_bus_error error = SD_BUS_ERROR_NULL;
        hc_slot *s = NULL;
        uint32_t count = 0;

        ck_assert_int_eq(hc_join("headcountd", HC_OPTIONS(.dir = h.dir, .max = 1), &s), 0);
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                char path[PATH_MAX + 32];
                int fd;

                (void) snprintf(path, sizeof path, "%s/%s", h.dir, files[i]);
                fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
                ck_assert_int_ge(fd, 0);
                close(fd);
        }
        start_daemon(0);                  /* READY=1: it started */
        ck_assert_int_eq(harness_count(&h, "headcountd", &error, &count), 0);
        ck_assert_uint_eq(count, 1);      /* the user's region, counted like any other */
        s = hc_leave(s);
        ck_assert_int_eq(harness_wait_signal(&h, "CountChanged", "headcountd", 0, T_MS, NULL), 0);
        ck_assert_int_eq(hc_count("headcountd", HC_OPTIONS(.dir = h.dir)), 0);
        sd_bus_error_free(&error);
}
END_TEST

/* With --log-target=journal and no journal to take the entries, the log goes to stderr
 * with <N> prefixes: it never goes silent. */
START_TEST(test_daemon_log_without_journal)
{
        const char *args[] = { "--bus=none", "--log-target=journal", NULL };
        struct stat st;

        if (stat("/run/systemd/journal/socket", &st) == 0) {
                fprintf(stderr, "SKIP test_daemon_log_without_journal: a journal runs here\n");
                return;
        }
        start_daemon_args(args, 0);
        ck_assert_msg(log_contains("<6>Watching "), "the log went silent");
}
END_TEST

static void kill_and_wait(pid_t pid) {
        int status;

        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}

/* Lines of the daemon's log that contain NEEDLE. */
static unsigned log_count(const char *needle) {
        FILE *f = fopen(h.log, "re");
        char line[4096];
        unsigned n = 0;

        if (!f)
                return 0;
        while (fgets(line, sizeof line, f))
                n += strstr(line, needle) != NULL;
        (void) fclose(f);
        return n;
}

/* Waits until the daemon's log has WANT lines with NEEDLE, at most 120 s. */
/* Waits until the log has WANT lines with NEEDLE, for as long as their number keeps
 * growing: a loaded machine makes the daemon slow, not wrong, so the bound is on a stall
 * (no new line for 30 s), never on the total time. */
static unsigned wait_log_lines(const char *needle, unsigned want) {
        unsigned n = 0, seen = 0;

        for (int idle = 0; idle < 3000 && (n = log_count(needle)) < want; idle++) {
                if (n > seen) {
                        seen = n;
                        idle = 0;
                }
                usleep(10000);
        }
        return n;
}

/* 1,000 holders (20 processes in 50 regions each) under a descriptor limit of 512 that
 * the daemon cannot raise, all SIGKILLed: it runs out of descriptors to follow them with,
 * says so once, and still logs 1,000 deaths, and the counts are 0. The daemon runs
 * without a bus here: the test is about its tracking, and thousands of signals to a
 * test that does not read them would measure the bus instead. */
START_TEST(test_daemon_load_beyond_descriptors)
{
        enum { PROCS = 20, REGIONS = 50 };
        const char *args[] = { "--bus=none", NULL };
        struct rlimit rl = { .rlim_cur = 512, .rlim_max = 512 }, saved;
        pid_t pids[PROCS];
        int ready[2];
        char c;

        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
        if (saved.rlim_max < rl.rlim_max)
                rl = saved;
        /* inherited by the daemon; Check runs each test in a process of its own */
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        start_daemon_args(args, 0);
        ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
        for (int p = 0; p < PROCS; p++) {
                pids[p] = fork();
                ck_assert_int_ge(pids[p], 0);
                if (pids[p] == 0) {
                        close(ready[0]);
                        for (int r = 0; r < REGIONS; r++) {
                                char name[32];
                                hc_slot *s = NULL;

                                (void) snprintf(name, sizeof name, "load%d", r);
                                if (hc_join(name, HC_OPTIONS(.dir = h.dir, .max = PROCS), &s) < 0)
                                        _exit(10);
                        }
                        if (write(ready[1], "r", 1) != 1)
                                _exit(11);
                        pause();
                        _exit(0);
                }
        }
        close(ready[1]);
        for (int p = 0; p < PROCS; p++)
                ck_assert_int_eq(read(ready[0], &c, 1), 1);
        close(ready[0]);
        /* the daemon sees them all... */
        ck_assert_uint_eq(wait_log_lines(" joined, slot", PROCS * REGIONS), PROCS * REGIONS);
        /* ...and all of them die */
        for (int p = 0; p < PROCS; p++)
                kill_and_wait(pids[p]);
        ck_assert_uint_eq(wait_log_lines("died holding slot", PROCS * REGIONS), PROCS * REGIONS);
        for (int r = 0; r < REGIONS; r++) {
                char name[32];

                (void) snprintf(name, sizeof name, "load%d", r);
                ck_assert_int_eq(hc_count(name, HC_OPTIONS(.dir = h.dir)), 0);
        }
        ck_assert_int_eq(kill(h.daemon_pid, SIGTERM), 0);
        ck_assert_int_ge(harness_wait_exit(h.daemon_pid, T_MS), 0);
        h.daemon_pid = 0;
        ck_assert_uint_eq(log_count("died holding slot"), PROCS * REGIONS);
        ck_assert_uint_eq(log_count(" left, slot"), 0);
        ck_assert_uint_eq(log_count("Out of descriptors to follow holders"), 1);
}
END_TEST

/* A service manager that does not read its notification socket: its queue is full (as
 * net.unix.max_dgram_qlen allows) before the first join. For longer than the STATUS=
 * interval, the daemon still logs every join; it sends the STATUS= it held back once
 * the queue has room, and stops on SIGTERM. */
START_TEST(test_daemon_notify_queue_full)
{
        const char *args[] = { "--bus=none", NULL };
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd, status, filled = 0;
        unsigned n = 0;
        uint64_t t0;
        char want[64];

        start_daemon_args(args, 0);
        ck_assert_uint_lt(strlen(h.notify_path), sizeof sa.sun_path);
        strcpy(sa.sun_path, h.notify_path);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ck_assert_int_ge(fd, 0);
        for (int i = 0; i < 100000; i++) {
                if (sendto(fd, "X-FILLER=1", 10, MSG_DONTWAIT, (struct sockaddr *) &sa, sizeof sa) < 0) {
                        ck_assert_int_eq(errno, EAGAIN);
                        break;
                }
                filled++;
        }
        (void) close(fd);
        ck_assert_int_gt(filled, 0);

        /* joins one after another, each logged before the next, for ten STATUS=
         * intervals (100 ms each): the daemon tries to send STATUS= meanwhile */
        t0 = now_usec();
        do {
                ck_assert_int_gt(harness_spawn_holder(&h, "busy", 64, 64, NULL, false, NULL), 0);
                n++;
                ck_assert_uint_eq(wait_log_lines("busy: pid ", n), n);
        } while (n < 64 && now_usec() < t0 + 1000 * 1000);

        /* with room again, the line held back comes, as it is now */
        (void) snprintf(want, sizeof want, "STATUS=1 region, %u instances; busy %u/64", n, n);
        ck_assert_int_eq(harness_notify_wait(&h, want, T_MS, NULL, 0), 0);

        ck_assert_int_eq(kill(h.daemon_pid, SIGTERM), 0);
        status = harness_wait_exit(h.daemon_pid, T_MS);
        h.daemon_pid = 0;
        ck_assert_int_ge(status, 0);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* Whoever may join a region may hold its region lock (a read lock on its byte of lock
 * file 0 keeps every writer out) for as long as they like: a holder's death there is
 * still logged at once, not after the library's 5 s wait for the lock, and the daemon's
 * other work goes on. */
START_TEST(test_daemon_region_lock_held)
{
        const char *args[] = { "--bus=none", NULL };
        struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
                            .l_start = ((off_t) 1 << 40) - 3, .l_len = 1 };   /* HC_LOCK_MUTEX */
        char path[sizeof h.dir + 64];
        uint64_t t0;
        pid_t a, b;
        int fd;

        start_daemon_args(args, 0);
        ck_assert_int_eq(hc_create("locked", HC_OPTIONS(.dir = h.dir, .mode = 0644)), 1);
        ck_assert_int_gt(hc_seat_path("locked", HC_OPTIONS(.dir = h.dir, .flags = HC_NO_CREATE), path,
                                      sizeof path), 0);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);

        a = harness_spawn_holder(&h, "locked", 2, 2, NULL, false, NULL);
        ck_assert_int_gt(a, 0);
        ck_assert_uint_eq(wait_log_lines("locked: pid ", 1), 1);
        t0 = now_usec();
        harness_kill(a);
        ck_assert_uint_eq(wait_log_lines("died holding slot", 1), 1);
        /* the reap is retried every 200 ms; the death itself is logged at once, where a
         * daemon that waited for the lock logged it after the library's 5 s: a bound
         * that only tells the two apart (the load can delay "at once", never to 5 s) */
        ck_assert_msg(now_usec() - t0 < 4500 * 1000, "the death was logged after %llu ms",
                      (unsigned long long) (now_usec() - t0) / 1000);

        /* and other regions' events go on meanwhile */
        b = harness_spawn_holder(&h, "free", 2, 2, NULL, false, NULL);
        ck_assert_int_gt(b, 0);
        ck_assert_uint_eq(wait_log_lines("free: pid ", 1), 1);
        ck_assert_int_eq(hc_count("locked", HC_OPTIONS(.dir = h.dir)), 0);
        (void) close(fd);
        harness_kill(b);
}
END_TEST

START_TEST(test_daemon_second_refused)
{
        const char *args[] = { "--bus=none", NULL };
        char buf[4096];
        int status, lines = 0;
        pid_t second;
        FILE *f;
        size_t n;

        start_daemon(0);
        ck_assert_int_eq(truncate(h.log, 0), 0);
        ck_assert_int_eq(harness_spawn_daemon(&h, args, 0, &second), 0);
        status = harness_wait_exit(second, T_MS);
        ck_assert_int_ge(status, 0);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 1);

        f = fopen(h.log, "re");
        ck_assert_ptr_nonnull(f);
        n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        (void) fclose(f);
        for (char *p = buf; *p; p++)
                lines += *p == '\n';
        ck_assert_msg(lines == 1, "expected one line, got: %s", buf);
        ck_assert_ptr_nonnull(strstr(buf, "<3>Another headcountd"));
        ck_assert_ptr_nonnull(strstr(buf, "refusing to start a second one"));

        /* The first one still serves. */
        ck_assert_int_eq(kill(h.daemon_pid, 0), 0);
}
END_TEST

static void assert_call_error(const char *method, const char *error_name, const char *types,
                              ...) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL;
        va_list ap;
        int k;

        ck_assert_int_eq(sd_bus_message_new_method_call(h.bus, &m, "org.headcount.Manager1",
                                                        "/org/headcount/Manager1",
                                                        "org.headcount.Manager1", method), 0);
        va_start(ap, types);
        ck_assert_int_ge(sd_bus_message_appendv(m, types, ap), 0);
        va_end(ap);
        k = sd_bus_call(h.bus, m, 0, &error, NULL);
        ck_assert_int_lt(k, 0);
        ck_assert_msg(sd_bus_error_has_name(&error, error_name), "%s: got %s: %s", method,
                      error.name, error.message);
        ck_assert_ptr_nonnull(error.message);
        sd_bus_error_free(&error);
        sd_bus_message_unref(m);
}

/* Malformed arguments get D-Bus errors with messages, and the daemon lives on. */
START_TEST(test_daemon_bad_arguments)
{
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char longname[HC_NAME_MAX + 2];
        uint32_t count;

        start_daemon(0);
        memset(longname, 'a', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';

        assert_call_error("Count", SD_BUS_ERROR_INVALID_ARGS, "s", "bad/name");
        assert_call_error("Count", SD_BUS_ERROR_INVALID_ARGS, "s", "");
        assert_call_error("Count", SD_BUS_ERROR_INVALID_ARGS, "s", ".hidden");
        assert_call_error("Count", SD_BUS_ERROR_INVALID_ARGS, "s", "Global\\web");
        assert_call_error("Count", SD_BUS_ERROR_INVALID_ARGS, "s", longname);
        assert_call_error("Count", SD_BUS_ERROR_INVALID_ARGS, "u", 7);
        assert_call_error("Count", SD_BUS_ERROR_INVALID_ARGS, "ss", "web", "extra");
        assert_call_error("Count", SD_BUS_ERROR_INVALID_ARGS, "");
        assert_call_error("ListInstances", SD_BUS_ERROR_INVALID_ARGS, "s", "../etc");
        assert_call_error("ListNames", SD_BUS_ERROR_INVALID_ARGS, "s", "web");
        /* a valid name with no region: nobody in it, as 'headcount count' says */
        ck_assert_int_eq(harness_count(&h, "missing", &error, &count), 0);
        ck_assert_uint_eq(count, 0);
        {
                sd_bus_message *reply = NULL;
                struct bus_instance in;

                ck_assert_int_ge(sd_bus_call_method(h.bus, "org.headcount.Manager1",
                                                    "/org/headcount/Manager1",
                                                    "org.headcount.Manager1", "ListInstances",
                                                    NULL, &reply, "s", "missing"), 0);
                ck_assert_int_eq(sd_bus_message_enter_container(reply, 'a', "(uuuttus)"), 1);
                ck_assert_int_eq(bus_instance_next(reply, &in), 0);     /* nobody */
                sd_bus_message_unref(reply);
        }
        assert_call_error("NoSuchMethod", SD_BUS_ERROR_UNKNOWN_METHOD, "");

        /* Still serving. */
        ck_assert_int_eq(hc_create("probe", HC_OPTIONS(.dir = h.dir)), 1);
        ck_assert_int_eq(harness_count(&h, "probe", &error, &count), 0);
        ck_assert_uint_eq(count, 0);
        ck_assert_int_eq(kill(h.daemon_pid, 0), 0);
        sd_bus_error_free(&error);
}
END_TEST

static int run_daemon_status(const char *arg, char *out, size_t len) {
        char cmd[8192];
        FILE *p;
        size_t n;

        (void) snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", harness_daemon_path(), arg);
        p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        n = fread(out, 1, len - 1, p);
        out[n] = '\0';
        return pclose(p);
}

/* --help and --version exit 0; a usage error exits 64 with a hint. */
START_TEST(test_daemon_usage)
{
        char out[8192];
        int status;

        status = run_daemon_status("--help", out, sizeof out);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert_ptr_nonnull(strstr(out, "--system"));
        status = run_daemon_status("--version", out, sizeof out);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert_str_eq(out, "headcountd " PACKAGE_VERSION "\n");
        status = run_daemon_status("--bogus", out, sizeof out);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 64);
        ck_assert_ptr_nonnull(strstr(out, "Try 'headcountd --help'"));
        status = run_daemon_status("--bus=carrier-pigeon", out, sizeof out);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 64);

        /* What a usage error quotes is escaped: no ESC, CSI or DEL reaches the terminal. */
        status = run_daemon_status("'--bus=\x1b[31m\xc2\x9b" "1m\x7f'", out, sizeof out);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 64);
        ck_assert_msg(strstr(out, "unknown bus '\\x1b[31m\\xc2\\x9b1m\\x7f'\n"), "got: %s", out);
        ck_assert_ptr_null(find_control(out, strlen(out)));
        status = run_daemon_status("'--\x1b[2J'", out, sizeof out);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 64);
        ck_assert_msg(strstr(out, "unrecognized option '--\\x1b[2J'\n"), "got: %s", out);
        ck_assert_ptr_null(find_control(out, strlen(out)));
}
END_TEST

static Suite *suite_daemon(void) {
        Suite *s = suite_create("headcountd");
        TCase *tc;

        tc = tcase_create("core");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_daemon_ready_and_status);
        tcase_add_test(tc, test_daemon_watchdog);
        tcase_add_test(tc, test_daemon_sigterm);
        tcase_add_test(tc, test_daemon_region_appears);
        tcase_add_test(tc, test_daemon_lists);
        tcase_add_test(tc, test_daemon_other_pidns);
        suite_add_tcase(s, tc);

        tc = tcase_create("crash");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_daemon_sigkill_signal);
        tcase_add_test(tc, test_daemon_shared_seat);
        suite_add_tcase(s, tc);

        tc = tcase_create("hostile");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_daemon_second_refused);
        tcase_add_test(tc, test_daemon_leave_is_not_death);
        tcase_add_test(tc, test_daemon_squatted_names);
        tcase_add_test(tc, test_daemon_log_without_journal);
        tcase_add_test(tc, test_daemon_bad_arguments);
        tcase_add_test(tc, test_daemon_usage);
        tcase_add_test(tc, test_daemon_tag_controls);
        tcase_add_test(tc, test_daemon_log_escapes);
        tcase_add_test(tc, test_daemon_closed_stdio);
        tcase_add_test(tc, test_daemon_notify_queue_full);
        tcase_add_test(tc, test_daemon_region_lock_held);
        suite_add_tcase(s, tc);

        /* 2,000 processes' worth of seats: a bound for a loaded machine */
        tc = tcase_create("load");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 300);
        tcase_add_test(tc, test_daemon_load_beyond_descriptors);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr;
        int failed;

        if (!harness_have_dbus()) {
                printf("SKIP: dbus-daemon is not installed (Debian package 'dbus-daemon')\n");
                return 77;
        }
        sr = srunner_create(suite_daemon());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
