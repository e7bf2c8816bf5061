/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's picture of the scope directory: which regions exist, who holds their
 * seats, and how it learns of every change at once.
 *
 * One inotify watch on the directory tells us about everything in it: a region file
 * linked into place (IN_CREATE, or IN_MOVED_TO), one removed (IN_DELETE, IN_MOVED_FROM),
 * and every open, close and write of a region file or of its lock files (".NAME.ID.K"),
 * since every join opens a description and writes its record and every leave or death
 * closes one. On such an event we list the region again through a handle that we keep
 * open; counting through it opens nothing, so our own counting does not feed the watch.
 *
 * Two things make an event alone too early or not enough:
 *  - On the last close, the kernel queues the close event before it drops the file's
 *    locks (__fput() notifies, locks_remove_file() comes later; Linux 3.15 to 6.x). When
 *    an event finds nothing changed we look again after 0.25, 0.5, 1, 2, 4 and 8 ms.
 *  - A holder that dies while a forked child shares its description closes nothing. So
 *    we also hold a pidfd for every live holder in our PID namespace: when it becomes
 *    readable the process is gone (its files were closed and its locks dropped before
 *    exit notification), and we reap the region, which also wakes every hc_wait() caller,
 *    and count again at once.
 * A seat given back through a handle that keeps its description for the next join closes
 * nothing; our handles are opened with HC_WATCH, so such a leave writes the header's poke
 * word, an IN_MODIFY. A re-check every HCD_RECHECK_USEC remains as the backstop.
 *
 * Another user's region is hostile input, and the loop never blocks on one: our handles
 * are opened with HC_LOCK_TRY, so a reap that finds the region lock held (a reader may
 * hold it) is tried again from a timer; each dispatch lists HCD_DISPATCH_SEATS seats'
 * worth at most; and a region whose listing is costly (thousands of held seats, bad
 * records), however often its owner pokes it, is listed at most a fifth of the time
 * (HCD_COST_SHARE). Other regions' events are seen meanwhile.
 *
 * A pidfd refers to the process we opened it for, but the PID we read from a record may
 * have been reused between the listing and pidfd_open(). That costs nothing worse than a
 * pidfd that never fires: the dead holder's close event and the re-checks still see the
 * seat go.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if HAVE_FLEET
#include "fleet-bridge.h"
#endif
#include "headcountd.h"
#include "instance.h"
#include "journal.h"
#include "log.h"
#include "notify.h"
#include "time-util.h"

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif

#define WATCH_MASK (IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_OPEN | \
                    IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_MODIFY | IN_DELETE_SELF |   \
                    IN_MOVE_SELF | IN_ONLYDIR)


static Holder *holder_free(Holder *h) {
        if (!h)
                return NULL;
        (void) sd_event_source_disable_unref(h->pidfd_source);
        free(h);
        return NULL;
}

static Region *region_free(Region *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_holders; i++)
                holder_free(r->holders[i]);
        free(r->holders);
        journal_stop(r);
        (void) hc_region_close(r->handle);
        free(r->name);
        free(r);
        return NULL;
}

static int name_compare(const void *key, const void *elem) {
        return strcmp(key, (*(Region * const *) elem)->name);
}

static int region_compare(const void *a, const void *b) {
        return strcmp((*(Region * const *) a)->name, (*(Region * const *) b)->name);
}

Region *manager_find_region(Manager *m, const char *name) {
        Region **found;

        if (m->n_regions == 0)
                return NULL;
        found = bsearch(name, m->regions, m->n_regions, sizeof(Region *), name_compare);
        return found ? *found : NULL;
}

static void manager_schedule_dispatch(Manager *m) {
        (void) sd_event_source_set_enabled(m->dispatch_source, SD_EVENT_ONESHOT);
}

