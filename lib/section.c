/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared variables: the region's user data mapped over a global with MAP_FIXED, as the
 * Windows loader maps one copy of an RWS section into every instance.
 *
 * HC_SHARED_SECTION() gives the variable pages of its own: aligned to 64 KiB and padded
 * to a multiple of it, so no other object shares its pages on any page size up to
 * 64 KiB. We still check the address and size against the running page size, because a
 * loader may place a segment with less than its requested alignment (glibc before 2.35
 * did for shared objects); what matters is only that the variable starts and ends on a
 * page boundary here.
 *
 * Only a region that nobody else may write is mapped (region.c): hc_section_attach() on
 * any other region fails with -EPERM, since its writers could shrink the file under the
 * variable. Such a region's data is reached with hc_region_data_read() and
 * hc_region_data_write() instead.
 *
 * Seeding. Under the region lock, the first process to attach copies its variable
 * into the region and sets HC_REGION_SEEDED; everyone (that one included) then maps the
 * region's data over the variable, still under the lock, so nobody can map data that is
 * half-copied. The region file keeps the values when every instance has ended; removing
 * the region (hc_remove()) starts over from the next program's initial values.
 *
 * Each attachment keeps its handle open (for the region lock) in a small list, looked up by
 * address.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "count.h"
#include "data.h"
#include "format.h"
#include "hc-internal.h"

struct section {
        struct section *next;
        void *addr;
        size_t size;
        hc_region *rg;
};

static pthread_mutex_t sections_lock = PTHREAD_MUTEX_INITIALIZER;
static struct section *sections;

/* The attachment overlapping [ADDR, ADDR+SIZE), with sections_lock held. */
static struct section **section_find(const void *addr, size_t size) {
        for (struct section **s = &sections; *s; s = &(*s)->next) {
                uintptr_t a = (uintptr_t) (*s)->addr, b = (uintptr_t) addr;
                if (b < a + (*s)->size && a < b + (size ? size : 1))
                        return s;
        }
        return NULL;
}

static hc_region *section_region(const void *addr) {
        struct section **s;
        hc_region *rg = NULL;

        (void) pthread_mutex_lock(&sections_lock);
        s = section_find(addr, 1);
        if (s && (*s)->addr == addr)
                rg = (*s)->rg;
        (void) pthread_mutex_unlock(&sections_lock);
        return rg;
}

/* As hc_region_open(): the region mapped, created when missing. */
static int section_open(const char *name, const hc_options *opt, hc_region **ret) {
        struct scope sc;
        int r;

        r = scope_resolve(name, opt, &sc);
        if (r < 0)
                return r;
        r = mode_trusted(&sc, opt->mode);
        if (r < 0)
                return r;
        return handle_open(&sc, opt, HANDLE_CREATE | HANDLE_MAP, ret);
}

static int section_map(hc_region *rg, void *addr, size_t size) {
        int r;

        r = handle_lock(rg, handle_lock_timeout(rg));
        if (r < 0)
                return r;
        if (!(region_word(&rg->r, WORD_FLAGS) & HC_REGION_SEEDED)) {
                r = region_data_io(&rg->r, 0, addr, size, true);
                if (r == 0)
                        region_flags_change(&rg->r, HC_REGION_SEEDED, 0);
        }
        if (r >= 0)
                r = region_data_map_over(&rg->r, addr, size);
        handle_unlock(rg);
        return r;
}

_hc_public_ int hc_section_attach(const char *name, const hc_options *opt, void *addr, size_t size) {
        long ps = sysconf(_SC_PAGESIZE);
        struct section *s = NULL;
        hc_region *rg = NULL;
        hc_options o = { .size = sizeof o };
        int r;

        hc_assert_return(addr && size > 0 && ps > 0, -EINVAL);
        if ((uintptr_t) addr % (uintptr_t) ps != 0 || size % (size_t) ps != 0 ||
            size > HC_DATA_SIZE_MAX)
                return -EINVAL;
        if (opt) {
                if (opt->size < HC_OPTIONS_SIZE_V1)
                        return -EINVAL;
                memcpy(&o, opt, opt->size < sizeof o ? opt->size : sizeof o);
                o.size = sizeof o;
        }
        if (o.data_size < size)
                o.data_size = size;

        s = malloc(sizeof *s);
        if (!s)
                return -ENOMEM;
        (void) pthread_mutex_lock(&sections_lock);
        if (section_find(addr, size)) {
                r = -EBUSY;
                goto fail;
        }
        r = section_open(name, &o, &rg);
        if (r < 0)
                goto fail;
        if (!rg->r.writable) {
                r = -EACCES;
                goto fail;
        }
        if (!rg->r.mapped) {
                r = -EPERM;               /* others may write it: never mapped */
                goto fail;
        }
        if (rg->r.data_size < size) {
                r = -EMSGSIZE;
                goto fail;
        }
        r = section_map(rg, addr, size);
        if (r < 0)
                goto fail;
        *s = (struct section) { .next = sections, .addr = addr, .size = size, .rg = rg };
        sections = s;
        (void) pthread_mutex_unlock(&sections_lock);
        return 0;

fail:
        (void) pthread_mutex_unlock(&sections_lock);
        handle_unref(rg);
        free(s);
        return r;
}

_hc_public_ int hc_section_lock(void *addr, int timeout_ms) {
        hc_region *rg;

        hc_assert_return(addr && timeout_ms >= -1, -EINVAL);
        rg = section_region(addr);
        if (!rg)
                return -ENOENT;
        return data_lock(rg, timeout_ms);
}

_hc_public_ int hc_section_unlock(void *addr) {
        hc_region *rg;

        hc_assert_return(addr, -EINVAL);
        rg = section_region(addr);
        if (!rg)
                return -ENOENT;
        return data_unlock(rg);
}

_hc_public_ int hc_section_detach(void *addr) {
        struct section **sp, *s;
        void *copy, *p;
        int r = 0;

        hc_assert_return(addr, -EINVAL);
        (void) pthread_mutex_lock(&sections_lock);
        sp = section_find(addr, 1);
        if (!sp || (*sp)->addr != addr) {
                (void) pthread_mutex_unlock(&sections_lock);
                return -ENOENT;
        }
        s = *sp;
        copy = malloc(s->size);
        if (!copy) {
                (void) pthread_mutex_unlock(&sections_lock);
                return -ENOMEM;
        }
        /* the variable becomes private again, with the value it has now */
        memcpy(copy, addr, s->size);
        p = mmap(addr, s->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                 -1, 0);
        if (p == MAP_FAILED)
                r = -errno;
        else
                memcpy(addr, copy, s->size);
        free(copy);
        if (r == 0) {
                *sp = s->next;
                handle_unref(s->rg);
                free(s);
        }
        (void) pthread_mutex_unlock(&sections_lock);
        return r;
}
