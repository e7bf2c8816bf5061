/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Clocks for headcount(1), headcountd(8) and their tests. */
#ifndef HC_COMMON_TIME_UTIL_H
#define HC_COMMON_TIME_UTIL_H

#include <stdint.h>

/* CLOCK_MONOTONIC in microseconds: for deadlines and intervals, which no clock change moves
 * (sd-event's timers take it too). */
uint64_t now_usec(void);

#endif
