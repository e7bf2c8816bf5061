/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Seats: taking, giving back, counting, listing, reaping.
 *
 * A seat is an OFD write lock on the byte HC_LOCK_BASE + i of the region file (or of lock
 * file i / 64), taken through an open file description that holds nothing else. The
 * kernel grants each lock atomically and drops it when the description's last reference
 * goes away, however the holder dies. So:
 *   - the limit needs no mutex and has no check-then-act window: a joiner tries seats
 *     0..max-1 lowest first, and F_OFD_SETLK either gives it one or says EAGAIN;
 *   - liveness never depends on a PID: a PID can be reused, a lock cannot outlive its
 *     holder. We never call kill(pid, 0);
 *   - the exact count is the number of held write locks, asked with F_OFD_GETLK using a
 *     *read* lock as the probe, which conflicts with write locks only.
 *
 * Read locks on seat bytes are therefore free for our own transient use: a reaper takes
 * one to clear a dead record without racing a new holder, and hc_remove() takes them on
 * every seat to retire a region. A joiner that finds a seat read-locked waits a moment
 * rather than calling it busy.
 *
 * Records. After taking seat i the holder writes record i (pid, uid, boot id, PID
 * namespace, seq, join time, tag) with one pwrite(), or through the mapping when it
 * joined through a handle. The first word is a 64-bit check over the rest, the slot and
 * the region id: a reader copies the record, and a copy whose check does not match was
 * torn by a writer and is read again. So readers never see a torn record, and the joiner
 * pays one write, not three as a sequence counter written with pwrite() would cost. The
 * record is information; the lock is the truth: a record whose seat is free is dead, and
 * whoever notices it (hc_list, counts through a handle, hc_reap) clears it.
 *
 * Leaving. Closing the description releases the lock. We also unlock explicitly when the
 * description may have other references (the process forked since it joined, or the
 * seat's descriptor was handed out or made inheritable), because a joiner's hc_leave()
 * gives the seat back for everyone, as flock(1)'s unlock does. A child's hc_leave() only
 * closes its own reference.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hc-internal.h"
#include "region.h"

/* ---- Who we are ---- */

static pid_t cached_pid;
static uid_t cached_uid;
static uint64_t forks;          /* forks this process made or was made by */
static uint64_t epoch;          /* changes in every child */

static void atfork_parent(void) {
        __atomic_add_fetch(&forks, 1, __ATOMIC_RELAXED);
}

static void atfork_child(void) {
        cached_pid = 0;
        cached_uid = (uid_t) -1;
        forks++;
        epoch++;
}

__attribute__((constructor)) static void slot_init(void) {
        cached_uid = (uid_t) -1;
        (void) pthread_atfork(NULL, atfork_parent, atfork_child);
}

/* getuid() is a system call (185 ns in a VM here): once per process. A process that
 * changes its uid after its first join is recorded with the first one. */
static uid_t self_uid(void) {
        uid_t u = __atomic_load_n(&cached_uid, __ATOMIC_RELAXED);

        if (_unlikely_(u == (uid_t) -1)) {
                u = getuid();
                __atomic_store_n(&cached_uid, u, __ATOMIC_RELAXED);
        }
        return u;
}

pid_t self_pid(void) {
        pid_t p = __atomic_load_n(&cached_pid, __ATOMIC_RELAXED);

        if (_unlikely_(p == 0)) {
                p = getpid();
                __atomic_store_n(&cached_pid, p, __ATOMIC_RELAXED);
        }
        return p;
}

uint64_t self_fork_count(void) {
        return __atomic_load_n(&forks, __ATOMIC_RELAXED);
}

uint64_t self_epoch(void) {
        return epoch;
}

static pthread_once_t ids_once = PTHREAD_ONCE_INIT;
static uint8_t boot_id[16];
static uint64_t pidns_ino;

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* The boot id and our PID namespace never change for a process: read them once. */
static void ids_init(void) {
        char buf[64];
        struct stat st;
        ssize_t n;
        int fd;

        fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                n = read(fd, buf, sizeof buf - 1);
                (void) close(fd);
                if (n > 0) {
                        unsigned j = 0;
                        buf[n] = '\0';
                        for (const char *p = buf; *p && j < 32; p++) {
                                int v = hexval(*p);
                                if (v < 0)
                                        continue;
                                boot_id[j / 2] |= (uint8_t) (j % 2 ? v : v << 4);
                                j++;
                        }
                }
        }
        if (stat("/proc/self/ns/pid", &st) == 0)
                pidns_ino = st.st_ino;
}

