/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The region file: its layout, its creation, its validation, the handle that maps it,
 * and its retirement. This is the only module that decides where bytes live.
 *
 * Layout of the file NAME (all integers in the creator's byte order, which the
 * fingerprint pins):
 *
 *   0             struct hc_region_header (magic, sizes, counters, robust mutex)
 *   table_offset  capacity x struct hc_slot_rec (128 bytes each)
 *   data_offset   data_size bytes of user data, page aligned, up to file_size
 *
 * and, past the end of the file, the lock bytes (HC_LOCK_BASE + seat). Seats from
 * seats_per_file onwards live in companion lock files ".NAME.<region_id>.<k>", which are
 * created with the region and named by its random id, so that a lock file can never be
 * mistaken for one of a region that was retired and made again.
 *
 * Creation. Nobody ever sees a half-made region: the creator builds ".NAME.<id>.tmp"
 * (holding an OFD lock on HC_LOCK_CREATE all the while), creates the lock files, and only
 * then moves the temporary into place with renameat2(RENAME_NOREPLACE), falling back to
 * link()+unlink() where the filesystem lacks it. The loser of a creation race removes its
 * own files and opens the winner's. A creator that dies leaves a temporary whose creation
 * lock is free: region_sweep() removes it and its lock files.
 *
 * Who writes what. The header's sizes and id are written once, before the file has its
 * name. flags is written under the mutex. generation, live, waiters and poke are hints,
 * updated with atomics by anyone (or pwrite() for poke). Each slot record is written only
 * by the holder of its seat lock, or cleared by a reaper that holds a read lock on the
 * seat (see slot.c).
 *
 * Validation. Everything we read from the file is untrusted input: another process of
 * ours may have died half-way, another build may have made it, and in the system scope a
 * hostile user may have written it. header_check() bounds every field before use, the
 * handle keeps validated copies and never reads a size from the mapping twice, and a
 * file whose size differs from what its header says is -EBADMSG. Nothing is ever written
 * outside the mapping.
 *
 * Retirement marks the header retired under the mutex while holding a read lock on every
 * seat (so no seat can be taken meanwhile), then unlinks the files. A joiner that gets a
 * seat afterwards finds the file unlinked (st_nlink == 0) and starts over by name.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hc-internal.h"
#include "region.h"

#define PAGE_MIN 4096u
#define LOCKFILE_SUFFIX_MAX 32

static uint64_t data_align(void) {
        long ps = sysconf(_SC_PAGESIZE);
        return ps > 0 && (uint64_t) ps > 65536 ? (uint64_t) ps : 65536;
}

uint64_t header_file_size(uint32_t capacity, uint64_t data_size, uint64_t *ret_table,
                          uint64_t *ret_data) {
        uint64_t table = ALIGN_TO((uint64_t) sizeof(struct hc_region_header), (uint64_t) 64);
        uint64_t end = table + (uint64_t) capacity * sizeof(struct hc_slot_rec);
        uint64_t data;

        /* Without user data the file ends at a page boundary after the table. With it, the
         * data starts on a 64 KiB boundary, so it can be mapped at its own address on any
         * page size Linux uses. */
        if (data_size == 0)
                data = ALIGN_TO(end, (uint64_t) PAGE_MIN);
        else
                data = ALIGN_TO(end, data_align());
        if (ret_table)
                *ret_table = table;
        if (ret_data)
                *ret_data = data;
        return data + ALIGN_TO(data_size, (uint64_t) PAGE_MIN);
}

#ifdef HC_TEST_HOOKS
void (*hc_test_debug)(const char *what, uint64_t expected, uint64_t found);
#define DEBUG_MISMATCH(what, e, f)                                      \
        do {                                                            \
                if (hc_test_debug)                                      \
                        hc_test_debug(what, (uint64_t) (e), (uint64_t) (f)); \
        } while (0)
#else
#define DEBUG_MISMATCH(what, e, f) do {} while (0)
#endif

