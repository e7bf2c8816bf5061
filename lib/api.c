/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The public entry points: argument checks, then the modules that do the work. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hc-internal.h"
#include "region.h"

#ifdef HC_TEST_HOOKS
void (*hc_test_hook)(const char *point);
#endif

static int check_join_options(const hc_options *opt) {
        if (!opt)
                return 0;
        if (opt->max > HC_CAPACITY_MAX || opt->timeout_ms < -1)
                return -EINVAL;
        if (opt->tag && strlen(opt->tag) > HC_TAG_MAX)
                return -EINVAL;
        if (opt->flags & ~(unsigned) (HC_NO_CREATE | HC_INHERIT | HC_WATCH | HC_ALLOW_ROOT))
                return -EINVAL;
        return 0;
}

static int check_create_options(const hc_options *opt) {
        if (!opt)
                return 0;
        if (opt->capacity > HC_CAPACITY_MAX || opt->data_size > HC_DATA_SIZE_MAX ||
            (opt->mode & ~0777u))
                return -EINVAL;
        return 0;
}

/* ---- Joining and leaving ---- */

_hc_public_ int hc_join(const char *name, const hc_options *opt, hc_slot **ret) {
        struct scope sc;
        int r;

        hc_assert_return(ret, -EINVAL);
        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        r = check_join_options(opt);
        if (r < 0)
                return r;
        r = check_create_options(opt);
        if (r < 0)
                return r;
        return slot_join_cold(&sc, opt, ret);
}

_hc_public_ hc_slot *hc_leave(hc_slot *slot) {
        if (slot)
                slot_leave(slot);
        return NULL;
}

_hc_public_ unsigned hc_slot_index(const hc_slot *slot) {
        return slot ? slot->index : 0;
}

_hc_public_ uint64_t hc_slot_seq(const hc_slot *slot) {
        return slot ? slot->rec.seq : 0;
}

_hc_public_ int hc_slot_fd(const hc_slot *slot) {
        hc_assert_return(slot, -EINVAL);
        ((hc_slot *) slot)->fd_exposed = true;    /* from now on, leave unlocks explicitly */
        return slot->fd;
}

_hc_public_ int hc_slot_set_pid(hc_slot *slot, pid_t pid) {
        hc_assert_return(slot && pid > 0, -EINVAL);
        if (slot->pid != self_pid())
                return -ESTALE;

        slot->rec.pid = pid;
        slot->rec.check = record_check(&slot->rec, slot->index, slot->region_id);
        if (slot->rg) {
                struct hc_slot_rec *dst = (struct hc_slot_rec *)
                        ((char *) slot->rg->hdr + slot->rg->table_offset) + slot->index;
                uint64_t *d = (uint64_t *) dst;
                const uint64_t *s = (const uint64_t *) &slot->rec;

                __atomic_store_n(&dst->check, 0, __ATOMIC_RELAXED);
                __atomic_thread_fence(__ATOMIC_RELEASE);
                for (size_t i = 1; i < sizeof slot->rec / 8; i++)     /* as slot.c does */
                        __atomic_store_n(&d[i], s[i], __ATOMIC_RELAXED);
                __atomic_store_n(&dst->check, slot->rec.check, __ATOMIC_RELEASE);
                return 0;
        }
        if (pwrite(slot->rec_fd >= 0 ? slot->rec_fd : slot->fd, &slot->rec, sizeof slot->rec,
                   (off_t) (slot->table_offset + (uint64_t) slot->index * sizeof slot->rec)) !=
            (ssize_t) sizeof slot->rec)
                return errno ? -errno : -EIO;
        return 0;
}

/* ---- The handle ---- */

_hc_public_ int hc_region_open(const char *name, const hc_options *opt, hc_region **ret) {
        struct scope sc;
        int r;

        hc_assert_return(ret, -EINVAL);
        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        r = check_create_options(opt);
        if (r < 0)
                return r;
        for (unsigned attempt = 0;; attempt++) {
                r = handle_open(&sc, opt, ret);
                if (r != -ESTALE || attempt >= 10)
                        return r;
        }
}

_hc_public_ hc_region *hc_region_close(hc_region *rg) {
        return handle_unref(rg);
}

