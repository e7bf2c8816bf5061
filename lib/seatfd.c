/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Seats held by a caller's descriptor: hc_seat_path(), hc_join_fd(), hc_leave_fd(). They
 * are for a shell script that holds a seat for the rest of its life without a wrapper,
 * as "exec 9>F; flock -n 9" does for flock(1):
 *
 *     exec 9<>"$(headcount path NAME)"      the shell opens a lock file of the region
 *     headcount join --fd 9 NAME            a child takes the seat on fd 9
 *
 * A seat is an OFD lock, and an OFD lock belongs to the open file description, not to
 * the process that took it. The child's fd 9 is the shell's description, so the lock the
 * child takes stays when the child exits, and the kernel drops it when the last copy of
 * the description is closed: when the script and everything that inherited fd 9 are gone,
 * however they ended. Nothing here is new machinery: the seat engine is seat.c's, through
 * a description that someone else opened.
 *
 * What we cannot ask the kernel: whether a given description holds a lock. F_OFD_GETLK
 * through the description itself never reports its own locks. So we find the held seats
 * through our own description (seat_count()) and try each of them through the caller's:
 * F_OFD_SETLK succeeds only on a seat that the caller's description holds already (a
 * no-op) or that was given back in between (then it holds it now). That makes a second
 * hc_join_fd() on the same descriptor return the seat it holds, as flock -n on a lock one
 * holds succeeds, and lets hc_leave_fd() find the seat to give back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "files.h"
#include "handed.h"
#include "handle.h"
#include "hc-internal.h"
#include "holder.h"
#include "proc.h"
#include "seat.h"
#include "util.h"
#include "wait.h"

/* Which lock file of H the description FD is, in *RET_K. */
static int fd_lock_file(hc_region *h, int fd, unsigned *ret_k) {
        struct stat st, qst;
        int flags, q;

        if (fstat(fd, &st) < 0)
                return -errno;            /* -EBADF: not open */
        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EXDEV;
        for (unsigned k = 0; k < h->n_files; k++) {
                int qfd;

                q = handle_query_fd(h, k, &qfd);
                if (q < 0)
                        return q;
                if (fstat(qfd, &qst) < 0)
                        return -errno;
                if (qst.st_dev == st.st_dev && qst.st_ino == st.st_ino) {
                        if ((flags & O_ACCMODE) == O_RDONLY)
                                return -EBADF;    /* a write lock needs a writable description */
                        *ret_k = k;
                        return 0;
                }
        }
        /* a lock file of this name whose region was removed since: open it again */
        return st.st_nlink == 0 ? -ESTALE : -EXDEV;
}

/* The seat among FIRST..FIRST+N-1 that FD's description holds, or -ENOENT. */
static int held_seat(hc_region *h, unsigned k, int fd, unsigned first, unsigned n) {
        uint64_t mask;
        int qfd, seat = -ENOENT, r;

        r = handle_query_fd(h, k, &qfd);
        if (r < 0)
                return r;
        r = seat_count(qfd, first, n, &mask);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < n; i++) {
                if (!(mask & (UINT64_C(1) << i)) || seat_take(fd, first + i) < 0)
                        continue;
                if (seat < 0)
                        seat = (int) (first + i);
                else
                        seat_give_back(fd, first + i);  /* given back and taken just now */
        }
        return seat;
}

/* Tries seats FIRST..FIRST+N-1 through FD, waiting as OPT says. The seat, or -EBUSY,
 * -ETIMEDOUT, -ESTALE. */
static int take_through(hc_region *h, const hc_options *opt, unsigned k, int fd, unsigned first,
                        unsigned n) {
        int64_t deadline = deadline_from(opt ? opt->timeout_ms : 0);
        unsigned transient_waits = 0;
        struct waiter w;
        int seat = -EAGAIN;

        waiter_init(&w, h);
        while (seat == -EAGAIN) {
                uint64_t handed = 0;      /* free bytes of seats a command holds */
                int qfd;

                for (unsigned i = 0; i < n && seat == -EAGAIN; i++) {
                        int r = seat_take(fd, first + i);
                        uint32_t flags;
                        uint64_t run;
                        bool present;

                        if (r == 0) {
                                /* a record on a free byte: a command may hold it (handed.c) */
                                (void) region_seat_state(&h->r, first + i, false, &flags, &present, &run);
                                if (present && handed_probe(h, first + i) != 0) {
                                        seat_give_back(fd, first + i);
                                        handed |= UINT64_C(1) << i;
                                        continue;
                                }
                                if (present)      /* a dead holder's: to the ring */
                                        (void) region_record_bury(&h->r, first + i, NULL);
                                seat = (int) (first + i);
                        } else if (r != -EAGAIN)
                                seat = r;
                }
                if (seat != -EAGAIN)
                        break;
                if (handle_retired(h)) {
                        seat = -ESTALE;
                        break;
                }
                if (transient_waits < 200 && handle_query_fd(h, k, &qfd) == 0 &&
                    (seat_transient(qfd, first, n) & ~handed) != 0) {
                        transient_waits++;
                        sleep_usec(1000);
                        continue;
                }
                if (deadline == 0) {
                        seat = -EBUSY;
                        break;
                }
                seat = waiter_sleep(&w, deadline, 0);
                if (seat >= 0)
                        seat = -EAGAIN;
        }
        waiter_done(&w);
        return seat;
}

static int write_record(hc_region *h, unsigned seat, const hc_options *opt, pid_t pid) {
        struct hc_slot_rec rec;
        uint64_t last = 0;
        uint32_t flags;
        bool present;
        int r;

        /* the seat's run after the last one (the seat is ours: nobody numbers one meanwhile) */
        r = region_seat_state(&h->r, seat, false, &flags, &present, &last);
        if (r < 0)
                return r;
        region_record_fill(&h->r, seat, opt ? opt->tag : NULL, region_run_after(last), &rec);
        if (pid > 0) {
                rec.pid = pid;
                region_record_seal(&h->r, seat, &rec);
        }
        return region_record_write(&h->r, seat, &rec);
}

