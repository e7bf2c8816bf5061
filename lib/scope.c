/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Names, scopes and directories: which file a name means, and whether the directory
 * and the file may be trusted. Nothing here touches a region's bytes.
 *
 * Scope directories, in order of precedence:
 *   opt->dir                   explicit; must exist
 *   "Global\NAME"              system scope, as opt->scope = HC_SCOPE_SYSTEM
 *   "Local\NAME"               user scope, as opt->scope = HC_SCOPE_USER
 *   HC_SCOPE_SYSTEM            /run/headcount (root-owned, 1777, from tmpfiles.d)
 *   $HEADCOUNT_DIR             replaces the user scope's directory; must exist
 *   HC_SCOPE_USER              $XDG_RUNTIME_DIR/headcount, or /dev/shm/headcount-UID when
 *                              XDG_RUNTIME_DIR is unset (cron, containers, CI): created
 *                              0700 on first use and verified every time we create in it
 *   HC_SCOPE_FLEET             no directory of its own: fleet.c asks the headcountd of
 *                              a local scope (scope_resolve_fleet(); the system scope's
 *                              listens on HC_FLEET_SYSTEM_SOCKET instead, whatever names
 *                              its directory); every call that wants region files gets
 *                              -EOPNOTSUPP
 *
 * A directory that others may write to must be sticky (as /tmp is): otherwise another
 * user could unlink a live region and let a second set of instances start beside the
 * first. Every call that resolves a name opens and checks its directory first and then
 * opens the files relative to that descriptor, so a directory renamed or replaced after
 * the check is never used. A region file (and each of its lock files) is trusted when it
 * is a regular file with one link, owned by us or by root and, outside the system scope,
 * not writable by group or others (root-owned regions may be).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "hc-internal.h"
#include "scope.h"
#include "util.h"

#define SYSTEM_DIR "/run/headcount"

int name_check(const char *name) {
        size_t n = 0;

        if (!name || name[0] == '\0' || name[0] == '.')
                return -EINVAL;
        for (const char *p = name; *p; p++, n++) {
                char c = *p;
                if (n >= HC_NAME_MAX)
                        return -EINVAL;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-'))
                        return -EINVAL;
        }
        return 0;
}

static int copy_str(char *dst, size_t len, const char *src) {
        size_t n = strlen(src);

        if (n >= len)
                return -ENAMETOOLONG;
        memcpy(dst, src, n + 1);
        return 0;
}

/* Fills ret->dir and ret->system from the options and an optional name prefix. */
static int resolve_dir(const hc_options *opt, int prefix_scope, struct scope *ret) {
        const char *dir = opt ? opt->dir : NULL, *env;
        int scope = prefix_scope >= 0 ? prefix_scope : (opt ? opt->scope : HC_SCOPE_USER);

        ret->euid = geteuid();            /* once: each call is a system call */
        if (opt && opt->scope == HC_SCOPE_FLEET)
                return -EOPNOTSUPP;       /* no region files: lib/fleet.c asks the agent */
        if (scope != HC_SCOPE_USER && scope != HC_SCOPE_SYSTEM)
                return -EINVAL;

        ret->system = false;
        ret->user_default = false;
        if (dir) {
                if (dir[0] == '\0')
                        return -EINVAL;
                return copy_str(ret->dir, sizeof ret->dir, dir);
        }
        if (scope == HC_SCOPE_SYSTEM) {
                ret->system = true;
                return copy_str(ret->dir, sizeof ret->dir, SYSTEM_DIR);
        }
        env = secure_getenv("HEADCOUNT_DIR");
        if (env && env[0] != '\0')
                return copy_str(ret->dir, sizeof ret->dir, env);

        ret->user_default = true;
        env = secure_getenv("XDG_RUNTIME_DIR");
        if (env && env[0] == '/') {
                if ((size_t) snprintf(ret->dir, sizeof ret->dir, "%s/headcount", env) >= sizeof ret->dir)
                        return -ENAMETOOLONG;
                return 0;
        }
        (void) snprintf(ret->dir, sizeof ret->dir, "/dev/shm/headcount-%u", (unsigned) ret->euid);
        return 0;
}

