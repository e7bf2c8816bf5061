/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The runs of a region's seats: written by their holders, read as history (format.h). */
#ifndef HC_RUNS_H
#define HC_RUNS_H

#include "format.h"
#include "handle.h"

/* At the first write of a holder's record REC on SEAT: its run begins (*RET, kept by the
 * holder for its leave). Errors of the write. */
int runs_begin(hc_region *h, unsigned seat, const struct hc_slot_rec *rec, struct hc_run_rec *ret);

/* The holder's record was rewritten (another pid): so is its run E, when begun. */
void runs_update(hc_region *h, unsigned seat, const struct hc_slot_rec *rec, struct hc_run_rec *e);

/* The holder leaves, before it gives the seat back: its run E (when begun) ends with the
 * wait status STATUS, or RUNS_NO_STATUS. */
#define RUNS_NO_STATUS INT32_MIN
void runs_end(hc_region *h, unsigned seat, struct hc_run_rec *e, int status);

/* Ends the seat's latest run, when it is running: for a leave by another process than the
 * one that joined (hc_leave_fd()). */
void runs_end_current(hc_region *h, unsigned seat);

int runs_marks(hc_region *h, uint64_t *ret, unsigned n);
int runs_seat(hc_region *h, unsigned seat, hc_run *ret);
int runs_history(hc_region *h, hc_run **ret);

#endif
