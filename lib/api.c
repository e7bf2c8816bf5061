/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The public entry points: argument checks, then the modules that do the work. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "count.h"
#include "create.h"
#include "damaged.h"
#include "fleet.h"
#include "format.h"
#include "hc-internal.h"
#include "holder.h"
#include "join.h"
#include "proc.h"
#include "retire.h"
#include "runs.h"
#include "wait.h"

#ifdef HC_TEST_HOOKS
void (*hc_test_hook)(const char *point);
#endif

#define RETIRE_RETRIES 100

static int check_join_options(const hc_options *opt) {
        if (!opt)
                return 0;
        if (opt->max > HC_CAPACITY_MAX || opt->timeout_ms < -1)
                return -EINVAL;
        if (opt->tag && strlen(opt->tag) > HC_TAG_MAX)
                return -EINVAL;
        if (opt->flags & ~(unsigned) (HC_NO_CREATE | HC_INHERIT | HC_WATCH | HC_ALLOW_ROOT |
                                      HC_RECORD_LATER | HC_ANY_OWNER | HC_LOCK_TRY))
                return -EINVAL;
        return 0;
}

static int check_create_options(const struct scope *sc, const hc_options *opt) {
        if (!opt)
                return 0;
        if (opt->capacity > HC_CAPACITY_MAX || opt->data_size > HC_DATA_SIZE_MAX ||
            (opt->mode & ~0777u))
                return -EINVAL;
        return mode_trusted(sc, opt->mode);
}

/* NAME and OPT for a call that may create the region. */
static int resolve_create(const char *name, const hc_options *opt, struct scope *ret) {
        int r;

        r = scope_resolve(name, opt, ret);
        if (r < 0)
                return r;
        return check_create_options(ret, opt);
}

/* A short-lived handle on an existing region, never mapped, for one call by name (a
 * handle opened without HANDLE_CREATE never creates). */
static int open_existing(const char *name, const hc_options *opt, unsigned flags, hc_region **ret) {
        struct scope sc;
        int r;

        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        return handle_open(&sc, opt, flags, ret);
}

/* The exact count, only reading. */
static int count_scope(const struct scope *sc, const hc_options *opt) {
        hc_region *h = NULL;
        int r;

        r = handle_open(sc, opt, HANDLE_READ_ONLY | HANDLE_FOREIGN, &h);
        if (r < 0)
                return r;
        r = handle_count(h, false, NULL);
        if (r > 0 && region_unlinked(&h->r) > 0)
                r = 0;                    /* retired meanwhile: nobody is in it */
        handle_unref(h);
        return r;
}

/* ---- Joining and leaving ---- */

_hc_public_ int hc_join(const char *name, const hc_options *opt, hc_slot **ret) {
        struct scope sc;
        int r;

        hc_assert_return(ret, -EINVAL);
        if (fleet_scope(opt)) {
                r = check_join_options(opt);
                return r < 0 ? r : fleet_join(name, opt, ret);
        }
        r = resolve_create(name, opt, &sc);
        if (r < 0)
                return r;
        r = check_join_options(opt);
        if (r < 0)
                return r;
        return join_by_name(&sc, opt, ret);
}

_hc_public_ hc_slot *hc_leave(hc_slot *slot) {
        if (slot && slot->fleet)
                fleet_leave(slot, true);
        else if (slot)
                slot_leave(slot);
        return NULL;
}

_hc_public_ hc_slot *hc_leave_status(hc_slot *slot, int status) {
        if (slot && !slot->fleet) {
                slot->has_status = true;
                slot->status = status;
        }
        return hc_leave(slot);
}

_hc_public_ hc_slot *hc_abandon(hc_slot *slot) {
        if (slot && slot->fleet)
                fleet_leave(slot, false);
        else if (slot)
                slot_abandon(slot);
        return NULL;
}

_hc_public_ unsigned hc_slot_index(const hc_slot *slot) {
        return slot ? slot->index : 0;
}

_hc_public_ uint64_t hc_slot_seq(const hc_slot *slot) {
        if (!slot)
                return 0;
        return slot->fleet ? slot->fence : slot->rec.seq;
}

_hc_public_ int hc_slot_fd(hc_slot *slot) {
        int fd;

        hc_assert_return(slot, -EINVAL);
        if (slot->fleet) {
                slot->fd_exposed = true;
                return slot->fd;
        }
        /* the seat's own lock file: a descriptor of the region's would reach every seat */
        fd = slot_own_fd(slot);
        if (fd >= 0)
                slot->fd_exposed = true;  /* from now on, leave unlocks explicitly */
        return fd;
}

_hc_public_ int hc_slot_set_pid(hc_slot *slot, pid_t pid) {
        hc_assert_return(slot && pid > 0, -EINVAL);
        return slot->fleet ? fleet_set_pid(slot, pid) : slot_set_pid(slot, pid);
}

