/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Who holds a seat, proven rather than recorded. A seat's record names the process that
 * joined, but the seat is a lock of an open file description, and a description outlives
 * the process that opened it: a script that took a seat on its fd 9 and left a child
 * holding a copy ends, its pid is given to somebody else, and the record still names it.
 * So whoever acts on a holder's pid (signals it, names it as verified) asks the kernel:
 *
 *   /proc/PID/fd/N       stat() follows it to the file: it must be the seat's lock file;
 *   /proc/PID/fdinfo/N   lists the locks of that description, one "lock:" line each:
 *                        "lock:\t1: OFDLCK ADVISORY  WRITE -1 00:2a:1234 START END"
 *                        (OFD locks show pid -1; END is a byte or "EOF").
 *
 * PID holds seat I when one of its descriptors is the lock file of seat I and its fdinfo
 * has a WRITE lock whose range covers the seat's byte. Only the seat's byte counts, never
 * "some lock on the file": the lock files also carry reserved bytes below the seats. The
 * inode in the lock line must be the lock file's; its device is not compared, as btrfs's
 * stat() reports a subvolume's device and the lock list the filesystem's (the stat() of
 * the descriptor already named the device). The stat() is made again after the fdinfo is
 * read, so that a descriptor swapped in between is not taken for the one we looked at.
 *
 * Only the seat's description can hold a write lock on its byte, so any process with such
 * a descriptor shares the one description that holds the seat: "holds the seat" means
 * that. Several processes may share it (a script and its children); any of them is proof.
 * A description may also be held by no process at all (a mapping of the file, a
 * descriptor in flight in a socket): then nobody can be identified.
 *
 * Why not the start time (/proc/PID/stat field 22 and the boot id, recorded at the join):
 * it proves that PID is still the process that joined, not that it still holds the seat
 * (it may have closed its copy and lived on), and the record has no room for it. Where
 * the fdinfo is closed to us (another user's process, a process that is not dumpable) we
 * prove nothing and say so (-EACCES); that is where a caller could not signal it either.
 *
 * A process is checked through a pidfd opened first, and must still be alive through it
 * after the proof: the pid proven is the process we opened. PIDs in /proc are those of
 * the PID namespace that /proc was mounted for, which need not be ours (unshare --pid
 * without --mount-proc); then the fdinfo of the pidfd gives its "Pid:" as that /proc
 * numbers it. A pid found in /proc is turned back into ours through its "NSpid:" line,
 * checked the same way. A process that /proc cannot show (its namespace is not below
 * /proc's) cannot be proven: -EXDEV. A record of another PID namespace than ours is the
 * caller's to refuse (its hc_instance says HC_INSTANCE_OTHER_PIDNS).
 *
 * Costs. A caller that knows the descriptor number (hc_slot_set_pid() naming a child,
 * which inherited the seat under the number it has here) has that one looked at first,
 * by its paths: about ten system calls. Otherwise a process's descriptors are looked at
 * one by one, at most HOLDER_FDS_MAX of them (a process with more is not proven), and a
 * search over all processes looks at most HOLDER_LOOKS_MAX descriptors and processes in
 * all: it is for the rare path (a --replace that finds the record wrong), never for a
 * count.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hc-internal.h"
#include "handed.h"
#include "holder.h"
#include "seat.h"
#include "util.h"

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif

#define HOLDER_LOOKS_MAX (1u << 19)     /* descriptors and processes one search looks at */
#define HOLDER_FDS_MAX (1u << 16)       /* descriptors of one process */
#define FDINFO_BYTES_MAX (1 << 20)      /* of one descriptor's fdinfo */

/* Where a seat lives: its lock file as stat() names it, and the byte. */
struct place {
        dev_t dev;
        ino_t ino;
        off_t byte;
        int hint;                 /* a descriptor number to look at first, or -1 */
};

/* Seat SEAT, whose lock file FD is a descriptor of (or, with OWN, its own lock file, where
 * a command that a holder handed the seat to holds the byte of seat 0: handed.c). */
static int place_of_fd(int fd, unsigned seat, bool own, struct place *ret) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        *ret = (struct place) { .dev = st.st_dev, .ino = st.st_ino, .byte = seat_byte(own ? 0 : seat),
                                .hint = -1 };
        return 0;
}

/* The own lock file of handed seat SEAT, as its record names it (handed.c). */
static int own_place(hc_region *h, unsigned seat, struct place *ret) {
        struct stat st;
        int r;

        r = handed_file(h, seat, &st);
        if (r < 0)
                return r;
        *ret = (struct place) { .dev = st.st_dev, .ino = st.st_ino, .byte = seat_byte(0), .hint = -1 };
        return 0;
}

/* Asks the handle and seat.c where seat SEAT is: they alone know how seats map to files. */
static int seat_place(hc_region *h, unsigned seat, struct place *ret) {
        int fd, r;

        if (seat >= h->r.capacity)
                return -EINVAL;
        r = handle_query_fd(h, seat_file(seat), &fd);
        if (r < 0)
                return r;
        return place_of_fd(fd, seat, false, ret);
}

static int pidfd_open(pid_t pid) {
        return (int) syscall(__NR_pidfd_open, pid, 0);
}

/* Reads the number after "KEY:\t" in the small /proc file PATH: the first one, or with
 * NTH the NTH one of the line (0 first), or its count with COUNT. -ENOENT without KEY. */
static long proc_field(const char *path, const char *key, unsigned nth, bool count) {
        char buf[4096], *p, *e;
        size_t klen = strlen(key);
        ssize_t n;
        long v = -ENOENT;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof buf - 1);
        safe_close(fd);
        if (n <= 0)
                return -ENOENT;
        buf[n] = '\0';
        for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                unsigned i = 0;

                if (strncmp(p, key, klen) != 0 || p[klen] != ':')
                        continue;
                p += klen + 1;
                for (;;) {
                        long x;

                        while (*p == ' ' || *p == '\t')
                                p++;
                        errno = 0;
                        x = strtol(p, &e, 10);
                        if (e == p || errno != 0)
                                return count ? (long) i : -ENOENT;
                        if (!count && i == nth)
                                return x;
                        i++;
                        p = e;
                }
        }
        return v;
}

