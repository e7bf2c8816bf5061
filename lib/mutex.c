/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The region lock. It guards what really is shared state: retirement, the repair pass,
 * the seeding of a shared section, and the user data (hc_region_lock()). Seats never
 * need it.
 *
 * It is an OFD write lock on the byte HC_LOCK_MUTEX of lock file 0, not a pthread
 * mutex in the file: another user may be able to write those bytes, and glibc follows
 * the robust-list pointers inside a process-shared mutex, so a mutex in a writable file
 * lets its writer make every locker write where it wants. The kernel lock lives in the
 * kernel: no write to the file can touch it, and the kernel drops it when its holder
 * dies, however it dies. It is not on the region file, which whoever may read the region
 * can open: a read lock there would keep every locker out. Lock file 0 can be opened only
 * by those who may write the region (create.c).
 *
 * "Died inside" is a marker: the holder sets lock_held after taking the lock and clears
 * it before letting go, so a locker that finds it set knows the last holder died with
 * the lock, and runs the repair pass (count.c: clear dead records, wake waiters). For the
 * user data there is a second marker (data_locked, data.c), because the repair pass may
 * be run by an internal locker while the user data is still half-written. A writer who
 * sets a marker by hand only causes a needless repair.
 *
 * OFD locks belong to the open file description, and threads share descriptions, so the
 * threads of a process first take a process-local mutex (in our memory, not the file);
 * after fork() the child opens a description of its own. A finite wait for the kernel
 * lock looks again with a short back-off (util.c); a wait without end sleeps in the
 * kernel. A hostile writer can hold the lock: then lockers time out (the same as a
 * hostile holder of seats: service denied, nobody crashed or wedged).
 */
#include <errno.h>
#include <fcntl.h>
#include <time.h>

#include "format.h"
#include "hc-internal.h"
#include "mutex.h"
#include "proc.h"
#include "util.h"

#ifdef HC_TEST_HOOKS
/* When > 0, caps every lock's bound: a fuzzed region must not cost seconds per input. */
int hc_test_lock_timeout_ms;
#endif

void mutex_init(struct mutex *m) {
        pthread_mutexattr_t attr;

        (void) pthread_mutexattr_init(&attr);
        (void) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
        (void) pthread_mutex_init(&m->local, &attr);
        (void) pthread_mutexattr_destroy(&attr);
        m->fd = -EBADF;
        m->epoch = self_epoch();
        m->for_data = false;
        m->held = false;
}

void mutex_done(struct mutex *m) {
        m->fd = safe_close(m->fd);
        (void) pthread_mutex_destroy(&m->local);
}

static int local_lock(struct mutex *m, int64_t deadline) {
        struct timespec ts;
        int64_t left;

        if (deadline < 0)
                return -pthread_mutex_lock(&m->local);
        if (pthread_mutex_trylock(&m->local) == 0)
                return 0;
        if (deadline == 0)
                return -ETIMEDOUT;
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        left = deadline - monotonic_usec();
        if (left < 0)
                left = 0;
        ts.tv_sec += (time_t) (left / 1000000);
        ts.tv_nsec += (long) (left % 1000000) * 1000;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        return -pthread_mutex_timedlock(&m->local, &ts);
}

int mutex_lock(struct mutex *m, struct region *r, int dirfd, const struct scope *sc, int timeout_ms) {
        int64_t deadline;
        int q;

        if (!r->writable)
                return -EACCES;
#ifdef HC_TEST_HOOKS
        if (hc_test_lock_timeout_ms > 0 && (timeout_ms < 0 || timeout_ms > hc_test_lock_timeout_ms))
                timeout_ms = hc_test_lock_timeout_ms;
#endif
        deadline = deadline_from(timeout_ms);
        q = local_lock(m, deadline);
        if (q < 0)
                return q == -EDEADLK ? -EDEADLK : q;

        if (m->fd >= 0 && m->epoch != self_epoch()) {
                /* a description of our own: one shared with a parent is the same owner */
                int fd = fd_reopen(m->fd, O_RDWR);

                safe_close(m->fd);
                m->fd = fd;
                if (m->fd < 0) {
                        q = m->fd;
                        goto fail;
                }
                m->epoch = self_epoch();
        }
        if (m->fd < 0) {
                if (dirfd < 0 || !sc) {
                        q = -EBADF;
                        goto fail;
                }
                q = region_open_lock_file(dirfd, sc, r, 0, O_RDWR, &m->fd);
                if (q < 0) {
                        m->fd = -EBADF;
                        goto fail;
                }
                m->epoch = self_epoch();
        }
        q = ofd_lock_wait(m->fd, HC_LOCK_MUTEX, deadline);
        if (q < 0)
                goto fail;
        q = region_word(r, WORD_LOCK_HELD) != 0;
        region_word_set(r, WORD_LOCK_HELD, 1);
        m->owner = pthread_self();
        __atomic_store_n(&m->held, true, __ATOMIC_RELEASE);
        return q;

fail:
        (void) pthread_mutex_unlock(&m->local);
        return q;
}

int mutex_unlock(struct mutex *m, struct region *r) {
        if (!__atomic_load_n(&m->held, __ATOMIC_ACQUIRE) || !pthread_equal(m->owner, pthread_self()))
                return -EPERM;
        __atomic_store_n(&m->held, false, __ATOMIC_RELEASE);
        region_word_set(r, WORD_LOCK_HELD, 0);
        ofd_unlock(m->fd, HC_LOCK_MUTEX, 1);
        (void) pthread_mutex_unlock(&m->local);
        return 0;
}
