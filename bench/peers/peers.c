/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The peer comparison, in one process and one run: a single-instance acquire + release,
 * a denied acquire (another process holds it), and a count, for headcount and for what
 * users would otherwise pick: libbsd's pidfile(3), flock(2), POSIX named semaphores, and
 * GApplication registration on a D-Bus session bus (bench/peers/run.sh starts a private
 * one and sets DBUS_SESSION_BUS_ADDRESS). Every cycle opens by name, as a starting
 * program would. The peers are measured in turns within each round, so that all see the
 * same load; prints the median over the rounds of the mean time per cycle, in ns.
 *
 *   peers [ROUNDS [ITERATIONS]]
 */
#include <bsd/libutil.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "headcount.h"

#define APP_ID "org.headcount.BenchPeers"

static char dir[64], lock_path[128], pid_path[128], sem_name[64];
static unsigned failures;

static int64_t now_ns(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void check(bool ok, const char *what) {
        if (!ok && failures++ < 5)
                fprintf(stderr, "peers: unexpected result: %s\n", what);
}

/* ---- The cycles. Each returns nothing; a wrong outcome counts as a failure. ---- */

static void hc_acquire(void) {
        hc_slot *s = NULL;

        check(hc_join("bench", HC_OPTIONS(.dir = dir, .max = 1), &s) == 0, "hc_join");
        s = hc_leave(s);
}

static void hc_denied(void) {
        hc_slot *s = NULL;

        check(hc_join("held", HC_OPTIONS(.dir = dir, .max = 1), &s) == -EBUSY, "hc_join denied");
}

static void hc_counting(void) {
        check(hc_count("held", HC_OPTIONS(.dir = dir)) == 1, "hc_count");
}

static void pidfile_acquire(void) {
        struct pidfh *p = pidfile_open(pid_path, 0600, NULL);

        check(p != NULL, "pidfile_open");
        if (p) {
                check(pidfile_write(p) == 0, "pidfile_write");
                (void) pidfile_remove(p);
        }
}

static char held_pid_path[160];

static void pidfile_denied(void) {
        pid_t other = 0;
        struct pidfh *p = pidfile_open(held_pid_path, 0600, &other);

        check(p == NULL && errno == EEXIST && other > 0, "pidfile_open denied");
        if (p)
                (void) pidfile_remove(p);
}

static void flock_acquire(void) {
        int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

        check(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0, "flock");
        close(fd);
}

static char held_lock_path[160];

static void flock_denied(void) {
        int fd = open(held_lock_path, O_RDWR | O_CLOEXEC);

        check(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK, "flock denied");
        close(fd);
}

static char held_sem_name[80];

static void sem_acquire(void) {
        sem_t *s = sem_open(sem_name, 0);

        check(s != SEM_FAILED && sem_trywait(s) == 0, "sem_trywait");
        if (s != SEM_FAILED) {
                (void) sem_post(s);
                (void) sem_close(s);
        }
}

static void sem_denied(void) {
        sem_t *s = sem_open(held_sem_name, 0);

        check(s != SEM_FAILED && sem_trywait(s) < 0 && errno == EAGAIN, "sem_trywait denied");
        if (s != SEM_FAILED)
                (void) sem_close(s);
}

static void sem_counting(void) {
        sem_t *s = sem_open(held_sem_name, 0);
        int v = -1;

        check(s != SEM_FAILED && sem_getvalue(s, &v) == 0 && v == 0, "sem_getvalue");
        if (s != SEM_FAILED)
                (void) sem_close(s);
}

static void gapp_acquire(void) {
        GApplication *app = g_application_new(APP_ID ".Free", G_APPLICATION_DEFAULT_FLAGS);

        check(g_application_register(app, NULL, NULL) && !g_application_get_is_remote(app),
              "g_application_register");
        g_object_unref(app);            /* releases the name */
}

static void gapp_denied(void) {
        GApplication *app = g_application_new(APP_ID ".Held", G_APPLICATION_DEFAULT_FLAGS);

        check(g_application_register(app, NULL, NULL) && g_application_get_is_remote(app),
              "g_application_register denied");
        g_object_unref(app);
}

/* ---- The holder: another process that holds each resource ---- */

static pid_t start_holder(int *ready_fd) {
        int p[2];
        pid_t pid;

        if (pipe(p) < 0)
                exit(2);
        pid = fork();
        if (pid == 0) {
                hc_slot *s = NULL;
                GApplication *app;
                sem_t *sem;
                int fd;

                close(p[0]);
                if (hc_join("held", HC_OPTIONS(.dir = dir, .max = 1), &s) < 0)
                        _exit(3);
                struct pidfh *pf = pidfile_open(held_pid_path, 0600, NULL);
                if (!pf || pidfile_write(pf) < 0)
                        _exit(3);
                fd = open(held_lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                if (fd < 0 || flock(fd, LOCK_EX) < 0)
                        _exit(3);
                sem = sem_open(held_sem_name, O_CREAT | O_EXCL, 0600, 1);
                if (sem == SEM_FAILED || sem_wait(sem) < 0)
                        _exit(3);
                app = g_application_new(APP_ID ".Held", G_APPLICATION_DEFAULT_FLAGS);
                if (!g_application_register(app, NULL, NULL) || g_application_get_is_remote(app))
                        _exit(3);
                if (write(p[1], "r", 1) != 1)
                        _exit(3);
                /* a remote instance asks the primary for its actions: answer */
                g_main_loop_run(g_main_loop_new(NULL, FALSE));
                _exit(0);
        }
        close(p[1]);
        *ready_fd = p[0];
        return pid;
}

struct peer {
        const char *name;
        void (*acquire)(void);
        void (*denied)(void);
        void (*count)(void);
        double t[3][64];         /* per round: acquire, denied, count (ns per cycle) */
};

static struct peer peers[] = {
        { "headcount",       hc_acquire,      hc_denied,      hc_counting  },
        { "pidfile(3)",      pidfile_acquire, pidfile_denied, NULL         },
        { "flock(2)",        flock_acquire,   flock_denied,   NULL         },
        { "POSIX semaphore", sem_acquire,     sem_denied,     sem_counting },
        { "GApplication",    gapp_acquire,    gapp_denied,    NULL         },
};
#define N_PEERS (sizeof peers / sizeof peers[0])

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n) {
        qsort(v, n, sizeof *v, cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double run(void (*f)(void), unsigned n) {
        int64_t t0 = now_ns();

        for (unsigned i = 0; i < n; i++)
                f();
        return (double) (now_ns() - t0) / n;
}

int main(int argc, char *argv[]) {
        unsigned rounds = argc > 1 ? (unsigned) atoi(argv[1]) : 7;
        unsigned iters = argc > 2 ? (unsigned) atoi(argv[2]) : 2000;
        double med[N_PEERS][3];
        int ready, status;
        char c;
        pid_t holder;

        if (rounds < 1 || rounds > 64 || iters < 1) {
                fprintf(stderr, "usage: peers [ROUNDS (1..64) [ITERATIONS]]\n");
                return 64;
        }
        if (!getenv("DBUS_SESSION_BUS_ADDRESS")) {
                fprintf(stderr, "peers: no DBUS_SESSION_BUS_ADDRESS (run through bench/peers/run.sh)\n");
                return 1;
        }
        snprintf(dir, sizeof dir, "/dev/shm/hc-peers-XXXXXX");
        if (!mkdtemp(dir))
                return 2;
        snprintf(lock_path, sizeof lock_path, "%s/lock", dir);
        snprintf(pid_path, sizeof pid_path, "%s/pid", dir);
        snprintf(held_lock_path, sizeof held_lock_path, "%s/held.lock", dir);
        snprintf(held_pid_path, sizeof held_pid_path, "%s/held.pid", dir);
        snprintf(sem_name, sizeof sem_name, "/hc-peers-%d", (int) getpid());
        snprintf(held_sem_name, sizeof held_sem_name, "/hc-peers-held-%d", (int) getpid());
        (void) sem_unlink(sem_name);
        if (sem_close(sem_open(sem_name, O_CREAT | O_EXCL, 0600, 1)) < 0)
                return 2;

        holder = start_holder(&ready);
        if (read(ready, &c, 1) != 1) {
                fprintf(stderr, "peers: the holder could not take every resource\n");
                return 1;
        }

        for (unsigned r = 0; r < rounds; r++)
                for (unsigned p = 0; p < N_PEERS; p++) {
                        /* GApplication costs D-Bus round trips: fewer iterations */
                        unsigned n = strcmp(peers[p].name, "GApplication") == 0 ? iters / 10 + 1 : iters;

                        peers[p].t[0][r] = run(peers[p].acquire, n);
                        peers[p].t[1][r] = run(peers[p].denied, n);
                        if (peers[p].count)
                                peers[p].t[2][r] = run(peers[p].count, n);
                }

        kill(holder, SIGKILL);
        waitpid(holder, &status, 0);
        (void) sem_unlink(sem_name);
        (void) sem_unlink(held_sem_name);
        (void) hc_remove("bench", HC_OPTIONS(.dir = dir));
        (void) hc_remove("held", HC_OPTIONS(.dir = dir));
        (void) unlink(lock_path);
        (void) unlink(held_lock_path);
        (void) unlink(held_pid_path);
        (void) rmdir(dir);

        for (unsigned p = 0; p < N_PEERS; p++)
                for (unsigned k = 0; k < 3; k++)
                        med[p][k] = (k < 2 || peers[p].count) ? median(peers[p].t[k], rounds) : 0;

        printf("%u rounds x %u cycles (GApplication: %u); median ns per cycle; "
               "ratio = headcount / peer\n\n", rounds, iters, iters / 10 + 1);
        printf("| peer | acquire + release | ratio | denied acquire | ratio | count | ratio |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|\n");
        for (unsigned p = 0; p < N_PEERS; p++) {
                printf("| %s | %.0f | %.2f | %.0f | %.2f |", peers[p].name, med[p][0],
                       med[0][0] / med[p][0], med[p][1], med[0][1] / med[p][1]);
                if (peers[p].count)
                        printf(" %.0f | %.2f |\n", med[p][2], med[0][2] / med[p][2]);
                else
                        printf(" none | — |\n");
        }
        if (failures) {
                fprintf(stderr, "peers: %u cycles had an unexpected outcome\n", failures);
                return 1;
        }
        return 0;
}
