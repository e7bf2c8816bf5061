/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Waiting for the count to change, without a daemon and without a polling loop.
 *
 * Every join opens a description of a lock file and every leave or death closes one, so
 * an inotify watch on the region's files (IN_OPEN, IN_CLOSE_*, and IN_MODIFY for record
 * writes and pokes) wakes a waiter at once, SIGKILL included. Two kernel details shape
 * the loop:
 *
 *  - On the last close, __fput() sends the close event before it drops the file's locks
 *    (locks_remove_file() comes later; Linux 3.15 to 6.x). A waiter that wakes on an event
 *    and finds nothing changed looks again after 0.05, 0.1, 0.2, ... 6.4 ms before it goes
 *    back to sleep, instead of sleeping through the release.
 *  - A seat given back without a close sends no event: a leave through a handle (which
 *    keeps its description for the next join) and a joiner's leave while a forked child
 *    still shares the description. The first pokes the region (region_poke(): an
 *    IN_MODIFY, and a futex wake) when the waiters hint is non-zero. The second is caught
 *    by the bounded re-check every HC_WAIT_RECHECK_MS.
 *
 * Without inotify (instances exhausted, or no /proc to name the files by), a waiter with
 * a mapping sleeps on the generation futex, bounded by the same re-check.
 *
 * A reader (who may read the region but not open its lock files, count.c) cannot watch
 * the lock files: inotify_add_watch() needs read permission. It watches the scope
 * directory instead, which reports the same opens and closes of every file in it, and
 * wakes only for events on the region's own names (NAME and .NAME.*); where the directory
 * cannot be read either, the region file alone (every join by name opens it, and its
 * holder's exit closes it). A reader cannot raise the waiters hint, so a seat given back
 * through a handle that stays open reaches it at the next re-check.
 *
 * Closing an inotify instance waits for an SRCU grace period in the kernel (5 to 20 ms
 * measured here), which would come straight after the wake-up we are trying to deliver
 * fast, so one spare instance per process is kept and reused, its watches removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "count.h"
#include "hc-internal.h"
#include "proc.h"
#include "util.h"
#include "wait.h"

#define WATCH_MASK (IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_MODIFY | IN_ATTRIB | \
                    IN_DELETE_SELF)
#define BACKOFF_STEPS 8

static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static int spare_ifd = -1;
static uint64_t spare_epoch;

#ifdef HC_TEST_HOOKS
bool hc_test_no_inotify;        /* tests: behave as if inotify could not be had */
#define NO_INOTIFY hc_test_no_inotify
#else
#define NO_INOTIFY false
#endif

/* Reads every queued event; true when one concerns PREFIX's region: on a watched file
 * itself (the directory DIR_WD's own opens are every caller's), or a name in a watched
 * directory that is NAME or starts with ".NAME." (PREFIX is ".NAME."; NULL: every event
 * counts). */
static bool drain(int ifd, const char *prefix, int dir_wd) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool any = false;
        ssize_t n;

        while ((n = read(ifd, buf, sizeof buf)) > 0) {
                size_t len = prefix ? strlen(prefix) : 0;

                if (!prefix) {
                        any = true;
                        continue;
                }
                for (size_t off = 0; off + sizeof(struct inotify_event) <= (size_t) n;) {
                        const struct inotify_event *ev = (const struct inotify_event *) (buf + off);

                        if (ev->len > (size_t) n - off - sizeof *ev)
                                break;
                        if ((ev->len == 0 && ev->wd != dir_wd) || (ev->mask & IN_Q_OVERFLOW) ||
                            strncmp(ev->name, prefix, len) == 0 ||
                            (strncmp(ev->name, prefix + 1, len - 2) == 0 && ev->name[len - 2] == '\0'))
                                any = true;
                        off += sizeof *ev + ev->len;
                }
        }
        return any;
}

static int spare_take(void) {
        int fd = -EBADF, stale = -EBADF;

        (void) pthread_mutex_lock(&spare_lock);
        if (spare_ifd >= 0) {
                if (spare_epoch == self_epoch())
                        fd = spare_ifd;
                else
                        stale = spare_ifd;        /* the parent's: only our reference goes */
                spare_ifd = -1;
        }
        (void) pthread_mutex_unlock(&spare_lock);
        safe_close(stale);
        if (fd < 0) {
                fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
                fd = fd < 0 ? -errno : fd_above_stdio(fd);
        }
        return fd;
}

static void spare_put(int fd) {
        (void) pthread_mutex_lock(&spare_lock);
        if (spare_ifd < 0) {
                spare_ifd = TAKE_FD(fd);
                spare_epoch = self_epoch();
        }
        (void) pthread_mutex_unlock(&spare_lock);
        safe_close(fd);
}

