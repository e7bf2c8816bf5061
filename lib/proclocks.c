/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Counting seats without opening their lock files. Whoever may only read a region cannot
 * open its lock files (create.c gives them no read bit for that class: a read lock would
 * block every join), but stat() needs no permission on the file, and /proc/locks lists
 * every lock on the system with its file's device, inode and byte range:
 *
 *   1: OFDLCK ADVISORY  WRITE -1 fe:00:10953415 1099511627776 1099511627776
 *   2: -> OFDLCK ADVISORY  WRITE -1 ...      (a request waiting for the lock above)
 *
 * A seat is an OFD write lock, and OFD locks are listed in every PID namespace (with pid
 * -1; POSIX locks of processes our /proc cannot name are left out, Linux 4.9 and later), so
 * the held seats are the WRITE entries of type OFDLCK or POSIX on a seat byte of one of
 * the region's lock files; waiting requests ("->") are not locks. A READ entry on a seat
 * byte holds no seat and is never counted; it is reported apart (read_locked).
 *
 * Consistency. The kernel writes the list at most a page per read() under its lock
 * list's lock, and finds where to go on by position: when the list changes between two
 * reads (a lock anywhere on the system taken or dropped), an entry can be seen twice
 * (harmless: the seats are a set) or skipped. A list that fits in one read is one
 * consistent look. A longer one is read again, each time in reads of another size, so
 * that the kernel starts over at other places, and the seats found in any pass are
 * counted, until a pass finds nothing new (at most PASSES_MAX passes). Measured with 300
 * locks elsewhere taken and dropped without pause: one pass misses a held seat in a third
 * of the counts, the union of passes in none. A seat let go during the count may still be
 * counted, as with any count that looks at one seat after another.
 *
 * The work is linear in the size of /proc/locks; lines are bounded (LINE_MAX_LEN), and
 * anything we do not recognise is skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "hc-internal.h"
#include "proclocks.h"
#include "util.h"

#define PASSES_MAX 8
#define LINE_MAX_LEN 512
#define TOKENS 10

#define PROC_LOCKS "/proc/locks"

static bool parse_u64(const char *s, int base, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (!*s || *s == '-' || *s == '+')
                return false;
        errno = 0;
        v = strtoull(s, &end, base);
        if (errno != 0 || *end != '\0')
                return false;
        *ret = v;
        return true;
}

/* "maj:min:ino" (hex, hex, decimal) */
static bool parse_devino(char *s, dev_t *ret_dev, uint64_t *ret_ino) {
        char *c1 = strchr(s, ':'), *c2;
        uint64_t maj, min;

        if (!c1)
                return false;
        c2 = strchr(c1 + 1, ':');
        if (!c2)
                return false;
        *c1 = *c2 = '\0';
        if (!parse_u64(s, 16, &maj) || !parse_u64(c1 + 1, 16, &min) || !parse_u64(c2 + 1, 10, ret_ino) ||
            maj > UINT32_MAX || min > UINT32_MAX)
                return false;
        *ret_dev = makedev((unsigned) maj, (unsigned) min);
        return true;
}