/* Opens the region NAME with options that never create it. */
static int region_open_handle(Manager *m, const char *name, hc_region **ret) {
        hc_options o = m->options;
        struct stat st;
        char path[sizeof m->dir + HC_NAME_MAX + 2];

        /* "web.sock", the primary's socket, has a valid name but is no region. */
        (void) snprintf(path, sizeof path, "%s/%s", m->dir, name);
        if (lstat(path, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -ENOENT;

        /* HC_WATCH: leaves through other processes' handles, which keep their descriptors
         * open, then raise an IN_MODIFY on the region file for our watch. HC_ANY_OWNER:
         * root's daemon counts and reports the regions users make in the system scope, read
         * only and never mapped (validated on every read).
         * HC_LOCK_TRY: the loop never waits for a region lock, which anyone who can read
         * a region can hold (a read lock on its byte is enough to keep a writer out); a
         * reap that finds it held is tried again from a timer (region_reap()). */
        o.flags |= HC_NO_CREATE | HC_WATCH | HC_ANY_OWNER | HC_LOCK_TRY;
        return hc_region_open(name, &o, ret);
}

static void manager_untrack_region(Manager *m, Region *r) {
        size_t i;

        for (i = 0; i < m->n_regions; i++)
                if (m->regions[i] == r)
                        break;
        if (i == m->n_regions)
                return;
        memmove(m->regions + i, m->regions + i + 1, (m->n_regions - i - 1) * sizeof(Region *));
        m->n_regions--;

        log_info("Region '%s' was removed", r->name);
        if (r->count > 0)
                m->events.count_changed(m, r->name, 0);
        m->events.region_removed(m, r->name);
        region_free(r);
        m->events.changed(m);
}

int manager_track_region(Manager *m, const char *name, Region **ret) {
        hc_region *handle = NULL;
        Region *r, **a;
        int k;

        r = manager_find_region(m, name);
        if (r) {
                if (ret)
                        *ret = r;
                return 0;
        }
        if (hc_name_valid(name) < 0 || strchr(name, '\\'))
                return -EINVAL;

        k = region_open_handle(m, name, &handle);
        if (k < 0)
                return k;

        a = realloc(m->regions, (m->n_regions + 1) * sizeof(Region *));
        r = calloc(1, sizeof *r);
        if (a)
                m->regions = a;
        if (!a || !r || !(r->name = strdup(name))) {
                free(r);
                (void) hc_region_close(handle);
                return -ENOMEM;
        }
        r->manager = m;
        r->handle = handle;
        r->capacity = hc_region_capacity(handle);
        /* a region that appears while we watch: all its runs are news */
        if (journal_start(r, m->ready) < 0) {
                region_free(r);
                return -ENOMEM;
        }
        m->regions[m->n_regions++] = r;
        qsort(m->regions, m->n_regions, sizeof(Region *), region_compare);

        log_debug("Tracking region '%s' (%u seats)", name, r->capacity);
        m->events.region_added(m, name);
        k = region_refresh(r, NULL);
        if (k == -ENOENT)
                return k;                       /* gone again already, and untracked */
        if (ret)
                *ret = r;
        return 1;
}

/* The region was retired or replaced: open the name again, or forget it. */
static int region_reopen(Region *r) {
        Manager *m = r->manager;
        hc_region *handle = NULL;
        int k;

        k = region_open_handle(m, r->name, &handle);
        if (k == -ENOENT) {
                manager_untrack_region(m, r);
                return -ENOENT;
        }
        if (k < 0)
                return log_warning_errno(k, "Cannot open region '%s' again: %m", r->name);

        (void) hc_region_close(r->handle);
        r->handle = handle;
        r->capacity = hc_region_capacity(handle);
        /* another file under the name: its runs are all news */
        if (journal_start(r, true) < 0)
                return log_oom();
        return 0;
}

static int pidfd_open(pid_t pid) {
        return (int) syscall(__NR_pidfd_open, pid, 0);
}

/* Clears dead records and wakes hc_wait() callers. The region lock is tried once: when
 * another process holds it, the retry timer tries again (our count does not need the
 * reap: listing a region we may write clears dead records without the lock). */
static void region_reap(Region *r) {
        Manager *m = r->manager;
        int k;

        k = hc_region_reap(r->handle);
        r->reap_pending = k == -ETIMEDOUT;
        if (k < 0 && k != -EACCES && k != -ETIMEDOUT)
                log_debug("Cannot reap region '%s': %s", r->name, strerror(-k));
        if (r->reap_pending && m->reap_source &&
            sd_event_source_get_enabled(m->reap_source, NULL) == 0) {
                (void) sd_event_source_set_time(m->reap_source, now_usec() + HCD_LOCK_RETRY_USEC);
                (void) sd_event_source_set_enabled(m->reap_source, SD_EVENT_ONESHOT);
        }
}

static int on_reap_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        for (size_t i = 0; i < m->n_regions; i++) {
                Region *r = m->regions[i];

                if (!r->reap_pending)
                        continue;
                region_reap(r);
                if (!r->reap_pending) {
                        r->dirty = true;
                        manager_schedule_dispatch(m);
                }
        }
        return 0;
}

static int on_holder_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Holder *h = userdata;
        Region *r = h->region;

        h->exited = true;
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);

        /* Clears the dead record and wakes hc_wait() callers before we count, in this
         * iteration's dispatch, within its bound. */
        region_reap(r);
        r->dirty = true;
        r->settle_step = 0;
        manager_schedule_dispatch(r->manager);
        return 0;
}

