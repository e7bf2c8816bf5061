/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Making a region, and sweeping what dead makers left.
 *
 * Creation. Nobody ever sees a half-made region: the creator builds ".NAME.<id>.tmp"
 * (holding an OFD lock on HC_LOCK_CREATE all the while), allocates every block of it
 * (posix_fallocate(): a full disk is -ENOSPC here, never a SIGBUS later), writes the
 * header with pwrite() (the magic last), creates the lock files, and only then moves the
 * temporary into place with renameat2(RENAME_NOREPLACE), or link()+unlink() where the
 * filesystem lacks it.
 *
 * Modes. The temporary is 0600 until just before it gets its name, so that nobody but
 * its creator's uid can open it (and read-lock HC_LOCK_CREATE, which would keep a sweeper
 * from removing it should its creator die). Lock files get lock_file_mode(): no bit at
 * all for a class that may only read the region. The loser of a creation race removes its own files and opens the
 * winner's. A creator that dies leaves a temporary whose creation lock is free:
 * region_sweep() removes it and its lock files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "create.h"
#include "files.h"
#include "format.h"
#include "hc-internal.h"
#include "util.h"

#define PAGE_MIN 4096u

static uint64_t data_align(void) {
        long ps = sysconf(_SC_PAGESIZE);
        return ps > 0 && (uint64_t) ps > 65536 ? (uint64_t) ps : 65536;
}

/* After the record table: the seats' run rings. */
uint64_t header_runs_offset(uint32_t capacity, uint64_t table) {
        return table + (uint64_t) capacity * sizeof(struct hc_slot_rec);
}

uint64_t header_file_size(uint32_t capacity, uint64_t data_size, uint64_t *ret_table,
                          uint64_t *ret_data) {
        uint64_t table = ALIGN_TO((uint64_t) sizeof(struct hc_region_header), (uint64_t) 64);
        uint64_t end, data;

        end = header_runs_offset(capacity, table) +
              (uint64_t) capacity * HC_RUNS_PER_SEAT * sizeof(struct hc_slot_rec);

        /* With user data, the data starts on a 64 KiB boundary, so it can be mapped over
         * a variable on any page size Linux uses (section.c). */
        data = data_size == 0 ? ALIGN_TO(end, (uint64_t) PAGE_MIN) : ALIGN_TO(end, data_align());
        if (ret_table)
                *ret_table = table;
        if (ret_data)
                *ret_data = data;
        return data + ALIGN_TO(data_size, (uint64_t) PAGE_MIN);
}

uint64_t header_layout_check(const struct hc_region_header *h) {
        _Static_assert(offsetof(struct hc_region_header, layout_check) % 8 == 0, "whole words");
        return hash_words(0, h, offsetof(struct hc_region_header, layout_check));
}

unsigned region_files_for(uint32_t capacity) {
        return (capacity + HC_SEATS_PER_FILE - 1) / HC_SEATS_PER_FILE;
}

/* ---- Creation ---- */

static uint64_t random_id(void) {
        uint64_t v = 0;

        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t) sizeof v)
                v ^= (uint64_t) monotonic_usec() << 20 ^ (uint64_t) getpid();
        return v ? v : 1;
}

static void unlink_lock_files(int dirfd, const char *name, uint64_t id, unsigned n) {
        char fn[FILE_NAME_MAX];

        for (unsigned k = 0; k < n; k++)
                if (file_lock_name(fn, sizeof fn, name, id, k) == 0)
                        (void) unlinkat(dirfd, fn, 0);
}

static int build_header(int fd, uint32_t capacity, uint64_t data_size, uint64_t id) {
        struct hc_region_header h;
        uint64_t table, data, size = header_file_size(capacity, data_size, &table, &data);
        uint32_t magic = HC_REGION_MAGIC;
        int r;

        /* every block now: stores through a mapping never meet a full disk */
        r = -posix_fallocate(fd, 0, (off_t) size);
        if (r < 0)
                return r;
        h = (struct hc_region_header) {
                .version = HC_REGION_VERSION,
                .fingerprint = HC_REGION_FINGERPRINT,
                .header_size = sizeof h,
                .capacity = capacity,
                .seats_per_file = HC_SEATS_PER_FILE,
                .table_offset = table,
                .data_offset = data,
                .data_size = data_size,
                .file_size = size,
                .region_id = id,
                .magic = HC_REGION_MAGIC,        /* the check covers the magic */
        };
        h.layout_check = header_layout_check(&h);
        h.magic = 0;
        r = pwrite_all(fd, &h, sizeof h, 0);
        if (r < 0)
                return r;
        return pwrite_all(fd, &magic, sizeof magic, 0);
}

