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

/* The largest user data area a region can have, in bytes (1 GiB). */
#define HC_DATA_SIZE_MAX (UINT64_C(1) << 30)

/* hc_options.scope */
enum {
        HC_SCOPE_USER = 0,       /* $XDG_RUNTIME_DIR/headcount, else /dev/shm/headcount-UID */
        HC_SCOPE_SYSTEM = 1,     /* /run/headcount: limits that span users */
        HC_SCOPE_FLEET = 2,      /* across hosts, through etcd and headcountd: man 3 hc_fleet */
};

/* hc_options.flags */
enum {
        HC_NO_CREATE = 1 << 0,   /* hc_join/hc_region_open: fail with -ENOENT, do not create */
        HC_INHERIT = 1 << 1,     /* the seat's descriptor survives exec(): for wrappers */
        HC_WATCH = 1 << 2,       /* hc_region_open: count as a waiter while the handle is
                                  * open, so that every leave raises an inotify event on
                                  * the region file (IN_MODIFY): for monitors */
        HC_ALLOW_ROOT = 1 << 3,  /* hc_listen: also accept messages from root; hc_send
                                  * run by root: also send to a primary of another uid */
        HC_RECORD_LATER = 1 << 4,/* hc_join, hc_region_join: take the seat, but write its
                                  * record only when hc_slot_set_pid() names the holder: for
                                  * a wrapper that starts a command which inherits the seat,
                                  * so that every monitor sees the command's pid from the
                                  * start. Until then the seat counts, and hc_list() shows
                                  * it with HC_INSTANCE_NO_RECORD */
        HC_ANY_OWNER = 1 << 5,   /* hc_region_open, run by root: also open a region that
                                  * another user owns, read-only and never mapped, as a
                                  * monitor must (root never joins such a region) */
        HC_LOCK_TRY = 1 << 6,    /* hc_region_open: where the library takes the region
                                  * lock for itself through this handle (hc_region_reap(),
                                  * finishing a retirement left half-done), it tries once
                                  * instead of waiting up to 5 s, and fails with -ETIMEDOUT
                                  * at once while another process holds the lock: for an
                                  * event loop that must never block, and tries again later */
};

/*
 * Options for every call. Always pass them through HC_OPTIONS() (or set .size yourself):
 * the size field lets later releases add fields at the end without new symbols, and a
 * library that is newer than your program reads only the fields your program knew.
 * A NULL options pointer means all defaults. Fields that do not apply to a call are ignored.
 */
typedef struct hc_options {
        size_t size;             /* sizeof(hc_options), set by HC_OPTIONS() */
        int scope;               /* HC_SCOPE_USER (default), _SYSTEM or _FLEET */
        const char *dir;         /* use the regions in this directory; overrides scope and
                                  * $HEADCOUNT_DIR. NULL: $HEADCOUNT_DIR, then the scope */
        unsigned max;            /* join: seats this caller may take, 1..capacity; 0 means 1 */
        const char *tag;         /* join: up to HC_TAG_MAX bytes shown by hc_list; NULL: none */
        int timeout_ms;          /* join: how long to wait for a free seat; 0 (default): fail
                                  * at once with -EBUSY; -1: forever */
        unsigned mode;           /* creation: file mode, 0 means 0600. Group or other write
                                  * bits only in the system scope (or as root): elsewhere
                                  * such a region could never be trusted, so -EINVAL */
        unsigned capacity;       /* creation: seats, 1..HC_CAPACITY_MAX; 0 means
                                  * HC_CAPACITY_DEFAULT or max, whichever is larger */
        size_t data_size;        /* creation: bytes of user data after the slot table */
        unsigned flags;          /* HC_NO_CREATE, HC_INHERIT, HC_WATCH, HC_ALLOW_ROOT, ... */
        /* Read only when .size covers them (programs built against 0.1 headers before
         * they were added pass a smaller size and get the defaults). */
        size_t message_max;      /* hc_listen, hc_send: the longest message or reply, in
                                  * bytes; 0 means HC_MESSAGE_MAX_DEFAULT */
        int peer_timeout_ms;     /* hc_listen: how long a sender may take to deliver its
                                  * message, or to take the reply; 0 means
                                  * HC_PEER_TIMEOUT_DEFAULT_MS */
        char *error_text;        /* fleet scope: on failure, the agent's one-line
                                  * explanation (etcd's own message, the endpoint it could
                                  * not reach) is copied here, NUL-terminated; may be NULL.
                                  * Local scope: when a call that may create the region
                                  * replaced a damaged one (hc_create()), a line saying so
                                  * is copied here; left alone otherwise */
        size_t error_text_size;  /* bytes at error_text */
} hc_options;

