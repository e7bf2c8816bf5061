/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one link between headcountd's two threads. The main thread keeps the Manager: D-Bus,
 * STATUS= and READY=1, the journal, the region monitor. The fleet thread keeps the Fleet:
 * the etcd client, the lease, the seats and the agent's socket, in an sd-event loop of its
 * own, so that no amount of region work (whatever a local user makes it cost) can delay a
 * lease renewal. Neither touches the other's objects: they pass messages through this
 * module, a mutex-guarded queue each way, each woken by an eventfd that the other's loop
 * watches.
 *
 * Fleet thread -> main thread: the agent's health (a snapshot: the latest wins), a fleet
 * name's new count (FleetCountChanged), the answer to a D-Bus call, and the thread's end.
 * Main thread -> fleet thread: a D-Bus call to run (FleetCount, FleetNames) and the stop.
 */
#ifndef HCD_FLEET_BRIDGE_H
#define HCD_FLEET_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "fleet-lease.h"

/* The fleet thread's name (/proc/PID/task/TID/comm); the main thread keeps the
 * program's. */
#define FLEET_THREAD_NAME "hcd-fleet"

typedef struct FleetBridge FleetBridge;
typedef struct FleetConfig FleetConfig;

typedef struct FleetHealth {
        FleetState state;
        char text[FLEET_HEALTH_TEXT_MAX];        /* "lease held", "etcd unreachable: ..." */
        unsigned seats_held;
} FleetHealth;

/* ---- The main thread's side ---- */

/* What the main thread hears, in the main thread, with USERDATA. */
typedef struct FleetBridgeHooks {
        void (*health_changed)(void *userdata);  /* fleet_bridge_health() changed */
        void (*count_changed)(void *userdata, const char *name, unsigned count);
        void *userdata;
} FleetBridgeHooks;

/* Starts the fleet thread, which opens the agent's socket in DIR: returns once it did (or
 * failed to). CONFIG's strings must live as long as the process (argv, statics). When the
 * thread ends, EVENT's loop is left (with the stop's exit code, or EXIT_FAILURE). */
int fleet_bridge_start(sd_event *event, const FleetBridgeHooks *hooks, const FleetConfig *config,
                       const char *dir, FleetBridge **ret);
/* A stop (SIGTERM): the fleet thread revokes the lease (a second at most) and ends; the
 * main loop is left with EXIT_CODE once it did. */
void fleet_bridge_stop(FleetBridge *b, int exit_code);
/* Stops the thread if it still runs, joins it, and drops every pending D-Bus call. */
FleetBridge *fleet_bridge_free(FleetBridge *b);
/* FleetCount (NAME) or FleetNames (NAME NULL): answered when the fleet thread answers. */
int fleet_bridge_bus_call(FleetBridge *b, sd_bus_message *msg, const char *name);
/* The health as last heard, and whether a lease was ever held. */
const FleetHealth *fleet_bridge_health(const FleetBridge *b);
bool fleet_bridge_ever_held(const FleetBridge *b);
/* STATUS='s fleet part, "; fleet: lease held, 2 seats held here", into BUF: its length. */
size_t fleet_bridge_status(const FleetBridge *b, char *buf, size_t len);

#endif