/* The highest descriptor we let a pidfd have: the limit less a reserve for the regions,
 * their lock files and the bus, which the counts cannot do without. */
#define FD_RESERVE 256
static int fd_budget(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > INT_MAX)
                return INT_MAX;
        return rl.rlim_cur > 2 * FD_RESERVE ? (int) rl.rlim_cur - FD_RESERVE : (int) rl.rlim_cur / 2;
}

static void holder_watch(Holder *h) {
        const hc_instance *in = &h->instance;
        int fd, k;

        if (in->pid <= 0 || (in->flags & (HC_INSTANCE_OTHER_PIDNS | HC_INSTANCE_OTHER_BOOT)))
                return;                          /* its PID means nothing here */
        fd = pidfd_open(in->pid);
        if (fd >= 0 && fd >= fd_budget()) {
                /* keep descriptors for what counting needs: regions, lock files, the bus */
                (void) close(fd);
                fd = -1;
                errno = EMFILE;
        }
        if (fd < 0) {
                if (errno == ESRCH) {
                        /* Dead already, while a forked child (or nobody) holds the seat. */
                        h->exited = true;
                        h->region->dirty = true;
                        manager_schedule_dispatch(h->region->manager);
                } else if (errno == EMFILE || errno == ENFILE) {
                        static bool said;
                        /* Counts and events stay right without it: the seat's lock file
                         * is closed when the holder dies, and hc_region_departure() tells
                         * a death from a leave. Only the fast wake-up is lost. */
                        if (!said)
                                (void) log_warning_errno(-errno, "Out of descriptors to follow holders with (%m); "
                                            "their deaths are still seen, through the lock "
                                            "files, a little later");
                        said = true;
                } else
                        log_debug("Cannot open a pidfd for pid %i: %m", (int) in->pid);
                return;
        }
        k = sd_event_add_io(h->region->manager->event, &h->pidfd_source, fd, EPOLLIN,
                            on_holder_exit, h);
        if (k < 0) {
                (void) close(fd);
                log_debug("Cannot watch pid %i: %s", (int) in->pid, strerror(-k));
                return;
        }
        (void) sd_event_source_set_io_fd_own(h->pidfd_source, true);
        (void) sd_event_source_set_description(h->pidfd_source, "holder-pidfd");
}

