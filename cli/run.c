/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * 'headcount run NAME -- CMD': take a seat, run CMD while holding it, give it back.
 *
 * The seat is joined with HC_INHERIT, so CMD inherits the descriptor that holds it: the
 * kernel keeps the seat for as long as CMD (or the wrapper) has it open, and a SIGKILLed
 * wrapper cannot free a seat that CMD still uses. The slot's record names CMD's pid, so
 * 'list' shows the process that does the work; it is written only once that pid is known
 * (HC_RECORD_LATER), so that headcountd names CMD in every event of the holding.
 *
 * Signals: we block the ones we forward and SIGCHLD before fork() and take them with
 * sigwaitinfo(), so no signal is lost between fork() and knowing the child's pid, and
 * no handler runs in a half-forked state. The child restores the mask before exec.
 * A signal that the kernel sent to our whole process group (si_code SI_KERNEL: ^C, ^\,
 * a terminal resize or hangup) already reached CMD, which shares the group; it is not
 * sent a second time.
 *
 * Exec errors travel back on a close-on-exec pipe: EOF means exec succeeded, an errno
 * means it failed, and we exit 127 (not found) or 126 (not executable) as a shell does.
 *
 * We start CMD with vfork(): the child only restores its signal mask, calls execvp() and,
 * if that fails, writes to the pipe and _exit()s: it touches no memory of ours. Not
 * copying our page tables is what keeps 'headcount run' as fast as 'flock -n' (see
 * bench/cli-bench.sh).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "instance.h"

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

/* As report_full() in the fleet scope, where a pid means something on its host only. */
static void report_full_fleet(const struct cli *c) {
        hc_fleet_instance *list = NULL;
        char holders[320] = "";
        size_t len = 0;
        int n;

        n = hc_fleet_list(c->name, CLI_OPTIONS(c), &list);
        for (int i = 0; i < n && i < (int) c->max && len < sizeof holders - 100; i++)
                len += (size_t) snprintf(holders + len, sizeof holders - len, "%spid %d on %s",
                                         len ? ", " : "", (int) list[i].instance.pid,
                                         list[i].host);
        free(list);
        if (len > 0)
                message_error("no free seat in fleet region '%s': held by %s", c->name, holders);
        else
                message_error("no free seat in fleet region '%s'", c->name);
}

/* Says who holds the seats we could have had: with --max 1, who is already running. A
 * PID is only as good as its record: "pid 2 in another PID namespace", "pid 1234
 * (unverified)" say so. */
static void report_full(const struct cli *c, int r) {
        hc_instance *list = NULL;
        char holders[320] = "";
        size_t len = 0;
        int n;

        if (r == -ETIMEDOUT) {
                message_error("no free seat in region '%s' within the timeout", c->name);
                return;
        }
        if (c->fleet) {
                report_full_fleet(c);
                return;
        }
        n = hc_list(c->name, CLI_OPTIONS(c), &list);
        for (int i = 0; i < n && len < sizeof holders - INSTANCE_DESCRIPTION_MAX - 2; i++) {
                char who[INSTANCE_DESCRIPTION_MAX];

                if (list[i].slot >= c->max || (list[i].flags & HC_INSTANCE_NO_RECORD))
                        continue;
                len += (size_t) snprintf(holders + len, sizeof holders - len, "%s%s",
                                         len ? ", " : "",
                                         instance_describe(&list[i], who, sizeof who));
        }
        free(list);
        if (len > 0)
                message_error("no free seat in region '%s': held by %s", c->name, holders);
        else
                message_error("no free seat in region '%s'", c->name);
}

static int wait_child(pid_t pid, const sigset_t *mask, int *ret_status) {
        for (;;) {
                siginfo_t si;
                int sig;

                sig = sigwaitinfo(mask, &si);
                if (sig < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (sig == SIGCHLD) {
                        pid_t w = waitpid(pid, ret_status, WNOHANG);
                        if (w == pid)
                                return 0;
                        if (w < 0 && errno != EINTR)
                                return -errno;
                        continue;       /* stopped or continued, or another child */
                }
                if (si.si_code != SI_KERNEL)
                        (void) kill(pid, sig);
        }
}

/* Reads the child's exec errno from the pipe: 0 when exec succeeded (EOF). */
static int exec_result(int fd) {
        int err = 0;
        ssize_t n;

        do
                n = read(fd, &err, sizeof err);
        while (n < 0 && errno == EINTR);
        return n == (ssize_t) sizeof err ? err : 0;
}

int command_run(const struct cli *c) {
        hc_slot *slot = NULL;
        sigset_t mask, saved;
        int pipefd[2], status = 0, err, r;
        pid_t pid;

        r = hc_join(c->name, CLI_OPTIONS(c, .max = c->max, .tag = c->tag,
                                         .timeout_ms = c->timeout_ms,
                                         .flags = HC_INHERIT | HC_RECORD_LATER),
                    &slot);
        if (r == -EBUSY || r == -ETIMEDOUT) {
                if (!c->quiet)
                        report_full(c, r);
                return c->conflict_exit_code;
        }
        if (r < 0)
                return cli_failure(c, r, "cannot join region '%s'", c->name);

        /* An inherited SIG_IGN for SIGCHLD would reap the child behind our back. */
        (void) signal(SIGCHLD, SIG_DFL);
        sigemptyset(&mask);
        for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
                sigaddset(&mask, forwarded[i]);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, &saved) < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
                message_error("cannot run '%s': %s", c->cmd[0], strerror(errno));
                slot = hc_leave(slot);
                return EXIT_FAILURE;
        }

        pid = vfork();
        if (pid < 0) {
                message_error("cannot run '%s': %s", c->cmd[0], strerror(errno));
                slot = hc_leave(slot);
                return EXIT_FAILURE;
        }
        if (pid == 0) {
                (void) sigprocmask(SIG_SETMASK, &saved, NULL);
                execvp(c->cmd[0], c->cmd);
                int e = errno;
                (void) !write(pipefd[1], &e, sizeof e);
                _exit(e == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC);
        }

        (void) close(pipefd[1]);
        (void) hc_slot_set_pid(slot, pid);     /* 'list' shows CMD, not us */
        err = exec_result(pipefd[0]);
        (void) close(pipefd[0]);

        r = wait_child(pid, &mask, &status);
        /* CMD killed by a signal died holding the seat: monitors are told so */
        slot = r == 0 && err == 0 && WIFSIGNALED(status) ? hc_abandon(slot) : hc_leave(slot);
        if (err != 0) {
                message_error("cannot run '%s': %s", c->cmd[0], strerror(err));
                return err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
        }
        if (r < 0) {
                message_error("cannot wait for '%s': %s", c->cmd[0], strerror(-r));
                return EXIT_FAILURE;
        }
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return WEXITSTATUS(status);
}
