/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Counting, listing and reaping. The locks are the truth: a seat is held when its lock is
 * (seat.c), whatever the records say. A record whose seat is free belongs to a holder
 * that died holding it (a holder that leaves clears its record first); whoever notices
 * clears it under a read lock on the free seat, so that no new holder's record is lost.
 * A plain count only reads.
 *
 * A count of a region that nobody else may write probes only the lock files up to the
 * header's seat_hwm, the highest seat anyone ever tried: a region of 4096 seats that is
 * used by a few costs as much to count as one of 64. Joiners raise it under the region
 * lock before they try a seat past it (rare: once per lock file in a region's life), so
 * a join that has completed is always counted. In a region another uid may write (its
 * owner's, when root looks at a user's region; anyone's, in a 0666 one) the word could be
 * a lie: every lock file is probed there, and joiners leave it alone. A listing reads a
 * record only for a seat whose lock is held, and each record at most a few times
 * (region.c), so that nothing in the file multiplies the work.
 *
 * A seat whose byte is free but whose record is there belongs to a holder that died, or
 * to a command that a holder handed its seat to and that outlived it (handed.c): those
 * are looked up in their own lock files, and count while that lock is held. Only such
 * seats cost more than the probes of their lock file (one read of the records for a
 * file with a free seat, and an open for each record on a free seat).
 *
 * Readers. Whoever may read a region but not write it cannot open its lock files (they
 * carry no bit for that class: create.c), so a handle whose lock file cannot be opened for
 * EACCES counts from /proc/locks instead (proclocks.c): the lock files' inodes come from
 * stat(), which needs no permission on the file, and the held seats from the kernel's
 * list of locks. The count stays exact; a listing reads the records of the seats found
 * held, as a joiner's does; nothing is reaped (a reader may not write). Joiners keep the
 * probes, which cost less: the reader's way is taken only on EACCES.
 *
 * A seat that is only read-locked is never counted: the probes ask for write locks, and
 * /proc/locks' READ entries are kept apart. handle_count_locks() reports them, for the
 * command line to say so.
 *
 * The repair pass for a region lock whose holder died inside is the same reap, plus a
 * poke for the waiters, run here because it needs the count (mutex.c only reports it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "count.h"
#include "files.h"
#include "format.h"
#include "handed.h"
#include "hc-internal.h"
#include "proclocks.h"
#include "seat.h"

/* Buries record SEAT (region_record_bury()) if its seat is still free and not handed to
 * a command that lives, under a read lock on the seat (no holder can come meanwhile), with
 * its own file. */
static unsigned reap_one(hc_region *h, int fd, unsigned seat) {
        unsigned done = 0;

        if (seat_read_lock(fd, seat, 1) < 0)
                return 0;                 /* somebody took it meanwhile: not dead */
        HC_HOOK("reap-locked");
        if (handed_probe(h, seat) == 0) {
                uint64_t seq;

                /* its run goes to the ring as a death, and its own file with it; a record
                 * that names nobody just goes */
                if (region_record_bury(&h->r, seat, &seq) > 0)
                        handed_remove(h, seat, seq);
                else
                        region_record_clear(&h->r, seat, 0);
                done = 1;
        }
        seat_read_unlock(fd, seat, 1);
        return done;
}

/* Counts lock file K; fills *RET_MASK (and *RET_READ, the seats only read-locked by
 * others, when not NULL); reaps dead records of it when REAP. */
static int count_file(hc_region *h, unsigned k, bool reap, uint64_t *ret_mask, uint64_t *ret_read,
                      unsigned *reaped) {
        unsigned first = seat_first(k), n = seat_file_seats(h->r.capacity, k);
        uint64_t all = n >= 64 ? UINT64_MAX : (UINT64_C(1) << n) - 1, left;
        int fd, c;

        c = handle_query_fd(h, k, &fd);
        if (c < 0)
                return c;
        c = seat_count(fd, first, n, ret_mask);
        if (c >= 0 && ret_read)
                *ret_read = seat_read_locked(fd, first, n);
        if (c < 0 || (*ret_mask & all) == all)
                return c;
        /* free bytes with a record: dead holders, or handed seats whose holder died */
        left = region_records_present(&h->r, first, n) & ~*ret_mask & all;
        for (unsigned i = 0; left; i++) {
                uint64_t bit = UINT64_C(1) << i;

                if (!(left & bit))
                        continue;
                left &= ~bit;
                if (handed_probe(h, first + i) != 0) {
                        *ret_mask |= bit;         /* a command holds it (or we cannot tell) */
                        c++;
                } else if (reap)
                        *reaped += reap_one(h, fd, first + i);
        }
        return c;
}

/* How many lock files may hold a seat: all of them, unless seat_hwm can be believed: in a
 * region only we may write. A word another user wrote (their own region, seen by root's
 * daemon, or a region others may write) could hide seats from the count. */
static unsigned files_in_use(hc_region *h) {
        uint32_t hwm;

        if (!h->r.ours_alone)
                return h->n_files;
        hwm = region_word(&h->r, WORD_SEAT_HWM);
        return hwm >= h->r.capacity ? h->n_files : seat_file(hwm) + 1;
}

int handle_cover_seat(hc_region *h, unsigned seat) {
        int r;

        if (seat < HC_SEATS_PER_FILE || !h->r.ours_alone ||
            _likely_(region_word(&h->r, WORD_SEAT_HWM) >= seat))
                return 0;
        r = handle_lock(h, handle_lock_timeout(h));
        if (r < 0)
                return r;
        /* the whole lock file at once: the next raise is for the next file */
        seat = seat_first(seat_file(seat)) + seat_file_seats(h->r.capacity, seat_file(seat)) - 1;
        if (region_word(&h->r, WORD_SEAT_HWM) < seat)
                region_word_set(&h->r, WORD_SEAT_HWM, seat);
        handle_unlock(h);
        return 0;
}

/* The reader's way: the seats of lock files 0..N_FILES-1 from /proc/locks. */
static int count_by_proc(hc_region *h, unsigned n_files, uint64_t *masks, uint64_t *read_masks) {
        struct proc_locks q = { .n_files = n_files, .dev = h->r.dev };
        int r;

        if (h->dirfd < 0)
                return -EBADF;
        for (unsigned k = 0; k < n_files; k++) {
                char fn[FILE_NAME_MAX];
                struct stat st;

                r = file_lock_name(fn, sizeof fn, h->sc.name, h->r.region_id, k);
                if (r < 0)
                        return r;
                if (fstatat(h->dirfd, fn, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                return region_unlinked(&h->r) > 0 ? -ESTALE : -EBADMSG;
                        return -errno;
                }
                /* as much trust as the region itself (region_open_lock_file()) */
                r = h->r.foreign ? file_trust_foreign(&st, h->sc.euid) : file_trust(&st, h->sc.system, h->sc.euid);
                if (r < 0)
                        return r;
                if (st.st_dev != h->r.dev)
                        return -EBADMSG;
                q.ino[k] = st.st_ino;
                q.seats[k] = seat_file_seats(h->r.capacity, k);
        }
        r = proc_locks_scan(&q);
        if (r < 0)
                return r;
        for (unsigned k = 0; k < n_files; k++) {
                masks[k] = q.held[k];
                if (read_masks)
                        read_masks[k] = q.read_locked[k];
        }
        return r;
}

/*
 * The held seats of the first N_FILES lock files, in MASKS[] (and the seats only
 * read-locked by others in READ_MASKS[], when not NULL); their number, -ESTALE when the
 * region was retired under us, or -errno. Reaps dead records when REAP.
 */
static int scan_seats(hc_region *h, unsigned n_files, bool reap, uint64_t *masks, uint64_t *read_masks,
                      unsigned *reaped) {
        int total = 0;

        if (!__atomic_load_n(&h->by_proc_locks, __ATOMIC_RELAXED)) {
                for (unsigned k = 0; k < n_files; k++) {
                        int c = count_file(h, k, reap, &masks[k], read_masks ? &read_masks[k] : NULL, reaped);

                        if (c == -EACCES) {
                                /* we may read the region but not open its lock files */
                                __atomic_store_n(&h->by_proc_locks, true, __ATOMIC_RELAXED);
                                break;
                        }
                        if (c < 0)
                                return c;
                        total += c;
                }
                if (!__atomic_load_n(&h->by_proc_locks, __ATOMIC_RELAXED))
                        return total;
        }
        return count_by_proc(h, n_files, masks, read_masks);
}

int handle_count(hc_region *h, bool reap, unsigned *ret_reaped) {
        uint64_t masks[HC_LOCK_FILES_MAX];
        unsigned reaped = 0;
        int total;

        reap = reap && h->r.writable;
        total = scan_seats(h, files_in_use(h), reap, masks, NULL, &reaped);
        if (total == -ESTALE)
                return 0;                 /* retired under us: nobody is in it */
        if (total < 0)
                return total;
        if (h->r.writable && region_word(&h->r, WORD_LIVE) != (uint32_t) total)
                region_word_set(&h->r, WORD_LIVE, (uint32_t) total);
        if (ret_reaped)
                *ret_reaped += reaped;
        return total;
}

int handle_count_locks(hc_region *h, unsigned *ret_read_locked) {
        uint64_t masks[HC_LOCK_FILES_MAX], read_masks[HC_LOCK_FILES_MAX];
        unsigned n_files = files_in_use(h), rd = 0;
        int total;

        total = scan_seats(h, n_files, false, masks, read_masks, NULL);
        if (total == -ESTALE)
                total = 0;
        else if (total >= 0)
                for (unsigned k = 0; k < n_files; k++)
                        rd += (unsigned) __builtin_popcountll(read_masks[k]);
        if (total >= 0)
                *ret_read_locked = rd;
        return total;
}

int handle_list(hc_region *h, hc_instance **ret) {
        uint64_t masks[HC_LOCK_FILES_MAX];
        hc_instance *list = NULL;
        unsigned n = 0, reaped = 0, n_files = files_in_use(h);
        int total;

        total = scan_seats(h, n_files, h->r.writable, masks, NULL, &reaped);
        if (total == -ESTALE)
                total = 0;                /* retired under us: nobody is in it */
        if (total < 0)
                return total;
        if (total > 0) {
                list = malloc((size_t) total * sizeof *list);
                if (!list)
                        return -ENOMEM;
                /* the held seats' records, one read for each lock file's */
                for (unsigned k = 0; k < n_files && n < (unsigned) total; k++) {
                        if (!masks[k])
                                continue;
                        region_records_read(&h->r, seat_first(k), seat_file_seats(h->r.capacity, k),
                                            masks[k], list + n);
                        n += (unsigned) __builtin_popcountll(masks[k]);
                }
        }
        if (n == 0) {                     /* the seats were let go meanwhile */
                free(list);
                list = NULL;
        }
        /* only when it changed: without a mapping the write is an IN_MODIFY, which a
         * monitor that lists on every event would otherwise raise for itself forever */
        if (h->r.writable && region_word(&h->r, WORD_LIVE) != n)
                region_word_set(&h->r, WORD_LIVE, n);
        *ret = list;
        return (int) n;
}

int handle_primary(hc_region *h, hc_instance *ret, uint64_t *ret_listen_id) {
        _cleanup_free_ hc_instance *list = NULL;
        int n, best = -1;

        n = handle_list(h, &list);
        if (n < 0)
                return n;
        for (int i = 0; i < n; i++) {
                if (list[i].flags & HC_INSTANCE_NO_RECORD)
                        continue;
                if (best < 0 || list[i].seq < list[best].seq)
                        best = i;
        }
        if (best < 0)
                return -ENOENT;
        *ret = list[best];
        if (ret_listen_id) {
                hc_instance again;
                /* the nonce of that very record (it was valid a moment ago) */
                if (region_record_read(&h->r, ret->slot, &again, ret_listen_id) < 0 ||
                    again.seq != ret->seq || again.pid != ret->pid)
                        *ret_listen_id = 0;
        }
        return 0;
}

int handle_departure(hc_region *h, unsigned slot, uint64_t seq) {
        uint64_t mask;
        int fd, r, how;

        if (slot >= h->r.capacity || seq == 0)
                return -EINVAL;
        r = __atomic_load_n(&h->by_proc_locks, __ATOMIC_RELAXED) ? -EACCES : handle_query_fd(h, seat_file(slot), &fd);
        if (r == -EACCES) {
                /* a reader: is the seat among those /proc/locks shows held? */
                uint64_t masks[HC_LOCK_FILES_MAX];

                __atomic_store_n(&h->by_proc_locks, true, __ATOMIC_RELAXED);
                r = count_by_proc(h, seat_file(slot) + 1, masks, NULL);
                if (r < 0)
                        return r;
                r = (int) ((masks[seat_file(slot)] >> (slot - seat_first(seat_file(slot)))) & 1);
        } else if (r < 0)
                return r;
        else {
                r = seat_count(fd, slot, 1, &mask);
                if (r < 0)
                        return r;
        }
        how = region_run_of(&h->r, slot, seq);
        if (how < 0)
                return -ESTALE;
        if (how == HC_RUN_REC_LEFT)
                return 0;                 /* it left: the ring has its end */
        if (how == HC_RUN_REC_DIED)
                return 1;                 /* buried as a death */
        if (how != RUN_IN_RECORD)
                return -ESTALE;           /* taken more than a ring's worth of times since */
        if (r == 0 && handed_probe(h, slot) != 0)
                r = 1;                    /* its holder died, its command holds it still */
        if (r > 0)
                return -EBUSY;
        return 1;                         /* its record outlived its seat: it died */
}

int handle_lock(hc_region *h, int timeout_ms) {
        int r;

        r = mutex_lock(&h->mutex, &h->r, h->dirfd, &h->sc, timeout_ms);
        if (r <= 0)
                return r;
        /* the last holder died inside: clear dead records, wake everyone to look again */
        (void) handle_count(h, true, NULL);
        region_word_add(&h->r, WORD_GENERATION, 1);
        region_poke(&h->r);
        return 1;
}

void handle_unlock(hc_region *h) {
        (void) mutex_unlock(&h->mutex, &h->r);
}
