/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Seats handed to a command: a lock file of the seat's own (handed.c). */
#ifndef HC_HANDED_H
#define HC_HANDED_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "handle.h"

/* Makes seat SEAT's own lock file, named after REC's seq (which it may change and seal
 * again when the name is taken), and locks it through a new description, inheritable
 * with INHERIT: *RET_FD. 0 or -errno. */
int handed_open(hc_region *h, unsigned seat, struct hc_slot_rec *rec, bool inherit, int *ret_fd);

/* The holder's leave: unlocks the own file for every copy of FD, removes it, closes FD. */
void handed_close(hc_region *h, unsigned seat, uint64_t seq, int fd);

/* For a seat whose byte in the lock file is free and whose record is there: 1 when a
 * command still holds it through its own file, 0 when its holder is dead, -errno when we
 * cannot tell (then it must be taken as held). */
int handed_probe(hc_region *h, unsigned seat);

/* The own lock file that the record of SEAT names, when there is a trusted one: for
 * holder.c, which proves that a process holds the seat. */
int handed_file(hc_region *h, unsigned seat, struct stat *ret);

/* A reaper's clean-up of a dead seat's own file, when it is ours to remove. */
void handed_remove(hc_region *h, unsigned seat, uint64_t seq);

#endif
