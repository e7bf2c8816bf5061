/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Damaged regions: a region file that fails validation (a writer of a shared region
 * changed a byte of its header, or cut it short) is never a dead end. Its owner, or root,
 * may remove it (hc_remove()), and a creator or first joiner that owns it may replace it
 * with a new region (hc_create(), hc_join(), hc_region_open()), in both cases only while
 * nobody holds a seat in it.
 *
 * Who holds a seat, when the header that names the lock files may be what was damaged?
 * There is only one region file per name, so every lock file ".NAME.<id>.<k>" in the
 * directory, whatever its id, belongs to this damaged region or is a leftover of an
 * earlier one; the only exception is a region being built right now, whose temporary
 * ".NAME.<id>.tmp", made by the region's owner, is there (its creator may not rename it
 * over a file that exists, and a dead creator's is swept first; one that anyone else
 * made hides nothing). So we take a read lock over the whole of each lock file owned by
 * the region file's owner, however many links it has: one that is refused means a seat
 * is held, and we give up (-EBUSY); once they are all ours, nobody can take a seat in them
 * until we let go, by which time they are unlinked and the old region file is marked
 * retired and unlinked, so that a joiner holding an old handle starts over by name
 * (retire.c does the same). Lock files of other owners are never counted as seats (anybody may plant a file
 * and lock it): they are removed when we may and nobody locks them, else left alone.
 *
 * A remover and a replacer hold the damaged file's lock (HC_LOCK_MUTEX of the file, which
 * only they take; a read lock there, which anyone who may read the file can take, is not
 * waited for: damaged_lock()) while they work and look again, under it, that the name is still that file and that it still fails
 * validation. The one window we accept: replacing is "look at the name, then rename()
 * over it" (create.c); a person who removes the damaged file by hand while another process
 * creates a new region under the name, both within the microseconds between the look and
 * the rename, loses that new region to ours (its holders would then hold seats of a
 * region nobody else can find). renameat2() cannot make the rename conditional.
 *
 * A replacement replaces only what is recognisably a region (its magic, or the id of one
 * of its lock files, is intact): an empty file or another program's file under the name
 * is never replaced behind anyone's back; hc_remove(), asked by name, removes it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "create.h"
#include "damaged.h"
#include "files.h"
#include "format.h"
#include "hc-internal.h"
#include "mutex.h"
#include "region.h"
#include "util.h"

/* A name cannot have more lock files than this, leftovers included, that we would lock. */
#define DAMAGED_FILES_MAX (4 * HC_LOCK_FILES_MAX)

struct lock_file {
        int fd;                  /* read-locked over the whole file */
        dev_t dev;
        ino_t ino;
        char fn[FILE_NAME_MAX];
};

struct damaged {
        int fd;                  /* the region file; its region lock held when writable */
        bool writable;
        uint32_t version;        /* the format its header names when its magic is ours and
                                  * the format is an earlier one (a region an earlier
                                  * release made), else 0: only for the note */
        struct stat st;
        struct lock_file *files;
        size_t n_files;
};

static void damaged_done(struct damaged *d) {
        for (size_t i = 0; i < d->n_files; i++)
                safe_close(d->files[i].fd);
        free(d->files);
        d->files = NULL;
        d->n_files = 0;
        d->fd = safe_close(d->fd);
}

/* 1 when the file D has open is still linked under NAME. */
static bool still_named(int dirfd, const char *name, const struct stat *st) {
        struct stat now;

        return fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_dev == st->st_dev &&
               now.st_ino == st->st_ino;
}

/* Whether H (N bytes read of it) passes validation in a file of SIZE bytes. */
static bool header_valid(const struct hc_region_header *h, ssize_t n, off_t size) {
        return n == (ssize_t) sizeof *h && header_check(h, (uint64_t) size) == 0;
}

/* Takes a read lock over the whole lock file FN (whose stat is ST), or says why not:
 * -EAGAIN when somebody locks it. Adds it to D. */
