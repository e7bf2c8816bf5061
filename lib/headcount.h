/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libheadcount: count and limit the running instances of a program on one Linux machine.
 *
 * A *region* is a small file named after the program ("web", "backup.nightly") in a scope
 * directory. Each running instance holds a *seat* in it. A seat is a byte-range lock that
 * the kernel itself grants and takes back, so the count stays exact when instances crash,
 * are killed with SIGKILL, or their PIDs are reused. See libheadcount(3) for the model.
 *
 * Every function returns a negative errno-style code on failure (as libsystemd does);
 * nothing is ever printed and no global error state is kept. Functions that take a name
 * check it before anything touches the disk.
 */
#ifndef HEADCOUNT_H
#define HEADCOUNT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Types ---------------------------------------------------------------------------- */

typedef struct hc_slot hc_slot;          /* one seat held by this process */
typedef struct hc_region hc_region;      /* an open region, for repeated queries and joins */

/* The longest name: 1 to HC_NAME_MAX bytes of [A-Za-z0-9._-], not starting with '.'. A
 * name may also be written "Local\NAME" (user scope) or "Global\NAME" (system scope). */
#define HC_NAME_MAX 200

/* The longest tag stored with a seat, in bytes (any bytes but NUL). Longer tags: -EINVAL. */
#define HC_TAG_MAX 64

/* Seats a region can have at most, and how many it gets when nobody says. */
#define HC_CAPACITY_MAX 4096
#define HC_CAPACITY_DEFAULT 64

/* hc_options.scope */
enum {
        HC_SCOPE_USER = 0,       /* $XDG_RUNTIME_DIR/headcount, else /dev/shm/headcount-UID */
        HC_SCOPE_SYSTEM = 1,     /* /run/headcount: limits that span users */
};

/* hc_options.flags */
enum {
        HC_NO_CREATE = 1 << 0,   /* hc_join/hc_region_open: fail with -ENOENT, do not create */
        HC_INHERIT = 1 << 1,     /* the seat's descriptor survives exec(): for wrappers */
        HC_WATCH = 1 << 2,       /* hc_region_open: count as a waiter while the handle is
                                  * open, so that every leave raises an inotify event on
                                  * the region file (IN_MODIFY): for monitors */
};

/*
 * Options for every call. Always pass them through HC_OPTIONS() (or set .size yourself):
 * the size field lets later releases add fields at the end without new symbols, and a
 * library that is newer than your program reads only the fields your program knew.
 * A NULL options pointer means all defaults. Fields that do not apply to a call are ignored.
 */
typedef struct hc_options {
        size_t size;             /* sizeof(hc_options), set by HC_OPTIONS() */
        int scope;               /* HC_SCOPE_USER (default) or HC_SCOPE_SYSTEM */
        const char *dir;         /* use the regions in this directory; overrides scope and
                                  * $HEADCOUNT_DIR. NULL: $HEADCOUNT_DIR, then the scope */
        unsigned max;            /* join: seats this caller may take, 1..capacity; 0 means 1 */
        const char *tag;         /* join: up to HC_TAG_MAX bytes shown by hc_list; NULL: none */
        int timeout_ms;          /* join: how long to wait for a free seat; 0 (default): fail
                                  * at once with -EBUSY; -1: forever */
        unsigned mode;           /* creation: file mode, 0 means 0644 */
        unsigned capacity;       /* creation: seats, 1..HC_CAPACITY_MAX; 0 means
                                  * HC_CAPACITY_DEFAULT or max, whichever is larger */
        size_t data_size;        /* creation: bytes of user data after the slot table */
        unsigned flags;          /* HC_NO_CREATE, HC_INHERIT */
} hc_options;

#define HC_OPTIONS_SIZE_V1 (offsetof(hc_options, flags) + sizeof(unsigned))

/* A pointer to options with the size set: hc_join("web", HC_OPTIONS(.max = 2), &s). */
#define HC_OPTIONS(...) (&(const hc_options) { .size = sizeof(hc_options), __VA_ARGS__ })

/* One live instance, as hc_list() reports it. */
typedef struct hc_instance {
        unsigned slot;           /* seat index, 0..capacity-1 */
        pid_t pid;               /* the holder's PID in *its* PID namespace (see flags) */
        uid_t uid;               /* the holder's real uid at its process's first join */
        uint64_t seq;            /* orders joins: a later join has a larger seq (see below) */
        int64_t joined_usec;     /* CLOCK_REALTIME of the join, microseconds since the epoch */
        uint64_t pidns;          /* inode number of the holder's PID namespace */
        uint8_t boot_id[16];     /* the holder's boot id (/proc/sys/kernel/random/boot_id) */
        unsigned flags;          /* HC_INSTANCE_* below */
        char tag[HC_TAG_MAX + 1];/* the tag, NUL-terminated; may hold any other bytes */
} hc_instance;