/* The fleet scope's seats live in etcd, not in a lock file that a shell could open. */
static bool fleet(const hc_options *opt) {
        return opt && opt->size >= HC_OPTIONS_SIZE_V1 && opt->scope == HC_SCOPE_FLEET;
}

static int check_options(const struct scope *sc, const hc_options *opt) {
        if (!opt)
                return 0;
        if (opt->max > HC_CAPACITY_MAX || opt->timeout_ms < -1 ||
            (opt->tag && strlen(opt->tag) > HC_TAG_MAX) ||
            opt->capacity > HC_CAPACITY_MAX || opt->data_size > HC_DATA_SIZE_MAX ||
            (opt->mode & ~0777u) || (opt->flags & ~(unsigned) HC_NO_CREATE))
                return -EINVAL;
        return mode_trusted(sc, opt->mode);
}

_hc_public_ int hc_seat_path(const char *name, const hc_options *opt, char *buf, size_t len) {
        char fn[FILE_NAME_MAX];
        hc_region *h = NULL;
        struct scope sc;
        int qfd, r;

        hc_assert_return(buf || len == 0, -EINVAL);
        if (fleet(opt))
                return -EOPNOTSUPP;
        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        r = check_options(&sc, opt);
        if (r < 0)
                return r;
        r = handle_open(&sc, opt, HANDLE_CREATE, &h);
        if (r < 0)
                return r;
        r = handle_query_fd(h, 0, &qfd);          /* there, and one we trust */
        if (r >= 0)
                r = file_lock_name(fn, sizeof fn, sc.name, h->r.region_id, 0);
        handle_unref(h);
        if (r < 0)
                return r;
        r = snprintf(buf, len, "%s/%s", sc.dir, fn);
        if (r < 0 || (size_t) r >= len)
                return -ENAMETOOLONG;
        return r;
}

_hc_public_ int hc_join_fd(const char *name, const hc_options *opt, int fd, pid_t pid) {
        struct scope sc;
        int r;

        hc_assert_return(fd >= 0 && pid >= 0, -EINVAL);
        if (fleet(opt))
                return -EOPNOTSUPP;
        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        r = check_options(&sc, opt);
        if (r < 0)
                return r;
        for (unsigned attempt = 0; attempt < HANDLE_RETRIES; attempt++) {
                hc_region *h = NULL;
                unsigned max = opt && opt->max ? opt->max : 1, k = 0, first, n;
                bool taken;
                int seat;

                r = handle_open(&sc, opt, HANDLE_CREATE, &h);
                if (r == -ESTALE)
                        continue;
                if (r < 0)
                        return r;
                r = !h->r.writable ? -EACCES : fd_lock_file(h, fd, &k);
                if (r < 0)
                        goto done;
                first = seat_first(k);
                n = max < h->r.capacity ? max : h->r.capacity;
                if (first >= n) {
                        r = -EXDEV;       /* a lock file of seats beyond MAX */
                        goto done;
                }
                n = n - first < HC_SEATS_PER_FILE ? n - first : HC_SEATS_PER_FILE;
                seat = held_seat(h, k, fd, first, n);
                taken = seat == -ENOENT;
                if (taken)
                        seat = take_through(h, opt, k, fd, first, n);
                if (seat < 0) {
                        r = seat;
                        goto done;
                }
                /* the region retired under us: the description is of a file nobody joins */
                if (handle_retired(h)) {
                        seat_give_back(fd, (unsigned) seat);
                        r = -ESTALE;
                        goto done;
                }
                /* Another process is named only when it holds the seat itself (a copy of
                 * the description: the shell whose fd 9 it is), so that no record names a
                 * bystander. A seat this call did not take stays as it was. */
                if (pid > 0 && pid != self_pid() && holder_check_fd(fd, (unsigned) seat, false, pid) != pid) {
                        if (taken)
                                seat_give_back(fd, (unsigned) seat);
                        r = -ESRCH;
                        goto done;
                }
                r = write_record(h, (unsigned) seat, opt, pid);
                if (r < 0)
                        seat_give_back(fd, (unsigned) seat);
                else
                        r = seat;
        done:
                handle_unref(h);
                return r;
        }
        return -ESTALE;
}

_hc_public_ int hc_leave_fd(const char *name, const hc_options *opt, int fd) {
        hc_region *h = NULL;
        struct scope sc;
        unsigned k = 0;
        int seat, wfd, r;

        hc_assert_return(fd >= 0, -EINVAL);
        if (fleet(opt))
                return -EOPNOTSUPP;
        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        r = handle_open(&sc, opt, 0, &h);
        if (r < 0)
                return r;
        r = !h->r.writable ? -EACCES : fd_lock_file(h, fd, &k);
        if (r < 0)
                goto done;
        seat = held_seat(h, k, fd, seat_first(k), seat_file_seats(h->r.capacity, k));
        if (seat < 0) {
                r = seat;
                goto done;
        }
        /* the run's end and the record first, as hc_leave() does: a record left on a free
         * seat means a death */
        region_record_end_current(&h->r, (unsigned) seat, RUNS_NO_STATUS);
        seat_give_back(fd, (unsigned) seat);
        region_poke(&h->r);
        /* Unlocking raises no inotify event; opening and closing a writable description
         * does, so that waiters look at once. */
        if (handle_take_fd(h, k, &wfd) == 0)
                safe_close(wfd);
        r = seat;
done:
        handle_unref(h);
        return r;
}
