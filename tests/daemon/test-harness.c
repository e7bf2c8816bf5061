/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The test harness for headcountd (see test-harness.h). Everything waits on events with
 * generous timeouts, never on sleeps: the tests must hold on a loaded machine.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "headcount.h"
#include "test-harness.h"

static int remaining_ms(uint64_t deadline) {
        uint64_t now = now_usec();

        return now >= deadline ? 0 : (int) ((deadline - now + 999) / 1000);
}

const char *harness_daemon_path(void) {
        static char buf[PATH_MAX];
        const char *e = getenv("HEADCOUNTD");

        if (e && e[0])
                return e;
        e = getenv("HC_BUILDDIR");
        if (e && e[0]) {
                (void) snprintf(buf, sizeof buf, "%s/daemon/headcountd", e);
                return buf;
        }
        return HEADCOUNTD_PATH;
}

int harness_have_dbus(void) {
        return system("dbus-daemon --version >/dev/null 2>&1") == 0;
}

int harness_init(struct harness *h) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        *h = (struct harness) { .notify_fd = -1 };
        (void) snprintf(h->top, sizeof h->top, "%s/headcountd-test.XXXXXX",
                        getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(h->top))
                return -errno;
        (void) snprintf(h->dir, sizeof h->dir, "%s/scope", h->top);
        (void) snprintf(h->log, sizeof h->log, "%s/daemon.log", h->top);
        (void) snprintf(h->notify_path, sizeof h->notify_path, "%s/notify", h->top);
        if (mkdir(h->dir, 0700) < 0)
                return -errno;

        if (strlen(h->notify_path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, h->notify_path);
        h->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (h->notify_fd < 0)
                return -errno;
        if (bind(h->notify_fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;
        return 0;
}

/* dbus-daemon --session --nofork --print-address=FD: the address line means it serves. */
int harness_start_bus(struct harness *h) {
        char fdarg[64];
        int p[2];
        size_t n = 0;
        uint64_t deadline = now_usec() + 20 * 1000000;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        h->bus_pid = fork();
        if (h->bus_pid < 0)
                return -errno;
        if (h->bus_pid == 0) {
                int devnull = open("/dev/null", O_RDWR);

                (void) dup2(p[1], 3);
                (void) dup2(devnull, STDIN_FILENO);
                (void) dup2(devnull, STDOUT_FILENO);
                (void) dup2(devnull, STDERR_FILENO);     /* "Failed to set fd limit" */
                (void) snprintf(fdarg, sizeof fdarg, "--print-address=3");
                execlp("dbus-daemon", "dbus-daemon", "--session", "--nofork", "--nopidfile",
                       fdarg, (char *) NULL);
                _exit(127);
        }
        (void) close(p[1]);
        for (;;) {
                struct pollfd pfd = { .fd = p[0], .events = POLLIN };
                ssize_t k;

                if (poll(&pfd, 1, remaining_ms(deadline)) <= 0) {
                        (void) close(p[0]);
                        return -ETIMEDOUT;
                }
                k = read(p[0], h->bus_address + n, sizeof h->bus_address - 1 - n);
                if (k <= 0) {
                        (void) close(p[0]);
                        return -EIO;
                }
                n += (size_t) k;
                h->bus_address[n] = '\0';
                if (strchr(h->bus_address, '\n'))
                        break;
        }
        (void) close(p[0]);
        *strchr(h->bus_address, '\n') = '\0';
        return 0;
}

/* Whether PATH starts with "#!". */
static bool is_script(const char *path) {
        char magic[2] = "";
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        bool r;

        if (fd < 0)
                return false;
        r = read(fd, magic, sizeof magic) == (ssize_t) sizeof magic && magic[0] == '#' &&
            magic[1] == '!';
        (void) close(fd);
        return r;
}

int harness_spawn_daemon(struct harness *h, const char *const *args, uint64_t watchdog_usec,
                         pid_t *ret_pid) {
        const char *argv[32] = { "headcountd", "--dir", h->dir, "--log-target=stderr", "-v" };
        size_t n = 5;
        pid_t pid;

        for (size_t i = 0; args && args[i] && n < 31; i++)
                argv[n++] = args[i];
        argv[n] = NULL;

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int log = open(h->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                char wd[32];

                if (h->daemon_closed_stdio)
                        for (int fd = 0; fd <= 2; fd++)
                                (void) close(fd);
                else if (log >= 0)
                        (void) dup2(log, STDERR_FILENO);
                (void) setenv("NOTIFY_SOCKET", h->notify_path, 1);
                if (h->bus_address[0])
                        (void) setenv("DBUS_SESSION_BUS_ADDRESS", h->bus_address, 1);
                (void) unsetenv("WATCHDOG_PID");
                (void) unsetenv("JOURNAL_STREAM");
                (void) unsetenv("HEADCOUNT_DIR");
                if (watchdog_usec) {
                        (void) snprintf(wd, sizeof wd, "%llu", (unsigned long long) watchdog_usec);
                        (void) setenv("WATCHDOG_USEC", wd, 1);
                } else
                        (void) unsetenv("WATCHDOG_USEC");
                if (h->daemon_closed_stdio && is_script(harness_daemon_path())) {
                        /* libtool's wrapper script: bash would read it from the closed
                         * descriptor 2 and leave it there for the daemon, dash moves it
                         * above 9. Run it with sh, so the daemon finds 2 closed. */
                        memmove(argv + 1, argv, (n + 1) * sizeof *argv);
                        argv[0] = "sh";
                        argv[1] = harness_daemon_path();
                        execv("/bin/sh", (char **) argv);
                } else
                        execv(harness_daemon_path(), (char **) argv);
                _exit(127);
        }
        if (ret_pid)
                *ret_pid = pid;
        else
                h->daemon_pid = pid;
        return 0;
}

/* Reads every pending notification into h->notes, dropping the oldest when full. */
static int notify_drain(struct harness *h) {
        for (;;) {
                char buf[4096];
                ssize_t k;

                k = recv(h->notify_fd, buf, sizeof buf - 1, 0);
                if (k < 0)
                        return errno == EAGAIN ? 0 : -errno;
                buf[k] = '\0';
                for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
                        const size_t max = sizeof h->notes / sizeof h->notes[0];

                        if (h->n_notes == max) {
                                memmove(h->notes, h->notes + 1, (max - 1) * sizeof h->notes[0]);
                                h->n_notes--;
                        }
                        (void) snprintf(h->notes[h->n_notes++], sizeof h->notes[0], "%s", line);
                }
        }
}

int harness_notify_wait(struct harness *h, const char *needle, int timeout_ms,
                        char *ret, size_t len) {
        uint64_t deadline = now_usec() + (uint64_t) timeout_ms * 1000;

        for (;;) {
                struct pollfd pfd = { .fd = h->notify_fd, .events = POLLIN };
                int k, ms;

                k = notify_drain(h);
                if (k < 0)
                        return k;
                for (size_t i = 0; i < h->n_notes; i++) {
                        if (!strstr(h->notes[i], needle))
                                continue;
                        if (ret && len)
                                (void) snprintf(ret, len, "%s", h->notes[i]);
                        memmove(h->notes, h->notes + i + 1, (h->n_notes - i - 1) * sizeof h->notes[0]);
                        h->n_notes -= i + 1;
                        return 0;
                }
                ms = remaining_ms(deadline);
                if (ms == 0 || poll(&pfd, 1, ms) == 0)
                        return -ETIMEDOUT;
        }
}

static int on_signal(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        struct harness *h = userdata;
        struct harness_signal *s;
        const char *name;
        uint32_t count = 0;
        int k;

        if (h->n_signals == HARNESS_SIGNALS_MAX)
                return 0;
        s = h->signals + h->n_signals;
        if (sd_bus_message_is_signal(msg, "org.headcount.Manager1", "CountChanged") ||
            sd_bus_message_is_signal(msg, "org.headcount.Manager1", "FleetCountChanged"))
                k = sd_bus_message_read(msg, "su", &name, &count);
        else if (sd_bus_message_is_signal(msg, "org.headcount.Manager1", "InstanceEvent")) {
                const char *event = NULL;
                uint32_t slot, flags;

                /* kept as member "InstanceEvent:EVENT", with the pid as the count */
                k = sd_bus_message_read(msg, "ssuuu", &name, &event, &slot, &count, &flags);
                if (k < 0)
                        return 0;
                s->usec = now_usec();
                (void) snprintf(s->member, sizeof s->member, "InstanceEvent:%s", event);
                (void) snprintf(s->name, sizeof s->name, "%s", name);
                s->count = count;
                h->n_signals++;
                return 0;
        } else
                k = sd_bus_message_read(msg, "s", &name);
        if (k < 0)
                return 0;
        s->usec = now_usec();
        (void) snprintf(s->member, sizeof s->member, "%s", sd_bus_message_get_member(msg));
        (void) snprintf(s->name, sizeof s->name, "%s", name);
        s->count = count;
        h->n_signals++;
        return 0;
}

int harness_connect(struct harness *h) {
        int k;

        k = sd_bus_new(&h->bus);
        if (k < 0)
                return k;
        k = sd_bus_set_address(h->bus, h->bus_address);
        if (k < 0)
                return k;
        (void) sd_bus_set_bus_client(h->bus, true);
        k = sd_bus_start(h->bus);
        if (k < 0)
                return k;
        k = sd_bus_match_signal(h->bus, NULL, NULL, "/org/headcount/Manager1",
                                "org.headcount.Manager1", NULL, on_signal, h);
        return k < 0 ? k : 0;
}

/* Waits for the bus or for a notification (which we read at once), until DEADLINE. */
static int bus_wait(struct harness *h, uint64_t deadline) {
        struct pollfd p[2] = {
                { .fd = sd_bus_get_fd(h->bus), .events = (short) sd_bus_get_events(h->bus) },
                { .fd = h->notify_fd, .events = POLLIN },
        };
        uint64_t until = deadline, bus_timeout;
        int ms;

        if (p[0].fd < 0)
                return p[0].fd;
        if (sd_bus_get_timeout(h->bus, &bus_timeout) >= 0 && bus_timeout < until)
                until = bus_timeout;
        ms = remaining_ms(until);
        if (poll(p, 2, ms) < 0 && errno != EINTR)
                return -errno;
        if (p[1].revents)
                return notify_drain(h);
        return 0;
}

int harness_wait_signal(struct harness *h, const char *member, const char *name, long count,
                        int timeout_ms, uint64_t *ret_usec) {
        uint64_t deadline = now_usec() + (uint64_t) timeout_ms * 1000;

        for (;;) {
                int k;

                for (size_t i = 0; i < h->n_signals; i++) {
                        struct harness_signal *s = h->signals + i;

                        if (strcmp(s->member, member) != 0 || strcmp(s->name, name) != 0 ||
                            (count >= 0 && s->count != (uint32_t) count))
                                continue;
                        if (ret_usec)
                                *ret_usec = s->usec;
                        memmove(h->signals, s + 1, (h->n_signals - i - 1) * sizeof *s);
                        h->n_signals -= i + 1;
                        return 0;
                }
                k = sd_bus_process(h->bus, NULL);
                if (k < 0)
                        return k;
                if (k > 0)
                        continue;
                if (remaining_ms(deadline) == 0)
                        return -ETIMEDOUT;
                k = bus_wait(h, deadline);
                if (k < 0)
                        return k;
        }
}

int harness_count(struct harness *h, const char *name, sd_bus_error *error, uint32_t *ret) {
        sd_bus_message *reply = NULL;
        int k;

        k = sd_bus_call_method(h->bus, "org.headcount.Manager1", "/org/headcount/Manager1",
                               "org.headcount.Manager1", "Count", error, &reply, "s", name);
        if (k < 0)
                return k;
        k = sd_bus_message_read(reply, "u", ret);
        sd_bus_message_unref(reply);
        return k < 0 ? k : 0;
}

static void holder_sleep(void) {
        for (;;)
                pause();
}

pid_t harness_spawn_holder(struct harness *h, const char *name, unsigned max, unsigned capacity,
                           const char *tag, bool fork_child, pid_t *ret_grandchild) {
        int p[2];
        pid_t pid, pids[2] = { 0, 0 };

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                hc_slot *slot = NULL;
                int k;

                (void) close(p[0]);
                /* Never outlive the test, even when it fails half-way. */
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() == 1)
                        _exit(1);
                k = hc_join(name, HC_OPTIONS(.dir = h->dir, .max = max, .capacity = capacity,
                                             .tag = tag), &slot);
                if (k < 0)
                        _exit(1);
                pids[0] = getpid();
                if (fork_child) {
                        pids[1] = fork();
                        if (pids[1] == 0)
                                holder_sleep();
                }
                if (write(p[1], pids, sizeof pids) != sizeof pids)
                        _exit(1);
                holder_sleep();
        }
        (void) close(p[1]);
        if (read(p[0], pids, sizeof pids) != sizeof pids) {
                (void) close(p[0]);
                (void) waitpid(pid, NULL, 0);
                return -EIO;
        }
        (void) close(p[0]);
        if (h->n_spawned + 2 <= sizeof h->spawned / sizeof h->spawned[0]) {
                h->spawned[h->n_spawned++] = pid;
                if (pids[1] > 0)
                        h->spawned[h->n_spawned++] = pids[1];
        }
        if (ret_grandchild)
                *ret_grandchild = pids[1];
        return pid;
}

