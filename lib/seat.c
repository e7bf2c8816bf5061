/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Seats. A seat is an OFD write lock on the byte HC_LOCK_BASE + i of lock file i / 64,
 * taken through an open file description that holds nothing else. Lock files hold no
 * data, so the description that holds a seat (and that a wrapper hands to the command it
 * runs) grants no access to anything shared. The kernel grants each lock atomically and
 * drops it when the description's last reference goes away, however the holder dies:
 *   - the limit needs no mutex and has no check-then-act window: a joiner tries seats
 *     lowest first and F_OFD_SETLK either gives it one or says EAGAIN;
 *   - liveness never depends on a PID: a lock cannot outlive its holder. We never call
 *     kill(pid, 0);
 *   - the exact count is the number of held write locks, asked with F_OFD_GETLK and a
 *     *read* lock as the probe, which conflicts with write locks only.
 * Read locks on seat bytes are ours for transient use: a reaper takes one on a free seat
 * to clear its record without racing a new holder, and hc_remove() takes them on every
 * seat. A joiner that finds a seat read-locked tries again in a moment.
 *
 * Counting. F_OFD_GETLK over a range reports one conflicting lock and where it is. We
 * probe a file's whole range, and where a lock is found, the ranges on either side of
 * it: k holders cost 2k + 1 probes, however many seats the file has.
 */
#include <errno.h>
#include <fcntl.h>

#include "format.h"
#include "hc-internal.h"
#include "seat.h"
#include "util.h"

#define SEAT_OFF(i) (HC_LOCK_BASE + (off_t) (i))

unsigned seat_file(unsigned seat) {
        return seat / HC_SEATS_PER_FILE;
}

unsigned seat_first(unsigned k) {
        return k * HC_SEATS_PER_FILE;
}

unsigned seat_file_seats(unsigned capacity, unsigned k) {
        unsigned first = seat_first(k);
        return capacity - first < HC_SEATS_PER_FILE ? capacity - first : HC_SEATS_PER_FILE;
}

off_t seat_byte(unsigned seat) {
        return SEAT_OFF(seat);
}

int seat_take(int fd, unsigned seat) {
        return ofd_lock(fd, F_WRLCK, SEAT_OFF(seat), 1);
}

void seat_give_back(int fd, unsigned seat) {
        ofd_unlock(fd, SEAT_OFF(seat), 1);
}

uint64_t seat_transient(int fd, unsigned first, unsigned n) {
        uint64_t mask = 0;

        for (unsigned i = 0; i < n && i < 64; i++) {
                struct flock fl = {
                        .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = SEAT_OFF(first + i), .l_len = 1,
                };
                if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_WRLCK)
                        mask |= UINT64_C(1) << i;
        }
        return mask;
}

/* Counts the write locks on seats [A, B) of the file, recursing around each one found. */
static int count_range(int fd, unsigned a, unsigned b, unsigned first, uint64_t *mask, unsigned depth) {
        struct flock fl = {
                .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = SEAT_OFF(a), .l_len = b - a,
        };
        off_t lo, hi;
        int n = 0, q;

        if (a >= b)
                return 0;
        if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
                return -errno;
        if (fl.l_type == F_UNLCK)
                return 0;
        /* The lock found, clipped to our range. A lock of length 0 runs to the end. */
        lo = fl.l_start < SEAT_OFF(a) ? SEAT_OFF(a) : fl.l_start;
        hi = fl.l_len == 0 || fl.l_start + fl.l_len > SEAT_OFF(b) ? SEAT_OFF(b) : fl.l_start + fl.l_len;
        if (lo >= hi || depth > 2 * HC_SEATS_PER_FILE)
                return -EBADMSG;          /* the kernel said nothing we asked about */
        for (off_t o = lo; o < hi; o++) {
                *mask |= UINT64_C(1) << (unsigned) (o - SEAT_OFF(first));
                n++;
        }
        q = count_range(fd, a, (unsigned) (lo - HC_LOCK_BASE), first, mask, depth + 1);
        if (q < 0)
                return q;
        n += q;
        q = count_range(fd, (unsigned) (hi - HC_LOCK_BASE), b, first, mask, depth + 1);
        if (q < 0)
                return q;
        return n + q;
}

int seat_count(int fd, unsigned first, unsigned n, uint64_t *ret_mask) {
        uint64_t mask = 0;
        int r;

        r = count_range(fd, first, first + n, first, &mask, 0);
        if (r < 0)
                return r;
        *ret_mask = mask;
        return r;
}

int seat_read_lock(int fd, unsigned first, unsigned n) {
        return ofd_lock(fd, F_RDLCK, SEAT_OFF(first), n);
}

void seat_read_unlock(int fd, unsigned first, unsigned n) {
        ofd_unlock(fd, SEAT_OFF(first), n);
}

/* Finds the read locks on seats [A, B) with write-lock probes (which any lock conflicts
 * with), recursing around each lock found, as count_range() does. */
static void read_range(int fd, unsigned a, unsigned b, unsigned first, uint64_t *mask, unsigned depth) {
        struct flock fl = {
                .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = SEAT_OFF(a), .l_len = b - a,
        };
        off_t lo, hi;

        if (a >= b || depth > 2 * HC_SEATS_PER_FILE || fcntl(fd, F_OFD_GETLK, &fl) < 0 ||
            fl.l_type == F_UNLCK)
                return;
        lo = fl.l_start < SEAT_OFF(a) ? SEAT_OFF(a) : fl.l_start;
        hi = fl.l_len == 0 || fl.l_start + fl.l_len > SEAT_OFF(b) ? SEAT_OFF(b) : fl.l_start + fl.l_len;
        if (lo >= hi)
                return;
        if (fl.l_type == F_RDLCK)
                for (off_t o = lo; o < hi; o++)
                        *mask |= UINT64_C(1) << (unsigned) (o - SEAT_OFF(first));
        read_range(fd, a, (unsigned) (lo - HC_LOCK_BASE), first, mask, depth + 1);
        read_range(fd, (unsigned) (hi - HC_LOCK_BASE), b, first, mask, depth + 1);
}

uint64_t seat_read_locked(int fd, unsigned first, unsigned n) {
        uint64_t mask = 0;

        read_range(fd, first, first + n, first, &mask, 0);
        return mask;
}