/* The pid that /proc gives the process of PIDFD; 0 when /proc cannot show it, -errno. */
static long proc_pid_of(int pidfd) {
        char path[64];

        (void) snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
        return proc_field(path, "Pid", 0, false);
}

/* Whether /proc numbers processes as we do: its "self" is our pid. */
static bool proc_ours(void) {
        char buf[32];
        ssize_t n;

        n = readlink("/proc/self", buf, sizeof buf - 1);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        return strtol(buf, NULL, 10) == (long) getpid();
}

/* Whether the process of PIDFD still lives (a signal 0 it may refuse us) */
static bool pidfd_alive(int pidfd) {
        return syscall(__NR_pidfd_send_signal, pidfd, 0, NULL, 0) == 0 || errno == EPERM;
}

/* Whether LINE is a lock line of a write lock on inode INO that covers BYTE. */
static bool lock_covers(const char *line, const struct place *pl) {
        char kind[16], advice[16], type[16], end[24], *e;
        unsigned maj, min;
        unsigned long long ino;
        long long start, last;
        int pid;

        if (strncmp(line, "lock:", 5) != 0)
                return false;
        if (sscanf(line + 5, " %*d: %15s %15s %15s %d %x:%x:%llu %lld %23s", kind, advice, type,
                   &pid, &maj, &min, &ino, &start, end) != 9)
                return false;
        /* an OFD lock is a seat; a process's POSIX lock on the byte holds it just as well */
        if ((strcmp(kind, "OFDLCK") != 0 && strcmp(kind, "POSIX") != 0) ||
            strcmp(type, "WRITE") != 0 || ino != (unsigned long long) pl->ino || start > pl->byte)
                return false;
        if (strcmp(end, "EOF") == 0)
                return true;
        errno = 0;
        last = strtoll(end, &e, 10);
        return errno == 0 && *e == '\0' && last >= pl->byte;
}

/* 1 when the fdinfo NAME in directory DFD shows a lock of the seat, 0 when not, -errno. */
static int fdinfo_holds(int dfd, const char *name, const struct place *pl) {
        char buf[1024];
        size_t have = 0, total = 0;
        bool skip = false;        /* inside a line too long to be a lock line */
        int fd, r = 0;

        fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        while (r == 0 && total < FDINFO_BYTES_MAX) {
                ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
                char *p = buf, *nl;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                total += (size_t) n;
                have += (size_t) n;
                buf[have] = '\0';
                while (r == 0 && (nl = strchr(p, '\n'))) {
                        *nl = '\0';
                        if (!skip && lock_covers(p, pl))
                                r = 1;
                        skip = false;
                        p = nl + 1;
                }
                if (n == 0) {
                        if (r == 0 && !skip && lock_covers(p, pl))
                                r = 1;
                        break;
                }
                have = (size_t) (buf + have - p);
                memmove(buf, p, have);
                if (have == sizeof buf - 1) {
                        have = 0;
                        skip = true;
                }
        }
        safe_close(fd);
        return r;
}

