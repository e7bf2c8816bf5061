/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CMD's life under 'headcount run', for run.c, restart.c and replace.c: starting it,
 * waiting for it while forwarding signals, stopping it when the fleet seat is lost.
 *
 * Signals: we block the ones we forward and SIGCHLD before fork() and read them from a
 * signalfd, so no signal is lost between fork() and knowing the child's pid, and no
 * handler runs in a half-forked state. The child restores the mask before exec. One
 * poll() watches the signalfd and, in the fleet scope, the seat's lost descriptor.
 * A signal that the kernel sent to our whole process group (si_code SI_KERNEL: ^C, ^\,
 * a terminal resize or hangup) already reached CMD when it shares the group; it is not
 * sent a second time.
 *
 * Exec errors travel back on a close-on-exec pipe: EOF means exec succeeded, an errno
 * means it failed, and we exit 127 (not found) or 126 (not executable) as a shell does.
 *
 * We start CMD with vfork(): the child only restores its signal mask (and, for its own
 * group, calls setpgid()), calls execvp() and, if that fails, writes to the pipe and
 * _exit()s: it touches no memory of ours. Not copying our page tables is what keeps
 * 'headcount run' as fast as 'flock -n' (see bench/cli-bench.sh). --restart uses fork()
 * and holds CMD back until its pid is recorded (run_spawn()).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

int64_t run_now_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int run_exit_status(int status) {
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return WEXITSTATUS(status);
}

/* Whether our process group is the foreground group of our controlling terminal. */
bool run_in_foreground(void) {
        int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        bool fg;

        if (fd < 0)
                return false;           /* no controlling terminal */
        fg = tcgetpgrp(fd) == getpgrp();
        (void) close(fd);
        return fg;
}

/* Sends SIG to CMD, or to its process group when it leads one. */
static void signal_command(const struct run *r, pid_t pid, int sig) {
        (void) kill(r->own_group ? -pid : pid, sig);
}

