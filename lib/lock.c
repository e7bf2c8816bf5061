/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The region's robust process-shared mutex, and its repair when a holder died with it.
 *
 * The mutex guards what is really shared state: retirement, reaping, and the header's
 * hints. Seats never need it. A holder that dies leaves the mutex to the kernel's robust
 * list handling, and the next locker gets EOWNERDEAD: that is repaired here and only
 * here (as LMDB does in mdb_mutex_failed): we recount the seats, clear the records of
 * dead holders, mark the mutex consistent and go on. Nobody ever deadlocks on a dead
 * holder.
 *
 * Lock calls are bounded in time: a hostile user who can write a shared region could
 * otherwise hold the mutex forever and hang everyone else. And the mutex's kind is
 * checked before every lock: glibc trusts the kind word inside the mutex, and a region
 * whose mutex claims to be priority-protected makes pthread_mutex_timedlock() abort the
 * process on an assertion (glibc 2.36, nptl/tpp.c), a priority-inheriting one sends the
 * kernel a made-up owner. Only the kind we create (robust, process-shared, normal) is
 * locked. A writer who changes the word between our check and glibc's read could still
 * get there; that needs a race won against every locker, where the plain lock word
 * already lets such a writer make each locker wait out its bound.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "hc-internal.h"
#include "region.h"

static int repair(hc_region *rg) {
        int r;

        /* handle_count() with reaping refreshes the live hint and clears dead records;
         * it needs no mutex itself, so calling it here cannot recurse. */
        r = handle_count(rg, true, NULL);
        __atomic_add_fetch(&rg->hdr->generation, 1, __ATOMIC_RELEASE);
        (void) pthread_mutex_consistent(&rg->hdr->lock);
        return r < 0 ? r : 1;
}

#ifdef HC_TEST_HOOKS
/* When > 0, caps every lock's bound: a fuzzed region's mutex bytes can look held by a
 * thread that will never let go, and the fuzzer must not wait 5 s for each such input. */
int hc_test_lock_timeout_ms;
#endif

#ifdef __GLIBC__
static pthread_once_t kind_once = PTHREAD_ONCE_INIT;
static int kind_expected;

static void kind_init(void) {
        pthread_mutexattr_t attr;
        pthread_mutex_t m;

        /* as region.c creates it */
        (void) pthread_mutexattr_init(&attr);
        (void) pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        (void) pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
        (void) pthread_mutex_init(&m, &attr);
        (void) pthread_mutexattr_destroy(&attr);
        kind_expected = m.__data.__kind;
        (void) pthread_mutex_destroy(&m);
}

static bool kind_ok(hc_region *rg) {
        (void) pthread_once(&kind_once, kind_init);
        return __atomic_load_n(&rg->hdr->lock.__data.__kind, __ATOMIC_RELAXED) == kind_expected;
}
#else
static bool kind_ok(hc_region *rg) {
        (void) rg;
        return true;
}
#endif

/* Returns 0, or 1 when the previous holder died and the region was repaired. */
int region_lock(hc_region *rg, int timeout_ms) {
        struct timespec ts;
        int r;

        if (!rg->writable)
                return -EACCES;
        if (!kind_ok(rg))
                return -EBADMSG;          /* not a mutex we made: see above */
#ifdef HC_TEST_HOOKS
        if (hc_test_lock_timeout_ms > 0 && timeout_ms > hc_test_lock_timeout_ms)
                timeout_ms = hc_test_lock_timeout_ms;
#endif
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        r = pthread_mutex_timedlock(&rg->hdr->lock, &ts);
        if (r == 0)
                return 0;
        if (r == EOWNERDEAD) {
                r = repair(rg);
                if (r < 0) {
                        (void) pthread_mutex_unlock(&rg->hdr->lock);
                        return r;
                }
                return 1;
        }
        if (r == ENOTRECOVERABLE || r == EINVAL)
                return -EBADMSG;          /* a mutex nobody could have left in this state */
        return -r;
}

void region_unlock(hc_region *rg) {
        (void) pthread_mutex_unlock(&rg->hdr->lock);
}
