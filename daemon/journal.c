/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's journal of runs: every join and every leave or death of a region's holders,
 * logged once each, in order, even for a holder that joined and left long before we
 * looked. The holders number their runs in their records and copy each finished run to
 * their seat's ring themselves (hc_history()), so we read what happened rather than
 * sample who holds a seat when an event wakes us.
 *
 * For each seat we keep the last run we logged and whether we logged its end. On each
 * refresh we read the seats' run marks (one word per seat, from the record table: a mark
 * moves when a run begins and when its record goes) and read again the runs of the seats
 * whose mark moved, and of those whose run we saw running while the listing just found
 * the seat free (a death is written by whoever finds it first: the library tells it from
 * the free seat meanwhile). Joins and ends from every seat are logged in the order of the
 * clock the
 * holders wrote. Runs that were overwritten before we read them (more than a ring's worth
 * of runs of one seat between two looks, while we were stopped or starved) are logged as
 * a number, with the region's name: never guessed, never a false death.
 *
 * A region others may write can say anything in its rings: entries are validated by the
 * library and marked unverified, every number is bounded, at most one ring per seat is
 * read per refresh, and the name we log is the one we track, never one from the file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headcountd.h"
#include "instance.h"
#include "journal.h"
#include "log.h"

/* What we logged of a seat: the last run (0: none) and whether its end was logged. */
typedef struct SeatSeen {
        uint64_t run;
        bool ended;
} SeatSeen;

typedef struct RunEvent {
        uint64_t at;             /* the holders' clock (hc_run.seq, .ended_seq) */
        bool end;                /* a leave or death, else a join */
        hc_run run;
} RunEvent;

int journal_start(Region *r, bool from_start) {
        uint64_t *marks;

        free(r->seen);
        r->seen = calloc(r->capacity ? r->capacity : 1, sizeof(SeatSeen));
        if (!r->seen)
                return -ENOMEM;
        r->n_seen = r->capacity;
        if (from_start)
                return 0;
        marks = calloc(r->capacity ? r->capacity : 1, sizeof *marks);
        if (!marks)
                return -ENOMEM;
        if (hc_region_run_marks(r->handle, marks, r->capacity) >= 0)
                for (unsigned i = 0; i < r->capacity; i++) {
                        SeatSeen *s = (SeatSeen *) r->seen + i;

                        s->run = marks[i] >> 2;
                        /* a run that is running now: its join was before us (the
                         * listing says it at debug level), its end will be news */
                        s->ended = (marks[i] & 3) != HC_RUN_RUNNING;
                }
        free(marks);
        return 0;
}

void journal_stop(Region *r) {
        free(r->seen);
        r->seen = NULL;
        r->n_seen = 0;
}

static int event_compare(const void *a, const void *b) {
        const RunEvent *x = a, *y = b;

        if (x->at != y->at)
                return x->at < y->at ? -1 : 1;
        if (x->end != y->end)
                return x->end ? 1 : -1;            /* a join before an end at the same ns */
        if (x->run.slot != y->run.slot)
                return x->run.slot < y->run.slot ? -1 : 1;
        return x->run.run < y->run.run ? -1 : x->run.run > y->run.run;
}

/* The instance a log line and the bus name the run by: as its region wrote it, which in
 * a region only its owner may write is a fact (a holder writes its own pid, or one that
 * the library proved to hold its seat: hc_slot_set_pid()), and in a region others may
 * write a claim (HC_INSTANCE_UNVERIFIED). */
static void run_instance(const hc_run *run, hc_instance *ret) {
        *ret = (hc_instance) {
                .slot = run->slot,
                .pid = run->pid,
                .uid = run->uid,
                .seq = run->seq,
                .joined_usec = run->started_usec,
                .pidns = run->pidns,
                .flags = run->flags & (HC_INSTANCE_OTHER_PIDNS | HC_INSTANCE_OTHER_BOOT | HC_INSTANCE_UNVERIFIED),
        };
        memcpy(ret->tag, run->tag, sizeof ret->tag);
}

static void status_text(const hc_run *run, char *buf, size_t size) {
        if (run->signal > 0) {
                const char *name = sigabbrev_np(run->signal);
                if (name)
                        (void) snprintf(buf, size, "; signal %s", name);
                else
                        (void) snprintf(buf, size, "; signal %d", run->signal);
        } else if (run->exit_status >= 0)
                (void) snprintf(buf, size, "; exit status %d", run->exit_status);
        else
                buf[0] = '\0';
}

