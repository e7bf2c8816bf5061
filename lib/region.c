/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The region file: its validation, and the only code that reads or writes its bytes once
 * it has its name (create.c builds it). format.h gives the layout.
 *
 * Two ways in. A region that nobody but its owner can write (owned by our euid, no group
 * or other write bit) may be mapped: MAP_SHARED, for the fast paths (records written
 * with plain stores, the futex on the generation word, the user data as memory). Any
 * other region, such as a 0666 region in the system scope or a user's region seen by
 * root's daemon, is never mapped: every access is a pread() or pwrite() of the bytes
 * concerned, validated each time, so a writer who shrinks the file causes a short read
 * (-EBADMSG), never a SIGBUS, and no structure in it is ever followed. Nothing in the
 * file is a pointer or a lock: the region lock is a kernel lock (mutex.c).
 *
 * Validation. header_check() bounds every field before use; the handle keeps validated
 * copies of the sizes and offsets and never reads them again; a file shorter than its
 * header says is -EBADMSG. A longer one is not damage (a writer of a shared region may
 * append to it): nobody maps or reads past the header's file_size, so the bytes past it
 * are never looked at. The words that change (flags, waiters, generation, live,
 * poke, the markers) are hints or are checked where they are used. Records carry a check
 * word over their bytes, salted with the seat and the region id: a copy torn by a writer
 * fails it and is read again; a forged record passes it, which is why records in a region
 * others may write are reported as claims (HC_INSTANCE_UNVERIFIED).
 *
 * Who writes what. The header's sizes and id are written once, before the file has its
 * name. flags is written under the region lock. Each record is written only by the holder
 * of its seat, and cleared by that holder when it leaves (so a record still there after
 * the seat is free means its holder died holding it), or by a reaper holding a read lock
 * on the free seat (seat.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "create.h"
#include "files.h"
#include "format.h"
#include "hc-internal.h"
#include "proc.h"
#include "region.h"
#include "util.h"

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

/* -EBADMSG for any field out of place (bad magic and wrong version alike, as LMDB does);
 * the test build reports which through a hook. FILE_SIZE: the file's size, which may not
 * be less than the header's, or UINT64_MAX when not known. */
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
        if (file_size < h->file_size) {
                DEBUG_MISMATCH("file size", h->file_size, file_size);
                return -EBADMSG;
        }
        return 0;
}

uint64_t record_check(const struct hc_slot_rec *r, unsigned slot, uint64_t region_id) {
        return hash_words(region_id ^ ((uint64_t) slot << 32), (const uint8_t *) r + sizeof r->check,
                          offsetof(struct hc_slot_rec, end_check) - sizeof r->check) | 1;  /* 0: empty */
}

/* The check of a ring entry's end: its record's check word and the end's fields. */
uint64_t end_check(const struct hc_slot_rec *e, unsigned slot, uint64_t region_id) {
        uint64_t w[3] = { e->check, e->ended_seq, 0 };

        memcpy(&w[2], &e->status, sizeof w[2]);            /* status, how, reserved */
        return hash_words(region_id ^ ((uint64_t) slot << 32) ^ UINT64_C(0x52554e5352554e53), w,
                          sizeof w) | 1;
}

unsigned region_lock_files(const struct region *r) {
        return region_files_for(r->capacity);
}

/* ---- Opening ---- */

static int trust(const struct stat *st, const struct scope *sc, bool foreign) {
        return foreign ? file_trust_foreign(st, sc->euid) : file_trust(st, sc->system, sc->euid);
}

/* Why a file we could not use was refused: distrust comes before corruption. */
static int refusal(int fd, const struct scope *sc, bool foreign, int r) {
        struct stat st;
        int t;

        if (fstat(fd, &st) < 0)
                return -errno;
        t = trust(&st, sc, foreign);
        return t < 0 ? t : r;
}

void region_close(struct region *r) {
        if (r->map)
                (void) munmap(r->map, r->map_size);
        r->map = NULL;
        r->mapped = false;
        r->fd = safe_close(r->fd);
}

