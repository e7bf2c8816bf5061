/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The region lock: a kernel lock with a died-inside marker, never a mutex in the file. */
#ifndef HC_MUTEX_H
#define HC_MUTEX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "region.h"

/* How long the library's own uses of the region lock wait for it. */
#define REGION_LOCK_TIMEOUT_MS 5000

struct mutex {
        pthread_mutex_t local;   /* excludes the threads of this process (error-checking) */
        int fd;                  /* our own description of lock file 0, for the OFD lock;
                                  * -EBADF until first used, reopened after fork() */
        uint64_t epoch;          /* the process epoch FD belongs to */
        bool for_data;           /* held for user data (hc_region_lock()) */
        bool held;               /* by OWNER */
        pthread_t owner;
};

void mutex_init(struct mutex *m);
void mutex_done(struct mutex *m);

/* Takes the region lock within TIMEOUT_MS (-1: forever). Lock file 0 is opened through
 * DIRFD (the region's checked directory) the first time. Returns 0, 1 when the previous
 * holder died holding it (the caller runs the repair pass), or -ETIMEDOUT, -EACCES for a
 * read-only region, -ESTALE when it was retired before we first locked it, -errno. */
int mutex_lock(struct mutex *m, struct region *r, int dirfd, const struct scope *sc, int timeout_ms);

/* Releases it; -EPERM when this thread does not hold it. */
int mutex_unlock(struct mutex *m, struct region *r);

#endif