static int64_t clock_ns(clockid_t id) {
        struct timespec ts;

        (void) clock_gettime(id, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- Records ---- */

uint64_t record_check(const struct hc_slot_rec *r, unsigned slot, uint64_t region_id) {
        const uint8_t *p = (const uint8_t *) r + sizeof r->check;
        uint64_t h = UINT64_C(0xcbf29ce484222325) ^ region_id ^ ((uint64_t) slot << 32);

        /* FNV-1a, 8 bytes at a time: enough to catch a torn copy, cheap enough to run on
         * every read. It is not a defence against a forger, who is validated field by
         * field instead. */
        for (size_t i = 0; i < sizeof *r - sizeof r->check; i += 8) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                h = (h ^ w) * UINT64_C(0x100000001b3);
                h ^= h >> 29;
        }
        return h | 1;           /* never 0, which means empty */
}

void record_fill(struct hc_slot_rec *r, unsigned slot, uint64_t region_id, const char *tag) {
        size_t n = tag ? strnlen(tag, HC_TAG_MAX) : 0;

        (void) pthread_once(&ids_once, ids_init);
        memset(r, 0, sizeof *r);
        r->seq = (uint64_t) clock_ns(CLOCK_MONOTONIC);
        r->joined_usec = clock_ns(CLOCK_REALTIME_COARSE) / 1000;   /* to a tick: for people */
        r->pidns = pidns_ino;
        memcpy(r->boot_id, boot_id, sizeof boot_id);
        r->pid = self_pid();
        r->uid = self_uid();
        r->tag_len = (uint16_t) n;
        if (n)
                memcpy(r->tag, tag, n);
        r->check = record_check(r, slot, region_id);
}

/* 0 when R is a valid record for SLOT, -EBADMSG when it is torn, damaged or empty. */
int record_to_instance(const struct hc_slot_rec *r, unsigned slot, uint64_t region_id,
                       hc_instance *ret) {
        if (r->check == 0 || r->check != record_check(r, slot, region_id))
                return -EBADMSG;
        if (r->tag_len > HC_TAG_MAX || r->pid <= 0)
                return -EBADMSG;

        (void) pthread_once(&ids_once, ids_init);
        *ret = (hc_instance) {
                .slot = slot,
                .pid = r->pid,
                .uid = r->uid,
                .seq = r->seq,
                .joined_usec = r->joined_usec,
                .pidns = r->pidns,
        };
        memcpy(ret->boot_id, r->boot_id, sizeof ret->boot_id);
        memcpy(ret->tag, r->tag, r->tag_len);
        ret->tag[r->tag_len] = '\0';
        if (pidns_ino && r->pidns != pidns_ino)
                ret->flags |= HC_INSTANCE_OTHER_PIDNS;
        if (memcmp(r->boot_id, boot_id, sizeof boot_id) != 0)
                ret->flags |= HC_INSTANCE_OTHER_BOOT;
        return 0;
}

/* Copies record SLOT out of the mapping; a copy torn by a writer is read again. */
static int record_read_mapped(hc_region *rg, unsigned slot, hc_instance *ret) {
        const struct hc_slot_rec *src = (const struct hc_slot_rec *)
                ((const char *) rg->hdr + rg->table_offset) + slot;
        struct hc_slot_rec copy;

        for (unsigned attempt = 0; attempt < 2000; attempt++) {
                uint64_t c1 = __atomic_load_n(&src->check, __ATOMIC_ACQUIRE);
                const uint64_t *s = (const uint64_t *) src;
                uint64_t *d = (uint64_t *) &copy;

                /* relaxed atomic loads: a writer may be changing the words (a torn copy
                 * fails its check); plain or volatile loads would be a data race in C11 */
                for (size_t i = 0; i < sizeof copy / 8; i++)
                        d[i] = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                if (c1 == __atomic_load_n(&src->check, __ATOMIC_RELAXED) &&
                    record_to_instance(&copy, slot, rg->region_id, ret) == 0)
                        return 0;
                if (attempt % 64 == 63)
                        (void) sched_yield();      /* let a preempted writer finish */
        }
        *ret = (hc_instance) { .slot = slot, .flags = HC_INSTANCE_NO_RECORD };
        return -EBADMSG;
}

static void record_write_mapped(hc_region *rg, unsigned slot, const struct hc_slot_rec *rec) {
        struct hc_slot_rec *dst = (struct hc_slot_rec *) ((char *) rg->hdr + rg->table_offset) + slot;
        uint64_t *d = (uint64_t *) dst;
        const uint64_t *s = (const uint64_t *) rec;

        __atomic_store_n(&dst->check, 0, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        for (size_t i = 1; i < sizeof *rec / 8; i++)
                __atomic_store_n(&d[i], s[i], __ATOMIC_RELAXED);     /* readers may look */
        __atomic_store_n(&dst->check, rec->check, __ATOMIC_RELEASE);
}

/* ---- Seat locks ---- */

static int seat_file(unsigned seat) {
        return (int) (seat / HC_SEATS_PER_FILE);
}

/* 0: the seat is ours now. -EAGAIN: somebody holds it (or a reaper is looking at it). */
int seat_try(int fd, unsigned seat) {
        if (fcntl(fd, F_OFD_SETLK, &(struct flock) {
                        .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = HC_LOCK_BASE + seat, .l_len = 1 }) < 0)
                return errno == EACCES ? -EAGAIN : -errno;
        return 0;
}

static void seat_unlock(int fd, unsigned seat, short type) {
        (void) type;
        (void) fcntl(fd, F_OFD_SETLK, &(struct flock) {
                        .l_type = F_UNLCK, .l_whence = SEEK_SET,
                        .l_start = HC_LOCK_BASE + seat, .l_len = 1 });
}

/* 1 when one of seats FIRST..FIRST+N-1 is worth another try: free by now, or only
 * read-locked (a reaper or a retirer, which lets go within microseconds). */
int seat_probe(int fd, unsigned first, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                struct flock fl = {
                        .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = HC_LOCK_BASE + first + i, .l_len = 1,
                };
                if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_WRLCK)
                        return 1;
        }
        return 0;
}

