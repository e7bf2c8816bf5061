/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The runs of a region's seats: numbered in their records, kept in the seats' rings
 * (format.h), read as history. */
#ifndef HC_RUNS_H
#define HC_RUNS_H

#include "handle.h"
#include "region.h"

int runs_marks(hc_region *h, uint64_t *ret, unsigned n);
int runs_seat(hc_region *h, unsigned seat, hc_run *ret);
int runs_history(hc_region *h, hc_run **ret);

#endif