void run_lost_cleanup(struct run *r, pid_t pid) {
        /* CMD is reaped, but its group's id stays reserved while anyone is left in it */
        if (r->lost && r->own_group && r->c->on_lost != ON_LOST_IGNORE)
                (void) kill(-pid, SIGKILL);
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

/* The child's side: never returns. GATE, when >= 0, is read before exec: one byte says
 * go, EOF says the wrapper died before it recorded us. */
static _Noreturn void child(const struct run *r, int errfd, int gate, int gate_w) {
        char go;
        int e;

        (void) sigprocmask(SIG_SETMASK, &r->saved, NULL);
        if (r->own_group)
                (void) setpgid(0, 0);
        if (gate >= 0) {
                ssize_t n;

                (void) close(gate_w);   /* or EOF would never come */

                do
                        n = read(gate, &go, 1);
                while (n < 0 && errno == EINTR);
                if (n != 1)
                        _exit(EXIT_FAILURE);
        }
        execvp(r->c->cmd[0], r->c->cmd);
        e = errno;
        (void) !write(errfd, &e, sizeof e);
        _exit(e == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC);
}

int run_spawn(struct run *r, bool gated) {
        int pipefd[2], gate[2] = { -1, -1 }, err;
        pid_t pid;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                goto fail;
        if (gated && pipe2(gate, O_CLOEXEC) < 0) {
                (void) close(pipefd[0]);
                (void) close(pipefd[1]);
                goto fail;
        }
        if (gated)
                pid = fork();
        else
                pid = vfork();
        if (pid == 0)
                /* NOLINTNEXTLINE(clang-analyzer-unix.Vfork): only system calls, exec and _exit */
                child(r, pipefd[1], gate[0], gate[1]);
        err = errno;
        (void) close(pipefd[1]);
        if (gated)
                (void) close(gate[0]);
        if (pid < 0) {
                (void) close(pipefd[0]);
                if (gated)
                        (void) close(gate[1]);
                errno = err;
                goto fail;
        }
        if (r->own_group)
                (void) setpgid(pid, pid);       /* as the child does: whoever comes first */
        /* 'list' shows CMD, not us; or us, when CMD has let go of the seat already
         * (a record names only a process that holds its seat) */
        if (hc_slot_set_pid(r->slot, pid) < 0)
                (void) hc_slot_set_pid(r->slot, getpid());
        r->pid = pid;
        if (gated) {
                (void) !write(gate[1], "g", 1);
                (void) close(gate[1]);
        }
        err = exec_result(pipefd[0]);
        (void) close(pipefd[0]);
        if (err == 0)
                return 0;

        /* exec failed: the child has exited, reap it */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        r->pid = 0;
        message_error("cannot run '%s': %s", r->c->cmd[0], strerror(err));
        return err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
fail:
        message_error("cannot run '%s': %s", r->c->cmd[0], strerror(errno));
        return EXIT_FAILURE;
}

/* The fleet seat was lost: act as --on-lost says. */
static void seat_lost(struct run *r) {
        if (r->c->on_lost == ON_LOST_IGNORE) {
                message_error("warning: lost the fleet seat in region '%s'; '%s' keeps "
                              "running (--on-lost=ignore)", r->c->name, r->c->cmd[0]);
                r->lostfd = -1;
                return;
        }
        message_error("lost the fleet seat in region '%s': stopping '%s'", r->c->name,
                      r->c->cmd[0]);
        r->lost = true;
        r->lostfd = -1;
        if (r->pid <= 0)
                return;
        if (r->c->on_lost == ON_LOST_KILL) {
                signal_command(r, r->pid, SIGKILL);
                return;
        }
        signal_command(r, r->pid, SIGTERM);
        r->kill_at_ms = run_now_ms() + r->c->kill_after_ms;
}

static void on_signal(struct run *r, const struct signalfd_siginfo *si) {
        int sig = (int) si->ssi_signo;

        if (r->c->restart != RESTART_NO && (sig == SIGTERM || sig == SIGINT))
                r->stopping = true;
        if (r->pid <= 0)
                return;
        if (si->ssi_code == SI_KERNEL) {
                if (r->own_group)
                        (void) kill(-r->pid, sig);      /* it did not reach CMD's group */
                return;
        }
        (void) kill(r->pid, sig);
}

int run_wait(struct run *r, int timeout_ms, int *ret_status) {
        int64_t deadline = timeout_ms < 0 ? -1 : run_now_ms() + timeout_ms;

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = r->sigfd, .events = POLLIN },
                        { .fd = r->lostfd, .events = POLLIN },
                };
                struct signalfd_siginfo si;
                int64_t now = run_now_ms(), until = -1;
                int n;

                if (r->pid <= 0 && (r->stopping || r->lost))
                        return RUN_INTERRUPTED;
                if (r->pid > 0 && r->kill_at_ms >= 0 && now >= r->kill_at_ms) {
                        signal_command(r, r->pid, SIGKILL);
                        r->kill_at_ms = -1;
                }
                if (r->pid <= 0 && deadline >= 0 && now >= deadline)
                        return RUN_TIMEOUT;
                if (r->pid <= 0)
                        until = deadline;
                if (r->pid > 0 && r->kill_at_ms >= 0)
                        until = r->kill_at_ms;

                n = poll(p, 2, until < 0 ? -1 : (int) (until - now));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[1].revents && hc_slot_lost(r->slot) != 0)
                        seat_lost(r);
                if (!(p[0].revents & POLLIN))
                        continue;
                if (read(r->sigfd, &si, sizeof si) != (ssize_t) sizeof si)
                        continue;
                if (si.ssi_signo != SIGCHLD) {
                        on_signal(r, &si);
                        continue;
                }
                while (r->pid > 0) {
                        int status;
                        pid_t w = waitpid(r->pid, &status, WNOHANG);

                        if (w == r->pid) {
                                r->pid = 0;
                                if (ret_status)
                                        *ret_status = status;
                                return RUN_EXITED;
                        }
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0)
                                return -errno;
                        break;  /* stopped or continued, or another child */
                }
        }
}

/* Blocks the signals we forward and SIGCHLD, and opens the signalfd that reads them. */
int run_signals_setup(struct run *r) {
        /* An inherited SIG_IGN for SIGCHLD would reap the child behind our back. */
        (void) signal(SIGCHLD, SIG_DFL);
        sigemptyset(&r->mask);
        for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
                sigaddset(&r->mask, forwarded[i]);
        sigaddset(&r->mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &r->mask, &r->saved) < 0)
                return -errno;
        r->sigfd = signalfd(-1, &r->mask, SFD_CLOEXEC);
        if (r->sigfd < 0)
                return -errno;
        return 0;
}