static int check_options(const hc_options *opt) {
        if (!opt)
                return 0;
        if (opt->size < HC_OPTIONS_SIZE_V1 || opt->size > 4096)
                return -EINVAL;
        return 0;
}

int scope_resolve_dir(const hc_options *opt, struct scope *ret) {
        int r = check_options(opt);

        if (r < 0)
                return r;
        ret->name[0] = '\0';
        return resolve_dir(opt, -1, ret);
}

/* Whether DIR is the system scope's directory: by name, or the same directory by another. */
static bool is_system_dir(const char *dir) {
        struct stat a, b;

        if (strcmp(dir, SYSTEM_DIR) == 0)
                return true;
        return stat(dir, &a) == 0 && stat(SYSTEM_DIR, &b) == 0 && a.st_dev == b.st_dev &&
               a.st_ino == b.st_ino;
}

int scope_resolve_fleet(const hc_options *opt, bool system, struct scope *ret) {
        int r = check_options(opt);

        if (r < 0)
                return r;
        ret->name[0] = '\0';
        r = resolve_dir(system ? NULL : &(hc_options) { .size = sizeof(hc_options),
                                                        .dir = opt ? opt->dir : NULL },
                        system ? HC_SCOPE_SYSTEM : HC_SCOPE_USER, ret);
        if (r < 0)
                return r;
        /* The system scope's agent has a socket of its own outside the directory, however
         * the directory is named: nothing in the directory (1777) is ever its socket. */
        if (!ret->user_default && !ret->system && is_system_dir(ret->dir))
                ret->system = true;
        return 0;
}

int scope_resolve(const char *name, const hc_options *opt, struct scope *ret) {
        int prefix = -1, r;

        r = check_options(opt);
        if (r < 0)
                return r;
        if (!name)
                return -EINVAL;
        if (strncmp(name, "Local\\", 6) == 0) {
                prefix = HC_SCOPE_USER;
                name += 6;
        } else if (strncmp(name, "Global\\", 7) == 0) {
                prefix = HC_SCOPE_SYSTEM;
                name += 7;
        }
        r = name_check(name);
        if (r < 0)
                return r;
        r = resolve_dir(opt, prefix, ret);
        if (r < 0)
                return r;
        {
                size_t dl = strlen(ret->dir), nl = strlen(name);   /* name_check() bounded nl */

                memcpy(ret->name, name, nl + 1);
                if (dl + 1 + nl >= PATH_MAX)
                        return -ENAMETOOLONG;     /* DIR/NAME must be a path */
        }
        return 0;
}

/* Filesystems where byte-range locks are emulated, advisory per client, or not shared. */
static bool fs_is_remote(long type) {
        switch ((unsigned long) type) {
        case 0x6969:            /* NFS */
        case 0x517B:            /* SMB */
        case 0xFF534D42:        /* CIFS */
        case 0xFE534D42:        /* SMB2 */
        case 0x73757245:        /* CODA */
        case 0x5346414F:        /* AFS */
        case 0x6B414653:        /* kAFS */
        case 0x00C36400:        /* Ceph */
        case 0x01021997:        /* 9P */
        case 0x47504653:        /* GPFS */
        case 0x0BD00BD0:        /* Lustre */
                return true;
        }
        return false;
}

#ifdef HC_TEST_HOOKS
long hc_test_fs_type;           /* tests pretend to be on this filesystem type */
#endif

/*
 * -EREMOTE when FD is on a network filesystem. The answer for one device is cached:
 * a device number keeps its filesystem for as long as it is mounted.
 */