enum {
        HC_INSTANCE_NO_RECORD = 1 << 0,    /* the seat is held but its record could not be
                                            * read (being written, or damaged): only .slot
                                            * is meaningful */
        HC_INSTANCE_OTHER_PIDNS = 1 << 1,  /* .pid is from another PID namespace than ours */
        HC_INSTANCE_OTHER_BOOT = 1 << 2,   /* recorded under another boot id (cannot be live:
                                            * reported only for damaged regions) */
};

/* ---- Joining and leaving --------------------------------------------------------------- */

/*
 * Takes a seat in the region called NAME, creating the region if needed (unless
 * opt->flags has HC_NO_CREATE).
 *
 * With opt->max = N the caller takes one of seats 0..N-1, lowest free first, so at most N
 * callers that pass the same N hold seats at once; the region's capacity caps N whatever
 * the caller passes. opt->timeout_ms says how long to wait for a seat (0: fail at once,
 * -1: forever); waiting sleeps on inotify, it does not poll.
 *
 * Returns 0 and stores the seat in *ret. On failure *ret is left alone and one of these
 * is returned:
 *   -EINVAL     NAME or OPT is malformed (nothing was touched on disk)
 *   -EBUSY      all N seats are held by live processes (timeout_ms = 0)
 *   -ETIMEDOUT  no seat became free within timeout_ms
 *   -ENOENT     HC_NO_CREATE was given and there is no such region, or the directory
 *               is missing and cannot be created
 *   -ENOTDIR    the scope directory is not a directory
 *   -EPERM      the region file or its directory is not one we can trust (a symlink,
 *               a directory, FIFO or socket in its place, another owner, writable by
 *               others outside the system scope, a directory others may write to
 *               without the sticky bit)
 *   -EACCES     the region exists but we may not open it for writing
 *   -EBADMSG    the region is corrupt or was made by an incompatible build
 *   -EREMOTE    the directory is on a network filesystem, where byte-range locks are
 *               emulated or local to one client
 *   -ESTALE     the region was retired and made again more than 100 times while we
 *               tried to join it
 *   -ENOSPC, -EDQUOT, -EMFILE, -ENOMEM, ...  as the underlying system calls report
 *
 * The seat belongs to an open file description of its own. It is released by
 * hc_leave() or when the process exits, however it exits: no stale state is left for
 * the next process. After fork() the child shares the seat (as with flock(1)); the
 * child's hc_leave() only drops its own reference, never the parent's seat. The
 * descriptor is close-on-exec unless opt->flags has HC_INHERIT. Threads may each hold
 * their own seats. See hc_join(3).
 */
int hc_join(const char *name, const hc_options *opt, hc_slot **ret);

/* Gives the seat back. Accepts NULL. Always returns NULL: s = hc_leave(s); */
hc_slot *hc_leave(hc_slot *slot);

/* The seat's index (0..capacity-1) and its sequence number. */
unsigned hc_slot_index(const hc_slot *slot);
uint64_t hc_slot_seq(const hc_slot *slot);

/*
 * Records PID as the seat's holder (for wrappers that exec a command which inherits the
 * seat: the seat then shows the command's PID). Returns 0, -EINVAL for a bad argument,
 * or -ESTALE when called in another process than the one that joined.
 */
int hc_slot_set_pid(hc_slot *slot, pid_t pid);

/*
 * The descriptor that holds the seat, for a wrapper that must hand it to a child it
 * execs (join with HC_INHERIT). The seat is held while any copy is open; do not close
 * it yourself. Returns the descriptor, or -EINVAL for NULL.
 */
int hc_slot_fd(const hc_slot *slot);

/* ---- Queries by name ------------------------------------------------------------------- */

/*
 * Returns the exact number of held seats (>= 0): dead holders never count. Records of
 * dead holders found on the way are cleared. Errors: -EINVAL, -ENOENT (no such region),
 * -EPERM, -EACCES, -EBADMSG, -EREMOTE.
 */
int hc_count(const char *name, const hc_options *opt);

/*
 * Returns a hint (>= 0) at the count, read from the region header without checking any
 * seat: the count seen by the last exact count through a handle, hc_list(), or reap, by
 * any process (headcountd keeps it fresh). Joins and leaves do not update it: that would
 * make every join write a cache line that all instances share. Errors as hc_count().
 */
int hc_count_approx(const char *name, const hc_options *opt);

/*
 * Lists the live instances in seat order. Returns their number n >= 0 and stores a
 * malloc()ed array of n entries in *ret (NULL when n is 0); free(*ret) when done.
 * Errors as hc_count(), and -ENOMEM.
 */
int hc_list(const char *name, const hc_options *opt, hc_instance **ret);

/*
 * Stores the primary instance in *ret: the live seat with the lowest sequence number
 * (the longest-running instance; ties go to the lower seat). Returns 0, or -ENOENT when
 * the region does not exist or nobody holds a seat, or an error as hc_count().
 */
int hc_primary(const char *name, const hc_options *opt, hc_instance *ret);