int region_open(int dirfd, const struct scope *sc, const hc_options *opt, unsigned flags,
                struct region *ret) {
        struct hc_region_header h;
        _cleanup_close_ int fd = -EBADF;
        bool write = (flags & REGION_WRITE) && !(flags & REGION_FOREIGN);
        bool foreign = flags & REGION_FOREIGN;
        struct stat st;
        ssize_t n;
        int r;

        for (unsigned attempt = 0;; attempt++) {
                fd = xopenat(dirfd, sc->name, (write ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK, 0);
                if (fd >= 0)
                        break;
                r = fd;
                if (r == -ELOOP || r == -EISDIR || r == -ENXIO || r == -EOPNOTSUPP)
                        return -EPERM;            /* a symlink, directory, socket ... */
                if ((r == -EACCES || r == -EROFS) && write && (flags & REGION_READ_FALLBACK)) {
                        write = false;
                        continue;
                }
                if (r != -ENOENT || !(flags & REGION_CREATE) || attempt > 8)
                        return r;
                r = region_create(dirfd, sc, opt, &fd);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (write)
                                break;
                        fd = safe_close(fd);
                }
        }

        n = pread(fd, &h, sizeof h, 0);
        if (n < 0)
                return refusal(fd, sc, foreign, errno == ESPIPE || errno == EISDIR ? -EPERM : -errno);
        if ((size_t) n < sizeof h)
                return refusal(fd, sc, foreign, -EBADMSG);
        r = header_check(&h, UINT64_MAX);
        if (r < 0)
                return refusal(fd, sc, foreign, r);
        if (fstat(fd, &st) < 0)
                return -errno;
        r = trust(&st, sc, foreign);
        if (r < 0)
                return r;
        if ((uint64_t) st.st_size < h.file_size)
                return -EBADMSG;          /* longer is harmless: we use h.file_size bytes */
        r = fs_check_local(fd, st.st_dev);
        if (r < 0)
                return r;

        *ret = (struct region) {
                .fd = -EBADF,
                .writable = write,
                .foreign = foreign,
                .others_write = (st.st_mode & 0022) != 0,
                .ours_alone = st.st_uid == sc->euid && !(st.st_mode & 0022),
                .capacity = h.capacity,
                .table_offset = h.table_offset,
                .data_offset = h.data_offset,
                .data_size = h.data_size,
                .file_size = h.file_size,
                .region_id = h.region_id,
                .dev = st.st_dev,
                .ino = st.st_ino,
                .mode = st.st_mode & 07777,
        };
        ret->runs_offset = header_runs_offset(h.capacity, h.table_offset);
        /* Mapped only when nobody but us (and root) can write the file: nobody else can
         * then shrink it under the mapping or plant anything in it. */
        if ((flags & REGION_MAP) && st.st_uid == sc->euid && !(st.st_mode & 0022)) {
                void *p = mmap(NULL, (size_t) h.file_size, PROT_READ | (write ? PROT_WRITE : 0),
                               MAP_SHARED, fd, 0);
                if (p == MAP_FAILED)
                        return -errno;
                ret->map = p;
                ret->map_size = (size_t) h.file_size;
                ret->mapped = true;
                /* the file may have changed between our read and the mapping */
                if (ret->map->region_id != h.region_id || ret->map->layout_check != h.layout_check) {
                        region_close(ret);
                        return -EBADMSG;
                }
        }
        ret->fd = TAKE_FD(fd);
        return 0;
}

int region_unlinked(const struct region *r) {
        struct stat st;

        if (fstat(r->fd, &st) < 0)
                return -errno;
        return st.st_nlink == 0;
}

/* ---- Records ---- */

/* The words of a record in the table, up to its run number: the end's words are written
 * in the ring only, and are zero in the table from its creation on. */
#define RECORD_WORDS (offsetof(struct hc_slot_rec, end_check) / 8)
/* The words of a ring entry that anyone reads: the spare words stay as they are. */
#define ENTRY_WORDS (offsetof(struct hc_slot_rec, spare) / 8)

static off_t record_offset(const struct region *r, unsigned seat) {
        return (off_t) (r->table_offset + (uint64_t) seat * sizeof(struct hc_slot_rec));
}

static struct hc_slot_rec *record_mapped(struct region *r, unsigned seat) {
        return (struct hc_slot_rec *) ((char *) r->map + r->table_offset) + seat;
}

static int record_copy(struct region *r, unsigned seat, struct hc_slot_rec *copy);
static int record_valid(const struct region *r, const struct hc_slot_rec *rec, unsigned seat);
static unsigned record_flags(const struct region *r, const struct hc_slot_rec *rec);
static int region_record_get(struct region *r, unsigned seat, struct hc_slot_rec *ret);
static int region_runs_read(struct region *r, unsigned seat, struct hc_slot_rec *ret);

void region_record_seal(const struct region *r, unsigned seat, struct hc_slot_rec *rec) {
        rec->check = record_check(rec, seat, r->region_id);
}

