/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Removing or replacing a region file that fails validation (damaged.c). */
#ifndef HC_DAMAGED_H
#define HC_DAMAGED_H

#include "headcount.h"
#include "scope.h"

/* Removes SC's damaged region file and its lock files, temporaries and dead sockets: 0;
 * -EAGAIN when the file is not damaged (any more), -EBUSY when a seat is held, -EBADMSG
 * when we are neither its owner nor root, -EPERM, -ENOENT, -ETIMEDOUT. */
int damaged_remove(int dirfd, const struct scope *sc);

/* Replaces SC's damaged region file, which we own, with a new region made with OPT: 1 and
 * a read-write descriptor on it, and says so in opt->error_text when the caller gave one
 * (with the format the old header named, when it was a region of another release);
 * errors as damaged_remove(), and -EBADMSG also when the file is not recognisably a
 * region (an empty file, another program's). */
int damaged_replace(int dirfd, const struct scope *sc, const hc_options *opt, int *ret_fd);

#endif
