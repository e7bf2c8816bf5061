/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The user data area and its lock.
 *
 * The area lies at data_offset in the region file (64 KiB aligned, see region.c) and is
 * part of every handle's mapping. It is guarded by the region's robust mutex, the same
 * one that retirement and reaping take. That sharing is why the header has data_locked:
 * when a process dies holding the mutex for user data, the next locker gets EOWNERDEAD,
 * and that may well be an internal locker (a reap), which repairs the region and goes
 * on. The user data is still half-written, so the next user-data locker must hear of it:
 * data_locked is set while the mutex is held for user data and cleared when that holder
 * unlocks, so finding it set after acquiring the mutex means its holder died inside.
 * Whoever consumed the EOWNERDEAD does not matter.
 */
#include <errno.h>
#include <pthread.h>

#include "hc-internal.h"
#include "region.h"

#define LOCK_SLICE_MS (3600 * 1000)

/* Takes the mutex for user data: 0, HC_OWNER_DIED, or -errno. */
int data_lock(hc_region *rg, int timeout_ms) {
        int r;

        if (!rg->writable)
                return -EACCES;
        do
                r = region_lock(rg, timeout_ms < 0 ? LOCK_SLICE_MS : timeout_ms);
        while (r == -ETIMEDOUT && timeout_ms < 0);
        if (r < 0)
                return r;
        /* we hold the mutex: nobody alive holds it for user data */
        if (__atomic_load_n(&rg->hdr->data_locked, __ATOMIC_RELAXED) != 0)
                return HC_OWNER_DIED;
        __atomic_store_n(&rg->hdr->data_locked, 1, __ATOMIC_RELAXED);
        return 0;
}

int data_unlock(hc_region *rg) {
        int r;

        if (!rg->writable || __atomic_load_n(&rg->hdr->data_locked, __ATOMIC_RELAXED) == 0)
                return -EPERM;
        __atomic_store_n(&rg->hdr->data_locked, 0, __ATOMIC_RELAXED);
        /* a robust mutex checks its owner on unlock (glibc: EPERM for anyone else) */
        r = pthread_mutex_unlock(&rg->hdr->lock);
        if (r != 0) {
                __atomic_store_n(&rg->hdr->data_locked, 1, __ATOMIC_RELAXED);
                return -r;
        }
        return 0;
}

_hc_public_ void *hc_region_data(hc_region *rg) {
        if (!rg || rg->data_size == 0)
                return NULL;
        return (char *) rg->hdr + rg->data_offset;
}

_hc_public_ int hc_region_lock(hc_region *rg, int timeout_ms) {
        hc_assert_return(rg && timeout_ms >= -1, -EINVAL);
        return data_lock(rg, timeout_ms);
}

_hc_public_ int hc_region_unlock(hc_region *rg) {
        hc_assert_return(rg, -EINVAL);
        return data_unlock(rg);
}

_hc_public_ hc_region *hc_slot_region(const hc_slot *slot) {
        return slot ? slot->rg : NULL;
}
