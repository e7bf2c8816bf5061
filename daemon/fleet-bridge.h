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

/* The fleet thread's name (/proc/PID/task/TID/comm); the main thread keeps the
 * program's. */
#define FLEET_THREAD_NAME "hcd-fleet"

typedef struct Manager Manager;
typedef struct FleetBridge FleetBridge;
typedef struct FleetConfig FleetConfig;

/* The agent's health, as STATUS (lib/fleet-proto.h's HC_FLEET_STATE_*), FleetState and
 * STATUS= tell it. */
typedef enum FleetState {
        FLEET_STATE_STARTING,            /* no lease asked for or granted yet */
        FLEET_STATE_HELD,                /* lease held, renewed on time */
        FLEET_STATE_LATE,                /* lease held and safe, a renewal is overdue */
        FLEET_STATE_LOST,                /* the lease was lost; a new one is asked for */
        FLEET_STATE_UNREACHABLE,         /* no lease: etcd does not answer, or refuses */
        _FLEET_STATE_MAX,
} FleetState;

#define FLEET_HEALTH_TEXT_MAX 512

typedef struct FleetHealth {
        FleetState state;
        char text[FLEET_HEALTH_TEXT_MAX];        /* "lease held", "etcd unreachable: ..." */
        unsigned seats_held;
} FleetHealth;

const char *fleet_state_to_string(FleetState s);        /* HC_FLEET_STATE_* */

/* ---- The main thread's side ---- */

/* Starts the fleet thread, which opens the agent's socket in DIR: returns once it did (or
 * failed to). CONFIG's strings must live as long as the process (argv, statics). */
int fleet_bridge_start(Manager *m, const FleetConfig *config, const char *dir,
                       FleetBridge **ret);
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

/* ---- The fleet thread's side ---- */

void fleet_bridge_post_health(FleetBridge *b, FleetState state, const char *text,
                              unsigned seats_held);
void fleet_bridge_post_count(FleetBridge *b, const char *name, unsigned count);
/* The answer to call ID: ERROR 0 and COUNT (FleetCount), or a positive errno and TEXT. */
void fleet_bridge_post_answer(FleetBridge *b, uint64_t id, int error, const char *text,
                              unsigned count);
/* FleetNames' answer, built one name at a time and sent with fleet_bridge_names_done(). */
typedef struct FleetBridgeNames FleetBridgeNames;
FleetBridgeNames *fleet_bridge_names_new(uint64_t id);
int fleet_bridge_names_add(FleetBridgeNames *n, const char *name, unsigned count);
void fleet_bridge_names_done(FleetBridge *b, FleetBridgeNames *n, int error, const char *text);

#endif