/* Whether descriptor NAME of the process is the seat's lock file (stat() follows it). */
static bool fd_is_file(int fddir, const char *name, const struct place *pl) {
        struct stat st;

        return fstatat(fddir, name, &st, 0) == 0 && st.st_dev == pl->dev && st.st_ino == pl->ino;
}

/* Whether descriptor NAME holds the seat: the lock file before and after its locks. */
static bool fd_holds(int fddir, int infodir, const char *name, const struct place *pl) {
        return fd_is_file(fddir, name, pl) && fdinfo_holds(infodir, name, pl) == 1 &&
                fd_is_file(fddir, name, pl);
}

/* PID when PID holds the seat, -ESRCH when not, -EACCES; counts its looks in *LOOKS. */
static int check_pid(const struct place *pl, pid_t pid, unsigned *looks) {
        char path[64];
        struct dirent *de;
        DIR *d = NULL;
        unsigned n_fds = 0;
        int fddir, infodir = -EBADF, r = -ESRCH;

        /* A child that inherited the seat has it under the number it had here: that one
         * first, by its paths, before opening and reading the whole directory. */
        if (pl->hint >= 0) {
                char fdpath[64], infopath[64];

                (void) snprintf(fdpath, sizeof fdpath, "/proc/%d/fd/%d", (int) pid, pl->hint);
                (void) snprintf(infopath, sizeof infopath, "/proc/%d/fdinfo/%d", (int) pid, pl->hint);
                (*looks)++;
                if (fd_is_file(AT_FDCWD, fdpath, pl) && fdinfo_holds(AT_FDCWD, infopath, pl) == 1 &&
                    fd_is_file(AT_FDCWD, fdpath, pl))
                        return (int) pid;
        }
        (void) snprintf(path, sizeof path, "/proc/%d/fd", (int) pid);
        fddir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fddir >= 0) {
                (void) snprintf(path, sizeof path, "/proc/%d/fdinfo", (int) pid);
                infodir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (fddir < 0 || infodir < 0) {
                r = errno == EACCES || errno == EPERM ? -EACCES :
                    errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
                goto done;
        }
        d = fdopendir(fddir);
        if (!d) {
                r = -errno;
                goto done;
        }
        fddir = -EBADF;           /* the DIR has it */
        while (r == -ESRCH && *looks < HOLDER_LOOKS_MAX && n_fds < HOLDER_FDS_MAX && (de = readdir(d))) {
                if (!isdigit((unsigned char) de->d_name[0]))
                        continue;
                (*looks)++;
                n_fds++;
                if (fd_holds(dirfd(d), infodir, de->d_name, pl))
                        r = (int) pid;
        }
done:
        if (d)
                (void) closedir(d);
        safe_close(fddir);
        safe_close(infodir);
        return r;
}

/* The start time of process PID (/proc/PID/stat's field 22, in clock ticks since boot),
 * or 0 when it has none we can read. */
static unsigned long long start_time(pid_t pid) {
        char path[64], buf[1024], *p;
        unsigned long long t = 0;
        ssize_t n;
        int fd;

        (void) snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof buf - 1);
        safe_close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        p = strrchr(buf, ')');            /* the command name may hold anything */
        if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
                                "%*d %*d %*d %*d %llu", &t) != 1)
                return 0;
        return t;
}

/* check_place() without a pidfd (no pidfd_open(): Linux before 5.3, or valgrind): the
 * same process is the one with the same start time before and after the proof. /proc
 * must number processes as we do. */
static int check_place_by_start(const struct place *pl, pid_t pid) {
        unsigned long long t0;
        unsigned looks = 0;
        int r;

        if (!proc_ours())
                return -EXDEV;
        t0 = start_time(pid);
        if (t0 == 0)
                return -ESRCH;
        r = check_pid(pl, pid, &looks);
        if (r > 0 && start_time(pid) != t0)
                r = -ESRCH;               /* it ended, and the pid is another's now */
        return r;
}

