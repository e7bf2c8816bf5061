/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hc_region: an open region, its scope directory and the descriptions of its lock files. */
#ifndef HC_HANDLE_H
#define HC_HANDLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "format.h"
#include "headcount.h"
#include "mutex.h"
#include "region.h"
#include "scope.h"

struct hc_region {
        unsigned n_ref;                  /* the handle, plus each seat taken through it */
        struct scope sc;
        int dirfd;                       /* the checked scope directory */
        unsigned dir_token;              /* its scope_get_dir() token */
        bool dir_private;                /* nobody but us (and root) may reach its files */
        struct region r;
        struct mutex mutex;
        unsigned n_files;
        int query_fd[HC_LOCK_FILES_MAX]; /* per lock file: a description for probes and
                                          * watches, opened when first needed */
        int idle_fd[HC_LOCK_FILES_MAX];  /* per lock file: a spare read-write description
                                          * for taking seats, or -EBADF */
        uint64_t fork_epoch;             /* process epoch idle_fd[] belongs to */
        pthread_mutex_t cache_lock;      /* taken only to drop idle_fd[] after a fork */
        struct hc_slot *spare;           /* a freed seat struct, for the next join */
        unsigned last_seat;              /* tried first by the next join */
        bool watching;                   /* HC_WATCH: counted in the header's waiters */
        bool lock_try;                   /* HC_LOCK_TRY: our own region locks try once */
        bool cold;                       /* a call by name's: may use the process's spare */
        bool from_copy;                  /* opened from the process's copy of its header:
                                          * the join checks the header once it has a seat */
        bool by_proc_locks;              /* we may not open its lock files (a reader):
                                          * counted from /proc/locks (count.c) */
};

enum {
        HANDLE_CREATE = 1 << 0,          /* create the region when missing */
        HANDLE_MAP = 1 << 1,             /* map it when that is safe */
        HANDLE_READ_ONLY = 1 << 2,       /* do not even try to open it read-write */
        HANDLE_FOREIGN = 1 << 3,         /* root may look at another user's region, read-only */
        HANDLE_COLD = 1 << 4,            /* a join by name's: may use the process's spare
                                          * lock file description (handle.c) */
};

#define HANDLE_RETRIES 100              /* retirements we sit out while opening one name */

int handle_open(const struct scope *sc, const hc_options *opt, unsigned flags, hc_region **ret);
hc_region *handle_ref(hc_region *h);
hc_region *handle_unref(hc_region *h);

/* The query description of lock file K (opened on first use). */
int handle_query_fd(hc_region *h, unsigned k, int *ret_fd);

/* A read-write description of lock file K to take a seat through, and giving it back. */
int handle_take_fd(hc_region *h, unsigned k, int *ret_fd);
void handle_put_fd(hc_region *h, unsigned k, int fd);

/* Forgets the process's copy of a region header (a join from it found another). */
void handle_forget_copy(void);

/* A leave by name keeps FD (of lock file K, its seat given back) for the next join. */
void handle_cold_put(hc_region *h, unsigned k, int fd);

/* How long the library's own uses of the region lock wait through this handle: 0 (one
 * try) with HC_LOCK_TRY, else REGION_LOCK_TIMEOUT_MS. */
int handle_lock_timeout(const hc_region *h);

/* 1 when the region was retired after the handle opened it. */
int handle_retired(hc_region *h);

/* Closes what a seat taken through a short-lived handle does not need (the directory is
 * kept with KEEP_DIR: a handed seat removes its own file when it leaves). */
void handle_trim(hc_region *h, bool keep_dir);

#endif
