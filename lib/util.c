/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers with no knowledge of regions. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hc-internal.h"
#include "util.h"

int64_t monotonic_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t deadline_from(int timeout_ms) {
        if (timeout_ms == 0)
                return 0;
        if (timeout_ms < 0)
                return -1;
        return monotonic_usec() + (int64_t) timeout_ms * 1000;
}

int deadline_wait(int64_t deadline, int64_t cap_usec, struct timespec *ret) {
        int64_t wait = cap_usec;

        if (deadline == 0)
                return -ETIMEDOUT;
        if (deadline > 0) {
                int64_t left = deadline - monotonic_usec();
                if (left <= 0)
                        return -ETIMEDOUT;
                if (left < wait)
                        wait = left;
        }
        *ret = (struct timespec) { .tv_sec = wait / 1000000, .tv_nsec = (long) (wait % 1000000) * 1000 };
        return 0;
}

void sleep_usec(int64_t usec) {
        struct timespec ts = { .tv_sec = usec / 1000000, .tv_nsec = (long) (usec % 1000000) * 1000 };

        (void) nanosleep(&ts, NULL);
}

int fd_above_stdio(int fd) {
        int nfd;

        if (fd < 0 || fd > 2)
                return fd;
        nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        nfd = nfd < 0 ? -errno : nfd;
        safe_close(fd);
        return nfd;
}

int xopenat(int dirfd, const char *path, int flags, mode_t mode) {
        int fd = openat(dirfd, path, flags | O_CLOEXEC | O_NOCTTY, mode);

        if (fd < 0)
                return -errno;
        return fd_above_stdio(fd);
}

int pwrite_all(int fd, const void *p, size_t len, off_t off) {
        ssize_t n = pwrite(fd, p, len, off);

        if (n < 0)
                return -errno;
        return (size_t) n == len ? 0 : -ENOSPC;
}

int fd_path(char *buf, size_t len, int fd, const char *name) {
        int n = name ? snprintf(buf, len, "/proc/self/fd/%d/%s", fd, name)
                     : snprintf(buf, len, "/proc/self/fd/%d", fd);

        return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

int fd_reopen(int fd, int flags) {
        char self[64];

        (void) fd_path(self, sizeof self, fd, NULL);
        return xopenat(AT_FDCWD, self, flags, 0);
}

int ofd_lock(int fd, short type, off_t start, off_t len) {
        if (fcntl(fd, F_OFD_SETLK, &(struct flock) {
                        .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len }) < 0)
                return errno == EACCES ? -EAGAIN : -errno;
        return 0;
}

void ofd_unlock(int fd, off_t start, off_t len) {
        (void) fcntl(fd, F_OFD_SETLK, &(struct flock) {
                        .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len });
}

int ofd_lock_wait(int fd, off_t start, int64_t deadline) {
        int64_t backoff = 50;
        int r;

        if (deadline < 0) {
                for (;;) {
                        if (fcntl(fd, F_OFD_SETLKW, &(struct flock) {
                                        .l_type = F_WRLCK, .l_whence = SEEK_SET,
                                        .l_start = start, .l_len = 1 }) == 0)
                                return 0;
                        if (errno != EINTR)
                                return -errno;
                }
        }
        for (;;) {
                struct timespec ts;

                r = ofd_lock(fd, F_WRLCK, start, 1);
                if (r != -EAGAIN)
                        return r;
                /* The lock is held for microseconds in normal use; a finite wait looks
                 * again after 50 µs, doubling to 10 ms. */
                if (deadline_wait(deadline, backoff, &ts) < 0)
                        return -ETIMEDOUT;
                (void) nanosleep(&ts, NULL);
                if (backoff < 10000)
                        backoff *= 2;
        }
}

uint64_t hash_words(uint64_t seed, const void *p, size_t len) {
        uint64_t h = UINT64_C(0xcbf29ce484222325) ^ seed;

        for (size_t i = 0; i + 8 <= len; i += 8) {
                uint64_t w;
                memcpy(&w, (const uint8_t *) p + i, 8);
                h = (h ^ w) * UINT64_C(0x100000001b3);
                h ^= h >> 29;
        }
        return h;
}
