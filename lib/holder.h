/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Proof of who holds a seat, from the kernel's own account of locks: hc_region_holder(). */
#ifndef HC_HOLDER_H
#define HC_HOLDER_H

#include <stdbool.h>
#include <sys/types.h>

#include "handle.h"

/*
 * PID when process PID (of our PID namespace) has a descriptor of the open file
 * description that holds seat SEAT of H; -ESRCH when it is no live process or holds no
 * such descriptor; -EACCES when we may not read its descriptors; -EXDEV when /proc shows
 * another PID namespace than ours; -EINVAL, -errno.
 */
int holder_check(hc_region *h, unsigned seat, pid_t pid);

/* The same, for seat SEAT of the lock file that FD (a seat's own description, say) is
 * open on: for a seat whose handle has let its lock files go. With OWN, FD is the seat's
 * own lock file (a seat handed to a command: handed.c). FD's number is looked at first in
 * PID, where a child that inherited it has it. */
int holder_check_fd(int fd, unsigned seat, bool own, pid_t pid);

/* The pid of some process that holds seat SEAT of H, looked for among every process we
 * may read (bounded); -ESRCH when none can be identified; -EXDEV, -EINVAL, -errno. */
int holder_find(hc_region *h, unsigned seat);

#endif