static void log_run_event(Region *r, const RunEvent *ev, int count) {
        Manager *m = r->manager;
        char who[INSTANCE_DESCRIPTION_MAX], how[48];
        hc_instance in;

        run_instance(&ev->run, &in);
        instance_describe(&in, who, sizeof who);
        if (!ev->end) {
                log_region_event(LOG_INFO, "join", r->name, &in, count,
                                 "%s: %s joined, slot %u (%i of %u seats held)",
                                 r->name, who, in.slot, count, r->capacity);
                m->events.instance_event(m, r->name, "join", &in);
        } else if (ev->run.how == HC_RUN_DIED) {
                m->events.instance_event(m, r->name, "died", &in);
                log_region_event(LOG_NOTICE, "died", r->name, &in, count,
                                 "%s: %s died holding slot %u; seat reaped (%i of %u seats held)",
                                 r->name, who, in.slot, count, r->capacity);
        } else {
                status_text(&ev->run, how, sizeof how);
                m->events.instance_event(m, r->name, "leave", &in);
                log_region_event(LOG_INFO, "leave", r->name, &in, count,
                                 "%s: %s left, slot %u (%i of %u seats held)%s",
                                 r->name, who, in.slot, count, r->capacity, how);
        }
}

static bool seat_listed(const hc_instance *list, int n, unsigned slot) {
        for (int j = 0; j < n; j++)
                if (list[j].slot == slot)
                        return true;
        return false;
}

void journal_read(Region *r, const hc_instance *list, int n) {
        _cleanup_free_ uint64_t *marks = NULL;
        RunEvent *events = NULL;
        hc_run runs[HC_RUNS_PER_SEAT_KEPT];
        size_t n_events = 0, cap_events = 0;
        uint64_t missed = 0;
        int count;

        if (!r->seen || r->n_seen != r->capacity)
                return;
        marks = calloc(r->capacity, sizeof *marks);
        if (!marks) {
                (void) log_oom();
                return;
        }
        if (hc_region_run_marks(r->handle, marks, r->capacity) < 0)
                return;
        /* the count each line gives is the journal's own: the runs it logged as running
         * before this batch, then each event's step (a listing is a moment apart) */
        count = 0;
        for (unsigned i = 0; i < r->capacity; i++)
                if (((SeatSeen *) r->seen)[i].run > 0 && !((SeatSeen *) r->seen)[i].ended)
                        count++;

        for (unsigned i = 0; i < r->capacity; i++) {
                SeatSeen *s = (SeatSeen *) r->seen + i;
                uint64_t run = marks[i] >> 2, expect;
                int k;

                if (run == s->run && (s->ended || seat_listed(list, n, i)))
                        continue;         /* nothing new: no ring to read */
                if (run == 0 && s->run == 0)
                        continue;
                k = hc_region_seat_runs(r->handle, i, runs);
                if (k <= 0)
                        continue;         /* nothing readable (yet): the mark brings us back */
                if (runs[k - 1].run < s->run) {
                        /* the seat's runs went back: the ring was wiped or forged. Start
                         * again from what it says now. */
                        log_debug("%s: the runs of slot %u start again", r->name, i);
                        s->run = runs[k - 1].run;
                        s->ended = runs[k - 1].how != HC_RUN_RUNNING;
                        continue;
                }
                if (!events || cap_events < n_events + 2 * (size_t) k) {
                        size_t c = (n_events + 2 * (size_t) k) * 2;
                        RunEvent *e = realloc(events, c * sizeof *e);

                        if (!e) {
                                (void) log_oom();
                                break;
                        }
                        events = e;
                        cap_events = c;
                }
                expect = s->run + (s->ended || s->run == 0 ? 1 : 0);
                for (int j = 0; j < k; j++) {
                        const hc_run *x = &runs[j];

                        if (x->run < s->run || (x->run == s->run && s->ended))
                                continue;         /* logged already */
                        if (x->run > expect)
                                missed += x->run - expect;      /* overwritten, or never whole */
                        else if (x->run < expect)
                                continue;
                        if (x->run != s->run || s->run == 0)
                                events[n_events++] = (RunEvent) { .at = x->seq, .run = *x };
                        if (x->how != HC_RUN_RUNNING) {
                                events[n_events++] = (RunEvent) {
                                        .at = x->ended_seq > x->seq ? x->ended_seq : x->seq,
                                        .end = true,
                                        .run = *x,
                                };
                        }
                        s->run = x->run;
                        s->ended = x->how != HC_RUN_RUNNING;
                        expect = x->run + 1;
                }
        }

        if (missed > 0)
                log_warning("%s: %" PRIu64 " runs ended before headcountd could read them "
                            "(more than %u runs of one seat between two looks): they are not in this log",
                            r->name, missed, HC_RUNS_PER_SEAT_KEPT);
        if (events && n_events > 0)
                qsort(events, n_events, sizeof *events, event_compare);
        for (size_t e = 0; events && e < n_events; e++) {
                count += events[e].end ? -1 : 1;
                if (count < 0)
                        count = 0;
                if (count > (int) r->capacity)
                        count = (int) r->capacity;
                log_run_event(r, &events[e], count);
        }
        free(events);
}
