/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The region monitor: the scope directory's regions, their counts and holders (monitor.c). */
#ifndef HCD_MONITOR_H
#define HCD_MONITOR_H

#include "headcount.h"

typedef struct Manager Manager;
typedef struct Region Region;

int manager_monitor_start(Manager *m);
void manager_monitor_stop(Manager *m);
Region *manager_find_region(Manager *m, const char *name);
int manager_track_region(Manager *m, const char *name, Region **ret);
int region_refresh(Region *r, hc_instance **ret_list);
void manager_totals(Manager *m, unsigned *ret_regions, unsigned *ret_instances);

#endif
