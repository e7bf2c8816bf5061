/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Seats handed to a command. A wrapper that runs a command while it holds a seat (a join
 * with HC_INHERIT, or hc_slot_fd()) must let the command keep the seat when the wrapper
 * dies, and must not give it anything else. A description of the region's lock file would
 * do the first and not the second: through it the command can lock every other seat byte
 * of that file, and a command run as another user would then hold seats of a region it
 * may not even join. So such a seat has a lock file of its own:
 *
 *   - the holder takes its seat in the lock file as always, through a description it keeps
 *     to itself (close-on-exec), and writes its record;
 *   - it creates .NAME.<id>.s<i>-<seq> (seq: its record's), locks its one byte through a
 *     second description, and that is the one the command inherits: it reaches no other
 *     seat, and no other file;
 *   - its leave erases the record, unlocks and removes the own file, and gives the seat
 *     back, for everyone that shares the descriptions, as a leave always did.
 *
 * When the holder is SIGKILLed and the command lives on, the seat's byte in the lock file
 * is free while its record is still there: that seat is either dead or handed. Counting,
 * listing, reaping and joining look at the own file for such a seat only (a seat whose
 * byte is held, or whose record is gone, needs no look): it is held while the own file's
 * byte is write-locked. So the count stays exact, and a joiner that takes the byte gives it
 * back when the command still holds the seat.
 *
 * A wrapper that joins with HC_RECORD_LATER (headcount run) writes the record once its
 * command runs; killed in the microseconds between the command's start and that write, it
 * leaves a command that no record names, and which therefore does not count.
 *
 * Nothing is opened or closed in the region's files when such a command ends: headcountd
 * watches the own files too (hc_file_region() says HC_FILE_SEAT), and hc_wait() sees it
 * at its next bounded look (HC_WAIT_RECHECK_MS).
 *
 * Each holding makes a new own file and removes it when it leaves, so that a copy of the
 * description that a command's child keeps after the seat was given back reaches an
 * unlinked file that nobody will ever look at again, never a later holding of the seat
 * (a file kept for reuse would let such a copy take the lock again, and keep a later
 * holder's dead seat alive). On tmpfs, where regions live, that costs microseconds.
 *
 * The own file's name comes from the record, which the holder writes only after it made
 * the file with O_EXCL: nobody can make the name first (the seq is a clock reading taken
 * at the join), and a record names only a file of its own seat. What we find under that
 * name is trusted when it is a regular file with one link owned by the region's owner,
 * by root, or by the uid in the record (a file that another user planted in a shared
 * sticky directory counts for nothing). A region that others may write has records that
 * others may write: there a writer can make a handed seat whose holder died look dead (by
 * damaging its record), or keep a dead one's seat with a file and a lock of its own; both
 * are what a writer can do by joining or by damaging the region anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "format.h"
#include "handed.h"
#include "hc-internal.h"
#include "proc.h"
#include "util.h"

#define OWN_BYTE HC_LOCK_BASE
#define CREATE_ATTEMPTS 8

static int own_name(hc_region *h, unsigned seat, uint64_t seq, char *buf, size_t len) {
        return file_seat_name(buf, len, h->sc.name, h->r.region_id, seat, seq);
}

static int need_dir(hc_region *h) {
        if (h->dirfd >= 0)
                return 0;
        return scope_get_dir(&h->sc, false, &h->dirfd, NULL, &h->dir_token);
}

/* The lock files' read bits (lock_file_mode(): only the classes that may join), so that
 * whoever may count the seats may look at the own file too; no write bits but its
 * owner's: only the description the command holds ever locks it. */
static mode_t own_mode(const hc_region *h) {
        return 0600 | (lock_file_mode(h->r.mode) & 0044);
}

int handed_open(hc_region *h, unsigned seat, struct hc_slot_rec *rec, bool inherit, int *ret_fd) {
        int r;

        r = need_dir(h);
        if (r < 0)
                return r;
        for (unsigned attempt = 0; attempt < CREATE_ATTEMPTS; attempt++) {
                char fn[FILE_NAME_MAX];
                _cleanup_close_ int fd = -EBADF;

                if (attempt > 0) {
                        /* taken: by a squatter, or (at most once) by our own last try */
                        rec->seq = host_monotonic_ns() + attempt;
                        region_record_seal(&h->r, seat, rec);
                }
                r = own_name(h, seat, rec->seq, fn, sizeof fn);
                if (r < 0)
                        return r;
                fd = xopenat(h->dirfd, fn, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK, 0600);
                if (fd == -EEXIST)
                        continue;
                if (fd < 0)
                        return fd;
                /* Exactly the mode we mean, past the umask. Then the lock: a reader that
                 * opened the file in between may hold a read lock on the byte; then we
                 * start over under another name. */
                if (fchmod(fd, own_mode(h)) < 0 || ofd_lock(fd, F_WRLCK, OWN_BYTE, 1) < 0) {
                        (void) unlinkat(h->dirfd, fn, 0);
                        continue;
                }
                if (inherit && fcntl(fd, F_SETFD, 0) < 0) {
                        r = -errno;
                        (void) unlinkat(h->dirfd, fn, 0);
                        return r;
                }
                *ret_fd = TAKE_FD(fd);
                return 0;
        }
        return -EEXIST;
}

void handed_close(hc_region *h, unsigned seat, uint64_t seq, int fd) {
        char fn[FILE_NAME_MAX];

        if (fd < 0)
                return;
        /* for every description that shares it: the command's copies too, as flock(1)'s
         * unlock does */
        ofd_unlock(fd, OWN_BYTE, 1);
        if (need_dir(h) == 0 && own_name(h, seat, seq, fn, sizeof fn) == 0)
                (void) unlinkat(h->dirfd, fn, 0);
        safe_close(fd);
}

static bool own_trusted(const hc_region *h, const struct stat *st, uid_t rec_uid) {
        struct stat rst;

        if (!S_ISREG(st->st_mode) || st->st_nlink != 1)
                return false;
        if (st->st_uid == 0 || st->st_uid == rec_uid)
                return true;
        return fstat(h->r.fd, &rst) == 0 && st->st_uid == rst.st_uid;   /* the region's owner */
}

int handed_probe(hc_region *h, unsigned seat) {
        hc_instance rec;
        char fn[FILE_NAME_MAX];
        _cleanup_close_ int fd = -EBADF;
        struct flock fl = {
                .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = OWN_BYTE, .l_len = 1,
        };
        struct stat st;
        int r;

        if (region_record_read(&h->r, seat, &rec, NULL) < 0)
                return 0;                 /* no valid record: nothing names an own file */
        r = need_dir(h);
        if (r < 0)
                return r;
        r = own_name(h, seat, rec.seq, fn, sizeof fn);
        if (r < 0)
                return 0;
        fd = xopenat(h->dirfd, fn, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
        if (fd == -ENOENT)
                return 0;                 /* its holder died, and never handed it */
        if (fd < 0) {
                /* a file there that we may not open: if it is a trusted one, we cannot
                 * tell, and a seat that may be held is never given to anyone else */
                if (fstatat(h->dirfd, fn, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return 0;
                return own_trusted(h, &st, rec.uid) ? -EACCES : 0;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!own_trusted(h, &st, rec.uid))
                return 0;
        if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
                return -errno;
        return fl.l_type != F_UNLCK;
}

int handed_file(hc_region *h, unsigned seat, struct stat *ret) {
        char fn[FILE_NAME_MAX];
        hc_instance rec;
        int r;

        if (region_record_read(&h->r, seat, &rec, NULL) < 0)
                return -ENOENT;
        r = need_dir(h);
        if (r < 0)
                return r;
        r = own_name(h, seat, rec.seq, fn, sizeof fn);
        if (r < 0)
                return r;
        if (fstatat(h->dirfd, fn, ret, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return own_trusted(h, ret, rec.uid) ? 0 : -EPERM;
}

void handed_remove(hc_region *h, unsigned seat, uint64_t seq) {
        char fn[FILE_NAME_MAX];
        struct stat st;

        if (need_dir(h) < 0 || own_name(h, seat, seq, fn, sizeof fn) < 0)
                return;
        /* only a file we could have made: a stranger's is no business of ours */
        if (fstatat(h->dirfd, fn, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            (st.st_uid != h->sc.euid && h->sc.euid != 0))
                return;
        (void) unlinkat(h->dirfd, fn, 0);
}