void harness_kill(pid_t pid) {
        if (pid <= 0)
                return;
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
}

int harness_wait_exit(pid_t pid, int timeout_ms) {
        struct pollfd pfd = { .events = POLLIN };
        int status;

        /* A pidfd becomes readable when the child exits: no polling loop needed. */
        pfd.fd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (pfd.fd >= 0) {
                int k = poll(&pfd, 1, timeout_ms);

                (void) close(pfd.fd);
                if (k == 0)
                        return -ETIMEDOUT;
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return status;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

void harness_done(struct harness *h) {
        for (size_t i = 0; i < h->n_spawned; i++) {
                (void) kill(h->spawned[i], SIGKILL);
                (void) waitpid(h->spawned[i], NULL, WNOHANG);
        }
        h->n_spawned = 0;
        if (h->daemon_pid > 0) {
                (void) kill(h->daemon_pid, SIGKILL);
                (void) waitpid(h->daemon_pid, NULL, 0);
                h->daemon_pid = 0;
        }
        h->bus = sd_bus_flush_close_unref(h->bus);
        if (h->bus_pid > 0) {
                (void) kill(h->bus_pid, SIGTERM);
                (void) waitpid(h->bus_pid, NULL, 0);
                h->bus_pid = 0;
        }
        if (h->notify_fd >= 0)
                (void) close(h->notify_fd);
        h->notify_fd = -1;
        if (h->top[0])
                (void) nftw(h->top, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
