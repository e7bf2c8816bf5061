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
 * The repair pass for a region lock whose holder died inside is the same reap, plus a
 * poke for the waiters, run here because it needs the count (mutex.c only reports it).
 */
#include <errno.h>
#include <stdlib.h>

#include "count.h"
#include "format.h"
#include "handed.h"
#include "hc-internal.h"
#include "seat.h"

/* Clears record SEAT if its seat is still free and not handed to a command that lives,
 * under a read lock on the seat (no holder can come meanwhile), with its own file. */
static unsigned reap_one(hc_region *h, int fd, unsigned seat) {
        hc_instance rec;
        unsigned done = 0;

        if (seat_read_lock(fd, seat, 1) < 0)
                return 0;                 /* somebody took it meanwhile: not dead */
        HC_HOOK("reap-locked");
        if (handed_probe(h, seat) == 0) {
                bool named = region_record_read(&h->r, seat, &rec, NULL) == 0;

                region_record_clear(&h->r, seat, 0);
                if (named)
                        handed_remove(h, seat, rec.seq);
                done = 1;
        }
        seat_read_unlock(fd, seat, 1);
        return done;
}

/* Counts lock file K; fills *RET_MASK; reaps dead records of it when REAP. */
static int count_file(hc_region *h, unsigned k, bool reap, uint64_t *ret_mask, unsigned *reaped) {
        unsigned first = seat_first(k), n = seat_file_seats(h->r.capacity, k);
        uint64_t all = n >= 64 ? UINT64_MAX : (UINT64_C(1) << n) - 1, left;
        int fd, c;

        c = handle_query_fd(h, k, &fd);
        if (c < 0)
                return c;
        c = seat_count(fd, first, n, ret_mask);
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

int handle_count(hc_region *h, bool reap, unsigned *ret_reaped) {
        unsigned reaped = 0, n_files = files_in_use(h);
        int total = 0;

        reap = reap && h->r.writable;
        for (unsigned k = 0; k < n_files; k++) {
                uint64_t mask;
                int c = count_file(h, k, reap, &mask, &reaped);

                if (c == -ESTALE)
                        return 0;         /* retired under us: nobody is in it */
                if (c < 0)
                        return c;
                total += c;
        }
        if (h->r.writable && region_word(&h->r, WORD_LIVE) != (uint32_t) total)
                region_word_set(&h->r, WORD_LIVE, (uint32_t) total);
        if (ret_reaped)
                *ret_reaped += reaped;
        return total;
}

int handle_list(hc_region *h, hc_instance **ret) {
        hc_instance *list = NULL;
        unsigned n = 0, size = 0, reaped = 0, n_files = files_in_use(h);

        for (unsigned k = 0; k < n_files; k++) {
                uint64_t mask;
                int c = count_file(h, k, h->r.writable, &mask, &reaped);

                if (c == -ESTALE)
                        break;
                if (c < 0) {
                        free(list);
                        return c;
                }
                if (!mask)
                        continue;
                if (n + (unsigned) c > size) {
                        unsigned ns = size ? size : 8;
                        hc_instance *nl;

                        while (ns < n + (unsigned) c)
                                ns *= 2;
                        nl = realloc(list, ns * sizeof *nl);
                        if (!nl) {
                                free(list);
                                return -ENOMEM;
                        }
                        list = nl;
                        size = ns;
                }
                /* the held seats' records, one read for the whole lock file's */
                region_records_read(&h->r, seat_first(k), seat_file_seats(h->r.capacity, k), mask,
                                    list + n);
                n += (unsigned) c;
        }
        if (n == 0) {
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
        uint64_t mask, rec_seq;
        int32_t pid;
        int fd, r;

        if (slot >= h->r.capacity || seq == 0)
                return -EINVAL;
        r = handle_query_fd(h, seat_file(slot), &fd);
        if (r < 0)
                return r;
        r = seat_count(fd, slot, 1, &mask);
        if (r < 0)
                return r;
        if (region_record_peek(&h->r, slot, &rec_seq, &pid) < 0)
                return -ESTALE;
        if (r == 0 && rec_seq == seq && pid > 0 && handed_probe(h, slot) != 0)
                r = 1;                    /* its holder died, its command holds it still */
        if (r > 0)
                return rec_seq == seq ? -EBUSY : -ESTALE;
        if (rec_seq == seq && pid > 0)
                return 1;                 /* its record outlived its seat: it died */
        if (rec_seq == 0 && pid == 0)
                return 0;                 /* erased by its leave */
        return -ESTALE;                   /* taken (and maybe left) since */
}

int handle_lock(hc_region *h, int timeout_ms) {
        int r;

        r = mutex_lock(&h->mutex, &h->r, timeout_ms);
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
