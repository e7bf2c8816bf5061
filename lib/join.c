/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Joining and leaving. One seat engine serves hc_join() (a short-lived handle that is
 * never mapped) and hc_region_join() (the caller's handle) alike.
 *
 * A joiner tries the seat its handle had last, then seats 0..max-1 lowest first, each
 * through a spare description of its lock file; the kernel decides every race (seat.c).
 * When all are held it looks whether one is only read-locked by a reaper or a retirer
 * (then it tries again in a millisecond, and after 200 tries waits for the region lock,
 * which a retirer holds while it has the seats read-locked, for as many retirers in a row
 * as TRANSIENT_LOCK_WAITS), else, unless the region was retired meanwhile (then it starts
 * over by name), it fails with -EBUSY or sleeps until a change (wait.c).
 * Once it has a seat it checks that the region was not retired under it
 * (a retirer read-locks every seat while it marks and unlinks the region, so the mark is
 * visible by then), and writes its record.
 *
 * A seat that its holder hands to a command (HC_INHERIT, hc_slot_fd()) gets a lock file of
 * its own for the command's descriptor (handed.c). Its byte in the lock file is then free
 * when the holder died while the command lives on, with the record still there: a joiner
 * that takes a byte whose record is there asks handed.c, and gives the seat back when the
 * command still holds it (and does not count it as one that will be free in a moment).
 *
 * Leaving clears the record first, and only then gives the seat back: a record found on
 * a free seat therefore always means that its holder died holding the seat (or handed it
 * to a command that may still hold it). Closing the
 * description releases the lock; we also unlock explicitly when the description may have
 * other references (the process forked since it joined, or the descriptor was handed out
 * or made inheritable), because the joiner's hc_leave() gives the seat back for all of
 * them, as flock(1)'s unlock does. A forked child's hc_leave() only closes its own
 * reference, never the parent's seat.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "count.h"
#include "handed.h"
#include "hc-internal.h"
#include "holder.h"
#include "join.h"
#include "proc.h"
#include "seat.h"
#include "util.h"
#include "wait.h"

/* One freed seat struct kept for the next hc_join(): a loop of joins allocates nothing. */
static hc_slot *spare_slot;

/* Seats whose byte was free but which a command holds through its own file: a joiner
 * skips them and does not wait for them as for a reaper's read lock. */
struct handed_seen {
        uint64_t mask[HC_LOCK_FILES_MAX];
};

static int try_one(hc_region *h, unsigned i, int *fds, struct handed_seen *seen, uint32_t *ret_flags,
                   uint64_t *ret_run, int *ret_fd) {
        unsigned k = seat_file(i);
        uint32_t flags;
        uint64_t run;
        bool present;
        int r;

        if (fds[k] < 0) {
                r = handle_cover_seat(h, i);
                if (r < 0)
                        return r;
                r = handle_take_fd(h, k, &fds[k]);
                if (r < 0)
                        return r;
        }
        r = seat_take(fds[k], i);
        if (r < 0)
                return r;
        /* One look at the flags (retired under us?) and at the record: a record on a byte
         * we could take is a dead holder's, or a handed seat's whose command lives on. */
        r = region_seat_state(&h->r, i, h->from_copy, &flags, &present, &run);
        if (r < 0) {
                seat_give_back(fds[k], i);
                return r;                 /* not the header we started from: start over */
        }
        *ret_flags = flags;
        if (_unlikely_(present)) {
                if (handed_probe(h, i) != 0) {
                        seat_give_back(fds[k], i);
                        seen->mask[k] |= UINT64_C(1) << (i - seat_first(k));
                        return -EAGAIN;
                }
                /* a dead holder's: its run goes to the ring as a death before ours */
                (void) region_record_bury(&h->r, i, NULL);
        }
        *ret_run = region_run_after(run);
        *ret_fd = TAKE_FD(fds[k]);
        return 0;
}

/* Tries the seat the handle had last, then 0..N-1. The seat, -EAGAIN when all are held,
 * or an error. */
static int try_seats(hc_region *h, unsigned n, struct handed_seen *seen, uint32_t *ret_flags, uint64_t *ret_run,
                     int *ret_fd) {
        int fds[HC_LOCK_FILES_MAX];
        unsigned last = __atomic_load_n(&h->last_seat, __ATOMIC_RELAXED), n_files = h->n_files;
        int r = -EAGAIN;

        for (unsigned k = 0; k < n_files; k++)
                fds[k] = -EBADF;
        if (last < n) {
                r = try_one(h, last, fds, seen, ret_flags, ret_run, ret_fd);
                if (r == 0)
                        r = (int) last;
        }
        for (unsigned i = 0; i < n && r == -EAGAIN; i++) {
                if (i == last)
                        continue;
                r = try_one(h, i, fds, seen, ret_flags, ret_run, ret_fd);
                if (r == 0) {
                        __atomic_store_n(&h->last_seat, i, __ATOMIC_RELAXED);
                        r = (int) i;
                }
        }
        for (unsigned k = 0; k < n_files; k++)
                if (fds[k] >= 0)
                        handle_put_fd(h, k, fds[k]);
        return r;
}

/* 1 when one of seats 0..N-1 is only read-locked, or free by now (but not one that a
 * command holds through its own file). */
static int transient(hc_region *h, unsigned n, const struct handed_seen *seen) {
        for (unsigned k = 0; k < h->n_files && seat_first(k) < n; k++) {
                unsigned m = n - seat_first(k) < HC_SEATS_PER_FILE ? n - seat_first(k) : HC_SEATS_PER_FILE;
                int fd;

                /* mask[k] for k < n_files is cleared by take_seat(), which the analyzer
                 * cannot follow across the calls between */
                if (handle_query_fd(h, k, &fd) == 0 &&
                    /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult) */
                    (seat_transient(fd, seat_first(k), m) & ~seen->mask[k]) != 0)
                        return 1;
        }
        return 0;
}

