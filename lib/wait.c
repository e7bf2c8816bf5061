/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Waiting for the count to change, without a daemon and without a polling loop.
 *
 * Every join opens a description of a region file and every leave or death closes one,
 * so an inotify watch on the files (IN_OPEN, IN_CLOSE_*, and IN_MODIFY for record writes
 * and pokes) wakes a waiter at once, SIGKILL included. Two kernel details shape the loop:
 *
 *  - On the last close, __fput() sends the close event before it drops the file's locks
 *    (locks_remove_file() comes later; Linux 3.15 to 6.x). A waiter that wakes on an event
 *    and finds nothing changed looks again after 0.05, 0.1, 0.2, ... 6.4 ms before it goes
 *    back to sleep, instead of sleeping through the release.
 *  - A seat given back without a close sends no event: a leave through a handle (which
 *    keeps its description for the next join) and a joiner's leave while a forked child
 *    still shares the description. The first writes the header's poke word with pwrite()
 *    when waiters is non-zero, which is an IN_MODIFY, and wakes futex waiters on the
 *    generation word. The second is caught by the bounded re-check every
 *    HC_WAIT_RECHECK_MS.
 *
 * Without inotify (instances exhausted, or no /proc to name the file by), a waiter with a
 * writable mapping sleeps on the generation futex, bounded by the same re-check.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "hc-internal.h"
#include "region.h"

#define WATCH_MASK (IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_MODIFY | IN_ATTRIB | \
                    IN_DELETE_SELF)
#define BACKOFF_STEPS 8

int64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* 0: do not wait; -1: forever; else an absolute CLOCK_MONOTONIC time in microseconds. */
int64_t deadline_from(int timeout_ms) {
        if (timeout_ms == 0)
                return 0;
        if (timeout_ms < 0)
                return -1;
        return now_usec() + (int64_t) timeout_ms * 1000;
}

/*
 * Closing the last descriptor of an inotify instance waits for an SRCU grace period in
 * the kernel (fsnotify_destroy_group(), measured here at 5 to 20 ms), which would come
 * straight after the wake-up we are trying to deliver fast. So we keep one spare
 * instance per process and reuse it, watches removed; a child after fork() never uses
 * its parent's.
 */
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static int spare_ifd = -1;
static uint64_t spare_epoch;

static void drain(int ifd) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

        while (read(ifd, buf, sizeof buf) > 0)
                ;
}

#ifdef HC_TEST_HOOKS
bool hc_test_no_inotify;        /* tests: behave as if inotify could not be had */
#endif

int waiter_init(struct waiter *w, const int *fds, unsigned n) {
        int stale = -EBADF;

        w->n_wd = 0;
        w->ifd = -EBADF;
#ifdef HC_TEST_HOOKS
        if (hc_test_no_inotify)
                return 0;
#endif
        (void) pthread_mutex_lock(&spare_lock);
        if (spare_ifd >= 0) {
                if (spare_epoch == self_epoch())
                        w->ifd = spare_ifd;
                else
                        stale = spare_ifd;        /* the parent's: only our reference goes */
                spare_ifd = -1;
        }
        (void) pthread_mutex_unlock(&spare_lock);
        safe_close(stale);
        if (w->ifd < 0)
                w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->ifd < 0)
                return 0;                 /* fall back to the bounded re-check */
        drain(w->ifd);
        for (unsigned i = 0; i < n && i < ELEMENTSOF(w->wd); i++) {
                char self[64];
                int wd;

                (void) snprintf(self, sizeof self, "/proc/self/fd/%d", fds[i]);
                wd = inotify_add_watch(w->ifd, self, WATCH_MASK);
                if (wd < 0) {
                        waiter_done(w);
                        w->ifd = -EBADF;
                        return 0;
                }
                w->wd[w->n_wd++] = wd;
        }
        return 0;
}

void waiter_done(struct waiter *w) {
        if (w->ifd < 0)
                return;
        for (unsigned i = 0; i < w->n_wd; i++)
                (void) inotify_rm_watch(w->ifd, w->wd[i]);
        w->n_wd = 0;
        drain(w->ifd);
        (void) pthread_mutex_lock(&spare_lock);
        if (spare_ifd < 0) {
                spare_ifd = TAKE_FD(w->ifd);
                spare_epoch = self_epoch();
        }
        (void) pthread_mutex_unlock(&spare_lock);
        w->ifd = safe_close(w->ifd);
}

/*
 * Sleeps until an event, the next re-check, or DEADLINE (-ETIMEDOUT). *RECENT carries the
 * back-off state between calls: true right after an event.
 */