/*
 * A record names the process that joined, and a seat's description may outlive it (a
 * script's background child keeps its fd 9 while the script's pid goes to somebody
 * else). So a holder is named as verified only when the kernel shows that it holds the
 * seat (hc_region_holder(), one process's descriptors, read once per join and per
 * change of pid); otherwise IN is marked HC_INSTANCE_UNVERIFIED for our logs and events.
 */
static void holder_prove(Region *r, hc_instance *in) {
        if (in->pid <= 0 || (in->flags & (HC_INSTANCE_NO_RECORD | HC_INSTANCE_OTHER_PIDNS |
                                          HC_INSTANCE_OTHER_BOOT | HC_INSTANCE_UNVERIFIED)))
                return;
        if (hc_region_holder(r->handle, in->slot, in->pid) != in->pid)
                in->flags |= HC_INSTANCE_UNVERIFIED;
}

/* Before READY=1: who holds a seat when we start, at debug level, named as
 * instance_describe() does: a PID from another namespace, from a record another user may
 * have written, or that the kernel does not show holding the seat (holder_prove()) is not
 * presented as a fact. Joins and leaves from then on are the journal's (journal.c). */
static void log_holder(Region *r, const hc_instance *in) {
        char who[INSTANCE_DESCRIPTION_MAX];

        instance_describe(in, who, sizeof who);
        log_region_event(LOG_DEBUG, "join", r->name, in, r->count,
                         "%s: %s holds slot %u", r->name, who, in->slot);
}

static Holder *holder_new(Region *r, const hc_instance *in) {
        Holder *h = calloc(1, sizeof *h);

        if (!h)
                return NULL;
        h->region = r;
        h->instance = *in;
        holder_watch(h);
        return h;
}

/*
 * Lists the region again and brings the holders up to date, logging each join and leave
 * and signalling a change of the count. Returns 1 when the count changed, 0 when not,
 * -ENOENT when the region is gone (R is then freed), or another error. With RET_LIST the
 * fresh listing is handed to the caller (free() it).
 */
int region_refresh(Region *r, hc_instance **ret_list) {
        Manager *m = r->manager;
        hc_instance *list = NULL;
        Holder **next, **gone;
        size_t n_next = 0, n_gone = 0, i = 0;
        int n, old, k;

        if (hc_region_retired(r->handle)) {
                k = region_reopen(r);
                if (k < 0)
                        return k;
        }

        n = hc_region_list(r->handle, &list);
        if (n < 0)
                return log_warning_errno(n, "Cannot list region '%s': %m", r->name);

        next = calloc((size_t) n + r->n_holders + 1, sizeof(Holder *));
        gone = calloc(r->n_holders + 1, sizeof(Holder *));
        if (!next || !gone) {
                free(next);
                free(gone);
                free(list);
                return log_oom();
        }

        /* Both lists are in seat order: merge them. A seat whose record is being written
         * keeps the holder we knew, if any; its write is an event that brings us back. */
        for (int j = 0; j < n; j++) {
                hc_instance *in = list + j;
                Holder *h;

                while (i < r->n_holders && r->holders[i]->instance.slot < in->slot)
                        gone[n_gone++] = r->holders[i++];
                h = i < r->n_holders && r->holders[i]->instance.slot == in->slot ?
                        r->holders[i] : NULL;

                if (in->flags & HC_INSTANCE_NO_RECORD) {
                        if (h) {
                                next[n_next++] = h;
                                i++;
                        }
                        continue;
                }
                if (h && h->instance.seq == in->seq) {
                        if (h->instance.pid != in->pid) {
                                /* hc_slot_set_pid(): a wrapper handed the seat on. */
                                h->pidfd_source = sd_event_source_disable_unref(h->pidfd_source);
                                holder_prove(r, in);
                                h->instance = *in;
                                h->exited = false;
                                holder_watch(h);
                        } else {
                                /* proven once, at its join: what we found then stays */
                                in->flags |= h->instance.flags & HC_INSTANCE_UNVERIFIED;
                                h->instance = *in;
                        }
                        next[n_next++] = h;
                        i++;
                        continue;
                }
                if (h) {
                        gone[n_gone++] = h;      /* a new holder took the same seat */
                        i++;
                }
                holder_prove(r, in);
                h = holder_new(r, in);
                if (h)
                        next[n_next++] = h;
                else
                        (void) log_oom();       /* counted, but not followed */
                if (!m->ready)
                        log_holder(r, in);       /* joins and leaves are the journal's */
        }
        while (i < r->n_holders)
                gone[n_gone++] = r->holders[i++];

        for (size_t g = 0; g < n_gone; g++)
                holder_free(gone[g]);
        free(r->holders);
        r->holders = next;
        r->n_holders = n_next;

        /* every run that began or ended since the last look, from the seats' own rings:
         * the listing only samples who holds a seat now */
        journal_read(r, list, n);

        old = r->count;
        r->count = n;
        k = old != n;
        if (k) {
                m->events.count_changed(m, r->name, n);
                m->events.changed(m);
        }
        if (ret_list)
                *ret_list = list;
        else
                free(list);
        free(gone);
        return k;
}

