/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers with no knowledge of regions: time, deadlines, descriptors, OFD locks, hashing. */
#ifndef HC_UTIL_H
#define HC_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* CLOCK_MONOTONIC in microseconds. */
int64_t monotonic_usec(void);

/* 0: do not wait; -1: forever; else an absolute monotonic_usec() time. */
int64_t deadline_from(int timeout_ms);

/* The time left until DEADLINE (from deadline_from()), capped at CAP_USEC, as a timespec
 * for ppoll()/futex(); -ETIMEDOUT when it has passed or is 0. */
int deadline_wait(int64_t deadline, int64_t cap_usec, struct timespec *ret);

/* Sleeps USEC microseconds. */
void sleep_usec(int64_t usec);

/* Moves FD above the standard descriptors (close-on-exec), so that no descriptor of ours
 * is ever 0, 1 or 2: a program that runs with one of them closed must not print into a
 * region. Returns the new descriptor, or -errno (FD is closed then). */
int fd_above_stdio(int fd);

/* openat() with O_CLOEXEC | O_NOCTTY, the result above stdio. -errno on failure. */
int xopenat(int dirfd, const char *path, int flags, mode_t mode);

/* pwrite() of all LEN bytes: 0, -errno, or -ENOSPC for a short write. */
int pwrite_all(int fd, const void *p, size_t len, off_t off);

/* "/proc/self/fd/FD", or "/proc/self/fd/FD/NAME" when NAME: a path that reaches what FD
 * refers to (or NAME in that directory) whatever its name is now. -ENAMETOOLONG. */
int fd_path(char *buf, size_t len, int fd, const char *name);

/* A new open file description of the file FD refers to (through /proc/self/fd), with
 * FLAGS; the file may have been renamed or unlinked. -errno on failure. */
int fd_reopen(int fd, int flags);

/* OFD locks on LEN bytes at START. ofd_lock(): F_OFD_SETLK, -EAGAIN when a conflicting
 * lock is held; ofd_unlock() never fails. */
int ofd_lock(int fd, short type, off_t start, off_t len);
void ofd_unlock(int fd, off_t start, off_t len);

/* Waits for a write lock until DEADLINE (deadline_from(); -1 blocks in the kernel; a
 * finite one retries with a short back-off). 0, -ETIMEDOUT, or -errno. */
int ofd_lock_wait(int fd, off_t start, int64_t deadline);

/* A 64-bit FNV-1a-style hash of LEN bytes (LEN a multiple of 8) seeded with SEED: catches
 * torn copies and damage, not forgeries. */
uint64_t hash_words(uint64_t seed, const void *p, size_t len);

#endif
