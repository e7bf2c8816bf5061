/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The region's bytes and the internal interfaces between the modules of lib/. */
#ifndef HC_REGION_H
#define HC_REGION_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "headcount.h"

#define HC_REGION_MAGIC UINT32_C(0x48434e54)     /* "HCNT"; byte-swapped it reads wrong */
#define HC_REGION_VERSION 1

/*
 * Byte offsets of the locks. They lie far past the end of the file: a lock does not need
 * the byte to exist, and no read or write of the file ever touches them.
 *   HC_LOCK_BASE + i   seat i (seats S*k .. S*k+S-1 live in lock file k, S = seats per file)
 *   HC_LOCK_CREATE     held by the creator while a temporary is being built
 *   HC_LOCK_LISTEN     held by the primary's listener for as long as it listens (forward.c)
 */
#define HC_LOCK_BASE ((off_t) 1 << 40)
#define HC_LOCK_CREATE (HC_LOCK_BASE - 1)
#define HC_LOCK_LISTEN (HC_LOCK_BASE - 2)

/*
 * Seats per lock file. The kernel keeps one lock list per inode and walks all of it on
 * every F_OFD_GETLK and F_OFD_SETLK, so an exact count over N seats in one file costs
 * O(N^2); 64 seats per file keeps a walk within about a cache line per entry of the
 * floor (bench/README.md has the figures).
 */
#define HC_SEATS_PER_FILE 64

#define HC_DATA_SIZE_MAX ((uint64_t) 1 << 30)

/* One seat's record: who holds it. Written only by the holder, read by anyone. */
struct hc_slot_rec {
        uint64_t check;          /* record_check() of the rest; 0: empty. A record whose
                                  * check does not match is being written (or damaged) */
        uint64_t seq;            /* CLOCK_MONOTONIC of the join, ns: orders joins */
        int64_t joined_usec;     /* CLOCK_REALTIME of the join */
        uint64_t pidns;          /* inode of the holder's PID namespace */
        uint8_t boot_id[16];     /* the holder's boot id */
        int32_t pid;             /* the holder's PID, in its namespace */
        uint32_t uid;            /* the holder's real uid */
        uint32_t reserved;       /* zero */
        uint16_t tag_len;        /* bytes of tag used, <= HC_TAG_MAX */
        uint16_t reserved2;      /* zero */
        char tag[HC_TAG_MAX];    /* not NUL-terminated */
};

_Static_assert(sizeof(struct hc_slot_rec) == 128, "two slot records per 256 bytes");
_Static_assert(sizeof(struct hc_slot_rec) % 64 == 0, "slot records never share a cache line");

enum {
        HC_REGION_RETIRED = 1 << 0,      /* hc_remove() retired it; reopen by name */
        HC_REGION_SEEDED = 1 << 1,       /* the first hc_section_attach() copied its
                                          * variable into the user data (section.c) */
};

/* Everything that must agree between two builds that share one region. */
#define HC_REGION_FINGERPRINT ((uint32_t) (sizeof(pthread_mutex_t)                 \
                                           | sizeof(void *) << 8                    \
                                           | (sizeof(struct hc_slot_rec) / 8) << 16 \
                                           | (uint32_t) (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) << 24))

struct hc_region_header {
        uint32_t magic;          /* HC_REGION_MAGIC; the file is linked into place only
                                  * after everything else is written */
        uint32_t version;        /* HC_REGION_VERSION */
        uint32_t fingerprint;    /* HC_REGION_FINGERPRINT of the creator */
        uint32_t header_size;    /* sizeof(struct hc_region_header) when created */
        uint32_t capacity;       /* seats, 1..HC_CAPACITY_MAX; checked on every open */
        uint32_t seats_per_file; /* HC_SEATS_PER_FILE when created */
        uint64_t table_offset;   /* byte offset of the slot table */
        uint64_t data_offset;    /* byte offset of the user data, page aligned */
        uint64_t data_size;      /* bytes of user data */
        uint64_t file_size;      /* the file's size, fixed at creation */
        uint64_t region_id;      /* random; names the lock files, salts record checks */
        uint64_t layout_check;   /* header_layout_check() of the fields above: they are
                                  * written once, so any change to them is damage */
        /* Read by every join; written rarely. */
        uint32_t flags;          /* HC_REGION_*, written under the mutex */
        uint32_t waiters;        /* hint: hc_wait callers asleep; a leave through a handle
                                  * bumps generation and pokes them only when non-zero */
        /* Written by counts, reaps and pokes, on a cache line of their own, so that joins
         * and leaves in parallel processes never bounce a shared line (bench/README.md). */
        uint32_t generation __attribute__((aligned(64)));
                                 /* futex word: bumped by leaves that have waiters, reaps,
                                  * and retirement */
        uint32_t live;           /* hint: the count seen by the last exact count, list or
                                  * reap; the truth is the seat locks */
        uint32_t poke;           /* written with pwrite() to raise an inotify event */
        uint32_t data_locked;    /* 1 while the mutex is held for user data
                                  * (hc_region_lock()), written only under the mutex. A
                                  * locker that finds it set knows the holder died inside
                                  * the user data, even when an internal locker consumed
                                  * the EOWNERDEAD first (data.c) */
        pthread_mutex_t lock __attribute__((aligned(64)));
                                 /* robust, process-shared: retirement, reaping, user data */
} __attribute__((aligned(64)));

/* ---- name.c: names, scopes, directories ---- */

struct scope {
        char dir[PATH_MAX - HC_NAME_MAX - 32];   /* the scope directory */
        char name[HC_NAME_MAX + 1];              /* bare name, no Local\ or Global\ */
        char path[PATH_MAX];                     /* dir/name */
        bool system;             /* system scope rules: regions writable by others are OK */
        bool user_default;       /* the per-user default directory (we may create it) */
};