/* After an event that changed nothing, looks again a little later (see the top). */
static void region_settle(Region *r, bool changed) {
        if (changed || r->settle_step >= HCD_SETTLE_STEPS) {
                r->settle_usec = 0;
                return;
        }
        r->settle_usec = now_usec() + ((uint64_t) HCD_SETTLE_FIRST_USEC << r->settle_step);
        r->settle_step++;
}

static void manager_arm_settle(Manager *m) {
        uint64_t next = 0;

        for (size_t i = 0; i < m->n_regions; i++)
                if (m->regions[i]->settle_usec && (!next || m->regions[i]->settle_usec < next))
                        next = m->regions[i]->settle_usec;
        if (!next) {
                (void) sd_event_source_set_enabled(m->settle_source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(m->settle_source, next);
        (void) sd_event_source_set_enabled(m->settle_source, SD_EVENT_ONESHOT);
}

/*
 * Counts the regions marked dirty, HCD_DISPATCH_SEATS seats' worth at most (and at least
 * one region): a region that does not fit stays dirty, and the dispatch runs again in the
 * next iteration of the loop, after the events that came meanwhile, starting with it; the
 * smaller ones after it that fit go on now. So every dirty region has its turn however
 * busy the others are. A region that was costly to list waits its not_before_usec
 * (HCD_COST_SHARE). A refresh may untrack a region: the index then names the next one.
 */
static int on_dispatch(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        size_t i = m->dispatch_next, left = m->n_regions;
        bool deferred = false;
        unsigned spent = 0;

        for (; left > 0 && m->n_regions > 0; left--) {
                size_t before = m->n_regions;
                uint64_t t0, t1;
                Region *r;
                int k;

                if (i >= m->n_regions)
                        i = 0;
                r = m->regions[i];
                if (!r->dirty) {
                        i++;
                        continue;
                }
                if (r->not_before_usec > now_usec()) {
                        /* listed a moment ago at a cost: it stays dirty until its turn */
                        if (!r->settle_usec || r->settle_usec < r->not_before_usec)
                                r->settle_usec = r->not_before_usec;
                        i++;
                        continue;
                }
                if (spent > 0 && spent + r->capacity > HCD_DISPATCH_SEATS) {
                        /* next iteration, first; smaller regions after it go on now */
                        if (!deferred)
                                m->dispatch_next = i;
                        deferred = true;
                        i++;
                        continue;
                }
                spent += r->capacity;
                r->dirty = false;
                t0 = now_usec();
                k = region_refresh(r, NULL);
                if (m->n_regions < before)
                        continue;               /* r was untracked: i is the next one */
                t1 = now_usec();
                r->not_before_usec = t1 - t0 > HCD_COST_FREE_USEC ? t1 + HCD_COST_SHARE * (t1 - t0) : 0;
                if (k >= 0)
                        region_settle(r, k > 0);
                i++;
        }
        if (deferred)
                manager_schedule_dispatch(m);
        else
                m->dispatch_next = i;
        manager_arm_settle(m);
        return 0;
}

static int on_settle(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t now = now_usec();

        for (size_t i = 0; i < m->n_regions; i++)
                if (m->regions[i]->settle_usec && m->regions[i]->settle_usec <= now) {
                        m->regions[i]->settle_usec = 0;
                        m->regions[i]->dirty = true;
                }
        return on_dispatch(NULL, m);
}

static int manager_scan(Manager *m);

static int on_recheck(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) sd_event_source_set_time(s, usec + HCD_RECHECK_USEC);
        if (m->rescan) {
                m->rescan = false;
                (void) manager_scan(m);  /* marks every region dirty too */
                return 0;
        }
        for (size_t i = 0; i < m->n_regions; i++)
                m->regions[i]->dirty = true;
        manager_schedule_dispatch(m);
        return 0;
}

/* A file of the scope that we do not follow. A file that is no region (-EBADMSG: empty,
 * another program's, damaged) or one we may not trust (-EPERM) is the directory's
 * business, not news: quietly, at debug level. Anything else is worth a warning. */
static void log_ignored(Manager *m, const char *name, int error) {
        /* A region we could not open for want of descriptors or memory is not the
         * directory's business: the next re-check scans the directory again for it. */
        if (error == -EMFILE || error == -ENFILE || error == -ENOMEM || error == -EAGAIN)
                m->rescan = true;
        if (error == -EBADMSG || error == -EPERM)
                log_debug("Ignoring '%s': %s", name, strerror(-error));
        else
                log_warning("Ignoring region '%s': %s", name, strerror(-error));
}

static int scan_one(const char *name, int count, void *userdata) {
        Manager *m = userdata;
        int k;

        if (count < 0) {
                log_ignored(m, name, count);
                return 0;
        }
        k = manager_track_region(m, name, NULL);
        if (k < 0 && k != -ENOENT)
                log_ignored(m, name, k);
        return 0;
}

/* Tracks every region in the directory and forgets those that are no longer there. */
static int manager_scan(Manager *m) {
        int k;

        for (size_t i = 0; i < m->n_regions; i++)
                m->regions[i]->dirty = true;
        k = hc_names(&m->options, scan_one, m);
        if (k < 0)
                return log_error_errno(k, "Cannot list the regions in %s: %m", m->dir);
        manager_schedule_dispatch(m);
        return 0;
}

/* ".NAME.0123456789abcdef.K" and ".NAME.0123456789abcdef.tmp" belong to region NAME. */
/* The region a lock file (or a handed seat's own lock file, closed when a command that
 * outlived its wrapper ends) belongs to, as the library names them. */
static Region *region_of_lock_file(Manager *m, const char *file) {
        char name[HC_NAME_MAX + 1];
        int kind = hc_file_region(file, name, sizeof name);

        if (kind != HC_FILE_LOCK && kind != HC_FILE_SEAT)
                return NULL;
        return manager_find_region(m, name);
}

static int on_directory_event(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        Manager *m = userdata;
        Region *r;
        int k;

        if (ev->mask & IN_Q_OVERFLOW) {
                log_debug("The inotify queue overflowed; scanning %s again", m->dir);
                (void) manager_scan(m);         /* the event is handled whatever the scan found */
                return 0;
        }
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
                log_error("The scope directory %s was removed; exiting", m->dir);
                return sd_event_exit(m->event, EXIT_FAILURE);
        }
        if (ev->len == 0 || ev->name[0] == '\0')
                return 0;

        if (ev->name[0] == '.') {
                r = region_of_lock_file(m, ev->name);
                if (!r || (ev->mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)))
                        return 0;
                r->dirty = true;
                r->settle_step = 0;
                manager_schedule_dispatch(m);
                return 0;
        }

        r = manager_find_region(m, ev->name);
        if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
                if (r) {
                        /* A name we knew now names another file. */
                        k = region_reopen(r);
                        if (k >= 0) {
                                r->dirty = true;
                                manager_schedule_dispatch(m);
                        }
                        return 0;
                }
                k = manager_track_region(m, ev->name, NULL);
                if (k < 0 && k != -ENOENT && k != -EINVAL)
                        log_ignored(m, ev->name, k);
                if (k > 0)
                        log_info("Region '%s' appeared", ev->name);
                return 0;
        }
        if (!r)
                return 0;
        if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
                (void) region_reopen(r);         /* untracks it when the name is gone */
                return 0;
        }
        r->dirty = true;
        r->settle_step = 0;
        manager_schedule_dispatch(m);
        return 0;
}

