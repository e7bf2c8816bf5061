/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The runs of a region's seats: numbered in their records, kept in the seats' rings
 * (format.h), read as history. */
#ifndef HC_RUNS_H
#define HC_RUNS_H

#include "format.h"
#include "handle.h"
#include "region.h"

/* Ends the run in SEAT's record, when there is one, with wait STATUS or RUNS_NO_STATUS:
 * for a leave by another process than the one that joined (hc_leave_fd()). */
void runs_end_current(hc_region *h, unsigned seat, int status);

int runs_marks(hc_region *h, uint64_t *ret, unsigned n);
int runs_seat(hc_region *h, unsigned seat, hc_run *ret);
int runs_history(hc_region *h, hc_run **ret);

#endif