/*
 * Waits until fewer than BELOW seats are held and returns that count (>= 0). Returns at
 * once when the count already is below; a region that does not exist counts as 0.
 * TIMEOUT_MS: -1 waits forever, 0 only checks. Sleeps on inotify events of the region's
 * files (every join opens a descriptor, every leave and every death closes one) with a
 * bounded re-check every HC_WAIT_RECHECK_MS for the rare case that sends no event (a
 * seat shared with a forked child that the parent gives back). Errors: -EINVAL (BELOW
 * is 0), -ETIMEDOUT, and those of hc_count() but -ENOENT.
 */
int hc_wait(const char *name, const hc_options *opt, unsigned below, int timeout_ms);
#define HC_WAIT_RECHECK_MS 100

/*
 * Clears the records of dead holders under the region's mutex and refreshes the header's
 * hint; returns how many records were cleared (>= 0). Nothing needs it for correctness
 * (the locks are the truth, and every count and list skips dead records); it is the
 * region's fsck, exposed as the reaper is in LMDB. Errors as hc_count().
 */
int hc_reap(const char *name, const hc_options *opt);

/* ---- Creating and retiring ------------------------------------------------------------- */

/*
 * Creates the region with opt->mode, opt->capacity and opt->data_size, ahead of any
 * join (for example by root, for a region that several users share). Returns 1 when it
 * created the region, 0 when it already existed (its settings are left as they are), or
 * an error as hc_join() but -EBUSY and -ETIMEDOUT.
 */
int hc_create(const char *name, const hc_options *opt);

/*
 * Retires and removes the region, only if nobody holds a seat. Joiners that had opened
 * it before notice it was retired and create or open the new one by name: nobody joins
 * a ghost. Returns 0, -EBUSY when a seat is held, -ENOENT when there is no such region,
 * or an error as hc_count().
 */
int hc_remove(const char *name, const hc_options *opt);

/*
 * Calls CB once for every region in the scope directory (in no particular order) with
 * its name and exact count, or a negative error code for a region that cannot be read;
 * stops early when CB returns non-zero and returns that value. Removes temporaries left
 * by creators that died. Returns 0, or -ENOENT when the directory does not exist, or
 * -EINVAL, -EPERM, -EREMOTE.
 */
int hc_names(const hc_options *opt, int (*cb)(const char *name, int count, void *userdata),
             void *userdata);

/*
 * Writes the scope directory that OPT selects into BUF (for messages and tools). Returns
 * its length, -EINVAL, or -ENAMETOOLONG when it does not fit in LEN bytes.
 */
int hc_scope_dir(const hc_options *opt, char *buf, size_t len);

/*
 * Checks a name: 0 when it is valid (with "Local\" or "Global\" prefix allowed), -EINVAL
 * when it is not.
 */
int hc_name_valid(const char *name);

/* ---- A handle for repeated use --------------------------------------------------------- */

/*
 * Opens (and, unless HC_NO_CREATE, creates) the region once, for monitors and daemons
 * that query it often and for programs that join and leave in a loop. The handle keeps
 * the region mapped and its descriptors open. A handle is safe to use from several
 * threads. In a child after fork() it keeps working: it reopens what it needs.
 * Errors as hc_join() but -EBUSY and -ETIMEDOUT.
 */
int hc_region_open(const char *name, const hc_options *opt, hc_region **ret);

/* Closes the handle. Seats taken through it stay valid until hc_leave(). NULL-safe. */
hc_region *hc_region_close(hc_region *rg);

/*
 * As hc_join(), hc_count() and so on, through the handle (opt may be NULL). A join
 * through a handle keeps a spare descriptor for the next one, so a join and leave in a
 * loop costs one lock and one unlock. hc_region_join() also returns -EACCES for a handle
 * opened read-only and -ESTALE for a region retired since the handle opened it (close it
 * and open the name again). Queries on a retired region report 0 instances.
 */
int hc_region_join(hc_region *rg, const hc_options *opt, hc_slot **ret);
int hc_region_count(hc_region *rg);
int hc_region_count_approx(hc_region *rg);
int hc_region_list(hc_region *rg, hc_instance **ret);
int hc_region_primary(hc_region *rg, hc_instance *ret);
int hc_region_wait(hc_region *rg, unsigned below, int timeout_ms);

/* The region's name, capacity, and user data size. */
const char *hc_region_name(const hc_region *rg);
unsigned hc_region_capacity(const hc_region *rg);
size_t hc_region_data_size(const hc_region *rg);

/*
 * Returns 1 when the region was retired (hc_remove()) after the handle opened it: the
 * caller should close the handle and open the name again. 0 otherwise.
 */
int hc_region_retired(const hc_region *rg);

/*
 * As hc_reap() through the handle, and then wakes every hc_wait() caller on the region so
 * that it counts again at once: for a monitor (such as headcountd) that learned of a
 * holder's death by other means, for example a pidfd. Returns the number of records
 * cleared (>= 0), -EACCES for a handle opened read-only, or -ETIMEDOUT when the region's
 * mutex could not be had within 5 seconds.
 */
int hc_region_reap(hc_region *rg);

#ifdef __cplusplus
}
#endif

#endif