int waiter_sleep(struct waiter *w, int64_t deadline, bool recent, bool *ret_event) {
        static __thread unsigned step;
        int64_t wait_us = HC_WAIT_RECHECK_MS * 1000, now = now_usec();
        struct timespec ts;
        int r;

        if (deadline == 0)
                return -ETIMEDOUT;
        if (recent) {
                if (step < BACKOFF_STEPS)
                        wait_us = (int64_t) 50 << step++;
        } else
                step = 0;
        if (deadline > 0) {
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (deadline - now < wait_us)
                        wait_us = deadline - now;
        }
        ts = (struct timespec) { .tv_sec = wait_us / 1000000, .tv_nsec = (wait_us % 1000000) * 1000 };

        if (w->ifd < 0) {
                (void) nanosleep(&ts, NULL);
                *ret_event = false;
                return 0;
        }
        r = ppoll(&(struct pollfd) { .fd = w->ifd, .events = POLLIN }, 1, &ts, NULL);
        if (r < 0 && errno != EINTR)
                return -errno;
        if (r > 0) {
                drain(w->ifd);
                step = 0;
                *ret_event = true;
        } else
                *ret_event = recent && step < BACKOFF_STEPS;
        return 0;
}

/* Tells waiters that a seat was given back without a close. */
void handle_poke(hc_region *rg) {
        uint32_t one = 1;

        if (!rg->writable || __atomic_load_n(&rg->hdr->waiters, __ATOMIC_ACQUIRE) == 0)
                return;
        __atomic_add_fetch(&rg->hdr->generation, 1, __ATOMIC_RELEASE);
        (void) syscall(SYS_futex, &rg->hdr->generation, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
        (void) pwrite(rg->fd, &one, sizeof one, (off_t) offsetof(struct hc_region_header, poke));
}

static int futex_sleep(hc_region *rg, uint32_t seen, int64_t deadline) {
        int64_t wait_us = HC_WAIT_RECHECK_MS * 1000, now = now_usec();
        struct timespec ts;

        if (deadline == 0)
                return -ETIMEDOUT;
        if (deadline > 0) {
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (deadline - now < wait_us)
                        wait_us = deadline - now;
        }
        ts = (struct timespec) { .tv_sec = wait_us / 1000000, .tv_nsec = (wait_us % 1000000) * 1000 };
        (void) syscall(SYS_futex, &rg->hdr->generation, FUTEX_WAIT, seen, &ts, NULL, 0);
        return 0;
}

/* Sleeps until the count is below BELOW (CHANGE false) or differs from it (CHANGE true). */
static int handle_wait_until(hc_region *rg, bool change, unsigned value, int timeout_ms) {
        int64_t deadline = deadline_from(timeout_ms);
        struct waiter w = { .ifd = -EBADF };
        bool ready = false, recent = false;
        int r;

        if (rg->writable)
                __atomic_add_fetch(&rg->hdr->waiters, 1, __ATOMIC_ACQ_REL);
        for (;;) {
                uint32_t gen = __atomic_load_n(&rg->hdr->generation, __ATOMIC_ACQUIRE);

                if (handle_retired(rg)) {
                        r = 0;                    /* retired: nobody is in it */
                        if (!change || value != 0)
                                break;
                        r = -ESTALE;              /* and it never will be again */
                        break;
                }
                r = handle_count(rg, false, NULL);
                if (r < 0 || (change ? (unsigned) r != value : (unsigned) r < value))
                        break;
                if (!ready) {
                        r = waiter_init(&w, rg->file_fd, rg->n_files);
                        if (r < 0)
                                break;
                        ready = true;
                        continue;                 /* count again: we may have missed one */
                }
                if (w.ifd < 0 && rg->writable && !recent)
                        r = futex_sleep(rg, gen, deadline);
                else
                        r = waiter_sleep(&w, deadline, recent, &recent);
                if (r < 0)
                        break;
        }
        if (ready)
                waiter_done(&w);
        if (rg->writable)
                __atomic_sub_fetch(&rg->hdr->waiters, 1, __ATOMIC_ACQ_REL);
        return r;
}

int handle_wait(hc_region *rg, unsigned below, int timeout_ms) {
        return handle_wait_until(rg, false, below, timeout_ms);
}

_hc_public_ int hc_region_wait_change(hc_region *rg, unsigned seen, int timeout_ms) {
        hc_assert_return(rg && timeout_ms >= -1, -EINVAL);
        return handle_wait_until(rg, true, seen, timeout_ms);
}