int name_check(const char *name);
int scope_resolve(const char *name, const hc_options *opt, struct scope *ret);
int scope_resolve_dir(const hc_options *opt, struct scope *ret);
int scope_open_dir(const struct scope *sc, bool create, int *ret_dirfd);
int fs_check_local(int fd, dev_t dev);
int file_trust(const struct stat *st, bool system);

/* ---- region.c: the file and its layout ---- */

int header_check(const struct hc_region_header *h, uint64_t file_size);
uint64_t header_layout_check(const struct hc_region_header *h);
uint64_t header_file_size(uint32_t capacity, uint64_t data_size, uint64_t *ret_table,
                          uint64_t *ret_data);
int region_create(const struct scope *sc, const hc_options *opt, int *ret_fd);
int region_check_inode(int fd, const struct hc_region_header *h, bool system, struct stat *ret_st);
int region_open_file(const struct scope *sc, const hc_options *opt, int oflags, bool create,
                     int *ret_fd, struct hc_region_header *ret_header);
int lockfile_open(int dirfd, const struct scope *sc, uint64_t region_id, unsigned k, int oflags,
                  bool system, int *ret_fd);
int lockfile_name(char *buf, size_t len, const char *name, uint64_t region_id, unsigned k);
int region_sweep(int dirfd, bool system);
int region_retire(hc_region *rg);
int handle_retired(hc_region *rg);

/* ---- data.c: the user data lock ---- */

int data_lock(hc_region *rg, int timeout_ms);
int data_unlock(hc_region *rg);

/* ---- forward.c: the primary's socket ---- */

void listen_socket_remove(int dirfd, const char *name);

/* The handle. */
struct hc_region {
        pthread_mutex_t cache_lock;      /* taken only to drop idle_fd[] after a fork; otherwise
                                          * idle_fd[], spare and last_seat are atomics */
        unsigned n_ref;                  /* the handle, plus each seat taken through it */
        struct scope sc;
        int fd;                          /* query description on the region file */
        int *file_fd;                    /* query descriptions: [0] = fd, [k] = lock file k */
        unsigned n_files;
        struct hc_region_header *hdr;    /* the mapping */
        size_t map_size;
        bool writable;                   /* opened O_RDWR */
        bool watching;                   /* HC_WATCH: counted in the header's waiters */
        /* validated copies: never re-read from the mapping, which others may change */
        uint32_t capacity;
        uint32_t seats_per_file;
        uint64_t table_offset;
        uint64_t data_offset;
        uint64_t data_size;
        uint64_t region_id;
        dev_t dev;
        ino_t ino;
        int *idle_fd;                    /* per file: a spare description for taking seats,
                                          * or -1; one that holds a seat is never here */
        uint64_t fork_epoch;             /* process epoch idle_fd[] belongs to */
        struct hc_slot *spare;           /* a freed seat struct, for the next join */
        unsigned last_seat;              /* tried first by the next join: a loop of joins
                                          * and leaves keeps to one seat instead of every
                                          * process probing seat 0 first */
};

int handle_open(const struct scope *sc, const hc_options *opt, hc_region **ret);
hc_region *handle_unref(hc_region *rg);

/* ---- lock.c: the robust mutex ---- */

int region_lock(hc_region *rg, int timeout_ms);
void region_unlock(hc_region *rg);

/* ---- slot.c: seats, records, counting ---- */

struct hc_slot {
        int fd;                  /* the seat's description */
        int rec_fd;              /* region file, when the seat is in a lock file; else -1 */
        unsigned index;
        bool inherit;
        bool fd_exposed;
        pid_t pid;               /* the process that joined */
        uint64_t fork_count;     /* forks seen at join */
        hc_region *rg;           /* the handle it was taken through, or NULL */
        uint64_t table_offset;
        uint64_t region_id;
        struct hc_slot_rec rec;
};

uint64_t record_check(const struct hc_slot_rec *r, unsigned slot, uint64_t region_id);
void record_fill(struct hc_slot_rec *r, unsigned slot, uint64_t region_id, const char *tag);
int record_to_instance(const struct hc_slot_rec *r, unsigned slot, uint64_t region_id,
                       hc_instance *ret);
int seat_try(int fd, unsigned seat);
int seat_probe(int fd, unsigned seat, unsigned n);
int seats_count_fd(int fd, unsigned first, unsigned n, uint64_t *held_mask);

int slot_join_cold(const struct scope *sc, const hc_options *opt, hc_slot **ret);
int slot_join_handle(hc_region *rg, const hc_options *opt, hc_slot **ret);
void slot_leave(hc_slot *s);

int handle_count(hc_region *rg, bool reap, unsigned *ret_reaped);
int handle_list(hc_region *rg, hc_instance **ret);
int cold_count(const struct scope *sc, const hc_options *opt);

/* ---- wait.c ---- */

struct waiter {
        int ifd;
        unsigned n_wd;
        int wd[HC_CAPACITY_MAX / HC_SEATS_PER_FILE + 1];
};
int waiter_init(struct waiter *w, const int *fds, unsigned n);
void waiter_done(struct waiter *w);
int waiter_sleep(struct waiter *w, int64_t deadline_usec, bool recent, bool *ret_event);
int64_t now_usec(void);
int64_t deadline_from(int timeout_ms);
int handle_wait(hc_region *rg, unsigned below, int timeout_ms);
void handle_poke(hc_region *rg);

/* ---- process identity (slot.c) ---- */

pid_t self_pid(void);
uint64_t self_fork_count(void);
uint64_t self_epoch(void);

#endif