/*
 * Counts the write-locked seats FIRST..FIRST+N-1 (N <= 64) of one file and sets their bits
 * in *HELD_MASK. One probe over the whole range first: an empty file costs one call, and
 * the lock it finds needs no second probe.
 */
int seats_count_fd(int fd, unsigned first, unsigned n, uint64_t *held_mask) {
        struct flock fl = {
                .l_type = F_RDLCK, .l_whence = SEEK_SET,
                .l_start = HC_LOCK_BASE + first, .l_len = n,
        };
        uint64_t mask = 0;
        unsigned known = UINT32_MAX;
        int count = 0;

        if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
                return -errno;
        if (fl.l_type == F_UNLCK) {
                *held_mask = 0;
                return 0;
        }
        if (fl.l_len == 1 && fl.l_start >= HC_LOCK_BASE + first && fl.l_start < HC_LOCK_BASE + first + n) {
                known = (unsigned) (fl.l_start - HC_LOCK_BASE - first);
                mask |= UINT64_C(1) << known;
                count++;
        }
        for (unsigned i = 0; i < n; i++) {
                if (i == known)
                        continue;
                fl = (struct flock) {
                        .l_type = F_RDLCK, .l_whence = SEEK_SET,
                        .l_start = HC_LOCK_BASE + first + i, .l_len = 1,
                };
                if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
                        return -errno;
                if (fl.l_type != F_UNLCK) {
                        mask |= UINT64_C(1) << i;
                        count++;
                }
        }
        *held_mask = mask;
        return count;
}

static unsigned file_seats(uint32_t capacity, unsigned k) {
        unsigned first = k * HC_SEATS_PER_FILE;
        return capacity - first < HC_SEATS_PER_FILE ? capacity - first : HC_SEATS_PER_FILE;
}

