/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Seat locks on the descriptors of lock files: take, give back, probe, count. */
#ifndef HC_SEAT_H
#define HC_SEAT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Which lock file holds seat I, and how many seats lock file K of a region of CAPACITY has. */
unsigned seat_file(unsigned seat);
unsigned seat_first(unsigned k);
unsigned seat_file_seats(unsigned capacity, unsigned k);

/* The byte of its lock file whose write lock is seat I. */
off_t seat_byte(unsigned seat);

int seat_take(int fd, unsigned seat);            /* 0, -EAGAIN when held, -errno */
void seat_give_back(int fd, unsigned seat);

/* The seats of FIRST..FIRST+N-1 (bit i: FIRST + i) that are free or only read-locked by a
 * reaper or a retirer (worth another try in a moment); 0 when all are held. */
uint64_t seat_transient(int fd, unsigned first, unsigned n);

/* Counts the held seats FIRST..FIRST+N-1 (N <= 64) and sets their bits in *RET_MASK. */
int seat_count(int fd, unsigned first, unsigned n, uint64_t *ret_mask);

/* The seats among FIRST..FIRST+N-1 (N <= 64) that other descriptions hold only read
 * locks on (bit i: seat FIRST + i): not held, and never counted. */
uint64_t seat_read_locked(int fd, unsigned first, unsigned n);

/* Read locks: a reaper's on one free seat, a retirer's on a range. 0 or -EAGAIN. */
int seat_read_lock(int fd, unsigned first, unsigned n);
void seat_read_unlock(int fd, unsigned first, unsigned n);

#endif
