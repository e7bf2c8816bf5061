/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The seats of lock files we cannot open, read from /proc/locks by inode and byte range. */
#ifndef HC_PROCLOCKS_H
#define HC_PROCLOCKS_H

#include <stdint.h>
#include <sys/types.h>

#include "format.h"

struct proc_locks {
        unsigned n_files;                        /* lock files 0..n_files-1 */
        dev_t dev;                               /* all on the region's filesystem */
        ino_t ino[HC_LOCK_FILES_MAX];
        unsigned seats[HC_LOCK_FILES_MAX];       /* seats of each file */
        /* results, bit i = seat seat_first(k) + i */
        uint64_t held[HC_LOCK_FILES_MAX];        /* write-locked: held */
        uint64_t read_locked[HC_LOCK_FILES_MAX]; /* only read-locked: not held */
};

/* Fills Q->held and Q->read_locked from /proc/locks. Returns the number of held seats,
 * or -errno (-EACCES: /proc/locks cannot be opened). */
int proc_locks_scan(struct proc_locks *q);

#endif