int fs_check_local(int fd, dev_t dev) {
        static __thread dev_t cached_dev;
        static __thread bool cached;
        struct statfs sfs;
        long type;

        if (cached && cached_dev == dev)
                return 0;
        if (fstatfs(fd, &sfs) < 0)
                return -errno;
        type = sfs.f_type;
#ifdef HC_TEST_HOOKS
        if (hc_test_fs_type)
                type = hc_test_fs_type;
#endif
        if (fs_is_remote(type))
                return -EREMOTE;
#ifdef HC_TEST_HOOKS
        if (hc_test_fs_type)
                return 0;
#endif
        cached_dev = dev;
        cached = true;
        return 0;
}

int file_trust(const struct stat *st, bool system, uid_t euid) {
        if (!S_ISREG(st->st_mode))
                return -EPERM;
        if (st->st_nlink > 1)
                return -EPERM;            /* a hard link planted under another name */
        if (st->st_uid != euid && st->st_uid != 0)
                return -EPERM;
        if ((st->st_mode & 0022) && !system && st->st_uid != 0)
                return -EPERM;
        return 0;
}

int file_trust_foreign(const struct stat *st, uid_t euid) {
        if (!S_ISREG(st->st_mode) || st->st_nlink > 1 || euid != 0)
                return -EPERM;
        return 0;
}

int mode_trusted(const struct scope *sc, unsigned mode) {
        /* what file_trust() would refuse afterwards for a file we own */
        if ((mode & 0022) && !sc->system && sc->euid != 0)
                return -EINVAL;
        return 0;
}

static int dir_trust(const struct stat *st, bool user_default, uid_t euid) {
        if (!S_ISDIR(st->st_mode))
                return -ENOTDIR;
        if (user_default) {
                /* ours alone: nobody else may even look at which programs we run */
                if (st->st_uid != euid || (st->st_mode & 0077))
                        return -EPERM;
                return 0;
        }
        if (st->st_uid != euid && st->st_uid != 0)
                return -EPERM;
        if ((st->st_mode & 0022) && !(st->st_mode & S_ISVTX))
                return -EPERM;
        return 0;
}

/*
 * Opens the scope directory and verifies it; with CREATE, creates the user scope's
 * default directory (0700) or, for root, the system directory (1777) when missing.
 */
/* stat() of PATH relative to DIRFD (AT_EMPTY_PATH with ""), and the birth time when the
 * filesystem keeps one (*RET_BTIME 0 otherwise). */
static int stat_btime(int dirfd, const char *path, int flags, struct stat *st, uint64_t *ret_btime) {
        struct statx sx;

        *st = (struct stat) {};          /* even on failure: the analyzer cannot tell */
        *ret_btime = 0;
        if (statx(dirfd, path, flags | AT_STATX_SYNC_AS_STAT,
                  STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_UID | STATX_INO | STATX_BTIME, &sx) < 0)
                return -errno;
        *st = (struct stat) {
                .st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor),
                .st_ino = sx.stx_ino,
                .st_mode = sx.stx_mode,
                .st_nlink = sx.stx_nlink,
                .st_uid = sx.stx_uid,
        };
        *ret_btime = sx.stx_mask & STATX_BTIME ?
                     (uint64_t) sx.stx_btime.tv_sec * 1000000000 + sx.stx_btime.tv_nsec : 0;
        return 0;
}

