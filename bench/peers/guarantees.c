/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Which of headcount's guarantees each peer lacks, checked rather than claimed. For
 * headcount, pidfile(3), flock(2), a POSIX named semaphore and GApplication registration
 * (on the session bus in DBUS_SESSION_BUS_ADDRESS; bench/peers/run.sh starts one):
 *   crash     a holder killed with SIGKILL leaves no stale state
 *   count     the exact number of live holders can be asked for (2 after 3 joined and
 *             one was killed)
 *   max-N     exactly N may hold at once (3 get in, the 4th is refused)
 *   pid-reuse nothing names a dead holder's PID as if it were alive
 * Prints a table whose cells say what was observed; exits 1 if headcount itself fails
 * one of them.
 */
#include <bsd/libutil.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "headcount.h"

#define APP_ID "org.headcount.Guarantees"

static char dir[64], path[160], sem_name[64];
static int headcount_failed;

enum peer { HEADCOUNT, PIDFILE, FLOCK, SEM, GAPP, N_PEERS };
static const char *peer_names[] = { "headcount", "pidfile(3)", "flock(2)", "POSIX semaphore",
                                     "GApplication" };

/* Takes the peer's resource (shared, for flock's max-N test) and returns 0 when it got it. */
static int take(enum peer p, bool shared) {
        switch (p) {
        case HEADCOUNT: {
                hc_slot *s = NULL;
                return hc_join("g", HC_OPTIONS(.dir = dir, .max = 3), &s);
        }
        case PIDFILE: {
                struct pidfh *h = pidfile_open(path, 0600, NULL);
                return h && pidfile_write(h) == 0 ? 0 : -1;
        }
        case FLOCK: {
                int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                return fd >= 0 && flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0 ? 0 : -1;
        }
        case SEM: {
                sem_t *s = sem_open(sem_name, 0);
                return s != SEM_FAILED && sem_trywait(s) == 0 ? 0 : -1;
        }
        case GAPP: {
                GApplication *app = g_application_new(APP_ID, G_APPLICATION_DEFAULT_FLAGS);
                return g_application_register(app, NULL, NULL) &&
                       !g_application_get_is_remote(app) ? 0 : -1;
        }
        default:
                return -1;
        }
}

/* Takes it in a child that exits at once (the parent never touches D-Bus or a seat, so
 * that the children it forks later start clean); returns 0 when the child got it. */