/* ---- Joining without a handle ---- */

/* One freed seat struct kept for the next join: a join and leave in a loop then costs no
 * allocation. */
static hc_slot *spare_slot;

struct cold {
        int fd;                  /* region file, O_RDWR */
        int lock_fd[HC_CAPACITY_MAX / HC_SEATS_PER_FILE];
        unsigned n_files;
        struct hc_region_header h;
};

static void cold_close(struct cold *c, int keep) {
        for (unsigned k = 1; k < c->n_files; k++)
                if (c->lock_fd[k] != keep)
                        safe_close(c->lock_fd[k]);
        c->n_files = 0;
}

static int cold_lock_fd(struct cold *c, const struct scope *sc, unsigned k, int oflags, int *ret) {
        int r;

        if (k == 0) {
                *ret = c->fd;
                return 0;
        }
        while (c->n_files <= k)
                c->lock_fd[c->n_files++] = -EBADF;
        if (c->lock_fd[k] < 0) {
                r = lockfile_open(-1, sc, c->h.region_id, k, oflags, sc->system, &c->lock_fd[k]);
                if (r < 0)
                        return r;
        }
        *ret = c->lock_fd[k];
        return 0;
}

/* Tries seats 0..N-1. Returns the seat, -EAGAIN when all are held, or an error. */
static int cold_try_seats(struct cold *c, const struct scope *sc, unsigned n, int *ret_fd) {
        int fd, r;

        for (unsigned i = 0; i < n; i++) {
                r = cold_lock_fd(c, sc, (unsigned) seat_file(i), O_RDWR, &fd);
                if (r < 0)
                        return r;
                r = seat_try(fd, i);
                if (r == 0) {
                        *ret_fd = fd;
                        return (int) i;
                }
                if (r != -EAGAIN)
                        return r;
        }
        return -EAGAIN;
}

static int cold_transient(struct cold *c, const struct scope *sc, unsigned n) {
        for (unsigned k = 0; k * HC_SEATS_PER_FILE < n; k++) {
                unsigned first = k * HC_SEATS_PER_FILE;
                int fd;

                if (cold_lock_fd(c, sc, k, O_RDWR, &fd) < 0)
                        continue;
                if (seat_probe(fd, first, n - first < HC_SEATS_PER_FILE ? n - first : HC_SEATS_PER_FILE))
                        return 1;
        }
        return 0;
}

static int cold_wait(struct cold *c, const struct scope *sc, unsigned n, int64_t deadline,
                     struct waiter *w, bool *w_ready, bool *recent) {
        int fds[HC_CAPACITY_MAX / HC_SEATS_PER_FILE + 1];
        unsigned nf = 0;
        int r;

        if (!*w_ready) {
                for (unsigned k = 0; k * HC_SEATS_PER_FILE < n; k++) {
                        r = cold_lock_fd(c, sc, k, O_RDWR, &fds[nf]);
                        if (r < 0)
                                return r;
                        nf++;
                }
                r = waiter_init(w, fds, nf);
                if (r < 0)
                        return r;
                *w_ready = true;
        }
        return waiter_sleep(w, deadline, *recent, recent);
}