static int open_dir(const struct scope *sc, bool create, int *ret_dirfd, struct stat *ret_st,
                    uint64_t *ret_btime) {
        _cleanup_close_ int fd = -EBADF;
        uint64_t btime;
        struct stat st;
        int r;

        for (unsigned attempt = 0;; attempt++) {
                /* The per-user default must be the directory itself: in /dev/shm anyone
                 * could plant a symlink by that name. Explicit directories may be reached
                 * through symlinks (as /var/run is); their target is what we check. */
                fd = xopenat(AT_FDCWD, sc->dir, O_RDONLY | O_DIRECTORY |
                             (sc->user_default || sc->system ? O_NOFOLLOW : 0), 0);
                if (fd >= 0)
                        break;
                errno = -fd;
                if (sc->user_default && (errno == ELOOP || errno == ENOTDIR)) {
                        struct stat lst;
                        if (lstat(sc->dir, &lst) == 0 && S_ISLNK(lst.st_mode))
                                return -EPERM;    /* a symlink in place of our directory */
                }
                if (errno == ELOOP)
                        return -EPERM;
                if (errno != ENOENT || !create || attempt > 0)
                        return -errno;
                if (sc->user_default) {
                        if (mkdir(sc->dir, 0700) < 0 && errno != EEXIST)
                                return -errno;
                } else if (sc->system && geteuid() == 0) {
                        if (mkdir(sc->dir, 01777) < 0 && errno != EEXIST)
                                return -errno;
                        (void) chmod(sc->dir, 01777);   /* past the umask */
                } else
                        return -ENOENT;
        }
        r = stat_btime(fd, "", AT_EMPTY_PATH, &st, &btime);
        if (r < 0)
                return r;
        r = dir_trust(&st, sc->user_default, sc->euid);
        if (r < 0)
                return r;
        r = fs_check_local(fd, st.st_dev);
        if (r < 0)
                return r;
        *ret_dirfd = TAKE_FD(fd);
        if (ret_st)
                *ret_st = st;
        if (ret_btime)
                *ret_btime = btime;
        return 0;
}

int scope_open_dir(const struct scope *sc, bool create, int *ret_dirfd) {
        return open_dir(sc, create, ret_dirfd, NULL, NULL);
}

/*
 * The directory cache. Opening, checking and closing the scope directory were three of
 * the fourteen system calls of a join by name. A process keeps the directories it used
 * open (a few: DIR_CACHE entries), and each call checks that the path still leads to the
 * very directory it has open, with the same stat() that checks its owner and mode: the
 * same guarantee as opening it again (what we use is the directory that the path named
 * when we looked, checked as it was then), for one system call. The very directory: the
 * same device, inode and birth time, for a filesystem that gives a directory removed
 * since its inode number back to a new one; where the filesystem keeps no birth time, an
 * fstat() of the directory we have says it still has a name. An entry whose path now
 * leads elsewhere is closed once the last handle that uses it gives it back.
 */
#define DIR_CACHE 4

static struct dir_entry {
        char *path;              /* NULL: free */
        dev_t dev;
        ino_t ino;
        uint64_t btime;          /* its birth time, 0 when the filesystem keeps none */
        int fd;
        unsigned users;          /* handles using fd */
        unsigned gen;            /* one more each time the entry is reused: tokens */
        bool nofollow;
        bool stale;              /* the path leads elsewhere now: close when unused */
        bool lost;               /* the program closed fd under us: never close it */
} dir_cache[DIR_CACHE];
static pthread_mutex_t dir_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static void entry_drop(struct dir_entry *e) {
        unsigned gen = e->gen + 1;

        if (e->path && !e->lost)
                safe_close(e->fd);
        free(e->path);
        *e = (struct dir_entry) { .fd = -EBADF, .gen = gen };
}

static unsigned entry_token(const struct dir_entry *e) {
        return (unsigned) (e - dir_cache) + 1 + (e->gen << 8);
}

static struct dir_entry *token_entry(unsigned token) {
        struct dir_entry *e;

        if (token == 0 || (token & 0xff) > DIR_CACHE)
                return NULL;
        e = &dir_cache[(token & 0xff) - 1];
        return e->path && e->gen == token >> 8 && e->users > 0 ? e : NULL;
}

/* SCOPE_DIR_OURS: only our euid (and root) may make files in the directory of ST;
 * SCOPE_DIR_PRIVATE: nobody else may even reach them. */
static unsigned dir_flags(const struct stat *st, uid_t euid) {
        if (st->st_uid != euid || (st->st_mode & 0022))
                return 0;
        return SCOPE_DIR_OURS | (st->st_mode & 0077 ? 0 : SCOPE_DIR_PRIVATE);
}

