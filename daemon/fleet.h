/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcountd as the host's fleet agent (--etcd): the agent object that the fleet thread
 * runs, and what it tells the main thread (fleet.c). Nothing here runs, and nothing is
 * opened, without --etcd.
 */
#ifndef HCD_FLEET_H
#define HCD_FLEET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "etcd.h"
#include "fleet-conn.h"
#include "fleet-lease.h"
#include "fleet-name.h"
#include "fleet-proto.h"
#include "fleet-query.h"
#include "fleet-seat.h"
#include "headcount.h"
#include "headcount-fleet.h"

#define HCD_FLEET_PREFIX_DEFAULT "/headcount/"
#define HCD_FLEET_TTL_DEFAULT 10
#define HCD_FLEET_TIMEOUT_DEFAULT 3

/* Default caps for a uid other than root (docs/fleet.md, "Owners and modes"). */
#define FLEET_USER_CONNECTIONS_MAX 1024 /* and never more than a quarter of RLIMIT_NOFILE */
#define FLEET_USER_NAMES_DEFAULT 64

typedef struct FleetConfig {
        const char *endpoints;           /* --etcd / $HEADCOUNT_ETCD, or NULL: no agent */
        const char *prefix;              /* --etcd-prefix: starts and ends with '/' */
        const char *host;                /* --host: [A-Za-z0-9._-]{1,HC_HOST_MAX} */
        unsigned ttl;                    /* --ttl, seconds, >= 2 */
        unsigned timeout;                /* --etcd-timeout, seconds, >= 1 */
        const char *cacert;              /* --etcd-cacert FILE, or NULL */
        const char *cert;                /* --etcd-cert FILE, or NULL */
        const char *key;                 /* --etcd-key FILE, or NULL (in the cert's file) */
        const char *user;                /* --etcd-user, or NULL: no etcd authentication */
        const char *password;            /* --etcd-password-file's or the credential's text */
        bool system_scope;               /* --system without --dir: the socket is
                                          * HC_FLEET_SYSTEM_SOCKET */
        unsigned user_connections;       /* --fleet-user-connections, 0: the default */
        unsigned user_names;             /* --fleet-user-names, 0: the default */
} FleetConfig;

/* What the agent tells the main thread; each is called in the fleet thread with USERDATA. */
typedef struct FleetHooks {
        void (*health)(void *userdata, FleetState state, const char *text, unsigned seats_held);
        void (*count)(void *userdata, const char *name, unsigned count);   /* a new count */
        /* the answer to D-Bus call ID: ERROR 0 and COUNT, or a positive errno and TEXT */
        void (*answer)(void *userdata, uint64_t id, int error, const char *text, unsigned count);
        void (*names)(void *userdata, uint64_t id, FleetNameList *names);  /* takes NAMES */
        void *userdata;
} FleetHooks;

/* The agent: everything here belongs to the fleet thread (fleet-bridge.c); the main thread
 * hears of it only through the hooks. */
struct Fleet {
        FleetHooks hooks;                /* to the main thread (fleet-bridge.c) */
        FleetNameEvents name_events;     /* fleet-name.c to the seats and the queries */
        sd_event *event;                 /* the fleet thread's own loop */
        Etcd *etcd;
        char *endpoints;
        char *prefix;
        char host[HC_HOST_MAX + 1];
        char boot_id[40];
        uint64_t timeout_usec;           /* --etcd-timeout */
        FleetLease *lease;               /* the host's lease (fleet-lease.c) */
        uint64_t serial;

        FleetSeat *seats;
        unsigned n_held;
        FleetName *names;
        FleetConn *conns;
        FleetUser *users;                /* uids with connections open */
        unsigned n_user_conns;           /* connections of every uid but root */
        struct FleetBusCall *bus_calls;

        int listen_fd;
        sd_event_source *listen_source;
        sd_event_source *accept_timer;   /* re-arms accept after EMFILE/ENFILE */
        int conn_epoll;                  /* every connection, drained in batches */
        sd_event_source *conn_source;
        unsigned user_connections;       /* per uid, root exempt (0: from RLIMIT_NOFILE) */
        unsigned user_names;             /* names made by CREATE per owner, root exempt */
        uint64_t warn_usec;              /* rate limit of the socket's warnings */
        unsigned warn_suppressed;
        int dir_fd;                      /* the socket's directory, for unlinking the socket */
        bool system_scope;               /* FleetConfig.system_scope */
        char *listen_dir;                /* its path */
        const char *listen_name;         /* the socket's name in it */
        char *listen_text;               /* its whole path, escaped, for messages */
        bool listen_shared;              /* mode 0666, else 0600 */
        dev_t listen_dev;                /* the socket we bound: unlinked at the end only */
        ino_t listen_ino;                /* if the name still is that one */
        sd_event_source *listen_retry;   /* the name was taken: we try again from this */
        bool listen_warned;              /* and said so once */
        bool stopping;                   /* fleet_stop(), fleet_free(): no more seats */
        int exit_code;                   /* fleet_stop(): for sd_event_exit() */
};

int fleet_new(const FleetHooks *hooks, sd_event *event, const FleetConfig *config,
              const char *dir, Fleet **ret);
Fleet *fleet_free(Fleet *f);
/* A stop: 1 when the loop will exit once etcd answered the revoke, 0: exit now. */
int fleet_stop(Fleet *f, int exit_code);

#endif
