/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One client connection of the agent's socket, as requests see it (fleet-conn.c).
 */
#ifndef HCD_FLEET_CONN_H
#define HCD_FLEET_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <systemd/sd-event.h>

#include "etcd.h"
#include "fleet-keys.h"

typedef struct Fleet Fleet;
typedef struct FleetConn FleetConn;
typedef struct FleetName FleetName;
typedef struct FleetSeat FleetSeat;
typedef struct FleetUser FleetUser;

struct FleetUser {
        uid_t uid;
        unsigned n_conns;
        FleetUser *next, *prev;
};

/* One client of the agent's socket: one request at a time; after a JOIN, the seat. */
struct FleetConn {
        Fleet *fleet;
        int fd;
        uint32_t events;                 /* as registered with the Fleet's conn_epoll */
        pid_t pid;                       /* SO_PEERCRED */
        uid_t uid;
        FleetUser *user;                 /* its uid's connection count */
        char user_name[FLEET_USER_MAX + 1]; /* uid's name here ("": none), once looked up */
        bool user_name_known;
        FleetSeat *seat;                 /* JOIN: until BUSY, TIMEDOUT, ERR or LOST */
        EtcdCall *call;                  /* a query in flight (cancelled at hang-up) */
        FleetName *wait_name;            /* WAIT: the name (a reference) */
        unsigned wait_below;
        bool wait_fresh;                 /* WAIT: no count has come since it began */
        bool wait_forever;               /* WAIT: timeout -1 */
        sd_event_source *timer;          /* WAIT's deadline */
        char *query_name;                /* the name of the query in flight, for messages */
        unsigned create_max, create_mode;  /* CREATE: the definition asked for */
        char create_owner[FLEET_USER_MAX + 1];
        int64_t remove_rev;              /* REMOVE: NAME/max's mod_revision, as checked */
        size_t n_lines;                  /* NAMES: the lines sent */
        bool busy;                       /* a request waits for its answer: read no more */
        struct iovec *out;               /* answers the socket did not take yet */
        size_t n_out;
        FleetConn *next, *prev;
};

void fleet_conn_send(FleetConn *c, const char *first, ...) __attribute__((sentinel));
void fleet_conn_senderr(FleetConn *c, int error, const char *format, ...)
        __attribute__((format(printf, 3, 4)));
void fleet_conn_begin(FleetConn *c);
void fleet_conn_done(FleetConn *c);
/* Sends what is queued; returns -1 when the connection is broken. */
int fleet_conn_flush(FleetConn *c);
const char *fleet_conn_user(FleetConn *c);

#endif
