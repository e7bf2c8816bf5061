/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Waiting for a region to change: inotify on its files, a futex, a bounded re-check. */
#ifndef HC_WAIT_H
#define HC_WAIT_H

#include <stdbool.h>
#include <stdint.h>

#include "handle.h"

struct waiter {
        hc_region *h;
        int ifd;                 /* inotify instance, or -EBADF: re-check only */
        unsigned n_wd;
        int wd[HC_LOCK_FILES_MAX + 1];
        bool ready;
        bool filter;             /* a watched directory: only events on PREFIX's names */
        int dir_wd;              /* its watch */
        char prefix[HC_NAME_MAX + 3];    /* ".NAME." */
        bool recent;             /* an event came and showed no change yet */
        unsigned step;           /* back-off after an event: 50 µs << step */
};

void waiter_init(struct waiter *w, hc_region *h);
void waiter_done(struct waiter *w);

/* Sleeps until an event, the next re-check, or DEADLINE (-ETIMEDOUT). GENERATION is the
 * generation word read before the caller's last look, for the futex fallback. */
int waiter_sleep(struct waiter *w, int64_t deadline, uint32_t generation);

/* Waits until the count is below VALUE (CHANGE false) or differs from VALUE (CHANGE true). */
int handle_wait(hc_region *h, bool change, unsigned value, int timeout_ms);

#endif