static int take_in_child(enum peer p) {
        int status;
        pid_t pid = fork();

        if (pid == 0)
                _exit(take(p, false) == 0 ? 0 : 1);
        if (pid < 0 || waitpid(pid, &status, 0) != pid)
                return -1;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* A child that takes the resource and keeps it; returns its pid, or -1 if it was refused. */
static pid_t holder(enum peer p, bool shared) {
        int fds[2];
        char c = 0;
        pid_t pid;

        if (pipe(fds) < 0)
                exit(2);
        pid = fork();
        if (pid == 0) {
                close(fds[0]);
                c = take(p, shared) == 0 ? 'y' : 'n';
                (void) !write(fds[1], &c, 1);
                if (c == 'n')
                        _exit(0);
                if (p == GAPP)          /* a second instance asks the primary: answer */
                        g_main_loop_run(g_main_loop_new(NULL, FALSE));
                pause();
                _exit(0);
        }
        close(fds[1]);
        if (read(fds[0], &c, 1) != 1)
                c = 'n';
        close(fds[0]);
        if (c != 'y') {
                waitpid(pid, NULL, 0);
                return -1;
        }
        return pid;
}

static void kill_wait(pid_t pid) {
        if (pid > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
}

static void reset(enum peer p) {
        (void) hc_remove("g", HC_OPTIONS(.dir = dir));
        (void) unlink(path);
        (void) sem_unlink(sem_name);
        if (p == SEM)
                (void) sem_close(sem_open(sem_name, O_CREAT | O_EXCL, 0600, 3));
}

/* How many hold it, as the peer can tell; -1 when it cannot count. */
static int count(enum peer p) {
        if (p == HEADCOUNT)
                return hc_count("g", HC_OPTIONS(.dir = dir));
        if (p == SEM) {
                sem_t *s = sem_open(sem_name, 0);
                int v = -1;
                if (s == SEM_FAILED || sem_getvalue(s, &v) < 0)
                        return -1;
                sem_close(s);
                return 3 - v;
        }
        return -1;
}

static void cell(char *buf, size_t len, bool ok, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void cell(char *buf, size_t len, bool ok, const char *fmt, ...) {
        va_list ap;
        int n = snprintf(buf, len, "%s: ", ok ? "yes" : "**no**");

        va_start(ap, fmt);
        vsnprintf(buf + n, len - (size_t) n, fmt, ap);
        va_end(ap);
}

int main(void) {
        char t[N_PEERS][4][160];

        if (!getenv("DBUS_SESSION_BUS_ADDRESS")) {
                fprintf(stderr, "guarantees: no DBUS_SESSION_BUS_ADDRESS (run through bench/peers/run.sh)\n");
                return 1;
        }
        snprintf(dir, sizeof dir, "/dev/shm/hc-guar-XXXXXX");
        if (!mkdtemp(dir))
                return 2;
        snprintf(path, sizeof path, "%s/g.file", dir);
        snprintf(sem_name, sizeof sem_name, "/hc-guar-%d", (int) getpid());

        for (int p = 0; p < N_PEERS; p++) {
                pid_t a, b, c, d;
                int n;

                /* crash: one holder, SIGKILL, then look at what is left */
                reset(p);
                a = holder(p, false);
                kill_wait(a);
                switch (p) {
                case HEADCOUNT:
                        n = count(p);
                        cell(t[p][0], sizeof t[p][0], n == 0 && take_in_child(p) == 0,
                             "count %d, the seat is free", n);
                        headcount_failed |= n != 0;
                        break;
                case PIDFILE: {
                        FILE *f = fopen(path, "re");
                        int pid = 0;
                        if (f && fscanf(f, "%d", &pid) != 1)
                                pid = 0;
                        if (f)
                                fclose(f);
                        cell(t[p][0], sizeof t[p][0], pid != a, "the file is left naming PID %d, "
                             "which is dead", pid);
                        break;
                }
                case FLOCK:
                        cell(t[p][0], sizeof t[p][0], take_in_child(p) == 0,
                             "the lock is free (an empty file stays)");
                        break;
                case SEM:
                        n = count(p);
                        cell(t[p][0], sizeof t[p][0], n == 0, "the value stays decremented: "
                             "%d of 3 units taken, nobody holds one", n);
                        break;
                case GAPP:
                        cell(t[p][0], sizeof t[p][0], take_in_child(p) == 0,
                             "the bus name is released");
                        break;
                }

                /* count and max-N: 3 holders (shared locks for flock), a 4th, one killed */
                reset(p);
                a = holder(p, true);
                b = holder(p, true);
                c = holder(p, true);
                d = holder(p, true);
                if (p == HEADCOUNT || p == SEM) {
                        cell(t[p][2], sizeof t[p][2], a > 0 && b > 0 && c > 0 && d < 0,
                             "3 got in, the 4th was refused");
                        headcount_failed |= p == HEADCOUNT && !(a > 0 && b > 0 && c > 0 && d < 0);
                } else if (p == FLOCK)
                        cell(t[p][2], sizeof t[p][2], false, "exclusive: 1; shared: all 4 got in "
                             "(%s)", d > 0 ? "observed" : "not observed");
                else
                        cell(t[p][2], sizeof t[p][2], false, "one holder only (%s)",
                             a > 0 && b < 0 ? "2nd refused" : "unexpected");
                kill_wait(c);
                n = count(p);
                if (n < 0)
                        cell(t[p][1], sizeof t[p][1], false, "no way to count the holders");
                else
                        cell(t[p][1], sizeof t[p][1], n == 2, "says %d, 2 are alive", n);
                headcount_failed |= p == HEADCOUNT && n != 2;
                kill_wait(a);
                kill_wait(b);
                kill_wait(d);

                /* pid-reuse: what a dead holder leaves that names its PID */
                reset(p);
                a = holder(p, false);
                kill_wait(a);
                if (p == HEADCOUNT) {
                        hc_instance *l = NULL;
                        n = hc_list("g", HC_OPTIONS(.dir = dir), &l);
                        free(l);
                        cell(t[p][3], sizeof t[p][3], n == 0, "liveness is the seat lock; "
                             "hc_list shows %d instances", n);
                        headcount_failed |= n != 0;
                } else if (p == PIDFILE)
                        cell(t[p][3], sizeof t[p][3], access(path, F_OK) != 0,
                             "the file names dead PID %d: a reader's kill(pid, 0) is fooled once "
                             "the PID is reused", (int) a);
                else
                        snprintf(t[p][3], sizeof t[p][3], "n/a: keeps no PID");
        }
        reset(HEADCOUNT);
        (void) sem_unlink(sem_name);
        (void) rmdir(dir);

        printf("| peer | crash safety (SIGKILL) | exact count | max-N | PID-reuse safety |\n");
        printf("|---|---|---|---|---|\n");
        for (int p = 0; p < N_PEERS; p++)
                printf("| %s | %s | %s | %s | %s |\n", peer_names[p], t[p][0], t[p][1], t[p][2],
                       t[p][3]);
        return headcount_failed ? 1 : 0;
}