_hc_public_ int hc_slot_end_run(hc_slot *slot, int status) {
        hc_assert_return(slot, -EINVAL);
        return slot->fleet ? -EOPNOTSUPP : slot_end_run(slot, status);
}

_hc_public_ hc_region *hc_slot_region(const hc_slot *slot) {
        return slot ? slot->rg : NULL;
}

/* ---- The handle ---- */

_hc_public_ int hc_region_open(const char *name, const hc_options *opt, hc_region **ret) {
        struct scope sc;
        int r;

        hc_assert_return(ret, -EINVAL);
        r = resolve_create(name, opt, &sc);
        if (r < 0)
                return r;
        return handle_open(&sc, opt, HANDLE_CREATE | HANDLE_MAP |
                           (opt && (opt->flags & HC_ANY_OWNER) ? HANDLE_FOREIGN : 0), ret);
}

_hc_public_ hc_region *hc_region_close(hc_region *rg) {
        return handle_unref(rg);
}

_hc_public_ int hc_region_join(hc_region *rg, const hc_options *opt, hc_slot **ret) {
        int r;

        hc_assert_return(rg && ret, -EINVAL);
        if (fleet_scope(opt))
                return -EOPNOTSUPP;       /* a handle is a local region's */
        if (opt) {
                hc_assert_return(opt->size >= HC_OPTIONS_SIZE_V1, -EINVAL);
                r = check_join_options(opt);
                if (r < 0)
                        return r;
        }
        return join_handle(rg, opt, false, ret);
}

_hc_public_ int hc_region_count(hc_region *rg) {
        hc_assert_return(rg, -EINVAL);
        if (handle_retired(rg))
                return 0;
        return handle_count(rg, true, NULL);
}

_hc_public_ int hc_region_count_approx(hc_region *rg) {
        uint32_t v;

        hc_assert_return(rg, -EINVAL);
        v = region_word(&rg->r, WORD_LIVE);
        return (int) (v < rg->r.capacity ? v : rg->r.capacity);
}

_hc_public_ int hc_region_list(hc_region *rg, hc_instance **ret) {
        hc_assert_return(rg && ret, -EINVAL);
        if (handle_retired(rg)) {
                *ret = NULL;
                return 0;
        }
        return handle_list(rg, ret);
}

_hc_public_ int hc_region_history(hc_region *rg, hc_run **ret) {
        hc_assert_return(rg && ret, -EINVAL);
        return runs_history(rg, ret);
}

_hc_public_ int hc_region_run_marks(hc_region *rg, uint64_t *ret, unsigned n) {
        hc_assert_return(rg && ret, -EINVAL);
        return runs_marks(rg, ret, n);
}

_hc_public_ int hc_region_seat_runs(hc_region *rg, unsigned slot, hc_run *ret) {
        hc_assert_return(rg && ret, -EINVAL);
        return runs_seat(rg, slot, ret);
}

_hc_public_ int hc_region_primary(hc_region *rg, hc_instance *ret) {
        hc_assert_return(rg && ret, -EINVAL);
        if (handle_retired(rg))
                return -ENOENT;
        return handle_primary(rg, ret, NULL);
}

_hc_public_ int hc_region_wait(hc_region *rg, unsigned below, int timeout_ms) {
        hc_assert_return(rg && below > 0 && timeout_ms >= -1, -EINVAL);
        return handle_wait(rg, false, below, timeout_ms);
}

_hc_public_ int hc_region_wait_change(hc_region *rg, unsigned seen, int timeout_ms) {
        hc_assert_return(rg && timeout_ms >= -1, -EINVAL);
        return handle_wait(rg, true, seen, timeout_ms);
}

_hc_public_ const char *hc_region_name(const hc_region *rg) {
        return rg ? rg->sc.name : NULL;
}

_hc_public_ unsigned hc_region_capacity(const hc_region *rg) {
        return rg ? rg->r.capacity : 0;
}

_hc_public_ size_t hc_region_data_size(const hc_region *rg) {
        return rg ? (size_t) rg->r.data_size : 0;
}

_hc_public_ int hc_region_mapped(const hc_region *rg) {
        hc_assert_return(rg, -EINVAL);
        return rg->r.mapped;
}

_hc_public_ int hc_region_retired(hc_region *rg) {
        hc_assert_return(rg, -EINVAL);
        if (handle_retired(rg))           /* may repair a half-done retirement */
                return 1;
        return region_unlinked(&rg->r) > 0;
}

_hc_public_ int hc_region_departure(hc_region *rg, unsigned slot, uint64_t seq) {
        hc_assert_return(rg, -EINVAL);
        return handle_departure(rg, slot, seq);
}

