/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How the two programs name an instance's holder in a message, without overstating it. */
#ifndef HC_COMMON_INSTANCE_H
#define HC_COMMON_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>

#include "headcount.h"

/* A buffer that holds every description. */
#define INSTANCE_DESCRIPTION_MAX 80

/*
 * Writes who holds IN's seat into BUF and returns BUF: "pid 1234"; "pid 2 in another PID
 * namespace" when the PID means nothing in ours (HC_INSTANCE_OTHER_PIDNS); with
 * " (unverified)" after either when another user may have written the record, or
 * headcountd found that the kernel does not show its pid holding the seat
 * (HC_INSTANCE_UNVERIFIED), so that its pid is a claim and not a fact; "an unreadable
 * record" for HC_INSTANCE_NO_RECORD.
 */
const char *instance_describe(const hc_instance *in, char *buf, size_t size);

/* Whether the record's pid, uid and tag are facts: no other user could have written it. */
static inline bool instance_verified(const hc_instance *in) {
        return !(in->flags & HC_INSTANCE_UNVERIFIED);
}

#endif