int slot_join_cold(const struct scope *sc, const hc_options *opt, hc_slot **ret) {
        unsigned max = opt && opt->max ? opt->max : 1;
        bool create = !(opt && (opt->flags & HC_NO_CREATE));
        int64_t deadline = deadline_from(opt ? opt->timeout_ms : 0);
        const char *tag = opt ? opt->tag : NULL;
        struct waiter w = { .ifd = -EBADF };
        bool w_ready = false, recent = false;
        struct cold c = { .fd = -EBADF };
        unsigned transient_waits = 0, n;
        int seat_fd = -EBADF, seat = -1, r;
        struct stat st;
        hc_slot *s;

        for (unsigned attempt = 0;; attempt++) {
                if (attempt >= 100) {
                        r = -ESTALE;              /* retired again and again: give up */
                        goto fail;
                }
                r = region_open_file(sc, opt, O_RDWR, create, &c.fd, &c.h);
                if (r < 0)
                        goto fail;
                n = max < c.h.capacity ? max : c.h.capacity;

                for (;;) {
                        seat = cold_try_seats(&c, sc, n, &seat_fd);
                        if (seat != -EAGAIN)              /* a seat, or an error */
                                break;
                        /* all taken; a read lock means a reaper or a retirer, not a holder */
                        if (transient_waits < 200 && cold_transient(&c, sc, n)) {
                                transient_waits++;
                                (void) nanosleep(&(struct timespec) { .tv_nsec = 1000000 }, NULL);
                                continue;
                        }
                        if (deadline == 0) {
                                r = -EBUSY;
                                goto fail;
                        }
                        r = cold_wait(&c, sc, n, deadline, &w, &w_ready, &recent);
                        if (r < 0)
                                goto fail;
                }
                if (seat < 0) {
                        r = seat;
                        goto fail;
                }

                /* The seat is ours. Now the checks that need the file's inode: trust,
                 * size, filesystem, and whether it was retired after we opened it. */
                r = region_check_inode(c.fd, &c.h, sc->system, &st);
                if (r < 0)
                        goto fail;
                if (st.st_nlink > 0)
                        break;

                /* retired: start over by name */
                cold_close(&c, -EBADF);
                c.fd = safe_close(c.fd);
                if (w_ready) {
                        waiter_done(&w);
                        w_ready = false;
                }
        }
        if (w_ready)
                waiter_done(&w);

        s = __atomic_exchange_n(&spare_slot, NULL, __ATOMIC_ACQ_REL);
        if (!s)
                s = malloc(sizeof *s);
        if (!s) {
                r = -ENOMEM;
                goto fail_nowait;
        }
        *s = (hc_slot) {
                .fd = seat_fd,
                .rec_fd = seat_fd == c.fd ? -EBADF : c.fd,
                .index = (unsigned) seat,
                .pid = self_pid(),
                .fork_count = self_fork_count(),
                .table_offset = c.h.table_offset,
                .region_id = c.h.region_id,
        };
        record_fill(&s->rec, s->index, s->region_id, tag);
        if (pwrite(c.fd, &s->rec, sizeof s->rec,
                   (off_t) (c.h.table_offset + (uint64_t) s->index * sizeof s->rec)) != (ssize_t) sizeof s->rec) {
                r = errno ? -errno : -EIO;
                free(s);
                goto fail_nowait;
        }
        if (opt && (opt->flags & HC_INHERIT)) {
                s->inherit = true;
                if (fcntl(seat_fd, F_SETFD, 0) < 0) {
                        r = -errno;
                        free(s);
                        goto fail_nowait;
                }
        }
        cold_close(&c, seat_fd);
        *ret = s;
        return 0;

fail:
        if (w_ready)
                waiter_done(&w);
fail_nowait:
        cold_close(&c, -EBADF);
        safe_close(c.fd);
        return r;
}

/* ---- Joining through a handle ---- */