_hc_public_ int hc_region_holder(hc_region *rg, unsigned slot, pid_t pid) {
        hc_assert_return(rg && pid >= 0, -EINVAL);
        return pid > 0 ? holder_check(rg, slot, pid) : holder_find(rg, slot);
}

_hc_public_ int hc_region_reap(hc_region *rg) {
        unsigned reaped = 0;
        int r;

        hc_assert_return(rg, -EINVAL);
        r = handle_lock(rg, handle_lock_timeout(rg));
        if (r < 0)
                return r;
        r = handle_count(rg, true, &reaped);
        region_word_add(&rg->r, WORD_GENERATION, 1);
        handle_unlock(rg);
        region_poke(&rg->r);
        return r < 0 ? r : (int) reaped;
}

/* ---- Queries by name ---- */

_hc_public_ int hc_count(const char *name, const hc_options *opt) {
        struct scope sc;
        int r;

        if (fleet_scope(opt))
                return fleet_count(name, opt);
        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        return count_scope(&sc, opt);
}

_hc_public_ int hc_count_read_locked(const char *name, const hc_options *opt, unsigned *ret_read_locked) {
        hc_region *h = NULL;
        struct scope sc;
        int r;

        hc_assert_return(ret_read_locked, -EINVAL);
        if (fleet_scope(opt))
                return -EOPNOTSUPP;
        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        r = handle_open(&sc, opt, HANDLE_READ_ONLY | HANDLE_FOREIGN, &h);
        if (r < 0)
                return r;
        r = handle_count_locks(h, ret_read_locked);
        if (r > 0 && region_unlinked(&h->r) > 0)
                r = 0;                    /* retired meanwhile: nobody is in it */
        handle_unref(h);
        return r;
}

/* The calls by name that open the region, ask its handle one thing, and close it. */
enum query_kind { Q_COUNT_APPROX, Q_LIST, Q_PRIMARY, Q_WAIT, Q_REAP, Q_REMOVE, Q_HISTORY };

struct query {
        enum query_kind what;
        hc_instance **list;      /* Q_LIST */
        hc_instance *one;        /* Q_PRIMARY */
        hc_run **runs;           /* Q_HISTORY */
        unsigned below;          /* Q_WAIT */
        int timeout_ms;          /* Q_WAIT */
};

static int by_name(const char *name, const hc_options *opt, unsigned flags, const struct query *q) {
        hc_region *h = NULL;
        int r;

        r = open_existing(name, opt, flags, &h);
        if (r < 0)
                return r == -ENOENT && q->what == Q_WAIT ? 0 : r;      /* no region: nobody in it */
        switch (q->what) {
        case Q_COUNT_APPROX:
                r = hc_region_count_approx(h);
                break;
        case Q_LIST:
                r = hc_region_list(h, q->list);
                break;
        case Q_PRIMARY:
                r = hc_region_primary(h, q->one);
                break;
        case Q_WAIT:
                r = handle_wait(h, false, q->below, q->timeout_ms);
                break;
        case Q_REAP:
                r = hc_region_reap(h);
                break;
        case Q_REMOVE:
                r = region_retire(h);
                break;
        case Q_HISTORY:
                r = hc_region_history(h, q->runs);
                break;
        }
        handle_unref(h);
        return r;
}

_hc_public_ int hc_count_approx(const char *name, const hc_options *opt) {
        return by_name(name, opt, HANDLE_READ_ONLY | HANDLE_FOREIGN, &(struct query) { Q_COUNT_APPROX });
}

_hc_public_ int hc_list(const char *name, const hc_options *opt, hc_instance **ret) {
        hc_assert_return(ret, -EINVAL);
        if (fleet_scope(opt))
                return fleet_list(name, opt, ret);
        return by_name(name, opt, HANDLE_FOREIGN, &(struct query) { Q_LIST, .list = ret });
}

_hc_public_ int hc_history(const char *name, const hc_options *opt, hc_run **ret) {
        hc_assert_return(ret, -EINVAL);
        if (fleet_scope(opt))
                return -EOPNOTSUPP;
        return by_name(name, opt, HANDLE_FOREIGN, &(struct query) { Q_HISTORY, .runs = ret });
}

_hc_public_ int hc_primary(const char *name, const hc_options *opt, hc_instance *ret) {
        hc_assert_return(ret, -EINVAL);
        if (fleet_scope(opt))
                return fleet_primary(name, opt, ret);
        return by_name(name, opt, HANDLE_FOREIGN, &(struct query) { Q_PRIMARY, .one = ret });
}

_hc_public_ int hc_wait(const char *name, const hc_options *opt, unsigned below, int timeout_ms) {
        hc_assert_return(below > 0 && timeout_ms >= -1, -EINVAL);
        if (fleet_scope(opt))
                return fleet_wait(name, opt, below, timeout_ms);
        return by_name(name, opt, HANDLE_FOREIGN,
                       &(struct query) { Q_WAIT, .below = below, .timeout_ms = timeout_ms });
}

