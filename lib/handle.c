/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The handle: a region opened once (region.c), its checked scope directory, the region
 * lock (mutex.c), and the descriptions of its lock files, opened when first needed. The
 * calls by name use a short-lived handle that is never mapped; hc_region_open() keeps one
 * that is mapped when region.c says that is safe.
 *
 * A join through a handle keeps a spare description per lock file (idle_fd), so that a
 * join and leave in a loop costs one lock and one unlock; they are swapped atomically, so
 * threads need no lock for it. After fork() the spares are shared by parent and child, so
 * each side drops them (cache_lock guards that one step): a seat taken through a shared
 * description would be held by both, and outlive the one that took it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "files.h"
#include "damaged.h"
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
        if (h->dirfd >= 0)
                scope_put_dir(h->dirfd, h->dir_token);
        free(h->spare);
        (void) pthread_mutex_destroy(&h->cache_lock);
        free(h);
}

hc_region *handle_unref(hc_region *h) {
        if (h && __atomic_sub_fetch(&h->n_ref, 1, __ATOMIC_ACQ_REL) == 0)
                handle_free(h);
        return NULL;
}

/*
 * The calls by name also keep a copy of the last region file they opened and validated,
 * with its identity: device, inode and birth time (never given to another file), size,
 * mode and owner. A join by name that finds the very same file under the name, which
 * nobody but its owner and root can write (so that nobody can have rewritten its header),
 * starts from the copy instead of reading the header first; once it holds its seat, the
 * one read it makes anyway (flags, record) covers the header too, and a header that is
 * not the copy's sends it back to start over (region_seat_state()). So a cold join makes
 * the same checks in one read fewer.
 */
static struct {
        pthread_mutex_t lock;
        bool valid;
        struct region r;         /* fd -EBADF */
        uint64_t btime;
        uid_t uid;
} cold_region = { .lock = PTHREAD_MUTEX_INITIALIZER };

static bool stat_file(int fd, struct stat *st, uint64_t *ret_btime) {
        struct statx sx;

        if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT,
                  STATX_BASIC_STATS | STATX_BTIME, &sx) < 0 || !(sx.stx_mask & STATX_BTIME))
                return false;
        *st = (struct stat) {
                .st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor), .st_ino = sx.stx_ino,
                .st_mode = sx.stx_mode, .st_nlink = sx.stx_nlink, .st_uid = sx.stx_uid,
                .st_size = (off_t) sx.stx_size,
        };
        *ret_btime = (uint64_t) sx.stx_btime.tv_sec * 1000000000 + sx.stx_btime.tv_nsec;
        return *ret_btime != 0;
}

static int cold_region_open(hc_region *h) {
        struct region copy;
        uint64_t btime, b;
        struct stat st;
        uid_t uid;
        int fd;

        (void) pthread_mutex_lock(&cold_region.lock);
        copy = cold_region.r;
        btime = cold_region.btime;
        uid = cold_region.uid;
        fd = cold_region.valid ? 0 : -ENOENT;
        (void) pthread_mutex_unlock(&cold_region.lock);
        if (fd < 0)
                return fd;
        fd = xopenat(h->dirfd, h->sc.name, O_RDWR | O_NOFOLLOW | O_NONBLOCK, 0);
        if (fd < 0)
                return fd;
        if (!stat_file(fd, &st, &b) || b != btime || st.st_dev != copy.dev || st.st_ino != copy.ino ||
            st.st_uid != uid || (st.st_mode & 07777) != copy.mode || (st.st_mode & 0022) ||
            (uint64_t) st.st_size != copy.file_size || file_trust(&st, h->sc.system, h->sc.euid) < 0 ||
            fs_check_local(fd, st.st_dev) < 0) {
                safe_close(fd);
                return -ESTALE;
        }
        h->r = copy;
        h->r.fd = fd;
        h->from_copy = true;
        return 0;
}

static void cold_region_keep(hc_region *h) {
        uint64_t btime;
        struct stat st;

        if (!h->r.writable || h->r.mapped || h->r.foreign || h->r.others_write ||
            !stat_file(h->r.fd, &st, &btime) || st.st_ino != h->r.ino || st.st_dev != h->r.dev)
                return;
        (void) pthread_mutex_lock(&cold_region.lock);
        cold_region.r = h->r;
        cold_region.r.fd = -EBADF;
        cold_region.btime = btime;
        cold_region.uid = st.st_uid;
        cold_region.valid = true;
        (void) pthread_mutex_unlock(&cold_region.lock);
}

void handle_forget_copy(void) {
        (void) pthread_mutex_lock(&cold_region.lock);
        cold_region.valid = false;
        (void) pthread_mutex_unlock(&cold_region.lock);
}

