/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The runs of a region: each seat's ring of its last HC_RUNS_PER_SEAT holdings (format.h),
 * written by the holders themselves, and read back as history (hc_history()) and by
 * monitors that must see every run (headcountd).
 *
 * Writers. A seat's ring is written only by the holder of the seat, while it holds it, so
 * it needs no mutex: the seat lock keeps every other writer out. The holder writes its
 * run when it writes its record (so the run names the pid the record names: a wrapper
 * that joins with HC_RECORD_LATER begins its run when it names its command), and ends it
 * before it gives the seat back. Nobody writes a death: a run that still says "running"
 * while a later run of its seat exists, or while its seat is free, ended without a leave.
 * The order of the writes makes that inference safe: a run is ended in the ring before
 * its seat is let go, so a reader that finds the seat free and then reads the run still
 * running knows that its holder is gone without having left.
 *
 * Readers. Every entry is validated (its check word, its place in the ring, each field's
 * range) and read again a few times when caught half-written, as records are; an entry
 * of a region that others may write is a claim, and says so (HC_INSTANCE_UNVERIFIED).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "format.h"
#include "hc-internal.h"
#include "proc.h"
#include "region.h"
#include "runs.h"
#include "seat.h"

_Static_assert(HC_RUNS_PER_SEAT == HC_RUNS_PER_SEAT_KEPT, "the header says how many runs are kept");
_Static_assert((int) HC_RUN_REC_RUNNING == (int) HC_RUN_RUNNING && (int) HC_RUN_REC_LEFT == (int) HC_RUN_LEFT, "one numbering");

/* Runs are numbered from the seat's mark: whatever a writer of the file put there, the
 * number stays in range (region.c refuses entries numbered 2^60 and more). */
int runs_begin(hc_region *h, unsigned seat, const struct hc_slot_rec *rec, struct hc_run_rec *ret) {
        uint64_t run = HC_RUN_MARK_RUN(region_run_mark(&h->r, seat)) + 1;

        if (run >= (UINT64_C(1) << 59))
                run = 1;
        region_run_fill(&h->r, seat, rec, run, ret);
        return region_run_write(&h->r, seat, ret);
}

void runs_update(hc_region *h, unsigned seat, const struct hc_slot_rec *rec, struct hc_run_rec *e) {
        if (e->run == 0)
                return;
        e->pid = rec->pid;
        e->pidns = rec->pidns;
        memcpy(e->tag, rec->tag, sizeof e->tag);
        region_run_seal(&h->r, seat, e);
        (void) region_run_write(&h->r, seat, e);
}

void runs_end(hc_region *h, unsigned seat, struct hc_run_rec *e, int status) {
        if (e->run == 0)
                return;
        e->how = HC_RUN_REC_LEFT;
        e->ended_seq = host_monotonic_ns();
        if (e->ended_seq < e->seq)
                e->ended_seq = e->seq;
        if (status == RUNS_NO_STATUS)
                e->status = -1;
        else if (WIFSIGNALED(status))
                e->status = (int16_t) (256 + (WTERMSIG(status) & 127));
        else
                e->status = (int16_t) WEXITSTATUS(status);
        region_run_seal(&h->r, seat, e);
        (void) region_run_write(&h->r, seat, e);
        HC_HOOK("run-ended");            /* ended, its record still there, the seat held */
}

void runs_end_current(hc_region *h, unsigned seat) {
        struct hc_run_rec e[HC_RUNS_PER_SEAT];
        uint64_t run = HC_RUN_MARK_RUN(region_run_mark(&h->r, seat));

        if (run == 0 || region_runs_read(&h->r, seat, e) < 0)
                return;
        if (e[run % HC_RUNS_PER_SEAT].run == run && e[run % HC_RUNS_PER_SEAT].how == HC_RUN_REC_RUNNING)
                runs_end(h, seat, &e[run % HC_RUNS_PER_SEAT], RUNS_NO_STATUS);
}

int runs_marks(hc_region *h, uint64_t *ret, unsigned n) {
        _cleanup_free_ uint64_t *all = NULL;
        int r;

        if (n > h->r.capacity)
                return -EINVAL;
        all = malloc((size_t) h->r.capacity * sizeof *all);
        if (!all)
                return -ENOMEM;
        r = region_run_marks(&h->r, all);
        if (r < 0)
                return r;
        memcpy(ret, all, (size_t) n * sizeof *ret);
        return 0;
}

/* 1 when SEAT is held now, 0 when free, -errno when we cannot tell (a reader that may not
 * open the lock files). */