#define EXPECT(field, value)                                            \
        do {                                                            \
                if ((uint64_t) (field) != (uint64_t) (value)) {         \
                        DEBUG_MISMATCH(#field, value, field);           \
                        return -EBADMSG;                                \
                }                                                       \
        } while (0)

uint64_t header_layout_check(const struct hc_region_header *h) {
        const uint8_t *p = (const uint8_t *) h;
        uint64_t x = UINT64_C(0xcbf29ce484222325);

        _Static_assert(offsetof(struct hc_region_header, layout_check) % 8 == 0, "whole words");
        for (size_t i = 0; i < offsetof(struct hc_region_header, layout_check); i += 8) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                x = (x ^ w) * UINT64_C(0x100000001b3);
                x ^= x >> 29;
        }
        return x;
}

/*
 * Checks a header read from the file; FILE_SIZE is the file's real size, or UINT64_MAX
 * when it is not known yet. -EBADMSG for any field out of place: bad magic and wrong
 * version alike, as LMDB does; the test build reports which field through a hook.
 */
int header_check(const struct hc_region_header *h, uint64_t file_size) {
        uint64_t table, data;

        EXPECT(h->magic, HC_REGION_MAGIC);
        EXPECT(h->version, HC_REGION_VERSION);
        EXPECT(h->fingerprint, HC_REGION_FINGERPRINT);
        EXPECT(h->header_size, sizeof(struct hc_region_header));
        if (h->capacity < 1 || h->capacity > HC_CAPACITY_MAX) {
                DEBUG_MISMATCH("capacity", HC_CAPACITY_MAX, h->capacity);
                return -EBADMSG;
        }
        EXPECT(h->seats_per_file, HC_SEATS_PER_FILE);
        if (h->data_size > HC_DATA_SIZE_MAX) {
                DEBUG_MISMATCH("data_size", HC_DATA_SIZE_MAX, h->data_size);
                return -EBADMSG;
        }
        EXPECT(h->file_size, header_file_size(h->capacity, h->data_size, &table, &data));
        EXPECT(h->table_offset, table);
        EXPECT(h->data_offset, data);
        EXPECT(h->layout_check, header_layout_check(h));
        if (file_size != UINT64_MAX)
                EXPECT(file_size, h->file_size);
        return 0;
}

