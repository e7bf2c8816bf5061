/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Opening a region's lock file by name, with as much trust as the region itself: a
 * regular file with one link, owned by us or root, and a mode that lets in only the
 * classes that may write the region (its owner puts that right). Used by every module
 * that takes a lock on one (handle.c for seats, mutex.c and listen.c for the locks on
 * lock file 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "create.h"
#include "files.h"
#include "hc-internal.h"
#include "region.h"
#include "util.h"

/* Opens lock file K and checks that we may trust it as much as the region. A lock file
 * that is missing means the region was retired (-ESTALE when so) or damaged (-EBADMSG). */
int region_open_lock_file(int dirfd, const struct scope *sc, const struct region *r, unsigned k,
                          int oflags, int *ret_fd) {
        char fn[FILE_NAME_MAX];
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int q;

        q = file_lock_name(fn, sizeof fn, sc->name, r->region_id, k);
        if (q < 0)
                return q;
        fd = xopenat(dirfd, fn, oflags | O_NOFOLLOW | O_NONBLOCK, 0);
        if (fd < 0) {
                if (fd == -ENOENT)
                        return region_unlinked(r) > 0 ? -ESTALE : -EBADMSG;
                return fd == -ELOOP ? -EPERM : fd;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        q = r->foreign ? file_trust_foreign(&st, sc->euid) : file_trust(&st, sc->system, sc->euid);
        if (q < 0)
                return q;
        if (st.st_nlink == 0)
                return -ESTALE;
        /* Its owner puts right a mode that lets in a class that may not write the region
         * (the region's mode was changed since): nobody who may only read may lock. */
        if (st.st_uid == sc->euid && !r->foreign && (st.st_mode & 07777) != lock_file_mode(r->mode))
                (void) fchmod(fd, lock_file_mode(r->mode));
        *ret_fd = TAKE_FD(fd);
        return 0;
}
