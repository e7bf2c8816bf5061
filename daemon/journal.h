/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every run of a region in the log, exactly once and in order, from the seats' run rings
 * (journal.c). */
#ifndef HCD_JOURNAL_H
#define HCD_JOURNAL_H

#include <stdbool.h>

#include "headcount.h"

typedef struct Region Region;

/* Starts following R's runs: from its first run when FROM_START (a region that appeared
 * while we watched), else from what its rings say now (what came before we started is
 * not news). -ENOMEM. */
int journal_start(Region *r, bool from_start);

/* Logs the runs of R that began or ended since the last call, in order, given LIST, the
 * N held seats just listed. */
void journal_read(Region *r, const hc_instance *list, int n);

void journal_stop(Region *r);

#endif
