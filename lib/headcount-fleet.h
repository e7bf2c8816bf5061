/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libheadcount's fleet scope, included by <headcount.h> (include that, not this): the
 * types and calls that only the fleet scope has. See hc_fleet(3) and docs/fleet.md.
 */
#ifndef HEADCOUNT_FLEET_H
#define HEADCOUNT_FLEET_H

#ifndef HEADCOUNT_H
#error "include <headcount.h>, which includes this file"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Across hosts: the fleet scope ------------------------------------------------------ */

/*
 * With opt->scope = HC_SCOPE_FLEET, hc_join(), hc_leave(), hc_abandon(), the hc_slot_*()
 * calls, hc_count(), hc_list(), hc_primary(), hc_wait(), hc_names() and hc_remove() work
 * on seats held across every host whose headcountd runs with --etcd on one etcd cluster
 * and prefix; every other call returns -EOPNOTSUPP, and names take no Local\ or Global\.
 * Calls go to the local headcountd (the agent) on DIR/.headcountd.fleet, where DIR is
 * opt->dir, else $HEADCOUNT_DIR, else the user scope's (then the system scope's, when
 * nobody serves it); the system scope's agent listens on /run/headcountd/fleet.sock.
 * DIR must pass the local scopes' trust checks, the socket must be a socket (no
 * symlink) owned by root or us, and the agent must run as root or us; else -EPERM, with
 * what was refused in opt->error_text. A seat is held while the socket hc_join()
 * connected stays open anywhere, as a local seat's descriptor (HC_INHERIT, fork():
 * alike). hc_slot_index() is the rank at admission (0: the primary), hc_slot_seq() the
 * fence (a token for the holder's writes); in hc_list() .slot is the rank, .seq the
 * fence, .pid as on its host. The agent keeps the timeouts (we give up 60 s after).
 * Extra errors, the agent's line in opt->error_text:
 *   -EHOSTDOWN     no headcountd serves the fleet scope here (start it with --etcd)
 *   -EHOSTUNREACH  the agent cannot reach etcd (the text names the endpoint)
 *   -EACCES, -ENOSPC  etcd refused (the text is etcd's own message)
 *   -EINVAL        also: opt->max differs from the N the name's holders use
 *   -EPERM         the directory, the socket or the agent is not to be trusted
 *   -EBADMSG       the agent's answer broke the protocol or its bounds
 *   -EACCES        also: the name's owner and mode do not let us (docs/fleet.md)
 *   -EUSERS        our uid holds as many connections to the agent as it may
 *   -ECONNRESET    the agent went away during the call     (man 3 hc_fleet, docs/fleet.md)
 */

/* The agent's health, as hc_fleet_status() returns it. */
enum {
        HC_FLEET_STARTING = 0,   /* it has not held an etcd lease yet */
        HC_FLEET_HELD = 1,       /* it holds its lease, renewed on time */
        HC_FLEET_LATE = 2,       /* it holds its lease, which is safe, but a renewal is late */
        HC_FLEET_LOST = 3,       /* its lease was lost (seats with it); it asks for a new one */
        HC_FLEET_UNREACHABLE = 4, /* it holds no lease: etcd does not answer, or refuses */
};

/* The health of the agent that serves the fleet scope for OPT (whatever opt->scope says):
 * one of HC_FLEET_*, with the agent's line ("lease held", "renewing late", "lease lost",
 * "etcd unreachable: ...") in BUF of LEN bytes, cut to fit; or -EHOSTDOWN when no agent
 * serves the scope, or another error as for hc_fleet_list(). Joins are admitted in
 * HC_FLEET_HELD and HC_FLEET_LATE. */
int hc_fleet_status(const hc_options *opt, char *buf, size_t len);

/* The longest host name the fleet scope records, in bytes. */
#define HC_HOST_MAX 64

/* One seat of the fleet scope, as hc_fleet_list() reports it. */
typedef struct hc_fleet_instance {
        hc_instance instance;    /* as hc_list() gives it in the fleet scope */
        uint64_t fence;          /* etcd create_revision: grows with every admission */
        char host[HC_HOST_MAX + 1]; /* the host that holds it (headcountd --host) */
} hc_fleet_instance;

/* As hc_list() in the fleet scope (whatever opt->scope says), with hosts and fences: the
 * number of seats, and a malloc()ed array in *ret (free() it) in rank order. */
int hc_fleet_list(const char *name, const hc_options *opt, hc_fleet_instance **ret);

/* Defines fleet name NAME ahead of use, for good (until hc_remove()): at most opt->max
 * seats (0 means 1), mode opt->mode (0 means 0644; 0600, 0644 or 0666: others may count
 * and list it with 4, join it with 2), owned by OWNER (NULL: the caller's user name;
 * another user: root only). hc_create() in the fleet scope is this with OWNER NULL. 0 when
 * defined (or already defined so), -EEXIST (another user's), -EBUSY (seats held),
 * -EDQUOT (the owner has as many names as it may), -EPERM, -EINVAL; see hc_fleet(3). */
int hc_fleet_create(const char *name, const hc_options *opt, const char *owner);

/* A fleet seat's fence (its etcd create_revision) in *ret: 0, -EOPNOTSUPP for a local
 * seat, -EINVAL. */
int hc_slot_fence(const hc_slot *slot, uint64_t *ret);

/* A descriptor that becomes readable (POLLIN) when a fleet seat is lost (the agent could
 * not renew its etcd lease, or went away): then call hc_slot_lost(). The slot owns it.
 * -EOPNOTSUPP for a local seat, -EINVAL. */
int hc_slot_lost_fd(const hc_slot *slot);

/* 1 when the fleet seat was lost (stop writing, then hc_leave()), 0 while it is held;
 * never blocks. -EOPNOTSUPP for a local seat, -EINVAL. */
int hc_slot_lost(hc_slot *slot);

#ifdef __cplusplus
}
#endif

#endif
