/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A fleet name that local seats or waiters use: its shared watch and count (fleet-name.c).
 */
#ifndef HCD_FLEET_NAME_H
#define HCD_FLEET_NAME_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "etcd.h"
#include "fleet-keys.h"

typedef struct Fleet Fleet;
typedef struct FleetName FleetName;

/* What a name tells the modules above it (set once by fleet.c). */
typedef struct FleetNameEvents {
        void (*changed)(FleetName *n);   /* seat keys were deleted: waiting seats rank again */
        void (*counted)(FleetName *n, int r);    /* a count came (r 0), or failed */
} FleetNameEvents;

/* A name some local seat or waiter uses: one watch on its seat keys, shared. */
struct FleetName {
        Fleet *fleet;
        char *name;
        unsigned n_refs;
        EtcdCall *watch;
        int64_t watch_rev;               /* the watch sees every change after this */
        sd_event_source *watch_retry;
        unsigned watch_failures;
        EtcdCall *count_call;
        bool count_again;
        bool watch_created;              /* the watch's "created" message came */
        int64_t count;                   /* last count read, -1 before the first */
        FleetDef def;                    /* NAME/max at the last count (def.max 0: none) */
        FleetName *next, *prev;
};

FleetName *fleet_name_ref(Fleet *f, const char *name);
void fleet_name_unref(FleetName *n);
void fleet_name_need_watch(FleetName *n, int64_t read_rev);
/* Counts the name again (for WAIT and the bus) and, with RANK, re-ranks its waiting seats. */
void fleet_name_recount(FleetName *n, bool rank);

#endif
