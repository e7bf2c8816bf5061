/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Who we are. Each fact is read once per process, since the system calls behind them
 * cost more than a whole join (getuid() is 185 ns in a VM here): the pid is read again
 * in a child after fork(); the uid is the one of the first call (a process that changes
 * its uid later is recorded with the first); the boot id never changes; the PID namespace
 * and the time namespace's offset never change for a process, but a child after fork()
 * may be in new ones (unshare(CLONE_NEWPID | CLONE_NEWTIME) applies to children), so a
 * child reads them again.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hc-internal.h"
#include "proc.h"

static pid_t cached_pid;
static uid_t cached_uid = (uid_t) -1;
static uint64_t forks;
static uint64_t epoch;

/* A new epoch on both sides of a fork(): what a process keeps for reuse (spare lock-file
 * descriptions, the region lock's, an inotify instance) is shared with the other side
 * afterwards, and a seat or lock taken through a shared description would be held by both:
 * a killed parent's seat would stay held while its child lives. Each side drops its spares
 * and opens its own. */
static void atfork_parent(void) {
        __atomic_add_fetch(&forks, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&epoch, 1, __ATOMIC_RELEASE);
}

static void atfork_child(void) {
        cached_pid = 0;
        forks++;
        __atomic_add_fetch(&epoch, 1, __ATOMIC_RELEASE);
}

__attribute__((constructor)) static void proc_init(void) {
        (void) pthread_atfork(NULL, atfork_parent, atfork_child);
}

pid_t self_pid(void) {
        pid_t p = __atomic_load_n(&cached_pid, __ATOMIC_RELAXED);

        if (_unlikely_(p == 0)) {
                p = getpid();
                __atomic_store_n(&cached_pid, p, __ATOMIC_RELAXED);
        }
        return p;
}

uid_t self_uid(void) {
        uid_t u = __atomic_load_n(&cached_uid, __ATOMIC_RELAXED);

        if (_unlikely_(u == (uid_t) -1)) {
                u = getuid();
                __atomic_store_n(&cached_uid, u, __ATOMIC_RELAXED);
        }
        return u;
}

uint64_t self_fork_count(void) {
        return __atomic_load_n(&forks, __ATOMIC_RELAXED);
}

uint64_t self_epoch(void) {
        return __atomic_load_n(&epoch, __ATOMIC_ACQUIRE);
}

static pthread_once_t ids_once = PTHREAD_ONCE_INIT;
static uint8_t boot_id[16];
static uint64_t pidns_ino;
static int64_t timens_monotonic_ns;
static uint64_t ns_epoch = UINT64_MAX;       /* the epoch pidns_ino and the offset belong to */

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static ssize_t read_small(const char *path, char *buf, size_t len) {
        ssize_t n;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -1;
        n = read(fd, buf, len - 1);
        (void) close(fd);
        if (n < 0)
                return -1;
        buf[n] = '\0';
        return n;
}

static void ids_init(void) {
        char buf[64];

        if (read_small("/proc/sys/kernel/random/boot_id", buf, sizeof buf) > 0) {
                unsigned j = 0;
                for (const char *p = buf; *p && j < 32; p++) {
                        int v = hexval(*p);
                        if (v < 0)
                                continue;
                        boot_id[j / 2] |= (uint8_t) (j % 2 ? v : v << 4);
                        j++;
                }
        }
}

/* Our PID namespace and time-namespace offset, read again in a child after fork(). */
static void ns_refresh(void) {
        uint64_t e = self_epoch();
        int64_t offset = 0;
        struct stat st;
        char buf[256];

        if (_likely_(__atomic_load_n(&ns_epoch, __ATOMIC_ACQUIRE) == e))
                return;
        __atomic_store_n(&pidns_ino, stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t) st.st_ino : 0,
                         __ATOMIC_RELAXED);
        /* "monotonic <secs> <nsecs>" and "boottime ..." (Linux 5.6 and later; a kernel
         * without time namespaces has no such file and no offset) */
        if (read_small("/proc/self/timens_offsets", buf, sizeof buf) > 0) {
                for (char *line = buf; line && *line; ) {
                        char *next = strchr(line, '\n');
                        long long sec, ns;
                        char clk[32];

                        if (next)
                                *next++ = '\0';
                        if (sscanf(line, "%31s %lld %lld", clk, &sec, &ns) == 3 &&
                            (strcmp(clk, "monotonic") == 0 || strcmp(clk, "1") == 0))
                                offset = (int64_t) sec * 1000000000 + ns;
                        line = next;
                }
        }
        __atomic_store_n(&timens_monotonic_ns, offset, __ATOMIC_RELAXED);
        __atomic_store_n(&ns_epoch, e, __ATOMIC_RELEASE);
}

const uint8_t *self_boot_id(void) {
        (void) pthread_once(&ids_once, ids_init);
        return boot_id;
}

uint64_t self_pidns(void) {
        ns_refresh();
        return __atomic_load_n(&pidns_ino, __ATOMIC_RELAXED);
}

static uint64_t host_clock_ns(clockid_t clock) {
        struct timespec ts;

        ns_refresh();
        (void) clock_gettime(clock, &ts);
        return (uint64_t) ((int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec -
                           __atomic_load_n(&timens_monotonic_ns, __ATOMIC_RELAXED));
}

uint64_t host_monotonic_ns(void) {
        return host_clock_ns(CLOCK_MONOTONIC);
}

/* The same clock to the kernel's tick (1 to 10 ms), at a fifth of the cost here. */
uint64_t host_monotonic_coarse_ns(void) {
        return host_clock_ns(CLOCK_MONOTONIC_COARSE);
}
