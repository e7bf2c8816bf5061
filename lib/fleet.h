/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fleet scope's client: talks to the local headcountd (the agent) over its socket. */
#ifndef HC_FLEET_H
#define HC_FLEET_H

#include <stdbool.h>

#include "headcount.h"
#include "join.h"

/* Whether OPT selects the fleet scope (malformed options are left to the local checks). */
static inline bool fleet_scope(const hc_options *opt) {
        return opt && opt->size >= HC_OPTIONS_SIZE_V1 && opt->size <= 4096 &&
               opt->scope == HC_SCOPE_FLEET;
}

/* The calls of headcount.h for the fleet scope; OPT has passed the public entry's checks.
 * A name takes no Local\ or Global\ prefix here (-EINVAL). */
int fleet_join(const char *name, const hc_options *opt, hc_slot **ret);
int fleet_count(const char *name, const hc_options *opt);
int fleet_list(const char *name, const hc_options *opt, hc_instance **ret);
int fleet_primary(const char *name, const hc_options *opt, hc_instance *ret);
int fleet_wait(const char *name, const hc_options *opt, unsigned below, int timeout_ms);
int fleet_remove(const char *name, const hc_options *opt);
int fleet_create(const char *name, const hc_options *opt, unsigned max, unsigned mode,
                 const char *owner);
int fleet_names(const hc_options *opt, int (*cb)(const char *name, int count, void *userdata),
                void *userdata);
int fleet_is_primary(const char *name, const hc_options *opt, const hc_slot *slot);

/* On a seat with s->fleet: tells the agent the holder's pid (-ESTALE in another process
 * than the joiner); gives the seat back (LEAVE, in the joiner only, then close) or, with
 * !LEAVE, only closes the connection. */
int fleet_set_pid(hc_slot *s, pid_t pid);
void fleet_leave(hc_slot *s, bool leave);

#endif
