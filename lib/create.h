/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Making a region file and its lock files; sweeping what dead makers left. */
#ifndef HC_CREATE_H
#define HC_CREATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "headcount.h"
#include "scope.h"

struct hc_region_header;

/* Creates the region SC names in DIRFD unless it exists: 1 and a read-write descriptor
 * in *RET_FD when we made it, 0 when it exists, or -errno. */
int region_create(int dirfd, const struct scope *sc, const hc_options *opt, int *ret_fd);

/* As region_create(), but puts the new region in place of the damaged region file that
 * OVER describes (damaged.c), only while the name is still that file: 1 and the
 * descriptor, -ESTALE when the name changed, or -errno. */
int region_create_over(int dirfd, const struct scope *sc, const hc_options *opt,
                       const struct stat *over, int *ret_fd);

/* Whether a lock is held on any byte of FD's file (a seat, in a lock file); true when it
 * cannot be told. */
bool file_locked(int fd);

/* Removes temporaries whose creator died and lock files that belong to no region. */
int region_sweep(int dirfd, bool system);

/*
 * The mode of the lock files of a region of mode MODE: read and write for the owner, and
 * for the group and others only when they may write the region (0644 -> 0600, 0664 ->
 * 0660, 0666 -> 0666). Whoever may only read the region must not be able to open a lock
 * file: a read lock needs only a descriptor open for reading, and it blocks every write
 * lock (seats, the region lock, the listener's lock).
 */
static inline mode_t lock_file_mode(mode_t mode) {
        return 0600 | ((mode & 0020) ? 0060 : 0) | ((mode & 0002) ? 0006 : 0);
}

unsigned region_files_for(uint32_t capacity);
uint64_t header_runs_offset(uint32_t capacity, uint64_t table);
uint64_t header_file_size(uint32_t capacity, uint64_t data_size, uint64_t *ret_table, uint64_t *ret_data);
uint64_t header_layout_check(const struct hc_region_header *h);

#endif