/* How many retirements in a row a joiner waits out (each holds the region lock). */
#define TRANSIENT_LOCK_WAITS 64

static int take_seat(hc_region *h, const hc_options *opt, uint32_t *ret_flags, uint64_t *ret_run, int *ret_fd) {
        unsigned max = opt && opt->max ? opt->max : 1;
        unsigned n = max < h->r.capacity ? max : h->r.capacity, transient_waits = 0;
        int64_t deadline = deadline_from(opt ? opt->timeout_ms : 0);
        struct handed_seen seen;         /* the loop below clears what transient() reads */
        struct waiter w;
        int seat;

        waiter_init(&w, h);
        for (;;) {
                /* the futex word before we look (mapped handles only: it costs a read
                 * otherwise, and only a mapping can sleep on it) */
                uint32_t gen = h->r.mapped ? region_word(&h->r, WORD_GENERATION) : 0;

                for (unsigned k = 0; k < h->n_files; k++)
                        seen.mask[k] = 0;
                seat = try_seats(h, n, &seen, ret_flags, ret_run, ret_fd);
                if (seat != -EAGAIN)
                        break;            /* a seat, or an error; retirement is looked at next */
                if (handle_retired(h)) {
                        seat = -ESTALE;
                        break;
                }
                if (transient_waits < 200 && transient(h, n, &seen)) {
                        transient_waits++;
                        sleep_usec(1000);
                        continue;
                }
                /* Still read-locked after 200 looks: a retirer that lost its CPU holds them
                 * (on a loaded machine, for as long as the scheduler likes), or one after
                 * another does. A retirer holds the region lock all along: wait for that
                 * and look again, for at most TRANSIENT_LOCK_WAITS retirers in a row. */
                if (transient_waits >= 200 && transient_waits < 200 + TRANSIENT_LOCK_WAITS &&
                    transient(h, n, &seen)) {
                        transient_waits++;
                        if (handle_lock(h, REGION_LOCK_TIMEOUT_MS) < 0)
                                transient_waits = 200 + TRANSIENT_LOCK_WAITS;
                        else
                                handle_unlock(h);
                        continue;
                }
                /* A retirement may have ended since the look above: its read locks went
                 * with its lock files, which transient() cannot open any more. Busy only
                 * in a region that is still the one of its name. */
                if (handle_retired(h)) {
                        seat = -ESTALE;
                        break;
                }
                if (deadline == 0) {
                        seat = -EBUSY;
                        break;
                }
                seat = waiter_sleep(&w, deadline, gen);
                if (seat < 0)
                        break;
                seat = -EAGAIN;
        }
        waiter_done(&w);
        return seat;
}