#ifdef HC_TEST_HOOKS
bool hc_test_no_renameat2;      /* tests: a filesystem without RENAME_NOREPLACE */
#define NO_RENAMEAT2 hc_test_no_renameat2
#else
#define NO_RENAMEAT2 false
#endif

/* Puts the built temporary TMP in place of OVER, the damaged region file linked under
 * SC's name, and only if the name still is that file: -ESTALE when it is not. rename()
 * cannot check what it replaces, so we look right before it; every other process that
 * changes the name of a damaged region (damaged.c) holds its region lock, as we do, and a
 * creator never replaces (RENAME_NOREPLACE), so what is left between the look and the
 * rename is someone removing the file by hand and another creating a region under the
 * name in those microseconds: damaged.c documents that window. */
static int install_over(int dirfd, const char *tmp, const struct scope *sc, const struct stat *over) {
        struct stat st;

        if (fstatat(dirfd, sc->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? -ESTALE : -errno;
        if (st.st_dev != over->st_dev || st.st_ino != over->st_ino)
                return -ESTALE;
        return renameat(dirfd, tmp, dirfd, sc->name) < 0 ? -errno : 0;
}

/* Creates the region SC names in DIRFD unless it exists (or, with OVER, in place of the
 * damaged file OVER describes). Returns 1 and a read-write descriptor on the new file when
 * we created it, 0 when someone else did, or -errno. */
static int create_region(int dirfd, const struct scope *sc, const hc_options *opt,
                         const struct stat *over, int *ret_fd) {
        char tmp[FILE_NAME_MAX];
        _cleanup_close_ int fd = -EBADF;
        unsigned max = opt && opt->max ? opt->max : 1;
        unsigned capacity = opt && opt->capacity ? opt->capacity : HC_CAPACITY_DEFAULT;
        uint64_t data_size = opt ? opt->data_size : 0;
        mode_t mode = opt && opt->mode ? (mode_t) opt->mode : 0600;
        unsigned n_files, k = 0;
        uint64_t id;
        int r;

        if (opt && !opt->capacity && max > capacity)
                capacity = max;
        if (capacity < 1 || capacity > HC_CAPACITY_MAX || data_size > HC_DATA_SIZE_MAX ||
            (mode & ~0777u) || mode_trusted(sc, mode) < 0)
                return -EINVAL;
        n_files = region_files_for(capacity);
        (void) region_sweep(dirfd, sc->system);

        /* A sweeper may take the creation lock of a temporary between its creation and
         * our lock, and remove it: we then find it unlinked, or the lock taken, and start
         * again under a new name. */
        for (unsigned attempt = 0;; attempt++) {
                struct stat st;

                id = random_id();
                r = file_temp_name(tmp, sizeof tmp, sc->name, id);
                if (r < 0)
                        return r;
                fd = xopenat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
                if (fd < 0)
                        return fd;
                if (ofd_lock(fd, F_WRLCK, HC_LOCK_CREATE, 1) == 0 && fstat(fd, &st) == 0 &&
                    st.st_nlink > 0)
                        break;
                fd = safe_close(fd);
                if (attempt >= 16)
                        return -EAGAIN;
        }
        r = build_header(fd, capacity, data_size, id);
        if (r < 0)
                goto fail;
        HC_HOOK("create-built");

        for (; k < n_files; k++) {
                char fn[FILE_NAME_MAX];
                int lfd;

                (void) file_lock_name(fn, sizeof fn, sc->name, id, k);
                lfd = xopenat(dirfd, fn, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
                if (lfd < 0) {
                        r = lfd;
                        goto fail;
                }
                r = fchmod(lfd, lock_file_mode(mode)) < 0 ? -errno : 0;
                (void) close(lfd);
                if (r < 0) {
                        k++;
                        goto fail;
                }
        }
        HC_HOOK("create-lockfiles");

        /* exactly the mode asked for, past the umask, and only now (see above) */
        if (fchmod(fd, mode) < 0) {
                r = -errno;
                goto fail;
        }

        if (over) {
                r = install_over(dirfd, tmp, sc, over);
                if (r < 0)
                        goto fail;
                goto done;
        }
        if (NO_RENAMEAT2 || renameat2(dirfd, tmp, dirfd, sc->name, RENAME_NOREPLACE) < 0) {
                r = NO_RENAMEAT2 ? -EINVAL : -errno;
                if (r == -EINVAL || r == -ENOSYS) {
                        /* no RENAME_NOREPLACE here: link() never replaces either */
                        r = linkat(dirfd, tmp, dirfd, sc->name, 0) < 0 ? -errno : 0;
                        (void) unlinkat(dirfd, tmp, 0);
                        if (r == 0)
                                goto done;
                }
                if (r == -EEXIST) {
                        /* lost the race: the winner's region is the one */
                        (void) unlinkat(dirfd, tmp, 0);
                        unlink_lock_files(dirfd, sc->name, id, n_files);
                        return 0;
                }
                goto fail;
        }
done:
        ofd_unlock(fd, HC_LOCK_CREATE, 1);
        *ret_fd = TAKE_FD(fd);
        return 1;

fail:
        (void) unlinkat(dirfd, tmp, 0);
        unlink_lock_files(dirfd, sc->name, id, k);
        return r;
}

int region_create(int dirfd, const struct scope *sc, const hc_options *opt, int *ret_fd) {
        return create_region(dirfd, sc, opt, NULL, ret_fd);
}

int region_create_over(int dirfd, const struct scope *sc, const hc_options *opt,
                       const struct stat *over, int *ret_fd) {
        return create_region(dirfd, sc, opt, over, ret_fd);
}

/* 1 when a lock is held on some byte of the file FD: a seat, in a lock file. */
bool file_locked(int fd) {
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

        if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
                return true;              /* cannot tell: say held */
        return fl.l_type != F_UNLCK;
}

/*
 * Removes what dead creators left behind: temporaries whose creation lock is free, and
 * lock files that belong to no region. Run when a region is created and by hc_names().
 */
int region_sweep(int dirfd, bool system) {
        _cleanup_close_ int dfd = -EBADF;
        DIR *d;
        struct dirent *de;

        dfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        d = fdopendir(dfd);
        if (!d)
                return -errno;
        dfd = -EBADF;

        while ((de = readdir(d))) {
                char name[HC_NAME_MAX + 1], tmp[FILE_NAME_MAX];
                uint64_t id;
                struct stat st;
                int kind, fd;

                kind = file_parse(de->d_name, name, &id, NULL);
                if (kind != HC_FILE_TEMPORARY && kind != HC_FILE_LOCK && kind != HC_FILE_SEAT)
                        continue;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
                    file_trust(&st, system, geteuid()) < 0)
                        continue;

                /* A temporary being built carries its creator's lock. (A handed seat's own
                 * file goes with its region: its holder removes it while the region lives.) */
                (void) file_temp_name(tmp, sizeof tmp, name, id);
                fd = kind == HC_FILE_SEAT ? -1 : openat(dirfd, tmp, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
                if (fd >= 0) {
                        /* We take the creation lock ourselves, so that no creator can take
                         * it after our look; a creator that finds it taken, or its file
                         * gone, starts over (region_create()). */
                        struct stat tst, again;
                        bool dead = ofd_lock(fd, F_WRLCK, HC_LOCK_CREATE, 1) == 0 &&
                                    fstat(fd, &tst) == 0 &&
                                    tst.st_uid == st.st_uid &&   /* another's: not ours to judge */
                                    fstatat(dirfd, tmp, &again, AT_SYMLINK_NOFOLLOW) == 0 &&
                                    again.st_ino == tst.st_ino;
                        if (dead)
                                (void) unlinkat(dirfd, tmp, 0);
                        (void) close(fd);
                        if (!dead || kind == HC_FILE_TEMPORARY)
                                continue;
                } else if (kind == HC_FILE_TEMPORARY)
                        continue;

                /* A lock file with no temporary: kept only while its region has its id,
                 * and while anyone holds a seat in it (a region whose id was damaged
                 * still has its holders: damaged.c must find them). */
                {
                        struct hc_region_header h;
                        bool ours = false;

                        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
                        if (fd >= 0) {
                                ours = pread(fd, &h, sizeof h, 0) == (ssize_t) sizeof h &&
                                       h.region_id == id;
                                (void) close(fd);
                        } else if (errno != ENOENT)
                                ours = true;            /* cannot tell: leave it */
                        if (!ours) {
                                fd = openat(dirfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
                                ours = fd < 0 || file_locked(fd);
                                safe_close(fd);
                        }
                        if (!ours)
                                (void) unlinkat(dirfd, de->d_name, 0);
                }
        }
        (void) closedir(d);
        return 0;
}