static int seat_held(hc_region *h, unsigned seat) {
        uint64_t mask;
        int fd, r;

        if (__atomic_load_n(&h->by_proc_locks, __ATOMIC_RELAXED))
                return -EACCES;
        r = handle_query_fd(h, seat_file(seat), &fd);
        if (r < 0)
                return r;
        r = seat_count(fd, seat, 1, &mask);
        return r < 0 ? r : r > 0;
}

static void run_public(const hc_region *h, unsigned seat, const struct hc_run_rec *e, hc_run *ret) {
        size_t tag_len = strnlen(e->tag, sizeof e->tag);

        *ret = (hc_run) {
                .slot = seat,
                .run = e->run,
                .pid = e->pid,
                .uid = e->uid,
                .seq = e->seq,
                .started_usec = e->started_usec,
                .pidns = e->pidns,
                .how = e->how,
                .exit_status = e->status >= 0 && e->status < 256 ? e->status : -1,
                .signal = e->status >= 256 ? e->status - 256 : 0,
        };
        memcpy(ret->tag, e->tag, tag_len);
        ret->tag[tag_len] = '\0';
        if (e->how == HC_RUN_REC_LEFT) {
                /* the leave on the realtime clock: the join's, plus what the monotonic
                 * clock says the run took (bounded: the words may be anyone's) */
                uint64_t d = e->ended_seq > e->seq ? e->ended_seq - e->seq : 0;
                ret->ended_seq = e->ended_seq > e->seq ? e->ended_seq : e->seq;
                ret->ended_usec = e->started_usec + (int64_t) (d / 1000 < INT64_MAX / 2 ? d / 1000 : 0);
        }
        if (self_pidns() && e->pidns != self_pidns())
                ret->flags |= HC_INSTANCE_OTHER_PIDNS;
        if (memcmp(&e->boot, self_boot_id(), sizeof e->boot) != 0)
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

/* The runs of SEAT into RET[HC_RUNS_PER_SEAT], oldest first, each one's end resolved. */
int runs_seat(hc_region *h, unsigned seat, hc_run *ret) {
        struct hc_run_rec e[HC_RUNS_PER_SEAT];
        uint64_t latest = 0;
        unsigned n = 0;
        int r;

        if (seat >= h->r.capacity)
                return -EINVAL;
        r = region_runs_read(&h->r, seat, e);
        if (r < 0)
                return r;
        for (unsigned p = 0; p < HC_RUNS_PER_SEAT; p++)
                if (e[p].run > latest)
                        latest = e[p].run;
        /* The latest run still running: is its holder still there? A leave ends the run
         * before it lets go of the seat, so a free seat and then a run read still running
         * is a holder that died (a new holder's run is a later one). */
        for (unsigned p = 0; p < HC_RUNS_PER_SEAT; p++)
                if (e[p].run == latest && latest > 0 && e[p].how == HC_RUN_REC_RUNNING) {
                        HC_HOOK("runs-latest-running");
                        if (seat_held(h, seat) == 0) {
                                r = region_runs_read(&h->r, seat, e);
                                if (r < 0)
                                        return r;
                                latest = UINT64_MAX;      /* every running run died */
                        }
                        break;
                }
        for (unsigned p = 0; p < HC_RUNS_PER_SEAT; p++) {
                hc_run *x;

                if (e[p].run == 0)
                        continue;
                x = &ret[n++];
                run_public(h, seat, &e[p], x);
                if (e[p].how == HC_RUN_REC_RUNNING && e[p].run != latest)
                        x->how = HC_RUN_DIED;
        }
        qsort(ret, n, sizeof *ret, run_by_number);
        /* a death is seen at the next run's join, or now */
        for (unsigned i = 0; i < n; i++)
                if (ret[i].how == HC_RUN_DIED)
                        ret[i].ended_seq = i + 1 < n && ret[i + 1].seq > ret[i].seq ? ret[i + 1].seq
                                                                                   : host_monotonic_ns();
        return (int) n;
}

int runs_history(hc_region *h, hc_run **ret) {
        _cleanup_free_ uint64_t *marks = NULL;
        _cleanup_free_ hc_run *all = NULL;
        size_t n = 0;
        int r;

        marks = malloc((size_t) h->r.capacity * sizeof *marks);
        all = malloc((size_t) h->r.capacity * HC_RUNS_PER_SEAT * sizeof *all);
        if (!marks || !all)
                return -ENOMEM;
        r = region_run_marks(&h->r, marks);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < h->r.capacity; i++) {
                if (marks[i] == 0)
                        continue;         /* never held (or a mark not yet written) */
                r = runs_seat(h, i, all + n);
                if (r < 0)
                        return r;
                n += (size_t) r;
        }
        if (n == 0) {
                *ret = NULL;
                return 0;
        }
        qsort(all, n, sizeof *all, run_compare);
        *ret = TAKE_PTR(all);
        return (int) n;
}