#define HC_OPTIONS_SIZE_V1 (offsetof(hc_options, flags) + sizeof(unsigned))

/* A pointer to options with the size set: hc_join("web", HC_OPTIONS(.max = 2), &s).
 * In C++ (designated initializers: C++20, or GNU C++), name the fields in the order they
 * are declared; the options live until the end of the full expression. */
#ifdef __cplusplus
} /* extern "C" */
/* hc_options with every field defaulted, so that C++ may name only some of them. */
struct hc_options_cxx_ {
        size_t size = sizeof(hc_options);
        int scope = 0;
        const char *dir = nullptr;
        unsigned max = 0;
        const char *tag = nullptr;
        int timeout_ms = 0;
        unsigned mode = 0;
        unsigned capacity = 0;
        size_t data_size = 0;
        unsigned flags = 0;
        size_t message_max = 0;
        int peer_timeout_ms = 0;
        char *error_text = nullptr;
        size_t error_text_size = 0;
};
static_assert(sizeof(hc_options_cxx_) == sizeof(hc_options) &&
              offsetof(hc_options_cxx_, error_text_size) == offsetof(hc_options, error_text_size),
              "hc_options_cxx_ mirrors hc_options");
static inline const hc_options *hc_options_ptr_(const hc_options_cxx_ &o) {
        return reinterpret_cast<const hc_options *>(&o);
}
#define HC_OPTIONS(...) hc_options_ptr_(hc_options_cxx_{ __VA_ARGS__ })
extern "C" {
#else
#define HC_OPTIONS(...) (&(const hc_options) { .size = sizeof(hc_options), __VA_ARGS__ })
#endif

/* One live instance, as hc_list() reports it. */
typedef struct hc_instance {
        unsigned slot;           /* seat index, 0..capacity-1 */
        pid_t pid;               /* the holder's PID in *its* PID namespace (see flags) */
        uid_t uid;               /* the holder's real uid at its process's first join */
        uint64_t seq;            /* orders joins: the host's CLOCK_MONOTONIC at the join, in
                                  * ns, with the joiner's time-namespace offset taken out,
                                  * so that no namespace or clock step can reorder joins */
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
        HC_INSTANCE_UNVERIFIED = 1 << 3,   /* the record may have been written by another user (the region is writable by others): pid, uid and tag are claims, not facts */
        HC_INSTANCE_UNREADABLE = 1 << 4,   /* with HC_INSTANCE_NO_RECORD: the seat's record is
                                            * there but failed its check every time it was
                                            * read (a few reads, for a writer caught half-way):
                                            * damaged, or written by another program */
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
 *   -EINVAL     NAME or OPT is malformed, or opt->mode has group or other write bits
 *               outside the system scope (nothing was touched on disk)
 *   -EBUSY      all N seats are held by live processes (timeout_ms = 0)
 *   -ETIMEDOUT  no seat became free within timeout_ms
 *   -ENOENT     HC_NO_CREATE was given and there is no such region, or the directory
 *               is missing and cannot be created
 *   -ENOTDIR    the scope directory is not a directory
 *   -EPERM      the region file or its directory is not one we can trust (a symlink,
 *               a directory, FIFO or socket in its place, a second hard link, another
 *               owner, writable by others outside the system scope, a directory others
 *               may write to without the sticky bit, a symlink in place of the user
 *               scope's directory). Every call checks the directory it resolves a name
 *               in, and opens the files through that checked directory.
 *   -EACCES     the region exists but we may not open it for writing
 *   -EBADMSG    the region is corrupt or was made by an incompatible build, and could
 *               not be replaced: a damaged region that the caller owns and nobody is in
 *               is made again instead (hc_create())
 *   -EREMOTE    the directory is on a network filesystem, where byte-range locks are
 *               emulated or local to one client
 *   -ESTALE     the region was retired and made again more than 100 times while we
 *               tried to join it
 *   -ENOSPC, -EDQUOT, -EMFILE, -ENOMEM, ...  as the underlying system calls report
 *
 * The seat is a lock taken through an open file description of its own, on a lock file
 * that holds no data: the descriptor grants nothing but the seat. No descriptor of the
 * library is ever 0, 1 or 2. The seat is released by
 * hc_leave() or when the process exits, however it exits: no stale state is left for
 * the next process. After fork() the child shares the seat (as with flock(1)); the
 * child's hc_leave() only drops its own reference, never the parent's seat. The
 * descriptor is close-on-exec unless opt->flags has HC_INHERIT. Threads may each hold
 * their own seats. See hc_join(3).
 */
int hc_join(const char *name, const hc_options *opt, hc_slot **ret);

/* Gives the seat back. Accepts NULL. Always returns NULL: s = hc_leave(s); */
hc_slot *hc_leave(hc_slot *slot);

/*
 * Gives the seat back as hc_leave() does, and records how the run it held ended in the
 * region's history (hc_history()): STATUS is a wait status, as waitpid() gives it for a
 * command that the caller ran while holding the seat (WIFEXITED: its exit code;
 * WIFSIGNALED: its signal); a process that ends itself passes W_EXITCODE(code, 0), that
 * is code << 8. hc_leave() records a leave without a status. Accepts NULL; returns NULL.
 */
hc_slot *hc_leave_status(hc_slot *slot, int status);

/*
 * Gives the seat back as the kernel does when its holder dies: its record is left in
 * place, so that monitors (hc_region_departure(), headcountd) report a death, not a
 * leave. For a wrapper whose command, named by hc_slot_set_pid(), was killed holding the
 * seat. Accepts NULL; returns NULL.
 */
hc_slot *hc_abandon(hc_slot *slot);

/* The seat's index (0..capacity-1) and its sequence number. */
unsigned hc_slot_index(const hc_slot *slot);
uint64_t hc_slot_seq(const hc_slot *slot);

/*
 * Records PID as the seat's holder (for wrappers that exec a command which inherits the
 * seat: the seat then shows the command's PID). PID must hold a copy of the seat's
 * descriptor (hc_region_holder()). Returns 0, -EINVAL for a bad argument, -ESRCH when PID
 * is not proven to hold the seat (the record stays as it was), or -ESTALE when called in
 * another process than the one that joined.
 */
int hc_slot_set_pid(hc_slot *slot, pid_t pid);

/*
 * Ends the seat's current run in the region's history (hc_history()) with wait STATUS,
 * as hc_leave_status() would, and keeps the seat: for a wrapper that runs its command
 * again on the same seat (headcount run --restart). Until the next hc_slot_set_pid(),
 * which begins the next run with the PID it names, the record names the caller, and the
 * holding is no run. Returns 0, -EINVAL, -EOPNOTSUPP in the fleet scope (its seats keep
 * no history), -ESTALE in another process than the one that joined, or an error of the
 * write.
 */
int hc_slot_end_run(hc_slot *slot, int status);

/*
 * The descriptor that holds the seat, for a wrapper that must hand it to a child it
 * execs (join with HC_INHERIT). The seat is held while any copy is open; do not close
 * it yourself. It is a description of a lock file of the seat's own, which reaches no
 * other seat: a command run as another user cannot take more seats through it. The
 * joiner keeps its seat in the region's lock file through a description of its own
 * (close-on-exec); when the joiner dies and the command lives on, the seat still counts
 * until the last copy is closed. Returns the descriptor, or -EINVAL for NULL, -errno
 * when the seat's own file cannot be made.
 */
int hc_slot_fd(hc_slot *slot);

/* ---- Seats held by a descriptor of the caller (shell scripts) ---------------------------- */

/*
 * hc_seat_path() writes the path of region NAME's first lock file (seats 0-31; data-less)
 * into BUF, creating the region unless HC_NO_CREATE; returns its length. hc_join_fd()
 * takes a seat through FD, open for writing on that file, and records PID (0: the caller)
 * as the holder; the seat is an OFD lock of FD's open file description, so it stays after
 * the caller exits until the last copy of the description is closed (however its holders
 * end), or hc_leave_fd() gives it back (the record first). opt->max (at most 32), tag and
 * timeout_ms are as for hc_join(); joining twice through one description keeps its seat.
 * Both return the seat's index. Errors as hc_join(), and: -EBADF FD not open, or not for
 * writing; -EXDEV FD is not on a lock file of NAME (or its seats lie beyond opt->max);
 * -ESTALE the region was removed since FD was opened; -ENOENT (hc_leave_fd) FD holds no
 * seat; -ENAMETOOLONG (hc_seat_path); -EOPNOTSUPP in the fleet scope; -ESRCH PID is not
 * proven (hc_region_holder()) to hold FD's description: a seat this call took is given
 * back. See hc_join_fd(3).
 */
int hc_seat_path(const char *name, const hc_options *opt, char *buf, size_t len);
int hc_join_fd(const char *name, const hc_options *opt, int fd, pid_t pid);
int hc_leave_fd(const char *name, const hc_options *opt, int fd);

/* ---- Queries by name ------------------------------------------------------------------- */

/*
 * Returns the exact number of held seats (>= 0): dead holders never count, and neither
 * do seats that are only read-locked. It only reads (read permission on the region is
 * enough: a caller that may not open the region's lock files, because it may not write
 * the region, counts the seat locks in /proc/locks) and does not map the file; the
 * records that dead holders left are cleared by hc_list(), counts through a handle and
 * hc_reap().
 * Errors: -EINVAL, -ENOENT (no such region), -EPERM, -EACCES, -EBADMSG, -EREMOTE.
 */
int hc_count(const char *name, const hc_options *opt);

/*
 * As hc_count(), and stores in *ret_read_locked how many seats somebody holds only a read
 * lock on. Such a seat is not held and never counts (a read lock holds no seat), but
 * nobody can take it while the lock lasts. hc_remove() and the reaper hold read locks for
 * a moment; one that lasts is a process that locks what it should not (only those who may
 * write the region can open its lock files). Errors as hc_count(), and -EOPNOTSUPP in
 * the fleet scope.
 */
int hc_count_read_locked(const char *name, const hc_options *opt, unsigned *ret_read_locked);

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

/* ---- History --------------------------------------------------------------------------- */

/* How many runs each seat's history keeps: a region keeps at least its last 16 runs. */
#define HC_RUNS_PER_SEAT_KEPT 16

enum {
        HC_RUN_RUNNING = 1,      /* it holds its seat */
        HC_RUN_LEFT = 2,         /* it gave the seat back (hc_leave(), hc_leave_status()) */
        HC_RUN_DIED = 3,         /* it lost the seat without leaving: killed, crashed, or
                                  * hc_abandon() */
};

/* One run: a holding of a seat, from the join to the leave or death. */
typedef struct hc_run {
        unsigned slot;           /* the seat */
        uint64_t run;            /* the seat's run number: 1, 2, ... */
        pid_t pid;               /* as its record named it (see hc_instance) */
        uid_t uid;
        uint64_t seq;            /* its start on the clock of hc_instance.seq: the join,
                                  * or for a later run of one holding (hc_slot_end_run())
                                  * when hc_slot_set_pid() named its process */
        uint64_t ended_seq;      /* the end on the clock of seq, to the kernel's tick (1 to
                                  * 10 ms): the leave, or for a death the moment it was
                                  * found; 0 while running */
        int64_t started_usec;    /* CLOCK_REALTIME of the join */
        int64_t ended_usec;      /* CLOCK_REALTIME of the leave; 0 while running or for a
                                  * death, whose moment nobody recorded */
        uint64_t pidns;          /* inode of its PID namespace */
        int how;                 /* HC_RUN_* */
        int exit_status;         /* its exit code, 0..255, or -1 when none was recorded */
        int signal;              /* the signal that ended it, or 0 */
        unsigned flags;          /* HC_INSTANCE_OTHER_PIDNS, HC_INSTANCE_OTHER_BOOT, and
                                  * HC_INSTANCE_UNVERIFIED: the region is writable by others,
                                  * so everything in the entry is a claim */
        char tag[HC_TAG_MAX + 1];/* NUL-terminated; may hold any other bytes */
} hc_run;

/*
 * The region's recent runs, oldest first (by join): the last HC_RUNS_PER_SEAT_KEPT of
 * each seat, finished or not. A holder's record is its run while it holds the seat; its
 * leave copies it, with its end, to the seat's history; a record still there on a free
 * seat is a holder that died, copied to the history as a death by whoever finds it first
 * (a count, a list, headcountd, or the seat's next holder). Needs no daemon. Returns their number n >= 0 and a malloc()ed array in
 * *ret (NULL when n is 0). Errors as hc_list(). See hc_history(3).
 */
int hc_history(const char *name, const hc_options *opt, hc_run **ret);
int hc_region_history(hc_region *rg, hc_run **ret);

/*
 * For monitors that follow every run (headcountd). hc_region_run_marks() stores in
 * ret[0..n-1] one word per seat (n at most the capacity) that changes whenever a run of
 * the seat begins or leaves: a cheap way to find the seats with news. Its value v says
 * (v >> 2) the seat's latest run number, as claimed by the region, and v & 3 is
 * HC_RUN_RUNNING while that run's record is there (it holds the seat, or it died and
 * nobody has found it yet), 0 when not. hc_region_seat_runs()
 * stores the runs of seat SLOT kept in the region, oldest first, in
 * ret[0..HC_RUNS_PER_SEAT_KEPT-1], and returns their number. Both return -EINVAL or the
 * errors of hc_region_list().
 */
int hc_region_run_marks(hc_region *rg, uint64_t *ret, unsigned n);
int hc_region_seat_runs(hc_region *rg, unsigned slot, hc_run *ret);

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
 * Clears the records of dead holders under the region's lock and refreshes the header's
 * hint; returns how many records were cleared (>= 0). Nothing needs it for correctness
 * (the locks are the truth, and every count and list skips dead records); it is the
 * region's fsck, exposed as the reaper is in LMDB. Errors as hc_count().
 */
int hc_reap(const char *name, const hc_options *opt);

/* ---- Creating and retiring ------------------------------------------------------------- */

/*
 * Creates the region with opt->mode, opt->capacity and opt->data_size, ahead of any
 * join (for example by root, for a region that several users share). Returns 1 when it
 * created the region, 0 when it already existed (its settings are left as they are), 2
 * when it replaced a damaged region, or an error as hc_join() but -EBUSY and -ETIMEDOUT.
 *
 * Damaged regions. A file longer than its header says is no damage. A region file that
 * fails validation otherwise, which the caller owns (root: one of root's), which is
 * recognisably a region (its magic, or the id of one of its lock files, is intact: an
 * empty file or another program's file never is) and in which nobody holds a seat, is
 * replaced by a new region by every call that may create one: hc_create(), and hc_join(),
 * hc_region_open() and hc_seat_path() without HC_NO_CREATE. The new region gets OPT's
 * capacity and data size, and opt->mode or else the old file's mode; opt->error_text,
 * when given, gets "replaced a damaged region 'NAME' in 'DIR' (nobody held a seat in
 * it)". Seats are looked for in every lock file of the name that the region's owner owns,
 * whatever id it carries: the header that names them may be what was damaged. See
 * hc_create(3).
 */
int hc_create(const char *name, const hc_options *opt);

/*
 * Retires and removes the region, only if nobody holds a seat. Joiners that had opened
 * it before notice it was retired and create or open the new one by name: nobody joins
 * a ghost. Returns 0, -EBUSY when a seat is held, -ENOENT when there is no such region,
 * or an error as hc_count().
 *
 * A file under the name that fails validation (a damaged region, or no region at all) is
 * removed too when the caller owns it or is root, it is a regular file with one link, and
 * nobody holds a seat in it: with its lock files, whatever id they carry, the temporaries
 * of creators that died and the sockets nobody listens on. -EBUSY when a seat is held in
 * it; -EBADMSG when the caller is neither its owner nor root.
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

/* hc_file_region() */
enum {
        HC_FILE_REGION = 1,      /* the region file itself */
        HC_FILE_LOCK = 2,        /* one of its lock files (where the seats are) */
        HC_FILE_TEMPORARY = 3,   /* a region being created */
        HC_FILE_SOCKET = 4,      /* a primary's listening socket */
        HC_FILE_SEAT = 5,        /* the lock file of a seat handed to a command */
};

/*
 * Tells which region a file of a scope directory belongs to, from its name alone (FILE
 * may be a path; only its last component counts): for monitors that watch the directory.
 * Stores the region's name in RET_NAME (LEN bytes, HC_NAME_MAX + 1 is enough) and returns
 * one of HC_FILE_*, or -EINVAL for a file that is none of headcount's, -ENAMETOOLONG.
 */
int hc_file_region(const char *file, char *ret_name, size_t len);

/*
 * Writes the scope directory that OPT selects into BUF (for messages and tools). Returns
 * its length, -EINVAL, or -ENAMETOOLONG when it does not fit in LEN bytes.
 */
int hc_scope_dir(const hc_options *opt, char *buf, size_t len);

/* Checks a name: 0 when it is valid (a "Local\" or "Global\" prefix allowed), else -EINVAL. */
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

/*
 * Waits until the count differs from SEEN (typically the last count the caller showed)
 * and returns the new count (>= 0), at once when it already differs. Wakes on joins as
 * well as on leaves and deaths: for monitors and for programs that show the count, as
 * examples/appinst.c does. TIMEOUT_MS as hc_region_wait(). Errors: -ETIMEDOUT, -ESTALE
 * when the region was retired while SEEN is 0 (nothing can change any more), -EINVAL,
 * and those of hc_region_count().
 */
int hc_region_wait_change(hc_region *rg, unsigned seen, int timeout_ms);

/* The region's name, capacity, and user data size. */
const char *hc_region_name(const hc_region *rg);
unsigned hc_region_capacity(const hc_region *rg);
size_t hc_region_data_size(const hc_region *rg);

/*
 * Returns 1 when the region was retired (hc_remove()) after the handle opened it: the
 * caller should close the handle and open the name again. 0 otherwise. It may finish the
 * repair of a retirement whose retirer died half-way (hence the handle is not const).
 */
int hc_region_retired(hc_region *rg);

/*
 * Returns 1 when the handle maps the region (hc_region_data() is memory, the fast paths
 * apply), 0 when it reads and writes it with pread()/pwrite(): a region that users other
 * than its owner may write (a 0666 region of the system scope, or any region of another
 * user) is never mapped, so that nobody can shrink it under us or plant structures in it.
 */
int hc_region_mapped(const hc_region *rg);

/*
 * Tells how the holder that held seat SLOT with sequence number SEQ (both from its
 * hc_instance) went away, for monitors that report joins and departures: 0 when it gave
 * the seat back (hc_leave(), or it exited after leaving: a leave writes its run to the
 * seat's history before it lets go of the seat), 1 when it died holding the seat (the
 * kernel freed the lock while its record was still there; reaping keeps what tells so).
 * Errors: -EBUSY when it still holds the seat, -ESTALE when the seat has had more than
 * HC_RUNS_PER_SEAT_KEPT runs since (the answer is lost), -EINVAL, and those of
 * hc_region_count(). In a region others may write, the answer is a claim, as the record
 * is.
 */
int hc_region_departure(hc_region *rg, unsigned slot, uint64_t seq);

/*
 * Proves who holds seat SLOT from the kernel's locks (/proc/PID/fdinfo), not its record.
 * PID > 0: PID when it holds the seat, -ESRCH when not, -EACCES when its descriptors may
 * not be read. PID 0: the pid of one that does (a bounded search of every process we may
 * read, for rare paths), or -ESRCH when nobody can be identified. Also -EXDEV (/proc
 * cannot show our processes), -EINVAL. Hold a pidfd across it to act on the process
 * proven. See hc_region_holder(3).
 */
int hc_region_holder(hc_region *rg, unsigned slot, pid_t pid);

/*
 * As hc_reap() through the handle, and then wakes every hc_wait() caller on the region so
 * that it counts again at once: for a monitor (such as headcountd) that learned of a
 * holder's death by other means, for example a pidfd. Returns the number of records
 * cleared (>= 0), -EACCES for a handle opened read-only, or -ETIMEDOUT when the region's
 * lock could not be had within 5 seconds (at once, for a handle opened with HC_LOCK_TRY).
 */
int hc_region_reap(hc_region *rg);

/* ---- The primary: forwarding work to it ------------------------------------------------ */

/*
 * The primary is the live seat with the lowest sequence number (hc_primary()). It may
 * listen for messages from other instances on a Unix stream socket named
 * "<scope dir>/.<name>.<nonce>.sock", mode 0600, where <nonce> is drawn at random by the
 * listener and published in its seat's record; senders find it there. So no other user
 * can take the name first, block it or redirect it, and the socket a crashed primary left
 * behind never blocks the next primary, whoever its user. One listener per region:
 * hc_listen() holds a lock on the region for as long as it listens, and removes the dead
 * sockets of earlier listeners of its uid.
 *
 * A message is one request and one reply on one connection, each framed with a small
 * header (a magic and a 32-bit length) and at most opt->message_max bytes long. The
 * listener refuses peers of another uid than its own (root too, unless HC_ALLOW_ROOT),
 * and drops a peer that sends a bad frame, too much, or takes longer than
 * opt->peer_timeout_ms, without affecting itself or other peers.
 */
typedef struct hc_listener hc_listener;

/* A message received by the primary. Allocated by the library; read-only for the caller
 * (later releases may add fields at the end). */
typedef struct hc_message {
        void *data;              /* the bytes sent, followed by a NUL that is not counted */
        size_t size;             /* their number, <= message_max */
        pid_t pid;               /* the sender, as the kernel saw it (SO_PEERCRED) */
        uid_t uid;
        gid_t gid;
} hc_message;

#define HC_MESSAGE_MAX_DEFAULT (64 * 1024)
#define HC_PEER_TIMEOUT_DEFAULT_MS 5000
#define HC_SEND_TIMEOUT_DEFAULT_MS 5000

/*
 * Starts listening for messages to the primary of region NAME. SLOT must be a seat of
 * this process in that region, and the primary. Returns 0 and the listener in *ret, or:
 *   -EINVAL     bad NAME, OPT or SLOT
 *   -EBUSY      SLOT is not the primary, or another listener is active for NAME
 *   -ENOENT     no such region
 *   -ENAMETOOLONG  the socket's path does not fit in a sockaddr_un
 *   -EPERM, -EACCES, -EBADMSG, -EREMOTE  as hc_count()
 *   -EMFILE, -ENOMEM, ...  as the underlying system calls report
 * Free the listener (which removes the socket) before leaving the seat.
 */
int hc_listen(const char *name, const hc_options *opt, const hc_slot *slot, hc_listener **ret);

/* Stops listening and removes the socket. Messages not yet replied to stay valid (reply
 * or free them). NULL-safe; returns NULL. */
hc_listener *hc_listener_free(hc_listener *l);

/*
 * The one descriptor to watch for POLLIN in the caller's poll() or event loop (an epoll
 * descriptor over the socket, the peers and a timer). When it is readable, call
 * hc_listener_receive() until it returns -EAGAIN. Do not read or close it yourself.
 */
int hc_listener_fd(const hc_listener *l);

/*
 * Does the listener's pending work without blocking (accepts, reads, drops bad and
 * stalled peers) and returns 0 with the next complete message in *ret, or -EAGAIN when
 * there is none yet, -EINVAL for NULL arguments. Answer each message with
 * hc_message_reply() or drop it with hc_message_free().
 */
int hc_listener_receive(hc_listener *l, hc_message **ret);

/*
 * Sends LEN bytes of DATA (LEN <= message_max) as the reply to M and frees M in all
 * cases. The reply is delivered in the background when the sender is slow to take it
 * (bounded by the peer timeout). Returns 0, -EMSGSIZE when LEN is too long (the sender
 * gets -EMSGSIZE), -EPIPE when the sender has gone, -EINVAL for a NULL M.
 */
int hc_message_reply(hc_message *m, const void *data, size_t len);

/* Drops M without a reply (the sender gets -ECONNRESET). NULL-safe; returns NULL. */
hc_message *hc_message_free(hc_message *m);

/*
 * Sends LEN bytes of MSG to the primary of region NAME and waits for its reply, at most
 * opt->timeout_ms (0: HC_SEND_TIMEOUT_DEFAULT_MS; -1: forever). Never follows a symlink
 * to reach the socket. Checks that the listener runs as our effective uid; with
 * HC_ALLOW_ROOT also as root, and root may then send to anyone's primary (the listener
 * must allow root too). On success returns 0 and stores a malloc()ed
 * copy of the reply (followed by a NUL that is not counted) in *ret_reply and its length
 * in *ret_len; free(*ret_reply) when done. RET_REPLY may be NULL to ignore the reply.
 *   -ENOENT        nobody listens (no region, no primary, or a primary that does not
 *                  listen), or the scope directory does not exist
 *   -ECONNREFUSED  nobody listens (a socket left by a primary that died)
 *   -ETIMEDOUT     the primary did not answer in time
 *   -EPERM         the listener runs as another user, or refused us (our uid)
 *   -EMSGSIZE      the message or the reply is longer than message_max (ours or the
 *                  listener's)
 *   -ECONNRESET    the primary dropped the message without a reply
 *   -EBADMSG       the reply was not a valid frame
 *   -EINVAL, -ENAMETOOLONG, -ENOMEM, ...
 */
int hc_send(const char *name, const hc_options *opt, const void *msg, size_t len,
            void **ret_reply, size_t *ret_len);

/*
 * Packs a working directory and a NULL-terminated argument vector into one message (for
 * hc_send()): CWD NULL means the current directory. Returns 0 and a malloc()ed buffer in
 * *ret and its length in *ret_len, -EINVAL or -ENOMEM, or -E2BIG beyond 4 GiB.
 */
int hc_args_pack(const char *cwd, char *const argv[], void **ret, size_t *ret_len);

/*
 * Unpacks a message made by hc_args_pack(). Returns argc (>= 0) and stores the working
 * directory in *ret_cwd and a NULL-terminated vector in *ret_argv; both live in one
 * malloc()ed block: free(*ret_argv) frees everything. -EBADMSG when DATA is not such a
 * message, -EINVAL, -ENOMEM.
 */
int hc_args_unpack(const void *data, size_t len, char **ret_cwd, char ***ret_argv);

/*
 * Returns 1 when SLOT is the primary of region NAME now, 0 when it is not, or an error as
 * hc_count(). A secondary that wants to take over when the primary ends polls this;
 * between polls it can sleep in hc_wait() or hc_region_wait() for the count to drop,
 * which wakes it at once when the primary dies.
 */
int hc_slot_is_primary(const char *name, const hc_options *opt, const hc_slot *slot);

/* ---- Shared data ----------------------------------------------------------------------- */

/*
 * The region's user data area (opt->data_size bytes, fixed when the region was created;
 * hc_region_data_size()), mapped shared into every process that maps the region: NULL
 * when the region has none, or when the handle does not map it (hc_region_mapped(): a
 * region that other users may write is never mapped; use hc_region_data_read() and
 * hc_region_data_write() there). Mapped read-only for a handle opened read-only. Guard
 * every access with hc_region_lock(). Store no pointers and no descriptors there: each
 * process maps the area at its own address.
 */
void *hc_region_data(hc_region *rg);

/*
 * Copies LEN bytes of the user data at OFFSET out to BUF, or in from BUF, on any handle
 * (mapped or not). Guard them with hc_region_lock() as for hc_region_data(). Returns 0,
 * -EINVAL when the range lies outside the area, -EACCES (write on a read-only handle),
 * -EBADMSG when the file was shrunk under us, -ENOSPC, -EIO.
 */
int hc_region_data_read(hc_region *rg, size_t offset, void *buf, size_t len);
int hc_region_data_write(hc_region *rg, size_t offset, const void *buf, size_t len);

/* hc_region_lock() when the previous holder died while it held the lock. */
#define HC_OWNER_DIED 1

/*
 * Takes the region's lock for the caller's data, waiting at most TIMEOUT_MS (-1: forever;
 * 0: only try). The lock is a kernel lock (an OFD lock on a reserved byte of the region
 * file), so the kernel releases it when its holder dies and no write to the file can
 * corrupt it; threads of one process exclude each other too. It is not recursive
 * (-EDEADLK). Returns 0, or HC_OWNER_DIED when the previous holder for user data died
 * holding it (the caller must repair or recompute the data, which may be half-written;
 * the lock is held and the region itself was already repaired), or -ETIMEDOUT, -EACCES
 * for a handle opened read-only, -EINVAL.
 */
int hc_region_lock(hc_region *rg, int timeout_ms);

/* Releases it. Returns 0, or -EPERM when the calling thread does not hold it for user data. */
int hc_region_unlock(hc_region *rg);

/* The handle SLOT was taken through (hc_region_join()), or NULL for an hc_join() seat. */
hc_region *hc_slot_region(const hc_slot *slot);

/* ---- Shared variables (the Windows shared data section) -------------------------------- */

/*
 * HC_SHARED_SECTION(type, var) defines VAR, a global whose value (VAR.value, of TYPE) is
 * one copy shared by every process that calls hc_section_attach() on the same region,
 * as a "#pragma data_seg" section linked RWS is on Windows:
 *
 *     static HC_SHARED_SECTION(struct counters, shared) = { .value = { .starts = 0 } };
 *     hc_section_attach("myapp", NULL, &shared, sizeof shared);
 *     hc_section_lock(&shared, -1); shared.value.starts++; hc_section_unlock(&shared);
 *
 * A plain C variable cannot be given a page of its own portably, so VAR is a union of
 * the value and a pad to a multiple of HC_SECTION_ALIGN (64 KiB: every page size Linux
 * uses on common architectures), aligned to it, in the ELF section "hc_shared"; the
 * region's pages can then be mapped over it. Its initial value is what the first process
 * to attach puts into the region.
 *
 * What is safe there: plain data of a fixed layout (integers, fixed arrays, structs of
 * them), shared by builds of the same program. Not: pointers (including to strings),
 * file descriptors, anything holding a process-local resource, types whose layout
 * differs between the builds that share the region.
 */
#define HC_SECTION_ALIGN 65536
#define HC_SHARED_SECTION(type, var)                                                    \
        union {                                                                         \
                type value;                                                             \
                unsigned char hc_page[(sizeof(type) + HC_SECTION_ALIGN - 1) /           \
                                      HC_SECTION_ALIGN * HC_SECTION_ALIGN];             \
        } var __attribute__((section("hc_shared"), aligned(HC_SECTION_ALIGN)))

/*
 * Maps the user data of region NAME over the SIZE bytes at ADDR (a variable defined with
 * HC_SHARED_SECTION: pass &var, sizeof var), creating the region with a data area of
 * SIZE bytes when it does not exist (opt->data_size, if larger, is used instead). The
 * first process to attach copies ADDR's current contents into the region; later ones see
 * the shared values instead of their own. Call it before other threads use the variable.
 * Returns 0, or:
 *   -EINVAL    ADDR or SIZE is not a multiple of the running page size, or SIZE is 0
 *   -EBUSY     ADDR is attached already
 *   -EMSGSIZE  the region exists with a data area smaller than SIZE
 *   -EACCES    we may not write the region
 *   -EPERM     other users may write the region: it is never mapped (use
 *              hc_region_data_read() and hc_region_data_write() instead)
 *   -ETIMEDOUT the region's lock could not be had within 5 seconds
 *   and the errors of hc_region_open()
 */
int hc_section_attach(const char *name, const hc_options *opt, void *addr, size_t size);

/* As hc_region_lock() and hc_region_unlock() for the region attached at ADDR; -ENOENT
 * when nothing is attached there. */
int hc_section_lock(void *addr, int timeout_ms);
int hc_section_unlock(void *addr);

/*
 * Detaches ADDR: the variable keeps its current value as a private copy. Returns 0, or
 * -ENOENT when nothing is attached there, -ENOMEM.
 */
int hc_section_detach(void *addr);

#ifdef __cplusplus
}
#endif

/* The fleet scope: HC_SCOPE_FLEET, hc_fleet_list(), fence and lost-seat calls. */
#include "headcount-fleet.h"

#endif