/* PID (ours) when it holds the seat at PL: looked at in /proc under /proc's number for
 * it, through a pidfd that must still be alive after the proof. */
static int check_place(const struct place *pl, pid_t pid) {
        unsigned looks = 0;
        long nr;
        int pidfd, r;

        if (pid <= 0)
                return -EINVAL;
        pidfd = pidfd_open(pid);
        if (pidfd < 0 && (errno == ENOSYS || errno == EPERM))
                return check_place_by_start(pl, pid);
        if (pidfd < 0)                    /* EINVAL: a thread's id, no process's */
                return errno == ESRCH || errno == EINVAL ? -ESRCH : -errno;
        nr = proc_ours() ? pid : proc_pid_of(pidfd);
        if (nr == 0)
                r = -EXDEV;               /* /proc is of a namespace that cannot see it */
        else if (nr < 0 || nr > INT32_MAX)
                r = nr == -1 || nr == -ENOENT ? -ESRCH : (int) nr;
        else
                r = check_pid(pl, (pid_t) nr, &looks);
        if (r > 0)
                r = pidfd_alive(pidfd) ? (int) pid : -ESRCH;
        safe_close(pidfd);
        return r;
}

/* The pid in our namespace of the process that /proc numbers NR, or -ESRCH: its NSpid
 * entry at our depth below /proc's namespace, checked through a pidfd. */
static int our_pid_of(long nr) {
        char path[64];
        long depth, pid, back;
        int pidfd;

        if (proc_ours())
                return (int) nr;          /* /proc numbers processes as we do */
        depth = proc_field("/proc/self/status", "NSpid", 0, true);
        if (depth <= 0)
                return -ESRCH;
        (void) snprintf(path, sizeof path, "/proc/%ld/status", nr);
        pid = proc_field(path, "NSpid", (unsigned) depth - 1, false);
        if (pid <= 0 || pid > INT32_MAX)
                return -ESRCH;
        pidfd = pidfd_open((pid_t) pid);
        if (pidfd < 0)
                return -ESRCH;
        back = proc_pid_of(pidfd);
        safe_close(pidfd);
        return back == nr ? (int) pid : -ESRCH;
}

int holder_check(hc_region *h, unsigned seat, pid_t pid) {
        struct place pl = { .hint = -1 };
        int r, q;

        r = seat_place(h, seat, &pl);
        if (r < 0)
                return r;
        r = check_place(&pl, pid);
        /* a seat handed to a command: the command holds its own file's byte */
        if (r != pid && own_place(h, seat, &pl) == 0 && (q = check_place(&pl, pid)) == pid)
                r = q;
        return r;
}

int holder_check_fd(int fd, unsigned seat, bool own, pid_t pid) {
        struct place pl = { .hint = -1 };
        int r;

        r = place_of_fd(fd, seat, own, &pl);
        if (r < 0)
                return r;
        pl.hint = fd;
        return check_place(&pl, pid);
}

/* The search over all processes for PL. */
static int find_place(const struct place *pl) {
        unsigned looks = 0;
        struct dirent *de;
        DIR *d;
        int r;

        d = opendir("/proc");
        if (!d)
                return -errno;
        r = -ESRCH;
        while (r < 0 && looks < HOLDER_LOOKS_MAX && (de = readdir(d))) {
                char *e;
                long pid;

                if (!isdigit((unsigned char) de->d_name[0]))
                        continue;
                pid = strtol(de->d_name, &e, 10);
                if (*e != '\0' || pid <= 0 || pid > INT32_MAX)
                        continue;
                looks++;
                r = check_pid(pl, (pid_t) pid, &looks);
                if (r > 0)
                        r = our_pid_of(pid);
                if (r < 0)
                        r = -ESRCH;         /* gone, closed to us, or not ours to name */
        }
        (void) closedir(d);
        return r;
}

int holder_find(hc_region *h, unsigned seat) {
        struct place pl = { .hint = -1 };
        int r;

        r = seat_place(h, seat, &pl);
        if (r < 0)
                return r;
        r = find_place(&pl);
        /* a seat handed to a command: the command holds its own file's byte */
        if (r == -ESRCH && own_place(h, seat, &pl) == 0)
                r = find_place(&pl);
        return r;
}
