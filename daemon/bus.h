/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* headcountd's D-Bus API (bus.c): methods, properties and signals. */
#ifndef HCD_BUS_H
#define HCD_BUS_H

#include "headcount.h"

typedef struct Manager Manager;
typedef struct Region Region;

int manager_bus_start(Manager *m);
void manager_bus_count_changed(Manager *m, const char *name, int count);
void manager_bus_instance_event(Manager *m, const char *name, const char *event,
                                const hc_instance *in);
void manager_bus_region_added(Manager *m, const char *name);
void manager_bus_region_removed(Manager *m, const char *name);
void manager_bus_fleet_count_changed(Manager *m, const char *name, unsigned count);
void manager_bus_fleet_state_changed(Manager *m);

#endif