_hc_public_ int hc_region_join(hc_region *rg, const hc_options *opt, hc_slot **ret) {
        int r;

        hc_assert_return(rg && ret, -EINVAL);
        if (opt) {
                hc_assert_return(opt->size >= HC_OPTIONS_SIZE_V1, -EINVAL);
                r = check_join_options(opt);
                if (r < 0)
                        return r;
        }
        return slot_join_handle(rg, opt, ret);
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
        v = __atomic_load_n(&rg->hdr->live, __ATOMIC_RELAXED);
        return (int) (v < rg->capacity ? v : rg->capacity);
}

_hc_public_ int hc_region_list(hc_region *rg, hc_instance **ret) {
        hc_assert_return(rg && ret, -EINVAL);
        if (handle_retired(rg)) {
                *ret = NULL;
                return 0;
        }
        return handle_list(rg, ret);
}

_hc_public_ int hc_region_primary(hc_region *rg, hc_instance *ret) {
        _cleanup_free_ hc_instance *list = NULL;
        int n, best = -1;

        hc_assert_return(rg && ret, -EINVAL);
        n = hc_region_list(rg, &list);
        if (n < 0)
                return n;
        for (int i = 0; i < n; i++) {
                if (list[i].flags & HC_INSTANCE_NO_RECORD)
                        continue;
                if (best < 0 || list[i].seq < list[best].seq)
                        best = i;
        }
        if (best < 0)
                return -ENOENT;
        *ret = list[best];
        return 0;
}

_hc_public_ int hc_region_wait(hc_region *rg, unsigned below, int timeout_ms) {
        hc_assert_return(rg && below > 0 && timeout_ms >= -1, -EINVAL);
        return handle_wait(rg, below, timeout_ms);
}

_hc_public_ const char *hc_region_name(const hc_region *rg) {
        return rg ? rg->sc.name : NULL;
}

_hc_public_ unsigned hc_region_capacity(const hc_region *rg) {
        return rg ? rg->capacity : 0;
}

_hc_public_ size_t hc_region_data_size(const hc_region *rg) {
        return rg ? (size_t) rg->data_size : 0;
}

_hc_public_ int hc_region_retired(const hc_region *rg) {
        struct stat st;

        hc_assert_return(rg, -EINVAL);
        if (handle_retired((hc_region *) rg))   /* may repair a half-done retirement */
                return 1;
        return fstat(rg->fd, &st) == 0 && st.st_nlink == 0;
}

/* ---- Queries by name ---- */

static const hc_options *no_create(const hc_options *opt, hc_options *buf) {
        if (opt)
                memcpy(buf, opt, opt->size < sizeof *buf ? opt->size : sizeof *buf);
        else
                *buf = (hc_options) { .size = sizeof *buf };
        buf->size = sizeof *buf;
        buf->flags |= HC_NO_CREATE;
        return buf;
}

static int open_existing(const char *name, const hc_options *opt, hc_region **ret) {
        hc_options o;
        int r;

        r = scope_resolve(name, opt, &(struct scope) {});
        if (r < 0)
                return r;
        return hc_region_open(name, no_create(opt, &o), ret);
}

_hc_public_ int hc_count(const char *name, const hc_options *opt) {
        struct scope sc;
        int r;

        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        return cold_count(&sc, opt);
}

_hc_public_ int hc_count_approx(const char *name, const hc_options *opt) {
        hc_region *rg = NULL;
        int r;

        r = open_existing(name, opt, &rg);
        if (r < 0)
                return r;
        r = hc_region_count_approx(rg);
        hc_region_close(rg);
        return r;
}

_hc_public_ int hc_list(const char *name, const hc_options *opt, hc_instance **ret) {
        hc_region *rg = NULL;
        int r;

        hc_assert_return(ret, -EINVAL);
        r = open_existing(name, opt, &rg);
        if (r < 0)
                return r;
        r = hc_region_list(rg, ret);
        hc_region_close(rg);
        return r;
}

