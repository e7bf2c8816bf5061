/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Taking a seat and giving it back: hc_slot. */
#ifndef HC_JOIN_H
#define HC_JOIN_H

#include <stdbool.h>
#include <stdint.h>

#include "format.h"
#include "handle.h"

struct hc_slot {
        int fd;                  /* the seat's description (a lock file's), never handed out */
        int own_fd;              /* a handed seat's description of its own lock file, the
                                  * one a command inherits (handed.c); else -EBADF */
        unsigned index;
        bool inherit;            /* HC_INHERIT: own_fd survives exec() */
        bool fd_exposed;         /* hc_slot_fd() handed own_fd out */
        bool recorded;           /* our record is written (not waiting for HC_RECORD_LATER) */
        pid_t pid;               /* the process that joined */
        uint64_t fork_count;     /* forks seen at join */
        hc_region *rg;           /* the handle it was taken through, or NULL for hc_join() */
        hc_region *h;            /* the handle whose region holds our record */
        struct hc_slot_rec rec;  /* our record, as we wrote it */
        bool has_status;         /* hc_leave_status(): status is the run's wait status */
        int status;
        /* A fleet seat (fleet.c): fd is its connection to the agent, index its rank at
         * admission; rg, h and rec are unused. */
        bool fleet;
        bool lost;               /* the agent said LOST, or hung up */
        uint64_t fence;          /* the seat key's etcd create_revision */
};

/* Joins through handle H (the public handle, or a short-lived one when COLD). -ESTALE
 * when the region was retired: open it again by name. */
int join_handle(hc_region *h, const hc_options *opt, bool cold, hc_slot **ret);

/* hc_join(): a short-lived handle, started over by name when the region was retired. */
int join_by_name(const struct scope *sc, const hc_options *opt, hc_slot **ret);

void slot_leave(hc_slot *s);
void slot_abandon(hc_slot *s);           /* leaves the record: reads as a death */

/* hc_slot_fd(): the seat's own lock file's description, made on first use. */
int slot_own_fd(hc_slot *s);

/* Rewrites our record with another pid, or with the nonce of our listening socket. */
int slot_set_pid(hc_slot *s, pid_t pid);
/* Ends the run with wait STATUS and keeps the seat; the next slot_set_pid() begins the
 * next run (hc_slot_end_run()). */
int slot_end_run(hc_slot *s, int status);
int slot_set_listen_id(hc_slot *s, uint64_t id);

#endif
