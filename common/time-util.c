/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Clocks for headcount(1), headcountd(8) and their tests. */
#include <time.h>

#include "time-util.h"

uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);     /* cannot fail for this clock */
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}
