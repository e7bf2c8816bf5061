/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A region file, opened and validated: the only interface to its bytes. Everything else
 * in lib/ reads and writes the region through these calls.
 */
#ifndef HC_REGION_H
#define HC_REGION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "create.h"
#include "headcount.h"
#include "scope.h"

struct hc_region_header;
struct hc_slot_rec;

struct region {
        int fd;                  /* the region file; -EBADF when closed */
        bool writable;           /* opened O_RDWR */
        bool mapped;             /* map is the file (only when nobody else may write it) */
        bool foreign;            /* root's read-only look at another user's region */
        bool others_write;       /* users other than its owner may write it: what its
                                  * records say are claims (HC_INSTANCE_UNVERIFIED) */
        bool ours_alone;         /* only our uid may write it: its hint words (seat_hwm)
                                  * may save us work; anyone else's are never believed */
        struct hc_region_header *map;
        size_t map_size;
        /* validated copies: never read again from the file, which others may change */
        uint32_t capacity;
        uint64_t table_offset;
        uint64_t data_offset;
        uint64_t data_size;
        uint64_t file_size;
        uint64_t runs_offset;
        uint64_t region_id;
        dev_t dev;
        ino_t ino;
        mode_t mode;
};

enum {
        REGION_CREATE = 1 << 0,          /* create it when missing */
        REGION_WRITE = 1 << 1,           /* open it read-write */
        REGION_READ_FALLBACK = 1 << 2,   /* with REGION_WRITE: read-only when we may not write */
        REGION_MAP = 1 << 3,             /* map it, when that is safe (see region.c) */
        REGION_FOREIGN = 1 << 4,         /* root, read-only: accept another owner */
};

int region_open(int dirfd, const struct scope *sc, const hc_options *opt, unsigned flags,
                struct region *ret);
void region_close(struct region *r);
int region_unlinked(const struct region *r);            /* 1: retired; 0; -errno */
unsigned region_lock_files(const struct region *r);
int region_open_lock_file(int dirfd, const struct scope *sc, const struct region *r, unsigned k,
                          int oflags, int *ret_fd);       /* lockfile.c */

/* Records. */
void region_record_fill(const struct region *r, unsigned seat, const char *tag, uint64_t run,
                        struct hc_slot_rec *ret);
void region_record_seal(const struct region *r, unsigned seat, struct hc_slot_rec *rec);
int region_record_write(struct region *r, unsigned seat, const struct hc_slot_rec *rec);
void region_record_clear(struct region *r, unsigned seat, uint64_t only_if_check);
/* A wait status, or none: how a run ended (format.h). */
#define RUNS_NO_STATUS INT32_MIN
void region_record_end(struct region *r, unsigned seat, const struct hc_slot_rec *rec, int status);
/* Only the first half of region_record_end(): the run of REC goes to the ring, ended with
 * STATUS, and the record stays (its holder keeps the seat, between two runs). */
void region_run_finish(struct region *r, unsigned seat, const struct hc_slot_rec *rec, int status);
int region_record_bury(struct region *r, unsigned seat, uint64_t *ret_seq);
#define RUN_IN_RECORD 1
int region_run_of(struct region *r, unsigned seat, uint64_t seq);
bool region_record_present(struct region *r, unsigned seat);
uint64_t region_records_present(struct region *r, unsigned first, unsigned n);
int region_seat_state(struct region *r, unsigned seat, bool check, uint32_t *ret_flags, bool *ret_present,
                      uint64_t *ret_run);
int region_record_read(struct region *r, unsigned seat, hc_instance *ret, uint64_t *ret_listen_id);
void region_records_read(struct region *r, unsigned first, unsigned n, uint64_t mask, hc_instance *ret);

/* Runs (format.h): each seat's ring of finished runs, written by the seat's holder at its
 * leave, and by whoever buries a dead holder's record. */
uint64_t region_run_after(uint64_t last);
/* For seats FIRST .. FIRST + N - 1: each one's run number (as its record claims) << 2,
 * | 1 while its record is there. */
int region_run_marks(struct region *r, unsigned first, unsigned n, uint64_t *ret);
/* The runs of SEAT's ring, ended (left or died), into RET[HC_RUNS_PER_SEAT] in no order:
 * how many. */
int region_ring_runs(struct region *r, unsigned seat, hc_run *ret);
/* The run in SEAT's record, as running (whether its holder still holds the seat is the
 * caller's to find out); -ENOENT when the record is no run, -EBADMSG when unreadable. */
int region_record_run(struct region *r, unsigned seat, hc_run *ret);
/* Ends the run in SEAT's record, when there is one, with wait STATUS or RUNS_NO_STATUS:
 * for a leave by another process than the one that joined (hc_leave_fd()). */
void region_record_end_current(struct region *r, unsigned seat, int status);

/* Header words: hints and markers. */
enum region_word {
        WORD_FLAGS, WORD_WAITERS, WORD_GENERATION, WORD_LIVE, WORD_DATA_LOCKED, WORD_LOCK_HELD, WORD_SEAT_HWM,
};
uint32_t region_word(struct region *r, enum region_word w);
void region_word_set(struct region *r, enum region_word w, uint32_t v);
void region_word_add(struct region *r, enum region_word w, int32_t delta);
void region_flags_change(struct region *r, uint32_t set, uint32_t clear);
void region_poke(struct region *r);
int region_futex_wait(struct region *r, uint32_t seen, const struct timespec *ts);

/* The user data. */
void *region_data(struct region *r);
int region_data_io(struct region *r, uint64_t off, void *buf, size_t len, bool write);
int region_data_map_over(struct region *r, void *addr, size_t size);

/* Helpers for the tests and the fuzzers, which build headers of their own. */
int header_check(const struct hc_region_header *h, uint64_t file_size);
uint64_t record_check(const struct hc_slot_rec *r, unsigned slot, uint64_t region_id);
uint64_t end_check(const struct hc_slot_rec *e, unsigned slot, uint64_t region_id);

#endif