_hc_public_ int hc_primary(const char *name, const hc_options *opt, hc_instance *ret) {
        hc_region *rg = NULL;
        int r;

        hc_assert_return(ret, -EINVAL);
        r = open_existing(name, opt, &rg);
        if (r < 0)
                return r;
        r = hc_region_primary(rg, ret);
        hc_region_close(rg);
        return r;
}

_hc_public_ int hc_wait(const char *name, const hc_options *opt, unsigned below, int timeout_ms) {
        hc_region *rg = NULL;
        int r;

        hc_assert_return(below > 0 && timeout_ms >= -1, -EINVAL);
        r = open_existing(name, opt, &rg);
        if (r == -ENOENT)
                return 0;                 /* no region: nobody is in it */
        if (r < 0)
                return r;
        r = hc_region_wait(rg, below, timeout_ms);
        hc_region_close(rg);
        return r;
}

_hc_public_ int hc_region_reap(hc_region *rg) {
        unsigned reaped = 0;
        int r;

        hc_assert_return(rg, -EINVAL);
        r = region_lock(rg, 5000);
        if (r < 0)
                return r;
        r = handle_count(rg, true, &reaped);
        __atomic_add_fetch(&rg->hdr->generation, 1, __ATOMIC_RELEASE);
        region_unlock(rg);
        handle_poke(rg);
        return r < 0 ? r : (int) reaped;
}

_hc_public_ int hc_reap(const char *name, const hc_options *opt) {
        hc_region *rg = NULL;
        int r;

        r = open_existing(name, opt, &rg);
        if (r < 0)
                return r;
        r = hc_region_reap(rg);
        hc_region_close(rg);
        return r;
}

/* ---- Creating and retiring ---- */

_hc_public_ int hc_create(const char *name, const hc_options *opt) {
        struct scope sc;
        int fd = -EBADF, r;

        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        r = check_create_options(opt);
        if (r < 0)
                return r;
        for (unsigned attempt = 0;; attempt++) {
                hc_region *rg = NULL;
                hc_options o;
                int q;

                r = region_create(&sc, opt, &fd);
                fd = safe_close(fd);
                if (r != 0)
                        return r;
                HC_HOOK("create-exists");
                /* it exists: make sure it is one we can use. It may also have been
                 * removed since we found it; then we create it after all. */
                q = hc_region_open(name, no_create(opt, &o), &rg);
                hc_region_close(rg);
                if (q == -ENOENT && attempt < 100)
                        continue;
                if (q == -ENOENT)
                        return -ESTALE;   /* removed and made again, over and over */
                return q < 0 ? q : 0;
        }
}

_hc_public_ int hc_remove(const char *name, const hc_options *opt) {
        hc_region *rg = NULL;
        int r;

        r = open_existing(name, opt, &rg);
        if (r < 0)
                return r;
        r = region_retire(rg);
        hc_region_close(rg);
        return r;
}

_hc_public_ int hc_names(const hc_options *opt, int (*cb)(const char *name, int count, void *userdata),
                         void *userdata) {
        struct scope sc;
        int dirfd = -EBADF, r;
        DIR *d;
        struct dirent *de;

        hc_assert_return(cb, -EINVAL);
        r = scope_resolve_dir(opt, &sc);
        if (r < 0)
                return r;
        r = scope_open_dir(&sc, false, &dirfd);
        if (r < 0)
                return r;
        (void) region_sweep(dirfd, sc.system);
        d = fdopendir(dirfd);
        if (!d) {
                r = -errno;
                safe_close(dirfd);
                return r;
        }
        r = 0;
        while ((de = readdir(d))) {
                struct scope one;
                struct stat st;
                hc_options o;

                if (name_check(de->d_name) < 0)
                        continue;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISSOCK(st.st_mode))
                        continue;
                sc.name[0] = '\0';
                if (opt)
                        memcpy(&o, opt, opt->size < sizeof o ? opt->size : sizeof o);
                else
                        o = (hc_options) {};
                o.size = sizeof o;
                o.dir = sc.dir;
                one = sc;
                if (scope_resolve(de->d_name, &o, &one) < 0)
                        continue;
                one.system = sc.system;
                one.user_default = sc.user_default;
                r = cb(de->d_name, cold_count(&one, &o), userdata);
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
