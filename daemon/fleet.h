/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcountd as the host's fleet agent (--etcd): the state shared by fleet.c (the lease,
 * the seats' keys, the per-name watches), fleet-socket.c (the local socket and its
 * protocol, docs/fleet.md) and fleet-query.c (the read-only requests). Nothing here runs,
 * and nothing is opened, without --etcd.
 */
#ifndef HCD_FLEET_H
#define HCD_FLEET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "etcd.h"
#include "fleet-bridge.h"
#include "fleet-proto.h"
#include "headcount.h"

#define HCD_FLEET_PREFIX_DEFAULT "/headcount/"
#define HCD_FLEET_TTL_DEFAULT 10
#define HCD_FLEET_TIMEOUT_DEFAULT 3

/* The largest N a name may have. */
#define HCD_FLEET_MAX_MAX 1000000

typedef struct Fleet Fleet;
typedef struct FleetConn FleetConn;
typedef struct FleetSeat FleetSeat;
typedef struct FleetName FleetName;
typedef struct FleetUser FleetUser;

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

enum {
        SEAT_NEED_LEASE,                 /* waits for a lease to put its key on */
        SEAT_PUTTING,                    /* its transaction is in flight */
        SEAT_RANKING,                    /* its key exists; its rank is being read */
        SEAT_WAITING,                    /* not admitted yet: waits for deletes */
        SEAT_HELD,                       /* admitted: the connection is the seat */
        SEAT_DELETING,                   /* its key is being deleted (or may exist) */
};

/* A user name as fleet names record their owners: they outlive uids across hosts. */
#define FLEET_USER_MAX 64

/* Default caps for a uid other than root (docs/fleet.md, "Owners and modes"). */
#define FLEET_USER_CONNECTIONS_MAX 1024 /* and never more than a quarter of RLIMIT_NOFILE */
#define FLEET_USER_NAMES_DEFAULT 64

/* A name's definition, the value of NAME/max: {"max":N,"owner":"USER","mode":"0644"},
 * with "join":true when a join made it (it lives as long as the name's seat keys); a plain
 * decimal (written by older agents) reads as owner root, mode 0666, made by CREATE. */
typedef struct FleetDef {
        unsigned max;                    /* 0: no definition */
        unsigned mode;                   /* 0600, 0644, 0666 (group bits equal other bits) */
        char owner[FLEET_USER_MAX + 1];
        bool persistent;                 /* made by CREATE (or an older agent), not a join */
        int64_t mod_revision;
} FleetDef;

/* What a request needs of a name. */
enum {
        FLEET_ACCESS_READ = 04,          /* COUNT, LIST, WAIT, NAMES */
        FLEET_ACCESS_JOIN = 02,          /* JOIN */
        FLEET_ACCESS_OWNER = 01000,      /* CREATE over it, REMOVE */
};

struct FleetUser {
        uid_t uid;
        unsigned n_conns;
        FleetUser *next, *prev;
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

/* Everything here belongs to the fleet thread (fleet-bridge.c): the main thread hears of it
 * only through the bridge. */
struct Fleet {
        FleetBridge *bridge;
        sd_event *event;                 /* the fleet thread's own loop */
        Etcd *etcd;
        char *endpoints;
        char *prefix;
        char host[HC_HOST_MAX + 1];
        char boot_id[40];
        unsigned ttl;
        uint64_t timeout_usec;

