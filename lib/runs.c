/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The runs of a region: each seat's record (its run now, if any) and its ring of finished
 * runs (format.h; region.c reads them, as hc_run), read back as history (hc_history())
 * and by monitors that must see every run (headcountd).
 *
 * Writers. A holder numbers its run when it joins (the record's run number, one after
 * the one the seat's record had), copies its record with its end into the ring when it
 * leaves, and only then erases the record and gives the seat back. A holder that dies
 * leaves its record on the free seat: whoever finds it there first (a reaper, or the
 * seat's next holder) copies it into the ring as a death. So a finished run is in the
 * ring, and a run in the record is running, or died unseen.
 *
 * Readers. Every entry is validated (check words, its place in the ring, each field's
 * range) and read again a few times when caught half-written, as records are; an entry
 * of a region that others may write is a claim, and says so (HC_INSTANCE_UNVERIFIED).
 * A seat is read in the writers' order reversed: the record, then whether the seat is
 * held, then the ring. A record found valid on a seat then found free is a death unless
 * the ring has its run by then (it left meanwhile: the leave writes the ring first).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "handed.h"
#include "hc-internal.h"
#include "proc.h"
#include "region.h"
#include "runs.h"
#include "seat.h"

int runs_marks(hc_region *h, uint64_t *ret, unsigned n) {
        if (n > h->r.capacity)
                return -EINVAL;
        return region_run_marks(&h->r, 0, n, ret);
}

/* 1 when SEAT is held now (by its byte, or by a command it was handed to), 0 when free,
 * -errno when we cannot tell (a reader that may not open the lock files). */
static int seat_held(hc_region *h, unsigned seat) {
        uint64_t mask;
        int fd, r;

        if (__atomic_load_n(&h->by_proc_locks, __ATOMIC_RELAXED))
                return -EACCES;
        r = handle_query_fd(h, seat_file(seat), &fd);
        if (r < 0)
                return r;
        r = seat_count(fd, seat, 1, &mask);
        if (r == 0)
                r = handed_probe(h, seat) != 0;
        return r < 0 ? r : r > 0;
}

static int run_compare(const void *a, const void *b) {
        const hc_run *x = a, *y = b;

        if (x->seq != y->seq)
                return x->seq < y->seq ? -1 : 1;
        if (x->slot != y->slot)
                return x->slot < y->slot ? -1 : 1;
        return x->run < y->run ? -1 : x->run > y->run;
}

static int run_by_number(const void *a, const void *b) {
        const hc_run *x = a, *y = b;

        return x->run < y->run ? -1 : x->run > y->run;
}

/* The runs of SEAT into RET[HC_RUNS_PER_SEAT_KEPT], oldest first: the ring's, and the
 * record's when it is not in the ring yet (running, or a death nobody buried), keeping the
 * latest HC_RUNS_PER_SEAT_KEPT. */
int runs_seat(hc_region *h, unsigned seat, hc_run *ret) {
        hc_run all[HC_RUNS_PER_SEAT_KEPT + 1], rec;
        bool have_rec;
        unsigned n;
        int held = -EAGAIN, r;

        if (seat >= h->r.capacity)
                return -EINVAL;
        have_rec = region_record_run(&h->r, seat, &rec) == 0;
        if (have_rec) {
                HC_HOOK("runs-record-read");
                held = seat_held(h, seat);
        }
        r = region_ring_runs(&h->r, seat, all);
        if (r < 0)
                return r;
        n = (unsigned) r;
        for (unsigned i = 0; have_rec && i < n; i++)
                if (all[i].run == rec.run)
                        have_rec = false;         /* ended meanwhile: the ring has it */
        if (have_rec) {
                /* a free seat (and no command holding it) with its record: a death */
                if (held == 0) {
                        rec.how = HC_RUN_DIED;
                        rec.ended_seq = host_monotonic_ns();
                }
                all[n++] = rec;
        }
        qsort(all, n, sizeof *all, run_by_number);
        if (n > HC_RUNS_PER_SEAT_KEPT) {
                memmove(all, all + (n - HC_RUNS_PER_SEAT_KEPT), HC_RUNS_PER_SEAT_KEPT * sizeof *all);
                n = HC_RUNS_PER_SEAT_KEPT;
        }
        memcpy(ret, all, n * sizeof *all);
        return (int) n;
}

int runs_history(hc_region *h, hc_run **ret) {
        uint64_t *marks = malloc((size_t) h->r.capacity * sizeof *marks);
        hc_run *all = malloc((size_t) h->r.capacity * HC_RUNS_PER_SEAT_KEPT * sizeof *all);
        size_t n = 0;
        int r = marks && all ? region_run_marks(&h->r, 0, h->r.capacity, marks) : -ENOMEM;

        for (unsigned i = 0; r >= 0 && i < h->r.capacity; i++) {
                if (marks[i] == 0)
                        continue;         /* never held */
                r = runs_seat(h, i, all + n);
                if (r >= 0)
                        n += (size_t) r;
        }
        free(marks);
        *ret = NULL;
        if (r < 0 || n == 0) {
                free(all);
                return r < 0 ? r : 0;
        }
        qsort(all, n, sizeof *all, run_compare);
        *ret = all;
        return (int) n;
}