int lockfile_name(char *buf, size_t len, const char *name, uint64_t region_id, unsigned k) {
        int n;

        if (k == 0)
                n = snprintf(buf, len, ".%s.%016" PRIx64 ".tmp", name, region_id);
        else
                n = snprintf(buf, len, ".%s.%016" PRIx64 ".%u", name, region_id, k);
        return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

static unsigned files_for(uint32_t capacity) {
        return (capacity + HC_SEATS_PER_FILE - 1) / HC_SEATS_PER_FILE;
}

/* Opens lock file K of a region and checks we may trust it as much as the region. */
int lockfile_open(int dirfd, const struct scope *sc, uint64_t region_id, unsigned k, int oflags,
                  bool system, int *ret_fd) {
        char fn[HC_NAME_MAX + LOCKFILE_SUFFIX_MAX];
        _cleanup_close_ int fd = -EBADF, own_dirfd = -EBADF;
        struct stat st;
        int r;

        r = lockfile_name(fn, sizeof fn, sc->name, region_id, k);
        if (r < 0)
                return r;
        if (dirfd < 0) {
                own_dirfd = open(sc->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (own_dirfd < 0)
                        return -errno;
                dirfd = own_dirfd;
        }
        fd = openat(dirfd, fn, oflags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return errno == ENOENT ? -EBADMSG : errno == ELOOP ? -EPERM : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        r = file_trust(&st, system);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int random_id(uint64_t *ret) {
        uint64_t v;

        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t) sizeof v) {
                struct timespec ts;
                (void) clock_gettime(CLOCK_MONOTONIC, &ts);
                v = ((uint64_t) ts.tv_nsec << 32) ^ (uint64_t) ts.tv_sec ^ ((uint64_t) getpid() << 16);
        }
        *ret = v ? v : 1;
        return 0;
}

static void unlink_lockfiles(int dirfd, const char *name, uint64_t id, unsigned n_files) {
        char fn[HC_NAME_MAX + LOCKFILE_SUFFIX_MAX];

        for (unsigned k = 1; k < n_files; k++)
                if (lockfile_name(fn, sizeof fn, name, id, k) == 0)
                        (void) unlinkat(dirfd, fn, 0);
}

static int build_header(int fd, uint32_t capacity, uint64_t data_size, uint64_t id) {
        struct hc_region_header *h;
        pthread_mutexattr_t attr;
        uint64_t table, data, size = header_file_size(capacity, data_size, &table, &data);
        int r;

        if (ftruncate(fd, (off_t) size) < 0)
                return -errno;
        h = mmap(NULL, sizeof *h, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (h == MAP_FAILED)
                return -errno;

        *h = (struct hc_region_header) {
                .version = HC_REGION_VERSION,
                .fingerprint = HC_REGION_FINGERPRINT,
                .header_size = sizeof *h,
                .capacity = capacity,
                .seats_per_file = HC_SEATS_PER_FILE,
                .table_offset = table,
                .data_offset = data,
                .data_size = data_size,
                .file_size = size,
                .region_id = id,
        };
        {
                /* the check covers the magic, which is stored last */
                struct hc_region_header tmp = *h;
                tmp.magic = HC_REGION_MAGIC;
                h->layout_check = header_layout_check(&tmp);
        }
        r = -pthread_mutexattr_init(&attr);
        if (r == 0) {
                (void) pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
                (void) pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
                r = -pthread_mutex_init(&h->lock, &attr);
                (void) pthread_mutexattr_destroy(&attr);
        }
        if (r == 0)
                __atomic_store_n(&h->magic, HC_REGION_MAGIC, __ATOMIC_RELEASE);
        (void) munmap(h, sizeof *h);
        return r;
}

#ifdef HC_TEST_HOOKS
bool hc_test_no_renameat2;      /* tests: a filesystem without RENAME_NOREPLACE */
static bool no_renameat2(void) {
        return hc_test_no_renameat2;
}
#else
static bool no_renameat2(void) {
        return false;
}
#endif

/*
 * Creates the region SC names, unless it exists. Returns 1 and a read-write descriptor on
 * the new file when we created it, 0 when someone else did (no descriptor), or an error.
 */
int region_create(const struct scope *sc, const hc_options *opt, int *ret_fd) {
        char tmp[HC_NAME_MAX + LOCKFILE_SUFFIX_MAX];
        _cleanup_close_ int dirfd = -EBADF, fd = -EBADF;
        unsigned max = opt && opt->max ? opt->max : 1;
        unsigned capacity = opt && opt->capacity ? opt->capacity : HC_CAPACITY_DEFAULT;
        uint64_t data_size = opt ? opt->data_size : 0;
        mode_t mode = opt && opt->mode ? (mode_t) opt->mode : 0600;
        unsigned n_files, k = 1;
        uint64_t id;
        int r;

        if (opt && !opt->capacity && max > capacity)
                capacity = max;
        if (capacity < 1 || capacity > HC_CAPACITY_MAX || data_size > HC_DATA_SIZE_MAX ||
            (mode & ~07777u) || (mode & (S_ISUID | S_ISGID | S_ISVTX)))
                return -EINVAL;
        n_files = files_for(capacity);

        r = scope_open_dir(sc, true, &dirfd);
        if (r < 0)
                return r;
        (void) region_sweep(dirfd, sc->system);

        /* A sweeper may take the creation lock of a temporary in the moment between its
         * creation and our lock, and remove it: we then find it unlinked, or the lock
         * taken, and start again under a new name. */
        for (unsigned attempt = 0;; attempt++) {
                struct stat st;

                (void) random_id(&id);
                r = lockfile_name(tmp, sizeof tmp, sc->name, id, 0);
                if (r < 0)
                        return r;
                fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0)
                        return -errno;
                if (fcntl(fd, F_OFD_SETLK, &(struct flock) {
                                .l_type = F_WRLCK, .l_whence = SEEK_SET,
                                .l_start = HC_LOCK_CREATE, .l_len = 1 }) == 0 &&
                    fstat(fd, &st) == 0 && st.st_nlink > 0)
                        break;
                fd = safe_close(fd);
                if (attempt >= 16)
                        return -EAGAIN;
        }
        if (fchmod(fd, mode) < 0) {       /* exactly the mode asked for, past the umask */
                r = -errno;
                goto fail;
        }
        r = build_header(fd, capacity, data_size, id);
        if (r < 0)
                goto fail;
        HC_HOOK("create-built");

        for (; k < n_files; k++) {
                char fn[HC_NAME_MAX + LOCKFILE_SUFFIX_MAX];
                int lfd;

                (void) lockfile_name(fn, sizeof fn, sc->name, id, k);
                lfd = openat(dirfd, fn, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (lfd < 0) {
                        r = -errno;
                        goto fail;
                }
                r = fchmod(lfd, mode) < 0 ? -errno : 0;
                (void) close(lfd);
                if (r < 0) {
                        k++;
                        goto fail;
                }
        }
        HC_HOOK("create-lockfiles");

        if (no_renameat2() || renameat2(dirfd, tmp, dirfd, sc->name, RENAME_NOREPLACE) < 0) {
                r = no_renameat2() ? -EINVAL : -errno;
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
                        unlink_lockfiles(dirfd, sc->name, id, n_files);
                        return 0;
                }
                goto fail;
        }
done:
        (void) fcntl(fd, F_OFD_SETLK, &(struct flock) {
                        .l_type = F_UNLCK, .l_whence = SEEK_SET,
                        .l_start = HC_LOCK_CREATE, .l_len = 1 });
        *ret_fd = TAKE_FD(fd);
        return 1;

fail:
        (void) unlinkat(dirfd, tmp, 0);
        unlink_lockfiles(dirfd, sc->name, id, k);
        return r;
}

/*
 * The checks that need the region file's inode, once its header has been read into H:
 * a file we trust, of the size its header says, on a local filesystem. *RET_ST is left
 * for the caller's own look at st_nlink (0: retired since we opened it).
 */
int region_check_inode(int fd, const struct hc_region_header *h, bool system, struct stat *ret_st) {
        int r;

        if (fstat(fd, ret_st) < 0)
                return -errno;
        r = file_trust(ret_st, system);
        if (r < 0)
                return r;
        if ((uint64_t) ret_st->st_size != h->file_size)
                return -EBADMSG;
        return fs_check_local(fd, ret_st->st_dev);
}

/* Why a file we could not use was refused: distrust comes before corruption. */
static int refusal(int fd, bool system, int r) {
        struct stat st;
        int t;

        if (fstat(fd, &st) < 0)
                return -errno;
        t = file_trust(&st, system);
        return t < 0 ? t : r;
}

/*
 * Opens the region file with OFLAGS (O_RDONLY or O_RDWR), creating it first when CREATE,
 * and reads and checks its header. The file's size and trust are checked by the caller
 * (a joiner does it after taking its seat, which saves a system call on the hot path).
 */
int region_open_file(const struct scope *sc, const hc_options *opt, int oflags, bool create,
                     int *ret_fd, struct hc_region_header *ret_header) {
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;
        int r;

        for (unsigned attempt = 0;; attempt++) {
                fd = open(sc->path, oflags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
                if (fd >= 0)
                        break;
                r = -errno;
                if (r == -ELOOP || r == -EISDIR || r == -ENXIO || r == -EOPNOTSUPP)
                        return -EPERM;            /* symlink, directory, socket ... */
                if (r != -ENOENT || !create || attempt > 8)
                        return r;
                r = region_create(sc, opt, &fd);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if ((oflags & O_ACCMODE) == O_RDWR)
                                break;
                        fd = safe_close(fd);
                }
        }

        n = pread(fd, ret_header, sizeof *ret_header, 0);
        if (n < 0)
                return refusal(fd, sc->system, errno == ESPIPE || errno == EISDIR ? -EPERM : -errno);
        if ((size_t) n < sizeof *ret_header)
                return refusal(fd, sc->system, -EBADMSG);
        r = header_check(ret_header, UINT64_MAX);
        if (r < 0)
                return refusal(fd, sc->system, r);
        *ret_fd = TAKE_FD(fd);
        return 0;
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
                char name[HC_NAME_MAX + 1], tmp[HC_NAME_MAX + LOCKFILE_SUFFIX_MAX];
                const char *dot, *s = de->d_name;
                size_t len = strlen(s);
                uint64_t id;
                unsigned k;
                struct stat st;
                int fd;

                if (s[0] != '.' || len < 20)
                        continue;
                /* .NAME.<16 hex>.tmp or .NAME.<16 hex>.<k> */
                dot = strrchr(s, '.');
                if (!dot || dot - s < 18 || dot[-17] != '.')
                        continue;
                if ((size_t) (dot - 17 - s - 1) > HC_NAME_MAX)
                        continue;
                memcpy(name, s + 1, (size_t) (dot - 17 - s - 1));
                name[dot - 17 - s - 1] = '\0';
                if (name_check(name) < 0 || sscanf(dot - 16, "%16" SCNx64, &id) != 1)
                        continue;
                if (strcmp(dot, ".tmp") == 0)
                        k = 0;
                else if (sscanf(dot + 1, "%u", &k) != 1 || k == 0)
                        continue;
                if (fstatat(dirfd, s, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
                    file_trust(&st, system) < 0)
                        continue;

                /* A temporary being built carries its creator's lock. */
                (void) lockfile_name(tmp, sizeof tmp, name, id, 0);
                fd = openat(dirfd, tmp, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
                if (fd >= 0) {
                        /* We take the creation lock ourselves, so that no creator can take
                         * it after our look; a creator that finds it taken, or its file
                         * gone, starts over (region_create()). */
                        struct stat tst, again;
                        bool dead = fcntl(fd, F_OFD_SETLK, &(struct flock) {
                                                .l_type = F_WRLCK, .l_whence = SEEK_SET,
                                                .l_start = HC_LOCK_CREATE, .l_len = 1 }) == 0 &&
                                    fstat(fd, &tst) == 0 &&
                                    fstatat(dirfd, tmp, &again, AT_SYMLINK_NOFOLLOW) == 0 &&
                                    again.st_ino == tst.st_ino;
                        if (dead)
                                (void) unlinkat(dirfd, tmp, 0);
                        (void) close(fd);
                        if (!dead || k == 0)
                                continue;
                } else if (k == 0)
                        continue;

                /* A lock file with no temporary: kept only while its region has its id. */
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
                        if (!ours)
                                (void) unlinkat(dirfd, s, 0);
                }
        }
        (void) closedir(d);
        return 0;
}

/* ---- The handle ---- */

static void handle_free(hc_region *rg) {
        if (rg->watching)
                __atomic_sub_fetch(&rg->hdr->waiters, 1, __ATOMIC_ACQ_REL);
        if (rg->hdr)
                (void) munmap(rg->hdr, rg->map_size);
        if (rg->file_fd)
                for (unsigned k = 1; k < rg->n_files; k++)
                        safe_close(rg->file_fd[k]);
        if (rg->idle_fd)
                for (unsigned k = 0; k < rg->n_files; k++)
                        safe_close(rg->idle_fd[k]);
        safe_close(rg->fd);
        free(rg->file_fd);
        free(rg->idle_fd);
        free(rg->spare);
        (void) pthread_mutex_destroy(&rg->cache_lock);
        free(rg);
}

hc_region *handle_unref(hc_region *rg) {
        if (!rg)
                return NULL;
        if (__atomic_sub_fetch(&rg->n_ref, 1, __ATOMIC_ACQ_REL) == 0)
                handle_free(rg);
        return NULL;
}

int handle_open(const struct scope *sc, const hc_options *opt, hc_region **ret) {
        struct hc_region_header h;
        bool create = !(opt && (opt->flags & HC_NO_CREATE));
        hc_region *rg;
        struct stat st;
        int fd = -EBADF, r;

        r = region_open_file(sc, opt, O_RDWR, create, &fd, &h);
        if (r == -EACCES || r == -EROFS)          /* read-only use: count, list, wait */
                r = region_open_file(sc, opt, O_RDONLY, false, &fd, &h);
        if (r < 0)
                return r;

        rg = calloc(1, sizeof *rg);
        if (!rg) {
                safe_close(fd);
                return -ENOMEM;
        }
        (void) pthread_mutex_init(&rg->cache_lock, NULL);
        rg->n_ref = 1;
        rg->sc = *sc;
        rg->fd = fd;
        rg->writable = (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR;

        r = region_check_inode(fd, &h, sc->system, &st);
        if (r < 0)
                goto fail;
        rg->dev = st.st_dev;
        rg->ino = st.st_ino;
        rg->capacity = h.capacity;
        rg->seats_per_file = h.seats_per_file;
        rg->table_offset = h.table_offset;
        rg->data_offset = h.data_offset;
        rg->data_size = h.data_size;
        rg->region_id = h.region_id;
        rg->n_files = files_for(h.capacity);
        rg->map_size = (size_t) h.file_size;

        rg->hdr = mmap(NULL, rg->map_size, PROT_READ | (rg->writable ? PROT_WRITE : 0), MAP_SHARED,
                       fd, 0);
        if (rg->hdr == MAP_FAILED) {
                rg->hdr = NULL;
                r = -errno;
                goto fail;
        }
        /* The file may have changed between our read and the mapping: check once more. */
        if (memcmp(&rg->hdr->region_id, &h.region_id, sizeof h.region_id) != 0) {
                r = -EBADMSG;
                goto fail;
        }

        rg->file_fd = calloc(rg->n_files, sizeof(int));
        rg->idle_fd = calloc(rg->n_files, sizeof(int));
        if (!rg->file_fd || !rg->idle_fd) {
                rg->n_files = 0;          /* nothing in them to close */
                r = -ENOMEM;
                goto fail;
        }
        rg->file_fd[0] = fd;
        for (unsigned k = 0; k < rg->n_files; k++) {
                rg->idle_fd[k] = -EBADF;
                if (k > 0)
                        rg->file_fd[k] = -EBADF;
        }
        for (unsigned k = 1; k < rg->n_files; k++) {
                r = lockfile_open(-1, sc, rg->region_id, k, rg->writable ? O_RDWR : O_RDONLY,
                                  sc->system, &rg->file_fd[k]);
                if (r < 0) {
                        /* retired under us: its lock files went first */
                        if (r == -EBADMSG && fstat(fd, &st) == 0 && st.st_nlink == 0)
                                r = -ESTALE;
                        goto fail;
                }
        }
        rg->fork_epoch = self_epoch();
        if (opt && (opt->flags & HC_WATCH) && rg->writable) {
                __atomic_add_fetch(&rg->hdr->waiters, 1, __ATOMIC_ACQ_REL);
                rg->watching = true;
        }
        *ret = rg;
        return 0;

fail:
        handle_free(rg);
        return r;
}

/*
 * Called with the mutex held: 1 when the region is retired. A retirer unlinks the region
 * before it lets go of the mutex, so a flag on a file that still has its name, seen under
 * the mutex, was left by a retirer that died half-way: we take it back.
 */
static int retired_locked(hc_region *rg) {
        struct stat st;

        if (!(__atomic_load_n(&rg->hdr->flags, __ATOMIC_ACQUIRE) & HC_REGION_RETIRED))
                return 0;
        if (fstat(rg->fd, &st) == 0 && st.st_nlink > 0) {
                __atomic_and_fetch(&rg->hdr->flags, ~(uint32_t) HC_REGION_RETIRED, __ATOMIC_RELEASE);
                return 0;
        }
        return 1;
}

/* 1 when the region was retired after the handle opened it; the cost of the usual "no" is
 * one load. */
int handle_retired(hc_region *rg) {
        struct stat st;
        int r;

        if (_likely_(!(__atomic_load_n(&rg->hdr->flags, __ATOMIC_ACQUIRE) & HC_REGION_RETIRED)))
                return 0;
        if (fstat(rg->fd, &st) == 0 && st.st_nlink == 0)
                return 1;
        /* flagged but still linked: a retirement under way, or one whose retirer died */
        if (!rg->writable || region_lock(rg, 5000) < 0)
                return 0;                 /* linked: it is the region of that name */
        r = retired_locked(rg);
        region_unlock(rg);
        return r;
}

/*
 * Retires the region: under the mutex, with a read lock on every seat so that nobody can
 * take one meanwhile, marks it retired and removes its files. -EBUSY when a seat is held.
 */
int region_retire(hc_region *rg) {
        int fds[HC_CAPACITY_MAX / HC_SEATS_PER_FILE];
        _cleanup_close_ int dirfd = -EBADF;
        struct stat st;
        unsigned k;
        int r;

        if (!rg->writable)
                return -EACCES;
        r = scope_open_dir(&rg->sc, false, &dirfd);
        if (r < 0)
                return r;
        r = region_lock(rg, 5000);
        if (r < 0)
                return r;
        if (retired_locked(rg)) {
                region_unlock(rg);
                return -ENOENT;
        }

        for (k = 0; k < rg->n_files; k++) {
                unsigned first = k * rg->seats_per_file;
                unsigned n = rg->capacity - first < rg->seats_per_file ? rg->capacity - first
                                                                      : rg->seats_per_file;
                char self[64];

                /* a description of our own, so the read locks go away with it */
                (void) snprintf(self, sizeof self, "/proc/self/fd/%d", rg->file_fd[k]);
                fds[k] = open(self, O_RDONLY | O_CLOEXEC);
                if (fds[k] < 0) {
                        r = -errno;
                        goto finish;
                }
                if (fcntl(fds[k], F_OFD_SETLK, &(struct flock) {
                                .l_type = F_RDLCK, .l_whence = SEEK_SET,
                                .l_start = HC_LOCK_BASE + first, .l_len = n }) < 0) {
                        r = errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
                        (void) close(fds[k]);
                        goto finish;
                }
        }
        HC_HOOK("retire-locked");

        /* The flag, then the name, then the rest: a retirer that dies after the flag leaves
         * a region whose files are all there, and retired_locked() takes the flag back. */
        __atomic_or_fetch(&rg->hdr->flags, HC_REGION_RETIRED, __ATOMIC_RELEASE);
        HC_HOOK("retire-flagged");
        __atomic_add_fetch(&rg->hdr->generation, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&rg->hdr->live, 0, __ATOMIC_RELAXED);
        if (fstatat(dirfd, rg->sc.name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == rg->ino &&
            st.st_dev == rg->dev)
                (void) unlinkat(dirfd, rg->sc.name, 0);
        unlink_lockfiles(dirfd, rg->sc.name, rg->region_id, rg->n_files);
        listen_socket_remove(dirfd, rg->sc.name);
        r = 0;

finish:
        while (k-- > 0)
                (void) close(fds[k]);
        region_unlock(rg);
        if (r == 0)
                handle_poke(rg);
        return r;
}
