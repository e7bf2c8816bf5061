/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host's etcd lease and the agent's health (fleet-lease.c). */
#ifndef HCD_FLEET_LEASE_H
#define HCD_FLEET_LEASE_H

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "etcd.h"

#ifndef USEC_PER_SEC
#define USEC_PER_SEC UINT64_C(1000000)
#endif

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

const char *fleet_state_to_string(FleetState s);        /* HC_FLEET_STATE_* */

typedef struct FleetLease FleetLease;

/* What the lease tells its owner, and asks of it. Each is called with USERDATA. */
typedef struct FleetLeaseHooks {
        void (*granted)(void *userdata);         /* a lease is held: keys may be put on it */
        void (*grant_failed)(void *userdata);    /* a grant failed (fleet_lease_error()) */
        void (*lost)(void *userdata, const char *why);   /* the lease is gone */
        bool (*key_claimed)(void *userdata, const char *key);   /* a key on it is a seat's */
        bool (*joins_wait)(void *userdata);      /* a join waits for a lease: retry soon */
        unsigned (*held)(void *userdata);        /* seats held here, for messages */
        void (*changed)(void *userdata);         /* the health may have changed */
        void *userdata;
} FleetLeaseHooks;

/* ETCD must outlive the lease; no lease is asked for before fleet_lease_grant(). */
int fleet_lease_new(sd_event *event, Etcd *etcd, const char *host, unsigned ttl,
                    uint64_t timeout_usec, const FleetLeaseHooks *hooks, FleetLease **ret);
FleetLease *fleet_lease_free(FleetLease *l);
/* Asks for a lease unless one is held or asked for: now, not after back-off. */
void fleet_lease_grant(FleetLease *l);
/* Renews no more and revokes the lease: 1 when DONE will be called once etcd answered (a
 * second at most), 0 when there was nothing to revoke. */
int fleet_lease_stop(FleetLease *l, void (*done)(void *userdata), void *userdata);

int64_t fleet_lease_id(const FleetLease *l);            /* 0: none held */
FleetState fleet_lease_state(const FleetLease *l, char *text, size_t len);
/* Tells the owner (hook "changed") that the health may have changed: the lease's own
 * events do, and so does whoever changes what the health reports (seats held). */
void fleet_lease_changed(FleetLease *l);

/* The last etcd failure, which the agent's answers repeat (ERR, the D-Bus errors). */
void fleet_lease_set_error(FleetLease *l, int r, const char *error);
int fleet_lease_error(const FleetLease *l);             /* 0: the last call succeeded */
const char *fleet_lease_error_text(const FleetLease *l);
bool fleet_lease_failing(const FleetLease *l);          /* the last grant failed */
/* A write's reply was lost: sweep the lease's keys for a while (fleet-seat.c's top). */
void fleet_lease_note_doubt(FleetLease *l);

uint64_t fleet_backoff_usec(unsigned failures);
int fleet_error_errno(int r);           /* an etcd.h error as the errno a client hears */

#endif
