/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The disk format of a region: the bytes of the region file, the lock-byte map, and the
 * file names. Included only by the modules that must know them: region.c (the only code
 * that reads or writes a region's bytes), files.c (names), seat.c and mutex.c (lock
 * bytes), and join.c, which keeps a copy of its own record to hand back to region.c.
 *
 * A region NAME is these files in its scope directory:
 *
 *   NAME                       the region file: header, record table, run
 *                              rings, user data
 *   .NAME.<id>.<k>             lock file k (k = 0, 1, ...): holds no data; seat i is an
 *                              OFD write lock on byte HC_LOCK_BASE + i of lock file
 *                              i / HC_SEATS_PER_FILE; lock file 0 also carries the region
 *                              lock and the listener's lock. Its mode is the region's with
 *                              only the classes that may write the region (lock_file_mode():
 *                              0644 -> 0600, 0664 -> 0660), so whoever may only read the
 *                              region cannot open it, and so cannot take a read lock that
 *                              would block a writer's lock
 *   .NAME.<id>.s<i>-<seq>      the own lock file of seat i while its holder has handed
 *                              the seat to a command (HC_INHERIT, hc_slot_fd()): holds no
 *                              data; the command's description holds an OFD write lock
 *                              on its byte HC_LOCK_BASE. <seq> is the seq of the seat's
 *                              record (16 hex digits), so that nobody can make the name
 *                              before the holder does and a record names only its own file
 *   .NAME.<id>.tmp             the region file while its creator builds it
 *   .NAME.<nonce>.sock         a primary's listening socket (listen.c); <nonce> is random
 *                              and published in the primary's record
 *
 * <id> is the region's random id (16 hex digits), so that the files of a region that was
 * retired and made again are never taken for each other.
 *
 * Every field of the region file is untrusted input: see region.c.
 */
#ifndef HC_FORMAT_H
#define HC_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "headcount.h"

#define HC_REGION_MAGIC UINT32_C(0x48434e54)     /* "HCNT"; byte-swapped it reads wrong */
/* 2: no mutex in the file (the region lock is a kernel lock, mutex.c); every seat lives
 * in a lock file; records carry a listening nonce.
 * 3: no lock on the region file, which readers can open: the region lock and the
 * listener's lock are on lock file 0, and lock files carry no read bit for a class that
 * may not write the region.
 * 4: records of 192 bytes carry their seat's run number; each seat has a ring of its last
 * runs after the record table. Regions of versions 1 to 3 are refused. */
#define HC_REGION_VERSION 4

/*
 * Lock bytes. They lie far past the end of every file: a lock does not need the byte to
 * exist, and no read or write ever touches them. An OFD write lock conflicts with any
 * read lock, and a read lock needs only a descriptor open for reading, so no lock that
 * matters may live on a file that someone who may not write the region can open:
 *   lock file k:  HC_LOCK_BASE + i   seat i
 *   lock file 0:  HC_LOCK_LISTEN     held by the primary's listener while it listens
 *                 HC_LOCK_MUTEX      the region lock (mutex.c)
 *   temporary:    HC_LOCK_CREATE     held by the creator while the temporary is built;
 *                                    the temporary stays 0600 until just before it gets
 *                                    its name (create.c), so only its creator's uid can
 *                                    open it meanwhile
 */
#define HC_LOCK_BASE ((off_t) 1 << 40)
#define HC_LOCK_CREATE (HC_LOCK_BASE - 1)
#define HC_LOCK_LISTEN (HC_LOCK_BASE - 2)
#define HC_LOCK_MUTEX (HC_LOCK_BASE - 3)

/*
 * Seats per lock file. The kernel keeps one lock list per inode and walks it on every
 * F_OFD_GETLK and F_OFD_SETLK, so N seats in one file make a full count O(N^2): with 64
 * per file the walks alone cost 1.35x the bare probes on an idle machine and up to 1.8x
 * on a loaded one, with 32 per file 1.2x (bench/README.md). A region of 4096 seats then
 * has 128 lock files, opened only as far as seats are used (count.c).
 */
#define HC_SEATS_PER_FILE 32
#define HC_LOCK_FILES_MAX ((HC_CAPACITY_MAX + HC_SEATS_PER_FILE - 1) / HC_SEATS_PER_FILE)

/* HC_DATA_SIZE_MAX: in headcount.h */

/*
 * One seat's record: who holds it, and which of the seat's runs this is. Written only by
 * the holder of the seat. The holder erases it when it leaves (everything but RUN, so
 * that the next holder numbers its run after it); a reaper that holds a read lock on the
 * free seat clears only the check word of a dead holder's record, so that a monitor can
 * still tell that it died (hc_region_departure()).
 *
 * Runs. A holding of a seat is a run, numbered per seat (1, 2, ...). Each seat also has a
 * ring of its last HC_RUNS_PER_SEAT finished runs: a run's record, with its end filled in,
 * copied to place RUN % HC_RUNS_PER_SEAT of the seat's ring. The holder writes it when it
 * leaves, before it erases its record; the death of a holder is written there by whoever
 * finds its record on the free seat first (a reaper, or the next holder of the seat), and
 * until then a valid record on a free seat is a death. So a run costs its holder one write
 * more than a holding did (the copy, at the leave), and a count reads nothing more: the
 * record table is where it was, and reads as it did.
 *
 * A region of 4096 seats carries 12 MiB of rings (allocated at creation, like the rest):
 * 16 runs per seat is what keeps the last 16 runs of a region whose runs all take seat 0.
 */