static int watch(struct waiter *w, int fd) {
        char self[64];
        int wd;

        (void) fd_path(self, sizeof self, fd, NULL);
        wd = inotify_add_watch(w->ifd, self, WATCH_MASK);
        if (wd < 0 || w->n_wd >= ELEMENTSOF(w->wd))
                return -errno;
        w->wd[w->n_wd++] = wd;
        return 0;
}

/* Watches the region file and every lock file (a reader: the directory); on any
 * failure, falls back to re-checks. */
static void waiter_arm(struct waiter *w) {
        hc_region *h = w->h;

        w->ready = true;
        if (NO_INOTIFY)
                return;
        w->ifd = spare_take();
        if (w->ifd < 0)
                return;
        (void) drain(w->ifd, NULL, -1);
        if (watch(w, h->r.fd) < 0)
                goto fail;
        for (unsigned k = 0; k < h->n_files; k++) {
                int fd, q;

                q = handle_query_fd(h, k, &fd);
                if (q == -EACCES) {
                        /* a reader: the directory tells of its files' opens and closes */
                        if (snprintf(w->prefix, sizeof w->prefix, ".%s.", h->sc.name) < (int) sizeof w->prefix &&
                            h->dirfd >= 0 && watch(w, h->dirfd) == 0) {
                                w->filter = true;
                                w->dir_wd = w->wd[w->n_wd - 1];
                        }
                        return;           /* else the region file's events, and re-checks */
                }
                if (q < 0 || watch(w, fd) < 0)
                        goto fail;
        }
        return;
fail:
        w->ifd = safe_close(w->ifd);      /* watches go with the instance */
        w->n_wd = 0;
}

void waiter_init(struct waiter *w, hc_region *h) {
        /* field by field: wd[] is filled up to n_wd, and a join that gets its seat at
         * once never arms the waiter */
        w->h = h;
        w->ifd = -EBADF;
        w->n_wd = 0;
        w->ready = w->recent = false;
        w->step = 0;
        w->dir_wd = -1;
        w->filter = false;
}

void waiter_done(struct waiter *w) {
        if (w->ifd >= 0) {
                /* remove our watches, so that the instance is clean for the next user */
                for (unsigned i = 0; i < w->n_wd; i++)
                        (void) inotify_rm_watch(w->ifd, w->wd[i]);
                w->n_wd = 0;
                (void) drain(w->ifd, NULL, -1);
                spare_put(TAKE_FD(w->ifd));
        }
        w->ready = false;
        w->filter = false;
}

int waiter_sleep(struct waiter *w, int64_t deadline, uint32_t generation) {
        int64_t cap = HC_WAIT_RECHECK_MS * 1000;
        struct timespec ts;
        int r;

        if (!w->ready) {
                waiter_arm(w);
                return 0;                 /* look again: we may have missed one */
        }
        if (w->recent && w->step < BACKOFF_STEPS)
                cap = (int64_t) 50 << w->step++;
        else {
                w->recent = false;
                w->step = 0;
        }
        r = deadline_wait(deadline, cap, &ts);
        if (r < 0)
                return r;
        if (w->ifd < 0) {
                if (w->recent || region_futex_wait(&w->h->r, generation, &ts) < 0)
                        (void) nanosleep(&ts, NULL);
                return 0;
        }
        {
                /* events on other regions' files of a watched directory are not ours:
                 * sleep on, to the same end */
                int64_t end = monotonic_usec() + (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;

                for (;;) {
                        r = ppoll(&(struct pollfd) { .fd = w->ifd, .events = POLLIN }, 1, &ts, NULL);
                        if (r < 0 && errno != EINTR)
                                return -errno;
                        if (r <= 0)
                                break;
                        if (drain(w->ifd, w->filter ? w->prefix : NULL, w->filter ? w->dir_wd : -1)) {
                                w->recent = true;
                                w->step = 0;
                                break;
                        }
                        int64_t left = end - monotonic_usec();
                        if (left <= 0)
                                break;
                        ts.tv_sec = (time_t) (left / 1000000);
                        ts.tv_nsec = (long) (left % 1000000) * 1000;
                }
        }
        return 0;
}

int handle_wait(hc_region *h, bool change, unsigned value, int timeout_ms) {
        int64_t deadline = deadline_from(timeout_ms);
        struct waiter w;
        int r;

        waiter_init(&w, h);
        region_word_add(&h->r, WORD_WAITERS, 1);
        for (;;) {
                uint32_t gen = region_word(&h->r, WORD_GENERATION);

                if (handle_retired(h)) {
                        /* retired: nobody is in it, and nobody ever will be again */
                        r = change && value == 0 ? -ESTALE : 0;
                        break;
                }
                r = handle_count(h, false, NULL);
                if (r < 0 || (change ? (unsigned) r != value : (unsigned) r < value))
                        break;
                r = waiter_sleep(&w, deadline, gen);
                if (r < 0)
                        break;
        }
        waiter_done(&w);
        region_word_add(&h->r, WORD_WAITERS, -1);
        return r;
}