static int handle_open_once(const struct scope *sc, const hc_options *opt, unsigned flags,
                            hc_region **ret) {
        bool create = (flags & HANDLE_CREATE) && !(opt && (opt->flags & HC_NO_CREATE));
        unsigned rflags = 0, dir = 0;
        hc_region *h;
        int r;

        /* Everything but the scope, whose directory buffer is most of the handle and is
         * copied only as far as its string goes. */
        h = malloc(sizeof *h);
        if (!h)
                return -ENOMEM;
        memset(h, 0, offsetof(hc_region, sc));
        memset((char *) h + offsetof(hc_region, sc) + sizeof h->sc, 0,
               offsetof(hc_region, query_fd) - offsetof(hc_region, sc) - sizeof h->sc);
        memset(&h->fork_epoch, 0, sizeof *h - offsetof(hc_region, fork_epoch));
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

        h->cold = flags & HANDLE_COLD;
        if (!(flags & HANDLE_READ_ONLY))
                rflags |= REGION_WRITE | REGION_READ_FALLBACK;
        if (create)
                rflags |= REGION_CREATE;
        if (flags & HANDLE_MAP)
                rflags |= REGION_MAP;
        for (unsigned attempt = 0;; attempt++) {
                r = scope_get_dir(sc, create, &h->dirfd, &dir, &h->dir_token);
                if (r < 0)
                        goto fail;
                h->dir_private = dir & SCOPE_DIR_PRIVATE;
                if (h->cold && cold_region_open(h) == 0)
                        break;
                r = region_open(h->dirfd, sc, opt, rflags, &h->r);
                if (r == -EBADMSG && create) {
                        /* a damaged region of ours that nobody is in: make it again (damaged.c) */
                        _cleanup_close_ int fd = -EBADF;
                        int q = damaged_replace(h->dirfd, sc, opt, &fd);

                        if (q > 0 || q == -EAGAIN)
                                r = region_open(h->dirfd, sc, opt, rflags, &h->r);
                }
                if (r == -EPERM && sc->euid == 0 && (flags & HANDLE_FOREIGN))
                        /* root looks at another user's region: read-only, never mapped */
                        r = region_open(h->dirfd, sc, opt, REGION_FOREIGN, &h->r);
                if ((r == -EBADF || r == -ENOTDIR) && h->dir_token != 0 && attempt == 0) {
                        /* the program closed our directory's descriptor behind our back
                         * (or has that number for a file of its own now) */
                        scope_lost_dir(h->dir_token);
                        scope_put_dir(h->dirfd, h->dir_token);
                        h->dirfd = -EBADF;
                        continue;
                }
                if (r < 0)
                        goto fail;
                if (h->cold)
                        cold_region_keep(h);
                break;
        }
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

/*
 * Opens lock file K (region_open_lock_file()). In a directory that nobody but us (and root,
 * when we are root) may even reach, every name was made by us or by root and nobody else
 * can open what is there, so O_NOFOLLOW is all the check it needs; a retirement shows in
 * the flags that the joiner reads once it holds its seat.
 */
static int open_lock_file(hc_region *h, unsigned k, int oflags, int *ret_fd) {
        char fn[FILE_NAME_MAX];
        int fd, q;

        if (!h->dir_private || h->r.foreign)
                return region_open_lock_file(h->dirfd, &h->sc, &h->r, k, oflags, ret_fd);
        q = file_lock_name(fn, sizeof fn, h->sc.name, h->r.region_id, k);
        if (q < 0)
                return q;
        fd = xopenat(h->dirfd, fn, oflags | O_NOFOLLOW | O_NONBLOCK, 0);
        if (fd < 0) {
                if (fd == -ENOENT)
                        return region_unlinked(&h->r) > 0 ? -ESTALE : -EBADMSG;
                return fd == -ELOOP ? -EPERM : fd;
        }
        *ret_fd = fd;
        return 0;
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
        r = open_lock_file(h, k, O_RDONLY, &fd);
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

/*
 * The calls by name (hc_join() and hc_leave(), nothing kept open between them) keep one
 * spare description of a lock file per process, as a handle keeps one per lock file: a
 * leave gives its seat back and keeps the description for the next join of that lock
 * file, which then opens one file instead of two. Nothing else depends on the close it
 * saves: the region file's close at the same leave wakes the waiters (wait.c watches
 * both), after the seat was given back. It is never used after fork() by either side
 * (it is the other's too), and a lock file that was retired with its region shows as retired to
 * the joiner that took its byte, which then starts over by name.
 */
static struct {
        pthread_mutex_t lock;
        int fd;
        uint64_t region_id;      /* the region it belongs to (random: names it) */
        unsigned k;
        uint64_t epoch;
} cold_spare = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -EBADF };

static int cold_take(hc_region *h, unsigned k) {
        int fd = -EBADF;

        (void) pthread_mutex_lock(&cold_spare.lock);
        if (cold_spare.fd >= 0 && cold_spare.epoch == self_epoch() && cold_spare.k == k &&
            cold_spare.region_id == h->r.region_id)
                fd = TAKE_FD(cold_spare.fd);
        (void) pthread_mutex_unlock(&cold_spare.lock);
        return fd;
}

void handle_cold_put(hc_region *h, unsigned k, int fd) {
        int old;

        (void) pthread_mutex_lock(&cold_spare.lock);
        old = cold_spare.epoch == self_epoch() ? cold_spare.fd : -EBADF;  /* else the parent's */
        cold_spare.fd = fd;
        cold_spare.region_id = h->r.region_id;
        cold_spare.k = k;
        cold_spare.epoch = self_epoch();
        (void) pthread_mutex_unlock(&cold_spare.lock);
        safe_close(old);
}

int handle_take_fd(hc_region *h, unsigned k, int *ret_fd) {
        int fd, r;

        if (k >= h->n_files)
                return -EINVAL;
        drop_spares_after_fork(h);
        fd = __atomic_exchange_n(&h->idle_fd[k], -EBADF, __ATOMIC_ACQ_REL);
        if (fd < 0 && h->cold)
                fd = cold_take(h, k);
        if (fd < 0) {
                r = open_lock_file(h, k, O_RDWR, &fd);
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
        if (!h->r.writable || mutex_lock(&h->mutex, &h->r, h->dirfd, &h->sc, handle_lock_timeout(h)) < 0)
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
        if (!keep_dir && h->dirfd >= 0) {
                scope_put_dir(h->dirfd, h->dir_token);
                h->dirfd = -EBADF;
        }
}
