/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The user data area and its lock.
 *
 * The area lies at data_offset in the region file (64 KiB aligned, see region.c). A
 * handle on a region that nobody else may write maps it, and hc_region_data() returns it
 * as memory; on any other region (one that others may write) the area is never mapped,
 * hc_region_data() returns NULL, and hc_region_data_read()/hc_region_data_write() copy
 * bytes in and out with pread()/pwrite(). Both forms work on every region.
 *
 * It is guarded by the region lock (mutex.c), which retirement and the repair pass take
 * too. That sharing is why the header has data_locked: when a process dies holding the
 * lock for user data, the next locker may well be an internal one (a retirement), which
 * runs the repair pass and goes on; the user data is still half-written, so the next
 * user-data locker must hear of it. data_locked is set while the lock is held for user
 * data and cleared when that holder unlocks, so finding it set after taking the lock
 * means its holder died inside, whoever ran the repair.
 */
#include <errno.h>

#include "count.h"
#include "data.h"
#include "hc-internal.h"

#define LOCK_SLICE_MS (3600 * 1000)

int data_lock(hc_region *h, int timeout_ms) {
        int r;

        if (!h->r.writable)
                return -EACCES;
        do
                r = handle_lock(h, timeout_ms < 0 ? LOCK_SLICE_MS : timeout_ms);
        while (r == -ETIMEDOUT && timeout_ms < 0);
        if (r < 0)
                return r;
        h->mutex.for_data = true;
        /* we hold the lock: nobody alive holds it for user data */
        if (region_word(&h->r, WORD_DATA_LOCKED) != 0)
                return HC_OWNER_DIED;
        region_word_set(&h->r, WORD_DATA_LOCKED, 1);
        return 0;
}

int data_unlock(hc_region *h) {
        if (!h->r.writable || !h->mutex.for_data)
                return -EPERM;
        if (!__atomic_load_n(&h->mutex.held, __ATOMIC_ACQUIRE) || !pthread_equal(h->mutex.owner, pthread_self()))
                return -EPERM;
        h->mutex.for_data = false;
        region_word_set(&h->r, WORD_DATA_LOCKED, 0);
        return mutex_unlock(&h->mutex, &h->r);
}

_hc_public_ void *hc_region_data(hc_region *rg) {
        if (!rg)
                return NULL;
        return region_data(&rg->r);
}

_hc_public_ int hc_region_data_read(hc_region *rg, size_t offset, void *buf, size_t len) {
        hc_assert_return(rg && (buf || len == 0), -EINVAL);
        return region_data_io(&rg->r, offset, buf, len, false);
}

_hc_public_ int hc_region_data_write(hc_region *rg, size_t offset, const void *buf, size_t len) {
        hc_assert_return(rg && (buf || len == 0), -EINVAL);
        return region_data_io(&rg->r, offset, (void *) buf, len, true);
}

_hc_public_ int hc_region_lock(hc_region *rg, int timeout_ms) {
        hc_assert_return(rg && timeout_ms >= -1, -EINVAL);
        return data_lock(rg, timeout_ms);
}

_hc_public_ int hc_region_unlock(hc_region *rg) {
        hc_assert_return(rg, -EINVAL);
        return data_unlock(rg);
}