int join_handle(hc_region *h, const hc_options *opt, bool cold, hc_slot **ret) {
        int fd = -EBADF, seat, r;
        uint32_t flags = 0;
        uint64_t run = 0;
        hc_slot *s;

        if (!h->r.writable)
                return -EACCES;
        seat = take_seat(h, opt, &flags, &run, &fd);
        if (seat < 0)
                return seat;
        /* Retired after our check and before our lock? The retirer held a read lock on
         * every seat while it set the flag, so the flag is visible now if it happened:
         * try_one() read it once it had the seat. */
        if (_unlikely_(flags & HC_REGION_RETIRED) && handle_retired(h)) {
                r = -ESTALE;
                goto fail;
        }
        s = __atomic_exchange_n(cold ? &spare_slot : &h->spare, NULL, __ATOMIC_ACQ_REL);
        if (!s)
                s = malloc(sizeof *s);
        if (!s) {
                r = -ENOMEM;
                goto fail;
        }
        *s = (hc_slot) {
                .fd = fd,
                .own_fd = -EBADF,
                .index = (unsigned) seat,
                .pid = self_pid(),
                .fork_count = self_fork_count(),
                .rg = cold ? NULL : h,
                .h = h,
        };
        region_record_fill(&h->r, s->index, opt ? opt->tag : NULL, run, &s->rec);
        if (opt && (opt->flags & HC_INHERIT)) {
                /* the command's descriptor: the seat's own lock file, made before the
                 * record that names it is written */
                s->inherit = true;
                r = handed_open(h, s->index, &s->rec, true, &s->own_fd);
                if (r < 0) {
                        free(s);
                        goto fail;
                }
        }
        r = opt && (opt->flags & HC_RECORD_LATER) ? 0 : region_record_write(&h->r, s->index, &s->rec);
        if (r < 0) {
                handed_close(h, s->index, s->rec.seq, s->own_fd);
                free(s);
                goto fail;
        }
        s->recorded = !(opt && (opt->flags & HC_RECORD_LATER));
        handle_ref(h);
        if (!cold)
                region_poke(&h->r);       /* for hc_region_wait_change(): no open, no event */
        *ret = s;
        return 0;

fail:
        seat_give_back(fd, (unsigned) seat);
        safe_close(fd);
        return r;
}

int join_by_name(const struct scope *sc, const hc_options *opt, hc_slot **ret) {
        for (unsigned attempt = 0; attempt < 100; attempt++) {
                hc_region *h = NULL;
                int r;

                r = handle_open(sc, opt, HANDLE_CREATE | HANDLE_COLD, &h);
                if (r == -ESTALE)
                        continue;
                if (r < 0)
                        return r;
                r = join_handle(h, opt, true, ret);
                if (r == 0)               /* the seat needs only the region file (and a */
                        handle_trim(h, (*ret)->own_fd >= 0);  /* handed one, its directory) */
                else if (h->from_copy && r != -EBUSY && r != -ETIMEDOUT) {
                        /* started from the process's copy of the header, which was not the
                         * file's (any more): once more, from the file */
                        handle_forget_copy();
                        r = -ESTALE;
                }
                handle_unref(h);
                if (r != -ESTALE)
                        return r;
        }
        return -ESTALE;                   /* retired again and again: give up */
}

static void leave(hc_slot *s, bool erase) {
        hc_region *h = s->h;

        if (s->pid != self_pid()) {
                /* a forked child: drop our reference, never the parent's seat */
                safe_close(s->own_fd);
                safe_close(s->fd);
                handle_unref(h);
                free(s);
                return;
        }
        /* the run to the ring and the record's check word first, so that nobody lists a
         * seat we no longer hold: a record left on a free seat means a holder that died */
        if (erase && s->recorded)
                region_record_end(&h->r, s->index, &s->rec, s->has_status ? s->status : RUNS_NO_STATUS);
        /* then the command's hold, for all who share it; abandoned, it stays: that is a
         * holder that died, whose command may live on */
        if (erase)
                handed_close(h, s->index, s->rec.seq, s->own_fd);
        else
                safe_close(s->own_fd);
        if (s->rg) {
                seat_give_back(s->fd, s->index);
                region_poke(&h->r);
                if (s->inherit || s->fd_exposed)
                        safe_close(s->fd);
                else
                        handle_put_fd(h, seat_file(s->index), s->fd);
                free(__atomic_exchange_n(&h->spare, s, __ATOMIC_ACQ_REL));
                handle_unref(h);
                return;
        }
        /* Closing the only reference drops the lock; with other references possible, the
         * joiner's leave must release it for all of them. A description that nobody else
         * has is kept for the next join by name (handle.c): the region file's close below
         * is the event for the waiters. */
        seat_give_back(s->fd, s->index);
        if (s->inherit || s->fd_exposed || s->fork_count != self_fork_count())
                safe_close(s->fd);
        else
                handle_cold_put(h, seat_file(s->index), s->fd);
        handle_unref(h);
        free(__atomic_exchange_n(&spare_slot, s, __ATOMIC_ACQ_REL));
}

