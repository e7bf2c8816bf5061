/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The handle: a region opened once (region.c), its checked scope directory, the region
 * lock (mutex.c), and the descriptions of its lock files, opened when first needed. The
 * calls by name use a short-lived handle that is never mapped; hc_region_open() keeps one
 * that is mapped when region.c says that is safe.
 *
 * A join through a handle keeps a spare description per lock file (idle_fd), so that a
 * join and leave in a loop costs one lock and one unlock; they are swapped atomically, so
 * threads need no lock for it. After fork() the spares are shared with the parent, so the
 * child drops them (cache_lock guards that one step).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handle.h"
#include "hc-internal.h"
#include "proc.h"
#include "util.h"

hc_region *handle_ref(hc_region *h) {
        __atomic_add_fetch(&h->n_ref, 1, __ATOMIC_RELAXED);
        return h;
}

static void handle_free(hc_region *h) {
        if (h->watching)
                region_word_add(&h->r, WORD_WAITERS, -1);
        for (unsigned k = 0; k < h->n_files; k++) {
                safe_close(h->query_fd[k]);
                safe_close(h->idle_fd[k]);
        }
        mutex_done(&h->mutex);
        region_close(&h->r);
        scope_put_dir(h->dirfd);
        free(h->spare);
        (void) pthread_mutex_destroy(&h->cache_lock);
        free(h);
}

hc_region *handle_unref(hc_region *h) {
        if (h && __atomic_sub_fetch(&h->n_ref, 1, __ATOMIC_ACQ_REL) == 0)
                handle_free(h);
        return NULL;
}

static int handle_open_once(const struct scope *sc, const hc_options *opt, unsigned flags,
                            hc_region **ret) {
        bool create = (flags & HANDLE_CREATE) && !(opt && (opt->flags & HC_NO_CREATE));
        unsigned rflags = 0;
        hc_region *h;
        int r;

        /* Everything but the scope, whose directory buffer is most of the handle and is
         * copied only as far as its string goes. */
        h = malloc(sizeof *h);
        if (!h)
                return -ENOMEM;
        memset(h, 0, offsetof(hc_region, sc));
        memset((char *) h + offsetof(hc_region, sc) + sizeof h->sc, 0,
               sizeof *h - offsetof(hc_region, sc) - sizeof h->sc);
        memcpy(h->sc.dir, sc->dir, strlen(sc->dir) + 1);
        memcpy(h->sc.name, sc->name, strlen(sc->name) + 1);
        h->sc.system = sc->system;
        h->sc.user_default = sc->user_default;
        h->sc.euid = sc->euid;
        h->n_ref = 1;
        h->dirfd = -EBADF;
        h->r.fd = -EBADF;
        (void) pthread_mutex_init(&h->cache_lock, NULL);
        mutex_init(&h->mutex);
        h->fork_epoch = self_epoch();

        r = scope_get_dir(sc, create, &h->dirfd);
        if (r < 0)
                goto fail;
        if (!(flags & HANDLE_READ_ONLY))
                rflags |= REGION_WRITE | REGION_READ_FALLBACK;
        if (create)
                rflags |= REGION_CREATE;
        if (flags & HANDLE_MAP)
                rflags |= REGION_MAP;
        r = region_open(h->dirfd, sc, opt, rflags, &h->r);
        if (r == -EPERM && sc->euid == 0 && (flags & HANDLE_FOREIGN))
                /* root looks at another user's region: read-only, never mapped */
                r = region_open(h->dirfd, sc, opt, REGION_FOREIGN, &h->r);
        if (r < 0)
                goto fail;
        for (unsigned k = 0; k < region_lock_files(&h->r); k++)
                h->query_fd[k] = h->idle_fd[k] = -EBADF;
        h->n_files = region_lock_files(&h->r);
        h->lock_try = opt && (opt->flags & HC_LOCK_TRY);
        if (opt && (opt->flags & HC_WATCH) && h->r.writable) {
                region_word_add(&h->r, WORD_WAITERS, 1);
                h->watching = true;
        }
        *ret = h;
        return 0;

fail:
        handle_free(h);
        return r;
}