static int lock_one(int dirfd, struct damaged *d, const char *fn, const struct stat *st) {
        _cleanup_close_ int fd = -EBADF;
        struct lock_file *f;
        struct stat again;
        int r;

        if (d->n_files >= DAMAGED_FILES_MAX)
                return -EMFILE;
        if (strlen(fn) >= sizeof f->fn)
                return -ENAMETOOLONG;     /* file_parse() bounded it: never */
        fd = xopenat(dirfd, fn, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
        if (fd < 0)
                return fd;
        if (fstat(fd, &again) < 0)
                return -errno;
        if (again.st_dev != st->st_dev || again.st_ino != st->st_ino)
                return -ESTALE;
        r = ofd_lock(fd, F_RDLCK, 0, 0);
        if (r < 0)
                return r;
        f = realloc(d->files, (d->n_files + 1) * sizeof *f);
        if (!f)
                return -ENOMEM;
        d->files = f;
        f = &d->files[d->n_files++];
        f->fd = TAKE_FD(fd);
        f->dev = st->st_dev;
        f->ino = st->st_ino;
        memcpy(f->fn, fn, strlen(fn) + 1);
        return 0;
}

/* Read-locks every lock file of SC's name (see the top of the file). -EBUSY when a seat
 * is held in one of the region owner's. *RET_ID_SEEN: whether ID is among their ids. */
static int lock_files(int dirfd, const struct scope *sc, struct damaged *d, uint64_t id,
                      bool *ret_id_seen) {
        _cleanup_close_ int dfd = -EBADF;
        struct dirent *de;
        DIR *dir;
        int r = 0;

        *ret_id_seen = false;
        dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        dir = fdopendir(dfd);
        if (!dir)
                return -errno;
        dfd = -EBADF;
        while ((de = readdir(dir))) {
                char name[HC_NAME_MAX + 1], tmp[FILE_NAME_MAX];
                uint64_t fid;
                struct stat st;
                bool owners;
                int kind, q;

                /* every file of the name but the region, temporaries and sockets may
                 * hold seats: lock files, whatever kinds of them there are */
                kind = file_parse(de->d_name, name, &fid, NULL);
                if (kind < 0 || kind == HC_FILE_REGION || kind == HC_FILE_TEMPORARY ||
                    kind == HC_FILE_SOCKET || strcmp(name, sc->name) != 0)
                        continue;
                /* a region being built (its temporary is there, made by the region's
                 * owner: anyone could plant one to hide seats) is not this one; dead
                 * creators' temporaries were swept before */
                if (file_temp_name(tmp, sizeof tmp, name, fid) < 0 ||
                    (fstatat(dirfd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
                     st.st_uid == d->st.st_uid))
                        continue;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                /* whatever its links: one planted by a writer of a shared lock file must
                 * not hide the seats in it */
                owners = st.st_uid == d->st.st_uid;
                if (!owners && st.st_uid != geteuid() && geteuid() != 0)
                        continue;         /* not the region's, and not ours to remove */
                q = lock_one(dirfd, d, de->d_name, &st);
                if (q == -EAGAIN && owners) {
                        r = -EBUSY;       /* a seat is held */
                        break;
                }
                if (q == -EMFILE || q == -ENOMEM) {
                        r = q;
                        break;
                }
                if (q == 0 && owners && fid == id)
                        *ret_id_seen = true;
        }
        (void) closedir(dir);
        return r;
}

/*
 * Opens SC's region file, which failed validation, for its removal or replacement (with
 * REPLACE: only by its owner, and only when it is recognisably a region), takes its
 * region lock, looks again, and read-locks its lock files. 0; -EAGAIN when it is not
 * damaged any more, or is not the file under the name any more (open it again); -EBUSY
 * when a seat is held; -EBADMSG when we may not (not its owner, nor root, or not a region
 * to replace); -EPERM when it is not a regular file of one link; -ENOENT; -ETIMEDOUT.
 */
/*
 * The damaged file's lock: a write lock on HC_LOCK_MUTEX of the region file, which only
 * removers and replacers take (the region lock of a sound region is on its lock file 0).
 * Whoever may read the file may hold a read lock on that byte; that is no remover, and
 * waiting for it would let a reader stall every removal: then we go on without the lock.
 * 0 held, 1 only read-locked by someone (not held), -ETIMEDOUT, -errno.
 */
static int damaged_lock(int fd, int64_t deadline) {
        int64_t backoff = 50;

        for (;;) {
                struct flock fl = {
                        .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = HC_LOCK_MUTEX, .l_len = 1,
                };
                struct timespec ts;
                int r;

                r = ofd_lock(fd, F_WRLCK, HC_LOCK_MUTEX, 1);
                if (r != -EAGAIN)
                        return r;
                if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_RDLCK)
                        return 1;
                if (deadline_wait(deadline, backoff, &ts) < 0)
                        return -ETIMEDOUT;
                (void) nanosleep(&ts, NULL);
                if (backoff < 10000)
                        backoff *= 2;
        }
}

static int damaged_open(int dirfd, const struct scope *sc, bool replace, struct damaged *d) {
        struct hc_region_header h = {};
        bool id_seen;
        ssize_t n;
        int r;

        *d = (struct damaged) { .fd = -EBADF };
        (void) region_sweep(dirfd, sc->system);          /* dead creators' temporaries */
        d->fd = xopenat(dirfd, sc->name, O_RDWR | O_NOFOLLOW | O_NONBLOCK, 0);
        if (d->fd == -EACCES || d->fd == -EROFS)
                d->fd = xopenat(dirfd, sc->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
        else
                d->writable = d->fd >= 0;
        if (d->fd < 0)
                return d->fd == -ELOOP || d->fd == -ENXIO || d->fd == -EISDIR ? -EPERM : d->fd;
        if (fstat(d->fd, &d->st) < 0)
                return -errno;
        if (!S_ISREG(d->st.st_mode) || d->st.st_nlink != 1)
                return -EPERM;
        if (replace ? d->st.st_uid != geteuid() : d->st.st_uid != geteuid() && geteuid() != 0)
                return -EBADMSG;
        if (d->writable) {
                r = damaged_lock(d->fd, deadline_from(REGION_LOCK_TIMEOUT_MS));
                if (r < 0)
                        return r;
        }
        /* under the lock: still the file of that name, still damaged? */
        if (!still_named(dirfd, sc->name, &d->st) || fstat(d->fd, &d->st) < 0)
                return -EAGAIN;
        n = pread(d->fd, &h, sizeof h, 0);
        if (header_valid(&h, n, d->st.st_size))
                return -EAGAIN;
        r = lock_files(dirfd, sc, d, n >= (ssize_t) (offsetof(struct hc_region_header, region_id) + 8) ?
                       h.region_id : 0, &id_seen);
        if (r < 0)
                return r;
        if (replace && !id_seen && !(n >= 4 && h.magic == HC_REGION_MAGIC))
                return -EBADMSG;          /* not recognisably a region: not ours to replace */
        if (n >= 8 && h.magic == HC_REGION_MAGIC && h.version >= 1 && h.version < HC_REGION_VERSION)
                d->version = h.version;
        return 0;
}

/* Says in opt->error_text, when the caller gave one, that SC's region was replaced, and
 * why as far as its header tells (bytes others may have written: a claim, in words). */
static void note_replaced(const hc_options *opt, const struct scope *sc, uint32_t version) {
        if (!opt || opt->size < offsetof(hc_options, error_text_size) + sizeof(size_t) ||
            !opt->error_text || opt->error_text_size == 0)
                return;
        if (version)
                (void) snprintf(opt->error_text, opt->error_text_size,
                                "replaced the region '%s' in '%s', made in format %" PRIu32
                                " by an earlier release (this build's is format %d; nobody "
                                "held a seat in it)", sc->name, sc->dir, version,
                                HC_REGION_VERSION);
        else
                (void) snprintf(opt->error_text, opt->error_text_size,
                                "replaced a damaged region '%s' in '%s' (nobody held a seat in it)",
                                sc->name, sc->dir);
}

/* Marks the old region file retired, so that a joiner holding a handle on it starts over
 * by name once it is unlinked (handle_retired()). */
static void mark_retired(struct damaged *d) {
        uint32_t flags = 0;
        off_t off = (off_t) offsetof(struct hc_region_header, flags);

        if (!d->writable || d->st.st_size < off + (off_t) sizeof flags)
                return;
        if (pread(d->fd, &flags, sizeof flags, off) != (ssize_t) sizeof flags)
                return;
        flags |= HC_REGION_RETIRED;
        (void) pwrite_all(d->fd, &flags, sizeof flags, off);
}

/* Unlinks the lock files we hold, each only if its name is still that file. */
static void unlink_files(int dirfd, struct damaged *d) {
        for (size_t i = 0; i < d->n_files; i++) {
                struct stat st = { .st_dev = d->files[i].dev, .st_ino = d->files[i].ino };

                if (still_named(dirfd, d->files[i].fn, &st))
                        (void) unlinkat(dirfd, d->files[i].fn, 0);
        }
}

int damaged_remove(int dirfd, const struct scope *sc) {
        struct damaged d;
        int r;

        r = damaged_open(dirfd, sc, false, &d);
        if (r == 0) {
                mark_retired(&d);
                if (still_named(dirfd, sc->name, &d.st) && unlinkat(dirfd, sc->name, 0) < 0)
                        r = -errno;
                if (r == 0) {
                        HC_HOOK("damaged-unlinked");
                        unlink_files(dirfd, &d);
                        files_remove_sockets(dirfd, sc->name, 0);
                }
        }
        damaged_done(&d);
        return r;
}

int damaged_replace(int dirfd, const struct scope *sc, const hc_options *opt, int *ret_fd) {
        struct damaged d;
        int r;

        r = damaged_open(dirfd, sc, true, &d);
        if (r == 0) {
                /* The new region keeps the old file's mode unless the caller names one: a
                 * first joiner must not lock the other users of a shared region out. Its
                 * capacity and data size are the caller's: the damaged header's are not
                 * believed. */
                hc_options o = { .size = sizeof o };

                if (opt)
                        memcpy(&o, opt, opt->size < sizeof o ? opt->size : sizeof o);
                o.size = sizeof o;
                if (!o.mode && mode_trusted(sc, d.st.st_mode & 0777) == 0)
                        o.mode = d.st.st_mode & 0777;
                r = region_create_over(dirfd, sc, &o, &d.st, ret_fd);
        }
        if (r > 0) {
                mark_retired(&d);
                HC_HOOK("damaged-replaced");
                unlink_files(dirfd, &d);
                files_remove_sockets(dirfd, sc->name, 0);
                note_replaced(opt, sc, d.version);
        }
        damaged_done(&d);
        return r == -ESTALE ? -EAGAIN : r;
}
