/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The C tests' side of the tests' one etcd launcher (tests/common/etcd-launch, which
 * sources tests/common/etcd.sh): a private etcd on free loopback ports, started again on
 * others when a port was taken, that dies with the test however the test ends.
 *
 *   etcd_launch(&l, DIR, N, FLAGS)   starts a cluster of N members in DIR (made by the
 *                                    caller) with the etcd options FLAGS (NULL-terminated,
 *                                    or NULL) and waits until it is healthy: 0, or -1 (its
 *                                    reason on stderr). l.endpoints: the client URLs;
 *                                    l.pid[i]: member i (to SIGSTOP, SIGKILL ...)
 *   etcd_launch_stop(&l)             kills every member and the launcher, and waits
 *
 * Set ETCD_SCHEME=https and ETCD_LAUNCH_ECTL in the environment first for a secured one.
 * Each test program includes this once; the script is found through $top_srcdir.
 */
#ifndef HC_TESTS_ETCD_LAUNCH_H
#define HC_TESTS_ETCD_LAUNCH_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ETCD_LAUNCH_MEMBERS_MAX 3

struct etcd_launch {
        pid_t launcher;
        pid_t pid[ETCD_LAUNCH_MEMBERS_MAX];
        unsigned n;
        char endpoints[256];
};

/* The whole of FILE (at most LEN - 1 bytes) into BUF, NUL-terminated: its length, or -1. */
static inline ssize_t etcd_launch_read(const char *file, char *buf, size_t len) {
        FILE *f = fopen(file, "re");
        size_t n;

        if (!f)
                return -1;
        n = fread(buf, 1, len - 1, f);
        buf[n] = '\0';
        (void) fclose(f);
        return (ssize_t) n;
}

static inline void etcd_launch_stop(struct etcd_launch *l) {
        if (l->launcher > 0) {
                for (unsigned i = 0; i < l->n; i++)
                        if (l->pid[i] > 0)
                                (void) kill(l->pid[i], SIGCONT);
                (void) kill(l->launcher, SIGTERM);     /* it kills the members first */
                (void) waitpid(l->launcher, NULL, 0);
        }
        for (unsigned i = 0; i < l->n; i++)   /* gone with the launcher (pdeathsig) */
                if (l->pid[i] > 0) {
                        (void) kill(l->pid[i], SIGKILL);
                        l->pid[i] = 0;
                }
        l->launcher = 0;
}

static inline int etcd_launch(struct etcd_launch *l, const char *dir, unsigned n,
                              const char *const *flags) {
        const char *src = getenv("top_srcdir");
        char script[4096], file[4096], num[16], buf[256], *p;
        const char *argv[64];
        size_t k = 0;
        int status;

        memset(l, 0, sizeof *l);
        if (n == 0 || n > ETCD_LAUNCH_MEMBERS_MAX)
                return -1;
        (void) snprintf(script, sizeof script, "%s/tests/common/etcd-launch", src ? src : ".");
        (void) snprintf(num, sizeof num, "%u", n);
        argv[k++] = "bash";
        argv[k++] = script;
        argv[k++] = dir;
        argv[k++] = num;
        for (; flags && *flags && k < sizeof argv / sizeof *argv - 1; flags++)
                argv[k++] = *flags;
        argv[k] = NULL;
        l->launcher = fork();
        if (l->launcher < 0)
                return -1;
        if (l->launcher == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                (void) execvp("bash", (char **) argv);
                _exit(127);
        }
        /* the launcher gives up by itself (5 tries of 60 s at most): wait for either */
        (void) snprintf(file, sizeof file, "%s/endpoints", dir);
        while (etcd_launch_read(file, l->endpoints, sizeof l->endpoints) <= 0) {
                if (waitpid(l->launcher, &status, WNOHANG) == l->launcher) {
                        fprintf(stderr, "etcd-launch %s failed (status %d); see %s/etcd-m*.log\n",
                                dir, status, dir);
                        l->launcher = 0;
                        return -1;
                }
                (void) nanosleep(&(struct timespec) { .tv_nsec = 20 * 1000 * 1000 }, NULL);
        }
        l->endpoints[strcspn(l->endpoints, "\n")] = '\0';
        (void) snprintf(file, sizeof file, "%s/pids", dir);
        if (etcd_launch_read(file, buf, sizeof buf) <= 0) {
                etcd_launch_stop(l);
                return -1;
        }
        for (p = strtok(buf, "\n"); p && l->n < n; p = strtok(NULL, "\n"))
                l->pid[l->n++] = (pid_t) atoi(p);
        return 0;
}

#endif
