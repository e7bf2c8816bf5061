/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One fleet seat's key, from the JOIN to its delete (fleet-seat.c).
 */
#ifndef HCD_FLEET_SEAT_H
#define HCD_FLEET_SEAT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "etcd.h"
#include "fleet-keys.h"

typedef struct Fleet Fleet;
typedef struct FleetConn FleetConn;
typedef struct FleetName FleetName;
typedef struct FleetSeat FleetSeat;

enum {
        SEAT_NEED_LEASE,                 /* waits for a lease to put its key on */
        SEAT_PUTTING,                    /* its transaction is in flight */
        SEAT_RANKING,                    /* its key exists; its rank is being read */
        SEAT_WAITING,                    /* not admitted yet: waits for deletes */
        SEAT_HELD,                       /* admitted: the connection is the seat */
        SEAT_DELETING,                   /* its key is being deleted (or may exist) */
};

/* One seat's key, from the JOIN to its delete. Owned by the Fleet's list, so that a key
 * outlives the connection that asked for it until the key is surely gone. */
struct FleetSeat {
        Fleet *fleet;
        FleetConn *conn;                 /* the holder's connection; NULL once it is gone */
        FleetName *fname;                /* holds a reference */
        char *key;                       /* PREFIX NAME/s/HOST/BOOTID/PID.SERIAL */
        char *tag;
        unsigned max;
        pid_t pid;                       /* the record's pid (JOIN, then PID) */
        pid_t peer_pid;                  /* SO_PEERCRED of the connection that joined */
        bool verified;                   /* pid is the peer or a descendant of it */
        uid_t uid;                       /* SO_PEERCRED */
        char user[FLEET_USER_MAX + 1];   /* uid's name here, "" when it has none */
        int64_t max_mod_revision;        /* NAME/max as last read (0: absent), -1: unread */
        bool define;                     /* the next transaction defines the name (ours) */
        bool def_by_join;                /* admitted under a definition a join made... */
        int64_t def_revision;            /* ...at this mod_revision: collected after us */
        int64_t joined_usec;             /* CLOCK_REALTIME */
        int64_t lease;                   /* the lease the key was put on, 0 before */
        int64_t fence;                   /* the key's create_revision, 0 before */
        int64_t read_rev;                /* the revision of its last rank read */
        unsigned rank;
        int state;
        int attempts;                    /* transactions tried (serial clash, /max race) */
        bool put_in_flight;              /* the transaction has not answered: never cancelled */
        bool key_may_exist;              /* delete it before forgetting it */
        bool rank_again;                 /* a delete was seen during the rank read */
        uint64_t deadline_usec;          /* CLOCK_MONOTONIC end of the wait; UINT64_MAX never */
        const char *answer;              /* sent once the key is gone (BUSY, TIMEDOUT) */
        EtcdCall *call;                  /* the rank read or the delete in flight */
        sd_event_source *timer;          /* the wait's deadline */
        sd_event_source *retry_timer;    /* the next rank read or delete after a failure */
        unsigned delete_failures;
        FleetSeat *next, *prev;
};

FleetSeat *fleet_seat_new(FleetConn *c, const char *name, unsigned max, const char *tag,
                          pid_t pid, long timeout_ms);
int fleet_seat_start(Fleet *f, FleetSeat *s);
void fleet_seat_release(FleetSeat *s, bool leave);
void fleet_seat_set_pid(FleetSeat *s, pid_t pid, bool verified);
void fleet_seat_rank(FleetSeat *s);
void fleet_seats_rank_name(FleetName *n);
void fleet_seats_lease_ready(Fleet *f);
void fleet_seats_lease_failed(Fleet *f);
void fleet_seats_lost(Fleet *f, const char *why);
bool fleet_seats_need_lease(Fleet *f);
bool fleet_seat_key_known(Fleet *f, const char *key);

#endif
