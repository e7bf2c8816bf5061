/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The runs of a region: each seat's record (its run now, if any) and its ring of finished
 * runs (format.h), read back as history (hc_history()) and by monitors that must see
 * every run (headcountd).
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

#include "format.h"
#include "handed.h"
#include "hc-internal.h"
#include "proc.h"
#include "region.h"
#include "runs.h"
#include "seat.h"

_Static_assert(HC_RUNS_PER_SEAT == HC_RUNS_PER_SEAT_KEPT, "the header says how many runs are kept");
_Static_assert((int) HC_RUN_REC_LEFT == (int) HC_RUN_LEFT && (int) HC_RUN_REC_DIED == (int) HC_RUN_DIED,
               "one numbering");

void runs_end_current(hc_region *h, unsigned seat, int status) {
        struct hc_slot_rec rec;

        if (region_record_get(&h->r, seat, &rec) == 0)
                region_record_end(&h->r, seat, &rec, status);
        else
                region_record_clear(&h->r, seat, 0);      /* whatever is there names nobody */
}

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

static void run_public(const hc_region *h, unsigned seat, const struct hc_slot_rec *e, unsigned how,
                       hc_run *ret) {
        size_t tag_len = strnlen(e->tag, sizeof e->tag);

        *ret = (hc_run) {
                .slot = seat,
                .run = e->run,
                .pid = e->pid,
                .uid = e->uid,
                .seq = e->started_seq,
                .started_usec = e->joined_usec,
                .pidns = e->pidns,
                .how = (int) how,
                .exit_status = -1,
        };
        memcpy(ret->tag, e->tag, tag_len);
        ret->tag[tag_len] = '\0';
        /* the end on the realtime clock: the join's, plus what the monotonic clock says the
         * run took (bounded: the words may be anyone's); a death's moment nobody recorded */
        if (how != HC_RUN_RUNNING)
                ret->ended_seq = e->ended_seq > e->started_seq ? e->ended_seq : e->started_seq;
        if (how == HC_RUN_LEFT) {
                uint64_t d = ret->ended_seq - e->started_seq;

                ret->ended_usec = e->joined_usec + (int64_t) (d / 1000 < INT64_MAX / 2 ? d / 1000 : 0);
                ret->exit_status = e->status >= 0 && e->status < 256 ? e->status : -1;
                ret->signal = e->status >= 256 ? e->status - 256 : 0;
        }
        if (self_pidns() && e->pidns != self_pidns())
                ret->flags |= HC_INSTANCE_OTHER_PIDNS;
        if (memcmp(e->boot_id, self_boot_id(), sizeof e->boot_id) != 0)
                ret->flags |= HC_INSTANCE_OTHER_BOOT;
        if (h->r.others_write)
                ret->flags |= HC_INSTANCE_UNVERIFIED;
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

/* The runs of SEAT into RET[HC_RUNS_PER_SEAT], oldest first: the ring's, and the record's
 * when it is not in the ring yet (running, or a death nobody buried), keeping the latest
 * HC_RUNS_PER_SEAT. */
int runs_seat(hc_region *h, unsigned seat, hc_run *ret) {
        struct hc_slot_rec e[HC_RUNS_PER_SEAT], rec;
        hc_run all[HC_RUNS_PER_SEAT + 1];
        bool have_rec;
        unsigned n = 0;
        int held = -EAGAIN, r;

        if (seat >= h->r.capacity)
                return -EINVAL;
        /* (a record between two runs, HC_RUN_PAUSED, is no run) */
        have_rec = region_record_get(&h->r, seat, &rec) == 0 && rec.run > 0 && rec.run < HC_RUN_LIMIT;
        if (have_rec) {
                HC_HOOK("runs-record-read");
                held = seat_held(h, seat);
        }
        r = region_runs_read(&h->r, seat, e);
        if (r < 0)
                return r;
        for (unsigned p = 0; p < HC_RUNS_PER_SEAT; p++) {
                if (e[p].run == 0)
                        continue;
                if (have_rec && e[p].run == rec.run)
                        have_rec = false;         /* ended meanwhile: the ring has it */
                run_public(h, seat, &e[p], e[p].how, &all[n++]);
        }
        if (have_rec) {
                /* a free seat (and no command holding it) with its record: a death */
                run_public(h, seat, &rec, held == 0 ? HC_RUN_DIED : HC_RUN_RUNNING, &all[n]);
                if (held == 0) {
                        all[n].ended_seq = host_monotonic_ns();
                        all[n].ended_usec = 0;
                }
                n++;
        }
        qsort(all, n, sizeof *all, run_by_number);
        if (n > HC_RUNS_PER_SEAT) {
                memmove(all, all + (n - HC_RUNS_PER_SEAT), HC_RUNS_PER_SEAT * sizeof *all);
                n = HC_RUNS_PER_SEAT;
        }
        memcpy(ret, all, n * sizeof *all);
        return (int) n;
}

int runs_history(hc_region *h, hc_run **ret) {
        uint64_t *marks = malloc((size_t) h->r.capacity * sizeof *marks);
        hc_run *all = malloc((size_t) h->r.capacity * HC_RUNS_PER_SEAT * sizeof *all);
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