/* A region retired between two of our steps (-ESTALE) is opened again by name. */
int handle_open(const struct scope *sc, const hc_options *opt, unsigned flags, hc_region **ret) {
        int r;

        for (unsigned attempt = 0;; attempt++) {
                r = handle_open_once(sc, opt, flags, ret);
                if (r != -ESTALE || attempt >= HANDLE_RETRIES)
                        return r;
        }
}

int handle_query_fd(hc_region *h, unsigned k, int *ret_fd) {
        int fd, expected = -EBADF, r;

        if (k >= h->n_files)
                return -EINVAL;
        fd = __atomic_load_n(&h->query_fd[k], __ATOMIC_ACQUIRE);
        if (fd >= 0) {
                *ret_fd = fd;
                return 0;
        }
        r = region_open_lock_file(h->dirfd, &h->sc, &h->r, k, O_RDONLY, &fd);
        if (r < 0)
                return r;
        if (!__atomic_compare_exchange_n(&h->query_fd[k], &expected, fd, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE)) {
                safe_close(fd);           /* another thread was first */
                fd = expected;
        }
        *ret_fd = fd;
        return 0;
}

static void drop_spares_after_fork(hc_region *h) {
        if (_likely_(__atomic_load_n(&h->fork_epoch, __ATOMIC_ACQUIRE) == self_epoch()))
                return;
        (void) pthread_mutex_lock(&h->cache_lock);
        if (h->fork_epoch != self_epoch()) {
                for (unsigned k = 0; k < h->n_files; k++)
                        safe_close(__atomic_exchange_n(&h->idle_fd[k], -EBADF, __ATOMIC_ACQ_REL));
                __atomic_store_n(&h->fork_epoch, self_epoch(), __ATOMIC_RELEASE);
        }
        (void) pthread_mutex_unlock(&h->cache_lock);
}

int handle_take_fd(hc_region *h, unsigned k, int *ret_fd) {
        int fd, r;

        if (k >= h->n_files)
                return -EINVAL;
        drop_spares_after_fork(h);
        fd = __atomic_exchange_n(&h->idle_fd[k], -EBADF, __ATOMIC_ACQ_REL);
        if (fd < 0) {
                r = region_open_lock_file(h->dirfd, &h->sc, &h->r, k, O_RDWR, &fd);
                if (r < 0)
                        return r;
        }
        *ret_fd = fd;
        return 0;
}

void handle_put_fd(hc_region *h, unsigned k, int fd) {
        if (k >= h->n_files || __atomic_load_n(&h->fork_epoch, __ATOMIC_ACQUIRE) != self_epoch()) {
                safe_close(fd);
                return;
        }
        safe_close(__atomic_exchange_n(&h->idle_fd[k], fd, __ATOMIC_ACQ_REL));
}

int handle_lock_timeout(const hc_region *h) {
        return h->lock_try ? 0 : REGION_LOCK_TIMEOUT_MS;
}

/*
 * 1 when the region was retired after the handle opened it: the flag is set and the file
 * has no name any more. A flag on a file that still has its name was left by a retirer
 * that died half-way (retire.c unlinks before it lets go of the lock): under the lock we
 * take it back. The usual "no" costs one load (or one pread()).
 */
int handle_retired(hc_region *h) {
        int q;

        if (_likely_(!(region_word(&h->r, WORD_FLAGS) & HC_REGION_RETIRED)))
                return 0;
        if (region_unlinked(&h->r) > 0)
                return 1;
        if (!h->r.writable || mutex_lock(&h->mutex, &h->r, handle_lock_timeout(h)) < 0)
                return 0;                 /* linked: it is the region of that name */
        /* A holder that died inside (mutex_lock() returned 1) owes a repair that we skip
         * here: it only clears dead records, which the next count or list does anyway. */
        q = region_unlinked(&h->r);
        if (q == 0)
                region_flags_change(&h->r, 0, HC_REGION_RETIRED);
        (void) mutex_unlock(&h->mutex, &h->r);
        return q > 0;
}

void handle_trim(hc_region *h, bool keep_dir) {
        for (unsigned k = 0; k < h->n_files; k++) {
                h->query_fd[k] = safe_close(h->query_fd[k]);
                h->idle_fd[k] = safe_close(h->idle_fd[k]);
        }
        if (!keep_dir) {
                scope_put_dir(h->dirfd);
                h->dirfd = -EBADF;
        }
}
