/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cleanup attributes for headcount(1) and headcountd(8), spelled as systemd spells them.
 * lib/ has its own in hc-internal.h: the front ends see only the public header.
 */
#ifndef HC_COMMON_CLEANUP_H
#define HC_COMMON_CLEANUP_H

#include <stdlib.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

#endif
