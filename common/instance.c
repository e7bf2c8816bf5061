/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How the two programs name an instance's holder in a message, without overstating it. */
#include <stdio.h>

#include "instance.h"

const char *instance_describe(const hc_instance *in, char *buf, size_t size) {
        if (in->flags & HC_INSTANCE_NO_RECORD)
                (void) snprintf(buf, size, "an unreadable record");
        else
                (void) snprintf(buf, size, "pid %d%s%s", (int) in->pid,
                                in->flags & HC_INSTANCE_OTHER_PIDNS ?
                                " in another PID namespace" : "",
                                instance_verified(in) ? "" : " (unverified)");
        return buf;
}