int scope_get_dir(const struct scope *sc, bool create, int *ret_dirfd, unsigned *ret_flags,
                  unsigned *ret_token) {
        bool nofollow = sc->user_default || sc->system;
        unsigned token = 0;
        uint64_t btime;
        struct stat st, fst;
        int fd = -EBADF, r;

        if (stat_btime(AT_FDCWD, sc->dir, nofollow ? AT_SYMLINK_NOFOLLOW : 0, &st, &btime) == 0 &&
            dir_trust(&st, sc->user_default, sc->euid) == 0) {
                (void) pthread_mutex_lock(&dir_cache_lock);
                for (unsigned i = 0; i < DIR_CACHE; i++) {
                        struct dir_entry *e = &dir_cache[i];
                        if (e->path && !e->stale && e->nofollow == nofollow && e->dev == st.st_dev &&
                            e->ino == st.st_ino && e->btime == btime && strcmp(e->path, sc->dir) == 0) {
                                e->users++;
                                fd = e->fd;
                                token = entry_token(e);
                                break;
                        }
                }
                (void) pthread_mutex_unlock(&dir_cache_lock);
                if (fd >= 0 && btime == 0 && (fstat(fd, &fst) < 0 || fst.st_nlink == 0)) {
                        scope_put_dir(fd, token);  /* removed; its inode number lives on */
                        fd = -EBADF;
                }
                if (fd >= 0) {
                        r = fs_check_local(fd, st.st_dev);
                        if (r < 0) {
                                scope_put_dir(fd, token);
                                return r;
                        }
                        *ret_dirfd = fd;
                        *ret_token = token;
                        if (ret_flags)
                                *ret_flags = dir_flags(&st, sc->euid);
                        return 0;
                }
        }

        /* Not cached, or not the directory we have: open and check it as always. */
        r = open_dir(sc, create, &fd, &st, &btime);
        if (r < 0)
                return r;
        (void) pthread_mutex_lock(&dir_cache_lock);
        {
                struct dir_entry *slot = NULL;

                for (unsigned i = 0; i < DIR_CACHE; i++) {
                        struct dir_entry *e = &dir_cache[i];
                        if (e->path && e->nofollow == nofollow && strcmp(e->path, sc->dir) == 0) {
                                if (e->users == 0)
                                        entry_drop(e);
                                else
                                        e->stale = true;
                        }
                        if (!e->path && !slot)
                                slot = e;
                }
                if (!slot)
                        for (unsigned i = 0; i < DIR_CACHE && !slot; i++)
                                if (dir_cache[i].users == 0) {
                                        slot = &dir_cache[i];
                                        entry_drop(slot);
                                }
                if (slot) {
                        slot->path = strdup(sc->dir);
                        if (slot->path) {
                                slot->nofollow = nofollow;
                                slot->dev = st.st_dev;
                                slot->ino = st.st_ino;
                                slot->btime = btime;
                                slot->fd = fd;
                                slot->users = 1;
                                slot->stale = false;
                                token = entry_token(slot);
                        }
                }
        }
        (void) pthread_mutex_unlock(&dir_cache_lock);
        *ret_dirfd = fd;
        *ret_token = token;               /* 0, not cached: scope_put_dir() closes it */
        if (ret_flags)
                *ret_flags = dir_flags(&st, sc->euid);
        return 0;
}

void scope_put_dir(int dirfd, unsigned token) {
        struct dir_entry *e;

        if (token == 0) {
                safe_close(dirfd);
                return;
        }
        (void) pthread_mutex_lock(&dir_cache_lock);
        e = token_entry(token);
        if (e && --e->users == 0 && e->stale)
                entry_drop(e);
        (void) pthread_mutex_unlock(&dir_cache_lock);
}

void scope_lost_dir(unsigned token) {
        struct dir_entry *e;

        (void) pthread_mutex_lock(&dir_cache_lock);
        e = token_entry(token);
        if (e)
                e->lost = e->stale = true;
        (void) pthread_mutex_unlock(&dir_cache_lock);
}