#define HC_RUNS_PER_SEAT 16
#define HC_RUN_LIMIT (UINT64_C(1) << 48)  /* run numbers stay below; past it, 1 again */
#define HC_RUN_PAUSED (UINT64_C(1) << 62) /* in a record's run: between two runs */
enum {
        HC_RUN_REC_LEFT = 2,             /* as HC_RUN_LEFT */
        HC_RUN_REC_DIED = 3,             /* as HC_RUN_DIED */
};

struct hc_slot_rec {
        uint64_t check;          /* record_check() of the fields up to END_CHECK; 0: empty.
                                  * A record whose check does not match is being written
                                  * (or damaged) */
        uint64_t seq;            /* the host's CLOCK_MONOTONIC at the join, in ns, with
                                  * the joiner's time-namespace offset taken out: orders
                                  * joins, and no namespace or clock step can shift it */
        int64_t joined_usec;     /* CLOCK_REALTIME of the join, for people */
        uint64_t pidns;          /* inode of the holder's PID namespace */
        uint8_t boot_id[16];     /* the holder's boot id */
        int32_t pid;             /* the holder's PID, in its namespace */
        uint32_t uid;            /* the holder's real uid */
        uint64_t listen_id;      /* non-zero while it listens: names its socket */
        char tag[HC_TAG_MAX];    /* NUL-padded, not NUL-terminated when full */
        uint64_t run;            /* the seat's run number, 1 .. HC_RUN_LIMIT - 1; with
                                  * HC_RUN_PAUSED, the holder holds the seat between two
                                  * runs (a wrapper between two runs of its command, after
                                  * hc_slot_end_run()): that run number has ended, and the
                                  * record is no run */
        uint64_t started_seq;    /* the run's start on the clock of SEQ: the join's for a
                                  * holding's first run */
        /* In the ring only (zero in the table): how the run ended. */
        uint64_t end_check;      /* end_check() of CHECK and the fields below */
        uint64_t ended_seq;      /* the clock of SEQ at the leave, or when a death was found */
        int16_t status;          /* -1: none; 0..255: exit code; 256 + N: signal N */
        uint16_t how;            /* HC_RUN_REC_* */
        uint32_t reserved;       /* 0 */
        uint64_t spare[3];       /* 0 */
};
_Static_assert(sizeof(struct hc_slot_rec) == 192, "three cache lines a record");
_Static_assert(sizeof(struct hc_slot_rec) % 64 == 0, "records never share a cache line");
_Static_assert(offsetof(struct hc_slot_rec, run) == 128, "the run number follows the tag");

enum {
        HC_REGION_RETIRED = 1 << 0,      /* hc_remove() retired it; reopen by name */
        HC_REGION_SEEDED = 1 << 1,       /* the first hc_section_attach() copied its
                                          * variable into the user data (section.c) */
};

struct hc_region_header {
        uint32_t magic;          /* HC_REGION_MAGIC; the file gets its name only after
                                  * everything else is written */
        uint32_t version;        /* HC_REGION_VERSION */
        uint32_t fingerprint;    /* HC_REGION_FINGERPRINT of the creator */
        uint32_t header_size;    /* sizeof(struct hc_region_header) when created */
        uint32_t capacity;       /* seats, 1..HC_CAPACITY_MAX */
        uint32_t seats_per_file; /* HC_SEATS_PER_FILE when created */
        uint64_t table_offset;   /* byte offset of the record table */
        uint64_t data_offset;    /* byte offset of the user data, page aligned */
        uint64_t data_size;      /* bytes of user data */
        uint64_t file_size;      /* the file's size, fixed at creation */
        uint64_t region_id;      /* random; names the lock files, salts record checks */
        uint64_t layout_check;   /* header_layout_check() of the fields above: they are
                                  * written once, so any change to them is damage */
        /* Below: words that change. Each is validated or only a hint; none is ever
         * followed as a pointer or used as a size. */
        uint32_t flags;          /* HC_REGION_*, written under the region lock */
        uint32_t waiters;        /* hint: waiters and watchers; a leave that keeps its
                                  * description pokes only when non-zero */
        uint32_t generation __attribute__((aligned(64)));
                                 /* futex word (mapped handles): bumped by pokes, reaps
                                  * and retirement */
        uint32_t live;           /* hint: the count seen by the last exact count */
        uint32_t poke;           /* written with pwrite() to raise an inotify event */
        uint32_t data_locked;    /* 1 while the region lock is held for user data; found
                                  * set by the next user-data locker: its holder died
                                  * inside (HC_OWNER_DIED) */
        uint32_t lock_held;      /* 1 while the region lock is held; found set by the
                                  * next locker: the holder died inside, run the repair */
        uint32_t seat_hwm;       /* hint: the highest seat anyone tried, raised under the
                                  * region lock before a joiner tries a seat past it, never
                                  * lowered. A count of a region nobody else may write
                                  * probes the lock files up to it only (count.c) */
} __attribute__((aligned(64)));

/* Everything that must agree between two builds that share one region. */
#define HC_REGION_FINGERPRINT ((uint32_t) (sizeof(struct hc_region_header)             \
                                           | sizeof(void *) << 8                        \
                                           | (sizeof(struct hc_slot_rec) / 8) << 16     \
                                           | (uint32_t) HC_RUNS_PER_SEAT << 25          \
                                           | (uint32_t) (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) << 24))

#endif