_hc_public_ int hc_reap(const char *name, const hc_options *opt) {
        return by_name(name, opt, 0, &(struct query) { Q_REAP });
}

/* ---- Creating and retiring ---- */

_hc_public_ int hc_create(const char *name, const hc_options *opt) {
        struct scope sc;
        int r;

        if (fleet_scope(opt))
                return hc_fleet_create(name, opt, NULL);

        r = resolve_create(name, opt, &sc);
        if (r < 0)
                return r;
        for (unsigned attempt = 0;; attempt++) {
                _cleanup_close_ int dirfd = -EBADF, fd = -EBADF;
                hc_region *h = NULL;
                int q;

                r = scope_open_dir(&sc, true, &dirfd);
                if (r < 0)
                        return r;
                r = region_create(dirfd, &sc, opt, &fd);
                if (r != 0)
                        return r;
                HC_HOOK("create-exists");
                /* it exists: make sure it is one we can use. It may also have been
                 * removed since we found it; then we create it after all. */
                q = handle_open(&sc, opt, 0, &h);
                handle_unref(h);
                if (q == -EBADMSG) {
                        /* damaged: ours to make again when nobody is in it (damaged.c) */
                        fd = safe_close(fd);
                        r = damaged_replace(dirfd, &sc, opt, &fd);
                        if (r > 0)
                                return 2;
                        if (r == -EAGAIN && attempt < RETIRE_RETRIES)
                                continue;
                }
                if ((q == -ENOENT || q == -ESTALE) && attempt < RETIRE_RETRIES)
                        continue;
                if (q == -ENOENT || q == -ESTALE)
                        return -ESTALE;   /* removed and made again, over and over */
                return q < 0 ? q : 0;
        }
}

/* The owner of a region file that fails validation, or root, may remove it when nobody
 * holds a seat in it (damaged.c). */
static int remove_damaged(const char *name, const hc_options *opt) {
        _cleanup_close_ int dirfd = -EBADF;
        struct scope sc;
        int r;

        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        r = scope_open_dir(&sc, false, &dirfd);
        if (r < 0)
                return r;
        return damaged_remove(dirfd, &sc);
}

_hc_public_ int hc_remove(const char *name, const hc_options *opt) {
        int r;

        if (fleet_scope(opt))
                return fleet_remove(name, opt);
        for (unsigned attempt = 0;; attempt++) {
                int q;

                r = by_name(name, opt, 0, &(struct query) { Q_REMOVE });
                /* root may not open another user's region to retire it, but may remove
                 * it when it is damaged */
                if (r != -EBADMSG && !(r == -EPERM && geteuid() == 0))
                        return r;
                q = remove_damaged(name, opt);
                if (q == -EAGAIN && r == -EBADMSG && attempt < RETIRE_RETRIES)
                        continue;         /* not damaged any more: retire it as usual */
                return q == -EAGAIN ? r : q;
        }
}

_hc_public_ int hc_names(const hc_options *opt, int (*cb)(const char *name, int count, void *userdata),
                         void *userdata) {
        _cleanup_close_ int dfd = -EBADF;
        struct scope sc;
        struct dirent *de;
        DIR *d;
        int r;

        hc_assert_return(cb, -EINVAL);
        if (fleet_scope(opt))
                return fleet_names(opt, cb, userdata);
        r = scope_resolve_dir(opt, &sc);
        if (r < 0)
                return r;
        r = scope_open_dir(&sc, false, &dfd);
        if (r < 0)
                return r;
        (void) region_sweep(dfd, sc.system);
        d = fdopendir(dfd);
        if (d)
                dfd = -EBADF;
        if (!d)
                return -errno;
        r = 0;
        while ((de = readdir(d))) {
                struct scope one = sc;
                struct stat st;

                if (name_check(de->d_name) < 0)
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISSOCK(st.st_mode))
                        continue;
                memcpy(one.name, de->d_name, strlen(de->d_name) + 1);    /* name_check() bounded it */
                r = cb(de->d_name, count_scope(&one, opt), userdata);
                if (r != 0)
                        break;
        }
        (void) closedir(d);
        return r;
}

_hc_public_ int hc_scope_dir(const hc_options *opt, char *buf, size_t len) {
        struct scope sc;
        size_t n;
        int r;

        hc_assert_return(buf || len == 0, -EINVAL);
        r = scope_resolve_dir(opt, &sc);
        if (r < 0)
                return r;
        n = strlen(sc.dir);
        if (n >= len)
                return -ENAMETOOLONG;
        memcpy(buf, sc.dir, n + 1);
        return (int) n;
}

_hc_public_ int hc_name_valid(const char *name) {
        return scope_resolve(name, NULL, &(struct scope) {});
}