/* One line of /proc/locks, NUL-terminated and writable. */
static void parse_line(struct proc_locks *q, char *line, uint64_t *held, uint64_t *rd) {
        char *tok[TOKENS], *save = NULL, *p;
        unsigned n = 0, t;
        uint64_t ino, start, end;
        dev_t dev;
        bool write;

        for (p = strtok_r(line, " \t", &save); p && n < TOKENS; p = strtok_r(NULL, " \t", &save))
                tok[n++] = p;
        /* id: [->] TYPE ADVISORY RW PID DEV:INO START END */
        if (n < 8)
                return;
        if (strcmp(tok[1], "->") == 0)
                return;                   /* a request that waits: no lock */
        if (n != 8)
                return;
        if (strcmp(tok[1], "OFDLCK") != 0 && strcmp(tok[1], "POSIX") != 0)
                return;                   /* flock(), leases: never on a seat byte */
        if (strcmp(tok[3], "WRITE") == 0)
                write = true;
        else if (strcmp(tok[3], "READ") == 0)
                write = false;
        else
                return;
        if (!parse_devino(tok[5], &dev, &ino) || dev != q->dev)
                return;
        if (!parse_u64(tok[6], 10, &start))
                return;
        if (strcmp(tok[7], "EOF") == 0)
                end = UINT64_MAX;
        else if (!parse_u64(tok[7], 10, &end) || end < start)
                return;

        for (t = 0; t < q->n_files; t++) {
                uint64_t first, last, a, b;

                if ((uint64_t) q->ino[t] != ino)
                        continue;
                /* the seat bytes of file t: [first, last] */
                first = (uint64_t) HC_LOCK_BASE + (uint64_t) t * HC_SEATS_PER_FILE;
                last = first + q->seats[t] - 1;
                if (q->seats[t] == 0 || end < first || start > last)
                        return;
                a = start > first ? start : first;
                b = end < last ? end : last;
                for (uint64_t o = a; o <= b; o++) {
                        uint64_t bit = UINT64_C(1) << (unsigned) (o - first);
                        if (write)
                                held[t] |= bit;
                        else
                                rd[t] |= bit;
                }
                return;
        }
}

/* Read sizes of the passes: each makes the kernel start over at other entries. */
static const size_t pass_read_size[] = { 8192, 3001, 1999, 3607, 1409, 2777, 1123, 4001 };

/* One read of the whole list, in reads of SIZE bytes, ORed into HELD[] and RD[];
 * *RET_CHUNKS: how many read()s it took. */
static int scan_once(struct proc_locks *q, uint64_t *held, uint64_t *rd, size_t size, unsigned *ret_chunks) {
        _cleanup_close_ int fd = -EBADF;
        char buf[8192 + LINE_MAX_LEN + 1];
        size_t have = 0;
        bool skipping = false;
        unsigned chunks = 0;

        fd = open(PROC_LOCKS, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -EACCES;           /* no /proc: we may not count, as we may not open */
        for (;;) {
                size_t room = sizeof buf - 1 - have;
                ssize_t n = read(fd, buf + have, room < size ? room : size);
                char *s, *nl;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                chunks++;
                have += (size_t) n;
                buf[have] = '\0';
                s = buf;
                while ((nl = memchr(s, '\n', have - (size_t) (s - buf)))) {
                        *nl = '\0';
                        if (!skipping)
                                parse_line(q, s, held, rd);
                        skipping = false;
                        s = nl + 1;
                }
                have -= (size_t) (s - buf);
                memmove(buf, s, have);
                if (have > LINE_MAX_LEN) {
                        have = 0;         /* no line of ours is this long: skip to its end */
                        skipping = true;
                }
        }
        *ret_chunks = chunks;
        return 0;
}

int proc_locks_scan(struct proc_locks *q) {
        size_t size = sizeof(uint64_t) * q->n_files;
        int total = 0;

        _Static_assert(ELEMENTSOF(pass_read_size) == PASSES_MAX, "one size a pass");
        if (q->n_files > HC_LOCK_FILES_MAX)
                return -EINVAL;
        memset(q->held, 0, size);
        memset(q->read_locked, 0, size);
        for (unsigned pass = 0; pass < PASSES_MAX; pass++) {
                uint64_t held[HC_LOCK_FILES_MAX], rd[HC_LOCK_FILES_MAX];
                unsigned chunks = 0;
                bool news = false;
                int r;

                memcpy(held, q->held, size);
                memcpy(rd, q->read_locked, size);
                r = scan_once(q, held, rd, pass_read_size[pass], &chunks);
                if (r < 0)
                        return r;
                news = memcmp(held, q->held, size) != 0 || memcmp(rd, q->read_locked, size) != 0;
                memcpy(q->held, held, size);
                memcpy(q->read_locked, rd, size);
                if ((pass == 0 && chunks <= 1) || (pass > 0 && !news))
                        break;
        }
        for (unsigned k = 0; k < q->n_files; k++) {
                q->read_locked[k] &= ~q->held[k];
                total += __builtin_popcountll(q->held[k]);
        }
        return total;
}
