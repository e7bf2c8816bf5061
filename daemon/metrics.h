/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --metrics-file: the counts in Prometheus' text format, for node_exporter (metrics.c). */
#ifndef HCD_METRICS_H
#define HCD_METRICS_H

#include <stdbool.h>
#include <systemd/sd-event.h>

typedef struct Manager Manager;
typedef struct Metrics Metrics;

/* Writes PATH for M's regions from now on, at once and then after each change, at most
 * once a second. PATH's directory must exist. */
int metrics_new(Manager *m, const char *path, Metrics **ret);
/* Removes the file (a stopped daemon's counts are nobody's), and frees. NULL-safe. */
Metrics *metrics_free(Metrics *x);

/* Something the file shows changed: a count, a region, the fleet's health. */
void metrics_changed(Metrics *x);
/* A holder's event ("join", "leave", "died"), for the counters. */
void metrics_event(Metrics *x, const char *event);
/* A fleet name's count, as the fleet agent last said it. */
void metrics_fleet_count(Metrics *x, const char *name, unsigned count);

#endif