void region_record_fill(const struct region *r, unsigned seat, const char *tag, uint64_t run,
                        struct hc_slot_rec *ret) {
        struct timespec ts;

        memset(ret, 0, sizeof *ret);
        ret->run = run;
        (void) clock_gettime(CLOCK_REALTIME_COARSE, &ts);        /* to a tick: for people */
        ret->seq = host_monotonic_ns();
        ret->started_seq = ret->seq;
        ret->joined_usec = (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        ret->pidns = self_pidns();
        memcpy(ret->boot_id, self_boot_id(), sizeof ret->boot_id);
        ret->pid = self_pid();
        ret->uid = self_uid();
        if (tag)
                memcpy(ret->tag, tag, strnlen(tag, sizeof ret->tag));    /* NUL-padded */
        region_record_seal(r, seat, ret);
}

/* Writes the first WORDS words of E at OFF: in a mapping with relaxed atomic stores, the
 * check word cleared first and written last (readers may look meanwhile), else with one
 * pwrite(). For records and ring entries alike. */
static int entry_write(struct region *r, off_t off, const struct hc_slot_rec *e, size_t words) {
        if (r->mapped) {
                uint64_t *d = (uint64_t *) ((char *) r->map + off);
                const uint64_t *s = (const uint64_t *) e;

                __atomic_store_n(&d[0], 0, __ATOMIC_RELAXED);
                __atomic_thread_fence(__ATOMIC_RELEASE);
                for (size_t i = 1; i < words; i++)
                        __atomic_store_n(&d[i], s[i], __ATOMIC_RELAXED);
                __atomic_store_n(&d[0], e->check, __ATOMIC_RELEASE);
                return 0;
        }
        return pwrite_all(r->fd, e, words * 8, off);
}

/* Reads SIZE bytes (whole words) at OFF into BUF: from the mapping with atomic loads, else
 * with one pread(); -EBADMSG when the file was cut short under us (a damaged region). */
static int words_read(struct region *r, off_t off, void *buf, size_t size) {
        if (r->mapped) {
                const uint64_t *s = (const uint64_t *) ((char *) r->map + off);
                uint64_t *d = buf;

                for (size_t i = 0; i < size / 8; i++)
                        d[i] = __atomic_load_n(&s[i], __ATOMIC_ACQUIRE);
                return 0;
        }
        return pread(r->fd, buf, size, off) == (ssize_t) size ? 0 : -EBADMSG;
}

int region_record_write(struct region *r, unsigned seat, const struct hc_slot_rec *rec) {
        if (seat >= r->capacity || !r->writable)
                return -EINVAL;
        return entry_write(r, record_offset(r, seat), rec, RECORD_WORDS);
}

void region_record_clear(struct region *r, unsigned seat, uint64_t only_if_check) {
        uint64_t zero = 0;

        if (seat >= r->capacity || !r->writable)
                return;
        if (r->mapped) {
                struct hc_slot_rec *dst = record_mapped(r, seat);
                if (only_if_check)
                        (void) __atomic_compare_exchange_n(&dst->check, &only_if_check, 0, false,
                                                           __ATOMIC_RELEASE, __ATOMIC_RELAXED);
                else
                        __atomic_store_n(&dst->check, 0, __ATOMIC_RELEASE);
                return;
        }
        /* Without a mapping there is no compare-and-swap, and no need for one: ONLY_IF_CHECK
         * is given by the seat's holder, whose record it is (nobody else writes a held
         * seat's record), and a reaper clears one only while it holds the free seat's
         * read lock. */
        (void) pwrite_all(r->fd, &zero, sizeof zero, record_offset(r, seat));
}

/* The number of the run after LAST, a seat's latest run as its record says (anyone may
 * have written it: it only chooses a place in the seat's ring). */
uint64_t region_run_after(uint64_t last) {
        last &= ~HC_RUN_PAUSED;
        return last + 1 < HC_RUN_LIMIT ? last + 1 : 1;
}

static off_t run_offset(const struct region *r, unsigned seat, unsigned place) {
        return (off_t) (r->runs_offset + ((uint64_t) seat * HC_RUNS_PER_SEAT + place) * sizeof(struct hc_slot_rec));
}

/* Writes the finished run E (a record with its end) to its place in SEAT's ring. */
static int run_write(struct region *r, unsigned seat, const struct hc_slot_rec *e) {
        return entry_write(r, run_offset(r, seat, (unsigned) (e->run % HC_RUNS_PER_SEAT)), e, ENTRY_WORDS);
}

/* REC's copy for the ring, ended HOW (HC_RUN_REC_*) with wait STATUS or RUNS_NO_STATUS. */
static void run_finish(const struct region *r, unsigned seat, const struct hc_slot_rec *rec,
                       unsigned how, int status, struct hc_slot_rec *ret) {
        *ret = *rec;
        /* to a tick: a leave's clock read costs a quarter of the rest of it in a mapped
         * region, and a run's length to a few milliseconds is what people ask for */
        ret->ended_seq = host_monotonic_coarse_ns();
        if (ret->ended_seq < ret->started_seq)
                ret->ended_seq = ret->started_seq;
        if (status == RUNS_NO_STATUS)
                ret->status = -1;
        else if (WIFSIGNALED(status))
                ret->status = (int16_t) (256 + WTERMSIG(status));
        else
                ret->status = (int16_t) WEXITSTATUS(status);
        ret->how = (uint16_t) how;
        ret->reserved = 0;
        memset(ret->spare, 0, sizeof ret->spare);
        ret->end_check = end_check(ret, seat, r->region_id);
}

/*
 * The leave of the holder whose record is REC: its run goes to the ring, ended with wait
 * STATUS (or RUNS_NO_STATUS), then the record's check word is cleared, so that nobody
 * lists a seat we are giving back, and a record found whole on a free seat means a holder
 * that died. The rest stays: the run number, which the next holder numbers its run after,
 * and the seq, which with the ring tells a monitor how the run went (region_run_of()).
 */
void region_record_end(struct region *r, unsigned seat, const struct hc_slot_rec *rec, int status) {
        if (seat >= r->capacity || !r->writable)
                return;
        region_run_finish(r, seat, rec, status);
        HC_HOOK("run-ended");             /* ended in the ring, the record still there */
        region_record_clear(r, seat, rec->check);
}

void region_run_finish(struct region *r, unsigned seat, const struct hc_slot_rec *rec, int status) {
        struct hc_slot_rec e;

        /* a record between two runs is no run (HC_RUN_PAUSED) */
        if (seat >= r->capacity || !r->writable || rec->run == 0 || rec->run >= HC_RUN_LIMIT)
                return;
        run_finish(r, seat, rec, HC_RUN_REC_LEFT, status, &e);
        (void) run_write(r, seat, &e);
}

static bool run_valid(const struct region *r, const struct hc_slot_rec *e, unsigned seat, unsigned place);

/* Whether SEAT's ring has run RUN, whole. */
static bool run_in_ring(struct region *r, unsigned seat, uint64_t run) {
        unsigned place = (unsigned) (run % HC_RUNS_PER_SEAT);
        struct hc_slot_rec e;

        return words_read(r, run_offset(r, seat, place), &e, sizeof e) == 0 && e.run == run &&
                run_valid(r, &e, seat, place);
}

/*
 * A dead holder's record on the free seat SEAT (its lock or a read lock on it held by the
 * caller, so no holder can come meanwhile): its run goes to the ring as a death, and the
 * record's check word is cleared. 1 when there was one (its seq in *RET_SEQ, when not
 * NULL), 0 when not.
 */
int region_record_bury(struct region *r, unsigned seat, uint64_t *ret_seq) {
        struct hc_slot_rec rec, e;

        if (seat >= r->capacity || !r->writable)
                return 0;
        if (record_copy(r, seat, &rec) < 0 || record_valid(r, &rec, seat) < 0)
                return 0;
        if (ret_seq)
                *ret_seq = rec.seq;
        /* not when its run is in the ring already: it left, and was killed before it
         * erased its record */
        if (rec.run > 0 && rec.run < HC_RUN_LIMIT && !run_in_ring(r, seat, rec.run)) {  /* not paused */
                run_finish(r, seat, &rec, HC_RUN_REC_DIED, RUNS_NO_STATUS, &e);
                (void) run_write(r, seat, &e);
        }
        region_record_clear(r, seat, rec.check);
        return 1;
}

/* How the run of SEAT that began at SEQ went (for hc_region_departure()): HC_RUN_REC_LEFT
 * or HC_RUN_REC_DIED when the ring has it, RUN_IN_RECORD when the record names it still
 * (valid, or with its check word cleared by a reaper), 0 when neither does, or -errno. */
int region_run_of(struct region *r, unsigned seat, uint64_t seq) {
        struct hc_slot_rec e[HC_RUNS_PER_SEAT], rec;
        uint64_t last = 0;
        int how = 0, q;

        if (seat >= r->capacity)
                return -EINVAL;
        /* the ring first: a leave writes it before it erases the record. A holding that
         * ran its command more than once (hc_slot_end_run()) has several runs: its latest
         * tells. */
        q = region_runs_read(r, seat, e);
        if (q < 0)
                return q;
        for (unsigned p = 0; p < HC_RUNS_PER_SEAT; p++)
                if (e[p].run != 0 && e[p].seq == seq && e[p].run > last) {
                        last = e[p].run;
                        how = e[p].how;
                }
        if (r->mapped) {
                const struct hc_slot_rec *src = record_mapped(r, seat);

                rec.check = __atomic_load_n(&src->check, __ATOMIC_ACQUIRE);
                rec.seq = __atomic_load_n(&src->seq, __ATOMIC_RELAXED);
                rec.pid = __atomic_load_n(&src->pid, __ATOMIC_RELAXED);
                rec.run = __atomic_load_n(&src->run, __ATOMIC_RELAXED);
        } else if (pread(r->fd, &rec, sizeof rec, record_offset(r, seat)) != (ssize_t) sizeof rec)
                return -EBADMSG;
        if (rec.seq != seq || rec.pid <= 0)
                return how;
        if (rec.run & HC_RUN_PAUSED)      /* between two runs: still there, or left */
                return rec.check != 0 ? RUN_IN_RECORD : how ? how : HC_RUN_REC_LEFT;
        return rec.run > last ? RUN_IN_RECORD : how;
}

bool region_record_present(struct region *r, unsigned seat) {
        uint64_t c = 0;

        if (seat >= r->capacity)
                return false;
        if (r->mapped)
                return __atomic_load_n(&record_mapped(r, seat)->check, __ATOMIC_RELAXED) != 0;
        return pread(r->fd, &c, sizeof c, record_offset(r, seat)) == sizeof c && c != 0;
}

/* Bit i set when record FIRST + i (i < N <= 64) is there; unmapped, in one pread(). */
uint64_t region_records_present(struct region *r, unsigned first, unsigned n) {
        struct hc_slot_rec buf[64];
        uint64_t mask = 0;
        ssize_t got = r->mapped || first >= r->capacity ? 0 : pread(r->fd, buf,
                (n < r->capacity - first ? n : r->capacity - first) * sizeof buf[0], record_offset(r, first));

        for (unsigned i = 0; i < n && i < 64 && first + i < r->capacity; i++)
                if (r->mapped ? region_record_present(r, first + i)
                              : got >= (ssize_t) ((i + 1) * sizeof buf[0]) && buf[i].check != 0)
                        mask |= UINT64_C(1) << i;
        return mask;
}

static bool same_header(const struct region *r, const struct hc_region_header *h) {
        return header_check(h, UINT64_MAX) == 0 && h->region_id == r->region_id &&
               h->capacity == r->capacity && h->data_size == r->data_size;  /* the rest follows */
}

/* The flags, whether record SEAT is there, and the seat's latest run number (its record's,
 * erased or not), in one pread() when the record is near the header. With CHECK, the
 * header is read too and must be the one R was opened with (for a handle opened from a
 * copy kept by the process, handle.c): -ESTALE when not. */
int region_seat_state(struct region *r, unsigned seat, bool check, uint32_t *ret_flags, bool *ret_present,
                      uint64_t *ret_run) {
        size_t flags_off = offsetof(struct hc_region_header, flags), from, len;
        size_t run_end = offsetof(struct hc_slot_rec, run) + sizeof(uint64_t);
        uint64_t buf[512] __attribute__((aligned(64)));     /* it holds a header */
        const struct hc_region_header *h;

        memset(buf, 0, sizeof(struct hc_region_header));  /* pread() fills it; cppcheck cannot tell */
        h = (const void *) buf;

        if (seat >= r->capacity)
                return -EINVAL;
        if (r->mapped) {
                const struct hc_slot_rec *rec = record_mapped(r, seat);

                if (check && (pread(r->fd, buf, sizeof *h, 0) != (ssize_t) sizeof *h || !same_header(r, h)))
                        return -ESTALE;
                *ret_flags = region_word(r, WORD_FLAGS);
                *ret_present = __atomic_load_n(&rec->check, __ATOMIC_ACQUIRE) != 0;
                *ret_run = __atomic_load_n(&rec->run, __ATOMIC_RELAXED);
                return 0;
        }
        len = (size_t) record_offset(r, seat) + run_end;
        from = check && len <= sizeof buf ? 0 : flags_off;       /* both 8-aligned */
        if (check && from != 0 && (pread(r->fd, buf, sizeof *h, 0) != (ssize_t) sizeof *h ||
                                   !same_header(r, h)))
                return -ESTALE;
        if (len - from > sizeof buf || pread(r->fd, buf, len - from, (off_t) from) != (ssize_t) (len - from)) {
                struct hc_slot_rec rec;

                *ret_flags = region_word(r, WORD_FLAGS);
                if (pread(r->fd, &rec, sizeof rec, record_offset(r, seat)) != (ssize_t) sizeof rec)
                        return -EBADMSG;  /* shrunk under us: a damaged region */
                *ret_present = rec.check != 0;
                *ret_run = rec.run;
                return 0;
        }
        if (from == 0 && !same_header(r, h))
                return -ESTALE;
        memcpy(ret_flags, (const char *) buf + flags_off - from, sizeof *ret_flags);
        *ret_present = buf[(len - from - run_end) / 8] != 0;
        *ret_run = buf[(len - from) / 8 - 1];
        return 0;
}

/* One copy of record SEAT: from the mapping with atomic loads, or with one pread(). */
static int record_copy(struct region *r, unsigned seat, struct hc_slot_rec *copy) {
        if (r->mapped) {
                const struct hc_slot_rec *src = record_mapped(r, seat);
                const uint64_t *s = (const uint64_t *) src;
                uint64_t *d = (uint64_t *) copy, c1;

                c1 = __atomic_load_n(&src->check, __ATOMIC_ACQUIRE);
                for (size_t i = 0; i < sizeof *copy / 8; i++)
                        d[i] = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                return c1 == __atomic_load_n(&src->check, __ATOMIC_RELAXED) ? 0 : -EAGAIN;
        }
        if (pread(r->fd, copy, sizeof *copy, record_offset(r, seat)) != (ssize_t) sizeof *copy)
                return -EBADMSG;          /* shrunk under us: a damaged region */
        return 0;
}

static int record_valid(const struct region *r, const struct hc_slot_rec *rec, unsigned seat) {
        if (rec->check == 0 || rec->check != record_check(rec, seat, r->region_id))
                return -EBADMSG;
        if (rec->pid <= 0)
                return -EBADMSG;
        return 0;
}

/*
 * How many times a record that fails its check is read before we call it unreadable. A
 * holder writes its record once, at its join, in well under a microsecond: a reader that
 * catches it half-way finds it whole on the next read, or after letting the writer run.
 * A record that fails every time, or reads the same twice and fails both times (nobody
 * is writing it), is damaged or was written by someone else, and reading it more would
 * only let whoever can write the file multiply our work.
 */
#define RECORD_READS 4

/* *RET from a valid record REC of SEAT. */
static void record_instance(const struct region *r, unsigned seat, const struct hc_slot_rec *rec,
                            hc_instance *ret) {
        size_t tag_len = strnlen(rec->tag, sizeof rec->tag);

        *ret = (hc_instance) {
                .slot = seat,
                .pid = rec->pid,
                .uid = rec->uid,
                .seq = rec->seq,
                .joined_usec = rec->joined_usec,
                .pidns = rec->pidns,
        };
        memcpy(ret->boot_id, rec->boot_id, sizeof ret->boot_id);
        memcpy(ret->tag, rec->tag, tag_len);
        ret->tag[tag_len] = '\0';
        ret->flags |= record_flags(r, rec);
}

/* *RET for a seat whose record we gave up on: only the seat, and whether a record was
 * there at all (an empty one is not written yet, or being erased). */
static void record_missing(unsigned seat, const struct hc_slot_rec *last, hc_instance *ret) {
        *ret = (hc_instance) { .slot = seat, .flags = HC_INSTANCE_NO_RECORD };
        if (last && last->check != 0)
                ret->flags |= HC_INSTANCE_UNREADABLE;
}

/* Reads record SEAT into *RET, read again a few times while it is being written;
 * -EBADMSG when it never was valid, and then *RET is the last copy read (check word 0 when
 * there was none). */
static int region_record_get(struct region *r, unsigned seat, struct hc_slot_rec *ret) {
        struct hc_slot_rec prev;
        bool have_prev = false;           /* an earlier read gave a whole record */

        memset(ret, 0, sizeof *ret);
        if (seat >= r->capacity)
                return -EINVAL;
        for (unsigned attempt = 0;; attempt++) {
                int q = record_copy(r, seat, ret);
                if (q == 0 && record_valid(r, ret, seat) == 0)
                        return 0;
                if (q == -EBADMSG) {
                        memset(ret, 0, sizeof *ret);
                        return -EBADMSG;
                }
                if (q != 0)
                        ret->check = 0;
                if (attempt + 1 >= RECORD_READS ||
                    (q == 0 && have_prev && memcmp(ret, &prev, sizeof prev) == 0))
                        return -EBADMSG;
                if (q == 0) {
                        prev = *ret;
                        have_prev = true;
                }
                if (attempt > 0)
                        (void) sched_yield();      /* let a preempted writer finish */
        }
}

/* Reads record SEAT of a held seat into *RET; a record being written is read again, a
 * few times. On failure *RET says only the seat (HC_INSTANCE_NO_RECORD, and
 * HC_INSTANCE_UNREADABLE when a record is there but never passed its check) and -EBADMSG
 * is returned. */
int region_record_read(struct region *r, unsigned seat, hc_instance *ret, uint64_t *ret_listen_id) {
        struct hc_slot_rec rec;
        int q;

        *ret = (hc_instance) { .slot = seat, .flags = HC_INSTANCE_NO_RECORD };
        if (ret_listen_id)
                *ret_listen_id = 0;
        if (seat >= r->capacity)
                return -EINVAL;
        q = region_record_get(r, seat, &rec);
        if (q < 0) {
                record_missing(seat, &rec, ret);
                return q;
        }
        record_instance(r, seat, &rec, ret);
        if (ret_listen_id)
                *ret_listen_id = rec.listen_id;
        return 0;
}

/*
 * The records of the seats in MASK among the N <= 64 seats from FIRST (one lock file's),
 * into RET[], one per seat in MASK, in seat order, as region_record_read() would give
 * them. Without a mapping they are read all at once, one pread() a pass rather than one
 * per seat: a listing of a full region of 4096 seats costs 64 reads, and a few more
 * passes over the records that failed their check (see RECORD_READS).
 */
void region_records_read(struct region *r, unsigned first, unsigned n, uint64_t mask, hc_instance *ret) {
        struct hc_slot_rec rec[HC_SEATS_PER_FILE], prev[HC_SEATS_PER_FILE];
        uint64_t todo = mask, seen = 0;
        unsigned out[HC_SEATS_PER_FILE];
        size_t size;

        if (first >= r->capacity)
                n = 0;
        else if (n > r->capacity - first)
                n = r->capacity - first;
        if (n > HC_SEATS_PER_FILE)
                n = HC_SEATS_PER_FILE;
        if (n < HC_SEATS_PER_FILE)
                todo &= (UINT64_C(1) << n) - 1;
        for (unsigned i = 0, j = 0; i < HC_SEATS_PER_FILE; i++)
                if (mask & (UINT64_C(1) << i))
                        out[i] = j++;
        for (unsigned i = 0; i < HC_SEATS_PER_FILE; i++)   /* seats past the region */
                if ((mask & ~todo) & (UINT64_C(1) << i))
                        ret[out[i]] = (hc_instance) { .slot = first + i, .flags = HC_INSTANCE_NO_RECORD };
        if (r->mapped) {
                for (unsigned i = 0; i < n; i++)
                        if (todo & (UINT64_C(1) << i))
                                (void) region_record_read(r, first + i, &ret[out[i]], NULL);
                return;
        }

        size = (size_t) n * sizeof rec[0];
        for (unsigned attempt = 0; todo && attempt < RECORD_READS; attempt++) {
                if (attempt > 1)
                        (void) sched_yield();      /* let a preempted writer finish */
                if (pread(r->fd, rec, size, record_offset(r, first)) != (ssize_t) size)
                        break;                    /* shrunk under us: a damaged region */
                for (unsigned i = 0; i < n; i++) {
                        uint64_t bit = UINT64_C(1) << i;

                        if (!(todo & bit))
                                continue;
                        if (record_valid(r, &rec[i], first + i) == 0) {
                                record_instance(r, first + i, &rec[i], &ret[out[i]]);
                                todo &= ~bit;
                        } else if ((seen & bit) && memcmp(&rec[i], &prev[i], sizeof rec[i]) == 0) {
                                record_missing(first + i, &rec[i], &ret[out[i]]);
                                todo &= ~bit;     /* the same bytes twice: nobody writes it */
                        } else {
                                prev[i] = rec[i];
                                seen |= bit;
                                record_missing(first + i, &rec[i], &ret[out[i]]);
                        }
                }
        }
        for (unsigned i = 0; i < n; i++)
                if ((todo & (UINT64_C(1) << i)) && !(seen & (UINT64_C(1) << i)))
                        record_missing(first + i, NULL, &ret[out[i]]);
}

/* ---- Runs ---- */

/* Whether entry E at PLACE of SEAT's ring is whole and says only what an entry may. */
static bool run_valid(const struct region *r, const struct hc_slot_rec *e, unsigned seat, unsigned place) {
        return record_valid(r, e, seat) == 0 && e->end_check == end_check(e, seat, r->region_id) &&
                e->run > 0 && e->run < HC_RUN_LIMIT && e->run % HC_RUNS_PER_SEAT == place &&
                (e->how == HC_RUN_REC_LEFT || e->how == HC_RUN_REC_DIED) &&
                e->status >= -1 && e->status < 256 + 128 && e->ended_seq >= e->started_seq &&
                e->started_seq >= e->seq;
}

/* The valid entries of SEAT's ring, into RET[HC_RUNS_PER_SEAT] by place; an entry that
 * is empty, torn every time or invalid has run 0. The number of valid ones. */
static int region_runs_read(struct region *r, unsigned seat, struct hc_slot_rec *ret) {
        struct hc_slot_rec buf[HC_RUNS_PER_SEAT], prev[HC_RUNS_PER_SEAT];
        unsigned todo = (1u << HC_RUNS_PER_SEAT) - 1, n = 0;
        size_t size = sizeof buf;

        if (seat >= r->capacity)
                return -EINVAL;
        memset(ret, 0, size);
        /* An entry caught while its writer writes it is read again, a few times, as
         * records are (RECORD_READS); one that reads the same twice and fails is empty,
         * damaged or forged, and is dropped. */
        for (unsigned attempt = 0; todo && attempt < RECORD_READS; attempt++) {
                if (attempt > 1)
                        (void) sched_yield();
                if (words_read(r, run_offset(r, seat, 0), buf, size) < 0)
                        return -EBADMSG;          /* shrunk under us: a damaged region */
                for (unsigned p = 0; p < HC_RUNS_PER_SEAT; p++) {
                        if (!(todo & (1u << p)))
                                continue;
                        if (buf[p].check == 0 || run_valid(r, &buf[p], seat, p) ||
                            (attempt > 0 && memcmp(&buf[p], &prev[p], sizeof prev[p]) == 0)) {
                                ret[p] = buf[p];
                                todo &= ~(1u << p);
                        } else
                                prev[p] = buf[p];
                }
        }
        for (unsigned p = 0; p < HC_RUNS_PER_SEAT; p++) {
                if (run_valid(r, &ret[p], seat, p))
                        n++;
                else
                        ret[p].run = 0;
        }
        return (int) n;
}

/* The flags every reader of a record or a run gives it (hc_instance's, hc_run's). */
static unsigned record_flags(const struct region *r, const struct hc_slot_rec *rec) {
        unsigned flags = 0;

        if (self_pidns() && rec->pidns != self_pidns())
                flags |= HC_INSTANCE_OTHER_PIDNS;
        if (memcmp(rec->boot_id, self_boot_id(), sizeof rec->boot_id) != 0)
                flags |= HC_INSTANCE_OTHER_BOOT;
        if (r->others_write)
                flags |= HC_INSTANCE_UNVERIFIED;
        return flags;
}

/* *RET from the valid record or ring entry E of SEAT, as HOW (HC_RUN_*). */
static void run_public(const struct region *r, unsigned seat, const struct hc_slot_rec *e, int how,
                       hc_run *ret) {
        size_t tag_len = strnlen(e->tag, sizeof e->tag);

        *ret = (hc_run) {
                .slot = seat,
                .run = e->run & ~HC_RUN_PAUSED,
                .pid = e->pid,
                .uid = e->uid,
                .seq = e->started_seq,
                .started_usec = e->joined_usec,
                .pidns = e->pidns,
                .how = how,
                .exit_status = -1,
                .flags = record_flags(r, e),
        };
        memcpy(ret->tag, e->tag, tag_len);
        ret->tag[tag_len] = '\0';
        /* the end on the realtime clock: the join's, plus what the monotonic clock says the
         * run took (bounded: the words may be anyone's); a death's moment nobody recorded */
        if (how != HC_RUN_RUNNING)
                ret->ended_seq = e->ended_seq > e->started_seq ? e->ended_seq : e->started_seq;
        if (how == HC_RUN_LEFT) {
                uint64_t d = ret->ended_seq - e->started_seq;

                ret->ended_usec = e->joined_usec + (int64_t) (d / 1000 < INT64_MAX / 2 ? d / 1000 : 0);
                ret->exit_status = e->status >= 0 && e->status < 256 ? e->status : -1;
                ret->signal = e->status >= 256 ? e->status - 256 : 0;
        }
}

int region_ring_runs(struct region *r, unsigned seat, hc_run *ret) {
        struct hc_slot_rec e[HC_RUNS_PER_SEAT];
        int n = 0, q;

        q = region_runs_read(r, seat, e);
        if (q < 0)
                return q;
        for (unsigned p = 0; p < HC_RUNS_PER_SEAT; p++)
                if (e[p].run != 0)
                        run_public(r, seat, &e[p], e[p].how, &ret[n++]);
        return n;
}

int region_record_run(struct region *r, unsigned seat, hc_run *ret) {
        struct hc_slot_rec rec;
        int q;

        q = region_record_get(r, seat, &rec);
        if (q < 0)
                return q;
        if (rec.run == 0 || rec.run >= HC_RUN_LIMIT)
                return -ENOENT;           /* no run: between two (HC_RUN_PAUSED), or none */
        run_public(r, seat, &rec, HC_RUN_RUNNING, ret);
        return 0;
}

void region_record_end_current(struct region *r, unsigned seat, int status) {
        struct hc_slot_rec rec;

        if (region_record_get(r, seat, &rec) == 0)
                region_record_end(r, seat, &rec, status);
        else
                region_record_clear(r, seat, 0);  /* whatever is there names nobody */
}

int region_run_marks(struct region *r, unsigned first, unsigned n, uint64_t *ret) {
        struct hc_slot_rec rec[HC_SEATS_PER_FILE];

        if (first > r->capacity || n > r->capacity - first)
                return -EINVAL;
        while (n > 0) {
                unsigned m = n < HC_SEATS_PER_FILE ? n : HC_SEATS_PER_FILE;

                if (r->mapped)
                        for (unsigned i = 0; i < m; i++) {
                                const struct hc_slot_rec *src = record_mapped(r, first + i);

                                rec[i].check = __atomic_load_n(&src->check, __ATOMIC_ACQUIRE);
                                rec[i].run = __atomic_load_n(&src->run, __ATOMIC_RELAXED);
                        }
                else if (pread(r->fd, rec, m * sizeof rec[0], record_offset(r, first)) !=
                         (ssize_t) (m * sizeof rec[0]))
                        return -EBADMSG;
                for (unsigned i = 0; i < m; i++) {
                        uint64_t run = rec[i].run & ~HC_RUN_PAUSED;
                        bool running = rec[i].check != 0 && !(rec[i].run & HC_RUN_PAUSED);

                        *ret++ = (run < HC_RUN_LIMIT ? run : 0) << 2 | running;
                }
                first += m;
                n -= m;
        }
        return 0;
}

/* ---- Header words ---- */

static const size_t word_offset[] = {
        [WORD_FLAGS] = offsetof(struct hc_region_header, flags),
        [WORD_WAITERS] = offsetof(struct hc_region_header, waiters),
        [WORD_GENERATION] = offsetof(struct hc_region_header, generation),
        [WORD_LIVE] = offsetof(struct hc_region_header, live),
        [WORD_DATA_LOCKED] = offsetof(struct hc_region_header, data_locked),
        [WORD_LOCK_HELD] = offsetof(struct hc_region_header, lock_held),
        [WORD_SEAT_HWM] = offsetof(struct hc_region_header, seat_hwm),
};

static uint32_t *word_mapped(struct region *r, enum region_word w) {
        return (uint32_t *) ((char *) r->map + word_offset[w]);
}

/* A word's value; 0 when it cannot be read (a shrunk file reads as empty). */
uint32_t region_word(struct region *r, enum region_word w) {
        uint32_t v = 0;

        if (r->mapped)
                return __atomic_load_n(word_mapped(r, w), __ATOMIC_ACQUIRE);
        if (pread(r->fd, &v, sizeof v, (off_t) word_offset[w]) != sizeof v)
                return 0;
        return v;
}

void region_word_set(struct region *r, enum region_word w, uint32_t v) {
        if (!r->writable)
                return;
        if (r->mapped)
                __atomic_store_n(word_mapped(r, w), v, __ATOMIC_RELEASE);
        else
                (void) pwrite_all(r->fd, &v, sizeof v, (off_t) word_offset[w]);
}

/* Adds DELTA (a hint: without a mapping, a read and a write that a racing writer can
 * undo; never below 0). */
void region_word_add(struct region *r, enum region_word w, int32_t delta) {
        uint32_t v;

        if (!r->writable)
                return;
        if (r->mapped) {
                if (delta < 0) {
                        uint32_t cur = __atomic_load_n(word_mapped(r, w), __ATOMIC_RELAXED);
                        do {
                                v = cur >= (uint32_t) -delta ? cur + (uint32_t) delta : 0;
                        } while (!__atomic_compare_exchange_n(word_mapped(r, w), &cur, v, true,
                                                              __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
                } else
                        __atomic_add_fetch(word_mapped(r, w), (uint32_t) delta, __ATOMIC_ACQ_REL);
                return;
        }
        v = region_word(r, w);
        v = delta < 0 ? (v >= (uint32_t) -delta ? v + (uint32_t) delta : 0) : v + (uint32_t) delta;
        region_word_set(r, w, v);
}

/* Called with the region lock held. */
void region_flags_change(struct region *r, uint32_t set, uint32_t clear) {
        region_word_set(r, WORD_FLAGS, (region_word(r, WORD_FLAGS) | set) & ~clear);
}

/* Tells waiters that something changed: the generation futex for mapped waiters, an
 * IN_MODIFY on the file for everyone else. Costs nothing when nobody waits. */
void region_poke(struct region *r) {
        uint32_t one = 1;

        if (!r->writable || region_word(r, WORD_WAITERS) == 0)
                return;
        region_word_add(r, WORD_GENERATION, 1);
        if (r->mapped)
                (void) syscall(SYS_futex, &r->map->generation, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
        (void) pwrite_all(r->fd, &one, sizeof one, (off_t) offsetof(struct hc_region_header, poke));
}

/* Sleeps on the generation word while it is SEEN, at most TS. -EOPNOTSUPP unmapped. */
int region_futex_wait(struct region *r, uint32_t seen, const struct timespec *ts) {
        if (!r->mapped)
                return -EOPNOTSUPP;
        (void) syscall(SYS_futex, &r->map->generation, FUTEX_WAIT, seen, ts, NULL, 0);
        return 0;
}

/* ---- User data ---- */

void *region_data(struct region *r) {
        if (!r->mapped || r->data_size == 0)
                return NULL;
        return (char *) r->map + r->data_offset;
}

int region_data_io(struct region *r, uint64_t off, void *buf, size_t len, bool write) {
        ssize_t n;

        if (off > r->data_size || len > r->data_size - off)
                return -EINVAL;
        if (write && !r->writable)
                return -EACCES;
        if (r->mapped) {
                if (write)
                        memcpy((char *) r->map + r->data_offset + off, buf, len);
                else
                        memcpy(buf, (char *) r->map + r->data_offset + off, len);
                return 0;
        }
        n = write ? pwrite(r->fd, buf, len, (off_t) (r->data_offset + off))
                  : pread(r->fd, buf, len, (off_t) (r->data_offset + off));
        if (n < 0)
                return -errno;
        return (size_t) n == len ? 0 : write ? -ENOSPC : -EBADMSG;
}

/* Maps the first SIZE bytes of the user data over ADDR (MAP_FIXED). Mapped regions only. */
int region_data_map_over(struct region *r, void *addr, size_t size) {
        void *p;

        if (!r->mapped)
                return -EPERM;
        if (size > r->data_size)
                return -EMSGSIZE;
        p = mmap(addr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, r->fd, (off_t) r->data_offset);
        return p == MAP_FAILED ? -errno : 0;
}
