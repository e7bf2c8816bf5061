/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Counting, listing, reaping and the primary, through a handle; and the repaired lock. */
#ifndef HC_COUNT_H
#define HC_COUNT_H

#include <stdbool.h>
#include <stdint.h>

#include "handle.h"

/* The exact count. With REAP (and a writable region), clears the records of dead holders
 * and adds their number to *RET_REAPED (may be NULL). */
int handle_count(hc_region *h, bool reap, unsigned *ret_reaped);

/* The exact count, and in *RET_READ_LOCKED the number of seats that others hold only read
 * locks on (not counted). Only reads. */
int handle_count_locks(hc_region *h, unsigned *ret_read_locked);

/* The live instances in seat order (malloc()ed, NULL when none); returns their number. */
int handle_list(hc_region *h, hc_instance **ret);

/* The primary: the live instance with the lowest seq; -ENOENT when none. *RET_LISTEN_ID
 * (may be NULL) is the nonce of its listening socket, 0 when it does not listen. */
int handle_primary(hc_region *h, hc_instance *ret, uint64_t *ret_listen_id);

/* How the holder of SLOT with sequence number SEQ went: hc_region_departure(). */
int handle_departure(hc_region *h, unsigned slot, uint64_t seq);

/* Before a joiner tries SEAT: makes sure the region's seat_hwm covers it. 0 or -errno. */
int handle_cover_seat(hc_region *h, unsigned seat);

/* The region lock, with the repair pass run when the last holder died inside: 0, 1 when
 * it was repaired, or -errno. Released with handle_unlock(). */
int handle_lock(hc_region *h, int timeout_ms);
void handle_unlock(hc_region *h);

#endif
