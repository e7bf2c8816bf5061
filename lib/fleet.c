/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fleet scope's client (placeholder entry points until the agent protocol lands). */
#include "fleet.h"
#include "hc-internal.h"

_hc_public_ int hc_fleet_list(const char *name, const hc_options *opt, hc_fleet_instance **ret) {
        (void) name; (void) opt; (void) ret;
        return -EOPNOTSUPP;
}

_hc_public_ int hc_slot_fence(const hc_slot *slot, uint64_t *ret) {
        (void) slot; (void) ret;
        return -EOPNOTSUPP;
}

_hc_public_ int hc_slot_lost_fd(const hc_slot *slot) {
        (void) slot;
        return -EOPNOTSUPP;
}

_hc_public_ int hc_slot_lost(hc_slot *slot) {
        (void) slot;
        return -EOPNOTSUPP;
}