void slot_leave(hc_slot *s) {
        leave(s, true);
}

void slot_abandon(hc_slot *s) {
        leave(s, false);
}

/* Writes our record again after a change to it. */
static int slot_rewrite(hc_slot *s) {
        int r;

        if (s->pid != self_pid())
                return -ESTALE;
        region_record_seal(&s->h->r, s->index, &s->rec);
        r = region_record_write(&s->h->r, s->index, &s->rec);
        if (r < 0)
                return r;
        s->recorded = true;
        return 0;
}

int slot_own_fd(hc_slot *s) {
        int r;

        if (s->own_fd >= 0)
                return s->own_fd;
        if (s->pid != self_pid())
                return -ESTALE;
        /* A new name means a new seq, which the record must name before anyone looks
         * for the file: handed_open() changes it only when the name was taken. */
        {
                uint64_t seq = s->rec.seq;

                r = handed_open(s->h, s->index, &s->rec, s->inherit, &s->own_fd);
                if (r < 0)
                        return r;
                if (s->recorded && s->rec.seq != seq) {
                        r = region_record_write(&s->h->r, s->index, &s->rec);
                        if (r < 0)
                                return r;
                }
        }
        return s->own_fd;
}

int slot_set_pid(hc_slot *s, pid_t pid) {
        struct hc_slot_rec old = s->rec;
        int r;

        if (s->pid != self_pid())
                return -ESTALE;
        /* A record names only a process that holds the seat (ours does: we hold its
         * descriptor), so that nobody who reads it as verified is misled (holder.c). */
        if (pid != s->pid && holder_check_fd(s->own_fd >= 0 ? s->own_fd : s->fd, s->index, s->own_fd >= 0, pid) != pid)
                return -ESRCH;
        if (s->rec.run & HC_RUN_PAUSED) {
                /* between two runs (slot_end_run()): the process named begins the next;
                 * the holding keeps its seq (it names a handed seat's own file) */
                struct timespec ts;

                (void) clock_gettime(CLOCK_REALTIME_COARSE, &ts);
                s->rec.run = region_run_after(s->rec.run);
                s->rec.started_seq = host_monotonic_ns();
                if (s->rec.started_seq < s->rec.seq)
                        s->rec.started_seq = s->rec.seq;
                s->rec.joined_usec = (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        }
        s->rec.pid = pid;
        r = slot_rewrite(s);
        if (r < 0)
                s->rec = old;
        return r;
}

int slot_end_run(hc_slot *s, int status) {
        struct hc_slot_rec old = s->rec;
        int r;

        if (s->pid != self_pid())
                return -ESTALE;
        if (s->rec.run & HC_RUN_PAUSED)
                return 0;                 /* no run to end */
        /* the run goes to the ring; the record, no run now, names us: we hold the seat */
        if (s->recorded)
                region_run_finish(&s->h->r, s->index, &s->rec, status);
        HC_HOOK("run-ended-held");        /* ended in the ring, the record still the run's */
        s->rec.run |= HC_RUN_PAUSED;
        s->rec.pid = s->pid;
        r = slot_rewrite(s);
        if (r < 0)
                s->rec = old;
        return r;
}

int slot_set_listen_id(hc_slot *s, uint64_t id) {
        uint64_t old = s->rec.listen_id;
        int r;

        s->rec.listen_id = id;
        r = slot_rewrite(s);
        if (r < 0)
                s->rec.listen_id = old;
        return r;
}