static int handle_idle_fd(hc_region *rg, unsigned k, int *ret) {
        char self[64];
        int fd;

        fd = __atomic_exchange_n(&rg->idle_fd[k], -EBADF, __ATOMIC_ACQ_REL);
        if (fd >= 0) {
                *ret = fd;
                return 0;
        }
        /* a new description of the very same file, whatever its name is now */
        (void) snprintf(self, sizeof self, "/proc/self/fd/%d", rg->file_fd[k]);
        fd = open(self, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        *ret = fd;
        return 0;
}

/* Keeps FD as the spare description of file K (closing any other), or closes it. Lock
 * free: a leave takes no mutex. */
static void handle_put_idle(hc_region *rg, unsigned k, int fd) {
        if (__atomic_load_n(&rg->fork_epoch, __ATOMIC_ACQUIRE) != self_epoch()) {
                safe_close(fd);
                return;
        }
        safe_close(__atomic_exchange_n(&rg->idle_fd[k], fd, __ATOMIC_ACQ_REL));
}

/* Tries seat I through the spare description of its file: 0, -EAGAIN, or an error. */
static int handle_try_one(hc_region *rg, unsigned i, int *fds, int *ret_fd) {
        unsigned k = i / rg->seats_per_file;
        int r;

        if (fds[k] < 0) {
                r = handle_idle_fd(rg, k, &fds[k]);
                if (r < 0)
                        return r;
        }
        r = seat_try(fds[k], i);
        if (r == 0) {
                *ret_fd = TAKE_FD(fds[k]);
                return 0;
        }
        return r;
}

/*
 * Tries the seat this handle had last, then seats 0..N-1 lowest first. Returns the seat,
 * -EAGAIN when all are held, or an error. Lock free: the spare descriptions are swapped
 * atomically, and two threads that race for one seat are told apart by the kernel.
 */
static int handle_try_seats(hc_region *rg, unsigned n, int *ret_fd) {
        int fds[HC_CAPACITY_MAX / HC_SEATS_PER_FILE];
        unsigned last;
        int r = -EAGAIN;

        if (__atomic_load_n(&rg->fork_epoch, __ATOMIC_ACQUIRE) != self_epoch()) {
                /* a child: the spare descriptions are shared with the parent */
                (void) pthread_mutex_lock(&rg->cache_lock);
                if (rg->fork_epoch != self_epoch()) {
                        for (unsigned k = 0; k < rg->n_files; k++)
                                safe_close(__atomic_exchange_n(&rg->idle_fd[k], -EBADF,
                                                               __ATOMIC_ACQ_REL));
                        __atomic_store_n(&rg->fork_epoch, self_epoch(), __ATOMIC_RELEASE);
                }
                (void) pthread_mutex_unlock(&rg->cache_lock);
        }
        for (size_t k = 0; k < ELEMENTSOF(fds); k++)
                fds[k] = -EBADF;

        last = __atomic_load_n(&rg->last_seat, __ATOMIC_RELAXED);
        if (last < n) {
                r = handle_try_one(rg, last, fds, ret_fd);
                if (r == 0)
                        r = (int) last;
        }
        for (unsigned i = 0; i < n && r == -EAGAIN; i++) {
                if (i == last)
                        continue;
                r = handle_try_one(rg, i, fds, ret_fd);
                if (r == 0) {
                        __atomic_store_n(&rg->last_seat, i, __ATOMIC_RELAXED);
                        r = (int) i;
                }
        }
        /* spare descriptions go back (one per file is kept) */
        for (unsigned k = 0; k < rg->n_files; k++)
                if (fds[k] >= 0)
                        handle_put_idle(rg, k, fds[k]);
        return r;
}

int slot_join_handle(hc_region *rg, const hc_options *opt, hc_slot **ret) {
        unsigned max = opt && opt->max ? opt->max : 1;
        unsigned n = max < rg->capacity ? max : rg->capacity;
        int64_t deadline = deadline_from(opt ? opt->timeout_ms : 0);
        struct waiter w = { .ifd = -EBADF };
        bool w_ready = false, recent = false;
        unsigned transient_waits = 0;
        int fd = -EBADF, seat, r;
        hc_slot *s = NULL;

        if (!rg->writable)
                return -EACCES;
        for (;;) {
                if (handle_retired(rg)) {
                        r = -ESTALE;
                        goto fail;
                }
                seat = handle_try_seats(rg, n, &fd);
                if (seat >= 0) {
                        s = __atomic_exchange_n(&rg->spare, NULL, __ATOMIC_ACQ_REL);
                        break;
                }
                if (seat != -EAGAIN) {
                        r = seat;
                        goto fail;
                }
                if (transient_waits < 200) {
                        bool t = false;
                        for (unsigned k = 0; k * rg->seats_per_file < n && !t; k++)
                                t = seat_probe(rg->file_fd[k], k * rg->seats_per_file,
                                               file_seats(n, k));
                        if (t) {
                                transient_waits++;
                                (void) nanosleep(&(struct timespec) { .tv_nsec = 1000000 }, NULL);
                                continue;
                        }
                }
                if (deadline == 0) {
                        r = -EBUSY;
                        goto fail;
                }
                if (!w_ready) {
                        r = waiter_init(&w, rg->file_fd, rg->n_files);
                        if (r < 0)
                                goto fail;
                        w_ready = true;
                }
                r = waiter_sleep(&w, deadline, recent, &recent);
                if (r < 0)
                        goto fail;
        }
        if (w_ready)
                waiter_done(&w);

        /* Retired after our check and before our lock? The retirer held a read lock on
         * every seat while it set the flag, so the flag is visible now if it happened. */
        if (handle_retired(rg)) {
                seat_unlock(fd, (unsigned) seat, F_WRLCK);
                safe_close(fd);
                free(s);
                return -ESTALE;
        }

        if (!s)
                s = malloc(sizeof *s);
        if (!s) {
                seat_unlock(fd, (unsigned) seat, F_WRLCK);
                handle_put_idle(rg, (unsigned) seat_file((unsigned) seat), fd);
                return -ENOMEM;
        }
        *s = (hc_slot) {
                .fd = fd,
                .rec_fd = -EBADF,
                .index = (unsigned) seat,
                .pid = self_pid(),
                .fork_count = self_fork_count(),
                .rg = rg,
                .table_offset = rg->table_offset,
                .region_id = rg->region_id,
        };
        if (opt && (opt->flags & HC_INHERIT)) {
                s->inherit = true;
                (void) fcntl(fd, F_SETFD, 0);
        }
        record_fill(&s->rec, s->index, s->region_id, opt ? opt->tag : NULL);
        record_write_mapped(rg, s->index, &s->rec);
        __atomic_add_fetch(&rg->n_ref, 1, __ATOMIC_RELAXED);
        handle_poke(rg);                  /* for hc_region_wait_change() callers */
        *ret = s;
        return 0;

fail:
        if (w_ready)
                waiter_done(&w);
        return r;
}

/* ---- Leaving ---- */

void slot_leave(hc_slot *s) {
        hc_region *rg = s->rg;

        if (s->pid != self_pid()) {
                /* a forked child: drop our reference, never the parent's seat */
                safe_close(s->fd);
                safe_close(s->rec_fd);
                handle_unref(rg);
                free(s);
                return;
        }

        if (rg) {
                struct hc_slot_rec *dst = (struct hc_slot_rec *)
                        ((char *) rg->hdr + rg->table_offset) + s->index;
                uint64_t mine = s->rec.check;

                /* the record goes first, so that nobody lists a seat we no longer hold */
                (void) __atomic_compare_exchange_n(&dst->check, &mine, 0, false, __ATOMIC_RELEASE,
                                                   __ATOMIC_RELAXED);
                seat_unlock(s->fd, s->index, F_WRLCK);
                handle_poke(rg);
                if (s->inherit || s->fd_exposed)
                        safe_close(s->fd);
                else
                        handle_put_idle(rg, (unsigned) seat_file(s->index), s->fd);
                free(__atomic_exchange_n(&rg->spare, s, __ATOMIC_ACQ_REL));
                handle_unref(rg);
                return;
        }

        /* Closing the only reference drops the lock; with other references possible, the
         * joiner's leave must release it for all of them. */
        if (s->inherit || s->fd_exposed || s->fork_count != self_fork_count())
                seat_unlock(s->fd, s->index, F_WRLCK);
        safe_close(s->fd);
        safe_close(s->rec_fd);
        free(__atomic_exchange_n(&spare_slot, s, __ATOMIC_ACQ_REL));
}

/* ---- Counting and listing ---- */

/* Clears record SEAT if its seat is still free, under a read lock on the seat. */
static int reap_one(hc_region *rg, int fd, unsigned seat) {
        struct hc_slot_rec *dst = (struct hc_slot_rec *) ((char *) rg->hdr + rg->table_offset) + seat;

        if (fcntl(fd, F_OFD_SETLK, &(struct flock) {
                        .l_type = F_RDLCK, .l_whence = SEEK_SET,
                        .l_start = HC_LOCK_BASE + seat, .l_len = 1 }) < 0)
                return 0;                 /* somebody took it meanwhile: not dead */
        HC_HOOK("reap-locked");
        __atomic_store_n(&dst->check, 0, __ATOMIC_RELEASE);
        seat_unlock(fd, seat, F_RDLCK);
        return 1;
}

int handle_count(hc_region *rg, bool reap, unsigned *ret_reaped) {
        const struct hc_slot_rec *table = (const struct hc_slot_rec *)
                ((const char *) rg->hdr + rg->table_offset);
        unsigned reaped = 0;
        int total = 0;

        reap = reap && rg->writable;
        for (unsigned k = 0; k < rg->n_files; k++) {
                unsigned first = k * rg->seats_per_file, m = file_seats(rg->capacity, k);
                uint64_t mask;
                int c = seats_count_fd(rg->file_fd[k], first, m, &mask);

                if (c < 0)
                        return c;
                total += c;
                if (!reap)
                        continue;
                for (unsigned i = 0; i < m; i++)
                        if (!(mask & (UINT64_C(1) << i)) &&
                            __atomic_load_n(&table[first + i].check, __ATOMIC_RELAXED) != 0)
                                reaped += (unsigned) reap_one(rg, rg->file_fd[k], first + i);
        }
        if (rg->writable && __atomic_load_n(&rg->hdr->live, __ATOMIC_RELAXED) != (uint32_t) total)
                __atomic_store_n(&rg->hdr->live, (uint32_t) total, __ATOMIC_RELAXED);
        if (ret_reaped)
                *ret_reaped = reaped;
        return total;
}

int handle_list(hc_region *rg, hc_instance **ret) {
        const struct hc_slot_rec *table = (const struct hc_slot_rec *)
                ((const char *) rg->hdr + rg->table_offset);
        hc_instance *list = NULL;
        unsigned n = 0, size = 0;

        for (unsigned k = 0; k < rg->n_files; k++) {
                unsigned first = k * rg->seats_per_file, m = file_seats(rg->capacity, k);
                uint64_t mask;
                int c = seats_count_fd(rg->file_fd[k], first, m, &mask);

                if (c < 0) {
                        free(list);
                        return c;
                }
                for (unsigned i = 0; i < m; i++) {
                        if (!(mask & (UINT64_C(1) << i))) {
                                if (rg->writable &&
                                    __atomic_load_n(&table[first + i].check, __ATOMIC_RELAXED) != 0)
                                        (void) reap_one(rg, rg->file_fd[k], first + i);
                                continue;
                        }
                        if (n == size) {
                                unsigned ns = size ? size * 2 : 8;
                                hc_instance *nl = realloc(list, ns * sizeof *nl);
                                if (!nl) {
                                        free(list);
                                        return -ENOMEM;
                                }
                                list = nl;
                                size = ns;
                        }
                        (void) record_read_mapped(rg, first + i, &list[n]);
                        n++;
                }
        }
        if (n == 0) {
                free(list);
                list = NULL;
        }
        if (rg->writable)
                __atomic_store_n(&rg->hdr->live, n, __ATOMIC_RELAXED);
        *ret = list;
        return (int) n;
}

/* The exact count by name, without mapping the file (an open, a read, the probes). */
int cold_count(const struct scope *sc, const hc_options *opt) {
        struct cold c = { .fd = -EBADF };
        struct stat st;
        int total = 0, r;

        r = region_open_file(sc, opt, O_RDONLY, false, &c.fd, &c.h);
        if (r < 0)
                return r;
        r = region_check_inode(c.fd, &c.h, sc->system, &st);
        if (r < 0)
                goto finish;
        for (unsigned k = 0; k * HC_SEATS_PER_FILE < c.h.capacity; k++) {
                uint64_t mask;
                int fd;

                r = cold_lock_fd(&c, sc, k, O_RDONLY, &fd);
                if (r < 0) {
                        if (r == -EBADMSG && st.st_nlink == 0)
                                r = 0;            /* retired meanwhile: nobody is in it */
                        goto finish;
                }
                r = seats_count_fd(fd, k * HC_SEATS_PER_FILE, file_seats(c.h.capacity, k), &mask);
                if (r < 0)
                        goto finish;
                total += r;
        }
        r = st.st_nlink == 0 ? 0 : total;
finish:
        cold_close(&c, -EBADF);
        safe_close(c.fd);
        return r;
}