int manager_monitor_start(Manager *m) {
        int k;

        k = sd_event_add_inotify(m->event, &m->inotify_source, m->dir, WATCH_MASK,
                                 on_directory_event, m);
        if (k < 0)
                return log_error_errno(k, "Cannot watch %s: %m", m->dir);
        (void) sd_event_source_set_description(m->inotify_source, "scope-directory");

        /* Runs after every pending inotify event: one count per region per batch. */
        k = sd_event_add_defer(m->event, &m->dispatch_source, on_dispatch, m);
        if (k < 0)
                return log_error_errno(k, "Cannot add an event source: %m");
        (void) sd_event_source_set_priority(m->dispatch_source, SD_EVENT_PRIORITY_IDLE);
        (void) sd_event_source_set_enabled(m->dispatch_source, SD_EVENT_OFF);

        /* An accuracy of 1 us: the default slack of 250 ms would defeat the purpose. */
        k = sd_event_add_time(m->event, &m->settle_source, CLOCK_MONOTONIC, 0, 1, on_settle, m);
        if (k < 0)
                return log_error_errno(k, "Cannot add a timer: %m");
        (void) sd_event_source_set_enabled(m->settle_source, SD_EVENT_OFF);

        k = sd_event_add_time(m->event, &m->recheck_source, CLOCK_MONOTONIC,
                              now_usec() + HCD_RECHECK_USEC, HCD_RECHECK_USEC / 10, on_recheck, m);
        if (k < 0)
                return log_error_errno(k, "Cannot add a timer: %m");
        (void) sd_event_source_set_enabled(m->recheck_source, SD_EVENT_ON);

        k = sd_event_add_time(m->event, &m->reap_source, CLOCK_MONOTONIC, 0, HCD_LOCK_RETRY_USEC / 10,
                              on_reap_retry, m);
        if (k < 0)
                return log_error_errno(k, "Cannot add a timer: %m");
        (void) sd_event_source_set_enabled(m->reap_source, SD_EVENT_OFF);

        /* The watch is in place before we look, so nothing falls between the two. */
        return manager_scan(m);
}

void manager_monitor_stop(Manager *m) {
        for (size_t i = 0; i < m->n_regions; i++)
                region_free(m->regions[i]);
        free(m->regions);
        m->regions = NULL;
        m->n_regions = 0;
        m->inotify_source = sd_event_source_disable_unref(m->inotify_source);
        m->dispatch_source = sd_event_source_disable_unref(m->dispatch_source);
        m->settle_source = sd_event_source_disable_unref(m->settle_source);
        m->recheck_source = sd_event_source_disable_unref(m->recheck_source);
        m->reap_source = sd_event_source_disable_unref(m->reap_source);
}

void manager_totals(Manager *m, unsigned *ret_regions, unsigned *ret_instances) {
        unsigned regions = 0, instances = 0;

        for (size_t i = 0; i < m->n_regions; i++) {
                regions++;
                instances += (unsigned) m->regions[i]->count;
        }
        *ret_regions = regions;
        *ret_instances = instances;
}