        int64_t lease;                   /* 0 while we have none */
        int64_t lease_ttl;               /* as granted or last renewed, seconds */
        uint64_t lease_safe_usec;        /* CLOCK_MONOTONIC: lost when renewal fails past it */
        int64_t revoke_lease;            /* a lost lease, revoked once a new one is granted */
        EtcdCall *grant_call;
        uint64_t grant_sent_usec;
        EtcdCall *keepalive_call;
        uint64_t keepalive_sent_usec;
        sd_event_source *lease_timer;    /* next grant attempt, or next keepalive */
        sd_event_source *danger_timer;   /* at lease_safe_usec */
        sd_event_source *late_timer;     /* a keepalive that has not answered by then is late */
        bool renew_late;                 /* a keepalive is overdue (FLEET_STATE_LATE) */
        bool lease_was_lost;             /* since the last grant (FLEET_STATE_LOST) */
        unsigned grant_failures;
        int last_error;                  /* the last etcd failure, for ERR answers */
        char *last_error_text;
        unsigned sweeps_left;            /* orphan sweeps still to run (a reply was lost) */
        EtcdCall *sweep_call;
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

#define USEC_PER_SEC UINT64_C(1000000)

/* fleet.c: the agent and its lease */
int fleet_new(FleetBridge *b, sd_event *event, const FleetConfig *config, const char *dir,
              Fleet **ret);
Fleet *fleet_free(Fleet *f);
int fleet_stop(Fleet *f, int exit_code);
void fleet_lease_grant(Fleet *f);       /* unless one is in flight; now, not after back-off */
uint64_t fleet_backoff_usec(unsigned failures);
int fleet_error_errno(int r);           /* an etcd.h error as the errno a client hears */
void fleet_set_error(Fleet *f, int r, const char *error);
const char *fleet_error_text(Fleet *f);
void fleet_note_doubt(Fleet *f);        /* a write's reply was lost: sweep our lease's keys */
FleetState fleet_state(Fleet *f, char *text, size_t len);
void fleet_conn_status(FleetConn *c);   /* STATUS: "OK STATE TEXT" */
void fleet_health_update(Fleet *f);     /* tells the main thread, when it changed */

/* fleet-seat.c */
int fleet_seat_start(Fleet *f, FleetSeat *s);
void fleet_seat_release(FleetSeat *s, bool leave);
void fleet_seat_set_pid(FleetSeat *s, pid_t pid, bool verified);
void fleet_seat_rank(FleetSeat *s);
void fleet_seats_lease_ready(Fleet *f);
void fleet_seats_lease_failed(Fleet *f);
void fleet_seats_lost(Fleet *f, const char *why);
bool fleet_seat_key_known(Fleet *f, const char *key);

/* fleet-name.c */
FleetName *fleet_name_ref(Fleet *f, const char *name);
void fleet_name_unref(FleetName *n);
void fleet_name_need_watch(FleetName *n, int64_t read_rev);
void fleet_name_recount(FleetName *n, bool rank);

/* fleet-query.c: the key layout and the requests that only read (or remove a name) */
char *fleet_key(const Fleet *f, const char *name, const char *suffix);
json_object *fleet_range_request(const char *key, bool prefix, bool count_only,
                                 int64_t max_create_revision);
json_object *fleet_count_request(Fleet *f, const char *name, bool list);
int64_t fleet_held(json_object *reply, json_object **ret_seats);
int fleet_reply_def(json_object *reply, FleetDef *ret);
json_object *fleet_rank_request(Fleet *f, const char *name, int64_t max_create_revision);
int64_t json_kvs_length(json_object *reply);
int64_t json_int(json_object *o, const char *field);
json_object *json_unwrap_result(json_object *reply);
/* What a definition's read (or a transaction's failure branch that read the same) found:
 * NAME/max's key-value (NULL: absent), the number of seat keys, the whole prefix's range
 * (RET_ALL may be NULL). */
void fleet_read_parts(json_object *reply, json_object **ret_kv, int64_t *ret_seats,
                      json_object **ret_all);
int fleet_query_start(FleetConn *c, char **fields, size_t n);
void fleet_name_counted(FleetName *n, int r);
/* answered through the bridge; UID is the bus caller's euid ((uid_t) -1: unknown) */
int fleet_bus_count(Fleet *f, uint64_t id, uid_t uid, const char *name);
int fleet_bus_names(Fleet *f, uint64_t id, uid_t uid);
void fleet_bus_calls_free(Fleet *f);

/* fleet-access.c: owners, modes and pids */
int fleet_user_name(uid_t uid, char *buf, size_t size);
bool fleet_user_name_valid(const char *s);
int fleet_mode_parse(const char *s, unsigned *ret);
int fleet_def_parse(json_object *kv, FleetDef *ret);
char *fleet_def_format(unsigned max, const char *owner, unsigned mode, bool by_join);
int fleet_access(uid_t uid, const char *user, const FleetDef *d, int want);
int fleet_access_error(const char *name, uid_t uid, const char *user, const FleetDef *d,
                       int want, char *buf, size_t size);
bool fleet_pid_descends(pid_t pid, pid_t ancestor);
json_object *fleet_txn_compare(const char *key, const char *range_end_b64, const char *target,
                               const char *result, const char *field, json_object *value);
void fleet_name_collect(Fleet *f, const char *name, int64_t def_revision);

/* fleet-socket.c */
int fleet_socket_open(Fleet *f, const char *dir, bool shared);
void fleet_set_caps(Fleet *f, unsigned connections, unsigned names);
void fleet_socket_close(Fleet *f);
void fleet_conn_send(FleetConn *c, const char *first, ...) __attribute__((sentinel));
void fleet_conn_senderr(FleetConn *c, int error, const char *format, ...)
        __attribute__((format(printf, 3, 4)));
void fleet_conn_done(FleetConn *c);
const char *fleet_conn_user(FleetConn *c);
void fleet_warn(Fleet *f, const char *format, ...) __attribute__((format(printf, 2, 3)));

#endif
