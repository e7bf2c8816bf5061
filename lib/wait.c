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
 * Closing an inotify instance waits for an SRCU grace period in the kernel (5 to 20 ms
 * measured here), which would come straight after the wake-up we are trying to deliver
 * fast, so one spare instance per process is kept and reused, its watches removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
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

static void drain(int ifd) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

        while (read(ifd, buf, sizeof buf) > 0)
                ;
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

/* Watches the region file and every lock file; on any failure, falls back to re-checks. */
static void waiter_arm(struct waiter *w) {
        hc_region *h = w->h;

        w->ready = true;
        if (NO_INOTIFY)
                return;
        w->ifd = spare_take();
        if (w->ifd < 0)
                return;
        drain(w->ifd);
        if (watch(w, h->r.fd) < 0)
                goto fail;
        for (unsigned k = 0; k < h->n_files; k++) {
                int fd;
                if (handle_query_fd(h, k, &fd) < 0 || watch(w, fd) < 0)
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
}

void waiter_done(struct waiter *w) {
        if (w->ifd >= 0) {
                /* remove our watches, so that the instance is clean for the next user */
                for (unsigned i = 0; i < w->n_wd; i++)
                        (void) inotify_rm_watch(w->ifd, w->wd[i]);
                w->n_wd = 0;
                drain(w->ifd);
                spare_put(TAKE_FD(w->ifd));
        }
        w->ready = false;
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
        r = ppoll(&(struct pollfd) { .fd = w->ifd, .events = POLLIN }, 1, &ts, NULL);
        if (r < 0 && errno != EINTR)
                return -errno;
        if (r > 0) {
                drain(w->ifd);
                w->recent = true;
                w->step = 0;
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
